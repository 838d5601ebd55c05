/* rocksopts: a reader for RocksDB's OPTIONS files, following options/options_parser.cc. */
#include "rocksopts.h"
#include "error.h"
#include "mem.h"
#include "fs.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tb_rocksopts_newest(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned long best = 0;
    char *name = NULL;
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        unsigned long n;
        char *end;
        /* "OPTIONS-NNNNNN.dbtmp" is RocksDB's half-written temporary: never read it */
        if (strncmp(e->d_name, "OPTIONS-", 8) != 0 || !isdigit((unsigned char)e->d_name[8]))
            continue;
        n = strtoul(e->d_name + 8, &end, 10);
        if (*end || (name && n < best))
            continue;
        best = n;
        free(name);
        name = strdup(e->d_name);
    }
    closedir(d);
    return name;
}

/* [s, *end) without white space at either end. */
static const char *trim(const char *s, const char **end)
{
    while (s < *end && isspace((unsigned char)*s))
        s++;
    while (*end > s && isspace((unsigned char)(*end)[-1]))
        (*end)--;
    return s;
}

static char *dup_range(const char *s, const char *e)
{
    return strndup(s, (size_t)(e - s));
}

/* UnescapeOptionString: '\' takes the next character literally, "\n" and "\r" excepted. */
static char *unescape(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) + 1), *o = out;
    int esc = 0;
    if (!out)
        return NULL;
    for (; s < e; s++) {
        if (esc) {
            *o++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s;
            esc = 0;
        } else if (*s == '\\') {
            esc = 1;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

enum section { SEC_OTHER, SEC_VERSION, SEC_DB, SEC_CF };

/* Keeps value in *slot unless an earlier line already set it (RocksDB inserts into a map). */
static int keep(char **slot, char *value)
{
    if (!value)
        return tb_error_set(TB_EIO, "out of memory");
    if (*slot)
        free(value);
    else
        *slot = value;
    return 0;
}

static int statement(struct tb_rocksopts *o, enum section sec, const char *s, const char *e, int line)
{
    const char *eq = memchr(s, '=', (size_t)(e - s)), *ne, *ve = e, *v;
    if (!eq)
        return tb_error_set(TB_EIO, "OPTIONS line %d: a statement must have a '='", line);
    ne = eq;
    s = trim(s, &ne);
    v = trim(eq + 1, &ve);
    if (s == ne)
        return tb_error_set(TB_EIO, "OPTIONS line %d: a statement must have a name", line);
#define IS(k) ((size_t)(ne - s) == sizeof(k) - 1 && memcmp(s, k, sizeof(k) - 1) == 0)
    if (sec == SEC_VERSION && IS("rocksdb_version"))
        return keep(&o->rocksdb_version, dup_range(v, ve));
    if (sec == SEC_DB && IS("recycle_log_file_num"))
        return keep(&o->recycle_log_file_num, dup_range(v, ve));
    if (sec == SEC_DB && IS("two_write_queues"))
        return keep(&o->two_write_queues, dup_range(v, ve));
    if (sec == SEC_DB && IS("allow_2pc"))
        return keep(&o->allow_2pc, dup_range(v, ve));
    if (sec == SEC_DB && IS("wal_dir")) /* a string option: RocksDB unescapes it */
        return keep(&o->wal_dir, unescape(v, ve));
    if (sec == SEC_DB && IS("db_paths"))
        return keep(&o->db_paths, dup_range(v, ve));
    if (sec == SEC_CF && IS("merge_operator"))
        return keep(&o->cf[o->ncf - 1].merge_operator, dup_range(v, ve));
#undef IS
    return 0;
}

static int section(struct tb_rocksopts *o, enum section *sec, const char *s, const char *e, int line)
{
    const char *q1 = memchr(s, '"', (size_t)(e - s)), *q2 = NULL, *ts = s + 1, *te;
    char *arg = NULL;
    for (const char *p = e; p > s; p--)
        if (p[-1] == '"') {
            q2 = p - 1;
            break;
        }
    te = q1 && q1 != q2 ? q1 : e - 1;
    ts = trim(ts, &te);
#define TITLE(t) ((size_t)(te - ts) == sizeof(t) - 1 && memcmp(ts, t, sizeof(t) - 1) == 0)
    *sec = TITLE("Version") ? SEC_VERSION : TITLE("DBOptions") ? SEC_DB : TITLE("CFOptions") ? SEC_CF : SEC_OTHER;
#undef TITLE
    if (*sec != SEC_CF)
        return 0;
    if (!q1 || q1 == q2)
        return tb_error_set(TB_EIO, "OPTIONS line %d: a CFOptions section without a column family name", line);
    if (!(arg = unescape(q1 + 1, q2)))
        return tb_error_set(TB_EIO, "out of memory");
    {
        struct tb_rocksopts_cf *cf = realloc(o->cf, (o->ncf + 1) * sizeof *cf);
        if (!cf) {
            free(arg);
            return tb_error_set(TB_EIO, "out of memory");
        }
        o->cf = cf;
        o->cf[o->ncf++] = (struct tb_rocksopts_cf){ arg, NULL };
    }
    return 0;
}

int tb_rocksopts_parse(const char *text, size_t len, struct tb_rocksopts *out)
{
    struct tb_rocksopts o = { 0 };
    enum section sec = SEC_OTHER;
    const char *p = text, *end = text + len;
    int rc = 0, line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *s = p;
        line++;
        p = nl ? nl + 1 : end;
        /* the line ends at the first '#' that no '\' escapes */
        for (const char *c = s; c < le; c++)
            if (*c == '#' && (c == s || c[-1] != '\\')) {
                le = c;
                break;
            }
        s = trim(s, &le);
        if (s == le)
            continue;
        if (*s == '[' && le[-1] == ']')
            rc = section(&o, &sec, s, le, line);
        else
            rc = statement(&o, sec, s, le, line);
        if (rc < 0)
            goto cleanup;
    }
    *out = o;
    memset(&o, 0, sizeof o);
cleanup:
    tb_rocksopts_clear(&o);
    return rc;
}

int tb_rocksopts_read(const char *dir, struct tb_rocksopts *out)
{
    char *name = NULL, *path = NULL, *text = NULL;
    size_t len = 0;
    int rc;
    /* A live server replaces its OPTIONS file (new one renamed in, old one deleted): when
     * the newest vanishes before we read it, look again. */
    for (int attempt = 1;; attempt++) {
        if (!(name = tb_rocksopts_newest(dir)))
            return tb_error_set(TB_ENOENT, "no OPTIONS file in %s", dir);
        if (!(path = tb_fs_join(dir, name))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if ((rc = tb_fs_read_file(path, &text, &len)) == 0)
            break;
        if (rc != TB_ENOENT || attempt == 5)
            goto cleanup;
        free(name);
        free(path);
        name = path = NULL;
    }
    if ((rc = tb_rocksopts_parse(text, len, out)) < 0) {
        rc = tb_error_wrap(rc, "%s", path);
        goto cleanup;
    }
    out->file = name;
    name = NULL;
cleanup:
    free(text);
    free(path);
    free(name);
    return rc;
}

int tb_rocksopts_two_write_queues(const struct tb_rocksopts *o)
{
    return o->two_write_queues && strcmp(o->two_write_queues, "true") == 0;
}

const char *tb_rocksopts_merge_operator(const struct tb_rocksopts *o, const char *cf)
{
    for (size_t i = 0; i < o->ncf; i++)
        if (strcmp(o->cf[i].name, cf) == 0)
            return o->cf[i].merge_operator;
    return NULL;
}

void tb_rocksopts_clear(struct tb_rocksopts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->ncf; i++)
        TB_FREE_ALL(o->cf[i].name, o->cf[i].merge_operator);
    TB_FREE_ALL(o->cf, o->file, o->rocksdb_version, o->two_write_queues, o->recycle_log_file_num, o->allow_2pc,
                o->wal_dir, o->db_paths);
    memset(o, 0, sizeof *o);
}

int tb_rocksopts_add_cfs(const char *dir, unsigned long long number, const char *const *names, size_t n)
{
    char *newest = tb_rocksopts_newest(dir), *path = NULL, *text = NULL, *out = NULL, *to = NULL;
    const char *from, *end;
    size_t len = 0, used, cap;
    char name[64];
    int rc;
    if (!newest)
        return tb_error_set(TB_ENOENT, "no OPTIONS file in %s", dir);
    if (!(path = tb_fs_join(dir, newest))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = tb_fs_read_file(path, &text, &len)) < 0)
        goto cleanup;
    /* The default CF's sections: from its [CFOptions] header to the next CF's, or the end. */
    from = strstr(text, "\n[CFOptions \"default\"]");
    if (!from) {
        rc = tb_error_set(TB_EVERIFY, "%s has no section for the default column family", path);
        goto cleanup;
    }
    from++;
    end = strstr(from + 1, "\n[CFOptions ");
    end = end ? end + 1 : text + len;
    cap = len + 2 + n * ((size_t)(end - from) + 512);
    if (!(out = malloc(cap))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    memcpy(out, text, len);
    used = len;
    if (used && out[used - 1] != '\n')
        out[used++] = '\n';
    for (size_t i = 0; i < n; i++) {
        const char *p = from;
        if (strpbrk(names[i], "\"\\\n") || strlen(names[i]) > 200) {
            rc = tb_error_set(TB_EVERIFY, "column family name needs escaping in an OPTIONS file: %s", names[i]);
            goto cleanup;
        }
        /* Line by line, the section headers' "default" renamed. */
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            const char *q = p[0] == '[' ? strstr(p, " \"default\"]") : NULL;
            if (q && q < p + l) {
                used += (size_t)snprintf(out + used, cap - used, "%.*s \"%s\"]\n", (int)(q - p), p, names[i]);
            } else {
                memcpy(out + used, p, l);
                used += l;
            }
            p += l;
        }
    }
    snprintf(name, sizeof name, "OPTIONS-%06llu", number);
    if (!(to = tb_fs_join(dir, name))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    rc = tb_fs_write_atomic(to, out, used, 0644);
cleanup:
    free(to);
    free(out);
    free(text);
    free(path);
    free(newest);
    return rc;
}

/* Whether the section a "[...]" line opens names (in quotes) a column family not in cfs. */
static int unknown_cf_section(const char *line, const char *next, const char *const *cfs, size_t n)
{
    const char *q = strchr(line, '"'), *q2;
    int known = 0;
    if (!q || q >= next)
        return 0;
    q2 = strchr(q + 1, '"');
    for (size_t i = 0; q2 && i < n; i++)
        known |= strlen(cfs[i]) == (size_t)(q2 - q - 1) && strncmp(q + 1, cfs[i], (size_t)(q2 - q - 1)) == 0;
    return !known;
}

/* text without the unknown column families' sections, wal_dir emptied when asked; out has
 * room for the whole text. Returns the length written. */
static size_t filter_options(const char *text, const char *const *cfs, size_t n, int clear_wal_dir, char *out,
                             int *cleared)
{
    size_t o = 0;
    int skip = 0, in_db = 0;
    for (const char *line = text, *next; line && *line; line = next) {
        const char *p = line;
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        if (line[0] == '[') {
            in_db = strncmp(line, "[DBOptions]", 11) == 0;
            skip = unknown_cf_section(line, next, cfs, n);
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (clear_wal_dir && in_db && strncmp(p, "wal_dir=", 8) == 0 && p[8] != '\n' && p[8] != '\r' && p[8] != '\0') {
            memcpy(out + o, line, (size_t)(p - line));
            o += (size_t)(p - line);
            memcpy(out + o, "wal_dir=\n", 9);
            o += 9;
            *cleared = 1;
            continue;
        }
        if (!skip) {
            memcpy(out + o, line, (size_t)(next - line));
            o += (size_t)(next - line);
        }
    }
    return o;
}

int tb_rocksopts_copy(const char *from_dir, const char *to_dir, const char *name, const char *const *cfs, size_t n,
                      int clear_wal_dir, int *cleared)
{
    char *from = tb_fs_join(from_dir, name), *to = tb_fs_join(to_dir, name), *text = NULL, *out = NULL;
    size_t len = 0;
    int rc = 0;
    if (!from || !to || (rc = tb_fs_read_file(from, &text, &len)) < 0 || !(out = malloc(len + 1))) {
        rc = rc < 0 ? rc : tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    rc = tb_fs_write_atomic(to, out, filter_options(text, cfs, n, clear_wal_dir, out, cleared), 0644);
cleanup:
    free(from);
    free(to);
    free(text);
    free(out);
    return rc;
}
