#!/usr/bin/env bash
# Two runs of the same backup job (cron overlapping itself): the second refuses at once
# with a clear message and the first completes. SIGTERM during a backup: nothing is
# published and no temporary file is left, beside the DB or the destination. --nice and
# --io-nice set the priorities of the running backup's threads.
. "$(dirname "$0")/lib.sh"

make_db "$T/db" --batches 2000; ok $? "load generator wrote a database"
mkdir -p "$T/root"
slow="--compress --compress-level 19 --threads 1"
# The runs are held with SIGSTOP while the other side acts: no race with their speed.
themis-backup --database-path "$T/db" --backup-directory "$T/root/a" $slow 2>"$T/a.err" & first=$!
wait_for 30 bash -c "ls -a '$T/root' | grep -q '^\.a\.tmp-'"
ok $? "first backup holds the lock and is writing"
kill -STOP "$first"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b" --compress
is "$rc" 1 "a second backup into the same root: exit 1"
like "$err" "another themis-backup is writing into .*/root; not starting a second one" "says another run is writing there"
ok "$(one_line_error themis-backup "$err"; echo $?)" "in one line"
ok "$([ ! -e "$T/root/b" ]; echo $?)" "and wrote nothing"
kill -CONT "$first"; wait "$first"; is "$?" 0 "the first completes"
run themis-restore --backup-directory "$T/root/a" --verify-only --quick
is "$rc" 0 "and verifies"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b" --compress
is "$rc" 0 "once it is done, the next run proceeds"

# SIGTERM midway.
themis-backup --database-path "$T/db" --backup-directory "$T/root/c" $slow 2>"$T/c.err" & pid=$!
wait_for 30 bash -c "ls -a '$T/root' | grep -q '^\.c\.tmp-'"; ok $? "backup c is writing"
kill -STOP "$pid"; kill -TERM "$pid"; kill -CONT "$pid"; wait "$pid"; st=$?
ok "$([ "$st" -ne 0 ]; echo $?)" "SIGTERM: non-zero exit ($st)"
ok "$(one_line_error themis-backup "$(cat "$T/c.err")"; echo $?)" "one line: $(cat "$T/c.err")"
ok "$([ ! -e "$T/root/c" ]; echo $?)" "nothing published"
is "$(ls -A "$T/root" | tr '\n' ' ')" "a b " "nothing but the two backups in the destination"
is "$(ls -A "$T" | grep -c '^\.db\.tmp-')" 0 "no checkpoint left beside the database"

# Priorities, read off the running (held) backup and all its threads.
themis-backup --database-path "$T/db" --backup-directory "$T/root/d" $slow --nice 10 --io-nice idle 2>"$T/d.err" & pid=$!
wait_for 30 bash -c "ls -a '$T/root' | grep -q '^\.d\.tmp-'"; ok $? "backup d (--nice 10 --io-nice idle) is writing"
kill -STOP "$pid"
nices=$(for t in /proc/$pid/task/*; do awk '{ print $19 }' "$t/stat"; done | sort -u | tr '\n' ' ')
is "$nices" "10 " "every thread runs at niceness 10"
like "$(ionice -p "$pid")" "^idle" "and in the idle I/O class"
kill -CONT "$pid"; wait "$pid"; is "$?" 0 "and completes"
# --rate-limit (the limiter itself is measured in test_stream with a fake clock).
run themis-backup --database-path "$T/db" --backup-directory "$T/root/f" --compress --rate-limit 500M
is "$rc" 0 "--rate-limit 500M backs up${err:+ ($err)}"
run themis-restore --backup-directory "$T/root/f" --verify-only --rate-limit 500M
is "$rc" 0 "and verifies, also rate-limited"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/e" --rate-limit -5
is "$rc" 2 "--rate-limit -5 is a usage error"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/e" --rate-limit 0
is "$rc" 2 "--rate-limit 0 too"
like "$err" "MiB per second" "saying what it takes: $err"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/g" --compress --rate-limit 500
is "$rc" 0 "--rate-limit 500 (MiB per second) backs up${err:+ ($err)}"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/e" --nice 30
is "$rc" 2 "--nice 30 is a usage error"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/e" --io-nice fast
is "$rc" 2 "--io-nice fast is a usage error"
done_testing
