/* walremote: the offsite copy of a WAL archive in S3: the push of closed segments (the
 * remote index never names a missing one) and retention there. */
#include "walremote.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archiver.h"
#include "error.h"
#include "fs.h"
#include "segment.h"

/* The object key of the archive's file name: the key prefix + name (malloc'd). */
static char *key_of(const char *prefix, const char *name)
{
    char *key = malloc(strlen(prefix) + strlen(name) + 1);
    if (key)
        strcpy(stpcpy(key, prefix), name);
    return key;
}

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
    char *path = tb_fs_join(dir, name), *key = key_of(prefix, name);
    int rc = path && key ? tb_s3_put_file(s, bucket, key, path) : tb_error_set(TB_EIO, "out of memory");
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
        rc = tb_error_set(TB_EIO,
                          "s3://%s/%s holds another WAL archive (its index names %s, which this archive does not "
                          "have): pushing would replace its index; push this archive to a new prefix",
                          bucket, prefix, bad);
    else if (rc == 0 && older_end && n && older_end != begins)
        rc = tb_error_set(TB_EIO,
                          "s3://%s/%s holds another WAL archive (it ends at sequence %" PRIu64 ", this one begins at "
                          "%" PRIu64 "): pushing would replace its index; push this archive to a new prefix",
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
    if (rc == 0 && (!(key = key_of(prefix, TB_SEG_INDEX)) || asprintf(&url, "s3://%s/%s", bucket, key) < 0))
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
    if (rc == 0 && !(key = key_of(prefix, TB_SEG_INDEX)))
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

int tb_wal_remote_push_segment(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, const char *name)
{
    char *bucket, *prefix;
    uint64_t floor;
    int rc = tb_s3_url_parse_dir(url, &bucket, &prefix);
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

/* Whether the remote listing has name with this size. */
static int remote_has(const struct tb_s3_object *v, size_t n, size_t skip, const char *name, uint64_t size)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key + skip, name) == 0)
            return v[i].size == size;
    return 0;
}

static int is_segment(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && strcmp(name + n - 8, ".wal.zst") == 0 && name[0] != '.';
}

int tb_wal_remote_push_catch_up(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, unsigned *pushed)
{
    struct tb_s3_object *l = NULL;
    size_t nl = 0;
    char *bucket, *prefix;
    unsigned sent = 0;
    DIR *d = NULL;
    struct dirent *e;
    int rc = tb_s3_url_parse_dir(url, &bucket, &prefix);
    if (rc < 0)
        return rc;
    uint64_t floor;
    if ((rc = tb_s3_list_all(s, bucket, prefix, &l, &nl)) < 0 ||
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
        int have = stat(path, &st) == 0 && remote_has(l, nl, strlen(prefix), e->d_name, (uint64_t)st.st_size);
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
    tb_s3_objects_free(l, nl);
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
    int rc = path && (key = key_of(prefix, name)) ? 0 : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_s3_get_file(s, bucket, key, path);
    if (rc == TB_ENOENT && strcmp(name, TB_SEG_INDEX) == 0)
        rc = tb_error_set(TB_ENOENT, "no WAL archive at s3://%s/%s (no %s)", bucket, prefix, TB_SEG_INDEX);
    free(key);
    free(path);
    return rc;
}

int tb_wal_remote_plan(tb_s3 *s, const char *url, tb_keyring *keys, const char *dir, uint64_t base,
                       struct tb_seg_info **segs, size_t *n, size_t *cut)
{
    char *bucket = NULL, *prefix = NULL;
    size_t bound;
    int rc = tb_s3_url_parse_dir(url, &bucket, &prefix);
    *segs = NULL;
    *n = *cut = 0;
    if (rc < 0)
        return rc;
    if ((rc = get_one(s, bucket, prefix, dir, TB_SEG_INDEX)) == 0)
        rc = tb_seg_index_load(dir, keys, segs, n);
    /* Only the segments the cut may take are read, to find the Prepares they leave open. */
    bound = rc == 0 ? tb_wal_archive_cut_bound(*segs, *n, base) : 0;
    for (size_t i = 0; rc == 0 && i < bound; i++)
        rc = get_one(s, bucket, prefix, dir, (*segs)[i].name);
    if (rc == 0)
        rc = tb_wal_archive_unneeded_prefix(dir, keys, *segs, *n, base, cut);
    if (rc < 0) {
        free(*segs);
        *segs = NULL;
        *n = *cut = 0;
    }
    free(bucket);
    free(prefix);
    return rc;
}

int tb_wal_remote_drop(tb_s3 *s, const char *url, tb_keyring *keys, const char *dir, const struct tb_seg_info *planned,
                       size_t cut, struct tb_seg_info **gone, size_t *ngone)
{
    char *bucket = NULL, *prefix = NULL, *key = NULL;
    struct tb_seg_info *now = NULL;
    size_t n = 0;
    int rc = tb_s3_url_parse_dir(url, &bucket, &prefix);
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
        rc = put(s, bucket, prefix, dir, TB_SEG_INDEX);
        for (size_t i = 0; rc == 0 && i < *ngone; i++) {
            free(key);
            rc = (key = key_of(prefix, (*gone)[i].name)) ? tb_s3_delete(s, bucket, key)
                                                         : tb_error_set(TB_EIO, "out of memory");
        }
    }
    free(now);
    free(key);
    free(bucket);
    free(prefix);
    return rc;
}
