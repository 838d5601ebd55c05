#!/usr/bin/env python3
"""mock-themisdb: stands in for ThemisDB's POST /admin/backup on 127.0.0.1 for tests.
It writes a RocksDB checkpoint of --db with Debian's ldb into the requested directory.
Usage: mock-themisdb.py --db DIR --port-file F [--fail]"""
import argparse, http.server, json, os, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--db", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--fail", action="store_true")
args = ap.parse_args()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/admin/backup" or args.fail:
            self.send_response(404 if self.path != "/admin/backup" else 500)
            self.end_headers()
            return
        target = json.loads(body)["directory"]
        r = subprocess.run(["ldb", "--db=" + args.db, "--try_load_options", "checkpoint",
                            "--checkpoint_dir=" + target], capture_output=True)
        self.send_response(200 if r.returncode == 0 else 500)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}' if r.returncode == 0 else r.stderr)
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, args.port_file)
srv.serve_forever()
