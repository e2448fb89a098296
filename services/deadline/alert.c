/*
 * alert.c — what happens when an obligation's timer key comes due: the yellow
 * warning, the red breach, and each 督办 escalation, with its order and the
 * order's own answer limit. The timer (fire.c) decides when; this decides
 * what.
 */
#include "deadline.h"
#include "dlint.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The order an escalation of obligation id is: while the last order on it is
 * unanswered, the same order restated; otherwise a new one, whose answer is an
 * obligation of its own (supervision_answer). An escalation of that answer
 * restates the order it answers. sid gets the order's id, *answer_due when its
 * answer is due (0 when the rule is off). */
static int supervision_order(deadline_t *dl, MDB_txn *txn, const dl_ob_t *o,
                             const Casebus__V1__Obligation *msg, const char *id, int64_t now_ms,
                             char *sid, size_t size, int64_t *answer_due, bool *open_answer,
                             cb_error_t *err)
{
    *answer_due = 0;
    *open_answer = false;
    if (strcmp(msg->rule_id ? msg->rule_id : "", dl_rule_name(DL_RULE_SUPERVISION_ANSWER)) == 0 &&
        strncmp(id, ANSWER_PREFIX, strlen(ANSWER_PREFIX)) == 0) {
        snprintf(sid, size, "%s", id + strlen(ANSWER_PREFIX));
        *answer_due = o->due_ms;
        return 0;
    }
    char key[ID_MAX + 32];
    uint32_t n = 0;
    dl_ob_t last = {0};
    for (uint32_t k = 1; k <= MAX_ORDERS; k++) {
        snprintf(key, sizeof(key), ANSWER_PREFIX "SV-%s-%u", id, k);
        dl_ob_t b;
        int rc = dl_load(dl, txn, key, &b, NULL, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break;
        n = k;
        last = b;
    }
    if (n > 0 && (last.status == DL_OPEN || last.status == DL_PAUSED || n == MAX_ORDERS)) {
        snprintf(sid, size, "SV-%s-%u", id, n); /* unanswered: the same order */
        *answer_due = last.due_ms;
        return 0;
    }
    snprintf(sid, size, "SV-%s-%u", id, n + 1);
    const dl_rule_t *rule = &dl->rules.rule[DL_RULE_SUPERVISION_ANSWER];
    if (!rule->enabled)
        return 0;
    int missing_year;
    *answer_due = dl_due(dl->cal, rule->unit, rule->length, now_ms, rule->move, &missing_year);
    *open_answer = true;
    return 0;
}

/* Opens the answer to a new order sid (after the order itself is recorded). */
static int open_answer_obligation(deadline_t *dl, MDB_txn *txn, const char *sid,
                                  const Casebus__V1__Obligation *msg, int64_t now_ms,
                                  cb_error_t *err)
{
    char key[ID_MAX + 40];
    snprintf(key, sizeof(key), ANSWER_PREFIX "%s", sid);
    open_args_t a = {.rule = DL_RULE_SUPERVISION_ANSWER,
                     .id = key,
                     .cs = msg->case_,
                     .transfer_id = msg->transfer_id,
                     .responsible = msg->responsible,
                     .start_ms = now_ms};
    return dl_open_obligation(dl, txn, &a, err);
}

int dl_fire(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, int64_t now_ms,
            cb_error_t *err)
{
    dl_ob_t o, before;
    Casebus__V1__Obligation *msg = NULL;
    int rc = dl_load(dl, txn, id, &o, &msg, err);
    if (rc != 0)
        return rc > 0 ? dl_timer_del(dl, txn, at_ms, id, err) : rc;
    if (o.next_fire_ms != at_ms) {
        /* A key the obligation no longer owns (it can only be left by a crash
         * of an older version): drop it, nothing fires twice. */
        rc = dl_timer_del(dl, txn, at_ms, id, err);
        goto out;
    }
    before = o;
    dl_alert_t a;
    uint64_t fired = 0;
    Casebus__V1__OrgRef notify_buf[1 + DL_MAX_ESC_KINDS];
    Casebus__V1__OrgRef *notify[1 + DL_MAX_ESC_KINDS];
    char sid[ID_MAX + 32];
    bool open_answer = false;
    while (rc == 0 && dl_take_due(dl->cal, &o, now_ms, &a)) {
        Casebus__V1__AlertInfo ai = CASEBUS__V1__ALERT_INFO__INIT;
        ai.level = a.level;
        ai.point = a.point;
        ai.fire_at_ms = a.fire_at_ms;
        ai.remaining_ms = o.due_ms - now_ms;
        ai.late_by_ms = now_ms - a.fire_at_ms;
        ai.late = ai.late_by_ms > dl->late_after_ms;
        cb_metric_observe(dl->m_lateness, ai.late_by_ms > 0 ? (double)ai.late_by_ms / 1000.0 : 0);
        ai.repeat = a.repeat;
        /* Yellow: the responsible party; red: it and the supervisors; 督办: both. */
        size_t n = 0;
        if (msg->responsible)
            notify[n++] = msg->responsible;
        if (a.level != L(YELLOW))
            for (size_t i = 0; i < msg->n_supervisors && n < 1 + DL_MAX_ESC_KINDS; i++)
                notify[n++] = msg->supervisors[i];
        (void)notify_buf;
        ai.notify = notify;
        ai.n_notify = n;
        char local[40];
        msg->due_at_ms = o.due_ms;
        cb_time_format_cst(o.due_ms, local, sizeof(local));
        if ((rc = dl_set_str(&msg->due_local, local, err)) != 0)
            break;
        Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
        Casebus__V1__DeadlineWarning dw = CASEBUS__V1__DEADLINE_WARNING__INIT;
        Casebus__V1__DeadlineBreached db = CASEBUS__V1__DEADLINE_BREACHED__INIT;
        Casebus__V1__Escalated es = CASEBUS__V1__ESCALATED__INIT;
        if (a.level == L(YELLOW)) {
            dw.obligation = msg;
            dw.alert = &ai;
            env.body_case = B(DEADLINE_WARNING);
            env.deadline_warning = &dw;
        } else if (a.level == L(RED)) {
            db.obligation = msg;
            db.alert = &ai;
            env.body_case = B(DEADLINE_BREACHED);
            env.deadline_breached = &db;
        } else {
            es.obligation = msg;
            es.alert = &ai;
            if ((rc = supervision_order(dl, txn, &o, msg, id, now_ms, sid, sizeof(sid),
                                        &es.answer_due_ms, &open_answer, err)) != 0)
                break;
            es.supervision_id = sid;
            env.body_case = B(ESCALATED);
            env.escalated = &es;
        }
        rc = dl_emit(dl, txn, &env, msg, err);
        if (rc == 0 && open_answer) {
            rc = open_answer_obligation(dl, txn, sid, msg, now_ms, err);
            open_answer = false;
        }
        fired++;
        dl->fired_total++;
        if (ai.late)
            dl->late_total++;
        if (ai.late || a.level != L(YELLOW))
            log_info("%s obligation=%s case=%s late_ms=%lld",
                     a.level == L(YELLOW) ? "deadline_warning"
                     : a.level == L(RED)  ? "deadline_breached"
                                          : "escalated",
                     id, msg->case_ ? msg->case_->case_id : "", (long long)ai.late_by_ms);
    }
    if (rc == 0)
        rc = dl_save(dl, txn, &before, &o, msg, fired, err);
out:
    if (msg)
        casebus__v1__obligation__free_unpacked(msg, NULL);
    return rc;
}
