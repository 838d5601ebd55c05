/* test_mapahead: a file read front to back through tb_map_ahead reads as the file; the
 * window ahead of the reader comes into the page table before the reader touches it, and
 * the windows behind it leave, so the resident set stays a few windows. */
#include "tap.h"
#include "mapahead.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { WIN = TB_MAP_AHEAD_WINDOW, PAGE = 4096 };

static unsigned char byte_at(uint64_t off)
{
    return (unsigned char)((off * 2654435761u) >> 13);
}

/* 1 when the page at p is in this process's page table (/proc/self/pagemap, bit 63). */
static int present(int pm, const unsigned char *p)
{
    uint64_t e = 0;
    long ps = sysconf(_SC_PAGESIZE);
    if (pread(pm, &e, sizeof e, (off_t)((uintptr_t)p / (uintptr_t)ps * sizeof e)) != (ssize_t)sizeof e)
        return -1;
    return (int)(e >> 63);
}

static size_t present_in(int pm, const unsigned char *p, size_t len)
{
    size_t n = 0;
    for (size_t o = 0; o < len; o += PAGE)
        n += present(pm, p + o) == 1;
    return n;
}

/* Waits up to 10 s for present_in(p, len) == want. */
static int wait_present(int pm, const unsigned char *p, size_t len, size_t want)
{
    struct timespec d = { 0, 2000000 };
    for (int i = 0; i < 5000; i++) {
        if (present_in(pm, p, len) == want)
            return 1;
        nanosleep(&d, NULL);
    }
    return 0;
}

static int write_file(const char *path, size_t len)
{
    unsigned char *b = malloc(len);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), good;
    for (size_t i = 0; i < len; i++)
        b[i] = byte_at(i);
    good = fd >= 0 && write(fd, b, len) == (ssize_t)len;
    free(b);
    if (fd >= 0)
        close(fd);
    return good;
}

int main(void)
{
    char dir[] = "/tmp/tb-mapahead-XXXXXX", path[64];
    const size_t len = 10 * (size_t)WIN + 12345; /* eleven windows, the last a short one */
    const unsigned char *base = NULL;
    tb_map_ahead *m = NULL;
    size_t bad = 0, most = 0;
    int fd, pm = open("/proc/self/pagemap", O_RDONLY);
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/f", dir);
    ok(write_file(path, len), "a file of 10 windows and a bit");
    fd = open(path, O_RDONLY);
    ok(fd >= 0 && tb_map_ahead_open(&m, fd, len, &base) == 0 && base, "maps it");
    ok(pm >= 0 && present(pm, base) >= 0, "the page table can be read");

    tb_map_ahead_at(m, 0);
    ok(wait_present(pm, base + WIN, WIN, WIN / PAGE), "the window after the reader's comes in untouched");
    ok(present(pm, base + 3 * (size_t)WIN) == 0, "the one after that does not yet");

    for (uint64_t off = 0; off < len; off += PAGE) {
        size_t n = len - off < PAGE ? len - off : PAGE, r;
        tb_map_ahead_at(m, off);
        for (size_t i = 0; i < n; i++)
            bad += base[off + i] != byte_at(off + i);
        if (off % WIN == 0 && (r = present_in(pm, base, len)) > most)
            most = r;
    }
    is_int(bad, 0, "reads as the file, front to back");
    ok(most * PAGE <= 5 * (size_t)WIN, "at most 5 windows were resident at a window's start (saw %zu KiB)",
       most * PAGE / 1024);
    ok(wait_present(pm, base, 9 * (size_t)WIN, 0), "at the end, the windows before the previous one are gone");
    ok(present(pm, base + 10 * (size_t)WIN) == 1, "the reader's own is still there");
    tb_map_ahead_close(m);
    close(fd);

    /* Smaller than a window: one window, nothing ahead. */
    ok(write_file(path, 100), "a file of 100 bytes");
    fd = open(path, O_RDONLY);
    ok(fd >= 0 && tb_map_ahead_open(&m, fd, 100, &base) == 0 && base[99] == byte_at(99), "maps and reads it");
    tb_map_ahead_at(m, 99);
    tb_map_ahead_close(m);
    tb_map_ahead_close(NULL);
    ok(tb_map_ahead_open(&m, -1, 100, &base) < 0, "a bad descriptor cannot be mapped: -1");
    close(fd);
    unlink(path);
    rmdir(dir);
    close(pm);
    return done_testing();
}
