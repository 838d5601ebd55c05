// txndb: C++ because RocksDB's C API cannot set TransactionDBOptions::write_policy, and a
// WRITE_PREPARED/UNPREPARED WAL can only be recovered by a TransactionDB opened with it.
// The only C++ in libbackup: a C interface (txndb.h), no exception crosses it.
#include "txndb.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/object_registry.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/utilities/transaction_db.h>

extern "C" {
#include "error.h"
#include "fs.h"
#include "merge.h"
#include "rocksopts.h"
}

namespace
{

// ThemisDB's operators (merge.c) under ThemisDB's names, for the C++ API.
// A merge operator the tools do not know, under its own name: recovery and reads work while
// no merge is needed; a merge fails (the caller reports it with tb_merge_unknown's words).
class UnknownMerge final : public rocksdb::MergeOperator
{
  public:
    explicit UnknownMerge(const char *name) : name_(name ? name : "")
    {
    }
    bool FullMergeV2(const MergeOperationInput &, MergeOperationOutput *) const override
    {
        return false;
    }
    bool PartialMergeMulti(const rocksdb::Slice &, const std::deque<rocksdb::Slice> &, std::string *,
                           rocksdb::Logger *) const override
    {
        return false;
    }
    const char *Name() const override
    {
        return name_.c_str();
    }

  private:
    std::string name_;
};

class ThemisMerge final : public rocksdb::MergeOperator
{
  public:
    explicit ThemisMerge(enum tb_merge_op op) : op_(op)
    {
    }

    bool FullMergeV2(const MergeOperationInput &in, MergeOperationOutput *out) const override
    {
        std::vector<const char *> p;
        std::vector<size_t> l;
        for (const auto &s : in.operand_list) {
            p.push_back(s.data());
            l.push_back(s.size());
        }
        // A present empty value is not an absent one (AppendMergeOperator tells them apart).
        const char *ex = in.existing_value ? (in.existing_value->data() ? in.existing_value->data() : "") : nullptr;
        return run(ex, in.existing_value ? in.existing_value->size() : 0, p, l, &out->new_value);
    }

    bool PartialMergeMulti(const rocksdb::Slice &, const std::deque<rocksdb::Slice> &ops, std::string *out,
                           rocksdb::Logger *) const override
    {
        std::vector<const char *> p;
        std::vector<size_t> l;
        for (const auto &s : ops) {
            p.push_back(s.data() ? s.data() : "");
            l.push_back(s.size());
        }
        if (p.size() < 2)
            return false;
        return run(p[0], l[0], std::vector<const char *>(p.begin() + 1, p.end()),
                   std::vector<size_t>(l.begin() + 1, l.end()), out);
    }

    bool PartialMerge(const rocksdb::Slice &key, const rocksdb::Slice &left, const rocksdb::Slice &right,
                      std::string *out, rocksdb::Logger *logger) const override
    {
        return PartialMergeMulti(key, std::deque<rocksdb::Slice>{ left, right }, out, logger);
    }

    const char *Name() const override
    {
        return tb_merge_name(op_);
    }

  private:
    bool run(const char *ex, size_t exlen, const std::vector<const char *> &p, const std::vector<size_t> &l,
             std::string *out) const
    {
        char *r = nullptr;
        size_t len = 0;
        if (tb_merge_full(op_, ex, exlen, p.data(), l.data(), p.size(), &r, &len) < 0)
            return false;
        out->assign(r, len);
        free(r);
        return true;
    }

    enum tb_merge_op op_;
};

// What recovery may hold in memory: each column family's memtable is flushed when it
// reaches this (RocksDB flushes full memtables during WAL recovery), whatever the server
// configured (ThemisDB: 512 MiB), and all of them together stay under TOTAL.
constexpr size_t WRITE_BUFFER_MAX = 32u << 20, WRITE_BUFFER_MIN = 4u << 20, WRITE_BUFFER_TOTAL = 128u << 20;
constexpr size_t BLOCK_CACHE = 8u << 20;

int rocks_error(int code, const rocksdb::Status &s, const char *what, const char *dir)
{
    return tb_error_set(code, "%s: %s (%s)", what, s.ToString().c_str(), dir);
}

// A registry that makes LoadLatestOptions build ThemisDB's operators by their names
// instead of dropping them.
std::shared_ptr<rocksdb::ObjectRegistry> themis_registry()
{
    auto reg = rocksdb::ObjectRegistry::NewInstance();
    auto lib = reg->AddLibrary("themis-backup");
    for (int op = TB_MERGE_SEQ_U64; op <= TB_MERGE_MAX; op++)
        lib->AddFactory<rocksdb::MergeOperator>(
            tb_merge_name((enum tb_merge_op)op),
            [op](const std::string &, std::unique_ptr<rocksdb::MergeOperator> *guard, std::string *) {
                guard->reset(new ThemisMerge((enum tb_merge_op)op));
                return guard->get();
            });
    return reg;
}

// Bounds a column family's memory for the recovery and keeps its data settings (blob
// files, compression, table format) as the server wrote them.
void bound_cf(rocksdb::ColumnFamilyOptions *c, size_t write_buffer, const std::shared_ptr<rocksdb::Cache> &cache)
{
    c->write_buffer_size = std::min(c->write_buffer_size, write_buffer);
    c->max_write_buffer_number = 2;
    c->min_write_buffer_number_to_merge = 1;
    c->max_write_buffer_size_to_maintain = 0;
    c->max_write_buffer_number_to_maintain = 0;
    // Flushes only: the server compacts when it runs; a compaction here would be work and
    // memory that recovery does not need.
    c->disable_auto_compactions = true;
    if (c->table_factory) {
        auto *t = c->table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
        if (t) {
            t->block_cache = cache;
            t->cache_index_and_filter_blocks = true;
            t->pin_l0_filter_and_index_blocks_in_cache = false;
            t->pin_top_level_index_and_filter = false;
        }
    }
}

int read_options_file(const char *dir, const char *name, std::string *text)
{
    std::string path = std::string(dir) + "/" + name;
    char *data = nullptr;
    size_t len = 0;
    int rc = tb_fs_read_file(path.c_str(), &data, &len);
    if (rc == 0)
        text->assign(data, len);
    free(data);
    return rc;
}

// Removes the OPTIONS files other than name, then writes text back as name.
int put_back_options(const char *dir, const char *name, const std::string &text)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    std::string path = std::string(dir) + "/" + name;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while ((e = readdir(d)) != nullptr)
        if (strncmp(e->d_name, "OPTIONS-", 8) == 0 && strcmp(e->d_name, name) != 0) {
            std::string p = std::string(dir) + "/" + e->d_name;
            if (unlink(p.c_str()) < 0 && errno != ENOENT) {
                int rc = tb_error_errno(TB_EIO, errno, "cannot remove %s", p.c_str());
                closedir(d);
                return rc;
            }
        }
    closedir(d);
    return tb_fs_write_atomic(path.c_str(), text.data(), text.size(), 0644);
}

// With every transaction resolved and every memtable flushed, the WAL files before the
// current one hold nothing: their data is in tables, their prepared sections are resolved.
// RocksDB keeps them anyway after a write-unprepared recovery (it still counts the WAL of a
// transaction it rolled back at open as holding a prepared section, and records that in
// its MANIFEST as min_log_number_to_keep), so the next allow_2pc open would replay them and
// fail on their write-unprepared markers. Remove them.
int remove_old_wals(const char *dir, uint64_t current)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d)
        return tb_error_errno(TB_EIO, errno, "cannot list %s", dir);
    while ((e = readdir(d)) != nullptr) {
        char *end;
        unsigned long long n = strtoull(e->d_name, &end, 10);
        if (end == e->d_name || strcmp(end, ".log") != 0 || n >= current)
            continue;
        std::string p = std::string(dir) + "/" + e->d_name;
        if (unlink(p.c_str()) < 0 && errno != ENOENT) {
            rc = tb_error_errno(TB_EIO, errno, "cannot remove %s", p.c_str());
            break;
        }
    }
    closedir(d);
    return rc;
}

// Each column family's options (the server's where its OPTIONS file has them: blob files,
// compression, checksums; options of newer RocksDB versions ignored; defaults when the file
// cannot be loaded), with its operator by the name in that file, never guessed.
int load_descriptors(const char *dir, const struct tb_rocksopts *ro, const std::shared_ptr<rocksdb::Cache> &cache,
                     rocksdb::DBOptions *dbo, std::vector<rocksdb::ColumnFamilyDescriptor> *descs)
{
    std::vector<rocksdb::ColumnFamilyDescriptor> loaded;
    std::vector<std::string> names;
    rocksdb::ConfigOptions cfg;
    cfg.ignore_unknown_options = true;
    cfg.ignore_unsupported_options = true;
    cfg.input_strings_escaped = true;
    cfg.registry = themis_registry();
    if (!rocksdb::LoadLatestOptions(cfg, dir, dbo, &loaded).ok()) {
        *dbo = rocksdb::DBOptions();
        loaded.clear();
    }
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(*dbo, dir, &names);
    if (!s.ok())
        return rocks_error(TB_EIO, s, "cannot list column families", dir);
    size_t write_buffer = std::max(WRITE_BUFFER_MIN, std::min(WRITE_BUFFER_MAX, WRITE_BUFFER_TOTAL / names.size()));
    for (const auto &name : names) {
        rocksdb::ColumnFamilyOptions c(rocksdb::Options(*dbo, rocksdb::ColumnFamilyOptions()));
        for (const auto &d : loaded)
            if (d.name == name)
                c = d.options;
        const char *raw = tb_rocksopts_merge_operator(ro, name.c_str());
        enum tb_merge_op op = tb_merge_lookup(raw);
        if (op == TB_MERGE_UNKNOWN)
            c.merge_operator = std::make_shared<UnknownMerge>(raw);
        else
            c.merge_operator = op == TB_MERGE_NONE ? nullptr : std::make_shared<ThemisMerge>(op);
        bound_cf(&c, write_buffer, cache);
        descs->emplace_back(name, c);
    }
    return 0;
}

// The copy is ours: its WAL is in it (never the server's wal_dir), its info log goes where
// the caller says, and a torn WAL tail (a copy of a live file) ends recovery where the
// server would end it after a crash.
void copy_options(rocksdb::DBOptions *dbo, const char *dir, enum tb_policy policy, const char *info_log_dir)
{
    dbo->create_if_missing = false;
    dbo->create_missing_column_families = false;
    dbo->error_if_exists = false;
    dbo->wal_dir = "";
    // Tables of a db_paths database carry a path id (0..3) in the MANIFEST and RocksDB
    // aborts the process on one beyond its db_paths: every id names the copy.
    dbo->db_paths.clear();
    for (int i = 0; i < 4; i++)
        dbo->db_paths.emplace_back(dir, UINT64_MAX >> 1);
    dbo->db_log_dir = info_log_dir ? info_log_dir : "";
    dbo->info_log.reset();
    dbo->wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    dbo->avoid_flush_during_recovery = false;
    dbo->avoid_flush_during_shutdown = false;
    dbo->allow_2pc = true;
    dbo->two_write_queues = policy != TB_POLICY_COMMITTED;
    dbo->enable_pipelined_write = false;
    dbo->unordered_write = false;
    dbo->db_write_buffer_size = 0;
    dbo->write_buffer_manager.reset();
    dbo->WAL_ttl_seconds = 0;
    dbo->WAL_size_limit_MB = 0;
    dbo->max_total_wal_size = 0;
    dbo->row_cache.reset();
    dbo->statistics.reset();
    dbo->sst_file_manager.reset();
    dbo->rate_limiter.reset();
    dbo->env = rocksdb::Env::Default();
    dbo->file_checksum_gen_factory.reset();
    dbo->wal_filter = nullptr;
}

rocksdb::Status open_txndb(const rocksdb::DBOptions &dbo, enum tb_policy policy, const char *dir,
                           const std::vector<rocksdb::ColumnFamilyDescriptor> &descs,
                           std::vector<rocksdb::ColumnFamilyHandle *> *handles, rocksdb::TransactionDB **db)
{
    rocksdb::TransactionDBOptions t;
    t.write_policy = policy == TB_POLICY_COMMITTED ? rocksdb::TxnDBWritePolicy::WRITE_COMMITTED
        : policy == TB_POLICY_PREPARED             ? rocksdb::TxnDBWritePolicy::WRITE_PREPARED
                                                   : rocksdb::TxnDBWritePolicy::WRITE_UNPREPARED;
    // Rolling back a transaction left prepared must take its merge operands back too
    // (RocksDB's default keeps them, a MyRocks workaround; rollbacks the server made live
    // are in the WAL as they were written and replay unchanged).
    t.rollback_merge_operands = true;
    return rocksdb::TransactionDB::Open(dbo, t, dir, descs, handles, db);
}

// A transaction left prepared never committed: the server would wait for its coordinator;
// a copy has none, so its data is not part of the content. Then everything is flushed, and
// *current_wal is the WAL the open left (the older ones are recovered and go).
int settle(rocksdb::TransactionDB *db, const std::vector<rocksdb::ColumnFamilyHandle *> &handles, const char *dir,
           uint64_t *current_wal)
{
    std::vector<rocksdb::Transaction *> prepared;
    std::unique_ptr<rocksdb::LogFile> wal;
    rocksdb::FlushOptions fo;
    rocksdb::Status s;
    int rc = 0;
    db->GetAllPreparedTransactions(&prepared);
    for (auto *x : prepared) {
        s = x->Rollback();
        delete x;
        if (!s.ok() && rc == 0)
            rc = rocks_error(TB_EIO, s, "cannot roll back a transaction left prepared", dir);
    }
    if (rc < 0)
        return rc;
    fo.wait = true;
    fo.allow_write_stall = true;
    s = db->Flush(fo, handles);
    if (!s.ok())
        return rocks_error(TB_EIO, s, "cannot flush the recovered database", dir);
    s = db->GetCurrentWalFile(&wal);
    if (!s.ok() || !wal)
        return rocks_error(TB_EIO, s, "cannot find the current WAL", dir);
    *current_wal = wal->LogNumber();
    return 0;
}

int close_txndb(rocksdb::TransactionDB *db, std::vector<rocksdb::ColumnFamilyHandle *> *handles, const char *dir,
                int rc)
{
    rocksdb::Status s;
    for (auto *h : *handles) {
        s = db->DestroyColumnFamilyHandle(h);
        if (!s.ok() && rc == 0)
            rc = rocks_error(TB_EIO, s, "cannot close a column family", dir);
    }
    handles->clear();
    // Close refuses while a background job holds a snapshot (write-prepared).
    rocksdb::CancelAllBackgroundWork(db, true);
    s = db->Close();
    if (!s.ok() && rc == 0)
        rc = rocks_error(TB_EIO, s, "cannot close the recovered database", dir);
    delete db;
    return rc;
}

int recover(const char *dir, enum tb_policy policy, const char *info_log_dir)
{
    struct tb_rocksopts ro = {};
    int rc = 0;
    rocksdb::DBOptions dbo;
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    std::vector<rocksdb::ColumnFamilyHandle *> handles;
    rocksdb::TransactionDB *db = nullptr;
    rocksdb::Status s;
    std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(BLOCK_CACHE);
    std::string options_text;
    uint64_t current_wal = 0;

    if (policy != TB_POLICY_COMMITTED && policy != TB_POLICY_PREPARED && policy != TB_POLICY_UNPREPARED)
        return tb_error_set(TB_EUSAGE,
                            "recovery needs the writer's policy (write_committed, write_prepared or "
                            "write_unprepared), not %s",
                            tb_policy_name(policy));
    rc = tb_rocksopts_read(dir, &ro);
    if (rc == TB_ENOENT)
        rc = 0;
    if (rc < 0)
        return tb_error_wrap(rc, "cannot read the database's OPTIONS file");
    if (ro.file && (rc = read_options_file(dir, ro.file, &options_text)) < 0)
        goto cleanup;
    if ((rc = load_descriptors(dir, &ro, cache, &dbo, &descs)) < 0)
        goto cleanup;
    copy_options(&dbo, dir, policy, info_log_dir);
    s = open_txndb(dbo, policy, dir, descs, &handles, &db);
    if (!s.ok())
        rc = rocks_error(TB_EIO, s, "cannot recover the database", dir);
    else
        rc = settle(db, handles, dir, &current_wal);
    if (db) {
        rc = close_txndb(db, &handles, dir, rc);
        if (rc == 0 && current_wal)
            rc = remove_old_wals(dir, current_wal);
    }
cleanup:
    // Our opens wrote OPTIONS files with recovery's settings; the copy keeps describing
    // the server's (its policy, as two_write_queues, is what detection reads).
    if (rc == 0 && !options_text.empty())
        rc = put_back_options(dir, ro.file, options_text);
    tb_rocksopts_clear(&ro);
    return rc;
}

} // namespace

extern "C" int tb_txndb_recover(const char *dir, enum tb_policy policy, const char *info_log_dir)
{
    try {
        return recover(dir, policy, info_log_dir);
    } catch (const std::exception &e) {
        return tb_error_set(TB_EIO, "cannot recover the database: %s (%s)", e.what(), dir);
    } catch (...) {
        return tb_error_set(TB_EIO, "cannot recover the database: unexpected exception (%s)", dir);
    }
}
