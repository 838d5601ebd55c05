#!/usr/bin/env bash
# A new WAL archive started while the database is stopped (its WAL holds no record): the
# archive starts where the database's MANIFEST says it stands, so an offline backup taken
# then has no gap before the archive. A write-prepared or write-unprepared database takes
# one sequence without WAL when it is opened again (docs/wal-notes.md, "Restarts"); the
# archive's first record covers it. Replay of the backup then reaches the writer's ground
# truth under every write policy (before this, replay refused with a false gap, exit 4).
. "$(dirname "$0")/lib.sh"

for p in committed prepared unprepared; do
    hash_of() { themis-txnwriter --hash --db "$1" --policy $p --merge 2>&1; }
    d=$T/$p
    themis-txnwriter --db "$d/db" --policy $p --merge --blob --seed 5 --threads 2 --batches 200 2>"$d.err"
    ok $? "$p: the writer ran and stopped" || cat "$d.err" >&2
    themis-wal-archive --database-path "$d/db" --wal-directory "$d/arch" --follow --interval 50 2>"$d/a.err" &
    ar=$!
    on_exit "kill $ar 2>/dev/null; wait $ar 2>/dev/null"
    wait_for 60 test -f "$d/arch/state.tsv"; ok $? "$p: the archiver made its first pass over the stopped database"
    run themis-backup --database-path "$d/db" --backup-directory "$d/base" --compress
    is "$rc" 0 "$p: offline backup${err:+ ($err)}"
    base=$(manifest_field "$d/base/MANIFEST.json" last_sequence)
    themis-txnwriter --db "$d/db" --policy $p --merge --blob --seed 6 --threads 2 --batches 300 \
        --checkpoint-dir "$d/ck" --checkpoint-at 100,300 2>"$d.err"
    ok $? "$p: the writer ran again, with ground-truth checkpoints" || cat "$d.err" >&2
    kill $ar; wait $ar
    is "$?" 0 "$p: the archiver stopped cleanly$( [ -s "$d/a.err" ] && echo ": $(head -1 "$d/a.err")")"
    first=$(sed -n '2s/^0*\([0-9][0-9]*\)\t.*/\1/p' "$d/arch/index.tsv")
    is "$first" "$((base + 1))" "$p: the archive starts right after the backup's sequence $base"
    run themis-wal-archive --wal-directory "$d/arch" --check
    is "$rc" 0 "$p: the archive checks${err:+ ($err)}"
    IFS=$'\t' read -r n1 _ t1 < <(sed -n 1p "$d/ck/checkpoints.tsv")
    for to in "$n1" end; do
        rm -rf "$d/r"
        themis-restore --backup-directory "$d/base" --target "$d/r" 2>/dev/null
        if [ "$to" = end ]; then
            run themis-wal-replay --wal-directory "$d/arch" --database-path "$d/r"
            want=$(hash_of "$d/db")
        else
            run themis-wal-replay --wal-directory "$d/arch" --database-path "$d/r" --target-time "$(tsz "$t1")"
            want=$(hash_of "$d/ck/$n1")
        fi
        is "$rc" 0 "$p: replay of the backup to $to${err:+ ($err)}"
        is "$(hash_of "$d/r")" "$want" "$p: it is the writer's content at $to"
    done
done
done_testing
