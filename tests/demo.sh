#!/usr/bin/env bash
# demo: the main job on a generated database, step by step, each step printed.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
D=$(mktemp -d "${TMPDIR:-/tmp}/themis-demo.XXXXXX")
lg=
cleanup() { [ -n "$lg" ] && kill "$lg" 2>/dev/null && wait "$lg" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A ThemisDB-like database, written by 4 threads (2PC transactions, several column families)"
themis-loadgen --db "$D/db" --seed 42 --threads 4 --seconds 120 --flush-every 500 \
    --checkpoint-dir "$D/truth" --pause-file "$D/pause" --ready-file "$D/ready" > "$D/loadgen.log" 2>&1 &
lg=$!
deadline=$(( $(date +%s) + 60 ))
until [ -f "$D/ready" ]; do [ "$(date +%s)" -lt "$deadline" ] || { echo "load generator did not start"; cat "$D/loadgen.log"; exit 1; }; sleep 0.1; done
echo "load generator running (pid $lg) on $D/db"

step "2. Back it up while it is being written"
show themis-backup --database-path "$D/db" --backup-directory "$D/backup-live" --compress -v
ls -l "$D/backup-live"

step "3. Verify the backup before trusting it (checksums, then a temporary restore opened read-only)"
show themis-restore --verify-only --backup-directory "$D/backup-live" -v

step "4. Restore it and compare content hashes"
show themis-restore --backup-directory "$D/backup-live" --target "$D/restored" -v
want=$(sed -n 's/^  "content_hash": "\(.*\)",$/\1/p' "$D/backup-live/MANIFEST.json")
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
truth=$(themis-dbhash --read-only --database-path "$D/truth/ckpt-$seq")
got=$(themis-dbhash --database-path "$D/restored-$seq")
echo "generator's own checkpoint at sequence $seq: $truth"
echo "restored from our backup:                  $got"
[ "$truth" = "$got" ] || { echo "MISMATCH"; exit 1; }

step "6. The standard format: plain zstd and tar restore it too"
mkdir "$D/plain"
show bash -c "zstd -q -dc '$D/backup-live/backup.tar.zst' | tar -x -C '$D/plain'"
ls "$D/plain" "$D/plain/db" | head -20

printf '\n\033[1mdemo: all steps passed\033[0m\n'
