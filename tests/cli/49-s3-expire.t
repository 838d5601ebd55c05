#!/usr/bin/env bash
# Retention in S3: test 37's root spanning 60 days (b4 incremental on b3) and its WAL archive,
# synced to a bucket. --dry-run prints what the local run on a copy prints and changes
# nothing in the bucket (listed with awscli); the real run removes exactly what the local run
# removes, the remote index names only segments that are there, and recovery from the bucket
# still works from every kept point. A failure (a missing WAL index, an unreachable server, a
# wrong secret, a missing bucket) is one line and exit 1, and removes nothing.
. "$(dirname "$0")/lib.sh"

s3_server
B=s3://$TB_S3_BUCKET
sixty_day_root
ok "$([ -d "$T/root/b6" ] && grep -q '"path": "../b3"' "$T/root/b4/MANIFEST.json"; echo $?)" "six backups over 60 days, b4 incremental on b3"
is "$(grep -vc '^#' "$T/w/index.tsv")" 6 "six WAL segments"
final=$(themis-dbhash --database-path "$T/db")
like "$(themis-s3 sync "$T/root" "$B/backups")" "^copied [1-9][0-9]* files$" "root synced to the bucket"
like "$(themis-s3 sync "$T/w" "$B/wal")" "^copied [1-9][0-9]* files$" "WAL archive synced to the bucket"
# The same policy run locally on a copy says what the bucket must lose.
cp -a "$T/root" "$T/lroot" && cp -a "$T/w" "$T/lw"
local_out() { themis-expire --backup-root "$T/lroot" --wal-directory "$T/lw" --keep-days 30 --keep-min 2 "$@" |
              sed "s|$T/lroot/|$B/backups/|; s|$T/lw/|$B/wal/|"; }
listing() { aws_ s3 ls --recursive "$B/" | awk '{ print $3, $4 }' | sort; }
before=$(listing)
like "$before" "backups/b1/backup.tar.zst" "awscli lists the synced root"
mkdir "$T/tmp"

# A failure before the first removal removes nothing: here the WAL archive is missing.
TMPDIR=$T/tmp run themis-expire --backup-root "$B/backups" --wal-directory "$B/no-wal" --keep-days 30 --keep-min 2
is "$rc" 1 "no index.tsv under the WAL location: exit 1"
ok "$(one_line_error themis-expire "$err"; echo $?)" "in one line: $err"
is "$(listing)" "$before" "and nothing removed from the bucket"

TMPDIR=$T/tmp run themis-expire --backup-root "$B/backups" --wal-directory "$B/wal" --keep-days 30 --keep-min 2 --dry-run
is "$rc" 0 "--dry-run on s3://${err:+ ($err)}"
is "$out" "$(local_out --dry-run)" "prints what the local --dry-run prints, with the s3:// names"
is "$(printf '%s\n' "$out" | grep '^would remove' | sed 's/ (created .*//' | sort | tr '\n' ' ')" \
   "would remove $B/backups/b1 would remove $B/backups/b2 $(printf "would remove $B/wal/%s " $(grep -v '^#' "$T/w/index.tsv" | head -3 | cut -f7))" \
   "would remove b1, b2 and the three oldest segments"
is "$(listing)" "$before" "and the bucket is unchanged (awscli)"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"
TMPDIR=$T/tmp themis-expire --backup-root "$B/backups" --wal-directory "$B/wal" --keep-days 30 --keep-min 2 --dry-run \
    --progress=json 2>"$T/p.err" >/dev/null
progress_json "$T/p.err" expire; ok $? "--progress=json on s3://: JSON lines that never fall"
like "$(tail -1 "$T/p.err")" '"bytes_done":[1-9][0-9]{5,},' "counting what it downloaded and verified"

TMPDIR=$T/tmp run themis-expire --backup-root "$B/backups" --wal-directory "$B/wal" --keep-days 30 --keep-min 2
is "$rc" 0 "expire --keep-days 30 --keep-min 2 on s3://${err:+ ($err)}"
want=$(local_out)
is "$out" "$want" "removes what the local run removes"
like "$out" "^removed $B/backups/b1 \(created " "says what it removed, by its s3:// name"
after=$(listing)
is "$(printf '%s\n' "$after" | awk '{ print $2 }' | grep '^backups/' | cut -d/ -f2 | sort -u | tr '\n' ' ')" "b3 b4 b5 b6 " \
   "b1 and b2 gone from the bucket; b3 (40 days) kept: b4 builds on it"
for b in 3 4 5 6; do
    is "$(printf '%s\n' "$after" | grep " backups/b$b/")" "$(printf '%s\n' "$before" | grep " backups/b$b/")" "b$b's objects untouched"
done
is "$(printf '%s\n' "$after" | awk '{ print $2 }' | grep '^wal/.*\.wal\.zst$' | sed 's|^wal/||' | sort | tr '\n' ' ')" \
   "$(ls "$T/lw" | grep 'wal\.zst$' | tr '\n' ' ')" "the bucket keeps exactly the segments the local run keeps"
is "$(printf '%s\n' "$after" | grep -c '\.wal\.zst$')" 3 "three segments removed"
aws_ s3 cp --quiet "$B/wal/index.tsv" "$T/index.tsv"
is "$(cat "$T/index.tsv")" "$(cat "$T/lw/index.tsv")" "the remote index is the local run's index"
missing=0
for s in $(grep -v '^#' "$T/index.tsv" | cut -f7); do printf '%s\n' "$after" | grep -q " wal/$s$" || missing=1; done
is "$missing:$(grep -vc '^#' "$T/index.tsv")" "0:3" "it names three segments, each in the bucket"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"

# Recovery from the bucket alone: one command to the end, and b3 (the oldest kept) to b4's point.
rm -rf "$T/root" "$T/w"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/backups" --wal-directory "$B/wal" --target-time 2099-01-01T00:00:00Z --target "$T/r"
is "$rc" 0 "one-command recovery from the expired bucket${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/r")" "$final" "reaches the final state"
TMPDIR=$T/tmp themis-restore --backup-directory "$B/backups/b3" --target "$T/r3" >/dev/null
TMPDIR=$T/tmp run themis-wal-replay --wal-directory "$B/wal" --database-path "$T/r3" --target-seq "${seq[4]}"
is "$rc" 0 "b3 from the bucket + the bucket's WAL to b4's sequence${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/r3")" "$(manifest_field "$T/lroot/b4/MANIFEST.json" content_hash_v2)" "equals b4"

TMPDIR=$T/tmp run themis-expire --backup-root "$B/backups/" --wal-directory "$B/wal/" --keep-days 30 --keep-min 2
is "$rc:$out" "0:kept 4 backups
kept 3 WAL segments (from sequence $(( ${seq[3]} + 1 )), the oldest kept backup's ${seq[3]} + 1 or an open Prepare before it)" \
   "again: nothing to do"

# The newest backup that verifies is kept whatever the policy says: the candidate is
# downloaded and checked, so a damaged b6 in the bucket does not count.
aws_ s3 cp --quiet "$B/backups/b6/backup.tar.zst" "$T/b6.tar.zst" && flip_byte "$T/b6.tar.zst" 100 &&
    aws_ s3 cp --quiet "$T/b6.tar.zst" "$B/backups/b6/backup.tar.zst"; ok $? "b6's archive damaged in the bucket (awscli)"
TMPDIR=$T/tmp run themis-expire --backup-root "$B/backups" --keep-days 0 --keep-min 1
is "$rc" 0 "--keep-days 0 --keep-min 1 with the newest backup damaged${err:+ ($err)}"
like "$err" "skipping .*b6" "b6 was tried and failed its check"
is "$(listing | awk '{ print $2 }' | grep '^backups/' | cut -d/ -f2 | sort -u | tr '\n' ' ')" "b5 b6 " \
   "keeps b6 (newest) and b5 (newest that verifies)"

# Encrypted backups and a sealed WAL archive: the key verifies the candidate and opens the
# segments read for open Prepares; the result again equals the local run's.
head -c 32 /dev/urandom > "$T/key"
for i in 1 2 3; do
    themis-loadgen --db "$T/edb" --seed "$((i + 10))" --threads 2 --batches 300 --wal-ttl 3600 2>/dev/null
    themis-wal-archive --database-path "$T/edb" --wal-directory "$T/ew" --once --encrypt --key-file "$T/key" 2>/dev/null
    themis-backup --database-path "$T/edb" --backup-directory "$T/eroot/e$i" --compress --encrypt --key-file "$T/key" \
        --created "$(ago "${days[$i]}")" 2>/dev/null
done
themis-loadgen --db "$T/edb" --seed 14 --threads 2 --batches 300 --wal-ttl 3600 2>/dev/null
themis-wal-archive --database-path "$T/edb" --wal-directory "$T/ew" --once --encrypt --key-file "$T/key" 2>/dev/null
themis-s3 sync "$T/eroot" "$B/enc/backups" >/dev/null && themis-s3 sync "$T/ew" "$B/enc/wal" >/dev/null
ok $? "encrypted root and sealed WAL archive synced"
want=$(themis-expire --backup-root "$T/eroot" --wal-directory "$T/ew" --keep-days 30 --keep-min 1 --key-file "$T/key" |
       sed "s|$T/eroot/|$B/enc/backups/|; s|$T/ew/|$B/enc/wal/|")
TMPDIR=$T/tmp run themis-expire --backup-root "$B/enc/backups" --wal-directory "$B/enc/wal" --keep-days 30 --keep-min 1 --key-file "$T/key"
is "$rc" 0 "expire --key-file on s3://${err:+ ($err)}"
is "$out" "$want" "removes what the local run removes"
is "$(printf '%s\n' "$out" | grep -c "^removed $B/enc/backups/e[12] \|^removed $B/enc/wal/.*\.wal\.zst$")" 5 \
   "e1, e2 and three sealed segments"
is "$(aws_ s3 ls --recursive "$B/enc/" | awk '{ print $4 }' | sed 's|^enc/||' | grep -v '^backups/e3/' | sort | tr '\n' ' ')" \
   "$(ls "$T/ew" | sed 's|^|wal/|' | sort | tr '\n' ' ')" \
   "the bucket keeps e3 and the segments the local run keeps"
rm -rf "$T/r"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/enc/backups" --wal-directory "$B/enc/wal" --target-time 2099-01-01T00:00:00Z --target "$T/r" --key-file "$T/key"
is "$rc:$(themis-dbhash --database-path "$T/r")" "0:$(themis-dbhash --database-path "$T/edb")" "and recovers from the bucket to the end${err:+ ($err)}"

# An archiver pushing to the bucket after a remote expire: its catch-up does not upload the
# removed segments again, and the index it pushes does not name them.
for i in 1 2 3; do
    themis-loadgen --db "$T/pdb" --seed "$((i + 20))" --threads 2 --batches 200 --wal-ttl 3600 2>/dev/null
    themis-wal-archive --database-path "$T/pdb" --wal-directory "$T/pw" --once --push "$B/pwal" 2>/dev/null
    [ "$i" = 2 ] && themis-backup --database-path "$T/pdb" --backup-directory "$T/proot/p1" >/dev/null
done
themis-s3 sync "$T/proot" "$B/proot" >/dev/null; ok $? "three pushed segments, a backup after the second, synced"
TMPDIR=$T/tmp run themis-expire --backup-root "$B/proot" --wal-directory "$B/pwal" --keep-days 30 --keep-min 1
is "$(printf '%s\n' "$out" | grep -c '^removed .*\.wal\.zst$')" 2 "remote expire removes the two segments before the backup${err:+ ($err)}"
themis-loadgen --db "$T/pdb" --seed 24 --threads 2 --batches 200 --wal-ttl 3600 2>/dev/null
run themis-wal-archive --database-path "$T/pdb" --wal-directory "$T/pw" --once --push "$B/pwal"
is "$rc" 0 "the archiver pushes its next segment${err:+ ($err)}"
segs=$(aws_ s3 ls "$B/pwal/" | awk '{ print $4 }' | grep 'wal\.zst$' | tr '\n' ' ')
is "$segs" "$(grep -v '^#' "$T/pw/index.tsv" | tail -2 | cut -f7 | tr '\n' ' ')" "the bucket holds the last two segments only (awscli)"
aws_ s3 cp --quiet "$B/pwal/index.tsv" "$T/pindex.tsv"
is "$(grep -v '^#' "$T/pindex.tsv" | cut -f7 | tr '\n' ' ')" "$segs" "and its index names exactly those"

# The local archive expired harder than the bucket (a shorter local policy): the next push
# keeps naming the older segments the bucket still holds, so its backups still reach them.
themis-backup --database-path "$T/pdb" --backup-directory "$T/lproot/p2" >/dev/null
themis-expire --backup-root "$T/lproot" --wal-directory "$T/pw" --keep-days 30 --keep-min 1 >/dev/null
ok "$(grep -v '^#' "$T/pw/index.tsv" | cut -f7 | grep -qF "${segs%% *}"; [ $? -ne 0 ]; echo $?)" "the local archive no longer has ${segs%% *}"
themis-loadgen --db "$T/pdb" --seed 25 --threads 2 --batches 200 --wal-ttl 3600 2>/dev/null
run themis-wal-archive --database-path "$T/pdb" --wal-directory "$T/pw" --once --push "$B/pwal"
is "$rc" 0 "the archiver pushes its next segment${err:+ ($err)}"
aws_ s3 cp --quiet "$B/pwal/index.tsv" "$T/pindex2.tsv"
is "$(grep -v '^#' "$T/pindex2.tsv" | cut -f7 | head -2 | tr '\n' ' ')" "$segs" "the bucket's index still names the two segments it had"
is "$(grep -v '^#' "$T/pindex2.tsv" | cut -f7 | tail -1)" "$(grep -v '^#' "$T/pw/index.tsv" | tail -1 | cut -f7)" "then the new one"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/proot" --wal-directory "$B/pwal" --target-time 2099-01-01T00:00:00Z --target "$T/pr"
is "$rc:$(themis-dbhash --database-path "$T/pr" 2>/dev/null)" "0:$(themis-dbhash --database-path "$T/pdb")" "the bucket's backup recovers through them to the end${err:+ ($err)}"

# Refusals: one line, exit 1, nothing removed.
after=$(listing)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TMPDIR=$T/tmp run env AWS_ENDPOINT_URL=http://127.0.0.1:$port themis-expire --backup-root "$B/backups" --keep-days 0 --keep-min 1
is "$rc" 1 "an unreachable server: exit 1"
ok "$(one_line_error themis-expire "$err"; echo $?)" "in one line: $err"
TMPDIR=$T/tmp run env AWS_SECRET_ACCESS_KEY=wrong themis-expire --backup-root "$B/backups" --keep-days 0 --keep-min 1
is "$rc" 1 "a wrong secret: exit 1"
ok "$(one_line_error themis-expire "$err"; echo $?)" "in one line: $err"
ok "$(printf '%s' "$err$out" | grep -qF "$AWS_SECRET_ACCESS_KEY"; [ $? -ne 0 ]; echo $?)" "the secret is not printed"
TMPDIR=$T/tmp run themis-expire --backup-root "s3://no-such-bucket-$$/backups" --keep-days 0 --keep-min 1
is "$rc" 1 "a missing bucket: exit 1"
like "$err" "NoSuchBucket" "naming it: $err"
TMPDIR=$T/tmp run themis-expire --backup-root "$B/nothing-here" --keep-days 0 --keep-min 1
is "$rc:$err" "1:themis-expire: no backup under $B/nothing-here" "an empty prefix: exit 1"
is "$(listing)" "$after" "the bucket is unchanged after the refusals"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"
done_testing
