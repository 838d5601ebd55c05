/* log_writer: RocksDB's log format as db/log_writer.cc writes it (non-recyclable types): a
 * record is cut into fragments [masked crc32c:4][length:2][type:1][payload] that never
 * cross a 32 KiB block; a block's tail too short for a header is filled with zeros. */
#include "log_writer.h"
#include "bytes.h"
#include "crc32c.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BLOCK = 32768, HDR = 7, T_FULL = 1, T_FIRST = 2, T_MIDDLE = 3, T_LAST = 4, BUF = 1 << 20 };

struct tb_wal_writer {
    int fd;
    char *path;
    uint64_t size; /* bytes written or buffered */
    unsigned char *buf;
    size_t used;
};

static int drain(tb_wal_writer *w)
{
    size_t done = 0;
    while (done < w->used) {
        ssize_t n = write(w->fd, w->buf + done, w->used - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tb_error_errno(errno == ENOSPC ? TB_ENOSPC : TB_EIO, errno, "cannot write %s", w->path);
        done += (size_t)n;
    }
    w->used = 0;
    return 0;
}

static int put(tb_wal_writer *w, const void *p, size_t n)
{
    int rc;
    if (w->used + n > BUF && (rc = drain(w)) < 0)
        return rc;
    memcpy(w->buf + w->used, p, n);
    w->used += n;
    w->size += n;
    return 0;
}

static int writer_new(tb_wal_writer **out, const char *path, int flags)
{
    tb_wal_writer *w = calloc(1, sizeof *w);
    struct stat st;
    if (w)
        w->fd = -1;
    if (!w || !(w->path = strdup(path)) || !(w->buf = malloc(BUF))) {
        tb_wal_writer_free(w);
        return tb_error_set(TB_EIO, "out of memory");
    }
    w->fd = open(path, flags | O_WRONLY | O_CLOEXEC, 0644);
    if (w->fd < 0 || fstat(w->fd, &st) < 0) {
        int e = errno;
        tb_wal_writer_free(w);
        return tb_error_errno(TB_EIO, e, "cannot open %s for writing", path);
    }
    w->size = (uint64_t)st.st_size;
    *out = w;
    return 0;
}

int tb_wal_writer_open(tb_wal_writer **out, const char *path)
{
    return writer_new(out, path, O_CREAT | O_EXCL);
}

int tb_wal_writer_append(tb_wal_writer **out, const char *path)
{
    return writer_new(out, path, O_APPEND);
}

int tb_wal_writer_add(tb_wal_writer *w, const void *rec, size_t len)
{
    const unsigned char *p = rec;
    int first = 1, rc;
    do {
        size_t left = BLOCK - (size_t)(w->size % BLOCK), n;
        unsigned char h[HDR], type;
        uint32_t crc;
        if (left < HDR) {
            static const unsigned char zeros[HDR];
            if ((rc = put(w, zeros, left)) < 0)
                return rc;
            left = BLOCK;
        }
        n = len < left - HDR ? len : left - HDR;
        type = first ? (n == len ? T_FULL : T_FIRST) : (n == len ? T_LAST : T_MIDDLE);
        crc = tb_crc32c_mask(tb_crc32c(tb_crc32c(0, &type, 1), p, n));
        tb_put_le32(h, crc);
        tb_put_le16(h + 4, (uint16_t)n);
        h[6] = type;
        if ((rc = put(w, h, HDR)) < 0 || (rc = put(w, p, n)) < 0)
            return rc;
        p += n;
        len -= n;
        first = 0;
    } while (len > 0);
    return 0;
}

uint64_t tb_wal_writer_size(const tb_wal_writer *w)
{
    return w->size;
}

int tb_wal_writer_sync(tb_wal_writer *w)
{
    int rc = drain(w);
    if (rc == 0 && fsync(w->fd) < 0)
        rc = tb_error_errno(TB_EIO, errno, "cannot sync %s", w->path);
    return rc;
}

int tb_wal_writer_close(tb_wal_writer *w)
{
    int rc = tb_wal_writer_sync(w);
    if (close(w->fd) < 0 && rc == 0)
        rc = tb_error_errno(TB_EIO, errno, "cannot close %s", w->path);
    w->fd = -1;
    tb_wal_writer_free(w);
    return rc;
}

void tb_wal_writer_free(tb_wal_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    TB_FREE_ALL(w->path, w->buf, w);
}
