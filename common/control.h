/*
 * control.h — a daemon's control socket (DESIGN.md "Who decides what"): a
 * ZeroMQ ROUTER taking one casebus.v1.ControlRequest per message (from the
 * `casebus` CLI) and answering one ControlReply. It owns the socket, decoding,
 * the refusal while stopping, and answering after the group commit; what a
 * request means is the daemon's, behind one handler function.
 */
#ifndef CB_CONTROL_H
#define CB_CONTROL_H

#include <stdbool.h>

#include "casebus/v1/control.pb-c.h"
#include "daemon.h"

typedef struct cb_control cb_control_t;

/* One request in hand. The handler fills reply (and message, status_json); the
 * strings it points reply at must live until the answer is sent: use the
 * buffers here, or set status_json to a malloc'd string (freed after). */
typedef struct cb_control_req {
    const Casebus__V1__ControlRequest *req;
    Casebus__V1__ControlReply reply;
    char message[512];
    char id[64];            /* reply.id: what a request created */
    char *status_json;      /* malloc'd by the handler, or NULL */
    bool wrote;             /* the handler wrote in the group transaction */
    /* Runs after a successful commit, before the answer (e.g. adopt the change
     * in memory). */
    void (*after_commit)(void *ctx, struct cb_control_req *r);
    void *user;             /* the handler's, for after_commit; freed by it */
    /* Long work that needs neither the store nor the loop's state (parsing and
     * checking an import): the handler sets work and resume and returns 0
     * having written nothing. work(r) runs on libuv's thread pool; then
     * resume runs on the loop in the handler's place (it may write, refuse,
     * set after_commit), with stopping set when the daemon is stopping (it
     * should only free what work made). */
    void (*work)(struct cb_control_req *r);
    int (*resume)(void *ctx, struct cb_control_req *r, cb_error_t *err);
    bool stopping;
} cb_control_req_t;

/* Handles one request. Return 0 to answer ok (after the group commit when
 * r->wrote), or a negative CB_ERR_* with err to refuse. A handler that wrote
 * and then fails sets r->wrote: the server aborts the whole turn (cb_group_fail). */
typedef int (*cb_control_fn)(void *ctx, cb_control_req_t *r, cb_error_t *err);

/* Binds endpoint (error names `control_bind`) and serves on d's loop. */
int cb_control_start(cb_control_t **out, cb_daemon_t *d, const char *endpoint,
                     cb_control_fn handle, void *ctx, cb_error_t *err);
/* Stops serving and frees once the loop has closed the handles. Safe on NULL. */
void cb_control_stop(cb_control_t **c);

/* A client's exchange, for the CLI and tests: sends req to daemon's endpoint
 * (behind CURVE when it is on) and waits up to timeout_ms for the reply
 * (unpacked into *out, free with casebus__v1__control_reply__free_unpacked).
 * CB_ERR_AGAIN when nobody answered. */
int cb_control_call(const char *daemon, const char *endpoint,
                    const Casebus__V1__ControlRequest *req, int timeout_ms,
                    Casebus__V1__ControlReply **out, cb_error_t *err);

#endif
