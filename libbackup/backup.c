/* backup: a snapshot from the database's files (or the server's checkpoint), hashed and
 * streamed as tar. */
#include "backup.h"
#include "backup_archive.h"
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "rocks.h"
#include "snapshot.h"
#include "cli.h"
#include "config.h"
#include "content.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

/* The content hash runs in its own thread over the checkpoint while the archive is written:
 * in a copy of its own, recovered under the writer's policy (libbackup/content.h). */
struct hash_job {
    const char *dir;
    char *scratch;
    enum tb_policy policy, hint;
    char *hint_how;
    int rc;
    char msg[1024];
    struct tb_content c;
};

static void *hash_thread(void *arg)
{
    struct hash_job *j = arg;
    struct tb_content_opts co = { .policy = j->policy, .policy_hint = j->hint, .policy_hint_how = j->hint_how,
                                  .in_place = 1, .scratch = j->scratch };
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

static int add_member(tb_archive_writer *w, struct tb_manifest *m, const char *name, const char *path)
{
    uint64_t size;
    char sha[65];
    unsigned mode;
    int rc = tb_archive_add_file(w, name, path, &size, sha, &mode);
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
        rc = tb_error_set(TB_EUSAGE, "parent backup %s is encrypted: encrypt the incremental too, with a key of the "
                          "parent's", o->parent_dir);
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
static int add_reference(struct tb_manifest *m, const struct tb_manifest *parent, const char *name,
                         const char *path, int *done)
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

int tb_backup_run(const struct tb_backup_opts *o, struct tb_manifest **out)
{
    struct tb_manifest *m = NULL;
    struct hash_job job = { 0 };
    struct tb_snapshot_info snap = { 0 };
    tb_archive_writer *w = NULL;
    tb_stream *file = NULL, *sha = NULL, *top = NULL, *crypt = NULL;
    char *stage = NULL, *scratch = NULL, *ckpt = NULL, *db_parent = NULL;
    char *archive_path = NULL, *manifest_path = NULL, *json = NULL, *json_out = NULL;
    char **files = NULL, **extra = NULL;
    size_t nfiles = 0;
    struct tb_config *cfg = NULL;
    uint64_t need = 0, have = 0;
    pthread_t hasher;
    tb_stream *counter = NULL;
    struct tb_manifest *parent = NULL;
    char *parent_rel = NULL;
    int rc = 0, thread_started = 0, empty;
    char created[32];

    if (!tb_fs_exists(o->db_path))
        return tb_error_set(TB_ENOENT, "database directory does not exist (%s)", o->db_path);

    /* A run killed with -9 leaves its checkpoint (hard links that pin deleted SSTs) and its
     * staging directory behind; they are ours to remove. */
    if ((rc = tb_fs_remove_stale_temps(o->db_path)) < 0 ||
        (o->backup_dir && (rc = tb_fs_remove_stale_temps(o->backup_dir)) < 0))
        return rc;
    if (o->backup_dir) {
        if ((rc = tb_fs_is_empty_dir(o->backup_dir, &empty)) < 0)
            return rc;
        if (!empty)
            return tb_error_set(TB_EIO, "backup directory exists and is not empty (%s)", o->backup_dir);
        if (o->parent_dir && (rc = load_parent(o, &parent, &parent_rel)) < 0)
            return rc;
        if ((rc = tb_fs_temp_sibling(o->backup_dir, &stage)) < 0)
            goto cleanup;
        if (asprintf(&scratch, "%s.work", stage) < 0)
            scratch = NULL;
    } else {
        if (o->parent_dir && (rc = load_parent(o, &parent, &parent_rel)) < 0)
            return rc;
        if (asprintf(&scratch, "%s/.themis-backup.work-%d", o->scratch ? o->scratch : "/tmp", (int)getpid()) < 0)
            scratch = NULL;
    }
    if (!scratch) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = tb_fs_mkdir_p(scratch, 0700)) < 0)
        goto cleanup;

    /* The checkpoint goes beside the DB when we may write there, so SSTs are hard links. */
    db_parent = tb_fs_dirname(o->db_path);
    if (db_parent && access(db_parent, W_OK) == 0)
        rc = tb_fs_temp_sibling(o->db_path, &ckpt);
    else
        ckpt = tb_fs_join(scratch, "checkpoint");
    if (rc < 0 || !ckpt) {
        rc = rc < 0 ? rc : tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if (o->server_url) {
        if ((rc = server_checkpoint(o->server_url, ckpt)) < 0)
            goto cleanup;
        if (!tb_fs_exists(ckpt)) {
            rc = tb_error_set(TB_EIO, "server reported success but wrote no checkpoint (%s)", ckpt);
            goto cleanup;
        }
    } else {
        /* From the files alone: no RocksDB open of the live database, so no WAL replay
         * (docs/rocksdb-backup-notes.md, "Snapshot from files"). */
        struct tb_snapshot_opts so = { .wal_dir = o->db_wal_dir, .db_paths = o->db_paths, .ndb_paths = o->ndb_paths };
        if ((rc = tb_snapshot_create(o->db_path, &so, ckpt, &snap)) < 0)
            goto cleanup;
    }

    /* Pre-flight: the archive is at most the checkpoint's size plus tar headers. */
    if ((rc = tb_fs_tree_size(ckpt, &need)) < 0)
        goto cleanup;
    if (o->backup_dir) {
        char *parent = tb_fs_dirname(o->backup_dir);
        rc = parent ? tb_fs_free_bytes(parent, &have) : tb_error_set(TB_EIO, "out of memory");
        free(parent);
        if (rc < 0)
            goto cleanup;
        if (have < need + need / 64 + (1 << 20)) {
            rc = tb_error_set(TB_ENOSPC, "not enough free space: backup needs up to %" PRIu64
                              " bytes, %" PRIu64 " available (%s)", need + need / 64 + (1 << 20), have,
                              o->backup_dir);
            goto cleanup;
        }
    }
    if (o->progress_total)
        *o->progress_total = need;

    job.dir = ckpt;
    job.policy = o->policy;
    /* The source's WAL (and its archive/) may still tell the policy where the snapshot's
     * does not (a flushed WAL holds no marker). */
    if (o->policy == TB_POLICY_UNKNOWN && !o->server_url) {
        const char *wd = o->db_wal_dir ? o->db_wal_dir : o->db_path;
        int told = tb_content_policy(o->db_path, wd, &job.hint, &job.hint_how);
        if (told < 0) {
            rc = told;
            goto cleanup;
        }
        if (told == 0)
            job.hint = TB_POLICY_UNKNOWN;
    }
    job.scratch = tb_fs_join(scratch, "hash");
    if (!job.scratch) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if (pthread_create(&hasher, NULL, hash_thread, &job) != 0) {
        rc = tb_error_set(TB_EIO, "cannot start hashing thread");
        goto cleanup;
    }
    thread_started = 1;

    if ((rc = tb_manifest_new(&m)) < 0)
        goto cleanup;
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
    if (parent) {
        m->parent_path = parent_rel;
        parent_rel = NULL;
        memcpy(m->parent_sha256, parent->archive_sha256, sizeof m->parent_sha256);
        m->chain = parent->chain + 1;
    }

    /* Stack: tar -> counter -> [zstd] -> [encryption] -> sha256 -> file or stream. */
    if (o->backup_dir) {
        if ((rc = tb_fs_mkdir_p(stage, 0755)) < 0)
            goto cleanup;
        archive_path = tb_fs_join(stage, tb_manifest_archive_name(m));
        if (!archive_path) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if ((rc = tb_stream_file(&file, archive_path, "w")) < 0)
            goto cleanup;
    } else if ((rc = tb_stream_borrow(&file, o->out)) < 0) {
        goto cleanup;
    }
    if ((rc = tb_stream_sha256(&sha, file)) < 0)
        goto cleanup;
    file = NULL;
    top = sha;
    if (o->keys) {
        if ((rc = tb_crypt_writer(&crypt, sha, o->keys)) < 0)
            goto cleanup;
        top = crypt;
        if ((rc = key_ids(o->keys, &m->key_ids)) < 0)
            goto cleanup;
    }
    if (o->compress) {
        tb_stream *below = top;
        if ((rc = tb_stream_zstd_writer(&top, below, o->level, o->threads)) < 0) {
            top = below;
            goto cleanup;
        }
    }
    if ((rc = tb_stream_counter(&counter, top, o->progress, o->progress_arg)) < 0)
        goto cleanup;
    top = counter;
    /* --rate-limit: the tar writer reads the database as fast as this takes its bytes. */
    if (o->rate_limit) {
        tb_stream *rl;
        if ((rc = tb_stream_rate_limit(&rl, top, o->rate_limit, NULL, NULL, NULL)) < 0)
            goto cleanup;
        top = rl;
    }
    {
        tb_stream *stack = top;
        top = NULL;
        if ((rc = tb_archive_writer_new(&w, stack)) < 0)
            goto cleanup;
    }

    if ((rc = tb_archive_add_dir(w, "db/", 0755)) < 0)
        goto cleanup;
    if ((rc = list_files(ckpt, &files, &nfiles)) < 0)
        goto cleanup;
    for (size_t i = 0; i < nfiles; i++) {
        char *path = tb_fs_join(ckpt, files[i]), name[1024];
        int referenced = 0;
        snprintf(name, sizeof name, "db/%s", files[i]);
        /* SSTs never change once written: an incremental stores only what the parent lacks. */
        if (path && parent && (rc = add_reference(m, parent, name, path, &referenced)) < 0) {
            free(path);
            goto cleanup;
        }
        if (referenced) {
            free(path);
            continue;
        }
        rc = path ? add_member(w, m, name, path) : tb_error_set(TB_EIO, "out of memory");
        free(path);
        if (rc < 0)
            goto cleanup;
    }
    for (size_t i = 0; i < m->nfiles; i++)
        m->db_bytes += m->files[i].size;

    if (o->config_file) {
        const char *base = strrchr(o->config_file, '/');
        char name[1024];
        m->include_config = 1;
        m->config_file = strdup(o->config_file);
        if ((rc = tb_config_load(&cfg, o->config_file)) < 0)
            goto cleanup;
        if ((rc = tb_archive_add_dir(w, "config/", 0755)) < 0)
            goto cleanup;
        snprintf(name, sizeof name, "config/%s", base ? base + 1 : o->config_file);
        if ((rc = add_member(w, m, name, o->config_file)) < 0)
            goto cleanup;
        if (o->config_dir) {
            size_t dl = strlen(o->config_dir);
            if ((rc = tb_config_referenced_files(cfg, o->config_dir, &extra)) < 0)
                goto cleanup;
            for (char **p = extra; *p; p++) {
                const char *rel = *p + dl;
                while (*rel == '/')
                    rel++;
                snprintf(name, sizeof name, "config/%s", rel);
                if (tb_manifest_find(m, name))
                    continue;
                if ((rc = add_member(w, m, name, *p)) < 0)
                    goto cleanup;
            }
        }
    }

    /* The manifest needs the content hash: wait for it, then end the archive with it. */
    pthread_join(hasher, NULL);
    thread_started = 0;
    if (job.rc < 0) {
        rc = tb_error_set(job.rc, "cannot hash the checkpoint: %s", job.msg);
        goto cleanup;
    }
    m->last_seq = job.c.last_seq;
    memcpy(m->content_hash, job.c.hex, sizeof job.c.hex);
    m->hash_unavailable = job.c.unavailable;
    job.c.unavailable = NULL;
    if (!(m->write_policy = strdup(tb_policy_name(job.c.policy)))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    m->cfs = job.c.cfs;
    m->ncf = job.c.ncf;
    job.c.cfs = NULL;
    job.c.ncf = 0;
    if (o->content) {
        *o->content = job.c;
        memset(&job.c, 0, sizeof job.c);
    }
    if ((rc = tb_manifest_to_json(m, 0, &json)) < 0)
        goto cleanup;
    if ((rc = tb_archive_add_bytes(w, TB_MANIFEST_NAME, json, strlen(json), 0644)) < 0)
        goto cleanup;
    if ((rc = tb_archive_writer_close(w)) < 0)
        goto cleanup;
    if (crypt)
        tb_crypt_sealed_hex(crypt, m->archive_sha256);
    else
        tb_stream_sha256_hex(sha, m->archive_sha256);
    if (o->backup_dir) {
        struct stat st;
        if (stat(archive_path, &st) < 0) {
            rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", archive_path);
            goto cleanup;
        }
        m->archive_size = (uint64_t)st.st_size;
        if (o->keys) {
            /* The full manifest stays readable with the key, for incrementals built on this. */
            char *epath = tb_fs_join(stage, TB_MANIFEST_ENC_NAME);
            if ((rc = tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE, &json_out)) == 0)
                rc = epath ? tb_catalog_write_encrypted(epath, json_out, strlen(json_out), o->keys)
                           : tb_error_set(TB_EIO, "out of memory");
            free(epath);
            free(json_out);
            json_out = NULL;
            if (rc < 0)
                goto cleanup;
        }
        if ((rc = tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE | (o->keys && !o->plain_manifest ? TB_MANIFEST_REDACT : 0),
                                      &json_out)) < 0)
            goto cleanup;
        manifest_path = tb_fs_join(stage, TB_MANIFEST_NAME);
        if (!manifest_path) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if ((rc = tb_fs_write_atomic(manifest_path, json_out, strlen(json_out), 0644)) < 0)
            goto cleanup;
        if ((rc = tb_fs_fsync_tree(stage)) < 0)
            goto cleanup;
        /* An empty directory named by the user may stand where we publish. */
        if (tb_fs_exists(o->backup_dir) && rmdir(o->backup_dir) < 0) {
            rc = tb_error_errno(TB_EIO, errno, "cannot replace empty directory %s", o->backup_dir);
            goto cleanup;
        }
        if ((rc = tb_fs_publish(stage, o->backup_dir)) < 0)
            goto cleanup;
    }

cleanup:
    if (thread_started)
        pthread_join(hasher, NULL);
    tb_content_clear(&job.c);
    free(job.hint_how);
    free(json);
    free(json_out);
    free(manifest_path);
    tb_config_free_list(extra);
    tb_config_free(cfg);
    free_list(files, nfiles);
    tb_archive_writer_free(w);
    tb_stream_free(top);
    tb_stream_free(file);
    if (ckpt)
        tb_fs_rm_rf(ckpt);
    if (scratch)
        tb_fs_rm_rf(scratch);
    if (rc < 0 && stage)
        tb_fs_rm_rf(stage);
    free(stage);
    free(scratch);
    free(ckpt);
    free(db_parent);
    free(archive_path);
    free(job.scratch);
    tb_manifest_free(parent);
    free(parent_rel);
    if (rc == 0 && o->snapshot) {
        tb_snapshot_info_clear(o->snapshot);
        *o->snapshot = snap; /* the version goes with it */
        memset(&snap, 0, sizeof snap);
    }
    tb_snapshot_info_clear(&snap);
    if (rc == 0 && out)
        *out = m;
    else
        tb_manifest_free(m);
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
            goto out;
        }
        m->archive_size = (uint64_t)st.st_size; /* the header's size changed */
        free(m->key_ids);
        m->key_ids = strdup(ids);
        rc = tb_manifest_to_json(m, TB_MANIFEST_ARCHIVE | (m->redacted ? TB_MANIFEST_REDACT : 0), &json);
    }
    if (rc == 0)
        rc = tb_fs_write_atomic(mpath, json, strlen(json), 0644);
out:
    tb_manifest_free(m);
    free(apath);
    free(epath);
    free(mpath);
    free(json);
    return rc;
}
