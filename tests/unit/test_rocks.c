/* test_rocks: opening (read-only, secondary beside a live primary), content hash, checkpoint. */
#include "tap.h"
#include "dbfix.h"
#include "error.h"
#include "fs.h"
#include "rocks.h"
#include "stream.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

static char root[256];

static char *path_of(const char *name)
{
    return tb_fs_join(root, name);
}

/* A primary with the given CFs and key/values ("cf:key=value" entries), left open. */
static rocksdb_t *create_db(const char *dir, const char **cfs, int ncf, const char **kvs, int nkv,
                            rocksdb_column_family_handle_t **h)
{
    char *err = NULL;
    rocksdb_options_t *b = rocksdb_options_create(), *o = rocksdb_options_create();
    const rocksdb_options_t *co[8];
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_t *db;
    rocksdb_get_options_from_string(b, "allow_2pc=true;create_if_missing=true;create_missing_column_families=true", o, &err);
    for (int i = 0; i < ncf; i++)
        co[i] = o;
    db = rocksdb_open_column_families(o, dir, ncf, cfs, co, h, &err);
    if (err) {
        diag("open %s: %s", dir, err);
        return NULL;
    }
    for (int i = 0; i < nkv; i++) {
        const char *colon = strchr(kvs[i], ':'), *eq = strchr(kvs[i], '=');
        int cf = atoi(kvs[i]);
        rocksdb_put_cf(db, wo, h[cf], colon + 1, (size_t)(eq - colon - 1), eq + 1, strlen(eq + 1), &err);
    }
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(b);
    rocksdb_options_destroy(o);
    return db;
}

static void close_db(rocksdb_t *db, rocksdb_column_family_handle_t **h, int ncf)
{
    for (int i = 0; i < ncf; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
}

static int hash_of(const char *dir, enum tb_rocks_mode mode, char hex[65])
{
    tb_rocks *r = NULL;
    struct tb_rocks_hash h;
    char *scratch = path_of("scratch");
    int rc = tb_rocks_open(&r, dir, mode, scratch);
    if (rc == 0 && (rc = tb_rocks_hash(r, &h, NULL)) == 0) {
        tb_hex(h.digest, 32, hex);
        tb_rocks_hash_clear(&h);
    }
    tb_rocks_free(r);
    tb_fs_rm_rf(scratch);
    free(scratch);
    return rc;
}

/* "name size mtime" of every file, to prove a directory was not touched. */
static void listing(const char *dir, char *out, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    out[0] = '\0';
    while (d && (e = readdir(d))) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(p, &st) < 0)
            continue;
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s:%lld:%lld ", e->d_name, (long long)st.st_size, (long long)st.st_mtime);
    }
    if (d)
        closedir(d);
}


int main(void)
{
    const char *cfs2[] = { "default", "pii_mappings" }, *cfs3[] = { "default", "pii_mappings", "empty_cf" };
    const char *kv1[] = { "0:a=1", "1:k=v", "0:b=2" }, *kv1r[] = { "0:b=2", "1:k=v", "0:a=1" };
    const char *kvx[] = { "0:ab=c" }, *kvy[] = { "0:a=bc" };
    rocksdb_column_family_handle_t *h[8];
    char ha[65], hb[65], hc[65], before[8192], after[8192];
    char *a, *b, *c, *x, *y, *ck, *scratch;
    rocksdb_t *db;
    tb_rocks *r = NULL;

    snprintf(root, sizeof root, "%s/test_rocks.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    a = path_of("a"), b = path_of("b"), c = path_of("c"), x = path_of("x"), y = path_of("y");
    ck = path_of("ck"), scratch = path_of("sec");

    db = create_db(a, cfs2, 2, kv1, 3, h);
    close_db(db, h, 2);
    db = create_db(b, cfs2, 2, kv1r, 3, h);
    close_db(db, h, 2);
    listing(a, before, sizeof before);
    ok(hash_of(a, TB_ROCKS_READONLY, ha) == 0, "hash read-only");
    ok(hash_of(a, TB_ROCKS_SECONDARY, hc) == 0 && strcmp(ha, hc) == 0, "secondary gives the same hash");
    listing(a, after, sizeof after);
    is_str(after, before, "hashing changed nothing in the database directory");
    ok(hash_of(b, TB_ROCKS_READONLY, hb) == 0 && strcmp(ha, hb) == 0, "the same content written in another order hashes alike");
    db = create_db(c, cfs3, 3, kv1, 3, h);
    close_db(db, h, 3);
    ok(hash_of(c, TB_ROCKS_READONLY, hc) == 0 && strcmp(ha, hc) != 0, "an extra empty column family changes the hash");
    db = create_db(x, cfs2, 2, kvx, 1, h);
    close_db(db, h, 2);
    db = create_db(y, cfs2, 2, kvy, 1, h);
    close_db(db, h, 2);
    ok(hash_of(x, TB_ROCKS_READONLY, ha) == 0 && hash_of(y, TB_ROCKS_READONLY, hb) == 0 && strcmp(ha, hb) != 0,
       "moving a byte between key and value changes the hash (length prefixes)");

    /* A live primary: the secondary follows it, and its checkpoint is complete. */
    db = create_db(a, cfs2, 2, kvx, 1, h);
    ok(db != NULL, "primary open again and written to");
    ok(tb_rocks_open(&r, a, TB_ROCKS_SECONDARY, scratch) == 0, "secondary opens beside the live primary");
    uint64_t s1 = r ? tb_rocks_last_seq(r) : 0;
    {
        char *err = NULL;
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        rocksdb_put_cf(db, wo, h[1], "new", 3, "value", 5, &err);
        rocksdb_writeoptions_destroy(wo);
    }
    ok(r && tb_rocks_catch_up(r) == 0 && tb_rocks_last_seq(r) == s1 + 1, "catch-up sees the primary's new write (%llu -> %llu)",
       (unsigned long long)s1, (unsigned long long)(r ? tb_rocks_last_seq(r) : 0));
    ok(r && tb_rocks_checkpoint(r, ck, NULL) == 0, "checkpoint from the secondary");
    tb_rocks_free(r);
    r = NULL;
    {
        DIR *d = opendir(ck);
        struct dirent *e;
        int options = 0;
        while (d && (e = readdir(d)))
            options |= strncmp(e->d_name, "OPTIONS-", 8) == 0;
        if (d)
            closedir(d);
        ok(options, "the checkpoint has an OPTIONS file");
    }
    ok(hash_of(ck, TB_ROCKS_READONLY, hb) == 0 && hash_of(a, TB_ROCKS_SECONDARY, ha) == 0 && strcmp(ha, hb) == 0,
       "the checkpoint hashes like the live database");
    ok(tb_rocks_open(&r, a, TB_ROCKS_SECONDARY, scratch) == 0 && tb_rocks_checkpoint(r, ck, NULL) < 0,
       "a checkpoint into an existing directory fails");
    tb_rocks_free(r);
    close_db(db, h, 2);

    ok(tb_rocks_open(&r, root, TB_ROCKS_READONLY, scratch) < 0 && strstr(tb_error_last(), "not a RocksDB"),
       "a directory that is no database: %s", tb_error_last());
    ok(tb_rocks_open(&r, "/nonexistent/db", TB_ROCKS_READONLY, scratch) == TB_ENOENT, "a missing database");
    {
        /* RocksDB aborts the process on a table whose path id names no directory. */
        char *copy = db_paths_copy(root);
        struct tb_rocks_hash h = { 0 };
        r = NULL;
        ok(copy && tb_rocks_open(&r, copy, TB_ROCKS_READONLY, scratch) == 0 && tb_rocks_hash(r, &h, NULL) == 0 &&
               h.ncf == 1 && h.keys[0] == 1800,
           "a copy of a db_paths database (tables of path ids 0 and 1 in one directory) opens and hashes");
        tb_rocks_hash_clear(&h);
        tb_rocks_free(r);
        r = NULL;
        free(copy);
    }
    tb_rocks_free(NULL);
    tb_fs_rm_rf(root);
    free(a), free(b), free(c), free(x), free(y), free(ck), free(scratch);
    return done_testing();
}
