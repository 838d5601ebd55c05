/* log_reader: records of a RocksDB WAL file (32 KiB blocks of CRC'd fragments), tolerant of
 * the torn tail of a live file and strict everywhere else. */
#ifndef TB_LOG_READER_H
#define TB_LOG_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_wal_reader tb_wal_reader;

/* Opens path to read records from offset (0, or an offset tb_wal_reader_offset gave).
 * log_number is the file's number (from its name), checked in recyclable records. */
int tb_wal_reader_open(tb_wal_reader **out, const char *path, uint64_t log_number, uint64_t offset);
/* The same from offset 0, the file mapped as it is now instead of read (no copy: for
 * reading closed files, as themis-wal-dump does); what the file gains later is read. A
 * file truncated below its size at open while mapped raises SIGBUS in the reader. */
int tb_wal_reader_open_mapped(tb_wal_reader **out, const char *path, uint64_t log_number);
/* The same on an open file (duplicated; the caller keeps fd), e.g. one held while the writer
 * may delete it; path only names it in messages. Also reads a MANIFEST (same framing). */
int tb_wal_reader_open_fd(tb_wal_reader **out, int fd, const char *path, uint64_t log_number, uint64_t offset);
/* 1: the next record in rec and len (valid until the next call); 0: no more for now, either
 * the end of the file or an incomplete record at its end (a live file's torn tail: call
 * again later, or reopen at tb_wal_reader_offset). TB_EVERIFY names file and offset of a
 * damaged fragment (bad CRC, bad type, fragments out of order). */
int tb_wal_reader_next(tb_wal_reader *r, const unsigned char **rec, size_t *len);
/* Offset just after the last record returned: where to resume. */
uint64_t tb_wal_reader_offset(tb_wal_reader *r);
/* Offset of the first fragment of the record last returned. */
uint64_t tb_wal_reader_record_offset(tb_wal_reader *r);
/* Whether the last 0 came from an incomplete record (bytes after tb_wal_reader_offset). */
int tb_wal_reader_torn(tb_wal_reader *r);
void tb_wal_reader_free(tb_wal_reader *r);

#endif
