/* config: ThemisDB's YAML config read with libyaml into dotted key paths. */
#include "config.h"
#include "error.h"

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
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c->entries);
    free(c->path);
    free(c);
}

static int add_entry(struct tb_config *c, const char *key, const char *value)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct tb_config_entry *p = realloc(c->entries, cap * sizeof *p);
        if (!p)
            return tb_error_set(TB_EIO, "out of memory");
        c->entries = p;
        c->cap = cap;
    }
    c->entries[c->n].key = strdup(key);
    c->entries[c->n].value = strdup(value);
    if (!c->entries[c->n].key || !c->entries[c->n].value)
        return tb_error_set(TB_EIO, "out of memory");
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
    case YAML_SCALAR_NODE:
        return add_entry(c, prefix, (const char *)node->data.scalar.value);
    case YAML_SEQUENCE_NODE:
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             rc == 0 && it < node->data.sequence.items.top; it++)
            rc = walk(c, doc, yaml_document_get_node(doc, *it), prefix);
        return rc;
    case YAML_MAPPING_NODE:
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             rc == 0 && p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            char key[1024];
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", (char *)k->data.scalar.value);
            rc = walk(c, doc, yaml_document_get_node(doc, p->value), key);
        }
        return rc;
    default:
        return 0;
    }
}

int tb_config_load(struct tb_config **out, const char *path)
{
    struct tb_config *c = calloc(1, sizeof *c);
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = NULL;
    int rc = 0, have_parser = 0, have_doc = 0;

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
    if (!yaml_parser_load(&parser, &doc)) {
        rc = tb_error_set(TB_EIO, "config file is not valid YAML: %s at line %zu (%s)",
                          parser.problem ? parser.problem : "syntax error", parser.problem_mark.line + 1, path);
        goto cleanup;
    }
    have_doc = 1;
    rc = walk(c, &doc, yaml_document_get_root_node(&doc), "");
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
