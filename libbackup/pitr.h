/* pitr: one-command point-in-time recovery: the newest good backup made before a time,
 * restored beside the target, the WAL archive replayed on it up to that time, then put in
 * place the way a restore is (tb_restore_publish). */
#ifndef TB_PITR_H
#define TB_PITR_H

#include <stdint.h>

#include "crypt.h"
#include "replay.h"

struct tb_pitr_opts {
    const char *backup_root; /* the backups to pick from (a local directory) */
    const char *shown_root; /* how errors name the root (NULL: backup_root) */
    const char *wal_dir; /* the WAL archive to replay (a local directory) */
    int64_t target_ns; /* recover up to this time */
    const char *target; /* the database directory to put the result at */
    int force; /* replace a non-empty target (tb_restore_publish) */
    const char *keep_old; /* or move its old contents here */
    const char *scratch; /* a directory of ours for temporary files */
    tb_keyring *keys; /* opens encrypted backups */
    /* Optional: readies a candidate base before it is checked (its files fetched). */
    int (*prepare)(const char *dir);
    /* Optional, with arg: each candidate base skipped, and why (its verification's error). */
    void (*skipped)(void *arg, const char *dir, const char *why);
    /* Optional, with arg: called before the replay when the writes go into the database as a
     * WAL file its server's RocksDB applies (the linked one could not flush into it), and why. */
    void (*as_wal_file)(void *arg, const char *why);
    void *arg;
};

struct tb_pitr_result {
    char *base; /* the backup restored (malloc'd; tb_pitr_result_clear) */
    int as_wal_file; /* the writes went in as a WAL file */
    struct tb_replay_result replay;
};

/* Recovers o->target to o->target_ns. Refuses a target a restore would refuse
 * (tb_restore_may_replace) before anything is read; TB_EGAP when no good backup was made
 * before the time; on failure the target is as it was and the staged copy is removed. */
int tb_pitr_recover(struct tb_pitr_result *r, const struct tb_pitr_opts *o);
void tb_pitr_result_clear(struct tb_pitr_result *r);

#endif
