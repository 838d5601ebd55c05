/* test_config: ThemisDB's YAML config: dotted keys and the files it names. */
#include "tap.h"
#include "config.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char dir[256], path[512], cert[512], outside[512], yaml[2048], cmd[1024];
    struct tb_config *c = NULL;
    char **files = NULL;
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s/test_config.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(outside, sizeof outside, "/etc/hostname");
    write_file(cert, "cert");
    snprintf(yaml, sizeof yaml,
             "server:\n  port: 8765\n  tls:\n    cert: %s\n    again: %s\n    other: %s\n"
             "storage:\n  rocksdb_path: /data/rocksdb\n  compression: [lz4, zstd]\n", cert, cert, outside);
    write_file(path, yaml);
    ok(tb_config_load(&c, path) == 0, "loads");
    is_str(c ? tb_config_get(c, "storage.rocksdb_path") : NULL, "/data/rocksdb", "storage.rocksdb_path");
    is_str(c ? tb_config_get(c, "server.port") : NULL, "8765", "a number as text");
    is_str(c ? tb_config_get(c, "server.tls.cert") : NULL, cert, "three levels deep");
    ok(c && tb_config_get(c, "storage.missing") == NULL, "a missing key is NULL");
    ok(c && tb_config_referenced_files(c, dir, &files) == 0, "referenced files");
    for (char **p = files; p && *p; p++)
        n++;
    ok(n == 1 && strcmp(files[0], cert) == 0, "the file under the config's directory, once; not the one outside");
    tb_config_free_list(files);
    tb_config_free(c);
    c = NULL;
    write_file(path, "storage:\n  rocksdb_path: [unclosed\n");
    ok(tb_config_load(&c, path) < 0 && strstr(tb_error_last(), "line"), "invalid YAML names the line: %s", tb_error_last());
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    ok(tb_config_load(&c, path) == TB_ENOENT, "a missing file is TB_ENOENT");
    tb_config_free(NULL);

    /* config.yaml absent: the older guides' themisdb.conf beside it, INI-style or YAML. */
    {
        char etc[512], yamlpath[600], conf[600], *found = NULL, *db = NULL;
        int mapped = -1;
        snprintf(etc, sizeof etc, "%s/etc", dir);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/data/rocksdb' '%s/plain/rocksdb' '%s/db'", dir, dir, dir);
        if (system(cmd) != 0 || mkdir(etc, 0755) < 0)
            diag("cannot make directories under %s", dir);
        snprintf(yamlpath, sizeof yamlpath, "%s/config.yaml", etc);
        snprintf(conf, sizeof conf, "%s/themisdb.conf", etc);
        ok(tb_config_locate(yamlpath, &found) == TB_ENOENT && strstr(tb_error_last(), "themisdb.conf"),
           "neither config.yaml nor themisdb.conf: TB_ENOENT naming both: %s", tb_error_last());
        snprintf(yaml, sizeof yaml, "# older guides\n[storage]\nrocksdb_path = \"/data/old\"  # quoted, commented\n"
                 "[server]\ntls-cert = %s\n; another comment\nport: 8529\n", cert);
        write_file(conf, yaml);
        ok(tb_config_locate(yamlpath, &found) == 0 && strcmp(found, conf) == 0, "config.yaml absent: themisdb.conf beside it");
        free(found);
        found = NULL;
        ok(tb_config_open(&c, yamlpath, 1) == 0, "and it loads (INI-style): %s", c ? "" : tb_error_last());
        is_str(c ? c->path : NULL, conf, "from themisdb.conf");
        is_str(c ? tb_config_db_path(c) : NULL, "/data/old", "[storage] rocksdb_path: quotes and comment dropped");
        is_str(c ? tb_config_get(c, "server.tls-cert") : NULL, cert, "section.key");
        is_str(c ? tb_config_get(c, "server.port") : NULL, "8529", "key: value lines too");
        tb_config_free(c);
        c = NULL;
        write_file(conf, "storage:\n  rocksdb_path: /data/yaml\n");
        ok(tb_config_open(&c, yamlpath, 1) == 0 && strcmp(tb_config_db_path(c), "/data/yaml") == 0,
           "a themisdb.conf in YAML is read as YAML");
        tb_config_free(c);
        c = NULL;
        write_file(yamlpath, "storage:\n  rocksdb_path: /data/new\n");
        ok(tb_config_locate(yamlpath, &found) == 0 && strcmp(found, yamlpath) == 0, "config.yaml wins when it exists");
        free(found);
        found = NULL;
        write_file(conf, "[storage\n");
        ok(tb_config_load(&c, conf) < 0 && strstr(tb_error_last(), "line 1"), "a broken INI line is named: %s", tb_error_last());
        ok(tb_config_db_path(NULL) && strcmp(tb_config_db_path(NULL), TB_THEMIS_DB_PATH) == 0, "no config: the default DB path");

        /* Where the RocksDB of a --target / --database-path is. */
        snprintf(path, sizeof path, "%s/data/rocksdb", dir);
        snprintf(yaml, sizeof yaml, "%s/data/", dir);
        ok(tb_config_db_dir(yaml, path, &db, &mapped) == 0 && mapped == 1 && strcmp(db, path) == 0,
           "the directory holding storage.rocksdb_path maps to it: %s", db);
        free(db);
        snprintf(yaml, sizeof yaml, "%s/plain", dir);
        snprintf(path, sizeof path, "%s/plain/rocksdb", dir);
        ok(tb_config_db_dir(yaml, "/nowhere/rocksdb", &db, &mapped) == 0 && mapped == 1 && strcmp(db, path) == 0,
           "a directory with a rocksdb/ subdirectory maps to it: %s", db);
        free(db);
        snprintf(path, sizeof path, "%s/plain/CURRENT", dir);
        write_file(path, "MANIFEST-000001\n");
        ok(tb_config_db_dir(yaml, "/nowhere/rocksdb", &db, &mapped) == 0 && mapped == 0 && strcmp(db, yaml) == 0,
           "a directory that holds a database (CURRENT) is itself");
        free(db);
        snprintf(yaml, sizeof yaml, "%s/db", dir);
        ok(tb_config_db_dir(yaml, "/nowhere/rocksdb", &db, &mapped) == 0 && mapped == 0 && strcmp(db, yaml) == 0,
           "any other directory is itself");
        free(db);
        snprintf(yaml, sizeof yaml, "%s/missing", dir);
        snprintf(path, sizeof path, "%s/missing/rocksdb", dir);
        ok(tb_config_db_dir(yaml, path, &db, &mapped) == 0 && mapped == 1 && strcmp(db, path) == 0,
           "a missing data directory named by the config maps too (by name)");
        free(db);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
