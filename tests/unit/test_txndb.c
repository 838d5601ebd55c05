/* test_txndb: write policy names, and recovering copies of TransactionDBs written under each
 * policy (themis-txnmini: committed, 2PC, rolled-back, sectioned transactions and merges,
 * one transaction left prepared, everything in the WAL) to exactly the committed content. */
#include "error.h"
#include "fs.h"
#include "rocks.h"
#include "rocksopts.h"
#include "stream.h"
#include "tap.h"
#include "dbfix.h"
#include "txndb.h"
#include "content.h"

#include <dirent.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[256];
static const char *bin;

static void test_policy(void)
{
    enum tb_policy p = TB_POLICY_UNKNOWN;
    is_str(tb_policy_name(TB_POLICY_COMMITTED), "write_committed", "name of committed");
    is_str(tb_policy_name(TB_POLICY_PREPARED), "write_prepared", "name of prepared");
    is_str(tb_policy_name(TB_POLICY_UNPREPARED), "write_unprepared", "name of unprepared");
    is_str(tb_policy_name(TB_POLICY_UNKNOWN), "unknown", "name of unknown");
    is_str(tb_policy_name((enum tb_policy)42), "unknown", "name of an out-of-range value");
    is_int(tb_policy_parse("write_committed", &p), 0, "parse write_committed");
    is_int(p, TB_POLICY_COMMITTED, "  is committed");
    is_int(tb_policy_parse("write_prepared", &p), 0, "parse write_prepared");
    is_int(p, TB_POLICY_PREPARED, "  is prepared");
    is_int(tb_policy_parse("write_unprepared", &p), 0, "parse write_unprepared");
    is_int(p, TB_POLICY_UNPREPARED, "  is unprepared");
    is_int(tb_policy_parse("unknown", &p), TB_EUSAGE, "'unknown' is not a policy");
    is_int(tb_policy_parse("WRITE_PREPARED", &p), TB_EUSAGE, "names are lower case");
    is_int(tb_policy_parse("", &p), TB_EUSAGE, "empty is not a policy");
    ok(strstr(tb_error_last(), "write_unprepared") != NULL, "the error lists the names: %s", tb_error_last());
    is_int(p, TB_POLICY_UNPREPARED, "a failed parse leaves the output alone");
}

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, bin, a, b);
    return system(cmd);
}

/* Content hash through the C API's read-only open; "" when it does not open. */
static int hash_of(const char *dir, char hex[65])
{
    tb_rocks *r = NULL;
    struct tb_rocks_hash h = { 0 };
    char *scratch = tb_fs_join(root, "hash-scratch");
    int rc = tb_rocks_open(&r, dir, TB_ROCKS_READONLY, scratch);
    hex[0] = '\0';
    if (rc == 0 && (rc = tb_rocks_hash(r, &h, NULL)) == 0)
        tb_hex(h.digest, 32, hex);
    tb_rocks_hash_clear(&h);
    tb_rocks_free(r);
    tb_fs_rm_rf(scratch);
    free(scratch);
    return rc;
}

/* Bytes in dir's *.log files, and how many there are. */
static long long wal_bytes(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long long n = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        struct stat st;
        char *p;
        if (l < 4 || strcmp(e->d_name + l - 4, ".log") != 0 || !(p = tb_fs_join(dir, e->d_name)))
            continue;
        if (stat(p, &st) == 0)
            n += st.st_size;
        if (files)
            (*files)++;
        free(p);
    }
    if (d)
        closedir(d);
    return n;
}

/* Whether dir's newest OPTIONS file is the writer's: two_write_queues as given, and the
 * writer's 2 GiB write buffer rather than recovery's cap. */
static int options_say(const char *dir, int two_queues)
{
    struct tb_rocksopts o = { 0 };
    char *path = NULL, *text = NULL;
    size_t len = 0;
    int good = tb_rocksopts_read(dir, &o) == 0 && o.two_write_queues &&
               strcmp(o.two_write_queues, two_queues ? "true" : "false") == 0 &&
               asprintf(&path, "%s/%s", dir, o.file) > 0 && tb_fs_read_file(path, &text, &len) == 0 &&
               strstr(text, "write_buffer_size=2147483648") != NULL;
    tb_rocksopts_clear(&o);
    free(path);
    free(text);
    return good;
}

static void test_recover(const char *policy, enum tb_policy p)
{
    char *db = tb_fs_join(root, policy), *logs = tb_fs_join(root, "logs"), got[65], want[65], *exp = NULL;
    long long bytes;
    int nwal, rc;
    if (asprintf(&exp, "%s/expected-%s", root, policy) < 0)
        return;
    ok(sh("%s/themis-txnmini --db %s --expected --policy %s", exp, policy) == 0 && hash_of(exp, want) == 0,
       "%s: the committed content, written as plain puts: %s", policy, want);
    ok(sh("%s/themis-txnmini --db %s --policy %s", db, policy) == 0, "%s: a writer died with a prepared transaction",
       policy);
    if (p != TB_POLICY_COMMITTED)
        ok(hash_of(db, got) < 0 && strstr(tb_error_last(), "WritePrepared/WriteUnprepared"),
           "%s: before recovery the C API cannot open it", policy);
    ok(wal_bytes(db, NULL) > 0, "%s: its writes are all in the WAL (%lld bytes)", policy, wal_bytes(db, NULL));
    rc = tb_txndb_recover(db, p, logs);
    is_int(rc, 0, "%s: recovered%s%s", policy, rc ? ": " : "", rc ? tb_error_last() : "");
    is_int(hash_of(db, got), 0, "%s: the C API opens it read-only now", policy);
    is_str(got, want, "%s: exactly the committed content (no prepared, rolled-back or unfinished data)", policy);
    /* Write-committed writes the rollback of a prepared transaction as a marker only
     * (nothing to flush), so its current WAL keeps that marker, which every open reads. */
    nwal = 0;
    bytes = wal_bytes(db, &nwal);
    ok(nwal == 1 && (p == TB_POLICY_COMMITTED ? bytes < 100 : bytes == 0),
       "%s: one WAL file left, holding no data (%d files, %lld bytes)", policy, nwal, bytes);
    ok(tb_fs_exists(logs) && !tb_fs_exists_in(db, "LOG.new"), "%s: RocksDB's info log went to the log directory",
       policy);
    is_int(tb_txndb_recover(db, p, logs), 0, "%s: recovering again changes nothing", policy);
    is_int(hash_of(db, got), 0, "%s: and it still opens", policy);
    is_str(got, want, "%s: with the same content", policy);
    ok(options_say(db, p != TB_POLICY_COMMITTED),
       "%s: its OPTIONS file is the writer's again (two_write_queues, write buffers)", policy);
    free(exp);
    free(db);
    free(logs);
}


int main(void)
{
    char *exp, *u, *w;
    test_policy();

    bin = getenv("TB_BIN") ? getenv("TB_BIN") : "build/bin";
    snprintf(root, sizeof root, "%s/test_txndb.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    exp = tb_fs_join(root, "expected"), u = tb_fs_join(root, "unknown"), w = tb_fs_join(root, "wrong");
    test_recover("committed", TB_POLICY_COMMITTED);
    test_recover("prepared", TB_POLICY_PREPARED);
    test_recover("unprepared", TB_POLICY_UNPREPARED);
    ok(sh("%s/themis-txnmini --db %s --expected --policy %s", exp, "committed") == 0, "a plain database");

    is_int(tb_txndb_recover(exp, TB_POLICY_UNKNOWN, NULL), TB_EUSAGE, "no recovery without the writer's policy");
    ok(sh("%s/themis-txnmini --db %s --policy %s", w, "prepared") == 0, "another write-prepared database");
    ok(tb_txndb_recover(w, TB_POLICY_COMMITTED, NULL) < 0 && strstr(tb_error_last(), "WritePrepared"),
       "recovered with the wrong policy it fails, nothing guessed: %s", tb_error_last());
    ok(sh("%s/themis-mergewriter --db %s --unknown Other.MergeOperator%s", u, "") == 0, "a database with an unknown operator");
    {
        /* A stand-in under the unknown name: recovery needs no merge; reading the merged
         * key does, and the content is then unavailable, naming operator and family. */
        struct tb_content c = { 0 };
        char *scratch = tb_fs_join(root, "content");
        struct tb_content_opts co = { .policy = TB_POLICY_COMMITTED, .in_place = 1, .scratch = scratch };
        is_int(tb_content_of(u, &co, &c), 0, "its content is worked out%s%s", c.unavailable ? "" : ": ", c.unavailable ? "" : tb_error_last());
        ok(c.unavailable && strstr(c.unavailable, "merge operator Other.MergeOperator of column family mystery is not one the tools know"),
           "unavailable, naming the operator and the column family: %s", c.unavailable ? c.unavailable : "(none)");
        tb_content_clear(&c);
        free(scratch);
        is_int(tb_txndb_recover(u, TB_POLICY_COMMITTED, NULL), 0, "its recovery works with a stand-in under the name");
    }
    {
        char *copy = db_paths_copy(root), got[65];
        is_int(copy ? tb_txndb_recover(copy, TB_POLICY_COMMITTED, NULL) : -1, 0,
               "a copy of a db_paths database (tables of path ids 0 and 1 in one directory) recovers");
        ok(copy && hash_of(copy, got) == 0, "and opens");
        free(copy);
    }
    tb_fs_rm_rf(root);
    free(exp), free(u), free(w);
    return done_testing();
}
