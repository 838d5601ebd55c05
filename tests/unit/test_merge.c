/* test_merge: ThemisDB's merge operators, vectors worked out by hand from ThemisDB's source
 * (src/storage/merge_operators.cpp, RocksDBWrapper's SequenceU64IncrementMergeOperator). */
#include "tap.h"
#include "error.h"
#include "merge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ABSENT NULL

/* A value or operand written as bytes (len given: may hold NULs). */
struct bytes {
    const char *p;
    size_t len;
};
#define S(s) ((struct bytes){ s, sizeof(s) - 1 })

static struct bytes le(uint64_t v)
{
    static char bufs[16][8];
    static int next;
    char *b = bufs[next++ % 16];
    for (int i = 0; i < 8; i++)
        b[i] = (char)(v >> (8 * i));
    return (struct bytes){ b, 8 };
}

/* Full merge of existing (p NULL: absent) with the operands; 0 or the error code, with the
 * result compared to want when it succeeds. */
static int full(enum tb_merge_op op, struct bytes existing, int n, const struct bytes *ops, struct bytes want,
                const char *what)
{
    const char *p[16];
    size_t l[16];
    char *out = NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        p[i] = ops[i].p;
        l[i] = ops[i].len;
    }
    int rc = tb_merge_full(op, existing.p, existing.len, p, l, (size_t)n, &out, &len);
    if (rc == 0) {
        int same = want.p && len == want.len && memcmp(out, want.p, len) == 0;
        ok(same, "%s", what);
        if (!same)
            diag("got '%.*s' (%zu bytes), want '%.*s' (%zu bytes)", (int)len, out, len, want.p ? (int)want.len : 0,
                 want.p ? want.p : "", want.len);
    } else if (want.p) {
        ok(0, "%s (failed: %s)", what, tb_error_last());
    }
    free(out);
    return rc;
}

static void partial(enum tb_merge_op op, int n, const struct bytes *ops, struct bytes want, const char *what)
{
    const char *p[16];
    size_t l[16];
    char *out = NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        p[i] = ops[i].p;
        l[i] = ops[i].len;
    }
    int rc = tb_merge_partial(op, p, l, (size_t)n, &out, &len);
    ok(rc == 0 && len == want.len && memcmp(out, want.p, len) == 0, "partial: %s", what);
    free(out);
}

#define OPS(...) ((const struct bytes[]){ __VA_ARGS__ })
#define NOPS(...) (int)(sizeof OPS(__VA_ARGS__) / sizeof(struct bytes))
#define FULL(op, ex, want, what, ...) full(op, ex, NOPS(__VA_ARGS__), OPS(__VA_ARGS__), want, what)
#define FAILS(op, ex, what, ...) \
    is_int(full(op, ex, NOPS(__VA_ARGS__), OPS(__VA_ARGS__), (struct bytes){ NULL, 0 }, what), TB_EIO, "%s fails", what)
static const struct bytes none = { ABSENT, 0 };

static void test_lookup(void)
{
    is_int(tb_merge_lookup("RocksDBWrapper.SequenceU64IncrementMergeOperator"), TB_MERGE_SEQ_U64, "sequence name");
    is_int(tb_merge_lookup("CounterMergeOperator"), TB_MERGE_COUNTER, "counter name");
    is_int(tb_merge_lookup("AppendMergeOperator"), TB_MERGE_APPEND, "append name");
    is_int(tb_merge_lookup("SetMergeOperator"), TB_MERGE_SET, "set name");
    is_int(tb_merge_lookup("MaxMergeOperator"), TB_MERGE_MAX, "max name");
    is_int(tb_merge_lookup("{id=MaxMergeOperator;}"), TB_MERGE_MAX, "the {id=...} form");
    is_int(tb_merge_lookup("nullptr"), TB_MERGE_NONE, "nullptr is none");
    is_int(tb_merge_lookup(""), TB_MERGE_NONE, "empty is none");
    is_int(tb_merge_lookup(NULL), TB_MERGE_NONE, "NULL is none");
    is_int(tb_merge_lookup("SequenceU64IncrementMergeOperator"), TB_MERGE_UNKNOWN, "no guessing: prefix missing");
    is_int(tb_merge_lookup("countermergeoperator"), TB_MERGE_UNKNOWN, "no guessing: case");
    is_int(tb_merge_lookup("CounterMergeOperator "), TB_MERGE_UNKNOWN, "no guessing: trailing space");
    is_int(tb_merge_lookup("uint64add"), TB_MERGE_UNKNOWN, "RocksDB's own uint64add is not ThemisDB's");
    is_str(tb_merge_name(TB_MERGE_SEQ_U64), "RocksDBWrapper.SequenceU64IncrementMergeOperator", "sequence Name()");
    is_str(tb_merge_name(TB_MERGE_SET), "SetMergeOperator", "set Name()");
    ok(tb_merge_name(TB_MERGE_UNKNOWN) == NULL && tb_merge_name(TB_MERGE_NONE) == NULL, "no name for none/unknown");
    ok(tb_merge_create(TB_MERGE_UNKNOWN) == NULL && tb_merge_create(TB_MERGE_NONE) == NULL,
       "no operator for none/unknown");
    is_int(FULL(TB_MERGE_UNKNOWN, none, none, "unknown", S("1")), TB_EUSAGE, "merging with unknown is a usage error");
}

static void test_seq_u64(void)
{
    enum tb_merge_op op = TB_MERGE_SEQ_U64;
    FULL(op, none, le(5), "u64: absent + 5", le(5));
    FULL(op, none, le(12), "u64: absent + 5 + 7", le(5), le(7));
    FULL(op, le(100), le(101), "u64: 100 + 1", le(1));
    FULL(op, le(UINT64_MAX), le(0), "u64: wraps at 2^64", le(1));
    FULL(op, S("42"), le(43), "u64: a legacy decimal value + 1", le(1));
    FULL(op, S(" 7x"), le(8), "u64: stoull skips white space and stops at junk", le(1));
    FULL(op, S("12345678"), S("12345678"), "u64: an 8-character value is binary, not decimal", S("x"));
    FULL(op, S("abc"), le(2), "u64: an unparsable value counts as 0", le(2));
    FULL(op, S("99999999999999999999999"), le(4), "u64: an out-of-range value counts as 0", le(4));
    FULL(op, S("-1"), le(1), "u64: stoull(\"-1\") is 2^64-1", le(2));
    FULL(op, S(""), le(3), "u64: a present empty value counts as 0", le(3));
    FULL(op, none, le(0), "u64: an operand not 8 bytes adds 0", S("5"));
    FULL(op, le(9), le(9), "u64: an empty operand adds 0", S(""));
    partial(op, 2, OPS(le(1), le(2)), le(3), "u64: 1 + 2");
    partial(op, 3, OPS(le(1), le(2), le(3)), le(6), "u64: 1 + 2 + 3");
    /* AssociativeMergeOperator::PartialMerge passes the left operand as the existing
     * value, so there a decimal operand is parsed (in a full merge it adds 0). */
    partial(op, 2, OPS(S("5"), le(1)), le(6), "u64: a decimal left operand is read as the value");
}

static void test_counter(void)
{
    enum tb_merge_op op = TB_MERGE_COUNTER;
    FULL(op, none, S("5"), "counter: absent + 5", S("5"));
    FULL(op, none, S("2"), "counter: 5 + -3", S("5"), S("-3"));
    FULL(op, S("10"), S("17"), "counter: 10 + 7", S("7"));
    FULL(op, none, S("5"), "counter: from_chars stops at junk", S("5abc"));
    FULL(op, none, S("7"), "counter: leading zeros", S("007"));
    FULL(op, S("9223372036854775807"), S("-9223372036854775808"), "counter: int64 wraps", S("1"));
    FULL(op, none, S("-9223372036854775808"), "counter: INT64_MIN parses", S("-9223372036854775808"));
    FAILS(op, none, "counter: '+5'", S("+5"));
    FAILS(op, none, "counter: ' 5'", S(" 5"));
    FAILS(op, none, "counter: an empty operand", S(""));
    FAILS(op, none, "counter: '-'", S("-"));
    FAILS(op, none, "counter: 2^63", S("9223372036854775808"));
    FAILS(op, S("abc"), "counter: an unparsable existing value", S("1"));
    ok(strstr(tb_error_last(), "existing value") != NULL, "  says it was the existing value: %s", tb_error_last());
    FAILS(op, S(""), "counter: a present empty value", S("1"));
    FAILS(op, none, "counter: a bad operand after good ones", S("1"), S("2"), S("x"));
    partial(op, 2, OPS(S("3"), S("4")), S("7"), "counter: 3 + 4");
}

static void test_append(void)
{
    enum tb_merge_op op = TB_MERGE_APPEND;
    FULL(op, none, S("a"), "append: absent + a", S("a"));
    FULL(op, none, S("a|b|c"), "append: a, b, c", S("a"), S("b"), S("c"));
    FULL(op, S("x"), S("x|y"), "append: x + y", S("y"));
    FULL(op, S(""), S("|a"), "append: a present empty value still gets the delimiter", S("a"));
    FULL(op, S("x"), S("x|"), "append: an empty operand", S(""));
    FULL(op, S("a\0b"), S("a\0b|c\0"), "append: binary bytes pass through", S("c\0"));
    partial(op, 3, OPS(S("a"), S("b"), S("c")), S("a|b|c"), "append: a|b|c");
}

static void test_set(void)
{
    enum tb_merge_op op = TB_MERGE_SET;
    FULL(op, none, S("a,b"), "set: sorted", S("b,a"));
    FULL(op, S("c,a"), S("a,b,c"), "set: union without duplicates", S("b,a"));
    FULL(op, none, S("x"), "set: duplicates within an operand", S("x,x,x"));
    FULL(op, none, S(""), "set: an empty set", S(""));
    FULL(op, none, S(""), "set: only commas", S(",,,"));
    FULL(op, S("a,,b,"), S("a,b,c"), "set: empty items dropped", S(",c"));
    FULL(op, none, S("A,B,a,b"), "set: byte order, upper case first", S("b,a,B,A"));
    FULL(op, none, S("a,ab"), "set: a prefix sorts first", S("ab,a"));
    FULL(op, none, S("z,\xc3\xa9"), "set: bytes compare unsigned", S("\xc3\xa9,z"));
    FULL(op, none, S(" a,a"), "set: spaces are part of items", S("a, a"));
    FULL(op, S("b"), S("a,b,c"), "set: several operands", S("c"), S("a"), S("b"));
    partial(op, 2, OPS(S("b"), S("a")), S("a,b"), "set: b + a");
}

static void test_max(void)
{
    enum tb_merge_op op = TB_MERGE_MAX;
    FULL(op, none, S("3.500000"), "max: std::to_string prints six decimals", S("3.5"));
    FULL(op, none, S("2.500000"), "max: of three", S("1"), S("2.5"), S("2"));
    FULL(op, S("10"), S("10.000000"), "max: the existing value wins", S("3"));
    FULL(op, none, S("-2.000000"), "max: negative", S("-2"));
    FULL(op, none, S("0.100000"), "max: 0.1", S("0.1"));
    FULL(op, none, S("0.000000"), "max: 1e-7 prints as 0", S("1e-7"));
    FULL(op, none, S("100000000000000000000.000000"), "max: 1e20", S("1e20"));
    FULL(op, none, S("1.000000"), "max: from_chars stops at an incomplete exponent", S("1e"));
    FULL(op, none, S("0.500000"), "max: .5", S(".5"));
    FULL(op, none, S("0.000000"), "max: hexadecimal reads as 0", S("0x10"));
    FULL(op, none, S("-0.000000"), "max: -0x10 reads as -0", S("-0x10"));
    FULL(op, none, S("0.000000"), "max: a subnormal is kept", S("1e-310"));
    FULL(op, none, S("inf"), "max: inf", S("inf"));
    FULL(op, none, S("-inf"), "max: -Infinity", S("-Infinity"));
    FULL(op, S("1"), S("1.000000"), "max: NaN operand keeps the existing value", S("nan"));
    FULL(op, S("nan"), S("nan"), "max: NaN existing value stays", S("5"));
    FAILS(op, none, "max: 'abc'", S("abc"));
    FAILS(op, none, "max: an empty operand", S(""));
    FAILS(op, none, "max: '+1'", S("+1"));
    FAILS(op, none, "max: ' 1'", S(" 1"));
    FAILS(op, none, "max: '.'", S("."));
    FAILS(op, none, "max: 1e400 overflows", S("1e400"));
    FAILS(op, none, "max: 1e-400 underflows to zero", S("1e-400"));
    FAILS(op, S("x"), "max: an unparsable existing value", S("1"));
    FAILS(op, S(""), "max: a present empty value", S("1"));
    partial(op, 2, OPS(S("1"), S("7")), S("7.000000"), "max: 1, 7");
}

int main(void)
{
    test_lookup();
    test_seq_u64();
    test_counter();
    test_append();
    test_set();
    test_max();
    return done_testing();
}
