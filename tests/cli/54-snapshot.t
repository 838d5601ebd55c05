#!/usr/bin/env bash
# The backup's snapshot is made from the database's files alone (docs/rocksdb-backup-notes.md,
# "Snapshot from files"): it must gather the WAL from a separate wal_dir and the tables from
# db_paths into one directory that opens by itself, take blob files, and stay consistent
# under load; and it writes nothing where the database lives.
. "$(dirname "$0")/lib.sh"

# 1. A stopped database with its WAL in wal_dir and its tables over three db_paths, with
# unflushed writes left in the WAL. The truth is RocksDB's own view, opened with that layout.
paths="$T/db:300000,$T/p1:2000000,$T/p2:1000000000"
dbp="$T/db,$T/p1,$T/p2"
make_db "$T/db" --wal-dir "$T/wal" --db-paths "$paths" --no-flush-at-exit; ok $? "generator wrote a database with wal_dir and db_paths"
ok "$([ -n "$(ls "$T/wal"/*.log 2>/dev/null)" ] && [ -z "$(ls "$T/db"/*.log 2>/dev/null)" ] && \
      [ -n "$(ls "$T/p2"/*.sst 2>/dev/null)" ]; echo $?)" "WALs are in wal_dir only, tables also in another db_path"
truth=$(themis-dbhash --read-only --db-wal-dir "$T/wal" --db-paths "$dbp" --database-path "$T/db")
ok "$([ ${#truth} -eq 64 ]; echo $?)" "RocksDB opens it with its layout"
(ls -lR "$T/db" "$T/wal" "$T/p1" "$T/p2" | sha256sum) > "$T/before"

run themis-backup --database-path "$T/db" --backup-directory "$T/nopaths"
is "$rc" 1 "backup without --db-paths fails"
like "$err" "--db-paths" "and says to name the db_paths"
ok "$([ ! -e "$T/nopaths" ]; echo $?)" "and publishes nothing"

mv "$T/wal" "$T/wal.away"
run themis-backup --database-path "$T/db" --db-paths "$dbp" --backup-directory "$T/nowal"
mv "$T/wal.away" "$T/wal"
is "$rc" 1 "backup fails when the WAL is not where OPTIONS says, rather than leave the unflushed writes out"
like "$err" "no WAL file numbered [0-9]+ or later .*--db-wal-dir" "and says to name the WAL directory"
run themis-backup -v --database-path "$T/db" --db-paths "$dbp" --backup-directory "$T/bk" --compress
is "$rc" 0 "backup finds the WAL through OPTIONS' wal_dir and the tables through --db-paths"
like "$err" "snapshot from files: MANIFEST-[0-9]+ \([0-9]+ bytes\), [0-9]+ table and blob files linked, 0 copied, [1-9][0-9]* WAL files .*wal_dir cleared" \
    "-v says how the snapshot was made"
is "$(manifest_field "$T/bk/MANIFEST.json" content_hash_v2)" "$truth" "manifest's content hash equals RocksDB's view of the source"
members=$(zstd -q -dc "$T/bk/backup.tar.zst" | tar -t)
ok "$(printf '%s\n' "$members" | grep -q '^db/[0-9]*\.log$'; echo $?)" "the WAL files are in the backup"
is "$(printf '%s\n' "$members" | grep -c '^db/[0-9]*\.sst$')" \
   "$(ls "$T/db"/*.sst "$T/p1"/*.sst "$T/p2"/*.sst 2>/dev/null | wc -l)" "every table of every db_path is in the backup"
run themis-restore --backup-directory "$T/bk" --verify-only
is "$rc" 0 "verify-only passes${err:+: $err}"
run themis-restore --backup-directory "$T/bk" --target "$T/r1"
is "$rc" 0 "restore succeeds"
is "$(themis-dbhash --database-path "$T/r1")" "$truth" "restored database, opened alone, equals the source"
ok "$(grep -q '^  wal_dir=$' "$T"/r1/OPTIONS-*; echo $?)" "the restored OPTIONS no longer names the source's wal_dir"
# What the rewrite prevents: RocksDB reads WALs only from wal_dir. Were the source's still
# named, a tool loading OPTIONS would read its (here: empty) WAL directory and silently
# lose every write the WAL holds (ldb only ignores a wal_dir that does not exist).
keys=$(themis-dbhash -v --database-path "$T/r1" | sed -n 's/^cf default \([0-9]*\) keys$/\1/p')
mv "$T/wal" "$T/wal.moved"; mkdir "$T/wal"
ldb --db="$T/r1" --try_load_options scan >"$T/scan1" 2>"$T/scan1.err"; st=$?
rm -rf "$T/wal"; mv "$T/wal.moved" "$T/wal"
ok "$st" "ldb opens the restored database with its OPTIONS file"
is "$(wc -l < "$T/scan1")" "$keys" "and sees every key of the default CF, WAL included, with an empty directory at the source's wal_dir"
# The WAL archiver reads the same wal_dir, and learns column family names from the MANIFEST.
run themis-wal-archive --database-path "$T/db" --db-wal-dir "$T/wal" --wal-directory "$T/arch" --once
is "$rc" 0 "themis-wal-archive --db-wal-dir archives the WAL${err:+: $err}"
like "$(cat "$T/arch/cf.tsv" 2>/dev/null)" "pii_mappings" "and names the column families it writes, from the MANIFEST"
is "$( (ls -lR "$T/db" "$T/wal" "$T/p1" "$T/p2" | sha256sum) )" "$(cat "$T/before")" "nothing changed in the source's directories"

# A db_path on another filesystem (tmpfs): its tables cannot be hard-linked and are copied.
shm=$(mktemp -d /dev/shm/themis-test.XXXXXX 2>/dev/null)
if [ -n "$shm" ] && [ "$(stat -f -c %T "$shm")" != "$(stat -f -c %T "$T")" ]; then
    on_exit "rm -rf '$shm'"
    make_db "$T/x" --db-paths "$T/x:100000,$shm/x1:1000000000" --batches 1500; ok $? "a database with a db_path on tmpfs"
    run themis-backup -v --database-path "$T/x" --db-paths "$T/x,$shm/x1" --backup-directory "$T/xb"
    is "$rc" 0 "backup across filesystems"
    like "$err" "linked, [1-9][0-9]* copied" "the tables on the other filesystem are copied"
    themis-restore --backup-directory "$T/xb" --target "$T/xr" >/dev/null 2>&1
    is "$(themis-dbhash --database-path "$T/xr")" "$(themis-dbhash --read-only --db-paths "$T/x,$shm/x1" --database-path "$T/x")" \
       "restored equals the source"
else
    [ -n "$shm" ] && rmdir "$shm"
    skip "no other filesystem at /dev/shm"
fi

# 2. Live, WAL in wal_dir: a backup under load verifies; one taken while the generator holds
# its writers equals the generator's own checkpoint.
themis-loadgen --db "$T/live" --wal-dir "$T/livewal" --seed 54 --threads 4 --seconds 300 --flush-every 300 \
    --checkpoint-dir "$T/truth" --pause-file "$T/pause" --ready-file "$T/ready" --log "$T/commits.tsv" \
    >"$T/lg.log" 2>&1 &
lg=$!
on_exit "kill $lg 2>/dev/null; wait $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "generator writing with wal_dir"
wait_for 120 bash -c "[ \$(wc -l < '$T/commits.tsv') -ge 3000 ]"; ok $? "3000 batches committed"
run themis-backup --database-path "$T/live" --db-wal-dir "$T/livewal" --backup-directory "$T/lb" --compress
is "$rc" 0 "backup under load${err:+: $err}"
run themis-restore --backup-directory "$T/lb" --verify-only
is "$rc" 0 "verifies${err:+: $err}"
touch "$T/pause"
wait_for 60 test -s "$T/pause.ack"; ok $? "generator paused and took its checkpoint"
truth_seq=$(cat "$T/pause.ack")
run themis-backup --database-path "$T/live" --backup-directory "$T/pb"
is "$rc" 0 "backup of the paused database"
rm -f "$T/pause"
is "$(manifest_field "$T/pb/MANIFEST.json" last_sequence)" "$truth_seq" "its sequence is the generator's"
# The generator's checkpoint (RocksDB's) holds its WAL copies itself, but its OPTIONS file
# still names the live wal_dir: name the checkpoint as its own WAL directory.
is "$(manifest_field "$T/pb/MANIFEST.json" content_hash_v2)" "$(themis-dbhash --db-wal-dir "$T/truth/ckpt-$truth_seq" --database-path "$T/truth/ckpt-$truth_seq")" \
   "its content equals the generator's checkpoint"
kill -TERM "$lg"; wait "$lg"; is "$?" 0 "generator stops cleanly"

# 3. Live, tables over db_paths (RocksDB cannot checkpoint those, so no ground truth here):
# backups under load verify and restore to what their manifest says.
themis-loadgen --db "$T/dp" --db-paths "$T/dp:200000,$T/dp1:1000000000" --seed 55 --threads 4 --seconds 300 \
    --flush-every 200 --ready-file "$T/ready2" --log "$T/commits2.tsv" >"$T/lg2.log" 2>&1 &
lg2=$!
on_exit "kill $lg2 2>/dev/null; wait $lg2 2>/dev/null"
wait_for 60 test -f "$T/ready2"; ok $? "generator writing over db_paths"
wait_for 120 bash -c "[ \$(wc -l < '$T/commits2.tsv') -ge 3000 ]"; ok $? "3000 batches committed"
for i in 1 2; do
    run themis-backup --database-path "$T/dp" --db-paths "$T/dp,$T/dp1" --backup-directory "$T/dpb$i"
    is "$rc" 0 "backup $i over db_paths under load${err:+: $err}"
    run themis-restore --backup-directory "$T/dpb$i" --target "$T/dpr$i"
    is "$rc" 0 "restore $i"
    is "$(themis-dbhash --database-path "$T/dpr$i")" "$(manifest_field "$T/dpb$i/MANIFEST.json" content_hash_v2)" \
       "restored $i equals its manifest"
done
kill -TERM "$lg2"; wait "$lg2"

# 4. db_bench with blob files: the snapshot takes the live blob files; live and stopped.
if command -v db_bench >/dev/null; then
    db_bench --benchmarks=fillrandom --enable_blob_files=true --min_blob_size=100 --value_size=400 \
        --num=60000 --write_buffer_size=1000000 --enable_blob_garbage_collection=true \
        --db="$T/bench" --wal_dir="$T/bench" >/dev/null 2>&1
    ok $? "db_bench wrote a database with blob files"
    src=$(themis-dbhash --database-path "$T/bench")
    run themis-backup --database-path "$T/bench" --backup-directory "$T/bb" --compress
    is "$rc" 0 "backup of the blob database${err:+: $err}"
    ok "$(zstd -q -dc "$T/bb/backup.tar.zst" | tar -t | grep -q '\.blob$'; echo $?)" "with its blob files"
    run themis-restore --backup-directory "$T/bb" --verify-only
    is "$rc" 0 "verifies"
    themis-restore --backup-directory "$T/bb" --target "$T/br" >/dev/null 2>&1
    is "$(themis-dbhash --database-path "$T/br")" "$src" "restored blob database equals the source"
    db_bench --benchmarks=overwrite --use_existing_db=1 --enable_blob_files=true --min_blob_size=100 \
        --value_size=400 --num=60000 --duration=60 --write_buffer_size=1000000 \
        --enable_blob_garbage_collection=true --db="$T/bench" --wal_dir="$T/bench" >/dev/null 2>&1 &
    bench=$!
    on_exit "kill $bench 2>/dev/null; wait $bench 2>/dev/null"
    wait_for 30 bash -c "ls '$T/bench' | grep -q '^LOCK' && [ \$(ls '$T/bench'/*.blob | wc -l) -gt 0 ]"
    sleep 2
    run themis-backup --database-path "$T/bench" --backup-directory "$T/bl"
    is "$rc" 0 "backup of the blob database while db_bench overwrites it${err:+: $err}"
    run themis-restore --backup-directory "$T/bl" --verify-only
    is "$rc" 0 "verifies"
    kill "$bench" 2>/dev/null; wait "$bench" 2>/dev/null
else
    skip "db_bench not installed"
fi
done_testing
