/* catalog: the backups under a root directory, newest first. */
#ifndef TB_CATALOG_H
#define TB_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "manifest.h"

struct tb_catalog_entry {
    char *dir; /* root/NAME */
    struct tb_manifest *m; /* its MANIFEST.json (the copy beside the archive) */
    int64_t created_ns;
    /* Its last recorded verification (tb_catalog_last_verify): state 1 ok, -1 failed, 0
     * never verified; when in ns; quick. */
    int verify_state, verify_quick;
    int64_t verified_ns;
};

/* Subdirectories of root with a readable manifest, newest first (creation time, then last
 * sequence, then name), with their last verification; anything else under root is left out. */
int tb_catalog_list(const char *root, struct tb_catalog_entry **out, size_t *n);
void tb_catalog_free(struct tb_catalog_entry *v, size_t n);
/* The manifest of the backup in dir (the copy beside its archive). With full, a redacted
 * one (an encrypted backup's) is replaced by MANIFEST.json.enc opened with keys. */
int tb_catalog_read_manifest(const char *dir, tb_keyring *keys, int full, struct tb_manifest **out);
/* Writes data to path encrypted for keys (a new file; the caller publishes it). */
int tb_catalog_write_encrypted(const char *path, const char *data, size_t len, tb_keyring *keys);
/* Bytes of the files this backup stores itself (not taken from a parent); of a redacted
 * manifest, its archive's size. */
uint64_t tb_catalog_stored_bytes(const struct tb_manifest *m);

#define TB_VERIFY_RECORD "VERIFY.json"

/* Records a --verify-only result in the backup directory (atomically): when, quick or
 * full, ok or failed (rc < 0) with the message. */
int tb_catalog_record_verify(const char *dir, int rc, int quick, const char *msg);
/* The last recorded result: *state 1 ok, -1 failed, 0 never verified; *when in ns, *quick. */
int tb_catalog_last_verify(const char *dir, int *state, int64_t *when, int *quick);

/* The base for recovery to the time before (RFC 3339), by the catalog alone: the newest
 * backup made at or before it whose last verification did not fail (*out: its directory).
 * skipped (may be NULL) hears of each failed one passed over. TB_EGAP when there is none,
 * TB_EUSAGE when before is not a time. */
int tb_catalog_latest(char **out, const char *root, const char *before,
                      void (*skipped)(void *arg, const char *dir, const char *why), void *arg);

/* Monitoring a root: the newest good backup (not recorded as failing verification) must be
 * at most max_age old, and with wal_dir the WAL archiver there must have read the live WAL
 * to its end at most max_wal_lag ago. */
struct tb_catalog_check_opts {
    int64_t now, max_age; /* ns */
    const char *wal_dir; /* NULL: the archive is not watched */
    int64_t max_wal_lag; /* ns */
};
struct tb_catalog_health {
    char *dir; /* the newest good backup */
    int64_t age; /* its age at now, ns */
    int verify_state, verify_quick; /* as in tb_catalog_entry */
};
/* Fills *out when the root is healthy; else TB_EIO saying what is wrong (*out cleared). */
int tb_catalog_check(struct tb_catalog_health *out, const char *root, const struct tb_catalog_check_opts *o);
void tb_catalog_health_clear(struct tb_catalog_health *h);

/* Ages as monitoring names them: "26h", "90m", "2d", "45s" or plain seconds (TB_EUSAGE
 * when malformed); formatted "1d02h", "2h05m" or "20m00s". */
int tb_catalog_age_parse(int64_t *ns, const char *s);
void tb_catalog_age_format(char *buf, size_t len, int64_t ns);

#endif
