/*
 * control.c — router's control socket: a ROUTER taking one ControlRequest per
 * message (from the `casebus` CLI) and answering one ControlReply. Imports are
 * validated completely, written in the turn's group transaction, answered once
 * committed, and only then adopted by the in-memory registry.
 */
#include "router.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct router_control {
    router_t *r;
    void *sock;
    cb_zwatch_t watch;
    bool open;
} router_control_t;

typedef struct pending {
    router_control_t *c;
    cb_zenvelope_t env;
    Casebus__V1__ControlReply reply;
    char request_id[64], message[512], code[32], field[64], status[512];
    bool catalog;
} pending_t;

static void send_reply(pending_t *p)
{
    router_control_t *c = p->c;
    if (!c->open)
        return;
    p->reply.request_id = p->request_id;
    p->reply.message = p->message;
    p->reply.error_code = p->code;
    p->reply.error_field = p->field;
    if (p->reply.status_json == NULL)
        p->reply.status_json = "";
    size_t len = casebus__v1__control_reply__get_packed_size(&p->reply);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return;
    casebus__v1__control_reply__pack(&p->reply, buf);
    if (cb_zsend_reply(&c->watch, &p->env, buf, len) != 0)
        log_warnx("control_reply_dropped error=\"%s\"", zmq_strerror(errno));
    free(buf);
}

static void fail(pending_t *p, const cb_error_t *err)
{
    p->reply.ok = false;
    snprintf(p->code, sizeof(p->code), "%s", cb_strerror(err->code));
    snprintf(p->field, sizeof(p->field), "%s", err->field);
    snprintf(p->message, sizeof(p->message), "%s", err->message);
}

/* After the commit: adopt the import in memory, then answer. */
static void on_committed(void *arg, int status, const cb_error_t *err)
{
    pending_t *p = arg;
    router_t *r = p->c->r;
    if (status != 0) {
        fail(p, err);
    } else {
        /* Rebuild from the store: what is in memory is exactly what is on disk. */
        router_registry_t *fresh = router_registry_new();
        router_registry_t *old = r->reg;
        cb_error_t e;
        r->reg = fresh;
        if (fresh == NULL || router_state_load(r, &e) != 0) {
            log_error("registry_reload_failed error=\"%s\"", fresh ? e.message : "out of memory");
            router_registry_destroy(&r->reg);
            r->reg = old;
        } else {
            router_registry_destroy(&old);
        }
        log_info("%s_imported version=%u count=%llu", p->catalog ? "catalog" : "orgs",
                 p->reply.version, (unsigned long long)p->reply.count);
    }
    send_reply(p);
    free(p);
}

static void status_json(router_t *r, char *buf, size_t size)
{
    cb_error_t e;
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    if (cb_store_begin(r->d.store, false, &txn, &e) == 0)
        cb_log_head(r->d.log, txn, &head, &e);
    cb_store_abort(&txn);
    cb_bus_upstream_info_t info = {0};
    bool up = r->d.upstream && cb_bus_consumer_info(r->d.upstream, 0, &info);
    snprintf(buf, size,
             "{\"daemon\":\"router\",\"log_head\":%llu,\"orgs\":%zu,\"catalog_version\":%u,"
             "\"upstream\":%s%s%s,\"upstream_next_seq\":%llu,\"upstream_head\":%llu}",
             (unsigned long long)head.seq, router_org_count(r->reg),
             router_catalog_latest(r->reg), up ? "\"" : "", up ? info.producer : "null",
             up ? "\"" : "", (unsigned long long)info.next_seq, (unsigned long long)info.head_seq);
}

static void handle(router_control_t *c, pending_t *p, const uint8_t *data, size_t len)
{
    router_t *r = c->r;
    cb_error_t err;
    cb_error_clear(&err);
    Casebus__V1__ControlRequest *req = casebus__v1__control_request__unpack(NULL, len, data);
    if (req == NULL || req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND__NOT_SET) {
        cb_error_set(&err, CB_ERR_PROTO, "", "the frame is not a casebus.v1.ControlRequest");
        fail(p, &err);
        goto reply_now;
    }
    snprintf(p->request_id, sizeof(p->request_id), "%s", req->request_id ? req->request_id : "");
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS) {
        status_json(r, p->status, sizeof(p->status));
        p->reply.ok = true;
        p->reply.status_json = p->status;
        goto reply_now;
    }
    if (r->d.shutting_down) {
        cb_error_set(&err, CB_ERR_SHUTDOWN, "", "router is shutting down");
        fail(p, &err);
        goto reply_now;
    }
    MDB_txn *txn;
    if (cb_group_txn(r->d.group, &txn, &err) != 0) {
        fail(p, &err);
        goto reply_now;
    }
    int rc;
    p->catalog = req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CATALOG;
    if (p->catalog)
        rc = router_import_catalog(r, txn, req->import_catalog, &p->reply, &err);
    else
        rc = router_import_orgs(r, txn, req->import_orgs, &p->reply, &err);
    if (rc != 0) {
        /* Refusals come before any write; a store failure may come after. */
        if (rc != CB_ERR_INVALID && rc != CB_ERR_CONFLICT)
            cb_group_fail(r->d.group, &err);
        fail(p, &err);
        goto reply_now;
    }
    p->reply.ok = true;
    snprintf(p->message, sizeof(p->message), "%s version %u: %llu %s imported",
             p->catalog ? "catalogue" : "organisation registry", p->reply.version,
             (unsigned long long)p->reply.count, p->catalog ? "matters" : "organisations");
    if (cb_group_join(r->d.group, on_committed, p, &err) != 0) {
        cb_group_fail(r->d.group, &err);
        fail(p, &err);
        goto reply_now;
    }
    casebus__v1__control_request__free_unpacked(req, NULL);
    return;
reply_now:
    if (req)
        casebus__v1__control_request__free_unpacked(req, NULL);
    send_reply(p);
    free(p);
}

static void on_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    router_control_t *c = ctx;
    pending_t *p = calloc(1, sizeof(*p));
    zmq_msg_t m;
    cb_zenvelope_t env;
    int rc = cb_zrecv_request(sock, p ? &p->env : &env, &m);
    if (rc != 0 || p == NULL) {
        if (rc == 0)
            zmq_msg_close(&m);
        free(p);
        return;
    }
    casebus__v1__control_reply__init(&p->reply);
    p->c = c;
    handle(c, p, zmq_msg_data(&m), zmq_msg_size(&m));
    zmq_msg_close(&m);
}

int router_control_start(router_t *r, const char *endpoint, cb_error_t *err)
{
    router_control_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    c->r = r;
    c->sock = zmq_socket(r->d.zctx, ZMQ_ROUTER);
    int zero = 0;
    int64_t maxmsg = 64 << 20; /* a county catalogue of tens of thousands of matters */
    if (c->sock == NULL || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
        zmq_bind(c->sock, endpoint) != 0) {
        int rc = cb_error_set(err, CB_ERR_ZMQ, "control_bind", "cannot bind %s: %s", endpoint,
                              zmq_strerror(errno));
        if (c->sock)
            zmq_close(c->sock);
        free(c);
        return rc;
    }
    int rc = cb_zwatch_init(&c->watch, r->d.loop, c->sock, on_readable, c, err);
    if (rc != 0) {
        zmq_close(c->sock);
        free(c);
        return rc;
    }
    c->open = true;
    r->control = c;
    return 0;
}

static void on_closed(cb_zwatch_t *w)
{
    router_control_t *c = w->ctx;
    zmq_close(c->sock);
    free(c);
}

void router_control_stop(router_t *r)
{
    router_control_t *c = r->control;
    if (c == NULL)
        return;
    r->control = NULL;
    c->open = false;
    cb_zwatch_close(&c->watch, on_closed);
}
