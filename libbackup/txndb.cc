// txndb: C++ because RocksDB's C API cannot set TransactionDBOptions::write_policy, and a
// WRITE_PREPARED/UNPREPARED WAL can only be recovered by a TransactionDB opened with it.
#include "txndb.h"

#include <cstring>

extern "C" {
#include "error.h"
}

static const char *const policy_names[] = {"unknown", "write_committed", "write_prepared", "write_unprepared"};

extern "C" const char *tb_policy_name(enum tb_policy p)
{
    if ((unsigned)p >= sizeof policy_names / sizeof policy_names[0])
        return "unknown";
    return policy_names[p];
}

extern "C" int tb_policy_parse(const char *s, enum tb_policy *out)
{
    for (unsigned i = TB_POLICY_COMMITTED; i <= TB_POLICY_UNPREPARED; i++)
        if (s && strcmp(s, policy_names[i]) == 0) {
            *out = (enum tb_policy)i;
            return 0;
        }
    return tb_error_set(TB_EUSAGE, "unknown write policy '%s' (write_committed, write_prepared or write_unprepared)",
                        s ? s : "");
}
