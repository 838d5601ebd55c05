/* retention: which backups of a root and which WAL segments an expiry keeps (themis-expire's
 * policy, as plain functions the tool calls and the unit tests check). */
#ifndef TB_RETENTION_H
#define TB_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

struct tb_seg_info;

struct tb_retention {
    int64_t now_ns; /* the time ages are measured at */
    long long keep_days; /* keep every backup created in the last keep_days days (>= 0) */
    long long keep_min; /* keep at least the newest keep_min backups (>= 1) */
};

/* Why a backup is kept, in the order the rules are tried; TB_KEEP_NOT: removed. */
enum tb_keep_reason {
    TB_KEEP_NOT = 0,
    TB_KEEP_VERIFIED, /* the newest backup that verifies: never removed */
    TB_KEEP_NEWEST, /* among the newest keep_min */
    TB_KEEP_YOUNG, /* younger than keep_days */
    TB_KEEP_PARENT, /* a kept incremental backup builds on it (directly or further up) */
};

/* The verdict on each backup of cat (n of them, newest first as tb_catalog_list gives
 * them): *why (malloc'd, n entries; NULL when n is 0) says whether and why each is kept.
 * verified (may be NULL) is the directory of the newest backup that verifies. The whole
 * chain under a kept incremental backup is kept (found by the parent's archive hash):
 * restore walks it parent by parent. *kept counts the kept ones and *oldest_base is the
 * smallest last sequence among them (UINT64_MAX when none is kept). */
int tb_retention_decide(enum tb_keep_reason **why, size_t *kept, uint64_t *oldest_base,
                        const struct tb_catalog_entry *cat, size_t n, const char *verified,
                        const struct tb_retention *policy);

/* Whether the WAL archive segs (n) without its first cut segments begins later than the
 * oldest kept backup (last sequence base) continues: it cannot bring that backup forward
 * (the archive was started after it). The cut itself is tb_wal_archive_unneeded_prefix's. */
int tb_retention_wal_starts_late(const struct tb_seg_info *segs, size_t n, size_t cut, uint64_t base);

#endif
