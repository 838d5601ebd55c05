/* rocks: safe RocksDB access for backup, verification and hashing. */
#include "rocks.h"
#include "error.h"
#include "fs.h"
#include "mem.h"
#include "merge.h"
#include "rocksopts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/evp.h>
#include <xxhash.h>
#include <rocksdb/c.h>

struct tb_rocks {
    rocksdb_t *db;
    char *scratch;
    rocksdb_options_t *opts;
    char *path;
    enum tb_rocks_mode mode;
    size_t ncf;
    char **cf_names; /* from rocksdb_list_column_families */
    rocksdb_column_family_handle_t **cfs;
};

static int rocks_err(int code, char *err, const char *what, const char *path)
{
    tb_error_set(code, "%s: %s (%s)", what, err, path);
    free(err);
    return code;
}

static void close_handles(tb_rocks *r);

void tb_rocks_free(tb_rocks *r)
{
    if (!r)
        return;
    close_handles(r);
    if (r->opts)
        rocksdb_options_destroy(r->opts);
    free(r->path);
    free(r->scratch);
    free(r);
}

/* Lists the column families and opens them all (r->opts set). */
static int open_handles(tb_rocks *r)
{
    rocksdb_options_t **cfo = NULL;
    char *err = NULL;
    int rc = 0;
    r->cf_names = rocksdb_list_column_families(r->opts, r->path, &r->ncf, &err);
    if (err)
        return rocks_err(TB_EIO, err, "cannot list column families", r->path);
    r->cfs = calloc(r->ncf, sizeof *r->cfs);
    if (!r->cfs) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    /* Each CF with the merge operator its OPTIONS file names (ThemisDB's, registered under
     * the same name): without it RocksDB cannot read merge operands at all. */
    if ((rc = tb_merge_cf_options(r->path, r->opts, (const char *const *)r->cf_names, r->ncf, &cfo)) < 0) {
        tb_error_wrap(rc, "cannot open database (%s)", r->path);
        goto cleanup;
    }
    if (r->mode == TB_ROCKS_SECONDARY)
        r->db = rocksdb_open_as_secondary_column_families(r->opts, r->path, r->scratch, (int)r->ncf,
                                                          (const char *const *)r->cf_names,
                                                          (const rocksdb_options_t *const *)cfo, r->cfs, &err);
    else
        r->db = rocksdb_open_for_read_only_column_families(r->opts, r->path, (int)r->ncf,
                                                           (const char *const *)r->cf_names,
                                                           (const rocksdb_options_t *const *)cfo, r->cfs, 0, &err);
    if (err)
        rc = rocks_err(TB_EIO, err, "cannot open database", r->path);
cleanup:
    tb_merge_cf_options_free(cfo, r->ncf);
    return rc;
}

static void close_handles(tb_rocks *r)
{
    for (size_t i = 0; r->cfs && i < r->ncf; i++)
        if (r->cfs[i])
            rocksdb_column_family_handle_destroy(r->cfs[i]);
    if (r->db)
        rocksdb_close(r->db);
    if (r->cf_names)
        rocksdb_list_column_families_destroy(r->cf_names, r->ncf);
    free(r->cfs);
    r->db = NULL;
    r->cfs = NULL;
    r->cf_names = NULL;
    r->ncf = 0;
}

/* RocksDB locks LOCK with fcntl (F_SETLK); F_GETLK also reports OFD locks. */
int tb_rocks_is_live(const char *path)
{
    char *lock = tb_fs_join(path, "LOCK");
    struct flock fl = { 0 };
    int fd = lock ? open(lock, O_RDONLY | O_CLOEXEC) : -1, live = 0;
    free(lock);
    if (fd < 0)
        return 0;
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        live = 1;
    close(fd);
    return live;
}

void tb_rocks_paths_single(rocksdb_options_t *o, const char *dir)
{
    const rocksdb_dbpath_t *paths[4];
    for (int i = 0; i < 4; i++)
        paths[i] = rocksdb_dbpath_create(dir, UINT64_MAX >> 1);
    rocksdb_options_set_db_paths(o, paths, 4);
    for (int i = 0; i < 4; i++)
        rocksdb_dbpath_destroy((rocksdb_dbpath_t *)paths[i]);
}

int tb_rocks_open(tb_rocks **out, const char *path, enum tb_rocks_mode mode, const char *scratch)
{
    return tb_rocks_open_layout(out, path, mode, scratch, NULL, NULL, 0);
}

/* A directory without CURRENT is no RocksDB; say so instead of RocksDB's wording. */
static int check_db_dir(const char *path)
{
    char *current = tb_fs_join(path, "CURRENT");
    int rc = 0;
    if (!tb_fs_exists(path))
        rc = tb_error_set(TB_ENOENT, "database directory does not exist (%s)", path);
    else if (!current || !tb_fs_exists(current))
        rc = tb_error_set(TB_EIO, "not a RocksDB database: no CURRENT file (%s)", path);
    free(current);
    return rc;
}

/* Memory that does not grow with the database: every table's index and filter blocks go
 * into one small block cache instead of staying in memory per open table (which RocksDB
 * does by default, and a secondary must open every table). */
static void small_block_cache(rocksdb_options_t *o)
{
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(TB_ROCKS_CACHE);
    rocksdb_block_based_options_set_block_cache(t, cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_cache_destroy(cache); /* the table factory holds its own reference */
    rocksdb_block_based_options_destroy(t);
}

static int set_db_paths(rocksdb_options_t *o, const char *const *db_paths, size_t n)
{
    rocksdb_dbpath_t **dp;
    if (!n)
        return 0;
    if (!(dp = calloc(n, sizeof *dp)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < n; i++)
        dp[i] = rocksdb_dbpath_create(db_paths[i], UINT64_MAX / 2); /* sizes matter only to writers */
    rocksdb_options_set_db_paths(o, (const rocksdb_dbpath_t **)dp, n);
    for (size_t i = 0; i < n; i++)
        rocksdb_dbpath_destroy(dp[i]);
    free(dp);
    return 0;
}

/* r->opts: TB_ROCKS_OPTIONS, logs into scratch, the database's layout. */
static int make_options(tb_rocks *r, const char *scratch, const char *wal_dir, const char *const *db_paths,
                        size_t ndb_paths)
{
    rocksdb_options_t *base = rocksdb_options_create();
    char *err = NULL;
    if (!base)
        return tb_error_set(TB_EIO, "out of memory");
    r->opts = rocksdb_options_create();
    rocksdb_get_options_from_string(base, TB_ROCKS_OPTIONS, r->opts, &err);
    rocksdb_options_destroy(base);
    if (err)
        return rocks_err(TB_EIO, err, "bad RocksDB options", TB_ROCKS_OPTIONS);
    rocksdb_options_set_db_log_dir(r->opts, scratch);
    tb_rocks_paths_single(r->opts, r->path);
    rocksdb_options_set_info_log_level(r->opts, 2 /* WARN */);
    small_block_cache(r->opts);
    if (r->mode == TB_ROCKS_SECONDARY)
        rocksdb_options_set_max_open_files(r->opts, -1); /* required by secondaries */
    if (wal_dir)
        rocksdb_options_set_wal_dir(r->opts, wal_dir);
    return set_db_paths(r->opts, db_paths, ndb_paths);
}

int tb_rocks_open_layout(tb_rocks **out, const char *path, enum tb_rocks_mode mode, const char *scratch,
                         const char *wal_dir, const char *const *db_paths, size_t ndb_paths)
{
    tb_rocks *r = calloc(1, sizeof *r);
    int rc = 0;

    if (!r || !(r->path = strdup(path)) || !(r->scratch = strdup(scratch))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    /* A secondary can miss the data of a 2PC transaction whose Prepare sits in a WAL older
     * than what its column family flushed (docs/rocksdb-backup-notes.md): read a stopped DB
     * read-only, which recovers exactly as the server will. */
    if (mode == TB_ROCKS_AUTO)
        mode = tb_rocks_is_live(path) ? TB_ROCKS_SECONDARY : TB_ROCKS_READONLY;
    r->mode = mode;
    if ((rc = check_db_dir(path)) < 0 || (rc = tb_fs_mkdir_p(scratch, 0700)) < 0 ||
        (rc = make_options(r, scratch, wal_dir, db_paths, ndb_paths)) < 0 || (rc = open_handles(r)) < 0)
        goto cleanup;
    if (mode == TB_ROCKS_SECONDARY && (rc = tb_rocks_catch_up(r)) < 0)
        goto cleanup;
    *out = r;
    r = NULL;
cleanup:
    tb_rocks_free(r);
    return rc;
}

int tb_rocks_catch_up(tb_rocks *r)
{
    char *err = NULL;
    int rc;
    if (r->mode != TB_ROCKS_SECONDARY)
        return 0;
    for (int attempt = 1;; attempt++) {
        rocksdb_try_catch_up_with_primary(r->db, &err);
        if (!err)
            return 0;
        /* The server created a column family after we listed them: a secondary cannot
         * follow that, so open again with the new list. */
        if (attempt >= 5 || !strstr(err, "unknown column family"))
            return rocks_err(TB_EIO, err, "cannot catch up with the primary", r->path);
        free(err);
        err = NULL;
        close_handles(r);
        if ((rc = open_handles(r)) < 0)
            return rc;
    }
}

uint64_t tb_rocks_last_seq(tb_rocks *r)
{
    return rocksdb_get_latest_sequence_number(r->db);
}

enum tb_rocks_mode tb_rocks_mode(tb_rocks *r)
{
    return r->mode;
}

size_t tb_rocks_cf_count(tb_rocks *r)
{
    return r->ncf;
}

const char *tb_rocks_cf_name(tb_rocks *r, size_t i)
{
    return r->cf_names[i];
}

uint32_t tb_rocks_cf_id(tb_rocks *r, size_t i)
{
    return rocksdb_column_family_handle_get_id(r->cfs[i]);
}

/* RocksDB stages a checkpoint in "<dir>.tmp" and may leave it behind on failure. */
static int rm_staging(const char *dir)
{
    char *tmp = NULL;
    int rc;
    if (asprintf(&tmp, "%s.tmp", dir) < 0)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_fs_rm_rf(tmp);
    free(tmp);
    return rc;
}

/* The WAL files (*.log) of dir, as one "|name|" string (malloc'd); with sizes, as
 * "|name=size|". */
static char *wal_set(const char *dir, int sizes)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 256, len = 1;
    char *s = malloc(cap);
    if (!d || !s) {
        if (d)
            closedir(d);
        free(s);
        return NULL;
    }
    strcpy(s, "|");
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[4096], item[300];
        struct stat st;
        int k;
        if (n < 5 || n > 255 || strcmp(e->d_name + n - 4, ".log") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0)
            continue;
        k = sizes ? snprintf(item, sizeof item, "%s=%lld|", e->d_name, (long long)st.st_size)
                  : snprintf(item, sizeof item, "%s|", e->d_name);
        if (len + (size_t)k + 1 > cap) {
            char *p = realloc(s, cap = 2 * cap + (size_t)k);
            if (!p) {
                free(s);
                s = NULL;
                break;
            }
            s = p;
        }
        memcpy(s + len, item, (size_t)k + 1);
        len += (size_t)k;
    }
    closedir(d);
    return s;
}

/* Whether every WAL of the source's list (with sizes, taken before the catch-up) is in the
 * checkpoint. RocksDB leaves out a WAL that is empty when it lists them, so one that was
 * empty in the list may be missing, but only if the source still has it alive: a WAL
 * retired meanwhile means a flush the checkpoint may not know of. */
static int wals_covered(const char *before, const char *src, const char *ckpt)
{
    char *now = wal_set(ckpt, 0), *alive = wal_set(src, 0), name[300];
    const char *p = before + 1;
    int ok = now && alive;
    while (ok && *p) {
        const char *bar = strchr(p, '|'), *eq = memchr(p, '=', (size_t)(bar - p));
        size_t n = (size_t)(eq - p);
        if (!eq || n + 3 > sizeof name) {
            ok = 0;
            break;
        }
        name[0] = '|';
        memcpy(name + 1, p, n);
        name[n + 1] = '|';
        name[n + 2] = '\0';
        ok = strstr(now, name) != NULL || (strtoll(eq + 1, NULL, 10) == 0 && strstr(alive, name) != NULL);
        p = bar + 1;
    }
    free(now);
    free(alive);
    return ok;
}

/* The MANIFEST that dir's CURRENT names, and its size. 0, or -1 when unreadable. */
static int current_manifest(const char *dir, char name[64], long long *size)
{
    char path[4096], *text = NULL;
    struct stat st;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/CURRENT", dir);
    if (tb_fs_read_file(path, &text, &len) < 0)
        return -1;
    len = strcspn(text, "\n");
    if (len == 0 || len >= 64) {
        free(text);
        return -1;
    }
    memcpy(name, text, len);
    name[len] = '\0';
    free(text);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) < 0)
        return -1;
    *size = (long long)st.st_size;
    return 0;
}

/* Copies the source's newest OPTIONS file into the checkpoint, without the sections of
 * column families the checkpoint does not have (created after it): a tool that loads the
 * options (ldb --try_load_options) refuses a file naming unknown column families. */
static int copy_options(tb_rocks *r, const char *dir)
{
    char *name = tb_rocksopts_newest(r->path);
    int cleared = 0, rc = 0;
    if (name)
        rc = tb_rocksopts_copy(r->path, dir, name, (const char *const *)r->cf_names, r->ncf, 0, &cleared);
    free(name);
    return rc;
}

/* Whether the checkpoint opens: 0, with *db the read-only handle; TB_EAGAIN when its
 * MANIFEST names a table file it does not have (the secondary's version lagged behind the
 * MANIFEST it copied, seen under heavy compaction); another error as it is. */
static int opens(tb_rocks *r, const char *dir, tb_rocks **db)
{
    char *scratch = tb_fs_join(r->scratch, "check");
    int rc = scratch ? tb_rocks_open(db, dir, TB_ROCKS_READONLY, scratch) : tb_error_set(TB_EIO, "out of memory");
    if (rc < 0 && strstr(tb_error_last(), "No such file"))
        rc = TB_EAGAIN;
    if (rc < 0 && scratch)
        tb_fs_rm_rf(scratch);
    free(scratch);
    return rc;
}

/* Catches the secondary up and has RocksDB write its checkpoint into dir; *err: RocksDB's
 * error writing it (a race with the server, or not). */
static int write_checkpoint(tb_rocks *r, const char *dir, char **err)
{
    rocksdb_checkpoint_t *cp;
    int rc;
    if ((rc = tb_rocks_catch_up(r)) < 0)
        return rc;
    cp = rocksdb_checkpoint_object_create(r->db, err);
    if (*err) {
        rc = rocks_err(TB_EIO, *err, "cannot create checkpoint object", r->path);
        *err = NULL;
        return rc;
    }
    /* A secondary cannot flush; a huge log_size_for_flush says not to try. */
    rocksdb_checkpoint_create(cp, dir, UINT64_MAX, err);
    rocksdb_checkpoint_object_destroy(cp);
    return 0;
}

/* Whether the checkpoint in dir is consistent: 0 with *db open on it; NOT_YET when its
 * MANIFEST or WALs lag what was listed before (man0, size0, before); TB_EAGAIN when it does
 * not open; another error as it is. */
enum { NOT_YET = 1 };
static int checkpoint_usable(tb_rocks *r, const char *dir, const char *man0, long long size0, const char *before,
                             tb_rocks **db)
{
    char man1[64], *have;
    long long size1 = 0;
    int rc;
    if (current_manifest(dir, man1, &size1) < 0 || strcmp(man0, man1) != 0 || size1 < size0 ||
        !wals_covered(before, r->path, dir))
        return NOT_YET;
    /* Opening the copy needs its OPTIONS file (allow_2pc, each CF's merge operator), which
     * a secondary's checkpoint leaves out: copy the source's first. */
    have = tb_rocksopts_newest(dir);
    rc = have ? 0 : copy_options(r, dir);
    free(have);
    return rc < 0 ? rc : opens(r, dir, db);
}

/* After an attempt that failed with rc (NOT_YET, TB_EAGAIN) or err: 0 to try again (dir
 * removed), or why not. */
static int checkpoint_again(tb_rocks *r, const char *dir, int rc, char **err, int attempt, int attempts)
{
    /* A secondary whose version lags its MANIFEST stays so (seen: 100 attempts in a row on
     * an idle DB); a new secondary recovers from the whole MANIFEST. */
    if (rc == TB_EAGAIN) {
        close_handles(r);
        if ((rc = open_handles(r)) < 0)
            return rc;
    }
    if (!*err && attempt >= attempts)
        return tb_error_set(TB_EIO,
                            "cannot write a consistent checkpoint: the server retired a WAL or table file or "
                            "switched its MANIFEST during each of %d attempts (%s)",
                            attempts, r->path);
    if (*err && (attempt >= attempts || (!strstr(*err, "No such file") && !strstr(*err, "not found")))) {
        rc = rocks_err(TB_EIO, *err, "cannot write checkpoint", r->path);
        *err = NULL;
        return rc;
    }
    free(*err);
    *err = NULL;
    if ((rc = tb_fs_rm_rf(dir)) < 0 || (rc = rm_staging(dir)) < 0)
        return rc;
    return 0;
}

int tb_rocks_checkpoint(tb_rocks *r, const char *dir, tb_rocks **opened)
{
    /* Races with the live server, all retried at once (each attempt takes milliseconds):
     * compaction deletes an SST between the catch-up and its hard link; a flush retires a
     * WAL (deleted, or moved to archive/) that the checkpoint's MANIFEST still needs, which
     * would silently lose the writes in it. The checkpoint is taken as consistent only
     * when (1) its MANIFEST holds at least everything the source's held before the WALs
     * were listed, so any WAL retired before the listing is retired in the checkpoint's
     * MANIFEST too (RocksDB syncs a flush's MANIFEST record before it retires the WALs),
     * and (2) every WAL of that listing is in the checkpoint (docs/rocksdb-backup-notes.md). */
    enum { ATTEMPTS = 100 };
    char *err = NULL, *before = NULL;
    tb_rocks *db = NULL;
    int rc = 0;

    for (int attempt = 1;; attempt++) {
        char man0[64];
        long long size0 = 0;
        if (attempt > 1 && attempt % 10 == 0)
            usleep(20000); /* let a burst of compactions settle */
        /* Taken before the catch-up, in this order: MANIFEST size, then the WALs. */
        free(before);
        before = NULL;
        if (current_manifest(r->path, man0, &size0) < 0 || !(before = wal_set(r->path, 1))) {
            if (attempt < ATTEMPTS)
                continue; /* the server was switching its MANIFEST */
            return tb_error_errno(TB_EIO, errno, "cannot read the MANIFEST and WAL list of %s", r->path);
        }
        if ((rc = write_checkpoint(r, dir, &err)) < 0) {
            free(before);
            return rc;
        }
        rc = err ? NOT_YET : checkpoint_usable(r, dir, man0, size0, before, &db);
        if ((rc <= 0 && rc != TB_EAGAIN) || (rc = checkpoint_again(r, dir, rc, &err, attempt, ATTEMPTS)) < 0)
            break;
    }
    free(before);
    if (rc < 0) {
        tb_fs_rm_rf(dir);
        rm_staging(dir);
        return rc;
    }
    if (opened) {
        *opened = db;
    } else {
        char *scratch = tb_fs_join(r->scratch, "check");
        tb_rocks_free(db);
        if (scratch)
            tb_fs_rm_rf(scratch);
        free(scratch);
    }
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* The hash pipeline: the iterating thread frames keys and values into 1 MiB buffers and a
 * second thread runs SHA-256 over them, so decompression and hashing overlap (each takes
 * about half the time on its own). The byte stream hashed is the same as a plain loop's. */
enum { HP_BUFS = 4, HP_SIZE = 1 << 20 };

struct hpipe {
    EVP_MD_CTX *md;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf[HP_BUFS];
    size_t len[HP_BUFS];
    unsigned head, tail; /* buffers [tail, head) are full, waiting for the hasher */
    int running; /* the thread was started */
    int stopping; /* no more buffers will come */
    unsigned char *cur; /* the buffer being filled: buf[head % HP_BUFS] */
    size_t used;
};

static void *hp_thread(void *arg)
{
    struct hpipe *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->tail == h->head && !h->stopping)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->tail == h->head)
            break;
        unsigned i = h->tail % HP_BUFS;
        pthread_mutex_unlock(&h->mu);
        EVP_DigestUpdate(h->md, h->buf[i], h->len[i]);
        pthread_mutex_lock(&h->mu);
        h->tail++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Hands the current buffer to the hasher and waits for a free one. */
static void hp_submit(struct hpipe *h)
{
    pthread_mutex_lock(&h->mu);
    h->len[h->head % HP_BUFS] = h->used;
    h->head++;
    pthread_cond_broadcast(&h->cv);
    while (h->head - h->tail >= HP_BUFS)
        pthread_cond_wait(&h->cv, &h->mu);
    h->cur = h->buf[h->head % HP_BUFS];
    h->used = 0;
    pthread_mutex_unlock(&h->mu);
}

static void hp_write(struct hpipe *h, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n) {
        size_t k = HP_SIZE - h->used < n ? HP_SIZE - h->used : n;
        memcpy(h->cur + h->used, c, k);
        h->used += k;
        c += k;
        n -= k;
        if (h->used == HP_SIZE)
            hp_submit(h);
    }
}

static void le64(unsigned char *b, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
}

static void put_len(struct hpipe *h, uint64_t n)
{
    unsigned char b[8];
    le64(b, n);
    hp_write(h, b, 8);
}

static void put_bytes(struct hpipe *h, const void *p, size_t n)
{
    put_len(h, n);
    hp_write(h, p, n);
}

static int hp_start(struct hpipe *h)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < HP_BUFS; i++)
        if (!(h->buf[i] = malloc(HP_SIZE)))
            return tb_error_set(TB_EIO, "out of memory");
    h->cur = h->buf[0];
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
        return tb_error_set(TB_EIO, "sha256: cannot initialise OpenSSL digest");
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, hp_thread, h) != 0) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        return tb_error_set(TB_EIO, "cannot start hashing thread");
    }
    h->running = 1;
    return 0;
}

/* Flushes, stops the thread and, when digest is not NULL, finishes the hash. */
static void hp_finish(struct hpipe *h, unsigned char digest[32])
{
    unsigned int dlen = 32;
    if (h->running) {
        if (h->used)
            hp_submit(h);
        pthread_mutex_lock(&h->mu);
        h->stopping = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        if (digest)
            EVP_DigestFinal_ex(h->md, digest, &dlen);
    }
    EVP_MD_CTX_free(h->md);
    for (int i = 0; i < HP_BUFS; i++)
        free(h->buf[i]);
    memset(h, 0, sizeof *h);
}

void tb_rocks_hash_clear(struct tb_rocks_hash *h)
{
    free(h->names);
    free(h->keys);
    memset(h, 0, sizeof *h);
}

/* The column families' positions in r, by name (malloc'd): the order they are hashed in. */
static size_t *cf_order(tb_rocks *r)
{
    char ***order = calloc(r->ncf, sizeof *order);
    size_t *index = calloc(r->ncf, sizeof *index);
    if (order && index) {
        for (size_t i = 0; i < r->ncf; i++)
            order[i] = &r->cf_names[i];
        qsort(order, r->ncf, sizeof *order, cmp_names);
        for (size_t i = 0; i < r->ncf; i++)
            index[i] = (size_t)(order[i] - r->cf_names);
    } else {
        free(index);
        index = NULL;
    }
    free(order);
    return index;
}

struct hash_run {
    struct hpipe hp;
    rocksdb_readoptions_t *ro;
    uint64_t bytes;
    void (*progress)(void *arg, uint64_t bytes);
    void *arg;
};

/* Column family i framed as "cf" name, "kv" key value per entry, "end" count; *n entries. */
static int hash_cf(tb_rocks *r, struct hash_run *h, size_t i, uint64_t *n)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, h->ro, r->cfs[i]);
    char *err = NULL;
    int rc;
    *n = 0;
    put_bytes(&h->hp, "cf", 2);
    put_bytes(&h->hp, r->cf_names[i], strlen(r->cf_names[i]));
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        put_bytes(&h->hp, "kv", 2);
        put_bytes(&h->hp, k, kl);
        put_bytes(&h->hp, v, vl);
        h->bytes += kl + vl;
        if ((++*n & 4095) == 0 && h->progress)
            h->progress(h->arg, h->bytes);
        if ((*n & 4095) == 0 && tb_interrupted)
            break;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if ((rc = tb_error_check_interrupt()) < 0) {
        free(err);
        return rc;
    }
    if (err)
        return rocks_err(TB_EVERIFY, err, "cannot read column family", r->cf_names[i]);
    if (h->progress)
        h->progress(h->arg, h->bytes);
    put_bytes(&h->hp, "end", 3);
    put_len(&h->hp, *n);
    return 0;
}

static rocksdb_readoptions_t *scan_options(void)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (ro) {
        rocksdb_readoptions_set_fill_cache(ro, 0);
        rocksdb_readoptions_set_readahead_size(ro, 256 << 10); /* per table iterated at once: L0's are all at once */
    }
    return ro;
}

/* themis-dbhash-v1: one stream in key order, so one iterating thread (the hasher's aside). */
static int hash_v1(tb_rocks *r, const size_t *index, const struct tb_rocks_hash_opts *o, struct tb_rocks_hash *out)
{
    struct hash_run h = { .ro = scan_options(), .progress = o->progress, .arg = o->arg };
    int rc = 0;

    if (!h.ro) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = hp_start(&h.hp)) < 0)
        goto cleanup;
    /* Every field length-prefixed, so no two different databases share a byte stream. */
    put_bytes(&h.hp, "themis-dbhash-v1", 16);
    for (size_t oi = 0; oi < r->ncf; oi++)
        if ((rc = hash_cf(r, &h, index[oi], &out->keys[oi])) < 0)
            goto cleanup;
    hp_finish(&h.hp, out->digest);
cleanup:
    hp_finish(&h.hp, NULL);
    if (h.ro)
        rocksdb_readoptions_destroy(h.ro);
    return rc;
}

/* themis-dbhash-v2 (docs/format.md): an entry's hash does not depend on where it is in the
 * iteration, and they are added, so the key space is cut into ranges hashed on threads in
 * any order. A task is one range [lo, hi) of one column family (NULL: unbounded). */
struct h2_task {
    size_t cf; /* position in r */
    char *lo, *hi;
    size_t lolen, hilen;
    uint64_t bytes; /* estimated from the tables: to start the largest first */
};

struct h2_sum {
    uint64_t lo, hi; /* the 128-bit sum of the entries' XXH3-128, mod 2^128 */
    uint64_t n;
};

struct h2_run {
    tb_rocks *r;
    const struct tb_rocks_hash_opts *o;
    struct h2_task *tasks;
    size_t ntasks, next; /* tasks [next, ntasks) are not started */
    struct h2_sum *sums; /* per CF, positions of r */
    pthread_mutex_t mu;
    uint64_t bytes; /* hashed so far, all threads */
    int rc; /* the first failure, its message in msg */
    char msg[1024];
};

static void h2_add(struct h2_sum *s, const struct h2_sum *t)
{
    s->lo += t->lo;
    s->hi += t->hi + (s->lo < t->lo);
    s->n += t->n;
}

/* Adds the entry's XXH3-128 over u64le(key length) key u64le(value length) value; *buf
 * (of *cap bytes) is where the framing is put together. */
static int h2_entry(struct h2_sum *s, const char *k, size_t kl, const char *v, size_t vl, unsigned char **buf,
                    size_t *cap)
{
    size_t need = 16 + kl + vl;
    XXH128_hash_t e;
    if (need > *cap) {
        unsigned char *p = realloc(*buf, need + (need >> 1));
        if (!p)
            return tb_error_set(TB_EIO, "out of memory");
        *buf = p;
        *cap = need + (need >> 1);
    }
    le64(*buf, kl);
    memcpy(*buf + 8, k, kl);
    le64(*buf + 8 + kl, vl);
    memcpy(*buf + 16 + kl, v, vl);
    e = XXH3_128bits(*buf, need);
    h2_add(s, &(struct h2_sum){ .lo = e.low64, .hi = e.high64, .n = 1 });
    return 0;
}

/* Adds *bytes (this thread's since its last call) to the total and tells progress. */
static void h2_progress(struct h2_run *h, uint64_t *bytes)
{
    pthread_mutex_lock(&h->mu);
    h->bytes += *bytes;
    *bytes = 0;
    if (h->o->progress)
        h->o->progress(h->o->arg, h->bytes);
    pthread_mutex_unlock(&h->mu);
}

/* One task's range, into *s. Stops early, leaving the error to the caller, when interrupted. */
static int h2_range(struct h2_run *h, const struct h2_task *t, rocksdb_readoptions_t *ro, struct h2_sum *s)
{
    rocksdb_iterator_t *it;
    unsigned char *buf = NULL;
    size_t cap = 0;
    uint64_t bytes = 0;
    char *err = NULL;
    int rc = 0;
    rocksdb_readoptions_set_iterate_lower_bound(ro, t->lo, t->lolen);
    rocksdb_readoptions_set_iterate_upper_bound(ro, t->hi, t->hilen);
    it = rocksdb_create_iterator_cf(h->r->db, ro, h->r->cfs[t->cf]);
    for (t->lo ? rocksdb_iter_seek(it, t->lo, t->lolen) : rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        if ((rc = h2_entry(s, k, kl, v, vl, &buf, &cap)) < 0)
            break;
        bytes += kl + vl;
        if ((s->n & 4095) == 0 && (h2_progress(h, &bytes), tb_interrupted))
            break;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(buf);
    h2_progress(h, &bytes);
    if (err && rc == 0)
        rc = rocks_err(TB_EVERIFY, err, "cannot read column family", h->r->cf_names[t->cf]);
    else
        free(err);
    return rc;
}

/* A hashing thread: takes the next task until none is left or one failed. */
static void *h2_worker(void *arg)
{
    struct h2_run *h = arg;
    rocksdb_readoptions_t *ro = scan_options();
    int rc = ro ? 0 : tb_error_set(TB_EIO, "out of memory");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        const struct h2_task *t;
        struct h2_sum s = { 0 };
        if (rc < 0 && h->rc == 0) {
            h->rc = rc;
            snprintf(h->msg, sizeof h->msg, "%s", tb_error_last()); /* the error is per thread */
        }
        if (h->rc < 0 || h->next == h->ntasks || tb_interrupted)
            break;
        t = &h->tasks[h->next++];
        pthread_mutex_unlock(&h->mu);
        rc = h2_range(h, t, ro, &s);
        pthread_mutex_lock(&h->mu);
        h2_add(&h->sums[t->cf], &s);
    }
    pthread_mutex_unlock(&h->mu);
    if (ro)
        rocksdb_readoptions_destroy(ro);
    return NULL;
}

static void h2_free_tasks(struct h2_task *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].lo);
        free(t[i].hi);
    }
    free(t);
}

static char *dup_key(const char *k, size_t n)
{
    char *p = k ? malloc(n ? n : 1) : NULL;
    if (p)
        memcpy(p, k, n);
    return p;
}

/* Appends the task [lo, hi) of column family i (keys copied; NULL: unbounded). */
static int h2_task_add(struct h2_run *h, size_t *cap, size_t i, const char *lo, size_t lolen, const char *hi,
                       size_t hilen, uint64_t bytes)
{
    struct h2_task *t;
    int rc = tb_grow(&h->tasks, cap, h->ntasks, sizeof *h->tasks, 16);
    if (rc < 0)
        return rc;
    t = &h->tasks[h->ntasks];
    *t = (struct h2_task){
        .cf = i, .lo = dup_key(lo, lolen), .lolen = lolen, .hi = dup_key(hi, hilen), .hilen = hilen, .bytes = bytes
    };
    if ((lo && !t->lo) || (hi && !t->hi)) {
        free(t->lo);
        free(t->hi);
        return tb_error_set(TB_EIO, "out of memory");
    }
    h->ntasks++;
    return 0;
}

/* A table: where its keys start, and its size. */
struct h2_file {
    const char *key;
    size_t len;
    uint64_t size;
};

static int cmp_file(const void *a, const void *b)
{
    const struct h2_file *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Cuts column family i at its tables' smallest keys, in byte order (the comparator of every
 * CF we open), into ranges of about target bytes of tables; any cut gives the same hash,
 * this one ranges of similar work. */
static int h2_plan_cf(struct h2_run *h, size_t *cap, size_t i, const rocksdb_livefiles_t *lf, uint64_t target)
{
    int nlf = lf ? rocksdb_livefiles_count(lf) : 0, rc = 0;
    struct h2_file *f = calloc((size_t)nlf + 1, sizeof *f);
    const char *prev = NULL;
    size_t n = 0, prevlen = 0;
    uint64_t acc = 0;
    if (!f)
        return tb_error_set(TB_EIO, "out of memory");
    for (int j = 0; j < nlf; j++)
        if (strcmp(rocksdb_livefiles_column_family_name(lf, j), h->r->cf_names[i]) == 0) {
            f[n].key = rocksdb_livefiles_smallestkey(lf, j, &f[n].len);
            f[n++].size = rocksdb_livefiles_size(lf, j);
        }
    qsort(f, n, sizeof *f, cmp_file);
    for (size_t j = 0; j < n && rc == 0; j++) {
        struct h2_file p = { prev, prevlen, 0 };
        if (acc >= target && (!prev || cmp_file(&f[j], &p) > 0)) {
            rc = h2_task_add(h, cap, i, prev, prevlen, f[j].key, f[j].len, acc);
            prev = f[j].key;
            prevlen = f[j].len;
            acc = 0;
        }
        acc += f[j].size;
    }
    if (rc == 0)
        rc = h2_task_add(h, cap, i, prev, prevlen, NULL, 0, acc);
    free(f);
    return rc;
}

static int cmp_task(const void *a, const void *b)
{
    const struct h2_task *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

/* The tasks, largest first: one per CF on one thread, else ranges of about a quarter of a
 * thread's share, so threads finish close together. */
static int h2_plan(struct h2_run *h, int threads)
{
    const rocksdb_livefiles_t *lf = threads > 1 ? rocksdb_livefiles(h->r->db) : NULL;
    uint64_t total = 0, target;
    size_t cap = 0;
    int rc = 0;
    for (int j = 0; lf && j < rocksdb_livefiles_count(lf); j++)
        total += rocksdb_livefiles_size(lf, j);
    target = total / ((uint64_t)threads * 4);
    if (target < (8u << 20))
        target = 8u << 20;
    if (h->o->range_bytes)
        target = h->o->range_bytes;
    for (size_t i = 0; i < h->r->ncf && rc == 0; i++)
        rc = h2_plan_cf(h, &cap, i, lf, target);
    if (lf)
        rocksdb_livefiles_destroy(lf);
    qsort(h->tasks, h->ntasks, sizeof *h->tasks, cmp_task);
    return rc;
}

/* SHA-256 over "themis-dbhash-v2", then per CF in name order u64le(name length) name,
 * u64le(count) and the 128-bit sum as 16 bytes little-endian. */
static int h2_digest(struct h2_run *h, const size_t *index, struct tb_rocks_hash *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int dlen = 32;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return tb_error_set(TB_EIO, "sha256: cannot initialise OpenSSL digest");
    }
    EVP_DigestUpdate(md, "themis-dbhash-v2", 16);
    for (size_t oi = 0; oi < h->r->ncf; oi++) {
        const char *name = h->r->cf_names[index[oi]];
        const struct h2_sum *s = &h->sums[index[oi]];
        unsigned char b[32];
        le64(b, strlen(name));
        le64(b + 8, s->n);
        le64(b + 16, s->lo);
        le64(b + 24, s->hi);
        EVP_DigestUpdate(md, b, 8);
        EVP_DigestUpdate(md, name, strlen(name));
        EVP_DigestUpdate(md, b + 8, 24);
        out->keys[oi] = s->n;
    }
    EVP_DigestFinal_ex(md, out->digest, &dlen);
    EVP_MD_CTX_free(md);
    return 0;
}

/* themis-dbhash-v2 on o->threads threads, the calling one among them. */
static int hash_v2(tb_rocks *r, const size_t *index, const struct tb_rocks_hash_opts *o, struct tb_rocks_hash *out)
{
    struct h2_run h = { .r = r, .o = o, .sums = calloc(r->ncf + 1, sizeof *h.sums) };
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN), started = 0, rc;
    pthread_t *tid = NULL;

    if (threads < 1)
        threads = 1;
    if (!h.sums || !(tid = calloc((size_t)threads, sizeof *tid))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = h2_plan(&h, threads)) < 0)
        goto cleanup;
    pthread_mutex_init(&h.mu, NULL);
    /* Fewer threads than asked when the system refuses one: the calling thread does the rest. */
    while (started + 1 < threads && (size_t)started + 1 < h.ntasks &&
           pthread_create(&tid[started], NULL, h2_worker, &h) == 0)
        started++;
    h2_worker(&h);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&h.mu);
    if (h.rc < 0)
        rc = tb_error_set(h.rc, "%s", h.msg);
    else if ((rc = tb_error_check_interrupt()) == 0)
        rc = h2_digest(&h, index, out);
    out->ranges = h.ntasks;
cleanup:
    h2_free_tasks(h.tasks, h.ntasks);
    free(h.sums);
    free(tid);
    return rc;
}

int tb_rocks_hash(tb_rocks *r, struct tb_rocks_hash *out, const struct tb_rocks_hash_opts *o)
{
    static const struct tb_rocks_hash_opts defaults = { 0 };
    size_t *index = cf_order(r);
    int version, rc;

    o = o ? o : &defaults;
    version = o->version ? o->version : TB_ROCKS_HASH_VERSION;
    memset(out, 0, sizeof *out);
    out->names = calloc(r->ncf + 1, sizeof *out->names);
    out->keys = calloc(r->ncf + 1, sizeof *out->keys);
    out->ncf = r->ncf;
    if (!index || !out->names || !out->keys)
        rc = tb_error_set(TB_EIO, "out of memory");
    else if (version != 1 && version != 2)
        rc = tb_error_set(TB_EUSAGE, "no content hash version %d (1 or 2)", version);
    else
        rc = version == 1 ? hash_v1(r, index, o, out) : hash_v2(r, index, o, out);
    for (size_t oi = 0; rc == 0 && oi < r->ncf; oi++)
        out->names[oi] = r->cf_names[index[oi]];
    if (rc < 0)
        tb_rocks_hash_clear(out);
    free(index);
    return rc;
}
