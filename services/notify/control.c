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
    json_t *out;
} dead_ctx_t;

static int list_dead(void *ctx, const char *id, json_t *rec)
{
    (void)rec;
    dead_ctx_t *d = ctx;
    json_t *del = nt_get(d->n, d->txn, d->n->db_deliveries, id);
    if (del == NULL)
        return 0;
    json_object_del(del, "body");
    json_array_append_new(d->out, del);
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
            dead_ctx_t d = {n, txn, out};
            rc = nt_each(n, txn, n->db_dead, list_dead, &d, err);
        }
        cb_store_abort(&txn);
        cr->status_json = rc == 0 ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        if (rc != 0)
            return rc;
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    case CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_REDELIVER:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_ROTATE_SECRET:
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
        rc = nt_subscribe(n, txn, s->org_id, s->channel, s->url, s->secret,
                          (const char *const *)s->event_types, s->n_event_types,
                          s->rate_per_second, id, err);
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "subscription %s: %s -> %s", id,
                     s->org_id, s->url);
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
