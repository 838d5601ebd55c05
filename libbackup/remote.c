/* remote: s3:// sources for restore and replay: a backup, a backup root (for listing,
 * picking and expiring), one object as a stream. The WAL side is wal/walremote.c. */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "manifest.h"

int tb_remote_fetch_into(tb_s3 *s, const char *url, const char *dir, unsigned *copied)
{
    char *bucket = NULL, *prefix = NULL;
    int rc = tb_s3_url_parse_dir(url, &bucket, &prefix);
    if (rc == 0 && (rc = tb_s3_sync_down(s, bucket, prefix, dir, copied)) < 0)
        tb_error_wrap(rc, "%s", url);
    free(bucket);
    free(prefix);
    return rc;
}

int tb_remote_mkdtemp(const char *scratch, char **tmp)
{
    if (!(*tmp = tb_fs_join(scratch, "themis-s3.XXXXXX")))
        return tb_error_set(TB_EIO, "out of memory");
    if (!mkdtemp(*tmp)) {
        int rc = tb_error_errno(TB_EIO, errno, "cannot create a temporary directory in %s", scratch);
        free(*tmp);
        *tmp = NULL;
        return rc;
    }
    return 0;
}

int tb_remote_fetch_dir(tb_s3 *s, const char *url, const char *scratch, char **dir)
{
    char *tmp = NULL;
    unsigned copied = 0;
    int rc = tb_remote_mkdtemp(scratch, &tmp);
    *dir = NULL;
    if (rc < 0)
        return rc;
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

/* "a/b" + "c" -> "a/b/c/": the URL or key of a directory inside another ("" + "c" -> "c/"). */
static char *dir_join(const char *a, const char *name)
{
    size_t n = strlen(a);
    char *u = malloc(n + strlen(name) + 3);
    if (u)
        sprintf(u, "%s%s%s%s", a, n && a[n - 1] != '/' ? "/" : "", name, *name ? "/" : "");
    return u;
}

/* The NAME of an incremental backup's parent "../NAME" (a sibling), from dir's manifest;
 * NULL for a full backup or a parent elsewhere. */
static char *sibling_parent(const char *dir)
{
    char *mpath = tb_fs_join(dir, TB_MANIFEST_NAME), *text = NULL, *name = NULL;
    struct tb_manifest *m = NULL;
    if (mpath && tb_fs_read_file(mpath, &text, NULL) == 0 && tb_manifest_parse(text, mpath, &m) == 0 &&
        m->parent_path && strncmp(m->parent_path, "../", 3) == 0 && m->parent_path[3] &&
        !strchr(m->parent_path + 3, '/'))
        name = strdup(m->parent_path + 3);
    tb_manifest_free(m);
    free(text);
    free(mpath);
    return name;
}

int tb_remote_fetch_backup(tb_s3 *s, const char *url0, const char *scratch, char **tmp, char **dir_out)
{
    char *url = strdup(url0), *local = NULL;
    int rc = url ? tb_remote_mkdtemp(scratch, tmp) : tb_error_set(TB_EIO, "out of memory"), depth = 0;
    *dir_out = NULL;
    while (rc == 0) {
        size_t n = strlen(url);
        char *dir, *parent, *next = NULL;
        unsigned copied = 0;
        while (n > 1 && url[n - 1] == '/')
            url[--n] = '\0';
        dir = tb_fs_join(*tmp, strrchr(url, '/') + 1);
        rc = dir ? tb_remote_fetch_into(s, url, dir, &copied) : tb_error_set(TB_EIO, "out of memory");
        if (rc == 0 && !copied)
            rc = tb_error_set(depth ? TB_EVERIFY : TB_ENOENT, depth ? "parent backup missing: %s" : "nothing under %s",
                              url);
        if (rc == 0 && !local)
            local = strdup(dir);
        parent = rc == 0 ? sibling_parent(dir) : NULL;
        free(dir);
        if (!parent)
            break;
        if (++depth > 1000)
            rc = tb_error_set(TB_EVERIFY, "parent chain too long (a loop?) at %s", url);
        *strrchr(url, '/') = '\0';
        if (rc == 0 && asprintf(&next, "%s/%s", url, parent) < 0)
            rc = tb_error_set(TB_EIO, "out of memory");
        free(parent);
        free(url);
        url = next;
    }
    free(url);
    if (rc == 0)
        *dir_out = local;
    else
        free(local);
    return rc;
}

/* ---- a backup root in S3 ---------------------------------------------------------- */

struct tb_remote_root {
    tb_s3 *s3;
    char *bucket, *prefix;
    char *dir; /* the local mirror */
    int depth; /* of the parent chain being fetched */
    char url[];
};

/* Copies PREFIX/NAME/MANIFEST.json (and VERIFY.json: the catalog reads it) to dir/NAME/. */
static int get_manifest(void *arg, const struct tb_s3_object *o)
{
    struct tb_remote_root *r = arg;
    const char *rel = o->key + strlen(r->prefix), *slash = strchr(rel, '/');
    char *dir, *path;
    int rc;
    if (!slash || slash == rel ||
        (strcmp(slash + 1, TB_MANIFEST_NAME) != 0 && strcmp(slash + 1, TB_VERIFY_RECORD) != 0))
        return 0;
    if (asprintf(&dir, "%s/%.*s", r->dir, (int)(slash - rel), rel) < 0)
        return tb_error_set(TB_EIO, "out of memory");
    path = tb_fs_join(dir, slash + 1);
    rc = path ? tb_fs_mkdir_p(dir, 0700) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_s3_get_file(r->s3, r->bucket, o->key, path);
    free(path);
    free(dir);
    return rc;
}

int tb_remote_root_open(tb_remote_root **out, tb_s3 *s, const char *url, const char *scratch)
{
    struct tb_remote_root *r = calloc(1, sizeof *r + strlen(url) + 1);
    int rc;
    *out = NULL;
    if (!r)
        return tb_error_set(TB_EIO, "out of memory");
    strcpy(r->url, url);
    r->s3 = s;
    if ((rc = tb_s3_url_parse_dir(url, &r->bucket, &r->prefix)) == 0 && (rc = tb_remote_mkdtemp(scratch, &r->dir)) == 0)
        rc = tb_s3_list(s, r->bucket, r->prefix, get_manifest, r);
    if (rc < 0) {
        tb_remote_root_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

const char *tb_remote_root_dir(const tb_remote_root *r)
{
    return r->dir;
}

/* A backup's files, then its parents' (siblings in the mirror; a chain longer than any real
 * one is a loop in damaged manifests). */
static int fetch_chain(tb_remote_root *r, const char *dir)
{
    char *url = dir_join(r->url, strrchr(dir, '/') + 1);
    int rc = url ? tb_remote_fetch_into(r->s3, url, dir, NULL) : tb_error_set(TB_EIO, "out of memory");
    free(url);
    if (rc == 0 && ++r->depth > 1000)
        rc = tb_error_set(TB_EVERIFY, "parent chain too long (a loop?) at %s", dir);
    if (rc == 0) {
        char *sib = NULL, *parent = sibling_parent(dir);
        if (parent && (sib = tb_fs_dirname(dir)) != NULL) {
            char *pdir = tb_fs_join(sib, parent);
            rc = pdir ? fetch_chain(r, pdir) : tb_error_set(TB_EIO, "out of memory");
            free(pdir);
        }
        free(sib);
        free(parent);
    }
    return rc;
}

int tb_remote_root_fetch(tb_remote_root *r, const char *dir)
{
    r->depth = 0;
    return fetch_chain(r, dir);
}

int tb_remote_root_remove(tb_remote_root *r, const char *name, unsigned *deleted)
{
    struct tb_s3_object *l = NULL;
    size_t n = 0;
    char *prefix = dir_join(r->prefix, name);
    unsigned done = 0;
    int rc = prefix ? 0 : tb_error_set(TB_EIO, "out of memory");
    /* Listed whole before the first delete: deleting under a paged listing could skip keys. */
    if (rc == 0)
        rc = tb_s3_list_all(r->s3, r->bucket, prefix, &l, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((rc = tb_s3_delete(r->s3, r->bucket, l[i].key)) == 0)
            done++;
    if (deleted)
        *deleted = done;
    tb_s3_objects_free(l, n);
    free(prefix);
    return rc;
}

void tb_remote_root_free(tb_remote_root *r)
{
    if (!r)
        return;
    if (r->dir)
        tb_fs_rm_rf(r->dir);
    TB_FREE_ALL(r->dir, r->bucket, r->prefix, r);
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
    TB_FREE_ALL(r->bucket, r->key, r->msg, r);
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
