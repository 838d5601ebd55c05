/* replay: two passes over the archive. The first checks every segment (CRCs, continuity)
 * and finds the window, so damage is found before the DB is touched; the second applies.
 * Prepared sections are held until their Commit (applied there, with the sequences the
 * Commit consumes) or Rollback (dropped). Writes go without WAL and are flushed once at the
 * end: a crash during replay means restoring the base again. */
#include "replay.h"
#include "archiver.h"
#include "batch.h"
#include "error.h"
#include "fs.h"
#include "merge.h"
#include "rocks.h"
#include "content.h"
#include "txndb.h"
#include "segment.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    unsigned char *ops;   /* a WriteBatch: 12-byte header, then the section's entries */
    size_t len;
};

struct cfmap {
    uint32_t id;
    char *name;
    rocksdb_column_family_handle_t *h;
};

struct applier {
    const struct tb_replay_opts *o;
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

static int flush_batch(struct applier *a)
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

/* One data op at sequence seq under stamp cur_ts; stops at the target. */
static int apply_op(struct applier *a, const struct tb_wb_entry *e, uint64_t seq)
{
    rocksdb_column_family_handle_t *h = NULL;
    int rc;
    if (a->stopped || seq <= a->base)
        return 0;
    if ((a->o->target_ns && a->cur_ts > a->o->target_ns) || (a->o->target_seq && seq > a->o->target_seq)) {
        a->stopped = 1;
        return 0;
    }
    if ((rc = handle_for(a, e->cf, &h)) < 0)
        return rc;
    switch (e->kind) {
    case TB_WB_PUT:
        rocksdb_writebatch_put_cf(a->wb, h, (const char *)e->key, e->klen, (const char *)e->value, e->vlen);
        break;
    case TB_WB_DELETE:
        rocksdb_writebatch_delete_cf(a->wb, h, (const char *)e->key, e->klen);
        break;
    case TB_WB_SINGLE_DELETE:
        rocksdb_writebatch_singledelete_cf(a->wb, h, (const char *)e->key, e->klen);
        break;
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
    a->res->ops++;
    a->res->reached_seq = seq;
    a->res->reached_ts = a->cur_ts;
    /* Bounded batches: memory stays flat whatever the archive's size. */
    a->wb_bytes += e->klen + e->vlen;
    if (++a->wb_ops >= 20000 || a->wb_bytes >= (8u << 20))
        return flush_batch(a);
    return 0;
}

/* Applies xid's held ops from *cursor on (write-committed: they take sequences at the
 * Commit), or all at *cursor (same_seq: seq_per_batch), and forgets them. */
static int commit_held(struct applier *a, const unsigned char *xid, size_t xlen, uint64_t *cursor, int apply,
                       int same_seq)
{
    for (size_t i = 0; i < a->nheld; i++) {
        struct held *hd = &a->held[i];
        struct tb_wb_iter it;
        struct tb_wb_entry e;
        int m, rc = 0;
        if (hd->xlen != xlen || memcmp(hd->xid, xid, xlen))
            continue;
        tb_wb_init(&it, hd->ops, hd->len);
        while (rc == 0 && (m = tb_wb_next(&it, &e)) == 1)
            if (tb_wb_consumes_seq(e.kind)) {
                if (apply)
                    rc = apply_op(a, &e, *cursor);
                if (!same_seq)
                    (*cursor)++;
            }
        free(hd->xid);
        free(hd->ops);
        a->held[i] = a->held[--a->nheld];
        return rc < 0 ? rc : (m < 0 ? m : 0);
    }
    return apply ? tb_error_set(TB_EGAP, "a Commit whose Prepare is not in the archive (archive starts too late)") : 0;
}

static int hold(struct applier *a, const unsigned char *xid, size_t xlen, const unsigned char *ops, size_t len,
                int append)
{
    struct held *p;
    /* Write-unprepared: a transaction's sections follow one another under one xid; they
     * are kept together, in order, for its Commit or Rollback. */
    for (size_t i = 0; append && i < a->nheld; i++) {
        unsigned char *grown;
        p = &a->held[i];
        if (p->xlen != xlen || memcmp(p->xid, xid, xlen))
            continue;
        if (!(grown = realloc(p->ops, p->len + len)))
            return tb_error_set(TB_EIO, "out of memory");
        memcpy(grown + p->len, ops, len);
        p->ops = grown;
        p->len += len;
        return 0;
    }
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
    a->nheld++;
    return 0;
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

/* seq_per_batch Rollback: RocksDB marks the rolled-back sections committed and cancels
 * them with the rollback batch before the marker, which rewrites each key the transaction
 * wrote to its value before (those ops are applied as they come). What that batch does not
 * rewrite stays visible in RocksDB: under WRITE_PREPARED the merge operands unless
 * rollback_merge_operands (docs/wal-notes.md). So exactly those held ops are applied. */
static int rollback_held(struct applier *a, const unsigned char *xid, size_t xlen, const unsigned char *batch,
                         const unsigned char *marker, uint64_t seq)
{
    for (size_t i = 0; i < a->nheld; i++) {
        struct held *hd = &a->held[i];
        struct tb_wb_iter it;
        struct tb_wb_entry e;
        int m, rc = 0;
        if (hd->xlen != xlen || memcmp(hd->xid, xid, xlen))
            continue;
        tb_wb_init(&it, hd->ops, hd->len);
        while (rc == 0 && (m = tb_wb_next(&it, &e)) == 1)
            if (tb_wb_consumes_seq(e.kind) && !writes_key(batch, marker, e.cf, e.key, e.klen))
                rc = apply_op(a, &e, seq);
        free(hd->xid);
        free(hd->ops);
        a->held[i] = a->held[--a->nheld];
        return rc < 0 ? rc : (m < 0 ? m : 0);
    }
    return 0;
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
    int m = 0, rc;
    if ((rc = tb_wb_init(&it, r->data, r->len)) < 0)
        return rc;
    tb_wb_seq_init(&sq, it.seq);
    batch = it.p;
    while (rc == 0 && !a->stopped && (m = tb_wb_next(&it, &e)) == 1) {
        int64_t ns;
        uint64_t seq;
        if ((rc = tb_wb_seq_step(&sq, &e, &seq)) < 0)
            break;
        switch (e.kind) {
        case TB_WB_LOG_DATA:
            if (tb_wb_stamp(&e, &ns)) {
                a->cur_ts = ns;
                (*units)++;
            }
            break;
        case TB_WB_BEGIN_PREPARE:
            section = it.p;
            break;
        case TB_WB_END_PREPARE:
            if (section)
                rc = hold(a, e.key, e.klen, section, (size_t)(it.rec + e.offset - section), 1);
            section = NULL;
            batch = it.p;
            break;
        case TB_WB_COMMIT:
            rc = commit_held(a, e.key, e.klen, &seq, 1, 1);
            if (rc == TB_EGAP && seq <= a->base)
                rc = 0; /* prepared before the archive began, committed into the base */
            (*units)++;
            batch = it.p;
            break;
        case TB_WB_ROLLBACK:
            rc = rollback_held(a, e.key, e.klen, batch, it.rec + e.offset, seq);
            batch = it.p;
            break;
        case TB_WB_NOOP:
            if (sq.empty)
                batch = it.p;
            break;
        default:
            if (!section)
                rc = apply_op(a, &e, seq);
        }
    }
    tb_wb_seq_free(&sq);
    return rc < 0 ? rc : (m < 0 ? m : 0);
}

static int apply_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    struct applier *a = arg;
    (void)segment;
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    uint64_t cursor = r->first_seq;
    const unsigned char *section = NULL;
    uint64_t ops0 = a->res->ops;
    int m, rc = 0, units = 0;
    if (a->stopped)
        return 0;
    /* A record without a stamp takes the latest one before it (DESIGN: Time stamps). */
    if (!a->cur_ts)
        a->cur_ts = r->ts_ns;
    if (r->flags & TB_SEG_FLAG_SEQ_PER_BATCH) {
        rc = apply_spb(a, r, &units);
        if (a->res->ops > ops0)
            a->res->batches += units ? (uint64_t)units : 1;
        return rc;
    }
    if ((rc = tb_wb_init(&it, r->data, r->len)) < 0)
        return rc;
    while (rc == 0 && !a->stopped && (m = tb_wb_next(&it, &e)) == 1) {
        int64_t ns;
        switch (e.kind) {
        case TB_WB_LOG_DATA:
            if (tb_wb_stamp(&e, &ns)) {
                a->cur_ts = ns;
                units++;
            }
            break;
        case TB_WB_BEGIN_PREPARE:
            section = it.p;
            break;
        case TB_WB_END_PREPARE:
            if (section)
                rc = hold(a, e.key, e.klen, section, (size_t)(it.rec + e.offset - section), 0);
            section = NULL;
            break;
        case TB_WB_COMMIT:
            rc = commit_held(a, e.key, e.klen, &cursor, 1, 0);
            if (rc == TB_EGAP && cursor <= a->base)
                rc = 0; /* prepared before the archive began, committed into the base */
            units++;
            break;
        case TB_WB_ROLLBACK:
            commit_held(a, e.key, e.klen, &(uint64_t){ 0 }, 0, 0);
            break;
        case TB_WB_NOOP:
            break;
        default:
            if (section)
                break; /* held with its section */
            rc = apply_op(a, &e, cursor++);
        }
    }
    if (rc == 0 && m < 0)
        rc = m;
    /* A record counts when it applied something (not one the base already holds whole). */
    if (a->res->ops > ops0)
        a->res->batches += units ? (uint64_t)units : 1;
    return rc;
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

int tb_replay_run(const struct tb_replay_opts *o, struct tb_replay_result *res)
{
    enum tb_policy policy;
    struct applier a = { 0 };
    struct window w = { 0 };
    char *err = NULL;
    rocksdb_options_t **cfo = NULL;
    rocksdb_options_t *base_opts = NULL;
    int rc;

    memset(res, 0, sizeof *res);
    if (!tb_fs_exists(o->wal_dir))
        return tb_error_set(TB_ENOENT, "WAL archive does not exist (%s)", o->wal_dir);
    /* Where the base stands in the WAL's numbering, from its files, without writing
     * anything yet (libbackup/content.h: a read-only open cannot replay a write-prepared
     * or write-unprepared WAL, and its last sequence would lag their commit markers). */
    if ((rc = tb_content_policy(o->db_path, o->db_path, &policy, NULL)) < 0 ||
        (rc = tb_content_position(o->db_path, policy, &res->base_seq)) < 0)
        return rc;
    w.res = res;
    w.base = res->base_seq;
    if ((rc = tb_seg_walk(o->wal_dir, window_fn, &w)) < 0)
        return rc;
    res->reached_seq = res->base_seq;
    res->reached_ts = res->base_ts;
    if (!w.have)
        return tb_error_set(TB_EGAP, "the WAL archive is empty (%s)", o->wal_dir);
    if (res->archive_first > res->base_seq + 1)
        return tb_error_set(TB_EGAP, "the archive starts at sequence %" PRIu64 ", after the base's %" PRIu64
                            ": sequences %" PRIu64 "..%" PRIu64 " are missing", res->archive_first, res->base_seq,
                            res->base_seq + 1, res->archive_first - 1);
    if (o->target_seq && o->target_seq < res->base_seq)
        return tb_error_set(TB_EGAP, "target sequence %" PRIu64 " is before the base's %" PRIu64, o->target_seq, res->base_seq);
    if (o->target_ns && res->base_ts && o->target_ns < res->base_ts)
        return tb_error_set(TB_EGAP, "target time is before the base backup (which holds writes stamped up to %" PRId64 " ns)",
                            res->base_ts);
    if (res->gap_to && res->gap_to > res->base_seq + 1) {
        int before = (!o->target_seq || res->gap_from <= o->target_seq);
        if (before && !o->dry_run)
            return tb_error_set(TB_EGAP, "WAL gap in the archive: sequences %" PRIu64 "..%" PRIu64 " are missing, before the target",
                                res->gap_from, res->gap_to - 1);
    }
    if (o->dry_run)
        return 0;

    /* The base's own WAL first, as its server would recover it: a C-API open below could
     * not replay a write-prepared or write-unprepared WAL. */
    if (policy != TB_POLICY_COMMITTED && (rc = recover_base(o->db_path, policy)) < 0)
        goto cleanup;

    /* Apply. */
    a.o = o;
    a.res = res;
    a.base = res->base_seq;
    if ((rc = load_cfmap(&a)) < 0)
        goto cleanup;
    base_opts = rocksdb_options_create();
    a.opts = rocksdb_options_create();
    rocksdb_get_options_from_string(base_opts, TB_ROCKS_OPTIONS, a.opts, &err);
    if (err) {
        rc = db_err(err, "bad options");
        goto cleanup;
    }
    /* A bulk load: no compaction meanwhile; the server compacts when it opens the
     * database (docs/wal-notes.md). Memtables: below, once the column families are known. */
    rocksdb_options_set_disable_auto_compactions(a.opts, 1);
    tb_rocks_paths_single(a.opts, o->db_path);
    /* LZ4, as ThemisDB writes its upper levels (RocksDB's default here is Snappy, slower). */
    rocksdb_options_set_compression(a.opts, rocksdb_lz4_compression);
    a.names = rocksdb_list_column_families(a.opts, o->db_path, &a.nnames, &err);
    if (err) {
        rc = db_err(err, "cannot list column families");
        goto cleanup;
    }
    a.handles = calloc(a.nnames, sizeof *a.handles);
    if (!a.handles) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    /* Memory stays bounded whatever the archive holds: each column family holds at most two
     * memtables (writes wait while a full one is flushed), so 2 x 64 MiB in all, as recovery
     * in txndb.cc; the write buffer manager's total only starts flushes, it stops nothing.
     * With 128 MiB memtables and 256 MiB in all, replaying 300 MiB of write-unprepared WAL
     * peaked at 311 MiB resident; with 32 MiB per column family and 128 MiB in all, 1 GiB
     * still reached 290 MiB when the flushes fell behind (5 column families, 2 memtables
     * each); with these, see docs/benchmarks.md. */
    {
        size_t ncf = a.ncf > a.nnames ? a.ncf : a.nnames, wb = ncf ? (64u << 20) / ncf : (32u << 20);
        wb = wb > (32u << 20) ? (32u << 20) : wb < (4u << 20) ? (4u << 20) : wb;
        rocksdb_options_set_write_buffer_size(a.opts, wb);
        rocksdb_options_set_max_write_buffer_number(a.opts, 2);
        rocksdb_options_set_db_write_buffer_size(a.opts, 64u << 20);
    }
    /* Merge operands replay as they are; the flush at the end merges them, which needs each
     * CF's operator (ThemisDB's, by the name in the base's OPTIONS file). */
    if ((rc = tb_merge_cf_options(o->db_path, a.opts, (const char *const *)a.names, a.nnames, &cfo)) < 0) {
        tb_error_wrap(rc, "cannot open the database for replay");
        goto cleanup;
    }
    a.db = rocksdb_open_column_families(a.opts, o->db_path, (int)a.nnames, (const char *const *)a.names,
                                        (const rocksdb_options_t *const *)cfo, a.handles, &err);
    if (err) {
        rc = db_err(err, "cannot open the database for replay");
        goto cleanup;
    }
    a.wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(a.wo, 1);
    a.wb = rocksdb_writebatch_create();
    rc = tb_seg_walk_progress(o->wal_dir, apply_fn, &a, o->progress, o->progress_arg, o->progress_total);
    if (rc == 0)
        rc = flush_batch(&a);
    if (rc == 0) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (size_t i = 0; i < a.ncf && rc == 0; i++)
            if (a.cfs[i].h) {
                rocksdb_flush_cf(a.db, fo, a.cfs[i].h, &err);
                if (err)
                    rc = db_err(err, "cannot flush");
            }
        for (size_t i = 0; i < a.nnames && rc == 0; i++) {
            rocksdb_flush_cf(a.db, fo, a.handles[i], &err);
            if (err)
                rc = db_err(err, "cannot flush");
        }
        rocksdb_flushoptions_destroy(fo);
        res->db_seq = rocksdb_get_latest_sequence_number(a.db);
    }
cleanup:
    for (size_t i = 0; i < a.ncf; i++) {
        int shared = 0;
        for (size_t k = 0; k < a.nnames; k++)
            shared |= a.cfs[i].h == a.handles[k];
        if (a.cfs[i].h && !shared)
            rocksdb_column_family_handle_destroy(a.cfs[i].h);
        free(a.cfs[i].name);
    }
    for (size_t k = 0; a.handles && k < a.nnames; k++)
        if (a.handles[k])
            rocksdb_column_family_handle_destroy(a.handles[k]);
    for (size_t i = 0; i < a.nheld; i++) {
        free(a.held[i].xid);
        free(a.held[i].ops);
    }
    free(a.held);
    free(a.cfs);
    free(a.handles);
    tb_merge_cf_options_free(cfo, a.nnames);
    if (a.names)
        rocksdb_list_column_families_destroy(a.names, a.nnames);
    if (a.db)
        rocksdb_close(a.db);
    if (a.wb)
        rocksdb_writebatch_destroy(a.wb);
    if (a.wo)
        rocksdb_writeoptions_destroy(a.wo);
    if (a.opts)
        rocksdb_options_destroy(a.opts);
    if (base_opts)
        rocksdb_options_destroy(base_opts);
    return rc;
}
