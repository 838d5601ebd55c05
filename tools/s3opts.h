/* s3opts: the S3 settings every tool takes from the standard AWS_* variables (with
 * themis-s3's options on top), and the repository handle a tool opens with them. */
#ifndef TB_S3OPTS_H
#define TB_S3OPTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"
#include "s3.h"
#include "tool.h"

/* themis-s3's options; a tool that has none passes NULL. */
struct tool_s3_opts {
    const char *endpoint, *region, *ca_bundle;
    int path_style, verbose;
    long long parallel, part_size, retries;
};
#define TOOL_S3_OPTS_INIT \
    {                     \
        .retries = -2     \
    }

static inline const char *tool_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static inline void tool_s3_on_retry(void *arg, const char *what)
{
    fprintf(stderr, "%s: %s\n", (const char *)arg, what);
}

/* The settings from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
 * (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL and AWS_CA_BUNDLE; options (o may be NULL) win.
 * The strings stay the environment's and the options'. */
static inline void tool_s3_config(struct tb_s3_config *c, const struct tool_s3_opts *o)
{
    static const struct tool_s3_opts none = TOOL_S3_OPTS_INIT;
    if (!o)
        o = &none;
    memset(c, 0, sizeof *c);
    c->access_key = tool_env("AWS_ACCESS_KEY_ID");
    c->secret_key = tool_env("AWS_SECRET_ACCESS_KEY");
    c->session_token = tool_env("AWS_SESSION_TOKEN");
    c->region = o->region        ? o->region
        : tool_env("AWS_REGION") ? tool_env("AWS_REGION")
                                 : tool_env("AWS_DEFAULT_REGION");
    c->endpoint = o->endpoint ? o->endpoint : tool_env("AWS_ENDPOINT_URL");
    c->ca_bundle = o->ca_bundle ? o->ca_bundle : tool_env("AWS_CA_BUNDLE");
    /* A CA bundle means nothing to a plain-HTTP endpoint; the test machines set one. */
    if (c->endpoint && strncmp(c->endpoint, "http://", 7) == 0)
        c->ca_bundle = NULL;
    c->path_style = o->path_style ? 1 : -1;
    c->parallel = (int)o->parallel;
    c->part_size = (uint64_t)o->part_size;
    c->retries = o->retries == -2 ? 0 : o->retries == 0 ? -1 : (int)o->retries;
    if (o->verbose) {
        c->on_retry = tool_s3_on_retry;
        c->on_retry_arg = (void *)"themis-s3";
    }
}

/* A client with those settings (themis-s3, the S3 client tool itself). */
static inline int tool_s3_new(tb_s3 **out, const struct tool_s3_opts *o)
{
    struct tb_s3_config c;
    tool_s3_config(&c, o);
    return tb_s3_new(out, &c);
}

/* A repository handle on location (a directory or s3://BUCKET/PREFIX) with the AWS_*
 * settings, keys (may be NULL) and the scratch directory; progress (may be NULL) is told
 * the bytes downloaded. */
static inline int tool_repo_open(tb_repo **out, const char *location, tb_keyring *keys, tb_progress_cb progress,
                                 void *progress_arg)
{
    struct tb_s3_config c;
    struct tb_repo_opts o = { &c, tool_tmpdir(), keys, progress, progress_arg, NULL };
    tool_s3_config(&c, NULL);
    return tb_repo_open(out, location, &o);
}

#endif
