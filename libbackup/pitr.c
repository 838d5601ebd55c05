/* pitr: one-command recovery as phases over one context: check the target, pick the base,
 * restore it beside the target, replay the WAL archive on it, publish it. */
#include "pitr.h"
#include "content.h"
#include "error.h"
#include "fs.h"
#include "restore.h"

#include <stdlib.h>
#include <string.h>

struct pitr {
    const struct tb_pitr_opts *o;
    struct tb_pitr_result *r;
    char *stage; /* the restored base beside the target, replayed there */
};

/* Phase 1: a target a restore would refuse is refused before anything is read. */
static int check_target(struct pitr *p)
{
    int empty;
    return tb_restore_may_replace(p->o->target, p->o->force, p->o->keep_old, &empty);
}

/* Phase 2: the newest backup before the time whose checksums verify. */
static int pick_base(struct pitr *p)
{
    const struct tb_pitr_opts *o = p->o;
    struct tb_restore_opts with = { .keys = o->keys };
    return tb_restore_pick(o->backup_root, o->target_ns, &with, o->prepare, o->skipped, o->arg, o->shown_root,
                           &p->r->base);
}

/* Phase 3: the base restored (verified) at a sibling of the target, so the last rename
 * stays on one filesystem. */
static int restore_base(struct pitr *p)
{
    struct tb_restore_opts ro = { 0 };
    int rc = tb_fs_temp_sibling(p->o->target, &p->stage);
    if (rc < 0)
        return rc;
    ro.backup_dir = p->r->base;
    ro.target = p->stage;
    ro.scratch = p->o->scratch;
    ro.keys = p->o->keys;
    return tb_restore_run(&ro, NULL);
}

/* Phase 4: the archive replayed up to the time; what the linked RocksDB cannot flush into,
 * the server's own applies from a WAL file. */
static int replay(struct pitr *p)
{
    const struct tb_pitr_opts *o = p->o;
    struct tb_replay_opts ro = { 0 };
    char *why = NULL;
    int rc = tb_content_writable(p->stage, &why);
    if (rc < 0)
        goto cleanup;
    p->r->as_wal_file = ro.as_wal_file = rc == 1;
    if (ro.as_wal_file && o->as_wal_file)
        o->as_wal_file(o->arg, why);
    ro.wal_dir = o->wal_dir;
    ro.keys = o->keys;
    ro.db_path = p->stage;
    ro.target_ns = o->target_ns;
    rc = tb_replay_run(&ro, &p->r->replay);
cleanup:
    free(why);
    return rc;
}

/* Phase 5: the recovered copy put at the target, as a restore puts its copy. */
static int publish(struct pitr *p)
{
    return tb_restore_publish(p->stage, p->o->target, p->o->force, p->o->keep_old);
}

int tb_pitr_recover(struct tb_pitr_result *r, const struct tb_pitr_opts *o)
{
    static int (*const phases[])(struct pitr *) = { check_target, pick_base, restore_base, replay, publish };
    struct pitr p = { .o = o, .r = r };
    int rc = 0;
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < sizeof phases / sizeof *phases && rc == 0; i++)
        rc = phases[i](&p);
    if (rc < 0 && p.stage)
        tb_fs_rm_rf(p.stage);
    free(p.stage);
    return rc;
}

void tb_pitr_result_clear(struct tb_pitr_result *r)
{
    free(r->base);
    r->base = NULL;
}
