/* replay: point-in-time recovery: applies archived WAL records to a restored DB, in sequence
 * order, up to a time or a sequence number. */
#ifndef TB_REPLAY_H
#define TB_REPLAY_H

#include <stdint.h>

#include "crypt.h"
#include "stream.h"
#include "txndb.h"

struct tb_replay_opts {
    const char *wal_dir;
    tb_keyring *keys; /* an encrypted archive's keyring (NULL: plain), not owned */
    const char *db_path;
    int64_t target_ns; /* stop before the first batch stamped later (0: none) */
    uint64_t target_seq; /* stop after this sequence (0: none) */
    int dry_run; /* report the window, change nothing */
    enum tb_policy policy; /* the base's writer's write policy; TB_POLICY_UNKNOWN: detected from its files */
    /* Write the batches to apply into one new WAL file in the base (its wal_dir) that the
     * server's own RocksDB replays when it opens it, instead of opening the base here. */
    int as_wal_file;
    /* With as_wal_file: a column family created after the base (named in cf.tsv) is added
     * to the base's MANIFEST rather than refused (docs/wal-notes.md). */
    int wal_file_add_cfs;
    /* Where the file goes: the server's wal_dir when it has one (NULL: db_path). */
    const char *wal_file_dir;
    /* Optional: bytes of the archive's segment files read by the pass that applies (the
     * checking pass before it is not counted); *progress_total is set to their sum first. */
    tb_progress_cb progress;
    void *progress_arg;
    uint64_t *progress_total;
};

struct tb_replay_result {
    uint64_t base_seq; /* the DB's last sequence before */
    uint64_t archive_first, archive_next;
    int64_t archive_first_ts, archive_last_ts;
    int64_t base_ts; /* stamp in effect at the base sequence (0: unknown) */
    uint64_t reached_seq; /* last sequence applied (base_seq when none) */
    int64_t reached_ts;
    uint64_t batches, ops;
    uint64_t db_seq; /* the DB's last sequence after */
    uint64_t gap_from, gap_to; /* the first gap seen (gap_to == 0: none) */
    /* as_wal_file: the file (written, or the one a dry run would write), its number, the
     * header sequences it spans [file_first_seq, file_next_seq), records and bytes. */
    char wal_file[4096];
    uint64_t file_number, file_first_seq, file_next_seq, file_records, file_bytes;
    uint64_t manifest_number; /* the new MANIFEST's number when CFs were added (0: none) */
    uint64_t options_number; /* and the new OPTIONS file's */
    char added_cfs[1024]; /* their names, comma-separated */
};

/* TB_EGAP when the archive does not reach back to base+1, a gap lies before the target, or
 * the target is before the base; TB_EVERIFY on damaged segments (nothing changed then). */
int tb_replay_run(const struct tb_replay_opts *o, struct tb_replay_result *res);

#endif
