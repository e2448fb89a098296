/*
 * command.h — what intake's command and view files share (command.c,
 * cmd_case.c, cmd_transfer.c, cmd_limit.c, view.c, replica.c, tokens.c):
 * the steps every command takes, and each do_<command>. Private to intake.
 */
#ifndef CB_INTAKE_COMMAND_H
#define CB_INTAKE_COMMAND_H

#include "intake.h"

#define ENUM_WORD_MAX 48

/* The event a command records (intake_record). */
typedef struct intake_event {
    const char *case_id;    /* the envelope's case; NULL for none */
    const char *id;         /* the answer's id, under the route's id_name; NULL for none */
    json_t *ref;            /* kept under id when not NULL */
    const char *set[9];     /* string fields of the body intake fills: name, value, …, NULL */
    uint64_t seq;           /* out: the event's sequence in intake's log */
    int64_t recorded_at_ms; /* out */
} intake_event_t;

/* ---- command.c ---- */

void intake_reply_store_error(intake_reply_t *reply, const cb_error_t *err);
int intake_set_string(char **dst, const char *value);
bool intake_str_empty(const char *s);
const char *intake_json_str(json_t *obj, const char *key);
bool intake_acts_for(const intake_actor_t *actor, const char *org_id);
Casebus__V1__Organisation *intake_resolve_org(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                                              const char *field, const intake_actor_t *actor,
                                              bool mine, intake_reply_t *reply);
bool intake_org_ok(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                   const intake_actor_t *actor, bool mine, intake_reply_t *reply);
bool intake_time_ok(intake_t *in, int64_t at, int64_t now, const char *field, bool required,
                    intake_reply_t *reply);
/* A new id: prefix, the CST day and its counter (C20261123-000001); false with
 * the store's refusal in reply. */
bool intake_new_id(intake_t *in, MDB_txn *txn, const char *prefix, int64_t now, char *out,
                   size_t size, intake_reply_t *reply);
void intake_reply_no_case(intake_reply_t *reply, const char *case_id);
json_t *intake_case_or_404(intake_t *in, MDB_txn *txn, const char *case_id, intake_reply_t *reply);
json_t *intake_ref_or_404(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
                          intake_reply_t *reply);
void intake_facts_of(json_t *view, const char *transfer_id, json_t *ref, intake_facts_t *f);
bool intake_authorized(intake_cmd_kind_t kind, const Casebus__V1__Organisation *o, int crime_step,
                       const intake_facts_t *f, const char *field, intake_reply_t *reply);
/* The organisation ref names, resolved (the token must act for it) and allowed
 * by authz.c to give the command (kind, crime_step) on a case with facts f;
 * NULL with the refusal in reply. The caller frees it. */
Casebus__V1__Organisation *intake_org_acting(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                                             const char *field, const intake_actor_t *actor,
                                             intake_cmd_kind_t kind, int crime_step,
                                             const intake_facts_t *f, intake_reply_t *reply);
/* intake_org_acting, when the organisation itself is not needed. */
bool intake_org_may(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                    const intake_actor_t *actor, intake_cmd_kind_t kind, int crime_step,
                    const intake_facts_t *f, intake_reply_t *reply);
/* The ref id names (404 otherwise), when by may give the command on it (the
 * refusal in reply otherwise); the caller frees it. */
json_t *intake_ref_for(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
                       Casebus__V1__OrgRef *by, const intake_actor_t *actor,
                       intake_cmd_kind_t cmd_kind, intake_reply_t *reply);
/* Records cmd's body as its event: fills ev->set's fields and the body's meta,
 * appends it in an envelope for ev->case_id, keeps ev->ref under ev->id, puts
 * fmt's note on the case's timeline and the answer (the route's status and
 * id) in reply. Returns whether all of it was done; the refusal is in reply
 * otherwise. */
bool intake_record(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                   const intake_actor_t *actor, int64_t now, intake_event_t *ev,
                   intake_reply_t *reply, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* intake_record for a command on the case in its path: the body's case_id is
 * that case, and the answer's id is id (NULL: the case's). */
bool intake_record_on_case(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                           const intake_actor_t *actor, int64_t now, const char *id, json_t *ref,
                           intake_reply_t *reply, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

/* ---- cmd_case.c ---- */

/* ---- cmd_transfer.c ---- */

/* ---- cmd_limit.c ---- */

/* ---- view.c ---- */
json_t *intake_json_org(const Casebus__V1__OrgRef *r);
int intake_timeline_event(intake_t *in, MDB_txn *txn, const char *case_id, const char *producer,
                          uint64_t seq, int64_t at, const char *event, const char *summary,
                          cb_error_t *err);
int intake_view_add_party(intake_t *in, MDB_txn *txn, const char *case_id, json_t *view,
                          const char *org, cb_error_t *err);

/* One command: its body is cmd's, already checked against the contract; the
 * answer (and on success the event) goes in reply. */
#define INTAKE_DO_ARGS                                                                             \
    intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd, const intake_actor_t *actor,            \
        int64_t now, intake_reply_t *reply
typedef void intake_do_fn(INTAKE_DO_ARGS);
intake_do_fn intake_do_report_case, intake_do_file_decision, intake_do_apply_joint_operation,
    intake_do_record_filing, intake_do_record_approval, intake_do_transfer_step,
    intake_do_decide_dispute, intake_do_review_return, intake_do_answer_assistance,
    intake_do_extension, intake_do_answer_supervision;
/* One command on the case in its path (cmd->target_id): intake_execute has
 * found it (404 otherwise) and passes its view, which the handler may change
 * and intake_execute frees, with the facts authz needs about it. */
#define INTAKE_DO_CASE_ARGS                                                                        \
    intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd, const intake_actor_t *actor,            \
        int64_t now, json_t *view, const intake_facts_t *facts, intake_reply_t *reply
typedef void intake_do_case_fn(INTAKE_DO_CASE_ARGS);
intake_do_case_fn intake_do_cancel_case, intake_do_crime_step, intake_do_record_decision,
    intake_do_give_feedback, intake_do_send_transfer, intake_do_dispatch_case,
    intake_do_request_assistance;

#endif
