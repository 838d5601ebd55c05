/* rocksopts: what a RocksDB directory's newest OPTIONS file says about the settings the tools
 * must match (merge operators per column family, 2PC and write-queue settings, paths). */
#ifndef TB_ROCKSOPTS_H
#define TB_ROCKSOPTS_H

#include <stddef.h>

struct tb_rocksopts_cf {
    char *name; /* the column family's name, unescaped as RocksDB reads it */
    char *merge_operator; /* raw value: "nullptr" for none; NULL when the key is absent */
};

/* Values as the file writes them ("true"/"false", "nullptr"); NULL when the key is absent.
 * RocksDB 7.8 to 10.x write wal_dir only when set (string escapes undone) and never write
 * db_paths (it is not a serializable option), so db_paths stays NULL for their files. */
struct tb_rocksopts {
    char *file; /* the OPTIONS-NNNNNN name it came from (tb_rocksopts_read) */
    char *rocksdb_version;
    char *two_write_queues, *allow_2pc, *wal_dir, *db_paths, *recycle_log_file_num;
    size_t ncf;
    struct tb_rocksopts_cf *cf; /* in file order */
};

/* Reads dir's newest OPTIONS-NNNNNN file (the one RocksDB's LoadLatestOptions picks).
 * TB_ENOENT when there is none. */
int tb_rocksopts_read(const char *dir, struct tb_rocksopts *out);
/* Parses an OPTIONS file's text as RocksDB's parser does: '#' comments (not after '\'),
 * trimmed lines, [Section "argument"], name=value, the first of a repeated key counts. */
int tb_rocksopts_parse(const char *text, size_t len, struct tb_rocksopts *out);
/* The newest OPTIONS-NNNNNN file name in dir (malloc'd), or NULL when there is none. */
char *tb_rocksopts_newest(const char *dir);
/* The raw merge_operator of column family cf; NULL when cf is not in the file or names no
 * merge operator key. */
const char *tb_rocksopts_merge_operator(const struct tb_rocksopts *o, const char *cf);
/* Whether the options set two_write_queues, as ThemisDB does exactly for WRITE_PREPARED and
 * WRITE_UNPREPARED (seq_per_batch). */
int tb_rocksopts_two_write_queues(const struct tb_rocksopts *o);
void tb_rocksopts_clear(struct tb_rocksopts *o);
/* Copies the OPTIONS file name from from_dir into to_dir (atomically), without the sections
 * of column families not among cfs (n of them): a tool that loads the options (ldb
 * --try_load_options) refuses a file naming unknown column families. With clear_wal_dir,
 * a wal_dir set in DBOptions is emptied and *cleared set to 1. TB_ENOENT: name is gone. */
int tb_rocksopts_copy(const char *from_dir, const char *to_dir, const char *name, const char *const *cfs, size_t n,
                      int clear_wal_dir, int *cleared);
/* Writes dir/OPTIONS-<number> (atomically): dir's newest OPTIONS file with a section for
 * each of names (n of them), copied from the default column family's (its CFOptions and
 * TableOptions sections), so that readers that take their column families from the
 * OPTIONS file (ldb --try_load_options) open a database whose MANIFEST gained them. The
 * server records its own options at its next open. TB_ENOENT when there is no OPTIONS
 * file; TB_EVERIFY when it has no default section or a name needs escaping. */
int tb_rocksopts_add_cfs(const char *dir, unsigned long long number, const char *const *names, size_t n);

#endif
