#!/usr/bin/env bash
# Issue 15's matrix, stopped databases, part 1: each write policy with ThemisDB's merge
# operator and blob files, and write_committed without a merge operator (which Debian's ldb
# also opens). tests/cli/policy.sh says what is checked; test 58 holds the layouts (wal_dir,
# db_paths) and the other policies without merges; test 59 the live writer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/policy.sh"

policy_matrix <<'EOF_'
cm committed yes plain stream,inc
pm prepared yes plain enc,all
um unprepared yes plain stream,inc,all
c0 committed no plain enc
EOF_

# The state right after a two-phase commit (its Commit marker takes a sequence RocksDB
# never publishes): --target-seq of the sequence RocksDB reports there (the writer's
# checkpoint, a backup's last_sequence) must give that state. One writer thread and a
# fixed seed make the kth write a 2PC commit, found in a dry run's log.
for p in prepared unprepared; do
    c=$T/seq-$p; merge=; mkdir -p "$c"
    themis-txnwriter --db "$c/dry" --policy $p --threads 1 --seed 5 --batches 60 --log "$c/dry.log" 2>/dev/null
    k=$(awk -F'\t' 'NR > 20 && $2 ~ /^commit2pc/ { print NR; exit }' "$c/dry.log")
    themis-txnwriter --db "$c/db" --policy $p --threads 1 --seed 4 --batches 20 --wal-ttl 3600 --no-flush-at-exit 2>/dev/null
    themis-backup --database-path "$c/db" --backup-directory "$c/base" 2>/dev/null
    themis-txnwriter --db "$c/db" --policy $p --threads 1 --seed 5 --batches 60 --wal-ttl 3600 --log "$c/log" \
        --checkpoint-dir "$c/ck" --checkpoint-at "$k" 2>/dev/null
    is "$(sed -n "${k}p" "$c/log" | cut -f2)" "$(sed -n "${k}p" "$c/dry.log" | cut -f2)" "$p: write $k is a 2PC commit, as in the dry run"
    themis-wal-archive --database-path "$c/db" --wal-directory "$c/w" --once 2>/dev/null
    read -r ck seq ts < <(head -1 "$c/ck/checkpoints.tsv")
    want=$(hash_of "$c/ck/$ck")
    restore_base "$c/t"
    run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-time "$(tsz "$ts")"
    is "$rc/$(hash_of "$c/t")" "0/$want" "$p: PITR to the time of the checkpoint right after a 2PC commit equals it${err:+: $err}"
    restore_base "$c/t"
    run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-seq "$seq"
    is "$rc/$(hash_of "$c/t")" "0/$want" "$p: and --target-seq $seq, RocksDB's sequence there, equals it too ($out)${err:+: $err}"
    restore_base "$c/t"
    run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-seq "$seq" --write-policy write_$p
    is "$rc/$(hash_of "$c/t")" "0/$want" "$p: so does --write-policy write_$p given${err:+: $err}"
done
run themis-wal-replay --wal-directory "$T/seq-prepared/w" --database-path "$T/seq-prepared/t" --write-policy prepared
is "$rc" 2 "replay: --write-policy takes RocksDB's names only (exit 2)"
like "$err" "write_prepared" "and says which"
done_testing
