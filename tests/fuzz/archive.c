/* fuzz target archive: the input as a backup stream (tar, or zstd-compressed tar) read
 * through tb_tar_reader as restore reads it: every member's header and data, half of
 * them through tb_tar_read and half through a member stream. */
#include "tar.h"
#include "fuzz.h"
#include "stream.h"

/* What a restore may create from a member name: relative, components neither empty nor
 * "." nor "..", no control bytes; a directory's may end in '/'. */
static int name_safe(const char *name, int is_dir)
{
    size_t len = strlen(name);
    if (!len || len > TB_ARCHIVE_NAME_MAX || name[0] == '/')
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n;
        if (*p == '/' && !*++p && !is_dir)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[4096];
    static const unsigned char zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
    tb_stream *top = NULL;
    tb_tar_reader *r = NULL;
    struct tb_tar_entry e;
    unsigned members = 0;
    int more;
    if (tb_stream_mem_reader(&top, data, size) < 0)
        goto cleanup;
    if (size >= 4 && memcmp(data, zstd_magic, 4) == 0) {
        tb_stream *z;
        if (tb_stream_zstd_reader(&z, top) < 0)
            goto cleanup;
        top = z;
    }
    more = tb_tar_reader_new(&r, top);
    top = NULL;
    if (more < 0)
        goto cleanup;
    while ((more = tb_tar_next(r, &e)) == 1) {
        uint64_t got = 0;
        size_t n;
        int rc;
        fuzz_assert(name_safe(e.name, e.is_dir), "a member name the reader should refuse: '%s'", e.name);
        if (e.is_dir)
            continue;
        if (members++ % 2 == 0) {
            while ((rc = tb_tar_read(r, buf, sizeof buf, &n)) == 0 && n)
                got += n;
        } else {
            tb_stream *s;
            if ((rc = tb_tar_entry_stream(r, &s)) == 0) {
                while ((rc = tb_stream_read(s, buf, sizeof buf, &n)) == 0 && n)
                    got += n;
                tb_stream_free(s);
            }
        }
        if (rc < 0)
            break;
        fuzz_assert(got == e.size, "member %s: %llu bytes read, header says %llu", e.name,
                    (unsigned long long)got, (unsigned long long)e.size);
    }
cleanup:
    tb_tar_reader_free(r);
    tb_stream_free(top);
    tb_error_clear();
    return 0;
}
