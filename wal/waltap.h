/* waltap: holds every WAL file of a live database open from the moment it appears, so a file
 * RocksDB deletes (WAL_ttl_seconds=0 deletes a file as soon as its memtables are flushed)
 * stays readable until the archiver has read all of it. A thread watches the WAL directory
 * and its archive/ with inotify (a fast directory scan where inotify is unavailable) and
 * opens each new NNNNNN.log at once; the archiver reads at its own pace through the held
 * descriptors and releases a file when the state it saved is past it. */
#ifndef TB_WALTAP_H
#define TB_WALTAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_wal_tap tb_wal_tap;

struct tb_tap_file {
    uint64_t number;
    int fd; /* the tap's; valid until tb_wal_tap_release or tb_wal_tap_stop */
    char *path; /* where it was opened (it may be moved to archive/ or deleted since) */
};

/* Opens every WAL file in dir and dir/archive now, then keeps opening new ones (a thread)
 * until tb_wal_tap_stop. Files numbered below floor are not opened. New files are seen by
 * inotify, or with listing_only (and where inotify is missing) by listing the directories. */
int tb_wal_tap_start(tb_wal_tap **out, const char *dir, uint64_t floor, int listing_only);
/* The files held, by number (a copy: free with tb_wal_tap_list_free; fds stay the tap's). */
int tb_wal_tap_list(tb_wal_tap *t, struct tb_tap_file **files, size_t *n);
void tb_wal_tap_list_free(struct tb_tap_file *files, size_t n);
/* Closes the files numbered below number, and opens none below it from now on. */
void tb_wal_tap_release(tb_wal_tap *t, uint64_t number);
/* 1: inotify watches the directories; 0: they are scanned every few milliseconds. */
int tb_wal_tap_inotify(const tb_wal_tap *t);
/* Files that appeared and were gone before the tap could open them (deleted within
 * microseconds, or a full table of descriptors): the archiver's sequence check then finds
 * the gap and names it. */
uint64_t tb_wal_tap_missed(tb_wal_tap *t);
void tb_wal_tap_stop(tb_wal_tap *t);

#endif
