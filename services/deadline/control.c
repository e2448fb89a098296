/*
 * control.c — what deadline answers on its control socket (common/control.c):
 * a calendar year loaded or corrected (recorded, open obligations recomputed),
 * and status.
 */
#include "deadline.h"
#include "cbtime.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *status_json(deadline_t *dl)
{
    cb_error_t e;
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    dl_counts_t c = {0};
    int64_t first = 0;
    char missing[256] = "[]", years[256];
    if (cb_store_begin(dl->d.store, false, &txn, &e) == 0) {
        cb_log_head(dl->d.log, txn, &head, &e);
        dl_counts_get(dl, txn, &c, &e);
        dl_timer_first(dl, txn, &first, &e);
        dl_missing_json(dl, txn, missing, sizeof(missing));
    }
    cb_store_abort(&txn);
    size_t used = (size_t)snprintf(years, sizeof(years), "[");
    for (int y = CB_CAL_MIN_YEAR; y <= CB_CAL_MAX_YEAR && used < sizeof(years); y++)
        if (cb_cal_has_year(dl->cal, y))
            used += (size_t)snprintf(years + used, sizeof(years) - used, "%s%d",
                                     used > 1 ? "," : "", y);
    if (used < sizeof(years))
        snprintf(years + used, sizeof(years) - used, "]");
    json_t *ups = cb_daemon_upstreams_json(&dl->d);
    char *upstreams = ups ? json_dumps(ups, JSON_COMPACT) : NULL;
    json_decref(ups);
    if (upstreams == NULL)
        return NULL;
    char next[40] = "";
    if (first)
        cb_time_format_cst(first, next, sizeof(next));
    /* Next year: by its notice, provisionally (statutory holidays), or weekdays. */
    cb_civil_t now;
    cb_time_to_cst(dl->now(), &now);
    int ny = now.year + 1;
    bool alarm = dl_next_year_unannounced(dl, dl->now()) != 0;
    const char *counted = cb_cal_has_year(dl->cal, ny)         ? "notice"
                          : cb_cal_is_provisional(dl->cal, ny) ? "statutory_holidays"
                                                               : "weekdays";
    char *s = NULL;
    if (asprintf(&s,
                 "{\"daemon\":\"deadline\",\"log_head\":%llu,\"upstreams\":%s,"
                 "\"obligations\":{\"open\":%llu,\"paused\":%llu,\"yellow\":%llu,\"red\":%llu,"
                 "\"met_on_time\":%llu,\"met_late\":%llu,\"cancelled\":%llu},"
                 "\"alerts_fired\":%llu,\"next_fire\":\"%s\",\"calendar_years\":%s,"
                 "\"calendar_missing\":%s,\"calendar_next_year\":{\"year\":%d,"
                 "\"counted_by\":\"%s\",\"provisional\":%s,\"alarm\":%s},"
                 "\"calendar_alarms\":%llu}",
                 (unsigned long long)head.seq, upstreams, (unsigned long long)c.open,
                 (unsigned long long)c.paused, (unsigned long long)c.yellow,
                 (unsigned long long)c.red, (unsigned long long)c.met_on_time,
                 (unsigned long long)c.met_late, (unsigned long long)c.cancelled,
                 (unsigned long long)c.fired, next, years, missing, ny, counted,
                 strcmp(counted, "notice") ? "true" : "false",
                 alarm ? "true" : "false",
                 (unsigned long long)dl->calendar_alarms) < 0)
        s = NULL;
    free(upstreams);
    return s;
}

static void refresh_metrics(cb_daemon_t *d, MDB_txn *txn, void *ctx)
{
    (void)d;
    deadline_t *dl = ctx;
    cb_error_t e;
    dl_counts_t c = {0};
    if (txn && dl_counts_get(dl, txn, &c, &e) == 0) {
        const uint64_t v[7] = {c.open, c.paused, c.yellow, c.red, c.met_on_time, c.met_late,
                               c.cancelled};
        for (size_t i = 0; i < 7; i++)
            cb_metric_set(dl->m_obligations[i], (double)v[i]);
    }
    cb_metric_set(dl->m_fired, (double)dl->fired_total);
    cb_metric_set(dl->m_late, (double)dl->late_total);
    cb_metric_set(dl->m_cal_alarms, (double)dl->calendar_alarms);
    cb_metric_set(dl->m_next_year_missing, dl_next_year_unannounced(dl, dl->now()) ? 1 : 0);
}

void dl_metrics_init(deadline_t *dl)
{
    static const char *const states[7] = {"open", "paused", "yellow", "red", "met_on_time",
                                          "met_late", "cancelled"};
    cb_metrics_t *m = dl->d.metrics;
    for (size_t i = 0; i < 7; i++) {
        char name[96];
        snprintf(name, sizeof(name), "casebus_deadline_obligations{state=\"%s\"}", states[i]);
        dl->m_obligations[i] = cb_metrics_gauge(m, name, "Time limits by state");
    }
    dl->m_lateness = cb_metrics_histogram(
        m, "casebus_deadline_alert_lateness_seconds",
        "Seconds between an alert's due instant and its firing", cb_metrics_latency_buckets,
        CB_METRICS_LATENCY_BUCKETS);
    dl->m_fired = cb_metrics_counter(m, "casebus_deadline_alerts_fired_total",
                                     "Warnings, breaches and escalations fired since start");
    dl->m_late = cb_metrics_counter(m, "casebus_deadline_alerts_late_total",
                                    "Alerts fired later than late_after_ms since start");
    dl->m_cal_alarms = cb_metrics_counter(m, "casebus_deadline_calendar_alarms_total",
                                          "calendar_missing alarms raised since start");
    dl->m_next_year_missing = cb_metrics_gauge(
        m, "casebus_deadline_calendar_next_year_missing",
        "1 from 1 November while next year's State Council holiday notice is not loaded");
    dl->d.refresh_metrics = refresh_metrics;
}

static int handle(void *ctx, cb_control_req_t *cr, cb_error_t *err)
{
    deadline_t *dl = ctx;
    const Casebus__V1__ControlRequest *req = cr->req;
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS) {
        cr->status_json = status_json(dl);
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    if (req->kind_case != CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CALENDAR)
        return cb_error_set(err, CB_ERR_INVALID, "kind",
                            "deadline answers status and calendar imports only");
    const Casebus__V1__ImportCalendar *ic = req->import_calendar;
    MDB_txn *txn;
    int rc = cb_group_txn(dl->d.group, &txn, err);
    if (rc != 0)
        return rc;
    int year = 0;
    uint64_t recomputed = 0;
    const char *source = ic->source_name && *ic->source_name ? ic->source_name : "calendar";
    rc = dl_calendar_import(dl, txn, (const char *)ic->text.data, ic->text.len, source, &year,
                            &recomputed, err);
    /* A refused file is refused before anything is written. */
    cr->wrote = rc == 0 || rc != CB_ERR_INVALID;
    if (rc != 0)
        return rc;
    cr->reply.year = year;
    cr->reply.count = recomputed;
    snprintf(cr->message, sizeof(cr->message),
             "calendar %d loaded (%s): %llu open obligations recomputed", year,
             cb_cal_version(dl->cal, year), (unsigned long long)recomputed);
    return 0;
}

int dl_control_start(deadline_t *dl, const char *endpoint, cb_error_t *err)
{
    return cb_control_start(&dl->control, &dl->d, endpoint, handle, dl, err);
}

void dl_control_stop(deadline_t *dl)
{
    cb_control_stop(&dl->control);
}
