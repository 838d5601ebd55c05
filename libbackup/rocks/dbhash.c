/* dbhash: the content hash of an open database, themis-dbhash-v1 and -v2 (docs/format.md). */
#include "bytes.h"
#include "error.h"
#include "mem.h"
#include "rocks.h"
#include "rocks_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/evp.h>
#include <rocksdb/c.h>
#include <xxhash.h>

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

static void put_len(struct hpipe *h, uint64_t n)
{
    unsigned char b[8];
    tb_put_le64(b, n);
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
        return tb_rocks_error(TB_EVERIFY, err, "cannot read column family", r->cf_names[i]);
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
    tb_put_le64(*buf, kl);
    memcpy(*buf + 8, k, kl);
    tb_put_le64(*buf + 8 + kl, vl);
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
        rc = tb_rocks_error(TB_EVERIFY, err, "cannot read column family", h->r->cf_names[t->cf]);
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

/* The cut candidates of column family i: its tables' smallest and largest keys, sorted,
 * each once (keys point into lf). */
static int h2_cuts(const tb_rocks *r, size_t i, const rocksdb_livefiles_t *lf, struct tb_span **out, size_t *n)
{
    int nlf = lf ? rocksdb_livefiles_count(lf) : 0;
    struct tb_span *f = calloc(2 * (size_t)nlf + 1, sizeof *f);
    size_t k = 0;
    if (!f)
        return tb_error_set(TB_EIO, "out of memory");
    for (int j = 0; j < nlf; j++)
        if (strcmp(rocksdb_livefiles_column_family_name(lf, j), r->cf_names[i]) == 0) {
            f[k].p = rocksdb_livefiles_smallestkey(lf, j, &f[k].len);
            k++;
            f[k].p = rocksdb_livefiles_largestkey(lf, j, &f[k].len);
            k++;
        }
    qsort(f, k, sizeof *f, tb_span_cmp);
    *n = 0;
    for (size_t j = 0; j < k; j++)
        if (*n == 0 || tb_span_cmp(&f[j], &f[*n - 1]) != 0)
            f[(*n)++] = f[j];
    *out = f;
    return 0;
}

/* Cuts column family i at its tables' first and last keys, in byte order (the comparator
 * of every CF we open), into ranges of about target bytes as RocksDB estimates them across
 * its levels; any cut gives the same hash, this one ranges of similar work. */
static int h2_plan_cf(struct h2_run *h, size_t *cap, size_t i, const rocksdb_livefiles_t *lf, uint64_t target)
{
    struct tb_span *c = NULL;
    size_t n = 0, from = 0;
    uint64_t *sizes = NULL, acc = 0;
    char *err = NULL;
    int rc = h2_cuts(h->r, i, lf, &c, &n);
    if (rc == 0 && n > 1) {
        const char **lo = calloc(n, sizeof *lo), **hi = calloc(n, sizeof *hi);
        size_t *lol = calloc(n, sizeof *lol), *hil = calloc(n, sizeof *hil);
        if ((sizes = calloc(n, sizeof *sizes)) && lo && hi && lol && hil) {
            for (size_t j = 0; j + 1 < n; j++) {
                lo[j] = c[j].p, lol[j] = c[j].len;
                hi[j] = c[j + 1].p, hil[j] = c[j + 1].len;
            }
            rocksdb_approximate_sizes_cf(h->r->db, h->r->cfs[i], (int)(n - 1), lo, lol, hi, hil, sizes, &err);
        } else {
            rc = tb_error_set(TB_EIO, "out of memory");
        }
        TB_FREE_ALL(lo, hi, lol, hil);
        if (err) /* no estimate: one range */
            n = 1;
        free(err);
    }
    /* Interval j is [c[j], c[j + 1]); before the first and after the last key, nothing. */
    for (size_t j = 1; rc == 0 && j + 1 < n; j++) {
        acc += sizes[j - 1];
        if (acc >= target) {
            rc = h2_task_add(h, cap, i, from ? c[from].p : NULL, from ? c[from].len : 0, c[j].p, c[j].len, acc);
            from = j;
            acc = 0;
        }
    }
    if (rc == 0)
        rc = h2_task_add(h, cap, i, from ? c[from].p : NULL, from ? c[from].len : 0, NULL, 0,
                         acc + (n > 1 ? sizes[n - 2] : 0));
    TB_FREE_ALL(c, sizes);
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
    target = total / ((uint64_t)threads * 8);
    if (target < (4u << 20))
        target = 4u << 20;
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
        tb_put_le64(b, strlen(name));
        tb_put_le64(b + 8, s->n);
        tb_put_le64(b + 16, s->lo);
        tb_put_le64(b + 24, s->hi);
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
