#!/usr/bin/env bash
# The load generator writes what the other tests rely on: deterministic data from a seed,
# the mid-run column family, ground-truth checkpoints, 2PC markers and TSv1 stamps.
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/a" --seed 5 --threads 1 --batches 2000 2>/dev/null; ok $? "one-thread run"
themis-loadgen --db "$T/b" --seed 5 --threads 1 --batches 2000 2>/dev/null
themis-loadgen --db "$T/c" --seed 6 --threads 1 --batches 2000 2>/dev/null
ha=$(themis-dbhash --database-path "$T/a"); hb=$(themis-dbhash --database-path "$T/b"); hc=$(themis-dbhash --database-path "$T/c")
is "$ha" "$hb" "same seed, one thread: identical content"
ok "$([ "$ha" != "$hc" ]; echo $?)" "another seed: different content"
cfs=$(ldb --db="$T/a" --try_load_options list_column_families 2>&1)
for cf in default pii_mappings prompt_templates release_manifests file_registry signature_cache; do
    like "$cfs" "$cf" "column family $cf exists"
done
like "$(themis-dbhash -v --database-path "$T/a" | grep signature_cache)" "signature_cache [1-9][0-9]* keys" "the mid-run column family got writes"

themis-loadgen --db "$T/d" --seed 1 --threads 4 --batches 3000 --checkpoint-dir "$T/ck" \
    --checkpoint-at 1000,2000 --no-flush-at-exit --wal-ttl 3600 --log "$T/log" 2>/dev/null
ok $? "four threads with checkpoints"
n=0; bad=0
while IFS=$'\t' read -r name seq ts; do
    n=$((n + 1))
    got=$(themis-dbhash -v --read-only --database-path "$T/ck/$name" | sed -n 's/^sequence //p')
    [ "$got" = "$seq" ] || { bad=$((bad + 1)); diag "$name: sequence $got, checkpoints.tsv says $seq"; }
done < "$T/ck/checkpoints.tsv"
ok "$([ "$n" -ge 2 ] && [ "$bad" -eq 0 ]; echo $?)" "every checkpoint ($n) opens at the sequence checkpoints.tsv gives"
is "$(wc -l < "$T/log")" 3000 "the log has a line per committed write"
like "$(cut -f2 "$T/log" | sort -u | tr '\n' ' ')" "batch.*commit.*rollback|batch commit rollback" "batches, commits and rollbacks were all written"

wal=$(for f in "$T"/d/*.log "$T"/d/archive/*.log; do [ -f "$f" ] && ldb dump_wal --walfile="$f" --header --try_load_options 2>/dev/null; done)
like "$wal" "BEGIN_PREPARE" "the WAL holds Prepare sections"
like "$wal" "COMMIT\\(" "and Commit markers"
like "$wal" "ROLLBACK\\(" "and Rollback markers"
stamps=$(cat "$T"/d/*.log "$T"/d/archive/*.log 2>/dev/null | grep -c -a 'TSv1')
ok "$([ "$stamps" -gt 0 ]; echo $?)" "the WAL holds TSv1 stamps ($stamps lines with one)"

# --compact: the same content, every table in the bottommost level (the bench's scaling rows).
l0_tables() { ldb --db="$1" dump_live_files 2>/dev/null | awk '/--- level 0 ---/{l0=1;next} /--- level/{l0=0} l0 && /^ [0-9]+:/{n++} END{print n+0}'; }
themis-loadgen --db "$T/ua" --seed 5 --threads 1 --batches 3000 --flush-every 500 2>/dev/null
themis-loadgen --db "$T/ca" --seed 5 --threads 1 --batches 3000 --flush-every 500 --compact 2>/dev/null; ok $? "--compact runs"
is "$(themis-dbhash --database-path "$T/ca")" "$(themis-dbhash --database-path "$T/ua")" "the same content as without it"
ok "$([ "$(l0_tables "$T/ua")" -gt 0 ]; echo $?)" "without it, tables in level 0 ($(l0_tables "$T/ua"))"
is "$(l0_tables "$T/ca")" 0 "with it, none"
run themis-loadgen --db "$T/e" --bogus
is "$rc" 2 "unknown flag exits 2"
run themis-loadgen --db "$T/e" --pause-file "$T/p"
is "$rc" 2 "a pause file without a checkpoint directory is a usage error"
done_testing
