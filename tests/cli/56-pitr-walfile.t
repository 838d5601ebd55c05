#!/usr/bin/env bash
# PITR by a written WAL file: `themis-wal-replay --as-wal-file` opens nothing; it writes the
# committed batches after the base up to the target into one new WAL file in the base, and
# the server's own RocksDB replays it when it opens the database. The server stand-in is
# themis-txnwriter --hash (its policy, ThemisDB's merge operator); its content hash must
# equal the writer's ground-truth checkpoint (to a time) and the normal replay's result
# (to a sequence), under write_committed, write_prepared and write_unprepared, with 2PC,
# rollbacks, merges and blob files, also onto a base that still holds its own WAL. A column
# family created after the base is added to its MANIFEST (or refused, 4, with
# --no-new-column-families). Debian's ldb replays the same kind of file into a
# write-committed base. Refusals leave the base byte for byte as it was: a target before
# the base (4), a damaged archive (3).
. "$(dirname "$0")/lib.sh"

# Every file of a directory with its size and SHA-256 (names starting with '.' too).
listing() { (cd "$1" && find . -printf '%p %s\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
hash_of() { themis-txnwriter --hash --db "$1" --policy "$2" --merge 2>&1; }
# Under seq_per_batch a checkpoint's sequence is a Prepare's when the Commit marker right
# after it is not published; the checkpoint holds that transaction, and replay must not
# apply it (its merge operands) again. Where the writer's WAL shows that shape right after
# the base, the comparison says so in its description.
lags() { themis-wal-dump --seqs "$1"/archive/*.log "$1"/*.log 2>/dev/null | grep -q "^$(($2 + 1)),0,[0-9]*,[0-9]*,COMMIT("; }
truth_is() {  # truth_is GOT WANT WRITER_DB BASE_SEQ DESCRIPTION
    if [ $p != committed ] && lags "$3" "$4"; then
        is "$1" "$2" "$5 (the Commit marker at $(($4 + 1)), right after the base, is in the base)"
    else
        is "$1" "$2" "$5"
    fi
}

for p in committed prepared unprepared; do
    themis-txnwriter --db "$T/$p" --policy $p --merge --blob --seed 4 --threads 2 --batches 300 --wal-ttl 3600 \
        --no-flush-at-exit --checkpoint-dir "$T/ck-$p" --checkpoint-at 100,200,250 2>"$T/$p.err"
    ok $? "$p: the writer ran (2PC, rollbacks, merges, blob files; a CF created after 150 writes)" || cat "$T/$p.err" >&2
    run themis-wal-archive --database-path "$T/$p" --wal-directory "$T/w-$p" --once
    is "$rc" 0 "$p: archived${err:+: $err}"
    IFS=$'\t' read -r n1 s1 t1 < <(sed -n 1p "$T/ck-$p/checkpoints.tsv")
    IFS=$'\t' read -r n2 s2 t2 < <(sed -n 2p "$T/ck-$p/checkpoints.tsv")
    IFS=$'\t' read -r n3 s3 t3 < <(sed -n 3p "$T/ck-$p/checkpoints.tsv")
    truth=$(hash_of "$T/ck-$p/$n3" $p)

    # To the third checkpoint's time, from the second (which has every CF).
    cp -a "$T/ck-$p/$n2" "$T/b-$p"
    before=$(ls "$T/b-$p")
    maxno=$(ls "$T/b-$p" | sed -n 's/^\(MANIFEST-\|OPTIONS-\)\{0,1\}0*\([0-9][0-9]*\).*/\2/p' | sort -n | tail -1)
    if [ $p = unprepared ]; then tool="themisdb-admin wal-replay"; else tool=themis-wal-replay; fi
    run $tool --wal-directory "$T/w-$p" --database-path "$T/b-$p" --as-wal-file --target-time "$(tsz "$t3")"
    is "$rc" 0 "$p: $tool --as-wal-file --target-time${err:+: $err}"
    new=$(comm -13 <(printf '%s\n' "$before") <(ls -a "$T/b-$p" | grep -v '^\.\.\?$'))
    like "$new" '^[0-9]{6}\.log$' "$p: exactly one new file, a WAL file ($new), no temporary left"
    ok "$([ "${new%.log}" -gt "$maxno" ]; echo $?)" "$p: numbered above every file of the base ($maxno)"
    like "$out" "wrote [0-9]+ batches \\([0-9]+ writes\\) as $T/b-$p/$new \\(header sequences $((s2 + 1))\\.\\." \
        "$p: it says what it wrote; the first header follows the base's sequence $s2"
    is "$(themis-wal-dump "$T/b-$p/$new" 2>&1 | grep -c 'PREPARE\|COMMIT\|ROLLBACK\|NOOP')" 0 "$p: plain batches only, no markers"
    truth_is "$(hash_of "$T/b-$p" $p)" "$truth" "$T/$p" "$s2" "$p: opened as the server would (its policy), it equals the ground truth at $n3"

    # To the same checkpoint's sequence: what the normal replay gives.
    cp -a "$T/ck-$p/$n2" "$T/f-$p"
    cp -a "$T/ck-$p/$n2" "$T/r-$p"
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/f-$p" --as-wal-file --target-seq "$s3"
    is "$rc" 0 "$p: --as-wal-file --target-seq $s3${err:+: $err}"
    reached=$(printf '%s' "$out" | sed -n 's/^reached sequence \([0-9]*\) .*/\1/p')
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/r-$p" --target-seq "$s3"
    is "$rc/$(printf '%s' "$out" | sed -n 's/^reached sequence \([0-9]*\) .*/\1/p')" "0/$reached" \
        "$p: the normal replay reaches the same sequence ($reached)"
    is "$(hash_of "$T/f-$p" $p)" "$(hash_of "$T/r-$p" $p)" "$p: and the same content"
    [ $p = unprepared ] || truth_is "$(hash_of "$T/f-$p" $p)" "$truth" "$T/$p" "$s2" "$p: which is the ground truth at $n3"

    # Refusals change nothing.
    cp -a "$T/ck-$p/$n2" "$T/u-$p"
    snap=$(listing "$T/u-$p")
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/u-$p" --as-wal-file --target-seq "$s1"
    is "$rc" 4 "$p: a target before the base: exit 4${err:+ ($err)}"
    is "$(listing "$T/u-$p")" "$snap" "$p: the base is unchanged, byte for byte"
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/u-$p" --as-wal-file --target-time "$(tsz "$t3")" --dry-run
    is "$rc" 0 "$p: --as-wal-file --dry-run${err:+: $err}"
    like "$out" "would write +$T/u-$p/[0-9]{6}\\.log: [0-9]+ records" "$p: --dry-run says which file it would write"
    is "$(listing "$T/u-$p")" "$snap" "$p: and writes nothing"
    if [ $p = committed ]; then
        cp -a "$T/w-$p" "$T/bad"
        seg=$(ls "$T"/bad/*.wal.zst | tail -1)
        flip_byte "$seg" $(( $(stat -c %s "$seg") / 2 ))
        run themis-wal-replay --wal-directory "$T/bad" --database-path "$T/u-$p" --as-wal-file --target-time "$(tsz "$t3")"
        is "$rc" 3 "a damaged archive: exit 3${err:+ ($err)}"
        ok "$(one_line_error themis-wal-replay "$err"; echo $?)" "in one line"
        is "$(listing "$T/u-$p")" "$snap" "the base is unchanged, byte for byte"
    fi

    # A column family created after the base: the server does not create CFs from a WAL
    # file, so it is added to the base's MANIFEST (a new MANIFEST, CURRENT switched), or,
    # with --no-new-column-families, refused.
    cp -a "$T/ck-$p/$n1" "$T/c-$p"
    snap=$(listing "$T/c-$p")
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/c-$p" --as-wal-file --no-new-column-families \
        --target-time "$(tsz "$t3")"
    is "$rc" 4 "$p: --no-new-column-families: a CF created after the base is refused: exit 4"
    like "$err" "^themis-wal-replay: column family 'signature_cache' \\(id 5\\) was created after the base.*let it be added$" \
        "$p: naming the CF and what to do"
    is "$(listing "$T/c-$p")" "$snap" "$p: the base is unchanged, byte for byte"
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/c-$p" --as-wal-file --target-time "$(tsz "$t3")" --dry-run
    like "$out" "would add +column families signature_cache \\(created after the base\\) as MANIFEST-[0-9]{6}" \
        "$p: --dry-run says it would add the CF"
    is "$(listing "$T/c-$p")" "$snap" "$p: and changes nothing"
    run themis-wal-replay --wal-directory "$T/w-$p" --database-path "$T/c-$p" --as-wal-file --target-time "$(tsz "$t3")"
    is "$rc" 0 "$p: without it, the CF is added${err:+: $err}"
    m=$(printf '%s' "$out" | sed -n 's/.*(\(MANIFEST-[0-9]*\), OPTIONS-[0-9]*)$/\1/p')
    ok "$([ -n "$m" ] && [ "$(cat "$T/c-$p/CURRENT")" = "$m" ] && [ "$(ls "$T/c-$p" | grep -c '^MANIFEST-')" = 2 ]; echo $?)" \
        "$p: as a new MANIFEST ($m) that CURRENT names, the old one beside it"
    truth_is "$(hash_of "$T/c-$p" $p)" "$truth" "$T/$p" "$s1" "$p: opened as the server would, it equals the ground truth at $n3 (the CF's writes included)"
done

# A base that still holds its own WAL (the database copied while its writers are held, its
# memtables unflushed): the server replays that WAL first, then ours.
for p in unprepared prepared committed; do
    rm -f "$T/pause" "$T/pause.ack" "$T/ready" "$T/wlog"
    themis-txnwriter --db "$T/o-$p" --policy $p --merge --blob --seed 6 --threads 2 --batches 400 --write-buffer 64M \
        --wal-ttl 3600 --no-flush-at-exit --checkpoint-dir "$T/ock-$p" --checkpoint-at 350 --pause-file "$T/pause" \
        --ready-file "$T/ready" --log "$T/wlog" 2>"$T/o-$p.err" &
    w=$!
    wait_for 60 bash -c "[ -f '$T/ready' ] && [ \$(wc -l < '$T/wlog') -ge 220 ]"
    touch "$T/pause"; wait_for 60 test -s "$T/pause.ack"
    cp -a "$T/o-$p" "$T/ob-$p"
    rm -f "$T/pause"; wait "$w"
    themis-wal-archive --database-path "$T/o-$p" --wal-directory "$T/ow-$p" --once
    ok "$(ls "$T/ob-$p"/*.log >/dev/null 2>&1; echo $?)" "$p: a base with its own WAL ($(ls "$T/ob-$p"/*.log | wc -l) file)"
    IFS=$'\t' read -r on _ ot < <(sed -n 2p "$T/ock-$p/checkpoints.tsv")
    run themis-wal-replay --wal-directory "$T/ow-$p" --database-path "$T/ob-$p" --as-wal-file --target-time "$(tsz "$ot")"
    is "$rc" 0 "$p: the WAL file written beside it${err:+: $err}"
    is "$(hash_of "$T/ob-$p" $p)" "$(hash_of "$T/ock-$p/$on" $p)" "$p: the server replays both: the ground truth at $on"
done

# A server with a wal_dir (the WAL in another directory): --db-wal-dir says where its WAL
# is; the file goes there, and the base's position counts that WAL.
rm -f "$T/pause" "$T/pause.ack" "$T/ready" "$T/wlog"
themis-txnwriter --db "$T/wd/db" --wal-dir "$T/wd/wal" --policy unprepared --merge --blob --seed 6 --threads 2 \
    --batches 400 --write-buffer 64M --wal-ttl 3600 --no-flush-at-exit --checkpoint-dir "$T/wd/ck" --checkpoint-at 350 \
    --pause-file "$T/pause" --ready-file "$T/ready" --log "$T/wlog" 2>"$T/wd.err" &
w=$!
wait_for 60 bash -c "[ -f '$T/ready' ] && [ \$(wc -l < '$T/wlog') -ge 220 ]"
touch "$T/pause"; wait_for 60 test -s "$T/pause.ack"
held=$(cat "$T/pause.ack")
cp -a "$T/wd/db" "$T/wd/bdb"; cp -a "$T/wd/wal" "$T/wd/bwal"
rm -f "$T/pause"; wait "$w"
themis-wal-archive --database-path "$T/wd/db" --db-wal-dir "$T/wd/wal" --wal-directory "$T/wd/arch" --once
# The ground truth after the base: a checkpoint later than the one the pause took (on a
# loaded machine the writers can pass the mark at 350 before they are held).
on=
IFS=$'\t' read -r on _ ot < <(awk -F'\t' -v b="$held" '$2 > b' "$T/wd/ck/checkpoints.tsv" | tail -1)
if [ -z "$on" ]; then
    for i in 1 2 3 4; do skip "no ground-truth checkpoint after the base: the writers passed the mark before they were held"; done
else
    snap=$(listing "$T/wd/bdb")
    run themis-wal-replay --wal-directory "$T/wd/arch" --database-path "$T/wd/bdb" --db-wal-dir "$T/wd/bwal" --as-wal-file \
        --target-time "$(tsz "$ot")"
    is "$rc" 0 "wal_dir: --db-wal-dir${err:+: $err}"
    like "$out" "as $T/wd/bwal/[0-9]{6}\\.log " "the file went into the WAL directory"
    is "$(listing "$T/wd/bdb")" "$snap" "nothing in the database directory changed"
    is "$(themis-txnwriter --hash --db "$T/wd/bdb" --wal-dir "$T/wd/bwal" --policy unprepared --merge 2>&1)" \
        "$(hash_of "$T/wd/ck/$on" unprepared)" "opened with its wal_dir as the server would: the ground truth at $on"
fi
run themis-wal-replay --wal-directory "$T/wd/arch" --database-path "$T/wd/bdb" --db-wal-dir "$T/wd/bwal"
is "$rc" 2 "--db-wal-dir without --as-wal-file is a usage error"

# A base whose own WAL ends inside a transaction (a live backup cuts the WAL at a record
# boundary, here right after a write-unprepared section whose Commit comes later): the
# server recovers that transaction from the base's WAL as prepared, so the file must
# finish it (its later sections under its xid, then its Commit marker) instead of writing
# its data as plain batches, which the server's rollback of the recovered transaction
# overwrote with the keys' earlier values (seen on a RocksDB 11.8.1 database backed up
# under load). Debian's ldb decodes the markers; the normal replay (which recovers the
# base first) reaches the same content.
themis-txnwriter --db "$T/ip" --policy unprepared --merge --blob --seed 7 --threads 2 --batches 300 --wal-ttl 3600 \
    --no-flush-at-exit --write-buffer 64M 2>/dev/null
themis-wal-archive --database-path "$T/ip" --wal-directory "$T/w-ip" --once 2>/dev/null
log=$(ls "$T/ip"/*.log | tail -1)
themis-wal-dump --seqs "$log" > "$T/ip.seqs"
# The first write-unprepared section (after the first 20 records) whose transaction commits later.
read -r line xid < <(awk -F, 'NR > 21 && /BEGIN_PREPARE\(true\)/ && match($0, /END_PREPARE\(0x[0-9A-F]*\)/) {
    x = substr($0, RSTART + 12, RLENGTH - 13); print NR, x }' "$T/ip.seqs" |
    while read -r n x; do grep -q "COMMIT($x)" "$T/ip.seqs" && { echo "$n $x"; break; }; done)
cut=$(sed -n "$((line + 1))p" "$T/ip.seqs" | cut -d, -f4)
cseq=$(grep -m1 "COMMIT($xid)" "$T/ip.seqs" | cut -d, -f1)
cp -a "$T/ip" "$T/ip0"   # the writer's files as they were: hash_of below opens $T/ip read-write
base_of() { rm -rf "$1" && cp -a "$T/ip0" "$1" && truncate -s "$cut" "$1/$(basename "$log")"; }
base_of "$T/ipb"
ok "$([ -n "$cut" ] && [ -n "$cseq" ]; echo $?)" "a base cut after a section of transaction $xid (record $line, offset $cut), committed at $cseq"
want=$(hash_of "$T/ip" unprepared)
# ends_with BASE MARKER XID: --as-wal-file into BASE; its file ends XID with MARKER (COMMIT or
# ROLLBACK), which Debian's ldb decodes; opened once as the server would, BASE holds the
# writer's own content.
ends_with() {
    run themis-wal-replay --wal-directory "$T/w-ip" --database-path "$1" --as-wal-file
    is "$rc" 0 "--as-wal-file past its $2${err:+: $err}"
    local new; new=$(cd "$1" && comm -13 <(cd "$T/ip0" && ls | sort) <(ls | sort) | grep '\.log$')
    is "$(ldb dump_wal --walfile="$1/$new" --header --write_committed=false 2>&1 | grep -c "$2($3)")" 1 \
        "the file ends the transaction with its $2 marker (ldb dump_wal reads it)"
    is "$(hash_of "$1" unprepared)" "$want" "opened once as the server would, it is the writer's own content"
}
ends_with "$T/ipb" COMMIT "$xid"
base_of "$T/ipb"
run themis-wal-replay --wal-directory "$T/w-ip" --database-path "$T/ipb"
is "$rc" 0 "the normal replay of the same base to the end${err:+: $err}"
is "$(hash_of "$T/ipb" unprepared)" "$want" "it is the writer's own content too"
# The same with a base cut right after a transaction's Prepare whose Rollback comes later
# (the writer rolls back some prepared transactions): the file must end it with a Rollback
# marker after the rollback batch, or the server's first open recovers it still prepared
# and shows other content (seen when the cut above fell inside such a transaction too).
read -r rline rxid < <(awk -F, 'NR > 1 && match($0, /END_PREPARE\(0x[0-9A-F]*\)/) {
    x = substr($0, RSTART + 12, RLENGTH - 13); print NR, x }' "$T/ip.seqs" |
    while read -r n x; do grep -q "ROLLBACK($x)" "$T/ip.seqs" && { echo "$n $x"; break; }; done)
cut=$(sed -n "$((rline + 1))p" "$T/ip.seqs" | cut -d, -f4)
base_of "$T/ipr"
ok "$([ -n "$cut" ] && [ -n "$rxid" ]; echo $?)" "a base cut after the Prepare of transaction $rxid (record $rline, offset $cut), rolled back later"
ends_with "$T/ipr" ROLLBACK "$rxid"

# Debian's ldb (RocksDB 7.8, a plain open) replays the file into a write-committed base (no
# merge operator: ldb has none): every CF scans as the ground truth's.
themis-txnwriter --db "$T/pl" --policy committed --blob --seed 5 --threads 2 --batches 300 --wal-ttl 3600 \
    --no-flush-at-exit --checkpoint-dir "$T/ck-pl" --checkpoint-at 200,250 2>/dev/null
themis-wal-archive --database-path "$T/pl" --wal-directory "$T/w-pl" --once
IFS=$'\t' read -r n1 s1 t1 < <(sed -n 1p "$T/ck-pl/checkpoints.tsv")
IFS=$'\t' read -r n2 s2 t2 < <(sed -n 2p "$T/ck-pl/checkpoints.tsv")
cp -a "$T/ck-pl/$n1" "$T/ldb"
cp -a "$T/ck-pl/$n2" "$T/ldb-truth"
run themis-wal-replay --wal-directory "$T/w-pl" --database-path "$T/ldb" --as-wal-file --target-time "$(tsz "$t2")"
is "$rc" 0 "write_committed without merges: the WAL file written${err:+: $err}"
same=0 rows=0
for cf in default pii_mappings prompt_templates release_manifests file_registry signature_cache; do
    a=$(ldb --db="$T/ldb" --try_load_options --column_family=$cf scan 2>&1)
    b=$(ldb --db="$T/ldb-truth" --try_load_options --column_family=$cf scan 2>&1)
    [ "$a" = "$b" ] && same=$((same + 1)) || diag "$cf differs"
    rows=$((rows + $(printf '%s\n' "$b" | grep -c .)))
done
is "$same" 6 "ldb --try_load_options scan: all six CFs as the ground truth ($rows rows)"
# And with a column family added: a base from before its creation.
themis-txnwriter --db "$T/pl2" --policy committed --blob --seed 5 --threads 2 --batches 300 --wal-ttl 3600 \
    --no-flush-at-exit --checkpoint-dir "$T/ck-pl2" --checkpoint-at 100,250 2>/dev/null
themis-wal-archive --database-path "$T/pl2" --wal-directory "$T/w-pl2" --once
IFS=$'\t' read -r m1 _ _ < <(sed -n 1p "$T/ck-pl2/checkpoints.tsv")
IFS=$'\t' read -r m2 _ u2 < <(sed -n 2p "$T/ck-pl2/checkpoints.tsv")
cp -a "$T/ck-pl2/$m1" "$T/ldb2"
cp -a "$T/ck-pl2/$m2" "$T/ldb2-truth"
run themis-wal-replay --wal-directory "$T/w-pl2" --database-path "$T/ldb2" --as-wal-file --target-time "$(tsz "$u2")"
is "$rc" 0 "a base without signature_cache: the file written${err:+: $err}"
like "$out" "added column families signature_cache" "and the CF added"
same=0
for cf in default signature_cache; do
    a=$(ldb --db="$T/ldb2" --try_load_options --column_family=$cf scan 2>&1)
    b=$(ldb --db="$T/ldb2-truth" --try_load_options --column_family=$cf scan 2>&1)
    [ "$a" = "$b" ] && [ -n "$b" ] && same=$((same + 1)) || diag "$cf differs: $(printf '%s' "$a" | head -1)"
done
is "$same" 2 "ldb --try_load_options: the added CF and the default one scan as the ground truth"
k=$(ldb --db="$T/ldb-truth" --try_load_options --column_family=pii_mappings scan 2>/dev/null | tail -1 | sed 's/ ==> .*//')
is "$(ldb --db="$T/ldb" --try_load_options --column_family=pii_mappings get "$k" 2>&1)" \
    "$(ldb --db="$T/ldb-truth" --try_load_options --column_family=pii_mappings get "$k" 2>&1)" "ldb get of a key written after the base"
done_testing
