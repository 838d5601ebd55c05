#!/usr/bin/env bash
# Write-prepared and write-unprepared WALs (RocksDB's seq_per_batch): our decoder prints
# what `ldb dump_wal --write_committed=false` prints; the sequences we give each op and
# record agree with RocksDB's (the writer's latest sequence after each scripted step, the
# next record's header); `themis-wal-archive --once` archives such a WAL with every
# sequence accounted for and `--check` accepts it; replay of the archive into an empty
# database gives the writer's content (committed transactions, never a rolled-back one).
# Writers: fixtures/themis-walmini.cc (every kind of write once, then 4 concurrent
# writers, restarts) and fixtures/themis-txnwriter.cc.
. "$(dirname "$0")/lib.sh"

# Our dump and ldb's, line by line, for every WAL file of database $1.
same_as_ldb() {
    local n=0 same=0 f
    for f in "$1"/*.log "$1"/archive/*.log; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        themis-wal-dump --print-value "$f" | sed 's/ *$//' > "$T/ours"
        ldb dump_wal --walfile="$f" --header --print_value --write_committed=false 2>&1 | sed 's/ *$//' > "$T/ldb"
        if cmp -s "$T/ours" "$T/ldb"; then same=$((same + 1)); else diag "differs: $f"; diff "$T/ours" "$T/ldb" | head -5 | sed 's/^/# /'; fi
    done
    [ "$n" -gt 0 ] && [ "$same" -eq "$n" ]
}

# Continuity as our decoder sees it, per file: each header at or after the previous
# record's NEXT, by at most the sequences owed (UNLOGGED, taken without WAL); prints the
# number of records and of jumps, or fails naming the first bad record.
chain() {
    themis-wal-dump --seqs "$@" | awk -F, '
        NR == 1 { next }
        { hdr = $1 + 0
          if (have && (hdr < next_ || hdr - next_ > owed)) { print "bad record at " hdr ": expected " next_ " owing " owed; exit 1 }
          if (have && hdr > next_) { jumps++; owed -= hdr - next_ }
          match($0, /NEXT\([0-9]+\)/); next_ = substr($0, RSTART + 5, RLENGTH - 6) + 0
          if (match($0, /UNLOGGED\([0-9]+\)/)) owed += substr($0, RSTART + 9, RLENGTH - 10)
          have = 1; n++ }
        END { print n " records, " jumps + 0 " jumps" }'
}

for policy in prepared unprepared; do
    db=$T/db-$policy
    themis-walmini --db "$db" --policy "$policy" --threads 4 --writes 150 > "$T/$policy.out"
    ok $? "$policy: themis-walmini wrote the scripted writes and 4 concurrent writers"
    log=$(ls "$db"/*.log | head -1)
    same_as_ldb "$db"; ok $? "$policy: themis-wal-dump prints every record as ldb dump_wal --write_committed=false does"
    seqs=$(themis-wal-dump --seqs "$log")
    step() { awk -F'\t' -v s="$1" '$1 == "STEP" && $2 == s { print $3 }' "$T/$policy.out"; }
    # The scripted part, against the latest sequence RocksDB reported after each step.
    like "$seqs" '^1,1,[0-9]+,0,NOOP PUT\(0\)@1 : 0x7031 NOOP NEXT\(2\) UNLOGGED\(1\)$' \
        "$policy: db->Put: one sub-batch at 1, and one sequence owed (its commit, without WAL)"
    is "$(step 'db->Put p1')" 1 "$policy: RocksDB's latest sequence after it: 1"
    like "$seqs" '^3,3,[0-9]+,[0-9]+,PUT\(0\)@3 : 0x61 PUT\(0\)@3 : 0x62 PUT\(0\)@3 : 0x63 NOOP NEXT\(4\) UNLOGGED\(1\)$' \
        "$policy: the next write starts at 3 (2 was taken without WAL); three keys, one sequence"
    like "$seqs" '^5,3,[0-9]+,[0-9]+,PUT\(0\)@5 : 0x61 PUT\(0\)@5 : 0x62 PUT\(0\)@6 : 0x61 NOOP NEXT\(7\) UNLOGGED\(1\)$' \
        "$policy: a key repeated in a batch starts a new sub-batch"
    is "$(step 'Write a,b,a (repeated key)')" 6 "$policy: RocksDB's latest: 6"
    is "$(step 'Write LogData only')" 6 "$policy: a batch of only LogData writes nothing"
    like "$seqs" '^8,2,[0-9]+,[0-9]+,NOOP PUT\(0\)@8 : 0x7431 PUT\(0\)@8 : 0x7432 NOOP NEXT\(9\) UNLOGGED\(1\)$' \
        "$policy: a skip_prepare commit: the placeholder Noop, one sub-batch, the closing Noop"
    like "$seqs" '^13,2,[0-9]+,[0-9]+,NOOP PUT\(0\)@13 : 0x7434 DELETE\(0\)@14 : 0x7434 NOOP NEXT\(15\) UNLOGGED\(1\)$' \
        "$policy: a Put and a Delete of one key: two sub-batches"
    like "$seqs" '^16,3,[0-9]+,[0-9]+,BEGIN_PREPARE\(false\) PUT\(0\)@16 : 0x7131 PUT\(0\)@16 : 0x7132 PUT\(0\)@16 : 0x6D END_PREPARE\(0x7831\) NEXT\(17\)$' \
        "$policy: a Prepare (0x12) is one sub-batch and owes nothing"
    like "$seqs" '^17,0,[0-9]+,[0-9]+,COMMIT\(0x7831\) NEXT\(18\)$' "$policy: its Commit takes its own sequence, 17"
    is "$(step '  prepared x1')" 16 "$policy: RocksDB's latest after the Prepare: 16"
    is "$(step 'txn prepare+commit x1')" 16 "$policy: and after the Commit still 16 (a commit marker's sequence is not published)"
    like "$seqs" '^19,3,[0-9]+,[0-9]+,[^@]*@19 : [^@]*@19 : [^@]*@19 : [^@]*ROLLBACK\(0x7832\) NEXT\(20\)$' \
        "$policy: a Rollback: the keys' earlier state and the marker, one sub-batch"
    like "$seqs" '^20,0,[0-9]+,[0-9]+,NOOP NEXT\(21\)$' "$policy: then its commit record (empty LogData, Noop), one sequence"
    is "$(step 'txn rollback without prepare x3')" 19 "$policy: a rollback without prepare writes nothing"
    if [ "$policy" = unprepared ]; then
        like "$seqs" '^25,1,[0-9]+,[0-9]+,BEGIN_PREPARE\(true\) PUT\(1\)@25 : 0x756330 END_PREPARE\(0x7563\) NEXT\(26\)$' \
            "unprepared: sections (0x13) of one transaction, one sequence each"
        like "$seqs" '^28,1,[0-9]+,[0-9]+,BEGIN_PREPARE\(false\) PUT\(0\)@28 : 0x6D END_PREPARE\(0x7563\) NEXT\(29\)$' \
            "unprepared: the rest as a persisted prepare (0x12) at the commit"
        like "$seqs" '^29,0,[0-9]+,[0-9]+,COMMIT\(0x7563\) NEXT\(30\)$' "unprepared: then the Commit"
        is "$(step 'unprepared sections, skip_prepare commit')" 28 "unprepared: RocksDB's latest after it: 28"
        like "$seqs" '^38,4,[0-9]+,[0-9]+,.*DELETE\(1\)@38 : 0x524F4C4C4132 .*ROLLBACK\(0x524F4C4C41\) NEXT\(39\)$' \
            "unprepared: a rollback without prepare of written sections: a rollback batch"
    fi
    out=$(chain "$log"); ok $? "$policy: every record follows the one before within what is owed ($out)"
    jumps=$(printf '%s' "$out" | sed 's/.*, \([0-9]*\) jumps/\1/')
    ok "$([ "$jumps" -gt 5 ]; echo $?)" "$policy: including $jumps jumps over sequences taken without WAL"

    run themis-wal-archive --database-path "$db" --wal-directory "$T/w-$policy" --once -v
    is "$rc" 0 "$policy: themis-wal-archive --once"
    like "$err" "write policy write_$policy" "$policy: the policy detected from the WAL: write_$policy"
    records=$(ldb dump_wal --walfile="$log" --header --write_committed=false | tail -n +2 | wc -l)
    last=$(printf '%s\n' "$seqs" | tail -1 | sed 's/.*NEXT(\([0-9]*\)).*/\1/')
    run themis-wal-archive --wal-directory "$T/w-$policy" --check
    is "$rc" 0 "$policy: --check accepts it${err:+: $err}"
    is "$out" "$records records, sequences 1..$((last - 1)), checksums and continuity good" \
        "$policy: every record ldb shows, sequences 1..$((last - 1)) without a gap"
    grep -q "^policy	write_$policy$" "$T/w-$policy/state.tsv"; ok $? "$policy: state.tsv records the policy"
    run themis-wal-archive --database-path "$db" --wal-directory "$T/w-$policy" --once --write-policy write_committed
    is "$rc" 2 "$policy: --write-policy write_committed on this archive is refused${err:+: $err}"

    themis-walmini --db "$T/r-$policy" --create-empty
    run themis-wal-replay --wal-directory "$T/w-$policy" --database-path "$T/r-$policy"
    is "$rc" 0 "$policy: replay into an empty database${err:+: $err}"
    themis-walmini --db "$T/r-$policy" --dump | sort > "$T/got"
    grep '^KV' "$T/$policy.out" | sort > "$T/want"
    cmp -s "$T/got" "$T/want"; ok $? "$policy: the content equals the writer's ($(wc -l < "$T/want") keys)"
    ok "$(! grep -q ROLL "$T/got"; echo $?)" "$policy: no byte of a rolled-back transaction"
done

# A fresh archive told the policy gives the same archive; write-committed still decodes.
run themis-wal-archive --database-path "$T/db-prepared" --wal-directory "$T/w-told" --once --write-policy write_prepared
is "$rc" 0 "--write-policy write_prepared${err:+: $err}"
is "$(themis-wal-archive --wal-directory "$T/w-told" --check)" "$(themis-wal-archive --wal-directory "$T/w-prepared" --check)" \
    "the same records and sequences as detected"
themis-walmini --db "$T/db-committed" --policy committed > "$T/committed.out"
run themis-wal-archive --database-path "$T/db-committed" --wal-directory "$T/w-committed" --once -v
is "$rc" 0 "write_committed: archives"
like "$err" "write policy write_committed" "detected write_committed"
ok "$(! grep -q '^policy' "$T/w-committed/state.tsv"; echo $?)" "write_committed: state.tsv as before (no policy line)"
like "$(themis-wal-archive --wal-directory "$T/w-committed" --check)" "sequences 1\.\.$(awk -F'\t' '$1 == "STEP" { s = $3 } END { print s }' "$T/committed.out"), " \
    "write_committed: sequences up to the writer's last"

# Restarts: each open of a write-prepared DB takes one sequence past what its WAL
# recovered, in a new WAL file (after a Commit that is one more than owed); the archive,
# followed across them, stays exact.
themis-walmini --db "$T/db-restart" --policy prepared > /dev/null
themis-wal-archive --database-path "$T/db-restart" --wal-directory "$T/w-restart" --once 2>/dev/null
fine=0
for w in commit put commit commit put; do
    themis-walmini --db "$T/db-restart" --policy prepared --then "$w" > "$T/restart.out"
    run themis-wal-archive --database-path "$T/db-restart" --wal-directory "$T/w-restart" --once
    [ "$rc" -eq 0 ] && fine=$((fine + 1)) || diag "after a restart and a $w: $err"
done
is "$fine" 5 "five restarts (after Commits and after plain writes), each archived"
last=$(awk -F'\t' '$1 == "STEP" { s = $3 } END { print s }' "$T/restart.out")
is "$(themis-wal-archive --wal-directory "$T/w-restart" --check | sed 's/.*sequences \([0-9.]*\),.*/\1/')" "1..$last" \
    "--check: continuous through the restarts, to the writer's last sequence $last"

# Merge operands decode (replaying them needs the merge operator: see libbackup/rocks/merge.c).
themis-walmini --db "$T/db-merge" --policy prepared --merge > /dev/null
same_as_ldb "$T/db-merge"; ok $? "with merges: our dump is ldb's"
like "$(themis-wal-dump --seqs "$T"/db-merge/*.log)" "MERGE\\(0\\)@16 : 0x6D" "the prepared merge operand at the Prepare's sequence"
run themis-wal-archive --database-path "$T/db-merge" --wal-directory "$T/w-merge" --once
is "$rc" 0 "and archives${err:+: $err}"

# Replaying merge operands needs ThemisDB's merge operators in the tools (helper B's
# libbackup/rocks/merge.c, with its themis-mergewriter fixture): where they are, replay of a
# write-prepared log keeps a rolled-back prepared operand as RocksDB does (m = 1|ROLLED|2),
# and a write-unprepared one rolls it back.
if command -v themis-mergewriter >/dev/null; then
    for policy in prepared unprepared; do
        themis-walmini --db "$T/mg-$policy" --policy "$policy" --merge --threads 4 --writes 100 > "$T/mg-$policy.out"
        themis-wal-archive --database-path "$T/mg-$policy" --wal-directory "$T/mgw-$policy" --once 2>/dev/null
        themis-walmini --db "$T/mgr-$policy" --create-empty
        run themis-wal-replay --wal-directory "$T/mgw-$policy" --database-path "$T/mgr-$policy"
        is "$rc" 0 "merges, $policy: replay${err:+: $err}"
        themis-walmini --db "$T/mgr-$policy" --dump | sort > "$T/got"
        grep '^KV' "$T/mg-$policy.out" | sort > "$T/want"
        cmp -s "$T/got" "$T/want"; ok $? "merges, $policy: the content equals the writer's"
    done
    is "$(awk -F'\t' '$3 == "m" { print $4 }' "$T/got")" "1|2|uc|up" "unprepared: the rolled-back operands are gone"
    grep -q "	m	1|ROLLED|2$" "$T/mg-prepared.out"; ok $? "prepared: RocksDB keeps the rolled-back prepared operand, and so does replay"
else
    diag "themis-mergewriter is not built here: replay with merge operands runs where the merge operators are merged"
fi

# themis-txnwriter: ThemisDB 1.3+'s settings, 4 writers, blob files, merges, sections.
for policy in prepared unprepared; do
    themis-txnwriter --db "$T/tw-$policy" --policy "$policy" --threads 4 --batches 600 --wal-ttl 3600 \
        --no-flush-at-exit --merge 2>/dev/null
    ok $? "txnwriter $policy: wrote"
    same_as_ldb "$T/tw-$policy"; ok $? "txnwriter $policy: our dump is ldb's"
    run themis-wal-archive --database-path "$T/tw-$policy" --wal-directory "$T/tww-$policy" --once
    is "$rc" 0 "txnwriter $policy: archived${err:+: $err}"
    run themis-wal-archive --wal-directory "$T/tww-$policy" --check
    is "$rc" 0 "txnwriter $policy: --check ($out)"
done
done_testing
