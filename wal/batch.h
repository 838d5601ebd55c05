/* batch: decoder of RocksDB WriteBatch records (every tag RocksDB 7.8 writes), the TSv1 time
 * stamps inside them, and the sequence numbers a record consumes. */
#ifndef TB_BATCH_H
#define TB_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

enum tb_wb_kind {
    TB_WB_PUT,
    TB_WB_DELETE,
    TB_WB_SINGLE_DELETE,
    TB_WB_DELETE_RANGE,
    TB_WB_MERGE,
    TB_WB_PUT_ENTITY,
    TB_WB_BLOB_INDEX,
    TB_WB_LOG_DATA,
    TB_WB_NOOP,
    TB_WB_BEGIN_PREPARE,
    TB_WB_END_PREPARE,
    TB_WB_COMMIT,
    TB_WB_ROLLBACK,
};

struct tb_wb_entry {
    enum tb_wb_kind kind;
    unsigned tag; /* the raw tag byte */
    uint32_t cf; /* column family id (0 for the non-CF tags) */
    const unsigned char *key; /* key, range begin, LogData blob, or xid of a marker */
    size_t klen;
    const unsigned char *value; /* value, range end, entity, blob index; commit timestamp */
    size_t vlen;
    size_t offset; /* of the tag within the record */
};

struct tb_wb_iter {
    const unsigned char *rec, *p, *end;
    uint64_t seq; /* the record header's sequence */
    uint32_t count; /* the record header's count */
};

#define TB_WB_HEADER 12

/* Checks the 12-byte header (sequence, count); TB_EVERIFY on a short record. */
int tb_wb_init(struct tb_wb_iter *it, const void *rec, size_t len);
/* The header's sequence of a record of at least 8 bytes (0 when shorter). */
uint64_t tb_wb_header_seq(const void *rec);
/* 1 with *e filled, 0 at the end; TB_EVERIFY on an unknown tag or a truncated entry,
 * naming the tag and its offset. */
int tb_wb_next(struct tb_wb_iter *it, struct tb_wb_entry *e);
/* Whether e is a "TSv1" stamp (LogData of exactly 12 bytes); *ns gets its time. */
int tb_wb_stamp(const struct tb_wb_entry *e, int64_t *ns);
/* Whether the kind takes a sequence number when applied (Put, Delete, ... not markers). */
int tb_wb_consumes_seq(enum tb_wb_kind k);
const char *tb_wb_kind_name(enum tb_wb_kind k);

/* Sequence numbers under WRITE_PREPARED / WRITE_UNPREPARED (RocksDB's seq_per_batch; the
 * rules and the experiments behind them are in docs/wal-notes.md). A record takes one
 * sequence per sub-batch, not per key: a sub-batch ends at each EndPrepare, Commit,
 * Rollback, and each Noop that follows an entry (a leading Noop is a placeholder), and a
 * (column family, key) written twice within one sub-batch starts a new one there. Every
 * op of a sub-batch gets the sub-batch's sequence. A writer's plain batch (data ending in
 * a Noop: a Write() or a commit without a prepare) is published under two_write_queues by
 * a second write that takes one more sequence and writes no WAL: "unlogged" counts them;
 * they fall somewhere after the record, before or between later records. */
struct tb_wb_seq {
    uint64_t seq; /* the current sub-batch's sequence */
    uint64_t unlogged; /* sequences the record's plain batches take later without WAL */
    int empty; /* nothing since the last boundary (RocksDB's empty_batch) */
    int batch_data; /* the writer batch being read has a data op */
    size_t nkeys, cap; /* (cf, key) of the current sub-batch, open addressing */
    struct tb_wb_key {
        const unsigned char *key;
        size_t klen;
        uint32_t cf;
    } * keys;
};
void tb_wb_seq_init(struct tb_wb_seq *s, uint64_t header_seq);
void tb_wb_seq_free(struct tb_wb_seq *s);
/* Feeds the record's entries in order. Returns the sequence e takes (for a data op; for a
 * marker, the sequence of the sub-batch it ends), or TB_EIO when out of memory. */
int tb_wb_seq_step(struct tb_wb_seq *s, const struct tb_wb_entry *e, uint64_t *seq);
/* After the last entry: the first sequence after the record's own. */
uint64_t tb_wb_seq_end(const struct tb_wb_seq *s);

/* Encoder: data ops into a plain WriteBatch record (no markers), for a WAL file the
 * server's own RocksDB replays (themis-wal-replay --as-wal-file). Each entry is written
 * with the tag RocksDB itself writes for its kind and column family (the _CF variant only
 * for cf != 0), whatever tag it was read with. */
struct tb_wb_builder {
    unsigned char *buf;
    size_t len, cap;
    uint32_t count; /* entries added */
};
void tb_wb_builder_init(struct tb_wb_builder *b);
/* Put, Delete, SingleDelete, DeleteRange (key..value), Merge, PutEntity; TB_EVERIFY for
 * any other kind (a marker, a blob index), TB_EIO when out of memory. */
int tb_wb_builder_add(struct tb_wb_builder *b, const struct tb_wb_entry *e);
/* A transaction's markers, which count no op: TB_WB_BEGIN_PREPARE writes a write-unprepared
 * section's begin (0x13), TB_WB_END_PREPARE its end naming xid (0x0a), TB_WB_COMMIT a
 * Commit of xid (0x0b). TB_EVERIFY for any other kind. */
int tb_wb_builder_marker(struct tb_wb_builder *b, enum tb_wb_kind kind, const unsigned char *xid, size_t xlen);
/* Sets the header (sequence, count) and returns the record (valid until the next call). */
const unsigned char *tb_wb_builder_finish(struct tb_wb_builder *b, uint64_t seq, size_t *len);
/* Empties it for the next record. */
void tb_wb_builder_reset(struct tb_wb_builder *b);
void tb_wb_builder_free(struct tb_wb_builder *b);

/* What a record's markers say about the writer's policy, TB_POLICY_UNKNOWN when nothing:
 * BeginUnprepare (0x13): unprepared; BeginPersistedPrepare (0x12): prepared (or
 * unprepared: its last section); BeginPrepare (0x09) or a record ending in a data op:
 * committed (seq_per_batch batches always end in a marker); a record ending in a Noop
 * after data: prepared (or unprepared). Returns 2 when a marker said it (certain), 1 when
 * the record's shape did (a write-committed group ending in an empty transaction's Noop
 * looks prepared), 0 for nothing; TB_EVERIFY on a damaged record. */
int tb_wb_policy_hint(const void *rec, size_t len, enum tb_policy *policy);
/* What a decoder learns from rec: a *policy not known yet takes the record's hint, a
 * prepared one becomes unprepared when the record says so; anything else stays (a
 * contradiction is the caller's to judge). *hint (may be NULL) gets the hint; returns
 * tb_wb_policy_hint's certainty. */
int tb_wb_policy_refine(enum tb_policy *policy, enum tb_policy *hint, const void *rec, size_t len);

#endif
