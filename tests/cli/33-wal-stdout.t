#!/usr/bin/env bash
# themis-wal-archive --stdout: the archive as a tar stream for a pipe. Extracted with plain
# tar, it is an archive that --check and replay accept, with the same records as a directory
# archive of the same WAL, whether taken --once or followed under load and stopped by TERM.
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/db" --seed 21 --threads 3 --seconds 4 --wal-ttl 100000 \
    --checkpoint-dir "$T/ck" --pause-file "$T/pause" --ready-file "$T/ready" --no-flush-at-exit 2>"$T/lg.err" &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "generator running"
touch "$T/pause"; wait_for 60 test -s "$T/pause.ack"
themis-backup --database-path "$T/db" --backup-directory "$T/base" >/dev/null 2>&1; ok $? "base backup while paused"
# The follower starts before the writes go on, so it sees every record from the first.
# tar -b 1: GNU tar fills whole 10 KiB records before it extracts; the stream is 512-aligned only.
mkdir "$T/x" "$T/tmp"
( TMPDIR="$T/tmp" themis-wal-archive --database-path "$T/db" --stdout --follow --interval 50 --segment-seconds 1 \
      2>"$T/follow.err" | tar -x -b 1 -C "$T/x"; echo "${PIPESTATUS[*]}" >"$T/follow.rc" ) &
wait_for 30 pgrep -f "wal-archive --database-path $T/db --stdout" >/dev/null; ok $? "archiver streaming"
rm -f "$T/pause"
wait "$lg"; ok $? "generator finished"
# Stop the follower once it has streamed a segment reaching the generator's last sequence.
themis-wal-archive --database-path "$T/db" --wal-directory "$T/dir" --once
last=$(tail -1 "$T/dir/index.tsv" | cut -f2 | sed 's/^0*//')
reached() { tail -1 "$T/x/index.tsv" 2>/dev/null | cut -f2 | sed 's/^0*//' | grep -qx "$last"; }
wait_for 60 reached; ok $? "the stream reached the last sequence ($last)"
segs=$(ls "$T/x"/*.wal.zst | wc -l)
ok "$([ "$segs" -ge 2 ]; echo $?)" "several segments were streamed as they closed ($segs)"
pkill -TERM -f "wal-archive --database-path $T/db --stdout"
wait_for 30 test -s "$T/follow.rc"
is "$(cat "$T/follow.rc")" "0 0" "TERM ends the stream cleanly: archiver and tar both exit 0"
run themis-wal-archive --check --wal-directory "$T/x"
is "$rc" 0 "the extracted stream passes --check: $out"
want=$(themis-wal-archive --check --wal-directory "$T/dir")
is "$out" "$want" "same records and sequences as a directory archive of the same WAL"
is "$(ls -A "$T/tmp")" "" "no temporary directory left behind"

themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null
run themis-wal-replay --wal-directory "$T/x" --database-path "$T/r"
is "$rc" 0 "replay of the streamed archive onto the base"
h_gen=$(themis-dbhash --database-path "$T/db")
is "$(themis-dbhash --database-path "$T/r")" "${h_gen:-no hash of the generator DB}" \
    "reaches exactly the generator's final content"

# --once: the same records again, in the same segments as the directory archive's (one or
# more: the generator's WAL may have rolled over, as its writes in 4 s decide), each followed
# by index.tsv and cf.tsv, and a tar trailer (tar -t reads it whole).
TMPDIR="$T/tmp" themis-wal-archive --database-path "$T/db" --stdout --once >"$T/once.tar"; ok $? "--once --stdout"
tar -tf "$T/once.tar" >"$T/once.list"; ok $? "a complete tar stream"
is "$(tr '\n' ' ' <"$T/once.list")" "$(cd "$T/dir" && for s in *.wal.zst; do printf '%s index.tsv cf.tsv ' "$s"; done)" \
    "each segment ($(ls "$T/dir" | grep -c 'wal.zst$')), then index.tsv and cf.tsv"
mkdir "$T/y" && tar -x -C "$T/y" -f "$T/once.tar"
is "$(themis-wal-archive --check --wal-directory "$T/y")" "$want" "which check like the directory archive"

# Refusals.
run themis-wal-archive --database-path "$T/db" --stdout --wal-directory "$T/z" --once
is "$rc" 2 "--stdout with --wal-directory is a usage error"
run themis-wal-archive --stdout --check
is "$rc" 2 "--check --stdout is a usage error"
run themis-wal-archive --database-path "$T/nope" --stdout --once
is "$rc" 1 "a missing database: exit 1"
ok "$(one_line_error themis-wal-archive "$err"; echo $?)" "in one line: $err"
is "$(wc -c <"$T/.out")" 0 "and nothing on stdout"
done_testing
