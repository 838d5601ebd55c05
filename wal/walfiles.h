/* walfiles: a database's own WAL files read for what the archive needs: the sequences each
 * record consumes under the writer's policy (seq_per_batch: docs/wal-notes.md), the
 * transactions left prepared, and where the files end. Below the archiver and the RocksDB
 * readers: it needs only the log format (log_reader.c) and WriteBatch decoding (batch.c). */
#ifndef TB_WALFILES_H
#define TB_WALFILES_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Walks a record's entries for what the archive needs: the sequences it consumes (given
 * the prepared sections still pending), its first TSv1 stamp, the CF ids it writes. */
/* The set of open Prepares (the archiver saves it in state.tsv). */
struct tb_pending {
    size_t n, cap;
    struct {
        char *xid;
        size_t len;
        uint64_t count;
    } * v;
};

struct tb_record_info {
    uint64_t seq, next_seq;
    int has_stamp;
    int64_t first_stamp, last_stamp;
    int unknown_commit; /* a Commit whose Prepare was not seen */
    uint64_t unlogged; /* seq_per_batch: sequences its plain batches take later, without WAL */
};
struct tb_pending *tb_pending_new(void);
void tb_pending_free(struct tb_pending *p);
/* The set of open Prepares by xid, each with a value (the archiver's: the sequences the
 * Prepare will consume at its Commit). take removes xid and returns its value, -1 when
 * unknown; min is the smallest value, dflt when none is open. */
int tb_pending_add(struct tb_pending *p, const void *xid, size_t len, uint64_t value);
int64_t tb_pending_take(struct tb_pending *p, const void *xid, size_t len);
/* Whether p holds the transaction named xid. */
int tb_pending_has(const struct tb_pending *p, const void *xid, size_t len);
/* Removes every entry of xid (each section of a write-unprepared transaction). */
void tb_pending_drop(struct tb_pending *p, const void *xid, size_t len);
uint64_t tb_pending_min(const struct tb_pending *p, uint64_t dflt);

/* The first sequence after the last whole record of the WAL files in dir and dir/archive/
 * (0 when none), decoded under policy (TB_POLICY_UNKNOWN: as the records tell; *used gets
 * what was used, may be NULL). For a base whose content is exactly those files' records
 * (a checkpoint recovered from its WAL): its position in the WAL's numbering, which under
 * write-prepared/unprepared the reported last sequence is not (it lags commit markers;
 * docs/wal-notes.md). */
int tb_wal_files_end(const char *dir, enum tb_policy policy, uint64_t *next_seq, enum tb_policy *used);
/* The same, and (pending non-NULL) the transactions those files leave prepared: a Prepare
 * without its Commit or Rollback (free with tb_pending_free). */
int tb_wal_files_scan(const char *dir, enum tb_policy policy, uint64_t *next_seq, enum tb_policy *used,
                      struct tb_pending **pending);

/* Updates p (prepares added, commits and rollbacks removed). cf_seen(arg, id) is called
 * for every column family id written, when not NULL. policy PREPARED or UNPREPARED decodes
 * seq_per_batch (tb_wb_seq); anything else as WRITE_COMMITTED (docs/wal-notes.md). */
int tb_record_scan(struct tb_pending *p, enum tb_policy policy, const unsigned char *rec, size_t len,
                   struct tb_record_info *info, int (*cf_seen)(void *arg, uint32_t cf), void *arg);

/* A WAL file of a database directory. */
struct tb_wal_log {
    uint64_t number;
    char *path;
    int fd; /* held by the tap, or -1 */
    int listed; /* in the directory now (else only held: deleted since) */
};
/* The WAL files of the DB directory and its archive/, by number (a file moving between
 * them is listed once); free with tb_wal_logs_free. */
int tb_wal_logs_list(const char *db, struct tb_wal_log **out, size_t *n);
void tb_wal_logs_free(struct tb_wal_log *v, size_t n);
/* qsort order of tb_wal_log by number. */
int tb_wal_log_cmp(const void *x, const void *y);

#endif
