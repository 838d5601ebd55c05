#!/usr/bin/env bash
# make install puts the tools and ThemisDB's alias names under DESTDIR/PREFIX.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
: "${TB_BUILD:=$(dirname "$TB_BIN")}"

make -s -C "$top" BUILD="$TB_BUILD" install DESTDIR="$T/root" PREFIX=/usr >"$T/install.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr"
for t in themis-backup themis-restore themis-dbhash; do
    ok "$([ -x "$T/root/usr/bin/$t" ]; echo $?)" "$t installed"
done
for a in themisdb-backup:themis-backup themisdb-restore:themis-restore; do
    alias=${a%%:*} tool=${a#*:}
    run "$T/root/usr/bin/$alias" --version
    like "$out" "^$tool " "$alias runs $tool"
done
ok "$([ ! -e "$T/root/usr/bin/themis-loadgen" ]; echo $?)" "the test fixture is not installed"
run "$T/root/usr/bin/themisdb-admin" wal-replay --version
like "$out" "^themis-wal-replay " "themisdb-admin wal-replay runs the installed themis-wal-replay"
run "$T/root/usr/bin/themisdb-admin" data-hash --version
like "$out" "^themis-dbhash " "themisdb-admin data-hash runs themis-dbhash"
run "$T/root/usr/bin/themisdb-admin" frobnicate
is "$rc" 2 "an unknown subcommand is a usage error"
done_testing
