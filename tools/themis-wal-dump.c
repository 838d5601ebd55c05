/* themis-wal-dump: print the records of RocksDB WAL files as our reader and decoder see them
 * (the format of `ldb dump_wal --header`, plus the TSv1 stamps ldb does not show). */
#include "tool.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "waldump.h"

static int print_value, stamps, count_only, seqs;
static const char *policy_arg;

static const struct tb_option opts[] = {
    { "print-value", 0, TB_OPT_FLAG, &print_value, NULL, "also print values" },
    { "stamps", 0, TB_OPT_FLAG, &stamps, NULL, "also print TSv1 stamps as STAMP(ns)" },
    { "count", 0, TB_OPT_FLAG, &count_only, NULL, "decode everything, print only totals (records, entries, bytes)" },
    { "seqs", 0, TB_OPT_FLAG, &seqs, NULL,
      "also print the sequence each op takes (OP(cf)@SEQ; @P: a write-committed prepared op, numbered at its Commit) "
      "and after each record NEXT(N), the first sequence after it, and UNLOGGED(N), the sequences its plain batches "
      "take later without WAL" },
    TOOL_WRITE_POLICY_OPTION(policy_arg, "with --seqs: decode as",
                             "the first record that tells; write_committed before"),
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-wal-dump",
    "[OPTIONS] FILE.log...",
    "Prints each WAL record: sequence,count,size,offset and its entries (like ldb dump_wal --header).",
    opts,
};

static void hex(const unsigned char *p, size_t n)
{
    printf("0x");
    for (size_t i = 0; i < n; i++)
        printf("%02X", p[i]);
}

static void print_entry(const struct tb_wal_dump_entry *d, int spb)
{
    const struct tb_wb_entry *e = &d->e;
    int64_t ns;
    switch (e->kind) {
    case TB_WB_LOG_DATA:
        if (stamps && tb_wb_stamp(e, &ns))
            printf("STAMP(%" PRId64 ") ", ns);
        break;
    case TB_WB_BEGIN_PREPARE: printf("BEGIN_PREPARE(%s) ", e->tag == 0x13 ? "true" : "false"); break;
    case TB_WB_END_PREPARE:
    case TB_WB_COMMIT:
    case TB_WB_ROLLBACK:
        printf("%s(", tb_wb_kind_name(e->kind));
        hex(e->key, e->klen);
        printf(") ");
        break;
    case TB_WB_NOOP: printf("NOOP "); break;
    default:
        printf("%s(%u)", tb_wb_kind_name(e->kind), e->cf);
        if (seqs && !spb && d->prepared)
            printf("@P");
        else if (seqs)
            printf("@%" PRIu64, d->seq);
        printf(" : ");
        hex(e->key, e->klen);
        if (e->kind == TB_WB_DELETE_RANGE || (print_value && e->value)) {
            printf(" : ");
            hex(e->value, e->vlen);
        }
        printf(" ");
    }
}

static int print_record(const struct tb_wal_dump_record *r)
{
    printf("%" PRIu64 ",%u,%zu,%" PRIu64 ",", r->seq, r->count, r->len, r->offset);
    for (size_t i = 0; i < r->n; i++)
        print_entry(&r->entries[i], r->spb);
    if (r->err < 0)
        return r->err;
    if (seqs) {
        printf("NEXT(%" PRIu64 ")", r->info.next_seq);
        if (r->info.unlogged)
            printf(" UNLOGGED(%" PRIu64 ")", r->info.unlogged);
        if (r->info.unknown_commit && !r->spb)
            printf(" UNKNOWN_COMMIT");
    }
    printf("\n");
    return 0;
}

static uint64_t n_records, n_entries, n_bytes;

/* WAL files are read through a map: one cut shorter while it is read (not something
 * RocksDB does to a WAL) faults on the lost pages. Say so on one line, not a core dump. */
static void on_sigbus(int sig)
{
    static const char msg[] = "themis-wal-dump: a WAL file shrank while it was read\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
        _exit(1);
    _exit(1);
}

static int dump(tb_wal_dump *d, const char *path)
{
    const struct tb_wal_dump_record *r;
    uint64_t offset;
    int rc = tb_wal_dump_open(d, path);
    if (!count_only)
        printf("Sequence,Count,ByteSize,Physical Offset,Key(s)%s\n", print_value ? " : value " : "");
    while (rc == 0 && (rc = tb_wal_dump_next(d, &r)) == 1) {
        n_records++;
        n_bytes += r->len;
        n_entries += r->n;
        rc = count_only ? 0 : print_record(r);
    }
    if (rc == 0 && tb_wal_dump_torn(d, &offset))
        fprintf(stderr, "%s: %s: incomplete record at offset %" PRIu64 " (a live file's tail)\n", cli.tool, path,
                offset);
    return rc;
}

int main(int argc, char **argv)
{
    struct tb_wal_dump_opts o = { 0 };
    tb_wal_dump *d = NULL;
    int argi, status, rc = 0;
    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    if (argi >= argc)
        return tool_usage(&cli, "give one or more WAL files");
    if (policy_arg && tb_policy_parse(policy_arg, &o.policy) < 0)
        return tool_usage(&cli, tb_error_last());
    o.seqs = seqs;
    o.count_only = count_only;
    if ((rc = tb_wal_dump_new(&d, &o)) < 0)
        return tool_fail(&cli, rc);
    signal(SIGBUS, on_sigbus);
    for (int i = argi; i < argc && rc == 0; i++)
        rc = dump(d, argv[i]);
    if (rc == 0 && count_only)
        printf("%" PRIu64 " records, %" PRIu64 " entries, %" PRIu64 " bytes\n", n_records, n_entries, n_bytes);
    tb_wal_dump_free(d);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
