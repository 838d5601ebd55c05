/* replay: two passes over the archive. The first checks every segment (CRCs, continuity)
 * and finds the window, so damage is found before the DB is touched; the second applies.
 * Prepared sections are held until their Commit (applied there, with the sequences the
 * Commit consumes) or Rollback (dropped). One applier decides what is applied; it hands
 * each op to a sink: a RocksDB write batch on the base opened here (writes go without WAL
 * and are flushed once at the end: a crash during replay means restoring the base again),
 * or, with as_wal_file, our WriteBatch encoder into one new WAL file that the server's own
 * RocksDB replays when it opens the base (docs/wal-notes.md, "PITR by a written WAL file"). */
#include "replay.h"
#include "archiver.h"
#include "batch.h"
#include "error.h"
#include "fs.h"
#include "log_writer.h"
#include "rdbmanifest.h"
#include "rocksopts.h"
#include "merge.h"
#include "rocks.h"
#include "content.h"
#include "txndb.h"
#include "segment.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

/* ---- pass 1: the window ---- */

struct window {
    struct tb_replay_result *res;
    uint64_t base, expect;
    int have;
    int64_t last_ts;
};

static int window_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    (void)segment;
    struct window *w = arg;
    if (!w->have) {
        w->res->archive_first = r->first_seq;
        w->res->archive_first_ts = r->ts_ns;
    } else if (r->first_seq != w->expect && !(r->flags & TB_SEG_FLAG_RESYNC) && !w->res->gap_to) {
        w->res->gap_from = w->expect;
        w->res->gap_to = r->first_seq;
    }
    /* The stamp in effect at the base: the record that holds sequence base. */
    if (r->first_seq <= w->base && (r->next_seq > w->base || r->first_seq == w->base))
        w->res->base_ts = r->ts_ns;
    w->have = 1;
    w->expect = r->next_seq;
    w->res->archive_next = r->next_seq;
    w->res->archive_last_ts = r->ts_ns;
    return 0;
}

/* ---- pass 2: apply ---- */

struct held {
    char *xid;
    size_t xlen;
    unsigned char *ops; /* a WriteBatch: 12-byte header, then the section's entries */
    size_t len;
    size_t base_len; /* ops[0, base_len): header and the sections at or before the base */
};

struct cfmap {
    uint32_t id;
    char *name;
    rocksdb_column_family_handle_t *h;
};

struct applier;

/* Where the applier's decided ops go. put takes one data op at its archive sequence; flush
 * ends a bounded batch (memory stays flat whatever the archive's size); per_record also
 * ends one after every archived record (a WAL file's records then follow the archive's). */
struct sink {
    int (*put)(struct applier *a, const struct tb_wb_entry *e, uint64_t seq);
    int (*flush)(struct applier *a);
    int per_record;
};

struct applier {
    const struct tb_replay_opts *o;
    const struct sink *sink;
    struct tb_replay_result *res;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;
    rocksdb_writebatch_t *wb;
    size_t wb_ops, wb_bytes;
    struct cfmap *cfs;
    size_t ncf;
    char **names;
    size_t nnames;
    rocksdb_column_family_handle_t **handles;
    struct held *held;
    size_t nheld;
    int64_t cur_ts;
    int stopped;
    uint64_t base;
    /* The transactions the base's own WAL leaves prepared (NULL: not known). */
    const struct tb_pending *base_pending;
    /* The WAL file sink: the base's column families (its MANIFEST), the record being
     * built, the file (NULL in the checking pass), the next record's header sequence. */
    struct tb_rmf_version *basev;
    struct tb_wb_builder wbb;
    tb_wal_writer *ww;
    uint64_t next_hdr;
    /* Column families the base lacks that the file writes: added to its MANIFEST. */
    struct tb_rmf_cf_add *adds;
    size_t nadds;
};

static int db_err(char *err, const char *what)
{
    tb_error_set(TB_EIO, "%s: %s", what, err);
    free(err);
    return TB_EIO;
}

static int load_cfmap(struct applier *a)
{
    struct tb_cf_name *v = NULL;
    size_t n = 0;
    int rc = tb_cf_map_load(a->o->wal_dir, &v, &n);
    if (rc < 0)
        return rc;
    if (n && !(a->cfs = calloc(n, sizeof *a->cfs))) {
        tb_cf_map_free(v, n);
        return tb_error_set(TB_EIO, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        a->cfs[i].id = v[i].id;
        a->cfs[i].name = v[i].name; /* the applier takes the names */
        a->cfs[i].h = NULL;
    }
    a->ncf = n;
    free(v);
    return 0;
}

/* The target's handle for a source CF id, creating the CF when the base lacks it. */
static int handle_for(struct applier *a, uint32_t id, rocksdb_column_family_handle_t **h)
{
    char *err = NULL;
    for (size_t i = 0; i < a->ncf; i++) {
        if (a->cfs[i].id != id)
            continue;
        if (!a->cfs[i].h) {
            for (size_t k = 0; k < a->nnames; k++)
                if (strcmp(a->names[k], a->cfs[i].name) == 0)
                    a->cfs[i].h = a->handles[k];
            if (!a->cfs[i].h) {
                a->cfs[i].h = rocksdb_create_column_family(a->db, a->opts, a->cfs[i].name, &err);
                if (err)
                    return db_err(err, "cannot create column family");
            }
        }
        *h = a->cfs[i].h;
        return 0;
    }
    return tb_error_set(TB_EVERIFY, "the archive writes column family id %u, which cf.tsv does not name", id);
}

static int rocks_flush(struct applier *a)
{
    char *err = NULL;
    if (!a->wb_ops)
        return 0;
    rocksdb_write(a->db, a->wo, a->wb, &err);
    if (err)
        return db_err(err, "cannot write to the database");
    rocksdb_writebatch_clear(a->wb);
    a->wb_ops = a->wb_bytes = 0;
    return 0;
}

static int rocks_put(struct applier *a, const struct tb_wb_entry *e, uint64_t seq)
{
    rocksdb_column_family_handle_t *h = NULL;
    int rc;
    if ((rc = handle_for(a, e->cf, &h)) < 0)
        return rc;
    switch (e->kind) {
    case TB_WB_PUT:
        rocksdb_writebatch_put_cf(a->wb, h, (const char *)e->key, e->klen, (const char *)e->value, e->vlen);
        break;
    case TB_WB_DELETE: rocksdb_writebatch_delete_cf(a->wb, h, (const char *)e->key, e->klen); break;
    case TB_WB_SINGLE_DELETE: rocksdb_writebatch_singledelete_cf(a->wb, h, (const char *)e->key, e->klen); break;
    case TB_WB_DELETE_RANGE:
        rocksdb_writebatch_delete_range_cf(a->wb, h, (const char *)e->key, e->klen, (const char *)e->value, e->vlen);
        break;
    case TB_WB_MERGE:
        rocksdb_writebatch_merge_cf(a->wb, h, (const char *)e->key, e->klen, (const char *)e->value, e->vlen);
        break;
    default:
        return tb_error_set(TB_EVERIFY, "cannot replay a %s entry (sequence %" PRIu64 "): not supported by the C API",
                            tb_wb_kind_name(e->kind), seq);
    }
    return 0;
}

static const struct sink rocks_sink = { rocks_put, rocks_flush, 0 };

/* The name cf.tsv gives a source CF id (NULL when it names none). */
static const char *cf_name(const struct applier *a, uint32_t id)
{
    for (size_t i = 0; i < a->ncf; i++)
        if (a->cfs[i].id == id)
            return a->cfs[i].name;
    return NULL;
}

/* A column family created after the base: added to its MANIFEST under the archive's id
 * (RocksDB does not create column families from the WAL), unless the name is taken. */
static int walfile_add_cf(struct applier *a, uint32_t id, const char *name)
{
    struct tb_rmf_cf_add *p;
    for (size_t i = 0; i < a->basev->ncf; i++)
        if (strcmp(a->basev->cfs[i].name, name) == 0)
            return tb_error_set(TB_EVERIFY,
                                "column family '%s' is id %u in the archive but %u in the base: not the "
                                "same database",
                                name, id, a->basev->cfs[i].id);
    for (size_t i = 0; i < a->nadds; i++)
        if (a->adds[i].id == id)
            return 0;
    if (!(p = realloc(a->adds, (a->nadds + 1) * sizeof *p)))
        return tb_error_set(TB_EIO, "out of memory");
    a->adds = p;
    p[a->nadds].id = id;
    p[a->nadds].name = name;
    a->nadds++;
    return 0;
}

/* The server replays a WAL file's writes only into column families its MANIFEST has, under
 * the ids the archive uses; RocksDB would skip (or fail on) any other, so it is refused
 * here, in the checking pass, before anything is written. */
static int walfile_put(struct applier *a, const struct tb_wb_entry *e, uint64_t seq)
{
    const struct tb_rmf_cf *c = tb_rmf_find_cf(a->basev, e->cf);
    const char *name = cf_name(a, e->cf);
    int rc;
    if (!c && name && a->o->wal_file_add_cfs)
        return (rc = walfile_add_cf(a, e->cf, name)) < 0 ? rc : tb_wb_builder_add(&a->wbb, e);
    if (!c && !name)
        return tb_error_set(TB_EVERIFY, "the archive writes column family id %u, which cf.tsv does not name", e->cf);
    if (!c)
        return tb_error_set(TB_EGAP,
                            "column family '%s' (id %u) was created after the base, which lacks it; its "
                            "first write to apply is at sequence %" PRIu64 ", which a WAL file cannot carry without "
                            "adding it to the base's MANIFEST (refused by --no-new-column-families): choose a target "
                            "before it, or let it be added",
                            name, e->cf, seq);
    if (name && strcmp(name, c->name) != 0)
        return tb_error_set(TB_EVERIFY,
                            "column family id %u is '%s' in the archive but '%s' in the base: not the "
                            "same database",
                            e->cf, name, c->name);
    return tb_wb_builder_add(&a->wbb, e);
}

/* One record: header sequence = the previous one + its op count, an upper bound of what
 * it consumes under any policy (seq_per_batch takes one per sub-batch, and a sub-batch
 * holds at least one op); a record of markers alone (a Commit) takes one sequence. */
static int walfile_flush(struct applier *a)
{
    const unsigned char *rec;
    size_t len;
    int rc = 0;
    if (!a->wbb.len)
        return 0;
    rec = tb_wb_builder_finish(&a->wbb, a->next_hdr, &len);
    if (a->ww && (rc = tb_wal_writer_add(a->ww, rec, len)) < 0)
        return rc;
    a->next_hdr += a->wbb.count ? a->wbb.count : 1;
    a->res->file_records++;
    a->res->file_bytes += len;
    tb_wb_builder_reset(&a->wbb);
    a->wb_ops = a->wb_bytes = 0;
    return rc;
}

static const struct sink walfile_sink = { walfile_put, walfile_flush, 1 };

/* Whether a write at seq under stamp cur_ts lies past the target. */
static int past_target(const struct applier *a, uint64_t seq)
{
    return (a->o->target_ns && a->cur_ts > a->o->target_ns) || (a->o->target_seq && seq > a->o->target_seq);
}

/* One data op at sequence seq under stamp cur_ts; stops at the target. What is applied is
 * decided here, for every sink. */
static int apply_op(struct applier *a, const struct tb_wb_entry *e, uint64_t seq)
{
    int rc;
    if (a->stopped || seq <= a->base)
        return 0;
    if (past_target(a, seq)) {
        a->stopped = 1;
        return 0;
    }
    if ((rc = a->sink->put(a, e, seq)) < 0)
        return rc;
    a->res->ops++;
    a->res->reached_seq = seq;
    a->res->reached_ts = a->cur_ts;
    /* Bounded batches: memory stays flat whatever the archive's size. */
    a->wb_bytes += e->klen + e->vlen;
    if (++a->wb_ops >= 20000 || a->wb_bytes >= (8u << 20))
        return a->sink->flush(a);
    return 0;
}

/* The held transaction named xid (NULL: none). */
static struct held *find_held(struct applier *a, const unsigned char *xid, size_t xlen)
{
    for (size_t i = 0; i < a->nheld; i++)
        if (a->held[i].xlen == xlen && memcmp(a->held[i].xid, xid, xlen) == 0)
            return &a->held[i];
    return NULL;
}

static void forget_held(struct applier *a, struct held *hd)
{
    free(hd->xid);
    free(hd->ops);
    *hd = a->held[--a->nheld];
}

static void drop_held(struct applier *a)
{
    for (size_t i = 0; i < a->nheld; i++) {
        free(a->held[i].xid);
        free(a->held[i].ops);
    }
    free(a->held);
    a->held = NULL;
    a->nheld = 0;
}

/* Whether the entries in [from, to) of a record write (cf, key). */
static int writes_key(const unsigned char *from, const unsigned char *to, uint32_t cf, const unsigned char *key,
                      size_t klen)
{
    struct tb_wb_iter it = { .rec = from, .p = from, .end = to };
    struct tb_wb_entry e;
    while (tb_wb_next(&it, &e) == 1)
        if (tb_wb_consumes_seq(e.kind) && e.cf == cf && e.klen == klen && memcmp(e.key, key, klen) == 0)
            return 1;
    return 0;
}

/* Applies hd's data ops from byte from on (TB_WB_HEADER: all of them; apply: else only
 * counts them) from *cursor on, one sequence each, or all at *cursor (same_seq), except
 * those the batch [keep_from, keep_to) rewrites, and forgets hd. */
static int release_held_from(struct applier *a, struct held *hd, size_t from, uint64_t *cursor, int apply, int same_seq,
                             const unsigned char *keep_from, const unsigned char *keep_to)
{
    struct tb_wb_iter it = { .rec = hd->ops, .p = hd->ops + from, .end = hd->ops + hd->len };
    struct tb_wb_entry e;
    int m, rc = 0;
    while (rc == 0 && (m = tb_wb_next(&it, &e)) == 1) {
        if (!tb_wb_consumes_seq(e.kind) || writes_key(keep_from, keep_to, e.cf, e.key, e.klen))
            continue;
        if (apply)
            rc = apply_op(a, &e, *cursor);
        if (!same_seq)
            (*cursor)++;
    }
    forget_held(a, hd);
    return rc < 0 ? rc : (m < 0 ? m : 0);
}

static int release_held(struct applier *a, struct held *hd, uint64_t *cursor, int apply, int same_seq,
                        const unsigned char *keep_from, const unsigned char *keep_to)
{
    return release_held_from(a, hd, TB_WB_HEADER, cursor, apply, same_seq, keep_from, keep_to);
}

/* Applies xid's held ops from *cursor on (write-committed: they take sequences at the
 * Commit), or all at *cursor (same_seq: seq_per_batch), and forgets them. */
static int commit_held(struct applier *a, const unsigned char *xid, size_t xlen, uint64_t *cursor, int apply,
                       int same_seq)
{
    struct held *hd = find_held(a, xid, xlen);
    if (hd)
        return release_held(a, hd, cursor, apply, same_seq, NULL, NULL);
    return apply ? tb_error_set(TB_EGAP, "a Commit whose Prepare is not in the archive (archive starts too late)") : 0;
}

/* Write-unprepared: a transaction's sections follow one another under one xid; they are
 * kept together, in order, for its Commit or Rollback. */
static int hold_append(struct held *p, const unsigned char *ops, size_t len, int in_base)
{
    unsigned char *grown = realloc(p->ops, p->len + len);
    if (!grown)
        return tb_error_set(TB_EIO, "out of memory");
    memcpy(grown + p->len, ops, len);
    p->ops = grown;
    p->len += len;
    if (in_base)
        p->base_len = p->len;
    return 0;
}

static int hold(struct applier *a, const unsigned char *xid, size_t xlen, const unsigned char *ops, size_t len,
                int append, int in_base)
{
    struct held *p = append ? find_held(a, xid, xlen) : NULL;
    if (p)
        return hold_append(p, ops, len, in_base);
    p = realloc(a->held, (a->nheld + 1) * sizeof *p);
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    a->held = p;
    p = &a->held[a->nheld];
    p->xid = malloc(xlen ? xlen : 1);
    p->ops = malloc(len + TB_WB_HEADER);
    if (!p->xid || !p->ops) {
        free(p->xid);
        free(p->ops);
        return tb_error_set(TB_EIO, "out of memory");
    }
    memcpy(p->xid, xid, xlen);
    p->xlen = xlen;
    memset(p->ops, 0, TB_WB_HEADER);
    memcpy(p->ops + TB_WB_HEADER, ops, len);
    p->len = len + TB_WB_HEADER;
    p->base_len = in_base ? p->len : TB_WB_HEADER;
    a->nheld++;
    return 0;
}

/* seq_per_batch Rollback: RocksDB marks the rolled-back sections committed and cancels
 * them with the rollback batch before the marker, which rewrites each key the transaction
 * wrote to its value before (those ops are applied as they come). What that batch does not
 * rewrite stays visible in RocksDB: under WRITE_PREPARED the merge operands unless
 * rollback_merge_operands (docs/wal-notes.md). So exactly those held ops are applied. */
static int rollback_held(struct applier *a, const unsigned char *xid, size_t xlen, const unsigned char *batch,
                         const unsigned char *marker, uint64_t seq)
{
    struct held *hd = find_held(a, xid, xlen);
    return hd ? release_held(a, hd, &seq, 1, 1, batch, marker) : 0;
}

/* A transaction the base's own WAL leaves prepared, rolled back by the archive before the
 * target, into a WAL file: the server recovers it from the base's WAL as prepared, so the
 * file ends it with its Rollback marker, after the rollback batch's ops as RocksDB wrote
 * them (one batch). Without the marker the recovered transaction stays prepared, and the
 * server's first open showed other content than the writer's (test 56). Of its held ops,
 * only those after the base that the rollback batch does not rewrite are applied, as
 * rollback_held does; those in the base are recovered with it. */
static int rollback_in_base(struct applier *a, const unsigned char *xid, size_t xlen, const unsigned char *batch,
                            const unsigned char *marker, uint64_t seq)
{
    struct held *hd = find_held(a, xid, xlen);
    int rc = hd ? release_held_from(a, hd, hd->base_len, &seq, 1, 1, batch, marker) : 0;
    if (rc == 0 && (rc = tb_wb_builder_marker(&a->wbb, TB_WB_ROLLBACK, xid, xlen)) == 0)
        rc = walfile_flush(a);
    tb_wb_builder_reset(&a->wbb);
    return rc;
}

/* Whether the base's own WAL leaves e's transaction (a Commit's or Rollback's xid) prepared. */
static int pending_in_base(const struct applier *a, const struct tb_wb_entry *e)
{
    return a->base_pending && tb_pending_has(a->base_pending, e->key, e->klen);
}

/* seq_per_batch Rollback at seq, of the transaction whose rollback batch is [batch, marker). */
static int spb_rollback(struct applier *a, const struct tb_wb_entry *e, const unsigned char *batch,
                        const unsigned char *marker, uint64_t seq)
{
    if (seq > a->base && a->sink == &walfile_sink && pending_in_base(a, e))
        return past_target(a, seq) ? (a->stopped = 1, 0) : rollback_in_base(a, e->key, e->klen, batch, marker, seq);
    return rollback_held(a, e->key, e->klen, batch, marker, seq);
}

/* The sections of hd after the base as one write-unprepared section under its xid: *n gets
 * how many ops it holds (none: nothing is written). */
static int finish_sections(struct applier *a, const struct held *hd, const unsigned char *xid, size_t xlen, uint64_t at,
                           int *n)
{
    struct tb_wb_iter it = { .rec = hd->ops, .p = hd->ops + hd->base_len, .end = hd->ops + hd->len };
    struct tb_wb_entry e;
    int m = 0, rc = tb_wb_builder_marker(&a->wbb, TB_WB_BEGIN_PREPARE, NULL, 0);
    while (rc == 0 && (m = tb_wb_next(&it, &e)) == 1)
        if (tb_wb_consumes_seq(e.kind) && (rc = walfile_put(a, &e, at)) == 0)
            (*n)++;
    if (rc == 0 && m < 0)
        rc = m;
    if (rc == 0)
        rc = tb_wb_builder_marker(&a->wbb, TB_WB_END_PREPARE, xid, xlen);
    if (rc == 0 && *n)
        rc = walfile_flush(a);
    tb_wb_builder_reset(&a->wbb); /* a section without ops is not written */
    return rc;
}

/* A transaction the base's own WAL leaves prepared, committed by the archive before the
 * target, into a WAL file: the server recovers it from the base's WAL as prepared (its
 * sections there already in its memtables), so the file finishes that transaction rather
 * than writing its data as plain batches, which the server's rollback of the recovered one
 * would overwrite with the keys' earlier values (measured on a RocksDB 11.8.1 database
 * backed up under load): its sections after the base as one write-unprepared section
 * under its xid, then its Commit marker (docs/wal-notes.md). */
static int finish_in_base(struct applier *a, const unsigned char *xid, size_t xlen, uint64_t at)
{
    struct held *hd = find_held(a, xid, xlen);
    int rc = walfile_flush(a), n = 0;
    if (rc == 0 && hd && hd->len > hd->base_len)
        rc = finish_sections(a, hd, xid, xlen, at, &n);
    if (rc == 0 && (rc = tb_wb_builder_marker(&a->wbb, TB_WB_COMMIT, xid, xlen)) == 0)
        rc = walfile_flush(a);
    tb_wb_builder_reset(&a->wbb);
    if (rc < 0)
        return rc;
    a->res->ops += (uint64_t)n;
    a->res->reached_seq = at;
    a->res->reached_ts = a->cur_ts;
    if (hd)
        forget_held(a, hd);
    return 0;
}

/* A TSv1 stamp sets the time of what follows and counts as a batch. */
static void take_stamp(struct applier *a, const struct tb_wb_entry *e, int *units)
{
    int64_t ns;
    if (tb_wb_stamp(e, &ns)) {
        a->cur_ts = ns;
        (*units)++;
    }
}

/* seq_per_batch EndPrepare at seq: holds the section [section, marker). */
static int spb_end_prepare(struct applier *a, const struct tb_wb_iter *it, const struct tb_wb_entry *e,
                           const unsigned char *section, uint64_t seq)
{
    /* A prepared section is published at its sequence: past --target-seq, RocksDB's state
     * of that number lies behind. */
    if (a->o->target_seq && seq > a->o->target_seq && seq > a->base) {
        a->stopped = 1;
        return 0;
    }
    if (!section)
        return 0;
    return hold(a, e->key, e->klen, section, (size_t)(it->rec + e->offset - section), 1, seq <= a->base);
}

/* seq_per_batch Commit at seq. */
static int spb_commit(struct applier *a, const struct tb_wb_entry *e, uint64_t seq)
{
    /* RocksDB never publishes a Commit marker's own sequence (docs/wal-notes.md): the state
     * it calls N (a checkpoint's, a backup's last_sequence) includes Commits that follow
     * N's last sub-batch before any later one, so under --target-seq such a Commit applies
     * as of N. */
    uint64_t at = seq;
    int rc;
    if (a->o->target_seq && at > a->o->target_seq && a->o->target_seq > a->base)
        at = a->o->target_seq;
    /* The same from the base's side: a Commit right after the base's last sequence is in
     * the base (a checkpoint reports the sequence before it) unless the base's own WAL
     * still holds the transaction prepared. Applying it again would apply its merge
     * operands twice. */
    int pending = pending_in_base(a, e);
    if (seq == a->base + 1 && a->base_pending && !pending)
        rc = commit_held(a, e->key, e->klen, &at, 0, 1);
    else if (seq > a->base && a->sink == &walfile_sink && pending)
        rc = past_target(a, at) ? (a->stopped = 1, 0) : finish_in_base(a, e->key, e->klen, at);
    else
        rc = commit_held(a, e->key, e->klen, &at, 1, 1);
    if (rc == TB_EGAP && seq <= a->base)
        rc = 0; /* prepared before the archive began, committed into the base */
    return rc;
}

/* A record decoded as seq_per_batch (write-prepared/unprepared): ops take their sub-batch's
 * sequence; a transaction's sections (several for write-unprepared) are held and applied
 * at its Commit, all at the Commit's own sequence (where RocksDB makes them visible). */
static int apply_spb(struct applier *a, const struct tb_seg_record *r, int *units)
{
    struct tb_wb_iter it;
    struct tb_wb_seq sq;
    struct tb_wb_entry e;
    const unsigned char *section = NULL, *batch;
    uint64_t seq;
    int m = 0, rc;
    if ((rc = tb_wb_init(&it, r->data, r->len)) < 0)
        return rc;
    tb_wb_seq_init(&sq, it.seq);
    batch = it.p;
    while (rc == 0 && !a->stopped && (m = tb_wb_next(&it, &e)) == 1) {
        if ((rc = tb_wb_seq_step(&sq, &e, &seq)) < 0)
            break;
        switch (e.kind) {
        case TB_WB_LOG_DATA: take_stamp(a, &e, units); break;
        case TB_WB_BEGIN_PREPARE: section = it.p; break;
        case TB_WB_END_PREPARE:
            rc = spb_end_prepare(a, &it, &e, section, seq);
            section = NULL;
            batch = it.p;
            break;
        case TB_WB_COMMIT:
            rc = spb_commit(a, &e, seq);
            (*units)++;
            batch = it.p;
            break;
        case TB_WB_ROLLBACK:
            rc = spb_rollback(a, &e, batch, it.rec + e.offset, seq);
            batch = it.p;
            break;
        case TB_WB_NOOP:
            if (sq.empty)
                batch = it.p; /* a leading Noop is a placeholder */
            break;
        default:
            if (!section)
                rc = apply_op(a, &e, seq);
        }
    }
    tb_wb_seq_free(&sq);
    return rc < 0 ? rc : (m < 0 ? m : 0);
}

/* A record decoded as write-committed: ops take one sequence each from the record's
 * first; a prepared section is held and takes its sequences at its Commit. */
static int apply_plain(struct applier *a, const struct tb_seg_record *r, int *units)
{
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    uint64_t cursor = r->first_seq;
    const unsigned char *section = NULL;
    int m = 0, rc;
    if ((rc = tb_wb_init(&it, r->data, r->len)) < 0)
        return rc;
    while (rc == 0 && !a->stopped && (m = tb_wb_next(&it, &e)) == 1) {
        if (e.kind == TB_WB_LOG_DATA) {
            take_stamp(a, &e, units);
        } else if (e.kind == TB_WB_BEGIN_PREPARE) {
            section = it.p;
        } else if (e.kind == TB_WB_END_PREPARE) {
            if (section)
                rc = hold(a, e.key, e.klen, section, (size_t)(it.rec + e.offset - section), 0, 0);
            section = NULL;
        } else if (e.kind == TB_WB_COMMIT) {
            rc = commit_held(a, e.key, e.klen, &cursor, 1, 0);
            if (rc == TB_EGAP && cursor <= a->base)
                rc = 0; /* prepared before the archive began, committed into the base */
            (*units)++;
        } else if (e.kind == TB_WB_ROLLBACK) {
            commit_held(a, e.key, e.klen, &(uint64_t){ 0 }, 0, 0);
        } else if (e.kind != TB_WB_NOOP && !section) { /* in a section: held with it */
            rc = apply_op(a, &e, cursor++);
        }
    }
    return rc < 0 ? rc : (m < 0 ? m : 0);
}

static int apply_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    struct applier *a = arg;
    uint64_t ops0 = a->res->ops;
    int rc, units = 0;
    (void)segment;
    if (a->stopped)
        return 0;
    /* A record without a stamp takes the latest one before it (DESIGN: Time stamps). */
    if (!a->cur_ts)
        a->cur_ts = r->ts_ns;
    if (r->flags & TB_SEG_FLAG_SEQ_PER_BATCH)
        rc = apply_spb(a, r, &units);
    else
        rc = apply_plain(a, r, &units);
    /* A record counts when it applied something (not one the base already holds whole). */
    if (a->res->ops > ops0)
        a->res->batches += units ? (uint64_t)units : 1;
    if (rc == 0 && a->sink->per_record)
        rc = a->sink->flush(a);
    return rc;
}

/* ---- the recovery: its context and phases ---- */

struct replay {
    const struct tb_replay_opts *o;
    struct tb_replay_result *res;
    enum tb_policy policy;
    const char *base_wal; /* where the base's own WAL is */
    struct tb_pending *base_pending; /* the transactions that WAL leaves prepared */
    int gap_before_target; /* a gap after the base lies before the target */
};

static void applier_init(struct applier *a, const struct replay *r, const struct sink *sink)
{
    a->sink = sink;
    a->base_pending = r->base_pending;
    a->o = r->o;
    a->res = r->res;
    a->base = r->res->base_seq;
}

static void applier_free_cfs(struct applier *a)
{
    drop_held(a);
    for (size_t i = 0; i < a->ncf; i++)
        free(a->cfs[i].name);
    free(a->cfs);
}

/* ---- apply as a WAL file ---- */

/* The largest file number in dir (and its archive/ of old WALs): tables, blob files, WALs,
 * MANIFEST-N, OPTIONS-N. */
static int max_file_number(const char *dir, uint64_t *max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while ((de = readdir(d))) {
        const char *p = de->d_name;
        if (strncmp(p, "MANIFEST-", 9) == 0)
            p += 9;
        else if (strncmp(p, "OPTIONS-", 8) == 0)
            p += 8;
        if (!isdigit((unsigned char)*p))
            continue;
        uint64_t n = strtoull(p, NULL, 10);
        if (n > *max)
            *max = n;
    }
    closedir(d);
    char *arch = tb_fs_join(dir, "archive");
    int rc = 0;
    if (!arch)
        return tb_error_set(TB_EIO, "out of memory");
    if (tb_fs_exists(arch))
        rc = max_file_number(arch, max);
    free(arch);
    return rc;
}

/* Where the server looks for the WAL: the base directory unless told (a server whose
 * config sets a wal_dir reads WALs only there). Not taken from the OPTIONS file: a copy may
 * still name its source's wal_dir, the live server's, where a file of ours must never go
 * (a restored base's OPTIONS has none: docs/rocksdb-backup-notes.md). */
static int walfile_dir(const struct tb_replay_opts *o, char **out)
{
    struct stat st;
    const char *d = o->wal_file_dir ? o->wal_file_dir : o->db_path;
    if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
        return tb_error_errno(TB_ENOENT, errno, "the WAL directory to write to is not a directory (%s)", d);
    *out = strdup(d);
    return *out ? 0 : tb_error_set(TB_EIO, "out of memory");
}

/* One pass of the applier into the WAL file sink; w NULL: the checking pass (counts, CF
 * checks, nothing written). */
static int walfile_pass(const struct tb_replay_opts *o, struct tb_replay_result *res, struct applier *a,
                        tb_wal_writer *w, int progress)
{
    int rc;
    drop_held(a);
    a->stopped = 0;
    a->cur_ts = 0;
    a->ww = w;
    a->wb_ops = a->wb_bytes = 0;
    a->nadds = 0;
    a->next_hdr = res->file_first_seq;
    tb_wb_builder_reset(&a->wbb);
    res->reached_seq = res->base_seq;
    res->reached_ts = res->base_ts;
    res->batches = res->ops = res->file_records = res->file_bytes = 0;
    if (progress)
        rc = tb_seg_walk_progress(o->wal_dir, o->keys, apply_fn, a, o->progress, o->progress_arg, o->progress_total);
    else
        rc = tb_seg_walk(o->wal_dir, o->keys, apply_fn, a);
    if (rc == 0)
        rc = walfile_flush(a);
    res->file_next_seq = a->next_hdr;
    return rc;
}

/* The base's MANIFEST (*name: CURRENT's MANIFEST file) into a->basev, the directory the
 * file goes to (*dir), and the file's number: above every number the base and *dir use
 * (RocksDB skips a WAL numbered below a CF's log number, and gives new files numbers from
 * next_file_number). */
static int walfile_number(struct applier *a, char **name, char **dir)
{
    const struct tb_replay_opts *o = a->o;
    struct tb_replay_result *res = a->res;
    char *mpath = NULL;
    uint64_t maxno;
    int rc;
    if ((rc = tb_rmf_current(o->db_path, name)) < 0)
        return rc;
    if (!(mpath = tb_fs_join(o->db_path, *name)))
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_rmf_load(mpath, &a->basev);
    free(mpath);
    if (rc < 0 || (rc = walfile_dir(o, dir)) < 0)
        return rc;
    maxno = a->basev->next_file_number;
    if (a->basev->min_log_number_to_keep > maxno)
        maxno = a->basev->min_log_number_to_keep;
    if (a->basev->prev_log_number > maxno)
        maxno = a->basev->prev_log_number;
    for (size_t i = 0; i < a->basev->ncf; i++)
        if (a->basev->cfs[i].log_number > maxno)
            maxno = a->basev->cfs[i].log_number;
    if ((rc = max_file_number(o->db_path, &maxno)) < 0 ||
        (strcmp(*dir, o->db_path) && (rc = max_file_number(*dir, &maxno)) < 0))
        return rc;
    res->file_number = maxno + 1;
    /* Above the base's position: the server recovers the base's own WAL first, and a
     * header sequence may jump ahead of its last one, never fall behind it. */
    res->file_first_seq = res->base_seq + 1;
    snprintf(res->wal_file, sizeof res->wal_file, "%s/%06" PRIu64 ".log", *dir, res->file_number);
    return 0;
}

/* With column families to add, the new MANIFEST takes the file's number, the OPTIONS file
 * the next, and the file the one after. */
static void walfile_plan_adds(struct applier *a, const char *dir)
{
    struct tb_replay_result *res = a->res;
    if (!a->nadds)
        return;
    res->manifest_number = res->file_number;
    res->options_number = res->file_number + 1;
    res->file_number += 2;
    snprintf(res->wal_file, sizeof res->wal_file, "%s/%06" PRIu64 ".log", dir, res->file_number);
    for (size_t i = 0; i < a->nadds; i++) {
        size_t len = strlen(res->added_cfs);
        snprintf(res->added_cfs + len, sizeof res->added_cfs - len, "%s%s", len ? "," : "", a->adds[i].name);
    }
}

/* The column families the file writes that the base lacks, into a new MANIFEST (the
 * server takes its CFs from there) and a newer OPTIONS file (ldb --try_load_options takes
 * them from there; the server writes its own at open). */
static int walfile_add_cfs(struct applier *a, const char *manifest)
{
    struct tb_replay_result *res = a->res;
    uint32_t maxcf = a->basev->max_column_family;
    const struct tb_rmf_cf *def = tb_rmf_find_cf(a->basev, 0);
    const char **names = NULL;
    int rc;
    for (size_t i = 0; i < a->nadds; i++)
        if (a->adds[i].id > maxcf)
            maxcf = a->adds[i].id;
    rc = tb_rmf_add_cfs(a->o->db_path, manifest, res->manifest_number, a->adds, a->nadds,
                        def && def->comparator ? def->comparator : "leveldb.BytewiseComparator", res->file_number,
                        res->file_number + 1, maxcf);
    if (rc < 0)
        return rc;
    if (!(names = calloc(a->nadds, sizeof *names)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < a->nadds; i++)
        names[i] = a->adds[i].name;
    if ((rc = tb_rocksopts_add_cfs(a->o->db_path, res->options_number, names, a->nadds)) == TB_ENOENT)
        rc = 0;
    free(names);
    return rc;
}

/* The second pass into the file under a temporary name, the column families it needs,
 * then the file renamed into place (tb_fs_publish syncs it and the directory). */
static int walfile_write(struct applier *a, const char *manifest)
{
    struct tb_replay_result *res = a->res;
    tb_wal_writer *w = NULL;
    char *tmp = NULL;
    int rc;
    if ((rc = tb_fs_temp_sibling(res->wal_file, &tmp)) < 0 || (rc = tb_wal_writer_open(&w, tmp)) < 0)
        goto cleanup;
    rc = walfile_pass(a->o, res, a, w, 1);
    if (rc == 0) {
        rc = tb_wal_writer_close(w);
        w = NULL;
    }
    /* The CFs first: a crash between the two leaves a base with empty CFs it would have had
     * anyway; the other order would leave a WAL writing to CFs the server does not have. */
    if (rc == 0 && a->nadds)
        rc = walfile_add_cfs(a, manifest);
    if (rc == 0)
        rc = tb_fs_publish(tmp, res->wal_file);
    if (rc == 0)
        res->db_seq = res->file_next_seq - 1;
cleanup:
    tb_wal_writer_free(w);
    if (tmp && rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* As a WAL file: nothing opens the base. Its MANIFEST names its column families and the
 * numbers the file must exceed; a checking pass decides everything and refuses before a
 * byte is written; then the file is written under a temporary name, synced, renamed into
 * place and the directory synced. */
static int run_walfile(struct replay *r)
{
    struct applier a = { 0 };
    char *name = NULL, *dir = NULL;
    int rc;

    applier_init(&a, r, &walfile_sink);
    tb_wb_builder_init(&a.wbb);
    if ((rc = load_cfmap(&a)) < 0 || (rc = walfile_number(&a, &name, &dir)) < 0)
        goto cleanup;
    if ((rc = walfile_pass(r->o, r->res, &a, NULL, 0)) < 0)
        goto cleanup;
    walfile_plan_adds(&a, dir);
    if (!r->o->dry_run && r->res->ops)
        rc = walfile_write(&a, name);
cleanup:
    if (rc < 0 || !r->res->ops || r->o->dry_run)
        r->res->db_seq = 0;
    applier_free_cfs(&a);
    tb_wb_builder_free(&a.wbb);
    free(a.adds);
    tb_rmf_version_free(a.basev);
    free(dir);
    free(name);
    return rc;
}

/* ---- apply into the base opened here ---- */

/* The options of the open: a bulk load. */
static int rocks_options(struct applier *a)
{
    rocksdb_options_t *base_opts = rocksdb_options_create();
    char *err = NULL;
    size_t ncf, wb;
    a->opts = rocksdb_options_create();
    rocksdb_get_options_from_string(base_opts, TB_ROCKS_OPTIONS, a->opts, &err);
    rocksdb_options_destroy(base_opts);
    if (err)
        return db_err(err, "bad options");
    /* No compaction meanwhile; the server compacts when it opens the database
     * (docs/wal-notes.md). */
    rocksdb_options_set_disable_auto_compactions(a->opts, 1);
    tb_rocks_paths_single(a->opts, a->o->db_path);
    /* LZ4, as ThemisDB writes its upper levels (RocksDB's default here is Snappy, slower). */
    rocksdb_options_set_compression(a->opts, rocksdb_lz4_compression);
    a->names = rocksdb_list_column_families(a->opts, a->o->db_path, &a->nnames, &err);
    if (err)
        return db_err(err, "cannot list column families");
    if (!(a->handles = calloc(a->nnames, sizeof *a->handles)))
        return tb_error_set(TB_EIO, "out of memory");
    /* Memory stays bounded whatever the archive holds: each column family holds at most two
     * memtables (writes wait while a full one is flushed), so 2 x 64 MiB in all, as recovery
     * in txndb.cc; the write buffer manager's total only starts flushes, it stops nothing.
     * With 128 MiB memtables and 256 MiB in all, replaying 300 MiB of write-unprepared WAL
     * peaked at 311 MiB resident; with 32 MiB per column family and 128 MiB in all, 1 GiB
     * still reached 290 MiB when the flushes fell behind (5 column families, 2 memtables
     * each); with these, see docs/benchmarks.md. */
    ncf = a->ncf > a->nnames ? a->ncf : a->nnames;
    wb = ncf ? (64u << 20) / ncf : (32u << 20);
    wb = wb > (32u << 20) ? (32u << 20) : wb < (4u << 20) ? (4u << 20) : wb;
    rocksdb_options_set_write_buffer_size(a->opts, wb);
    rocksdb_options_set_max_write_buffer_number(a->opts, 2);
    rocksdb_options_set_db_write_buffer_size(a->opts, 64u << 20);
    return 0;
}

static int rocks_open(struct applier *a, rocksdb_options_t ***cfo)
{
    char *err = NULL;
    int rc;
    if ((rc = rocks_options(a)) < 0)
        return rc;
    /* Merge operands replay as they are; the flush at the end merges them, which needs each
     * CF's operator (ThemisDB's, by the name in the base's OPTIONS file). */
    if ((rc = tb_merge_cf_options(a->o->db_path, a->opts, (const char *const *)a->names, a->nnames, cfo)) < 0)
        return tb_error_wrap(rc, "cannot open the database for replay");
    a->db = rocksdb_open_column_families(a->opts, a->o->db_path, (int)a->nnames, (const char *const *)a->names,
                                         (const rocksdb_options_t *const *)*cfo, a->handles, &err);
    if (err)
        return db_err(err, "cannot open the database for replay");
    a->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(a->wo, 1);
    a->wb = rocksdb_writebatch_create();
    return 0;
}

/* Writes went without WAL: every column family is flushed before the database closes. */
static int rocks_finish(struct applier *a)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *err = NULL;
    int rc = 0;
    rocksdb_flushoptions_set_wait(fo, 1);
    for (size_t i = 0; i < a->ncf + a->nnames && rc == 0; i++) {
        rocksdb_column_family_handle_t *h = i < a->ncf ? a->cfs[i].h : a->handles[i - a->ncf];
        if (h)
            rocksdb_flush_cf(a->db, fo, h, &err);
        if (err)
            rc = db_err(err, "cannot flush");
    }
    rocksdb_flushoptions_destroy(fo);
    a->res->db_seq = rocksdb_get_latest_sequence_number(a->db);
    return rc;
}

static void rocks_close(struct applier *a, rocksdb_options_t **cfo)
{
    for (size_t i = 0; i < a->ncf; i++) {
        int shared = 0;
        for (size_t k = 0; k < a->nnames; k++)
            shared |= a->cfs[i].h == a->handles[k];
        if (a->cfs[i].h && !shared)
            rocksdb_column_family_handle_destroy(a->cfs[i].h);
    }
    for (size_t k = 0; a->handles && k < a->nnames; k++)
        if (a->handles[k])
            rocksdb_column_family_handle_destroy(a->handles[k]);
    applier_free_cfs(a);
    free(a->handles);
    tb_merge_cf_options_free(cfo, a->nnames);
    if (a->names)
        rocksdb_list_column_families_destroy(a->names, a->nnames);
    if (a->db)
        rocksdb_close(a->db);
    if (a->wb)
        rocksdb_writebatch_destroy(a->wb);
    if (a->wo)
        rocksdb_writeoptions_destroy(a->wo);
    if (a->opts)
        rocksdb_options_destroy(a->opts);
}

/* Recovers the restored base in place under the writer's policy (it is ours to change),
 * RocksDB's info log into a scratch directory beside it. */
static int recover_base(const char *db, enum tb_policy policy)
{
    char *logs = NULL;
    int rc;
    if (asprintf(&logs, "%s.replay-log-%d", db, (int)getpid()) < 0)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_txndb_recover(db, policy, logs);
    tb_fs_rm_rf(logs);
    free(logs);
    return rc;
}

/* Nothing changes in a base the linked RocksDB could not flush into (tb_content_writable):
 * the server's own RocksDB applies a WAL file instead. */
static int check_writable(const char *db)
{
    char *why = NULL;
    int rc = tb_content_writable(db, &why);
    if (rc == 1)
        rc = tb_error_set(TB_EIO,
                          "cannot replay into the database: %s; --as-wal-file writes the batches as a WAL "
                          "file that the server's own RocksDB applies when it opens the database",
                          why);
    free(why);
    return rc < 0 ? rc : 0;
}

static int run_rocks(struct replay *r)
{
    const struct tb_replay_opts *o = r->o;
    struct applier a = { 0 };
    rocksdb_options_t **cfo = NULL;
    int rc;
    if ((rc = check_writable(o->db_path)) < 0)
        return rc;
    /* The base's own WAL first, as its server would recover it: a C-API open below could
     * not replay a write-prepared or write-unprepared WAL. */
    if (r->policy != TB_POLICY_COMMITTED && (rc = recover_base(o->db_path, r->policy)) < 0)
        return rc;
    applier_init(&a, r, &rocks_sink);
    if ((rc = load_cfmap(&a)) < 0 || (rc = rocks_open(&a, &cfo)) < 0)
        goto cleanup;
    rc = tb_seg_walk_progress(o->wal_dir, o->keys, apply_fn, &a, o->progress, o->progress_arg, o->progress_total);
    if (rc == 0)
        rc = rocks_flush(&a);
    if (rc == 0)
        rc = rocks_finish(&a);
cleanup:
    rocks_close(&a, cfo);
    return rc;
}

/* ---- the phases ---- */

/* Open base: where the base stands in the WAL's numbering, from its files, without writing
 * anything yet (libbackup/rocks/content.h: a read-only open cannot replay a write-prepared or
 * write-unprepared WAL, and its last sequence would lag their commit markers). */
static int replay_open_base(struct replay *r)
{
    const struct tb_replay_opts *o = r->o;
    uint64_t next = 0;
    int rc;
    if (!tb_fs_exists(o->wal_dir))
        return tb_error_set(TB_ENOENT, "WAL archive does not exist (%s)", o->wal_dir);
    r->base_wal = o->as_wal_file && o->wal_file_dir ? o->wal_file_dir : o->db_path;
    r->policy = o->policy;
    if ((r->policy == TB_POLICY_UNKNOWN && (rc = tb_content_policy(o->db_path, r->base_wal, &r->policy, NULL)) < 0) ||
        (rc = tb_content_position(o->db_path, r->policy, &r->res->base_seq)) < 0)
        return rc;
    /* A base whose WAL the server reads from its wal_dir: that WAL's end counts too. */
    if (r->base_wal == o->db_path)
        return 0;
    if ((rc = tb_wal_files_end(r->base_wal, r->policy, &next, NULL)) < 0)
        return rc;
    if (next > 0 && next - 1 > r->res->base_seq)
        r->res->base_seq = next - 1;
    return 0;
}

/* Plan: the first pass checks every segment and finds the window; what the archive cannot
 * reach is refused before anything changes. */
static int replay_plan(struct replay *r)
{
    const struct tb_replay_opts *o = r->o;
    struct tb_replay_result *res = r->res;
    struct window w = { .res = res, .base = res->base_seq };
    int rc;
    if ((rc = tb_seg_walk(o->wal_dir, o->keys, window_fn, &w)) < 0)
        return rc;
    res->reached_seq = res->base_seq;
    res->reached_ts = res->base_ts;
    if (!w.have)
        return tb_error_set(TB_EGAP, "the WAL archive is empty (%s)", o->wal_dir);
    if (res->archive_first > res->base_seq + 1)
        return tb_error_set(TB_EGAP,
                            "the archive starts at sequence %" PRIu64 ", after the base's %" PRIu64
                            ": sequences %" PRIu64 "..%" PRIu64 " are missing",
                            res->archive_first, res->base_seq, res->base_seq + 1, res->archive_first - 1);
    if (o->target_seq && o->target_seq < res->base_seq)
        return tb_error_set(TB_EGAP, "target sequence %" PRIu64 " is before the base's %" PRIu64, o->target_seq,
                            res->base_seq);
    if (o->target_ns && res->base_ts && o->target_ns < res->base_ts)
        return tb_error_set(TB_EGAP,
                            "target time is before the base backup (which holds writes stamped up to %" PRId64 " ns)",
                            res->base_ts);
    r->gap_before_target = res->gap_to && res->gap_to > res->base_seq + 1 &&
        (!o->target_seq || res->gap_from <= o->target_seq);
    if (r->gap_before_target && !o->dry_run)
        return tb_error_set(TB_EGAP,
                            "WAL gap in the archive: sequences %" PRIu64 "..%" PRIu64 " are missing, before "
                            "the target",
                            res->gap_from, res->gap_to - 1);
    return 0;
}

int tb_replay_run(const struct tb_replay_opts *o, struct tb_replay_result *res)
{
    struct replay r = { .o = o, .res = res };
    int rc;

    memset(res, 0, sizeof *res);
    if ((rc = replay_open_base(&r)) < 0 || (rc = replay_plan(&r)) < 0)
        return rc;
    if (o->dry_run && !o->as_wal_file)
        return 0;
    /* The transactions the base's WAL leaves prepared (read before anything recovers it). */
    if ((rc = tb_wal_files_scan(r.base_wal, r.policy, &(uint64_t){ 0 }, NULL, &r.base_pending)) < 0)
        return rc;
    /* Apply and finish. A dry run over a gap before the target: the window says it; nothing
     * to simulate. */
    if (o->as_wal_file && !(o->dry_run && r.gap_before_target))
        rc = run_walfile(&r);
    else if (!o->dry_run)
        rc = run_rocks(&r);
    tb_pending_free(r.base_pending);
    return rc;
}
