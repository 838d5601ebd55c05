/* segment: WAL archive segments (zstd frames of CRC'd records), index.tsv, recovery of the
 * partial segment after a crash. */
#include "segment.h"
#include "bytes.h"
#include "tsv.h"
#include "crc32c.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#define SEG_MAGIC "TWSEG001"
#define REC_MAGIC 0x31525754u /* "TWR1" little-endian */
enum { REC_HDR = 56 };

static void encode_header(unsigned char h[REC_HDR], const struct tb_seg_record *r)
{
    uint32_t crc;
    tb_put_le32(h, REC_MAGIC);
    tb_put_le32(h + 4, (uint32_t)r->len);
    tb_put_le64(h + 8, r->first_seq);
    tb_put_le64(h + 16, r->next_seq);
    tb_put_le64(h + 24, (uint64_t)r->ts_ns);
    tb_put_le32(h + 32, r->flags);
    tb_put_le64(h + 36, r->log_number);
    tb_put_le64(h + 44, r->end_offset);
    crc = tb_crc32c(0, h, 52);
    crc = tb_crc32c(crc, r->data, r->len);
    tb_put_le32(h + 52, crc);
}

/* Checks and decodes a header whose record data follows; 0 ok, TB_EVERIFY on damage. */
static int decode_record(const unsigned char *h, const unsigned char *data, struct tb_seg_record *r)
{
    uint32_t crc = tb_crc32c(tb_crc32c(0, h, 52), data, tb_get_le32(h + 4));
    if (tb_get_le32(h) != REC_MAGIC || crc != tb_get_le32(h + 52))
        return TB_EVERIFY;
    r->len = tb_get_le32(h + 4);
    r->first_seq = tb_get_le64(h + 8);
    r->next_seq = tb_get_le64(h + 16);
    r->ts_ns = (int64_t)tb_get_le64(h + 24);
    r->flags = tb_get_le32(h + 32);
    r->log_number = tb_get_le64(h + 36);
    r->end_offset = tb_get_le64(h + 44);
    r->data = data;
    return 0;
}

/* ---- writer -------------------------------------------------------------- */

struct tb_seg_writer {
    char *dir, *partial;
    tb_keyring *keys; /* published segments are sealed for these (NULL: plain) */
    int level;
    int fd; /* the partial segment, owned by the stack below */
    tb_stream *z; /* zstd writer -> counter -> fd: the records go in at the top */
    tb_stream *counted; /* the counter: compressed bytes written since the file was opened */
    uint64_t first_seq, next_seq, count, bytes; /* bytes: the file's size when it was opened */
    int64_t first_ts, last_ts;
    struct tb_seg_record last;
    int in_frame;
};

struct tb_seg_reader {
    tb_stream *s;
    char *path, *whole; /* whole: the partial segment's bytes, read at once */
    unsigned char *buf;
    size_t cap;
    uint64_t n;
};

/* A published segment's name: FIRST-NEXT.wal.zst with 20-digit numbers (seg_name parses it). */
static void seg_format_name(char name[64], uint64_t first, uint64_t next)
{
    snprintf(name, 64, "%020" PRIu64 "-%020" PRIu64 ".wal.zst", first, next);
}

static void note_record(tb_seg_writer *w, const struct tb_seg_record *r)
{
    if (w->count++ == 0) {
        w->first_seq = r->first_seq;
        w->first_ts = r->ts_ns;
    }
    w->next_seq = r->next_seq;
    w->last_ts = r->ts_ns;
    w->last = *r;
    w->last.data = NULL;
    w->last.len = 0;
}

/* Notes the records of one whole zstd frame of the partial segment (len bytes at buf; the
 * first frame starts with the magic). 0 when every record verifies to the frame's end. */
static int recover_frame(tb_seg_writer *w, const char *buf, size_t len, int first)
{
    struct tb_seg_reader rd = { .path = w->partial };
    struct tb_seg_record r;
    tb_stream *m = NULL;
    unsigned char magic[8];
    size_t n;
    int rc = tb_stream_mem_reader(&m, buf, len);
    if (rc == 0 && (rc = tb_stream_zstd_reader(&rd.s, m)) < 0)
        tb_stream_free(m);
    if (rc == 0 && first &&
        ((rc = tb_stream_read_full(rd.s, magic, 8, &n)) < 0 || n != 8 || memcmp(magic, SEG_MAGIC, 8) != 0))
        rc = TB_EVERIFY;
    while (rc == 0 && (rc = tb_seg_reader_next(&rd, &r)) == 1) {
        note_record(w, &r);
        rc = 0;
    }
    tb_stream_free(rd.s);
    free(rd.buf);
    return rc;
}

/* Walks the partial file frame by frame; keeps what verifies, cuts the rest. */
static int recover_partial(tb_seg_writer *w)
{
    char *buf = NULL;
    size_t len = 0, good = 0;
    int rc = tb_fs_read_file(w->partial, &buf, &len);
    if (rc == TB_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    while (good < len) {
        size_t fl = ZSTD_findFrameCompressedSize(buf + good, len - good);
        struct tb_seg_writer saved = *w;
        if (ZSTD_isError(fl))
            break;
        if (recover_frame(w, buf + good, fl, good == 0) < 0) {
            *w = saved; /* the frame is dropped whole */
            break;
        }
        good += fl;
    }
    free(buf);
    if (good < len && truncate(w->partial, (off_t)good) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot cut the torn tail of %s", w->partial);
    w->bytes = good;
    return 0;
}

/* Opens the partial segment (of size bytes) for appending under a new zstd writer; what the
 * old writer held of an unfinished frame is dropped. */
static int partial_open(tb_seg_writer *w, uint64_t size)
{
    tb_stream *f = NULL, *c = NULL;
    int rc;
    tb_stream_free(w->z);
    w->z = w->counted = NULL;
    w->bytes = size;
    w->in_frame = 0;
    w->fd = open(w->partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return tb_error_errno(TB_EIO, errno, "cannot open %s", w->partial);
    if ((rc = tb_stream_fd(&f, w->fd, 1, w->partial)) < 0) {
        close(w->fd);
        return rc;
    }
    if ((rc = tb_stream_counter(&c, f, NULL, NULL)) < 0 || (rc = tb_stream_zstd_writer(&w->z, c, w->level, 0)) < 0) {
        tb_stream_free(c ? c : f);
        return rc;
    }
    w->counted = c;
    return 0;
}

/* Empties the partial segment in place, durably. */
static int partial_truncate(tb_seg_writer *w)
{
    if (ftruncate(w->fd, 0) < 0 || fsync(w->fd) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot empty %s", w->partial);
    return 0;
}

/* Empties the partial segment and starts it again: its records are dropped or published. */
static int partial_empty(tb_seg_writer *w)
{
    int rc = partial_truncate(w);
    if (rc < 0)
        return rc;
    w->count = 0;
    return partial_open(w, 0);
}

int tb_seg_writer_open(tb_seg_writer **out, const char *dir, int level, tb_keyring *keys)
{
    tb_seg_writer *w = calloc(1, sizeof *w);
    int rc = 0;
    if (!w)
        return tb_error_set(TB_EIO, "out of memory");
    w->fd = -1;
    w->keys = keys;
    w->level = level;
    w->dir = strdup(dir);
    w->partial = tb_fs_join(dir, TB_SEG_PARTIAL);
    if (!w->dir || !w->partial) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = tb_fs_mkdir_p(dir, 0755)) < 0 || (rc = recover_partial(w)) < 0 || (rc = partial_open(w, w->bytes)) < 0)
        goto cleanup;
    *out = w;
    w = NULL;
cleanup:
    tb_seg_writer_free(w);
    return rc;
}

uint64_t tb_seg_writer_count(tb_seg_writer *w)
{
    return w->count;
}
const struct tb_seg_record *tb_seg_writer_last(tb_seg_writer *w)
{
    return &w->last;
}
uint64_t tb_seg_writer_bytes(tb_seg_writer *w)
{
    return w->bytes + (w->counted ? tb_stream_counter_bytes(w->counted) : 0);
}
int64_t tb_seg_writer_first_ts(tb_seg_writer *w)
{
    return w->count ? w->first_ts : 0;
}

int tb_seg_writer_append(tb_seg_writer *w, const struct tb_seg_record *r)
{
    unsigned char h[REC_HDR];
    int rc;
    if (!w->z)
        return tb_error_set(TB_EIO, "cannot open %s", w->partial); /* a rotation failed to open it again */
    if (tb_seg_writer_bytes(w) == 0 && !w->in_frame && (rc = tb_stream_write(w->z, SEG_MAGIC, 8)) < 0)
        return rc;
    w->in_frame = 1;
    encode_header(h, r);
    if ((rc = tb_stream_write(w->z, h, REC_HDR)) < 0 || (rc = tb_stream_write(w->z, r->data, r->len)) < 0)
        return rc;
    note_record(w, r);
    return 0;
}

int tb_seg_writer_flush(tb_seg_writer *w)
{
    int rc;
    if (!w->in_frame)
        return 0;
    if ((rc = tb_stream_zstd_end_frame(w->z)) < 0)
        return rc;
    w->in_frame = 0;
    if (fdatasync(w->fd) < 0)
        return tb_error_errno(TB_EIO, errno, "fsync failed (%s)", w->partial);
    return 0;
}

int tb_seg_writer_discard(tb_seg_writer *w)
{
    return partial_empty(w);
}

char *tb_seg_index_line(const struct tb_seg_info *s)
{
    char *line = NULL;
    if (asprintf(&line, "%020" PRIu64 "\t%020" PRIu64 "\t%" PRId64 "\t%" PRId64 "\t%" PRIu64 "\t%s\t%s\n", s->first_seq,
                 s->next_seq, s->first_ts, s->last_ts, s->size, s->sha256, s->name) < 0)
        return NULL;
    return line;
}

/* index.tsv is rewritten by read-modify-write (the archiver appends, themis-expire cuts a
 * prefix): a short lock around each rewrite keeps either from losing the other's change. */
static int index_lock(const char *dir)
{
    char *path = tb_fs_join(dir, ".index.lock");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    free(path);
    if (fd < 0)
        return tb_error_errno(TB_EIO, errno, "cannot create the index lock in %s", dir);
    if (flock(fd, LOCK_EX) < 0) {
        close(fd);
        return tb_error_errno(TB_EIO, errno, "cannot lock the index in %s", dir);
    }
    return fd;
}

#define INDEX_HEADER "# first_seq\tnext_seq\tfirst_ts_ns\tlast_ts_ns\tsize\tsha256\tname\n"

static int index_append(const char *dir, const struct tb_seg_info *s)
{
    char *path = tb_fs_join(dir, TB_SEG_INDEX), *old = NULL, *buf = NULL, *line = tb_seg_index_line(s);
    size_t len = 0;
    int rc, lock;
    if (!path || !line) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((lock = index_lock(dir)) < 0) {
        rc = lock;
        goto cleanup;
    }
    rc = tb_fs_read_file(path, &old, &len);
    if (rc == TB_ENOENT) {
        rc = 0;
        old = strdup(INDEX_HEADER);
    }
    if (rc == 0 && asprintf(&buf, "%s%s", old ? old : "", line) < 0) {
        buf = NULL;
        rc = tb_error_set(TB_EIO, "out of memory");
    }
    if (rc == 0)
        rc = tb_fs_write_atomic(path, buf, strlen(buf), 0644);
    close(lock);
cleanup:
    free(path);
    free(old);
    free(buf);
    free(line);
    return rc;
}

/* Seals the partial segment into a hidden temporary beside final, fsynced; *tmp names it. */
static int seal_partial(tb_seg_writer *w, const char *final, char **tmp)
{
    tb_stream *in = NULL, *c = NULL;
    int rc = tb_fs_temp_sibling(final, tmp);
    if (rc == 0)
        rc = tb_stream_file(&in, w->partial, "r");
    if (rc == 0 && (rc = tb_crypt_file_writer(&c, *tmp, w->keys)) == 0 && (rc = tb_stream_copy(c, in, NULL)) == 0)
        rc = tb_stream_close(c);
    tb_stream_free(c);
    tb_stream_free(in);
    if (rc < 0 && *tmp)
        unlink(*tmp);
    return rc;
}

int tb_seg_writer_settle(tb_seg_writer *w)
{
    char name[64];
    if (w->count == 0)
        return 0;
    seg_format_name(name, w->first_seq, w->next_seq);
    if (!tb_fs_exists_in(w->dir, name))
        return 0;
    /* Sealed and published, then the run stopped before emptying the partial segment. */
    return partial_empty(w);
}

int tb_seg_writer_rotate(tb_seg_writer *w, struct tb_seg_info *info)
{
    struct tb_seg_info s = { 0 };
    char *final = NULL, *sealed = NULL;
    int rc;
    if ((rc = tb_seg_writer_flush(w)) < 0)
        return rc;
    if (w->count == 0)
        return 0;
    s.first_seq = w->first_seq;
    s.next_seq = w->next_seq;
    s.first_ts = w->first_ts;
    s.last_ts = w->last_ts;
    seg_format_name(s.name, s.first_seq, s.next_seq);
    if (!(final = tb_fs_join(w->dir, s.name)))
        return tb_error_set(TB_EIO, "out of memory");
    /* Encrypted: the sealed copy is published, then the partial segment emptied (a crash
     * between: tb_seg_writer_settle empties it at the next start). */
    if (w->keys && (rc = seal_partial(w, final, &sealed)) < 0)
        goto cleanup;
    if ((rc = tb_stream_file_sha256(sealed ? sealed : w->partial, s.sha256, &s.size)) < 0)
        goto cleanup;
    /* Rename first, then index: a crash between leaves a segment the index lacks, which
     * tb_seg_index_load adopts (reading it through) and the next archiver writes back. */
    rc = tb_fs_publish(sealed ? sealed : w->partial, final);
    if (rc == 0 && sealed)
        rc = partial_truncate(w);
    if (rc == 0)
        rc = index_append(w->dir, &s);
    if (rc == 0) {
        w->count = 0;
        rc = partial_open(w, 0);
    }
    if (rc == 0 && info)
        *info = s;
cleanup:
    if (rc < 0 && sealed)
        unlink(sealed);
    TB_FREE_ALL(sealed, final);
    return rc;
}

void tb_seg_writer_free(tb_seg_writer *w)
{
    if (!w)
        return;
    tb_stream_free(w->z);
    TB_FREE_ALL(w->dir, w->partial, w);
}

/* ---- reader -------------------------------------------------------------- */

static int is_partial(const char *path)
{
    const char *slash = strrchr(path, '/');
    return strcmp(slash ? slash + 1 : path, TB_SEG_PARTIAL) == 0;
}

/* A segment file's bytes: a published one's read as they are needed; the partial one's (the
 * archiver may be writing it, or was killed mid-frame) read at once into *whole and cut to its
 * complete frames (the archiver cuts the rest when it next starts). */
static int segment_bytes(tb_stream **out, const char *path, char **whole)
{
    size_t len = 0, good = 0, fl;
    int rc;
    if (!is_partial(path))
        return tb_stream_file(out, path, "r");
    if ((rc = tb_fs_read_file(path, whole, &len)) < 0)
        return rc;
    while (good < len && !ZSTD_isError(fl = ZSTD_findFrameCompressedSize(*whole + good, len - good)))
        good += fl;
    return tb_stream_mem_reader(out, *whole, good);
}

/* The records' bytes from the segment's bytes f (owned; freed on failure): counted for
 * progress (may be NULL), opened with keys when sealed (an encrypted archive's segment is
 * recognised by its first bytes), decompressed. */
static int segment_decoder(tb_stream **out, tb_stream *f, tb_keyring *keys, tb_progress_cb progress, void *progress_arg)
{
    tb_stream *p = NULL;
    unsigned char magic[8];
    size_t n = 0;
    int rc = progress ? tb_stream_counter(&p, f, progress, progress_arg) : 0;
    if (rc == 0 && progress)
        f = p;
    if (rc == 0 && (rc = tb_stream_peek(&p, f, magic, 8, &n)) == 0)
        f = p;
    if (rc == 0 && tb_crypt_is_encrypted(magic, n) && (rc = tb_crypt_reader(&p, f, keys)) == 0)
        f = p;
    if (rc == 0)
        rc = tb_stream_zstd_reader(out, f);
    if (rc < 0)
        tb_stream_free(f);
    return rc;
}

/* progress (may be NULL) counts the compressed bytes read from the file. */
static int reader_open(tb_seg_reader **out, const char *path, tb_keyring *keys, tb_progress_cb progress,
                       void *progress_arg)
{
    tb_seg_reader *rd = calloc(1, sizeof *rd);
    tb_stream *f = NULL;
    unsigned char magic[8];
    size_t n;
    struct stat st;
    int rc;
    if (!rd || !(rd->path = strdup(path))) {
        free(rd);
        return tb_error_set(TB_EIO, "out of memory");
    }
    if (stat(path, &st) == 0 && st.st_size == 0) {
        *out = rd; /* an empty partial segment: no records */
        return 0;
    }
    if ((rc = segment_bytes(&f, path, &rd->whole)) < 0 ||
        (rc = segment_decoder(&rd->s, f, keys, progress, progress_arg)) < 0)
        goto fail;
    rc = tb_stream_read_full(rd->s, magic, 8, &n);
    if (rc == 0 && n == 0) {
        *out = rd; /* an empty partial segment */
        return 0;
    }
    if (rc < 0 || n != 8 || memcmp(magic, SEG_MAGIC, 8) != 0) {
        rc = rc < 0 ? rc : tb_error_set(TB_EVERIFY, "not a WAL archive segment (%s)", path);
        goto fail;
    }
    *out = rd;
    return 0;
fail:
    tb_seg_reader_free(rd);
    return rc;
}

int tb_seg_reader_open(tb_seg_reader **out, const char *path, tb_keyring *keys)
{
    return reader_open(out, path, keys, NULL, NULL);
}

/* How much more of a record the reader's buffer takes at a time, at least. */
#define SEG_READ_STEP ((size_t)1 << 20)

int tb_seg_reader_next(tb_seg_reader *rd, struct tb_seg_record *r)
{
    unsigned char h[REC_HDR];
    size_t n, got;
    uint32_t len;
    int rc;
    if (!rd->s)
        return 0;
    if ((rc = tb_stream_read_full(rd->s, h, REC_HDR, &n)) < 0)
        return tb_error_wrap(TB_EVERIFY, "segment %s, record %" PRIu64, rd->path, rd->n);
    if (n == 0)
        return 0;
    if (n != REC_HDR || tb_get_le32(h) != REC_MAGIC)
        return tb_error_set(TB_EVERIFY, "damaged record %" PRIu64 " in %s", rd->n, rd->path);
    len = tb_get_le32(h + 4);
    /* The length is not trusted before the CRC: the buffer grows with the bytes that come,
     * so a damaged length (up to 4 GiB) is a short record, not a 4 GiB allocation. */
    for (got = 0, n = 1; got < len && n;) {
        size_t step;
        if (got == rd->cap) {
            size_t cap = rd->cap < SEG_READ_STEP ? SEG_READ_STEP : rd->cap * 2;
            unsigned char *p = realloc(rd->buf, cap < len ? cap : len);
            if (!p)
                return tb_error_set(TB_EIO, "out of memory");
            rd->buf = p;
            rd->cap = cap < len ? cap : len;
        }
        step = (len - got < rd->cap - got) ? len - got : rd->cap - got;
        if ((rc = tb_stream_read_full(rd->s, rd->buf + got, step, &n)) < 0)
            return tb_error_wrap(TB_EVERIFY, "segment %s, record %" PRIu64, rd->path, rd->n);
        got += n;
    }
    if (got != len || decode_record(h, rd->buf, r) < 0)
        return tb_error_set(TB_EVERIFY, "CRC mismatch in record %" PRIu64 " of %s", rd->n, rd->path);
    rd->n++;
    return 1;
}

void tb_seg_reader_free(tb_seg_reader *rd)
{
    if (!rd)
        return;
    tb_stream_free(rd->s);
    TB_FREE_ALL(rd->buf, rd->whole, rd->path, rd);
}

/* ---- index --------------------------------------------------------------- */

/* 20 decimal digits that fit: one sequence number of a segment's name. */
static int seg_number(const char *s, uint64_t *v)
{
    char digits[21];
    memcpy(digits, s, 20);
    digits[20] = '\0';
    return tb_tsv_u64(digits, v);
}

/* FIRST-NEXT.wal.zst with 20-digit numbers, FIRST <= NEXT: the name of a published segment. */
static int seg_name(const char *name, uint64_t *first, uint64_t *next)
{
    return strlen(name) == 49 && name[20] == '-' && strcmp(name + 41, ".wal.zst") == 0 && seg_number(name, first) &&
        seg_number(name + 21, next) && *first <= *next;
}

/* Describes a segment the index does not list by reading it through: every record's CRC,
 * and its first and next sequence against its name. */
static int describe_segment(const char *dir, const char *name, tb_keyring *keys, struct tb_seg_info *s)
{
    char *path = tb_fs_join(dir, name);
    tb_seg_reader *rd = NULL;
    struct tb_seg_record r;
    uint64_t count = 0, first, next;
    int rc, m = 0;
    memset(s, 0, sizeof *s);
    if (!path)
        return tb_error_set(TB_EIO, "out of memory");
    seg_name(name, &first, &next); /* the caller checked it: 49 characters */
    memcpy(s->name, name, strlen(name) + 1);
    rc = tb_stream_file_sha256(path, s->sha256, &s->size);
    if (rc == 0)
        rc = tb_seg_reader_open(&rd, path, keys);
    while (rc == 0 && (m = tb_seg_reader_next(rd, &r)) == 1) {
        if (count++ == 0) {
            s->first_seq = r.first_seq;
            s->first_ts = r.ts_ns;
        }
        s->next_seq = r.next_seq;
        s->last_ts = r.ts_ns;
    }
    if (rc == 0 && m < 0)
        rc = m;
    if (rc == 0 && (count == 0 || s->first_seq != first || s->next_seq != next))
        rc = tb_error_set(TB_EVERIFY, "segment %s is not in the index and its records do not match its name", name);
    tb_seg_reader_free(rd);
    free(path);
    return rc;
}

size_t tb_seg_index_find(const struct tb_seg_info *v, size_t n, uint64_t first, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].first_seq < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && v[lo].first_seq == first; lo++)
        if (strcmp(v[lo].name, name) == 0)
            return lo;
    return n;
}

struct unindexed {
    uint64_t first, next;
    char name[64];
};

static int cmp_unindexed(const void *a, const void *b)
{
    const struct unindexed *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->next < y->next ? -1 : x->next > y->next;
}

/* Adds to v the published segments of dir that the index lacks and that continue it (an
 * archiver killed between publishing a segment and indexing it), in sequence order.
 * Only a chain from where the index ends (when it lists none: from its "# from", else from
 * the lowest; a segment below "# from" is one expiry removed from the index) is
 * taken: a segment file that does not continue it is not this archive's (another archive's
 * left in the same directory, as a sync of two archives' objects can) and is ignored. */
static int adopt_unindexed(const char *dir, tb_keyring *keys, struct tb_seg_info **v, size_t *n, uint64_t from,
                           size_t *adopted)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    const size_t indexed = *n; /* v[0..indexed) is the index, in sequence order */
    struct unindexed *c = NULL;
    size_t nc = 0, cap = 0;
    int rc = 0;
    *adopted = 0;
    if (!d)
        return errno == ENOENT ? 0 : tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        uint64_t first, next;
        if (!seg_name(e->d_name, &first, &next) || tb_seg_index_find(*v, indexed, first, e->d_name) < indexed)
            continue;
        if (nc == cap) {
            struct unindexed *q = realloc(c, (cap = cap ? 2 * cap : 8) * sizeof *q);
            if (!q) {
                rc = tb_error_set(TB_EIO, "out of memory");
                break;
            }
            c = q;
        }
        c[nc].first = first;
        c[nc].next = next;
        snprintf(c[nc].name, sizeof c[nc].name, "%.63s", e->d_name); /* 49 characters (seg_name) */
        nc++;
    }
    closedir(d);
    if (rc == 0 && nc) {
        uint64_t end;
        qsort(c, nc, sizeof *c, cmp_unindexed);
        end = indexed ? (*v)[indexed - 1].next_seq : from ? from : c[0].first;
        for (size_t i = 0; rc == 0 && i < nc; i++) {
            struct tb_seg_info *p;
            if (c[i].first != end)
                continue;
            if (!(p = realloc(*v, (*n + 1) * sizeof *p))) {
                rc = tb_error_set(TB_EIO, "out of memory");
                break;
            }
            *v = p;
            if ((rc = describe_segment(dir, c[i].name, keys, &p[*n])) == 0) {
                (*n)++;
                (*adopted)++;
                end = c[i].next;
            }
        }
    }
    free(c); /* what was adopted continues the index in order: v stays sorted */
    return rc;
}

/* 64 lowercase hex digits. */
static int is_sha256(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

/* One segment line of the index into *s (seven fields, docs/wal-format.md). */
static int index_entry(struct tb_tsv *t, char *line, struct tb_seg_info *s)
{
    char *f[7];
    uint64_t first, next;
    int nf = tb_tsv_split(line, f, 7);
    memset(s, 0, sizeof *s);
    if (nf != 7)
        return tb_tsv_error(t, "%d fields, not 7", nf > 7 ? 8 : nf);
    if (!tb_tsv_u64(f[0], &s->first_seq) || !tb_tsv_u64(f[1], &s->next_seq))
        return tb_tsv_error(t, "a sequence number that is not a number: '%.40s' '%.40s'", f[0], f[1]);
    if (!tb_tsv_i64(f[2], &s->first_ts) || !tb_tsv_i64(f[3], &s->last_ts))
        return tb_tsv_error(t, "a time stamp that is not a number: '%.40s' '%.40s'", f[2], f[3]);
    if (!tb_tsv_u64(f[4], &s->size))
        return tb_tsv_error(t, "a size that is not a number: '%.40s'", f[4]);
    if (!is_sha256(f[5]))
        return tb_tsv_error(t, "a SHA-256 that is not 64 lowercase hex digits: '%.80s'", f[5]);
    if (!seg_name(f[6], &first, &next))
        return tb_tsv_error(t, "'%.80s' is not a segment's name (FIRST-NEXT.wal.zst, 20 digits each)", f[6]);
    if (first != s->first_seq || next != s->next_seq)
        return tb_tsv_error(t, "sequences %" PRIu64 "..%" PRIu64 " are not those of its segment's name %s",
                            s->first_seq, s->next_seq, f[6]);
    memcpy(s->sha256, f[5], 65);
    memcpy(s->name, f[6], 50);
    return 0;
}

/* Where s may stand after the k segments v already parsed (lines: their line numbers) and the
 * "# from" sequence from (line from_line). A line may start after the one before ends:
 * sequences between that went to no record (the segment's first record is marked RESYNC,
 * which --check and replay verify: a jump without it is a gap, exit 4). A segment of
 * Prepares alone takes no sequence: FIRST-FIRST, before the segment that starts at FIRST too. */
static int index_order(struct tb_tsv *t, const struct tb_seg_info *s, const struct tb_seg_info *v, const int *lines,
                       size_t k, uint64_t from, int from_line)
{
    size_t dup;
    if (k && (dup = tb_seg_index_find(v, k, s->first_seq, s->name)) < k)
        return tb_tsv_error(t, "segment %s repeats line %d", s->name, lines[dup]);
    if (k && s->first_seq < v[k - 1].next_seq)
        return tb_tsv_error(t,
                            "segment %s starts at %" PRIu64 ", before line %d's segment ends (%" PRIu64
                            "): lines out of order or overlapping",
                            s->name, s->first_seq, lines[k - 1], v[k - 1].next_seq);
    if (!k && s->first_seq < from)
        return tb_tsv_error(t,
                            "segment %s starts at %" PRIu64 ", before the archive's start (line %d: from %" PRIu64 ")",
                            s->name, s->first_seq, from_line, from);
    return 0;
}

/* A "# from" line (line): the first, and only before the segments (k of them so far). */
static int index_from(struct tb_tsv *t, const char *line, size_t k, int *from_line, uint64_t *from)
{
    if (*from_line || k)
        return tb_tsv_error(t, "a '# from' line %s", *from_line ? "again" : "after the segments");
    if (!tb_tsv_u64(line + strlen(TB_SEG_INDEX_FROM), from))
        return tb_tsv_error(t, "'# from' with no sequence number: '%.60s'", line);
    *from_line = t->lineno;
    return 0;
}

/* Room for one more segment (and its line number) in v and lines, of *cap entries. */
static int index_grow(struct tb_seg_info **v, int **lines, size_t k, size_t *cap)
{
    struct tb_seg_info *p;
    int *q;
    if (k < *cap)
        return 0;
    *cap = *cap ? *cap * 2 : 64;
    if ((p = realloc(*v, *cap * sizeof *p)) != NULL)
        *v = p;
    if (!p || !(q = realloc(*lines, *cap * sizeof *q)))
        return tb_error_set(TB_EIO, "out of memory");
    *lines = q;
    return 0;
}

int tb_seg_index_parse(char *text, size_t len, const char *name, struct tb_seg_info **segs, size_t *n, uint64_t *from)
{
    struct tb_seg_info *v = NULL, s;
    struct tb_tsv t;
    size_t cap = 0;
    int *lines = NULL, from_line = 0, m = 0, rc = 0;
    char *line;
    *segs = NULL;
    *n = 0;
    *from = 0;
    tb_tsv_init(&t, text, len, name);
    while (rc == 0 && (m = tb_tsv_next(&t, &line)) == 1) {
        if (strncmp(line, TB_SEG_INDEX_FROM, strlen(TB_SEG_INDEX_FROM)) == 0)
            rc = index_from(&t, line, *n, &from_line, from);
        else if (line[0] != '#' && (rc = index_entry(&t, line, &s)) == 0 &&
                 (rc = index_order(&t, &s, v, lines, *n, *from, from_line)) == 0 &&
                 (rc = index_grow(&v, &lines, *n, &cap)) == 0) {
            lines[*n] = t.lineno;
            v[(*n)++] = s;
        }
    }
    if (rc == 0 && m < 0)
        rc = m;
    if (rc == 0) {
        *segs = v;
        v = NULL;
    } else {
        *n = 0;
        *from = 0;
    }
    free(lines);
    free(v);
    return rc;
}

/* index.tsv's segments and its "# from" (0: none, and when there is no index). */
static int index_read(const char *dir, struct tb_seg_info **segs, size_t *n, uint64_t *from)
{
    char *path = tb_fs_join(dir, TB_SEG_INDEX), *text = NULL;
    size_t len = 0;
    int rc;
    *segs = NULL;
    *n = 0;
    *from = 0;
    if (!path)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_fs_read_file(path, &text, &len);
    if (rc == 0)
        rc = tb_seg_index_parse(text, len, path, segs, n, from);
    else if (rc == TB_ENOENT)
        rc = 0;
    free(text);
    free(path);
    return rc;
}

int tb_seg_index_load(const char *dir, tb_keyring *keys, struct tb_seg_info **segs, size_t *n)
{
    size_t adopted;
    uint64_t from;
    int rc = index_read(dir, segs, n, &from);
    if (rc == 0 && (rc = adopt_unindexed(dir, keys, segs, n, from, &adopted)) < 0) {
        free(*segs);
        *segs = NULL;
        *n = 0;
    }
    return rc;
}

/* Writes index.tsv listing segs (the caller holds the index lock). */
/* from (0: none) is written as a "# from" line: where the archive begins after expiry,
 * which a push to S3 must not go below even when no segment is left to say so. */
static int index_write(const char *dir, const struct tb_seg_info *v, size_t n, uint64_t from)
{
    char *path = tb_fs_join(dir, TB_SEG_INDEX), *buf = NULL;
    size_t len = strlen(INDEX_HEADER), cap = len + 64 + n * 256 + 1;
    int rc = 0;
    if (!path || !(buf = malloc(cap))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    memcpy(buf, INDEX_HEADER, len);
    if (from)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRIu64 "\n", TB_SEG_INDEX_FROM, from);
    for (size_t i = 0; i < n; i++) {
        char *line = tb_seg_index_line(&v[i]);
        size_t k = line ? strlen(line) : 0;
        if (!line || len + k > cap) {
            free(line);
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        memcpy(buf + len, line, k);
        len += k;
        free(line);
    }
    rc = tb_fs_write_atomic(path, buf, len, 0644);
cleanup:
    free(path);
    free(buf);
    return rc;
}

int tb_seg_index_repair(const char *dir, tb_keyring *keys, size_t *adopted)
{
    struct tb_seg_info *v = NULL;
    size_t n = 0;
    uint64_t from = 0;
    int lock = index_lock(dir), rc = lock < 0 ? lock : index_read(dir, &v, &n, &from);
    *adopted = 0;
    if (rc == 0)
        rc = adopt_unindexed(dir, keys, &v, &n, from, adopted);
    if (rc == 0 && *adopted)
        rc = index_write(dir, v, n, from); /* keeping where expiry left the archive's start */
    if (lock >= 0)
        close(lock);
    free(v);
    return rc;
}

int tb_seg_index_drop_prefix(const char *dir, size_t k, struct tb_seg_info **dropped, size_t *ndropped)
{
    struct tb_seg_info *v = NULL;
    size_t n = 0;
    uint64_t from = 0;
    int lock = index_lock(dir), rc = lock < 0 ? lock : index_read(dir, &v, &n, &from);
    *dropped = NULL;
    *ndropped = 0;
    if (rc == 0 && k > n)
        k = n;
    if (rc == 0 && k)
        rc = index_write(dir, v + k, n - k, v[k - 1].next_seq);
    if (lock >= 0)
        close(lock);
    /* Only now the files: a crash in between leaves segments the index lacks, which the
     * next archiver adopts again (nothing lost), never an index naming missing files. */
    for (size_t i = 0; rc == 0 && i < k; i++) {
        char *path = tb_fs_join(dir, v[i].name);
        if (path && unlink(path) < 0 && errno != ENOENT)
            rc = tb_error_errno(TB_EIO, errno, "cannot remove %s", path);
        free(path);
    }
    if (rc == 0) {
        *dropped = v;
        *ndropped = k;
        v = NULL;
    }
    free(v);
    return rc;
}

/* The walk's progress: the segments done, plus the bytes read of the current one. */
struct walk_progress {
    tb_progress_cb cb;
    void *arg;
    uint64_t base;
};

static void walk_progress(void *arg, uint64_t bytes)
{
    struct walk_progress *w = arg;
    w->cb(w->arg, w->base + bytes);
}

int tb_seg_walk(const char *wal_dir, tb_keyring *keys, tb_seg_record_fn fn, void *arg)
{
    return tb_seg_walk_progress(wal_dir, keys, fn, arg, NULL, NULL, NULL);
}

int tb_seg_walk_progress(const char *wal_dir, tb_keyring *keys, tb_seg_record_fn fn, void *arg, tb_progress_cb progress,
                         void *progress_arg, uint64_t *total)
{
    struct tb_seg_info *segs = NULL;
    struct walk_progress wp = { progress, progress_arg, 0 };
    size_t n = 0;
    int rc = tb_seg_index_load(wal_dir, keys, &segs, &n);
    if (rc == 0 && total) {
        char *partial = tb_fs_join(wal_dir, TB_SEG_PARTIAL);
        struct stat st;
        *total = partial && stat(partial, &st) == 0 ? (uint64_t)st.st_size : 0;
        for (size_t i = 0; i < n; i++)
            *total += segs[i].size;
        free(partial);
    }
    for (size_t i = 0; rc == 0 && i <= n; i++) {
        char *path = tb_fs_join(wal_dir, i < n ? segs[i].name : TB_SEG_PARTIAL);
        tb_seg_reader *rd = NULL;
        struct tb_seg_record r;
        int m = 0;
        if (!path) {
            rc = tb_error_set(TB_EIO, "out of memory");
            break;
        }
        if (i < n) {
            char hex[65];
            uint64_t size;
            rc = tb_stream_file_sha256(path, hex, &size);
            if (rc == TB_ENOENT)
                rc = tb_error_set(TB_EVERIFY, "segment listed in the index is missing: %s", segs[i].name);
            else if (rc == 0 && (size != segs[i].size || strcmp(hex, segs[i].sha256)))
                rc = tb_error_set(TB_EVERIFY, "segment %s does not match the index (size or SHA-256)", segs[i].name);
        } else if (!tb_fs_exists(path)) {
            free(path);
            break;
        }
        if (rc == 0)
            rc = reader_open(&rd, path, keys, progress ? walk_progress : NULL, &wp);
        while (rc == 0 && (m = tb_seg_reader_next(rd, &r)) == 1)
            rc = fn(arg, path, &r);
        if (rc == 0 && m < 0)
            rc = m;
        tb_seg_reader_free(rd);
        free(path);
        if (i < n)
            wp.base += segs[i].size;
    }
    free(segs);
    return rc;
}
