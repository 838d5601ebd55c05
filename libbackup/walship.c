/* walship: closed WAL segments to a tar stream or a repository. */
#include "walship.h"
#include "error.h"
#include "fs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int add_if_present(tb_tar_writer *w, const char *dir, const char *name)
{
    char *path = tb_fs_join(dir, name);
    char sha[65];
    uint64_t size;
    unsigned mode;
    int rc = 0;
    if (!path)
        return tb_error_set(TB_EIO, "out of memory");
    if (tb_fs_exists(path))
        rc = tb_tar_add_file(w, name, path, &size, sha, &mode);
    free(path);
    return rc;
}

int tb_ship_tar(void *arg, const char *path, const struct tb_seg_info *s)
{
    struct tb_ship_tar *t = arg;
    uint64_t size;
    char sha[65];
    unsigned mode;
    int rc = tb_tar_add_file(t->w, s->name, path, &size, sha, &mode);
    if (rc == 0 && strcmp(sha, s->sha256) != 0)
        rc = tb_error_set(TB_EVERIFY, "segment %s changed while it was streamed", s->name);
    if (rc == 0)
        rc = add_if_present(t->w, t->dir, "index.tsv");
    if (rc == 0)
        rc = add_if_present(t->w, t->dir, "cf.tsv");
    if (rc == 0)
        unlink(path);
    return rc;
}

int tb_ship_push_catch_up(struct tb_ship_push *p)
{
    unsigned n = 0;
    int rc = tb_repo_wal_catch_up(p->repo, p->dir, &n);
    if (rc == 0 && n && p->told)
        p->told(p->arg, NULL, n, NULL);
    p->behind = rc < 0;
    return rc;
}

int tb_ship_push(void *arg, const char *path, const struct tb_seg_info *s)
{
    struct tb_ship_push *p = arg;
    int rc;
    (void)path;
    if (p->behind)
        rc = tb_ship_push_catch_up(p);
    else if ((rc = tb_repo_wal_push(p->repo, p->dir, s->name)) == 0 && p->told)
        p->told(p->arg, s->name, 1, NULL);
    /* A push cut by our own stop signal is no failure: the catch-up at the end sends it. */
    if (rc < 0 && !tb_interrupted && p->told)
        p->told(p->arg, NULL, 0, tb_error_last());
    if (rc < 0)
        p->behind = 1;
    return 0;
}
