#!/usr/bin/env bash
# A WAL archive whose index.tsv, cf.tsv or state.tsv is damaged or forged (a line repeated,
# lines swapped, a range that is not its file's, a bad column family line, a bad state) is
# refused by --check and by replay with exit 3, in one line naming the file and the line,
# before anything is applied; --check changes no file.
. "$(dirname "$0")/lib.sh"

themis-loadgen --db "$T/db" --seed 7 --threads 1 --batches 100 --wal-ttl 100000 --no-flush-at-exit >/dev/null 2>&1
themis-backup --database-path "$T/db" --backup-directory "$T/base" >/dev/null 2>&1; ok $? "base backup"
themis-loadgen --db "$T/db" --seed 8 --threads 2 --batches 200 --wal-ttl 100000 --no-flush-at-exit >/dev/null 2>&1
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once --segment-size 60000; ok $? "archived"
nseg=$(grep -vc '^#' "$T/w/index.tsv")
ok "$([ "$nseg" -ge 4 ]; echo $?)" "in several segments ($nseg)"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 0 "the archive as written checks good"
records=${out%% records*}
cp -a "$T/w" "$T/good"
themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null; ok $? "base restored"
before=$(themis-dbhash --database-path "$T/r")

# restore: the archive as written again.
restore() { rm -rf "$T/w"; cp -a "$T/good" "$T/w"; }
# dirsum: every file of the archive with its hash, to see that --check changed nothing.
dirsum() { (cd "$T/w" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
# check_refuses WHAT REGEX: --check exits 3 with one line matching REGEX, changing nothing.
check_refuses() {
    local sum; sum=$(dirsum)
    run themis-wal-archive --wal-directory "$T/w" --check
    is "$rc" 3 "$1: --check exits 3"
    like "$err" "$2" "naming what: $err"
    ok "$(one_line_error themis-wal-archive "$err"; echo $?)" "in one line"
    is "$(dirsum)" "$sum" "and changes no file"
}
# line N of index.tsv (1: the header).
iline() { sed -n "$1p" "$T/good/index.tsv"; }

# The index's lines twice (an index appended to itself): the first segment starts with a
# record marked RESYNC (the archive's start), so record continuity alone let it through.
restore
grep -v '^#' "$T/good/index.tsv" >>"$T/w/index.tsv"
check_refuses "the index's lines twice" "index\\.tsv line $((nseg + 2)): segment [0-9-]+\\.wal\\.zst repeats line 2"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
is "$rc" 3 "replay refuses it: exit 3 (not every batch applied twice)"
like "$err" "index\\.tsv line $((nseg + 2))" "naming the line: $err"
is "$(themis-dbhash --database-path "$T/r")" "$before" "and the database is unchanged"

# One data line repeated further down.
restore
iline 3 >>"$T/w/index.tsv"
check_refuses "a repeated index line" "index\\.tsv line $((nseg + 2)): segment [0-9-]+\\.wal\\.zst repeats line 3"

# Two lines swapped.
restore
{ iline 1; iline 2; iline 4; iline 3; sed -n '5,$p' "$T/good/index.tsv"; } >"$T/w/index.tsv"
check_refuses "swapped index lines" "index\\.tsv line 4: .*(before|overlaps)"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --dry-run
is "$rc" 3 "replay --dry-run: exit 3, not a false gap"
like "$err" "index\\.tsv line 4" "naming the line: $err"

# A line whose next sequence is not the one in its file's name.
restore
awk -F'\t' -v OFS='\t' 'NR == 4 { $2 = sprintf("%020d", $2 + 1) } { print }' "$T/good/index.tsv" >"$T/w/index.tsv"
check_refuses "a range that disagrees with its file's name" "index\\.tsv line 4: .*name"

# A line with a field too many, and one with junk after a number.
restore
awk -F'\t' -v OFS='\t' 'NR == 3 { $0 = $0 "\textra" } { print }' "$T/good/index.tsv" >"$T/w/index.tsv"
check_refuses "an index line with an extra field" "index\\.tsv line 3"
restore
awk -F'\t' -v OFS='\t' 'NR == 3 { $5 = $5 "x" } { print }' "$T/good/index.tsv" >"$T/w/index.tsv"
check_refuses "an index size with junk" "index\\.tsv line 3"

# cf.tsv: an id that is no number, an id twice, junk after the sequence, a missing field.
restore
printf 'x1\tbad\t5\n' >>"$T/w/cf.tsv"
check_refuses "cf.tsv: a bad id" "cf\\.tsv line [0-9]+"
restore
printf '1\tagain\t5\n' >>"$T/w/cf.tsv"
check_refuses "cf.tsv: an id twice" "cf\\.tsv line [0-9]+: .*id 1"
restore
sed -i '2s/$/junk/' "$T/w/cf.tsv"
check_refuses "cf.tsv: junk after a number" "cf\\.tsv line 2"
restore
printf '7\tseven\n' >>"$T/w/cf.tsv"
check_refuses "cf.tsv: a field missing" "cf\\.tsv line [0-9]+"
rm -rf "$T/r"; themis-restore --backup-directory "$T/base" --target "$T/r" >/dev/null
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r"
is "$rc" 3 "replay refuses a damaged cf.tsv too"
is "$(themis-dbhash --database-path "$T/r")" "$before" "and the database is unchanged"

# state.tsv: an unknown line, junk after a number, a position beyond the archive.
restore
echo "bogus	1" >>"$T/w/state.tsv"
check_refuses "state.tsv: an unknown line" "state\\.tsv line [0-9]+"
restore
sed -i 's/^position\t\([0-9]*\)\t\([0-9]*\)$/position\t\1\t\2junk/' "$T/w/state.tsv"
check_refuses "state.tsv: junk after a number" "state\\.tsv line 1"
restore
end=$(awk -F'\t' '$1 == "next_seq" { print $2 }' "$T/good/state.tsv")
sed -i "s/^next_seq\t[0-9]*\t/next_seq\t$((end + 1000))\t/" "$T/w/state.tsv"
check_refuses "state.tsv: a position beyond the archive" "state\\.tsv.*$((end + 1000))"

# The archive as written still checks good, with the same records.
restore
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc:${out%% records*}" "0:$records" "the untouched archive still checks good ($records records)"
done_testing
