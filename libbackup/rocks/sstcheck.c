/* sstcheck: verifies every block of a RocksDB block-based table by its trailer checksum, as
 * RocksDB's table/format.cc and block_based_table_reader.cc (7.8 to 11.x) define them. */
#include "sstcheck.h"
#include "bytes.h"
#include "crc32c.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>
#include <snappy-c.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

/* table/block_based/block_based_table_builder.cc and table/plain, table/cuckoo. */
#define MAGIC_BBT 0x88e241b785f4cff7ull
#define MAGIC_BBT_LEGACY 0xdb4775248b80fb57ull
#define MAGIC_PLAIN 0x8242229663bf9564ull
#define MAGIC_PLAIN_LEGACY 0x4f3418eb7a8f13b8ull
#define MAGIC_CUCKOO 0x926789d0c5f17873ull

#define TRAILER 5 /* compression type byte + 32-bit checksum */
#define FOOTER_V0 48 /* two handles padded to 40 bytes, legacy magic */
#define FOOTER_NEW 53 /* checksum type, 40 bytes, format_version, magic */
#define LATEST_FORMAT 7 /* RocksDB 11.8's kLatestBbtFormatVersion */
/* RocksDB adds a format_version every few years (6 in 8.6, 7 in 10.4). A value far beyond
 * the latest is a damaged footer, not a newer RocksDB (see docs/rocksdb-backup-notes.md). */
#define PLAUSIBLE_FORMAT 31
#define LATEST_CHECKSUM 4 /* kXXH3 */

/* Internal verdicts of the helpers below, besides 0 and the TB_E* codes. */
#define UNCHECKED 1

enum kind { K_DATA, K_INDEX, K_FILTER, K_META };

struct extent {
    uint64_t off, len;
};

struct ctx {
    int fd;
    const char *name;
    struct tb_sst_report *rep;
    uint64_t size;
    uint32_t fv;
    int ck; /* checksum type */
    uint32_t base; /* base_context_checksum (format_version >= 6), else 0 */
    uint64_t footer_off, footer_len;
    uint64_t limit; /* blocks end here: the footer's offset */
    int delta, first_key, index_type;
    uint64_t prop_data_blocks; /* rocksdb.num.data.blocks, UINT64_MAX when absent */
    unsigned char *buf; /* the block being checked, trailer included */
    size_t cap;
    uint64_t read_off, read_len; /* the block now in buf (read, checksum not yet judged) */
    struct extent *ext; /* what verified checksums cover */
    size_t next, ncap;
    int unchecked_seen; /* an UNCHECKED was recorded; checking went on elsewhere */
};

static const char *kind_name(enum kind k)
{
    return k == K_DATA ? "data block" : k == K_INDEX ? "index block" : k == K_FILTER ? "filter block" : "meta block";
}

const char *tb_sst_checksum_name(int type)
{
    static const char *names[] = { "none", "crc32c", "xxHash", "xxHash64", "XXH3" };
    return type >= 0 && type <= LATEST_CHECKSUM ? names[type] : "unknown";
}

const char *tb_sst_verdict_name(int verdict)
{
    return verdict == TB_SST_OK ? "ok" : verdict == TB_SST_DAMAGED ? "damaged" : "unchecked";
}

static const unsigned char *varint64(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = *p++;
        r |= (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

static const unsigned char *varint32(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
    uint64_t r;
    p = varint64(p, end, &r);
    if (!p || r > UINT32_MAX)
        return NULL;
    *v = (uint32_t)r;
    return p;
}

/* ComputeBuiltinChecksum (table/format.cc): over data whose last byte is the block's
 * compression type. XXH3 hashes all but the last byte and mixes that byte in by xor with a
 * multiple of a prime, RocksDB's way of avoiding XXH3's streaming API. */
static uint32_t builtin_checksum(int type, const unsigned char *p, size_t n)
{
    switch (type) {
    case TB_SST_CK_CRC32C: return tb_crc32c_mask(tb_crc32c(0, p, n));
    case TB_SST_CK_XXHASH: return XXH32(p, n, 0);
    case TB_SST_CK_XXHASH64: return (uint32_t)XXH64(p, n, 0);
    case TB_SST_CK_XXH3:
        if (n == 0)
            return 0;
        return (uint32_t)XXH3_64bits(p, n - 1) ^ (uint32_t)p[n - 1] * 0x6b9083d9u;
    default: return 0;
    }
}

/* ChecksumModifierForContext (table/format.h, format_version >= 6): added to a block's
 * checksum so a block copied to another offset or file fails like random damage. */
static uint32_t context_modifier(uint32_t base, uint64_t offset)
{
    if (base == 0)
        return 0;
    return base ^ ((uint32_t)offset + (uint32_t)(offset >> 32));
}

static int damaged(struct ctx *c, uint64_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int damaged(struct ctx *c, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rep->reason, sizeof c->rep->reason, fmt, ap);
    va_end(ap);
    c->rep->verdict = TB_SST_DAMAGED;
    c->rep->offset = off;
    return tb_error_set(TB_EVERIFY, "table file %s damaged at offset %llu: %s", c->name, (unsigned long long)off,
                        c->rep->reason);
}

/* Records the first thing this checker cannot judge; checking goes on where it can, so
 * damage elsewhere in the file still wins. */
static int unchecked(struct ctx *c, uint64_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int unchecked(struct ctx *c, uint64_t off, const char *fmt, ...)
{
    if (!c->unchecked_seen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->rep->reason, sizeof c->rep->reason, fmt, ap);
        va_end(ap);
        c->rep->offset = off;
        c->unchecked_seen = 1;
    }
    return UNCHECKED;
}

static int read_at(struct ctx *c, unsigned char *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(c->fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tb_error_errno(TB_EIO, errno, "cannot read table file %s at offset %llu", c->name,
                                  (unsigned long long)(off + done));
        if (n == 0)
            return tb_error_set(TB_EIO, "table file %s shrank while being checked (%s)", c->name,
                                "end of file before its footer's size");
        done += (size_t)n;
    }
    return 0;
}

static int cover(struct ctx *c, uint64_t off, uint64_t len)
{
    if (c->next == c->ncap) {
        size_t n = c->ncap ? c->ncap * 2 : 256;
        struct extent *e = realloc(c->ext, n * sizeof *e);
        if (!e)
            return tb_error_set(TB_EIO, "out of memory checking %s", c->name);
        c->ext = e;
        c->ncap = n;
    }
    c->ext[c->next++] = (struct extent){ off, len };
    return 0;
}

static int cmp_extent(const void *a, const void *b)
{
    const struct extent *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Reads the block at off (size bytes plus its trailer) into c->buf and verifies its trailer
 * checksum. prop_fix: the offset inside the block of an ingested file's global sequence
 * number, which RocksDB may rewrite after the checksum was made (meta_blocks.cc): on a
 * mismatch the check is retried with those 8 bytes zero, as RocksDB does. */
static int read_block(struct ctx *c, uint64_t off, uint64_t size, enum kind k, const char *what)
{
    if (off > c->limit || size > c->limit - off || c->limit - off - size < TRAILER)
        return damaged(c, off, "%s (%s) of %llu bytes at offset %llu lies beyond the end of the table's blocks (%llu)",
                       kind_name(k), what, (unsigned long long)size, (unsigned long long)off,
                       (unsigned long long)c->limit);
    size_t n = (size_t)size + TRAILER;
    if (n > c->cap) {
        unsigned char *b = realloc(c->buf, n);
        if (!b)
            return tb_error_set(TB_EIO, "out of memory for a block of %zu bytes in %s", n, c->name);
        c->buf = b;
        c->cap = n;
    }
    c->read_len = 0;
    int rc = read_at(c, c->buf, n, off);
    if (rc)
        return rc;
    c->read_off = off;
    c->read_len = n;
    uint32_t stored = tb_get_le32(c->buf + size + 1) - context_modifier(c->base, off);
    uint32_t computed = builtin_checksum(c->ck, c->buf, (size_t)size + 1);
    if (stored != computed)
        return damaged(c, off, "%s (%s, %llu bytes): %s checksum mismatch (stored%s %08x, computed %08x)", kind_name(k),
                       what, (unsigned long long)size, tb_sst_checksum_name(c->ck), c->base ? " without context" : "",
                       stored, computed);
    switch (k) {
    case K_DATA: c->rep->data_blocks++; break;
    case K_INDEX: c->rep->index_blocks++; break;
    case K_FILTER: c->rep->filter_blocks++; break;
    case K_META: c->rep->meta_blocks++; break;
    }
    return cover(c, off, n);
}

static const char *compression_name(int type)
{
    switch (type) {
    case 2: return "zlib";
    case 3: return "bzip2";
    case 4: return "LZ4";
    case 5: return "LZ4HC";
    case 6: return "xpress";
    case 7: return "ZSTD";
    case 0x40: return "ZSTDNotFinal";
    default: return NULL;
    }
}

/* UNCHECKED for a compressed block this checker cannot read: an algorithm it does not link
 * or know, or format_version < 2's framing (Snappy's own framing is the same in all). */
static int decompressible(struct ctx *c, uint64_t off, const char *what, int type)
{
    const char *name = compression_name(type);
    if (type == 0 || type == 1)
        return 0;
    if (!name || type == 3 || type == 6)
        return unchecked(c, off,
                         "cannot check: %s at offset %llu is compressed with %s (type 0x%02x), which this "
                         "checker does not decompress",
                         what, (unsigned long long)off, name ? name : "an unknown algorithm", type);
    if (c->fv < 2)
        return unchecked(c, off, "cannot check: %s at offset %llu is compressed in format_version %u's old framing",
                         what, (unsigned long long)off, c->fv);
    return 0;
}

/* The uncompressed size; *p moves past the size prefix of format_version >= 2. RocksDB 10
 * reads that size as a varint64 (written as varint32 so far). An index block beyond 1 GiB is
 * not one RocksDB writes: 0 (unchecked) rather than a huge allocation. */
static int announced_size(int type, const unsigned char **p, const unsigned char *end, size_t *ulen)
{
    uint64_t len64;
    if (type == 0) {
        *ulen = (size_t)(end - *p);
        return 1;
    }
    if (type == 1)
        return snappy_uncompressed_length((const char *)*p, (size_t)(end - *p), ulen) == SNAPPY_OK &&
            *ulen <= (1u << 30);
    if (!(*p = varint64(*p, end, &len64)) || len64 > (1u << 30))
        return 0;
    *ulen = (size_t)len64;
    return 1;
}

static int inflate_raw(const unsigned char *p, size_t n, unsigned char *u, size_t ulen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return 0;
    z.next_in = (unsigned char *)p;
    z.avail_in = (unsigned)n;
    z.next_out = u;
    z.avail_out = (unsigned)ulen;
    int zr = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    return zr == Z_STREAM_END && z.avail_out == 0;
}

/* 1 when the n bytes at p decompress to exactly *ulen bytes at u. */
static int decompress(int type, const unsigned char *p, size_t n, unsigned char *u, size_t *ulen)
{
    switch (type) {
    case 0: memcpy(u, p, n); return 1;
    case 1: return snappy_uncompress((const char *)p, n, (char *)u, ulen) == SNAPPY_OK;
    case 2: return inflate_raw(p, n, u, *ulen);
    case 4:
    case 5: {
        int got = LZ4_decompress_safe((const char *)p, (char *)u, (int)n, (int)*ulen);
        return got >= 0 && (size_t)got == *ulen;
    }
    default: {
        size_t got = ZSTD_decompress(u, *ulen, p, n);
        return !ZSTD_isError(got) && got == *ulen;
    }
    }
}

/* The verified block in c->buf as its uncompressed contents, in a buffer the caller frees.
 * Compressed blocks of format_version >= 2 start with the uncompressed size as a varint32
 * (util/compression.h, compress_format_version 2), except Snappy's own framing. */
static int block_contents(struct ctx *c, uint64_t off, uint64_t size, const char *what, unsigned char **out,
                          size_t *outlen)
{
    int type = c->buf[size], rc;
    const unsigned char *p = c->buf, *end = c->buf + size;
    unsigned char *u = NULL;
    size_t ulen = 0;
    *out = NULL;
    if ((rc = decompressible(c, off, what, type)) != 0)
        return rc;
    if (announced_size(type, &p, end, &ulen)) {
        if (!(u = malloc(ulen ? ulen : 1)))
            return tb_error_set(TB_EIO, "out of memory checking %s", c->name);
        if (decompress(type, p, (size_t)(end - p), u, &ulen)) {
            *out = u;
            *outlen = ulen;
            return 0;
        }
    }
    free(u);
    /* Its checksum matched, so the bytes are as written: a block we cannot decompress is
     * one we do not understand, not damage. */
    return unchecked(c, off, "cannot check: %s at offset %llu does not decompress (compression type 0x%02x)", what,
                     (unsigned long long)off, type);
}

/* A block's entries (table/block_based/block_builder.cc): prefix-compressed keys, restart
 * offsets and their count at the end. Index blocks may encode values as BlockHandles whose
 * offset follows the previous one (value delta encoding, format_version >= 4). */
struct iter {
    const unsigned char *p, *end; /* entries; end is where the restart array begins */
    unsigned char *key;
    size_t klen, kcap;
    const unsigned char *val;
    size_t vlen;
    uint32_t shared;
};

/* 0, or UNCHECKED when the block trailer is not one we know. */
static int iter_init(struct iter *it, const unsigned char *b, size_t n)
{
    memset(it, 0, sizeof *it);
    if (n < 4)
        return UNCHECKED;
    uint32_t packed = tb_get_le32(b + n - 4);
    /* Bit 31: data block hash index (only for blocks <= 64 KiB); bit 29: "uniform keys" hint
     * of RocksDB 11's index blocks; bit 28: separated keys and values (RocksDB 11, data
     * blocks). Neither of the latter two may appear in a block we parse. */
    if (n <= 65536)
        packed &= ~(1u << 31);
    packed &= ~(1u << 29);
    if (packed & (1u << 28 | 1u << 30))
        return UNCHECKED;
    if ((uint64_t)packed * 4 + 4 > n || packed == 0)
        return UNCHECKED;
    it->p = b;
    it->end = b + n - 4 - (size_t)packed * 4;
    return 0;
}

#define ENTRY 1
#define BAD_ENTRY 2

/* Next entry: ENTRY, 0 at the end, BAD_ENTRY when it does not parse. With value_delta the value
 * is not length-prefixed: index_value() consumes it and sets it->p. */
static int iter_next(struct iter *it, int value_delta)
{
    if (it->p >= it->end)
        return 0;
    uint32_t shared, non_shared, vlen = 0;
    const unsigned char *p = varint32(it->p, it->end, &shared);
    if (p)
        p = varint32(p, it->end, &non_shared);
    if (p && !value_delta)
        p = varint32(p, it->end, &vlen);
    if (!p || shared > it->klen || non_shared > (size_t)(it->end - p) || vlen > (size_t)(it->end - p) - non_shared)
        return BAD_ENTRY;
    size_t klen = (size_t)shared + non_shared;
    if (klen > it->kcap) {
        size_t cap = klen * 2 + 64;
        unsigned char *k = realloc(it->key, cap);
        if (!k)
            return BAD_ENTRY;
        it->key = k;
        it->kcap = cap;
    }
    if (non_shared)
        memcpy(it->key + shared, p, non_shared);
    it->klen = klen;
    it->shared = shared;
    p += non_shared;
    it->val = p;
    it->vlen = value_delta ? (size_t)(it->end - p) : vlen;
    it->p = value_delta ? p : p + vlen;
    return ENTRY;
}

static int key_is(const struct iter *it, const char *s)
{
    size_t n = strlen(s);
    return it->klen == n && memcmp(it->key, s, n) == 0;
}

static int key_starts(const struct iter *it, const char *s)
{
    size_t n = strlen(s);
    return it->klen >= n && memcmp(it->key, s, n) == 0;
}

struct handle {
    uint64_t off, size;
};

/* IndexValue::DecodeFrom (table/format.cc): a BlockHandle, or with delta encoding and a
 * shared key prefix only the size's difference to the previous handle, whose block it
 * follows; then, for kBinarySearchWithFirstKey, the block's first key. */
static int index_value(struct ctx *c, struct iter *it, struct handle *h, const struct handle *prev)
{
    const unsigned char *p = it->val, *end = it->val + it->vlen;
    if (c->delta && it->shared != 0) {
        uint64_t z;
        if (!prev || !(p = varint64(p, end, &z)))
            return UNCHECKED;
        int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        h->off = prev->off + prev->size + TRAILER;
        h->size = prev->size + (uint64_t)d;
    } else {
        if (!(p = varint64(p, end, &h->off)) || !(p = varint64(p, end, &h->size)))
            return UNCHECKED;
    }
    if (c->first_key) {
        uint32_t n;
        if (!(p = varint32(p, end, &n)) || n > (size_t)(end - p))
            return UNCHECKED;
        p += n;
    }
    if (c->delta)
        it->p = p;
    return 0;
}

static int check_handles(struct ctx *c, uint64_t off, uint64_t size, enum kind index_kind, int depth);

/* Verifies an index block (kind K_INDEX: table index or partition; K_FILTER: partitioned
 * filter's index) and, through it, the blocks it names: data blocks, index partitions (depth
 * 0 of a two-level index) or filter partitions. */
static int check_handles(struct ctx *c, uint64_t off, uint64_t size, enum kind index_kind, int depth)
{
    const char *what = index_kind == K_FILTER ? "partitioned filter index"
        : depth == 0 && c->index_type == 2    ? "top-level index"
        : depth                               ? "index partition"
                                              : "index";
    int rc = read_block(c, off, size, index_kind, what);
    if (rc)
        return rc;
    unsigned char *b = NULL;
    size_t n = 0;
    rc = block_contents(c, off, size, what, &b, &n);
    if (rc)
        return rc;
    struct iter it;
    struct handle prev = { 0, 0 }, h;
    int have_prev = 0, saved_first_key = c->first_key;
    if (index_kind == K_FILTER || (c->index_type == 2 && depth == 0))
        c->first_key = 0;
    rc = iter_init(&it, b, n);
    if (rc) {
        rc = unchecked(c, off, "cannot check: %s at offset %llu has a block layout this checker does not know", what,
                       (unsigned long long)off);
        goto cleanup;
    }
    for (;;) {
        int r = iter_next(&it, c->delta);
        if (r == 0)
            break;
        if (r == 1)
            r = index_value(c, &it, &h, have_prev ? &prev : NULL);
        if (r) {
            rc = unchecked(c, off, "cannot check: cannot parse the entries of %s at offset %llu (its checksum is good)",
                           what, (unsigned long long)off);
            goto cleanup;
        }
        /* RocksDB writes the blocks an index names in its order, one after the other, before
         * the index itself. A verified index that says otherwise is one we misread. */
        if ((have_prev && h.off < prev.off + prev.size + TRAILER) || h.off > off || h.size > off - h.off ||
            off - h.off - h.size < TRAILER) {
            rc = unchecked(c, off,
                           "cannot check: %s at offset %llu names a block at %llu+%llu out of order "
                           "(its checksum is good)",
                           what, (unsigned long long)off, (unsigned long long)h.off, (unsigned long long)h.size);
            goto cleanup;
        }
        prev = h;
        have_prev = 1;
        if (index_kind == K_FILTER) {
            rc = read_block(c, h.off, h.size, K_FILTER, "filter partition");
        } else if (c->index_type == 2 && depth == 0) {
            c->first_key = saved_first_key;
            rc = check_handles(c, h.off, h.size, K_INDEX, 1);
            c->first_key = 0;
        } else {
            rc = read_block(c, h.off, h.size, K_DATA, "data block");
        }
        if (rc < 0)
            goto cleanup;
        rc = 0; /* an UNCHECKED partition is recorded; its siblings are still checked */
    }
cleanup:
    c->first_key = saved_first_key;
    free(it.key);
    free(b);
    return rc;
}

/* Reads the footer into f (right-aligned in FOOTER_NEW bytes) and sets c's format,
 * checksum type and limit from its magic number; *part2 points at the handles (or, from
 * format_version 6, the extended magic). */
static int read_footer(struct ctx *c, unsigned char f[FOOTER_NEW], const unsigned char **part2)
{
    if (c->size < FOOTER_V0)
        return damaged(c, 0, "%llu bytes is too short for a table file (truncated?)", (unsigned long long)c->size);
    size_t flen = c->size < FOOTER_NEW ? FOOTER_V0 : FOOTER_NEW;
    int rc = read_at(c, f + FOOTER_NEW - flen, flen, c->size - flen);
    if (rc)
        return rc;
    uint64_t magic = tb_get_le64(f + FOOTER_NEW - 8);
    if (magic == MAGIC_PLAIN || magic == MAGIC_PLAIN_LEGACY || magic == MAGIC_CUCKOO)
        return unchecked(c, c->size - 8, "cannot check: a %s table, which has no block checksums",
                         magic == MAGIC_CUCKOO ? "cuckoo" : "plain");
    if (magic == MAGIC_BBT_LEGACY) {
        c->fv = 0;
        c->ck = TB_SST_CK_CRC32C;
        c->footer_len = FOOTER_V0;
        *part2 = f + FOOTER_NEW - FOOTER_V0;
    } else if (magic == MAGIC_BBT && flen == FOOTER_NEW) {
        c->fv = tb_get_le32(f + FOOTER_NEW - 12);
        c->ck = f[0];
        c->footer_len = FOOTER_NEW;
        *part2 = f + 1;
    } else {
        return damaged(c, c->size - 8, "no table magic number at the end of the file (truncated, or not a table file)");
    }
    c->footer_off = c->size - c->footer_len;
    c->limit = c->footer_off;
    c->rep->format_version = c->fv;
    c->rep->checksum_type = c->ck;
    if (c->fv > PLAUSIBLE_FORMAT)
        return damaged(c, c->size - 12, "footer's format_version %u is no format RocksDB has or will soon have", c->fv);
    return 0;
}

/* A footer of format_version >= 6 with a checksum type or format_version not known to us:
 * a damaged byte if the footer checks out with a known value in its place, else a RocksDB
 * newer than this checker (0). z: the footer with its checksum field zeroed. */
static int footer_damaged_field(struct ctx *c, const unsigned char z[FOOTER_NEW], uint32_t base, uint32_t stored)
{
    int bad_ck = c->ck > LATEST_CHECKSUM;
    const char *field = bad_ck ? "checksum type" : "format_version";
    for (int t = 0; t <= LATEST_CHECKSUM; t++)
        for (uint32_t v = 6; v <= LATEST_FORMAT; v++) {
            unsigned char y[FOOTER_NEW];
            memcpy(y, z, FOOTER_NEW);
            y[0] = (unsigned char)t;
            tb_put_le32(y + FOOTER_NEW - 12, v);
            if ((bad_ck || t == c->ck) && (c->fv > LATEST_FORMAT || v == c->fv) &&
                builtin_checksum(t, y, FOOTER_NEW) + context_modifier(base, c->footer_off) == stored)
                return damaged(c, c->footer_off, "footer's %s is damaged (the footer checks out with %s %u)", field,
                               field, bad_ck ? (unsigned)t : v);
        }
    return 0;
}

/* The footer of format_version >= 6: its own checksum (the 53 bytes with the checksum field
 * zeroed, plus the context of the footer's own offset) and the metaindex's size. */
static int footer_v6(struct ctx *c, const unsigned char f[FOOTER_NEW], const unsigned char z[FOOTER_NEW], int ext,
                     struct handle *meta, struct handle *index)
{
    uint32_t base = tb_get_le32(f + 9);
    if (!ext)
        return damaged(c, c->footer_off + 1, "footer of format_version %u lacks its extended magic number", c->fv);
    if (c->ck <= LATEST_CHECKSUM) {
        if (base == 0)
            return damaged(c, c->footer_off + 9, "footer's base context checksum is zero");
        uint32_t stored = tb_get_le32(f + 5);
        uint32_t computed = builtin_checksum(c->ck, z, FOOTER_NEW) + context_modifier(base, c->footer_off);
        if (stored != computed)
            return damaged(c, c->footer_off, "footer: %s checksum mismatch (stored %08x, computed %08x)",
                           tb_sst_checksum_name(c->ck), stored, computed);
        c->base = base;
        int r = cover(c, c->footer_off, FOOTER_NEW);
        if (r)
            return r;
    }
    uint32_t msize = tb_get_le32(f + 13);
    if ((uint64_t)msize + TRAILER > c->footer_off)
        return damaged(c, c->footer_off, "footer names a metaindex block of %u bytes, larger than the file", msize);
    meta->off = c->footer_off - TRAILER - msize;
    meta->size = msize;
    index->off = index->size = UINT64_MAX; /* in the metaindex */
    if (tb_get_le64(f + FOOTER_NEW - 12 - 8) != 0 && c->ck <= LATEST_CHECKSUM)
        return unchecked(c, c->footer_off, "cannot check: footer announces a future feature (reserved bytes set)");
    return 0;
}

/* A checksum type newer than this checker. Before format_version 6 only the metaindex block
 * can tell: if it checks out under a known type, the footer's byte is damaged. */
static int unknown_checksum(struct ctx *c, const struct handle *meta)
{
    if (c->fv < 6 && meta->off <= c->limit && meta->size + TRAILER <= c->limit - meta->off) {
        int saved = c->ck;
        for (int t = 1; t <= LATEST_CHECKSUM; t++) {
            c->ck = t;
            struct tb_sst_report keep = *c->rep;
            int r = read_block(c, meta->off, meta->size, K_META, "metaindex");
            *c->rep = keep;
            if (r == 0) {
                c->next--;
                c->ck = saved;
                return damaged(c, c->footer_off,
                               "footer's checksum type %d is damaged (the metaindex checks out with %s)", saved,
                               tb_sst_checksum_name(t));
            }
            if (r != TB_EVERIFY)
                return r;
        }
        c->ck = saved;
        tb_error_clear();
    }
    return unchecked(c, c->footer_off, "cannot check: checksum type %d is newer than this checker knows", c->ck);
}

/* Footer (table/format.cc Footer::DecodeFrom). Sets c's format, checksum type and limit,
 * and the metaindex and (before format_version 6) index handles. */
static int check_footer(struct ctx *c, struct handle *meta, struct handle *index)
{
    static const unsigned char ext_magic[4] = { 0x3e, 0x00, 0x7a, 0x00 };
    unsigned char f[FOOTER_NEW] = { 0 }, z[FOOTER_NEW];
    const unsigned char *part2 = f; /* read_footer sets it when it returns 0 */
    int rc = read_footer(c, f, &part2);
    if (rc)
        return rc;
    int ext = memcmp(part2, ext_magic, 4) == 0;
    memcpy(z, f, FOOTER_NEW);
    memset(z + 5, 0, 4);
    if (c->fv >= 6 && ext && (c->ck > LATEST_CHECKSUM || c->fv > LATEST_FORMAT) &&
        (rc = footer_damaged_field(c, z, tb_get_le32(f + 9), tb_get_le32(f + 5))) != 0)
        return rc;
    if (c->fv > LATEST_FORMAT)
        return unchecked(c, c->footer_off, "cannot check: format_version %u is newer than this checker knows (%d)",
                         c->fv, LATEST_FORMAT);
    if (c->fv >= 6) {
        if ((rc = footer_v6(c, f, z, ext, meta, index)) != 0)
            return rc;
    } else {
        const unsigned char *p = part2, *end = part2 + 40;
        if (!(p = varint64(p, end, &meta->off)) || !(p = varint64(p, end, &meta->size)) ||
            !(p = varint64(p, end, &index->off)) || !(p = varint64(p, end, &index->size)))
            return damaged(c, c->footer_off, "footer's block handles do not parse");
    }
    return c->ck > LATEST_CHECKSUM ? unknown_checksum(c, meta) : 0;
}

/* Properties (meta_blocks.cc ReadTablePropertiesHelper): what the index looks like. */
static int check_properties(struct ctx *c, uint64_t off, uint64_t size)
{
    int rc = read_block(c, off, size, K_META, "properties");
    if (rc == TB_EVERIFY && c->read_off == off && c->read_len == size + TRAILER && c->buf[size] == 0) {
        /* An ingested file whose global sequence number RocksDB rewrote in place: retried
         * with that value zero, as RocksDB does. */
        struct iter it;
        if (iter_init(&it, c->buf, (size_t)size) == 0) {
            while (iter_next(&it, 0) == 1) {
                if (key_is(&it, "rocksdb.external_sst_file.global_seqno") && it.vlen == 8) {
                    unsigned char saved[8];
                    unsigned char *v = (unsigned char *)it.val;
                    memcpy(saved, v, 8);
                    memset(v, 0, 8);
                    uint32_t stored = tb_get_le32(c->buf + size + 1) - context_modifier(c->base, off);
                    if (stored == builtin_checksum(c->ck, c->buf, (size_t)size + 1)) {
                        memcpy(v, saved, 8);
                        tb_error_clear();
                        c->rep->verdict = TB_SST_OK;
                        c->rep->reason[0] = 0;
                        c->rep->meta_blocks++;
                        rc = cover(c, off, size + TRAILER);
                    }
                    memcpy(v, saved, 8);
                    break;
                }
            }
            free(it.key);
        }
    }
    if (rc)
        return rc;
    if (c->buf[size] != 0)
        return unchecked(c, off, "cannot check: the properties block is compressed (type 0x%02x)", c->buf[size]);
    struct iter it;
    if (iter_init(&it, c->buf, (size_t)size))
        return unchecked(c, off, "cannot check: the properties block has a layout this checker does not know");
    int r;
    while ((r = iter_next(&it, 0)) == 1) {
        uint64_t v;
        if (key_is(&it, "rocksdb.index.value.is.delta.encoded") && varint64(it.val, it.val + it.vlen, &v))
            c->delta = v != 0;
        else if (key_is(&it, "rocksdb.num.data.blocks") && varint64(it.val, it.val + it.vlen, &v))
            c->prop_data_blocks = v;
        else if (key_is(&it, "rocksdb.block.based.table.index.type") && it.vlen == 4)
            c->index_type = (int)tb_get_le32(it.val);
    }
    free(it.key);
    if (r)
        return unchecked(c, off, "cannot check: the properties block does not parse (its checksum is good)");
    return 0;
}

/* The metaindex block, verified, as a copy (checking the blocks it names reuses c->buf). */
static int read_metaindex(struct ctx *c, const struct handle *meta, unsigned char **mi)
{
    int rc = read_block(c, meta->off, meta->size, K_META, "metaindex");
    if (rc)
        return rc;
    if (c->buf[meta->size] != 0)
        return unchecked(c, meta->off, "cannot check: the metaindex block is compressed (type 0x%02x)",
                         c->buf[meta->size]);
    if (!(*mi = malloc(meta->size ? meta->size : 1)))
        return tb_error_set(TB_EIO, "out of memory checking %s", c->name);
    memcpy(*mi, c->buf, meta->size);
    return 0;
}

/* The next metaindex entry whose value is a block handle: 1, or 0 at the end (or at an
 * entry that does not parse, which the first pass reports). */
static int next_handle(struct iter *it, struct handle *h, int *r)
{
    const unsigned char *p, *end;
    if ((*r = iter_next(it, 0)) != 1)
        return 0;
    p = it->val;
    end = it->val + it->vlen;
    return (p = varint64(p, end, &h->off)) && varint64(p, end, &h->size);
}

/* Properties first: they say how index values are encoded. Without them (very old files)
 * RocksDB assumes a binary search index with full handles, and so do we. */
static int metaindex_properties(struct ctx *c, const unsigned char *mi, const struct handle *meta, struct handle *index)
{
    struct iter it;
    struct handle h;
    int r, rc = 0;
    if (iter_init(&it, mi, (size_t)meta->size))
        return unchecked(c, meta->off, "cannot check: the metaindex block has a layout this checker does not know");
    while (next_handle(&it, &h, &r)) {
        if (key_is(&it, "rocksdb.properties")) {
            if ((rc = check_properties(c, h.off, h.size)) < 0)
                break;
        } else if (key_is(&it, "rocksdb.index")) {
            *index = h;
        }
    }
    free(it.key);
    if (rc < 0)
        return rc;
    return r ? unchecked(c, meta->off, "cannot check: the metaindex entries do not parse (its checksum is good)") : 0;
}

static int check_index(struct ctx *c, const struct handle *meta, const struct handle *index)
{
    int rc;
    c->rep->index_type = c->index_type;
    c->rep->index_delta_encoded = c->delta;
    c->first_key = c->index_type == 3;
    if (c->index_type < 0 || c->index_type > 3)
        return unchecked(c, meta->off, "cannot check: index type %d is newer than this checker knows", c->index_type);
    if (index->off == UINT64_MAX)
        return damaged(c, meta->off, "the metaindex names no index block (format_version %u keeps it there)", c->fv);
    if ((rc = check_handles(c, index->off, index->size, K_INDEX, 0)) < 0)
        return rc;
    /* A safety net for our own parsing: an index read wrongly could name fewer blocks
     * and leave data unchecked while everything it did name checked out. */
    if (!c->unchecked_seen && c->prop_data_blocks != UINT64_MAX && c->prop_data_blocks != c->rep->data_blocks)
        unchecked(c, index->off, "cannot check: the index names %llu data blocks, the properties count %llu",
                  (unsigned long long)c->rep->data_blocks, (unsigned long long)c->prop_data_blocks);
    return rc;
}

/* Every other block the metaindex names. */
static int metaindex_others(struct ctx *c, const unsigned char *mi, const struct handle *meta)
{
    struct iter it;
    struct handle h;
    int r, rc = 0;
    if (iter_init(&it, mi, (size_t)meta->size))
        return 0;
    while (rc >= 0 && next_handle(&it, &h, &r)) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(it.klen < 60 ? it.klen : 60), (const char *)it.key);
        if (key_is(&it, "rocksdb.properties") || key_is(&it, "rocksdb.index"))
            continue;
        if (key_starts(&it, "partitionedfilter."))
            rc = check_handles(c, h.off, h.size, K_FILTER, 0);
        else if (key_starts(&it, "fullfilter.") || key_starts(&it, "filter."))
            rc = read_block(c, h.off, h.size, K_FILTER, name);
        else
            rc = read_block(c, h.off, h.size, K_META, name);
    }
    free(it.key);
    return rc < 0 ? rc : 0;
}

static int check(struct ctx *c)
{
    struct handle meta = { 0, 0 }, index = { UINT64_MAX, UINT64_MAX };
    unsigned char *mi = NULL;
    int rc;
    /* An index type we do not know leaves the index unchecked, not the other blocks. */
    if ((rc = check_footer(c, &meta, &index)) || (rc = read_metaindex(c, &meta, &mi)) ||
        (rc = metaindex_properties(c, mi, &meta, &index)) || (rc = check_index(c, &meta, &index)) < 0)
        goto cleanup;
    rc = metaindex_others(c, mi, &meta);
cleanup:
    free(mi);
    return rc;
}

/* Starts checking the file open on fd: rep (or local) zeroed, the file's size. */
static int ctx_start(struct ctx *c, int fd, const char *name, const char *kind, struct tb_sst_report *rep)
{
    struct stat st;
    memset(rep, 0, sizeof *rep);
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->name = name ? name : "(fd)";
    c->rep = rep;
    if (fstat(fd, &st) != 0)
        return tb_error_errno(TB_EIO, errno, "cannot stat %s file %s", kind, c->name);
    c->size = rep->file_size = (uint64_t)st.st_size;
    return 0;
}

/* What the verified checksums left uncovered. */
static void coverage(struct ctx *c)
{
    uint64_t end = 0, covered = 0;
    if (c->next)
        qsort(c->ext, c->next, sizeof *c->ext, cmp_extent);
    for (size_t i = 0; i < c->next; i++) {
        uint64_t a = c->ext[i].off, b = c->ext[i].off + c->ext[i].len;
        if (b <= end)
            continue;
        covered += b - (a > end ? a : end);
        end = b;
    }
    c->rep->bytes_checked = covered;
    c->rep->bytes_unchecked = c->size - covered;
}

int tb_sst_check_fd(int fd, const char *name, struct tb_sst_report *rep)
{
    struct tb_sst_report local;
    struct ctx c;
    int rc;
    if ((rc = ctx_start(&c, fd, name, "table", rep ? rep : &local)) < 0)
        return rc;
    c.prop_data_blocks = UINT64_MAX;
    rc = check(&c);
    if (rc == UNCHECKED)
        rc = 0;
    if (rc < 0)
        goto cleanup;
    if (c.unchecked_seen) {
        c.rep->verdict = TB_SST_UNCHECKED;
    } else if (c.ck == TB_SST_CK_NONE) {
        /* kNoChecksum: every trailer must hold 0 (plus the context), which held, so nothing
         * was wrong, but nothing was really verified either. */
        c.rep->verdict = TB_SST_UNCHECKED;
        snprintf(c.rep->reason, sizeof c.rep->reason,
                 "cannot check: the table was written without checksums (checksum type none)");
    }
    coverage(&c);
cleanup:
    free(c.ext);
    free(c.buf);
    return rc;
}

/* Opens path and checks it with check_fd; kind names it in messages. */
static int check_path_with(const char *path, struct tb_sst_report *rep, const char *kind,
                           int (*check_fd)(int, const char *, struct tb_sst_report *))
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (rep)
            memset(rep, 0, sizeof *rep);
        return tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot open %s file %s", kind, path);
    }
    int rc = check_fd(fd, path, rep);
    close(fd);
    return rc;
}

int tb_sst_check_file(const char *path, struct tb_sst_report *rep)
{
    return check_path_with(path, rep, "table", tb_sst_check_fd);
}

/* ---- blob files (db/blob/blob_log_format.h) ---- */

#define BLOB_MAGIC 0x00248f37u
#define BLOB_HEADER 30
#define BLOB_RECORD_HEADER 32
#define BLOB_FOOTER 32
#define BLOB_BUF (1u << 20)

/* Sequential reads through one bounded buffer. */
struct breader {
    struct ctx *c;
    unsigned char *buf;
    uint64_t at; /* file offset of buf[0] */
    size_t len;
};

/* Points *p at n (<= BLOB_BUF) bytes from off. */
static int bget(struct breader *r, uint64_t off, size_t n, const unsigned char **p)
{
    if (off < r->at || off + n > r->at + r->len) {
        uint64_t left = r->c->size - off;
        size_t want = left < BLOB_BUF ? (size_t)left : BLOB_BUF;
        int rc = read_at(r->c, r->buf, want, off);
        if (rc)
            return rc;
        r->at = off;
        r->len = want;
    }
    *p = r->buf + (off - r->at);
    return 0;
}

/* The blob file header: 0, or UNCHECKED for a version this checker does not know. */
static int blob_header(struct breader *r)
{
    struct ctx *c = r->c;
    const unsigned char *p;
    int rc;
    if (c->size < BLOB_HEADER)
        return damaged(c, 0, "%llu bytes is too short for a blob file (truncated?)", (unsigned long long)c->size);
    if ((rc = bget(r, 0, BLOB_HEADER, &p)))
        return rc;
    if (tb_get_le32(p) != BLOB_MAGIC)
        return damaged(c, 0, "no blob file magic number at the start");
    /* RocksDB itself knows only version 1 and calls anything else corrupt; a future
     * version is not ours to call damaged. */
    if (tb_get_le32(p + 4) != 1)
        return unchecked(c, 4, "cannot check: blob file version %u (this checker knows 1)", tb_get_le32(p + 4));
    return 0;
}

/* The footer, when the BLOB_FOOTER bytes at off are one: 1 when it checks out. */
static int blob_footer(struct breader *r, uint64_t off, uint64_t records)
{
    struct ctx *c = r->c;
    const unsigned char *p;
    int rc;
    if ((rc = bget(r, off, BLOB_FOOTER, &p)))
        return rc;
    if (tb_get_le32(p) != BLOB_MAGIC)
        return 0;
    uint32_t stored = tb_get_le32(p + 28), computed = tb_crc32c_mask(tb_crc32c(0, p, 28));
    if (stored != computed)
        return damaged(c, off, "blob file footer: crc32c mismatch (stored %08x, computed %08x)", stored, computed);
    if (tb_get_le64(p + 4) != records)
        return damaged(c, off, "blob file footer counts %llu blobs, the file holds %llu",
                       (unsigned long long)tb_get_le64(p + 4), (unsigned long long)records);
    return 1;
}

/* The record at *off (header, key and value, each under its CRC32C); *off moves past it. */
static int blob_record(struct breader *r, uint64_t *off)
{
    struct ctx *c = r->c;
    const unsigned char *p;
    uint64_t left = c->size - *off;
    int rc;
    if (left < BLOB_RECORD_HEADER)
        return damaged(c, *off, "blob record header cut short (%llu bytes left): truncated", (unsigned long long)left);
    if ((rc = bget(r, *off, BLOB_RECORD_HEADER, &p)))
        return rc;
    uint32_t stored = tb_get_le32(p + 24), computed = tb_crc32c_mask(tb_crc32c(0, p, 24));
    if (stored != computed)
        return damaged(c, *off, "blob record header: crc32c mismatch (stored %08x, computed %08x)", stored, computed);
    uint64_t klen = tb_get_le64(p), vlen = tb_get_le64(p + 8);
    uint32_t blob_crc = tb_get_le32(p + 28), crc = 0;
    left -= BLOB_RECORD_HEADER;
    if (klen > left || vlen > left - klen)
        return damaged(c, *off, "blob record of %llu+%llu bytes runs past the end of the file: truncated",
                       (unsigned long long)klen, (unsigned long long)vlen);
    /* key and value, in pieces no larger than the buffer */
    uint64_t at = *off + BLOB_RECORD_HEADER, todo = klen + vlen;
    while (todo > 0) {
        size_t n = todo < BLOB_BUF ? (size_t)todo : BLOB_BUF;
        if ((rc = bget(r, at, n, &p)))
            return rc;
        crc = tb_crc32c(crc, p, n);
        at += n;
        todo -= n;
    }
    if (tb_crc32c_mask(crc) != blob_crc)
        return damaged(c, *off, "blob record (key %llu bytes, value %llu bytes): crc32c mismatch",
                       (unsigned long long)klen, (unsigned long long)vlen);
    *off = at;
    return 0;
}

/* Every record, up to the footer. */
static int blob_records(struct breader *r)
{
    struct ctx *c = r->c;
    uint64_t off = BLOB_HEADER, records = 0;
    int rc, footer = 0;
    while (off < c->size) {
        if ((rc = tb_error_check_interrupt()))
            return rc;
        if (c->size - off == BLOB_FOOTER && (footer = rc = blob_footer(r, off, records)) != 0) {
            if (rc < 0)
                return rc;
            break;
        }
        if ((rc = blob_record(r, &off)))
            return rc;
        records++;
    }
    c->rep->blob_records = records;
    if (!footer)
        unchecked(c, off, "cannot check: blob file has no footer (still being written, or cut at a record boundary)");
    c->rep->bytes_checked = c->size - BLOB_HEADER;
    c->rep->bytes_unchecked = BLOB_HEADER;
    return 0;
}

int tb_sst_check_blob_fd(int fd, const char *name, struct tb_sst_report *rep)
{
    struct tb_sst_report local;
    struct ctx c;
    struct breader r = { .c = &c };
    int rc;
    if ((rc = ctx_start(&c, fd, name, "blob", rep ? rep : &local)) < 0)
        return rc;
    c.rep->checksum_type = TB_SST_CK_CRC32C;
    if (!(r.buf = malloc(BLOB_BUF)))
        return tb_error_set(TB_EIO, "out of memory checking %s", c.name);
    if ((rc = blob_header(&r)) == 0)
        rc = blob_records(&r);
    if (rc == UNCHECKED)
        rc = 0;
    if (rc == 0 && c.unchecked_seen)
        c.rep->verdict = TB_SST_UNCHECKED;
    free(r.buf);
    return rc;
}

int tb_sst_check_blob_file(const char *path, struct tb_sst_report *rep)
{
    return check_path_with(path, rep, "blob", tb_sst_check_blob_fd);
}

int tb_sst_check_path(const char *path, struct tb_sst_report *rep)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".blob") == 0)
        return tb_sst_check_blob_file(path, rep);
    return tb_sst_check_file(path, rep);
}

int tb_sst_footer_version(const char *path, uint32_t *fv)
{
    unsigned char tail[12];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    *fv = 0;
    if (fd < 0)
        return tb_error_errno(TB_EIO, errno, "cannot open %s", path);
    if (fstat(fd, &st) < 0)
        rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", path);
    else if (st.st_size >= 12 && pread(fd, tail, 12, st.st_size - 12) != 12)
        rc = tb_error_errno(TB_EIO, errno, "cannot read the footer of %s", path);
    else if (st.st_size >= 12 && tb_get_le64(tail + 4) == MAGIC_BBT)
        *fv = tb_get_le32(tail);
    close(fd);
    return rc;
}
