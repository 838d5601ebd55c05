#!/usr/bin/env bash
# Offsite copies of write-prepared and write-unprepared databases (ThemisDB 1.3+: merge
# operands, blob files, 2PC, rollbacks) through a real S3 server: a streamed backup put
# with themis-s3 and restored from the bucket, a backup directory synced, the WAL archive
# pushed, and a one-command recovery from the bucket alone; each compared with what the
# writer itself (themis-txnwriter --hash, the server stand-in) reads, and checked with awscli.
. "$(dirname "$0")/lib.sh"

s3_server
B=s3://$TB_S3_BUCKET
mkdir -p "$T/tmp"

for p in prepared unprepared; do
    themis-txnwriter --db "$T/$p" --policy $p --merge --blob --seed 62 --threads 2 --batches 300 --wal-ttl 3600 --no-flush-at-exit \
        --checkpoint-dir "$T/truth-$p" --checkpoint-at 150 >/dev/null 2>"$T/$p.err"
    ok $? "$p: the writer wrote a database with merges and blob files"
    c1=$(head -1 "$T/truth-$p/checkpoints.tsv" | cut -f1)
    want=$(themis-txnwriter --hash --db "$T/truth-$p/$c1" --policy $p --merge 2>&1)
    # The checkpoint's WAL holds no marker that tells write_prepared from write_unprepared
    # (RocksDB flushed it), so the policy is given; the database's own WAL tells (below).
    run themis-backup --database-path "$T/truth-$p/$c1" --backup-directory "$T/bk-$p/b1" --compress --write-policy write_$p
    is "$rc" 0 "$p: a backup of the checkpoint${err:+: $err}"
    is "$(manifest_field "$T/bk-$p/b1/MANIFEST.json" write_policy)" "write_$p" "$p: its manifest records the policy given"
    is "$(manifest_field "$T/bk-$p/b1/MANIFEST.json" content_hash_v2)" "$want" "$p: and the content the writer reads"

    themis-backup --database-path "$T/$p" --stdout --compress | themis-s3 put - "$B/$p/stream.tar.zst"
    is "${PIPESTATUS[*]}" "0 0" "$p: backup --stdout | themis-s3 put -"
    run themis-backup --database-path "$T/$p" --backup-directory "$T/own-$p" -v
    like "$err" "write policy write_$p \\(two_write_queues, and the WAL holds a write-" "$p: detected from the database's own WAL"
    aws_ s3 cp "$B/$p/stream.tar.zst" "$T/obj-$p" >/dev/null 2>&1; ok $? "$p: aws s3 cp gets the object"
    ok "$(zstd -dc "$T/obj-$p" | tar -t 2>/dev/null | grep -qx MANIFEST.json; echo $?)" "$p: it is tar + zstd, MANIFEST.json last"
    TMPDIR=$T/tmp run themis-restore --from "$B/$p/stream.tar.zst" --target "$T/from-s3-$p"
    is "$rc" 0 "$p: restore from the bucket${err:+: $err}"
    is "$(themis-txnwriter --hash --db "$T/from-s3-$p" --policy $p --merge 2>&1)" \
       "$(themis-txnwriter --hash --db "$T/$p" --policy $p --merge 2>&1)" "$p: the restored copy is what the writer reads from its own database"

    like "$(themis-s3 sync "$T/bk-$p" "$B/$p/backups")" "^copied [1-9][0-9]* files$" "$p: backup directory synced"
    run themis-wal-archive --database-path "$T/$p" --wal-directory "$T/w-$p" --once --push "$B/$p/wal"
    is "$rc" 0 "$p: WAL archived and pushed${err:+: $err}"
    TMPDIR=$T/tmp run themis-restore --backup-root "$B/$p/backups" --wal-directory "$B/$p/wal" \
        --target-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --target "$T/r-$p"
    is "$rc" 0 "$p: one-command recovery from the bucket alone${err:+: $err}"
    is "$(themis-txnwriter --hash --db "$T/r-$p" --policy $p --merge 2>&1)" \
       "$(themis-txnwriter --hash --db "$T/$p" --policy $p --merge 2>&1)" "$p: recovered to now: the writer's final content"
done

done_testing
