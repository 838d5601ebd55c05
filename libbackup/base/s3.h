/* s3: a client of the S3 REST API for any compatible store (AWS, Ceph RGW, MinIO, ...):
 * SigV4, path-style or virtual-host addressing, multipart uploads with parts in flight,
 * parallel ranged downloads, retries with backoff, abort of failed multipart uploads. */
#ifndef TB_S3_H
#define TB_S3_H

#include <stdint.h>

#include "stream.h"

typedef struct tb_s3 tb_s3;

struct tb_s3_config {
    const char *endpoint; /* "http://127.0.0.1:7480", "https://s3.example.com"; NULL: AWS for region */
    const char *region; /* NULL: "us-east-1" */
    const char *access_key; /* required */
    const char *secret_key; /* required; never appears in any message */
    const char *session_token; /* optional: sent as x-amz-security-token */
    int path_style; /* -1 auto (path style for a custom endpoint, virtual host for AWS), 0, 1 */
    const char *ca_bundle; /* NULL: the system CA store */
    int parallel; /* requests in flight for multipart and ranged GET; 0: 8 */
    uint64_t part_size; /* first part size; 0: 8 MiB; grown so a stream stays under 10,000 parts */
    uint64_t multipart_threshold; /* objects at least this large go multipart; 0: part_size */
    int retries; /* attempts per request after the first; 0: 5; -1: none */
    /* Optional: called once per retried request, for -v ("retry 2/5 PUT key part 7: HTTP 503 SlowDown"). */
    void (*on_retry)(void *arg, const char *what);
    void *on_retry_arg;
};

struct tb_s3_object {
    char *key; /* full key */
    uint64_t size;
    int64_t mtime; /* Unix seconds */
    char etag[72]; /* without quotes */
    char sha256[65]; /* x-amz-meta-sha256 when the object has it (our uploads do), else "" */
};

/* "s3://bucket/key/with/slashes" -> bucket, key (key may be "" for s3://bucket or s3://bucket/). */
int tb_s3_url_parse(const char *url, char **bucket, char **key);
int tb_s3_is_url(const char *s);
/* A key prefix taken as a directory: "" stays "", anything else ends in one '/' (malloc'd). */
char *tb_s3_dir_prefix(const char *prefix);
/* tb_s3_url_parse with the key taken as a directory (tb_s3_dir_prefix). */
int tb_s3_url_parse_dir(const char *url, char **bucket, char **prefix);

int tb_s3_new(tb_s3 **out, const struct tb_s3_config *cfg);
void tb_s3_free(tb_s3 *s);
/* Progress of every put and get that follows: *total (total may be NULL) is set before the
 * first byte to the object's size when known (a file, a download), else 0 (a stream);
 * progress is called with the bytes transferred so far, from the calling thread, as each
 * part or range completes. progress NULL: none. */
void tb_s3_set_progress(tb_s3 *s, tb_progress_cb progress, void *arg, uint64_t *total);

/* Uploads everything src gives (read to its end; not closed). size: the length when known,
 * UINT64_MAX for a stream of unknown length. The object appears whole or not at all; a failed
 * multipart upload is aborted. The SHA-256 of the whole object is stored as x-amz-meta-sha256
 * (single PUT: as a header; multipart: set at CreateMultipartUpload when known beforehand,
 * which for a stream it is not: then it is omitted). sha256_hex may be NULL. */
int tb_s3_put(tb_s3 *s, const char *bucket, const char *key, tb_stream *src, uint64_t size, const char *sha256_hex);
/* A file: size and SHA-256 known first, parts read by offset in parallel. */
int tb_s3_put_file(tb_s3 *s, const char *bucket, const char *key, const char *path);
/* Writes the object, in order, to dst (not closed). */
int tb_s3_get(tb_s3 *s, const char *bucket, const char *key, tb_stream *dst);
/* Downloads into path by temp name, fsync, rename (never a half file under path). */
int tb_s3_get_file(tb_s3 *s, const char *bucket, const char *key, const char *path);
/* TB_ENOENT when there is no such object. */
int tb_s3_stat(tb_s3 *s, const char *bucket, const char *key, struct tb_s3_object *out);
void tb_s3_object_clear(struct tb_s3_object *o);
/* Every object under prefix, in key order, across pages; cb returning non-zero stops
 * and that value is returned. */
int tb_s3_list(tb_s3 *s, const char *bucket, const char *prefix, int (*cb)(void *arg, const struct tb_s3_object *o),
               void *arg);
/* Every object under prefix, listed whole (before anything changes them): *out (malloc'd,
 * *n of them) frees with tb_s3_objects_free. */
int tb_s3_list_all(tb_s3 *s, const char *bucket, const char *prefix, struct tb_s3_object **out, size_t *n);
void tb_s3_objects_free(struct tb_s3_object *v, size_t n);
int tb_s3_delete(tb_s3 *s, const char *bucket, const char *key);

/* sync: copies what is missing or differs (size, then SHA-256 against x-amz-meta-sha256)
 * between a local directory (regular files, recursively) and a prefix. prefix "" or
 * ending in '/' is used as is, else a '/' is added. *copied (may be NULL): files copied. */
int tb_s3_sync_up(tb_s3 *s, const char *dir, const char *bucket, const char *prefix, unsigned *copied);
int tb_s3_sync_down(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, unsigned *copied);

#endif
