/* tool: the few lines every tool shares: parsing with the table, one-line errors, exit codes. */
#ifndef TB_TOOL_H
#define TB_TOOL_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "crypt.h"
#include "error.h"
#include "mem.h"

/* Prints "tool: message" for the last error and returns the exit status for rc. */
static inline int tool_fail(const struct tb_cli *cli, int rc)
{
    fprintf(stderr, "%s: %s\n", cli->tool, tb_error_last());
    return tb_error_exit_code(rc);
}

/* Parses argv; returns -1 to go on, else the exit status to return now. Every tool starts
 * here, so here its memory behaviour is set (mem.c: memtables, WAL records, buffers). */
static inline int tool_parse(const struct tb_cli *cli, int argc, char **argv, int *argi)
{
    int rc;
    tb_mem_bound();
    rc = tb_cli_parse(cli, argc, argv, argi);
    if (rc == TB_CLI_HELP) {
        tb_cli_help(cli, stdout);
        return 0;
    }
    if (rc == TB_CLI_VERSION) {
        printf("%s %s\n", cli->tool, TB_VERSION);
        return 0;
    }
    if (rc < 0)
        return tool_fail(cli, rc);
    return -1;
}

static inline int tool_usage(const struct tb_cli *cli, const char *msg)
{
    fprintf(stderr, "%s: %s (see --help)\n", cli->tool, msg);
    return 2;
}

/* tool_parse for a tool that takes options only: an argument left over is a usage error. */
static inline int tool_parse_options(const struct tb_cli *cli, int argc, char **argv)
{
    int argi, status = tool_parse(cli, argc, argv, &argi);
    if (status < 0 && argi < argc)
        return tool_usage(cli, "unexpected argument");
    return status;
}

static void tool_on_signal(int sig)
{
    tb_interrupted = sig;
}

/* SIGINT, SIGTERM and SIGHUP go to on_signal; no SA_RESTART, so blocking reads, writes and
 * sleeps return at once. */
static inline void tool_catch_signals_with(void (*on_signal)(int))
{
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The default: a signal makes the library stop and remove its temporary files. */
static inline void tool_catch_signals(void)
{
    tool_catch_signals_with(tool_on_signal);
}

/* The --nice and --io-nice entries of a tool's option table; tool_priority applies them. */
#define TOOL_PRIORITY_OPTIONS(nice, io)                                                         \
    { "nice", 0, TB_OPT_INT, &(nice), "N", "run at this CPU niceness (1-19 lower priority)" },  \
    {                                                                                           \
        "io-nice", 0, TB_OPT_STRING, &(io), "CLASS", "I/O priority: idle, or best-effort[:0-7]" \
    }

/* --rate-limit: MiB per second, or bytes per second with a suffix (tb_cli_parse_rate). */
#define TOOL_RATE_OPTION(rate)                                                          \
    {                                                                                   \
        "rate-limit", 0, TB_OPT_STRING, &(rate), "MiB/s",                               \
            "read at most this many MiB per second (or bytes with a suffix: 512k, 50M)" \
    }

/* The options several tools take, declared once so that each has the same name, letter,
 * kind and argument everywhere; a tool's help text says only what is its own. */

/* -v, --verbose; help: what it prints. */
#define TOOL_VERBOSE_OPTION(var, help)                  \
    {                                                   \
        "verbose", 'v', TB_OPT_FLAG, &(var), NULL, help \
    }

/* The entry that ends every option table. */
#define TOOL_OPTIONS_END             \
    {                                \
        NULL, 0, 0, NULL, NULL, NULL \
    }

/* --progress[=json] (tb_progress_parse): "show WHAT on stderr"; when: "" or the cases it
 * applies to ("with put: "). */
#define TOOL_PROGRESS_OPTION_WHEN(var, when, what)                                                              \
    {                                                                                                           \
        "progress", 0, TB_OPT_OPTSTRING, &(var), "json", when "show " what " on stderr (a line, or JSON lines)" \
    }
#define TOOL_PROGRESS_OPTION(var, what) TOOL_PROGRESS_OPTION_WHEN(var, "", what)

/* --write-policy (tb_policy_parse): lead: what the policy is for; dflt: what holds without it. */
#define TOOL_WRITE_POLICY_OPTION(var, lead, dflt)                                           \
    {                                                                                       \
        "write-policy", 0, TB_OPT_STRING, &(var), "POLICY",                                 \
            lead " write_committed, write_prepared or write_unprepared (default: " dflt ")" \
    }

/* --config-file: ThemisDB's config (tb_config_locate); what: what the tool reads in it ("" or
 * " naming ..."). */
#define TOOL_CONFIG_FILE_OPTION(var, what)                                                                    \
    {                                                                                                         \
        "config-file", 0, TB_OPT_STRING, &(var), "PATH",                                                      \
            "ThemisDB config" what " (default " TB_THEMIS_CONFIG ", else " TB_THEMIS_CONFIG_OLD " beside it)" \
    }

/* Where things are: a RocksDB directory (--database-path) and its WAL files when elsewhere
 * (--db-wal-dir: RocksDB's wal_dir), a WAL archive (--wal-directory), a directory of backups
 * (--backup-root); help: what the tool does with it. */
#define TOOL_DIR_OPTION(name, var, help)            \
    {                                               \
        name, 0, TB_OPT_STRING, &(var), "DIR", help \
    }
#define TOOL_DATABASE_PATH_OPTION(var, help) TOOL_DIR_OPTION("database-path", var, help)
#define TOOL_DB_WAL_DIR_OPTION(var, help) TOOL_DIR_OPTION("db-wal-dir", var, help)
#define TOOL_WAL_DIRECTORY_OPTION(var, help) TOOL_DIR_OPTION("wal-directory", var, help)
#define TOOL_BACKUP_ROOT_OPTION(var, help) TOOL_DIR_OPTION("backup-root", var, help)

/* --db-wal-dir and --db-paths (RocksDB db_paths: the table directories, in order): the
 * whole of a database that is not all in --database-path. */
#define TOOL_DB_DIRS_OPTIONS(wal_dir, paths, wal_help, paths_help)    \
    TOOL_DB_WAL_DIR_OPTION(wal_dir, wal_help),                        \
    {                                                                 \
        "db-paths", 0, TB_OPT_STRING, &(paths), "DIR,DIR", paths_help \
    }

/* --compress-level: zstd's level; of: "" or what is compressed (" of segments"). */
#define TOOL_COMPRESS_LEVEL_OPTION(var, of)                                          \
    {                                                                                \
        "compress-level", 0, TB_OPT_INT, &(var), "N", "zstd level" of " (default 3)" \
    }

/* The end of a long-running tool's option table: --nice, --io-nice, --rate-limit, -v
 * (its help says what it prints) and the terminator. */
#define TOOL_RUN_OPTIONS(nice, io, rate, verbose, verbose_help)                                          \
    TOOL_PRIORITY_OPTIONS(nice, io), TOOL_RATE_OPTION(rate), TOOL_VERBOSE_OPTION(verbose, verbose_help), \
        TOOL_OPTIONS_END

/* *bytes: the --rate-limit given (0 when none). Returns -1 to go on, else the exit status. */
static inline int tool_rate_limit(const struct tb_cli *cli, const char *rate, uint64_t *bytes)
{
    long long v = 0;
    if (rate && tb_cli_parse_rate(rate, &v) < 0)
        return tool_usage(cli, "--rate-limit takes MiB per second (50) or bytes per second with a suffix (512k, 50M)");
    *bytes = (uint64_t)v;
    return -1;
}

/* --nice N and --io-nice CLASS[:LEVEL] (idle, best-effort): so a backup does not starve
 * the server. Applied before any thread starts (both are per thread on Linux, inherited
 * by new threads). Returns -1 to go on, else the exit status. */
static inline int tool_priority(const struct tb_cli *cli, long long nice_level, const char *io)
{
    if (nice_level) {
        if (nice_level < -20 || nice_level > 19)
            return tool_usage(cli, "--nice must be between -20 and 19");
        errno = 0;
        if (setpriority(PRIO_PROCESS, 0, (int)nice_level) < 0)
            return tool_fail(cli, tb_error_errno(TB_EIO, errno, "cannot set the CPU priority to %lld", nice_level));
    }
    if (io) {
        int cls, level = 4;
        char *end = NULL;
        const char *colon = strchr(io, ':');
        size_t n = colon ? (size_t)(colon - io) : strlen(io);
        if (n == 4 && strncmp(io, "idle", 4) == 0)
            cls = 3;
        else if (n == 11 && strncmp(io, "best-effort", 11) == 0)
            cls = 2;
        else
            return tool_usage(cli, "--io-nice takes idle or best-effort[:0-7]");
        if (colon) {
            level = (int)strtol(colon + 1, &end, 10);
            if (cls != 2 || !colon[1] || *end || level < 0 || level > 7)
                return tool_usage(cli, "--io-nice takes idle or best-effort[:0-7]");
        }
        if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, cls << 13 | (cls == 2 ? level : 0)) < 0)
            return tool_fail(cli, tb_error_errno(TB_EIO, errno, "cannot set the I/O priority to %s", io));
    }
    return -1;
}

/* tb_restore_pick's report of a candidate it skipped; arg: the tool's name. */
static inline void tool_skipped(void *arg, const char *dir, const char *why)
{
    fprintf(stderr, "%s: skipping %s: %s\n", (const char *)arg, dir, why);
}

/* The --key-file and --passphrase-file entries of a tool's option table; tool_keys loads them. */
#define TOOL_KEY_OPTIONS(keyfile, passfile)                                                          \
    { "key-file", 0,      TB_OPT_LIST,                                                               \
      &(keyfile), "FILE", "key of encrypted data: 32 bytes, raw or as 64 hex digits (repeatable)" }, \
    {                                                                                                \
        "passphrase-file", 0, TB_OPT_LIST, &(passfile), "FILE",                                      \
            "passphrase of encrypted data: the file's first line (scrypt; repeatable)"               \
    }

/* --encrypt with the keys it seals for: what: what is sealed ("encrypt the backup"). */
#define TOOL_SEAL_OPTIONS(encrypt, keyfile, passfile, what)                                                         \
    { "encrypt", 0, TB_OPT_FLAG, &(encrypt), NULL, what " (AES-256-GCM) for --key-file and/or --passphrase-file" }, \
        TOOL_KEY_OPTIONS(keyfile, passfile)

/* A keyring of every key file and passphrase file given; *out is NULL when none is.
 * Reading, any of them opens the data; writing seals it for all of them. Returns -1 to go
 * on, else the exit status. */
static inline int tool_keys(const struct tb_cli *cli, const struct tb_strlist *keyfiles,
                            const struct tb_strlist *passfiles, tb_keyring **out)
{
    int rc = 0;
    *out = NULL;
    if (!keyfiles->n && !passfiles->n)
        return -1;
    rc = tb_keyring_new(out);
    for (size_t i = 0; rc == 0 && i < keyfiles->n; i++)
        rc = tb_keyring_add_key_file(*out, keyfiles->v[i]);
    for (size_t i = 0; rc == 0 && i < passfiles->n; i++)
        rc = tb_keyring_add_passphrase_file(*out, passfiles->v[i]);
    if (rc < 0) {
        tb_keyring_free(*out);
        *out = NULL;
        return tool_fail(cli, rc);
    }
    return -1;
}

/* Scratch directory for temporary files: $TMPDIR or /tmp. */
static inline const char *tool_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

#endif
