#!/bin/sh
# run.sh: runs each libFuzzer target of BUILD/fuzz for SECONDS on a working copy of its
# corpus (BUILD/corpus/NAME, seeded from tests/fuzz/corpus/NAME), and prints per target the
# executions and whether it found anything. Exit 1 when one did: the input is in
# BUILD/crashes/, the report in BUILD/logs/NAME.log. Each target's temporary files go
# under BUILD/tmp/NAME, removed after it even when it crashed.
#   tests/fuzz/run.sh BUILD SECONDS NAME...
set -u
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/corpus" "$build/crashes" "$build/logs"
# RocksDB (not instrumented) keeps some allocations for the process's life.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
found=0
for t in "$@"; do
    mkdir -p "$build/corpus/$t"
    log=$build/logs/$t.log
    tmp=$build/tmp/$t
    rm -rf "$tmp" && mkdir -p "$tmp"
    TMPDIR=$(cd "$tmp" && pwd) "$build/fuzz/$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$t-" "$build/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
    rc=$?
    rm -rf "$tmp"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${execs:-?} executions in ${secs:-$seconds} s, ${cov:-cov: ?}, no finding"
    else
        found=1
        echo "fuzz $t: FINDING after ${execs:-?} executions (exit $rc): $(grep -m 1 -o 'ERROR: .*\|fuzz: .*\|runtime error: .*' "$log")"
        echo "  input: $(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1)  report: $log"
    fi
done
exit $found
