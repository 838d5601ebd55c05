/* catalog: the backups under a root directory, newest first. */
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "timefmt.h"

#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
                v[(*n)++] = (struct tb_catalog_entry){ dir, m, t };
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
        goto out;
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
        rc = (text = strndup(data ? data : "", len)) ? tb_manifest_parse(text, epath, out) : tb_error_set(TB_EIO, "out of memory");
    }
    if (rc == 0 && (rc = tb_manifest_compare(redacted, *out)) < 0)
        rc = tb_error_wrap(rc, "%s differs from %s", mpath, TB_MANIFEST_ENC_NAME);
    if (rc == 0 && strcmp(redacted->archive_sha256, (*out)->archive_sha256))
        rc = tb_error_set(TB_EVERIFY, "%s differs from %s: archive.sha256", mpath, TB_MANIFEST_ENC_NAME);
    if (rc < 0) {
        tb_manifest_free(*out);
        *out = NULL;
    }
out:
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
        (res = json_string_value(json_object_get(o, "result"))) && (t = json_string_value(json_object_get(o, "time"))) &&
        tb_time_parse(t, when) == 0) {
        *state = strcmp(res, "ok") == 0 ? 1 : -1;
        *quick = json_is_true(json_object_get(o, "quick"));
    }
    json_decref(o);
    free(text);
    free(path);
    return 0;
}
