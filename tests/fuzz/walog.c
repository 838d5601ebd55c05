/* fuzz target walog: the input as a RocksDB WAL file, read through tb_wal_reader (from a
 * memfd: no file is written), and every record decoded as a WriteBatch the ways the tools
 * do: entries, stamps, sequences (seq_per_batch too), the policy hint, the archiver's scan
 * and the encoder, whose output must decode to the same entries. */
#include <sys/mman.h>
#include <unistd.h>

#include "archiver.h"
#include "batch.h"
#include "fuzz.h"
#include "log_reader.h"

/* The corpus's WAL files are number 4 (recyclable records name it). */
#define FUZZ_LOG_NUMBER 4

static void check_builder(const unsigned char *rec, size_t len)
{
    struct tb_wb_builder b;
    struct tb_wb_iter it, again;
    struct tb_wb_entry e, f;
    const unsigned char *out;
    size_t olen;
    uint32_t added = 0;
    int m;
    tb_wb_builder_init(&b);
    if (tb_wb_init(&it, rec, len) < 0)
        goto cleanup;
    while ((m = tb_wb_next(&it, &e)) == 1)
        if (tb_wb_builder_add(&b, &e) == 0)
            added++;
    if (m < 0)
        goto cleanup;
    out = tb_wb_builder_finish(&b, it.seq, &olen);
    fuzz_assert(out && tb_wb_init(&again, out, olen) == 0 && again.seq == it.seq && again.count == added,
                "the encoder's record has a bad header");
    /* The data entries come back in order, same kind, column family, key and value. */
    tb_wb_init(&it, rec, len);
    while ((m = tb_wb_next(&it, &e)) == 1) {
        struct tb_wb_builder probe;
        int takes;
        tb_wb_builder_init(&probe);
        takes = tb_wb_builder_add(&probe, &e) == 0;
        tb_wb_builder_free(&probe);
        if (!takes)
            continue;
        fuzz_assert(tb_wb_next(&again, &f) == 1, "the encoder's record lacks an entry");
        fuzz_assert(f.kind == e.kind && f.cf == e.cf && f.klen == e.klen && f.vlen == e.vlen &&
                    (!e.klen || memcmp(f.key, e.key, e.klen) == 0) && (!e.vlen || memcmp(f.value, e.value, e.vlen) == 0),
                    "the encoder changed a %s entry", tb_wb_kind_name(e.kind));
    }
    fuzz_assert(tb_wb_next(&again, &f) == 0, "the encoder's record has an entry more");
cleanup:
    tb_wb_builder_free(&b);
}

static void walk(const unsigned char *rec, size_t len)
{
    struct tb_wb_iter it;
    struct tb_wb_entry e;
    struct tb_wb_seq s;
    enum tb_policy policy;
    uint64_t seq;
    int64_t ns;
    int m;
    tb_wb_header_seq(rec);
    tb_wb_policy_hint(rec, len, &policy);
    if (tb_wb_init(&it, rec, len) < 0)
        return;
    tb_wb_seq_init(&s, it.seq);
    while ((m = tb_wb_next(&it, &e)) == 1) {
        fuzz_assert(e.offset < len && e.klen <= len && e.vlen <= len, "an entry outside its record");
        tb_wb_stamp(&e, &ns);
        tb_wb_consumes_seq(e.kind);
        if (tb_wb_seq_step(&s, &e, &seq) < 0)
            break;
    }
    tb_wb_seq_end(&s);
    tb_wb_seq_free(&s);
    check_builder(rec, len);
}

static int cf_seen(void *arg, uint32_t cf)
{
    (void)arg;
    (void)cf;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_pending *pending[2] = { tb_pending_new(), tb_pending_new() };
    tb_wal_reader *r = NULL;
    const unsigned char *rec;
    size_t len;
    int fd = memfd_create("fuzz.log", 0), m;
    fuzz_assert(fd >= 0 && pending[0] && pending[1], "memfd or memory");
    fuzz_assert(size == 0 || write(fd, data, size) == (ssize_t)size, "memfd write");
    if (tb_wal_reader_open_fd(&r, fd, "000004.log", FUZZ_LOG_NUMBER, 0) < 0)
        goto cleanup;
    while ((m = tb_wal_reader_next(r, &rec, &len)) == 1) {
        struct tb_record_info info;
        fuzz_assert(tb_wal_reader_record_offset(r) < tb_wal_reader_offset(r) &&
                    tb_wal_reader_offset(r) <= size, "a record outside the file");
        walk(rec, len);
        tb_record_scan(pending[0], TB_POLICY_COMMITTED, rec, len, &info, cf_seen, NULL);
        tb_record_scan(pending[1], TB_POLICY_PREPARED, rec, len, &info, NULL, NULL);
    }
    if (m == 0)
        fuzz_assert(tb_wal_reader_offset(r) <= size, "offset beyond the file");
    tb_wal_reader_torn(r);
cleanup:
    tb_wal_reader_free(r);
    tb_pending_free(pending[0]);
    tb_pending_free(pending[1]);
    close(fd);
    tb_error_clear();
    return 0;
}
