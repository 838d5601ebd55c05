/* timefmt: RFC 3339 times to and from nanoseconds since the epoch (UTC). */
#ifndef TB_TIMEFMT_H
#define TB_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parses "2024-01-24T01:30:00Z", "...T01:30:00.123456789Z", "...+02:00", also with a space
 * or lower-case 't'/'z'. Fractions beyond nanoseconds are refused, not rounded, and so are
 * times 64-bit nanoseconds cannot hold (before 1677-09-21T00:12:43.145224192Z or after
 * 2262-04-11T23:47:16.854775807Z). */
int tb_time_parse(const char *s, int64_t *ns);
/* Formats as "2024-01-24T01:30:00.123456789Z" (fraction only when non-zero). */
void tb_time_format(int64_t ns, char *buf, size_t len);
int64_t tb_time_now_ns(void);

#endif
