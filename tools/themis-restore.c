/* themis-restore: verify a backup (--verify-only) or restore it into a target directory. */
#include "tool.h"

#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "restore.h"

static const char *backup_dir, *from, *target, *config_target, *owner, *progress_arg;
static int verify_only, quick, force, verbose;

static const struct tb_option opts[] = {
    { "backup-directory", 0, TB_OPT_STRING, &backup_dir, "DIR", "the backup to read" },
    { "from", 0, TB_OPT_STRING, &from, "-", "read the backup stream from stdin instead" },
    { "verify-only", 0, TB_OPT_FLAG, &verify_only, NULL, "check the backup and change nothing" },
    { "quick", 0, TB_OPT_FLAG, &quick, NULL, "with --verify-only: checksums only, skip restoring and opening the DB" },
    { "target", 0, TB_OPT_STRING, &target, "DIR", "restore the database here" },
    { "config-target", 0, TB_OPT_STRING, &config_target, "DIR", "also restore the backed-up config files here" },
    { "force", 0, TB_OPT_FLAG, &force, NULL, "replace a non-empty target" },
    { "owner", 0, TB_OPT_STRING, &owner, "USER", "give the restored files to USER (as root)" },
    { "progress", 0, TB_OPT_OPTSTRING, &progress_arg, "json", "show progress on stderr (a line, or JSON lines)" },
    { "verbose", 'v', TB_OPT_FLAG, &verbose, NULL, "print a summary on stderr" },
    { NULL, 0, 0, NULL, NULL, NULL },
};

static const struct tb_cli cli = {
    "themis-restore", "(--backup-directory DIR | --from -) (--verify-only [--quick] | --target DIR)",
    "Verifies a themis-backup backup, or restores it into place after verifying it.",
    opts,
};

int main(int argc, char **argv)
{
    struct tb_restore_opts o = { 0 };
    struct tb_manifest *m = NULL;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    tb_stream *in = NULL;
    int argi, rc, status;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if (argi < argc)
        return tool_usage(&cli, "unexpected argument");
    if (!backup_dir == !from)
        return tool_usage(&cli, "give exactly one of --backup-directory DIR and --from -");
    if (from && strcmp(from, "-") != 0)
        return tool_usage(&cli, "--from takes only - (stdin); use --backup-directory for a directory");
    if (!verify_only == !target)
        return tool_usage(&cli, "give exactly one of --verify-only and --target DIR");
    if (quick && !verify_only)
        return tool_usage(&cli, "--quick goes with --verify-only");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if (owner) {
        struct passwd *pw = getpwnam(owner);
        if (!pw) {
            fprintf(stderr, "%s: unknown user '%s'\n", cli.tool, owner);
            return 2;
        }
        if (geteuid() != 0) {
            fprintf(stderr, "%s: --owner needs root\n", cli.tool);
            return 2;
        }
        o.set_owner = 1;
        o.uid = pw->pw_uid;
        o.gid = pw->pw_gid;
    }
    if (from && (rc = tb_stream_fd(&in, 0, 0, "stdin")) < 0)
        return tool_fail(&cli, rc);
    o.backup_dir = backup_dir;
    o.in = in;
    o.target = target;
    o.config_target = config_target;
    o.scratch = tool_tmpdir();
    o.verify_only = verify_only;
    o.quick = quick;
    o.force = force;
    tb_progress_start(&prog, pmode, stderr, verify_only ? "verify" : "restore", 0);
    o.progress = tb_progress_update;
    o.progress_arg = &prog;
    o.progress_total = &prog.total;
    rc = tb_restore_run(&o, &m);
    tb_progress_finish(&prog);
    if (rc == 0 && verbose)
        fprintf(stderr, "%s: %s: %zu files, sequence %" PRIu64 ", content hash %s%s\n", cli.tool,
                verify_only ? (quick ? "checksums verified" : "verified") : "restored", m->nfiles,
                m->last_seq, m->content_hash, verify_only && quick ? " (not opened: --quick)" : " (opened and matched)");
    tb_manifest_free(m);
    tb_stream_free(in);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
