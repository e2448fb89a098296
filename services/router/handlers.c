/*
 * handlers.c — what router does with each event it pulls from intake, and with
 * imports from its control socket. Never touches a socket. Every verdict is an
 * event of router's log, self-contained (case summary, organisations by name):
 *   CaseReported     -> JurisdictionResolved [+ TransferRequired] [+ RoutingFailed]
 *   TransferSent     -> TransferRouted, or TransferRejected
 *   TransferReceived / Accepted / Returned, DisputeRaised, DisputeDecided
 *                    -> TransferStateChanged [+ DisputeEscalated] [+ TransferRouted],
 *                       or TransferRejected with the reason and the state
 *   CrimeReferralStep (declined, sent back) -> TransferRouted from public security
 *   CaseDispatched   -> [TransferStateChanged to withdrawn] JurisdictionResolved
 *                       TransferRouted (dispatched), or TransferRejected
 *   ReturnReviewed   -> TransferStateChanged [+ JurisdictionResolved: back with the platform]
 * One transfer of a case is open at a time (transfer_open).
 * A case is never dropped: an unknown matter or township goes to the county
 * command platform (the enforcement bureau) with RoutingFailed. Without any
 * registry router cannot route at all: apply fails loudly and the bus retries,
 * so the cases wait for the import instead of vanishing.
 */
#include "router.h"
#include "catalog.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_##x

/* An OrgRef pointing into registry memory (valid until the registry changes). */
static Casebus__V1__OrgRef *ref_of(const Casebus__V1__Organisation *o, Casebus__V1__OrgRef *r)
{
    casebus__v1__org_ref__init(r);
    if (o == NULL)
        return NULL;
    cb_org_ref_fill(r, o);
    return r;
}

static int emit(router_t *r, MDB_txn *txn, Casebus__V1__Envelope *env, const char *case_id,
                cb_error_t *err)
{
    env->case_id = (char *)(case_id ? case_id : "");
    return cb_log_append(r->d.log, txn, env, err);
}

static int reject(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev, const char *transfer_id,
                  const char *case_id, const char *command, const Casebus__V1__OrgRef *by,
                  const char *code, const char *message, int state, cb_error_t *err)
{
    Casebus__V1__TransferRejected tr = CASEBUS__V1__TRANSFER_REJECTED__INIT;
    tr.transfer_id = (char *)(transfer_id ? transfer_id : "");
    tr.case_id = (char *)(case_id ? case_id : "");
    tr.command_seq = ev->seq;
    tr.command = (char *)command;
    tr.by = (Casebus__V1__OrgRef *)by;
    tr.code = (char *)code;
    tr.message = (char *)message;
    tr.state = state;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REJECTED;
    env.transfer_rejected = &tr;
    cb_metric_inc(r->m_rejected);
    log_info("transfer_rejected transfer=%s case=%s command=%s reason=%s", tr.transfer_id,
             tr.case_id, command, code);
    return emit(r, txn, &env, case_id, err);
}

/* ---- CaseReported ---- */

static int on_case_reported(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev,
                            cb_error_t *err)
{
    const Casebus__V1__CaseReported *rep = ev->env->case_reported;
    if (rep->case_ == NULL)
        return 0; /* intake never records one without; nothing to route */
    router_resolution_t res;
    int rc = router_resolve(r->reg, rep->case_, &res, err);
    if (rc != 0) {
        log_error("cannot_route case=%s error=\"%s\"", rep->case_->case_id, err->message);
        return rc; /* the bus retries: the case waits for the registry */
    }
    /* The case as router tells it: with the matter's and township's names. */
    Casebus__V1__CaseSummary cs = *rep->case_;
    if (res.matter)
        cs.matter_name = res.matter->name;
    const Casebus__V1__Organisation *town = router_township(r->reg, cs.township_code);
    if (town)
        cs.township_name = town->name;

    Casebus__V1__OrgRef competent, copies[2];
    Casebus__V1__OrgRef *copy_ptrs[2];
    Casebus__V1__JurisdictionResolved j = CASEBUS__V1__JURISDICTION_RESOLVED__INIT;
    j.case_ = &cs;
    j.competent = ref_of(res.competent, &competent);
    for (size_t i = 0; i < res.ncopies; i++)
        copy_ptrs[i] = ref_of(res.copies[i], &copies[i]);
    j.copies = copy_ptrs;
    j.n_copies = res.ncopies;
    j.rule = res.rule;
    j.catalog_version = res.catalog_version;
    const char *finder = cs.discovered_by ? cs.discovered_by->org_id : "";
    j.transfer_needed = strcmp(res.competent->org_id, finder) != 0;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED;
    env.jurisdiction_resolved = &j;
    if ((rc = emit(r, txn, &env, cs.case_id, err)) != 0 ||
        (rc = router_case_put(r, txn, &j, err)) != 0)
        return rc;
    cb_metric_inc(r->m_routed);
    if (res.failed) {
        cb_metric_inc(r->m_manual);
        log_warnx("routing_failed case=%s reason=\"%s\"", cs.case_id, res.reason);
        Casebus__V1__RoutingFailed rf = CASEBUS__V1__ROUTING_FAILED__INIT;
        rf.case_ = &cs;
        rf.reason = res.reason;
        rf.assigned_to = &competent;
        Casebus__V1__Envelope fenv = CASEBUS__V1__ENVELOPE__INIT;
        fenv.body_case = CASEBUS__V1__ENVELOPE__BODY_ROUTING_FAILED;
        fenv.routing_failed = &rf;
        if ((rc = emit(r, txn, &fenv, cs.case_id, err)) != 0)
            return rc;
    }
    if (j.transfer_needed) {
        /* seed 002 §五(三)3: the finder must transfer it (3 working days, 24 h if urgent). */
        Casebus__V1__TransferRequired tq = CASEBUS__V1__TRANSFER_REQUIRED__INIT;
        tq.transfer_id = "";
        tq.case_ = &cs;
        tq.from = cs.discovered_by;
        tq.to = &competent;
        tq.copies = copy_ptrs;
        tq.n_copies = res.ncopies;
        tq.urgency = cs.urgency;
        Casebus__V1__Envelope qenv = CASEBUS__V1__ENVELOPE__INIT;
        qenv.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REQUIRED;
        qenv.transfer_required = &tq;
        if ((rc = emit(r, txn, &qenv, cs.case_id, err)) != 0)
            return rc;
    }
    return 0;
}

/* ---- TransferSent ---- */

static void to_machine(const Casebus__V1__TransferRouted *t, router_transfer_t *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->transfer_id, sizeof(m->transfer_id), "%s", t->transfer_id);
    snprintf(m->case_id, sizeof(m->case_id), "%s", t->case_ ? t->case_->case_id : "");
    snprintf(m->sender, sizeof(m->sender), "%s", t->sender ? t->sender->org_id : "");
    snprintf(m->receiver, sizeof(m->receiver), "%s", t->receiver ? t->receiver->org_id : "");
    m->state = t->state;
    m->route_count = t->route_count;
    m->dispatched = t->dispatched;
    m->returns = t->returns;
    m->state_before_return = t->state_before_return;
    snprintf(m->reviewer, sizeof(m->reviewer), "%s", t->reviewer_id ? t->reviewer_id : "");
}

/* A refusal when the case has an open transfer (or NULL: there is none). The
 * returned message is static. */
static const char *open_transfer(router_t *r, MDB_txn *txn, const char *case_id, char *msg,
                                 size_t size)
{
    Casebus__V1__TransferRouted *latest = router_case_latest_transfer(r, txn, case_id);
    if (latest == NULL)
        return NULL;
    router_transfer_t m;
    to_machine(latest, &m);
    bool open = router_transfer_open(&m);
    if (open)
        snprintf(msg, size,
                 "transfer %s of this case is %s (to %s): one transfer at a time; wait for it to "
                 "be accepted, concluded or returned",
                 m.transfer_id, router_state_name(m.state), m.receiver);
    casebus__v1__transfer_routed__free_unpacked(latest, NULL);
    return open ? msg : NULL;
}

/* Says who has jurisdiction now, and keeps it: every replica follows (the case
 * view's competent party). */
static int jurisdiction_now(router_t *r, MDB_txn *txn, Casebus__V1__JurisdictionResolved *j,
                            const Casebus__V1__Organisation *competent, int rule, bool transfer,
                            cb_error_t *err)
{
    Casebus__V1__OrgRef ref;
    Casebus__V1__JurisdictionResolved updated = *j;
    updated.competent = ref_of(competent, &ref);
    if (updated.competent == NULL)
        return 0;
    if (rule)
        updated.rule = rule;
    updated.transfer_needed = transfer;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED;
    env.jurisdiction_resolved = &updated;
    int rc = emit(r, txn, &env, j->case_ ? j->case_->case_id : "", err);
    return rc ? rc : router_case_put(r, txn, &updated, err);
}

static int store_and_route(router_t *r, MDB_txn *txn, Casebus__V1__TransferRouted *out,
                           cb_error_t *err)
{
    int rc = router_transfer_put(r, txn, out, err);
    if (rc != 0)
        return rc;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED;
    env.transfer_routed = out;
    log_info("transfer_routed transfer=%s case=%s receiver=%s route=%u", out->transfer_id,
             out->case_->case_id, out->receiver->org_id, out->route_count);
    return emit(r, txn, &env, out->case_->case_id, err);
}

static int on_transfer_sent(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__TransferSent *t = ev->env->transfer_sent;
    int rc = 0;
    Casebus__V1__JurisdictionResolved *j = router_case_get(r, txn, t->case_id);
    if (j == NULL)
        return reject(r, txn, ev, t->transfer_id, t->case_id, "transfer_sent", t->sender,
                      "unknown_case", "router has no such case", S(UNSPECIFIED), err);
    Casebus__V1__TransferRouted *stored = router_transfer_get(r, txn, t->transfer_id);
    Casebus__V1__TransferRouted out;
    if (stored) {
        /* Sent again after a return: same receiver, the new dossier. */
        router_transfer_t m;
        router_verdict_t v;
        to_machine(stored, &m);
        router_transfer_step(&m, STEP_RESEND, t->sender ? t->sender->org_id : "", NULL, &v);
        if (!v.ok) {
            rc = reject(r, txn, ev, t->transfer_id, t->case_id, "transfer_sent", t->sender, v.code,
                        v.message, m.state, err);
            goto out;
        }
        out = *stored;
        out.state = m.state;
        out.route_count = m.route_count;
    } else {
        if (t->sender && j->competent && strcmp(t->sender->org_id, j->competent->org_id) == 0) {
            rc = reject(r, txn, ev, t->transfer_id, t->case_id, "transfer_sent", t->sender,
                        "sender_is_competent",
                        "the case is within the sender's own jurisdiction: nothing to transfer",
                        S(UNSPECIFIED), err);
            goto out;
        }
        const Casebus__V1__OrgRef *finder = j->case_ ? j->case_->discovered_by : NULL;
        if (t->sender == NULL || finder == NULL || strcmp(t->sender->org_id, finder->org_id) != 0) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "only the organisation that holds the case (%s, which found it) may transfer "
                     "it; '%s' does not hold it",
                     finder ? finder->org_id : "?", t->sender ? t->sender->org_id : "");
            rc = reject(r, txn, ev, t->transfer_id, t->case_id, "transfer_sent", t->sender,
                        "not_holder", msg, S(UNSPECIFIED), err);
            goto out;
        }
        char msg[400];
        if (open_transfer(r, txn, t->case_id, msg, sizeof(msg))) {
            rc = reject(r, txn, ev, t->transfer_id, t->case_id, "transfer_sent", t->sender,
                        "transfer_open", msg, S(UNSPECIFIED), err);
            goto out;
        }
        casebus__v1__transfer_routed__init(&out);
        out.transfer_id = t->transfer_id;
        out.case_ = j->case_;
        out.sender = t->sender;
        out.receiver = j->competent; /* router decides, whatever the sender proposed */
        out.copies = j->copies;
        out.n_copies = j->n_copies;
        out.state = S(SENT);
        out.route_count = 1;
    }
    out.materials = t->materials;
    out.n_materials = t->n_materials;
    out.reason = t->reason;
    out.sent_at_ms = ev->env->recorded_at_ms;
    rc = store_and_route(r, txn, &out, err);
out:
    if (stored)
        casebus__v1__transfer_routed__free_unpacked(stored, NULL);
    casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
    return rc;
}

/* ---- steps on a transfer ---- */

static int on_step(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev, router_step_t step,
                   const char *transfer_id, const Casebus__V1__OrgRef *by, const char *decided,
                   const char *reason, const char *dispute_id, cb_error_t *err)
{
    int rc;
    const char *case_id = ev->env->case_id;
    Casebus__V1__TransferRouted *stored = router_transfer_get(r, txn, transfer_id);
    if (stored == NULL)
        return reject(r, txn, ev, transfer_id, case_id, router_step_name(step), by,
                      "unknown_transfer", "router has not routed this transfer (was it sent?)",
                      S(UNSPECIFIED), err);
    router_transfer_t m;
    router_verdict_t v;
    to_machine(stored, &m);
    if (step == STEP_RETURN && m.dispatched) {
        const Casebus__V1__Organisation *office =
            router_org_of_kind(r->reg, CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE);
        decided = office ? office->org_id : NULL;
    }
    if (step == STEP_DISPUTE && m.state == S(RETURNED)) {
        Casebus__V1__TransferRouted *latest = router_case_latest_transfer(r, txn, case_id);
        bool superseded = latest && strcmp(latest->transfer_id, transfer_id) != 0;
        if (latest)
            casebus__v1__transfer_routed__free_unpacked(latest, NULL);
        if (superseded) {
            rc = reject(r, txn, ev, transfer_id, case_id, router_step_name(step), by,
                        "superseded", "the case was transferred again since this return: "
                        "dispute the later transfer", m.state, err);
            goto out;
        }
    }
    router_transfer_step(&m, step, by ? by->org_id : "", decided, &v);
    if (!v.ok) {
        rc = reject(r, txn, ev, transfer_id, case_id, router_step_name(step), by, v.code,
                    v.message, m.state, err);
        goto out;
    }
    cb_metric_inc(r->m_transitions);
    Casebus__V1__TransferRouted out = *stored;
    Casebus__V1__OrgRef new_receiver, reviewer;
    out.state = m.state;
    out.route_count = m.route_count;
    out.returns = m.returns;
    out.reviewer_id = m.reviewer;
    out.state_before_return = m.state_before_return;
    if (v.rerouted) {
        const Casebus__V1__Organisation *o = router_org(r->reg, m.receiver);
        if (o == NULL) {
            rc = reject(r, txn, ev, transfer_id, case_id, router_step_name(step), by,
                        "unknown_organisation", "the decided organisation is not registered",
                        stored->state, err);
            goto out;
        }
        out.receiver = ref_of(o, &new_receiver);
        out.sent_at_ms = ev->env->recorded_at_ms;
    }
    Casebus__V1__TransferStateChanged sc = CASEBUS__V1__TRANSFER_STATE_CHANGED__INIT;
    sc.transfer_id = (char *)transfer_id;
    sc.case_ = stored->case_;
    sc.from_state = v.from;
    sc.to_state = step == STEP_DECIDE ? S(DECIDED) : v.to;
    sc.by = (Casebus__V1__OrgRef *)by;
    sc.sender = stored->sender;
    sc.receiver = out.receiver;
    sc.reason = (char *)(reason ? reason : "");
    sc.command_seq = ev->seq;
    sc.dispatched = m.dispatched;
    sc.returns = m.returns;
    sc.helpers = stored->helpers;
    sc.n_helpers = stored->n_helpers;
    if (m.state == S(RETURN_REQUESTED))
        sc.reviewer = ref_of(router_org(r->reg, m.reviewer), &reviewer);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_STATE_CHANGED;
    env.transfer_state_changed = &sc;
    if ((rc = emit(r, txn, &env, case_id, err)) != 0)
        goto out;
    if (step == STEP_DISPUTE) {
        /* seed 002 §五(三)4: the judicial bureau decides; §六(四): a duty-division
         * dispute goes to the staffing office. Handled first meanwhile. */
        bool duty = ev->env->dispute_raised->kind ==
                    CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION;
        Casebus__V1__OrgRef decider;
        Casebus__V1__DisputeEscalated de = CASEBUS__V1__DISPUTE_ESCALATED__INIT;
        de.dispute_id = (char *)(dispute_id ? dispute_id : "");
        de.transfer_id = (char *)transfer_id;
        de.case_ = stored->case_;
        de.raised_by = (Casebus__V1__OrgRef *)by;
        de.other_party = strcmp(by->org_id, m.sender) == 0 ? stored->receiver : stored->sender;
        de.decider = ref_of(router_org_of_kind(r->reg, duty ? CASEBUS__V1__ORG_KIND__ORG_KIND_STAFFING_OFFICE
                                                          : CASEBUS__V1__ORG_KIND__ORG_KIND_JUDICIAL_BUREAU),
                            &decider);
        de.kind = duty ? CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION
                       : CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_JURISDICTION;
        de.reason = (char *)(reason ? reason : "");
        Casebus__V1__Envelope denv = CASEBUS__V1__ENVELOPE__INIT;
        denv.body_case = CASEBUS__V1__ENVELOPE__BODY_DISPUTE_ESCALATED;
        denv.dispute_escalated = &de;
        if ((rc = emit(r, txn, &denv, case_id, err)) != 0)
            goto out;
    }
    if (step == STEP_DECIDE) {
        /* DECIDED, then concluded (finder competent) or routed anew. */
        Casebus__V1__TransferStateChanged sc2 = sc;
        sc2.from_state = S(DECIDED);
        sc2.to_state = v.to;
        env.transfer_state_changed = &sc2;
        if ((rc = emit(r, txn, &env, case_id, err)) != 0)
            goto out;
        /* The decision settles jurisdiction: said, so the case view follows it
         * (concluded: the finder; otherwise the decided organisation). */
        Casebus__V1__JurisdictionResolved *j = router_case_get(r, txn, case_id);
        if (j) {
            const char *finder = j->case_ && j->case_->discovered_by
                                     ? j->case_->discovered_by->org_id
                                     : "";
            rc = jurisdiction_now(r, txn, j, router_org(r->reg, decided), 0,
                                  strcmp(decided, finder) != 0, err);
            casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
            if (rc != 0)
                goto out;
        }
    }
    if (step == STEP_APPROVE_RETURN) {
        /* 退单 approved: the case is back with the command platform, to dispatch anew. */
        Casebus__V1__JurisdictionResolved *j = router_case_get(r, txn, case_id);
        if (j) {
            rc = jurisdiction_now(r, txn, j, router_org(r->reg, m.sender),
                                  CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_MANUAL_DISPATCH,
                                  false, err);
            casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
            if (rc != 0)
                goto out;
        }
    }
    rc = v.rerouted ? store_and_route(r, txn, &out, err) : router_transfer_put(r, txn, &out, err);
out:
    casebus__v1__transfer_routed__free_unpacked(stored, NULL);
    return rc;
}

/* ---- a duty-division dispute the staffing office could not settle ---- */

/* seed 002 §六(四): 协商不成的，提请县政府决定. The transfer stays disputed. */
static int on_referred(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__DisputeDecided *d = ev->env->dispute_decided;
    const char *case_id = ev->env->case_id;
    Casebus__V1__TransferRouted *stored = router_transfer_get(r, txn, d->transfer_id);
    if (stored == NULL)
        return reject(r, txn, ev, d->transfer_id, case_id, "dispute_decided", d->decided_by,
                      "unknown_transfer", "router has not routed this transfer", S(UNSPECIFIED),
                      err);
    int rc;
    if (stored->state != S(DISPUTED)) {
        rc = reject(r, txn, ev, d->transfer_id, case_id, "dispute_decided", d->decided_by,
                    "wrong_state", "there is no dispute to refer: the transfer is not disputed",
                    stored->state, err);
        goto out;
    }
    Casebus__V1__OrgRef gov;
    Casebus__V1__DisputeEscalated de = CASEBUS__V1__DISPUTE_ESCALATED__INIT;
    de.dispute_id = d->dispute_id;
    de.transfer_id = d->transfer_id;
    de.case_ = stored->case_;
    de.raised_by = stored->receiver;
    de.other_party = stored->sender;
    de.decider = ref_of(router_org_of_kind(r->reg, CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_GOVERNMENT),
                        &gov);
    de.kind = CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION;
    de.reason = d->reasoning;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DISPUTE_ESCALATED;
    env.dispute_escalated = &de;
    rc = emit(r, txn, &env, case_id, err);
out:
    casebus__v1__transfer_routed__free_unpacked(stored, NULL);
    return rc;
}

/* ---- Decree 310: a case public security declines or sends back ---- */

/* Public security's refusal (不予立案, the dossier returned: Decree 310 第八条)
 * or sending back for administrative handling (第十三条) routes the case to the
 * organisation competent by the catalogue, as if it were no crime: a routed
 * transfer from public security, with its own sign-for. Once per case. */
static int on_crime_step(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    const Casebus__V1__CrimeReferralStep *s = ev->env->crime_referral_step;
    bool back = s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK ||
                ((s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED ||
                  s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_ANSWERED) &&
                 !s->accepted);
    if (!back || s->case_id == NULL || *s->case_id == '\0')
        return 0;
    char transfer_id[CB_CASE_ID_MAX + 8];
    snprintf(transfer_id, sizeof(transfer_id), "B%s", s->case_id);
    Casebus__V1__TransferRouted *done = router_transfer_get(r, txn, transfer_id);
    if (done) {
        casebus__v1__transfer_routed__free_unpacked(done, NULL);
        return 0; /* sent back already */
    }
    Casebus__V1__JurisdictionResolved *j = router_case_get(r, txn, s->case_id);
    if (j == NULL || j->case_ == NULL) {
        if (j)
            casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
        return reject(r, txn, ev, transfer_id, s->case_id, "crime_referral_step", s->by,
                      "unknown_case", "router has no such case", S(UNSPECIFIED), err);
    }
    Casebus__V1__CaseSummary cs = *j->case_;
    cs.suspected_crime = false;
    router_resolution_t res;
    int rc = router_resolve(r->reg, &cs, &res, err);
    if (rc != 0)
        goto out;
    const Casebus__V1__Organisation *police =
        router_org_of_kind(r->reg, CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY);
    Casebus__V1__OrgRef sender, receiver;
    char reason[600];
    snprintf(reason, sizeof(reason), "%s%s%s",
             s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK
                 ? "public security sent the case back for administrative handling (Decree 310 "
                   "第十三条)"
                 : "public security declined to open a criminal case and returned the dossier "
                   "(Decree 310 第八条)",
             s->note && *s->note ? ": " : "", s->note ? s->note : "");
    Casebus__V1__TransferRouted out = CASEBUS__V1__TRANSFER_ROUTED__INIT;
    out.transfer_id = transfer_id;
    out.case_ = &cs;
    out.sender = police ? ref_of(police, &sender) : s->by;
    out.receiver = ref_of(res.competent, &receiver);
    out.state = S(SENT);
    out.route_count = 1;
    out.reason = reason;
    out.sent_at_ms = ev->env->recorded_at_ms;
    /* The case is now the administrative organisation's to handle: said first,
     * so every replica has the new competent party when the transfer comes. */
    Casebus__V1__JurisdictionResolved updated = *j;
    updated.competent = &receiver;
    updated.case_ = &cs;
    updated.rule = res.rule;
    updated.transfer_needed = true;
    updated.n_copies = 0;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED;
    env.jurisdiction_resolved = &updated;
    if ((rc = emit(r, txn, &env, cs.case_id, err)) != 0 ||
        (rc = router_case_put(r, txn, &updated, err)) != 0)
        goto out;
    rc = store_and_route(r, txn, &out, err);
out:
    casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
    return rc;
}

/* ---- the command platform's dispatch (分流交办, seed 003 §三(一)) ---- */

#define MAX_HELPERS 8

/* The platform may dispatch a case it holds (routing failed, a matter the
 * bureau keeps, a return it approved), and reassign (改派) one it dispatched
 * before: that dispatch is withdrawn and the new one routed. Anything else
 * another organisation holds, or a transfer still open, is refused. */
static int on_case_dispatched(router_t *r, MDB_txn *txn, const cb_bus_event_t *ev,
                              cb_error_t *err)
{
    const Casebus__V1__CaseDispatched *d = ev->env->case_dispatched;
    const char *case_id = d->case_id;
    int rc = 0;
    char msg[400];
    Casebus__V1__JurisdictionResolved *j = router_case_get(r, txn, case_id);
    if (j == NULL || j->case_ == NULL) {
        if (j)
            casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
        return reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by,
                      "unknown_case", "router has no such case", S(UNSPECIFIED), err);
    }
    Casebus__V1__TransferRouted *latest = router_case_latest_transfer(r, txn, case_id);
    const Casebus__V1__Organisation *platform =
        router_org_of_kind(r->reg, CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU);
    const Casebus__V1__Organisation *lead = d->lead ? router_org(r->reg, d->lead->org_id) : NULL;
    Casebus__V1__OrgRef platform_ref, lead_ref, helper_refs[MAX_HELPERS];
    Casebus__V1__OrgRef *helpers[MAX_HELPERS];
    size_t nhelpers = 0;
    if (platform == NULL || d->by == NULL || strcmp(d->by->org_id, platform->org_id) != 0) {
        rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by, "not_platform",
                    "only the county command platform (the enforcement bureau) dispatches",
                    S(UNSPECIFIED), err);
        goto out;
    }
    if (lead == NULL) {
        rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by,
                    "unknown_organisation", "the lead organisation is not registered",
                    S(UNSPECIFIED), err);
        goto out;
    }
    for (size_t i = 0; i < d->n_helpers && nhelpers < MAX_HELPERS; i++) {
        const Casebus__V1__Organisation *h = router_org(r->reg, d->helpers[i]->org_id);
        if (h == NULL) {
            snprintf(msg, sizeof(msg), "helper '%s' is not registered", d->helpers[i]->org_id);
            rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by,
                        "unknown_organisation", msg, S(UNSPECIFIED), err);
            goto out;
        }
        helpers[nhelpers] = ref_of(h, &helper_refs[nhelpers]);
        nhelpers++;
    }
    uint32_t returns = 0;
    bool reassign = false;
    if (latest) {
        router_transfer_t m;
        router_verdict_t v;
        to_machine(latest, &m);
        if (m.dispatched)
            returns = m.returns;
        if (router_transfer_open(&m) || (m.dispatched && m.state == S(ACCEPTED))) {
            if (!m.dispatched) {
                open_transfer(r, txn, case_id, msg, sizeof(msg));
                rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by,
                            "transfer_open", msg, m.state, err);
                goto out;
            }
            router_transfer_step(&m, STEP_WITHDRAW, d->by->org_id, NULL, &v);
            if (!v.ok) {
                rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by, v.code,
                            v.message, m.state, err);
                goto out;
            }
            Casebus__V1__TransferStateChanged sc = CASEBUS__V1__TRANSFER_STATE_CHANGED__INIT;
            sc.transfer_id = latest->transfer_id;
            sc.case_ = latest->case_;
            sc.from_state = v.from;
            sc.to_state = v.to;
            sc.by = d->by;
            sc.sender = latest->sender;
            sc.receiver = latest->receiver;
            sc.reason = d->reason;
            sc.command_seq = ev->seq;
            sc.dispatched = true;
            sc.returns = m.returns;
            sc.helpers = latest->helpers;
            sc.n_helpers = latest->n_helpers;
            Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
            env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_STATE_CHANGED;
            env.transfer_state_changed = &sc;
            latest->state = m.state;
            if ((rc = emit(r, txn, &env, case_id, err)) != 0 ||
                (rc = router_transfer_put(r, txn, latest, err)) != 0)
                goto out;
            reassign = true;
        }
    }
    if (!reassign && (j->competent == NULL || strcmp(j->competent->org_id, platform->org_id) != 0)) {
        snprintf(msg, sizeof(msg),
                 "the case is with %s (%s): the command platform dispatches the cases it holds "
                 "(failed routing, kept by the bureau, a return it approved) and reassigns its "
                 "own dispatches",
                 j->competent && j->competent->name ? j->competent->name : "?",
                 j->competent ? j->competent->org_id : "?");
        rc = reject(r, txn, ev, d->transfer_id, case_id, "case_dispatched", d->by, "not_held", msg,
                    S(UNSPECIFIED), err);
        goto out;
    }
    /* The lead is now the organisation the case belongs to; then the dispatch. */
    if ((rc = jurisdiction_now(r, txn, j, lead,
                               CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_MANUAL_DISPATCH,
                               true, err)) != 0)
        goto out;
    Casebus__V1__TransferRouted out = CASEBUS__V1__TRANSFER_ROUTED__INIT;
    out.transfer_id = d->transfer_id;
    out.case_ = j->case_;
    out.sender = ref_of(platform, &platform_ref);
    out.receiver = ref_of(lead, &lead_ref);
    out.helpers = helpers;
    out.n_helpers = nhelpers;
    out.reason = d->reason;
    out.sent_at_ms = ev->env->recorded_at_ms;
    out.state = S(SENT);
    out.route_count = 1;
    out.dispatched = true;
    out.returns = returns;
    log_info("case_dispatched case=%s transfer=%s lead=%s helpers=%zu%s", case_id,
             d->transfer_id, lead->org_id, nhelpers, reassign ? " reassigned=1" : "");
    rc = store_and_route(r, txn, &out, err);
out:
    if (latest)
        casebus__v1__transfer_routed__free_unpacked(latest, NULL);
    casebus__v1__jurisdiction_resolved__free_unpacked(j, NULL);
    return rc;
}

int router_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    router_t *r = ctx;
    const Casebus__V1__Envelope *e = ev->env;
    switch (e->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_CASE_REPORTED:
        return on_case_reported(r, txn, ev, err);
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_SENT:
        return on_transfer_sent(r, txn, ev, err);
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_RECEIVED:
        return on_step(r, txn, ev, STEP_RECEIVE, e->transfer_received->transfer_id,
                       e->transfer_received->by, NULL, NULL, NULL, err);
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ACCEPTED:
        return on_step(r, txn, ev, STEP_ACCEPT, e->transfer_accepted->transfer_id,
                       e->transfer_accepted->by, NULL, NULL, NULL, err);
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_RETURNED:
        return on_step(r, txn, ev, STEP_RETURN, e->transfer_returned->transfer_id,
                       e->transfer_returned->by, NULL, e->transfer_returned->reason, NULL, err);
    case CASEBUS__V1__ENVELOPE__BODY_DISPUTE_RAISED:
        return on_step(r, txn, ev, STEP_DISPUTE, e->dispute_raised->transfer_id,
                       e->dispute_raised->by, NULL, e->dispute_raised->reason,
                       e->dispute_raised->dispute_id, err);
    case CASEBUS__V1__ENVELOPE__BODY_DISPUTE_DECIDED:
        if (e->dispute_decided->refer_to_government)
            return on_referred(r, txn, ev, err);
        return on_step(r, txn, ev, STEP_DECIDE, e->dispute_decided->transfer_id,
                       e->dispute_decided->decided_by, e->dispute_decided->competent_org_id,
                       e->dispute_decided->reasoning, e->dispute_decided->dispute_id, err);
    case CASEBUS__V1__ENVELOPE__BODY_CRIME_REFERRAL_STEP:
        return on_crime_step(r, txn, ev, err);
    case CASEBUS__V1__ENVELOPE__BODY_CASE_DISPATCHED:
        return on_case_dispatched(r, txn, ev, err);
    case CASEBUS__V1__ENVELOPE__BODY_RETURN_REVIEWED:
        return on_step(r, txn, ev, e->return_reviewed->approved ? STEP_APPROVE_RETURN
                                                                : STEP_REJECT_RETURN,
                       e->return_reviewed->transfer_id, e->return_reviewed->by, NULL,
                       e->return_reviewed->reason, NULL, err);
    default:
        return 0; /* assistance, decisions, approvals, tokens: deadline's and intake's */
    }
}

/* ---- imports ---- */

static void source_hash(const ProtobufCBinaryData *csv, uint8_t out[32])
{
    crypto_hash_sha256(out, csv->data, csv->len);
}

void router_import_parse(router_import_t *job, const Casebus__V1__ControlRequest *req)
{
    job->catalog = req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CATALOG;
    const ProtobufCBinaryData *csv = job->catalog ? &req->import_catalog->csv : &req->import_orgs->csv;
    source_hash(csv, job->hash);
    cb_error_clear(&job->err);
    if (job->catalog) {
        job->rc = cb_catalog_parse((const char *)csv->data, csv->len, &job->matters, &job->err);
        return;
    }
    cb_org_list_t *list = &job->orgs;
    job->rc = cb_orgs_parse((const char *)csv->data, csv->len, list, &job->err);
    if (job->rc != 0)
        return;
    size_t bureaus = 0;
    for (size_t i = 0; i < list->count; i++)
        bureaus += list->orgs[i]->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
    if (bureaus != 1)
        job->rc = cb_error_set(&job->err, CB_ERR_INVALID, "kind",
                               "the registry needs exactly one ENFORCEMENT_BUREAU (the county "
                               "command platform), found %zu",
                               bureaus);
}

void router_import_free(router_import_t *job)
{
    if (job->catalog)
        cb_catalog_free(&job->matters);
    else
        cb_orgs_free(&job->orgs);
}

static int record_orgs(router_t *r, MDB_txn *txn, router_import_t *job,
                       const Casebus__V1__ImportOrgs *req, Casebus__V1__ControlReply *reply,
                       cb_error_t *err)
{
    Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
    int rc = router_next_version(r, txn, "orgs_version", &oi.version, err);
    if (rc != 0)
        return rc;
    oi.source_name = req->source_name;
    oi.source_sha256.data = job->hash;
    oi.source_sha256.len = 32;
    oi.orgs = job->orgs.orgs;
    oi.n_orgs = job->orgs.count;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED;
    env.orgs_imported = &oi;
    if ((rc = router_orgs_put(r, txn, &oi, err)) == 0 &&
        (rc = emit(r, txn, &env, NULL, err)) == 0) {
        reply->version = oi.version;
        reply->count = job->orgs.count;
        reply->event_seq = env.seq;
    }
    return rc;
}

static int record_catalog(router_t *r, MDB_txn *txn, router_import_t *job,
                          const Casebus__V1__ImportCatalog *req, Casebus__V1__ControlReply *reply,
                          cb_error_t *err)
{
    cb_matter_list_t *list = &job->matters;
    if (router_org_count(r->reg) == 0)
        return cb_error_set(err, CB_ERR_CONFLICT, "orgs",
                            "import the organisations first: the catalogue names them");
    /* The organisations a catalogue names must be registered. */
    for (size_t i = 0; i < list->count; i++) {
        const Casebus__V1__Matter *m = list->matters[i];
        const Casebus__V1__Organisation *d = m->department_id[0] ? router_org(r->reg, m->department_id)
                                                                : NULL;
        if (m->department_id[0] &&
            (d == NULL || (d->kind != CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT &&
                           d->kind != CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU)))
            return cb_error_set(err, CB_ERR_INVALID, "department_id",
                                "line %zu (department_id): '%s' is not a registered county "
                                "department",
                                list->lines[i], m->department_id);
        for (size_t k = 0; k < m->n_accepting_townships; k++)
            if (router_township(r->reg, m->accepting_townships[k]) == NULL)
                return cb_error_set(err, CB_ERR_INVALID, "townships",
                                    "line %zu (townships): township %s is not registered",
                                    list->lines[i], m->accepting_townships[k]);
    }
    Casebus__V1__CatalogImported ci = CASEBUS__V1__CATALOG_IMPORTED__INIT;
    int rc = router_next_version(r, txn, "catalog_version", &ci.version, err);
    if (rc != 0)
        return rc;
    ci.source_name = req->source_name;
    ci.source_sha256.data = job->hash;
    ci.source_sha256.len = 32;
    ci.matters = list->matters;
    ci.n_matters = list->count;
    ci.effective_from_ms = req->effective_from_ms ? req->effective_from_ms : cb_now_ms();
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CATALOG_IMPORTED;
    env.catalog_imported = &ci;
    if ((rc = router_catalog_put(r, txn, &ci, err)) == 0 &&
        (rc = emit(r, txn, &env, NULL, err)) == 0) {
        reply->version = ci.version;
        reply->count = list->count;
        reply->event_seq = env.seq;
    }
    return rc;
}

int router_import_record(router_t *r, MDB_txn *txn, router_import_t *job,
                         const Casebus__V1__ControlRequest *req, Casebus__V1__ControlReply *reply,
                         cb_error_t *err)
{
    if (job->rc != 0) {
        *err = job->err;
        return job->rc;
    }
    return job->catalog ? record_catalog(r, txn, job, req->import_catalog, reply, err)
                        : record_orgs(r, txn, job, req->import_orgs, reply, err);
}
