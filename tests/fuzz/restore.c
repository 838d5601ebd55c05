/* fuzz target restore: the input as a backup stream given to tb_restore_run --verify-only
 * (the whole verification: members, manifest, checksums, and for a stream that passes them,
 * the temporary restore under our own scratch directory, opened and hashed). */
#include "fuzz.h"
#include "restore.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_restore_opts o = { 0 };
    struct tb_manifest *m = NULL;
    tb_stream *in = NULL;
    int empty = 0;
    if (tb_stream_mem_reader(&in, data, size) < 0)
        abort();
    o.in = in;
    o.verify_only = 1;
    o.scratch = fuzz_tmpdir();
    tb_restore_run(&o, &m);
    /* Verification leaves nothing behind in scratch. */
    fuzz_assert(tb_fs_is_empty_dir(o.scratch, &empty) == 0 && empty, "verification left files in %s", o.scratch);
    tb_manifest_free(m);
    tb_stream_free(in);
    tb_error_clear();
    return 0;
}
