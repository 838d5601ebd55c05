#!/usr/bin/env bash
# themis-faultproxy on its own, with curl against a small HTTP/1.1 upstream: clean requests
# pass byte for byte over kept-alive connections; --error-every answers 503/500 itself,
# --drop-every cuts the connection, --stall-every delays; all counted per request.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "1..0 # SKIP curl is not installed"; exit 0; }

# Upstream: GET /NAME returns what PUT /NAME stored (Content-Length or chunked body); PUT
# answers the body's SHA-256 and stores nothing from a short body. Every request is logged in up.log as "METHOD PATH".
cat >"$T/up.py" <<'EOF'
import hashlib, http.server, os, sys
store, log = {}, open(sys.argv[1] + "/up.log", "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        log.write("GET %s\n" % self.path)
        body = store.get(self.path)
        self.reply(200, body) if body is not None else self.reply(404, b"")
    def do_PUT(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body, n = b"", -1
            while n != 0:
                n = int(self.rfile.readline().split(b";")[0] or b"-1", 16)
                if n <= 0:
                    break
                body += self.rfile.read(n)
                self.rfile.readline()
            while n == 0 and self.rfile.readline() not in (b"\r\n", b""):
                pass
            n = len(body) if n == 0 else -1
        else:
            n = int(self.headers["Content-Length"])
            body = self.rfile.read(n)
        log.write("PUT %s %d\n" % (self.path, len(body)))
        if len(body) != n:
            self.close_connection = True
            return
        store[self.path] = body
        self.reply(200, hashlib.sha256(body).hexdigest().encode())
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + "/up.port.tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + "/up.port.tmp", sys.argv[1] + "/up.port")
s.serve_forever()
EOF
python3 "$T/up.py" "$T" & up_pid=$!
on_exit "kill $up_pid 2>/dev/null"
wait_for 10 test -s "$T/up.port"; ok $? "upstream listening"
UP=127.0.0.1:$(cat "$T/up.port")
D=http://$UP  # direct, to seed the store

proxy() {  # proxy NAME OPTIONS...: starts a proxy in front of the upstream, sets $P to its URL
    local name=$1; shift
    themis-faultproxy --listen-port-file "$T/$name.port" --upstream "$UP" "$@" 2>"$T/$name.err" &
    pid=$!
    on_exit "kill $pid 2>/dev/null"
    wait_for 10 test -s "$T/$name.port" || return 1
    P=http://127.0.0.1:$(cat "$T/$name.port")
}
c() { curl -sS --max-time 20 -H 'Expect:' "$@"; }  # no 100-continue: bodies go at once
code() { curl -s --max-time 20 -o /dev/null -w '%{http_code}' -H 'Expect:' "$@"; }
ups() { grep -c "$1" "$T/up.log"; }

head -c 3000000 /dev/urandom >"$T/big"
head -c 100 /dev/urandom >"$T/small"
is "$(c -T "$T/big" "$D/big")" "$(sha "$T/big")" "the upstream stores a PUT (direct)"

# Usage.
run themis-faultproxy --upstream "$UP"
is "$rc" 2 "no --listen-port-file: usage error"
run themis-faultproxy --listen-port-file "$T/x" --upstream 10.0.0.1:80
is "$rc" 2 "an upstream other than 127.0.0.1 is refused"
ok "$(one_line_error themis-faultproxy "$err"; echo $?)" "in one line: $err"

# No faults: bytes pass both ways, several requests on one connection.
proxy clean; ok $? "a clean proxy ($P)"
is "$(c -T "$T/big" "$P/via")" "$(sha "$T/big")" "a 3 MB PUT arrives whole"
c "$P/via" -o "$T/back" "$P/big" -o "$T/back2" -v 2>"$T/clean.v"; ok $? "two GETs on one curl"
ok "$(cmp -s "$T/big" "$T/back" && cmp -s "$T/big" "$T/back2"; echo $?)" "byte for byte"
grep -q "Re-using existing connection" "$T/clean.v"; ok $? "over one kept-alive connection"
is "$(c -T - "$P/chunked" <"$T/big")" "$(sha "$T/big")" "a 3 MB chunked PUT (curl -T -) arrives whole"
is "$(cat "$T/clean.err")" "" "the proxy prints nothing"

# --error-every 3: the 3rd request is answered by the proxy and never reaches the upstream.
proxy err --error-every 3; ok $? "--error-every 3"
before=$(ups "GET /big")
c -o /dev/null "$P/big" -o /dev/null "$P/big" -o "$T/err.body" "$P/big" -D "$T/err.head" 2>/dev/null
is "$(grep '^HTTP/' "$T/err.head" | tr -d '\r' | tr '\n' ' ')" "HTTP/1.1 200 OK HTTP/1.1 200 OK HTTP/1.1 503 Slow Down " "the 3rd request on the connection gets 503"
like "$(cat "$T/err.body")" '<Error><Code>SlowDown</Code>' "with an S3 error body"
grep -qi '^Connection: close' "$T/err.head"; ok $? "and Connection: close"
is "$(ups "GET /big")" "$((before + 2))" "the upstream saw only the first two"
g=(--next -s -o /dev/null -w ' %{http_code}' "$P/big")
is "$(c -T - "$P/ch" <"$T/big" "${g[@]}" "${g[@]}")" "$(sha "$T/big") 200 503" \
    "a chunked PUT counts as one request: the 4th; on its connection the 5th passes, the 6th gets 503"
is "$(code "$P/big")" 200 "the 7th passes"
is "$(code "$P/big")" 200 "the 8th passes"
is "$(code -T "$T/big" "$P/x")" 503 "the 9th, a 3 MB PUT sent without Expect, still reads 503 (no reset)"
proxy e500 --error-every 1 --error-code 500
is "$(code "$P/big")" 500 "--error-code 500"
like "$(c "$P/big")" '<Code>InternalError</Code>' "as InternalError"

# --drop-every 2: the 2nd request's connection is cut midway.
proxy drop --drop-every 2; ok $? "--drop-every 2"
is "$(code "$P/big")" 200 "request 1 passes"
c -o "$T/cut" "$P/big" 2>/dev/null; st=$?
ok "$([ "$st" -ne 0 ]; echo $?)" "request 2, a GET, fails in curl (exit $st)"
sz=$(stat -c %s "$T/cut" 2>/dev/null || echo 0)
ok "$([ "$sz" -lt 3000000 ]; echo $?)" "after part of the response ($sz bytes)"
is "$(code "$P/big")" 200 "request 3 passes"
c -T "$T/big" "$P/cutput" >/dev/null 2>&1; st=$?
ok "$([ "$st" -ne 0 ]; echo $?)" "request 4, a PUT, fails in curl (exit $st)"
wait_for 5 grep -q "PUT /cutput" "$T/up.log"
like "$(grep "PUT /cutput" "$T/up.log")" '^PUT /cutput 1500000$' "the upstream got half the body"
is "$(code "$P/cutput")" 404 "and stored nothing"

# --stall-every 2 --stall-ms 1500: the 2nd request waits, the others do not.
proxy stall --stall-every 2 --stall-ms 1500; ok $? "--stall-every 2 --stall-ms 1500"
ms() { curl -s -o "$1" -w '%{time_total}' "$2" | awk '{ printf "%d", $1 * 1000 }'; }
t1=$(ms "$T/s1" "$P/big"); t2=$(ms "$T/s2" "$P/big"); t3=$(ms "$T/s3" "$P/big")
ok "$([ "$t1" -lt 1000 ] && [ "$t3" -lt 1000 ]; echo $?)" "requests 1 and 3 are quick (${t1} ms, ${t3} ms)"
ok "$([ "$t2" -ge 1500 ]; echo $?)" "request 2 takes the stall (${t2} ms)"
ok "$(cmp -s "$T/big" "$T/s2"; echo $?)" "and still arrives byte for byte"

# SIGTERM ends it.
kill -TERM "$pid"; wait "$pid" 2>/dev/null
is "$?" 0 "SIGTERM: the proxy exits 0"
ok "$(ss -ltn "sport = :${P##*:}" | grep -q LISTEN; [ $? -ne 0 ]; echo $?)" "its port is closed"
done_testing
