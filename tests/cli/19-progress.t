#!/usr/bin/env bash
# --progress=json writes JSON lines (phase, bytes_done, bytes_total, rate) to stderr only.
. "$(dirname "$0")/lib.sh"

make_db "$T/db" --batches 20000; ok $? "load generator wrote a database"
themis-backup --database-path "$T/db" --backup-directory "$T/bk" --compress --progress=json 2>"$T/b.err" >"$T/b.out"
ok $? "backup with --progress=json"
is "$(cat "$T/b.out")" "" "nothing on stdout"
check() {  # check FILE PHASE: every line is JSON of the phase, bytes_done never falls, last is done
python3 - "$1" "$2" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines, "no progress lines"
last = -1
for l in lines:
    assert l["phase"] == sys.argv[2], l
    assert set(l) >= {"phase", "bytes_done", "bytes_total", "rate"}, l
    assert l["bytes_done"] >= last, l
    last = l["bytes_done"]
assert lines[-1].get("done") is True, lines[-1]
assert lines[-1]["bytes_total"] > 0 and lines[-1]["bytes_done"] > 0, lines[-1]
print("# %d lines, last: %s" % (len(lines), lines[-1]))
PY
}
check "$T/b.err" backup; ok $? "backup's stderr is JSON progress lines ending with done"
themis-restore --backup-directory "$T/bk" --verify-only --progress=json 2>"$T/v.err"
ok $? "verify with --progress=json"
check "$T/v.err" verify; ok $? "verify's stderr is JSON progress lines ending with done"
like "$(tail -1 "$T/v.err")" '"bytes_done":([0-9]+),"bytes_total":\1,' "verify read exactly the archive's size"
run themis-backup --database-path "$T/db" --backup-directory "$T/bk2" --progress=xml
is "$rc" 2 "an unknown progress format is a usage error"
done_testing
