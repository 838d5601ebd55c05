#!/usr/bin/env bash
# Encrypted offsite copies: what reaches the bucket (a streamed backup, a synced backup
# directory, pushed WAL segments) is ciphertext, checked with awscli and an independent
# reader; recovery from the bucket alone works with the key and refuses a wrong one.
. "$(dirname "$0")/lib.sh"

s3_server
B=s3://$TB_S3_BUCKET
PY=/usr/bin/python3
DEC="$(dirname "$0")/tbdecrypt.py"
head -c 32 /dev/urandom > "$T/key"
head -c 32 /dev/urandom > "$T/other"
mkdir -p "$T/tmp"

make_db "$T/db" --wal-ttl 3600; ok $? "database written"
run themis-backup --database-path "$T/db" --backup-directory "$T/bk/b1" --compress --encrypt --key-file "$T/key"
is "$rc" 0 "encrypted backup directory${err:+: $err}"
themis-backup --database-path "$T/db" --stdout --compress --encrypt --key-file "$T/key" | themis-s3 put - "$B/base.tar.zst.enc"
is "${PIPESTATUS[*]}" "0 0" "encrypted backup --stdout | themis-s3 put -"
themis-loadgen --db "$T/db" --seed 48 --threads 2 --batches 2000 --wal-ttl 3600 >/dev/null 2>&1; ok $? "more writes after the backups"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once --encrypt --key-file "$T/key" --push "$B/wal" -v
is "$rc" 0 "sealed WAL archived and pushed${err:+: $err}"
like "$(themis-s3 sync "$T/bk" "$B/backups")" "^copied [1-9][0-9]* files$" "backup directory synced to the bucket"
want=$(themis-dbhash --database-path "$T/db")

# What the bucket holds, read back with awscli.
aws_ s3 cp "$B/base.tar.zst.enc" "$T/obj" >/dev/null 2>&1; ok $? "aws s3 cp of the streamed backup"
is "$(head -c 7 "$T/obj")" TBCRYPT "it is sealed (TBCRYPT magic)"
$PY "$DEC" "$T/key" < "$T/obj" | zstd -dc | tar -t > "$T/members" 2>/dev/null
ok "$(grep -qx db/CURRENT "$T/members"; echo $?)" "an independent reader decrypts it to tar + zstd"
n=0 sealed=0
for k in $(aws_ s3 ls "$B/wal/" 2>/dev/null | awk '{ print $4 }' | grep '\.wal\.zst$'); do
    n=$((n + 1))
    [ "$(aws_ s3 cp "$B/wal/$k" - 2>/dev/null | head -c 7)" = TBCRYPT ] && sealed=$((sealed + 1))
done
ok "$([ "$n" -ge 1 ] && [ "$sealed" -eq "$n" ]; echo $?)" "every pushed WAL segment is sealed ($sealed of $n)"
aws_ s3 cp "$B/backups/b1/MANIFEST.json" "$T/m.json" >/dev/null 2>&1
ok "$(grep -q '"redacted": true' "$T/m.json" && ! grep -q 'db/' "$T/m.json"; echo $?)" "the synced MANIFEST.json names no file"
aws_ s3 cp "$B/backups/b1/backup.tar.zst.enc" - 2>/dev/null | head -c 7 > "$T/magic"
is "$(cat "$T/magic")" TBCRYPT "the synced archive is sealed"

# From the bucket alone.
rm -rf "$T/w" "$T/bk"
run themis-restore --from "$B/base.tar.zst.enc" --verify-only --key-file "$T/key"
is "$rc" 0 "verify the streamed backup from s3:// with the key${err:+: $err}"
run themis-restore --from "$B/base.tar.zst.enc" --verify-only --key-file "$T/other"
is "$rc" 3 "with a wrong key: exit 3"; ok "$(one_line_error themis-restore "$err"; echo $?)" "in one line: $err"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/backups" --wal-directory "$B/wal" \
    --target-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --target "$T/r" --key-file "$T/key"
is "$rc" 0 "one-command recovery from the bucket with the key${err:+: $err}"
is "$(themis-dbhash --database-path "$T/r")" "$want" "equals the database after the later writes (WAL replayed)"
TMPDIR=$T/tmp run themis-restore --backup-root "$B/backups" --wal-directory "$B/wal" \
    --target-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --target "$T/r2" --key-file "$T/other"
ok "$([ "$rc" -ne 0 ] && [ ! -e "$T/r2" ]; echo $?)" "with a wrong key: refused (exit $rc), nothing restored"
is "$(ls -A "$T/tmp")" "" "no downloaded copies left in \$TMPDIR"
done_testing
