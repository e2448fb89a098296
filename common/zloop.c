/*
 * zloop.c — see zloop.h: the edge-triggered ZMQ_FD dance.
 */
#include "zloop.h"
#include "curve.h"
#include "log.h"
#include "grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define ZWATCH_BUDGET 256

static void drain(cb_zwatch_t *w)
{
    for (unsigned n = 0;; n++) {
        int events = 0;
        size_t sz = sizeof(events);
        if (zmq_getsockopt(w->sock, ZMQ_EVENTS, &events, &sz) != 0)
            return; /* socket closing (ETERM/ENOTSOCK): nothing to drain */
        if (!(events & ZMQ_POLLIN))
            return;
        if (n == w->budget) {
            cb_zwatch_kick(w); /* fairness: let other handles run, come back next turn */
            return;
        }
        w->on_readable(w, w->sock, w->ctx);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    cb_zwatch_t *w = h->data;
    if (status < 0)
        log_warnx("zmq_poll_failed error=\"%s\"", uv_strerror(status));
    drain(w);
}

static void on_idle(uv_idle_t *h)
{
    cb_zwatch_t *w = h->data;
    uv_idle_stop(h);
    drain(w);
}

int cb_zwatch_init(cb_zwatch_t *w, uv_loop_t *loop, void *sock, cb_zwatch_fn on_readable, void *ctx,
                   cb_error_t *err)
{
    memset(w, 0, sizeof(*w));
    w->sock = sock;
    w->on_readable = on_readable;
    w->ctx = ctx;
    w->budget = ZWATCH_BUDGET;
    int fd;
    size_t sz = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &sz) != 0)
        return cb_error_set(err, CB_ERR_ZMQ, "", "zmq_getsockopt ZMQ_FD: %s", zmq_strerror(errno));
    int rc = uv_poll_init(loop, &w->poll, fd);
    if (rc != 0)
        return cb_error_set(err, CB_ERR_UV, "", "uv_poll_init: %s", uv_strerror(rc));
    w->poll.data = w;
    w->open_handles = 1;
    if ((rc = uv_idle_init(loop, &w->idle)) != 0) {
        cb_zwatch_close(w, NULL);
        return cb_error_set(err, CB_ERR_UV, "", "uv_idle_init: %s", uv_strerror(rc));
    }
    w->idle.data = w;
    w->open_handles = 2;
    if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_poll)) != 0) {
        cb_zwatch_close(w, NULL);
        return cb_error_set(err, CB_ERR_UV, "", "uv_poll_start: %s", uv_strerror(rc));
    }
    /* Messages may already be queued: ZMQ_FD will not signal for them. */
    cb_zwatch_kick(w);
    return 0;
}

void cb_zwatch_kick(cb_zwatch_t *w)
{
    if (w->open_handles == 2 && !uv_is_closing((uv_handle_t *)&w->idle))
        uv_idle_start(&w->idle, on_idle);
}

static void on_handle_closed(uv_handle_t *h)
{
    cb_zwatch_t *w = h->data;
    if (--w->open_handles == 0 && w->on_closed)
        w->on_closed(w);
}

void cb_zwatch_close(cb_zwatch_t *w, void (*on_closed)(cb_zwatch_t *w))
{
    w->on_closed = on_closed;
    int handles = w->open_handles;
    if (handles == 0) {
        if (on_closed)
            on_closed(w);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&w->poll))
        uv_close((uv_handle_t *)&w->poll, on_handle_closed);
    if (handles == 2 && !uv_is_closing((uv_handle_t *)&w->idle))
        uv_close((uv_handle_t *)&w->idle, on_handle_closed);
}

static void on_owner_closed(cb_zwatch_t *w)
{
    zmq_close(w->sock);
    free(w->ctx);
}

void cb_zwatch_close_free(cb_zwatch_t *w)
{
    cb_zwatch_close(w, on_owner_closed);
}

int cb_zsend(cb_zwatch_t *w, const void *data, size_t len, bool more)
{
    int rc = zmq_send(w->sock, data, len, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
    cb_zwatch_kick(w);
    if (rc < 0)
        return errno == EAGAIN ? CB_ERR_AGAIN : CB_ERR_ZMQ;
    return 0;
}

int cb_zbind(void *sock, const char *endpoint, const char *domain, const char *field,
             cb_error_t *err)
{
    int crc = cb_curve_server(sock, domain, endpoint, err);
    if (crc != 0)
        return crc;
    bool ipc = strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@'; /* '@': abstract */
    mode_t old = ipc ? umask(077) : 0;
    int rc = zmq_bind(sock, endpoint);
    if (ipc) {
        int saved = errno;
        umask(old);
        if (rc == 0 && chmod(endpoint + 6, 0600) != 0)
            log_warn("chmod_failed file=%s", endpoint + 6);
        errno = saved;
    }
    if (rc != 0)
        return cb_error_set(err, CB_ERR_ZMQ, field, "cannot bind %s: %s", endpoint,
                            zmq_strerror(errno));
    return 0;
}

int cb_zrecv_request(void *sock, cb_zenvelope_t *env, zmq_msg_t *body)
{
    bool bad = false;
    env->n = 0;
    zmq_msg_init(body);
    for (;;) {
        if (zmq_msg_recv(body, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(body);
            return CB_ERR_AGAIN;
        }
        if (!zmq_msg_more(body))
            break;
        if (env->n < CB_ZENV_MAX && zmq_msg_size(body) <= CB_ZENV_FRAME_MAX) {
            memcpy(env->frames[env->n], zmq_msg_data(body), zmq_msg_size(body));
            env->len[env->n++] = zmq_msg_size(body);
        } else {
            bad = true;
        }
    }
    if (bad || env->n == 0) {
        zmq_msg_close(body);
        return CB_ERR_PROTO;
    }
    return 0;
}

void *cb_zrecv_new(void *sock, size_t size, size_t env_at, zmq_msg_t *body, int *rc)
{
    cb_zenvelope_t spare;
    uint8_t *p = calloc(1, size);
    *rc = cb_zrecv_request(sock, p ? (cb_zenvelope_t *)(p + env_at) : &spare, body);
    if (*rc == 0 && p != NULL)
        return p;
    if (*rc == 0) {
        zmq_msg_close(body);
        *rc = CB_ERR_NOMEM;
    }
    free(p);
    return NULL;
}

int cb_zsend_reply(cb_zwatch_t *w, const cb_zenvelope_t *env, const void *data, size_t len)
{
    int rc = 0;
    for (size_t i = 0; i < env->n && rc == 0; i++)
        if (zmq_send(w->sock, env->frames[i], env->len[i], ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
            rc = errno == EAGAIN ? CB_ERR_AGAIN : CB_ERR_ZMQ;
    if (rc == 0 && zmq_send(w->sock, data, len, ZMQ_DONTWAIT) < 0)
        rc = errno == EAGAIN ? CB_ERR_AGAIN : CB_ERR_ZMQ;
    cb_zwatch_kick(w);
    return rc;
}

int cb_zrouter_bind(void *zctx, const char *endpoint, const char *domain, const char *field,
                    const char *what, int64_t maxmsg, void **sock, cb_error_t *err)
{
    int zero = 0, rc = 0;
    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        (maxmsg > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0))
        rc = cb_error_set(err, CB_ERR_ZMQ, field, "%s socket: %s", what, zmq_strerror(errno));
    if (rc != 0 || (rc = cb_zbind(s, endpoint, domain, field, err)) != 0) {
        if (s)
            zmq_close(s);
        s = NULL;
    }
    *sock = s;
    return rc;
}
