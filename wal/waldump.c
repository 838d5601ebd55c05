/* waldump: the records of WAL files decoded for display, as our reader and decoder see
 * them; the program prints them (the format of `ldb dump_wal --header`). */
#include "waldump.h"
#include "error.h"
#include "log_reader.h"
#include "mem.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct tb_wal_dump {
    struct tb_wal_dump_opts o;
    struct tb_pending *pending;
    tb_wal_reader *r;
    char *path;
    struct tb_wal_dump_entry *v;
    size_t cap;
    struct tb_wal_dump_record rec;
};

int tb_wal_dump_new(tb_wal_dump **out, const struct tb_wal_dump_opts *o)
{
    tb_wal_dump *d = calloc(1, sizeof *d);
    if (!d || !(d->pending = tb_pending_new())) {
        free(d);
        return tb_error_set(TB_EIO, "out of memory");
    }
    d->o = *o;
    *out = d;
    return 0;
}

void tb_wal_dump_free(tb_wal_dump *d)
{
    if (d) {
        tb_wal_reader_free(d->r);
        tb_pending_free(d->pending);
        free(d->path);
        free(d->v);
    }
    free(d);
}

int tb_wal_dump_open(tb_wal_dump *d, const char *path)
{
    const char *base = strrchr(path, '/');
    uint64_t number = strtoull(base ? base + 1 : path, NULL, 10);
    tb_wal_reader_free(d->r);
    d->r = NULL;
    free(d->path);
    if (!(d->path = strdup(path)))
        return tb_error_set(TB_EIO, "out of memory");
    return tb_wal_reader_open_mapped(&d->r, path, number);
}

int tb_wal_dump_torn(tb_wal_dump *d, uint64_t *offset)
{
    *offset = tb_wal_reader_offset(d->r);
    return tb_wal_reader_torn(d->r);
}

static int keep_entry(tb_wal_dump *d, const struct tb_wb_entry *e, uint64_t seq, int prepared)
{
    int rc = tb_grow(&d->v, &d->cap, d->rec.n, sizeof *d->v, 64);
    if (rc < 0)
        return rc;
    d->v[d->rec.n].e = *e;
    d->v[d->rec.n].seq = seq;
    d->v[d->rec.n++].prepared = prepared;
    d->rec.entries = d->v;
    return 0;
}

/* The entries of the record in it, each with the sequence it takes: under seq_per_batch
 * its sub-batch's, else one each from the header's, a prepared section's at its Commit. */
static int decode_entries(tb_wal_dump *d, struct tb_wb_iter *it)
{
    struct tb_wb_seq sq;
    struct tb_wb_entry e;
    uint64_t cursor = it->seq;
    int in_prepare = 0, m, rc = 0, seqs = d->o.seqs, spb = d->rec.spb;
    tb_wb_seq_init(&sq, it->seq);
    while ((m = tb_wb_next(it, &e)) == 1) {
        uint64_t seq = 0;
        if (seqs && spb && (m = tb_wb_seq_step(&sq, &e, &seq)) < 0)
            break;
        if (seqs && !spb && tb_wb_consumes_seq(e.kind) && !in_prepare)
            seq = cursor++;
        if ((rc = keep_entry(d, &e, seq, seqs && !spb && in_prepare && tb_wb_consumes_seq(e.kind))) < 0)
            break;
        if (e.kind == TB_WB_BEGIN_PREPARE)
            in_prepare = 1;
        else if (e.kind == TB_WB_END_PREPARE || e.kind == TB_WB_COMMIT || e.kind == TB_WB_ROLLBACK)
            in_prepare = 0;
    }
    tb_wb_seq_free(&sq);
    if (rc < 0)
        return rc;
    return m < 0 ? tb_error_wrap(m, "record at offset %" PRIu64 " of %s", d->rec.offset, d->path) : 0;
}

static int count_entries(tb_wal_dump *d, struct tb_wb_iter *it)
{
    struct tb_wb_entry e;
    int m;
    while ((m = tb_wb_next(it, &e)) == 1)
        d->rec.n++;
    return m;
}

int tb_wal_dump_next(tb_wal_dump *d, const struct tb_wal_dump_record **out)
{
    const unsigned char *rec;
    size_t len;
    struct tb_wb_iter it;
    int more = tb_wal_reader_next(d->r, &rec, &len), rc;
    if (more <= 0)
        return more;
    if ((rc = tb_wb_init(&it, rec, len)) < 0)
        return rc;
    memset(&d->rec, 0, sizeof d->rec);
    d->rec.seq = it.seq;
    d->rec.count = it.count;
    d->rec.len = len;
    d->rec.offset = tb_wal_reader_record_offset(d->r);
    *out = &d->rec;
    if (d->o.count_only) {
        d->rec.err = count_entries(d, &it);
        return d->rec.err < 0 ? d->rec.err : 1;
    }
    /* A damaged record fails the scan too, with the scan's message. */
    if (d->o.seqs)
        tb_wb_policy_refine(&d->o.policy, NULL, rec, len);
    if (d->o.seqs && (rc = tb_record_scan(d->pending, d->o.policy, rec, len, &d->rec.info, NULL, NULL)) < 0)
        return rc;
    d->rec.spb = d->o.policy == TB_POLICY_PREPARED || d->o.policy == TB_POLICY_UNPREPARED;
    d->rec.err = decode_entries(d, &it);
    return 1;
}
