/* test_snapshot: a snapshot taken from files alone, of databases our tools cannot open (a
 * comparator and merge operator only the writer has, merge operands in the WAL) while the
 * writer holds them open; the WAL cut at its last whole record. */
#include "tap.h"
#include "dbfix.h"
#include "error.h"
#include "fs.h"
#include "snapshot.h"

#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256];


/* Merge: concatenation with '+'. */
static char *concat(const char *existing, size_t elen, const char *const *ops, const size_t *olen, int n, size_t *out)
{
    size_t len = existing ? elen : 0;
    char *r, *p;
    for (int i = 0; i < n; i++)
        len += olen[i] + 1;
    r = p = malloc(len + 1);
    if (existing) {
        memcpy(p, existing, elen);
        p += elen;
    }
    for (int i = 0; i < n; i++) {
        if (p != r)
            *p++ = '+';
        memcpy(p, ops[i], olen[i]);
        p += olen[i];
    }
    *out = (size_t)(p - r);
    return r;
}
static char *full_merge(void *s, const char *k, size_t kl, const char *ev, size_t evl, const char *const *ops,
                        const size_t *ol, int n, unsigned char *ok_, size_t *nl)
{
    (void)s, (void)k, (void)kl;
    *ok_ = 1;
    return concat(ev, evl, ops, ol, n, nl);
}
static char *partial_merge(void *s, const char *k, size_t kl, const char *const *ops, const size_t *ol, int n,
                           unsigned char *ok_, size_t *nl)
{
    (void)s, (void)k, (void)kl;
    *ok_ = 1;
    return concat(NULL, 0, ops, ol, n, nl);
}
static void del_value(void *s, const char *v, size_t l) { (void)s, (void)l; free((char *)v); }
static const char *merge_name(void *s) { (void)s; return "themis.test.Concat"; }

static rocksdb_comparator_t *reverse; /* the options do not own it */

static rocksdb_options_t *writer_options(void)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    reverse = rocksdb_comparator_create(NULL, dbfix_nop, dbfix_rev_compare, dbfix_rev_name);
    rocksdb_options_set_comparator(o, reverse);
    rocksdb_options_set_merge_operator(o, rocksdb_mergeoperator_create(NULL, dbfix_nop, full_merge, partial_merge, del_value,
                                                                       merge_name));
    rocksdb_options_set_write_buffer_size(o, 64 << 10);
    return o;
}

static int count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > strlen(ext) && strcmp(e->d_name + l - strlen(ext), ext) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* Every key's value read through db equals the one read through snap. */
static int same_content(rocksdb_t *a, rocksdb_t *b, int *keys)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *ia = rocksdb_create_iterator(a, ro), *ib = rocksdb_create_iterator(b, ro);
    int same = 1;
    *keys = 0;
    rocksdb_iter_seek_to_first(ia);
    rocksdb_iter_seek_to_first(ib);
    while (same && rocksdb_iter_valid(ia) && rocksdb_iter_valid(ib)) {
        size_t kl1, kl2, vl1, vl2;
        const char *k1 = rocksdb_iter_key(ia, &kl1), *k2 = rocksdb_iter_key(ib, &kl2);
        const char *v1 = rocksdb_iter_value(ia, &vl1), *v2 = rocksdb_iter_value(ib, &vl2);
        same = kl1 == kl2 && vl1 == vl2 && !memcmp(k1, k2, kl1) && !memcmp(v1, v2, vl1);
        (*keys)++;
        rocksdb_iter_next(ia);
        rocksdb_iter_next(ib);
    }
    same = same && !rocksdb_iter_valid(ia) && !rocksdb_iter_valid(ib);
    rocksdb_iter_destroy(ia);
    rocksdb_iter_destroy(ib);
    rocksdb_readoptions_destroy(ro);
    return same;
}

static void test_unopenable_live(void)
{
    char *dir = tb_fs_join(root, "db"), *snap = tb_fs_join(root, "snap");
    rocksdb_options_t *o = writer_options();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    struct tb_snapshot_info info;
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &err), *copy;
    int rc, keys = 0;

    ok(db != NULL, "writer opened a database with its own comparator and merge operator");
    if (!db)
        return;
    for (int i = 0; i < 3000; i++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "counter%04d", i % 500);
        snprintf(v, sizeof v, "v%d-%0*d", i, 30, i);
        if (i % 3)
            rocksdb_merge(db, wo, k, strlen(k), v, strlen(v), &err);
        else
            rocksdb_put(db, wo, k, strlen(k), v, strlen(v), &err);
    }
    /* Merge operands left in the WAL too: the last writes stay unflushed. */
    ok(count_files(dir, ".sst") > 0 && count_files(dir, ".log") > 0, "tables and a WAL with merge operands");

    rc = tb_snapshot_create(dir, NULL, snap, &info);
    ok(rc == 0, "snapshot of the open database%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    ok(rc == 0 && info.wals >= 1 && info.wal_bytes > 0 && info.linked == (size_t)count_files(snap, ".sst"),
       "it holds %zu linked tables and %zu WAL file(s), %" PRIu64 " bytes", info.linked, info.wals, info.wal_bytes);
    ok(rc == 0 && info.version && info.version->cfs[0].comparator &&
       strcmp(info.version->cfs[0].comparator, "themis.test.Reverse") == 0,
       "its MANIFEST names the writer's comparator");
    tb_snapshot_info_clear(&info);

    /* The writer's own options open the snapshot: all of the source's content is there. */
    copy = rocksdb_open_for_read_only(o, snap, 0, &err);
    ok(copy != NULL, "the snapshot opens with the writer's options%s%s", err ? ": " : "", err ? err : "");
    free(err);
    err = NULL;
    if (copy) {
        ok(same_content(db, copy, &keys) && keys == 500, "and has the source's content (%d keys, merges included)", keys);
        rocksdb_close(copy);
    }
    {
        struct tb_snapshot_info again;
        ok(tb_snapshot_create(dir, NULL, snap, &again) < 0 && strstr(tb_error_last(), snap),
           "a snapshot directory that exists is refused: %s", tb_error_last());
    }
    rocksdb_close(db);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    rocksdb_comparator_destroy(reverse);
    free(dir);
    free(snap);
}

/* A WAL whose last record is cut short (the writer was mid-write): the copy ends at the last
 * whole record, so RocksDB's recovery never sees "error reading trailing data". */
static void test_torn_tail(void)
{
    char *dir = tb_fs_join(root, "db2"), *snap = tb_fs_join(root, "snap2"), walname[256] = "", *wal = NULL, *copy = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    char *err = NULL, big[100000];
    rocksdb_t *db;
    struct stat before, after, cst;
    DIR *d;
    struct dirent *e;
    int fd, rc;

    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, dir, &err);
    if (!db) {
        ok(0, "database opens: %s", err);
        return;
    }
    rocksdb_put(db, wo, "a", 1, "1", 1, &err);
    rocksdb_put(db, wo, "b", 1, "2", 1, &err);
    rocksdb_close(db);
    d = opendir(dir);
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".log"))
            snprintf(walname, sizeof walname, "%s", e->d_name);
    if (d)
        closedir(d);
    wal = tb_fs_join(dir, walname);
    stat(wal, &before);
    /* A record the writer had begun: its header is there, most of its payload is not. */
    memset(big, 'x', sizeof big);
    fd = open(wal, O_WRONLY | O_APPEND);
    {
        /* A header claiming 1000 bytes of a FULL record, followed by only 10. */
        unsigned char h[7] = { 0, 0, 0, 0, 1000 & 0xff, 1000 >> 8, 1 };
        ok(write(fd, h, 7) == 7 && write(fd, big, 10) == 10, "appended a torn record to %s", walname);
    }
    close(fd);
    stat(wal, &after);
    rc = tb_snapshot_create(dir, NULL, snap, NULL);
    ok(rc == 0, "snapshot of a database whose WAL ends in a torn record%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    copy = tb_fs_join(snap, walname);
    ok(stat(copy, &cst) == 0 && cst.st_size == before.st_size && after.st_size > before.st_size,
       "the WAL copy ends at the last whole record (%lld of %lld bytes)", (long long)cst.st_size, (long long)after.st_size);
    {
        rocksdb_options_t *ro = rocksdb_options_create();
        rocksdb_options_set_wal_recovery_mode(ro, 2 /* kPointInTimeRecovery, the default */);
        rocksdb_t *r = rocksdb_open_for_read_only(ro, snap, 0, &err);
        size_t vl = 0;
        char *v = NULL;
        rocksdb_readoptions_t *rdo = rocksdb_readoptions_create();
        if (r)
            v = rocksdb_get(r, rdo, "b", 1, &vl, &err);
        ok(r && v && vl == 1 && v[0] == '2', "and RocksDB recovers the snapshot with every whole write%s%s",
           err ? ": " : "", err ? err : "");
        free(v);
        free(err);
        err = NULL;
        if (r)
            rocksdb_close(r);
        rocksdb_readoptions_destroy(rdo);
        rocksdb_options_destroy(ro);
    }
    /* A database that recycles WAL files is refused: a held WAL may be overwritten. */
    {
        char opt[256] = "", *p, *text = NULL, *snap3 = tb_fs_join(root, "snap3");
        size_t len = 0;
        d = opendir(dir);
        while (d && (e = readdir(d)))
            if (!strncmp(e->d_name, "OPTIONS-", 8))
                snprintf(opt, sizeof opt, "%s", e->d_name);
        if (d)
            closedir(d);
        p = tb_fs_join(dir, opt);
        if (tb_fs_read_file(p, &text, &len) == 0 && strstr(text, "recycle_log_file_num=0")) {
            char *at = strstr(text, "recycle_log_file_num=0");
            at[strlen("recycle_log_file_num=")] = '4';
            unlink(p);
            tb_fs_write_atomic(p, text, len, 0644);
        }
        rc = tb_snapshot_create(dir, NULL, snap3, NULL);
        ok(rc < 0 && strstr(tb_error_last(), "recycle_log_file_num=4") && !tb_fs_exists(snap3),
           "a database that recycles WALs is refused: %s", tb_error_last());
        free(text);
        free(p);
        free(snap3);
    }
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    free(dir);
    free(snap);
    free(wal);
    free(copy);
}

/* ---- prefix consistency under a live writer ---- */

struct live {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[3];
    volatile int stop;
    long written;
};

/* Writes key i into column family i % 3, one write per batch, in order; every 400 writes
 * flushes one column family alone, so their log numbers differ and WALs retire while the
 * others still need older ones; small buffers make compactions run too. */
static void *writer(void *arg)
{
    struct live *l = arg;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char v[200];
    memset(v, 'v', sizeof v);
    rocksdb_flushoptions_set_wait(fo, 0);
    for (long i = 0; !l->stop; i++) {
        char k[32], *err = NULL;
        snprintf(k, sizeof k, "k%09ld", i);
        rocksdb_put_cf(l->db, wo, l->cf[i % 3], k, strlen(k), v, sizeof v, &err);
        if (err) {
            free(err);
            break;
        }
        l->written = i + 1;
        if (i % 400 == 399) {
            rocksdb_flush_cf(l->db, fo, l->cf[(i / 400) % 3], &err);
            free(err);
        }
    }
    rocksdb_flushoptions_destroy(fo);
    rocksdb_writeoptions_destroy(wo);
    return NULL;
}

/* The snapshot holds exactly the writes 0..n-1 for some n: a prefix of the history. This
 * catches the race the protocol's step 3 closes: with that check removed (and 3 ms added
 * before the WALs are taken hold of), 3-4 of 12 snapshots had holes where a flush had
 * retired a WAL that the copied MANIFEST still needed. */
static int is_prefix(const char *dir, long *n)
{
    const char *names[] = { "default", "one", "two" };
    rocksdb_options_t *o = rocksdb_options_create();
    const rocksdb_options_t *co[3] = { o, o, o };
    rocksdb_column_family_handle_t *h[3];
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(o, dir, 3, names, co, h, 0, &err);
    unsigned char *seen = NULL;
    long count = 0, max = -1;
    int ok_ = 0;
    if (!db) {
        diag("open %s: %s", dir, err);
        free(err);
        goto out;
    }
    seen = calloc(1 << 24, 1);
    for (int c = 0; c < 3; c++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, h[c]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t kl;
            const char *k = rocksdb_iter_key(it, &kl);
            long i = strtol(k + 1, NULL, 10);
            if (i % 3 != c || i >= (1 << 24) || seen[i]) {
                diag("key %ld in column family %d", i, c);
                count = -1;
                break;
            }
            seen[i] = 1;
            count++;
            if (i > max)
                max = i;
        }
        rocksdb_iter_destroy(it);
        if (count < 0)
            break;
    }
    ok_ = count >= 0 && max + 1 == count;
    if (!ok_)
        diag("%s holds %ld writes, the last one %ld: a hole", dir, count, max);
    *n = count;
    for (int c = 0; c < 3; c++)
        rocksdb_column_family_handle_destroy(h[c]);
    rocksdb_close(db);
out:
    free(seen);
    rocksdb_readoptions_destroy(ro);
    rocksdb_options_destroy(o);
    return ok_;
}

static void test_live_prefix(void)
{
    char *dir = tb_fs_join(root, "live");
    const char *names[] = { "default", "one", "two" };
    rocksdb_options_t *o = rocksdb_options_create();
    const rocksdb_options_t *co[3] = { o, o, o };
    struct live l = { 0 };
    pthread_t t;
    char *err = NULL;
    int good = 0, rounds = 12, attempts = 0;
    long last = 0, n = 0;

    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_write_buffer_size(o, 64 << 10);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 2);
    rocksdb_options_set_target_file_size_base(o, 64 << 10);
    rocksdb_options_set_max_bytes_for_level_base(o, 256 << 10);
    l.db = rocksdb_open_column_families(o, dir, 3, names, co, l.cf, &err);
    if (!l.db) {
        ok(0, "live database opens: %s", err);
        return;
    }
    pthread_create(&t, NULL, writer, &l);
    while (l.written < 3000)
        usleep(10000);
    for (int r = 0; r < rounds; r++) {
        char name[32], *snap;
        struct tb_snapshot_info info;
        snprintf(name, sizeof name, "live-snap%d", r);
        snap = tb_fs_join(root, name);
        if (tb_snapshot_create(dir, NULL, snap, &info) == 0) {
            attempts += info.attempts;
            tb_snapshot_info_clear(&info);
            if (is_prefix(snap, &n) && n >= last) {
                good++;
                last = n;
            }
        } else {
            diag("snapshot %d: %s", r, tb_error_last());
        }
        tb_fs_rm_rf(snap);
        free(snap);
        usleep(50000);
    }
    l.stop = 1;
    pthread_join(t, NULL);
    ok(good == rounds, "%d of %d snapshots under a writer that flushes one CF at a time and compacts hold exactly a "
       "prefix of its writes (last: %ld of %ld written; %d attempts in all)", good, rounds, last, l.written, attempts);
    for (int c = 0; c < 3; c++)
        rocksdb_column_family_handle_destroy(l.cf[c]);
    rocksdb_close(l.db);
    rocksdb_options_destroy(o);
    free(dir);
}

static void test_split_paths(void)
{
    char **v = NULL;
    size_t n = 0;
    ok(tb_snapshot_split_paths("/a,/b/c", &v, &n) == 0 && n == 2 && !strcmp(v[0], "/a") && !strcmp(v[1], "/b/c") && !v[2],
       "--db-paths splits at commas");
    tb_snapshot_free_paths(v);
    ok(tb_snapshot_split_paths("/a,,/b", &v, &n) == TB_EUSAGE, "an empty item is a usage error");
    ok(tb_snapshot_create("/nonexistent/db", NULL, "/nonexistent/snap", NULL) == TB_ENOENT, "a missing database: %s",
       tb_error_last());
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_snapshot.%d", (int)getpid());
    tb_fs_mkdir_p(root, 0700);
    test_unopenable_live();
    test_torn_tail();
    test_live_prefix();
    test_split_paths();
    tb_fs_rm_rf(root);
    return done_testing();
}
