/* fuzz target state: the WAL archive's state.tsv parser, through tb_wal_archive_check of an
 * archive that has nothing else (no index, segments or cf.tsv). */
#include "archiver.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t records, first, next;
    fuzz_put("state.tsv", data, size);
    tb_wal_archive_check(fuzz_tmpdir(), NULL, &records, &first, &next);
    fuzz_assert(records == 0, "records in an archive without segments");
    tb_error_clear();
    return 0;
}
