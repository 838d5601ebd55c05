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

# SIGTERM in the middle of a pass (a server and its archiver stopped together): the pass
# finishes, the last pass follows, exit 0, nothing lost. The archiver is frozen (SIGSTOP)
# once it has read part of a WAL at a slow zstd level, so the signal lands inside the pass
# for certain. A long pass closes its segments as they fill, not one segment for it all.
# Two signals stop at once.
themis-loadgen --db "$T/big" --seed 7 --threads 2 --batches 1000 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "a WAL of $(du -sm "$T/big" | cut -f1) MiB written"
big_last=$(themis-dbhash -v --database-path "$T/big" | awk '$1 == "sequence" { print $2 }')
themis-wal-archive --database-path "$T/big" --wal-directory "$T/wb" --follow --interval 600000 \
    --compress-level 19 --segment-size 512k --progress=json 2>"$T/wb.err" & ar=$!
wait_for 120 grep -q '"bytes_done":[1-9]' "$T/wb.err"; ok $? "the first pass is under way"
kill -STOP "$ar"
ok "$([ ! -e "$T/wb/state.tsv" ] || [ "$(ls "$T"/wb/*-*.wal.zst 2>/dev/null | wc -l)" -lt 3 ]; echo $?)" \
    "and far from finished when the archiver is frozen"
kill -TERM "$ar"; kill -CONT "$ar"; wait "$ar"; is "$?" 0 "SIGTERM inside a pass: the archiver finishes and exits 0"
like "$(themis-wal-archive --wal-directory "$T/wb" --check)" "sequences [0-9]+\.\.$big_last," "and the archive reaches the last sequence $big_last"
nseg=$(grep -c . "$T/wb/index.tsv")
ok "$([ "$nseg" -ge 3 ]; echo $?)" "the one pass closed $nseg segments of about --segment-size"
themis-wal-archive --database-path "$T/big" --wal-directory "$T/wc" --follow --interval 600000 \
    --compress-level 19 --segment-size 512k --progress=json 2>"$T/wc.err" & ar=$!
wait_for 120 grep -q '"bytes_done":[1-9]' "$T/wc.err"; ok $? "another first pass under way"
kill -STOP "$ar"; kill -TERM "$ar"; kill -INT "$ar"; kill -CONT "$ar"
wait_for 60 bash -c "! kill -0 $ar 2>/dev/null"; ok $? "a second signal stops it at once"
wait "$ar"; st=$?
ok "$([ "$st" -ne 0 ]; echo $?)" "with a failure status ($st)"
like "$(cat "$T/wc.err")" "interrupted by signal" "and says so"
themis-wal-archive --database-path "$T/big" --wal-directory "$T/wc" --once; ok $? "a later run continues the archive"
like "$(themis-wal-archive --wal-directory "$T/wc" --check)" "sequences [0-9]+\.\.$big_last," "and it is whole"
done_testing
