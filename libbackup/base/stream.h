/* stream: one byte-stream type with a small vtable; filters stack on it (like redis's rio). */
#ifndef TB_STREAM_H
#define TB_STREAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_stream tb_stream;

struct tb_stream_ops {
    /* Reads up to len bytes; *n == 0 means end of stream. */
    int (*read)(tb_stream *s, void *buf, size_t len, size_t *n);
    int (*write)(tb_stream *s, const void *buf, size_t len);
    /* Finishes a writer (flushes, writes trailers, fsyncs files) or ends a reader. */
    int (*close)(tb_stream *s);
    void (*free)(tb_stream *s);
};

/* For a writer that keeps buffers (behind): where up to *cap bytes of the next write may
 * be put, then commit of how many were. tb_stream_copy reads into them, with no copy. */
struct tb_stream_buf_ops {
    void *(*get)(tb_stream *s, size_t *cap);
    int (*commit)(tb_stream *s, size_t n);
};

/* A filter owns the stream below it (next): closing or freeing the top closes or
 * frees the whole stack. */
struct tb_stream {
    const struct tb_stream_ops *ops;
    tb_stream *next;
    const char *name; /* for messages: the path or object the bytes go to */
    int closed;
    const struct tb_stream_buf_ops *wbuf; /* NULL for most */
};

/* For filters and drivers: a zeroed struct of size bytes that starts with its tb_stream, with
 * ops, over next (may be NULL; owned once the constructor succeeds), named as next is, or name
 * when there is no next. NULL with the error set when out of memory. */
void *tb_stream_alloc(size_t size, const struct tb_stream_ops *ops, tb_stream *next, const char *name);

int tb_stream_read(tb_stream *s, void *buf, size_t len, size_t *n);
/* Reads until len bytes or end of stream. */
int tb_stream_read_full(tb_stream *s, void *buf, size_t len, size_t *n);
int tb_stream_write(tb_stream *s, const void *buf, size_t len);
/* Closes the stack top-down; the first error wins. Idempotent. */
int tb_stream_close(tb_stream *s);
/* Frees the stack without finishing it (an abandoned writer). NULL is a no-op. */
void tb_stream_free(tb_stream *s);
/* Copies src to dst until the end of src; *copied may be NULL. Closes neither. */
int tb_stream_copy(tb_stream *dst, tb_stream *src, uint64_t *copied);

/* fd: reads or writes an fd; own_fd closes it on close. name is for messages. */
int tb_stream_fd(tb_stream **out, int fd, int own_fd, const char *name);
/* file: opens path for reading ("r") or creates it for writing ("w", O_EXCL unless
 * "w+" which truncates). A file writer fsyncs on close; "wb" only starts the writeback on
 * close (the caller fsyncs later, e.g. a whole tree: the disk works while it goes on),
 * "wt" does neither (a temporary file, removed before anyone relies on it). */
int tb_stream_file(tb_stream **out, const char *path, const char *mode);
/* mem: a reader over a buffer (not copied), or a writer into a growing buffer. */
int tb_stream_mem_reader(tb_stream **out, const void *buf, size_t len);
int tb_stream_mem_writer(tb_stream **out);
const void *tb_stream_mem_data(tb_stream *s, size_t *len);
/* borrow: passes reads and writes to s without owning it: closing or freeing the
 * borrower leaves s open, for stacks built on a stream the caller keeps. */
int tb_stream_borrow(tb_stream **out, tb_stream *s);
/* peek: reads up to len (<= 16) first bytes of next into buf, and gives a stream that
 * returns them again before the rest (owning next). */
int tb_stream_peek(tb_stream **out, tb_stream *next, unsigned char *buf, size_t len, size_t *n);
/* behind: a writer that hands what it is given to a thread of its own, which writes it to
 * next (owned) while the caller goes on, and closes next; close waits for that and returns
 * the first error of either (a write error also shows at a later write). Up to 1 MiB is
 * held; for files of megabytes, not for small ones (a thread each). */
int tb_stream_behind(tb_stream **out, tb_stream *next);
/* null: a writer that discards. */
int tb_stream_null_writer(tb_stream **out);

/* zstd: compressing writer (level, worker threads; 0 threads = in caller's thread),
 * decompressing reader. Both take ownership of next. */
int tb_stream_zstd_writer(tb_stream **out, tb_stream *next, int level, int threads);
int tb_stream_zstd_reader(tb_stream **out, tb_stream *next);
/* Ends the zstd writer s's current frame and writes it whole to the stream below (which is
 * neither closed nor synced); what is written next starts a new frame (a WAL segment's
 * flush: every frame on disk is complete). */
int tb_stream_zstd_end_frame(tb_stream *s);

/* sha256: a tee that hashes every byte passing through (reads or writes).
 * The digest is valid after close (writer) or after the end of stream (reader). */
int tb_stream_sha256(tb_stream **out, tb_stream *next);
void tb_stream_sha256_digest(tb_stream *s, unsigned char digest[32]);
void tb_stream_sha256_hex(tb_stream *s, char hex[65]);
/* Stops hashing what passes (reads): the digest is then of no use. For a reader that found
 * out it does not need it (an encrypted archive is named by its sealed digest). */
void tb_stream_sha256_off(tb_stream *s);

/* counter: counts bytes and calls cb (if any) after each read or write; cb throttles. */
/* Passes reads and writes through at no more than bytes_per_sec on average since the
 * first byte. now/sleep may be NULL (the monotonic clock, nanosleep); tests pass their
 * own. A signal (tb_interrupted) ends a wait with the "interrupted" error. */
typedef int64_t (*tb_clock_fn)(void *arg);
typedef void (*tb_sleep_fn)(void *arg, int64_t ns);
int tb_stream_rate_limit(tb_stream **out, tb_stream *next, uint64_t bytes_per_sec, tb_clock_fn now, tb_sleep_fn sleep,
                         void *arg);

typedef void (*tb_progress_cb)(void *arg, uint64_t bytes_done);
int tb_stream_counter(tb_stream **out, tb_stream *next, tb_progress_cb cb, void *arg);
uint64_t tb_stream_counter_bytes(tb_stream *s);

/* SHA-256 (hex) and size of a whole file, read through the stream stack. */
int tb_stream_file_sha256(const char *path, char hex[65], uint64_t *size);

/* Hex helpers used with digests everywhere. */
void tb_hex(const unsigned char *in, size_t len, char *out /* 2*len+1 */);

#endif
