/* log_reader: RocksDB's log format (db/log_format.h): 32 KiB blocks; each fragment has a
 * header [masked crc32c:4][length:2][type:1] (+[log number:4] for recyclable types); the CRC
 * covers type, log number and payload; a block's tail too short for a header is zeros. */
#include "log_reader.h"
#include "bytes.h"
#include "mapahead.h"
#include "crc32c.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    BLOCK = 32768,
    HDR = 7,
    RHDR = 11,
    T_ZERO = 0,
    T_FULL = 1,
    T_FIRST = 2,
    T_MIDDLE = 3,
    T_LAST = 4,
    T_RFULL = 5,
    T_RFIRST = 6,
    T_RMIDDLE = 7,
    T_RLAST = 8,
    T_SETCOMPRESSION = 9,
    CHUNK_BLOCKS = 64, /* 2 MiB reads */
};

struct tb_wal_reader {
    int fd;
    char *path;
    uint64_t log_number;
    unsigned char *buf; /* blocks [buf_off, buf_off + buf_len) of the file, read */
    const unsigned char *win; /* the same blocks where the reader looks: buf or the map */
    size_t map_limit; /* with tb_wal_reader_open_mapped: the file's size at open, which is mapped */
    const unsigned char *map; /* [0, map_limit) of the file, once mapped */
    tb_map_ahead *ahead;
    uint64_t buf_off;
    size_t buf_len;
    uint64_t pos; /* next fragment's file offset */
    uint64_t done; /* offset after the last record returned */
    uint64_t rec_start;
    unsigned char *rec; /* assembled record (reused) */
    size_t rec_len, rec_cap;
    int torn;
};

static int reader_new(tb_wal_reader **out, const char *path, uint64_t log_number, uint64_t offset)
{
    tb_wal_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path)) || !(r->buf = malloc((size_t)BLOCK * CHUNK_BLOCKS))) {
        if (r)
            free(r->path);
        free(r);
        return tb_error_set(TB_EIO, "out of memory");
    }
    r->fd = -1;
    r->log_number = log_number;
    r->pos = r->done = offset;
    *out = r;
    return 0;
}

int tb_wal_reader_open(tb_wal_reader **out, const char *path, uint64_t log_number, uint64_t offset)
{
    tb_wal_reader *r;
    int rc = reader_new(&r, path, log_number, offset);
    if (rc < 0)
        return rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        tb_wal_reader_free(r);
        return tb_error_errno(e == ENOENT ? TB_ENOENT : TB_EIO, e, "cannot open WAL file %s", path);
    }
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *out = r;
    return 0;
}

int tb_wal_reader_open_mapped(tb_wal_reader **out, const char *path, uint64_t log_number)
{
    struct stat st;
    int rc = tb_wal_reader_open(out, path, log_number, 0);
    if (rc == 0 && fstat((*out)->fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= SIZE_MAX)
        (*out)->map_limit = (size_t)st.st_size;
    return rc;
}

/* Maps the file (its size at open) when [off, off + len) lies in it; 0 when it cannot, and
 * the caller reads instead. */
static int map_window(tb_wal_reader *r, uint64_t off, size_t len)
{
    if (off + len > r->map_limit)
        return 0;
    if (!r->map && tb_map_ahead_open(&r->ahead, r->fd, r->map_limit, &r->map) < 0) {
        r->map_limit = 0; /* read from here on */
        return 0;
    }
    tb_map_ahead_at(r->ahead, off);
    return 1;
}

int tb_wal_reader_open_fd(tb_wal_reader **out, int fd, const char *path, uint64_t log_number, uint64_t offset)
{
    tb_wal_reader *r;
    int rc = reader_new(&r, path, log_number, offset);
    if (rc < 0)
        return rc;
    r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (r->fd < 0) {
        int e = errno;
        tb_wal_reader_free(r);
        return tb_error_errno(TB_EIO, e, "cannot duplicate the descriptor of %s", path);
    }
    *out = r;
    return 0;
}

void tb_wal_reader_free(tb_wal_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    tb_map_ahead_close(r->ahead);
    TB_FREE_ALL(r->buf, r->rec, r->path, r);
}

uint64_t tb_wal_reader_offset(tb_wal_reader *r)
{
    return r->done;
}
uint64_t tb_wal_reader_record_offset(tb_wal_reader *r)
{
    return r->rec_start;
}
int tb_wal_reader_torn(tb_wal_reader *r)
{
    return r->torn;
}

/* Makes [off, off + len) available in buf; returns how much of it the file has. */
static int fill(tb_wal_reader *r, uint64_t off, size_t len, size_t *have)
{
    if (map_window(r, off, len)) {
        r->win = r->map;
        r->buf_off = 0;
        r->buf_len = r->map_limit;
    } else if (off < r->buf_off || off + len > r->buf_off + r->buf_len || r->win != r->buf) {
        uint64_t start = off - off % BLOCK;
        size_t got = 0;
        while (got < (size_t)BLOCK * CHUNK_BLOCKS) {
            ssize_t n = pread(r->fd, r->buf + got, (size_t)BLOCK * CHUNK_BLOCKS - got, (off_t)(start + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return tb_error_errno(TB_EIO, errno, "cannot read WAL file %s", r->path);
            if (n == 0)
                break;
            got += (size_t)n;
        }
        r->win = r->buf;
        r->buf_off = start;
        r->buf_len = got;
    }
    *have = off >= r->buf_off + r->buf_len ? 0 : (size_t)(r->buf_off + r->buf_len - off);
    if (*have > len)
        *have = len;
    return 0;
}

static int grow(tb_wal_reader *r, size_t need)
{
    if (need <= r->rec_cap)
        return 0;
    size_t cap = r->rec_cap ? r->rec_cap : 65536;
    while (cap < need)
        cap *= 2;
    unsigned char *p = realloc(r->rec, cap);
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    r->rec = p;
    r->rec_cap = cap;
    return 0;
}

struct frag {
    const unsigned char *h; /* its header, then its payload at h + hdr */
    unsigned type, hdr;
    uint32_t length;
};

/* The fragment at pos, checked: 1; 0 at the end for now (*partial: a fragment cut short,
 * a writer's tail). */
static int read_fragment(tb_wal_reader *r, uint64_t pos, struct frag *f, int *partial)
{
    size_t left_in_block = BLOCK - pos % BLOCK, have;
    int rc;
    *partial = 0;
    if ((rc = fill(r, pos, HDR, &have)) < 0)
        return rc;
    if (have < HDR) {
        *partial = have > 0;
        return 0;
    }
    f->h = r->win + (pos - r->buf_off);
    f->length = tb_get_le16(f->h + 4);
    f->type = f->h[6];
    if (f->type == T_ZERO && f->length == 0)
        return 0; /* zeros: preallocated or not yet written space */
    f->hdr = f->type >= T_RFULL && f->type <= T_RLAST ? RHDR : HDR;
    if (f->hdr + f->length > left_in_block)
        return tb_error_set(TB_EVERIFY, "WAL fragment crosses a block boundary at offset %" PRIu64 " (%s)", pos,
                            r->path);
    if ((rc = fill(r, pos, f->hdr + f->length, &have)) < 0)
        return rc;
    if (have < f->hdr + f->length) {
        *partial = 1;
        return 0;
    }
    f->h = r->win + (pos - r->buf_off);
    if (tb_crc32c_unmask(tb_get_le32(f->h)) != tb_crc32c(0, f->h + 6, f->hdr - 6 + f->length))
        return tb_error_set(TB_EVERIFY, "WAL checksum mismatch at offset %" PRIu64 " (%s)", pos, r->path);
    if (f->hdr == RHDR && tb_get_le32(f->h + 7) != (uint32_t)r->log_number)
        return 0; /* a recycled file's old contents: the end */
    return 1;
}

/* Where a fragment may come: a first or full one outside a record, the others inside. */
static int check_order(tb_wal_reader *r, const struct frag *f, uint64_t pos, int *in_record)
{
    switch (f->type) {
    case T_FULL:
    case T_RFULL:
    case T_FIRST:
    case T_RFIRST:
        if (*in_record)
            return tb_error_set(TB_EVERIFY, "WAL record starts inside another at offset %" PRIu64 " (%s)", pos,
                                r->path);
        /* After a block trailer, RocksDB reports the record at the end of the previous
         * one (where the reader was), not past the trailer; so do we. */
        r->rec_start = pos - r->done < HDR ? r->done : pos;
        *in_record = 1;
        return 0;
    case T_MIDDLE:
    case T_RMIDDLE:
    case T_LAST:
    case T_RLAST:
        if (!*in_record)
            return tb_error_set(TB_EVERIFY, "WAL fragment without a start at offset %" PRIu64 " (%s)", pos, r->path);
        return 0;
    default:
        return tb_error_set(TB_EVERIFY, "unknown WAL fragment type %u at offset %" PRIu64 " (%s)", f->type, pos,
                            r->path);
    }
}

int tb_wal_reader_next(tb_wal_reader *r, const unsigned char **rec, size_t *len)
{
    uint64_t pos = r->done;
    int in_record = 0, partial = 0, rc;
    struct frag f;
    r->torn = 0;
    r->rec_len = 0;
    for (;;) {
        size_t left_in_block = BLOCK - pos % BLOCK;
        if (left_in_block < HDR) {
            pos += left_in_block; /* the block's zero trailer */
            continue;
        }
        if ((rc = read_fragment(r, pos, &f, &partial)) < 0)
            return rc;
        if (rc == 0)
            break;
        if (f.type == T_SETCOMPRESSION) {
            if (f.length < 1 || f.h[f.hdr] != 0)
                return tb_error_set(TB_EVERIFY, "compressed WAL (type %u) is not supported, at offset %" PRIu64 " (%s)",
                                    f.length ? f.h[f.hdr] : 0, pos, r->path);
            pos += f.hdr + f.length;
            if (!in_record)
                r->done = pos;
            continue;
        }
        if ((rc = check_order(r, &f, pos, &in_record)) < 0)
            return rc;
        if (f.type == T_FULL || f.type == T_RFULL) { /* whole in one fragment: no copy */
            r->done = pos + f.hdr + f.length;
            *rec = f.h + f.hdr;
            *len = f.length;
            return 1;
        }
        if ((rc = grow(r, r->rec_len + f.length)) < 0)
            return rc;
        if (f.length) /* an empty record may come first: nothing allocated yet */
            memcpy(r->rec + r->rec_len, f.h + f.hdr, f.length);
        r->rec_len += f.length;
        pos += f.hdr + f.length;
        if (f.type == T_FULL || f.type == T_RFULL || f.type == T_LAST || f.type == T_RLAST) {
            r->done = pos;
            *rec = r->rec;
            *len = r->rec_len;
            return 1;
        }
    }
    r->torn = partial || in_record;
    /* Drop the cache so the next call rereads what the writer has added since. */
    r->buf_len = 0;
    return 0;
}
