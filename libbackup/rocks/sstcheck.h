/* sstcheck: a RocksDB table file checked block by block against its own checksums, without
 * RocksDB, so tables written by any RocksDB version (format_version 0-7) can be vouched for. */
#ifndef TB_SSTCHECK_H
#define TB_SSTCHECK_H

#include <stdint.h>

/* What a check concluded. UNCHECKED is not damage: the file uses something this checker does
 * not know (a newer format_version or checksum type, an index compressed with an algorithm
 * we do not link, another table format) or carries no checksums at all; reason says what. */
enum tb_sst_verdict {
    TB_SST_OK = 0,
    TB_SST_DAMAGED = 1,
    TB_SST_UNCHECKED = 2,
};

/* RocksDB's ChecksumType values, as stored in the footer. */
enum tb_sst_checksum {
    TB_SST_CK_NONE = 0,
    TB_SST_CK_CRC32C = 1,
    TB_SST_CK_XXHASH = 2,
    TB_SST_CK_XXHASH64 = 3,
    TB_SST_CK_XXH3 = 4,
};

struct tb_sst_report {
    int verdict; /* enum tb_sst_verdict */
    uint32_t format_version; /* from the footer (0: legacy magic) */
    int checksum_type; /* enum tb_sst_checksum, or the unknown byte found */
    int index_type; /* 0 binary search, 1 hash, 2 two-level (partitioned), 3 with first key */
    int index_delta_encoded; /* index values as size deltas (format_version >= 4) */
    uint64_t file_size;
    uint64_t data_blocks; /* blocks checked, by kind */
    uint64_t index_blocks; /* the index, or the top-level index and every partition */
    uint64_t filter_blocks; /* full filter, or the filter index and every partition */
    uint64_t meta_blocks; /* metaindex, properties, range deletions, dictionary, others */
    uint64_t blob_records; /* blob files: records checked (header CRC and blob CRC) */
    uint64_t bytes_checked; /* bytes of the file some verified checksum covers */
    uint64_t bytes_unchecked; /* bytes no checksum covers: the footer before format_version 6,
                                * padding of block_align, anything no index names */
    uint64_t offset; /* DAMAGED/UNCHECKED: offset of the block (or footer) concerned */
    char reason[320]; /* DAMAGED/UNCHECKED: what was wrong or unknown */
};

/* Checks the block-based table file at path: footer, metaindex, properties, index (every
 * partition of a partitioned index), every data block the index names, every meta block the
 * metaindex names (filter and filter partitions, range deletions, compression dictionary).
 * Returns 0 with rep->verdict TB_SST_OK or TB_SST_UNCHECKED (rep->reason says why: the
 * caller should report it, not fail); TB_EVERIFY when damaged (the message and rep name the
 * file, the block's offset and what was wrong); TB_EIO when the file cannot be read. */
int tb_sst_check_file(const char *path, struct tb_sst_report *rep);
/* The same on an open file (read with pread; the offset is not moved); name is for messages. */
int tb_sst_check_fd(int fd, const char *name, struct tb_sst_report *rep);

/* Checks a blob file (db/blob/blob_log_format.h, unchanged from RocksDB 6 to 11): header
 * magic and version, every record's header CRC and key+value CRC, the footer's CRC and its
 * record count. The header's other fields carry no CRC. A file that ends at a record boundary
 * without a footer (still being written, which RocksDB 11 may read) is UNCHECKED; one that
 * ends inside a record is DAMAGED (truncated). Returns as tb_sst_check_file. Reads through a
 * bounded buffer whatever the size of a blob. */
int tb_sst_check_blob_file(const char *path, struct tb_sst_report *rep);
int tb_sst_check_blob_fd(int fd, const char *name, struct tb_sst_report *rep);
/* By name: "*.blob" as a blob file, anything else as a table file. */
int tb_sst_check_path(const char *path, struct tb_sst_report *rep);

/* A block-based table's format_version from its footer's last 12 bytes alone (version,
 * then magic), without checking anything; 0 for a legacy footer or no such table. */
int tb_sst_footer_version(const char *path, uint32_t *fv);

/* "crc32c", "xxHash", "xxHash64", "XXH3", "none", or "unknown". */
const char *tb_sst_checksum_name(int type);
/* "ok", "damaged", "unchecked". */
const char *tb_sst_verdict_name(int verdict);

#endif
