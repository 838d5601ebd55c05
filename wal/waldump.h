/* waldump: RocksDB WAL files decoded record by record for display (themis-wal-dump): each
 * record's header, its entries with the sequence each takes, and what follows it. */
#ifndef TB_WALDUMP_H
#define TB_WALDUMP_H

#include <stddef.h>
#include <stdint.h>

#include "archiver.h"
#include "batch.h"
#include "txndb.h"

struct tb_wal_dump_opts {
    int seqs; /* number each op and scan each record (tb_record_scan) */
    int count_only; /* count the entries, keep none, number nothing */
    enum tb_policy policy; /* with seqs: how to decode; TB_POLICY_UNKNOWN: the first record that tells */
};

struct tb_wal_dump_entry {
    struct tb_wb_entry e;
    uint64_t seq; /* with seqs: the sequence the op takes (0 for markers) */
    int prepared; /* with seqs: a write-committed prepared op, numbered at its Commit */
};

struct tb_wal_dump_record {
    uint64_t seq; /* the header's sequence and count, the record's size and offset */
    uint32_t count;
    size_t len;
    uint64_t offset;
    const struct tb_wal_dump_entry *entries; /* NULL with count_only */
    size_t n;
    int spb; /* decoded as seq_per_batch (write-prepared/unprepared) */
    struct tb_record_info info; /* with seqs: next_seq, unlogged, unknown_commit */
    /* A damaged entry: the entries before it are given, err is the error (its message
     * names the record's offset); the caller stops there. */
    int err;
};

typedef struct tb_wal_dump tb_wal_dump;

/* One dumper for a list of files: the policy learnt and the open transactions carry from
 * one file to the next. */
int tb_wal_dump_new(tb_wal_dump **out, const struct tb_wal_dump_opts *o);
/* Starts on a file (its number from its name). */
int tb_wal_dump_open(tb_wal_dump *d, const char *path);
/* The next record: 1 (valid until the next call), 0 at the end of the file, or an error
 * (a record that does not decode at all; a damaged entry comes as 1 with err set). */
int tb_wal_dump_next(tb_wal_dump *d, const struct tb_wal_dump_record **out);
/* After the end: 1 when the file ends in an incomplete record (a live file's tail), at
 * *offset. */
int tb_wal_dump_torn(tb_wal_dump *d, uint64_t *offset);
void tb_wal_dump_free(tb_wal_dump *d);

#endif
