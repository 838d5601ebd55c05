/* mem: keeps freed memtable blocks from staying in the process's resident set; grows and
 * frees the library's arrays and the pointers a destructor lists. */
#include "mem.h"
#include "error.h"

#include <stdlib.h> /* defines __GLIBC__ where it is glibc */
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* The threshold at which glibc serves an allocation by its own mmap, and returns it to the
 * system on free: glibc's default, fixed here. By default glibc raises it to the size of
 * every mmapped block freed (up to 32 MiB), so once the first memtable is flushed RocksDB's
 * 1 MiB arena blocks (and the 1 MiB WAL records it copies) come from the heap instead, and
 * the heap, fragmented by the small allocations between them, keeps their pages: recovering
 * a WAL through 128 MiB of memtables then peaked at 228 MiB resident instead of ~150.
 * Setting the threshold explicitly turns that adjustment off (mallopt(3)); the cost is an
 * mmap and munmap per large block, ~1000 per GiB of WAL. */
#define TB_MMAP_THRESHOLD (128 * 1024)

void tb_mem_bound(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, TB_MMAP_THRESHOLD);
#endif
}

int tb_grow(void *vp, size_t *cap, size_t n, size_t size, size_t first)
{
    void *v, *p;
    size_t want;
    if (n < *cap)
        return 0;
    want = *cap ? *cap * 2 : first;
    /* vp is the address of a pointer to the element type: read and written as bytes, as
     * any object pointer shares void *'s representation here (POSIX). */
    memcpy(&v, vp, sizeof v);
    if (!(p = realloc(v, want * size)))
        return tb_error_set(TB_EIO, "out of memory");
    memcpy(vp, &p, sizeof p);
    *cap = want;
    return 0;
}

void tb_free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void tb_free_list(void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
}
