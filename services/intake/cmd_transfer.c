/*
 * cmd_transfer.c — the commands about a transfer: sending it (with its
 * materials, seed 002 §五(三)), the receiver's steps, disputes and their
 * decision, and the command platform's dispatch and return review.
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

/* Which transfer materials are there (seed 002 §五(三)): a transfer letter, the
 * case-source material, preliminary evidence, the reason, the leader's approval. */
static bool materials_ok(const Casebus__V1__TransferSent *t, intake_reply_t *reply)
{
    bool letter = false, source = false, evidence = false;
    for (size_t i = 0; i < t->n_materials; i++) {
        switch (t->materials[i]->kind) {
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_TRANSFER_LETTER: letter = true; break;
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CASE_SOURCE: source = true; break;
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_PARTY_INFO:
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_APPROVAL_INFO:
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_INVESTIGATION: evidence = true; break;
        default: break;
        }
    }
    char missing[600] = "";
    size_t n = 0;
#define MISSING(cond, text)                                                                        \
    if (!(cond)) {                                                                                 \
        strncat(missing, n++ ? "; " : "", sizeof(missing) - strlen(missing) - 1);                  \
        strncat(missing, text, sizeof(missing) - strlen(missing) - 1);                             \
    }
    MISSING(letter, "transfer_letter (移送函)");
    MISSING(source, "case_source (案件来源材料: 现场检查记录/举报投诉材料)");
    MISSING(evidence, "evidence (初步证据: party_info, approval_info or investigation)");
    MISSING(!intake_str_empty(t->reason), "reason (移送理由)");
    MISSING(!intake_str_empty(t->approved_by) && t->approved_at_ms != 0,
            "approved_by and approved_at (部门负责人审批)");
#undef MISSING
    if (n == 0)
        return true;
    char msg[700];
    snprintf(msg, sizeof(msg), "the transfer is incomplete (seed 002 §五(三)); missing: %s",
             missing);
    intake_reply_error(reply, 400, "missing_materials", "materials", msg);
    return false;
}

void intake_do_send_transfer(INTAKE_DO_CASE_ARGS)
{
    Casebus__V1__TransferSent *t = cmd->send_transfer;
    char msg[400];
    bool emergency = strcmp(intake_json_str(view, "urgency"), "emergency") == 0;
    Casebus__V1__Organisation *sender =
        intake_resolve_org(in, txn, t->sender, "sender", actor, true, reply);
    if (sender == NULL)
        return;
    /* seed 002 §五(三)1: internal and dispatched units may not transfer in their
     * own name. */
    if (sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ||
        sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT) {
        Casebus__V1__Organisation *parent = intake_org_get(&in->st, txn, sender->parent_id);
        snprintf(msg, sizeof(msg),
                 "%s (%s) is %s unit of %s (%s) and may not send a transfer in its own name; "
                 "send it in the name of %s (seed 002 §五(三)1)",
                 sender->name, sender->org_id,
                 sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ? "an internal"
                                                                               : "a dispatched",
                 parent ? parent->name : sender->parent_id, sender->parent_id,
                 parent ? parent->name : sender->parent_id);
        if (parent)
            casebus__v1__organisation__free_unpacked(parent, NULL);
        casebus__v1__organisation__free_unpacked(sender, NULL);
        intake_reply_error(reply, 400, "unit_may_not_transfer", "sender", msg);
        return;
    }
    bool may = intake_authorized(CMD_SEND_TRANSFER, sender, 0, facts, "sender", reply);
    /* One transfer of a case at a time (router, the authority, refuses it too). */
    static const char *const open_states[] = {"sent",    "received",         "disputed",
                                              "decided", "return_requested", NULL};
    const char *tid;
    json_t *tv;
    json_object_foreach(json_object_get(view, "transfers"), tid, tv)
    {
        for (size_t i = 0; may && open_states[i]; i++)
            if (strcmp(intake_json_str(tv, "state"), open_states[i]) == 0) {
                snprintf(msg, sizeof(msg),
                         "transfer %s of this case is %s (to %s): one transfer at a time; wait "
                         "for it to be accepted, concluded or returned",
                         tid, open_states[i], intake_json_str(tv, "receiver"));
                intake_reply_error(reply, 409, "transfer_open", "case_id", msg);
                may = false;
            }
    }
    casebus__v1__organisation__free_unpacked(sender, NULL);
    if (!may)
        return;
    if (!intake_str_empty(t->proposed_receiver_id)) {
        Casebus__V1__Organisation *r = intake_org_get(&in->st, txn, t->proposed_receiver_id);
        if (r == NULL) {
            snprintf(msg, sizeof(msg), "receiver: unknown organisation '%s'",
                     t->proposed_receiver_id);
            intake_reply_error(reply, 400, "unknown_organisation", "receiver", msg);
            return;
        }
        casebus__v1__organisation__free_unpacked(r, NULL);
    }
    if (!materials_ok(t, reply))
        return;
    if (!intake_time_ok(in, t->approved_at_ms, now, "approved_at", true, reply))
        return;
    /* seed 002 §五(三)3: in an emergency, order the party to stop at once, tell the
     * competent party, and transfer within 24 hours. */
    if (emergency && (t->stop_ordered_at_ms == 0 || t->competent_informed_at_ms == 0)) {
        cb_contract_report_t rep;
        cb_contract_report_init(&rep);
        if (t->stop_ordered_at_ms == 0)
            cb_contract_missing(&rep, "stop_ordered_at");
        if (t->competent_informed_at_ms == 0)
            cb_contract_missing(&rep, "competent_informed_at");
        cb_error_set(&rep.err, CB_ERR_MISSING, rep.missing[0],
                     "an emergency transfer needs %s%s%s: when the party was ordered to stop "
                     "(责令停止) and when the competent party was told (seed 002 §五(三)3)",
                     rep.missing[0], rep.nmissing > 1 ? " and " : "",
                     rep.nmissing > 1 ? rep.missing[1] : "");
        intake_reply_refused(reply, &rep);
        return;
    }
    if (!intake_time_ok(in, t->stop_ordered_at_ms, now, "stop_ordered_at", false, reply) ||
        !intake_time_ok(in, t->competent_informed_at_ms, now, "competent_informed_at", false,
                        reply))
        return;

    char id[48];
    if (!intake_new_id(in, txn, "T", now, id, sizeof(id), reply))
        return;
    json_t *ref =
        json_pack("{s:s,s:s,s:s,s:s}", "kind", "transfer", "case_id", cmd->target_id, "sender",
                  t->sender->org_id, "proposed_receiver", t->proposed_receiver_id);
    intake_record_on_case(in, txn, cmd, actor, now, id, ref, reply,
                          "transfer %s sent by %s (%zu materials)%s", id, t->sender->name,
                          t->n_materials, emergency ? ", emergency" : "");
    json_decref(ref);
}

/* receipt / acceptance / return / dispute: the transfer must exist, `by` must be
 * one of the token's organisations; router judges the state. */
/* One party a county department, the other the enforcement bureau. */
static bool duty_division_parties(intake_t *in, MDB_txn *txn, const char *a, const char *b)
{
    int kinds[2] = {0, 0};
    const char *ids[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, ids[i]);
        if (o) {
            kinds[i] = o->kind;
            casebus__v1__organisation__free_unpacked(o, NULL);
        }
    }
    const int dept = CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT,
              bureau = CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
    return (kinds[0] == dept && kinds[1] == bureau) || (kinds[0] == bureau && kinds[1] == dept);
}

/* The facts authz needs about a transfer of case_id (held by the returned view,
 * which the caller frees; an empty one when the case is not known here). */
static json_t *transfer_facts(intake_t *in, MDB_txn *txn, const char *case_id,
                              const char *transfer_id, json_t *ref, intake_facts_t *facts)
{
    json_t *view = intake_case_get(&in->st, txn, case_id);
    if (view == NULL)
        view = json_object();
    intake_facts_of(view, transfer_id, ref, facts);
    return view;
}

void intake_do_transfer_step(INTAKE_DO_ARGS)
{
    static const struct {
        int kind;
        const char *verb;
    } steps[] = {
        {CASEBUS__V1__COMMAND__KIND_RECEIVE_TRANSFER, "signed for (签收)"},
        {CASEBUS__V1__COMMAND__KIND_ACCEPT_TRANSFER, "accepted"},
        {CASEBUS__V1__COMMAND__KIND_RETURN_TRANSFER, "returned"},
        {CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE, "disputed"},
    };
    const char *verb = NULL;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if ((int)cmd->kind_case == steps[i].kind)
            verb = steps[i].verb;
    if (verb == NULL) {
        intake_reply_error(reply, 400, "invalid_command", "", "not a transfer step");
        return;
    }
    /* every step's body names who takes it in `by` */
    Casebus__V1__OrgRef *by = (Casebus__V1__OrgRef *)cb_pb_message_named(
        cb_pb_message_field(&cmd->base, (unsigned)cmd->kind_case), "by");
    json_t *ref = intake_ref_or_404(in, txn, cmd->target_id, "transfer", reply);
    if (ref == NULL)
        return;
    const char *case_id = intake_json_str(ref, "case_id");
    bool dispute = cmd->kind_case == CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE;
    intake_facts_t facts;
    json_t *view = transfer_facts(in, txn, case_id, cmd->target_id, ref, &facts);
    bool may = intake_org_may(in, txn, by, "by", actor, (intake_cmd_kind_t)cmd->kind_case, 0,
                              &facts, reply);
    /* seed 002 §六(四): a duty-division dispute is between a department and the
     * enforcement bureau. */
    if (may && dispute &&
        cmd->raise_dispute->kind == CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION &&
        !duty_division_parties(in, txn, facts.transfer_sender, facts.transfer_receiver)) {
        intake_reply_error(reply, 400, "not_duty_division", "kind",
                           "a duty-division dispute (职责分工争议) is between a county department "
                           "and the enforcement bureau (seed 002 §六(四)); this transfer's "
                           "parties are not: raise a jurisdiction dispute instead");
        may = false;
    }
    json_decref(view);
    char dispute_id[48] = "";
    json_t *new_ref = NULL;
    if (may && dispute) {
        may = intake_new_id(in, txn, "D", now, dispute_id, sizeof(dispute_id), reply);
        bool duty =
            cmd->raise_dispute->kind == CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION;
        new_ref = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "dispute", "case_id", case_id,
                            "transfer_id", cmd->target_id, "raised_by", by->org_id, "stage",
                            duty ? "staffing_office" : "judicial_bureau");
    }
    if (may)
        intake_record(in, txn, cmd, actor, now,
                      &(intake_event_t){.case_id = case_id,
                                        .id = dispute ? dispute_id : cmd->target_id,
                                        .ref = new_ref,
                                        .set = {"transfer_id", cmd->target_id,
                                                dispute ? "dispute_id" : NULL, dispute_id}},
                      reply, "transfer %s %s by %s%s%s", cmd->target_id, verb, by->name,
                      dispute ? ", dispute " : "", dispute_id);
    json_decref(new_ref);
    json_decref(ref);
}

void intake_do_decide_dispute(INTAKE_DO_ARGS)
{
    Casebus__V1__DisputeDecided *d = cmd->decide_dispute;
    char msg[300];
    cb_error_t e;
    json_t *ref = intake_ref_or_404(in, txn, cmd->target_id, "dispute", reply);
    if (ref == NULL)
        return;
    const char *case_id = json_string_value(json_object_get(ref, "case_id"));
    const char *transfer_id = json_string_value(json_object_get(ref, "transfer_id"));
    Casebus__V1__Organisation *o =
        intake_resolve_org(in, txn, d->decided_by, "decided_by", actor, true, reply);
    if (o == NULL)
        goto out;
    /* seed 002 §五(三)4: the judicial bureau decides jurisdiction disputes;
     * §六(四): the staffing office coordinates duty-division disputes and, when
     * that fails, the county government decides. */
    int kind = o->kind;
    casebus__v1__organisation__free_unpacked(o, NULL);
    const char *stage = intake_json_str(ref, "stage");
    bool staffing = strcmp(stage, "staffing_office") == 0;
    bool government = strcmp(stage, "county_government") == 0;
    if (!staffing && !government && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_JUDICIAL_BUREAU) {
        intake_reply_error(reply, 403, "not_judicial_bureau", "decided_by",
                           "only the judicial bureau (司法局) decides jurisdiction disputes "
                           "(seed 002 §五(三)4)");
        goto out;
    }
    if ((staffing && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_STAFFING_OFFICE) ||
        (government && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_GOVERNMENT)) {
        intake_reply_error(reply, 403, "not_decider", "decided_by",
                           staffing ? "the staffing office (编办) coordinates this duty-division "
                                      "dispute (seed 002 §六(四))"
                                    : "the county government decides this duty-division dispute, "
                                      "the staffing office having referred it (seed 002 §六(四))");
        goto out;
    }
    if (d->refer_to_government && !staffing) {
        intake_reply_error(reply, 400, "invalid_field", "refer_to_government",
                           "only the staffing office refers a duty-division dispute to the county "
                           "government");
        goto out;
    }
    if (d->refer_to_government) {
        /* Recorded, and the dispute waits for the county government. */
        if (json_object_set_new(ref, "stage", json_string("county_government")) != 0 ||
            intake_ref_put(&in->st, txn, cmd->target_id, ref, &e) != 0) {
            intake_reply_store_error(reply, &e);
            goto out;
        }
        snprintf(msg, sizeof(msg), "dispute %s referred by %s to the county government",
                 cmd->target_id, d->decided_by->name);
        goto record;
    }
    Casebus__V1__Organisation *comp = intake_org_get(&in->st, txn, d->competent_org_id);
    if (comp == NULL) {
        snprintf(msg, sizeof(msg), "competent_org: unknown organisation '%s'",
                 d->competent_org_id ? d->competent_org_id : "");
        intake_reply_error(reply, 400, "unknown_organisation", "competent_org", msg);
        goto out;
    }
    snprintf(msg, sizeof(msg), "dispute %s decided by %s: %s has jurisdiction", cmd->target_id,
             d->decided_by->name, comp->name);
    casebus__v1__organisation__free_unpacked(comp, NULL);
record:
    intake_record(
        in, txn, cmd, actor, now,
        &(intake_event_t){.case_id = case_id,
                          .id = cmd->target_id,
                          .set = {"dispute_id", cmd->target_id, "transfer_id", transfer_id}},
        reply, "%s", msg);
out:
    json_decref(ref);
}

static bool unit_kind(int kind)
{
    return kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ||
           kind == CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT;
}

/* A lead or helper of a dispatch: registered, not a unit, not the platform. */
static bool dispatch_party_ok(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                              const char *field, const char *platform, const intake_actor_t *actor,
                              intake_reply_t *reply)
{
    char msg[300];
    Casebus__V1__Organisation *o = intake_resolve_org(in, txn, ref, field, actor, false, reply);
    if (o == NULL)
        return false;
    bool unit = unit_kind(o->kind), self = strcmp(o->org_id, platform) == 0;
    if (unit)
        snprintf(msg, sizeof(msg),
                 "%s: %s (%s) is a unit of %s and takes no case in its own name; dispatch to %s",
                 field, o->name, o->org_id, o->parent_id, o->parent_id);
    else if (self)
        snprintf(msg, sizeof(msg),
                 "%s: the command platform dispatches to another organisation, not to itself",
                 field);
    casebus__v1__organisation__free_unpacked(o, NULL);
    if (unit || self) {
        intake_reply_error(reply, 400, "invalid_field", field, msg);
        return false;
    }
    return true;
}

void intake_do_dispatch_case(INTAKE_DO_CASE_ARGS)
{
    (void)view;
    Casebus__V1__CaseDispatched *d = cmd->dispatch_case;
    char msg[400], field[32];
    if (!intake_org_may(in, txn, d->by, "by", actor, CMD_DISPATCH_CASE, 0, facts, reply) ||
        !dispatch_party_ok(in, txn, d->lead, "lead", d->by->org_id, actor, reply))
        return;
    for (size_t i = 0; i < d->n_helpers; i++) {
        snprintf(field, sizeof(field), "helpers[%zu]", i);
        if (!dispatch_party_ok(in, txn, d->helpers[i], field, d->by->org_id, actor, reply))
            return;
        bool twice = strcmp(d->helpers[i]->org_id, d->lead->org_id) == 0;
        for (size_t k = 0; k < i && !twice; k++)
            twice = strcmp(d->helpers[i]->org_id, d->helpers[k]->org_id) == 0;
        if (twice) {
            snprintf(msg, sizeof(msg), "%s: '%s' is named twice (as lead or helper)", field,
                     d->helpers[i]->org_id);
            intake_reply_error(reply, 400, "invalid_field", field, msg);
            return;
        }
    }
    char id[48];
    if (!intake_new_id(in, txn, "T", now, id, sizeof(id), reply))
        return;
    json_t *ref =
        json_pack("{s:s,s:s,s:s,s:s,s:b}", "kind", "transfer", "case_id", cmd->target_id, "sender",
                  d->by->org_id, "proposed_receiver", d->lead->org_id, "dispatched", 1);
    intake_record_on_case(in, txn, cmd, actor, now, id, ref, reply,
                          "dispatched as %s to %s (lead)%s%zu helpers by %s", id, d->lead->name,
                          d->n_helpers ? " with " : ", ", d->n_helpers, d->by->name);
    json_decref(ref);
}

void intake_do_review_return(INTAKE_DO_ARGS)
{
    Casebus__V1__ReturnReviewed *rv = cmd->review_return;
    char msg[300];
    json_t *ref = intake_ref_or_404(in, txn, cmd->target_id, "transfer", reply);
    if (ref == NULL)
        return;
    if (!json_is_true(json_object_get(ref, "dispatched"))) {
        snprintf(msg, sizeof(msg),
                 "transfer %s is not a dispatch of the command platform: its return needs no "
                 "review (the sender sends it again or disputes it)",
                 cmd->target_id);
        intake_reply_error(reply, 409, "not_a_dispatch", "transfer_id", msg);
        goto out;
    }
    const char *case_id = intake_json_str(ref, "case_id");
    intake_facts_t facts;
    json_t *view = transfer_facts(in, txn, case_id, cmd->target_id, ref, &facts);
    bool may = intake_org_may(in, txn, rv->by, "by", actor, CMD_REVIEW_RETURN, 0, &facts, reply);
    if (may)
        intake_record(in, txn, cmd, actor, now,
                      &(intake_event_t){.case_id = case_id,
                                        .id = cmd->target_id,
                                        .set = {"transfer_id", cmd->target_id}},
                      reply, "return of %s %s by %s", cmd->target_id,
                      rv->approved ? "approved (back to the command platform)"
                                   : "rejected (stays with the receiver)",
                      rv->by->name);
    json_decref(view);
out:
    json_decref(ref);
}
