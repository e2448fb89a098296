/*
 * dlint.h — what deadline's handler files share (lifecycle.c, alert.c,
 * calwatch.c, handlers.c): the short names of the proto enums, the arguments
 * of opening an obligation, and the steps of an obligation's life. Private to
 * deadline; deadline.h is the daemon's.
 */
#ifndef CB_DEADLINE_DLINT_H
#define CB_DEADLINE_DLINT_H

#include "deadline.h"

#define CALV_MAX 400
#define U(x) CASEBUS__V1__TIME_UNIT__TIME_UNIT_##x
#define L(x) CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_##x
#define S(x) CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_##x
#define C(x) CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_##x
#define B(x) CASEBUS__V1__ENVELOPE__BODY_##x

#define ID_MAX (CB_CASE_ID_MAX + 64)
#define ANSWER_PREFIX "answer:" /* the id of a 督办 order's answer limit */
#define MAX_ORDERS 64

typedef struct open_args {
    dl_rule_id_t rule;
    const char *id;
    const Casebus__V1__CaseSummary *cs;
    const char *case_id; /* when cs is not at hand */
    const char *transfer_id;
    const Casebus__V1__OrgRef *responsible;
    int64_t start_ms;
    int64_t due_ms;   /* set: a fixed due instant ("N days before") */
    bool dated;       /* a date rule: due by date_day */
    int64_t date_day; /* CST day */
} open_args_t;

const Casebus__V1__Organisation *dl_org_by_kind(const deadline_t *dl, int kind);
const Casebus__V1__OrgRef *dl_ref_for(const deadline_t *dl, const char *id,
                                      const Casebus__V1__OrgRef *carried, Casebus__V1__OrgRef *buf);
int dl_emit(deadline_t *dl, MDB_txn *txn, Casebus__V1__Envelope *env,
            const Casebus__V1__Obligation *msg, cb_error_t *err);
int dl_set_str(char **field, const char *value, cb_error_t *err);
int dl_change_event(deadline_t *dl, MDB_txn *txn, Casebus__V1__Obligation *msg, int change,
                    const Casebus__V1__OrgRef *by, const char *reason, int64_t previous_due,
                    cb_error_t *err);
bool dl_counted(const dl_ob_t *o);
int dl_open_obligation(deadline_t *dl, MDB_txn *txn, const open_args_t *a, cb_error_t *err);
int dl_load(deadline_t *dl, MDB_txn *txn, const char *id, dl_ob_t *o, Casebus__V1__Obligation **msg,
            cb_error_t *err);
int dl_save(deadline_t *dl, MDB_txn *txn, const dl_ob_t *before, dl_ob_t *o,
            Casebus__V1__Obligation *msg, uint64_t fired, cb_error_t *err);
int dl_close_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int status, int64_t met_ms,
                        const cb_bus_event_t *stop, const Casebus__V1__OrgRef *by,
                        const char *reason, cb_error_t *err);
const char *dl_unit_words(const dl_ob_t *o);
int dl_pause_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms,
                        const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err);
int dl_resume_obligation(deadline_t *dl, MDB_txn *txn, const char *id, int64_t now_ms, bool reopen,
                         const Casebus__V1__OrgRef *by, const char *reason, cb_error_t *err);
int dl_calendar_missing(deadline_t *dl, MDB_txn *txn, int year, cb_error_t *err);

#endif
