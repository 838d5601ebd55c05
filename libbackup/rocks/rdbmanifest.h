/* rdbmanifest: reader of RocksDB's MANIFEST (VersionEdit records in the WAL's log format):
 * the column families and live files of a database, without opening it with RocksDB. */
#ifndef TB_RDBMANIFEST_H
#define TB_RDBMANIFEST_H

#include <stddef.h>
#include <stdint.h>

/* A live table file (SST) of a column family. */
struct tb_rmf_file {
    uint64_t number;
    uint32_t path_id; /* index into db_paths / cf_paths (0: the DB directory or db_paths[0]) */
    int level;
    uint64_t size;
    uint64_t smallest_seq, largest_seq;
    uint64_t oldest_blob; /* oldest blob file it refers to, 0 if none */
};

/* A live blob file (integrated BlobDB), always in the first path of the DB. */
struct tb_rmf_blob {
    uint64_t number;
    uint64_t total_count, total_bytes;
    uint64_t garbage_count, garbage_bytes;
};

struct tb_rmf_cf {
    uint32_t id;
    char *name;
    char *comparator; /* NULL when the MANIFEST names none */
    uint64_t log_number; /* WALs below this hold nothing of the CF not already in its tables */
    size_t nfiles; /* sorted by number */
    struct tb_rmf_file *files;
    size_t nblobs; /* sorted by number */
    struct tb_rmf_blob *blobs;
};

/* A WAL the MANIFEST tracks (track_and_verify_wals_in_manifest), with its synced size. */
struct tb_rmf_wal {
    uint64_t number;
    uint64_t synced_size;
};

/* The database as the MANIFEST read so far describes it. */
struct tb_rmf_version {
    uint64_t last_sequence;
    uint64_t next_file_number;
    uint64_t min_log_number_to_keep; /* 0 when never recorded */
    uint64_t prev_log_number;
    uint32_t max_column_family;
    char *db_id; /* NULL when never recorded */
    size_t ncf; /* the live column families, sorted by id */
    struct tb_rmf_cf *cfs;
    size_t nwals; /* tracked WALs, sorted by number */
    struct tb_rmf_wal *wals;
    /* The oldest WAL recovery needs: min over the CFs' log numbers and min_log_number_to_keep
     * (2PC keeps older WALs for prepared sections). */
    uint64_t min_log_needed;
};

typedef struct tb_rmf tb_rmf;

/* Starts reading the MANIFEST open on fd (duplicated: the caller keeps fd, which may name a
 * file the server deletes meanwhile); path names it in messages. */
int tb_rmf_open_fd(tb_rmf **out, int fd, const char *path);
/* Applies every whole record that ends at or before limit (UINT64_MAX: all there is). Called
 * again with a larger limit it goes on where it stopped. The records of an atomic group count
 * only once the group is complete, as in RocksDB's recovery. TB_EVERIFY names the file, the
 * record's offset and what is wrong: bad CRC, a damaged record, a tag this reader does not
 * know and RocksDB does not allow to ignore. */
int tb_rmf_read(tb_rmf *m, uint64_t limit);
/* The end of the last record read: a copy of the MANIFEST up to here describes exactly what
 * tb_rmf_version says. */
uint64_t tb_rmf_offset(const tb_rmf *m);
/* Whether a record read names a table in a db_path other than the first (path id > 0). */
int tb_rmf_has_path_ids(const tb_rmf *m);
/* Writes the MANIFEST as read so far (up to tb_rmf_offset) into the new file to, every path
 * id set to 0: for a copy that keeps all tables in one directory. RocksDB looks a table up
 * in db_paths[min(path id, last)], but a build with assertions aborts when a path id is not
 * below the number of paths it was opened with (Version::~Version). */
int tb_rmf_write_flat(tb_rmf *m, const char *to);
/* The name of the column family with this id as read so far (NULL if never seen; valid until
 * the next call on m); *dropped (may be NULL) says whether it was dropped since. */
const char *tb_rmf_cf_name(const tb_rmf *m, uint32_t id, int *dropped);
/* The state so far (a copy, malloc'd; free with tb_rmf_version_free). */
int tb_rmf_version(const tb_rmf *m, struct tb_rmf_version **out);
void tb_rmf_version_free(struct tb_rmf_version *v);
void tb_rmf_free(tb_rmf *m);

/* A column family to add to a database's MANIFEST (tb_rmf_add_cfs). */
struct tb_rmf_cf_add {
    uint32_t id;
    const char *name;
};
/* Adds column families to the database in dir as RocksDB's CreateColumnFamily records them:
 * a copy of its current MANIFEST (CURRENT names cur) is written as MANIFEST-<number> with one
 * VersionEdit per CF appended (comparator, log number log_number, column family id, the
 * ColumnFamilyAdd with its name), then one setting next_file_number and max_column_family,
 * synced and renamed into place; then CURRENT is replaced atomically to name it. Until that
 * last rename the database is as it was. comparator names the CFs' comparator. */
int tb_rmf_add_cfs(const char *dir, const char *cur, uint64_t number, const struct tb_rmf_cf_add *cfs, size_t n,
                   const char *comparator, uint64_t log_number, uint64_t next_file_number, uint32_t max_column_family);

/* Reads a whole MANIFEST file by path. */
int tb_rmf_load(const char *path, struct tb_rmf_version **out);
/* Reads the whole MANIFEST that dir/CURRENT names (a stopped database's, or a copy's). */
int tb_rmf_load_current(const char *dir, struct tb_rmf_version **out);
/* The MANIFEST file name that dir/CURRENT names ("MANIFEST-000123"), malloc'd. */
int tb_rmf_current(const char *dir, char **name);
/* The column family with this id, or NULL. */
const struct tb_rmf_cf *tb_rmf_find_cf(const struct tb_rmf_version *v, uint32_t id);

#endif
