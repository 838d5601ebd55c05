/* merge: ThemisDB's five merge operators re-implemented in C from its source. */
#include "merge.h"
#include "bytes.h"
#include "error.h"
#include "rocksopts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names exactly as ThemisDB's Name() returns them: RocksDB stores the name in the OPTIONS
 * file and refuses to open a column family whose operator name differs. */
static const char *const op_names[] = {
    [TB_MERGE_SEQ_U64] = "RocksDBWrapper.SequenceU64IncrementMergeOperator",
    [TB_MERGE_COUNTER] = "CounterMergeOperator",
    [TB_MERGE_APPEND] = "AppendMergeOperator",
    [TB_MERGE_SET] = "SetMergeOperator",
    [TB_MERGE_MAX] = "MaxMergeOperator",
};
#define NOPS (sizeof op_names / sizeof op_names[0])

enum tb_merge_op tb_merge_lookup(const char *name)
{
    size_t len;
    if (!name || !*name || strcmp(name, "nullptr") == 0)
        return TB_MERGE_NONE;
    len = strlen(name);
    /* A Customizable with options of its own is written "{id=NAME;opt=...}". */
    if (strncmp(name, "{id=", 4) == 0) {
        name += 4;
        len = strcspn(name, ";}");
    }
    for (size_t i = TB_MERGE_SEQ_U64; i < NOPS; i++)
        if (strlen(op_names[i]) == len && memcmp(op_names[i], name, len) == 0)
            return (enum tb_merge_op)i;
    return TB_MERGE_UNKNOWN;
}

const char *tb_merge_name(enum tb_merge_op op)
{
    return (unsigned)op < NOPS && op >= TB_MERGE_SEQ_U64 ? op_names[op] : NULL;
}

/* s[0..len) as a NUL-terminated copy: ThemisDB parses std::string copies with C functions
 * (stoull) that stop at the first NUL too. */
static char *cstr(const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

/* std::from_chars(int64_t): an optional '-', then decimal digits, the rest ignored; no
 * digits or out of range is a failure. */
static int from_chars_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, limit;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return -1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* std::from_chars(double) in libstdc++ (chars_format::general): strtod's syntax without
 * leading white space, '+' or hexadecimal ("0x10" reads as 0), the rest ignored; overflow
 * and underflow to zero fail, subnormal results are kept. The tools never call setlocale,
 * so strtod's decimal point is '.' as from_chars's. */
static int from_chars_double(const char *s, size_t len, double *out)
{
    size_t i = 0;
    char *c, *end;
    double v;
    int rc = 0;
    if (len == 0 || s[0] == '+' || s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return -1;
    if (s[0] == '-')
        i = 1;
    if (i + 1 < len && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        *out = i ? -0.0 : 0.0;
        return 0;
    }
    if (i < len && (s[i] == ' ' || s[i] == '+' || (s[i] >= '\t' && s[i] <= '\r')))
        return -1; /* strtod would skip these after the sign; from_chars does not */
    if (!(c = cstr(s, len)))
        return -1;
    errno = 0;
    v = strtod(c, &end);
    if (end == c)
        rc = -1;
    else if (errno == ERANGE && (v == 0 || isinf(v)))
        rc = -1;
    else
        *out = v;
    free(c);
    return rc;
}

/* A growing result buffer. */
struct buf {
    char *p;
    size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(p = realloc(b->p, cap)))
            return tb_error_set(TB_EIO, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Adds the non-empty ','-separated items of s (std::getline(ss, item, ',')). */
static int split(const char *s, size_t len, struct tb_span **items, size_t *n, size_t *cap)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        if (i > start) {
            if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                struct tb_span *p = realloc(*items, c * sizeof *p);
                if (!p)
                    return tb_error_set(TB_EIO, "out of memory");
                *items = p;
                *cap = c;
            }
            (*items)[(*n)++] = (struct tb_span){ s + start, i - start };
        }
        start = i + 1;
    }
    return 0;
}

static int merge_set(const char *ex, size_t exlen, const char *v, size_t vlen, struct buf *out)
{
    struct tb_span *items = NULL;
    size_t n = 0, cap = 0, kept = 0;
    int rc = 0;
    if ((ex && (rc = split(ex, exlen, &items, &n, &cap)) < 0) || (rc = split(v, vlen, &items, &n, &cap)) < 0)
        goto cleanup;
    if (n)
        qsort(items, n, sizeof *items, tb_span_cmp);
    rc = put(out, "", 0); /* an empty set is an empty value, not an absent one */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i && tb_span_cmp(&items[i - 1], &items[i]) == 0)
            continue;
        if ((kept++ && (rc = put(out, ",", 1)) < 0) || (rc = put(out, items[i].p, items[i].len)) < 0)
            break;
    }
cleanup:
    free(items);
    return rc;
}

/* One step of an AssociativeMergeOperator: ThemisDB's Merge(existing, value). */
static int merge_one(enum tb_merge_op op, const char *ex, size_t exlen, const char *v, size_t vlen, struct buf *out)
{
    char num[512];
    int n;
    switch (op) {
    case TB_MERGE_SEQ_U64: {
        uint64_t base = 0, delta = 0, sum;
        char le[8];
        if (ex && exlen == 8) {
            base = tb_get_le64((const unsigned char *)ex);
        } else if (ex && exlen > 0) {
            /* Values from before the binary format: std::stoull, whose failure ThemisDB
             * catches and reads as 0. */
            char *c = cstr(ex, exlen), *end;
            if (!c)
                return tb_error_set(TB_EIO, "out of memory");
            errno = 0;
            base = strtoull(c, &end, 10);
            if (end == c || errno == ERANGE)
                base = 0;
            free(c);
        }
        if (vlen == 8) /* an operand of any other size adds 0 */
            delta = tb_get_le64((const unsigned char *)v);
        sum = base + delta;
        for (int i = 0; i < 8; i++)
            le[i] = (char)(sum >> (8 * i));
        return put(out, le, 8);
    }
    case TB_MERGE_COUNTER: {
        int64_t delta, cur = 0;
        if (from_chars_i64(v, vlen, &delta) < 0)
            return tb_error_set(TB_EIO, "CounterMergeOperator: Failed to parse value as integer");
        if (ex && from_chars_i64(ex, exlen, &cur) < 0)
            return tb_error_set(TB_EIO, "CounterMergeOperator: Failed to parse existing value as integer");
        /* int64 overflow wraps, as ThemisDB's addition does on the machines it runs on */
        n = snprintf(num, sizeof num, "%" PRId64, (int64_t)((uint64_t)cur + (uint64_t)delta));
        return put(out, num, (size_t)n);
    }
    case TB_MERGE_APPEND:
        if (ex && ((n = put(out, ex, exlen)) < 0 || (n = put(out, "|", 1)) < 0))
            return n;
        return put(out, v, vlen);
    case TB_MERGE_SET: return merge_set(ex, exlen, v, vlen, out);
    case TB_MERGE_MAX: {
        double nv, exv, max;
        if (from_chars_double(v, vlen, &nv) < 0)
            return tb_error_set(TB_EIO, "MaxMergeOperator: Failed to parse value as double");
        max = nv;
        if (ex) {
            if (from_chars_double(ex, exlen, &exv) < 0)
                return tb_error_set(TB_EIO, "MaxMergeOperator: Failed to parse existing value as double");
            max = exv < nv ? nv : exv; /* std::max(existing, new): NaN keeps existing */
        }
        /* std::to_string(double) is "%f"; the largest double takes 316 characters */
        n = snprintf(num, sizeof num, "%f", max);
        return put(out, num, (size_t)n);
    }
    default: return tb_error_set(TB_EUSAGE, "no merge operator to merge with");
    }
}

/* Folds operands into base (NULL: absent) as AssociativeMergeOperator::FullMergeV2. */
static int fold(enum tb_merge_op op, const char *base, size_t base_len, const char *const *operands, const size_t *lens,
                size_t n, char **out, size_t *out_len)
{
    struct buf cur = { 0 }, next = { 0 };
    const char *ex = base;
    size_t exlen = base_len;
    int rc = 0;
    if (n == 0 || !tb_merge_name(op)) {
        rc = tb_error_set(TB_EUSAGE, n ? "no merge operator to merge with" : "nothing to merge");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        struct buf t;
        next.len = 0;
        if ((rc = merge_one(op, ex, exlen, operands[i], lens[i], &next)) < 0)
            goto cleanup;
        t = cur;
        cur = next;
        next = t;
        ex = cur.p;
        exlen = cur.len;
    }
    *out = cur.p;
    *out_len = cur.len;
    cur.p = NULL;
cleanup:
    free(cur.p);
    free(next.p);
    return rc;
}

int tb_merge_full(enum tb_merge_op op, const char *existing, size_t existing_len, const char *const *operands,
                  const size_t *operand_lens, size_t n, char **out, size_t *out_len)
{
    return fold(op, existing, existing_len, operands, operand_lens, n, out, out_len);
}

int tb_merge_partial(enum tb_merge_op op, const char *const *operands, const size_t *operand_lens, size_t n, char **out,
                     size_t *out_len)
{
    if (n < 2)
        return tb_error_set(TB_EUSAGE, "a partial merge needs two operands");
    return fold(op, operands[0], operand_lens[0], operands + 1, operand_lens + 1, n - 1, out, out_len);
}

/* The C API's callbacks; the state is the operator itself. */
static void op_destroy(void *state)
{
    (void)state;
}

static const char *op_name(void *state)
{
    return tb_merge_name((enum tb_merge_op)(intptr_t)state);
}

/* RocksDB assigns the result even when the merge failed, so always return a buffer. */
static char *result(int rc, char *out, size_t len, unsigned char *success, size_t *new_len)
{
    if (rc < 0) {
        *success = 0;
        *new_len = 0;
        return malloc(1);
    }
    *success = 1;
    *new_len = len;
    return out;
}

static char *op_full(void *state, const char *key, size_t klen, const char *existing, size_t existing_len,
                     const char *const *operands, const size_t *lens, int n, unsigned char *success, size_t *new_len)
{
    char *out = NULL;
    size_t len = 0;
    (void)key;
    (void)klen;
    int rc = tb_merge_full((enum tb_merge_op)(intptr_t)state, existing, existing_len, operands, lens,
                           n > 0 ? (size_t)n : 0, &out, &len);
    return result(rc, out, len, success, new_len);
}

static char *op_partial(void *state, const char *key, size_t klen, const char *const *operands, const size_t *lens,
                        int n, unsigned char *success, size_t *new_len)
{
    char *out = NULL;
    size_t len = 0;
    (void)key;
    (void)klen;
    int rc = tb_merge_partial((enum tb_merge_op)(intptr_t)state, operands, lens, n > 0 ? (size_t)n : 0, &out, &len);
    return result(rc, out, len, success, new_len);
}

rocksdb_mergeoperator_t *tb_merge_create(enum tb_merge_op op)
{
    if (!tb_merge_name(op))
        return NULL;
    /* delete_value NULL: RocksDB free()s our malloc'd results. */
    return rocksdb_mergeoperator_create((void *)(intptr_t)op, op_destroy, op_full, op_partial, NULL, op_name);
}

/* A merge operator the tools do not know, under its own name: opening the database needs
 * none, reading a key that holds merge operands fails (RocksDB: "Could not perform merge"),
 * and that failure is reported for what it is (tb_merge_unknown). */
static void unknown_destroy(void *state)
{
    free(state);
}

static const char *unknown_name(void *state)
{
    return state;
}

static char *unknown_full(void *state, const char *key, size_t klen, const char *existing, size_t existing_len,
                          const char *const *operands, const size_t *lens, int n, unsigned char *success,
                          size_t *new_len)
{
    (void)state, (void)key, (void)klen, (void)existing, (void)existing_len, (void)operands, (void)lens, (void)n;
    *success = 0;
    *new_len = 0;
    return NULL;
}

static char *unknown_partial(void *state, const char *key, size_t klen, const char *const *operands, const size_t *lens,
                             int n, unsigned char *success, size_t *new_len)
{
    (void)state, (void)key, (void)klen, (void)operands, (void)lens, (void)n;
    *success = 0;
    *new_len = 0;
    return NULL;
}

rocksdb_mergeoperator_t *tb_merge_create_unknown(const char *name)
{
    char *state = strdup(name ? name : "");
    return state
        ? rocksdb_mergeoperator_create(state, unknown_destroy, unknown_full, unknown_partial, NULL, unknown_name)
        : NULL;
}

int tb_merge_unknown(const char *dbdir, char **why)
{
    struct tb_rocksopts opts = { 0 };
    int rc = tb_rocksopts_read(dbdir, &opts), found = 0;
    *why = NULL;
    if (rc == TB_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < opts.ncf && !found; i++) {
        const char *raw = opts.cf[i].merge_operator;
        if (tb_merge_lookup(raw) != TB_MERGE_UNKNOWN)
            continue;
        found = 1;
        if (asprintf(why, "merge operator %s of column family %s is not one the tools know", raw, opts.cf[i].name) <
            0) {
            *why = NULL;
            found = tb_error_set(TB_EIO, "out of memory");
        }
    }
    tb_rocksopts_clear(&opts);
    return found;
}

int tb_merge_cf_options(const char *dbdir, const rocksdb_options_t *base, const char *const *names, size_t ncf,
                        rocksdb_options_t ***out)
{
    struct tb_rocksopts opts = { 0 };
    rocksdb_options_t **o = calloc(ncf ? ncf : 1, sizeof *o);
    int rc = tb_rocksopts_read(dbdir, &opts);
    if (rc == TB_ENOENT) /* RocksDB before 4.x wrote none: nothing names an operator */
        rc = 0;
    if (rc < 0) {
        tb_error_wrap(rc, "cannot read the database's OPTIONS file");
        goto cleanup;
    }
    if (!o) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < ncf; i++) {
        const char *raw = tb_rocksopts_merge_operator(&opts, names[i]);
        enum tb_merge_op op = tb_merge_lookup(raw);
        if (!(o[i] = rocksdb_options_create_copy((rocksdb_options_t *)base))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if (op == TB_MERGE_UNKNOWN)
            rocksdb_options_set_merge_operator(o[i], tb_merge_create_unknown(raw));
        else if (op != TB_MERGE_NONE)
            rocksdb_options_set_merge_operator(o[i], tb_merge_create(op));
    }
    *out = o;
    o = NULL;
cleanup:
    tb_merge_cf_options_free(o, ncf);
    tb_rocksopts_clear(&opts);
    return rc;
}

void tb_merge_cf_options_free(rocksdb_options_t **o, size_t ncf)
{
    for (size_t i = 0; o && i < ncf; i++)
        if (o[i])
            rocksdb_options_destroy(o[i]);
    free(o);
}
