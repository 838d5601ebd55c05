/* archiver: WAL files -> archive segments. State (state.tsv) says where in which WAL file the
 * last archived record ended, the next expected sequence, the latest stamp, and the prepared
 * sections still waiting for their Commit; it is rewritten atomically after every flush. */
#include "archiver.h"
#include "bytes.h"
#include "batch.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "log_reader.h"
#include "rdbmanifest.h"
#include "rocksopts.h"
#include "segment.h"
#include "stream.h"
#include "waltap.h"
#include "timefmt.h"
#include "tsv.h"

#include <rocksdb/c.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the archiver -------------------------------------------------------- */

struct tb_archiver {
    struct tb_archiver_opts o;
    int lock_fd, locked;
    char *state_path, *cf_path, *scratch;
    tb_seg_writer *seg;
    tb_rmf *rmf; /* the database's MANIFEST, for column family names */
    char rmf_name[64];
    struct tb_pending *pending;
    struct tb_cf_name *cfs;
    size_t ncf;
    uint64_t log_number, offset, next_seq;
    int have_next; /* next_seq is known (not at the very start) */
    int64_t last_stamp;
    enum tb_policy policy; /* how records are decoded (UNKNOWN: not told, not seen yet) */
    int policy_recorded; /* state.tsv names it (else an old archive: write_committed) */
    uint64_t unlogged; /* seq_per_batch: sequences owed by plain batches, no WAL yet */
    uint64_t rec_log; /* the WAL file of the last record archived (seq_per_batch) */
    int64_t seg_started; /* clock time the partial segment got its first record */
    uint64_t cur_seq; /* sequence of the record being archived, for cf.tsv */
    uint64_t bytes_read; /* of WAL, for progress */
    int fresh; /* a new archive in its first poll: no state, no segment */
    uint64_t skipped_from, skipped_to; /* a new archive's start moved past a gap */
    uint64_t dropped; /* records archived before that gap, dropped */
    tb_wal_tap *tap; /* holds the WAL files open until archived */
    uint64_t lag_bytes; /* WAL written but not archived, at the end of the last pass */
    int64_t caught_up_ns; /* start of the last pass that read the WAL to its end */
};

static int save_state(tb_archiver *a)
{
    char *buf = NULL, *p;
    size_t cap = 256 + a->pending->n * 160, len = 0;
    int rc;
    if (!(buf = malloc(cap)))
        return tb_error_set(TB_EIO, "out of memory");
    len += (size_t)snprintf(buf + len, cap - len,
                            "position\t%" PRIu64 "\t%" PRIu64 "\nnext_seq\t%" PRIu64 "\t%d\nlast_stamp\t%" PRId64 "\n",
                            a->log_number, a->offset, a->next_seq, a->have_next, a->last_stamp);
    /* Absent: write_committed (archives from before policies were known), or not known
     * yet when nothing was archived; so a write-committed archive's state stays as it was. */
    if (tb_policy_seq_per_batch(a->policy))
        len += (size_t)snprintf(buf + len, cap - len, "policy\t%s\nunlogged\t%" PRIu64 "\t%" PRIu64 "\n",
                                tb_policy_name(a->policy), a->unlogged, a->rec_log);
    if (a->caught_up_ns)
        len += (size_t)snprintf(buf + len, cap - len, "lag\t%" PRIu64 "\t%" PRId64 "\n", a->lag_bytes, a->caught_up_ns);
    for (size_t i = 0; i < a->pending->n; i++) {
        if (a->pending->v[i].len > 64)
            continue; /* xids are short names; a longer one is not kept across restarts */
        len += (size_t)snprintf(buf + len, cap - len, "pending\t%" PRIu64 "\t", a->pending->v[i].count);
        for (size_t k = 0; k < a->pending->v[i].len; k++)
            len += (size_t)snprintf(buf + len, cap - len, "%02x", (unsigned char)a->pending->v[i].xid[k]);
        buf[len++] = '\n';
    }
    p = buf;
    rc = tb_fs_write_atomic(a->state_path, p, len, 0644);
    free(buf);
    /* Durable: the WAL files before the one in progress are no longer needed. */
    if (rc == 0 && a->tap)
        tb_wal_tap_release(a->tap, a->log_number);
    return rc;
}

/* What state.tsv says (docs/wal-format.md, "state.tsv"). */
struct arch_state {
    uint64_t log_number, offset, next_seq;
    int have_next;
    int64_t last_stamp;
    enum tb_policy policy;
    int policy_recorded;
    uint64_t lag_bytes;
    int64_t caught_up_ns;
    uint64_t unlogged, rec_log;
};

/* An xid of state.tsv: 2 * n lowercase or uppercase hex digits, n at most 64 (save_state
 * keeps no longer one). */
static int parse_xid(const char *hex, unsigned char *xid, size_t *n)
{
    size_t len = strlen(hex);
    if (len % 2 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)hex[i]))
            return 0;
    for (size_t i = 0; i < len / 2; i++) {
        char two[3] = { hex[2 * i], hex[2 * i + 1], 0 };
        xid[i] = (unsigned char)strtoul(two, NULL, 16);
    }
    *n = len / 2;
    return 1;
}

/* Parses state.tsv's text strictly: every line one the archiver writes, its fields whole
 * numbers that fit, each line once (but pending), position, next_seq and last_stamp
 * present. The prepared transactions go into pending. */
/* Line k of state_parse's keys, its nf fields f into st: whether they are good. */
static int state_field(struct arch_state *st, int k, char **f, int nf)
{
    int good;
    switch (k) {
    case 0: return nf == 3 && tb_tsv_u64(f[1], &st->log_number) && tb_tsv_u64(f[2], &st->offset);
    case 1:
        good = nf == 3 && tb_tsv_u64(f[1], &st->next_seq) && (strcmp(f[2], "0") == 0 || strcmp(f[2], "1") == 0);
        st->have_next = good && f[2][0] == '1';
        return good;
    case 2: return nf == 2 && tb_tsv_i64(f[1], &st->last_stamp);
    case 3: st->policy_recorded = 1; return nf == 2 && tb_policy_parse(f[1], &st->policy) == 0;
    case 4: return nf == 3 && tb_tsv_u64(f[1], &st->lag_bytes) && tb_tsv_i64(f[2], &st->caught_up_ns);
    default: return nf == 3 && tb_tsv_u64(f[1], &st->unlogged) && tb_tsv_u64(f[2], &st->rec_log);
    }
}

static int state_parse(const char *path, char *text, size_t len, struct arch_state *st, struct tb_pending *pending)
{
    static const char *const keys[] = { "position", "next_seq", "last_stamp", "policy", "lag", "unlogged" };
    int seen[6] = { 0 }, m, rc = 0;
    struct tb_tsv t;
    char *line;
    memset(st, 0, sizeof *st);
    tb_tsv_init(&t, text, len, path);
    while (rc == 0 && (m = tb_tsv_next(&t, &line)) == 1) {
        char *f[4];
        int nf = tb_tsv_split(line, f, 3), k = 0;
        if (strcmp(f[0], "pending") == 0) {
            unsigned char xid[64];
            size_t n = 0;
            uint64_t count;
            /* An xid may repeat: decoded as write-committed, each section of a transaction
             * is an entry (tb_record_scan), as in the archiver's memory. */
            if (nf != 3 || !tb_tsv_u64(f[1], &count) || !parse_xid(f[2], xid, &n))
                rc = tb_tsv_error(&t, "not a 'pending COUNT XIDHEX' line");
            else
                rc = tb_pending_add(pending, xid, n, count);
            continue;
        }
        while (k < 6 && strcmp(f[0], keys[k]) != 0)
            k++;
        if (k == 6) {
            rc = tb_tsv_error(&t, "an unknown line '%.40s'", f[0]);
            break;
        }
        if (seen[k]) {
            rc = tb_tsv_error(&t, "a second '%s' line (line %d)", keys[k], seen[k]);
            break;
        }
        seen[k] = t.lineno;
        if (!state_field(st, k, f, nf))
            rc = tb_tsv_error(&t, "a damaged '%s' line", keys[k]);
    }
    if (rc == 0 && m < 0)
        rc = m;
    for (int k = 0; rc == 0 && k < 3; k++)
        if (!seen[k])
            rc = tb_error_set(TB_EVERIFY, "%s: no '%s' line", path, keys[k]);
    return rc;
}

static int load_state(tb_archiver *a)
{
    struct arch_state st;
    char *text = NULL;
    size_t len = 0;
    int rc = tb_fs_read_file(a->state_path, &text, &len);
    if (rc == TB_ENOENT) {
        a->fresh = 1;
        return 0;
    }
    if (rc < 0)
        return rc;
    rc = state_parse(a->state_path, text, len, &st, a->pending);
    free(text);
    if (rc < 0)
        return rc;
    a->log_number = st.log_number;
    a->offset = st.offset;
    a->next_seq = st.next_seq;
    a->have_next = st.have_next;
    a->last_stamp = st.last_stamp;
    a->policy = st.policy;
    a->policy_recorded = st.policy_recorded;
    a->lag_bytes = st.lag_bytes;
    a->caught_up_ns = st.caught_up_ns;
    a->unlogged = st.unlogged;
    a->rec_log = st.rec_log;
    if (!a->policy_recorded)
        a->policy = a->next_seq ? TB_POLICY_COMMITTED : TB_POLICY_UNKNOWN;
    return 0;
}

/* cf.tsv strictly (docs/wal-format.md, "cf.tsv"): comments, or lines of an id (32 bits), a
 * name (no tab) and the first sequence that wrote it; no id twice. */
/* One cf.tsv line into its fields f, checked: id, name, first sequence. */
static int cf_line(struct tb_tsv *t, char *line, char **f, uint64_t *id)
{
    uint64_t seq;
    int nf = tb_tsv_split(line, f, 3);
    if (nf != 3)
        return tb_tsv_error(t, "%d fields, not 3 (id, name, first sequence)", nf > 3 ? 4 : nf);
    if (!tb_tsv_u64(f[0], id) || *id > UINT32_MAX)
        return tb_tsv_error(t, "'%.40s' is not a column family id", f[0]);
    if (!f[1][0] || strlen(f[1]) > 511)
        return tb_tsv_error(t, "a column family name that is empty or longer than 511 bytes");
    if (!tb_tsv_u64(f[2], &seq))
        return tb_tsv_error(t, "'%.40s' is not a sequence number", f[2]);
    return 0;
}

int tb_cf_map_load(const char *wal_dir, struct tb_cf_name **out, size_t *n)
{
    char *path = tb_fs_join(wal_dir, "cf.tsv"), *text = NULL, *line;
    struct tb_cf_name *v = NULL;
    int *lines = NULL, m = 0;
    size_t len = 0;
    struct tb_tsv t;
    int rc = path ? tb_fs_read_file(path, &text, &len) : tb_error_set(TB_EIO, "out of memory");
    *out = NULL;
    *n = 0;
    if (rc == TB_ENOENT)
        rc = 0;
    tb_tsv_init(&t, text, len, path);
    while (rc == 0 && (m = tb_tsv_next(&t, &line)) == 1) {
        char *f[3];
        uint64_t id;
        struct tb_cf_name *p;
        int *q = NULL;
        if (line[0] == '#')
            continue;
        if ((rc = cf_line(&t, line, f, &id)) < 0)
            break;
        for (size_t i = 0; rc == 0 && i < *n; i++)
            if (v[i].id == id)
                rc = tb_tsv_error(&t, "column family id %" PRIu64 " again (line %d)", id, lines[i]);
        if (rc < 0)
            break;
        if ((p = realloc(v, (*n + 1) * sizeof *p)))
            v = p;
        if (p && (q = realloc(lines, (*n + 1) * sizeof *q)))
            lines = q;
        if (!p || !q || !(v[*n].name = strdup(f[1]))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            break;
        }
        lines[*n] = t.lineno;
        v[(*n)++].id = (uint32_t)id;
    }
    if (rc == 0 && m < 0)
        rc = m;
    if (rc == 0) {
        *out = v;
    } else {
        tb_cf_map_free(v, *n);
        *n = 0; /* the caller frees what it holds on failure too */
    }
    free(lines);
    free(text);
    free(path);
    return rc;
}

void tb_cf_map_free(struct tb_cf_name *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* The name of column family id in the database's MANIFEST, read on to its end now (and
 * from the start when CURRENT names another MANIFEST). NULL when the database does not
 * have it: *dropped says whether it had it once. No RocksDB open: that would replay the WAL,
 * which a WRITE_PREPARED/UNPREPARED log or merge operands make fail, and grow with it. */
static int manifest_cf_name(tb_archiver *a, uint32_t id, const char **name, int *dropped)
{
    int rc = 0;
    *name = NULL;
    *dropped = 0;
    /* CURRENT may switch to a new MANIFEST (and the old one go) between our reads. */
    for (int attempt = 0; attempt < 5; attempt++) {
        char *cur = NULL, *path = NULL;
        int fd;
        if ((rc = tb_rmf_current(a->o.db_path, &cur)) < 0)
            return rc;
        if (!a->rmf || strcmp(cur, a->rmf_name) != 0) {
            tb_rmf_free(a->rmf);
            a->rmf = NULL;
            path = tb_fs_join(a->o.db_path, cur);
            fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
            if (fd < 0 && path && errno == ENOENT) {
                free(cur);
                free(path);
                continue;
            }
            rc = fd < 0 ? tb_error_errno(TB_EIO, errno, "cannot open %s", path ? path : cur)
                        : tb_rmf_open_fd(&a->rmf, fd, path);
            if (fd >= 0)
                close(fd);
            snprintf(a->rmf_name, sizeof a->rmf_name, "%s", cur);
            free(path);
        }
        free(cur);
        if (rc < 0 || (rc = tb_rmf_read(a->rmf, UINT64_MAX)) < 0)
            return rc;
        *name = tb_rmf_cf_name(a->rmf, id, dropped);
        if (*dropped)
            *name = NULL;
        return 0;
    }
    return tb_error_set(TB_EIO, "the database's MANIFEST changed under each of 5 reads (%s)", a->o.db_path);
}

/* Learns the name of a column family the WAL writes, from the database's MANIFEST. */
static int cf_seen(void *arg, uint32_t id)
{
    tb_archiver *a = arg;
    char *text = NULL, *old = NULL;
    const char *name;
    size_t len = 0;
    int rc = 0, dropped;
    for (size_t i = 0; i < a->ncf; i++)
        if (a->cfs[i].id == id)
            return 0;
    if ((rc = manifest_cf_name(a, id, &name, &dropped)) < 0)
        return tb_error_wrap(rc, "cannot learn column family names");
    if (!name)
        return tb_error_set(TB_EVERIFY, "the WAL writes column family id %u, which the database does not have%s", id,
                            dropped ? " (dropped since)" : "");
    rc = tb_fs_read_file(a->cf_path, &old, &len);
    if (rc == TB_ENOENT) {
        old = strdup("# id\tname\tfirst_seen_seq\n");
        rc = 0;
    }
    if (rc < 0)
        return rc;
    {
        struct tb_cf_name *p = realloc(a->cfs, (a->ncf + 1) * sizeof *p);
        if (!p) {
            free(old);
            return tb_error_set(TB_EIO, "out of memory");
        }
        a->cfs = p;
        a->cfs[a->ncf].id = id;
        a->cfs[a->ncf++].name = strdup(name);
        if (asprintf(&text, "%s%u\t%s\t%" PRIu64 "\n", old, id, name, a->cur_seq) < 0) {
            free(old);
            return tb_error_set(TB_EIO, "out of memory");
        }
        free(old);
        old = text;
    }
    rc = tb_fs_write_atomic(a->cf_path, old, strlen(old), 0644);
    free(old);
    return rc;
}

static int after_state(tb_archiver *a, const struct tb_seg_record *r)
{
    return r->log_number > a->log_number || (r->log_number == a->log_number && r->end_offset > a->offset);
}

/* Takes the policy from the record when the archive does not know it yet (the first
 * record that tells decides; an unprepared section names a prepared-looking one right),
 * and refuses a record whose markers contradict it. */
static int learn_policy(tb_archiver *a, const unsigned char *rec, size_t len)
{
    enum tb_policy hint, before = a->policy;
    int certain = tb_wb_policy_refine(&a->policy, &hint, rec, len);
    if (certain < 0)
        return certain;
    if (a->policy == before && certain == 2 && tb_policy_seq_per_batch(hint) != tb_policy_seq_per_batch(a->policy))
        return tb_error_set(TB_EVERIFY,
                            "the WAL holds %s markers but this archive decodes it as %s (sequence %" PRIu64
                            "): the database's write policy changed or --write-policy is wrong; archive into a new "
                            "--wal-directory",
                            tb_policy_name(hint), tb_policy_name(a->policy), tb_wb_header_seq(rec));
    return 0;
}

/* seq_per_batch continuity: a record may start after the expected sequence by at most the
 * sequences earlier plain batches still owe (taken without WAL); it then covers them. */
static void spb_advance(tb_archiver *a, uint64_t first, uint64_t hdr, const struct tb_record_info *info, int resync)
{
    if (resync)
        a->unlogged = 0;
    else
        a->unlogged -= hdr - first;
    a->unlogged += info->unlogged;
}

/* Replays into the state the partial segment's records it does not know yet. */
static int catch_up_state(tb_archiver *a)
{
    char *path;
    tb_seg_reader *rd = NULL;
    struct tb_seg_record r;
    int rc, m = 0;
    if (!after_state(a, tb_seg_writer_last(a->seg)))
        return 0;
    if (!(path = tb_fs_join(a->o.wal_dir, TB_SEG_PARTIAL)))
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_seg_reader_open(&rd, path, a->o.keys);
    while (rc == 0 && (m = tb_seg_reader_next(rd, &r)) == 1) {
        struct tb_record_info info;
        if (!after_state(a, &r))
            continue;
        if ((r.flags & TB_SEG_FLAG_SEQ_PER_BATCH) && !tb_policy_seq_per_batch(a->policy))
            a->policy = TB_POLICY_PREPARED;
        if ((rc = learn_policy(a, r.data, r.len)) < 0 ||
            (rc = tb_record_scan(a->pending, a->policy, r.data, r.len, &info, NULL, NULL)) < 0)
            break;
        if (tb_policy_seq_per_batch(a->policy) && !(r.flags & TB_SEG_FLAG_RESYNC) &&
            info.seq - r.first_seq > a->unlogged)
            a->unlogged = info.seq - r.first_seq; /* a restart (see archive_record) */
        if (tb_policy_seq_per_batch(a->policy))
            spb_advance(a, r.first_seq, info.seq, &info, (r.flags & TB_SEG_FLAG_RESYNC) != 0);
        a->rec_log = r.log_number;
        a->next_seq = r.next_seq;
        a->have_next = tb_policy_seq_per_batch(a->policy) || !info.unknown_commit;
        if (info.has_stamp)
            a->last_stamp = info.last_stamp;
        a->log_number = r.log_number;
        a->offset = r.end_offset;
    }
    if (rc == 0 && m < 0)
        rc = m;
    tb_seg_reader_free(rd);
    free(path);
    return rc == 0 ? save_state(a) : rc;
}

/* The archive must hold what its state says was archived: the partial segment, or else the
 * newest published segment, ends where the state does. (A state ahead of them would skip
 * the WAL between for good.) A new archive is one without state or segments. */
static int check_state(tb_archiver *a)
{
    struct tb_seg_info *segs = NULL;
    size_t nsegs = 0;
    uint64_t held = 0;
    int rc = tb_seg_index_load(a->o.wal_dir, a->o.keys, &segs, &nsegs);
    if (rc < 0)
        return rc;
    if (tb_seg_writer_count(a->seg))
        held = tb_seg_writer_last(a->seg)->next_seq;
    else if (nsegs)
        held = segs[nsegs - 1].next_seq;
    free(segs);
    a->fresh = a->fresh && nsegs == 0 && tb_seg_writer_count(a->seg) == 0;
    if (held && a->have_next && held < a->next_seq)
        return tb_error_set(TB_EVERIFY,
                            "the archive lacks sequences %" PRIu64 "..%" PRIu64 " that its state says were "
                            "archived (%s damaged or replaced?): archive into a new --wal-directory and take a new "
                            "backup",
                            held, a->next_seq - 1, TB_SEG_PARTIAL);
    return 0;
}

/* A recycled WAL file is renamed to a new number and overwritten from its start, also
 * while an archiver still reads it: no archiver can capture that without loss. */
static int refuse_recycling(const char *db)
{
    struct tb_rocksopts ro = { 0 };
    int rc = tb_rocksopts_read(db, &ro);
    if (rc == TB_ENOENT || rc < 0) {
        /* No OPTIONS file (an old or foreign database): nothing to refuse on. */
        tb_rocksopts_clear(&ro);
        return 0;
    }
    if (ro.recycle_log_file_num && strtoull(ro.recycle_log_file_num, NULL, 10) > 0)
        rc = tb_error_set(TB_EIO,
                          "the database recycles its WAL files (recycle_log_file_num=%s in %s/%s): a "
                          "recycled file is overwritten in place, which no archiver can capture without loss; set "
                          "recycle_log_file_num=0",
                          ro.recycle_log_file_num, db, ro.file);
    tb_rocksopts_clear(&ro);
    return rc;
}

/* One archiver per archive: two would interleave segments. */
static int take_lock(tb_archiver *a)
{
    char *lock = tb_fs_join(a->o.wal_dir, ".lock");
    a->lock_fd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    free(lock);
    if (a->lock_fd < 0)
        return tb_error_errno(TB_EIO, errno, "cannot create the lock file in %s", a->o.wal_dir);
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return tb_error_set(TB_EIO, "another themis-wal-archive is running on %s", a->o.wal_dir);
    a->locked = 1;
    return 0;
}

/* The policy told by the caller, unless the archive decodes the other way. */
static int take_policy(tb_archiver *a, enum tb_policy told)
{
    if (told == TB_POLICY_UNKNOWN)
        return 0;
    /* Prepared and unprepared decode alike; committed differs from both. */
    if (!a->fresh && a->policy != TB_POLICY_UNKNOWN &&
        tb_policy_seq_per_batch(a->policy) != tb_policy_seq_per_batch(told))
        return tb_error_set(TB_EUSAGE,
                            "this archive was written for a %s database, not %s: archive into a new "
                            "--wal-directory",
                            tb_policy_name(a->policy), tb_policy_name(told));
    a->policy = told;
    return 0;
}

int tb_archiver_open(tb_archiver **out, const struct tb_archiver_opts *o)
{
    tb_archiver *a = calloc(1, sizeof *a);
    size_t adopted;
    int rc;
    if (!a)
        return tb_error_set(TB_EIO, "out of memory");
    a->o = *o;
    a->lock_fd = -1;
    a->state_path = tb_fs_join(o->wal_dir, "state.tsv");
    a->cf_path = tb_fs_join(o->wal_dir, "cf.tsv");
    a->scratch = tb_fs_join(o->wal_dir, ".secondary");
    a->pending = tb_pending_new();
    if (!a->state_path || !a->cf_path || !a->scratch || !a->pending) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto fail;
    }
    if (!tb_fs_exists(o->db_path)) {
        rc = tb_error_set(TB_ENOENT, "database directory does not exist (%s)", o->db_path);
        goto fail;
    }
    if ((rc = tb_fs_mkdir_p(o->wal_dir, 0755)) < 0 || (rc = take_lock(a)) < 0 ||
        (rc = tb_seg_index_repair(o->wal_dir, o->keys, &adopted)) < 0)
        goto fail;
    if ((rc = tb_seg_writer_open(&a->seg, o->wal_dir, o->level, o->keys)) < 0 || (rc = load_state(a)) < 0 ||
        (rc = tb_cf_map_load(o->wal_dir, &a->cfs, &a->ncf)) < 0 || (rc = take_policy(a, o->policy)) < 0)
        goto fail;
    /* A crash between a segment flush and the state's rewrite: the partial segment holds
     * records past the state; they say where we really are. */
    if (tb_seg_writer_count(a->seg) && ((rc = catch_up_state(a)) < 0 || (rc = tb_seg_writer_settle(a->seg)) < 0))
        goto fail;
    if ((rc = check_state(a)) < 0 || (rc = refuse_recycling(o->db_path)) < 0)
        goto fail;
    if ((rc = tb_wal_tap_start(&a->tap, o->db_wal_dir ? o->db_wal_dir : o->db_path, a->log_number,
                               o->tap_listing_only)) < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    tb_archiver_free(a);
    return rc;
}

void tb_archiver_free(tb_archiver *a)
{
    if (!a)
        return;
    tb_wal_tap_stop(a->tap);
    tb_seg_writer_free(a->seg);
    tb_rmf_free(a->rmf);
    tb_pending_free(a->pending);
    tb_cf_map_free(a->cfs, a->ncf);
    /* Archivers before December 2026 opened a secondary instance here; remove what one
     * killed left behind. */
    if (a->scratch && a->locked)
        tb_fs_rm_rf(a->scratch);
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    TB_FREE_ALL(a->state_path, a->cf_path, a->scratch, a);
}

uint64_t tb_archiver_next_seq(tb_archiver *a)
{
    return a->next_seq;
}

enum tb_policy tb_archiver_policy(tb_archiver *a)
{
    return a->policy;
}

/* The WAL files listed, and those the tap holds (deleted or moved since, perhaps), each
 * with the tap's descriptor when it has one. */
static int held_logs(tb_archiver *a, struct tb_wal_log **out, size_t *n)
{
    struct tb_tap_file *tf = NULL;
    size_t ntf = 0, k;
    int rc = tb_wal_logs_list(a->o.db_wal_dir ? a->o.db_wal_dir : a->o.db_path, out, n);
    if (rc < 0 || !a->tap || (rc = tb_wal_tap_list(a->tap, &tf, &ntf)) < 0 || !ntf)
        return rc;
    struct tb_wal_log *v = realloc(*out, (*n + ntf) * sizeof *v);
    if (!v) {
        tb_wal_tap_list_free(tf, ntf);
        return tb_error_set(TB_EIO, "out of memory");
    }
    *out = v;
    for (size_t i = 0; i < ntf; i++) {
        for (k = 0; k < *n && v[k].number != tf[i].number; k++)
            ;
        if (k == *n) {
            v[k].number = tf[i].number;
            v[k].path = tf[i].path;
            v[k].listed = 0;
            tf[i].path = NULL;
            (*n)++;
        }
        v[k].fd = tf[i].fd;
    }
    tb_wal_tap_list_free(tf, ntf);
    qsort(v, *n, sizeof *v, tb_wal_log_cmp);
    return 0;
}

static int gap_error(uint64_t want, uint64_t got)
{
    return tb_error_set(TB_EGAP,
                        "WAL gap: sequences %" PRIu64 "..%" PRIu64 " are missing: the WAL holding them was "
                        "deleted before it was archived; keep WAL longer (WAL_ttl_seconds) or run themis-wal-archive "
                        "--follow; to start again, archive into a new --wal-directory and take a new backup",
                        want, got - 1);
}

static int archive_record(tb_archiver *a, const unsigned char *rec, size_t len, uint64_t log, uint64_t end);

/* A gap in the first poll of a new archive: what came before it (old WAL in the DB's
 * archive/, say) can serve no backup taken from now on, so the archive starts after it. */
static int restart_after_gap(tb_archiver *a, const unsigned char *rec, size_t len, uint64_t log, uint64_t end,
                             uint64_t want, uint64_t got)
{
    struct tb_pending *p = tb_pending_new();
    int rc;
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    a->dropped += tb_seg_writer_count(a->seg);
    if ((rc = tb_seg_writer_discard(a->seg)) < 0) {
        tb_pending_free(p);
        return rc;
    }
    tb_pending_free(a->pending);
    a->pending = p;
    a->have_next = 0;
    a->skipped_from = want;
    a->skipped_to = got;
    return archive_record(a, rec, len, log, end);
}

/* Where a record continues the archive: *first gets the sequence it starts at in the
 * archive's numbering. 1: a gap in a new archive's first poll (it restarts after it). */
static int record_continues(tb_archiver *a, const struct tb_record_info *info, uint64_t log, uint64_t *first)
{
    uint64_t jump = info->seq - a->next_seq;
    *first = info->seq;
    if (!a->have_next || info->seq == a->next_seq)
        return 0;
    if (tb_policy_seq_per_batch(a->policy) && info->seq > a->next_seq && jump <= a->unlogged) {
        *first = a->next_seq; /* sequences taken without WAL: this record covers them */
        return 0;
    }
    if (tb_policy_seq_per_batch(a->policy) && info->seq > a->next_seq && jump == a->unlogged + 1 && log > a->rec_log) {
        /* A restart: the write-prepared DB's open takes one sequence past what its WAL
         * recovered (write_prepared_txn_db.cc, Initialize), in a new WAL file; what the
         * old process still owed is void. */
        *first = a->next_seq;
        a->unlogged = jump;
        return 0;
    }
    if (info->seq > a->next_seq && a->fresh)
        return 1;
    if (info->seq > a->next_seq)
        return gap_error(a->next_seq, info->seq);
    return tb_error_set(TB_EVERIFY,
                        "WAL sequence went back from %" PRIu64 " to %" PRIu64 " (WAL %" PRIu64 "): "
                        "the database was restored or replaced since this archive followed it; archive it into a "
                        "new --wal-directory and take a new backup",
                        a->next_seq, info->seq, log);
}

/* The record's time stamp (its own, else the last one seen) and flags in the segment. */
static void record_flags(tb_archiver *a, const struct tb_record_info *info, struct tb_seg_record *sr)
{
    if (info->has_stamp) {
        sr->ts_ns = info->first_stamp;
        sr->flags |= TB_SEG_FLAG_STAMPED;
        a->last_stamp = info->last_stamp;
    } else {
        sr->ts_ns = a->last_stamp ? a->last_stamp : tb_time_now_ns();
        sr->flags |= a->last_stamp ? TB_SEG_FLAG_STAMPED : 0;
    }
    if (!a->have_next || (!tb_policy_seq_per_batch(a->policy) && info->unknown_commit))
        sr->flags |= TB_SEG_FLAG_RESYNC;
    if (tb_policy_seq_per_batch(a->policy))
        sr->flags |= TB_SEG_FLAG_SEQ_PER_BATCH;
}

/* Archives one record; skips what is already archived. */
static int archive_record(tb_archiver *a, const unsigned char *rec, size_t len, uint64_t log, uint64_t end)
{
    struct tb_record_info info;
    struct tb_seg_record sr = { .log_number = log, .end_offset = end, .data = rec, .len = len };
    int rc;
    if (len >= 8) {
        a->cur_seq = tb_wb_header_seq(rec);
        if (a->have_next && a->cur_seq < a->next_seq && log <= a->log_number)
            return 0; /* archived before a restart that reread the file */
    }
    if ((rc = learn_policy(a, rec, len)) < 0 ||
        (rc = tb_record_scan(a->pending, a->policy, rec, len, &info, cf_seen, a)) < 0)
        return tb_error_wrap(rc, "WAL %" PRIu64 " at offset %" PRIu64, log, end);
    if ((rc = record_continues(a, &info, log, &sr.first_seq)) == 1)
        return restart_after_gap(a, rec, len, log, end, a->next_seq, info.seq);
    if (rc < 0)
        return rc;
    /* seq_per_batch: a Commit takes one sequence whatever it commits, so continuity holds
     * without its Prepare (replay refuses the Commit if it needs the data). */
    if (!tb_policy_seq_per_batch(a->policy) && info.unknown_commit && a->have_next &&
        tb_seg_writer_count(a->seg) + 1 > 1)
        return tb_error_set(TB_EGAP, "WAL gap: a Commit at sequence %" PRIu64 " whose Prepare is not in the archive",
                            info.seq);
    sr.next_seq = info.next_seq;
    record_flags(a, &info, &sr);
    if ((rc = tb_seg_writer_append(a->seg, &sr)) < 0)
        return rc;
    if (tb_seg_writer_count(a->seg) == 1)
        a->seg_started = tb_time_now_ns();
    if (tb_policy_seq_per_batch(a->policy))
        spb_advance(a, sr.first_seq, info.seq, &info, !a->have_next);
    a->rec_log = log;
    /* After a Commit of an unseen Prepare the consumption is unknown: resync on the next. */
    a->have_next = tb_policy_seq_per_batch(a->policy) || !info.unknown_commit;
    a->next_seq = info.next_seq;
    a->log_number = log;
    a->offset = end;
    return 0;
}

/* A database's WAL numbers only grow, and the file the archive last read only grows: a
 * newest WAL older than that file, or that file shorter than what was read, is another
 * database (restored from a backup, say) whose WAL this archive must not skip over. */
static int check_same_db(tb_archiver *a, const struct tb_wal_log *logs, size_t nlogs)
{
    struct stat st, held;
    const struct tb_wal_log *newest = NULL;
    if (!nlogs || !a->log_number)
        return 0;
    /* What the directory holds now; files only held open were deleted since. */
    for (size_t i = 0; i < nlogs; i++)
        if (logs[i].listed)
            newest = &logs[i];
    if (newest && newest->number < a->log_number)
        return tb_error_set(TB_EVERIFY,
                            "the database's WAL went back: its newest is %06" PRIu64 ".log, this archive "
                            "has read up to %06" PRIu64 ".log: the database was restored or replaced since the archive "
                            "followed it; archive it into a new --wal-directory and take a new backup (%s)",
                            newest->number, a->log_number, a->o.db_path);
    for (size_t i = 0; i < nlogs; i++) {
        if (!logs[i].listed || stat(logs[i].path, &st) < 0)
            continue;
        /* A file of the same number that is not the one held: a new database's. */
        if (logs[i].fd >= 0 && fstat(logs[i].fd, &held) == 0 && (held.st_ino != st.st_ino || held.st_dev != st.st_dev))
            return tb_error_set(TB_EVERIFY,
                                "%s is another file than the one of that number this archive read: the "
                                "database was restored or replaced since the archive followed it; archive it into a "
                                "new --wal-directory and take a new backup",
                                logs[i].path);
        if (logs[i].number == a->log_number && (uint64_t)st.st_size < a->offset)
            return tb_error_set(TB_EVERIFY,
                                "%s is shorter (%jd bytes) than this archive has read of it (%" PRIu64
                                "): the database was restored or replaced since the archive followed it; archive "
                                "it into a new --wal-directory and take a new backup",
                                logs[i].path, (intmax_t)st.st_size, a->offset);
    }
    return 0;
}

int tb_archiver_skipped(tb_archiver *a, uint64_t *from, uint64_t *to)
{
    *from = a->skipped_from;
    *to = a->skipped_to;
    return a->skipped_to != 0;
}

/* Bytes of WAL after the archived position. */
static uint64_t unread(tb_archiver *a, const struct tb_wal_log *logs, size_t nlogs)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < nlogs; i++) {
        struct stat st;
        uint64_t from = logs[i].number == a->log_number ? a->offset : 0;
        if (logs[i].number < a->log_number || (logs[i].fd >= 0 ? fstat(logs[i].fd, &st) : stat(logs[i].path, &st)) < 0)
            continue;
        if ((uint64_t)st.st_size > from)
            sum += (uint64_t)st.st_size - from;
    }
    return sum;
}

void tb_archiver_lag(tb_archiver *a, int recount, uint64_t *bytes, int64_t *caught_up_ns, int *inotify)
{
    struct tb_wal_log *logs = NULL;
    size_t nlogs = 0;
    /* Counted now (within a long pass); right after a pass, its own count stands. */
    if (recount && held_logs(a, &logs, &nlogs) == 0)
        a->lag_bytes = unread(a, logs, nlogs);
    tb_wal_logs_free(logs, nlogs);
    *bytes = a->lag_bytes;
    *caught_up_ns = a->caught_up_ns;
    *inotify = a->tap && tb_wal_tap_inotify(a->tap);
}

/* Mid-pass: the state is saved before the segment is closed, as between passes, so a crash
 * between the two leaves the records in the partial segment, never archived twice. */
static int close_full_segment(tb_archiver *a)
{
    int rc;
    if ((rc = tb_seg_writer_flush(a->seg)) < 0 || (rc = save_state(a)) < 0)
        return rc;
    return tb_archiver_rotate(a, 0);
}

/* The database's last sequence from its MANIFEST (a stopped database's, or a live one's with
 * every write flushed); nonzero only when the MANIFEST can be read. */
static uint64_t manifest_seq(tb_archiver *a)
{
    struct tb_rmf_version *v = NULL;
    uint64_t seq = 0;
    if (tb_rmf_load_current(a->o.db_path, &v) == 0)
        seq = v->last_sequence;
    tb_rmf_version_free(v);
    tb_error_clear();
    return seq;
}

/* A new archive whose first pass found no record (the database stopped, or every write
 * flushed and its WAL files gone): it starts where the MANIFEST says the database stands,
 * read before and after the pass (a flush between would change it). Its first record then
 * continues from there, so a backup taken meanwhile has no gap before the archive. A
 * write-prepared/unprepared database reopened since takes one sequence without WAL
 * (docs/wal-notes.md, "Restarts"): that record covers it, as in archive_record. */
static int start_at_rest(tb_archiver *a, uint64_t before)
{
    struct tb_rocksopts ro = { 0 };
    if (!before || manifest_seq(a) != before)
        return 0;
    if (a->policy == TB_POLICY_UNKNOWN) {
        if (tb_rocksopts_read(a->o.db_path, &ro) == 0 && tb_rocksopts_two_write_queues(&ro))
            a->policy = TB_POLICY_PREPARED; /* seq_per_batch; a write-unprepared marker refines it */
        else
            a->policy = TB_POLICY_COMMITTED;
        tb_rocksopts_clear(&ro);
        tb_error_clear();
    }
    a->next_seq = before + 1;
    a->have_next = 1;
    a->unlogged = 0;
    a->rec_log = 0;
    return 0;
}

/* Archives the records of one WAL file from the archived position on; *gone: the file
 * was moved to archive/ or deleted since the listing (looked at again next poll). */
static int poll_file(tb_archiver *a, const struct tb_wal_log *lf, uint64_t *n, int *gone)
{
    tb_wal_reader *r = NULL;
    const unsigned char *rec;
    size_t len;
    uint64_t from = lf->number == a->log_number ? a->offset : 0, end;
    int more = 0, rc;
    rc = lf->fd >= 0 ? tb_wal_reader_open_fd(&r, lf->fd, lf->path, lf->number, from)
                     : tb_wal_reader_open(&r, lf->path, lf->number, from);
    if (rc == TB_ENOENT) {
        *gone = 1;
        return 0;
    }
    while (rc == 0 && (more = tb_wal_reader_next(r, &rec, &len)) == 1) {
        end = tb_wal_reader_offset(r);
        rc = archive_record(a, rec, len, lf->number, end);
        if (rc == 0)
            (*n)++;
        a->bytes_read += end - from;
        from = end;
        if (a->o.progress)
            a->o.progress(a->o.progress_arg, a->bytes_read);
        /* A long pass (a large WAL not yet archived) stops at a signal, and closes its
         * segments as they fill instead of writing one segment of the whole pass. */
        if (rc == 0)
            rc = tb_error_check_interrupt();
        if (rc == 0 && tb_seg_writer_bytes(a->seg) >= a->o.segment_size)
            rc = close_full_segment(a);
    }
    if (rc == 0 && more < 0)
        rc = more;
    if (rc == 0 && lf->number > a->log_number) {
        a->log_number = lf->number;
        a->offset = tb_wal_reader_offset(r);
    }
    tb_wal_reader_free(r);
    return rc;
}

/* Durable before the state says so. What was archived before a gap or a sequence going
 * back is good: it is kept, so the archive checks and replays up to there. */
static int poll_settle(tb_archiver *a, int rc)
{
    int wrc;
    if (rc < 0 && rc != TB_EGAP && rc != TB_EVERIFY)
        return rc;
    wrc = tb_seg_writer_flush(a->seg);
    if (wrc == 0)
        wrc = save_state(a);
    return rc < 0 ? rc : wrc;
}

int tb_archiver_poll(tb_archiver *a, uint64_t *n)
{
    struct tb_wal_log *logs = NULL;
    size_t nlogs = 0;
    uint64_t dropped = a->dropped;
    int64_t started = tb_time_now_ns();
    uint64_t at_rest = a->fresh && !a->have_next ? manifest_seq(a) : 0;
    int gone = 0, rc;
    *n = 0;
    if ((rc = held_logs(a, &logs, &nlogs)) < 0)
        return rc;
    rc = check_same_db(a, logs, nlogs);
    for (size_t i = 0; i < nlogs && rc == 0 && !gone; i++)
        if (logs[i].number >= a->log_number)
            rc = poll_file(a, &logs[i], n, &gone);
    if (rc == 0) {
        /* Read to the end: what is unread now was written during this pass. */
        a->caught_up_ns = started;
        a->lag_bytes = unread(a, logs, nlogs);
    }
    tb_wal_logs_free(logs, nlogs);
    if (rc == 0 && at_rest && !a->have_next && tb_seg_writer_count(a->seg) == 0)
        rc = start_at_rest(a, at_rest);
    rc = poll_settle(a, rc);
    if (rc == 0)
        a->fresh = 0;
    *n -= a->dropped - dropped;
    return rc;
}

int tb_archiver_run(tb_archiver *a, const struct tb_archiver_loop *l, uint64_t *total)
{
    struct timespec ts = { l->interval_ns / 1000000000, l->interval_ns % 1000000000 };
    uint64_t n;
    int rc;
    *total = 0;
    for (;;) {
        if ((rc = tb_archiver_poll(a, &n)) < 0)
            break;
        if (l->pass)
            l->pass(l->arg, a, n, *total);
        *total += n;
        if ((rc = tb_archiver_rotate(a, l->once)) < 0 || l->once || *l->stop)
            break;
        nanosleep(&ts, NULL);
        if (*l->stop)
            break;
    }
    /* Stopping is the normal end of following: one last pass, then the segment is closed so
     * it is whole (everything archived is durable already; this only publishes it). */
    if (rc == 0 && !l->once && (rc = tb_archiver_poll(a, &n)) == 0) {
        *total += n;
        rc = tb_archiver_rotate(a, 1);
    }
    return rc;
}

int tb_archiver_rotate(tb_archiver *a, int force)
{
    int64_t age = tb_time_now_ns() - a->seg_started;
    if (!tb_seg_writer_count(a->seg))
        return 0;
    if (!force && tb_seg_writer_bytes(a->seg) < a->o.segment_size && age < a->o.segment_ns)
        return 0;
    struct tb_seg_info info;
    char *path;
    int rc = tb_seg_writer_rotate(a->seg, &info);
    if (rc < 0 || !a->o.published)
        return rc;
    if (!(path = tb_fs_join(a->o.wal_dir, info.name)))
        return tb_error_set(TB_EIO, "out of memory");
    rc = a->o.published(a->o.published_arg, path, &info);
    free(path);
    return rc;
}

/* ---- where a set of WAL files ends ---------------------------------------- */

/* ---- retention ---------------------------------------------------------- */

size_t tb_wal_archive_cut_bound(const struct tb_seg_info *segs, size_t n, uint64_t base)
{
    size_t k = 0;
    while (k < n && segs[k].next_seq <= base + 1)
        k++;
    return k;
}

int tb_wal_archive_unneeded_prefix(const char *wal_dir, tb_keyring *keys, const struct tb_seg_info *segs, size_t n,
                                   uint64_t base, size_t *cut)
{
    struct tb_pending *open_ = tb_pending_new(); /* xid -> the segment of its Prepare */
    size_t k = tb_wal_archive_cut_bound(segs, n, base);
    int rc = open_ ? 0 : tb_error_set(TB_EIO, "out of memory");
    /* Prepares in the segments to cut that no Commit or Rollback in them closes. */
    for (size_t i = 0; rc == 0 && i < k; i++) {
        char *path = tb_fs_join(wal_dir, segs[i].name);
        tb_seg_reader *rd = NULL;
        struct tb_seg_record r;
        int m = 0;
        rc = path ? tb_seg_reader_open(&rd, path, keys) : tb_error_set(TB_EIO, "out of memory");
        while (rc == 0 && (m = tb_seg_reader_next(rd, &r)) == 1) {
            struct tb_wb_iter it;
            struct tb_wb_entry e;
            if (tb_wb_init(&it, r.data, r.len) < 0)
                continue;
            while (rc == 0 && tb_wb_next(&it, &e) == 1) {
                if (e.kind == TB_WB_END_PREPARE)
                    rc = tb_pending_add(open_, e.key, e.klen, i);
                else if (e.kind == TB_WB_COMMIT || e.kind == TB_WB_ROLLBACK)
                    tb_pending_drop(open_, e.key, e.klen); /* every section of a write-unprepared one */
            }
        }
        if (rc == 0 && m < 0)
            rc = m;
        tb_seg_reader_free(rd);
        free(path);
    }
    if (rc == 0)
        k = (size_t)tb_pending_min(open_, k);
    tb_pending_free(open_);
    *cut = k;
    return rc;
}

/* ---- check --------------------------------------------------------------- */

struct check {
    uint64_t records, first, expect;
    int have;
};

static int check_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    struct check *c = arg;
    if (c->have && r->first_seq != c->expect && !(r->flags & TB_SEG_FLAG_RESYNC))
        return r->first_seq > c->expect
            ? gap_error(c->expect, r->first_seq)
            : tb_error_set(TB_EVERIFY, "sequence goes back at %" PRIu64 " in %s", r->first_seq, segment);
    if (!c->have)
        c->first = r->first_seq;
    c->have = 1;
    c->expect = r->next_seq;
    c->records++;
    return 0;
}

/* state.tsv, when there is one (pushed and streamed archives have none): well-formed, and
 * saying no more than the records hold. A state behind them is an archiver killed between
 * syncing a pass's records and rewriting its state; its position (WAL file and offset) may
 * be past the last record (WAL files without records), so only next_seq is compared. */
static int check_state_file(const char *wal_dir, const struct check *c)
{
    char *path = tb_fs_join(wal_dir, "state.tsv"), *text = NULL;
    struct tb_pending *pending = tb_pending_new();
    struct arch_state st;
    size_t len = 0;
    int rc = path && pending ? tb_fs_read_file(path, &text, &len) : tb_error_set(TB_EIO, "out of memory");
    if (rc == TB_ENOENT)
        rc = 0;
    else if (rc == 0 && (rc = state_parse(path, text, len, &st, pending)) == 0 && c->have && st.next_seq > c->expect)
        rc = tb_error_set(TB_EVERIFY,
                          "%s: next_seq %" PRIu64 " is beyond the archive's records, which end at "
                          "sequence %" PRIu64,
                          path, st.next_seq, c->expect - 1);
    tb_pending_free(pending);
    free(text);
    free(path);
    return rc;
}

int tb_wal_archive_check(const char *wal_dir, tb_keyring *keys, uint64_t *records, uint64_t *first, uint64_t *next)
{
    struct check c = { 0 };
    struct tb_cf_name *cfs = NULL;
    size_t ncf = 0;
    int rc;
    *records = *first = *next = 0;
    if (!tb_fs_exists(wal_dir))
        return tb_error_set(TB_ENOENT, "WAL archive does not exist (%s)", wal_dir);
    rc = tb_cf_map_load(wal_dir, &cfs, &ncf);
    tb_cf_map_free(cfs, ncf);
    if (rc == 0)
        rc = tb_seg_walk(wal_dir, keys, check_fn, &c);
    if (rc == 0)
        rc = check_state_file(wal_dir, &c);
    *records = c.records;
    *first = c.first;
    *next = c.expect;
    return rc;
}
