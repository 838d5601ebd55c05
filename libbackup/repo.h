/* repo: where backups and WAL archives live, behind one handle (pgBackRest's storage/): a
 * local directory or an s3://bucket/prefix, opened once with its S3 settings, keys, scratch
 * directory and download progress. Code above it reads a backup root, a backup, a stream or
 * a WAL archive through it and never asks which kind of location it is. */
#ifndef TB_REPO_H
#define TB_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "crypt.h"
#include "s3.h"
#include "stream.h"

typedef struct tb_repo tb_repo;
struct tb_seg_info;

struct tb_repo_opts {
    /* The S3 client's settings, for an s3:// location (the struct is copied, its strings
     * must outlive the handle; the client is made at the first request). NULL: none, which
     * an s3:// location reports as missing credentials. */
    const struct tb_s3_config *s3;
    const char *scratch; /* where downloads go, in private directories; NULL: /tmp */
    tb_keyring *keys; /* the keys of encrypted data read through it (may be NULL) */
    tb_progress_cb progress; /* bytes downloaded, as tb_s3_set_progress (may be NULL) */
    void *progress_arg;
    uint64_t *progress_total;
};

/* Whether location names object storage rather than a directory: only for a tool whose
 * option accepts one kind (a push goes to S3; a stream comes from stdin or S3). */
int tb_repo_is_remote(const char *location);

/* Nothing is read or downloaded yet. free removes every directory downloaded through the
 * handle; free(NULL) does nothing. */
int tb_repo_open(tb_repo **out, const char *location, const struct tb_repo_opts *o);
void tb_repo_free(tb_repo *r);
/* Checks now what the first request would (the S3 settings), for a caller that must not
 * begin its work with a location it cannot use; a directory has nothing to check. */
int tb_repo_check(tb_repo *r);
const char *tb_repo_location(const tb_repo *r);
tb_keyring *tb_repo_keys(const tb_repo *r);
/* The backup NAME under the root as the user named the root (malloc'd): ROOT/NAME. */
char *tb_repo_shown(const tb_repo *r, const char *name);

/* The location as a backup root (one backup per subdirectory). root: a local directory that
 * tb_catalog_list and tb_restore_pick read: the directory itself, or (S3) a mirror of every
 * backup's MANIFEST.json and VERIFY.json, made at the first call. prepare brings the files
 * of the backup at dir (a directory under root) and of its parents, before it is checked;
 * for a directory there is nothing to do. list is tb_catalog_list of root; an S3 root
 * without any backup is TB_ENOENT (a wrong prefix looks like an empty one). remove deletes
 * the backup NAME. */
int tb_repo_root(tb_repo *r, const char **dir);
int tb_repo_prepare(tb_repo *r, const char *dir);
int tb_repo_list(tb_repo *r, struct tb_catalog_entry **out, size_t *n);
int tb_repo_remove(tb_repo *r, const char *name);

/* The location as one backup: *dir is a local directory holding it, and beside it its
 * parents (S3: downloaded; a missing parent is TB_EVERIFY naming it). */
int tb_repo_backup(tb_repo *r, const char **dir);
/* The location as one object, read as a stream (S3: while it downloads; a directory's
 * location is a file). The caller frees the stream. */
int tb_repo_stream(tb_repo *r, tb_stream **out);
/* The location as a directory to read, e.g. a WAL archive to replay: itself, or every
 * object under the prefix downloaded (none at all is TB_ENOENT naming the location). */
int tb_repo_dir(tb_repo *r, const char **dir);

/* The location as the offsite copy of the WAL archive in dir (S3 only; a directory is
 * TB_EUSAGE): push sends the closed segment name, catch_up every segment missing there
 * (*pushed, may be NULL, counts them); see tb_wal_remote_push_segment. */
int tb_repo_wal_push(tb_repo *r, const char *dir, const char *name);
int tb_repo_wal_catch_up(tb_repo *r, const char *dir, unsigned *pushed);
/* Retention of the WAL archive at the location. plan: *segs (malloc'd, *n) its index and
 * *cut how many leading segments no backup from sequence base on needs (read, nothing
 * changed). drop removes those cut segments, the index first; *gone (malloc'd) lists them.
 * In S3 drop refuses if the index changed since the plan (tb_wal_remote_drop). */
int tb_repo_wal_plan(tb_repo *r, uint64_t base, struct tb_seg_info **segs, size_t *n, size_t *cut);
int tb_repo_wal_drop(tb_repo *r, const struct tb_seg_info *planned, size_t cut, struct tb_seg_info **gone,
                     size_t *ngone);

#endif
