/*
 * calendar.c — casebus calendar import | show, and casebus due: the holiday
 * calendar as an operator handles it, with the counting code deadline runs.
 */
#include "cli.h"
#include "calendar.h"
#include "calimport.h"
#include "cbtime.h"
#include "holidays.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void calendar_usage(FILE *to)
{
    fprintf(to,
            "usage: casebus calendar import FILE [--year YYYY]\n"
            "       casebus calendar show YYYY [--calendar DIR]\n"
            "       casebus calendar convert FILE [--year YYYY]\n"
            "\n"
            "  import   load or correct years of the holiday calendar in deadline, which\n"
            "           recomputes every open time limit they move. FILE is a .cal file,\n"
            "           an iCalendar file (.ics, e.g. chinese-days' holidays.ics: events\n"
            "           marked 休 or 班), or JSON (a list of {\"date\", \"type\": \"holiday\" |\n"
            "           \"workday\", \"name\"}, or chinese-days' {\"holidays\", \"workdays\"}).\n"
            "           A file of several years loads each; --year takes one of them.\n"
            "  convert  print what import would load, as .cal text, loading nothing\n"
            "  show     print a year as `casebus due` counts it: the shipped file of\n"
            "           DIR (default deploy/calendar), else the provisional table of the\n"
            "           statutory holidays (2025-2040), else nothing (exit 3).\n"
            "\n"
            "example: casebus calendar import node_modules/chinese-days/dist/holidays.ics\n");
}

static int import_one(const cb_config_t *cfg, const char *file, const cb_cal_text_t *t)
{
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__ImportCalendar ic = CASEBUS__V1__IMPORT_CALENDAR__INIT;
    char source[512];
    snprintf(source, sizeof(source), "%s (%d)", file, t->year);
    ic.source_name = source;
    ic.text.data = (uint8_t *)t->text;
    ic.text.len = t->len;
    req.request_id = "cli";
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CALENDAR;
    req.import_calendar = &ic;
    Casebus__V1__ControlReply *rep = cli_call(cfg, "deadline", &req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (rep->ok)
        printf("%s\n", rep->message);
    else
        fprintf(stderr, "casebus: %s: %d refused, nothing changed: %s\n", file, t->year,
                rep->message);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* import, or (cfg NULL) convert: print the .cal texts. */
static int calendar_import(const cb_config_t *cfg, int argc, char **argv)
{
    const char *file = NULL;
    long only = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--year") == 0 && i + 1 < argc) {
            char *end;
            only = strtol(argv[++i], &end, 10);
            if (*end || only < CB_CAL_MIN_YEAR || only > CB_CAL_MAX_YEAR) {
                fprintf(stderr, "casebus: --year wants a year from %d to %d\n", CB_CAL_MIN_YEAR,
                        CB_CAL_MAX_YEAR);
                return 2;
            }
        } else if (argv[i][0] == '-' || file) {
            calendar_usage(stderr);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (file == NULL) {
        calendar_usage(stderr);
        return 2;
    }
    size_t len;
    char *text = cli_slurp(file, &len);
    if (text == NULL)
        return 1;
    cb_cal_text_t *years = NULL;
    size_t n = 0;
    cb_error_t err;
    int rc = cb_cal_convert(text, len, file, &years, &n, &err);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "casebus: refused, nothing changed: %s\n", err.message);
        return 1;
    }
    /* Each year is checked whole by deadline before any is loaded: a year
     * refused stops the rest, and says which were loaded. */
    int status = 0;
    size_t loaded = 0, matched = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        if (only && years[i].year != only)
            continue;
        matched++;
        if (cfg == NULL)
            fwrite(years[i].text, 1, years[i].len, stdout);
        else if ((status = import_one(cfg, file, &years[i])) == 0)
            loaded++;
    }
    if (only && matched == 0) {
        fprintf(stderr, "casebus: %s has no dates in %ld (it has", file, only);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", years[i].year);
        fprintf(stderr, ")\n");
        status = 1;
    } else if (status != 0 && loaded > 0) {
        fprintf(stderr, "casebus: %zu years before it were loaded\n", loaded);
    }
    cb_cal_texts_free(years, n);
    return status;
}

static int calendar_show(const cb_config_t *cfg, int argc, char **argv)
{
    const char *dir = cb_config_get(cfg, "deadline", "calendar_dir", "deploy/calendar");
    long year = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--calendar") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            char *end;
            year = strtol(argv[i], &end, 10);
            if (*end || year < CB_CAL_MIN_YEAR || year > CB_CAL_MAX_YEAR) {
                calendar_usage(stderr);
                return 2;
            }
        }
    }
    if (year == 0) {
        calendar_usage(stderr);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%ld.cal", dir, year);
    FILE *f = fopen(path, "rb");
    if (f) {
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, got, stdout);
        fclose(f);
        return 0;
    }
    char text[4096];
    int n = cb_holidays_provisional((int)year, text, sizeof(text));
    if (n < 0) {
        fprintf(stderr,
                "casebus: %ld has no calendar in %s and is outside the provisional table "
                "(%d-%d): it is counted by weekends only\n",
                year, dir, CB_HOL_FIRST_YEAR, CB_HOL_LAST_YEAR);
        return 3;
    }
    fwrite(text, 1, (size_t)n, stdout);
    return 0;
}

/* convert: import's checks and output, with no deadline to send to */
static int calendar_convert(const cb_config_t *cfg, int argc, char **argv)
{
    (void)cfg;
    return calendar_import(NULL, argc, argv);
}

int cli_calendar(const cb_config_t *cfg, int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"import", calendar_import}, {"convert", calendar_convert}, {"show", calendar_show}};
    int rc = cli_run_sub(subs, sizeof(subs) / sizeof(subs[0]), cfg, argc, argv);
    if (rc >= 0)
        return rc;
    bool help = cli_wants_help(argc, argv);
    if (!help && argc >= 1)
        fprintf(stderr, "casebus: unknown calendar command '%s'\n", argv[0]);
    calendar_usage(help ? stdout : stderr);
    return help ? 0 : 2;
}

/* casebus due: the same counting code as the deadline daemon. Exit 3 when a
 * year the count needed has no notice (counted provisionally or by weekdays). */
int cli_due(const cb_config_t *cfg, int argc, char **argv)
{
    const char *from = NULL, *dir = cb_config_get(cfg, "deadline", "calendar_dir", "deploy/calendar");
    const char *unit = NULL;
    unsigned long n = 0;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            goto usage;
        if (strcmp(argv[i], "--from") == 0) {
            from = argv[++i];
        } else if (strcmp(argv[i], "--calendar") == 0) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--working-days") == 0 || strcmp(argv[i], "--hours") == 0 ||
                   strcmp(argv[i], "--days") == 0) {
            char *end;
            unit = argv[i] + 2;
            n = strtoul(argv[++i], &end, 10);
            if (*end || n == 0 || n > 10000) {
                fprintf(stderr, "casebus: --%s wants a whole number from 1 to 10000\n", unit);
                return 2;
            }
        } else {
            goto usage;
        }
    }
    if (from == NULL || unit == NULL)
        goto usage;
    cb_error_t err;
    int64_t t;
    if (cb_time_parse(from, &t, &err) != 0) {
        fprintf(stderr, "casebus: --from: %s\n", err.message);
        return 2;
    }
    cb_calendar_t *cal = cb_cal_new();
    int loaded = 0;
    if (cal == NULL || cb_cal_load_dir(cal, dir, &loaded, &err) != 0) {
        fprintf(stderr, "casebus: %s\n", cal ? err.message : "out of memory");
        cb_cal_destroy(&cal);
        return 1;
    }
    int missing = 0;
    bool hours = strcmp(unit, "hours") == 0;
    int64_t d = strcmp(unit, "working-days") == 0 ? cb_cal_add_working_days(cal, t, (unsigned)n, &missing)
                : !hours                          ? cb_cal_add_days(cal, t, (unsigned)n, &missing)
                                                  : cb_cal_add_hours(t, (unsigned)n);
    char a[40], b[40], c[40], e[40], last[16];
    cb_time_format_cst(t, a, sizeof(a));
    cb_time_format_utc(t, b, sizeof(b));
    cb_time_format_cst(d, c, sizeof(c));
    cb_time_format_utc(d, e, sizeof(e));
    printf("from      %s  (%s)\n", a, b);
    printf("limit     %lu %s\n", n, strcmp(unit, "working-days") == 0 ? "working days" : unit);
    if (hours) {
        printf("due       %s  (%s)\n", c, e);
    } else {
        cb_date_format(cb_cst_day(d) - 1, last, sizeof(last));
        printf("due       %s  (%s) = 24:00 on %s%s\n", c, e, last,
               missing ? "  PROVISIONAL" : "");
    }
    int y0, m0, d0, y1, m1, d1;
    cb_civil_from_days(cb_cst_day(t), &y0, &m0, &d0);
    cb_civil_from_days(cb_cst_day(d - 1), &y1, &m1, &d1);
    for (int y = y0; y <= y1 && !hours; y++)
        printf("calendar  %d: %s\n", y,
               cb_cal_has_year(cal, y)         ? cb_cal_version(cal, y)
               : cb_cal_is_provisional(cal, y) ? "PROVISIONAL: statutory holidays only "
                                                 "(全国年节及纪念日放假办法), no State Council "
                                                 "notice loaded"
                                               : "NOT LOADED: weekdays only");
    bool provisional = missing && cb_cal_is_provisional(cal, missing);
    cb_cal_destroy(&cal);
    if (missing) {
        fprintf(stderr,
                "casebus: WARNING: no State Council notice for %d in %s: that year was counted "
                "%s; the due instant may move when the notice is loaded "
                "(casebus calendar import)\n",
                missing, dir,
                provisional ? "by its statutory holidays alone, with no days swapped (调休)"
                            : "with weekends only");
        return 3;
    }
    return 0;
usage:
    fprintf(stderr, "usage: casebus due --from TIME (--working-days N | --hours N | --days N) "
                    "[--calendar DIR]\n");
    return 2;
}
