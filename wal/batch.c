/* batch: WriteBatch records as db/write_batch.cc writes them: [seq:8][count:4] then entries
 * [tag:1][cf:varint32 for the _CF tags][fields as varint32-prefixed slices]. */
#include "batch.h"
#include "error.h"

#include <string.h>

/* Tags, from db/dbformat.h (ValueType) of RocksDB 7.8. */
enum {
    T_DELETION = 0x0, T_VALUE = 0x1, T_MERGE = 0x2, T_LOG_DATA = 0x3,
    T_CF_DELETION = 0x4, T_CF_VALUE = 0x5, T_CF_MERGE = 0x6, T_SINGLE_DELETION = 0x7,
    T_CF_SINGLE_DELETION = 0x8, T_BEGIN_PREPARE = 0x9, T_END_PREPARE = 0xA, T_COMMIT = 0xB,
    T_ROLLBACK = 0xC, T_NOOP = 0xD, T_CF_RANGE_DELETION = 0xE, T_RANGE_DELETION = 0xF,
    T_CF_BLOB_INDEX = 0x10, T_BLOB_INDEX = 0x11, T_BEGIN_PERSISTED_PREPARE = 0x12,
    T_BEGIN_UNPREPARE = 0x13, T_DELETION_WITH_TS = 0x14, T_COMMIT_WITH_TS = 0x15,
    T_WIDE_COLUMN_ENTITY = 0x16, T_CF_WIDE_COLUMN_ENTITY = 0x17,
};

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int tb_wb_init(struct tb_wb_iter *it, const void *rec, size_t len)
{
    const unsigned char *p = rec;
    if (len < TB_WB_HEADER)
        return tb_error_set(TB_EVERIFY, "WriteBatch of %zu bytes is shorter than its header", len);
    it->rec = p;
    it->seq = get64(p);
    it->count = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    it->p = p + TB_WB_HEADER;
    it->end = p + len;
    return 0;
}

static int varint32(struct tb_wb_iter *it, uint32_t *v)
{
    uint32_t r = 0;
    for (int shift = 0; shift <= 28 && it->p < it->end; shift += 7) {
        unsigned b = *it->p++;
        r |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int slice(struct tb_wb_iter *it, const unsigned char **s, size_t *n)
{
    uint32_t len;
    if (varint32(it, &len) < 0 || (size_t)(it->end - it->p) < len)
        return -1;
    *s = it->p;
    *n = len;
    it->p += len;
    return 0;
}

int tb_wb_next(struct tb_wb_iter *it, struct tb_wb_entry *e)
{
    unsigned tag;
    int bad = 0;
    if (it->p >= it->end)
        return 0;
    memset(e, 0, sizeof *e);
    e->offset = (size_t)(it->p - it->rec);
    tag = *it->p++;
    e->tag = tag;
    switch (tag) {
    case T_CF_DELETION: case T_CF_VALUE: case T_CF_MERGE: case T_CF_SINGLE_DELETION:
    case T_CF_RANGE_DELETION: case T_CF_BLOB_INDEX: case T_CF_WIDE_COLUMN_ENTITY:
        bad = varint32(it, &e->cf) < 0;
        break;
    default:
        break;
    }
    switch (tag) {
    case T_VALUE: case T_CF_VALUE:
        e->kind = TB_WB_PUT;
        bad |= slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0;
        break;
    case T_MERGE: case T_CF_MERGE:
        e->kind = TB_WB_MERGE;
        bad |= slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0;
        break;
    case T_BLOB_INDEX: case T_CF_BLOB_INDEX:
        e->kind = TB_WB_BLOB_INDEX;
        bad |= slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0;
        break;
    case T_WIDE_COLUMN_ENTITY: case T_CF_WIDE_COLUMN_ENTITY:
        e->kind = TB_WB_PUT_ENTITY;
        bad |= slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0;
        break;
    case T_DELETION: case T_CF_DELETION:
        e->kind = TB_WB_DELETE;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    case T_SINGLE_DELETION: case T_CF_SINGLE_DELETION:
        e->kind = TB_WB_SINGLE_DELETE;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    case T_RANGE_DELETION: case T_CF_RANGE_DELETION:
        e->kind = TB_WB_DELETE_RANGE;
        bad |= slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0;
        break;
    case T_LOG_DATA:
        e->kind = TB_WB_LOG_DATA;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    case T_NOOP:
        e->kind = TB_WB_NOOP;
        break;
    case T_BEGIN_PREPARE: case T_BEGIN_PERSISTED_PREPARE: case T_BEGIN_UNPREPARE:
        e->kind = TB_WB_BEGIN_PREPARE;
        break;
    case T_END_PREPARE:
        e->kind = TB_WB_END_PREPARE;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    case T_COMMIT:
        e->kind = TB_WB_COMMIT;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    case T_COMMIT_WITH_TS:
        e->kind = TB_WB_COMMIT;
        bad |= slice(it, &e->value, &e->vlen) < 0 || slice(it, &e->key, &e->klen) < 0;
        break;
    case T_ROLLBACK:
        e->kind = TB_WB_ROLLBACK;
        bad |= slice(it, &e->key, &e->klen) < 0;
        break;
    default:
        /* Includes DeletionWithTimestamp: user-defined timestamps are not used by ThemisDB
         * and replaying them needs the comparator's timestamp size; refuse, don't guess. */
        return tb_error_set(TB_EVERIFY, "unknown or unsupported WriteBatch tag 0x%02x at byte %zu of the record", tag,
                            e->offset);
    }
    if (bad)
        return tb_error_set(TB_EVERIFY, "truncated WriteBatch entry (tag 0x%02x) at byte %zu of the record", tag, e->offset);
    return 1;
}

int tb_wb_stamp(const struct tb_wb_entry *e, int64_t *ns)
{
    uint64_t v = 0;
    if (e->kind != TB_WB_LOG_DATA || e->klen != 12 || memcmp(e->key, "TSv1", 4) != 0)
        return 0;
    for (int i = 11; i >= 4; i--)
        v = v << 8 | e->key[i];
    *ns = (int64_t)v;
    return 1;
}

int tb_wb_consumes_seq(enum tb_wb_kind k)
{
    return k <= TB_WB_BLOB_INDEX;
}

const char *tb_wb_kind_name(enum tb_wb_kind k)
{
    static const char *names[] = { "PUT", "DELETE", "SINGLE_DELETE", "DELETE_RANGE", "MERGE", "PUT_ENTITY",
                                   "BLOB_INDEX", "LOG_DATA", "NOOP", "BEGIN_PREPARE", "END_PREPARE", "COMMIT",
                                   "ROLLBACK" };
    return k <= TB_WB_ROLLBACK ? names[k] : "?";
}
