#!/usr/bin/env bash
# --progress=json writes JSON lines (phase, bytes_done, bytes_total, rate) to stderr only,
# from every tool that moves bytes; plain --progress draws only on a terminal.
. "$(dirname "$0")/lib.sh"

make_db "$T/db" --batches 20000; ok $? "load generator wrote a database"
themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress --progress=json 2>"$T/b.err" >"$T/b.out"
ok $? "backup with --progress=json"
is "$(cat "$T/b.out")" "" "nothing on stdout"
progress_json "$T/b.err" backup; ok $? "backup's stderr is JSON progress lines ending with done"
like "$(tail -1 "$T/b.err")" '"bytes_done":[1-9][0-9]*,"bytes_total":[1-9]' "with bytes done and a total"
themis-restore --backup-directory "$T/bk" --verify-only --progress=json 2>"$T/v.err"
ok $? "verify with --progress=json"
progress_json "$T/v.err" verify total; ok $? "verify's stderr is JSON progress lines ending with done, at the total"
like "$(tail -1 "$T/v.err")" "\"bytes_total\":$(stat -c %s "$T/bk/backup.tar.zst")," "verify read exactly the archive's size"
run themis-backup --database-path "$T/db" --backup-directory "$T/bk2" --progress=xml
is "$rc" 2 "an unknown progress format is a usage error"
run themis-backup --database-path "$T/db" --backup-directory "$T/bk3" --progress
is "$rc/$err" "0/" "--progress draws nothing when stderr is no terminal"

# The WAL tools. WAL is kept (--wal-ttl) and not flushed away, so the bytes the archiver
# must read are the sizes of the WAL files.
wal_bytes() { cat "$T/wdb"/*.log "$T/wdb"/archive/*.log 2>/dev/null | wc -c; }
themis-loadgen --db "$T/wdb" --seed 5 --threads 2 --batches 2000 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "a first part written"
themis-wal-archive --database-path "$T/wdb" --wal-directory "$T/w" --once --progress=json 2>"$T/a.err" >"$T/a.out"
ok $? "wal-archive --once with --progress=json"
is "$(cat "$T/a.out")" "" "nothing on stdout"
progress_json "$T/a.err" archive "$(wal_bytes)"; ok $? "its stderr is JSON progress lines; the last counts every byte of WAL"
# A first pass that takes seconds (zstd level 9) reports the lag within it; a new archive
# has never caught up, so the lag counts from the archiver's start, not from 1970.
t0=$(date +%s)
themis-wal-archive --database-path "$T/wdb" --wal-directory "$T/w9" --once --compress-level 9 --progress=json 2>"$T/a9.err"
ok $? "wal-archive --once at level 9 with --progress=json"
python3 - "$T/a9.err" $(( $(date +%s) - t0 + 1 )) <<'PY'
import json, sys
lag = [l for l in map(json.loads, open(sys.argv[1])) if "lag_seconds" in l and not l.get("done")]
assert lag, "no lag reported within the pass"
assert all(0 <= l["lag_seconds"] <= int(sys.argv[2]) for l in lag), lag[0]
print("# %d lines within the pass with the lag, the largest %.3f s" % (len(lag), max(l["lag_seconds"] for l in lag)))
PY
ok $? "the lag within a new archive's first pass counts from the archiver's start"
themis-backup --database-path "$T/wdb" --backup-directory "$T/base" >/dev/null; ok $? "base backup"

themis-wal-archive --database-path "$T/wdb" --wal-directory "$T/wf" --follow --interval 600000 --progress=json 2>"$T/f.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 test -f "$T/wf/state.tsv"; ok $? "wal-archive --follow with --progress=json made its first pass"
themis-loadgen --db "$T/wdb" --seed 6 --threads 2 --batches 3000 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
ok $? "more written while it follows"
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "it stops cleanly on SIGTERM"
progress_json "$T/f.err" archive "$(wal_bytes)"; ok $? "its stderr is JSON progress lines; the last counts the WAL of both parts"

themis-wal-archive --database-path "$T/wdb" --wal-directory "$T/w" --once; ok $? "the second part archived"
is "$(ls "$T/w"/*.wal.zst | wc -l)" 2 "the archive has two segments"
themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null
themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --progress=json 2>"$T/r.err" >"$T/r.out"
ok $? "wal-replay with --progress=json"
like "$(cat "$T/r.out")" "^reached sequence" "stdout has only the result"
progress_json "$T/r.err" replay total; ok $? "its stderr is JSON progress lines, ending at the total"
is "$(sed -n '$s/.*"bytes_total":\([0-9]*\),.*/\1/p' "$T/r.err")" "$(cat "$T/w"/*.wal.zst "$T/w/current.wal.zst.partial" | wc -c)" \
    "the total is the size of the archive's segments"
is "$(themis-dbhash --database-path "$T/r")" "$(themis-dbhash --database-path "$T/wdb")" "and the replay is whole"

run themis-wal-archive --wal-directory "$T/w" --check --progress=json
is "$rc" 2 "wal-archive: --progress with --check is a usage error"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --progress=xml
is "$rc" 2 "wal-replay: an unknown progress format is a usage error"
run themis-wal-archive --database-path "$T/wdb" --wal-directory "$T/w2" --once --progress
is "$rc/$err" "0/" "wal-archive --progress draws nothing when stderr is no terminal"
if command -v script >/dev/null; then
    out=$(script -qec "themis-wal-archive --database-path '$T/wdb' --wal-directory '$T/w3' --once --progress" /dev/null)
    like "$out" $'archive: [0-9.]+ MiB, [0-9.]+ MiB/s' "and draws its line on a terminal"
else
    skip "script(1) is not installed"
fi

# themis-dbhash --progress=json: the same hash on stdout, JSON lines of the bytes of keys and
# values hashed on stderr, ending above the value bytes alone (the generator's values are most
# of the database's logical size).
is "$(themis-dbhash --database-path "$T/db" --progress=json 2>"$T/h.err")" "$(themis-dbhash --database-path "$T/db")" \
    "themis-dbhash --progress=json prints the same hash"
progress_json "$T/h.err" hash; ok $? "and JSON progress lines on stderr"
like "$(tail -1 "$T/h.err")" '"bytes_done":[1-9][0-9]{6,},' "counting megabytes of keys and values"
done_testing
