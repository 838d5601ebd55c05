/* s3: the S3 REST API over libcurl: signed requests with retries, multipart uploads and
 * ranged downloads with several requests in flight (one thread each), XML by expat. */
#include "s3.h"
#include "s3_internal.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "mem.h"
#include "sigv4.h"
#include "timefmt.h"

#define MAX_PARTS 10000
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct tb_s3 {
    struct tb_s3_config c;
    char *scheme, *host; /* "http", "127.0.0.1:7480" */
    char *region, *ak, *sk, *token, *ca;
    int path_style;
    tb_progress_cb progress;
    void *progress_arg;
    uint64_t *progress_total;
    int syncing; /* a sync: progress counts every file's bytes, total unknown */
    uint64_t synced; /* bytes of the files a sync has copied so far */
};

/* ---- helpers -------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int tb_s3_is_url(const char *s)
{
    return s && strncmp(s, "s3://", 5) == 0;
}

int tb_s3_url_parse(const char *url, char **bucket, char **key)
{
    const char *b, *slash;
    *bucket = *key = NULL;
    if (!tb_s3_is_url(url) || !url[5] || url[5] == '/')
        return tb_error_set(TB_EUSAGE, "not an s3://BUCKET/KEY location: %s", url ? url : "(none)");
    b = url + 5;
    slash = strchr(b, '/');
    *bucket = slash ? strndup(b, (size_t)(slash - b)) : strdup(b);
    *key = strdup(slash ? slash + 1 : "");
    if (!*bucket || !*key) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return tb_error_set(TB_EIO, "out of memory");
    }
    return 0;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned int n = 32;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    tb_hex(d, 32, hex);
}

static void md5_base64(const void *data, size_t len, char out[32])
{
    unsigned char d[16];
    unsigned int n = 16;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

/* Exponential backoff with full jitter: 100 ms, 200 ms, ... up to 10 s. */
static void backoff(int attempt)
{
    long ms = 100L << (attempt < 7 ? attempt : 7);
    if (ms > 10000)
        ms = 10000;
    unsigned seed = (unsigned)(time(NULL) ^ (uintptr_t)&attempt ^ (unsigned)attempt);
    ms = ms / 2 + rand_r(&seed) % (ms / 2 + 1);
    for (; ms > 0 && !tb_interrupted; ms -= 50) {
        struct timespec ts = { 0, (ms < 50 ? ms : 50) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* ---- XML (expat): the text of elements by name --------------------------------- */

struct xml {
    char text[2048];
    size_t len;
    void (*on_end)(void *arg, const char *name, const char *text);
    void *arg;
    int err;
};

static void xml_start(void *d, const XML_Char *name, const XML_Char **attrs)
{
    struct xml *x = d;
    (void)name;
    (void)attrs;
    x->len = 0;
    x->text[0] = 0;
}

static void xml_end(void *d, const XML_Char *name)
{
    struct xml *x = d;
    x->on_end(x->arg, name, x->text);
    x->len = 0;
    x->text[0] = 0;
}

static void xml_chars(void *d, const XML_Char *s, int len)
{
    struct xml *x = d;
    size_t n = (size_t)len;
    if (n > sizeof x->text - 1 - x->len)
        n = sizeof x->text - 1 - x->len;
    memcpy(x->text + x->len, s, n);
    x->len += n;
    x->text[x->len] = 0;
}

static int xml_parse(const char *body, size_t len, void (*on_end)(void *, const char *, const char *), void *arg)
{
    struct xml x = { .on_end = on_end, .arg = arg };
    XML_Parser p = XML_ParserCreate(NULL);
    int ok;
    if (!p)
        return -1;
    XML_SetUserData(p, &x);
    XML_SetElementHandler(p, xml_start, xml_end);
    XML_SetCharacterDataHandler(p, xml_chars);
    ok = XML_Parse(p, body, (int)len, 1) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok ? 0 : -1;
}

struct err_fields {
    char code[128];
    char upload_id[512];
};

static void err_end(void *arg, const char *name, const char *text)
{
    struct err_fields *e = arg;
    if (strcmp(name, "Code") == 0)
        snprintf(e->code, sizeof e->code, "%s", text);
    else if (strcmp(name, "UploadId") == 0)
        snprintf(e->upload_id, sizeof e->upload_id, "%s", text);
}

/* ---- one request ---------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

struct req {
    const char *method, *bucket, *key;
    const char *query; /* canonical (sorted, encoded) or NULL */
    const char *const *extra; /* "name: value" headers to send and sign, NULL-terminated */
    const char *body; /* request body in memory */
    size_t body_len;
    int send_md5;
    uint64_t range_from, range_to; /* inclusive; range_to == 0 and range_from == 0: none */
    /* Response: into a buffer, or into dst at an offset (ranged reads). */
    char *dst;
    size_t dst_len, dst_got;
    struct buf resp;
    long status;
    char etag[72], sha256[65], last_modified[64];
    uint64_t length;
    char what[512]; /* "PUT s3://b/k" for messages */
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = sz * n;
    if (r->dst && r->status / 100 == 2) {
        if (len > r->dst_len - r->dst_got)
            return 0;
        memcpy(r->dst + r->dst_got, p, len);
        r->dst_got += len;
        return len;
    }
    if (r->resp.len + len + 1 > r->resp.cap) {
        size_t cap = (r->resp.len + len + 1) * 2;
        char *q = realloc(r->resp.p, cap);
        if (!q)
            return 0;
        r->resp.p = q;
        r->resp.cap = cap;
    }
    memcpy(r->resp.p + r->resp.len, p, len);
    r->resp.len += len;
    r->resp.p[r->resp.len] = 0;
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return;
    line += n;
    len -= n;
    while (len && (*line == ' ' || *line == '"')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' || line[len - 1] == '"'))
        len--;
    snprintf(out, outlen, "%.*s", (int)len, line);
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = sz * n;
    char num[32] = "";
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0)
        r->status = atol(p + 9 > p + len ? p + len : p + 9);
    header_value(p, len, "etag:", r->etag, sizeof r->etag);
    header_value(p, len, "x-amz-meta-sha256:", r->sha256, sizeof r->sha256);
    header_value(p, len, "last-modified:", r->last_modified, sizeof r->last_modified);
    header_value(p, len, "content-length:", num, sizeof num);
    if (*num)
        r->length = strtoull(num, NULL, 10);
    return len;
}

static size_t on_read(char *p, size_t sz, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = sz * n, left = r->body_len - r->dst_got;
    if (len > left)
        len = left;
    memcpy(p, r->body + r->dst_got, len);
    r->dst_got += len;
    return len;
}

static int add(struct curl_slist **l, const char *name, const char *value)
{
    char line[2048];
    struct curl_slist *n;
    snprintf(line, sizeof line, "%s: %s", name, value);
    if (!(n = curl_slist_append(*l, line)))
        return -1;
    *l = n;
    return 0;
}

/* One request as sent: its URL, and the headers it is signed with. */
struct wire {
    struct tb_sigv4_header h[16];
    char *names[16]; /* the names of r->extra's headers, malloc'd */
    size_t nh;
    char date[17], hash[65], md5[32], range[64], host[512], auth[512];
    char *path, *url;
};

static void wire_free(struct wire *w)
{
    for (size_t i = 0; i < 16; i++)
        free(w->names[i]);
    free(w->path);
    free(w->url);
}

/* Host, path and URL: path style puts the bucket in the path, virtual hosting in the host. */
static int wire_url(struct wire *w, const tb_s3 *s, const struct req *r)
{
    char *ekey = tb_sigv4_uri_encode(r->key ? r->key : "", 1);
    if (!ekey)
        return tb_error_set(TB_EIO, "out of memory");
    if (s->path_style) {
        snprintf(w->host, sizeof w->host, "%s", s->host);
        if (asprintf(&w->path, "/%s%s%s", r->bucket ? r->bucket : "", r->key ? "/" : "", ekey) < 0)
            w->path = NULL;
    } else {
        snprintf(w->host, sizeof w->host, "%s.%s", r->bucket, s->host);
        if (asprintf(&w->path, "/%s", ekey) < 0)
            w->path = NULL;
    }
    free(ekey);
    if (!w->path ||
        asprintf(&w->url, "%s://%s%s%s%s", s->scheme, w->host, w->path, r->query && *r->query ? "?" : "",
                 r->query ? r->query : "") < 0) {
        w->url = NULL;
        return tb_error_set(TB_EIO, "out of memory");
    }
    return 0;
}

static void wire_add(struct wire *w, const char *name, const char *value)
{
    w->h[w->nh++] = (struct tb_sigv4_header){ name, value };
}

/* The headers to sign and send (host first), and the Authorization they give. */
static int wire_sign(struct wire *w, const tb_s3 *s, const struct req *r)
{
    tb_sigv4_amz_date((long long)time(NULL), w->date);
    if (r->body_len)
        sha256_hex(r->body, r->body_len, w->hash);
    else
        strcpy(w->hash, EMPTY_SHA256);
    wire_add(w, "host", w->host);
    wire_add(w, "x-amz-date", w->date);
    wire_add(w, "x-amz-content-sha256", w->hash);
    if (s->token)
        wire_add(w, "x-amz-security-token", s->token);
    if (r->send_md5) {
        md5_base64(r->body, r->body_len, w->md5);
        wire_add(w, "content-md5", w->md5);
    }
    if (r->range_to) {
        snprintf(w->range, sizeof w->range, "bytes=%llu-%llu", (unsigned long long)r->range_from,
                 (unsigned long long)r->range_to);
        wire_add(w, "range", w->range);
    }
    for (size_t i = 0; r->extra && r->extra[i] && w->nh < 16; i++) {
        const char *colon = strchr(r->extra[i], ':');
        w->names[w->nh] = strndup(r->extra[i], (size_t)(colon - r->extra[i]));
        wire_add(w, w->names[w->nh], colon + 1 + (colon[1] == ' '));
    }
    struct tb_sigv4_request sr = { r->method, w->path, r->query, w->h,  w->nh, w->hash,
                                   s->region, "s3",    w->date,  s->ak, s->sk, 0 };
    return tb_sigv4_sign(&sr, w->auth, sizeof w->auth, NULL, NULL);
}

/* The signed headers as curl sends them. */
static int wire_headers(const struct wire *w, struct curl_slist **hl)
{
    struct curl_slist *n;
    for (size_t i = 1; i < w->nh; i++) /* curl sends Host itself, from the URL */
        if (add(hl, w->h[i].name, w->h[i].value) < 0)
            return tb_error_set(TB_EIO, "out of memory");
    if (add(hl, "Authorization", w->auth) < 0)
        return tb_error_set(TB_EIO, "out of memory");
    /* No "Expect: 100-continue" round trip before each part. */
    if ((n = curl_slist_append(*hl, "Expect:")))
        *hl = n;
    return 0;
}

static void setup_method(CURL *c, struct req *r)
{
    int put = strcmp(r->method, "PUT") == 0;
    if (put || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, put ? CURLOPT_UPLOAD : CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, put ? CURLOPT_INFILESIZE_LARGE : CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

static void setup_curl(CURL *c, const tb_s3 *s, struct req *r, const char *url, struct curl_slist *hl)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    /* A stalled transfer (under 1 KiB/s for 60 s) is a connection error, retried. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (s->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca);
    setup_method(c, r);
}

/* Sends r once. Returns 0 when an HTTP status arrived (r->status), else TB_EIO with a
 * message (connection errors). */
static int send_once(tb_s3 *s, struct req *r)
{
    struct wire w = { 0 };
    struct curl_slist *hl = NULL;
    CURL *c = curl_easy_init();
    CURLcode cc;
    int rc = 0;

    if (!c)
        return tb_error_set(TB_EIO, "%s: cannot start a request", r->what);
    if ((rc = wire_url(&w, s, r)) < 0 || (rc = wire_sign(&w, s, r)) < 0 || (rc = wire_headers(&w, &hl)) < 0)
        goto cleanup;
    r->resp.len = 0;
    r->status = 0;
    r->etag[0] = r->sha256[0] = r->last_modified[0] = 0;
    r->length = 0;
    if (!r->dst)
        r->dst_got = 0; /* the upload's read position */
    setup_curl(c, s, r, w.url, hl);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r->status / 100 != 2 && r->status)) {
        rc = tb_error_set(TB_EIO, "%s: %s", r->what, curl_easy_strerror(cc));
    } else {
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        r->status = st;
    }
cleanup:
    wire_free(&w);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc;
}

static int retryable(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

int tb_s3_error_code(const char *body, size_t len, char *code, size_t codelen)
{
    struct err_fields e = { "", "" };
    int rc = len ? xml_parse(body, len, err_end, &e) : -1;
    snprintf(code, codelen, "%s", e.code);
    return rc;
}

/* The one-line message of a failed response: status, S3 Code, and a hint. */
int tb_s3_http_error(const char *what, const char *method, long status, const char *body, size_t len)
{
    char code[128];
    const char *hint = "";
    tb_s3_error_code(body, len, code, sizeof code);
    if (!*code && status == 404)
        strcpy(code, strcmp(method, "HEAD") == 0 ? "NotFound" : "NoSuchKey");
    if (!strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "InvalidAccessKeyId") || status == 403)
        hint = " (check the access key, the secret key and the region)";
    if (!strcmp(code, "NoSuchBucket"))
        hint = " (the bucket does not exist)";
    if (status == 412)
        hint = " (the object was replaced while it was being read)";
    return tb_error_set(status == 404 && strcmp(code, "NoSuchBucket") != 0 ? TB_ENOENT : TB_EIO, "%s: HTTP %ld%s%s%s",
                        what, status, *code ? " " : "", code, hint);
}

static int http_error(struct req *r)
{
    return tb_s3_http_error(r->what, r->method, r->status, r->resp.p, r->resp.len);
}

/* Sends r with retries on connection errors, 5xx and 429; 0 for a 2xx answer. A ranged
 * read that broke midway resumes where it stopped. */
static int perform(tb_s3 *s, struct req *r)
{
    int attempts = s->c.retries < 0 ? 1 : (s->c.retries ? s->c.retries : 5) + 1;
    uint64_t from = r->range_from;
    for (int i = 0;; i++) {
        int rc;
        if ((rc = tb_error_check_interrupt()) < 0)
            return rc;
        if (r->dst)
            r->range_from = from + r->dst_got;
        rc = send_once(s, r);
        if (rc == 0 && r->status / 100 == 2 && (!r->dst || r->dst_got == r->dst_len))
            return 0;
        if (rc == 0 && !retryable(r->status) && r->status / 100 != 2)
            return http_error(r);
        if (i + 1 >= attempts) {
            if (rc == 0 && r->status / 100 == 2)
                return tb_error_set(TB_EIO, "%s: the answer ended early (%zu of %zu bytes)", r->what, r->dst_got,
                                    r->dst_len);
            return rc < 0 ? rc : http_error(r);
        }
        if (s->c.on_retry) {
            char msg[768];
            if (rc < 0)
                snprintf(msg, sizeof msg, "retry %d/%d %s", i + 1, attempts - 1, tb_error_last());
            else
                snprintf(msg, sizeof msg, "retry %d/%d %s: HTTP %ld", i + 1, attempts - 1, r->what, r->status);
            s->c.on_retry(s->c.on_retry_arg, msg);
        }
        backoff(i);
    }
}

static void req_init(struct req *r, const char *method, const char *bucket, const char *key)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->bucket = bucket;
    r->key = key;
    snprintf(r->what, sizeof r->what, "%s s3://%s/%s", method, bucket, key ? key : "");
}

static void req_clear(struct req *r)
{
    free(r->resp.p);
    r->resp.p = NULL;
}

/* ---- client --------------------------------------------------------------------- */

int tb_s3_new(tb_s3 **out, const struct tb_s3_config *cfg)
{
    tb_s3 *s;
    const char *ep, *p;
    *out = NULL;
    if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key || !*cfg->secret_key)
        return tb_error_set(TB_EUSAGE, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    if (!(s = calloc(1, sizeof *s)))
        return tb_error_set(TB_EIO, "out of memory");
    s->c = *cfg;
    s->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
    s->ak = xstrdup(cfg->access_key);
    s->sk = xstrdup(cfg->secret_key);
    s->token = cfg->session_token && *cfg->session_token ? strdup(cfg->session_token) : NULL;
    s->ca = cfg->ca_bundle && *cfg->ca_bundle ? strdup(cfg->ca_bundle) : NULL;
    s->c.access_key = s->c.secret_key = s->c.session_token = NULL;
    if (cfg->endpoint && *cfg->endpoint) {
        ep = cfg->endpoint;
        p = strstr(ep, "://");
        if (!p || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)) {
            tb_s3_free(s);
            return tb_error_set(TB_EUSAGE, "the S3 endpoint must start with http:// or https:// (%s)", ep);
        }
        s->scheme = strndup(ep, (size_t)(p - ep));
        s->host = strdup(p + 3);
        if (s->host && *s->host && s->host[strlen(s->host) - 1] == '/')
            s->host[strlen(s->host) - 1] = 0;
        s->path_style = cfg->path_style != 0;
    } else {
        s->scheme = strdup("https");
        if (asprintf(&s->host, "s3.%s.amazonaws.com", s->region) < 0)
            s->host = NULL;
        s->path_style = cfg->path_style == 1;
    }
    s->c.endpoint = NULL;
    s->c.region = NULL;
    s->c.ca_bundle = NULL;
    if (!s->c.parallel)
        s->c.parallel = 8;
    if (!s->c.part_size)
        s->c.part_size = 8 << 20;
    if (s->c.part_size < 5 << 20)
        s->c.part_size = 5 << 20; /* S3's smallest part but the last */
    if (!s->c.multipart_threshold)
        s->c.multipart_threshold = s->c.part_size;
    if (!s->region || !s->ak || !s->sk || !s->scheme || !s->host) {
        tb_s3_free(s);
        return tb_error_set(TB_EIO, "out of memory");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    *out = s;
    return 0;
}

void tb_s3_set_progress(tb_s3 *s, tb_progress_cb progress, void *arg, uint64_t *total)
{
    s->progress = progress;
    s->progress_arg = arg;
    s->progress_total = total;
}

static void report_total(tb_s3 *s, uint64_t total)
{
    if (s->progress_total && !s->syncing)
        *s->progress_total = total;
}

static void report_progress(tb_s3 *s, uint64_t done)
{
    if (s->progress)
        s->progress(s->progress_arg, s->synced + done);
}

/* A file a sync copied: its bytes join what the next file's progress adds to. */
static void synced_file(tb_s3 *s, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        s->synced += (uint64_t)st.st_size;
}

void tb_s3_free(tb_s3 *s)
{
    if (!s)
        return;
    if (s->sk)
        memset(s->sk, 0, strlen(s->sk));
    TB_FREE_ALL(s->scheme, s->host, s->region, s->ak, s->sk, s->token, s->ca, s);
}

void tb_s3_object_clear(struct tb_s3_object *o)
{
    free(o->key);
    memset(o, 0, sizeof *o);
}

static int64_t http_date(const char *s)
{
    struct tm tm = { 0 };
    if (!strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

int tb_s3_stat(tb_s3 *s, const char *bucket, const char *key, struct tb_s3_object *out)
{
    struct req r;
    int rc;
    memset(out, 0, sizeof *out);
    req_init(&r, "HEAD", bucket, key);
    if ((rc = perform(s, &r)) == 0) {
        if (!(out->key = strdup(key)))
            rc = tb_error_set(TB_EIO, "out of memory");
        out->size = r.length;
        out->mtime = http_date(r.last_modified);
        snprintf(out->etag, sizeof out->etag, "%s", r.etag);
        snprintf(out->sha256, sizeof out->sha256, "%s", r.sha256);
    }
    req_clear(&r);
    return rc;
}

int tb_s3_delete(tb_s3 *s, const char *bucket, const char *key)
{
    struct req r;
    req_init(&r, "DELETE", bucket, key);
    int rc = perform(s, &r);
    req_clear(&r);
    return rc;
}

/* ---- list ------------------------------------------------------------------------- */

struct list_state {
    struct tb_s3_object o;
    char token[1024];
    int truncated, rc;
    int (*cb)(void *, const struct tb_s3_object *);
    void *arg;
};

static void list_end(void *arg, const char *name, const char *text)
{
    struct list_state *l = arg;
    if (l->rc)
        return;
    if (!strcmp(name, "Key")) {
        free(l->o.key);
        l->o.key = strdup(text);
    } else if (!strcmp(name, "Size")) {
        l->o.size = strtoull(text, NULL, 10);
    } else if (!strcmp(name, "LastModified")) {
        int64_t ns = 0;
        l->o.mtime = tb_time_parse(text, &ns) == 0 ? ns / 1000000000 : 0;
        tb_error_clear();
    } else if (!strcmp(name, "ETag")) {
        const char *t = text[0] == '"' ? text + 1 : text;
        snprintf(l->o.etag, sizeof l->o.etag, "%s", t);
        char *q = strchr(l->o.etag, '"');
        if (q)
            *q = 0;
    } else if (!strcmp(name, "IsTruncated")) {
        l->truncated = !strcmp(text, "true");
    } else if (!strcmp(name, "NextContinuationToken")) {
        snprintf(l->token, sizeof l->token, "%s", text);
    } else if (!strcmp(name, "Contents")) {
        if (l->o.key)
            l->rc = l->cb(l->arg, &l->o);
        tb_s3_object_clear(&l->o);
    }
}

int tb_s3_list(tb_s3 *s, const char *bucket, const char *prefix, int (*cb)(void *arg, const struct tb_s3_object *o),
               void *arg)
{
    struct list_state l = { .cb = cb, .arg = arg };
    int rc = 0;
    do {
        struct req r;
        char *q = NULL, *ep = tb_sigv4_uri_encode(prefix ? prefix : "", 0), *et = tb_sigv4_uri_encode(l.token, 0);
        /* Parameters in canonical order: continuation-token, list-type, prefix. */
        if (!ep || !et ||
            asprintf(&q, "%s%s%slist-type=2&prefix=%s", *l.token ? "continuation-token=" : "", *l.token ? et : "",
                     *l.token ? "&" : "", ep) < 0) {
            free(ep);
            free(et);
            return tb_error_set(TB_EIO, "out of memory");
        }
        free(ep);
        free(et);
        req_init(&r, "GET", bucket, NULL);
        snprintf(r.what, sizeof r.what, "LIST s3://%s/%s", bucket, prefix ? prefix : "");
        r.query = q;
        l.truncated = 0;
        l.token[0] = 0;
        if ((rc = perform(s, &r)) == 0 && xml_parse(r.resp.p ? r.resp.p : "", r.resp.len, list_end, &l) < 0)
            rc = tb_error_set(TB_EIO, "%s: unreadable answer", r.what);
        req_clear(&r);
        free(q);
        if (rc == 0 && l.rc)
            rc = l.rc;
        if (rc == 0 && l.truncated && !*l.token)
            rc = tb_error_set(TB_EIO, "LIST s3://%s/%s: truncated answer without a continuation token", bucket, prefix);
    } while (rc == 0 && l.truncated);
    tb_s3_object_clear(&l.o);
    return rc;
}

struct list_all {
    struct tb_s3_object *v;
    size_t n, cap;
};

static int list_add(void *arg, const struct tb_s3_object *o)
{
    struct list_all *l = arg;
    int rc = tb_grow(&l->v, &l->cap, l->n, sizeof *l->v, 64);
    if (rc < 0)
        return rc;
    l->v[l->n] = *o;
    if (!(l->v[l->n].key = strdup(o->key)))
        return tb_error_set(TB_EIO, "out of memory");
    l->n++;
    return 0;
}

int tb_s3_list_all(tb_s3 *s, const char *bucket, const char *prefix, struct tb_s3_object **out, size_t *n)
{
    struct list_all l = { 0 };
    int rc = tb_s3_list(s, bucket, prefix, list_add, &l);
    if (rc < 0) {
        tb_s3_objects_free(l.v, l.n);
        l.v = NULL;
        l.n = 0;
    }
    *out = l.v;
    *n = l.n;
    return rc;
}

void tb_s3_objects_free(struct tb_s3_object *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        tb_s3_object_clear(&v[i]);
    free(v);
}

/* ---- uploads ---------------------------------------------------------------------- */

/* The part size for part number n (1-based) of a stream of unknown length: it doubles
 * every 1,000 parts, so 10,000 parts hold 1023 × the first part size (8 TiB from 8 MiB). */
uint64_t tb_s3_part_size(uint64_t first, unsigned n)
{
    unsigned shift = (n - 1) / 1000;
    return first << (shift < 20 ? shift : 20);
}

static int put_single(tb_s3 *s, const char *bucket, const char *key, const char *data, size_t len, const char *sha)
{
    struct req r;
    char meta[128];
    const char *extra[2] = { NULL, NULL };
    char hex[65];
    if (!sha) {
        sha256_hex(data, len, hex);
        sha = hex;
    }
    snprintf(meta, sizeof meta, "x-amz-meta-sha256: %s", sha);
    extra[0] = meta;
    req_init(&r, "PUT", bucket, key);
    r.body = data;
    r.body_len = len;
    r.send_md5 = 1;
    r.extra = extra;
    int rc = perform(s, &r);
    req_clear(&r);
    return rc;
}

struct part {
    tb_s3 *s3;
    const char *bucket, *key, *upload_id;
    unsigned number;
    char *data;
    size_t len, cap;
    char etag[72];
    int rc;
    char msg[1024];
    pthread_t thread;
    int running;
};

static void *upload_part(void *arg)
{
    struct part *p = arg;
    struct req r;
    char q[1024];
    req_init(&r, "PUT", p->bucket, p->key);
    snprintf(r.what, sizeof r.what, "PUT s3://%s/%s part %u", p->bucket, p->key, p->number);
    snprintf(q, sizeof q, "partNumber=%u&uploadId=%s", p->number, p->upload_id);
    r.query = q;
    r.body = p->data;
    r.body_len = p->len;
    r.send_md5 = 1;
    p->rc = perform(p->s3, &r);
    if (p->rc < 0)
        snprintf(p->msg, sizeof p->msg, "%s", tb_error_last());
    else if (!*r.etag)
        p->rc = -1, snprintf(p->msg, sizeof p->msg, "%s: no ETag in the answer", r.what);
    snprintf(p->etag, sizeof p->etag, "%s", r.etag);
    req_clear(&r);
    return NULL;
}

struct multipart {
    tb_s3 *s3;
    const char *bucket, *key;
    char upload_id[512];
    char *enc_id;
    struct part *slots;
    int nslots;
    char **etags;
    unsigned nparts, cap;
    uint64_t sent; /* bytes of the parts uploaded, for progress */
    /* The source: a stream, or a file read at offsets (fd >= 0); its size (UINT64_MAX:
     * unknown), the first part's size and how much was read. */
    tb_stream *src;
    int fd;
    uint64_t size, part, off;
};

static int mp_start(struct multipart *m, const char *sha)
{
    struct req r;
    char meta[128];
    const char *extra[2] = { NULL, NULL };
    struct err_fields e = { "", "" };
    int rc;
    req_init(&r, "POST", m->bucket, m->key);
    r.query = "uploads=";
    if (sha) {
        snprintf(meta, sizeof meta, "x-amz-meta-sha256: %s", sha);
        extra[0] = meta;
        r.extra = extra;
    }
    if ((rc = perform(m->s3, &r)) == 0) {
        if (r.resp.len)
            xml_parse(r.resp.p, r.resp.len, err_end, &e);
        if (!*e.upload_id)
            rc = tb_error_set(TB_EIO, "%s: no UploadId in the answer", r.what);
        snprintf(m->upload_id, sizeof m->upload_id, "%s", e.upload_id);
        if (!(m->enc_id = tb_sigv4_uri_encode(m->upload_id, 0)))
            rc = tb_error_set(TB_EIO, "out of memory");
    }
    req_clear(&r);
    return rc;
}

static int mp_join(struct multipart *m, struct part *p)
{
    if (!p->running)
        return 0;
    pthread_join(p->thread, NULL);
    p->running = 0;
    if (p->rc < 0)
        return tb_error_set(TB_EIO, "%s", p->msg);
    if (p->number > m->cap) {
        unsigned cap = p->number * 2;
        char **e = realloc(m->etags, cap * sizeof *e);
        if (!e)
            return tb_error_set(TB_EIO, "out of memory");
        memset(e + m->cap, 0, (cap - m->cap) * sizeof *e);
        m->etags = e;
        m->cap = cap;
    }
    if (!(m->etags[p->number - 1] = strdup(p->etag)))
        return tb_error_set(TB_EIO, "out of memory");
    m->sent += p->len;
    report_progress(m->s3, m->sent);
    return 0;
}

/* Joins every part in flight; the first error wins. */
static int mp_join_all(struct multipart *m, int rc)
{
    for (int i = 0; i < m->nslots; i++) {
        int r = mp_join(m, &m->slots[i]);
        if (rc == 0)
            rc = r;
    }
    return rc;
}

static int mp_launch(struct multipart *m, struct part *p)
{
    p->s3 = m->s3;
    p->bucket = m->bucket;
    p->key = m->key;
    p->upload_id = m->enc_id;
    p->rc = 0;
    if ((errno = pthread_create(&p->thread, NULL, upload_part, p)) != 0)
        return tb_error_errno(TB_EIO, errno, "cannot start an upload thread");
    p->running = 1;
    return 0;
}

static int mp_complete(struct multipart *m)
{
    struct req r;
    char code[128];
    size_t cap = 64 + (size_t)m->nparts * 128, len;
    char *body = malloc(cap), q[1024];
    int rc;
    if (!body)
        return tb_error_set(TB_EIO, "out of memory");
    len = (size_t)sprintf(body, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < m->nparts; i++)
        len += (size_t)sprintf(body + len, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                               m->etags[i]);
    len += (size_t)sprintf(body + len, "</CompleteMultipartUpload>");
    req_init(&r, "POST", m->bucket, m->key);
    snprintf(q, sizeof q, "uploadId=%s", m->enc_id);
    r.query = q;
    r.body = body;
    r.body_len = len;
    rc = perform(m->s3, &r);
    /* S3 may answer 200 and report an error in the body. */
    if (rc == 0 && r.resp.len && tb_s3_error_code(r.resp.p, r.resp.len, code, sizeof code) == 0 && *code)
        rc = tb_error_set(TB_EIO, "%s: %s", r.what, code);
    req_clear(&r);
    free(body);
    return rc;
}

static int mp_abort(struct multipart *m)
{
    struct req r;
    char q[1024];
    if (!m->enc_id)
        return 0;
    int was = tb_interrupted;
    tb_interrupted = 0; /* the abort must go out even when a signal stopped the upload */
    req_init(&r, "DELETE", m->bucket, m->key);
    snprintf(q, sizeof q, "uploadId=%s", m->enc_id);
    r.query = q;
    /* Orphan parts are billed: the abort retries even when the caller asked for none. */
    int retries = m->s3->c.retries;
    if (retries != 0 && retries < 5)
        m->s3->c.retries = 5;
    int rc = perform(m->s3, &r);
    m->s3->c.retries = retries;
    req_clear(&r);
    if (was)
        tb_interrupted = was;
    return rc;
}

static void mp_free(struct multipart *m)
{
    for (int i = 0; i < m->nslots; i++)
        free(m->slots[i].data);
    free(m->slots);
    /* etags has cap entries (zeroed, filled as parts finish); parts launched but failed
     * or never joined may number beyond it. */
    tb_free_strings(m->etags, m->cap);
    free(m->enc_id);
}

/* Fills p with up to want bytes: from the stream, or from fd at offset when fd >= 0. */
static int fill(struct part *p, size_t want, tb_stream *src, int fd, uint64_t off)
{
    if (p->cap < want) {
        char *d = realloc(p->data, want);
        if (!d)
            return tb_error_set(TB_EIO, "out of memory");
        p->data = d;
        p->cap = want;
    }
    p->len = 0;
    while (p->len < want) {
        size_t n = 0;
        if (fd >= 0) {
            ssize_t r = pread(fd, p->data + p->len, want - p->len, (off_t)(off + p->len));
            if (r < 0)
                return tb_error_errno(TB_EIO, errno, "read");
            n = (size_t)r;
        } else {
            int rc = tb_stream_read(src, p->data + p->len, want - p->len, &n);
            if (rc < 0)
                return rc;
        }
        if (n == 0)
            break;
        p->len += n;
    }
    return 0;
}

/* The one PUT of a whole object that came in one part. */
static int put_whole(struct multipart *m, const struct part *p, const char *sha)
{
    int rc = put_single(m->s3, m->bucket, m->key, p->data, p->len, sha);
    if (rc == 0)
        report_progress(m->s3, p->len);
    return rc;
}

/* One PUT when the object is small: of a known size under the multipart threshold, or a
 * stream that ends before it. Otherwise (*done 0) first holds what was read to decide. */
static int put_small(struct multipart *m, struct part *first, const char *sha, int *done)
{
    uint64_t threshold = m->s3->c.multipart_threshold;
    int rc;
    *done = 1;
    if (m->size != UINT64_MAX && m->size < threshold) {
        if ((rc = fill(first, (size_t)m->size + 1, m->src, m->fd, 0)) < 0)
            return rc;
        if (first->len != m->size)
            return tb_error_set(TB_EIO, "PUT s3://%s/%s: the source changed size while read", m->bucket, m->key);
        return put_whole(m, first, sha);
    }
    /* Unknown size: read the first part; a stream shorter than the threshold is one PUT. */
    if (m->size == UINT64_MAX) {
        if ((rc = fill(first, (size_t)m->part, m->src, m->fd, 0)) < 0)
            return rc;
        if (first->len < threshold)
            return put_whole(m, first, sha);
    }
    *done = 0;
    return 0;
}

/* Reads and launches the parts, nslots at a time, until the source ends. */
static int mp_send(struct multipart *m, struct part *first)
{
    for (unsigned n = 1;; n++) {
        struct part *p = &m->slots[(n - 1) % (unsigned)m->nslots];
        uint64_t want = m->size == UINT64_MAX ? tb_s3_part_size(m->part, n) : m->part;
        int rc;
        if (n > MAX_PARTS)
            return tb_error_set(TB_EIO, "PUT s3://%s/%s: more than %d parts", m->bucket, m->key, MAX_PARTS);
        if ((rc = mp_join(m, p)) < 0 || (rc = tb_error_check_interrupt()) < 0)
            return rc;
        if (n == 1 && first->data) {
            /* The bytes read to decide on multipart are the first part. */
            *p = *first;
            first->data = NULL;
        } else if ((rc = fill(p, (size_t)want, m->src, m->fd, m->off)) < 0) {
            return rc;
        }
        if (p->len == 0 && n > 1)
            return 0; /* the stream ended on a part boundary */
        p->number = n;
        m->off += p->len;
        m->nparts = n;
        if ((rc = mp_launch(m, p)) < 0)
            return rc;
        if (p->len < want || (m->size != UINT64_MAX && m->off >= m->size))
            return 0;
    }
}

/* The upload's error is the message; a failed abort is added to it. */
static int mp_fail(struct multipart *m, int rc)
{
    char *msg = strdup(tb_error_last());
    mp_join_all(m, rc);
    int arc = mp_abort(m);
    if (arc < 0)
        rc = tb_error_set(rc, "%s (and the unfinished upload %s could not be aborted: %s)", msg ? msg : "",
                          m->upload_id, tb_error_last());
    else
        rc = tb_error_set(rc, "%s", msg ? msg : "upload failed");
    free(msg);
    return rc;
}

static int put_any(tb_s3 *s, const char *bucket, const char *key, tb_stream *src, int fd, uint64_t size,
                   const char *sha)
{
    struct multipart m = {
        .s3 = s, .bucket = bucket, .key = key, .src = src, .fd = fd, .size = size, .part = s->c.part_size
    };
    struct part first = { 0 };
    int rc, done;

    report_total(s, size == UINT64_MAX ? 0 : size);
    /* A known size picks a part size that fits 10,000 parts at once. */
    if (size != UINT64_MAX && size / MAX_PARTS + 1 > m.part)
        m.part = (size / MAX_PARTS + 1 + (1 << 20)) & ~(uint64_t)((1 << 20) - 1);
    if ((rc = put_small(&m, &first, sha, &done)) < 0 || done)
        goto cleanup;
    if (!(m.slots = calloc((size_t)s->c.parallel, sizeof *m.slots))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    m.nslots = s->c.parallel;
    if ((rc = mp_start(&m, sha)) == 0) {
        rc = mp_join_all(&m, mp_send(&m, &first));
        if (rc == 0 && size != UINT64_MAX && m.off != size)
            rc = tb_error_set(TB_EIO, "PUT s3://%s/%s: the source changed size while read", bucket, key);
        if (rc == 0)
            rc = mp_complete(&m);
    }
    if (rc < 0)
        rc = mp_fail(&m, rc);
cleanup:
    mp_free(&m);
    free(first.data);
    return rc;
}

int tb_s3_put(tb_s3 *s, const char *bucket, const char *key, tb_stream *src, uint64_t size, const char *sha256_hex)
{
    return put_any(s, bucket, key, src, -1, size, sha256_hex);
}

int tb_s3_put_file(tb_s3 *s, const char *bucket, const char *key, const char *path)
{
    char hex[65];
    uint64_t size;
    int fd, rc;
    if ((rc = tb_stream_file_sha256(path, hex, &size)) < 0)
        return rc;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot open %s", path);
    rc = put_any(s, bucket, key, NULL, fd, size, hex);
    close(fd);
    return rc;
}

/* ---- downloads -------------------------------------------------------------------- */

struct chunk {
    tb_s3 *s3;
    const char *bucket, *key;
    const char *if_match; /* "If-Match: \"etag\"": every range from the version stat saw */
    uint64_t from;
    char *data;
    size_t len;
    int rc, running;
    char msg[1024];
    pthread_t thread;
};

static void *get_chunk(void *arg)
{
    struct chunk *c = arg;
    struct req r;
    const char *extra[2] = { c->if_match, NULL };
    req_init(&r, "GET", c->bucket, c->key);
    r.extra = c->if_match ? extra : NULL;
    r.range_from = c->from;
    r.range_to = c->from + c->len - 1;
    r.dst = c->data;
    r.dst_len = c->len;
    c->rc = perform(c->s3, &r);
    if (c->rc < 0)
        snprintf(c->msg, sizeof c->msg, "%s", tb_error_last());
    req_clear(&r);
    return NULL;
}

static int chunk_join(struct chunk *c)
{
    if (!c->running)
        return 0;
    pthread_join(c->thread, NULL);
    c->running = 0;
    return c->rc < 0 ? tb_error_set(c->rc == TB_ENOENT ? TB_ENOENT : TB_EIO, "%s", c->msg) : 0;
}

static int is_sha256_hex(const char *s)
{
    size_t n = strlen(s);
    return n == 64 && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* The end of a checked download: the bytes received (hashed by the tee) against the
 * object's recorded SHA-256. */
static int check_sha256(tb_stream *hash, const char *want, const char *bucket, const char *key)
{
    char got[65];
    tb_stream_sha256_hex(hash, got);
    if (strcasecmp(got, want) != 0)
        return tb_error_set(TB_EVERIFY,
                            "GET s3://%s/%s: the bytes received do not match the object's SHA-256 "
                            "(x-amz-meta-sha256 %.16s..., received %.16s...)",
                            bucket, key, want, got);
    return 0;
}

/* One download: n chunks of chunk bytes in flight, delivered in order to dst, fd and hash. */
struct download {
    tb_s3 *s3;
    const char *bucket, *key;
    struct chunk *slots;
    int n;
    uint64_t chunk, size, nchunks;
    char if_match[96];
    tb_stream *hash, *dst;
    int fd;
};

static int chunk_launch(struct download *d, uint64_t number)
{
    struct chunk *c = &d->slots[number % (uint64_t)d->n];
    c->s3 = d->s3;
    c->bucket = d->bucket;
    c->key = d->key;
    c->if_match = *d->if_match ? d->if_match : NULL;
    c->from = number * d->chunk;
    c->len = (size_t)(d->size - c->from < d->chunk ? d->size - c->from : d->chunk);
    if (!c->data && !(c->data = malloc(d->chunk)))
        return tb_error_set(TB_EIO, "out of memory");
    if ((errno = pthread_create(&c->thread, NULL, get_chunk, c)) != 0)
        return tb_error_errno(TB_EIO, errno, "cannot start a download thread");
    c->running = 1;
    return 0;
}

static int chunk_pwrite(const struct chunk *c, int fd)
{
    size_t done = 0;
    while (done < c->len) {
        ssize_t w = pwrite(fd, c->data + done, c->len - done, (off_t)(c->from + done));
        if (w < 0)
            return tb_error_errno(TB_EIO, errno, "write");
        done += (size_t)w;
    }
    return 0;
}

/* Waits for chunk number and hands it on. */
static int chunk_deliver(struct download *d, uint64_t number)
{
    struct chunk *c = &d->slots[number % (uint64_t)d->n];
    int rc;
    if ((rc = chunk_join(c)) < 0 || (d->hash && (rc = tb_stream_write(d->hash, c->data, c->len)) < 0) ||
        (d->dst && (rc = tb_stream_write(d->dst, c->data, c->len)) < 0) ||
        (d->fd >= 0 && (rc = chunk_pwrite(c, d->fd)) < 0))
        return rc;
    report_progress(d->s3, c->from + c->len);
    return tb_error_check_interrupt();
}

static int download(struct download *d)
{
    uint64_t next = 0;
    int rc = 0;
    for (uint64_t k = 0; k < d->nchunks && rc == 0; k++) {
        /* Keep n chunks in flight ahead of the one written next. */
        for (; next < d->nchunks && next < k + (uint64_t)d->n && rc == 0; next++)
            rc = chunk_launch(d, next);
        if (rc == 0)
            rc = chunk_deliver(d, k);
    }
    for (int i = 0; i < d->n; i++) {
        chunk_join(&d->slots[i]);
        free(d->slots[i].data);
    }
    return rc;
}

/* Ranged GETs with parallel in flight, handed to sink in order. Every range asks for the
 * ETag stat saw (If-Match), so an object replaced midway fails (412) instead of mixing two
 * versions; an object with x-amz-meta-sha256 (our uploads) is hashed as it is written and a
 * mismatch is TB_EVERIFY. */
static int get_any(tb_s3 *s, const char *bucket, const char *key, tb_stream *dst, int fd)
{
    struct download d = {
        .s3 = s, .bucket = bucket, .key = key, .n = s->c.parallel, .chunk = s->c.part_size, .dst = dst, .fd = fd
    };
    struct tb_s3_object o;
    char want[65] = "";
    tb_stream *null = NULL; /* a SHA-256 tee into nothing, when there is a want */
    int rc;
    if ((rc = tb_s3_stat(s, bucket, key, &o)) < 0)
        return rc;
    d.size = o.size;
    report_total(s, d.size);
    d.nchunks = (d.size + d.chunk - 1) / d.chunk;
    if (*o.etag)
        snprintf(d.if_match, sizeof d.if_match, "If-Match: \"%s\"", o.etag);
    if (is_sha256_hex(o.sha256))
        snprintf(want, sizeof want, "%s", o.sha256);
    tb_s3_object_clear(&o);
    if (*want && ((rc = tb_stream_null_writer(&null)) < 0 || (rc = tb_stream_sha256(&d.hash, null)) < 0)) {
        tb_stream_free(null);
        return rc;
    }
    if (!(d.slots = calloc((size_t)d.n, sizeof *d.slots))) {
        tb_stream_free(d.hash);
        return tb_error_set(TB_EIO, "out of memory");
    }
    rc = download(&d);
    free(d.slots);
    if (rc == 0 && d.hash)
        rc = check_sha256(d.hash, want, bucket, key);
    tb_stream_free(d.hash);
    return rc;
}

int tb_s3_get(tb_s3 *s, const char *bucket, const char *key, tb_stream *dst)
{
    return get_any(s, bucket, key, dst, -1);
}

int tb_s3_get_file(tb_s3 *s, const char *bucket, const char *key, const char *path)
{
    char *tmp = NULL;
    int fd, rc;
    if ((rc = tb_fs_temp_sibling(path, &tmp)) < 0)
        return rc;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot create %s", tmp);
        free(tmp);
        return rc;
    }
    rc = get_any(s, bucket, key, NULL, fd);
    if (rc == 0 && fsync(fd) < 0)
        rc = tb_error_errno(TB_EIO, errno, "fsync %s", tmp);
    if (close(fd) < 0 && rc == 0)
        rc = tb_error_errno(TB_EIO, errno, "close %s", tmp);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = tb_error_errno(TB_EIO, errno, "cannot rename %s to %s", tmp, path);
    if (rc == 0)
        rc = tb_fs_fsync_parent(path);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- sync ------------------------------------------------------------------------- */

char *tb_s3_dir_prefix(const char *prefix)
{
    size_t n = strlen(prefix);
    char *p = malloc(n + 2);
    if (p) {
        memcpy(p, prefix, n + 1);
        if (n && prefix[n - 1] != '/')
            strcpy(p + n, "/");
    }
    return p;
}

int tb_s3_url_parse_dir(const char *url, char **bucket, char **prefix)
{
    char *key = NULL;
    int rc = tb_s3_url_parse(url, bucket, &key);
    if (rc < 0)
        return rc;
    *prefix = tb_s3_dir_prefix(key);
    free(key);
    if (!*prefix) {
        free(*bucket);
        *bucket = NULL;
        return tb_error_set(TB_EIO, "out of memory");
    }
    return 0;
}

/* Whether the object o matches the local file path (size, then SHA-256 when recorded). */
static int same(const struct tb_s3_object *o, const char *path)
{
    struct stat st;
    char hex[65];
    uint64_t size;
    if (stat(path, &st) < 0 || (uint64_t)st.st_size != o->size)
        return 0;
    if (!*o->sha256)
        return 0; /* without our checksum, copy again rather than trust a size */
    return tb_stream_file_sha256(path, hex, &size) == 0 && strcmp(hex, o->sha256) == 0;
}

struct sync_up {
    tb_s3 *s3;
    const char *bucket, *prefix;
    unsigned copied;
};

static int up_tree(struct sync_up *u, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot read %s", dir);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        char *path, *key = NULL;
        /* Hidden entries are ours and local: lock files, scratch, staging (.NAME.tmp-PID). */
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp-"))
            continue;
        if (!(path = tb_fs_join(dir, e->d_name)) || asprintf(&key, "%s%s%s", u->prefix, rel, e->d_name) < 0) {
            free(path);
            closedir(d);
            return tb_error_set(TB_EIO, "out of memory");
        }
        if (lstat(path, &st) < 0) {
            /* Gone since the listing (a WAL archive rotating): nothing to upload. */
            free(path);
            free(key);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            char *sub = NULL;
            if (asprintf(&sub, "%s%s/", rel, e->d_name) < 0)
                rc = tb_error_set(TB_EIO, "out of memory");
            else
                rc = up_tree(u, path, sub);
            free(sub);
        } else if (S_ISREG(st.st_mode)) {
            struct tb_s3_object o;
            int st_rc = tb_s3_stat(u->s3, u->bucket, key, &o);
            if (st_rc < 0 && st_rc != TB_ENOENT)
                rc = st_rc;
            else if (st_rc == TB_ENOENT || !same(&o, path)) {
                if ((rc = tb_s3_put_file(u->s3, u->bucket, key, path)) == 0) {
                    u->copied++;
                    synced_file(u->s3, path);
                }
            }
            if (st_rc == 0)
                tb_s3_object_clear(&o);
        }
        free(path);
        free(key);
    }
    closedir(d);
    return rc;
}

int tb_s3_sync_up(tb_s3 *s, const char *dir, const char *bucket, const char *prefix, unsigned *copied)
{
    struct sync_up u = { s, bucket, NULL, 0 };
    char *p = tb_s3_dir_prefix(prefix ? prefix : "");
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    u.prefix = p;
    s->syncing = 1;
    int rc = up_tree(&u, dir, "");
    s->syncing = 0;
    free(p);
    if (copied)
        *copied = u.copied;
    return rc;
}

struct sync_down {
    tb_s3 *s3;
    const char *bucket, *dir;
    size_t skip;
    unsigned copied;
};

static int down_one(void *arg, const struct tb_s3_object *o)
{
    struct sync_down *d = arg;
    const char *rel = o->key + d->skip;
    char *path, *parent;
    int rc;
    if (!*rel || rel[strlen(rel) - 1] == '/')
        return 0; /* "directory" placeholder objects */
    if (strstr(rel, "../") || rel[0] == '/' || !strcmp(rel, ".."))
        return tb_error_set(TB_EIO, "refusing the object name %s (it leaves the directory)", o->key);
    if (!(path = tb_fs_join(d->dir, rel)) || !(parent = tb_fs_dirname(path))) {
        free(path);
        return tb_error_set(TB_EIO, "out of memory");
    }
    rc = tb_fs_mkdir_p(parent, 0755);
    struct stat st;
    int want = 1;
    if (rc == 0 && stat(path, &st) == 0 && (uint64_t)st.st_size == o->size) {
        /* A listing does not carry our checksum: ask for it before trusting a match. */
        struct tb_s3_object full;
        if ((rc = tb_s3_stat(d->s3, d->bucket, o->key, &full)) == 0) {
            want = !same(&full, path);
            tb_s3_object_clear(&full);
        }
    }
    if (rc == 0 && want && (rc = tb_s3_get_file(d->s3, d->bucket, o->key, path)) == 0) {
        d->copied++;
        synced_file(d->s3, path);
    }
    free(parent);
    free(path);
    return rc;
}

int tb_s3_sync_down(tb_s3 *s, const char *bucket, const char *prefix, const char *dir, unsigned *copied)
{
    struct sync_down d = { s, bucket, dir, 0, 0 };
    char *p = tb_s3_dir_prefix(prefix ? prefix : "");
    int rc;
    if (!p)
        return tb_error_set(TB_EIO, "out of memory");
    d.skip = strlen(p);
    rc = tb_fs_mkdir_p(dir, 0755);
    s->syncing = 1;
    if (rc == 0)
        rc = tb_s3_list(s, bucket, p, down_one, &d);
    s->syncing = 0;
    free(p);
    if (copied)
        *copied = d.copied;
    return rc;
}
