/* mapahead: see mapahead.h. The page-table work of a mapped read (a fault per 64 KiB,
 * then the unmap) was a third of themis-wal-dump's time on one core; here it runs on
 * another while the reader checks CRCs. */
#include "mapahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels say EINVAL and the reader faults */
#endif

enum { WIN = TB_MAP_AHEAD_WINDOW };

struct tb_map_ahead {
    unsigned char *base;
    size_t len, nwin;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cur; /* the window the reader is in */
    size_t freed; /* windows below this were released */
    int stop;
};

static void release_behind(tb_map_ahead *m, size_t cur)
{
    if (m->freed + 1 < cur) {
        madvise(m->base + m->freed * WIN, (cur - 1 - m->freed) * (size_t)WIN, MADV_DONTNEED);
        m->freed = cur - 1;
    }
}

static void *ahead(void *arg)
{
    tb_map_ahead *m = arg;
    size_t next = 0; /* the next window to bring in */
    int populate = 1;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        size_t cur = m->cur;
        int bring = populate && next < m->nwin && next <= cur + 1;
        if (m->stop)
            break;
        if (!bring && m->freed + 1 >= cur) {
            pthread_cond_wait(&m->cv, &m->mu);
            continue;
        }
        pthread_mutex_unlock(&m->mu);
        release_behind(m, cur); /* only this thread moves freed once it runs */
        if (bring) {
            size_t n = next + 1 < m->nwin ? (size_t)WIN : m->len - next * (size_t)WIN;
            if (next >= cur && madvise(m->base + next * WIN, n, MADV_POPULATE_READ) < 0 && errno == EINVAL)
                populate = 0;
            next++;
        }
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int tb_map_ahead_open(tb_map_ahead **out, int fd, size_t len, const unsigned char **base)
{
    tb_map_ahead *m = calloc(1, sizeof *m);
    void *p;
    if (!m)
        return -1;
    p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        free(m);
        return -1;
    }
    madvise(p, len, MADV_SEQUENTIAL);
    m->base = p;
    m->len = len;
    m->nwin = (len + WIN - 1) / WIN;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->started = pthread_create(&m->th, NULL, ahead, m) == 0;
    *base = m->base;
    *out = m;
    return 0;
}

void tb_map_ahead_at(tb_map_ahead *m, uint64_t off)
{
    size_t w = (size_t)(off / WIN);
    if (w == m->cur)
        return;
    if (!m->started) {
        m->cur = w;
        release_behind(m, w);
        return;
    }
    pthread_mutex_lock(&m->mu);
    m->cur = w;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

void tb_map_ahead_close(tb_map_ahead *m)
{
    if (!m)
        return;
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->th, NULL);
    }
    munmap(m->base, m->len);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}
