/*
 * calwatch.c — the working-day calendar as deadline watches it: a calendar
 * year imported or corrected (every open obligation it moves is recomputed),
 * and the alarm when next year's State Council notice is not loaded.
 */
#include "deadline.h"
#include "dlint.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct recompute_ctx {
    deadline_t *dl;
    MDB_txn *txn;
    uint64_t count;
    const char *why;
    cb_error_t *err;
} recompute_ctx_t;

/* The alarm that a year has no notice: logged and an event addressed to the
 * command platform (the enforcement bureau) and the leading-group office. */
static int raise_calendar_missing(deadline_t *dl, MDB_txn *txn, int year, uint64_t count,
                                  const char *reason, cb_error_t *err)
{
    bool provisional = cb_cal_is_provisional(dl->cal, year);
    char action[96];
    snprintf(action, sizeof(action), "casebus calendar import %d.cal (or .ics, .json)", year);
    log_warnx("calendar_missing year=%d counted=%s affected=%llu reason=\"%s\" action=\"%s\"", year,
              provisional ? "statutory_holidays" : "weekdays", (unsigned long long)count, reason,
              action);
    Casebus__V1__OrgRef refs[2], *ptrs[2];
    size_t n = 0;
    static const int kinds[2] = {CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU,
                                 CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE};
    for (size_t k = 0; k < 2; k++) {
        const Casebus__V1__Organisation *o = dl_org_by_kind(dl, kinds[k]);
        if (o) {
            cb_org_ref_fill(&refs[n], o);
            ptrs[n] = &refs[n];
            n++;
        }
    }
    Casebus__V1__CalendarMissing cm = CASEBUS__V1__CALENDAR_MISSING__INIT;
    cm.year = year;
    cm.affected_obligations = count;
    cm.provisional = provisional;
    cm.reason = (char *)reason;
    cm.notify = ptrs;
    cm.n_notify = n;
    cm.action = action;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(CALENDAR_MISSING);
    env.calendar_missing = &cm;
    dl->calendar_alarms++;
    return dl_emit(dl, txn, &env, NULL, err);
}

/* A due instant counted without a year's notice: the alarm, once per year
 * until that year is loaded. */
int dl_calendar_missing(deadline_t *dl, MDB_txn *txn, int year, cb_error_t *err)
{
    uint64_t count;
    int rc = dl_missing_add(dl, txn, year, &count, err);
    if (rc != 0 || count != 1)
        return rc;
    return raise_calendar_missing(dl, txn, year, count, "a due instant was counted with it", err);
}

int dl_next_year_unannounced(const deadline_t *dl, int64_t now_ms)
{
    cb_civil_t c;
    cb_time_to_cst(now_ms, &c);
    /* The State Council publishes next year's holidays in the autumn: from
     * 1 November its absence is news. */
    return c.month >= 11 && !cb_cal_has_year(dl->cal, c.year + 1) ? c.year + 1 : 0;
}

int dl_watch_calendar(deadline_t *dl, MDB_txn *txn, int64_t now_ms, cb_error_t *err)
{
    int next = dl_next_year_unannounced(dl, now_ms);
    if (next == 0)
        return 0;
    int64_t today = cb_cst_day(now_ms), last = 0;
    int rc = dl_meta_i64(dl, txn, "calwatch", &last, err);
    if (rc != 0 || last >= today)
        return rc;
    if ((rc = dl_meta_i64_put(dl, txn, "calwatch", today, err)) != 0)
        return rc;
    uint64_t count = dl_missing_count(dl, txn, next);
    return raise_calendar_missing(
        dl, txn, next, count, "next year's notice is not loaded (checked daily from 1 November)",
        err);
}

static int recompute_one(void *ctx, const char *id)
{
    recompute_ctx_t *c = ctx;
    deadline_t *dl = c->dl;
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = dl_load(dl, c->txn, id, &o, &msg, c->err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    /* A paused clock carries time, not a date: it is counted when it resumes.
     * A clock rebased before anchors were kept has nothing to count from. */
    if (o.status != DL_OPEN ||
        ((o.flags & DL_F_REBASED) && !(o.flags & DL_F_DATE) && o.anchor_ms == 0))
        goto out;
    before = o;
    int64_t due = dl_recount(dl->cal, &o, NULL);
    int64_t previous = o.due_ms;
    if ((rc = dl_calyears_put(dl, c->txn, o.start_ms, o.due_ms, id, true, c->err)) != 0)
        goto out;
    o.due_ms = due;
    if (due > previous && due > dl->now()) {
        /* No longer overdue: red and 督办 may stand again if it passes anew. */
        o.fired &= (uint8_t)~DL_RED_BIT;
        o.escalations = 0;
        if (o.level == L(RED))
            o.level = o.fired ? L(YELLOW) : 0;
    }
    if ((rc = dl_calyears_put(dl, c->txn, o.start_ms, o.due_ms, id, false, c->err)) != 0 ||
        (rc = dl_save(dl, c->txn, &before, &o, msg, 0, c->err)) != 0)
        goto out;
    if (due != previous) {
        c->count++;
        rc = dl_change_event(dl, c->txn, msg, C(RECOMPUTED), NULL, c->why, previous, c->err);
    }
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

int dl_calendar_import(deadline_t *dl, MDB_txn *txn, const char *text, size_t len,
                       const char *source, int *year, uint64_t *recomputed, cb_error_t *err)
{
    /* Validate on a scratch calendar first: a refused file changes nothing. */
    cb_calendar_t *scratch = cb_cal_new();
    if (scratch == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = cb_cal_load_text(scratch, text, len, source, year, err);
    cb_cal_destroy(&scratch);
    if (rc != 0)
        return rc;
    if ((rc = dl_calendar_put(dl, txn, *year, text, len, err)) != 0 ||
        (rc = cb_cal_load_text(dl->cal, text, len, source, year, err)) != 0 ||
        (rc = dl_missing_clear(dl, txn, *year, err)) != 0)
        return rc;
    char why[300];
    snprintf(why, sizeof(why), "the calendar of %d was loaded: %s", *year,
             cb_cal_version(dl->cal, *year));
    recompute_ctx_t c = {dl, txn, 0, why, err};
    if ((rc = dl_calyears_each(dl, txn, *year, recompute_one, &c, err)) != 0)
        return rc;
    /* A notice that changes the December before moves clocks of that year too
     * (one crossing both is recomputed twice, the second time to no change). */
    if (cb_cal_adjusts_previous(dl->cal, *year) &&
        (rc = dl_calyears_each(dl, txn, *year - 1, recompute_one, &c, err)) != 0)
        return rc;
    *recomputed = c.count;
    Casebus__V1__CalendarLoaded cl = CASEBUS__V1__CALENDAR_LOADED__INIT;
    cl.year = *year;
    cl.version = (char *)cb_cal_version(dl->cal, *year);
    cl.recomputed_obligations = c.count;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(CALENDAR_LOADED);
    env.calendar_loaded = &cl;
    log_info("calendar_loaded year=%d recomputed=%llu source=%s", *year,
             (unsigned long long)c.count, source);
    return dl_emit(dl, txn, &env, NULL, err);
}
