/*
 * control.c — what notify answers on its control socket (common/control.c):
 * subscriptions (add, remove, list), dead letters (list, send again), status.
 * Lists are answered as JSON in status_json.
 */
#include "notify.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int list_sub(void *ctx, const char *id, json_t *rec)
{
    (void)id;
    if (rec) {
        json_object_del(rec, "secret"); /* never shown back */
        json_object_del(rec, "old_secret");
        json_array_append(ctx, rec);
    }
    return 0;
}

typedef struct dead_ctx {
    notify_t *n;
    MDB_txn *txn;
    const char *sub; /* only this subscription's dead letters, as ids; NULL: every record */
    json_t *out;
} dead_ctx_t;

static int each_dead(void *ctx, const char *id, json_t *rec)
{
    (void)rec;
    dead_ctx_t *d = ctx;
    nt_delivery_t del;
    if (nt_delivery_get(d->n, d->txn, id, &del) != 0)
        return 0;
    if (d->sub == NULL)
        json_array_append_new(d->out, nt_delivery_json(&del));
    else if (strcmp(del.sub, d->sub) == 0)
        json_array_append_new(d->out, json_string(id));
    nt_delivery_free(&del);
    return 0;
}

typedef struct deliveries_ctx {
    const char *sub;
    json_t *out; /* newest last while collecting */
    size_t limit;
} deliveries_ctx_t;

static int list_delivery(void *ctx, const char *id, json_t *rec)
{
    (void)id;
    deliveries_ctx_t *d = ctx;
    if (rec == NULL || strcmp(json_string_value(json_object_get(rec, "sub")), d->sub) != 0)
        return 0;
    static const char *const keep[] = {"id", "webhook_id", "type", "event_id", "case_id",
                                       "state", "attempt", "last_status", "last_error",
                                       "last_latency_ms", "first_at_ms", "last_at_ms"};
    json_t *row = json_object();
    for (size_t i = 0; row && i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(rec, keep[i]);
        if (v)
            json_object_set(row, keep[i], v);
    }
    json_array_append_new(d->out, row);
    if (json_array_size(d->out) > d->limit)
        json_array_remove(d->out, 0); /* ids grow with time: keep the newest */
    return 0;
}

static char *status_json(notify_t *n)
{
    cb_error_t e;
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    size_t subs = 0, ready = 0, dead = 0, total = 0;
    if (cb_store_begin(n->d.store, false, &txn, &e) == 0) {
        cb_log_head(n->d.log, txn, &head, &e);
        subs = nt_count(n, txn, n->db_subs);
        ready = nt_count(n, txn, n->db_ready);
        dead = nt_count(n, txn, n->db_dead);
        total = nt_count(n, txn, n->db_deliveries);
    }
    cb_store_abort(&txn);
    json_t *ups = cb_daemon_upstreams_json(&n->d);
    json_t *st = json_pack("{s:s,s:I,s:o*,s:I,s:I,s:I,s:I,s:I}", "daemon", "notify", "log_head",
                           (json_int_t)head.seq, "upstreams", ups, "subscriptions",
                           (json_int_t)subs, "deliveries", (json_int_t)total,
                           "pending_deliveries", (json_int_t)ready,
                           "in_flight", (json_int_t)nt_sender_in_flight(n), "dead_letters",
                           (json_int_t)dead);
    char *s = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    return s;
}

static void refresh_metrics(cb_daemon_t *d, MDB_txn *txn, void *ctx)
{
    (void)d;
    notify_t *n = ctx;
    if (txn) {
        cb_metric_set(n->m_dead, (double)nt_count(n, txn, n->db_dead));
        cb_metric_set(n->m_pending, (double)nt_count(n, txn, n->db_ready));
        cb_metric_set(n->m_subs, (double)nt_count(n, txn, n->db_subs));
    }
    cb_metric_set(n->m_in_flight, (double)nt_sender_in_flight(n));
}

void nt_metrics_init(notify_t *n)
{
    cb_metrics_t *m = n->d.metrics;
    n->m_webhook_seconds = cb_metrics_histogram(
        m, "casebus_notify_webhook_seconds", "Seconds from a webhook request's start to its answer",
        cb_metrics_latency_buckets, CB_METRICS_LATENCY_BUCKETS);
    static const char *const outcomes[3] = {"delivered", "retry", "refused"}; /* nt_outcome_t */
    for (size_t i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof(name), "casebus_notify_attempts_total{outcome=\"%s\"}", outcomes[i]);
        n->m_attempts[i] = cb_metrics_counter(m, name, "Delivery attempts by outcome");
    }
    n->m_dead = cb_metrics_gauge(m, "casebus_notify_dead_letters",
                                 "Deliveries given up on, waiting for casebus redeliver");
    n->m_pending = cb_metrics_gauge(m, "casebus_notify_pending_deliveries",
                                    "Deliveries ready or waiting for a retry");
    n->m_in_flight = cb_metrics_gauge(m, "casebus_notify_in_flight", "Webhook requests in flight");
    n->m_subs = cb_metrics_gauge(m, "casebus_notify_subscriptions", "Subscriptions");
    n->d.refresh_metrics = refresh_metrics;
}

static void after_change(void *ctx, cb_control_req_t *cr)
{
    (void)cr;
    nt_sender_kick(ctx);
}

static int handle(void *ctx, cb_control_req_t *cr, cb_error_t *err)
{
    notify_t *n = ctx;
    const Casebus__V1__ControlRequest *req = cr->req;
    MDB_txn *txn;
    int rc;
    switch (req->kind_case) {
    case CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS:
        cr->status_json = status_json(n);
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    case CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_SUBSCRIPTIONS:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DEAD_LETTERS: {
        if ((rc = cb_store_begin(n->d.store, false, &txn, err)) != 0)
            return rc;
        json_t *out = json_array();
        if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_SUBSCRIPTIONS) {
            rc = nt_each(n, txn, n->db_subs, list_sub, out, err);
        } else {
            dead_ctx_t d = {n, txn, NULL, out};
            rc = nt_each(n, txn, n->db_dead, each_dead, &d, err);
        }
        cb_store_abort(&txn);
        cr->status_json = rc == 0 ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        if (rc != 0)
            return rc;
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    case CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DELIVERIES: {
        const Casebus__V1__ListDeliveries *l = req->list_deliveries;
        if ((rc = cb_store_begin(n->d.store, false, &txn, err)) != 0)
            return rc;
        json_t *sub = nt_get(n, txn, n->db_subs, l->subscription_id);
        if (sub == NULL) {
            cb_store_abort(&txn);
            return cb_error_set(err, CB_ERR_NOT_FOUND, "subscription_id", "no subscription %.64s",
                                l->subscription_id);
        }
        json_decref(sub);
        deliveries_ctx_t d = {l->subscription_id, json_array(),
                              l->limit == 0 ? 50 : l->limit > 1000 ? 1000 : l->limit};
        rc = nt_each(n, txn, n->db_deliveries, list_delivery, &d, err);
        cb_store_abort(&txn);
        json_t *newest_first = json_array();
        for (size_t i = json_array_size(d.out); i > 0; i--)
            json_array_append(newest_first, json_array_get(d.out, i - 1));
        json_decref(d.out);
        cr->status_json = rc == 0 ? json_dumps(newest_first, JSON_COMPACT) : NULL;
        json_decref(newest_first);
        if (rc != 0)
            return rc;
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    case CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_REDELIVER:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_ROTATE_SECRET:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_UPDATE_SUBSCRIPTION:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_TEST_SUBSCRIPTION:
        break;
    default:
        return cb_error_set(err, CB_ERR_INVALID, "kind",
                            "notify answers status, subscriptions and dead letters only");
    }
    if ((rc = cb_group_txn(n->d.group, &txn, err)) != 0)
        return rc;
    char id[NT_ID_MAX] = "";
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE) {
        const Casebus__V1__Subscribe *s = req->subscribe;
        rc = nt_subscribe(n, txn, s, id, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "subscription %s: %s -> %s", id,
                     s->org_id, s->url);
    } else if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_UPDATE_SUBSCRIPTION) {
        snprintf(id, sizeof(id), "%s", req->update_subscription->subscription_id);
        rc = nt_update_subscription(n, txn, req->update_subscription, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "subscription %s changed", id);
    } else if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_TEST_SUBSCRIPTION) {
        rc = nt_test_subscription(n, txn, req->test_subscription->subscription_id, id, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "ping queued for subscription %s as delivery %s",
                     req->test_subscription->subscription_id, id);
    } else if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE) {
        snprintf(id, sizeof(id), "%s", req->unsubscribe->subscription_id);
        rc = nt_unsubscribe(n, txn, id, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "subscription %s removed", id);
    } else if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_ROTATE_SECRET) {
        const Casebus__V1__RotateSecret *rs = req->rotate_secret;
        snprintf(id, sizeof(id), "%s", rs->subscription_id);
        rc = nt_rotate_secret(n, txn, id, rs->secret, rs->overlap_seconds, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message),
                     "subscription %s: new secret; the old one signs too for %u s", id,
                     rs->overlap_seconds);
    } else if (req->redeliver->dead_of_subscription && *req->redeliver->dead_of_subscription) {
        const char *sub_id = req->redeliver->dead_of_subscription;
        json_t *sub = nt_get(n, txn, n->db_subs, sub_id);
        dead_ctx_t d = {n, txn, sub_id, json_array()};
        rc = sub == NULL ? cb_error_set(err, CB_ERR_NOT_FOUND, "dead_of_subscription",
                                        "no subscription %.64s", sub_id)
                         : nt_each(n, txn, n->db_dead, each_dead, &d, err);
        json_decref(sub);
        size_t i;
        json_t *v;
        json_array_foreach(d.out, i, v) {
            if (rc != 0)
                break;
            rc = nt_redeliver(n, txn, json_string_value(v), err);
        }
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message),
                     "%zu dead letters of subscription %s will be sent again",
                     json_array_size(d.out), sub_id);
        snprintf(id, sizeof(id), "%s", sub_id);
        json_decref(d.out);
    } else {
        snprintf(id, sizeof(id), "%s", req->redeliver->delivery_id);
        rc = nt_redeliver(n, txn, id, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "delivery %s will be sent again", id);
    }
    /* Refusals (invalid, unknown, conflict) come before any write. */
    cr->wrote = rc == 0 || (rc != CB_ERR_INVALID && rc != CB_ERR_NOT_FOUND &&
                            rc != CB_ERR_CONFLICT);
    if (rc != 0)
        return rc;
    snprintf(cr->id, sizeof(cr->id), "%s", id);
    cr->after_commit = after_change;
    return 0;
}

int nt_control_start(notify_t *n, const char *endpoint, cb_error_t *err)
{
    return cb_control_start(&n->control, &n->d, endpoint, handle, n, err);
}

void nt_control_stop(notify_t *n)
{
    cb_control_stop(&n->control);
}
