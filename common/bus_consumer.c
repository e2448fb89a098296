/*
 * bus_consumer.c — the consumer side of the pull bus (bus.h has the contract):
 * one DEALER per upstream producer, each batch applied and its cursor stored
 * in one transaction of the group commit, and the next fetch sent when that is
 * on disk.
 */
#include "bus.h"
#include "curve.h"
#include "pbjson.h"
#include "bytes.h"
#include "cbtime.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>


#define CURSOR_LEN (8 + CB_HASH_LEN)
#define RETRY_MS 1000
#define CONNECT_RETRY_MS 100
#define ANSWER_GRACE_MS 3000
/* Reconnect attempts start 100 ms apart and back off to at most this, so a
 * producer that comes back is reached within half a second. */
#define RECONNECT_IVL_MAX_MS 500
/* ZMTP heartbeats find a connection whose peer vanished without closing it
 * (a host that crashed, a cable pulled) while a fetch waits on it. */
#define HEARTBEAT_IVL_MS 1000
#define HEARTBEAT_TIMEOUT_MS 3000

typedef struct upstream {
    struct cb_bus_consumer *c;
    char *producer;
    char *endpoint;
    void *sock;
    cb_zwatch_t watch;
    uv_timer_t timer;
    /* committed cursor */
    uint64_t next_seq;
    uint8_t last_hash[CB_HASH_LEN];
    /* what the request in flight continues from (ahead of the committed cursor
     * while a batch waits for the group commit) */
    uint64_t expect_seq;
    uint8_t expect_hash[CB_HASH_LEN];
    uint64_t request_id;
    bool waiting;          /* a request is in flight */
    bool batch_pending;    /* a batch waits for the group commit */
    /* Connection tracking (the DEALER's monitor): a request sent on a
     * connection that has since dropped can never be answered, so it is sent
     * again as soon as a connection is up, instead of after its time-out. */
    void *mon;             /* PAIR end of the DEALER's socket monitor */
    cb_zwatch_t mon_watch;
    bool connected;
    bool send_on_connect;  /* a fetch is due and waits for a connection */
    uint32_t conn_gen;     /* bumped on every handshake */
    uint32_t req_gen;      /* conn_gen when the request in flight was sent */
    uint64_t head_seq;
    int64_t last_answer_ms;
    char problem[256];
    int64_t started_ms;
    cb_metric_t *m_applied, *m_lag, *m_errors, *m_answer_age, *m_apply_latency;
} upstream_t;

struct cb_bus_consumer {
    uv_loop_t *loop;
    void *zctx;
    cb_store_t *store;
    cb_group_t *group;
    MDB_dbi db_cursor;
    cb_bus_consumer_opts_t opts;
    cb_bus_apply_fn apply;
    void *ctx;
    cb_metrics_t *metrics;
    upstream_t **ups;
    size_t nups;
    int open_handles;
    bool closing;
};

/* Batch bookkeeping between cb_group_end and the group's commit. */
typedef struct pending_batch {
    upstream_t *up;
    uint64_t next_seq;
    uint8_t hash[CB_HASH_LEN];
    uint32_t count;
} pending_batch_t;

static void send_fetch(upstream_t *up);
static void on_retry(uv_timer_t *t);

/* Forgets the request in flight (its answer becomes stale) and asks again in ms. */
static void retry_later(upstream_t *up, uint64_t ms)
{
    up->waiting = false;
    up->request_id++;
    uv_timer_start(&up->timer, on_retry, ms, 0);
}

static void on_retry(uv_timer_t *t)
{
    upstream_t *up = t->data;
    if (up->c->closing)
        return;
    if (up->waiting)
        log_info("bus_fetch_timeout producer=%s endpoint=%s next_seq=%llu", up->producer,
                 up->endpoint, (unsigned long long)up->expect_seq);
    up->waiting = false;
    if (!up->batch_pending)
        send_fetch(up);
    /* else on_batch_committed sends once the group has committed */
}

static void send_fetch(upstream_t *up)
{
    cb_bus_consumer_t *c = up->c;
    if (c->closing)
        return;
    Casebus__V1__Fetch f = CASEBUS__V1__FETCH__INIT;
    Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
    f.request_id = ++up->request_id;
    f.from_seq = up->expect_seq;
    f.max_events = c->opts.max_events;
    f.max_wait_ms = c->opts.max_wait_ms;
    req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_FETCH;
    req.fetch = &f;
    uint8_t buf[128];
    size_t len = casebus__v1__bus_request__pack(&req, buf);
    int rc = cb_zsend(&up->watch, buf, len, false);
    if (rc == CB_ERR_AGAIN) {
        /* ZMQ_IMMEDIATE: no connection yet. The monitor's handshake event
         * sends it; the timer is the fallback should that event be missed. */
        up->send_on_connect = true;
        uv_timer_start(&up->timer, on_retry, CONNECT_RETRY_MS, 0);
        return;
    }
    if (rc != 0) {
        log_warnx("bus_fetch_send_failed producer=%s error=\"%s\"", up->producer,
                  zmq_strerror(errno));
        uv_timer_start(&up->timer, on_retry, RETRY_MS, 0);
        return;
    }
    up->send_on_connect = false;
    up->waiting = true;
    up->req_gen = up->conn_gen;
    uv_timer_start(&up->timer, on_retry, (uint64_t)c->opts.max_wait_ms + ANSWER_GRACE_MS,
                   0);
}

/* The DEALER's connection events. A DEALER that pulls one endpoint has at
 * most one connection, so a request sent before the current connection's
 * handshake went out on a connection that has since died (with the producer
 * holding it parked, before it answered, or while it answered: an incomplete
 * message is dropped whole) and will never be answered. It is asked again at
 * once; waiting out max_wait would stall the consumer for seconds after its
 * producer is back. At worst a request that did reach the new connection is
 * sent twice, and the first answer is ignored as stale. */
static void on_monitor_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    upstream_t *up = ctx;
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, sock, ZMQ_DONTWAIT) < 0)
        goto out;
    if (zmq_msg_more(&ev) && zmq_msg_recv(&addr, sock, ZMQ_DONTWAIT) < 0)
        goto out;
    if (zmq_msg_size(&ev) < 2 || up->c->closing)
        goto out;
    uint16_t event;
    memcpy(&event, zmq_msg_data(&ev), sizeof(event));
    if (event == ZMQ_EVENT_DISCONNECTED) {
        up->connected = false;
        log_info("bus_producer_disconnected producer=%s endpoint=%s", up->producer,
                 up->endpoint);
    } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        up->connected = true;
        up->conn_gen++;
        log_info("bus_producer_connected producer=%s endpoint=%s next_seq=%llu", up->producer,
                 up->endpoint, (unsigned long long)up->expect_seq);
        if (up->waiting && up->req_gen != up->conn_gen) {
            up->waiting = false;
            up->request_id++; /* should an answer to it still come, it is stale */
            up->send_on_connect = true;
        }
        if (up->send_on_connect && !up->waiting && !up->batch_pending) {
            uv_timer_stop(&up->timer);
            send_fetch(up);
        }
    }
out:
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
}

static int put_cursor(cb_bus_consumer_t *c, MDB_txn *txn, const char *producer, uint64_t next,
                      const uint8_t *hash, cb_error_t *err)
{
    uint8_t v[CURSOR_LEN];
    cb_be64_put(v, next);
    memcpy(v + 8, hash, CB_HASH_LEN);
    MDB_val k = {strlen(producer), (void *)producer}, val = {sizeof(v), v};
    int rc = mdb_put(txn, c->db_cursor, &k, &val, 0);
    return cb_store_error(rc, "store bus cursor", err);
}

static void on_batch_committed(void *arg, int status, const cb_error_t *err)
{
    pending_batch_t *pb = arg;
    upstream_t *up = pb->up;
    up->batch_pending = false;
    if (status == 0) {
        up->next_seq = pb->next_seq;
        memcpy(up->last_hash, pb->hash, CB_HASH_LEN);
        cb_metric_add(up->m_applied, pb->count);
    } else {
        /* Roll back to the committed cursor; the request in flight is stale. */
        log_error("bus_apply_commit_failed producer=%s next_seq=%llu error=\"%s\"",
                  up->producer, (unsigned long long)up->next_seq, err ? err->message : "");
        cb_metric_inc(up->m_errors);
        up->expect_seq = up->next_seq;
        memcpy(up->expect_hash, up->last_hash, CB_HASH_LEN);
        retry_later(up, RETRY_MS);
    }
    free(pb);
    if (status == 0 && !up->waiting && !up->c->closing)
        send_fetch(up);
}

/* Checks and applies one answer's records. Returns the number applied (handed
 * to the group), or -1 when the batch was refused (a retry is scheduled). */
static void apply_batch(upstream_t *up, const Casebus__V1__BatchHeader *h, zmq_msg_t *frames,
                        uint32_t n)
{
    cb_bus_consumer_t *c = up->c;
    cb_error_t err;
    cb_error_clear(&err);
    if (h->first_seq != up->expect_seq) {
        log_warnx("bus_batch_out_of_place producer=%s first_seq=%llu want=%llu", up->producer,
                  (unsigned long long)h->first_seq, (unsigned long long)up->expect_seq);
        retry_later(up, 0);
        return;
    }
    Casebus__V1__Envelope **envs = calloc(n, sizeof(*envs));
    if (envs == NULL) {
        retry_later(up, RETRY_MS);
        return;
    }
    uint8_t hash[CB_HASH_LEN];
    memcpy(hash, up->expect_hash, CB_HASH_LEN);
    uint32_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *raw = zmq_msg_data(&frames[i]);
        size_t len = zmq_msg_size(&frames[i]);
        if (cb_record_check(raw, len, hash, &envs[i], &err) != 0 ||
            envs[i]->seq != up->expect_seq + i) {
            snprintf(up->problem, sizeof(up->problem),
                     "record %llu of %s breaks the chain: %s (was the producer's data "
                     "directory replaced?)",
                     (unsigned long long)(up->expect_seq + i), up->producer,
                     err.message[0] ? err.message : "sequence out of place");
            log_error("bus_chain_broken producer=%s seq=%llu detail=\"%s\"", up->producer,
                      (unsigned long long)(up->expect_seq + i), up->problem);
            cb_metric_inc(up->m_errors);
            goto out_retry_slow;
        }
        memcpy(hash, cb_record_hash(raw, len), CB_HASH_LEN);
    }
    up->problem[0] = '\0';

    MDB_txn *txn = NULL;
    if (cb_group_begin(c->group, &txn, &err) != 0)
        goto out_store_error;
    int64_t now_ms = cb_now_ms();
    for (i = 0; i < n; i++) {
        int64_t delay = now_ms - envs[i]->recorded_at_ms;
        cb_metric_observe(up->m_apply_latency, delay > 0 ? (double)delay / 1000.0 : 0);
        cb_bus_event_t ev = {up->producer, up->expect_seq + i, envs[i],
                             zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i])};
        if (c->apply(c->ctx, txn, &ev, &err) != 0) {
            cb_group_end(c->group, &txn, false, NULL, NULL, NULL);
            goto out_store_error;
        }
    }
    pending_batch_t *pb = calloc(1, sizeof(*pb));
    if (pb == NULL || put_cursor(c, txn, up->producer, up->expect_seq + n, hash, &err) != 0) {
        free(pb);
        cb_group_end(c->group, &txn, false, NULL, NULL, NULL);
        goto out_store_error;
    }
    pb->up = up;
    pb->next_seq = up->expect_seq + n;
    pb->count = n;
    memcpy(pb->hash, hash, CB_HASH_LEN);
    if (cb_group_end(c->group, &txn, true, on_batch_committed, pb, &err) != 0) {
        free(pb);
        goto out_store_error;
    }
    up->batch_pending = true;
    up->expect_seq += n;
    memcpy(up->expect_hash, hash, CB_HASH_LEN);
    for (i = 0; i < n; i++)
        casebus__v1__envelope__free_unpacked(envs[i], NULL);
    free(envs);
    send_fetch(up); /* pipelined: the commit happens at the end of this turn */
    return;

out_store_error:
    snprintf(up->problem, sizeof(up->problem), "applying events from seq %llu failed: %s",
             (unsigned long long)up->expect_seq, err.message);
    log_error("bus_apply_failed producer=%s seq=%llu error=\"%s\"", up->producer,
              (unsigned long long)up->expect_seq, err.message);
    cb_metric_inc(up->m_errors);
    for (i = 0; i < n; i++)
        if (envs[i])
            casebus__v1__envelope__free_unpacked(envs[i], NULL);
    free(envs);
    retry_later(up, RETRY_MS);
    return;
out_retry_slow:
    for (i = 0; i < n; i++)
        if (envs[i])
            casebus__v1__envelope__free_unpacked(envs[i], NULL);
    free(envs);
    retry_later(up, 10 * RETRY_MS);
}

static void on_dealer_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    upstream_t *up = ctx;
    zmq_msg_t hdr;
    zmq_msg_t *frames = NULL;
    uint32_t nframes = 0, cap = 0;
    zmq_msg_init(&hdr);
    if (zmq_msg_recv(&hdr, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&hdr);
        return;
    }
    bool ok = true;
    while (zmq_msg_more(nframes ? &frames[nframes - 1] : &hdr)) {
        if (nframes == cap) {
            uint32_t ncap = cap ? cap * 2 : 64;
            zmq_msg_t *f = realloc(frames, ncap * sizeof(*f));
            if (f == NULL) {
                ok = false; /* keep receiving into a scratch message to drain */
                zmq_msg_t scratch;
                zmq_msg_init(&scratch);
                while (zmq_msg_recv(&scratch, sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&scratch))
                    ;
                zmq_msg_close(&scratch);
                break;
            }
            frames = f;
            cap = ncap;
        }
        zmq_msg_init(&frames[nframes]);
        if (zmq_msg_recv(&frames[nframes], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frames[nframes]);
            ok = false;
            break;
        }
        nframes++;
    }
    Casebus__V1__BatchHeader *h = NULL;
    if (ok)
        h = casebus__v1__batch_header__unpack(NULL, zmq_msg_size(&hdr), zmq_msg_data(&hdr));
    if (h == NULL || h->request_id != up->request_id || !up->waiting) {
        if (h == NULL && ok)
            log_warnx("bus_bad_answer producer=%s", up->producer);
        goto out; /* stale or garbled: the timer will ask again if need be */
    }
    up->waiting = false;
    up->last_answer_ms = cb_now_ms();
    up->head_seq = h->head_seq;
    uv_timer_stop(&up->timer);
    if (h->error && h->error[0]) {
        snprintf(up->problem, sizeof(up->problem), "producer %s refused: %s", up->producer,
                 h->error);
        log_warnx("bus_fetch_refused producer=%s error=\"%s\"", up->producer, h->error);
        retry_later(up, RETRY_MS);
    } else if (h->count != nframes) {
        log_warnx("bus_bad_answer producer=%s count=%u frames=%u", up->producer, h->count,
                  nframes);
        retry_later(up, RETRY_MS);
    } else if (nframes == 0) {
        if (h->head_seq + 1 < up->expect_seq) {
            snprintf(up->problem, sizeof(up->problem),
                     "producer %s's log ends at %llu but this consumer has applied up to %llu "
                     "(was its data directory replaced?)",
                     up->producer, (unsigned long long)h->head_seq,
                     (unsigned long long)(up->expect_seq - 1));
            log_error("bus_producer_behind producer=%s head=%llu next_seq=%llu", up->producer,
                      (unsigned long long)h->head_seq, (unsigned long long)up->expect_seq);
            retry_later(up, 10 * RETRY_MS);
        } else if (!up->batch_pending) {
            send_fetch(up);
        }
    } else {
        apply_batch(up, h, frames, nframes);
    }
out:
    if (h)
        casebus__v1__batch_header__free_unpacked(h, NULL);
    for (uint32_t i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    free(frames);
    zmq_msg_close(&hdr);
}

int cb_bus_cursor_read(cb_store_t *store, const char *producer, uint64_t *next_seq,
                       cb_error_t *err)
{
    MDB_dbi dbi;
    MDB_txn *txn;
    int rc = cb_store_dbi(store, "bus_cursor", 0, &dbi, err);
    if (rc != 0)
        return rc;
    if ((rc = cb_store_begin(store, false, &txn, err)) != 0)
        return rc;
    MDB_val k = {strlen(producer), (void *)producer}, v;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *next_seq = 1;
        rc = 0;
    } else if (rc == 0 && v.mv_size == CURSOR_LEN) {
        *next_seq = cb_be64_get(v.mv_data);
    } else {
        rc = rc ? cb_store_error(rc, "read bus cursor", err)
                : cb_error_set(err, CB_ERR_CORRUPT, "", "bus cursor of %zu bytes", v.mv_size);
    }
    cb_store_abort(&txn);
    return rc;
}

int cb_bus_consumer_new(cb_bus_consumer_t **out, uv_loop_t *loop, void *zctx, cb_store_t *store,
                        cb_group_t *group, const cb_bus_consumer_opts_t *opts,
                        cb_bus_apply_fn apply, void *ctx, cb_metrics_t *metrics,
                        cb_error_t *err)
{
    cb_bus_consumer_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    c->loop = loop;
    c->zctx = zctx;
    c->store = store;
    c->group = group;
    c->apply = apply;
    c->ctx = ctx;
    c->metrics = metrics;
    c->opts.max_events = opts && opts->max_events ? opts->max_events : 512;
    c->opts.max_wait_ms = opts && opts->max_wait_ms ? opts->max_wait_ms : 5000;
    if (c->opts.max_events > CB_BUS_MAX_EVENTS)
        c->opts.max_events = CB_BUS_MAX_EVENTS;
    int rc = cb_store_dbi(store, "bus_cursor", 0, &c->db_cursor, err);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void on_up_watch_closed(cb_zwatch_t *w);

/* Stops the monitor and closes both sockets (either may be NULL). */
static void close_sockets(upstream_t *up)
{
    if (up->sock)
        zmq_socket_monitor(up->sock, NULL, 0);
    if (up->mon)
        zmq_close(up->mon);
    if (up->sock)
        zmq_close(up->sock);
    up->mon = up->sock = NULL;
}

static void free_upstream(upstream_t *up)
{
    free(up->producer);
    free(up->endpoint);
    free(up);
}

int cb_bus_consumer_add(cb_bus_consumer_t *c, const char *producer, const char *endpoint,
                        cb_error_t *err)
{
    int rc;
    upstream_t *up = calloc(1, sizeof(*up));
    upstream_t **ups = realloc(c->ups, (c->nups + 1) * sizeof(*ups));
    if (up == NULL || ups == NULL) {
        free(up);
        if (ups)
            c->ups = ups;
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    c->ups = ups;
    up->c = c;
    up->producer = strdup(producer);
    up->endpoint = strdup(endpoint);
    if (!up->producer || !up->endpoint) {
        free_upstream(up);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    for (size_t i = 0; i < c->nups; i++)
        if (strcmp(c->ups[i]->producer, producer) == 0) {
            free_upstream(up);
            return cb_error_set(err, CB_ERR_CONFIG, "pull", "producer %s is pulled twice",
                                producer);
        }

    /* Load the cursor. */
    MDB_txn *txn;
    if ((rc = cb_store_begin(c->store, false, &txn, err)) != 0) {
        free_upstream(up);
        return rc;
    }
    MDB_val k = {strlen(producer), (void *)producer}, v;
    rc = mdb_get(txn, c->db_cursor, &k, &v);
    if (rc == MDB_NOTFOUND) {
        up->next_seq = 1;
        rc = 0;
    } else if (rc == 0 && v.mv_size == CURSOR_LEN) {
        up->next_seq = cb_be64_get(v.mv_data);
        memcpy(up->last_hash, (uint8_t *)v.mv_data + 8, CB_HASH_LEN);
    } else {
        rc = rc ? cb_store_error(rc, "read bus cursor", err)
                : cb_error_set(err, CB_ERR_CORRUPT, "", "bus cursor of %zu bytes", v.mv_size);
    }
    cb_store_abort(&txn);
    if (rc != 0) {
        free_upstream(up);
        return rc;
    }
    up->expect_seq = up->next_seq;
    memcpy(up->expect_hash, up->last_hash, CB_HASH_LEN);

    up->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (up->sock == NULL) {
        rc = cb_error_set(err, CB_ERR_ZMQ, "", "zmq_socket DEALER: %s", zmq_strerror(errno));
        free_upstream(up);
        return rc;
    }
    int one = 1, zero = 0, ivl = 100, ivl_max = RECONNECT_IVL_MAX_MS;
    int hb_ivl = HEARTBEAT_IVL_MS, hb_timeout = HEARTBEAT_TIMEOUT_MS;
    char mon_ep[64];
    snprintf(mon_ep, sizeof(mon_ep), "inproc://casebus-bus-monitor-%p", (void *)up);
    /* The monitor's PAIR is connected before the DEALER connects, so that no
     * connection event is emitted with nobody to read it (they are dropped). */
    if ((rc = cb_curve_client(up->sock, producer, err)) != 0) {
        close_sockets(up);
        free_upstream(up);
        return rc;
    }
    if (zmq_setsockopt(up->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(up->sock, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(up->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) != 0 ||
        zmq_setsockopt(up->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) != 0 ||
        zmq_setsockopt(up->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl)) != 0 ||
        zmq_setsockopt(up->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(hb_timeout)) != 0 ||
        zmq_socket_monitor(up->sock, mon_ep,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0 ||
        (up->mon = zmq_socket(c->zctx, ZMQ_PAIR)) == NULL ||
        zmq_setsockopt(up->mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_connect(up->mon, mon_ep) != 0 || zmq_connect(up->sock, endpoint) != 0) {
        rc = cb_error_set(err, CB_ERR_ZMQ, "pull", "cannot connect to %s at %s: %s", producer,
                          endpoint, zmq_strerror(errno));
        close_sockets(up);
        free_upstream(up);
        return rc;
    }
    if ((rc = uv_timer_init(c->loop, &up->timer)) != 0) {
        close_sockets(up);
        free_upstream(up);
        return cb_error_set(err, CB_ERR_UV, "", "uv_timer_init: %s", uv_strerror(rc));
    }
    up->timer.data = up;
    c->open_handles++;
    c->ups[c->nups++] = up; /* from here on, destroy frees it */
    cb_zwatch_t *watches[2] = {&up->watch, &up->mon_watch};
    cb_zwatch_fn fns[2] = {on_dealer_readable, on_monitor_readable};
    void *socks[2] = {up->sock, up->mon};
    for (int i = 0; i < 2; i++) {
        if ((rc = cb_zwatch_init(watches[i], c->loop, socks[i], fns[i], up, err)) != 0) {
            if (watches[i]->open_handles > 0) { /* still closing: destroy waits for them */
                c->open_handles++;
                watches[i]->on_closed = on_up_watch_closed;
            }
            return rc;
        }
        c->open_handles++;
    }

    char name[200];
    snprintf(name, sizeof(name), "casebus_bus_events_applied_total{producer=\"%s\"}", producer);
    up->m_applied = cb_metrics_counter(c->metrics, name, "Events applied from a producer");
    snprintf(name, sizeof(name), "casebus_bus_apply_latency_seconds{producer=\"%s\"}", producer);
    up->m_apply_latency = cb_metrics_histogram(
        c->metrics, name, "Seconds from an event's recording by its producer to its apply here",
        cb_metrics_latency_buckets, CB_METRICS_LATENCY_BUCKETS);
    snprintf(name, sizeof(name), "casebus_bus_consumer_lag{producer=\"%s\"}", producer);
    up->m_lag = cb_metrics_gauge(c->metrics, name, "Events the producer has that are not applied");
    snprintf(name, sizeof(name), "casebus_bus_apply_errors_total{producer=\"%s\"}", producer);
    up->m_errors = cb_metrics_counter(c->metrics, name, "Batches refused or rolled back");
    snprintf(name, sizeof(name), "casebus_bus_last_answer_age_seconds{producer=\"%s\"}",
             producer);
    up->m_answer_age = cb_metrics_gauge(c->metrics, name,
                                        "Seconds since the producer last answered a fetch");
    up->started_ms = cb_now_ms();
    log_info("bus_consumer_started producer=%s endpoint=%s next_seq=%llu", producer, endpoint,
             (unsigned long long)up->next_seq);
    send_fetch(up);
    return 0;
}

bool cb_bus_consumer_info(const cb_bus_consumer_t *c, size_t i, cb_bus_upstream_info_t *info)
{
    if (i >= c->nups)
        return false;
    const upstream_t *up = c->ups[i];
    info->producer = up->producer;
    info->endpoint = up->endpoint;
    info->next_seq = up->next_seq;
    info->head_seq = up->head_seq;
    info->last_answer_ms = up->last_answer_ms;
    info->started_ms = up->started_ms;
    info->connected = up->connected;
    info->max_wait_ms = c->opts.max_wait_ms;
    info->problem = up->problem[0] ? up->problem : NULL;
    return true;
}

int64_t cb_bus_upstream_answer_age_ms(const cb_bus_upstream_info_t *info, int64_t now_ms)
{
    int64_t since = info->last_answer_ms ? info->last_answer_ms : info->started_ms;
    return now_ms > since ? now_ms - since : 0;
}

void cb_bus_consumer_update_metrics(cb_bus_consumer_t *c)
{
    if (c == NULL)
        return;
    int64_t now = cb_now_ms();
    cb_bus_upstream_info_t info;
    for (size_t i = 0; cb_bus_consumer_info(c, i, &info); i++) {
        cb_metric_set(c->ups[i]->m_answer_age,
                      (double)cb_bus_upstream_answer_age_ms(&info, now) / 1000.0);
        cb_metric_set(c->ups[i]->m_lag, (double)cb_bus_upstream_lag(&info));
    }
}

uint64_t cb_bus_upstream_lag(const cb_bus_upstream_info_t *info)
{
    return info->head_seq + 1 > info->next_seq ? info->head_seq + 1 - info->next_seq : 0;
}

static void consumer_handle_closed(cb_bus_consumer_t *c)
{
    if (--c->open_handles > 0)
        return;
    for (size_t i = 0; i < c->nups; i++) {
        close_sockets(c->ups[i]);
        free_upstream(c->ups[i]);
    }
    free(c->ups);
    free(c);
}

static void on_up_timer_closed(uv_handle_t *h)
{
    upstream_t *up = h->data;
    consumer_handle_closed(up->c);
}

static void on_up_watch_closed(cb_zwatch_t *w)
{
    upstream_t *up = w->ctx;
    consumer_handle_closed(up->c);
}

void cb_bus_consumer_destroy(cb_bus_consumer_t **pc)
{
    cb_bus_consumer_t *c = *pc;
    if (c == NULL)
        return;
    *pc = NULL;
    c->closing = true;
    /* Batches still waiting for the group commit hold pointers to upstreams:
     * commit them now, while the upstreams are alive. */
    cb_group_flush(c->group);
    if (c->nups == 0) {
        free(c->ups);
        free(c);
        return;
    }
    for (size_t i = 0; i < c->nups; i++) {
        upstream_t *up = c->ups[i];
        uv_timer_stop(&up->timer);
        uv_close((uv_handle_t *)&up->timer, on_up_timer_closed);
        if (up->watch.open_handles > 0 && !uv_is_closing((uv_handle_t *)&up->watch.poll))
            cb_zwatch_close(&up->watch, on_up_watch_closed);
        if (up->mon_watch.open_handles > 0 &&
            !uv_is_closing((uv_handle_t *)&up->mon_watch.poll))
            cb_zwatch_close(&up->mon_watch, on_up_watch_closed);
    }
}
