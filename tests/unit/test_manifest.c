/* test_manifest: JSON round trip, version checks, the schema (one bad manifest per rule), comparison. */
#include "tap.h"
#include "error.h"
#include "manifest.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct tb_manifest *sample(void)
{
    struct tb_manifest *m;
    tb_manifest_new(&m);
    m->tool_version = strdup("0.1.0");
    m->created = strdup("2026-11-24T22:41:00Z");
    m->source_path = strdup("/var/lib/themisdb/rocksdb");
    m->host = strdup("db1");
    m->method = strdup("secondary-checkpoint");
    m->compression = strdup("zstd");
    m->level = 3;
    m->threads = 2;
    m->last_seq = 5000000000ull; /* past 32 bits */
    m->ncf = 2;
    m->cfs = calloc(2, sizeof *m->cfs);
    m->cfs[0] = strdup("default");
    m->cfs[1] = strdup("pii_mappings");
    memcpy(m->content_hash, SHA_A, 65);
    tb_manifest_add_file(m, "db/000012.sst", 1234, SHA_A, 0644);
    tb_manifest_add_file(m, "db/CURRENT", 16, SHA_B, 0644);
    m->archive_size = 99;
    memcpy(m->archive_sha256, SHA_B, 65);
    return m;
}

static int parses(const char *json, int want)
{
    struct tb_manifest *m = NULL;
    int rc = tb_manifest_parse(json, "test", &m);
    tb_manifest_free(m);
    return rc == want;
}

/* Damages the 64-hex value after marker: its first two characters become "zz". */
static void cut_after(char *s, const char *marker)
{
    char *p = strstr(s, marker);
    if (p)
        memcpy(p + strlen(marker), "zz", 2);
}


/* ---- schema: the sample's JSON with one edit, as a damaged or hostile file would be ---- */

/* The JSON of m changed at path ("files.0.mode": keys and array indexes) to value (JSON
 * text; an index one past the end appends) or, with value NULL, without it. */
static char *edited(const struct tb_manifest *m, int flags, const char *path, const char *value)
{
    char *text = NULL, *p = strdup(path), *key, *next, *out;
    json_t *root, *at;
    tb_manifest_to_json(m, flags, &text);
    root = json_loads(text, 0, NULL);
    at = root;
    for (key = p; (next = strchr(key, '.')) != NULL; key = next + 1) {
        *next = '\0';
        at = json_is_array(at) ? json_array_get(at, (size_t)atoi(key)) : json_object_get(at, key);
    }
    if (json_is_array(at)) {
        size_t i = (size_t)atoi(key);
        json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
        if (!value)
            json_array_remove(at, i);
        else if (i == json_array_size(at))
            json_array_append_new(at, v);
        else
            json_array_set_new(at, i, v);
    } else if (value) {
        json_object_set_new(at, key, json_loads(value, JSON_DECODE_ANY, NULL));
    } else {
        json_object_del(at, key);
    }
    out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    free(text);
    free(p);
    return out;
}

/* The edit is refused with TB_EVERIFY and a message holding want. */
static void refused(const struct tb_manifest *m, const char *path, const char *value, const char *want)
{
    char *j = edited(m, TB_MANIFEST_ARCHIVE, path, value);
    struct tb_manifest *back = NULL;
    int rc = tb_manifest_parse(j, "MANIFEST.json", &back);
    ok(rc == TB_EVERIFY && strstr(tb_error_last(), want), "%s = %s: refused naming it (%s)", path,
       value ? value : "(removed)", rc ? tb_error_last() : "accepted");
    tb_manifest_free(back);
    free(j);
}

static void accepted(const struct tb_manifest *m, int flags, const char *path, const char *value, const char *what)
{
    char *j = edited(m, flags, path, value);
    struct tb_manifest *back = NULL;
    int rc = tb_manifest_parse(j, "MANIFEST.json", &back);
    ok(rc == 0, "%s (%s)", what, rc ? tb_error_last() : "accepted");
    tb_manifest_free(back);
    free(j);
}

static void schema_tests(void)
{
    struct tb_manifest *m = sample(), *inc = sample(), *enc = sample(), *a = NULL, *b = NULL;
    char *j = NULL, *dup;
    const char *mode = "files[0].mode: not an integer in 0..07777";

    /* Files: exactly the known keys, each of its type and range. */
    refused(m, "files.0.mode", "true", mode);
    refused(m, "files.0.mode", "null", mode);
    refused(m, "files.0.mode", "420.0", mode);
    refused(m, "files.0.mode", "-9223372036854775808", mode);
    refused(m, "files.0.mode", "4096", mode);
    refused(m, "files.0.mode", "-1", mode);
    refused(m, "files.0.mode", "\"420\"", mode);
    refused(m, "files.0.mode", NULL, "files[0].mode: missing");
    refused(m, "files.0.size", "-1", "files[0].size: not an integer");
    refused(m, "files.0.size", "\"1\"", "files[0].size: not an integer");
    refused(m, "files.0.size", "1e3", "files[0].size: not an integer");
    refused(m, "files.0.sha256", "\"" SHA_A "0\"", "files[0].sha256: not a SHA-256");
    refused(m, "files.1.sha256", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
            "files[1].sha256: not a SHA-256");
    refused(m, "files.0.name", "7", "files[0].name: not a string");
    refused(m, "files.0.name", "\"../etc/passwd\"", "files[0].name: not a member name");
    refused(m, "files.0.name", "\"db/../../etc/passwd\"", "files[0].name: not a member name");
    refused(m, "files.0.name", "\"/etc/passwd\"", "files[0].name: not a member name");
    refused(m, "files.0.name", "\"db//x\"", "files[0].name: not a member name");
    refused(m, "files.0.name", "\"db/\"", "files[0].name: not a member name");
    refused(m, "files.0.name", "\"etc/passwd\"", "files[0].name: not a member name");
    refused(m, "files.0.owner", "\"root\"", "files[0].owner: unknown key");
    refused(m, "files.0", "{}", "files[0].name: missing");
    refused(m, "files.1", "\"db/x\"", "files[1]: not an object");
    refused(m, "files.2", "{\"name\": \"db/CURRENT\", \"size\": 16, \"sha256\": \"" SHA_B "\", \"mode\": 420}",
            "db/CURRENT is listed twice");
    refused(m, "files.0.stored_in", "\"" SHA_B "\"", "files[0].stored_in: names an ancestor, but there is no parent");
    refused(m, "files", "{}", "files: not an array");
    refused(m, "files", NULL, "files: missing");
    /* Column families: strings, each once. */
    refused(m, "column_families.2", "{}", "column_families[2]: not a string");
    refused(m, "column_families.0", "null", "column_families[0]: not a string");
    refused(m, "column_families.2", "\"default\"", "column_families[2]: listed twice");
    refused(m, "column_families", "\"default\"", "column_families: not an array");
    /* The other fields. */
    refused(m, "db_bytes", "\"2922910\"", "db_bytes: not an integer");
    refused(m, "db_bytes", NULL, "db_bytes: missing");
    refused(m, "last_sequence", "-1", "last_sequence: not an integer");
    refused(m, "last_sequence", "false", "last_sequence: not an integer");
    refused(m, "compression.algorithm", "\"lz4\"", "compression.algorithm: not \"zstd\" or \"none\"");
    refused(m, "compression.algorithm", "null", "compression.algorithm: not a string");
    refused(m, "compression.level", "23", "compression.level: not an integer in -7..22");
    refused(m, "compression.threads", "-1", "compression.threads: not an integer");
    refused(m, "compression.dictionary", "true", "compression.dictionary: unknown key");
    refused(m, "compression", "\"zstd\"", "compression: not an object");
    refused(m, "content_hash", "\"abc\"", "content_hash: not a SHA-256");
    refused(m, "content_hash_unavailable", "\"why not\"", "content_hash_unavailable: present beside a content_hash");
    refused(m, "tool", "\"other-tool\"", "tool: not \"themis-backup\"");
    refused(m, "tool_version", "3", "tool_version: not a string or null");
    refused(m, "created", "\"yesterday\"", "created: not an RFC 3339 time");
    refused(m, "source", "[]", "source: not an object");
    refused(m, "source.host", "1", "source.host: not a string or null");
    refused(m, "included.config", "\"yes\"", "included.config: not true or false");
    refused(m, "included.config_file", "false", "included.config_file: not a string or null");
    refused(m, "write_policy", "\"write_sometimes\"", "write_policy: not write_committed");
    refused(m, "encryption", "{\"format\": \"TBCRYPT 1\", \"cipher\": \"ROT13\", \"key_ids\": null}",
            "encryption.cipher: not \"AES-256-GCM\"");
    refused(m, "redacted", "false", "redacted: not true");
    refused(m, "redacted", "true", "redacted: a manifest without encryption is never redacted");
    refused(m, "archive.size", "\"99\"", "archive.size: not an integer");
    refused(m, "archive.name", "\"../../etc/passwd\"", "archive.name: not an archive name");
    refused(m, "archive.sha256", NULL, "archive.sha256: missing");
    refused(m, "format_version", "\"1\"", "format_version: not MAJOR.MINOR");
    refused(m, "format_version", "1.3", "format_version: not a string");
    refused(m, "format_version", "\"2.0\"", "format_version: manifest format version 2.0 is not supported");
    refused(m, "comment", "\"hello\"", "comment: unknown key");
    refused(m, "chain_length", "2", "chain_length: present without a parent");
    ok(parses("[1, 2]", TB_EVERIFY) && strstr(tb_error_last(), "not a JSON object"),
       "a manifest that is not an object");

    /* Duplicate keys: jansson would keep one of the two. */
    tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE, &j);
    if (asprintf(&dup, "{\"db_bytes\": 1, %s", strchr(j, '{') + 1) > 0) {
        ok(parses(dup, TB_EVERIFY) && strstr(tb_error_last(), "duplicate object key") &&
               strstr(tb_error_last(), "db_bytes"),
           "a duplicate key is refused, named (%s)", tb_error_last());
        free(dup);
    }
    free(j);
    j = NULL;

    /* A newer minor version may add keys: ignored, the ones we know still checked. */
    accepted(m, TB_MANIFEST_ARCHIVE, "format_version", "\"1.9\"", "a newer minor version is read");
    m->format_minor = 9;
    accepted(m, TB_MANIFEST_ARCHIVE, "comment", "\"hello\"", "1.9: an unknown top-level key is ignored");
    accepted(m, TB_MANIFEST_ARCHIVE, "files.0.owner", "\"root\"", "1.9: an unknown key of a file is ignored");
    refused(m, "files.0.mode", "true", mode);
    m->format_minor = TB_MANIFEST_FORMAT_MINOR;

    /* Old manifests: 1.0 (no write policy), 1.2 redacted. */
    m->format_minor = 0;
    accepted(m, 0, "format_version", "\"1.0\"", "a 1.0 manifest (inside the archive) is read");
    accepted(m, TB_MANIFEST_ARCHIVE, "format_version", "\"1.0\"", "a 1.0 manifest (beside the archive) is read");
    m->format_minor = TB_MANIFEST_FORMAT_MINOR;
    enc->format_minor = 2;
    enc->encrypted = 1;
    enc->key_ids = strdup("6af1a2b3c4d5e6f7");
    accepted(enc, TB_MANIFEST_ARCHIVE | TB_MANIFEST_REDACT, "format_version", "\"1.2\"",
             "a 1.2 redacted manifest is read");
    accepted(enc, TB_MANIFEST_ARCHIVE, "format_version", "\"1.2\"", "a 1.2 encrypted manifest is read");
    j = edited(enc, TB_MANIFEST_ARCHIVE | TB_MANIFEST_REDACT, "files", "[]");
    ok(parses(j, TB_EVERIFY) && strstr(tb_error_last(), "files: present in a redacted manifest"),
       "a redacted manifest with files is refused");
    free(j);

    /* The parent: "../NAME" or absolute, never climbing; chain_length with it. */
    inc->parent_path = strdup("../b1");
    memcpy(inc->parent_sha256, SHA_B, 65);
    inc->chain = 2;
    accepted(inc, TB_MANIFEST_ARCHIVE, "parent.path", "\"../b1\"", "parent ../b1");
    accepted(inc, TB_MANIFEST_ARCHIVE, "parent.path", "\"/backups/b1\"", "an absolute parent");
    accepted(inc, TB_MANIFEST_ARCHIVE, "files.0.stored_in", "\"" SHA_B "\"", "stored_in with a parent");
    refused(inc, "parent.path", "\"../../etc\"", "parent.path: neither");
    refused(inc, "parent.path", "\"../b1/../../etc\"", "parent.path: neither");
    refused(inc, "parent.path", "\"b1\"", "parent.path: neither");
    refused(inc, "parent.path", "\"/backups/../etc\"", "parent.path: neither");
    refused(inc, "parent.path", "\"/\"", "parent.path: neither");
    refused(inc, "parent.path", "\"\"", "parent.path: neither");
    refused(inc, "parent.archive_sha256", "\"" SHA_A "a\"", "parent.archive_sha256: not a SHA-256");
    refused(inc, "chain_length", NULL, "chain_length: missing");
    refused(inc, "chain_length", "0", "chain_length: not an integer in 1..");

    /* Compare: every shared field, the key ids and the archive object aside. */
    tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE, &j);
    tb_manifest_parse(j, "a", &a);
    free(j);
    j = edited(m, 0, "files.0.mode", "384");
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == TB_EVERIFY && strstr(tb_error_last(), "files[0] (db/000012.sst).mode"),
       "compare: a changed mode is named (%s)", tb_error_last());
    tb_manifest_free(b);
    b = NULL;
    j = edited(m, 0, "source.host", "\"db2\"");
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == TB_EVERIFY && strstr(tb_error_last(), "source.host"),
       "compare: a changed host is named");
    tb_manifest_free(b);
    b = NULL;
    j = edited(m, 0, "compression.level", "4");
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == TB_EVERIFY && strstr(tb_error_last(), "compression.level"),
       "compare: a changed level is named");
    tb_manifest_free(b);
    b = NULL;
    j = edited(m, 0, "column_families.1", NULL);
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == TB_EVERIFY && strstr(tb_error_last(), "column_families (2 vs 1 entries)"),
       "compare: a column family left out is named");
    tb_manifest_free(b);
    b = NULL;
    tb_manifest_to_json(m, 0, &j);
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == 0, "compare: inside and outside copies agree");
    tb_manifest_free(a);
    tb_manifest_free(b);
    a = b = NULL;
    tb_manifest_to_json(enc, TB_MANIFEST_ARCHIVE | TB_MANIFEST_REDACT, &j);
    tb_manifest_parse(j, "a", &a);
    free(j);
    free(enc->key_ids);
    enc->key_ids = strdup("0123456789abcdef");
    enc->archive_size++;
    tb_manifest_to_json(enc, 0, &j);
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == 0, "compare: a redacted copy, rekeyed, agrees with the full one");
    tb_manifest_free(b);
    b = NULL;
    enc->last_seq++;
    tb_manifest_to_json(enc, 0, &j);
    tb_manifest_parse(j, "b", &b);
    free(j);
    ok(a && b && tb_manifest_compare(a, b) == TB_EVERIFY && strstr(tb_error_last(), "last_sequence"),
       "compare: a redacted copy with another sequence differs");
    tb_manifest_free(a);
    tb_manifest_free(b);
    tb_manifest_free(enc);
    tb_manifest_free(inc);
    tb_manifest_free(m);
}

/* 1.4: the hash in content_hash_v2, content_hash null with a note for 1.3 readers. */
static void hash_v2_tests(const struct tb_manifest *v1)
{
    struct tb_manifest *m = sample(), *back = NULL;
    char *j = NULL;
    m->content_hash_v2 = 1;
    ok(tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE, &j) == 0 && strstr(j, "\"format_version\": \"1.4\"") &&
           strstr(j, "\"content_hash\": null") && strstr(j, "\"content_hash_v2\": \"" SHA_A "\"") &&
           strstr(j, "\"content_hash_unavailable\": \"for tools of manifest format 1.3: ") &&
           tb_manifest_parse(j, "test", &back) == 0,
       "1.4: content_hash_v2, content_hash null and a note for 1.3 readers; parses");
    ok(back && back->content_hash_v2 && strcmp(back->content_hash, SHA_A) == 0 && !back->hash_unavailable,
       "read back as a v2 hash, available");
    ok(back && tb_manifest_compare(m, back) == 0, "compare: equal");
    ok(back && tb_manifest_compare(v1, back) == TB_EVERIFY, "compare: the same hex as v1 and as v2 differs");
    free(j);
    j = NULL;
    ok(tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE | TB_MANIFEST_REDACT, &j) == 0 && !strstr(j, "content_hash"),
       "a redacted copy leaves out the hash and the note");
    free(j);
    tb_manifest_free(back);
    refused(m, "content_hash_v2", "\"abc\"", "content_hash_v2: not a SHA-256");
    refused(m, "content_hash", "\"" SHA_B "\"", "content_hash: not null beside a content_hash_v2");
    refused(m, "content_hash_unavailable", NULL, "content_hash_unavailable: missing");
    refused(m, "format_version", "\"1.3\"", "content_hash_v2: in a manifest older than format 1.4");
    accepted(m, 0, "format_version", "\"1.5\"", "a newer minor with content_hash_v2 is read");
    tb_manifest_free(m);
}

int main(void)
{
    struct tb_manifest *m = sample(), *back = NULL, *other;
    char *json = NULL, *bad;
    ok(tb_manifest_to_json(m, 1, &json) == 0 && json, "serialises");
    ok(tb_manifest_parse(json, "test", &back) == 0, "parses its own output");
    ok(back && back->last_seq == 5000000000ull && back->nfiles == 2 && back->ncf == 2,
       "sequence, files and CFs survive");
    ok(back && strcmp(back->files[0].name, "db/000012.sst") == 0 && back->files[0].size == 1234 &&
           strcmp(back->files[0].sha256, SHA_A) == 0 && back->files[0].mode == 0644,
       "a file entry survives");
    ok(back && back->archive_size == 99 && strcmp(back->archive_sha256, SHA_B) == 0, "the archive entry survives");
    ok(back && tb_manifest_compare(m, back) == 0, "compare: equal");
    ok(tb_manifest_find(back, "db/CURRENT") && !tb_manifest_find(back, "db/nope"), "find");

    bad = strdup(json);
    memcpy(strstr(bad, "\"format_version\": \"") + 19, "2.0", 3);
    ok(parses(bad, TB_EVERIFY), "unknown major version refused");
    ok(strstr(tb_error_last(), "2.0") != NULL, "message names the version: %s", tb_error_last());
    free(bad);
    bad = strdup(json);
    memcpy(strstr(bad, "\"format_version\": \"") + 19, "1.7", 3);
    ok(parses(bad, 0), "a newer minor version is read");
    free(bad);
    ok(parses("{not json", TB_EVERIFY), "not JSON");
    ok(parses("{\"format_version\": \"1.0\"}", TB_EVERIFY), "missing fields");
    bad = strdup(json);
    memcpy(strstr(bad, SHA_A), "zz", 2);
    ok(parses(bad, TB_EVERIFY), "a malformed SHA-256 is refused");
    free(bad);

    other = sample();
    other->files[1].size = 17;
    ok(tb_manifest_compare(m, other) == TB_EVERIFY && strstr(tb_error_last(), "db/CURRENT"), "compare: size differs");
    tb_manifest_free(other);
    other = sample();
    memcpy(other->files[0].sha256, SHA_B, 65);
    ok(tb_manifest_compare(m, other) == TB_EVERIFY && strstr(tb_error_last(), "000012"), "compare: hash differs");
    tb_manifest_free(other);
    other = sample();
    tb_manifest_add_file(other, "db/extra", 1, SHA_A, 0644);
    ok(tb_manifest_compare(m, other) == TB_EVERIFY, "compare: extra file");
    tb_manifest_free(other);
    other = sample();
    other->last_seq++;
    ok(tb_manifest_compare(m, other) == TB_EVERIFY, "compare: sequence differs");
    tb_manifest_free(other);
    /* Incremental: parent and stored_in survive a round trip; compare sees stored_in. */
    other = sample();
    other->parent_path = strdup("../b1");
    memcpy(other->parent_sha256, SHA_B, 65);
    other->chain = 2;
    tb_manifest_add_file(other, "db/000013.sst", 99, SHA_A, 0644);
    tb_manifest_set_stored_in(other, SHA_B);
    {
        char *j2 = NULL;
        struct tb_manifest *b2 = NULL;
        const struct tb_manifest_file *f;
        ok(tb_manifest_to_json(other, 1, &j2) == 0 && tb_manifest_parse(j2, "test", &b2) == 0,
           "incremental round trip");
        f = b2 ? tb_manifest_find(b2, "db/000013.sst") : NULL;
        ok(f && f->stored_in && strcmp(f->stored_in, SHA_B) == 0, "stored_in survives");
        ok(b2 && b2->parent_path && strcmp(b2->parent_path, "../b1") == 0 && strcmp(b2->parent_sha256, SHA_B) == 0 &&
               b2->chain == 2,
           "parent and chain survive");
        ok(b2 && tb_manifest_compare(other, b2) == 0, "compare: equal");
        if (b2) {
            free(b2->files[b2->nfiles - 1].stored_in);
            b2->files[b2->nfiles - 1].stored_in = NULL;
        }
        ok(b2 && tb_manifest_compare(other, b2) == TB_EVERIFY, "compare: stored here vs in a parent differs");
        tb_manifest_free(b2);
        free(j2);
        bad = NULL;
        ok(tb_manifest_to_json(other, 1, &bad) == 0 && (cut_after(bad, "\"stored_in\": \""), parses(bad, TB_EVERIFY)),
           "a malformed stored_in is refused");
        free(bad);
    }
    tb_manifest_free(other);

    /* 1.3: the write policy, and a content hash that could not be computed, with the reason. */
    other = sample();
    other->format_minor = 3;
    other->write_policy = strdup("write_unprepared");
    other->content_hash[0] = 0;
    other->hash_unavailable = strdup("merge operator X of column family default is not one the tools know");
    {
        char *j3 = NULL, *p;
        struct tb_manifest *b3 = NULL;
        ok(tb_manifest_to_json(other, 1, &j3) == 0 && strstr(j3, "\"content_hash\": null") &&
               tb_manifest_parse(j3, "test", &b3) == 0,
           "1.3 round trip without a content hash");
        ok(b3 && b3->write_policy && strcmp(b3->write_policy, "write_unprepared") == 0, "write_policy survives");
        ok(b3 && b3->hash_unavailable && strstr(b3->hash_unavailable, "merge operator X") && !b3->content_hash[0],
           "the reason the hash is unavailable survives");
        ok(b3 && tb_manifest_compare(other, b3) == 0, "compare: equal without a hash");
        ok(b3 && tb_manifest_compare(m, b3) == TB_EVERIFY, "compare: a hash vs none differs");
        tb_manifest_free(b3);
        p = j3 ? strstr(j3, "\"content_hash_unavailable\"") : NULL;
        if (p)
            memcpy(p, "\"content_hash_unavailablX\"", 26);
        ok(p && parses(j3, TB_EVERIFY), "a null content hash without a reason is refused");
        p = j3 ? strstr(j3, "\"format_version\": \"1.3\"") : NULL;
        if (p) {
            p[strlen("\"format_version\": \"1.")] = '2';
            p = strstr(j3, "content_hash_unavailablX");
            memcpy(p, "content_hash_unavailable", 24);
        }
        ok(p && parses(j3, TB_EVERIFY), "a 1.2 manifest must have a content hash");
        free(j3);
        j3 = NULL;
        free(other->write_policy);
        other->write_policy = NULL;
        ok(tb_manifest_to_json(other, 1, &j3) == 0 && (p = strchr(j3, '{')) != NULL, "serialises without a policy");
        if (p) {
            char *j4 = NULL;
            ok(asprintf(&j4, "{\"write_policy\": 7, %s", p + 1) > 0 && parses(j4, TB_EVERIFY),
               "a write_policy that is not a string is refused");
            free(j4);
        }
        free(j3);
    }
    tb_manifest_free(other);
    hash_v2_tests(m);
    schema_tests();
    tb_manifest_free(NULL);
    tb_manifest_free(back);
    tb_manifest_free(m);
    free(json);
    return done_testing();
}
