/* s3_internal: the pure pieces of the S3 client (part sizes, error answers), exposed for the unit test. */
#ifndef TB_S3_INTERNAL_H
#define TB_S3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The part size for part number n (1-based) of a stream of unknown length that starts
 * with parts of `first` bytes; it grows so that 10,000 parts are never too few. */
uint64_t tb_s3_part_size(uint64_t first, unsigned n);

/* The S3 error Code of an XML answer into code (empty when there is none or the body is
 * not XML); 0 when the body parsed. */
int tb_s3_error_code(const char *body, size_t len, char *code, size_t codelen);

/* Sets the one-line message of a failed answer ("PUT s3://b/k: HTTP 403 Code (hint)")
 * and returns TB_ENOENT for a missing object, TB_EIO otherwise. */
int tb_s3_http_error(const char *what, const char *method, long status, const char *body, size_t len);

#endif
