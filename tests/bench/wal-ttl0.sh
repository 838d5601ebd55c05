#!/usr/bin/env bash
# bench wal-ttl0: the highest WAL write rate the archiver keeps up with at ThemisDB's
# WAL_ttl_seconds=0, on this machine's cores: plain, with --encrypt, and with --push to a
# local RGW, beside the rate the writer reaches alone.
#
# Method: the same writer run each time (themis-loadgen, 4 threads, 1 MiB memtables,
# WAL_ttl_seconds=0, BENCH_TTL0_WRITES writes, seed 1), as fast as it goes. Alone: its time.
# With an archiver following (--interval 200): the time until the archive holds every write
# (writer done, then SIGTERM: the archiver's last pass drains what it holds). The WAL bytes
# are what the archiver read (its --progress=json), the same writes each time. The rate an
# archiver keeps up with is those bytes over that time: a faster writer would only grow the
# backlog (the held WAL files), never lose a write. Each archive is checked (--check) and
# must reach the database's last sequence, or the row says MISS.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
WRITES=${BENCH_TTL0_WRITES:-20000}
[ "${BENCH_SMOKE:-0}" = 1 ] && WRITES=1000
here=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/var/tmp}}/themis-bench-ttl0.XXXXXX")
mkdir "$W/rgw"
trap '"$here/s3/rgw.sh" stop "$W/rgw" >/dev/null 2>&1; rm -rf "$W"' EXIT
push=1
if TB_RGW_MEMSTORE_BYTES=$((4 << 30)) "$here/s3/rgw.sh" start "$W/rgw" 2>/dev/null; then
    . "$W/rgw/env"
    unset AWS_CA_BUNDLE
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION=$AWS_REGION
else
    push=0
    echo "bench wal-ttl0: no RGW (Ceph not installed?): no --push row" >&2
fi
head -c 32 /dev/urandom >"$W/key"

writer() { themis-loadgen --db "$1" --seed 1 --threads 4 --batches "$WRITES" --write-buffer 1M --wal-ttl 0 2>/dev/null; }
now() { date +%s.%N; }
declare -A SEC BYTES VERDICT LAG
t0=$(now); writer "$W/alone"; SEC[alone]=$(echo "$(now) - $t0" | bc -l)

run() {  # run NAME [ARCHIVER ARGS]
    local name=$1 db=$W/db-$1 w=$W/w-$1 ar last check; shift
    mkdir -p "$db"
    t0=$(now)
    themis-wal-archive --database-path "$db" --wal-directory "$w" --follow --interval 200 --progress=json \
        --warn-lag 0 "$@" 2>"$W/$name.err" & ar=$!
    writer "$db"
    kill -TERM "$ar"; wait "$ar" || true
    SEC[$name]=$(echo "$(now) - $t0" | bc -l)
    BYTES[$name]=$(grep '"done":true' "$W/$name.err" | sed 's/.*"bytes_done":\([0-9]*\).*/\1/')
    LAG[$name]=$(python3 -c 'import json,sys; print(max([json.loads(l).get("lag_bytes", 0) for l in open(sys.argv[1]) if l.startswith("{")] or [0]))' "$W/$name.err")
    last=$(themis-dbhash -v --database-path "$db" | awk '$1 == "sequence" { print $2 }')
    check=$(themis-wal-archive --wal-directory "$w" --check $([ "$name" = encrypt ] && echo --key-file "$W/key") 2>&1 || true)
    VERDICT[$name]=MISS
    [[ "$check" == *"..$last, checksums and continuity good"* ]] && VERDICT[$name]=PASS
    [ "${VERDICT[$name]}" = PASS ] || echo "bench wal-ttl0: $name: $check (last sequence $last)" >&2
}
run plain
run encrypt --encrypt --key-file "$W/key"
[ "$push" = 1 ] && run push --push "s3://$TB_S3_BUCKET/wal"

mibs() { echo "scale=1; $1 / $2 / 1048576" | bc -l; }
B=${BYTES[plain]}
echo
echo "WAL capture at WAL_ttl_seconds=0: $WRITES writes by 4 threads, 1 MiB memtables, $((B / 1048576)) MiB of WAL, $(nproc) cores; one run each"
echo
echo "| row | time to archive every write | WAL rate kept up with | vs the writer alone | largest backlog | no gap, --check good |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '| writer alone (no archiver) | %.2f s | %s MiB/s written | 1.00× | | |\n' "${SEC[alone]}" "$(mibs "$B" "${SEC[alone]}")"
for n in plain encrypt push; do
    [ -n "${SEC[$n]:-}" ] || continue
    case $n in plain) l="archiver --follow" ;; encrypt) l="archiver --follow --encrypt" ;; push) l="archiver --follow --push (local RGW)" ;; esac
    printf '| %s | %.2f s | %s MiB/s | %s× | %.1f MiB | %s |\n' "$l" "${SEC[$n]}" "$(mibs "${BYTES[$n]}" "${SEC[$n]}")" \
        "$(echo "scale=2; $(mibs "${BYTES[$n]}" "${SEC[$n]}") / $(mibs "$B" "${SEC[alone]}")" | bc -l)" \
        "$(echo "${LAG[$n]} / 1048576" | bc -l)" "${VERDICT[$n]}"
done
