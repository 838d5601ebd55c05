/* rocks: safe RocksDB access for backup, verification and hashing (the hash: dbhash.c). */
#include "rocks.h"
#include "rocks_internal.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
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

#include <rocksdb/c.h>

int tb_rocks_error(int code, char *err, const char *what, const char *path)
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
    TB_FREE_ALL(r->path, r->scratch, r);
}

/* Lists the column families and opens them all (r->opts set). */
static int open_handles(tb_rocks *r)
{
    rocksdb_options_t **cfo = NULL;
    char *err = NULL;
    int rc = 0;
    r->cf_names = rocksdb_list_column_families(r->opts, r->path, &r->ncf, &err);
    if (err)
        return tb_rocks_error(TB_EIO, err, "cannot list column families", r->path);
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
        rc = tb_rocks_error(TB_EIO, err, "cannot open database", r->path);
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
        return tb_rocks_error(TB_EIO, err, "bad RocksDB options", TB_ROCKS_OPTIONS);
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
            return tb_rocks_error(TB_EIO, err, "cannot catch up with the primary", r->path);
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
        rc = tb_rocks_error(TB_EIO, *err, "cannot create checkpoint object", r->path);
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
        rc = tb_rocks_error(TB_EIO, *err, "cannot write checkpoint", r->path);
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
