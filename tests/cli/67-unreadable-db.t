#!/usr/bin/env bash
# A database the linked RocksDB cannot read or flush into: a comparator it does not have
# (standing in for table files of a newer RocksDB), a merge operator the tools do not know
# (ThemisDB's semantics under another name). Everything that does not need to read the
# tables still works: backup (checked by checksums, the content hash recorded as
# unavailable with the reason), quick and full verify, restore, WAL archiving, and PITR by
# a WAL file that the server's own RocksDB applies. themis-wal-replay refuses to open such
# a base (exit 1, the base unchanged, naming --as-wal-file); the one-command recovery
# writes the WAL file by itself and says so. The server stand-in is themis-txnwriter with
# the same names; its content hash must equal the writer's ground-truth checkpoint.
. "$(dirname "$0")/lib.sh"

listing() { (cd "$1" && find . -printf '%p %s\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

for kind in comparator merge; do
    if [ $kind = comparator ]; then
        names="--merge --comparator-name Future.Bytewise"
        why="column family default uses the comparator Future\\.Bytewise, which the tools do not have"
    else
        names="--merge --merge-name Future.U64Add"
        why="merge operator Future\\.U64Add of column family default is not one the tools know"
    fi
    hash_of() { themis-txnwriter --hash --db "$1" --policy unprepared $names 2>&1; }
    d=$T/$kind
    mkdir -p "$d/db"
    themis-wal-archive --database-path "$d/db" --wal-directory "$d/arch" --follow --interval 50 2>"$d/a.err" &
    ar=$!
    on_exit "kill $ar 2>/dev/null; wait $ar 2>/dev/null"
    # Its memtables left in the WAL: reading the counter merges its operands.
    themis-txnwriter --db "$d/db" --policy unprepared $names --blob --seed 3 --threads 2 --batches 200 \
        --write-buffer 64M --no-flush-at-exit 2>"$d/w.err"
    ok $? "$kind: the writer ran (write_unprepared, merges, blob files, nothing flushed)" || cat "$d/w.err" >&2

    run themis-backup --database-path "$d/db" --backup-directory "$d/root/b1" --compress
    is "$rc" 0 "$kind: backup${err:+ ($err)}"
    like "$err" "without a content hash: $why" "$kind: it says it has no content hash, and why"
    is "$(manifest_field "$d/root/b1/MANIFEST.json" content_hash)" "null" "$kind: the manifest records no content hash"
    run themis-restore --backup-directory "$d/root/b1" --verify-only --quick
    is "$rc" 0 "$kind: --verify-only --quick${err:+ ($err)}"
    run themis-restore --backup-directory "$d/root/b1" --verify-only
    is "$rc" 0 "$kind: --verify-only${err:+ ($err)}"
    like "$err" "the content was not compared" "$kind: full verify says what it could not compare"

    themis-txnwriter --db "$d/db" --policy unprepared $names --blob --seed 4 --threads 2 --batches 300 \
        --checkpoint-dir "$d/ck" --checkpoint-at 100,250 2>"$d/w2.err"
    ok $? "$kind: the writer ran again, with ground-truth checkpoints" || cat "$d/w2.err" >&2
    kill $ar; wait $ar
    is "$?" 0 "$kind: the archiver stopped cleanly on SIGTERM$( [ -s "$d/a.err" ] && echo ": $(head -1 "$d/a.err")")"
    run themis-wal-archive --wal-directory "$d/arch" --check
    is "$rc" 0 "$kind: the archive checks${err:+ ($err)}"
    IFS=$'\t' read -r n1 _ t1 < <(sed -n 1p "$d/ck/checkpoints.tsv")

    run themis-restore --backup-directory "$d/root/b1" --target "$d/r"
    is "$rc" 0 "$kind: restore${err:+ ($err)}"
    snap=$(listing "$d/r")
    run themis-wal-replay --wal-directory "$d/arch" --database-path "$d/r" --target-time "$(tsz "$t1")"
    is "$rc" 1 "$kind: replay into it refuses: exit 1"
    one_line_error themis-wal-replay "$err"; ok $? "$kind: in one line"
    like "$err" "cannot replay into the database: $why; --as-wal-file writes" "$kind: naming the cause and --as-wal-file"
    is "$(listing "$d/r")" "$snap" "$kind: the base is unchanged, byte for byte"
    run themis-wal-replay --wal-directory "$d/arch" --database-path "$d/r" --target-time "$(tsz "$t1")" --as-wal-file
    is "$rc" 0 "$kind: --as-wal-file${err:+ ($err)}"
    is "$(hash_of "$d/r")" "$(hash_of "$d/ck/$n1")" "$kind: opened as the server would, it is the ground truth at $n1"

    run themis-restore --backup-root "$d/root" --wal-directory "$d/arch" --target-time "$(tsz "$t1")" --target "$d/rec"
    is "$rc" 0 "$kind: one-command recovery${err:+ ($err)}"
    like "$err" "note: $why: the writes up to the target go into the database as a WAL file" \
        "$kind: it says it wrote a WAL file for the server, and why"
    like "$out" "^recovered .* batches in a WAL file the server applies" "$kind: and so does its last line"
    is "$(hash_of "$d/rec")" "$(hash_of "$d/ck/$n1")" "$kind: opened as the server would, it is the ground truth at $n1"
done
done_testing
