/* test_sigv4: AWS Signature Version 4 against the AWS test suite (tests/unit/sigv4) and the S3 docs. */
#include "tap.h"
#include "error.h"
#include "sigv4.h"
#include "stream.h"

#include <openssl/evp.h>
#include <stdlib.h>

/* The suite's cases, one directory each holding NAME.req, .creq, .sts and .authz. */
static const char *cases[] = {
    "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order",
    "get-header-value-trim", "get-unreserved", "get-utf8", "get-vanilla",
    "get-vanilla-empty-query-key", "get-vanilla-query", "get-vanilla-query-order-key",
    "get-vanilla-query-order-key-case", "get-vanilla-query-order-value",
    "get-vanilla-query-unreserved", "get-vanilla-utf8-query", "get-relative",
    "get-relative-relative", "get-slash", "get-slash-dot-slash", "get-slash-pointless-dot",
    "get-slashes", "get-space", "post-header-key-case", "post-header-key-sort",
    "post-header-value-case", "post-sts-header-after", "post-sts-header-before",
    "post-vanilla", "post-vanilla-empty-query-value", "post-vanilla-query",
    "post-x-www-form-urlencoded", "post-x-www-form-urlencoded-parameters",
};

static char datadir[4096];

static int starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Reads DATADIR/NAME/NAME.EXT; one trailing newline is dropped (the suite is inconsistent). */
static char *slurp(const char *name, const char *ext)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/%s.%s", datadir, name, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    return buf;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
    tb_hex(md, sizeof md, out);
}

/* Parses the suite's HTTP request text in place: "METHOD target HTTP/1.1", headers, a blank
 * line, the body. The target is raw (may hold spaces and UTF-8). A line starting with
 * blanks continues the previous header; the suite reads it as another value of that
 * header (joined with ','), so it becomes one more header of the same name. */
static int sign_case(const char *name, char *auth, size_t authlen, char **creq, char **sts)
{
    char *req = slurp(name, "req"), *line, *next, *body = "";
    struct tb_sigv4_header h[32];
    size_t nh = 0;
    int rc = -1;
    if (!req)
        return -1;
    char *sp = strchr(req, ' '), *eol = strchr(req, '\n');
    if (!sp || !eol)
        goto cleanup;
    *sp = '\0';
    *eol = '\0';
    char *proto = strrchr(sp + 1, ' ');
    if (!proto)
        goto cleanup;
    *proto = '\0';
    char *target = sp + 1, *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    for (line = eol + 1; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line) {
            body = next ? next : "";
            break;
        }
        if ((*line == ' ' || *line == '\t') && nh > 0 && nh < 32) {
            h[nh].name = h[nh - 1].name;
            h[nh++].value = line;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon || nh == 32)
            goto cleanup;
        *colon = '\0';
        h[nh].name = line;
        h[nh++].value = colon + 1;
    }
    char payload[65];
    sha256_hex(body, strlen(body), payload);
    struct tb_sigv4_request r = {
        .method = req, .path = target, .query = query, .headers = h, .nheaders = nh,
        .payload_hash = payload, .region = "us-east-1", .service = "service",
        .amz_date = "20150830T123600Z", .access_key = "AKIDEXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", .normalize_path = 1,
    };
    rc = tb_sigv4_sign(&r, auth, authlen, creq, sts);
cleanup:
    free(req);
    return rc;
}

static void test_suite(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *c = cases[i];
        char auth[512] = "", *creq = NULL, *sts = NULL;
        char *want_creq = slurp(c, "creq"), *want_sts = slurp(c, "sts"), *want_auth = slurp(c, "authz");
        int rc = sign_case(c, auth, sizeof auth, &creq, &sts);
        ok(rc == 0 && want_creq && want_sts && want_auth, "%s: signed (%s)", c, rc ? tb_error_last() : "ok");
        is_str(creq, want_creq, "%s: canonical request", c);
        is_str(sts, want_sts, "%s: string to sign", c);
        is_str(auth, want_auth, "%s: Authorization", c);
        free(creq);
        free(sts);
        free(want_creq);
        free(want_sts);
        free(want_auth);
    }
}

/* The "GET Object" example of the S3 docs (sig-v4-header-based-auth.html). */
static void test_s3_example(void)
{
    static const char empty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    struct tb_sigv4_header h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "Range", "bytes=0-9" },
        { "x-amz-content-sha256", empty },
        { "x-amz-date", "20130524T000000Z" },
    };
    struct tb_sigv4_request r = {
        .method = "GET", .path = "/test.txt", .headers = h, .nheaders = 4, .payload_hash = empty,
        .region = "us-east-1", .service = "s3", .amz_date = "20130524T000000Z",
        .access_key = "AKIAIOSFODNN7EXAMPLE", .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    };
    char auth[512], *creq = NULL;
    ok(tb_sigv4_sign(&r, auth, sizeof auth, &creq, NULL) == 0, "S3 GET Object example signs");
    is_str(creq, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                 "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                 "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
           "S3 example: canonical request");
    is_str(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
           "S3 example: Authorization");
    free(creq);

    /* S3 mode takes the path as sent: no dot-segment removal, no slash folding, no re-encoding. */
    r.path = "/my-object//example/./photo%20a.user";
    ok(tb_sigv4_sign(&r, auth, sizeof auth, &creq, NULL) == 0 && starts(creq, "GET\n/my-object//example/./photo%20a.user\n"),
       "S3 mode keeps the path as given");
    free(creq);
    creq = NULL;
    r.normalize_path = 1;
    ok(tb_sigv4_sign(&r, auth, sizeof auth, &creq, NULL) == 0 && starts(creq, "GET\n/my-object/example/photo%2520a.user\n"),
       "generic mode normalizes and encodes again");
    free(creq);
    creq = NULL;
    r.normalize_path = 0;

    /* Query: decoded then encoded again, sorted by name then value, bare names get '='. */
    r.path = "/";
    r.query = "prefix=a b/c&list-type=2&delimiter=%2f&marker=%7e&z&Z=%zz+";
    ok(tb_sigv4_sign(&r, auth, sizeof auth, &creq, NULL) == 0 &&
       starts(creq, "GET\n/\nZ=%25zz%2B&delimiter=%2F&list-type=2&marker=~&prefix=a%20b%2Fc&z=\n"),
       "query re-encoded and sorted");
    free(creq);
    creq = NULL;
    r.query = NULL;

    /* Errors are usage errors with a message, never a crash. */
    r.nheaders = 3;
    h[0].name = "x-other";
    ok(tb_sigv4_sign(&r, auth, sizeof auth, NULL, NULL) == TB_EUSAGE && strstr(tb_error_last(), "host"),
       "no host header refused");
    h[0].name = "Host";
    r.amz_date = "2013-05-24";
    ok(tb_sigv4_sign(&r, auth, sizeof auth, NULL, NULL) == TB_EUSAGE && strstr(tb_error_last(), "date"),
       "malformed date refused");
    r.amz_date = "20130524T000000Z";
    ok(tb_sigv4_sign(&r, auth, 40, &creq, NULL) == TB_EUSAGE && creq == NULL, "short buffer refused, no output left");
}

static void test_helpers(void)
{
    char d[17], *s;
    tb_sigv4_amz_date(1440938160, d);
    is_str(d, "20150830T123600Z", "amz_date of the suite's time");
    tb_sigv4_amz_date(0, d);
    is_str(d, "19700101T000000Z", "amz_date of the epoch");
    tb_sigv4_amz_date(1369353600, d);
    is_str(d, "20130524T000000Z", "amz_date of the S3 example");

    s = tb_sigv4_uri_encode("-._~AZaz09", 0);
    is_str(s, "-._~AZaz09", "unreserved kept");
    free(s);
    s = tb_sigv4_uri_encode("dir/a b+c=d&e%f", 1);
    is_str(s, "dir/a%20b%2Bc%3Dd%26e%25f", "reserved encoded, slash kept");
    free(s);
    s = tb_sigv4_uri_encode("dir/a b", 0);
    is_str(s, "dir%2Fa%20b", "slash encoded unless kept");
    free(s);
    s = tb_sigv4_uri_encode("\xe1\x88\xb4\xc3\xa9", 1);
    is_str(s, "%E1%88%B4%C3%A9", "UTF-8 bytes encoded, upper-case hex");
    free(s);
    s = tb_sigv4_uri_encode("", 1);
    is_str(s, "", "empty string");
    free(s);
}

int main(void)
{
    const char *src = getenv("TB_SRCDIR");
    snprintf(datadir, sizeof datadir, "%s/tests/unit/sigv4", src && *src ? src : ".");
    char *probe = slurp("get-vanilla", "req");
    if (!probe)
        diag("no test vectors under %s: run from the repository root or set TB_SRCDIR", datadir);
    free(probe);
    test_helpers();
    test_suite();
    test_s3_example();
    return done_testing();
}
