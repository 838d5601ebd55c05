/* sigv4: AWS Signature Version 4 (canonical request, string to sign, signing key, Authorization). */
#include "sigv4.h"
#include "error.h"
#include "mem.h"
#include "stream.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing string; oom sticks so callers check once at the end. */
struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}
static void sb_addc(struct sbuf *b, char c)
{
    sb_addn(b, &c, 1);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~';
}

static void sb_encode(struct sbuf *b, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            sb_addc(b, (char)c);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            sb_addn(b, e, 3);
        }
    }
}

char *tb_sigv4_uri_encode(const char *s, int keep_slash)
{
    struct sbuf b = { 0 };
    if (!s) {
        tb_error_set(TB_EUSAGE, "sigv4: nothing to encode");
        return NULL;
    }
    sb_addn(&b, "", 0);
    sb_encode(&b, s, strlen(s), keep_slash);
    if (b.oom) {
        free(b.p);
        tb_error_set(TB_EIO, "sigv4: out of memory");
        return NULL;
    }
    return b.p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in s[0..len) and encodes the result again the SigV4 way, so "%7e", "~" and
 * "%7E" all sign as "~" and a stray '%' as "%25". '+' is a literal plus (RFC 3986, not
 * form encoding) and signs as "%2B", so callers must send spaces as "%20". */
static void sb_reencode(struct sbuf *b, const char *s, size_t len)
{
    struct sbuf raw = { 0 };
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            sb_addc(&raw, (char)(hi << 4 | lo));
            i += 2;
        } else {
            sb_addc(&raw, s[i]);
        }
    }
    if (raw.oom)
        b->oom = 1;
    else if (raw.n)
        sb_encode(b, raw.p, raw.n, 0);
    free(raw.p);
}

/* RFC 3986 dot-segment removal, with empty segments dropped as the AWS suite wants
 * ("//example//" is "/example/"), then each segment encoded (again, if it already was). */
static void canonical_path_normalized(struct sbuf *b, const char *path)
{
    size_t len = strlen(path), nseg = 0;
    const char **seg = calloc(len / 2 + 2, sizeof *seg);
    size_t *seglen = calloc(len / 2 + 2, sizeof *seglen);
    int trailing = 0;
    if (!seg || !seglen) {
        b->oom = 1;
        goto cleanup;
    }
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        trailing = (e != NULL);
        if (n == 1 && p[0] == '.') {
            trailing = 1;
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg)
                nseg--;
            trailing = 1;
        } else if (n > 0) {
            seg[nseg] = p;
            seglen[nseg++] = n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (nseg == 0) {
        sb_addc(b, '/');
        goto cleanup;
    }
    for (size_t i = 0; i < nseg; i++) {
        sb_addc(b, '/');
        sb_encode(b, seg[i], seglen[i], 0);
    }
    if (trailing)
        sb_addc(b, '/');
cleanup:
    free(seglen);
    free(seg);
}

struct qparam {
    char *name, *value; /* encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Parameters split on '&', a name without '=' gets an empty value, sorted by encoded
 * name then value. */
static void canonical_query(struct sbuf *b, const char *query)
{
    size_t cap = 1, n = 0;
    struct qparam *q = NULL;
    if (!query || !*query)
        return;
    for (const char *p = query; *p; p++)
        cap += (*p == '&');
    q = calloc(cap, sizeof *q);
    if (!q) {
        b->oom = 1;
        return;
    }
    for (const char *p = query; *p;) {
        const char *e = strchr(p, '&');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            struct sbuf nb = { 0 }, vb = { 0 };
            sb_addn(&nb, "", 0);
            sb_addn(&vb, "", 0);
            sb_reencode(&nb, p, nlen);
            if (eq)
                sb_reencode(&vb, eq + 1, len - nlen - 1);
            q[n].name = nb.p;
            q[n++].value = vb.p;
            if (nb.oom || vb.oom)
                b->oom = 1;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (!b->oom) {
        qsort(q, n, sizeof *q, qparam_cmp);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_addc(b, '&');
            sb_add(b, q[i].name);
            sb_addc(b, '=');
            sb_add(b, q[i].value);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
}

struct hdr {
    char *name; /* lower-case */
    char *value; /* trimmed, runs of blanks folded */
    size_t order; /* input position: duplicate names keep their order */
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

static char *trimall_dup(const char *s)
{
    char *d = malloc(strlen(s) + 1), *o = d;
    if (!d)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    while (*s) {
        if (*s == ' ' || *s == '\t') {
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s)
                *o++ = ' ';
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return d;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    tb_hex(md, sizeof md, out);
}

/* out may be the key: the result goes through a temporary. */
static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), md, &n) || n != 32)
        return tb_error_set(TB_EIO, "sigv4: HMAC-SHA256 failed");
    memcpy(out, md, 32);
    OPENSSL_cleanse(md, sizeof md);
    return 0;
}

static int oom(void)
{
    return tb_error_set(TB_EIO, "sigv4: out of memory");
}

static int valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

/* What one signature is built from; freed by signing_free. */
struct signing {
    struct hdr *h; /* the headers, lower-cased, trimmed and sorted */
    size_t nh;
    char date[9]; /* YYYYMMDD of the request's x-amz-date */
    struct sbuf creq, sts, signed_hdrs;
};

/* In the reverse order of the steps that fill it. */
static void signing_free(struct signing *s)
{
    TB_FREE_ALL(s->sts.p, s->signed_hdrs.p, s->creq.p);
    for (size_t i = 0; i < s->nh; i++)
        TB_FREE_ALL(s->h[i].name, s->h[i].value);
    free(s->h);
}

static int check_request(const struct tb_sigv4_request *r, const char *auth)
{
    if (!r || !r->method || !r->path || !r->payload_hash || !r->region || !r->service || !r->access_key ||
        !r->secret_key || (r->nheaders && !r->headers) || !auth)
        return tb_error_set(TB_EUSAGE, "sigv4: incomplete request description");
    if (!valid_amz_date(r->amz_date))
        return tb_error_set(TB_EUSAGE, "sigv4: bad date '%s' (want YYYYMMDDTHHMMSSZ)", r->amz_date ? r->amz_date : "");
    return 0;
}

/* The headers as signed: names lower-cased, values trimmed, sorted by name (duplicates in
 * their order); one must be host. */
static int signed_headers(struct signing *s, const struct tb_sigv4_request *r)
{
    int have_host = 0;
    if (!(s->h = calloc(r->nheaders ? r->nheaders : 1, sizeof *s->h)))
        return oom();
    for (s->nh = 0; s->nh < r->nheaders; s->nh++) {
        const struct tb_sigv4_header *in = &r->headers[s->nh];
        struct hdr *h = &s->h[s->nh];
        if (!in->name || !*in->name || !in->value)
            return tb_error_set(TB_EUSAGE, "sigv4: header %zu has no name or value", s->nh);
        h->name = lower_dup(in->name);
        h->value = trimall_dup(in->value);
        h->order = s->nh;
        if (!h->name || !h->value) {
            s->nh++;
            return oom();
        }
        if (strcmp(h->name, "host") == 0)
            have_host = 1;
    }
    if (!have_host)
        return tb_error_set(TB_EUSAGE, "sigv4: the request has no host header");
    qsort(s->h, s->nh, sizeof *s->h, hdr_cmp);
    return 0;
}

/* Canonical request: method, URI, query, headers (duplicates joined with ','), a blank
 * line, signed header names, payload hash. */
static int build_canonical_request(struct signing *s, const struct tb_sigv4_request *r)
{
    struct sbuf *creq = &s->creq;
    sb_add(creq, r->method);
    sb_addc(creq, '\n');
    if (r->normalize_path)
        canonical_path_normalized(creq, r->path);
    else
        sb_add(creq, *r->path ? r->path : "/");
    sb_addc(creq, '\n');
    canonical_query(creq, r->query);
    sb_addc(creq, '\n');
    for (size_t i = 0; i < s->nh; i++) {
        if (i > 0 && strcmp(s->h[i].name, s->h[i - 1].name) == 0) {
            sb_addc(creq, ',');
        } else {
            if (i > 0) {
                sb_addc(creq, '\n');
                sb_addc(&s->signed_hdrs, ';');
            }
            sb_add(creq, s->h[i].name);
            sb_addc(creq, ':');
            sb_add(&s->signed_hdrs, s->h[i].name);
        }
        sb_add(creq, s->h[i].value);
    }
    sb_add(creq, "\n\n");
    sb_add(creq, s->signed_hdrs.p);
    sb_addc(creq, '\n');
    sb_add(creq, r->payload_hash);
    return creq->oom || s->signed_hdrs.oom ? oom() : 0;
}

static int build_string_to_sign(struct signing *s, const struct tb_sigv4_request *r)
{
    char hash[65];
    sha256_hex(s->creq.p, s->creq.n, hash);
    sb_add(&s->sts, "AWS4-HMAC-SHA256\n");
    sb_add(&s->sts, r->amz_date);
    sb_addc(&s->sts, '\n');
    sb_add(&s->sts, s->date);
    sb_addc(&s->sts, '/');
    sb_add(&s->sts, r->region);
    sb_addc(&s->sts, '/');
    sb_add(&s->sts, r->service);
    sb_add(&s->sts, "/aws4_request\n");
    sb_add(&s->sts, hash);
    return s->sts.oom ? oom() : 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request"),
 * the signature its HMAC of the string to sign, in hex. */
static int signature(const struct signing *s, const struct tb_sigv4_request *r, char sig[65])
{
    struct sbuf key = { 0 };
    unsigned char k[32] = { 0 };
    int rc = 0;
    sb_add(&key, "AWS4");
    sb_add(&key, r->secret_key);
    if (key.oom) {
        rc = oom();
        goto cleanup;
    }
    if ((rc = hmac(key.p, key.n, s->date, k)) < 0 || (rc = hmac(k, sizeof k, r->region, k)) < 0 ||
        (rc = hmac(k, sizeof k, r->service, k)) < 0 || (rc = hmac(k, sizeof k, "aws4_request", k)) < 0 ||
        (rc = hmac(k, sizeof k, s->sts.p, k)) < 0)
        goto cleanup;
    tb_hex(k, sizeof k, sig);
cleanup:
    OPENSSL_cleanse(k, sizeof k);
    if (key.p)
        OPENSSL_cleanse(key.p, key.n);
    free(key.p);
    return rc;
}

int tb_sigv4_sign(const struct tb_sigv4_request *r, char *auth, size_t len, char **canonical, char **string_to_sign)
{
    struct signing s = { 0 };
    char sig[65];
    int rc, n;

    if (canonical)
        *canonical = NULL;
    if (string_to_sign)
        *string_to_sign = NULL;
    if ((rc = check_request(r, auth)) < 0)
        goto cleanup;
    memcpy(s.date, r->amz_date, 8);
    s.date[8] = '\0';
    if ((rc = signed_headers(&s, r)) < 0 || (rc = build_canonical_request(&s, r)) < 0 ||
        (rc = build_string_to_sign(&s, r)) < 0 || (rc = signature(&s, r, sig)) < 0)
        goto cleanup;
    n = snprintf(auth, len, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                 r->access_key, s.date, r->region, r->service, s.signed_hdrs.p, sig);
    if (n < 0 || (size_t)n >= len) {
        rc = tb_error_set(TB_EUSAGE, "sigv4: Authorization value needs %d bytes, buffer has %zu", n + 1, len);
        goto cleanup;
    }
    if (canonical) {
        *canonical = s.creq.p;
        s.creq.p = NULL;
    }
    if (string_to_sign) {
        *string_to_sign = s.sts.p;
        s.sts.p = NULL;
    }
cleanup:
    signing_free(&s);
    return rc;
}

void tb_sigv4_amz_date(long long unix_seconds, char out[17])
{
    struct tm tm;
    time_t t = (time_t)unix_seconds;
    out[0] = '\0';
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return;
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
