/*
 * zmq.c — intake's ZeroMQ door for native clients: a ROUTER taking one
 * Command frame per request (from REQ or DEALER peers) and answering with one
 * CommandReply, sent — like the HTTP door's — only once the event is durable.
 * The routing envelope (identity, and REQ's empty delimiter) is kept and echoed.
 */
#include "intake.h"
#include "cbtime.h"
#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct intake_zmq {
    intake_t *in;
    void *sock;
    cb_zwatch_t watch;
    bool open;
    cb_metric_t *m_commands;
} intake_zmq_t;

typedef struct zpending {
    intake_zmq_t *z;
    cb_zenvelope_t env;
    char request_id[64];
    intake_reply_t reply;
    uint64_t started_ns;
} zpending_t;

/* A string member of a JSON object, "" when absent. */
static char *json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return (char *)(s ? s : "");
}

static void send_reply(zpending_t *p)
{
    intake_zmq_t *z = p->z;
    if (!z->open)
        return;
    cb_metric_observe(z->in->m_answer_zmq, (double)(cb_mono_ns() - p->started_ns) / 1e9);
    Casebus__V1__CommandReply r = CASEBUS__V1__COMMAND_REPLY__INIT;
    Casebus__V1__ErrorDetail e = CASEBUS__V1__ERROR_DETAIL__INIT;
    r.status = (uint32_t)p->reply.status;
    r.request_id = p->request_id;
    r.event_seq = p->reply.event_seq;
    json_t *body = p->reply.body ? json_loads(p->reply.body, 0, NULL) : NULL;
    const char *id_keys[] = {"transfer_id", "dispute_id",  "assistance_id",
                             "decision_id", "approval_id", NULL};
    r.case_id = (json_str(body, "case_id"));
    r.event_id = (json_str(body, "event_id"));
    r.id = r.case_id;
    for (size_t i = 0; id_keys[i]; i++)
        if (json_string_value(json_object_get(body, id_keys[i])))
            r.id = (char *)json_string_value(json_object_get(body, id_keys[i]));
    json_t *err = json_object_get(body, "error");
    if (err) {
        e.code = (json_str(err, "code"));
        e.field = (json_str(err, "field"));
        e.message = (json_str(err, "message"));
        json_t *fields = json_object_get(err, "fields");
        e.n_fields = json_array_size(fields);
        e.fields = e.n_fields ? calloc(e.n_fields, sizeof(char *)) : NULL;
        for (size_t i = 0; e.fields && i < e.n_fields; i++)
            e.fields[i] = (char *)(json_string_value(json_array_get(fields, i))
                                       ? json_string_value(json_array_get(fields, i))
                                       : "");
        if (e.fields == NULL)
            e.n_fields = 0;
        r.error = &e;
    }
    size_t len = casebus__v1__command_reply__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        casebus__v1__command_reply__pack(&r, buf);
        if (cb_zsend_reply(&z->watch, &p->env, buf, len) != 0)
            log_warnx("zmq_reply_dropped error=\"%s\"", zmq_strerror(errno));
        free(buf);
    }
    free(e.fields);
    json_decref(body);
}

static void on_committed(void *arg, int status, const cb_error_t *err)
{
    zpending_t *p = arg;
    if (status != 0)
        intake_reply_error(&p->reply, 503, "unavailable", "",
                           err ? err->message : "the store could not commit");
    send_reply(p);
    intake_reply_free(&p->reply);
    free(p);
}

static void handle(intake_zmq_t *z, zpending_t *p, const uint8_t *data, size_t len)
{
    intake_t *in = z->in;
    cb_error_t err;
    Casebus__V1__Command *cmd = NULL;
    p->started_ns = cb_mono_ns();
    if (len > in->max_body + 4096) {
        cb_metric_inc(in->m_commands_refused);
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the frame is %zu bytes; a command is at most max_body + 4 KiB "
                 "(%llu bytes)",
                 len, (unsigned long long)(in->max_body + 4096));
        intake_reply_error(&p->reply, 413, "too_large", "", msg);
        goto reply_now;
    }
    cmd = casebus__v1__command__unpack(NULL, len, data);
    if (cmd == NULL) {
        cb_metric_inc(in->m_commands_refused);
        intake_reply_error(&p->reply, 400, "invalid_body", "",
                           "the frame does not decode as a casebus.v1.Command");
        goto reply_now;
    }
    snprintf(p->request_id, sizeof(p->request_id), "%s", cmd->request_id ? cmd->request_id : "");
    if (cmd->kind_case == CASEBUS__V1__COMMAND__KIND__NOT_SET) {
        intake_reply_error(&p->reply, 400, "invalid_command", "kind",
                           "the command has no body (report_case, send_transfer, …)");
        goto reply_now;
    }
    if (in->d.shutting_down) {
        intake_reply_error(&p->reply, 503, "shutting_down", "", "intake is shutting down");
        goto reply_now;
    }
    /* Who asks, from what is on disk (a read: the group's transaction may be
     * on its way to the disk). */
    MDB_txn *txn = NULL;
    if (cb_store_begin(in->st.store, false, &txn, &err) != 0) {
        intake_reply_error(&p->reply, 503, "unavailable", "", err.message);
        goto reply_now;
    }
    intake_actor_t actor;
    int auth = intake_authenticate(in, txn, cmd->token, &actor, &err);
    cb_store_abort(&txn);
    if (auth != 0) {
        intake_reply_error(&p->reply, err.code == CB_ERR_AUTH ? 401 : 503,
                           err.code == CB_ERR_AUTH ? "unauthenticated" : "unavailable", "token",
                           err.message);
        goto reply_now;
    }
    /* The request's identity for idempotency: the frame without the token; only
     * a command with a key is ever compared. */
    uint8_t hash[32] = {0};
    if (cmd->idempotency_key && cmd->idempotency_key[0]) {
        char *token = cmd->token;
        cmd->token = (char *)protobuf_c_empty_string;
        size_t plen = casebus__v1__command__get_packed_size(cmd);
        uint8_t *packed = malloc(plen ? plen : 1);
        bool packed_ok = packed != NULL;
        if (packed_ok)
            crypto_hash_sha256(hash, packed, casebus__v1__command__pack(cmd, packed));
        free(packed);
        cmd->token = token;
        if (!packed_ok) {
            intake_reply_error(&p->reply, 503, "unavailable", "", "out of memory");
            goto reply_now;
        }
    }
    cb_contract_report_t rep;
    if (intake_check_command(cmd, &rep) != 0) {
        intake_reply_refused(&p->reply, &rep);
        cb_metric_inc(in->m_commands_refused);
        goto reply_now;
    }
    intake_submit(in, cmd, &actor, hash, &p->reply, on_committed, p);
    return;
reply_now:
    if (cmd)
        casebus__v1__command__free_unpacked(cmd, NULL);
    send_reply(p);
    intake_reply_free(&p->reply);
    free(p);
}

static void on_readable(cb_zwatch_t *w, void *sock, void *ctx)
{
    (void)w;
    intake_zmq_t *z = ctx;
    zmq_msg_t m;
    int rc;
    zpending_t *p = cb_zrecv_new(sock, sizeof(*p), offsetof(zpending_t, env), &m, &rc);
    if (p == NULL) {
        if (rc == CB_ERR_PROTO) {
            cb_metric_inc(z->m_commands);
            log_warnx("zmq_request_refused reason=\"routing envelope too large or missing\"");
        }
        return;
    }
    cb_metric_inc(z->m_commands);
    p->z = z;
    if (zmq_msg_size(&m) > z->in->max_body) {
        intake_reply_error(&p->reply, 413, "too_large", "",
                           "the command frame is larger than max_body");
        send_reply(p);
        intake_reply_free(&p->reply);
        free(p);
    } else {
        handle(z, p, zmq_msg_data(&m), zmq_msg_size(&m));
    }
    zmq_msg_close(&m);
}

int intake_zmq_start(intake_t *in, const char *endpoint, cb_error_t *err)
{
    intake_zmq_t *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    z->in = in;
    /* Frames up to four times the limit are read and answered 413; past that
     * libzmq drops them (and the connection) without reading them whole. */
    int64_t maxmsg = 4 * ((int64_t)in->max_body + 4096);
    int rc = cb_zrouter_bind(in->d.zctx, endpoint, "cmd", "zmq_bind", "command door", maxmsg,
                             &z->sock, err);
    if (rc != 0) {
        free(z);
        return rc;
    }
    rc = cb_zwatch_init(&z->watch, in->d.loop, z->sock, on_readable, z, err);
    if (rc != 0) {
        zmq_close(z->sock);
        free(z); /* the loop is about to end: main exits on this error */
        return rc;
    }
    z->open = true;
    z->m_commands = cb_metrics_counter(in->d.metrics, "casebus_intake_zmq_commands_total",
                                       "Commands received on the ZeroMQ door");
    in->zdoor = z;
    return 0;
}

void intake_zmq_stop(intake_t *in)
{
    intake_zmq_t *z = in->zdoor;
    if (z == NULL)
        return;
    in->zdoor = NULL;
    z->open = false;
    cb_zwatch_close_free(&z->watch);
}
