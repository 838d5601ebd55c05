/* backup: a consistent full backup of a live or stopped ThemisDB into a directory or stream. */
#ifndef TB_BACKUP_H
#define TB_BACKUP_H

#include "crypt.h"
#include "content.h"
#include "manifest.h"
#include "snapshot.h"
#include "stream.h"

struct tb_backup_opts {
    const char *db_path;
    const char *backup_dir; /* publish here (must not exist, or be empty) ... */
    tb_stream *out; /* ... or write the archive stream here (not owned) */
    const char *scratch; /* a directory of ours for temporary files (stream mode) */
    int compress, level, threads;
    const char *config_file; /* included when non-NULL */
    const char *config_dir; /* files named by the config under this dir are included */
    const char *server_url; /* use the server's POST /admin/backup instead of our snapshot */
    /* Where the database keeps its WAL and tables when not all in db_path (RocksDB's wal_dir
     * and db_paths); NULL/0: the wal_dir its OPTIONS file names, and db_path. */
    const char *db_wal_dir;
    const char *const *db_paths;
    size_t ndb_paths;
    struct tb_snapshot_info *snapshot; /* optional: how the snapshot went (clear it with tb_snapshot_info_clear) */
    enum tb_policy policy; /* the writer's transaction write policy; TB_POLICY_UNKNOWN: detected */
    /* optional: the content as recorded, with how the policy was decided and the tables
     * checked (clear it with tb_content_clear; its column families went to the manifest) */
    struct tb_content *content;
    const char *host;
    /* The creation time to record (RFC 3339, checked by the caller); NULL: now. */
    const char *created;
    /* Incremental: members whose name, size and SHA-256 equal the parent's are recorded as
     * stored in the parent's chain instead of stored again (needs backup_dir). */
    const char *parent_dir;
    unsigned full_every; /* with parent_dir: a full backup when the chain would reach this */
    uint64_t rate_limit; /* bytes of database read per second (0: no limit) */
    /* Encrypt the archive for these keys (NULL: plain); the manifest beside it is redacted
     * unless plain_manifest, the full one encrypted beside it. */
    tb_keyring *keys;
    int plain_manifest;
    tb_progress_cb progress; /* bytes of tar data written */
    void *progress_arg;
    uint64_t *progress_total; /* set to the bytes to archive before archiving starts */
};

/* Runs the backup; on success *out (may be NULL) receives the manifest. On failure nothing
 * is published under backup_dir and temporary files are removed. */
int tb_backup_run(const struct tb_backup_opts *o, struct tb_manifest **out);

/* One backup at a time into a directory's parent (two cron runs of the same job): an
 * exclusive flock on the parent directory itself (created when missing), so nothing is
 * left there; *fd holds it until closed or the process exits. */
int tb_backup_lock(int *fd, const char *dir);

/* Rewraps an encrypted backup's data keys (archive and MANIFEST.json.enc) with the keys of
 * add, opened with a key of old; keep leaves the existing keys (--add-key), else only add's
 * remain (--rekey). The data is not rewritten; the manifest's key ids are updated. */
int tb_backup_rekey(const char *dir, tb_keyring *old, tb_keyring *add, int keep);

#endif
