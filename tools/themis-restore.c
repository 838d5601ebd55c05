/* themis-restore: verify a backup (--verify-only) or restore it into a target directory. */
#include "tool.h"

#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "pitr.h"
#include "progress.h"
#include "repo.h"
#include "restore.h"
#include "segment.h"
#include "catalog.h"
#include "s3opts.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>

static const char *backup_dir, *from, *target, *config_target, *owner, *progress_arg;
static const char *backup_root, *wal_dir, *target_time, *config_file;
static int verify_only, quick, force, verbose;

static long long prio_nice;
static const char *rate_arg;
static uint64_t rate_limit;
static const char *prio_io;
static struct tb_strlist key_file, pass_file;
static tb_keyring *keys;

static const struct tb_option opts[] = {
    { "backup-directory", 0, TB_OPT_STRING, &backup_dir, "DIR", "the backup to read (or s3://BUCKET/PREFIX)" },
    { "from", 0, TB_OPT_STRING, &from, "-", "read the backup stream from stdin (-) or an S3 object (s3://BUCKET/KEY)" },
    { "verify-only", 0, TB_OPT_FLAG, &verify_only, NULL, "check the backup and change nothing" },
    { "quick", 0, TB_OPT_FLAG, &quick, NULL, "with --verify-only: checksums only, skip restoring and opening the DB" },
    { "target", 0, TB_OPT_STRING, &target, "DIR",
      "restore the database here (ThemisDB's data directory: into its rocksdb/)" },
    TOOL_CONFIG_FILE_OPTION(config_file, " naming storage.rocksdb_path"),
    { "config-target", 0, TB_OPT_STRING, &config_target, "DIR", "also restore the backed-up config files here" },
    { "force", 0, TB_OPT_FLAG, &force, NULL, "replace a non-empty target" },
    { "owner", 0, TB_OPT_STRING, &owner, "USER", "give the restored files to USER (as root)" },
    TOOL_BACKUP_ROOT_OPTION(backup_root,
                            "with --target-time: pick the newest good backup under DIR (or s3://) made before it"),
    TOOL_WAL_DIRECTORY_OPTION(wal_dir, "with --target-time: the WAL archive to replay (or s3://)"),
    { "target-time", 0, TB_OPT_STRING, &target_time, "TIME",
      "one-command recovery: restore, then replay the WAL up to TIME" },
    TOOL_PROGRESS_OPTION(progress_arg, "progress"),
    TOOL_KEY_OPTIONS(key_file, pass_file),
    TOOL_RUN_OPTIONS(prio_nice, prio_io, rate_arg, verbose, "print a summary on stderr"),
};

static const struct tb_cli cli = {
    "themis-restore",
    "(--backup-directory DIR | --from -|s3://...) (--verify-only [--quick] | --target DIR)",
    "Verifies a themis-backup backup, or restores it into place after verifying it.",
    opts,
};

/* Where the backup, the backup root and the WAL archive are (tb_repo: a directory or
 * s3://); what was downloaded for them is removed at exit. A backup root in S3 is mirrored
 * manifests first, and a candidate's files come only when it is the one to try. */
static tb_repo *root_repo, *wal_repo, *backup_repo;

static void repos_free(void)
{
    tb_repo_free(root_repo);
    tb_repo_free(wal_repo);
    tb_repo_free(backup_repo);
}

static int prepare_candidate(const char *dir)
{
    return tb_repo_prepare(root_repo, dir);
}

/* One-command recovery (tb_pitr_recover): newest good backup before T, restored beside the
 * target, replayed to T there, then put into place. */
static const char *keep_old(void);

static void say_wal_file(void *arg, const char *why)
{
    fprintf(stderr,
            "%s: note: %s: the writes up to the target go into the database as a WAL file, which the "
            "server's own RocksDB applies when it opens it\n",
            (const char *)arg, why);
}

static void say_recovered(const struct tb_pitr_result *r)
{
    char t1[64];
    if (r->replay.reached_ts)
        tb_time_format(r->replay.reached_ts, t1, sizeof t1);
    else
        snprintf(t1, sizeof t1, "an unknown time");
    printf("recovered %s from %s: reached sequence %" PRIu64 " at %s, %" PRIu64 " batches %s\n", target, r->base,
           r->replay.reached_seq, t1, r->replay.batches,
           r->as_wal_file ? "in a WAL file the server applies" : "replayed");
}

static int recover(void)
{
    struct tb_pitr_opts o = { .target = target,
                              .force = force,
                              .keep_old = keep_old(),
                              .scratch = tool_tmpdir(),
                              .keys = keys,
                              .prepare = prepare_candidate,
                              .skipped = tool_skipped,
                              .as_wal_file = say_wal_file,
                              .arg = (void *)cli.tool };
    struct tb_pitr_result r;
    int rc, empty;
    if ((rc = tb_time_parse(target_time, &o.target_ns)) < 0)
        return rc;
    /* Before anything is fetched (tb_pitr_recover checks it again). */
    if ((rc = tb_restore_may_replace(target, force, keep_old(), &empty)) < 0)
        return rc;
    if ((rc = tool_repo_open(&root_repo, backup_root, keys, NULL, NULL)) < 0 ||
        (rc = tb_repo_root(root_repo, &backup_root)) < 0 ||
        (rc = tool_repo_open(&wal_repo, wal_dir, keys, NULL, NULL)) < 0 || (rc = tb_repo_dir(wal_repo, &wal_dir)) < 0)
        return rc;
    o.backup_root = backup_root;
    o.shown_root = tb_repo_location(root_repo);
    o.wal_dir = wal_dir;
    if ((rc = tb_pitr_recover(&r, &o)) == 0)
        say_recovered(&r);
    tb_pitr_result_clear(&r);
    return rc;
}

/* ThemisDB's data directory given as --target: the database goes into its rocksdb/
 * (tb_restore_target_map). Returns -1 to go on, else the exit status. */
static struct tb_restore_target where;

static int map_target(void)
{
    int rc = tb_restore_target_map(&where, target, config_file, force, time(NULL));
    if (rc < 0)
        return tool_fail(&cli, rc);
    target = where.target;
    return -1;
}

/* Where a data directory's old database goes (NULL: nowhere, refuse or --force). */
static const char *keep_old(void)
{
    return where.keep_old;
}

/* Said after a restore into a data directory, since it is not the directory the user
 * typed (a failure names the rocksdb/ path in its one line). */
static void say_mapped(void)
{
    if (where.data_dir && where.had_old)
        fprintf(stderr,
                "%s: note: %s is ThemisDB's data directory: restored the database into %s; the database "
                "that was there is kept as %s; nothing else in it was changed\n",
                cli.tool, where.data_dir, target, where.keep_old);
    else if (where.data_dir)
        fprintf(stderr,
                "%s: note: %s is ThemisDB's data directory: restored the database into %s; "
                "nothing else in it was changed\n",
                cli.tool, where.data_dir, target);
}

/* --target-time: recovery instead of a restore. */
static int main_recover(void)
{
    int rc, status;
    if (!target_time || !backup_root || !wal_dir || !target || backup_dir || from || verify_only)
        return tool_usage(&cli,
                          "one-command recovery takes --backup-root, --wal-directory, --target-time and --target");
    if ((status = map_target()) >= 0)
        return status;
    rc = recover();
    if (rc == 0)
        say_mapped();
    repos_free();
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}

/* The rules between a restore's options, and --owner's user. Returns -1 to go on, else
 * the exit status. */
static int check_restore_options(struct tb_restore_opts *o, enum tb_progress_mode *pmode)
{
    struct passwd *pw;
    if (!backup_dir == !from)
        return tool_usage(&cli, "give exactly one of --backup-directory DIR and --from -");
    if (from && strcmp(from, "-") != 0 && !tb_repo_is_remote(from))
        return tool_usage(&cli, "--from takes - (stdin) or s3://BUCKET/KEY; use --backup-directory for a directory");
    if (!verify_only == !target)
        return tool_usage(&cli, "give exactly one of --verify-only and --target DIR");
    if (quick && !verify_only)
        return tool_usage(&cli, "--quick goes with --verify-only");
    if (tb_progress_parse(progress_arg, pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (!owner)
        return -1;
    if (!(pw = getpwnam(owner))) {
        fprintf(stderr, "%s: unknown user '%s'\n", cli.tool, owner);
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "%s: --owner needs root\n", cli.tool);
        return 2;
    }
    o->set_owner = 1;
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    return -1;
}

/* The result of a verification goes into a local backup directory, for --list and
 * --check-age (not a missing or wrong key: that says nothing about the backup). */
static void record_verify(int rc)
{
    char *msg = rc < 0 ? strdup(tb_error_last()) : NULL;
    if (tb_catalog_record_verify(backup_dir, rc, quick, msg) < 0 && rc == 0)
        fprintf(stderr, "%s: note: verified, but could not record it in %s: %s\n", cli.tool, backup_dir,
                tb_error_last());
    if (msg)
        tb_error_set(rc, "%s", msg); /* the verification's error is the one to report */
    free(msg);
}

static void say_restored(const struct tb_manifest *m)
{
    if (m->hash_unavailable && verify_only && !quick)
        fprintf(stderr,
                "%s: note: files verified by their checksums; the content was not compared: the backup "
                "has no content hash (%s)\n",
                cli.tool, m->hash_unavailable);
    if (!verify_only)
        say_mapped();
    if (verbose)
        fprintf(stderr, "%s: %s: %zu files, sequence %" PRIu64 ", content hash %s%s\n", cli.tool,
                verify_only ? (quick ? "checksums verified" : "verified") : "restored", m->nfiles, m->last_seq,
                m->content_hash[0] ? m->content_hash : "unavailable",
                !verify_only
                    ? " (recorded; the files' SHA-256 and the RocksDB MANIFEST checked; --verify-only compares it)"
                    : quick ? " (not opened: --quick)"
                            : " (opened and matched)");
}

static int main_restore(void)
{
    struct tb_restore_opts o = { 0 };
    struct tb_manifest *m = NULL;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    tb_stream *in = NULL;
    int rc, status;
    int local_dir = 0;

    if ((status = check_restore_options(&o, &pmode)) >= 0)
        return status;
    if (target && (status = map_target()) >= 0)
        return status;
    if (from && strcmp(from, "-") == 0 && (rc = tb_stream_fd(&in, 0, 0, "stdin")) < 0)
        return tool_fail(&cli, rc);
    /* (--from is - or s3://, checked above) */
    if (from && strcmp(from, "-") != 0 &&
        ((rc = tool_repo_open(&backup_repo, from, keys, NULL, NULL)) < 0 ||
         (rc = tb_repo_stream(backup_repo, &in)) < 0)) {
        repos_free();
        return tool_fail(&cli, rc);
    }
    local_dir = backup_dir && !tb_repo_is_remote(backup_dir);
    if (backup_dir &&
        ((rc = tool_repo_open(&backup_repo, backup_dir, keys, NULL, NULL)) < 0 ||
         (rc = tb_repo_backup(backup_repo, &backup_dir)) < 0)) {
        repos_free();
        return tool_fail(&cli, rc);
    }
    o.backup_dir = backup_dir;
    o.in = in;
    o.target = target;
    o.config_target = config_target;
    o.scratch = tool_tmpdir();
    o.verify_only = verify_only;
    o.keys = keys;
    o.rate_limit = rate_limit;
    o.quick = quick;
    o.force = force;
    o.keep_old = keep_old();
    tb_progress_start(&prog, pmode, stderr, verify_only ? "verify" : "restore", 0);
    o.progress = tb_progress_update;
    o.progress_arg = &prog;
    o.progress_total = &prog.total;
    rc = tb_restore_run(&o, &m);
    tb_progress_finish(&prog);
    if (verify_only && local_dir && rc != TB_EUSAGE && rc != TB_EKEY)
        record_verify(rc);
    if (rc == 0)
        say_restored(m);
    tb_manifest_free(m);
    tb_stream_free(in);
    repos_free();
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}

int main(int argc, char **argv)
{
    int argi, status;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if ((status = tool_priority(&cli, prio_nice, prio_io)) >= 0)
        return status;
    if ((status = tool_rate_limit(&cli, rate_arg, &rate_limit)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &keys)) >= 0)
        return status;
    status = target_time || backup_root || wal_dir ? main_recover() : main_restore();
    tb_restore_target_clear(&where);
    return status;
}
