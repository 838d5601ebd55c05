/* policy: the writer's transaction write policy (RocksDB's TxnDBWritePolicy as ThemisDB
 * configures it), named as the command line and the manifest name it. */
#ifndef TB_POLICY_H
#define TB_POLICY_H

#ifdef __cplusplus
extern "C" {
#endif

/* UNKNOWN: not detected yet. */
enum tb_policy { TB_POLICY_UNKNOWN = 0, TB_POLICY_COMMITTED, TB_POLICY_PREPARED, TB_POLICY_UNPREPARED };

/* "write_committed", "write_prepared", "write_unprepared" ("unknown" for UNKNOWN). */
const char *tb_policy_name(enum tb_policy p);
/* The reverse of tb_policy_name for the three policies; anything else is TB_EUSAGE. */
int tb_policy_parse(const char *s, enum tb_policy *out);
/* Whether the policy numbers sequences per batch (write-prepared and write-unprepared:
 * docs/wal-notes.md). */
static inline int tb_policy_seq_per_batch(enum tb_policy p)
{
    return p == TB_POLICY_PREPARED || p == TB_POLICY_UNPREPARED;
}

#ifdef __cplusplus
}
#endif

#endif
