/* snapshot: a checkpoint from files only. The MANIFEST says which tables, blob files and WALs
 * make up the database at a point; reading a prefix of it that no flush or compaction could
 * have overtaken while we took hold of the WALs gives a consistent file set (the argument is
 * in docs/rocksdb-backup-notes.md, "Snapshot from files"). No RocksDB open: nothing replays
 * the WAL (which WRITE_PREPARED/UNPREPARED logs and merge operands would refuse, and which
 * costs memory as large as the unflushed WAL), and nothing needs to read the tables (a newer
 * RocksDB's format). */
#include "snapshot.h"
#include "rocks.h"
#include "rocksopts.h"
#include "error.h"
#include "fs.h"
#include "log_reader.h"
#include "stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { DEFAULT_ATTEMPTS = 100, COPY_CHUNK = 1 << 20 };

/* A WAL file held open from the moment it was listed, so a later deletion by the server
 * cannot take its bytes from us. */
struct wal {
    uint64_t number;
    int fd;
};

struct state {
    const char *db;
    const struct tb_snapshot_opts *o;
    const char *dir;
    char *wal_dir;
    int wal_elsewhere; /* OPTIONS names a wal_dir that does not exist */
    tb_rmf *m; /* the MANIFEST being read; kept across attempts while CURRENT names it */
    char mname[64];
    int mfd;
    struct wal *wals;
    size_t nwals;
};

static void close_wals(struct state *s)
{
    for (size_t i = 0; i < s->nwals; i++)
        close(s->wals[i].fd);
    free(s->wals);
    s->wals = NULL;
    s->nwals = 0;
}

/* "000123.log" -> 123; 0 for other names. */
static uint64_t wal_number(const char *name)
{
    char *end;
    uint64_t n;
    if (name[0] < '0' || name[0] > '9')
        return 0;
    n = strtoull(name, &end, 10);
    return strcmp(end, ".log") == 0 ? n : 0;
}

/* Lists and opens every WAL of the WAL directory. A file deleted between the listing and
 * the open was retired, so not needed (see the argument). */
static int hold_wals(struct state *s)
{
    DIR *d = opendir(s->wal_dir);
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;
    if (!d)
        return tb_error_errno(errno == ENOENT ? TB_ENOENT : TB_EIO, errno, "cannot list the WAL directory %s",
                              s->wal_dir);
    while ((e = readdir(d)) != NULL) {
        uint64_t n = wal_number(e->d_name);
        int fd;
        if (!n)
            continue;
        fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            rc = tb_error_errno(TB_EIO, errno, "cannot open WAL file %s/%s", s->wal_dir, e->d_name);
            break;
        }
        if (s->nwals == cap) {
            struct wal *p = realloc(s->wals, (cap = cap ? 2 * cap : 16) * sizeof *p);
            if (!p) {
                close(fd);
                rc = tb_error_set(TB_EIO, "out of memory");
                break;
            }
            s->wals = p;
        }
        s->wals[s->nwals].number = n;
        s->wals[s->nwals++].fd = fd;
    }
    closedir(d);
    return rc;
}

/* Copies [0, len) of fd into the new file to (not fsync'd: a snapshot is scratch, see
 * tb_snapshot_create); name is for messages. */
static int copy_prefix(int fd, uint64_t len, const char *name, const char *to)
{
    tb_stream *in = NULL, *out = NULL;
    char *buf = malloc(COPY_CHUNK);
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0), rc = 0;
    if (!buf || dfd < 0) {
        rc = buf ? tb_error_errno(TB_EIO, errno, "cannot duplicate the descriptor of %s", name)
                 : tb_error_set(TB_EIO, "out of memory");
        if (dfd >= 0)
            close(dfd);
        goto cleanup;
    }
    if (lseek(dfd, 0, SEEK_SET) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot seek in %s", name);
        close(dfd);
        goto cleanup;
    }
    if ((rc = tb_stream_fd(&in, dfd, 1, name)) < 0) {
        close(dfd);
        goto cleanup;
    }
    if ((rc = tb_stream_file(&out, to, "wt")) < 0)
        goto cleanup;
    while (len > 0) {
        size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK, n = 0;
        if ((rc = tb_stream_read_full(in, buf, want, &n)) < 0)
            goto cleanup;
        if (n < want) {
            rc = tb_error_set(TB_EIO, "%s ended early: %" PRIu64 " bytes short", name, len - n);
            goto cleanup;
        }
        if ((rc = tb_stream_write(out, buf, n)) < 0)
            goto cleanup;
        len -= n;
    }
    rc = tb_stream_close(out);
cleanup:
    tb_stream_free(out);
    tb_stream_free(in);
    free(buf);
    return rc;
}

/* Puts the table or blob file name (found in one of dirs) into the snapshot: a hard link,
 * or a copy where links cannot be made (another filesystem; protected_hardlinks when the
 * file is not ours). TB_ENOENT when no directory has it. */
static int place(struct state *s, const char *const *dirs, size_t ndirs, const char *name,
                 struct tb_snapshot_info *info)
{
    char *to = tb_fs_join(s->dir, name);
    int rc = TB_ENOENT;
    if (!to)
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < ndirs && rc == TB_ENOENT; i++) {
        char *from = tb_fs_join(dirs[i], name);
        struct stat st;
        int fd;
        if (!from) {
            rc = tb_error_set(TB_EIO, "out of memory");
            break;
        }
        if (link(from, to) == 0) {
            info->linked++;
            rc = 0;
        } else if (errno == ENOENT) {
            rc = TB_ENOENT;
        } else if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
            rc = tb_error_errno(TB_EIO, errno, "cannot link %s into the snapshot", from);
        } else if ((fd = open(from, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = errno == ENOENT ? TB_ENOENT : tb_error_errno(TB_EIO, errno, "cannot open %s", from);
        } else {
            /* Tables and blob files never change once written: the whole file is the copy. */
            rc = fstat(fd, &st) < 0 ? tb_error_errno(TB_EIO, errno, "cannot stat %s", from)
                                    : copy_prefix(fd, (uint64_t)st.st_size, from, to);
            close(fd);
            if (rc == 0)
                info->copied++;
        }
        free(from);
    }
    free(to);
    if (rc == TB_ENOENT)
        tb_error_set(TB_ENOENT, "%s is in none of the database's directories", name);
    return rc;
}

/* Where RocksDB looks for a table with this path id (filename.cc TableFileName: the
 * db_path of that index, the last one beyond the list, the DB directory without db_paths),
 * then, in case the caller's list is not the server's, every other directory we know. */
static size_t dirs_for(struct state *s, uint32_t path_id, const char **dirs)
{
    size_t n = 0, np = s->o ? s->o->ndb_paths : 0;
    if (np)
        dirs[n++] = s->o->db_paths[path_id < np ? path_id : np - 1];
    dirs[n++] = s->db;
    for (size_t i = 0; i < np; i++)
        dirs[n++] = s->o->db_paths[i];
    return n;
}

/* Whether the MANIFEST, read on to its end now, still has file number live: then a missing
 * file is no race with compaction but a directory we were not told of. */
static int still_live(struct state *s, uint64_t number, int blob)
{
    struct tb_rmf_version *v = NULL;
    int live = 0;
    if (tb_rmf_read(s->m, UINT64_MAX) < 0 || tb_rmf_version(s->m, &v) < 0)
        return 0;
    for (size_t c = 0; c < v->ncf && !live; c++) {
        for (size_t i = 0; !blob && i < v->cfs[c].nfiles; i++)
            live |= v->cfs[c].files[i].number == number;
        for (size_t i = 0; blob && i < v->cfs[c].nblobs; i++)
            live |= v->cfs[c].blobs[i].number == number;
    }
    tb_rmf_version_free(v);
    return live;
}

/* Links every live table and blob file. TB_EAGAIN when one vanished (compaction or blob GC
 * after our MANIFEST prefix). */
static int place_files(struct state *s, const struct tb_rmf_version *v, struct tb_snapshot_info *info)
{
    const char **dirs = calloc(2 * (s->o ? s->o->ndb_paths : 0) + 2, sizeof *dirs);
    int rc = dirs ? 0 : tb_error_set(TB_EIO, "out of memory");
    for (size_t c = 0; rc == 0 && c < v->ncf; c++) {
        const struct tb_rmf_cf *cf = &v->cfs[c];
        for (size_t i = 0; rc == 0 && i < cf->nfiles + cf->nblobs; i++) {
            int blob = i >= cf->nfiles;
            uint64_t number = blob ? cf->blobs[i - cf->nfiles].number : cf->files[i].number;
            uint32_t path_id = blob ? 0 : cf->files[i].path_id; /* blob files: cf_paths.front() */
            size_t nd = dirs_for(s, path_id, dirs);
            char name[32];
            snprintf(name, sizeof name, "%06" PRIu64 ".%s", number, blob ? "blob" : "sst");
            rc = place(s, dirs, nd, name, info);
            if (rc == TB_ENOENT && !blob) {
                /* RocksDB still opens tables by their LevelDB-era name. */
                snprintf(name, sizeof name, "%06" PRIu64 ".ldb", number);
                rc = place(s, dirs, nd, name, info);
                snprintf(name, sizeof name, "%06" PRIu64 ".sst", number);
            }
            if (rc == TB_ENOENT) {
                if (still_live(s, number, blob))
                    rc = tb_error_set(TB_EIO,
                                      "%s (column family %s, path id %u) is live in the MANIFEST but in none "
                                      "of the directories searched (the database directory%s): it lies in a db_path "
                                      "not named with --db-paths, or the database lost it (%s)",
                                      name, cf->name, path_id, s->o && s->o->ndb_paths ? " and the db_paths given" : "",
                                      s->db);
                else
                    rc = TB_EAGAIN;
            }
        }
    }
    free(dirs);
    return rc;
}

/* The end of the last whole record of the WAL open on fd, at most size. */
static int wal_cut(int fd, const char *path, uint64_t number, uint64_t size, uint64_t *cut)
{
    tb_wal_reader *r = NULL;
    const unsigned char *rec;
    size_t len;
    int rc = tb_wal_reader_open_fd(&r, fd, path, number, 0);
    *cut = 0;
    while (rc == 0 && (rc = tb_wal_reader_next(r, &rec, &len)) == 1) {
        if (tb_wal_reader_offset(r) > size)
            break;
        *cut = tb_wal_reader_offset(r);
        rc = 0;
    }
    tb_wal_reader_free(r);
    return rc < 0 ? rc : 0;
}

static int tracked(const struct tb_rmf_version *v, uint64_t number)
{
    for (size_t i = 0; i < v->nwals; i++)
        if (v->wals[i].number == number)
            return 1;
    return 0;
}

/* Copies every held WAL recovery needs, each up to its last whole record now. TB_EAGAIN for
 * a damaged record (seen only as a race with the writer; a later attempt decides). */
static int copy_wals(struct state *s, const struct tb_rmf_version *v, struct tb_snapshot_info *info)
{
    for (size_t i = 0; i < s->nwals; i++) {
        const struct wal *w = &s->wals[i];
        char name[32], *from, *to;
        struct stat st;
        uint64_t cut = 0;
        int rc;
        if (w->number < v->min_log_needed && !tracked(v, w->number))
            continue; /* all of it is in the tables already */
        snprintf(name, sizeof name, "%06" PRIu64 ".log", w->number);
        from = tb_fs_join(s->wal_dir, name);
        to = tb_fs_join(s->dir, name);
        if (!from || !to)
            rc = tb_error_set(TB_EIO, "out of memory");
        else if (fstat(w->fd, &st) < 0)
            rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", from);
        else if ((rc = wal_cut(w->fd, from, w->number, (uint64_t)st.st_size, &cut)) == 0 &&
                 (cut > 0 || tracked(v, w->number)))
            rc = copy_prefix(w->fd, cut, from, to); /* an empty one holds nothing: left out, as
                                                       RocksDB's checkpoint does, unless the
                                                       MANIFEST tracks it */
        free(from);
        free(to);
        if (rc == TB_EVERIFY)
            return TB_EAGAIN;
        if (rc < 0)
            return rc;
        if (cut > 0 || tracked(v, w->number))
            info->wals++;
        info->wal_bytes += cut;
    }
    return 0;
}

/* The value of "key=" in section [DBOptions] of an OPTIONS text, malloc'd; NULL if absent. */
static char *db_option(const char *text, const char *key)
{
    int in_db = 0;
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n'), *p = line;
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (*p == '[')
            in_db = strncmp(p, "[DBOptions]", 11) == 0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (in_db && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t vl = len - (size_t)(v - line);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            return strndup(v, vl);
        }
        line = next ? next + 1 : NULL;
    }
    return NULL;
}

/* Options under which the protocol's reasoning does not hold: with mmap writes a file's size
 * does not grow as records are appended (the MANIFEST check would see nothing), and a
 * recycled WAL is overwritten in place under the descriptor we hold. */
static int check_options(const char *text, const char *path)
{
    char *mmap = db_option(text, "allow_mmap_writes"), *recycle = db_option(text, "recycle_log_file_num");
    int rc = 0;
    if (mmap && strcmp(mmap, "true") == 0)
        rc = tb_error_set(TB_EIO,
                          "the database writes with allow_mmap_writes=true, under which a snapshot from its "
                          "files cannot be made consistent; use --server-url (%s)",
                          path);
    else if (recycle && strcmp(recycle, "0") != 0)
        rc = tb_error_set(TB_EIO,
                          "the database recycles WAL files (recycle_log_file_num=%s), under which a snapshot "
                          "from its files cannot be made consistent; use --server-url (%s)",
                          recycle, path);
    free(mmap);
    free(recycle);
    return rc;
}

/* Whether dir holds a WAL file (*.log). */
static int has_logs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > 4 && strcmp(e->d_name + n - 4, ".log") == 0;
    }
    if (d)
        closedir(d);
    return found;
}

/* The WAL directory the server uses: what the caller says; else the database directory when
 * it holds WAL files (a checkpoint of a database with a wal_dir holds its WAL copies beside
 * its tables, and its OPTIONS file still names the live wal_dir, whose WAL is not its own);
 * else the newest OPTIONS file's wal_dir when it names another directory that exists; else
 * the database directory. */
static int find_wal_dir(struct state *s)
{
    char *name = tb_rocksopts_newest(s->db), *path = name ? tb_fs_join(s->db, name) : NULL, *text = NULL, *w = NULL;
    size_t len;
    int rc = path && tb_fs_read_file(path, &text, &len) == 0 ? check_options(text, path) : 0;
    if (rc < 0)
        goto cleanup;
    if (s->o && s->o->wal_dir)
        s->wal_dir = strdup(s->o->wal_dir);
    else if (has_logs(s->db))
        s->wal_dir = strdup(s->db);
    else if (text && (w = db_option(text, "wal_dir")) && *w && tb_fs_exists(w))
        s->wal_dir = strdup(w);
    else
        s->wal_dir = strdup(s->db);
    /* OPTIONS names a WAL directory that is gone: what is here cannot be all there is. */
    s->wal_elsewhere = w && *w && strcmp(w, s->db) != 0 && strcmp(s->wal_dir, s->db) == 0;
    rc = s->wal_dir ? 0 : tb_error_set(TB_EIO, "out of memory");
cleanup:
    free(name);
    free(path);
    free(text);
    free(w);
    return rc;
}

/* Copies the newest OPTIONS file. Two changes, both so that whoever loads these options
 * (ldb --try_load_options, LoadLatestOptions) opens the snapshot and not the source:
 * - wal_dir is cleared: the snapshot keeps its WALs beside the tables, and RocksDB reads
 *   WALs only from wal_dir (db_impl_open.cc): with the old value it would ignore the
 *   snapshot's WALs (losing every unflushed write without a word) and replay the live
 *   source's WALs instead where that directory still exists. Empty means the DB directory.
 *   (db_paths/cf_paths are not in OPTIONS files, RocksDB 7.8 to 11.8; a copy opened without
 *   them finds every table in the DB directory: TableFileName falls back to the last path.)
 * - sections of column families the snapshot's MANIFEST does not have (created after it)
 *   are left out: ldb refuses options naming unknown column families. */
static int copy_options(struct state *s, const struct tb_rmf_version *v, struct tb_snapshot_info *info)
{
    char *name = tb_rocksopts_newest(s->db);
    const char **cfs = NULL;
    int rc = 0;
    if (!name)
        return 0;
    if (!(cfs = malloc((v->ncf ? v->ncf : 1) * sizeof *cfs))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < v->ncf; i++)
        cfs[i] = v->cfs[i].name;
    rc = tb_rocksopts_copy(s->db, s->dir, name, cfs, v->ncf, 1, &info->options_rewritten);
    /* The server replaced its OPTIONS file between listing and reading: take the next. */
    if (rc == TB_ENOENT)
        rc = TB_EAGAIN;
cleanup:
    free(name);
    free(cfs);
    return rc;
}

static int write_current(struct state *s, uint64_t len)
{
    char *path = tb_fs_join(s->dir, s->mname), *cur = tb_fs_join(s->dir, "CURRENT"), line[80];
    int rc;
    if (!path || !cur)
        rc = tb_error_set(TB_EIO, "out of memory");
    else if ((rc = tb_rmf_has_path_ids(s->m) ? tb_rmf_write_flat(s->m, path)
                                             : copy_prefix(s->mfd, len, s->mname, path)) == 0) {
        snprintf(line, sizeof line, "%s\n", s->mname);
        rc = tb_fs_write_atomic(cur, line, strlen(line), 0644);
    }
    free(path);
    free(cur);
    return rc;
}

/* Step 1: the MANIFEST CURRENT names, open in s (kept from the last attempt when CURRENT
 * still names it). */
static int open_manifest(struct state *s)
{
    char *name = NULL, *path = NULL;
    int rc, fd = -1;
    if ((rc = tb_rmf_current(s->db, &name)) < 0)
        return rc == TB_ENOENT ? TB_EAGAIN : rc;
    if (s->m && strcmp(name, s->mname) == 0)
        goto cleanup;
    if (!(path = tb_fs_join(s->db, name))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = errno == ENOENT ? TB_EAGAIN : tb_error_errno(TB_EIO, errno, "cannot open %s", path);
        goto cleanup;
    }
    tb_rmf_free(s->m);
    s->m = NULL;
    if (s->mfd >= 0)
        close(s->mfd);
    s->mfd = fd;
    snprintf(s->mname, sizeof s->mname, "%s", name);
    rc = tb_rmf_open_fd(&s->m, fd, name);
cleanup:
    free(path);
    free(name);
    return rc;
}

/* Step 3: the MANIFEST did not move meanwhile (still CURRENT's, still size bytes): no flush
 * retired a WAL that our prefix needs before we held it. */
static int manifest_unmoved(struct state *s, uint64_t size)
{
    char *name = NULL;
    struct stat st;
    int rc = tb_rmf_current(s->db, &name);
    if (rc < 0 || strcmp(name, s->mname) != 0 || fstat(s->mfd, &st) < 0 || (uint64_t)st.st_size != size)
        rc = rc == 0 || rc == TB_ENOENT ? TB_EAGAIN : rc;
    free(name);
    return rc;
}

/* The WAL a column family's log number names is there until a later edit retires it; none
 * in a separate WAL directory, or in a live database's, means we look in the wrong one, and
 * the snapshot would silently lack every unflushed write. (A checkpoint or a restore, with
 * its WAL beside its tables, may lack it: RocksDB's checkpoint leaves out an empty WAL.) */
static int wal_present(struct state *s, const struct tb_rmf_version *v)
{
    uint64_t newest = 0;
    int found = 0;
    for (size_t i = 0; i < v->ncf; i++)
        if (v->cfs[i].log_number > newest)
            newest = v->cfs[i].log_number;
    for (size_t i = 0; i < s->nwals; i++)
        found |= s->wals[i].number >= newest;
    if (found || (s->o && s->o->checkpoint))
        return 0;
    if (s->wal_elsewhere || strcmp(s->wal_dir, s->db) != 0 || tb_rocks_is_live(s->db) == 1)
        return tb_error_set(TB_EIO,
                            "no WAL file numbered %" PRIu64 " or later in %s, though the MANIFEST needs one: "
                            "the database keeps its WAL elsewhere; name that directory with --db-wal-dir (%s)",
                            newest, s->wal_dir, s->db);
    return 0;
}

/* What the snapshot's MANIFEST holds: the records read, of the size bytes looked at. */
static uint64_t manifest_prefix(const struct state *s, uint64_t size)
{
    return tb_rmf_offset(s->m) < size ? tb_rmf_offset(s->m) : size;
}

/* One attempt. TB_EAGAIN: the server changed something we depend on; try again. */
static int attempt(struct state *s, struct tb_snapshot_info *info, struct tb_rmf_version **vout)
{
    struct tb_rmf_version *v = NULL;
    struct stat st;
    uint64_t size;
    int rc;

    /* 1. The MANIFEST CURRENT names, read up to its present size. */
    if ((rc = open_manifest(s)) < 0)
        return rc;
    if (fstat(s->mfd, &st) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot stat %s", s->mname);
    size = (uint64_t)st.st_size;
    if ((rc = tb_rmf_read(s->m, size)) < 0)
        return tb_error_wrap(rc, "%s", s->db);
    if ((rc = tb_rmf_version(s->m, &v)) < 0)
        return rc;
    /* 2. Hold every WAL there is now; 3. the MANIFEST did not move meanwhile; 4. tables and
     * blob files; 5. MANIFEST prefix and CURRENT; 6. OPTIONS; 7. WALs. */
    if ((rc = hold_wals(s)) < 0 || (rc = manifest_unmoved(s, size)) < 0 || (rc = wal_present(s, v)) < 0 ||
        (rc = place_files(s, v, info)) < 0 || (rc = write_current(s, manifest_prefix(s, size))) < 0 ||
        (rc = copy_options(s, v, info)) < 0 || (rc = copy_wals(s, v, info)) < 0) {
        tb_rmf_version_free(v);
        return rc;
    }
    *vout = v;
    info->manifest_bytes = manifest_prefix(s, size);
    return 0;
}

int tb_snapshot_create(const char *db, const struct tb_snapshot_opts *o, const char *dir, struct tb_snapshot_info *info)
{
    struct tb_snapshot_info local;
    struct state s = { .db = db, .o = o, .dir = dir, .mfd = -1 };
    int max = o && o->attempts > 0 ? o->attempts : DEFAULT_ATTEMPTS, rc = 0;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!tb_fs_exists(db))
        return tb_error_set(TB_ENOENT, "database directory does not exist (%s)", db);
    if (!tb_fs_exists_in(db, "CURRENT"))
        return tb_error_set(TB_EIO, "not a RocksDB database: no CURRENT file (%s)", db);
    if ((rc = find_wal_dir(&s)) < 0)
        return rc;
    for (int n = 1;; n++) {
        struct tb_rmf_version *v = NULL;
        struct tb_snapshot_info got = { 0 };
        if ((rc = tb_error_check_interrupt()) < 0)
            break;
        if (n > 1 && n % 10 == 0)
            usleep(20000); /* let a burst of flushes and compactions settle */
        if (mkdir(dir, 0755) < 0) {
            rc = tb_error_errno(TB_EIO, errno, "cannot create snapshot directory %s", dir);
            break;
        }
        rc = attempt(&s, &got, &v);
        close_wals(&s);
        if (rc == 0) {
            *info = got;
            info->version = v;
            info->attempts = n;
            snprintf(info->manifest, sizeof info->manifest, "%s", s.mname);
            break;
        }
        tb_fs_rm_rf(dir);
        if (rc != TB_EAGAIN)
            break;
        if (n >= max) {
            rc = tb_error_set(TB_EIO,
                              "cannot take a consistent snapshot: the server flushed, compacted or switched "
                              "its MANIFEST during each of %d attempts (%s)",
                              max, db);
            break;
        }
    }
    tb_rmf_free(s.m);
    if (s.mfd >= 0)
        close(s.mfd);
    free(s.wal_dir);
    if (info == &local)
        tb_snapshot_info_clear(&local);
    return rc;
}

void tb_snapshot_info_clear(struct tb_snapshot_info *info)
{
    if (!info)
        return;
    tb_rmf_version_free(info->version);
    memset(info, 0, sizeof *info);
}

int tb_snapshot_split_paths(const char *list, char ***out, size_t *n)
{
    char **v = NULL;
    size_t k = 0;
    const char *p = list;
    *out = NULL;
    *n = 0;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char **nv = realloc(v, (k + 2) * sizeof *nv);
        if (!nv || !(nv[k] = strndup(p, len))) {
            if (nv)
                v = nv;
            if (v)
                v[k] = NULL;
            tb_snapshot_free_paths(v);
            return tb_error_set(TB_EIO, "out of memory");
        }
        v = nv;
        if (len == 0) {
            free(v[k]);
            v[k] = NULL;
            tb_snapshot_free_paths(v);
            return tb_error_set(TB_EUSAGE, "empty directory in path list \"%s\"", list);
        }
        v[++k] = NULL;
        p = comma ? comma + 1 : NULL;
    }
    *out = v;
    *n = k;
    return 0;
}

void tb_snapshot_free_paths(char **paths)
{
    for (char **p = paths; p && *p; p++)
        free(*p);
    free(paths);
}
