#!/usr/bin/env bash
# Incremental backups through S3: a root of a full and two incrementals synced to the
# bucket verifies and restores from s3:// (the parents are fetched beside the child), and
# one-command recovery from the s3:// root picks the newest and fetches its chain. A
# missing parent in the bucket is exit 3 naming it.
. "$(dirname "$0")/lib.sh"

s3_server
B=s3://$TB_S3_BUCKET
gen() { themis-loadgen --db "$T/db" --seed "$1" --threads 2 --batches "$2" --wal-ttl 3600 "${@:3}" 2>/dev/null; }
gen 21 2000 --flush-every 250
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
themis-backup --database-path "$T/db" --backup-directory "$T/root/b1" --compress 2>/dev/null
gen 22 300 --no-flush-at-exit --write-buffer 64M
themis-backup --database-path "$T/db" --backup-directory "$T/root/b2" --compress --incremental-from "$T/root/b1" 2>/dev/null
gen 23 800 --flush-every 200
themis-backup --database-path "$T/db" --backup-directory "$T/root/b3" --compress --incremental --backup-root "$T/root" -v 2>"$T/b3.err"
gen 24 300
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
st=$(grep -q '"stored_in"' "$T/root/b3/MANIFEST.json" && grep -q '"path": "../b2"' "$T/root/b3/MANIFEST.json"; echo $?)
ok "$st" "b3 is incremental on b2 and refers to files it does not store"
[ "$st" = 0 ] || diag "b3's backup said: $(cat "$T/b3.err")"
want3=$(manifest_field "$T/root/b3/MANIFEST.json" content_hash_v2)
final=$(themis-dbhash --database-path "$T/db")
like "$(themis-s3 sync "$T/root" "$B/backups")" "^copied [1-9][0-9]* files$" "root synced to the bucket"
themis-s3 sync "$T/w" "$B/wal" >/dev/null
is "$(themis-s3 ls "$B/wal/" | cut -f3 | grep -c '/\.')" 0 "no hidden file (locks, scratch) went to the bucket"
rm -rf "$T/root" "$T/w"
mkdir "$T/tmp"

TMPDIR=$T/tmp run themis-restore --backup-directory "$B/backups/b3" --verify-only
is "$rc" 0 "b3 verifies from s3:// (parents fetched beside it)${err:+ ($err)}"
TMPDIR=$T/tmp run themis-restore --backup-directory "$B/backups/b3" --target "$T/r3"
is "$rc" 0 "b3 restores from s3://${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/r3")" "$want3" "to its recorded content"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/backups" --wal-directory "$B/wal" --target-time 2099-01-01T00:00:00Z --target "$T/r"
is "$rc" 0 "one-command recovery from the s3:// root${err:+ ($err)}"
like "$out" "from .*/b3:" "picked b3, the newest"
is "$(themis-dbhash --database-path "$T/r")" "$final" "and reached the database's final state"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"

themis-s3 rm "$B/backups/b1/backup.tar.zst" >/dev/null && themis-s3 rm "$B/backups/b1/MANIFEST.json" >/dev/null
TMPDIR=$T/tmp run themis-restore --backup-directory "$B/backups/b3" --verify-only
is "$rc" 3 "with b1 gone from the bucket: exit 3"
like "$err" "parent backup missing: .*b1" "naming the missing parent"
is "$(ls -A "$T/tmp")" "" "and nothing left in \$TMPDIR"
done_testing
