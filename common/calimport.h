/*
 * calimport.h — holiday calendars as they are published, turned into the .cal
 * text deadline loads (calendar.h), one text per year, so that an operator never
 * types dates by hand:
 *  - a .cal file, as it is;
 *  - an iCalendar file (RFC 5545) of all-day events, as Chinese holiday
 *    calendars publish them (e.g. the chinese-days package's holidays.ics): an
 *    event is a day off when it says 休, 放假, "(Holiday)" or
 *    X-APPLE-SPECIAL-DAY:WORK-HOLIDAY, and a working day when it says 班, 上班,
 *    "(Workday)" or X-APPLE-SPECIAL-DAY:ALTERNATE-WORKDAY; any other event is an
 *    error, not a guess;
 *  - JSON: a list of {"date": "2027-01-01" or "2027-02-05..2027-02-11",
 *    "type": "holiday" | "workday", "name": "…"}, or an object with that list
 *    as "days" and an optional "version"; or chinese-days' own
 *    {"holidays": {date: "English,中文,N"}, "workdays": {…}}.
 * Dates are grouped by their own year. Errors name the source, and the line
 * (iCalendar) or the element (JSON).
 */
#ifndef CB_CALIMPORT_H
#define CB_CALIMPORT_H

#include <stddef.h>

#include "error.h"

typedef struct cb_cal_text {
    int year;
    char *text;
    size_t len;
} cb_cal_text_t;

/* Converts text into one .cal text per year found, in year order (*out is
 * malloc'd; free with cb_cal_texts_free). Checks shape only: the loader checks
 * the calendar rules (a working day must be a weekend day, …). */
int cb_cal_convert(const char *text, size_t len, const char *source, cb_cal_text_t **out,
                   size_t *n, cb_error_t *err);
void cb_cal_texts_free(cb_cal_text_t *texts, size_t n);

#endif
