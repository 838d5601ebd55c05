/* test_rdbmanifest: our MANIFEST reader against what RocksDB 7.8 itself reports (live files,
 * column families, blob files, db_paths), and against damaged or hand-made MANIFESTs. */
#include "tap.h"
#include "crc32c.h"
#include "error.h"
#include "fs.h"
#include "rdbmanifest.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256];

static char *manifest_of(const char *dir)
{
    char *name = NULL, *path = NULL;
    if (tb_rmf_current(dir, &name) == 0)
        path = tb_fs_join(dir, name);
    free(name);
    return path;
}

static void put(rocksdb_t *db, rocksdb_column_family_handle_t *cf, int i, size_t vlen)
{
    char k[32], *v = malloc(vlen + 1);
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    snprintf(k, sizeof k, "key%08d", i);
    for (size_t j = 0; j < vlen; j++)
        v[j] = (char)('a' + (i + j) % 26);
    rocksdb_put_cf(db, wo, cf, k, strlen(k), v, vlen, &err);
    if (err)
        diag("put: %s", err);
    free(err);
    free(v);
    rocksdb_writeoptions_destroy(wo);
}

static void flush(rocksdb_t *db, rocksdb_column_family_handle_t *cf)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *err = NULL;
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush_cf(db, fo, cf, &err);
    if (err)
        diag("flush: %s", err);
    free(err);
    rocksdb_flushoptions_destroy(fo);
}

/* Every live SST of RocksDB's own list is ours, at the same level and size, in the same CF;
 * and we list no other. */
static void compare_live(rocksdb_t *db, const struct tb_rmf_version *v, const char *what)
{
    const rocksdb_livefiles_t *lf = rocksdb_livefiles(db);
    int n = rocksdb_livefiles_count(lf), bad = 0;
    size_t ours = 0;
    for (size_t c = 0; c < v->ncf; c++)
        ours += v->cfs[c].nfiles;
    for (int i = 0; i < n; i++) {
        uint64_t num = strtoull(rocksdb_livefiles_name(lf, i) + 1, NULL, 10);
        const char *cfname = rocksdb_livefiles_column_family_name(lf, i);
        int found = 0;
        for (size_t c = 0; c < v->ncf; c++)
            for (size_t j = 0; j < v->cfs[c].nfiles; j++) {
                const struct tb_rmf_file *f = &v->cfs[c].files[j];
                if (f->number != num)
                    continue;
                found = 1;
                if (strcmp(v->cfs[c].name, cfname) || f->level != rocksdb_livefiles_level(lf, i) ||
                    f->size != rocksdb_livefiles_size(lf, i)) {
                    diag("%s: file %" PRIu64 ": ours cf %s level %d size %" PRIu64 ", RocksDB cf %s level %d size %zu",
                         what, num, v->cfs[c].name, f->level, f->size, cfname, rocksdb_livefiles_level(lf, i),
                         rocksdb_livefiles_size(lf, i));
                    bad++;
                }
            }
        if (!found) {
            diag("%s: RocksDB's live file %" PRIu64 " is not in ours", what, num);
            bad++;
        }
    }
    ok(n > 0 && (size_t)n == ours && bad == 0, "%s: live SSTs equal RocksDB's (%d of ours %zu)", what, n, ours);
    rocksdb_livefiles_destroy(lf);
}

/* Column families: names and ids as RocksDB lists them (list_column_families reads the same
 * MANIFEST, so it is the reference for names; ids come from the handles). */
static void compare_cfs(const char *dir, const struct tb_rmf_version *v, const char **names,
                        rocksdb_column_family_handle_t **h, int n, const char *what)
{
    rocksdb_options_t *o = rocksdb_options_create();
    char *err = NULL, **listed;
    size_t nl = 0;
    int bad = 0;
    listed = rocksdb_list_column_families(o, dir, &nl, &err);
    if (err)
        diag("list: %s", err);
    free(err);
    for (size_t i = 0; i < nl; i++) {
        int found = 0;
        for (size_t j = 0; j < v->ncf; j++)
            found |= strcmp(listed[i], v->cfs[j].name) == 0;
        if (!found) {
            diag("%s: RocksDB lists %s, we do not", what, listed[i]);
            bad++;
        }
    }
    for (int i = 0; i < n; i++) {
        const struct tb_rmf_cf *c = tb_rmf_find_cf(v, rocksdb_column_family_handle_get_id(h[i]));
        if (!c || strcmp(c->name, names[i])) {
            diag("%s: cf %s (id %u) %s", what, names[i], rocksdb_column_family_handle_get_id(h[i]),
                 c ? c->name : "missing");
            bad++;
        }
    }
    ok(nl == v->ncf && (size_t)n == v->ncf && bad == 0, "%s: column families equal RocksDB's (%zu listed, %zu ours)",
       what, nl, v->ncf);
    if (listed)
        rocksdb_list_column_families_destroy(listed, nl);
    rocksdb_options_destroy(o);
}

static rocksdb_t *open_db(rocksdb_options_t *o, const char *dir, const char **names, int n,
                          rocksdb_column_family_handle_t **h)
{
    const rocksdb_options_t *co[16];
    char *err = NULL;
    rocksdb_t *db;
    for (int i = 0; i < n; i++)
        co[i] = o;
    db = rocksdb_open_column_families(o, dir, n, names, co, h, &err);
    if (err) {
        diag("open %s: %s", dir, err);
        free(err);
        return NULL;
    }
    return db;
}

/* Several CFs, one dropped, flushes, compactions; compared live and after reopening. */
static void test_cfs_and_compaction(void)
{
    char *dir = tb_fs_join(root, "db1"), *man;
    const char *names[] = { "default", "alpha", "beta", "gamma" };
    const char *live_names[] = { "default", "alpha", "gamma", "delta" };
    rocksdb_column_family_handle_t *h[4], *delta;
    rocksdb_options_t *o = rocksdb_options_create();
    struct tb_rmf_version *v = NULL;
    char *err = NULL;
    rocksdb_t *db;

    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_write_buffer_size(o, 64 << 10);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 2);
    rocksdb_options_set_target_file_size_base(o, 64 << 10);
    rocksdb_options_set_max_bytes_for_level_base(o, 256 << 10);
    db = open_db(o, dir, names, 4, h);
    ok(db != NULL, "RocksDB created a database with four column families");
    if (!db)
        return;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 800; i++)
            put(db, h[i % 4], round * 1000 + i, 200);
        for (int c = 0; c < 4; c++)
            flush(db, h[c]);
    }
    rocksdb_drop_column_family(db, h[2], &err);
    ok(err == NULL, "dropped column family beta");
    free(err);
    err = NULL;
    delta = rocksdb_create_column_family(db, o, "delta", &err);
    free(err);
    err = NULL;
    for (int i = 0; i < 500; i++)
        put(db, delta, i, 100);
    flush(db, delta);
    rocksdb_compact_range_cf(db, h[1], NULL, 0, NULL, 0);
    for (int i = 0; i < 300; i++)
        put(db, h[0], 50000 + i, 100); /* left in the WAL */
    man = manifest_of(dir);
    ok(man && tb_rmf_load(man, &v) == 0, "our reader reads the live database's MANIFEST%s%s", v ? "" : ": ",
       v ? "" : tb_error_last());
    if (v) {
        rocksdb_column_family_handle_t *hl[4] = { h[0], h[1], h[3], delta };
        int l1 = 0;
        compare_live(db, v, "live, after flushes, a drop and compactions");
        compare_cfs(dir, v, live_names, hl, 4, "live");
        ok(tb_rmf_find_cf(v, rocksdb_column_family_handle_get_id(h[2])) == NULL, "the dropped column family is gone");
        for (size_t c = 0; c < v->ncf; c++)
            for (size_t j = 0; j < v->cfs[c].nfiles; j++)
                l1 |= v->cfs[c].files[j].level > 0;
        ok(l1, "compaction moved files below level 0");
        is_str(v->cfs[0].comparator, "leveldb.BytewiseComparator", "default column family's comparator");
        ok(v->next_file_number > 0 && v->max_column_family == rocksdb_column_family_handle_get_id(delta),
           "next file number %" PRIu64 ", max column family %u", v->next_file_number, v->max_column_family);
        {
            /* Flushed CFs name the current WAL as their log number; the default CF has unflushed
             * writes in it, so min_log_needed is at most that WAL. */
            DIR *d = opendir(dir);
            struct dirent *e;
            uint64_t newest = 0;
            while (d && (e = readdir(d)))
                if (strstr(e->d_name, ".log") && strtoull(e->d_name, NULL, 10) > newest)
                    newest = strtoull(e->d_name, NULL, 10);
            if (d)
                closedir(d);
            ok(newest && v->min_log_needed <= newest && v->min_log_needed > 0,
               "oldest WAL needed (%" PRIu64 ") is at most the newest WAL (%" PRIu64 ")", v->min_log_needed, newest);
        }
        tb_rmf_version_free(v);
        v = NULL;
    }
    /* Last sequence: after flushing everything, the MANIFEST's equals RocksDB's. */
    for (int c = 0; c < 4; c++)
        if (c != 2)
            flush(db, h[c]);
    if (tb_rmf_load(man, &v) == 0) {
        is_int(v->last_sequence, rocksdb_get_latest_sequence_number(db), "last sequence after a flush equals RocksDB's");
        tb_rmf_version_free(v);
        v = NULL;
    }
    for (int c = 0; c < 4; c++)
        rocksdb_column_family_handle_destroy(h[c]);
    rocksdb_column_family_handle_destroy(delta);
    rocksdb_close(db);
    free(man);
    /* Reopened, RocksDB writes a new MANIFEST from its recovered state: ours must agree. */
    {
        rocksdb_column_family_handle_t *h2[4];
        db = open_db(o, dir, live_names, 4, h2);
        man = manifest_of(dir);
        if (db && man && tb_rmf_load(man, &v) == 0) {
            compare_live(db, v, "reopened (a new MANIFEST)");
            compare_cfs(dir, v, live_names, h2, 4, "reopened");
            tb_rmf_version_free(v);
        } else {
            ok(0, "reopened database's MANIFEST reads: %s", tb_error_last());
        }
        for (int c = 0; db && c < 4; c++)
            rocksdb_column_family_handle_destroy(h2[c]);
        if (db)
            rocksdb_close(db);
        free(man);
    }
    rocksdb_options_destroy(o);
    free(dir);
}

static int count_ext(const char *dir, const char *ext, uint64_t *out_numbers, int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > strlen(ext) && strcmp(e->d_name + l - strlen(ext), ext) == 0) {
            if (n < max && out_numbers)
                out_numbers[n] = strtoull(e->d_name, NULL, 10);
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static int has_number(const uint64_t *v, int n, uint64_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Integrated BlobDB with garbage collection: our live blob files are the ones RocksDB keeps. */
static void test_blobs(void)
{
    char *dir = tb_fs_join(root, "db2"), *man;
    const char *names[] = { "default", "blobs" };
    rocksdb_column_family_handle_t *h[2];
    rocksdb_options_t *o = rocksdb_options_create();
    struct tb_rmf_version *v = NULL;
    rocksdb_t *db;
    uint64_t ondisk[256];
    int n;

    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_write_buffer_size(o, 128 << 10);
    rocksdb_options_set_enable_blob_files(o, 1);
    rocksdb_options_set_min_blob_size(o, 100);
    rocksdb_options_set_blob_file_size(o, 64 << 10);
    rocksdb_options_set_enable_blob_gc(o, 1);
    rocksdb_options_set_blob_gc_age_cutoff(o, 0.5);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 2);
    db = open_db(o, dir, names, 2, h);
    if (!db) {
        ok(0, "blob database opens");
        return;
    }
    /* Overwrite the same keys several times so GC makes blob files obsolete. */
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 400; i++)
            put(db, h[i % 2], i, 300 + round);
        flush(db, h[0]);
        flush(db, h[1]);
    }
    rocksdb_compact_range_cf(db, h[1], NULL, 0, NULL, 0);
    rocksdb_compact_range_cf(db, h[0], NULL, 0, NULL, 0);
    for (int c = 0; c < 2; c++)
        rocksdb_column_family_handle_destroy(h[c]);
    rocksdb_close(db); /* obsolete blob files are deleted by now */
    n = count_ext(dir, ".blob", ondisk, 256);
    man = manifest_of(dir);
    ok(man && tb_rmf_load(man, &v) == 0, "MANIFEST of a blob database reads%s%s", v ? "" : ": ", v ? "" : tb_error_last());
    if (v) {
        int ours = 0, missing = 0, linked = 0;
        for (size_t c = 0; c < v->ncf; c++)
            for (size_t j = 0; j < v->cfs[c].nblobs; j++) {
                ours++;
                missing += !has_number(ondisk, n, v->cfs[c].blobs[j].number);
            }
        for (size_t c = 0; c < v->ncf; c++)
            for (size_t j = 0; j < v->cfs[c].nfiles; j++)
                linked += v->cfs[c].files[j].oldest_blob != 0;
        ok(n > 0 && ours == n && missing == 0, "live blob files equal the ones on disk (%d ours, %d on disk)", ours, n);
        ok(linked > 0, "table files refer to blob files (%d)", linked);
        tb_rmf_version_free(v);
    }
    /* RocksDB's own count of blob files, per CF, after reopening. */
    db = open_db(o, dir, names, 2, h);
    if (db && tb_rmf_load(man, &v) == 0) {
        int bad = 0;
        for (int c = 0; c < 2; c++) {
            char *p = rocksdb_property_value_cf(db, h[c], "rocksdb.num-blob-files");
            const struct tb_rmf_cf *cf = tb_rmf_find_cf(v, rocksdb_column_family_handle_get_id(h[c]));
            if (!p || !cf || strtoull(p, NULL, 10) != cf->nblobs) {
                diag("cf %s: RocksDB %s blob files, ours %zu", names[c], p ? p : "?", cf ? cf->nblobs : 0);
                bad++;
            }
            free(p);
        }
        ok(bad == 0, "blob files per column family equal rocksdb.num-blob-files");
        tb_rmf_version_free(v);
    }
    for (int c = 0; db && c < 2; c++)
        rocksdb_column_family_handle_destroy(h[c]);
    if (db)
        rocksdb_close(db);
    free(man);
    rocksdb_options_destroy(o);
    free(dir);
}

/* db_paths: SSTs spread over several directories; the path id says where each lies. */
static void test_db_paths(void)
{
    char *dir = tb_fs_join(root, "db3"), *p1 = tb_fs_join(root, "db3-p1"), *p2 = tb_fs_join(root, "db3-p2"), *man;
    const char *names[] = { "default" };
    const char *dirs[3] = { p1, p2, NULL };
    rocksdb_column_family_handle_t *h[1];
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_dbpath_t *dp[2];
    struct tb_rmf_version *v = NULL;
    rocksdb_t *db;

    dp[0] = rocksdb_dbpath_create(p1, 200 << 10);
    dp[1] = rocksdb_dbpath_create(p2, 1ull << 30);
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_db_paths(o, (const rocksdb_dbpath_t **)dp, 2);
    rocksdb_options_set_write_buffer_size(o, 64 << 10);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 2);
    rocksdb_options_set_target_file_size_base(o, 64 << 10);
    rocksdb_options_set_max_bytes_for_level_base(o, 128 << 10);
    rocksdb_options_set_compaction_style(o, rocksdb_level_compaction);
    db = open_db(o, dir, names, 1, h);
    if (!db) {
        ok(0, "db_paths database opens");
        return;
    }
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 600; i++)
            put(db, h[0], round * 1000 + i, 200);
        flush(db, h[0]);
    }
    /* No compaction of its own after the manual one: one that ran between reading the
     * MANIFEST and asking RocksDB for its live files made them differ (once in CI). The
     * manual compaction waits for those already running. */
    {
        const char *key = "disable_auto_compactions", *val = "true";
        char *err = NULL;
        rocksdb_set_options(db, 1, &key, &val, &err);
        ok(err == NULL, "automatic compactions off%s%s", err ? ": " : "", err ? err : "");
        free(err);
    }
    rocksdb_compact_range_cf(db, h[0], NULL, 0, NULL, 0);
    man = manifest_of(dir);
    ok(man && tb_rmf_load(man, &v) == 0, "MANIFEST of a db_paths database reads");
    if (v) {
        int where[2] = { 0, 0 }, bad = 0;
        compare_live(db, v, "db_paths");
        for (size_t j = 0; j < v->cfs[0].nfiles; j++) {
            const struct tb_rmf_file *f = &v->cfs[0].files[j];
            char name[64], *path;
            snprintf(name, sizeof name, "%06" PRIu64 ".sst", f->number);
            path = f->path_id < 2 ? tb_fs_join(dirs[f->path_id], name) : NULL;
            if (!path || !tb_fs_exists(path)) {
                diag("file %s with path id %u is not there", name, f->path_id);
                bad++;
            } else {
                where[f->path_id]++;
            }
            free(path);
        }
        ok(bad == 0 && where[0] > 0 && where[1] > 0, "every SST lies in the db_path its path id names (%d in the first, %d "
           "in the second)", where[0], where[1]);
        /* The flat copy: the same files, every path id 0, a MANIFEST RocksDB's framing reads. */
        {
            tb_rmf *m = NULL;
            struct tb_rmf_version *f = NULL;
            char *flat = tb_fs_join(root, "flat-MANIFEST");
            FILE *fp = fopen(man, "rb");
            int same = 1, any = 0;
            if (fp && tb_rmf_open_fd(&m, fileno(fp), man) == 0 && tb_rmf_read(m, UINT64_MAX) == 0)
                any = tb_rmf_has_path_ids(m);
            ok(m && any && tb_rmf_write_flat(m, flat) == 0 && tb_rmf_load(flat, &f) == 0,
               "the MANIFEST rewritten with path ids 0 reads back");
            for (size_t j = 0; f && j < v->cfs[0].nfiles; j++)
                same &= f->cfs[0].nfiles == v->cfs[0].nfiles && f->cfs[0].files[j].number == v->cfs[0].files[j].number &&
                        f->cfs[0].files[j].level == v->cfs[0].files[j].level &&
                        f->cfs[0].files[j].size == v->cfs[0].files[j].size && f->cfs[0].files[j].path_id == 0;
            ok(f && same && f->last_sequence == v->last_sequence, "with the same files, levels, sizes, every path id 0");
            tb_rmf_version_free(f);
            tb_rmf_free(m);
            if (fp)
                fclose(fp);
            free(flat);
        }
        tb_rmf_version_free(v);
    }
    rocksdb_column_family_handle_destroy(h[0]);
    rocksdb_close(db);
    rocksdb_dbpath_destroy(dp[0]);
    rocksdb_dbpath_destroy(dp[1]);
    rocksdb_options_destroy(o);
    free(man);
    free(dir);
    free(p1);
    free(p2);
}

/* ---- hand-made MANIFESTs ---- */

static size_t varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static size_t slice(unsigned char *p, const void *s, size_t len)
{
    size_t n = varint(p, len);
    memcpy(p + n, s, len);
    return n + len;
}

/* Appends one full-type log record with payload rec to f (no block crossing: tests are small). */
static void log_record(FILE *f, const unsigned char *rec, size_t len)
{
    unsigned char h[7];
    uint32_t crc = tb_crc32c(0, (const unsigned char[]){ 1 }, 1);
    crc = tb_crc32c_mask(tb_crc32c(crc, rec, len));
    for (int i = 0; i < 4; i++)
        h[i] = (unsigned char)(crc >> (8 * i));
    h[4] = (unsigned char)len;
    h[5] = (unsigned char)(len >> 8);
    h[6] = 1;
    fwrite(h, 1, 7, f);
    fwrite(rec, 1, len, f);
}

/* The first record as RocksDB writes it: comparator, log number, next file, last sequence. */
static size_t base_edit(unsigned char *r)
{
    size_t n = 0;
    n += varint(r + n, 1);
    n += slice(r + n, "leveldb.BytewiseComparator", 26);
    n += varint(r + n, 2);
    n += varint(r + n, 5);
    n += varint(r + n, 3);
    n += varint(r + n, 20);
    n += varint(r + n, 4);
    n += varint(r + n, 1234);
    return n;
}

/* NewFile4 for file number at level with an extra custom field tag (0: none). */
static size_t new_file4_at(unsigned char *r, int level, uint64_t number, uint32_t custom)
{
    unsigned char ikey[9] = "k\0\0\0\0\0\0\0\1";
    size_t n = 0;
    n += varint(r + n, 103);
    n += varint(r + n, (uint64_t)level);
    n += varint(r + n, number);
    n += varint(r + n, 4096);
    n += slice(r + n, ikey, 9);
    n += slice(r + n, ikey, 9);
    n += varint(r + n, 10);
    n += varint(r + n, 20);
    if (custom) {
        n += varint(r + n, custom);
        n += slice(r + n, "xy", 2);
    }
    n += varint(r + n, 1); /* kTerminate */
    return n;
}

static size_t new_file4(unsigned char *r, uint64_t number, uint32_t custom)
{
    return new_file4_at(r, 1, number, custom);
}

static char *write_manifest(const char *name, unsigned char *recs[], size_t lens[], int n)
{
    char *path = tb_fs_join(root, name);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++)
        log_record(f, recs[i], lens[i]);
    fclose(f);
    return path;
}

static void test_hand_made(void)
{
    unsigned char a[256], b[256], c[256];
    unsigned char *recs[3] = { a, b, c };
    size_t lens[3];
    struct tb_rmf_version *v = NULL;
    char *path;
    int rc;

    /* A good one: base, one new file, one ignorable future tag and an ignorable custom field. */
    lens[0] = base_edit(a);
    lens[1] = new_file4(b, 7, 13 /* epoch number: safe to ignore */);
    lens[2] = varint(c, (1 << 13) + 77);
    lens[2] += slice(c + lens[2], "future", 6);
    lens[2] += varint(c + lens[2], 4);
    lens[2] += varint(c + lens[2], 1300);
    path = write_manifest("good", recs, lens, 3);
    rc = tb_rmf_load(path, &v);
    ok(rc == 0, "a MANIFEST with an ignorable tag and custom field reads%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    if (v) {
        is_int(v->last_sequence, 1300, "the record after the ignorable tag is applied");
        ok(v->ncf == 1 && v->cfs[0].nfiles == 1 && v->cfs[0].files[0].number == 7 && v->cfs[0].files[0].level == 1,
           "the new file is live at level 1");
        is_int(v->cfs[0].log_number, 5, "log number");
        is_int(v->next_file_number, 20, "next file number");
        tb_rmf_version_free(v);
        v = NULL;
    }
    free(path);

    /* Unknown tags RocksDB does not allow to skip: refused, by number. */
    lens[2] = varint(c, 250);
    lens[2] += varint(c + lens[2], 1);
    path = write_manifest("unknown-tag", recs, lens, 3);
    rc = tb_rmf_load(path, &v);
    ok(rc == TB_EVERIFY && strstr(tb_error_last(), "tag 250"), "an unknown tag is refused, named: %s", tb_error_last());
    free(path);
    lens[1] = new_file4(b, 7, 64 + 9);
    path = write_manifest("unknown-field", recs, lens, 2);
    rc = tb_rmf_load(path, &v);
    ok(rc == TB_EVERIFY && strstr(tb_error_last(), "field 73"), "an unknown non-ignorable new-file field is refused: %s",
       tb_error_last());
    free(path);

    /* A flipped byte fails the CRC; a cut file reads up to its last whole record. */
    lens[1] = new_file4(b, 7, 0);
    path = write_manifest("flip", recs, lens, 2);
    {
        FILE *f = fopen(path, "r+b");
        fseek(f, 7 + (long)lens[0] + 7 + 5, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    rc = tb_rmf_load(path, &v);
    ok(rc == TB_EVERIFY && strstr(tb_error_last(), "checksum"), "a flipped byte fails the checksum: %s", tb_error_last());
    free(path);
    path = write_manifest("cut", recs, lens, 2);
    ok(truncate(path, (off_t)(7 + lens[0] + 7 + lens[1] - 3)) == 0, "cut the last record");
    rc = tb_rmf_load(path, &v);
    ok(rc == 0 && v && v->cfs[0].nfiles == 0 && v->last_sequence == 1234,
       "a cut MANIFEST reads up to its last whole record");
    tb_rmf_version_free(v);
    v = NULL;

    /* Reading in steps: a limit inside a record stops before it; a later call goes on. */
    {
        tb_rmf *m = NULL;
        FILE *f;
        free(path);
        path = write_manifest("steps", recs, lens, 2);
        f = fopen(path, "rb");
        rc = tb_rmf_open_fd(&m, fileno(f), path);
        fclose(f);
        ok(rc == 0 && tb_rmf_read(m, 7 + lens[0] + 5) == 0 && tb_rmf_offset(m) == 7 + lens[0],
           "a limit inside the second record stops after the first");
        ok(tb_rmf_read(m, UINT64_MAX) == 0 && tb_rmf_offset(m) == 14 + lens[0] + lens[1] &&
           tb_rmf_version(m, &v) == 0 && v->cfs[0].nfiles == 1, "reading on applies the second");
        tb_rmf_version_free(v);
        v = NULL;
        tb_rmf_free(m);
    }
    free(path);

    /* An atomic group counts only when complete. */
    {
        unsigned char g1[256], g2[256];
        unsigned char *r4[3] = { a, g1, g2 };
        size_t l4[3], k;
        lens[0] = base_edit(a);
        k = varint(g1, 300);
        k += varint(g1 + k, 1);
        k += new_file4(g1 + k, 8, 0);
        l4[0] = lens[0];
        l4[1] = k;
        k = varint(g2, 300);
        k += varint(g2 + k, 0);
        k += new_file4(g2 + k, 9, 0);
        l4[2] = k;
        path = write_manifest("group-cut", r4, l4, 2);
        ok(tb_rmf_load(path, &v) == 0 && v->cfs[0].nfiles == 0, "an incomplete atomic group is not applied");
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
        path = write_manifest("group", r4, l4, 3);
        ok(tb_rmf_load(path, &v) == 0 && v->cfs[0].nfiles == 2, "a complete atomic group is applied");
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
    }

    /* What RocksDB 9 to 11.8 add: NewFile4 fields 13-17 (epoch number, compensated range
     * deletion size, tail size, timestamps persisted, file open metadata), tags
     * kPersistUserDefinedTimestamps 8201, kSubcompactionProgress 8202,
     * kLastCompactedManifestFileSize 8203, all length-prefixed; WAL tracking (8199/8200). */
    {
        unsigned char n9[512], w[64];
        unsigned char *r9[3] = { a, n9, w };
        size_t l9[3] = { base_edit(a), 0, 0 }, k = 0;
        unsigned char ikey[9] = "k\0\0\0\0\0\0\0\1";
        k += varint(n9 + k, 103);
        k += varint(n9 + k, 2);
        k += varint(n9 + k, 44);
        k += varint(n9 + k, 8192);
        k += slice(n9 + k, ikey, 9);
        k += slice(n9 + k, ikey, 9);
        k += varint(n9 + k, 5);
        k += varint(n9 + k, 9);
        for (unsigned f = 13; f <= 17; f++) {
            k += varint(n9 + k, f);
            k += slice(n9 + k, "\x01", 1);
        }
        k += varint(n9 + k, 1);
        for (unsigned t = 8201; t <= 8203; t++) {
            k += varint(n9 + k, t);
            k += slice(n9 + k, "\x01\x02", 2);
        }
        l9[1] = k;
        k = varint(w, 8199); /* WalAddition2: lps of (number, synced size tag 2, size, terminate 1) */
        {
            unsigned char in[16];
            size_t m2 = varint(in, 7);
            m2 += varint(in + m2, 2);
            m2 += varint(in + m2, 4096);
            m2 += varint(in + m2, 1);
            k += slice(w + k, in, m2);
            m2 = varint(in, 9);
            m2 += varint(in + m2, 1);
            k += varint(w + k, 8199);
            k += slice(w + k, in, m2);
            m2 = varint(in, 8);
            k += varint(w + k, 8200); /* WalDeletion2: every WAL below 8 */
            k += slice(w + k, in, m2);
        }
        l9[2] = k;
        path = write_manifest("rocksdb11", r9, l9, 3);
        rc = tb_rmf_load(path, &v);
        ok(rc == 0 && v->cfs[0].nfiles == 1 && v->cfs[0].files[0].number == 44 && v->cfs[0].files[0].level == 2 &&
           v->cfs[0].files[0].largest_seq == 9, "fields and tags of RocksDB 9 to 11.8 are read past%s%s",
           rc ? ": " : "", rc ? tb_error_last() : "");
        ok(rc == 0 && v->nwals == 1 && v->wals[0].number == 9, "tracked WALs: 7 added then deleted below 8, 9 left");
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
    }
    /* A blob file addition with a field RocksDB forbids to ignore. */
    {
        unsigned char bl[64];
        unsigned char *rb[2] = { a, bl };
        size_t lb[2] = { base_edit(a), 0 }, k = 0;
        k += varint(bl + k, 400);
        k += varint(bl + k, 12);
        k += varint(bl + k, 3);
        k += varint(bl + k, 300);
        k += slice(bl + k, "", 0);
        k += slice(bl + k, "", 0);
        k += varint(bl + k, 64 + 2);
        k += slice(bl + k, "z", 1);
        k += varint(bl + k, 0);
        lb[1] = k;
        path = write_manifest("blobfield", rb, lb, 2);
        rc = tb_rmf_load(path, &v);
        ok(rc == TB_EVERIFY && strstr(tb_error_last(), "blob file field 66"), "a blob file field that must not be "
           "ignored is refused: %s", tb_error_last());
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
    }

    /* The oldest WAL recovery needs: the least CF log number (0: nothing flushed, every WAL)
     * and min_log_number_to_keep. */
    {
        unsigned char z[64], cfx[64], keep[16];
        unsigned char *r3[3] = { z, cfx, keep };
        size_t l3[3], k = 0;
        k += varint(z + k, 1);
        k += slice(z + k, "leveldb.BytewiseComparator", 26);
        k += varint(z + k, 3);
        k += varint(z + k, 20);
        l3[0] = k;
        k = varint(cfx, 200);
        k += varint(cfx + k, 1);
        k += varint(cfx + k, 201);
        k += slice(cfx + k, "x", 1);
        k += varint(cfx + k, 2);
        k += varint(cfx + k, 12);
        l3[1] = k;
        path = write_manifest("minlog0", r3, l3, 2);
        ok(tb_rmf_load(path, &v) == 0 && v->ncf == 2 && v->min_log_needed == 0,
           "a column family that never flushed needs every WAL (min log %" PRIu64 ")", v ? v->min_log_needed : 99);
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
        r3[0] = a;
        l3[0] = base_edit(a);
        k = varint(keep, 10);
        k += varint(keep + k, 3);
        l3[2] = k;
        path = write_manifest("minlog3", r3, l3, 3);
        ok(tb_rmf_load(path, &v) == 0 && v->min_log_needed == 3 && v->min_log_number_to_keep == 3,
           "min_log_number_to_keep below every CF's log number wins (%" PRIu64 ")", v ? v->min_log_needed : 99);
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
        path = write_manifest("minlog5", r3, l3, 2);
        ok(tb_rmf_load(path, &v) == 0 && v->min_log_needed == 5, "else the least CF log number (%" PRIu64 ")",
           v ? v->min_log_needed : 99);
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
    }

    /* A deleted and re-added file (trivial move) in one edit ends on the new level. */
    {
        unsigned char mv[256];
        unsigned char *r2[3] = { a, b, mv };
        size_t l2[3] = { base_edit(a), new_file4(b, 7, 0), 0 }, k = 0;
        k += varint(mv + k, 6);
        k += varint(mv + k, 1);
        k += varint(mv + k, 7);
        k += new_file4_at(mv + k, 2, 7, 0);
        l2[2] = k;
        path = write_manifest("move", r2, l2, 3);
        ok(tb_rmf_load(path, &v) == 0 && v->cfs[0].nfiles == 1 && v->cfs[0].files[0].level == 2,
           "a file deleted and added in one edit moves to the new level");
        tb_rmf_version_free(v);
        v = NULL;
        free(path);
    }
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_rdbmanifest.%d", (int)getpid());
    tb_fs_mkdir_p(root, 0700);
    test_cfs_and_compaction();
    test_blobs();
    test_db_paths();
    test_hand_made();
    tb_fs_rm_rf(root);
    return done_testing();
}
