/* walremote: the offsite copy of a WAL archive directory under an s3://bucket/prefix: the
 * push of its closed segments, and retention there. The repository handle (repo.h) is
 * what tools call; these take an S3 client and the location. */
#ifndef TB_WALREMOTE_H
#define TB_WALREMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "s3.h"

struct tb_seg_info;

/* The remote index never names a segment that is not there: segments go first, then
 * index.tsv and cf.tsv. push_segment sends one closed segment of the archive in dir;
 * catch_up lists the prefix and sends every local segment that is missing or of another
 * size there (after a restart or a failed push). *pushed (may be NULL) counts the segments
 * sent. keys: the archive's keyring (NULL: plain), to read a sealed segment the local index
 * lacks. */
int tb_wal_remote_push_segment(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, const char *name);
int tb_wal_remote_push_catch_up(tb_s3 *s, const char *dir, tb_keyring *keys, const char *url, unsigned *pushed);

/* Retention in S3, keeping the push's promise that the remote index names no missing
 * segment. plan downloads index.tsv, and the segments the cut may take (read for open
 * Prepares, see tb_wal_archive_unneeded_prefix), into dir (an existing private directory):
 * *segs (malloc'd, *n) is the index and *cut how many leading segments no backup from
 * sequence base on needs. drop takes those cut segments away: it reads index.tsv into dir
 * again (an archiver may have pushed since) and refuses if its first segments are no longer
 * the planned ones, uploads index.tsv without them, and only then deletes their objects;
 * *gone (malloc'd) lists them. keys: the archive's keyring (NULL: plain), to read its sealed
 * segments. */
int tb_wal_remote_plan(tb_s3 *s, const char *url, tb_keyring *keys, const char *dir, uint64_t base,
                       struct tb_seg_info **segs, size_t *n, size_t *cut);
int tb_wal_remote_drop(tb_s3 *s, const char *url, tb_keyring *keys, const char *dir, const struct tb_seg_info *planned,
                       size_t cut, struct tb_seg_info **gone, size_t *ngone);

#endif
