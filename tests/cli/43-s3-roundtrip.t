#!/usr/bin/env bash
# themis-s3 against a real RGW: round trips of every size class from files and from stdin,
# cross-checked with awscli both ways, listing past one page, and the refusals.
. "$(dirname "$0")/lib.sh"

s3_server
S=s3://$TB_S3_BUCKET
P="--part-size 5M"   # S3's smallest part, so "one part" and "part + 1 byte" stay small
for n in 0 1 5242880 5242881; do
    head -c "$n" /dev/urandom >"$T/in.$n"
    themis-s3 $P put "$T/in.$n" "$S/f/$n"; ok $? "put a $n-byte file"
    themis-s3 $P get "$S/f/$n" "$T/out.$n"; ok $? "get it into a file"
    ok "$(cmp -s "$T/in.$n" "$T/out.$n"; echo $?)" "$n bytes back byte for byte"
    themis-s3 $P put - "$S/s/$n" <"$T/in.$n"; ok $? "put $n bytes from stdin"
    is "$(themis-s3 $P get "$S/s/$n" - | sha256sum)" "$(sha256sum <"$T/in.$n")" "and get them to stdout"
done
is "$(themis-s3 stat "$S/f/5242881" | sed -n 's/^etag .*-\([0-9]*\)$/\1/p')" 2 "part + 1 byte is a two-part upload"
is "$(themis-s3 stat "$S/f/5242880" | sed -n 's/^sha256 //p')" "$(sha "$T/in.5242880")" "the object records its SHA-256"

head -c 200M /dev/urandom >"$T/big"
themis-s3 put "$T/big" "$S/big"; ok $? "put 200 MiB from a file"
themis-s3 put - "$S/big-stream" <"$T/big"; ok $? "put 200 MiB from stdin"
aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key big "$T/big.aws" >/dev/null
ok "$(cmp -s "$T/big" "$T/big.aws"; echo $?)" "awscli downloads what we uploaded, byte for byte"
aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key big-stream "$T/big.aws" >/dev/null
ok "$(cmp -s "$T/big" "$T/big.aws"; echo $?)" "and what we streamed"
rm -f "$T/big.aws"
aws_ s3 cp --only-show-errors "$T/big" "$S/big-aws"; ok $? "awscli uploads 200 MiB (multipart)"
is "$(themis-s3 get "$S/big-aws" - | sha256sum)" "$(sha256sum <"$T/big")" "we download what awscli uploaded"
themis-s3 get "$S/big-aws" "$T/big.back"; ok "$(cmp -s "$T/big" "$T/big.back"; echo $?)" "also into a file by offset"
rm -f "$T/big" "$T/big.back"

# 1,001 keys: ls pages past the 1,000 a listing returns.
mkdir "$T/many"
for i in $(seq 1 1001); do echo "$i" >"$T/many/k$i"; done
aws_ s3 cp --only-show-errors --recursive "$T/many" "$S/many/"; ok $? "awscli uploads 1001 objects"
is "$(themis-s3 ls "$S/many/" | wc -l)" 1001 "ls lists all 1001 (two pages)"
is "$(themis-s3 ls "$S/many/" | cut -f3 | sort | uniq | wc -l)" 1001 "each once"

# sync both ways: only what is missing or differs is copied.
mkdir -p "$T/d/sub" && echo a >"$T/d/a" && echo b >"$T/d/sub/b"
is "$(themis-s3 sync "$T/d" "$S/sync")" "copied 2 files" "sync up copies a tree"
is "$(themis-s3 sync "$T/d" "$S/sync")" "copied 0 files" "and nothing again"
echo changed >"$T/d/a"
is "$(themis-s3 sync "$T/d" "$S/sync")" "copied 1 file" "then only what changed"
is "$(themis-s3 sync "$S/sync" "$T/e")" "copied 2 files" "sync down"
ok "$(diff -r "$T/d" "$T/e" >/dev/null; echo $?)" "gives the same tree"
is "$(themis-s3 sync "$S/sync" "$T/e")" "copied 0 files" "and nothing again"
themis-s3 rm "$S/sync/a"; ok $? "rm"
run themis-s3 stat "$S/sync/a"
is "$rc" 1 "a removed object is gone"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"

# Refusals.
run env AWS_SECRET_ACCESS_KEY=wrong themis-s3 put "$T/in.1" "$S/x"
is "$rc" 1 "a wrong secret: exit 1"
like "$err" 'SignatureDoesNotMatch' "naming S3's error code"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"
ok "$(printf '%s' "$err$out" | grep -qF "$AWS_SECRET_ACCESS_KEY"; [ $? -ne 0 ]; echo $?)" "the secret is not printed"
run env -u AWS_ACCESS_KEY_ID themis-s3 ls "$S/"
is "$rc" 2 "no credentials: exit 2"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"
run themis-s3 get "$S/nope" "$T/nope"
is "$rc" 1 "a missing object: exit 1"
ok "$([ ! -e "$T/nope" ] && ! ls -a "$T" | grep -q '^\.nope\.tmp'; echo $?)" "and no file, whole or partial"
run themis-s3 ls "s3://no-such-bucket-$$/"
is "$rc" 1 "a missing bucket: exit 1"
like "$err" 'NoSuchBucket' "naming it: $err"
run themis-s3 put "$T/in.1"
is "$rc" 2 "a missing argument is a usage error"
run themis-s3 put "$T/absent" "$S/x"
is "$rc" 1 "a missing source file: exit 1"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"
done_testing
