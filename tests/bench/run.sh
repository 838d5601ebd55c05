#!/usr/bin/env bash
# bench: our tools beside the commands users would otherwise run, on the same generated data
# in the same invocation; prints a markdown table of medians (of BENCH_RUNS) and ratios.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_WAL_BATCHES=${BENCH_WAL_BATCHES:-30000}   # writes in the WAL-heavy run
BENCH_SCALE_SIZE=${BENCH_SCALE_SIZE:-256M}      # scaling rows: 1x, 2x, 4x of this
BENCH_SCALE_RUNS=${BENCH_SCALE_RUNS:-3}         # scaling rows: runs per size (the median); one was noise
if [ "${BENCH_SMOKE:-0}" = 1 ]; then           # a quick end-to-end run of the script itself
    BENCH_SIZE=16M BENCH_RUNS=1 BENCH_WAL_BATCHES=500 BENCH_SCALE_SIZE=8M BENCH_SCALE_RUNS=1
fi
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/var/tmp}}/themis-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
# timed NAME CMD: runs CMD BENCH_RUNS times (after PREP if set), records the median seconds,
# the median CPU seconds (user + system, of CMD and every process it waited for) and the
# peak RSS (KiB) of the last run.
declare -A T_SEC T_RSS T_CPU
median() { sort -g | sed -n "$(( (BENCH_RUNS + 1) / 2 ))p"; }
timed() {
    local name=$1; shift
    local times=() cpus=() t0 t1 i rss u s
    for ((i = 0; i < BENCH_RUNS; i++)); do
        [ -n "${PREP:-}" ] && eval "$PREP"
        t0=$(now)
        /usr/bin/time -f '%M %U %S' -o "$W/rss" bash -c "$*"
        t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc -l)")
        read -r rss u s < "$W/rss"
        cpus+=("$(echo "$u + $s" | bc -l)")
    done
    T_SEC[$name]=$(printf '%s\n' "${times[@]}" | median)
    T_CPU[$name]=$(printf '%s\n' "${cpus[@]}" | median)
    T_RSS[$name]=$rss
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }
row() {  # row LABEL OURS REF TARGET_RATIO [VALID]: VALID other than "yes" makes it a MISS
    local r; r=$(ratio "${T_SEC[$2]}" "${T_SEC[$3]}")
    local verdict=MISS
    [ "${5:-yes}" = yes ] && [ "$(echo "$r <= $4" | bc -l)" = 1 ] && verdict=PASS
    printf '| %s | %.2f s | %.2f s | %s× | ≤ %s× | %s | %d MiB |\n' "$1" "${T_SEC[$2]}" "${T_SEC[$3]}" "$r" "$4" "$verdict" $(( ${T_RSS[$2]} / 1024 ))
}

sizerow() {  # sizerow OURS_BYTES REF_BYTES: our archive's size against the reference's, PASS when not larger
    printf '| backup size | %d MiB | %d MiB | %s× | ≤ 1.0× | %s | |\n' $(($1 / 1048576)) $(($2 / 1048576)) \
        "$(ratio "$1" "$2")" "$([ "$1" -le "$2" ] && echo PASS || echo MISS)"
}

# What bounds a backup row: its CPU seconds against the reference's, and the parts of ours
# timed alone on the same DB. A program that needs C CPU seconds takes at least C / nproc.
# bound_parts KEY DB ARCHIVE REF_ARCHIVE: times the parts (content hash, compression as the
# reference does it, SHA-256 of every file and of the archive); for the size row, our tar
# through the reference's zstd, our MANIFEST.json alone, and whether the tars hold the same
# database files.
declare -A B_TARREF B_MANZ B_SAMEFILES  # B_SAMEFILES: the files only one tar holds
bound_parts() {
    local saved=${PREP:-}; PREP=
    timed "$1_hash" "themis-dbhash --database-path '$2' > /dev/null"
    timed "$1_zstd" "tar -cf - -C '$(dirname "$2")' '$(basename "$2")' | zstd -q -T0 -3 > /dev/null"
    timed "$1_sha" "openssl dgst -sha256 '$2'/* '$3' > /dev/null"
    PREP=$saved
    zstd -q -dc "$3" > "$W/ours.tar"   # once, for the three looks below
    B_TARREF[$1]=$(zstd -q -T0 -3 -c "$W/ours.tar" | wc -c)
    B_MANZ[$1]=$(tar -xOf "$W/ours.tar" MANIFEST.json | zstd -q -3 | wc -c)
    local files='tar -tf - | grep -v "/$" | sed "s|.*/||" | grep -vx MANIFEST.json | sort'
    eval "$files" < "$W/ours.tar" > "$W/files.ours"
    zstd -q -dc "$4" | eval "$files" > "$W/files.ref"
    rm -f "$W/ours.tar"
    B_SAMEFILES[$1]="only in ours: $(names "$(comm -23 "$W/files.ours" "$W/files.ref")")"
    B_SAMEFILES[$1]+="; only in the reference: $(names "$(comm -13 "$W/files.ours" "$W/files.ref")")"
}
names() {  # names LIST: up to 4 of the names on LIST's lines, and how many more; "none"
    [ -z "$1" ] && { echo none; return; }
    local n; n=$(echo "$1" | wc -l)
    echo "$1" | head -4 | tr '\n' ' ' | sed 's/ $//'
    [ "$n" -gt 4 ] && printf ' and %d more' $((n - 4))
    return 0
}
# bound_lines KEY OURS REF OURS_BYTES REF_BYTES [OTHER LABEL]: the profile of the backup row
# and the makeup of the size row; OTHER is one more timed reference whose CPU to print, as LABEL.
bound_lines() {
    local k=$1 o=$2 r=$3 n; n=$(nproc)
    local parts; parts=$(echo "${T_CPU[${k}_hash]} + ${T_CPU[${k}_zstd]} + ${T_CPU[${k}_sha]}" | bc -l)
    local floor; floor=$(echo "${T_CPU[$o]} / $n" | bc -l)
    local extra=; [ -n "${6:-}" ] && extra=$(printf ', %s %.2f s' "${7:-$6}" "${T_CPU[$6]}")
    printf 'What bounds the backup rows (CPU seconds, user + system, medians): ours %.2f s, the reference %.2f s%s. ' \
        "${T_CPU[$o]}" "${T_CPU[$r]}" "$extra"
    printf 'The parts of ours, each timed alone on the same database: content hash (themis-dbhash) %.2f s, ' "${T_CPU[${k}_hash]}"
    printf 'compression (tar | zstd -T0 -3, as the reference) %.2f s, SHA-256 of every file and of the archive (openssl) %.2f s; together %.2f s. ' \
        "${T_CPU[${k}_zstd]}" "${T_CPU[${k}_sha]}" "$parts"
    printf 'On %d cores ours takes at least %.2f / %d = %.2f s, %s× the reference'"'"'s %.2f s.\n' \
        "$n" "${T_CPU[$o]}" "$n" "$floor" "$(ratio "$floor" "${T_SEC[$r]}")" "${T_SEC[$r]}"
    echo
    printf 'Backup size: ours %d bytes, the reference'"'"'s %d (%+d); files (MANIFEST.json aside) %s; ' \
        "$4" "$5" $(($4 - $5)) "${B_SAMEFILES[$k]}"
    printf 'our tar through the reference'"'"'s zstd -T0 -3: %d bytes (%+d); our MANIFEST.json, in our tar, alone through zstd -3: %d bytes.\n' \
        "${B_TARREF[$k]}" $((B_TARREF[$k] - $5)) "${B_MANZ[$k]}"
}

memrow() {  # memrow LABEL NAME: time and peak RSS of NAME against the 256 MiB target
    printf '| %s | %.2f s | %d MiB | ≤ 256 MiB | %s |\n' "$1" "${T_SEC[$2]}" $(( ${T_RSS[$2]} / 1024 )) \
        "$([ "${T_RSS[$2]}" -le $((256 * 1024)) ] && echo PASS || echo MISS)"
}

# Write policies (issue 15): the same bulk writes (themis-txnwriter --bytes: ~1 MiB
# skip_prepare transactions, merges into a counter, values of 1 KiB and more in blob files,
# 64 MiB memtables, WAL kept) under WRITE_UNPREPARED, ThemisDB's default, and WRITE_COMMITTED:
# backup, full verify, restore, archive and replay into a base made before the bulk writes,
# side by side. Then memory: the same writes left in the WAL (a write buffer larger than
# the data, no flush at exit): each tool's peak RSS against 256 MiB.
# BENCH_ONLY=policies runs this section alone.
BENCH_POLICY_SIZE=${BENCH_POLICY_SIZE:-1G}
BENCH_WAL_RSS_SIZE=${BENCH_WAL_RSS_SIZE:-1G}
if [ "${BENCH_SMOKE:-0}" = 1 ]; then BENCH_POLICY_SIZE=16M BENCH_WAL_RSS_SIZE=16M; fi
policies_section() {
    local p d sz wal
    declare -gA P_BYTES
    for p in unprepared committed; do
        echo "generating a $BENCH_POLICY_SIZE write_$p database..." >&2
        themis-txnwriter --db "$W/p-$p" --policy $p --merge --blob --bytes 2M --wal-ttl 3600 2>/dev/null
        cp -a "$W/p-$p" "$W/pbase-$p"
        themis-txnwriter --db "$W/p-$p" --policy $p --merge --blob --seed 2 --bytes "$BENCH_POLICY_SIZE" \
            --write-buffer 64M --wal-ttl 3600 2>/dev/null
        P_BYTES[$p]=$(du -sb --exclude=archive "$W/p-$p" | cut -f1)
        cat "$W"/p-$p/* "$W"/p-$p/archive/* > /dev/null 2>&1 || true
        PREP="rm -rf '$W/pbk-$p'"
        timed "pbackup-$p" "themis-backup --database-path '$W/p-$p' --backup-directory '$W/pbk-$p' --compress"
        PREP=
        timed "pverify-$p" "themis-restore --backup-directory '$W/pbk-$p' --verify-only"
        PREP="rm -rf '$W/pr-$p'"
        timed "prestore-$p" "themis-restore --backup-directory '$W/pbk-$p' --target '$W/pr-$p'"
        PREP="rm -rf '$W/pwa-$p'"
        timed "parchive-$p" "themis-wal-archive --database-path '$W/p-$p' --wal-directory '$W/pwa-$p' --once"
        PREP="rm -rf '$W/pe-$p'; cp -a '$W/pbase-$p' '$W/pe-$p'"
        timed "preplay-$p" "themis-wal-replay --wal-directory '$W/pwa-$p' --database-path '$W/pe-$p' > /dev/null"
        PREP=
        P_SAME[$p]=$([ "$(themis-dbhash --database-path "$W/pe-$p")" = "$(themis-dbhash --database-path "$W/p-$p")" ] &&
            [ "$(themis-dbhash --database-path "$W/pr-$p")" = "$(themis-dbhash --database-path "$W/p-$p")" ] && echo yes || echo NO)
        rm -rf "$W/pbk-$p" "$W/pr-$p" "$W/pe-$p" "$W/pwa-$p" "$W/p-$p" "$W/pbase-$p"
    done
    echo "generating $BENCH_WAL_RSS_SIZE of write_unprepared WAL left unflushed..." >&2
    themis-txnwriter --db "$W/u" --policy unprepared --merge --blob --bytes 2M --wal-ttl 3600 2>/dev/null
    cp -a "$W/u" "$W/ubase"
    themis-txnwriter --db "$W/u" --policy unprepared --merge --blob --seed 2 --bytes "$BENCH_WAL_RSS_SIZE" \
        --write-buffer 4G --no-flush-at-exit --wal-ttl 3600 2>/dev/null
    wal=$(cat "$W"/u/*.log | wc -c)
    local newer; newer=$(find "$W/u" -maxdepth 1 \( -name '*.sst' -o -name '*.blob' \) -newer "$(ls "$W"/u/*.log | sort | tail -1)" | wc -l)
    cat "$W"/u/*.log > /dev/null
    local runs=$BENCH_RUNS; BENCH_RUNS=1
    PREP="rm -rf '$W/ubk'"
    timed ubackup "themis-backup --database-path '$W/u' --backup-directory '$W/ubk' --compress"
    PREP=
    timed uverify "themis-restore --backup-directory '$W/ubk' --verify-only"
    PREP="rm -rf '$W/ur'"
    timed urestore "themis-restore --backup-directory '$W/ubk' --target '$W/ur'"
    PREP=
    timed udbhash "themis-dbhash --database-path '$W/u' > /dev/null"
    PREP="rm -rf '$W/uwa'"
    timed uarchive "themis-wal-archive --database-path '$W/u' --wal-directory '$W/uwa' --once"
    PREP="rm -rf '$W/ue'; cp -a '$W/ubase' '$W/ue'"
    timed ureplay "themis-wal-replay --wal-directory '$W/uwa' --database-path '$W/ue' > /dev/null"
    PREP=
    BENCH_RUNS=$runs
    rm -rf "$W/u" "$W/ubase" "$W/ubk" "$W/ur" "$W/ue" "$W/uwa"

    echo
    echo "Write policies: $BENCH_POLICY_SIZE requested; write_unprepared $((P_BYTES[unprepared] / 1048576)) MiB, write_committed $((P_BYTES[committed] / 1048576)) MiB of tables, blob files and WAL (themis-txnwriter --bytes, --merge --blob); median of $BENCH_RUNS runs; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| row | write_unprepared | write_committed | ratio (unprepared / committed) | RSS unprepared | RSS committed |"
    echo "| --- | --- | --- | --- | --- | --- |"
    local k label
    for k in pbackup pverify prestore parchive preplay; do
        case $k in
        pbackup) label="backup --compress" ;;
        pverify) label="verify, full" ;;
        prestore) label="restore (same content: ${P_SAME[unprepared]}, ${P_SAME[committed]})" ;;
        parchive) label="wal-archive --once (the whole WAL)" ;;
        preplay) label="replay into the base (same content: ${P_SAME[unprepared]}, ${P_SAME[committed]})" ;;
        esac
        printf '| %s | %.2f s | %.2f s | %s× | %d MiB | %d MiB |\n' "$label" "${T_SEC[$k-unprepared]}" "${T_SEC[$k-committed]}" \
            "$(ratio "${T_SEC[$k-unprepared]}" "${T_SEC[$k-committed]}")" $(( ${T_RSS[$k-unprepared]} / 1024 )) $(( ${T_RSS[$k-committed]} / 1024 ))
    done
    echo
    echo "Memory with the WAL unflushed: $((wal / 1048576)) MiB of write_unprepared WAL (merges, blob-sized values) in the live WAL files, $newer table or blob files written after the newest began; one run each"
    echo
    echo "| row | time | peak RSS | target | verdict |"
    echo "| --- | --- | --- | --- | --- |"
    for k in ubackup uverify urestore udbhash uarchive ureplay; do
        case $k in
        ubackup) label="backup --compress ($(nproc) zstd workers)" ;;
        uverify) label="verify, full" ;;
        urestore) label="restore" ;;
        udbhash) label="themis-dbhash" ;;
        uarchive) label="wal-archive --once" ;;
        ureplay) label="replay into the base" ;;
        esac
        memrow "$label" "$k"
    done
}
declare -A P_SAME

# A database not ours: Debian's db_bench (fillrandom, LZ4, what it leaves in its WAL left
# there): backup, restore and full verify against the same references as above. Then
# hundreds of small tables (256 KiB memtables and files, no compaction): peak RSS.
# BENCH_ONLY=dbbench runs this section alone.
BENCH_DBBENCH_NUM=${BENCH_DBBENCH_NUM:-2000000}
BENCH_SMALL_NUM=${BENCH_SMALL_NUM:-300000}
if [ "${BENCH_SMOKE:-0}" = 1 ]; then BENCH_DBBENCH_NUM=20000 BENCH_SMALL_NUM=20000; fi
dbbench_section() {
    local k label
    echo "generating a db_bench database of $BENCH_DBBENCH_NUM keys..." >&2
    db_bench --benchmarks=fillrandom --db="$W/dbb" --num="$BENCH_DBBENCH_NUM" --value_size=400 \
        --compression_type=lz4 > /dev/null 2>&1
    local bytes; bytes=$(du -sb "$W/dbb" | cut -f1)
    cat "$W"/dbb/* > /dev/null
    cp -al "$W/dbb" "$W/dbbl"
    PREP="rm -rf '$W/dbk'"
    timed dbackup "themis-backup --database-path '$W/dbb' --backup-directory '$W/dbk' --compress"
    PREP="rm -rf '$W/dck' '$W/dref.tar.zst'"
    local ref="ldb --db='$W/dbbl' checkpoint --checkpoint_dir='$W/dck' > /dev/null && tar -cf - -C '$W' dck | zstd -q -T0 -3 > '$W/dref.tar.zst'"
    timed dref "$ref"
    timed drefsync "$ref && sync '$W/dref.tar.zst'"
    PREP="rm -rf '$W/dr'"
    timed drestore "themis-restore --backup-directory '$W/dbk' --target '$W/dr'"
    PREP="rm -rf '$W/dx'; mkdir '$W/dx'"
    timed duntarsync "zstd -q -dc '$W/dref.tar.zst' | tar -x -C '$W/dx' && find '$W/dx' -type f -print0 | xargs -0 sync"
    PREP=
    timed dverify "themis-restore --backup-directory '$W/dbk' --verify-only"
    timed dverifyref "themis-restore --backup-directory '$W/dbk' --verify-only --quick && themis-dbhash --database-path '$W/dr' > /dev/null"
    local same; same=$([ "$(themis-dbhash --database-path "$W/dr")" = "$(themis-dbhash --database-path "$W/dbb")" ] && echo yes || echo NO)
    local dsz dref_sz; dsz=$(stat -c %s "$W/dbk/backup.tar.zst"); dref_sz=$(stat -c %s "$W/dref.tar.zst")
    bound_parts dbb "$W/dbb" "$W/dbk/backup.tar.zst" "$W/dref.tar.zst"
    rm -rf "$W/dbb" "$W/dbbl" "$W/dbk" "$W/dck" "$W/dref.tar.zst" "$W/dr" "$W/dx"

    echo "generating a db_bench database of small tables ($BENCH_SMALL_NUM keys)..." >&2
    db_bench --benchmarks=fillrandom --db="$W/dbs" --num="$BENCH_SMALL_NUM" --value_size=400 --compression_type=lz4 \
        --write_buffer_size=262144 --target_file_size_base=262144 --disable_auto_compactions=1 \
        --level0_slowdown_writes_trigger=1000000 --level0_stop_writes_trigger=1000000 > /dev/null 2>&1
    local tables; tables=$(ls "$W"/dbs/*.sst | wc -l)
    local sbytes; sbytes=$(du -sb "$W/dbs" | cut -f1)
    local runs=$BENCH_RUNS; BENCH_RUNS=1
    PREP="rm -rf '$W/dsk'"
    timed smbackup "themis-backup --database-path '$W/dbs' --backup-directory '$W/dsk' --compress"
    PREP=
    timed smverify "themis-restore --backup-directory '$W/dsk' --verify-only"
    PREP="rm -rf '$W/dsr'"
    timed smrestore "themis-restore --backup-directory '$W/dsk' --target '$W/dsr'"
    PREP=
    BENCH_RUNS=$runs
    rm -rf "$W/dbs" "$W/dsk" "$W/dsr"

    echo
    echo "db_bench (fillrandom, 400-byte values, LZ4): $BENCH_DBBENCH_NUM keys, $((bytes / 1048576)) MiB with its WAL; median of $BENCH_RUNS runs; restored content the same: $same"
    echo
    echo "| row | ours | reference | ratio | target | verdict | our peak RSS |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    row "backup, compressed (vs ldb checkpoint, then tar \| zstd -T0 -3)" dbackup dref 1.10
    row "backup, compressed, durable on both sides (vs the same, then sync of the archive)" dbackup drefsync 1.10
    row "restore (vs zstd -dc \| tar -x, then sync of every file)" drestore duntarsync 1.10 "$same"
    sizerow "$dsz" "$dref_sz"
    row "verify, full (vs quick verify + themis-dbhash)" dverify dverifyref 1.0
    echo
    bound_lines dbb dbackup dref "$dsz" "$dref_sz"
    echo
    echo "Small tables: $tables tables, $((sbytes / 1048576)) MiB (db_bench, 256 KiB memtables and files, no compaction); one run each"
    echo
    echo "| row | time | peak RSS | target | verdict |"
    echo "| --- | --- | --- | --- | --- |"
    for k in smbackup smverify smrestore; do
        case $k in
        smbackup) label="backup --compress" ;;
        smverify) label="verify, full" ;;
        smrestore) label="restore" ;;
        esac
        memrow "$label" "$k"
    done
}
if [ "${BENCH_ONLY:-}" = policies ]; then
    policies_section
    exit 0
fi
if [ "${BENCH_ONLY:-}" = dbbench ]; then
    dbbench_section
    exit 0
fi

echo "generating a $BENCH_SIZE database..." >&2
themis-loadgen --db "$W/db" --seed 1 --threads 1 --bytes "$BENCH_SIZE" >/dev/null
DB_BYTES=$(du -sb "$W/db" | cut -f1)
cat "$W"/db/* > /dev/null   # warm cache

# Encryption: each encrypted row (--encrypt, AES-256-GCM) is timed right after its plain
# twin on the same DB, so that both see the same machine: backup with a key file, and with
# a passphrase (scrypt, N=2^15, once per run); full verify and restore with the key file.
head -c 32 /dev/urandom > "$W/key"
echo "themis bench passphrase" > "$W/pass"
PREP='rm -rf "$W/bk"'
timed backup "themis-backup --database-path '$W/db' --backup-directory '$W/bk' --compress"
PREP='rm -rf "$W/bke"'
timed ebackup "themis-backup --database-path '$W/db' --backup-directory '$W/bke' --compress --encrypt --key-file '$W/key'"
PREP='rm -rf "$W/bkp"'
timed pbackup "themis-backup --database-path '$W/db' --backup-directory '$W/bkp' --compress --encrypt --passphrase-file '$W/pass'"
# The reference backup: RocksDB's checkpoint (ldb opens the DB read-write, so it works on a
# hard-linked copy), then tar | zstd of the checkpoint.
cp -al "$W/db" "$W/dbl"
PREP='rm -rf "$W/ck" "$W/ref.tar.zst"'
REF="ldb --db='$W/dbl' --try_load_options checkpoint --checkpoint_dir='$W/ck' > /dev/null && tar -cf - -C '$W' ck | zstd -q -T0 -3 > '$W/ref.tar.zst'"
timed tarzstd "$REF"
# Backup's durability on the reference's side too (as restore's below): themis-backup
# fsyncs its archive before it says done; tar | zstd leaves it in the page cache.
timed tarzstdsync "$REF && sync '$W/ref.tar.zst'"
PREP='rm -rf "$W/bk1"'
timed backup1 "themis-backup --database-path '$W/db' --backup-directory '$W/bk1' --compress --threads 1"
PREP='rm -rf "$W/bk2"'
timed backup2 "themis-backup --database-path '$W/db' --backup-directory '$W/bk2' --compress --threads 2"
rm -rf "$W/bk1" "$W/bk2"
PREP='rm -rf "$W/r"'
timed restore "themis-restore --backup-directory '$W/bk' --target '$W/r'"
PREP='rm -rf "$W/re"'
timed erestore "themis-restore --backup-directory '$W/bke' --target '$W/re' --key-file '$W/key'"
PREP='rm -rf "$W/x"; mkdir "$W/x"'
timed untar "zstd -q -dc '$W/ref.tar.zst' | tar -x -C '$W/x'"
PREP='rm -rf "$W/x"; mkdir "$W/x"'
# Restore's durability on the reference's side too: every extracted file fsync'd (sync FILE...).
timed untarsync "zstd -q -dc '$W/ref.tar.zst' | tar -x -C '$W/x' && find '$W/x' -type f -print0 | xargs -0 sync"
PREP=
timed verifyq "themis-restore --backup-directory '$W/bk' --verify-only --quick"
timed shasum "zstd -q -dc '$W/ref.tar.zst' | sha256sum > /dev/null"
timed verify "themis-restore --backup-directory '$W/bk' --verify-only"
timed everify "themis-restore --backup-directory '$W/bke' --verify-only --key-file '$W/key'"
timed verifyref "themis-restore --backup-directory '$W/bk' --verify-only --quick && themis-dbhash --database-path '$W/r' > /dev/null"
# RocksDB's BackupEngine, on the hard-linked copy too.
PREP='rm -rf "$W/be"'
timed ldbbackup "ldb --db='$W/dbl' --try_load_options backup --backup_dir='$W/be' > /dev/null"
PREP=
bound_parts db "$W/db" "$W/bk/backup.tar.zst" "$W/ref.tar.zst"

# The encrypted backups (timed above) must be ciphertext (backup.tar.zst.enc, TBCRYPT magic,
# no plain archive, unreadable without the key), so those rows cannot measure the plain
# path; the bench fails if not.
enc_fail() { echo "bench: the encrypted backup in $1 is not encrypted as expected: $2" >&2; exit 1; }
head -c 32 /dev/urandom > "$W/wrongkey"
for d in bke bkp; do
    [ -f "$W/$d/backup.tar.zst.enc" ] || enc_fail "$d" "no backup.tar.zst.enc"
    [ ! -e "$W/$d/backup.tar.zst" ] || enc_fail "$d" "a plain backup.tar.zst beside it"
    [ "$(head -c 7 "$W/$d/backup.tar.zst.enc")" = TBCRYPT ] || enc_fail "$d" "no TBCRYPT magic"
    [ -f "$W/$d/MANIFEST.json.enc" ] || enc_fail "$d" "no MANIFEST.json.enc"
    if themis-restore --backup-directory "$W/$d" --verify-only >/dev/null 2>&1; then
        enc_fail "$d" "themis-restore --verify-only without a key succeeded"
    fi
    if themis-restore --backup-directory "$W/$d" --verify-only --key-file "$W/wrongkey" >/dev/null 2>&1; then
        enc_fail "$d" "themis-restore --verify-only with a wrong key succeeded"
    fi
done
if zstd -q -dc "$W/bke/backup.tar.zst.enc" >/dev/null 2>&1; then enc_fail bke "zstd decompresses it"; fi
themis-restore --backup-directory "$W/bkp" --verify-only --quick --passphrase-file "$W/pass" >/dev/null ||
    enc_fail bkp "the passphrase does not open it"

# Incremental: about 5% more data written (the generator's bulk mode, with its flushes and
# compactions), then an incremental on the backup above beside a full backup of the same DB.
themis-loadgen --db "$W/db" --seed 9 --threads 1 --bytes $((DB_BYTES * 105 / 100)) >/dev/null
DB2_BYTES=$(du -sb "$W/db" | cut -f1)
cat "$W"/db/* > /dev/null
PREP='rm -rf "$W/bi"'
timed incr "themis-backup --database-path '$W/db' --backup-directory '$W/bi' --compress --incremental-from '$W/bk'"
PREP='rm -rf "$W/bf"'
timed full2 "themis-backup --database-path '$W/db' --backup-directory '$W/bf' --compress"
PREP=

# WAL-heavy: a one-write base, then BENCH_WAL_BATCHES writes (4 writers, 2PC) left in the
# WAL (1 GiB write buffer, no flush at exit, WAL kept). Replay of the archive into the base
# vs RocksDB's own recovery of the same WAL when it opens the DB.
# Method: wbase is a copy of the DB after its first write (nothing flushed; that write is in
# its WAL); wd is the same DB after all the writes, their WAL left as it is. Ours: archive
# wd's WAL once (not timed), then replay the archive into a fresh copy of wbase (replay
# skips what the base already holds). RocksDB: open a fresh copy of wd read-write, which
# recovers every WAL record into memtables and flushes them to L0 (avoid_flush_during_
# recovery is false), as replay does. ldb's get/scan/get_property open the DB read-only
# (WAL into memtables, nothing written), so the reference is `ldb delete` of a key that is
# not there: a read-write open, recovery, flush, one tombstone (it changes no content).
# Both end in the same content (themis-dbhash of the two results, printed in the row).
echo "generating a WAL of $BENCH_WAL_BATCHES writes..." >&2
themis-loadgen --db "$W/wd" --seed 2 --threads 1 --batches 1 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
cp -a "$W/wd" "$W/wbase"
themis-loadgen --db "$W/wd" --seed 3 --threads 4 --batches "$BENCH_WAL_BATCHES" --wal-ttl 3600 --no-flush-at-exit \
    --write-buffer 1G 2>/dev/null
WALS=$( (ls "$W"/wd/*.log "$W"/wd/archive/*.log 2>/dev/null || true) | tr '\n' ' ')
WAL_BYTES=$(cat $WALS | wc -c)
cat $WALS > /dev/null   # warm cache
timed walcat "cat $WALS > /dev/null"
timed waldump "themis-wal-dump --count $WALS > /dev/null"
timed walldb "for f in $WALS; do ldb dump_wal --walfile=\$f --header > /dev/null; done"
themis-wal-archive --database-path "$W/wd" --wal-directory "$W/wa" --once
PREP='rm -rf "$W/we"; cp -a "$W/wbase" "$W/we"'
timed replay "themis-wal-replay --wal-directory '$W/wa' --database-path '$W/we' > /dev/null"
PREP='rm -rf "$W/wc"; cp -a "$W/wd" "$W/wc"'
timed recovery "ldb --db='$W/wc' --try_load_options delete themis-bench-no-such-key > /dev/null"
PREP=
replay_ok=$([ "$(themis-dbhash --database-path "$W/we")" = "$(themis-dbhash --database-path "$W/wc")" ] && echo yes || echo NO)

# Scaling: backup, full verify and restore at 1x, 2x, 4x (median of BENCH_SCALE_RUNS), on databases compacted into
# their bottommost level (--compact): the raw generator output changes shape with size
# (more L0, more ZSTD), which would measure the data, not the tools.
declare -A S_BYTES
for k in 1 2 4; do
    sz=$(( $(numfmt --from=iec "$BENCH_SCALE_SIZE") * k ))
    echo "generating a $(numfmt --to=iec "$sz") database for scaling..." >&2
    themis-loadgen --db "$W/s$k" --seed 4 --threads 1 --bytes "$sz" --compact >/dev/null
    S_BYTES[$k]=$(du -sb "$W/s$k" | cut -f1)
    cat "$W"/s$k/* > /dev/null
    BENCH_RUNS_SAVE=$BENCH_RUNS; BENCH_RUNS=$BENCH_SCALE_RUNS
    PREP="rm -rf '$W/sb$k'"
    timed "sbackup$k" "themis-backup --database-path '$W/s$k' --backup-directory '$W/sb$k' --compress"
    PREP=
    timed "sverify$k" "themis-restore --backup-directory '$W/sb$k' --verify-only"
    PREP="rm -rf '$W/sr$k'"
    timed "srestore$k" "themis-restore --backup-directory '$W/sb$k' --target '$W/sr$k'"
    PREP=
    BENCH_RUNS=$BENCH_RUNS_SAVE
    rm -rf "$W/s$k" "$W/sb$k" "$W/sr$k"
done

ours=$(stat -c %s "$W/bk/backup.tar.zst"); ref=$(stat -c %s "$W/ref.tar.zst")
echo
echo "Data: $BENCH_SIZE requested, $((DB_BYTES / 1048576)) MiB database; median of $BENCH_RUNS runs; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo
echo "| row | ours | reference | ratio | target | verdict | our peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
row "backup, compressed (vs ldb checkpoint, then tar \| zstd -T0 -3)" backup tarzstd 1.10
row "backup, compressed, durable on both sides (vs the same, then sync of the archive)" backup tarzstdsync 1.10
row "restore (vs zstd -dc \| tar -x, then sync of every file)" restore untarsync 1.10
row "verify, checksums (vs zstd -dc \| sha256sum)" verifyq shasum 1.1
row "verify, full (vs quick verify + themis-dbhash)" verify verifyref 1.0
sizerow "$ours" "$ref"
ldbsize=$(du -sb "$W/be" | cut -f1)
faster=$(echo "${T_SEC[backup]} < ${T_SEC[ldbbackup]}" | bc -l)
printf '| backup vs RocksDB BackupEngine (ldb backup, uncompressed) | %.2f s, %d MiB | %.2f s, %d MiB | %s× time, %s× size | faster and smaller | %s | |\n' \
    "${T_SEC[backup]}" $((ours / 1048576)) "${T_SEC[ldbbackup]}" $((ldbsize / 1048576)) "$(ratio "${T_SEC[backup]}" "${T_SEC[ldbbackup]}")" \
    "$(ratio "$ours" "$ldbsize")" "$([ "$faster" = 1 ] && [ "$ours" -lt "$ldbsize" ] && echo PASS || echo MISS)"
isz=$(stat -c %s "$W/bi/backup.tar.zst"); fsz=$(stat -c %s "$W/bf/backup.tar.zst")
printf '| incremental after +%d%% data (vs a full backup of the same DB) | %.2f s, %d MiB | %.2f s, %d MiB | %s× time, %s× size | smaller | %s | %d MiB |\n' \
    $(( (DB2_BYTES - DB_BYTES) * 100 / DB_BYTES )) "${T_SEC[incr]}" $((isz / 1048576)) "${T_SEC[full2]}" $((fsz / 1048576)) \
    "$(ratio "${T_SEC[incr]}" "${T_SEC[full2]}")" "$(ratio "$isz" "$fsz")" "$([ "$isz" -lt "$fsz" ] && echo PASS || echo MISS)" $(( ${T_RSS[incr]} / 1024 ))
maxrss=0
for k in backup restore verify verifyq; do [ "${T_RSS[$k]}" -gt "$maxrss" ] && maxrss=${T_RSS[$k]}; done
printf '| memory: peak RSS of backup, restore, verify (full; quick) | %d, %d, %d; %d MiB | | | each ≤ 256 MiB | %s | %d MiB |\n' \
    $(( ${T_RSS[backup]} / 1024 )) $(( ${T_RSS[restore]} / 1024 )) $(( ${T_RSS[verify]} / 1024 )) $(( ${T_RSS[verifyq]} / 1024 )) \
    "$([ "$maxrss" -le $((256 * 1024)) ] && echo PASS || echo MISS)" $((maxrss / 1024))
echo
bound_lines db backup tarzstd "$ours" "$ref" ldbbackup "ldb backup"

# erow LABEL ENCRYPTED PLAIN: time (MiB/s of the DB), ratio, peak RSS of both
erow() {
    printf '| %s | %.2f s (%d MiB/s) | %.2f s (%d MiB/s) | %s× | %d MiB | %d MiB |\n' "$1" \
        "${T_SEC[$2]}" "$(echo "scale=0; $DB_BYTES / ${T_SEC[$2]} / 1048576" | bc)" \
        "${T_SEC[$3]}" "$(echo "scale=0; $DB_BYTES / ${T_SEC[$3]} / 1048576" | bc)" \
        "$(ratio "${T_SEC[$2]}" "${T_SEC[$3]}")" $(( ${T_RSS[$2]} / 1024 )) $(( ${T_RSS[$3]} / 1024 ))
}
esz=$(stat -c %s "$W/bke/backup.tar.zst.enc")
echo
echo "Encryption (AES-256-GCM, TBCRYPT 1): the same $((DB_BYTES / 1048576)) MiB database, median of $BENCH_RUNS runs, each timed right after its plain twin (the rows above);"
echo "checked: backup.tar.zst.enc with the TBCRYPT magic and no plain archive, verify without the key and with a wrong one fails"
echo
echo "| row | encrypted | plain | ratio (time) | encrypted peak RSS | plain peak RSS |"
echo "| --- | --- | --- | --- | --- | --- |"
erow "backup --compress --encrypt --key-file (vs --compress)" ebackup backup
erow "backup --compress --encrypt --passphrase-file (scrypt; vs --compress)" pbackup backup
erow "verify, full (--verify-only --key-file vs --verify-only)" everify verify
erow "restore (--key-file vs plain)" erestore restore
printf '| archive size (.tar.zst.enc vs .tar.zst) | %d bytes | %d bytes | %s× | | |\n' "$esz" "$ours" "$(echo "scale=5; $esz / $ours" | bc -l)"
echo
printf 'Encryption: backup %.2f× the plain backup'"'"'s time, full verify %.2f×, restore %.2f× (passphrase backup %.2f×)\n' \
    "$(ratio "${T_SEC[ebackup]}" "${T_SEC[backup]}")" "$(ratio "${T_SEC[everify]}" "${T_SEC[verify]}")" \
    "$(ratio "${T_SEC[erestore]}" "${T_SEC[restore]}")" "$(ratio "${T_SEC[pbackup]}" "${T_SEC[backup]}")"

echo
echo "WAL: $(echo $WALS | wc -w) files, $((WAL_BYTES / 1048576)) MiB, $BENCH_WAL_BATCHES writes by 4 writers with 2PC"
echo
echo "| row | ours | reference | ratio | target | verdict | our peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
gbs=$(echo "scale=2; $WAL_BYTES / ${T_SEC[waldump]} / 1000000000" | bc -l)
printf '| WAL decode: themis-wal-dump --count (vs cat) | %.2f s (%s GB/s) | %.2f s | %s× | ≥ 1 GB/s | %s | %d MiB |\n' "${T_SEC[waldump]}" "$gbs" \
    "${T_SEC[walcat]}" "$(ratio "${T_SEC[waldump]}" "${T_SEC[walcat]}")" "$([ "$(echo "$gbs >= 1" | bc -l)" = 1 ] && echo PASS || echo MISS)" $(( ${T_RSS[waldump]} / 1024 ))
sp=$(ratio "${T_SEC[walldb]}" "${T_SEC[waldump]}")
printf '| WAL decode vs ldb dump_wal --header (one process per file) | %.2f s | %.2f s | %s× faster | ≥ 5× faster | %s | |\n' "${T_SEC[waldump]}" \
    "${T_SEC[walldb]}" "$sp" "$([ "$(echo "$sp >= 5" | bc -l)" = 1 ] && echo PASS || echo MISS)"
row "replay into the base (vs RocksDB's recovery on a read-write open, ldb delete; same content: $replay_ok)" replay recovery 2.0 "$replay_ok"

echo
echo "Scaling (median of $BENCH_SCALE_RUNS runs at each size; $BENCH_SCALE_SIZE steps):"
echo
echo "| size | backup | per GiB | RSS | full verify | per GiB | RSS | restore | per GiB | RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
# scell NAME K: time, time per GiB, peak RSS
scell() {
    printf '%.2f s | %.2f s | %d MiB' "${T_SEC[$1$2]}" "$(echo "${T_SEC[$1$2]} * 1073741824 / ${S_BYTES[$2]}" | bc -l)" \
        $(( ${T_RSS[$1$2]} / 1024 ))
}
for k in 1 2 4; do
    printf '| %d×: %d MiB (%s× of 1×) | %s | %s | %s |\n' "$k" $(( ${S_BYTES[$k]} / 1048576 )) \
        "$(ratio "${S_BYTES[$k]}" "${S_BYTES[1]}")" "$(scell sbackup $k)" "$(scell sverify $k)" "$(scell srestore $k)"
done
lin() {  # lin NAME: PASS when time per byte at 2x and 4x is within 15% of 1x and RSS within 10%
    local t1 r1 v=PASS k
    t1=$(echo "${T_SEC[${1}1]} / ${S_BYTES[1]}" | bc -l); r1=${T_RSS[${1}1]}
    for k in 2 4; do
        [ "$(echo "d = ${T_SEC[$1$k]} / ${S_BYTES[$k]} / $t1 - 1; d <= 0.15 && d >= -0.15" | bc -l)" = 1 ] || v=MISS
        [ "$(echo "d = ${T_RSS[$1$k]} / $r1 - 1; d <= 0.10 && d >= -0.10" | bc -l)" = 1 ] || v=MISS
    done
    echo "$v"
}
echo
if [ "${S_BYTES[4]}" -ge $(( ${S_BYTES[1]} * 2 )) ]; then
    echo "Scaling verdicts (time per byte within ±15% of 1×, RSS within ±10%): backup $(lin sbackup), full verify $(lin sverify), restore $(lin srestore)"
else  # the generator grows a DB in steps of ~130 MiB on disk, so tiny sizes come out alike
    echo "Scaling verdicts: n/a (the 4× DB is not 2× the 1× one at BENCH_SCALE_SIZE=$BENCH_SCALE_SIZE; the generator's smallest DB is ~130 MiB)"
fi
echo
printf 'Threads: backup --compress --threads 1 %.2f s, --threads 2 %.2f s: the second core takes %s× off (%s× the time)\n' \
    "${T_SEC[backup1]}" "${T_SEC[backup2]}" "$(echo "scale=2; 1 - ${T_SEC[backup2]} / ${T_SEC[backup1]}" | bc -l)" \
    "$(ratio "${T_SEC[backup2]}" "${T_SEC[backup1]}")"
echo
echo "Throughput: backup $(echo "scale=0; $DB_BYTES / ${T_SEC[backup]} / 1048576" | bc) MiB/s, tar|zstd $(echo "scale=0; $DB_BYTES / ${T_SEC[tarzstd]} / 1048576" | bc) MiB/s, restore $(echo "scale=0; $DB_BYTES / ${T_SEC[restore]} / 1048576" | bc) MiB/s, zstd -dc|tar -x $(echo "scale=0; $DB_BYTES / ${T_SEC[untar]} / 1048576" | bc) MiB/s"

echo
dbbench_section
echo
policies_section
