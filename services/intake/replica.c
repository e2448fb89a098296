/*
 * replica.c — router's and deadline's events applied to intake's state: the
 * registry and catalogue names, the case view's routing, transfers, limits and
 * 督办 orders, and the lists.
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

static json_t *view_transfer(json_t *view, const char *transfer_id)
{
    json_t *ts = json_object_get(view, "transfers");
    if (!json_is_object(ts)) {
        ts = json_object();
        json_object_set_new(view, "transfers", ts);
    }
    json_t *t = json_object_get(ts, transfer_id);
    if (t == NULL) {
        t = json_object();
        json_object_set_new(ts, transfer_id, t);
    }
    return t;
}

static json_t *view_obligation(json_t *view, const Casebus__V1__Obligation *o)
{
    json_t *os = json_object_get(view, "obligations");
    if (!json_is_object(os)) {
        os = json_object();
        json_object_set_new(view, "obligations", os);
    }
    json_t *ob = json_object_get(os, o->obligation_id);
    if (ob == NULL) {
        ob = json_object();
        json_object_set_new(os, o->obligation_id, ob);
    }
    json_object_set_new(ob, "rule_id", json_string(o->rule_id ? o->rule_id : ""));
    json_object_set_new(ob, "title", json_string(o->rule_title ? o->rule_title : ""));
    json_object_set_new(ob, "responsible", intake_json_org(o->responsible));
    json_object_set_new(ob, "due_at", intake_json_time(o->due_at_ms));
    if (!intake_str_empty(o->transfer_id))
        json_object_set_new(ob, "transfer_id", json_string(o->transfer_id));
    return ob;
}

static const char *state_word(int s, char out[ENUM_WORD_MAX])
{
    return cb_pb_enum_word(&casebus__v1__transfer_state__descriptor, s, out, ENUM_WORD_MAX);
}

/* The 督办 order an escalation issued, kept so that its answer can be checked
 * at the door (who answers, once). A restated order keeps its first record. */
static int supervision_ref(intake_t *in, MDB_txn *txn, const Casebus__V1__Envelope *env,
                           const Casebus__V1__Escalated *es, cb_error_t *err)
{
    json_t *known = intake_ref_get(&in->st, txn, es->supervision_id);
    if (known) {
        json_decref(known);
        return 0;
    }
    const Casebus__V1__Obligation *o = es->obligation;
    json_t *sup = json_array();
    for (size_t i = 0; sup && o && i < o->n_supervisors; i++)
        json_array_append_new(sup, json_string(o->supervisors[i]->org_id));
    json_t *ref =
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:I}", "kind", "supervision", "case_id", env->case_id,
                  "obligation_id", o ? o->obligation_id : "", "responsible",
                  o && o->responsible ? o->responsible->org_id : "", "supervisors",
                  sup ? sup : json_array(), "answer_due_ms", (json_int_t)es->answer_due_ms);
    int rc = ref ? intake_ref_put(&in->st, txn, es->supervision_id, ref, err)
                 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    json_decref(ref);
    return rc;
}

int intake_apply_upstream(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    intake_t *in = ctx;
    const Casebus__V1__Envelope *env = ev->env;
    char summary[400] = "", w1[ENUM_WORD_MAX], w2[ENUM_WORD_MAX];
    int rc = 0;
    if (env->body_case == CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED) {
        for (size_t i = 0; i < env->orgs_imported->n_orgs && rc == 0; i++) {
            const Casebus__V1__Organisation *o = env->orgs_imported->orgs[i];
            rc = intake_org_put(&in->st, txn, o, err);
            if (rc == 0 && o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP)
                rc = intake_name_put(&in->st, txn, 't', o->division_code, o->name, err);
        }
        if (rc == 0)
            log_info("orgs_replicated version=%u count=%zu", env->orgs_imported->version,
                     env->orgs_imported->n_orgs);
        return rc;
    }
    if (env->body_case == CASEBUS__V1__ENVELOPE__BODY_CATALOG_IMPORTED) {
        const Casebus__V1__CatalogImported *c = env->catalog_imported;
        for (size_t i = 0; i < c->n_matters && rc == 0; i++)
            rc = intake_name_put(&in->st, txn, 'm', c->matters[i]->code, c->matters[i]->name, err);
        return rc;
    }
    if ((rc = intake_list_obligation(&in->st, txn, env, err)) != 0)
        return rc;
    if (intake_str_empty(env->case_id))
        return 0;
    json_t *view = intake_case_get(&in->st, txn, env->case_id);
    if (view == NULL)
        return 0; /* a case this intake never saw (restored elsewhere): nothing to show */
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED: {
        const Casebus__V1__JurisdictionResolved *j = env->jurisdiction_resolved;
        json_object_set_new(view, "competent", intake_json_org(j->competent));
        json_object_set_new(view, "jurisdiction_rule",
                            json_string(cb_pb_enum_word(&casebus__v1__jurisdiction_rule__descriptor,
                                                        j->rule, w1, ENUM_WORD_MAX)));
        bool platform =
            j->rule == CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_MANUAL_DISPATCH &&
            j->competent &&
            j->competent->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
        if (platform) /* with the command platform, to dispatch */
            json_object_set_new(view, "holder", intake_json_org(j->competent));
        json_object_set_new(view, "state",
                            json_string(platform             ? "manual_dispatch"
                                        : j->transfer_needed ? "transfer_required"
                                                             : "with_competent"));
        if (j->case_ && !intake_str_empty(j->case_->matter_name))
            json_object_set_new(view, "matter_name", json_string(j->case_->matter_name));
        if (j->case_ && !intake_str_empty(j->case_->township_name))
            json_object_set_new(view, "township_name", json_string(j->case_->township_name));
        snprintf(summary, sizeof(summary), "jurisdiction: %s%s",
                 j->competent ? j->competent->name : "?",
                 j->transfer_needed ? " (transfer required)" : "");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REQUIRED: {
        const Casebus__V1__TransferRequired *t = env->transfer_required;
        json_object_set_new(view, "transfer_required",
                            json_pack("{s:o,s:o,s:s}", "from", intake_json_org(t->from), "to",
                                      intake_json_org(t->to), "urgency",
                                      t->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY
                                          ? "emergency"
                                          : "normal"));
        snprintf(summary, sizeof(summary), "transfer required from %s to %s",
                 t->from ? t->from->name : "?", t->to ? t->to->name : "?");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED: {
        const Casebus__V1__TransferRouted *t = env->transfer_routed;
        /* A transfer router made itself (a case public security sends back):
         * intake learns of it here, so its receiver can act on it. */
        json_t *known = intake_ref_get(&in->st, txn, t->transfer_id);
        if (known == NULL) {
            json_t *ref = json_pack("{s:s,s:s,s:s,s:s}", "kind", "transfer", "case_id",
                                    env->case_id, "sender", t->sender ? t->sender->org_id : "",
                                    "proposed_receiver", t->receiver ? t->receiver->org_id : "");
            rc = ref ? intake_ref_put(&in->st, txn, t->transfer_id, ref, err)
                     : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            json_decref(ref);
            if (rc != 0)
                break;
        }
        json_decref(known);
        json_t *tv = view_transfer(view, t->transfer_id);
        json_object_set_new(tv, "state", json_string(state_word(t->state, w1)));
        json_object_set_new(tv, "sender", json_string(t->sender ? t->sender->org_id : ""));
        json_object_set_new(tv, "receiver", json_string(t->receiver ? t->receiver->org_id : ""));
        json_object_set_new(tv, "sign_due", intake_json_time(t->sign_due_ms));
        if (t->dispatched) {
            json_t *hs = json_array();
            for (size_t i = 0; hs && i < t->n_helpers; i++)
                json_array_append_new(hs, json_string(t->helpers[i]->org_id));
            json_object_set_new(tv, "dispatched", json_true());
            json_object_set_new(tv, "helpers", hs ? hs : json_array());
            json_object_set_new(tv, "returns", json_integer(t->returns));
        }
        json_object_set_new(view, "holder", intake_json_org(t->receiver));
        json_object_set_new(view, "state", json_string("transfer_routed"));
        snprintf(summary, sizeof(summary), "transfer %s routed to %s", t->transfer_id,
                 t->receiver ? t->receiver->name : "?");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_STATE_CHANGED: {
        const Casebus__V1__TransferStateChanged *t = env->transfer_state_changed;
        json_t *tv = view_transfer(view, t->transfer_id);
        json_object_set_new(tv, "state", json_string(state_word(t->to_state, w1)));
        json_object_set_new(tv, "receiver", json_string(t->receiver ? t->receiver->org_id : ""));
        const char *state = "transfer_in_progress";
        switch (t->to_state) {
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_ACCEPTED:
            json_object_set_new(view, "holder", intake_json_org(t->receiver));
            state = "with_competent";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURNED:
            json_object_set_new(view, "holder",
                                intake_json_org(t->sender)); /* back with the sender */
            state = t->dispatched ? "manual_dispatch" : state;
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_CONCLUDED:
            /* the judicial bureau decided for the finder: it is competent and holds it */
            json_object_set_new(view, "holder", intake_json_org(t->sender));
            json_object_set_new(view, "competent", intake_json_org(t->sender));
            state = "with_competent";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURN_REQUESTED:
            json_object_set_new(tv, "reviewer", intake_json_org(t->reviewer));
            json_object_set_new(tv, "returns", json_integer(t->returns));
            state = "return_review";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_WITHDRAWN:
            state = NULL; /* the new dispatch that replaces it says where the case is */
            break;
        default: break;
        }
        if (t->from_state == CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURN_REQUESTED)
            json_object_del(tv, "reviewer");
        if (state)
            json_object_set_new(view, "state", json_string(state));
        snprintf(summary, sizeof(summary), "transfer %s: %s -> %s%s%s", t->transfer_id,
                 state_word(t->from_state, w1), state_word(t->to_state, w2),
                 t->reviewer ? "; reviewed by " : "", t->reviewer ? t->reviewer->name : "");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REJECTED: {
        const Casebus__V1__TransferRejected *t = env->transfer_rejected;
        snprintf(summary, sizeof(summary), "refused %s on transfer %s: %s", t->command,
                 t->transfer_id, t->message);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_ROUTING_FAILED:
        json_object_set_new(view, "state", json_string("manual_dispatch"));
        json_object_set_new(view, "holder", intake_json_org(env->routing_failed->assigned_to));
        snprintf(summary, sizeof(summary), "routing failed: %s; assigned to %s",
                 env->routing_failed->reason,
                 env->routing_failed->assigned_to ? env->routing_failed->assigned_to->name : "?");
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED: {
        const Casebus__V1__Obligation *o = env->obligation_opened->obligation;
        json_t *ob = view_obligation(view, o);
        json_object_set_new(ob, "state", json_string("open"));
        /* What the door needs to check an extension: the case, who answers for
         * the limit and who may approve more time. */
        json_t *sup = json_array();
        for (size_t i = 0; sup && i < o->n_supervisors; i++)
            json_array_append_new(sup, json_string(o->supervisors[i]->org_id));
        json_t *ref = json_pack("{s:s,s:s,s:s,s:o}", "kind", "obligation", "case_id", env->case_id,
                                "responsible", o->responsible ? o->responsible->org_id : "",
                                "supervisors", sup ? sup : json_array());
        int prc = ref ? intake_ref_put(&in->st, txn, o->obligation_id, ref, err)
                      : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        json_decref(ref);
        if (prc != 0) {
            json_decref(view);
            return prc;
        }
        snprintf(summary, sizeof(summary), "time limit opened: %s",
                 env->obligation_opened->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET: {
        json_t *ob = view_obligation(view, env->obligation_met->obligation);
        json_object_set_new(ob, "state",
                            json_string(env->obligation_met->on_time ? "met" : "met_late"));
        snprintf(summary, sizeof(summary), "time limit met%s: %s",
                 env->obligation_met->on_time ? "" : " late",
                 env->obligation_met->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING:
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED: {
        const Casebus__V1__Obligation *o = cb_event_obligation(env);
        int level = cb_alert_level(env);
        if (o == NULL)
            break;
        json_object_set_new(view_obligation(view, o), "level", json_string(cb_level_name(level)));
        snprintf(summary, sizeof(summary), "%s: %s",
                 level == CB_LEVEL_YELLOW ? "yellow warning" : "red: limit passed", o->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED: {
        const Casebus__V1__Escalated *es = env->escalated;
        json_t *ob = view_obligation(view, es->obligation);
        json_object_set_new(ob, "level", json_string(cb_level_name(CB_LEVEL_ESCALATED)));
        if (!intake_str_empty(es->supervision_id)) {
            json_t *sv = json_object_get(ob, "supervision");
            if (!json_is_object(sv) || strcmp(intake_json_str(sv, "id"), es->supervision_id) != 0) {
                sv = json_pack("{s:s,s:s,s:o}", "id", es->supervision_id, "state", "open",
                               "answer_due", intake_json_time(es->answer_due_ms));
                json_object_set_new(ob, "supervision", sv ? sv : json_object());
            }
            if ((rc = supervision_ref(in, txn, env, es, err)) != 0) {
                json_decref(view);
                return rc;
            }
        }
        snprintf(summary, sizeof(summary), "escalated for supervision (督办%s%s): %s",
                 intake_str_empty(es->supervision_id) ? "" : " order ",
                 es->supervision_id ? es->supervision_id : "", es->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED: {
        const Casebus__V1__ObligationChanged *oc = env->obligation_changed;
        if (oc->obligation == NULL || intake_str_empty(oc->obligation->obligation_id))
            break;
        char word[ENUM_WORD_MAX];
        cb_pb_enum_word(&casebus__v1__obligation_change__descriptor, oc->change, word,
                        ENUM_WORD_MAX);
        json_t *ob = view_obligation(view, oc->obligation);
        static const struct {
            int change;
            const char *state;
        } states[] = {
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_PAUSED, "paused"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_RESUMED, "open"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_REOPENED, "open"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED, "cancelled"},
        };
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            if ((int)oc->change == states[i].change)
                json_object_set_new(ob, "state", json_string(states[i].state));
        snprintf(summary, sizeof(summary), "time limit %s: %s (%s)", word,
                 oc->obligation->rule_title ? oc->obligation->rule_title
                                            : oc->obligation->obligation_id,
                 oc->reason ? oc->reason : "");
        break;
    }
    default: break;
    }
    if (summary[0]) {
        if ((rc = intake_case_put(&in->st, txn, env->case_id, view, err)) == 0)
            rc = intake_timeline_event(in, txn, env->case_id, ev->producer, ev->seq,
                                       env->recorded_at_ms, cb_event_type(env), summary, err);
    }
    json_decref(view);
    return rc;
}
