/* catalog: the backups under a root directory, newest first. */
#ifndef TB_CATALOG_H
#define TB_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "manifest.h"

struct tb_catalog_entry {
    char *dir;               /* root/NAME */
    struct tb_manifest *m;   /* its MANIFEST.json (the copy beside the archive) */
    int64_t created_ns;
};

/* Subdirectories of root with a readable manifest, newest first (creation time, then last
 * sequence, then name); anything else under root is left out. */
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

#endif
