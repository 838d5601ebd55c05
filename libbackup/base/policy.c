/* policy: the write policy's names. */
#include "policy.h"
#include "error.h"

#include <string.h>

static const char *const policy_names[] = { "unknown", "write_committed", "write_prepared", "write_unprepared" };

const char *tb_policy_name(enum tb_policy p)
{
    if ((unsigned)p >= sizeof policy_names / sizeof policy_names[0])
        return "unknown";
    return policy_names[p];
}

int tb_policy_parse(const char *s, enum tb_policy *out)
{
    for (unsigned i = TB_POLICY_COMMITTED; i <= TB_POLICY_UNPREPARED; i++)
        if (s && strcmp(s, policy_names[i]) == 0) {
            *out = (enum tb_policy)i;
            return 0;
        }
    return tb_error_set(TB_EUSAGE, "unknown write policy '%s' (write_committed, write_prepared or write_unprepared)",
                        s ? s : "");
}
