/* error: the thread-local last-error message behind tb_error_last(). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tb_msg[1024];

static void set_v(const char *fmt, va_list ap)
{
    vsnprintf(tb_msg, sizeof tb_msg, fmt, ap);
}

int tb_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_v(fmt, ap);
    va_end(ap);
    return code;
}

/* The message, then ": strerror(errnum)". */
static void set_errno_v(int errnum, const char *fmt, va_list ap)
{
    size_t n;
    set_v(fmt, ap);
    n = strlen(tb_msg);
    snprintf(tb_msg + n, sizeof tb_msg - n, ": %s", strerror(errnum));
}

int tb_error_errno(int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errno_v(errnum, fmt, ap);
    va_end(ap);
    return code;
}

int tb_error_io(int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errno_v(errnum, fmt, ap);
    va_end(ap);
    return errnum == ENOSPC ? TB_ENOSPC : TB_EIO;
}

int tb_error_wrap(int code, const char *fmt, ...)
{
    char old[sizeof tb_msg];
    va_list ap;
    size_t n;
    memcpy(old, tb_msg, sizeof old);
    va_start(ap, fmt);
    set_v(fmt, ap);
    va_end(ap);
    n = strlen(tb_msg);
    if (old[0] && n + 2 < sizeof tb_msg) {
        size_t room = sizeof tb_msg - n - 3, len = strlen(old);
        memcpy(tb_msg + n, ": ", 2);
        memcpy(tb_msg + n + 2, old, len < room ? len : room);
        tb_msg[n + 2 + (len < room ? len : room)] = '\0';
    }
    return code;
}

volatile sig_atomic_t tb_interrupted;

int tb_error_check_interrupt(void)
{
    if (tb_interrupted)
        return tb_error_set(TB_EIO, "interrupted by signal %d, temporary files removed", (int)tb_interrupted);
    return 0;
}

const char *tb_error_last(void)
{
    return tb_msg[0] ? tb_msg : "unknown error";
}

void tb_error_clear(void)
{
    tb_msg[0] = '\0';
}

int tb_error_exit_code(int code)
{
    switch (code) {
    case TB_OK: return 0;
    case TB_EUSAGE: return 2;
    case TB_EVERIFY: return 3;
    case TB_EKEY: return 3;
    case TB_EGAP: return 4;
    default: return 1;
    }
}
