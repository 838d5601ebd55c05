/* test_archive: tar members through tb_tar_* (plain and zstd), damage and unsafe names. */
#include "tap.h"
#include "tar.h"
#include "error.h"
#include "stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], file[512];

/* Writes an archive with a dir, a file member and a bytes member; returns the bytes. */
static void *make_archive(int compress, size_t *len, char sha[65])
{
    tb_stream *mw, *top;
    tb_tar_writer *w;
    uint64_t size;
    const void *data;
    void *copy;
    tb_stream_mem_writer(&mw);
    top = mw;
    if (compress)
        tb_stream_zstd_writer(&top, mw, 3, 0);
    tb_stream *keep;
    tb_stream_borrow(&keep, top);
    tb_tar_writer_new(&w, keep);
    tb_tar_add_dir(w, "db/", 0755);
    tb_tar_add_file(w, "db/000001.sst", file, &size, sha, NULL);
    tb_tar_add_bytes(w, "MANIFEST.json", "{}", 2, 0644);
    tb_tar_writer_close(w);
    tb_tar_writer_free(w);
    tb_stream_close(top);
    data = tb_stream_mem_data(mw, len);
    copy = malloc(*len);
    memcpy(copy, data, *len);
    tb_stream_free(top);
    return copy;
}

/* Reads every member; returns 0 on success with a summary, else the error code. */
static int read_archive(const void *buf, size_t len, int compress, char *summary, size_t slen, char sha[65])
{
    tb_stream *mr, *top, *es, *h, *null;
    tb_tar_reader *r;
    struct tb_tar_entry e;
    int rc, more;
    summary[0] = '\0';
    tb_stream_mem_reader(&mr, buf, len);
    top = mr;
    if (compress)
        tb_stream_zstd_reader(&top, mr);
    if ((rc = tb_tar_reader_new(&r, top)) < 0)
        return rc;
    while ((more = tb_tar_next(r, &e)) == 1) {
        size_t l = strlen(summary);
        snprintf(summary + l, slen - l, "%s%s:%llu ", e.name, e.is_dir ? "(dir)" : "", (unsigned long long)e.size);
        if (!e.is_dir && strcmp(e.name, "db/000001.sst") == 0) {
            tb_tar_entry_stream(r, &es);
            tb_stream_sha256(&h, es);
            tb_stream_null_writer(&null);
            rc = tb_stream_copy(null, h, NULL);
            tb_stream_sha256_hex(h, sha);
            tb_stream_free(h);
            tb_stream_free(null);
            if (rc < 0)
                break;
        }
    }
    if (more < 0)
        rc = more;
    tb_tar_reader_free(r);
    return rc;
}

int main(void)
{
    char sha_w[65], sha_r[65], summary[512], want[512];
    struct stat st;
    size_t len;
    unsigned char *buf;
    FILE *f;
    snprintf(dir, sizeof dir, "%s/test_archive.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(file, sizeof file, "%s/data", dir);
    f = fopen(file, "w");
    for (int i = 0; i < 100000; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    stat(file, &st);

    for (int z = 0; z <= 1; z++) {
        buf = make_archive(z, &len, sha_w);
        ok(len > 0, "%s archive written (%zu bytes)", z ? "zstd" : "plain", len);
        ok(read_archive(buf, len, z, summary, sizeof summary, sha_r) == 0, "read back");
        snprintf(want, sizeof want, "db/(dir):0 db/000001.sst:%lld MANIFEST.json:2 ", (long long)st.st_size);
        is_str(summary, want, "members, kinds and sizes in order");
        is_str(sha_r, sha_w, "member SHA-256 on reading equals the one taken on writing");
        ok(read_archive(buf, len / 2, z, summary, sizeof summary, sha_r) < 0, "a truncated archive is an error, not success");
        free(buf);
    }

    /* What follows the end-of-archive blocks: zero padding only; the blocks themselves must
     * be there (the writer's archive ends in exactly two zero blocks). */
    buf = make_archive(0, &len, sha_w);
    {
        unsigned char *more = calloc(1, 2 * len + 20480);
        memcpy(more, buf, len);
        ok(read_archive(more, len + 20480, 0, summary, sizeof summary, sha_r) == 0, "zero padding after the end blocks is accepted");
        more[len + 10000] = 'x';
        ok(read_archive(more, len + 20480, 0, summary, sizeof summary, sha_r) == TB_EVERIFY &&
           strstr(tb_error_last(), "after the end"), "a byte after the end blocks is refused: %s", tb_error_last());
        memcpy(more + len, buf, len);
        ok(read_archive(more, 2 * len, 0, summary, sizeof summary, sha_r) == TB_EVERIFY,
           "a second archive appended is refused");
        ok(read_archive(buf, len - 1024, 0, summary, sizeof summary, sha_r) == TB_EVERIFY &&
           strstr(tb_error_last(), "end-of-archive"), "no end blocks: refused as truncated");
        ok(read_archive(buf, len - 512, 0, summary, sizeof summary, sha_r) == TB_EVERIFY,
           "one end block of two: refused");
        free(more);
    }
    free(buf);

    /* A tar with "../escape" and one with an absolute name, made with libarchive directly. */
    const char *names[] = { "../escape", "/etc/passwd", "db/../../x" };
    for (int i = 0; i < 3; i++) {
        struct archive *a = archive_write_new();
        struct archive_entry *e = archive_entry_new();
        size_t used = 0, cap = 1 << 16;
        unsigned char *mem = malloc(cap);
        archive_write_set_format_pax_restricted(a);
        archive_write_open_memory(a, mem, cap, &used);
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 1);
        archive_write_header(a, e);
        archive_write_data(a, "x", 1);
        archive_write_close(a);
        archive_write_free(a);
        archive_entry_free(e);
        ok(read_archive(mem, used, 0, summary, sizeof summary, sha_r) == TB_EVERIFY && strstr(tb_error_last(), "unsafe"),
           "member '%s' refused as unsafe", names[i]);
        free(mem);
    }
    snprintf(summary, sizeof summary, "rm -rf '%s'", dir);
    if (system(summary) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
