/* fuzz target restore: the input as a backup stream given to tb_restore_run --verify-only
 * (the whole verification: members, manifest, checksums, and for a stream that passes them,
 * the temporary restore under our own scratch directory, opened and hashed); encrypted
 * streams with the corpus's key (fuzz.h). */
#include "fuzz.h"
#include "restore.h"
#include "stream.h"

#include <dirent.h>

/* Whether dir holds nothing but the key file. */
static int scratch_clean(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int clean = d != NULL;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "fuzz.key"))
            clean = 0;
    if (d)
        closedir(d);
    return clean;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_restore_opts o = { 0 };
    struct tb_manifest *m = NULL;
    tb_stream *in = NULL;
    if (tb_stream_mem_reader(&in, data, size) < 0)
        abort();
    o.in = in;
    o.verify_only = 1;
    o.scratch = fuzz_tmpdir();
    o.keys = fuzz_keyring();
    tb_restore_run(&o, &m);
    /* Verification leaves nothing behind in scratch. */
    fuzz_assert(scratch_clean(o.scratch), "verification left files in %s", o.scratch);
    tb_manifest_free(m);
    tb_stream_free(in);
    tb_error_clear();
    return 0;
}
