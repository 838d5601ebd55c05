/* fs: directory helpers and crash-safe publishing. */
#include "fs.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

char *tb_fs_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    if (la && a[la - 1] != '/')
        p[la++] = '/';
    memcpy(p + la, b, lb + 1);
    return p;
}

/* Length of path without trailing slashes ("/" stays "/"). */
static size_t trimmed_len(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

/* The last component of path, ignoring trailing slashes (points into path; len out). */
static const char *base_of(const char *path, size_t *len)
{
    size_t n = trimmed_len(path);
    const char *b = path + n;
    while (b > path && b[-1] != '/')
        b--;
    *len = (size_t)(path + n - b);
    return b;
}

char *tb_fs_dirname(const char *path)
{
    size_t i = trimmed_len(path);
    while (i > 0 && path[i - 1] != '/')
        i--;
    if (i == 0)
        return strdup(".");
    while (i > 1 && path[i - 2] == '/')
        i--;
    if (i == 1)
        return strdup("/");
    return strndup(path, i - 1);
}

int tb_fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int tb_fs_exists_in(const char *dir, const char *name)
{
    char *p = tb_fs_join(dir, name);
    int e = p && tb_fs_exists(p);
    free(p);
    return e;
}

int tb_fs_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return tb_error_set(TB_EIO, "path too long (%s)", path);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return tb_error_errno(TB_EIO, errno, "cannot create directory %s", buf);
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return tb_error_errno(TB_EIO, errno, "cannot create directory %s", buf);
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)f;
    if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT)
        return tb_error_errno(TB_EIO, errno, "cannot remove %s", p);
    return 0;
}

int tb_fs_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : tb_error_errno(TB_EIO, errno, "cannot stat %s", path);
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return TB_EIO;
    return 0;
}

int tb_fs_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return tb_error_errno(TB_EIO, errno, "cannot open %s for fsync", path);
    if (fsync(fd) < 0)
        rc = tb_error_errno(TB_EIO, errno, "fsync failed (%s)", path);
    close(fd);
    return rc;
}

int tb_fs_fsync_parent(const char *path)
{
    char *dir = tb_fs_dirname(path);
    int rc;
    if (!dir)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_fs_fsync_path(dir);
    free(dir);
    return rc;
}

static int sync_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)f;
    if (flag == FTW_F || flag == FTW_DP)
        return tb_fs_fsync_path(p) < 0 ? -1 : 0;
    return 0;
}

int tb_fs_fsync_tree(const char *root)
{
    if (nftw(root, sync_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return TB_EIO;
    return 0;
}

int tb_fs_publish(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
        /* Some filesystems lack RENAME_NOREPLACE; fall back to a check, then rename. */
        if (errno != EINVAL && errno != ENOSYS)
            return tb_error_errno(TB_EIO, errno, "cannot rename %s to %s", from, to);
        if (tb_fs_exists(to))
            return tb_error_set(TB_EIO, "cannot rename %s to %s: target exists", from, to);
        if (rename(from, to) < 0)
            return tb_error_errno(TB_EIO, errno, "cannot rename %s to %s", from, to);
    }
    return tb_fs_fsync_parent(to);
}

int tb_fs_temp_sibling(const char *path, char **out)
{
    static int counter;
    char *dir = tb_fs_dirname(path);
    size_t blen, len;
    const char *base = base_of(path, &blen);
    int n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    if (!dir)
        return tb_error_set(TB_EIO, "out of memory");
    len = strlen(dir) + blen + 64;
    *out = malloc(len);
    if (*out)
        snprintf(*out, len, "%s/.%.*s.tmp-%d-%d", dir, (int)blen, base, (int)getpid(), n);
    free(dir);
    return *out ? 0 : tb_error_set(TB_EIO, "out of memory");
}

int tb_fs_remove_stale_temps(const char *path)
{
    char *dir = tb_fs_dirname(path), prefix[512];
    size_t blen;
    const char *base = base_of(path, &blen);
    struct dirent *e;
    DIR *d;
    int rc = 0;
    if (!dir)
        return tb_error_set(TB_EIO, "out of memory");
    snprintf(prefix, sizeof prefix, ".%.*s.tmp-", (int)blen, base);
    if (!(d = opendir(dir))) {
        free(dir);
        return 0; /* nothing to clean where we cannot look */
    }
    while ((e = readdir(d)) != NULL) {
        size_t pl = strlen(prefix);
        char *end, *victim;
        long pid;
        if (strncmp(e->d_name, prefix, pl) != 0)
            continue;
        pid = strtol(e->d_name + pl, &end, 10);
        if (end == e->d_name + pl || *end != '-' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        victim = tb_fs_join(dir, e->d_name);
        if (victim && rc == 0)
            rc = tb_fs_rm_rf(victim);
        free(victim);
    }
    closedir(d);
    free(dir);
    return rc;
}

int tb_fs_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int tb_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char *tmp = NULL;
    int fd = -1, rc;
    if ((rc = tb_fs_temp_sibling(path, &tmp)) < 0)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot create %s", tmp);
        goto cleanup;
    }
    if (tb_fs_write_all(fd, data, len) < 0) {
        rc = tb_error_io(errno, "cannot write %s", path);
        goto cleanup;
    }
    if (fsync(fd) < 0) {
        rc = tb_error_io(errno, "fsync failed (%s)", path);
        goto cleanup;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot rename %s to %s", tmp, path);
        goto cleanup;
    }
    rc = tb_fs_fsync_parent(path);
cleanup:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

int tb_fs_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    if (!f)
        return tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot read %s", path);
    for (;;) {
        size_t k;
        if (cap - n < 4096) {
            char *p = realloc(buf, cap ? cap * 2 : 8192);
            if (!p) {
                rc = tb_error_set(TB_EIO, "out of memory reading %s", path);
                goto cleanup;
            }
            buf = p;
            cap = cap ? cap * 2 : 8192;
        }
        k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    if (ferror(f)) {
        rc = tb_error_set(TB_EIO, "cannot read %s", path);
        goto cleanup;
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    buf = NULL;
cleanup:
    free(buf);
    fclose(f);
    return rc;
}

int tb_fs_free_bytes(const char *path, uint64_t *bytes)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot read free space of %s", path);
    *bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}

int tb_fs_is_empty_dir(const char *path, int *empty)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) {
        if (errno == ENOENT) {
            *empty = 1;
            return 0;
        }
        return tb_error_errno(TB_EIO, errno, "cannot open directory %s", path);
    }
    *empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            *empty = 0;
            break;
        }
    closedir(d);
    return 0;
}

static _Thread_local uint64_t tree_bytes;

static int size_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)p, (void)f;
    if (flag == FTW_F && S_ISREG(st->st_mode))
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

int tb_fs_tree_size(const char *root, uint64_t *bytes)
{
    tree_bytes = 0;
    if (nftw(root, size_one, 32, FTW_PHYS) != 0)
        return tb_error_errno(TB_EIO, errno, "cannot walk %s", root);
    *bytes = tree_bytes;
    return 0;
}
