/* s3opts: the S3 settings every tool takes from the standard AWS_* variables, with
 * themis-s3's options on top. */
#ifndef TB_S3OPTS_H
#define TB_S3OPTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

struct tool_s3_opts {
    const char *endpoint, *region, *ca_bundle;
    int path_style, verbose;
    long long parallel, part_size, retries;
};

static struct tool_s3_opts tool_s3_opts = { .retries = -2 };

static inline const char *tool_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static inline void tool_s3_on_retry(void *arg, const char *what)
{
    fprintf(stderr, "%s: %s\n", (const char *)arg, what);
}

/* A client from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
 * (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL and AWS_CA_BUNDLE; options win. */
static inline int tool_s3_new(tb_s3 **out)
{
    struct tb_s3_config c = { 0 };
    const struct tool_s3_opts *o = &tool_s3_opts;
    c.access_key = tool_env("AWS_ACCESS_KEY_ID");
    c.secret_key = tool_env("AWS_SECRET_ACCESS_KEY");
    c.session_token = tool_env("AWS_SESSION_TOKEN");
    c.region = o->region ? o->region : tool_env("AWS_REGION") ? tool_env("AWS_REGION") : tool_env("AWS_DEFAULT_REGION");
    c.endpoint = o->endpoint ? o->endpoint : tool_env("AWS_ENDPOINT_URL");
    c.ca_bundle = o->ca_bundle ? o->ca_bundle : tool_env("AWS_CA_BUNDLE");
    /* A CA bundle means nothing to a plain-HTTP endpoint; the test machines set one. */
    if (c.endpoint && strncmp(c.endpoint, "http://", 7) == 0)
        c.ca_bundle = NULL;
    c.path_style = o->path_style ? 1 : -1;
    c.parallel = (int)o->parallel;
    c.part_size = (uint64_t)o->part_size;
    c.retries = o->retries == -2 ? 0 : o->retries == 0 ? -1 : (int)o->retries;
    if (o->verbose) {
        c.on_retry = tool_s3_on_retry;
        c.on_retry_arg = (void *)"themis-s3";
    }
    return tb_s3_new(out, &c);
}

#endif
