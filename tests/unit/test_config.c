/* test_config: ThemisDB's YAML config: dotted keys and the files it names. */
#include "tap.h"
#include "config.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char dir[256], path[512], cert[512], outside[512], yaml[2048], cmd[600];
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
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
