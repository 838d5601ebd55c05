/* test_rmf_addcf: column families added to a database's MANIFEST and OPTIONS file from
 * outside RocksDB (tb_rmf_add_cfs, tb_rocksopts_add_cfs; themis-wal-replay --as-wal-file):
 * our reader and RocksDB 7.8 both see them under the ids given; RocksDB opens the database
 * with them, a write into the new CF survives a reopen, and numbers RocksDB hands out
 * afterwards start above what the edit said. */
#include "tap.h"
#include "error.h"
#include "fs.h"
#include "rdbmanifest.h"
#include "rocksopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char dir[] = "/tmp/test_rmf_addcf.XXXXXX";

int main(void)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_column_family_handle_t *h[3] = { 0 };
    const rocksdb_options_t *co[3] = { o, o, o };
    struct tb_rmf_version *v = NULL;
    struct tb_rocksopts opts = { 0 };
    char *err = NULL, *cur = NULL, **names;
    size_t n = 0, vlen;
    rocksdb_t *db;
    int rc;

    if (!mkdtemp(dir))
        return 1;
    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, dir, &err);
    ok(db && !err, "a database with only the default CF");
    rocksdb_put(db, wo, "a", 1, "1", 1, &err);
    rocksdb_close(db);

    {
        char *p = tb_rmf_current(dir, &cur) == 0 ? tb_fs_join(dir, cur) : NULL;
        ok(p && tb_rmf_load(p, &v) == 0, "its MANIFEST reads");
        free(p);
    }
    if (!v)
        return done_testing();
    uint64_t next = v->next_file_number;
    struct tb_rmf_cf_add add[] = { { 3, "late_one" }, { 7, "late_two" } };
    rc = tb_rmf_add_cfs(dir, cur, next + 10, add, 2, "leveldb.BytewiseComparator", next + 11, next + 12, 7);
    is_int(rc, 0, "two CFs added as MANIFEST-%06llu (%s)", (unsigned long long)(next + 10), rc ? tb_error_last() : "");
    const char *two[] = { "late_one", "late_two" };
    rc = tb_rocksopts_add_cfs(dir, next + 13, two, 2);
    is_int(rc, 0, "and an OPTIONS file naming them (%s)", rc ? tb_error_last() : "");
    tb_rmf_version_free(v);
    v = NULL;
    free(cur);
    cur = NULL;

    ok(tb_rmf_current(dir, &cur) == 0 && strcmp(cur, "MANIFEST-000000") > 0, "CURRENT names the new MANIFEST (%s)", cur);
    {
        char want[64];
        snprintf(want, sizeof want, "MANIFEST-%06llu", (unsigned long long)(next + 10));
        is_str(cur, want, "the one written");
    }
    {
        char *p = tb_fs_join(dir, cur);
        ok(tb_rmf_load(p, &v) == 0, "our reader reads it");
        free(p);
    }
    const struct tb_rmf_cf *c3 = v ? tb_rmf_find_cf(v, 3) : NULL, *c7 = v ? tb_rmf_find_cf(v, 7) : NULL;
    ok(c3 && c7 && strcmp(c3->name, "late_one") == 0 && strcmp(c7->name, "late_two") == 0, "with both CFs under their ids");
    ok(c3 && c3->log_number == next + 11 && v->next_file_number == next + 12 && v->max_column_family == 7,
       "their log number, next_file_number and max_column_family as given");
    ok(tb_rocksopts_read(dir, &opts) == 0 && opts.ncf == 3 && strcmp(opts.cf[2].name, "late_two") == 0,
       "the newest OPTIONS file has a section for each (%zu CFs)", opts.ncf);

    names = rocksdb_list_column_families(o, dir, &n, &err);
    ok(!err && n == 3, "RocksDB lists three CFs");
    db = rocksdb_open_column_families(o, dir, (int)n, (const char *const *)names, co, h, &err);
    ok(db && !err, "and opens with them%s%s", err ? ": " : "", err ? err : "");
    if (db) {
        rocksdb_put_cf(db, wo, h[2], "k", 1, "v", 1, &err);
        ok(!err, "a write into an added CF");
        for (int i = 0; i < 3; i++)
            rocksdb_column_family_handle_destroy(h[i]);
        rocksdb_close(db);
    }
    free(err);
    err = NULL;
    db = rocksdb_open_column_families(o, dir, (int)n, (const char *const *)names, co, h, &err);
    char *got = db ? rocksdb_get_cf(db, ro, h[2], "k", 1, &vlen, &err) : NULL;
    ok(got && vlen == 1 && got[0] == 'v', "survives a reopen");
    free(got);
    if (db) {
        for (int i = 0; i < 3; i++)
            rocksdb_column_family_handle_destroy(h[i]);
        rocksdb_close(db);
    }
    rocksdb_list_column_families_destroy(names, n);
    tb_rmf_version_free(v);
    v = NULL;
    free(cur);
    cur = NULL;
    ok(tb_rmf_current(dir, &cur) == 0 && strtoull(cur + 9, NULL, 10) > next + 12,
       "RocksDB's own next MANIFEST is numbered above the edit's next_file_number (%s)", cur);

    free(cur);
    free(err);
    tb_rocksopts_clear(&opts);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    tb_fs_rm_rf(dir);
    return done_testing();
}
