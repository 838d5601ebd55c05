/* fs: directory helpers and crash-safe publishing (temp name, fsync, rename, fsync dir). */
#ifndef TB_FS_H
#define TB_FS_H

#include <stdint.h>
#include <sys/types.h>

int tb_fs_mkdir_p(const char *path, mode_t mode);
/* Removes a tree; a missing path is fine. */
int tb_fs_rm_rf(const char *path);
int tb_fs_fsync_path(const char *path);
/* fsyncs the directory that holds path. */
int tb_fs_fsync_parent(const char *path);
/* fsyncs every file and directory under root, then root. */
int tb_fs_fsync_tree(const char *root);
/* Renames from -> to, failing if `to` exists (RENAME_NOREPLACE), then fsyncs the parent. */
int tb_fs_publish(const char *from, const char *to);
/* The one write(2) loop: all of buf to fd, again after a short write or EINTR. As write(2):
 * 0, or -1 with errno set (the caller names what failed, e.g. with tb_error_io). */
int tb_fs_write_all(int fd, const void *buf, size_t len);
/* Writes data to path crash-safely: temp name beside it, fsync, rename, fsync dir. */
int tb_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole small file into a NUL-terminated malloc'd buffer. */
int tb_fs_read_file(const char *path, char **data, size_t *len);
/* A fresh name beside path: "<dir>/.<base>.tmp-<pid>-<n>" (malloc'd). */
int tb_fs_temp_sibling(const char *path, char **out);
/* Removes temporaries that tb_fs_temp_sibling(path) made in runs whose process is gone
 * (killed with -9): ".<base>.tmp-<pid>-*" beside path. */
int tb_fs_remove_stale_temps(const char *path);
int tb_fs_free_bytes(const char *path, uint64_t *bytes);
/* 1 when path is missing or an empty directory, 0 when it has entries. */
int tb_fs_is_empty_dir(const char *path, int *empty);
int tb_fs_exists(const char *path);
/* Whether dir/name exists. */
int tb_fs_exists_in(const char *dir, const char *name);
/* Total bytes of the regular files under root. */
int tb_fs_tree_size(const char *root, uint64_t *bytes);
/* malloc'd "a/b". */
char *tb_fs_join(const char *a, const char *b);
/* malloc'd parent directory of path ("." when none). */
char *tb_fs_dirname(const char *path);

#endif
