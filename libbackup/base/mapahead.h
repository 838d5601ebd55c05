/* mapahead: a file mapped whole and read front to back, with a thread that maps the window
 * ahead of the reader into its page table (MADV_POPULATE_READ) and releases the windows
 * behind it (MADV_DONTNEED). The thread only gives hints: the mapping reads the same
 * without it, and the resident set stays a few windows whatever the file's size. */
#ifndef TB_MAPAHEAD_H
#define TB_MAPAHEAD_H

#include <stddef.h>
#include <stdint.h>

/* 4 MiB: the reader's window, the one ahead and the one behind stay resident, 12 MiB. */
#define TB_MAP_AHEAD_WINDOW (4 << 20)

typedef struct tb_map_ahead tb_map_ahead;

/* Maps the first len (> 0) bytes of fd read-only; *base is where they start. 0, or -1 when
 * they cannot be mapped (errno set), and the caller reads instead. */
int tb_map_ahead_open(tb_map_ahead **out, int fd, size_t len, const unsigned char **base);
/* The reader is at off: the windows before the previous one may go, the next one comes in. */
void tb_map_ahead_at(tb_map_ahead *m, uint64_t off);
void tb_map_ahead_close(tb_map_ahead *m);

#endif
