/* test_crypt: AES-256-GCM against NIST's vectors, the stream format against vectors an
 * independent implementation made (vectors/make-crypt-vectors.py), and every way a stream
 * can be damaged: each must fail, and no byte of a bad chunk may come out. */
#include "tap.h"
#include "crypt.h"
#include "error.h"
#include "stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            break;
        out[n++] = (unsigned char)v;
    }
    return n;
}

struct vec {
    const char *what, *key, *iv, *aad, *pt, *ct, *tag;
};

/* The GCM specification's AES-256 cases 13, 14 and 16, and one of NIST's CAVP gcmEncrypt
 * vectors (gcmEncryptExtIV256.rsp). */
static const struct vec nist[] = {
    { "GCM spec test case 13 (empty)", "0000000000000000000000000000000000000000000000000000000000000000",
      "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
    { "GCM spec test case 14", "0000000000000000000000000000000000000000000000000000000000000000",
      "000000000000000000000000", "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
      "d0d1c8a799996bf0265b98b5d48ab919" },
    { "GCM spec test case 16 (with AAD)", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
      "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
      "76fc6ece0f4e1768cddf8853bb2d551b" },
    { "CAVP gcmEncryptExtIV256", "83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a",
      "0b459724904e010a46901cf3", "794a14ccd178c8ebfd1379dc704c5e208f9d8424", "33d893a2114ce06fc15d55e454cf90c3",
      "cc66bee423e3fcd4c0865715e9586696", "0fb291bd3dba94a1dfd8b286cfb97ac5" },
};

static void test_nist(void)
{
    for (size_t i = 0; i < sizeof nist / sizeof nist[0]; i++) {
        unsigned char key[32], iv[12], aad[64], pt[128], ct[128], tag[16], out[128], otag[16];
        size_t na = unhex(nist[i].aad, aad), np = unhex(nist[i].pt, pt);
        unhex(nist[i].key, key), unhex(nist[i].iv, iv), unhex(nist[i].ct, ct), unhex(nist[i].tag, tag);
        is_int(tb_gcm_seal(key, iv, aad, na, pt, np, out, otag), 0, "%s: seals", nist[i].what);
        ok(memcmp(out, ct, np) == 0 && memcmp(otag, tag, 16) == 0, "%s: ciphertext and tag as published", nist[i].what);
        is_int(tb_gcm_open(key, iv, aad, na, ct, np, out, tag), 0, "%s: opens", nist[i].what);
        ok(memcmp(out, pt, np) == 0, "%s: plaintext back", nist[i].what);
        tag[15] ^= 1;
        is_int(tb_gcm_open(key, iv, aad, na, ct, np, out, tag), TB_EVERIFY, "%s: a flipped tag bit is refused",
               nist[i].what);
    }
}

/* ---- helpers ---- */

static tb_keyring *ring(const char *content, size_t len, int passphrase)
{
    char path[512];
    tb_keyring *k = NULL;
    FILE *f;
    static int n;
    snprintf(path, sizeof path, "%s/key-%d", tmpdir, n++);
    f = fopen(path, "w");
    fwrite(content, 1, len, f);
    fclose(f);
    tb_keyring_new(&k);
    if ((passphrase ? tb_keyring_add_passphrase_file(k, path) : tb_keyring_add_key_file(k, path)) < 0)
        diag("key: %s", tb_error_last());
    return k;
}

static const char KEY_HEX[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
static const char PASS[] = "correct horse battery staple\n";

static void fill_plain(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 7 + (i >> 8)) & 0xff);
}

/* Encrypts n bytes; returns the stream's bytes (malloc'd) and length. */
static unsigned char *seal(tb_keyring *k, const unsigned char *plain, size_t n, const struct tb_crypt_fixed *f,
                           size_t *len, char sealed[65])
{
    tb_stream *mem = NULL, *c = NULL;
    const void *d;
    unsigned char *out;
    tb_stream_mem_writer(&mem);
    if ((f ? tb_crypt_writer_fixed(&c, mem, k, f) : tb_crypt_writer(&c, mem, k)) < 0) {
        diag("writer: %s", tb_error_last());
        tb_stream_free(mem);
        return NULL;
    }
    /* Odd-sized writes, so chunking does not depend on how the caller slices. */
    for (size_t i = 0; i < n; i += 333)
        tb_stream_write(c, plain + i, n - i < 333 ? n - i : 333);
    if (tb_stream_close(c) < 0)
        diag("close: %s", tb_error_last());
    if (sealed)
        tb_crypt_sealed_hex(c, sealed);
    d = tb_stream_mem_data(mem, len);
    out = malloc(*len + 1);
    memcpy(out, d, *len);
    tb_stream_free(c);
    return out;
}

/* Decrypts; returns rc, the plaintext in *plain (malloc'd), its length in *n. */
static int open_all(tb_keyring *k, const unsigned char *data, size_t len, unsigned char **plain, size_t *n,
                    char sealed[65])
{
    tb_stream *mem = NULL, *c = NULL;
    size_t cap = len + 1, got;
    int rc;
    *plain = malloc(cap);
    *n = 0;
    tb_stream_mem_reader(&mem, data, len);
    if ((rc = tb_crypt_reader(&c, mem, k)) < 0) {
        tb_stream_free(mem);
        return rc;
    }
    do {
        rc = tb_stream_read(c, *plain + *n, cap - *n, &got);
        *n += got;
    } while (rc == 0 && got > 0 && *n < cap);
    if (rc == 0 && sealed)
        tb_crypt_sealed_hex(c, sealed);
    tb_stream_free(c);
    return rc;
}

static unsigned char *read_vector(const char *name, size_t *len)
{
    char path[512], line[256];
    unsigned char *out = malloc(1 << 16);
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", VECTORS, name);
    *len = 0;
    if (!(f = fopen(path, "r")))
        return out;
    while (fgets(line, sizeof line, f))
        *len += unhex(line, out + *len);
    fclose(f);
    return out;
}

static void test_vectors(void)
{
    static const struct {
        const char *file;
        size_t n;
        int pass;
    } v[] = { { "crypt-v1-key.hex", 2500, 0 }, { "crypt-v1-exact.hex", 2048, 0 }, { "crypt-v1-empty.hex", 0, 0 },
              { "crypt-v1-pass.hex", 2500, 1 } };
    struct tb_crypt_fixed f;
    unsigned char plain[2500];
    fill_plain(plain, sizeof plain);
    for (int i = 0; i < 32; i++)
        f.dek[i] = (unsigned char)(0x20 + i);
    unhex("a0a1a2a3a4a5a6a7a8a9aaab", f.base_nonce);
    unhex("b0b1b2b3b4b5b6b7b8b9babb", f.wrap_nonce);
    unhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", f.salt);
    f.chunk_log2 = 10;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t vlen, len, n;
        unsigned char *want = read_vector(v[i].file, &vlen), *got, *back;
        tb_keyring *k = ring(KEY_HEX, strlen(KEY_HEX), 0), *kp = NULL;
        ok(vlen > 24, "%s: read (%zu bytes)", v[i].file, vlen);
        if (v[i].pass) {
            char path[512];
            snprintf(path, sizeof path, "%s/pass", tmpdir);
            FILE *pf = fopen(path, "w");
            fputs(PASS, pf);
            fclose(pf);
            tb_keyring_add_passphrase_file(k, path);
        }
        got = seal(k, plain, v[i].n, &f, &len, NULL);
        ok(got && len == vlen && memcmp(got, want, len) == 0, "%s: our writer makes exactly these bytes", v[i].file);
        is_int(open_all(k, want, vlen, &back, &n, NULL), 0, "%s: our reader opens it", v[i].file);
        ok(n == v[i].n && memcmp(back, plain, n) == 0, "%s: to the plaintext", v[i].file);
        free(back);
        if (v[i].pass) {
            kp = ring(PASS, strlen(PASS), 1);
            is_int(open_all(kp, want, vlen, &back, &n, NULL), 0, "%s: the passphrase alone opens it (scrypt)",
                   v[i].file);
            ok(n == v[i].n && memcmp(back, plain, n) == 0, "%s: to the plaintext", v[i].file);
            free(back);
        }
        tb_keyring_free(kp);
        tb_keyring_free(k);
        free(got);
        free(want);
    }
}

/* Every kind of damage, on a 4-chunk stream (1 KiB chunks). */
static void test_damage(void)
{
    struct tb_crypt_fixed f;
    unsigned char plain[3500], *s, *t, *back;
    size_t len, n, hlen = 24 + 1 + 69, clen = 1024 + 16;
    tb_keyring *k = ring(KEY_HEX, strlen(KEY_HEX), 0);
    tb_keyring *other = ring("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 64, 0);
    tb_keyring *none = NULL;
    int rc;
    fill_plain(plain, sizeof plain);
    memset(&f, 0x5a, sizeof f);
    f.chunk_log2 = 10;
    s = seal(k, plain, sizeof plain, &f, &len, NULL);
    is_int(len, hlen + 3 * clen + (3500 - 3072) + 16, "4 chunks: header, 3 whole, a short last one");
    t = malloc(len + 100);

    /* A flipped byte in each chunk, and in the header: nothing of that chunk comes out. */
    for (size_t c = 0; c < 4; c++) {
        size_t at = hlen + c * clen + 100;
        memcpy(t, s, len);
        t[at] ^= 0x01;
        rc = open_all(k, t, len, &back, &n, NULL);
        is_int(rc, TB_EVERIFY, "flipped byte in chunk %zu: refused (%s)", c, tb_error_last());
        ok(n == c * 1024, "flipped byte in chunk %zu: only the %zu bytes of the chunks before it came out (%zu)", c,
           c * 1024, n);
        free(back);
    }
    memcpy(t, s, len);
    t[30] ^= 0x01; /* the slot's key id: no slot for this key */
    is_int(open_all(k, t, len, &back, &n, NULL), TB_EKEY, "flipped key id: refused (%s)", tb_error_last());
    free(back);
    memcpy(t, s, len);
    t[60] ^= 0x01; /* the wrapped data key */
    is_int(open_all(k, t, len, &back, &n, NULL), TB_EVERIFY, "flipped wrapped key: refused (%s)", tb_error_last());
    free(back);
    memcpy(t, s, len);
    t[14] ^= 0x01; /* the base nonce in the fixed header */
    is_int(open_all(k, t, len, &back, &n, NULL), TB_EVERIFY, "flipped base nonce: refused (%s)", tb_error_last());
    free(back);

    /* Truncation at each chunk boundary. */
    for (size_t c = 1; c <= 3; c++) {
        rc = open_all(k, s, hlen + c * clen, &back, &n, NULL);
        is_int(rc, TB_EVERIFY, "cut after chunk %zu: refused", c - 1);
        ok(strstr(tb_error_last(), "truncated") != NULL, "cut after chunk %zu: says truncated (%s)", c - 1,
           tb_error_last());
        free(back);
    }
    is_int(open_all(k, s, hlen, &back, &n, NULL), TB_EVERIFY, "header alone: refused (%s)", tb_error_last());
    free(back);
    is_int(open_all(k, s, len - 1, &back, &n, NULL), TB_EVERIFY, "last byte cut: refused");
    free(back);

    /* Two whole chunks swapped. */
    memcpy(t, s, len);
    memcpy(t + hlen, s + hlen + clen, clen);
    memcpy(t + hlen + clen, s + hlen, clen);
    rc = open_all(k, t, len, &back, &n, NULL);
    is_int(rc, TB_EVERIFY, "chunks 0 and 1 swapped: refused (%s)", tb_error_last());
    is_int(n, 0, "chunks swapped: nothing came out");
    free(back);
    /* The last chunk dropped and a whole one moved to the end. */
    memcpy(t, s, hlen + 3 * clen);
    is_int(open_all(k, t, hlen + 2 * clen, &back, &n, NULL), TB_EVERIFY, "whole chunks only: refused");
    free(back);

    /* Bytes appended after the last chunk. */
    memcpy(t, s, len);
    memcpy(t + len, "garbage", 7);
    is_int(open_all(k, t, len + 7, &back, &n, NULL), TB_EVERIFY, "7 bytes appended: refused (%s)", tb_error_last());
    free(back);
    memcpy(t, s, len);
    memset(t + len, 0, 100);
    is_int(open_all(k, t, len + 100, &back, &n, NULL), TB_EVERIFY, "100 zero bytes appended: refused");
    free(back);

    /* Keys. */
    rc = open_all(other, s, len, &back, &n, NULL);
    is_int(rc, TB_EKEY, "wrong key: refused");
    ok(strstr(tb_error_last(), "wrong key") != NULL, "wrong key: says so (%s)", tb_error_last());
    free(back);
    rc = open_all(none, s, len, &back, &n, NULL);
    is_int(rc, TB_EUSAGE, "no key: a usage error (%s)", tb_error_last());
    free(back);
    is_int(open_all(k, s, len, &back, &n, NULL), 0, "the undamaged stream opens");
    ok(n == sizeof plain && memcmp(back, plain, n) == 0, "to the plaintext");
    free(back);
    free(t);
    free(s);
    tb_keyring_free(k);
    tb_keyring_free(other);
}

static void test_roundtrip_sizes(void)
{
    static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 3 * 65536, 1000000 };
    unsigned char *plain = malloc(1000000), *s, *back;
    tb_keyring *k = ring("0123456789abcdef0123456789abcdef", 32, 0); /* a raw 32-byte key */
    char h1[65], h2[65];
    fill_plain(plain, 1000000);
    ok(tb_keyring_size(k) == 1, "a raw 32-byte key file is accepted");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len, n;
        s = seal(k, plain, sizes[i], NULL, &len, h1);
        is_int(open_all(k, s, len, &back, &n, h2), 0, "%zu bytes: round trip opens", sizes[i]);
        ok(n == sizes[i] && memcmp(back, plain, n) == 0, "%zu bytes: same plaintext", sizes[i]);
        is_str(h2, h1, "%zu bytes: reader and writer agree on the sealed digest", sizes[i]);
        free(back);
        free(s);
    }
    {
        size_t len1, len2;
        unsigned char *a = seal(k, plain, 1000, NULL, &len1, NULL), *b = seal(k, plain, 1000, NULL, &len2, NULL);
        ok(len1 == len2 && memcmp(a + 24, b + 24, len1 - 24) != 0, "two encryptions of the same data differ");
        free(a);
        free(b);
    }
    free(plain);
    tb_keyring_free(k);
}

static void test_key_files(void)
{
    tb_keyring *k = NULL;
    static const char *bad[] = { "short", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
                                 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00" };
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        FILE *f;
        snprintf(path, sizeof path, "%s/bad-%zu", tmpdir, i);
        f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        tb_keyring_new(&k);
        is_int(tb_keyring_add_key_file(k, path), TB_EUSAGE, "bad key file %zu refused (%s)", i, tb_error_last());
        is_int(tb_keyring_size(k), 0, "bad key file %zu: no key added", i);
        tb_keyring_free(k);
    }
    tb_keyring_new(&k);
    is_int(tb_keyring_add_key_file(k, "/nonexistent/key"), TB_EUSAGE, "missing key file refused");
    is_int(tb_keyring_add_passphrase_file(k, "/dev/null"), TB_EUSAGE, "empty passphrase refused");
    tb_keyring_free(k);
}

/* rekey and add-key rewrite the key slots only. */
static void test_rekey(void)
{
    char path[512], h0[65], h1[65], ids[512];
    unsigned char plain[5000], *s, *back;
    size_t len, n;
    tb_keyring *a = ring(KEY_HEX, strlen(KEY_HEX), 0);
    tb_keyring *b = ring("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 64, 0);
    tb_keyring *p = ring(PASS, strlen(PASS), 1);
    char *data = NULL;
    size_t dlen;
    FILE *f;
    fill_plain(plain, sizeof plain);
    s = seal(a, plain, sizeof plain, NULL, &len, h0);
    snprintf(path, sizeof path, "%s/enc", tmpdir);
    f = fopen(path, "w");
    fwrite(s, 1, len, f);
    fclose(f);

    is_int(tb_crypt_rekey_file(path, b, b, 0), TB_EKEY, "rekey with a key that does not open it: refused");
    is_int(tb_crypt_rekey_file(path, a, b, 0), 0, "rekey A -> B");
    tb_crypt_file_key_ids(path, ids, sizeof ids);
    is_str(ids, tb_keyring_id(b, 0), "only B's slot is left");
    {
        FILE *g = fopen(path, "r");
        data = malloc(len + 100);
        dlen = fread(data, 1, len + 100, g);
        fclose(g);
    }
    ok(dlen == len && memcmp(data + 94, s + 94, len - 94) == 0 && memcmp(data, s, 24) == 0,
       "the fixed header and every chunk byte are unchanged");
    is_int(open_all(a, (unsigned char *)data, dlen, &back, &n, NULL), TB_EKEY, "the old key is refused");
    free(back);
    is_int(open_all(b, (unsigned char *)data, dlen, &back, &n, h1), 0, "the new key opens it");
    ok(n == sizeof plain && memcmp(back, plain, n) == 0, "to the plaintext");
    is_str(h1, h0, "the sealed digest did not change");
    free(back);
    free(data);

    is_int(tb_crypt_rekey_file(path, b, p, 1), 0, "add a passphrase beside B");
    tb_crypt_file_key_ids(path, ids, sizeof ids);
    ok(strchr(ids, ',') != NULL, "two slots now (%s)", ids);
    {
        FILE *g = fopen(path, "r");
        data = malloc(len + 200);
        dlen = fread(data, 1, len + 200, g);
        fclose(g);
    }
    is_int(open_all(b, (unsigned char *)data, dlen, &back, &n, NULL), 0, "B still opens it");
    free(back);
    {
        tb_keyring *p2 = ring(PASS, strlen(PASS), 1);
        is_int(open_all(p2, (unsigned char *)data, dlen, &back, &n, NULL), 0, "the passphrase opens it too");
        ok(n == sizeof plain && memcmp(back, plain, n) == 0, "to the plaintext");
        free(back);
        tb_keyring_free(p2);
    }
    is_int(tb_crypt_rekey_file(path, b, b, 1), 0, "adding a key already there is a no-op");
    tb_crypt_file_key_ids(path, ids, sizeof ids);
    ok(strchr(ids, ',') && !strchr(strchr(ids, ',') + 1, ','), "still two slots (%s)", ids);
    free(data);
    free(s);
    tb_keyring_free(a);
    tb_keyring_free(b);
    tb_keyring_free(p);
}

int main(void)
{
    char cmd[300];
    snprintf(tmpdir, sizeof tmpdir, "%s/test_crypt.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    test_nist();
    test_vectors();
    test_damage();
    test_roundtrip_sizes();
    test_key_files();
    test_rekey();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
