/* test_walship: a closed segment shipped as tar members (segment, index.tsv, cf.tsv; the
 * segment file removed; a segment changed since the index is refused), and a pusher that
 * keeps archiving through failed pushes, telling each and catching up. */
#include "tap.h"
#include "walship.h"
#include "error.h"
#include "fs.h"
#include "stream.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[256];

static void put(const char *dir, const char *name, const char *text)
{
    char *p = tb_fs_join(dir, name);
    FILE *f = p ? fopen(p, "w") : NULL;
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

static void hex_sha(const char *text, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The member names of the tar file at path, space-separated. */
static void members(const char *path, char *out, size_t len)
{
    tb_stream *in = NULL;
    tb_tar_reader *r = NULL;
    struct tb_tar_entry e;
    out[0] = 0;
    if (tb_stream_file(&in, path, "r") < 0 || tb_tar_reader_new(&r, in) < 0)
        return;
    while (tb_tar_next(r, &e) == 1)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", e.name);
    tb_tar_reader_free(r);
}

static void test_tar(void)
{
    struct tb_seg_info s = { .first_seq = 1, .next_seq = 5 };
    struct tb_ship_tar t = { .dir = root };
    tb_stream *out = NULL;
    char *seg = tb_fs_join(root, "000001.seg"), *tar = tb_fs_join(root, "out.tar"), names[256];
    put(root, "000001.seg", "segment bytes");
    put(root, "index.tsv", "# index\n");
    snprintf(s.name, sizeof s.name, "000001.seg");
    hex_sha("segment bytes", s.sha256);
    ok(tb_stream_file(&out, tar, "w+") == 0 && tb_tar_writer_live(&t.w, out) == 0, "a tar writer");
    is_int(tb_ship_tar(&t, seg, &s), 0, "a segment shipped");
    is_int(tb_tar_writer_close(t.w), 0, "the tar closes");
    tb_tar_writer_free(t.w);
    members(tar, names, sizeof names);
    is_str(names, "000001.seg index.tsv", "the segment, then the index (no cf.tsv yet)");
    ok(access(seg, F_OK) != 0, "the shipped segment file is removed");

    put(root, "000001.seg", "other bytes");
    put(root, "cf.tsv", "1\tdefault\n");
    out = NULL;
    ok(tb_stream_file(&out, tar, "w+") == 0 && tb_tar_writer_live(&t.w, out) == 0, "another tar writer");
    is_int(tb_ship_tar(&t, seg, &s), TB_EVERIFY, "a segment that changed since the index is refused");
    ok(strstr(tb_error_last(), "changed while it was streamed") != NULL, "saying so: %s", tb_error_last());
    ok(access(seg, F_OK) == 0, "and it is kept");
    tb_tar_writer_free(t.w);
    free(seg);
    free(tar);
}

static int told_ok, told_err, told_n;

static void told(void *arg, const char *name, unsigned n, const char *err)
{
    (void)arg;
    (void)name;
    if (err)
        told_err++;
    else
        told_ok++, told_n += (int)n;
}

/* A directory cannot take a push (only s3:// can): every push fails, and archiving goes on. */
static void test_push_failing(void)
{
    struct tb_repo_opts ro = { .scratch = root };
    struct tb_ship_push p = { .dir = root, .told = told };
    struct tb_seg_info s = { .name = "000002.seg" };
    ok(tb_repo_open(&p.repo, root, &ro) == 0, "a repository that refuses pushes");
    is_int(tb_ship_push(&p, NULL, &s), 0, "a failed push does not stop the archiver");
    ok(p.behind == 1 && told_err == 1 && told_ok == 0, "it is told, and the pusher is behind");
    is_int(tb_ship_push(&p, NULL, &s), 0, "the next segment tries a catch-up");
    ok(p.behind == 1 && told_err == 2, "which fails and is told again");
    ok(tb_ship_push_catch_up(&p) < 0 && p.behind == 1, "a catch-up at the end reports the failure");
    tb_interrupted = 1;
    is_int(tb_ship_push(&p, NULL, &s), 0, "a push cut by a stop signal");
    is_int(told_err, 2, "is not told as a failure");
    tb_interrupted = 0;
    tb_repo_free(p.repo);
}

int main(void)
{
    snprintf(root, sizeof root, "%s/test_walship.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    test_tar();
    test_push_failing();
    tb_fs_rm_rf(root);
    return done_testing();
}
