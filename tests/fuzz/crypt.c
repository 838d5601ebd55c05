/* fuzz target crypt: the input as an encrypted stream (TBCRYPT, docs/encryption.md) read
 * through tb_crypt_reader with the corpus's key (fuzz.h) to its end, as restore and the WAL
 * archive read sealed archives and segments. */
#include "fuzz.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[8192];
    tb_stream *in = NULL, *c = NULL;
    uint64_t got = 0;
    size_t n;
    int rc;
    char hex[65];
    if (tb_stream_mem_reader(&in, data, size) < 0)
        abort();
    tb_crypt_is_encrypted(data, size < 8 ? 0 : size);
    if (tb_crypt_reader(&c, in, fuzz_keyring()) < 0) {
        tb_stream_free(in); /* still ours when refused */
        goto cleanup;
    }
    while ((rc = tb_stream_read(c, buf, sizeof buf, &n)) == 0 && n)
        got += n;
    if (rc == 0) {
        tb_crypt_sealed_hex(c, hex);
        /* Each 64 KiB chunk holds its plain bytes with a 16-byte tag, so no more comes out. */
        fuzz_assert(got <= size, "%llu plain bytes out of a %zu-byte stream", (unsigned long long)got, size);
    }
cleanup:
    tb_stream_free(c);
    tb_error_clear();
    return 0;
}
