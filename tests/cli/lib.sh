# lib.sh: TAP helpers for the shell tests (sourced). Each test gets a temp dir removed on exit.
set -u
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
T=$(mktemp -d "${TMPDIR:-/tmp}/themis-test.XXXXXX")
_tap_n=0
_tap_failed=0
_cleanup_hooks=()
on_exit() { _cleanup_hooks+=("$1"); }
_finish() {
    local h
    for h in "${_cleanup_hooks[@]+"${_cleanup_hooks[@]}"}"; do eval "$h" || true; done
    # TB_KEEP_FAILED=1 keeps the directory of a failed test to look into.
    if [ "${TB_KEEP_FAILED:-0}" = 1 ] && [ "$_tap_failed" -gt 0 ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap _finish EXIT

ok() {  # ok COND-EXIT-STATUS DESCRIPTION
    local st=$1; shift
    _tap_n=$((_tap_n + 1))
    if [ "$st" -eq 0 ]; then echo "ok $_tap_n - $*"; else echo "not ok $_tap_n - $*"; _tap_failed=$((_tap_failed + 1)); fi
}
is() {  # is GOT WANT DESCRIPTION
    local got=$1 want=$2; shift 2
    [ "$got" = "$want" ]; ok $? "$*"
    [ "$got" = "$want" ] || echo "#   got '$got', want '$want'"
}
like() {  # like TEXT REGEX DESCRIPTION
    local text=$1 re=$2; shift 2
    printf '%s' "$text" | grep -Eq -- "$re"; local st=$?
    ok $st "$*"
    [ $st -eq 0 ] || echo "#   '$text' does not match /$re/"
}
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # skip $*"; }
diag() { echo "# $*"; }
done_testing() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# run CMD...: runs a command, keeping its exit status in $rc, stdout in $out, stderr in $err.
run() {
    "$@" >"$T/.out" 2>"$T/.err"; rc=$?
    out=$(cat "$T/.out"); err=$(cat "$T/.err")
}

# wait_for DEADLINE_SECONDS CMD...: polls CMD every 50 ms until it succeeds or the deadline passes.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

# One line on stderr, naming the tool, is what every error must be.
one_line_error() {  # one_line_error TOOL STDERR
    [ "$(printf '%s\n' "$2" | grep -c .)" -eq 1 ] && printf '%s' "$2" | grep -q "^$1: "
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
    local b
    b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 0xff )))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# make_db DIR [LOADGEN ARGS...]: a small ThemisDB-like RocksDB from the load generator, stopped.
make_db() {
    local dir=$1; shift
    themis-loadgen --db "$dir" --seed 7 --threads 2 --batches 3000 "$@" >"$T/.loadgen.out" 2>&1 \
        || { cat "$T/.loadgen.out" >&2; return 1; }
}

# sha256 of a file, hex only.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# manifest_field FILE KEY: a top-level scalar of a MANIFEST.json (jq-free: our manifest is
# pretty-printed with one key per line).
manifest_field() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -1; }

# todo COND-EXIT-STATUS REASON DESCRIPTION: a check of a known, documented defect: a failure
# is reported as TAP "TODO" (visible, not fatal); a pass shows up as an unexpected success.
todo() {
    local st=$1 reason=$2; shift 2
    _tap_n=$((_tap_n + 1))
    if [ "$st" -eq 0 ]; then echo "ok $_tap_n - $* # TODO $reason"; else echo "not ok $_tap_n - $* # TODO $reason"; fi
}

# s3_server: starts a Ceph RGW for this test (tests/s3/rgw.sh) on 127.0.0.1, stopped on
# exit, and exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
# TB_S3_BUCKET. Without Ceph installed the whole test is skipped.
s3_server() {
    local st=0
    mkdir -p "$T/rgw"
    "$(dirname "$0")/../s3/rgw.sh" start "$T/rgw" 2>"$T/rgw.err" || st=$?
    if [ "$st" -eq 77 ]; then echo "1..0 # SKIP $(cat "$T/rgw.err")"; exit 0; fi
    on_exit "\"$(dirname "$0")/../s3/rgw.sh\" stop \"$T/rgw\""
    [ "$st" -eq 0 ] || { echo "Bail out! $(tail -1 "$T/rgw.err")"; exit 1; }
    . "$T/rgw/env"
    unset AWS_CA_BUNDLE AWS_PROFILE
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION="$AWS_REGION"
}

# Debian's awscli against the test server (it ignores AWS_ENDPOINT_URL; a pyenv shim
# earlier in PATH may be another awscli).
aws_() { "$(command -v /usr/bin/aws || command -v aws)" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# tsz NS: a nanosecond time stamp (the generator's checkpoints.tsv) as RFC 3339 with nanoseconds.
tsz() { local s=${1:0:10} ns=${1:10}; printf '%s.%09dZ' "$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%S)" "$((10#$ns))"; }

# equals_truth DB TRUTH SEQ WAL_DIR: whether DB's content hash equals the generator's
# checkpoint TRUTH at sequence SEQ. One difference is allowed and then proven to be only
# that: a column family the generator had created but not yet written by SEQ. CF creation
# is not in the WAL, so replay creates a CF at its first write (docs/wal-notes.md); with
# that CF created empty in a copy of DB, the hashes must be equal.
equals_truth() {
    local db=$1 truth=$2 seq=$3 w=$4 want extra cf first
    want=$(themis-dbhash --read-only --database-path "$truth")
    [ "$(themis-dbhash --database-path "$db")" = "$want" ] && return 0
    extra=$(comm -13 <(themis-dbhash -v --database-path "$db" | awk '$1 == "cf" { print $2 }' | sort) \
                     <(themis-dbhash -v --read-only --database-path "$truth" | awk '$1 == "cf" && $3 == 0 { print $2 }' | sort))
    [ -n "$extra" ] || return 1
    for cf in $extra; do
        first=$(awk -F'\t' -v n="$cf" '$2 == n { print $3 }' "$w/cf.tsv")
        [ -z "$first" ] || [ "$first" -gt "$seq" ] || return 1
    done
    rm -rf "$T/.eq" && cp -a "$db" "$T/.eq" || return 1
    for cf in $extra; do ldb --db="$T/.eq" create_column_family "$cf" >/dev/null 2>&1 || return 1; done
    [ "$(themis-dbhash --database-path "$T/.eq")" = "$want" ] || return 1
    diag "equal but for column family $extra: created before sequence $seq, first written after it"
}

# progress_json FILE PHASE [DONE]: FILE (a tool's stderr with --progress=json) is JSON lines
# only (each parsed on its own), all of PHASE with phase, bytes_done, bytes_total and rate;
# bytes_done never falls; the last line says done. DONE: the last bytes_done must be that
# number, or "total": equal to the last bytes_total (which must then be known, > 0).
progress_json() {
python3 - "$@" <<'PY'
import json, sys
path, phase = sys.argv[1], sys.argv[2]
want = sys.argv[3] if len(sys.argv) > 3 else None
lines = [json.loads(l) for l in open(path)]
assert lines, "no progress lines"
last = -1
for l in lines:
    assert l["phase"] == phase, l
    assert set(l) >= {"phase", "bytes_done", "bytes_total", "rate"}, l
    assert l["bytes_done"] >= last, ("bytes_done fell", last, l)
    last = l["bytes_done"]
end = lines[-1]
assert end.get("done") is True, end
if want == "total":
    assert end["bytes_total"] > 0 and end["bytes_done"] == end["bytes_total"], end
elif want is not None:
    assert end["bytes_done"] == int(want), (want, end)
print("# %d lines, last: %s" % (len(lines), json.dumps(end)))
PY
}

# ago N: the RFC 3339 time N days ago.
ago() { date -u -d "@$(( $(date +%s) - $1 * 86400 ))" +%Y-%m-%dT%H:%M:%SZ; }

# sixty_day_root: six real backups $T/root/b1..b6 of $T/db, their creation times set back
# to 60, 50, 40, 20, 10 and 1 days (days[i]), b4 incremental on b3, with a WAL archive $T/w
# of one segment per backup; seq[i] is bi's last sequence (retention tests 37 and 49).
sixty_day_root() {
    days=(0 60 50 40 20 10 1)
    for i in 1 2 3 4 5 6; do
        themis-loadgen --db "$T/db" --seed "$i" --threads 2 --batches 300 --wal-ttl 3600 2>/dev/null
        themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null
        inc=; [ "$i" = 4 ] && inc="--incremental-from $T/root/b3"
        themis-backup --database-path "$T/db" --backup-directory "$T/root/b$i" --compress $inc \
            --created "$(ago "${days[$i]}")" 2>/dev/null
        seq[$i]=$(manifest_field "$T/root/b$i/MANIFEST.json" last_sequence)
    done
}
