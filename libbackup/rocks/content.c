/* content: a database's content hash and WAL position under any write policy, worked out
 * in a scratch snapshot: tables checked by their own checksums, the WAL recovered by a
 * TransactionDB open with the writer's policy, then a read-only open hashed. */
#include "content.h"
#include "walfiles.h"
#include "error.h"
#include "mem.h"
#include "merge.h"
#include "fs.h"
#include "rdbmanifest.h"
#include "rocks.h"
#include "rocksopts.h"
#include "snapshot.h"
#include "sstcheck.h"
#include "stream.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The format_version Debian's RocksDB 7.8 reads up to (RocksDB's table/format.h). */
#define TB_TABLE_FORMAT_MAX 5

int tb_content_policy(const char *db, const char *wal_dir, enum tb_policy *out, char **how)
{
    struct tb_rocksopts ro = { 0 };
    enum tb_policy used = TB_POLICY_UNKNOWN;
    uint64_t next;
    int rc = tb_rocksopts_read(db, &ro), twq;
    const char *why;
    if (rc < 0 && rc != TB_ENOENT)
        return rc;
    twq = rc == 0 && tb_rocksopts_two_write_queues(&ro);
    tb_rocksopts_clear(&ro);
    if (!twq) {
        *out = TB_POLICY_COMMITTED;
        why = "the OPTIONS file does not set two_write_queues";
    } else if ((rc = tb_wal_files_end(wal_dir ? wal_dir : db, TB_POLICY_UNKNOWN, &next, &used)) < 0) {
        return rc;
    } else if (used == TB_POLICY_PREPARED || used == TB_POLICY_UNPREPARED) {
        *out = used;
        why = used == TB_POLICY_UNPREPARED ? "two_write_queues, and the WAL holds a write-unprepared section"
                                           : "two_write_queues, and the WAL holds a write-prepared Prepare";
    } else {
        *out = TB_POLICY_UNPREPARED;
        why = "two_write_queues and no WAL marker that tells: ThemisDB's default";
        rc = 0;
    }
    if (how && !(*how = strdup(why)))
        return tb_error_set(TB_EIO, "out of memory");
    return strstr(why, "default") ? 0 : 1;
}

/* The later of v's last sequence and the end of db's WAL under policy. */
static int position_of(const char *db, const struct tb_rmf_version *v, enum tb_policy policy, uint64_t *last_seq)
{
    uint64_t next = 0;
    int rc = tb_wal_files_end(db, policy, &next, NULL);
    if (rc == 0) {
        *last_seq = v->last_sequence;
        if (next > 0 && next - 1 > *last_seq)
            *last_seq = next - 1;
    }
    return rc;
}

int tb_content_position(const char *db, enum tb_policy policy, uint64_t *last_seq)
{
    struct tb_rmf_version *v = NULL;
    int rc = tb_rmf_load_current(db, &v);
    if (rc == 0)
        rc = position_of(db, v, policy, last_seq);
    tb_rmf_version_free(v);
    return rc;
}

static int unavailable(struct tb_content *out, const char *fmt, const char *a, const char *b)
{
    if (asprintf(&out->unavailable, fmt, a, b) < 0) {
        out->unavailable = NULL;
        return tb_error_set(TB_EIO, "out of memory");
    }
    return 0;
}

/* A table of a format newer than the linked RocksDB reads: the content is unavailable. */
static int newer_format(struct tb_content *out, const char *name, uint32_t fv)
{
    char v[16];
    if (fv <= TB_TABLE_FORMAT_MAX || out->unavailable)
        return 0;
    snprintf(v, sizeof v, "%" PRIu32, fv);
    return unavailable(out, "table file %s has format_version %s, which the linked RocksDB cannot read", name, v);
}

/* Calls fn on each table file of dir (and each blob file, with blobs) until fn fails or
 * returns 1 (enough). */
static int each_table(const char *dir, int blobs, int (*fn)(const char *path, const char *name, struct tb_content *out),
                      struct tb_content *out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char *path;
        if (!(n > 4 && (strcmp(e->d_name + n - 4, ".sst") == 0 || strcmp(e->d_name + n - 4, ".ldb") == 0)) &&
            !(blobs && n > 5 && strcmp(e->d_name + n - 5, ".blob") == 0))
            continue;
        if (!(path = tb_fs_join(dir, e->d_name))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            break;
        }
        rc = fn(path, e->d_name, out);
        free(path);
    }
    closedir(d);
    return rc < 0 ? rc : 0;
}

/* A table or blob file checked block by block (tb_sst_check_path), and counted. */
static int check_table(const char *path, const char *name, struct tb_content *out)
{
    struct tb_sst_report rep;
    int rc = tb_sst_check_path(path, &rep);
    if (rc < 0)
        return rc;
    if (rep.verdict == TB_SST_OK)
        out->tables_checked++;
    else
        out->tables_unchecked++;
    /* Checked by its own checksums or not, a table the linked RocksDB cannot read makes the
     * content unavailable (a RocksDB 11 database's fv 7 tables check out here). */
    return newer_format(out, name, rep.format_version);
}

/* Every table and blob file of the copy, checked block by block. A table of a newer format
 * than the linked RocksDB reads makes the content unavailable (the rest still works). */
static int check_tables(const char *copy, struct tb_content *out)
{
    return each_table(copy, 1, check_table, out);
}

/* A comparator other than the bytewise one cannot be given through RocksDB's C API by name. */
static int check_comparators(const struct tb_rmf_version *v, struct tb_content *out)
{
    for (size_t i = 0; v && i < v->ncf && !out->unavailable; i++) {
        const char *c = v->cfs[i].comparator;
        if (c && strcmp(c, "leveldb.BytewiseComparator") != 0)
            return unavailable(out, "column family %s uses the comparator %s, which the tools do not have",
                               v->cfs[i].name, c);
    }
    return 0;
}

/* The first table whose footer names a format newer than the linked RocksDB reads. */
static int footer_format(const char *path, const char *name, struct tb_content *out)
{
    uint32_t fv = 0;
    int rc = tb_sst_footer_version(path, &fv);
    if (rc == 0)
        rc = newer_format(out, name, fv);
    return rc < 0 ? rc : out->unavailable != NULL;
}

static int newer_tables(const char *db, struct tb_content *out)
{
    return each_table(db, 0, footer_format, out);
}

/* The live file named number.ext in db (a table also by RocksDB's older name .ldb): there,
 * and of size (when want_size). */
static int live_file(const char *db, uint64_t number, const char *ext, uint64_t size, int want_size)
{
    char name[32], old[32], *path = NULL;
    struct stat st;
    int rc = 0, found = 0;
    snprintf(name, sizeof name, "%06" PRIu64 ".%s", number, ext);
    snprintf(old, sizeof old, "%06" PRIu64 ".ldb", number);
    for (int i = 0; i < (strcmp(ext, "sst") == 0 ? 2 : 1) && !found && rc == 0; i++) {
        free(path);
        if (!(path = tb_fs_join(db, i ? old : name)))
            rc = tb_error_set(TB_EIO, "out of memory");
        else if (stat(path, &st) == 0)
            found = 1;
        else if (errno != ENOENT)
            rc = tb_error_errno(TB_EIO, errno, "cannot stat %s", path);
    }
    if (rc == 0 && !found)
        rc = tb_error_set(TB_EVERIFY, "the MANIFEST lists %s, which is not there", name);
    else if (rc == 0 && want_size && (uint64_t)st.st_size != size)
        rc = tb_error_set(TB_EVERIFY, "%s has %lld bytes, the MANIFEST says %" PRIu64, name, (long long)st.st_size,
                          size);
    free(path);
    return rc;
}

int tb_content_check_files(const char *db, enum tb_policy policy, uint64_t *last_seq)
{
    struct tb_rmf_version *v = NULL;
    int rc = tb_rmf_load_current(db, &v);
    for (size_t i = 0; rc == 0 && i < v->ncf; i++) {
        const struct tb_rmf_cf *cf = &v->cfs[i];
        for (size_t k = 0; rc == 0 && k < cf->nfiles; k++)
            rc = live_file(db, cf->files[k].number, "sst", cf->files[k].size, 1);
        for (size_t k = 0; rc == 0 && k < cf->nblobs; k++)
            rc = live_file(db, cf->blobs[k].number, "blob", 0, 0);
    }
    if (rc == 0)
        rc = position_of(db, v, policy, last_seq);
    tb_rmf_version_free(v);
    return rc;
}

int tb_content_writable(const char *db, char **why)
{
    struct tb_content c = { 0 };
    struct tb_rmf_version *v = NULL;
    int rc = tb_rmf_load_current(db, &v);
    *why = NULL;
    if (rc == 0)
        rc = check_comparators(v, &c);
    if (rc == 0 && !c.unavailable && (rc = tb_merge_unknown(db, &c.unavailable)) == 1)
        rc = 0;
    if (rc == 0 && !c.unavailable)
        rc = newer_tables(db, &c);
    if (rc == 0 && c.unavailable) {
        *why = c.unavailable;
        c.unavailable = NULL;
        rc = 1;
    }
    tb_content_clear(&c);
    tb_rmf_version_free(v);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The column families the MANIFEST names, in name order: what a backup records when the
 * content cannot be hashed (the hash, when it can, lists them with their key counts). */
static int cfs_from_version(const struct tb_rmf_version *v, struct tb_content *out)
{
    if (!v)
        return 0;
    if (!(out->cfs = calloc(v->ncf + 1, sizeof *out->cfs)))
        return tb_error_set(TB_EIO, "out of memory");
    for (size_t i = 0; i < v->ncf; i++) {
        if (!(out->cfs[i] = strdup(v->cfs[i].name)))
            return tb_error_set(TB_EIO, "out of memory");
        out->ncf++;
    }
    qsort(out->cfs, out->ncf, sizeof *out->cfs, cmp_str);
    return 0;
}

static int hash_copy(const char *copy, const char *scratch, const struct tb_content_opts *o, struct tb_content *out)
{
    struct tb_rocks_hash h = { 0 };
    struct tb_rocks_hash_opts ho = {
        .version = o->hash_version, .threads = o->threads, .progress = o->progress, .arg = o->progress_arg
    };
    tb_rocks *r = NULL;
    char *ro = tb_fs_join(scratch, "ro");
    int rc = ro ? tb_rocks_open(&r, copy, TB_ROCKS_READONLY, ro) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0)
        rc = tb_rocks_hash(r, &h, &ho);
    if (rc < 0)
        goto cleanup;
    tb_hex(h.digest, 32, out->hex);
    for (size_t i = 0; i < out->ncf; i++)
        free(out->cfs[i]);
    free(out->cfs);
    out->ncf = 0;
    out->cfs = calloc(h.ncf + 1, sizeof *out->cfs);
    out->keys = calloc(h.ncf + 1, sizeof *out->keys);
    if (!out->cfs || !out->keys) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < h.ncf; i++) {
        if (!(out->cfs[i] = strdup(h.names[i]))) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        out->keys[i] = h.keys[i];
        out->ncf++;
    }
cleanup:
    tb_rocks_hash_clear(&h);
    tb_rocks_free(r);
    if (ro)
        tb_fs_rm_rf(ro);
    free(ro);
    return rc;
}

/* A failure to recover or hash a database whose merge operator the tools do not know is
 * that operator's (its stand-in fails every merge): the content is unavailable, and why. */
static int unknown_merge(const char *copy, int rc, struct tb_content *out)
{
    char *why = NULL, *err = strdup(tb_error_last());
    int u = tb_merge_unknown(copy, &why);
    if (u == 1)
        rc = unavailable(out, "%s, and reading the database needs it (%s)", why, err ? err : "");
    free(why);
    free(err);
    return rc;
}

int tb_content_of(const char *db, const struct tb_content_opts *o, struct tb_content *out)
{
    struct tb_snapshot_opts so = { .wal_dir = o->in_place ? db : o->wal_dir,
                                   .db_paths = o->db_paths,
                                   .ndb_paths = o->ndb_paths,
                                   .checkpoint = o->in_place };
    struct tb_snapshot_info info = { 0 };
    char *copy = tb_fs_join(o->scratch, "copy"), *logs = tb_fs_join(o->scratch, "log");
    int rc;

    memset(out, 0, sizeof *out);
    if (!copy || !logs) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    if ((rc = tb_fs_mkdir_p(o->scratch, 0700)) < 0 || (rc = tb_fs_rm_rf(copy)) < 0 ||
        (rc = tb_snapshot_create(db, &so, copy, &info)) < 0)
        goto cleanup;
    out->policy = o->policy;
    if (o->policy == TB_POLICY_UNKNOWN && o->policy_hint != TB_POLICY_UNKNOWN) {
        out->policy = o->policy_hint;
        if (!(out->policy_how = strdup(o->policy_hint_how ? o->policy_hint_how : "the source's files")))
            rc = tb_error_set(TB_EIO, "out of memory");
        if (rc < 0)
            goto cleanup;
    } else if (o->policy == TB_POLICY_UNKNOWN) {
        if ((rc = tb_content_policy(copy, copy, &out->policy, &out->policy_how)) < 0)
            goto cleanup;
    } else if (!(out->policy_how = strdup("given"))) {
        rc = tb_error_set(TB_EIO, "out of memory");
        goto cleanup;
    }
    /* Before recovery changes the copy (tb_content_position says why). */
    if ((rc = tb_content_position(copy, out->policy, &out->last_seq)) < 0)
        goto cleanup;
    if ((rc = cfs_from_version(info.version, out)) < 0 ||
        (rc = o->files_verified ? newer_tables(copy, out) : check_tables(copy, out)) < 0 ||
        (rc = check_comparators(info.version, out)) < 0 || out->unavailable)
        goto cleanup;
    if (info.wals > 0)
        rc = tb_txndb_recover(copy, out->policy, logs);
    if (rc == 0)
        rc = hash_copy(copy, o->scratch, o, out);
    if (rc < 0 && rc != TB_ENOSPC)
        rc = unknown_merge(copy, rc, out);
cleanup:
    if (rc < 0) {
        enum tb_policy p = out->policy;
        tb_content_clear(out);
        out->policy = p;
    }
    tb_snapshot_info_clear(&info);
    if (copy)
        tb_fs_rm_rf(copy);
    if (logs)
        tb_fs_rm_rf(logs);
    free(copy);
    free(logs);
    return rc;
}

void tb_content_clear(struct tb_content *c)
{
    for (size_t i = 0; c->cfs && i < c->ncf; i++)
        free(c->cfs[i]);
    TB_FREE_ALL(c->cfs, c->keys, c->unavailable, c->policy_how);
    memset(c, 0, sizeof *c);
}
