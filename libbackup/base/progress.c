/* progress: throttled progress output, a terminal line or JSON lines. */
#include "progress.h"
#include "timefmt.h"
#include "error.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tb_progress_parse(const char *arg, enum tb_progress_mode *mode)
{
    if (!arg)
        *mode = TB_PROGRESS_OFF;
    else if (!*arg || strcmp(arg, "tty") == 0)
        *mode = TB_PROGRESS_TTY;
    else if (strcmp(arg, "json") == 0)
        *mode = TB_PROGRESS_JSON;
    else
        return tb_error_set(TB_EUSAGE, "option --progress takes no value or 'json', got '%s'", arg);
    return 0;
}

void tb_progress_start(struct tb_progress *p, enum tb_progress_mode mode, FILE *out, const char *phase, uint64_t total)
{
    memset(p, 0, sizeof *p);
    /* A line redrawn with \r is for eyes: into a file or a pipe (cron's mail) it is noise. */
    p->mode = mode == TB_PROGRESS_TTY && !isatty(fileno(out)) ? TB_PROGRESS_OFF : mode;
    p->out = out;
    p->phase = phase;
    p->total = total;
    p->start = p->last = now();
}

static void emit(struct tb_progress *p, int final)
{
    double t = now(), el = t - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    double lag_s = p->has_lag ? (double)(tb_time_now_ns() - p->lag_since_ns) / 1e9 : 0;
    if (lag_s < 0)
        lag_s = 0;
    if (p->mode == TB_PROGRESS_JSON) {
        fprintf(p->out, "{\"phase\":\"%s\",\"bytes_done\":%llu,\"bytes_total\":%llu,\"rate\":%.0f", p->phase,
                (unsigned long long)p->done, (unsigned long long)p->total, rate);
        if (p->has_lag)
            fprintf(p->out, ",\"lag_bytes\":%llu,\"lag_seconds\":%.3f", (unsigned long long)p->lag_bytes, lag_s);
        fprintf(p->out, "%s}\n", final ? ",\"done\":true" : "");
    } else if (p->mode == TB_PROGRESS_TTY) {
        double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 0;
        fprintf(p->out, "\r%s: %.1f MiB", p->phase, (double)p->done / 1048576.0);
        if (p->total)
            fprintf(p->out, " of %.1f MiB (%.0f%%)", (double)p->total / 1048576.0, pct > 100 ? 100 : pct);
        fprintf(p->out, ", %.1f MiB/s", rate / 1048576.0);
        if (p->has_lag)
            fprintf(p->out, ", behind %.1f MiB, %.1f s", (double)p->lag_bytes / 1048576.0, lag_s);
        fprintf(p->out, "  %s", final ? "\n" : "");
    }
    fflush(p->out);
}

/* A line at most every 200 ms. */
static void throttled_emit(struct tb_progress *p)
{
    double t = now();
    if (t - p->last < 0.2)
        return;
    p->last = t;
    emit(p, 0);
}

void tb_progress_update(void *arg, uint64_t bytes_done)
{
    struct tb_progress *p = arg;
    if (!p || p->mode == TB_PROGRESS_OFF)
        return;
    p->done = bytes_done;
    throttled_emit(p);
}

void tb_progress_lag(struct tb_progress *p, uint64_t bytes, int64_t since_ns)
{
    if (!p || p->mode == TB_PROGRESS_OFF)
        return;
    p->has_lag = 1;
    p->lag_bytes = bytes;
    p->lag_since_ns = since_ns;
    throttled_emit(p);
}

void tb_progress_finish(struct tb_progress *p)
{
    if (p->mode != TB_PROGRESS_OFF)
        emit(p, 1);
}
