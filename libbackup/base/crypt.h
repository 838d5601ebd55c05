/* crypt: encryption at rest (docs/encryption.md). AES-256-GCM over fixed-size chunks, each
 * sealed with its index and whether it is the last, under a random data key per stream; the
 * data key is wrapped by every key-encryption key of a keyring (a 32-byte key file, or a
 * passphrase through scrypt). Fails closed: a reader returns no byte of a chunk that did not
 * authenticate, and reports truncation and trailing bytes as verification failures. */
#ifndef TB_CRYPT_H
#define TB_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define TB_CRYPT_FIXED_LEN 24 /* magic, version, cipher, chunk size, base nonce */
#define TB_CRYPT_CHUNK_LOG2 16 /* 64 KiB chunks */
#define TB_CRYPT_MAX_SLOTS 16

typedef struct tb_keyring tb_keyring;

int tb_keyring_new(tb_keyring **out);
void tb_keyring_free(tb_keyring *k);
/* A key file: 32 bytes, raw or as 64 hex digits (white space around them ignored). */
int tb_keyring_add_key_file(tb_keyring *k, const char *path);
/* A passphrase: the file's first line. Each slot wrapping with it has its own scrypt salt. */
int tb_keyring_add_passphrase_file(tb_keyring *k, const char *path);
size_t tb_keyring_size(const tb_keyring *k);
/* The 16 hex digits that identify key i (a passphrase's id depends on the salt: the id of
 * its most recent derivation, or "passphrase"). */
const char *tb_keyring_id(const tb_keyring *k, size_t i);

/* Whether buf (n >= 8 bytes) starts an encrypted stream. */
int tb_crypt_is_encrypted(const unsigned char *buf, size_t n);

/* Writer: header, then the chunks; owns next. */
int tb_crypt_writer(tb_stream **out, tb_stream *next, tb_keyring *k);
/* A writer into a new file at path (fsynced on close), encrypted for k. */
int tb_crypt_file_writer(tb_stream **out, const char *path, tb_keyring *k);
/* Reader: owns next. A key that opens no slot of the header is TB_EKEY ("wrong key",
 * naming the ids); damage, reordering, truncation or trailing bytes are TB_EVERIFY, naming
 * the chunk. */
int tb_crypt_reader(tb_stream **out, tb_stream *next, tb_keyring *k);
/* SHA-256 of the stream without its key slots (the fixed header and the chunks): what names
 * an encrypted archive, so rekeying does not change it. Valid after a writer's close or a
 * reader's end of stream. */
void tb_crypt_sealed_hex(tb_stream *s, char hex[65]);

/* Key ids (16 hex digits each, comma-separated) of the slots in an encrypted file's header. */
int tb_crypt_file_key_ids(const char *path, char *out, size_t outlen);

/* Rewrites the key slots of the encrypted file at path: the data key is unwrapped with a key
 * of old, then wrapped with every key of add; keep leaves the existing slots (--add-key),
 * else they are replaced (--rekey). The chunks are copied unchanged; temp file, fsync,
 * rename. */
int tb_crypt_rekey_file(const char *path, tb_keyring *old, tb_keyring *add, int keep);

/* Tests: fixed data key, nonces and salt instead of random ones, and a chunk size. */
struct tb_crypt_fixed {
    unsigned char dek[32], base_nonce[12], wrap_nonce[12], salt[16];
    unsigned chunk_log2;
};
int tb_crypt_writer_fixed(tb_stream **out, tb_stream *next, tb_keyring *k, const struct tb_crypt_fixed *f);

/* One AES-256-GCM operation (tests check it against NIST's vectors). open: 0 on success,
 * TB_EVERIFY when the tag does not match. */
int tb_gcm_seal(const unsigned char key[32], const unsigned char nonce[12], const unsigned char *aad, size_t aadlen,
                const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[16]);
int tb_gcm_open(const unsigned char key[32], const unsigned char nonce[12], const unsigned char *aad, size_t aadlen,
                const unsigned char *in, size_t len, unsigned char *out, const unsigned char tag[16]);

#endif
