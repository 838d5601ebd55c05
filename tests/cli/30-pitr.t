#!/usr/bin/env bash
# Point-in-time recovery equals ground truth: the load generator (4 writers, 2PC with
# rollbacks, a CF created mid-run, deletes, flushes) runs; a backup is taken mid-run; the
# archiver follows throughout and is killed with -9 and restarted; replays to several
# targets give the hash of the generator's own checkpoint for that point.
. "$(dirname "$0")/lib.sh"

# It runs until the test has killed the archiver three times (SIGTERM), not for a fixed time:
# under ASan it writes several times slower, and a fixed time could end before the kills.
themis-loadgen --db "$T/db" --seed 21 --threads 4 --seconds 300 --flush-every 500 --wal-ttl 3600 \
    --checkpoint-dir "$T/truth" --checkpoint-every-ms 600 --ready-file "$T/ready" --log "$T/log" 2>"$T/lg.err" &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "load generator running"
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --follow --interval 50 2>"$T/a0.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge 3000 ]"
run themis-backup --database-path "$T/db" --backup-directory "$T/base" --compress
is "$rc" 0 "base backup taken mid-run${err:+: $err}"
base=$(manifest_field "$T/base/MANIFEST.json" last_sequence)
# kill -9 the archiver at moments set by the log's growth (conditions, not sleeps), restart it.
killed=0
for k in 1 2 3; do
    n=$(wc -l < "$T/log")
    wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge $((n + 1500)) ]" || break
    kill -9 "$ar" 2>/dev/null && killed=$((killed + 1)) || diag "archiver had died: $(cat "$T/a$((k - 1)).err")"
    wait "$ar" 2>/dev/null
    themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --follow --interval 50 2>"$T/a$k.err" & ar=$!
done
is "$killed" 3 "archiver was running each time, killed with -9 and restarted 3 times"
n=$(wc -l < "$T/log")
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge $((n + 1000)) ]"
kill -TERM "$lg"; wait "$lg"; is "$?" 0 "load generator finished (SIGTERM)"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once
is "$rc" 1 "a second archiver on the same archive is refused"
like "$err" "another themis-wal-archive" "and says why"
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "archiver stops cleanly on SIGTERM"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once
is "$rc" 0 "a last --once picks up the tail${err:+: $err}"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 0 "--check: every sequence exactly once, checksums good ($out)"

restore_base() { rm -rf "$T/r"; themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null; }
checked=0
while IFS=$'\t' read -r name seq ts; do
    [ "$seq" -gt "$base" ] || continue
    restore_base
    run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$ts")"
    is "$rc" 0 "replay to the time of $name${err:+: $err}"
    equals_truth "$T/r" "$T/truth/$name" "$seq" "$T/w"; ok $? "PITR to $(tsz "$ts") equals the generator's checkpoint at sequence $seq"
    like "$out" "reached sequence $seq .*database sequence $seq" "and reached exactly sequence $seq"
    checked=$((checked + 1))
    if [ "$checked" -eq 1 ]; then
        restore_base
        run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-seq "$seq"
        equals_truth "$T/r" "$T/truth/$name" "$seq" "$T/w"; ok $? "PITR to --target-seq $seq equals it too"
        # Exactly on a batch's stamp: the last write stamped before the checkpoint.
        stamp=$(awk -F'\t' -v t="$ts" '$1 <= t && $1 > m { m = $1 } END { print m }' "$T/log")
        restore_base
        run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$stamp")"
        equals_truth "$T/r" "$T/truth/$name" "$seq" "$T/w"; ok $? "PITR to exactly the stamp of the last batch before it ($(tsz "$stamp"))"
    fi
done < "$T/truth/checkpoints.tsv"
ok "$([ "$checked" -ge 4 ]; echo $?)" "$checked checkpoints after the base were compared"
last=$(tail -1 "$T/truth/checkpoints.tsv" | cut -f1)
restore_base
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
is "$(themis-dbhash --database-path "$T/r")" "$(themis-dbhash --read-only --database-path "$T/truth/$last")" "replay to the end (the last batch) equals the final checkpoint"

# The upgrade guide's line, verbatim but for the paths: themisdb-admin wal-replay with
# ThemisDB's data directory (the RocksDB is its rocksdb/).
mkdir -p "$T/themisdb"
themis-restore --backup-directory "$T/base" --target "$T/themisdb/rocksdb" >/dev/null
first_ckpt=$(awk -F'\t' -v b="$base" '$2 > b { print; exit }' "$T/truth/checkpoints.tsv")
run themisdb-admin wal-replay --wal-directory "$T/w" --target-time "$(tsz "$(echo "$first_ckpt" | cut -f3)")" --database-path "$T/themisdb/"
is "$rc" 0 "themisdb-admin wal-replay ... --database-path /var/lib/themisdb/ form works${err:+: $err}"
is "$(themisdb-admin data-hash --database-path "$T/themisdb/rocksdb")" "$(themis-dbhash --database-path "$T/truth/$(echo "$first_ckpt" | cut -f1)")" \
    "and themisdb-admin data-hash shows it equals the truth"

# One-command recovery: the newest good backup before T from a root, restored and replayed.
mkdir -p "$T/root"
cp -a "$T/base" "$T/root/b1"
cp -a "$T/base" "$T/root/b2"
sed -i 's/"created": "[^"]*"/"created": "2099-01-01T00:00:00Z"/' "$T/root/b2/MANIFEST.json"   # made "after" T: not a candidate
last_ckpt=$(tail -1 "$T/truth/checkpoints.tsv")
run themis-restore --backup-root "$T/root" --wal-directory "$T/w" --target-time "$(tsz "$(echo "$last_ckpt" | cut -f3)")" --target "$T/one"
is "$rc" 0 "one-command recovery${err:+: $err}"
like "$out" "recovered .* from .*/b1: reached sequence $(echo "$last_ckpt" | cut -f2) " "picked the backup before T and reached T"
is "$(themis-dbhash --database-path "$T/one")" "$(themis-dbhash --database-path "$T/truth/$(echo "$last_ckpt" | cut -f1)")" "and equals the truth"
run themis-restore --backup-root "$T/root" --wal-directory "$T/w" --target-time "2001-01-01T00:00:00Z" --target "$T/two"
is "$rc" 4 "no backup before the target time: exit 4"
ok "$([ ! -e "$T/two" ]; echo $?)" "and nothing is left at the target"

# Refusals.
restore_base
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-seq $((base - 10))
is "$rc" 4 "a target sequence before the base is refused with exit 4"
first_ts=$(head -1 "$T/log" | cut -f1)
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$first_ts")"
is "$rc" 4 "a target time before the base is refused with exit 4"
like "$err" "before the base" "and says why"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --dry-run
like "$out" "base sequence +$base" "--dry-run prints the base"
like "$out" "gaps +none" "and the window without gaps"

# A flipped byte in a segment: --check and replay say so (exit 3) and replay changes nothing.
cp -a "$T/w" "$T/wd"
seg=$(ls "$T"/wd/*.wal.zst | head -1)
flip_byte "$seg" $(( $(stat -c %s "$seg") / 2 ))
run themis-wal-archive --wal-directory "$T/wd" --check
is "$rc" 3 "--check finds the flipped byte (exit 3)"
before=$(themis-dbhash --database-path "$T/r")
run themis-wal-replay --wal-directory "$T/wd" --database-path "$T/r"
is "$rc" 3 "replay refuses the damaged archive (exit 3): $err"
is "$(themis-dbhash --database-path "$T/r")" "$before" "and changed nothing"
done_testing
