/* rdbmanifest: RocksDB's MANIFEST read without RocksDB. The file is a log (the WAL's framing:
 * 32 KiB blocks, CRC32C'd fragments; wal/log_reader.c reads it) of VersionEdit records
 * (db/version_edit.cc): each a sequence of varint tags with their fields. Applying them in
 * order gives every column family's live files, as RocksDB's recovery does. Tags known up to
 * RocksDB 11.8; newer ones are skipped where RocksDB marks them safe to ignore
 * (kTagSafeIgnoreMask, kCustomTagNonSafeIgnoreMask clear) and refused, by number, otherwise. */
#include "rdbmanifest.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "log_reader.h"
#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* VersionEdit tags (db/version_edit.h, identical in 7.8, 9.0, 10.6 and 11.8). */
enum {
    T_COMPARATOR = 1,
    T_LOG_NUMBER = 2,
    T_NEXT_FILE = 3,
    T_LAST_SEQ = 4,
    T_COMPACT_CURSOR = 5,
    T_DELETED_FILE = 6,
    T_NEW_FILE = 7,
    T_PREV_LOG = 9,
    T_MIN_LOG_TO_KEEP = 10,
    T_NEW_FILE2 = 100,
    T_NEW_FILE3 = 102,
    T_NEW_FILE4 = 103,
    T_CF = 200,
    T_CF_ADD = 201,
    T_CF_DROP = 202,
    T_MAX_CF = 203,
    T_ATOMIC_GROUP = 300,
    T_BLOB_ADD = 400,
    T_BLOB_GARBAGE = 401,
    T_SAFE_IGNORE = 1 << 13,
    T_DB_ID = T_SAFE_IGNORE + 1,
    T_BLOB_ADD_OLD,
    T_BLOB_GARBAGE_OLD,
    T_WAL_ADD,
    T_WAL_DEL,
    T_FULL_HISTORY_TS_LOW,
    T_WAL_ADD2,
    T_WAL_DEL2,
    T_PERSIST_UDT,
    /* NewFile4 custom fields */
    NF_TERMINATE = 1,
    NF_MIN_LOG_HACK = 3,
    NF_OLDEST_BLOB = 4,
    NF_NON_SAFE_IGNORE = 1 << 6,
    NF_PATH_ID = NF_NON_SAFE_IGNORE + 1,
    /* BlobFileAddition / BlobFileGarbage custom fields */
    BF_END = 0,
    BF_FORWARD_INCOMPATIBLE = 1 << 6,
    /* WalAddition fields */
    WA_TERMINATE = 1,
    WA_SYNCED_SIZE = 2,
};

/* A table file or blob file, by number (numbers are unique across column families). */
struct ent {
    uint64_t key; /* file number; 0 marks an empty slot */
    uint32_t cf;
    struct tb_rmf_file f;
    struct tb_rmf_blob b;
};

struct table {
    struct ent *slots;
    size_t cap, n; /* cap a power of two */
};

struct cfstate {
    uint32_t id;
    char *name, *comparator;
    uint64_t log_number;
    int dropped;
};

struct del {
    int level;
    uint64_t number;
};
struct garbage {
    uint64_t number, count, bytes;
};

/* One decoded record; pointers point into the record. */
struct edit {
    const unsigned char *rec; /* the record decoded */
    uint32_t cf;
    const unsigned char *comparator, *cf_name, *db_id;
    size_t comparator_len, cf_name_len, db_id_len;
    int has_log, has_next, has_last, has_prev, has_min_log, has_max_cf, cf_add, cf_drop, atomic, has_wal_del;
    uint64_t log, next, last, prev, min_log, wal_del;
    uint32_t max_cf, remaining;
    struct del *dels;
    size_t ndels, cdels;
    struct tb_rmf_file *adds;
    size_t nadds, cadds;
    struct tb_rmf_blob *blobs;
    size_t nblobs, cblobs;
    struct garbage *garb;
    size_t ngarb, cgarb;
    struct tb_rmf_wal *wals;
    size_t nwals, cwals;
};

struct tb_rmf {
    int fd;
    char *path;
    tb_wal_reader *reader;
    uint64_t offset; /* end of the last record read */
    struct table files, blobs;
    struct cfstate *cfs;
    size_t ncf;
    struct tb_rmf_wal *wals;
    size_t nwals;
    uint64_t last_seq, next_file, min_log, prev_log;
    uint32_t max_cf;
    char *db_id;
    struct edit e;
    unsigned char **group; /* records of an atomic group not yet complete */
    size_t *group_len, ngroup;
    uint64_t rec_off; /* offset of the record being applied, for messages */
    int saw_path_id; /* some record names a table in a db_path other than the first */
    unsigned char *patch; /* tb_rmf_write_flat: the record being rewritten, path ids set to 0 */
};

/* ---- decoding primitives (util/coding.h) ---- */

struct in {
    const unsigned char *p, *end;
};

static int get_v64(struct in *in, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift <= 63 && in->p < in->end; shift += 7) {
        unsigned char b = *in->p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

static int get_v32(struct in *in, uint32_t *v)
{
    uint64_t r;
    if (!get_v64(in, &r) || r > UINT32_MAX)
        return 0;
    *v = (uint32_t)r;
    return 1;
}

static int get_slice(struct in *in, const unsigned char **p, size_t *len)
{
    uint32_t n;
    if (!get_v32(in, &n) || (size_t)(in->end - in->p) < n)
        return 0;
    *p = in->p;
    *len = n;
    in->p += n;
    return 1;
}

static int get_fixed64(struct in *in, uint64_t *v)
{
    if (in->end - in->p < 8)
        return 0;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | in->p[i];
    in->p += 8;
    return 1;
}

/* ---- the file tables ---- */

static size_t slot_of(const struct table *t, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (t->cap - 1);
}

static struct ent *t_find(const struct table *t, uint64_t key)
{
    if (!t->cap)
        return NULL;
    for (size_t i = slot_of(t, key);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].key == key)
            return &t->slots[i];
        if (t->slots[i].key == 0)
            return NULL;
    }
}

static int t_grow(struct table *t)
{
    struct table nt = { .cap = t->cap ? t->cap * 2 : 256 };
    if (!(nt.slots = calloc(nt.cap, sizeof *nt.slots)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].key)
            continue;
        size_t j = slot_of(&nt, t->slots[i].key);
        while (nt.slots[j].key)
            j = (j + 1) & (nt.cap - 1);
        nt.slots[j] = t->slots[i];
    }
    nt.n = t->n;
    free(t->slots);
    *t = nt;
    return 0;
}

/* The entry for key, created empty when missing. */
static int t_put(struct table *t, uint64_t key, struct ent **out)
{
    struct ent *e = t_find(t, key);
    int rc;
    if (!e) {
        if ((t->n + 1) * 4 > t->cap * 3 && (rc = t_grow(t)) < 0)
            return rc;
        size_t i = slot_of(t, key);
        while (t->slots[i].key)
            i = (i + 1) & (t->cap - 1);
        e = &t->slots[i];
        memset(e, 0, sizeof *e);
        e->key = key;
        t->n++;
    }
    *out = e;
    return 0;
}

/* Linear probing removal without tombstones: moves later entries of the run back. */
static void t_del(struct table *t, struct ent *e)
{
    size_t i = (size_t)(e - t->slots), j = i;
    t->slots[i].key = 0;
    t->n--;
    for (;;) {
        j = (j + 1) & (t->cap - 1);
        if (!t->slots[j].key)
            return;
        size_t k = slot_of(t, t->slots[j].key);
        /* Entry j stays when its home k lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j].key = 0;
        i = j;
    }
}

static void t_drop_cf(struct table *t, uint32_t cf)
{
    for (size_t i = 0; i < t->cap;) {
        if (t->slots[i].key && t->slots[i].cf == cf)
            t_del(t, &t->slots[i]); /* may move a later entry into slot i: look again */
        else
            i++;
    }
}

/* ---- decoding one VersionEdit ---- */

#define PUSH(arr, n, cap, val)                                \
    do {                                                      \
        if ((n) == (cap)) {                                   \
            size_t nc_ = (cap) ? (cap)*2 : 16;                \
            void *np_ = realloc((arr), nc_ * sizeof *(arr));  \
            if (!np_)                                         \
                return tb_error_set(TB_EIO, "out of memory"); \
            (arr) = np_;                                      \
            (cap) = nc_;                                      \
        }                                                     \
        (arr)[(n)++] = (val);                                 \
    } while (0)

static int bad(tb_rmf *m, const char *what)
{
    return tb_error_set(TB_EVERIFY, "damaged MANIFEST record at offset %" PRIu64 ": %s (%s)", m->rec_off, what,
                        m->path);
}

/* An internal key: the user key plus 8 bytes of sequence and type; only skipped here. */
static int skip_ikey(struct in *in)
{
    const unsigned char *p;
    size_t n;
    return get_slice(in, &p, &n) && n >= 8;
}

static int decode_new_file(tb_rmf *m, struct in *in, unsigned tag)
{
    struct edit *e = &m->e;
    struct tb_rmf_file f = { 0 };
    uint32_t level, path_id = 0;
    int ok = get_v32(in, &level) && get_v64(in, &f.number);
    if (ok && tag == T_NEW_FILE3) {
        const unsigned char *at = in->p;
        ok = get_v32(in, &path_id);
        if (ok && path_id) {
            m->saw_path_id = 1;
            if (m->patch && in->p - at == 1)
                m->patch[at - m->e.rec] = 0;
        }
    }
    ok = ok && get_v64(in, &f.size) && skip_ikey(in) && skip_ikey(in);
    if (ok && tag != T_NEW_FILE)
        ok = get_v64(in, &f.smallest_seq) && get_v64(in, &f.largest_seq);
    if (!ok)
        return bad(m, "new file entry");
    while (tag == T_NEW_FILE4) {
        uint32_t ct;
        const unsigned char *p;
        size_t n;
        struct in fi;
        if (!get_v32(in, &ct))
            return bad(m, "new file custom field");
        if (ct == NF_TERMINATE)
            break;
        if (!get_slice(in, &p, &n))
            return bad(m, "new file custom field length");
        fi.p = p;
        fi.end = p + n;
        switch (ct) {
        case NF_PATH_ID:
            if (n != 1 || p[0] > 3)
                return bad(m, "path id");
            path_id = p[0];
            if (path_id) {
                m->saw_path_id = 1;
                if (m->patch)
                    m->patch[p - m->e.rec] = 0;
            }
            break;
        case NF_MIN_LOG_HACK:
            if (!get_fixed64(&fi, &e->min_log))
                return bad(m, "min log number to keep");
            e->has_min_log = 1;
            break;
        case NF_OLDEST_BLOB:
            if (!get_v64(&fi, &f.oldest_blob))
                return bad(m, "oldest blob file number");
            break;
        default:
            if (ct & NF_NON_SAFE_IGNORE)
                return tb_error_set(TB_EVERIFY,
                                    "MANIFEST record at offset %" PRIu64 " has new-file field %u, which "
                                    "this reader does not know and RocksDB forbids to ignore: written by a newer "
                                    "RocksDB? (%s)",
                                    m->rec_off, ct, m->path);
            break; /* safe to ignore: times, checksums, unique id, epoch, temperature, ... */
        }
    }
    f.level = (int)level;
    f.path_id = path_id;
    PUSH(e->adds, e->nadds, e->cadds, f);
    return 0;
}

/* The custom fields ending a BlobFileAddition / BlobFileGarbage. */
static int blob_fields(tb_rmf *m, struct in *in)
{
    for (;;) {
        uint32_t ct;
        const unsigned char *p;
        size_t n;
        if (!get_v32(in, &ct))
            return bad(m, "blob file custom field");
        if (ct == BF_END)
            return 0;
        if (ct & BF_FORWARD_INCOMPATIBLE)
            return tb_error_set(TB_EVERIFY,
                                "MANIFEST record at offset %" PRIu64 " has blob file field %u, which this "
                                "reader does not know and RocksDB forbids to ignore (%s)",
                                m->rec_off, ct, m->path);
        if (!get_slice(in, &p, &n))
            return bad(m, "blob file custom field length");
    }
}

static int decode_wal_add(tb_rmf *m, struct in *in)
{
    struct tb_rmf_wal w = { 0 };
    uint32_t t;
    if (!get_v64(in, &w.number))
        return bad(m, "WAL addition");
    for (;;) {
        if (!get_v32(in, &t))
            return bad(m, "WAL addition field");
        if (t == WA_TERMINATE)
            break;
        if (t != WA_SYNCED_SIZE)
            return tb_error_set(TB_EVERIFY,
                                "MANIFEST record at offset %" PRIu64 " has WAL addition field %u, which "
                                "this reader does not know (%s)",
                                m->rec_off, t, m->path);
        if (!get_v64(in, &w.synced_size))
            return bad(m, "WAL synced size");
    }
    PUSH(m->e.wals, m->e.nwals, m->e.cwals, w);
    return 0;
}

/* A field whose value is length-prefixed: sub reads just that value. */
static int get_sub(struct in *in, struct in *sub)
{
    const unsigned char *p;
    size_t n;
    if (!get_slice(in, &p, &n))
        return 0;
    sub->p = p;
    sub->end = p + n;
    return 1;
}

/* One tag of a VersionEdit: what its field is called in messages, how it is decoded, and
 * for the plain fields where in struct edit the value (and its "present" flag) go. */
struct tag_field {
    uint32_t tag;
    const char *what;
    int (*decode)(tb_rmf *m, struct in *in, const struct tag_field *t);
    size_t value, len, flag; /* offsets in struct edit; NOFLAG: none */
};

#define NOFLAG ((size_t)-1)
#define EDIT_AT(e, off, type) ((type *)(void *)((char *)(e) + (off)))

static void set_flag(struct edit *e, const struct tag_field *t)
{
    if (t->flag != NOFLAG)
        *EDIT_AT(e, t->flag, int) = 1;
}

static int dec_v64(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    if (!get_v64(in, EDIT_AT(&m->e, t->value, uint64_t)))
        return bad(m, t->what);
    set_flag(&m->e, t);
    return 0;
}

static int dec_v32(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    if (!get_v32(in, EDIT_AT(&m->e, t->value, uint32_t)))
        return bad(m, t->what);
    set_flag(&m->e, t);
    return 0;
}

static int dec_slice(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    if (!get_slice(in, EDIT_AT(&m->e, t->value, const unsigned char *), EDIT_AT(&m->e, t->len, size_t)))
        return bad(m, t->what);
    set_flag(&m->e, t);
    return 0;
}

static int dec_flag(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    (void)in;
    set_flag(&m->e, t);
    return 0;
}

static int dec_compact_cursor(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    uint32_t level;
    return get_v32(in, &level) && skip_ikey(in) ? 0 : bad(m, t->what);
}

static int dec_deleted_file(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    struct edit *e = &m->e;
    struct del d;
    uint32_t level;
    if (!get_v32(in, &level) || !get_v64(in, &d.number))
        return bad(m, t->what);
    d.level = (int)level;
    PUSH(e->dels, e->ndels, e->cdels, d);
    return 0;
}

static int dec_new_file(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    return decode_new_file(m, in, t->tag);
}

static int dec_blob_add(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    struct edit *e = &m->e;
    struct tb_rmf_blob b = { 0 };
    const unsigned char *cm, *cv;
    size_t cml, cvl;
    if (!get_v64(in, &b.number) || !get_v64(in, &b.total_count) || !get_v64(in, &b.total_bytes) ||
        !get_slice(in, &cm, &cml) || !get_slice(in, &cv, &cvl))
        return bad(m, t->what);
    PUSH(e->blobs, e->nblobs, e->cblobs, b); /* a record failing below is not applied */
    return blob_fields(m, in);
}

static int dec_blob_garbage(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    struct edit *e = &m->e;
    struct garbage g;
    if (!get_v64(in, &g.number) || !get_v64(in, &g.count) || !get_v64(in, &g.bytes))
        return bad(m, t->what);
    PUSH(e->garb, e->ngarb, e->cgarb, g);
    return blob_fields(m, in);
}

static int dec_wal_add(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    (void)t;
    return decode_wal_add(m, in);
}

static int dec_wal_add2(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    struct in sub;
    return get_sub(in, &sub) ? decode_wal_add(m, &sub) : bad(m, t->what);
}

static int dec_wal_del2(tb_rmf *m, struct in *in, const struct tag_field *t)
{
    struct in sub;
    if (!get_sub(in, &sub))
        return bad(m, t->what);
    if (!get_v64(&sub, &m->e.wal_del))
        return bad(m, "WAL deletion");
    m->e.has_wal_del = 1;
    return 0;
}

#define AT(field) offsetof(struct edit, field)
#define NUM(tag, what, dec, field, flag)   \
    {                                      \
        tag, what, dec, AT(field), 0, flag \
    }
#define OTHER(tag, what, dec)        \
    {                                \
        tag, what, dec, 0, 0, NOFLAG \
    }
static const struct tag_field tags[] = {
    { T_COMPARATOR, "comparator name", dec_slice, AT(comparator), AT(comparator_len), NOFLAG },
    NUM(T_LOG_NUMBER, "log number", dec_v64, log, AT(has_log)),
    NUM(T_NEXT_FILE, "next file number", dec_v64, next, AT(has_next)),
    NUM(T_LAST_SEQ, "last sequence number", dec_v64, last, AT(has_last)),
    NUM(T_PREV_LOG, "previous log number", dec_v64, prev, AT(has_prev)),
    NUM(T_MIN_LOG_TO_KEEP, "min log number to keep", dec_v64, min_log, AT(has_min_log)),
    NUM(T_MAX_CF, "max column family", dec_v32, max_cf, AT(has_max_cf)),
    OTHER(T_COMPACT_CURSOR, "compaction cursor", dec_compact_cursor),
    OTHER(T_DELETED_FILE, "deleted file", dec_deleted_file),
    OTHER(T_NEW_FILE, NULL, dec_new_file),
    OTHER(T_NEW_FILE2, NULL, dec_new_file),
    OTHER(T_NEW_FILE3, NULL, dec_new_file),
    OTHER(T_NEW_FILE4, NULL, dec_new_file),
    NUM(T_CF, "column family id", dec_v32, cf, NOFLAG),
    { T_CF_ADD, "column family name", dec_slice, AT(cf_name), AT(cf_name_len), AT(cf_add) },
    { T_CF_DROP, NULL, dec_flag, 0, 0, AT(cf_drop) },
    NUM(T_ATOMIC_GROUP, "atomic group remaining entries", dec_v32, remaining, AT(atomic)),
    OTHER(T_BLOB_ADD, "blob file addition", dec_blob_add),
    OTHER(T_BLOB_ADD_OLD, "blob file addition", dec_blob_add),
    OTHER(T_BLOB_GARBAGE, "blob file garbage", dec_blob_garbage),
    OTHER(T_BLOB_GARBAGE_OLD, "blob file garbage", dec_blob_garbage),
    { T_DB_ID, "db id", dec_slice, AT(db_id), AT(db_id_len), NOFLAG },
    OTHER(T_WAL_ADD, NULL, dec_wal_add),
    OTHER(T_WAL_ADD2, "WAL addition length", dec_wal_add2),
    NUM(T_WAL_DEL, "WAL deletion", dec_v64, wal_del, AT(has_wal_del)),
    OTHER(T_WAL_DEL2, "WAL deletion length", dec_wal_del2),
};
#undef OTHER
#undef NUM
#undef AT

/* A tag this reader does not know: T_FULL_HISTORY_TS_LOW, T_PERSIST_UDT and any later tag
 * RocksDB lets older versions skip carry a length-prefixed field. */
static int skip_unknown(tb_rmf *m, struct in *in, uint32_t tag)
{
    struct in sub;
    if (!(tag & T_SAFE_IGNORE))
        return tb_error_set(TB_EVERIFY,
                            "MANIFEST record at offset %" PRIu64 " has tag %u, which this reader "
                            "does not know and RocksDB forbids to ignore: written by a newer RocksDB? (%s)",
                            m->rec_off, tag, m->path);
    return get_sub(in, &sub) ? 0 : bad(m, "length of an ignorable field");
}

/* Forgets the last edit but keeps its arrays' memory. */
static void edit_reset(struct edit *e, const unsigned char *rec)
{
    struct edit keep = *e;
    memset(e, 0, sizeof *e);
    e->dels = keep.dels, e->cdels = keep.cdels;
    e->adds = keep.adds, e->cadds = keep.cadds;
    e->blobs = keep.blobs, e->cblobs = keep.cblobs;
    e->garb = keep.garb, e->cgarb = keep.cgarb;
    e->wals = keep.wals, e->cwals = keep.cwals;
    e->rec = rec;
}

static int decode(tb_rmf *m, const unsigned char *rec, size_t len)
{
    struct in in = { rec, rec + len };
    int rc;
    edit_reset(&m->e, rec);
    while (in.p < in.end) {
        uint32_t tag;
        size_t i = 0;
        if (!get_v32(&in, &tag))
            return bad(m, "tag");
        while (i < sizeof tags / sizeof *tags && tags[i].tag != tag)
            i++;
        rc = i < sizeof tags / sizeof *tags ? tags[i].decode(m, &in, &tags[i]) : skip_unknown(m, &in, tag);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- applying one edit ---- */

static struct cfstate *find_cf(tb_rmf *m, uint32_t id)
{
    for (size_t i = 0; i < m->ncf; i++)
        if (m->cfs[i].id == id)
            return &m->cfs[i];
    return NULL;
}

static char *dupn(const unsigned char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int new_cf(tb_rmf *m, uint32_t id, struct cfstate **out)
{
    struct cfstate *p = realloc(m->cfs, (m->ncf + 1) * sizeof *p);
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    m->cfs = p;
    *out = &m->cfs[m->ncf++];
    memset(*out, 0, sizeof **out);
    (*out)->id = id;
    return 0;
}

/* The column family the edit names, created by an add record (or, for the default one,
 * by the first edit naming it). */
static int edit_cf(tb_rmf *m, struct cfstate **out)
{
    struct edit *e = &m->e;
    struct cfstate *cf = find_cf(m, e->cf);
    int rc;
    *out = cf;
    if (e->cf_add) {
        if (cf && !cf->dropped)
            return bad(m, "column family added twice");
        if (!cf && (rc = new_cf(m, e->cf, &cf)) < 0)
            return rc;
        if (e->cf > m->max_cf)
            m->max_cf = e->cf; /* as RocksDB's ColumnFamilySet does on creation */
        free(cf->name);
        free(cf->comparator);
        cf->comparator = NULL;
        cf->dropped = 0;
        cf->log_number = 0;
        *out = cf;
        if (!(cf->name = dupn(e->cf_name, e->cf_name_len)))
            return tb_error_set(TB_EIO, "out of memory");
    } else if (!cf && e->cf == 0) {
        if ((rc = new_cf(m, 0, out)) < 0)
            return rc;
        if (!((*out)->name = strdup("default")))
            return tb_error_set(TB_EIO, "out of memory");
    } else if (!cf) {
        return tb_error_set(TB_EVERIFY, "MANIFEST record at offset %" PRIu64 " refers to unknown column family %u (%s)",
                            m->rec_off, e->cf, m->path);
    }
    return 0;
}

/* RocksDB's VersionBuilder applies deletions before additions: a trivial move deletes the
 * file on one level and adds it on another in the same edit. */
static int apply_files(tb_rmf *m, const struct cfstate *cf)
{
    struct edit *e = &m->e;
    struct ent *x;
    int rc;
    for (size_t i = 0; i < e->ndels; i++) {
        x = t_find(&m->files, e->dels[i].number);
        if (x && x->cf == cf->id)
            t_del(&m->files, x);
    }
    for (size_t i = 0; i < e->nadds; i++) {
        if ((rc = t_put(&m->files, e->adds[i].number, &x)) < 0)
            return rc;
        x->cf = cf->id;
        x->f = e->adds[i];
    }
    for (size_t i = 0; i < e->nblobs; i++) {
        if ((rc = t_put(&m->blobs, e->blobs[i].number, &x)) < 0)
            return rc;
        x->cf = cf->id;
        x->b = e->blobs[i];
    }
    for (size_t i = 0; i < e->ngarb; i++)
        if ((x = t_find(&m->blobs, e->garb[i].number))) {
            x->b.garbage_count += e->garb[i].count;
            x->b.garbage_bytes += e->garb[i].bytes;
        }
    return 0;
}

static int apply_cf(tb_rmf *m, struct cfstate *cf)
{
    struct edit *e = &m->e;
    if (e->cf_drop) {
        cf->dropped = 1;
        t_drop_cf(&m->files, cf->id);
        t_drop_cf(&m->blobs, cf->id);
        return 0;
    }
    if (cf->dropped)
        return 0;
    if (e->comparator) {
        free(cf->comparator);
        if (!(cf->comparator = dupn(e->comparator, e->comparator_len)))
            return tb_error_set(TB_EIO, "out of memory");
    }
    if (e->has_log && e->log > cf->log_number)
        cf->log_number = e->log; /* RocksDB ignores a log number going back, as we do */
    return apply_files(m, cf);
}

static int apply_wals(tb_rmf *m)
{
    struct edit *e = &m->e;
    for (size_t i = 0; i < e->nwals; i++) {
        size_t j = 0;
        while (j < m->nwals && m->wals[j].number != e->wals[i].number)
            j++;
        if (j == m->nwals) {
            struct tb_rmf_wal *p = realloc(m->wals, (m->nwals + 1) * sizeof *p);
            if (!p)
                return tb_error_set(TB_EIO, "out of memory");
            m->wals = p;
            m->nwals++;
        }
        m->wals[j] = e->wals[i];
    }
    if (e->has_wal_del) {
        size_t k = 0;
        for (size_t j = 0; j < m->nwals; j++)
            if (m->wals[j].number >= e->wal_del)
                m->wals[k++] = m->wals[j];
        m->nwals = k;
    }
    return 0;
}

/* Fields of the whole database, whichever column family the edit names. */
static int apply_db(tb_rmf *m)
{
    struct edit *e = &m->e;
    if (e->has_next)
        m->next_file = e->next;
    if (e->has_last)
        m->last_seq = e->last;
    if (e->has_prev)
        m->prev_log = e->prev;
    if (e->has_min_log && e->min_log > m->min_log)
        m->min_log = e->min_log;
    if (e->has_max_cf && e->max_cf > m->max_cf)
        m->max_cf = e->max_cf;
    if (e->db_id) {
        free(m->db_id);
        if (!(m->db_id = dupn(e->db_id, e->db_id_len)))
            return tb_error_set(TB_EIO, "out of memory");
    }
    return apply_wals(m);
}

static int apply(tb_rmf *m)
{
    struct cfstate *cf;
    int rc;
    if ((rc = edit_cf(m, &cf)) < 0 || (rc = apply_cf(m, cf)) < 0)
        return rc;
    return apply_db(m);
}

static void group_clear(tb_rmf *m)
{
    for (size_t i = 0; i < m->ngroup; i++)
        free(m->group[i]);
    m->ngroup = 0;
}

/* One record: applied at once, or held until its atomic group is complete. */
static int record(tb_rmf *m, const unsigned char *rec, size_t len)
{
    int rc = decode(m, rec, len);
    if (rc < 0)
        return rc;
    if (!m->e.atomic) {
        if (m->ngroup)
            return bad(m, "atomic group ends early");
        return apply(m);
    }
    {
        unsigned char **g = realloc(m->group, (m->ngroup + 1) * sizeof *g);
        size_t *gl = g ? realloc(m->group_len, (m->ngroup + 1) * sizeof *gl) : NULL;
        if (g)
            m->group = g;
        if (!g || !gl)
            return tb_error_set(TB_EIO, "out of memory");
        m->group_len = gl;
        if (!(m->group[m->ngroup] = malloc(len ? len : 1)))
            return tb_error_set(TB_EIO, "out of memory");
        memcpy(m->group[m->ngroup], rec, len);
        m->group_len[m->ngroup++] = len;
    }
    if (m->e.remaining > 0)
        return 0;
    for (size_t i = 0; i < m->ngroup; i++)
        if ((rc = decode(m, m->group[i], m->group_len[i])) < 0 || (rc = apply(m)) < 0)
            break;
    group_clear(m);
    return rc;
}

/* ---- the public part ---- */

int tb_rmf_open_fd(tb_rmf **out, int fd, const char *path)
{
    tb_rmf *m = calloc(1, sizeof *m);
    int rc;
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return tb_error_set(TB_EIO, "out of memory");
    }
    m->fd = -1;
    if ((m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot duplicate the descriptor of %s", path);
        tb_rmf_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int tb_rmf_read(tb_rmf *m, uint64_t limit)
{
    const unsigned char *rec;
    size_t len;
    int rc;
    if (!m->reader && (rc = tb_wal_reader_open_fd(&m->reader, m->fd, m->path, 0, m->offset)) < 0)
        return rc;
    for (;;) {
        rc = tb_wal_reader_next(m->reader, &rec, &len);
        if (rc < 0)
            return tb_error_wrap(rc, "MANIFEST");
        if (rc == 0)
            return 0;
        if (tb_wal_reader_offset(m->reader) > limit) {
            /* Past what the caller looks at: read it again next time. */
            tb_wal_reader_free(m->reader);
            m->reader = NULL;
            return 0;
        }
        m->rec_off = tb_wal_reader_record_offset(m->reader);
        if ((rc = record(m, rec, len)) < 0)
            return rc;
        m->offset = tb_wal_reader_offset(m->reader);
    }
}

uint64_t tb_rmf_offset(const tb_rmf *m)
{
    return m->offset;
}

/* Table files, blob files and WALs all start with their number. */
_Static_assert(offsetof(struct tb_rmf_file, number) == 0 && offsetof(struct tb_rmf_blob, number) == 0 &&
                   offsetof(struct tb_rmf_wal, number) == 0,
               "number first");
static int cmp_number(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_cf(const void *a, const void *b)
{
    uint32_t x = ((const struct tb_rmf_cf *)a)->id, y = ((const struct tb_rmf_cf *)b)->id;
    return x < y ? -1 : x > y;
}

/* Whether some table file of cf refers to blob file number. */
static int linked(const tb_rmf *m, uint32_t cf, uint64_t number)
{
    for (size_t i = 0; i < m->files.cap; i++)
        if (m->files.slots[i].key && m->files.slots[i].cf == cf && m->files.slots[i].f.oldest_blob == number)
            return 1;
    return 0;
}

/* A column family's files. Blob files as RocksDB's VersionBuilder keeps them
 * (SaveBlobFilesTo): none older than the oldest one a table file refers to, and none that
 * no table file refers to and that is all garbage. */
static int fill_cf(const tb_rmf *m, const struct cfstate *s, struct tb_rmf_cf *c)
{
    size_t nf = 0, nb = 0;
    uint64_t oldest_linked = 0;
    c->id = s->id;
    if (!(c->name = strdup(s->name)) || (s->comparator && !(c->comparator = strdup(s->comparator))))
        return tb_error_set(TB_EIO, "out of memory");
    c->log_number = s->log_number;
    for (size_t i = 0; i < m->files.cap; i++)
        if (m->files.slots[i].key && m->files.slots[i].cf == s->id) {
            nf++;
            uint64_t ob = m->files.slots[i].f.oldest_blob;
            if (ob && (!oldest_linked || ob < oldest_linked) && t_find(&m->blobs, ob))
                oldest_linked = ob;
        }
    for (size_t i = 0; i < m->blobs.cap; i++)
        if (m->blobs.slots[i].key && m->blobs.slots[i].cf == s->id)
            nb++;
    c->files = calloc(nf ? nf : 1, sizeof *c->files);
    c->blobs = calloc(nb ? nb : 1, sizeof *c->blobs);
    if (!c->files || !c->blobs)
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < m->files.cap; i++)
        if (m->files.slots[i].key && m->files.slots[i].cf == s->id)
            c->files[c->nfiles++] = m->files.slots[i].f;
    for (size_t i = 0; i < m->blobs.cap; i++) {
        const struct ent *x = &m->blobs.slots[i];
        if (!x->key || x->cf != s->id || (oldest_linked && x->key < oldest_linked))
            continue;
        if (x->b.garbage_count >= x->b.total_count && !linked(m, s->id, x->key))
            continue;
        c->blobs[c->nblobs++] = x->b;
    }
    qsort(c->files, c->nfiles, sizeof *c->files, cmp_number);
    qsort(c->blobs, c->nblobs, sizeof *c->blobs, cmp_number);
    return 0;
}

const char *tb_rmf_cf_name(const tb_rmf *m, uint32_t id, int *dropped)
{
    for (size_t i = 0; i < m->ncf; i++)
        if (m->cfs[i].id == id) {
            if (dropped)
                *dropped = m->cfs[i].dropped;
            return m->cfs[i].name;
        }
    return NULL;
}

int tb_rmf_has_path_ids(const tb_rmf *m)
{
    return m->saw_path_id;
}

int tb_rmf_write_flat(tb_rmf *m, const char *to)
{
    tb_wal_reader *r = NULL;
    tb_wal_writer *w = NULL;
    const unsigned char *rec;
    unsigned char *buf = NULL;
    size_t len, cap = 0;
    tb_rmf *scratch = calloc(1, sizeof *scratch);
    int rc;
    /* Records are decoded again by a scratch reader whose only effect is the patch. */
    if (!scratch || !(scratch->path = strdup(m->path))) {
        free(scratch);
        return tb_error_set(TB_EIO, "out of memory");
    }
    scratch->fd = -1;
    if ((rc = tb_wal_reader_open_fd(&r, m->fd, m->path, 0, 0)) < 0 || (rc = tb_wal_writer_open(&w, to)) < 0)
        goto cleanup;
    while ((rc = tb_wal_reader_next(r, &rec, &len)) == 1 && tb_wal_reader_offset(r) <= m->offset) {
        if (len > cap) {
            unsigned char *p = realloc(buf, len);
            if (!p) {
                rc = tb_error_set(TB_EIO, "out of memory");
                goto cleanup;
            }
            buf = p;
            cap = len;
        }
        memcpy(buf, rec, len);
        scratch->patch = buf;
        scratch->rec_off = tb_wal_reader_record_offset(r);
        if ((rc = decode(scratch, buf, len)) < 0 || (rc = tb_wal_writer_add(w, buf, len)) < 0)
            goto cleanup;
    }
    if (rc < 0)
        goto cleanup;
    rc = tb_wal_writer_close(w);
    w = NULL;
cleanup:
    tb_wal_writer_free(w);
    tb_wal_reader_free(r);
    tb_rmf_free(scratch);
    free(buf);
    return rc;
}

int tb_rmf_version(const tb_rmf *m, struct tb_rmf_version **out)
{
    struct tb_rmf_version *v = calloc(1, sizeof *v);
    int rc = 0;
    if (!v || !(v->cfs = calloc(m->ncf ? m->ncf : 1, sizeof *v->cfs)) ||
        !(v->wals = calloc(m->nwals ? m->nwals : 1, sizeof *v->wals)) || (m->db_id && !(v->db_id = strdup(m->db_id)))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    v->last_sequence = m->last_seq;
    v->next_file_number = m->next_file;
    v->min_log_number_to_keep = m->min_log;
    v->prev_log_number = m->prev_log;
    v->max_column_family = m->max_cf;
    /* A CF's log number 0 (nothing flushed yet) means every WAL; min_log 0 means unknown. */
    v->min_log_needed = m->min_log ? m->min_log : UINT64_MAX;
    for (size_t i = 0; i < m->ncf; i++) {
        if (m->cfs[i].dropped)
            continue;
        if ((rc = fill_cf(m, &m->cfs[i], &v->cfs[v->ncf++])) < 0)
            goto cleanup;
        if (m->cfs[i].log_number < v->min_log_needed)
            v->min_log_needed = m->cfs[i].log_number;
    }
    if (v->min_log_needed == UINT64_MAX)
        v->min_log_needed = 0;
    qsort(v->cfs, v->ncf, sizeof *v->cfs, cmp_cf);
    if (m->nwals)
        memcpy(v->wals, m->wals, m->nwals * sizeof *v->wals);
    v->nwals = m->nwals;
    qsort(v->wals, v->nwals, sizeof *v->wals, cmp_number);
    *out = v;
    v = NULL;
cleanup:
    tb_rmf_version_free(v);
    return rc;
}

void tb_rmf_version_free(struct tb_rmf_version *v)
{
    if (!v)
        return;
    for (size_t i = 0; v->cfs && i < v->ncf; i++)
        TB_FREE_ALL(v->cfs[i].name, v->cfs[i].comparator, v->cfs[i].files, v->cfs[i].blobs);
    TB_FREE_ALL(v->cfs, v->wals, v->db_id, v);
}

void tb_rmf_free(tb_rmf *m)
{
    if (!m)
        return;
    tb_wal_reader_free(m->reader);
    if (m->fd >= 0)
        close(m->fd);
    for (size_t i = 0; i < m->ncf; i++)
        TB_FREE_ALL(m->cfs[i].name, m->cfs[i].comparator);
    group_clear(m);
    TB_FREE_ALL(m->cfs, m->files.slots, m->blobs.slots, m->wals, m->db_id, m->e.dels, m->e.adds, m->e.blobs, m->e.garb,
                m->e.wals, m->group, m->group_len, m->path, m);
}

int tb_rmf_load_current(const char *dir, struct tb_rmf_version **out)
{
    char *name = NULL, *path = NULL;
    int rc = tb_rmf_current(dir, &name);
    *out = NULL;
    if (rc == 0 && !(path = tb_fs_join(dir, name)))
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_rmf_load(path, out);
    free(name);
    free(path);
    return rc;
}

int tb_rmf_load(const char *path, struct tb_rmf_version **out)
{
    tb_rmf *m = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    if (fd < 0)
        return tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot open MANIFEST %s", path);
    rc = tb_rmf_open_fd(&m, fd, path);
    close(fd);
    if (rc == 0 && (rc = tb_rmf_read(m, UINT64_MAX)) == 0)
        rc = tb_rmf_version(m, out);
    tb_rmf_free(m);
    return rc;
}

int tb_rmf_current(const char *dir, char **name)
{
    char *path = tb_fs_join(dir, "CURRENT"), *text = NULL;
    size_t len = 0;
    int rc;
    if (!path)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_fs_read_file(path, &text, &len);
    if (rc == 0) {
        /* "MANIFEST-000123\n"; RocksDB writes it by rename, so it is whole or absent. */
        len = strcspn(text, "\n");
        if (len < 10 || len > 64 || strncmp(text, "MANIFEST-", 9) != 0 || strchr(text, '/')) {
            rc = tb_error_set(TB_EVERIFY, "CURRENT does not name a MANIFEST (%s)", path);
        } else {
            text[len] = '\0';
            *name = text;
            text = NULL;
        }
    }
    free(text);
    free(path);
    return rc;
}

const struct tb_rmf_cf *tb_rmf_find_cf(const struct tb_rmf_version *v, uint32_t id)
{
    for (size_t i = 0; i < v->ncf; i++)
        if (v->cfs[i].id == id)
            return &v->cfs[i];
    return NULL;
}

/* ---- adding column families ---- */

struct edit_buf {
    unsigned char b[1024];
    size_t n;
};

static int eb_varint(struct edit_buf *e, uint64_t v)
{
    if (e->n + 10 > sizeof e->b)
        return -1;
    while (v >= 0x80) {
        e->b[e->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    e->b[e->n++] = (unsigned char)v;
    return 0;
}

static int eb_slice(struct edit_buf *e, const char *s)
{
    size_t len = strlen(s);
    if (eb_varint(e, len) < 0 || e->n + len > sizeof e->b)
        return -1;
    memcpy(e->b + e->n, s, len);
    e->n += len;
    return 0;
}

/* VersionEdit tags (db/version_edit.h). */
enum { E_COMPARATOR = 1, E_LOG_NUMBER = 2, E_NEXT_FILE = 3, E_COLUMN_FAMILY = 200, E_CF_ADD = 201, E_MAX_CF = 203 };

int tb_rmf_add_cfs(const char *dir, const char *cur, uint64_t number, const struct tb_rmf_cf_add *cfs, size_t n,
                   const char *comparator, uint64_t log_number, uint64_t next_file_number, uint32_t max_column_family)
{
    char *from = tb_fs_join(dir, cur), *to = NULL, *tmp = NULL, *current = tb_fs_join(dir, "CURRENT"), *data = NULL;
    char name[64];
    size_t len = 0;
    tb_wal_writer *w = NULL;
    struct edit_buf e;
    int rc, fd = -1;

    snprintf(name, sizeof name, "MANIFEST-%06" PRIu64, number);
    if (!from || !current || !(to = tb_fs_join(dir, name))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = tb_fs_read_file(from, &data, &len)) < 0 || (rc = tb_fs_temp_sibling(to, &tmp)) < 0)
        goto cleanup;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot write %s", tmp);
        fd = -1;
        goto cleanup;
    }
    fd = -1;
    /* The copy ends where the original's last record ends: appending continues its block. */
    if ((rc = tb_wal_writer_append(&w, tmp)) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        e.n = 0;
        if (eb_varint(&e, E_COMPARATOR) < 0 || eb_slice(&e, comparator) < 0 || eb_varint(&e, E_LOG_NUMBER) < 0 ||
            eb_varint(&e, log_number) < 0 || eb_varint(&e, E_COLUMN_FAMILY) < 0 || eb_varint(&e, cfs[i].id) < 0 ||
            eb_varint(&e, E_CF_ADD) < 0 || eb_slice(&e, cfs[i].name) < 0) {
            rc = tb_error_set(TB_EVERIFY, "column family name too long: %s", cfs[i].name);
            goto cleanup;
        }
        if ((rc = tb_wal_writer_add(w, e.b, e.n)) < 0)
            goto cleanup;
    }
    e.n = 0;
    eb_varint(&e, E_NEXT_FILE);
    eb_varint(&e, next_file_number);
    eb_varint(&e, E_MAX_CF);
    eb_varint(&e, max_column_family);
    if ((rc = tb_wal_writer_add(w, e.b, e.n)) < 0)
        goto cleanup;
    rc = tb_wal_writer_close(w);
    w = NULL;
    if (rc < 0 || (rc = tb_fs_publish(tmp, to)) < 0)
        goto cleanup;
    free(tmp);
    tmp = NULL;
    snprintf(name + strlen(name), sizeof name - strlen(name), "\n");
    rc = tb_fs_write_atomic(current, name, strlen(name), 0644);
cleanup:
    tb_wal_writer_free(w);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(data);
    free(to);
    free(current);
    free(from);
    return rc;
}
