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
} router_transfer_t;

typedef enum router_step {
    STEP_RECEIVE,     /* TransferReceived */
    STEP_ACCEPT,      /* TransferAccepted */
    STEP_RETURN,      /* TransferReturned */
    STEP_DISPUTE,     /* DisputeRaised */
    STEP_DECIDE,      /* DisputeDecided */
    STEP_RESEND,      /* TransferSent again for a returned transfer */
} router_step_t;

typedef struct router_verdict {
    bool ok;
    int from, to;              /* states */
    bool rerouted;             /* ok and routed anew: receiver changed, route_count grew */
    const char *code;          /* when refused: stable reason code */
    char message[256];
} router_verdict_t;

/* Applies step by org `by` (decided_org for STEP_DECIDE) to t. On success t is
 * updated and v->ok; otherwise t is unchanged and v says why. */
void router_transfer_step(router_transfer_t *t, router_step_t step, const char *by,
                          const char *decided_org, router_verdict_t *v);

const char *router_step_name(router_step_t step);
const char *router_state_name(int state);

#endif
