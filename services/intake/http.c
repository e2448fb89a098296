/*
 * http.c — intake's HTTP/JSON door on h2o's libuv binding.
 *
 * A command is answered only after its event is durable: the work runs in a
 * child transaction of the loop turn's group commit, and the response is sent
 * from the group's done callback (201/202 with ids), or at once when refused
 * (4xx; nothing written). A client that disconnects meanwhile is noticed through
 * a slot in the request's memory pool whose dispose callback clears our pointer.
 *
 * Limits: body size (413 from h2o), header size (h2o's H2O_MAX_REQLEN), an idle
 * timeout for idle and slow clients (h2o's http1 req_timeout), and connection
 * caps, overall and per address, enforced at accept (admit.c). Optional TLS
 * (tls_cert, tls_key) through h2o's OpenSSL binding.
 */
#include "http.h"
#include "openapi.h"
#include "routes.h"
#include "cbtime.h"
#include "log.h"

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct intake_handler {
    h2o_handler_t super;
    intake_http_t *http;
} intake_handler_t;

/* A command waiting for its group commit. */
typedef struct http_pending {
    h2o_req_t *req;             /* NULL once h2o disposed of the request */
    struct http_pending **slot; /* in req->pool */
    intake_reply_t reply;
    cb_metric_t *answer_seconds;
    uint64_t started_ns;
} http_pending_t;

void intake_http_send_json(h2o_req_t *req, int status, const char *body)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = status < 300 ? "OK" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=utf-8"));
    h2o_iovec_t buf = h2o_strdup(&req->pool, body ? body : "{}", SIZE_MAX);
    req->res.content_length = buf.len;
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, 1);
}

void intake_http_send_error(h2o_req_t *req, int status, const char *code, const char *field,
                            const char *message)
{
    intake_reply_t r = {0};
    intake_reply_error(&r, status, code, field, message);
    intake_http_send_json(req, status, r.body);
    intake_reply_free(&r);
}

static void on_slot_dispose(void *p)
{
    http_pending_t **slot = p;
    if (*slot)
        (*slot)->req = NULL;
}

static void on_committed(void *arg, int status, const cb_error_t *err)
{
    http_pending_t *p = arg;
    if (p->req) {
        *p->slot = NULL;
        if (status == 0)
            intake_http_send_json(p->req, p->reply.status, p->reply.body);
        else
            intake_http_send_error(p->req, 503, "unavailable", "",
                                   err ? err->message : "the store could not commit");
    }
    cb_metric_observe(p->answer_seconds, (double)(cb_mono_ns() - p->started_ns) / 1e9);
    intake_reply_free(&p->reply);
    free(p);
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* Copies header name's value into out (NUL-terminated); false when absent or too long. */
bool intake_http_header(h2o_req_t *req, const h2o_token_t *token, const char *name, char *out,
                        size_t size)
{
    ssize_t i = token ? h2o_find_header(&req->headers, token, -1)
                      : h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len >= size)
        return false;
    memcpy(out, v.base, v.len);
    out[v.len] = '\0';
    return true;
}

/* Splits "/v1/a/{id}/b" into segments; returns how many (at most max). */
size_t intake_http_segments(const char *path, size_t len, char segs[][80], size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max + 1) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (n < max) {
            size_t l = i - start < 79 ? i - start : 79;
            memcpy(segs[n], path + start, l);
            segs[n][l] = '\0';
        }
        n++;
    }
    return n;
}

int intake_http_authenticate(intake_http_t *http, h2o_req_t *req, MDB_txn *txn,
                             intake_actor_t *actor)
{
    char auth[200];
    cb_error_t err;
    const char *token = NULL;
    if (intake_http_header(req, H2O_TOKEN_AUTHORIZATION, NULL, auth, sizeof(auth)) &&
        strncasecmp(auth, "Bearer ", 7) == 0)
        token = auth + 7;
    if (intake_authenticate(http->in, txn, token, actor, &err) != 0) {
        if (err.code == CB_ERR_AUTH) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"casebus\""));
            intake_http_send_error(req, 401, "unauthenticated", "Authorization", err.message);
        } else {
            intake_http_send_error(req, 503, "unavailable", "", err.message);
        }
        return -1;
    }
    return 0;
}

/* application/json, with at most a charset parameter that is UTF-8. */
static bool json_media_type(const char *v)
{
    if (strncasecmp(v, "application/json", 16) != 0)
        return false;
    v += 16;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return true;
    if (*v++ != ';')
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "charset=", 8) != 0)
        return false;
    v += 8;
    if (*v == '"')
        v++;
    if (strncasecmp(v, "utf-8", 5) != 0)
        return false;
    v += 5;
    if (*v == '"')
        v++;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0';
}

static void handle_post(intake_http_t *http, h2o_req_t *req, intake_cmd_kind_t kind,
                        const char *target)
{
    intake_t *in = http->in;
    uint64_t started_ns = cb_mono_ns();
    cb_error_t err;
    char ctype[128] = "";
    if (!intake_http_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, sizeof(ctype)) ||
        !json_media_type(ctype)) {
        intake_http_send_error(
            req, 415, "unsupported_media_type", "Content-Type",
            "send the command as Content-Type: application/json (charset, if given, utf-8)");
        return;
    }
    /* Who asks, from what is on disk (a read: the group's transaction may be
     * on its way to the disk). */
    MDB_txn *txn = NULL;
    if (cb_store_begin(in->st.store, false, &txn, &err) != 0) {
        intake_http_send_error(req, 503, "unavailable", "", err.message);
        return;
    }
    intake_actor_t actor;
    int auth = intake_http_authenticate(http, req, txn, &actor);
    cb_store_abort(&txn);
    if (auth != 0)
        return;
    Casebus__V1__Command *cmd = NULL;
    cb_contract_report_t rep;
    if (intake_json_to_command(kind, target, req->entity.base, req->entity.len, &cmd, &rep) != 0) {
        intake_reply_t refused = {0};
        cb_metric_inc(in->m_commands_refused);
        intake_reply_refused(&refused, &rep);
        intake_http_send_json(req, refused.status, refused.body);
        intake_reply_free(&refused);
        return;
    }
    char idem[INTAKE_IDEM_KEY_MAX + 2] = "";
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1) >= 0 &&
        !intake_http_header(req, NULL, "idempotency-key", idem, sizeof(idem))) {
        casebus__v1__command__free_unpacked(cmd, NULL);
        intake_http_send_error(req, 400, "invalid_field", "Idempotency-Key",
                               "Idempotency-Key is longer than 128 characters");
        return;
    }
    if (cmd->idempotency_key != protobuf_c_empty_string)
        free(cmd->idempotency_key);
    cmd->idempotency_key = strdup(idem);
    /* The request's identity for idempotency (route, target and body); only a
     * command with a key is ever compared. */
    uint8_t hash[32] = {0};
    if (idem[0]) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const uint8_t *)req->path_normalized.base,
                                  req->path_normalized.len);
        crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
        crypto_hash_sha256_update(&st, (const uint8_t *)req->entity.base, req->entity.len);
        crypto_hash_sha256_final(&st, hash);
    }

    http_pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL || cmd->idempotency_key == NULL) {
        free(p);
        casebus__v1__command__free_unpacked(cmd, NULL);
        intake_http_send_error(req, 503, "unavailable", "", "out of memory");
        return;
    }
    /* Answered by on_committed: a refusal at once, an acceptance (or an
     * idempotent replay) once its group is on disk. */
    p->req = req;
    p->answer_seconds = in->m_answer_http;
    p->started_ns = started_ns;
    p->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*p->slot), on_slot_dispose);
    *p->slot = p;
    intake_submit(in, cmd, &actor, hash, &p->reply, on_committed, p);
}

/* What a read answers: the case (id) or a list (its query string). */
typedef enum { READ_CASE, READ_CASES, READ_OBLIGATIONS } read_kind_t;

/* GET /v1/cases/{id} (view.c), /v1/cases?… and /v1/obligations?… (lists.c):
 * a read transaction, the token, the answer. */
static void handle_read(intake_http_t *http, h2o_req_t *req, read_kind_t kind, const char *id)
{
    cb_error_t err;
    MDB_txn *txn = NULL;
    if (cb_store_begin(http->in->st.store, false, &txn, &err) != 0) {
        intake_http_send_error(req, 503, "unavailable", "", err.message);
        return;
    }
    intake_actor_t actor;
    if (intake_http_authenticate(http, req, txn, &actor) == 0) {
        const char *q = "";
        size_t qlen = 0;
        if (req->query_at != SIZE_MAX && req->query_at < req->path.len) {
            q = req->path.base + req->query_at + 1;
            qlen = req->path.len - req->query_at - 1;
        }
        intake_reply_t r;
        if (kind == READ_CASE)
            intake_case_view(http->in, txn, id, &actor, &r);
        else if (kind == READ_OBLIGATIONS)
            intake_list_obligations(http->in, txn, &actor, q, qlen, &r);
        else
            intake_list_cases(http->in, txn, &actor, q, qlen, &r);
        intake_http_send_json(req, r.status, r.body);
        intake_reply_free(&r);
    }
    cb_store_abort(&txn);
}

static void handle_health(intake_http_t *http, h2o_req_t *req)
{
    /* degraded: the last write failed (until one succeeds), or the store is
     * 95 % full; either way commands may be refused with 503. */
    bool ok = false;
    json_t *st = cb_daemon_health(&http->in->d, &ok);
    char *body = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (body == NULL) {
        intake_http_send_error(req, 503, "unavailable", "", "out of memory");
        return;
    }
    intake_http_send_json(req, ok ? 200 : 503, body);
    free(body);
}

static void handle_metrics(intake_http_t *http, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    cb_metric_set(http->m_conn, (double)http->admit.open);
    size_t len;
    char *text = cb_daemon_metrics_text(&http->in->d, &len);
    if (text == NULL) {
        intake_http_send_error(req, 503, "unavailable", "", "out of memory");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_iovec_t buf = h2o_strdup(&req->pool, text, len);
    req->res.content_length = buf.len;
    free(text);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, 1);
}

/* The document is the build's: made once, served as it is. */
static void handle_openapi(intake_http_t *http, h2o_req_t *req)
{
    (void)http;
    static char *text;
    if (text == NULL) {
        json_t *doc = cb_openapi_document(CB_API_VERSION);
        text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
    }
    if (text == NULL) {
        intake_http_send_error(req, 503, "unavailable", "", "out of memory");
        return;
    }
    intake_http_send_json(req, 200, text);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    intake_http_t *http = ((intake_handler_t *)self)->http;
    cb_metric_inc(http->m_requests);
    char segs[6][80];
    size_t n = intake_http_segments(req->path_normalized.base, req->path_normalized.len, segs, 6);
    bool get = method_is(req, "GET"), post = method_is(req, "POST");
    static const struct {
        const char *name;
        void (*handle)(intake_http_t *http, h2o_req_t *req);
    } reads[] = {
        {"healthz", handle_health}, {"metrics", handle_metrics}, {"openapi.json", handle_openapi}};
    for (size_t i = 0; n == 1 && i < sizeof(reads) / sizeof(reads[0]); i++) {
        if (strcmp(segs[0], reads[i].name) != 0)
            continue;
        if (get)
            reads[i].handle(http, req);
        else
            intake_http_send_error(req, 405, "method_not_allowed", "", "use GET");
        return 0;
    }
    if (intake_board_route(http, req, segs, n))
        return 0;
    if (n == 2 && strcmp(segs[0], "v1") == 0 &&
        (strcmp(segs[1], "cases") == 0 || strcmp(segs[1], "obligations") == 0) && get) {
        handle_read(http, req, segs[1][0] == 'o' ? READ_OBLIGATIONS : READ_CASES, NULL);
        return 0;
    }
    if (n == 3 && strcmp(segs[0], "v1") == 0 && strcmp(segs[1], "cases") == 0 && get) {
        if (!cb_route_id_ok(segs[2]))
            intake_http_send_error(req, 404, "not_found", "case_id", "no such case");
        else
            handle_read(http, req, READ_CASE, segs[2]);
        return 0;
    }
    const char *target;
    const cb_route_t *route = cb_route_match(segs, n, &target);
    if (route == NULL) {
        intake_http_send_error(req, 404, "not_found", "", "no such endpoint (see docs/api.md)");
        return 0;
    }
    if (!post) {
        intake_http_send_error(req, 405, "method_not_allowed", "", "use POST");
        return 0;
    }
    if (http->in->d.shutting_down) {
        intake_http_send_error(req, 503, "shutting_down", "",
                               "intake is shutting down; retry shortly");
        return 0;
    }
    handle_post(http, req, (intake_cmd_kind_t)route->kind, target);
    return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    intake_http_t *http = listener->data;
    if (status != 0)
        return;
    uint64_t refused = http->admit.refused;
    intake_conn_t *c = intake_admit_accept(&http->admit, listener, http->ssl_ctx != NULL);
    if (http->admit.refused != refused)
        cb_metric_inc(http->m_conn_refused);
    if (c == NULL)
        return;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, intake_admit_closed);
    h2o_accept(&http->accept_ctx, sock);
}

/* An SSL_CTX for the PEM certificate chain and key: TLS 1.2 and later, HTTP/1.1. */
static int tls_open(intake_http_t *http, const char *cert, const char *key, cb_error_t *err)
{
    struct stat st;
    if (stat(key, &st) == 0 && (st.st_mode & S_IROTH))
        return cb_error_set(err, CB_ERR_CONFIG, "tls_key",
                            "tls_key %s can be read by anyone (mode %03o): chmod 600 (or 640 for "
                            "a group such as ssl-cert)",
                            key, (unsigned)(st.st_mode & 0777));
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "tls_cert", "cannot make a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    unsigned long e = 0;
    const char *field = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        field = "tls_cert";
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        field = "tls_key";
    else if (SSL_CTX_check_private_key(ctx) != 1)
        field = "tls_key";
    if (field) {
        e = ERR_get_error();
        char why[256];
        ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return cb_error_set(err, CB_ERR_CONFIG, field, "%s %s: %s", field,
                            strcmp(field, "tls_cert") == 0 ? cert : key, why);
    }
    http->ssl_ctx = ctx;
    return 0;
}

int intake_http_start(intake_t *in, const intake_http_opts_t *o, cb_error_t *err)
{
    /* The address first: nothing is registered in the loop before it is known good. */
    struct sockaddr_storage addr;
    int rc = strchr(o->host, ':') ? uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&addr)
                                  : uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        return cb_error_set(err, CB_ERR_CONFIG, "http_listen", "bad address %s: %s", o->host,
                            uv_strerror(rc));
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return cb_error_set(err, CB_ERR_CONFIG, o->tls_cert ? "tls_key" : "tls_cert",
                            "TLS needs both tls_cert and tls_key");
    intake_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    if (o->tls_cert && tls_open(http, o->tls_cert, o->tls_key, err) != 0) {
        free(http);
        return CB_ERR_CONFIG;
    }
    http->in = in;
    intake_admit_init(&http->admit, o->max_connections, o->max_per_address);
    h2o_config_init(&http->config);
    http->config.max_request_entity_size = in->max_body;
    /* h2o's request timeout covers a connection waiting for its next request too:
     * an idle or slow client is closed after it. */
    http->config.http1.req_timeout = o->idle_timeout_s * 1000;
    http->config.server_name = h2o_iovec_init(H2O_STRLIT("casebus-intake"));
    h2o_hostconf_t *host_conf =
        h2o_config_register_host(&http->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host_conf, "/", 0);
    intake_handler_t *h = (intake_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->http = http;
    h2o_context_init(&http->ctx, in->d.loop, &http->config);
    http->accept_ctx.ctx = &http->ctx;
    http->accept_ctx.hosts = http->config.hosts;
    http->accept_ctx.ssl_ctx = http->ssl_ctx;

    /* From here the h2o context has handles in the loop: on failure http stays
     * referenced from in (the daemon exits on this error), never freed under them. */
    in->http = http;
    if ((rc = uv_tcp_init(in->d.loop, &http->listener)) != 0)
        return cb_error_set(err, CB_ERR_UV, "http_listen", "uv_tcp_init: %s", uv_strerror(rc));
    http->listener.data = http;
    if ((rc = uv_tcp_bind(&http->listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&http->listener, 511, on_accept)) != 0) {
        uv_close((uv_handle_t *)&http->listener, NULL);
        return cb_error_set(err, CB_ERR_CONFIG, "http_listen", "cannot listen on %s:%d: %s",
                            o->host, o->port, uv_strerror(rc));
    }
    http->listening = true;
    if ((rc = intake_board_start(http, o->board_dir ? o->board_dir : "deploy/board", err)) != 0)
        return rc;
    http->m_requests = cb_metrics_counter(in->d.metrics, "casebus_intake_http_requests_total",
                                          "HTTP requests received");
    http->m_conn =
        cb_metrics_gauge(in->d.metrics, "casebus_intake_http_connections", "Open HTTP connections");
    http->m_conn_refused = cb_metrics_counter(
        in->d.metrics, "casebus_intake_http_connections_refused_total",
        "Connections answered 503 (or closed, over TLS) at accept: over max_connections or "
        "max_per_address");
    return 0;
}

void intake_http_stop(intake_t *in)
{
    intake_http_t *http = in->http;
    if (http == NULL)
        return;
    if (http->listening && !uv_is_closing((uv_handle_t *)&http->listener))
        uv_close((uv_handle_t *)&http->listener, NULL);
    http->listening = false;
    intake_board_stop(http);
    h2o_context_request_shutdown(&http->ctx);
}
