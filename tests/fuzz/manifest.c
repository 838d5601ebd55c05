/* fuzz target manifest: tb_manifest_parse on the input; what it accepts must compare equal
 * to itself and survive a round trip through tb_manifest_to_json. */
#include "fuzz.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size), *json = NULL;
    struct tb_manifest *m = NULL, *again = NULL;
    int flags, rc;
    if (tb_manifest_parse(text, "fuzz", &m) < 0)
        goto cleanup;
    fuzz_assert(tb_manifest_compare(m, m) == 0, "a parsed manifest differs from itself");
    /* What parse accepted, written back, parses to the same manifest. */
    flags = (m->archive_sha256[0] ? TB_MANIFEST_ARCHIVE : 0) | (m->redacted ? TB_MANIFEST_REDACT : 0);
    fuzz_assert(tb_manifest_to_json(m, flags, &json) == 0, "cannot write back a parsed manifest");
    rc = tb_manifest_parse(json, "fuzz (written back)", &again);
    fuzz_assert(rc == 0, "a written-back manifest does not parse:\n%s", json);
    fuzz_assert(tb_manifest_compare(m, again) == 0 && tb_manifest_compare(again, m) == 0,
                "a written-back manifest differs:\n%s", json);
    fuzz_assert(again->archive_size == m->archive_size && strcmp(again->archive_sha256, m->archive_sha256) == 0,
                "a written-back manifest's archive differs");
    tb_manifest_find(m, m->nfiles ? m->files[m->nfiles - 1].name : "db/CURRENT");
cleanup:
    tb_manifest_free(again);
    tb_manifest_free(m);
    free(json);
    free(text);
    tb_error_clear();
    return 0;
}
