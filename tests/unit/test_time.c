/* test_time.c — civil dates, China Standard Time and RFC 3339, independent of TZ. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbtime.h"

static void civil_days_round_trip_and_weekdays(void **state)
{
    (void)state;
    assert_int_equal(cb_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cb_weekday_from_days(0), 4); /* 1970-01-01 was a Thursday */
    int64_t d = cb_days_from_civil(2024, 2, 29);   /* a leap day */
    int y, m, dd;
    cb_civil_from_days(d, &y, &m, &dd);
    assert_true(y == 2024 && m == 2 && dd == 29);
    assert_int_equal(cb_days_from_civil(2024, 3, 1) - d, 1);
    assert_int_equal(cb_weekday_from_days(cb_days_from_civil(2026, 11, 23)), 1); /* Monday */
    assert_int_equal(cb_weekday_from_days(cb_days_from_civil(1969, 12, 31)), 3);
    for (int64_t k = -800000; k < 800000; k += 997) {
        cb_civil_from_days(k, &y, &m, &dd);
        assert_int_equal(cb_days_from_civil(y, m, dd), k);
    }
    assert_int_equal(cb_days_in_month(2100, 2), 28);
    assert_int_equal(cb_days_in_month(2000, 2), 29);
}

static void cst_is_utc_plus_eight_whatever_tz_says(void **state)
{
    (void)state;
    setenv("TZ", "America/New_York", 1);
    /* 2026-01-31T16:30:00Z is 2026-02-01 00:30 in Beijing: a different local day. */
    int64_t t;
    cb_error_t err;
    assert_int_equal(cb_time_parse("2026-01-31T16:30:00Z", &t, &err), 0);
    cb_civil_t c;
    cb_time_to_cst(t, &c);
    assert_true(c.year == 2026 && c.month == 2 && c.day == 1 && c.hour == 0 && c.min == 30);
    assert_int_equal(c.wday, 0); /* Sunday */
    assert_int_equal(cb_cst_day(t), cb_days_from_civil(2026, 2, 1));
    assert_int_equal(cb_cst_day_start_ms(cb_cst_day(t)), t - 30 * 60000);
    char buf[64];
    cb_time_format_cst(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-02-01T00:30:00.000+08:00");
    cb_time_format_utc(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-31T16:30:00.000Z");
}

static void parses_rfc3339_forms(void **state)
{
    (void)state;
    int64_t a, b, c, d, e;
    cb_error_t err;
    assert_int_equal(cb_time_parse("2026-11-23T16:56:01+08:00", &a, &err), 0);
    assert_int_equal(cb_time_parse("2026-11-23T08:56:01Z", &b, &err), 0);
    assert_int_equal(cb_time_parse("2026-11-23 16:56:01", &c, &err), 0); /* no offset: CST */
    assert_int_equal(cb_time_parse("2026-11-23T03:56:01.000-05:00", &d, &err), 0);
    assert_int_equal(a, b);
    assert_int_equal(a, c);
    assert_int_equal(a, d);
    assert_int_equal(cb_time_parse("2026-11-23T16:56:01.25+08:00", &e, &err), 0);
    assert_int_equal(e - a, 250);
    assert_int_equal(cb_time_parse("2026-11-23", &e, &err), 0);
    assert_int_equal(e, cb_cst_day_start_ms(cb_days_from_civil(2026, 11, 23)));
}

static void refuses_malformed_times(void **state)
{
    (void)state;
    const char *bad[] = {"", "2026-13-01", "2026-02-30", "2026-11-23T24:00:00Z",
                         "2026-11-23T10:00:00+8", "2026-11-23T10:00:00Zjunk", "yesterday",
                         "2026-1-5", "2026-11-23T10:61:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t;
        cb_error_t err;
        assert_int_equal(cb_time_parse(bad[i], &t, &err), CB_ERR_INVALID);
        assert_non_null(strstr(err.message, "RFC 3339"));
    }
    int64_t day;
    cb_error_t err;
    assert_int_equal(cb_date_parse("2024-02-29", &day, &err), 0);
    assert_int_equal(cb_date_parse("2025-02-29", &day, &err), CB_ERR_INVALID);
}

static void reads_spans_and_instants_after_now(void **state)
{
    (void)state;
    int64_t now, t;
    cb_error_t err;
    assert_int_equal(cb_time_parse("2026-12-02T10:00:00+08:00", &now, &err), 0);
    assert_int_equal(cb_time_parse_after("90m", now, &t, &err), 0);
    assert_int_equal(t - now, 90 * 60 * 1000LL);
    assert_int_equal(cb_time_parse_after("30d", now, &t, &err), 0);
    assert_int_equal(t - now, 30 * CB_DAY_MS);
    assert_int_equal(cb_time_parse_after("2w", now, &t, &err), 0);
    assert_int_equal(t - now, 14 * CB_DAY_MS);
    assert_int_equal(cb_time_parse_after("2027-01-31", now, &t, &err), 0);
    const char *bad[] = {"0d", "30", "30y", "-1d", "d", "2026-12-01", "soon", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cb_time_parse_after(bad[i], now, &t, &err), CB_ERR_INVALID);
        assert_non_null(strstr(err.message, bad[i]));
    }
}

/* The formats are written digit by digit: byte for byte what snprintf writes,
 * from year 0 to 9999 and outside it (where snprintf itself writes them). */
static void formats_as_snprintf_does(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    const int64_t year_ms = 31556952000ll;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = (int64_t)(x % (uint64_t)(10200 * year_ms)) - 1970 * year_ms - 100 * year_ms;
        if (i < 4)
            ms = (int64_t[]){0, -1, 253402300799999ll, -62135596800000ll}[i];
        cb_civil_t c;
        char want[80], got[80];
        cb_time_to_cst(ms, &c);
        int n = snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03d+08:00", c.year,
                         c.month, c.day, c.hour, c.min, c.sec, c.msec);
        assert_int_equal(cb_time_format_cst(ms, got, sizeof(got)), n);
        assert_string_equal(got, want);
        cb_time_to_cst(ms - 8 * 3600000ll, &c); /* UTC's civil time */
        n = snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month,
                     c.day, c.hour, c.min, c.sec, c.msec);
        assert_int_equal(cb_time_format_utc(ms, got, sizeof(got)), n);
        assert_string_equal(got, want);
    }
    char small[10];
    assert_int_equal(cb_time_format_utc(0, small, sizeof(small)), 24); /* cut, as snprintf cuts */
    assert_string_equal(small, "1970-01-0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(civil_days_round_trip_and_weekdays),
        cmocka_unit_test(cst_is_utc_plus_eight_whatever_tz_says),
        cmocka_unit_test(parses_rfc3339_forms),
        cmocka_unit_test(refuses_malformed_times),
        cmocka_unit_test(reads_spans_and_instants_after_now),
        cmocka_unit_test(formats_as_snprintf_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
