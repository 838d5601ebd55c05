/* dbfix: databases the C unit tests build and share. Included by a test after tap.h. */
#ifndef TB_DBFIX_H
#define TB_DBFIX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "fs.h"

/* A comparator only the test's writer knows (no tool has it): reverse byte order, named
 * themis.test.Reverse. rocksdb_comparator_create(NULL, dbfix_nop, dbfix_rev_compare,
 * dbfix_rev_name). */
static inline int dbfix_rev_compare(void *s, const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    (void)s;
    if (c == 0)
        c = al < bl ? -1 : al > bl;
    return -c;
}
static inline const char *dbfix_rev_name(void *s)
{
    (void)s;
    return "themis.test.Reverse";
}
static inline void dbfix_nop(void *s)
{
    (void)s;
}

/* A database of 3 x 200 writes ("kR-III" = "value"), each 200 flushed into a table but the
 * last with last_in_wal (then left in the WAL); its last sequence is 600. reverse: ordered
 * by the comparator only the test knows. 0 or -1. */
static inline int dbfix_make_db_wal(const char *dir, int reverse, int last_in_wal)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_comparator_t *cmp = reverse ? rocksdb_comparator_create(NULL, dbfix_nop, dbfix_rev_compare, dbfix_rev_name) : NULL;
    char *err = NULL, k[32];
    rocksdb_t *db;
    rocksdb_options_set_create_if_missing(o, 1);
    if (cmp)
        rocksdb_options_set_comparator(o, cmp);
    db = rocksdb_open(o, dir, &err);
    for (int r = 0; db && !err && r < 3; r++) {
        for (int i = 0; i < 200 && !err; i++) {
            snprintf(k, sizeof k, "k%d-%03d", r, i);
            rocksdb_put(db, wo, k, strlen(k), "value", 5, &err);
        }
        if (!err && !(last_in_wal && r == 2))
            rocksdb_flush(db, fo, &err);
    }
    if (db)
        rocksdb_close(db);
    if (err)
        diag("dbfix_make_db: %s", err);
    free(err);
    rocksdb_options_destroy(o);
    if (cmp)
        rocksdb_comparator_destroy(cmp);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_flushoptions_destroy(fo);
    return err ? -1 : 0;
}

/* A database of three tables (dbfix_make_db_wal, every write flushed). */
static inline int dbfix_make_db(const char *dir, int reverse)
{
    return dbfix_make_db_wal(dir, reverse, 0);
}

/* A db_paths database (tables in two directories besides its own), the last writes left
 * in its WAL, then every file hard-linked into one directory: the copy a backup holds.
 * Returns that directory (under root); NULL on failure. */
static inline char *db_paths_copy(const char *root)
{
    char *dir = tb_fs_join(root, "dp"), *p1 = tb_fs_join(root, "dp1"), *p2 = tb_fs_join(root, "dp2"), *copy = tb_fs_join(root, "dpcopy"), *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    const rocksdb_dbpath_t *paths[2] = { rocksdb_dbpath_create(p1, 1), rocksdb_dbpath_create(p2, 1ull << 40) };
    char cmd[1024], k[32], v[2000];
    rocksdb_t *db;
    memset(v, 'v', sizeof v);
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_db_paths(o, paths, 2);
    db = rocksdb_open(o, dir, &err);
    for (int r = 0; db && !err && r < 6; r++) {
        for (int i = 0; i < 300 && !err; i++) {
            snprintf(k, sizeof k, "k%d-%03d", r, i);
            rocksdb_put(db, wo, k, strlen(k), v, sizeof v, &err);
        }
        if (r < 5 && !err)
            rocksdb_flush(db, fo, &err);
        if (r == 4) /* RocksDB spreads tables over both paths */
            rocksdb_compact_range(db, NULL, 0, NULL, 0);
    }
    if (db)
        rocksdb_close(db);
    snprintf(cmd, sizeof cmd, "mkdir %s && ln %s/* %s/* %s/* %s/", copy, dir, p1, p2, copy);
    if (err || system(cmd) != 0) {
        diag("db_paths database: %s", err ? err : "cannot link");
        free(copy);
        copy = NULL;
    }
    for (int i = 0; i < 2; i++)
        rocksdb_dbpath_destroy((rocksdb_dbpath_t *)paths[i]);
    rocksdb_options_destroy(o);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_flushoptions_destroy(fo);
    free(err), free(dir), free(p1), free(p2);
    return copy;
}

#endif
