#!/usr/bin/env bash
# The code's shape (issue 18, docs/architecture.md): no library function over 80 lines, no
# line over 120 characters, the layout of .clang-format, a library that never prints, exits
# or reads the environment, and tools that never ask whether a location is s3://.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
lib_c=$(git ls-files 'libbackup/*.c' 'libbackup/*.cc' 'wal/*.c' 2>/dev/null || ls libbackup/*.c libbackup/*.cc wal/*.c)
all_src=$(git ls-files 'libbackup/*.[ch]' 'libbackup/*.cc' 'wal/*.[ch]' 'tools/*.[ch]' 2>/dev/null ||
          ls libbackup/*.[ch] libbackup/*.cc wal/*.[ch] tools/*.[ch])
[ -n "$lib_c" ] && [ -n "$all_src" ]; ok $? "the sources are listed"

long=$(awk -f tests/cli/fnlen.awk $lib_c | awk '$1 > 80 { printf " %s(%s:%d)", $2, $3, $1 }')
is "$long" "" "no function in libbackup/ or wal/ is longer than 80 lines"
wide=$(awk 'length > 120 { printf " %s:%d", FILENAME, FNR }' $all_src)
is "$wide" "" "no line in libbackup/, wal/ or tools/ is longer than 120 characters"

if command -v clang-format >/dev/null; then
    bad=
    for f in $all_src; do
        clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
    done
    is "$bad" "" "every source file follows .clang-format"
else
    skip "clang-format is not installed"
fi

# Comments aside, the library has no printf, stderr/stdout, exit or getenv.
prints=$(grep -nE '\b(printf|puts|putchar|perror|exit|_exit|getenv|secure_getenv)[[:space:]]*\(|\b(stderr|stdout)\b' \
             $lib_c | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' | cut -d: -f1,2 | tr '\n' ' ')
is "$prints" "" "the library never prints, exits or reads the environment"
s3ask=$(grep -ln 'tb_s3_is_url' tools/*.c | grep -v 'tools/themis-s3.c' | tr '\n' ' ')
is "$s3ask" "" "no tool but themis-s3 asks whether a location is s3:// (the repository handle does)"
done_testing
