/* fuzz target segment: the input as a WAL archive segment (zstd frames of CRC'd records,
 * maybe sealed with the corpus's key) read through tb_seg_reader, both as a published
 * segment and as the partial one (complete frames only), every record's WriteBatch walked. */
#include "batch.h"
#include "fuzz.h"
#include "segment.h"

static void read_segment(const char *path)
{
    tb_seg_reader *rd = NULL;
    struct tb_seg_record r;
    if (tb_seg_reader_open(&rd, path, fuzz_keyring()) < 0)
        return;
    while (tb_seg_reader_next(rd, &r) == 1) {
        struct tb_wb_iter it;
        struct tb_wb_entry e;
        if (tb_wb_init(&it, r.data, r.len) == 0)
            while (tb_wb_next(&it, &e) == 1)
                ;
    }
    tb_seg_reader_free(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_segment(fuzz_put("00000000000000000001-00000000000000000009.wal.zst", data, size));
    read_segment(fuzz_put(TB_SEG_PARTIAL, data, size));
    tb_error_clear();
    return 0;
}
