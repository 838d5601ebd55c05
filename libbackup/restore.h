/* restore: verify a backup (checksums, completeness, content hash) or restore it into place. */
#ifndef TB_RESTORE_H
#define TB_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "crypt.h"
#include "manifest.h"
#include "stream.h"

struct tb_restore_opts {
    const char *backup_dir; /* a backup directory ... */
    tb_stream *in; /* ... or the archive stream (not owned) */
    const char *target; /* restore the DB here; NULL with verify_only */
    const char *config_target; /* restore config/ members here (optional) */
    const char *scratch; /* a directory of ours for verification's temporary restore */
    int verify_only;
    tb_keyring *keys; /* opens encrypted archives (theirs and their ancestors') */
    uint64_t rate_limit; /* bytes of archive read per second (0: no limit) */
    int quick; /* checksums only: skip the temporary restore and open */
    int force; /* replace a non-empty target */
    /* A non-empty target's old contents move here instead of being refused (a ThemisDB data
     * directory's database, which the upgrade guide restores over); --force still removes. */
    const char *keep_old;
    int set_owner;
    uid_t uid;
    gid_t gid;
    tb_progress_cb progress; /* bytes of tar data read */
    void *progress_arg;
    uint64_t *progress_total; /* set when the size is known before reading */
};

/* Verifies, and unless verify_only publishes the restored DB at target, in phases: open the
 * source, read every member once, verify them and the database, publish. TB_EVERIFY names
 * the member or check that failed; nothing outside scratch and the target's temporary
 * sibling is changed on failure. *out (may be NULL) receives the manifest. */
int tb_restore_run(const struct tb_restore_opts *o, struct tb_manifest **out);

/* Whether target may take a restore: no running process holds its LOCK, and it is empty
 * (*empty set), or force or keep_old allow replacing it. */
int tb_restore_may_replace(const char *target, int force, const char *keep_old, int *empty);

/* ThemisDB's upgrade guides restore into its data directory (/var/lib/themisdb/), which
 * holds more than the database: the database goes into its rocksdb/ (the config's
 * storage.rocksdb_path, config_file NULL: the default config), and nothing else there is
 * touched. The database there is kept beside the new one as keep_old (named after now,
 * seconds since the epoch), never removed, unless force says so. */
struct tb_restore_target {
    char *target; /* where the database goes */
    char *data_dir; /* the directory given, when target is its rocksdb/ (else NULL) */
    char *keep_old; /* where the database that was there goes (NULL: nowhere: refuse, or force) */
    int had_old; /* target held a database, which keep_old will hold */
};
int tb_restore_target_map(struct tb_restore_target *out, const char *target, const char *config_file, int force,
                          int64_t now);
void tb_restore_target_clear(struct tb_restore_target *t);

/* The one way a target is replaced (a restore's, a recovery's): puts stage at target, into
 * an empty or missing target by rename; over a non-empty one (force or keep_old) by
 * swapping the two (RENAME_EXCHANGE), then removing the old contents (force) or moving
 * them to keep_old; else refused. Refuses a target whose LOCK a running process holds. */
int tb_restore_publish(const char *stage, const char *target, int force, const char *keep_old);

/* Refuses (TB_EIO) a target whose RocksDB LOCK a running process holds: replacing the
 * directory under a live server loses what it writes and confuses its recovery. */
int tb_restore_check_target(const char *target);

/* The newest backup under root created at or before t (INT64_MAX: any time) whose
 * checksums verify (--verify-only --quick, ancestors included). with (may be NULL) gives
 * the verification its keys, rate limit and progress. prepare (may be NULL) readies a
 * candidate first; skipped (may be NULL) is told of each candidate that failed, and why,
 * with arg; errors name shown (or root). TB_EGAP when there is none. */
int tb_restore_pick(const char *root, int64_t t, const struct tb_restore_opts *with, int (*prepare)(const char *dir),
                    void (*skipped)(void *arg, const char *dir, const char *why), void *arg, const char *shown,
                    char **out);

#endif
