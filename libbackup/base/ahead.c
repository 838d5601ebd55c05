/* ahead: a read-ahead filter. A thread of the stream's own reads next into a few buffers
 * while the caller takes the ones already full: a restore's decompression goes on while the
 * thread reads the archive, hashes it and, for an encrypted one, opens its chunks (all of
 * which were on the decompressing thread before, 1.30x the time of a plain restore). The
 * caller gets the same bytes as from next and then next's end or its error, with its
 * message. */
#include "error.h"
#include "stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NBUF = 4, BUFSZ = 256 << 10 };

struct ahead_stream {
    tb_stream s;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a buffer filled or taken, the thread ended, the caller gave up */
    unsigned char *buf[NBUF];
    size_t len[NBUF];
    unsigned head, count; /* buffers [head, head + count) are full, the caller's to take (mutex) */
    size_t pos; /* the caller's alone: what it has taken of buf[head] */
    int stop; /* the caller gives up: the thread ends before its next read */
    int done; /* the thread has ended: next's end or error, or stop */
    int rc; /* the thread's error, and its message */
    char msg[512];
};

/* Reads next into p until BUFSZ bytes, its end, an error, or the caller giving up (looked
 * at between reads, which a rate limit below may stretch). */
static int fill(struct ahead_stream *a, unsigned char *p, size_t *got)
{
    int rc = 0, stop = 0;
    size_t k;
    *got = 0;
    while (*got < BUFSZ && !stop) {
        if ((rc = tb_stream_read(a->s.next, p + *got, BUFSZ - *got, &k)) < 0 || k == 0)
            break;
        *got += k;
        pthread_mutex_lock(&a->mu);
        stop = a->stop;
        pthread_mutex_unlock(&a->mu);
    }
    return rc;
}

static void *ahead_thread(void *arg)
{
    struct ahead_stream *a = arg;
    int rc = 0, end = 0;
    pthread_mutex_lock(&a->mu);
    while (!end) {
        unsigned i;
        size_t n;
        while (a->count == NBUF && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop)
            break;
        i = (a->head + a->count) % NBUF; /* not the caller's: it takes only full ones */
        pthread_mutex_unlock(&a->mu);
        rc = fill(a, a->buf[i], &n);
        end = rc < 0 || n < BUFSZ;
        pthread_mutex_lock(&a->mu);
        if (n) { /* the bytes before an error come first, as from next */
            a->len[i] = n;
            a->count++;
            pthread_cond_broadcast(&a->cv);
        }
    }
    if (rc < 0) {
        a->rc = rc;
        snprintf(a->msg, sizeof a->msg, "%s", tb_error_last());
    }
    a->done = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static int ahead_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct ahead_stream *a = (struct ahead_stream *)s;
    unsigned h;
    int rc = 0;
    *n = 0;
    pthread_mutex_lock(&a->mu);
    while (a->count == 0 && !a->done)
        pthread_cond_wait(&a->cv, &a->mu);
    if (a->count == 0) {
        if (a->rc < 0)
            rc = tb_error_set(a->rc, "%s", a->msg);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
    h = a->head;
    pthread_mutex_unlock(&a->mu);
    *n = a->len[h] - a->pos < len ? a->len[h] - a->pos : len;
    memcpy(buf, a->buf[h] + a->pos, *n);
    a->pos += *n;
    if (a->pos == a->len[h]) {
        pthread_mutex_lock(&a->mu);
        a->head = (h + 1) % NBUF;
        a->count--;
        a->pos = 0;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    return 0;
}

/* Waits for the thread, which ends after the read it is in (one of next's, which a file
 * finishes soon; hence local files only, not a pipe or a socket that may stall). */
static void ahead_free(tb_stream *s)
{
    struct ahead_stream *a = (struct ahead_stream *)s;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->th, NULL);
    }
    for (int i = 0; i < NBUF; i++)
        free(a->buf[i]);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

static const struct tb_stream_ops ahead_ops = { ahead_read, NULL, NULL, ahead_free };

int tb_stream_ahead(tb_stream **out, tb_stream *next)
{
    struct ahead_stream *a = tb_stream_alloc(sizeof *a, &ahead_ops, next, NULL);
    if (!a)
        return TB_EIO;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    for (int i = 0; i < NBUF; i++)
        if (!(a->buf[i] = malloc(BUFSZ))) {
            a->s.next = NULL;
            ahead_free(&a->s);
            return tb_error_set(TB_EIO, "out of memory");
        }
    if (pthread_create(&a->th, NULL, ahead_thread, a) != 0) {
        a->s.next = NULL;
        ahead_free(&a->s);
        return tb_error_set(TB_EIO, "cannot start a reader thread");
    }
    a->started = 1;
    *out = &a->s;
    return 0;
}
