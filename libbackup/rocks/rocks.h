/* rocks: opening a ThemisDB RocksDB safely (secondary or read-only, every CF), checkpoints,
 * sequence numbers and the content hash. Never opens a database read-write. */
#ifndef TB_ROCKS_H
#define TB_ROCKS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_rocks tb_rocks;

enum tb_rocks_mode {
    TB_ROCKS_READONLY, /* a stopped DB or a restored copy */
    TB_ROCKS_SECONDARY, /* a DB that a live process may hold open */
    TB_ROCKS_AUTO, /* secondary when a process holds the DB's LOCK, else read-only */
};

/* The options every open uses: allow_2pc (ThemisDB's WAL holds 2PC markers). */
#define TB_ROCKS_OPTIONS "allow_2pc=true"
/* The block cache of every database we open (index and filter blocks; reads bypass it). */
#define TB_ROCKS_CACHE (16u << 20)

/* Whether a running process (another one) holds the LOCK of the database at path: a live
 * server. 0 when there is no LOCK. */
int tb_rocks_is_live(const char *path);

/* Opens path with all its column families. scratch is a directory of ours (created if
 * missing) for the secondary's files and RocksDB's info log, so the DB directory is not
 * written to. */
int tb_rocks_open(tb_rocks **out, const char *path, enum tb_rocks_mode mode, const char *scratch);
/* The same for a database that keeps its WAL in wal_dir and its tables over db_paths
 * (RocksDB's options of those names; NULL/0: the database directory). */
int tb_rocks_open_layout(tb_rocks **out, const char *path, enum tb_rocks_mode mode, const char *scratch,
                         const char *wal_dir, const char *const *db_paths, size_t ndb_paths);
void tb_rocks_free(tb_rocks *r);
/* Secondary only: applies what the primary wrote since the last catch-up. */
int tb_rocks_catch_up(tb_rocks *r);
uint64_t tb_rocks_last_seq(tb_rocks *r);

/* Every open is given db_paths naming dir four times (RocksDB's maximum): a table's path
 * id in the MANIFEST (a db_paths database's) must name a directory or RocksDB aborts the
 * process, and a copy of ours holds every table in its one directory. */
struct rocksdb_options_t;
void tb_rocks_paths_single(struct rocksdb_options_t *o, const char *dir);

/* How the DB was opened (TB_ROCKS_AUTO resolved). */
enum tb_rocks_mode tb_rocks_mode(tb_rocks *r);
size_t tb_rocks_cf_count(tb_rocks *r);
const char *tb_rocks_cf_name(tb_rocks *r, size_t i);
/* The column family's id in the DB's MANIFEST (what WAL records carry). */
uint32_t tb_rocks_cf_id(tb_rocks *r, size_t i);

/* Writes a checkpoint of the DB (as of the last catch-up) into dir, which must not exist.
 * Retries, catching up again, when compaction removes a file under it. Adds the source's
 * newest OPTIONS file when RocksDB leaves it out (a secondary's checkpoint does). Each
 * candidate is opened read-only to check it; with opened non-NULL that handle is passed
 * on (its info log lives under r's scratch directory, which must outlive it). */
int tb_rocks_checkpoint(tb_rocks *r, const char *dir, tb_rocks **opened);

/* Content hash (docs/format.md). themis-dbhash-v2, what backups record from manifest 1.4: per
 * column family the entry count and the sum mod 2^128 of each entry's XXH3-128, so key
 * ranges are hashed on several threads in any order; then SHA-256 over those, CFs in name
 * order. themis-dbhash-v1, in older manifests: SHA-256 over every CF in name order and every
 * key/value in key order, all length-prefixed, on one thread. keys receives per-CF key
 * counts in name order (malloc'd, tb_rocks_cf_count entries), names likewise (pointers into r). */
struct tb_rocks_hash {
    unsigned char digest[32];
    size_t ncf;
    const char **names;
    uint64_t *keys;
    size_t ranges; /* v2: the key ranges hashed (one per CF at least) */
};
#define TB_ROCKS_HASH_VERSION 2 /* the newest: what backups record */
struct tb_rocks_hash_opts {
    int version; /* 1 or 2; 0: TB_ROCKS_HASH_VERSION */
    int threads; /* v2: threads hashing key ranges; 0: one per CPU; 1: the calling thread only */
    /* v2 on several threads: about this many bytes of tables per range; 0: a quarter of a
     * thread's share, at least 8 MiB. Any value gives the same hash. */
    uint64_t range_bytes;
    /* Called with the bytes of keys and values hashed so far (may be NULL); by one thread at a time. */
    void (*progress)(void *arg, uint64_t bytes);
    void *arg;
};
/* o NULL: the defaults (all zero). */
int tb_rocks_hash(tb_rocks *r, struct tb_rocks_hash *out, const struct tb_rocks_hash_opts *o);
void tb_rocks_hash_clear(struct tb_rocks_hash *h);

#endif
