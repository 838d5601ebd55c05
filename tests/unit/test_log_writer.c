/* test_log_writer: records written in RocksDB's log format read back by our reader across
 * block boundaries, appending continues a block, and RocksDB 7.8 itself replays a WAL file
 * we wrote into a database it then opens. */
#include "tap.h"
#include "error.h"
#include "fs.h"
#include "log_reader.h"
#include "log_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char dir[] = "/tmp/test_log_writer.XXXXXX";

/* Sizes that land a record exactly at, just before and just after block ends, a block's
 * tail of fewer than 7 bytes (zero-filled), an empty record, and one over three blocks. */
static const size_t sizes[] = { 0, 1, 32761, 32760, 5, 32755, 100, 70000, 32768 - 7 - 3, 3, 1 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static unsigned char pattern(size_t rec, size_t i)
{
    return (unsigned char)(rec * 31 + i * 7);
}

static int write_records(const char *path, size_t from, size_t to, int append)
{
    tb_wal_writer *w = NULL;
    int rc = append ? tb_wal_writer_append(&w, path) : tb_wal_writer_open(&w, path);
    for (size_t r = from; rc == 0 && r < to; r++) {
        unsigned char *p = malloc(sizes[r] + 1);
        for (size_t i = 0; i < sizes[r]; i++)
            p[i] = pattern(r, i);
        rc = tb_wal_writer_add(w, p, sizes[r]);
        free(p);
    }
    if (rc == 0)
        return tb_wal_writer_close(w);
    tb_wal_writer_free(w);
    return rc;
}

static int reads_back(const char *path, size_t n)
{
    tb_wal_reader *r = NULL;
    const unsigned char *rec;
    size_t len, got = 0;
    int good = tb_wal_reader_open(&r, path, 1, 0) == 0;
    while (good && tb_wal_reader_next(r, &rec, &len) == 1) {
        good = got < n && len == sizes[got];
        for (size_t i = 0; good && i < len; i++)
            good = rec[i] == pattern(got, i);
        got++;
    }
    good = good && got == n && !tb_wal_reader_torn(r);
    tb_wal_reader_free(r);
    return good;
}

static void test_format(void)
{
    char path[256], path2[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/000001.log", dir);
    ok(write_records(path, 0, NSIZES, 0) == 0, "records written");
    ok(reads_back(path, NSIZES), "every record reads back whole, in order, across block boundaries");
    ok(stat(path, &st) == 0 && st.st_size > 2 * 32768, "the file spans blocks (%lld bytes)", (long long)st.st_size);
    ok(write_records(path, 0, 1, 0) == TB_EIO, "an existing file is not overwritten");
    snprintf(path2, sizeof path2, "%s/000002.log", dir);
    ok(write_records(path2, 0, 4, 0) == 0 && write_records(path2, 4, NSIZES, 1) == 0, "written in two goes (append)");
    ok(reads_back(path2, NSIZES), "appending continues the last block: the same records read back");
    {
        FILE *a = fopen(path, "rb"), *b = fopen(path2, "rb");
        int same = a && b;
        for (int ca, cb; same;) {
            ca = fgetc(a), cb = fgetc(b);
            same = ca == cb;
            if (ca == EOF)
                break;
        }
        ok(same, "and the two files are byte for byte equal");
        if (a)
            fclose(a);
        if (b)
            fclose(b);
    }
}

/* RocksDB replays a WAL file of ours: a batch with the next sequence number, in a log file
 * numbered above every file of the database. */
static void test_rocksdb_replays(void)
{
    char db[128], path[256], *err = NULL, *v;
    size_t vlen, replen;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_t *d;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    unsigned char *rep;
    uint64_t seq;
    tb_wal_writer *w = NULL;

    snprintf(db, sizeof db, "%s/db", dir);
    rocksdb_options_set_create_if_missing(o, 1);
    d = rocksdb_open(o, db, &err);
    ok(d && !err, "a database");
    if (!d)
        return;
    rocksdb_put(d, wo, "a", 1, "1", 1, &err);
    rocksdb_put(d, wo, "b", 1, "2", 1, &err);
    seq = rocksdb_get_latest_sequence_number(d);
    rocksdb_close(d);

    rocksdb_writebatch_put(b, "c", 1, "3", 1);
    rocksdb_writebatch_delete(b, "a", 1);
    rocksdb_writebatch_put(b, "big", 3, "x", 1);
    {
        const char *data = rocksdb_writebatch_data(b, &replen);
        rep = malloc(replen);
        memcpy(rep, data, replen);
    }
    for (int i = 0; i < 8; i++)
        rep[i] = (unsigned char)((seq + 1) >> (8 * i));
    snprintf(path, sizeof path, "%s/999999.log", db);
    ok(tb_wal_writer_open(&w, path) == 0 && tb_wal_writer_add(w, rep, replen) == 0 && tb_wal_writer_close(w) == 0,
       "a WAL file of ours in the database directory");
    d = rocksdb_open(o, db, &err);
    ok(d && !err, "RocksDB opens the database with it%s%s", err ? ": " : "", err ? err : "");
    if (d) {
        v = rocksdb_get(d, ro, "c", 1, &vlen, &err);
        ok(v && vlen == 1 && v[0] == '3', "the Put it carries is there");
        free(v);
        v = rocksdb_get(d, ro, "a", 1, &vlen, &err);
        ok(!v, "the Delete it carries is applied");
        free(v);
        is_int(rocksdb_get_latest_sequence_number(d), seq + 3, "the database's sequence continues through it");
        rocksdb_close(d);
    }
    free(err);
    free(rep);
    rocksdb_writebatch_destroy(b);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
}

/* Big records of a pattern by number, each 70000 bytes (three blocks). */
static int write_big(const char *path, size_t from, size_t to, int append)
{
    tb_wal_writer *w = NULL;
    unsigned char *p = malloc(70000);
    int rc = append ? tb_wal_writer_append(&w, path) : tb_wal_writer_open(&w, path);
    for (size_t r = from; rc == 0 && r < to; r++) {
        for (size_t i = 0; i < 70000; i++)
            p[i] = pattern(r, i);
        rc = tb_wal_writer_add(w, p, 70000);
    }
    free(p);
    if (rc == 0)
        return tb_wal_writer_close(w);
    tb_wal_writer_free(w);
    return rc;
}

static size_t big_records_read(tb_wal_reader *r, size_t from)
{
    const unsigned char *rec;
    size_t len, got = from;
    int good = 1;
    while (good && tb_wal_reader_next(r, &rec, &len) == 1) {
        good = len == 70000;
        for (size_t i = 0; good && i < len; i++)
            good = rec[i] == pattern(got, i);
        got += good;
    }
    return got;
}

/* The mapped reader (themis-wal-dump's) reads what the plain one reads: across its 16 MiB
 * windows, and past the size the file had when opened (read, not mapped, from there). */
static void test_mapped(void)
{
    char path[256];
    tb_wal_reader *r = NULL;
    snprintf(path, sizeof path, "%s/000003.log", dir);
    ok(write_big(path, 0, 300, 0) == 0, "300 records of 70000 bytes written (20 MiB: two map windows)");
    ok(tb_wal_reader_open_mapped(&r, path, 3) == 0, "opens mapped");
    ok(big_records_read(r, 0) == 300, "every record reads back whole through the map windows");
    ok(!tb_wal_reader_torn(r), "and the end is clean");
    ok(write_big(path, 300, 340, 1) == 0, "40 more appended after the reader reached the end");
    ok(big_records_read(r, 300) == 340, "the reader goes on into what the file gained (read, not mapped)");
    tb_wal_reader_free(r);
    ok(tb_wal_reader_open_mapped(&r, path, 3) == 0 && big_records_read(r, 0) == 340,
       "reopened mapped: all 340 records, the last ones in a window cut at the file's end");
    tb_wal_reader_free(r);
    snprintf(path, sizeof path, "%s/000001.log", dir);
    ok(tb_wal_reader_open_mapped(&r, path, 1) == 0, "the small file opens mapped");
    {
        const unsigned char *rec;
        size_t len, got = 0;
        int good = 1;
        while (good && tb_wal_reader_next(r, &rec, &len) == 1)
            good = len == sizes[got] && (len == 0 || rec[len - 1] == pattern(got, len - 1)) && ++got;
        ok(good && got == NSIZES, "its records read back as the plain reader reads them (%zu)", got);
    }
    tb_wal_reader_free(r);
    snprintf(path, sizeof path, "%s/000009.log", dir);
    ok(tb_wal_reader_open_mapped(&r, path, 9) == TB_ENOENT, "a missing file is TB_ENOENT");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_format();
    test_mapped();
    test_rocksdb_replays();
    tb_fs_rm_rf(dir);
    return done_testing();
}
