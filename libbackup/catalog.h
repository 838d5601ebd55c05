/* catalog: the backups under a root directory, newest first. */
#ifndef TB_CATALOG_H
#define TB_CATALOG_H

#include <stddef.h>
#include <stdint.h>

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
/* Bytes of the files this backup stores itself (not taken from a parent). */
uint64_t tb_catalog_stored_bytes(const struct tb_manifest *m);

#define TB_VERIFY_RECORD "VERIFY.json"

/* Records a --verify-only result in the backup directory (atomically): when, quick or
 * full, ok or failed (rc < 0) with the message. */
int tb_catalog_record_verify(const char *dir, int rc, int quick, const char *msg);
/* The last recorded result: *state 1 ok, -1 failed, 0 never verified; *when in ns, *quick. */
int tb_catalog_last_verify(const char *dir, int *state, int64_t *when, int *quick);

#endif
