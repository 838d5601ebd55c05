#!/usr/bin/env bash
# Retention on a root spanning 60 days (six real backups, their creation times set back),
# with a WAL archive of one segment per phase: --dry-run removes nothing; the real run
# removes exactly the backups outside the policy but keeps a parent a kept incremental
# needs, and exactly the segments no kept backup needs; PITR then works from every kept
# backup. The newest backup that verifies is never removed.
. "$(dirname "$0")/lib.sh"

sixty_day_root
ok "$([ -d "$T/root/b6" ] && grep -q '"parent"' "$T/root/b4/MANIFEST.json"; echo $?)" "six backups over 60 days, b4 incremental on b3"
is "$(grep -vc '^#' "$T/w/index.tsv")" 6 "six WAL segments"
final=$(themis-dbhash --database-path "$T/db")

before=$(cd "$T" && find root w -type f | sort | md5sum)
run themis-expire --backup-root "$T/root" --wal-directory "$T/w" --keep-days 30 --keep-min 2 --dry-run
is "$rc" 0 "--dry-run${err:+ ($err)}"
themis-expire --backup-root "$T/root" --wal-directory "$T/w" --keep-days 30 --keep-min 2 --dry-run --progress=json \
    2>"$T/p.err" >"$T/p.out"
is "$(cat "$T/p.out")" "$out" "--progress=json prints the same on stdout"
progress_json "$T/p.err" expire; ok $? "and JSON progress lines on stderr"
like "$(tail -1 "$T/p.err")" '"bytes_done":[1-9][0-9]{5,},' "counting the newest backup's bytes it verified"
is "$(printf '%s\n' "$out" | grep -c '^would remove')" 5 "would remove b1, b2 and three segments"
is "$(cd "$T" && find root w -type f | sort | md5sum)" "$before" "and removed nothing"

run themis-expire --backup-root "$T/root" --wal-directory "$T/w" --keep-days 30 --keep-min 2
is "$rc" 0 "expire --keep-days 30 --keep-min 2${err:+ ($err)}"
is "$(ls "$T/root" | tr '\n' ' ')" "b3 b4 b5 b6 " "b1 and b2 removed; b3 (40 days) kept: b4 builds on it"
like "$out" "removed .*/b1 " "says what it removed"
is "$(grep -vc '^#' "$T/w/index.tsv")" 3 "the three segments before b3's sequence removed"
is "$(ls "$T/w" | grep -c 'wal.zst$')" 3 "their files too"
like "$(themis-wal-archive --wal-directory "$T/w" --check)" "sequences $(( ${seq[3]} + 1 ))\.\." "the archive now starts right after b3"

# Every kept backup still recovers: to the end, and b3 to b4's point.
for b in 3 4 5 6; do
    rm -rf "$T/r"
    themis-restore --backup-directory "$T/root/b$b" --target "$T/r" >/dev/null
    run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
    is "$rc:$(themis-dbhash --database-path "$T/r")" "0:$final" "b$b + WAL replay reaches the final state"
done
rm -rf "$T/r"
themis-restore --backup-directory "$T/root/b3" --target "$T/r" >/dev/null
themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-seq "${seq[4]}" >/dev/null
is "$(themis-dbhash --database-path "$T/r")" "$(manifest_field "$T/root/b4/MANIFEST.json" content_hash_v2)" \
    "b3 + WAL to b4's sequence equals b4"

# The newest backup that verifies is kept whatever the policy says.
flip_byte "$T/root/b6/backup.tar.zst" 100
run themis-expire --backup-root "$T/root" --keep-days 0 --keep-min 1
is "$rc" 0 "--keep-days 0 --keep-min 1 with the newest backup damaged"
is "$(ls "$T/root" | tr '\n' ' ')" "b5 b6 " "keeps b6 (newest) and b5 (newest that verifies)"
run themis-expire --backup-root "$T/root" --keep-days 30
is "$rc" 0 "again: nothing to do"
run themis-expire --backup-root "$T/root"
is "$rc" 2 "--keep-days is required"
done_testing
