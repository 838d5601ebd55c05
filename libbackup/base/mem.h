/* mem: the process's memory behaviour, set once by every tool before it starts work, the
 * small allocation helpers the library's growing arrays share, and the destructors' frees. */
#ifndef TB_MEM_H
#define TB_MEM_H

#include <stddef.h>

/* Makes freed large blocks go back to the system at once (see mem.c for why). */
void tb_mem_bound(void);

/* Makes room for element n of the array whose address is at vp (a T **, as &v) holding *cap
 * elements of size bytes: when n has reached *cap, doubles *cap (first when 0) and reallocs.
 * 0, or TB_EIO "out of memory" with *vp and *cap unchanged. */
int tb_grow(void *vp, size_t *cap, size_t n, size_t size, size_t first);
/* Frees the n strings of v (any may be NULL), then v; nothing when v is NULL. */
void tb_free_strings(char **v, size_t n);
/* Frees the n pointers of p (any may be NULL), in order. */
void tb_free_list(void *const *p, size_t n);
/* Frees each argument (any may be NULL), in order: a destructor's run of free() calls in one
 * line. The arguments are all read before the first is freed, so the struct that holds the
 * others may come last. */
#define TB_FREE_ALL(...) tb_free_list((void *[]){ __VA_ARGS__ }, sizeof((void *[]){ __VA_ARGS__ }) / sizeof(void *))

#endif
