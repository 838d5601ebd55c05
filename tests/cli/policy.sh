# policy.sh: the stopped half of issue 15's matrix, sourced by tests 57 and 58, which each
# call policy_matrix with their share of the configurations. On a ThemisDB 1.3+ database
# written by themis-txnwriter (2PC, rollbacks, skip_prepare commits, unprepared sections,
# blob files) and stopped with writes left in its WAL: offline backup (compressed; to
# --stdout, encrypted, incremental where the configuration asks), --verify-only quick and
# full, restore, dbhash of the source. The truth is the writer itself opening a copy of
# its database with its policy and merge operator (--hash: the server stand-in). Then the
# writer writes again (a restart) with ground-truth checkpoints: the archiver (--once
# across the restart, --check), PITR from the base by sequence to the first checkpoint
# after it, by time to every one (extra "all"), one-command recovery to the last.

# hash_of DIR: the content as the server sees it: the writer, with the configuration's
# policy and merge operator, opens DIR read-write (recovering its WAL) and hashes it.
hash_of() { themis-txnwriter --hash --db "$1" --policy "$p" $merge 2>&1; }

# source_truth: the same on a copy of the stopped source (the open rewrites the WAL).
source_truth() {
    local extra=
    rm -rf "$c/copy" && mkdir -p "$c/copy" && cp -a "$c/db" "$c/copy/db" || return 1
    [ -d "$c/wal" ] && cp -a "$c/wal" "$c/copy/wal" && extra="--wal-dir $c/copy/wal"
    [ -d "$c/p1" ] && cp -a "$c/p1" "$c/p2" "$c/copy/" && extra="--db-paths $c/copy/p1,$c/copy/p2"
    themis-txnwriter --hash --db "$c/copy/db" --policy "$p" $merge $extra 2>&1
}

# restore_base DIR: a fresh restore of the base backup at DIR.
restore_base() { rm -rf "$1" && themis-restore --backup-directory "$c/base" --target "$1" 2>/dev/null; }

# policy_matrix: one configuration per line of stdin: NAME POLICY MERGE(yes/no)
# LAYOUT(plain/waldir/paths) EXTRAS (comma list of stream, enc, inc, all: PITR by time to
# every checkpoint, else to the last only).
policy_matrix() {
    local name layout extras lw lb la what truth truth2 base n good ck seq ts want last
    head -c 32 /dev/urandom > "$T/key"
    while read -r name p m layout extras; do
    [ -n "$name" ] || continue
    c=$T/$name; mkdir -p "$c"
    merge=; [ "$m" = yes ] && merge=--merge
    lw=; lb=; la=   # the layout's options for the writer, the backup, the archiver
    case $layout in
    waldir) lw="--wal-dir $c/wal"; lb="--db-wal-dir $c/wal"; la=$lb ;;
    paths) lw="--db-paths $c/p1,$c/p2"; lb="--db-paths $c/db,$c/p1,$c/p2" ;;
    esac
    has() { case ",$extras," in *",$1,"*) return 0 ;; esac; return 1; }
    what="$name ($p, merge $m, $layout)"
    writer() { themis-txnwriter --db "$c/db" $lw --policy "$p" $merge --blob --threads 2 --wal-ttl 3600 "$@"; }

    # 1. Stopped with writes still in its WAL: the base.
    writer --seed 1 --batches 150 --no-flush-at-exit 2>"$c/w1.err"
    ok $? "$what: the writer stopped with writes in its WAL" || cat "$c/w1.err" >&2
    truth=$(source_truth)
    run themis-backup -v --database-path "$c/db" $lb --backup-directory "$c/base" --compress
    is "$rc" 0 "$what: offline backup"
    like "$err" "write policy write_$p" "$what: the policy detected: write_$p"
    is "$(manifest_field "$c/base/MANIFEST.json" write_policy)" "write_$p" "$what: and recorded in the manifest"
    is "$(manifest_field "$c/base/MANIFEST.json" content_hash_v2)" "$truth" "$what: the manifest's content hash is the writer's content"
    is "$(themis-dbhash --database-path "$c/db" $lb 2>&1)" "$truth" "$what: themis-dbhash of the stopped source equals it"
    run themis-restore --backup-directory "$c/base" --verify-only --quick
    is "$rc" 0 "$what: --verify-only --quick${err:+: $err}"
    run themis-restore --backup-directory "$c/base" --verify-only
    is "$rc" 0 "$what: --verify-only (full)${err:+: $err}"
    run themis-restore --backup-directory "$c/base" --target "$c/r"
    is "$rc" 0 "$what: restore${err:+: $err}"
    is "$(hash_of "$c/r")" "$truth" "$what: the restored copy, opened by the writer with its policy, equals the source"
    is "$(themis-dbhash --database-path "$c/r" 2>&1)" "$truth" "$what: themis-dbhash of the restored copy equals the manifest's"
    if [ "$p" = committed ] && [ -z "$merge" ]; then
        # Where the files allow it: Debian's ldb opens the restored copy by its OPTIONS.
        keys=$(themis-dbhash -v --database-path "$c/r" | sed -n 's/^cf default \([0-9]*\) keys$/\1/p')
        ldb --db="$c/r" --try_load_options scan >"$c/scan" 2>"$c/scan.err"
        ok $? "$what: ldb --try_load_options scans the restored copy $(head -c 200 "$c/scan.err")"
        is "$(wc -l < "$c/scan")" "$keys" "$what: and sees every key of the default CF ($keys)"
    fi
    if has stream; then
        themis-backup --database-path "$c/db" $lb --stdout --compress 2>"$c/s.err" |
            themis-restore --from - --target "$c/rs" 2>"$c/rs.err"
        ok $? "$what: backup --stdout | restore --from - $(cat "$c/s.err" "$c/rs.err" | head -2)"
        is "$(hash_of "$c/rs")" "$truth" "$what: the streamed restore equals the source"
    fi
    if has enc; then
        run themis-backup --database-path "$c/db" $lb --backup-directory "$c/enc" --compress --encrypt --key-file "$T/key"
        is "$rc" 0 "$what: encrypted backup${err:+: $err}"
        run themis-restore --backup-directory "$c/enc" --verify-only --key-file "$T/key"
        is "$rc" 0 "$what: the encrypted backup verifies (full)${err:+: $err}"
        themis-restore --backup-directory "$c/enc" --target "$c/re" --key-file "$T/key" 2>/dev/null
        is "$(hash_of "$c/re")" "$truth" "$what: and restores to the source"
    fi
    mkdir -p "$c/root" && cp -a "$c/base" "$c/root/b1"
    run themis-wal-archive --database-path "$c/db" $la --wal-directory "$c/w" --once
    is "$rc" 0 "$what: themis-wal-archive --once${err:+: $err}"

    # 2. The writer again (a restart), with ground truth: archive, incremental, PITR.
    writer --seed 2 --batches 240 --checkpoint-dir "$c/ck" --checkpoint-at 80,160 --no-flush-at-exit 2>"$c/w2.err"
    ok $? "$what: the writer reopened and wrote, with checkpoints" || cat "$c/w2.err" >&2
    run themis-wal-archive --database-path "$c/db" $la --wal-directory "$c/w" --once
    is "$rc" 0 "$what: --once again, across the restart${err:+: $err}"
    run themis-wal-archive --wal-directory "$c/w" --check
    is "$rc" 0 "$what: --check ($out)${err:+: $err}"
    if has inc; then
        truth2=$(source_truth)
        run themis-backup --database-path "$c/db" $lb --backup-directory "$c/root/b2" --compress --incremental --backup-root "$c/root"
        is "$rc" 0 "$what: incremental backup${err:+: $err}"
        like "$(cat "$c/root/b2/MANIFEST.json")" '"parent"' "$what: it has a parent"
        themis-restore --backup-directory "$c/root/b2" --target "$c/ri" 2>/dev/null
        is "$(hash_of "$c/ri")" "$truth2" "$what: the incremental restores to the source"
    fi
    base=$(manifest_field "$c/base/MANIFEST.json" last_sequence)
    n=0 good=0
    while IFS=$'\t' read -r ck seq ts; do
        [ "$seq" -gt "$base" ] || continue
        n=$((n + 1))
        want=$(hash_of "$c/ck/$ck")
        if [ "$n" = 1 ]; then
            restore_base "$c/t"
            run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-seq "$seq"
            is "$rc/$(hash_of "$c/t")" "0/$want" "$what: PITR to --target-seq $seq equals checkpoint $ck${err:+: $err}"
        fi
        has all || continue
        restore_base "$c/t"
        run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-time "$(tsz "$ts")"
        [ "$rc" = 0 ] && [ "$(hash_of "$c/t")" = "$want" ] && good=$((good + 1)) || diag "$what: to $ck ($(tsz "$ts")): rc $rc $err"
    done < "$c/ck/checkpoints.tsv"
    has all && is "$good/$n" "3/3" "$what: PITR by time to every checkpoint after the base equals it"
    last=$(tail -1 "$c/ck/checkpoints.tsv")
    run themis-restore --backup-root "$c/root" --wal-directory "$c/w" --target-time "$(tsz "$(cut -f3 <<<"$last")")" --target "$c/one"
    is "$rc" 0 "$what: one-command recovery${err:+: $err}"
    is "$(hash_of "$c/one")" "$(hash_of "$c/ck/$(cut -f1 <<<"$last")")" "$what: to the last checkpoint's time, equal to it"
    done
}
