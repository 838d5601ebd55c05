/* themis-expire: retention. Removes backups older than --keep-days beyond the newest
 * --keep-min, never the newest one that verifies nor a parent a kept backup needs, and the
 * WAL segments no kept backup needs; in a directory or in S3. */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "archiver.h"
#include "catalog.h"
#include "fs.h"
#include "manifest.h"
#include "progress.h"
#include "remote.h"
#include "restore.h"
#include "s3opts.h"
#include "segment.h"
#include "timefmt.h"

static const char *root, *wal_dir, *progress_arg;
static long long keep_days = -1, keep_min = 3;
static int dry_run;
static struct tb_strlist key_file, pass_file;
static tb_keyring *keys;

static const struct tb_option opts[] = {
    { "backup-root", 0, TB_OPT_STRING, &root, "DIR", "the directory holding the backups (one per subdirectory), or s3://BUCKET/PREFIX" },
    { "wal-directory", 0, TB_OPT_STRING, &wal_dir, "DIR", "also remove the WAL segments no kept backup needs (a directory or s3://BUCKET/PREFIX)" },
    { "keep-days", 0, TB_OPT_INT, &keep_days, "N", "keep every backup made in the last N days (required)" },
    { "keep-min", 0, TB_OPT_INT, &keep_min, "N", "keep at least the newest N backups, whatever their age (default 3)" },
    { "dry-run", 'n', TB_OPT_FLAG, &dry_run, NULL, "print what would be removed, remove nothing" },
    TOOL_KEY_OPTIONS(key_file, pass_file),
    { "progress", 0, TB_OPT_OPTSTRING, &progress_arg, "json", "show the bytes downloaded and verified on stderr (a line, or JSON lines)" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-expire", "--backup-root DIR|s3://B/P --keep-days N [--keep-min N] [--wal-directory DIR|s3://B/P] [--dry-run]",
    "Removes old backups and WAL segments, in directories or in S3 (AWS_* variables): never the newest backup that "
    "verifies, nor a backup a kept one builds on.",
    opts,
};

struct backup {
    struct tb_catalog_entry *e;
    int keep;
    const char *why;
};

/* Keeps the ancestors of kept incremental backups (found by their archive hash): the whole
 * chain, since restore walks it parent by parent to the files it needs (an encrypted
 * backup's manifest does not even say which). */
static void keep_parents(struct backup *v, size_t n)
{
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            const char *id = v[i].e->m->parent_sha256;
            if (!v[i].keep || !v[i].e->m->parent_path)
                continue;
            for (size_t j = 0; j < n; j++)
                if (!v[j].keep && strcmp(v[j].e->m->archive_sha256, id) == 0) {
                    v[j].keep = 1;
                    v[j].why = "a kept backup builds on it";
                    changed = 1;
                }
        }
    }
}

/* In S3 the root is a local mirror of the manifests (tb_remote_root): a candidate for the
 * newest backup that verifies is downloaded when tried. A download that fails for any other
 * reason than a damaged or missing backup stops the run before anything is removed. */
static tb_s3 *s3;
static tb_remote_root *remote;

/* --progress: the bytes downloaded from S3 plus those of the candidate backups verified.
 * Each source restarts at 0 for every object or candidate; their sums only grow. */
static struct tb_progress prog;
static struct source { uint64_t base, last; } downloaded, verified_bytes;

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

static int s3_client(void)
{
    int rc = s3 ? 0 : tool_s3_new(&s3);
    if (rc == 0 && progress_arg)
        tb_s3_set_progress(s3, count, &downloaded, NULL);
    return rc;
}
static char *fetch_error;

static int prepare_candidate(const char *dir)
{
    int rc = tb_remote_root_fetch(remote, dir);
    if (rc < 0 && rc != TB_EVERIFY && !fetch_error)
        fetch_error = strdup(tb_error_last());
    return rc;
}

/* Where a backup or segment is, as the user named its root: "ROOT/NAME". */
static void print_removed(const char *where, const char *name, const char *created)
{
    size_t n = strlen(where);
    while (n > 1 && where[n - 1] == '/')
        n--;
    printf("%s %.*s/%s", dry_run ? "would remove" : "removed", (int)n, where, name);
    if (created)
        printf(" (created %s)", created);
    putchar('\n');
}

/* The WAL segments to remove, found before anything is removed: their names, from the index
 * of a local archive or of one in S3 (then downloaded into *scratch_dir). */
static int wal_plan(uint64_t base, char **scratch_dir, struct tb_seg_info **segs, size_t *nsegs, size_t *cut)
{
    int rc;
    if (tb_s3_is_url(wal_dir)) {
        if ((rc = s3_client()) < 0)
            return rc;
        return tb_remote_wal_plan(s3, wal_dir, keys, tool_tmpdir(), base, scratch_dir, segs, nsegs, cut);
    }
    if ((rc = tb_seg_index_load(wal_dir, keys, segs, nsegs)) == 0)
        rc = tb_archive_unneeded_prefix(wal_dir, keys, *segs, *nsegs, base, cut);
    return rc;
}

int main(int argc, char **argv)
{
    struct backup *v = NULL;
    struct tb_catalog_entry *cat = NULL;
    struct tb_seg_info *segs = NULL, *gone = NULL;
    size_t n = 0, kept = 0, nsegs = 0, cut = 0, ngone = 0;
    char *verified = NULL, *wal_scratch = NULL;
    const char *dir;
    int argi, rc, status, plan_wal = 0, finished = 0;
    int64_t now = tb_time_now_ns();
    uint64_t oldest_base = UINT64_MAX;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (!root)
        return tool_usage(&cli, "--backup-root is required");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &keys)) >= 0)
        return status;
    if (keep_days < 0)
        return tool_usage(&cli, "--keep-days N is required (the upgrade guide says 30)");
    if (keep_min < 1)
        return tool_usage(&cli, "--keep-min must be at least 1: the newest backup is always kept");
    {
        enum tb_progress_mode pmode;
        if (tb_progress_parse(progress_arg, &pmode) < 0)
            return tool_fail(&cli, TB_EUSAGE);
        tb_progress_start(&prog, pmode, stderr, "expire", 0);
    }
    tool_catch_signals();
    dir = root;
    if (tb_s3_is_url(root)) {
        if ((rc = s3_client()) < 0 || (rc = tb_remote_root_open(&remote, s3, root, tool_tmpdir())) < 0)
            goto out;
        dir = tb_remote_root_dir(remote);
    }
    if ((rc = tb_catalog_list(dir, &cat, &n)) < 0)
        goto out;
    if (remote && !n) {
        rc = tb_error_set(TB_ENOENT, "no backup under %s", root);
        goto out;
    }
    if (n && !(v = calloc(n, sizeof *v))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        v[i].e = &cat[i];
    /* The newest backup whose checksums verify is never removed. */
    rc = tb_restore_pick(dir, INT64_MAX,
                         &(struct tb_restore_opts){ .keys = keys, .progress = progress_arg ? count : NULL,
                                                    .progress_arg = &verified_bytes },
                         remote ? prepare_candidate : NULL, tool_skipped, (void *)cli.tool,
                         remote ? root : NULL, &verified);
    if (fetch_error) {
        rc = tb_error_set(TB_EIO, "%s", fetch_error);
        goto out;
    }
    if (rc < 0 && rc != TB_EGAP)
        goto out;
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (verified && strcmp(v[i].e->dir, verified) == 0) {
            v[i].keep = 1;
            v[i].why = "the newest backup that verifies";
        } else if ((long long)i < keep_min) {
            v[i].keep = 1;
            v[i].why = "among the newest --keep-min";
        } else if (now - v[i].e->created_ns <= keep_days * 86400LL * 1000000000LL) {
            v[i].keep = 1;
            v[i].why = "younger than --keep-days";
        }
    }
    keep_parents(v, n);
    for (size_t i = 0; i < n; i++)
        if (v[i].keep) {
            kept++;
            if (v[i].e->m->last_seq < oldest_base)
                oldest_base = v[i].e->m->last_seq;
        }
    /* Everything is read and decided before the first removal: a failure removes nothing. */
    plan_wal = wal_dir && oldest_base != UINT64_MAX;
    if (plan_wal && (rc = wal_plan(oldest_base, &wal_scratch, &segs, &nsegs, &cut)) < 0)
        goto out;
    tb_progress_finish(&prog); /* the reading is done; the removals are printed */
    finished = 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = strrchr(v[i].e->dir, '/');
        if (v[i].keep)
            continue;
        if (remote)
            print_removed(root, name + 1, v[i].e->m->created);
        else
            printf("%s %s (created %s)\n", dry_run ? "would remove" : "removed", v[i].e->dir, v[i].e->m->created);
        if (dry_run)
            continue;
        if ((rc = remote ? tb_remote_root_remove(remote, name + 1, NULL) : tb_fs_rm_rf(v[i].e->dir)) < 0)
            goto out;
    }
    printf("kept %zu backup%s\n", kept, kept == 1 ? "" : "s");
    if (wal_dir && !plan_wal) {
        printf("no backup kept: WAL segments left as they are\n");
        goto out;
    }
    if (!wal_dir)
        goto out;
    for (size_t i = 0; dry_run && i < cut; i++)
        print_removed(wal_dir, segs[i].name, NULL);
    if (!dry_run && cut) {
        rc = wal_scratch ? tb_remote_wal_drop(s3, wal_dir, keys, wal_scratch, segs, cut, &gone, &ngone)
                         : tb_seg_index_drop_prefix(wal_dir, cut, &gone, &ngone);
        for (size_t i = 0; rc == 0 && i < ngone; i++)
            print_removed(wal_dir, gone[i].name, NULL);
    }
    if (rc == 0 && cut < nsegs && segs[cut].first_seq > oldest_base + 1)
        printf("kept %zu WAL segment%s (from sequence %" PRIu64 ", where the archive begins: after the oldest kept "
               "backup's %" PRIu64 ", which this archive cannot bring forward)\n", nsegs - cut,
               nsegs - cut == 1 ? "" : "s", segs[cut].first_seq, oldest_base);
    else if (rc == 0)
        printf("kept %zu WAL segment%s (from sequence %" PRIu64 ", the oldest kept backup's %" PRIu64 " + 1 "
               "or an open Prepare before it)\n", nsegs - cut, nsegs - cut == 1 ? "" : "s",
               cut < nsegs ? segs[cut].first_seq : 0, oldest_base);
out:
    if (!finished)
        tb_progress_finish(&prog);
    if (wal_scratch)
        tb_fs_rm_rf(wal_scratch);
    free(wal_scratch);
    free(segs);
    free(gone);
    tb_catalog_free(cat, n);
    free(v);
    free(verified);
    free(fetch_error);
    tb_remote_root_free(remote);
    tb_s3_free(s3);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
