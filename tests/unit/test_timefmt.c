/* test_timefmt: RFC 3339 parsing and formatting. */
#include "tap.h"
#include "error.h"
#include "timefmt.h"

#include <stdint.h>

int main(void)
{
    int64_t ns = 0;
    char buf[64];
    ok(tb_time_parse("1970-01-01T00:00:00Z", &ns) == 0 && ns == 0, "epoch");
    ok(tb_time_parse("2024-01-24T01:30:00Z", &ns) == 0 && ns == 1706059800LL * 1000000000, "the upgrade guide's example");
    ok(tb_time_parse("2024-01-24T01:30:00.123456789Z", &ns) == 0 && ns == 1706059800LL * 1000000000 + 123456789, "nanoseconds");
    ok(tb_time_parse("2024-01-24T01:30:00.5Z", &ns) == 0 && ns == 1706059800LL * 1000000000 + 500000000, "short fraction");
    ok(tb_time_parse("2024-01-24T03:30:00+02:00", &ns) == 0 && ns == 1706059800LL * 1000000000, "positive offset");
    ok(tb_time_parse("2024-01-23T20:00:00-05:30", &ns) == 0 && ns == 1706059800LL * 1000000000, "negative offset with minutes");
    ok(tb_time_parse("2024-02-29T00:00:00Z", &ns) == 0, "leap day");
    ok(tb_time_parse("2023-02-29T00:00:00Z", &ns) == TB_EUSAGE, "no leap day in 2023");
    ok(tb_time_parse("2024-01-24T01:30:00", &ns) == TB_EUSAGE, "zone required");
    ok(strstr(tb_error_last(), "zone") != NULL, "and the message says so");
    ok(tb_time_parse("2024-01-24T01:30:00.1234567891Z", &ns) == TB_EUSAGE, "sub-nanosecond refused");
    ok(tb_time_parse("2024-13-01T00:00:00Z", &ns) == TB_EUSAGE, "month 13 refused");
    ok(tb_time_parse("2024-01-24T01:30Z", &ns) == TB_EUSAGE, "seconds required");
    ok(tb_time_parse("yesterday", &ns) == TB_EUSAGE, "garbage refused");
    ok(tb_time_parse("2024-01-24T01:30:00Zjunk", &ns) == TB_EUSAGE, "trailing junk refused");
    /* Found by fuzzing a manifest's "created": the nanoseconds overflowed (undefined). */
    ok(tb_time_parse("4052-12-07T04:01:11Z", &ns) == TB_EUSAGE, "a time after 2262 refused");
    ok(strstr(tb_error_last(), "outside") != NULL, "and the message says why");
    ok(tb_time_parse("0001-01-01T00:00:00Z", &ns) == TB_EUSAGE, "a time before 1677 refused");
    ok(tb_time_parse("2262-04-11T23:47:16.854775807Z", &ns) == 0 && ns == INT64_MAX, "the last time that fits");
    ok(tb_time_parse("2262-04-11T23:47:16.854775808Z", &ns) == TB_EUSAGE, "one nanosecond more does not");
    ok(tb_time_parse("1677-09-21T00:12:43.145224192Z", &ns) == 0 && ns == INT64_MIN, "the first time that fits");
    ok(tb_time_parse("1677-09-21T00:12:43.145224191Z", &ns) == TB_EUSAGE, "one nanosecond less does not");
    tb_time_format(1706059800LL * 1000000000 + 123456789, buf, sizeof buf);
    is_str(buf, "2024-01-24T01:30:00.123456789Z", "format with fraction");
    tb_time_format(1706059800LL * 1000000000, buf, sizeof buf);
    is_str(buf, "2024-01-24T01:30:00Z", "format without fraction");
    ok(tb_time_parse(buf, &ns) == 0 && ns == 1706059800LL * 1000000000, "round trip");
    tb_time_format(INT64_MIN, buf, sizeof buf);
    is_str(buf, "1677-09-21T00:12:43.145224192Z", "format of the first time (no overflow rounding it down)");
    tb_time_format(INT64_MAX, buf, sizeof buf);
    is_str(buf, "2262-04-11T23:47:16.854775807Z", "format of the last time");
    tb_time_format(-1, buf, sizeof buf);
    is_str(buf, "1969-12-31T23:59:59.999999999Z", "format of a time before 1970");
    return done_testing();
}
