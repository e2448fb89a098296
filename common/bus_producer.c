/*
 * bus_producer.c — the producer side of the pull bus (bus.h has the contract):
 * a ROUTER that answers each consumer's fetch from the log, or parks it until
 * the log grows or the fetch's wait runs out.
 *
 * Wire: the DEALER sends one frame, a BusRequest. The ROUTER answers with
 * [identity] BatchHeader record… ; the DEALER sees BatchHeader record… .
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


#define ZMQ_ID_MAX 256

typedef struct parked {
    uint8_t id[ZMQ_ID_MAX];
    size_t id_len;
    uint64_t request_id;
    uint64_t from_seq;
    uint32_t max_events;
    uint64_t deadline_ms;    /* uv_now */
    bool masked;             /* the peer may not read personal data */
} parked_t;

struct cb_bus_producer {
    uv_loop_t *loop;
    cb_log_t *log;
    void *sock;
    cb_zwatch_t watch;
    uv_timer_t timer;
    int open_handles;
    parked_t *parked;
    size_t nparked;
    cb_metric_t *m_fetches, *m_events_sent, *m_parked, *m_refused;
};

static int send_frames(void *sock, const uint8_t *id, size_t id_len, const uint8_t *hdr,
                       size_t hdr_len, const uint8_t **recs, const size_t *lens, uint32_t n)
{
    if (zmq_send(sock, id, id_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return -errno;
    if (zmq_send(sock, hdr, hdr_len, ZMQ_DONTWAIT | (n ? ZMQ_SNDMORE : 0)) < 0)
        return -errno;
    for (uint32_t i = 0; i < n; i++)
        if (zmq_send(sock, recs[i], lens[i], ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0)) < 0)
            return -errno;
    return 0;
}

static void send_header_only(cb_bus_producer_t *p, const uint8_t *id, size_t id_len,
                             uint64_t request_id, uint64_t first_seq, uint64_t head_seq,
                             const char *error)
{
    Casebus__V1__BatchHeader h = CASEBUS__V1__BATCH_HEADER__INIT;
    h.request_id = request_id;
    h.producer = (char *)cb_log_producer(p->log);
    h.first_seq = first_seq;
    h.head_seq = head_seq;
    h.error = (char *)(error ? error : "");
    uint8_t buf[512 + 256];
    size_t len = casebus__v1__batch_header__get_packed_size(&h);
    if (len > sizeof(buf))
        return;
    casebus__v1__batch_header__pack(&h, buf);
    int rc = send_frames(p->sock, id, id_len, buf, len, NULL, NULL, 0);
    if (rc < 0 && rc != -EHOSTUNREACH && rc != -EAGAIN)
        log_warnx("bus_send_failed error=\"%s\"", zmq_strerror(-rc));
    cb_zwatch_kick(&p->watch);
}

/* Answers a fetch whose from_seq is at or below the head. Returns 0, or an
 * error when the log could not be read (answered with an error header). */
static void answer_fetch(cb_bus_producer_t *p, const uint8_t *id, size_t id_len,
                         uint64_t request_id, uint64_t from_seq, uint32_t max_events,
                         bool masked, MDB_txn *txn, const cb_log_head_t *head)
{
    const uint8_t *recs[CB_BUS_MAX_EVENTS];
    size_t lens[CB_BUS_MAX_EVENTS];
    uint8_t *copies[2 * CB_BUS_MAX_EVENTS]; /* decompressed or masked records, freed after sending */
    uint32_t ncopies = 0;
    uint32_t n = 0;
    size_t bytes = 0;
    cb_error_t err;
    if (max_events == 0 || max_events > CB_BUS_MAX_EVENTS)
        max_events = CB_BUS_MAX_EVENTS;
    for (uint64_t seq = from_seq; seq <= head->seq && n < max_events; seq++) {
        uint8_t *owned;
        if (cb_log_get(p->log, txn, seq, &recs[n], &lens[n], &owned, &err) != 0) {
            log_error("bus_read_failed seq=%llu error=\"%s\"", (unsigned long long)seq,
                      err.message);
            send_header_only(p, id, id_len, request_id, from_seq, head->seq, err.message);
            goto out;
        }
        if (owned)
            copies[ncopies++] = owned;
        if (n > 0 && bytes + lens[n] > CB_BUS_MAX_BATCH_BYTES)
            break;
        uint8_t *copy = NULL;
        if (masked && cb_record_mask(recs[n], lens[n], &copy, &lens[n]) != 0) {
            log_error("bus_mask_failed seq=%llu", (unsigned long long)seq);
            send_header_only(p, id, id_len, request_id, from_seq, head->seq,
                             "a record could not be masked");
            goto out;
        }
        if (copy)
            recs[n] = copies[ncopies++] = copy;
        bytes += lens[n++];
    }
    Casebus__V1__BatchHeader h = CASEBUS__V1__BATCH_HEADER__INIT;
    h.request_id = request_id;
    h.producer = (char *)cb_log_producer(p->log);
    h.first_seq = from_seq;
    h.count = n;
    h.head_seq = head->seq;
    h.error = "";
    uint8_t hbuf[512];
    size_t hlen = casebus__v1__batch_header__get_packed_size(&h);
    casebus__v1__batch_header__pack(&h, hbuf);
    int rc = send_frames(p->sock, id, id_len, hbuf, hlen, recs, lens, n);
    cb_zwatch_kick(&p->watch);
    if (rc == -EHOSTUNREACH || rc == -EAGAIN) {
        /* The consumer is gone or its queue is full: it will ask again. */
        log_debug("bus_answer_dropped error=\"%s\"", zmq_strerror(-rc));
    } else if (rc < 0) {
        log_warnx("bus_send_failed error=\"%s\"", zmq_strerror(-rc));
    } else {
        cb_metric_inc(p->m_fetches);
        cb_metric_add(p->m_events_sent, n);
    }
out:
    for (uint32_t i = 0; i < ncopies; i++)
        free(copies[i]);
}

static void arm_timer(cb_bus_producer_t *p);

static void park(cb_bus_producer_t *p, const uint8_t *id, size_t id_len, uint64_t request_id,
                 uint64_t from_seq, uint32_t max_events, uint32_t max_wait_ms, uint64_t head,
                 bool masked)
{
    /* A consumer has one request outstanding: a new one replaces its old one. */
    for (size_t i = 0; i < p->nparked; i++) {
        if (p->parked[i].id_len == id_len && memcmp(p->parked[i].id, id, id_len) == 0) {
            p->parked[i] = p->parked[--p->nparked];
            break;
        }
    }
    if (p->nparked == CB_BUS_MAX_PARKED) {
        cb_metric_inc(p->m_refused);
        send_header_only(p, id, id_len, request_id, from_seq, head, NULL);
        return;
    }
    parked_t *q = &p->parked[p->nparked++];
    memcpy(q->id, id, id_len);
    q->id_len = id_len;
    q->request_id = request_id;
    q->from_seq = from_seq;
    q->max_events = max_events;
    q->deadline_ms = uv_now(p->loop) + max_wait_ms;
    q->masked = masked;
    cb_metric_set(p->m_parked, (double)p->nparked);
    arm_timer(p);
}

int cb_bus_request_parse(const uint8_t *data, size_t len, Casebus__V1__BusRequest **out,
                         cb_error_t *err)
{
    *out = NULL;
    Casebus__V1__BusRequest *req = casebus__v1__bus_request__unpack(NULL, len, data);
    if (req == NULL)
        return cb_error_set(err, CB_ERR_PROTO, "", "request does not decode as a BusRequest");
    if (req->kind_case == CASEBUS__V1__BUS_REQUEST__KIND__NOT_SET) {
        casebus__v1__bus_request__free_unpacked(req, NULL);
        return cb_error_set(err, CB_ERR_PROTO, "kind", "request has neither fetch nor locate");
    }
    *out = req;
    return 0;
}

/* A read transaction on the log and its head in it; on failure, logged and
 * *txn aborted. */
static int read_head(cb_bus_producer_t *p, MDB_txn **txn, cb_log_head_t *head, cb_error_t *err)
{
    int rc = cb_store_begin(cb_log_store(p->log), false, txn, err);
    if (rc == 0)
        rc = cb_log_head(p->log, *txn, head, err);
    if (rc != 0) {
        log_error("bus_read_failed error=\"%s\"", err->message);
        cb_store_abort(txn);
    }
    return rc;
}

static void handle_request(cb_bus_producer_t *p, const uint8_t *id, size_t id_len,
                           const uint8_t *data, size_t len, bool masked)
{
    Casebus__V1__BusRequest *req;
    cb_error_t perr;
    if (cb_bus_request_parse(data, len, &req, &perr) != 0) {
        cb_metric_inc(p->m_refused);
        send_header_only(p, id, id_len, 0, 0, 0, perr.message);
        return;
    }
    MDB_txn *txn = NULL;
    cb_error_t err;
    cb_log_head_t head;
    if (read_head(p, &txn, &head, &err) != 0) {
        send_header_only(p, id, id_len, 0, 0, 0, err.message);
        goto out;
    }
    if (req->kind_case == CASEBUS__V1__BUS_REQUEST__KIND_LOCATE) {
        uint64_t seq;
        if (cb_log_seq_at_time(p->log, txn, req->locate->time_ms, &seq, &err) != 0)
            send_header_only(p, id, id_len, req->locate->request_id, 0, head.seq, err.message);
        else
            send_header_only(p, id, id_len, req->locate->request_id, seq, head.seq, NULL);
        goto out;
    }
    Casebus__V1__Fetch *f = req->fetch;
    if (f->from_seq == 0) {
        send_header_only(p, id, id_len, f->request_id, head.seq + 1, head.seq, NULL);
    } else if (f->from_seq <= head.seq) {
        answer_fetch(p, id, id_len, f->request_id, f->from_seq, f->max_events, masked, txn,
                     &head);
    } else if (f->max_wait_ms == 0 || f->from_seq > head.seq + 1) {
        /* Nothing yet and no wait asked; or a cursor beyond head+1, which no
         * amount of waiting satisfies soon (a consumer ahead of a reset log). */
        send_header_only(p, id, id_len, f->request_id, f->from_seq, head.seq, NULL);
    } else {
        park(p, id, id_len, f->request_id, f->from_seq, f->max_events,
             f->max_wait_ms > 600000 ? 600000 : f->max_wait_ms, head.seq, masked);
    }
out:
    cb_store_abort(&txn);
    casebus__v1__bus_request__free_unpacked(req, NULL);
}

static void on_router_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    cb_bus_producer_t *p = ctx;
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0)
        goto out;
    if (!zmq_msg_more(&id) || zmq_msg_recv(&body, sock, ZMQ_DONTWAIT) < 0) {
        cb_metric_inc(p->m_refused);
        goto out;
    }
    bool extra = zmq_msg_more(&body);
    while (zmq_msg_more(&body)) { /* a peer sending more frames than asked: drop them */
        zmq_msg_close(&body);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, sock, ZMQ_DONTWAIT) < 0)
            goto out;
    }
    if (extra || zmq_msg_size(&id) > ZMQ_ID_MAX) {
        cb_metric_inc(p->m_refused);
        goto out;
    }
    handle_request(p, zmq_msg_data(&id), zmq_msg_size(&id), zmq_msg_data(&body),
                   zmq_msg_size(&body), !cb_curve_peer_unmasked(&body));
out:
    zmq_msg_close(&id);
    zmq_msg_close(&body);
}

void cb_bus_producer_wake(cb_bus_producer_t *p)
{
    if (p == NULL || p->nparked == 0)
        return;
    MDB_txn *txn = NULL;
    cb_error_t err;
    cb_log_head_t head;
    if (read_head(p, &txn, &head, &err) != 0)
        return;
    for (size_t i = 0; i < p->nparked;) {
        parked_t *q = &p->parked[i];
        if (q->from_seq <= head.seq) {
            parked_t done = *q;
            p->parked[i] = p->parked[--p->nparked];
            answer_fetch(p, done.id, done.id_len, done.request_id, done.from_seq,
                         done.max_events, done.masked, txn, &head);
        } else {
            i++;
        }
    }
    cb_store_abort(&txn);
    cb_metric_set(p->m_parked, (double)p->nparked);
}

static void on_park_timer(uv_timer_t *t)
{
    cb_bus_producer_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    for (size_t i = 0; i < p->nparked;) {
        parked_t *q = &p->parked[i];
        if (q->deadline_ms <= now) {
            parked_t done = *q;
            p->parked[i] = p->parked[--p->nparked];
            send_header_only(p, done.id, done.id_len, done.request_id, done.from_seq,
                             done.from_seq - 1, NULL);
        } else {
            i++;
        }
    }
    cb_metric_set(p->m_parked, (double)p->nparked);
    arm_timer(p);
}

static void arm_timer(cb_bus_producer_t *p)
{
    if (p->nparked == 0) {
        uv_timer_stop(&p->timer);
        return;
    }
    uint64_t first = UINT64_MAX, now = uv_now(p->loop);
    for (size_t i = 0; i < p->nparked; i++)
        if (p->parked[i].deadline_ms < first)
            first = p->parked[i].deadline_ms;
    uv_timer_start(&p->timer, on_park_timer, first > now ? first - now : 0, 0);
}

int cb_bus_producer_new(cb_bus_producer_t **out, uv_loop_t *loop, void *zctx, cb_log_t *log,
                        const char *endpoint, cb_metrics_t *metrics, cb_error_t *err)
{
    int rc;
    cb_bus_producer_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->parked = calloc(CB_BUS_MAX_PARKED, sizeof(parked_t))) == NULL) {
        free(p);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    p->loop = loop;
    p->log = log;
    p->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (p->sock == NULL) {
        rc = cb_error_set(err, CB_ERR_ZMQ, "", "zmq_socket ROUTER: %s", zmq_strerror(errno));
        goto out_free;
    }
    int one = 1, zero = 0, hwm = 100000;
    if (zmq_setsockopt(p->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0) {
        rc = cb_error_set(err, CB_ERR_ZMQ, "", "zmq_setsockopt: %s", zmq_strerror(errno));
        goto out_close;
    }
    if ((rc = cb_zbind(p->sock, endpoint, "bus", "bus_bind", err)) != 0)
        goto out_close;
    if ((rc = uv_timer_init(loop, &p->timer)) != 0) {
        rc = cb_error_set(err, CB_ERR_UV, "", "uv_timer_init: %s", uv_strerror(rc));
        goto out_close;
    }
    p->timer.data = p;
    if ((rc = cb_zwatch_init(&p->watch, loop, p->sock, on_router_readable, p, err)) != 0) {
        cb_bus_producer_destroy(&p);
        return rc;
    }
    const struct {
        cb_metric_t **m;
        bool gauge;
        const char *name, *help;
    } ms[] = {
        {&p->m_fetches, false, "fetches_answered_total", "Fetch requests answered with events"},
        {&p->m_events_sent, false, "events_sent_total", "Events sent to consumers"},
        {&p->m_parked, true, "parked_requests", "Fetch requests waiting for new events"},
        {&p->m_refused, false, "requests_refused_total", "Malformed or excess bus requests"},
    };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        char name[160];
        snprintf(name, sizeof(name), "casebus_bus_%s{producer=\"%s\"}", ms[i].name,
                 cb_log_producer(log));
        *ms[i].m = ms[i].gauge ? cb_metrics_gauge(metrics, name, ms[i].help)
                               : cb_metrics_counter(metrics, name, ms[i].help);
    }
    *out = p;
    return 0;

out_close:
    zmq_close(p->sock);
out_free:
    free(p->parked);
    free(p);
    return rc;
}

size_t cb_bus_producer_parked(const cb_bus_producer_t *p)
{
    return p->nparked;
}

static void producer_handle_closed(cb_bus_producer_t *p)
{
    if (--p->open_handles > 0)
        return;
    zmq_close(p->sock);
    free(p->parked);
    free(p);
}

static void on_producer_timer_closed(uv_handle_t *h)
{
    producer_handle_closed(h->data);
}

static void on_producer_watch_closed(cb_zwatch_t *w)
{
    producer_handle_closed(w->ctx);
}

void cb_bus_producer_destroy(cb_bus_producer_t **pp)
{
    cb_bus_producer_t *p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    while (p->nparked > 0) {
        parked_t *q = &p->parked[--p->nparked];
        send_header_only(p, q->id, q->id_len, q->request_id, q->from_seq, q->from_seq - 1, NULL);
    }
    /* The memory goes when the timer and (if it got that far) the watcher close. */
    bool watching = p->watch.open_handles > 0;
    p->open_handles = watching ? 2 : 1;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_producer_timer_closed);
    if (watching)
        cb_zwatch_close(&p->watch, on_producer_watch_closed);
}
