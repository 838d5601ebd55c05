#!/usr/bin/env bash
# themis-s3 through a fault-injecting proxy (503/500 answers, connections cut midway,
# stalls): transfers still complete and match, or fail cleanly with exit 1 and leave no
# unfinished multipart upload behind.
. "$(dirname "$0")/lib.sh"

s3_server
upstream=127.0.0.1:${AWS_ENDPOINT_URL##*:}
proxy() {  # proxy NAME FAULT-OPTIONS...: starts a proxy, sets $PROXY to its URL
    local name=$1; shift
    themis-faultproxy --listen-port-file "$T/$name.port" --upstream "$upstream" -v "$@" 2>>"$T/$name.log" &
    on_exit "kill $! 2>/dev/null"
    wait_for 10 test -s "$T/$name.port" || return 1
    PROXY=http://127.0.0.1:$(cat "$T/$name.port")
}
B=$TB_S3_BUCKET
uploads() { aws_ s3api list-multipart-uploads --bucket "$B" --query 'length(Uploads || `[]`)' --output text; }

head -c 40M /dev/urandom >"$T/in"
proxy rough --error-every 4 --drop-every 7 --stall-every 11 --stall-ms 1500; ok $? "proxy up ($PROXY)"
P="--endpoint $PROXY --part-size 5M --parallel 4 -v"
themis-s3 $P put "$T/in" "s3://$B/file" 2>"$T/put.err"; ok $? "multipart put through 503s, cuts and stalls"
themis-s3 $P put - "s3://$B/stream" <"$T/in" 2>>"$T/put.err"; ok $? "a stream put too"
ok "$(grep -q retry "$T/put.err"; echo $?)" "and it did retry ($(grep -c retry "$T/put.err") retries)"
is "$(aws_ s3api head-object --bucket "$B" --key file --query ContentLength --output text)" 41943040 "the object is whole"
themis-s3 $P get "s3://$B/file" "$T/out" 2>"$T/get.err"; ok $? "ranged get through the same faults"
ok "$(cmp -s "$T/in" "$T/out"; echo $?)" "byte for byte"
is "$(themis-s3 $P get "s3://$B/stream" - 2>>"$T/get.err" | sha256sum)" "$(sha256sum <"$T/in")" "the streamed one too, to stdout"
grep -q "connection cut" "$T/rough.log"; ok $? "the proxy did cut connections ($(grep -c 'connection cut' "$T/rough.log"))"
grep -q "answered 503" "$T/rough.log"; ok $? "and answered 503 ($(grep -c 'answered 503' "$T/rough.log"))"
is "$(uploads)" 0 "no unfinished multipart upload"

# Failing for good: every 2nd request answers 500 and no retries are allowed.
proxy bad --error-every 2 --error-code 500; ok $? "a worse proxy"
run themis-s3 --endpoint "$PROXY" --part-size 5M --retries 0 put "$T/in" "s3://$B/failed"
is "$rc" 1 "an upload that cannot finish: exit 1"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"
is "$(uploads)" 0 "the multipart upload was aborted: no parts left billed"
run aws_ s3api head-object --bucket "$B" --key failed
ok "$([ "$rc" -ne 0 ]; echo $?)" "and no object appeared"
run themis-s3 --endpoint "$PROXY" --part-size 5M --retries 0 get "s3://$B/file" "$T/failed"
is "$rc" 1 "a download that cannot finish: exit 1"
ok "$([ ! -e "$T/failed" ]; echo $?)" "leaves no file"

# An object replaced while it is read: every range asks for the ETag seen first (If-Match),
# so the ranges held back past the replacement fail with 412 instead of mixing two versions.
proxy slow --stall-every 2 --stall-ms 6000; ok $? "a proxy holding back every 2nd request 6 s"
themis-s3 --endpoint "$PROXY" --part-size 5M --parallel 4 --retries 0 get "s3://$B/file" "$T/mixed" 2>"$T/mixed.err" &
getter=$!
wait_for 30 grep -q "request 2: stalled" "$T/slow.log"; ok $? "a range GET is held back"
aws_ s3 cp --only-show-errors "$T/put.err" "s3://$B/file"; ok $? "meanwhile the object is replaced"
wait "$getter"; rc=$?
is "$rc" 1 "the download fails: exit 1"
like "$(cat "$T/mixed.err")" "HTTP 412.*replaced while it was being read" "naming why: $(cat "$T/mixed.err")"
ok "$([ ! -e "$T/mixed" ]; echo $?)" "and leaves no file"

# Nobody listening.
run themis-s3 --endpoint http://127.0.0.1:1 --retries 1 ls "s3://$B/"
is "$rc" 1 "an unreachable endpoint: exit 1"
ok "$(one_line_error themis-s3 "$err"; echo $?)" "in one line: $err"
done_testing
