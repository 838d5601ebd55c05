/* test_restore: a backup made here restored and verified (tb_restore_run); a damaged member
 * refused, and the target left as it was; a non-empty target refused without --force;
 * the base a recovery would pick (tb_restore_pick) and the reasons it skips the others. */
#include "tap.h"
#include "dbfix.h"
#include "backup.h"
#include "error.h"
#include "fs.h"
#include "restore.h"
#include "crypt.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256];

static char *path(const char *name)
{
    return tb_fs_join(root, name);
}

static int backup(const char *db, const char *dir, struct tb_manifest **m)
{
    struct tb_backup_opts o = { 0 };
    o.db_path = db;
    o.backup_dir = dir;
    o.scratch = root;
    return tb_backup_run(&o, m);
}

static int restore(const char *dir, const char *target, int verify_only, int quick, int force)
{
    struct tb_restore_opts o = { 0 };
    o.backup_dir = dir;
    o.target = target;
    o.scratch = root;
    o.verify_only = verify_only;
    o.quick = quick;
    o.force = force;
    return tb_restore_run(&o, NULL);
}

/* Flips one byte in the middle of file. */
static int damage(const char *file)
{
    struct stat st;
    unsigned char b;
    int fd = open(file, O_RDWR), rc = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && pread(fd, &b, 1, st.st_size / 2) == 1) {
        b ^= 0x55;
        rc = pwrite(fd, &b, 1, st.st_size / 2) == 1 ? 0 : -1;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* How many entries dir holds whose name starts with prefix. */
static int count_named(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static int copy_tree(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", from, to);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_roundtrip(const char *good)
{
    char *t = path("t1"), *current = tb_fs_join(t, "CURRENT");
    struct tb_restore_opts o = { .backup_dir = good, .target = t, .scratch = root };
    struct tb_manifest *m = NULL;
    is_int(restore(good, NULL, 1, 1, 0), 0, "a fresh backup's checksums verify (--quick)");
    is_int(restore(good, NULL, 1, 0, 0), 0, "and it verifies opened, its content hash compared");
    is_int(tb_restore_run(&o, &m), 0, "restored into a missing target");
    ok(tb_fs_exists(current), "the target holds the database (CURRENT)");
    is_int(m ? m->last_seq : 0, 600, "the manifest comes back: sequence 600");
    is_int(count_named(root, "t1."), 0, "no temporary sibling left beside the target");
    is_int(restore(good, t, 0, 0, 0), TB_EIO, "a non-empty target is refused without force");
    ok(strstr(tb_error_last(), "target is not empty") != NULL, "and says so: %s", tb_error_last());
    is_int(restore(good, t, 0, 0, 1), 0, "with force it is replaced");
    ok(tb_fs_exists(current), "and holds the database");
    is_int(restore(good, NULL, 0, 0, 0), TB_EUSAGE, "a restore needs a target");
    tb_manifest_free(m);
    free(current);
    free(t);
}

/* The archive file of the backup in dir (malloc'd), as its manifest names it. */
static char *archive_of(const char *dir)
{
    char *mpath = tb_fs_join(dir, TB_MANIFEST_NAME), *text = NULL, *a = NULL;
    struct tb_manifest *m = NULL;
    if (tb_fs_read_file(mpath, &text, NULL) == 0 && tb_manifest_parse(text, mpath, &m) == 0)
        a = tb_fs_join(dir, tb_manifest_archive_name(m));
    tb_manifest_free(m);
    free(text);
    free(mpath);
    return a;
}

static void test_damaged(const char *good)
{
    char *bad = path("bad"), *t = path("t2"), *marker = tb_fs_join(t, "old-file"), *archive = NULL;
    int empty = 1;
    if (copy_tree(good, bad) < 0 || !(archive = archive_of(bad)) || damage(archive) < 0 || tb_fs_mkdir_p(t, 0755) < 0 ||
        tb_fs_write_atomic(marker, "x", 1, 0644) < 0)
        diag("setup failed");
    is_int(restore(bad, NULL, 1, 1, 0), TB_EVERIFY, "a damaged archive fails verification (--quick)");
    diag("%s", tb_error_last());
    is_int(restore(bad, t, 0, 0, 1), TB_EVERIFY, "and a restore of it, even with force");
    ok(tb_fs_exists(marker), "the target keeps what it held");
    is_int(count_named(root, "t2."), 0, "no temporary sibling left beside the target");
    free(archive);
    archive = tb_fs_join(bad, TB_MANIFEST_NAME);
    unlink(archive);
    is_int(restore(bad, NULL, 1, 1, 0), TB_EVERIFY, "a backup without its manifest is refused");
    ok(strstr(tb_error_last(), "backup is incomplete") != NULL, "as incomplete: %s", tb_error_last());
    is_int(restore("/nonexistent/backup", NULL, 1, 1, 0), TB_ENOENT, "a missing backup directory: TB_ENOENT");
    ok(tb_fs_is_empty_dir(t, &empty) == 0 && !empty, "the target was never emptied");
    free(archive);
    free(marker);
    free(t);
    free(bad);
}

/* An encrypted backup verifies and restores with its key; a damaged chunk fails with the
 * decryption's own words. */
static void test_encrypted(const char *db)
{
    char *enc = path("enc"), *kf = path("key"), *t = path("t3"), *current = tb_fs_join(t, "CURRENT");
    char *archive = tb_fs_join(enc, "backup.tar.zst.enc");
    tb_keyring *k = NULL;
    struct tb_backup_opts bo = { .db_path = db, .backup_dir = enc, .scratch = root, .compress = 1, .level = 3 };
    struct tb_restore_opts o = { .backup_dir = enc, .scratch = root };
    if (tb_fs_write_atomic(kf, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 65, 0600) < 0 ||
        tb_keyring_new(&k) < 0 || tb_keyring_add_key_file(k, kf) < 0)
        diag("key setup failed: %s", tb_error_last());
    bo.keys = k;
    is_int(tb_backup_run(&bo, NULL), 0, "an encrypted backup");
    o.keys = k;
    o.verify_only = 1;
    is_int(tb_restore_run(&o, NULL), 0, "verifies with its key, its content hash compared");
    o.verify_only = 0;
    o.target = t;
    is_int(tb_restore_run(&o, NULL), 0, "and restores");
    ok(tb_fs_exists(current), "the target holds the database (CURRENT)");
    o.target = NULL;
    o.verify_only = 1;
    ok(damage(archive) == 0, "one byte of its archive flipped");
    is_int(tb_restore_run(&o, NULL), TB_EVERIFY, "then verification fails");
    ok(strstr(tb_error_last(), "does not authenticate") != NULL, "naming the chunk: %s", tb_error_last());
    tb_keyring_free(k);
    free(archive);
    free(current);
    free(t);
    free(kf);
    free(enc);
}

struct skips {
    int n;
    char dir[256], why[512];
};

static void on_skip(void *arg, const char *dir, const char *why)
{
    struct skips *s = arg;
    s->n++;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->why, sizeof s->why, "%s", why);
}

/* The newest good backup is picked; a newer damaged one is skipped, with its reason. */
static void test_pick(const char *db)
{
    char *picks = path("picks"), *a = tb_fs_join(picks, "a"), *b = tb_fs_join(picks, "b"), *arch = NULL, *got = NULL;
    struct tb_backup_opts o = { .db_path = db, .scratch = root };
    struct skips s = { 0 };
    int64_t jan2 = 1767312000LL * 1000000000LL; /* 2026-01-02T00:00:00Z */
    tb_fs_mkdir_p(picks, 0755);
    o.backup_dir = a, o.created = "2026-01-01T00:00:00Z";
    is_int(tb_backup_run(&o, NULL), 0, "an older backup");
    o.backup_dir = b, o.created = "2026-01-03T00:00:00Z";
    is_int(tb_backup_run(&o, NULL), 0, "a newer one");
    is_int(tb_restore_pick(picks, INT64_MAX, NULL, NULL, on_skip, &s, NULL, &got), 0, "a base is picked");
    is_str(got, b, "the newest");
    is_int(s.n, 0, "none skipped");
    free(got), got = NULL;
    is_int(tb_restore_pick(picks, jan2, NULL, NULL, on_skip, &s, NULL, &got), 0, "a base before Jan 2 is picked");
    is_str(got, a, "the older one");
    free(got), got = NULL;
    if (!(arch = archive_of(b)) || damage(arch) < 0)
        diag("cannot damage %s", b);
    is_int(tb_restore_pick(picks, INT64_MAX, NULL, NULL, on_skip, &s, NULL, &got), 0, "with the newer damaged");
    is_str(got, a, "the older one is picked");
    is_int(s.n, 1, "one skipped");
    is_str(s.dir, b, "the damaged one");
    ok(strstr(s.why, "SHA-256") != NULL, "with its reason: %s", s.why);
    free(got), got = NULL;
    is_int(tb_restore_pick(picks, 0, NULL, NULL, on_skip, &s, "s3://bucket/root", &got), TB_EGAP,
           "none made before the time: TB_EGAP");
    is_str(tb_error_last(), "no backup under s3://bucket/root was made before the target time", "named as shown");
    s.n = 0;
    tb_fs_rm_rf(a);
    is_int(tb_restore_pick(picks, INT64_MAX, NULL, NULL, on_skip, &s, NULL, &got), TB_EGAP,
           "only a damaged one: TB_EGAP");
    ok(strstr(tb_error_last(), "no good backup under") != NULL, "no good backup: %s", tb_error_last());
    is_int(s.n, 1, "after skipping it");
    free(got);
    free(arch);
    free(a);
    free(b);
    free(picks);
}

/* A ThemisDB data directory as --target: the database goes into its rocksdb/, the one there
 * is kept beside it (unless force); a plain directory stays what it is. */
static void test_target_map(void)
{
    struct tb_restore_target t;
    char *data = path("data"), *sub = path("data/rocksdb"), *plain = path("plain"), *f = path("data/rocksdb/CURRENT");
    char want[512];
    FILE *fp;
    mkdir(data, 0755);
    mkdir(sub, 0755);
    mkdir(plain, 0755);
    if ((fp = fopen(f, "w")))
        fclose(fp);
    is_int(tb_restore_target_map(&t, data, NULL, 0, 86400), 0, "a data directory maps");
    is_str(t.target, sub, "the database goes into its rocksdb/");
    is_str(t.data_dir, data, "the directory given is kept for the note");
    snprintf(want, sizeof want, "%s.before-restore-19700102T000000Z", sub);
    is_str(t.keep_old, want, "the database there is kept beside it, named after the time");
    is_int(t.had_old, 1, "and it held one");
    tb_restore_target_clear(&t);
    is_int(tb_restore_target_map(&t, data, NULL, 1, 86400), 0, "with force");
    ok(t.keep_old == NULL && t.had_old == 0, "force keeps nothing aside");
    tb_restore_target_clear(&t);
    is_int(tb_restore_target_map(&t, plain, NULL, 0, 86400), 0, "a plain directory");
    ok(t.data_dir == NULL && t.keep_old == NULL, "is no data directory");
    is_str(t.target, plain, "and is the target as given");
    tb_restore_target_clear(&t);
    free(data);
    free(sub);
    free(plain);
    free(f);
}

int main(void)
{
    char *db, *good;
    int rc;
    snprintf(root, sizeof root, "%s/test_restore.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    db = path("db");
    good = path("good");
    ok(dbfix_make_db_wal(db, 0, 1) == 0, "a database of 600 writes, the last 200 in its WAL");
    rc = backup(db, good, NULL);
    is_int(rc, 0, "backed up%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    test_roundtrip(good);
    test_damaged(good);
    test_encrypted(db);
    test_pick(db);
    test_target_map();
    tb_fs_rm_rf(root);
    free(db);
    free(good);
    return done_testing();
}
