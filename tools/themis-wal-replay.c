/* themis-wal-replay: point-in-time recovery of a restored ThemisDB from the WAL archive. */
#include "tool.h"

#include <inttypes.h>
#include <string.h>

#include "config.h"
#include "fs.h"
#include "progress.h"
#include "repo.h"
#include "replay.h"
#include "segment.h"
#include "s3opts.h"
#include "timefmt.h"

static const char *wal_dir, *db_path, *wal_file_dir, *target_time, *progress_arg, *config_file, *policy_arg;
static long long target_seq;
static int dry_run, as_wal_file, no_new_cfs;
static struct tb_strlist key_file, pass_file;

static const struct tb_option opts[] = {
    TOOL_WAL_DIRECTORY_OPTION(wal_dir, "the WAL archive (or s3://BUCKET/PREFIX: downloaded to $TMPDIR first)"),
    TOOL_DATABASE_PATH_OPTION(
        db_path,
        "the restored database to bring forward (ThemisDB's data directory: its rocksdb/; default: the config's "
        "storage.rocksdb_path)"),
    TOOL_CONFIG_FILE_OPTION(config_file, " naming storage.rocksdb_path"),
    { "target-time", 0, TB_OPT_STRING, &target_time, "TIME", "stop before the first write stamped later (RFC 3339)" },
    { "target-seq", 0, TB_OPT_INT, &target_seq, "N", "stop after sequence number N" },
    { "as-wal-file", 0, TB_OPT_FLAG, &as_wal_file, NULL,
      "do not open the database: write the batches up to the target as one new WAL file into it, which the "
      "server's own RocksDB replays when it opens it" },
    TOOL_DB_WAL_DIR_OPTION(wal_file_dir,
                           "with --as-wal-file: where the database keeps its WAL files (RocksDB "
                           "wal_dir, as the server's config sets it), when not --database-path: the "
                           "file goes there"),
    { "no-new-column-families", 0, TB_OPT_FLAG, &no_new_cfs, NULL,
      "with --as-wal-file: refuse (exit 4) a write to a column family created after the base instead of adding "
      "it to the base's MANIFEST" },
    TOOL_WRITE_POLICY_OPTION(policy_arg, "the base's writer's transaction write policy:", "detected"),
    { "dry-run", 0, TB_OPT_FLAG, &dry_run, NULL,
      "print the recoverable window (and, with --as-wal-file, the file it would write) and change nothing" },
    TOOL_KEY_OPTIONS(key_file, pass_file),
    TOOL_PROGRESS_OPTION(progress_arg, "the bytes of the archive applied"),
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-wal-replay",
    "--wal-directory DIR --database-path DIR [--target-time T | --target-seq N] [--as-wal-file] [--dry-run]",
    "Applies archived WAL records to a restored database, up to a time or sequence number.",
    opts,
};

static const char *fmt(int64_t ns, char *buf, size_t len)
{
    if (!ns)
        return "unknown";
    tb_time_format(ns, buf, len);
    return buf;
}

/* The combinations of options that make sense (-1), filling o from them. */
static int check_usage(struct tb_replay_opts *o, enum tb_progress_mode *pmode)
{
    int rc;
    if (target_time && target_seq)
        return tool_usage(&cli, "give at most one of --target-time and --target-seq");
    if (target_time && (rc = tb_time_parse(target_time, &o->target_ns)) < 0)
        return tool_fail(&cli, rc);
    if (wal_file_dir && !as_wal_file)
        return tool_usage(&cli, "--db-wal-dir goes with --as-wal-file");
    if (no_new_cfs && !as_wal_file)
        return tool_usage(&cli, "--no-new-column-families goes with --as-wal-file");
    if (progress_arg && dry_run)
        return tool_usage(&cli, "--dry-run applies nothing to show progress of");
    if (tb_progress_parse(progress_arg, pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (policy_arg && tb_policy_parse(policy_arg, &o->policy) < 0)
        return tool_usage(&cli, tb_error_last());
    o->target_seq = (uint64_t)target_seq;
    o->dry_run = dry_run;
    o->as_wal_file = as_wal_file;
    o->wal_file_add_cfs = !no_new_cfs;
    o->wal_file_dir = wal_file_dir;
    return -1;
}

/* The upgrade guide passes ThemisDB's data directory; the RocksDB is its rocksdb/ (the
 * same mapping as themis-restore's --target). */
static int database_dir(char **sub)
{
    struct tb_config *cfg = NULL;
    int mapped, rc;
    if ((rc = tb_config_open(&cfg, config_file, 0)) == 0)
        rc = tb_config_db_dir(db_path ? db_path : tb_config_db_path(cfg), tb_config_db_path(cfg), sub, &mapped);
    tb_config_free(cfg);
    return rc;
}

static void print_window(const struct tb_replay_result *r, int rc)
{
    char t1[64], t2[64], t3[64];
    printf("base sequence      %" PRIu64 " (stamp %s)\n", r->base_seq, fmt(r->base_ts, t1, sizeof t1));
    printf("archive            sequences %" PRIu64 "..%" PRIu64 ", %s .. %s\n", r->archive_first,
           r->archive_next ? r->archive_next - 1 : 0, fmt(r->archive_first_ts, t2, sizeof t2),
           fmt(r->archive_last_ts, t3, sizeof t3));
    if (r->gap_to)
        printf("gap                sequences %" PRIu64 "..%" PRIu64 " missing\n", r->gap_from, r->gap_to - 1);
    else
        printf("gaps               none\n");
    if (!as_wal_file || rc < 0)
        return;
    if (r->ops)
        printf("would write        %s: %" PRIu64 " records, %" PRIu64 " bytes of batches, %" PRIu64 " writes, "
               "header sequences %" PRIu64 "..%" PRIu64 ", reaching sequence %" PRIu64 " at %s\n",
               r->wal_file, r->file_records, r->file_bytes, r->ops, r->file_first_seq, r->file_next_seq - 1,
               r->reached_seq, fmt(r->reached_ts, t1, sizeof t1));
    else
        printf("would write        nothing: no committed write after the base up to the target\n");
    if (r->ops && r->manifest_number)
        printf("would add          column families %s (created after the base) as MANIFEST-%06" PRIu64
               " and OPTIONS-%06" PRIu64 "\n",
               r->added_cfs, r->manifest_number, r->options_number);
}

static void print_result(const struct tb_replay_result *r, int64_t target_ns)
{
    char t1[64], t2[64];
    if (as_wal_file) {
        if (r->ops)
            printf("reached sequence %" PRIu64 " at %s; wrote %" PRIu64 " batches (%" PRIu64 " writes) as %s "
                   "(header sequences %" PRIu64 "..%" PRIu64 "): the server replays it when it opens the database\n",
                   r->reached_seq, fmt(r->reached_ts, t1, sizeof t1), r->batches, r->ops, r->wal_file,
                   r->file_first_seq, r->file_next_seq - 1);
        else
            printf("reached sequence %" PRIu64 " at %s; nothing to apply, no file written\n", r->reached_seq,
                   fmt(r->reached_ts, t1, sizeof t1));
        if (r->ops && r->manifest_number)
            printf("added column families %s (created after the base) to its MANIFEST (MANIFEST-%06" PRIu64
                   ", OPTIONS-%06" PRIu64 ")\n",
                   r->added_cfs, r->manifest_number, r->options_number);
    } else {
        printf("reached sequence %" PRIu64 " at %s; applied %" PRIu64 " batches (%" PRIu64 " writes); database "
               "sequence %" PRIu64 "\n",
               r->reached_seq, fmt(r->reached_ts, t1, sizeof t1), r->batches, r->ops, r->db_seq);
    }
    /* The archive ran out before a write later than the target: either nothing was written
     * until then, or the archive lags; only the operator can tell, so say it. */
    if (target_time && r->archive_next && r->reached_seq + 1 >= r->archive_next && r->archive_last_ts < target_ns)
        fprintf(stderr,
                "%s: note: the archive ends at %s (sequence %" PRIu64 "), before the target time; "
                "writes after that, if any, were not archived\n",
                cli.tool, fmt(r->archive_last_ts, t2, sizeof t2), r->archive_next - 1);
}

/* The keyring (--key-file, --passphrase-file); file scope, as the early exits leave it to exit. */
static tb_keyring *keys;

int main(int argc, char **argv)
{
    struct tb_replay_opts o = { 0 };
    struct tb_replay_result r;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    char *sub = NULL;
    tb_repo *repo = NULL;
    int argi, rc, status;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (!wal_dir)
        return tool_usage(&cli, "missing --wal-directory");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &keys)) >= 0)
        return status;
    if ((status = check_usage(&o, &pmode)) >= 0)
        return status;
    if ((rc = database_dir(&sub)) < 0)
        return tool_fail(&cli, rc);
    if ((rc = tool_repo_open(&repo, wal_dir, keys, NULL, NULL)) < 0 || (rc = tb_repo_dir(repo, &wal_dir)) < 0) {
        tb_repo_free(repo);
        free(sub);
        return tool_fail(&cli, rc);
    }
    o.wal_dir = wal_dir;
    o.keys = keys;
    o.db_path = sub;
    /* The total, the archive's size from its index, is known once the replay has checked it. */
    tb_progress_start(&prog, pmode, stderr, "replay", 0);
    o.progress = tb_progress_update;
    o.progress_arg = &prog;
    o.progress_total = &prog.total;
    rc = tb_replay_run(&o, &r);
    tb_progress_finish(&prog);
    free(sub);
    tb_repo_free(repo); /* (a downloaded archive is removed) */
    if (dry_run && (rc == 0 || rc == TB_EGAP))
        print_window(&r, rc);
    tb_keyring_free(keys);
    keys = NULL;
    if (rc < 0)
        return tool_fail(&cli, rc);
    if (!dry_run)
        print_result(&r, o.target_ns);
    return 0;
}
