/*
 * holidays.c — the statutory holidays of a year (holidays.h), written as a
 * provisional .cal file.
 */
#include "holidays.h"
#include "cbtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Gregorian dates (month * 100 + day) of 春节 (正月初一), 清明, 端午 and 中秋. */
typedef struct lunar_year {
    short spring, qingming, dragon_boat, mid_autumn;
} lunar_year_t;

static const lunar_year_t lunar[CB_HOL_LAST_YEAR - CB_HOL_FIRST_YEAR + 1] = {
    /* 2025 */ {129, 404, 531, 1006},
    /* 2026 */ {217, 405, 619, 925},
    /* 2027 */ {206, 405, 609, 915},
    /* 2028 */ {126, 404, 528, 1003},
    /* 2029 */ {213, 404, 616, 922},
    /* 2030 */ {203, 405, 605, 912},
    /* 2031 */ {123, 405, 624, 1001},
    /* 2032 */ {211, 404, 612, 919},
    /* 2033 */ {131, 404, 601, 908},
    /* 2034 */ {219, 405, 620, 927},
    /* 2035 */ {208, 405, 610, 916},
    /* 2036 */ {128, 404, 530, 1004},
    /* 2037 */ {215, 404, 618, 924},
    /* 2038 */ {204, 405, 607, 913},
    /* 2039 */ {124, 405, 527, 1002},
    /* 2040 */ {212, 404, 614, 920},
};

typedef struct block {
    int64_t first;   /* the first day (days since 1970-01-01) */
    int days;
    const char *name;
} block_t;

static int64_t day_of(int year, int mmdd)
{
    return cb_days_from_civil(year, mmdd / 100, mmdd % 100);
}

static bool weekend(int64_t day)
{
    int wd = cb_weekday_from_days(day);
    return wd == 0 || wd == 6;
}

typedef struct out {
    char *buf;
    size_t size, used;
    bool overflow;
} out_t;

static void put(out_t *o, int64_t day, const char *name, const char *suffix)
{
    char date[16];
    cb_date_format(day, date, sizeof(date));
    int n = snprintf(o->buf + o->used, o->size - o->used, "holiday %s %s%s\n", date, name, suffix);
    if (n < 0 || (size_t)n >= o->size - o->used)
        o->overflow = true;
    else
        o->used += (size_t)n;
}

int cb_holidays_provisional(int year, char *buf, size_t size)
{
    if (year < CB_HOL_FIRST_YEAR || year > CB_HOL_LAST_YEAR || size == 0)
        return -1;
    const lunar_year_t *l = &lunar[year - CB_HOL_FIRST_YEAR];
    /* In date order: make-up days of one block come before the next block. */
    block_t blocks[7] = {
        {day_of(year, 101), 1, "元旦"},
        {day_of(year, l->spring) - 1, 4, "春节"}, /* from 除夕 */
        {day_of(year, l->qingming), 1, "清明节"},
        {day_of(year, 501), 2, "劳动节"},
        {day_of(year, l->dragon_boat), 1, "端午节"},
        {day_of(year, l->mid_autumn), 1, "中秋节"},
        {day_of(year, 1001), 3, "国庆节"},
    };
    /* 中秋 may fall on or after 1 October (2028, 2031, 2036, 2039): keep date order. */
    if (blocks[5].first > blocks[6].first) {
        block_t t = blocks[5];
        blocks[5] = blocks[6];
        blocks[6] = t;
    }
    uint8_t off[370 / 8 + 1] = {0}; /* bit per day of the year: a holiday already */
    int64_t jan1 = cb_days_from_civil(year, 1, 1), next_jan1 = cb_days_from_civil(year + 1, 1, 1);
    out_t o = {buf, size, 0, false};
    int n = snprintf(buf, size,
                     "# Provisional calendar of %d: the statutory holidays of\n"
                     "# 全国年节及纪念日放假办法 (国务院令第795号, 2024) 第二条, with 第六条's\n"
                     "# make-up day for a holiday on a Saturday or Sunday. No days are swapped\n"
                     "# with weekends (调休): only the State Council's notice says which.\n"
                     "year %d\n"
                     "version provisional: statutory holidays only (全国年节及纪念日放假办法); "
                     "no State Council notice for %d loaded\n"
                     "provisional\n",
                     year, year, year);
    if (n < 0 || (size_t)n >= size)
        return -1;
    o.used = (size_t)n;
    for (int b = 0; b < 7; b++) {
        int owed = 0;
        int64_t last = blocks[b].first + blocks[b].days - 1;
        for (int64_t d = blocks[b].first; d <= last; d++) {
            int i = (int)(d - jan1);
            if (d < jan1 || d >= next_jan1)
                continue; /* 除夕 of a 春节 on 1 January: never so in this table */
            if (weekend(d) || (off[i / 8] & (1u << (i % 8)))) {
                owed++;
                continue;
            }
            off[i / 8] |= (uint8_t)(1u << (i % 8));
            put(&o, d, blocks[b].name, "");
        }
        for (int64_t d = last + 1; owed > 0 && d < next_jan1; d++) {
            int i = (int)(d - jan1);
            if (weekend(d) || (off[i / 8] & (1u << (i % 8))))
                continue;
            off[i / 8] |= (uint8_t)(1u << (i % 8));
            put(&o, d, blocks[b].name, "补假");
            owed--;
        }
    }
    return o.overflow ? -1 : (int)o.used;
}
