/* batch: decoder of RocksDB WriteBatch records (every tag RocksDB 7.8 writes), the TSv1 time
 * stamps inside them, and the sequence numbers a record consumes. */
#ifndef TB_BATCH_H
#define TB_BATCH_H

#include <stddef.h>
#include <stdint.h>

enum tb_wb_kind {
    TB_WB_PUT, TB_WB_DELETE, TB_WB_SINGLE_DELETE, TB_WB_DELETE_RANGE, TB_WB_MERGE,
    TB_WB_PUT_ENTITY, TB_WB_BLOB_INDEX, TB_WB_LOG_DATA, TB_WB_NOOP,
    TB_WB_BEGIN_PREPARE, TB_WB_END_PREPARE, TB_WB_COMMIT, TB_WB_ROLLBACK,
};

struct tb_wb_entry {
    enum tb_wb_kind kind;
    unsigned tag;               /* the raw tag byte */
    uint32_t cf;                /* column family id (0 for the non-CF tags) */
    const unsigned char *key;   /* key, range begin, LogData blob, or xid of a marker */
    size_t klen;
    const unsigned char *value; /* value, range end, entity, blob index; commit timestamp */
    size_t vlen;
    size_t offset;              /* of the tag within the record */
};

struct tb_wb_iter {
    const unsigned char *rec, *p, *end;
    uint64_t seq;               /* the record header's sequence */
    uint32_t count;             /* the record header's count */
};

#define TB_WB_HEADER 12

/* Checks the 12-byte header (sequence, count); TB_EVERIFY on a short record. */
int tb_wb_init(struct tb_wb_iter *it, const void *rec, size_t len);
/* 1 with *e filled, 0 at the end; TB_EVERIFY on an unknown tag or a truncated entry,
 * naming the tag and its offset. */
int tb_wb_next(struct tb_wb_iter *it, struct tb_wb_entry *e);
/* Whether e is a "TSv1" stamp (LogData of exactly 12 bytes); *ns gets its time. */
int tb_wb_stamp(const struct tb_wb_entry *e, int64_t *ns);
/* Whether the kind takes a sequence number when applied (Put, Delete, ... not markers). */
int tb_wb_consumes_seq(enum tb_wb_kind k);
const char *tb_wb_kind_name(enum tb_wb_kind k);

#endif
