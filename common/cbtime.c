/*
 * cbtime.c — civil-date arithmetic, CST conversion, RFC 3339 formatting and
 * parsing. No libc time zone machinery: CST is a fixed offset, and the daemons
 * must not depend on the machine's TZ setting.
 */
#include "cbtime.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t cb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t cb_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t cb_days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cb_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

int cb_weekday_from_days(int64_t days)
{
    return (int)(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6);
}

int cb_days_in_month(int year, int month)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return dim[month - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t cb_cst_day(int64_t utc_ms)
{
    return floor_div(utc_ms + CB_CST_OFFSET_MS, CB_DAY_MS);
}

int64_t cb_cst_day_start_ms(int64_t cst_day)
{
    return cst_day * CB_DAY_MS - CB_CST_OFFSET_MS;
}

static void civil_of(int64_t local_ms, cb_civil_t *out)
{
    int64_t days = floor_div(local_ms, CB_DAY_MS);
    int64_t rem = local_ms - days * CB_DAY_MS;
    cb_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(rem / CB_HOUR_MS);
    out->min = (int)(rem / 60000 % 60);
    out->sec = (int)(rem / 1000 % 60);
    out->msec = (int)(rem % 1000);
    out->wday = cb_weekday_from_days(days);
}

void cb_time_to_cst(int64_t utc_ms, cb_civil_t *out)
{
    civil_of(utc_ms + CB_CST_OFFSET_MS, out);
}

int64_t cb_time_from_cst(const cb_civil_t *c)
{
    int64_t days = cb_days_from_civil(c->year, c->month, c->day);
    return days * CB_DAY_MS + (int64_t)c->hour * CB_HOUR_MS + (int64_t)c->min * 60000 +
           (int64_t)c->sec * 1000 + c->msec - CB_CST_OFFSET_MS;
}

/* "YYYY-MM-DDTHH:MM:SS.mmm" and zone, as snprintf("%04d-…%03d%s") writes it,
 * without printf's cost (a `casebus tail --json` line has several). */
static size_t format_time(const cb_civil_t *c, const char *zone, char *buf, size_t size)
{
    size_t zlen = strlen(zone);
    if (c->year < 0 || c->year > 9999 || size < 24 + zlen) {
        int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", c->year, c->month,
                         c->day, c->hour, c->min, c->sec, c->msec, zone);
        return n < 0 ? 0 : (size_t)n;
    }
    const int parts[] = {c->year, c->month, c->day, c->hour, c->min, c->sec, c->msec};
    static const int width[] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[] = "--T::.";
    char *p = buf;
    for (int i = 0; i < 7; i++) {
        int v = parts[i];
        for (int k = width[i] - 1; k >= 0; k--, v /= 10)
            p[k] = (char)('0' + v % 10);
        p += width[i];
        if (i < 6)
            *p++ = after[i];
    }
    memcpy(p, zone, zlen + 1);
    return (size_t)(p - buf) + zlen;
}

size_t cb_time_format_cst(int64_t utc_ms, char *buf, size_t size)
{
    cb_civil_t c;
    cb_time_to_cst(utc_ms, &c);
    return format_time(&c, "+08:00", buf, size);
}

size_t cb_time_format_utc(int64_t utc_ms, char *buf, size_t size)
{
    cb_civil_t c;
    civil_of(utc_ms, &c);
    return format_time(&c, "Z", buf, size);
}

size_t cb_date_format(int64_t cst_day, char *buf, size_t size)
{
    int y, m, d;
    cb_civil_from_days(cst_day, &y, &m, &d);
    int n = snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
    return n < 0 ? 0 : (size_t)n;
}

/* Reads exactly n digits at *p into *out and advances *p. */
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

static int parse_date_part(const char **p, int *y, int *m, int *d)
{
    if (digits(p, 4, y) || **p != '-')
        return -1;
    (*p)++;
    if (digits(p, 2, m) || **p != '-')
        return -1;
    (*p)++;
    if (digits(p, 2, d))
        return -1;
    if (*m < 1 || *m > 12 || *d < 1 || *d > cb_days_in_month(*y, *m))
        return -1;
    return 0;
}

int cb_date_parse(const char *text, int64_t *cst_day, cb_error_t *err)
{
    const char *p = text;
    int y, m, d;
    if (text == NULL || parse_date_part(&p, &y, &m, &d) || *p != '\0')
        return cb_error_set(err, CB_ERR_INVALID, "", "'%s' is not a date YYYY-MM-DD",
                            text ? text : "");
    *cst_day = cb_days_from_civil(y, m, d);
    return 0;
}

int cb_time_parse(const char *text, int64_t *utc_ms, cb_error_t *err)
{
    const char *p = text;
    cb_civil_t c = {0};
    if (text == NULL || parse_date_part(&p, &c.year, &c.month, &c.day))
        goto bad;
    if (*p == '\0') {
        *utc_ms = cb_time_from_cst(&c);
        return 0;
    }
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (digits(&p, 2, &c.hour) || *p++ != ':' || digits(&p, 2, &c.min))
        goto bad;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &c.sec))
            goto bad;
        if (*p == '.' || *p == ',') {
            p++;
            int frac = 0, n = 0;
            while (isdigit((unsigned char)*p)) {
                if (n < 3)
                    frac = frac * 10 + (*p - '0');
                n++;
                p++;
            }
            if (n == 0 || n > 9)
                goto bad;
            for (int i = n; i < 3; i++)
                frac *= 10;
            c.msec = frac;
        }
    }
    if (c.hour > 23 || c.min > 59 || c.sec > 59)
        goto bad;
    int64_t offset_ms = CB_CST_OFFSET_MS;
    if (*p == 'Z' || *p == 'z') {
        offset_ms = 0;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
        offset_ms = sign * ((int64_t)oh * CB_HOUR_MS + (int64_t)om * 60000);
    }
    if (*p != '\0')
        goto bad;
    /* cb_time_from_cst subtracts the CST offset; correct for the real one. */
    *utc_ms = cb_time_from_cst(&c) + CB_CST_OFFSET_MS - offset_ms;
    return 0;
bad:
    return cb_error_set(err, CB_ERR_INVALID, "",
                        "'%s' is not an RFC 3339 time (e.g. 2026-11-23T09:30:00+08:00)",
                        text ? text : "");
}

int cb_time_parse_after(const char *text, int64_t now_ms, int64_t *utc_ms, cb_error_t *err)
{
    static const struct { char unit; int64_t ms; } units[] = {
        {'m', 60 * 1000LL}, {'h', CB_HOUR_MS}, {'d', CB_DAY_MS}, {'w', 7 * CB_DAY_MS}};
    const char *p = text ? text : "";
    size_t n = strspn(p, "0123456789");
    if (n > 0 && n <= 6 && p[n] != '\0' && p[n + 1] == '\0') {
        int64_t count = 0;
        for (size_t i = 0; i < n; i++)
            count = count * 10 + (p[i] - '0');
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (p[n] == units[i].unit) {
                if (count == 0)
                    break;
                *utc_ms = now_ms + count * units[i].ms;
                return 0;
            }
        return cb_error_set(err, CB_ERR_INVALID, "", "'%.40s': want a positive span such as "
                            "90m, 12h, 30d or 2w, or a time such as 2027-01-31", p);
    }
    int rc = cb_time_parse(p, utc_ms, err);
    if (rc != 0)
        return cb_error_set(err, CB_ERR_INVALID, "", "'%.40s': want a span such as 90m, 12h, "
                            "30d or 2w, or a time such as 2027-01-31 or 2027-01-31T18:00+08:00",
                            p);
    if (*utc_ms <= now_ms)
        return cb_error_set(err, CB_ERR_INVALID, "", "'%.40s' is not in the future", p);
    return 0;
}

bool cb_bound_parse(const char *text, bool end_of_day, int64_t *utc_ms)
{
    cb_error_t e;
    int64_t day;
    if (strlen(text) == 10 && cb_date_parse(text, &day, &e) == 0) {
        *utc_ms = cb_cst_day_start_ms(end_of_day ? day + 1 : day);
        return true;
    }
    return cb_time_parse(text, utc_ms, &e) == 0;
}
