/* test_dbhash: the content hash, themis-dbhash-v2 over key ranges on threads equal to the
 * sequential one, v2 sensitive to values and column families, v1 as before. */
#include "tap.h"
#include "dbfix.h"
#include "error.h"
#include "fs.h"
#include "rocks.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

static char root[256];

/* themis-dbhash-v1 of dbfix_make_db(dir, 0), computed by the tools before v2 existed (commit
 * 462df9e, and the same by those of 3958224): v1 must never change. */
#define V1_DBFIX "dad8310624bc517e309f9c50f7ad8186eeebbb64fee1d853ec2ed751d2a9f316"

enum variant { PLAIN, CHANGED, MOVED };

/* Write i of table t: its key and value; the byte count of both. Keys are unique (the table
 * in their suffix), so nothing is overwritten. */
static uint64_t entry(int ntables, int t, int i, char k[32], char v[64])
{
    int n = t % 2 ? i * (ntables + 1) + t : t * 1000 + i;
    return (uint64_t)snprintf(k, 32, "k%07d.%02d", n, t) + (uint64_t)snprintf(v, 64, "value of %d in table %d", n, t);
}

/* ntables flushes of nkeys writes each into "default" and "a", then nkeys more left in the
 * WAL; "empty" stays empty. Even tables hold runs of keys, odd ones keys spread over the
 * whole space, so tables overlap as L0 files do. CHANGED: one value differs;
 * MOVED: one entry is in "a" instead of "default". */
static int make_db(const char *dir, int ntables, int nkeys, enum variant variant)
{
    const char *names[] = { "default", "a", "empty" };
    rocksdb_options_t *o = rocksdb_options_create();
    const rocksdb_options_t *co[3] = { o, o, o };
    rocksdb_column_family_handle_t *h[3] = { NULL };
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *err = NULL;
    rocksdb_t *db;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_disable_auto_compactions(o, 1);
    db = rocksdb_open_column_families(o, dir, 3, names, co, h, &err);
    for (int t = 0; db && !err && t <= ntables; t++) {
        for (int i = 0; i < nkeys && !err; i++) {
            int cf = i % 2;
            char k[32], v[64];
            entry(ntables, t, i, k, v);
            if (variant == CHANGED && t == ntables / 2 && i == nkeys / 2)
                v[0] = 'V';
            if (variant == MOVED && t == ntables / 2 && i == 2)
                cf = 1;
            rocksdb_put_cf(db, wo, h[cf], k, strlen(k), v, strlen(v), &err);
        }
        for (int cf = 0; cf < 2 && !err && t < ntables; cf++)
            rocksdb_flush_cf(db, fo, h[cf], &err);
    }
    for (int i = 0; i < 3; i++)
        if (h[i])
            rocksdb_column_family_handle_destroy(h[i]);
    if (db)
        rocksdb_close(db);
    if (err)
        diag("make_db %s: %s", dir, err);
    free(err);
    rocksdb_options_destroy(o);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_flushoptions_destroy(fo);
    return err ? -1 : 0;
}

static uint64_t progress_seen;

static void progress(void *arg, uint64_t bytes)
{
    (void)arg;
    progress_seen = bytes;
}

/* The hash of dir as o says, in hex ("" on failure); *ranges the ranges it hashed. */
static int hash_of(const char *dir, const struct tb_rocks_hash_opts *o, char hex[65], size_t *ranges)
{
    struct tb_rocks_hash h = { 0 };
    tb_rocks *r = NULL;
    char *scratch = tb_fs_join(root, "scratch");
    int rc = tb_rocks_open(&r, dir, TB_ROCKS_READONLY, scratch);
    hex[0] = '\0';
    if (rc == 0 && (rc = tb_rocks_hash(r, &h, o)) == 0)
        tb_hex(h.digest, 32, hex);
    if (ranges)
        *ranges = h.ranges;
    tb_rocks_hash_clear(&h);
    tb_rocks_free(r);
    tb_fs_rm_rf(scratch);
    free(scratch);
    return rc;
}

/* v2 on 1, 2 and 4 threads, with ranges as small as the tables allow and as the default
 * makes them, equals v2 on the calling thread alone; the progress ends at every byte. */
static void parallel_equals_sequential(const char *dir, const char *what, uint64_t bytes)
{
    char want[65], got[65];
    size_t ranges = 0;
    struct tb_rocks_hash_opts o = { .version = 2, .threads = 1, .progress = progress };
    progress_seen = 0;
    ok(hash_of(dir, &o, want, &ranges) == 0 && strlen(want) == 64 && ranges == 3, "%s: sequential, a range per CF",
       what);
    is_int((long long)progress_seen, (long long)bytes, "%s: progress told every byte of keys and values", what);
    for (int threads = 1; threads <= 4; threads *= 2)
        for (uint64_t range_bytes = 0; range_bytes <= 1; range_bytes++) {
            o.threads = threads;
            o.range_bytes = range_bytes;
            progress_seen = 0;
            ok(hash_of(dir, &o, got, &ranges) == 0 && strcmp(got, want) == 0 && progress_seen == bytes,
               "%s: %d thread%s, %s: %zu ranges, the same hash and bytes", what, threads, threads > 1 ? "s" : "",
               range_bytes ? "a range per table" : "default ranges", ranges);
        }
    ok(hash_of(dir, NULL, got, NULL) == 0 && strcmp(got, want) == 0, "%s: the defaults (v2, a thread per CPU) too",
       what);
}

/* Bytes of keys and values make_db writes into dir (PLAIN). */
static uint64_t db_bytes(int ntables, int nkeys)
{
    uint64_t n = 0;
    for (int t = 0; t <= ntables; t++)
        for (int i = 0; i < nkeys; i++) {
            char k[32], v[64];
            n += entry(ntables, t, i, k, v);
        }
    return n;
}

int main(void)
{
    char *many, *one, *changed, *moved, *fix;
    char a[65], b[65];
    size_t ranges = 0;
    struct tb_rocks_hash_opts v1 = { .version = 1 }, v2 = { .version = 2, .threads = 4, .range_bytes = 1 };

    snprintf(root, sizeof root, "%s/test_dbhash.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    many = tb_fs_join(root, "many"), one = tb_fs_join(root, "one"), changed = tb_fs_join(root, "changed");
    moved = tb_fs_join(root, "moved"), fix = tb_fs_join(root, "fix");

    ok(make_db(many, 40, 100, PLAIN) == 0, "a database of 80 small tables, overlapping, and writes left in the WAL");
    parallel_equals_sequential(many, "many tables", db_bytes(40, 100));
    ok(hash_of(many, &v2, a, &ranges) == 0 && ranges > 20, "many tables: cut into %zu ranges at the tables' keys",
       ranges);
    ok(make_db(one, 1, 300, PLAIN) == 0, "a database of a table per CF and an empty CF");
    parallel_equals_sequential(one, "one table", db_bytes(1, 300));

    ok(make_db(changed, 40, 100, CHANGED) == 0 && make_db(moved, 40, 100, MOVED) == 0, "the same but for one entry");
    ok(hash_of(many, &v2, a, NULL) == 0 && hash_of(changed, &v2, b, NULL) == 0 && strcmp(a, b) != 0,
       "v2 changes when one value changes");
    ok(hash_of(moved, &v2, b, NULL) == 0 && strcmp(a, b) != 0, "v2 changes when an entry moves to another CF");
    ok(hash_of(moved, &v1, b, NULL) == 0 && hash_of(many, &v1, a, NULL) == 0 && strcmp(a, b) != 0, "and so does v1");

    ok(dbfix_make_db(fix, 0) == 0, "dbfix's database");
    ok(hash_of(fix, &v1, a, NULL) == 0, "v1 hashes it");
    is_str(a, V1_DBFIX, "v1 is what the tools before v2 computed");
    v1.threads = 4;
    ok(hash_of(fix, &v1, b, NULL) == 0 && strcmp(a, b) == 0, "v1 ignores threads");
    ok(hash_of(fix, &v2, b, NULL) == 0 && strlen(b) == 64 && strcmp(a, b) != 0, "v2 is another hash");

    v1.version = 3;
    ok(hash_of(fix, &v1, a, NULL) == TB_EUSAGE && strstr(tb_error_last(), "version 3"), "no version 3: %s",
       tb_error_last());
    tb_interrupted = 1;
    ok(hash_of(many, &v2, a, NULL) < 0 && strstr(tb_error_last(), "interrupt") && !a[0],
       "an interrupt stops the threads: %s", tb_error_last());
    tb_interrupted = 0;

    tb_fs_rm_rf(root);
    free(many), free(one), free(changed), free(moved), free(fix);
    return done_testing();
}
