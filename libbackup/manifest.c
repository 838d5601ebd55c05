/* manifest: the backup manifest, serialised with jansson. */
#include "manifest.h"
#include "error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int tb_manifest_new(struct tb_manifest **out)
{
    struct tb_manifest *m = calloc(1, sizeof *m);
    if (!m)
        return tb_error_set(TB_EIO, "out of memory");
    m->format_major = TB_MANIFEST_FORMAT_MAJOR;
    m->format_minor = TB_MANIFEST_FORMAT_MINOR;
    *out = m;
    return 0;
}

void tb_manifest_free(struct tb_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfiles; i++) {
        free(m->files[i].name);
        free(m->files[i].stored_in);
    }
    free(m->parent_path);
    for (size_t i = 0; i < m->ncf; i++)
        free(m->cfs[i]);
    free(m->files);
    free(m->cfs);
    free(m->tool_version);
    free(m->created);
    free(m->source_path);
    free(m->host);
    free(m->hash_unavailable);
    free(m->write_policy);
    free(m->method);
    free(m->compression);
    free(m->config_file);
    free(m->key_ids);
    free(m);
}

int tb_manifest_add_file(struct tb_manifest *m, const char *name, uint64_t size, const char *sha256,
                         unsigned mode)
{
    struct tb_manifest_file *f;
    if (m->nfiles == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct tb_manifest_file *p = realloc(m->files, cap * sizeof *p);
        if (!p)
            return tb_error_set(TB_EIO, "out of memory");
        m->files = p;
        m->cap = cap;
    }
    f = &m->files[m->nfiles];
    if (!(f->name = strdup(name)))
        return tb_error_set(TB_EIO, "out of memory");
    f->size = size;
    f->mode = mode;
    f->stored_in = NULL;
    snprintf(f->sha256, sizeof f->sha256, "%s", sha256);
    m->nfiles++;
    return 0;
}

int tb_manifest_set_stored_in(struct tb_manifest *m, const char *archive_sha256)
{
    struct tb_manifest_file *f = &m->files[m->nfiles - 1];
    free(f->stored_in);
    if (!(f->stored_in = strdup(archive_sha256)))
        return tb_error_set(TB_EIO, "out of memory");
    return 0;
}

/* A file's name is a member's: relative, no "." or ".." or empty component, no control
 * byte (restore changes the mode of the file each name gives; messages quote them). */
static int safe_file_name(const char *name)
{
    const char *p = name;
    if (!*name || *name == '/' || strlen(name) > 1024)
        return 0;
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

const struct tb_manifest_file *tb_manifest_find(const struct tb_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].name, name) == 0)
            return &m->files[i];
    return NULL;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

const char *tb_manifest_archive_name(const struct tb_manifest *m)
{
    int plain = m->compression && strcmp(m->compression, "none") == 0;
    if (m->encrypted)
        return plain ? "backup.tar.enc" : TB_ARCHIVE_NAME ".enc";
    return plain ? "backup.tar" : TB_ARCHIVE_NAME;
}

char *tb_json_text(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS), *line;
    size_t n = text ? strlen(text) : 0;
    if (!text || !(line = realloc(text, n + 2))) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

int tb_manifest_to_json(const struct tb_manifest *m, int flags, char **out)
{
    int redact = flags & TB_MANIFEST_REDACT;
    json_t *root = json_object(), *files = json_array(), *cfs = json_array();
    char version[32];
    int rc = 0;
    if (!root || !files || !cfs) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    snprintf(version, sizeof version, "%d.%d", m->format_major, m->format_minor);
    for (size_t i = 0; i < m->ncf; i++)
        json_array_append_new(cfs, json_string(m->cfs[i]));
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *f = json_pack("{s:s, s:I, s:s, s:i}", "name", m->files[i].name, "size",
                              (json_int_t)m->files[i].size, "sha256", m->files[i].sha256, "mode",
                              (int)m->files[i].mode);
        if (f && m->files[i].stored_in)
            json_object_set_new(f, "stored_in", json_string(m->files[i].stored_in));
        json_array_append_new(files, f);
    }
    if (m->parent_path) {
        json_object_set_new(root, "parent", json_pack("{s:s, s:s}", "path", m->parent_path, "archive_sha256",
                                                      m->parent_sha256));
        json_object_set_new(root, "chain_length", json_integer((json_int_t)m->chain));
    }
    json_object_set_new(root, "format_version", json_string(version));
    json_object_set_new(root, "tool", json_string("themis-backup"));
    json_object_set_new(root, "tool_version", str_or_null(m->tool_version));
    json_object_set_new(root, "created", str_or_null(m->created));
    json_object_set_new(root, "last_sequence", json_integer((json_int_t)m->last_seq));
    json_object_set_new(root, "compression", json_pack("{s:o, s:i, s:i}", "algorithm",
                                                       str_or_null(m->compression), "level", m->level,
                                                       "threads", m->threads));
    json_object_set_new(root, "db_bytes", json_integer((json_int_t)m->db_bytes));
    if (m->write_policy)
        json_object_set_new(root, "write_policy", json_string(m->write_policy));
    if (m->encrypted)
        json_object_set_new(root, "encryption", json_pack("{s:s, s:s, s:o}", "format", "TBCRYPT 1", "cipher",
                                                          "AES-256-GCM", "key_ids", str_or_null(m->key_ids)));
    if (redact) {
        json_object_set_new(root, "redacted", json_true());
    } else {
        json_object_set_new(root, "source", json_pack("{s:o, s:o, s:o}", "path", str_or_null(m->source_path),
                                                      "host", str_or_null(m->host), "method",
                                                      str_or_null(m->method)));
        json_object_set_new(root, "column_families", cfs);
        cfs = NULL;
        if (m->hash_unavailable) {
            json_object_set_new(root, "content_hash", json_null());
            json_object_set_new(root, "content_hash_unavailable", json_string(m->hash_unavailable));
        } else {
            json_object_set_new(root, "content_hash", json_string(m->content_hash));
        }
        json_object_set_new(root, "included", json_pack("{s:b, s:o}", "config", m->include_config,
                                                        "config_file", str_or_null(m->config_file)));
        json_object_set_new(root, "files", files);
        files = NULL;
    }
    if (flags & TB_MANIFEST_ARCHIVE)
        json_object_set_new(root, "archive", json_pack("{s:s, s:I, s:s}", "name", tb_manifest_archive_name(m),
                                                       "size", (json_int_t)m->archive_size, "sha256",
                                                       m->archive_sha256));
    *out = tb_json_text(root);
    if (!*out)
        rc = tb_error_set(TB_EIO, "cannot serialise manifest");
cleanup:
    json_decref(files);
    json_decref(cfs);
    json_decref(root);
    return rc;
}

static char *dup_str(json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int tb_manifest_parse(const char *text, const char *where, struct tb_manifest **out)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr), *v, *files, *cfs, *f;
    struct tb_manifest *m = NULL;
    const char *ver;
    size_t i;
    int rc = 0, major = -1, minor = 0;

    if (!root)
        return tb_error_set(TB_EVERIFY, "manifest is not valid JSON: %s at line %d (%s)", jerr.text,
                            jerr.line, where);
    ver = json_string_value(json_object_get(root, "format_version"));
    if (!ver || sscanf(ver, "%d.%d", &major, &minor) < 1) {
        rc = tb_error_set(TB_EVERIFY, "manifest has no format_version (%s)", where);
        goto cleanup;
    }
    if (major != TB_MANIFEST_FORMAT_MAJOR) {
        rc = tb_error_set(TB_EVERIFY, "manifest format version %s is not supported (this version reads %d.x) (%s)",
                          ver, TB_MANIFEST_FORMAT_MAJOR, where);
        goto cleanup;
    }
    if ((rc = tb_manifest_new(&m)) < 0)
        goto cleanup;
    m->format_major = major;
    m->format_minor = minor;
    m->tool_version = dup_str(json_object_get(root, "tool_version"));
    m->created = dup_str(json_object_get(root, "created"));
    v = json_object_get(root, "source");
    m->source_path = dup_str(json_object_get(v, "path"));
    m->host = dup_str(json_object_get(v, "host"));
    m->method = dup_str(json_object_get(v, "method"));
    v = json_object_get(root, "last_sequence");
    if (!json_is_integer(v)) {
        rc = tb_error_set(TB_EVERIFY, "manifest has no last_sequence (%s)", where);
        goto cleanup;
    }
    m->last_seq = (uint64_t)json_integer_value(v);
    v = json_object_get(root, "encryption");
    if (v) {
        m->encrypted = 1;
        m->key_ids = dup_str(json_object_get(v, "key_ids"));
    }
    m->redacted = json_is_true(json_object_get(root, "redacted"));
    m->compression = dup_str(json_object_get(json_object_get(root, "compression"), "algorithm"));
    m->db_bytes = (uint64_t)json_integer_value(json_object_get(root, "db_bytes"));
    v = json_object_get(root, "write_policy");
    if (v && (!json_is_string(v) || !(m->write_policy = strdup(json_string_value(v))))) {
        rc = json_is_string(v) ? tb_error_set(TB_EIO, "out of memory")
                               : tb_error_set(TB_EVERIFY, "manifest has a malformed write_policy (%s)", where);
        goto cleanup;
    }
    if (m->redacted)
        goto parent;
    v = json_object_get(root, "content_hash");
    if (json_is_null(v) && minor >= 3) {
        const char *why = json_string_value(json_object_get(root, "content_hash_unavailable"));
        if (!why || !*why) {
            rc = tb_error_set(TB_EVERIFY, "manifest has no content_hash and does not say why (%s)", where);
            goto cleanup;
        }
        if (!(m->hash_unavailable = strdup(why))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
    } else if (!is_hex64(json_string_value(v))) {
        rc = tb_error_set(TB_EVERIFY, "manifest has no valid content_hash (%s)", where);
        goto cleanup;
    } else {
        snprintf(m->content_hash, sizeof m->content_hash, "%s", json_string_value(v));
    }
    v = json_object_get(root, "compression");
    m->level = (int)json_integer_value(json_object_get(v, "level"));
    m->threads = (int)json_integer_value(json_object_get(v, "threads"));
    v = json_object_get(root, "included");
    m->include_config = json_is_true(json_object_get(v, "config"));
    m->config_file = dup_str(json_object_get(v, "config_file"));
    cfs = json_object_get(root, "column_families");
    if (!json_is_array(cfs)) {
        rc = tb_error_set(TB_EVERIFY, "manifest has no column_families (%s)", where);
        goto cleanup;
    }
    m->cfs = calloc(json_array_size(cfs) + 1, sizeof *m->cfs);
    if (!m->cfs) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    json_array_foreach(cfs, i, v)
        if ((m->cfs[m->ncf] = dup_str(v)) != NULL)
            m->ncf++;
    files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        rc = tb_error_set(TB_EVERIFY, "manifest has no files list (%s)", where);
        goto cleanup;
    }
    json_array_foreach(files, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *sha = json_string_value(json_object_get(f, "sha256"));
        json_t *size = json_object_get(f, "size");
        json_t *mode = json_object_get(f, "mode");
        if (!name || !is_hex64(sha) || !json_is_integer(size) || json_integer_value(size) < 0) {
            rc = tb_error_set(TB_EVERIFY, "manifest file entry %zu is malformed (%s)", i, where);
            goto cleanup;
        }
        if (!safe_file_name(name)) {
            rc = tb_error_set(TB_EVERIFY, "manifest file entry %zu has an unsafe name (%s)", i, where);
            goto cleanup;
        }
        /* Restore gives each file this mode (without setuid, setgid and sticky). */
        if (!json_is_integer(mode) || json_integer_value(mode) < 0 || json_integer_value(mode) > 07777) {
            rc = tb_error_set(TB_EVERIFY, "manifest file entry %zu has no valid mode (%s)", i, where);
            goto cleanup;
        }
        if ((rc = tb_manifest_add_file(m, name, (uint64_t)json_integer_value(size), sha,
                                       (unsigned)json_integer_value(mode))) < 0)
            goto cleanup;
        v = json_object_get(f, "stored_in");
        if (v && !is_hex64(json_string_value(v))) {
            rc = tb_error_set(TB_EVERIFY, "manifest file entry %zu has a malformed stored_in (%s)", i, where);
            goto cleanup;
        }
        if (v && (rc = tb_manifest_set_stored_in(m, json_string_value(v))) < 0)
            goto cleanup;
    }
parent:
    v = json_object_get(root, "parent");
    if (v) {
        const char *path = json_string_value(json_object_get(v, "path"));
        const char *sha = json_string_value(json_object_get(v, "archive_sha256"));
        if (!path || !*path || !is_hex64(sha)) {
            rc = tb_error_set(TB_EVERIFY, "manifest has a malformed parent (%s)", where);
            goto cleanup;
        }
        if (!(m->parent_path = strdup(path))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        snprintf(m->parent_sha256, sizeof m->parent_sha256, "%s", sha);
        m->chain = (unsigned)json_integer_value(json_object_get(root, "chain_length"));
    }
    v = json_object_get(root, "archive");
    if (v) {
        const char *sha = json_string_value(json_object_get(v, "sha256"));
        m->archive_size = (uint64_t)json_integer_value(json_object_get(v, "size"));
        if (is_hex64(sha))
            snprintf(m->archive_sha256, sizeof m->archive_sha256, "%s", sha);
    }
    *out = m;
    m = NULL;
cleanup:
    tb_manifest_free(m);
    json_decref(root);
    return rc;
}

int tb_manifest_compare(const struct tb_manifest *a, const struct tb_manifest *b)
{
    if (a->last_seq != b->last_seq)
        return tb_error_set(TB_EVERIFY, "manifests disagree on last_sequence (%" PRIu64 " vs %" PRIu64 ")",
                            a->last_seq, b->last_seq);
    if (a->redacted)
        return strcmp(a->parent_sha256, b->parent_sha256)
                   ? tb_error_set(TB_EVERIFY, "manifests disagree on the parent backup") : 0;
    if (strcmp(a->content_hash, b->content_hash) || !a->hash_unavailable != !b->hash_unavailable)
        return tb_error_set(TB_EVERIFY, "manifests disagree on content_hash");
    if (strcmp(a->parent_sha256, b->parent_sha256))
        return tb_error_set(TB_EVERIFY, "manifests disagree on the parent backup");
    if (a->nfiles != b->nfiles)
        return tb_error_set(TB_EVERIFY, "manifests list %zu and %zu files", a->nfiles, b->nfiles);
    for (size_t i = 0; i < a->nfiles; i++) {
        const struct tb_manifest_file *f = tb_manifest_find(b, a->files[i].name);
        if (!f)
            return tb_error_set(TB_EVERIFY, "manifests disagree: %s listed in one only", a->files[i].name);
        if (f->size != a->files[i].size || f->mode != a->files[i].mode || strcmp(f->sha256, a->files[i].sha256) ||
            strcmp(f->stored_in ? f->stored_in : "", a->files[i].stored_in ? a->files[i].stored_in : ""))
            return tb_error_set(TB_EVERIFY, "manifests disagree on %s", f->name);
    }
    return 0;
}
