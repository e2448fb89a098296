/*
 * notify.h — the notify daemon's private header. notify is the single
 * authority on delivery (DESIGN.md): it pulls router's and deadline's logs,
 * addresses each event to the organisations it concerns, and delivers it to
 * every channel they subscribed (a webhook, signed), at least once, in order per
 * case and endpoint, with retries, backoff and dead letters. Every delivery's
 * state lives in LMDB, so a restart resumes exactly where it was; each outcome
 * is an event of notify's own log (Delivered, DeliveryFailed, DeadLettered,
 * Undeliverable, SubscriptionChanged).
 *
 * Files: main.c (wiring), state.c (every mdb_* call), handlers.c (addressing
 * and delivery bookkeeping, no sockets), webhook.c (libcurl multi on the loop,
 * signing, the sender), control.c (subscriptions, dead letters, status).
 */
#ifndef CB_NOTIFY_H
#define CB_NOTIFY_H

#include <jansson.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloudevent.h"
#include "control.h"
#include "daemon.h"
#include "netaddr.h"
#include "whsig.h"

#define NT_ID_MAX 64
#define NT_WID_MAX (2 * NT_ID_MAX) /* a webhook-id (nt_webhook_id) */
#define NT_ALLOW_MAX 32
#define NT_BATCH_MAX 100 /* events per request for a batch subscription */

typedef struct notify_sender notify_sender_t;

typedef struct notify {
    cb_daemon_t d;
    MDB_dbi db_meta, db_subs, db_deliveries, db_bodies, db_queue, db_ready, db_dead, db_stream;
    struct notify_stream *stream;
    struct nt_subcache *subcache; /* state.c */
    cb_control_t *control;
    notify_sender_t *sender;
    /* delivery policy */
    int64_t retry_base_ms, retry_max_ms, horizon_ms, timeout_ms;
    unsigned max_in_flight, per_endpoint;
    /* where webhooks may go besides public addresses (netaddr.h) */
    bool allow_private_webhooks;
    cb_cidr_t allow[NT_ALLOW_MAX];
    size_t nallow;
    cb_cloudevents_t ce; /* [events]: what every body names as its source and type */
    /* metrics: the gauges are brought up to date at each scrape (control.c) */
    cb_metric_t *m_webhook_seconds, *m_attempts[3], *m_dead, *m_pending, *m_in_flight, *m_subs;
    int64_t (*now)(void);
} notify_t;

/* ---- state.c ---- */
int nt_state_open(notify_t *n, cb_error_t *err);
void nt_state_close(notify_t *n);
/* A JSON record of db under id (NULL when absent); caller decrefs. A
 * delivery's is made from its binary record (delivery.c). */
json_t *nt_get(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id);
int nt_put(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id, json_t *rec, cb_error_t *err);
/* What a delivery sends is kept apart from its record (which is read and
 * rewritten at each attempt): delivery id -> the source Envelope as pulled,
 * or a JSON body (it starts with '{'). Records of stores written before carry
 * it as "body". */
int nt_body_put(notify_t *n, MDB_txn *txn, const char *id, const void *body, size_t len,
                cb_error_t *err);
bool nt_body_get(notify_t *n, MDB_txn *txn, const char *id, MDB_val *out);
int nt_del(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id, cb_error_t *err);
/* Ids of every record of db, visited in key order (visit may not write db). */
typedef int (*nt_each_fn)(void *ctx, const char *id, json_t *rec);
int nt_each(notify_t *n, MDB_txn *txn, MDB_dbi db, nt_each_fn visit, void *ctx, cb_error_t *err);
/* Subscriptions as every event and every scan read them: each record parsed
 * once per content (its bytes are compared at each read, so a change made in
 * any transaction is seen). The records are shared: read them, never change
 * them (nt_get gives a private copy to change). */
json_t *nt_sub_shared(notify_t *n, MDB_txn *txn, const char *id);
int nt_subs_each_shared(notify_t *n, MDB_txn *txn, nt_each_fn visit, void *ctx, cb_error_t *err);
/* Next number for ids ("sub", "delivery"). */
int nt_next(notify_t *n, MDB_txn *txn, const char *counter, uint64_t *out, cb_error_t *err);
/* Per subscription and case, deliveries wait in a FIFO: only its head is ready. */
int nt_queue_push(notify_t *n, MDB_txn *txn, const char *sub, const char *case_key, uint64_t order,
                  const char *delivery_id, bool *is_head, cb_error_t *err);
/* Removes the head; *next gets the new head's delivery id ("" when empty). */
int nt_queue_pop(notify_t *n, MDB_txn *txn, const char *sub, const char *case_key,
                 char next[NT_ID_MAX], cb_error_t *err);
/* The ready index, per subscription (so one endpoint's backlog never hides
 * another's): sub id NUL be64 next attempt + delivery id. */
int nt_ready_put(notify_t *n, MDB_txn *txn, const char *sub, int64_t at_ms,
                 const char *delivery_id, bool del, cb_error_t *err);
typedef struct nt_ready_key {
    int64_t at_ms;
    char id[NT_ID_MAX];
} nt_ready_key_t;
/* The first subscription id in the ready index after `after` ("" to start);
 * returns 1 when there is none. */
int nt_ready_next_sub(notify_t *n, MDB_txn *txn, const char *after, char sub[NT_ID_MAX]);
/* A subscription's ready deliveries due by now, in time order, at most max;
 * *next_at gets the first one not yet due (0: none). */
int nt_ready_due(notify_t *n, MDB_txn *txn, const char *sub, int64_t now_ms, nt_ready_key_t *keys,
                 int max, int64_t *next_at, cb_error_t *err);
size_t nt_count(notify_t *n, MDB_txn *txn, MDB_dbi db);

/* ---- delivery.c: a delivery's record ---- */
typedef enum nt_state { NT_STATE_PENDING, NT_STATE_DELIVERED, NT_STATE_DEAD } nt_state_t;
#define NT_DELIVERY_STRINGS 10
typedef struct nt_delivery {
    const char *id, *sub, *org_id, *url, *type, *event_id, *producer, *case_id, *case_key,
        *last_error;
    const char *old_body; /* a record written before the bodies were kept apart */
    uint64_t seq, order;
    int64_t first_at_ms, next_at_ms, last_at_ms;
    uint32_t attempt, last_latency_ms;
    int32_t last_status;
    nt_state_t state;
    bool queued; /* in its case's queue (a dead letter sent again is not) */
    char *owned; /* the strings' bytes (nt_delivery_free) */
} nt_delivery_t;
const char *nt_state_word(nt_state_t s);
/* 0, 1 when there is no such delivery, -1 when its record is unreadable. */
int nt_delivery_get(notify_t *n, MDB_txn *txn, const char *id, nt_delivery_t *d);
int nt_delivery_decode(const MDB_val *v, nt_delivery_t *d);
int nt_delivery_put(notify_t *n, MDB_txn *txn, const nt_delivery_t *d, cb_error_t *err);
void nt_delivery_free(nt_delivery_t *d);
/* As the control socket shows it. */
json_t *nt_delivery_json(const nt_delivery_t *d);
/* The webhook-id receivers drop repeats by: the source event (producer and
 * seq; a test ping, its own event id) and the subscription. Not the delivery's
 * number, which a crash before its commit gives anew when the event is applied
 * again; so a delivery may go before its commit (nt_sender_offer). */
void nt_webhook_id(const nt_delivery_t *d, char *out, size_t size);
/* Appends to w what a delivery sends for what it stored: its source Envelope
 * made a CloudEvent for subscription sub and the addressee (one URL may serve
 * several organisations, each de-duplicating by (addressee, id)), or JSON kept
 * as it is. CB_ERR_CORRUPT when the stored event cannot be read, CB_ERR_NOMEM.
 * Any thread. */
struct cb_jsonw;
int nt_stored_event_json(const notify_t *n, const void *stored, size_t len, const char *sub,
                         const char *addressee, struct cb_jsonw *w);

/* ---- handlers.c ---- */
int nt_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err);

typedef enum nt_outcome {
    NT_DELIVERED,
    NT_RETRY,       /* 5xx, 408, 429, time-out, connection failure */
    NT_PERMANENT,   /* other 4xx */
} nt_outcome_t;
/* Classifies an attempt: HTTP status (0 when none came back). */
nt_outcome_t nt_classify(long http_status);
/* Records the outcome of one attempt of delivery id at now: events, the next
 * attempt or the dead letter, and the next delivery of the same queue. With
 * wid, only when the delivery's webhook-id is still wid (nothing otherwise). */
int nt_record_attempt(notify_t *n, MDB_txn *txn, const char *id, const char *wid,
                      long http_status, const char *error, uint32_t latency_ms, int64_t now_ms,
                      cb_error_t *err);
/* The delay before attempt `attempt` (1 = the first retry): exponential with
 * jitter (±20%), capped at retry_max_ms. */
int64_t nt_backoff(const notify_t *n, uint32_t attempt, uint32_t random);
/* Control: a subscription added / changed / removed (recorded as
 * SubscriptionChanged); refusals name the field and write nothing. */
int nt_subscribe(notify_t *n, MDB_txn *txn, const Casebus__V1__Subscribe *req,
                 char id[NT_ID_MAX], cb_error_t *err);
int nt_update_subscription(notify_t *n, MDB_txn *txn, const Casebus__V1__UpdateSubscription *u,
                           cb_error_t *err);
int nt_unsubscribe(notify_t *n, MDB_txn *txn, const char *id, cb_error_t *err);
/* A `ping` CloudEvent queued for webhook subscription sub_id; id gets the
 * delivery's id. */
int nt_test_subscription(notify_t *n, MDB_txn *txn, const char *sub_id, char id[NT_ID_MAX],
                         cb_error_t *err);
/* A dead letter sent again (ready at now). */
int nt_redeliver(notify_t *n, MDB_txn *txn, const char *id, cb_error_t *err);

/* ---- webhook.c ---- */
int nt_sender_start(notify_t *n, cb_error_t *err);
/* A webhook URL: http(s) with a host; an IP literal host (any spelling) must be
 * an address webhooks may reach. Names are checked when they are resolved. */
int nt_webhook_url_check(const notify_t *n, const char *url, cb_error_t *err);
/* True when webhooks may connect to sa; why gets the refusal otherwise. */
bool nt_addr_allowed(const notify_t *n, const struct sockaddr *sa, char *why, size_t size);
/* A delivery made ready by txn, which is still being written, goes at once if
 * its endpoint has room, rather than after the commit. A crash before the
 * commit, or a failed one, makes it again when the event is applied again,
 * perhaps under another number but with the same webhook-id (nt_webhook_id),
 * which receivers drop repeats by; an answer is recorded only on the delivery
 * whose webhook-id it carried (nt_record_attempt), never on one that took its
 * number after a failed commit. */
void nt_sender_offer(notify_t *n, MDB_txn *txn, const json_t *sub, const nt_delivery_t *d);
/* Looks at the ready index again soon (after a commit added something). */
void nt_sender_kick(notify_t *n);
void nt_sender_stop(notify_t *n);
size_t nt_sender_in_flight(const notify_t *n);
/* The signature header's value: "v1=" + hex HMAC-SHA256(secret, timestamp "." body). */

/* A subscription's new secret; the old one also signs for overlap_s seconds. */
int nt_rotate_secret(notify_t *n, MDB_txn *txn, const char *id, const char *secret,
                     uint32_t overlap_s, cb_error_t *err);
void nt_sign(const char *secret, const char *timestamp, const char *body, size_t len,
             char out[3 + 64 + 1]);

/* The stream channel's records: sub id NUL be64 seq -> the source Envelope. */
int nt_stream_append(notify_t *n, MDB_txn *txn, const char *sub, const uint8_t *raw, size_t len,
                     cb_error_t *err);
/* The head of a subscription's stream (0 when empty). */
uint64_t nt_stream_head(notify_t *n, MDB_txn *txn, const char *sub);
/* Record seq of a subscription's stream, valid until txn ends. */
int nt_stream_get(notify_t *n, MDB_txn *txn, const char *sub, uint64_t seq, MDB_val *out);

/* ---- stream.c: the ZeroMQ stream channel ---- */
int nt_stream_start(notify_t *n, const char *endpoint, cb_error_t *err);
/* Answers parked fetches that have something new (after a commit). */
void nt_stream_wake(notify_t *n);
void nt_stream_stop(notify_t *n);

/* ---- control.c ---- */
void nt_metrics_init(notify_t *n);
int nt_control_start(notify_t *n, const char *endpoint, cb_error_t *err);
void nt_control_stop(notify_t *n);

#endif
