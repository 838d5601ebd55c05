/* timefmt: strict RFC 3339 parsing with nanoseconds and offsets. */
#include "timefmt.h"
#include "error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int tb_time_parse(const char *s, int64_t *ns)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int64_t frac = 0, t;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &sec))
        goto bad;
    if (*p == '.') {
        int n = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (++n > 9)
                return tb_error_set(TB_EUSAGE, "time '%s' has more than nanosecond precision", s);
            frac = frac * 10 + (*p++ - '0');
        }
        if (n == 0)
            goto bad;
        while (n++ < 9)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
    } else {
        return tb_error_set(TB_EUSAGE, "time '%s' needs a zone: Z or an offset like +02:00", s);
    }
    if (*p)
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        goto bad;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        goto bad;
    if (sec == 60)
        sec = 59, frac = 999999999; /* a leap second: the last instant of that minute */
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (oh * 3600 + om * 60);
    /* Nanoseconds in 64 bits reach from 1677-09-21T00:12:43.145224192Z to
     * 2262-04-11T23:47:16.854775807Z: a time outside is refused, never wrapped into another.
     * Before 1970 the sum is taken from t + 1, so t * 10^9 alone cannot overflow. */
    if (t > (INT64_MAX - frac) / 1000000000 || t < INT64_MIN / 1000000000 - 1 ||
        (t == INT64_MIN / 1000000000 - 1 && frac < INT64_MIN % 1000000000 + 1000000000))
        return tb_error_set(TB_EUSAGE, "time '%s' is outside 1677-09-21..2262-04-11, the times the tools represent", s);
    *ns = t < 0 ? (t + 1) * 1000000000 + (frac - 1000000000) : t * 1000000000 + frac;
    return 0;
bad:
    return tb_error_set(TB_EUSAGE, "time '%s' is not RFC 3339 (like 2024-01-24T01:30:00Z)", s);
}

void tb_time_format(int64_t ns, char *buf, size_t len)
{
    /* Rounded down to the second by division and remainder alone: ns - 999999999 and
     * t * 10^9 both overflow near INT64_MIN. */
    int64_t frac = ns % 1000000000;
    time_t t = (time_t)(ns / 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        t--;
    }
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(buf, len, "%s.%09lldZ", base, (long long)frac);
    else
        snprintf(buf, len, "%sZ", base);
}

int64_t tb_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
