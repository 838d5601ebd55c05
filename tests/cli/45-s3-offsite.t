#!/usr/bin/env bash
# Offsite end to end: under load, a backup piped to S3 and a backup directory synced there,
# WAL segments pushed as they close; then the local copies are deleted and the database is
# recovered from the bucket alone to a target time, equal to the generator's ground truth.
. "$(dirname "$0")/lib.sh"

s3_server
B=s3://$TB_S3_BUCKET
# The writer runs until the backups are taken and more is written after them (SIGTERM), not
# for a fixed time: on a loaded machine a fixed time ended before the backups began.
themis-loadgen --db "$T/db" --seed 33 --threads 3 --seconds 300 --flush-every 500 --wal-ttl 3600 \
    --checkpoint-dir "$T/truth" --checkpoint-every-ms 800 --ready-file "$T/ready" --log "$T/log" 2>"$T/lg.err" &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "load generator running"
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --follow --interval 50 --segment-seconds 1 \
    --push "$B/wal" -v 2>"$T/ar.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge 3000 ]"
themis-backup --database-path "$T/db" --stdout --compress | themis-s3 put - "$B/base.tar.zst"
is "${PIPESTATUS[*]}" "0 0" "themis-backup --stdout | themis-s3 put - under load"
themis-backup --database-path "$T/db" --backup-directory "$T/bk/b1" --compress; ok $? "a backup directory"
base=$(manifest_field "$T/bk/b1/MANIFEST.json" last_sequence)
like "$(themis-s3 sync "$T/bk" "$B/backups")" "^copied [1-9][0-9]* files$" "synced to the bucket"
n=$(wc -l < "$T/log")
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge $((n + 1500)) ]"
kill -TERM "$lg"; wait "$lg"; ok $? "load generator finished (SIGTERM, after more writes)"
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "archiver stops cleanly on SIGTERM"
like "$(grep -c '^themis-wal-archive: pushed ' "$T/ar.err")" '^([2-9]|[1-9][0-9]+)$' "segments were pushed as they closed"
ok "$(grep -q 'push failed' "$T/ar.err"; [ $? -ne 0 ]; echo $?)" "no push failed"
want_check=$(themis-wal-archive --check --wal-directory "$T/w")
rm -rf "$T/w" "$T/bk"
ok 0 "local WAL archive and backups deleted"
like "$(themis-s3 ls "$B/wal/" | cut -f3 | tr '\n' ' ')" "wal/cf.tsv wal/index.tsv" "the bucket holds the archive's index and CF map"

# Verify what is in the bucket, streamed.
run themis-restore --from "$B/base.tar.zst" --verify-only
is "$rc" 0 "themis-restore --from s3://... --verify-only${err:+: $err}"
themis-s3 get "$B/base.tar.zst" - | themis-restore --verify-only --from - >/dev/null
is "${PIPESTATUS[*]}" "0 0" "themis-s3 get - | themis-restore --verify-only --from -"
mkdir "$T/tmp"
TMPDIR=$T/tmp themis-s3 sync "$B/wal" "$T/w2" >/dev/null
is "$(themis-wal-archive --check --wal-directory "$T/w2")" "$want_check" "the pushed archive checks like the local one did"

# Recover to the last ground-truth checkpoint, from the bucket alone.
IFS=$'\t' read -r name seq ts < <(tail -1 "$T/truth/checkpoints.tsv")
ok "$([ "$seq" -gt "$base" ]; echo $?)" "target $name (sequence $seq) is after the base ($base)"
want=$(themis-dbhash --read-only --database-path "$T/truth/$name")
TMPDIR=$T/tmp run themis-restore --backup-root "$B/backups" --wal-directory "$B/wal" --target-time "$(tsz "$ts")" --target "$T/r"
is "$rc" 0 "one-command recovery from s3:// backups and WAL${err:+: $err}"
is "$(themis-dbhash --database-path "$T/r")" "${want:-no truth hash}" "equals the generator's checkpoint at sequence $seq"
TMPDIR=$T/tmp themis-restore --from "$B/base.tar.zst" --target "$T/r2" >/dev/null; ok $? "restore of the streamed backup from s3://"
TMPDIR=$T/tmp run themis-wal-replay --wal-directory "$B/wal" --database-path "$T/r2" --target-time "$(tsz "$ts")"
is "$rc" 0 "themis-wal-replay --wal-directory s3://...${err:+: $err}"
like "$out" "reached sequence $seq " "reached exactly sequence $seq (the archiver's last pass after SIGTERM has the tail)"
is "$(themis-dbhash --database-path "$T/r2")" "${want:-no truth hash}" "equals the same checkpoint"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"

# Another archive pushed into that prefix (a second archiver, or a new archive after a
# recovery) is refused before it uploads anything: the bucket's archive keeps its index.
idx=$(themis-s3 get "$B/wal/index.tsv" - | sha256sum)
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w3" --once --push "$B/wal"
is "$rc" 1 "a new archive of the same database pushed to the old prefix: exit 1"
like "$err" "holds another WAL archive .*push this archive to a new prefix" "saying why: $err"
ok "$(one_line_error themis-wal-archive "$err"; echo $?)" "in one line"
is "$(themis-s3 get "$B/wal/index.tsv" - | sha256sum)" "$idx" "the bucket's index is untouched"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w3" --once --push "$B/wal-new"
is "$rc" 0 "the same archive pushed to a new prefix${err:+: $err}"
like "$(themis-s3 ls "$B/wal-new/" | cut -f3 | tr '\n' ' ')" "wal-new/index.tsv" "which holds its index"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w3" --once --push "$B/wal-new"
is "$rc" 0 "and pushing it there again is its own archive: accepted${err:+: $err}"

# Refusals.
run themis-wal-replay --wal-directory "$B/nothing-here" --database-path "$T/r2" --dry-run
is "$rc" 1 "an empty s3:// WAL location: exit 1"
ok "$(one_line_error themis-wal-replay "$err"; echo $?)" "in one line: $err"
run themis-wal-archive --database-path "$T/db" --push "$B/wal" --once
is "$rc" 2 "--push without --wal-directory is a usage error"
run env AWS_SECRET_ACCESS_KEY=wrong themis-restore --from "$B/base.tar.zst" --verify-only
is "$rc" 1 "a wrong secret: exit 1"
ok "$(one_line_error themis-restore "$err"; echo $?)" "in one line: $err"
done_testing
