/*
 * transfer.h — the transfer state machine (案件移送, seed 002 §五(三)), router
 * being its only authority. Pure: a transfer and a step in, a verdict out.
 *
 *   SENT ──receive──► RECEIVED ──accept──► ACCEPTED            (the receiver holds the case)
 *    │  └──accept──────────────────────────┘
 *    ├──return (receiver)──► RETURNED ──dispute (sender)──► DISPUTED
 *    └──dispute (receiver)─────────────────────────────────► DISPUTED
 *   DISPUTED ──decide (judicial bureau)──► DECIDED, then
 *        decided = sender:   CONCLUDED (the case stays where it was found)
 *        decided = other:    re-routed: SENT to the decided organisation
 *   RETURNED ──resend (sender)──► SENT (to the same receiver, e.g. with better materials)
 *
 * A dispatch (分流交办: a transfer the county command platform makes) differs:
 *   SENT/RECEIVED ──return (receiver)──► RETURN_REQUESTED (退单, awaiting review by the
 *        platform; from the case's third return by the leading-group office)
 *   RETURN_REQUESTED ──approve (reviewer)──► RETURNED (back with the platform, closed)
 *                    ──reject (reviewer)───► the state it was in (the clock runs on)
 *   any state but DISPUTED ──withdraw (the platform: 改派)──► WITHDRAWN (closed)
 * A transfer is open (no other may be sent for its case) until it is ACCEPTED,
 * CONCLUDED, WITHDRAWN, or RETURNED (an ordinary one is then sent anew).
 * While a dispute runs the case is handled first by whoever holds it
 * (先予协同处置, seed 002 §五(三)4); the clock pauses (deadline).
 */
#ifndef CB_ROUTER_TRANSFER_H
#define CB_ROUTER_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "evlog.h"
#include "orgs.h"

#define ROUTER_ID_MAX 48

typedef struct router_transfer {
    char transfer_id[ROUTER_ID_MAX];
    char case_id[CB_CASE_ID_MAX + 1];
    int state;                          /* CASEBUS__V1__TRANSFER_STATE__… */
    char sender[CB_ORG_ID_MAX + 1];
    char receiver[CB_ORG_ID_MAX + 1];
    char dispute_id[ROUTER_ID_MAX];
    uint32_t route_count;               /* 1 on first routing */
    bool dispatched;                    /* made by the command platform */
    uint32_t returns;                   /* returns of the case's dispatches so far */
    int state_before_return;            /* RETURN_REQUESTED: where a rejection leads */
    char reviewer[CB_ORG_ID_MAX + 1];   /* RETURN_REQUESTED: who reviews it */
} router_transfer_t;

/* From the case's third return of a dispatch, the leading-group office reviews. */
#define ROUTER_RETURNS_TO_LEADING_GROUP 3

typedef enum router_step {
    STEP_RECEIVE,     /* TransferReceived */
    STEP_ACCEPT,      /* TransferAccepted */
    STEP_RETURN,      /* TransferReturned */
    STEP_DISPUTE,     /* DisputeRaised */
    STEP_DECIDE,      /* DisputeDecided */
    STEP_RESEND,      /* TransferSent again for a returned transfer */
    STEP_APPROVE_RETURN, /* ReturnReviewed, approved */
    STEP_REJECT_RETURN,  /* ReturnReviewed, rejected */
    STEP_WITHDRAW,       /* CaseDispatched again: the earlier dispatch is reassigned */
} router_step_t;

typedef struct router_verdict {
    bool ok;
    int from, to;              /* states */
    bool rerouted;             /* ok and routed anew: receiver changed, route_count grew */
    const char *code;          /* when refused: stable reason code */
    char message[256];
} router_verdict_t;

/* Applies step by org `by` to t. decided_org: for STEP_DECIDE the decided
 * organisation; for STEP_RETURN of a dispatch, the leading-group office (the
 * reviewer from the case's third return). On success t is updated and v->ok;
 * otherwise t is unchanged and v says why. */
void router_transfer_step(router_transfer_t *t, router_step_t step, const char *by,
                          const char *decided_org, router_verdict_t *v);

const char *router_step_name(router_step_t step);
/* May no other transfer be sent for t's case? */
bool router_transfer_open(const router_transfer_t *t);
const char *router_state_name(int state);

#endif
