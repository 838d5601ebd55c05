/* content: what a RocksDB database holds once recovered as its server would recover it,
 * whatever its write policy and merge operators: the content hash, the column families and
 * where it stands in its WAL's sequence numbering. Worked out in a scratch copy (a snapshot
 * from files), so the database itself, live or stopped, is never written to. */
#ifndef TB_CONTENT_H
#define TB_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "txndb.h"

struct tb_content_opts {
    enum tb_policy policy; /* the writer's; TB_POLICY_UNKNOWN: detected (tb_content_policy) */
    /* What the source's own files told (a checkpoint's WAL may hold no telling marker any
     * more); used when policy is UNKNOWN, before detecting on the copy. */
    enum tb_policy policy_hint;
    const char *policy_hint_how;
    /* The database is a copy of ours (a checkpoint, a restore): its WAL files are in it,
     * whatever its OPTIONS file says. Otherwise wal_dir and db_paths say where the source
     * keeps them (NULL/0: as tb_snapshot_create decides). */
    int in_place;
    /* Every file is proven the same bytes as a database whose tables were checked (a
     * restore's SHA-256s against its manifest): only the tables' footers are read, for
     * their format, not every block again. */
    int files_verified;
    const char *wal_dir;
    const char *const *db_paths;
    size_t ndb_paths;
    const char *scratch; /* a directory of ours; the copy goes below it and is removed */
    void (*progress)(void *arg, uint64_t bytes); /* bytes of keys and values hashed; may be NULL */
    void *progress_arg;
    int hash_version; /* themis-dbhash-v1 or -v2 (tb_rocks_hash); 0: the newest */
    int threads; /* threads hashing (tb_rocks_hash_opts); 0: one per CPU */
};

struct tb_content {
    char hex[65]; /* the content hash (themis-dbhash, of hash_version); "" when unavailable */
    char *unavailable; /* why there is none (malloc'd), NULL when hex is set */
    char *policy_how; /* how the policy was decided (malloc'd) */
    enum tb_policy policy; /* the policy the WAL was read under */
    uint64_t last_seq; /* the last sequence the database holds, in its WAL's numbering */
    size_t ncf; /* column families in name order (none when unavailable) */
    char **cfs;
    uint64_t *keys;
    size_t tables_checked, tables_unchecked; /* table and blob files checked by their own checksums */
};

/* Snapshot of db into o->scratch, each table and blob file checked by its own block
 * checksums (TB_EVERIFY when one is damaged), the WAL recovered under the writer's policy
 * (tb_txndb_recover), then hashed through a read-only open. Returns 0 with out->hex set,
 * or 0 with out->unavailable saying why the linked RocksDB cannot produce the content (a
 * merge operator or comparator the tools do not know, tables of a newer format); out's
 * last_seq, policy and file counts are set either way. */
int tb_content_of(const char *db, const struct tb_content_opts *o, struct tb_content *out);
void tb_content_clear(struct tb_content *c);

/* Where db (a copy of ours, its WAL files in it) stands in its WAL's numbering, from its
 * files alone: the later of its MANIFEST's last sequence and the end of its WAL's last
 * whole record under policy. Read before anything recovers the copy: recovery's rollbacks
 * of transactions left prepared take sequences of their own, and a write-prepared
 * database's recorded last sequence lags its commit markers (docs/wal-notes.md). */
int tb_content_position(const char *db, enum tb_policy policy, uint64_t *last_seq);

/* What RocksDB checks of a database's files when it opens it, without reading a table, so
 * for tables of any format: CURRENT names a MANIFEST that reads to its end, and every table
 * file it lists is there (in db itself) with the size it records, every blob file there.
 * Then *last_seq as tb_content_position. TB_EVERIFY names what is missing or wrong. */
int tb_content_check_files(const char *db, enum tb_policy policy, uint64_t *last_seq);

/* Whether the linked RocksDB can open db (a restored database, its files in one directory)
 * and write and flush into it: every column family's comparator bytewise, every merge
 * operator one the tools know (a flush merges operands into the values below them), every
 * table of a format_version it reads. Returns 0 when it can, 1 with *why (malloc'd) when it
 * cannot, negative on error. Reads the MANIFEST, the OPTIONS file and the tables' footers. */
int tb_content_writable(const char *db, char **why);

/* The writer's policy: write_committed unless the OPTIONS file sets two_write_queues, as
 * ThemisDB does for the other two; then the WAL's markers (a write-unprepared section, a
 * write-prepared Prepare) tell, and where none does, write_unprepared, ThemisDB's default.
 * wal_dir: where the WAL files are (the database directory for a copy). *how (malloc'd)
 * says which rule decided. Returns 1 when the files decided, 0 when it fell back to
 * ThemisDB's default, negative on error. */
int tb_content_policy(const char *db, const char *wal_dir, enum tb_policy *out, char **how);

#endif
