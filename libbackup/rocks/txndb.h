/* txndb: recovering a copy of a TransactionDB
 * the way ThemisDB's server opens it (what RocksDB's C API cannot do). */
#ifndef TB_TXNDB_H
#define TB_TXNDB_H

#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Recovers dir, a copy of a database the caller owns (it is written to), as ThemisDB's
 * server would on start: opens it read-write as a TransactionDB with the writer's policy
 * (two_write_queues unless write_committed, allow_2pc), every column family with ThemisDB's
 * merge operator its OPTIONS file names, lets RocksDB replay the WAL, rolls back every
 * transaction left prepared, flushes every column family and closes. Afterwards the copy
 * holds no WAL content, so the C API opens it (read-only too) with the committed content.
 * Memory stays bounded whatever the WAL holds: write buffers are capped (32 MiB a column
 * family, 128 MiB in all) and recovery flushes as it goes. The server's own options (blob
 * files, compression) are kept where the OPTIONS file has them; compaction is left to the
 * server. dir must hold the copy's WAL files and every table file (the server's wal_dir is
 * never used; every db_paths path id names dir). Afterwards dir holds one WAL file, with no
 * data (write_committed: perhaps rollback markers), and the writer's OPTIONS file again.
 * RocksDB's info log goes into info_log_dir (NULL: into dir). TB_EMERGEOP when a
 * column family's merge operator is not one the tools know; TB_EUSAGE for TB_POLICY_UNKNOWN. */
int tb_txndb_recover(const char *dir, enum tb_policy policy, const char *info_log_dir);

#ifdef __cplusplus
}
#endif

#endif
