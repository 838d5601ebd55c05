/* test_catalog: a root of backups as the catalog reads it: a good backup, one whose last
 * verification failed, one with a damaged manifest, and entries that are no backup; the
 * newest before a time (tb_catalog_latest) and monitoring (tb_catalog_check). */
#include "tap.h"
#include "dbfix.h"
#include "backup.h"
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#define HOUR 3600000000000LL

static char root[256], db[300], backups[300], b1[320], b2[320], wal[300];
static int64_t now;

#define like_last(s) ok(strstr(tb_error_last(), s) != NULL, "  saying so: %s", tb_error_last())

/* "now - hours" in RFC 3339, whole seconds. */
static const char *ago(int hours, char *buf, size_t len)
{
    time_t t = (time_t)(now / 1000000000) - hours * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static int backup(const char *dir, int hours)
{
    char created[40];
    struct tb_backup_opts o = { .db_path = db,
                                .backup_dir = dir,
                                .scratch = root,
                                .level = 3,
                                .host = "unit",
                                .created = ago(hours, created, sizeof created) };
    int rc = tb_backup_run(&o, NULL);
    if (rc < 0)
        diag("backup %s: %s", dir, tb_error_last());
    return rc;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char *p = tb_fs_join(dir, name);
    int rc = tb_fs_mkdir_p(dir, 0755) == 0 ? tb_fs_write_atomic(p, text, strlen(text), 0644) : -1;
    free(p);
    return rc;
}

/* b1 30 hours old and verified (quick); b2 2 hours old, its verification failed; b3 with
 * a manifest cut short; notes/ and README, no backups. */
static int make_root(void)
{
    char b3[320], *text = NULL, *mpath;
    int rc;
    snprintf(b1, sizeof b1, "%s/b1", backups);
    snprintf(b2, sizeof b2, "%s/b2", backups);
    snprintf(b3, sizeof b3, "%s/b3", backups);
    if (backup(b1, 30) < 0 || backup(b2, 2) < 0 || backup(b3, 1) < 0)
        return -1;
    rc = tb_catalog_record_verify(b1, 0, 1, NULL);
    if (rc == 0)
        rc = tb_catalog_record_verify(b2, TB_EVERIFY, 0, "archive.sha256 differs");
    mpath = tb_fs_join(b3, TB_MANIFEST_NAME);
    if (rc == 0 && (rc = tb_fs_read_file(mpath, &text, NULL)) == 0)
        rc = tb_fs_write_atomic(mpath, text, strlen(text) / 2, 0644);
    free(text);
    free(mpath);
    if (rc == 0)
        rc = write_file(backups, "README", "not a backup\n");
    if (rc == 0) {
        char notes[320];
        snprintf(notes, sizeof notes, "%s/notes", backups);
        rc = write_file(notes, "todo.txt", "nothing\n");
    }
    return rc;
}

static void test_list(void)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    int rc = tb_catalog_list(backups, &v, &n);
    is_int(rc, 0, "the root lists");
    is_int(n, 2, "two backups: the damaged manifest and what is no backup are left out");
    if (n == 2) {
        is_str(v[0].dir, b2, "newest first: b2");
        is_str(v[1].dir, b1, "then b1");
        is_int(v[0].verify_state, -1, "b2's last verification failed");
        ok(v[1].verify_state == 1 && v[1].verify_quick && v[1].verified_ns > 0, "b1's passed, quick, with its time");
        ok(v[1].created_ns < v[0].created_ns && v[0].m->last_seq > 0, "with their creation times and manifests");
    }
    tb_catalog_free(v, n);
    rc = tb_catalog_list("/nonexistent/root", &v, &n);
    ok(rc == TB_ENOENT && n == 0, "a root that does not exist: TB_ENOENT");
}

static int nskipped;
static char skipped_dir[320], skipped_why[128];

static void skipped(void *arg, const char *dir, const char *why)
{
    (void)arg;
    nskipped++;
    snprintf(skipped_dir, sizeof skipped_dir, "%s", dir);
    snprintf(skipped_why, sizeof skipped_why, "%s", why);
}

static void test_latest(void)
{
    char t[40], *dir = NULL;
    int rc = tb_catalog_latest(&dir, backups, ago(0, t, sizeof t), skipped, NULL);
    is_int(rc, 0, "the newest before now");
    is_str(dir, b1, "is b1: b2's verification failed");
    ok(nskipped == 1 && strcmp(skipped_dir, b2) == 0, "b2 is reported skipped");
    is_str(skipped_why, "its last verification failed", "saying why");
    free(dir);
    dir = NULL;
    rc = tb_catalog_latest(&dir, backups, ago(10, t, sizeof t), NULL, NULL);
    ok(rc == 0 && dir && strcmp(dir, b1) == 0, "10 hours ago: b1");
    free(dir);
    dir = NULL;
    rc = tb_catalog_latest(&dir, backups, ago(40, t, sizeof t), NULL, NULL);
    ok(rc == TB_EGAP && !dir, "before every backup: TB_EGAP");
    like_last("no backup under");
    rc = tb_catalog_latest(&dir, backups, "yesterday", NULL, NULL);
    ok(rc == TB_EUSAGE && !dir, "a time that is not RFC 3339: TB_EUSAGE");
}

static void test_check(void)
{
    struct tb_catalog_check_opts co = { .now = now, .max_age = 31 * HOUR };
    struct tb_catalog_health h;
    char state[64];
    int rc = tb_catalog_check(&h, backups, &co);
    is_int(rc, 0, "--max-age 31h: healthy");
    is_str(h.dir, b1, "the newest good backup is b1 (b2 failed its verification)");
    ok(h.age >= 30 * HOUR && h.age < 30 * HOUR + HOUR / 60, "30 hours old");
    ok(h.verify_state == 1 && h.verify_quick, "verified by checksums");
    tb_catalog_health_clear(&h);
    co.max_age = 26 * HOUR;
    rc = tb_catalog_check(&h, backups, &co);
    ok(rc == TB_EIO && !h.dir, "--max-age 26h: TB_EIO");
    like_last("the newest good backup is 1d06h old (more than 1d02h): ");

    co.max_age = 31 * HOUR;
    co.wal_dir = wal;
    co.max_wal_lag = HOUR / 6;
    rc = tb_catalog_check(&h, backups, &co);
    ok(rc == TB_EIO, "a WAL directory no archiver has run in: TB_EIO");
    like_last("no WAL archiver has run in");
    snprintf(state, sizeof state, "position\t1\nlag\t73400320\t%lld\n", (long long)(now - HOUR / 2));
    write_file(wal, "state.tsv", state);
    rc = tb_catalog_check(&h, backups, &co);
    ok(rc == TB_EIO, "an archiver whose last full pass began 30 minutes ago, with 10m allowed: TB_EIO");
    like_last("the WAL archive is 30m00s behind the live WAL (more than 10m00s; 70.0 MiB unread at its last pass)");
    snprintf(state, sizeof state, "position\t1\nlag\t0\t%lld\n", (long long)tb_time_now_ns());
    write_file(wal, "state.tsv", state);
    rc = tb_catalog_check(&h, backups, &co);
    ok(rc == 0 && h.dir, "one that caught up just now: healthy");
    tb_catalog_health_clear(&h);
}

static void test_ages(void)
{
    int64_t ns = 0;
    char buf[32];
    ok(tb_catalog_age_parse(&ns, "26h") == 0 && ns == 26 * HOUR, "26h");
    ok(tb_catalog_age_parse(&ns, "90") == 0 && ns == 90000000000LL, "plain seconds");
    ok(tb_catalog_age_parse(&ns, "1.5d") == 0 && ns == 36 * HOUR, "1.5d");
    is_int(tb_catalog_age_parse(&ns, "26x"), TB_EUSAGE, "26x: TB_EUSAGE");
    is_int(tb_catalog_age_parse(&ns, "h"), TB_EUSAGE, "no number: TB_EUSAGE");
    is_int(tb_catalog_age_parse(&ns, "-1h"), TB_EUSAGE, "negative: TB_EUSAGE");
    tb_catalog_age_format(buf, sizeof buf, 30 * HOUR);
    is_str(buf, "1d06h", "30 hours: 1d06h");
    tb_catalog_age_format(buf, sizeof buf, 125 * HOUR / 60);
    is_str(buf, "2h05m", "125 minutes: 2h05m");
    tb_catalog_age_format(buf, sizeof buf, HOUR / 3);
    is_str(buf, "20m00s", "20 minutes: 20m00s");
}

int main(void)
{
    now = tb_time_now_ns();
    snprintf(root, sizeof root, "/tmp/test_catalog.%d", (int)getpid());
    snprintf(db, sizeof db, "%s/db", root);
    snprintf(backups, sizeof backups, "%s/root", root);
    snprintf(wal, sizeof wal, "%s/wal", root);
    tb_fs_mkdir_p(root, 0700);
    if (dbfix_make_db(db, 0) < 0 || make_root() < 0) {
        ok(0, "a root of backups");
        return done_testing();
    }
    test_list();
    test_latest();
    test_check();
    test_ages();
    tb_fs_rm_rf(root);
    return done_testing();
}
