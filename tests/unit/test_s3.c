/* test_s3: the S3 client's pure parts: s3:// locations, part sizes, error answers. */
#include "tap.h"
#include "error.h"
#include "s3.h"
#include "s3_internal.h"

#include <stdint.h>
#include <stdlib.h>

#define MiB (1024ull * 1024)

static void url(const char *in, const char *bucket, const char *key)
{
    char *b = NULL, *k = NULL;
    ok(tb_s3_url_parse(in, &b, &k) == 0, "parse %s", in);
    is_str(b, bucket, "  bucket");
    is_str(k, key, "  key");
    free(b);
    free(k);
}

static void bad_url(const char *in)
{
    char *b = (char *)1, *k = (char *)1;
    ok(tb_s3_url_parse(in, &b, &k) == TB_EUSAGE && !b && !k, "refused: %s", in ? in : "(null)");
}

int main(void)
{
    char code[128];
    int rc;

    ok(tb_s3_is_url("s3://b/k"), "s3:// is a location");
    ok(!tb_s3_is_url("/tmp/s3://x") && !tb_s3_is_url("S3://b") && !tb_s3_is_url(NULL), "others are not");
    url("s3://bucket/key", "bucket", "key");
    url("s3://bucket/a/b/c.sst", "bucket", "a/b/c.sst");
    url("s3://bucket", "bucket", "");
    url("s3://bucket/", "bucket", "");
    url("s3://bucket/dir/", "bucket", "dir/");
    bad_url("s3://");
    bad_url("s3:///key");
    bad_url("http://bucket/key");
    bad_url(NULL);

    /* Parts grow so a stream of unknown length fits in 10,000 of them. */
    is_int(tb_s3_part_size(8 * MiB, 1), 8 * MiB, "part 1: the first size");
    is_int(tb_s3_part_size(8 * MiB, 1000), 8 * MiB, "part 1000: still the first size");
    is_int(tb_s3_part_size(8 * MiB, 1001), 16 * MiB, "part 1001: doubled");
    is_int(tb_s3_part_size(8 * MiB, 10000), 8 * MiB << 9, "part 10000: 2^9 times");
    {
        uint64_t total = 0;
        int monotonic = 1;
        for (unsigned n = 1; n <= 10000; n++) {
            total += tb_s3_part_size(8 * MiB, n);
            if (n > 1 && tb_s3_part_size(8 * MiB, n) < tb_s3_part_size(8 * MiB, n - 1))
                monotonic = 0;
        }
        ok(monotonic, "part sizes never shrink");
        is_int(total, 1023ull * 1000 * 8 * MiB, "10,000 parts from 8 MiB hold 1,023,000 x 8 MiB (8 TiB)");
        ok(tb_s3_part_size(8 * MiB, 10000) <= 5ull * 1024 * 1024 * MiB, "the last part stays under S3's 5 GiB");
    }

    /* Error answers. */
    static const char rgw403[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code><Message></Message>"
        "<BucketName>b</BucketName><RequestId>tx0</RequestId><HostId>h</HostId></Error>";
    ok(tb_s3_error_code(rgw403, sizeof rgw403 - 1, code, sizeof code) == 0, "RGW error body parses");
    is_str(code, "SignatureDoesNotMatch", "  its Code");
    ok(tb_s3_error_code("<html>oops", 10, code, sizeof code) < 0 && !*code, "not XML: no code");
    ok(tb_s3_error_code("", 0, code, sizeof code) < 0 && !*code, "empty body: no code");
    static const char ok200[] = "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket>"
                                "<Key>k</Key><ETag>\"e-2\"</ETag></CompleteMultipartUploadResult>";
    ok(tb_s3_error_code(ok200, sizeof ok200 - 1, code, sizeof code) == 0 && !*code, "a result has no Code");
    static const char err200[] = "<Error><Code>InternalError</Code><Message>We encountered an internal error."
                                 "</Message></Error>";
    ok(tb_s3_error_code(err200, sizeof err200 - 1, code, sizeof code) == 0, "an error in a 200 answer");
    is_str(code, "InternalError", "  its Code");

    rc = tb_s3_http_error("PUT s3://b/k", "PUT", 403, rgw403, sizeof rgw403 - 1);
    is_int(rc, TB_EIO, "403: an I/O failure");
    is_str(tb_error_last(), "PUT s3://b/k: HTTP 403 SignatureDoesNotMatch (check the access key, the secret key and the region)",
           "  one line with the Code and the hint");
    static const char nokey[] = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    is_int(tb_s3_http_error("GET s3://b/k", "GET", 404, nokey, sizeof nokey - 1), TB_ENOENT, "NoSuchKey: TB_ENOENT");
    is_str(tb_error_last(), "GET s3://b/k: HTTP 404 NoSuchKey", "  message");
    is_int(tb_s3_http_error("HEAD s3://b/k", "HEAD", 404, NULL, 0), TB_ENOENT, "HEAD 404 without a body: TB_ENOENT");
    is_str(tb_error_last(), "HEAD s3://b/k: HTTP 404 NotFound", "  message");
    static const char nobucket[] = "<Error><Code>NoSuchBucket</Code></Error>";
    is_int(tb_s3_http_error("GET s3://x/k", "GET", 404, nobucket, sizeof nobucket - 1), TB_EIO, "NoSuchBucket: TB_EIO");
    is_str(tb_error_last(), "GET s3://x/k: HTTP 404 NoSuchBucket (the bucket does not exist)", "  message");
    is_int(tb_s3_http_error("PUT s3://b/k", "PUT", 502, "<html>bad gateway</html>", 24), TB_EIO, "502 with HTML");
    is_str(tb_error_last(), "PUT s3://b/k: HTTP 502", "  message without a Code");
    return done_testing();
}
