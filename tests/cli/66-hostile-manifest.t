#!/usr/bin/env bash
# A damaged or hostile MANIFEST.json never verifies (issue 17): every field is checked for
# type and range, duplicate keys are refused, the copy beside the archive must say what the
# archive's own says, and an incremental's parent must be a backup. Each case is exit 3 with
# a one-line message naming the field, with --verify-only and with --verify-only --quick.
. "$(dirname "$0")/lib.sh"

make_db "$T/db" --batches 400; ok $? "load generator wrote a database"
themis-backup --database-path "$T/db" --backup-directory "$T/good" --compress
ok $? "backup written"
members=$(zstd -q -dc "$T/good/backup.tar.zst" | tar -t)

# edit COPY PYTHON: a fresh copy of the good backup whose MANIFEST.json (beside the archive)
# PYTHON changes (the manifest is m).
edit() {
    rm -rf "$T/$1"; cp -a "$T/good" "$T/$1"
    python3 - "$T/$1/MANIFEST.json" "$2" <<'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
m = json.load(open(path))
exec(code)
open(path, "w").write(json.dumps(m, indent=2, sort_keys=True) + "\n")
EOF
}
# rebuild COPY PYTHON: the same change in both manifests, the archive rebuilt around the
# changed inner one and the outer one's archive size and SHA-256 made to match: a backup
# consistent with itself, as a hostile one would be.
rebuild() {
    rm -rf "$T/$1" "$T/x"; cp -a "$T/good" "$T/$1"; mkdir "$T/x"
    zstd -q -dc "$T/good/backup.tar.zst" | tar -x -C "$T/x"
    python3 - "$T/x/MANIFEST.json" "$2" <<'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
m = json.load(open(path))
exec(code)
open(path, "w").write(json.dumps(m, indent=2, sort_keys=True) + "\n")
EOF
    # shellcheck disable=SC2086
    tar -c -C "$T/x" --no-recursion $members | zstd -q -c > "$T/$1/backup.tar.zst"
    python3 - "$T/x/MANIFEST.json" "$T/$1" <<'EOF'
import hashlib, json, os, sys
m = json.load(open(sys.argv[1]))
a = os.path.join(sys.argv[2], "backup.tar.zst")
m["archive"] = {"name": "backup.tar.zst", "size": os.path.getsize(a),
                "sha256": hashlib.sha256(open(a, "rb").read()).hexdigest()}
open(os.path.join(sys.argv[2], "MANIFEST.json"), "w").write(json.dumps(m, indent=2, sort_keys=True) + "\n")
EOF
}
# refused COPY REGEX DESCRIPTION: both kinds of verification fail with exit 3 naming it.
refused() {
    local d=$1 re=$2 desc=$3 how
    for how in --quick full; do
        if [ "$how" = full ]; then
            run themis-restore --backup-directory "$T/$d" --verify-only
        else
            run themis-restore --backup-directory "$T/$d" --verify-only --quick
        fi
        is "$rc" 3 "$desc ($how): exit 3"
        like "$err" "$re" "$desc ($how): the message names the field"
        ok "$(one_line_error themis-restore "$err"; echo $?)" "$desc ($how): one line"
    done
}

run themis-restore --backup-directory "$T/good" --verify-only
is "$rc" 0 "the good backup verifies${err:+: $err}"

# The outside copy differs from the inside one in a shared field.
edit mode 'm["files"][0]["mode"] = 0o600'
refused mode 'differs from the archive.*files\[0\] \(db/[^)]*\)\.mode' "a changed file mode"
edit seq 'm["last_sequence"] += 1'
refused seq 'last_sequence' "a changed last_sequence"
edit host 'm["source"]["host"] = "elsewhere"'
refused host 'source\.host' "a changed source host"
edit created 'm["created"] = "2020-01-01T00:00:00Z"'
refused created 'differs.*created' "a changed creation time"
edit level 'm["compression"]["level"] = 19'
refused level 'compression\.level' "a changed compression level"
edit nocf 'del m["column_families"][-1]'
refused nocf 'column_families' "a column family left out"

# Fields of the wrong type or out of range.
edit nomode 'del m["files"][0]["mode"]'
refused nomode 'files\[0\]\.mode: missing' "a missing file mode"
edit dbbytes 'm["db_bytes"] = str(m["db_bytes"])'
refused dbbytes 'db_bytes: not an integer' "db_bytes as a string"
edit algo 'm["compression"]["algorithm"] = "lz4"'
refused algo 'compression\.algorithm: not "zstd" or "none"' "an unknown compression"
edit cfobj 'm["column_families"].append({})'
refused cfobj 'column_families\[[0-9]+\]: not a string' "a column family that is an object"
i=0
for v in True None 420.5 '-2**63' 4096 '"420"'; do
    i=$((i + 1))
    edit "mode$i" "m['files'][1]['mode'] = $v"
    refused "mode$i" 'files\[1\]\.mode: not an integer in 0\.\.07777' "a file mode of $v"
done
edit size 'm["files"][0]["size"] = -1'
refused size 'files\[0\]\.size: not an integer' "a negative file size"
edit sha 'm["files"][0]["sha256"] = m["files"][0]["sha256"].upper()'
refused sha 'files\[0\]\.sha256: not a SHA-256' "an upper-case SHA-256"
edit extra 'm["files"][0]["owner"] = "root"'
refused extra 'files\[0\]\.owner: unknown key' "an unknown key in a file entry"
edit top 'm["comment"] = "hello"'
refused top 'comment: unknown key' "an unknown top-level key (same minor version)"
edit major 'm["format_version"] = "2.0"'
refused major 'format_version: manifest format version 2\.0 is not supported' "an unknown major version"
edit twice 'm["files"].append(dict(m["files"][0]))'
refused twice 'files\[[0-9]+\]\.name: .* is listed twice' "a file listed twice"
edit climb 'm["files"][0]["name"] = "db/../../etc/passwd"'
refused climb 'files\[0\]\.name: not a member name' "a name that climbs out"
edit abs 'm["files"][0]["name"] = "/etc/passwd"'
refused abs 'files\[0\]\.name: not a member name' "an absolute name"
edit parentdot 'm["parent"] = {"path": "../../etc", "archive_sha256": m["files"][0]["sha256"]}; m["chain_length"] = 2'
refused parentdot 'parent\.path: neither' "a parent that climbs two levels"

# A duplicate key: the JSON reader would keep one of the two, whichever it likes.
rm -rf "$T/dup"; cp -a "$T/good" "$T/dup"
sed -i '0,/^  "db_bytes": /s//  "db_bytes": 1,\n  "db_bytes": /' "$T/dup/MANIFEST.json"
refused dup 'duplicate object key near .*db_bytes' "a duplicate key"

# An incremental's parent that is not a backup, nothing taken from it, in both manifests
# and the archive rebuilt to match: refused, the parent's directory named.
rebuild parent 'm["parent"] = {"path": "/etc", "archive_sha256": m["files"][0]["sha256"]}; m["chain_length"] = 2'
refused parent 'parent\.path /etc: parent backup missing' "a parent path of /etc"
rebuild parent2 'm["parent"] = {"path": "../other", "archive_sha256": m["files"][0]["sha256"]}; m["chain_length"] = 2'
cp -a "$T/good" "$T/other"
refused parent2 'parent\.path \.\./other: .*not the one this backup was made from' "a parent that is another backup"
rebuild rebuilt 'm["tool_version"] = "9.9.9"'
run themis-restore --backup-directory "$T/rebuilt" --verify-only --quick
is "$rc" 0 "a rebuilt archive with both manifests changed alike still verifies (the helper is sound)${err:+: $err}"

# The clean backup is untouched by all this: it verifies and restores.
run themis-restore --backup-directory "$T/good" --verify-only --quick
is "$rc" 0 "the good backup verifies --quick${err:+: $err}"
run themis-restore --backup-directory "$T/good" --target "$T/restored"
is "$rc" 0 "the good backup restores${err:+: $err}"
is "$(themis-dbhash --database-path "$T/restored")" "$(manifest_field "$T/good/MANIFEST.json" content_hash_v2)" \
    "the restored database has the manifest's content hash"
done_testing
