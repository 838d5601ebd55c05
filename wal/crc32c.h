/* crc32c: CRC-32C (Castagnoli) as RocksDB's log format uses it, with its masking. */
#ifndef TB_CRC32C_H
#define TB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over buf. SSE4.2 instruction where the CPU has it, else tables. */
uint32_t tb_crc32c(uint32_t crc, const void *buf, size_t len);
/* The table version alone, for tests that compare it with the instruction. */
uint32_t tb_crc32c_portable(uint32_t crc, const void *buf, size_t len);
/* RocksDB stores CRCs masked, so a CRC of data containing CRCs stays well distributed. */
static inline uint32_t tb_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t tb_crc32c_unmask(uint32_t m)
{
    uint32_t r = m - 0xa282ead8u;
    return (r >> 17) | (r << 15);
}

#endif
