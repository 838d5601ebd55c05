/* test_wal: CRC32C known answers, WriteBatch decoding of every tag, the log reader on
 * hand-built files (fragments across blocks, recyclable headers, damage, torn tails), and
 * the archive index adopting a segment published but not indexed (archiver killed between). */
#include "tap.h"
#include "batch.h"
#include "crc32c.h"
#include "error.h"
#include "fs.h"
#include "archiver.h"
#include "log_reader.h"
#include "segment.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

static void test_crc(void)
{
    unsigned char z[32] = { 0 }, o[32], inc[32], buf[1000];
    memset(o, 0xff, sizeof o);
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    is_int(tb_crc32c(0, "123456789", 9), 0xe3069283u, "crc32c check value");
    is_int(tb_crc32c(0, z, 32), 0x8a9136aau, "RFC 3720: 32 zeros");
    is_int(tb_crc32c(0, o, 32), 0x62a8ab43u, "RFC 3720: 32 ones");
    is_int(tb_crc32c(0, inc, 32), 0x46dd794eu, "RFC 3720: incrementing");
    is_int(tb_crc32c(tb_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u, "extending in pieces");
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    int same = 1;
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len < 300; len++)
            same &= tb_crc32c(0, buf + off, len) == tb_crc32c_portable(0, buf + off, len);
    ok(same, "instruction and tables agree for every alignment and length up to 300");
    is_int(tb_crc32c_unmask(tb_crc32c_mask(0x12345678u)), 0x12345678u, "mask round trip");
}

struct want {
    enum tb_wb_kind kind;
    uint32_t cf;
    const char *key, *value;
};

static int decode_is(const char *rep, size_t len, const struct want *w, int n, const char *what)
{
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    int i = 0, m;
    if (tb_wb_init(&it, rep, len) < 0)
        return 0;
    while ((m = tb_wb_next(&it, &e)) == 1) {
        if (i >= n || e.kind != w[i].kind || e.cf != w[i].cf ||
            (w[i].key && (e.klen != strlen(w[i].key) || memcmp(e.key, w[i].key, e.klen))) ||
            (w[i].value && (e.vlen != strlen(w[i].value) || memcmp(e.value, w[i].value, e.vlen)))) {
            diag("%s: entry %d differs (kind %s cf %u)", what, i, tb_wb_kind_name(e.kind), e.cf);
            return 0;
        }
        i++;
    }
    return m == 0 && i == n;
}

static void test_batch(void)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    char *err = NULL, path[256];
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_column_family_handle_t *h[2];
    const rocksdb_options_t *co[2] = { o, o };
    const char *names[2] = { "default", "cf1" };
    snprintf(path, sizeof path, "%s/test_wal_db.%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_uint64add_merge_operator(o);
    rocksdb_t *db = rocksdb_open_column_families(o, path, 2, names, co, h, &err);
    ok(db != NULL, "a DB for column family handles");
    rocksdb_writebatch_put_log_data(b, "TSv1\x01\x00\x00\x00\x00\x00\x00\x00", 12);
    rocksdb_writebatch_put(b, "k1", 2, "v1", 2);
    rocksdb_writebatch_put_cf(b, h[1], "k2", 2, "v2", 2);
    rocksdb_writebatch_delete(b, "k3", 2);
    rocksdb_writebatch_delete_cf(b, h[1], "k4", 2);
    rocksdb_writebatch_singledelete(b, "k5", 2);
    rocksdb_writebatch_singledelete_cf(b, h[1], "k6", 2);
    rocksdb_writebatch_delete_range(b, "a", 1, "b", 1);
    rocksdb_writebatch_delete_range_cf(b, h[1], "c", 1, "d", 1);
    rocksdb_writebatch_merge(b, "m1", 2, "12345678", 8);
    rocksdb_writebatch_merge_cf(b, h[1], "m2", 2, "87654321", 8);
    rocksdb_writebatch_put_log_data(b, "note", 4);
    size_t len;
    const char *rep = rocksdb_writebatch_data(b, &len);
    struct want w[] = {
        { TB_WB_LOG_DATA, 0, NULL, NULL }, { TB_WB_PUT, 0, "k1", "v1" }, { TB_WB_PUT, 1, "k2", "v2" },
        { TB_WB_DELETE, 0, "k3", NULL }, { TB_WB_DELETE, 1, "k4", NULL }, { TB_WB_SINGLE_DELETE, 0, "k5", NULL },
        { TB_WB_SINGLE_DELETE, 1, "k6", NULL }, { TB_WB_DELETE_RANGE, 0, "a", "b" }, { TB_WB_DELETE_RANGE, 1, "c", "d" },
        { TB_WB_MERGE, 0, "m1", "12345678" }, { TB_WB_MERGE, 1, "m2", "87654321" }, { TB_WB_LOG_DATA, 0, "note", NULL },
    };
    ok(decode_is(rep, len, w, 12, "C API batch"), "every tag the C API writes decodes, with CF ids, keys and values");
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    int64_t ns = 0;
    tb_wb_init(&it, rep, len);
    is_int(it.count, 10, "header count: log data excluded");
    tb_wb_next(&it, &e);
    ok(tb_wb_stamp(&e, &ns) && ns == 1, "TSv1 stamp read as little-endian nanoseconds");
    tb_wb_next(&it, &e);
    ok(!tb_wb_stamp(&e, &ns), "a Put is no stamp");
    ok(tb_wb_consumes_seq(TB_WB_PUT) && tb_wb_consumes_seq(TB_WB_DELETE_RANGE) && !tb_wb_consumes_seq(TB_WB_LOG_DATA) &&
       !tb_wb_consumes_seq(TB_WB_COMMIT), "which kinds take a sequence number");

    /* 2PC markers, Noop, blob index, wide-column entity, commit with timestamp: by hand. */
    unsigned char m[] = { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
                          0x9,                         /* BeginPrepare */
                          0x5, 1, 1, 'k', 1, 'v',      /* Put cf 1 */
                          0xA, 2, 'x', '1',            /* EndPrepare xid "x1" */
                          0xD,                         /* Noop */
                          0xB, 2, 'x', '1',            /* Commit "x1" */
                          0xC, 2, 'x', '2',            /* Rollback "x2" */
                          0x12, 0x13,                  /* persisted prepare, unprepare */
                          0x11, 1, 'b', 2, 'i', 'x',   /* blob index */
                          0x17, 3, 1, 'w', 1, 'e',     /* wide-column entity cf 3 */
                          0x15, 1, 't', 2, 'x', '3' }; /* commit with timestamp */
    struct want w2[] = {
        { TB_WB_BEGIN_PREPARE, 0, NULL, NULL }, { TB_WB_PUT, 1, "k", "v" }, { TB_WB_END_PREPARE, 0, "x1", NULL },
        { TB_WB_NOOP, 0, NULL, NULL }, { TB_WB_COMMIT, 0, "x1", NULL }, { TB_WB_ROLLBACK, 0, "x2", NULL },
        { TB_WB_BEGIN_PREPARE, 0, NULL, NULL }, { TB_WB_BEGIN_PREPARE, 0, NULL, NULL }, { TB_WB_BLOB_INDEX, 0, "b", "ix" },
        { TB_WB_PUT_ENTITY, 3, "w", "e" }, { TB_WB_COMMIT, 0, "x3", "t" },
    };
    ok(decode_is((char *)m, sizeof m, w2, 11, "markers"), "2PC markers, Noop, blob index, entity, commit with timestamp");
    unsigned char unknown[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x1, 1, 'k', 1, 'v', 0x7f };
    tb_wb_init(&it, unknown, sizeof unknown);
    tb_wb_next(&it, &e);
    ok(tb_wb_next(&it, &e) == TB_EVERIFY && strstr(tb_error_last(), "0x7f") && strstr(tb_error_last(), "byte 17"),
       "an unknown tag is an error naming tag and offset: %s", tb_error_last());
    unsigned char trunc[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x1, 5, 'k' };
    tb_wb_init(&it, trunc, sizeof trunc);
    ok(tb_wb_next(&it, &e) == TB_EVERIFY && strstr(tb_error_last(), "truncated"), "a truncated entry is an error");
    ok(tb_wb_init(&it, "short", 5) == TB_EVERIFY, "a record shorter than the header is an error");
    rocksdb_writebatch_destroy(b);
    rocksdb_column_family_handle_destroy(h[0]);
    rocksdb_column_family_handle_destroy(h[1]);
    rocksdb_close(db);
    rocksdb_destroy_db(o, path, &err);
    rocksdb_options_destroy(o);
}

/* Appends one fragment of type t (recyclable when log != 0) at the writer position. */
static size_t frag(unsigned char *f, size_t pos, unsigned t, const unsigned char *p, size_t n, uint32_t log)
{
    unsigned char *h = f + pos;
    size_t hdr = log ? 11 : 7;
    h[4] = (unsigned char)n, h[5] = (unsigned char)(n >> 8), h[6] = (unsigned char)t;
    if (log)
        for (int i = 0; i < 4; i++)
            h[7 + i] = (unsigned char)(log >> (8 * i));
    memcpy(h + hdr, p, n);
    uint32_t c = tb_crc32c_mask(tb_crc32c(0, h + 6, hdr - 6 + n));
    for (int i = 0; i < 4; i++)
        h[i] = (unsigned char)(c >> (8 * i));
    return pos + hdr + n;
}

static int write_file(const char *path, const unsigned char *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int okw = fd >= 0 && write(fd, d, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return okw;
}

static void test_reader(void)
{
    enum { B = 32768 };
    static unsigned char f[3 * B], payload[40000];
    char path[256];
    tb_wal_reader *r;
    const unsigned char *rec;
    size_t len, pos = 0;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (unsigned char)(i * 7);
    snprintf(path, sizeof path, "%s/test_wal.%d.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    /* Record 1: 100 bytes FULL. Record 2: 40000 bytes FIRST..LAST across the block edge,
     * after which the block's last 5 bytes are a zero trailer. */
    pos = frag(f, pos, 1, payload, 100, 0);
    size_t first = B - pos - 7;
    pos = frag(f, pos, 2, payload, first, 0);
    pos = frag(f, pos, 4, payload + first, 40000 - first, 0);
    size_t end2 = pos;
    ok(write_file(path, f, pos), "hand-built WAL written");
    ok(tb_wal_reader_open(&r, path, 5, 0) == 0, "opens");
    ok(tb_wal_reader_next(r, &rec, &len) == 1 && len == 100 && memcmp(rec, payload, 100) == 0, "a FULL record");
    ok(tb_wal_reader_next(r, &rec, &len) == 1 && len == 40000 && memcmp(rec, payload, 40000) == 0,
       "a record in two fragments across the block boundary");
    ok(tb_wal_reader_next(r, &rec, &len) == 0 && !tb_wal_reader_torn(r), "then the end, not torn");
    is_int(tb_wal_reader_offset(r), end2, "resume offset after the last record");
    tb_wal_reader_free(r);

    /* A torn tail: half of a third record. */
    size_t p3 = frag(f, pos, 1, payload, 500, 0);
    ok(write_file(path, f, pos + (p3 - pos) / 2), "file with half a record at its end");
    tb_wal_reader_open(&r, path, 5, 0);
    tb_wal_reader_next(r, &rec, &len);
    tb_wal_reader_next(r, &rec, &len);
    ok(tb_wal_reader_next(r, &rec, &len) == 0 && tb_wal_reader_torn(r), "the torn tail is the end for now");
    is_int(tb_wal_reader_offset(r), end2, "resuming from before the torn record");
    ok(write_file(path, f, p3), "the writer finishes the record");
    ok(tb_wal_reader_next(r, &rec, &len) == 1 && len == 500, "the same reader then gets it");
    tb_wal_reader_free(r);

    /* Damage in the middle: a flipped payload byte. */
    f[50] ^= 1;
    write_file(path, f, p3);
    tb_wal_reader_open(&r, path, 5, 0);
    ok(tb_wal_reader_next(r, &rec, &len) == TB_EVERIFY && strstr(tb_error_last(), "offset 0"),
       "a bad CRC is an error naming the offset: %s", tb_error_last());
    tb_wal_reader_free(r);
    f[50] ^= 1;

    /* Recyclable headers: records of this log number are read; an old number ends the log. */
    memset(f, 0, sizeof f);
    pos = frag(f, 0, 5, payload, 64, 9);
    pos = frag(f, pos, 5, payload, 64, 8);
    write_file(path, f, pos);
    tb_wal_reader_open(&r, path, 9, 0);
    ok(tb_wal_reader_next(r, &rec, &len) == 1 && len == 64, "a recyclable FULL record of this log");
    ok(tb_wal_reader_next(r, &rec, &len) == 0, "a record of an older log number is the end");
    tb_wal_reader_free(r);

    /* A MIDDLE without FIRST is damage. */
    pos = frag(f, 0, 3, payload, 10, 0);
    write_file(path, f, pos);
    tb_wal_reader_open(&r, path, 1, 0);
    ok(tb_wal_reader_next(r, &rec, &len) == TB_EVERIFY, "a fragment without a start is an error");
    tb_wal_reader_free(r);
    unlink(path);
    ok(tb_wal_reader_open(&r, path, 1, 0) == TB_ENOENT, "a missing file is TB_ENOENT");
}

static int count_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    (void)segment;
    (void)r;
    ++*(int *)arg;
    return 0;
}

static void test_index_adopt(void)
{
    char dir[] = "/tmp/test_wal.XXXXXX", *index, *text = NULL, *cut;
    unsigned char batch[12] = { 0 };
    struct tb_seg_info *v = NULL, made[2];
    size_t n = 0, adopted = 9;
    tb_seg_writer *w = NULL;
    uint64_t seq = 1;
    int records = 0;
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    index = tb_fs_join(dir, TB_SEG_INDEX);
    ok(tb_seg_writer_open(&w, dir, 3) == 0, "segment writer opens");
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 3 + s; i++, seq += 2) {
            struct tb_seg_record r = { .first_seq = seq, .next_seq = seq + 2, .ts_ns = (int64_t)seq * 1000,
                                       .log_number = 7, .end_offset = seq, .data = batch, .len = sizeof batch };
            tb_seg_writer_append(w, &r);
        }
        ok(tb_seg_writer_rotate(w, &made[s]) == 0, "segment %d published", s + 1);
    }
    tb_seg_writer_free(w);
    /* The crash: the second segment was renamed into place but its index line never written. */
    tb_fs_read_file(index, &text, NULL);
    cut = strstr(text, made[1].name);
    while (cut && cut > text && cut[-1] != '\n')
        cut--;
    ok(cut != NULL, "the index lists the second segment before the cut");
    if (cut)
        tb_fs_write_atomic(index, text, (size_t)(cut - text), 0644);
    /* Another archive's segment left in the directory (overlapping, not continuing the
     * index): never adopted, whatever its content. */
    {
        char *stray = tb_fs_join(dir, "00000000000000000003-00000000000000000099.wal.zst"), *src = tb_fs_join(dir, made[1].name);
        char *bytes = NULL;
        size_t len = 0;
        ok(stray && src && tb_fs_read_file(src, &bytes, &len) == 0 && tb_fs_write_atomic(stray, bytes, len, 0644) == 0,
           "a stray segment file named for sequences 3..98 beside them");
        free(bytes);
        free(src);
        free(stray);
    }
    ok(tb_seg_index_load(dir, &v, &n) == 0 && n == 2, "index load adopts the unindexed segment (%zu segments)", n);
    ok(n == 2 && strcmp(v[0].name, made[0].name) == 0 && strcmp(v[1].name, made[1].name) == 0,
       "and only the one continuing the index, not the stray");
    if (n == 2) {
        is_str(v[1].name, made[1].name, "in sequence order");
        is_int(v[1].first_seq, made[1].first_seq, "its first sequence read from its records");
        is_int(v[1].next_seq, made[1].next_seq, "its next sequence");
        is_int(v[1].last_ts, made[1].last_ts, "its last time stamp");
        is_str(v[1].sha256, made[1].sha256, "its SHA-256");
        is_int(v[1].size, made[1].size, "its size");
    }
    free(v);
    ok(tb_seg_walk(dir, count_fn, &records) == 0, "walk succeeds");
    is_int(records, 7, "and sees the records of both segments");
    ok(tb_seg_index_repair(dir, &adopted) == 0 && adopted == 1, "repair writes the segment back into index.tsv");
    ok(tb_seg_index_repair(dir, &adopted) == 0 && adopted == 0, "a second repair has nothing to do");
    free(text);
    text = NULL;
    tb_fs_read_file(index, &text, NULL);
    ok(text && strstr(text, made[1].name), "index.tsv lists it again");
    free(text);
    /* A damaged unindexed segment is an error, not silently skipped or half-adopted. */
    {
        char *path = tb_fs_join(dir, made[1].name);
        int fd;
        tb_fs_write_atomic(index, "", 0, 0644);
        fd = open(path, O_WRONLY);
        ok(fd >= 0 && pwrite(fd, "XXXX", 4, (off_t)made[1].size / 2) == 4, "damaged the second segment");
        if (fd >= 0)
            close(fd);
        v = NULL;
        ok(tb_seg_index_load(dir, &v, &n) == TB_EVERIFY, "a damaged unindexed segment fails the load (TB_EVERIFY)");
        free(v);
        free(path);
    }
    tb_fs_rm_rf(dir);
    free(index);
}

/* Appends a record whose WriteBatch is body (after a 12-byte header) to w. */
static void add_record(tb_seg_writer *w, uint64_t first, uint64_t next, const unsigned char *body, size_t n)
{
    unsigned char rec[512] = { 0 };
    struct tb_seg_record r = { .first_seq = first, .next_seq = next, .ts_ns = (int64_t)first, .data = rec, .len = 12 + n };
    rec[0] = (unsigned char)first;
    memcpy(rec + 12, body, n);
    tb_seg_writer_append(w, &r);
}

/* Retention: segments wholly before the base go, except from the one holding a Prepare
 * the cut segments do not close. A 300-byte xid too. */
static void test_unneeded_prefix(void)
{
    char dir[] = "/tmp/test_wal_ret.XXXXXX";
    static const unsigned char put[] = { 0x1, 1, 'k', 1, 'v' };
    unsigned char prep[400] = { 0x9, 0x1, 1, 'k', 1, 'v', 0xA, 0xAC, 0x02 }, commit[400] = { 0xB, 0xAC, 0x02 };
    struct tb_seg_info *v = NULL;
    size_t n = 0, cut = 99;
    tb_seg_writer *w = NULL;
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    memset(prep + 9, 'x', 300);   /* EndPrepare xid: 300 bytes (varint 0xAC 0x02) */
    memset(commit + 3, 'x', 300); /* Commit of the same xid */
    tb_seg_writer_open(&w, dir, 3);
    add_record(w, 1, 2, put, sizeof put);          /* segment 0: [1, 2) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 2, 2, prep, 9 + 300);            /* segment 1: the Prepare (no sequence) */
    add_record(w, 2, 3, put, sizeof put);          /*            and a put: [2, 3) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 3, 4, commit, 3 + 300);          /* segment 2: its Commit: [3, 4) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 4, 5, put, sizeof put);          /* segment 3: [4, 5) */
    tb_seg_writer_rotate(w, NULL);
    tb_seg_writer_free(w);
    ok(tb_seg_index_load(dir, &v, &n) == 0 && n == 4, "an archive of four segments");
    ok(tb_archive_unneeded_prefix(dir, v, n, 3, &cut) == 0 && cut == 3,
       "base 3: the first three go, the Commit among them closes the Prepare (cut %zu)", cut);
    ok(tb_archive_unneeded_prefix(dir, v, n, 2, &cut) == 0 && cut == 1,
       "base 2: segment 1 stays, its Prepare is committed after the base (cut %zu)", cut);
    ok(tb_archive_unneeded_prefix(dir, v, n, 0, &cut) == 0 && cut == 0, "base 0: nothing goes (cut %zu)", cut);
    free(v);
    tb_fs_rm_rf(dir);
}

int main(void)
{
    test_crc();
    test_batch();
    test_reader();
    test_index_adopt();
    test_unneeded_prefix();
    return done_testing();
}
