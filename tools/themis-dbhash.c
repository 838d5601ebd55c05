/* themis-dbhash: print the content hash of every column family of a RocksDB directory. */
#include "tool.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "progress.h"
#include "rocks.h"
#include "snapshot.h"
#include "stream.h"

static const char *db_path, *progress_arg, *db_wal_dir, *db_paths_arg;
static int verbose, readonly;

static const struct tb_option opts[] = {
    { "database-path", 0, TB_OPT_STRING, &db_path, "DIR", "the RocksDB directory to hash (required)" },
    { "db-wal-dir", 0, TB_OPT_STRING, &db_wal_dir, "DIR", "the database's WAL directory (RocksDB wal_dir), when not --database-path" },
    { "db-paths", 0, TB_OPT_STRING, &db_paths_arg, "DIR,DIR", "the database's table directories (RocksDB db_paths, in order), when not all in --database-path" },
    { "read-only", 0, TB_OPT_FLAG, &readonly, NULL, "open read-only even if a process holds the DB (default: only when none does)" },
    { "progress", 0, TB_OPT_OPTSTRING, &progress_arg, "json", "show the bytes of keys and values hashed on stderr (a line, or JSON lines)" },
    { "verbose", 'v', TB_OPT_FLAG, &verbose, NULL, "also print each column family's key count" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-dbhash", "--database-path DIR [-v]",
    "Prints a SHA-256 over every column family (name order) and key/value (key order).\n"
    "Works on a live DB (through a secondary instance) and on a stopped one (read-only); changes nothing.",
    opts,
};

int main(int argc, char **argv)
{
    struct tb_rocks_hash h = { 0 };
    tb_rocks *r = NULL;
    char scratch[4096], hex[65];
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    int argi, rc, status;
    char **db_paths = NULL;
    size_t ndb_paths = 0;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (!db_path)
        return tool_usage(&cli, "missing --database-path");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    snprintf(scratch, sizeof scratch, "%s/.themis-dbhash-%d", tool_tmpdir(), (int)getpid());
    if (db_paths_arg && (rc = tb_snapshot_split_paths(db_paths_arg, &db_paths, &ndb_paths)) < 0)
        return rc == TB_EUSAGE ? tool_usage(&cli, tb_error_last()) : tool_fail(&cli, rc);
    rc = tb_rocks_open_layout(&r, db_path, readonly ? TB_ROCKS_READONLY : TB_ROCKS_AUTO, scratch, db_wal_dir,
                              (const char *const *)db_paths, ndb_paths);
    if (rc == 0) {
        tb_progress_start(&prog, pmode, stderr, "hash", 0);
        rc = tb_rocks_hash_progress(r, &h, tb_progress_update, &prog);
        tb_progress_finish(&prog);
    }
    if (rc == 0) {
        tb_hex(h.digest, 32, hex);
        printf("%s\n", hex);
        if (verbose) {
            printf("sequence %" PRIu64 "\n", tb_rocks_last_seq(r));
            printf("opened %s\n", tb_rocks_mode(r) == TB_ROCKS_SECONDARY ? "as a secondary (a process holds the DB)" : "read-only");
            for (size_t i = 0; i < h.ncf; i++)
                printf("cf %s %" PRIu64 " keys\n", h.names[i], h.keys[i]);
        }
    }
    tb_rocks_hash_clear(&h);
    tb_rocks_free(r);
    tb_snapshot_free_paths(db_paths);
    tb_fs_rm_rf(scratch);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
