/*
 * stream.c — notify's ZeroMQ stream channel: a ROUTER at stream_bind where a
 * native platform pulls the events addressed to its organisation, as a
 * consumer pulls a log (proto/casebus/v1/bus.proto, StreamFetch). Each
 * subscription with channel "zmq" has its own stream (sequence from 1), kept
 * in notify's store in the same transaction that applied the source event, so
 * nothing is lost while the platform is away; the platform keeps its cursor.
 * A fetch past the head is parked until something arrives or its wait ends.
 */
#include "notify.h"
#include "log.h"

#include "casebus/v1/bus.pb-c.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PARK_MAX 256
#define BATCH_MAX 512

typedef struct parked {
    cb_zenvelope_t env;
    uint64_t request_id, from_seq;
    uint32_t max_events;
    int64_t until_ms;
    char sub[NT_ID_MAX];
    bool used;
} parked_t;

typedef struct notify_stream {
    notify_t *n;
    void *sock;
    cb_zwatch_t watch;
    uv_timer_t timer;
    parked_t parked[PARK_MAX];
    bool open;
} notify_stream_t;

static void send_batch(notify_stream_t *st, const cb_zenvelope_t *env, uint64_t request_id,
                       const char *sub, uint64_t from, uint32_t max, uint64_t head, MDB_txn *txn,
                       const char *error)
{
    char producer[NT_ID_MAX + 8];
    snprintf(producer, sizeof(producer), "notify:%s", sub);
    uint32_t count = 0;
    MDB_val recs[BATCH_MAX];
    if (error == NULL) {
        if (max == 0 || max > BATCH_MAX)
            max = BATCH_MAX;
        for (uint64_t seq = from; seq <= head && count < max; seq++)
            if (nt_stream_get(st->n, txn, sub, seq, &recs[count]) == 0)
                count++;
            else
                break;
    }
    Casebus__V1__BatchHeader h = CASEBUS__V1__BATCH_HEADER__INIT;
    h.request_id = request_id;
    h.producer = producer;
    h.first_seq = from;
    h.count = count;
    h.head_seq = head;
    h.error = (char *)(error ? error : "");
    uint8_t hbuf[512];
    size_t hlen = casebus__v1__batch_header__get_packed_size(&h);
    if (hlen > sizeof(hbuf))
        return;
    casebus__v1__batch_header__pack(&h, hbuf);
    /* The envelope, then the header and the records, as one multipart message. */
    for (size_t i = 0; i < env->n; i++)
        if (zmq_send(st->sock, env->frames[i], env->len[i], ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return;
    if (zmq_send(st->sock, hbuf, hlen, (count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
        return;
    for (uint32_t i = 0; i < count; i++)
        if (zmq_send(st->sock, recs[i].mv_data, recs[i].mv_size,
                     (i + 1 < count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
            break;
    cb_zwatch_kick(&st->watch);
}

/* The subscription's secret checks out? (constant time) */
static bool authorised(notify_t *n, MDB_txn *txn, const char *sub_id, const char *secret)
{
    json_t *sub = nt_get(n, txn, n->db_subs, sub_id);
    const char *want = sub ? json_string_value(json_object_get(sub, "secret")) : NULL;
    const char *channel = sub ? json_string_value(json_object_get(sub, "channel")) : NULL;
    bool ok = want && channel && strcmp(channel, "zmq") == 0 && secret &&
              strlen(want) == strlen(secret) && sodium_memcmp(want, secret, strlen(want)) == 0;
    json_decref(sub);
    return ok;
}

static void on_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    notify_stream_t *st = ctx;
    cb_zenvelope_t env;
    zmq_msg_t m;
    if (cb_zrecv_request(sock, &env, &m) != 0)
        return;
    Casebus__V1__StreamFetch *f =
        casebus__v1__stream_fetch__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    MDB_txn *txn;
    cb_error_t err;
    if (f == NULL || cb_store_begin(st->n->d.store, false, &txn, &err) != 0) {
        send_batch(st, &env, f ? f->request_id : 0, "", 0, 0, 0, NULL,
                   f ? "notify cannot read its store"
                     : "the frame is not a casebus.v1.StreamFetch");
        if (f)
            casebus__v1__stream_fetch__free_unpacked(f, NULL);
        return;
    }
    const char *sub = f->subscription_id ? f->subscription_id : "";
    if (strlen(sub) >= NT_ID_MAX || !authorised(st->n, txn, sub, f->secret)) {
        send_batch(st, &env, f->request_id, sub, f->from_seq, 0, 0, NULL,
                   "unknown stream subscription or wrong secret");
    } else {
        uint64_t head = nt_stream_head(st->n, txn, sub);
        uint64_t from = f->from_seq;
        if (from == 0 || from <= head || f->max_wait_ms == 0) {
            send_batch(st, &env, f->request_id, sub, from ? from : head + 1, f->max_events, head,
                       txn, NULL);
        } else {
            size_t i = 0;
            while (i < PARK_MAX && st->parked[i].used)
                i++;
            if (i == PARK_MAX) {
                send_batch(st, &env, f->request_id, sub, from, 0, head, txn, NULL);
            } else {
                parked_t *p = &st->parked[i];
                p->used = true;
                p->env = env;
                p->request_id = f->request_id;
                p->from_seq = from;
                p->max_events = f->max_events;
                p->until_ms = st->n->now() + (f->max_wait_ms > 30000 ? 30000 : f->max_wait_ms);
                snprintf(p->sub, sizeof(p->sub), "%s", sub);
            }
        }
    }
    cb_store_abort(&txn);
    casebus__v1__stream_fetch__free_unpacked(f, NULL);
}

/* Answers parked fetches that have news or whose wait has ended. */
static void answer_parked(notify_stream_t *st, bool expired_only)
{
    MDB_txn *txn;
    cb_error_t err;
    if (!st->open || cb_store_begin(st->n->d.store, false, &txn, &err) != 0)
        return;
    int64_t now = st->n->now();
    for (size_t i = 0; i < PARK_MAX; i++) {
        parked_t *p = &st->parked[i];
        if (!p->used)
            continue;
        uint64_t head = nt_stream_head(st->n, txn, p->sub);
        bool news = !expired_only && head >= p->from_seq;
        if (news || now >= p->until_ms) {
            send_batch(st, &p->env, p->request_id, p->sub, p->from_seq, p->max_events, head, txn,
                       NULL);
            p->used = false;
        }
    }
    cb_store_abort(&txn);
}

static void on_tick(uv_timer_t *t)
{
    answer_parked(t->data, true);
}

void nt_stream_wake(notify_t *n)
{
    if (n->stream)
        answer_parked(n->stream, false);
}

int nt_stream_start(notify_t *n, const char *endpoint, cb_error_t *err)
{
    notify_stream_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    st->n = n;
    int rc =
        cb_zrouter_bind(n->d.zctx, endpoint, "stream", "stream_bind", "stream", 0, &st->sock, err);
    if (rc != 0) {
        free(st);
        return rc;
    }
    rc = cb_zwatch_init(&st->watch, n->d.loop, st->sock, on_readable, st, err);
    if (rc == 0 && (rc = uv_timer_init(n->d.loop, &st->timer)) == 0) {
        st->timer.data = st;
        rc = uv_timer_start(&st->timer, on_tick, 100, 100);
        if (rc != 0)
            rc = cb_error_set(err, CB_ERR_UV, "", "stream timer: %s", uv_strerror(rc));
    }
    if (rc != 0) {
        zmq_close(st->sock);
        free(st);
        return rc;
    }
    st->open = true;
    n->stream = st;
    return 0;
}

void nt_stream_stop(notify_t *n)
{
    notify_stream_t *st = n->stream;
    if (st == NULL)
        return;
    answer_parked(st, false); /* every parked fetch gets its answer */
    for (size_t i = 0; i < PARK_MAX; i++)
        if (st->parked[i].used) {
            MDB_txn *txn;
            cb_error_t err;
            if (cb_store_begin(n->d.store, false, &txn, &err) == 0) {
                send_batch(st, &st->parked[i].env, st->parked[i].request_id, st->parked[i].sub,
                           st->parked[i].from_seq, 0, nt_stream_head(n, txn, st->parked[i].sub),
                           txn, NULL);
                cb_store_abort(&txn);
            }
        }
    n->stream = NULL;
    st->open = false;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, NULL);
    cb_zwatch_close_free(&st->watch);
}
