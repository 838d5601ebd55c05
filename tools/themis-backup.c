/* themis-backup: consistent full backup of a live or stopped ThemisDB, optionally with config. */
#include "tool.h"

#include <inttypes.h>

#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "snapshot.h"
#include "catalog.h"
#include "config.h"
#include "fs.h"
#include "progress.h"
#include "restore.h"
#include "timefmt.h"

#include <stdint.h>
#include <stdlib.h>

static const char *db_wal_dir, *db_paths_arg, *policy_arg;
static const char *backup_dir, *db_path, *config_file, *server_url, *progress_arg, *parent_dir, *backup_root;
static int compress, include_config, to_stdout, verbose, incremental, list, json, check_age;
static const char *max_age, *wal_dir, *max_wal_lag, *latest_before, *created;
static long long level = 3, threads = -1, full_every;

static long long prio_nice;
static const char *rate_arg;
static uint64_t rate_limit;
static const char *prio_io;
static int encrypt, plain_manifest, rekey, add_key;
static struct tb_strlist key_file, pass_file, old_key_file, old_pass_file;

static const struct tb_option opts[] = {
    { "backup-directory", 0, TB_OPT_STRING, &backup_dir, "DIR",
      "write the backup here (created; must not exist or be empty)" },
    { "stdout", 0, TB_OPT_FLAG, &to_stdout, NULL, "write the backup stream (tar, .zst with --compress) to stdout" },
    TOOL_DATABASE_PATH_OPTION(
        db_path, "RocksDB directory (default: storage.rocksdb_path of the config, else " TB_THEMIS_DB_PATH ")"),
    TOOL_DB_DIRS_OPTIONS(db_wal_dir, db_paths_arg,
                         "the database's WAL directory (RocksDB wal_dir; default: the one its OPTIONS file names, "
                         "else --database-path)",
                         "the database's table directories in RocksDB's db_paths order, when not all in "
                         "--database-path"),
    { "compress", 0, TB_OPT_FLAG, &compress, NULL, "compress with zstd (backup.tar.zst)" },
    TOOL_COMPRESS_LEVEL_OPTION(level, ""),
    { "threads", 0, TB_OPT_INT, &threads, "N", "zstd workers and content hash threads (default: number of CPUs)" },
    { "include-config", 0, TB_OPT_FLAG, &include_config, NULL,
      "include ThemisDB's config and the files it names under its directory" },
    TOOL_CONFIG_FILE_OPTION(config_file, ""),
    TOOL_WRITE_POLICY_OPTION(policy_arg, "the writer's transaction write policy:", "detected"),
    { "created", 0, TB_OPT_STRING, &created, "TIME",
      "record TIME (RFC 3339) as the backup's creation time instead of now (imports, tests of retention)" },
    { "server-url", 0, TB_OPT_STRING, &server_url, "URL", "ask the server for the checkpoint (POST /admin/backup)" },
    TOOL_PROGRESS_OPTION(progress_arg, "progress"),
    { "incremental-from", 0, TB_OPT_STRING, &parent_dir, "DIR",
      "store only files the backup in DIR lacks; the rest are read from it (and its parents) on restore" },
    { "incremental", 0, TB_OPT_FLAG, &incremental, NULL,
      "like --incremental-from, with the newest good backup under --backup-root" },
    TOOL_BACKUP_ROOT_OPTION(backup_root, "with --incremental: where the earlier backups are"),
    { "full-every", 0, TB_OPT_INT, &full_every, "N",
      "with --incremental*: a full backup instead when the chain would reach N" },
    { "list", 0, TB_OPT_FLAG, &list, NULL,
      "with --backup-root: list the backups there, newest first, with their chains" },
    { "json", 0, TB_OPT_FLAG, &json, NULL, "with --list: one JSON array" },
    { "latest-before", 0, TB_OPT_STRING, &latest_before, "TIME",
      "with --backup-root: print the newest backup made at or before TIME whose last verification did not fail (the "
      "base for PITR to TIME)" },
    { "check-age", 0, TB_OPT_FLAG, &check_age, NULL,
      "with --backup-root and --max-age: exit 1 when the newest good backup is older (monitoring)" },
    { "max-age", 0, TB_OPT_STRING, &max_age, "AGE", "with --check-age: e.g. 26h (s, m, h, d)" },
    TOOL_WAL_DIRECTORY_OPTION(wal_dir, "with --check-age and --max-wal-lag: the WAL archive to watch"),
    { "max-wal-lag", 0, TB_OPT_STRING, &max_wal_lag, "AGE",
      "with --check-age: exit 1 when the archiver has not polled for longer" },
    TOOL_SEAL_OPTIONS(encrypt, key_file, pass_file, "encrypt the backup"),
    { "plain-manifest", 0, TB_OPT_FLAG, &plain_manifest, NULL,
      "with --encrypt: keep file names and hashes in the MANIFEST.json beside the archive" },
    { "rekey", 0, TB_OPT_FLAG, &rekey, NULL,
      "rewrap the data key of the encrypted backup in --backup-directory: --old-key-file's key is replaced by "
      "--key-file's" },
    { "add-key", 0, TB_OPT_FLAG, &add_key, NULL, "like --rekey, keeping the old key: either then opens the backup" },
    { "old-key-file", 0, TB_OPT_LIST, &old_key_file, "FILE",
      "with --rekey/--add-key: a key that opens the backup now (repeatable)" },
    { "old-passphrase-file", 0, TB_OPT_LIST, &old_pass_file, "FILE",
      "with --rekey/--add-key: a passphrase that opens the backup now (repeatable)" },
    TOOL_RUN_OPTIONS(prio_nice, prio_io, rate_arg, verbose, "print a summary on stderr"),
};

static const struct tb_cli cli = {
    "themis-backup",
    "--backup-directory DIR | --stdout [OPTIONS] | --list --backup-root DIR [--json] | "
    "--check-age --backup-root DIR --max-age AGE | "
    "--rekey|--add-key --backup-directory DIR --old-key-file F --key-file F",
    "Takes a consistent full backup of a ThemisDB RocksDB, live or stopped, never opening it read-write.",
    opts,
};

/* Monitoring: one line, exit 1 when the newest good backup is too old or the archiver
 * has not polled for too long (tb_catalog_check). */
static int check_root(void)
{
    struct tb_catalog_check_opts co = { .now = tb_time_now_ns(), .wal_dir = wal_dir };
    struct tb_catalog_health h;
    char age[32];
    int rc;
    if (tb_catalog_age_parse(&co.max_age, max_age) < 0 ||
        (max_wal_lag && tb_catalog_age_parse(&co.max_wal_lag, max_wal_lag) < 0))
        return tool_usage(&cli, tb_error_last());
    if ((rc = tb_catalog_check(&h, backup_root, &co)) < 0)
        return tool_fail(&cli, rc);
    tb_catalog_age_format(age, sizeof age, h.age);
    printf("ok: newest good backup %s is %s old (%s)\n", h.dir, age,
           h.verify_state > 0 ? (h.verify_quick ? "checksums verified" : "verified") : "not verified yet");
    tb_catalog_health_clear(&h);
    return 0;
}

/* --latest-before T: the base for recovery to T, by the catalog alone (themis-restore
 * verifies it again before use). */
static int latest(void)
{
    char *dir = NULL;
    int rc = tb_catalog_latest(&dir, backup_root, latest_before, tool_skipped, (void *)cli.tool);
    if (rc < 0)
        return tool_fail(&cli, rc);
    printf("%s\n", dir);
    free(dir);
    return 0;
}

/* "TIME ok (quick)", "TIME FAILED" or "-": an entry's last verification as --list shows it. */
static void verified_text(const struct tb_catalog_entry *e, char *buf, size_t len)
{
    snprintf(buf, len, "-");
    if (!e->verify_state)
        return;
    tb_time_format(e->verified_ns, buf, len);
    snprintf(buf + strlen(buf), len - strlen(buf), " %s%s", e->verify_state > 0 ? "ok" : "FAILED",
             e->verify_quick ? " (quick)" : "");
}

static json_t *list_json(const struct tb_catalog_entry *e, const char *name, const char *verified)
{
    const struct tb_manifest *m = e->m;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:i, s:s}", "created", m->created, "backup", name,
                          "sequence", (json_int_t)m->last_seq, "db_bytes", (json_int_t)m->db_bytes, "archive_bytes",
                          (json_int_t)m->archive_size, "stored_bytes", (json_int_t)tb_catalog_stored_bytes(m), "parent",
                          m->parent_path ? json_string(m->parent_path) : json_null(), "chain", (int)m->chain,
                          "content_hash", m->content_hash);
    json_object_set_new(o, "encrypted", json_boolean(m->encrypted));
    if (e->verify_state)
        json_object_set_new(o, "verified", json_string(verified));
    return o;
}

static void list_tsv(const struct tb_catalog_entry *e, const char *name, const char *verified)
{
    const struct tb_manifest *m = e->m;
    printf("%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%u\t%s\t%s\n", m->created, name,
           m->last_seq, m->db_bytes, m->archive_size, tb_catalog_stored_bytes(m), m->parent_path ? m->parent_path : "-",
           m->chain, m->encrypted ? "yes" : "no", verified);
}

/* The catalog of a root: what each backup is and what it adds to the chain. */
static int list_root(void)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    json_t *arr = json ? json_array() : NULL;
    int rc = tb_catalog_list(backup_root, &v, &n);
    if (rc < 0)
        return tool_fail(&cli, rc);
    if (!json)
        printf("created\tbackup\tsequence\tdb_bytes\tarchive_bytes\tstored_bytes\tparent\tchain\tencrypted\t"
               "verified\n");
    for (size_t i = 0; i < n; i++) {
        const char *name = strrchr(v[i].dir, '/') ? strrchr(v[i].dir, '/') + 1 : v[i].dir;
        char verified[64];
        verified_text(&v[i], verified, sizeof verified);
        if (json)
            json_array_append_new(arr, list_json(&v[i], name, verified));
        else
            list_tsv(&v[i], name, verified);
    }
    if (json) {
        char *text = json_dumps(arr, JSON_INDENT(2));
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(arr);
    }
    tb_catalog_free(v, n);
    return 0;
}

/* --rekey and --add-key: the backup's data keys rewrapped (tb_backup_rekey). */
static int rekey_backup(void)
{
    tb_keyring *old = NULL, *add = NULL;
    int rc, status;
    if (rekey && add_key)
        return tool_usage(&cli, "give one of --rekey and --add-key");
    if (!backup_dir || to_stdout || list || backup_root || encrypt)
        return tool_usage(&cli, "--rekey and --add-key take --backup-directory DIR, the old key and the new one");
    if (!old_key_file.n && !old_pass_file.n)
        return tool_usage(&cli,
                          "--rekey and --add-key need the key that opens the backup now (--old-key-file or "
                          "--old-passphrase-file)");
    if (!key_file.n && !pass_file.n)
        return tool_usage(&cli, "--rekey and --add-key need the new key (--key-file or --passphrase-file)");
    if ((status = tool_keys(&cli, &old_key_file, &old_pass_file, &old)) >= 0 ||
        (status = tool_keys(&cli, &key_file, &pass_file, &add)) >= 0) {
        tb_keyring_free(old);
        return status;
    }
    rc = tb_backup_rekey(backup_dir, old, add, add_key);
    tb_keyring_free(old);
    tb_keyring_free(add);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}

/* The usage rules of taking a backup; -1 to go on, else the exit status. */
static int check_backup_args(void)
{
    if (!backup_dir == !to_stdout)
        return tool_usage(&cli, "give exactly one of --backup-directory DIR and --stdout");
    if (to_stdout && isatty(1))
        return tool_usage(&cli, "refusing to write a backup stream to a terminal");
    if (json)
        return tool_usage(&cli, "--json goes with --list");
    if (incremental && parent_dir)
        return tool_usage(&cli, "give at most one of --incremental and --incremental-from");
    if (incremental != !!backup_root)
        return tool_usage(&cli, "--incremental and --backup-root go together");
    if (incremental && !backup_dir)
        return tool_usage(&cli,
                          "--incremental needs --backup-directory (with --stdout, name the parent: "
                          "--incremental-from DIR)");
    if (full_every < 0 || (full_every && !incremental && !parent_dir))
        return tool_usage(&cli, "--full-every N (N > 0) goes with --incremental or --incremental-from");
    if (level < -7 || level > 22)
        return tool_usage(&cli, "--compress-level must be between -7 and 22");
    return -1;
}

/* The usage rules of encryption and the recorded time; -1 to go on, else the exit status. */
static int check_key_args(void)
{
    if (encrypt != (key_file.n || pass_file.n))
        return tool_usage(&cli,
                          encrypt ? "--encrypt needs --key-file or --passphrase-file"
                                  : "--key-file and --passphrase-file go with --encrypt (or --rekey/--add-key)");
    if (plain_manifest && !encrypt)
        return tool_usage(&cli, "--plain-manifest goes with --encrypt");
    if (created && tb_time_parse(created, &(int64_t){ 0 }) < 0)
        return tool_usage(&cli, "--created must be an RFC 3339 time, e.g. 2026-11-24T22:41:00Z");
    return -1;
}

/* What one run needs besides the options: what it reports, and what main frees. */
struct run {
    struct tb_backup_opts o;
    struct tb_config *cfg;
    struct tb_progress prog;
    tb_stream *out;
    char host[256], *picked, **db_paths;
    struct tb_snapshot_info snap;
    struct tb_content content;
};

/* The options of tb_backup_run from the command line (and the config naming the DB); -1
 * to go on, else the exit status. */
static int fill_opts(struct run *r, enum tb_progress_mode pmode)
{
    struct tb_backup_opts *o = &r->o;
    int rc;
    /* The config names the DB; it must exist when asked for explicitly or included. Where
     * config.yaml is absent, older installations keep themisdb.conf beside it. */
    if ((config_file || include_config || !db_path) &&
        (rc = tb_config_open(&r->cfg, config_file, config_file || include_config)) < 0)
        return tool_fail(&cli, rc);
    gethostname(r->host, sizeof r->host - 1);
    *o = (struct tb_backup_opts){ .db_path = db_path ? db_path : tb_config_db_path(r->cfg),
                                  .backup_dir = backup_dir,
                                  .scratch = tool_tmpdir(),
                                  .compress = compress,
                                  .level = (int)level,
                                  .threads = (int)threads,
                                  .server_url = server_url,
                                  .host = r->host,
                                  .created = created,
                                  .db_wal_dir = db_wal_dir,
                                  .keys = o->keys,
                                  .plain_manifest = plain_manifest,
                                  .snapshot = &r->snap,
                                  .content = &r->content,
                                  .full_every = (unsigned)full_every,
                                  .rate_limit = rate_limit,
                                  .parent_dir = parent_dir };
    if (db_paths_arg && (rc = tb_snapshot_split_paths(db_paths_arg, &r->db_paths, &o->ndb_paths)) < 0)
        return rc == TB_EUSAGE ? tool_usage(&cli, tb_error_last()) : tool_fail(&cli, rc);
    o->db_paths = (const char *const *)r->db_paths;
    if (policy_arg && tb_policy_parse(policy_arg, &o->policy) < 0)
        return tool_usage(&cli, tb_error_last());
    if (include_config) {
        o->config_file = r->cfg->path;
        o->config_dir = tb_fs_dirname(r->cfg->path);
    }
    tb_progress_start(&r->prog, pmode, stderr, "backup", 0);
    o->progress = tb_progress_update;
    o->progress_arg = &r->prog;
    o->progress_total = &r->prog.total;
    if (to_stdout && (rc = tb_stream_fd(&r->out, 1, 0, "stdout")) < 0)
        return tool_fail(&cli, rc);
    o->out = r->out;
    return -1;
}

/* --verbose: what was backed up, how the policy was decided, the snapshot, the chain. */
static void print_summary(const struct run *r, const struct tb_manifest *m)
{
    const struct tb_snapshot_info *s = &r->snap;
    uint64_t stored = 0;
    size_t nstored = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].stored_in) {
            stored += m->files[i].size;
            nstored++;
        }
    fprintf(stderr, "%s: backed up %s: %zu files, %" PRIu64 " bytes of data, sequence %" PRIu64 ", content hash %s\n",
            cli.tool, r->o.db_path, m->nfiles, m->db_bytes, m->last_seq,
            m->hash_unavailable ? "unavailable" : m->content_hash);
    fprintf(stderr, "%s: write policy %s (%s); %zu table and blob files checked by their own checksums, %zu not\n",
            cli.tool, tb_policy_name(r->content.policy), r->content.policy_how ? r->content.policy_how : "",
            r->content.tables_checked, r->content.tables_unchecked);
    if (s->version)
        fprintf(stderr,
                "%s: snapshot from files: %s (%" PRIu64 " bytes), %zu table and blob files linked, %zu "
                "copied, %zu WAL files (%" PRIu64 " bytes), %d attempt%s%s\n",
                cli.tool, s->manifest, s->manifest_bytes, s->linked, s->copied, s->wals, s->wal_bytes, s->attempts,
                s->attempts == 1 ? "" : "s", s->options_rewritten ? "; OPTIONS' wal_dir cleared" : "");
    if (m->parent_path)
        fprintf(stderr,
                "%s: incremental on %s (chain %u): stored %zu files, %" PRIu64 " bytes; %zu files from the "
                "chain\n",
                cli.tool, m->parent_path, m->chain, nstored, stored, m->nfiles - nstored);
}

/* Takes the backup (tb_backup_run), the parent picked by tb_restore_pick with --incremental. */
static int run_backup(struct run *r)
{
    struct tb_restore_opts with = { .keys = r->o.keys };
    struct tb_manifest *m = NULL;
    int rc, fd;
    if (incremental &&
        (rc = tb_restore_pick(backup_root, INT64_MAX, &with, NULL, tool_skipped, (void *)cli.tool, NULL, &r->picked)) <
            0 &&
        rc != TB_EGAP)
        return tool_fail(&cli, rc);
    if (incremental)
        r->o.parent_dir = r->picked; /* none yet: the first is a full backup */
    if (backup_dir && tb_backup_lock(&fd, backup_dir) < 0)
        return tool_fail(&cli, TB_EIO);
    rc = tb_backup_run(&r->o, &m);
    tb_progress_finish(&r->prog);
    if (rc == 0 && m->hash_unavailable)
        fprintf(stderr, "%s: note: backed up and checked by checksums, but without a content hash: %s\n", cli.tool,
                m->hash_unavailable);
    if (rc == 0 && verbose)
        print_summary(r, m);
    tb_manifest_free(m);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}

static int backup(void)
{
    struct run r = { 0 };
    enum tb_progress_mode pmode;
    int status;
    if ((status = check_backup_args()) >= 0)
        return status;
    if (threads < 0)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if ((status = check_key_args()) >= 0 || (status = tool_keys(&cli, &key_file, &pass_file, &r.o.keys)) >= 0)
        return status;
    if ((status = fill_opts(&r, pmode)) < 0)
        status = run_backup(&r);
    tb_stream_free(r.out);
    tb_config_free(r.cfg);
    free((char *)r.o.config_dir);
    free(r.picked);
    tb_snapshot_free_paths(r.db_paths);
    tb_snapshot_info_clear(&r.snap);
    tb_content_clear(&r.content);
    tb_keyring_free(r.o.keys);
    return status;
}

int main(int argc, char **argv)
{
    int argi, status;
    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if ((status = tool_priority(&cli, prio_nice, prio_io)) >= 0 ||
        (status = tool_rate_limit(&cli, rate_arg, &rate_limit)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (check_age && (!backup_root || !max_age || backup_dir || to_stdout || list || (!!wal_dir != !!max_wal_lag)))
        return tool_usage(&cli,
                          "--check-age takes --backup-root DIR --max-age AGE [--wal-directory DIR "
                          "--max-wal-lag AGE]");
    if (check_age)
        return check_root();
    if (max_age || wal_dir || max_wal_lag)
        return tool_usage(&cli, "--max-age, --wal-directory and --max-wal-lag go with --check-age");
    if (rekey || add_key)
        return rekey_backup();
    if (old_key_file.n || old_pass_file.n)
        return tool_usage(&cli, "--old-key-file and --old-passphrase-file go with --rekey or --add-key");
    if (latest_before && (!backup_root || backup_dir || to_stdout || list || incremental || parent_dir))
        return tool_usage(&cli, "--latest-before TIME takes --backup-root DIR only");
    if (latest_before)
        return latest();
    if (list && (!backup_root || backup_dir || to_stdout || incremental || parent_dir))
        return tool_usage(&cli, "--list takes --backup-root DIR (and --json) only");
    return list ? list_root() : backup();
}
