#!/usr/bin/env bash
# bench: our tools beside the commands users would otherwise run, on the same generated data
# in the same invocation; prints a markdown table of medians (of BENCH_RUNS) and ratios.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_RUNS=${BENCH_RUNS:-3}
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/var/tmp}}/themis-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
# timed NAME CMD: runs CMD BENCH_RUNS times (after PREP if set), records the median seconds
# and peak RSS (KiB) of the last run.
declare -A T_SEC T_RSS
timed() {
    local name=$1; shift
    local times=() t0 t1 i
    for ((i = 0; i < BENCH_RUNS; i++)); do
        [ -n "${PREP:-}" ] && eval "$PREP"
        t0=$(now)
        /usr/bin/time -f '%M' -o "$W/rss" bash -c "$*"
        t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    T_SEC[$name]=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p")
    T_RSS[$name]=$(cat "$W/rss")
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }
row() {  # row LABEL OURS REF TARGET_RATIO
    local r; r=$(ratio "${T_SEC[$2]}" "${T_SEC[$3]}")
    local verdict=MISS
    [ "$(echo "$r <= $4" | bc -l)" = 1 ] && verdict=PASS
    printf '| %s | %.2f s | %.2f s | %s× | ≤ %s× | %s | %d MiB |\n' "$1" "${T_SEC[$2]}" "${T_SEC[$3]}" "$r" "$4" "$verdict" $(( ${T_RSS[$2]} / 1024 ))
}

echo "generating a $BENCH_SIZE database..." >&2
themis-loadgen --db "$W/db" --seed 1 --threads 1 --bytes "$BENCH_SIZE" >/dev/null
DB_BYTES=$(du -sb "$W/db" | cut -f1)
cat "$W"/db/* > /dev/null   # warm cache

PREP='rm -rf "$W/bk"'
timed backup "themis-backup --database-path '$W/db' --backup-directory '$W/bk' --compress"
PREP='rm -f "$W/ref.tar.zst"'
timed tarzstd "tar -cf - -C '$W' db | zstd -q -T0 -3 > '$W/ref.tar.zst'"
PREP='rm -rf "$W/r"'
timed restore "themis-restore --backup-directory '$W/bk' --target '$W/r'"
PREP='rm -rf "$W/x"; mkdir "$W/x"'
timed untar "zstd -q -dc '$W/ref.tar.zst' | tar -x -C '$W/x'"
PREP=
timed verifyq "themis-restore --backup-directory '$W/bk' --verify-only --quick"
timed shasum "zstd -q -dc '$W/ref.tar.zst' | sha256sum > /dev/null"
timed verify "themis-restore --backup-directory '$W/bk' --verify-only"
timed verifyref "themis-restore --backup-directory '$W/bk' --verify-only --quick && themis-dbhash --database-path '$W/r' > /dev/null"

ours=$(stat -c %s "$W/bk/backup.tar.zst"); ref=$(stat -c %s "$W/ref.tar.zst")
echo
echo "Data: $BENCH_SIZE requested, $((DB_BYTES / 1048576)) MiB database; median of $BENCH_RUNS runs; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo
echo "| row | ours | reference | ratio | target | verdict | our peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
row "backup, compressed (vs tar \| zstd -T0 -3)" backup tarzstd 1.0
row "restore (vs zstd -dc \| tar -x)" restore untar 1.0
row "verify, checksums (vs zstd -dc \| sha256sum)" verifyq shasum 1.1
row "verify, full (vs quick verify + themis-dbhash)" verify verifyref 1.0
printf '| backup size | %d MiB | %d MiB | %s× | ≤ 1.0× | %s | |\n' $((ours / 1048576)) $((ref / 1048576)) "$(ratio "$ours" "$ref")" \
    "$([ "$ours" -le "$ref" ] && echo PASS || echo MISS)"
echo
echo "Throughput: backup $(echo "scale=0; $DB_BYTES / ${T_SEC[backup]} / 1048576" | bc) MiB/s, tar|zstd $(echo "scale=0; $DB_BYTES / ${T_SEC[tarzstd]} / 1048576" | bc) MiB/s, restore $(echo "scale=0; $DB_BYTES / ${T_SEC[restore]} / 1048576" | bc) MiB/s, zstd -dc|tar -x $(echo "scale=0; $DB_BYTES / ${T_SEC[untar]} / 1048576" | bc) MiB/s"
