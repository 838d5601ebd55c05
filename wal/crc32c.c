/* crc32c: slicing-by-8 tables, and the SSE4.2 crc32 instruction chosen at run time, run on
 * three parts of a long buffer at once (the instruction's latency is three times its issue
 * rate) and the three results joined by shifting through zeros (CRC is linear). */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static int have_sse42 = -1;

static void init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_tables(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^ table[4][(v >> 24) & 0xff] ^
            table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

/* The register after n zero bits, as a matrix over GF(2) applied to it (vec's bits pick
 * mat's rows). */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_times(mat, mat[n]);
}

/* shift[k][b]: the register's byte k of value b moved through len zero bytes (len a power
 * of two), so a register is shifted by four lookups. */
enum { LONG = 4096, SHORT = 256 };
static uint32_t shift_long[4][256], shift_short[4][256];

static void init_shift(uint32_t shift[4][256], size_t len)
{
    uint32_t a[32], b[32], *op = a;
    a[0] = 0x82f63b78u; /* one zero bit */
    for (int n = 1; n < 32; n++)
        a[n] = 1u << (n - 1);
    for (size_t bits = 1; bits < 8 * len; bits *= 2) {
        gf2_square(op == a ? b : a, op);
        op = op == a ? b : a;
    }
    for (uint32_t v = 0; v < 256; v++)
        for (int k = 0; k < 4; k++)
            shift[k][v] = gf2_times(op, v << (8 * k));
}

static uint32_t shifted(uint32_t shift[4][256], uint32_t crc)
{
    return shift[0][crc & 0xff] ^ shift[1][(crc >> 8) & 0xff] ^ shift[2][(crc >> 16) & 0xff] ^ shift[3][crc >> 24];
}

#if defined(__x86_64__)
/* Three runs of n bytes (a multiple of 8) at p, p + n, p + 2n, joined. */
__attribute__((target("sse4.2"))) static uint64_t crc_3way(uint64_t c0, const unsigned char *p, size_t n,
                                                           uint32_t shift[4][256])
{
    uint64_t c1 = 0, c2 = 0, v0, v1, v2;
    for (const unsigned char *end = p + n; p < end; p += 8) {
        memcpy(&v0, p, 8);
        memcpy(&v1, p + n, 8);
        memcpy(&v2, p + 2 * n, 8);
        c0 = __builtin_ia32_crc32di(c0, v0);
        c1 = __builtin_ia32_crc32di(c1, v1);
        c2 = __builtin_ia32_crc32di(c2, v2);
    }
    c0 = shifted(shift, (uint32_t)c0) ^ (uint32_t)c1;
    return shifted(shift, (uint32_t)c0) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = crc;
    for (; len >= 3 * LONG; p += 3 * LONG, len -= 3 * LONG)
        c = crc_3way(c, p, LONG, shift_long);
    for (; len >= 3 * SHORT; p += 3 * SHORT, len -= 3 * SHORT)
        c = crc_3way(c, p, SHORT, shift_short);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
#else
    have_sse42 = 0;
#endif
    init_tables();
    init_shift(shift_long, LONG);
    init_shift(shift_short, SHORT);
}

uint32_t tb_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return ~crc_tables(~crc, buf, len);
}

uint32_t tb_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    crc = ~crc;
#if defined(__x86_64__)
    if (have_sse42)
        return ~crc_sse42(crc, buf, len);
#endif
    return ~crc_tables(crc, buf, len);
}
