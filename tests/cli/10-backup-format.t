#!/usr/bin/env bash
# A backup is a standard tar.zst: plain zstd and tar restore it, ldb opens the result, and
# our restore gives the content hash recorded in the manifest.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"
src_hash=$(themis-dbhash --database-path "$T/db")
like "$(themis-dbhash -v --database-path "$T/db" | grep opened)" "snapshot from files \(stopped\)" "dbhash of a stopped DB hashes a snapshot of its files, recovered as the server would (a secondary can miss 2PC data)"

run themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress
is "$rc" 0 "backup --compress succeeds"
is "$out$err" "" "backup prints nothing on success"
ok "$([ -f "$T/bk/backup.tar.zst" ] && [ -f "$T/bk/MANIFEST.json" ]; echo $?)" "backup.tar.zst and MANIFEST.json published"
is "$(manifest_field "$T/bk/MANIFEST.json" content_hash_v2)" "$src_hash" "manifest content hash equals themis-dbhash of the stopped source"
like "$(cat "$T/bk/MANIFEST.json")" '"pii_mappings"' "manifest lists the column families"

mkdir "$T/x"
zstd -q -dc "$T/bk/backup.tar.zst" | tar -x -C "$T/x"
ok $? "zstd -dc | tar -x extracts the backup"
is "$(tar -tf <(zstd -q -dc "$T/bk/backup.tar.zst") | tail -1)" "MANIFEST.json" "MANIFEST.json is the last member"
cmp -s "$T/x/MANIFEST.json" <(zstd -q -dc "$T/bk/backup.tar.zst" | tar -xO MANIFEST.json)
ok $? "member manifest extracts with plain tar"
bad=0; n=0
while read -r name sum; do
    n=$((n + 1))
    [ "$(sha "$T/x/$name")" = "$sum" ] || { bad=$((bad + 1)); diag "checksum differs: $name"; }
done < <(grep -E '"(name|sha256)"' "$T/x/MANIFEST.json" | sed 's/.*: "\(.*\)".*/\1/' | paste - -)
ok "$([ "$n" -gt 3 ] && [ "$bad" -eq 0 ]; echo $?)" "every extracted file ($n) has the manifest's SHA-256"
ldb --db="$T/x/db" --try_load_options list_column_families >"$T/ldb.out" 2>&1
ok $? "ldb opens the plainly extracted database"
like "$(cat "$T/ldb.out")" 'pii_mappings' "ldb sees the column families"
is "$(themis-dbhash --read-only --database-path "$T/x/db")" "$src_hash" "plainly extracted database has the source's content hash"

run themis-restore --backup-directory "$T/bk" --verify-only
is "$rc" 0 "verify-only passes"
run themis-restore --backup-directory "$T/bk" --target "$T/restored"
is "$rc" 0 "restore succeeds"
is "$(themis-dbhash --database-path "$T/restored")" "$src_hash" "restored database has the source's content hash"
is "$(stat -c %a "$T/restored/CURRENT")" "$(stat -c %a "$T/db/CURRENT")" "restore keeps file modes"

run themis-backup --database-path "$T/db" --backup-directory "$T/plain"
is "$rc" 0 "backup without --compress succeeds"
mkdir "$T/y" && tar -xf "$T/plain/backup.tar" -C "$T/y"
ok $? "plain tar -x extracts an uncompressed backup"
run themis-restore --backup-directory "$T/plain" --verify-only
is "$rc" 0 "uncompressed backup verifies"

ls -A "$T/db" > "$T/db.before"
run themis-backup --database-path "$T/db/" --backup-directory "$T/slash/" --compress
is "$rc" 0 "paths with trailing slashes work"
ok "$(ls -A "$T/db" | cmp -s - "$T/db.before"; echo $?)" "and nothing was written inside the database directory"
ok "$([ -f "$T/slash/MANIFEST.json" ]; echo $?)" "the backup is where it was asked for"

run themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress
is "$rc" 1 "backup refuses an existing backup directory"
like "$err" "not empty" "and says why"
done_testing
