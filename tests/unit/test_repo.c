/* test_repo: the repository handle on a local directory (a backup root: list, prepare,
 * remove; a backup; a stream; a WAL archive), its argument errors, and that an s3://
 * handle removes at free what it made even when the service is unreachable. */
#include "tap.h"
#include "error.h"
#include "fs.h"
#include "manifest.h"
#include "repo.h"
#include "segment.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* root/NAME/MANIFEST.json of a full backup created at created, and a file "data". */
static int make_backup(const char *root, const char *name, const char *created)
{
    struct tb_manifest *m = NULL;
    char *dir = tb_fs_join(root, name), *path = NULL, *text = NULL;
    int rc = tb_manifest_new(&m);
    if (rc == 0) {
        m->tool_version = strdup("0.1.0");
        m->created = strdup(created);
        m->source_path = strdup("/var/lib/themisdb/rocksdb");
        m->host = strdup("db1");
        m->method = strdup("secondary-checkpoint");
        m->compression = strdup("zstd");
        m->last_seq = 42;
        memcpy(m->content_hash, SHA_A, 65);
        m->archive_size = 4;
        memcpy(m->archive_sha256, SHA_A, 65);
        rc = tb_manifest_add_file(m, "db/CURRENT", 16, SHA_A, 0644);
    }
    if (rc == 0 && (rc = tb_fs_mkdir_p(dir, 0755)) == 0 &&
        (rc = tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE, &text)) == 0 &&
        (path = tb_fs_join(dir, TB_MANIFEST_NAME)) != NULL)
        rc = tb_fs_write_atomic(path, text, strlen(text), 0644);
    free(path);
    if (rc == 0 && (path = tb_fs_join(dir, "data")) != NULL)
        rc = tb_fs_write_atomic(path, "data", 4, 0644);
    free(path);
    free(text);
    free(dir);
    tb_manifest_free(m);
    return rc;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return d ? n : -1;
}

static void local_root(const char *root)
{
    struct tb_repo_opts o = { .scratch = root };
    struct tb_catalog_entry *cat = NULL;
    tb_repo *r = NULL;
    tb_stream *st = NULL;
    const char *dir = NULL;
    char *shown, *data, buf[8];
    size_t n = 0, got = 0;

    ok(make_backup(root, "b1", "2026-11-01T00:00:00Z") == 0 && make_backup(root, "b2", "2026-11-02T00:00:00Z") == 0,
       "two backups");
    ok(tb_repo_open(&r, root, &o) == 0 && strcmp(tb_repo_location(r), root) == 0, "a directory opens");
    ok(tb_repo_check(r) == 0 && !tb_repo_keys(r), "nothing to check, no keys");
    ok(tb_repo_root(r, &dir) == 0 && dir && strcmp(dir, root) == 0, "the root is the directory itself");
    ok(tb_repo_list(r, &cat, &n) == 0 && n == 2, "lists two backups");
    ok(n == 2 && strstr(cat[0].dir, "/b2") && strstr(cat[1].dir, "/b1"), "newest first");
    shown = tb_repo_shown(r, "b1");
    is_str(shown, n == 2 ? cat[1].dir : "", "a backup shown as the catalog names it");
    free(shown);
    ok(tb_repo_prepare(r, n ? cat[0].dir : root) == 0, "a local candidate needs no preparing");
    tb_catalog_free(cat, n);

    ok(tb_repo_backup(r, &dir) == 0 && strcmp(dir, root) == 0, "as one backup: the directory");
    ok(tb_repo_dir(r, &dir) == 0 && strcmp(dir, root) == 0, "as a directory: itself");
    ok(tb_repo_wal_push(r, root, "x.wal.zst") == TB_EUSAGE, "no push to a directory");
    ok(tb_repo_wal_catch_up(r, root, NULL) == TB_EUSAGE, "nor a catch-up");
    ok(tb_repo_remove(r, "../b1") == TB_EUSAGE && tb_repo_remove(r, "") == TB_EUSAGE &&
       tb_repo_remove(r, "..") == TB_EUSAGE, "remove takes a backup's name only");
    ok(tb_repo_remove(r, "b1") == 0 && entries(root) == 1, "removes b1");
    ok(tb_repo_list(r, &cat, &n) == 0 && n == 1, "one backup left");
    tb_catalog_free(cat, n);
    tb_repo_free(r);

    data = tb_fs_join(root, "b2/data");
    ok(tb_repo_open(&r, data, NULL) == 0 && tb_repo_stream(r, &st) == 0, "a file as a stream");
    ok(st && tb_stream_read_full(st, buf, sizeof buf, &got) == 0 && got == 4 && memcmp(buf, "data", 4) == 0,
       "reads it");
    tb_stream_free(st);
    tb_repo_free(r);
    free(data);
}

static void local_wal(const char *root)
{
    struct tb_seg_info *segs = (void *)1, *gone = NULL;
    size_t n = 1, cut = 1, ngone = 0;
    char *none = tb_fs_join(root, "none");
    tb_repo *r = NULL;
    int rc = tb_repo_open(&r, none, NULL);
    ok(rc == 0, "a WAL archive's directory opens");
    /* (test 37 expires a real archive through the handle) */
    ok(tb_repo_wal_plan(r, 100, &segs, &n, &cut) == 0 && !n && !cut, "no index yet: an empty archive, nothing cut");
    ok(tb_repo_wal_drop(r, NULL, 0, &gone, &ngone) == TB_EIO && !gone && !ngone, "a drop needs the directory");
    free(segs);
    free(gone);
    tb_repo_free(r);
    free(none);
}

/* An unreachable service: what the handle downloaded into is gone after free. */
static void s3_scratch(const char *scratch)
{
    struct tb_s3_config c = { .endpoint = "http://127.0.0.1:1", .access_key = "AK", .secret_key = "SK",
                              .retries = -1 };
    struct tb_repo_opts o = { .s3 = &c, .scratch = scratch };
    struct tb_seg_info *segs = NULL, *gone = NULL;
    size_t n, cut, ngone;
    const char *dir = NULL;
    tb_repo *r = NULL;
    ok(tb_repo_open(&r, "s3://bucket/root/b1", &o) == 0 && tb_repo_check(r) == 0, "an s3:// handle with settings");
    ok(tb_repo_wal_drop(r, NULL, 0, &gone, &ngone) == TB_EUSAGE, "a drop needs a plan first");
    ok(tb_repo_backup(r, &dir) < 0 && !dir, "a backup from an unreachable service fails");
    ok(tb_repo_wal_plan(r, 1, &segs, &n, &cut) < 0 && !segs, "so does a WAL plan");
    ok(entries(scratch) >= 1, "what they made is still there: %d", entries(scratch));
    tb_repo_free(r);
    is_int(entries(scratch), 0, "and gone after free");

    ok(tb_repo_open(&r, "s3://bucket/root", NULL) == 0, "an s3:// handle without settings opens");
    ok(tb_repo_check(r) == TB_EUSAGE && tb_repo_root(r, &dir) == TB_EUSAGE, "and says there are no credentials");
    tb_repo_free(r);
}

int main(void)
{
    char root[256], *scratch;
    tb_repo *r = (void *)1;
    snprintf(root, sizeof root, "%s/test_repo.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    scratch = tb_fs_join(root, "scratch");
    ok(tb_repo_is_remote("s3://b/p") && !tb_repo_is_remote("/tmp/s3://x") && !tb_repo_is_remote(NULL),
       "s3:// is a remote location, a path is not");
    ok(tb_repo_open(&r, NULL, NULL) == TB_EUSAGE && !r, "a location is required");
    tb_repo_free(NULL);
    ok(tb_fs_mkdir_p(scratch, 0700) == 0, "scratch");
    s3_scratch(scratch);
    tb_fs_rm_rf(scratch);
    local_root(root);
    local_wal(root);
    tb_fs_rm_rf(root);
    free(scratch);
    return done_testing();
}
