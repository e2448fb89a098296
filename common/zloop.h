/*
 * zloop.h — ZeroMQ sockets inside a libuv loop.
 *
 * cb_zwatch: a socket's ZMQ_FD polled by uv_poll. That descriptor is
 * edge-triggered and signals only that ZMQ_EVENTS must be read again: after
 * every callback, and after every send on the socket (a send can consume the
 * edge that announced an incoming message), the watcher drains while ZMQ_EVENTS
 * says POLLIN. Senders call cb_zwatch_kick() after sending; the drain then runs
 * on the next loop iteration (a uv_idle handle, so the loop does not block).
 *
 * Group commit (cb_group) is in group.h.
 */
#ifndef CB_ZLOOP_H
#define CB_ZLOOP_H

#include <lmdb.h>
#include <stdbool.h>
#include <uv.h>
#include <zmq.h>

#include "error.h"
#include "group.h"
#include "store.h"

typedef struct cb_zwatch cb_zwatch_t;

/* Called once per readable message: it must receive exactly one message (all
 * its frames) from sock, or the watcher stops draining for this turn. */
typedef void (*cb_zwatch_fn)(cb_zwatch_t *w, void *sock, void *ctx);

struct cb_zwatch {
    uv_poll_t poll;
    uv_idle_t idle;
    void *sock;
    cb_zwatch_fn on_readable;
    void *ctx;
    int open_handles; /* handles not yet closed */
    void (*on_closed)(cb_zwatch_t *w);
    unsigned budget; /* messages per drain before yielding to the loop */
};

/* Starts watching sock (not owned). Returns CB_ERR_ZMQ / CB_ERR_UV on failure. */
int cb_zwatch_init(cb_zwatch_t *w, uv_loop_t *loop, void *sock, cb_zwatch_fn on_readable, void *ctx,
                   cb_error_t *err);
/* Schedules a drain on the next loop iteration; call after every send. */
void cb_zwatch_kick(cb_zwatch_t *w);
/* Stops and closes the handles; on_closed (may be NULL) runs once both are
 * closed, after which w may be freed. The socket is not closed. */
void cb_zwatch_close(cb_zwatch_t *w, void (*on_closed)(cb_zwatch_t *w));
/* cb_zwatch_close, then the socket is closed and the watcher's ctx, its owner
 * (malloc'd, holding w), is freed. */
void cb_zwatch_close_free(cb_zwatch_t *w);

/* zmq_send with ZMQ_DONTWAIT, then cb_zwatch_kick. Returns 0 or CB_ERR_AGAIN
 * (peer's queue full) / CB_ERR_ZMQ (errno set). */
int cb_zsend(cb_zwatch_t *w, const void *data, size_t len, bool more);

/* A request on a ROUTER socket: the routing envelope (identity frames, and a
 * REQ peer's empty delimiter) to echo on the reply, and the body (last frame). */
#define CB_ZENV_MAX 4
#define CB_ZENV_FRAME_MAX 256
typedef struct cb_zenvelope {
    uint8_t frames[CB_ZENV_MAX][CB_ZENV_FRAME_MAX];
    size_t len[CB_ZENV_MAX];
    size_t n;
} cb_zenvelope_t;

/* A ROUTER socket that drops what is unsent at close (LINGER 0), takes frames
 * of at most maxmsg bytes (0: no limit), bound with cb_zbind; what names it in
 * errors ("command door"). *sock is NULL on error. */
int cb_zrouter_bind(void *zctx, const char *endpoint, const char *domain, const char *field,
                    const char *what, int64_t maxmsg, void **sock, cb_error_t *err);
/* zmq_bind behind CURVE with the ZAP domain ("bus", "control", "cmd",
 * "stream": common/curve.h), and for an ipc:// endpoint a socket file only its
 * owner may open (0600, made under umask 077 so it never exists with looser
 * modes). Returns 0, or an error naming field (e.g. "control_bind"). */
int cb_zbind(void *sock, const char *endpoint, const char *domain, const char *field,
             cb_error_t *err);
/* Receives one whole request from a ROUTER socket: envelope into env, the last
 * frame into body (initialised here; the caller closes it). Returns 0;
 * CB_ERR_AGAIN when there was nothing to read; CB_ERR_PROTO when the envelope
 * was too large or missing (the message is consumed, body closed). */
int cb_zrecv_request(void *sock, cb_zenvelope_t *env, zmq_msg_t *body);
/* cb_zrecv_request into a new zeroed record of size bytes (the caller frees
 * it) whose envelope is at env_at. NULL, with *rc, when nothing was read
 * (CB_ERR_AGAIN), the envelope was refused (CB_ERR_PROTO) or memory ran out
 * (CB_ERR_NOMEM: the message is read and dropped). */
void *cb_zrecv_new(void *sock, size_t size, size_t env_at, zmq_msg_t *body, int *rc);
/* Sends data to the peer of env, then kicks the watcher. CB_ERR_AGAIN or
 * CB_ERR_ZMQ when the reply could not be queued. */
int cb_zsend_reply(cb_zwatch_t *w, const cb_zenvelope_t *env, const void *data, size_t len);

#endif
