/* cli: option tables, the shared config file, and --help generated from the table. */
#include "cli.h"
#include "config.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TB_DEFAULT_CONF "/etc/themis-backup.conf"

int tb_cli_parse_size(const char *s, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return TB_EUSAGE;
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end)
        return TB_EUSAGE;
    *out = v;
    return 0;
}

int tb_cli_parse_rate(const char *s, long long *bytes)
{
    long long v;
    size_t digits = strspn(s, "0123456789");
    if (digits > 13 || tb_cli_parse_size(s, &v) < 0 || v <= 0)
        return TB_EUSAGE;
    if (!s[digits])
        v <<= 20;
    if (v > 1ll << 40)
        return TB_EUSAGE;
    *bytes = v;
    return 0;
}

static const struct tb_option *find_opt(const struct tb_cli *cli, const char *name, size_t len)
{
    for (const struct tb_option *o = cli->opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int set_value(const struct tb_cli *cli, const struct tb_option *o, const char *value, const char *where)
{
    switch (o->kind) {
    case TB_OPT_FLAG:
        if (value && strcmp(value, "1") && strcmp(value, "true") && strcmp(value, "yes"))
            *(int *)o->dest = 0;
        else
            *(int *)o->dest = 1;
        return 0;
    case TB_OPT_STRING:
    case TB_OPT_OPTSTRING: *(const char **)o->dest = value ? value : ""; return 0;
    case TB_OPT_LIST: {
        struct tb_strlist *l = o->dest;
        if (!*where && !l->cmdline) {
            l->n = 0;
            l->cmdline = 1;
        }
        if (l->n == TB_STRLIST_MAX)
            return tb_error_set(TB_EUSAGE, "option --%s%s given more than %d times", o->name, where, TB_STRLIST_MAX);
        l->v[l->n++] = value ? value : "";
        return 0;
    }
    case TB_OPT_INT:
        if (!value || tb_cli_parse_size(value, (long long *)o->dest) < 0)
            return tb_error_set(TB_EUSAGE, "option --%s%s needs a number, got '%s'", o->name, where,
                                value ? value : "");
        return 0;
    }
    (void)cli;
    return 0;
}

/* The config file's strings must outlive parsing (the tool's option variables point at
 * them): they are kept, reachable from here, for the life of the process. */
static char **kept;
static size_t nkept;

static char *keep(const char *v)
{
    char **p = realloc(kept, (nkept + 1) * sizeof *p);
    if (!p)
        return NULL;
    kept = p;
    return kept[nkept] = strdup(v), kept[nkept] ? kept[nkept++] : NULL;
}

static int load_conf(const struct tb_cli *cli, const char *path, int required)
{
    FILE *f = fopen(path, "r");
    char line[4096], where[512];
    int lineno = 0, in_other = 0, in_mine = 0, rc = 0;
    if (!f) {
        if (!required && errno == ENOENT)
            return 0;
        return tb_error_errno(TB_EUSAGE, errno, "cannot read config file %s", path);
    }
    while (fgets(line, sizeof line, f)) {
        char *s = tb_config_trim(line), *eq, *key, *val;
        const struct tb_option *o;
        lineno++;
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e) {
                rc = tb_error_set(TB_EUSAGE, "config file %s:%d: bad section line", path, lineno);
                break;
            }
            *e = '\0';
            in_mine = strcmp(tb_config_trim(s + 1), cli->tool) == 0;
            in_other = !in_mine;
            continue;
        }
        if (in_other)
            continue;
        eq = strchr(s, '=');
        key = tb_config_trim(s);
        val = NULL;
        if (eq) {
            *eq = '\0';
            key = tb_config_trim(s);
            val = tb_config_trim(eq + 1);
        }
        o = find_opt(cli, key, strlen(key));
        if (!o) {
            if (in_mine) {
                rc = tb_error_set(TB_EUSAGE, "config file %s:%d: unknown option '%s' for %s", path, lineno, key,
                                  cli->tool);
                break;
            }
            continue;
        }
        if (!val && o->kind != TB_OPT_FLAG) {
            rc = tb_error_set(TB_EUSAGE, "config file %s:%d: option '%s' needs a value", path, lineno, key);
            break;
        }
        /* Only strings are kept (the tool holds pointers to them for the process's life). */
        if (val && (o->kind == TB_OPT_STRING || o->kind == TB_OPT_OPTSTRING || o->kind == TB_OPT_LIST) &&
            (val = keep(val)) == NULL) {
            rc = tb_error_set(TB_EIO, "out of memory");
            break;
        }
        snprintf(where, sizeof where, " (config file %s:%d)", path, lineno);
        if ((rc = set_value(cli, o, val, where)) < 0)
            break;
    }
    fclose(f);
    return rc;
}

/* The --conf FILE the command line names (before any "--"), or NULL. */
static const char *conf_path(int argc, char **argv)
{
    const char *conf = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc)
            conf = argv[i + 1];
        else if (strncmp(argv[i], "--conf=", 7) == 0)
            conf = argv[i] + 7;
    }
    return conf;
}

/* argv[*i], a "--name[=value]": *o the option (NULL for --conf, already loaded), *value
 * what follows '='. TB_CLI_HELP or TB_CLI_VERSION for those. */
static int long_option(const struct tb_cli *cli, int argc, char **argv, int *i, const struct tb_option **o,
                       const char **value)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len == 4 && strncmp(name, "help", 4) == 0)
        return TB_CLI_HELP;
    if (len == 7 && strncmp(name, "version", 7) == 0)
        return TB_CLI_VERSION;
    if (len == 4 && strncmp(name, "conf", 4) == 0) {
        if (!eq)
            ++*i;
        if (!eq && *i >= argc)
            return tb_error_set(TB_EUSAGE, "option --conf needs a value");
        return 0;
    }
    if (!(*o = find_opt(cli, name, len)))
        return tb_error_set(TB_EUSAGE, "unknown option --%.*s (see --help)", (int)len, name);
    if (eq)
        *value = eq + 1;
    return 0;
}

/* a, a "-x": *o the option. TB_CLI_HELP for -h. */
static int short_option(const struct tb_cli *cli, const char *a, const struct tb_option **o)
{
    if (a[1] == 'h' && a[2] == '\0')
        return TB_CLI_HELP;
    for (const struct tb_option *p = cli->opts; p->name; p++)
        if (p->short_name && p->short_name == a[1] && a[2] == '\0')
            *o = p;
    return *o ? 0 : tb_error_set(TB_EUSAGE, "unknown option %s (see --help)", a);
}

/* The option argv[*i] names, with its value (the next argument when it takes one). */
static int one_option(const struct tb_cli *cli, int argc, char **argv, int *i)
{
    const struct tb_option *o = NULL;
    const char *value = NULL;
    int rc = argv[*i][1] == '-' ? long_option(cli, argc, argv, i, &o, &value) : short_option(cli, argv[*i], &o);
    if (rc != 0 || !o)
        return rc;
    if (o->kind == TB_OPT_FLAG && value)
        return tb_error_set(TB_EUSAGE, "option --%s takes no value", o->name);
    if ((o->kind == TB_OPT_STRING || o->kind == TB_OPT_INT || o->kind == TB_OPT_LIST) && !value) {
        if (*i + 1 >= argc)
            return tb_error_set(TB_EUSAGE, "option --%s needs a value", o->name);
        value = argv[++*i];
    }
    return set_value(cli, o, value, "");
}

int tb_cli_parse(const struct tb_cli *cli, int argc, char **argv, int *argi)
{
    const char *conf = conf_path(argc, argv);
    int i, rc, npos = 0, positional_only = 0;
    char **pos;

    /* The config file is loaded first so the command line wins. */
    if ((rc = load_conf(cli, conf ? conf : TB_DEFAULT_CONF, conf != NULL)) < 0)
        return rc;
    /* Options and positional arguments may mix; positionals are moved to the end. */
    if (!(pos = calloc((size_t)argc + 1, sizeof *pos)))
        return tb_error_set(TB_EIO, "out of memory");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (positional_only || a[0] != '-' || strcmp(a, "-") == 0)
            pos[npos++] = argv[i];
        else if (strcmp(a, "--") == 0)
            positional_only = 1;
        else if ((rc = one_option(cli, argc, argv, &i)) != 0)
            goto cleanup;
    }
    /* Put the positionals back at the end of argv, in order. */
    for (i = 0; i < npos; i++)
        argv[argc - npos + i] = pos[i];
    *argi = argc - npos;
    rc = TB_CLI_RUN;
cleanup:
    free(pos);
    return rc;
}

void tb_cli_help(const struct tb_cli *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n%s\n\nOptions:\n", cli->tool, cli->usage, cli->summary);
    for (const struct tb_option *o = cli->opts; o->name; o++) {
        char left[64];
        const char *arg = o->arg ? o->arg : "N";
        if (o->kind == TB_OPT_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else if (o->kind == TB_OPT_OPTSTRING)
            snprintf(left, sizeof left, "--%s[=%s]", o->name, arg);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, arg);
        if (o->short_name)
            fprintf(out, "  -%c, %-28s %s\n", o->short_name, left, o->help);
        else
            fprintf(out, "      %-28s %s\n", left, o->help);
    }
    fprintf(out, "      %-28s %s\n", "--conf FILE", "read options from FILE (default " TB_DEFAULT_CONF ")");
    fprintf(out, "  -h, %-28s %s\n", "--help", "show this help");
    fprintf(out, "      %-28s %s\n", "--version", "show the version");
}
