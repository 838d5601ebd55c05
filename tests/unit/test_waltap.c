/* test_waltap: the tap holds WAL files open from the moment they appear (with inotify, and
 * with the directory listing alone), so a file deleted afterwards is still read whole; a
 * file moved to archive/ (made after the start) is held too; release closes what is below
 * a number and keeps it from being opened again. */
#include "tap.h"
#include "fs.h"
#include "waltap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/test_waltap.XXXXXX";

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Whether the tap holds number, waiting up to 5 s for its thread (now: not waiting; used
 * after a later file was seen, so the tap has looked at this one already). */
static int held(tb_wal_tap *t, uint64_t number, int *fd, int wait)
{
    for (int i = 0; i < (wait ? 1000 : 1); i++) {
        struct tb_tap_file *v;
        size_t n;
        int found = 0;
        struct timespec ts = { 0, 5000000 };
        if (tb_wal_tap_list(t, &v, &n) == 0) {
            for (size_t k = 0; k < n; k++)
                if (v[k].number == number) {
                    found = 1;
                    if (fd)
                        *fd = v[k].fd;
                }
            tb_wal_tap_list_free(v, n);
        }
        if (found)
            return 1;
        nanosleep(&ts, NULL);
    }
    return 0;
}
#define holds(t, number, fd) held(t, number, fd, 1)
#define holds_now(t, number) held(t, number, NULL, 0)

static size_t count(tb_wal_tap *t)
{
    struct tb_tap_file *v;
    size_t n = 0;
    if (tb_wal_tap_list(t, &v, &n) == 0)
        tb_wal_tap_list_free(v, n);
    return n;
}

static void round_trip(int scan)
{
    const char *how = scan ? "listing" : "inotify";
    tb_wal_tap *t = NULL;
    char buf[64] = { 0 }, path[256], path2[256];
    int fd = -1;
    put("000007.log", "seven");
    put("OPTIONS-000005", "not a log");
    is_int(tb_wal_tap_start(&t, dir, 5, scan), 0, "%s: the tap starts", how);
    is_int(tb_wal_tap_inotify(t), !scan, "%s: inotify %s", how, scan ? "off" : "on");
    ok(holds(t, 7, NULL), "%s: a file there at the start is held", how);
    put("000009.log", "nine, then deleted");
    ok(holds(t, 9, &fd), "%s: a new file is held", how);
    snprintf(path, sizeof path, "%s/000009.log", dir);
    unlink(path);
    ok(fd >= 0 && pread(fd, buf, sizeof buf - 1, 0) == 18 && strcmp(buf, "nine, then deleted") == 0,
       "%s: and read whole after it was deleted", how);
    put("000003.log", "below the floor");
    put("000011.log", "eleven");
    ok(holds(t, 11, NULL), "%s: the next new file is held", how);
    ok(!holds_now(t, 3), "%s: one below the floor is not", how);
    /* archive/ made after the start; a file moved into it (WAL_ttl_seconds > 0). */
    snprintf(path, sizeof path, "%s/archive", dir);
    mkdir(path, 0755);
    put("000013.log", "thirteen");
    snprintf(path, sizeof path, "%s/000013.log", dir);
    snprintf(path2, sizeof path2, "%s/archive/000013.log", dir);
    ok(holds(t, 13, NULL), "%s: 13 held", how);
    rename(path, path2);
    put("archive/000015.log", "fifteen, moved in");
    ok(holds(t, 15, NULL), "%s: a file appearing in archive/ (made after the start) is held", how);
    tb_wal_tap_release(t, 11);
    ok(!holds_now(t, 7) && !holds_now(t, 9) && holds_now(t, 11), "%s: release(11) closes 7 and 9, keeps 11", how);
    is_int(count(t), 3, "%s: 11, 13 and 15 held", how);
    tb_wal_tap_stop(t);
    /* Clean for the next round. */
    tb_fs_rm_rf(dir);
    mkdir(dir, 0700);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    round_trip(0);
    round_trip(1);
    tb_fs_rm_rf(dir);
    return done_testing();
}
