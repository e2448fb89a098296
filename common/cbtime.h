/*
 * cbtime.h — instants and local dates. Every instant in casebus is UTC
 * milliseconds since the epoch (int64). Local dates and times are China Standard
 * Time: UTC+8 all year, no daylight saving. Dates count as days since 1970-01-01
 * (proleptic Gregorian), so date arithmetic is integer arithmetic.
 */
#ifndef CB_TIME_H
#define CB_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CB_CST_OFFSET_MS (8LL * 3600 * 1000)
#define CB_DAY_MS (86400LL * 1000)
#define CB_HOUR_MS (3600LL * 1000)

typedef struct cb_civil {
    int year, month, day;     /* month 1..12, day 1..31 */
    int hour, min, sec, msec;
    int wday;                 /* 0 = Sunday … 6 = Saturday */
} cb_civil_t;

int64_t cb_now_ms(void);          /* wall clock, UTC ms */
uint64_t cb_mono_ns(void);        /* CLOCK_MONOTONIC, for measuring */

/* Days since 1970-01-01 of a civil date, and back (Howard Hinnant's algorithms). */
int64_t cb_days_from_civil(int year, int month, int day);
void cb_civil_from_days(int64_t days, int *year, int *month, int *day);
int cb_weekday_from_days(int64_t days); /* 0 = Sunday */
int cb_days_in_month(int year, int month);

/* The CST local day (days since epoch) an instant falls on. */
int64_t cb_cst_day(int64_t utc_ms);
/* The instant a CST local day begins (00:00 CST). */
int64_t cb_cst_day_start_ms(int64_t cst_day);

void cb_time_to_cst(int64_t utc_ms, cb_civil_t *out);
/* The instant of a CST civil time; fields are not range-checked (see cb_time_parse). */
int64_t cb_time_from_cst(const cb_civil_t *c);

/* "2026-11-23T16:56:01.123+08:00" / "2026-11-23T08:56:01.123Z". Return the length. */
size_t cb_time_format_cst(int64_t utc_ms, char *buf, size_t size);
size_t cb_time_format_utc(int64_t utc_ms, char *buf, size_t size);
/* "2026-11-23" (CST date of the instant). */
size_t cb_date_format(int64_t cst_day, char *buf, size_t size);

/* Parses RFC 3339 ("2026-11-23T16:56:01+08:00", "…Z", fractional seconds up to
 * milliseconds), or a bare date "2026-11-23", read as 00:00 China Standard Time.
 * A date-time without an offset is read as China Standard Time. Returns
 * CB_ERR_INVALID naming what is wrong. */
int cb_time_parse(const char *text, int64_t *utc_ms, cb_error_t *err);
/* An instant given either as a span after now ("90m", "12h", "30d", "2w": a
 * positive whole number and one unit) or as cb_time_parse reads it. The
 * instant must be after now. Returns CB_ERR_INVALID naming what is wrong. */
int cb_time_parse_after(const char *text, int64_t now_ms, int64_t *utc_ms, cb_error_t *err);
/* Parses "YYYY-MM-DD" into days since epoch. */
int cb_date_parse(const char *text, int64_t *cst_day, cb_error_t *err);
/* A bound of a period: a date (its 00:00 CST, or with end_of_day the next
 * day's) or an instant as cb_time_parse reads it. Returns false when it is
 * neither. */
bool cb_bound_parse(const char *text, bool end_of_day, int64_t *utc_ms);

#endif
