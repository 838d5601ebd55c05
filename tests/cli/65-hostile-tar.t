#!/usr/bin/env bash
# Hostile backup streams (issue 17): a sparse member declaring 10 GB, setuid and changed
# modes, duplicate and file-named directory members, an overlong name, an archive appended
# after the end blocks, trailing bytes, missing end blocks. Each is refused with exit 3 in
# one line, quick or not, and writes nothing beyond what its headers state; a good backup
# still verifies and restores with the modes its manifest recorded.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"
# Modes other than the default, recorded in the manifest and restored as recorded (the
# checkpoint keeps an SST's mode; CURRENT and OPTIONS it writes anew).
set -- $(cd "$T/db" && ls *.sst | head -2)
chmod 0640 "$T/db/$1"; chmod 0600 "$T/db/$2"
themis-backup --database-path "$T/db" --stdout > "$T/plain.tar"; ok $? "a plain backup stream"
hostile() { python3 "$(dirname "$0")/hostile-tar.py" "$1" < "$T/plain.tar" > "$T/$1.tar"; }
sst=$(tar -tf "$T/plain.tar" | grep '\.sst$' | head -1)
mkdir -p "$T/tmp"

# The largest resident set of any refusal below (KiB, /usr/bin/time -f %M).
peak=0 peak_at=
# refused CASE REGEX [ARGS]: --verify-only --quick, --verify-only and a restore of the
# stream all exit 3 with one line naming it.
refused() {
    local c=$1 re=$2 how; shift 2
    for how in "--verify-only --quick" "--verify-only" "--target $T/r-$c"; do
        run env TMPDIR="$T/tmp" /usr/bin/time -f %M -o "$T/rss" themis-restore $how --from - "$@" < "$T/$c.tar"
        rss=$(tail -1 "$T/rss")
        [ "$rss" -gt "$peak" ] && peak=$rss peak_at="$c, $how"
        is "$rc" 3 "$c, $how: exit 3"
        like "$err" "$re" "$c, $how: says why"
        ok "$(one_line_error themis-restore "$err"; echo $?)" "$c, $how: one line"
    done
    ok "$([ ! -e "$T/r-$c" ] && [ -z "$(ls -A "$T/tmp")" ]; echo $?)" "$c: no target, nothing left in the temporary directory"
}

# 1. Sparse members: a 2.5 KiB stream declaring 10 GB. Refused at once; with a 64 MiB file
#    size limit any write of the holes would kill the tool (SIGXFSZ) instead.
for c in sparse paxsparse; do
    hostile $c
    is "$(( $(stat -c %s "$T/$c.tar") < 8192 ))" 1 "$c: the stream is a few KiB"
    for how in "--verify-only" "--target $T/r-$c"; do
        t0=$(date +%s%N)
        (ulimit -f 65536; TMPDIR="$T/tmp" exec timeout 30 themis-restore $how --from - < "$T/$c.tar") >"$T/.out" 2>"$T/.err"
        rc=$?; err=$(cat "$T/.err"); ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        ok "$([ "$rc" -eq 3 ] && [ "$ms" -lt 3000 ]; echo $?)" "$c, $how: exit 3 within 3 s (exit $rc after $ms ms)"
        like "$err" "sparse" "$c, $how: says sparse"
        ok "$([ "$(du -sk "$T" | cut -f1)" -lt 65536 ]; echo $?)" "$c, $how: the test's directory stays under 64 MiB"
        ok "$([ ! -e "$T/r-$c" ] && [ -z "$(ls -A "$T/tmp")" ] && ! ls -A "$T" | grep -q '^\.r-'; echo $?)" \
            "$c, $how: nothing left behind"
    done
    zstd -q -c "$T/$c.tar" > "$T/$c.tar.zst"
    t0=$(date +%s%N)
    run timeout 30 themis-restore --verify-only --quick --from - < "$T/$c.tar.zst"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    ok "$([ "$rc" -eq 3 ] && [ "$ms" -lt 3000 ]; echo $?)" "$c, zstd-compressed, --quick: exit 3 within 3 s (exit $rc after $ms ms)"
done
# From a backup directory too (the manifest beside it is there before the stream).
mkdir "$T/bk" && cp "$T/sparse.tar" "$T/bk/backup.tar"
themis-backup --database-path "$T/db" --backup-directory "$T/good" >/dev/null 2>&1
sed 's/"name": "backup.tar.zst"/"name": "backup.tar"/' "$T/good/MANIFEST.json" > "$T/bk/MANIFEST.json"
run env TMPDIR="$T/tmp" timeout 30 themis-restore --backup-directory "$T/bk" --target "$T/r-bk"
is "$rc" 3 "sparse member in a backup directory: restore exits 3"
ok "$([ ! -e "$T/r-bk" ] && [ "$(du -sk "$T" | cut -f1)" -lt 65536 ]; echo $?)" "and writes nothing"

# 2. Modes: setuid bits, and a member whose mode differs from the manifest's.
hostile setuid; refused setuid "$sst has mode 06777: setuid, setgid and sticky bits are refused"
hostile mode-change; refused mode-change "$sst has mode 0600, manifest says 0640"
hostile world-writable; refused world-writable "$sst has mode 0666, manifest says 0640"
hostile dir-mode; refused dir-mode "db/ has mode 07777"

# 3. What restore cannot extract is refused by --quick as well.
hostile dup; refused dup "$sst appears twice"
hostile dirfile; refused dirfile "db/CURRENT.*both a file and a directory"
hostile longname; refused longname "member name too long: 'db/aaaa"

# 4. The end of the archive: an appended archive, trailing bytes, missing end blocks.
hostile appended; refused appended "data after the end of the tar archive"
ok "$([ ! -e "$T/x" ] && [ ! -e "$T/tmp/x" ]; echo $?)" "the appended archive's db/../../x is not written"
hostile trailing; refused trailing "data after the end of the tar archive"
hostile noend; refused noend "lacks its end-of-archive blocks"
hostile oneend; refused oneend "lacks its end-of-archive blocks"

# 5. A good stream (re-tarred, so zero padding to 10 KiB follows its end blocks) verifies,
#    quick and full, and restores with the modes the manifest recorded.
hostile good
for how in "--verify-only --quick" "--verify-only"; do
    run env TMPDIR="$T/tmp" themis-restore $how --from - < "$T/good.tar"
    is "$rc" 0 "good stream, $how: exit 0"
done
run themis-restore --from - --target "$T/restored" < "$T/plain.tar"
is "$rc" 0 "good stream: restored"
recorded=$(tar -xOf "$T/plain.tar" MANIFEST.json | python3 -c '
import json, sys
for f in json.load(sys.stdin)["files"]:
    print("%o %s" % (f["mode"], f["name"][3:]))' | sort)
like "$recorded" "^640 $1" "the manifest records $1 as 0640"
is "$(cd "$T/restored" && stat -c '%a %n' * | sort)" "$recorded" "restored files have the modes the manifest recorded"
is "$(stat -c %a "$T/restored")" 755 "the restored directory is 0755"
is "$(themis-dbhash --database-path "$T/restored")" "$(themis-dbhash --database-path "$T/db")" "and the source's content"
# Memory stays bounded on hostile input: the 256 MiB the benchmarks hold every tool to.
ok "$([ "$peak" -gt 0 ] && [ "$peak" -lt 262144 ]; echo $?)" "every refusal stays under 256 MiB resident (peak $((peak / 1024)) MiB: $peak_at)"
done_testing
