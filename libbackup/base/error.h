/* error: int return codes plus a per-thread message, as in libgit2's git_error_last(). */
#ifndef TB_ERROR_H
#define TB_ERROR_H

#include <signal.h>

/* Every library function returns 0 or one of these; the message says what and why. */
enum {
    TB_OK = 0,
    TB_EIO = -1, /* operational failure: I/O, resources, unreadable input */
    TB_EUSAGE = -2, /* bad arguments */
    TB_EVERIFY = -3, /* data does not match what was recorded */
    TB_EGAP = -4, /* WAL gap or target outside the recoverable window */
    TB_ENOSPC = -5, /* not enough free space (an operational failure) */
    TB_EAGAIN = -6, /* try again later (torn tail of a live file, vanished file) */
    TB_ENOENT = -7, /* a file or object does not exist */
    TB_EKEY = -8, /* the key given does not open encrypted data (exit 3, as verification) */
    TB_EMERGEOP = -9, /* a column family's merge operator is not one the tools know: the DB's
                       * content cannot be read (its files still can); exit 1 */
};

/* Sets the thread's message (printf format) and returns code, so callers write
 * `return tb_error_set(TB_EIO, "open: %s", path);`. */
int tb_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errnum)". */
int tb_error_errno(int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same as tb_error_errno for a failed write or fsync: TB_ENOSPC when errnum is ENOSPC (the
 * disk is full), else TB_EIO. */
int tb_error_io(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context: "ctx: old message". Returns code. */
int tb_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tb_error_last(void);
void tb_error_clear(void);
/* Set from a signal handler (by the tools) to ask long operations to stop cleanly: the
 * stream layer and long loops then fail with "interrupted" and take their cleanup path. */
extern volatile sig_atomic_t tb_interrupted;
/* Returns TB_EIO with an "interrupted" message when tb_interrupted is set, else 0. */
int tb_error_check_interrupt(void);

/* Maps a return code to the tools' exit status (0, 1, 2, 3, 4). */
int tb_error_exit_code(int code);

#endif
