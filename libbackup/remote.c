/* remote: s3:// sources for restore and replay, the offsite push of WAL segments, and
 * retention of backups and WAL segments in S3. */
#include "remote.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archiver.h"
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "manifest.h"
#include "segment.h"

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

static int make_tmp(const char *scratch, char **tmp)
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

int tb_remote_fetch_backup(tb_s3 *s, const char *url0, const char *scratch, char **tmp, char **dir_out)
{
    char *url = strdup(url0), *local = NULL;
    int rc = url ? make_tmp(scratch, tmp) : tb_error_set(TB_EIO, "out of memory"), depth = 0;
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
            rc = tb_error_set(depth ? TB_EVERIFY : TB_ENOENT, depth ? "parent backup missing: %s" : "nothing under %s", url);
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
    char *url, *bucket, *prefix;
    char *dir; /* the local mirror */
    int depth; /* of the parent chain being fetched */
};

/* Copies PREFIX/NAME/MANIFEST.json (and VERIFY.json: the catalog reads it) to dir/NAME/. */
static int get_manifest(void *arg, const struct tb_s3_object *o)
{
    struct tb_remote_root *r = arg;
    const char *rel = o->key + strlen(r->prefix), *slash = strchr(rel, '/');
    char *dir, *path;
    int rc;
    if (!slash || slash == rel || (strcmp(slash + 1, TB_MANIFEST_NAME) != 0 && strcmp(slash + 1, TB_VERIFY_RECORD) != 0))
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
    struct tb_remote_root *r = calloc(1, sizeof *r);
    int rc;
    *out = NULL;
    if (!r || !(r->url = strdup(url))) {
        free(r);
        return tb_error_set(TB_EIO, "out of memory");
    }
    r->s3 = s;
    if ((rc = parse(url, &r->bucket, &r->prefix)) == 0 && (rc = make_tmp(scratch, &r->dir)) == 0)
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

struct remote_list {
    char **names;
    uint64_t *sizes;
    size_t n, cap;
    size_t skip; /* prefix length */
};

static int collect(void *arg, const struct tb_s3_object *o);
static void remote_list_clear(struct remote_list *l);

int tb_remote_root_remove(tb_remote_root *r, const char *name, unsigned *deleted)
{
    struct remote_list l = { 0 };
    char *prefix = dir_join(r->prefix, name);
    unsigned done = 0;
    int rc = prefix ? 0 : tb_error_set(TB_EIO, "out of memory");
    /* Listed whole before the first delete: deleting under a paged listing could skip keys. */
    if (rc == 0)
        rc = tb_s3_list(r->s3, r->bucket, prefix, collect, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        if ((rc = tb_s3_delete(r->s3, r->bucket, l.names[i])) == 0)
            done++;
    if (deleted)
        *deleted = done;
    remote_list_clear(&l);
    free(prefix);
    return rc;
}

void tb_remote_root_free(tb_remote_root *r)
{
    if (!r)
        return;
    if (r->dir)
        tb_fs_rm_rf(r->dir);
    free(r->dir);
    free(r->url);
    free(r->bucket);
    free(r->prefix);
    free(r);
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

/* Writes the line p (n bytes, with or without its newline) and a newline to m. */
static int put_line(tb_stream *m, const char *p, size_t n)
{
    if (n && p[n - 1] == '\n')
        n--;
    int rc = tb_stream_write(m, p, n);
    return rc < 0 ? rc : tb_stream_write(m, "\n", 1);
}

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

/* Whether the remote index (its segments r, nr) is this archive's (dir's index) own: every
 * remote segment the local index names has the same SHA-256, and those it does not name
 * (the remote may keep older ones than a locally expired archive) end where the local
 * archive begins. Any other is another archive's: pushing would replace its index and
 * orphan it (a new archive after a recovery or a gap, pushed to the old prefix). */
static int same_archive(const struct tb_seg_info *r, size_t nr, const char *dir, tb_keyring *keys, const char *bucket,
                        const char *prefix, tb_stream *older)
{
    struct tb_seg_info *local = NULL;
    size_t n = 0;
    uint64_t older_end = 0;
    char bad[64] = "";
    int rc = tb_seg_index_load(dir, keys, &local, &n);
    /* No local segment yet (a new archive, or all expired here): every remote one is older. */
    uint64_t begins = rc == 0 && n ? local[0].first_seq : UINT64_MAX;
    if (rc < 0) {
        free(local);
        return rc == TB_ENOENT ? 0 : rc;
    }
    for (size_t j = 0; rc == 0 && j < nr && !*bad; j++) {
        size_t i = tb_seg_index_find(local, n, r[j].first_seq, r[j].name);
        if (i < n ? strcmp(local[i].sha256, r[j].sha256) != 0 : r[j].next_seq > begins) {
            snprintf(bad, sizeof bad, "%s", r[j].name);
        } else if (i == n) {
            char *line = older ? tb_seg_index_line(&r[j]) : NULL;
            if (r[j].next_seq > older_end)
                older_end = r[j].next_seq;
            if (older)
                rc = line ? put_line(older, line, strlen(line)) : tb_error_set(TB_EIO, "out of memory");
            free(line);
        }
    }
    if (rc == 0 && *bad)
        rc = tb_error_set(TB_EIO, "s3://%s/%s holds another WAL archive (its index names %s, which this archive does not "
                          "have): pushing would replace its index; push this archive to a new prefix", bucket, prefix, bad);
    else if (rc == 0 && older_end && n && older_end != begins)
        rc = tb_error_set(TB_EIO, "s3://%s/%s holds another WAL archive (it ends at sequence %" PRIu64 ", this one begins "
                          "at %" PRIu64 "): pushing would replace its index; push this archive to a new prefix",
                          bucket, prefix, older_end - 1, begins);
    free(local);
    return rc;
}

/* The first sequence of the remote index's first segment: themis-expire on the s3://
 * archive removed everything before it, which the push must not bring back. 0 when there
 * is no remote index yet. Refuses another archive's index (same_archive), and a damaged
 * one as every reader of an index does (tb_seg_index_parse). older (may be NULL, a memory
 * writer): the remote index's lines of segments older than the local archive's first (the
 * bucket keeps them longer than the local archive does). */
static int remote_index(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, tb_keyring *keys,
                        uint64_t *floor, tb_stream *older)
{
    tb_stream *m = NULL;
    char *key = NULL, *url = NULL, *text = NULL;
    struct tb_seg_info *r = NULL;
    size_t nr = 0, len;
    uint64_t from = 0;
    int rc = tb_stream_mem_writer(&m);
    *floor = 0;
    if (rc == 0 && (asprintf(&key, "%s%s", prefix, TB_SEG_INDEX) < 0 || asprintf(&url, "s3://%s/%s", bucket, key) < 0))
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && (rc = tb_s3_get(s, bucket, key, m)) == 0) {
        const char *p = tb_stream_mem_data(m, &len);
        if (!(text = malloc(len + 1)))
            rc = tb_error_set(TB_EIO, "out of memory");
        else
            memcpy(text, p, len);
        if (rc == 0 && (rc = tb_seg_index_parse(text, len, url, &r, &nr, &from)) == 0 &&
            (rc = same_archive(r, nr, dir, keys, bucket, prefix, older)) == 0)
            *floor = nr && r[0].first_seq > from ? r[0].first_seq : from;
    } else if (rc == TB_ENOENT) {
        rc = 0;
    }
    free(r);
    free(text);
    tb_stream_free(m);
    free(url);
    free(key);
    return rc;
}

/* The lines of t (len bytes) to m: comments (but a "# from" line: the remote floor is the
 * one that counts) or segments from floor on. */
static int put_lines(tb_stream *m, const char *t, size_t len, int comments, uint64_t floor)
{
    int rc = 0;
    for (const char *p = t, *nl; rc == 0 && t && p < t + len; p = nl + 1) {
        if (!(nl = memchr(p, '\n', (size_t)(t + len - p))))
            nl = t + len - 1;
        if (comments ? *p == '#' && strncmp(p, TB_SEG_INDEX_FROM, strlen(TB_SEG_INDEX_FROM)) != 0
                     : *p != '#' && strtoull(p, NULL, 10) >= floor)
            rc = put_line(m, p, (size_t)(nl - p) + 1);
    }
    return rc;
}

/* index.tsv: the floor, the local index's comments, the remote's older segments (older may
 * be NULL), the local segments, each segment from floor on; then cf.tsv. */
static int put_tables(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, uint64_t floor,
                      tb_stream *older)
{
    char *text = NULL, *path = tb_fs_join(dir, TB_SEG_INDEX), *key = NULL, from[64];
    const char *old = NULL, *out;
    size_t len = 0, olen = 0, n;
    tb_stream *m = NULL, *src = NULL;
    int rc = path ? tb_fs_read_file(path, &text, &len) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && asprintf(&key, "%s%s", prefix, TB_SEG_INDEX) < 0)
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_stream_mem_writer(&m);
    if (rc == 0 && floor)
        rc = put_line(m, from, (size_t)snprintf(from, sizeof from, "%s%" PRIu64, TB_SEG_INDEX_FROM, floor));
    if (older)
        old = tb_stream_mem_data(older, &olen);
    if (rc == 0 && (rc = put_lines(m, text, len, 1, floor)) == 0 && (rc = put_lines(m, old, olen, 0, floor)) == 0 &&
        (rc = put_lines(m, text, len, 0, floor)) == 0) {
        out = tb_stream_mem_data(m, &n);
        if ((rc = tb_stream_mem_reader(&src, out, n)) == 0)
            rc = tb_s3_put(s, bucket, key, src, n, NULL);
    }
    if (rc == 0 && tb_fs_exists_in(dir, "cf.tsv"))
        rc = put(s, bucket, prefix, dir, "cf.tsv");
    tb_stream_free(src);
    tb_stream_free(m);
    free(key);
    free(text);
    free(path);
    return rc;
}

/* put_tables with the remote index read again right before: a themis-expire that ran while
 * the segments went up is respected (the window left is the index's own GET and PUT), and
 * the older segments the bucket keeps stay named. */
static int put_tables_fresh(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, tb_keyring *keys,
                            uint64_t floor)
{
    uint64_t now;
    tb_stream *older = NULL;
    int rc = tb_stream_mem_writer(&older);
    if (rc == 0 && (rc = remote_index(s, bucket, prefix, dir, keys, &now, older)) == 0)
        rc = put_tables(s, bucket, prefix, dir, now > floor ? now : floor, older);
    tb_stream_free(older);
    return rc;
}

int tb_remote_push_segment(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, const char *name)
{
    char *bucket, *prefix;
    uint64_t floor;
    int rc = parse(url, &bucket, &prefix);
    if (rc < 0)
        return rc;
    if ((rc = remote_index(s, bucket, prefix, dir, keys, &floor, NULL)) == 0 && strtoull(name, NULL, 10) >= floor)
        rc = put(s, bucket, prefix, dir, name);
    if (rc == 0)
        rc = put_tables_fresh(s, bucket, prefix, dir, keys, floor);
    free(bucket);
    free(prefix);
    return rc;
}

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

static void remote_list_clear(struct remote_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->sizes);
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

int tb_remote_push_catch_up(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, unsigned *pushed)
{
    struct remote_list l = { 0 };
    char *bucket, *prefix;
    unsigned sent = 0;
    DIR *d = NULL;
    struct dirent *e;
    int rc = parse(url, &bucket, &prefix);
    if (rc < 0)
        return rc;
    uint64_t floor;
    l.skip = strlen(prefix);
    if ((rc = tb_s3_list(s, bucket, prefix, collect, &l)) < 0 ||
        (rc = remote_index(s, bucket, prefix, dir, keys, &floor, NULL)) < 0)
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
        if (!is_segment(e->d_name) || strtoull(e->d_name, NULL, 10) < floor || !(path = tb_fs_join(dir, e->d_name)))
            continue; /* (below the floor: expired in the bucket) */
        int have = stat(path, &st) == 0 && remote_has(&l, e->d_name, (uint64_t)st.st_size);
        free(path);
        if (have)
            continue;
        if ((rc = put(s, bucket, prefix, dir, e->d_name)) < 0)
            goto cleanup;
        sent++;
    }
    if (tb_fs_exists_in(dir, TB_SEG_INDEX))
        rc = put_tables_fresh(s, bucket, prefix, dir, keys, floor);
cleanup:
    if (d)
        closedir(d);
    remote_list_clear(&l);
    free(bucket);
    free(prefix);
    if (pushed)
        *pushed = sent;
    return rc;
}

/* ---- retention of a WAL archive ---------------------------------------------------- */

/* Downloads the archive's file name (the key prefix + name) into dir. */
static int get_one(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, const char *name)
{
    char *key = NULL, *path = tb_fs_join(dir, name);
    int rc = path && asprintf(&key, "%s%s", prefix, name) >= 0 ? 0 : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_s3_get_file(s, bucket, key, path);
    if (rc == TB_ENOENT && strcmp(name, TB_SEG_INDEX) == 0)
        rc = tb_error_set(TB_ENOENT, "no WAL archive at s3://%s/%s (no %s)", bucket, prefix, TB_SEG_INDEX);
    free(key);
    free(path);
    return rc;
}

int tb_remote_wal_plan(tb_s3 *s, const char *url, tb_keyring *keys, const char *scratch, uint64_t base, char **dir,
                       struct tb_seg_info **segs, size_t *n, size_t *cut)
{
    char *bucket = NULL, *prefix = NULL;
    size_t bound;
    int rc = parse(url, &bucket, &prefix);
    *dir = NULL;
    *segs = NULL;
    *n = *cut = 0;
    if (rc < 0)
        return rc;
    if ((rc = make_tmp(scratch, dir)) == 0 && (rc = get_one(s, bucket, prefix, *dir, TB_SEG_INDEX)) == 0)
        rc = tb_seg_index_load(*dir, keys, segs, n);
    /* Only the segments the cut may take are read, to find the Prepares they leave open. */
    bound = rc == 0 ? tb_archive_cut_bound(*segs, *n, base) : 0;
    for (size_t i = 0; rc == 0 && i < bound; i++)
        rc = get_one(s, bucket, prefix, *dir, (*segs)[i].name);
    if (rc == 0)
        rc = tb_archive_unneeded_prefix(*dir, keys, *segs, *n, base, cut);
    if (rc < 0) {
        free(*segs);
        *segs = NULL;
        *n = *cut = 0;
    }
    free(bucket);
    free(prefix);
    return rc;
}

int tb_remote_wal_drop(tb_s3 *s, const char *url, tb_keyring *keys, const char *dir, const struct tb_seg_info *planned,
                       size_t cut, struct tb_seg_info **gone, size_t *ngone)
{
    char *bucket = NULL, *prefix = NULL, *key = NULL, *path = NULL;
    struct tb_seg_info *now = NULL;
    size_t n = 0;
    int rc = parse(url, &bucket, &prefix);
    *gone = NULL;
    *ngone = 0;
    if (rc < 0)
        return rc;
    if ((rc = get_one(s, bucket, prefix, dir, TB_SEG_INDEX)) == 0)
        rc = tb_seg_index_load(dir, keys, &now, &n);
    for (size_t i = 0; rc == 0 && i < cut; i++)
        if (i >= n || strcmp(now[i].name, planned[i].name) != 0)
            rc = tb_error_set(TB_EIO, "the index of %s changed while expiring it: nothing removed, run again", url);
    /* The index without the cut segments goes up first: a failure after it leaves objects no
     * index names (harmless), never an index naming a missing object. */
    if (rc == 0 && (rc = tb_seg_index_drop_prefix(dir, cut, gone, ngone)) == 0) {
        path = tb_fs_join(dir, TB_SEG_INDEX);
        rc = path && asprintf(&key, "%s%s", prefix, TB_SEG_INDEX) >= 0 ? 0 : tb_error_set(TB_EIO, "out of memory");
        if (rc == 0)
            rc = tb_s3_put_file(s, bucket, key, path);
        for (size_t i = 0; rc == 0 && i < *ngone; i++) {
            free(key);
            if (asprintf(&key, "%s%s", prefix, (*gone)[i].name) < 0) {
                key = NULL;
                rc = tb_error_set(TB_EIO, "out of memory");
            } else {
                rc = tb_s3_delete(s, bucket, key);
            }
        }
    }
    free(now);
    free(key);
    free(path);
    free(bucket);
    free(prefix);
    return rc;
}
