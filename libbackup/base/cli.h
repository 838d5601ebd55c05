/* cli: command-line options declared as data (one table per tool), config files, --help. */
#ifndef TB_CLI_H
#define TB_CLI_H

#include <stdint.h>
#include <stdio.h>

enum tb_opt_kind {
    TB_OPT_FLAG, /* --name          -> int *dest = 1 */
    TB_OPT_STRING, /* --name VALUE    -> const char **dest (points into argv or the conf) */
    TB_OPT_INT, /* --name N        -> long long *dest (decimal, k/M/G suffix allowed) */
    TB_OPT_OPTSTRING, /* --name[=VALUE]  -> const char **dest ("" when given without value) */
    TB_OPT_LIST, /* --name VALUE, repeatable -> struct tb_strlist *dest (the command
                       * line's values replace the config file's) */
};

#define TB_STRLIST_MAX 16
struct tb_strlist {
    const char *v[TB_STRLIST_MAX];
    size_t n;
    int cmdline; /* the values are the command line's */
};

struct tb_option {
    const char *name; /* long name without the dashes; NULL ends the table */
    char short_name; /* 0 for none */
    enum tb_opt_kind kind;
    void *dest;
    const char *arg; /* the argument's name in --help, e.g. "DIR" */
    const char *help;
};

struct tb_cli {
    const char *tool; /* "themis-backup" */
    const char *usage; /* what follows the tool's name in the usage line */
    const char *summary; /* one line saying what the tool does */
    const struct tb_option *opts;
};

enum { TB_CLI_RUN = 0, TB_CLI_HELP = 1, TB_CLI_VERSION = 2 };

/* Parses argv against the table, after loading the config file (--conf FILE, else
 * /etc/themis-backup.conf when it exists): `key = value` lines, `#` comments, and
 * `[tool-name]` sections. Keys outside a section that this tool does not know are
 * ignored (the file is shared by all tools); unknown keys in this tool's section are
 * errors. The command line wins. --help, --version and --conf are always accepted.
 * Returns TB_CLI_RUN, TB_CLI_HELP or TB_CLI_VERSION, or TB_EUSAGE with a message
 * naming the option. *argi is the index of the first positional argument. */
int tb_cli_parse(const struct tb_cli *cli, int argc, char **argv, int *argi);
/* Writes --help generated from the table. */
void tb_cli_help(const struct tb_cli *cli, FILE *out);
/* Parses "123", "64k", "8M", "2G" into *out. */
int tb_cli_parse_size(const char *s, long long *out);
/* --rate-limit: a bare number is MiB per second ("50"), a number with a suffix is bytes per
 * second ("512k", "50M", "1G"); zero or more than 1 TiB/s is refused. */
int tb_cli_parse_rate(const char *s, long long *bytes);

#define TB_VERSION "0.1.0"

#endif
