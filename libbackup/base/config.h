/* config: reading ThemisDB's config (storage.rocksdb_path and files it names), finding it,
 * and where a ThemisDB data directory keeps its RocksDB. */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stddef.h>

#define TB_THEMIS_CONFIG "/etc/themisdb/config.yaml"
#define TB_THEMIS_DB_PATH "/var/lib/themisdb/rocksdb"
/* The name older upgrade guides use, in the same directory as config.yaml. */
#define TB_THEMIS_CONFIG_OLD "themisdb.conf"

struct tb_config_entry {
    char *key; /* dotted path of mapping keys, e.g. "storage.rocksdb_path" */
    char *value; /* scalar value: in key's allocation, after it (freeing key frees both) */
};

struct tb_config {
    char *path;
    size_t n, cap;
    struct tb_config_entry *entries;
};

/* Parses the config file at path (errors name the line): YAML; a file not named .yaml/.yml
 * whose content is not a YAML mapping is read as INI-style "[section]" and "key = value"
 * lines, keys becoming "section.key". */
int tb_config_load(struct tb_config **out, const char *path);
/* The config file to read for path (a tool's --config-file; NULL: TB_THEMIS_CONFIG): path
 * itself, or, when path is a config.yaml that does not exist, the TB_THEMIS_CONFIG_OLD beside
 * it if that exists. TB_ENOENT naming both when neither does. *out malloc'd. */
int tb_config_locate(const char *path, char **out);
/* Locates (tb_config_locate) and loads. With path NULL and required 0, a missing default
 * config is fine: *out is NULL and 0 is returned. */
int tb_config_open(struct tb_config **out, const char *path, int required);
/* storage.rocksdb_path of c (may be NULL), else TB_THEMIS_DB_PATH. */
const char *tb_config_db_path(const struct tb_config *c);
/* Where the RocksDB named by path (a --target or --database-path) is. path itself when it
 * holds a database (CURRENT) or is no ThemisDB data directory. ThemisDB's upgrade guides
 * pass its data directory instead (/var/lib/themisdb/): when path is the directory that
 * holds rocksdb_path (the config's storage.rocksdb_path), the answer is rocksdb_path; when it
 * has a rocksdb/ subdirectory, that one. *mapped says whether it differs from path; *out is
 * malloc'd. */
int tb_config_db_dir(const char *path, const char *rocksdb_path, char **out, int *mapped);
void tb_config_free(struct tb_config *c);
/* A line of an INI-style file (this module's themisdb.conf, the tools' config file) without
 * white space at either end: s moved past the leading, the trailing cut off in place. */
char *tb_config_trim(char *s);
const char *tb_config_get(const struct tb_config *c, const char *key);
/* Regular files named by any scalar value that live under dir (e.g. "/etc/themisdb/"),
 * excluding the config itself: a malloc'd NULL-terminated array of malloc'd paths. */
int tb_config_referenced_files(const struct tb_config *c, const char *dir, char ***out);
void tb_config_free_list(char **list);

#endif
