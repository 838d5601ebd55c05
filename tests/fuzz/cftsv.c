/* fuzz target cftsv: tb_cf_map_load on the input as a WAL archive's cf.tsv. */
#include "archiver.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_cf_name *v = NULL;
    size_t n = 0;
    fuzz_put("cf.tsv", data, size);
    if (tb_cf_map_load(fuzz_tmpdir(), &v, &n) == 0)
        for (size_t i = 0; i < n; i++)
            fuzz_assert(v[i].name && v[i].name[0] && !strchr(v[i].name, '\t') && !strchr(v[i].name, '\n'),
                        "column family %zu has a name it should not", i);
    tb_cf_map_free(v, n);
    tb_error_clear();
    return 0;
}
