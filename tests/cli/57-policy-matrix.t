#!/usr/bin/env bash
# Issue 15's matrix, stopped databases, part 1: each write policy with ThemisDB's merge
# operator and blob files, and write_committed without a merge operator (which Debian's ldb
# also opens). tests/cli/policy.sh says what is checked; test 58 holds the layouts (wal_dir,
# db_paths) and the other policies without merges; test 59 the live writer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/policy.sh"

policy_matrix <<'EOF_'
cm committed yes plain stream,inc
pm prepared yes plain enc,all
um unprepared yes plain stream,inc,all
c0 committed no plain enc
EOF_
done_testing
