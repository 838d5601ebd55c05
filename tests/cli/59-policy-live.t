#!/usr/bin/env bash
# Issue 15's matrix with the writer running: for each write policy (with ThemisDB's merge
# operator and blob files; write_prepared with its tables over db_paths, write_unprepared
# with its WAL in a wal_dir), themis-txnwriter writes with 2 threads while the archiver
# follows it. Online backups under load (compressed, --stdout into restore --from -) verify
# quick and full and restore to what their manifest says; with the writers held
# (--pause-file: the writer takes its ground-truth checkpoint first) an online backup (and
# where the configuration asks an encrypted or an incremental one) and themis-dbhash of the
# live source each equal the checkpoint as the writer itself reopens it. The archiver stops on SIGTERM; PITR from the
# backup taken under load to every checkpoint after it equals it (by time; the first also
# by sequence), and so does one-command recovery.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/policy.sh"   # hash_of
head -c 32 /dev/urandom > "$T/key"

# writes N: waits until the writer has logged N more writes than now.
writes() { local n; n=$(wc -l < "$c/log"); wait_for 120 bash -c "[ \$(wc -l < '$c/log') -ge $((n + $1)) ]"; }
# pause: holds the writers; the checkpoint's name in $held.
pause() { touch "$c/pause" && wait_for 60 test -s "$c/pause.ack" && held=ckpt-$(cat "$c/pause.ack"); }
resume() { rm -f "$c/pause"; wait_for 60 test ! -e "$c/pause.ack"; }

while read -r name p layout extras; do
    c=$T/$name; mkdir -p "$c"
    has() { case ",$extras," in *",$1,"*) return 0 ;; esac; return 1; }
    merge=--merge
    lw=; lb=; la=
    case $layout in
    waldir) lw="--wal-dir $c/wal"; lb="--db-wal-dir $c/wal"; la=$lb ;;
    paths) lw="--db-paths $c/p1,$c/p2"; lb="--db-paths $c/db,$c/p1,$c/p2" ;;
    esac
    what="$name ($p, $layout)"
    themis-txnwriter --db "$c/db" $lw --policy "$p" --merge --blob --threads 2 --rate 200 --seconds 600 --wal-ttl 3600 \
        --checkpoint-dir "$c/ck" --pause-file "$c/pause" --ready-file "$c/ready" --log "$c/log" 2>"$c/w.err" &
    wr=$!
    on_exit "kill $wr 2>/dev/null; wait $wr 2>/dev/null"
    wait_for 60 test -f "$c/ready"; ok $? "$what: the writer is writing"
    themis-wal-archive --database-path "$c/db" $la --wal-directory "$c/w" --follow --interval 50 2>"$c/a.err" &
    ar=$!
    on_exit "kill $ar 2>/dev/null; wait $ar 2>/dev/null"
    writes 100

    # Under load.
    run themis-backup -v --database-path "$c/db" $lb --backup-directory "$c/base" --compress
    is "$rc" 0 "$what: online backup under load"
    like "$err" "write policy write_$p" "$what: the policy detected: write_$p"
    run themis-restore --backup-directory "$c/base" --verify-only --quick
    is "$rc" 0 "$what: --verify-only --quick${err:+: $err}"
    run themis-restore --backup-directory "$c/base" --verify-only
    is "$rc" 0 "$what: --verify-only (full)${err:+: $err}"
    themis-restore --backup-directory "$c/base" --target "$c/r" 2>/dev/null
    is "$(hash_of "$c/r")" "$(manifest_field "$c/base/MANIFEST.json" content_hash_v2)" \
        "$what: restored, opened by the writer with its policy, it is what the manifest says"
    like "$(themis-dbhash --database-path "$c/db" $lb 2>&1)" '^[0-9a-f]{64}$' "$what: themis-dbhash of the live source"
    if has stream; then
        # This failed in 27 of 40 runs of a loop under load (and once in CI) before the policy
        # scan of the live WAL skipped files the server retired meanwhile.
        themis-backup --database-path "$c/db" $lb --stdout --compress 2>"$c/s.err" | themis-restore --from - --target "$c/rs" 2>"$c/rs.err"
        st=("${PIPESTATUS[@]}")
        is "${st[*]}" "0 0" "$what: backup --stdout under load | restore --from -" || diag "$(cat "$c/s.err" "$c/rs.err" | head -3)"
        is "$(hash_of "$c/rs")" "$(themis-dbhash --database-path "$c/rs" 2>&1)" "$what: the streamed restore opens with the writer's policy"
    fi
    writes 100

    # Held: each equals the writer's checkpoint.
    pause; ok $? "$what: writers held, checkpoint $held"
    want=$(hash_of "$c/ck/$held")
    is "$(themis-dbhash --database-path "$c/db" $lb 2>&1)" "$want" "$what: themis-dbhash of the live source equals it"
    run themis-backup --database-path "$c/db" $lb --backup-directory "$c/root/b1" --compress
    is "$rc/$(manifest_field "$c/root/b1/MANIFEST.json" content_hash_v2)" "0/$want" "$what: an online backup's content is the checkpoint${err:+: $err}"
    if has enc; then
        run themis-backup --database-path "$c/db" $lb --backup-directory "$c/enc" --encrypt --key-file "$T/key"
        is "$rc" 0 "$what: encrypted online backup${err:+: $err}"
        themis-restore --backup-directory "$c/enc" --target "$c/re" --key-file "$T/key" 2>/dev/null
        is "$(hash_of "$c/re")" "$want" "$what: restored, equals the checkpoint"
    fi
    resume
    writes 100
    pause; ok $? "$what: writers held again, checkpoint $held"
    if has inc; then
        run themis-backup --database-path "$c/db" $lb --backup-directory "$c/root/b2" --compress --incremental --backup-root "$c/root"
        is "$rc" 0 "$what: incremental online backup${err:+: $err}"
        themis-restore --backup-directory "$c/root/b2" --target "$c/ri" 2>/dev/null
        is "$(hash_of "$c/ri")" "$(hash_of "$c/ck/$held")" "$what: restored, equals the checkpoint"
    fi
    resume
    writes 50
    kill -TERM "$wr"; wait "$wr"; is "$?" 0 "$what: the writer stops"
    kill -TERM "$ar"; wait "$ar"; is "$?" 0 "$what: the archiver stops on SIGTERM${err:+: $(cat "$c/a.err")}"
    run themis-wal-archive --database-path "$c/db" $la --wal-directory "$c/w" --once
    is "$rc" 0 "$what: a last --once${err:+: $err}"
    run themis-wal-archive --wal-directory "$c/w" --check
    is "$rc" 0 "$what: --check ($out)${err:+: $err}"

    # PITR from the backup taken under load.
    base=$(manifest_field "$c/base/MANIFEST.json" last_sequence)
    cp -a "$c/base" "$c/root/b0"
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
        restore_base "$c/t"
        run themis-wal-replay --wal-directory "$c/w" --database-path "$c/t" --target-time "$(tsz "$ts")"
        [ "$rc" = 0 ] && [ "$(hash_of "$c/t")" = "$want" ] && good=$((good + 1)) || diag "$what: to $ck ($(tsz "$ts")): rc $rc $err"
    done < "$c/ck/checkpoints.tsv"
    is "$good/$n" "2/2" "$what: PITR by time to every checkpoint after the base equals it"
    last=$(tail -1 "$c/ck/checkpoints.tsv")
    rm -rf "$c/root/b2"   # one-command recovery from the full backups before T (b0, b1)
    run themis-restore --backup-root "$c/root" --wal-directory "$c/w" --target-time "$(tsz "$(cut -f3 <<<"$last")")" --target "$c/one"
    is "$rc" 0 "$what: one-command recovery${err:+: $err}"
    is "$(hash_of "$c/one")" "$(hash_of "$c/ck/$(cut -f1 <<<"$last")")" "$what: to the last checkpoint's time, equal to it"
done <<'EOF_'
cl committed plain stream
pl prepared paths enc
ul unprepared waldir inc,stream
EOF_
done_testing
