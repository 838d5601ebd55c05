/* test_fs: crash-safe publishing and the directory helpers. */
#include "tap.h"
#include "error.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* tb_fs_write_all: every byte, through a pipe that takes them in pieces; errno on failure;
 * tb_error_io names a full disk TB_ENOSPC. */
static void test_write_all(void)
{
    enum { N = 1 << 20 };
    char *buf = malloc(N), *back = malloc(N);
    int fds[2], status = -1;
    size_t got = 0;
    pid_t pid;
    for (size_t i = 0; i < N; i++)
        buf[i] = (char)(i * 7);
    if (pipe(fds) < 0 || (pid = fork()) < 0)
        return;
    if (pid == 0) {
        close(fds[0]);
        _exit(tb_fs_write_all(fds[1], buf, N) == 0 ? 0 : 1);
    }
    close(fds[1]);
    for (ssize_t r; got < N && (r = read(fds[0], back + got, N - got)) > 0;)
        got += (size_t)r;
    close(fds[0]);
    waitpid(pid, &status, 0);
    ok(got == N && memcmp(buf, back, N) == 0 && status == 0, "tb_fs_write_all writes every byte through a pipe (%zu)",
       got);
    ok(tb_fs_write_all(-1, buf, 1) == -1 && errno == EBADF, "a failed write is -1 with errno");
    is_int(tb_error_io(ENOSPC, "cannot write %s", "x"), TB_ENOSPC, "tb_error_io: a full disk is TB_ENOSPC");
    is_str(tb_error_last(), "cannot write x: No space left on device", "with the message and strerror");
    is_int(tb_error_io(EIO, "fsync failed (%s)", "x"), TB_EIO, "anything else is TB_EIO");
    free(buf);
    free(back);
}

int main(void)
{
    char root[256], *p, *q, *data = NULL, *tmp = NULL;
    size_t len;
    uint64_t n;
    int empty;
    snprintf(root, sizeof root, "%s/test_fs.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    p = tb_fs_join(root, "a/b/c");
    ok(tb_fs_mkdir_p(p, 0755) == 0 && tb_fs_exists(p), "mkdir -p");
    free(p);
    p = tb_fs_join(root, "file");
    ok(tb_fs_write_atomic(p, "hello", 5, 0600) == 0, "write_atomic");
    ok(tb_fs_read_file(p, &data, &len) == 0 && len == 5 && strcmp(data, "hello") == 0, "reads back");
    free(data);
    ok(tb_fs_write_atomic(p, "bye", 3, 0600) == 0 && tb_fs_read_file(p, &data, &len) == 0 && len == 3, "replaces atomically");
    free(data);
    ok(tb_fs_is_empty_dir(root, &empty) == 0 && !empty, "non-empty directory");
    q = tb_fs_join(root, "a/b/c");
    ok(tb_fs_is_empty_dir(q, &empty) == 0 && empty, "empty directory");
    free(q);
    q = tb_fs_join(root, "nothing");
    ok(tb_fs_is_empty_dir(q, &empty) == 0 && empty, "a missing directory counts as empty");
    ok(tb_fs_read_file(q, &data, &len) == TB_ENOENT, "reading a missing file is TB_ENOENT");

    ok(tb_fs_temp_sibling(p, &tmp) == 0 && strncmp(tmp, root, strlen(root)) == 0 && strstr(tmp, "/.file.tmp-"),
       "temporary name beside the path: %s", tmp);
    ok(tb_fs_write_atomic(tmp, "new", 3, 0644) == 0, "a file under the temporary name");
    ok(tb_fs_publish(tmp, p) < 0, "publish refuses to replace an existing file");
    ok(tb_fs_read_file(p, &data, &len) == 0 && len == 3 && memcmp(data, "bye", 3) == 0, "the existing file is intact");
    free(data);
    ok(tb_fs_exists(tmp), "and so is the temporary");
    ok(tb_fs_publish(tmp, q) == 0 && tb_fs_exists(q) && !tb_fs_exists(tmp), "publish to a free name renames");
    free(tmp);

    char *d = tb_fs_dirname("/var/lib/themisdb/rocksdb/");
    is_str(d, "/var/lib/themisdb", "dirname ignores a trailing slash");
    free(d);
    d = tb_fs_dirname("rocksdb");
    is_str(d, ".", "dirname of a bare name");
    free(d);
    d = tb_fs_dirname("/x");
    is_str(d, "/", "dirname of a top-level path");
    free(d);
    ok(tb_fs_temp_sibling("/var/lib/themisdb/rocksdb/", &tmp) == 0 && strncmp(tmp, "/var/lib/themisdb/.rocksdb.tmp-", 31) == 0,
       "temporary sibling of a path with a trailing slash is outside it: %s", tmp);
    free(tmp);

    ok(tb_fs_tree_size(root, &n) == 0 && n == 3 + 3, "tree size counts regular files (%llu)", (unsigned long long)n);
    ok(tb_fs_free_bytes(root, &n) == 0 && n > 0, "free bytes");
    ok(tb_fs_fsync_tree(root) == 0, "fsync of a tree");
    ok(tb_fs_rm_rf(root) == 0 && !tb_fs_exists(root), "rm -rf");
    ok(tb_fs_rm_rf(root) == 0, "rm -rf of a missing path is fine");
    free(p);
    free(q);
    test_write_all();
    return done_testing();
}
