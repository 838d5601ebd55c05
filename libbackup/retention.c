/* retention: the expiry policy over a catalog of backups and a WAL archive's index. */
#include "retention.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "segment.h"

#define NS_PER_DAY (86400LL * 1000000000LL)

/* Keeps the ancestors of kept incremental backups (found by their archive hash): the whole
 * chain, since restore walks it parent by parent to the files it needs (an encrypted
 * backup's manifest does not even say which). */
static void keep_parents(enum tb_keep_reason *why, const struct tb_catalog_entry *cat, size_t n)
{
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            const char *id = cat[i].m->parent_sha256;
            if (!why[i] || !cat[i].m->parent_path)
                continue;
            for (size_t j = 0; j < n; j++)
                if (!why[j] && strcmp(cat[j].m->archive_sha256, id) == 0) {
                    why[j] = TB_KEEP_PARENT;
                    changed = 1;
                }
        }
    }
}

static enum tb_keep_reason rule(const struct tb_catalog_entry *e, size_t i, const char *verified,
                                const struct tb_retention *p)
{
    if (verified && strcmp(e->dir, verified) == 0)
        return TB_KEEP_VERIFIED;
    if ((long long)i < p->keep_min)
        return TB_KEEP_NEWEST;
    if (p->now_ns - e->created_ns <= p->keep_days * NS_PER_DAY)
        return TB_KEEP_YOUNG;
    return TB_KEEP_NOT;
}

int tb_retention_decide(enum tb_keep_reason **why, size_t *kept, uint64_t *oldest_base,
                        const struct tb_catalog_entry *cat, size_t n, const char *verified,
                        const struct tb_retention *policy)
{
    enum tb_keep_reason *v = NULL;
    *why = NULL;
    *kept = 0;
    *oldest_base = UINT64_MAX;
    if (policy->keep_days < 0 || policy->keep_min < 1)
        return tb_error_set(TB_EUSAGE, "a retention keeps at least the newest backup, for 0 days or more");
    if (n && !(v = calloc(n, sizeof *v)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = rule(&cat[i], i, verified, policy);
    keep_parents(v, cat, n);
    for (size_t i = 0; i < n; i++)
        if (v[i]) {
            (*kept)++;
            if (cat[i].m->last_seq < *oldest_base)
                *oldest_base = cat[i].m->last_seq;
        }
    *why = v;
    return 0;
}

int tb_retention_wal_starts_late(const struct tb_seg_info *segs, size_t n, size_t cut, uint64_t base)
{
    return cut < n && segs[cut].first_seq > base + 1;
}
