/* bytes: little-endian integers in byte buffers, the one copy for every on-disk format, and
 * the bytewise order of keys. */
#ifndef TB_BYTES_H
#define TB_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Byte strings in RocksDB's bytewise order (and std::string's): bytes compared unsigned,
 * a prefix first. */
static inline int tb_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* A byte string in someone else's memory (a key, an item of a list). */
struct tb_span {
    const char *p;
    size_t len;
};

/* qsort's comparator of struct tb_span, in tb_bytes_cmp's order. */
static inline int tb_span_cmp(const void *a, const void *b)
{
    const struct tb_span *x = a, *y = b;
    return tb_bytes_cmp(x->p, x->len, y->p, y->len);
}

static inline uint16_t tb_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t tb_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t tb_get_le64(const unsigned char *p)
{
    return (uint64_t)tb_get_le32(p) | (uint64_t)tb_get_le32(p + 4) << 32;
}

static inline void tb_put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void tb_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void tb_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

#endif
