/*
 * command.h — what intake's command and view files share (command.c,
 * cmd_case.c, cmd_transfer.c, cmd_limit.c, view.c, replica.c, tokens.c):
 * the steps every command takes, and each do_<command>. Private to intake.
 */
#ifndef CB_INTAKE_COMMAND_H
#define CB_INTAKE_COMMAND_H

#include "intake.h"

#define ENUM_WORD_MAX 48

/* What intake_fill_meta replaced, so that intake_restore_meta can put it back
 * before the command is freed (its strings belong to the decoder or to
 * protobuf-c). */
typedef struct meta_saved {
    char *token_id, *idempotency_key, *request_id;
    char **acting_orgs;
    size_t n_acting_orgs;
} meta_saved_t;

/* ---- command.c ---- */
void intake_reply_store_error(intake_reply_t *reply, const cb_error_t *err);
int intake_set_string(char **dst, const char *value);
Casebus__V1__CommandMeta *intake_ensure_meta(Casebus__V1__CommandMeta **m);
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
int intake_new_id(intake_t *in, MDB_txn *txn, const char *prefix, int64_t now, char *out,
                  size_t size, cb_error_t *err);
void intake_fill_meta(Casebus__V1__CommandMeta *m, const Casebus__V1__Command *cmd,
                      const intake_actor_t *actor, char **orgs, int64_t now, meta_saved_t *saved);
void intake_restore_meta(Casebus__V1__CommandMeta *m, const meta_saved_t *saved);
bool intake_append(intake_t *in, MDB_txn *txn, Casebus__V1__Envelope *env, intake_reply_t *reply);
void intake_reply_ok(intake_reply_t *reply, int status, const char *id_name, const char *id,
                     const char *case_id, const Casebus__V1__Envelope *env);
void intake_reply_no_case(intake_reply_t *reply, const char *case_id);
json_t *intake_case_or_404(intake_t *in, MDB_txn *txn, const char *case_id, intake_reply_t *reply);
json_t *intake_ref_or_404(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
                          intake_reply_t *reply);
void intake_facts_of(json_t *view, const char *transfer_id, json_t *ref, intake_facts_t *f);
bool intake_authorized(intake_cmd_kind_t kind, const Casebus__V1__Organisation *o, int crime_step,
                       const intake_facts_t *f, const char *field, intake_reply_t *reply);
bool intake_org_may(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                    const intake_actor_t *actor, intake_cmd_kind_t kind, int crime_step,
                    const intake_facts_t *f, intake_reply_t *reply);
void intake_record(intake_t *in, MDB_txn *txn, Casebus__V1__Envelope *env,
                   Casebus__V1__CommandMeta *m, const Casebus__V1__Command *cmd,
                   const intake_actor_t *actor, int64_t now, const char *id, json_t *ref,
                   const char *summary, intake_reply_t *reply);

/* ---- cmd_case.c ---- */
void intake_do_report_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseReported *r,
                           const Casebus__V1__Command *cmd, const intake_actor_t *actor,
                           int64_t now, intake_reply_t *reply);
void intake_do_cancel_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseCancelled *c,
                           Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                           intake_reply_t *reply);
void intake_do_crime_step(intake_t *in, MDB_txn *txn, Casebus__V1__CrimeReferralStep *s,
                          Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                          intake_reply_t *reply);
void intake_do_record_decision(intake_t *in, MDB_txn *txn, Casebus__V1__DecisionRecorded *d,
                               Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                               intake_reply_t *reply);
void intake_do_give_feedback(intake_t *in, MDB_txn *txn, Casebus__V1__FeedbackGiven *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply);
void intake_do_file_decision(intake_t *in, MDB_txn *txn, Casebus__V1__DecisionFiled *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply);
void intake_do_apply_joint_operation(intake_t *in, MDB_txn *txn,
                                     Casebus__V1__JointOperationApplied *j,
                                     Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                     int64_t now, intake_reply_t *reply);
void intake_do_record_filing(intake_t *in, MDB_txn *txn, Casebus__V1__FilingRecorded *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply);
void intake_do_record_approval(intake_t *in, MDB_txn *txn, Casebus__V1__ApprovalRecorded *a,
                               Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                               intake_reply_t *reply);

/* ---- cmd_transfer.c ---- */
void intake_do_send_transfer(intake_t *in, MDB_txn *txn, Casebus__V1__TransferSent *t,
                             const Casebus__V1__Command *cmd, const intake_actor_t *actor,
                             int64_t now, intake_reply_t *reply);
void intake_do_transfer_step(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                             const intake_actor_t *actor, int64_t now, intake_reply_t *reply);
void intake_do_decide_dispute(intake_t *in, MDB_txn *txn, Casebus__V1__DisputeDecided *d,
                              Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                              intake_reply_t *reply);
void intake_do_dispatch_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseDispatched *d,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply);
void intake_do_review_return(intake_t *in, MDB_txn *txn, Casebus__V1__ReturnReviewed *rv,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply);

/* ---- cmd_limit.c ---- */
void intake_do_request_assistance(intake_t *in, MDB_txn *txn, Casebus__V1__AssistanceRequested *a,
                                  Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                  int64_t now, intake_reply_t *reply);
void intake_do_answer_assistance(intake_t *in, MDB_txn *txn, Casebus__V1__AssistanceAnswered *a,
                                 Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                 int64_t now, intake_reply_t *reply);
void intake_do_request_extension(intake_t *in, MDB_txn *txn, Casebus__V1__ExtensionRequested *x,
                                 Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                 int64_t now, intake_reply_t *reply);
void intake_do_decide_extension(intake_t *in, MDB_txn *txn, Casebus__V1__ExtensionDecided *x,
                                Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                                intake_reply_t *reply);
void intake_do_answer_supervision(intake_t *in, MDB_txn *txn, Casebus__V1__SupervisionAnswered *a,
                                  Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                  int64_t now, intake_reply_t *reply);

/* ---- view.c ---- */
const char *intake_enum_word(const ProtobufCEnumDescriptor *d, int value, char out[ENUM_WORD_MAX]);
json_t *intake_json_org(const Casebus__V1__OrgRef *r);
int intake_timeline_event(intake_t *in, MDB_txn *txn, const char *case_id, const char *producer,
                          uint64_t seq, int64_t at, const char *event, const char *summary,
                          cb_error_t *err);
int intake_view_add_party(intake_t *in, MDB_txn *txn, const char *case_id, json_t *view,
                          const char *org, cb_error_t *err);

#endif
