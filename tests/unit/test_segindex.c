/* test_segindex: the WAL archive's tables read strictly, over hand-made good and bad
 * index.tsv, cf.tsv and state.tsv: each bad one is TB_EVERIFY naming the file and the line,
 * and nothing that reads the index (load, repair, drop_prefix) rewrites a bad one. */
#include "tap.h"
#include "archiver.h"
#include "error.h"
#include "fs.h"
#include "segment.h"
#include "tsv.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HDR "# first_seq\tnext_seq\tfirst_ts_ns\tlast_ts_ns\tsize\tsha256\tname\n"

static char dir[] = "/tmp/test_segindex.XXXXXX";

/* An index line for first..next whose name agrees with it. */
static const char *L(uint64_t first, uint64_t next)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%020" PRIu64 "\t%020" PRIu64 "\t1000\t2000\t123\t" SHA "\t%020" PRIu64 "-%020" PRIu64
             ".wal.zst\n", first, next, first, next);
    return b;
}

static void put(const char *name, const char *text, size_t len)
{
    char *path = tb_fs_join(dir, name);
    tb_fs_write_atomic(path, text, len, 0644);
    free(path);
}

/* Loads an index made of text: rc, and (rc == 0) how many segments. */
static int load(const char *text, size_t *n)
{
    struct tb_seg_info *v = NULL;
    int rc;
    put(TB_SEG_INDEX, text, strlen(text));
    rc = tb_seg_index_load(dir, NULL, &v, n);
    free(v);
    return rc;
}

static void good_index(const char *text, size_t want, const char *what)
{
    size_t n = 0;
    int rc = load(text, &n);
    ok(rc == 0 && n == want, "index %s: read, %zu segments", what, want);
    if (rc)
        diag("%s", tb_error_last());
}

/* A bad index is TB_EVERIFY with a message holding want (and "index.tsv line"). */
static void bad_index(const char *text, const char *want, const char *what)
{
    size_t n = 0;
    int rc = load(text, &n);
    const char *msg = tb_error_last();
    ok(rc == TB_EVERIFY && strstr(msg, "index.tsv line ") && strstr(msg, want), "index %s: refused (%s)", what,
       rc == TB_EVERIFY ? msg : "accepted");
}

static void test_index(void)
{
    char buf[4096], *path;
    size_t n;
    good_index("", 0, "empty");
    good_index(HDR, 0, "of its header alone");
    snprintf(buf, sizeof buf, HDR "%s%s%s", L(1, 5), L(5, 9), L(9, 20));
    good_index(buf, 3, "of three contiguous segments");
    snprintf(buf, sizeof buf, HDR "%s%s%s%s", L(1, 5), L(5, 5), L(5, 9), L(9, 9));
    good_index(buf, 4, "with segments of Prepares alone (no sequence)");
    snprintf(buf, sizeof buf, HDR "%s%s", L(1, 5), L(9, 12));
    good_index(buf, 2, "with sequences between two segments that no record took");
    snprintf(buf, sizeof buf, HDR "# from\t9\n%s%s", L(9, 12), L(12, 15));
    good_index(buf, 2, "after expiry ('# from')");
    snprintf(buf, sizeof buf, "# from\t9\n" HDR "# a comment\n%s", L(9, 12));
    good_index(buf, 1, "as a push writes it, with a comment");
    good_index(HDR "00000000000000000001\t00000000000000000005\t-7\t9223372036854775807\t0\t" SHA
               "\t00000000000000000001-00000000000000000005.wal.zst\n", 1, "with time stamps at the ends of their range");

    snprintf(buf, sizeof buf, HDR "%s%s%s", L(1, 5), L(5, 9), L(1, 5));
    bad_index(buf, "line 4: segment 00000000000000000001-00000000000000000005.wal.zst repeats line 2", "with a line again");
    snprintf(buf, sizeof buf, HDR "%s%s%s%s", L(1, 5), L(5, 9), L(1, 5), L(5, 9));
    bad_index(buf, "line 4: segment 00000000000000000001-00000000000000000005.wal.zst repeats line 2", "twice over");
    snprintf(buf, sizeof buf, HDR "%s%s%s", L(1, 5), L(5, 5), L(5, 5));
    bad_index(buf, "line 4: segment 00000000000000000005-00000000000000000005.wal.zst repeats line 3",
              "with a segment of no sequence twice");
    snprintf(buf, sizeof buf, HDR "%s%s%s", L(1, 5), L(9, 12), L(5, 9));
    bad_index(buf, "line 4: segment 00000000000000000005-00000000000000000009.wal.zst starts at 5, before line 3's",
              "with lines swapped");
    snprintf(buf, sizeof buf, HDR "%s%s", L(1, 10), L(5, 12));
    bad_index(buf, "line 3: segment 00000000000000000005-00000000000000000012.wal.zst starts at 5", "with segments overlapping");
    snprintf(buf, sizeof buf, HDR "%s%s", L(5, 9), L(5, 5));
    bad_index(buf, "line 3:", "with a segment of no sequence after the one it precedes");
    bad_index(HDR "00000000000000000001\t00000000000000000006\t1\t2\t3\t" SHA
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: sequences 1..6 are not those of",
              "with a range that is not its name's");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t2\t3\t" SHA "\n", "line 2: 6 fields, not 7",
              "with a field missing");
    snprintf(buf, sizeof buf, HDR "%.*s\textra\n", (int)strlen(L(1, 5)) - 1, L(1, 5));
    bad_index(buf, "line 2: 8 fields, not 7", "with a field too many");
    bad_index(HDR "+0000000000000000001\t00000000000000000005\t1\t2\t3\t" SHA
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: a sequence number", "with a sign");
    bad_index(HDR " 1\t00000000000000000005\t1\t2\t3\t" SHA "\t00000000000000000001-00000000000000000005.wal.zst\n",
              "line 2: a sequence number", "with a space before a number");
    bad_index(HDR "1x\t00000000000000000005\t1\t2\t3\t" SHA "\t00000000000000000001-00000000000000000005.wal.zst\n",
              "line 2: a sequence number", "with junk after a number");
    bad_index(HDR "99999999999999999999\t00000000000000000005\t1\t2\t3\t" SHA
              "\t99999999999999999999-00000000000000000005.wal.zst\n", "line 2: a sequence number", "with a number too large");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t9223372036854775808\t3\t" SHA
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: a time stamp", "with a time stamp too large");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t2\t\t" SHA
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: a size", "with an empty size");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t2\t3\t" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: a SHA-256", "with an upper-case SHA-256");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t2\t3\t" SHA "0"
              "\t00000000000000000001-00000000000000000005.wal.zst\n", "line 2: a SHA-256", "with a SHA-256 too long");
    bad_index(HDR "00000000000000000001\t00000000000000000005\t1\t2\t3\t" SHA
              "\t00000000000000000001-00000000000000000005.wal.gz\n", "line 2: '00000000000000000001-00000000000000000005.wal.gz' is not a segment's name",
              "with a name that is not a segment's");
    bad_index(HDR "00000000000000000009\t00000000000000000005\t1\t2\t3\t" SHA
              "\t00000000000000000009-00000000000000000005.wal.zst\n", "line 2: '00000000000000000009-", "with a range going back");
    snprintf(buf, sizeof buf, HDR "%s\n%s", L(1, 5), L(5, 9));
    bad_index(buf, "line 3: empty", "with an empty line");
    snprintf(buf, sizeof buf, HDR "%s%.*s", L(1, 5), (int)strlen(L(5, 9)) - 1, L(5, 9));
    bad_index(buf, "line 3: cut short", "cut short");
    snprintf(buf, sizeof buf, HDR "# from\t9\n# from\t9\n%s", L(9, 12));
    bad_index(buf, "line 3: a '# from' line again", "with '# from' twice");
    snprintf(buf, sizeof buf, HDR "%s# from\t9\n", L(9, 12));
    bad_index(buf, "line 3: a '# from' line after the segments", "with '# from' after the segments");
    bad_index(HDR "# from\tnine\n", "line 2: '# from' with no sequence number", "with '# from' not a number");
    snprintf(buf, sizeof buf, HDR "# from\t10\n%s", L(9, 12));
    bad_index(buf, "line 3: segment 00000000000000000009-00000000000000000012.wal.zst starts at 9, before the archive's start",
              "with a segment before '# from'");
    {
        static const char nul[] = HDR "00000000000000000001\t0000000000000000000\0005\t1\t2\t3\n";
        struct tb_seg_info *v = NULL;
        int rc;
        put(TB_SEG_INDEX, nul, sizeof nul - 1);
        rc = tb_seg_index_load(dir, NULL, &v, &n);
        ok(rc == TB_EVERIFY && strstr(tb_error_last(), "line 2: holds a NUL byte"), "index with a NUL byte: refused (%s)",
           tb_error_last());
        free(v);
    }

    /* The index's writers refuse a bad index, leaving it as it is. */
    snprintf(buf, sizeof buf, HDR "%s%s%s", L(1, 5), L(5, 9), L(1, 5));
    path = tb_fs_join(dir, TB_SEG_INDEX);
    put(TB_SEG_INDEX, buf, strlen(buf));
    {
        size_t adopted = 0, ndropped = 0;
        struct tb_seg_info *dropped = NULL;
        char *text = NULL;
        ok(tb_seg_index_repair(dir, NULL, &adopted) == TB_EVERIFY, "repair refuses an index with a line again");
        ok(tb_seg_index_drop_prefix(dir, 1, &dropped, &ndropped) == TB_EVERIFY && ndropped == 0,
           "drop_prefix refuses it, dropping nothing");
        ok(tb_fs_read_file(path, &text, NULL) == 0 && strcmp(text, buf) == 0, "and the index is as it was");
        free(text);
        free(dropped);
    }
    unlink(path);
    free(path);
}

static void cf_case(const char *text, int want_rc, size_t want_n, const char *want, const char *what)
{
    struct tb_cf_name *v = NULL;
    size_t n = 0;
    int rc;
    put("cf.tsv", text, strlen(text));
    rc = tb_cf_map_load(dir, &v, &n);
    if (want_rc == 0)
        ok(rc == 0 && n == want_n, "cf.tsv %s: read, %zu column families", what, want_n);
    else
        ok(rc == want_rc && strstr(tb_error_last(), "cf.tsv line ") && strstr(tb_error_last(), want),
           "cf.tsv %s: refused (%s)", what, rc ? tb_error_last() : "accepted");
    tb_cf_map_free(v, n);
}

static void test_cf(void)
{
    cf_case("# id\tname\tfirst_seen_seq\n0\tdefault\t1\n4\tfile registry\t12\n4294967295\tlast\t18446744073709551615\n", 0,
            3, NULL, "good (a name with a space, numbers at their ends)");
    cf_case("", 0, 0, NULL, "empty");
    cf_case("# id\tname\tfirst_seen_seq\nx1\tbad\t5\n", TB_EVERIFY, 0, "line 2: 'x1' is not a column family id", "with a bad id");
    cf_case("4294967296\tbig\t5\n", TB_EVERIFY, 0, "line 1: '4294967296' is not", "with an id beyond 32 bits");
    cf_case("-1\tneg\t5\n", TB_EVERIFY, 0, "line 1:", "with a negative id");
    cf_case("0\tdefault\t1\n1\ta\t2\n1\tb\t3\n", TB_EVERIFY, 0, "line 3: column family id 1 again (line 2)", "with an id twice");
    cf_case("0\tdefault\t1junk\n", TB_EVERIFY, 0, "line 1: '1junk' is not a sequence number", "with junk after a number");
    cf_case("0\tdefault\n", TB_EVERIFY, 0, "line 1: 2 fields, not 3", "with a field missing");
    cf_case("0\tdefault\t1\textra\n", TB_EVERIFY, 0, "line 1: 4 fields, not 3", "with a field too many");
    cf_case("0\t\t1\n", TB_EVERIFY, 0, "line 1: a column family name that is empty", "with an empty name");
    cf_case("0\tdefault\t1\n\n", TB_EVERIFY, 0, "line 2: empty", "with an empty line");
    cf_case("0\tdefault\t1", TB_EVERIFY, 0, "line 1: cut short", "cut short");
    {
        char *path = tb_fs_join(dir, "cf.tsv");
        unlink(path);
        free(path);
    }
}

/* tb_wal_archive_check of an archive whose state.tsv is text (and whose records are those the
 * directory holds). */
static void state_case(const char *text, int want_rc, const char *want, const char *what)
{
    uint64_t records, first, next;
    int rc;
    put("state.tsv", text, strlen(text));
    rc = tb_wal_archive_check(dir, NULL, &records, &first, &next);
    if (want_rc == 0)
        ok(rc == 0, "state.tsv %s: good (%s)", what, rc ? tb_error_last() : "");
    else
        ok(rc == want_rc && strstr(tb_error_last(), "state.tsv") && strstr(tb_error_last(), want), "state.tsv %s: refused (%s)",
           what, rc ? tb_error_last() : "accepted");
}

static void test_state(void)
{
    static const unsigned char batch[] = { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0 };
    tb_seg_writer *w = NULL;
    state_case("position\t5\t100\nnext_seq\t0\t0\nlast_stamp\t0\n", 0, NULL, "of an archive without records");
    /* Records 1..6 in a segment, 7..8 in the partial one. */
    ok(tb_seg_writer_open(&w, dir, 3, NULL) == 0, "segment writer opens");
    for (uint64_t seq = 1; w && seq < 9; seq += 2) {
        struct tb_seg_record r = { .first_seq = seq, .next_seq = seq + 2, .ts_ns = (int64_t)seq, .log_number = 7,
                                   .end_offset = seq, .data = batch, .len = sizeof batch };
        if (seq == 1)
            r.flags = TB_SEG_FLAG_RESYNC;
        tb_seg_writer_append(w, &r);
        if (seq == 5)
            tb_seg_writer_rotate(w, NULL);
    }
    ok(w && tb_seg_writer_flush(w) == 0, "records 1..8: a segment and the partial one");
    tb_seg_writer_free(w);
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\n", 0, NULL, "at the records' end");
    state_case("position\t7\t3\nnext_seq\t5\t1\nlast_stamp\t3\n", 0, NULL, "behind it (killed before the rewrite)");
    state_case("position\t9\t0\nnext_seq\t9\t1\nlast_stamp\t7\n", 0, NULL, "at a later WAL file without records");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t-1\npolicy\twrite_prepared\nunlogged\t0\t7\nlag\t0\t5\n"
               "pending\t3\t78696431\npending\t0\t\n", 0, NULL, "with every line");
    state_case("position\t7\t7\nnext_seq\t10\t1\nlast_stamp\t7\n", TB_EVERIFY, "next_seq 10 is beyond the archive's records, "
               "which end at sequence 8", "ahead of the records");
    state_case("position\t7\t7\nnext_seq\t10\t0\nlast_stamp\t7\n", TB_EVERIFY, "next_seq 10", "ahead of them, not KNOWN");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\nbogus\t1\n", TB_EVERIFY, "line 4: an unknown line 'bogus'",
               "with an unknown line");
    state_case("position\t7\t7x\nnext_seq\t9\t1\nlast_stamp\t7\n", TB_EVERIFY, "line 1: a damaged 'position' line",
               "with junk after a number");
    state_case("position\t7\t7\t1\nnext_seq\t9\t1\nlast_stamp\t7\n", TB_EVERIFY, "line 1: a damaged 'position' line",
               "with a field too many");
    state_case("position\t7\t7\nnext_seq\t9\t2\nlast_stamp\t7\n", TB_EVERIFY, "line 2: a damaged 'next_seq' line",
               "with KNOWN neither 0 nor 1");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\nnext_seq\t9\t1\n", TB_EVERIFY,
               "line 4: a second 'next_seq' line (line 2)", "with a line twice");
    state_case("position\t7\t7\nlast_stamp\t7\n", TB_EVERIFY, "no 'next_seq' line", "without next_seq");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\npolicy\tsloppy\n", TB_EVERIFY,
               "line 4: a damaged 'policy' line", "with an unknown policy");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\npending\t1\t7869643\n", TB_EVERIFY,
               "line 4: not a 'pending", "with an xid of odd length");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\npending\t1\tzz\n", TB_EVERIFY, "line 4: not a 'pending",
               "with an xid not hex");
    state_case("position\t7\t7\nnext_seq\t9\t1\nlast_stamp\t7\npending\t1\t78\npending\t2\t78\n", 0, NULL,
               "with a transaction pending twice (two sections, decoded as write-committed)");
    state_case("position\t7\t7\nnext_seq\t9\t1\n\nlast_stamp\t7\n", TB_EVERIFY, "line 3: empty", "with an empty line");
}

static void test_numbers(void)
{
    uint64_t u = 0;
    int64_t i = 0;
    ok(tb_tsv_u64("18446744073709551615", &u) && u == UINT64_MAX, "u64: the largest");
    ok(!tb_tsv_u64("18446744073709551616", &u), "u64: one more is refused");
    ok(!tb_tsv_u64("", &u) && !tb_tsv_u64("-1", &u) && !tb_tsv_u64("+1", &u) && !tb_tsv_u64("1 ", &u) &&
       !tb_tsv_u64("0x1", &u), "u64: empty, signs, spaces, hex refused");
    ok(tb_tsv_i64("-9223372036854775808", &i) && i == INT64_MIN, "i64: the smallest");
    ok(tb_tsv_i64("9223372036854775807", &i) && i == INT64_MAX, "i64: the largest");
    ok(!tb_tsv_i64("9223372036854775808", &i) && !tb_tsv_i64("-9223372036854775809", &i) && !tb_tsv_i64("-", &i) &&
       !tb_tsv_i64("--1", &i), "i64: beyond them, and a lone or double sign, refused");
}

/* After expiry emptied the index ("# from 5" and no segment) and a crash left files the
 * index lacks: the expired segment below 5 (expiry removes the files after the index) and a
 * new one from 5 (published, not yet indexed). Only the one from 5 is adopted, and a repair
 * keeps "# from 5" (it used to drop it, and adopt the expired segment again). */
static void test_adopt_after_expiry(void)
{
    static const unsigned char batch[] = { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0 };
    struct tb_seg_info made[2], *v = NULL;
    tb_seg_writer *w = NULL;
    size_t n = 0, adopted = 0;
    char *text = NULL, *path = tb_fs_join(dir, TB_SEG_INDEX);
    ok(tb_seg_writer_open(&w, dir, 3, NULL) == 0, "segment writer opens");
    for (int k = 0; w && k < 2; k++) {
        for (uint64_t seq = 1 + 4 * (uint64_t)k; seq < 5 + 4 * (uint64_t)k; seq += 2) {
            struct tb_seg_record r = { .first_seq = seq, .next_seq = seq + 2, .ts_ns = (int64_t)seq, .log_number = 7,
                                       .end_offset = seq, .data = batch, .len = sizeof batch };
            tb_seg_writer_append(w, &r);
        }
        tb_seg_writer_rotate(w, &made[k]);
    }
    tb_seg_writer_free(w);
    ok(strcmp(made[0].name, "00000000000000000001-00000000000000000005.wal.zst") == 0 &&
       strcmp(made[1].name, "00000000000000000005-00000000000000000009.wal.zst") == 0, "segments 1..4 and 5..8");
    put(TB_SEG_INDEX, HDR "# from\t5\n", strlen(HDR "# from\t5\n"));
    ok(tb_seg_index_load(dir, NULL, &v, &n) == 0 && n == 1 && strcmp(v[0].name, made[1].name) == 0,
       "load adopts the segment from 5 only (%zu)", n);
    free(v);
    ok(tb_seg_index_repair(dir, NULL, &adopted) == 0 && adopted == 1, "repair writes it into the index");
    ok(tb_fs_read_file(path, &text, NULL) == 0 && strstr(text, "# from\t5\n") && strstr(text, made[1].name) &&
       !strstr(text, made[0].name), "which keeps '# from 5' and lists 5..8 alone");
    free(text);
    v = NULL;
    ok(tb_seg_index_load(dir, NULL, &v, &n) == 0 && n == 1, "and reads back");
    free(v);
    free(path);
    tb_fs_rm_rf(dir);
    mkdir(dir, 0700);
}

static int count_fn(void *arg, const char *segment, const struct tb_seg_record *r)
{
    (void)segment, (void)r;
    ++*(int *)arg;
    return 0;
}

/* The keyring is the writer's and the readers' parameter, no process-wide setting: a writer
 * with keys seals what it publishes, a reader without them cannot open it, one with them
 * (and the walk, load and repair) can; two archives with and without keys side by side. */
static void test_keys(void)
{
    static const unsigned char batch[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
    struct tb_seg_record r = { .first_seq = 1, .next_seq = 2, .flags = TB_SEG_FLAG_RESYNC, .data = batch,
                               .len = sizeof batch };
    char *keyfile = tb_fs_join(dir, "key"), *sealed = tb_fs_join(dir, "sealed"), *plain = tb_fs_join(dir, "plain");
    char key[65] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", *path = NULL;
    tb_keyring *keys = NULL;
    tb_seg_writer *w = NULL, *pw = NULL;
    tb_seg_reader *rd = NULL;
    struct tb_seg_info info, *v = NULL;
    size_t n = 0, adopted = 0;
    int records = 0;
    ok(tb_fs_write_atomic(keyfile, key, 64, 0600) == 0 && tb_keyring_new(&keys) == 0 &&
       tb_keyring_add_key_file(keys, keyfile) == 0, "a keyring");
    ok(tb_seg_writer_open(&w, sealed, 3, keys) == 0 && tb_seg_writer_open(&pw, plain, 3, NULL) == 0,
       "an encrypted and a plain archive open side by side");
    ok(w && pw && tb_seg_writer_append(w, &r) == 0 && tb_seg_writer_append(pw, &r) == 0 &&
       tb_seg_writer_rotate(w, &info) == 0 && tb_seg_writer_rotate(pw, NULL) == 0, "each publishes a segment");
    path = tb_fs_join(sealed, info.name);
    ok(tb_seg_reader_open(&rd, path, NULL) < 0, "without keys the sealed segment does not open: %s", tb_error_last());
    tb_seg_reader_free(rd);
    rd = NULL;
    ok(tb_seg_reader_open(&rd, path, keys) == 0 && tb_seg_reader_next(rd, &r) == 1 && r.first_seq == 1,
       "with them it does");
    tb_seg_reader_free(rd);
    ok(tb_seg_walk(sealed, keys, count_fn, &records) == 0 && records == 1, "walk with keys (%d records)", records);
    records = 0;
    ok(tb_seg_walk(plain, NULL, count_fn, &records) == 0 && records == 1, "the plain archive without (%d)", records);
    /* Unindexed: load and repair read it through, with the keys they are given. */
    free(path);
    path = tb_fs_join(sealed, TB_SEG_INDEX);
    unlink(path);
    ok(tb_seg_index_load(sealed, NULL, &v, &n) < 0, "an unindexed sealed segment: load without keys fails");
    free(v);
    v = NULL;
    ok(tb_seg_index_load(sealed, keys, &v, &n) == 0 && n == 1, "load with keys adopts it (%zu)", n);
    ok(tb_seg_index_repair(sealed, keys, &adopted) == 0 && adopted == 1, "repair with keys writes it back");
    free(v);
    free(path);
    tb_seg_writer_free(w);
    tb_seg_writer_free(pw);
    tb_keyring_free(keys);
    free(keyfile);
    free(sealed);
    free(plain);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return done_testing();
    }
    test_numbers();
    test_index();
    test_cf();
    test_state();
    tb_fs_rm_rf(dir);
    mkdir(dir, 0700);
    test_adopt_after_expiry();
    tb_fs_rm_rf(dir);
    mkdir(dir, 0700);
    test_keys();
    tb_fs_rm_rf(dir);
    return done_testing();
}
