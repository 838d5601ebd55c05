/* batch: WriteBatch records as db/write_batch.cc writes them: [seq:8][count:4] then entries
 * [tag:1][cf:varint32 for the _CF tags][fields as varint32-prefixed slices]. */
#include "batch.h"
#include "bytes.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

/* Tags, from db/dbformat.h (ValueType) of RocksDB 7.8. */
enum {
    T_DELETION = 0x0,
    T_VALUE = 0x1,
    T_MERGE = 0x2,
    T_LOG_DATA = 0x3,
    T_CF_DELETION = 0x4,
    T_CF_VALUE = 0x5,
    T_CF_MERGE = 0x6,
    T_SINGLE_DELETION = 0x7,
    T_CF_SINGLE_DELETION = 0x8,
    T_BEGIN_PREPARE = 0x9,
    T_END_PREPARE = 0xA,
    T_COMMIT = 0xB,
    T_ROLLBACK = 0xC,
    T_NOOP = 0xD,
    T_CF_RANGE_DELETION = 0xE,
    T_RANGE_DELETION = 0xF,
    T_CF_BLOB_INDEX = 0x10,
    T_BLOB_INDEX = 0x11,
    T_BEGIN_PERSISTED_PREPARE = 0x12,
    T_BEGIN_UNPREPARE = 0x13,
    T_DELETION_WITH_TS = 0x14,
    T_COMMIT_WITH_TS = 0x15,
    T_WIDE_COLUMN_ENTITY = 0x16,
    T_CF_WIDE_COLUMN_ENTITY = 0x17,
};

uint64_t tb_wb_header_seq(const void *rec)
{
    return tb_get_le64(rec);
}

int tb_wb_init(struct tb_wb_iter *it, const void *rec, size_t len)
{
    const unsigned char *p = rec;
    if (len < TB_WB_HEADER)
        return tb_error_set(TB_EVERIFY, "WriteBatch of %zu bytes is shorter than its header", len);
    it->rec = p;
    it->seq = tb_get_le64(p);
    it->count = tb_get_le32(p + 8);
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

/* What each tag is and what follows it: a CF id (cf), then slices (K: key, V: value). */
enum { F_NONE, F_K, F_KV, F_VK };
static const struct tag_info {
    unsigned char known, kind, cf, fields;
} tags[] = {
    [T_DELETION] = { 1, TB_WB_DELETE, 0, F_K },
    [T_VALUE] = { 1, TB_WB_PUT, 0, F_KV },
    [T_MERGE] = { 1, TB_WB_MERGE, 0, F_KV },
    [T_LOG_DATA] = { 1, TB_WB_LOG_DATA, 0, F_K },
    [T_CF_DELETION] = { 1, TB_WB_DELETE, 1, F_K },
    [T_CF_VALUE] = { 1, TB_WB_PUT, 1, F_KV },
    [T_CF_MERGE] = { 1, TB_WB_MERGE, 1, F_KV },
    [T_SINGLE_DELETION] = { 1, TB_WB_SINGLE_DELETE, 0, F_K },
    [T_CF_SINGLE_DELETION] = { 1, TB_WB_SINGLE_DELETE, 1, F_K },
    [T_BEGIN_PREPARE] = { 1, TB_WB_BEGIN_PREPARE, 0, F_NONE },
    [T_END_PREPARE] = { 1, TB_WB_END_PREPARE, 0, F_K },
    [T_COMMIT] = { 1, TB_WB_COMMIT, 0, F_K },
    [T_ROLLBACK] = { 1, TB_WB_ROLLBACK, 0, F_K },
    [T_NOOP] = { 1, TB_WB_NOOP, 0, F_NONE },
    [T_CF_RANGE_DELETION] = { 1, TB_WB_DELETE_RANGE, 1, F_KV },
    [T_RANGE_DELETION] = { 1, TB_WB_DELETE_RANGE, 0, F_KV },
    [T_CF_BLOB_INDEX] = { 1, TB_WB_BLOB_INDEX, 1, F_KV },
    [T_BLOB_INDEX] = { 1, TB_WB_BLOB_INDEX, 0, F_KV },
    [T_BEGIN_PERSISTED_PREPARE] = { 1, TB_WB_BEGIN_PREPARE, 0, F_NONE },
    [T_BEGIN_UNPREPARE] = { 1, TB_WB_BEGIN_PREPARE, 0, F_NONE },
    /* DeletionWithTimestamp is not known: user-defined timestamps are not used by ThemisDB
     * and replaying them needs the comparator's timestamp size; refuse, don't guess. */
    [T_COMMIT_WITH_TS] = { 1, TB_WB_COMMIT, 0, F_VK },
    [T_WIDE_COLUMN_ENTITY] = { 1, TB_WB_PUT_ENTITY, 0, F_KV },
    [T_CF_WIDE_COLUMN_ENTITY] = { 1, TB_WB_PUT_ENTITY, 1, F_KV },
};

/* The fields after an entry's tag; -1 when the record ends first. */
static int entry_fields(struct tb_wb_iter *it, const struct tag_info *t, struct tb_wb_entry *e)
{
    if (t->cf && varint32(it, &e->cf) < 0)
        return -1;
    switch (t->fields) {
    case F_K: return slice(it, &e->key, &e->klen);
    case F_KV: return slice(it, &e->key, &e->klen) < 0 || slice(it, &e->value, &e->vlen) < 0 ? -1 : 0;
    case F_VK: return slice(it, &e->value, &e->vlen) < 0 || slice(it, &e->key, &e->klen) < 0 ? -1 : 0;
    default: return 0;
    }
}

int tb_wb_next(struct tb_wb_iter *it, struct tb_wb_entry *e)
{
    const struct tag_info *t;
    unsigned tag;
    if (it->p >= it->end)
        return 0;
    memset(e, 0, sizeof *e);
    e->offset = (size_t)(it->p - it->rec);
    tag = *it->p++;
    e->tag = tag;
    t = tag < sizeof tags / sizeof *tags ? &tags[tag] : NULL;
    if (!t || !t->known)
        return tb_error_set(TB_EVERIFY, "unknown or unsupported WriteBatch tag 0x%02x at byte %zu of the record", tag,
                            e->offset);
    e->kind = (enum tb_wb_kind)t->kind;
    if (entry_fields(it, t, e) < 0)
        return tb_error_set(TB_EVERIFY, "truncated WriteBatch entry (tag 0x%02x) at byte %zu of the record", tag,
                            e->offset);
    return 1;
}

int tb_wb_stamp(const struct tb_wb_entry *e, int64_t *ns)
{
    if (e->kind != TB_WB_LOG_DATA || e->klen != 12 || memcmp(e->key, "TSv1", 4) != 0)
        return 0;
    *ns = (int64_t)tb_get_le64(e->key + 4);
    return 1;
}

int tb_wb_consumes_seq(enum tb_wb_kind k)
{
    return k <= TB_WB_BLOB_INDEX;
}

const char *tb_wb_kind_name(enum tb_wb_kind k)
{
    static const char *names[] = { "PUT",         "DELETE",     "SINGLE_DELETE", "DELETE_RANGE", "MERGE",
                                   "PUT_ENTITY",  "BLOB_INDEX", "LOG_DATA",      "NOOP",         "BEGIN_PREPARE",
                                   "END_PREPARE", "COMMIT",     "ROLLBACK" };
    return k <= TB_WB_ROLLBACK ? names[k] : "?";
}

/* ---- seq_per_batch --------------------------------------------------------- */

void tb_wb_seq_init(struct tb_wb_seq *s, uint64_t header_seq)
{
    memset(s, 0, sizeof *s);
    s->seq = header_seq;
    s->empty = 1;
}

void tb_wb_seq_free(struct tb_wb_seq *s)
{
    free(s->keys);
    s->keys = NULL;
}

static void keys_clear(struct tb_wb_seq *s)
{
    if (s->nkeys)
        memset(s->keys, 0, s->cap * sizeof *s->keys);
    s->nkeys = 0;
}

static size_t key_hash(uint32_t cf, const unsigned char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ cf;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

/* 1 when (cf, key) is already in the sub-batch, else adds it; TB_EIO when out of memory. */
static int key_seen(struct tb_wb_seq *s, uint32_t cf, const unsigned char *k, size_t n)
{
    size_t i;
    if (2 * (s->nkeys + 1) > s->cap) {
        struct tb_wb_seq grown = *s;
        grown.cap = s->cap ? 2 * s->cap : 64;
        grown.nkeys = 0;
        if (!(grown.keys = calloc(grown.cap, sizeof *grown.keys)))
            return tb_error_set(TB_EIO, "out of memory");
        for (size_t j = 0; j < s->cap; j++)
            if (s->keys[j].key)
                key_seen(&grown, s->keys[j].cf, s->keys[j].key, s->keys[j].klen);
        free(s->keys);
        s->keys = grown.keys;
        s->cap = grown.cap;
    }
    for (i = key_hash(cf, k, n) & (s->cap - 1); s->keys[i].key; i = (i + 1) & (s->cap - 1))
        if (s->keys[i].cf == cf && s->keys[i].klen == n && memcmp(s->keys[i].key, k, n) == 0)
            return 1;
    /* An empty key still needs a non-NULL pointer to mark the slot taken. */
    s->keys[i].key = n ? k : (const unsigned char *)"";
    s->keys[i].klen = n;
    s->keys[i].cf = cf;
    s->nkeys++;
    return 0;
}

static void boundary(struct tb_wb_seq *s)
{
    s->seq++;
    s->empty = 1;
    keys_clear(s);
}

int tb_wb_seq_step(struct tb_wb_seq *s, const struct tb_wb_entry *e, uint64_t *seq)
{
    int dup;
    *seq = s->seq;
    switch (e->kind) {
    case TB_WB_PUT:
    case TB_WB_DELETE:
    case TB_WB_SINGLE_DELETE:
    case TB_WB_MERGE:
    case TB_WB_PUT_ENTITY:
    case TB_WB_BLOB_INDEX:
        /* The writer's count (WriteBatchWithIndex, SubBatchCounter) starts a sub-batch at a
         * key written before in it, whatever the kinds (a Put then a Delete too). */
        if ((dup = key_seen(s, e->cf, e->key, e->klen)) < 0)
            return dup;
        if (dup) {
            boundary(s);
            key_seen(s, e->cf, e->key, e->klen);
        }
        *seq = s->seq;
        /* RocksDB's Iterate leaves empty_batch alone for a blob index. */
        if (e->kind != TB_WB_BLOB_INDEX)
            s->empty = 0;
        s->batch_data = 1;
        break;
    case TB_WB_DELETE_RANGE:
        /* Not counted for duplicates: a write-prepared DB takes DeleteRange only with
         * skip_duplicate_key_check, as one sub-batch. */
        s->empty = 0;
        s->batch_data = 1;
        break;
    case TB_WB_LOG_DATA:
    case TB_WB_BEGIN_PREPARE: s->empty = 0; break;
    case TB_WB_END_PREPARE:
    case TB_WB_COMMIT:
    case TB_WB_ROLLBACK:
        boundary(s);
        s->batch_data = 0;
        break;
    case TB_WB_NOOP:
        if (s->empty)
            break; /* a placeholder at a batch's start */
        if (s->batch_data)
            s->unlogged++;
        boundary(s);
        s->batch_data = 0;
        break;
    }
    return 0;
}

uint64_t tb_wb_seq_end(const struct tb_wb_seq *s)
{
    /* seq_per_batch writers end every batch with a marker; a record that does not still
     * took a sequence for what follows its last one. */
    return s->seq + (s->empty ? 0 : 1);
}

int tb_wb_policy_hint(const void *rec, size_t len, enum tb_policy *policy)
{
    int marker = 0;
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    int m, rc, data = 0, last_data = 0, last_noop_after_data = 0;
    *policy = TB_POLICY_UNKNOWN;
    if ((rc = tb_wb_init(&it, rec, len)) < 0)
        return rc;
    while ((m = tb_wb_next(&it, &e)) == 1) {
        if (e.tag == 0x13)
            *policy = TB_POLICY_UNPREPARED;
        else if (e.tag == 0x12 && *policy != TB_POLICY_UNPREPARED)
            *policy = TB_POLICY_PREPARED;
        else if (e.tag == 0x09 && *policy == TB_POLICY_UNKNOWN)
            *policy = TB_POLICY_COMMITTED;
        marker |= e.tag == 0x09 || e.tag == 0x12 || e.tag == 0x13;
        last_noop_after_data = e.kind == TB_WB_NOOP && data;
        last_data = tb_wb_consumes_seq(e.kind);
        if (last_data)
            data = 1;
        else if (e.kind != TB_WB_LOG_DATA && e.kind != TB_WB_NOOP)
            data = 0;
    }
    if (m < 0)
        return m;
    if (marker)
        return 2;
    if (last_data)
        *policy = TB_POLICY_COMMITTED;
    else if (last_noop_after_data)
        *policy = TB_POLICY_PREPARED;
    return *policy != TB_POLICY_UNKNOWN;
}

/* ---- encoder ---- */

void tb_wb_builder_init(struct tb_wb_builder *b)
{
    memset(b, 0, sizeof *b);
}

static int reserve(struct tb_wb_builder *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
    unsigned char *p;
    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    if (!(p = realloc(b->buf, cap)))
        return tb_error_set(TB_EIO, "out of memory");
    b->buf = p;
    b->cap = cap;
    return 0;
}

static void put_varint32(struct tb_wb_builder *b, uint32_t v)
{
    while (v >= 0x80) {
        b->buf[b->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b->buf[b->len++] = (unsigned char)v;
}

static void put_slice(struct tb_wb_builder *b, const unsigned char *p, size_t n)
{
    put_varint32(b, (uint32_t)n);
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
}

/* The record's header, zeroed until tb_wb_builder_finish, before its first entry. */
static int begin_record(struct tb_wb_builder *b)
{
    int rc;
    if (b->len)
        return 0;
    if ((rc = reserve(b, TB_WB_HEADER)) < 0)
        return rc;
    memset(b->buf, 0, TB_WB_HEADER);
    b->len = TB_WB_HEADER;
    return 0;
}

int tb_wb_builder_add(struct tb_wb_builder *b, const struct tb_wb_entry *e)
{
    unsigned tag, cftag;
    int two = 1, rc;
    switch (e->kind) {
    case TB_WB_PUT:
        tag = T_VALUE;
        cftag = T_CF_VALUE;
        break;
    case TB_WB_DELETE:
        tag = T_DELETION;
        cftag = T_CF_DELETION;
        two = 0;
        break;
    case TB_WB_SINGLE_DELETE:
        tag = T_SINGLE_DELETION;
        cftag = T_CF_SINGLE_DELETION;
        two = 0;
        break;
    case TB_WB_DELETE_RANGE:
        tag = T_RANGE_DELETION;
        cftag = T_CF_RANGE_DELETION;
        break;
    case TB_WB_MERGE:
        tag = T_MERGE;
        cftag = T_CF_MERGE;
        break;
    case TB_WB_PUT_ENTITY:
        tag = T_WIDE_COLUMN_ENTITY;
        cftag = T_CF_WIDE_COLUMN_ENTITY;
        break;
    default:
        return tb_error_set(TB_EVERIFY, "cannot write a %s entry into a WAL file of plain batches",
                            tb_wb_kind_name(e->kind));
    }
    if (e->klen > UINT32_MAX || e->vlen > UINT32_MAX)
        return tb_error_set(TB_EVERIFY, "a WriteBatch entry of more than 4 GiB");
    if ((rc = begin_record(b)) < 0 || (rc = reserve(b, 1 + 5 + 5 + e->klen + (two ? 5 + e->vlen : 0))) < 0)
        return rc;
    b->buf[b->len++] = (unsigned char)(e->cf ? cftag : tag);
    if (e->cf)
        put_varint32(b, e->cf);
    put_slice(b, e->key, e->klen);
    if (two)
        put_slice(b, e->value, e->vlen);
    b->count++;
    return 0;
}

int tb_wb_builder_marker(struct tb_wb_builder *b, enum tb_wb_kind kind, const unsigned char *xid, size_t xlen)
{
    unsigned tag = kind == TB_WB_BEGIN_PREPARE ? T_BEGIN_UNPREPARE
        : kind == TB_WB_END_PREPARE            ? T_END_PREPARE
        : kind == TB_WB_COMMIT                 ? T_COMMIT
        : kind == TB_WB_ROLLBACK               ? T_ROLLBACK
                                               : 0;
    int rc;
    if (!tag || xlen > UINT32_MAX)
        return tb_error_set(TB_EVERIFY, "cannot write a %s marker", tb_wb_kind_name(kind));
    if ((rc = begin_record(b)) < 0 || (rc = reserve(b, 1 + 5 + xlen)) < 0)
        return rc;
    b->buf[b->len++] = (unsigned char)tag;
    if (kind != TB_WB_BEGIN_PREPARE)
        put_slice(b, xid, xlen);
    return 0;
}

const unsigned char *tb_wb_builder_finish(struct tb_wb_builder *b, uint64_t seq, size_t *len)
{
    if (!b->len && reserve(b, TB_WB_HEADER) == 0)
        b->len = TB_WB_HEADER;
    if (!b->buf) {
        *len = 0;
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        b->buf[i] = (unsigned char)(seq >> (8 * i));
    for (int i = 0; i < 4; i++)
        b->buf[8 + i] = (unsigned char)(b->count >> (8 * i));
    *len = b->len;
    return b->buf;
}

void tb_wb_builder_reset(struct tb_wb_builder *b)
{
    b->len = 0;
    b->count = 0;
}

void tb_wb_builder_free(struct tb_wb_builder *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

int tb_wb_policy_refine(enum tb_policy *policy, enum tb_policy *hint, const void *rec, size_t len)
{
    enum tb_policy h;
    int certain = tb_wb_policy_hint(rec, len, &h);
    if (hint)
        *hint = h;
    if (certain > 0 && (*policy == TB_POLICY_UNKNOWN || (*policy == TB_POLICY_PREPARED && h == TB_POLICY_UNPREPARED)))
        *policy = h;
    return certain;
}
