#!/usr/bin/env bash
# Encryption at rest: an encrypted backup and WAL archive round trip (restore, verify,
# point-in-time recovery); the format is the documented one (an independent Python reader
# decrypts it, and inside is plain tar + zstd); every kind of damage and a wrong key exit 3
# leaving no plaintext behind; rekey and add-key; an encrypted incremental chain.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DEC="$(dirname "$0")/tbdecrypt.py"
CHUNK=65552 HDR=94   # a sealed 64 KiB chunk; the header with one key-file slot

head -c 32 /dev/urandom > "$T/k1"                                         # raw
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/k2"; echo >> "$T/k2"  # hex
printf 'correct horse battery staple\n' > "$T/pass"
mkdir -p "$T/tmp"; export TMPDIR="$T/tmp"

# A live database with ground truth checkpoints, an encrypted WAL archive following it.
# Until SIGTERM once more is written after the backup (a fixed time could end before it).
themis-loadgen --db "$T/db" --seed 39 --threads 3 --seconds 300 --flush-every 400 --wal-ttl 3600 \
    --checkpoint-dir "$T/truth" --checkpoint-every-ms 700 --ready-file "$T/ready" --log "$T/log" 2>"$T/lg.err" &
lg=$!
on_exit "kill $lg 2>/dev/null"
wait_for 60 test -f "$T/ready"; ok $? "load generator running"
themis-wal-archive --database-path "$T/db" --wal-directory "$T/w" --follow --interval 50 --segment-size 4M \
    --encrypt --key-file "$T/k1" 2>"$T/a.err" & ar=$!
on_exit "kill \$ar 2>/dev/null"
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge 2000 ]"
run themis-backup --database-path "$T/db" --backup-directory "$T/b" --compress --encrypt --key-file "$T/k1"
is "$rc" 0 "encrypted backup of the live database${err:+: $err}"
n=$(wc -l < "$T/log")
wait_for 60 bash -c "[ \$(wc -l < '$T/log') -ge $((n + 2000)) ]"
kill -TERM "$lg"; wait "$lg"; is "$?" 0 "load generator finished (SIGTERM, after more writes)"
kill -TERM "$ar"; wait "$ar"; is "$?" 0 "archiver stopped"

# What lies on disk tells nothing of the content.
is "$(head -c 8 "$T/b/backup.tar.zst.enc" | od -An -c | tr -d ' ')" 'TBCRYPT001' "archive starts with the TBCRYPT 1 magic"
ok "$([ ! -e "$T/b/backup.tar.zst" ]; echo $?)" "no plain archive beside it"
zstd -t -q "$T/b/backup.tar.zst.enc" 2>/dev/null; ok "$([ $? -ne 0 ]; echo $?)" "the archive is not a zstd stream"
ok "$(grep -c -e 'db/' -e '"sha256": "[0-9a-f]\{64\}",\?$' -e content_hash "$T/b/MANIFEST.json" | grep -qx 1; echo $?)" \
    "MANIFEST.json names no file and carries no content hash (only the archive's id)"
like "$(cat "$T/b/MANIFEST.json")" '"redacted": true' "MANIFEST.json says it is redacted"
like "$(cat "$T/b/MANIFEST.json")" '"key_ids": "[0-9a-f]{16}"' "and names the key id"
n=0; for f in "$T"/w/0*.wal.zst; do [ "$(head -c 7 "$f")" = TBCRYPT ] && n=$((n + 1)); done
total=$(ls "$T"/w/0*.wal.zst | wc -l)
ok "$([ "$total" -ge 2 ] && [ "$n" -eq "$total" ]; echo $?)" "every published WAL segment is sealed ($n of $total)"

# The format is the documented one: an independent reader decrypts it to plain tar + zstd.
$PY "$DEC" "$T/k1" < "$T/b/backup.tar.zst.enc" | zstd -dc | tar -t > "$T/members" 2>/dev/null
ok "$(grep -qx db/CURRENT "$T/members" && tail -1 "$T/members" | grep -qx MANIFEST.json; echo $?)" \
    "independent Python reader decrypts it; zstd and tar list db/CURRENT ... MANIFEST.json"
$PY "$DEC" "$T/k1" < "$(ls "$T"/w/0*.wal.zst | head -1)" | zstd -t -q 2>/dev/null
ok "$?" "a sealed WAL segment decrypts to a zstd stream too"

# Round trip.
run themis-restore --verify-only --backup-directory "$T/b" --key-file "$T/k1"
is "$rc" 0 "full verification with the key${err:+: $err}"
run themis-restore --backup-directory "$T/b" --target "$T/r" --key-file "$T/k1" -v
is "$rc" 0 "restore with the key${err:+: $err}"
hash=$(themis-dbhash --database-path "$T/r")
like "$err" "content hash $hash" "restored content hash is the one recorded in the (encrypted) manifest"
seq=$(manifest_field "$T/b/MANIFEST.json" last_sequence)

# Keys: none, wrong, passphrase.
run themis-restore --verify-only --backup-directory "$T/b"
is "$rc" 2 "no key: usage error"; one_line_error themis-restore "$err"; ok $? "one line: $err"
run themis-restore --verify-only --backup-directory "$T/b" --key-file "$T/k2"
is "$rc" 3 "wrong key: exit 3"; like "$err" "wrong key" "says wrong key"
ok "$([ ! -e "$T/b/VERIFY.json" ] || grep -q '"ok"' "$T/b/VERIFY.json"; echo $?)" "a wrong key is not recorded as a failed verification"
echo "not a key" > "$T/bad"
run themis-restore --verify-only --backup-directory "$T/b" --key-file "$T/bad"
is "$rc" 2 "malformed key file: usage error ($err)"

# Damage of every kind, on copies: exit 3, nothing published, no plaintext left behind.
size=$(stat -c %s "$T/b/backup.tar.zst.enc")
nchunks=$(( (size - HDR) / CHUNK ))
damage() {  # damage NAME: the copy $T/d/NAME was prepared; checks verify and restore refuse it
    local name=$1
    cp "$T/b/MANIFEST.json" "$T/d/$name/"
    run themis-restore --verify-only --quick --backup-directory "$T/d/$name" --key-file "$T/k1"
    is "$rc" 3 "$name: --verify-only --quick exits 3 ($err)"
    run themis-restore --backup-directory "$T/d/$name" --target "$T/rd-$name" --key-file "$T/k1"
    is "$rc" 3 "$name: restore exits 3"
    ok "$([ ! -e "$T/rd-$name" ] && [ -z "$(ls -A "$T/tmp")" ] && [ -z "$(ls -a "$T" | grep "^\.rd-$name")" ]; echo $?)" \
        "$name: no target, no temporary directory left"
}
mk() { mkdir -p "$T/d/$1"; }
mk flip-first; cp "$T/b/backup.tar.zst.enc" "$T/d/flip-first/"; flip_byte "$T/d/flip-first/backup.tar.zst.enc" $((HDR + 100))
damage flip-first
mk flip-last; cp "$T/b/backup.tar.zst.enc" "$T/d/flip-last/"; flip_byte "$T/d/flip-last/backup.tar.zst.enc" $((size - 5))
damage flip-last
mk flip-header; cp "$T/b/backup.tar.zst.enc" "$T/d/flip-header/"; flip_byte "$T/d/flip-header/backup.tar.zst.enc" 50
damage flip-header
mk truncated; head -c $((HDR + (nchunks - 1) * CHUNK)) "$T/b/backup.tar.zst.enc" > "$T/d/truncated/backup.tar.zst.enc"
damage truncated
mk swapped; { head -c $((HDR + CHUNK)) "$T/b/backup.tar.zst.enc" | head -c "$HDR"
              tail -c +$((HDR + CHUNK + 1)) "$T/b/backup.tar.zst.enc" | head -c "$CHUNK"
              tail -c +$((HDR + 1)) "$T/b/backup.tar.zst.enc" | head -c "$CHUNK"
              tail -c +$((HDR + 2 * CHUNK + 1)) "$T/b/backup.tar.zst.enc"; } > "$T/d/swapped/backup.tar.zst.enc"
is "$(stat -c %s "$T/d/swapped/backup.tar.zst.enc")" "$size" "swapped copy has the same size"
damage swapped
mk appended; { cat "$T/b/backup.tar.zst.enc"; printf 'garbage'; } > "$T/d/appended/backup.tar.zst.enc"
damage appended
# The stream form, cut at a chunk boundary, and with bytes appended.
head -c $((HDR + 3 * CHUNK)) "$T/b/backup.tar.zst.enc" > "$T/cut"
run themis-restore --from - --verify-only --key-file "$T/k1" < "$T/cut"
is "$rc" 3 "stream cut at a chunk boundary: exit 3"; like "$err" "truncated" "says truncated ($err)"
{ cat "$T/b/backup.tar.zst.enc"; printf 'x'; } | themis-restore --from - --verify-only --key-file "$T/k1" 2>/dev/null
is "$?" 3 "stream with one byte appended: exit 3"

# Point-in-time recovery through the sealed WAL, to a ground-truth checkpoint.
last=$(tail -1 "$T/truth/checkpoints.tsv")
IFS=$'\t' read -r name tseq ts <<<"$last"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$ts")"
is "$rc" 2 "replay of a sealed archive without the key: usage error ($err)"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$ts")" --key-file "$T/k2"
is "$rc" 3 "with the wrong key: exit 3"
run themis-wal-replay --wal-directory "$T/w" --database-path "$T/r" --target-time "$(tsz "$ts")" --key-file "$T/k1"
is "$rc" 0 "replay with the key${err:+: $err}"
equals_truth "$T/r" "$T/truth/$name" "$tseq" "$T/w"; ok $? "PITR from an encrypted base through sealed WAL equals the checkpoint at sequence $tseq"
mkdir -p "$T/root"; cp -a "$T/b" "$T/root/b"
run themis-restore --backup-root "$T/root" --wal-directory "$T/w" --target-time "$(tsz "$ts")" --target "$T/r1" --key-file "$T/k1"
is "$rc" 0 "one-command recovery with the key${err:+: $err}"
equals_truth "$T/r1" "$T/truth/$name" "$tseq" "$T/w"; ok $? "and it equals the checkpoint too"
run themis-wal-archive --wal-directory "$T/w" --check
is "$rc" 2 "--check of a sealed archive without the key: usage error"
run themis-wal-archive --wal-directory "$T/w" --check --key-file "$T/k1"
is "$rc" 0 "--check with the key: $out"

# Rekey: the data and the archive's id stay, the old key no longer opens it.
id0=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$T/b/MANIFEST.json")
tail -c +$((HDR + 1)) "$T/b/backup.tar.zst.enc" | sha256sum > "$T/body0"
run themis-backup --rekey --backup-directory "$T/b" --old-key-file "$T/k2" --key-file "$T/k2"
is "$rc" 3 "rekey with a key that does not open it: exit 3"
run themis-backup --rekey --backup-directory "$T/b" --old-key-file "$T/k1" --key-file "$T/k2"
is "$rc" 0 "rekey k1 -> k2${err:+: $err}"
is "$(tail -c +$((HDR + 1)) "$T/b/backup.tar.zst.enc" | sha256sum)" "$(cat "$T/body0")" "every chunk byte unchanged"
is "$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$T/b/MANIFEST.json")" "$id0" "the archive's id (sealed digest) unchanged"
run themis-restore --verify-only --quick --backup-directory "$T/b" --key-file "$T/k1"
is "$rc" 3 "the old key is refused after rekey"
run themis-restore --verify-only --backup-directory "$T/b" --key-file "$T/k2"
is "$rc" 0 "the new key opens it (full verification)${err:+: $err}"
run themis-backup --add-key --backup-directory "$T/b" --old-key-file "$T/k2" --passphrase-file "$T/pass"
is "$rc" 0 "add a passphrase beside k2${err:+: $err}"
like "$(cat "$T/b/MANIFEST.json")" '"key_ids": "[0-9a-f]{16},[0-9a-f]{16}"' "two key ids recorded"
run themis-restore --verify-only --quick --backup-directory "$T/b" --passphrase-file "$T/pass"
is "$rc" 0 "the passphrase opens it"
run themis-restore --verify-only --quick --backup-directory "$T/b" --key-file "$T/k2"
is "$rc" 0 "and so does k2"

# An encrypted incremental chain (the database is stopped now: its hash is the truth).
run themis-backup --database-path "$T/db" --backup-directory "$T/i0" --compress --encrypt --key-file "$T/k1"
is "$rc" 0 "encrypted full backup of the stopped database"
# New writes left in the WAL: the tables stay as they were (with 2000 writes flushed,
# compaction could rewrite every table, and only the IDENTITY file, which a snapshot no
# longer carries, was certain to be shared).
themis-loadgen --db "$T/db" --seed 40 --threads 2 --batches 300 --no-flush-at-exit >/dev/null 2>&1
run themis-backup --database-path "$T/db" --backup-directory "$T/i1" --compress --incremental-from "$T/i0"
is "$rc" 2 "an unencrypted incremental on an encrypted parent is refused ($err)"
run themis-backup --database-path "$T/db" --backup-directory "$T/i1" --compress --encrypt --key-file "$T/k1" --incremental-from "$T/i0" -v
is "$rc" 0 "encrypted incremental${err:+: $err}"
like "$err" "[1-9][0-9]* files from the chain" "it takes files from its parent"
run themis-restore --backup-directory "$T/i1" --target "$T/ri" --key-file "$T/k1"
is "$rc" 0 "the incremental restores through its encrypted parent${err:+: $err}"
is "$(themis-dbhash --database-path "$T/ri")" "$(themis-dbhash --database-path "$T/db")" "to the database's content"
run themis-backup --rekey --backup-directory "$T/i0" --old-key-file "$T/k1" --key-file "$T/k2"
run themis-backup --rekey --backup-directory "$T/i1" --old-key-file "$T/k1" --key-file "$T/k2"
run themis-restore --verify-only --backup-directory "$T/i1" --key-file "$T/k2"
is "$rc" 0 "after rekeying the chain, the child still finds its parent and verifies with the new key${err:+: $err}"
run themis-backup --list --backup-root "$T/root"
like "$out" "	yes	" "--list says encrypted"

# Key rotation across a WAL archive: segments sealed before the rotation need the old key,
# after it the new one; every --key-file given counts, so one command recovers.
themis-loadgen --db "$T/db" --seed 50 --threads 2 --batches 300 --wal-ttl 3600 >/dev/null 2>&1
themis-wal-archive --database-path "$T/db" --wal-directory "$T/kw" --once --encrypt --key-file "$T/k1" 2>/dev/null
themis-backup --database-path "$T/db" --backup-directory "$T/kroot/kb" --compress --encrypt --key-file "$T/k1" 2>/dev/null
themis-loadgen --db "$T/db" --seed 51 --threads 2 --batches 300 --wal-ttl 3600 >/dev/null 2>&1
themis-wal-archive --database-path "$T/db" --wal-directory "$T/kw" --once --encrypt --key-file "$T/k2" 2>/dev/null
ok $? "the archiver goes on with a new key"
run themis-wal-archive --wal-directory "$T/kw" --check --key-file "$T/k2"
is "$rc" 3 "the new key alone does not open the segments sealed before"
run themis-wal-archive --wal-directory "$T/kw" --check --key-file "$T/k2" --key-file "$T/k1"
is "$rc" 0 "both keys given: the whole archive checks${err:+ ($err)}"
themis-backup --rekey --backup-directory "$T/kroot/kb" --old-key-file "$T/k1" --key-file "$T/k2" 2>/dev/null
run themis-restore --backup-root "$T/kroot" --wal-directory "$T/kw" --target-time 2099-01-01T00:00:00Z --target "$T/kr" \
    --key-file "$T/k2" --key-file "$T/k1"
is "$rc" 0 "one-command recovery with the backup rekeyed to k2 and WAL under k1 and k2${err:+ ($err)}"
is "$(themis-dbhash --database-path "$T/kr")" "$(themis-dbhash --database-path "$T/db")" "reaches the database's content"
run themis-backup --database-path "$T/db" --backup-directory "$T/k12" --compress --encrypt --key-file "$T/k1" --key-file "$T/k2"
is "$rc" 0 "a backup encrypted for two key files at once${err:+ ($err)}"
like "$(cat "$T/k12/MANIFEST.json")" '"key_ids": "[0-9a-f]{16},[0-9a-f]{16}"' "with two key ids"
run themis-restore --verify-only --quick --backup-directory "$T/k12" --key-file "$T/k1"
r1=$rc
run themis-restore --verify-only --quick --backup-directory "$T/k12" --key-file "$T/k2"
is "$r1:$rc" "0:0" "each opens it"
done_testing
