/* themis-wal-archive: copy every committed WAL record of a ThemisDB into a WAL archive,
 * once or following, or check an archive. */
#include "timefmt.h"
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "archiver.h"
#include "tar.h"
#include "config.h"
#include "fs.h"
#include "progress.h"
#include "repo.h"
#include "walship.h"
#include "s3opts.h"

static const char *db_path, *wal_dir, *push_url, *progress_arg, *policy_arg, *db_wal_dir;
static int once, follow, check, verbose, to_stdout;
static long long interval_ms = 200, segment_size = 64ll << 20, segment_seconds = 300, level = 3, warn_lag = 64ll << 20;

static long long prio_nice;
static const char *prio_io;
static struct tb_strlist key_file, pass_file;
static int encrypt;

static const struct tb_option opts[] = {
    TOOL_DATABASE_PATH_OPTION(db_path, "the RocksDB directory (default " TB_THEMIS_DB_PATH ")"),
    TOOL_WAL_DIRECTORY_OPTION(wal_dir, "the WAL archive (created if missing)"),
    TOOL_DB_WAL_DIR_OPTION(db_wal_dir,
                           "where the database keeps its WAL files (RocksDB wal_dir), when not "
                           "--database-path"),
    { "once", 0, TB_OPT_FLAG, &once, NULL, "archive everything new, close the segment, exit" },
    { "follow", 0, TB_OPT_FLAG, &follow, NULL, "keep following the WAL until SIGINT/SIGTERM" },
    { "interval", 0, TB_OPT_INT, &interval_ms, "MS", "with --follow: poll every MS milliseconds (default 200)" },
    { "segment-size", 0, TB_OPT_INT, &segment_size, "N", "close a segment at N bytes (default 64M)" },
    { "warn-lag", 0, TB_OPT_INT, &warn_lag, "N",
      "with --follow: say so on stderr when N bytes of WAL wait to be archived, again at each doubling (default 64M)" },
    { "segment-seconds", 0, TB_OPT_INT, &segment_seconds, "S", "close a segment after S seconds (default 300)" },
    TOOL_COMPRESS_LEVEL_OPTION(level, " of segments"),
    { "stdout", 0, TB_OPT_FLAG, &to_stdout, NULL,
      "instead of an archive directory: write each closed segment, index.tsv and cf.tsv to stdout as a tar stream" },
    { "push", 0, TB_OPT_STRING, &push_url, "s3://BUCKET/PREFIX",
      "with --wal-directory: also copy each closed segment, then index.tsv and cf.tsv, there (AWS_* variables)" },
    TOOL_WRITE_POLICY_OPTION(policy_arg, "the writer's",
                             "what the archive recorded, else what the WAL's first telling record shows"),
    { "check", 0, TB_OPT_FLAG, &check, NULL,
      "verify the archive (checksums, continuity, index, cf.tsv, state.tsv) without the database" },
    TOOL_SEAL_OPTIONS(encrypt, key_file, pass_file, "seal each closed segment"),
    TOOL_PROGRESS_OPTION(progress_arg, "the bytes of WAL read"),
    TOOL_PRIORITY_OPTIONS(prio_nice, prio_io),
    TOOL_VERBOSE_OPTION(verbose, "print what was archived on stderr"),
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-wal-archive",
    "(--wal-directory DIR | --stdout) (--once | --follow | --check) [--database-path DIR]",
    "Archives every committed WAL record of a ThemisDB RocksDB, checking sequence continuity.",
    opts,
};

/* --push: what the pusher tells. Without --follow the end is near: its one error line says it all. */
static void told(void *arg, const char *name, unsigned n, const char *err)
{
    (void)arg;
    if (err && follow)
        fprintf(stderr, "%s: push failed, retrying at the next segment: %s\n", cli.tool, err);
    else if (!err && verbose && name)
        fprintf(stderr, "%s: pushed %s to %s\n", cli.tool, name, push_url);
    else if (!err && verbose)
        fprintf(stderr, "%s: pushed %u segment%s to %s\n", cli.tool, n, n == 1 ? "" : "s", push_url);
}

/* After each pass: the lag goes to --progress, and a growing backlog to stderr (the
 * archive is slower than the writer: RocksDB's deleted WAL files stay on disk, held open,
 * until archived). */
static int caught_up_once; /* a first pass ended */

static int64_t started_ns;

static void report_lag(tb_archiver *a, int within_pass, struct tb_progress *p)
{
    static uint64_t warned;
    uint64_t bytes;
    int64_t since;
    int inotify;
    tb_archiver_lag(a, within_pass, &bytes, &since, &inotify);
    /* Never caught up yet (a new archive's first pass): waiting since the archiver started,
     * not since 1970. */
    tb_progress_lag(p, bytes, since ? since : started_ns);
    /* Only a follower falls behind: --once, and a follower's first pass, catch up on
     * what was there (its time is the --progress line's). */
    if (warn_lag <= 0 || !follow || !caught_up_once)
        return;
    if (bytes >= (uint64_t)warn_lag && bytes >= 2 * warned) {
        fprintf(stderr,
                "%s: %.1f MiB of WAL wait to be archived: the archive is slower than the database writes "
                "(the WAL files stay on the database's disk, held open, until archived)\n",
                cli.tool, (double)bytes / 1048576.0);
        warned = bytes;
    } else if (warned && bytes < (uint64_t)warn_lag / 4) {
        fprintf(stderr, "%s: caught up: %.1f MiB of WAL wait to be archived\n", cli.tool, (double)bytes / 1048576.0);
        warned = 0;
    }
}

/* The archiver's progress callback (after each record): the bytes read, and once a second
 * the lag, so a pass that takes long (a slow archive, a large backlog) shows it too. */
static tb_archiver *following;
static struct tb_progress prog;

static void on_progress(void *arg, uint64_t bytes_done)
{
    static int64_t last;
    int64_t now = tb_time_now_ns();
    tb_progress_update(arg, bytes_done);
    if (following && now - last >= 1000000000) {
        last = now;
        report_lag(following, 1, &prog);
    }
}

/* With --follow the first SIGINT/SIGTERM/SIGHUP asks for the normal end: the pass under way
 * finishes, one last pass follows, the segment is closed, exit 0. A signal arriving inside a
 * pass must not abort it (an archiver stopped with the server would otherwise exit 1 by
 * chance). A second signal stops at once, as every tool does. */
static volatile sig_atomic_t stop_requested;

static void follow_on_signal(int sig)
{
    if (stop_requested)
        tb_interrupted = sig;
    stop_requested = sig;
}

/* After each pass: a new archive that starts after a gap says so once, the lag, and with
 * --verbose what was archived. */
static void after_pass(void *arg, tb_archiver *a, uint64_t n, uint64_t total)
{
    static int warned;
    uint64_t from, to;
    (void)arg;
    if (!total && tb_archiver_skipped(a, &from, &to) && !warned++)
        fprintf(stderr,
                "%s: a new archive starts after the last gap in the database's WAL (sequences %" PRIu64 "..%" PRIu64
                " are missing): it begins at sequence %" PRIu64 "; take a new backup for it\n",
                cli.tool, from, to - 1, to);
    report_lag(a, 0, &prog);
    caught_up_once = 1;
    if (verbose && n)
        fprintf(stderr, "%s: archived %" PRIu64 " records, next sequence %" PRIu64 "\n", cli.tool, n,
                tb_archiver_next_seq(a));
}

/* The combinations of options that make sense; -1 when they do. */
static int check_usage(struct tb_archiver_opts *o, tb_keyring *keys)
{
    if (!encrypt && keys && !check)
        return tool_usage(&cli, "--key-file and --passphrase-file go with --encrypt (or --check)");
    if (!wal_dir == !to_stdout)
        return tool_usage(&cli, "give exactly one of --wal-directory DIR and --stdout");
    if (once + follow + check != 1)
        return tool_usage(&cli, "give exactly one of --once, --follow and --check");
    if (to_stdout && check)
        return tool_usage(&cli, "--check needs --wal-directory");
    if (push_url && (!wal_dir || check))
        return tool_usage(&cli, "--push goes with --wal-directory and --once or --follow");
    if (push_url && !tb_repo_is_remote(push_url))
        return tool_usage(&cli, "--push takes an s3://BUCKET/PREFIX location");
    if (to_stdout && isatty(1))
        return tool_usage(&cli, "refusing to write a tar stream to a terminal");
    if (progress_arg && check)
        return tool_usage(&cli, "--progress goes with --once or --follow");
    if (policy_arg && (check || tb_policy_parse(policy_arg, &o->policy) < 0))
        return tool_usage(&cli, check ? "--write-policy goes with --once or --follow" : tb_error_last());
    return -1;
}

static int run_check(tb_keyring *keys)
{
    uint64_t records, first, next;
    int rc = tb_wal_archive_check(wal_dir, keys, &records, &first, &next);
    if (rc < 0)
        return tool_fail(&cli, rc);
    printf("%" PRIu64 " records, sequences %" PRIu64 "..%" PRIu64 ", checksums and continuity good\n", records, first,
           next ? next - 1 : 0);
    return 0;
}

/* --stdout: the archive in a private temporary directory (*tmp), its segments to a tar
 * stream on stdout. 1 when the directory cannot be made (said on stderr). */
static int setup_stdout(struct tb_archiver_opts *o, struct tb_ship_tar *tar, char **tmp)
{
    tb_stream *out;
    int rc;
    if (!(*tmp = tb_fs_join(tool_tmpdir(), "themis-wal-archive.XXXXXX")) || !mkdtemp(*tmp)) {
        fprintf(stderr, "%s: cannot create a temporary directory in %s: %s\n", cli.tool, tool_tmpdir(),
                strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return 1;
    }
    wal_dir = *tmp;
    if ((rc = tb_stream_fd(&out, 1, 0, "stdout")) < 0 || (rc = tb_tar_writer_live(&tar->w, out)) < 0)
        return rc;
    tar->dir = *tmp;
    o->published = tb_ship_tar;
    o->published_arg = tar;
    return 0;
}

/* --push: each closed segment is copied to push_url too. */
static int setup_push(struct tb_archiver_opts *o, struct tb_ship_push *push, tb_keyring *keys)
{
    int rc = tool_repo_open(&push->repo, push_url, keys, NULL, NULL);
    if (rc == 0)
        rc = tb_repo_check(push->repo);
    push->dir = wal_dir;
    push->told = told;
    o->published = tb_ship_push;
    o->published_arg = push;
    return rc;
}

/* Opens the archiver, follows the WAL (or one pass), and with --push catches up at the end. */
static int archive(struct tb_archiver_opts *o, struct tb_ship_push *push)
{
    struct tb_archiver_loop loop = { once, interval_ms * 1000000LL, &stop_requested, after_pass, NULL };
    tb_archiver *a = NULL;
    uint64_t total = 0;
    int rc;
    if ((rc = tb_archiver_open(&a, o)) < 0)
        return rc;
    following = a;
    if (verbose) {
        uint64_t lag_bytes;
        int64_t since;
        int inotify;
        tb_archiver_lag(a, 0, &lag_bytes, &since, &inotify);
        fprintf(stderr, "%s: new WAL files are held open as they appear (%s)\n", cli.tool,
                inotify ? "inotify" : "no inotify: the directories are listed every 5 ms");
    }
    /* What an earlier run archived but did not push (or a first push of an old archive). */
    if (push_url && tb_ship_push_catch_up(push) < 0 && follow)
        fprintf(stderr, "%s: push failed, retrying at the next segment: %s\n", cli.tool, tb_error_last());
    rc = tb_archiver_run(a, &loop, &total);
    if (rc == 0 && push->behind && tb_ship_push_catch_up(push) < 0)
        rc = tb_error_wrap(TB_EIO, "the local archive is complete, but the push to %s failed", push_url);
    tb_progress_finish(&prog);
    if (rc == 0 && verbose)
        fprintf(stderr, "%s: %" PRIu64 " records archived (write policy %s)\n", cli.tool, total,
                tb_policy_name(tb_archiver_policy(a)));
    following = NULL;
    tb_archiver_free(a);
    return rc;
}

/* The keyring (--key-file, --passphrase-file); file scope, as the early exits leave it to exit. */
static tb_keyring *keys;

int main(int argc, char **argv)
{
    struct tb_ship_push push = { 0 };
    struct tb_ship_tar tar = { 0 };
    char *tmp = NULL;
    struct tb_archiver_opts o = { 0 };
    enum tb_progress_mode pmode;
    int argi, rc, status;
    started_ns = tb_time_now_ns();

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if ((status = tool_priority(&cli, prio_nice, prio_io)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (encrypt && !key_file.n && !pass_file.n)
        return tool_usage(&cli, "--encrypt needs --key-file or --passphrase-file");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &keys)) >= 0)
        return status;
    /* The key opens sealed segments (--check, resuming); only --encrypt seals new ones. */
    if ((status = check_usage(&o, keys)) >= 0)
        return status;
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (follow)
        tool_catch_signals_with(follow_on_signal);
    if (check)
        return run_check(keys);
    o.db_path = db_path ? db_path : TB_THEMIS_DB_PATH;
    o.db_wal_dir = db_wal_dir;
    /* TB_WAL_TAP_SCAN=1: the listing alone, as where inotify is missing (tests use it). */
    o.tap_listing_only = getenv("TB_WAL_TAP_SCAN") && strcmp(getenv("TB_WAL_TAP_SCAN"), "1") == 0;
    if (to_stdout && (rc = setup_stdout(&o, &tar, &tmp)) == 1)
        return 1;
    if (to_stdout && rc < 0)
        goto out;
    if (push_url && (rc = setup_push(&o, &push, keys)) < 0)
        goto out;
    o.wal_dir = wal_dir;
    o.keys = keys;
    o.segment_size = (uint64_t)segment_size;
    o.segment_ns = segment_seconds * 1000000000LL;
    o.level = (int)level;
    /* The WAL only grows: no total, only bytes read (and the rate). */
    tb_progress_start(&prog, pmode, stderr, "archive", 0);
    o.progress = on_progress;
    o.progress_arg = &prog;
    rc = archive(&o, &push);
out:
    tb_repo_free(push.repo);
    if (tar.w) {
        /* The tar trailer only after a clean end: a stream cut by an error must not look whole. */
        if (rc == 0)
            rc = tb_tar_writer_close(tar.w);
        tb_tar_writer_free(tar.w);
    }
    if (tmp) {
        tb_fs_rm_rf(tmp);
        free(tmp);
    }
    status = rc < 0 ? tool_fail(&cli, rc) : 0;
    tb_keyring_free(keys);
    keys = NULL;
    return status;
}
