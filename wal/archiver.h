/* archiver: copies every committed WAL record of a live DB into a WAL archive directory
 * (segments, index.tsv, cf.tsv, state), checking sequence continuity across files,
 * segments and restarts. */
#ifndef TB_ARCHIVER_H
#define TB_ARCHIVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"
#include "stream.h"
#include "txndb.h"
#include "walfiles.h"

typedef struct tb_archiver tb_archiver;

struct tb_archiver_opts {
    const char *db_path;
    const char *db_wal_dir; /* where the DB keeps its WAL files (RocksDB wal_dir); NULL: db_path */
    const char *wal_dir; /* the archive */
    tb_keyring *keys; /* an encrypted archive's keyring (NULL: plain), not owned */
    uint64_t segment_size; /* rotate when the partial segment has this many bytes */
    int64_t segment_ns; /* ... or is this old */
    int level; /* zstd level */
    /* Called after each segment is published (renamed into place and in the index), e.g.
     * to stream or push it. An error stops the archiver; the segment stays published. */
    int (*published)(void *arg, const char *path, const struct tb_seg_info *s);
    void *published_arg;
    /* Optional: called with the bytes of WAL read so far (all polls together), after each
     * record; the total is unknown (the WAL grows while it is read). */
    tb_progress_cb progress;
    void *progress_arg;
    /* The writer's write policy; TB_POLICY_UNKNOWN: the archive's recorded one, else the
     * first record that tells (tb_wb_policy_hint). A policy recorded by the archive that
     * differs is refused. */
    enum tb_policy policy;
    /* New WAL files seen by listing the directories alone, as where inotify is missing. */
    int tap_listing_only;
};

int tb_archiver_open(tb_archiver **out, const struct tb_archiver_opts *o);
/* Archives every complete record the DB's WAL files have after the last archived one, then
 * makes them durable. *n receives how many. TB_EGAP names a missing range. */
int tb_archiver_poll(tb_archiver *a, uint64_t *n);
/* Polls until stop: each pass archives what is new (tb_archiver_poll), tells pass (with
 * the records it archived and the total before it) and closes the segment when due; once:
 * one pass, then the segment is closed. Else it sleeps interval_ns between passes; at
 * *stop (set by a signal handler) the pass under way finishes, one last pass follows (an
 * archiver stopped after its server then holds every write), and the segment is closed.
 * *total gets the records archived. */
struct tb_archiver_loop {
    int once;
    int64_t interval_ns;
    volatile sig_atomic_t *stop;
    void (*pass)(void *arg, tb_archiver *a, uint64_t n, uint64_t total);
    void *arg;
};
int tb_archiver_run(tb_archiver *a, const struct tb_archiver_loop *l, uint64_t *total);
/* Closes the partial segment into a published one when due, or always with force. */
int tb_archiver_rotate(tb_archiver *a, int force);
uint64_t tb_archiver_next_seq(tb_archiver *a);
/* How far the archive is behind the live WAL: bytes written and not yet archived at the
 * end of the last pass, and when the last pass that read the WAL to its end started (the
 * archive holds everything written before; 0: no pass yet). inotify: new WAL files are
 * seen by inotify (else by scanning the directories every few milliseconds). */
/* recount: list the WAL files and count again (within a pass); else the last pass's count. */
void tb_archiver_lag(tb_archiver *a, int recount, uint64_t *bytes, int64_t *caught_up_ns, int *inotify);
/* The policy the archive decodes with (TB_POLICY_UNKNOWN: not known yet). */
enum tb_policy tb_archiver_policy(tb_archiver *a);
/* A new archive starts after the last gap in the database's WAL: 1 when it did, with the
 * missing sequences from..to-1 (what came before them was left out). */
int tb_archiver_skipped(tb_archiver *a, uint64_t *from, uint64_t *to);
void tb_archiver_free(tb_archiver *a);

/* Verifies a whole archive without the DB: index against files (size, SHA-256), every
 * record's CRC, and continuity. TB_EVERIFY or TB_EGAP with a message. */
int tb_wal_archive_check(const char *wal_dir, tb_keyring *keys, uint64_t *records, uint64_t *first, uint64_t *next);

/* cf.tsv: the column family ids the WAL wrote, with their names. */
struct tb_cf_name {
    uint32_t id;
    char *name;
};
/* Reads wal_dir's cf.tsv (absent: none); TB_EVERIFY names a damaged line. */
int tb_cf_map_load(const char *wal_dir, struct tb_cf_name **out, size_t *n);
void tb_cf_map_free(struct tb_cf_name *v, size_t n);

/* Retention: how many leading segments of the archive (segs, n, in order) no backup with
 * last sequence base or later needs: those wholly at or before base, except from the
 * first one holding a Prepare that they do not close (its Commit comes later). */
struct tb_seg_info;
int tb_wal_archive_unneeded_prefix(const char *wal_dir, tb_keyring *keys, const struct tb_seg_info *segs, size_t n,
                                   uint64_t base, size_t *cut);
/* The segments wholly at or before base: the most the cut can take, and the only segments
 * tb_wal_archive_unneeded_prefix reads. */
size_t tb_wal_archive_cut_bound(const struct tb_seg_info *segs, size_t n, uint64_t base);

#endif
