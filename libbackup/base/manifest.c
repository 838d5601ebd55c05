/* manifest: the backup manifest, serialised with jansson. */
#include "manifest.h"
#include "error.h"
#include "mem.h"
#include "timefmt.h"

#include <inttypes.h>
#include <limits.h>
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
    for (size_t i = 0; i < m->nfiles; i++)
        TB_FREE_ALL(m->files[i].name, m->files[i].stored_in);
    tb_free_strings(m->cfs, m->ncf);
    TB_FREE_ALL(m->parent_path, m->files, m->tool_version, m->created, m->source_path, m->host, m->hash_unavailable,
                m->write_policy, m->method, m->compression, m->config_file, m->key_ids, m);
}

int tb_manifest_add_file(struct tb_manifest *m, const char *name, uint64_t size, const char *sha256, unsigned mode)
{
    struct tb_manifest_file *f;
    int rc = tb_grow(&m->files, &m->cap, m->nfiles, sizeof *m->files, 64);
    if (rc < 0)
        return rc;
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

/* The manifest as a JSON tree (NULL when out of memory): what tb_manifest_to_json writes,
 * and what tb_manifest_compare compares. */
static json_t *manifest_tree(const struct tb_manifest *m, int flags)
{
    int redact = flags & TB_MANIFEST_REDACT;
    json_t *root = json_object(), *files = json_array(), *cfs = json_array();
    char version[32];
    if (!root || !files || !cfs) {
        json_decref(root);
        root = NULL;
        goto cleanup;
    }
    snprintf(version, sizeof version, "%d.%d", m->format_major, m->format_minor);
    for (size_t i = 0; i < m->ncf; i++)
        json_array_append_new(cfs, json_string(m->cfs[i]));
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *f = json_pack("{s:s, s:I, s:s, s:i}", "name", m->files[i].name, "size", (json_int_t)m->files[i].size,
                              "sha256", m->files[i].sha256, "mode", (int)m->files[i].mode);
        if (f && m->files[i].stored_in)
            json_object_set_new(f, "stored_in", json_string(m->files[i].stored_in));
        json_array_append_new(files, f);
    }
    if (m->parent_path) {
        json_object_set_new(root, "parent",
                            json_pack("{s:s, s:s}", "path", m->parent_path, "archive_sha256", m->parent_sha256));
        json_object_set_new(root, "chain_length", json_integer((json_int_t)m->chain));
    }
    json_object_set_new(root, "format_version", json_string(version));
    json_object_set_new(root, "tool", json_string("themis-backup"));
    json_object_set_new(root, "tool_version", str_or_null(m->tool_version));
    json_object_set_new(root, "created", str_or_null(m->created));
    json_object_set_new(root, "last_sequence", json_integer((json_int_t)m->last_seq));
    json_object_set_new(root, "compression",
                        json_pack("{s:o, s:i, s:i}", "algorithm", str_or_null(m->compression), "level", m->level,
                                  "threads", m->threads));
    json_object_set_new(root, "db_bytes", json_integer((json_int_t)m->db_bytes));
    if (m->write_policy)
        json_object_set_new(root, "write_policy", json_string(m->write_policy));
    if (m->encrypted)
        json_object_set_new(root, "encryption",
                            json_pack("{s:s, s:s, s:o}", "format", "TBCRYPT 1", "cipher", "AES-256-GCM", "key_ids",
                                      str_or_null(m->key_ids)));
    if (redact) {
        json_object_set_new(root, "redacted", json_true());
    } else {
        json_object_set_new(root, "source",
                            json_pack("{s:o, s:o, s:o}", "path", str_or_null(m->source_path), "host",
                                      str_or_null(m->host), "method", str_or_null(m->method)));
        json_object_set_new(root, "column_families", cfs);
        cfs = NULL;
        if (m->hash_unavailable || m->content_hash_v2) {
            json_object_set_new(root, "content_hash", json_null());
            json_object_set_new(root, "content_hash_unavailable",
                                json_string(m->hash_unavailable ? m->hash_unavailable : TB_MANIFEST_HASH_V2_NOTE));
            if (!m->hash_unavailable)
                json_object_set_new(root, "content_hash_v2", json_string(m->content_hash));
        } else {
            json_object_set_new(root, "content_hash", json_string(m->content_hash));
        }
        json_object_set_new(
            root, "included",
            json_pack("{s:b, s:o}", "config", m->include_config, "config_file", str_or_null(m->config_file)));
        json_object_set_new(root, "files", files);
        files = NULL;
    }
    if (flags & TB_MANIFEST_ARCHIVE)
        json_object_set_new(root, "archive",
                            json_pack("{s:s, s:I, s:s}", "name", tb_manifest_archive_name(m), "size",
                                      (json_int_t)m->archive_size, "sha256", m->archive_sha256));
cleanup:
    json_decref(files);
    json_decref(cfs);
    return root;
}

int tb_manifest_to_json(const struct tb_manifest *m, int flags, char **out)
{
    json_t *root = manifest_tree(m, flags);
    *out = root ? tb_json_text(root) : NULL;
    json_decref(root);
    return *out ? 0 : tb_error_set(TB_EIO, "cannot serialise manifest");
}

/* ---- reading: every field checked against the schema of docs/format.md before use ---- */

/* A violation reads "<where>: <field>: <what>", e.g. "b1/MANIFEST.json: files[3].mode: not
 * an integer in 0..07777". newer: the manifest is of a newer minor version than this
 * reader, which may add keys (never change the ones we know): those are ignored. */
struct schema {
    const char *where;
    int newer;
};

enum { OPT = 0, REQ = 1, NUL = 2 }; /* absent allowed, required, null allowed */

static int bad(const struct schema *s, const char *field, const char *what)
{
    return tb_error_set(TB_EVERIFY, "%s: %s: %s", s->where, field, what);
}

/* A key from the file, fit to print: at most 64 bytes, control bytes as '?'. */
static const char *printable(const char *key, char buf[68])
{
    size_t i = 0;
    for (; key[i] && i < 64; i++)
        buf[i] = (unsigned char)key[i] < 0x20 || key[i] == 0x7f ? '?' : key[i];
    if (key[i])
        buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = '\0';
    return buf;
}

static int known_keys(const struct schema *s, json_t *obj, const char *field, const char *const *known)
{
    const char *key;
    json_t *v;
    char buf[68];
    if (s->newer)
        return 0;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], key))
            i++;
        if (!known[i])
            return tb_error_set(TB_EVERIFY, "%s: %s%s%s: unknown key", s->where, field, *field ? "." : "",
                                printable(key, buf));
    }
    return 0;
}

static int get_str(const struct schema *s, json_t *obj, const char *key, const char *field, int flags, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return flags & REQ ? bad(s, field, "missing") : 0;
    if (json_is_null(v) && (flags & NUL))
        return 0;
    if (!json_is_string(v))
        return bad(s, field, flags & NUL ? "not a string or null" : "not a string");
    *out = json_string_value(v);
    return 0;
}

/* A string that must be one of values (NULL-terminated); *out stays NULL when absent. */
static int get_enum(const struct schema *s, json_t *obj, const char *key, const char *field, int flags,
                    const char *const *values, const char *what, const char **out)
{
    int rc = get_str(s, obj, key, field, flags, out);
    size_t i = 0;
    if (rc < 0 || !*out)
        return rc;
    while (values[i] && strcmp(values[i], *out))
        i++;
    return values[i] ? 0 : bad(s, field, what);
}

static int get_int(const struct schema *s, json_t *obj, const char *key, const char *field, int flags, json_int_t min,
                   json_int_t max, const char *range, json_int_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return flags & REQ ? bad(s, field, "missing") : 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return tb_error_set(TB_EVERIFY, "%s: %s: not an integer in %s", s->where, field, range);
    *out = json_integer_value(v);
    return 0;
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

/* A SHA-256 as 64 lower-case hex digits into out (left "" when absent). */
static int get_hex(const struct schema *s, json_t *obj, const char *key, const char *field, int flags, char out[65])
{
    const char *v;
    int rc = get_str(s, obj, key, field, flags & REQ, &v);
    if (rc < 0 || !v)
        return rc;
    if (!is_hex64(v))
        return bad(s, field, "not a SHA-256 (64 lower-case hex digits)");
    memcpy(out, v, 65);
    return 0;
}

/* An object with only the known keys; *out NULL when absent. */
static int get_obj(const struct schema *s, json_t *obj, const char *key, int flags, const char *const *known,
                   json_t **out)
{
    *out = json_object_get(obj, key);
    if (!*out)
        return flags & REQ ? bad(s, key, "missing") : 0;
    if (!json_is_object(*out))
        return bad(s, key, "not an object");
    return known_keys(s, *out, key, known);
}

static int set_str(char **dst, const char *v)
{
    if (v && !(*dst = strdup(v)))
        return tb_error_set(TB_EIO, "out of memory");
    return 0;
}

/* Path components separated by '/', none empty, "." or "..". */
static int plain_components(const char *p)
{
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (!e)
            return 1;
        p = e + 1;
    }
}

/* A member name as backups write it: under db/ or config/, relative, nothing that climbs. */
static int safe_member(const char *name)
{
    return (strncmp(name, "db/", 3) == 0 || strncmp(name, "config/", 7) == 0) && plain_components(name);
}

/* A parent as backups write it: "../NAME" for a sibling directory, else the absolute path
 * realpath gave (no ".", ".." or empty component). */
static int safe_parent(const char *p)
{
    if (strncmp(p, "../", 3) == 0)
        return !strchr(p + 3, '/') && plain_components(p + 3);
    return p[0] == '/' && plain_components(p + 1);
}

static int by_name(const void *a, const void *b)
{
    const struct tb_manifest_file *x = *(const struct tb_manifest_file *const *)a;
    const struct tb_manifest_file *y = *(const struct tb_manifest_file *const *)b;
    return strcmp(x->name, y->name);
}

/* Each file name once (a second entry could say anything about the same member). */
static int names_once(const struct schema *s, const struct tb_manifest *m)
{
    const struct tb_manifest_file **v;
    int rc = 0;
    if (m->nfiles < 2)
        return 0;
    if (!(v = malloc(m->nfiles * sizeof *v)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < m->nfiles; i++)
        v[i] = &m->files[i];
    qsort(v, m->nfiles, sizeof *v, by_name);
    for (size_t i = 1; i < m->nfiles && rc == 0; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            size_t at = (size_t)(v[i] > v[i - 1] ? v[i] - m->files : v[i - 1] - m->files);
            rc = tb_error_set(TB_EVERIFY, "%s: files[%zu].name: %s is listed twice", s->where, at, v[i]->name);
        }
    free(v);
    return rc;
}

static int parse_files(const struct schema *s, json_t *files, struct tb_manifest *m)
{
    static const char *const keys[] = { "name", "size", "sha256", "mode", "stored_in", NULL };
    size_t i;
    json_t *f;
    int rc = 0;
    if (!json_is_array(files))
        return bad(s, "files", "not an array");
    json_array_foreach(files, i, f)
    {
        char field[32], key[64], sha[65] = "", stored[65] = "";
        const char *name;
        json_int_t size = 0, mode = 0;
        snprintf(field, sizeof field, "files[%zu]", i);
        if (!json_is_object(f))
            return bad(s, field, "not an object");
        if ((rc = known_keys(s, f, field, keys)) < 0)
            return rc;
#define FIELD(k) (snprintf(key, sizeof key, "%s.%s", field, k), key)
        if ((rc = get_str(s, f, "name", FIELD("name"), REQ, &name)) < 0)
            return rc;
        if (!safe_member(name))
            return bad(s, key, "not a member name under db/ or config/ (relative, no \"..\", \".\" or empty part)");
        if ((rc = get_int(s, f, "size", FIELD("size"), REQ, 0, INT64_MAX, "0..2^63-1", &size)) < 0 ||
            (rc = get_hex(s, f, "sha256", FIELD("sha256"), REQ, sha)) < 0 ||
            (rc = get_int(s, f, "mode", FIELD("mode"), REQ, 0, 07777, "0..07777", &mode)) < 0 ||
            (rc = get_hex(s, f, "stored_in", FIELD("stored_in"), OPT, stored)) < 0)
            return rc;
#undef FIELD
        if ((rc = tb_manifest_add_file(m, name, (uint64_t)size, sha, (unsigned)mode)) < 0)
            return rc;
        if (stored[0] && (rc = tb_manifest_set_stored_in(m, stored)) < 0)
            return rc;
    }
    return names_once(s, m);
}

/* "MAJOR.MINOR", digits only. */
static int parse_version(const char *v, int *major, int *minor)
{
    size_t a = strspn(v, "0123456789"), b;
    if (a == 0 || a > 6 || v[a] != '.')
        return -1;
    b = strspn(v + a + 1, "0123456789");
    if (b == 0 || b > 6 || v[a + 1 + b])
        return -1;
    *major = atoi(v);
    *minor = atoi(v + a + 1);
    return 0;
}

/* A string (or null, with NUL) copied into *dst. */
static int copy_str(const struct schema *s, json_t *obj, const char *key, const char *field, int flags, char **dst)
{
    const char *str;
    int rc = get_str(s, obj, key, field, flags, &str);
    return rc < 0 ? rc : set_str(dst, str);
}

static int get_u63(const struct schema *s, json_t *obj, const char *key, const char *field, uint64_t *out)
{
    json_int_t n = 0;
    int rc = get_int(s, obj, key, field, REQ, 0, INT64_MAX, "0..2^63-1", &n);
    *out = (uint64_t)n;
    return rc;
}

/* format_version first: it decides whether keys we do not know are an error. */
static int parse_format(struct schema *s, json_t *root, int *major, int *minor)
{
    const char *str;
    int rc;
    if ((rc = get_str(s, root, "format_version", "format_version", REQ, &str)) < 0)
        return rc;
    if (parse_version(str, major, minor) < 0)
        return bad(s, "format_version", "not MAJOR.MINOR");
    if (*major != TB_MANIFEST_FORMAT_MAJOR)
        return tb_error_set(TB_EVERIFY,
                            "%s: format_version: manifest format version %s is not supported (this "
                            "version reads %d.x)",
                            s->where, str, TB_MANIFEST_FORMAT_MAJOR);
    s->newer = *minor > TB_MANIFEST_FORMAT_MINOR;
    return 0;
}

static int parse_identity(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    const char *str;
    int64_t t;
    int rc;
    if ((rc = get_str(s, root, "tool", "tool", REQ, &str)) < 0)
        return rc;
    if (strcmp(str, "themis-backup"))
        return bad(s, "tool", "not \"themis-backup\"");
    if ((rc = copy_str(s, root, "tool_version", "tool_version", REQ | NUL, &m->tool_version)) < 0 ||
        (rc = get_str(s, root, "created", "created", REQ, &str)) < 0)
        return rc;
    if (tb_time_parse(str, &t) < 0)
        return bad(s, "created", "not an RFC 3339 time");
    if ((rc = set_str(&m->created, str)) < 0 ||
        (rc = get_u63(s, root, "last_sequence", "last_sequence", &m->last_seq)) < 0)
        return rc;
    return get_u63(s, root, "db_bytes", "db_bytes", &m->db_bytes);
}

static int parse_compression(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    static const char *const keys[] = { "algorithm", "level", "threads", NULL };
    static const char *const names[] = { "zstd", "none", NULL };
    static const char *const policies[] = { "write_committed", "write_prepared", "write_unprepared", NULL };
    const char *str;
    json_t *o;
    json_int_t n;
    int rc;
    if ((rc = get_obj(s, root, "compression", REQ, keys, &o)) < 0 ||
        (rc = get_enum(s, o, "algorithm", "compression.algorithm", REQ, names, "not \"zstd\" or \"none\"", &str)) < 0 ||
        (rc = set_str(&m->compression, str)) < 0)
        return rc;
    if ((rc = get_int(s, o, "level", "compression.level", REQ, -7, 22, "-7..22", &n)) < 0)
        return rc;
    m->level = (int)n;
    if ((rc = get_int(s, o, "threads", "compression.threads", REQ, 0, INT_MAX, "0..2^31-1", &n)) < 0)
        return rc;
    m->threads = (int)n;
    if ((rc = get_enum(s, root, "write_policy", "write_policy", OPT, policies,
                       "not write_committed, write_prepared or write_unprepared", &str)) < 0)
        return rc;
    return set_str(&m->write_policy, str);
}

static int parse_encryption(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    static const char *const keys[] = { "format", "cipher", "key_ids", NULL };
    static const char *const fmt[] = { "TBCRYPT 1", NULL }, *const cipher[] = { "AES-256-GCM", NULL };
    const char *str;
    json_t *o, *v;
    int rc;
    if ((rc = get_obj(s, root, "encryption", OPT, keys, &o)) < 0)
        return rc;
    if (o) {
        m->encrypted = 1;
        if ((rc = get_enum(s, o, "format", "encryption.format", REQ, fmt, "not \"TBCRYPT 1\"", &str)) < 0 ||
            (rc = get_enum(s, o, "cipher", "encryption.cipher", REQ, cipher, "not \"AES-256-GCM\"", &str)) < 0 ||
            (rc = copy_str(s, o, "key_ids", "encryption.key_ids", REQ | NUL, &m->key_ids)) < 0)
            return rc;
    }
    v = json_object_get(root, "redacted");
    if (v && !json_is_true(v))
        return bad(s, "redacted", "not true (a copy that is not redacted leaves the key out)");
    m->redacted = v != NULL;
    if (m->redacted && !m->encrypted)
        return bad(s, "redacted", "a manifest without encryption is never redacted");
    return 0;
}

static int parse_column_families(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    json_t *cfs = json_object_get(root, "column_families"), *v;
    size_t i;
    int rc;
    if (!json_is_array(cfs))
        return bad(s, "column_families", cfs ? "not an array" : "missing");
    if (!(m->cfs = calloc(json_array_size(cfs) + 1, sizeof *m->cfs)))
        return tb_error_set(TB_EIO, "out of memory");
    json_array_foreach(cfs, i, v)
    {
        char field[48];
        snprintf(field, sizeof field, "column_families[%zu]", i);
        if (!json_is_string(v))
            return bad(s, field, "not a string");
        for (size_t j = 0; j < m->ncf; j++)
            if (strcmp(m->cfs[j], json_string_value(v)) == 0)
                return bad(s, field, "listed twice");
        if ((rc = set_str(&m->cfs[m->ncf], json_string_value(v))) < 0)
            return rc;
        m->ncf++;
    }
    return 0;
}

/* content_hash, or (from 1.3) null with content_hash_unavailable saying why, or (from 1.4)
 * content_hash_v2, then content_hash null and content_hash_unavailable for 1.3 readers. */
static int parse_content_hash(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    const char *str;
    int rc;
    if (json_object_get(root, "content_hash_v2")) {
        if (m->format_minor < 4)
            return bad(s, "content_hash_v2", "in a manifest older than format 1.4");
        if (!json_is_null(json_object_get(root, "content_hash")))
            return bad(s, "content_hash", "not null beside a content_hash_v2");
        if ((rc = get_str(s, root, "content_hash_unavailable", "content_hash_unavailable", REQ, &str)) < 0)
            return rc;
        m->content_hash_v2 = 1;
        return get_hex(s, root, "content_hash_v2", "content_hash_v2", REQ, m->content_hash);
    }
    if (json_is_null(json_object_get(root, "content_hash")) && m->format_minor >= 3) {
        if ((rc = get_str(s, root, "content_hash_unavailable", "content_hash_unavailable", REQ, &str)) < 0)
            return rc;
        if (!*str)
            return bad(s, "content_hash_unavailable", "empty (it says why content_hash is null)");
        return set_str(&m->hash_unavailable, str);
    }
    if ((rc = get_hex(s, root, "content_hash", "content_hash", REQ, m->content_hash)) < 0)
        return rc;
    if (json_object_get(root, "content_hash_unavailable"))
        return bad(s, "content_hash_unavailable", "present beside a content_hash");
    return 0;
}

/* What a redacted copy leaves out: absent there, required elsewhere. */
static int parse_content(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    static const char *const content[] = { "source",          "column_families",
                                           "content_hash",    "content_hash_unavailable",
                                           "content_hash_v2", "included",
                                           "files",           NULL };
    static const char *const source_keys[] = { "path", "host", "method", NULL };
    static const char *const incl_keys[] = { "config", "config_file", NULL };
    json_t *o, *v;
    int rc;
    if (m->redacted) {
        for (size_t i = 0; content[i]; i++)
            if (json_object_get(root, content[i]))
                return bad(s, content[i], "present in a redacted manifest");
        return 0;
    }
    if ((rc = get_obj(s, root, "source", REQ, source_keys, &o)) < 0 ||
        (rc = copy_str(s, o, "path", "source.path", REQ | NUL, &m->source_path)) < 0 ||
        (rc = copy_str(s, o, "host", "source.host", REQ | NUL, &m->host)) < 0 ||
        (rc = copy_str(s, o, "method", "source.method", REQ | NUL, &m->method)) < 0 ||
        (rc = parse_column_families(s, root, m)) < 0 || (rc = parse_content_hash(s, root, m)) < 0 ||
        (rc = get_obj(s, root, "included", REQ, incl_keys, &o)) < 0)
        return rc;
    v = json_object_get(o, "config");
    if (!json_is_boolean(v))
        return bad(s, "included.config", v ? "not true or false" : "missing");
    m->include_config = json_is_true(v);
    if ((rc = copy_str(s, o, "config_file", "included.config_file", REQ | NUL, &m->config_file)) < 0)
        return rc;
    if (!(v = json_object_get(root, "files")))
        return bad(s, "files", "missing");
    return parse_files(s, v, m);
}

static int parse_parent(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    static const char *const keys[] = { "path", "archive_sha256", NULL };
    const char *str;
    json_t *o;
    json_int_t n;
    int rc;
    if ((rc = get_obj(s, root, "parent", OPT, keys, &o)) < 0)
        return rc;
    if (o) {
        if ((rc = get_str(s, o, "path", "parent.path", REQ, &str)) < 0)
            return rc;
        if (!safe_parent(str))
            return bad(s, "parent.path",
                       "neither \"../NAME\" nor an absolute path without \".\", \"..\" or empty part");
        if ((rc = set_str(&m->parent_path, str)) < 0 ||
            (rc = get_hex(s, o, "archive_sha256", "parent.archive_sha256", REQ, m->parent_sha256)) < 0 ||
            (rc = get_int(s, root, "chain_length", "chain_length", REQ, 1, UINT_MAX, "1..2^32-1", &n)) < 0)
            return rc;
        m->chain = (unsigned)n;
    } else if (json_object_get(root, "chain_length")) {
        return bad(s, "chain_length", "present without a parent");
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i].stored_in && !m->parent_path)
            return tb_error_set(TB_EVERIFY, "%s: files[%zu].stored_in: names an ancestor, but there is no parent",
                                s->where, i);
    return 0;
}

/* Only in the copy beside the archive. */
static int parse_archive(const struct schema *s, json_t *root, struct tb_manifest *m)
{
    static const char *const keys[] = { "name", "size", "sha256", NULL };
    static const char *const names[] = { "backup.tar.zst", "backup.tar", "backup.tar.zst.enc", "backup.tar.enc", NULL };
    const char *str;
    json_t *o;
    int rc;
    if ((rc = get_obj(s, root, "archive", OPT, keys, &o)) < 0 || !o)
        return rc;
    if ((rc = get_enum(s, o, "name", "archive.name", REQ, names, "not an archive name backups use", &str)) < 0 ||
        (rc = get_u63(s, o, "size", "archive.size", &m->archive_size)) < 0)
        return rc;
    return get_hex(s, o, "sha256", "archive.sha256", REQ, m->archive_sha256);
}

/* The sections in the order their errors are reported. */
static int (*const sections[])(const struct schema *, json_t *, struct tb_manifest *) = {
    parse_identity, parse_compression, parse_encryption, parse_content, parse_parent, parse_archive,
};

int tb_manifest_parse(const char *text, const char *where, struct tb_manifest **out)
{
    static const char *const top[] = { "format_version",  "tool",         "tool_version",
                                       "created",         "source",       "last_sequence",
                                       "column_families", "content_hash", "content_hash_unavailable",
                                       "content_hash_v2", "compression",  "included",
                                       "db_bytes",        "write_policy", "files",
                                       "archive",         "parent",       "chain_length",
                                       "encryption",      "redacted",     NULL };
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    struct schema s = { where, 0 };
    struct tb_manifest *m = NULL;
    int rc = 0, major = -1, minor = 0;

    if (!root)
        return tb_error_set(TB_EVERIFY, "%s: not valid JSON: %s at line %d", where, jerr.text, jerr.line);
    if (!json_is_object(root)) {
        rc = tb_error_set(TB_EVERIFY, "%s: not a JSON object", where);
        goto cleanup;
    }
    if ((rc = parse_format(&s, root, &major, &minor)) < 0 || (rc = known_keys(&s, root, "", top)) < 0 ||
        (rc = tb_manifest_new(&m)) < 0)
        goto cleanup;
    m->format_major = major;
    m->format_minor = minor;
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if ((rc = sections[i](&s, root, m)) < 0)
            goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    tb_manifest_free(m);
    json_decref(root);
    return rc;
}

/* Writes where x and y first differ into path (which holds the path to them), as a field:
 * "files[3] (db/000012.sst).mode". Returns 1 when they differ. */
static int first_difference(json_t *x, json_t *y, char *path, size_t cap)
{
    size_t len = strlen(path);
    const char *key;
    json_t *v;
    if (json_equal(x, y))
        return 0;
    if (json_is_object(x) && json_is_object(y)) {
        json_object_foreach(x, key, v)
        {
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", key);
            if (!json_object_get(y, key) || first_difference(v, json_object_get(y, key), path, cap))
                return 1;
        }
        json_object_foreach(y, key, v)
        {
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", key);
            if (!json_object_get(x, key))
                return 1;
        }
    } else if (json_is_array(x) && json_is_array(y) && json_array_size(x) == json_array_size(y)) {
        for (size_t i = 0; i < json_array_size(x); i++) {
            const char *name = json_string_value(json_object_get(json_array_get(x, i), "name"));
            snprintf(path + len, cap - len, name ? "[%zu] (%s)" : "[%zu]", i, name);
            if (first_difference(json_array_get(x, i), json_array_get(y, i), path, cap))
                return 1;
        }
    } else if (json_is_array(x) && json_is_array(y)) {
        snprintf(path + len, cap - len, " (%zu vs %zu entries)", json_array_size(x), json_array_size(y));
        return 1;
    }
    path[len] = '\0';
    return 1;
}

/* Compared as their canonical JSON, the very trees tb_manifest_to_json writes, so a field
 * added to the manifest is compared without anyone remembering to; and as parsed, so two
 * texts that differ only in spacing or key order agree. */
int tb_manifest_compare(const struct tb_manifest *a, const struct tb_manifest *b)
{
    int flags = a->redacted ? TB_MANIFEST_REDACT : 0, rc = 0;
    json_t *x = manifest_tree(a, flags), *y = manifest_tree(b, flags);
    char path[512] = "";
    if (!x || !y) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    /* Not compared: what only the copy beside the archive has (the archive object, left out
     * of both trees) or may change on its own (the key ids, which rekeying rewrites there). */
    json_object_del(json_object_get(x, "encryption"), "key_ids");
    json_object_del(json_object_get(y, "encryption"), "key_ids");
    if (first_difference(x, y, path, sizeof path))
        rc = tb_error_set(TB_EVERIFY, "manifests disagree on %s", *path ? path : "their type");
cleanup:
    json_decref(x);
    json_decref(y);
    return rc;
}
