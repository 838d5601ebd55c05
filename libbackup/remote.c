/* remote: s3:// sources for restore and replay, and the offsite push of WAL segments. */
#include "remote.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"

static int parse(const char *url, char **bucket, char **prefix)
{
    char *key = NULL;
    int rc = tb_s3_url_parse(url, bucket, &key);
    if (rc < 0)
        return rc;
    *prefix = tb_s3_dir_prefix(key);
    free(key);
    if (!*prefix) {
        free(*bucket);
        return tb_error_set(TB_EIO, "out of memory");
    }
    return 0;
}

int tb_remote_fetch_into(tb_s3 *s, const char *url, const char *dir, unsigned *copied)
{
    char *bucket = NULL, *prefix = NULL;
    int rc = parse(url, &bucket, &prefix);
    if (rc == 0 && (rc = tb_s3_sync_down(s, bucket, prefix, dir, copied)) < 0)
        tb_error_wrap(rc, "%s", url);
    free(bucket);
    free(prefix);
    return rc;
}

int tb_remote_fetch_dir(tb_s3 *s, const char *url, const char *scratch, char **dir)
{
    char *tmp = NULL;
    unsigned copied = 0;
    int rc = 0;
    *dir = NULL;
    if (!(tmp = tb_fs_join(scratch, "themis-s3.XXXXXX")))
        return tb_error_set(TB_EIO, "out of memory");
    if (!mkdtemp(tmp)) {
        rc = tb_error_errno(TB_EIO, errno, "cannot create a temporary directory in %s", scratch);
        goto cleanup;
    }
    if ((rc = tb_remote_fetch_into(s, url, tmp, &copied)) < 0)
        goto cleanup;
    if (!copied) {
        rc = tb_error_set(TB_ENOENT, "nothing under %s", url);
        goto cleanup;
    }
    *dir = tmp;
    tmp = NULL;
cleanup:
    if (tmp && rc < 0)
        tb_fs_rm_rf(tmp);
    free(tmp);
    return rc;
}

/* ---- reader: a download thread feeding a pipe ------------------------------------ */

struct reader {
    tb_stream base;
    tb_s3 *s3;
    char *bucket, *key, *msg;
    int rfd, wfd, rc, joined;
    pthread_t thread;
};

static void *download(void *arg)
{
    struct reader *r = arg;
    tb_stream *out = NULL;
    int rc = tb_stream_fd(&out, r->wfd, 1, r->key);
    if (rc == 0) {
        r->wfd = -1; /* the stream owns it now */
        rc = tb_s3_get(r->s3, r->bucket, r->key, out);
        int crc = tb_stream_close(out);
        if (rc == 0)
            rc = crc;
    }
    tb_stream_free(out);
    if (r->wfd >= 0)
        close(r->wfd);
    r->wfd = -1;
    r->rc = rc;
    if (rc < 0)
        r->msg = strdup(tb_error_last()); /* the message is per thread */
    return NULL;
}

static int join(struct reader *r)
{
    if (!r->joined) {
        pthread_join(r->thread, NULL);
        r->joined = 1;
    }
    if (r->rc < 0)
        return tb_error_set(r->rc, "%s", r->msg ? r->msg : "download failed");
    return 0;
}

static int reader_read(tb_stream *st, void *buf, size_t len, size_t *n)
{
    struct reader *r = (struct reader *)st;
    ssize_t got;
    do
        got = read(r->rfd, buf, len);
    while (got < 0 && errno == EINTR && !tb_interrupted);
    if (got < 0)
        return tb_error_errno(TB_EIO, errno, "read %s", st->name);
    *n = (size_t)got;
    /* The end of the pipe is the end of the object only if the download succeeded. */
    if (got == 0)
        return join(r);
    return tb_error_check_interrupt();
}

static int reader_close(tb_stream *st)
{
    struct reader *r = (struct reader *)st;
    /* Reading to the end first lets a download that ended early report its own error. */
    close(r->rfd);
    r->rfd = -1;
    return join(r);
}

static void reader_free(tb_stream *st)
{
    struct reader *r = (struct reader *)st;
    if (r->rfd >= 0)
        close(r->rfd); /* the thread's next write fails with EPIPE and it ends */
    if (!r->joined)
        pthread_join(r->thread, NULL);
    free(r->bucket);
    free(r->key);
    free(r->msg);
    free(r);
}

static const struct tb_stream_ops reader_ops = { reader_read, NULL, reader_close, reader_free };

int tb_remote_reader(tb_stream **out, tb_s3 *s, const char *url)
{
    struct reader *r = calloc(1, sizeof *r);
    int fds[2], rc;
    *out = NULL;
    if (!r)
        return tb_error_set(TB_EIO, "out of memory");
    if ((rc = tb_s3_url_parse(url, &r->bucket, &r->key)) < 0) {
        free(r);
        return rc;
    }
    if (!*r->key) {
        rc = tb_error_set(TB_EUSAGE, "%s names a bucket, not an object", url);
        goto fail;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "pipe");
        goto fail;
    }
    r->rfd = fds[0];
    r->wfd = fds[1];
    r->s3 = s;
    r->base.ops = &reader_ops;
    r->base.name = r->key;
    if ((errno = pthread_create(&r->thread, NULL, download, r)) != 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot start the download thread");
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
    *out = &r->base;
    return 0;
fail:
    free(r->bucket);
    free(r->key);
    free(r);
    return rc;
}

/* ---- push of a WAL archive -------------------------------------------------------- */

static int put(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, const char *name)
{
    char *path = tb_fs_join(dir, name), *key = malloc(strlen(prefix) + strlen(name) + 1);
    int rc;
    if (!path || !key) {
        rc = tb_error_set(TB_EIO, "out of memory");
    } else {
        strcpy(stpcpy(key, prefix), name);
        rc = tb_s3_put_file(s, bucket, key, path);
    }
    free(path);
    free(key);
    return rc;
}

static int put_tables(tb_s3 *s, const char *bucket, const char *prefix, const char *dir)
{
    int rc = put(s, bucket, prefix, dir, "index.tsv");
    if (rc == 0 && tb_fs_exists_in(dir, "cf.tsv"))
        rc = put(s, bucket, prefix, dir, "cf.tsv");
    return rc;
}

int tb_remote_push_segment(tb_s3 *s, const char *dir, const char *url, const char *name)
{
    char *bucket, *prefix;
    int rc = parse(url, &bucket, &prefix);
    if (rc < 0)
        return rc;
    if ((rc = put(s, bucket, prefix, dir, name)) == 0)
        rc = put_tables(s, bucket, prefix, dir);
    free(bucket);
    free(prefix);
    return rc;
}

struct remote_list {
    char **names;
    uint64_t *sizes;
    size_t n, cap;
    size_t skip; /* prefix length */
};

static int collect(void *arg, const struct tb_s3_object *o)
{
    struct remote_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **names = realloc(l->names, cap * sizeof *names);
        uint64_t *sizes = names ? realloc(l->sizes, cap * sizeof *sizes) : NULL;
        if (names)
            l->names = names;
        if (!sizes)
            return tb_error_set(TB_EIO, "out of memory");
        l->sizes = sizes;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(o->key + l->skip)))
        return tb_error_set(TB_EIO, "out of memory");
    l->sizes[l->n++] = o->size;
    return 0;
}

/* Whether the remote listing has name with this size. */
static int remote_has(const struct remote_list *l, const char *name, uint64_t size)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return l->sizes[i] == size;
    return 0;
}

static int is_segment(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && strcmp(name + n - 8, ".wal.zst") == 0 && name[0] != '.';
}

int tb_remote_push_catch_up(tb_s3 *s, const char *dir, const char *url, unsigned *pushed)
{
    struct remote_list l = { 0 };
    char *bucket, *prefix;
    unsigned sent = 0;
    DIR *d = NULL;
    struct dirent *e;
    int rc = parse(url, &bucket, &prefix);
    if (rc < 0)
        return rc;
    l.skip = strlen(prefix);
    if ((rc = tb_s3_list(s, bucket, prefix, collect, &l)) < 0)
        goto cleanup;
    if (!(d = opendir(dir))) {
        rc = tb_error_errno(TB_EIO, errno, "cannot read %s", dir);
        goto cleanup;
    }
    /* Segment names sort by sequence, but the order of the uploads does not matter: the
     * index goes last. */
    while ((e = readdir(d)) != NULL) {
        char *path;
        struct stat st;
        if (!is_segment(e->d_name) || !(path = tb_fs_join(dir, e->d_name)))
            continue;
        int have = stat(path, &st) == 0 && remote_has(&l, e->d_name, (uint64_t)st.st_size);
        free(path);
        if (have)
            continue;
        if ((rc = put(s, bucket, prefix, dir, e->d_name)) < 0)
            goto cleanup;
        sent++;
    }
    if (tb_fs_exists_in(dir, "index.tsv"))
        rc = put_tables(s, bucket, prefix, dir);
cleanup:
    if (d)
        closedir(d);
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.sizes);
    free(bucket);
    free(prefix);
    if (pushed)
        *pushed = sent;
    return rc;
}
