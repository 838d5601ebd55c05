/* merge: ThemisDB's merge operators (same names, same results, same failures), as plain C
 * functions and as RocksDB merge operators, so the tools can read merge operands. */
#ifndef TB_MERGE_H
#define TB_MERGE_H

#include <stddef.h>

#include <rocksdb/c.h>

#ifdef __cplusplus
extern "C" {
#endif

enum tb_merge_op {
    TB_MERGE_NONE = 0, /* the column family has no merge operator ("nullptr") */
    TB_MERGE_UNKNOWN, /* a name the tools do not know: its operands cannot be read */
    TB_MERGE_SEQ_U64, /* RocksDBWrapper.SequenceU64IncrementMergeOperator */
    TB_MERGE_COUNTER, /* CounterMergeOperator */
    TB_MERGE_APPEND, /* AppendMergeOperator */
    TB_MERGE_SET, /* SetMergeOperator */
    TB_MERGE_MAX, /* MaxMergeOperator */
};

/* The operator RocksDB registered under name (the OPTIONS file's merge_operator value):
 * NULL, "" and "nullptr" are NONE, ThemisDB's five names their operator, anything else
 * UNKNOWN (never guessed from a similar name). "{id=NAME;...}" is read as NAME. */
enum tb_merge_op tb_merge_lookup(const char *name);
/* ThemisDB's Name() of op; NULL for NONE and UNKNOWN. */
const char *tb_merge_name(enum tb_merge_op op);

/* Full merge as RocksDB calls it: existing (NULL: no value under the key; a present empty
 * value is a non-NULL pointer with length 0) folded with n >= 1 operands in order. The result
 * is malloc'd into *out, its length into *out_len (free it). A merge ThemisDB's operator refuses (an operand
 * or value it cannot parse) returns TB_EIO with ThemisDB's reason; RocksDB then reports
 * the read as corrupt. TB_EUSAGE for NONE/UNKNOWN. */
int tb_merge_full(enum tb_merge_op op, const char *existing, size_t existing_len, const char *const *operands,
                  const size_t *operand_lens, size_t n, char **out, size_t *out_len);
/* Partial merge of n >= 2 operands (no base value), as RocksDB's AssociativeMergeOperator
 * does it: the first operand taken as the existing value, the rest folded in. All five of
 * ThemisDB's operators are associative, so all five have one. */
int tb_merge_partial(enum tb_merge_op op, const char *const *operands, const size_t *operand_lens, size_t n, char **out,
                     size_t *out_len);

/* A RocksDB merge operator for op (NULL for NONE/UNKNOWN or no memory), named as ThemisDB
 * names it. rocksdb_options_set_merge_operator takes ownership of it. */
rocksdb_mergeoperator_t *tb_merge_create(enum tb_merge_op op);

/* A stand-in for a merge operator the tools do not know, under its name: a database with no
 * merge operands opens and reads as usual; merging fails ("Could not perform merge"). */
rocksdb_mergeoperator_t *tb_merge_create_unknown(const char *name);

/* 1 with *why (malloc'd) "merge operator NAME of column family CF is not one the tools
 * know" when dbdir's newest OPTIONS file names such an operator; 0 when not (or no file). */
int tb_merge_unknown(const char *dbdir, char **why);

/* Per column family options for opening dbdir: for each of the ncf names a copy of base
 * with the merge operator dbdir's newest OPTIONS file names for it (none when the file has
 * none or there is no OPTIONS file; the stand-in above for a name the tools do not know, so
 * that only reading merge operands fails). *out gets ncf options (free with
 * tb_merge_cf_options_free). */
int tb_merge_cf_options(const char *dbdir, const rocksdb_options_t *base, const char *const *names, size_t ncf,
                        rocksdb_options_t ***out);
void tb_merge_cf_options_free(rocksdb_options_t **o, size_t ncf);

#ifdef __cplusplus
}
#endif

#endif
