#!/usr/bin/env bash
# The catalog and monitoring: --verify-only records its result in the backup directory;
# --list shows it; --check-age exits 1 in one line when the newest good backup (not
# recorded as failing) is too old or the WAL archiver has stopped polling.
. "$(dirname "$0")/lib.sh"

ago() { date -u -d "@$(( $(date +%s) - $1 * 3600 ))" +%Y-%m-%dT%H:%M:%SZ; }
make_db "$T/db" --wal-ttl 3600; ok $? "a database"
# Made 30 and 2 hours ago, as both copies of their manifests say (--created).
themis-backup --database-path "$T/db" --backup-directory "$T/root/b1" --compress --created "$(ago 30)" 2>/dev/null
themis-backup --database-path "$T/db" --backup-directory "$T/root/b2" --compress --created "$(ago 2)" 2>/dev/null

run themis-backup --check-age --backup-root "$T/root" --max-age 26h
is "$rc" 0 "--check-age: newest backup 2h old, max 26h"
like "$out" "^ok: newest good backup .*/b2 is 2h0[0-9]m old \(not verified yet\)" "says which, how old, not verified yet"
run themis-restore --backup-directory "$T/root/b2" --verify-only --quick
is "$rc" 0 "verify b2 (--quick)"
like "$(cat "$T/root/b2/VERIFY.json")" '"result": "ok"' "the result is recorded in b2"
like "$(themis-backup --list --backup-root "$T/root" | awk -F'\t' '$2 == "b2" { print $10 }')" "Z ok \(quick\)$" "--list shows it"
like "$(themis-backup --check-age --backup-root "$T/root" --max-age 26h)" "\(checksums verified\)" "and --check-age"

flip_byte "$T/root/b2/backup.tar.zst" 200
run themis-restore --backup-directory "$T/root/b2" --verify-only --quick
is "$rc" 3 "b2 damaged: verify exits 3"
ok "$(one_line_error themis-restore "$err"; echo $?)" "in one line: $err"
like "$(cat "$T/root/b2/VERIFY.json")" '"result": "failed"' "the failure is recorded"
like "$(themis-backup --list --backup-root "$T/root" | awk -F'\t' '$2 == "b2" { print $10 }')" "FAILED" "--list shows it"
run themis-backup --check-age --backup-root "$T/root" --max-age 26h
is "$rc" 1 "--check-age: the newest good backup is now b1, 30h old: exit 1"
like "$err" "the newest good backup is 1d0[56]h old \(more than 1d02h\): .*/b1" "naming it and its age"
ok "$(one_line_error themis-backup "$err"; echo $?)" "in one line"
run themis-backup --check-age --backup-root "$T/root" --max-age 2d
is "$rc" 0 "--max-age 2d is met by b1"

# --latest-before: the base for PITR to a time, by the catalog.
run themis-backup --latest-before "$(ago 40)" --backup-root "$T/root"
is "$rc" 4 "--latest-before a time before every backup: exit 4"
ok "$(one_line_error themis-backup "$err"; echo $?)" "in one line: $err"
run themis-backup --latest-before "$(ago 10)" --backup-root "$T/root"
is "$out" "$T/root/b1" "--latest-before 10h ago: b1 (30h old), not b2 (2h old)"
run themis-backup --latest-before "$(ago 0)" --backup-root "$T/root"
is "$out" "$T/root/b1" "--latest-before now: b1, since b2's last verification failed"
like "$err" "skipping .*/b2: its last verification failed" "and says why b2 was skipped"
themis-restore --backup-directory "$T/root/b1" --verify-only --quick 2>/dev/null
cp -a "$T/root/b1" "$T/root/b3"; rm -f "$T/root/b3/VERIFY.json"
sed -i "s/\"created\": \"[^\"]*\"/\"created\": \"$(ago 1)\"/" "$T/root/b3/MANIFEST.json"
run themis-backup --latest-before "$(ago 0)" --backup-root "$T/root"
is "$out" "$T/root/b3" "a newer backup never verified is taken (themis-restore verifies it before use)"
rm -rf "$T/root/b3"
run themis-backup --latest-before "yesterday" --backup-root "$T/root"
is "$rc" 2 "--latest-before with a time that is not RFC 3339: usage error ($err)"

themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
run themis-backup --check-age --backup-root "$T/root" --max-age 2d --wal-directory "$T/w" --max-wal-lag 10m
is "$rc" 0 "the archiver polled just now"
touch -d "20 minutes ago" "$T/w/state.tsv"
run themis-backup --check-age --backup-root "$T/root" --max-age 2d --wal-directory "$T/w" --max-wal-lag 10m
is "$rc" 1 "the archiver last polled 20 minutes ago: exit 1"
like "$err" "the WAL archive is 20m0[0-9]s behind the live WAL \(more than 10m00s" "says so"
# An archiver that polls but falls behind (its passes take longer than the writes): the
# state names the start of its last pass that reached the WAL's end, and what was unread.
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
grep -q "^lag	" "$T/w/state.tsv"; ok $? "the state records the lag"
sed -i "s/^lag\t.*/lag\t73400320\t$(( ($(date +%s) - 1800) * 1000000000 ))/" "$T/w/state.tsv"
run themis-backup --check-age --backup-root "$T/root" --max-age 2d --wal-directory "$T/w" --max-wal-lag 10m
is "$rc" 1 "state written just now, but behind by 30 minutes: exit 1"
like "$err" "the WAL archive is 30m0[0-9]s behind the live WAL \(more than 10m00s; 70.0 MiB unread at its last pass\)" "says so, with the bytes"
run themis-backup --check-age --backup-root "$T/root" --max-age 26x
is "$rc" 2 "a malformed age is a usage error"
run themis-backup --check-age --backup-root "$T/empty-root-that-is-not-there" --max-age 1h
is "$rc" 1 "a missing root: exit 1"
done_testing
