/*
 * handlers.c — what deadline does with each event it pulls, and with its timer.
 * Never touches a socket. Which event opens and which closes each rule's
 * obligation (rules.c holds the lengths and warning points):
 *
 *   rule                   opened by (start)                       met by
 *   transfer / _emergency  router TransferRequired (discovery)     router TransferRouted
 *   sign                   router TransferRouted (routing)         the receiver's first step
 *   assistance             intake AssistanceRequested (letter)     intake AssistanceAnswered
 *   approval_notice        intake ApprovalRecorded (approval)      the same record (on time or late)
 *   decision_feedback      intake DecisionRecorded w/ feedback_to  intake FeedbackGiven
 *   major_decision_filing  intake DecisionRecorded, major          intake DecisionFiled
 *   crime_decide/handover/police_answer/reconsideration: intake CrimeReferralStep, step by step
 *
 * A transfer returned by its receiver reopens the sender's transfer obligation
 * with the clock it had left; a dispute pauses it until the judicial bureau's
 * decision re-routes (met) or concludes it (cancelled). A cancelled case
 * cancels its open obligations. Extensions: requested by the responsible party
 * before the limit, approved by a supervisor the rule names.
 */
#include "deadline.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALV_MAX 400
#define U(x) CASEBUS__V1__TIME_UNIT__TIME_UNIT_##x
#define L(x) CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_##x
#define S(x) CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_##x
#define C(x) CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_##x
#define B(x) CASEBUS__V1__ENVELOPE__BODY_##x

#define ID_MAX (CB_CASE_ID_MAX + 64)

/* ---- organisations (the registry replica) ---- */

static const Casebus__V1__Organisation *org_by_id(const deadline_t *dl, const char *id)
{
    if (dl->orgs == NULL || id == NULL)
        return NULL;
    for (size_t i = 0; i < dl->orgs->n_orgs; i++)
        if (strcmp(dl->orgs->orgs[i]->org_id, id) == 0)
            return dl->orgs->orgs[i];
    return NULL;
}

static const Casebus__V1__Organisation *org_by_kind(const deadline_t *dl, int kind)
{
    if (dl->orgs == NULL)
        return NULL;
    for (size_t i = 0; i < dl->orgs->n_orgs; i++)
        if ((int)dl->orgs->orgs[i]->kind == kind)
            return dl->orgs->orgs[i];
    return NULL;
}

/* An OrgRef for id: the registry's when known, else the one an event carried. */
static const Casebus__V1__OrgRef *ref_for(const deadline_t *dl, const char *id,
                                          const Casebus__V1__OrgRef *carried,
                                          Casebus__V1__OrgRef *buf)
{
    const Casebus__V1__Organisation *o = org_by_id(dl, id);
    if (o == NULL)
        return carried;
    cb_org_ref_fill(buf, o);
    return buf;
}

/* ---- counts ---- */

static void contribute(const dl_ob_t *o, dl_counts_t *c, int64_t sign)
{
    if (o == NULL)
        return;
    bool standing = o->status == DL_OPEN || o->status == DL_PAUSED;
    c->open += (uint64_t)(sign * (o->status == DL_OPEN));
    c->paused += (uint64_t)(sign * (o->status == DL_PAUSED));
    c->yellow += (uint64_t)(sign * (standing && o->level == L(YELLOW)));
    c->red += (uint64_t)(sign * (standing && o->level == L(RED)));
    c->met_on_time += (uint64_t)(sign * (o->status == DL_MET && !(o->flags & DL_F_MET_LATE)));
    c->met_late += (uint64_t)(sign * (o->status == DL_MET && (o->flags & DL_F_MET_LATE)));
    c->cancelled += (uint64_t)(sign * (o->status == DL_CANCELLED));
}

static int counts_move(deadline_t *dl, MDB_txn *txn, const dl_ob_t *before, const dl_ob_t *after,
                       uint64_t fired, cb_error_t *err)
{
    dl_counts_t c;
    int rc = dl_counts_get(dl, txn, &c, err);
    if (rc != 0)
        return rc;
    contribute(before, &c, -1);
    contribute(after, &c, 1);
    c.fired += fired;
    return dl_counts_put(dl, txn, &c, err);
}

/* ---- events out ---- */

static int emit(deadline_t *dl, MDB_txn *txn, Casebus__V1__Envelope *env,
                const Casebus__V1__Obligation *msg, cb_error_t *err)
{
    env->case_id = msg && msg->case_ && msg->case_->case_id ? msg->case_->case_id : "";
    return cb_log_append(dl->d.log, txn, env, err);
}

/* Replaces an unpacked message's string (protobuf-c frees it with the message). */
static int set_str(char **field, const char *value, cb_error_t *err)
{
    char *copy = strdup(value ? value : "");
    if (copy == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
    return 0;
}

/* The calendar a due instant was counted with, for the record: each year the
 * period crosses, by its notice, provisionally, or by weekends only. Returns
 * true when any of those years has no official calendar. */
static bool calendar_version(const deadline_t *dl, const dl_ob_t *o, char *buf, size_t size)
{
    if (o->unit == U(HOURS)) {
        snprintf(buf, size, "clock hours (no calendar needed)");
        return false;
    }
    cb_civil_t a, b;
    cb_time_to_cst(o->start_ms, &a);
    cb_time_to_cst(o->due_ms - 1, &b);
    bool provisional = false;
    size_t used = 0;
    buf[0] = '\0';
    for (int y = a.year; y <= b.year && used < size; y++) {
        const char *v = cb_cal_has_year(dl->cal, y)         ? cb_cal_version(dl->cal, y)
                        : cb_cal_is_provisional(dl->cal, y) ? "PROVISIONAL: statutory holidays "
                                                              "only, no State Council notice "
                                                              "loaded"
                                                            : "PROVISIONAL: weekdays only, no "
                                                              "calendar loaded";
        provisional = provisional || !cb_cal_has_year(dl->cal, y);
        int n = snprintf(buf + used, size - used, "%s%d: %s", used ? "; " : "", y, v);
        used = n < 0 ? size : used + (size_t)n;
    }
    return provisional;
}

/* Writes the clock's current figures into msg (an unpacked or stack message:
 * strings go through set_str only when owned). */
static int refresh_msg(const deadline_t *dl, const dl_ob_t *o, Casebus__V1__Obligation *msg,
                       bool owned, char local[40], char calv[CALV_MAX], cb_error_t *err)
{
    msg->due_at_ms = o->due_ms;
    msg->unit = o->unit;
    msg->length = o->length + o->ext_total;
    msg->started_at_ms = o->start_ms;
    msg->calendar_provisional = calendar_version(dl, o, calv, CALV_MAX);
    cb_time_format_cst(o->due_ms, local, 40);
    if (owned) {
        int rc = set_str(&msg->due_local, local, err);
        return rc ? rc : set_str(&msg->calendar_version, calv, err);
    }
    msg->due_local = local;
    msg->calendar_version = calv;
    return 0;
}

static int change_event(deadline_t *dl, MDB_txn *txn, Casebus__V1__Obligation *msg, int change,
                        const Casebus__V1__OrgRef *by, const char *reason, int64_t previous_due,
                        cb_error_t *err)
{
    Casebus__V1__ObligationChanged oc = CASEBUS__V1__OBLIGATION_CHANGED__INIT;
    oc.obligation = msg;
    oc.change = change;
    oc.by = (Casebus__V1__OrgRef *)by;
    oc.reason = (char *)(reason ? reason : "");
    oc.previous_due_ms = previous_due;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(OBLIGATION_CHANGED);
    env.obligation_changed = &oc;
    return emit(dl, txn, &env, msg, err);
}

/* The alarm that a year has no notice: logged and an event addressed to the
 * command platform (the enforcement bureau) and the leading-group office. */
static int raise_calendar_missing(deadline_t *dl, MDB_txn *txn, int year, uint64_t count,
                                  const char *reason, cb_error_t *err)
{
    bool provisional = cb_cal_is_provisional(dl->cal, year);
    char action[96];
    snprintf(action, sizeof(action), "casebus calendar import %d.cal (or .ics, .json)", year);
    log_warnx("calendar_missing year=%d counted=%s affected=%llu reason=\"%s\" action=\"%s\"",
              year, provisional ? "statutory_holidays" : "weekdays", (unsigned long long)count,
              reason, action);
    Casebus__V1__OrgRef refs[2], *ptrs[2];
    size_t n = 0;
    static const int kinds[2] = {CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU,
                                 CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE};
    for (size_t k = 0; k < 2; k++) {
        const Casebus__V1__Organisation *o = org_by_kind(dl, kinds[k]);
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
    return emit(dl, txn, &env, NULL, err);
}

/* A due instant counted without a year's notice: the alarm, once per year
 * until that year is loaded. */
static int calendar_missing(deadline_t *dl, MDB_txn *txn, int year, cb_error_t *err)
{
    uint64_t count;
    int rc = dl_missing_add(dl, txn, year, &count, err);
    if (rc != 0 || count != 1)
        return rc;
    return raise_calendar_missing(dl, txn, year, count, "a due instant was counted with it",
                                  err);
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
    return raise_calendar_missing(dl, txn, next, count,
                                  "next year's notice is not loaded (checked daily from 1 November)",
                                  err);
}

/* ---- the timer index ---- */

/* Moves o's timer key from where it is to its next firing instant. */
static int retime(deadline_t *dl, MDB_txn *txn, dl_ob_t *o, const char *id, cb_error_t *err)
{
    int rc;
    int64_t next = dl_next_fire(dl->cal, o);
    if (next == o->next_fire_ms)
        return 0;
    if (o->next_fire_ms && (rc = dl_timer_del(dl, txn, o->next_fire_ms, id, err)) != 0)
        return rc;
    o->next_fire_ms = next;
    if (next) {
        if ((rc = dl_timer_put(dl, txn, next, id, err)) != 0)
            return rc;
        dl_timer_want(dl, next);
    }
    return 0;
}

static bool counted(const dl_ob_t *o)
{
    return o->unit != U(HOURS);
}

/* ---- opening ---- */

typedef struct open_args {
    dl_rule_id_t rule;
    const char *id;
    const Casebus__V1__CaseSummary *cs;
    const char *case_id;              /* when cs is not at hand */
    const char *transfer_id;
    const Casebus__V1__OrgRef *responsible;
    int64_t start_ms;
    int64_t due_ms;                   /* set: a fixed due instant ("N days before") */
    bool dated;                       /* a date rule: due by date_day */
    int64_t date_day;                 /* CST day */
} open_args_t;

static int open_obligation(deadline_t *dl, MDB_txn *txn, const open_args_t *a, cb_error_t *err)
{
    const dl_rule_t *rule = &dl->rules.rule[a->rule];
    if (!rule->enabled)
        return 0;
    dl_ob_t existing;
    cb_error_t e;
    int rc = dl_ob_get(dl, txn, a->id, &existing, NULL, &e);
    if (rc == 0) {
        log_debug("obligation_exists obligation=%s", a->id); /* openers may repeat */
        return 0;
    }
    if (rc != CB_ERR_NOT_FOUND)
        return cb_error_set(err, e.code, e.field, "%s", e.message);

    dl_ob_t o;
    memset(&o, 0, sizeof(o));
    o.status = DL_OPEN;
    o.unit = (uint8_t)rule->unit;
    o.length = rule->length;
    o.nwarn = rule->nwarn;
    memcpy(o.warn, rule->warn, sizeof(o.warn));
    o.escalate = rule->escalate;
    o.esc_grace_ms = rule->esc_grace_ms;
    o.esc_every_ms = rule->esc_every_ms;
    o.start_ms = a->start_ms;
    int missing = 0;
    if (!rule->move)
        o.flags |= DL_F_STAY;
    if (a->dated) {
        o.flags |= DL_F_DATE | DL_F_REBASED;
        o.anchor_ms = cb_cst_day_start_ms(a->date_day);
        o.due_ms = dl_date_due(dl->cal, a->date_day, rule->move, &missing);
    } else if (a->due_ms) {
        o.due_ms = a->due_ms;
        o.flags |= DL_F_REBASED; /* not a count from the start: recomputing leaves it */
    } else {
        o.due_ms = dl_due(dl->cal, o.unit, o.length, o.start_ms, rule->move, &missing);
    }
    dl_skip_points_before_start(dl->cal, &o);

    Casebus__V1__CaseSummary stub = CASEBUS__V1__CASE_SUMMARY__INIT, *stored = NULL;
    const Casebus__V1__CaseSummary *cs = a->cs;
    if (cs == NULL && a->case_id && *a->case_id) {
        stored = dl_case_get(dl, txn, a->case_id);
        stub.case_id = (char *)a->case_id;
        cs = stored ? stored : &stub;
    }
    Casebus__V1__OrgRef sup[DL_MAX_ESC_KINDS], *sup_ptrs[DL_MAX_ESC_KINDS];
    size_t nsup = 0;
    for (unsigned k = 0; k < rule->nesc_kinds; k++) {
        const Casebus__V1__Organisation *s = org_by_kind(dl, rule->esc_kinds[k]);
        if (s) {
            cb_org_ref_fill(&sup[nsup], s);
            sup_ptrs[nsup] = &sup[nsup];
            nsup++;
        }
    }
    char local[40], calv[CALV_MAX];
    Casebus__V1__Obligation msg = CASEBUS__V1__OBLIGATION__INIT;
    msg.obligation_id = (char *)a->id;
    msg.rule_id = (char *)dl_rule_name(a->rule);
    msg.rule_title = (char *)rule->title;
    msg.source_doc = (char *)rule->source;
    msg.case_ = (Casebus__V1__CaseSummary *)cs;
    msg.transfer_id = (char *)(a->transfer_id ? a->transfer_id : "");
    msg.responsible = (Casebus__V1__OrgRef *)a->responsible;
    msg.supervisors = sup_ptrs;
    msg.n_supervisors = nsup;
    refresh_msg(dl, &o, &msg, false, local, calv, err);

    if (missing && (rc = calendar_missing(dl, txn, missing, err)) != 0)
        goto out;
    if ((rc = retime(dl, txn, &o, a->id, err)) != 0)
        goto out;
    if (counted(&o) && (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, a->id, false, err)))
        goto out;
    if (cs && cs->case_id && *cs->case_id &&
        (rc = dl_bycase_put(dl, txn, cs->case_id, a->id, err)) != 0)
        goto out;
    if ((rc = dl_ob_put(dl, txn, &o, &msg, err)) != 0 ||
        (rc = counts_move(dl, txn, NULL, &o, 0, err)) != 0)
        goto out;
    Casebus__V1__ObligationOpened oo = CASEBUS__V1__OBLIGATION_OPENED__INIT;
    oo.obligation = &msg;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(OBLIGATION_OPENED);
    env.obligation_opened = &oo;
    rc = emit(dl, txn, &env, &msg, err);
    log_debug("obligation_opened obligation=%s rule=%s due=%s", a->id, msg.rule_id, local);
out:
    if (stored)
        casebus__v1__case_summary__free_unpacked(stored, NULL);
    return rc;
}

/* ---- changing one obligation ---- */

/* Loads obligation id for a change. Returns 1 when absent (nothing to do). */
static int load(deadline_t *dl, MDB_txn *txn, const char *id, dl_ob_t *o,
                Casebus__V1__Obligation **msg, cb_error_t *err)
{
    cb_error_t e;
    int rc = dl_ob_get(dl, txn, id, o, msg, &e);
    if (rc == CB_ERR_NOT_FOUND)
        return 1;
    if (rc != 0)
        return cb_error_set(err, e.code, e.field, "%s", e.message);
    return 0;
}

static int save(deadline_t *dl, MDB_txn *txn, const dl_ob_t *before, dl_ob_t *o,
                Casebus__V1__Obligation *msg, uint64_t fired, cb_error_t *err)
{
    int rc;
    char local[40], calv[CALV_MAX];
    if ((rc = refresh_msg(dl, o, msg, true, local, calv, err)) != 0 ||
        (rc = retime(dl, txn, o, msg->obligation_id, err)) != 0 ||
        (rc = dl_ob_put(dl, txn, o, msg, err)) != 0)
        return rc;
    return counts_move(dl, txn, before, o, fired, err);
}

/* Ends an open or paused obligation: met (at met_ms) or cancelled. */
static int close_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int status,
                            int64_t met_ms, const cb_bus_event_t *stop,
                            const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (o.status != DL_OPEN && o.status != DL_PAUSED)
        goto out; /* already ended: a repeated answer changes nothing */
    before = o;
    bool on_time;
    int64_t late_by;
    if (o.status == DL_OPEN) {
        on_time = met_ms <= o.due_ms;
        late_by = on_time ? 0 : met_ms - o.due_ms;
        o.remaining_ms = dl_clock_left(dl->cal, &o, met_ms); /* kept for a reopening */
    } else {
        on_time = o.remaining_ms > 0;
        late_by = on_time ? 0 : -o.remaining_ms;
    }
    if (counted(&o) && before.status == DL_OPEN &&
        (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, true, err)) != 0)
        goto out;
    o.status = (uint8_t)status;
    if (status == DL_MET && !on_time)
        o.flags |= DL_F_MET_LATE;
    else
        o.flags &= (uint8_t)~DL_F_MET_LATE;
    if ((rc = save(dl, txn, &before, &o, msg, 0, err)) != 0)
        goto out;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    if (status == DL_MET) {
        Casebus__V1__ObligationMet om = CASEBUS__V1__OBLIGATION_MET__INIT;
        om.obligation = msg;
        om.met_at_ms = met_ms;
        om.on_time = on_time;
        om.late_by_ms = late_by;
        om.stop_seq = stop ? stop->seq : 0;
        om.stop_producer = (char *)(stop ? stop->producer : "");
        env.body_case = B(OBLIGATION_MET);
        env.obligation_met = &om;
        rc = emit(dl, txn, &env, msg, err);
        log_debug("obligation_met obligation=%s on_time=%d", id, on_time);
    } else {
        rc = change_event(dl, txn, msg, C(CANCELLED), by, reason, 0, err);
    }
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* The rule's unit in words, for reasons people read. */
static const char *unit_words(const dl_ob_t *o)
{
    return o->unit == U(HOURS) ? "hours" : o->unit == U(DAYS) ? "days" : "working days";
}

static int64_t used_ms(const deadline_t *dl, const dl_ob_t *o, int64_t now_ms)
{
    if (o->unit == U(WORKING_DAYS))
        return cb_cal_working_ms(dl->cal, o->start_ms, now_ms, NULL);
    return now_ms - o->start_ms;
}

/* Pauses an open clock (a dispute before the judicial bureau). */
static int pause_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms,
                            const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (o.status != DL_OPEN)
        goto out;
    before = o;
    o.remaining_ms = dl_clock_left(dl->cal, &o, now_ms);
    msg->used_ms = used_ms(dl, &o, now_ms);
    if (counted(&o) && (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, true, err)) != 0)
        goto out;
    o.status = DL_PAUSED;
    o.flags |= DL_F_REBASED;
    if ((rc = save(dl, txn, &before, &o, msg, 0, err)) == 0)
        rc = change_event(dl, txn, msg, C(PAUSED), by, reason, 0, err);
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* Restarts a paused clock, or reopens a met one, with the time it had left. */
static int resume_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms,
                             bool reopen, const Casebus__V1__OrgRef *by, const char *reason,
                             cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (o.status != (reopen ? DL_MET : DL_PAUSED))
        goto out;
    before = o;
    int64_t previous = o.due_ms;
    o.due_ms = dl_clock_resume(dl->cal, &o, now_ms);
    o.anchor_ms = now_ms;
    o.ext_at_anchor = o.ext_total;
    o.status = DL_OPEN;
    o.flags = (uint8_t)((o.flags | DL_F_REBASED) & ~DL_F_MET_LATE);
    if (counted(&o) && (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, false, err)) != 0)
        goto out;
    if ((rc = save(dl, txn, &before, &o, msg, 0, err)) == 0)
        rc = change_event(dl, txn, msg, reopen ? C(REOPENED) : C(RESUMED), by, reason, previous,
                          err);
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* ---- firing ---- */

/* ---- 督办 orders ---- */

#define ANSWER_PREFIX "answer:"
#define MAX_ORDERS 64

/* The order an escalation of obligation id is: while the last order on it is
 * unanswered, the same order restated; otherwise a new one, whose answer is an
 * obligation of its own (supervision_answer). An escalation of that answer
 * restates the order it answers. sid gets the order's id, *answer_due when its
 * answer is due (0 when the rule is off). */
static int supervision_order(deadline_t *dl, MDB_txn *txn, const dl_ob_t *o,
                             const Casebus__V1__Obligation *msg, const char *id, int64_t now_ms,
                             char *sid, size_t size, int64_t *answer_due, bool *open_answer,
                             cb_error_t *err)
{
    *answer_due = 0;
    *open_answer = false;
    if (strcmp(msg->rule_id ? msg->rule_id : "", dl_rule_name(DL_RULE_SUPERVISION_ANSWER)) == 0 &&
        strncmp(id, ANSWER_PREFIX, strlen(ANSWER_PREFIX)) == 0) {
        snprintf(sid, size, "%s", id + strlen(ANSWER_PREFIX));
        *answer_due = o->due_ms;
        return 0;
    }
    char key[ID_MAX + 32];
    uint32_t n = 0;
    dl_ob_t last = {0};
    for (uint32_t k = 1; k <= MAX_ORDERS; k++) {
        snprintf(key, sizeof(key), ANSWER_PREFIX "SV-%s-%u", id, k);
        dl_ob_t b;
        int rc = load(dl, txn, key, &b, NULL, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break;
        n = k;
        last = b;
    }
    if (n > 0 && (last.status == DL_OPEN || last.status == DL_PAUSED || n == MAX_ORDERS)) {
        snprintf(sid, size, "SV-%s-%u", id, n); /* unanswered: the same order */
        *answer_due = last.due_ms;
        return 0;
    }
    snprintf(sid, size, "SV-%s-%u", id, n + 1);
    const dl_rule_t *rule = &dl->rules.rule[DL_RULE_SUPERVISION_ANSWER];
    if (!rule->enabled)
        return 0;
    int missing_year;
    *answer_due = dl_due(dl->cal, rule->unit, rule->length, now_ms, rule->move, &missing_year);
    *open_answer = true;
    return 0;
}

/* Opens the answer to a new order sid (after the order itself is recorded). */
static int open_answer_obligation(deadline_t *dl, MDB_txn *txn, const char *sid,
                                  const Casebus__V1__Obligation *msg, int64_t now_ms,
                                  cb_error_t *err)
{
    char key[ID_MAX + 40];
    snprintf(key, sizeof(key), ANSWER_PREFIX "%s", sid);
    open_args_t a = {.rule = DL_RULE_SUPERVISION_ANSWER,
                     .id = key,
                     .cs = msg->case_,
                     .transfer_id = msg->transfer_id,
                     .responsible = msg->responsible,
                     .start_ms = now_ms};
    return open_obligation(dl, txn, &a, err);
}

int dl_fire(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, int64_t now_ms,
            cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? dl_timer_del(dl, txn, at_ms, id, err) : rc;
    if (o.next_fire_ms != at_ms) {
        /* A key the obligation no longer owns (it can only be left by a crash
         * of an older version): drop it, nothing fires twice. */
        rc = dl_timer_del(dl, txn, at_ms, id, err);
        goto out;
    }
    before = o;
    dl_alert_t a;
    uint64_t fired = 0;
    Casebus__V1__OrgRef notify_buf[1 + DL_MAX_ESC_KINDS];
    Casebus__V1__OrgRef *notify[1 + DL_MAX_ESC_KINDS];
    char sid[ID_MAX + 32];
    bool open_answer = false;
    while (rc == 0 && dl_take_due(dl->cal, &o, now_ms, &a)) {
        Casebus__V1__AlertInfo ai = CASEBUS__V1__ALERT_INFO__INIT;
        ai.level = a.level;
        ai.point = a.point;
        ai.fire_at_ms = a.fire_at_ms;
        ai.remaining_ms = o.due_ms - now_ms;
        ai.late_by_ms = now_ms - a.fire_at_ms;
        ai.late = ai.late_by_ms > dl->late_after_ms;
        cb_metric_observe(dl->m_lateness, ai.late_by_ms > 0 ? (double)ai.late_by_ms / 1000.0 : 0);
        ai.repeat = a.repeat;
        /* Yellow: the responsible party; red: it and the supervisors; 督办: both. */
        size_t n = 0;
        if (msg->responsible)
            notify[n++] = msg->responsible;
        if (a.level != L(YELLOW))
            for (size_t i = 0; i < msg->n_supervisors && n < 1 + DL_MAX_ESC_KINDS; i++)
                notify[n++] = msg->supervisors[i];
        (void)notify_buf;
        ai.notify = notify;
        ai.n_notify = n;
        char local[40];
        msg->due_at_ms = o.due_ms;
        cb_time_format_cst(o.due_ms, local, sizeof(local));
        if ((rc = set_str(&msg->due_local, local, err)) != 0)
            break;
        Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
        Casebus__V1__DeadlineWarning dw = CASEBUS__V1__DEADLINE_WARNING__INIT;
        Casebus__V1__DeadlineBreached db = CASEBUS__V1__DEADLINE_BREACHED__INIT;
        Casebus__V1__Escalated es = CASEBUS__V1__ESCALATED__INIT;
        if (a.level == L(YELLOW)) {
            dw.obligation = msg;
            dw.alert = &ai;
            env.body_case = B(DEADLINE_WARNING);
            env.deadline_warning = &dw;
        } else if (a.level == L(RED)) {
            db.obligation = msg;
            db.alert = &ai;
            env.body_case = B(DEADLINE_BREACHED);
            env.deadline_breached = &db;
        } else {
            es.obligation = msg;
            es.alert = &ai;
            if ((rc = supervision_order(dl, txn, &o, msg, id, now_ms, sid, sizeof(sid),
                                        &es.answer_due_ms, &open_answer, err)) != 0)
                break;
            es.supervision_id = sid;
            env.body_case = B(ESCALATED);
            env.escalated = &es;
        }
        rc = emit(dl, txn, &env, msg, err);
        if (rc == 0 && open_answer) {
            rc = open_answer_obligation(dl, txn, sid, msg, now_ms, err);
            open_answer = false;
        }
        fired++;
        dl->fired_total++;
        if (ai.late)
            dl->late_total++;
        if (ai.late || a.level != L(YELLOW))
            log_info("%s obligation=%s case=%s late_ms=%lld",
                     a.level == L(YELLOW) ? "deadline_warning"
                     : a.level == L(RED)  ? "deadline_breached"
                                          : "escalated",
                     id, msg->case_ ? msg->case_->case_id : "", (long long)ai.late_by_ms);
    }
    if (rc == 0)
        rc = save(dl, txn, &before, &o, msg, fired, err);
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* ---- extensions ---- */

static int extension_refused(deadline_t *dl, MDB_txn *txn, const char *id,
                             Casebus__V1__Obligation *msg, const Casebus__V1__OrgRef *by,
                             const char *why, cb_error_t *err)
{
    Casebus__V1__Obligation stub = CASEBUS__V1__OBLIGATION__INIT;
    if (msg == NULL) {
        stub.obligation_id = (char *)id;
        msg = &stub;
    }
    log_info("extension_refused obligation=%s reason=\"%s\"", id, why);
    return change_event(dl, txn, msg, C(EXTENSION_REFUSED), by, why, 0, err);
}

static int on_extension_requested(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev,
                                  cb_error_t *err)
{
    const Casebus__V1__ExtensionRequested *x = ev->env->extension_requested;
    const char *id = x->obligation_id;
    int64_t asked_at = x->meta && x->meta->received_at_ms ? x->meta->received_at_ms
                                                          : ev->env->recorded_at_ms;
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    char why[256];
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return extension_refused(dl, txn, id, NULL, x->by, "no such obligation", err);
    const char *by = x->by ? x->by->org_id : "";
    if (o.status != DL_OPEN && o.status != DL_PAUSED) {
        rc = extension_refused(dl, txn, id, msg, x->by, "the obligation has ended", err);
    } else if (o.status == DL_OPEN && asked_at > o.due_ms) {
        rc = extension_refused(dl, txn, id, msg, x->by,
                               "an extension must be requested before the limit passes", err);
    } else if (msg->responsible == NULL || strcmp(msg->responsible->org_id, by) != 0) {
        snprintf(why, sizeof(why), "only the responsible organisation (%s) may ask",
                 msg->responsible ? msg->responsible->org_id : "none");
        rc = extension_refused(dl, txn, id, msg, x->by, why, err);
    } else if (x->extra_length == 0 || x->extra_length > 366) {
        rc = extension_refused(dl, txn, id, msg, x->by,
                               "extra_length must be between 1 and 366 units of the rule", err);
    } else {
        before = o;
        o.ext_pending = x->extra_length;
        snprintf(why, sizeof(why), "%u more %s asked: %s", x->extra_length,
                 unit_words(&o),
                 x->reason ? x->reason : "");
        if ((rc = save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = change_event(dl, txn, msg, C(EXTENSION_REQUESTED), x->by, why, 0, err);
    }
    casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

static int on_extension_decided(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev,
                                cb_error_t *err)
{
    const Casebus__V1__ExtensionDecided *x = ev->env->extension_decided;
    const char *id = x->obligation_id;
    int64_t now = ev->env->recorded_at_ms;
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    char why[256];
    int rc = load(dl, txn, id, &o, &msg, err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return extension_refused(dl, txn, id, NULL, x->by, "no such obligation", err);
    const char *by = x->by ? x->by->org_id : "";
    bool supervisor = false;
    for (size_t i = 0; i < msg->n_supervisors; i++)
        supervisor = supervisor || strcmp(msg->supervisors[i]->org_id, by) == 0;
    before = o;
    if (o.status != DL_OPEN && o.status != DL_PAUSED) {
        rc = extension_refused(dl, txn, id, msg, x->by, "the obligation has ended", err);
    } else if (o.ext_pending == 0) {
        rc = extension_refused(dl, txn, id, msg, x->by, "no extension was requested", err);
    } else if (!supervisor) {
        snprintf(why, sizeof(why), "'%s' does not supervise this obligation", by);
        rc = extension_refused(dl, txn, id, msg, x->by, why, err);
    } else if (!x->approved) {
        o.ext_pending = 0;
        if ((rc = save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = extension_refused(dl, txn, id, msg, x->by, "not approved by the supervisor", err);
    } else {
        uint32_t extra = x->extra_length ? x->extra_length : o.ext_pending;
        if (extra > 366)
            extra = 366;
        int64_t previous = o.due_ms;
        int missing = 0;
        if (counted(&o) && o.status == DL_OPEN &&
            (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, true, err)) != 0)
            goto out;
        if (o.status == DL_OPEN) {
            o.due_ms = dl_extend(dl->cal, o.unit, extra, o.due_ms, !(o.flags & DL_F_STAY),
                                 &missing);
        } else {
            /* Paused: the extension adds to the time left. */
            dl_ob_t shifted = o;
            shifted.due_ms = dl_extend(dl->cal, o.unit, extra, now, !(o.flags & DL_F_STAY),
                                       &missing);
            o.remaining_ms += o.unit == U(WORKING_DAYS)
                                  ? cb_cal_working_ms(dl->cal, now, shifted.due_ms, NULL)
                                  : shifted.due_ms - now;
        }
        o.ext_total += extra;
        o.ext_pending = 0;
        if (o.due_ms > now) {
            /* No longer overdue: red and 督办 may stand again if it passes anew;
             * warnings already given are not repeated. */
            o.fired &= (uint8_t)~DL_RED_BIT;
            o.escalations = 0;
            if (o.level == L(RED))
                o.level = o.fired ? L(YELLOW) : 0;
        }
        if (missing && (rc = calendar_missing(dl, txn, missing, err)) != 0)
            goto out;
        if (counted(&o) && o.status == DL_OPEN &&
            (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, false, err)) != 0)
            goto out;
        snprintf(why, sizeof(why), "%u more %s approved", extra,
                 unit_words(&o));
        if ((rc = save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = change_event(dl, txn, msg, C(EXTENDED), x->by, why, previous, err);
    }
out:
    casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* ---- intake's events ---- */

static void make_id(char *buf, const char *rule, const char *key)
{
    snprintf(buf, ID_MAX, "%s:%s", rule, key ? key : "");
}

static int on_case_cancelled_visit(void *ctx, const char *id);

typedef struct cancel_ctx {
    deadline_t *dl;
    MDB_txn *txn;
    const Casebus__V1__CaseCancelled *cc;
    cb_error_t *err;
} cancel_ctx_t;

static int on_case_cancelled_visit(void *ctx, const char *id)
{
    cancel_ctx_t *c = ctx;
    return close_obligation(c->dl, c->txn, id, DL_CANCELLED, 0, NULL, c->cc->by,
                            c->cc->reason && *c->cc->reason ? c->cc->reason : "case cancelled",
                            c->err);
}

/* The county's public security, as a ref (NULL when the registry has none). */
static const Casebus__V1__OrgRef *police_ref(const deadline_t *dl, Casebus__V1__OrgRef *buf)
{
    const Casebus__V1__Organisation *police =
        org_by_kind(dl, CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY);
    if (police == NULL)
        return NULL;
    cb_org_ref_fill(buf, police);
    return buf;
}

/* Opens a referral rule for the administrative organisation that handed the
 * case over (the crime_handover obligation's responsible). */
static int for_referrer(deadline_t *dl, MDB_txn *txn, dl_rule_id_t rule, const char *case_id,
                        int64_t at, cb_error_t *err)
{
    char handover[ID_MAX], id[ID_MAX];
    make_id(handover, "crime_handover", case_id);
    make_id(id, dl_rule_name(rule), case_id);
    dl_ob_t o;
    Casebus__V1__Obligation *h = NULL;
    int rc = 0;
    if (load(dl, txn, handover, &o, &h, err) == 0 && h->responsible)
        rc = open_obligation(dl, txn,
                             &(open_args_t){.rule = rule, .id = id, .case_id = case_id,
                                            .responsible = h->responsible, .start_ms = at},
                             err);
    if (h)
        casebus__v1__obligation__free_unpacked(h, NULL);
    return rc;
}

static int on_crime_step(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__CrimeReferralStep *s = ev->env->crime_referral_step;
    int64_t at = s->at_ms ? s->at_ms : ev->env->recorded_at_ms;
    char id[ID_MAX], prev[ID_MAX];
    Casebus__V1__OrgRef buf;
    int rc = 0;
    open_args_t a = {.case_id = s->case_id, .start_ms = at};
    switch (s->step) {
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_INVESTIGATOR_REPORTED:
        make_id(id, "crime_decide", s->case_id);
        a.rule = DL_RULE_CRIME_DECIDE;
        a.responsible = ref_for(dl, s->by ? s->by->org_id : NULL, s->by, &buf);
        break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_TRANSFER_DECIDED:
        make_id(prev, "crime_decide", s->case_id);
        make_id(id, "crime_handover", s->case_id);
        a.rule = DL_RULE_CRIME_HANDOVER;
        a.responsible = ref_for(dl, s->by ? s->by->org_id : NULL, s->by, &buf);
        rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err);
        break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE: {
        make_id(prev, "crime_handover", s->case_id);
        make_id(id, "police_answer", s->case_id);
        a.rule = DL_RULE_POLICE_ANSWER;
        a.responsible = police_ref(dl, &buf);
        rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err);
        break;
    }
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED:
        /* Opened: the exhibits follow within 3 days (第十二条); refused: the
         * administrative side may ask to reconsider within 3 days (第九条). */
        make_id(prev, "police_answer", s->case_id);
        if ((rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err)) != 0)
            return rc;
        return s->accepted ? for_referrer(dl, txn, DL_RULE_EXHIBITS_HANDOVER, s->case_id, at, err)
                           : for_referrer(dl, txn, DL_RULE_RECONSIDERATION, s->case_id, at, err);
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_REQUESTED: {
        /* Public security answers the request within 3 days (第九条). */
        make_id(prev, "reconsideration", s->case_id);
        make_id(id, "reconsideration_answer", s->case_id);
        a.rule = DL_RULE_RECONSIDERATION_ANSWER;
        a.responsible = police_ref(dl, &buf);
        rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err);
        break;
    }
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_ANSWERED:
        make_id(prev, "reconsideration_answer", s->case_id);
        if ((rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err)) != 0)
            return rc;
        return s->accepted ? for_referrer(dl, txn, DL_RULE_EXHIBITS_HANDOVER, s->case_id, at, err)
                           : 0;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_EXHIBITS_HANDED_OVER:
        make_id(prev, "exhibits_handover", s->case_id);
        return close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err);
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK:
        /* Sent back for administrative handling (第十三条): public security's
         * answer is given; router routes the case back with its own sign-for. */
        make_id(prev, "police_answer", s->case_id);
        if ((rc = close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err)) != 0)
            return rc;
        make_id(prev, "reconsideration_answer", s->case_id);
        return close_obligation(dl, txn, prev, DL_MET, at, ev, NULL, NULL, err);
    default:
        return 0;
    }
    if (rc != 0)
        return rc;
    a.id = id;
    return open_obligation(dl, txn, &a, err);
}

static int on_intake(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__Envelope *env = ev->env;
    int64_t now = env->recorded_at_ms;
    char id[ID_MAX];
    Casebus__V1__OrgRef buf;
    int rc;
    switch (env->body_case) {
    case B(CASE_REPORTED):
        return env->case_reported->case_ ? dl_case_put(dl, txn, env->case_reported->case_, err)
                                         : 0;
    case B(ASSISTANCE_REQUESTED): {
        const Casebus__V1__AssistanceRequested *r = env->assistance_requested;
        make_id(id, "assistance", r->assistance_id);
        open_args_t a = {.rule = DL_RULE_ASSISTANCE,
                         .id = id,
                         .case_id = r->case_id,
                         .responsible = ref_for(dl, r->to ? r->to->org_id : NULL, r->to, &buf),
                         .start_ms = r->letter_received_at_ms ? r->letter_received_at_ms : now};
        return open_obligation(dl, txn, &a, err);
    }
    case B(ASSISTANCE_ANSWERED):
        make_id(id, "assistance", env->assistance_answered->assistance_id);
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    case B(APPROVAL_RECORDED): {
        /* Recording the approval on the platform is the telling: the obligation
         * opens and ends together, on time or late. */
        const Casebus__V1__ApprovalRecorded *r = env->approval_recorded;
        /* 情况紧急的: at once (seed 002 §五(一)), a limit of hours. */
        dl_rule_id_t rule = r->urgent ? DL_RULE_APPROVAL_NOTICE_URGENT : DL_RULE_APPROVAL_NOTICE;
        make_id(id, dl_rule_name(rule), r->approval_id);
        open_args_t a = {.rule = rule,
                         .id = id,
                         .case_id = r->case_id,
                         .responsible = ref_for(dl, r->by ? r->by->org_id : NULL, r->by, &buf),
                         .start_ms = r->approved_at_ms ? r->approved_at_ms : now};
        if ((rc = open_obligation(dl, txn, &a, err)) != 0)
            return rc;
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    }
    case B(DECISION_RECORDED): {
        const Casebus__V1__DecisionRecorded *r = env->decision_recorded;
        open_args_t a = {.id = id,
                         .case_id = r->case_id,
                         .responsible = ref_for(dl, r->by ? r->by->org_id : NULL, r->by, &buf),
                         .start_ms = r->decided_at_ms ? r->decided_at_ms : now};
        if (r->feedback_to && r->feedback_to->org_id && *r->feedback_to->org_id) {
            make_id(id, "decision_feedback", r->decision_id);
            a.rule = DL_RULE_DECISION_FEEDBACK;
            if ((rc = open_obligation(dl, txn, &a, err)) != 0)
                return rc;
        }
        if (r->major) {
            make_id(id, "major_decision_filing", r->decision_id);
            a.rule = DL_RULE_MAJOR_DECISION_FILING;
            return open_obligation(dl, txn, &a, err);
        }
        return 0;
    }
    case B(FEEDBACK_GIVEN):
        make_id(id, "decision_feedback", env->feedback_given->decision_id);
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    case B(DECISION_FILED):
        make_id(id, "major_decision_filing", env->decision_filed->decision_id);
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    case B(CRIME_REFERRAL_STEP):
        return on_crime_step(dl, txn, ev, err);
    case B(JOINT_OPERATION_APPLIED): {
        /* seed 002 §四(一)2: apply at least N days before it starts, i.e. by
         * 24:00 of the Nth day before its first day. The record is the
         * application: opened and ended together, on time or late. */
        const Casebus__V1__JointOperationApplied *j = env->joint_operation_applied;
        const dl_rule_t *rule = &dl->rules.rule[DL_RULE_JOINT_OPERATION];
        make_id(id, "joint_operation", j->operation_id);
        int64_t first_day = cb_cst_day(j->starts_at_ms);
        open_args_t a = {.rule = DL_RULE_JOINT_OPERATION,
                         .id = id,
                         .responsible = ref_for(dl, j->by ? j->by->org_id : NULL, j->by, &buf),
                         .start_ms = now,
                         .due_ms = cb_cst_day_start_ms(first_day - (int64_t)rule->length + 1)};
        if ((rc = open_obligation(dl, txn, &a, err)) != 0)
            return rc;
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    }
    case B(FILING_RECORDED): {
        const Casebus__V1__FilingRecorded *fr = env->filing_recorded;
        static const char *const rules[] = {
            [CASEBUS__V1__FILING_KIND__FILING_KIND_CASE_FILE_CATALOGUE] = "case_file_catalogue",
            [CASEBUS__V1__FILING_KIND__FILING_KIND_ENFORCEMENT_DATA] = "enforcement_data",
            [CASEBUS__V1__FILING_KIND__FILING_KIND_MONTHLY_STATUS] = "monthly_status",
        };
        if (fr->kind < 1 || fr->kind > 3 || fr->by == NULL)
            return 0;
        snprintf(id, sizeof(id), "%s:%s:%s", rules[fr->kind], fr->by->org_id, fr->period);
        return close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    }
    case B(SUPERVISION_ANSWERED): {
        const Casebus__V1__SupervisionAnswered *sa = env->supervision_answered;
        if (sa->supervision_id == NULL || *sa->supervision_id == '\0')
            return 0;
        snprintf(id, sizeof(id), "answer:%s", sa->supervision_id);
        return close_obligation(dl, txn, id, DL_MET, now, ev, sa->by, NULL, err);
    }
    case B(EXTENSION_REQUESTED):
        return on_extension_requested(dl, txn, ev, err);
    case B(EXTENSION_DECIDED):
        return on_extension_decided(dl, txn, ev, err);
    case B(CASE_CANCELLED): {
        cancel_ctx_t c = {dl, txn, env->case_cancelled, err};
        return dl_bycase_each(dl, txn, env->case_cancelled->case_id, on_case_cancelled_visit, &c,
                              err);
    }
    default:
        return 0;
    }
}

/* ---- router's events ---- */

static int route_count_key(char *buf, size_t size, const char *transfer_id, uint32_t rc)
{
    return snprintf(buf, size, "sign:%s:%u", transfer_id, rc);
}

static int on_transfer_routed(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev,
                              cb_error_t *err)
{
    const Casebus__V1__TransferRouted *t = ev->env->transfer_routed;
    const char *case_id = t->case_ ? t->case_->case_id : ev->env->case_id;
    int64_t at = t->sent_at_ms ? t->sent_at_ms : ev->env->recorded_at_ms;
    char id[ID_MAX];
    int rc;
    /* The finder's duty is done once a valid transfer is routed. */
    make_id(id, "transfer", case_id);
    if ((rc = close_obligation(dl, txn, id, DL_MET, at, ev, NULL, NULL, err)) != 0)
        return rc;
    if (t->route_count > 1) {
        /* Routed anew (a decision, a resend): the previous receiver's clock ends. */
        route_count_key(id, sizeof(id), t->transfer_id, t->route_count - 1);
        if ((rc = close_obligation(dl, txn, id, DL_CANCELLED, at, ev, NULL,
                                   "the transfer was routed anew", err)) != 0)
            return rc;
    }
    route_count_key(id, sizeof(id), t->transfer_id, t->route_count);
    open_args_t a = {.rule = t->dispatched ? DL_RULE_DISPATCH_SIGN : DL_RULE_SIGN,
                     .id = id,
                     .cs = t->case_,
                     .transfer_id = t->transfer_id,
                     .responsible = t->receiver,
                     .start_ms = at};
    return open_obligation(dl, txn, &a, err);
}

static int review_key(char *buf, size_t size, const char *transfer_id, uint32_t returns)
{
    return snprintf(buf, size, "review:%s:%u", transfer_id, returns);
}

/* Which sign-for obligation is current: the highest route count opened. */
static int current_sign(deadline_t *dl, MDB_txn *txn, const char *transfer_id, char *id,
                        cb_error_t *err)
{
    for (uint32_t n = 64; n >= 1; n--) {
        route_count_key(id, ID_MAX, transfer_id, n);
        dl_ob_t o;
        int rc = load(dl, txn, id, &o, NULL, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return 0;
    }
    return 1;
}

static int on_state_changed(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev,
                            cb_error_t *err)
{
    const Casebus__V1__TransferStateChanged *sc = ev->env->transfer_state_changed;
    const char *case_id = sc->case_ ? sc->case_->case_id : ev->env->case_id;
    int64_t now = ev->env->recorded_at_ms;
    char id[ID_MAX], transfer[ID_MAX];
    int rc;
    make_id(transfer, "transfer", case_id);
    bool review_ended = sc->from_state == S(RETURN_REQUESTED);
    bool withdrawn = sc->to_state == S(WITHDRAWN);
    if (sc->from_state == S(SENT) && sc->to_state != S(RETURN_REQUESTED) && !withdrawn) {
        /* The receiver answered (signed, accepted, returned or disputed); a
         * dispatch's return stops nothing until it is approved. */
        if ((rc = current_sign(dl, txn, sc->transfer_id, id, err)) < 0)
            return rc;
        if (rc == 0 && (rc = close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err)) != 0)
            return rc;
    }
    if (review_ended || withdrawn) {
        review_key(id, sizeof(id), sc->transfer_id, sc->returns);
        if ((rc = close_obligation(dl, txn, id, review_ended ? DL_MET : DL_CANCELLED, now, ev,
                                   sc->by, "the case was reassigned", err)) != 0)
            return rc;
    }
    if (withdrawn || (review_ended && sc->to_state == S(RETURNED))) {
        if ((rc = current_sign(dl, txn, sc->transfer_id, id, err)) < 0)
            return rc;
        if (rc == 0 &&
            (rc = close_obligation(dl, txn, id, DL_CANCELLED, now, ev, sc->by,
                                   withdrawn ? "the command platform reassigned the case"
                                             : "the return was approved: the case is back with "
                                               "the command platform",
                                   err)) != 0)
            return rc;
    }
    switch (sc->to_state) {
    case S(RETURN_REQUESTED): {
        review_key(id, sizeof(id), sc->transfer_id, sc->returns);
        open_args_t a = {.rule = DL_RULE_RETURN_REVIEW,
                         .id = id,
                         .cs = sc->case_,
                         .transfer_id = sc->transfer_id,
                         .responsible = sc->reviewer,
                         .start_ms = now};
        return sc->reviewer ? open_obligation(dl, txn, &a, err) : 0;
    }
    case S(WITHDRAWN):
        return 0;
    case S(RETURNED):
        if (review_ended)
            return 0; /* a dispatch back with the platform: the finder's duty was done */
        return resume_obligation(dl, txn, transfer, now, true, sc->by,
                                 "the transfer was returned: the clock resumes with the time it "
                                 "had left",
                                 err);
    case S(DISPUTED):
        return pause_obligation(dl, txn, transfer, now, sc->by,
                                "dispute before the judicial bureau (seed 002 §五(三)4)", err);
    case S(CONCLUDED):
        return close_obligation(dl, txn, transfer, DL_CANCELLED, now, ev, sc->by,
                                "the judicial bureau decided the case stays with its finder",
                                err);
    default:
        return 0;
    }
}

static int on_router(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__Envelope *env = ev->env;
    char id[ID_MAX];
    int rc;
    switch (env->body_case) {
    case B(ORGS_IMPORTED): {
        if ((rc = dl_orgs_put(dl, txn, env->orgs_imported, err)) != 0)
            return rc;
        /* Keep a private copy in memory (ev's message dies with the batch). */
        size_t len = casebus__v1__orgs_imported__get_packed_size(env->orgs_imported);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        casebus__v1__orgs_imported__pack(env->orgs_imported, buf);
        Casebus__V1__OrgsImported *copy = casebus__v1__orgs_imported__unpack(NULL, len, buf);
        free(buf);
        if (copy == NULL)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        if (dl->orgs)
            casebus__v1__orgs_imported__free_unpacked(dl->orgs, NULL);
        dl->orgs = copy;
        log_info("orgs_replicated version=%u count=%zu", copy->version, copy->n_orgs);
        /* New organisations get this period's filings at once. */
        return dl_open_periodic(dl, txn, dl->now ? dl->now() : env->recorded_at_ms, err);
    }
    case B(JURISDICTION_RESOLVED):
        return env->jurisdiction_resolved->case_
                   ? dl_case_put(dl, txn, env->jurisdiction_resolved->case_, err)
                   : 0;
    case B(TRANSFER_REQUIRED): {
        const Casebus__V1__TransferRequired *t = env->transfer_required;
        if (t->case_ == NULL)
            return 0;
        /* A suspected crime is handed over under Decree 310's chain (opened by
         * the investigator's report), not seed 002's 3-working-day transfer. */
        if (t->case_->suspected_crime)
            return 0;
        bool emergency = t->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY;
        make_id(id, "transfer", t->case_->case_id);
        open_args_t a = {.rule = emergency ? DL_RULE_TRANSFER_EMERGENCY : DL_RULE_TRANSFER,
                         .id = id,
                         .cs = t->case_,
                         .responsible = t->from,
                         .start_ms = t->case_->discovered_at_ms};
        return open_obligation(dl, txn, &a, err);
    }
    case B(TRANSFER_ROUTED):
        return on_transfer_routed(dl, txn, ev, err);
    case B(TRANSFER_STATE_CHANGED):
        return on_state_changed(dl, txn, ev, err);
    default:
        return 0;
    }
}

int dl_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    deadline_t *dl = ctx;
    if (strcmp(ev->producer, "intake") == 0)
        return on_intake(dl, txn, ev, err);
    if (strcmp(ev->producer, "router") == 0)
        return on_router(dl, txn, ev, err);
    return 0;
}

/* ---- date rules ---- */

int dl_open_periodic(deadline_t *dl, MDB_txn *txn, int64_t now_ms, cb_error_t *err)
{
    if (dl->orgs == NULL)
        return 0;
    cb_civil_t c;
    cb_time_to_cst(now_ms, &c);
    for (int r = 0; r < DL_NRULES; r++) {
        const dl_rule_t *rule = &dl->rules.rule[r];
        if (!rule->enabled || rule->unit != CASEBUS__V1__TIME_UNIT__TIME_UNIT_DATE)
            continue;
        char period[16];
        int64_t start, day;
        if (rule->due_month) {
            /* Last year's filing, due in this year. */
            snprintf(period, sizeof(period), "%04d", c.year - 1);
            start = cb_cst_day_start_ms(cb_days_from_civil(c.year, 1, 1));
            day = cb_days_from_civil(c.year, rule->due_month, rule->due_day);
        } else {
            snprintf(period, sizeof(period), "%04d-%02d", c.year, c.month);
            start = cb_cst_day_start_ms(cb_days_from_civil(c.year, c.month, 1));
            day = cb_days_from_civil(c.year, c.month, rule->due_day);
        }
        int64_t due = dl_date_due(dl->cal, day, rule->move, NULL);
        if (now_ms >= due)
            continue; /* this period's limit has passed; the next opens with its period */
        for (size_t i = 0; i < dl->orgs->n_orgs; i++) {
            const Casebus__V1__Organisation *o = dl->orgs->orgs[i];
            bool kind = false;
            for (unsigned k = 0; k < rule->nresp_kinds; k++)
                kind = kind || (int)o->kind == rule->resp_kinds[k];
            if (!kind)
                continue;
            char id[ID_MAX];
            snprintf(id, sizeof(id), "%s:%s:%s", dl_rule_name((dl_rule_id_t)r), o->org_id, period);
            /* open_obligation leaves one already open (or ended) as it is. */
            Casebus__V1__OrgRef ref;
            cb_org_ref_fill(&ref, o);
            open_args_t a = {.rule = (dl_rule_id_t)r, .id = id, .responsible = &ref,
                             .start_ms = start, .dated = true, .date_day = day};
            int rc = open_obligation(dl, txn, &a, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* ---- calendars ---- */

typedef struct recompute_ctx {
    deadline_t *dl;
    MDB_txn *txn;
    uint64_t count;
    const char *why;
    cb_error_t *err;
} recompute_ctx_t;

static int recompute_one(void *ctx, const char *id)
{
    recompute_ctx_t *c = ctx;
    deadline_t *dl = c->dl;
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = load(dl, c->txn, id, &o, &msg, c->err);
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
        (rc = save(dl, c->txn, &before, &o, msg, 0, c->err)) != 0)
        goto out;
    if (due != previous) {
        c->count++;
        rc = change_event(dl, c->txn, msg, C(RECOMPUTED), NULL, c->why, previous, c->err);
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
    return emit(dl, txn, &env, NULL, err);
}
