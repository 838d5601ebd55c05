#!/usr/bin/env bash
# Stopping a following archiver archives what the server wrote before the stop: the last
# pass after SIGTERM reads the WAL to its end, even when the next poll was far off. And a
# replay whose target time lies after the archive's end says so (the archive may lag).
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/db" --seed 5 --threads 2 --batches 200 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "a first part written"
themis-backup --database-path "$T/db" --backup-directory "$T/base" >/dev/null; ok $? "base backup"
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --follow --interval 600000 2>"$T/ar.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 test -f "$T/w/state.tsv"; ok $? "archiver made its first pass (the next is 10 minutes away)"
themis-loadgen --db "$T/db" --seed 6 --threads 2 --batches 300 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "more written while the archiver sleeps"
last=$(themis-dbhash -v --database-path "$T/db" | awk '$1 == "sequence" { print $2 }')
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "archiver stops cleanly on SIGTERM"
like "$(themis-wal-archive --wal-directory "$T/w" --check)" "sequences [0-9]+\.\.$last," "the archive reaches the database's last sequence $last"

themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time 2099-01-01T00:00:00Z
is "$rc" 0 "replay to a time after the archive's end${err:+ ($err)}"
like "$out" "reached sequence $last " "reaches the archive's end"
like "$err" "note: the archive ends at .* \(sequence $last\), before the target time" "and notes that the archive ends before the target"
is "$(themis-dbhash --database-path "$T/r")" "$(themis-dbhash --database-path "$T/db")" "the result equals the database"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
is "$err" "" "no note without a target time"
done_testing
