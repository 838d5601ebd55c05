/* repo: one handle on a location of backups and WAL archives, with a driver per kind: a
 * local directory, or an s3:// prefix (remote.c, wal/walremote.c). */
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archiver.h"
#include "error.h"
#include "fs.h"
#include "remote.h"
#include "segment.h"
#include "walremote.h"

struct driver {
    int (*root)(tb_repo *r, const char **dir);
    int (*prepare)(tb_repo *r, const char *dir);
    int (*remove)(tb_repo *r, const char *name);
    int (*backup)(tb_repo *r, const char **dir);
    int (*stream)(tb_repo *r, tb_stream **out);
    int (*dir)(tb_repo *r, const char **dir);
    int (*wal_push)(tb_repo *r, const char *dir, const char *name, unsigned *pushed);
    int (*wal_plan)(tb_repo *r, uint64_t base, struct tb_seg_info **segs, size_t *n, size_t *cut);
    int (*wal_drop)(tb_repo *r, const struct tb_seg_info *planned, size_t cut, struct tb_seg_info **gone,
                    size_t *ngone);
};

struct tb_repo {
    const struct driver *d;
    const char *scratch;
    struct tb_s3_config cfg;
    tb_keyring *keys;
    tb_progress_cb progress;
    void *progress_arg;
    uint64_t *progress_total;
    tb_s3 *s3; /* made at the first request */
    tb_remote_root *root; /* an S3 root's mirror */
    char *backup; /* an S3 backup's local copy (inside one of tmp) */
    char *wal; /* an S3 WAL archive's retention copy (one of tmp) */
    char **tmp; /* downloaded directories, removed by free */
    size_t ntmp;
    char location[]; /* and the scratch directory after it */
};

int tb_repo_is_remote(const char *location)
{
    return tb_s3_is_url(location);
}

/* Keeps dir (malloc'd) for removal by free; one that cannot be kept is removed now. */
static int keep_tmp(tb_repo *r, char *dir)
{
    char **v = realloc(r->tmp, (r->ntmp + 1) * sizeof *v);
    if (!v) {
        tb_fs_rm_rf(dir);
        free(dir);
        return tb_error_set(TB_EIO, "out of memory");
    }
    r->tmp = v;
    r->tmp[r->ntmp++] = dir;
    return 0;
}

/* ---- a local directory -------------------------------------------------------------- */

static int local_location(tb_repo *r, const char **dir)
{
    *dir = r->location;
    return 0;
}

static int local_prepare(tb_repo *r, const char *dir)
{
    (void)r;
    (void)dir;
    return 0;
}

static int local_remove(tb_repo *r, const char *name)
{
    char *dir = tb_fs_join(r->location, name);
    int rc = dir ? tb_fs_rm_rf(dir) : tb_error_set(TB_EIO, "out of memory");
    free(dir);
    return rc;
}

static int local_stream(tb_repo *r, tb_stream **out)
{
    return tb_stream_file(out, r->location, "r");
}

static int local_wal_push(tb_repo *r, const char *dir, const char *name, unsigned *pushed)
{
    (void)dir;
    (void)name;
    (void)pushed;
    return tb_error_set(TB_EUSAGE, "a WAL archive is pushed to an s3:// location, not to %s", r->location);
}

static int local_wal_plan(tb_repo *r, uint64_t base, struct tb_seg_info **segs, size_t *n, size_t *cut)
{
    int rc = tb_seg_index_load(r->location, r->keys, segs, n);
    if (rc == 0)
        rc = tb_wal_archive_unneeded_prefix(r->location, r->keys, *segs, *n, base, cut);
    return rc;
}

static int local_wal_drop(tb_repo *r, const struct tb_seg_info *planned, size_t cut, struct tb_seg_info **gone,
                          size_t *ngone)
{
    (void)planned;
    return tb_seg_index_drop_prefix(r->location, cut, gone, ngone);
}

static const struct driver local_driver = {
    local_location, local_prepare,  local_remove,   local_location, local_stream,
    local_location, local_wal_push, local_wal_plan, local_wal_drop,
};

/* ---- an s3:// prefix ---------------------------------------------------------------- */

static int client(tb_repo *r)
{
    int rc = r->s3 ? 0 : tb_s3_new(&r->s3, &r->cfg);
    if (rc == 0 && r->progress)
        tb_s3_set_progress(r->s3, r->progress, r->progress_arg, r->progress_total);
    return rc;
}

static int s3_root(tb_repo *r, const char **dir)
{
    int rc = 0;
    if (!r->root && ((rc = client(r)) < 0 || (rc = tb_remote_root_open(&r->root, r->s3, r->location, r->scratch)) < 0))
        return rc;
    *dir = tb_remote_root_dir(r->root);
    return 0;
}

static int s3_prepare(tb_repo *r, const char *dir)
{
    return r->root ? tb_remote_root_fetch(r->root, dir) : 0;
}

static int s3_remove(tb_repo *r, const char *name)
{
    const char *dir;
    int rc = s3_root(r, &dir);
    return rc < 0 ? rc : tb_remote_root_remove(r->root, name, NULL);
}

static int s3_backup(tb_repo *r, const char **dir)
{
    char *tmp = NULL;
    int rc = r->backup ? 0 : client(r);
    if (rc == 0 && !r->backup) {
        rc = tb_remote_fetch_backup(r->s3, r->location, r->scratch, &tmp, &r->backup);
        if (tmp && keep_tmp(r, tmp) < 0 && rc == 0)
            rc = TB_EIO;
    }
    *dir = rc == 0 ? r->backup : NULL;
    return rc;
}

static int s3_stream(tb_repo *r, tb_stream **out)
{
    int rc = client(r);
    return rc < 0 ? rc : tb_remote_reader(out, r->s3, r->location);
}

static int s3_dir(tb_repo *r, const char **dir)
{
    char *d = NULL;
    int rc = client(r);
    if (rc == 0 && (rc = tb_remote_fetch_dir(r->s3, r->location, r->scratch, &d)) == 0 && (rc = keep_tmp(r, d)) == 0)
        *dir = d;
    return rc;
}

static int s3_wal_push(tb_repo *r, const char *dir, const char *name, unsigned *pushed)
{
    int rc = client(r);
    if (rc < 0)
        return rc;
    return name ? tb_wal_remote_push_segment(r->s3, dir, r->keys, r->location, name)
                : tb_wal_remote_push_catch_up(r->s3, dir, r->keys, r->location, pushed);
}

static int s3_wal_plan(tb_repo *r, uint64_t base, struct tb_seg_info **segs, size_t *n, size_t *cut)
{
    char *d = NULL;
    int rc = client(r);
    if (rc == 0 && (rc = tb_remote_mkdtemp(r->scratch, &d)) == 0 && (rc = keep_tmp(r, d)) == 0) {
        r->wal = d;
        rc = tb_wal_remote_plan(r->s3, r->location, r->keys, d, base, segs, n, cut);
    }
    return rc;
}

static int s3_wal_drop(tb_repo *r, const struct tb_seg_info *planned, size_t cut, struct tb_seg_info **gone,
                       size_t *ngone)
{
    if (!r->wal)
        return tb_error_set(TB_EUSAGE, "no retention plan for %s", r->location);
    return tb_wal_remote_drop(r->s3, r->location, r->keys, r->wal, planned, cut, gone, ngone);
}

static const struct driver s3_driver = {
    s3_root, s3_prepare, s3_remove, s3_backup, s3_stream, s3_dir, s3_wal_push, s3_wal_plan, s3_wal_drop,
};

/* ---- the handle ------------------------------------------------------------------- */

int tb_repo_open(tb_repo **out, const char *location, const struct tb_repo_opts *o)
{
    const char *scratch = o && o->scratch ? o->scratch : "/tmp";
    tb_repo *r;
    *out = NULL;
    if (!location)
        return tb_error_set(TB_EUSAGE, "no repository location given");
    if (!(r = calloc(1, sizeof *r + strlen(location) + strlen(scratch) + 2)))
        return tb_error_set(TB_EIO, "out of memory");
    r->d = tb_repo_is_remote(location) ? &s3_driver : &local_driver;
    r->scratch = strcpy(stpcpy(r->location, location) + 1, scratch);
    if (o && o->s3)
        r->cfg = *o->s3;
    if (o) {
        r->keys = o->keys;
        r->progress = o->progress;
        r->progress_arg = o->progress_arg;
        r->progress_total = o->progress_total;
    }
    *out = r;
    return 0;
}

void tb_repo_free(tb_repo *r)
{
    if (!r)
        return;
    tb_remote_root_free(r->root);
    for (size_t i = 0; i < r->ntmp; i++) {
        tb_fs_rm_rf(r->tmp[i]);
        free(r->tmp[i]);
    }
    free(r->tmp);
    free(r->backup);
    tb_s3_free(r->s3);
    free(r);
}

int tb_repo_check(tb_repo *r)
{
    return r->d == &s3_driver ? client(r) : 0;
}

const char *tb_repo_location(const tb_repo *r)
{
    return r->location;
}

tb_keyring *tb_repo_keys(const tb_repo *r)
{
    return r->keys;
}

char *tb_repo_shown(const tb_repo *r, const char *name)
{
    size_t n = strlen(r->location);
    char *p = NULL;
    if (r->d == &local_driver)
        return tb_fs_join(r->location, name); /* as tb_catalog_list names it */
    while (n > 1 && r->location[n - 1] == '/')
        n--;
    if (asprintf(&p, "%.*s/%s", (int)n, r->location, name) < 0)
        p = NULL;
    return p;
}

int tb_repo_root(tb_repo *r, const char **dir)
{
    return r->d->root(r, dir);
}

int tb_repo_prepare(tb_repo *r, const char *dir)
{
    return r->d->prepare(r, dir);
}

int tb_repo_list(tb_repo *r, struct tb_catalog_entry **out, size_t *n)
{
    const char *dir;
    int rc = tb_repo_root(r, &dir);
    *out = NULL;
    *n = 0;
    if (rc == 0)
        rc = tb_catalog_list(dir, out, n);
    if (rc == 0 && !*n && r->d == &s3_driver)
        rc = tb_error_set(TB_ENOENT, "no backup under %s", r->location);
    return rc;
}

int tb_repo_remove(tb_repo *r, const char *name)
{
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return tb_error_set(TB_EUSAGE, "not a backup name: '%s'", name);
    return r->d->remove(r, name);
}

int tb_repo_backup(tb_repo *r, const char **dir)
{
    return r->d->backup(r, dir);
}

int tb_repo_stream(tb_repo *r, tb_stream **out)
{
    return r->d->stream(r, out);
}

int tb_repo_dir(tb_repo *r, const char **dir)
{
    return r->d->dir(r, dir);
}

int tb_repo_wal_push(tb_repo *r, const char *dir, const char *name)
{
    if (!name)
        return tb_error_set(TB_EUSAGE, "no segment to push");
    return r->d->wal_push(r, dir, name, NULL);
}

int tb_repo_wal_catch_up(tb_repo *r, const char *dir, unsigned *pushed)
{
    if (pushed)
        *pushed = 0;
    return r->d->wal_push(r, dir, NULL, pushed);
}

int tb_repo_wal_plan(tb_repo *r, uint64_t base, struct tb_seg_info **segs, size_t *n, size_t *cut)
{
    int rc;
    *segs = NULL;
    *n = *cut = 0;
    if ((rc = r->d->wal_plan(r, base, segs, n, cut)) < 0) {
        free(*segs);
        *segs = NULL;
        *n = *cut = 0;
    }
    return rc;
}

int tb_repo_wal_drop(tb_repo *r, const struct tb_seg_info *planned, size_t cut, struct tb_seg_info **gone,
                     size_t *ngone)
{
    *gone = NULL;
    *ngone = 0;
    return r->d->wal_drop(r, planned, cut, gone, ngone);
}
