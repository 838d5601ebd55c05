#!/usr/bin/env bash
# The test S3 server itself: tests/s3/rgw.sh starts a Ceph RGW on 127.0.0.1 that awscli can
# use and that checks signatures, and stops it leaving no listener behind.
. "$(dirname "$0")/lib.sh"

s3_server
ok 0 "RGW started ($AWS_ENDPOINT_URL)"
like "$AWS_ENDPOINT_URL" '^http://127\.0\.0\.1:[0-9]+$' "bound to 127.0.0.1 only"
head -c 300000 /dev/urandom >"$T/obj"
aws_ s3api put-object --bucket "$TB_S3_BUCKET" --key a/obj --body "$T/obj" >/dev/null; ok $? "awscli puts an object"
aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key a/obj "$T/back" >/dev/null; ok $? "and gets it"
ok "$(cmp -s "$T/obj" "$T/back"; echo $?)" "byte for byte"
AWS_SECRET_ACCESS_KEY=wrong aws_ s3api get-object --bucket "$TB_S3_BUCKET" --key a/obj "$T/x" >/dev/null 2>&1
ok "$([ $? -ne 0 ]; echo $?)" "a wrong secret is refused (signatures are checked)"
ports=$TB_RGW_PORTS
addrs=$(for p in $ports; do ss -ltnH "sport = :$p" | awk '{ print $4 }'; done | sort -u | tr '\n' ' ')
ok "$([ "$(echo $ports | wc -w)" -ge 6 ]; echo $?)" "monitor, OSD and gateway ports known ($ports)"
ok "$(echo "$addrs" | tr ' ' '\n' | grep . | grep -qv '^127\.0\.0\.1:'; [ $? -ne 0 ]; echo $?)" "every daemon listens on 127.0.0.1 only ($addrs)"
"$(dirname "$0")/../s3/rgw.sh" stop "$T/rgw"; ok $? "stop"
left=0
for p in $ports; do ss -ltn "sport = :$p" | grep -q LISTEN && left=1; done
ok "$left" "no listener left on $ports"
is "$(ls -A "$T/rgw")" "" "nothing left in the server's directory"
done_testing
