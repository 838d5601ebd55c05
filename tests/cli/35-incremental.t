#!/usr/bin/env bash
# Incremental backups: a full backup; more writes left in the WAL and an incremental that
# stores none of the SSTs; more writes with flushes and compactions and an incremental found
# with --incremental --backup-root. Incrementals store exactly the SSTs that are new since
# their parent (checked with GNU tar against the DB's own files);
# each backup restores alone to the content hash recorded at its time; a missing or
# damaged parent fails verification and restore with exit 3, naming the parent.
. "$(dirname "$0")/lib.sh"

gen() { themis-loadgen --db "$T/db" --seed "$1" --threads 2 --batches "$2" "${@:3}" 2>/dev/null; }
ssts() { (cd "$T/db" && for f in *.sst; do echo "$f $(stat -c %s "$f")"; done) | sort; }
members() { tar -tvf "$1/backup.tar.zst" --zstd | awk '$6 ~ /\.sst$/ { sub("^db/", "", $6); print $6, $3 }' | sort; }

gen 11 3000 --flush-every 250; ok $? "generator wrote a first part, flushed"
ssts >"$T/ssts1"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b1" --compress -v
is "$rc" 0 "full backup b1${err:+ ($err)}"
gen 12 400 --no-flush-at-exit --write-buffer 64M; ok $? "more writes, mostly left in the WAL"
ssts >"$T/ssts2"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b2" --compress --incremental-from "$T/root/b1" -v
is "$rc" 0 "incremental b2 from b1"
kept=$(comm -12 "$T/ssts1" "$T/ssts2" | wc -l)
ok "$([ "$kept" -gt 0 ]; echo $?)" "$kept of b1's SSTs are still in the DB"
like "$err" "incremental on \.\./b1 \(chain 1\): stored [0-9]+ files, [0-9]+ bytes; $kept files from the chain" \
    "on ../b1, taking those $kept from it"
is "$(members "$T/root/b2")" "$(comm -13 "$T/ssts1" "$T/ssts2")" "b2's archive holds exactly the SSTs new since b1 (GNU tar's listing)"
is "$(grep -c '"stored_in"' "$T/root/b2/MANIFEST.json")" "$kept" "its manifest refers to b1 for the others"
gen 13 1500 --flush-every 250; ok $? "more writes, flushes and compactions"
ssts >"$T/ssts3"
comm -13 "$T/ssts2" "$T/ssts3" >"$T/new3"
ok "$([ -s "$T/new3" ]; echo $?)" "the DB has $(wc -l <"$T/new3") new SSTs since b2"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b3" --compress --incremental --backup-root "$T/root" -v
is "$rc" 0 "incremental b3 on the newest good backup under the root"
like "$err" "incremental on \.\./b2 \(chain 2\)" "which is b2, chain 2"
is "$(members "$T/root/b3")" "$(cat "$T/new3")" "b3's archive holds exactly the SSTs new since b2"
is "$(members "$T/root/b3" | awk '{ s += $2 } END { print s + 0 }')" "$(awk '{ s += $2 } END { print s + 0 }' "$T/new3")" \
    "and their bytes"
hash_now=$(themis-dbhash --database-path "$T/db")

# The catalog shows the chain and what each backup adds.
run themis-backup --list --backup-root "$T/root"
is "$rc" 0 "--list${err:+ ($err)}"
is "$(printf '%s\n' "$out" | awk -F'\t' 'NR > 1 { print $2, $7, $8 }' | tr '\n' ' ')" "b3 ../b2 2 b2 ../b1 1 b1 - 0 " \
    "newest first, each with its parent and chain length"
stored_b2=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(f["size"] for f in m["files"] if "stored_in" not in f))' "$T/root/b2/MANIFEST.json")
is "$(printf '%s\n' "$out" | awk -F'\t' '$2 == "b2" { print $6 }')" "$stored_b2" "b2 adds only the bytes it stores ($stored_b2)"
like "$(themis-backup --list --backup-root "$T/root" --json)" '"parent": "\.\./b1"' "--json too"

# Each restores alone (ancestors read from their directories) to its recorded content.
for b in b1 b2 b3; do
    rm -rf "$T/r"
    run themis-restore --backup-directory "$T/root/$b" --target "$T/r"
    is "$rc" 0 "restore of $b${err:+ ($err)}"
    is "$(themis-dbhash --database-path "$T/r")" "$(manifest_field "$T/root/$b/MANIFEST.json" content_hash_v2)" \
        "$b restored has the content hash its manifest recorded"
done
is "$(themis-dbhash --database-path "$T/r")" "$hash_now" "b3 restored equals the database"
run themis-restore --backup-directory "$T/root/b3" --verify-only
is "$rc" 0 "b3 --verify-only follows the chain${err:+ ($err)}"
run themis-restore --backup-directory "$T/root/b3" --verify-only --quick
is "$rc" 0 "and --quick too"

# --full-every: the chain would reach 3, so b4 is a full backup.
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b4" --compress --incremental --backup-root "$T/root" --full-every 3
is "$rc" 0 "--full-every 3 on a chain of 2"
ok "$(grep -q '"parent"' "$T/root/b4/MANIFEST.json"; [ $? -ne 0 ]; echo $?)" "gives a full backup (no parent)"
rm -rf "$T/root/b4"

# A missing parent, then a damaged one: exit 3 naming it; nothing restored.
mv "$T/root/b1" "$T/b1.away"
run themis-restore --backup-directory "$T/root/b2" --verify-only
is "$rc" 3 "verify of b2 without b1: exit 3"
like "$err" "parent backup missing: .*/b1" "names the missing parent"
ok "$(one_line_error themis-restore "$err"; echo $?)" "in one line"
rm -rf "$T/r"
run themis-restore --backup-directory "$T/root/b2" --target "$T/r"
is "$rc" 3 "restore of b2 without b1: exit 3"
ok "$([ ! -e "$T/r" ]; echo $?)" "and nothing at the target"
mv "$T/b1.away" "$T/root/b1"
cp "$T/root/b1/backup.tar.zst" "$T/b1.good"
flip_byte "$T/root/b1/backup.tar.zst" $(( $(stat -c %s "$T/root/b1/backup.tar.zst") / 2 ))
run themis-restore --backup-directory "$T/root/b2" --verify-only --quick
is "$rc" 3 "verify of b2 with b1 damaged: exit 3"
like "$err" "parent backup .*/b1" "names the damaged parent"
truncate -s $(( $(stat -c %s "$T/b1.good") / 2 )) "$T/root/b1/backup.tar.zst"
run themis-restore --backup-directory "$T/root/b2" --verify-only --quick
is "$rc" 3 "verify of b2 with b1 cut in half (the zstd layer finds it): exit 3"
like "$err" "parent backup .*/b1" "names the damaged parent: $err"
cp "$T/b1.good" "$T/root/b1/backup.tar.zst"
run themis-restore --backup-directory "$T/root/b2" --verify-only
is "$rc" 0 "b1 repaired: b2 verifies again"
sed -i 's/"archive_sha256": "[0-9a-f]*"/"archive_sha256": "'"$(printf '0%.0s' $(seq 64))"'"/' "$T/root/b2/MANIFEST.json"
run themis-restore --backup-directory "$T/root/b2" --verify-only --quick
is "$rc" 3 "a parent that is not the one b2 was made from: exit 3"

# A streamed incremental names its parent by absolute path; restore from the stream finds it.
themis-backup --database-path "$T/db" --backup-directory "$T/full" --compress 2>/dev/null
themis-backup --database-path "$T/db" --stdout --compress --incremental-from "$T/full" > "$T/inc.tar.zst"
is "$?" 0 "--stdout --incremental-from a full backup"
zstd -dc "$T/inc.tar.zst" | tar -xO MANIFEST.json > "$T/inc.json"
like "$(cat "$T/inc.json")" "\"path\": \"$(realpath "$T/full")\"" "its manifest names its parent by absolute path"
like "$(grep -c '"stored_in"' "$T/inc.json")" "^[1-9]" "and takes members from the chain"
ok "$([ "$(stat -c %s "$T/inc.tar.zst")" -lt $(( $(stat -c %s "$T/full/backup.tar.zst") / 10 )) ]; echo $?)" "the stream is under a tenth of the parent's archive (the database did not change since)"
run themis-restore --from - --target "$T/r-stream" < "$T/inc.tar.zst"
is "$rc" 0 "restore of the streamed incremental (members read from the parent)${err:+: $err}"
is "$(themis-dbhash --database-path "$T/r-stream")" "$(themis-dbhash --database-path "$T/db")" "to the database's content"
mv "$T/full" "$T/full.away"
run themis-restore --from - --verify-only --quick < "$T/inc.tar.zst"
is "$rc" 3 "with its parent gone: exit 3"; like "$err" "parent backup missing: .*/full" "naming it"
mv "$T/full.away" "$T/full"

# Refusals.
run themis-backup --database-path "$T/db" --stdout --incremental --backup-root "$T/root"
is "$rc" 2 "--incremental with --stdout is a usage error (name the parent with --incremental-from)"
run themis-backup --database-path "$T/db" --backup-directory "$T/root/b5" --incremental-from "$T/nowhere"
is "$rc" 1 "a parent that does not exist: exit 1"
like "$err" "parent backup not found" "says so"
done_testing
