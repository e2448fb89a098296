/*
 * control.c — the control socket every daemon binds (control.h): decoding,
 * refusals while stopping, answers after the group commit. The meaning of each
 * request belongs to the daemon's handler.
 */
#include "control.h"
#include "curve.h"
#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct cb_control {
    cb_daemon_t *d;
    void *sock;
    cb_zwatch_t watch;
    bool open, closed;
    unsigned working; /* requests whose work is on the thread pool */
    cb_control_fn handle;
    void *ctx;
};

typedef struct pending {
    cb_control_t *c;
    cb_zenvelope_t env;
    cb_control_req_t r;
    Casebus__V1__ControlRequest *req;
    uv_work_t work;
    char request_id[64], code[32], field[64];
} pending_t;

static void finish(pending_t *p)
{
    cb_control_t *c = p->c;
    Casebus__V1__ControlReply *reply = &p->r.reply;
    if (c->open) {
        reply->request_id = p->request_id;
        reply->message = p->r.message;
        reply->id = p->r.id;
        reply->error_code = p->code;
        reply->error_field = p->field;
        reply->status_json = p->r.status_json ? p->r.status_json : "";
        size_t len = casebus__v1__control_reply__get_packed_size(reply);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL) {
            log_warnx("control_reply_dropped error=\"out of memory\"");
        } else {
            casebus__v1__control_reply__pack(reply, buf);
            if (cb_zsend_reply(&c->watch, &p->env, buf, len) != 0)
                log_warnx("control_reply_dropped error=\"%s\"", zmq_strerror(errno));
            free(buf);
        }
    }
    free(p->r.status_json);
    if (p->req)
        casebus__v1__control_request__free_unpacked(p->req, NULL);
    free(p);
}

static void refuse(pending_t *p, const cb_error_t *err)
{
    p->r.reply.ok = false;
    snprintf(p->code, sizeof(p->code), "%s", cb_strerror(err->code));
    snprintf(p->field, sizeof(p->field), "%s", err->field);
    snprintf(p->r.message, sizeof(p->r.message), "%s", err->message);
}

static void on_committed(void *arg, int status, const cb_error_t *err)
{
    pending_t *p = arg;
    if (status != 0) {
        refuse(p, err);
    } else if (p->r.after_commit) {
        p->r.after_commit(p->c->ctx, &p->r);
    }
    finish(p);
}

static void conclude(cb_control_t *c, pending_t *p, int rc, cb_error_t *err);

static void run_work(uv_work_t *w)
{
    pending_t *p = w->data;
    p->r.work(&p->r);
}

static void after_work(uv_work_t *w, int status)
{
    (void)status;
    pending_t *p = w->data;
    cb_control_t *c = p->c;
    c->working--;
    cb_error_t err;
    cb_error_clear(&err);
    p->r.work = NULL;
    p->r.stopping = !c->open || c->d->shutting_down;
    int rc = p->r.resume(c->ctx, &p->r, &err);
    if (p->r.stopping && rc == 0)
        rc = cb_error_set(&err, CB_ERR_SHUTDOWN, "", "%s is shutting down", c->d->name);
    conclude(c, p, rc, &err);
    if (c->closed && c->working == 0) {
        zmq_close(c->sock);
        free(c);
    }
}

/* What follows the handler (or its resume): refuse, answer, start its work,
 * or wait for the group commit. */
static void conclude(cb_control_t *c, pending_t *p, int rc, cb_error_t *err)
{
    if (rc != 0) {
        if (p->r.wrote)
            cb_group_fail(c->d->group, err);
        refuse(p, err);
        finish(p);
        return;
    }
    if (p->r.work && p->r.resume && !p->r.wrote) {
        p->work.data = p;
        if (uv_queue_work(c->d->loop, &p->work, run_work, after_work) == 0) {
            c->working++;
            return;
        }
        c->working++; /* no thread pool: do it here */
        p->r.work(&p->r);
        after_work(&p->work, 0);
        return;
    }
    p->r.reply.ok = true;
    if (!p->r.wrote) {
        finish(p);
        return;
    }
    if (cb_group_join(c->d->group, on_committed, p, err) != 0) {
        cb_group_fail(c->d->group, err);
        refuse(p, err);
        finish(p);
    }
}

static void handle(cb_control_t *c, pending_t *p, const uint8_t *data, size_t len)
{
    cb_error_t err;
    cb_error_clear(&err);
    p->req = casebus__v1__control_request__unpack(NULL, len, data);
    if (p->req == NULL || p->req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND__NOT_SET) {
        cb_error_set(&err, CB_ERR_PROTO, "", "the frame is not a casebus.v1.ControlRequest");
        refuse(p, &err);
        finish(p);
        return;
    }
    snprintf(p->request_id, sizeof(p->request_id), "%s",
             p->req->request_id ? p->req->request_id : "");
    p->r.req = p->req;
    bool is_status = p->req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS;
    if (c->d->shutting_down && !is_status) {
        cb_error_set(&err, CB_ERR_SHUTDOWN, "", "%s is shutting down", c->d->name);
        refuse(p, &err);
        finish(p);
        return;
    }
    conclude(c, p, c->handle(c->ctx, &p->r, &err), &err);
}

static void on_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    cb_control_t *c = ctx;
    zmq_msg_t m;
    int rc;
    pending_t *p = cb_zrecv_new(sock, sizeof(*p), offsetof(pending_t, env), &m, &rc);
    if (p == NULL)
        return;
    casebus__v1__control_reply__init(&p->r.reply);
    p->c = c;
    handle(c, p, zmq_msg_data(&m), zmq_msg_size(&m));
    zmq_msg_close(&m);
}

int cb_control_start(cb_control_t **out, cb_daemon_t *d, const char *endpoint,
                     cb_control_fn handle_fn, void *ctx, cb_error_t *err)
{
    cb_control_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    c->d = d;
    c->handle = handle_fn;
    c->ctx = ctx;
    /* a county catalogue of tens of thousands of matters fits */
    int rc = cb_zrouter_bind(d->zctx, endpoint, "control", "control_bind", "control", 64 << 20,
                             &c->sock, err);
    if (rc != 0) {
        free(c);
        return rc;
    }
    rc = cb_zwatch_init(&c->watch, d->loop, c->sock, on_readable, c, err);
    if (rc != 0) {
        zmq_close(c->sock);
        free(c);
        return rc;
    }
    c->open = true;
    *out = c;
    return 0;
}

static void on_closed(cb_zwatch_t *w)
{
    cb_control_t *c = w->ctx;
    c->closed = true;
    if (c->working > 0)
        return; /* freed by the last after_work */
    zmq_close(c->sock);
    free(c);
}

void cb_control_stop(cb_control_t **cp)
{
    cb_control_t *c = *cp;
    if (c == NULL)
        return;
    *cp = NULL;
    c->open = false;
    cb_zwatch_close(&c->watch, on_closed);
}

int cb_control_call(const char *daemon, const char *endpoint,
                    const Casebus__V1__ControlRequest *req, int timeout_ms,
                    Casebus__V1__ControlReply **out, cb_error_t *err)
{
    int rc = 0;
    *out = NULL;
    void *zctx = zmq_ctx_new();
    void *s = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL;
    size_t len = casebus__v1__control_request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    int zero = 0;
    if (s == NULL || buf == NULL) {
        rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((rc = cb_curve_client(s, daemon, err)) != 0)
        goto out;
    if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms)) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        rc = cb_error_set(err, CB_ERR_ZMQ, "", "cannot connect to %s: %s", endpoint,
                          zmq_strerror(errno));
        goto out;
    }
    casebus__v1__control_request__pack(req, buf);
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_send(s, buf, len, 0) < 0 || zmq_msg_recv(&m, s, 0) < 0) {
        rc = cb_error_set(err, CB_ERR_AGAIN, "",
                          "no answer from %s at %s within %d s: is it running%s?", daemon, endpoint,
                          timeout_ms / 1000,
                          cb_curve_on() ? ", and is this program's key ($CASEBUS_KEY, or "
                                          "operators/operator.key) one of its operators' keys"
                                        : "");
    } else if ((*out = casebus__v1__control_reply__unpack(NULL, zmq_msg_size(&m),
                                                          zmq_msg_data(&m))) == NULL) {
        rc = cb_error_set(err, CB_ERR_PROTO, "", "%s answered something that is not a ControlReply",
                          endpoint);
    }
    zmq_msg_close(&m);
out:
    free(buf);
    if (s)
        zmq_close(s);
    if (zctx)
        zmq_ctx_term(zctx);
    return rc;
}
