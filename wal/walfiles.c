/* walfiles: the sequence rules of a WAL record, the open Prepares, and the WAL files of a
 * database directory. */
#include "walfiles.h"
#include "batch.h"
#include "error.h"
#include "fs.h"
#include "log_reader.h"
#include "mem.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* ---- prepared sections waiting for Commit/Rollback ----------------------- */

struct tb_pending *tb_pending_new(void)
{
    return calloc(1, sizeof(struct tb_pending));
}

void tb_pending_free(struct tb_pending *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].xid);
    free(p->v);
    free(p);
}

int tb_pending_add(struct tb_pending *p, const void *xid, size_t len, uint64_t count)
{
    int rc = tb_grow(&p->v, &p->cap, p->n, sizeof *p->v, 16);
    if (rc < 0)
        return rc;
    if (!(p->v[p->n].xid = malloc(len ? len : 1)))
        return tb_error_set(TB_EIO, "out of memory");
    memcpy(p->v[p->n].xid, xid, len);
    p->v[p->n].len = len;
    p->v[p->n].count = count;
    p->n++;
    return 0;
}

int64_t tb_pending_take(struct tb_pending *p, const void *xid, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].len == len && memcmp(p->v[i].xid, xid, len) == 0) {
            int64_t c = (int64_t)p->v[i].count;
            free(p->v[i].xid);
            p->v[i] = p->v[--p->n];
            return c;
        }
    return -1;
}

uint64_t tb_pending_min(const struct tb_pending *p, uint64_t dflt)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].count < dflt)
            dflt = p->v[i].count;
    return dflt;
}

/* Removes every entry of xid (write-unprepared transactions have several sections). */
void tb_pending_drop(struct tb_pending *p, const void *xid, size_t len)
{
    while (tb_pending_take(p, xid, len) >= 0)
        ;
}

int tb_pending_has(const struct tb_pending *p, const void *xid, size_t len)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (p->v[i].len == len && memcmp(p->v[i].xid, xid, len) == 0)
            return 1;
    return 0;
}

/* A TSv1 stamp in the record: its first and last. */
static void note_stamp(struct tb_record_info *info, const struct tb_wb_entry *e)
{
    int64_t ns;
    if (!tb_wb_stamp(e, &ns))
        return;
    if (!info->has_stamp)
        info->first_stamp = ns;
    info->has_stamp = 1;
    info->last_stamp = ns;
}

/* What every policy notes of an entry: a stamp, and the column family a data op writes. */
static int note_entry(struct tb_record_info *info, const struct tb_wb_entry *e, int (*cf_seen)(void *arg, uint32_t cf),
                      void *arg)
{
    if (e->kind == TB_WB_LOG_DATA)
        note_stamp(info, e);
    else if (tb_wb_consumes_seq(e->kind) && cf_seen)
        return cf_seen(arg, e->cf);
    return 0;
}

/* seq_per_batch (write-prepared, write-unprepared): sub-batches take the sequences, a
 * Commit takes its own, so continuity never depends on the Prepare; pending only says
 * which transactions are open (for retention and the unknown-Commit warning). */
static int scan_seq_per_batch(struct tb_pending *p, struct tb_wb_iter *it, struct tb_record_info *info,
                              int (*cf_seen)(void *arg, uint32_t cf), void *arg)
{
    struct tb_wb_seq sq;
    struct tb_wb_entry e;
    int m, rc = 0;
    tb_wb_seq_init(&sq, it->seq);
    while (rc == 0 && (m = tb_wb_next(it, &e)) == 1) {
        uint64_t seq;
        if ((rc = tb_wb_seq_step(&sq, &e, &seq)) < 0 || (rc = note_entry(info, &e, cf_seen, arg)) < 0)
            break;
        if (e.kind == TB_WB_BEGIN_PREPARE && e.tag == 0x09)
            rc = tb_error_set(TB_EVERIFY,
                              "a WRITE_COMMITTED prepare (tag 0x09) in a write-prepared/unprepared log: "
                              "wrong write policy (--write-policy)");
        else if (e.kind == TB_WB_END_PREPARE && !tb_pending_has(p, e.key, e.klen))
            rc = tb_pending_add(p, e.key, e.klen, 0);
        if (e.kind == TB_WB_COMMIT && !tb_pending_has(p, e.key, e.klen))
            info->unknown_commit = 1;
        if (e.kind == TB_WB_COMMIT || e.kind == TB_WB_ROLLBACK)
            tb_pending_drop(p, e.key, e.klen);
    }
    if (rc == 0 && m < 0)
        rc = m;
    info->next_seq = tb_wb_seq_end(&sq);
    info->unlogged = sq.unlogged;
    tb_wb_seq_free(&sq);
    return rc;
}

int tb_record_scan(struct tb_pending *p, enum tb_policy policy, const unsigned char *rec, size_t len,
                   struct tb_record_info *info, int (*cf_seen)(void *arg, uint32_t cf), void *arg)
{
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    uint64_t consumed = 0, prep = 0;
    int in_prepare = 0, m, rc;
    memset(info, 0, sizeof *info);
    if ((rc = tb_wb_init(&it, rec, len)) < 0)
        return rc;
    info->seq = it.seq;
    if (policy == TB_POLICY_PREPARED || policy == TB_POLICY_UNPREPARED)
        return scan_seq_per_batch(p, &it, info, cf_seen, arg);
    /* Write-committed: a prepared section's ops take their sequences at its Commit. */
    while ((m = tb_wb_next(&it, &e)) == 1) {
        int64_t c;
        if ((rc = note_entry(info, &e, cf_seen, arg)) < 0)
            return rc;
        if (tb_wb_consumes_seq(e.kind) && in_prepare) {
            prep++;
        } else if (tb_wb_consumes_seq(e.kind)) {
            consumed++;
        } else if (e.kind == TB_WB_BEGIN_PREPARE) {
            in_prepare = 1;
            prep = 0;
        } else if (e.kind == TB_WB_END_PREPARE) {
            if ((rc = tb_pending_add(p, e.key, e.klen, prep)) < 0)
                return rc;
            in_prepare = 0;
        } else if (e.kind == TB_WB_COMMIT || e.kind == TB_WB_ROLLBACK) {
            c = tb_pending_take(p, e.key, e.klen);
            if (e.kind == TB_WB_COMMIT && c < 0)
                info->unknown_commit = 1;
            else if (e.kind == TB_WB_COMMIT)
                consumed += (uint64_t)c;
        }
    }
    if (m < 0)
        return m;
    info->next_seq = it.seq + consumed;
    return 0;
}


int tb_wal_log_cmp(const void *x, const void *y)
{
    const struct tb_wal_log *a = x, *b = y;
    return a->number < b->number ? -1 : a->number > b->number;
}

void tb_wal_logs_free(struct tb_wal_log *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* The WAL files of the DB directory and its archive/, by number (a file moving between
 * them is listed once). */
int tb_wal_logs_list(const char *db, struct tb_wal_log **out, size_t *n)
{
    const char *subs[] = { "", "archive" };
    struct tb_wal_log *v = NULL;
    size_t cap = 0;
    *n = 0;
    for (int s = 0; s < 2; s++) {
        char *dir = s ? tb_fs_join(db, subs[s]) : strdup(db);
        DIR *d = dir ? opendir(dir) : NULL;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t l = strlen(e->d_name);
            char *end;
            uint64_t num;
            int dup = 0;
            if (l < 5 || strcmp(e->d_name + l - 4, ".log") != 0)
                continue;
            num = strtoull(e->d_name, &end, 10);
            if (end != e->d_name + l - 4)
                continue;
            for (size_t i = 0; i < *n; i++)
                dup |= v[i].number == num;
            if (dup)
                continue;
            if (*n == cap) {
                struct tb_wal_log *p = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof *p);
                if (!p)
                    break;
                v = p;
            }
            v[*n].number = num;
            v[*n].fd = -1;
            v[*n].listed = 1;
            v[(*n)++].path = tb_fs_join(dir, e->d_name);
        }
        if (d)
            closedir(d);
        free(dir);
    }
    if (*n)
        qsort(v, *n, sizeof *v, tb_wal_log_cmp);
    *out = v;
    return 0;
}

int tb_wal_files_end(const char *dir, enum tb_policy policy, uint64_t *next_seq, enum tb_policy *used)
{
    return tb_wal_files_scan(dir, policy, next_seq, used, NULL);
}

int tb_wal_files_scan(const char *dir, enum tb_policy policy, uint64_t *next_seq, enum tb_policy *used,
                      struct tb_pending **pending)
{
    struct tb_wal_log *logs = NULL;
    size_t nlogs = 0;
    struct tb_pending *p = tb_pending_new();
    int rc = p ? tb_wal_logs_list(dir, &logs, &nlogs) : tb_error_set(TB_EIO, "out of memory");
    *next_seq = 0;
    for (size_t i = 0; rc == 0 && i < nlogs; i++) {
        tb_wal_reader *r = NULL;
        const unsigned char *rec;
        size_t len;
        int more = 0;
        /* A live database retires WAL files (deleted, or moved to archive/) while they are
         * read; one gone since the listing holds nothing newer than the files after it. */
        if ((rc = tb_wal_reader_open(&r, logs[i].path, logs[i].number, 0)) == TB_ENOENT) {
            rc = 0;
            tb_error_clear();
            continue;
        }
        if (rc < 0)
            break;
        while (rc == 0 && (more = tb_wal_reader_next(r, &rec, &len)) == 1) {
            struct tb_record_info info;
            if ((rc = tb_wb_policy_refine(&policy, NULL, rec, len)) < 0)
                break;
            if ((rc = tb_record_scan(p, policy, rec, len, &info, NULL, NULL)) == 0 && info.next_seq > *next_seq)
                *next_seq = info.next_seq;
        }
        if (rc == 0 && more < 0)
            rc = more;
        if (rc < 0)
            rc = tb_error_wrap(rc, "%s", logs[i].path);
        tb_wal_reader_free(r);
    }
    tb_wal_logs_free(logs, nlogs);
    if (rc == 0 && pending) {
        *pending = p;
        p = NULL;
    }
    tb_pending_free(p);
    if (used)
        *used = policy;
    return rc;
}
