/* test_sstcheck: table files written by RocksDB 7.8 (every checksum type, format_version 2-5,
 * compressions, partitioned index and filters) verify; one damaged byte anywhere, a truncation
 * or a misplaced block is reported with its offset; synthetic format_version 6/7 files built
 * by hand after RocksDB 9's table/format.cc verify and fail the same way. */
#include "tap.h"
#include "content.h"
#include "crc32c.h"
#include "error.h"
#include "sstcheck.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>
#include <rocksdb/c.h>
#include <xxhash.h>

/* tmpfs where there is one: the test writes ~170 small files, each fsynced by RocksDB. */
static char dir[] = "/dev/shm/test_sstcheck.XXXXXX";

struct cfg {
    int ck; /* checksum type */
    int fv; /* format_version */
    int comp; /* rocksdb_*_compression */
    int two_level; /* partitioned index + partitioned filters */
    int restart; /* index_block_restart_interval (> 1: delta-encoded index values) */
    int dict; /* zstd dictionary (a compression_dict meta block) */
    int itype; /* otherwise: 1 hash index (prefix extractor), 3 binary search with first key */
};

static const char *comp_name(int c)
{
    return c == 0 ? "none" : c == 1 ? "snappy" : c == 2 ? "zlib" : c == 4 ? "lz4" : c == 7 ? "zstd" : "?";
}

static void describe(char *buf, size_t n, const struct cfg *g)
{
    snprintf(buf, n, "%s fv%d %s %s restart %d%s", tb_sst_checksum_name(g->ck), g->fv, comp_name(g->comp),
             g->two_level ? "partitioned" : "binary", g->restart, g->dict ? " dict" : "");
}

static rocksdb_options_t *table_options(const struct cfg *g, rocksdb_block_based_table_options_t **bbo_out)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *bbo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_checksum(bbo, (char)g->ck);
    rocksdb_block_based_options_set_format_version(bbo, g->fv);
    rocksdb_block_based_options_set_block_size(bbo, 1024);
    rocksdb_block_based_options_set_index_block_restart_interval(bbo, g->restart);
    rocksdb_block_based_options_set_filter_policy(bbo, rocksdb_filterpolicy_create_bloom_full(10));
    if (g->two_level) {
        rocksdb_block_based_options_set_index_type(bbo, rocksdb_block_based_table_index_type_two_level_index_search);
        rocksdb_block_based_options_set_partition_filters(bbo, 1);
        rocksdb_block_based_options_set_metadata_block_size(bbo, 128);
    }
    if (g->itype) {
        /* The C API's enum stops at 2; the option takes RocksDB's IndexType value. */
        rocksdb_block_based_options_set_index_type(bbo, g->itype);
        if (g->itype == 1)
            rocksdb_options_set_prefix_extractor(o, rocksdb_slicetransform_create_fixed_prefix(6));
    }
    rocksdb_options_set_block_based_table_factory(o, bbo);
    rocksdb_options_set_compression(o, g->comp);
    if (g->dict) {
        rocksdb_options_set_compression_options(o, -14, 3, 0, 4096);
        rocksdb_options_set_compression_options_zstd_max_train_bytes(o, 65536);
    }
    *bbo_out = bbo;
    return o;
}

static void value_for(char *v, size_t n, unsigned i)
{
    snprintf(v, n, "value %u of a table written to be checked, %u, %u", i, i * 7919u % 1000, i % 13);
}

/* An SST written by SstFileWriter: nkeys puts and a range deletion. */
static int make_sst(const char *path, const struct cfg *g, unsigned nkeys)
{
    rocksdb_block_based_table_options_t *bbo;
    rocksdb_options_t *o = table_options(g, &bbo);
    rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
    rocksdb_sstfilewriter_t *w = rocksdb_sstfilewriter_create(eo, o);
    char *err = NULL;
    rocksdb_sstfilewriter_open(w, path, &err);
    for (unsigned i = 0; !err && i < nkeys; i++) {
        char k[32], v[128];
        snprintf(k, sizeof k, "key%08u", i);
        value_for(v, sizeof v, i);
        rocksdb_sstfilewriter_put(w, k, strlen(k), v, strlen(v), &err);
    }
    if (!err)
        rocksdb_sstfilewriter_delete_range(w, "key00000010", 11, "key00000020", 11, &err);
    if (!err)
        rocksdb_sstfilewriter_finish(w, &err);
    int rc = 0;
    if (err) {
        diag("sstfilewriter: %s", err);
        free(err);
        rc = -1;
    }
    rocksdb_sstfilewriter_destroy(w);
    rocksdb_envoptions_destroy(eo);
    rocksdb_options_destroy(o);
    rocksdb_block_based_options_destroy(bbo);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Checks bytes through an in-memory file, so thousands of damaged variants cost no disk. */
static int check_buf(const unsigned char *b, size_t n, struct tb_sst_report *rep)
{
    int fd = memfd_create("sstcheck", MFD_CLOEXEC);
    if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n)) {
        if (fd >= 0)
            close(fd);
        return -100;
    }
    int rc = tb_sst_check_fd(fd, "scratch.sst", rep);
    close(fd);
    return rc;
}

/* Which kinds of block a flip was found in: each must come up in the sweep. */
static const char *kinds[] = { "data block (",
                               "top-level index",
                               "index partition",
                               "(index,",
                               "partitioned filter index",
                               "filter partition",
                               "fullfilter.",
                               "properties",
                               "metaindex",
                               "rocksdb.range_del",
                               "rocksdb.compression_dict",
                               "footer" };
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* Flips bytes all over the file (every stride-th byte, xor 0xff, and a single bit at the
 * positions in between, plus every byte of the footer): each must be reported damaged, with
 * the flipped byte inside the block the report names, except the footer's padding before
 * format_version 6 (no checksum covers it, RocksDB ignores it too). */
static void sweep(const char *label, const unsigned char *orig, size_t n, int fv, const char *const *want, int nwant)
{
    int seen[NKINDS] = { 0 };
    size_t tried = 0, missed = 0, padding = 0, misplaced = 0;
    size_t footer_len = fv == 0 ? 48 : 53, footer_off = n - footer_len;
    /* End of the two varint handles in the footer of format_version < 6: padding after. */
    size_t pad_from = n, pad_to = n;
    if (fv < 6) {
        const unsigned char *p = orig + footer_off + (fv ? 1 : 0);
        int handles = 0;
        while (handles < 4) {
            if (!(*p++ & 0x80))
                handles++;
        }
        pad_from = (size_t)(p - orig);
        pad_to = footer_off + (fv ? 41 : 40);
    }
    /* An SstFileWriter file's global sequence number: RocksDB's ingestion may rewrite those
     * 8 bytes in place without fixing the checksum, so RocksDB (and we) check the properties
     * block with them zero when it fails otherwise: whatever they hold is accepted. */
    size_t gs_from = n, gs_to = n;
    const char *gs = "external_sst_file.global_seqno";
    const unsigned char *g = memmem(orig, n, gs, strlen(gs));
    if (g) {
        gs_from = (size_t)(g - orig) + strlen(gs);
        gs_to = gs_from + 8;
    }
    size_t seqno = 0;
    /* Every byte of the file's tail (the index, filters and meta blocks lie there), every
     * stride-th one before it. */
    size_t stride = n / 500 + 1, tail = n > 4000 ? n - 4000 : 0;
    int fd = memfd_create("sweep", MFD_CLOEXEC);
    if (fd < 0 || write(fd, orig, n) != (ssize_t)n) {
        ok(0, "%s: memfd", label);
        return;
    }
    for (size_t pos = 0; pos < n; pos++) {
        int full = pos % stride == 0 || pos >= tail, bit = pos % stride == stride / 2 && pos < tail;
        if (!full && !bit && pos < footer_off)
            continue;
        unsigned char mask = full || pos >= footer_off ? 0xff : (unsigned char)(1u << (pos % 8));
        unsigned char flipped = orig[pos] ^ mask;
        struct tb_sst_report rep;
        int rc = pwrite(fd, &flipped, 1, (off_t)pos) == 1 ? tb_sst_check_fd(fd, "sweep.sst", &rep) : -100;
        if (pwrite(fd, orig + pos, 1, (off_t)pos) != 1)
            rc = -100;
        tried++;
        if (pos >= gs_from && pos < gs_to) {
            seqno++;
            if (rc != 0 || rep.verdict != TB_SST_OK) {
                missed++;
                diag("%s: flip in the global seqno at %zu: rc %d %s", label, pos, rc, rep.reason);
            }
            continue;
        }
        if (pos >= pad_from && pos < pad_to) {
            padding++;
            if (rc != 0 || rep.verdict != TB_SST_OK) {
                missed++;
                diag("%s: flip in footer padding at %zu: rc %d %s", label, pos, rc, rep.reason);
            }
            continue;
        }
        if (rc != TB_EVERIFY || rep.verdict != TB_SST_DAMAGED) {
            if (missed++ < 5)
                diag("%s: flip at %zu (of %zu) not reported: rc %d verdict %s: %s", label, pos, n, rc,
                     tb_sst_verdict_name(rep.verdict), rep.reason);
            continue;
        }
        /* The damaged block is the one the report names: at rep.offset, holding pos. */
        if (pos < footer_off && (rep.offset > pos || pos - rep.offset > 70000)) {
            if (misplaced++ < 3)
                diag("%s: flip at %zu reported at offset %llu: %s", label, pos, (unsigned long long)rep.offset,
                     rep.reason);
        }
        for (size_t k = 0; k < NKINDS; k++)
            if (strstr(rep.reason, kinds[k]))
                seen[k] = 1;
    }
    ok(missed == 0 && misplaced == 0,
       "%s: %zu one-byte flips, every one reported damaged at its block "
       "(but %zu in the footer's padding, %zu in the ingestion's global seqno: ok, as RocksDB)",
       label, tried, padding, seqno);
    for (int w = 0; w < nwant; w++) {
        int found = 0;
        for (size_t k = 0; k < NKINDS; k++)
            if (strcmp(kinds[k], want[w]) == 0)
                found = seen[k];
        ok(found, "%s: a flip in a %s was found", label, want[w]);
    }
    close(fd);
}

static void truncations(const char *label, const unsigned char *orig, size_t n)
{
    size_t cuts[] = { 0, 1, 20, 47, 48, 52, 53, 54, n / 3, n / 2, n - 60, n - 53, n - 48, n - 8, n - 1 };
    int bad = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        struct tb_sst_report rep;
        int rc = check_buf(orig, cuts[i], &rep);
        if (rc != TB_EVERIFY || rep.verdict != TB_SST_DAMAGED) {
            bad++;
            diag("%s: truncated to %zu: rc %d %s", label, cuts[i], rc, rep.reason);
        }
    }
    /* Bytes appended after the footer hide it the same way. */
    unsigned char *longer = malloc(n + 100);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 100);
    struct tb_sst_report rep;
    int rc = check_buf(longer, n + 100, &rep);
    free(longer);
    if (rc != TB_EVERIFY)
        bad++;
    ok(bad == 0, "%s: every truncation and an extension are reported damaged", label);
}

/* ---- synthetic format_version 6/7 files ----
 * RocksDB 7.8 cannot write format_version >= 6. These files are SYNTHETIC: built here by
 * hand, byte for byte as RocksDB 9.0's table/format.cc (FooterBuilder::Build,
 * ComputeBuiltinChecksumWithLastByte, ChecksumModifierForContext) and
 * block_based_table_builder.cc (WriteMaybeCompressedBlock, metaindex "rocksdb.index") lay
 * them out, with checksum code written again here from format.cc rather than shared with
 * the checker. */

static uint32_t syn_checksum(int type, const unsigned char *p, size_t n)
{
    switch (type) {
    case 1: return tb_crc32c_mask(tb_crc32c(0, p, n));
    case 2: return XXH32(p, n, 0);
    case 3: return (uint32_t)XXH64(p, n, 0);
    case 4: {
        if (n == 0)
            return 0;
        uint32_t v = (uint32_t)XXH3_64bits(p, n - 1);
        return v ^ (uint32_t)p[n - 1] * 0x6b9083d9u;
    }
    default: return 0;
    }
}

static uint32_t syn_modifier(uint32_t base, uint64_t off)
{
    uint32_t all = 0u - (uint32_t)(base != 0);
    return (base ^ ((uint32_t)off + (uint32_t)(off >> 32))) & all;
}

struct syn {
    unsigned char b[8192];
    size_t n;
    int ck;
    uint32_t base;
    uint64_t off[3], size[3]; /* index, properties, metaindex */
};

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (unsigned char)v;
    return i;
}

/* Appends block contents with their trailer; returns the block's offset. */
static uint64_t syn_block(struct syn *s, const unsigned char *data, size_t len, unsigned char comp)
{
    uint64_t off = s->n;
    memcpy(s->b + s->n, data, len);
    s->b[s->n + len] = comp;
    uint32_t c = syn_checksum(s->ck, s->b + s->n, len + 1) + syn_modifier(s->base, off);
    put32(s->b + s->n + len + 1, c);
    s->n += len + 5;
    return off;
}

/* A block of key/value entries, restart interval 1 (as the metaindex and properties). */
static size_t syn_entries(unsigned char *out, const char *const *keys, const unsigned char *const *vals,
                          const size_t *vlens, int n)
{
    size_t o = 0;
    uint32_t restarts[16];
    for (int i = 0; i < n; i++) {
        restarts[i] = (uint32_t)o;
        o += put_varint(out + o, 0);
        o += put_varint(out + o, strlen(keys[i]));
        o += put_varint(out + o, vlens[i]);
        memcpy(out + o, keys[i], strlen(keys[i]));
        o += strlen(keys[i]);
        memcpy(out + o, vals[i], vlens[i]);
        o += vlens[i];
    }
    for (int i = 0; i < n; i++) {
        put32(out + o, restarts[i]);
        o += 4;
    }
    put32(out + o, (uint32_t)n);
    return o + 4;
}

static size_t syn_handle(unsigned char *out, uint64_t off, uint64_t size)
{
    size_t n = put_varint(out, off);
    return n + put_varint(out + n, size);
}

/* Two data blocks, an index (compressed with index_comp: 0 none, 4 LZ4, 3 "bzip2" (bytes we
 * cannot decompress)), properties, metaindex naming the index, and the new footer. */
static void syn_build(struct syn *s, int ck, uint32_t fv, uint32_t base, unsigned char index_comp)
{
    memset(s, 0, sizeof *s);
    s->ck = ck;
    s->base = base;
    unsigned char d1[300], d2[200];
    for (size_t i = 0; i < sizeof d1; i++)
        d1[i] = (unsigned char)(i * 13 + 1);
    for (size_t i = 0; i < sizeof d2; i++)
        d2[i] = (unsigned char)(i * 7 + 5);
    uint64_t o1 = syn_block(s, d1, sizeof d1, 0);
    uint64_t o2 = syn_block(s, d2, sizeof d2, 0);

    unsigned char h1[20], h2[20], idx[256];
    size_t l1 = syn_handle(h1, o1, sizeof d1), l2 = syn_handle(h2, o2, sizeof d2);
    const char *ik[] = { "key1", "key2" };
    const unsigned char *iv[] = { h1, h2 };
    size_t il[] = { l1, l2 };
    size_t idxlen = syn_entries(idx, ik, iv, il, 2);
    uint64_t oi;
    size_t isize;
    if (index_comp == 4) {
        unsigned char z[512];
        size_t p = put_varint(z, idxlen);
        int c = LZ4_compress_default((const char *)idx, (char *)z + p, (int)idxlen, (int)(sizeof z - p));
        isize = p + (size_t)c;
        oi = syn_block(s, z, isize, 4);
    } else {
        isize = idxlen;
        oi = syn_block(s, idx, isize, index_comp);
    }
    s->off[0] = oi;
    s->size[0] = isize;

    unsigned char props[256], itype[4] = { 0, 0, 0, 0 }, delta[1] = { 0 };
    const char *pk[] = { "rocksdb.block.based.table.index.type", "rocksdb.index.value.is.delta.encoded" };
    const unsigned char *pv[] = { itype, delta };
    size_t pl[] = { 4, 1 };
    size_t plen = syn_entries(props, pk, pv, pl, 2);
    uint64_t op = syn_block(s, props, plen, 0);
    s->off[1] = op;
    s->size[1] = plen;

    unsigned char hi[20], hp[20], meta[256];
    size_t lhi = syn_handle(hi, oi, isize), lhp = syn_handle(hp, op, plen);
    const char *mk[] = { "rocksdb.index", "rocksdb.properties" };
    const unsigned char *mv[] = { hi, hp };
    size_t ml[] = { lhi, lhp };
    size_t mlen = syn_entries(meta, mk, mv, ml, 2);
    s->off[2] = syn_block(s, meta, mlen, 0);
    s->size[2] = mlen;

    /* Footer: checksum type; extended magic; checksum (zero while computed); base context
     * checksum; metaindex size; 24 zero bytes; format_version; magic. */
    uint64_t fo = s->n;
    unsigned char *f = s->b + fo;
    f[0] = (unsigned char)ck;
    f[1] = 0x3e;
    f[2] = 0x00;
    f[3] = 0x7a;
    f[4] = 0x00;
    put32(f + 5, 0);
    put32(f + 9, base);
    put32(f + 13, (uint32_t)mlen);
    memset(f + 17, 0, 24);
    put32(f + 41, fv);
    uint64_t magic = 0x88e241b785f4cff7ull;
    for (int i = 0; i < 8; i++)
        f[45 + i] = (unsigned char)(magic >> (8 * i));
    put32(f + 5, syn_checksum(ck, f, 53) + syn_modifier(base, fo));
    s->n += 53;
}

/* Rewrites a block of a synthetic file in place and gives it a good checksum again. */
static void syn_reseal(struct syn *s, int which)
{
    uint64_t off = s->off[which];
    size_t len = (size_t)s->size[which];
    put32(s->b + off + len + 1, syn_checksum(s->ck, s->b + off, len + 1) + syn_modifier(s->base, off));
}

/* Blocks whose checksums are good but whose contents are garbage (as a format we do not know
 * would look): never a crash or a hang; the metaindex, properties or index then do not parse
 * (unchecked) or name blocks that are not there (damaged). */
static void syn_fuzz(void)
{
    unsigned seed = 12345;
    int ran = 0, ok_runs = 0;
    for (int round = 0; round < 600; round++) {
        struct syn s;
        syn_build(&s, 1 + round % 4, 6 + round % 2, 0x1000u + (unsigned)round, 0);
        int which = round % 3;
        int nbytes = 1 + round % 7;
        for (int k = 0; k < nbytes; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % s.size[which];
            seed = seed * 1103515245u + 12345u;
            s.b[s.off[which] + pos] = (unsigned char)(seed >> 16);
        }
        syn_reseal(&s, which);
        struct tb_sst_report rep;
        int rc = check_buf(s.b, s.n, &rep);
        ran++;
        if ((rc == 0 && (rep.verdict == TB_SST_OK || rep.verdict == TB_SST_UNCHECKED)) || rc == TB_EVERIFY)
            ok_runs++;
        else
            diag("fuzz round %d: rc %d %s", round, rc, rep.reason);
    }
    ok(ran == ok_runs,
       "%d synthetic files with garbage in checksummed index, properties or metaindex blocks: each judged, none "
       "crashed",
       ran);
}

/* 1 when tb_content_of (rc, c) says the content is unavailable for a format 7 table. */
static int unavailable_for_v7(int rc, const struct tb_content *c)
{
    return rc == 0 && c->unavailable &&
        strstr(c->unavailable, "has format_version 7, which the linked RocksDB cannot read");
}

/* What tb_content_of came to, for a test's line. */
static const char *outcome(int rc, const struct tb_content *c)
{
    return rc ? tb_error_last() : c->unavailable ? c->unavailable : "a hash";
}

/* A table the checker vouches for (a synthetic format_version 7 file, as RocksDB 11
 * writes by default) that the linked RocksDB 7.8 cannot read: the content is unavailable,
 * saying why; no open is tried. Before, a table that checked out was never asked its
 * format_version, and a RocksDB 11 database failed its backup with 7.8's "Unsupported
 * BlockBasedTable format_version". */
static void content_of_newer_table(void)
{
    char db[300], scratch[300], sst[320], *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    struct tb_content c = { 0 };
    struct tb_content_opts co = { .policy = TB_POLICY_COMMITTED, .in_place = 1 };
    struct syn s;
    rocksdb_t *h;
    FILE *f;
    int rc;
    snprintf(db, sizeof db, "%s/fv7db", dir);
    snprintf(scratch, sizeof scratch, "%s/fv7scratch", dir);
    rocksdb_options_set_create_if_missing(o, 1);
    h = rocksdb_open(o, db, &err);
    if (h && !err)
        rocksdb_put(h, wo, "k", 1, "v", 1, &err);
    if (h && !err)
        rocksdb_flush(h, fo, &err);
    if (h)
        rocksdb_close(h);
    ok(!err, "a database with one table%s%s", err ? ": " : "", err ? err : "");
    free(err);
    /* Its one table (the first the flush numbered: 000009.sst in 7.8) becomes an fv 7 one. */
    syn_build(&s, 4, 7, 0x1234567u, 0);
    for (int n = 1; n < 64; n++) {
        struct stat st;
        snprintf(sst, sizeof sst, "%s/%06d.sst", db, n);
        if (stat(sst, &st) == 0)
            break;
    }
    f = fopen(sst, "w");
    ok(f && fwrite(s.b, 1, s.n, f) == s.n && fclose(f) == 0, "%s replaced by a synthetic format_version 7 table", sst);
    co.scratch = scratch;
    rc = tb_content_of(db, &co, &c);
    ok(unavailable_for_v7(rc, &c), "content unavailable, saying why (rc %d: %s)", rc, outcome(rc, &c));
    ok(c.tables_checked == 1 && c.tables_unchecked == 0,
       "the table itself checked by its checksums (%zu checked, %zu not)", c.tables_checked, c.tables_unchecked);
    tb_content_clear(&c);
    /* A full verify's copy (files proven by their SHA-256): only the footers are read, and
     * the format still makes the content unavailable. */
    co.files_verified = 1;
    rc = tb_content_of(db, &co, &c);
    ok(unavailable_for_v7(rc, &c), "with files_verified too (rc %d: %s)", rc, outcome(rc, &c));
    ok(c.tables_checked == 0 && c.tables_unchecked == 0, "and no table read block by block (%zu checked, %zu not)",
       c.tables_checked, c.tables_unchecked);
    tb_content_clear(&c);
    rocksdb_options_destroy(o);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_flushoptions_destroy(fo);
}

static void synthetic_tests(void)
{
    syn_fuzz();
    for (int ck = 1; ck <= 4; ck++) {
        for (uint32_t fv = 6; fv <= 7; fv++) {
            struct syn s;
            char label[96];
            snprintf(label, sizeof label, "synthetic fv%u %s", fv, tb_sst_checksum_name(ck));
            syn_build(&s, ck, fv, 0x9e3779b9u * (uint32_t)ck + fv, fv == 7 ? 4 : 0);
            struct tb_sst_report rep;
            int rc = check_buf(s.b, s.n, &rep);
            ok(rc == 0 && rep.verdict == TB_SST_OK && rep.data_blocks == 2 && rep.index_blocks == 1 &&
                   rep.bytes_unchecked == 0,
               "%s (index %s): ok, 2 data blocks, every byte under a checksum (rc %d, %s %s, %llu data, %llu "
               "unchecked)",
               label, fv == 7 ? "LZ4" : "plain", rc, tb_sst_verdict_name(rep.verdict), rep.reason,
               (unsigned long long)rep.data_blocks, (unsigned long long)rep.bytes_unchecked);
            /* Every byte of such a file is under a checksum, the footer's included. */
            size_t missed = 0;
            for (size_t pos = 0; pos < s.n; pos++) {
                s.b[pos] ^= 0xff;
                rc = check_buf(s.b, s.n, &rep);
                s.b[pos] ^= 0xff;
                if (rc != TB_EVERIFY && missed++ < 3)
                    diag("%s: flip at %zu: rc %d %s", label, pos, rc, rep.reason);
            }
            ok(missed == 0, "%s: a flip of any of its %zu bytes is reported damaged", label, s.n);
        }
    }

    /* A block from another file (another base context checksum) at the same offset: its
     * plain checksum is right, its context is not. RocksDB 7.8's formats cannot tell. */
    struct syn s, other;
    struct tb_sst_report rep;
    syn_build(&s, 4, 6, 0x12345678u, 0);
    syn_build(&other, 4, 6, 0x87654321u, 0);
    memcpy(s.b, other.b, 305);
    int rc = check_buf(s.b, s.n, &rep);
    ok(rc == TB_EVERIFY && rep.offset == 0,
       "synthetic fv6: a block copied from another file is damaged at offset 0 (%s)", rep.reason);

    /* The same block bytes written at another offset: only the context modifier differs. */
    {
        struct syn a;
        syn_build(&a, 1, 6, 0xabcdef01u, 0);
        uint32_t stored = (uint32_t)a.b[301] | (uint32_t)a.b[302] << 8 | (uint32_t)a.b[303] << 16 |
            (uint32_t)a.b[304] << 24;
        put32(a.b + 301, stored - syn_modifier(0xabcdef01u, 0) + syn_modifier(0xabcdef01u, 4096));
        rc = check_buf(a.b, a.n, &rep);
        ok(rc == TB_EVERIFY && rep.offset == 0 && strstr(rep.reason, "without context"),
           "synthetic fv6: a block whose checksum carries another offset's context is damaged (%s)", rep.reason);
    }

    /* A newer format_version (8) with a good footer checksum: not ours to judge. */
    syn_build(&s, 4, 8, 0x55aa55aau, 0);
    rc = check_buf(s.b, s.n, &rep);
    ok(rc == 0 && rep.verdict == TB_SST_UNCHECKED && strstr(rep.reason, "format_version 8"),
       "synthetic fv8: unchecked, newer format_version (%s)", rep.reason);
    /* A footer whose format_version byte was damaged (7 -> 8): the footer checks out with 7. */
    syn_build(&s, 4, 7, 0x55aa55aau, 0);
    s.b[s.n - 12] = 8;
    rc = check_buf(s.b, s.n, &rep);
    ok(rc == TB_EVERIFY && strstr(rep.reason, "format_version"),
       "synthetic fv7 with its format_version byte damaged to 8: damaged (%s)", rep.reason);
    /* A newer checksum type (5), its footer checksum made by an algorithm we do not know. */
    syn_build(&s, 4, 6, 0x55aa55aau, 0);
    s.b[s.n - 53] = 5;
    put32(s.b + s.n - 48, 0x01020304u);
    rc = check_buf(s.b, s.n, &rep);
    ok(rc == 0 && rep.verdict == TB_SST_UNCHECKED && strstr(rep.reason, "checksum type 5"),
       "synthetic fv6, checksum type 5: unchecked (%s)", rep.reason);
    /* An index compressed with an algorithm not linked here: unchecked, not damaged. */
    syn_build(&s, 1, 6, 0x55aa55aau, 3);
    rc = check_buf(s.b, s.n, &rep);
    ok(rc == 0 && rep.verdict == TB_SST_UNCHECKED && strstr(rep.reason, "bzip2"),
       "synthetic fv6, bzip2 index: unchecked (%s)", rep.reason);
    /* Reserved footer bytes set: a future feature, RocksDB says NotSupported. */
    syn_build(&s, 2, 6, 0x55aa55aau, 0);
    {
        unsigned char *f = s.b + s.n - 53;
        f[40] = 1;
        put32(f + 5, 0);
        put32(f + 5, syn_checksum(2, f, 53) + syn_modifier(0x55aa55aau, s.n - 53));
    }
    rc = check_buf(s.b, s.n, &rep);
    ok(rc == 0 && rep.verdict == TB_SST_UNCHECKED, "synthetic fv6, reserved footer bytes set: unchecked (%s)",
       rep.reason);
    truncations("synthetic fv6", s.b, s.n);
}

static void blob_sweep(const char *label, const unsigned char *orig, size_t n);

/* Real files of newer RocksDBs: tests/unit/vectors/sst/ holds format_version 6 and 7 tables
 * and a blob file written by RocksDB 10.5.1 (gen-newer-rocksdb.js says how), and a format 6
 * table with a ZSTD-compressed index and a dictionary by RocksDB 9.7.4 (gen-rocksdb9.js). */
static void newer_rocksdb_tests(void)
{
    static const char *const want[] = { "data block (", "(index,",           "fullfilter.", "properties",
                                        "metaindex",    "rocksdb.range_del", "footer" };
    static const char *const want_dict[] = { "data block (", "(index,",   "fullfilter.",
                                             "properties",   "metaindex", "rocksdb.compression_dict",
                                             "footer" };
    static const struct {
        const char *file, *by;
        int fv;
    } v[] = {
        { "fv6-xxh3.sst", "RocksDB 10.5", 6 },
        { "fv7-xxh3-blobindex.sst", "RocksDB 10.5", 7 },
        { "fv6-xxh3-zstd-dict.sst", "RocksDB 9.7 (ZSTD index, dictionary)", 6 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char path[512], label[96];
        snprintf(path, sizeof path, "%s/sst/%s", VECTORS, v[i].file);
        snprintf(label, sizeof label, "%s fv%d", v[i].by, v[i].fv);
        struct tb_sst_report rep;
        int rc = tb_sst_check_file(path, &rep);
        ok(rc == 0 && rep.verdict == TB_SST_OK && rep.format_version == (uint32_t)v[i].fv &&
               rep.checksum_type == TB_SST_CK_XXH3 && rep.data_blocks > 40 && rep.bytes_unchecked == 0,
           "%s (XXH3, context checksums): ok, %llu data blocks, every byte under a checksum (%s)", label,
           (unsigned long long)rep.data_blocks, rep.reason);
        size_t n;
        unsigned char *b = slurp(path, &n);
        if (!b) {
            ok(0, "%s: read", path);
            continue;
        }
        if (i == 2)
            sweep(label, b, n, v[i].fv, want_dict, sizeof want_dict / sizeof want_dict[0]);
        else
            sweep(label, b, n, v[i].fv, want, sizeof want / sizeof want[0]);
        truncations(label, b, n);
        free(b);
    }

    char path[512];
    snprintf(path, sizeof path, "%s/sst/fv7.blob", VECTORS);
    struct tb_sst_report rep;
    int rc = tb_sst_check_path(path, &rep);
    ok(rc == 0 && rep.verdict == TB_SST_OK && rep.blob_records > 50, "RocksDB 10.5 blob file: ok, %llu records (%s)",
       (unsigned long long)rep.blob_records, rep.reason);
    size_t n;
    unsigned char *b = slurp(path, &n);
    if (b)
        blob_sweep("RocksDB 10.5 blob file", b, n);
    free(b);
}

/* A blob file with one byte flipped anywhere: damaged, except the header's fields after
 * magic and version (column family, flags, compression, expiration range), which no CRC
 * covers; a changed version is a future format (unchecked). Cut anywhere: damaged, except
 * at the footer (a file still being written: unchecked). */
static int check_blob_buf(const unsigned char *b, size_t n, struct tb_sst_report *rep)
{
    int fd = memfd_create("blob", MFD_CLOEXEC);
    if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n)) {
        if (fd >= 0)
            close(fd);
        return -100;
    }
    int rc = tb_sst_check_blob_fd(fd, "scratch.blob", rep);
    close(fd);
    return rc;
}

static void blob_sweep(const char *label, const unsigned char *orig, size_t n)
{
    unsigned char *b = malloc(n);
    memcpy(b, orig, n);
    size_t stride = n / 1500 + 1, missed = 0, tried = 0, header = 0;
    for (size_t pos = 0; pos < n; pos++) {
        if (pos >= 30 && pos % stride != 0 && pos < n - 64)
            continue;
        b[pos] ^= 0xff;
        struct tb_sst_report rep;
        int rc = check_blob_buf(b, n, &rep);
        b[pos] ^= 0xff;
        tried++;
        int want_ok = pos >= 8 && pos < 30, want_unchecked = pos >= 4 && pos < 8;
        header += want_ok;
        int good = want_ok   ? rc == 0 && rep.verdict == TB_SST_OK
            : want_unchecked ? rc == 0 && rep.verdict == TB_SST_UNCHECKED
                             : rc == TB_EVERIFY && rep.verdict == TB_SST_DAMAGED;
        if (!good && missed++ < 5)
            diag("%s: flip at %zu: rc %d %s %s", label, pos, rc, tb_sst_verdict_name(rep.verdict), rep.reason);
    }
    ok(missed == 0,
       "%s: %zu one-byte flips reported damaged (but %zu in the header's unprotected fields, 4 in its version: "
       "unchecked)",
       label, tried, header);
    size_t cuts[] = { 0, 10, 29, 30, 31, 61, 62, n / 2, n - 33, n - 31, n - 1, n + 0 };
    int bad = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        struct tb_sst_report rep;
        size_t len = i == sizeof cuts / sizeof cuts[0] - 1 ? n - 32 : cuts[i];
        int rc = check_blob_buf(orig, len, &rep);
        int good = len == n - 32 || len == 30
            ? rc == 0 && rep.verdict == TB_SST_UNCHECKED && strstr(rep.reason, "no footer")
            : rc == TB_EVERIFY;
        if (!good) {
            bad++;
            diag("%s: cut to %zu: rc %d %s", label, len, rc, rep.reason);
        }
    }
    ok(bad == 0, "%s: cut anywhere: damaged; cut before the footer or after the header: unchecked (no footer)", label);
    free(b);
}

/* A database flushed by RocksDB 7.8 with ThemisDB's table settings (XXH3, partitioned
 * filters, two-level index), plus a compaction: every table file checks out. */
static void db_tests(void)
{
    struct cfg g = { 4, 5, 4, 1, 4, 0, 0 };
    rocksdb_block_based_table_options_t *bbo;
    rocksdb_options_t *o = table_options(&g, &bbo);
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_enable_blob_files(o, 1);
    rocksdb_options_set_min_blob_size(o, 200);
    char path[300], *err = NULL;
    snprintf(path, sizeof path, "%s/db", dir);
    rocksdb_t *db = rocksdb_open(o, path, &err);
    if (!db) {
        ok(0, "open db: %s", err);
        return;
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    for (unsigned round = 0; round < 3 && !err; round++) {
        for (unsigned i = 0; i < 6000 && !err; i++) {
            char k[32], v[128];
            snprintf(k, sizeof k, "db%07u", i * 3 + round);
            value_for(v, sizeof v, i);
            char big[700];
            if (i % 7 == 0) { /* some values go to blob files */
                snprintf(big, sizeof big, "%s%s%s%s%s", v, v, v, v, v);
                rocksdb_put(db, wo, k, strlen(k), big, strlen(big), &err);
                continue;
            }
            rocksdb_put(db, wo, k, strlen(k), v, strlen(v), &err);
        }
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        rocksdb_writebatch_delete_range(wb, "db0000100", 9, "db0000200", 9);
        if (!err)
            rocksdb_write(db, wo, wb, &err);
        rocksdb_writebatch_destroy(wb);
        if (!err)
            rocksdb_flush(db, fo, &err);
    }
    if (!err)
        rocksdb_compact_range(db, NULL, 0, NULL, 0);
    rocksdb_close(db);
    rocksdb_flushoptions_destroy(fo);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    rocksdb_block_based_options_destroy(bbo);
    ok(err == NULL, "a database flushed and compacted by RocksDB 7.8 (%s)", err ? err : "ok");
    free(err);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "ls %s/*.sst %s/*.blob", path, path);
    FILE *ls = popen(cmd, "r");
    char line[400];
    int files = 0, good = 0, blobs = 0;
    while (ls && fgets(line, sizeof line, ls)) {
        line[strcspn(line, "\n")] = 0;
        struct tb_sst_report rep;
        int rc = tb_sst_check_path(line, &rep);
        files++;
        int is_blob = strstr(line, ".blob") != NULL;
        blobs += is_blob;
        if (rc == 0 && rep.verdict == TB_SST_OK &&
            (is_blob ? rep.blob_records > 100 : rep.data_blocks > 50 && rep.index_blocks > 3 && rep.filter_blocks > 2))
            good++;
        else
            diag("%s: rc %d %s %s (data %llu index %llu filter %llu)", line, rc, tb_sst_verdict_name(rep.verdict),
                 rep.reason, (unsigned long long)rep.data_blocks, (unsigned long long)rep.index_blocks,
                 (unsigned long long)rep.filter_blocks);
    }
    if (ls)
        pclose(ls);
    ok(files > 0 && good == files && blobs > 0,
       "every table and blob file of the database checks out (%d of %d, %d blob files)", good, files, blobs);
    if (blobs) {
        /* One of RocksDB 7.8's blob files through the same sweep. */
        snprintf(cmd, sizeof cmd, "ls %s/*.blob | head -1", path);
        ls = popen(cmd, "r");
        if (ls && fgets(line, sizeof line, ls)) {
            line[strcspn(line, "\n")] = 0;
            size_t n;
            unsigned char *b = slurp(line, &n);
            if (b)
                blob_sweep("RocksDB 7.8 blob file", b, n);
            free(b);
        }
        if (ls)
            pclose(ls);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) {
        memcpy(dir, "/tmp/test_sstcheck.XXXXXX", sizeof "/tmp/test_sstcheck.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    char path[300];
    snprintf(path, sizeof path, "%s/t.sst", dir);

    /* The matrix: every checksum type x format_version 2-5 x compression x index layout. */
    static const int comps[] = { 0, 1, 4, 7, 2 };
    int total = 0, good = 0;
    for (int ck = 1; ck <= 4; ck++)
        for (int fv = 2; fv <= 5; fv++)
            for (size_t ci = 0; ci < sizeof comps / sizeof comps[0]; ci++)
                for (int tl = 0; tl <= 1; tl++) {
                    struct cfg g = { ck, fv, comps[ci], tl, (fv + ck) % 2 ? 4 : 1, 0, 0 };
                    char label[96];
                    describe(label, sizeof label, &g);
                    total++;
                    if (make_sst(path, &g, 3000)) {
                        diag("%s: not written", label);
                        continue;
                    }
                    struct tb_sst_report rep;
                    int rc = tb_sst_check_file(path, &rep);
                    int want_delta = fv >= 4;
                    if (rc == 0 && rep.verdict == TB_SST_OK && rep.format_version == (uint32_t)fv &&
                        rep.checksum_type == ck && rep.index_type == (tl ? 2 : 0) &&
                        rep.index_delta_encoded == want_delta && rep.data_blocks > 50 &&
                        rep.index_blocks >= (tl ? 5u : 1u) && rep.filter_blocks >= (tl ? 3u : 1u) &&
                        rep.bytes_unchecked == 53 && rep.bytes_checked + 53 == rep.file_size)
                        good++;
                    else
                        diag("%s: rc %d %s %s fv %u ck %d itype %d delta %d data %llu index %llu filter %llu unchecked "
                             "%llu",
                             label, rc, tb_sst_verdict_name(rep.verdict), rep.reason, rep.format_version,
                             rep.checksum_type, rep.index_type, rep.index_delta_encoded,
                             (unsigned long long)rep.data_blocks, (unsigned long long)rep.index_blocks,
                             (unsigned long long)rep.filter_blocks, (unsigned long long)rep.bytes_unchecked);
                }
    ok(good == total,
       "%d of %d RocksDB 7.8 table files (4 checksum types x fv 2-5 x none/snappy/lz4/zstd/zlib x binary/partitioned) "
       "verify, "
       "every byte but the footer under a checksum",
       good, total);

    /* Flip sweeps over representative files: each kind of block gets hit. */
    static const char *const want_tl[] = { "data block (",
                                           "top-level index",
                                           "index partition",
                                           "partitioned filter index",
                                           "filter partition",
                                           "properties",
                                           "metaindex",
                                           "rocksdb.range_del",
                                           "footer" };
    static const char *const want_bin[] = { "data block (", "(index,",           "fullfilter.", "properties",
                                            "metaindex",    "rocksdb.range_del", "footer" };
    struct cfg sweeps[] = {
        { 4, 5, 7, 1, 4, 0, 0 }, /* ThemisDB: XXH3, partitioned, zstd, delta-encoded index */
        { 1, 2, 0, 0, 1, 0, 0 }, /* crc32c, oldest format, no compression */
        { 2, 4, 4, 1, 1, 0, 0 }, /* xxHash, lz4 */
        { 3, 3, 1, 0, 4, 0, 0 }, /* xxHash64, snappy */
    };
    for (size_t i = 0; i < sizeof sweeps / sizeof sweeps[0]; i++) {
        char label[96];
        describe(label, sizeof label, &sweeps[i]);
        if (make_sst(path, &sweeps[i], 3000)) {
            ok(0, "%s: written", label);
            continue;
        }
        size_t n;
        unsigned char *b = slurp(path, &n);
        if (sweeps[i].two_level)
            sweep(label, b, n, sweeps[i].fv, want_tl, sizeof want_tl / sizeof want_tl[0]);
        else
            sweep(label, b, n, sweeps[i].fv, want_bin, sizeof want_bin / sizeof want_bin[0]);
        truncations(label, b, n);
        free(b);
    }

    /* ZSTD with a dictionary: a compression_dict meta block, also checked. */
    {
        struct cfg g = { 4, 5, 7, 0, 1, 1, 0 };
        char label[96];
        describe(label, sizeof label, &g);
        make_sst(path, &g, 3000);
        size_t n;
        unsigned char *b = slurp(path, &n);
        int has_dict = b && memmem(b, n, "rocksdb.compression_dict", 24) != NULL;
        struct tb_sst_report rep;
        int rc = tb_sst_check_file(path, &rep);
        ok(rc == 0 && rep.verdict == TB_SST_OK, "%s: verifies (dictionary block %s) %s", label,
           has_dict ? "present" : "absent", rep.reason);
        if (has_dict) {
            static const char *const want_dict[] = { "rocksdb.compression_dict" };
            sweep(label, b, n, 5, want_dict, 1);
        }
        free(b);
    }

    /* The other index types: hash search (prefix blocks in the metaindex) and binary search
     * with each block's first key in the index values. */
    {
        struct cfg gs[] = { { 4, 5, 0, 0, 1, 0, 1 }, { 1, 5, 7, 0, 4, 0, 3 }, { 3, 4, 4, 0, 1, 0, 3 } };
        for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
            char label[96];
            describe(label, sizeof label, &gs[i]);
            make_sst(path, &gs[i], 3000);
            struct tb_sst_report rep;
            int rc = tb_sst_check_file(path, &rep);
            ok(rc == 0 && rep.verdict == TB_SST_OK && rep.index_type == gs[i].itype && rep.data_blocks > 50 &&
                   rep.bytes_unchecked == 53 && (gs[i].itype != 1 || rep.meta_blocks >= 5),
               "%s, index type %d: ok, %llu data blocks, %llu meta blocks (%s)", label, gs[i].itype,
               (unsigned long long)rep.data_blocks, (unsigned long long)rep.meta_blocks, rep.reason);
            if (gs[i].itype == 3) {
                size_t n;
                unsigned char *b = slurp(path, &n);
                static const char *const want[] = { "data block (", "(index," };
                sweep(label, b, n, gs[i].fv, want, 2);
                free(b);
            }
        }
    }

    /* An ingested file whose global sequence number RocksDB rewrote in place (ingestion with
     * write_global_seqno): its properties checksum no longer matches, and RocksDB accepts it
     * by checking with the field zero. So do we; a flip elsewhere in the block still fails. */
    {
        struct cfg g = { 4, 5, 0, 0, 1, 0, 0 };
        make_sst(path, &g, 500);
        size_t n;
        unsigned char *b = slurp(path, &n);
        /* The properties block shares key prefixes (restart interval INT32_MAX): the name's
         * tail is what stands in the file, the 8-byte value right after it. */
        const char *key = "external_sst_file.global_seqno";
        unsigned char *k = b ? memmem(b, n, key, strlen(key)) : NULL;
        ok(k != NULL, "an SstFileWriter file carries %s", key);
        if (k) {
            unsigned char *v = k + strlen(key);
            v[0] = 0x2a;
            v[3] = 0x01;
            struct tb_sst_report rep;
            int rc = check_buf(b, n, &rep);
            ok(rc == 0 && rep.verdict == TB_SST_OK, "global seqno rewritten in place: ok (%s)", rep.reason);
            k[2] ^= 0x20;
            rc = check_buf(b, n, &rep);
            ok(rc == TB_EVERIFY && strstr(rep.reason, "properties"), "and a flip in the property's name: damaged (%s)",
               rep.reason);
        }
        free(b);
    }

    /* kNoChecksum: nothing to verify (unchecked), but a trailer that is not zero is damage. */
    {
        struct cfg g = { 0, 5, 0, 0, 1, 0, 0 };
        make_sst(path, &g, 500);
        size_t n;
        unsigned char *b = slurp(path, &n);
        struct tb_sst_report rep;
        int rc = check_buf(b, n, &rep);
        ok(rc == 0 && rep.verdict == TB_SST_UNCHECKED && strstr(rep.reason, "without checksums"),
           "checksum type none: unchecked (%s)", rep.reason);
        b[n - 53 - 2] ^= 0x10; /* the metaindex block's trailer */
        rc = check_buf(b, n, &rep);
        ok(rc == TB_EVERIFY, "checksum type none, a trailer not zero: damaged (%s)", rep.reason);
        free(b);
    }

    /* Not a table file at all, and a missing one. */
    {
        unsigned char junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)(i * 31);
        struct tb_sst_report rep;
        int rc = check_buf(junk, sizeof junk, &rep);
        ok(rc == TB_EVERIFY && strstr(rep.reason, "magic"), "a file without a table magic number: damaged (%s)",
           rep.reason);
        char missing[320];
        snprintf(missing, sizeof missing, "%s/none.sst", dir);
        rc = tb_sst_check_file(missing, &rep);
        ok(rc == TB_ENOENT, "a missing file: TB_ENOENT (%s)", tb_error_last());
    }

    synthetic_tests();
    content_of_newer_table();
    newer_rocksdb_tests();
    db_tests();

    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
