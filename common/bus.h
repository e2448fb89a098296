/*
 * bus.h — the durable pull bus (DESIGN.md "The bus").
 *
 * Producer: a ZeroMQ ROUTER bound at an endpoint that answers Fetch requests
 * from the daemon's log (evlog.h). A request for events not yet there is parked
 * until cb_bus_producer_wake() says new ones were committed, or until its
 * max_wait_ms passes (then an empty batch answers it). Nothing is pushed and
 * nothing is dropped: a consumer that is slow or away simply asks later.
 *
 * Consumer: one DEALER per upstream producer. It fetches from its cursor, checks
 * each record (sequence, hash chain continuing the last applied one), applies the
 * batch through the daemon's apply function in a child transaction of the
 * daemon's group commit, and stores the new cursor in that same transaction. An
 * event is therefore applied exactly once, whatever crashes or reconnects happen.
 * The next fetch is sent as soon as the batch is handed to the group (pipelined);
 * if the commit fails, the cursor rolls back and the stale answer is ignored.
 *
 * Databases in the consumer's environment:
 *   bus_cursor   producer name → be64 next_seq | hash[32] of the last applied record
 */
#ifndef CB_BUS_H
#define CB_BUS_H

#include <lmdb.h>
#include <stdint.h>
#include <uv.h>

#include "casebus/v1/bus.pb-c.h"
#include "casebus/v1/events.pb-c.h"
#include "error.h"
#include "evlog.h"
#include "metrics.h"
#include "store.h"
#include "zloop.h"

#define CB_BUS_MAX_EVENTS 4096        /* per batch, whatever a request asks */
#define CB_BUS_MAX_BATCH_BYTES (4u << 20)
#define CB_BUS_MAX_PARKED 4096

typedef struct cb_bus_producer cb_bus_producer_t;

/* Binds a ROUTER at endpoint serving log. zctx and log are not owned. */
int cb_bus_producer_new(cb_bus_producer_t **out, uv_loop_t *loop, void *zctx, cb_log_t *log,
                        const char *endpoint, cb_metrics_t *metrics, cb_error_t *err);
/* Answers parked requests that the newly committed events satisfy. */
void cb_bus_producer_wake(cb_bus_producer_t *p);
/* Answers every parked request with an empty batch, closes the socket; the
 * memory is freed once the loop has closed the handles. Safe on NULL. */
void cb_bus_producer_destroy(cb_bus_producer_t **p);
size_t cb_bus_producer_parked(const cb_bus_producer_t *p);

/* Decodes and checks one BusRequest frame (what a producer does with every
 * request). CB_ERR_PROTO naming what is wrong; *out freed with
 * casebus__v1__bus_request__free_unpacked. */
int cb_bus_request_parse(const uint8_t *data, size_t len, Casebus__V1__BusRequest **out,
                         cb_error_t *err);

/* One event handed to the apply function. env and raw live until it returns. */
typedef struct cb_bus_event {
    const char *producer;
    uint64_t seq;
    const Casebus__V1__Envelope *env;
    const uint8_t *raw;
    size_t len;
} cb_bus_event_t;

/* Applies one event inside txn. Return 0, or an error for a failure that may
 * pass (store full, out of memory): the whole batch is then rolled back and
 * fetched again after a pause. An event the daemon refuses on its merits is not
 * an error: the daemon records its refusal as an event of its own and returns 0. */
typedef int (*cb_bus_apply_fn)(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev,
                               cb_error_t *err);

typedef struct cb_bus_consumer cb_bus_consumer_t;

typedef struct cb_bus_consumer_opts {
    uint32_t max_events;     /* per fetch; 0 = 512 */
    uint32_t max_wait_ms;    /* long-poll time; 0 = 5000 */
} cb_bus_consumer_opts_t;

/* store and group are the daemon's (not owned); the consumer commits through
 * group, so it never opens a write transaction of its own. */
int cb_bus_consumer_new(cb_bus_consumer_t **out, uv_loop_t *loop, void *zctx, cb_store_t *store,
                        cb_group_t *group, const cb_bus_consumer_opts_t *opts,
                        cb_bus_apply_fn apply, void *ctx, cb_metrics_t *metrics,
                        cb_error_t *err);
/* Adds an upstream and starts fetching from its stored cursor (1 when new). */
int cb_bus_consumer_add(cb_bus_consumer_t *c, const char *producer, const char *endpoint,
                        cb_error_t *err);
/* Stops fetching and frees once the loop has closed the handles. Safe on NULL. */
void cb_bus_consumer_destroy(cb_bus_consumer_t **c);

typedef struct cb_bus_upstream_info {
    const char *producer;
    const char *endpoint;
    uint64_t next_seq;       /* committed cursor */
    uint64_t head_seq;       /* producer's head when it last answered */
    int64_t last_answer_ms;  /* wall clock of its last answer; 0 = never */
    int64_t started_ms;      /* when this consumer began pulling it */
    bool connected;          /* a connection to the producer is up */
    uint32_t max_wait_ms;    /* the long-poll time each fetch asks for */
    const char *problem;     /* NULL, or why the upstream is stuck */
} cb_bus_upstream_info_t;

/* Fills info for upstream i (0-based); returns false past the last. */
bool cb_bus_consumer_info(const cb_bus_consumer_t *c, size_t i, cb_bus_upstream_info_t *info);

/* Events the producer had, when it last answered, that are not applied yet. */
uint64_t cb_bus_upstream_lag(const cb_bus_upstream_info_t *info);
/* Milliseconds since the producer last answered (since the consumer started
 * when it never has). */
int64_t cb_bus_upstream_answer_age_ms(const cb_bus_upstream_info_t *info, int64_t now_ms);
/* Sets the lag and last-answer-age gauges to their values now (before a
 * scrape). Safe on NULL. */
void cb_bus_consumer_update_metrics(cb_bus_consumer_t *c);

/* Reads a stored cursor (next seq; 1 when none) without a consumer, in a read
 * transaction of its own. */
int cb_bus_cursor_read(cb_store_t *store, const char *producer, uint64_t *next_seq,
                      cb_error_t *err);

#endif
