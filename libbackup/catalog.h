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

#endif
