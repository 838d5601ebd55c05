/* manifest: what a backup holds (files, sizes, SHA-256, sequence, content hash), as JSON. */
#ifndef TB_MANIFEST_H
#define TB_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define TB_MANIFEST_FORMAT_MAJOR 1
/* 1.1: incremental backups (parent, stored_in); 1.2: encryption; 1.3: write_policy, and a
 * content hash that may be unavailable (content_hash null, content_hash_unavailable says why);
 * 1.4: the content hash is themis-dbhash-v2, in content_hash_v2 (content_hash null, and
 * content_hash_unavailable says where it is, so 1.3 readers skip the comparison) */
#define TB_MANIFEST_FORMAT_MINOR 4
/* What a 1.4 manifest with content_hash_v2 says in content_hash_unavailable. */
#define TB_MANIFEST_HASH_V2_NOTE                                                                          \
    "for tools of manifest format 1.3: the content hash is themis-dbhash-v2, in content_hash_v2 (format " \
    "1.4), which they do not compute"
#define TB_MANIFEST_NAME "MANIFEST.json"
#define TB_ARCHIVE_NAME "backup.tar.zst"

struct tb_manifest_file {
    char *name; /* member name in the archive: db/000012.sst, config/config.yaml */
    uint64_t size;
    char sha256[65];
    unsigned mode;
    /* Incremental backups: the archive SHA-256 of the ancestor whose archive holds this
     * member (NULL: this backup's own archive). */
    char *stored_in;
};

struct tb_manifest {
    int format_major, format_minor;
    char *tool_version;
    char *created; /* RFC 3339 UTC */
    char *source_path;
    char *host;
    char *method; /* "secondary-checkpoint" or "server" */
    uint64_t last_seq;
    size_t ncf;
    char **cfs;
    size_t nfiles, cap;
    struct tb_manifest_file *files;
    char content_hash[65]; /* "" when unavailable */
    /* 1.4: content_hash is themis-dbhash-v2 (content_hash_v2 in the JSON); else themis-dbhash-v1. */
    int content_hash_v2;
    /* 1.3: why the content hash could not be computed (a merge operator the tools do not
     * know, tables the linked RocksDB cannot read); NULL when content_hash is set. */
    char *hash_unavailable;
    /* 1.3: the writer's transaction write policy ("write_committed", "write_prepared",
     * "write_unprepared"); NULL in older manifests (they were all write_committed). */
    char *write_policy;
    char *compression; /* "zstd" or "none" */
    int level, threads;
    int include_config;
    char *config_file; /* source path of the config, when included */
    uint64_t db_bytes; /* sum of the db/ members */
    /* Incremental backups: the parent's directory (relative to this backup's directory
     * unless absolute) and archive SHA-256; chain is 1 for a child of a full backup. */
    char *parent_path;
    char parent_sha256[65];
    unsigned chain;
    /* Only in the copy beside the archive: the archive file's own size and SHA-256 (of an
     * encrypted archive: its sealed digest, which rekeying leaves alone; docs/encryption.md). */
    uint64_t archive_size;
    char archive_sha256[65];
    /* Encrypted backups: the archive is a TBCRYPT stream; key_ids (comma-separated) are the
     * keys its data key is wrapped for, in the copy beside the archive. */
    int encrypted;
    char *key_ids;
    /* The copy beside an encrypted archive leaves out file names, content hash, column
     * families and source unless asked (--plain-manifest); the full one is in the archive
     * and, encrypted, in MANIFEST.json.enc. */
    int redacted;
};

/* tb_manifest_to_json flags. */
enum { TB_MANIFEST_ARCHIVE = 1, TB_MANIFEST_REDACT = 2 };
#define TB_MANIFEST_ENC_NAME "MANIFEST.json.enc"

int tb_manifest_new(struct tb_manifest **out);
void tb_manifest_free(struct tb_manifest *m);
int tb_manifest_add_file(struct tb_manifest *m, const char *name, uint64_t size, const char *sha256, unsigned mode);
/* Marks the last added file as stored in the ancestor whose archive has this SHA-256. */
int tb_manifest_set_stored_in(struct tb_manifest *m, const char *archive_sha256);
const struct tb_manifest_file *tb_manifest_find(const struct tb_manifest *m, const char *name);
/* Serialises (pretty, keys sorted); TB_MANIFEST_ARCHIVE adds the archive's name, size and
 * hash, TB_MANIFEST_REDACT leaves out what would tell about the content. */
int tb_manifest_to_json(const struct tb_manifest *m, int flags, char **out);
/* jansson's json_dumps as our JSON files are written: indented, sorted keys, ending in a
 * newline (malloc'd; NULL when out of memory). */
struct json_t;
char *tb_json_text(const struct json_t *j);
/* The archive's file name in the backup directory: backup.tar[.zst][.enc]. */
const char *tb_manifest_archive_name(const struct tb_manifest *m);
/* Parses and checks the schema of docs/format.md: every field's type and range, no
 * duplicate key, no unknown key unless of a newer minor version, a known major version.
 * A violation is TB_EVERIFY naming where and the field ("files[3].mode: ..."). */
int tb_manifest_parse(const char *text, const char *where, struct tb_manifest **out);
/* Returns 0 when both say the same in every field tb_manifest_to_json writes, except what
 * only the copy beside the archive has or changes alone (archive, encryption key ids); else
 * TB_EVERIFY naming the first differing field. A redacted a is compared on what it keeps. */
int tb_manifest_compare(const struct tb_manifest *a, const struct tb_manifest *b);

#endif
