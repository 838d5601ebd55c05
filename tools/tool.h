/* tool: the few lines every tool shares: parsing with the table, one-line errors, exit codes. */
#ifndef TB_TOOL_H
#define TB_TOOL_H

#include <stdio.h>
#include <signal.h>
#include <stdlib.h>

#include "cli.h"
#include "error.h"

/* Prints "tool: message" for the last error and returns the exit status for rc. */
static inline int tool_fail(const struct tb_cli *cli, int rc)
{
    fprintf(stderr, "%s: %s\n", cli->tool, tb_error_last());
    return tb_error_exit_code(rc);
}

/* Parses argv; returns -1 to go on, else the exit status to return now. */
static inline int tool_parse(const struct tb_cli *cli, int argc, char **argv, int *argi)
{
    int rc = tb_cli_parse(cli, argc, argv, argi);
    if (rc == TB_CLI_HELP) {
        tb_cli_help(cli, stdout);
        return 0;
    }
    if (rc == TB_CLI_VERSION) {
        printf("%s %s\n", cli->tool, TB_VERSION);
        return 0;
    }
    if (rc < 0)
        return tool_fail(cli, rc);
    return -1;
}

static inline int tool_usage(const struct tb_cli *cli, const char *msg)
{
    fprintf(stderr, "%s: %s (see --help)\n", cli->tool, msg);
    return 2;
}

static void tool_on_signal(int sig)
{
    tb_interrupted = sig;
}

/* SIGINT, SIGTERM and SIGHUP make the library stop and remove its temporary files; no
 * SA_RESTART, so blocking reads and writes return at once. */
static inline void tool_catch_signals(void)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = tool_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Scratch directory for temporary files: $TMPDIR or /tmp. */
static inline const char *tool_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

#endif
