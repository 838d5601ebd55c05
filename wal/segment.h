/* segment: the WAL archive's segments (zstd frames of archived WAL records, each with a CRC),
 * its index and its crash-safe state. Format in docs/wal-format.md. */
#ifndef TB_SEGMENT_H
#define TB_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "stream.h"

#define TB_SEG_PARTIAL "current.wal.zst.partial"
#define TB_SEG_INDEX "index.tsv"
#define TB_SEG_INDEX_FROM "# from\t" /* + the first sequence left after expiry */
#define TB_SEG_FLAG_STAMPED 1u /* ts is a writer's TSv1 stamp (else the archiver's clock) */

#define TB_SEG_FLAG_RESYNC 2u /* continuity unknown before this record (archive start) */
/* Decoded as seq_per_batch (write-prepared/unprepared): the record's own sequences start at
 * its WriteBatch header's, and first_seq may be lower, covering sequences that writers
 * took without writing WAL since the record before (docs/wal-format.md). */
#define TB_SEG_FLAG_SEQ_PER_BATCH 4u

/* One archived WAL record: a whole RocksDB WriteBatch as it was in the log. first_seq is
 * the header's sequence (with TB_SEG_FLAG_SEQ_PER_BATCH: or lower, see there); next_seq
 * the first sequence after what the record consumes (write-committed: a Prepare consumes
 * none, its Commit consumes the prepared ops; docs/wal-notes.md). */
struct tb_seg_record {
    uint64_t first_seq, next_seq;
    int64_t ts_ns;
    uint32_t flags;
    uint64_t log_number, end_offset; /* where the record ended in the source WAL */
    const unsigned char *data; /* the WriteBatch bytes (valid until the next read) */
    size_t len;
};

struct tb_seg_info {
    uint64_t first_seq, next_seq;
    int64_t first_ts, last_ts;
    uint64_t size;
    char sha256[65];
    char name[64];
};

/* ---- writer: appends to the partial segment, one zstd frame per flush ---- */
typedef struct tb_seg_writer tb_seg_writer;
/* Opens dir's partial segment, recovering complete frames and cutting a torn tail. keys:
 * an encrypted archive's keyring (NULL: plain), kept (not owned) until the writer is freed:
 * segments are sealed for it when published (the partial segment being written stays plain
 * until then). */
int tb_seg_writer_open(tb_seg_writer **out, const char *dir, int level, tb_keyring *keys);
/* Records in the partial segment, and the last one (valid when count > 0). */
uint64_t tb_seg_writer_count(tb_seg_writer *w);
const struct tb_seg_record *tb_seg_writer_last(tb_seg_writer *w);
uint64_t tb_seg_writer_bytes(tb_seg_writer *w);
int64_t tb_seg_writer_first_ts(tb_seg_writer *w);
int tb_seg_writer_append(tb_seg_writer *w, const struct tb_seg_record *r);
/* Ends the current zstd frame and fsyncs: everything appended is now durable. */
int tb_seg_writer_flush(tb_seg_writer *w);
/* Empties the partial segment: its records are dropped (a new archive restarting). */
int tb_seg_writer_discard(tb_seg_writer *w);
/* After a crash between publishing a sealed segment and emptying the partial one: empties
 * the partial segment when a segment of exactly its records is published. */
int tb_seg_writer_settle(tb_seg_writer *w);
/* Publishes the partial segment as FIRST-NEXT.wal.zst (sealed, with keys) and adds it to
 * the index. info may be NULL. */
int tb_seg_writer_rotate(tb_seg_writer *w, struct tb_seg_info *info);
void tb_seg_writer_free(tb_seg_writer *w);

/* ---- reader: records of one segment file, verified ---- */
typedef struct tb_seg_reader tb_seg_reader;
/* keys opens a sealed segment (an encrypted archive's; NULL: plain archives only). Every
 * function below that reads segments takes the archive's keyring the same way. */
int tb_seg_reader_open(tb_seg_reader **out, const char *path, tb_keyring *keys);
/* 1 with *r filled, 0 at the end; TB_EVERIFY naming file and record on a bad CRC. */
int tb_seg_reader_next(tb_seg_reader *rd, struct tb_seg_record *r);
void tb_seg_reader_free(tb_seg_reader *rd);

/* Calls fn for every record of the archive in order: the index's segments (each checked
 * against the index's size and SHA-256 first), then the partial segment. */
typedef int (*tb_seg_record_fn)(void *arg, const char *segment, const struct tb_seg_record *r);
int tb_seg_walk(const char *wal_dir, tb_keyring *keys, tb_seg_record_fn fn, void *arg);
/* The same, reporting progress: *total (may be NULL) is set, before the first record, to
 * the bytes of the segment files (the index's sizes and the partial segment's), and
 * progress (may be NULL) is called with the bytes of them decoded so far. */
int tb_seg_walk_progress(const char *wal_dir, tb_keyring *keys, tb_seg_record_fn fn, void *arg, tb_progress_cb progress,
                         void *progress_arg, uint64_t *total);

/* ---- index ---- */
/* The index's segments in sequence order (tb_seg_index_parse), with any published segment the index lacks (an
 * archiver killed between publishing and indexing it) read through and added. */
int tb_seg_index_load(const char *dir, tb_keyring *keys, struct tb_seg_info **segs, size_t *n);
/* Parses an index's text (changed in place; name names it in messages) as
 * tb_seg_index_load reads index.tsv, strictly (docs/wal-format.md, "index.tsv"): every
 * line a comment or a segment's seven fields, the segments in sequence order, none twice,
 * none overlapping another, each range that of its file's name; a violation is
 * TB_EVERIFY "NAME line N: why". *from: its "# from" sequence (0: none). */
int tb_seg_index_parse(char *text, size_t len, const char *name, struct tb_seg_info **segs, size_t *n, uint64_t *from);
/* The index line of s, with its newline (malloc'd; NULL: out of memory). */
char *tb_seg_index_line(const struct tb_seg_info *s);
/* Where the index v (n entries, in sequence order) lists the segment name starting at
 * first, or n: a binary search, then the neighbours with the same first sequence (a
 * segment of Prepares alone consumes none). */
size_t tb_seg_index_find(const struct tb_seg_info *v, size_t n, uint64_t first, const char *name);
/* Writes such segments back into index.tsv; *adopted says how many. Only the archiver,
 * holding the archive's lock, calls it. */
int tb_seg_index_repair(const char *dir, tb_keyring *keys, size_t *adopted);
/* Removes the first k segments of the index (index first, then the files); *dropped
 * (malloc'd, k entries) says which. For themis-expire. */
int tb_seg_index_drop_prefix(const char *dir, size_t k, struct tb_seg_info **dropped, size_t *ndropped);

#endif
