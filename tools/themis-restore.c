/* themis-restore: verify a backup (--verify-only) or restore it into a target directory. */
#include "tool.h"

#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "progress.h"
#include "replay.h"
#include "restore.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>

static const char *backup_dir, *from, *target, *config_target, *owner, *progress_arg;
static const char *backup_root, *wal_dir, *target_time;
static int verify_only, quick, force, verbose;

static const struct tb_option opts[] = {
    { "backup-directory", 0, TB_OPT_STRING, &backup_dir, "DIR", "the backup to read" },
    { "from", 0, TB_OPT_STRING, &from, "-", "read the backup stream from stdin instead" },
    { "verify-only", 0, TB_OPT_FLAG, &verify_only, NULL, "check the backup and change nothing" },
    { "quick", 0, TB_OPT_FLAG, &quick, NULL, "with --verify-only: checksums only, skip restoring and opening the DB" },
    { "target", 0, TB_OPT_STRING, &target, "DIR", "restore the database here" },
    { "config-target", 0, TB_OPT_STRING, &config_target, "DIR", "also restore the backed-up config files here" },
    { "force", 0, TB_OPT_FLAG, &force, NULL, "replace a non-empty target" },
    { "owner", 0, TB_OPT_STRING, &owner, "USER", "give the restored files to USER (as root)" },
    { "backup-root", 0, TB_OPT_STRING, &backup_root, "DIR", "with --target-time: pick the newest good backup under DIR made before it" },
    { "wal-directory", 0, TB_OPT_STRING, &wal_dir, "DIR", "with --target-time: the WAL archive to replay" },
    { "target-time", 0, TB_OPT_STRING, &target_time, "TIME", "one-command recovery: restore, then replay the WAL up to TIME" },
    { "progress", 0, TB_OPT_OPTSTRING, &progress_arg, "json", "show progress on stderr (a line, or JSON lines)" },
    { "verbose", 'v', TB_OPT_FLAG, &verbose, NULL, "print a summary on stderr" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-restore", "(--backup-directory DIR | --from -) (--verify-only [--quick] | --target DIR)",
    "Verifies a themis-backup backup, or restores it into place after verifying it.",
    opts,
};

/* The newest backup under root created at or before t whose checksums verify. */
static int pick_backup(const char *root, int64_t t, char **out)
{
    DIR *d = opendir(root);
    struct dirent *e;
    char *best = NULL;
    int64_t best_t = 0;
    int tried = 0;
    if (!d)
        return tb_error_errno(TB_ENOENT, errno, "cannot read backup root %s", root);
    /* Candidates newest first: find the newest, check it; on failure exclude and repeat. */
    for (;;) {
        char *cand = NULL;
        int64_t cand_t = 0;
        rewinddir(d);
        while ((e = readdir(d)) != NULL) {
            char *dir, *mpath, *text = NULL;
            struct tb_manifest *m = NULL;
            int64_t ct;
            if (e->d_name[0] == '.')
                continue;
            dir = tb_fs_join(root, e->d_name);
            mpath = tb_fs_join(dir, "MANIFEST.json");
            if (mpath && tb_fs_read_file(mpath, &text, NULL) == 0 && tb_manifest_parse(text, mpath, &m) == 0 &&
                m->created && tb_time_parse(m->created, &ct) == 0 && ct <= t &&
                (!best || ct < best_t || (ct == best_t && strcmp(dir, best) < 0)) && (!cand || ct > cand_t)) {
                free(cand);
                cand = dir;
                dir = NULL;
                cand_t = ct;
            }
            tb_manifest_free(m);
            free(text);
            free(mpath);
            free(dir);
        }
        if (!cand)
            break;
        struct tb_restore_opts ro = { 0 };
        ro.backup_dir = cand;
        ro.verify_only = 1;
        ro.quick = 1;
        tried++;
        if (tb_restore_run(&ro, NULL) == 0) {
            free(best);
            closedir(d);
            *out = cand;
            return 0;
        }
        fprintf(stderr, "%s: skipping %s: %s\n", cli.tool, cand, tb_error_last());
        free(best);
        best = cand;
        best_t = cand_t;
    }
    free(best);
    closedir(d);
    return tb_error_set(TB_EGAP, "no %sbackup under %s was made before the target time", tried ? "good " : "", root);
}

/* One-command recovery: newest good backup before T, restored beside the target, replayed
 * to T there, then renamed into place. */
static int recover(void)
{
    struct tb_restore_opts o = { 0 };
    struct tb_replay_opts ro = { 0 };
    struct tb_replay_result res;
    char *base = NULL, *stage = NULL, t1[64];
    int64_t t;
    int rc, empty;
    if ((rc = tb_time_parse(target_time, &t)) < 0)
        return rc;
    if ((rc = tb_fs_is_empty_dir(target, &empty)) < 0)
        return rc;
    if (!empty && !force)
        return tb_error_set(TB_EIO, "target is not empty (use --force to replace it) (%s)", target);
    if ((rc = pick_backup(backup_root, t, &base)) < 0)
        return rc;
    if ((rc = tb_fs_temp_sibling(target, &stage)) < 0)
        goto cleanup;
    o.backup_dir = base;
    o.target = stage;
    o.scratch = tool_tmpdir();
    if ((rc = tb_restore_run(&o, NULL)) < 0)
        goto cleanup;
    ro.wal_dir = wal_dir;
    ro.db_path = stage;
    ro.target_ns = t;
    if ((rc = tb_replay_run(&ro, &res)) < 0)
        goto cleanup;
    if (!empty) {
        char *old = NULL;
        if ((rc = tb_fs_temp_sibling(target, &old)) == 0 && rename(target, old) == 0) {
            rc = tb_fs_publish(stage, target);
            if (rc == 0)
                tb_fs_rm_rf(old);
            else
                rename(old, target);
        } else if (rc == 0) {
            rc = tb_error_errno(TB_EIO, errno, "cannot move %s aside", target);
        }
        free(old);
    } else {
        if (tb_fs_exists(target))
            rmdir(target);
        rc = tb_fs_publish(stage, target);
    }
    if (rc == 0) {
        tb_time_format(res.reached_ts, t1, sizeof t1);
        printf("recovered %s from %s: reached sequence %" PRIu64 " at %s, %" PRIu64 " batches replayed\n", target, base,
               res.reached_seq, t1, res.batches);
    }
cleanup:
    if (rc < 0 && stage)
        tb_fs_rm_rf(stage);
    free(stage);
    free(base);
    return rc;
}

int main(int argc, char **argv)
{
    struct tb_restore_opts o = { 0 };
    struct tb_manifest *m = NULL;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    tb_stream *in = NULL;
    int argi, rc, status;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (target_time || backup_root || wal_dir) {
        if (!target_time || !backup_root || !wal_dir || !target || backup_dir || from || verify_only)
            return tool_usage(&cli, "one-command recovery takes --backup-root, --wal-directory, --target-time and --target");
        tool_catch_signals();
        rc = recover();
        return rc < 0 ? tool_fail(&cli, rc) : 0;
    }
    if (!backup_dir == !from)
        return tool_usage(&cli, "give exactly one of --backup-directory DIR and --from -");
    if (from && strcmp(from, "-") != 0)
        return tool_usage(&cli, "--from takes only - (stdin); use --backup-directory for a directory");
    if (!verify_only == !target)
        return tool_usage(&cli, "give exactly one of --verify-only and --target DIR");
    if (quick && !verify_only)
        return tool_usage(&cli, "--quick goes with --verify-only");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (owner) {
        struct passwd *pw = getpwnam(owner);
        if (!pw) {
            fprintf(stderr, "%s: unknown user '%s'\n", cli.tool, owner);
            return 2;
        }
        if (geteuid() != 0) {
            fprintf(stderr, "%s: --owner needs root\n", cli.tool);
            return 2;
        }
        o.set_owner = 1;
        o.uid = pw->pw_uid;
        o.gid = pw->pw_gid;
    }
    if (from && (rc = tb_stream_fd(&in, 0, 0, "stdin")) < 0)
        return tool_fail(&cli, rc);
    o.backup_dir = backup_dir;
    o.in = in;
    o.target = target;
    o.config_target = config_target;
    o.scratch = tool_tmpdir();
    o.verify_only = verify_only;
    o.quick = quick;
    o.force = force;
    tb_progress_start(&prog, pmode, stderr, verify_only ? "verify" : "restore", 0);
    o.progress = tb_progress_update;
    o.progress_arg = &prog;
    o.progress_total = &prog.total;
    rc = tb_restore_run(&o, &m);
    tb_progress_finish(&prog);
    if (rc == 0 && verbose)
        fprintf(stderr, "%s: %s: %zu files, sequence %" PRIu64 ", content hash %s%s\n", cli.tool,
                verify_only ? (quick ? "checksums verified" : "verified") : "restored", m->nfiles,
                m->last_seq, m->content_hash, verify_only && quick ? " (not opened: --quick)" : " (opened and matched)");
    tb_manifest_free(m);
    tb_stream_free(in);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
