/* test_txndb: write policy names, and recovering a TransactionDB copy. */
#include "error.h"
#include "tap.h"
#include "txndb.h"

static void test_policy(void)
{
    enum tb_policy p = TB_POLICY_UNKNOWN;
    is_str(tb_policy_name(TB_POLICY_COMMITTED), "write_committed", "name of committed");
    is_str(tb_policy_name(TB_POLICY_PREPARED), "write_prepared", "name of prepared");
    is_str(tb_policy_name(TB_POLICY_UNPREPARED), "write_unprepared", "name of unprepared");
    is_str(tb_policy_name(TB_POLICY_UNKNOWN), "unknown", "name of unknown");
    is_str(tb_policy_name((enum tb_policy)42), "unknown", "name of an out-of-range value");
    is_int(tb_policy_parse("write_committed", &p), 0, "parse write_committed");
    is_int(p, TB_POLICY_COMMITTED, "  is committed");
    is_int(tb_policy_parse("write_prepared", &p), 0, "parse write_prepared");
    is_int(p, TB_POLICY_PREPARED, "  is prepared");
    is_int(tb_policy_parse("write_unprepared", &p), 0, "parse write_unprepared");
    is_int(p, TB_POLICY_UNPREPARED, "  is unprepared");
    is_int(tb_policy_parse("unknown", &p), TB_EUSAGE, "'unknown' is not a policy");
    is_int(tb_policy_parse("WRITE_PREPARED", &p), TB_EUSAGE, "names are lower case");
    is_int(tb_policy_parse("", &p), TB_EUSAGE, "empty is not a policy");
    ok(strstr(tb_error_last(), "write_unprepared") != NULL, "the error lists the names: %s", tb_error_last());
    is_int(p, TB_POLICY_UNPREPARED, "a failed parse leaves the output alone");
}

int main(void)
{
    test_policy();
    return done_testing();
}
