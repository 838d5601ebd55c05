/* progress: a progress line on a terminal or JSON lines for cron, written to a FILE the tool
 * chooses (the library itself never prints). */
#ifndef TB_PROGRESS_H
#define TB_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

enum tb_progress_mode { TB_PROGRESS_OFF, TB_PROGRESS_TTY, TB_PROGRESS_JSON };

struct tb_progress {
    enum tb_progress_mode mode;
    FILE *out;
    const char *phase;
    uint64_t total; /* 0 when unknown */
    uint64_t done;
    double start, last;
    int has_lag; /* a follower: how far behind its source it is (tb_progress_lag) */
    uint64_t lag_bytes;
    int64_t lag_since_ns; /* clock time since which the follower may lack writes */
};

/* Parses the value of --progress[=json]: NULL = off, "" or "tty" = terminal, "json". */
int tb_progress_parse(const char *arg, enum tb_progress_mode *mode);
/* The terminal mode draws only when out is a terminal, else it is off; JSON goes anywhere. */
void tb_progress_start(struct tb_progress *p, enum tb_progress_mode mode, FILE *out, const char *phase, uint64_t total);
/* A tb_progress_cb: records bytes_done, prints at most every 200 ms. */
void tb_progress_update(void *p, uint64_t bytes_done);
/* A follower (the WAL archiver) tells how far behind it is: bytes not yet read, and the
 * clock time since which it may lack writes; lines show "lag_bytes" and "lag_seconds"
 * (counted up to the moment each line is printed). Prints at most every 200 ms. */
void tb_progress_lag(struct tb_progress *p, uint64_t bytes, int64_t since_ns);
/* Prints the final line of the phase. */
void tb_progress_finish(struct tb_progress *p);

#endif
