/* snapshot: a consistent checkpoint of a RocksDB database, live or stopped, made from its
 * files alone (MANIFEST, tables, blob files, WALs), never opening it with RocksDB. */
#ifndef TB_SNAPSHOT_H
#define TB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "rdbmanifest.h"

struct tb_snapshot_opts {
    /* Where the WAL lives; NULL: the wal_dir of the database's newest OPTIONS file if it
     * names one, else the database directory. */
    const char *wal_dir;
    /* The database's db_paths (RocksDB's DbPath list, in order), where its tables lie;
     * NULL/0: the database directory holds them all. */
    const char *const *db_paths;
    size_t ndb_paths;
    /* The database is a checkpoint or a restore (RocksDB's checkpoint leaves out a WAL that
     * is empty, which a live database always has): no WAL at the newest column family log
     * number does not mean a wrong WAL directory there. */
    int checkpoint;
    /* Attempts before giving up on a database that changes under every one; 0: 100. */
    int attempts;
};

struct tb_snapshot_info {
    struct tb_rmf_version *version; /* what the snapshot's MANIFEST says (owned; may be NULL) */
    char manifest[64]; /* its MANIFEST's name */
    uint64_t manifest_bytes; /* the prefix copied */
    int attempts; /* attempts it took */
    size_t linked, copied; /* table and blob files hard-linked, or copied across filesystems */
    size_t wals; /* WAL files copied */
    uint64_t wal_bytes;
    int options_rewritten; /* the OPTIONS copy's wal_dir was cleared (see snapshot.c) */
};

/* Writes a snapshot of db into dir (created; it must not exist), all files in that one
 * directory as RocksDB's own checkpoint does: hard links of the live tables and blob files
 * (copies where a link cannot be made), the MANIFEST up to a consistent point, CURRENT,
 * the newest OPTIONS, and every WAL file recovery needs, cut at its last whole record.
 * Retries while the server's flushes and compactions race it (see
 * docs/rocksdb-backup-notes.md, "Snapshot from files"). info may be NULL. A snapshot is
 * scratch, read at once and removed: nothing in it is fsync'd (an fsync of a hard link
 * syncs the source's inode: after a restore's extraction, all of it, for nothing). */
int tb_snapshot_create(const char *db, const struct tb_snapshot_opts *o, const char *dir,
                       struct tb_snapshot_info *info);
void tb_snapshot_info_clear(struct tb_snapshot_info *info);

/* Parses "DIR,DIR,..." into a NULL-terminated list of malloc'd strings (for --db-paths). */
int tb_snapshot_split_paths(const char *list, char ***out, size_t *n);
void tb_snapshot_free_paths(char **paths);

#endif
