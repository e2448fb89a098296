/* test_calendar.c — working-day arithmetic against the official 2024–2026
 * calendars in deploy/calendar/. Every expectation below was derived by hand
 * from the State Council's dates; the reasoning is written beside it.
 * Notation: "day N" = the Nth working day counted; the start day never counts;
 * the due instant is 24:00 (CST) of the last day counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cbtime.h"
#include "testutil.h"

static int setup(void **state)
{
    cb_calendar_t *cal = cb_cal_new();
    cb_error_t err;
    int loaded;
    if (cb_cal_load_dir(cal, "deploy/calendar", &loaded, &err) != 0 || loaded != 3)
        return -1;
    *state = cal;
    return 0;
}

static int teardown(void **state)
{
    cb_calendar_t *cal = *state;
    cb_cal_destroy(&cal);
    return 0;
}

typedef struct due_case {
    const char *name, *from;
    unsigned n;
    const char *due;
    int missing;
} due_case_t;

static const due_case_t working[] = {
    /* Spring Festival 2026: off Feb 15 (Sun)–Feb 23 (Mon); Sat Feb 14 is a working day.
     * From Fri Feb 13: Sat Feb 14 = day 1, Feb 15–23 off, Tue Feb 24 = 2, Wed Feb 25 = 3. */
    {"3 working days across Spring Festival 2026, with an adjusted Saturday",
     "2026-02-13T10:00:00+08:00", 3, "2026-02-26T00:00:00+08:00", 0},
    /* Spring Festival 2024: off Feb 10 (Sat)–Feb 17 (Sat); Sun Feb 18 is a working day.
     * From Thu Feb 8: Fri Feb 9 = 1, Feb 10–17 off, Sun Feb 18 = 2, Mon Feb 19 = 3. */
    {"3 working days across Spring Festival 2024, with an adjusted Sunday",
     "2024-02-08T09:00:00+08:00", 3, "2024-02-20T00:00:00+08:00", 0},
    /* Spring Festival 2025: off Jan 28 (Tue)–Feb 4 (Tue); Sun Jan 26 and Sat Feb 8 work.
     * From Fri Jan 24: Sat Jan 25 off, Sun Jan 26 = 1, Mon Jan 27 = 2, Jan 28–Feb 4 off,
     * Wed Feb 5 = 3, Thu 6 = 4, Fri 7 = 5. */
    {"5 working days across Spring Festival 2025", "2025-01-24T15:00:00+08:00", 5,
     "2025-02-08T00:00:00+08:00", 0},
    /* National Day 2025: off Oct 1 (Wed)–Oct 8 (Wed); Sun Sep 28 and Sat Oct 11 work.
     * From Tue Sep 30: Oct 1–8 off, Thu Oct 9 = 1, Fri Oct 10 = 2, Sat Oct 11 = 3. */
    {"3 working days across National Day 2025, ending on an adjusted Saturday",
     "2025-09-30T09:00:00+08:00", 3, "2025-10-12T00:00:00+08:00", 0},
    /* National Day 2024: off Oct 1–7; Sun Sep 29 and Sat Oct 12 work. From Sun Sep 29
     * (itself a working day, but the start day never counts): Mon Sep 30 = 1, Oct 1–7 off,
     * Tue Oct 8 = 2, 9 = 3, 10 = 4, Fri 11 = 5, Sat 12 = 6, Mon 14 = 7, 15 = 8, 16 = 9,
     * Thu 17 = 10. */
    {"10 working days across National Day 2024", "2024-09-29T18:00:00+08:00", 10,
     "2024-10-18T00:00:00+08:00", 0},
    /* May Day 2024: off May 1–5; Sun Apr 28 and Sat May 11 work. From Fri Apr 26:
     * Sat Apr 27 off, Sun Apr 28 = 1, Mon 29 = 2, Tue 30 = 3, May 1–5 off, Mon May 6 = 4,
     * Tue May 7 = 5. */
    {"5 working days across May Day 2024, with an adjusted Sunday", "2024-04-26T11:00:00+08:00",
     5, "2024-05-08T00:00:00+08:00", 0},
    /* May Day 2026: off May 1 (Fri)–May 5 (Tue); Sat May 9 works. From Thu Apr 30:
     * Wed May 6 = 1, Thu 7 = 2, Fri 8 = 3, Sat 9 = 4, Mon 11 = 5. */
    {"5 working days across May Day 2026", "2026-04-30T16:00:00+08:00", 5,
     "2026-05-12T00:00:00+08:00", 0},
    /* Year boundary: 2026 Jan 1–3 off, Sun Jan 4 works. From Wed 2025-12-31:
     * Sun Jan 4 = 1, Mon 5 = 2, Tue 6 = 3. */
    {"3 working days across the 2025/2026 year boundary", "2025-12-31T10:00:00+08:00", 3,
     "2026-01-07T00:00:00+08:00", 0},
    /* Leap day: from Wed 2024-02-28, Thu Feb 29 = 1. */
    {"1 working day ending on the leap day 2024-02-29", "2024-02-28T10:00:00+08:00", 1,
     "2024-03-01T00:00:00+08:00", 0},
    /* Discovered on a holiday (Fri 2025-10-03): Thu Oct 9 = 1, Fri 10 = 2, Sat 11 = 3. */
    {"3 working days from a case discovered on a public holiday",
     "2025-10-03T14:00:00+08:00", 3, "2025-10-12T00:00:00+08:00", 0},
    /* 23:59:59 on Mon 2026-11-23 is still Monday: Tue Nov 24 = 1. */
    {"1 working day from 23:59:59 local", "2026-11-23T23:59:59+08:00", 1,
     "2026-11-25T00:00:00+08:00", 0},
    /* 16:00 UTC on Nov 23 is 00:00 Tuesday in Beijing: Wed Nov 25 = 1. */
    {"the local (CST) day decides, not the UTC day", "2026-11-23T16:00:00Z", 1,
     "2026-11-26T00:00:00+08:00", 0},
    /* 2027 has no notice: Thu 2026-12-31 = 1; 2027 counts its statutory holidays (and
     * says so): Fri 2027-01-01 (元旦) off, Mon Jan 4 = 2, Tue Jan 5 = 3 -> 24:00 Tue. */
    {"a year without a notice counts its statutory holidays and is reported missing",
     "2026-12-30T10:00:00+08:00", 3, "2027-01-06T00:00:00+08:00", 2027},
    /* 2027 provisional: 除夕 Fri Feb 5 and 初三 Mon Feb 8 off, Sat 6 and Sun 7 made up on
     * Tue 9 and Wed 10 (第六条): from Thu Feb 4, Thu Feb 11 = 1. */
    {"Spring Festival 2027 by the statute, with its make-up days",
     "2027-02-04T10:00:00+08:00", 1, "2027-02-12T00:00:00+08:00", 2027},
    /* 2041 is past the table: weekdays only, reported. */
    {"a year past the table counts weekdays and is reported missing",
     "2041-01-03T10:00:00+08:00", 1, "2041-01-05T00:00:00+08:00", 2041},
};

static void working_days_over_official_calendars(void **state)
{
    cb_calendar_t *cal = *state;
    for (size_t i = 0; i < sizeof(working) / sizeof(working[0]); i++) {
        const due_case_t *c = &working[i];
        int missing = -1;
        int64_t due = cb_cal_add_working_days(cal, tu_at(c->from), c->n, &missing);
        char got[40];
        cb_time_format_cst(due, got, sizeof(got));
        if (due != tu_at(c->due) || missing != c->missing)
            fail_msg("%s: due %s (want %s), missing year %d (want %d)", c->name, got, c->due,
                     missing, c->missing);
    }
}

static void hours_are_exact_even_across_a_holiday(void **state)
{
    cb_calendar_t *cal = *state;
    (void)cal;
    /* 24 hours from Sat 2026-02-14 10:00 (the eve of Spring Festival) is Sun 10:00. */
    assert_int_equal(cb_cal_add_hours(tu_at("2026-02-14T10:00:00+08:00"), 24),
                     tu_at("2026-02-15T10:00:00+08:00"));
    assert_int_equal(cb_cal_add_hours(tu_at("2025-09-30T23:30:00+08:00"), 24),
                     tu_at("2025-10-01T23:30:00+08:00"));
}

static void calendar_days_end_on_a_working_day(void **state)
{
    cb_calendar_t *cal = *state;
    int missing;
    /* 10 days from Mon 2026-03-02: day 10 is Thu Mar 12, a working day: 24:00 that day. */
    assert_int_equal(cb_cal_add_days(cal, tu_at("2026-03-02T09:00:00+08:00"), 10, &missing),
                     tu_at("2026-03-13T00:00:00+08:00"));
    /* 3 days from Mon 2025-09-29: day 3 is Thu Oct 2, a holiday; the next working day
     * is Thu Oct 9, so the period ends at 24:00 on Oct 9. */
    assert_int_equal(cb_cal_add_days(cal, tu_at("2025-09-29T09:00:00+08:00"), 3, &missing),
                     tu_at("2025-10-10T00:00:00+08:00"));
    assert_int_equal(missing, 0);
}

static void working_day_predicate(void **state)
{
    cb_calendar_t *cal = *state;
    int missing = 0;
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2026, 2, 14), &missing)); /* Sat, adjusted */
    assert_false(cb_cal_is_working_day(cal, cb_days_from_civil(2026, 2, 16), &missing)); /* Mon, holiday */
    assert_false(cb_cal_is_working_day(cal, cb_days_from_civil(2026, 3, 7), &missing)); /* plain Sat */
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2026, 3, 9), &missing)); /* plain Mon */
    assert_int_equal(missing, 0);
    assert_string_equal(cb_cal_version(cal, 2024), "国办发明电〔2023〕7号");
}

/* Paused clocks keep the working time they used (DOMAIN.md). */
static void working_time_pauses_and_resumes(void **state)
{
    cb_calendar_t *cal = *state;
    const int64_t H = 3600 * 1000LL;
    int missing;
    /* Fri 2026-02-13 10:00 to Tue 2026-02-24 10:00: the rest of Fri 13 (14 h), Sat 14
     * (an adjusted working day, 24 h), Feb 15-23 off (Spring Festival), Tue 24 until
     * 10:00 (10 h) = 48 h of working time. */
    assert_int_equal(cb_cal_working_ms(cal, tu_at("2026-02-13T10:00:00+08:00"),
                                       tu_at("2026-02-24T10:00:00+08:00"), &missing),
                     48 * H);
    assert_int_equal(missing, 0);
    /* 3 working days from Fri Feb 13 end at 24:00 Wed Feb 25 (see above); at the start
     * the clock has 14 h (rest of Fri) + 24 (Sat 14) + 24 (Tue 24) + 24 (Wed 25) = 86 h. */
    int64_t start = tu_at("2026-02-13T10:00:00+08:00"), due = tu_at("2026-02-26T00:00:00+08:00");
    assert_int_equal(cb_cal_working_ms(cal, start, due, NULL), 86 * H);
    /* Paused on Sat Feb 14 at 12:00 (26 h used, 60 h left), resumed on Mon Mar 2 at
     * 12:00: the rest of Mon (12 h), Tue 3 and Wed 4 (48 h) = 60 h -> 24:00 Wed Mar 4. */
    int64_t used = cb_cal_working_ms(cal, start, tu_at("2026-02-14T12:00:00+08:00"), NULL);
    assert_int_equal(used, 26 * H);
    assert_int_equal(cb_cal_add_working_ms(cal, tu_at("2026-03-02T12:00:00+08:00"), 86 * H - used,
                                           NULL),
                     tu_at("2026-03-05T00:00:00+08:00"));
    /* Resumed on a day off (Sun Mar 1 09:00): the clock runs from Mon Mar 2 00:00;
     * 60 h = Mon, Tue (48 h) + 12 h of Wed Mar 4. */
    assert_int_equal(cb_cal_add_working_ms(cal, tu_at("2026-03-01T09:00:00+08:00"), 60 * H, NULL),
                     tu_at("2026-03-04T12:00:00+08:00"));
    /* One working day before 24:00 Wed Feb 25 is 00:00 Wed Feb 25 (24:00 of Tue 24).
     * 25 h before 24:00 Tue Feb 24: Tue 24 gives 24 h, the festival (Feb 15-23) none,
     * the last hour is 23:00-24:00 of Sat Feb 14 (an adjusted working day). */
    assert_int_equal(cb_cal_sub_working_ms(cal, due, 24 * H, NULL),
                     tu_at("2026-02-25T00:00:00+08:00"));
    assert_int_equal(cb_cal_sub_working_ms(cal, tu_at("2026-02-25T00:00:00+08:00"), 25 * H, NULL),
                     tu_at("2026-02-14T23:00:00+08:00"));
    /* No notice for 2027: its statutory holidays count and the year is reported. */
    cb_cal_working_ms(cal, tu_at("2026-12-31T00:00:00+08:00"), tu_at("2027-01-05T00:00:00+08:00"),
                      &missing);
    assert_int_equal(missing, 2027);
}

static void bad_calendar_files_name_the_line(void **state)
{
    (void)state;
    struct {
        const char *text, *want;
    } bad[] = {
        {"holiday 2026-01-01\n", "t.cal:1: 'year' must come first"},
        {"year 2026\nholiday 2026-02-30\n", "t.cal:2: not a date"},
        {"year 2026\nholiday 2025-11-30\n", "t.cal:2: date outside the year"},
        {"year 2026\nholiday 2027-01-01\n", "t.cal:2: date outside the year"},
        {"year 2026\nworkday 2025-12-29\n", "t.cal:2: an adjusted working day must be a Saturday"},
        {"year 2026\nholiday 2025-12-31\nworkday 2025-12-27\nholiday 2025-12-31\n",
         "t.cal:4: date given twice"},
        {"year 2026\nworkday 2026-02-16\n", "t.cal:2: an adjusted working day must be a Saturday"},
        {"year 2026\nholiday 2026-02-15..2026-02-23\nholiday 2026-02-20\n", "t.cal:3: date given twice"},
        {"year 2026\nfeast 2026-02-20\n", "t.cal:2: unknown statement: feast"},
        {"# nothing\n", "no 'year' statement"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cb_calendar_t *cal = cb_cal_new();
        cb_error_t e;
        int year = 0;
        assert_int_equal(cb_cal_load_text(cal, bad[i].text, strlen(bad[i].text), "t.cal", &year, &e),
                         CB_ERR_INVALID);
        if (strstr(e.message, bad[i].want) == NULL)
            fail_msg("case %zu: got '%s', want '%s'", i, e.message, bad[i].want);
        assert_false(cb_cal_has_year(cal, 2026)); /* nothing loaded */
        cb_cal_destroy(&cal);
    }
}

/* The 2019 notice made Sat 29 Dec 2018 a working day and Mon 31 Dec a holiday:
 * its file says so, and that overrides 2018's own file. */
static void a_notice_adjusts_the_december_before(void **state)
{
    (void)state;
    cb_calendar_t *cal = cb_cal_new();
    assert_non_null(cal);
    cb_error_t e;
    const char *y2018 = "year 2018\nversion 2018 notice\nholiday 2018-12-30\n";
    const char *y2019 = "year 2019\nversion 2019 notice\nholiday 2018-12-30..2018-12-31 元旦\n"
                        "holiday 2019-01-01 元旦\nworkday 2018-12-29 元旦调休\n";
    assert_int_equal(cb_cal_load_text(cal, y2018, strlen(y2018), "2018.cal", NULL, &e), 0);
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2018, 12, 31), NULL));
    assert_false(cb_cal_adjusts_previous(cal, 2018));
    assert_int_equal(cb_cal_load_text(cal, y2019, strlen(y2019), "2019.cal", NULL, &e), 0);
    assert_true(cb_cal_adjusts_previous(cal, 2019));
    int missing = 0;
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2018, 12, 29), &missing));
    assert_false(cb_cal_is_working_day(cal, cb_days_from_civil(2018, 12, 31), &missing));
    assert_false(cb_cal_is_working_day(cal, cb_days_from_civil(2019, 1, 1), &missing));
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2019, 1, 2), &missing));
    assert_int_equal(missing, 0);
    /* 1 working day from Fri 28 Dec 2018: Sat 29 works -> 24:00 Sat 29. */
    assert_int_equal(cb_cal_add_working_days(cal, tu_at("2018-12-28T10:00:00+08:00"), 1, &missing),
                     tu_at("2018-12-30T00:00:00+08:00"));
    cb_cal_destroy(&cal);
}

/* The provisional years: official ones are not provisional, loading a notice
 * replaces the provisional table, and each statutory holiday of 2027 is off. */
static void provisional_years_until_the_notice(void **state)
{
    cb_calendar_t *cal = *state;
    assert_true(cb_cal_has_year(cal, 2026));
    assert_false(cb_cal_is_provisional(cal, 2026));
    assert_false(cb_cal_has_year(cal, 2027));
    assert_true(cb_cal_is_provisional(cal, 2027));
    assert_true(cb_cal_is_provisional(cal, 2040));
    assert_false(cb_cal_is_provisional(cal, 2041));
    static const int off[][2] = {{1, 1},  {2, 5},  {2, 8},   {2, 9},   {2, 10},  {4, 5},  {5, 3},
                                 {5, 4},  {6, 9},  {9, 15},  {10, 1},  {10, 4},  {10, 5}};
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
        if (cb_cal_is_working_day(cal, cb_days_from_civil(2027, off[i][0], off[i][1]), NULL))
            fail_msg("2027-%02d-%02d should be a provisional holiday", off[i][0], off[i][1]);
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2027, 2, 11), NULL));
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2027, 10, 6), NULL));
    assert_string_equal(cb_cal_version(cal, 2027),
                        "provisional: statutory holidays only (全国年节及纪念日放假办法); "
                        "no State Council notice for 2027 loaded");
    cb_error_t e;
    const char *y2027 = "year 2027\nversion the 2027 notice\nholiday 2027-01-01..2027-01-03\n";
    assert_int_equal(cb_cal_load_text(cal, y2027, strlen(y2027), "2027.cal", NULL, &e), 0);
    assert_true(cb_cal_has_year(cal, 2027));
    assert_false(cb_cal_is_provisional(cal, 2027));
    int missing = 0;
    assert_true(cb_cal_is_working_day(cal, cb_days_from_civil(2027, 2, 8), &missing));
    assert_int_equal(missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(working_days_over_official_calendars, setup, teardown),
        cmocka_unit_test_setup_teardown(hours_are_exact_even_across_a_holiday, setup, teardown),
        cmocka_unit_test_setup_teardown(calendar_days_end_on_a_working_day, setup, teardown),
        cmocka_unit_test_setup_teardown(working_day_predicate, setup, teardown),
        cmocka_unit_test_setup_teardown(working_time_pauses_and_resumes, setup, teardown),
        cmocka_unit_test(bad_calendar_files_name_the_line),
        cmocka_unit_test(a_notice_adjusts_the_december_before),
        cmocka_unit_test_setup_teardown(provisional_years_until_the_notice, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
