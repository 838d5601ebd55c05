/* themisdb-admin: the subcommands ThemisDB's upgrade guides run, dispatched to our tools:
 * `wal-replay` -> themis-wal-replay, `data-hash` -> themis-dbhash. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
    const char *sub, *tool;
} table[] = {
    { "wal-replay", "themis-wal-replay" },
    { "data-hash", "themis-dbhash" },
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: themisdb-admin SUBCOMMAND [OPTIONS]\nSubcommands:\n"
            "  wal-replay   point-in-time recovery (runs themis-wal-replay)\n"
            "  data-hash    content hash of a database (runs themis-dbhash)\n");
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("themisdb-admin %s\n", TB_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(argv[1], table[i].sub) != 0)
            continue;
        argv[1] = (char *)table[i].tool;
        /* The tool beside this program first (an install or a build directory), then PATH. */
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) {
                *slash = '\0';
                snprintf(path, sizeof path, "%s/%s", self, table[i].tool);
                execv(path, argv + 1);
            }
        }
        execvp(table[i].tool, argv + 1);
        fprintf(stderr, "themisdb-admin: cannot run %s: %s\n", table[i].tool, strerror(errno));
        return 1;
    }
    fprintf(stderr, "themisdb-admin: unknown subcommand '%s' (see --help)\n", argv[1]);
    return 2;
}
