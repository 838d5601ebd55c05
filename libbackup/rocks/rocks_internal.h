/* rocks_internal: the handle's fields, shared by rocks.c (opening) and dbhash.c (hashing) only. */
#ifndef TB_ROCKS_INTERNAL_H
#define TB_ROCKS_INTERNAL_H

#include "rocks.h"

#include <rocksdb/c.h>

struct tb_rocks {
    rocksdb_t *db;
    char *scratch;
    rocksdb_options_t *opts;
    char *path;
    enum tb_rocks_mode mode;
    size_t ncf;
    char **cf_names; /* from rocksdb_list_column_families */
    rocksdb_column_family_handle_t **cfs;
};

/* Sets the error "what: err (path)", frees err (RocksDB's message) and returns code. */
int tb_rocks_error(int code, char *err, const char *what, const char *path);

#endif
