#!/usr/bin/env bash
# Lossless WAL capture at ThemisDB's default WAL_ttl_seconds=0, where RocksDB deletes a WAL
# file as soon as its memtables are flushed: writers with 4 threads and 1 MiB memtables run
# for TB_TTL0_SECONDS (default 60) while archivers follow them, plain, with --encrypt, with
# --push to the test S3 server, and for a writer whose WAL is in a separate wal_dir. No gap,
# --check good, and PITR to the writer's last ground-truth checkpoint equals it, from every
# archive. Then kill -9 and restart of the archiver: no gap while the WAL file it needs
# lives on; exit 4 naming the range once RocksDB has deleted it.
. "$(dirname "$0")/lib.sh"

SECS=${TB_TTL0_SECONDS:-60}
s3_server
B=s3://$TB_S3_BUCKET
head -c 32 /dev/urandom > "$T/key"
mkdir -p "$T/tmp"

# Two writers at once (2 cores: the archivers compete with them for CPU, as on a server),
# and archivers that poll once a second: WAL files here live shorter than that (an
# archiver that only lists the directory when it polls loses whole files at once: exit 4
# within seconds at these rates, before the WAL files were held open).
lg() {  # lg NAME SEED [ARGS]: a writer with ThemisDB's WAL_ttl_seconds=0 and 1 MiB memtables
    local n=$1 s=$2; shift 2
    themis-loadgen --db "$T/$n" --seed "$s" --threads 4 --seconds "$SECS" --write-buffer 1M --wal-ttl 0 --rate 200 \
        --checkpoint-dir "$T/truth-$n" --checkpoint-every-ms 5000 --ready-file "$T/ready-$n" "$@" 2>"$T/lg-$n.err"
}
lg a 63 & lga=$!
lg b 64 --wal-dir "$T/b-wal" & lgb=$!
on_exit "kill $lga $lgb 2>/dev/null"
wait_for 60 test -f "$T/ready-a" -a -f "$T/ready-b"; ok $? "two writers running (WAL_ttl_seconds=0, 1 MiB memtables, 4 threads each)"

follow() {  # follow NAME DB [ARGS]: an archiver following DB into $T/NAME
    local n=$1 db=$2; shift 2
    themis-wal-archive --database-path "$T/$db" --wal-directory "$T/$n" --follow --interval 1000 --progress=json "$@" \
        2>"$T/$n.err" &
}
follow wa a --warn-lag 0; ara=$!
follow we a --encrypt --key-file "$T/key"; are=$!
follow wp a --push "$B/wal"; arp=$!
follow wb b --db-wal-dir "$T/b-wal"; arb=$!
# The same without inotify: the WAL directory listed every 5 ms.
TB_WAL_TAP_SCAN=1 follow ws b --db-wal-dir "$T/b-wal" -v; ars=$!
on_exit "kill $ara $are $arp $arb $ars 2>/dev/null"
for n in wa we wp wb ws; do wait_for 60 test -f "$T/$n/state.tsv" || break; done
ok $? "five archivers following (their first pass done)"
like "$(grep -v '^{' "$T/ws.err")" "held open as they appear \(no inotify: the directories are listed every 5 ms\)" "ws lists the directories instead of inotify"
themis-backup --database-path "$T/a" --backup-directory "$T/base-a" --compress >/dev/null 2>"$T/ba.err"
ok $? "base backup of a, taken under load$(cat "$T/ba.err")"
themis-backup --database-path "$T/b" --db-wal-dir "$T/b-wal" --backup-directory "$T/base-b" --compress >/dev/null 2>"$T/bb.err"
ok $? "base backup of b, taken under load$(cat "$T/bb.err")"
wait "$lga"; is "$?" 0 "writer a finished: $(tail -1 "$T/lg-a.err")"
wait "$lgb"; is "$?" 0 "writer b finished: $(tail -1 "$T/lg-b.err")"
for p in $ara $are $arp $arb $ars; do kill -TERM "$p"; done
for n in wa we wp wb ws; do
    case $n in wa) p=$ara ;; we) p=$are ;; wp) p=$arp ;; wb) p=$arb ;; ws) p=$ars ;; esac
    wait "$p"; is "$?" 0 "$n: the archiver ran without a gap and stopped cleanly${err:+}: $(grep -v '^{' "$T/$n.err" | head -3 | tr '\n' ' ')"
done
for n in wa we wp wb ws; do
    run themis-wal-archive --wal-directory "$T/$n" --check $([ $n = we ] && echo --key-file "$T/key")
    is "$rc" 0 "$n: --check good ($out$err)"
done
is "$(themis-wal-archive --wal-directory "$T/ws" --check)" "$(themis-wal-archive --wal-directory "$T/wb" --check)" \
    "ws (no inotify) holds the same records as wb"
# The lag is visible: every progress line after the first pass has lag_bytes and lag_seconds.
python3 - "$T/wa.err" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lag = [l for l in lines if "lag_bytes" in l]
assert len(lag) >= len(lines) - 2 and lag, (len(lag), len(lines))
assert all(l["lag_bytes"] >= 0 and 0 <= l["lag_seconds"] < 600 for l in lag), lag[-1]
print("# %d progress lines, %d with the lag; the largest: %d bytes, %.3f s" % (len(lines), len(lag),
      max(l["lag_bytes"] for l in lag), max(l["lag_seconds"] for l in lag)))
PY
ok $? "--progress=json shows how far the archive is behind (lag_bytes, lag_seconds)"
grep -q "^lag	[0-9]*	[0-9]*$" "$T/wa/state.tsv"; ok $? "and state.tsv records it for --check-age --max-wal-lag"
like "$(aws_ s3 ls "$B/wal/" 2>&1)" "index.tsv" "the pushed archive is in the bucket (awscli)"
is "$(aws_ s3 cp "$B/wal/index.tsv" - 2>/dev/null | sha256sum)" "$(sha256sum < "$T/wp/index.tsv")" "and its index equals the local one"

# PITR to each writer's last checkpoint (the final state, taken at its exit).
pitr() {  # pitr NAME DB WAL [ARGS]
    local n=$1 db=$2 w=$3 last name seq ts; shift 3
    last=$(tail -1 "$T/truth-$db/checkpoints.tsv")
    name=$(echo "$last" | cut -f1); seq=$(echo "$last" | cut -f2); ts=$(echo "$last" | cut -f3)
    rm -rf "$T/r-$n"
    themis-restore --backup-directory "$T/base-$db" --target "$T/r-$n" >/dev/null
    TMPDIR=$T/tmp run themis-wal-replay --wal-directory "$w" --database-path "$T/r-$n" --target-time "$(tsz "$ts")" "$@"
    is "$rc" 0 "$n: replay to the last checkpoint's time${err:+: $err}"
    like "$out" "reached sequence $seq " "$n: and reached its sequence $seq"
    equals_truth "$T/r-$n" "$T/truth-$db/$name" "$seq" "$T/wa"; ok $? "$n: PITR equals the writer's checkpoint"
}
pitr wa a "$T/wa"
pitr we a "$T/we" --key-file "$T/key"
pitr wp a "$B/wal"
pitr wb b "$T/wb"

# kill -9 and restart. A slow writer (a WAL file lives for seconds): the archiver is
# killed each time a new WAL file appears and restarted at once; the file its state names
# still exists each time, so nothing is missing.
themis-loadgen --db "$T/c" --seed 65 --threads 4 --seconds 600 --write-buffer 1M --wal-ttl 0 --rate 20 \
    --ready-file "$T/ready-c" 2>"$T/lg-c.err" & lgc=$!
on_exit "kill $lgc 2>/dev/null"
wait_for 60 test -f "$T/ready-c"; ok $? "a slow writer running"
newest() { ls "$1" | grep -E '^[0-9]+\.log$' | sort -n | tail -1; }
state_log() { printf '%06d.log' "$(awk '$1 == "position" { print $2 }' "$1/state.tsv")"; }
themis-wal-archive --database-path "$T/c" --wal-directory "$T/wc" --follow --interval 50 2>"$T/wc0.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 test -f "$T/wc/state.tsv"
alive=0
for k in 1 2 3; do
    cur=$(newest "$T/c")
    wait_for 120 bash -c "[ \"\$(ls '$T/c' | grep -E '^[0-9]+\.log$' | sort -n | tail -1)\" != '$cur' ]" || break
    kill -9 "$ar"; wait "$ar" 2>/dev/null
    [ -e "$T/c/$(state_log "$T/wc")" ] && alive=$((alive + 1))
    themis-wal-archive --database-path "$T/c" --wal-directory "$T/wc" --follow --interval 50 2>"$T/wc$k.err" & ar=$!
done
is "$alive" 3 "killed with -9 three times as WAL files rolled over, the file the state names still there each time"
kill -TERM "$lgc"; wait "$lgc"; is "$?" 0 "slow writer stopped"
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "the restarted archiver caught up and stopped cleanly: $(cat "$T"/wc?.err | head -2)"
run themis-wal-archive --wal-directory "$T/wc" --check
is "$rc" 0 "--check: no gap across the restarts ($out$err)"
last=$(themis-dbhash -v --database-path "$T/c" | awk '$1 == "sequence" { print $2 }')
like "$out" "\.\.$last," "and the archive reaches the writer's last sequence $last"

# A fast writer, and the archiver down until RocksDB has deleted the WAL file its state
# names: the restart cannot continue and says which sequences are lost (exit 4).
themis-loadgen --db "$T/d" --seed 66 --threads 4 --seconds 600 --write-buffer 1M --wal-ttl 0 \
    --ready-file "$T/ready-d" 2>"$T/lg-d.err" & lgd=$!
on_exit "kill $lgd 2>/dev/null"
wait_for 60 test -f "$T/ready-d"
# Its archiver is slow (zstd level 19): the backlog it says it has grows, and it says so.
themis-wal-archive --database-path "$T/d" --wal-directory "$T/wd" --follow --interval 50 --compress-level 19 \
    --warn-lag 4M 2>"$T/wd0.err" & ar=$!
wait_for 60 test -f "$T/wd/state.tsv"; ok $? "a fast writer and its archiver running"
wait_for 120 grep -q "MiB of WAL wait to be archived: the archive is slower than the database writes" "$T/wd0.err"
ok $? "a slow archiver says when its backlog grows: $(grep -m1 MiB "$T/wd0.err")"
kill -9 "$ar"; wait "$ar" 2>/dev/null
# The newest WAL file at the kill gets writes the archiver never read; wait until it is gone.
gone=$(newest "$T/d")
wait_for 120 bash -c "[ ! -e '$T/d/$gone' ] && [ ! -e '$T/d/archive/$gone' ]"; ok $? "RocksDB deleted $gone, written after the kill"
run themis-wal-archive --database-path "$T/d" --wal-directory "$T/wd" --once
is "$rc" 4 "the restart exits 4"
like "$err" "WAL gap: sequences [0-9]+\.\.[0-9]+ are missing" "and names the missing range"
one_line_error themis-wal-archive "$err"; ok $? "in one line"
kill -TERM "$lgd"; wait "$lgd"

# The database replaced underneath a follower (restored from a backup at the same path):
# the WAL files it still holds are the old database's; the new one's are refused, exit 3.
themis-loadgen --db "$T/x" --seed 67 --threads 2 --batches 300 --wal-ttl 0 2>/dev/null
themis-backup --database-path "$T/x" --backup-directory "$T/xb" >/dev/null 2>&1
themis-loadgen --db "$T/x" --seed 68 --threads 2 --batches 300 --wal-ttl 0 --no-flush-at-exit 2>/dev/null
themis-wal-archive --database-path "$T/x" --wal-directory "$T/wx" --follow --interval 50 2>"$T/wx.err" & ar=$!
wait_for 60 test -f "$T/wx/state.tsv"; ok $? "a follower of database x"
rm -rf "$T/x"; themis-restore --backup-directory "$T/xb" --target "$T/x" >/dev/null
themis-loadgen --db "$T/x" --seed 69 --threads 2 --batches 300 --wal-ttl 0 2>/dev/null
ok $? "x restored from its older backup and written again"
wait_for 60 bash -c "! kill -0 $ar 2>/dev/null"; ok $? "the follower stops by itself"
wait "$ar"; is "$?" 3 "exit 3"
like "$(cat "$T/wx.err")" "restored or replaced since the archive followed it" "saying the database was restored or replaced"

# recycle_log_file_num > 0: a recycled WAL file is overwritten in place; refused at start.
# (RocksDB 7.8 recycles only under kSkipAnyCorruptedRecords, and crashed in MarkLogsSynced
# when we tried: the database here is a copy whose OPTIONS file says it recycles.)
cp -a "$T/c" "$T/rc"
sed -i 's/^\( *recycle_log_file_num=\).*/\12/' "$T"/rc/OPTIONS-*
grep -q "recycle_log_file_num=2" "$T"/rc/OPTIONS-*; ok $? "a database whose OPTIONS say recycle_log_file_num=2"
run themis-wal-archive --database-path "$T/rc" --wal-directory "$T/wrc" --follow
is "$rc" 1 "the archiver refuses it (exit 1)"
like "$err" "recycles its WAL files \(recycle_log_file_num=2 in .*OPTIONS-[0-9]+\).*set recycle_log_file_num=0" "and says why"
one_line_error themis-wal-archive "$err"; ok $? "in one line"
done_testing
