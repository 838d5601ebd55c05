/* stream: the byte-stream vtable and its filters: fd/file, memory, zstd, sha256, counter. */
#include "stream.h"
#include "error.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

/* ---- the vtable ---------------------------------------------------------- */

void *tb_stream_alloc(size_t size, const struct tb_stream_ops *ops, tb_stream *next, const char *name)
{
    tb_stream *s = calloc(1, size);
    if (!s) {
        tb_error_set(TB_EIO, "out of memory");
        return NULL;
    }
    s->ops = ops;
    s->next = next;
    s->name = next ? next->name : name;
    return s;
}

/* What keeps a read or write (op) from reaching s: a signal, or s cannot do it (has_op 0;
 * s is then "lacks", e.g. "write-only"). 0 when nothing does. */
static int refused(tb_stream *s, int has_op, const char *op, const char *lacks)
{
    if (tb_interrupted)
        return tb_error_check_interrupt();
    if (!has_op)
        return tb_error_set(TB_EIO, "%s: stream is %s (%s)", op, lacks, s->name);
    return 0;
}

int tb_stream_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    int rc = refused(s, s->ops->read != NULL, "read", "write-only");
    *n = 0;
    if (rc < 0 || len == 0)
        return rc;
    return s->ops->read(s, buf, len, n);
}

int tb_stream_read_full(tb_stream *s, void *buf, size_t len, size_t *n)
{
    size_t got = 0, k;
    int rc = 0;
    while (got < len) {
        rc = tb_stream_read(s, (char *)buf + got, len - got, &k);
        if (rc < 0 || k == 0)
            break;
        got += k;
    }
    *n = got;
    return rc;
}

int tb_stream_write(tb_stream *s, const void *buf, size_t len)
{
    int rc = refused(s, s->ops->write != NULL, "write", "read-only");
    if (rc < 0 || len == 0)
        return rc;
    return s->ops->write(s, buf, len);
}

int tb_stream_close(tb_stream *s)
{
    int rc = 0, rc2;
    for (; s; s = s->next) {
        if (s->closed)
            continue;
        s->closed = 1;
        if (s->ops->close) {
            rc2 = s->ops->close(s);
            if (rc == 0)
                rc = rc2;
        }
    }
    return rc;
}

void tb_stream_free(tb_stream *s)
{
    while (s) {
        tb_stream *next = s->next;
        s->ops->free(s);
        s = next;
    }
}

/* Into a writer that keeps buffers (wbuf), src is read straight into them: no copy. */
int tb_stream_copy(tb_stream *dst, tb_stream *src, uint64_t *copied)
{
    enum { BUFSZ = 1 << 20 };
    char *buf = NULL;
    uint64_t total = 0;
    size_t cap = BUFSZ, n;
    int rc = 0;
    if (!dst->wbuf && !(buf = malloc(BUFSZ)))
        return tb_error_set(TB_EIO, "copy: out of memory");
    for (;;) {
        void *p = dst->wbuf ? dst->wbuf->get(dst, &cap) : buf;
        rc = tb_stream_read(src, p, cap, &n);
        if (rc < 0 || n == 0)
            break;
        rc = dst->wbuf ? dst->wbuf->commit(dst, n) : tb_stream_write(dst, buf, n);
        if (rc < 0)
            break;
        total += n;
    }
    if (copied)
        *copied = total;
    free(buf);
    return rc;
}

int tb_stream_file_sha256(const char *path, char hex[65], uint64_t *size)
{
    tb_stream *f = NULL, *h = NULL, *null = NULL;
    int rc = tb_stream_file(&f, path, "r");
    if (rc == 0 && (rc = tb_stream_sha256(&h, f)) == 0)
        f = NULL;
    if (rc == 0 && (rc = tb_stream_null_writer(&null)) == 0 && (rc = tb_stream_copy(null, h, size)) == 0)
        tb_stream_sha256_hex(h, hex);
    tb_stream_free(null);
    tb_stream_free(h);
    tb_stream_free(f);
    return rc;
}

void tb_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* ---- fd and file --------------------------------------------------------- */

struct fd_stream {
    tb_stream s;
    int fd;
    int own_fd;
    int on_close; /* ON_CLOSE_*: what a file writer's close does before closing */
    uint64_t written, flushed; /* bytes written; those whose writeback was started */
    char name[];
};

static int fd_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct fd_stream *f = (struct fd_stream *)s;
    ssize_t r;
    do
        r = read(f->fd, buf, len);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return tb_error_errno(TB_EIO, errno, "read failed (%s)", f->name);
    *n = (size_t)r;
    return 0;
}

enum { ON_CLOSE_NOTHING, ON_CLOSE_FSYNC, ON_CLOSE_WRITEBACK };

/* A file that will be synced starts the writeback of every 8 MiB written (as RocksDB's
 * bytes_per_sync): the disk works while the caller computes, and the fsync at the end
 * waits for the last few megabytes instead of the whole file (a 600 MB archive: about
 * 0.7 s of waiting at the end without it). */
enum { WRITEBACK_EVERY = 8 << 20 };

static int fd_write(tb_stream *s, const void *buf, size_t len)
{
    struct fd_stream *f = (struct fd_stream *)s;
    if (tb_fs_write_all(f->fd, buf, len) < 0)
        return tb_error_io(errno, "write failed (%s)", f->name);
    f->written += len;
    if (f->on_close != ON_CLOSE_NOTHING && f->written - f->flushed >= WRITEBACK_EVERY) {
        (void)sync_file_range(f->fd, (off_t)f->flushed, (off_t)(f->written - f->flushed), SYNC_FILE_RANGE_WRITE);
        f->flushed = f->written;
    }
    return 0;
}

static int fd_close(tb_stream *s)
{
    struct fd_stream *f = (struct fd_stream *)s;
    int rc = 0;
    if (f->on_close == ON_CLOSE_FSYNC && fsync(f->fd) < 0)
        rc = tb_error_io(errno, "fsync failed (%s)", f->name);
    /* Only starts the writeback (the caller fsyncs later): errors show at that fsync. */
    if (f->on_close == ON_CLOSE_WRITEBACK)
        (void)sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (f->own_fd && f->fd >= 0) {
        if (close(f->fd) < 0 && rc == 0)
            rc = tb_error_errno(TB_EIO, errno, "close failed (%s)", f->name);
        f->fd = -1;
    }
    return rc;
}

static void fd_free(tb_stream *s)
{
    struct fd_stream *f = (struct fd_stream *)s;
    if (f->own_fd && f->fd >= 0)
        close(f->fd);
    free(f);
}

static const struct tb_stream_ops fd_ops = { fd_read, fd_write, fd_close, fd_free };

static int fd_new(tb_stream **out, int fd, int own_fd, int on_close, const char *name)
{
    size_t nl = strlen(name) + 1;
    struct fd_stream *f = tb_stream_alloc(sizeof *f + nl, &fd_ops, NULL, NULL);
    if (!f)
        return TB_EIO;
    memcpy(f->name, name, nl);
    f->s.name = f->name;
    f->fd = fd;
    f->own_fd = own_fd;
    f->on_close = on_close;
    *out = &f->s;
    return 0;
}

int tb_stream_fd(tb_stream **out, int fd, int own_fd, const char *name)
{
    return fd_new(out, fd, own_fd, 0, name);
}

int tb_stream_file(tb_stream **out, const char *path, const char *mode)
{
    int flags, fd, rc, on_close = ON_CLOSE_FSYNC;
    if (strcmp(mode, "r") == 0)
        flags = O_RDONLY, on_close = ON_CLOSE_NOTHING;
    else if (strcmp(mode, "w") == 0)
        flags = O_WRONLY | O_CREAT | O_EXCL;
    else if (strcmp(mode, "w+") == 0)
        flags = O_WRONLY | O_CREAT | O_TRUNC;
    else if (strcmp(mode, "wb") == 0)
        flags = O_WRONLY | O_CREAT | O_EXCL, on_close = ON_CLOSE_WRITEBACK;
    else if (strcmp(mode, "wt") == 0)
        flags = O_WRONLY | O_CREAT | O_EXCL, on_close = ON_CLOSE_NOTHING;
    else
        return tb_error_set(TB_EUSAGE, "bad file mode '%s' (%s)", mode, path);
    fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0)
        return tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot open %s", path);
    if (flags == O_RDONLY)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = fd_new(out, fd, 1, on_close, path);
    if (rc < 0)
        close(fd);
    return rc;
}

/* ---- memory -------------------------------------------------------------- */

struct mem_stream {
    tb_stream s;
    const char *rbuf;
    char *wbuf;
    size_t len, pos, cap;
};

static int mem_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct mem_stream *m = (struct mem_stream *)s;
    size_t k = m->len - m->pos < len ? m->len - m->pos : len;
    memcpy(buf, m->rbuf + m->pos, k);
    m->pos += k;
    *n = k;
    return 0;
}

static int mem_write(tb_stream *s, const void *buf, size_t len)
{
    struct mem_stream *m = (struct mem_stream *)s;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        char *p;
        while (cap < m->len + len)
            cap *= 2;
        p = realloc(m->wbuf, cap);
        if (!p)
            return tb_error_set(TB_EIO, "out of memory");
        m->wbuf = p;
        m->cap = cap;
    }
    memcpy(m->wbuf + m->len, buf, len);
    m->len += len;
    return 0;
}

static void mem_free(tb_stream *s)
{
    free(((struct mem_stream *)s)->wbuf);
    free(s);
}

static const struct tb_stream_ops mem_read_ops = { mem_read, NULL, NULL, mem_free };
static const struct tb_stream_ops mem_write_ops = { NULL, mem_write, NULL, mem_free };

int tb_stream_mem_reader(tb_stream **out, const void *buf, size_t len)
{
    struct mem_stream *m = tb_stream_alloc(sizeof *m, &mem_read_ops, NULL, "memory");
    if (!m)
        return TB_EIO;
    m->rbuf = buf;
    m->len = len;
    *out = &m->s;
    return 0;
}

int tb_stream_mem_writer(tb_stream **out)
{
    struct mem_stream *m = tb_stream_alloc(sizeof *m, &mem_write_ops, NULL, "memory");
    if (!m)
        return TB_EIO;
    *out = &m->s;
    return 0;
}

const void *tb_stream_mem_data(tb_stream *s, size_t *len)
{
    struct mem_stream *m = (struct mem_stream *)s;
    *len = m->len;
    return m->wbuf ? (const void *)m->wbuf : (const void *)m->rbuf;
}

static int null_write(tb_stream *s, const void *buf, size_t len)
{
    (void)s, (void)buf, (void)len;
    return 0;
}

static void plain_free(tb_stream *s)
{
    free(s);
}

static const struct tb_stream_ops null_ops = { NULL, null_write, NULL, plain_free };

int tb_stream_null_writer(tb_stream **out)
{
    return (*out = tb_stream_alloc(sizeof **out, &null_ops, NULL, "/dev/null")) ? 0 : TB_EIO;
}

struct borrow_stream {
    tb_stream s;
    tb_stream *target;
};

static int borrow_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    return tb_stream_read(((struct borrow_stream *)s)->target, buf, len, n);
}

static int borrow_write(tb_stream *s, const void *buf, size_t len)
{
    return tb_stream_write(((struct borrow_stream *)s)->target, buf, len);
}

static const struct tb_stream_ops borrow_ops = { borrow_read, borrow_write, NULL, plain_free };

int tb_stream_borrow(tb_stream **out, tb_stream *target)
{
    struct borrow_stream *b = tb_stream_alloc(sizeof *b, &borrow_ops, NULL, target->name);
    if (!b)
        return TB_EIO;
    b->target = target;
    *out = &b->s;
    return 0;
}

struct peek_stream {
    tb_stream s;
    unsigned char head[16];
    size_t len, pos;
};

static int peek_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct peek_stream *p = (struct peek_stream *)s;
    if (p->pos < p->len) {
        size_t k = p->len - p->pos < len ? p->len - p->pos : len;
        memcpy(buf, p->head + p->pos, k);
        p->pos += k;
        *n = k;
        return 0;
    }
    return tb_stream_read(s->next, buf, len, n);
}

static const struct tb_stream_ops peek_ops = { peek_read, NULL, NULL, plain_free };

int tb_stream_peek(tb_stream **out, tb_stream *next, unsigned char *buf, size_t len, size_t *n)
{
    struct peek_stream *p = tb_stream_alloc(sizeof *p, &peek_ops, next, NULL);
    int rc;
    if (!p)
        return TB_EIO;
    if (len > sizeof p->head)
        len = sizeof p->head;
    if ((rc = tb_stream_read_full(next, p->head, len, &p->len)) < 0) {
        free(p);
        return rc;
    }
    memcpy(buf, p->head, p->len);
    *n = p->len;
    *out = &p->s;
    return 0;
}

/* ---- zstd ---------------------------------------------------------------- */

struct zstd_stream {
    tb_stream s;
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
    char *buf; /* compressed bytes: output of the writer, input of the reader */
    size_t cap;
    ZSTD_inBuffer in; /* reader: unconsumed compressed input */
    int eof; /* reader: next is at end */
    size_t last_ret; /* reader: last ZSTD_decompressStream result (0 = frame complete) */
};

/* The one zstd compress loop: compresses buf (may be empty) and writes what comes out to
 * next. ZSTD_e_continue takes all of buf in; ZSTD_e_end also writes the frame out whole. */
static int zstd_compress(struct zstd_stream *z, const void *buf, size_t len, ZSTD_EndDirective end)
{
    ZSTD_inBuffer in = { buf, len, 0 };
    size_t rem;
    int rc;
    do {
        ZSTD_outBuffer out = { z->buf, z->cap, 0 };
        rem = ZSTD_compressStream2(z->c, &out, &in, end);
        if (ZSTD_isError(rem))
            return tb_error_set(TB_EIO, "zstd compression failed: %s (%s)", ZSTD_getErrorName(rem), z->s.name);
        if (out.pos && (rc = tb_stream_write(z->s.next, z->buf, out.pos)) < 0)
            return rc;
    } while (end == ZSTD_e_end ? rem != 0 : in.pos < in.size);
    return 0;
}

static int zstd_write(tb_stream *s, const void *buf, size_t len)
{
    return zstd_compress((struct zstd_stream *)s, buf, len, ZSTD_e_continue);
}

static int zstd_wclose(tb_stream *s)
{
    return zstd_compress((struct zstd_stream *)s, NULL, 0, ZSTD_e_end);
}

int tb_stream_zstd_end_frame(tb_stream *s)
{
    if (tb_interrupted)
        return tb_error_check_interrupt();
    return zstd_wclose(s);
}

static int zstd_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct zstd_stream *z = (struct zstd_stream *)s;
    ZSTD_outBuffer out = { buf, len, 0 };
    int rc;
    while (out.pos == 0) {
        if (z->in.pos == z->in.size) {
            size_t got;
            if (z->eof)
                break;
            if ((rc = tb_stream_read(s->next, z->buf, z->cap, &got)) < 0)
                return rc;
            if (got == 0) {
                z->eof = 1;
                if (z->last_ret != 0)
                    return tb_error_set(TB_EVERIFY, "truncated zstd stream (%s)", s->name);
                break;
            }
            z->in.src = z->buf;
            z->in.size = got;
            z->in.pos = 0;
        }
        z->last_ret = ZSTD_decompressStream(z->d, &out, &z->in);
        if (ZSTD_isError(z->last_ret))
            return tb_error_set(TB_EVERIFY, "corrupt zstd stream: %s (%s)", ZSTD_getErrorName(z->last_ret), s->name);
    }
    *n = out.pos;
    return 0;
}

static void zstd_free(tb_stream *s)
{
    struct zstd_stream *z = (struct zstd_stream *)s;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z->buf);
    free(z);
}

static const struct tb_stream_ops zstd_w_ops = { NULL, zstd_write, zstd_wclose, zstd_free };
static const struct tb_stream_ops zstd_r_ops = { zstd_read, NULL, NULL, zstd_free };

int tb_stream_zstd_writer(tb_stream **out, tb_stream *next, int level, int threads)
{
    struct zstd_stream *z = tb_stream_alloc(sizeof *z, &zstd_w_ops, next, NULL);
    size_t r;
    if (!z)
        return TB_EIO;
    z->cap = ZSTD_CStreamOutSize();
    z->buf = malloc(z->cap);
    z->c = ZSTD_createCCtx();
    if (!z->buf || !z->c) {
        z->s.next = NULL;
        zstd_free(&z->s);
        return tb_error_set(TB_EIO, "out of memory");
    }
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 1);
    if (threads > 0) {
        r = ZSTD_CCtx_setParameter(z->c, ZSTD_c_nbWorkers, threads);
        if (ZSTD_isError(r)) {
            z->s.next = NULL;
            zstd_free(&z->s);
            return tb_error_set(TB_EUSAGE, "zstd: cannot use %d threads: %s", threads, ZSTD_getErrorName(r));
        }
        /* Each job is primed with the 1 MiB before it at least, where zstd primes 256 KiB
         * at level 3: db_bench's values repeat about 1 MiB apart, and jobs of 2 MiB with
         * 256 KiB primed wrote 75 MB of them where tar | zstd -T0 -3 wrote 47 MB (and the
         * bench DB's tar took more CPU); 4 MiB jobs primed with 1 MiB (overlapLog 8) wrote
         * 37 MB, and zstd -T2 alone took less CPU on both tars. Each worker holds a job's
         * input and output, so memory grows with the workers, and the backup runs beside a
         * recovery that may take 150 MiB (mem.c, txndb.cc). Past 8 workers, jobs of 2 MiB
         * primed with a whole window (overlapLog 9) cost more CPU per byte but keep 16
         * workers near 95 MiB resident (zstd's CLI), as 8 with 4 MiB jobs; zstd's 8 MiB jobs
         * took 273 MiB at 16 (docs/benchmarks.md). */
        ZSTD_CCtx_setParameter(z->c, ZSTD_c_jobSize, threads <= 8 ? 4 << 20 : 2 << 20);
        ZSTD_CCtx_setParameter(z->c, ZSTD_c_overlapLog, threads <= 8 ? 8 : 9);
    }
    *out = &z->s;
    return 0;
}

int tb_stream_zstd_reader(tb_stream **out, tb_stream *next)
{
    struct zstd_stream *z = tb_stream_alloc(sizeof *z, &zstd_r_ops, next, NULL);
    if (!z)
        return TB_EIO;
    z->cap = ZSTD_DStreamInSize();
    z->buf = malloc(z->cap);
    z->d = ZSTD_createDCtx();
    z->last_ret = 1;
    if (!z->buf || !z->d) {
        z->s.next = NULL;
        zstd_free(&z->s);
        return tb_error_set(TB_EIO, "out of memory");
    }
    *out = &z->s;
    return 0;
}

/* ---- sha256 tee ---------------------------------------------------------- */

struct sha_stream {
    tb_stream s;
    EVP_MD_CTX *md;
    unsigned char digest[32];
    int final, off;
};

static void sha_finish(struct sha_stream *h)
{
    unsigned int len = 32;
    if (!h->final) {
        EVP_DigestFinal_ex(h->md, h->digest, &len);
        h->final = 1;
    }
}

static int sha_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct sha_stream *h = (struct sha_stream *)s;
    int rc = tb_stream_read(s->next, buf, len, n);
    if (rc < 0)
        return rc;
    if (*n && !h->off)
        EVP_DigestUpdate(h->md, buf, *n);
    else if (!*n)
        sha_finish(h);
    return 0;
}

static int sha_write(tb_stream *s, const void *buf, size_t len)
{
    struct sha_stream *h = (struct sha_stream *)s;
    EVP_DigestUpdate(h->md, buf, len);
    return tb_stream_write(s->next, buf, len);
}

static int sha_close(tb_stream *s)
{
    sha_finish((struct sha_stream *)s);
    return 0;
}

static void sha_free(tb_stream *s)
{
    struct sha_stream *h = (struct sha_stream *)s;
    EVP_MD_CTX_free(h->md);
    free(h);
}

static const struct tb_stream_ops sha_ops = { sha_read, sha_write, sha_close, sha_free };

int tb_stream_sha256(tb_stream **out, tb_stream *next)
{
    struct sha_stream *h = tb_stream_alloc(sizeof *h, &sha_ops, next, NULL);
    if (!h)
        return TB_EIO;
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        free(h);
        return tb_error_set(TB_EIO, "sha256: cannot initialise OpenSSL digest");
    }
    *out = &h->s;
    return 0;
}

void tb_stream_sha256_digest(tb_stream *s, unsigned char digest[32])
{
    struct sha_stream *h = (struct sha_stream *)s;
    sha_finish(h);
    memcpy(digest, h->digest, 32);
}

void tb_stream_sha256_off(tb_stream *s)
{
    ((struct sha_stream *)s)->off = 1;
}

void tb_stream_sha256_hex(tb_stream *s, char hex[65])
{
    unsigned char d[32];
    tb_stream_sha256_digest(s, d);
    tb_hex(d, 32, hex);
}

/* ---- counter ------------------------------------------------------------- */

struct counter_stream {
    tb_stream s;
    uint64_t bytes;
    tb_progress_cb cb;
    void *arg;
};

static void counter_add(struct counter_stream *c, size_t n)
{
    c->bytes += n;
    if (c->cb)
        c->cb(c->arg, c->bytes);
}

static int counter_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    int rc = tb_stream_read(s->next, buf, len, n);
    if (rc == 0)
        counter_add((struct counter_stream *)s, *n);
    return rc;
}

static int counter_write(tb_stream *s, const void *buf, size_t len)
{
    int rc = tb_stream_write(s->next, buf, len);
    if (rc == 0)
        counter_add((struct counter_stream *)s, len);
    return rc;
}

static const struct tb_stream_ops counter_ops = { counter_read, counter_write, NULL, plain_free };

int tb_stream_counter(tb_stream **out, tb_stream *next, tb_progress_cb cb, void *arg)
{
    struct counter_stream *c = tb_stream_alloc(sizeof *c, &counter_ops, next, NULL);
    if (!c)
        return TB_EIO;
    c->cb = cb;
    c->arg = arg;
    *out = &c->s;
    return 0;
}

uint64_t tb_stream_counter_bytes(tb_stream *s)
{
    return ((struct counter_stream *)s)->bytes;
}

/* ---- rate limit ---- */

struct rate_stream {
    tb_stream s;
    uint64_t rate, bytes;
    int64_t t0;
    tb_clock_fn now;
    tb_sleep_fn sleep;
    void *arg;
};

static int64_t mono_ns(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nano_sleep(void *arg, int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    (void)arg;
    nanosleep(&ts, NULL); /* a signal ends it early; the caller looks at tb_interrupted */
}

/* Waits until n more bytes keep the average at or under the rate. */
static int rate_wait(struct rate_stream *r, size_t n)
{
    int64_t t = r->now(r->arg), due;
    if (!r->bytes && !r->t0)
        r->t0 = t;
    /* At most one second of credit from an idle spell, not a burst of all of it. */
    due = r->t0 + (int64_t)((double)r->bytes / (double)r->rate * 1e9);
    if (t - due > 1000000000)
        r->t0 += t - due - 1000000000;
    r->bytes += n;
    due = r->t0 + (int64_t)((double)r->bytes / (double)r->rate * 1e9);
    while (t < due) {
        int rc = tb_error_check_interrupt();
        if (rc < 0)
            return rc;
        r->sleep(r->arg, due - t);
        t = r->now(r->arg);
    }
    return tb_error_check_interrupt();
}

static int rate_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    int rc = tb_stream_read(s->next, buf, len, n);
    return rc == 0 && *n ? rate_wait((struct rate_stream *)s, *n) : rc;
}

static int rate_write(tb_stream *s, const void *buf, size_t len)
{
    int rc = rate_wait((struct rate_stream *)s, len);
    return rc == 0 ? tb_stream_write(s->next, buf, len) : rc;
}

static const struct tb_stream_ops rate_ops = { rate_read, rate_write, NULL, plain_free };

int tb_stream_rate_limit(tb_stream **out, tb_stream *next, uint64_t bytes_per_sec, tb_clock_fn now, tb_sleep_fn sleep,
                         void *arg)
{
    struct rate_stream *r;
    if (!bytes_per_sec)
        return tb_error_set(TB_EUSAGE, "a rate limit must be above 0");
    if (!(r = tb_stream_alloc(sizeof *r, &rate_ops, next, NULL)))
        return TB_EIO;
    r->rate = bytes_per_sec;
    r->now = now ? now : mono_ns;
    r->sleep = sleep ? sleep : nano_sleep;
    r->arg = arg;
    *out = &r->s;
    return 0;
}
