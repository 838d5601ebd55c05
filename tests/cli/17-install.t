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
done_testing
