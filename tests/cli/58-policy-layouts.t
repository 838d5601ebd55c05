#!/usr/bin/env bash
# Issue 15's matrix, stopped databases, part 2: the WAL in a wal_dir and the tables over
# db_paths, each under write_prepared and write_unprepared, with and without ThemisDB's
# merge operator, all with blob files. tests/cli/policy.sh says what is checked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/policy.sh"

policy_matrix <<'EOF_'
p0 prepared no waldir stream,inc
u0 unprepared no paths enc
pp prepared yes paths inc,stream,all
uw unprepared yes waldir enc,all
EOF_
done_testing
