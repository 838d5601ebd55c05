/* tar: the backup stream as tar through libarchive (tar.h: not <archive.h>), our tb_stream below it. */
#include "tar.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>

struct tb_tar_writer {
    struct archive *a;
    tb_stream *dst;
    int io_rc; /* the stream's error, kept because libarchive flattens it */
    int discard; /* freed without close: write no trailer that would make it look whole */
    char *buf;
};

struct tb_tar_reader {
    struct archive *a;
    tb_stream *src;
    int io_rc;
    char *buf;
    /* What was handed to libarchive, to check what follows the end-of-archive blocks
     * (libarchive stops at them and never looks further): given bytes in all, the last
     * chunk's length (it is still in buf), and the TAIL bytes before that chunk. */
    uint64_t given;
    size_t last;
    unsigned char tail[1024];
    size_t ntail;
    int src_eof;
    /* The current member: its stated size and the bytes returned so far. */
    int in_entry;
    uint64_t size, done;
    const char *blk; /* the rest of libarchive's current data block */
    size_t blkleft;
    char name[80]; /* the member's name as messages show it */
};

enum { IO_BUF = 1 << 20 }; /* a writer's or reader's I/O buffer, allocated right behind it */

/* Out of memory making a writer or reader (obj, may be NULL) that was to own s. */
static int no_memory(void *obj, tb_stream *s)
{
    free(obj);
    tb_stream_free(s);
    return tb_error_set(TB_EIO, "out of memory");
}

static la_ssize_t w_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct tb_tar_writer *w = ctx;
    int rc;
    if (w->discard)
        return (la_ssize_t)len;
    rc = tb_stream_write(w->dst, buf, len);
    if (rc < 0) {
        w->io_rc = rc;
        archive_set_error(a, EIO, "%s", tb_error_last());
        return -1;
    }
    return (la_ssize_t)len;
}

static int w_fail(struct tb_tar_writer *w, const char *what, const char *name)
{
    if (w->io_rc < 0)
        return w->io_rc;
    return tb_error_set(TB_EIO, "%s: %s (%s)", what, archive_error_string(w->a), name);
}

static int writer_new(tb_tar_writer **out, tb_stream *dst, int block)
{
    struct tb_tar_writer *w = calloc(1, sizeof *w + IO_BUF);
    if (!w || !(w->a = archive_write_new()))
        return no_memory(w, dst);
    w->dst = dst;
    w->buf = (char *)(w + 1);
    archive_write_set_format_pax_restricted(w->a);
    archive_write_add_filter_none(w->a);
    archive_write_set_bytes_per_block(w->a, block);
    archive_write_set_bytes_in_last_block(w->a, 1);
    if (archive_write_open2(w->a, w, NULL, w_write, NULL, NULL) != ARCHIVE_OK) {
        int rc = w_fail(w, "cannot start tar stream", dst->name);
        tb_tar_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tb_tar_writer_new(tb_tar_writer **out, tb_stream *dst)
{
    return writer_new(out, dst, 64 * 1024);
}

int tb_tar_writer_live(tb_tar_writer **out, tb_stream *dst)
{
    /* 0: libarchive writes every header and data block as it comes, no 64 KiB batching. */
    return writer_new(out, dst, 0);
}

static struct archive_entry *new_entry(const char *name, mode_t type, mode_t mode, int64_t size, time_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return NULL;
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode & 07777);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, mtime, 0);
    return e;
}

int tb_tar_add_file(tb_tar_writer *w, const char *name, const char *path, uint64_t *size, char sha256[65],
                    unsigned *mode)
{
    tb_stream *f = NULL, *h = NULL;
    struct archive_entry *e = NULL;
    struct stat st;
    uint64_t done = 0;
    int rc = 0;

    if ((rc = tb_stream_file(&f, path, "r")) < 0)
        goto cleanup;
    if (stat(path, &st) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", path);
        goto cleanup;
    }
    if ((rc = tb_stream_sha256(&h, f)) < 0)
        goto cleanup;
    f = NULL;
    if (!(e = new_entry(name, AE_IFREG, st.st_mode, st.st_size, st.st_mtime))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    archive_entry_set_uid(e, st.st_uid);
    archive_entry_set_gid(e, st.st_gid);
    if (archive_write_header(w->a, e) != ARCHIVE_OK) {
        rc = w_fail(w, "cannot write tar header", name);
        goto cleanup;
    }
    for (;;) {
        size_t n;
        if ((rc = tb_stream_read(h, w->buf, IO_BUF, &n)) < 0)
            goto cleanup;
        if (n == 0)
            break;
        if (done + n > (uint64_t)st.st_size) {
            rc = tb_error_set(TB_EIO, "file grew while being archived (%s)", path);
            goto cleanup;
        }
        if (archive_write_data(w->a, w->buf, n) != (la_ssize_t)n) {
            rc = w_fail(w, "cannot write tar data", name);
            goto cleanup;
        }
        done += n;
    }
    if (done != (uint64_t)st.st_size) {
        rc = tb_error_set(TB_EIO, "file shrank while being archived (%s)", path);
        goto cleanup;
    }
    if (archive_write_finish_entry(w->a) != ARCHIVE_OK) {
        rc = w_fail(w, "cannot finish tar member", name);
        goto cleanup;
    }
    tb_stream_sha256_hex(h, sha256);
    *size = done;
    if (mode)
        *mode = st.st_mode & 07777;
cleanup:
    archive_entry_free(e);
    tb_stream_free(h);
    tb_stream_free(f);
    return rc;
}

int tb_tar_add_dir(tb_tar_writer *w, const char *name, mode_t mode)
{
    struct archive_entry *e = new_entry(name, AE_IFDIR, mode, 0, time(NULL));
    int rc = 0;
    if (!e)
        return tb_error_set(TB_EIO, "out of memory");
    if (archive_write_header(w->a, e) != ARCHIVE_OK)
        rc = w_fail(w, "cannot write tar header", name);
    archive_entry_free(e);
    return rc;
}

int tb_tar_add_bytes(tb_tar_writer *w, const char *name, const void *data, size_t len, mode_t mode)
{
    struct archive_entry *e = new_entry(name, AE_IFREG, mode, (int64_t)len, time(NULL));
    int rc = 0;
    if (!e)
        return tb_error_set(TB_EIO, "out of memory");
    if (archive_write_header(w->a, e) != ARCHIVE_OK)
        rc = w_fail(w, "cannot write tar header", name);
    else if (len && archive_write_data(w->a, data, len) != (la_ssize_t)len)
        rc = w_fail(w, "cannot write tar data", name);
    else if (archive_write_finish_entry(w->a) != ARCHIVE_OK)
        rc = w_fail(w, "cannot finish tar member", name);
    archive_entry_free(e);
    return rc;
}

int tb_tar_writer_close(tb_tar_writer *w)
{
    int rc = 0;
    if (archive_write_close(w->a) != ARCHIVE_OK)
        rc = w_fail(w, "cannot finish tar stream", w->dst->name);
    if (rc == 0)
        rc = tb_stream_close(w->dst);
    return rc;
}

void tb_tar_writer_free(tb_tar_writer *w)
{
    if (!w)
        return;
    w->discard = 1;
    archive_write_free(w->a);
    tb_stream_free(w->dst);
    free(w);
}

/* ---- reader -------------------------------------------------------------- */

static la_ssize_t r_read(struct archive *a, void *ctx, const void **buf)
{
    struct tb_tar_reader *r = ctx;
    size_t n, keep = r->last < sizeof r->tail ? r->last : sizeof r->tail;
    int rc;
    /* libarchive has copied what it still needs of the last chunk: keep its end in tail. */
    if (keep < sizeof r->tail && r->ntail + keep > sizeof r->tail) {
        size_t drop = r->ntail + keep - sizeof r->tail;
        memmove(r->tail, r->tail + drop, r->ntail - drop);
        r->ntail -= drop;
    } else if (keep == sizeof r->tail) {
        r->ntail = 0;
    }
    memcpy(r->tail + r->ntail, r->buf + r->last - keep, keep);
    r->ntail += keep;
    r->last = 0;
    rc = tb_stream_read(r->src, r->buf, IO_BUF, &n);
    if (rc < 0) {
        r->io_rc = rc;
        archive_set_error(a, EIO, "%s", tb_error_last());
        return -1;
    }
    r->src_eof = n == 0;
    r->given += n;
    r->last = n;
    *buf = r->buf;
    return (la_ssize_t)n;
}

static int r_fail(struct tb_tar_reader *r, const char *what)
{
    if (r->io_rc < 0)
        return r->io_rc;
    /* Anything libarchive rejects in our own format is damage: verification failed. */
    return tb_error_set(TB_EVERIFY, "%s: %s (%s)", what, archive_error_string(r->a), r->src->name);
}

int tb_tar_reader_new(tb_tar_reader **out, tb_stream *src)
{
    struct tb_tar_reader *r = calloc(1, sizeof *r + IO_BUF);
    if (!r || !(r->a = archive_read_new()))
        return no_memory(r, src);
    archive_read_support_format_tar(r->a);
    archive_read_support_filter_none(r->a);
    r->src = src;
    r->buf = (char *)(r + 1);
    if (archive_read_open(r->a, r, NULL, r_read, NULL) != ARCHIVE_OK) {
        int rc = r_fail(r, "not a readable tar stream");
        tb_tar_reader_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* name, fit for a one-line message: control bytes as '?', cut after 60 bytes. */
static const char *shown(const char *name, char out[80])
{
    size_t i;
    for (i = 0; name[i] && i < 60; i++)
        out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    strcpy(out + i, name[i] ? "..." : "");
    return out;
}

/* A relative name of components 1..255 bytes long, none "." or "..", no control bytes,
 * at most TB_ARCHIVE_NAME_MAX bytes; a directory's may end in one '/'. Anything else is
 * not what our writer makes, and may not be restorable (ENAMETOOLONG) or safe. */
static const char *bad_name(const char *name, int is_dir)
{
    size_t len = strlen(name);
    const char *p = name;
    if (len == 0)
        return "empty member name";
    if (len > TB_ARCHIVE_NAME_MAX)
        return "member name too long";
    if (name[0] == '/')
        return "unsafe member name (absolute)";
    if (name[len - 1] == '/' && !is_dir)
        return "file member name ends in '/'";
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "control character in member name";
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0)
            return "empty component in member name";
        if (n > 255)
            return "member name component too long";
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return "unsafe member name (\".\" or \"..\")";
        if (!slash)
            break;
        p = slash + 1;
    }
    return NULL;
}

/* At the end of the archive: libarchive stops at the first end-of-archive block, so the
 * rest is checked here. E is where the last member's data (padded) ended; what follows it
 * must be two zero blocks, then nothing but zero padding (at most TB_ARCHIVE_PAD_MAX). */
static int check_end(struct tb_tar_reader *r, uint64_t e)
{
    uint64_t p = (uint64_t)archive_filter_bytes(r->a, 0), marker = p - e, pad = 0;
    uint64_t chunk = r->given - r->last; /* where buf's bytes start */
    const char *where = r->src->name;
    int rc;
    if (p < e || (marker != 0 && marker != 512 && marker != 1024))
        return tb_error_set(TB_EVERIFY, "damaged end of tar archive (%s)", where);
    if (p < chunk - r->ntail)
        return tb_error_set(TB_EIO, "cannot check the end of the tar archive (%s)", where);
    for (uint64_t i = p; i < r->given; i++) {
        unsigned char b = i >= chunk ? (unsigned char)r->buf[i - chunk] : r->tail[r->ntail - (chunk - i)];
        if (b)
            return tb_error_set(TB_EVERIFY, "data after the end of the tar archive (%s)", where);
    }
    pad = r->given - p;
    while (!r->src_eof) {
        size_t n;
        if ((rc = tb_stream_read(r->src, r->buf, IO_BUF, &n)) < 0)
            return rc;
        r->src_eof = n == 0;
        for (size_t i = 0; i < n; i++)
            if (r->buf[i])
                return tb_error_set(TB_EVERIFY, "data after the end of the tar archive (%s)", where);
        pad += n;
        if (pad > TB_ARCHIVE_PAD_MAX)
            return tb_error_set(TB_EVERIFY, "more than %d bytes of padding after the end of the tar archive (%s)",
                                TB_ARCHIVE_PAD_MAX, where);
    }
    r->last = 0;
    if (marker + pad < 1024)
        return tb_error_set(TB_EVERIFY, "tar archive lacks its end-of-archive blocks: truncated (%s)", where);
    return 0;
}

int tb_tar_next(tb_tar_reader *r, struct tb_tar_entry *out)
{
    struct archive_entry *e;
    char nm[80];
    const char *why;
    uint64_t end;
    mode_t type;
    int ret;
    if (r->in_entry && archive_read_data_skip(r->a) != ARCHIVE_OK)
        return r_fail(r, "damaged tar stream");
    r->in_entry = 0;
    end = (uint64_t)archive_filter_bytes(r->a, 0);
    ret = archive_read_next_header(r->a, &e);
    if (ret == ARCHIVE_EOF)
        return check_end(r, end);
    if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN)
        return r_fail(r, "damaged tar stream");
    out->name = archive_entry_pathname(e);
    type = archive_entry_filetype(e);
    if (!out->name)
        return tb_error_set(TB_EVERIFY, "member without a name (%s)", r->src->name);
    if ((why = bad_name(out->name, type == AE_IFDIR)))
        return tb_error_set(TB_EVERIFY, "%s: '%s' (%s)", why, shown(out->name, nm), r->src->name);
    if (archive_entry_hardlink(e) || archive_entry_symlink(e) || (type != AE_IFREG && type != AE_IFDIR))
        return tb_error_set(TB_EVERIFY, "unexpected member type for '%s' (%s)", shown(out->name, nm), r->src->name);
    /* A sparse member's data is shorter than its size: extracted, its holes become bytes
     * the stream never held (a 2 KiB stream declaring 10 GB). Our writer makes none. */
    if (archive_entry_sparse_count(e) > 0)
        return tb_error_set(TB_EVERIFY, "sparse member '%s' refused (%s)", shown(out->name, nm), r->src->name);
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 || (type == AE_IFDIR && archive_entry_size(e) != 0))
        return tb_error_set(TB_EVERIFY, "member '%s' has no valid size (%s)", shown(out->name, nm), r->src->name);
    out->is_dir = type == AE_IFDIR;
    out->size = (uint64_t)archive_entry_size(e);
    out->mode = archive_entry_mode(e) & 07777;
    out->uid = (uid_t)archive_entry_uid(e);
    out->gid = (gid_t)archive_entry_gid(e);
    out->mtime = archive_entry_mtime(e);
    r->in_entry = 1;
    r->size = out->size;
    r->done = 0;
    r->blk = NULL;
    r->blkleft = 0;
    shown(out->name, r->name);
    return 1;
}

/* Data comes block by block so that a hole (an offset past what was returned) or a byte
 * past the stated size is refused instead of written: a member yields exactly its size,
 * every byte of it read from the stream. */
int tb_tar_read(tb_tar_reader *r, void *buf, size_t len, size_t *n)
{
    size_t k;
    *n = 0;
    if (!r->in_entry)
        return 0;
    while (r->blkleft == 0) {
        const void *p;
        size_t sz;
        la_int64_t off;
        int ret = archive_read_data_block(r->a, &p, &sz, &off);
        if (ret == ARCHIVE_EOF) {
            if (r->done != r->size)
                return tb_error_set(TB_EVERIFY, "member '%s' ends after %" PRIu64 " of its %" PRIu64 " bytes (%s)",
                                    r->name, r->done, r->size, r->src->name);
            return 0;
        }
        if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN)
            return r_fail(r, "damaged tar member");
        if (off < 0 || (uint64_t)off != r->done)
            return tb_error_set(TB_EVERIFY, "member '%s' has a hole at byte %" PRIu64 " (sparse data refused) (%s)",
                                r->name, r->done, r->src->name);
        if (sz > r->size - r->done)
            return tb_error_set(TB_EVERIFY, "member '%s' holds more than its stated %" PRIu64 " bytes (%s)", r->name,
                                r->size, r->src->name);
        r->blk = p;
        r->blkleft = sz;
    }
    k = len < r->blkleft ? len : r->blkleft;
    memcpy(buf, r->blk, k);
    r->blk += k;
    r->blkleft -= k;
    r->done += k;
    *n = k;
    return 0;
}

struct entry_stream {
    tb_stream s;
    tb_tar_reader *r;
};

static int entry_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    return tb_tar_read(((struct entry_stream *)s)->r, buf, len, n);
}

static void entry_free(tb_stream *s)
{
    free(s);
}

static const struct tb_stream_ops entry_ops = { entry_read, NULL, NULL, entry_free };

int tb_tar_entry_stream(tb_tar_reader *r, tb_stream **out)
{
    struct entry_stream *s = tb_stream_alloc(sizeof *s, &entry_ops, NULL, r->src->name);
    if (!s)
        return TB_EIO;
    s->r = r;
    *out = &s->s;
    return 0;
}

void tb_tar_reader_free(tb_tar_reader *r)
{
    if (!r)
        return;
    archive_read_free(r->a);
    tb_stream_free(r->src);
    free(r);
}
