/* restore: read the archive once, checking every member against the manifest that ends
 * it, extract when asked, then open the copy read-only and compare its content hash. */
#include "restore.h"
#include "content.h"
#include "backup_archive.h"
#include "catalog.h"
#include "error.h"
#include "fs.h"
#include "rocks.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

enum { MANIFEST_MAX = 64 << 20 };

struct seen {
    size_t n, cap;
    struct tb_manifest_file *v;
};

static int seen_add(struct seen *s, const char *name, uint64_t size, const char *sha, unsigned mode)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct tb_manifest_file *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return tb_error_set(TB_EIO, "out of memory");
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n].name = strdup(name);
    s->v[s->n].size = size;
    s->v[s->n].mode = mode;
    memcpy(s->v[s->n].sha256, sha, 65);
    if (!s->v[s->n].name)
        return tb_error_set(TB_EIO, "out of memory");
    s->n++;
    return 0;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
}

/* ---- the names a stream holds: each once, no file where a directory is ---- */

enum { KIND_FILE = 1, KIND_DIR, KIND_IMPLIED };

struct name_slot {
    char *name;  /* without a directory's trailing '/' */
    int kind;    /* KIND_IMPLIED: a parent of a member, not a member itself */
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
        return tb_error_set(TB_EVERIFY, s->kind == KIND_FILE && !is_dir ? "member %.80s appears twice"
                            : "member %.80s is both a file and a directory", name);
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

/* wmode: how a file is written (tb_stream_file): "wb" for a restore, which fsyncs the
 * tree before it publishes; "wt" for a verification's temporary copy. */
static int read_member(tb_archive_reader *r, const struct tb_archive_entry *e, const char *dest, const char *wmode,
                       char sha[65], uint64_t *size, char **keep)
{
    tb_stream *src = NULL, *h = NULL, *dst = NULL;
    uint64_t n = 0;
    int rc;
    if ((rc = tb_archive_entry_stream(r, &src)) < 0)
        return rc;
    if ((rc = tb_stream_sha256(&h, src)) < 0) {
        tb_stream_free(src);
        return rc;
    }
    if (keep) {
        rc = e->size > MANIFEST_MAX ? tb_error_set(TB_EVERIFY, "%s is too large (%" PRIu64 " bytes)", e->name, e->size)
                                    : tb_stream_mem_writer(&dst);
    } else if (dest) {
        char *parent = tb_fs_dirname(dest);
        rc = parent ? tb_fs_mkdir_p(parent, 0755) : tb_error_set(TB_EIO, "out of memory");
        free(parent);
        if (rc == 0)
            rc = tb_stream_file(&dst, dest, wmode);
        /* Private until the manifest, at the end, gives the mode (apply_modes). */
        if (rc == 0 && chmod(dest, 0600) < 0)
            rc = tb_error_errno(TB_EIO, errno, "cannot change the mode of %s", dest);
    } else {
        rc = tb_stream_null_writer(&dst);
    }
    if (rc == 0)
        rc = tb_stream_copy(dst, h, &n);
    if (rc == 0)
        rc = tb_stream_close(dst);
    if (rc == 0) {
        tb_stream_sha256_hex(h, sha);
        *size = n;
        if (keep) {
            size_t len;
            const char *data = tb_stream_mem_data(dst, &len);
            *keep = strndup(data ? data : "", len);
            if (!*keep)
                rc = tb_error_set(TB_EIO, "out of memory");
        }
    }
    tb_stream_free(dst);
    tb_stream_free(h);
    return rc;
}

static int check_members(const struct seen *s, const struct tb_manifest *m)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct tb_manifest_file *f = tb_manifest_find(m, s->v[i].name);
        if (!f || f->stored_in)
            return tb_error_set(TB_EVERIFY, "extra member not in the manifest: %s", s->v[i].name);
        if (f->size != s->v[i].size)
            return tb_error_set(TB_EVERIFY, "member %s has %" PRIu64 " bytes, manifest says %" PRIu64,
                                f->name, s->v[i].size, f->size);
        if (strcmp(f->sha256, s->v[i].sha256))
            return tb_error_set(TB_EVERIFY, "member %s: SHA-256 mismatch (damaged)", f->name);
        if (f->mode != s->v[i].mode)
            return tb_error_set(TB_EVERIFY, "member %s has mode 0%o, manifest says 0%o", f->name, s->v[i].mode,
                                f->mode);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        int found = 0;
        if (m->files[i].stored_in)
            continue; /* in an ancestor's archive: read_ancestors checks it */
        for (size_t j = 0; j < s->n && !found; j++)
            found = strcmp(s->v[j].name, m->files[i].name) == 0;
        if (!found)
            return tb_error_set(TB_EVERIFY, "member missing from the archive: %s", m->files[i].name);
    }
    return 0;
}


/* What is known of a member when its header comes, before a byte of it is written. */
struct member_caps {
    const struct tb_manifest *outer; /* the manifest beside the archive (NULL: a stream) */
    uint64_t db_bytes;                /* db/ data so far (a redacted outer manifest caps it) */
    uint64_t written, room;           /* extracted so far; free space where it goes (0: none written) */
};

/* The rules a member's header must pass, the same for --quick, full verification and
 * restore; the manifest that ends a stream checks the rest (check_members, check_dirs). */
static int check_header(const struct tb_archive_entry *e, struct names *ns, struct member_caps *c, const char *where)
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
            return tb_error_set(TB_EVERIFY, "member %s has %" PRIu64 " bytes, manifest says %" PRIu64, f->name,
                                e->size, f->size);
    } else if (c->outer && strncmp(e->name, "db/", 3) == 0) {
        if (e->size > c->outer->db_bytes - c->db_bytes)
            return tb_error_set(TB_EVERIFY, "member %.80s makes db/ larger than the %" PRIu64 " bytes the manifest "
                                "says (%s)", e->name, c->outer->db_bytes, where);
        c->db_bytes += e->size;
    }
    if (c->room) {
        if (e->size > c->room - c->written)
            return tb_error_set(TB_ENOSPC, "not enough free space: member %.80s has %" PRIu64 " bytes, %" PRIu64
                                " left (%s)", e->name, e->size, c->room - c->written, where);
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

/* ---- incremental backups: members stored in an ancestor's archive ---- */

/* The directory of the ancestor whose archive has this SHA-256, following the parent
 * paths from dir; *mf receives its outer manifest. */
static int find_ancestor(const char *dir, const struct tb_manifest *m, const char *sha, char **out,
                         struct tb_manifest **mf)
{
    char *cur = NULL, *mpath = NULL, *text = NULL;
    const struct tb_manifest *at = m;
    struct tb_manifest *pm = NULL;
    int rc = 0;
    *out = NULL;
    *mf = NULL;
    for (unsigned depth = 0; at->parent_path; depth++) {
        char *next = at->parent_path[0] == '/' ? strdup(at->parent_path) : tb_fs_join(cur ? cur : dir, at->parent_path);
        const char *want = at->parent_sha256;
        struct tb_manifest *nm = NULL;
        if (!next || depth > 10000) {
            free(next);
            rc = tb_error_set(TB_EIO, next ? "parent chain too long (a loop?)" : "out of memory");
            break;
        }
        free(cur);
        cur = next;
        free(mpath);
        free(text);
        text = NULL;
        mpath = tb_fs_join(cur, TB_MANIFEST_NAME);
        rc = mpath ? tb_fs_read_file(mpath, &text, NULL) : tb_error_set(TB_EIO, "out of memory");
        if (rc == TB_ENOENT)
            rc = tb_error_set(TB_EVERIFY, "parent backup missing: %s (this backup stores only what changed since it)", cur);
        if (rc == 0)
            rc = tb_manifest_parse(text, mpath, &nm);
        if (rc == 0 && strcmp(nm->archive_sha256, want))
            rc = tb_error_set(TB_EVERIFY, "parent backup %s is not the one this backup was made from (its archive "
                              "SHA-256 differs)", cur);
        if (rc < 0) {
            tb_manifest_free(nm);
            break;
        }
        tb_manifest_free(pm);
        pm = nm;
        at = pm;
        if (strcmp(pm->archive_sha256, sha) == 0) {
            *out = cur;
            *mf = pm;
            cur = NULL;
            pm = NULL;
            break;
        }
    }
    if (rc == 0 && !*out)
        rc = tb_error_set(TB_EVERIFY, "no ancestor of this backup has the archive %.12s... that stores some of its members", sha);
    free(cur);
    free(mpath);
    free(text);
    tb_manifest_free(pm);
    return rc;
}

/* Reads the archive of the ancestor at adir once: every member m stores there is checked
 * against m's size and SHA-256 (and extracted under dbdir when not NULL), and the whole
 * archive against the SHA-256 that names it. */
static int read_ancestor(const char *adir, const struct tb_manifest *am, const struct tb_manifest *m,
                         const char *sha_id, const char *dbdir, const char *wmode, tb_keyring *keys)
{
    tb_stream *src = NULL, *sha = NULL, *top = NULL, *crypt = NULL;
    tb_archive_reader *r = NULL;
    char *apath = archive_file(adir, am);
    size_t want = 0, got = 0;
    char hex[65];
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
    if (rc == 0 && (rc = tb_stream_sha256(&sha, src)) == 0) {
        src = NULL;
        rc = open_layers(sha, sha, keys, adir, &top, &crypt);
    }
    if (rc == 0) {
        tb_stream *stack = top;
        top = NULL;
        rc = tb_archive_reader_new(&r, stack);
    }
    while (rc == 0) {
        struct tb_archive_entry e;
        const struct tb_manifest_file *f;
        char got_sha[65], *dest;
        uint64_t size;
        int more = tb_archive_next(r, &e);
        if (more <= 0) {
            rc = more;
            break;
        }
        f = e.is_dir ? NULL : tb_manifest_find(m, e.name);
        if (!f || !f->stored_in || strcmp(f->stored_in, sha_id))
            continue;
        if (e.size != f->size) { /* before writing a byte of it */
            rc = tb_error_set(TB_EVERIFY, "parent backup %s: member %s has %" PRIu64 " bytes, manifest says %" PRIu64,
                              adir, e.name, e.size, f->size);
            named = 1;
            break;
        }
        dest = dbdir ? dest_for(e.name, dbdir, NULL) : NULL;
        rc = read_member(r, &e, dest, wmode, got_sha, &size, NULL);
        free(dest);
        if (rc == 0 && (size != f->size || strcmp(got_sha, f->sha256))) {
            rc = tb_error_set(TB_EVERIFY, "parent backup %s: member %s SHA-256 mismatch (damaged)", adir, e.name);
            named = 1;
        }
        got++;
    }
    /* Anything the layers below found (a corrupt zstd frame, a torn tar) is the parent's
     * damage too: say whose. A wrong key and a full disk keep their own words. */
    if (rc < 0 && !named && rc != TB_EKEY && rc != TB_ENOSPC)
        rc = tb_error_wrap(TB_EVERIFY, "parent backup %s", adir);
    if (rc == 0 && got != want)
        rc = tb_error_set(TB_EVERIFY, "parent backup %s lacks %zu of the members this backup needs from it", adir,
                          want - got);
    if (rc == 0) {
        rc = drain(crypt ? crypt : sha);
        archive_id(crypt, sha, hex);
        if (rc == 0 && strcmp(hex, sha_id))
            rc = tb_error_set(TB_EVERIFY, "parent backup %s: archive SHA-256 does not match (damaged)", adir);
    }
    tb_archive_reader_free(r);
    tb_stream_free(top);
    tb_stream_free(src);
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

/* Publishes stage at target: rename into a missing or empty target, or swap with a
 * non-empty one (--force) and remove what was there only after the swap. */
int tb_restore_may_replace(const char *target, int force, const char *keep_old, int *empty)
{
    int rc;
    if ((rc = tb_restore_check_target(target)) < 0 || (rc = tb_fs_is_empty_dir(target, empty)) < 0)
        return rc;
    if (!*empty && !force && !keep_old)
        return tb_error_set(TB_EIO, "target is not empty (use --force to replace it) (%s)", target);
    return 0;
}

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

int tb_restore_run(const struct tb_restore_opts *o, struct tb_manifest **out)
{
    struct tb_manifest *outer = NULL, *inner = NULL;
    struct seen seen = { 0 };
    tb_stream *src = NULL, *sha = NULL, *top = NULL, *counter = NULL, *crypt = NULL;
    tb_archive_reader *r = NULL;
    char *mpath = NULL, *apath = NULL, *text = NULL, *manifest_text = NULL;
    char *work = NULL, *dbdir = NULL, *cfgdir = NULL, *stage = NULL, *ro_scratch = NULL;
    const char *where = o->backup_dir ? o->backup_dir : "stdin";
    int rc = 0, extract, empty, after_manifest = 0;
    const char *wmode = o->verify_only ? "wt" : "wb";
    struct names names = { 0 };
    struct member_caps caps = { 0 };

    if (!o->verify_only) {
        if (!o->target)
            return tb_error_set(TB_EUSAGE, "restore needs a target directory");
        if ((rc = tb_restore_may_replace(o->target, o->force, o->keep_old, &empty)) < 0)
            return rc;
    }
    extract = !o->verify_only || !o->quick;

    if (o->backup_dir) {
        struct stat st;
        if (!tb_fs_exists(o->backup_dir)) {
            rc = tb_error_set(TB_ENOENT, "backup directory does not exist (%s)", o->backup_dir);
            goto cleanup;
        }
        mpath = tb_fs_join(o->backup_dir, TB_MANIFEST_NAME);
        if (!mpath) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        rc = tb_fs_read_file(mpath, &text, NULL);
        if (rc == TB_ENOENT) {
            rc = tb_error_set(TB_EVERIFY, "backup is incomplete: %s is missing (%s)", TB_MANIFEST_NAME, o->backup_dir);
            goto cleanup;
        }
        if (rc < 0 || (rc = tb_manifest_parse(text, mpath, &outer)) < 0)
            goto cleanup;
        apath = archive_file(o->backup_dir, outer);
        if (!apath) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        if (stat(apath, &st) < 0) {
            rc = tb_error_errno(TB_EVERIFY, errno, "backup is incomplete: cannot find %s", apath);
            goto cleanup;
        }
        if (o->progress_total)
            *o->progress_total = (uint64_t)st.st_size;
        /* Pre-flight: the restored files need db_bytes where they are written. */
        if (!o->verify_only || !o->quick) {
            char *parent = o->verify_only ? strdup(o->scratch ? o->scratch : "/tmp") : tb_fs_dirname(o->target);
            uint64_t have = 0;
            rc = parent ? tb_fs_free_bytes(parent, &have) : tb_error_set(TB_EIO, "out of memory");
            if (rc == 0 && have < outer->db_bytes + (1 << 20))
                rc = tb_error_set(TB_ENOSPC, "not enough free space: restore needs %" PRIu64 " bytes, %" PRIu64
                                  " available (%s)", outer->db_bytes + (1 << 20), have, parent);
            free(parent);
            if (rc < 0)
                goto cleanup;
        }
        if ((rc = tb_stream_file(&src, apath, "r")) < 0)
            goto cleanup;
    } else if ((rc = tb_stream_borrow(&src, o->in)) < 0) {
        goto cleanup;
    }
    if (o->rate_limit) {
        tb_stream *rl;
        if ((rc = tb_stream_rate_limit(&rl, src, o->rate_limit, NULL, NULL, NULL)) < 0)
            goto cleanup;
        src = rl;
    }
    if ((rc = tb_stream_sha256(&sha, src)) < 0)
        goto cleanup;
    src = NULL;
    if ((rc = tb_stream_counter(&counter, sha, o->progress, o->progress_arg)) < 0) {
        top = sha;
        goto cleanup;
    }
    if ((rc = open_layers(counter, sha, o->keys, where, &top, &crypt)) < 0)
        goto cleanup;
    {
        tb_stream *stack = top;
        top = NULL;
        if ((rc = tb_archive_reader_new(&r, stack)) < 0)
            goto cleanup;
    }

    if (extract) {
        /* Verification restores under scratch; a restore goes beside the target so the final
         * rename stays on one filesystem. */
        if (o->verify_only)
            rc = asprintf(&work, "%s/verify-%d", o->scratch ? o->scratch : "/tmp", (int)getpid()) < 0
                     ? tb_error_set(TB_EIO, "out of memory") : 0;
        else
            rc = tb_fs_temp_sibling(o->target, &work);
        if (rc < 0)
            goto cleanup;
        if ((rc = tb_fs_mkdir_p(work, 0700)) < 0)
            goto cleanup;
        dbdir = tb_fs_join(work, "db");
        ro_scratch = tb_fs_join(work, "rocksdb-log");
        if (o->config_target && !o->verify_only)
            cfgdir = strdup(o->config_target);
        if (!dbdir || !ro_scratch) {
            rc = tb_error_set(TB_EIO, "out of memory");
            goto cleanup;
        }
        /* Never fill the disk: the members' stated sizes must fit in what is free there
         * (less a reserve for RocksDB's open), whatever the manifest at the end says. */
        if ((rc = tb_fs_free_bytes(work, &caps.room)) < 0)
            goto cleanup;
        caps.room = caps.room > (1 << 20) ? caps.room - (1 << 20) : 1;
    }
    caps.outer = outer;

    for (;;) {
        struct tb_archive_entry e;
        char sha_hex[65], *dest;
        uint64_t size;
        int more = tb_archive_next(r, &e);
        if (more < 0) {
            rc = more;
            goto cleanup;
        }
        if (more == 0)
            break;
        if (after_manifest) {
            rc = tb_error_set(TB_EVERIFY, "member after %s: %.80s (%s)", TB_MANIFEST_NAME, e.name, where);
            goto cleanup;
        }
        if ((rc = check_header(&e, &names, &caps, where)) < 0)
            goto cleanup;
        if (strcmp(e.name, TB_MANIFEST_NAME) == 0) {
            if ((rc = read_member(r, &e, NULL, NULL, sha_hex, &size, &manifest_text)) < 0)
                goto cleanup;
            if ((rc = tb_manifest_parse(manifest_text, "archive member " TB_MANIFEST_NAME, &inner)) < 0)
                goto cleanup;
            after_manifest = 1;
            continue;
        }
        dest = extract ? dest_for(e.name, dbdir, cfgdir) : NULL;
        if (e.is_dir) {
            if (dest)
                rc = tb_fs_mkdir_p(dest, 0755);
            free(dest);
            if (rc < 0)
                goto cleanup;
            continue;
        }
        rc = read_member(r, &e, dest, wmode, sha_hex, &size, NULL);
        free(dest);
        if (rc < 0)
            goto cleanup;
        if ((rc = seen_add(&seen, e.name, size, sha_hex, (unsigned)e.mode)) < 0)
            goto cleanup;
    }
    if (!inner) {
        rc = tb_error_set(TB_EVERIFY, "archive has no %s member: truncated or not a themis backup (%s)",
                          TB_MANIFEST_NAME, where);
        goto cleanup;
    }
    if ((rc = check_members(&seen, inner)) < 0 || (rc = check_dirs(&names, inner)) < 0)
        goto cleanup;
    /* An encrypted stream is read to its last chunk: truncation and trailing bytes show
     * only there. */
    if (crypt && (rc = drain(crypt)) < 0)
        goto cleanup;
    if (outer) {
        char hex[65];
        /* The copy beside the archive is the one read without the archive (--list, expire,
         * the parent of the next incremental): it must say what the archive's says. */
        if ((rc = tb_manifest_compare(outer, inner)) < 0) {
            rc = tb_error_wrap(rc, "%s differs from the archive's own", mpath);
            goto cleanup;
        }
        if ((rc = drain(counter)) < 0)
            goto cleanup;
        archive_id(crypt, sha, hex);
        if (tb_stream_counter_bytes(counter) != outer->archive_size) {
            rc = tb_error_set(TB_EVERIFY, "archive has %" PRIu64 " bytes, %s says %" PRIu64 " (%s)",
                              tb_stream_counter_bytes(counter), TB_MANIFEST_NAME, outer->archive_size, apath);
            goto cleanup;
        }
        if (strcmp(hex, outer->archive_sha256)) {
            rc = tb_error_set(TB_EVERIFY, "archive SHA-256 does not match %s (%s)", TB_MANIFEST_NAME, apath);
            goto cleanup;
        }
    }

    /* An incremental backup's parent is there and is the one it was made from, even when
     * no member is taken from it: a parent path that leads elsewhere is a damaged (or
     * hostile) manifest. Only the parent's MANIFEST.json is read here. A stream's parent is
     * looked for only when members are taken from it (it may be restored far from it). */
    if (inner->parent_path && o->backup_dir) {
        char *pdir = NULL;
        struct tb_manifest *pm = NULL;
        rc = find_ancestor(o->backup_dir, inner, inner->parent_sha256, &pdir, &pm);
        free(pdir);
        tb_manifest_free(pm);
        if (rc < 0) {
            rc = tb_error_wrap(TB_EVERIFY, "parent.path %s", inner->parent_path);
            goto cleanup;
        }
    }

    /* An incremental backup: the members its ancestors store, each archive read once. */
    for (size_t i = 0; i < inner->nfiles; i++) {
        const char *id = inner->files[i].stored_in;
        char *adir = NULL;
        struct tb_manifest *am = NULL;
        int done = 0;
        if (!id)
            continue;
        for (size_t j = 0; j < i && !done; j++)
            done = inner->files[j].stored_in && strcmp(inner->files[j].stored_in, id) == 0;
        if (done)
            continue;
        /* A stream's parent is named by an absolute path: it must be there. */
        if (!o->backup_dir && inner->parent_path[0] != '/') {
            rc = tb_error_set(TB_EIO, "this is an incremental backup: restore it from its backup directory, "
                              "beside its parent (%s)", inner->parent_path);
            goto cleanup;
        }
        rc = find_ancestor(o->backup_dir ? o->backup_dir : "/", inner, id, &adir, &am);
        if (rc == 0)
            rc = read_ancestor(adir, am, inner, id, extract ? dbdir : NULL, wmode, o->keys);
        free(adir);
        tb_manifest_free(am);
        if (rc < 0)
            goto cleanup;
    }

    /* The restored copy recovered as its server would (under the manifest's write policy;
     * older manifests were all write_committed) must hold what the manifest recorded. A
     * backup whose content hash could not be computed (manifest 1.3) is checked by its
     * files' checksums, its tables' own and its sequence; the tool says why. */
    enum tb_policy policy = TB_POLICY_COMMITTED;
    if (extract && inner->write_policy && tb_policy_parse(inner->write_policy, &policy) < 0) {
        rc = tb_error_set(TB_EVERIFY, "manifest names an unknown write_policy '%s' (%s)", inner->write_policy, where);
        goto cleanup;
    }
    if (extract && !o->verify_only) {
        /* A restore: every file's SHA-256 already proved the bytes those the manifest's
         * content hash was computed from, so only what an open needs is checked, without
         * reading a table (docs/benchmarks.md: the hash took most of a restore's time); the
         * content hash is compared by --verify-only. */
        uint64_t seq = 0;
        if ((rc = tb_content_check_files(dbdir, policy, &seq)) < 0) {
            rc = tb_error_wrap(rc == TB_EIO ? TB_EIO : TB_EVERIFY, "restored database does not open");
            goto cleanup;
        }
        if (seq != inner->last_seq) {
            rc = tb_error_set(TB_EVERIFY, "restored database ends at sequence %" PRIu64 ", manifest says %" PRIu64, seq,
                              inner->last_seq);
            goto cleanup;
        }
    } else if (extract) {
        struct tb_content c = { 0 };
        struct tb_content_opts co = { .policy = policy, .in_place = 1, .scratch = ro_scratch };
        rc = tb_content_of(dbdir, &co, &c);
        if (rc < 0 && rc != TB_ENOSPC && rc != TB_EVERIFY)
            rc = tb_error_wrap(TB_EVERIFY, "restored database does not open");
        else if (rc == 0 && !inner->hash_unavailable && c.unavailable)
            rc = tb_error_set(TB_EIO, "cannot compare the restored database's content with the manifest: %s", c.unavailable);
        else if (rc == 0 && !inner->hash_unavailable && strcmp(c.hex, inner->content_hash))
            rc = tb_error_set(TB_EVERIFY, "content hash of the restored database differs from the manifest (%s)", where);
        else if (rc == 0 && c.last_seq != inner->last_seq)
            rc = tb_error_set(TB_EVERIFY, "restored database ends at sequence %" PRIu64 ", manifest says %" PRIu64,
                              c.last_seq, inner->last_seq);
        tb_content_clear(&c);
        if (rc < 0)
            goto cleanup;
        tb_fs_rm_rf(ro_scratch);
    }

    if (!o->verify_only) {
        if (o->set_owner) {
            own_uid = o->uid;
            own_gid = o->gid;
            if (nftw(dbdir, chown_one, 32, FTW_PHYS) != 0) {
                rc = TB_EIO;
                goto cleanup;
            }
        }
        /* Durable before it is published: the files were only handed to the writeback. */
        if ((rc = apply_modes(inner, dbdir, cfgdir)) < 0 || (rc = tb_fs_fsync_tree(dbdir)) < 0 ||
            (cfgdir && (rc = tb_fs_fsync_tree(cfgdir)) < 0))
            goto cleanup;
        stage = dbdir;
        dbdir = NULL;
        if ((rc = tb_restore_publish(stage, o->target, o->force, o->keep_old)) < 0)
            goto cleanup;
    }

cleanup:
    if (rc == 0 && out) {
        *out = inner;
        inner = NULL;
    }
    tb_archive_reader_free(r);
    tb_stream_free(top);
    tb_stream_free(src);
    if (work)
        tb_fs_rm_rf(work);
    if (stage && rc < 0)
        tb_fs_rm_rf(stage);
    seen_free(&seen);
    names_free(&names);
    tb_manifest_free(outer);
    tb_manifest_free(inner);
    free(mpath);
    free(apath);
    free(text);
    free(manifest_text);
    free(work);
    free(dbdir);
    free(cfgdir);
    free(stage);
    free(ro_scratch);
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
    return tb_error_set(TB_EGAP, t == INT64_MAX ? "no %sbackup under %s" : "no %sbackup under %s was made before the target time",
                        tried ? "good " : "", shown ? shown : root);
}
