/* test_backup: tb_backup_run's phases on a small RocksDB: a directory backup (archive,
 * manifest, hash), an incremental on it, a stream, and failures that leave nothing behind. */
#include "tap.h"
#include "dbfix.h"
#include "backup.h"
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "stream.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256], db[300], bk[300], backups[300];

#define like_last(s) ok(strstr(tb_error_last(), s) != NULL, "  saying so: %s", tb_error_last())

/* Names in dir, hidden ones too (temporaries are ".NAME.tmp-..."). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return d ? n : -1;
}

static void base_opts(struct tb_backup_opts *o, const char *dir)
{
    *o = (struct tb_backup_opts){
        .db_path = db, .backup_dir = dir, .scratch = root, .level = 3, .host = "unit", .created = "2026-01-02T03:04:05Z"
    };
}

static void test_full(void)
{
    struct tb_backup_opts o;
    struct tb_manifest *m = NULL, *back = NULL;
    struct tb_snapshot_info snap = { 0 };
    struct tb_content content = { 0 };
    uint64_t total = 0, size = 0;
    char *apath = NULL, *mpath = NULL, sha[65] = "";
    int rc;
    snprintf(bk, sizeof bk, "%s/root/b1", root);
    base_opts(&o, bk);
    o.snapshot = &snap;
    o.content = &content;
    o.progress_total = &total;
    rc = tb_backup_run(&o, &m);
    is_int(rc, 0, "a backup of a stopped database: %s", rc < 0 ? tb_error_last() : "ok");
    if (rc < 0)
        return;
    is_int(m->last_seq, 600, "the manifest's last sequence is the database's");
    ok(m->nfiles > 3 && m->db_bytes > 0, "it lists the checkpoint's files (%zu, %llu bytes)", m->nfiles,
       (unsigned long long)m->db_bytes);
    ok(tb_manifest_find(m, "db/CURRENT") != NULL, "db/CURRENT among them");
    is_str(m->created, "2026-01-02T03:04:05Z", "the creation time given is recorded");
    is_str(m->method, "file-snapshot", "made from the files");
    ok(strlen(m->content_hash) == 64 && !m->hash_unavailable, "with a content hash");
    is_str(m->write_policy, "write_committed", "and the write policy detected");
    ok(total > 0, "the bytes to archive are reported before archiving (%llu)", (unsigned long long)total);
    ok(snap.version != 0, "the snapshot's report is handed back");
    is_int(content.last_seq, 600, "and the content as recorded");
    apath = tb_fs_join(bk, tb_manifest_archive_name(m));
    mpath = tb_fs_join(bk, TB_MANIFEST_NAME);
    ok(tb_stream_file_sha256(apath, sha, &size) == 0, "the archive is published (%s)", tb_manifest_archive_name(m));
    is_str(sha, m->archive_sha256, "its SHA-256 is the manifest's");
    is_int(size, m->archive_size, "and its size");
    ok(tb_fs_exists(mpath), "MANIFEST.json beside it");
    rc = tb_catalog_read_manifest(bk, NULL, 1, &back);
    ok(rc == 0 && back->last_seq == 600 && strcmp(back->archive_sha256, m->archive_sha256) == 0,
       "which reads back with the same sequence and archive hash");
    is_int(entries(bk), 2, "the backup holds the archive and MANIFEST.json");
    tb_manifest_free(back);
    tb_manifest_free(m);
    tb_snapshot_info_clear(&snap);
    tb_content_clear(&content);
    free(apath);
    free(mpath);
}

static void test_incremental(void)
{
    struct tb_backup_opts o;
    struct tb_manifest *m = NULL;
    char dir[320], dir3[320];
    size_t referenced = 0;
    int rc;
    snprintf(dir, sizeof dir, "%s/root/b2", root);
    base_opts(&o, dir);
    o.parent_dir = bk;
    rc = tb_backup_run(&o, &m);
    is_int(rc, 0, "an incremental on it: %s", rc < 0 ? tb_error_last() : "ok");
    if (rc < 0)
        return;
    is_str(m->parent_path, "../b1", "the parent is named relative to its sibling");
    is_int(m->chain, 1, "chain 1");
    for (size_t i = 0; i < m->nfiles; i++)
        referenced += m->files[i].stored_in != NULL;
    ok(referenced >= 3, "the unchanged tables are referenced, not stored again (%zu)", referenced);
    tb_manifest_free(m);
    m = NULL;
    o.full_every = 2; /* on b2 (chain 1) the chain would reach 2 */
    o.parent_dir = dir;
    snprintf(dir3, sizeof dir3, "%s/root/b3", root);
    o.backup_dir = dir3;
    rc = tb_backup_run(&o, &m);
    ok(rc == 0 && !m->parent_path && m->chain == 0, "--full-every 2 on a chain of 1: a full backup instead");
    tb_manifest_free(m);
}

static void test_stream(void)
{
    struct tb_backup_opts o;
    struct tb_manifest *m = NULL;
    tb_stream *out = NULL;
    const char *data;
    size_t len = 0;
    int rc;
    base_opts(&o, NULL);
    o.compress = 0;
    tb_stream_mem_writer(&out);
    o.out = out;
    rc = tb_backup_run(&o, &m);
    is_int(rc, 0, "a backup to a stream: %s", rc < 0 ? tb_error_last() : "ok");
    data = tb_stream_mem_data(out, &len);
    ok(data && len > 1024 && memcmp(data + 257, "ustar", 5) == 0, "the stream is tar (%zu bytes)", len);
    ok(m && strlen(m->archive_sha256) == 64, "with the archive's hash in the manifest");
    tb_manifest_free(m);
    tb_stream_free(out);
}

/* A failing phase leaves nothing: no backup, no staging, no checkpoint beside the DB. */
static void test_errors(void)
{
    struct tb_backup_opts o;
    struct tb_manifest *m = NULL;
    char dir[320], missing[320], parent[320];
    int before_root, before_db, rc;
    snprintf(dir, sizeof dir, "%s/root/bad", root);
    snprintf(missing, sizeof missing, "%s/no-such-db", root);
    snprintf(parent, sizeof parent, "%s/root/no-such-parent", root);
    base_opts(&o, dir);
    o.db_path = missing;
    is_int(tb_backup_run(&o, &m), TB_ENOENT, "a database that does not exist: TB_ENOENT");
    like_last("database directory does not exist");

    base_opts(&o, bk);
    is_int(tb_backup_run(&o, &m), TB_EIO, "into a backup that exists: TB_EIO");
    like_last("backup directory exists and is not empty");

    before_root = entries(backups);
    before_db = entries(root);
    base_opts(&o, dir);
    o.parent_dir = parent;
    is_int(tb_backup_run(&o, &m), TB_ENOENT, "a parent that does not exist: TB_ENOENT");
    like_last("parent backup not found");

    snprintf(missing, sizeof missing, "%s/no-such.conf", root);
    o.parent_dir = NULL;
    o.config_file = missing;
    rc = tb_backup_run(&o, &m);
    ok(rc < 0 && m == NULL, "a config that cannot be read fails after the archive is begun (%s)", tb_error_last());
    ok(!tb_fs_exists(dir), "nothing is published");
    is_int(entries(backups), before_root, "no staging directory is left beside it");
    is_int(entries(root), before_db, "no checkpoint or scratch is left beside the database");
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_backup.%d", (int)getpid());
    snprintf(db, sizeof db, "%s/db", root);
    snprintf(backups, sizeof backups, "%s/root", root);
    tb_fs_mkdir_p(root, 0700);
    if (dbfix_make_db(db, 0) < 0) {
        ok(0, "a database to back up");
        return done_testing();
    }
    test_full();
    test_incremental();
    test_stream();
    test_errors();
    tb_fs_rm_rf(root);
    return done_testing();
}
