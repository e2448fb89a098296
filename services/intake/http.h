/*
 * http.h — what intake's HTTP door files share (http.c: the door and the API;
 * board.c: the command board and its event stream). Not for the other files.
 */
#ifndef CB_INTAKE_HTTP_H
#define CB_INTAKE_HTTP_H

#include <h2o.h>
#include <openssl/ssl.h>

#include "intake.h"

typedef struct intake_http {
    intake_t *in;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening;
    intake_admit_t admit;
    SSL_CTX *ssl_ctx; /* NULL: plain HTTP */
    cb_metric_t *m_requests, *m_conn, *m_conn_refused;
    struct intake_board *board; /* board.c */
} intake_http_t;

void intake_http_send_json(h2o_req_t *req, int status, const char *body);
void intake_http_send_error(h2o_req_t *req, int status, const char *code, const char *field,
                            const char *message);
/* A request header's value (by token, or by name when token is NULL) into out. */
bool intake_http_header(h2o_req_t *req, const h2o_token_t *token, const char *name, char *out,
                        size_t size);
/* The bearer token's actor, or -1 after answering 401 (or 503). */
int intake_http_authenticate(intake_http_t *http, h2o_req_t *req, MDB_txn *txn,
                             intake_actor_t *actor);
/* Splits "/v1/a/{id}/b" into segments; returns how many (at most max). */
size_t intake_http_segments(const char *path, size_t len, char segs[][80], size_t max);

/* ---- board.c ---- */
int intake_board_start(intake_http_t *http, const char *dir, cb_error_t *err);
/* Ends every stream (SIGTERM): browsers reconnect to the next intake. */
void intake_board_stop(intake_http_t *http);
/* Answers /board… and /v1/board…; false when the path is not the board's. */
bool intake_board_route(intake_http_t *http, h2o_req_t *req, char segs[][80], size_t n);

#endif
