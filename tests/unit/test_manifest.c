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
    memcpy(strstr(bad, "\"1.0\""), "\"2.0\"", 5);
    ok(parses(bad, TB_EVERIFY), "unknown major version refused");
    ok(strstr(tb_error_last(), "2.0") != NULL, "message names the version: %s", tb_error_last());
    free(bad);
    bad = strdup(json);
    memcpy(strstr(bad, "\"1.0\""), "\"1.7\"", 5);
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
    tb_manifest_free(NULL);
    tb_manifest_free(back);
    tb_manifest_free(m);
    free(json);
    return done_testing();
}
