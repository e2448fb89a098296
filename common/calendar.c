/*
 * calendar.c — per-year holiday and adjusted-working-day sets, and the counting
 * rules (calendar.h). A year is two bitsets of 366 days.
 */
#include "calendar.h"
#include "cbtime.h"
#include "holidays.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NYEARS (CB_CAL_MAX_YEAR - CB_CAL_MIN_YEAR + 1)

typedef struct cal_year {
    bool loaded;
    bool provisional;                   /* the statutory holidays only (holidays.h) */
    uint8_t holiday[46], workday[46];   /* bit per day of the year (0-based) */
    uint32_t prev_holiday, prev_workday; /* bit d-1: d December of the year before */
    char version[192];
} cal_year_t;

struct cb_calendar {
    cal_year_t years[NYEARS];
};

cb_calendar_t *cb_cal_new(void)
{
    cb_calendar_t *cal = calloc(1, sizeof(cb_calendar_t));
    if (cal == NULL)
        return NULL;
    for (int year = CB_HOL_FIRST_YEAR; year <= CB_HOL_LAST_YEAR; year++) {
        char text[4096];
        int n = cb_holidays_provisional(year, text, sizeof(text));
        cb_error_t err;
        if (n < 0 || cb_cal_load_text(cal, text, (size_t)n, "provisional", NULL, &err) != 0) {
            free(cal); /* the table is ours: a failure here is a bug caught by the tests */
            return NULL;
        }
    }
    return cal;
}

void cb_cal_destroy(cb_calendar_t **cal)
{
    free(*cal);
    *cal = NULL;
}

static cal_year_t *year_of(const cb_calendar_t *cal, int year)
{
    if (year < CB_CAL_MIN_YEAR || year > CB_CAL_MAX_YEAR)
        return NULL;
    return (cal_year_t *)&cal->years[year - CB_CAL_MIN_YEAR];
}

bool cb_cal_has_year(const cb_calendar_t *cal, int year)
{
    const cal_year_t *y = year_of(cal, year);
    return y && y->loaded && !y->provisional;
}

bool cb_cal_is_provisional(const cb_calendar_t *cal, int year)
{
    const cal_year_t *y = year_of(cal, year);
    return y && y->loaded && y->provisional;
}

bool cb_cal_adjusts_previous(const cb_calendar_t *cal, int year)
{
    const cal_year_t *y = year_of(cal, year);
    return y && y->loaded && (y->prev_holiday || y->prev_workday);
}

const char *cb_cal_version(const cb_calendar_t *cal, int year)
{
    const cal_year_t *y = year_of(cal, year);
    return y && y->loaded ? y->version : "";
}

static bool bit(const uint8_t *set, int i)
{
    return set[i / 8] & (1u << (i % 8));
}

static void set_bit(uint8_t *set, int i)
{
    set[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int line_error(cb_error_t *err, const char *source, int line, const char *msg,
                      const char *arg)
{
    return cb_error_set(err, CB_ERR_INVALID, "calendar", "%s:%d: %s%s", source, line, msg, arg);
}

int cb_cal_load_text(cb_calendar_t *cal, const char *text, size_t len, const char *source,
                     int *year_out, cb_error_t *err)
{
    cal_year_t y;
    memset(&y, 0, sizeof(y));
    int year = 0, lineno = 0;
    int64_t first_day = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[256];
        lineno++;
        if (n >= sizeof(line))
            return line_error(err, source, lineno, "line too long", "");
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + (nl ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char word[16] = "", arg[128] = "";
        int got = sscanf(line, "%15s %127s", word, arg);
        if (got <= 0)
            continue;
        if (strcmp(word, "year") == 0) {
            char *e;
            long v = strtol(arg, &e, 10);
            if (year || *e || v < CB_CAL_MIN_YEAR || v > CB_CAL_MAX_YEAR)
                return line_error(err, source, lineno, "bad or repeated year: ", arg);
            year = (int)v;
            first_day = cb_days_from_civil(year, 1, 1);
            continue;
        }
        if (strcmp(word, "provisional") == 0) {
            y.provisional = true;
            continue;
        }
        if (strcmp(word, "version") == 0) {
            const char *v = strstr(line, "version") + 7;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(y.version, sizeof(y.version), "%s", v);
            size_t l = strlen(y.version);
            while (l && (y.version[l - 1] == ' ' || y.version[l - 1] == '\r'))
                y.version[--l] = '\0';
            continue;
        }
        bool hol = strcmp(word, "holiday") == 0, work = strcmp(word, "workday") == 0;
        if (!hol && !work)
            return line_error(err, source, lineno, "unknown statement: ", word);
        if (year == 0)
            return line_error(err, source, lineno, "'year' must come first", "");
        char a[16] = "", b[16] = "";
        char *dots = strstr(arg, "..");
        if (dots) {
            snprintf(a, sizeof(a), "%.*s", (int)(dots - arg), arg);
            snprintf(b, sizeof(b), "%s", dots + 2);
        } else {
            snprintf(a, sizeof(a), "%s", arg);
            snprintf(b, sizeof(b), "%s", arg);
        }
        int64_t da, db;
        cb_error_t e;
        if (cb_date_parse(a, &da, &e) != 0 || cb_date_parse(b, &db, &e) != 0 || db < da)
            return line_error(err, source, lineno, "not a date or date range: ", arg);
        if (work && db != da)
            return line_error(err, source, lineno, "a workday is a single date: ", arg);
        for (int64_t d = da; d <= db; d++) {
            int i = (int)(d - first_day);
            int yy, mm, dd;
            cb_civil_from_days(d, &yy, &mm, &dd);
            /* A notice may change the last days of the year before (the 2019
             * notice made Sat 29 Dec 2018 a working day). */
            bool prev = yy == year - 1 && mm == 12;
            if (yy != year && !prev)
                return line_error(err, source, lineno,
                                  "date outside the year (only the December before may be "
                                  "adjusted): ", arg);
            int wd = cb_weekday_from_days(d);
            if (work && wd != 0 && wd != 6)
                return line_error(err, source, lineno,
                                  "an adjusted working day must be a Saturday or Sunday: ", arg);
            if (prev) {
                uint32_t dec = 1u << (dd - 1);
                if ((y.prev_holiday | y.prev_workday) & dec)
                    return line_error(err, source, lineno, "date given twice: ", arg);
                *(hol ? &y.prev_holiday : &y.prev_workday) |= dec;
                continue;
            }
            if (bit(y.holiday, i) || bit(y.workday, i))
                return line_error(err, source, lineno, "date given twice: ", arg);
            set_bit(hol ? y.holiday : y.workday, i);
        }
    }
    if (year == 0)
        return cb_error_set(err, CB_ERR_INVALID, "calendar", "%s: no 'year' statement", source);
    y.loaded = true;
    *year_of(cal, year) = y;
    if (year_out)
        *year_out = year;
    return 0;
}

int cb_cal_load_dir(cb_calendar_t *cal, const char *dir, int *loaded, cb_error_t *err)
{
    DIR *d = opendir(dir);
    *loaded = 0;
    if (d == NULL)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "calendar", "cannot open calendar directory %s",
                            dir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".cal") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            rc = cb_error_set(err, CB_ERR_NOT_FOUND, "calendar", "cannot open %s", path);
            break;
        }
        char text[16384];
        size_t len = fread(text, 1, sizeof(text), f);
        fclose(f);
        if (len == sizeof(text)) {
            rc = cb_error_set(err, CB_ERR_TOO_LARGE, "calendar", "%s is larger than %zu bytes",
                              path, sizeof(text) - 1);
            break;
        }
        int year;
        if ((rc = cb_cal_load_text(cal, text, len, path, &year, err)) == 0)
            (*loaded)++;
    }
    closedir(d);
    return rc;
}

bool cb_cal_is_working_day(const cb_calendar_t *cal, int64_t cst_day, int *missing_year)
{
    int yy, mm, dd;
    cb_civil_from_days(cst_day, &yy, &mm, &dd);
    int wd = cb_weekday_from_days(cst_day);
    bool weekday = wd >= 1 && wd <= 5;
    if (mm == 12) {
        const cal_year_t *next = year_of(cal, yy + 1);
        uint32_t b = 1u << (dd - 1);
        if (next && next->loaded && !next->provisional) {
            if (next->prev_workday & b)
                return true;
            if (next->prev_holiday & b)
                return false;
        }
    }
    const cal_year_t *y = year_of(cal, yy);
    if (y == NULL || !y->loaded || y->provisional) {
        if (missing_year && *missing_year == 0)
            *missing_year = yy;
        if (y == NULL || !y->loaded)
            return weekday;
    }
    int i = (int)(cst_day - cb_days_from_civil(yy, 1, 1));
    if (bit(y->workday, i))
        return true;
    return weekday && !bit(y->holiday, i);
}

int64_t cb_cal_add_working_days(const cb_calendar_t *cal, int64_t from_ms, unsigned n,
                                int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    int64_t day = cb_cst_day(from_ms);
    for (unsigned counted = 0; counted < n;) {
        day++; /* the starting day is not counted */
        if (cb_cal_is_working_day(cal, day, missing_year))
            counted++;
    }
    return cb_cst_day_start_ms(day + 1); /* 24:00 of the Nth working day */
}

int64_t cb_cal_add_days(const cb_calendar_t *cal, int64_t from_ms, unsigned n, int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    int64_t day = cb_cst_day(from_ms) + n;
    while (!cb_cal_is_working_day(cal, day, missing_year))
        day++; /* a period ending on a day off ends with the next working day */
    return cb_cst_day_start_ms(day + 1);
}

int64_t cb_cal_add_hours(int64_t from_ms, unsigned n)
{
    return from_ms + (int64_t)n * CB_HOUR_MS;
}

/* Walks at most this many days (a century): a bound against absurd input. */
#define WALK_MAX_DAYS (100 * 366)

int64_t cb_cal_working_ms(const cb_calendar_t *cal, int64_t a_ms, int64_t b_ms, int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    int64_t total = 0;
    int64_t day = cb_cst_day(a_ms);
    for (int walked = 0; a_ms < b_ms && walked < WALK_MAX_DAYS; walked++, day++) {
        int64_t end = cb_cst_day_start_ms(day + 1);
        int64_t stop = end < b_ms ? end : b_ms;
        if (cb_cal_is_working_day(cal, day, missing_year))
            total += stop - a_ms;
        a_ms = stop;
    }
    return total;
}

int64_t cb_cal_add_working_ms(const cb_calendar_t *cal, int64_t from_ms, int64_t ms,
                              int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    int64_t t = from_ms, day = cb_cst_day(from_ms);
    for (int walked = 0; ms > 0 && walked < WALK_MAX_DAYS; walked++, day++) {
        int64_t end = cb_cst_day_start_ms(day + 1);
        if (cb_cal_is_working_day(cal, day, missing_year)) {
            if (end - t >= ms)
                return t + ms;
            ms -= end - t;
        }
        t = end;
    }
    return t;
}

int64_t cb_cal_sub_working_ms(const cb_calendar_t *cal, int64_t to_ms, int64_t ms,
                              int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    int64_t t = to_ms, day = cb_cst_day(to_ms - 1);
    for (int walked = 0; ms > 0 && walked < WALK_MAX_DAYS; walked++, day--) {
        int64_t start = cb_cst_day_start_ms(day);
        if (cb_cal_is_working_day(cal, day, missing_year)) {
            if (t - start >= ms)
                return t - ms;
            ms -= t - start;
        }
        t = start;
    }
    return t;
}
