/* fuzz target segindex: tb_seg_index_parse (index.tsv) on the input; what it accepts must
 * find each of its segments and read back the same from its own lines. */
#include "fuzz.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size), *back = NULL;
    struct tb_seg_info *v = NULL, *w = NULL;
    size_t n = 0, nw = 0, len = 0;
    uint64_t from = 0, wfrom = 0;
    if (tb_seg_index_parse(text, size, "index.tsv", &v, &n, &from) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        fuzz_assert(tb_seg_index_find(v, n, v[i].first_seq, v[i].name) == i, "segment %zu (%s) not found", i,
                    v[i].name);
    /* Written back line by line (as the archiver writes the index), it reads the same. */
    back = malloc(64 + n * 256);
    fuzz_assert(back != NULL, "out of memory");
    if (from)
        len += (size_t)sprintf(back, "%s%llu\n", TB_SEG_INDEX_FROM, (unsigned long long)from);
    for (size_t i = 0; i < n; i++) {
        char *line = tb_seg_index_line(&v[i]);
        fuzz_assert(line && strlen(line) < 256, "index line %zu", i);
        memcpy(back + len, line, strlen(line));
        len += strlen(line);
        free(line);
    }
    fuzz_assert(tb_seg_index_parse(back, len, "index.tsv (written back)", &w, &nw, &wfrom) == 0 && nw == n &&
                wfrom == from, "the written-back index differs");
    for (size_t i = 0; i < n; i++)
        fuzz_assert(w[i].first_seq == v[i].first_seq && w[i].next_seq == v[i].next_seq &&
                    w[i].first_ts == v[i].first_ts && w[i].last_ts == v[i].last_ts && w[i].size == v[i].size &&
                    strcmp(w[i].sha256, v[i].sha256) == 0 && strcmp(w[i].name, v[i].name) == 0,
                    "segment %zu differs when written back", i);
cleanup:
    free(v);
    free(w);
    free(back);
    free(text);
    tb_error_clear();
    return 0;
}
