/*
 * cmd_case.c — the commands about a case itself: report, cancel, Decree 310's
 * referral steps, the decision, its feedback and filing, and the county's own
 * records (approvals, joint operations, periodic filings).
 */
#include "intake.h"
#include "command.h"
#include "pbjson.h"
#include "routes.h"
#include "jsonw.h"
#include "cbtime.h"
#include "codes.h"
#include "log.h"
#include "orgs.h"
#include "utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool code_chars_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* GB 11643-1999 citizen identity number: 17 digits and a check digit (0-9, X). */
static bool id_number_ok(const char *s)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    if (strlen(s) != 18)
        return false;
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        sum += (s[i] - '0') * w[i];
    }
    return s[17] == check[sum % 11];
}

static bool phone_ok(const char *s)
{
    size_t n = strlen(s), digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (!(s[i] == '-' || s[i] == ' ' || (s[i] == '+' && i == 0)))
            return false;
    }
    return digits >= 5 && digits <= 15;
}

void intake_do_report_case(INTAKE_DO_ARGS)
{
    Casebus__V1__CaseReported *r = cmd->report_case;
    char word[ENUM_WORD_MAX];
    cb_error_t e;
    Casebus__V1__CaseSummary *c = r->case_;
    /* the contract (fields.def) has checked presence, sizes and enum values */
    if (!code_chars_ok(c->matter_code)) {
        intake_reply_error(reply, 400, "invalid_field", "matter_code",
                           "matter_code must be 1-32 letters, digits, '.', '-' or '_'");
        return;
    }
    if (cb_check_township_code(c->township_code, "township_code", &e) != 0) {
        intake_reply_error(reply, 400, "invalid_field", "township_code", e.message);
        return;
    }
    if (!intake_time_ok(in, c->discovered_at_ms, now, "discovered_at", true, reply))
        return;
    Casebus__V1__Reporter *rep = r->reporter;
    if (c->source == CASEBUS__V1__SOURCE_CHANNEL__SOURCE_CHANNEL_CITIZEN_REPORT && rep == NULL) {
        intake_reply_error(reply, 400, "missing_field", "reporter",
                           "a citizen report needs a reporter (or {\"anonymous\": true})");
        return;
    }
    if (rep && !intake_str_empty(rep->phone) && !phone_ok(rep->phone)) {
        intake_reply_error(reply, 400, "invalid_field", "reporter.phone",
                           "reporter.phone must be 5-15 digits (with +, - or spaces)");
        return;
    }
    if (rep && !intake_str_empty(rep->id_number) && !id_number_ok(rep->id_number)) {
        intake_reply_error(reply, 400, "invalid_field", "reporter.id_number",
                           "reporter.id_number is not a valid 18-character resident identity "
                           "number (GB 11643 check digit)");
        return;
    }
    if (rep && !rep->anonymous && intake_str_empty(rep->name) && intake_str_empty(rep->phone)) {
        intake_reply_error(reply, 400, "missing_field", "reporter",
                           "reporter needs a name or a phone, or \"anonymous\": true");
        return;
    }
    if (r->party && !intake_str_empty(r->party->credit_code)) {
        if (r->party->is_person) {
            intake_reply_error(reply, 400, "invalid_field", "party.credit_code",
                               "a person has no unified social credit code");
            return;
        }
        if (cb_check_credit_code(r->party->credit_code, "party.credit_code", &e) != 0) {
            intake_reply_error(reply, 400, "invalid_field", "party.credit_code", e.message);
            return;
        }
    }
    if (!intake_org_ok(in, txn, c->discovered_by, "discovered_by", actor, true, reply))
        return;

    /* the summary carries the names, as every later event's does */
    char matter_name[256], township_name[256];
    intake_name_get(&in->st, txn, 'm', c->matter_code, matter_name, sizeof(matter_name));
    intake_name_get(&in->st, txn, 't', c->township_code, township_name, sizeof(township_name));
    if (intake_set_string(&c->matter_name, matter_name) ||
        intake_set_string(&c->township_name, township_name)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    char case_id[48];
    /* The first write. Refuse above it only: a report runs in the group's own
     * transaction (command.c), where a refusal after a write would leave it. */
    if (!intake_new_id(in, txn, "C", now, case_id, sizeof(case_id), reply))
        return;
    if (intake_set_string(&c->case_id, case_id) != 0) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    intake_event_t ev = {.case_id = case_id};
    if (!intake_record(in, txn, cmd, actor, now, &ev, reply,
                       "reported by %s: matter %s in township %s%s%s", c->discovered_by->name,
                       c->matter_code, c->township_code,
                       c->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY ? ", emergency" : "",
                       c->suspected_crime ? ", suspected crime" : ""))
        return;

    json_t *view = json_pack(
        "{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:b,s:s,s:s,s:o,s:s,s:o,s:{},s:{}}", "case_id", case_id,
        "source",
        cb_pb_enum_word(&casebus__v1__source_channel__descriptor, c->source, word, ENUM_WORD_MAX),
        "matter_code", c->matter_code, "township_code", c->township_code, "discovered_at",
        intake_json_time(c->discovered_at_ms), "discovered_by", intake_json_org(c->discovered_by),
        "urgency", c->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY ? "emergency" : "normal",
        "suspected_crime", c->suspected_crime, "description", c->description, "external_ref",
        c->external_ref ? c->external_ref : "", "reported_at", intake_json_time(ev.recorded_at_ms),
        "state", "reported", "competent", json_null(), "transfers", "obligations");
    if (view && rep)
        json_object_set_new(view, "reporter",
                            json_pack("{s:s,s:s,s:s,s:b}", "name", rep->name ? rep->name : "",
                                      "phone", rep->phone ? rep->phone : "", "id_number",
                                      rep->id_number ? rep->id_number : "", "anonymous",
                                      rep->anonymous));
    if (view && r->party)
        json_object_set_new(view, "party",
                            json_pack("{s:s,s:s,s:b}", "name", r->party->name, "credit_code",
                                      r->party->credit_code ? r->party->credit_code : "",
                                      "is_person", r->party->is_person));
    if (view && c->location)
        json_object_set_new(view, "location",
                            json_pack("{s:s,s:f,s:f}", "address",
                                      c->location->address ? c->location->address : "", "latitude",
                                      c->location->latitude, "longitude", c->location->longitude));
    if (view == NULL || intake_case_put(&in->st, txn, case_id, view, &e) != 0)
        intake_reply_store_error(reply,
                                 view ? &e : &(cb_error_t){CB_ERR_NOMEM, "", "out of memory"});
    json_decref(view);
}

void intake_do_cancel_case(INTAKE_DO_CASE_ARGS)
{
    Casebus__V1__CaseCancelled *c = cmd->cancel_case;
    cb_error_t e;
    Casebus__V1__Organisation *o =
        intake_org_acting(in, txn, c->by, "by", actor, CMD_CANCEL_CASE, 0, facts, reply);
    if (o == NULL)
        return;
    if (strcmp(intake_json_str(view, "state"), "cancelled") == 0)
        intake_reply_error(reply, 409, "already_cancelled", "", "the case is already cancelled");
    else if ((json_object_set_new(view, "state", json_string("cancelled")) != 0
                  ? cb_error_set(&e, CB_ERR_NOMEM, "", "out of memory")
                  : intake_case_put(&in->st, txn, cmd->target_id, view, &e)) != 0)
        intake_reply_store_error(reply, &e);
    else
        intake_record_on_case(in, txn, cmd, actor, now, NULL, NULL, reply,
                              "case cancelled by %s: %s", o->name, c->reason);
    casebus__v1__organisation__free_unpacked(o, NULL);
}

/* Decree 310 第六条: what a handover to public security carries. */
static bool referral_dossier_ok(const Casebus__V1__CrimeReferralStep *s, intake_reply_t *reply)
{
    static const struct {
        int kind;
        const char *name;
    } need[] = {
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CRIME_TRANSFER_NOTICE,
         "crime_transfer_notice (涉嫌犯罪案件移送书)"},
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CRIME_INVESTIGATION_REPORT,
         "crime_investigation_report (涉嫌犯罪案件情况的调查报告)"},
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_EXHIBIT_LIST, "exhibit_list (涉案物品清单)"},
    };
    char msg[600];
    size_t used = (size_t)snprintf(msg, sizeof(msg),
                                   "a handover to public security carries the dossier of Decree "
                                   "310 第六条; missing:");
    bool missing = false;
    for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++) {
        bool have = false;
        for (size_t i = 0; i < s->n_materials && !have; i++)
            have = (int)s->materials[i]->kind == need[k].kind;
        if (!have && used < sizeof(msg)) {
            used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s %s", missing ? "," : "",
                                     need[k].name);
            missing = true;
        }
    }
    if (missing)
        intake_reply_error(reply, 400, "missing_materials", "materials", msg);
    return !missing;
}

void intake_do_crime_step(INTAKE_DO_CASE_ARGS)
{
    Casebus__V1__CrimeReferralStep *s = cmd->crime_step;
    cb_error_t e;
    Casebus__V1__Organisation *o =
        intake_org_acting(in, txn, s->by, "by", actor, CMD_CRIME_STEP, s->step, facts, reply);
    if (o == NULL)
        return;
    if (!intake_time_ok(in, s->at_ms, now, "at", true, reply))
        goto out;
    if (s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE &&
        !referral_dossier_ok(s, reply))
        goto out;
    /* Public security's answer decides whether the administrative side may
     * decide a penalty (不得以罚代刑): only once it has declined or sent back. */
    int declined = -1;
    switch (s->step) {
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED:
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_ANSWERED:
        declined = !s->accepted;
        break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_REQUESTED: declined = 0; break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK: declined = 1; break;
    default: break;
    }
    if (declined >= 0 &&
        json_object_set_new(view, "police_declined", json_boolean(declined)) != 0) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    /* The administrative organisation of the referral: the one that records
     * its steps, told of public security's. */
    bool admin_step = o->kind != CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY &&
                      strcmp(intake_json_str(view, "referred_by"), o->org_id) != 0;
    bool handed = s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE;
    if (admin_step || handed || declined >= 0) {
        int rc = (handed && json_object_set_new(view, "referred_to_police", json_true()) != 0) ||
                         (admin_step &&
                          json_object_set_new(view, "referred_by", json_string(o->org_id)) != 0)
                     ? cb_error_set(&e, CB_ERR_NOMEM, "", "out of memory")
                     : intake_case_put(&in->st, txn, cmd->target_id, view, &e);
        if (rc != 0) {
            intake_reply_store_error(reply, &e);
            goto out;
        }
    }
    /* Every step is copied to the procuratorate (抄送) and told to the other side
     * of the handover: public security, or the administrative organisation. */
    char other[2][CB_ORG_ID_MAX + 1];
    intake_org_ids_of_kinds(&in->st, txn,
                            (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE,
                                          CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY},
                            2, other);
    const char *holder = facts->holder && *facts->holder ? facts->holder : facts->finder;
    const char *inform[] = {other[0],
                            other[1],
                            intake_json_str(view, "referred_by"),
                            holder ? holder : "",
                            facts->competent ? facts->competent : "",
                            NULL};
    if (intake_inform_set(&in->st, txn, &s->inform, &s->n_inform, inform, o->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    char word[ENUM_WORD_MAX];
    intake_record_on_case(
        in, txn, cmd, actor, now, NULL, NULL, reply, "crime referral: %s by %s",
        cb_pb_enum_word(&casebus__v1__crime_step__descriptor, s->step, word, ENUM_WORD_MAX),
        o->name);
out:
    casebus__v1__organisation__free_unpacked(o, NULL);
}

void intake_do_record_decision(INTAKE_DO_CASE_ARGS)
{
    Casebus__V1__DecisionRecorded *d = cmd->record_decision;
    char id[48];
    cb_error_t e;
    bool feedback = d->feedback_to && !intake_str_empty(d->feedback_to->org_id);
    if (!intake_org_may(in, txn, d->by, "by", actor, CMD_RECORD_DECISION, 0, facts, reply) ||
        !intake_time_ok(in, d->decided_at_ms, now, "decided_at", true, reply))
        return;
    if (feedback && !intake_org_ok(in, txn, d->feedback_to, "feedback_to", actor, false, reply))
        return;
    if (json_is_true(json_object_get(view, "referred_to_police")) &&
        !json_is_true(json_object_get(view, "police_declined"))) {
        intake_reply_error(reply, 409, "crime_referral_open", "case_id",
                           "the case is referred to public security and it has not declined it "
                           "or sent it back: no penalty in place of prosecution (不得以罚代刑, "
                           "Decree 310 第十一条, seed 000 §四(三))");
        return;
    }
    if (!intake_new_id(in, txn, "P", now, id, sizeof(id), reply))
        return;
    if (feedback &&
        intake_view_add_party(in, txn, cmd->target_id, view, d->feedback_to->org_id, &e)) {
        intake_reply_store_error(reply, &e);
        return;
    }
    /* A case referred to public security: the procuratorate is told of the
     * decision (seed 000 §四(三), 行刑衔接). */
    char procuratorate[1][CB_ORG_ID_MAX + 1] = {""};
    if (json_is_true(json_object_get(view, "referred_to_police")))
        intake_org_ids_of_kinds(&in->st, txn,
                                (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE}, 1,
                                procuratorate);
    const char *inform[] = {procuratorate[0], NULL};
    if (intake_set_string(&d->decision_id, id) ||
        intake_inform_set(&in->st, txn, &d->inform, &d->n_inform, inform, d->by->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "kind", "decision", "case_id",
                            cmd->target_id, "by", d->by->org_id, "feedback_to",
                            feedback ? d->feedback_to->org_id : "", "summary", d->summary,
                            "decided_at_ms", (json_int_t)d->decided_at_ms, "fine_fen",
                            (json_int_t)d->fine_fen, "major", d->major);
    intake_record_on_case(in, txn, cmd, actor, now, id, ref, reply, "%sdecision %s recorded by %s",
                          d->major ? "major " : "", id, d->by->name);
    json_decref(ref);
}

/* The decision a command on a case names, when it is that case's and by may
 * act on it (404, 400 or the refusal in reply otherwise); the caller frees it. */
static json_t *decision_of(intake_t *in, MDB_txn *txn, const Casebus__V1__Command *cmd,
                           const char *decision_id, Casebus__V1__OrgRef *by,
                           const intake_actor_t *actor, intake_reply_t *reply)
{
    json_t *ref = intake_ref_for(in, txn, decision_id, "decision", by, actor,
                                 (intake_cmd_kind_t)cmd->kind_case, reply);
    if (ref && strcmp(intake_json_str(ref, "case_id"), cmd->target_id) != 0) {
        intake_reply_error(reply, 400, "invalid_field", "decision_id",
                           "decision_id belongs to another case");
        json_decref(ref);
        return NULL;
    }
    return ref;
}

void intake_do_give_feedback(INTAKE_DO_CASE_ARGS)
{
    (void)view, (void)facts; /* the case is known; the decision says who may feed it back */
    Casebus__V1__FeedbackGiven *f = cmd->give_feedback;
    char msg[300];
    json_t *ref = decision_of(in, txn, cmd, f->decision_id, f->by, actor, reply);
    if (ref == NULL)
        return;
    if (!intake_org_ok(in, txn, f->to, "to", actor, false, reply))
        goto out;
    const char *due_to = intake_json_str(ref, "feedback_to");
    if (*due_to && strcmp(due_to, f->to->org_id) != 0) {
        snprintf(msg, sizeof(msg), "decision %s is to be fed back to '%s', not '%s'",
                 f->decision_id, due_to, f->to->org_id);
        intake_reply_error(reply, 400, "invalid_field", "to", msg);
        goto out;
    }
    /* What the department is told: the decision itself (seed 002 §五(一)). */
    f->decided_at_ms = json_integer_value(json_object_get(ref, "decided_at_ms"));
    f->fine_fen = json_integer_value(json_object_get(ref, "fine_fen"));
    f->major = json_is_true(json_object_get(ref, "major"));
    intake_record(in, txn, cmd, actor, now,
                  &(intake_event_t){.case_id = cmd->target_id,
                                    .id = f->decision_id,
                                    .set = {"case_id", cmd->target_id, "summary",
                                            intake_json_str(ref, "summary")}},
                  reply, "decision %s fed back by %s to %s", f->decision_id, f->by->name,
                  f->to->name);
out:
    json_decref(ref);
}

void intake_do_file_decision(INTAKE_DO_ARGS)
{
    Casebus__V1__DecisionFiled *f = cmd->file_decision;
    json_t *ref = decision_of(in, txn, cmd, f->decision_id, f->by, actor, reply);
    if (ref == NULL)
        return;
    intake_record_on_case(in, txn, cmd, actor, now, f->decision_id, NULL, reply,
                          "decision %s filed with the legal office by %s", f->decision_id,
                          f->by->name);
    json_decref(ref);
}

void intake_do_apply_joint_operation(INTAKE_DO_ARGS)
{
    Casebus__V1__JointOperationApplied *j = cmd->apply_joint_operation;
    char id[48];
    if (intake_org_ok(in, txn, j->by, "by", actor, true, reply) &&
        intake_new_id(in, txn, "J", now, id, sizeof(id), reply))
        intake_record(in, txn, cmd, actor, now,
                      &(intake_event_t){.id = id, .set = {"operation_id", id}}, reply,
                      "joint operation %s applied for by %s", id, j->by->name);
}

/* "2025" or "2026-11": the period a filing is for. */
static bool period_ok(const char *p, bool monthly)
{
    size_t n = strlen(p);
    if (n != (monthly ? 7u : 4u))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(i == 4 ? p[i] == '-' : p[i] >= '0' && p[i] <= '9'))
            return false;
    return !monthly || (atoi(p + 5) >= 1 && atoi(p + 5) <= 12);
}

void intake_do_record_filing(INTAKE_DO_ARGS)
{
    Casebus__V1__FilingRecorded *f = cmd->record_filing;
    if (!intake_org_ok(in, txn, f->by, "by", actor, true, reply))
        return;
    bool monthly = f->kind == CASEBUS__V1__FILING_KIND__FILING_KIND_MONTHLY_STATUS;
    char id[48];
    if (!period_ok(f->period, monthly))
        intake_reply_error(reply, 400, "invalid_field", "period",
                           monthly ? "period must be a month: YYYY-MM"
                                   : "period must be a year: YYYY");
    else if (intake_new_id(in, txn, "F", now, id, sizeof(id), reply))
        intake_record(in, txn, cmd, actor, now,
                      &(intake_event_t){.id = id, .set = {"filing_id", id}}, reply,
                      "filing %s for %s by %s", id, f->period, f->by->name);
}

void intake_do_record_approval(INTAKE_DO_ARGS)
{
    Casebus__V1__ApprovalRecorded *a = cmd->record_approval;
    if (!intake_org_ok(in, txn, a->by, "by", actor, true, reply))
        return;
    if (a->by->kind != CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT) {
        intake_reply_error(reply, 400, "not_a_department", "by",
                           "approvals are recorded by the county department that approved "
                           "(seed 002 §五(一))");
        return;
    }
    if (!intake_time_ok(in, a->approved_at_ms, now, "approved_at", true, reply))
        return;
    /* The enforcement side: the county's enforcement bureau, and the
     * organisation competent for the case the approval concerns. */
    char bureau[1][CB_ORG_ID_MAX + 1], competent[CB_ORG_ID_MAX + 1] = "";
    intake_org_ids_of_kinds(
        &in->st, txn, (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU}, 1, bureau);
    if (!intake_str_empty(a->case_id)) {
        json_t *view = intake_case_or_404(in, txn, a->case_id, reply);
        if (view == NULL)
            return;
        snprintf(competent, sizeof(competent), "%s",
                 intake_json_str(json_object_get(view, "competent"), "org_id"));
        json_decref(view);
    }
    char id[48];
    if (!intake_new_id(in, txn, "AP", now, id, sizeof(id), reply))
        return;
    const char *inform[] = {bureau[0], competent, NULL};
    if (intake_inform_set(&in->st, txn, &a->inform, &a->n_inform, inform, a->by->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    intake_record(in, txn, cmd, actor, now,
                  &(intake_event_t){.case_id = a->case_id, .id = id, .set = {"approval_id", id}},
                  reply, "approval %s recorded by %s", id, a->by->name);
}
