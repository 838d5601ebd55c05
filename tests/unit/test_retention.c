/* test_retention: themis-expire's policy as plain functions: keep-last N, keep-days, the
 * newest backup that verifies, incremental chains kept with their parents, the oldest kept
 * base the WAL is kept back to. */
#include "tap.h"
#include "error.h"
#include "retention.h"
#include "segment.h"

#include <stdlib.h>
#include <string.h>

#define DAY (86400LL * 1000000000LL)
#define NOW (1000 * DAY)

static struct tb_manifest m[8];
static struct tb_catalog_entry cat[8];

/* Backup i (0 newest): age days old, last sequence seq, its own archive "a<i>" and, when
 * parent >= 0, an incremental one on backup parent. */
static void backup(int i, int age, uint64_t seq, int parent)
{
    static char dirs[8][16];
    snprintf(dirs[i], sizeof dirs[i], "root/b%d", i);
    memset(&m[i], 0, sizeof m[i]);
    snprintf(m[i].archive_sha256, sizeof m[i].archive_sha256, "a%d", i);
    m[i].last_seq = seq;
    if (parent >= 0) {
        m[i].parent_path = "../parent";
        snprintf(m[i].parent_sha256, sizeof m[i].parent_sha256, "a%d", parent);
    }
    cat[i].dir = dirs[i];
    cat[i].m = &m[i];
    cat[i].created_ns = NOW - age * DAY;
}

static const char *verdicts(const enum tb_keep_reason *why, size_t n)
{
    static char s[16];
    for (size_t i = 0; i < n; i++)
        s[i] = "-VNYP"[why[i]];
    s[n] = 0;
    return s;
}

int main(void)
{
    enum tb_keep_reason *why = NULL;
    size_t kept;
    uint64_t oldest;
    struct tb_retention p = { NOW, 30, 2 };

    /* Six backups over 60 days, b2 (40 days) incremental on b3 (50 days): as test 37. */
    backup(0, 0, 600, -1);
    backup(1, 10, 500, -1);
    backup(2, 40, 400, 3);
    backup(3, 50, 300, -1);
    backup(4, 55, 200, -1);
    backup(5, 60, 100, -1);
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 6, "root/b0", &p) == 0, "decide");
    is_str(verdicts(why, 6), "VN----", "keep-days 30, keep-min 2: the newest (it verifies) and b1; b2 is too old");
    free(why);

    p.keep_days = 45;
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 6, "root/b0", &p) == 0, "decide, keep-days 45");
    is_str(verdicts(why, 6), "VNYP--", "b2 is young, b3 its parent");
    is_int(kept, 4, "four kept");
    is_int(oldest, 300, "the oldest kept base is b3's sequence");
    free(why);

    p.keep_days = 0;
    p.keep_min = 1;
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 6, "root/b1", &p) == 0, "newest damaged");
    is_str(verdicts(why, 6), "NV----", "keeps the newest and the newest that verifies");
    is_int(oldest, 500, "oldest base b1");
    free(why);

    ok(tb_retention_decide(&why, &kept, &oldest, cat, 6, NULL, &p) == 0, "none verifies");
    is_str(verdicts(why, 6), "N-----", "keep-min alone");
    free(why);

    /* A chain of three: b0 on b1 on b2; only b0 kept by the rules, the chain follows. */
    backup(0, 0, 300, 1);
    backup(1, 1, 200, 2);
    backup(2, 2, 100, -1);
    backup(3, 3, 50, -1);
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 4, NULL, &p) == 0, "chain");
    is_str(verdicts(why, 4), "NPP-", "the whole chain under a kept incremental");
    is_int(kept, 3, "three kept");
    is_int(oldest, 100, "WAL kept back to the chain's full backup");
    free(why);

    p.keep_days = 2;
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 4, NULL, &p) == 0, "keep-days 2 counts the day itself");
    is_str(verdicts(why, 4), "NYY-", "two days old is young enough");
    free(why);

    ok(tb_retention_decide(&why, &kept, &oldest, cat, 0, NULL, &p) == 0 && !why && kept == 0 && oldest == UINT64_MAX,
       "an empty root keeps nothing");
    p.keep_min = 0;
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 4, NULL, &p) == TB_EUSAGE && !why, "keep-min 0 refused");
    p.keep_min = 1;
    p.keep_days = -1;
    ok(tb_retention_decide(&why, &kept, &oldest, cat, 4, NULL, &p) == TB_EUSAGE, "negative keep-days refused");

    struct tb_seg_info segs[3] = { { .first_seq = 1, .next_seq = 101 }, { .first_seq = 101, .next_seq = 201 },
                                   { .first_seq = 201, .next_seq = 301 } };
    ok(!tb_retention_wal_starts_late(segs, 3, 1, 100), "cut at the base's next sequence: continues it");
    ok(!tb_retention_wal_starts_late(segs, 3, 1, 150), "a segment holding the base's next sequence");
    ok(tb_retention_wal_starts_late(segs, 3, 2, 100), "an archive beginning after base + 1 cannot bring it on");
    ok(!tb_retention_wal_starts_late(segs, 3, 3, 100), "nothing left: nothing begins late");
    return done_testing();
}
