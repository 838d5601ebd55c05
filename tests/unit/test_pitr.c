/* test_pitr: the one-command recovery (tb_pitr_recover) end to end on a small database:
 * stamped writes, a backup between them, the WAL archived; recovered to a time between
 * two batches, the target holds exactly the writes before it; a target that may not be
 * replaced, a time before every backup and a missing archive fail and leave no trace. */
#include "tap.h"
#include "archiver.h"
#include "backup.h"
#include "error.h"
#include "fs.h"
#include "pitr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256];

#define SEC 1000000000LL
static const int64_t dec31 = 1767139200LL * SEC; /* 2025-12-31T00:00:00Z: the base's writes */
static const int64_t jan2 = 1767312000LL * SEC;  /* 2026-01-02T00:00:00Z: those after it */

static char *path(const char *name)
{
    return tb_fs_join(root, name);
}

/* Batches first..last, each a "TSv1" stamp (LogData) and one put k<i>, stamped t0 + i s. */
static int write_batches(const char *dir, int first, int last, int64_t t0, int flush)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *err = NULL, k[32];
    rocksdb_t *db;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_WAL_ttl_seconds(o, 3600); /* the archiver reads the WAL the flush retires */
    db = rocksdb_open(o, dir, &err);
    for (int i = first; db && !err && i <= last; i++) {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        unsigned char stamp[12] = { 'T', 'S', 'v', '1' };
        uint64_t ns = (uint64_t)(t0 + i * SEC);
        for (int j = 0; j < 8; j++)
            stamp[4 + j] = (unsigned char)(ns >> (8 * j));
        snprintf(k, sizeof k, "k%03d", i);
        rocksdb_writebatch_put_log_data(b, (const char *)stamp, sizeof stamp);
        rocksdb_writebatch_put(b, k, strlen(k), "value", 5);
        rocksdb_write(db, wo, b, &err);
        rocksdb_writebatch_destroy(b);
    }
    if (db && !err && flush)
        rocksdb_flush(db, fo, &err);
    if (db)
        rocksdb_close(db);
    if (err)
        diag("write_batches: %s", err);
    free(err);
    rocksdb_options_destroy(o);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_flushoptions_destroy(fo);
    return err ? -1 : 0;
}

static int archive(const char *db, const char *wal)
{
    struct tb_archiver_opts o = { 0 };
    tb_archiver *a = NULL;
    uint64_t n = 0;
    int rc;
    o.db_path = db;
    o.wal_dir = wal;
    o.segment_size = 1 << 20;
    o.segment_ns = 1000 * SEC;
    o.level = 1;
    if ((rc = tb_archiver_open(&a, &o)) == 0 && (rc = tb_archiver_poll(a, &n)) == 0)
        rc = tb_archiver_rotate(a, 1);
    tb_archiver_free(a);
    return rc;
}

/* Whether the database at dir holds key. */
static int has_key(const char *dir, const char *key)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *err = NULL, *v = NULL;
    size_t len = 0;
    rocksdb_t *db = rocksdb_open_for_read_only(o, dir, 0, &err);
    if (db)
        v = rocksdb_get(db, ro, key, strlen(key), &len, &err);
    if (db)
        rocksdb_close(db);
    if (err)
        diag("has_key: %s", err);
    free(err);
    rocksdb_options_destroy(o);
    rocksdb_readoptions_destroy(ro);
    free(v);
    return v != NULL;
}

struct seen {
    int skipped, wal_file;
};

static void on_skip(void *arg, const char *dir, const char *why)
{
    (void)dir, (void)why;
    ((struct seen *)arg)->skipped++;
}

static void on_wal_file(void *arg, const char *why)
{
    (void)why;
    ((struct seen *)arg)->wal_file++;
}

/* Entries of the root named like a target's temporary sibling. */
static int siblings(const char *name)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '^%s.'", root, name);
    return system(cmd) == 0;
}

static void test_recover(const char *backups, const char *wal)
{
    char *target = path("target"), *base = tb_fs_join(backups, "b1");
    struct seen s = { 0 };
    struct tb_pitr_opts o = { .backup_root = backups, .wal_dir = wal, .target_ns = jan2 + 150 * SEC + SEC / 2,
                              .target = target, .scratch = root, .skipped = on_skip, .as_wal_file = on_wal_file,
                              .arg = &s };
    struct tb_pitr_result r;
    int rc = tb_pitr_recover(&r, &o);
    is_int(rc, 0, "recovered to between batches 150 and 151%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    is_str(r.base, base, "from the backup made before the time");
    is_int(r.replay.reached_seq, 150, "reached sequence 150");
    is_int(r.replay.reached_ts, jan2 + 150 * SEC, "at the stamp of batch 150");
    is_int(r.replay.batches, 50, "50 batches replayed");
    is_int(r.as_wal_file, 0, "into the database, not as a WAL file");
    is_int(s.skipped + s.wal_file, 0, "nothing skipped, no WAL file note");
    ok(has_key(target, "k100") && has_key(target, "k150"), "the target holds the base's writes and those replayed");
    ok(!has_key(target, "k151"), "and none after the time");
    ok(!siblings("target"), "no staged copy left beside it");
    tb_pitr_result_clear(&r);
    is_int(tb_pitr_recover(&r, &o), TB_EIO, "a second recovery over it is refused without force");
    ok(strstr(tb_error_last(), "target is not empty") != NULL, "%s", tb_error_last());
    ok(r.base == NULL, "before a base was picked");
    o.force = 1;
    o.target_ns = jan2 + 120 * SEC;
    is_int(tb_pitr_recover(&r, &o), 0, "with force: recovered again, to batch 120");
    ok(has_key(target, "k120") && !has_key(target, "k121"), "the target replaced by the new recovery");
    tb_pitr_result_clear(&r);
    free(base);
    free(target);
}

static void test_failures(const char *backups, const char *wal)
{
    char *target = path("t2"), *nowal = path("no-such-archive");
    struct tb_pitr_opts o = { .backup_root = backups, .wal_dir = wal, .target_ns = dec31, .target = target,
                              .scratch = root };
    struct tb_pitr_result r;
    is_int(tb_pitr_recover(&r, &o), TB_EGAP, "a time before every backup: TB_EGAP");
    ok(strstr(tb_error_last(), "was made before the target time") != NULL, "%s", tb_error_last());
    o.shown_root = "s3://bucket/backups";
    tb_pitr_recover(&r, &o);
    ok(strstr(tb_error_last(), "s3://bucket/backups") != NULL, "the root named as shown: %s", tb_error_last());
    tb_pitr_result_clear(&r);
    o.wal_dir = nowal;
    o.target_ns = jan2 + 150 * SEC;
    ok(tb_pitr_recover(&r, &o) < 0, "a missing WAL archive fails the replay: %s", tb_error_last());
    ok(!tb_fs_exists(target), "the target was not created");
    ok(!siblings("t2"), "the staged copy was removed");
    tb_pitr_result_clear(&r);
    free(nowal);
    free(target);
}

int main(void)
{
    char *db, *backups, *b1, *wal;
    struct tb_backup_opts bo = { .created = "2026-01-01T00:00:00Z" };
    int rc;
    snprintf(root, sizeof root, "%s/test_pitr.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    db = path("db"), backups = path("backups"), wal = path("wal");
    b1 = tb_fs_join(backups, "b1");
    tb_fs_mkdir_p(backups, 0755);
    ok(write_batches(db, 1, 100, dec31, 1) == 0, "100 stamped batches, flushed");
    bo.db_path = db, bo.backup_dir = b1, bo.scratch = root;
    rc = tb_backup_run(&bo, NULL);
    is_int(rc, 0, "a backup of them%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    ok(write_batches(db, 101, 200, jan2, 0) == 0, "100 more after it");
    rc = archive(db, wal);
    is_int(rc, 0, "the WAL archived%s%s", rc ? ": " : "", rc ? tb_error_last() : "");
    test_recover(backups, wal);
    test_failures(backups, wal);
    tb_fs_rm_rf(root);
    free(db), free(backups), free(b1), free(wal);
    return done_testing();
}
