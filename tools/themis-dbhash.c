/* themis-dbhash: print the content hash of every column family of a RocksDB directory. */
#include "tool.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "progress.h"
#include "content.h"
#include "rocks.h"
#include "snapshot.h"
#include "stream.h"

static const char *db_path, *progress_arg, *db_wal_dir, *db_paths_arg, *policy_arg;
static int verbose, readonly;
static long long hash_version = 2;

static const struct tb_option opts[] = {
    TOOL_DATABASE_PATH_OPTION(db_path, "the RocksDB directory to hash (required)"),
    TOOL_DB_DIRS_OPTIONS(db_wal_dir, db_paths_arg,
                         "the database's WAL directory (RocksDB wal_dir), when not --database-path",
                         "the database's table directories (RocksDB db_paths, in order), when not all in "
                         "--database-path"),
    { "read-only", 0, TB_OPT_FLAG, &readonly, NULL,
      "accepted for older scripts: the hash is always taken on a snapshot from files, live or stopped" },
    TOOL_WRITE_POLICY_OPTION(policy_arg, "the writer's transaction write policy:", "detected"),
    TOOL_PROGRESS_OPTION(progress_arg, "the bytes of keys and values hashed"),
    TOOL_VERBOSE_OPTION(verbose, "also print each column family's key count"),
    { "hash-version", 0, TB_OPT_INT, &hash_version, "1|2",
      "2 (default): themis-dbhash-v2, what backups record from manifest 1.4; 1: themis-dbhash-v1, of older manifests" },
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-dbhash",
    "--database-path DIR [-v]",
    "Prints the content hash (docs/format.md): themis-dbhash-v2, of every column family's keys and values,\n"
    "hashed by key range on every CPU (--hash-version 1: the older, sequential one).\n"
    "Works on a live DB and on a stopped one, of any write policy: a snapshot from its files is recovered as the\n"
    "server would recover it, then hashed; the database itself is never written to.",
    opts,
};

int main(int argc, char **argv)
{
    struct tb_content c = { 0 };
    struct tb_content_opts co = { 0 };
    char scratch[4096];
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    int argi, rc, status, live;
    char **db_paths = NULL;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (!db_path)
        return tool_usage(&cli, "missing --database-path");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (policy_arg && tb_policy_parse(policy_arg, &co.policy) < 0)
        return tool_usage(&cli, tb_error_last());
    if (!tb_fs_exists(db_path))
        return tool_fail(&cli, tb_error_set(TB_ENOENT, "database directory does not exist (%s)", db_path));
    snprintf(scratch, sizeof scratch, "%s/.themis-dbhash-%d", tool_tmpdir(), (int)getpid());
    if (db_paths_arg && (rc = tb_snapshot_split_paths(db_paths_arg, &db_paths, &co.ndb_paths)) < 0)
        return rc == TB_EUSAGE ? tool_usage(&cli, tb_error_last()) : tool_fail(&cli, rc);
    co.db_paths = (const char *const *)db_paths;
    co.wal_dir = db_wal_dir;
    co.scratch = scratch;
    co.hash_version = (int)hash_version;
    co.progress = tb_progress_update;
    co.progress_arg = &prog;
    live = tb_rocks_is_live(db_path) == 1;
    tb_progress_start(&prog, pmode, stderr, "hash", 0);
    rc = tb_content_of(db_path, &co, &c);
    tb_progress_finish(&prog);
    if (rc == 0 && c.unavailable)
        rc = tb_error_set(TB_EIO, "cannot hash the content: %s", c.unavailable);
    if (rc == 0) {
        printf("%s\n", c.hex);
        if (verbose) {
            printf("sequence %" PRIu64 "\n", c.last_seq);
            printf("opened a snapshot from files%s\n", live ? " (a process holds the DB)" : " (stopped)");
            printf("write policy %s (%s)\n", tb_policy_name(c.policy), c.policy_how ? c.policy_how : "");
            for (size_t i = 0; i < c.ncf; i++)
                printf("cf %s %" PRIu64 " keys\n", c.cfs[i], c.keys[i]);
        }
    }
    tb_content_clear(&c);
    tb_snapshot_free_paths(db_paths);
    tb_fs_rm_rf(scratch);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
