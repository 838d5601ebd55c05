/* config: ThemisDB's config (YAML, or the older INI-style themisdb.conf) read into dotted
 * key paths, where it lives, and where it puts the RocksDB of a data directory. */
#include "config.h"
#include "error.h"
#include "fs.h"
#include "mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

void tb_config_free(struct tb_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->entries[i].key); /* and the value after it */
    TB_FREE_ALL(c->entries, c->path, c);
}

static int add_entry(struct tb_config *c, const char *key, const char *value)
{
    size_t kl = strlen(key) + 1, vl = strlen(value) + 1;
    char *p;
    int rc = tb_grow(&c->entries, &c->cap, c->n, sizeof *c->entries, 32);
    if (rc < 0)
        return rc;
    if (!(p = malloc(kl + vl)))
        return tb_error_set(TB_EIO, "out of memory");
    c->entries[c->n].key = memcpy(p, key, kl);
    c->entries[c->n].value = memcpy(p + kl, value, vl);
    c->n++;
    return 0;
}

/* Walks the document; prefix is the dotted path so far. Sequences contribute their
 * scalars under the sequence's own key. */
static int walk(struct tb_config *c, yaml_document_t *doc, yaml_node_t *node, const char *prefix)
{
    int rc = 0;
    if (!node)
        return 0;
    switch (node->type) {
    case YAML_SCALAR_NODE: return add_entry(c, prefix, (const char *)node->data.scalar.value);
    case YAML_SEQUENCE_NODE:
        for (yaml_node_item_t *it = node->data.sequence.items.start; rc == 0 && it < node->data.sequence.items.top;
             it++)
            rc = walk(c, doc, yaml_document_get_node(doc, *it), prefix);
        return rc;
    case YAML_MAPPING_NODE:
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; rc == 0 && p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            char key[1024];
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", (char *)k->data.scalar.value);
            rc = walk(c, doc, yaml_document_get_node(doc, p->value), key);
        }
        return rc;
    default: return 0;
    }
}

char *tb_config_trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* The older themisdb.conf of some guides is INI-style: "[section]" lines and "key = value"
 * (or "key: value") lines, '#' and ';' comments; keys become "section.key". */
static int load_ini(struct tb_config *c, FILE *f)
{
    char line[4096], section[1024] = "";
    int rc = 0, lineno = 0;
    rewind(f);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *s = tb_config_trim(line), *eq, *key, *value, full[2048];
        size_t vl;
        lineno++;
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end)
                return tb_error_set(TB_EIO, "config file line %d: unclosed section (%s)", lineno, c->path);
            *end = '\0';
            snprintf(section, sizeof section, "%s", tb_config_trim(s + 1));
            continue;
        }
        eq = strpbrk(s, "=:");
        if (!eq)
            return tb_error_set(TB_EIO, "config file is neither YAML nor key = value lines: line %d (%s)", lineno,
                                c->path);
        *eq = '\0';
        key = tb_config_trim(s);
        value = tb_config_trim(eq + 1);
        /* A comment after the value ("8GB  # reduced"), and quotes around it. */
        for (char *h = value; (h = strchr(h, '#')) != NULL; h++)
            if (h > value && isspace((unsigned char)h[-1])) {
                *h = '\0';
                value = tb_config_trim(value);
                break;
            }
        vl = strlen(value);
        if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
            value[vl - 1] = '\0';
            value++;
        }
        snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", key);
        rc = add_entry(c, full, value);
    }
    return rc;
}

static int is_yaml_name(const char *path)
{
    size_t n = strlen(path);
    return (n >= 5 && strcmp(path + n - 5, ".yaml") == 0) || (n >= 4 && strcmp(path + n - 4, ".yml") == 0);
}

int tb_config_load(struct tb_config **out, const char *path)
{
    struct tb_config *c = calloc(1, sizeof *c);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root = NULL;
    FILE *f = NULL;
    int rc = 0, have_parser = 0, have_doc = 0, parsed;

    if (!c || !(c->path = strdup(path))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if (!(f = fopen(path, "rb"))) {
        rc = tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot read config file %s", path);
        goto cleanup;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    have_parser = 1;
    yaml_parser_set_input_file(&parser, f);
    parsed = yaml_parser_load(&parser, &doc);
    have_doc = parsed;
    if (parsed)
        root = yaml_document_get_root_node(&doc);
    /* A .yaml file must be YAML; any other name (themisdb.conf) that is not a YAML mapping
     * is read as INI-style lines, the format some of ThemisDB's guides show for it. */
    if (!is_yaml_name(path) && (!root || root->type != YAML_MAPPING_NODE)) {
        rc = load_ini(c, f);
    } else if (!parsed) {
        rc = tb_error_set(TB_EIO, "config file is not valid YAML: %s at line %zu (%s)",
                          parser.problem ? parser.problem : "syntax error", parser.problem_mark.line + 1, path);
    } else {
        rc = walk(c, &doc, root, "");
    }
    if (rc == 0) {
        *out = c;
        c = NULL;
    }
cleanup:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    if (f)
        fclose(f);
    tb_config_free(c);
    return rc;
}

int tb_config_locate(const char *path, char **out)
{
    const char *base;
    char *dir = NULL, *old = NULL;
    int rc = 0;
    if (!path)
        path = TB_THEMIS_CONFIG;
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (tb_fs_exists(path) || strcmp(base, "config.yaml") != 0)
        return (*out = strdup(path)) ? 0 : tb_error_set(TB_EIO, "out of memory");
    /* Older upgrade guides keep (and copy) themisdb.conf where config.yaml would be. */
    if (!(dir = tb_fs_dirname(path)) || !(old = tb_fs_join(dir, TB_THEMIS_CONFIG_OLD))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if (!tb_fs_exists(old)) {
        rc = tb_error_set(TB_ENOENT, "cannot read config file %s (nor %s): No such file or directory", path, old);
        goto cleanup;
    }
    *out = old;
    old = NULL;
cleanup:
    free(dir);
    free(old);
    return rc;
}

int tb_config_open(struct tb_config **out, const char *path, int required)
{
    char *found = NULL;
    int rc = tb_config_locate(path, &found);
    *out = NULL;
    if (rc == TB_ENOENT && !path && !required)
        rc = 0;
    else if (rc == 0)
        rc = tb_config_load(out, found);
    free(found);
    return rc;
}

const char *tb_config_db_path(const struct tb_config *c)
{
    const char *p = c ? tb_config_get(c, "storage.rocksdb_path") : NULL;
    return p && *p ? p : TB_THEMIS_DB_PATH;
}

/* Whether a and b name the same directory: the same inode, or (when one is missing) the
 * same text once trailing slashes are dropped. */
static int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    size_t la = strlen(a), lb = strlen(b);
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

int tb_config_db_dir(const char *path, const char *rocksdb_path, char **out, int *mapped)
{
    char *parent = NULL;
    struct stat st;
    int rc = 0;
    *mapped = 0;
    *out = NULL;
    if (!tb_fs_exists_in(path, "CURRENT")) {
        if (rocksdb_path && !(parent = tb_fs_dirname(rocksdb_path))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if (parent && same_dir(path, parent)) {
            if (!(*out = strdup(rocksdb_path))) {
                rc = tb_error_set(TB_EIO, "out of memory");
                goto cleanup;
            }
            *mapped = 1;
        } else {
            char *sub = tb_fs_join(path, "rocksdb");
            if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
                *out = sub;
                *mapped = 1;
            } else {
                free(sub);
            }
        }
    }
    if (!*out && !(*out = strdup(path)))
        rc = tb_error_set(TB_EIO, "out of memory");
cleanup:
    free(parent);
    return rc;
}

const char *tb_config_get(const struct tb_config *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].key, key) == 0)
            return c->entries[i].value;
    return NULL;
}

void tb_config_free_list(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

int tb_config_referenced_files(const struct tb_config *c, const char *dir, char ***out)
{
    char **list = calloc(c->n + 1, sizeof *list);
    size_t n = 0, dl = strlen(dir);
    if (!list)
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        const char *v = c->entries[i].value;
        struct stat st;
        int dup = 0;
        if (strncmp(v, dir, dl) != 0 || strcmp(v, c->path) == 0 || strstr(v, "/../"))
            continue;
        if (stat(v, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        for (size_t j = 0; j < n; j++)
            dup |= strcmp(list[j], v) == 0;
        if (!dup && !(list[n++] = strdup(v))) {
            tb_config_free_list(list);
            return tb_error_set(TB_EIO, "out of memory");
        }
    }
    *out = list;
    return 0;
}
