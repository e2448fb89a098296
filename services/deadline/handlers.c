/*
 * handlers.c — what deadline does with each event it pulls.
 * Never touches a socket. Which event opens and which closes each rule's
 * obligation (rules.c holds the lengths and warning points):
 *
 *   rule                   opened by (start)                       met by
 *   transfer / _emergency  router TransferRequired (discovery)     router TransferRouted
 *   sign                   router TransferRouted (routing)         the receiver's first step
 *   assistance             intake AssistanceRequested (letter)     intake AssistanceAnswered
 *   approval_notice        intake ApprovalRecorded (approval)      the same record (on time or
 * late) decision_feedback      intake DecisionRecorded w/ feedback_to  intake FeedbackGiven
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
#include "dlint.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cancel_ctx {
    deadline_t *dl;
    MDB_txn *txn;
    const Casebus__V1__CaseCancelled *cc;
    cb_error_t *err;
} cancel_ctx_t;

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
    return dl_change_event(dl, txn, msg, C(EXTENSION_REFUSED), by, why, 0, err);
}

/* The obligation an extension names, loaded with its message: 0. When there is
 * none the extension is refused: 1 (or the error of recording that). */
static int extension_target(deadline_t *dl, MDB_txn *txn, const char *id,
                            const Casebus__V1__OrgRef *by, dl_ob_t *o,
                            Casebus__V1__Obligation **msg, cb_error_t *err)
{
    *msg = NULL;
    int rc = dl_load(dl, txn, id, o, msg, err);
    if (rc > 0 && (rc = extension_refused(dl, txn, id, NULL, by, "no such obligation", err)) == 0)
        rc = 1;
    return rc;
}

static int on_extension_requested(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev,
                                  cb_error_t *err)
{
    const Casebus__V1__ExtensionRequested *x = ev->env->extension_requested;
    const char *id = x->obligation_id;
    int64_t asked_at =
        x->meta && x->meta->received_at_ms ? x->meta->received_at_ms : ev->env->recorded_at_ms;
    const char *by = x->by ? x->by->org_id : "";
    char why[256];
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg;
    int rc = extension_target(dl, txn, id, x->by, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
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
        snprintf(why, sizeof(why), "%u more %s asked: %s", x->extra_length, dl_unit_words(&o),
                 x->reason ? x->reason : "");
        if ((rc = dl_save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = dl_change_event(dl, txn, msg, C(EXTENSION_REQUESTED), x->by, why, 0, err);
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
    Casebus__V1__Obligation *msg;
    int rc = extension_target(dl, txn, id, x->by, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    char why[256];
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
        if ((rc = dl_save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = extension_refused(dl, txn, id, msg, x->by, "not approved by the supervisor", err);
    } else {
        uint32_t extra = x->extra_length ? x->extra_length : o.ext_pending;
        if (extra > 366)
            extra = 366;
        int64_t previous = o.due_ms;
        int missing = 0;
        if (dl_counted(&o) && o.status == DL_OPEN &&
            (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, true, err)) != 0)
            goto out;
        if (o.status == DL_OPEN) {
            o.due_ms =
                dl_extend(dl->cal, o.unit, extra, o.due_ms, !(o.flags & DL_F_STAY), &missing);
        } else {
            /* Paused: the extension adds to the time left. */
            dl_ob_t shifted = o;
            shifted.due_ms =
                dl_extend(dl->cal, o.unit, extra, now, !(o.flags & DL_F_STAY), &missing);
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
        if (missing && (rc = dl_calendar_missing(dl, txn, missing, err)) != 0)
            goto out;
        if (dl_counted(&o) && o.status == DL_OPEN &&
            (rc = dl_calyears_put(dl, txn, o.start_ms, o.due_ms, id, false, err)) != 0)
            goto out;
        snprintf(why, sizeof(why), "%u more %s approved", extra, dl_unit_words(&o));
        if ((rc = dl_save(dl, txn, &before, &o, msg, 0, err)) == 0)
            rc = dl_change_event(dl, txn, msg, C(EXTENDED), x->by, why, previous, err);
    }
out:
    casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}

static void make_id(char *buf, const char *rule, const char *key)
{
    snprintf(buf, ID_MAX, "%s:%s", rule, key ? key : "");
}

static int on_case_cancelled_visit(void *ctx, const char *id)
{
    cancel_ctx_t *c = ctx;
    return dl_close_obligation(c->dl, c->txn, id, DL_CANCELLED, 0, NULL, c->cc->by,
                               c->cc->reason && *c->cc->reason ? c->cc->reason : "case cancelled",
                               c->err);
}

/* The county's public security, as a ref (NULL when the registry has none). */
static const Casebus__V1__OrgRef *police_ref(const deadline_t *dl, Casebus__V1__OrgRef *buf)
{
    const Casebus__V1__Organisation *police =
        dl_org_by_kind(dl, CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY);
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
    if (dl_load(dl, txn, handover, &o, &h, err) == 0 && h->responsible)
        rc = dl_open_obligation(dl, txn,
                                &(open_args_t){.rule = rule,
                                               .id = id,
                                               .case_id = case_id,
                                               .responsible = h->responsible,
                                               .start_ms = at},
                                err);
    if (h)
        casebus__v1__obligation__free_unpacked(h, NULL);
    return rc;
}

#define NONE DL_NRULES
#define STEP(x) CASEBUS__V1__CRIME_STEP__CRIME_STEP_##x

/* Decree 310's chain: the limits each step meets, and the one it opens (or,
 * for public security's answers, opens by their verdict) and who must meet it. */
enum { BY_STEP, BY_POLICE, BY_REFERRER };
static const struct {
    int step;
    dl_rule_id_t meets[2];
    dl_rule_id_t opens, if_accepted, if_refused;
    int who;
} crime_chain[] = {
    {STEP(INVESTIGATOR_REPORTED), {NONE, NONE}, DL_RULE_CRIME_DECIDE, NONE, NONE, BY_STEP},
    {STEP(TRANSFER_DECIDED),
     {DL_RULE_CRIME_DECIDE, NONE},
     DL_RULE_CRIME_HANDOVER,
     NONE,
     NONE,
     BY_STEP},
    {STEP(HANDED_TO_POLICE),
     {DL_RULE_CRIME_HANDOVER, NONE},
     DL_RULE_POLICE_ANSWER,
     NONE,
     NONE,
     BY_POLICE},
    /* opened: the exhibits follow within 3 days (第十二条); refused: the
     * administrative side may ask to reconsider within 3 days (第九条) */
    {STEP(POLICE_ANSWERED),
     {DL_RULE_POLICE_ANSWER, NONE},
     NONE,
     DL_RULE_EXHIBITS_HANDOVER,
     DL_RULE_RECONSIDERATION,
     BY_REFERRER},
    /* public security answers the request within 3 days (第九条) */
    {STEP(RECONSIDERATION_REQUESTED),
     {DL_RULE_RECONSIDERATION, NONE},
     DL_RULE_RECONSIDERATION_ANSWER,
     NONE,
     NONE,
     BY_POLICE},
    {STEP(RECONSIDERATION_ANSWERED),
     {DL_RULE_RECONSIDERATION_ANSWER, NONE},
     NONE,
     DL_RULE_EXHIBITS_HANDOVER,
     NONE,
     BY_REFERRER},
    {STEP(EXHIBITS_HANDED_OVER), {DL_RULE_EXHIBITS_HANDOVER, NONE}, NONE, NONE, NONE, BY_STEP},
    /* sent back for administrative handling (第十三条): public security's
     * answer is given; router routes the case back with its own sign-for */
    {STEP(SENT_BACK),
     {DL_RULE_POLICE_ANSWER, DL_RULE_RECONSIDERATION_ANSWER},
     NONE,
     NONE,
     NONE,
     BY_STEP},
};

static int on_crime_step(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__CrimeReferralStep *s = ev->env->crime_referral_step;
    int64_t at = s->at_ms ? s->at_ms : ev->env->recorded_at_ms;
    for (size_t i = 0; i < sizeof(crime_chain) / sizeof(crime_chain[0]); i++) {
        if (crime_chain[i].step != (int)s->step)
            continue;
        int rc = 0;
        char id[ID_MAX];
        for (size_t k = 0; k < 2 && rc == 0 && crime_chain[i].meets[k] != NONE; k++) {
            make_id(id, dl_rule_name(crime_chain[i].meets[k]), s->case_id);
            rc = dl_close_obligation(dl, txn, id, DL_MET, at, ev, NULL, NULL, err);
        }
        dl_rule_id_t opens = crime_chain[i].opens != NONE ? crime_chain[i].opens
                             : s->accepted                ? crime_chain[i].if_accepted
                                                          : crime_chain[i].if_refused;
        if (rc != 0 || opens == NONE)
            return rc;
        if (crime_chain[i].who == BY_REFERRER)
            return for_referrer(dl, txn, opens, s->case_id, at, err);
        Casebus__V1__OrgRef buf;
        make_id(id, dl_rule_name(opens), s->case_id);
        open_args_t a = {.rule = opens,
                         .id = id,
                         .case_id = s->case_id,
                         .start_ms = at,
                         .responsible =
                             crime_chain[i].who == BY_POLICE
                                 ? police_ref(dl, &buf)
                                 : dl_ref_for(dl, s->by ? s->by->org_id : NULL, s->by, &buf)};
        return dl_open_obligation(dl, txn, &a, err);
    }
    return 0;
}

#undef NONE
#undef STEP

static int on_intake(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__Envelope *env = ev->env;
    int64_t now = env->recorded_at_ms;
    char id[ID_MAX];
    Casebus__V1__OrgRef buf;
    int rc;
    switch (env->body_case) {
    case B(CASE_REPORTED):
        return env->case_reported->case_ ? dl_case_put(dl, txn, env->case_reported->case_, err) : 0;
    case B(ASSISTANCE_REQUESTED): {
        const Casebus__V1__AssistanceRequested *r = env->assistance_requested;
        make_id(id, "assistance", r->assistance_id);
        open_args_t a = {.rule = DL_RULE_ASSISTANCE,
                         .id = id,
                         .case_id = r->case_id,
                         .responsible = dl_ref_for(dl, r->to ? r->to->org_id : NULL, r->to, &buf),
                         .start_ms = r->letter_received_at_ms ? r->letter_received_at_ms : now};
        return dl_open_obligation(dl, txn, &a, err);
    }
    case B(ASSISTANCE_ANSWERED):
        make_id(id, "assistance", env->assistance_answered->assistance_id);
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
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
                         .responsible = dl_ref_for(dl, r->by ? r->by->org_id : NULL, r->by, &buf),
                         .start_ms = r->approved_at_ms ? r->approved_at_ms : now};
        if ((rc = dl_open_obligation(dl, txn, &a, err)) != 0)
            return rc;
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    }
    case B(DECISION_RECORDED): {
        const Casebus__V1__DecisionRecorded *r = env->decision_recorded;
        open_args_t a = {.id = id,
                         .case_id = r->case_id,
                         .responsible = dl_ref_for(dl, r->by ? r->by->org_id : NULL, r->by, &buf),
                         .start_ms = r->decided_at_ms ? r->decided_at_ms : now};
        if (r->feedback_to && r->feedback_to->org_id && *r->feedback_to->org_id) {
            make_id(id, "decision_feedback", r->decision_id);
            a.rule = DL_RULE_DECISION_FEEDBACK;
            if ((rc = dl_open_obligation(dl, txn, &a, err)) != 0)
                return rc;
        }
        if (r->major) {
            make_id(id, "major_decision_filing", r->decision_id);
            a.rule = DL_RULE_MAJOR_DECISION_FILING;
            return dl_open_obligation(dl, txn, &a, err);
        }
        return 0;
    }
    case B(FEEDBACK_GIVEN):
        make_id(id, "decision_feedback", env->feedback_given->decision_id);
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    case B(DECISION_FILED):
        make_id(id, "major_decision_filing", env->decision_filed->decision_id);
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    case B(CRIME_REFERRAL_STEP): return on_crime_step(dl, txn, ev, err);
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
                         .responsible = dl_ref_for(dl, j->by ? j->by->org_id : NULL, j->by, &buf),
                         .start_ms = now,
                         .due_ms = cb_cst_day_start_ms(first_day - (int64_t)rule->length + 1)};
        if ((rc = dl_open_obligation(dl, txn, &a, err)) != 0)
            return rc;
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
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
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err);
    }
    case B(SUPERVISION_ANSWERED): {
        const Casebus__V1__SupervisionAnswered *sa = env->supervision_answered;
        if (sa->supervision_id == NULL || *sa->supervision_id == '\0')
            return 0;
        snprintf(id, sizeof(id), "answer:%s", sa->supervision_id);
        return dl_close_obligation(dl, txn, id, DL_MET, now, ev, sa->by, NULL, err);
    }
    case B(EXTENSION_REQUESTED): return on_extension_requested(dl, txn, ev, err);
    case B(EXTENSION_DECIDED): return on_extension_decided(dl, txn, ev, err);
    case B(CASE_CANCELLED): {
        cancel_ctx_t c = {dl, txn, env->case_cancelled, err};
        return dl_bycase_each(dl, txn, env->case_cancelled->case_id, on_case_cancelled_visit, &c,
                              err);
    }
    default: return 0;
    }
}

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
    if ((rc = dl_close_obligation(dl, txn, id, DL_MET, at, ev, NULL, NULL, err)) != 0)
        return rc;
    if (t->route_count > 1) {
        /* Routed anew (a decision, a resend): the previous receiver's clock ends. */
        route_count_key(id, sizeof(id), t->transfer_id, t->route_count - 1);
        if ((rc = dl_close_obligation(dl, txn, id, DL_CANCELLED, at, ev, NULL,
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
    return dl_open_obligation(dl, txn, &a, err);
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
        int rc = dl_load(dl, txn, id, &o, NULL, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return 0;
    }
    return 1;
}

static int on_state_changed(deadline_t *dl, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
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
        if (rc == 0 &&
            (rc = dl_close_obligation(dl, txn, id, DL_MET, now, ev, NULL, NULL, err)) != 0)
            return rc;
    }
    if (review_ended || withdrawn) {
        review_key(id, sizeof(id), sc->transfer_id, sc->returns);
        if ((rc = dl_close_obligation(dl, txn, id, review_ended ? DL_MET : DL_CANCELLED, now, ev,
                                      sc->by, "the case was reassigned", err)) != 0)
            return rc;
    }
    if (withdrawn || (review_ended && sc->to_state == S(RETURNED))) {
        if ((rc = current_sign(dl, txn, sc->transfer_id, id, err)) < 0)
            return rc;
        if (rc == 0 &&
            (rc = dl_close_obligation(dl, txn, id, DL_CANCELLED, now, ev, sc->by,
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
        return sc->reviewer ? dl_open_obligation(dl, txn, &a, err) : 0;
    }
    case S(WITHDRAWN): return 0;
    case S(RETURNED):
        if (review_ended)
            return 0; /* a dispatch back with the platform: the finder's duty was done */
        return dl_resume_obligation(dl, txn, transfer, now, true, sc->by,
                                    "the transfer was returned: the clock resumes with the time it "
                                    "had left",
                                    err);
    case S(DISPUTED):
        return dl_pause_obligation(dl, txn, transfer, now, sc->by,
                                   "dispute before the judicial bureau (seed 002 §五(三)4)", err);
    case S(CONCLUDED):
        return dl_close_obligation(dl, txn, transfer, DL_CANCELLED, now, ev, sc->by,
                                   "the judicial bureau decided the case stays with its finder",
                                   err);
    default: return 0;
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
        return dl_open_obligation(dl, txn, &a, err);
    }
    case B(TRANSFER_ROUTED): return on_transfer_routed(dl, txn, ev, err);
    case B(TRANSFER_STATE_CHANGED): return on_state_changed(dl, txn, ev, err);
    default: return 0;
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
            open_args_t a = {.rule = (dl_rule_id_t)r,
                             .id = id,
                             .responsible = &ref,
                             .start_ms = start,
                             .dated = true,
                             .date_day = day};
            int rc = dl_open_obligation(dl, txn, &a, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
