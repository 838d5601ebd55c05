/* restore: read the archive once, checking every member against the manifest that ends
 * it, extract when asked, then open the copy read-only and compare its content hash. */
#include "restore.h"
#include "content.h"
#include "tar.h"
#include "catalog.h"
#include "config.h"
#include "error.h"
#include "mem.h"
#include "fs.h"
#include "rocks.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

enum { MANIFEST_MAX = 64 << 20 };

/* ---- the names a stream holds: each once, no file where a directory is ---- */

enum { KIND_FILE = 1, KIND_DIR, KIND_IMPLIED };

struct name_slot {
    char *name; /* without a directory's trailing '/' */
    int kind; /* KIND_IMPLIED: a parent of a member, not a member itself */
};

struct names {
    size_t n, cap;
    struct name_slot *v;
};

static size_t name_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of the first len bytes of name: the one holding it, or the empty one where it
 * goes (NULL when out of memory). */
static struct name_slot *names_slot(struct names *ns, const char *name, size_t len)
{
    size_t i;
    if ((ns->n + 1) * 2 > ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 256;
        struct name_slot *v = calloc(cap, sizeof *v);
        if (!v)
            return NULL;
        for (size_t j = 0; j < ns->cap; j++) {
            if (!ns->v[j].name)
                continue;
            for (i = name_hash(ns->v[j].name, strlen(ns->v[j].name)) & (cap - 1); v[i].name; i = (i + 1) & (cap - 1))
                ;
            v[i] = ns->v[j];
        }
        free(ns->v);
        ns->v = v;
        ns->cap = cap;
    }
    for (i = name_hash(name, len) & (ns->cap - 1); ns->v[i].name; i = (i + 1) & (ns->cap - 1))
        if (strlen(ns->v[i].name) == len && memcmp(ns->v[i].name, name, len) == 0)
            break;
    return &ns->v[i];
}

static int names_put(struct names *ns, struct name_slot *s, const char *name, size_t len, int kind)
{
    if (!s->name) {
        if (!(s->name = strndup(name, len)))
            return tb_error_set(TB_EIO, "out of memory");
        ns->n++;
    }
    s->kind = kind;
    return 0;
}

/* Adds a member (and its parents, as implied directories). Refused: a name seen before, a
 * file named like a directory, anything inside a file. Restore would fail on each ("File
 * exists"), so verification, quick or not, refuses them first. */
static int names_add(struct names *ns, const char *name, int is_dir)
{
    size_t len = strlen(name);
    struct name_slot *s;
    int rc;
    if (is_dir && len > 1 && name[len - 1] == '/')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (name[i] != '/')
            continue;
        if (!(s = names_slot(ns, name, i)))
            return tb_error_set(TB_EIO, "out of memory");
        if (s->name && s->kind == KIND_FILE)
            return tb_error_set(TB_EVERIFY, "member %.80s is inside the file member %.80s", name, s->name);
        if (!s->name && (rc = names_put(ns, s, name, i, KIND_IMPLIED)) < 0)
            return rc;
    }
    if (!(s = names_slot(ns, name, len)))
        return tb_error_set(TB_EIO, "out of memory");
    if (s->name && (s->kind != KIND_IMPLIED || !is_dir))
        return tb_error_set(TB_EVERIFY,
                            s->kind == KIND_FILE && !is_dir ? "member %.80s appears twice"
                                                            : "member %.80s is both a file and a directory",
                            name);
    return names_put(ns, s, name, len, is_dir ? KIND_DIR : KIND_FILE);
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->cap; i++)
        free(ns->v[i].name);
    free(ns->v);
}

/* Every directory member is one the manifest's files imply (db/, config/ and their parents). */
static int check_dirs(const struct names *got, const struct tb_manifest *m)
{
    struct names want = { 0 };
    int rc = 0;
    for (size_t i = 0; i < m->nfiles && rc == 0; i++)
        rc = names_add(&want, m->files[i].name, 0);
    if (rc < 0) {
        names_free(&want);
        return tb_error_wrap(TB_EVERIFY, "manifest lists impossible files");
    }
    for (size_t i = 0; i < got->cap && rc == 0; i++) {
        const struct name_slot *g = &got->v[i];
        const struct name_slot *w;
        if (!g->name || g->kind != KIND_DIR || strcmp(g->name, "db") == 0)
            continue;
        w = want.cap ? names_slot(&want, g->name, strlen(g->name)) : NULL;
        if (!w || !w->name || w->kind != KIND_IMPLIED)
            rc = tb_error_set(TB_EVERIFY, "directory member %.80s/ is not one the manifest's files are in", g->name);
    }
    names_free(&want);
    return rc;
}

/* Where a member goes when extracting: db/X under dbdir, config/X under cfgdir. */
static char *dest_for(const char *name, const char *dbdir, const char *cfgdir)
{
    if (strncmp(name, "db/", 3) == 0 && dbdir)
        return name[3] ? tb_fs_join(dbdir, name + 3) : strdup(dbdir);
    if (strncmp(name, "config/", 7) == 0 && cfgdir)
        return name[7] ? tb_fs_join(cfgdir, name + 7) : strdup(cfgdir);
    return NULL;
}

enum { BEHIND_MIN = 4 << 20 };

/* Where a member's bytes go: a memory buffer (keep), the file dest written as wmode says
 * ("wb" for a restore, which fsyncs the tree before it publishes; "wt" for a
 * verification's temporary copy), or nowhere (NULL). */
static int member_sink(const struct tb_tar_entry *e, const char *dest, const char *wmode, int keep, tb_stream **out)
{
    char *parent;
    int rc;
    if (keep)
        return e->size > MANIFEST_MAX
            ? tb_error_set(TB_EVERIFY, "%s is too large (%" PRIu64 " bytes)", e->name, e->size)
            : tb_stream_mem_writer(out);
    if (!dest)
        return tb_stream_null_writer(out);
    parent = tb_fs_dirname(dest);
    rc = parent ? tb_fs_mkdir_p(parent, 0755) : tb_error_set(TB_EIO, "out of memory");
    free(parent);
    if (rc == 0)
        rc = tb_stream_file(out, dest, wmode);
    /* Private until the manifest, at the end, gives the mode (apply_modes). */
    if (rc == 0 && chmod(dest, 0600) < 0) {
        rc = tb_error_errno(TB_EIO, errno, "cannot change the mode of %s", dest);
        tb_stream_free(*out);
    }
    return rc;
}

static int read_member(tb_tar_reader *r, const struct tb_tar_entry *e, const char *dest, const char *wmode,
                       char sha[65], uint64_t *size, char **keep)
{
    tb_stream *src = NULL, *sink = NULL, *h = NULL, *dst = NULL;
    uint64_t n = 0;
    int rc;
    if ((rc = tb_tar_entry_stream(r, &src)) < 0)
        return rc;
    if ((rc = member_sink(e, dest, wmode, keep != NULL, &sink)) == 0 && (rc = tb_stream_sha256(&h, sink)) < 0)
        tb_stream_free(sink);
    dst = h;
    /* A member of megabytes is hashed (and written) by a thread of its own while this one
     * decompresses; the thread that hashes a buffer then copies it from its own cache. */
    if (rc == 0 && !keep && e->size >= BEHIND_MIN && (rc = tb_stream_behind(&dst, h)) < 0)
        dst = h;
    if (rc == 0)
        rc = tb_stream_copy(dst, src, &n);
    if (rc == 0)
        rc = tb_stream_close(dst);
    if (rc == 0) {
        tb_stream_sha256_hex(h, sha);
        *size = n;
        if (keep) {
            size_t len;
            const char *data = tb_stream_mem_data(sink, &len);
            *keep = strndup(data ? data : "", len);
            if (!*keep)
                rc = tb_error_set(TB_EIO, "out of memory");
        }
    }
    tb_stream_free(dst);
    tb_stream_free(src);
    return rc;
}

/* The file members read (seen) against the archive's manifest: each listed, as listed,
 * and every file it lists that this archive stores read. */
static int check_members(const struct tb_manifest *seen, const struct tb_manifest *m)
{
    for (size_t i = 0; i < seen->nfiles; i++) {
        const struct tb_manifest_file *s = &seen->files[i], *f = tb_manifest_find(m, s->name);
        if (!f || f->stored_in)
            return tb_error_set(TB_EVERIFY, "extra member not in the manifest: %s", s->name);
        if (f->size != s->size)
            return tb_error_set(TB_EVERIFY, "member %s has %" PRIu64 " bytes, manifest says %" PRIu64, f->name, s->size,
                                f->size);
        if (strcmp(f->sha256, s->sha256))
            return tb_error_set(TB_EVERIFY, "member %s: SHA-256 mismatch (damaged)", f->name);
        if (f->mode != s->mode)
            return tb_error_set(TB_EVERIFY, "member %s has mode 0%o, manifest says 0%o", f->name, s->mode, f->mode);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        int found = 0;
        if (m->files[i].stored_in)
            continue; /* in an ancestor's archive: read_ancestors checks it */
        for (size_t j = 0; j < seen->nfiles && !found; j++)
            found = strcmp(seen->files[j].name, m->files[i].name) == 0;
        if (!found)
            return tb_error_set(TB_EVERIFY, "member missing from the archive: %s", m->files[i].name);
    }
    return 0;
}


/* What is known of a member when its header comes, before a byte of it is written. */
struct member_caps {
    const struct tb_manifest *outer; /* the manifest beside the archive (NULL: a stream) */
    uint64_t db_bytes; /* db/ data so far (a redacted outer manifest caps it) */
    uint64_t written, room; /* extracted so far; free space where it goes (0: none written) */
};

/* The rules a member's header must pass, the same for --quick, full verification and
 * restore; the manifest that ends a stream checks the rest (check_members, check_dirs). */
static int check_header(const struct tb_tar_entry *e, struct names *ns, struct member_caps *c, const char *where)
{
    int rc;
    if (strcmp(e->name, TB_MANIFEST_NAME) && strncmp(e->name, "db/", 3) && strncmp(e->name, "config/", 7) &&
        !(e->is_dir && strcmp(e->name, "db") == 0) && !(e->is_dir && strcmp(e->name, "config") == 0))
        return tb_error_set(TB_EVERIFY, "unexpected member %.80s (%s)", e->name, where);
    if (e->is_dir && strncmp(e->name, TB_MANIFEST_NAME, strlen(TB_MANIFEST_NAME)) == 0)
        return tb_error_set(TB_EVERIFY, "unexpected member %.80s (%s)", e->name, where);
    /* Our writer makes directories 0755 and records files' permission bits; setuid, setgid,
     * sticky and group- or world-writable directories come only from elsewhere. */
    if (e->mode & 07000)
        return tb_error_set(TB_EVERIFY, "member %.80s has mode 0%o: setuid, setgid and sticky bits are refused (%s)",
                            e->name, (unsigned)e->mode, where);
    if (e->is_dir && (e->mode & 0022))
        return tb_error_set(TB_EVERIFY, "directory member %.80s has mode 0%o: writable by others (%s)", e->name,
                            (unsigned)e->mode, where);
    if ((rc = names_add(ns, e->name, e->is_dir)) < 0)
        return rc;
    if (e->is_dir || strcmp(e->name, TB_MANIFEST_NAME) == 0)
        return 0;
    /* Caps before writing: the outside manifest's size for the member, its db_bytes when it
     * is redacted; for a stream, whose manifest comes last, the space there is. */
    if (c->outer && !c->outer->redacted) {
        const struct tb_manifest_file *f = tb_manifest_find(c->outer, e->name);
        if (!f || f->stored_in)
            return tb_error_set(TB_EVERIFY, "extra member not in the manifest: %.80s", e->name);
        if (f->size != e->size)
            return tb_error_set(TB_EVERIFY, "member %s has %" PRIu64 " bytes, manifest says %" PRIu64, f->name, e->size,
                                f->size);
    } else if (c->outer && strncmp(e->name, "db/", 3) == 0) {
        if (e->size > c->outer->db_bytes - c->db_bytes)
            return tb_error_set(TB_EVERIFY,
                                "member %.80s makes db/ larger than the %" PRIu64 " bytes the manifest "
                                "says (%s)",
                                e->name, c->outer->db_bytes, where);
        c->db_bytes += e->size;
    }
    if (c->room) {
        if (e->size > c->room - c->written)
            return tb_error_set(TB_ENOSPC,
                                "not enough free space: member %.80s has %" PRIu64 " bytes, %" PRIu64 " left (%s)",
                                e->name, e->size, c->room - c->written, where);
        c->written += e->size;
    }
    return 0;
}

/* Restored files get the manifest's modes, never setuid, setgid or sticky (the writer
 * records permission bits only); directories 0755, as the writer makes them. */
static int apply_modes(const struct tb_manifest *m, const char *dbdir, const char *cfgdir)
{
    int rc = 0;
    for (size_t i = 0; i < m->nfiles && rc == 0; i++) {
        char *dest = dest_for(m->files[i].name, dbdir, cfgdir), *dir = NULL;
        int db = strncmp(m->files[i].name, "db/", 3) == 0;
        /* Its directories up to dbdir, or below cfgdir (the user's, left as it is). */
        size_t top = db ? strlen(dbdir) : cfgdir ? strlen(cfgdir) + 1 : 0;
        if (!dest)
            continue;
        if (chmod(dest, m->files[i].mode & 0777) < 0)
            rc = tb_error_errno(TB_EIO, errno, "cannot change the mode of %s", dest);
        while (rc == 0 && (dir = tb_fs_dirname(dest)) && strlen(dir) >= top) {
            if (chmod(dir, 0755) < 0)
                rc = tb_error_errno(TB_EIO, errno, "cannot change the mode of %s", dir);
            free(dest);
            dest = dir;
            dir = NULL;
        }
        free(dir);
        free(dest);
    }
    return rc;
}

/* The archive file of the backup in dir whose manifest is m. */
static char *archive_file(const char *dir, const struct tb_manifest *m)
{
    return tb_fs_join(dir, tb_manifest_archive_name(m));
}

/* Stacks on s (owned) the readers its first bytes call for: decryption (TBCRYPT magic, with
 * keys), then decompression (zstd's magic); *crypt receives the decryptor or NULL. */
/* sha: the tee hashing the file below s, turned off for an encrypted archive (named by its
 * sealed digest, which the decryption computes). */
static int open_layers(tb_stream *s, tb_stream *sha, tb_keyring *keys, const char *where, tb_stream **top,
                       tb_stream **crypt)
{
    unsigned char magic[8];
    size_t n;
    tb_stream *t;
    int rc;
    *crypt = NULL;
    *top = NULL;
    if ((rc = tb_stream_peek(&t, s, magic, 8, &n)) < 0) {
        tb_stream_free(s);
        return rc;
    }
    if (n == 0) {
        tb_stream_free(t);
        return tb_error_set(TB_EVERIFY, "backup archive is empty (%s)", where);
    }
    if (tb_crypt_is_encrypted(magic, n)) {
        tb_stream *c, *p;
        if ((rc = tb_crypt_reader(&c, t, keys)) < 0) {
            tb_stream_free(t);
            return rc;
        }
        *crypt = c;
        tb_stream_sha256_off(sha);
        if ((rc = tb_stream_peek(&p, c, magic, 4, &n)) < 0) {
            tb_stream_free(c);
            return rc;
        }
        t = p;
    }
    if (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
        tb_stream *z;
        if ((rc = tb_stream_zstd_reader(&z, t)) < 0) {
            tb_stream_free(t);
            return rc;
        }
        t = z;
    }
    *top = t;
    return 0;
}

/* Reads s to its end: what libarchive left unread below the decompressor (end blocks,
 * anything appended), so the archive's size and hash cover the whole file. */
static int drain(tb_stream *s)
{
    char buf[65536];
    size_t n;
    int rc;
    do
        rc = tb_stream_read(s, buf, sizeof buf, &n);
    while (rc == 0 && n > 0);
    return rc;
}

/* The id an archive is named by, once read to its end: the sealed digest of an encrypted
 * one (crypt), else the SHA-256 of the file (sha). */
static void archive_id(tb_stream *crypt, tb_stream *sha, char hex[65])
{
    if (crypt)
        tb_crypt_sealed_hex(crypt, hex);
    else
        tb_stream_sha256_hex(sha, hex);
}


/* The readers stacked on an archive file: r owns the stack; the others are layers of it,
 * kept to ask for the archive's size and id once it is read to its end. */
struct reader {
    tb_stream *sha; /* the SHA-256 of the file */
    tb_stream *counter; /* bytes read, with progress (NULL for an ancestor's archive) */
    tb_stream *crypt; /* the decryptor of an encrypted archive, else NULL */
    tb_tar_reader *r;
};

/* Stacks the readers on src (owned): the rate limit, hashing and counting o asks for (o
 * NULL: hashing only), then what the first bytes call for, then the tar reader. */
static int reader_open(struct reader *rd, tb_stream *src, const struct tb_restore_opts *o, tb_keyring *keys,
                       const char *where)
{
    tb_stream *top;
    int rc;
    if (o && o->rate_limit) {
        tb_stream *rl;
        if ((rc = tb_stream_rate_limit(&rl, src, o->rate_limit, NULL, NULL, NULL)) < 0)
            goto cleanup;
        src = rl;
    }
    if ((rc = tb_stream_sha256(&rd->sha, src)) < 0)
        goto cleanup;
    src = rd->sha;
    if (o && (rc = tb_stream_counter(&rd->counter, rd->sha, o->progress, o->progress_arg)) < 0)
        goto cleanup;
    top = o ? rd->counter : rd->sha;
    src = NULL;
    if ((rc = open_layers(top, rd->sha, keys, where, &top, &rd->crypt)) < 0)
        goto cleanup;
    rc = tb_tar_reader_new(&rd->r, top);
cleanup:
    tb_stream_free(src);
    return rc;
}

/* Reads the rest of the archive (below the tar reader: end blocks, anything appended) from
 * s, a layer of the stack, and gives the id the archive is named by. */
static int reader_finish(struct reader *rd, tb_stream *s, char hex[65])
{
    int rc = drain(s);
    archive_id(rd->crypt, rd->sha, hex);
    return rc;
}

/* ---- incremental backups: members stored in an ancestor's archive ---- */

/* The outer manifest of the backup in dir, which must be the one whose archive has the
 * SHA-256 want (a child names its parent by both). */
static int read_parent(const char *dir, const char *want, struct tb_manifest **out)
{
    char *mpath = tb_fs_join(dir, TB_MANIFEST_NAME), *text = NULL;
    int rc = mpath ? tb_fs_read_file(mpath, &text, NULL) : tb_error_set(TB_EIO, "out of memory");
    *out = NULL;
    if (rc == TB_ENOENT)
        rc = tb_error_set(TB_EVERIFY, "parent backup missing: %s (this backup stores only what changed since it)", dir);
    if (rc == 0)
        rc = tb_manifest_parse(text, mpath, out);
    if (rc == 0 && strcmp((*out)->archive_sha256, want))
        rc = tb_error_set(TB_EVERIFY,
                          "parent backup %s is not the one this backup was made from (its archive "
                          "SHA-256 differs)",
                          dir);
    if (rc < 0) {
        tb_manifest_free(*out);
        *out = NULL;
    }
    free(mpath);
    free(text);
    return rc;
}

/* The directory of the ancestor whose archive has this SHA-256, following the parent
 * paths from dir; *mf receives its outer manifest. */
static int find_ancestor(const char *dir, const struct tb_manifest *m, const char *sha, char **out,
                         struct tb_manifest **mf)
{
    char *cur = NULL;
    const struct tb_manifest *at = m;
    struct tb_manifest *pm = NULL;
    int rc = 0;
    *out = NULL;
    *mf = NULL;
    for (unsigned depth = 0; at->parent_path && rc == 0; depth++) {
        char *next = at->parent_path[0] == '/' ? strdup(at->parent_path) : tb_fs_join(cur ? cur : dir, at->parent_path);
        struct tb_manifest *nm = NULL;
        if (!next || depth > 10000) {
            free(next);
            rc = tb_error_set(TB_EIO, next ? "parent chain too long (a loop?)" : "out of memory");
            break;
        }
        free(cur);
        cur = next;
        if ((rc = read_parent(cur, at->parent_sha256, &nm)) < 0)
            break;
        tb_manifest_free(pm);
        at = pm = nm;
        if (strcmp(pm->archive_sha256, sha) == 0) {
            *out = cur;
            *mf = pm;
            cur = NULL;
            pm = NULL;
            break;
        }
    }
    if (rc == 0 && !*out)
        rc = tb_error_set(TB_EVERIFY,
                          "no ancestor of this backup has the archive %.12s... that stores some of its "
                          "members",
                          sha);
    free(cur);
    tb_manifest_free(pm);
    return rc;
}

/* One member of an ancestor's archive that m stores there: checked against m's size (before
 * a byte of it is written) and SHA-256, and extracted under dbdir when not NULL. *got counts
 * them; *named says the error names the parent already. */
static int read_ancestor_member(tb_tar_reader *r, const struct tb_tar_entry *e, const char *adir,
                                const struct tb_manifest_file *f, const char *dbdir, const char *wmode, size_t *got,
                                int *named)
{
    char sha[65], *dest = dbdir ? dest_for(e->name, dbdir, NULL) : NULL;
    uint64_t size;
    int rc;
    *named = 1;
    if (e->size != f->size) {
        free(dest);
        return tb_error_set(TB_EVERIFY, "parent backup %s: member %s has %" PRIu64 " bytes, manifest says %" PRIu64,
                            adir, e->name, e->size, f->size);
    }
    rc = read_member(r, e, dest, wmode, sha, &size, NULL);
    free(dest);
    *named = 0;
    if (rc == 0 && (size != f->size || strcmp(sha, f->sha256))) {
        rc = tb_error_set(TB_EVERIFY, "parent backup %s: member %s SHA-256 mismatch (damaged)", adir, e->name);
        *named = 1;
    }
    ++*got;
    return rc;
}

/* Reads the archive of the ancestor at adir once: every member m stores there is checked
 * against m's size and SHA-256 (and extracted under dbdir when not NULL), and the whole
 * archive against the SHA-256 that names it. */
static int read_ancestor(const char *adir, const struct tb_manifest *am, const struct tb_manifest *m,
                         const char *sha_id, const char *dbdir, const char *wmode, tb_keyring *keys)
{
    struct reader rd = { 0 };
    tb_stream *src = NULL;
    char *apath = archive_file(adir, am), hex[65];
    size_t want = 0, got = 0;
    int rc, named = 0; /* the error's message names the parent already */
    for (size_t i = 0; i < m->nfiles; i++)
        want += m->files[i].stored_in && strcmp(m->files[i].stored_in, sha_id) == 0;
    if (!apath)
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_stream_file(&src, apath, "r");
    if (rc == TB_ENOENT) {
        rc = tb_error_set(TB_EVERIFY, "parent backup %s has lost its archive (%s)", adir, apath);
        named = 1;
    }
    if (rc == 0)
        rc = reader_open(&rd, src, NULL, keys, adir);
    while (rc == 0) {
        struct tb_tar_entry e;
        const struct tb_manifest_file *f;
        int more = tb_tar_next(rd.r, &e);
        if (more <= 0) {
            rc = more;
            break;
        }
        f = e.is_dir ? NULL : tb_manifest_find(m, e.name);
        if (f && f->stored_in && strcmp(f->stored_in, sha_id) == 0)
            rc = read_ancestor_member(rd.r, &e, adir, f, dbdir, wmode, &got, &named);
    }
    /* Anything the layers below found (a corrupt zstd frame, a torn tar) is the parent's
     * damage too: say whose. A wrong key and a full disk keep their own words. */
    if (rc < 0 && !named && rc != TB_EKEY && rc != TB_ENOSPC)
        rc = tb_error_wrap(TB_EVERIFY, "parent backup %s", adir);
    if (rc == 0 && got != want)
        rc = tb_error_set(TB_EVERIFY, "parent backup %s lacks %zu of the members this backup needs from it", adir,
                          want - got);
    if (rc == 0 && (rc = reader_finish(&rd, rd.crypt ? rd.crypt : rd.sha, hex)) == 0 && strcmp(hex, sha_id))
        rc = tb_error_set(TB_EVERIFY, "parent backup %s: archive SHA-256 does not match (damaged)", adir);
    tb_tar_reader_free(rd.r);
    free(apath);
    return rc;
}

static _Thread_local uid_t own_uid;
static _Thread_local gid_t own_gid;

static int chown_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    if (lchown(p, own_uid, own_gid) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot change owner of %s", p);
    return 0;
}

int tb_restore_check_target(const char *target)
{
    if (tb_rocks_is_live(target))
        return tb_error_set(TB_EIO, "a running process holds the database's LOCK: stop the server first (%s)", target);
    return 0;
}

int tb_restore_may_replace(const char *target, int force, const char *keep_old, int *empty)
{
    int rc;
    if ((rc = tb_restore_check_target(target)) < 0 || (rc = tb_fs_is_empty_dir(target, empty)) < 0)
        return rc;
    if (!*empty && !force && !keep_old)
        return tb_error_set(TB_EIO, "target is not empty (use --force to replace it) (%s)", target);
    return 0;
}

/* Rename into a missing or empty target, or swap with a non-empty one and remove (or keep
 * aside) what was there only after the swap: the target is never missing on the way. */
int tb_restore_publish(const char *stage, const char *target, int force, const char *keep_old)
{
    int empty, rc;
    char *old = NULL;
    /* Again: a server may have started on the old database while we restored. */
    if ((rc = tb_restore_may_replace(target, force, keep_old, &empty)) < 0)
        return rc;
    if (empty) {
        if (tb_fs_exists(target) && rmdir(target) < 0)
            return tb_error_errno(TB_EIO, errno, "cannot replace empty directory %s", target);
        return tb_fs_publish(stage, target);
    }
    if (keep_old && tb_fs_exists(keep_old))
        return tb_error_set(TB_EIO, "cannot keep the old database aside: %s exists", keep_old);
    if (renameat2(AT_FDCWD, stage, AT_FDCWD, target, RENAME_EXCHANGE) < 0)
        return tb_error_errno(TB_EIO, errno, "cannot swap %s into place at %s", stage, target);
    if ((rc = tb_fs_fsync_parent(target)) < 0)
        return rc;
    /* stage now holds the old contents. */
    if (keep_old && !force)
        return tb_fs_publish(stage, keep_old);
    old = strdup(stage);
    rc = old ? tb_fs_rm_rf(old) : 0;
    free(old);
    return rc;
}

/* ---- a restore or verification: phases over one context ---- */

struct restore {
    const struct tb_restore_opts *o;
    const char *where; /* the backup directory, or "stdin" */
    const char *wmode; /* how extracted files are written (read_member) */
    int extract; /* members are written out (all but --verify-only --quick) */
    struct tb_manifest *outer; /* the manifest beside the archive (NULL: a stream) */
    struct tb_manifest *inner; /* the archive's own, its last member */
    struct tb_manifest *seen; /* the file members read, as they were */
    struct names names;
    struct member_caps caps;
    struct reader rd;
    char *mpath, *apath; /* the outer manifest and the archive */
    char *work, *dbdir, *cfgdir; /* where members are extracted */
    char *stage, *ro_scratch;
};

static const char *scratch_of(const struct tb_restore_opts *o)
{
    return o->scratch ? o->scratch : "/tmp";
}

/* The manifest beside the archive and the archive's path and size. */
static int read_outer(struct restore *c)
{
    const char *dir = c->o->backup_dir;
    char *text = NULL;
    struct stat st;
    int rc;
    if (!tb_fs_exists(dir))
        return tb_error_set(TB_ENOENT, "backup directory does not exist (%s)", dir);
    if (!(c->mpath = tb_fs_join(dir, TB_MANIFEST_NAME)))
        return tb_error_set(TB_EIO, "out of memory");
    rc = tb_fs_read_file(c->mpath, &text, NULL);
    if (rc == TB_ENOENT)
        rc = tb_error_set(TB_EVERIFY, "backup is incomplete: %s is missing (%s)", TB_MANIFEST_NAME, dir);
    if (rc == 0)
        rc = tb_manifest_parse(text, c->mpath, &c->outer);
    free(text);
    if (rc == 0 && !(c->apath = archive_file(dir, c->outer)))
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && stat(c->apath, &st) < 0)
        rc = tb_error_errno(TB_EVERIFY, errno, "backup is incomplete: cannot find %s", c->apath);
    if (rc == 0 && c->o->progress_total)
        *c->o->progress_total = (uint64_t)st.st_size;
    return rc;
}

/* Pre-flight: the restored files need db_bytes where they are written. */
static int check_space(const struct restore *c)
{
    const struct tb_restore_opts *o = c->o;
    char *parent = o->verify_only ? strdup(scratch_of(o)) : tb_fs_dirname(o->target);
    uint64_t have = 0, need = c->outer->db_bytes + (1 << 20);
    int rc = parent ? tb_fs_free_bytes(parent, &have) : tb_error_set(TB_EIO, "out of memory");
    if (rc == 0 && have < need)
        rc = tb_error_set(TB_ENOSPC,
                          "not enough free space: restore needs %" PRIu64 " bytes, %" PRIu64 " available (%s)", need,
                          have, parent);
    free(parent);
    return rc;
}

/* Phase 1: the backup directory's manifest and archive, or the stream, under its readers. */
static int open_source(struct restore *c)
{
    const struct tb_restore_opts *o = c->o;
    tb_stream *src = NULL;
    int rc;
    if (o->backup_dir) {
        if ((rc = read_outer(c)) < 0 || (c->extract && (rc = check_space(c)) < 0) ||
            (rc = tb_stream_file(&src, c->apath, "r")) < 0)
            return rc;
    } else if ((rc = tb_stream_borrow(&src, o->in)) < 0) {
        return rc;
    }
    return reader_open(&c->rd, src, o, o->keys, c->where);
}

/* Phase 2: where members are extracted. Verification restores under scratch; a restore
 * goes beside the target so the final rename stays on one filesystem. */
static int make_work(struct restore *c)
{
    const struct tb_restore_opts *o = c->o;
    int rc = 0;
    if (!c->extract)
        return 0;
    if (!o->verify_only)
        rc = tb_fs_temp_sibling(o->target, &c->work);
    else if (asprintf(&c->work, "%s/verify-%d", scratch_of(o), (int)getpid()) < 0) {
        c->work = NULL;
        rc = tb_error_set(TB_EIO, "out of memory");
    }
    if (rc < 0 || (rc = tb_fs_mkdir_p(c->work, 0700)) < 0)
        return rc;
    c->dbdir = tb_fs_join(c->work, "db");
    c->ro_scratch = tb_fs_join(c->work, "rocksdb-log");
    if (o->config_target && !o->verify_only)
        c->cfgdir = strdup(o->config_target);
    if (!c->dbdir || !c->ro_scratch)
        return tb_error_set(TB_EIO, "out of memory");
    /* Never fill the disk: the members' stated sizes must fit in what is free there
     * (less a reserve for RocksDB's open), whatever the manifest at the end says. */
    if ((rc = tb_fs_free_bytes(c->work, &c->caps.room)) < 0)
        return rc;
    c->caps.room = c->caps.room > (1 << 20) ? c->caps.room - (1 << 20) : 1;
    return 0;
}

/* One member whose header passed: the archive's manifest (*is_manifest set), a directory,
 * or a file, hashed (and extracted) and remembered in seen. */
static int read_entry(struct restore *c, const struct tb_tar_entry *e, int *is_manifest)
{
    char sha[65], *dest, *text = NULL;
    uint64_t size;
    int rc = 0;
    if (strcmp(e->name, TB_MANIFEST_NAME) == 0) {
        *is_manifest = 1;
        if ((rc = read_member(c->rd.r, e, NULL, NULL, sha, &size, &text)) == 0)
            rc = tb_manifest_parse(text, "archive member " TB_MANIFEST_NAME, &c->inner);
        free(text);
        return rc;
    }
    dest = dest_for(e->name, c->dbdir, c->cfgdir);
    if (e->is_dir)
        rc = dest ? tb_fs_mkdir_p(dest, 0755) : 0;
    else if ((rc = read_member(c->rd.r, e, dest, c->wmode, sha, &size, NULL)) == 0)
        rc = tb_manifest_add_file(c->seen, e->name, size, sha, (unsigned)e->mode);
    free(dest);
    return rc;
}

/* Phase 3: every member once, its header checked before a byte is written; the
 * manifest ends the archive. */
static int read_archive(struct restore *c)
{
    int after_manifest = 0, rc;
    c->caps.outer = c->outer;
    for (;;) {
        struct tb_tar_entry e;
        int more = tb_tar_next(c->rd.r, &e);
        if (more <= 0) {
            rc = more;
            break;
        }
        if (after_manifest)
            return tb_error_set(TB_EVERIFY, "member after %s: %.80s (%s)", TB_MANIFEST_NAME, e.name, c->where);
        if ((rc = check_header(&e, &c->names, &c->caps, c->where)) < 0 || (rc = read_entry(c, &e, &after_manifest)) < 0)
            return rc;
    }
    if (rc == 0 && !c->inner)
        rc = tb_error_set(TB_EVERIFY, "archive has no %s member: truncated or not a themis backup (%s)",
                          TB_MANIFEST_NAME, c->where);
    return rc;
}

/* Phase 4: the members against the archive's manifest, and the archive against the
 * manifest beside it. */
static int verify_archive(struct restore *c)
{
    char hex[65];
    uint64_t n;
    int rc;
    if ((rc = check_members(c->seen, c->inner)) < 0 || (rc = check_dirs(&c->names, c->inner)) < 0)
        return rc;
    /* An encrypted stream is read to its last chunk: truncation and trailing bytes show
     * only there. */
    if (c->rd.crypt && (rc = drain(c->rd.crypt)) < 0)
        return rc;
    if (!c->outer)
        return 0;
    /* The copy beside the archive is the one read without the archive (--list, expire,
     * the parent of the next incremental): it must say what the archive's says. */
    if ((rc = tb_manifest_compare(c->outer, c->inner)) < 0)
        return tb_error_wrap(rc, "%s differs from the archive's own", c->mpath);
    if ((rc = reader_finish(&c->rd, c->rd.counter, hex)) < 0)
        return rc;
    if ((n = tb_stream_counter_bytes(c->rd.counter)) != c->outer->archive_size)
        return tb_error_set(TB_EVERIFY, "archive has %" PRIu64 " bytes, %s says %" PRIu64 " (%s)", n, TB_MANIFEST_NAME,
                            c->outer->archive_size, c->apath);
    if (strcmp(hex, c->outer->archive_sha256))
        return tb_error_set(TB_EVERIFY, "archive SHA-256 does not match %s (%s)", TB_MANIFEST_NAME, c->apath);
    return 0;
}

/* Phase 5: an incremental backup's parent is there and is the one it was made from, even
 * when no member is taken from it: a parent path that leads elsewhere is a damaged (or
 * hostile) manifest. Only the parent's MANIFEST.json is read here. A stream's parent is
 * looked for only when members are taken from it (it may be restored far from it). */
static int check_parent(struct restore *c)
{
    char *pdir = NULL;
    struct tb_manifest *pm = NULL;
    int rc;
    if (!c->inner->parent_path || !c->o->backup_dir)
        return 0;
    rc = find_ancestor(c->o->backup_dir, c->inner, c->inner->parent_sha256, &pdir, &pm);
    free(pdir);
    tb_manifest_free(pm);
    return rc < 0 ? tb_error_wrap(TB_EVERIFY, "parent.path %s", c->inner->parent_path) : 0;
}

/* Phase 6: an incremental backup's members its ancestors store, each archive read once. */
static int read_ancestors(struct restore *c)
{
    const struct tb_manifest *m = c->inner;
    const char *dir = c->o->backup_dir;
    int rc = 0;
    for (size_t i = 0; i < m->nfiles && rc == 0; i++) {
        const char *id = m->files[i].stored_in;
        char *adir = NULL;
        struct tb_manifest *am = NULL;
        int done = !id;
        for (size_t j = 0; j < i && !done; j++)
            done = m->files[j].stored_in && strcmp(m->files[j].stored_in, id) == 0;
        if (done)
            continue;
        /* A stream's parent is named by an absolute path: it must be there. */
        if (!dir && m->parent_path[0] != '/')
            return tb_error_set(TB_EIO,
                                "this is an incremental backup: restore it from its backup directory, "
                                "beside its parent (%s)",
                                m->parent_path);
        rc = find_ancestor(dir ? dir : "/", m, id, &adir, &am);
        if (rc == 0)
            rc = read_ancestor(adir, am, m, id, c->dbdir, c->wmode, c->o->keys);
        free(adir);
        tb_manifest_free(am);
    }
    return rc;
}

/* A restore: every file's SHA-256 already proved the bytes those the manifest's content
 * hash was computed from, so only what an open needs is checked, without reading a table
 * (docs/benchmarks.md: the hash took most of a restore's time); the content hash is
 * compared by --verify-only. */
static int check_opens(const struct restore *c, enum tb_policy policy)
{
    uint64_t seq = 0;
    int rc = tb_content_check_files(c->dbdir, policy, &seq);
    if (rc < 0)
        return tb_error_wrap(rc == TB_EIO ? TB_EIO : TB_EVERIFY, "restored database does not open");
    if (seq != c->inner->last_seq)
        return tb_error_set(TB_EVERIFY, "restored database ends at sequence %" PRIu64 ", manifest says %" PRIu64, seq,
                            c->inner->last_seq);
    return 0;
}

/* A verification: the copy opened read-only, its content hash and sequence compared. */
static int compare_content(const struct restore *c, enum tb_policy policy)
{
    const struct tb_manifest *m = c->inner;
    struct tb_content ct = { 0 };
    struct tb_content_opts co = { .policy = policy,
                                  .in_place = 1,
                                  .files_verified = 1,
                                  .scratch = c->ro_scratch,
                                  .hash_version = m->content_hash_v2 ? 2 : 1 };
    int rc = tb_content_of(c->dbdir, &co, &ct);
    if (rc < 0 && rc != TB_ENOSPC && rc != TB_EVERIFY)
        rc = tb_error_wrap(TB_EVERIFY, "restored database does not open");
    else if (rc == 0 && !m->hash_unavailable && ct.unavailable)
        rc = tb_error_set(TB_EIO, "cannot compare the restored database's content with the manifest: %s",
                          ct.unavailable);
    else if (rc == 0 && !m->hash_unavailable && strcmp(ct.hex, m->content_hash))
        rc = tb_error_set(TB_EVERIFY, "content hash of the restored database differs from the manifest (%s)", c->where);
    else if (rc == 0 && ct.last_seq != m->last_seq)
        rc = tb_error_set(TB_EVERIFY, "restored database ends at sequence %" PRIu64 ", manifest says %" PRIu64,
                          ct.last_seq, m->last_seq);
    tb_content_clear(&ct);
    if (rc == 0)
        tb_fs_rm_rf(c->ro_scratch);
    return rc;
}

/* Phase 7: the restored copy recovered as its server would (under the manifest's write
 * policy; older manifests were all write_committed) must hold what the manifest recorded.
 * A backup whose content hash could not be computed (manifest 1.3) is checked by its
 * files' checksums, its tables' own and its sequence; the tool says why. */
static int verify_content(struct restore *c)
{
    enum tb_policy policy = TB_POLICY_COMMITTED;
    if (!c->extract)
        return 0;
    if (c->inner->write_policy && tb_policy_parse(c->inner->write_policy, &policy) < 0)
        return tb_error_set(TB_EVERIFY, "manifest names an unknown write_policy '%s' (%s)", c->inner->write_policy,
                            c->where);
    return c->o->verify_only ? compare_content(c, policy) : check_opens(c, policy);
}

/* Phase 8: a restore's copy owned, given its modes, made durable and put in place. */
static int publish(struct restore *c)
{
    const struct tb_restore_opts *o = c->o;
    int rc;
    if (o->verify_only)
        return 0;
    if (o->set_owner) {
        own_uid = o->uid;
        own_gid = o->gid;
        if (nftw(c->dbdir, chown_one, 32, FTW_PHYS) != 0)
            return TB_EIO;
    }
    /* Durable before it is published: the files were only handed to the writeback. */
    if ((rc = apply_modes(c->inner, c->dbdir, c->cfgdir)) < 0 || (rc = tb_fs_fsync_tree(c->dbdir)) < 0 ||
        (c->cfgdir && (rc = tb_fs_fsync_tree(c->cfgdir)) < 0))
        return rc;
    c->stage = c->dbdir;
    c->dbdir = NULL;
    return tb_restore_publish(c->stage, o->target, o->force, o->keep_old);
}

static void restore_clear(struct restore *c, int failed)
{
    tb_tar_reader_free(c->rd.r);
    if (c->work)
        tb_fs_rm_rf(c->work);
    if (c->stage && failed)
        tb_fs_rm_rf(c->stage);
    names_free(&c->names);
    tb_manifest_free(c->seen);
    tb_manifest_free(c->outer);
    tb_manifest_free(c->inner);
    TB_FREE_ALL(c->mpath, c->apath, c->work, c->dbdir, c->cfgdir, c->stage, c->ro_scratch);
}

int tb_restore_run(const struct tb_restore_opts *o, struct tb_manifest **out)
{
    static int (*const phases[])(struct restore *) = {
        open_source, make_work, read_archive, verify_archive, check_parent, read_ancestors, verify_content, publish,
    };
    struct restore c = { .o = o,
                         .where = o->backup_dir ? o->backup_dir : "stdin",
                         .wmode = o->verify_only ? "wt" : "wb",
                         .extract = !o->verify_only || !o->quick };
    int rc, empty;
    if (!o->verify_only) {
        if (!o->target)
            return tb_error_set(TB_EUSAGE, "restore needs a target directory");
        if ((rc = tb_restore_may_replace(o->target, o->force, o->keep_old, &empty)) < 0)
            return rc;
    }
    rc = tb_manifest_new(&c.seen);
    for (size_t i = 0; i < sizeof phases / sizeof *phases && rc == 0; i++)
        rc = phases[i](&c);
    if (rc == 0 && out) {
        *out = c.inner;
        c.inner = NULL;
    }
    restore_clear(&c, rc < 0);
    return rc;
}

int tb_restore_pick(const char *root, int64_t t, const struct tb_restore_opts *with, int (*prepare)(const char *dir),
                    void (*skipped)(void *arg, const char *dir, const char *why), void *arg, const char *shown,
                    char **out)
{
    struct tb_catalog_entry *v = NULL;
    size_t n = 0;
    int tried = 0, rc = tb_catalog_list(root, &v, &n);
    if (rc < 0)
        return rc;
    /* Newest first; the first whose checksums verify. */
    for (size_t i = 0; i < n; i++) {
        struct tb_restore_opts ro = { 0 };
        if (v[i].created_ns > t)
            continue;
        ro.backup_dir = v[i].dir;
        ro.verify_only = 1;
        ro.quick = 1;
        if (with) {
            ro.keys = with->keys;
            ro.rate_limit = with->rate_limit;
            ro.progress = with->progress;
            ro.progress_arg = with->progress_arg;
            ro.progress_total = with->progress_total;
        }
        tried++;
        if ((!prepare || prepare(v[i].dir) == 0) && tb_restore_run(&ro, NULL) == 0) {
            *out = v[i].dir;
            v[i].dir = NULL;
            tb_catalog_free(v, n);
            return 0;
        }
        if (skipped)
            skipped(arg, v[i].dir, tb_error_last());
    }
    tb_catalog_free(v, n);
    return tb_error_set(
        TB_EGAP, t == INT64_MAX ? "no %sbackup under %s" : "no %sbackup under %s was made before the target time",
        tried ? "good " : "", shown ? shown : root);
}

int tb_restore_target_map(struct tb_restore_target *out, const char *target, const char *config_file, int force,
                          int64_t now)
{
    struct tb_config *cfg = NULL;
    char *dir = NULL, stamp[32];
    time_t t = (time_t)now;
    int rc, mapped = 0, empty = 1;
    memset(out, 0, sizeof *out);
    if ((rc = tb_config_open(&cfg, config_file, 0)) == 0)
        rc = tb_config_db_dir(target, tb_config_db_path(cfg), &dir, &mapped);
    tb_config_free(cfg);
    if (rc == 0 && mapped && strlen(dir) >= PATH_MAX)
        rc = tb_error_set(TB_EUSAGE, "path too long (%s)", dir);
    if (rc == 0 && !mapped && !(out->target = strdup(target)))
        rc = tb_error_set(TB_EIO, "out of memory");
    if (rc < 0 || !mapped) {
        free(dir);
        return rc;
    }
    out->target = dir;
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&t));
    if (!(out->data_dir = strdup(target)) ||
        (!force && asprintf(&out->keep_old, "%s.before-restore-%s", dir, stamp) < 0)) {
        out->keep_old = NULL;
        tb_restore_target_clear(out);
        return tb_error_set(TB_EIO, "out of memory");
    }
    rc = tb_fs_is_empty_dir(dir, &empty);
    out->had_old = rc == 0 && !empty && !force;
    if (rc < 0)
        tb_restore_target_clear(out);
    return rc;
}

void tb_restore_target_clear(struct tb_restore_target *t)
{
    TB_FREE_ALL(t->target, t->data_dir, t->keep_old);
    memset(t, 0, sizeof *t);
}
