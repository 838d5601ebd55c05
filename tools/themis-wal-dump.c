/* themis-wal-dump: print the records of RocksDB WAL files as our reader and decoder see them
 * (the format of `ldb dump_wal --header`, plus the TSv1 stamps ldb does not show). */
#include "tool.h"

#include <inttypes.h>
#include <string.h>

#include "archiver.h"
#include "batch.h"
#include "log_reader.h"

static int print_value, stamps, count_only, seqs;
static const char *policy_arg;
static enum tb_policy policy;
static struct tb_pending *pending;

static const struct tb_option opts[] = {
    { "print-value", 0, TB_OPT_FLAG, &print_value, NULL, "also print values" },
    { "stamps", 0, TB_OPT_FLAG, &stamps, NULL, "also print TSv1 stamps as STAMP(ns)" },
    { "count", 0, TB_OPT_FLAG, &count_only, NULL, "decode everything, print only totals (records, entries, bytes)" },
    { "seqs", 0, TB_OPT_FLAG, &seqs, NULL,
      "also print the sequence each op takes (OP(cf)@SEQ; @P: a write-committed prepared op, numbered at its Commit) "
      "and after each record NEXT(N), the first sequence after it, and UNLOGGED(N), the sequences its plain batches "
      "take later without WAL" },
    { "write-policy", 0, TB_OPT_STRING, &policy_arg, "POLICY",
      "with --seqs: decode as write_committed, write_prepared or write_unprepared (default: the first record that tells; "
      "write_committed before)" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-wal-dump", "[OPTIONS] FILE.log...",
    "Prints each WAL record: sequence,count,size,offset and its entries (like ldb dump_wal --header).",
    opts,
};

static void hex(const unsigned char *p, size_t n)
{
    printf("0x");
    for (size_t i = 0; i < n; i++)
        printf("%02X", p[i]);
}

static uint64_t n_records, n_entries, n_bytes;

static int dump(const char *path)
{
    tb_wal_reader *r = NULL;
    const unsigned char *rec;
    size_t len;
    const char *base = strrchr(path, '/');
    uint64_t number = strtoull(base ? base + 1 : path, NULL, 10);
    int rc = tb_wal_reader_open(&r, path, number, 0), more;
    if (!count_only)
        printf("Sequence,Count,ByteSize,Physical Offset,Key(s)%s\n", print_value ? " : value " : "");
    while (rc == 0 && (more = tb_wal_reader_next(r, &rec, &len)) == 1) {
        struct tb_wb_iter it;
        struct tb_wb_entry e;
        int m;
        if ((rc = tb_wb_init(&it, rec, len)) < 0)
            break;
        n_records++;
        n_bytes += len;
        if (count_only) {
            while ((m = tb_wb_next(&it, &e)) == 1)
                n_entries++;
            if (m < 0) {
                rc = m;
                break;
            }
            continue;
        }
        struct tb_wb_seq sq;
        struct tb_record_info info;
        uint64_t cursor = it.seq;
        int in_prepare = 0;
        if (seqs) {
            enum tb_policy hint;
            int certain = tb_wb_policy_hint(rec, len, &hint);
            if (certain > 0 && (policy == TB_POLICY_UNKNOWN || (policy == TB_POLICY_PREPARED && hint == TB_POLICY_UNPREPARED)))
                policy = hint;
            if ((rc = tb_record_scan(pending, policy, rec, len, &info, NULL, NULL)) < 0)
                break;
        }
        tb_wb_seq_init(&sq, it.seq);
        printf("%" PRIu64 ",%u,%zu,%" PRIu64 ",", it.seq, it.count, len, tb_wal_reader_record_offset(r));
        while ((m = tb_wb_next(&it, &e)) == 1) {
            int64_t ns;
            uint64_t seq = 0;
            int spb = policy == TB_POLICY_PREPARED || policy == TB_POLICY_UNPREPARED;
            if (seqs && spb && (m = tb_wb_seq_step(&sq, &e, &seq)) < 0)
                break;
            if (seqs && !spb && tb_wb_consumes_seq(e.kind) && !in_prepare)
                seq = cursor++;
            switch (e.kind) {
            case TB_WB_LOG_DATA:
                if (stamps && tb_wb_stamp(&e, &ns))
                    printf("STAMP(%" PRId64 ") ", ns);
                break;
            case TB_WB_BEGIN_PREPARE:
                printf("BEGIN_PREPARE(%s) ", e.tag == 0x13 ? "true" : "false");
                in_prepare = 1;
                break;
            case TB_WB_END_PREPARE: case TB_WB_COMMIT: case TB_WB_ROLLBACK:
                printf("%s(", tb_wb_kind_name(e.kind));
                hex(e.key, e.klen);
                printf(") ");
                in_prepare = 0;
                break;
            case TB_WB_NOOP:
                printf("NOOP ");
                break;
            default:
                printf("%s(%u)", tb_wb_kind_name(e.kind), e.cf);
                if (seqs && !spb && in_prepare)
                    printf("@P");
                else if (seqs)
                    printf("@%" PRIu64, seq);
                printf(" : ");
                hex(e.key, e.klen);
                if (e.kind == TB_WB_DELETE_RANGE || (print_value && e.value)) {
                    printf(" : ");
                    hex(e.value, e.vlen);
                }
                printf(" ");
            }
        }
        tb_wb_seq_free(&sq);
        if (seqs && m == 0) {
            printf("NEXT(%" PRIu64 ")", info.next_seq);
            if (info.unlogged)
                printf(" UNLOGGED(%" PRIu64 ")", info.unlogged);
            if (info.unknown_commit && !(policy == TB_POLICY_PREPARED || policy == TB_POLICY_UNPREPARED))
                printf(" UNKNOWN_COMMIT");
        }
        if (m < 0) {
            rc = tb_error_wrap(m, "record at offset %" PRIu64 " of %s", tb_wal_reader_record_offset(r), path);
            break;
        }
        printf("\n");
    }
    if (rc == 0 && more < 0)
        rc = more;
    if (rc == 0 && tb_wal_reader_torn(r))
        fprintf(stderr, "%s: %s: incomplete record at offset %" PRIu64 " (a live file's tail)\n", cli.tool, path,
                tb_wal_reader_offset(r));
    tb_wal_reader_free(r);
    return rc;
}

int main(int argc, char **argv)
{
    int argi, status, rc = 0;
    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    if (argi >= argc)
        return tool_usage(&cli, "give one or more WAL files");
    if (policy_arg && tb_policy_parse(policy_arg, &policy) < 0)
        return tool_usage(&cli, tb_error_last());
    if (!(pending = tb_pending_new()))
        return tool_fail(&cli, tb_error_set(TB_EIO, "out of memory"));
    for (int i = argi; i < argc && rc == 0; i++)
        rc = dump(argv[i]);
    if (rc == 0 && count_only)
        printf("%" PRIu64 " records, %" PRIu64 " entries, %" PRIu64 " bytes\n", n_records, n_entries, n_bytes);
    tb_pending_free(pending);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
