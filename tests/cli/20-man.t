#!/usr/bin/env bash
# Every tool has a man page that renders without warnings and documents every option its
# --help lists; make install puts the pages where man finds them.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

for page in "$top"/docs/man/*.1; do
    tool=$(basename "$page" .1)
    warnings=$(groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
    is "$warnings" "" "$tool.1 renders without warnings"
    [ -x "$TB_BIN/$tool" ] || continue
    missing=
    text=$(sed 's/\\-/-/g' "$page")
    for opt in $("$TB_BIN/$tool" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
        printf '%s' "$text" | grep -qE -- "$opt([^a-z0-9-]|\$)" || missing="$missing $opt"
    done
    is "$missing" "" "$tool.1 documents every option of $tool --help"
done
for tool in themis-backup themis-restore themis-dbhash; do
    ok "$([ -f "$top/docs/man/$tool.1" ]; echo $?)" "$tool has a man page"
done
: "${TB_BUILD:=$(dirname "$TB_BIN")}"
make -s -C "$top" BUILD="$TB_BUILD" install DESTDIR="$T/root" PREFIX=/usr >/dev/null 2>&1
MANPATH="$T/root/usr/share/man" man -w themis-backup >/dev/null 2>&1
ok $? "man finds the installed themis-backup page"
done_testing
