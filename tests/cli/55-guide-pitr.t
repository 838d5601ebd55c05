#!/usr/bin/env bash
# The 1.7 -> 1.8 upgrade guide's pitr_recovery.sh, steps 2 and 3 verbatim but for the paths
# (under a test root $R): `themisdb-restore --target /var/lib/themisdb/` restores into the
# data directory's rocksdb/ and touches nothing else there, `themisdb-admin wal-replay
# --database-path /var/lib/themisdb/` brings it to the target time, and the result equals
# the load generator's ground truth. An old database in rocksdb/ (the one the server stopped
# on) is kept beside the new one as rocksdb.before-restore-STAMP, or removed with --force;
# the config's storage.rocksdb_path decides the directory; a database whose LOCK a
# running process holds is refused (exit 1) and nothing changes.
. "$(dirname "$0")/lib.sh"

R=$T/root
mkdir -p "$T/bin" "$R/backups/themisdb/daily" "$R/var/lib/themisdb/rocksdb" "$R/var/lib/themisdb/logs"
ln -s "$(command -v themis-restore)" "$T/bin/themisdb-restore"   # the alias make install adds
PATH="$T/bin:$PATH"
echo "node-7f3a" > "$R/var/lib/themisdb/themisdb.id"
echo "2024-01-24 10:00:00.000 [INFO] [server] ThemisDB starting" > "$R/var/lib/themisdb/logs/server.log"

# The production server: the load generator, with ground-truth checkpoints. The daily
# backup is taken while it runs, held still (--pause-file) so the checkpoints after the
# base do not depend on timing; its WAL stays (--wal-ttl) for the archive.
themis-loadgen --db "$T/prod" --seed 55 --threads 3 --batches 7000 --flush-every 400 --wal-ttl 3600 \
    --checkpoint-dir "$T/truth" --checkpoint-at 4000,5500 --pause-file "$T/pause" --ready-file "$T/ready" \
    --log "$T/log" 2>"$T/lg.err" &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "load generator running"
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge 1500 ]"
touch "$T/pause"; wait_for 60 test -s "$T/pause.ack"
run themis-backup --database-path "$T/prod" --backup-directory "$R/backups/themisdb/daily/2024-01-24" --compress
is "$rc" 0 "the daily base backup, taken while the server runs${err:+: $err}"
base=$(manifest_field "$R/backups/themisdb/daily/2024-01-24/MANIFEST.json" last_sequence)
rm -f "$T/pause"
wait "$lg"; is "$?" 0 "load generator finished"
run themis-wal-archive --database-path "$T/prod" --wal-directory "$R/backups/themisdb/wal" --once
is "$rc" 0 "the WAL archive${err:+: $err}"
# Two ground-truth moments after the base.
mapfile -t after < <(awk -F'\t' -v b="$base" '$2 > b' "$T/truth/checkpoints.tsv")
ok "$([ "${#after[@]}" -ge 2 ]; echo $?)" "${#after[@]} checkpoints after the base"
IFS=$'\t' read -r name1 seq1 ts1 <<< "${after[0]}"
IFS=$'\t' read -r name2 seq2 ts2 <<< "${after[$(( ${#after[@]} / 2 ))]}"

# What the data directory holds besides the database, to prove it untouched.
others() { (cd "$1" && find . -path ./rocksdb -prune -o -print | sort && find . -path ./rocksdb -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
listing() { (cd "$1" && find . -printf '%p %s\n' | sort && find . -type f ! -name 'LOG*' -print0 | sort -z | xargs -0 sha256sum); }
before=$(others "$R/var/lib/themisdb")

# --- pitr_recovery.sh, steps 2 and 3 (step 1, systemctl stop themisdb: nothing runs here) ---
TARGET_TIMESTAMP=$(tsz "$ts1")
themisdb-restore \
  --backup-directory "$R/backups/themisdb/daily/2024-01-24/" \
  --target "$R/var/lib/themisdb/" >"$T/s2.out" 2>"$T/s2.err"
is "$?" 0 "step 2: themisdb-restore --target /var/lib/themisdb/$(sed 's/^/: /' "$T/s2.err" | tr '\n' ' ')"
like "$(cat "$T/s2.err")" "^themis-restore: note: $R/var/lib/themisdb/ is ThemisDB's data directory: restored the database into $R/var/lib/themisdb/rocksdb; nothing else in it was changed\$" \
    "and says, in one line, that the database went into its rocksdb/"
is "$(grep -c . "$T/s2.err")" 1 "one line only"
themisdb-admin wal-replay \
  --wal-directory "$R/backups/themisdb/wal/" \
  --target-time "$TARGET_TIMESTAMP" \
  --database-path "$R/var/lib/themisdb/" >"$T/s3.out" 2>"$T/s3.err"
is "$?" 0 "step 3: themisdb-admin wal-replay --database-path /var/lib/themisdb/$(sed 's/^/: /' "$T/s3.err" | tr '\n' ' ')"
# ---
ok "$([ -f "$R/var/lib/themisdb/rocksdb/CURRENT" ] && [ ! -e "$R/var/lib/themisdb/CURRENT" ]; echo $?)" \
    "the recovered database is in rocksdb/, none at the data directory itself"
is "$(others "$R/var/lib/themisdb")" "$before" "every other file in the data directory survives, unchanged, and no temporary is left"
like "$(cat "$T/s3.out")" "reached sequence $seq1 " "replay reached the checkpoint's sequence $seq1"
equals_truth "$R/var/lib/themisdb/rocksdb" "$T/truth/$name1" "$seq1" "$R/backups/themisdb/wal"
ok $? "the recovered database equals the generator's checkpoint at $TARGET_TIMESTAMP"

# The same script again, now that rocksdb/ holds a database (the disaster the guide is for:
# the server stopped on a damaged database): the new one goes in, the old one is kept aside.
oldhash=$(themis-dbhash --database-path "$R/var/lib/themisdb/rocksdb")
oldlist=$(listing "$R/var/lib/themisdb/rocksdb")
run themisdb-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$R/var/lib/themisdb/"
is "$rc" 0 "step 2 over an existing database in rocksdb/${err:+ ($err)}"
kept=$(ls -d "$R"/var/lib/themisdb/rocksdb.before-restore-* 2>/dev/null)
ok "$([ "$(wc -w <<< "$kept")" = 1 ]; echo $?)" "the old database is kept aside as rocksdb.before-restore-*"
like "$err" "^themis-restore: note: $R/var/lib/themisdb/ is ThemisDB's data directory: restored the database into $R/var/lib/themisdb/rocksdb; the database that was there is kept as $kept; nothing else in it was changed\$" \
    "and says so, in one line"
is "$(listing "$kept")" "$oldlist" "the kept database is the old one, file for file"
is "$(themis-dbhash --database-path "$kept")" "$oldhash" "and still opens to the same content"
is "$(themis-dbhash --database-path "$R/var/lib/themisdb/rocksdb")" "$(manifest_field "$R/backups/themisdb/daily/2024-01-24/MANIFEST.json" content_hash_v2)" \
    "rocksdb/ holds the base backup"
is "$(others "$R/var/lib/themisdb" | grep -v before-restore)" "$before" "nothing else in the data directory changed"
rm -rf "$kept"
run themisdb-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$R/var/lib/themisdb/" --force
is "$rc" 0 "with --force the database in rocksdb/ is replaced${err:+ ($err)}"
is "$(others "$R/var/lib/themisdb")" "$before" "and still nothing else in the data directory changes"
is "$(themis-dbhash --database-path "$R/var/lib/themisdb/rocksdb")" "$(manifest_field "$R/backups/themisdb/daily/2024-01-24/MANIFEST.json" content_hash_v2)" \
    "rocksdb/ holds the base backup again"
run themisdb-admin wal-replay --wal-directory "$R/backups/themisdb/wal/" --target-time "$(tsz "$ts2")" --database-path "$R/var/lib/themisdb/"
is "$rc" 0 "and replays to a later moment${err:+: $err}"
equals_truth "$R/var/lib/themisdb/rocksdb" "$T/truth/$name2" "$seq2" "$R/backups/themisdb/wal"
ok $? "equal to the generator's checkpoint at sequence $seq2"

# The config decides where the database goes: storage.rocksdb_path need not be rocksdb/.
mkdir -p "$R/etc/themisdb" "$R/srv/themis"
printf 'storage:\n  rocksdb_path: %s\n' "$R/srv/themis/data" > "$R/etc/themisdb/config.yaml"
echo keep > "$R/srv/themis/keep.txt"
run themisdb-restore --config-file "$R/etc/themisdb/config.yaml" --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$R/srv/themis"
is "$rc" 0 "restore into the directory holding the config's storage.rocksdb_path${err:+ ($err)}"
like "$err" "restored the database into $R/srv/themis/data;" "says where"
ok "$([ -f "$R/srv/themis/data/CURRENT" ] && [ "$(cat "$R/srv/themis/keep.txt")" = keep ] && [ "$(ls -A "$R/srv/themis" | tr '\n' ' ')" = "data keep.txt " ]; echo $?)" \
    "the database is at storage.rocksdb_path, the sibling file kept, nothing else added"
run themis-wal-replay --config-file "$R/etc/themisdb/config.yaml" --wal-directory "$R/backups/themisdb/wal/" --target-time "$(tsz "$ts1")"
is "$rc" 0 "wal-replay without --database-path replays the config's storage.rocksdb_path${err:+: $err}"
equals_truth "$R/srv/themis/data" "$T/truth/$name1" "$seq1" "$R/backups/themisdb/wal"; ok $? "to the ground truth"
run themisdb-restore --config-file "$R/etc/themisdb/config.yaml" --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$T/plain"
is "$rc" 0 "a target that is no data directory is restored into as before"
ok "$([ -f "$T/plain/CURRENT" ]; echo $?)" "the database at the target itself"
is "$(grep -c 'data directory' <<< "$err")" 0 "without a note"

# A running server: its LOCK is held. Every form of restore into it is refused and changes nothing.
mkdir -p "$R/live"
echo "node-live" > "$R/live/themisdb.id"
touch "$T/pause"
themis-loadgen --db "$R/live/rocksdb" --seed 3 --threads 2 --seconds 60 --checkpoint-dir "$T/live-ckpt" \
    --pause-file "$T/pause" 2>"$T/live.err" &
live=$!
on_exit "kill $live 2>/dev/null"
wait_for 60 test -s "$T/pause.ack"; ok $? "a server holds $R/live/rocksdb open (writers paused)"
was=$(listing "$R/live")
for form in "--target $R/live/" "--target $R/live/ --force" "--target $R/live/rocksdb --force"; do
    # shellcheck disable=SC2086
    run themisdb-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" $form
    is "$rc" 1 "restore $form while the server runs exits 1"
    like "$err" "a running process holds the database's LOCK: stop the server first \($R/live/rocksdb\)" "and says why"
    one_line_error themis-restore "$err"; ok $? "in one line"
done
run themis-restore --backup-root "$R/backups/themisdb/daily" --wal-directory "$R/backups/themisdb/wal" \
    --target-time "$(tsz "$ts2")" --target "$R/live/" --force
is "$rc" 1 "one-command recovery into it exits 1 too"
like "$err" "LOCK" "for the same reason"
is "$(listing "$R/live")" "$was" "nothing in the live data directory changed, no temporary left"
rm -f "$T/pause"; kill -TERM "$live" 2>/dev/null; wait "$live"
run themisdb-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$R/live/" --force
is "$rc" 0 "once the server stopped, the same restore (--force) works${err:+ ($err)}"
is "$(cat "$R/live/themisdb.id")" "node-live" "keeping the data directory's other files"

# A lock that is not RocksDB's own: a POSIX lock, and an open-file-description lock.
for kind in posix ofd; do
    rm -rf "$T/held"; themis-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$T/held" >/dev/null 2>&1
    : > "$T/held/LOCK"   # a backup carries no LOCK; a server creates it
    python3 - "$T/held/LOCK" "$kind" "$T/held.ready" <<'PY' & holder=$!
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == "posix":
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:
    # struct flock on Linux x86-64/aarch64: short type, short whence, off_t start, off_t len, pid_t pid
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
open(sys.argv[3], "w").close()
time.sleep(60)
PY
    on_exit "kill $holder 2>/dev/null"
    wait_for 30 test -f "$T/held.ready"; ok $? "python3 holds $kind lock on LOCK"
    was=$(listing "$T/held")
    run themis-restore --backup-directory "$R/backups/themisdb/daily/2024-01-24/" --target "$T/held" --force
    is "$rc" 1 "restore --force into a database whose LOCK has a $kind lock exits 1"
    is "$(listing "$T/held")" "$was" "and changes nothing"
    is "$(ls -A "$T" | grep -c '^\.held\.tmp-')" 0 "not even a temporary beside it"
    kill "$holder"; wait "$holder" 2>/dev/null; rm -f "$T/held.ready"
done
done_testing
