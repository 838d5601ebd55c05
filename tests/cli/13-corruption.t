#!/usr/bin/env bash
# Damaged backups never verify: each kind of damage gives exit 3 (1 where unreadable) and a
# one-line message naming what failed.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"
themis-backup --database-path "$T/db" --backup-directory "$T/good" --compress
ok $? "backup written"
mkdir "$T/x" && zstd -q -dc "$T/good/backup.tar.zst" | tar -x -C "$T/x"
members=$(zstd -q -dc "$T/good/backup.tar.zst" | tar -t)

# damaged COPY: a fresh copy of the good backup to damage.
damaged() { rm -rf "$T/$1"; cp -a "$T/good" "$T/$1"; }
# retar COPY NAMES...: rebuilds COPY's archive from $T/x with the given members, in order.
retar() {
    local d=$1; shift
    tar -c -C "$T/x" --no-recursion "$@" | zstd -q -c > "$T/$d/backup.tar.zst"
}
expect_fail() {  # expect_fail COPY REGEX DESCRIPTION [EXTRA ARGS]
    local d=$1 re=$2 desc=$3; shift 3
    run themis-restore --backup-directory "$T/$d" --verify-only "$@"
    ok "$([ "$rc" -eq 3 ] || [ "$rc" -eq 1 ]; echo $?)" "$desc: exit 3 or 1 (got $rc)"
    like "$err" "$re" "$desc: message names it"
    ok "$(one_line_error themis-restore "$err"; echo $?)" "$desc: one line"
}

# 1. One flipped byte inside an SST member's data.
sst=$(printf '%s\n' "$members" | grep '\.sst$' | head -1)
blk=$(zstd -q -dc "$T/good/backup.tar.zst" | tar -t -R 2>/dev/null | grep " $sst\$" | sed 's/^block \([0-9]*\):.*/\1/')
damaged sst
zstd -q -dc "$T/good/backup.tar.zst" > "$T/sst.tar"
flip_byte "$T/sst.tar" $(( (blk + 1) * 512 + 100 ))
zstd -q -c "$T/sst.tar" > "$T/sst/backup.tar.zst"
expect_fail sst "$sst" "flipped byte inside $sst"
run themis-restore --backup-directory "$T/sst" --verify-only --quick
is "$rc" 3 "--quick also catches the flipped SST byte"

# 2. A truncated archive.
damaged trunc
truncate -s $(( $(stat -c %s "$T/good/backup.tar.zst") / 2 )) "$T/trunc/backup.tar.zst"
expect_fail trunc "truncated|damaged|MANIFEST" "truncated archive"

# 3. A missing MANIFEST.json.
damaged nomanifest
rm "$T/nomanifest/MANIFEST.json"
expect_fail nomanifest "MANIFEST.json is missing" "missing MANIFEST.json"

# 4. An unknown format version.
damaged version
sed -i 's/"format_version": "1\.[0-9]*"/"format_version": "2.0"/' "$T/version/MANIFEST.json"
expect_fail version "format version 2.0" "unknown format version"

# 5. An extra member.
damaged extra
printf 'not a table' > "$T/x/db/999999.sst"
retar extra db $(printf '%s\n' "$members" | grep -v '^db/$' | grep -v MANIFEST.json) db/999999.sst MANIFEST.json
rm "$T/x/db/999999.sst"
expect_fail extra "extra member.*db/999999.sst" "extra member"

# 6. A missing member.
damaged missing
retar missing db $(printf '%s\n' "$members" | grep -v '^db/$' | grep -v MANIFEST.json | grep -v "^$sst\$") MANIFEST.json
expect_fail missing "missing.*$sst" "missing member"

# 7. Garbage appended to the archive file.
damaged tail
printf 'garbage' >> "$T/tail/backup.tar.zst"
expect_fail tail "bytes|SHA-256|corrupt|damaged" "appended garbage"

# 8. The archive file is gone.
damaged noarchive
rm "$T/noarchive/backup.tar.zst"
expect_fail noarchive "backup.tar.zst" "missing archive"

run themis-restore --backup-directory "$T/good" --verify-only
is "$rc" 0 "the undamaged backup still verifies"
done_testing
