/*
 * transfer.c — the transfer state machine (transfer.h).
 */
#include "transfer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S(x) CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_##x

const char *router_step_name(router_step_t step)
{
    static const char *names[] = {"transfer_received", "transfer_accepted", "transfer_returned",
                                  "dispute_raised",    "dispute_decided",   "transfer_sent",
                                  "return_reviewed",   "return_reviewed",   "case_dispatched"};
    return (unsigned)step < sizeof(names) / sizeof(names[0]) ? names[step] : "unknown";
}

const char *router_state_name(int state)
{
    static const char *names[] = {"unspecified", "required", "sent",    "received",
                                  "accepted",    "returned", "disputed", "decided",
                                  "concluded",   "return_requested", "withdrawn"};
    return state >= 0 && state < (int)(sizeof(names) / sizeof(names[0])) ? names[state]
                                                                          : "unknown";
}

bool router_transfer_open(const router_transfer_t *t)
{
    switch (t->state) {
    case S(SENT):
    case S(RECEIVED):
    case S(DISPUTED):
    case S(DECIDED):
    case S(RETURN_REQUESTED):
        return true;
    default:
        return false;
    }
}

static void refuse(router_verdict_t *v, const router_transfer_t *t, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(router_verdict_t *v, const router_transfer_t *t, const char *code,
                   const char *fmt, ...)
{
    v->ok = false;
    v->from = v->to = t->state;
    v->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
}

static bool in(int state, int a, int b)
{
    return state == a || state == b;
}

void router_transfer_step(router_transfer_t *t, router_step_t step, const char *by,
                          const char *decided_org, router_verdict_t *v)
{
    memset(v, 0, sizeof(*v));
    v->from = t->state;
    bool is_receiver = strcmp(by, t->receiver) == 0, is_sender = strcmp(by, t->sender) == 0;
    switch (step) {
    case STEP_RECEIVE:
    case STEP_ACCEPT:
    case STEP_RETURN:
        if (!is_receiver) {
            refuse(v, t, "not_receiver", "only the receiver (%s) may %s this transfer",
                   t->receiver,
                   step == STEP_RECEIVE ? "sign for" : step == STEP_ACCEPT ? "accept" : "return");
            return;
        }
        if (step == STEP_RECEIVE && t->state != S(SENT)) {
            refuse(v, t, "wrong_state", "a transfer can be signed for only when sent; it is %s",
                   router_state_name(t->state));
            return;
        }
        if (step != STEP_RECEIVE && !in(t->state, S(SENT), S(RECEIVED))) {
            refuse(v, t, "wrong_state",
                   "a transfer can be accepted or returned only when sent or received; it is %s",
                   router_state_name(t->state));
            return;
        }
        if (step == STEP_RETURN && t->dispatched) {
            /* 退单: the platform reviews it; from the third, the leading-group office. */
            t->state_before_return = t->state;
            t->state = S(RETURN_REQUESTED);
            t->returns++;
            bool office = t->returns >= ROUTER_RETURNS_TO_LEADING_GROUP && decided_org &&
                          *decided_org;
            snprintf(t->reviewer, sizeof(t->reviewer), "%s", office ? decided_org : t->sender);
            break;
        }
        t->state = step == STEP_RECEIVE ? S(RECEIVED) : step == STEP_ACCEPT ? S(ACCEPTED)
                                                                              : S(RETURNED);
        break;
    case STEP_DISPUTE:
        /* The receiver disputes its jurisdiction; or the sender disputes a return. */
        if (is_receiver && in(t->state, S(SENT), S(RECEIVED))) {
            t->state = S(DISPUTED);
        } else if (is_sender && t->state == S(RETURNED) && !t->dispatched) {
            t->state = S(DISPUTED);
        } else if (!is_receiver && !is_sender) {
            refuse(v, t, "not_party", "only the sender or the receiver may dispute %s",
                   t->transfer_id);
            return;
        } else {
            refuse(v, t, "wrong_state",
                   "the receiver disputes a sent or received transfer, the sender a returned "
                   "one; it is %s",
                   router_state_name(t->state));
            return;
        }
        break;
    case STEP_DECIDE:
        if (t->state != S(DISPUTED)) {
            refuse(v, t, "wrong_state", "there is no dispute to decide: the transfer is %s",
                   router_state_name(t->state));
            return;
        }
        if (decided_org == NULL || *decided_org == '\0') {
            refuse(v, t, "no_decision", "the decision names no competent organisation");
            return;
        }
        if (strcmp(decided_org, t->sender) == 0) {
            t->state = S(CONCLUDED); /* the finder was competent after all */
        } else {
            t->state = S(SENT);
            snprintf(t->receiver, sizeof(t->receiver), "%s", decided_org);
            t->route_count++;
            v->rerouted = true;
        }
        break;
    case STEP_APPROVE_RETURN:
    case STEP_REJECT_RETURN:
        if (t->state != S(RETURN_REQUESTED)) {
            refuse(v, t, "wrong_state", "there is no return to review: the transfer is %s",
                   router_state_name(t->state));
            return;
        }
        if (strcmp(by, t->reviewer) != 0) {
            refuse(v, t, "not_reviewer", "only %s reviews this return%s", t->reviewer,
                   t->returns >= ROUTER_RETURNS_TO_LEADING_GROUP
                       ? " (the case's third return goes to the leading-group office)"
                       : " (the county command platform that dispatched it)");
            return;
        }
        t->state = step == STEP_APPROVE_RETURN ? S(RETURNED) : t->state_before_return;
        t->reviewer[0] = '\0';
        break;
    case STEP_WITHDRAW:
        if (!t->dispatched || !is_sender) {
            refuse(v, t, "not_dispatcher",
                   "only the command platform that dispatched %s may reassign it",
                   t->transfer_id);
            return;
        }
        if (!in(t->state, S(SENT), S(RECEIVED)) && !in(t->state, S(ACCEPTED), S(RETURNED)) &&
            t->state != S(RETURN_REQUESTED)) {
            refuse(v, t, "wrong_state", "a %s dispatch cannot be reassigned%s",
                   router_state_name(t->state),
                   t->state == S(DISPUTED) ? ": the judicial bureau decides the dispute first"
                                           : "");
            return;
        }
        t->state = S(WITHDRAWN);
        break;
    case STEP_RESEND:
        if (t->dispatched) {
            refuse(v, t, "wrong_state", "a dispatch is not sent again: dispatch the case anew");
            return;
        }
        if (!is_sender) {
            refuse(v, t, "not_sender", "only the sender may send %s again", t->transfer_id);
            return;
        }
        if (t->state != S(RETURNED)) {
            refuse(v, t, "wrong_state", "only a returned transfer can be sent again; it is %s",
                   router_state_name(t->state));
            return;
        }
        t->state = S(SENT);
        t->route_count++;
        v->rerouted = true;
        break;
    default:
        refuse(v, t, "unknown_step", "unknown step");
        return;
    }
    v->ok = true;
    v->to = t->state;
}
