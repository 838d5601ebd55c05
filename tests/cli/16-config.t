#!/usr/bin/env bash
# --include-config carries ThemisDB's config and the files it names under its directory; the
# config names the DB; the tool config file (--conf) sets options the command line overrides.
. "$(dirname "$0")/lib.sh"

make_db "$T/db"; ok $? "load generator wrote a database"
mkdir -p "$T/etc/themisdb/tls" "$T/elsewhere"
echo "cert" > "$T/etc/themisdb/tls/server.pem"
echo "outside" > "$T/elsewhere/key.pem"
cat > "$T/etc/themisdb/config.yaml" <<YAML
server:
  port: 8765
  tls_cert: $T/etc/themisdb/tls/server.pem
  tls_key: $T/elsewhere/key.pem
storage:
  rocksdb_path: $T/db
  compression: [lz4, zstd]
YAML

run themis-backup --config-file "$T/etc/themisdb/config.yaml" --include-config --backup-directory "$T/bk" --compress
is "$rc" 0 "backup with --include-config and the DB path taken from the config"
members=$(zstd -q -dc "$T/bk/backup.tar.zst" | tar -t)
like "$members" "config/config.yaml" "the config is in the archive"
like "$members" "config/tls/server.pem" "a file the config names under its directory is in the archive"
ok "$(printf '%s' "$members" | grep -q key.pem; [ $? -ne 0 ]; echo $?)" "a file outside the config's directory is not"
like "$(cat "$T/bk/MANIFEST.json")" "\"source\".*|\"path\": \"$T/db\"" "manifest records the DB path from the config"
run themis-restore --backup-directory "$T/bk" --target "$T/restored" --config-target "$T/etc-restored"
is "$rc" 0 "restore with --config-target"
cmp -s "$T/etc/themisdb/config.yaml" "$T/etc-restored/config.yaml"; ok $? "config restored byte for byte"
cmp -s "$T/etc/themisdb/tls/server.pem" "$T/etc-restored/tls/server.pem"; ok $? "named file restored byte for byte"

run themis-backup --config-file "$T/etc/themisdb/missing.yaml" --include-config --backup-directory "$T/bk2"
is "$rc" 1 "a missing config with --include-config exits 1"
like "$err" "missing.yaml" "and names it"

# Older installations (and the upgrade guides that copy it) keep /etc/themisdb/themisdb.conf,
# INI-style, where config.yaml is absent: --include-config finds and carries it, and it names
# the DB. (--config-file stands in for /etc/themisdb/config.yaml: the same lookup.)
mkdir -p "$T/etc2/themisdb/tls"
echo "cert2" > "$T/etc2/themisdb/tls/server.pem"
cat > "$T/etc2/themisdb/themisdb.conf" <<CONF
# ThemisDB 1.x
[storage]
rocksdb_path = $T/db
[server]
tls-cert = $T/etc2/themisdb/tls/server.pem
[rocksdb]
block-cache-size = 8GB  # reduced
CONF
run themis-backup --config-file "$T/etc2/themisdb/config.yaml" --include-config --backup-directory "$T/bk5" --compress
is "$rc" 0 "config.yaml absent: --include-config takes themisdb.conf beside it${err:+ ($err)}"
members=$(zstd -q -dc "$T/bk5/backup.tar.zst" | tar -t)
like "$members" "config/themisdb.conf" "themisdb.conf is in the archive"
like "$members" "config/tls/server.pem" "with the file it names under its directory"
like "$(cat "$T/bk5/MANIFEST.json")" "\"config_file\": \"$T/etc2/themisdb/themisdb.conf\"" "the manifest names it"
like "$(cat "$T/bk5/MANIFEST.json")" "\"path\": \"$T/db\"" "its storage.rocksdb_path named the DB"
run themis-restore --backup-directory "$T/bk5" --target "$T/restored5" --config-target "$T/etc-restored5"
is "$rc" 0 "and restores"
cmp -s "$T/etc2/themisdb/themisdb.conf" "$T/etc-restored5/themisdb.conf"; ok $? "themisdb.conf restored byte for byte"
rm "$T/etc2/themisdb/themisdb.conf"
run themis-backup --config-file "$T/etc2/themisdb/config.yaml" --include-config --backup-directory "$T/bk6"
is "$rc" 1 "neither config.yaml nor themisdb.conf with --include-config exits 1"
like "$err" "config.yaml \(nor .*themisdb.conf\)" "naming both"

cat > "$T/tb.conf" <<CONF
# shared by all tools
database-path = $T/db
verify-only = yes
[themis-backup]
compress = yes
compress-level = 5
[themis-restore]
quick = yes
CONF
run themis-backup --conf "$T/tb.conf" --backup-directory "$T/bk3"
is "$rc" 0 "backup with options from --conf"
like "$(tr -d ' \n' < "$T/bk3/MANIFEST.json")" '"algorithm":"zstd","level":5' "the conf's compress and compress-level apply"
run themis-backup --conf "$T/tb.conf" --backup-directory "$T/bk4" --compress-level 2
like "$(tr -d ' \n' < "$T/bk4/MANIFEST.json")" '"level":2' "the command line wins over the conf"
run themis-restore --conf "$T/tb.conf" --backup-directory "$T/bk3" -v
is "$rc" 0 "restore takes verify-only and quick from the conf"
like "$err" "checksums verified" "and did a quick verification"
done_testing
