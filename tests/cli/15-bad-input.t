#!/usr/bin/env bash
# Bad input of every kind gets one line naming the problem, a non-zero exit, and destroys nothing.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"

for tool in themis-backup themis-restore themis-dbhash; do
    run $tool --no-such-flag
    is "$rc" 2 "$tool: unknown flag exits 2"
    like "$err" "no-such-flag" "$tool: the message names the flag"
    ok "$(one_line_error $tool "$err"; echo $?)" "$tool: in one line"
    run $tool --help
    ok "$([ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q -- '--'; echo $?)" "$tool --help prints usage and exits 0"
    run $tool --version
    like "$out" "^$tool [0-9]" "$tool --version"
done
run themis-backup --backup-directory
is "$rc" 2 "a flag without its value exits 2"
run themis-backup --database-path "$T/db"
is "$rc" 2 "backup without a destination exits 2"
run themis-restore --backup-directory "$T/x" --from - --verify-only
is "$rc" 2 "restore with two sources exits 2"
run themis-restore --from "$T/file" --verify-only
is "$rc" 2 "--from takes only -"

run themis-backup --database-path "$T/missing" --backup-directory "$T/bk"
is "$rc" 1 "a missing database path exits 1"
like "$err" "does not exist.*missing" "and names the path"
ok "$([ ! -e "$T/bk" ]; echo $?)" "and publishes nothing"
mkdir "$T/empty"
run themis-backup --database-path "$T/empty" --backup-directory "$T/bk"
is "$rc" 1 "a directory that is no database exits 1"
like "$err" "not a RocksDB" "and says so"
run themis-dbhash --database-path "$T/missing"
is "$rc" 1 "dbhash of a missing database exits 1"

themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress
ok $? "a good backup for the restore checks"
mkdir "$T/target" && echo "precious" > "$T/target/data"
run themis-restore --backup-directory "$T/bk" --target "$T/target"
is "$rc" 1 "restore refuses a non-empty target without --force"
like "$err" "not empty.*--force" "and says how to override"
is "$(cat "$T/target/data")" "precious" "the data there is untouched"
is "$(ls -A "$T/target")" "data" "and nothing was added"
is "$(ls -A "$T" | grep -c '^\.target\.tmp')" 0 "and no temporary restore was left beside it"
run themis-restore --backup-directory "$T/bk" --target "$T/target" --force
is "$rc" 0 "with --force the restore replaces it"
ok "$([ ! -e "$T/target/data" ] && [ -f "$T/target/CURRENT" ]; echo $?)" "the old contents are gone, the database is there"
is "$(themis-dbhash --database-path "$T/target")" "$(themis-dbhash --database-path "$T/db")" "replaced target has the source's content"

if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    run themis-restore --backup-directory "$T/bk" --target "$T/owned" --owner nobody
    is "$rc" 0 "restore --owner nobody (as root)"
    is "$(find "$T/owned" ! -user nobody | wc -l)" 0 "every restored file belongs to nobody"
else
    skip "--owner needs root and the user nobody"
fi
run themis-restore --backup-directory "$T/bk" --target "$T/owned2" --owner no-such-user-here
is "$rc" 2 "an unknown --owner is a usage error"

# A full disk: a 1 MiB tmpfs cannot hold the backup; refuse before writing.
mnt="$T/full"
mkdir "$mnt"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    on_exit "umount '$mnt'"
    run themis-backup --database-path "$T/db" --backup-directory "$mnt/bk" --compress
    is "$rc" 1 "backup onto a full disk exits 1"
    like "$err" "not enough free space: backup needs up to [0-9]+ bytes, [0-9]+ available" "and gives the numbers"
    ok "$(one_line_error themis-backup "$err"; echo $?)" "in one line"
    is "$(ls -A "$mnt")" "" "and leaves nothing on the full disk"
    run themis-restore --backup-directory "$T/bk" --target "$mnt/restored"
    is "$rc" 1 "restore onto a full disk exits 1"
    like "$err" "not enough free space: restore needs" "and says so before writing"
    ok "$([ ! -e "$mnt/restored" ] && [ -z "$(ls -A "$mnt")" ]; echo $?)" "and leaves nothing behind"
else
    skip "full-disk test needs root to mount a tmpfs"
fi
themis-backup --database-path "$T/db" --stdout --compress > /dev/full 2>"$T/full.err"; rc=$?
is "$rc" 1 "backup stream into a full device exits 1"
like "$(cat "$T/full.err")" "No space left" "and says the disk is full"

mkdir -p "$T/etc"
printf 'storage:\n  rocksdb_path: [unclosed\n' > "$T/etc/bad.yaml"
run themis-backup --config-file "$T/etc/bad.yaml" --include-config --backup-directory "$T/bk2"
is "$rc" 1 "a broken YAML config exits 1"
like "$err" "not valid YAML.*line [0-9]+" "and names the line"
printf '[themis-backup]\nno-such-key = 1\n' > "$T/bad.conf"
run themis-backup --conf "$T/bad.conf" --database-path "$T/db" --backup-directory "$T/bk3"
is "$rc" 2 "an unknown key in the tool's section of --conf exits 2"
like "$err" "no-such-key" "and names it"
done_testing
