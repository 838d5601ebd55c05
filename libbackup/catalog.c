/* catalog: the backups under a root directory, newest first. */
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "timefmt.h"

#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int newest_first(const void *a, const void *b)
{
    const struct tb_catalog_entry *x = a, *y = b;
    if (x->created_ns != y->created_ns)
        return x->created_ns < y->created_ns ? 1 : -1;
    if (x->m->last_seq != y->m->last_seq)
        return x->m->last_seq < y->m->last_seq ? 1 : -1;
    return strcmp(y->dir, x->dir);
}

int tb_catalog_list(const char *root, struct tb_catalog_entry **out, size_t *n)
{
    DIR *d = opendir(root);
    struct dirent *e;
    struct tb_catalog_entry *v = NULL;
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (!d)
        return tb_error_errno(TB_ENOENT, errno, "cannot read backup root %s", root);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char *dir, *mpath, *text = NULL;
        struct tb_manifest *m = NULL;
        int64_t t;
        if (e->d_name[0] == '.')
            continue;
        dir = tb_fs_join(root, e->d_name);
        mpath = dir ? tb_fs_join(dir, TB_MANIFEST_NAME) : NULL;
        if (!mpath)
            rc = tb_error_set(TB_EIO, "out of memory");
        else if (tb_fs_read_file(mpath, &text, NULL) == 0 && tb_manifest_parse(text, mpath, &m) == 0 && m->created &&
                 tb_time_parse(m->created, &t) == 0) {
            struct tb_catalog_entry *p = realloc(v, (*n + 1) * sizeof *p);
            if (!p) {
                rc = tb_error_set(TB_EIO, "out of memory");
            } else {
                v = p;
                v[*n] = (struct tb_catalog_entry){ .dir = dir, .m = m, .created_ns = t };
                tb_catalog_last_verify(dir, &v[*n].verify_state, &v[*n].verified_ns, &v[*n].verify_quick);
                (*n)++;
                dir = NULL;
                m = NULL;
            }
        }
        tb_manifest_free(m);
        free(text);
        free(mpath);
        free(dir);
    }
    closedir(d);
    if (rc < 0) {
        tb_catalog_free(v, *n);
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(v, *n, sizeof *v, newest_first);
    *out = v;
    return 0;
}

void tb_catalog_free(struct tb_catalog_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].dir);
        tb_manifest_free(v[i].m);
    }
    free(v);
}

int tb_catalog_read_manifest(const char *dir, tb_keyring *keys, int full, struct tb_manifest **out)
{
    char *mpath = tb_fs_join(dir, TB_MANIFEST_NAME), *epath = tb_fs_join(dir, TB_MANIFEST_ENC_NAME), *text = NULL;
    tb_stream *f = NULL, *c = NULL, *mem = NULL;
    struct tb_manifest *redacted = NULL;
    int rc = mpath && epath ? tb_fs_read_file(mpath, &text, NULL) : tb_error_set(TB_EIO, "out of memory");
    *out = NULL;
    if (rc == TB_ENOENT)
        rc = tb_error_set(TB_ENOENT, "no %s in %s", TB_MANIFEST_NAME, dir);
    if (rc == 0)
        rc = tb_manifest_parse(text, mpath, out);
    if (rc < 0 || !full || !(*out)->redacted)
        goto cleanup;
    /* The full manifest, encrypted beside the archive; the redacted one must agree with it
     * on all it says (key ids and archive size aside: rekeying rewrites only those). */
    redacted = *out;
    *out = NULL;
    free(text);
    text = NULL;
    if ((rc = tb_stream_file(&f, epath, "r")) == TB_ENOENT)
        rc = tb_error_set(TB_EVERIFY, "backup is incomplete: %s is missing (%s)", TB_MANIFEST_ENC_NAME, dir);
    if (rc == 0 && (rc = tb_crypt_reader(&c, f, keys)) == 0)
        f = NULL;
    if (rc == 0 && (rc = tb_stream_mem_writer(&mem)) == 0 && (rc = tb_stream_copy(mem, c, NULL)) == 0) {
        size_t len;
        const char *data = tb_stream_mem_data(mem, &len);
        text = strndup(data ? data : "", len);
        rc = text ? tb_manifest_parse(text, epath, out) : tb_error_set(TB_EIO, "out of memory");
    }
    if (rc == 0 && (rc = tb_manifest_compare(redacted, *out)) < 0)
        rc = tb_error_wrap(rc, "%s differs from %s", mpath, TB_MANIFEST_ENC_NAME);
    if (rc == 0 && strcmp(redacted->archive_sha256, (*out)->archive_sha256))
        rc = tb_error_set(TB_EVERIFY, "%s differs from %s: archive.sha256", mpath, TB_MANIFEST_ENC_NAME);
    if (rc < 0) {
        tb_manifest_free(*out);
        *out = NULL;
    }
cleanup:
    tb_manifest_free(redacted);
    tb_stream_free(mem);
    tb_stream_free(c);
    tb_stream_free(f);
    free(text);
    free(mpath);
    free(epath);
    return rc;
}

int tb_catalog_write_encrypted(const char *path, const char *data, size_t len, tb_keyring *keys)
{
    tb_stream *c = NULL;
    int rc = tb_crypt_file_writer(&c, path, keys);
    if (rc == 0 && (rc = tb_stream_write(c, data, len)) == 0)
        rc = tb_stream_close(c);
    tb_stream_free(c);
    return rc;
}

uint64_t tb_catalog_stored_bytes(const struct tb_manifest *m)
{
    uint64_t b = 0;
    if (m->redacted)
        return m->archive_size;
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].stored_in)
            b += m->files[i].size;
    return b;
}

int tb_catalog_record_verify(const char *dir, int rc, int quick, const char *msg)
{
    char when[40], *path = tb_fs_join(dir, TB_VERIFY_RECORD), *text = NULL;
    json_t *o;
    int wrc;
    tb_time_format(tb_time_now_ns() / 1000000000 * 1000000000, when, sizeof when); /* whole seconds */
    o = json_pack("{s:s, s:s, s:b, s:s}", "time", when, "result", rc < 0 ? "failed" : "ok", "quick", quick, "message",
                  rc < 0 && msg ? msg : "");
    text = o ? tb_json_text(o) : NULL;
    wrc = !path || !text ? tb_error_set(TB_EIO, "out of memory") : tb_fs_write_atomic(path, text, strlen(text), 0644);
    json_decref(o);
    free(text);
    free(path);
    return wrc;
}

int tb_catalog_last_verify(const char *dir, int *state, int64_t *when, int *quick)
{
    char *path = tb_fs_join(dir, TB_VERIFY_RECORD), *text = NULL;
    json_t *o = NULL;
    const char *res, *t;
    *state = 0;
    *when = 0;
    *quick = 0;
    if (path && tb_fs_read_file(path, &text, NULL) == 0 && (o = json_loads(text, 0, NULL)) != NULL &&
        (res = json_string_value(json_object_get(o, "result"))) &&
        (t = json_string_value(json_object_get(o, "time"))) && tb_time_parse(t, when) == 0) {
        *state = strcmp(res, "ok") == 0 ? 1 : -1;
        *quick = json_is_true(json_object_get(o, "quick"));
    }
    json_decref(o);
    free(text);
    free(path);
    return 0;
}

int tb_catalog_latest(char **out, const char *root, const char *before,
                      void (*skipped)(void *arg, const char *dir, const char *why), void *arg)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    int64_t t;
    int rc = tb_time_parse(before, &t);
    *out = NULL;
    if (rc == 0)
        rc = tb_catalog_list(root, &v, &n);
    for (size_t i = 0; rc == 0 && !*out && i < n; i++) {
        if (v[i].created_ns > t)
            continue;
        if (v[i].verify_state >= 0)
            rc = (*out = strdup(v[i].dir)) ? 0 : tb_error_set(TB_EIO, "out of memory");
        else if (skipped)
            skipped(arg, v[i].dir, "its last verification failed");
    }
    if (rc == 0 && !*out)
        rc = tb_error_set(TB_EGAP, "no backup under %s was made at or before %s", root, before);
    tb_catalog_free(v, n);
    return rc;
}

int tb_catalog_age_parse(int64_t *ns, const char *s)
{
    char *end;
    double v = s ? strtod(s, &end) : -1;
    int64_t unit = 1;
    if (!s || end == s || v < 0)
        return tb_error_set(TB_EUSAGE, "an age is a number with s, m, h or d (26h)");
    switch (*end) {
    case 'd':
        unit = 86400;
        end++;
        break;
    case 'h':
        unit = 3600;
        end++;
        break;
    case 'm':
        unit = 60;
        end++;
        break;
    case 's': end++; break;
    case '\0': break;
    default: return tb_error_set(TB_EUSAGE, "an age is a number with s, m, h or d (26h)");
    }
    if (*end)
        return tb_error_set(TB_EUSAGE, "an age is a number with s, m, h or d (26h)");
    *ns = (int64_t)(v * (double)unit * 1e9);
    return 0;
}

void tb_catalog_age_format(char *buf, size_t len, int64_t ns)
{
    int64_t s = ns / 1000000000;
    if (s >= 86400)
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
}

/* The WAL archiver's state.tsv says when it last polled (the file's time) and, from newer
 * archivers, since when it may lack writes (the start of its last pass that read the WAL
 * to its end) with the bytes then unread. */
static int check_wal_lag(const char *wal_dir, int64_t now, int64_t max_lag)
{
    char *st = tb_fs_join(wal_dir, "state.tsv"), *text = NULL, *lag, a[32], b[32];
    struct stat sb;
    int rc = 0, seen = st && stat(st, &sb) == 0;
    int64_t ago = seen ? now - ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec) : 0, since = 0;
    unsigned long long bytes = 0;
    if (seen && tb_fs_read_file(st, &text, NULL) == 0 && (lag = strstr(text, "\nlag\t")) &&
        sscanf(lag, "\nlag\t%llu\t%" SCNd64, &bytes, &since) == 2 && since > 0 && now - since > ago)
        ago = now - since;
    if (!seen) {
        rc = tb_error_set(TB_EIO, "no WAL archiver has run in %s", wal_dir);
    } else if (ago > max_lag) {
        tb_catalog_age_format(a, sizeof a, ago);
        tb_catalog_age_format(b, sizeof b, max_lag);
        rc = tb_error_set(TB_EIO,
                          "the WAL archive is %s behind the live WAL (more than %s; %.1f MiB unread at its "
                          "last pass): %s",
                          a, b, (double)bytes / 1048576.0, wal_dir);
    }
    free(text);
    free(st);
    return rc;
}

int tb_catalog_check(struct tb_catalog_health *out, const char *root, const struct tb_catalog_check_opts *o)
{
    struct tb_catalog_entry *v = NULL;
    const struct tb_catalog_entry *good = NULL;
    size_t n = 0;
    char a[32], b[32];
    int rc = tb_catalog_list(root, &v, &n);
    memset(out, 0, sizeof *out);
    for (size_t i = 0; rc == 0 && i < n && !good; i++)
        if (v[i].verify_state >= 0)
            good = &v[i];
    if (rc == 0 && !good) {
        rc = tb_error_set(TB_EIO, "no good backup under %s", root);
    } else if (rc == 0 && o->now - good->created_ns > o->max_age) {
        tb_catalog_age_format(a, sizeof a, o->now - good->created_ns);
        tb_catalog_age_format(b, sizeof b, o->max_age);
        rc = tb_error_set(TB_EIO, "the newest good backup is %s old (more than %s): %s", a, b, good->dir);
    }
    if (rc == 0 && o->wal_dir)
        rc = check_wal_lag(o->wal_dir, o->now, o->max_wal_lag);
    if (rc == 0 && !(out->dir = strdup(good->dir)))
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc == 0) {
        out->age = o->now - good->created_ns;
        out->verify_state = good->verify_state;
        out->verify_quick = good->verify_quick;
    }
    tb_catalog_free(v, n);
    return rc;
}

void tb_catalog_health_clear(struct tb_catalog_health *h)
{
    free(h->dir);
    memset(h, 0, sizeof *h);
}
