#!/usr/bin/env bash
# The backup stream pipes into verification; one flipped byte fails it with exit 3.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"
themis-backup --database-path "$T/db" --stdout --compress | themis-restore --verify-only --from -
ok $? "themis-backup --stdout | themis-restore --verify-only --from - passes"
themis-backup --database-path "$T/db" --stdout | themis-restore --verify-only --from -
ok $? "the same with an uncompressed stream"

themis-backup --database-path "$T/db" --stdout --compress > "$T/s.tar.zst"
size=$(stat -c %s "$T/s.tar.zst")
for off in $((size / 3)) $((size / 2)) $((size - 40)); do
    cp "$T/s.tar.zst" "$T/f.tar.zst"
    flip_byte "$T/f.tar.zst" "$off"
    run themis-restore --verify-only --from - < "$T/f.tar.zst"
    is "$rc" 3 "flipped byte at $off of $size fails verification with exit 3"
    ok "$(one_line_error themis-restore "$err"; echo $?)" "with one line: $err"
done
themis-backup --database-path "$T/db" --stdout > "$T/s.tar"
cp "$T/s.tar" "$T/f.tar"
flip_byte "$T/f.tar" $(( $(stat -c %s "$T/s.tar") / 2 ))
run themis-restore --verify-only --quick --from - < "$T/f.tar"
is "$rc" 3 "flipped byte in an uncompressed stream fails --quick verification with exit 3"
run themis-restore --verify-only --from - < /dev/null
is "$rc" 3 "an empty stream fails verification"
done_testing
