/*
 * cmd_limit.c — the commands that answer or move a time limit: requests for
 * technical help and their answers, extensions, and answers to 督办 orders.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void intake_do_request_assistance(INTAKE_DO_CASE_ARGS)
{
    Casebus__V1__AssistanceRequested *a = cmd->request_assistance;
    char id[48];
    cb_error_t e;
    if (!intake_org_may(in, txn, a->requested_by, "requested_by", actor, CMD_REQUEST_ASSISTANCE, 0,
                        facts, reply) ||
        !intake_org_ok(in, txn, a->to, "to", actor, false, reply))
        return;
    if (a->letter_received_at_ms == 0)
        a->letter_received_at_ms = now;
    if (!intake_time_ok(in, a->letter_received_at_ms, now, "letter_received_at", true, reply) ||
        !intake_new_id(in, txn, "A", now, id, sizeof(id), reply))
        return;
    if (intake_view_add_party(in, txn, cmd->target_id, view, a->to->org_id, &e) != 0) {
        intake_reply_store_error(reply, &e);
        return;
    }
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "assistance", "case_id",
                            cmd->target_id, "requested_by", a->requested_by->org_id, "to",
                            a->to->org_id, "question", a->question);
    intake_record_on_case(in, txn, cmd, actor, now, id, ref, reply,
                          "assistance %s requested by %s from %s", id, a->requested_by->name,
                          a->to->name);
    json_decref(ref);
}

void intake_do_answer_assistance(INTAKE_DO_ARGS)
{
    Casebus__V1__AssistanceAnswered *a = cmd->answer_assistance;
    json_t *ref = intake_ref_for(in, txn, cmd->target_id, "assistance", a->by, actor,
                                 CMD_ANSWER_ASSISTANCE, reply);
    if (ref == NULL)
        return;
    /* The answer goes to whoever asked, with the question (seed 002 §五(二)). */
    Casebus__V1__Organisation *asker =
        intake_org_get(&in->st, txn, intake_json_str(ref, "requested_by"));
    if (a->requested_by)
        casebus__v1__org_ref__free_unpacked(a->requested_by, NULL);
    a->requested_by = asker ? intake_owned_ref(asker) : NULL;
    if (asker)
        casebus__v1__organisation__free_unpacked(asker, NULL);
    if (asker && !a->requested_by) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    const char *case_id = intake_json_str(ref, "case_id");
    intake_record(in, txn, cmd, actor, now,
                  &(intake_event_t){.case_id = case_id,
                                    .id = cmd->target_id,
                                    .set = {"assistance_id", cmd->target_id, "case_id", case_id,
                                            "question", intake_json_str(ref, "question")}},
                  reply, "assistance %s answered by %s", cmd->target_id, a->by->name);
out:
    json_decref(ref);
}

/* An extension's event, on the obligation's case. */
static void record_on_obligation(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                                 const intake_actor_t *actor, int64_t now, json_t *ref,
                                 intake_reply_t *reply, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void record_on_obligation(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                                 const intake_actor_t *actor, int64_t now, json_t *ref,
                                 intake_reply_t *reply, const char *fmt, ...)
{
    char note[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    const char *case_id = intake_json_str(ref, "case_id");
    intake_record(in, txn, cmd, actor, now,
                  &(intake_event_t){.case_id = case_id,
                                    .id = cmd->target_id,
                                    .set = {"obligation_id", cmd->target_id, "case_id", case_id}},
                  reply, "%s", note);
}

/* The organisation ids a stored obligation reference lists under key. */
static bool ref_lists(json_t *ref, const char *key, const char *org_id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(ref, key), i,
                       v) if (strcmp(json_string_value(v) ? json_string_value(v) : "", org_id) ==
                              0) return true;
    return false;
}

/* Extensions (延期): the responsible organisation asks, before the limit; a
 * supervisor the rule names decides. deadline judges the timing: 202, and the
 * verdict on the tail. */
void intake_do_extension(INTAKE_DO_ARGS)
{
    bool request = cmd->kind_case == CASEBUS__V1__COMMAND__KIND_REQUEST_EXTENSION;
    Casebus__V1__OrgRef *by = request ? cmd->request_extension->by : cmd->decide_extension->by;
    char msg[300];
    json_t *ref = intake_ref_or_404(in, txn, cmd->target_id, "obligation", reply);
    if (ref == NULL)
        return;
    if (!intake_org_ok(in, txn, by, "by", actor, true, reply))
        goto out;
    const char *responsible = intake_json_str(ref, "responsible");
    if (request && strcmp(responsible, by->org_id) != 0) {
        snprintf(msg, sizeof(msg), "only the responsible organisation ('%s') may ask for more time",
                 responsible);
        intake_reply_error(reply, 403, "not_responsible", "by", msg);
    } else if (!request && !ref_lists(ref, "supervisors", by->org_id)) {
        snprintf(msg, sizeof(msg), "'%s' does not supervise obligation %s", by->org_id,
                 cmd->target_id);
        intake_reply_error(reply, 403, "not_supervisor", "by", msg);
    } else if (request) {
        record_on_obligation(in, txn, cmd, actor, now, ref, reply,
                             "extension of %s by %u asked by %s", cmd->target_id,
                             cmd->request_extension->extra_length, by->name);
    } else {
        record_on_obligation(in, txn, cmd, actor, now, ref, reply, "extension of %s %s by %s",
                             cmd->target_id,
                             cmd->decide_extension->approved ? "approved" : "refused", by->name);
    }
out:
    json_decref(ref);
}

void intake_do_answer_supervision(INTAKE_DO_ARGS)
{
    Casebus__V1__SupervisionAnswered *a = cmd->answer_supervision;
    char msg[300];
    json_t *ref = intake_ref_for(in, txn, cmd->target_id, "supervision", a->by, actor,
                                 CMD_ANSWER_SUPERVISION, reply);
    if (ref == NULL)
        return;
    if (json_is_true(json_object_get(ref, "answered"))) {
        snprintf(msg, sizeof(msg), "supervision order %s was answered already (%s)", cmd->target_id,
                 intake_json_str(ref, "answered_at"));
        intake_reply_error(reply, 409, "already_answered", "supervision_id", msg);
        goto out;
    }
    /* Who issued the order learns the answer: the supervisors of the limit. */
    const char *ids[INTAKE_MAX_PARTIES + 1];
    size_t n = 0, i;
    json_t *sup;
    json_array_foreach(json_object_get(ref, "supervisors"), i, sup)
    {
        if (n < INTAKE_MAX_PARTIES && json_is_string(sup))
            ids[n++] = json_string_value(sup);
    }
    ids[n] = NULL;
    if (intake_inform_set(&in->st, txn, &a->inform, &a->n_inform, ids, a->by->org_id) != 0) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    char when[40];
    cb_time_format_cst(now, when, sizeof(when));
    json_object_set_new(ref, "answered", json_true());
    json_object_set_new(ref, "answered_at", json_string(when));
    const char *case_id = intake_json_str(ref, "case_id");
    if (intake_record(
            in, txn, cmd, actor, now,
            &(intake_event_t){.case_id = case_id,
                              .id = cmd->target_id,
                              .ref = ref,
                              .set = {"supervision_id", cmd->target_id, "obligation_id",
                                      intake_json_str(ref, "obligation_id"), "case_id", case_id}},
            reply, "supervision order %s (督办) answered by %s", cmd->target_id, a->by->name)) {
        json_t *view = intake_case_get(&in->st, txn, a->case_id);
        json_t *sv = json_object_get(
            json_object_get(json_object_get(view, "obligations"), a->obligation_id), "supervision");
        cb_error_t e;
        if (json_is_object(sv) && strcmp(intake_json_str(sv, "id"), cmd->target_id) == 0) {
            json_object_set_new(sv, "state", json_string("answered"));
            json_object_set_new(sv, "answered_at", intake_json_time(now));
            if (intake_case_put(&in->st, txn, a->case_id, view, &e) != 0)
                intake_reply_store_error(reply, &e);
        }
        json_decref(view);
    }
out:
    json_decref(ref);
}
