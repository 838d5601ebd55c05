#!/usr/bin/env bash
# Archives and backups made before issue 15 (the tools of commit 3958224) still verify,
# restore and replay with today's tools, and today's archiver continues an old archive.
# Building the old tools takes minutes, too long for make check, so this test runs only
# when TB_OLD_BIN names their bin directory (README, "Tests": how to build them).
. "$(dirname "$0")/lib.sh"
if [ -z "${TB_OLD_BIN:-}" ]; then echo "1..0 # SKIP TB_OLD_BIN is not set (the tools of commit 3958224)"; exit 0; fi
old() { local tool=$1; shift; "$TB_OLD_BIN/$tool" "$@"; }
head -c 32 /dev/urandom > "$T/key"

# Made by the old tools: a database of the old generator (WRITE_COMMITTED, 2PC, stamps),
# a full, an encrypted and an incremental backup, and a WAL archive.
old themis-loadgen --db "$T/db" --seed 60 --threads 2 --batches 1500 --wal-ttl 3600 --flush-every 400 2>/dev/null
ok $? "old generator wrote"
old themis-backup --database-path "$T/db" --backup-directory "$T/root/b1" --compress 2>/dev/null; ok $? "old full backup"
old themis-backup --database-path "$T/db" --backup-directory "$T/enc" --compress --encrypt --key-file "$T/key" 2>/dev/null
ok $? "old encrypted backup"
old themis-backup --database-path "$T/db" --stdout --compress > "$T/stream.tar.zst" 2>/dev/null; ok $? "old backup stream"
old themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null; ok $? "old archive"
old themis-loadgen --db "$T/db" --seed 61 --threads 2 --batches 1500 --wal-ttl 3600 --flush-every 400 \
    --checkpoint-dir "$T/ck" --checkpoint-at 500,1000 2>/dev/null
ok $? "old generator wrote again, with checkpoints"
old themis-backup --database-path "$T/db" --backup-directory "$T/root/b2" --compress --incremental --backup-root "$T/root" 2>/dev/null
ok $? "old incremental backup"
old themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once 2>/dev/null; ok $? "old archive continued"
old themis-loadgen --db "$T/db" --seed 62 --threads 2 --batches 600 --wal-ttl 3600 --checkpoint-dir "$T/ck" --checkpoint-at 300 2>/dev/null
ok $? "a third run of the old generator (archived by today's archiver)"

# Today's tools.
for b in root/b1 root/b2; do
    run themis-restore --backup-directory "$T/$b" --verify-only --quick
    is "$rc" 0 "$b: --verify-only --quick${err:+: $err}"
    run themis-restore --backup-directory "$T/$b" --verify-only
    is "$rc" 0 "$b: --verify-only (full)${err:+: $err}"
    run themis-restore --backup-directory "$T/$b" --target "$T/r-${b#root/}"
    is "$rc" 0 "$b: restore${err:+: $err}"
    is "$(themis-dbhash --hash-version 1 --database-path "$T/r-${b#root/}")" "$(manifest_field "$T/$b/MANIFEST.json" content_hash)" "$b: restored equals its old manifest"
done
run themis-restore --backup-directory "$T/enc" --verify-only --key-file "$T/key"
is "$rc" 0 "old encrypted backup verifies${err:+: $err}"
run themis-restore --backup-directory "$T/enc" --target "$T/r-enc" --key-file "$T/key"
is "$(themis-dbhash --hash-version 1 --database-path "$T/r-enc")" "$(manifest_field "$T/root/b1/MANIFEST.json" content_hash)" "and restores"
run themis-restore --from - --target "$T/r-stream" < "$T/stream.tar.zst"
is "$rc/$(themis-dbhash --hash-version 1 --database-path "$T/r-stream")" "0/$(manifest_field "$T/root/b1/MANIFEST.json" content_hash)" "old stream restores from -"
# The old tools on today's backup (manifest 1.4: content_hash null, the hash in
# content_hash_v2). They read format 1.2, which has no null content_hash: they refuse the
# manifest, exit 3, and never claim the content differs (tools of format 1.3 take the hash
# as unavailable and check the files' checksums).
themis-backup --database-path "$T/r-stream" --backup-directory "$T/new" --compress 2>/dev/null; ok $? "today's backup"
run old themis-restore --backup-directory "$T/new" --verify-only
is "$rc" 3 "the old tools refuse to verify today's backup"
ok "$([[ $err == *"no valid content_hash"* && $err != *differ* ]]; echo $?)" "as a manifest without the content_hash they read, not as a content mismatch ($err)"
run old themis-restore --backup-directory "$T/new" --target "$T/r-new"
ok "$([ "$rc" = 3 ] && [[ $err == *"no valid content_hash"* ]] && [ ! -e "$T/r-new/CURRENT" ]; echo $?)" "nor restore it, and leave no database ($err)"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 0 "the old archive passes --check ($out)${err:+: $err}"
run themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --once
is "$rc" 0 "today's archiver continues the old archive${err:+: $err}"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 0 "and --check passes ($out)${err:+: $err}"
base=$(manifest_field "$T/root/b1/MANIFEST.json" last_sequence)
n=0 good=0
while IFS=$'\t' read -r ck seq ts; do
    [ "$seq" -gt "$base" ] || continue
    n=$((n + 1))
    rm -rf "$T/t"; themis-restore --backup-directory "$T/root/b1" --target "$T/t" 2>/dev/null
    run themis-wal-replay --wal-directory "$T/w" --database-path "$T/t" --target-time "$(tsz "$ts")"
    [ "$rc" = 0 ] && equals_truth "$T/t" "$T/ck/$ck" "$seq" "$T/w" && good=$((good + 1)) || diag "to $ck: rc $rc $err"
    if [ "$n" = 1 ]; then
        rm -rf "$T/t"; themis-restore --backup-directory "$T/root/b1" --target "$T/t" 2>/dev/null
        run themis-wal-replay --wal-directory "$T/w" --database-path "$T/t" --target-seq "$seq"
        [ "$rc" = 0 ] && equals_truth "$T/t" "$T/ck/$ck" "$seq" "$T/w"; ok $? "old base, old archive: PITR to --target-seq $seq${err:+: $err}"
    fi
done < "$T/ck/checkpoints.tsv"
is "$good/$n" "5/5" "old base and archive: PITR by time to every checkpoint equals it"
last=$(tail -1 "$T/ck/checkpoints.tsv")
run themis-restore --backup-root "$T/root" --wal-directory "$T/w" --target-time "$(tsz "$(cut -f3 <<<"$last")")" --target "$T/one"
is "$rc" 0 "one-command recovery from the old root${err:+: $err}"
equals_truth "$T/one" "$T/ck/$(cut -f1 <<<"$last")" "$(cut -f2 <<<"$last")" "$T/w"; ok $? "and equals the last checkpoint"
done_testing
