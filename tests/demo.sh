#!/usr/bin/env bash
# demo: the main job on a generated database, step by step, each step printed.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
D=$(mktemp -d "${TMPDIR:-/tmp}/themis-demo.XXXXXX")
lg= ar=
cleanup() {
    for p in $lg $ar; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "${KEEP_DEMO:-}" ] && echo "kept $D" || rm -rf "$D"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A ThemisDB-like database, written by 4 threads (2PC transactions, several column families),
   with the WAL archiver following it"
themis-loadgen --db "$D/db" --seed 42 --threads 4 --seconds 12 --flush-every 500 --wal-ttl 3600 \
    --checkpoint-dir "$D/truth" --pause-file "$D/pause" --ready-file "$D/ready" --log "$D/commits" > "$D/loadgen.log" 2>&1 &
lg=$!
deadline=$(( $(date +%s) + 60 ))
until [ -f "$D/ready" ]; do [ "$(date +%s)" -lt "$deadline" ] || { echo "load generator did not start"; cat "$D/loadgen.log"; exit 1; }; sleep 0.1; done
echo "load generator running (pid $lg) on $D/db"
themis-wal-archive --database-path "$D/db" --wal-directory "$D/wal" --follow --interval 100 &
ar=$!
echo "WAL archiver following it (pid $ar) into $D/wal"

step "2. Back it up while it is being written"
show themis-backup --database-path "$D/db" --backup-directory "$D/backup-live" --compress -v
ls -l "$D/backup-live"

step "3. Verify the backup before trusting it (checksums, then a temporary restore opened read-only)"
show themis-restore --verify-only --backup-directory "$D/backup-live" -v

step "4. Restore it and compare content hashes"
show themis-restore --backup-directory "$D/backup-live" --target "$D/restored" -v
want=$(sed -n 's/^  "content_hash_v2": "\(.*\)",$/\1/p' "$D/backup-live/MANIFEST.json")
got=$(themis-dbhash --database-path "$D/restored")
echo "manifest content hash: $want"
echo "restored content hash: $got"
[ "$want" = "$got" ] || { echo "MISMATCH"; exit 1; }

step "5. Against ground truth: the generator pauses its writers and checkpoints; we back up at that moment"
touch "$D/pause"
deadline=$(( $(date +%s) + 60 ))
until [ -s "$D/pause.ack" ]; do [ "$(date +%s)" -lt "$deadline" ] || { echo "no pause ack"; exit 1; }; sleep 0.05; done
seq=$(cat "$D/pause.ack")
show themis-backup --database-path "$D/db" --backup-directory "$D/backup-at-$seq" --compress
rm -f "$D/pause"
show themis-restore --backup-directory "$D/backup-at-$seq" --target "$D/restored-$seq"
truth=$(themis-dbhash --database-path "$D/truth/ckpt-$seq")
got=$(themis-dbhash --database-path "$D/restored-$seq")
echo "generator's own checkpoint at sequence $seq: $truth"
echo "restored from our backup:                  $got"
[ "$truth" = "$got" ] || { echo "MISMATCH"; exit 1; }

step "6. Point-in-time recovery: the generator checkpoints again later (ground truth at time T);
   we restore the backup of step 5 and replay the WAL archive up to T"
n=$(wc -l < "$D/commits")
until [ "$(wc -l < "$D/commits")" -ge $((n + 2000)) ]; do sleep 0.1; done   # 2000 more writes
touch "$D/pause"
deadline=$(( $(date +%s) + 60 ))
until [ -s "$D/pause.ack" ]; do [ "$(date +%s)" -lt "$deadline" ] || { echo "no pause ack"; exit 1; }; sleep 0.05; done
seq2=$(cat "$D/pause.ack")
ts2=$(awk -F'\t' -v s="$seq2" '$2 == s { t = $3 } END { print t }' "$D/truth/checkpoints.tsv")
rm -f "$D/pause"
T2="$(date -u -d "@${ts2:0:10}" +%Y-%m-%dT%H:%M:%S).${ts2:10}Z"
wait "$lg"; lg=
kill -TERM "$ar"; wait "$ar"; ar=
show themis-wal-archive --wal-directory "$D/wal" --check
show themis-restore --backup-directory "$D/backup-at-$seq" --target "$D/pitr"
show themis-wal-replay --wal-directory "$D/wal" --database-path "$D/pitr" --dry-run
show themis-wal-replay --wal-directory "$D/wal" --database-path "$D/pitr" --target-time "$T2"
truth=$(themis-dbhash --database-path "$D/truth/ckpt-$seq2")
got=$(themis-dbhash --database-path "$D/pitr")
echo "generator's checkpoint at $T2 (sequence $seq2): $truth"
echo "backup + WAL replayed to $T2:                   $got"
[ "$truth" = "$got" ] || { echo "MISMATCH"; exit 1; }

step "7. The standard format: plain zstd and tar restore it too"
mkdir "$D/plain"
show bash -c "zstd -q -dc '$D/backup-live/backup.tar.zst' | tar -x -C '$D/plain'"
ls "$D/plain" "$D/plain/db" | head -20

printf '\n\033[1mdemo: all steps passed\033[0m\n'
