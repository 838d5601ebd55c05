/* fuzz: what the fuzz targets share: libFuzzer's entry point, a private temporary directory
 * (removed at exit) and a check that stops the process on a broken invariant. */
#ifndef TB_FUZZ_H
#define TB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "error.h"
#include "fs.h"

/* Each target defines it; libFuzzer's main or tests/fuzz/driver.c calls it per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_[4096];

static inline void fuzz_tmpdir_remove(void)
{
    if (fuzz_dir_[0])
        tb_fs_rm_rf(fuzz_dir_);
}

/* The process's own directory under $TMPDIR (or /tmp), made on first use: targets write
 * nothing anywhere else. */
static inline const char *fuzz_tmpdir(void)
{
    if (!fuzz_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/tb-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_tmpdir_remove);
    }
    return fuzz_dir_;
}

/* Writes data as NAME in the temporary directory; returns its path (static). */
static inline const char *fuzz_put(const char *name, const uint8_t *data, size_t size)
{
    static char path[4200];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    if (!(f = fopen(path, "wb")) || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: write");
        abort();
    }
    return path;
}

/* The key the corpus's encrypted streams are sealed for (tests/fuzz/corpus/README). */
#define FUZZ_KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* A keyring with that key, made once (from a key file in the temporary directory). */
static inline tb_keyring *fuzz_keyring(void)
{
    static tb_keyring *k;
    if (!k && (tb_keyring_new(&k) < 0 || tb_keyring_add_key_file(k, fuzz_put("fuzz.key", (const uint8_t *)FUZZ_KEY_HEX "\n",
                                                                              strlen(FUZZ_KEY_HEX) + 1)) < 0)) {
        fprintf(stderr, "fuzz: keyring: %s\n", tb_error_last());
        abort();
    }
    return k;
}

/* The input as a NUL-terminated string (malloc'd; NULs inside stay). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A broken invariant is a finding: say which and abort (the fuzzer saves the input). */
#define fuzz_assert(cond, ...) do { \
    if (!(cond)) { \
        fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); \
        fprintf(stderr, " (last error: %s)\n", tb_error_last() ? tb_error_last() : ""); \
        abort(); \
    } } while (0)

#endif
