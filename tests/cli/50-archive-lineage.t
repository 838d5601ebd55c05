#!/usr/bin/env bash
# The archive and the database it follows. A new archive begins after the last gap in the
# database's WAL (old WAL left in archive/ before a purge) and says so; an archive that
# meets a gap keeps and checks what it archived before it; after a point-in-time recovery
# the old archive refuses the recovered database instead of archiving nothing, and a new
# archive of it, with a new backup, recovers it; a torn partial segment (archiver killed
# mid-write, or read while it writes) checks and replays up to its last whole frame.
. "$(dirname "$0")/lib.sh"

idx_lines() { grep -vc '^#' "$1/index.tsv"; }

# --- a new archive after a gap ------------------------------------------------
# WAL kept in archive/ (WAL_ttl 3600), then a run that deletes its WAL (WAL_ttl 0): archive/
# still holds the old WAL, and the sequences between are gone.
themis-loadgen --db "$T/g" --seed 1 --threads 2 --batches 1000 --flush-every 200 --wal-ttl 3600 2>/dev/null
themis-backup --database-path "$T/g" --backup-directory "$T/groot/old" >/dev/null
old_seq=$(manifest_field "$T/groot/old/MANIFEST.json" last_sequence)
themis-loadgen --db "$T/g" --seed 2 --threads 2 --batches 1000 --flush-every 200 --wal-ttl 0 2>/dev/null
themis-loadgen --db "$T/g" --seed 3 --threads 1 --batches 100 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
ok "$(ls "$T/g/archive/"*.log >/dev/null 2>&1; echo $?)" "the database's archive/ holds WAL from before the purge"
run themis-wal-archive --database-path "$T/g" --wal-directory "$T/gw" --once
is "$rc" 0 "a new archive of a database with a gap in its WAL history${err:+ ($err)}"
like "$err" "^themis-wal-archive: a new archive starts after the last gap in the database's WAL \(sequences ([0-9]+)\.\.([0-9]+) are missing\): it begins at sequence [0-9]+; take a new backup for it$" \
    "and says where it begins: $err"
start=$(printf '%s' "$err" | sed -n 's/.*it begins at sequence \([0-9]*\);.*/\1/p')
last=$(themis-dbhash -v --database-path "$T/g" | awk '$1 == "sequence" { print $2 }')
run themis-wal-archive --wal-directory "$T/gw" --check
is "$rc" 0 "the new archive checks${err:+ ($err)}"
like "$out" "sequences $start\\.\\.$last, checksums and continuity good" "from the gap's end $start to the database's last sequence $last"
themis-backup --database-path "$T/g" --backup-directory "$T/gb" >/dev/null; ok $? "a new backup for it"
themis-loadgen --db "$T/g" --seed 4 --threads 2 --batches 300 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
run themis-wal-archive --database-path "$T/g" --wal-directory "$T/gw" --once
is "$rc" 0 "the archive goes on after more writes${err:+ ($err)}"
is "$err" "" "without the note (it was a new archive only the first time)"
themis-restore --backup-directory "$T/gb" --target "$T/gr" >/dev/null
run themis-wal-replay --wal-directory "$T/gw" --database-path "$T/gr"
is "$rc" 0 "replay onto the new backup${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/gr")" "$(themis-dbhash --database-path "$T/g")" "equals the database"
cp -a "$T/gb" "$T/groot/new"
run themis-expire --backup-root "$T/groot" --wal-directory "$T/gw" --keep-days 30 --keep-min 2 --dry-run
like "$out" "kept [0-9]+ WAL segments? \\(from sequence $start, where the archive begins: after the oldest kept backup's $old_seq, which this archive cannot bring forward\\)" \
    "expire says a kept backup from before the gap is older than the archive${err:+ ($err)}"

# --- an archive meets a gap --------------------------------------------------
themis-loadgen --db "$T/g" --seed 5 --threads 1 --batches 100 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
themis-loadgen --db "$T/g" --seed 6 --threads 2 --batches 2000 --flush-every 200 --wal-ttl 0 2>/dev/null
themis-loadgen --db "$T/g" --seed 7 --threads 1 --batches 100 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
run themis-wal-archive --database-path "$T/g" --wal-directory "$T/gw" --once
is "$rc" 4 "an archive that meets a gap: exit 4"
like "$err" "WAL gap: sequences ([0-9]+)\\.\\.[0-9]+ are missing: .*archive into a new --wal-directory and take a new backup" \
    "naming the range and how to start again"
gap_from=$(printf '%s' "$err" | sed -n 's/.*sequences \([0-9]*\)\.\..*/\1/p')
run themis-wal-archive --wal-directory "$T/gw" --check
is "$rc" 0 "what it archived before the gap checks${err:+ ($err)}"
like "$out" "sequences $start\\.\\.$((gap_from - 1))," "up to the sequence before the gap ($((gap_from - 1)))"
run themis-wal-archive --database-path "$T/g" --wal-directory "$T/gw" --once
is "$rc" 4 "a second run meets the same gap"
run themis-wal-archive --database-path "$T/g" --wal-directory "$T/gw2" --once
is "$rc" 0 "a new archive starts after it${err:+ ($err)}"
new_start=$(printf '%s' "$err" | sed -n 's/.*it begins at sequence \([0-9]*\);.*/\1/p')
ok "$([ "${new_start:-0}" -gt "$gap_from" ]; echo $?)" "beginning after the gap (at $new_start)"

# --- after a point-in-time recovery -------------------------------------------
themis-loadgen --db "$T/db" --seed 11 --threads 2 --batches 600 --flush-every 150 --wal-ttl 3600 2>/dev/null
themis-backup --database-path "$T/db" --backup-directory "$T/bk/b1" >/dev/null; ok $? "base backup"
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
mid=$(awk -F'\t' '$1 == "next_seq" { print $2 - 1 }' "$T/w/state.tsv")
themis-loadgen --db "$T/db" --seed 12 --threads 2 --batches 600 --flush-every 150 --wal-ttl 3600 2>/dev/null
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null; ok $? "archived to the end"
themis-restore --backup-directory "$T/bk/b1" --target "$T/r" >/dev/null
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-seq "$mid"
is "$rc" 0 "recovered to sequence $mid, before the archive's end${err:+ ($err)}"
themis-loadgen --db "$T/r" --seed 13 --threads 2 --batches 300 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "the recovered database takes new writes"
before=$(cd "$T/w" && sha256sum index.tsv state.tsv current.wal.zst.partial 2>/dev/null)
run themis-wal-archive --database-path "$T/r" --wal-directory "$T/w" --once
is "$rc" 3 "the old archive refuses the recovered database: exit 3"
like "$err" "restored or replaced since the archive followed it; archive it into a new --wal-directory and take a new backup" \
    "saying why and what to do"
ok "$(one_line_error themis-wal-archive "$err"; echo $?)" "in one line"
is "$(cd "$T/w" && sha256sum index.tsv state.tsv current.wal.zst.partial 2>/dev/null)" "$before" "and the old archive is unchanged"
run themis-wal-archive --database-path "$T/r" --wal-directory "$T/w2" --once
is "$rc" 0 "a new archive of the recovered database${err:+ ($err)}"
themis-backup --database-path "$T/r" --backup-directory "$T/bk2/b1" >/dev/null; ok $? "and a new backup of it"
themis-loadgen --db "$T/r" --seed 14 --threads 2 --batches 300 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
themis-wal-archive --database-path "$T/r" --wal-directory "$T/w2" --once 2>/dev/null; ok $? "its new writes archived"
themis-restore --backup-directory "$T/bk2/b1" --target "$T/r2" >/dev/null
run themis-wal-replay --wal-directory "$T/w2" --database-path "$T/r2"
is "$rc" 0 "recovery from the new backup and archive${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/r2")" "$(themis-dbhash --database-path "$T/r")" "equals the recovered database with its new writes"

# --- a torn partial segment -----------------------------------------------------
themis-loadgen --db "$T/t" --seed 21 --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
themis-wal-archive --database-path "$T/t" --wal-directory "$T/tw" --follow --interval 20 --segment-seconds 3600 2>/dev/null & ar=$!
on_exit "kill -9 \$ar 2>/dev/null"
frames=0
for s in 22 23 24; do
    themis-loadgen --db "$T/t" --seed $s --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
    want=$(themis-dbhash -v --database-path "$T/t" | awk '$1 == "sequence" { print $2 + 1 }')
    wait_for 60 grep -sq "^next_seq	$want	" "$T/tw/state.tsv" && frames=$((frames + 1))
done
is "$frames" 3 "the archiver wrote three more frames into its partial segment"
kill -9 "$ar"; wait "$ar" 2>/dev/null
P=$T/tw/current.wal.zst.partial
whole=$(themis-wal-archive --wal-directory "$T/tw" --check)
# Killed while writing a frame: the start of a zstd frame after the whole ones.
head -c 200000 /dev/urandom | zstd -q -c | head -c 3000 >>"$P"
run themis-wal-archive --wal-directory "$T/tw" --check
is "$rc" 0 "a partial segment with a torn last frame checks${err:+ ($err)}"
is "$out" "$whole" "as far as its whole frames: $whole"
themis-loadgen --db "$T/t0" --seed 21 --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
run themis-wal-replay --wal-directory "$T/tw" --database-path "$T/t0"
is "$rc" 0 "and replays${err:+ ($err)}"
themis-loadgen --db "$T/t" --seed 25 --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
run themis-wal-archive --database-path "$T/t" --wal-directory "$T/tw" --once
is "$rc" 0 "the archiver restarted cuts the torn frame and goes on${err:+ ($err)}"
last=$(themis-dbhash -v --database-path "$T/t" | awk '$1 == "sequence" { print $2 }')
like "$(themis-wal-archive --wal-directory "$T/tw" --check)" "sequences 1\\.\\.$last," "reaching the database's last sequence $last"
themis-loadgen --db "$T/t1" --seed 21 --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
themis-wal-replay --wal-directory "$T/tw" --database-path "$T/t1" >/dev/null
is "$(themis-dbhash --database-path "$T/t1")" "$(themis-dbhash --database-path "$T/t")" "a replay of it equals the database"

# A partial segment cut inside a frame its state counts (damage, not a crash: the state is
# written only after the frame is synced): the records cut are not silently skipped.
themis-wal-archive --database-path "$T/t" --wal-directory "$T/tw3" --follow --interval 20 --segment-seconds 3600 2>/dev/null & ar=$!
themis-loadgen --db "$T/t" --seed 26 --threads 1 --batches 50 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
want=$(themis-dbhash -v --database-path "$T/t" | awk '$1 == "sequence" { print $2 + 1 }')
wait_for 60 grep -sq "^next_seq	$want	" "$T/tw3/state.tsv"; ok $? "a second archive caught up"
kill -9 "$ar"; wait "$ar" 2>/dev/null
truncate -s $(( $(stat -c %s "$T/tw3/current.wal.zst.partial") - 5 )) "$T/tw3/current.wal.zst.partial"
run themis-wal-archive --database-path "$T/t" --wal-directory "$T/tw3" --once
is "$rc" 3 "its archiver refuses: exit 3"
like "$err" "the archive lacks sequences [0-9]+\\.\\.$((want - 1)) that its state says were archived" "naming what is missing: $err"

# Nothing to replay: the backup already holds the archive's last write.
themis-wal-archive --database-path "$T/t" --wal-directory "$T/tw" --once 2>/dev/null
themis-backup --database-path "$T/t" --backup-directory "$T/tb/b1" >/dev/null
last=$(themis-dbhash -v --database-path "$T/t" | awk '$1 == "sequence" { print $2 }')
themis-restore --backup-directory "$T/tb/b1" --target "$T/tr" >/dev/null
run themis-wal-replay --wal-directory "$T/tw" --database-path "$T/tr"
is "$rc" 0 "replay onto a base that holds the archive's end${err:+ ($err)}"
like "$out" "^reached sequence $last at 20[0-9-]+T[0-9:.]+Z; applied 0 batches \\(0 writes\\)" "applies nothing and names the base's time: $out"
run themis-restore --backup-root "$T/tb" --wal-directory "$T/tw" --target-time 2099-01-01T00:00:00Z --target "$T/tr2"
like "$out" "reached sequence $last at 20[0-9-]+T[0-9:.]+Z, 0 batches replayed" "one-command recovery says the same: $out"
done_testing
