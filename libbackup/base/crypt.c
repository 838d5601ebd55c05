/* crypt: the encrypted stream format (docs/encryption.md) as a writer and a reader filter,
 * keyrings, and rewrapping a file's data key (rekey, add-key). */
#include "crypt.h"
#include "bytes.h"
#include "error.h"
#include "fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

enum { KIND_FILE = 1, KIND_PASS = 2 };
enum { CIPHER_AES256GCM = 1, VERSION = 1 };
enum { SCRYPT_LOG2N = 15, SCRYPT_R = 8, SCRYPT_P = 1 };
enum { TAG = 16, SLOT_MAX = 1 + 8 + 4 + 16 + 12 + 32 + TAG };
static const unsigned char MAGIC[7] = { 'T', 'B', 'C', 'R', 'Y', 'P', 'T' };

struct key {
    int kind;
    char *name; /* the file it came from, for messages */
    unsigned char kek[32];
    unsigned char id[8];
    int ready; /* kek and id valid (a passphrase: for salt/params below) */
    char *pass; /* passphrase */
    size_t passlen;
    unsigned char salt[16];
    unsigned log2n, r, p;
    char idhex[17];
};

struct tb_keyring {
    size_t n;
    struct key v[TB_CRYPT_MAX_SLOTS];
};

/* A key slot as stored: kind, key id, [scrypt parameters and salt], wrap nonce, wrapped data
 * key, tag. */
struct slot {
    unsigned char kind, id[8], log2n, r, p, salt[16], nonce[12], wrapped[32], tag[TAG];
};

struct header {
    unsigned char fixed[TB_CRYPT_FIXED_LEN];
    size_t nslots;
    struct slot slots[TB_CRYPT_MAX_SLOTS];
    size_t len; /* bytes of the whole header */
};

/* ---- primitives ---------------------------------------------------------- */

static int gcm(EVP_CIPHER_CTX *c, int enc, const unsigned char key[32], const unsigned char nonce[12],
               const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t len, unsigned char *out,
               unsigned char tag[TAG])
{
    int n, ok;
    ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
        EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) == 1;
    /* Plaintext goes through in slices under INT_MAX; chunks are far smaller. */
    if (ok && len)
        ok = EVP_CipherUpdate(c, out, &n, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + len, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1;
    if (!ok && enc)
        return tb_error_set(TB_EIO, "AES-256-GCM failed in OpenSSL");
    return ok ? 0 : TB_EVERIFY;
}

static int gcm_once(int enc, const unsigned char key[32], const unsigned char nonce[12], const unsigned char *aad,
                    size_t aadlen, const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int rc = c ? gcm(c, enc, key, nonce, aad, aadlen, in, len, out, tag) : tb_error_set(TB_EIO, "out of memory");
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int tb_gcm_seal(const unsigned char key[32], const unsigned char nonce[12], const unsigned char *aad, size_t aadlen,
                const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[16])
{
    return gcm_once(1, key, nonce, aad, aadlen, in, len, out, tag);
}

int tb_gcm_open(const unsigned char key[32], const unsigned char nonce[12], const unsigned char *aad, size_t aadlen,
                const unsigned char *in, size_t len, unsigned char *out, const unsigned char tag[16])
{
    unsigned char t[TAG];
    memcpy(t, tag, TAG);
    return gcm_once(0, key, nonce, aad, aadlen, in, len, out, t);
}

static int random_bytes(unsigned char *p, size_t n)
{
    return RAND_bytes(p, (int)n) == 1 ? 0 : tb_error_set(TB_EIO, "no random bytes from OpenSSL");
}

/* The key id: the first 8 bytes of HMAC-SHA256(kek, label); it names a key without
 * revealing it. */
static void key_id(const unsigned char kek[32], unsigned char id[8])
{
    static const char label[] = "themis-backup key id v1";
    unsigned char md[32];
    unsigned int n = 32;
    HMAC(EVP_sha256(), kek, 32, (const unsigned char *)label, sizeof label - 1, md, &n);
    memcpy(id, md, 8);
}

/* Derives a passphrase's kek for these scrypt parameters (kept until they change). */
static int derive(struct key *k, const unsigned char salt[16], unsigned log2n, unsigned r, unsigned p)
{
    uint64_t n = 1ull << log2n;
    if (k->ready && memcmp(k->salt, salt, 16) == 0 && k->log2n == log2n && k->r == r && k->p == p)
        return 0;
    /* Parameters come from a file: bound the memory they may ask for (256 MiB). */
    if (log2n < 10 || log2n > 18 || r < 1 || r > 8 || p < 1 || p > 4)
        return tb_error_set(TB_EVERIFY, "key slot has scrypt parameters out of range (N=2^%u r=%u p=%u)", log2n, r, p);
    if (EVP_PBE_scrypt(k->pass, k->passlen, salt, 16, n, r, p, 128 * r * (n + p + 2), k->kek, 32) != 1)
        return tb_error_set(TB_EIO, "scrypt failed in OpenSSL (%s)", k->name);
    memcpy(k->salt, salt, 16);
    k->log2n = log2n;
    k->r = r;
    k->p = p;
    key_id(k->kek, k->id);
    tb_hex(k->id, 8, k->idhex);
    k->ready = 1;
    return 0;
}

/* ---- keyrings ------------------------------------------------------------ */

int tb_keyring_new(tb_keyring **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : tb_error_set(TB_EIO, "out of memory");
}

void tb_keyring_free(tb_keyring *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].name);
        if (k->v[i].pass)
            OPENSSL_clear_free(k->v[i].pass, k->v[i].passlen);
    }
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

size_t tb_keyring_size(const tb_keyring *k)
{
    return k ? k->n : 0;
}

const char *tb_keyring_id(const tb_keyring *k, size_t i)
{
    return k->v[i].ready ? k->v[i].idhex : "passphrase";
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

static struct key *new_key(tb_keyring *k, const char *path)
{
    struct key *e;
    if (k->n == TB_CRYPT_MAX_SLOTS) {
        tb_error_set(TB_EUSAGE, "too many keys (at most %d)", TB_CRYPT_MAX_SLOTS);
        return NULL;
    }
    e = &k->v[k->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(path))) {
        tb_error_set(TB_EIO, "out of memory");
        return NULL;
    }
    k->n++;
    return e;
}

/* Reads a key or passphrase file (what: "key file", "passphrase file"): a missing one is a
 * usage error. */
static int read_secret(const char *path, const char *what, char **data, size_t *len)
{
    int rc = tb_fs_read_file(path, data, len);
    if (rc == TB_ENOENT)
        return tb_error_set(TB_EUSAGE, "%s does not exist (%s)", what, path);
    return rc;
}

int tb_keyring_add_key_file(tb_keyring *k, const char *path)
{
    char *data = NULL;
    size_t len = 0, b = 0, e;
    struct key *key;
    int rc = read_secret(path, "key file", &data, &len);
    if (rc < 0)
        return rc;
    if (!(key = new_key(k, path))) {
        OPENSSL_clear_free(data, len);
        return TB_EIO;
    }
    key->kind = KIND_FILE;
    if (len == 32) {
        memcpy(key->kek, data, 32);
    } else {
        while (b < len && isspace((unsigned char)data[b]))
            b++;
        for (e = len; e > b && isspace((unsigned char)data[e - 1]); e--)
            ;
        if (e - b != 64)
            rc = TB_EUSAGE;
        for (size_t i = 0; rc == 0 && i < 32; i++) {
            int hi = hexval((unsigned char)data[b + 2 * i]), lo = hexval((unsigned char)data[b + 2 * i + 1]);
            if (hi < 0 || lo < 0)
                rc = TB_EUSAGE;
            key->kek[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    OPENSSL_clear_free(data, len);
    if (rc < 0) {
        free(key->name);
        k->n--;
        return tb_error_set(TB_EUSAGE, "key file must hold 32 bytes, raw or as 64 hex digits (%s)", path);
    }
    key_id(key->kek, key->id);
    tb_hex(key->id, 8, key->idhex);
    key->ready = 1;
    return 0;
}

int tb_keyring_add_passphrase_file(tb_keyring *k, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    struct key *key;
    int rc = read_secret(path, "passphrase file", &data, &len);
    if (rc < 0)
        return rc;
    len = strcspn(data, "\r\n");
    if (len == 0) {
        OPENSSL_clear_free(data, strlen(data));
        return tb_error_set(TB_EUSAGE, "passphrase file has an empty first line (%s)", path);
    }
    if (!(key = new_key(k, path))) {
        OPENSSL_clear_free(data, strlen(data));
        return TB_EIO;
    }
    key->kind = KIND_PASS;
    key->pass = data;
    key->passlen = len;
    return 0;
}

/* ---- header -------------------------------------------------------------- */

static size_t slot_len(const struct slot *s)
{
    return s->kind == KIND_PASS ? SLOT_MAX : SLOT_MAX - 4 - 16;
}

/* Serialises s; *aadlen receives the length of the part the wrap authenticates (all but
 * nonce, wrapped key and tag). */
static size_t slot_put(const struct slot *s, unsigned char *p, size_t *aadlen)
{
    size_t n = 0;
    p[n++] = s->kind;
    memcpy(p + n, s->id, 8), n += 8;
    if (s->kind == KIND_PASS) {
        p[n++] = s->log2n, p[n++] = s->r, p[n++] = s->p, p[n++] = 0;
        memcpy(p + n, s->salt, 16), n += 16;
    }
    *aadlen = n;
    memcpy(p + n, s->nonce, 12), n += 12;
    memcpy(p + n, s->wrapped, 32), n += 32;
    memcpy(p + n, s->tag, TAG), n += TAG;
    return n;
}

/* The wrap's associated data: the fixed header, then the slot's kind, id and parameters. */
static size_t slot_aad(const unsigned char fixed[TB_CRYPT_FIXED_LEN], const struct slot *s, unsigned char *aad)
{
    unsigned char buf[SLOT_MAX];
    size_t n;
    slot_put(s, buf, &n);
    memcpy(aad, fixed, TB_CRYPT_FIXED_LEN);
    memcpy(aad + TB_CRYPT_FIXED_LEN, buf, n);
    return TB_CRYPT_FIXED_LEN + n;
}

/* A slot wrapping dek under key. A passphrase derives with salt, or when salt is NULL
 * with the salt of its last derivation (one scrypt run for the many segments a WAL archiver
 * seals), or a new random one. */
static int slot_make(const unsigned char fixed[TB_CRYPT_FIXED_LEN], struct key *key, const unsigned char dek[32],
                     const unsigned char nonce[12], const unsigned char *salt, struct slot *s)
{
    unsigned char aad[TB_CRYPT_FIXED_LEN + SLOT_MAX], fresh[16];
    int rc;
    memset(s, 0, sizeof *s);
    s->kind = (unsigned char)key->kind;
    if (key->kind == KIND_PASS) {
        if (!salt && key->ready && key->log2n == SCRYPT_LOG2N && key->r == SCRYPT_R && key->p == SCRYPT_P)
            salt = key->salt;
        if (!salt && (rc = random_bytes(fresh, 16)) < 0)
            return rc;
        if ((rc = derive(key, salt ? salt : fresh, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P)) < 0)
            return rc;
        s->log2n = SCRYPT_LOG2N, s->r = SCRYPT_R, s->p = SCRYPT_P;
        memcpy(s->salt, key->salt, 16);
    }
    memcpy(s->id, key->id, 8);
    memcpy(s->nonce, nonce, 12);
    return gcm_once(1, key->kek, s->nonce, aad, slot_aad(fixed, s, aad), dek, 32, s->wrapped, s->tag);
}

/* Unwraps the data key with the first key of k that opens a slot. */
static int slot_open(const struct header *h, tb_keyring *k, unsigned char dek[32], const char *where)
{
    unsigned char aad[TB_CRYPT_FIXED_LEN + SLOT_MAX];
    char have[TB_CRYPT_MAX_SLOTS * 20 + 1] = "", given[TB_CRYPT_MAX_SLOTS * 20 + 1] = "";
    int rc;
    if (!k || k->n == 0)
        return tb_error_set(TB_EUSAGE, "%s is encrypted: give --key-file or --passphrase-file", where);
    for (size_t i = 0; i < h->nslots; i++) {
        const struct slot *s = &h->slots[i];
        for (size_t j = 0; j < k->n; j++) {
            struct key *key = &k->v[j];
            if (key->kind != s->kind)
                continue;
            if (key->kind == KIND_PASS && (rc = derive(key, s->salt, s->log2n, s->r, s->p)) < 0)
                return rc;
            if (memcmp(key->id, s->id, 8))
                continue;
            if (gcm_once(0, key->kek, s->nonce, aad, slot_aad(h->fixed, s, aad), s->wrapped, 32, dek,
                         (unsigned char *)s->tag) < 0)
                return tb_error_set(TB_EVERIFY, "key slot for key %s does not authenticate: header damaged (%s)",
                                    key->idhex, where);
            return 0;
        }
    }
    for (size_t i = 0; i < h->nslots; i++) {
        char hex[17];
        tb_hex(h->slots[i].id, 8, hex);
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s%s", i ? ", " : "",
                 h->slots[i].kind == KIND_PASS ? "passphrase " : "", hex);
    }
    for (size_t j = 0; j < k->n; j++)
        snprintf(given + strlen(given), sizeof given - strlen(given), "%s%s", j ? ", " : "",
                 k->v[j].kind == KIND_PASS ? "a passphrase" : k->v[j].idhex);
    return tb_error_set(TB_EKEY, "wrong key: %s is encrypted for key %s, not %s", where, have, given);
}

static int header_read(tb_stream *in, struct header *h, const char *where)
{
    unsigned char b[SLOT_MAX];
    size_t n;
    int rc;
    memset(h, 0, sizeof *h);
    if ((rc = tb_stream_read_full(in, h->fixed, TB_CRYPT_FIXED_LEN, &n)) < 0)
        return rc;
    if (n < TB_CRYPT_FIXED_LEN || memcmp(h->fixed, MAGIC, 7))
        return tb_error_set(TB_EVERIFY, "not an encrypted themis stream (%s)", where);
    if (h->fixed[7] != VERSION)
        return tb_error_set(TB_EVERIFY, "encrypted with format version %u, this tool reads %d (%s)", h->fixed[7],
                            VERSION, where);
    if (h->fixed[8] != CIPHER_AES256GCM || h->fixed[9] < 10 || h->fixed[9] > 24)
        return tb_error_set(TB_EVERIFY, "encryption header names an unknown cipher or chunk size (%s)", where);
    if ((rc = tb_stream_read_full(in, b, 1, &n)) < 0)
        return rc;
    if (n < 1 || b[0] == 0 || b[0] > TB_CRYPT_MAX_SLOTS)
        return tb_error_set(TB_EVERIFY, "encryption header is damaged: bad key slot count (%s)", where);
    h->nslots = b[0];
    h->len = TB_CRYPT_FIXED_LEN + 1;
    for (size_t i = 0; i < h->nslots; i++) {
        struct slot *s = &h->slots[i];
        size_t len, off = 9;
        if ((rc = tb_stream_read_full(in, b, 1, &n)) < 0)
            return rc;
        if (n < 1 || (b[0] != KIND_FILE && b[0] != KIND_PASS))
            return tb_error_set(TB_EVERIFY, "encryption header is damaged: unknown key slot kind (%s)", where);
        s->kind = b[0];
        len = slot_len(s);
        if ((rc = tb_stream_read_full(in, b + 1, len - 1, &n)) < 0)
            return rc;
        if (n < len - 1)
            return tb_error_set(TB_EVERIFY, "encryption header is truncated (%s)", where);
        memcpy(s->id, b + 1, 8);
        if (s->kind == KIND_PASS) {
            s->log2n = b[9], s->r = b[10], s->p = b[11];
            memcpy(s->salt, b + 13, 16);
            off = 29;
        }
        memcpy(s->nonce, b + off, 12);
        memcpy(s->wrapped, b + off + 12, 32);
        memcpy(s->tag, b + off + 44, TAG);
        h->len += len;
    }
    return 0;
}

static size_t header_put(const struct header *h, unsigned char *p)
{
    size_t n = TB_CRYPT_FIXED_LEN, k;
    memcpy(p, h->fixed, TB_CRYPT_FIXED_LEN);
    p[n++] = (unsigned char)h->nslots;
    for (size_t i = 0; i < h->nslots; i++)
        n += slot_put(&h->slots[i], p + n, &k);
    return n;
}

int tb_crypt_is_encrypted(const unsigned char *buf, size_t n)
{
    return n >= 8 && memcmp(buf, MAGIC, 7) == 0;
}

/* ---- the stream filters --------------------------------------------------- */

struct crypt_stream {
    tb_stream s;
    EVP_CIPHER_CTX *ctx;
    EVP_MD_CTX *md; /* the sealed digest: fixed header and chunks */
    unsigned char sealed[32];
    int sealed_done;
    unsigned char dek[32], fixed[TB_CRYPT_FIXED_LEN];
    size_t cs; /* chunk size */
    unsigned char *plain; /* writer: buffered input; reader: the chunk being returned */
    size_t have, pos;
    unsigned char *cbuf; /* a sealed chunk and, reading, one byte of look-ahead */
    size_t clen;
    uint64_t index;
    int done; /* reader: the final chunk was read */
};

static void chunk_nonce(const struct crypt_stream *c, uint64_t i, unsigned char nonce[12])
{
    unsigned char ctr[8];
    memcpy(nonce, c->fixed + 12, 12);
    tb_put_le64(ctr, i);
    for (int k = 0; k < 8; k++)
        nonce[4 + k] ^= ctr[k];
}

static size_t chunk_aad(const struct crypt_stream *c, uint64_t i, int final, unsigned char *aad)
{
    memcpy(aad, c->fixed, TB_CRYPT_FIXED_LEN);
    tb_put_le64(aad + TB_CRYPT_FIXED_LEN, i);
    aad[TB_CRYPT_FIXED_LEN + 8] = (unsigned char) final;
    return TB_CRYPT_FIXED_LEN + 9;
}

static void sealed_finish(struct crypt_stream *c)
{
    unsigned int n = 32;
    if (!c->sealed_done) {
        EVP_DigestFinal_ex(c->md, c->sealed, &n);
        c->sealed_done = 1;
    }
}

void tb_crypt_sealed_hex(tb_stream *s, char hex[65])
{
    struct crypt_stream *c = (struct crypt_stream *)s;
    sealed_finish(c);
    tb_hex(c->sealed, 32, hex);
}

static int emit(struct crypt_stream *c, int final)
{
    unsigned char nonce[12], aad[TB_CRYPT_FIXED_LEN + 9];
    int rc;
    chunk_nonce(c, c->index, nonce);
    if ((rc = gcm(c->ctx, 1, c->dek, nonce, aad, chunk_aad(c, c->index, final, aad), c->plain, c->have, c->cbuf,
                  c->cbuf + c->have)) < 0)
        return rc;
    EVP_DigestUpdate(c->md, c->cbuf, c->have + TAG);
    if ((rc = tb_stream_write(c->s.next, c->cbuf, c->have + TAG)) < 0)
        return rc;
    c->index++;
    c->have = 0;
    return 0;
}

static int crypt_write(tb_stream *s, const void *buf, size_t len)
{
    struct crypt_stream *c = (struct crypt_stream *)s;
    const unsigned char *p = buf;
    int rc;
    while (len) {
        size_t k;
        /* A full chunk is sealed only when more follows: the last one carries the flag. */
        if (c->have == c->cs && (rc = emit(c, 0)) < 0)
            return rc;
        k = c->cs - c->have < len ? c->cs - c->have : len;
        memcpy(c->plain + c->have, p, k);
        c->have += k;
        p += k;
        len -= k;
    }
    return 0;
}

static int crypt_wclose(tb_stream *s)
{
    struct crypt_stream *c = (struct crypt_stream *)s;
    int rc = emit(c, 1);
    sealed_finish(c);
    return rc;
}

/* Reads and opens the next chunk into plain. */
static int next_chunk(struct crypt_stream *c)
{
    unsigned char nonce[12], aad[TB_CRYPT_FIXED_LEN + 9];
    size_t n, want = c->cs + TAG + 1;
    int rc, final;
    if ((rc = tb_stream_read_full(c->s.next, c->cbuf + c->clen, want - c->clen, &n)) < 0)
        return rc;
    c->clen += n;
    final = c->clen < want;
    n = final ? c->clen : c->cs + TAG;
    if (n < TAG)
        return tb_error_set(TB_EVERIFY, "encrypted stream truncated in chunk %llu (%s)", (unsigned long long)c->index,
                            c->s.name);
    chunk_nonce(c, c->index, nonce);
    rc = gcm(c->ctx, 0, c->dek, nonce, aad, chunk_aad(c, c->index, final, aad), c->cbuf, n - TAG, c->plain,
             c->cbuf + n - TAG);
    if (rc < 0) {
        memset(c->plain, 0, c->cs);
        /* A whole chunk that opens as "not the last" means the chunks after it are gone. */
        if (final && n == c->cs + TAG &&
            gcm(c->ctx, 0, c->dek, nonce, aad, chunk_aad(c, c->index, 0, aad), c->cbuf, n - TAG, c->plain,
                c->cbuf + n - TAG) == 0) {
            memset(c->plain, 0, c->cs);
            return tb_error_set(TB_EVERIFY,
                                "encrypted stream truncated: it ends after chunk %llu, which is not the "
                                "last (%s)",
                                (unsigned long long)c->index, c->s.name);
        }
        return tb_error_set(TB_EVERIFY,
                            "chunk %llu does not authenticate: damaged, reordered or not from this "
                            "stream (%s)",
                            (unsigned long long)c->index, c->s.name);
    }
    EVP_DigestUpdate(c->md, c->cbuf, n);
    c->have = n - TAG;
    c->pos = 0;
    c->index++;
    if (final) {
        c->done = 1;
        c->clen = 0;
        sealed_finish(c);
    } else {
        c->cbuf[0] = c->cbuf[n];
        c->clen = 1;
    }
    return 0;
}

static int crypt_read(tb_stream *s, void *buf, size_t len, size_t *n)
{
    struct crypt_stream *c = (struct crypt_stream *)s;
    int rc;
    *n = 0;
    while (c->pos == c->have) {
        if (c->done)
            return 0;
        if ((rc = next_chunk(c)) < 0)
            return rc;
    }
    *n = c->have - c->pos < len ? c->have - c->pos : len;
    memcpy(buf, c->plain + c->pos, *n);
    c->pos += *n;
    return 0;
}

static void crypt_free(tb_stream *s)
{
    struct crypt_stream *c = (struct crypt_stream *)s;
    EVP_CIPHER_CTX_free(c->ctx);
    EVP_MD_CTX_free(c->md);
    if (c->plain)
        OPENSSL_clear_free(c->plain, c->cs);
    free(c->cbuf);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static const struct tb_stream_ops crypt_w_ops = { NULL, crypt_write, crypt_wclose, crypt_free };
static const struct tb_stream_ops crypt_r_ops = { crypt_read, NULL, NULL, crypt_free };

static int crypt_new(struct crypt_stream **out, const struct tb_stream_ops *ops, tb_stream *next,
                     const unsigned char fixed[TB_CRYPT_FIXED_LEN])
{
    struct crypt_stream *c = tb_stream_alloc(sizeof *c, ops, next, NULL);
    if (!c)
        return TB_EIO;
    memcpy(c->fixed, fixed, TB_CRYPT_FIXED_LEN);
    c->cs = (size_t)1 << fixed[9];
    c->ctx = EVP_CIPHER_CTX_new();
    c->md = EVP_MD_CTX_new();
    c->plain = malloc(c->cs);
    c->cbuf = malloc(c->cs + TAG + 1);
    if (!c->ctx || !c->md || !c->plain || !c->cbuf || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        c->s.next = NULL;
        crypt_free(&c->s);
        return tb_error_set(TB_EIO, "out of memory");
    }
    EVP_DigestUpdate(c->md, fixed, TB_CRYPT_FIXED_LEN);
    *out = c;
    return 0;
}

static int writer_new(tb_stream **out, tb_stream *next, tb_keyring *k, const struct tb_crypt_fixed *f,
                      const unsigned char *salt)
{
    struct header h = { 0 };
    struct crypt_stream *c = NULL;
    unsigned char buf[TB_CRYPT_FIXED_LEN + 1 + TB_CRYPT_MAX_SLOTS * SLOT_MAX];
    int rc;
    if (!k || k->n == 0)
        return tb_error_set(TB_EUSAGE, "encryption needs --key-file or --passphrase-file");
    memcpy(h.fixed, MAGIC, 7);
    h.fixed[7] = VERSION;
    h.fixed[8] = CIPHER_AES256GCM;
    h.fixed[9] = (unsigned char)f->chunk_log2;
    memcpy(h.fixed + 12, f->base_nonce, 12);
    for (size_t i = 0; i < k->n; i++) {
        unsigned char nonce[12];
        memcpy(nonce, f->wrap_nonce, 12);
        nonce[11] ^= (unsigned char)i;
        if ((rc = slot_make(h.fixed, &k->v[i], f->dek, nonce, salt, &h.slots[i])) < 0)
            return rc;
    }
    h.nslots = k->n;
    if ((rc = crypt_new(&c, &crypt_w_ops, next, h.fixed)) < 0)
        return rc;
    memcpy(c->dek, f->dek, 32);
    if ((rc = tb_stream_write(next, buf, header_put(&h, buf))) < 0) {
        c->s.next = NULL;
        crypt_free(&c->s);
        return rc;
    }
    *out = &c->s;
    return 0;
}

int tb_crypt_writer_fixed(tb_stream **out, tb_stream *next, tb_keyring *k, const struct tb_crypt_fixed *f)
{
    return writer_new(out, next, k, f, f->salt);
}

int tb_crypt_writer(tb_stream **out, tb_stream *next, tb_keyring *k)
{
    struct tb_crypt_fixed f;
    int rc;
    f.chunk_log2 = TB_CRYPT_CHUNK_LOG2;
    if ((rc = random_bytes(f.dek, 32)) == 0 && (rc = random_bytes(f.base_nonce, 12)) == 0 &&
        (rc = random_bytes(f.wrap_nonce, 12)) == 0)
        rc = writer_new(out, next, k, &f, NULL);
    OPENSSL_cleanse(&f, sizeof f);
    return rc;
}

int tb_crypt_file_writer(tb_stream **out, const char *path, tb_keyring *k)
{
    tb_stream *f = NULL;
    int rc = tb_stream_file(&f, path, "w");
    if (rc == 0 && (rc = tb_crypt_writer(out, f, k)) < 0)
        tb_stream_free(f);
    return rc;
}

int tb_crypt_reader(tb_stream **out, tb_stream *next, tb_keyring *k)
{
    struct header h;
    struct crypt_stream *c = NULL;
    unsigned char dek[32];
    int rc;
    if ((rc = header_read(next, &h, next->name)) < 0 || (rc = slot_open(&h, k, dek, next->name)) < 0)
        return rc;
    if ((rc = crypt_new(&c, &crypt_r_ops, next, h.fixed)) < 0)
        return rc;
    memcpy(c->dek, dek, 32);
    OPENSSL_cleanse(dek, 32);
    *out = &c->s;
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int file_header(const char *path, struct header *h, tb_stream **keep)
{
    tb_stream *f = NULL;
    int rc = tb_stream_file(&f, path, "r");
    if (rc == 0)
        rc = header_read(f, h, path);
    if (rc == 0 && keep)
        *keep = f;
    else
        tb_stream_free(f);
    return rc;
}

int tb_crypt_file_key_ids(const char *path, char *out, size_t outlen)
{
    struct header h;
    int rc = file_header(path, &h, NULL);
    *out = 0;
    for (size_t i = 0; rc == 0 && i < h.nslots; i++) {
        char hex[17];
        tb_hex(h.slots[i].id, 8, hex);
        snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? "," : "", hex);
    }
    return rc;
}

int tb_crypt_rekey_file(const char *path, tb_keyring *old, tb_keyring *add, int keep)
{
    struct header h, nh;
    tb_stream *in = NULL, *out = NULL;
    unsigned char dek[32], buf[TB_CRYPT_FIXED_LEN + 1 + TB_CRYPT_MAX_SLOTS * SLOT_MAX];
    char *tmp = NULL;
    struct stat st;
    int rc;
    if (!add || add->n == 0)
        return tb_error_set(TB_EUSAGE, "no new key given");
    if ((rc = file_header(path, &h, &in)) < 0)
        return rc;
    if ((rc = slot_open(&h, old, dek, path)) < 0)
        goto out;
    nh = h;
    nh.nslots = keep ? h.nslots : 0;
    for (size_t i = 0; i < add->n; i++) {
        unsigned char nonce[12];
        int dup = 0;
        for (size_t j = 0; j < nh.nslots && add->v[i].kind == KIND_FILE; j++)
            dup |= nh.slots[j].kind == KIND_FILE && memcmp(nh.slots[j].id, add->v[i].id, 8) == 0;
        if (dup)
            continue;
        if (nh.nslots == TB_CRYPT_MAX_SLOTS) {
            rc = tb_error_set(TB_EUSAGE, "too many keys (at most %d) (%s)", TB_CRYPT_MAX_SLOTS, path);
            goto out;
        }
        if ((rc = random_bytes(nonce, 12)) < 0 ||
            (rc = slot_make(h.fixed, &add->v[i], dek, nonce, NULL, &nh.slots[nh.nslots])) < 0)
            goto out;
        nh.nslots++;
    }
    if ((rc = tb_fs_temp_sibling(path, &tmp)) < 0 || (rc = tb_stream_file(&out, tmp, "w")) < 0)
        goto out;
    if (stat(path, &st) == 0)
        chmod(tmp, st.st_mode & 07777);
    if ((rc = tb_stream_write(out, buf, header_put(&nh, buf))) < 0 || (rc = tb_stream_copy(out, in, NULL)) < 0 ||
        (rc = tb_stream_close(out)) < 0)
        goto out;
    if (rename(tmp, path) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot replace %s", path);
        goto out;
    }
    rc = tb_fs_fsync_parent(path);
out:
    if (rc < 0 && tmp && out)
        unlink(tmp);
    OPENSSL_cleanse(dek, 32);
    tb_stream_free(out);
    tb_stream_free(in);
    free(tmp);
    return rc;
}
