/* test_wb_builder: the WriteBatch encoder (themis-wal-replay --as-wal-file) round-trips
 * through our decoder for every data kind, in the default and in other column families,
 * with the tags RocksDB writes, multi-byte lengths, empty keys and values; markers are
 * refused; a reset builder starts a fresh record; RocksDB 7.8 itself reads the record
 * (rocksdb_writebatch_create_from counts it and iterates its puts and deletes). */
#include "tap.h"
#include "batch.h"
#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

struct want {
    enum tb_wb_kind kind;
    uint32_t cf;
    const char *key;
    size_t klen;
    const char *value;
    size_t vlen;
    unsigned tag;
};

static int puts_seen, dels_seen;
static void on_put(void *s, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)s; (void)k; (void)kl; (void)v; (void)vl;
    puts_seen++;
}
static void on_del(void *s, const char *k, size_t kl)
{
    (void)s; (void)k; (void)kl;
    dels_seen++;
}

int main(void)
{
    static char big[70000];
    struct tb_wb_builder b;
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    const unsigned char *rec;
    size_t len;
    int n = 0, same = 1, m;
    memset(big, 'v', sizeof big);
    struct want w[] = {
        { TB_WB_PUT, 0, "k1", 2, "v1", 2, 0x01 },
        { TB_WB_PUT, 5, "k2", 2, big, sizeof big, 0x05 },
        { TB_WB_DELETE, 0, "k1", 2, NULL, 0, 0x00 },
        { TB_WB_DELETE, 200, "k3", 2, NULL, 0, 0x04 },
        { TB_WB_SINGLE_DELETE, 0, "s", 1, NULL, 0, 0x07 },
        { TB_WB_SINGLE_DELETE, 3, "s", 1, NULL, 0, 0x08 },
        { TB_WB_DELETE_RANGE, 0, "a", 1, "m", 1, 0x0F },
        { TB_WB_DELETE_RANGE, 1, "a", 1, "z", 1, 0x0E },
        { TB_WB_MERGE, 0, "cdc/changefeed_sequence", 23, "\x01\0\0\0\0\0\0\0", 8, 0x02 },
        { TB_WB_MERGE, 70000, "c", 1, "\x02\0\0\0\0\0\0\0", 8, 0x06 },
        { TB_WB_PUT_ENTITY, 0, "e", 1, "\x00", 1, 0x16 },
        { TB_WB_PUT_ENTITY, 2, "e", 1, "\x00", 1, 0x17 },
        { TB_WB_PUT, 0, "", 0, "", 0, 0x01 },
        { TB_WB_PUT, 1, big, 300, "x", 1, 0x05 },
    };
    size_t nw = sizeof w / sizeof w[0];

    tb_wb_builder_init(&b);
    for (size_t i = 0; i < nw; i++) {
        struct tb_wb_entry in = { .kind = w[i].kind, .cf = w[i].cf, .key = (const unsigned char *)w[i].key,
                                  .klen = w[i].klen, .value = (const unsigned char *)w[i].value, .vlen = w[i].vlen,
                                  .tag = 0x55 /* ignored: the kind and cf decide the tag */ };
        if (tb_wb_builder_add(&b, &in) < 0)
            same = 0;
    }
    ok(same, "every data kind is accepted (%zu entries)", nw);
    is_int(b.count, nw, "the count follows the entries");
    rec = tb_wb_builder_finish(&b, 0x0102030405060708ull, &len);
    ok(tb_wb_init(&it, rec, len) == 0, "the record decodes");
    is_int(it.seq == 0x0102030405060708ull, 1, "its header carries the sequence, little-endian");
    is_int(it.count, nw, "and the count");
    while ((m = tb_wb_next(&it, &e)) == 1) {
        struct want *x = &w[n < (int)nw ? n : 0];
        int vsame = x->kind == TB_WB_DELETE || x->kind == TB_WB_SINGLE_DELETE ||
                    (e.vlen == x->vlen && (!e.vlen || memcmp(e.value, x->value, e.vlen) == 0));
        if (n >= (int)nw || e.kind != x->kind || e.cf != x->cf || e.tag != x->tag || e.klen != x->klen ||
            (e.klen && memcmp(e.key, x->key, e.klen)) || !vsame) {
            if (n < (int)nw)
                diag("entry %d: kind %d/%d cf %u/%u tag 0x%02x/0x%02x", n, e.kind, x->kind, e.cf, x->cf, e.tag, x->tag);
            same = 0;
        }
        n++;
    }
    is_int(m, 0, "the decoder reaches the end without error");
    ok(same && n == (int)nw, "each entry comes back as it went in, with RocksDB's tag for its kind and CF (%d)", n);

    /* RocksDB's own reader: the count and the plain puts and deletes of the default CF. */
    {
        struct tb_wb_builder r;
        rocksdb_writebatch_t *wb;
        struct tb_wb_entry p1 = { .kind = TB_WB_PUT, .key = (const unsigned char *)"a", .klen = 1,
                                  .value = (const unsigned char *)"1", .vlen = 1 };
        struct tb_wb_entry d1 = { .kind = TB_WB_DELETE, .key = (const unsigned char *)"b", .klen = 1 };
        tb_wb_builder_init(&r);
        tb_wb_builder_add(&r, &p1);
        tb_wb_builder_add(&r, &d1);
        tb_wb_builder_add(&r, &p1);
        rec = tb_wb_builder_finish(&r, 42, &len);
        wb = rocksdb_writebatch_create_from((const char *)rec, len);
        is_int(rocksdb_writebatch_count(wb), 3, "RocksDB counts the record's entries");
        rocksdb_writebatch_iterate(wb, NULL, on_put, on_del);
        ok(puts_seen == 2 && dels_seen == 1, "and iterates its puts (%d) and deletes (%d)", puts_seen, dels_seen);
        rocksdb_writebatch_destroy(wb);
        tb_wb_builder_free(&r);
    }

    /* Markers and blob indexes are not plain data. */
    {
        enum tb_wb_kind bad[] = { TB_WB_LOG_DATA, TB_WB_NOOP, TB_WB_BEGIN_PREPARE, TB_WB_END_PREPARE, TB_WB_COMMIT,
                                  TB_WB_ROLLBACK, TB_WB_BLOB_INDEX };
        int refused = 0;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            struct tb_wb_entry in = { .kind = bad[i], .key = (const unsigned char *)"x", .klen = 1 };
            refused += tb_wb_builder_add(&b, &in) == TB_EVERIFY;
        }
        is_int(refused, 7, "markers, LogData and blob indexes are refused (TB_EVERIFY)");
        ok(strstr(tb_error_last(), "BLOB") || strstr(tb_error_last(), "blob"), "naming the kind: %s", tb_error_last());
    }

    /* A reset builder starts a new record; an empty one finishes as a bare header. */
    tb_wb_builder_reset(&b);
    rec = tb_wb_builder_finish(&b, 7, &len);
    ok(len == TB_WB_HEADER && tb_wb_init(&it, rec, len) == 0 && it.count == 0 && it.seq == 7,
       "after a reset: a header only, count 0, the new sequence");
    {
        struct tb_wb_entry in = { .kind = TB_WB_DELETE, .cf = 1, .key = (const unsigned char *)"q", .klen = 1 };
        tb_wb_builder_add(&b, &in);
        rec = tb_wb_builder_finish(&b, 8, &len);
        ok(tb_wb_init(&it, rec, len) == 0 && it.count == 1 && tb_wb_next(&it, &e) == 1 && e.kind == TB_WB_DELETE &&
               e.cf == 1 && tb_wb_next(&it, &e) == 0,
           "and then holds only what was added since");
    }
    tb_wb_builder_free(&b);
    tb_wb_builder_free(&b);
    ok(1, "freeing twice is harmless");
    /* A write-unprepared section under an xid, then its Commit (themis-wal-replay
     * --as-wal-file finishes a transaction the base left prepared so, and a Rollback marker
     * after a rollback batch, for one it rolls back). */
    {
        static const unsigned char xid[] = "tw-0-107";
        struct tb_wb_entry put = { .kind = TB_WB_PUT, .cf = 2, .key = (const unsigned char *)"k", .klen = 1,
                                   .value = (const unsigned char *)"v", .vlen = 1 };
        enum tb_wb_kind kinds[4];
        int k = 0, names = 0;
        tb_wb_builder_init(&b);
        ok(tb_wb_builder_marker(&b, TB_WB_BEGIN_PREPARE, NULL, 0) == 0 && tb_wb_builder_add(&b, &put) == 0 &&
           tb_wb_builder_marker(&b, TB_WB_END_PREPARE, xid, 8) == 0, "a section: begin, a put, end naming the xid");
        rec = tb_wb_builder_finish(&b, 809, &len);
        ok(tb_wb_init(&it, rec, len) == 0 && it.seq == 809 && it.count == 1, "its header: sequence 809, one op (markers count none)");
        while (k < 4 && (m = tb_wb_next(&it, &e)) == 1) {
            kinds[k++] = e.kind;
            names += (e.kind == TB_WB_END_PREPARE && e.klen == 8 && memcmp(e.key, xid, 8) == 0);
            if (e.kind == TB_WB_BEGIN_PREPARE)
                names += e.tag == 0x13;
        }
        ok(k == 3 && kinds[0] == TB_WB_BEGIN_PREPARE && kinds[1] == TB_WB_PUT && kinds[2] == TB_WB_END_PREPARE && names == 2,
           "decodes as BeginUnprepare (0x13), the put, EndPrepare(xid)");
        tb_wb_builder_reset(&b);
        ok(tb_wb_builder_marker(&b, TB_WB_COMMIT, xid, 8) == 0, "a Commit marker");
        rec = tb_wb_builder_finish(&b, 810, &len);
        ok(tb_wb_init(&it, rec, len) == 0 && it.count == 0 && tb_wb_next(&it, &e) == 1 && e.kind == TB_WB_COMMIT &&
           e.tag == 0x0b && e.klen == 8 && memcmp(e.key, xid, 8) == 0 && tb_wb_next(&it, &e) == 0,
           "decodes as one Commit(xid) (0x0b), count 0, %zu bytes", len);
        /* A rollback batch: the keys' earlier values, then Rollback(xid), in one record. */
        tb_wb_builder_reset(&b);
        ok(tb_wb_builder_add(&b, &put) == 0 && tb_wb_builder_marker(&b, TB_WB_ROLLBACK, xid, 8) == 0,
           "a put, then a Rollback marker");
        rec = tb_wb_builder_finish(&b, 811, &len);
        ok(tb_wb_init(&it, rec, len) == 0 && it.count == 1 && tb_wb_next(&it, &e) == 1 && e.kind == TB_WB_PUT &&
               tb_wb_next(&it, &e) == 1 && e.kind == TB_WB_ROLLBACK && e.tag == 0x0c && e.klen == 8 &&
               memcmp(e.key, xid, 8) == 0 && tb_wb_next(&it, &e) == 0,
           "decodes as the put and one Rollback(xid) (0x0c), count 1");
        tb_wb_builder_reset(&b);
        ok(tb_wb_builder_marker(&b, TB_WB_NOOP, NULL, 0) == TB_EVERIFY, "any other marker is refused");
        tb_wb_builder_free(&b);
    }
    return done_testing();
}
