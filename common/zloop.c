/*
 * zloop.c — see zloop.h: the edge-triggered ZMQ_FD dance, and group commit.
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

/* ---- group commit ---- */

typedef struct group_waiter {
    cb_group_done_fn done;
    void *arg;
} group_waiter_t;

struct cb_group {
    uv_check_t check;
    uv_idle_t idle; /* active while a transaction is pending: poll must not block */
    cb_store_t *store;
    MDB_txn *txn;
    group_waiter_t *waiters;
    size_t count, cap;
    unsigned long commits;
    bool failing; /* the last group commit failed, or a group was failed */
    cb_error_t last_error;
    void (*on_commit)(void *ctx);
    void *on_commit_ctx;
};

/* Tells every waiter of the group its outcome. Callbacks may start the next
 * turn's work, so the list is taken first. */
static void call_waiters(cb_group_t *g, int status, const cb_error_t *err)
{
    size_t n = g->count;
    group_waiter_t *w = g->waiters;
    g->waiters = NULL;
    g->count = g->cap = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].done)
            w[i].done(w[i].arg, status, err);
    free(w);
}

static void group_commit(cb_group_t *g)
{
    if (g->txn == NULL)
        return;
    cb_error_t err;
    cb_error_clear(&err);
    int rc = cb_store_commit(&g->txn, &err);
    uv_unref((uv_handle_t *)&g->check);
    uv_idle_stop(&g->idle);
    if (rc == 0) {
        g->commits++;
        g->failing = false;
    } else {
        log_error("group_commit_failed waiters=%zu error=\"%s\"", g->count, err.message);
        g->failing = true;
        g->last_error = err;
    }
    call_waiters(g, rc, rc ? &err : NULL);
    if (rc == 0 && g->on_commit)
        g->on_commit(g->on_commit_ctx);
}

static void free_group_mem(uv_handle_t *h)
{
    free(h->data);
}

static void on_check(uv_check_t *h)
{
    group_commit(h->data);
}

static void on_idle_noop(uv_idle_t *h)
{
    (void)h;
}

cb_group_t *cb_group_new(uv_loop_t *loop, cb_store_t *store)
{
    cb_group_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->store = store;
    if (uv_check_init(loop, &g->check) != 0) {
        free(g);
        return NULL;
    }
    g->check.data = g;
    if (uv_idle_init(loop, &g->idle) != 0) {
        uv_close((uv_handle_t *)&g->check, free_group_mem);
        return NULL;
    }
    g->idle.data = g;
    /* Referenced only while a transaction is pending: then the loop must turn
     * once more to commit it, and otherwise the check alone keeps nothing alive. */
    uv_unref((uv_handle_t *)&g->check);
    uv_check_start(&g->check, on_check);
    return g;
}

/* The check handle closes first, then the idle handle, then the memory goes. */
static void close_idle(uv_handle_t *h)
{
    cb_group_t *g = h->data;
    uv_close((uv_handle_t *)&g->idle, free_group_mem);
}

void cb_group_destroy(cb_group_t **pg)
{
    cb_group_t *g = *pg;
    if (g == NULL)
        return;
    group_commit(g);
    uv_check_stop(&g->check);
    uv_close((uv_handle_t *)&g->check, close_idle);
    *pg = NULL;
}

int cb_group_txn(cb_group_t *g, MDB_txn **txn, cb_error_t *err)
{
    int rc;
    if (g->txn == NULL) {
        if ((rc = cb_store_begin(g->store, true, &g->txn, err)) != 0)
            return rc;
        uv_ref((uv_handle_t *)&g->check);
        /* Work may arrive before the poll phase (idle callbacks, drains): keep
         * poll from blocking so this turn's check phase commits it at once. */
        uv_idle_start(&g->idle, on_idle_noop);
    }
    *txn = g->txn;
    return 0;
}

int cb_group_begin(cb_group_t *g, MDB_txn **child, cb_error_t *err)
{
    MDB_txn *parent;
    int rc = cb_group_txn(g, &parent, err);
    if (rc != 0)
        return rc;
    return cb_store_begin_child(g->store, parent, child, err);
}

static int add_waiter(cb_group_t *g, cb_group_done_fn done, void *arg, cb_error_t *err)
{
    if (CB_GROW(g->waiters, g->cap, g->count, 64) != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    g->waiters[g->count++] = (group_waiter_t){done, arg};
    return 0;
}

int cb_group_join(cb_group_t *g, cb_group_done_fn done, void *arg, cb_error_t *err)
{
    if (g->txn == NULL)
        return cb_error_set(err, CB_ERR_STORE, "", "no group transaction to join");
    return add_waiter(g, done, arg, err);
}

void cb_group_fail(cb_group_t *g, const cb_error_t *err)
{
    log_error("group_failed waiters=%zu error=\"%s\"", g->count, err ? err->message : "");
    g->failing = true;
    if (err)
        g->last_error = *err;
    else
        cb_error_set(&g->last_error, CB_ERR_STORE, "", "a group transaction failed");
    cb_store_abort(&g->txn);
    uv_unref((uv_handle_t *)&g->check);
    uv_idle_stop(&g->idle);
    call_waiters(g, err && err->code ? err->code : CB_ERR_STORE, err);
}

int cb_group_end(cb_group_t *g, MDB_txn **child, bool ok, cb_group_done_fn done, void *arg,
                 cb_error_t *err)
{
    if (!ok) {
        cb_store_abort(child);
        return 0;
    }
    cb_error_t local;
    if (err == NULL)
        err = &local;
    int rc = cb_store_commit(child, err);
    if (rc != 0) {
        /* LMDB may leave the parent unusable after a failed child commit: fail
         * the whole group rather than commit something half-known. */
        cb_group_fail(g, err);
        return rc;
    }
    if ((rc = add_waiter(g, done, arg, err)) != 0)
        cb_group_fail(g, err); /* the child's work is in the group: none of it may stay */
    return rc;
}

void cb_group_flush(cb_group_t *g)
{
    group_commit(g);
}

void cb_group_on_commit(cb_group_t *g, void (*fn)(void *ctx), void *ctx)
{
    g->on_commit = fn;
    g->on_commit_ctx = ctx;
}

unsigned long cb_group_commits(const cb_group_t *g)
{
    return g->commits;
}

const cb_error_t *cb_group_failing(const cb_group_t *g)
{
    return g->failing ? &g->last_error : NULL;
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
