/* test_cli: option tables, the shared config file, sizes. */
#include "tap.h"
#include "cli.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

static const char *dir, *prog;
static int flag, verbose;
static long long num = -1;
static struct tb_strlist keys;

static const struct tb_option opts[] = {
    { "backup-directory", 0, TB_OPT_STRING, &dir, "DIR", "where" },
    { "compress", 0, TB_OPT_FLAG, &flag, NULL, "compress" },
    { "level", 0, TB_OPT_INT, &num, "N", "level" },
    { "progress", 0, TB_OPT_OPTSTRING, &prog, "json", "progress" },
    { "verbose", 'v', TB_OPT_FLAG, &verbose, NULL, "verbose" },
    { "key-file", 0, TB_OPT_LIST, &keys, "FILE", "keys" },
    { NULL, 0, 0, NULL, NULL, NULL },
};
static const struct tb_cli cli = { "tool-x", "[OPTIONS]", "A test tool.", opts };

static void reset(void)
{
    dir = prog = NULL;
    flag = verbose = 0;
    num = -1;
    memset(&keys, 0, sizeof keys);
}

/* Parses a space-separated command line (no quoting needed here). */
static int parse(const char *line, int *argi, char ***argv_out, int *argc_out)
{
    static char *argv[32];
    static char buf[1024];
    int argc = 0;
    snprintf(buf, sizeof buf, "tool-x %s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    *argv_out = argv;
    *argc_out = argc;
    reset();
    return tb_cli_parse(&cli, argc, argv, argi);
}

int main(void)
{
    char **argv, conf[256], line[600];
    int argc, argi;
    long long v;
    FILE *f;

    ok(parse("--backup-directory /b --compress --level 7 -v", &argi, &argv, &argc) == TB_CLI_RUN, "plain options");
    ok(dir && strcmp(dir, "/b") == 0 && flag == 1 && num == 7 && verbose == 1, "all values set");
    ok(parse("--backup-directory=/c --level=2k", &argi, &argv, &argc) == 0 && strcmp(dir, "/c") == 0 && num == 2048,
       "--opt=value and k suffix");
    ok(parse("--progress", &argi, &argv, &argc) == 0 && prog && strcmp(prog, "") == 0, "optional value absent");
    ok(parse("--progress=json", &argi, &argv, &argc) == 0 && prog && strcmp(prog, "json") == 0, "optional value given");
    ok(parse("a --compress b - c", &argi, &argv, &argc) == 0 && argc - argi == 4, "positionals mixed with options");
    ok(strcmp(argv[argi], "a") == 0 && strcmp(argv[argi + 2], "-") == 0 && strcmp(argv[argi + 3], "c") == 0,
       "positionals kept in order, - is one");
    ok(parse("-- --compress", &argi, &argv, &argc) == 0 && flag == 0 && argc - argi == 1, "-- ends the options");
    ok(parse("--no-such-thing", &argi, &argv, &argc) == TB_EUSAGE, "unknown option");
    ok(strstr(tb_error_last(), "--no-such-thing") != NULL, "message names it: %s", tb_error_last());
    ok(parse("-q", &argi, &argv, &argc) == TB_EUSAGE, "unknown short option");
    ok(parse("--level", &argi, &argv, &argc) == TB_EUSAGE && strstr(tb_error_last(), "needs a value"), "missing value");
    ok(parse("--level abc", &argi, &argv, &argc) == TB_EUSAGE && strstr(tb_error_last(), "number"), "not a number");
    ok(parse("--compress=yes", &argi, &argv, &argc) == TB_EUSAGE, "a flag takes no value");
    ok(parse("--help", &argi, &argv, &argc) == TB_CLI_HELP, "--help");
    ok(parse("-h", &argi, &argv, &argc) == TB_CLI_HELP, "-h");
    ok(parse("--version", &argi, &argv, &argc) == TB_CLI_VERSION, "--version");

    ok(tb_cli_parse_size("64M", &v) == 0 && v == 64ll << 20, "64M");
    ok(tb_cli_parse_size("1G", &v) == 0 && v == 1ll << 30, "1G");
    ok(tb_cli_parse_size("5GiB", &v) == 0 && v == 5ll << 30, "5GiB");
    ok(tb_cli_parse_size("12", &v) == 0 && v == 12, "12");
    ok(tb_cli_parse_size("-1", &v) < 0 && tb_cli_parse_size("1X", &v) < 0 && tb_cli_parse_size("", &v) < 0,
       "negative, bad suffix and empty refused");
    ok(tb_cli_parse_rate("50", &v) == 0 && v == 50ll << 20, "--rate-limit 50: MiB per second");
    ok(tb_cli_parse_rate("512k", &v) == 0 && v == 512ll << 10, "--rate-limit 512k: bytes per second");
    ok(tb_cli_parse_rate("50M", &v) == 0 && v == 50ll << 20, "--rate-limit 50M: the same as 50");
    ok(tb_cli_parse_rate("0", &v) < 0 && tb_cli_parse_rate("0M", &v) < 0 && tb_cli_parse_rate("-5", &v) < 0 &&
           tb_cli_parse_rate("5x", &v) < 0 && tb_cli_parse_rate("", &v) < 0 && tb_cli_parse_rate("99999999999999", &v) < 0,
       "--rate-limit: zero, negative, bad suffix, empty and absurd refused");

    snprintf(conf, sizeof conf, "%s/test_cli.%d.conf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    f = fopen(conf, "w");
    fprintf(f, "# shared\nbackup-directory = /from-conf\nunknown-to-this-tool = 1\nlevel = 3\n"
               "[other-tool]\nwhatever = 1\n[tool-x]\ncompress = yes\nprogress = json\n");
    fclose(f);
    snprintf(line, sizeof line, "--conf %s", conf);
    ok(parse(line, &argi, &argv, &argc) == 0, "config file loads (unknown shared keys and other sections ignored)");
    ok(dir && strcmp(dir, "/from-conf") == 0 && num == 3 && flag == 1 && strcmp(prog, "json") == 0,
       "values from the file and from this tool's section");
    snprintf(line, sizeof line, "--conf %s --level 9 --backup-directory /cli", conf);
    ok(parse(line, &argi, &argv, &argc) == 0 && num == 9 && strcmp(dir, "/cli") == 0, "the command line wins");
    f = fopen(conf, "a");
    fprintf(f, "typo-key = 2\n");
    fclose(f);
    snprintf(line, sizeof line, "--conf %s", conf);
    ok(parse(line, &argi, &argv, &argc) == TB_EUSAGE && strstr(tb_error_last(), "typo-key"),
       "an unknown key in this tool's section is an error naming it");
    f = fopen(conf, "w");
    fprintf(f, "key-file = /k1\nkey-file = /k2\n");
    fclose(f);
    snprintf(line, sizeof line, "--conf %s", conf);
    ok(parse(line, &argi, &argv, &argc) == 0 && keys.n == 2 && !strcmp(keys.v[0], "/k1") && !strcmp(keys.v[1], "/k2"),
       "a repeatable option: each line of the file adds a value");
    snprintf(line, sizeof line, "--conf %s --key-file /a --key-file=/b", conf);
    ok(parse(line, &argi, &argv, &argc) == 0 && keys.n == 2 && !strcmp(keys.v[0], "/a") && !strcmp(keys.v[1], "/b"),
       "the command line's values replace the file's");
    ok(parse("--key-file", &argi, &argv, &argc) == TB_EUSAGE, "a repeatable option needs a value");
    ok(parse("--key-file=1 --key-file=2 --key-file=3 --key-file=4 --key-file=5 --key-file=6 --key-file=7 --key-file=8 "
             "--key-file=9 --key-file=10 --key-file=11 --key-file=12 --key-file=13 --key-file=14 --key-file=15 "
             "--key-file=16", &argi, &argv, &argc) == 0 && keys.n == 16, "16 values");
    ok(parse("--key-file=1 --key-file=2 --key-file=3 --key-file=4 --key-file=5 --key-file=6 --key-file=7 --key-file=8 "
             "--key-file=9 --key-file=10 --key-file=11 --key-file=12 --key-file=13 --key-file=14 --key-file=15 "
             "--key-file=16 --key-file=17", &argi, &argv, &argc) == TB_EUSAGE && strstr(tb_error_last(), "more than 16"),
       "at most 16 values");
    remove(conf);
    snprintf(line, sizeof line, "--conf %s", conf);
    ok(parse(line, &argi, &argv, &argc) == TB_EUSAGE, "--conf of a missing file is an error");
    return done_testing();
}
