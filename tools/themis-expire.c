/* themis-expire: retention. Removes backups older than --keep-days beyond the newest
 * --keep-min, never the newest one that verifies nor a parent a kept backup needs, and the
 * WAL segments no kept backup needs; in a directory or in S3. */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "progress.h"
#include "repo.h"
#include "restore.h"
#include "retention.h"
#include "s3opts.h"
#include "segment.h"
#include "timefmt.h"

static const char *root, *wal_dir, *progress_arg;
static long long keep_days = -1, keep_min = 3;
static int dry_run;
static struct tb_strlist key_file, pass_file;
static tb_keyring *keys;
static int64_t now;

static const struct tb_option opts[] = {
    TOOL_BACKUP_ROOT_OPTION(root, "the directory holding the backups (one per subdirectory), or s3://BUCKET/PREFIX"),
    TOOL_WAL_DIRECTORY_OPTION(wal_dir,
                              "also remove the WAL segments no kept backup needs (a directory or s3://BUCKET/PREFIX)"),
    { "keep-days", 0, TB_OPT_INT, &keep_days, "N", "keep every backup made in the last N days (required)" },
    { "keep-min", 0, TB_OPT_INT, &keep_min, "N", "keep at least the newest N backups, whatever their age (default 3)" },
    { "dry-run", 'n', TB_OPT_FLAG, &dry_run, NULL, "print what would be removed, remove nothing" },
    TOOL_KEY_OPTIONS(key_file, pass_file),
    TOOL_PROGRESS_OPTION(progress_arg, "the bytes downloaded and verified"),
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-expire",
    "--backup-root DIR|s3://B/P --keep-days N [--keep-min N] [--wal-directory DIR|s3://B/P] [--dry-run]",
    "Removes old backups and WAL segments, in directories or in S3 (AWS_* variables): never the newest backup that "
    "verifies, nor a backup a kept one builds on.",
    opts,
};

/* --progress: the bytes downloaded from S3 plus those of the candidate backups verified.
 * Each source restarts at 0 for every object or candidate; their sums only grow. */
static struct tb_progress prog;
static struct source {
    uint64_t base, last;
} downloaded, verified_bytes;

static void report(void)
{
    tb_progress_update(&prog, downloaded.base + downloaded.last + verified_bytes.base + verified_bytes.last);
}

static void count(void *arg, uint64_t bytes)
{
    struct source *s = arg;
    if (bytes < s->last)
        s->base += s->last;
    s->last = bytes;
    report();
}

/* The root and the WAL archive (tb_repo). In S3 the root is a local mirror of the
 * manifests: a candidate for the newest backup that verifies is downloaded when tried. A
 * download that fails for any other reason than a damaged or missing backup stops the run
 * before anything is removed. */
static tb_repo *repo, *wal;
static char *fetch_error;

static int prepare_candidate(const char *dir)
{
    int rc = tb_repo_prepare(repo, dir);
    if (rc < 0 && rc != TB_EVERIFY && !fetch_error)
        fetch_error = strdup(tb_error_last());
    return rc;
}

/* Where a segment is, as the user named its archive: "WAL/NAME". */
static void print_removed(const char *where, const char *name)
{
    size_t n = strlen(where);
    while (n > 1 && where[n - 1] == '/')
        n--;
    printf("%s %.*s/%s\n", dry_run ? "would remove" : "removed", (int)n, where, name);
}

/* What the run removes, all decided before the first removal: a failure removes nothing. */
struct plan {
    struct tb_catalog_entry *cat;
    enum tb_keep_reason *why;
    size_t n, kept;
    uint64_t oldest_base;
    struct tb_seg_info *segs;
    size_t nsegs, cut;
    int plan_wal;
};

static int decide(struct plan *p)
{
    const struct tb_retention policy = { now, keep_days, keep_min };
    const char *dir;
    char *verified = NULL;
    int rc;
    if ((rc = tb_repo_list(repo, &p->cat, &p->n)) < 0 || (rc = tb_repo_root(repo, &dir)) < 0)
        return rc;
    /* The newest backup whose checksums verify is never removed. */
    rc = tb_restore_pick(dir, INT64_MAX,
                         &(struct tb_restore_opts){
                             .keys = keys, .progress = progress_arg ? count : NULL, .progress_arg = &verified_bytes },
                         prepare_candidate, tool_skipped, (void *)cli.tool, tb_repo_location(repo), &verified);
    if (fetch_error)
        rc = tb_error_set(TB_EIO, "%s", fetch_error);
    else if (rc == 0 || rc == TB_EGAP)
        rc = tb_retention_decide(&p->why, &p->kept, &p->oldest_base, p->cat, p->n, verified, &policy);
    /* The WAL segments to remove: their names, from the archive's index. */
    p->plan_wal = wal && p->oldest_base != UINT64_MAX;
    if (rc == 0 && p->plan_wal)
        rc = tb_repo_wal_plan(wal, p->oldest_base, &p->segs, &p->nsegs, &p->cut);
    free(verified);
    return rc;
}

static int remove_backups(const struct plan *p)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const char *name = strrchr(p->cat[i].dir, '/') + 1;
        char *shown;
        if (p->why[i])
            continue;
        if (!(shown = tb_repo_shown(repo, name)))
            return tb_error_set(TB_EIO, "out of memory");
        printf("%s %s (created %s)\n", dry_run ? "would remove" : "removed", shown, p->cat[i].m->created);
        free(shown);
        if (!dry_run)
            rc = tb_repo_remove(repo, name);
    }
    return rc;
}

static int remove_wal(const struct plan *p)
{
    struct tb_seg_info *gone = NULL;
    size_t ngone = 0, left = p->nsegs - p->cut;
    int rc = 0;
    for (size_t i = 0; dry_run && i < p->cut; i++)
        print_removed(wal_dir, p->segs[i].name);
    if (!dry_run && p->cut) {
        rc = tb_repo_wal_drop(wal, p->segs, p->cut, &gone, &ngone);
        for (size_t i = 0; rc == 0 && i < ngone; i++)
            print_removed(wal_dir, gone[i].name);
    }
    if (rc == 0 && tb_retention_wal_starts_late(p->segs, p->nsegs, p->cut, p->oldest_base))
        printf("kept %zu WAL segment%s (from sequence %" PRIu64 ", where the archive begins: after the oldest kept "
               "backup's %" PRIu64 ", which this archive cannot bring forward)\n",
               left, left == 1 ? "" : "s", p->segs[p->cut].first_seq, p->oldest_base);
    else if (rc == 0)
        printf("kept %zu WAL segment%s (from sequence %" PRIu64 ", the oldest kept backup's %" PRIu64 " + 1 "
               "or an open Prepare before it)\n",
               left, left == 1 ? "" : "s", p->cut < p->nsegs ? p->segs[p->cut].first_seq : 0, p->oldest_base);
    free(gone);
    return rc;
}

/* Returns -1 to go on, else the exit status. */
static int check_options(int argc, char **argv)
{
    enum tb_progress_mode pmode;
    int status;
    if ((status = tool_parse_options(&cli, argc, argv)) >= 0)
        return status;
    if (!root)
        return tool_usage(&cli, "--backup-root is required");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &keys)) >= 0)
        return status;
    if (keep_days < 0)
        return tool_usage(&cli, "--keep-days N is required (the upgrade guide says 30)");
    if (keep_min < 1)
        return tool_usage(&cli, "--keep-min must be at least 1: the newest backup is always kept");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    tb_progress_start(&prog, pmode, stderr, "expire", 0);
    return -1;
}

int main(int argc, char **argv)
{
    struct plan p = { .oldest_base = UINT64_MAX };
    tb_progress_cb progress = NULL;
    int rc, status, finished = 0;

    now = tb_time_now_ns();
    if ((status = check_options(argc, argv)) >= 0)
        return status;
    tool_catch_signals();
    if (progress_arg)
        progress = count;
    if ((rc = tool_repo_open(&repo, root, keys, progress, &downloaded)) < 0 ||
        (wal_dir && (rc = tool_repo_open(&wal, wal_dir, keys, progress, &downloaded)) < 0) || (rc = decide(&p)) < 0)
        goto out;
    tb_progress_finish(&prog); /* the reading is done; the removals are printed */
    finished = 1;
    if ((rc = remove_backups(&p)) < 0)
        goto out;
    printf("kept %zu backup%s\n", p.kept, p.kept == 1 ? "" : "s");
    if (wal_dir && !p.plan_wal)
        printf("no backup kept: WAL segments left as they are\n");
    else if (wal_dir)
        rc = remove_wal(&p);
out:
    if (!finished)
        tb_progress_finish(&prog);
    free(p.segs);
    free(p.why);
    tb_catalog_free(p.cat, p.n);
    free(fetch_error);
    tb_repo_free(wal);
    tb_repo_free(repo);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
