#!/usr/bin/env bash
# kill -9 at any moment leaves no backup that verifies under the final name, nothing half
# written there, and the next run removes what the killed one left behind.
. "$(dirname "$0")/lib.sh"

make_db "$T/db" --batches 20000; ok $? "load generator wrote a database"
for i in 1 2 3 4 5 6; do
    rm -rf "$T/bk"
    themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress --compress-level 19 &
    pid=$!
    # A random moment within the backup's run: this delay is the point of the test, not a wait.
    sleep "0.$(( RANDOM % 9 ))$(( RANDOM % 10 ))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -e "$T/bk" ]; then
        run themis-restore --backup-directory "$T/bk" --verify-only
        is "$rc" 0 "run $i: killed after publishing, and the published backup verifies"
    else
        run themis-restore --backup-directory "$T/bk" --verify-only
        ok "$([ "$rc" -ne 0 ]; echo $?)" "run $i: killed before publishing: nothing under the final name, verify-only refuses it (exit $rc)"
    fi
    leftovers=$(cd "$T" && ls -A | grep -E '^\.(bk|db)\.tmp-' | tr '\n' ' ')
    ok "$(cd "$T" && ls -A | grep -vE '^\.(bk|db)\.tmp-|^bk$|^db$|^\.(out|err|loadgen\.out)$' | grep -q .; [ $? -ne 0 ]; echo $?)" \
        "run $i: anything left behind is a hidden temporary ($leftovers)"
done
rm -rf "$T/bk"
run themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress
is "$rc" 0 "a new backup after the kills succeeds"
is "$(cd "$T" && ls -A | grep -cE '^\.(bk|db)\.tmp-')" 0 "and removed the killed runs' temporaries and checkpoints"
run themis-restore --backup-directory "$T/bk" --verify-only
is "$rc" 0 "and its backup verifies"

# SIGTERM stops a restore too: over an existing target (--force) the old contents stay
# whole, and the staging directory is removed. --rate-limit keeps it running long enough.
rm -rf "$T/r" && mkdir "$T/r" && echo keep >"$T/r/old"
themis-restore --backup-directory "$T/bk" --target "$T/r" --force --rate-limit 256k 2>"$T/rsig.err" &
pid=$!
wait_for 30 bash -c "ls -A '$T' | grep -q '^\.r\.tmp-'"; ok $? "restore started staging beside the target"
kill -TERM "$pid"
wait "$pid"; st=$?
is "$st" 1 "SIGTERM: the restore exits 1"
like "$(cat "$T/rsig.err")" "interrupted" "and says it was interrupted"
is "$(ls -A "$T/r")/$(cat "$T/r/old")" "old/keep" "the target it was to replace is untouched"
is "$(cd "$T" && ls -A | grep -c '^\.r\.')" 0 "no staging directory is left"

# SIGTERM (and SIGINT) stop a backup cleanly: temporaries removed, nothing published.
for sig in TERM INT; do
    rm -rf "$T/bk"
    themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress --compress-level 19 2>"$T/sig.err" &
    pid=$!
    wait_for 30 bash -c "ls -A '$T' | grep -q '^\.bk\.tmp-'"; ok $? "SIG$sig: the backup started staging"
    kill -$sig "$pid"
    wait "$pid"; st=$?
    if [ -e "$T/bk" ]; then
        skip "SIG$sig: the backup finished before the signal arrived"
    else
        is "$st" 1 "SIG$sig: the backup exits 1"
        like "$(cat "$T/sig.err")" "interrupted" "SIG$sig: and says it was interrupted"
        is "$(cd "$T" && ls -A | grep -cE '^\.(bk|db)\.tmp-')" 0 "SIG$sig: no temporary directory or checkpoint is left"
    fi
done
done_testing
