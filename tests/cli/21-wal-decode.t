#!/usr/bin/env bash
# Our WAL reader and WriteBatch decoder see exactly what RocksDB's ldb sees, on the load
# generator's WAL (4 writers, 2PC, rollbacks, records across blocks); damage is reported
# with its offset; a torn tail is the end for now, not an error.
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/db" --seed 3 --threads 4 --batches 2000 --no-flush-at-exit --wal-ttl 3600 2>/dev/null
ok $? "load generator wrote a WAL-heavy database"
files=$(ls "$T"/db/*.log "$T"/db/archive/*.log 2>/dev/null)
n=0; same=0; big=0
for f in $files; do
    n=$((n + 1))
    themis-wal-dump --print-value "$f" | sed 's/ *$//' > "$T/ours"
    ldb dump_wal --walfile="$f" --header --print_value --try_load_options 2>&1 | sed 's/ *$//' > "$T/ldb"
    if cmp -s "$T/ours" "$T/ldb"; then same=$((same + 1)); else diag "differs: $f"; diff "$T/ours" "$T/ldb" | head -5 | sed 's/^/# /'; fi
    big=$((big + $(awk -F, 'NR > 1 && $3 > 32768' "$T/ours" | wc -l)))
done
ok "$([ "$n" -gt 3 ] && [ "$same" -eq "$n" ]; echo $?)" "all $n WAL files decode exactly as ldb dump_wal prints them ($same same)"
ok "$([ "$big" -gt 0 ]; echo $?)" "including $big records larger than a 32 KiB block"
all=$(for f in $files; do themis-wal-dump --stamps "$f" | tail -n +2; done)
like "$all" "BEGIN_PREPARE.*END_PREPARE" "prepare sections decoded"
like "$all" "COMMIT\\(0x" "commit markers decoded"
like "$all" "ROLLBACK\\(0x" "rollback markers decoded"
unstamped=$(printf '%s\n' "$all" | grep -E 'PUT|DELETE' | grep -vc 'STAMP(')
is "$unstamped" 0 "every record with data carries a TSv1 stamp"
merged=$(printf '%s\n' "$all" | awk '{ n = gsub(/STAMP\(/, "&"); if (n > 1) c++ } END { print c + 0 }')
diag "$merged records are merged write groups (several stamps)"

# Damage in a closed file: one flipped byte in a fragment's payload.
first=$(ls "$T"/db/archive/*.log | head -1)
cp "$first" "$T/damaged.log"
flip_byte "$T/damaged.log" 5000
run themis-wal-dump "$T/damaged.log"
is "$rc" 3 "a flipped byte fails with exit 3"
like "$err" "checksum mismatch at offset [0-9]+" "naming the offset: $err"
ok "$(one_line_error themis-wal-dump "$err"; echo $?)" "in one line"

# A torn tail: the file cut inside a record reads as the end for now.
last=$(themis-wal-dump "$first" | tail -1 | cut -d, -f4)
cp "$first" "$T/torn.log"
truncate -s $((last + 10)) "$T/torn.log"   # inside the last record
run themis-wal-dump "$T/torn.log"
is "$rc" 0 "a torn tail is not an error"
like "$err" "incomplete record at offset [0-9]+" "and is reported as the end for now"
is "$(printf '%s\n' "$out" | wc -l)" "$(( $(themis-wal-dump "$first" | wc -l) - 1 ))" "every complete record before it is read"
run themis-wal-dump "$T/missing.log"
is "$rc" 1 "a missing file exits 1"

# Files are read through a map: a fault on it (SIGBUS: a file cut shorter while read) is
# one line and exit 1. The signal is sent while the tool waits in the open of a FIFO.
mkfifo "$T/000099.log"
themis-wal-dump --count "$T/000099.log" > /dev/null 2> "$T/bus.err" &
pid=$!
wait_for 10 grep -q wait_for_partner "/proc/$pid/wchan"
ok $? "themis-wal-dump waits in the open of a FIFO"
kill -BUS "$pid"
wait "$pid"
is "$?" 1 "SIGBUS exits 1"
is "$(cat "$T/bus.err")" "themis-wal-dump: a WAL file shrank while it was read" "with one line saying why"
done_testing
