/* tsv: strict reading of the WAL archive's tab-separated tables. */
#include "tsv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

void tb_tsv_init(struct tb_tsv *t, char *text, size_t len, const char *path)
{
    t->p = text;
    t->end = text ? text + len : text;
    t->path = path;
    t->lineno = 0;
}

int tb_tsv_next(struct tb_tsv *t, char **line)
{
    char *nl;
    if (!t->p || t->p >= t->end)
        return 0;
    t->lineno++;
    nl = memchr(t->p, '\n', (size_t)(t->end - t->p));
    if (!nl)
        return tb_tsv_error(t, "cut short (no newline at its end)");
    if (memchr(t->p, '\0', (size_t)(nl - t->p)))
        return tb_tsv_error(t, "holds a NUL byte");
    if (nl == t->p)
        return tb_tsv_error(t, "empty");
    *nl = '\0';
    *line = t->p;
    t->p = nl + 1;
    return 1;
}

int tb_tsv_split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line;; p++) {
        char *tab = strchr(p, '\t');
        if (n == max)
            return max + 1;
        f[n++] = p;
        if (!tab)
            return n;
        *tab = '\0';
        p = tab;
    }
}

int tb_tsv_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

int tb_tsv_i64(const char *s, int64_t *v)
{
    uint64_t x;
    int neg = *s == '-';
    if (!tb_tsv_u64(s + neg, &x) || x > (uint64_t)INT64_MAX + neg)
        return 0;
    *v = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
    return 1;
}

int tb_tsv_error(const struct tb_tsv *t, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tb_error_set(TB_EVERIFY, "%s line %d: %s", t->path, t->lineno, msg);
}
