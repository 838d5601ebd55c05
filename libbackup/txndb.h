/* txndb: the writer's transaction write policy, and recovering a copy of a TransactionDB
 * the way ThemisDB's server opens it (what RocksDB's C API cannot do). */
#ifndef TB_TXNDB_H
#define TB_TXNDB_H

#ifdef __cplusplus
extern "C" {
#endif

/* RocksDB's TxnDBWritePolicy as ThemisDB configures it. UNKNOWN: not detected yet. */
enum tb_policy { TB_POLICY_UNKNOWN = 0, TB_POLICY_COMMITTED, TB_POLICY_PREPARED, TB_POLICY_UNPREPARED };

/* "write_committed", "write_prepared", "write_unprepared" ("unknown" for UNKNOWN), the
 * names the command line and the manifest use. */
const char *tb_policy_name(enum tb_policy p);
/* The reverse of tb_policy_name for the three policies; anything else is TB_EUSAGE. */
int tb_policy_parse(const char *s, enum tb_policy *out);

#ifdef __cplusplus
}
#endif

#endif
