/* themis-s3: copy backups and WAL segments to and from any S3-compatible object store. */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "progress.h"
#include "s3opts.h"
#include "stream.h"
#include "timefmt.h"

static const char *progress_arg;
static struct tool_s3_opts s3o = TOOL_S3_OPTS_INIT;

static const struct tb_option opts[] = {
    { "endpoint", 0, TB_OPT_STRING, &s3o.endpoint, "URL", "the S3 service (default $AWS_ENDPOINT_URL, else AWS)" },
    { "region", 0, TB_OPT_STRING, &s3o.region, "R", "the region to sign for (default $AWS_REGION, else us-east-1)" },
    { "path-style", 0, TB_OPT_FLAG, &s3o.path_style, NULL, "address buckets in the path (automatic with --endpoint)" },
    { "parallel", 0, TB_OPT_INT, &s3o.parallel, "N", "parts or ranges in flight (default 8)" },
    { "part-size", 0, TB_OPT_INT, &s3o.part_size, "N",
      "first part size of multipart uploads and downloads (default 8M)" },
    { "retries", 0, TB_OPT_INT, &s3o.retries, "N", "retries of a failed request (default 5)" },
    { "ca-bundle", 0, TB_OPT_STRING, &s3o.ca_bundle, "FILE",
      "CA certificates for HTTPS (default $AWS_CA_BUNDLE, else the system's)" },
    TOOL_PROGRESS_OPTION_WHEN(progress_arg, "with put, get and sync: ", "the bytes transferred"),
    TOOL_VERBOSE_OPTION(s3o.verbose, "report retries on stderr"),
    TOOL_OPTIONS_END,
};

static const struct tb_cli cli = {
    "themis-s3",
    "put SRC|- s3://B/KEY | get s3://B/KEY DST|- | ls s3://B/PREFIX | rm s3://B/KEY... | stat s3://B/KEY\n"
    "       | sync DIR s3://B/PREFIX | sync s3://B/PREFIX DIR",
    "Copies files and streams to and from S3-compatible object storage (AWS_* variables for credentials).",
    opts,
};

static tb_s3 *s3;

static int parse(const char *url, char **bucket, char **key, int need_key)
{
    int rc = tb_s3_url_parse(url, bucket, key);
    if (rc == 0 && need_key && !**key) {
        free(*bucket);
        free(*key);
        return tb_error_set(TB_EUSAGE, "%s names no object", url);
    }
    return rc;
}

/* put (up) copies local (a file, or - for stdin) to the object url; get copies the object
 * to local (a file, a directory, or - for stdout). */
static int copy(const char *url, const char *local, int up)
{
    char *bucket, *key, *path = NULL;
    tb_stream *std = NULL;
    struct stat st;
    int rc = parse(url, &bucket, &key, 1);
    if (rc < 0)
        return rc;
    if (strcmp(local, "-") == 0) {
        if ((rc = tb_stream_fd(&std, up ? 0 : 1, 0, up ? "stdin" : "stdout")) == 0)
            rc = up ? tb_s3_put(s3, bucket, key, std, UINT64_MAX, NULL) : tb_s3_get(s3, bucket, key, std);
        tb_stream_free(std);
    } else if (up) {
        rc = tb_s3_put_file(s3, bucket, key, local);
    } else {
        /* Into a directory: under the object's own name, as cp does. */
        if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
            const char *base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
            if (asprintf(&path, "%s/%s", local, base) < 0)
                path = NULL;
        }
        rc = tb_s3_get_file(s3, bucket, key, path ? path : local);
    }
    free(path);
    free(bucket);
    free(key);
    return rc;
}

static int print_object(void *arg, const struct tb_s3_object *o)
{
    char t[64];
    (void)arg;
    tb_time_format(o->mtime * 1000000000LL, t, sizeof t);
    printf("%" PRIu64 "\t%s\t%s\n", o->size, t, o->key);
    return 0;
}

static int ls(const char *url)
{
    char *bucket, *key;
    int rc = parse(url, &bucket, &key, 0);
    if (rc == 0)
        rc = tb_s3_list(s3, bucket, key, print_object, NULL);
    if (rc == 0)
        rc = fflush(stdout) == 0 ? 0 : tb_error_errno(TB_EIO, errno, "stdout");
    free(bucket);
    free(key);
    return rc;
}

static int stat_(const char *url)
{
    struct tb_s3_object o;
    char *bucket, *key, t[64];
    int rc = parse(url, &bucket, &key, 1);
    if (rc == 0 && (rc = tb_s3_stat(s3, bucket, key, &o)) == 0) {
        tb_time_format(o.mtime * 1000000000LL, t, sizeof t);
        printf("size %" PRIu64 "\netag %s\nsha256 %s\nmtime %s\n", o.size, o.etag, *o.sha256 ? o.sha256 : "-", t);
        tb_s3_object_clear(&o);
    } else if (rc == TB_ENOENT) {
        rc = tb_error_set(TB_ENOENT, "%s: no such object", url);
    }
    free(bucket);
    free(key);
    return rc;
}

static int rm(const char *url)
{
    char *bucket, *key;
    int rc = parse(url, &bucket, &key, 1);
    if (rc == 0)
        rc = tb_s3_delete(s3, bucket, key);
    free(bucket);
    free(key);
    return rc;
}

static int sync_(const char *from, const char *to)
{
    char *bucket, *key;
    unsigned copied = 0;
    int up = !tb_s3_is_url(from), rc = parse(up ? to : from, &bucket, &key, 0);
    if (rc < 0)
        return rc;
    rc = up ? tb_s3_sync_up(s3, from, bucket, key, &copied) : tb_s3_sync_down(s3, bucket, key, to, &copied);
    if (rc == 0)
        printf("copied %u file%s\n", copied, copied == 1 ? "" : "s");
    free(bucket);
    free(key);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd;
    struct tb_progress prog;
    enum tb_progress_mode pmode;
    int argi, rc = 0, status, n;

    if ((status = tool_parse(&cli, argc, argv, &argi)) >= 0)
        return status;
    tool_catch_signals();
    if (argi >= argc)
        return tool_usage(&cli, "missing command");
    cmd = argv[argi++];
    n = argc - argi;
    if ((!strcmp(cmd, "put") || !strcmp(cmd, "get") || !strcmp(cmd, "sync")) && n != 2)
        return tool_usage(&cli, "put, get and sync take a source and a destination");
    if ((!strcmp(cmd, "ls") || !strcmp(cmd, "stat")) && n != 1)
        return tool_usage(&cli, "ls and stat take one s3:// location");
    if (!strcmp(cmd, "rm") && n < 1)
        return tool_usage(&cli, "rm takes s3:// locations");
    if (!strcmp(cmd, "put") && (tb_s3_is_url(argv[argi]) || !tb_s3_is_url(argv[argi + 1])))
        return tool_usage(&cli, "put copies a file or - to an s3:// location");
    if (!strcmp(cmd, "get") && (!tb_s3_is_url(argv[argi]) || tb_s3_is_url(argv[argi + 1])))
        return tool_usage(&cli, "get copies an s3:// location to a file or -");
    if (!strcmp(cmd, "sync") && tb_s3_is_url(argv[argi]) == tb_s3_is_url(argv[argi + 1]))
        return tool_usage(&cli, "sync copies between a directory and an s3:// location");
    if (strcmp(cmd, "put") && strcmp(cmd, "get") && strcmp(cmd, "ls") && strcmp(cmd, "rm") && strcmp(cmd, "stat") &&
        strcmp(cmd, "sync"))
        return tool_usage(&cli, "unknown command");
    for (int i = argi; i < argc; i++)
        if ((!strcmp(cmd, "ls") || !strcmp(cmd, "rm") || !strcmp(cmd, "stat")) && !tb_s3_is_url(argv[i]))
            return tool_usage(&cli, "expected an s3://BUCKET/KEY location");
    if (!strcmp(cmd, "get") && !strcmp(argv[argi + 1], "-") && isatty(1))
        return tool_usage(&cli, "refusing to write an object to a terminal");
    if (progress_arg && strcmp(cmd, "put") && strcmp(cmd, "get") && strcmp(cmd, "sync"))
        return tool_usage(&cli, "--progress goes with put, get and sync");
    if (tb_progress_parse(progress_arg, &pmode) < 0)
        return tool_fail(&cli, TB_EUSAGE);
    if ((rc = tool_s3_new(&s3, &s3o)) < 0)
        return tool_fail(&cli, rc);
    /* The total comes from the library: a file's size, or the object's for a download. */
    tb_progress_start(&prog, pmode, stderr,
                      !strcmp(cmd, "put")       ? "upload"
                          : !strcmp(cmd, "get") ? "download"
                                                : "sync",
                      0);
    tb_s3_set_progress(s3, tb_progress_update, &prog, &prog.total);
    if (!strcmp(cmd, "put"))
        rc = copy(argv[argi + 1], argv[argi], 1);
    else if (!strcmp(cmd, "get"))
        rc = copy(argv[argi], argv[argi + 1], 0);
    else if (!strcmp(cmd, "ls"))
        rc = ls(argv[argi]);
    else if (!strcmp(cmd, "stat"))
        rc = stat_(argv[argi]);
    else if (!strcmp(cmd, "sync"))
        rc = sync_(argv[argi], argv[argi + 1]);
    else
        for (int i = argi; i < argc && rc == 0; i++)
            rc = rm(argv[i]);
    tb_progress_finish(&prog);
    tb_s3_free(s3);
    return rc < 0 ? tool_fail(&cli, rc) : 0;
}
