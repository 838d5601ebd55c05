/* sigv4: AWS Signature Version 4 for S3 requests (canonical request, string to sign, key). */
#ifndef TB_SIGV4_H
#define TB_SIGV4_H

#include <stddef.h>

struct tb_sigv4_header {
    const char *name; /* any case; signed lower-cased, values trimmed, runs of spaces folded */
    const char *value;
};

struct tb_sigv4_request {
    const char *method; /* "GET", "PUT", ... */
    const char *path; /* URI path as sent, already percent-encoded ("/bucket/a%20b") */
    const char *query; /* raw query string without '?', may be NULL or "" */
    const struct tb_sigv4_header *headers; /* must include host and x-amz-date */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *region; /* "us-east-1" */
    const char *service; /* "s3" */
    const char *amz_date; /* "20150830T123600Z" (the x-amz-date value) */
    const char *access_key;
    const char *secret_key;
    /* Signing S3 paths: do not normalize or re-encode the path (S3 rule); the AWS test
     * suite's generic vectors want normalization (1) instead: dot segments removed, empty
     * segments dropped, each segment encoded again (so "%20" signs as "%2520"). */
    int normalize_path;
};

/* Writes the Authorization header value into auth (size len), e.g.
 * "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex".
 * Query parameters are decoded, re-encoded per the spec ('+' is a literal plus) and sorted.
 * Errors: TB_EUSAGE (missing field or host header, bad date, auth too small). Optional outputs (NULL to skip):
 * the canonical request and the string to sign, for tests and debugging (malloc'd). */
int tb_sigv4_sign(const struct tb_sigv4_request *r, char *auth, size_t len, char **canonical, char **string_to_sign);

/* Percent-encodes s as SigV4 wants (unreserved A-Z a-z 0-9 - _ . ~ kept; '/' kept when
 * keep_slash): the S3 object key in a path, or a query name/value. Returns malloc'd, or
 * NULL (s NULL, out of memory). */
char *tb_sigv4_uri_encode(const char *s, int keep_slash);

/* "20150830T123600Z" for a Unix time (UTC). */
void tb_sigv4_amz_date(long long unix_seconds, char out[17]);

#endif
