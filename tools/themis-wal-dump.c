/* themis-wal-dump: print the records of RocksDB WAL files as our reader and decoder see them
 * (the format of `ldb dump_wal --header`, plus the TSv1 stamps ldb does not show). */
#include "tool.h"

#include <inttypes.h>
#include <string.h>

#include "batch.h"
#include "log_reader.h"

static int print_value, stamps, count_only;

static const struct tb_option opts[] = {
    { "print-value", 0, TB_OPT_FLAG, &print_value, NULL, "also print values" },
    { "stamps", 0, TB_OPT_FLAG, &stamps, NULL, "also print TSv1 stamps as STAMP(ns)" },
    { "count", 0, TB_OPT_FLAG, &count_only, NULL, "decode everything, print only totals (records, entries, bytes)" },
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
        printf("%" PRIu64 ",%u,%zu,%" PRIu64 ",", it.seq, it.count, len, tb_wal_reader_record_offset(r));
        while ((m = tb_wb_next(&it, &e)) == 1) {
            int64_t ns;
            switch (e.kind) {
            case TB_WB_LOG_DATA:
                if (stamps && tb_wb_stamp(&e, &ns))
                    printf("STAMP(%" PRId64 ") ", ns);
                break;
            case TB_WB_BEGIN_PREPARE:
                printf("BEGIN_PREPARE(%s) ", e.tag == 0x13 ? "true" : "false");
                break;
            case TB_WB_END_PREPARE: case TB_WB_COMMIT: case TB_WB_ROLLBACK:
                printf("%s(", tb_wb_kind_name(e.kind));
                hex(e.key, e.klen);
                printf(") ");
                break;
            case TB_WB_NOOP:
                printf("NOOP ");
                break;
            default:
                printf("%s(%u) : ", tb_wb_kind_name(e.kind), e.cf);
                hex(e.key, e.klen);
                if (e.kind == TB_WB_DELETE_RANGE || (print_value && e.value)) {
                    printf(" : ");
                    hex(e.value, e.vlen);
                }
                printf(" ");
            }
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
    for (int i = argi; i < argc && rc == 0; i++)
        rc = dump(argv[i]);
    if (rc == 0 && count_only)
        printf("%" PRIu64 " records, %" PRIu64 " entries, %" PRIu64 " bytes\n", n_records, n_entries, n_bytes);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
