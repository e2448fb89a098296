/*
 * holidays.h — a year's public holidays as the law fixes them, for a year whose
 * State Council notice (国务院办公厅关于YYYY年部分节假日安排的通知) is not loaded.
 *
 * 全国年节及纪念日放假办法 (as amended by 国务院令第795号, 2024, in force
 * 1 January 2025), 第二条: 元旦 1 day (1 January); 春节 4 days (除夕 to 初三);
 * 清明节 1 day (the day of the solar term); 劳动节 2 days (1–2 May); 端午节
 * 1 day (五月初五); 中秋节 1 day (八月十五); 国庆节 3 days (1–3 October).
 * 第六条: a holiday that falls on a Saturday or Sunday is made up on a working
 * day (补假). The notice then adds days swapped with weekends (调休), which no
 * rule predicts: a provisional year has none, and says so.
 *
 * The lunar dates are tabulated for CB_HOL_FIRST_YEAR..CB_HOL_LAST_YEAR, as the
 * lunar calendar is computed under GB/T 33661-2017 《农历的编算和颁行》 (the
 * Purple Mountain Observatory's 中国天文年历); tests/calendar checks every entry
 * against the chinese-days npm package's lunar conversion and solar terms.
 */
#ifndef CB_HOLIDAYS_H
#define CB_HOLIDAYS_H

#include <stddef.h>

#define CB_HOL_FIRST_YEAR 2025 /* the 2024 amendment's first year */
#define CB_HOL_LAST_YEAR 2040

/* Writes year's provisional calendar as the text of a .cal file (calendar.h,
 * with its `provisional` statement). Returns its length, or -1 when the year is
 * outside the table or buf is too small (4 KiB always suffices). */
int cb_holidays_provisional(int year, char *buf, size_t size);

#endif
