/* walship: what becomes of each segment the archiver closes, besides staying in the local
 * archive: written to a tar stream (themis-wal-archive --stdout), or pushed to a repository
 * (--push). Both are tb_archiver_opts.published callbacks. */
#ifndef TB_WALSHIP_H
#define TB_WALSHIP_H

#include "repo.h"
#include "segment.h"
#include "tar.h"

/* The segment at path as a tar member (still the bytes the index names, by SHA-256), then
 * the archive's index.tsv and cf.tsv in dir as they are now; the segment file is then
 * removed. `tar -x` of the stream, even of one cut short, gives an archive that
 * tb_wal_archive_check and replay accept. */
struct tb_ship_tar {
    tb_tar_writer *w;
    const char *dir;
};
int tb_ship_tar(void *arg, const char *path, const struct tb_seg_info *s);

/* The local archive (dir) is the primary copy: a failed push does not stop archiving (that
 * could lose WAL). It is told, and caught up at the next closed segment (and by the
 * caller at the end, where a push still failing is an error). told (may be NULL) hears each
 * segment pushed (name), each catch-up that pushed n > 0 segments (name NULL), and each
 * failure not caused by a stop signal (err, the message). */
struct tb_ship_push {
    tb_repo *repo;
    const char *dir;
    int behind; /* a push failed since the last catch-up */
    void (*told)(void *arg, const char *name, unsigned n, const char *err);
    void *arg;
};
int tb_ship_push(void *arg, const char *path, const struct tb_seg_info *s);
/* Pushes every local segment the repository lacks; behind says whether it failed. */
int tb_ship_push_catch_up(struct tb_ship_push *p);

#endif
