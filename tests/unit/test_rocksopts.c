/* test_rocksopts: reading OPTIONS files as RocksDB writes them (a stored 7.8.3 file and one
 * the linked RocksDB writes now). */
#include "tap.h"
#include "error.h"
#include "fs.h"
#include "merge.h"
#include "rocksopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

static char root[256];

/* The stored file: RocksDB 7.8.3 with allow_2pc, two_write_queues, a wal_dir with ':' and
 * '#', ThemisDB's sequence operator on cdc_sequences, SetMergeOperator on sets. */
static void test_stored(void)
{
    struct tb_rocksopts o = { 0 };
    char *text = NULL;
    size_t len = 0;
    ok(tb_fs_read_file(VECTORS "/OPTIONS-rocksdb-7.8.3", &text, &len) == 0, "read the stored file");
    is_int(tb_rocksopts_parse(text, len, &o), 0, "parse it");
    is_str(o.rocksdb_version, "7.8.3", "rocksdb_version");
    is_str(o.two_write_queues, "true", "two_write_queues");
    is_str(o.allow_2pc, "true", "allow_2pc");
    is_str(o.wal_dir, "/tmp/wb/w:al#1", "wal_dir, escapes undone (the '#' is not a comment)");
    ok(o.db_paths == NULL, "db_paths: RocksDB does not write it");
    is_int(o.ncf, 4, "four column families");
    is_str(o.ncf > 2 ? o.cf[2].name : NULL, "odd:name#1\\x", "a column family name with escapes");
    is_str(tb_rocksopts_merge_operator(&o, "default"), "nullptr", "default: no merge operator");
    is_str(tb_rocksopts_merge_operator(&o, "cdc_sequences"), "RocksDBWrapper.SequenceU64IncrementMergeOperator",
           "cdc_sequences: ThemisDB's sequence operator");
    is_str(tb_rocksopts_merge_operator(&o, "sets"), "SetMergeOperator", "sets: SetMergeOperator");
    ok(tb_rocksopts_merge_operator(&o, "nosuch") == NULL, "a column family not in the file");
    tb_rocksopts_clear(&o);
    free(text);
}

static void test_syntax(void)
{
    struct tb_rocksopts o = { 0 };
    const char *t = "# comment\n[Version]\n  rocksdb_version=10.6.2 # trailing\n[DBOptions]\r\n"
                    "  two_write_queues = false\r\n  two_write_queues=true\n  db_paths={/a:1;/b:2}\n"
                    "[CFOptions \"x\"]\n  merge_operator={id=CounterMergeOperator;}\n"
                    "[TableOptions/BlockBasedTable \"x\"]\n  merge_operator=ignored\n";
    is_int(tb_rocksopts_parse(t, strlen(t), &o), 0, "parse hand-written text");
    is_str(o.rocksdb_version, "10.6.2", "a comment after a value is dropped");
    is_str(o.two_write_queues, "false", "CRLF and spaces trimmed; the first of a repeated key counts");
    is_str(o.db_paths, "{/a:1;/b:2}", "db_paths raw when a writer puts it there");
    is_str(tb_rocksopts_merge_operator(&o, "x"), "{id=CounterMergeOperator;}", "a table section does not count");
    is_int(tb_merge_lookup(tb_rocksopts_merge_operator(&o, "x")), TB_MERGE_COUNTER, "and it looks up");
    tb_rocksopts_clear(&o);
    t = "[DBOptions]\n  nonsense\n";
    ok(tb_rocksopts_parse(t, strlen(t), &o) == TB_EIO && strstr(tb_error_last(), "line 2"),
       "a line without '=' fails: %s", tb_error_last());
    t = "[CFOptions]\n  merge_operator=x\n";
    ok(tb_rocksopts_parse(t, strlen(t), &o) == TB_EIO, "a CFOptions section needs a name");
}

/* What the linked RocksDB writes now for a C-API merge operator and for none. */
static void test_live(void)
{
    char *dir = tb_fs_join(root, "db"), *err = NULL;
    rocksdb_options_t *b = rocksdb_options_create(), *o = rocksdb_options_create(), *m = rocksdb_options_create();
    const char *names[] = { "default", "counters" };
    const rocksdb_options_t *co[] = { o, m };
    rocksdb_column_family_handle_t *h[2];
    struct tb_rocksopts r = { 0 };
    rocksdb_t *db;
    rocksdb_get_options_from_string(b, "create_if_missing=true;create_missing_column_families=true", o, &err);
    rocksdb_options_set_merge_operator(m, tb_merge_create(TB_MERGE_COUNTER));
    db = rocksdb_open_column_families(o, dir, 2, names, co, h, &err);
    ok(db != NULL, "create a database: %s", err ? err : "ok");
    if (db) {
        rocksdb_column_family_handle_destroy(h[0]);
        rocksdb_column_family_handle_destroy(h[1]);
        rocksdb_close(db);
    }
    is_int(tb_rocksopts_read(dir, &r), 0, "read its newest OPTIONS file");
    ok(r.file && strncmp(r.file, "OPTIONS-", 8) == 0, "named %s", r.file ? r.file : "(none)");
    is_str(tb_rocksopts_merge_operator(&r, "counters"), "CounterMergeOperator", "the operator's Name()");
    is_str(tb_rocksopts_merge_operator(&r, "default"), "nullptr", "none is nullptr");
    is_str(r.allow_2pc, "false", "allow_2pc");
    ok(r.wal_dir == NULL, "no wal_dir line when it is not set");
    tb_rocksopts_clear(&r);
    tb_rocksopts_clear(&r);
    is_int(tb_rocksopts_read(root, &r), TB_ENOENT, "a directory without OPTIONS");
    free(err);
    free(dir);
    rocksdb_options_destroy(b);
    rocksdb_options_destroy(o);
    rocksdb_options_destroy(m);
}

int main(void)
{
    snprintf(root, sizeof root, "%s/test_rocksopts.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    test_stored();
    test_syntax();
    test_live();
    tb_fs_rm_rf(root);
    return done_testing();
}
