#!/usr/bin/env bash
# themis-txnwriter writes like ThemisDB 1.3+ under each write policy: the WAL holds the
# markers each policy writes (checked by ldb and, byte by byte, by walscan.py), stamps where
# docs/wal-notes.md says, sequence numbers by its rules; the merge counter is the sum the
# writer logged; blob files, wal_dir and db_paths land where asked; ground-truth
# checkpoints appear and reopen as the server would (--hash), which hashes exactly as
# themis-dbhash does.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
scan() { python3 "$here/walscan.py" "$@"; }

for p in committed prepared unprepared; do
    themis-txnwriter --db "$T/$p" --policy $p --merge --blob --seed 4 --threads 2 --batches 200 \
        --write-buffer 64M --wal-ttl 3600 --no-flush-at-exit --log "$T/$p.log" \
        --checkpoint-dir "$T/ck-$p" --checkpoint-at 70,140 2>"$T/$p.err"
    ok $? "$p: the writer wrote 200 writes with 2 writers" || cat "$T/$p.err" >&2
    wals="$(ls "$T"/$p/archive/*.log 2>/dev/null) $(ls "$T"/$p/*.log)"   # in write order
    [ "$p" = committed ] && wc=true || wc=false
    dump=$(for f in $wals; do ldb dump_wal --walfile="$f" --header --write_committed=$wc; done 2>&1)
    tags=$(scan $wals)
    ok $? "$p: walscan reads every record"
    is "$(printf '%s\n' "$dump" | grep -c 'Failed\|error')" 0 "$p: ldb dump_wal --write_committed=$wc reads the WAL"
    like "$dump" "COMMIT\\(0x" "$p: ldb shows commit markers"
    like "$dump" "ROLLBACK\\(0x" "$p: ldb shows rollback markers"
    like "$dump" "BEGIN_PREPARE\\(false\\)" "$p: ldb shows prepare sections"
    # The tag bytes ldb does not tell apart: 0x09 BeginPrepare, 0x12 BeginPersistedPrepare,
    # 0x13 BeginUnprepare.
    read -r n09 n12 n13 < <(printf '%s\n' "$tags" |
        awk '{ for (i = 4; i <= NF; i++) c[$i]++ } END { print c["09"] + 0, c["12"] + 0, c["13"] + 0 }')
    case $p in
    committed)
        ok "$([ "$n09" -gt 0 ] && [ "$n12" = 0 ] && [ "$n13" = 0 ]; echo $?)" "$p: prepares are 0x09 ($n09), no 0x12/0x13"
        scan --check-committed $wals >"$T/check" ;;
    prepared)
        ok "$([ "$n09" = 0 ] && [ "$n12" -gt 0 ] && [ "$n13" = 0 ]; echo $?)" "$p: prepares are 0x12 ($n12), no 0x09/0x13"
        scan --check-per-batch $wals >"$T/check" ;;
    unprepared)
        ok "$([ "$n09" = 0 ] && [ "$n12" -gt 0 ] && [ "$n13" -gt 0 ]; echo $?)" "$p: 0x12 prepares ($n12) and 0x13 unprepared sections ($n13)"
        multi=$(printf '%s\n' "$dump" | grep -o 'BEGIN_PREPARE(true).*' | grep -o 'END_PREPARE(0x[0-9A-F]*)' \
            | sort | uniq -c | awk '$1 >= 2' | wc -l)
        ok "$([ "$multi" -ge 5 ]; echo $?)" "$p: $multi transactions wrote several unprepared sections"
        like "$dump" "BEGIN_PREPARE\\(true\\)" "$p: ldb shows them as BEGIN_PREPARE(true)"
        scan --check-per-batch $wals >"$T/check" ;;
    esac
    ok $? "$p: sequence numbers follow the documented rules: $(cat "$T/check")"
    # Stamps: first in every plain batch and transaction (after RocksDB's placeholder or
    # begin marker); unprepared: in each transaction's first section only.
    stamps=$(scan --check-stamps $wals)
    ok $? "$p: every write's first record is its TSv1 stamp (in a transaction's first section): ${stamps##*$'\n'}"

    # Merges: the counter (seeded "1000" as a decimal string) is the sum of the committed deltas.
    want=$(awk -F'\t' '$2 ~ /^(counter-init|batch|commit)/ { s += $3 } END { print s }' "$T/$p.log")
    ok "$([ "$want" -gt 1000 ]; echo $?)" "$p: the writer merged into the counter (sum $want)"
    is "$(themis-txnwriter --counter --db "$T/$p" --policy $p --merge 2>&1)" "$want" "$p: the counter reads as the logged sum"
    ok "$(ls "$T"/$p/*.blob >/dev/null 2>&1; echo $?)" "$p: --blob wrote blob files ($(ls "$T"/$p/*.blob | wc -l))"

    # Ground truth: checkpoints named by sequence, listed with their times; each reopens
    # as the server would; the last equals the database itself.
    is "$(wc -l <"$T/ck-$p/checkpoints.tsv")" 3 "$p: two checkpoints and the final one are listed"
    sides=$(scan --check-checkpoints "$T/ck-$p/checkpoints.tsv" $wals)
    ok $? "$p: stamps at or below a checkpoint's sequence are <= its time, above it later: ${sides##*$'\n'}"
    hashes=0
    for c in $(cut -f1 "$T/ck-$p/checkpoints.tsv"); do
        h=$(themis-txnwriter --hash --db "$T/ck-$p/$c" --policy $p --merge 2>&1) && [[ $h =~ ^[0-9a-f]{64}$ ]] && hashes=$((hashes + 1))
    done
    is "$hashes" 3 "$p: every checkpoint reopens with its policy and hashes"
    last=$(tail -1 "$T/ck-$p/checkpoints.tsv" | cut -f1)
    run themis-txnwriter --hash --db "$T/$p" --policy $p --merge
    is "$rc/$out" "0/$h" "$p: the database, its WAL replayed by a reopen, equals the final checkpoint $last"
done

# --rollback-merges: merges in transactions that roll back too. RocksDB undoes them, except
# WRITE_PREPARED's Prepare + Rollback, whose operand stays (rollback_merge_operands=false).
# (WRITE_COMMITTED writes nothing of a rolled-back transaction.)
for p in prepared unprepared; do
    themis-txnwriter --db "$T/rm-$p" --policy $p --merge --rollback-merges --threads 2 --batches 200 \
        --seed 8 --log "$T/rm-$p.log" 2>/dev/null
    sum() { awk -F'\t' -v re="$1" '$2 ~ re { s += $3 } END { print s + 0 }' "$T/rm-$p.log"; }
    want=$(sum '^(counter-init|batch|commit)'); kept=$(sum '^prepare-rollback')
    [ $p = prepared ] && want=$((want + kept)) && what="the committed deltas and the $kept rolled back after Prepare" \
        || what="the committed deltas only"
    ok "$([ "$(sum '^(prepare-)?rollback')" -gt 0 ] && [ "$kept" -gt 0 ]; echo $?)" "$p: rolled-back transactions merged too"
    is "$(themis-txnwriter --counter --db "$T/rm-$p" --policy $p --merge 2>&1)" "$want" "$p: the counter holds $what"
done

# themis-txnwriter --hash and themis-dbhash agree where both can open the database.
themis-txnwriter --db "$T/plain" --policy committed --blob --threads 2 --batches 200 2>/dev/null
a=$(themis-dbhash --database-path "$T/plain" 2>&1)
b=$(themis-txnwriter --hash --db "$T/plain" --policy committed 2>&1)
ok "$([[ $a =~ ^[0-9a-f]{64}$ ]] && [ "$a" = "$b" ]; echo $?)" "--hash equals themis-dbhash on a WRITE_COMMITTED database without merges"
a=$(themis-dbhash --hash-version 1 --database-path "$T/plain" 2>&1)
b=$(themis-txnwriter --hash --hash-version 1 --db "$T/plain" --policy committed 2>&1)
ok "$([[ $a =~ ^[0-9a-f]{64}$ ]] && [ "$a" = "$b" ]; echo $?)" "and so does --hash-version 1 (themis-dbhash-v1)"

# wal_dir and db_paths: the WAL only in the WAL directory, SSTs spread over both paths
# (blob files go to the first), nothing of either in the database directory.
themis-txnwriter --db "$T/l/db" --wal-dir "$T/l/wal" --db-paths "$T/l/p1,$T/l/p2" --policy unprepared \
    --merge --blob --threads 2 --batches 400 --checkpoint-dir "$T/l/ck" --checkpoint-at 200 2>"$T/l.err"
ok $? "wal_dir and db_paths: the writer ran" || cat "$T/l.err" >&2
count() { ls "$1" | grep -c "\\.$2\$"; }
ok "$([ "$(count "$T/l/wal" log)" -ge 1 ] && [ "$(count "$T/l/db" log)" = 0 ]; echo $?)" "the WAL is in the WAL directory only"
ok "$([ "$(count "$T/l/p1" sst)" -ge 1 ] && [ "$(count "$T/l/p2" sst)" -ge 1 ] && [ "$(count "$T/l/db" sst)" = 0 ]; echo $?)" \
    "SSTs spread over both db_paths ($(count "$T/l/p1" sst) and $(count "$T/l/p2" sst)), none in the database directory"
ok "$([ "$(count "$T/l/p1" blob)" -ge 1 ]; echo $?)" "blob files in the first db_path"
is "$(wc -l <"$T/l/ck/checkpoints.tsv")" 2 "checkpoints of a db_paths database (content copies) are listed"
last=$(tail -1 "$T/l/ck/checkpoints.tsv" | cut -f1)
a=$(themis-txnwriter --hash --db "$T/l/ck/$last" --policy unprepared --merge 2>&1)
b=$(themis-txnwriter --hash --db "$T/l/db" --wal-dir "$T/l/wal" --db-paths "$T/l/p1,$T/l/p2" --policy unprepared --merge 2>&1)
ok "$([[ $a =~ ^[0-9a-f]{64}$ ]] && [ "$a" = "$b" ]; echo $?)" "the database reopened with its wal_dir and db_paths equals its final checkpoint"

# Bulk mode (benchmark databases): about N bytes, mostly left in the WAL.
themis-txnwriter --db "$T/bulk" --policy unprepared --merge --blob --bytes 4M --write-buffer 64M \
    --no-flush-at-exit --log "$T/bulk.log" 2>/dev/null
ok $? "--bytes: the bulk writer ran"
size=$(cat "$T"/bulk/*.log "$T"/bulk/*.sst "$T"/bulk/*.blob 2>/dev/null | wc -c)
ok "$([ "$size" -ge $((4 << 20)) ] && [ "$size" -lt $((8 << 20)) ]; echo $?)" "--bytes 4M wrote $size bytes of data files"
want=$(awk -F'\t' '$2 ~ /^(counter-init|commit)/ { s += $3 } END { print s }' "$T/bulk.log")
is "$(themis-txnwriter --counter --db "$T/bulk" --policy unprepared --merge 2>&1)" "$want" "--bytes: the counter reads as the logged sum"

run themis-txnwriter --db "$T/x" --policy optimistic
is "$rc" 2 "an unknown policy is a usage error"
done_testing
