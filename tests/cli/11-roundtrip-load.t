#!/usr/bin/env bash
# Round trip under load: the load generator writes with 4 threads (2PC, rollbacks, a CF
# created mid-run, flushes); backups taken meanwhile verify, restore, and hash as recorded;
# a backup taken while the generator holds its writers equals its own checkpoint at that
# sequence number.
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/db" --seed 11 --threads 4 --seconds 300 --flush-every 400 \
    --checkpoint-dir "$T/truth" --pause-file "$T/pause" --ready-file "$T/ready" \
    --log "$T/commits.tsv" >"$T/loadgen.log" 2>&1 &
lg=$!
on_exit "kill $lg 2>/dev/null; wait $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "load generator is writing"
# Let it write enough that flushes and compactions happen under the backups below.
wait_for 120 bash -c "[ \$(wc -l < '$T/commits.tsv') -ge 4000 ]"; ok $? "4000 batches committed"

like "$(themis-dbhash -v --database-path "$T/db" | grep opened)" "snapshot from files \(a process holds the DB\)" "dbhash of the live DB hashes a snapshot of its files"

# 1. A backup while the writers run.
run themis-backup --database-path "$T/db" --backup-directory "$T/live" --compress --threads 2
is "$rc" 0 "backup under load succeeds${err:+: $err}"
run themis-restore --backup-directory "$T/live" --verify-only
is "$rc" 0 "verify-only passes${err:+: $err}"
run themis-restore --backup-directory "$T/live" --target "$T/live-restored"
is "$rc" 0 "restore succeeds"
is "$(themis-dbhash --database-path "$T/live-restored")" "$(manifest_field "$T/live/MANIFEST.json" content_hash_v2)" \
    "restored database's content hash equals the manifest's"
seq=$(manifest_field "$T/live/MANIFEST.json" last_sequence)
ok "$([ "$seq" -gt 4000 ]; echo $?)" "the backup holds the writes made before it (sequence $seq)"

# 2. A backup while the generator holds its writers: ground truth at that sequence.
touch "$T/pause"
wait_for 60 test -s "$T/pause.ack"; ok $? "generator paused its writers and took its checkpoint"
truth_seq=$(cat "$T/pause.ack")
run themis-backup --database-path "$T/db" --backup-directory "$T/paused" --compress
is "$rc" 0 "backup of the paused (still open) database succeeds"
rm -f "$T/pause"
is "$(manifest_field "$T/paused/MANIFEST.json" last_sequence)" "$truth_seq" "backup's sequence equals the generator's"
ok "$([ "$truth_seq" -gt "$seq" ]; echo $?)" "and is later than the first backup's ($seq)"
run themis-restore --backup-directory "$T/paused" --target "$T/paused-restored"
is "$rc" 0 "restore succeeds"
truth=$(themis-dbhash --read-only --database-path "$T/truth/ckpt-$truth_seq")
is "$(themis-dbhash --database-path "$T/paused-restored")" "$truth" \
    "restored content hash equals the generator's own checkpoint at sequence $truth_seq"
is "$(manifest_field "$T/paused/MANIFEST.json" content_hash_v2)" "$truth" "and so does the manifest's"

# 3. The database the generator still writes was never opened read-write by us: it goes on.
n1=$(wc -l < "$T/commits.tsv")
wait_for 60 bash -c "[ \$(wc -l < '$T/commits.tsv') -gt $n1 ]"; ok $? "the generator goes on writing after the backups"
kill -TERM "$lg"; wait "$lg"; is "$?" 0 "the generator stops cleanly"
done_testing
