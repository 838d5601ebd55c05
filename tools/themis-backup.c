/* themis-backup: consistent full backup of a live or stopped ThemisDB, optionally with config. */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>

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

#include <sys/stat.h>

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
    { "backup-directory", 0, TB_OPT_STRING, &backup_dir, "DIR", "write the backup here (created; must not exist or be empty)" },
    { "stdout", 0, TB_OPT_FLAG, &to_stdout, NULL, "write the backup stream (tar, .zst with --compress) to stdout" },
    { "database-path", 0, TB_OPT_STRING, &db_path, "DIR", "RocksDB directory (default: storage.rocksdb_path of the config, else " TB_THEMIS_DB_PATH ")" },
    { "db-wal-dir", 0, TB_OPT_STRING, &db_wal_dir, "DIR", "the database's WAL directory (RocksDB wal_dir; default: the one its OPTIONS file names, else --database-path)" },
    { "db-paths", 0, TB_OPT_STRING, &db_paths_arg, "DIR,DIR", "the database's table directories in RocksDB's db_paths order, when not all in --database-path" },
    { "compress", 0, TB_OPT_FLAG, &compress, NULL, "compress with zstd (backup.tar.zst)" },
    { "compress-level", 0, TB_OPT_INT, &level, "N", "zstd level (default 3)" },
    { "threads", 0, TB_OPT_INT, &threads, "N", "zstd worker threads (default: number of CPUs)" },
    { "include-config", 0, TB_OPT_FLAG, &include_config, NULL, "include ThemisDB's config and the files it names under its directory" },
    { "config-file", 0, TB_OPT_STRING, &config_file, "PATH", "ThemisDB config (default " TB_THEMIS_CONFIG ", else " TB_THEMIS_CONFIG_OLD " beside it)" },
    { "write-policy", 0, TB_OPT_STRING, &policy_arg, "POLICY",
      "the writer's transaction write policy: write_committed, write_prepared or write_unprepared (default: detected)" },
    { "created", 0, TB_OPT_STRING, &created, "TIME",
      "record TIME (RFC 3339) as the backup's creation time instead of now (imports, tests of retention)" },
    { "server-url", 0, TB_OPT_STRING, &server_url, "URL", "ask the server for the checkpoint (POST /admin/backup)" },
    { "progress", 0, TB_OPT_OPTSTRING, &progress_arg, "json", "show progress on stderr (a line, or JSON lines)" },
    { "incremental-from", 0, TB_OPT_STRING, &parent_dir, "DIR", "store only files the backup in DIR lacks; the rest are read from it (and its parents) on restore" },
    { "incremental", 0, TB_OPT_FLAG, &incremental, NULL, "like --incremental-from, with the newest good backup under --backup-root" },
    { "backup-root", 0, TB_OPT_STRING, &backup_root, "DIR", "with --incremental: where the earlier backups are" },
    { "full-every", 0, TB_OPT_INT, &full_every, "N", "with --incremental*: a full backup instead when the chain would reach N" },
    { "list", 0, TB_OPT_FLAG, &list, NULL, "with --backup-root: list the backups there, newest first, with their chains" },
    { "json", 0, TB_OPT_FLAG, &json, NULL, "with --list: one JSON array" },
    { "latest-before", 0, TB_OPT_STRING, &latest_before, "TIME", "with --backup-root: print the newest backup made at or before TIME whose last verification did not fail (the base for PITR to TIME)" },
    { "check-age", 0, TB_OPT_FLAG, &check_age, NULL, "with --backup-root and --max-age: exit 1 when the newest good backup is older (monitoring)" },
    { "max-age", 0, TB_OPT_STRING, &max_age, "AGE", "with --check-age: e.g. 26h (s, m, h, d)" },
    { "wal-directory", 0, TB_OPT_STRING, &wal_dir, "DIR", "with --check-age and --max-wal-lag: the WAL archive to watch" },
    { "max-wal-lag", 0, TB_OPT_STRING, &max_wal_lag, "AGE", "with --check-age: exit 1 when the archiver has not polled for longer" },
    { "encrypt", 0, TB_OPT_FLAG, &encrypt, NULL, "encrypt the backup (AES-256-GCM) for --key-file and/or --passphrase-file" },
    TOOL_KEY_OPTIONS(key_file, pass_file),
    { "plain-manifest", 0, TB_OPT_FLAG, &plain_manifest, NULL, "with --encrypt: keep file names and hashes in the MANIFEST.json beside the archive" },
    { "rekey", 0, TB_OPT_FLAG, &rekey, NULL, "rewrap the data key of the encrypted backup in --backup-directory: --old-key-file's key is replaced by --key-file's" },
    { "add-key", 0, TB_OPT_FLAG, &add_key, NULL, "like --rekey, keeping the old key: either then opens the backup" },
    { "old-key-file", 0, TB_OPT_LIST, &old_key_file, "FILE", "with --rekey/--add-key: a key that opens the backup now (repeatable)" },
    { "old-passphrase-file", 0, TB_OPT_LIST, &old_pass_file, "FILE", "with --rekey/--add-key: a passphrase that opens the backup now (repeatable)" },
    TOOL_PRIORITY_OPTIONS(prio_nice, prio_io),
    TOOL_RATE_OPTION(rate_arg),
    { "verbose", 'v', TB_OPT_FLAG, &verbose, NULL, "print a summary on stderr" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-backup", "--backup-directory DIR | --stdout [OPTIONS] | --list --backup-root DIR [--json] | --check-age --backup-root DIR --max-age AGE | --rekey|--add-key --backup-directory DIR --old-key-file F --key-file F",
    "Takes a consistent full backup of a ThemisDB RocksDB, live or stopped, never opening it read-write.",
    opts,
};

/* One backup at a time into a directory's parent (two cron runs of the same job): an
 * exclusive flock on the parent directory itself, held until exit, so nothing is left
 * there. -1 with the error set. */
static int lock_destination(const char *dir)
{
    char *parent = tb_fs_dirname(dir);
    int fd = -1;
    /* The parent is created here rather than later by the publish, to hold the lock on. */
    if (parent && tb_fs_mkdir_p(parent, 0755) == 0)
        fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        tb_error_errno(TB_EIO, errno, "cannot open %s", parent ? parent : dir);
    } else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        tb_error_set(TB_EIO, "another themis-backup is writing into %s; not starting a second one", parent);
        close(fd);
        fd = -1;
    }
    free(parent);
    return fd;
}

/* "26h", "90m", "2d", "45s" (or plain seconds) in nanoseconds; -1 when malformed. */
static int64_t parse_age(const char *s)
{
    char *end;
    double v = s ? strtod(s, &end) : -1;
    int64_t unit = 1;
    if (!s || end == s || v < 0)
        return -1;
    switch (*end) {
    case 'd': unit = 86400; end++; break;
    case 'h': unit = 3600; end++; break;
    case 'm': unit = 60; end++; break;
    case 's': end++; break;
    case '\0': break;
    default: return -1;
    }
    return *end ? -1 : (int64_t)(v * (double)unit * 1e9);
}

static void fmt_age(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns / 1000000000;
    if (s >= 86400)
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
}

/* Monitoring: one line, exit 1 when the newest good backup is too old or the archiver
 * has not polled for too long. "Good": not recorded as failing --verify-only. */
static int check_root(void)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    int64_t now = tb_time_now_ns(), lim = parse_age(max_age), wlim = max_wal_lag ? parse_age(max_wal_lag) : 0;
    char a[32], b[32];
    int rc, state = 0, quick;
    const struct tb_catalog_entry *good = NULL;
    int64_t when;
    if (lim < 0 || wlim < 0)
        return tool_usage(&cli, "an age is a number with s, m, h or d (26h)");
    if ((rc = tb_catalog_list(backup_root, &v, &n)) < 0)
        return tool_fail(&cli, rc);
    for (size_t i = 0; i < n && !good; i++) {
        tb_catalog_last_verify(v[i].dir, &state, &when, &quick);
        if (state >= 0)
            good = &v[i];
    }
    if (!good) {
        rc = tb_error_set(TB_EIO, "no good backup under %s", backup_root);
    } else if (now - good->created_ns > lim) {
        fmt_age(now - good->created_ns, a, sizeof a);
        fmt_age(lim, b, sizeof b);
        rc = tb_error_set(TB_EIO, "the newest good backup is %s old (more than %s): %s", a, b, good->dir);
    }
    if (rc == 0 && wal_dir) {
        char *st = tb_fs_join(wal_dir, "state.tsv"), *text = NULL, *lag;
        struct stat sb;
        int seen = st && stat(st, &sb) == 0;
        int64_t ago = seen ? now - ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec) : 0, since = 0;
        unsigned long long bytes = 0;
        /* An archiver records since when it may lack writes (the start of its last pass
         * that read the WAL to its end) and the bytes then unread; older ones only the
         * file's time of its last pass. */
        if (seen && tb_fs_read_file(st, &text, NULL) == 0 && (lag = strstr(text, "\nlag\t")) &&
            sscanf(lag, "\nlag\t%llu\t%" SCNd64, &bytes, &since) == 2 && since > 0 && now - since > ago)
            ago = now - since;
        if (!seen)
            rc = tb_error_set(TB_EIO, "no WAL archiver has run in %s", wal_dir);
        else if (ago > wlim) {
            fmt_age(ago, a, sizeof a);
            fmt_age(wlim, b, sizeof b);
            rc = tb_error_set(TB_EIO, "the WAL archive is %s behind the live WAL (more than %s; %.1f MiB unread at its "
                              "last pass): %s", a, b, (double)bytes / 1048576.0, wal_dir);
        }
        free(text);
        free(st);
    }
    if (rc == 0) {
        fmt_age(now - good->created_ns, a, sizeof a); /* state and quick are good's, from the loop */
        printf("ok: newest good backup %s is %s old (%s)\n", good->dir, a,
               state > 0 ? (quick ? "checksums verified" : "verified") : "not verified yet");
    }
    tb_catalog_free(v, n);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}

/* --latest-before T: the base for recovery to T, by the catalog alone (creation time and the
 * recorded verification; themis-restore verifies it again before use). */
static int latest(void)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    int64_t t, when;
    int state, quick, rc = tb_time_parse(latest_before, &t);
    if (rc == 0)
        rc = tb_catalog_list(backup_root, &v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].created_ns > t)
            continue;
        tb_catalog_last_verify(v[i].dir, &state, &when, &quick);
        if (state < 0) {
            fprintf(stderr, "%s: skipping %s: its last verification failed\n", cli.tool, v[i].dir);
            continue;
        }
        printf("%s\n", v[i].dir);
        tb_catalog_free(v, n);
        return 0;
    }
    if (rc == 0)
        rc = tb_error_set(TB_EGAP, "no backup under %s was made at or before %s", backup_root, latest_before);
    tb_catalog_free(v, n);
    return tool_fail(&cli, rc);
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
        printf("created\tbackup\tsequence\tdb_bytes\tarchive_bytes\tstored_bytes\tparent\tchain\tencrypted\tverified\n");
    for (size_t i = 0; i < n; i++) {
        const struct tb_manifest *m = v[i].m;
        const char *name = strrchr(v[i].dir, '/') ? strrchr(v[i].dir, '/') + 1 : v[i].dir;
        char verified[64] = "-";
        int state, quick;
        int64_t when;
        tb_catalog_last_verify(v[i].dir, &state, &when, &quick);
        if (state) {
            tb_time_format(when, verified, sizeof verified);
            snprintf(verified + strlen(verified), sizeof verified - strlen(verified), " %s%s", state > 0 ? "ok" : "FAILED",
                     quick ? " (quick)" : "");
        }
        if (json) {
            json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:i, s:s}", "created", m->created,
                                                 "backup", name, "sequence", (json_int_t)m->last_seq, "db_bytes",
                                                 (json_int_t)m->db_bytes, "archive_bytes", (json_int_t)m->archive_size,
                                                 "stored_bytes", (json_int_t)tb_catalog_stored_bytes(m), "parent",
                                                 m->parent_path ? json_string(m->parent_path) : json_null(), "chain",
                                                 (int)m->chain, "content_hash", m->content_hash));
            json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "encrypted", json_boolean(m->encrypted));
            if (state)
                json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "verified", json_string(verified));
        } else {
            printf("%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%u\t%s\t%s\n", m->created, name, m->last_seq,
                   m->db_bytes, m->archive_size, tb_catalog_stored_bytes(m), m->parent_path ? m->parent_path : "-",
                   m->chain, m->encrypted ? "yes" : "no", verified);
        }
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

int main(int argc, char **argv)
{
    struct tb_backup_opts o = { 0 };
    struct tb_manifest *m = NULL;
    struct tb_config *cfg = NULL;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    tb_stream *out = NULL;
    char host[256] = "";
    int argi, rc, status;
    char *picked = NULL, **db_paths = NULL;
    struct tb_snapshot_info snap = { 0 };
    struct tb_content content = { 0 };

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if ((status = tool_priority(&cli, prio_nice, prio_io)) >= 0)
        return status;
    if ((status = tool_rate_limit(&cli, rate_arg, &rate_limit)) >= 0)
        return status;
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (check_age) {
        if (!backup_root || !max_age || backup_dir || to_stdout || list || (!!wal_dir != !!max_wal_lag))
            return tool_usage(&cli, "--check-age takes --backup-root DIR --max-age AGE [--wal-directory DIR --max-wal-lag AGE]");
        return check_root();
    }
    if (max_age || wal_dir || max_wal_lag)
        return tool_usage(&cli, "--max-age, --wal-directory and --max-wal-lag go with --check-age");
    if (rekey || add_key) {
        tb_keyring *old = NULL, *add = NULL;
        if (rekey && add_key)
            return tool_usage(&cli, "give one of --rekey and --add-key");
        if (!backup_dir || to_stdout || list || backup_root || encrypt)
            return tool_usage(&cli, "--rekey and --add-key take --backup-directory DIR, the old key and the new one");
        if (!old_key_file.n && !old_pass_file.n)
            return tool_usage(&cli, "--rekey and --add-key need the key that opens the backup now (--old-key-file or --old-passphrase-file)");
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
    if (old_key_file.n || old_pass_file.n)
        return tool_usage(&cli, "--old-key-file and --old-passphrase-file go with --rekey or --add-key");
    if (latest_before) {
        if (!backup_root || backup_dir || to_stdout || list || incremental || parent_dir)
            return tool_usage(&cli, "--latest-before TIME takes --backup-root DIR only");
        return latest();
    }
    if (list) {
        if (!backup_root || backup_dir || to_stdout || incremental || parent_dir)
            return tool_usage(&cli, "--list takes --backup-root DIR (and --json) only");
        return list_root();
    }
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
        return tool_usage(&cli, "--incremental needs --backup-directory (with --stdout, name the parent: --incremental-from DIR)");
    if (full_every < 0 || (full_every && !incremental && !parent_dir))
        return tool_usage(&cli, "--full-every N (N > 0) goes with --incremental or --incremental-from");
    if (level < -7 || level > 22)
        return tool_usage(&cli, "--compress-level must be between -7 and 22");
    if (threads < 0)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (encrypt != (key_file.n || pass_file.n))
        return tool_usage(&cli, encrypt ? "--encrypt needs --key-file or --passphrase-file"
                                        : "--key-file and --passphrase-file go with --encrypt (or --rekey/--add-key)");
    if (plain_manifest && !encrypt)
        return tool_usage(&cli, "--plain-manifest goes with --encrypt");
    if (created && tb_time_parse(created, &(int64_t){ 0 }) < 0)
        return tool_usage(&cli, "--created must be an RFC 3339 time, e.g. 2026-11-24T22:41:00Z");
    if ((status = tool_keys(&cli, &key_file, &pass_file, &o.keys)) >= 0)
        return status;
    o.plain_manifest = plain_manifest;

    /* The config names the DB; it must exist when asked for explicitly or included. Where
     * config.yaml is absent, older installations keep themisdb.conf beside it. */
    if ((config_file || include_config || !db_path) &&
        (rc = tb_config_open(&cfg, config_file, config_file || include_config)) < 0)
        return tool_fail(&cli, rc);
    if (!db_path)
        db_path = tb_config_db_path(cfg);

    gethostname(host, sizeof host - 1);
    o.db_path = db_path;
    o.backup_dir = backup_dir;
    o.scratch = tool_tmpdir();
    o.compress = compress;
    o.level = (int)level;
    o.threads = (int)threads;
    o.server_url = server_url;
    o.host = host;
    o.created = created;
    o.db_wal_dir = db_wal_dir;
    if (db_paths_arg && (rc = tb_snapshot_split_paths(db_paths_arg, &db_paths, &o.ndb_paths)) < 0)
        return rc == TB_EUSAGE ? tool_usage(&cli, tb_error_last()) : tool_fail(&cli, rc);
    o.db_paths = (const char *const *)db_paths;
    o.snapshot = &snap;
    o.content = &content;
    if (policy_arg && tb_policy_parse(policy_arg, &o.policy) < 0)
        return tool_usage(&cli, tb_error_last());
    if (include_config) {
        o.config_file = cfg->path;
        o.config_dir = tb_fs_dirname(cfg->path);
    }
    tb_progress_start(&prog, pmode, stderr, "backup", 0);
    o.progress = tb_progress_update;
    o.progress_arg = &prog;
    o.progress_total = &prog.total;
    if (to_stdout && (rc = tb_stream_fd(&out, 1, 0, "stdout")) < 0)
        return tool_fail(&cli, rc);
    o.out = out;
    o.full_every = (unsigned)full_every;
    o.rate_limit = rate_limit;
    o.parent_dir = parent_dir;
    if (incremental && (rc = tb_restore_pick(backup_root, INT64_MAX, &(struct tb_restore_opts){ .keys = o.keys }, NULL, tool_skipped, (void *)cli.tool, NULL, &picked)) < 0 && rc != TB_EGAP)
        return tool_fail(&cli, rc);
    if (incremental)
        o.parent_dir = picked; /* none yet: the first is a full backup */
    if (backup_dir && lock_destination(backup_dir) < 0)
        return tool_fail(&cli, TB_EIO);
    rc = tb_backup_run(&o, &m);
    tb_progress_finish(&prog);
    if (rc == 0 && m->hash_unavailable)
        fprintf(stderr, "%s: note: backed up and checked by checksums, but without a content hash: %s\n", cli.tool,
                m->hash_unavailable);
    if (rc == 0 && verbose) {
        uint64_t stored = 0;
        size_t nstored = 0;
        for (size_t i = 0; i < m->nfiles; i++)
            if (!m->files[i].stored_in) {
                stored += m->files[i].size;
                nstored++;
            }
        fprintf(stderr, "%s: backed up %s: %zu files, %" PRIu64 " bytes of data, sequence %" PRIu64 ", content hash %s\n",
                cli.tool, db_path, m->nfiles, m->db_bytes, m->last_seq, m->hash_unavailable ? "unavailable" : m->content_hash);
        fprintf(stderr, "%s: write policy %s (%s); %zu table and blob files checked by their own checksums, %zu not\n",
                cli.tool, tb_policy_name(content.policy), content.policy_how ? content.policy_how : "",
                content.tables_checked, content.tables_unchecked);
        if (snap.version)
            fprintf(stderr, "%s: snapshot from files: %s (%" PRIu64 " bytes), %zu table and blob files linked, %zu "
                    "copied, %zu WAL files (%" PRIu64 " bytes), %d attempt%s%s\n", cli.tool, snap.manifest,
                    snap.manifest_bytes, snap.linked, snap.copied, snap.wals, snap.wal_bytes, snap.attempts,
                    snap.attempts == 1 ? "" : "s", snap.options_rewritten ? "; OPTIONS' wal_dir cleared" : "");
        if (m->parent_path)
            fprintf(stderr, "%s: incremental on %s (chain %u): stored %zu files, %" PRIu64 " bytes; %zu files from the chain\n",
                    cli.tool, m->parent_path, m->chain, nstored, stored, m->nfiles - nstored);
    }
    tb_manifest_free(m);
    tb_stream_free(out);
    tb_config_free(cfg);
    free((char *)o.config_dir);
    free(picked);
    tb_snapshot_free_paths(db_paths);
    tb_snapshot_info_clear(&snap);
    tb_content_clear(&content);
    tb_keyring_free(o.keys);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
