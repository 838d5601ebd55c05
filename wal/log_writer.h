/* log_writer: writes RocksDB's log format (the WAL's and the MANIFEST's framing), so a
 * point-in-time recovery can hand its batches to the server's own RocksDB as a WAL file. */
#ifndef TB_LOG_WRITER_H
#define TB_LOG_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_wal_writer tb_wal_writer;

/* Creates path (which must not exist) and writes records into it. */
int tb_wal_writer_open(tb_wal_writer **out, const char *path);
/* Appends to an existing log file (a MANIFEST of ours) from its current end: the first
 * fragment continues the block that end lies in. */
int tb_wal_writer_append(tb_wal_writer **out, const char *path);
/* Appends one record, split into fragments at 32 KiB block boundaries as RocksDB does. */
int tb_wal_writer_add(tb_wal_writer *w, const void *rec, size_t len);
/* Bytes written so far (the file's size). */
uint64_t tb_wal_writer_size(const tb_wal_writer *w);
/* Writes out what is buffered and fsyncs the file; the writer stays usable. */
int tb_wal_writer_sync(tb_wal_writer *w);
/* Syncs and closes; on error the file is left as it is (the caller removes it). Frees w. */
int tb_wal_writer_close(tb_wal_writer *w);
/* Frees without syncing (after an error). NULL is a no-op. */
void tb_wal_writer_free(tb_wal_writer *w);

#endif
