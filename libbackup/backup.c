/* backup: a snapshot from the database's files (or the server's checkpoint), hashed and
 * streamed as tar. */
#include "backup.h"
#include "tar.h"
#include "catalog.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "rocks.h"
#include "snapshot.h"
#include "cli.h"
#include "config.h"
#include "content.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

/* The content hash runs in its own thread over the checkpoint while the archive is written:
 * in a copy of its own, recovered under the writer's policy (libbackup/rocks/content.h). */
struct hash_job {
    const char *dir;
    char *scratch;
    enum tb_policy policy, hint;
    char *hint_how;
    int threads;
    int rc;
    char msg[1024];
    struct tb_content c;
};

static void *hash_thread(void *arg)
{
    struct hash_job *j = arg;
    struct tb_content_opts co = { .policy = j->policy,
                                  .policy_hint = j->hint,
                                  .policy_hint_how = j->hint_how,
                                  .in_place = 1,
                                  .scratch = j->scratch,
                                  .hash_version = 2,
                                  .threads = j->threads };
    j->rc = tb_content_of(j->dir, &co, &j->c);
    if (j->rc < 0)
        snprintf(j->msg, sizeof j->msg, "%s", tb_error_last());
    return NULL;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

/* POST {"directory": dir} to the server's /admin/backup: the server writes a checkpoint. */
static int server_checkpoint(const char *url, const char *dir)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char *full = NULL, *body = NULL;
    long status = 0;
    CURLcode cr;
    int rc = 0;
    size_t ul = strlen(url);
    if (!c)
        return tb_error_set(TB_EIO, "cannot start HTTP client");
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    if (ul >= 13 && strncmp(url + ul - 13, "/admin/backup", 13) == 0)
        full = strndup(url, ul);
    else if (asprintf(&full, "%.*s/admin/backup", (int)ul, url) < 0)
        full = NULL;
    /* The body through jansson: a path may hold any byte a JSON string must escape. */
    json_t *obj = json_pack("{s:s}", "directory", dir);
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!full || !body) {
        rc = tb_error_set(TB_EIO, obj || !full ? "out of memory" : "the directory is not valid UTF-8 (%s)", dir);
        goto cleanup;
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 3600L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    cr = curl_easy_perform(c);
    if (cr != CURLE_OK) {
        rc = tb_error_set(TB_EIO, "server backup request failed: %s (%s)", curl_easy_strerror(cr), full);
        goto cleanup;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        rc = tb_error_set(TB_EIO, "server backup request failed: HTTP %ld (%s)", status, full);
cleanup:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(full);
    free(body);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files of dir, sorted, so archives of equal checkpoints list members alike. */
static int list_files(const char *dir, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            char **p = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *p);
            if (!p)
                break;
            v = p;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, *n, sizeof *v, cmp_str);
    *out = v;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int add_member(tb_tar_writer *w, struct tb_manifest *m, const char *name, const char *path)
{
    uint64_t size;
    char sha[65];
    unsigned mode;
    int rc = tb_tar_add_file(w, name, path, &size, sha, &mode);
    if (rc == 0)
        rc = tb_manifest_add_file(m, name, size, sha, mode);
    return rc;
}

/* The parent of an incremental backup: its outer manifest (it must be published, with its
 * archive's hash), and the path the child records: "../NAME" for a sibling directory,
 * else the absolute path. *parent is NULL when the chain is long enough for a full one. */
static int load_parent(const struct tb_backup_opts *o, struct tb_manifest **parent, char **rel)
{
    char *pabs = NULL, *cdir = NULL, *cparent = NULL, *ppar = NULL;
    int rc;
    *parent = NULL;
    *rel = NULL;
    rc = tb_catalog_read_manifest(o->parent_dir, o->keys, 1, parent);
    if (rc == TB_ENOENT)
        rc = tb_error_wrap(TB_ENOENT, "parent backup not found");
    else if (rc == TB_EUSAGE)
        rc = tb_error_set(TB_EUSAGE,
                          "parent backup %s is encrypted: encrypt the incremental too, with a key of the "
                          "parent's",
                          o->parent_dir);
    if (rc == 0 && (*parent)->encrypted && !o->keys)
        rc = tb_error_set(TB_EUSAGE, "parent backup %s is encrypted: encrypt the incremental too (--encrypt)",
                          o->parent_dir);
    if (rc == 0 && !(*parent)->archive_sha256[0])
        rc = tb_error_set(TB_EVERIFY, "parent backup's %s has no archive hash (%s)", TB_MANIFEST_NAME, o->parent_dir);
    if (rc == 0 && o->full_every && (*parent)->chain + 1 >= o->full_every) {
        tb_manifest_free(*parent);
        *parent = NULL;
        goto cleanup;
    }
    if (rc == 0) {
        pabs = realpath(o->parent_dir, NULL);
        cdir = o->backup_dir ? tb_fs_dirname(o->backup_dir) : NULL; /* a stream names it absolutely */
        cparent = cdir ? realpath(cdir, NULL) : NULL;
        ppar = pabs ? tb_fs_dirname(pabs) : NULL;
        if (!pabs)
            rc = tb_error_errno(TB_EIO, errno, "cannot resolve %s", o->parent_dir);
        else if (cparent && ppar && strcmp(cparent, ppar) == 0)
            rc = asprintf(rel, "../%s", strrchr(pabs, '/') + 1) < 0 ? tb_error_set(TB_EIO, "out of memory") : 0;
        else if (!(*rel = strdup(pabs)))
            rc = tb_error_set(TB_EIO, "out of memory");
    }
cleanup:
    if (rc < 0) {
        tb_manifest_free(*parent);
        *parent = NULL;
    }
    free(pabs);
    free(cdir);
    free(cparent);
    free(ppar);
    return rc;
}

/* Adds the checkpoint file at path as a reference when the parent has it unchanged; *done
 * says whether it did. */
static int add_reference(struct tb_manifest *m, const struct tb_manifest *parent, const char *name, const char *path,
                         int *done)
{
    const struct tb_manifest_file *pf = tb_manifest_find(parent, name);
    struct stat st;
    char sha[65];
    uint64_t size;
    int rc;
    *done = 0;
    if (!pf || stat(path, &st) < 0 || (uint64_t)st.st_size != pf->size)
        return 0;
    if ((rc = tb_stream_file_sha256(path, sha, &size)) < 0)
        return rc;
    if (size != pf->size || strcmp(sha, pf->sha256))
        return 0;
    if ((rc = tb_manifest_add_file(m, name, size, sha, st.st_mode & 07777)) < 0 ||
        (rc = tb_manifest_set_stored_in(m, pf->stored_in ? pf->stored_in : parent->archive_sha256)) < 0)
        return rc;
    *done = 1;
    return 0;
}

/* "id,id": the keys an encrypted backup is wrapped for, as its manifest records them. */
static int key_ids(tb_keyring *k, char **out)
{
    size_t n = tb_keyring_size(k), len = n * 20 + 1;
    char *s = calloc(1, len);
    if (!s)
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < n; i++)
        snprintf(s + strlen(s), len - strlen(s), "%s%s", i ? "," : "", tb_keyring_id(k, i));
    *out = s;
    return 0;
}

static void rfc3339_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One backup run: the phases below share it; backup_finish frees what they leave. */
struct backup_ctx {
    const struct tb_backup_opts *o;
    struct tb_manifest *m, *parent;
    char *parent_rel;
    char *stage, *scratch, *ckpt, *archive_path;
    struct tb_snapshot_info snap;
    struct hash_job job;
    pthread_t hasher;
    int hashing;
    tb_tar_writer *w;
    tb_stream *file, *top; /* below the writer until it owns them */
    tb_stream *sha, *crypt; /* in the writer's stack: read for the archive's hash */
};

/* A run killed with -9 leaves its checkpoint (hard links that pin deleted SSTs) and its
 * staging directory behind; they are ours to remove. Then where the archive is staged
 * (beside backup_dir) and a scratch directory of ours. */
static int backup_prepare(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    int rc, empty;
    if (!tb_fs_exists(o->db_path))
        return tb_error_set(TB_ENOENT, "database directory does not exist (%s)", o->db_path);
    if ((rc = tb_fs_remove_stale_temps(o->db_path)) < 0 ||
        (o->backup_dir && (rc = tb_fs_remove_stale_temps(o->backup_dir)) < 0))
        return rc;
    if (o->backup_dir) {
        if ((rc = tb_fs_is_empty_dir(o->backup_dir, &empty)) < 0)
            return rc;
        if (!empty)
            return tb_error_set(TB_EIO, "backup directory exists and is not empty (%s)", o->backup_dir);
    }
    if (o->parent_dir && (rc = load_parent(o, &c->parent, &c->parent_rel)) < 0)
        return rc;
    if (o->backup_dir) {
        if ((rc = tb_fs_temp_sibling(o->backup_dir, &c->stage)) < 0)
            return rc;
        if (asprintf(&c->scratch, "%s.work", c->stage) < 0)
            c->scratch = NULL;
    } else {
        const char *tmp = o->scratch ? o->scratch : "/tmp";
        if (asprintf(&c->scratch, "%s/.themis-backup.work-%d", tmp, (int)getpid()) < 0)
            c->scratch = NULL;
    }
    if (!c->scratch)
        return tb_error_set(TB_EIO, "out of memory");
    return tb_fs_mkdir_p(c->scratch, 0700);
}

/* The checkpoint goes beside the DB when we may write there, so SSTs are hard links. */
static int backup_checkpoint(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    char *db_parent = tb_fs_dirname(o->db_path);
    int rc = 0;
    if (db_parent && access(db_parent, W_OK) == 0)
        rc = tb_fs_temp_sibling(o->db_path, &c->ckpt);
    else
        c->ckpt = tb_fs_join(c->scratch, "checkpoint");
    free(db_parent);
    if (rc < 0 || !c->ckpt)
        return rc < 0 ? rc : tb_error_set(TB_EIO, "out of memory");
    if (o->server_url) {
        if ((rc = server_checkpoint(o->server_url, c->ckpt)) < 0)
            return rc;
        if (!tb_fs_exists(c->ckpt))
            return tb_error_set(TB_EIO, "server reported success but wrote no checkpoint (%s)", c->ckpt);
        return 0;
    }
    /* From the files alone: no RocksDB open of the live database, so no WAL replay
     * (docs/rocksdb-backup-notes.md, "Snapshot from files"). */
    struct tb_snapshot_opts so = { .wal_dir = o->db_wal_dir, .db_paths = o->db_paths, .ndb_paths = o->ndb_paths };
    return tb_snapshot_create(o->db_path, &so, c->ckpt, &c->snap);
}

/* Pre-flight: the archive is at most the checkpoint's size plus tar headers. */
static int backup_check_space(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    uint64_t need = 0, have = 0;
    int rc = tb_fs_tree_size(c->ckpt, &need);
    if (rc < 0)
        return rc;
    if (o->backup_dir) {
        char *parent = tb_fs_dirname(o->backup_dir);
        rc = parent ? tb_fs_free_bytes(parent, &have) : tb_error_set(TB_EIO, "out of memory");
        free(parent);
        if (rc < 0)
            return rc;
        if (have < need + need / 64 + (1 << 20))
            return tb_error_set(
                TB_ENOSPC, "not enough free space: backup needs up to %" PRIu64 " bytes, %" PRIu64 " available (%s)",
                need + need / 64 + (1 << 20), have, o->backup_dir);
    }
    if (o->progress_total)
        *o->progress_total = need;
    return 0;
}

/* The content hash starts in its thread; the archive is written meanwhile. */
static int backup_start_hash(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    c->job.dir = c->ckpt;
    c->job.policy = o->policy;
    c->job.threads = o->threads > 0 ? o->threads : 1; /* as the compression's: what the user allowed */
    /* The source's WAL (and its archive/) may still tell the policy where the snapshot's
     * does not (a flushed WAL holds no marker). */
    if (o->policy == TB_POLICY_UNKNOWN && !o->server_url) {
        const char *wd = o->db_wal_dir ? o->db_wal_dir : o->db_path;
        int told = tb_content_policy(o->db_path, wd, &c->job.hint, &c->job.hint_how);
        if (told < 0)
            return told;
        if (told == 0)
            c->job.hint = TB_POLICY_UNKNOWN;
    }
    if (!(c->job.scratch = tb_fs_join(c->scratch, "hash")))
        return tb_error_set(TB_EIO, "out of memory");
    if (pthread_create(&c->hasher, NULL, hash_thread, &c->job) != 0)
        return tb_error_set(TB_EIO, "cannot start hashing thread");
    c->hashing = 1;
    return 0;
}

/* What the manifest says before the archive is written: how, from where, its parent. */
static int backup_new_manifest(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    struct tb_manifest *m;
    char created[32];
    int rc = tb_manifest_new(&c->m);
    if (rc < 0)
        return rc;
    m = c->m;
    rfc3339_now(created, sizeof created);
    m->created = strdup(o->created ? o->created : created);
    m->tool_version = strdup(TB_VERSION);
    m->source_path = strdup(o->db_path);
    m->host = strdup(o->host ? o->host : "");
    m->method = strdup(o->server_url ? "server" : "file-snapshot");
    m->compression = strdup(o->compress ? "zstd" : "none");
    m->level = o->compress ? o->level : 0;
    m->threads = o->compress ? o->threads : 0;
    m->encrypted = o->keys != NULL;
    if (c->parent) {
        m->parent_path = c->parent_rel;
        c->parent_rel = NULL;
        memcpy(m->parent_sha256, c->parent->archive_sha256, sizeof m->parent_sha256);
        m->chain = c->parent->chain + 1;
    }
    return 0;
}

/* The archive's file in the staging directory, or the caller's stream. */
static int backup_open_target(struct backup_ctx *c)
{
    int rc;
    if (!c->o->backup_dir)
        return tb_stream_borrow(&c->file, c->o->out);
    if ((rc = tb_fs_mkdir_p(c->stage, 0755)) < 0)
        return rc;
    if (!(c->archive_path = tb_fs_join(c->stage, tb_manifest_archive_name(c->m))))
        return tb_error_set(TB_EIO, "out of memory");
    return tb_stream_file(&c->file, c->archive_path, "w");
}

/* Stack: tar -> counter -> [rate limit] -> [zstd] -> [encryption] -> sha256 -> file or stream. */
static int backup_open_archive(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    tb_stream *stack;
    int rc;
    if ((rc = backup_open_target(c)) < 0 || (rc = tb_stream_sha256(&c->sha, c->file)) < 0)
        return rc;
    c->file = NULL;
    c->top = c->sha;
    if (o->keys) {
        if ((rc = tb_crypt_writer(&c->crypt, c->sha, o->keys)) < 0)
            return rc;
        c->top = c->crypt;
        if ((rc = key_ids(o->keys, &c->m->key_ids)) < 0)
            return rc;
    }
    if (o->compress && (rc = tb_stream_zstd_writer(&stack, c->top, o->level, o->threads)) < 0)
        return rc;
    if (o->compress)
        c->top = stack;
    if ((rc = tb_stream_counter(&stack, c->top, o->progress, o->progress_arg)) < 0)
        return rc;
    c->top = stack;
    /* --rate-limit: the tar writer reads the database as fast as this takes its bytes. */
    if (o->rate_limit) {
        if ((rc = tb_stream_rate_limit(&stack, c->top, o->rate_limit, NULL, NULL, NULL)) < 0)
            return rc;
        c->top = stack;
    }
    stack = c->top;
    c->top = NULL;
    return tb_tar_writer_new(&c->w, stack);
}

/* The checkpoint's files under db/; SSTs never change once written, so an incremental
 * stores only what the parent lacks. */
static int backup_write_db(struct backup_ctx *c)
{
    char **files = NULL;
    size_t nfiles = 0;
    int rc = tb_tar_add_dir(c->w, "db/", 0755);
    if (rc == 0)
        rc = list_files(c->ckpt, &files, &nfiles);
    for (size_t i = 0; rc == 0 && i < nfiles; i++) {
        char *path = tb_fs_join(c->ckpt, files[i]), name[1024];
        int referenced = 0;
        snprintf(name, sizeof name, "db/%s", files[i]);
        if (!path)
            rc = tb_error_set(TB_EIO, "out of memory");
        else if (c->parent)
            rc = add_reference(c->m, c->parent, name, path, &referenced);
        if (rc == 0 && !referenced)
            rc = add_member(c->w, c->m, name, path);
        free(path);
    }
    free_list(files, nfiles);
    for (size_t i = 0; rc == 0 && i < c->m->nfiles; i++)
        c->m->db_bytes += c->m->files[i].size;
    return rc;
}

/* The config file under config/, and with config_dir the files it names there. */
static int backup_write_config(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    const char *base = o->config_file ? strrchr(o->config_file, '/') : NULL;
    struct tb_config *cfg = NULL;
    char **extra = NULL, name[1024];
    int rc;
    if (!o->config_file)
        return 0;
    c->m->include_config = 1;
    c->m->config_file = strdup(o->config_file);
    snprintf(name, sizeof name, "config/%s", base ? base + 1 : o->config_file);
    if ((rc = tb_config_load(&cfg, o->config_file)) < 0 || (rc = tb_tar_add_dir(c->w, "config/", 0755)) < 0 ||
        (rc = add_member(c->w, c->m, name, o->config_file)) < 0 || !o->config_dir)
        goto cleanup;
    if ((rc = tb_config_referenced_files(cfg, o->config_dir, &extra)) < 0)
        goto cleanup;
    for (char **p = extra; rc == 0 && *p; p++) {
        const char *rel = *p + strlen(o->config_dir);
        while (*rel == '/')
            rel++;
        snprintf(name, sizeof name, "config/%s", rel);
        if (!tb_manifest_find(c->m, name))
            rc = add_member(c->w, c->m, name, *p);
    }
cleanup:
    tb_config_free_list(extra);
    tb_config_free(cfg);
    return rc;
}

/* The manifest needs the content hash: wait for it and take what it found. */
static int backup_finish_hash(struct backup_ctx *c)
{
    struct tb_manifest *m = c->m;
    struct tb_content *ct = &c->job.c;
    pthread_join(c->hasher, NULL);
    c->hashing = 0;
    if (c->job.rc < 0)
        return tb_error_set(c->job.rc, "cannot hash the checkpoint: %s", c->job.msg);
    m->last_seq = ct->last_seq;
    memcpy(m->content_hash, ct->hex, sizeof ct->hex);
    m->content_hash_v2 = !ct->unavailable;
    m->hash_unavailable = ct->unavailable;
    ct->unavailable = NULL;
    if (!(m->write_policy = strdup(tb_policy_name(ct->policy))))
        return tb_error_set(TB_EIO, "out of memory");
    m->cfs = ct->cfs;
    m->ncf = ct->ncf;
    ct->cfs = NULL;
    ct->ncf = 0;
    if (c->o->content) {
        *c->o->content = *ct;
        memset(ct, 0, sizeof *ct);
    }
    return 0;
}

/* The archive ends with the manifest; its hash is what went to the file or stream. */
static int backup_close_archive(struct backup_ctx *c)
{
    char *json = NULL;
    int rc = tb_manifest_to_json(c->m, 0, &json);
    if (rc == 0)
        rc = tb_tar_add_bytes(c->w, TB_MANIFEST_NAME, json, strlen(json), 0644);
    free(json);
    if (rc == 0)
        rc = tb_tar_writer_close(c->w);
    if (rc < 0)
        return rc;
    if (c->crypt)
        tb_crypt_sealed_hex(c->crypt, c->m->archive_sha256);
    else
        tb_stream_sha256_hex(c->sha, c->m->archive_sha256);
    return 0;
}

/* stage/NAME: the manifest as JSON with flags, written atomically (encrypted for keys). */
static int write_manifest(struct backup_ctx *c, const char *name, int flags, tb_keyring *keys)
{
    char *path = tb_fs_join(c->stage, name), *json = NULL;
    int rc = path ? tb_manifest_to_json(c->m, flags, &json) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && keys)
        rc = tb_catalog_write_encrypted(path, json, strlen(json), keys);
    else if (rc == 0)
        rc = tb_fs_write_atomic(path, json, strlen(json), 0644);
    free(json);
    free(path);
    return rc;
}

/* The manifests beside the archive, then the staging directory renamed into place. */
static int backup_publish(struct backup_ctx *c)
{
    const struct tb_backup_opts *o = c->o;
    struct stat st;
    int rc, flags;
    if (!o->backup_dir)
        return 0;
    if (stat(c->archive_path, &st) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot stat %s", c->archive_path);
    c->m->archive_size = (uint64_t)st.st_size;
    /* The full manifest stays readable with the key, for incrementals built on this. */
    if (o->keys && (rc = write_manifest(c, TB_MANIFEST_ENC_NAME, TB_MANIFEST_ARCHIVE, o->keys)) < 0)
        return rc;
    flags = TB_MANIFEST_ARCHIVE | (o->keys && !o->plain_manifest ? TB_MANIFEST_REDACT : 0);
    if ((rc = write_manifest(c, TB_MANIFEST_NAME, flags, NULL)) < 0 || (rc = tb_fs_fsync_tree(c->stage)) < 0)
        return rc;
    /* An empty directory named by the user may stand where we publish. */
    if (tb_fs_exists(o->backup_dir) && rmdir(o->backup_dir) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot replace empty directory %s", o->backup_dir);
    return tb_fs_publish(c->stage, o->backup_dir);
}

/* Frees what the phases left and removes the temporary files; on failure nothing stays. */
static void backup_finish(struct backup_ctx *c, int rc, struct tb_manifest **out)
{
    if (c->hashing)
        pthread_join(c->hasher, NULL);
    tb_content_clear(&c->job.c);
    tb_tar_writer_free(c->w);
    tb_stream_free(c->top);
    tb_stream_free(c->file);
    if (c->ckpt)
        tb_fs_rm_rf(c->ckpt);
    if (c->scratch)
        tb_fs_rm_rf(c->scratch);
    if (rc < 0 && c->stage)
        tb_fs_rm_rf(c->stage);
    TB_FREE_ALL(c->job.hint_how, c->job.scratch, c->stage, c->scratch, c->ckpt, c->archive_path, c->parent_rel);
    tb_manifest_free(c->parent);
    if (rc == 0 && c->o->snapshot) {
        tb_snapshot_info_clear(c->o->snapshot);
        *c->o->snapshot = c->snap; /* the version goes with it */
        memset(&c->snap, 0, sizeof c->snap);
    }
    tb_snapshot_info_clear(&c->snap);
    if (rc == 0 && out)
        *out = c->m;
    else
        tb_manifest_free(c->m);
}

/* pgBackRest's cmdBackup: a list of phases over one context, one cleanup. */
static int (*const backup_phases[])(struct backup_ctx *) = {
    backup_prepare,      backup_checkpoint,    backup_check_space, backup_start_hash,
    backup_new_manifest, backup_open_archive,  backup_write_db,    backup_write_config,
    backup_finish_hash,  backup_close_archive, backup_publish,
};

int tb_backup_run(const struct tb_backup_opts *o, struct tb_manifest **out)
{
    struct backup_ctx c = { .o = o };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof backup_phases / sizeof *backup_phases; i++)
        rc = backup_phases[i](&c);
    backup_finish(&c, rc, out);
    return rc;
}

int tb_backup_rekey(const char *dir, tb_keyring *old, tb_keyring *add, int keep)
{
    struct tb_manifest *m = NULL;
    char *apath = NULL, *epath = tb_fs_join(dir, TB_MANIFEST_ENC_NAME), *mpath = tb_fs_join(dir, TB_MANIFEST_NAME);
    char *json = NULL, ids[TB_CRYPT_MAX_SLOTS * 20];
    int rc = epath && mpath ? tb_catalog_read_manifest(dir, NULL, 0, &m) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && !m->encrypted)
        rc = tb_error_set(TB_EUSAGE, "backup is not encrypted (%s)", dir);
    if (rc == 0 && !(apath = tb_fs_join(dir, tb_manifest_archive_name(m))))
        rc = tb_error_set(TB_EIO, "out of memory");
    /* The encrypted manifest first, the archive second: an interrupted run is redone with
     * the key that still opens the archive, and MANIFEST.json is rewritten last. */
    if (rc == 0 && tb_fs_exists(epath))
        rc = tb_crypt_rekey_file(epath, old, add, keep);
    if (rc == 0)
        rc = tb_crypt_rekey_file(apath, old, add, keep);
    if (rc == 0 && (rc = tb_crypt_file_key_ids(apath, ids, sizeof ids)) == 0) {
        struct stat st;
        if (stat(apath, &st) < 0) {
            rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", apath);
            goto cleanup;
        }
        m->archive_size = (uint64_t)st.st_size; /* the header's size changed */
        free(m->key_ids);
        m->key_ids = strdup(ids);
        rc = tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE | (m->redacted ? TB_MANIFEST_REDACT : 0), &json);
    }
    if (rc == 0)
        rc = tb_fs_write_atomic(mpath, json, strlen(json), 0644);
cleanup:
    tb_manifest_free(m);
    free(apath);
    free(epath);
    free(mpath);
    free(json);
    return rc;
}

int tb_backup_lock(int *fd, const char *dir)
{
    char *parent = tb_fs_dirname(dir);
    int rc = 0;
    *fd = -1;
    /* The parent is created here rather than later by the publish, to hold the lock on. */
    if (parent && tb_fs_mkdir_p(parent, 0755) == 0)
        *fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot open %s", parent ? parent : dir);
    } else if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        rc = tb_error_set(TB_EIO, "another themis-backup is writing into %s; not starting a second one", parent);
        close(*fd);
        *fd = -1;
    }
    free(parent);
    return rc;
}
