/*
 * lifecycle.c — an obligation's life in deadline's store: opened (with its
 * due instant counted on the calendar), paused and resumed, moved in the
 * timer index, closed (met, late, cancelled); the counts of open, yellow and
 * red limits; and the events each change records.
 */
#include "deadline.h"
#include "dlint.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const Casebus__V1__Organisation *org_by_id(const deadline_t *dl, const char *id)
{
    if (dl->orgs == NULL || id == NULL)
        return NULL;
    for (size_t i = 0; i < dl->orgs->n_orgs; i++)
        if (strcmp(dl->orgs->orgs[i]->org_id, id) == 0)
            return dl->orgs->orgs[i];
    return NULL;
}

const Casebus__V1__Organisation *dl_org_by_kind(const deadline_t *dl, int kind)
{
    if (dl->orgs == NULL)
        return NULL;
    for (size_t i = 0; i < dl->orgs->n_orgs; i++)
        if ((int)dl->orgs->orgs[i]->kind == kind)
            return dl->orgs->orgs[i];
    return NULL;
}

/* An OrgRef for id: the registry's when known, else the one an event carried. */
const Casebus__V1__OrgRef *dl_ref_for(const deadline_t *dl, const char *id,
                                      const Casebus__V1__OrgRef *carried, Casebus__V1__OrgRef *buf)
{
    const Casebus__V1__Organisation *o = org_by_id(dl, id);
    if (o == NULL)
        return carried;
    cb_org_ref_fill(buf, o);
    return buf;
}

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

int dl_emit(deadline_t *dl, MDB_txn *txn, Casebus__V1__Envelope *env,
            const Casebus__V1__Obligation *msg, cb_error_t *err)
{
    env->case_id = msg && msg->case_ && msg->case_->case_id ? msg->case_->case_id : "";
    return cb_log_append(dl->d.log, txn, env, err);
}

/* Replaces an unpacked message's string (protobuf-c frees it with the message). */
int dl_set_str(char **field, const char *value, cb_error_t *err)
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
        int rc = dl_set_str(&msg->due_local, local, err);
        return rc ? rc : dl_set_str(&msg->calendar_version, calv, err);
    }
    msg->due_local = local;
    msg->calendar_version = calv;
    return 0;
}

int dl_change_event(deadline_t *dl, MDB_txn *txn, Casebus__V1__Obligation *msg, int change,
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
    return dl_emit(dl, txn, &env, msg, err);
}

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
    return next ? dl_timer_put(dl, txn, next, id, err) : 0;
}

bool dl_counted(const dl_ob_t *o)
{
    return o->unit != U(HOURS);
}

int dl_open_obligation(deadline_t *dl, MDB_txn *txn, const open_args_t *a, cb_error_t *err)
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
        const Casebus__V1__Organisation *s = dl_org_by_kind(dl, rule->esc_kinds[k]);
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

    if (missing && (rc = dl_calendar_missing(dl, txn, missing, err)) != 0)
        goto out;
    if ((rc = retime(dl, txn, &o, a->id, err)) != 0)
        goto out;
    if (dl_counted(&o) && (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, a->id, false, err)))
        goto out;
    if (cs && cs->case_id && *cs->case_id &&
        (rc = dl_bycase_put(dl, txn, cs->case_id, a->id, err)) != 0)
        goto out;
    Casebus__V1__ObligationOpened oo = CASEBUS__V1__OBLIGATION_OPENED__INIT;
    oo.obligation = &msg;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(OBLIGATION_OPENED);
    env.obligation_opened = &oo;
    if ((rc = dl_emit(dl, txn, &env, &msg, err)) != 0)
        goto out;
    o.opened_seq = env.seq; /* the store keeps the clock; the event, the rest */
    if ((rc = dl_ob_put(dl, txn, &o, &msg, err)) != 0 ||
        (rc = counts_move(dl, txn, NULL, &o, 0, err)) != 0)
        goto out;
    log_debug("obligation_opened obligation=%s rule=%s due=%s", a->id, msg.rule_id, local);
out:
    if (stored)
        casebus__v1__case_summary__free_unpacked(stored, NULL);
    return rc;
}

/* Loads obligation id for a change. Returns 1 when absent (nothing to do). */
int dl_load(deadline_t *dl, MDB_txn *txn, const char *id, dl_ob_t *o, Casebus__V1__Obligation **msg,
            cb_error_t *err)
{
    cb_error_t e;
    int rc = dl_ob_get(dl, txn, id, o, msg, &e);
    if (rc == CB_ERR_NOT_FOUND)
        return 1;
    if (rc != 0)
        return cb_error_set(err, e.code, e.field, "%s", e.message);
    char local[40], calv[CALV_MAX];
    if (msg && o->opened_seq && (rc = refresh_msg(dl, o, *msg, true, local, calv, err)) != 0) {
        casebus__v1__obligation__free_unpacked(*msg, NULL);
        *msg = NULL;
        return rc;
    }
    return 0;
}

int dl_save(deadline_t *dl, MDB_txn *txn, const dl_ob_t *before, dl_ob_t *o,
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
int dl_close_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int status, int64_t met_ms,
                        const cb_bus_event_t *stop, const Casebus__V1__OrgRef *by,
                        const char *reason, cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = dl_load(dl, txn, id, &o, &msg, err);
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
    if (dl_counted(&o) && before.status == DL_OPEN &&
        (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, true, err)) != 0)
        goto out;
    o.status = (uint8_t)status;
    if (status == DL_MET && !on_time)
        o.flags |= DL_F_MET_LATE;
    else
        o.flags &= (uint8_t)~DL_F_MET_LATE;
    if ((rc = dl_save(dl, txn, &before, &o, msg, 0, err)) != 0)
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
        rc = dl_emit(dl, txn, &env, msg, err);
        log_debug("obligation_met obligation=%s on_time=%d", id, on_time);
    } else {
        rc = dl_change_event(dl, txn, msg, C(CANCELLED), by, reason, 0, err);
    }
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

/* The rule's unit in words, for reasons people read. */
const char *dl_unit_words(const dl_ob_t *o)
{
    return o->unit == U(HOURS) ? "hours" : o->unit == U(DAYS) ? "days" : "working days";
}

static int64_t used_ms(const deadline_t *dl, const dl_ob_t *o, int64_t now_ms)
{
    if (o->unit == U(WORKING_DAYS))
        return cb_cal_working_ms(dl->cal, o->start_ms, now_ms, NULL);
    return now_ms - o->start_ms;
}

typedef enum { STEP_PAUSE, STEP_RESUME, STEP_REOPEN } clock_step_t;

/* Pauses an open clock (a dispute before the judicial bureau), restarts a
 * paused one, or reopens a met one, with the time it had left. */
static int clock_step(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms,
                      clock_step_t step, const Casebus__V1__OrgRef *by, const char *reason,
                      cb_error_t *err)
{
    static const int from[] = {
        [STEP_PAUSE] = DL_OPEN, [STEP_RESUME] = DL_PAUSED, [STEP_REOPEN] = DL_MET};
    static const int change[] = {
        [STEP_PAUSE] = C(PAUSED), [STEP_RESUME] = C(RESUMED), [STEP_REOPEN] = C(REOPENED)};
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = dl_load(dl, txn, id, &o, &msg, err);
    if (rc != 0 || o.status != from[step])
        goto out;
    before = o;
    int64_t previous = 0;
    if (step == STEP_PAUSE) {
        o.remaining_ms = dl_clock_left(dl->cal, &o, now_ms);
        msg->used_ms = used_ms(dl, &o, now_ms);
        o.status = DL_PAUSED;
        o.flags |= DL_F_REBASED;
    } else {
        previous = o.due_ms;
        o.due_ms = dl_clock_resume(dl->cal, &o, now_ms);
        o.anchor_ms = now_ms;
        o.ext_at_anchor = o.ext_total;
        o.status = DL_OPEN;
        o.flags = (uint8_t)((o.flags | DL_F_REBASED) & ~DL_F_MET_LATE);
    }
    /* A paused clock leaves the index of calendar years; a running one is in it. */
    if (dl_counted(&o) &&
        (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, step == STEP_PAUSE, err)) != 0)
        goto out;
    if ((rc = dl_save(dl, txn, &before, &o, msg, 0, err)) == 0)
        rc = dl_change_event(dl, txn, msg, change[step], by, reason, previous, err);
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc > 0 ? 0 : rc;
}

int dl_pause_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms,
                        const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err)
{
    return clock_step(dl, txn, id, now_ms, STEP_PAUSE, by, reason, err);
}

int dl_resume_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms, bool reopen,
                         const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err)
{
    return clock_step(dl, txn, id, now_ms, reopen ? STEP_REOPEN : STEP_RESUME, by, reason, err);
}
