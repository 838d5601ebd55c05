/* test_manifest: JSON round trip, version checks, malformed input, comparison. */
#include "tap.h"
#include "error.h"
#include "manifest.h"

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    struct tb_manifest *m = sample(), *back = NULL, *other;
    char *json = NULL, *bad;
    ok(tb_manifest_to_json(m, 1, &json) == 0 && json, "serialises");
    ok(tb_manifest_parse(json, "test", &back) == 0, "parses its own output");
    ok(back && back->last_seq == 5000000000ull && back->nfiles == 2 && back->ncf == 2, "sequence, files and CFs survive");
    ok(back && strcmp(back->files[0].name, "db/000012.sst") == 0 && back->files[0].size == 1234 &&
       strcmp(back->files[0].sha256, SHA_A) == 0 && back->files[0].mode == 0644, "a file entry survives");
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
        ok(tb_manifest_to_json(other, 1, &j2) == 0 && tb_manifest_parse(j2, "test", &b2) == 0, "incremental round trip");
        f = b2 ? tb_manifest_find(b2, "db/000013.sst") : NULL;
        ok(f && f->stored_in && strcmp(f->stored_in, SHA_B) == 0, "stored_in survives");
        ok(b2 && b2->parent_path && strcmp(b2->parent_path, "../b1") == 0 && strcmp(b2->parent_sha256, SHA_B) == 0 &&
               b2->chain == 2, "parent and chain survive");
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
    other->write_policy = strdup("write_unprepared");
    other->content_hash[0] = 0;
    other->hash_unavailable = strdup("merge operator X of column family default is not one the tools know");
    {
        char *j3 = NULL, *p;
        struct tb_manifest *b3 = NULL;
        ok(tb_manifest_to_json(other, 1, &j3) == 0 && strstr(j3, "\"content_hash\": null") &&
               tb_manifest_parse(j3, "test", &b3) == 0, "1.3 round trip without a content hash");
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
    tb_manifest_free(NULL);
    tb_manifest_free(back);
    tb_manifest_free(m);
    free(json);
    return done_testing();
}
