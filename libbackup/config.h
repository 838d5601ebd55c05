/* config: reading ThemisDB's YAML config (storage.rocksdb_path and files it names). */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stddef.h>

#define TB_THEMIS_CONFIG "/etc/themisdb/config.yaml"
#define TB_THEMIS_DB_PATH "/var/lib/themisdb/rocksdb"

struct tb_config_entry {
    char *key;   /* dotted path of mapping keys, e.g. "storage.rocksdb_path" */
    char *value; /* scalar value */
};

struct tb_config {
    char *path;
    size_t n, cap;
    struct tb_config_entry *entries;
};

/* Parses the YAML file at path (errors name the line). */
int tb_config_load(struct tb_config **out, const char *path);
void tb_config_free(struct tb_config *c);
const char *tb_config_get(const struct tb_config *c, const char *key);
/* Regular files named by any scalar value that live under dir (e.g. "/etc/themisdb/"),
 * excluding the config itself: a malloc'd NULL-terminated array of malloc'd paths. */
int tb_config_referenced_files(const struct tb_config *c, const char *dir, char ***out);
void tb_config_free_list(char **list);

#endif
