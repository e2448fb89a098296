/*
 * calendar.h — the working-day calendar (China Standard Time) and the counting
 * rules of Chinese administrative law (DOMAIN.md "Counting rules"):
 *  - the day a period starts is not counted;
 *  - N working days end at 24:00 of the Nth working day after that day;
 *  - working days are Monday to Friday less public holidays, plus the weekend
 *    days the State Council declares working days (调休上班);
 *  - N hours are counted from the exact moment;
 *  - N (calendar) days end at 24:00 of the Nth day; when that day is not a
 *    working day, the period ends with the next working day.
 * The period rules are 民法典 第二百零一条 to 第二百零三条 (the day a period
 * starts is not counted; a last day that is a holiday moves to the next day;
 * the last day ends at 24:00) and the 期间 section of 民事诉讼法 (第七章第一节).
 * The State Council publishes each year's holidays (usually in November), so a
 * year is data, loaded from a file per year (deploy/calendar/YYYY.cal). A year
 * with no file is counted provisionally by its statutory holidays (holidays.h,
 * 2025–2040), or by weekends only outside that table; either way the count
 * reports the year as missing, so the caller says so and raises the alarm: it
 * never guesses silently.
 *
 * File format, one statement per line ('#' comments):
 *   year 2026
 *   version <text naming the notice>
 *   holiday 2026-02-15..2026-02-23 [name]     (a single date or a range)
 *   workday 2026-02-14 [name]                 (an adjusted working weekend day)
 *   provisional                               (not a notice: holidays.h's table)
 * Dates belong to the year, or to the December before it, which a notice may
 * adjust; such a date overrides the earlier year's own file.
 */
#ifndef CB_CALENDAR_H
#define CB_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CB_CAL_MIN_YEAR 2000
#define CB_CAL_MAX_YEAR 2099

typedef struct cb_calendar cb_calendar_t;

void cb_cal_destroy(cb_calendar_t **cal);

/* A calendar with the provisional years of holidays.h and nothing else. */
cb_calendar_t *cb_cal_new(void);
/* Parses one year's file (source names it in errors: "2026.cal:7: …") and
 * replaces that year. Refuses dates outside the year (and its December before), a holiday on a declared
 * working day, a working day that is not a weekend day, duplicates. *year gets
 * the year loaded. */
int cb_cal_load_text(cb_calendar_t *cal, const char *text, size_t len, const char *source,
                     int *year, cb_error_t *err);
/* Loads every YYYY.cal file of dir; returns how many years were loaded. */
int cb_cal_load_dir(cb_calendar_t *cal, const char *dir, int *loaded, cb_error_t *err);

/* Has the year an official calendar (a notice, not the provisional table)? */
bool cb_cal_has_year(const cb_calendar_t *cal, int year);
/* Is the year counted by the provisional table (no notice loaded)? */
bool cb_cal_is_provisional(const cb_calendar_t *cal, int year);
/* Does the year's notice change days of the December before? */
bool cb_cal_adjusts_previous(const cb_calendar_t *cal, int year);
/* The version text of a loaded year ("" when none). */
const char *cb_cal_version(const cb_calendar_t *cal, int year);

/* Is the CST day (days since 1970-01-01) a working day? When its year has no
 * official calendar, *missing_year (if not NULL and still 0) is set to the
 * year, and the provisional table counts, or weekdays outside it. */
bool cb_cal_is_working_day(const cb_calendar_t *cal, int64_t cst_day, int *missing_year);

/* Due instants (UTC ms). *missing_year is set to the first year the count
 * needed and had no official calendar for (0 when none); it may be NULL. */
int64_t cb_cal_add_working_days(const cb_calendar_t *cal, int64_t from_ms, unsigned n,
                                int *missing_year);
int64_t cb_cal_add_days(const cb_calendar_t *cal, int64_t from_ms, unsigned n, int *missing_year);
int64_t cb_cal_add_hours(int64_t from_ms, unsigned n);

/* Working time, for clocks that pause (DOMAIN.md: "the clock keeps what it had
 * used"): the milliseconds of [a, b) that fall on working days; the earliest
 * instant t with working time [from, t) = ms; the latest t with working time
 * [t, to) = ms (e.g. "1 working day before the limit"). */
int64_t cb_cal_working_ms(const cb_calendar_t *cal, int64_t a_ms, int64_t b_ms, int *missing_year);
int64_t cb_cal_add_working_ms(const cb_calendar_t *cal, int64_t from_ms, int64_t ms,
                              int *missing_year);
int64_t cb_cal_sub_working_ms(const cb_calendar_t *cal, int64_t to_ms, int64_t ms,
                              int *missing_year);

#endif
