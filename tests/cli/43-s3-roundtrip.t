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

# --progress=json: bytes transferred, to the object's size where it is known.
head -c 12M /dev/urandom >"$T/p12"
themis-s3 $P --progress=json put "$T/p12" "$S/p/12" 2>"$T/p.err"; ok $? "put a 12 MiB file (3 parts) with --progress=json"
progress_json "$T/p.err" upload total; ok $? "stderr is JSON progress lines ending at the total"
like "$(tail -1 "$T/p.err")" '"bytes_total":12582912,' "which is the file's size"
themis-s3 $P --progress=json put - "$S/p/12s" <"$T/p12" 2>"$T/p.err"; ok $? "put it from stdin with --progress=json"
progress_json "$T/p.err" upload 12582912; ok $? "JSON progress lines ending at every byte read (no total for a stream)"
themis-s3 $P --progress=json put "$T/in.1" "$S/p/1" 2>"$T/p.err"; ok $? "put a 1-byte file (one PUT) with --progress=json"
progress_json "$T/p.err" upload total; ok $? "JSON progress lines ending at the total"
themis-s3 $P --progress=json get "$S/p/12s" "$T/p12.back" 2>"$T/p.err"; ok $? "get into a file with --progress=json"
progress_json "$T/p.err" download total; ok $? "JSON progress lines ending at the total"
like "$(tail -1 "$T/p.err")" '"bytes_total":12582912,' "which is the object's size"
ok "$(cmp -s "$T/p12" "$T/p12.back"; echo $?)" "and the file is whole"
is "$(themis-s3 $P --progress=json get "$S/p/12" - 2>"$T/p.err" | sha256sum)" "$(sha256sum <"$T/p12")" "get to stdout with --progress=json"
progress_json "$T/p.err" download total; ok $? "JSON progress lines ending at the total, on stderr only"
run themis-s3 --progress=json ls "$S/p/"
is "$rc" 2 "--progress with ls is a usage error"
run themis-s3 --progress put "$T/in.1" "$S/p/1"
is "$rc/$err" "0/" "--progress draws nothing when stderr is no terminal"
rm -f "$T/p12" "$T/p12.back"

head -c 200M /dev/urandom >"$T/big"
themis-s3 --progress=json put "$T/big" "$S/big" 2>"$T/p.err"; ok $? "put 200 MiB from a file (with --progress=json)"
progress_json "$T/p.err" upload total; ok $? "its progress lines never fall and end at the total"
themis-s3 put - "$S/big-stream" <"$T/big"; ok $? "put 200 MiB from stdin"
aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key big "$T/big.aws" >/dev/null
ok "$(cmp -s "$T/big" "$T/big.aws"; echo $?)" "awscli downloads what we uploaded, byte for byte"
aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key big-stream "$T/big.aws" >/dev/null
ok "$(cmp -s "$T/big" "$T/big.aws"; echo $?)" "and what we streamed"
rm -f "$T/big.aws"
aws_ s3 cp --only-show-errors "$T/big" "$S/big-aws"; ok $? "awscli uploads 200 MiB (multipart)"
is "$(themis-s3 get "$S/big-aws" - | sha256sum)" "$(sha256sum <"$T/big")" "we download what awscli uploaded"
themis-s3 --progress=json get "$S/big-aws" "$T/big.back" 2>"$T/p.err"; ok "$(cmp -s "$T/big" "$T/big.back"; echo $?)" "also into a file by offset"
progress_json "$T/p.err" download total; ok $? "with progress lines that never fall and end at the total"
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
mkdir -p "$T/f/sub" && head -c 9M /dev/urandom >"$T/f/sub/big" && echo x >"$T/f/x"
is "$(themis-s3 --progress=json sync "$T/f" "$S/psync" 2>"$T/p.err")" "copied 2 files" "sync up with --progress=json"
progress_json "$T/p.err" sync $((9 * 1048576 + 2)); ok $? "JSON progress lines ending at the bytes of every file copied"
is "$(themis-s3 --progress=json sync "$S/psync" "$T/g" 2>"$T/p.err")" "copied 2 files" "sync down with --progress=json"
progress_json "$T/p.err" sync $((9 * 1048576 + 2)); ok $? "the same, downloading"
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
# The download checks what it received against the object's recorded SHA-256
# (x-amz-meta-sha256, which our uploads set): a wrong record is exit 3 and leaves no file.
head -c 7340033 /dev/urandom >"$T/lied"   # two ranges at 5 MiB parts
aws_ s3 cp --only-show-errors --metadata "sha256=$(printf '0%.0s' $(seq 64))" "$T/lied" "$S/lied"
ok $? "awscli uploads an object whose x-amz-meta-sha256 is not its content's"
run themis-s3 $P get "$S/lied" "$T/lied.back"
is "$rc" 3 "get into a file: exit 3 (verification failed)"
like "$err" "do not match the object's SHA-256" "naming the mismatch: $err"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line"
ok "$([ ! -e "$T/lied.back" ] && ! ls -a "$T" | grep -q '^\.lied\.back'; echo $?)" "and no file, whole or partial"
themis-s3 $P get "$S/lied" - >/dev/null 2>"$T/lied.err"; rc=$?
is "$rc" 3 "to stdout: exit 3 after the bytes (a pipe cannot take them back)"
aws_ s3 cp --only-show-errors --metadata "sha256=$(sha "$T/lied")" "$T/lied" "$S/true"
themis-s3 $P get "$S/true" "$T/true.back"; ok $? "the same bytes with their true SHA-256 recorded by awscli: exit 0"
ok "$(cmp -s "$T/lied" "$T/true.back"; echo $?)" "byte for byte"
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
