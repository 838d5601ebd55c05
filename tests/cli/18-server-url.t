#!/usr/bin/env bash
# --server-url takes the checkpoint through the server's POST /admin/backup (a stand-in
# server on 127.0.0.1 here); server errors and an unreachable server fail cleanly.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

make_db "$T/db"; ok $? "load generator wrote a database"
python3 "$here/mock-themisdb.py" --db "$T/db" --port-file "$T/port" & srv=$!
on_exit "kill $srv 2>/dev/null"
wait_for 30 test -s "$T/port"; ok $? "stand-in server listening"
port=$(cat "$T/port")

run themis-backup --server-url "http://127.0.0.1:$port" --database-path "$T/db" --backup-directory "$T/bk" --compress
is "$rc" 0 "backup through the server's /admin/backup${err:+: $err}"
like "$(cat "$T/bk/MANIFEST.json")" '"method": "server"' "manifest records the method"
run themis-restore --backup-directory "$T/bk" --verify-only
is "$rc" 0 "the backup verifies"
is "$(manifest_field "$T/bk/MANIFEST.json" content_hash_v2)" "$(themis-dbhash --database-path "$T/db")" "with the database's content hash"

kill "$srv"; wait "$srv" 2>/dev/null
rm -f "$T/port"
python3 "$here/mock-themisdb.py" --db "$T/db" --port-file "$T/port" --fail & srv=$!
on_exit "kill $srv 2>/dev/null"
wait_for 30 test -s "$T/port"
run themis-backup --server-url "http://127.0.0.1:$(cat "$T/port")" --database-path "$T/db" --backup-directory "$T/bk2"
is "$rc" 1 "a server error exits 1"
like "$err" "HTTP 500" "and names the status"
ok "$([ ! -e "$T/bk2" ]; echo $?)" "and publishes nothing"
kill "$srv"; wait "$srv" 2>/dev/null
run themis-backup --server-url "http://127.0.0.1:$port" --database-path "$T/db" --backup-directory "$T/bk3"
is "$rc" 1 "an unreachable server exits 1"
like "$err" "server backup request failed" "and says so"
done_testing
