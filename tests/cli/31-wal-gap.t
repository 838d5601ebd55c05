#!/usr/bin/env bash
# A WAL purged before it was archived (WAL_ttl_seconds=0, archiver stopped, flushes) is a
# gap: the archiver and replay both refuse with exit 4 and name the missing range.
. "$(dirname "$0")/lib.sh"

# Run 1 (WAL deleted after each flush, as ThemisDB does by default); a backup early in it.
themis-loadgen --db "$T/db" --seed 9 --threads 2 --seconds 4 --flush-every 200 --wal-ttl 0 \
    --checkpoint-dir "$T/truth" --pause-file "$T/pause" --ready-file "$T/ready" --no-flush-at-exit 2>/dev/null &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "generator running with WAL_ttl_seconds=0"
touch "$T/pause"; wait_for 60 test -s "$T/pause.ack"
themis-backup --database-path "$T/db" --backup-directory "$T/early" >/dev/null 2>&1; ok $? "early backup"
rm -f "$T/pause"
wait "$lg"
# A last short run without flushes, so the live WAL surely holds records.
themis-loadgen --db "$T/db" --seed 11 --threads 1 --batches 100 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once
is "$rc" 0 "archiving what is left of the WAL works"
first=$(head -2 "$T/w/index.tsv" | tail -1 | cut -f1 | sed 's/^0*//')
base=$(manifest_field "$T/early/MANIFEST.json" last_sequence)
ok "$([ "$first" -gt $((base + 1)) ]; echo $?)" "the purged WAL is gone: the archive starts at $first, after the early base $base"
themis-restore --backup-directory "$T/early" --target "$T/r" >/dev/null
before=$(themis-dbhash --database-path "$T/r")
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
is "$rc" 4 "replay onto a base the archive does not reach back to: exit 4"
like "$err" "missing" "naming the missing sequences: $err"
is "$(themis-dbhash --database-path "$T/r")" "$before" "and the database is unchanged"

# Run 2 while no archiver runs: its WAL is flushed and deleted. The archiver then finds a gap.
themis-loadgen --db "$T/db" --seed 10 --threads 2 --batches 3000 --flush-every 200 --wal-ttl 0 2>/dev/null
ok $? "more writes and flushes with the archiver stopped"
themis-loadgen --db "$T/db" --seed 12 --threads 1 --batches 100 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once
is "$rc" 4 "the archiver reports the gap with exit 4"
like "$err" "WAL gap: sequences [0-9]+\\.\\.[0-9]+ are missing" "naming the range"
like "$err" "WAL_ttl_seconds.*--follow" "and what to change"
ok "$(one_line_error themis-wal-archive "$err"; echo $?)" "in one line"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 0 "what was archived before the gap is still good"
run themis-wal-archive --wal-directory "$T/w"
is "$rc" 2 "no mode is a usage error"
run themis-wal-replay --database-path "$T/r"
is "$rc" 2 "replay without an archive is a usage error"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "yesterday"
is "$rc" 2 "a malformed target time is a usage error"
done_testing
