/* behind: a write-behind filter. The caller's bytes go into a few buffers (copied by
 * write, or read straight into them by tb_stream_copy) and a thread of the stream's own
 * writes them to next, and closes it: a restore's decompression goes on while the thread
 * hashes and the file system copies the bytes in and starts the writeback. */
#include "error.h"
#include "stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NBUF = 8, BUFSZ = 128 << 10 };

struct behind_stream {
    tb_stream s;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a buffer filled or emptied, the end asked or reached */
    unsigned char *buf[NBUF];
    size_t len[NBUF];
    unsigned head, count; /* buffers [head, head + count) are queued for the thread (mutex) */
    unsigned tail; /* the caller's alone: buf[tail] is the one it fills, with fill bytes so far;
                    * never among the queued ones, which the caller waits for when all are */
    size_t fill;
    int closing; /* 1: close next after the queue; 2: give up */
    int done; /* the thread has ended */
    int rc; /* the thread's first error, and its message */
    char msg[512];
};

/* Buffers go back to a pool, not to malloc: a restore makes a stream per file, and a block
 * at glibc's mmap threshold (128 KiB) or over is fresh pages each time (mmap, a fault and a
 * cleared page per 4 KiB: with 512 KiB buffers the kernel's time of a 650 MiB restore went
 * from 0.61 s to 0.95 s without the pool). The pool keeps at most two streams' worth for the
 * life of the process. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *pool[2 * NBUF];
static int npool;

static unsigned char *buf_get(void)
{
    unsigned char *p = NULL;
    pthread_mutex_lock(&pool_mu);
    if (npool > 0)
        p = pool[--npool];
    pthread_mutex_unlock(&pool_mu);
    return p ? p : malloc(BUFSZ);
}

static void buf_put(unsigned char *p)
{
    pthread_mutex_lock(&pool_mu);
    if (p && npool < 2 * NBUF) {
        pool[npool++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    free(p);
}

static void *behind_thread(void *arg)
{
    struct behind_stream *b = arg;
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (b->closing == 2 || (b->count == 0 && b->closing))
            break;
        if (b->count == 0) {
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        rc = tb_stream_write(b->s.next, b->buf[b->head], b->len[b->head]);
        pthread_mutex_lock(&b->mu);
        if (rc < 0)
            break;
        b->head = (b->head + 1) % NBUF;
        b->count--;
        pthread_cond_broadcast(&b->cv);
    }
    if (rc == 0 && b->closing == 1) {
        pthread_mutex_unlock(&b->mu);
        rc = tb_stream_close(b->s.next);
        pthread_mutex_lock(&b->mu);
    }
    if (rc < 0) {
        b->rc = rc;
        snprintf(b->msg, sizeof b->msg, "%s", tb_error_last());
    }
    b->done = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* The thread's error, as the caller's (mutex held). */
static int thread_error(struct behind_stream *b)
{
    return tb_error_set(b->rc, "%s", b->msg);
}

/* Hands the buffer being filled to the thread and moves to the next one (mutex held). */
static void push_fill(struct behind_stream *b)
{
    b->len[b->tail] = b->fill;
    b->count++;
    b->tail = (b->tail + 1) % NBUF;
    b->fill = 0;
    pthread_cond_broadcast(&b->cv);
}

/* Queues the buffer being filled, waiting for a free one behind it. */
static int queue_fill(struct behind_stream *b)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    push_fill(b);
    while (b->count == NBUF && !b->done)
        pthread_cond_wait(&b->cv, &b->mu);
    if (b->done)
        rc = thread_error(b);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static void *behind_wbuf(tb_stream *s, size_t *cap)
{
    struct behind_stream *b = (struct behind_stream *)s;
    *cap = BUFSZ - b->fill;
    return b->buf[b->tail] + b->fill;
}

static int behind_wcommit(tb_stream *s, size_t n)
{
    struct behind_stream *b = (struct behind_stream *)s;
    b->fill += n;
    return b->fill == BUFSZ ? queue_fill(b) : 0;
}

static int behind_write(tb_stream *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len) {
        size_t cap, k;
        int rc;
        void *dst = behind_wbuf(s, &cap);
        k = cap < len ? cap : len;
        memcpy(dst, p, k);
        if ((rc = behind_wcommit(s, k)) < 0)
            return rc;
        p += k, len -= k;
    }
    return 0;
}

/* Ends the thread: how 1 (write the rest, close next) or 2 (give up); the thread's error. */
static int behind_end(struct behind_stream *b, int how)
{
    int rc = 0;
    if (!b->started)
        return 0;
    pthread_mutex_lock(&b->mu);
    if (how == 1 && b->fill && !b->done)
        push_fill(b);
    b->closing = how;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->th, NULL);
    b->started = 0;
    if (b->rc < 0)
        rc = thread_error(b);
    return rc;
}

static int behind_close(tb_stream *s)
{
    return behind_end((struct behind_stream *)s, 1);
}

static void behind_free(tb_stream *s)
{
    struct behind_stream *b = (struct behind_stream *)s;
    behind_end(b, 2);
    for (int i = 0; i < NBUF; i++)
        buf_put(b->buf[i]);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

static const struct tb_stream_ops behind_ops = { NULL, behind_write, behind_close, behind_free };
static const struct tb_stream_buf_ops behind_buf_ops = { behind_wbuf, behind_wcommit };

int tb_stream_behind(tb_stream **out, tb_stream *next)
{
    struct behind_stream *b = tb_stream_alloc(sizeof *b, &behind_ops, next, NULL);
    if (!b)
        return TB_EIO;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    for (int i = 0; i < NBUF; i++)
        if (!(b->buf[i] = buf_get())) {
            b->s.next = NULL;
            behind_free(&b->s);
            return tb_error_set(TB_EIO, "out of memory");
        }
    if (pthread_create(&b->th, NULL, behind_thread, b) != 0) {
        b->s.next = NULL;
        behind_free(&b->s);
        return tb_error_set(TB_EIO, "cannot start a writer thread");
    }
    b->started = 1;
    b->s.wbuf = &behind_buf_ops;
    *out = &b->s;
    return 0;
}
