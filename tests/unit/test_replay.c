/* test_replay: point-in-time recovery as a library call. A base made here with RocksDB
 * (one write at sequence 1, flushed), archives of one Put per sequence written with the
 * segment writer, and tb_replay_run: up to a target sequence or time, stopping before a
 * gap (and refusing to cross one), and --as-wal-file's file read back and replayed by
 * RocksDB itself. */
#include "tap.h"
#include "batch.h"
#include "error.h"
#include "fs.h"
#include "log_reader.h"
#include "replay.h"
#include "segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

static char root[] = "/tmp/test_replay.XXXXXX";

/* A database holding a=0 at sequence 1, flushed and closed: the restored base. */
static char *make_base(const char *name)
{
    char *path = tb_fs_join(root, name), *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_t *db;
    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, path, &err);
    if (db && !err)
        rocksdb_put(db, wo, "a", 1, "0", 1, &err);
    if (db && !err)
        rocksdb_flush(db, fo, &err);
    if (db)
        rocksdb_close(db);
    if (err) {
        diag("cannot make the base %s: %s", path, err);
        free(err);
    }
    rocksdb_flushoptions_destroy(fo);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    return path;
}

/* A WriteBatch at seq: a TSv1 stamp of ns, then Put key=value (keys and values short). */
static size_t batch(unsigned char *b, uint64_t seq, int64_t ns, const char *key, const char *value)
{
    size_t n = 0, kl = strlen(key), vl = strlen(value);
    for (int i = 0; i < 8; i++)
        b[n++] = (unsigned char)(seq >> (8 * i));
    b[n++] = 1; /* count */
    for (int i = 0; i < 3; i++)
        b[n++] = 0;
    b[n++] = 0x03; /* LogData */
    b[n++] = 12;
    memcpy(b + n, "TSv1", 4);
    n += 4;
    for (int i = 0; i < 8; i++)
        b[n++] = (unsigned char)((uint64_t)ns >> (8 * i));
    b[n++] = 0x01; /* Put, default column family */
    b[n++] = (unsigned char)kl;
    memcpy(b + n, key, kl);
    n += kl;
    b[n++] = (unsigned char)vl;
    memcpy(b + n, value, vl);
    return n + vl;
}

/* An archive of one Put k<S>=v<S> for each sequence S in seqs, stamped S microseconds,
 * in one segment, with the default column family named in cf.tsv. */
static char *make_archive(const char *name, const uint64_t *seqs, size_t n)
{
    char *dir = tb_fs_join(root, name), *cf = NULL;
    const char cftext[] = "# id\tname\tfirst_seen_seq\n0\tdefault\t1\n";
    tb_seg_writer *w = NULL;
    int rc = tb_fs_mkdir_p(dir, 0755);
    if (rc == 0 && (cf = tb_fs_join(dir, "cf.tsv")))
        rc = tb_fs_write_atomic(cf, cftext, strlen(cftext), 0644);
    if (rc == 0)
        rc = tb_seg_writer_open(&w, dir, 3, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char k[32], v[32];
        unsigned char b[128];
        struct tb_seg_record r = { .first_seq = seqs[i], .next_seq = seqs[i] + 1, .ts_ns = (int64_t)seqs[i] * 1000,
                                   .flags = TB_SEG_FLAG_STAMPED | (i ? 0 : TB_SEG_FLAG_RESYNC), .log_number = 5,
                                   .end_offset = 100 * (i + 1), .data = b };
        snprintf(k, sizeof k, "k%llu", (unsigned long long)seqs[i]);
        snprintf(v, sizeof v, "v%llu", (unsigned long long)seqs[i]);
        r.len = batch(b, seqs[i], r.ts_ns, k, v);
        rc = tb_seg_writer_append(w, &r);
    }
    if (rc == 0)
        rc = tb_seg_writer_rotate(w, NULL);
    if (rc < 0)
        diag("cannot make the archive %s: %s", dir, tb_error_last());
    tb_seg_writer_free(w);
    free(cf);
    return dir;
}

/* The value of key in the database at path ("" when absent, "?" when it cannot be read). */
static const char *value_of(const char *path, const char *key, char *buf, size_t cap)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *err = NULL, *v = NULL;
    size_t len = 0;
    rocksdb_t *db = rocksdb_open(o, path, &err);
    snprintf(buf, cap, "?");
    if (db && !err && (v = rocksdb_get(db, ro, key, strlen(key), &len, &err), !err))
        snprintf(buf, cap, "%.*s", (int)len, v ? v : "");
    free(v);
    free(err);
    if (db)
        rocksdb_close(db);
    rocksdb_readoptions_destroy(ro);
    rocksdb_options_destroy(o);
    return buf;
}

static void replay_opts(struct tb_replay_opts *o, const char *wal, const char *db)
{
    memset(o, 0, sizeof *o);
    o->wal_dir = wal;
    o->db_path = db;
    o->policy = TB_POLICY_COMMITTED;
}

static void test_target_seq(void)
{
    static const uint64_t seqs[] = { 2, 3, 4, 5, 6 };
    char *wal = make_archive("arch", seqs, 5), *db = make_base("base-seq"), buf[64];
    struct tb_replay_opts o;
    struct tb_replay_result r;
    replay_opts(&o, wal, db);
    o.target_seq = 4;
    int rc = tb_replay_run(&o, &r);
    ok(rc == 0, "replay to sequence 4 (%s)", rc ? tb_error_last() : "ok");
    ok(r.base_seq == 1 && r.archive_first == 2 && r.archive_next == 7, "the base at 1, the archive 2..6");
    ok(r.reached_seq == 4 && r.ops == 3 && r.batches == 3, "three writes applied, reaching 4 (%llu, %llu)",
       (unsigned long long)r.reached_seq, (unsigned long long)r.ops);
    is_str(value_of(db, "k4", buf, sizeof buf), "v4", "the write at the target is there");
    is_str(value_of(db, "k5", buf, sizeof buf), "", "the one after it is not");
    is_str(value_of(db, "a", buf, sizeof buf), "0", "the base's own write stays");

    /* By time: stop before the first batch stamped later than 3.5 us. */
    free(db);
    db = make_base("base-time");
    replay_opts(&o, wal, db);
    o.target_ns = 3500;
    rc = tb_replay_run(&o, &r);
    ok(rc == 0 && r.reached_seq == 3 && r.reached_ts == 3000, "replay to a time stops at the batch before it (%s)",
       rc ? tb_error_last() : "ok");
    is_str(value_of(db, "k4", buf, sizeof buf), "", "nothing stamped later is applied");

    free(db);
    free(wal);
}

/* An archive that reaches back into the base: what the base holds is not applied again,
 * and a target time before the base's stamp is refused. */
static void test_overlap(void)
{
    static const uint64_t seqs[] = { 1, 2, 3 };
    char *wal = make_archive("arch-overlap", seqs, 3), *db = make_base("base-overlap"), buf[64];
    struct tb_replay_opts o;
    struct tb_replay_result r;
    replay_opts(&o, wal, db);
    o.target_ns = 500;
    int rc = tb_replay_run(&o, &r);
    ok(rc == TB_EGAP && strstr(tb_error_last(), "target time is before the base"), "a target before the base: %s",
       rc ? tb_error_last() : "accepted");
    replay_opts(&o, wal, db);
    rc = tb_replay_run(&o, &r);
    ok(rc == 0 && r.base_ts == 1000 && r.reached_seq == 3 && r.ops == 2, "to the end: two writes after the base (%s)",
       rc ? tb_error_last() : "ok");
    is_str(value_of(db, "k1", buf, sizeof buf), "", "the record at the base's sequence is not applied again");
    is_str(value_of(db, "k3", buf, sizeof buf), "v3", "the last one is");
    free(db);
    free(wal);
}

static void test_gap(void)
{
    static const uint64_t seqs[] = { 2, 3, 5, 6 };
    char *wal = make_archive("arch-gap", seqs, 4), *db = make_base("base-gap"), buf[64];
    struct tb_replay_opts o;
    struct tb_replay_result r;
    replay_opts(&o, wal, db);
    int rc = tb_replay_run(&o, &r);
    ok(rc == TB_EGAP && strstr(tb_error_last(), "sequences 4..4 are missing, before the target"),
       "a gap before the target is refused: %s", tb_error_last());
    is_str(value_of(db, "k2", buf, sizeof buf), "", "and nothing was applied");

    replay_opts(&o, wal, db);
    o.dry_run = 1;
    rc = tb_replay_run(&o, &r);
    ok(rc == 0 && r.gap_from == 4 && r.gap_to == 5, "a dry run reports the gap (%llu..%llu)",
       (unsigned long long)r.gap_from, (unsigned long long)r.gap_to);

    replay_opts(&o, wal, db);
    o.target_seq = 3;
    rc = tb_replay_run(&o, &r);
    ok(rc == 0 && r.reached_seq == 3 && r.ops == 2, "a target before the gap is reached (%s)",
       rc ? tb_error_last() : "ok");
    is_str(value_of(db, "k3", buf, sizeof buf), "v3", "its writes are applied");
    is_str(value_of(db, "k5", buf, sizeof buf), "", "nothing after the gap");
    free(db);
    free(wal);
}

static void test_as_wal_file(void)
{
    static const uint64_t seqs[] = { 2, 3, 4, 5, 6 };
    char *wal = make_archive("arch-file", seqs, 5), *db = make_base("base-file"), buf[64];
    struct tb_replay_opts o;
    struct tb_replay_result r;
    tb_wal_reader *rd = NULL;
    const unsigned char *rec;
    size_t len;
    uint64_t want = 2;
    int n = 0, good = 1;
    replay_opts(&o, wal, db);
    o.target_seq = 5;
    o.as_wal_file = 1;
    o.dry_run = 1;
    int rc = tb_replay_run(&o, &r);
    ok(rc == 0 && r.ops == 4 && !tb_fs_exists(r.wal_file), "a dry run names the file (%s) and writes nothing",
       r.wal_file);
    o.dry_run = 0;
    rc = tb_replay_run(&o, &r);
    ok(rc == 0 && tb_fs_exists(r.wal_file), "the WAL file is written (%s)", rc ? tb_error_last() : r.wal_file);
    ok(r.file_first_seq == 2 && r.file_next_seq == 6 && r.file_records == 4 && r.db_seq == 5,
       "its header sequences span 2..5, four records");
    rc = tb_wal_reader_open(&rd, r.wal_file, r.file_number, 0);
    while (rc == 0 && tb_wal_reader_next(rd, &rec, &len) == 1) {
        struct tb_wb_iter it;
        struct tb_wb_entry e;
        char k[32];
        snprintf(k, sizeof k, "k%llu", (unsigned long long)want);
        good &= tb_wb_init(&it, rec, len) == 0 && it.seq == want && tb_wb_next(&it, &e) == 1 &&
                e.kind == TB_WB_PUT && e.klen == strlen(k) && memcmp(e.key, k, e.klen) == 0;
        want++;
        n++;
    }
    tb_wal_reader_free(rd);
    ok(rc == 0 && n == 4 && good, "read back: one Put per record, k2..k5 at their sequences");
    is_str(value_of(db, "k5", buf, sizeof buf), "v5", "RocksDB replays the file when it opens the base");
    is_str(value_of(db, "k6", buf, sizeof buf), "", "and nothing past the target");
    free(db);
    free(wal);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_target_seq();
    test_overlap();
    test_gap();
    test_as_wal_file();
    tb_fs_rm_rf(root);
    return done_testing();
}
