/*
 * calimport.c — iCalendar and JSON holiday lists to .cal texts (calimport.h).
 */
#include "calimport.h"
#include "calendar.h"
#include "cbtime.h"
#include "grow.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DAYS 20000 /* a century of holidays and more */

typedef struct day_entry {
    int64_t day;
    bool holiday;
    char name[64];
} day_entry_t;

typedef struct days {
    day_entry_t *v;
    size_t n, cap;
    char version[160];
} days_t;

static int add_day(days_t *d, int64_t day, bool holiday, const char *name, const char *source,
                   cb_error_t *err)
{
    if (d->n == MAX_DAYS)
        return cb_error_set(err, CB_ERR_TOO_LARGE, "calendar", "%s: more than %d days", source,
                            MAX_DAYS);
    if (CB_GROW(d->v, d->cap, d->n, 64) != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    day_entry_t *e = &d->v[d->n++];
    e->day = day;
    e->holiday = holiday;
    /* Whole UTF-8 characters only, and none that would break a line. */
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p;) {
        size_t w = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        size_t have = 0;
        while (have < w && p[have])
            have++;
        if (have < w || k + w >= sizeof(e->name))
            break; /* a cut character, or no room for it */
        for (size_t j = 0; j < w; j++)
            e->name[k++] = (char)(p[j] == '\n' || p[j] == '\r' || p[j] == '#' ? ' ' : p[j]);
        p += w;
    }
    e->name[k] = '\0';
    return 0;
}

static int cmp_day(const void *a, const void *b)
{
    const day_entry_t *x = a, *y = b;
    return x->day < y->day ? -1 : x->day > y->day;
}

/* Sorted days to one .cal text per year. */
static int emit_years(days_t *d, const char *source, cb_cal_text_t **out, size_t *n,
                      cb_error_t *err)
{
    *out = NULL;
    *n = 0;
    if (d->n == 0)
        return cb_error_set(err, CB_ERR_INVALID, "calendar", "%s: no holidays or working days in it",
                            source);
    qsort(d->v, d->n, sizeof(*d->v), cmp_day);
    for (size_t i = 1; i < d->n; i++) {
        if (d->v[i].day != d->v[i - 1].day)
            continue;
        char date[16];
        cb_date_format(d->v[i].day, date, sizeof(date));
        if (d->v[i].holiday != d->v[i - 1].holiday)
            return cb_error_set(err, CB_ERR_INVALID, "calendar",
                                "%s: %s is given both as a day off and as a working day", source,
                                date);
    }
    cb_cal_text_t *texts = calloc(CB_CAL_MAX_YEAR - CB_CAL_MIN_YEAR + 1, sizeof(*texts));
    if (texts == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    size_t count = 0, i = 0;
    int rc = 0;
    while (rc == 0 && i < d->n) {
        int year, m, dd;
        cb_civil_from_days(d->v[i].day, &year, &m, &dd);
        if (year < CB_CAL_MIN_YEAR || year > CB_CAL_MAX_YEAR) {
            rc = cb_error_set(err, CB_ERR_INVALID, "calendar", "%s: year %d is outside %d..%d",
                              source, year, CB_CAL_MIN_YEAR, CB_CAL_MAX_YEAR);
            break;
        }
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (f == NULL) {
            rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            break;
        }
        fprintf(f, "# converted by casebus from %s\nyear %d\nversion %s\n", source, year,
                d->version);
        for (; i < d->n; i++) {
            int y2;
            cb_civil_from_days(d->v[i].day, &y2, &m, &dd);
            if (y2 != year)
                break;
            if (i > 0 && d->v[i].day == d->v[i - 1].day)
                continue; /* the same day twice, the same way */
            char date[16];
            cb_date_format(d->v[i].day, date, sizeof(date));
            fprintf(f, "%s %s %s\n", d->v[i].holiday ? "holiday" : "workday", date, d->v[i].name);
        }
        if (fclose(f) != 0 || buf == NULL) {
            free(buf);
            rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            break;
        }
        texts[count].year = year;
        texts[count].text = buf;
        texts[count].len = size;
        count++;
    }
    if (rc != 0) {
        cb_cal_texts_free(texts, count);
        return rc;
    }
    *out = texts;
    *n = count;
    return 0;
}

/* ---- iCalendar ---- */

/* "20260101" or "20260101T000000[Z]" (a value after ':') -> CST day. */
static int ics_date(const char *v, int64_t *day)
{
    int y, m, d;
    char tail;
    if (strlen(v) < 8 || sscanf(v, "%4d%2d%2d%c", &y, &m, &d, &tail) < 3 || m < 1 || m > 12 ||
        d < 1 || d > cb_days_in_month(y, m))
        return -1;
    for (int i = 0; i < 8; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    *day = cb_days_from_civil(y, m, d);
    return 0;
}

typedef struct vevent {
    int line;
    char start[64], end[64], summary[160], description[160], special[64];
} vevent_t;

static bool has(const char *s, const char *word)
{
    return strstr(s, word) != NULL;
}

/* 1: a day off, 0: a working day, -1: neither. */
static int ics_kind(const vevent_t *e)
{
    if (strcmp(e->special, "WORK-HOLIDAY") == 0)
        return 1;
    if (strcmp(e->special, "ALTERNATE-WORKDAY") == 0)
        return 0;
    const char *t[2] = {e->summary, e->description};
    for (int i = 0; i < 2; i++) {
        bool off = has(t[i], "(休)") || has(t[i], "（休）") || has(t[i], "放假") ||
                   has(t[i], "(Holiday)");
        bool work = has(t[i], "(班)") || has(t[i], "（班）") || has(t[i], "上班") ||
                    has(t[i], "补班") || has(t[i], "(Workday)");
        if (off != work)
            return off ? 1 : 0;
        if (!off && has(t[i], "休") != has(t[i], "班"))
            return has(t[i], "休") ? 1 : 0;
    }
    return -1;
}

/* The name without its "(休)" mark. */
static void ics_name(const char *summary, char *out, size_t size)
{
    snprintf(out, size, "%s", summary);
    static const char *const marks[] = {"(休)", "（休）", "(班)", "（班）", "(Holiday)",
                                        "(Workday)"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        char *p = strstr(out, marks[i]);
        if (p)
            memmove(p, p + strlen(marks[i]), strlen(p + strlen(marks[i])) + 1);
    }
}

static int ics_event(days_t *d, const vevent_t *e, const char *source, cb_error_t *err)
{
    int64_t first, end;
    if (ics_date(e->start, &first) != 0)
        return cb_error_set(err, CB_ERR_INVALID, "DTSTART",
                            "%s:%d: DTSTART '%s' is not a date (YYYYMMDD)", source, e->line,
                            e->start);
    if (e->end[0] == '\0')
        end = first + 1;
    else if (ics_date(e->end, &end) != 0)
        return cb_error_set(err, CB_ERR_INVALID, "DTEND", "%s:%d: DTEND '%s' is not a date",
                            source, e->line, e->end);
    if (end <= first)
        end = first + 1; /* DTEND is exclusive; an equal one means the one day */
    if (end - first > 60)
        return cb_error_set(err, CB_ERR_INVALID, "DTEND",
                            "%s:%d: an event of %lld days is not a holiday", source, e->line,
                            (long long)(end - first));
    int kind = ics_kind(e);
    if (kind < 0)
        return cb_error_set(err, CB_ERR_INVALID, "SUMMARY",
                            "%s:%d: event '%s' says neither a day off (休, 放假, Holiday) nor a "
                            "working day (班, 上班, Workday)",
                            source, e->line, e->summary);
    char name[160];
    ics_name(e->summary, name, sizeof(name));
    for (int64_t day = first; day < end; day++) {
        int rc = add_day(d, day, kind == 1, name, source, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void copy_value(char *dst, size_t size, const char *line)
{
    const char *colon = strchr(line, ':');
    snprintf(dst, size, "%s", colon ? colon + 1 : "");
}

static bool prop(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';');
}

typedef struct ics_state {
    days_t *d;
    const char *source;
    bool in_event;
    vevent_t e;
} ics_state_t;

/* One unfolded line, begun on physical line lineno. */
static int ics_line(ics_state_t *st, const char *line, int lineno, cb_error_t *err)
{
    vevent_t *e = &st->e;
    if (strcmp(line, "BEGIN:VEVENT") == 0) {
        memset(e, 0, sizeof(*e));
        e->line = lineno;
        st->in_event = true;
    } else if (strcmp(line, "END:VEVENT") == 0 && st->in_event) {
        st->in_event = false;
        return ics_event(st->d, e, st->source, err);
    } else if (st->in_event) {
        if (prop(line, "DTSTART"))
            copy_value(e->start, sizeof(e->start), line);
        else if (prop(line, "DTEND"))
            copy_value(e->end, sizeof(e->end), line);
        else if (prop(line, "SUMMARY"))
            copy_value(e->summary, sizeof(e->summary), line);
        else if (prop(line, "DESCRIPTION"))
            copy_value(e->description, sizeof(e->description), line);
        else if (prop(line, "X-APPLE-SPECIAL-DAY"))
            copy_value(e->special, sizeof(e->special), line);
    } else if (prop(line, "X-WR-CALDESC") || (prop(line, "PRODID") && !st->d->version[0])) {
        copy_value(st->d->version, sizeof(st->d->version), line);
    }
    return 0;
}

static int from_ics(const char *text, size_t len, const char *source, days_t *d, cb_error_t *err)
{
    /* Unfold (RFC 5545 §3.1): a line starting with a space or tab continues
     * the one before. Errors give the physical line an event began on. */
    ics_state_t st = {.d = d, .source = source};
    d->version[0] = '\0';
    char line[1024];
    size_t used = 0;
    int lineno = 0, started = 0, rc = 0;
    const char *p = text, *end = text + len;
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = nl ? nl + 1 : end;
        if (n && p[n - 1] == '\r')
            n--;
        lineno++;
        bool cont = n > 0 && (p[0] == ' ' || p[0] == '\t');
        if (!cont) {
            line[used] = '\0';
            if (used > 0 && (rc = ics_line(&st, line, started, err)) != 0)
                break;
            used = 0;
            started = lineno;
        } else {
            p++;
            n--;
        }
        if (used + n >= sizeof(line))
            return cb_error_set(err, CB_ERR_INVALID, "calendar", "%s:%d: line too long", source,
                                lineno);
        memcpy(line + used, p, n);
        used += n;
        p = next;
    }
    line[used] = '\0';
    if (rc == 0 && used > 0)
        rc = ics_line(&st, line, started, err);
    if (rc == 0 && st.in_event)
        rc = cb_error_set(err, CB_ERR_INVALID, "calendar", "%s:%d: the event has no END:VEVENT",
                          source, st.e.line);
    return rc;
}

/* ---- JSON ---- */

static int json_range(days_t *d, const char *date, bool holiday, const char *name,
                      const char *source, const char *where, cb_error_t *err)
{
    char a[16] = "", b[16] = "";
    const char *dots = date ? strstr(date, "..") : NULL;
    if (date == NULL || strlen(date) > 24)
        return cb_error_set(err, CB_ERR_INVALID, where, "%s: %s: want a date YYYY-MM-DD", source,
                            where);
    snprintf(a, sizeof(a), "%.*s", dots ? (int)(dots - date) : (int)strlen(date), date);
    snprintf(b, sizeof(b), "%s", dots ? dots + 2 : date);
    int64_t first, last;
    cb_error_t e;
    if (cb_date_parse(a, &first, &e) != 0 || cb_date_parse(b, &last, &e) != 0 || last < first ||
        last - first > 60)
        return cb_error_set(err, CB_ERR_INVALID, where,
                            "%s: %s: '%s' is not a date or a range of up to 60 days "
                            "(YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)",
                            source, where, date);
    for (int64_t day = first; day <= last; day++) {
        int rc = add_day(d, day, holiday, name, source, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int from_list(days_t *d, json_t *list, const char *path, const char *source,
                     cb_error_t *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char where[64];
        snprintf(where, sizeof(where), "%s[%zu]", path, i);
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *name = json_string_value(json_object_get(v, "name"));
        if (!json_is_object(v) || type == NULL ||
            (strcmp(type, "holiday") != 0 && strcmp(type, "workday") != 0))
            return cb_error_set(err, CB_ERR_INVALID, where,
                                "%s: %s: want {\"date\": …, \"type\": \"holiday\" | \"workday\"}",
                                source, where);
        char dw[80];
        snprintf(dw, sizeof(dw), "%s.date", where);
        int rc = json_range(d, json_string_value(json_object_get(v, "date")),
                            strcmp(type, "holiday") == 0, name, source, dw, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* chinese-days: {"holidays": {"2026-01-01": "New Year's Day,元旦,1"}, "workdays": {…}}. */
static int from_map(days_t *d, json_t *map, bool holiday, const char *key, const char *source,
                    cb_error_t *err)
{
    const char *date;
    json_t *v;
    json_object_foreach(map, date, v)
    {
        char where[64], name[64] = "";
        snprintf(where, sizeof(where), "%s.%.20s", key, date);
        const char *s = json_string_value(v);
        if (s) {
            /* "English,中文,N": the Chinese name. */
            const char *c1 = strchr(s, ',');
            const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            if (c1 && c2)
                snprintf(name, sizeof(name), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
            else
                snprintf(name, sizeof(name), "%s", s);
        }
        int rc = json_range(d, date, holiday, name, source, where, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int from_json(const char *text, size_t len, const char *source, days_t *d, cb_error_t *err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL)
        return cb_error_set(err, CB_ERR_INVALID, "calendar", "%s:%d: not JSON: %s", source,
                            je.line, je.text);
    int rc;
    if (json_is_array(doc)) {
        rc = from_list(d, doc, "", source, err);
    } else if (json_is_array(json_object_get(doc, "days"))) {
        const char *v = json_string_value(json_object_get(doc, "version"));
        if (v)
            snprintf(d->version, sizeof(d->version), "%s", v);
        rc = from_list(d, json_object_get(doc, "days"), "days", source, err);
    } else if (json_is_object(json_object_get(doc, "holidays"))) {
        rc = from_map(d, json_object_get(doc, "holidays"), true, "holidays", source, err);
        if (rc == 0 && json_is_object(json_object_get(doc, "workdays")))
            rc = from_map(d, json_object_get(doc, "workdays"), false, "workdays", source, err);
    } else {
        rc = cb_error_set(err, CB_ERR_INVALID, "calendar",
                          "%s: want a list of {\"date\", \"type\", \"name\"}, an object with "
                          "\"days\", or chinese-days' {\"holidays\", \"workdays\"}",
                          source);
    }
    json_decref(doc);
    return rc;
}

/* ---- .cal ---- */

static int from_cal(const char *text, size_t len, const char *source, cb_cal_text_t **out,
                    size_t *n, cb_error_t *err)
{
    cb_calendar_t *scratch = cb_cal_new();
    if (scratch == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int year = 0;
    int rc = cb_cal_load_text(scratch, text, len, source, &year, err);
    cb_cal_destroy(&scratch);
    if (rc != 0)
        return rc;
    cb_cal_text_t *t = calloc(1, sizeof(*t));
    char *copy = malloc(len + 1);
    if (t == NULL || copy == NULL) {
        free(t);
        free(copy);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    t->year = year;
    t->text = copy;
    t->len = len;
    *out = t;
    *n = 1;
    return 0;
}

int cb_cal_convert(const char *text, size_t len, const char *source, cb_cal_text_t **out,
                   size_t *n, cb_error_t *err)
{
    *out = NULL;
    *n = 0;
    size_t skip = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        skip = 3; /* a byte-order mark */
    while (skip < len && (text[skip] == ' ' || text[skip] == '\t' || text[skip] == '\r' ||
                          text[skip] == '\n'))
        skip++;
    const char *t = text + skip;
    size_t l = len - skip;
    bool ics = l >= 15 && strncmp(t, "BEGIN:VCALENDAR", 15) == 0;
    bool json = l > 0 && (t[0] == '{' || t[0] == '[');
    if (!ics && !json)
        return from_cal(text, len, source, out, n, err);
    days_t d = {0};
    int rc = ics ? from_ics(t, l, source, &d, err) : from_json(t, l, source, &d, err);
    if (rc == 0) {
        /* The version names the file, and what the file calls itself. */
        char v[sizeof(d.version)];
        if (d.version[0])
            snprintf(v, sizeof(v), "%.100s (imported from %s)", d.version, source);
        else
            snprintf(v, sizeof(v), "imported from %s", source);
        snprintf(d.version, sizeof(d.version), "%s", v);
        rc = emit_years(&d, source, out, n, err);
    }
    free(d.v);
    return rc;
}

void cb_cal_texts_free(cb_cal_text_t *texts, size_t n)
{
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i].text);
    free(texts);
}
