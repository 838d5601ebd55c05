/* test_wal: CRC32C known answers, WriteBatch decoding of every tag, the log reader on
 * hand-built files (fragments across blocks, recyclable headers, damage, torn tails), and
 * the archive index adopting a segment published but not indexed (archiver killed between),
 * and write-prepared/unprepared (seq_per_batch) logs: sequences, policy hints, archiving
 * (continuity, unlogged sequences, gaps) and replay (commit, rollback, several sections). */
#include "tap.h"
#include "batch.h"
#include "crc32c.h"
#include "error.h"
#include "fs.h"
#include "archiver.h"
#include "log_reader.h"
#include "replay.h"
#include "segment.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

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
    {
        /* Past 3 x 256 and 3 x 4096 bytes the instruction runs on three parts at once. */
        static unsigned char big[40000];
        static const size_t lens[] = { 767,   768,   769,   775,   776,   1536,  2311,  12287,
                                       12288, 12289, 12296, 20000, 24576, 32768, 36871, 39992 };
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)(i * 2654435761u >> 13);
        same = 1;
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
            for (size_t off = 0; off < 8 && off + lens[k] <= sizeof big; off += 3)
                same &= tb_crc32c(0, big + off, lens[k]) == tb_crc32c_portable(0, big + off, lens[k]) &&
                    tb_crc32c(tb_crc32c(0, big + off, lens[k] / 3), big + off + lens[k] / 3, lens[k] - lens[k] / 3) ==
                        tb_crc32c_portable(0, big + off, lens[k]);
        ok(same, "and for long buffers, whole or in two pieces (three-way runs, joined)");
    }
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
        { TB_WB_LOG_DATA, 0, NULL, NULL },      { TB_WB_PUT, 0, "k1", "v1" },
        { TB_WB_PUT, 1, "k2", "v2" },           { TB_WB_DELETE, 0, "k3", NULL },
        { TB_WB_DELETE, 1, "k4", NULL },        { TB_WB_SINGLE_DELETE, 0, "k5", NULL },
        { TB_WB_SINGLE_DELETE, 1, "k6", NULL }, { TB_WB_DELETE_RANGE, 0, "a", "b" },
        { TB_WB_DELETE_RANGE, 1, "c", "d" },    { TB_WB_MERGE, 0, "m1", "12345678" },
        { TB_WB_MERGE, 1, "m2", "87654321" },   { TB_WB_LOG_DATA, 0, "note", NULL },
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
           !tb_wb_consumes_seq(TB_WB_COMMIT),
       "which kinds take a sequence number");

    /* 2PC markers, Noop, blob index, wide-column entity, commit with timestamp: by hand. */
    unsigned char m[] = { 1,    0,    0,   0,   0,   0,   0, 0, 2, 0, 0, 0, 0x9, /* BeginPrepare */
                          0x5,  1,    1,   'k', 1,   'v', /* Put cf 1 */
                          0xA,  2,    'x', '1', /* EndPrepare xid "x1" */
                          0xD, /* Noop */
                          0xB,  2,    'x', '1', /* Commit "x1" */
                          0xC,  2,    'x', '2', /* Rollback "x2" */
                          0x12, 0x13, /* persisted prepare, unprepare */
                          0x11, 1,    'b', 2,   'i', 'x', /* blob index */
                          0x17, 3,    1,   'w', 1,   'e', /* wide-column entity cf 3 */
                          0x15, 1,    't', 2,   'x', '3' }; /* commit with timestamp */
    struct want w2[] = {
        { TB_WB_BEGIN_PREPARE, 0, NULL, NULL }, { TB_WB_PUT, 1, "k", "v" },
        { TB_WB_END_PREPARE, 0, "x1", NULL },   { TB_WB_NOOP, 0, NULL, NULL },
        { TB_WB_COMMIT, 0, "x1", NULL },        { TB_WB_ROLLBACK, 0, "x2", NULL },
        { TB_WB_BEGIN_PREPARE, 0, NULL, NULL }, { TB_WB_BEGIN_PREPARE, 0, NULL, NULL },
        { TB_WB_BLOB_INDEX, 0, "b", "ix" },     { TB_WB_PUT_ENTITY, 3, "w", "e" },
        { TB_WB_COMMIT, 0, "x3", "t" },
    };
    ok(decode_is((char *)m, sizeof m, w2, 11, "markers"),
       "2PC markers, Noop, blob index, entity, commit with timestamp");
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
    ok(tb_seg_writer_open(&w, dir, 3, NULL) == 0, "segment writer opens");
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 3 + s; i++, seq += 2) {
            struct tb_seg_record r = { .first_seq = seq,
                                       .next_seq = seq + 2,
                                       .ts_ns = (int64_t)seq * 1000,
                                       .log_number = 7,
                                       .end_offset = seq,
                                       .data = batch,
                                       .len = sizeof batch };
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
        char *stray = tb_fs_join(dir, "00000000000000000003-00000000000000000099.wal.zst"),
             *src = tb_fs_join(dir, made[1].name);
        char *bytes = NULL;
        size_t len = 0;
        ok(stray && src && tb_fs_read_file(src, &bytes, &len) == 0 && tb_fs_write_atomic(stray, bytes, len, 0644) == 0,
           "a stray segment file named for sequences 3..98 beside them");
        free(bytes);
        free(src);
        free(stray);
    }
    ok(tb_seg_index_load(dir, NULL, &v, &n) == 0 && n == 2, "index load adopts the unindexed segment (%zu segments)",
       n);
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
    ok(tb_seg_walk(dir, NULL, count_fn, &records) == 0, "walk succeeds");
    is_int(records, 7, "and sees the records of both segments");
    ok(tb_seg_index_repair(dir, NULL, &adopted) == 0 && adopted == 1, "repair writes the segment back into index.tsv");
    ok(tb_seg_index_repair(dir, NULL, &adopted) == 0 && adopted == 0, "a second repair has nothing to do");
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
        ok(tb_seg_index_load(dir, NULL, &v, &n) == TB_EVERIFY,
           "a damaged unindexed segment fails the load (TB_EVERIFY)");
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
    struct tb_seg_record r = {
        .first_seq = first, .next_seq = next, .ts_ns = (int64_t)first, .data = rec, .len = 12 + n
    };
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
    memset(prep + 9, 'x', 300); /* EndPrepare xid: 300 bytes (varint 0xAC 0x02) */
    memset(commit + 3, 'x', 300); /* Commit of the same xid */
    tb_seg_writer_open(&w, dir, 3, NULL);
    add_record(w, 1, 2, put, sizeof put); /* segment 0: [1, 2) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 2, 2, prep, 9 + 300); /* segment 1: the Prepare (no sequence) */
    add_record(w, 2, 3, put, sizeof put); /*            and a put: [2, 3) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 3, 4, commit, 3 + 300); /* segment 2: its Commit: [3, 4) */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 4, 5, put, sizeof put); /* segment 3: [4, 5) */
    tb_seg_writer_rotate(w, NULL);
    tb_seg_writer_free(w);
    ok(tb_seg_index_load(dir, NULL, &v, &n) == 0 && n == 4, "an archive of four segments");
    ok(tb_wal_archive_unneeded_prefix(dir, NULL, v, n, 3, &cut) == 0 && cut == 3,
       "base 3: the first three go, the Commit among them closes the Prepare (cut %zu)", cut);
    ok(tb_wal_archive_unneeded_prefix(dir, NULL, v, n, 2, &cut) == 0 && cut == 1,
       "base 2: segment 1 stays, its Prepare is committed after the base (cut %zu)", cut);
    ok(tb_wal_archive_unneeded_prefix(dir, NULL, v, n, 0, &cut) == 0 && cut == 0, "base 0: nothing goes (cut %zu)",
       cut);
    free(v);
    tb_fs_rm_rf(dir);
}


/* ---- seq_per_batch: records built byte by byte as RocksDB 7.8 writes them ---- */

struct wb {
    unsigned char b[4096];
    size_t n;
};

static void wb_start(struct wb *w, uint64_t seq, uint32_t count)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 8; i++)
        w->b[i] = (unsigned char)(seq >> (8 * i));
    for (int i = 0; i < 4; i++)
        w->b[8 + i] = (unsigned char)(count >> (8 * i));
    w->n = 12;
}

static void wb_slice(struct wb *w, const char *s)
{
    size_t l = strlen(s);
    w->b[w->n++] = (unsigned char)l;
    memcpy(w->b + w->n, s, l);
    w->n += l;
}

static void wb_tag(struct wb *w, unsigned tag)
{
    w->b[w->n++] = (unsigned char)tag;
}

/* Put (cf 0: tag 0x1, else 0x5 with the cf), Delete (0x0 / 0x4), Merge (0x2 / 0x6). */
static void wb_op(struct wb *w, unsigned tag0, uint32_t cf, const char *k, const char *v)
{
    static const unsigned cf_tag[] = { 0x4, 0x5, 0x6 };
    if (cf) {
        wb_tag(w, cf_tag[tag0]);
        w->b[w->n++] = (unsigned char)cf;
    } else {
        wb_tag(w, tag0);
    }
    wb_slice(w, k);
    if (v)
        wb_slice(w, v);
}
#define PUT(w, cf, k, v) wb_op(w, 0x1, cf, k, v)
#define DEL(w, cf, k) wb_op(w, 0x0, cf, k, NULL)
#define MERGE(w, cf, k, v) wb_op(w, 0x2, cf, k, v)
static void wb_marker(struct wb *w, unsigned tag, const char *xid)
{
    wb_tag(w, tag);
    if (xid)
        wb_slice(w, xid);
}

/* The sequences of a record's data ops and its end, as "s1,s2,...>end+unlogged". */
static const char *spb_seqs(const struct wb *w)
{
    static char out[512];
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    struct tb_wb_seq sq;
    size_t n = 0;
    uint64_t seq;
    tb_wb_init(&it, w->b, w->n);
    tb_wb_seq_init(&sq, it.seq);
    out[0] = 0;
    while (tb_wb_next(&it, &e) == 1 && tb_wb_seq_step(&sq, &e, &seq) == 0)
        if (tb_wb_consumes_seq(e.kind))
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%llu", n ? "," : "", (unsigned long long)seq);
    snprintf(out + n, sizeof out - n, ">%llu+%llu", (unsigned long long)tb_wb_seq_end(&sq),
             (unsigned long long)sq.unlogged);
    tb_wb_seq_free(&sq);
    return out;
}

static void test_spb_seqs(void)
{
    struct wb w;
    /* db->Put under WRITE_PREPARED: "1,1,20,0,NOOP PUT(0) : 0x7031 NOOP", next record at 3. */
    wb_start(&w, 1, 1);
    wb_tag(&w, 0xD);
    PUT(&w, 0, "p1", "v");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), "1>2+1", "plain write: one sub-batch, the trailing Noop ends it, one unlogged publish");
    /* "5,3,28,62,PUT a PUT b PUT a NOOP": the repeated key starts a sub-batch. */
    wb_start(&w, 5, 3);
    PUT(&w, 0, "a", "2");
    PUT(&w, 0, "b", "2");
    PUT(&w, 0, "a", "3");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), "5,5,6>7+1", "a key repeated in a sub-batch starts the next one");
    /* "13,2,24,177,NOOP PUT t4 DELETE t4 NOOP": a Delete of the same key too. */
    wb_start(&w, 13, 2);
    wb_tag(&w, 0xD);
    PUT(&w, 0, "t4", "v");
    DEL(&w, 0, "t4");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), "13,14>15+1", "a Put then a Delete of one key: two sub-batches");
    wb_start(&w, 23, 2);
    PUT(&w, 1, "a", "1");
    PUT(&w, 0, "a", "4");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), "23,23>24+1", "one key in two column families is no repeat");
    /* "16,3,34,208,BEGIN_PREPARE(false) PUT q1 PUT q2 MERGE m END_PREPARE(x1)", then COMMIT at 17. */
    wb_start(&w, 16, 3);
    wb_marker(&w, 0x12, NULL);
    PUT(&w, 0, "q1", "v");
    PUT(&w, 0, "q2", "v");
    MERGE(&w, 0, "m", "1");
    wb_marker(&w, 0xA, "x1");
    is_str(spb_seqs(&w), "16,16,16>17+0", "a persisted-prepare section is one sub-batch, no publish owed");
    wb_start(&w, 17, 0);
    wb_marker(&w, 0xB, "x1");
    is_str(spb_seqs(&w), ">18+0", "a Commit takes its own sequence");
    /* "19,2,26,328,PUT q1 DELETE r9 ROLLBACK(x2)", then "20,0,15,361,NOOP" (LogData "" + Noop). */
    wb_start(&w, 19, 2);
    PUT(&w, 0, "q1", "v");
    DEL(&w, 0, "r9");
    wb_marker(&w, 0xC, "x2");
    is_str(spb_seqs(&w), "19,19>20+0", "a rollback batch and its marker: one sub-batch");
    wb_start(&w, 20, 0);
    wb_tag(&w, 0x3);
    wb_slice(&w, "");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), ">21+0", "the rollback's publish (empty LogData, Noop): one sequence, in the WAL");
    /* Several unprepared sections of one transaction, each its own record and sequence. */
    wb_start(&w, 25, 1);
    wb_marker(&w, 0x13, NULL);
    PUT(&w, 1, "uc0", "v");
    wb_marker(&w, 0xA, "u4");
    is_str(spb_seqs(&w), "25>26+0", "an unprepared section: one sub-batch");
    /* A write group: a plain batch, a prepare section and a commit in one record. */
    wb_start(&w, 40, 2);
    wb_tag(&w, 0xD);
    PUT(&w, 0, "a", "1");
    wb_tag(&w, 0xD);
    wb_marker(&w, 0x12, NULL);
    PUT(&w, 0, "a", "2");
    wb_marker(&w, 0xA, "x9");
    wb_marker(&w, 0xB, "x8");
    is_str(spb_seqs(&w), "40,41>43+1",
           "a merged write group: each writer's batch its sub-batch, the leading Noop ignored");
    wb_start(&w, 50, 1);
    PUT(&w, 0, "a", "1");
    is_str(spb_seqs(&w), "50>51+0", "a record without a closing marker still takes its sequence");
    wb_start(&w, 60, 2);
    wb_tag(&w, 0xF);
    wb_slice(&w, "a");
    wb_slice(&w, "b");
    wb_tag(&w, 0xF);
    wb_slice(&w, "a");
    wb_slice(&w, "b");
    wb_tag(&w, 0xD);
    is_str(spb_seqs(&w), "60,60>61+1", "DeleteRange is not counted for repeats (one sub-batch, as RocksDB writes it)");

    /* Policy hints. */
    enum tb_policy pol;
    wb_start(&w, 1, 0);
    wb_marker(&w, 0x13, NULL);
    PUT(&w, 0, "k", "v");
    wb_marker(&w, 0xA, "x");
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 2 && pol == TB_POLICY_UNPREPARED, "0x13: unprepared, certain");
    w.b[12] = 0x12;
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 2 && pol == TB_POLICY_PREPARED, "0x12: prepared, certain");
    w.b[12] = 0x09;
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 2 && pol == TB_POLICY_COMMITTED, "0x09: committed, certain");
    wb_start(&w, 1, 1);
    wb_tag(&w, 0xD);
    PUT(&w, 0, "k", "v");
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 1 && pol == TB_POLICY_COMMITTED, "ending in a data op: committed");
    wb_tag(&w, 0xD);
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 1 && pol == TB_POLICY_PREPARED, "ending in a Noop after data: prepared");
    wb_start(&w, 1, 0);
    wb_marker(&w, 0xB, "x");
    ok(tb_wb_policy_hint(w.b, w.n, &pol) == 0 && pol == TB_POLICY_UNKNOWN, "a lone Commit tells nothing");

    /* tb_record_scan: pending transactions across unprepared sections. */
    struct tb_pending *p = tb_pending_new();
    struct tb_record_info info;
    wb_start(&w, 25, 1);
    wb_marker(&w, 0x13, NULL);
    PUT(&w, 1, "uc0", "v");
    wb_marker(&w, 0xA, "u4");
    ok(tb_record_scan(p, TB_POLICY_UNPREPARED, w.b, w.n, &info, NULL, NULL) == 0 && info.next_seq == 26, "section 1");
    w.b[0] = 26;
    ok(tb_record_scan(p, TB_POLICY_UNPREPARED, w.b, w.n, &info, NULL, NULL) == 0 && info.next_seq == 27, "section 2");
    is_int(tb_pending_min(p, 99), 0, "the transaction is pending");
    wb_start(&w, 27, 0);
    wb_marker(&w, 0xB, "u4");
    ok(tb_record_scan(p, TB_POLICY_UNPREPARED, w.b, w.n, &info, NULL, NULL) == 0 && info.next_seq == 28 &&
           !info.unknown_commit,
       "its Commit takes one sequence");
    is_int(tb_pending_min(p, 99), 99, "and closes every section");
    ok(tb_record_scan(p, TB_POLICY_UNPREPARED, w.b, w.n, &info, NULL, NULL) == 0 && info.unknown_commit &&
           info.next_seq == 28,
       "a Commit of an unseen transaction: still one sequence, flagged");
    ok(tb_record_scan(p, TB_POLICY_COMMITTED, w.b, w.n, &info, NULL, NULL) == 0 && info.next_seq == 27,
       "the same Commit decoded write-committed consumes nothing unknown (unchanged)");
    wb_start(&w, 1, 0);
    wb_marker(&w, 0x9, NULL);
    PUT(&w, 0, "k", "v");
    wb_marker(&w, 0xA, "x");
    ok(tb_record_scan(p, TB_POLICY_PREPARED, w.b, w.n, &info, NULL, NULL) == TB_EVERIFY,
       "a write-committed prepare in a write-prepared log is refused: %s", tb_error_last());
    tb_pending_free(p);
}

/* A fake database directory whose 000004.log holds the records, one FULL fragment each. */
static void write_log_n(const char *dir, int number, struct wb *recs, int n)
{
    static unsigned char f[65536];
    char path[512];
    size_t pos = 0;
    memset(f, 0, sizeof f);
    for (int i = 0; i < n; i++)
        pos = frag(f, pos, 1, recs[i].b, recs[i].n, 0);
    snprintf(path, sizeof path, "%s/%06d.log", dir, number);
    write_file(path, f, pos);
}

static void write_log(const char *dir, struct wb *recs, int n)
{
    write_log_n(dir, 4, recs, n);
}

struct rec_list {
    int n;
    uint64_t first[32], next[32];
    uint32_t flags[32];
};

static int list_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    struct rec_list *l = arg;
    (void)segment;
    if (l->n < 32) {
        l->first[l->n] = r->first_seq;
        l->next[l->n] = r->next_seq;
        l->flags[l->n] = r->flags;
    }
    l->n++;
    return 0;
}

/* Archives dir/db into dir/arch (cf.tsv given, so no database is opened); the partial
 * segment is closed unless keep_partial. */
static int archive_pass(const char *dir, enum tb_policy policy, uint64_t *n, int keep_partial)
{
    char db[512], arch[512], cf[600];
    struct tb_archiver_opts o = { 0 };
    tb_archiver *a = NULL;
    int rc;
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(arch, sizeof arch, "%s/arch", dir);
    snprintf(cf, sizeof cf, "%s/cf.tsv", arch);
    tb_fs_mkdir_p(arch, 0755);
    const char *cfs = "# id\tname\tfirst_seen_seq\n0\tdefault\t1\n1\tlate\t1\n";
    tb_fs_write_atomic(cf, cfs, strlen(cfs), 0644);
    o.db_path = db;
    o.wal_dir = arch;
    o.segment_size = 1 << 20;
    o.segment_ns = 1000000000000LL;
    o.level = 1;
    o.policy = policy;
    if ((rc = tb_archiver_open(&a, &o)) == 0 && (rc = tb_archiver_poll(a, n)) == 0 && !keep_partial)
        rc = tb_archiver_rotate(a, 1);
    tb_archiver_free(a);
    return rc;
}

static int archive_once(const char *dir, enum tb_policy policy, uint64_t *n)
{
    return archive_pass(dir, policy, n, 0);
}

/* The write-prepared sequence of test_spb_seqs, as one log: plain writes owe a sequence
 * each that the next record covers; a jump beyond what is owed is a gap. */
static void build_wp_log(struct wb *r)
{
    wb_start(&r[0], 1, 1);
    wb_tag(&r[0], 0xD);
    PUT(&r[0], 0, "p1", "v");
    wb_tag(&r[0], 0xD); /* 1 (+2 unlogged) */
    wb_start(&r[1], 3, 3);
    PUT(&r[1], 0, "a", "2");
    PUT(&r[1], 0, "b", "2");
    PUT(&r[1], 0, "a", "3");
    wb_tag(&r[1], 0xD); /* 3,4 (+5) */
    wb_start(&r[2], 6, 2);
    wb_marker(&r[2], 0x12, NULL);
    PUT(&r[2], 0, "q1", "v");
    PUT(&r[2], 1, "q2", "v");
    wb_marker(&r[2], 0xA, "x1"); /* 6 */
    wb_start(&r[3], 7, 2);
    wb_marker(&r[3], 0x12, NULL);
    PUT(&r[3], 0, "q1", "ROLLED");
    PUT(&r[3], 0, "keep", "K");
    PUT(&r[3], 0, "r9", "ROLLED");
    wb_marker(&r[3], 0xA, "x2"); /* 7 */
    wb_start(&r[4], 8, 0);
    wb_marker(&r[4], 0xB, "x1"); /* 8 */
    wb_start(&r[5], 9, 2);
    PUT(&r[5], 0, "q1", "v");
    DEL(&r[5], 0, "r9");
    wb_marker(&r[5], 0xC, "x2"); /* 9 */
    wb_start(&r[6], 10, 0);
    wb_tag(&r[6], 0x3);
    wb_slice(&r[6], "");
    wb_tag(&r[6], 0xD); /* 10 */
    wb_start(&r[7], 11, 1);
    wb_marker(&r[7], 0x13, NULL);
    PUT(&r[7], 1, "u0", "v");
    wb_marker(&r[7], 0xA, "u1"); /* 11 */
    wb_start(&r[8], 12, 1);
    wb_marker(&r[8], 0x13, NULL);
    PUT(&r[8], 1, "u1", "v");
    wb_marker(&r[8], 0xA, "u1"); /* 12 */
    wb_start(&r[9], 13, 1);
    wb_marker(&r[9], 0x12, NULL);
    DEL(&r[9], 0, "a");
    wb_marker(&r[9], 0xA, "u1"); /* 13 */
    wb_start(&r[10], 14, 0);
    wb_marker(&r[10], 0xB, "u1"); /* 14 */
    wb_start(&r[11], 15, 1);
    wb_marker(&r[11], 0x13, NULL);
    PUT(&r[11], 1, "gone", "v");
    wb_marker(&r[11], 0xA, "u2"); /* 15 */
    wb_start(&r[12], 16, 1);
    DEL(&r[12], 1, "gone");
    wb_marker(&r[12], 0xC, "u2"); /* 16 */
    wb_start(&r[13], 17, 0);
    wb_tag(&r[13], 0x3);
    wb_slice(&r[13], "");
    wb_tag(&r[13], 0xD); /* 17 */
}

static void test_spb_archive(void)
{
    char dir[] = "/tmp/test_wal_spb.XXXXXX", db[512], arch[512], state[600], *text = NULL;
    struct wb r[16];
    struct rec_list l = { 0 };
    uint64_t n = 0, recs, first, next;
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(arch, sizeof arch, "%s/arch", dir);
    snprintf(state, sizeof state, "%s/state.tsv", arch);
    tb_fs_mkdir_p(db, 0755);
    build_wp_log(r);
    write_log(db, r, 14);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0 && n == 14, "a write-prepared log archives (%llu records)",
       (unsigned long long)n);
    tb_seg_walk(arch, NULL, list_fn, &l);
    ok(l.n == 14 && l.first[0] == 1 && l.next[0] == 2 && l.first[1] == 2 && l.next[1] == 5 && l.first[2] == 5 &&
           l.next[2] == 7 && l.first[3] == 7 && l.next[13] == 18,
       "each record covers the unlogged sequences before it");
    ok((l.flags[0] & TB_SEG_FLAG_RESYNC) && (l.flags[1] & TB_SEG_FLAG_SEQ_PER_BATCH) &&
           !(l.flags[4] & TB_SEG_FLAG_RESYNC),
       "flagged seq_per_batch; only the first record resyncs");
    ok(tb_wal_archive_check(arch, NULL, &recs, &first, &next) == 0 && recs == 14 && first == 1 && next == 18,
       "--check: continuous, 1..17");
    tb_fs_read_file(state, &text, NULL);
    ok(text && strstr(text, "policy\twrite_unprepared\n") && strstr(text, "unlogged\t0\t4\n"),
       "state.tsv records the policy (detected: an unprepared section) and the sequences owed");
    free(text);
    text = NULL;

    /* More WAL after a restart: a plain write owes one; the next record may skip it. */
    wb_start(&r[14], 18, 1);
    wb_tag(&r[14], 0xD);
    PUT(&r[14], 0, "z", "1");
    wb_tag(&r[14], 0xD);
    wb_start(&r[15], 20, 1);
    PUT(&r[15], 0, "z", "2");
    wb_tag(&r[15], 0xD);
    write_log(db, r, 16);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0 && n == 2, "after a restart: the policy from state.tsv, 2 more");
    ok(tb_wal_archive_check(arch, NULL, &recs, &first, &next) == 0 && next == 21, "continuous to 20");
    ok(archive_once(dir, TB_POLICY_COMMITTED, &n) == TB_EUSAGE,
       "--write-policy contradicting the archive is refused: %s", tb_error_last());
    /* A jump of two where one is owed: a gap, exit 4 (an archive that has begun). */
    tb_fs_rm_rf(arch);
    wb_start(&r[14], 18, 1);
    wb_tag(&r[14], 0xD);
    PUT(&r[14], 0, "z", "1");
    wb_tag(&r[14], 0xD);
    write_log(db, r, 15);
    archive_once(dir, TB_POLICY_PREPARED, &n);
    wb_start(&r[15], 21, 1);
    PUT(&r[15], 0, "y", "1");
    wb_tag(&r[15], 0xD);
    write_log(db, r, 16);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == TB_EGAP && strstr(tb_error_last(), "19..20"),
       "a jump past the sequences owed is a gap: %s", tb_error_last());
    /* A restart of a write-prepared DB takes one sequence past the recovered WAL, in a
     * new WAL file: after a Commit (nothing owed) the next file starts one later. */
    tb_fs_rm_rf(arch);
    write_log(db, r, 11); /* ends with the Commit at 14 */
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0, "archived up to the Commit at 14");
    wb_start(&r[11], 16, 1);
    wb_tag(&r[11], 0xD);
    PUT(&r[11], 0, "after", "restart");
    wb_tag(&r[11], 0xD);
    write_log(db, r, 12);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == TB_EGAP, "one sequence more in the same WAL file is a gap");
    write_log(db, r, 11);
    write_log_n(db, 5, r + 11, 1);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0 && n == 1,
       "but the first record of a new WAL file may skip one (restart)");
    /* Now 17 is expected and one is owed (the plain write at 16): a restart may take 18,
     * so the next file may start at 19, not later. */
    wb_start(&r[12], 20, 1);
    PUT(&r[12], 0, "x", "1");
    wb_tag(&r[12], 0xD);
    write_log_n(db, 6, r + 12, 1);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == TB_EGAP && strstr(tb_error_last(), "17..19"),
       "only one more than owed: the next file at 20 is a gap: %s", tb_error_last());
    r[12].b[0] = 19;
    write_log_n(db, 6, r + 12, 1);
    ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0 && n == 1, "at 19 it is not");
    {
        char path[600];
        snprintf(path, sizeof path, "%s/000005.log", db);
        unlink(path);
        snprintf(path, sizeof path, "%s/000006.log", db);
        unlink(path);
    }
    build_wp_log(r);
    /* A crash between the partial segment's flush and the state's rewrite: the records
     * past the state bring it forward (policy, what is owed) at the next start. */
    {
        char *old_state = NULL;
        size_t old_len = 0;
        tb_fs_rm_rf(arch);
        write_log(db, r, 4);
        archive_pass(dir, TB_POLICY_UNKNOWN, &n, 1);
        tb_fs_read_file(state, &old_state, &old_len);
        wb_start(&r[14], 18, 1);
        wb_tag(&r[14], 0xD);
        PUT(&r[14], 0, "z", "1");
        wb_tag(&r[14], 0xD); /* 18, owes one */
        wb_start(&r[15], 20, 1);
        PUT(&r[15], 0, "z", "2");
        wb_tag(&r[15], 0xD); /* 20: covers 19 */
        write_log(db, r, 15);
        ok(archive_pass(dir, TB_POLICY_UNKNOWN, &n, 1) == 0 && n == 11, "11 more records into the partial segment");
        tb_fs_write_atomic(state, old_state, old_len, 0644); /* the state from before them */
        free(old_state);
        write_log(db, r, 16);
        ok(archive_once(dir, TB_POLICY_UNKNOWN, &n) == 0 && n == 1,
           "after a state from before the last flush: caught up from the partial segment (the policy, one owed), "
           "then 1 new record%s%s",
           n == 1 ? "" : ": ", n == 1 ? "" : tb_error_last());
        ok(tb_wal_archive_check(arch, NULL, &recs, &first, &next) == 0 && recs == 16 && next == 21,
           "continuous, 16 records, 1..20");
        build_wp_log(r);
    }
    /* Told write_committed, the unprepared markers are refused. */
    tb_fs_rm_rf(arch);
    ok(archive_once(dir, TB_POLICY_COMMITTED, &n) == TB_EVERIFY && strstr(tb_error_last(), "write_prepared"),
       "a write-committed archive of this log is refused at its first marker: %s", tb_error_last());

    {
        uint64_t end = 0;
        enum tb_policy used;
        write_log(db, r, 14);
        ok(tb_wal_files_end(db, TB_POLICY_UNKNOWN, &end, &used) == 0 && end == 18 && used == TB_POLICY_UNPREPARED,
           "the WAL files end at 18 (%llu), write_unprepared", (unsigned long long)end);
        write_log(db, r, 5);
        ok(tb_wal_files_end(db, TB_POLICY_PREPARED, &end, NULL) == 0 && end == 9, "cut after the Commit at 8: 9 (%llu)",
           (unsigned long long)end);
        write_log(db, r, 2);
        ok(tb_wal_files_end(db, TB_POLICY_UNKNOWN, &end, &used) == 0 && end == 5 && used == TB_POLICY_PREPARED,
           "after a plain write at 3..4: 5, the unlogged one not counted (%llu)", (unsigned long long)end);
    }
    /* Replay into an empty database: commits applied at their Commit, rollbacks never. */
    tb_fs_rm_rf(arch);
    write_log(db, r, 14);
    archive_once(dir, TB_POLICY_UNKNOWN, &n);
    {
        char tgt[512], *err = NULL;
        rocksdb_options_t *o = rocksdb_options_create();
        const char *names[2] = { "default", "late" };
        const rocksdb_options_t *co[2] = { o, o };
        rocksdb_column_family_handle_t *h[2];
        struct tb_replay_opts ro = { 0 };
        struct tb_replay_result res;
        snprintf(tgt, sizeof tgt, "%s/target", dir);
        rocksdb_options_set_create_if_missing(o, 1);
        rocksdb_close(rocksdb_open(o, tgt, &err));
        ro.wal_dir = arch;
        ro.db_path = tgt;
        ro.target_seq = 13;
        ok(tb_replay_run(&ro, &res) == 0, "replay to sequence 13");
        rocksdb_t *t = rocksdb_open_column_families(o, tgt, 2, names, co, h, &err);
        rocksdb_readoptions_t *rd = rocksdb_readoptions_create();
        size_t vl;
        char *v;
/* The value as a string: RocksDB's copy has no terminator, so it is copied into one. */
#define GET(cf, k) \
    (v = rocksdb_get_cf(t, rd, h[cf], k, strlen(k), &vl, &err), v ? (v = realloc(v, vl + 1), v[vl] = 0, v) : "-")
        ok(t != NULL, "the target opens");
        is_str(GET(0, "p1"), "v", "a plain write");
        free(v);
        /* 13 is u1's last section; its Commit (14) follows before any other sequence, and
         * RocksDB never publishes a Commit's own sequence: the state it calls 13 holds u1. */
        is_str(GET(0, "a"), "-", "a write with a repeated key, then deleted by u1, whose Commit directly follows 13");
        free(v);
        is_str(GET(0, "q1"), "v", "a committed prepare, applied at its Commit");
        free(v);
        is_str(GET(1, "q2"), "v", "in its column family");
        free(v);
        is_str(GET(0, "r9"), "-",
               "no byte of the rolled-back transaction (its rollback batch restores q1, deletes r9)");
        is_str(GET(0, "keep"), "K", "what the rollback batch does not restore stays, as in RocksDB (its merges)");
        free(v);
        is_str(GET(1, "u0"), "v",
               "unprepared sections committed right after the target's last sub-batch: applied as of 13");
        free(v);
        is_str(GET(1, "gone"), "-", "a section after the target (15): not applied");
        rocksdb_column_family_handle_destroy(h[0]);
        rocksdb_column_family_handle_destroy(h[1]);
        rocksdb_close(t);
        /* All of it, into a new empty database: the unprepared transaction's three sections
         * at its Commit (14). */
        snprintf(tgt, sizeof tgt, "%s/target2", dir);
        rocksdb_close(rocksdb_open(o, tgt, &err));
        ro.target_seq = 0;
        ok(tb_replay_run(&ro, &res) == 0 && res.reached_seq == 16, "replay to the end (reached %llu)",
           (unsigned long long)res.reached_seq);
        t = rocksdb_open_column_families(o, tgt, 2, names, co, h, &err);
        is_str(GET(1, "u0"), "v", "unprepared section 1, applied at the Commit");
        free(v);
        is_str(GET(1, "u1"), "v", "section 2");
        free(v);
        is_str(GET(0, "a"), "-", "the prepared last section (a Delete)");
        is_str(GET(1, "gone"), "-", "an unprepared transaction rolled back without a prepare: nothing");
#undef GET
        rocksdb_readoptions_destroy(rd);
        rocksdb_column_family_handle_destroy(h[0]);
        rocksdb_column_family_handle_destroy(h[1]);
        rocksdb_close(t);
        rocksdb_options_destroy(o);
    }
    tb_fs_rm_rf(dir);
}

/* Retention: a write-unprepared transaction's sections in several segments are closed by
 * its one Commit. */
static void test_unneeded_prefix_sections(void)
{
    char dir[] = "/tmp/test_wal_ret2.XXXXXX";
    static const unsigned char sec[] = { 0x13, 0x1, 1, 'k', 1, 'v', 0xA, 2, 'u', '1' }, commit[] = { 0xB, 2, 'u', '1' },
                               put[] = { 0x1, 1, 'k', 1, 'v', 0xD };
    struct tb_seg_info *v = NULL;
    size_t n = 0, cut = 99;
    tb_seg_writer *w = NULL;
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    tb_seg_writer_open(&w, dir, 3, NULL);
    add_record(w, 1, 2, sec, sizeof sec); /* segment 0: section 1 */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 2, 3, sec, sizeof sec); /* segment 1: section 2 */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 3, 4, commit, sizeof commit); /* segment 2: the Commit */
    tb_seg_writer_rotate(w, NULL);
    add_record(w, 4, 5, put, sizeof put); /* segment 3 */
    tb_seg_writer_rotate(w, NULL);
    tb_seg_writer_free(w);
    ok(tb_seg_index_load(dir, NULL, &v, &n) == 0 && n == 4,
       "an archive of four segments, a transaction in two sections");
    ok(tb_wal_archive_unneeded_prefix(dir, NULL, v, n, 3, &cut) == 0 && cut == 3,
       "base 3: its Commit closes both sections (cut %zu)", cut);
    ok(tb_wal_archive_unneeded_prefix(dir, NULL, v, n, 2, &cut) == 0 && cut == 0,
       "base 2: the first section's segment stays (cut %zu)", cut);
    free(v);
    tb_fs_rm_rf(dir);
}

/* Found by fuzzing (tests/fuzz/segment.c): a record header whose length is damaged to near
 * 4 GiB made the reader allocate that much before reading; where memory is limited that is
 * "out of memory" instead of the damaged record it is. Read in a child with its address
 * space limited (not under ASan, whose shadow memory needs terabytes of it). */
static void test_segment_bad_length(void)
{
#if defined(__SANITIZE_ADDRESS__)
    ok(1, "# SKIP the address-space limit does not go with ASan");
#else
    char dir[] = "/tmp/tb-test-seglen-XXXXXX", path[64];
    unsigned char plain[8 + 56 + 16] = "TWSEG001", z[256];
    size_t zn;
    int status = -1;
    pid_t pid;
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm) {
        if (fscanf(statm, "%ld", &pages) != 1)
            pages = 0;
        fclose(statm);
    }
    /* A record header: its magic "TWR1", then a length of 0xfffffff0, then little else. */
    memcpy(plain + 8, "TWR1", 4);
    memcpy(plain + 12, "\xf0\xff\xff\xff", 4);
    zn = ZSTD_compress(z, sizeof z, plain, sizeof plain, 3);
    ok(mkdtemp(dir) && !ZSTD_isError(zn), "a segment with a damaged record length");
    snprintf(path, sizeof path, "%s/00000000000000000001-00000000000000000002.wal.zst", dir);
    write_file(path, z, zn);
    if ((pid = fork()) == 0) {
        struct rlimit lim;
        tb_seg_reader *rd = NULL;
        struct tb_seg_record r;
        int rc;
        lim.rlim_cur = lim.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
        if (pages <= 0 || setrlimit(RLIMIT_AS, &lim) < 0)
            _exit(2);
        rc = tb_seg_reader_open(&rd, path, NULL);
        if (rc == 0)
            rc = tb_seg_reader_next(rd, &r);
        tb_seg_reader_free(rd);
        _exit(rc == TB_EVERIFY ? 0 : 1);
    }
    ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "is refused as damaged (TB_EVERIFY), with no 4 GiB allocation (exit %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    tb_fs_rm_rf(dir);
#endif
}

int main(void)
{
    test_crc();
    test_batch();
    test_reader();
    test_index_adopt();
    test_unneeded_prefix();
    test_unneeded_prefix_sections();
    test_spb_seqs();
    test_spb_archive();
    test_segment_bad_length();
    return done_testing();
}
