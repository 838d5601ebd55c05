/* waltap: see waltap.h. */
#include "waltap.h"

#include "error.h"
#include "mem.h"
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

/* Without inotify, how often the directories are listed; with it, how often they are
 * listed anyway (an overflowed event queue, a watch that could not be added). */
enum { SCAN_MS = 5, RESCAN_MS = 500 };

struct tb_wal_tap {
    char *dir[2]; /* the WAL directory and its archive/ */
    int ino; /* inotify descriptor, -1 without */
    int wd[2]; /* its watches, -1 when not (yet) watched */
    int wake[2]; /* a pipe: stop */
    pthread_t thread;
    int running;
    pthread_mutex_t mu; /* guards what follows */
    struct tb_tap_file *v; /* by number */
    size_t n, cap;
    uint64_t floor;
    uint64_t missed;
    size_t max_held; /* half the descriptors: the rest are the archiver's */
};

static int log_number(const char *name, uint64_t *num)
{
    size_t l = strlen(name);
    char *end;
    if (l < 5 || strcmp(name + l - 4, ".log") != 0 || name[0] < '0' || name[0] > '9')
        return 0;
    *num = strtoull(name, &end, 10);
    return end == name + l - 4;
}

static int held(const tb_wal_tap *t, uint64_t num)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].number == num)
            return 1;
    return 0;
}

/* Opens dir/name unless it is held or below the floor. A file moved to archive/ between
 * the event and the open is found there. */
static void hold(tb_wal_tap *t, int d, const char *name)
{
    uint64_t num;
    char *path = NULL;
    int fd = -1, e = 0;
    size_t at;
    if (!log_number(name, &num))
        return;
    pthread_mutex_lock(&t->mu);
    if (num < t->floor || held(t, num))
        goto out;
    if (t->n >= t->max_held) {
        t->missed++; /* read by name, as without the tap */
        goto out;
    }
    for (int k = 0; k < 2 && fd < 0; k++) {
        free(path);
        if (!(path = tb_fs_join(t->dir[(d + k) % 2], name)))
            goto out;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        e = errno;
        if (fd < 0 && e != ENOENT)
            break;
    }
    if (fd < 0) {
        /* Deleted before we saw it, or no descriptor left: the archiver reads what is
         * still there by name and its sequence check names any range lost. */
        t->missed++;
        goto out;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct tb_tap_file *p = realloc(t->v, cap * sizeof *p);
        if (!p) {
            close(fd);
            goto out;
        }
        t->v = p;
        t->cap = cap;
    }
    for (at = t->n; at > 0 && t->v[at - 1].number > num; at--)
        t->v[at] = t->v[at - 1];
    t->v[at].number = num;
    t->v[at].fd = fd;
    t->v[at].path = path;
    path = NULL;
    t->n++;
out:
    pthread_mutex_unlock(&t->mu);
    free(path);
}

static void scan(tb_wal_tap *t)
{
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(t->dir[d]);
        struct dirent *e;
        while (dir && (e = readdir(dir)))
            hold(t, d, e->d_name);
        if (dir)
            closedir(dir);
    }
}

static void watch(tb_wal_tap *t, int d)
{
    if (t->ino >= 0 && t->wd[d] < 0)
        t->wd[d] = inotify_add_watch(t->ino, t->dir[d], IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
}

/* Reads the queued events: a new WAL file is opened; archive/ appearing is watched too. */
static int drain(tb_wal_tap *t)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int rescan = 0;
    for (;;) {
        ssize_t len = read(t->ino, buf, sizeof buf);
        if (len <= 0)
            break;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rescan = 1;
            } else if (ev->len && ev->wd == t->wd[0] && (ev->mask & IN_ISDIR) && strcmp(ev->name, "archive") == 0) {
                watch(t, 1);
                rescan = 1;
            } else if (ev->len && !(ev->mask & IN_ISDIR)) {
                hold(t, ev->wd == t->wd[1], ev->name);
            }
        }
    }
    return rescan;
}

static void *run(void *arg)
{
    tb_wal_tap *t = arg;
    struct pollfd p[2] = { { t->wake[0], POLLIN, 0 }, { t->ino, POLLIN, 0 } };
    for (;;) {
        int r = poll(p, t->ino >= 0 ? 2 : 1, t->ino >= 0 ? RESCAN_MS : SCAN_MS);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && p[0].revents)
            break;
        if (r > 0 && p[1].revents && !drain(t))
            continue;
        if (t->ino >= 0 && t->wd[1] < 0)
            watch(t, 1);
        scan(t);
    }
    return NULL;
}

int tb_wal_tap_start(tb_wal_tap **out, const char *dir, uint64_t floor, int listing_only)
{
    tb_wal_tap *t = calloc(1, sizeof *t);
    struct rlimit rl;
    sigset_t all, old;
    int started;
    *out = NULL;
    if (!t)
        return tb_error_set(TB_EIO, "out of memory");
    t->ino = t->wake[0] = t->wake[1] = t->wd[0] = t->wd[1] = -1;
    t->floor = floor;
    pthread_mutex_init(&t->mu, NULL);
    if (!(t->dir[0] = strdup(dir)) || !(t->dir[1] = tb_fs_join(dir, "archive"))) {
        tb_wal_tap_stop(t);
        return tb_error_set(TB_EIO, "out of memory");
    }
    if (pipe2(t->wake, O_CLOEXEC) < 0) {
        int e = errno;
        tb_wal_tap_stop(t);
        return tb_error_errno(TB_EIO, e, "cannot create a pipe");
    }
    /* A backlog holds one descriptor per WAL file: take what the hard limit allows. */
    t->max_held = 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY)
            t->max_held = rl.rlim_cur / 2;
    }
    /* Watches before the first scan: a file created between them is seen by one of them. */
    t->ino = listing_only ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (t->ino >= 0) {
        watch(t, 0);
        watch(t, 1);
        if (t->wd[0] < 0) {
            close(t->ino);
            t->ino = -1;
        }
    }
    scan(t);
    /* Signals stay the main thread's: its sleep between polls must end at SIGTERM. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    started = pthread_create(&t->thread, NULL, run, t) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        tb_wal_tap_stop(t);
        return tb_error_set(TB_EIO, "cannot start the WAL watcher thread");
    }
    t->running = 1;
    *out = t;
    return 0;
}

int tb_wal_tap_list(tb_wal_tap *t, struct tb_tap_file **files, size_t *n)
{
    struct tb_tap_file *v = NULL;
    int rc = 0;
    *files = NULL;
    *n = 0;
    pthread_mutex_lock(&t->mu);
    if (t->n && !(v = calloc(t->n, sizeof *v)))
        rc = tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        v[i] = t->v[i];
        if (!(v[i].path = strdup(t->v[i].path)))
            rc = tb_error_set(TB_EIO, "out of memory");
        else
            (*n)++;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc < 0) {
        tb_wal_tap_list_free(v, *n);
        *n = 0;
        return rc;
    }
    *files = v;
    return 0;
}

void tb_wal_tap_list_free(struct tb_tap_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
}

void tb_wal_tap_release(tb_wal_tap *t, uint64_t number)
{
    size_t k = 0;
    pthread_mutex_lock(&t->mu);
    if (number > t->floor)
        t->floor = number;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].number < number) {
            close(t->v[i].fd);
            free(t->v[i].path);
        } else {
            t->v[k++] = t->v[i];
        }
    }
    t->n = k;
    pthread_mutex_unlock(&t->mu);
}

int tb_wal_tap_inotify(const tb_wal_tap *t)
{
    return t->ino >= 0;
}

uint64_t tb_wal_tap_missed(tb_wal_tap *t)
{
    uint64_t m;
    pthread_mutex_lock(&t->mu);
    m = t->missed;
    pthread_mutex_unlock(&t->mu);
    return m;
}

void tb_wal_tap_stop(tb_wal_tap *t)
{
    if (!t)
        return;
    if (t->running) {
        ssize_t w;
        do
            w = write(t->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(t->thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (t->wake[i] >= 0)
            close(t->wake[i]);
    if (t->ino >= 0)
        close(t->ino);
    tb_wal_tap_release(t, UINT64_MAX);
    pthread_mutex_destroy(&t->mu);
    TB_FREE_ALL(t->v, t->dir[0], t->dir[1], t);
}
