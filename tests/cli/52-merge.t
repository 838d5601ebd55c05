#!/usr/bin/env bash
# Merge operands under ThemisDB's merge operator names: dbhash, backup, restore and replay
# read them through the tools' own operators and see the merged values (worked out by hand
# in themis-mergewriter); an operator the tools do not know is a clear error, never a guess.
. "$(dirname "$0")/lib.sh"

themis-mergewriter --db "$T/m"; ok $? "write operands of all five operators (flushed, compacted, left in the WAL)"
themis-mergewriter --db "$T/e" --expected; ok $? "write the values they merge to, as plain puts"
want=$(themis-dbhash --database-path "$T/e")

run themis-dbhash --database-path "$T/m" -v
is "$rc" 0 "dbhash reads the merge operands${err:+: $err}"
is "$(printf '%s\n' "$out" | head -1)" "$want" "and hashes the merged values ThemisDB's operators give"
like "$out" "cf cdc_sequences 3 keys" "every key of the sequence CF"
run themis-dbhash --database-path "$T/m" --read-only
is "$out" "$want" "read-only open, the same"

run themis-backup --database-path "$T/m" --backup-directory "$T/bk"
is "$rc" 0 "backup of a database with merge operands${err:+: $err}"
is "$(manifest_field "$T/bk/MANIFEST.json" content_hash_v2)" "$want" "the manifest's content hash is the merged one"
run themis-restore --backup-directory "$T/bk" --verify-only
is "$rc" 0 "full verify passes${err:+: $err}"
run themis-restore --backup-directory "$T/bk" --target "$T/r"
is "$rc" 0 "restore succeeds${err:+: $err}"
is "$(themis-dbhash --database-path "$T/r")" "$want" "the restored database merges to the same values"

# Replay: everything in the WAL, archived, replayed onto an empty base with the same CFs.
themis-mergewriter --db "$T/w" --no-flush && themis-mergewriter --db "$T/base" --empty
ok $? "a database whose operands are all in its WAL, and an empty base"
run themis-wal-archive --database-path "$T/w" --wal-directory "$T/arch" --once
is "$rc" 0 "archive its WAL${err:+: $err}"
run themis-wal-replay --wal-directory "$T/arch" --database-path "$T/base"
is "$rc" 0 "replay the operands as they are, flushing through the operators${err:+: $err}"
is "$(themis-dbhash --database-path "$T/base")" "$want" "the replayed database merges to the same values"

# A name the tools do not know: never guessed, said plainly.
themis-mergewriter --db "$T/u" --unknown Other.MergeOperator; ok $? "a database with an unknown operator name"
run themis-dbhash --database-path "$T/u"
is "$rc" 1 "dbhash exits 1"
one_line_error themis-dbhash "$err"; ok $? "with one line on stderr"
like "$err" "merge operator Other\.MergeOperator of column family mystery is not one the tools know" "naming the operator and the column family"
is "$out" "" "and prints no hash"

# A backup of it is still taken: every file and table checked by its checksums, the content
# hash recorded as unavailable with the reason; it verifies, restores and says what it could
# not compare; the restored files are the source's.
run themis-backup --database-path "$T/u" --backup-directory "$T/ub" --compress
is "$rc" 0 "backup of a database with an unknown operator${err:+ ($err)}"
like "$err" "note: backed up and checked by checksums, but without a content hash: merge operator Other\.MergeOperator of column family mystery is not one the tools know" \
    "says it has no content hash, and why"
is "$(manifest_field "$T/ub/MANIFEST.json" content_hash)" "null" "the manifest records no content hash"
like "$(grep content_hash_unavailable "$T/ub/MANIFEST.json")" "Other\.MergeOperator" "but the reason"
run themis-restore --verify-only --backup-directory "$T/ub"
is "$rc" 0 "full verify passes on checksums and sequence${err:+ ($err)}"
like "$err" "the content was not compared: the backup has no content hash \(merge operator Other\.MergeOperator" "and says what it could not compare"
run themis-restore --backup-directory "$T/ub" --target "$T/ur"
is "$rc" 0 "restore${err:+ ($err)}"
is "$(cd "$T/ur" && find . -name '*.sst' -o -name '*.log' -o -name 'MANIFEST-*' | sort | xargs sha256sum)" \
   "$(cd "$T/u" && find . -name '*.sst' -o -name '*.log' -o -name 'MANIFEST-*' | sort | xargs sha256sum)" \
   "the restored tables, WAL and MANIFEST are the source's, byte for byte"
cp "$T/ub/backup.tar.zst" "$T/ub/good" && flip_byte "$T/ub/backup.tar.zst" 200
run themis-restore --verify-only --backup-directory "$T/ub"
is "$rc" 3 "a damaged archive of it still fails verification (exit 3)${err:+ ($err)}"
mv "$T/ub/good" "$T/ub/backup.tar.zst"

# An operand ThemisDB's CounterMergeOperator refuses fails the read, as it does in ThemisDB.
themis-mergewriter --db "$T/b" --bad; ok $? "a counter operand that is no integer"
run themis-dbhash --database-path "$T/b"
ok "$([ "$rc" -ne 0 ]; echo $?)" "dbhash fails (exit $rc)"
like "$err" "Could not perform merge" "RocksDB says the merge failed"

done_testing
