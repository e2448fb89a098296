/*
 * main.c — casebus-intake: options, configuration, wiring, the loop.
 *
 *   casebus-intake --config FILE                  serve (HTTP + ZeroMQ doors, bus)
 *   casebus-intake token create --config FILE --org ID [--org ID …] [--label TEXT] [--operator]
 *                                [--expires SPAN|TIME]
 *   casebus-intake token list --config FILE         every token as JSON, never a secret
 *   casebus-intake token revoke --config FILE ID [--reason TEXT]
 *
 * Configuration ([intake] section of the deployment file, see deploy/casebus.conf):
 *   data_dir, map_size, bus_bind, pull = PRODUCER ENDPOINT (repeatable), log_level
 *   (common/daemon.h), and http_listen = 127.0.0.1:8080, zmq_bind, max_body (≤ 2M),
 *   max_connections = 1024, max_per_address = 256, idle_timeout = 10 (seconds),
 *   tls_cert/tls_key (PEM, optional), max_age_days = 1825.
 */
#include "intake.h"
#include "cbtime.h"
#include "log.h"

#include <sodium.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTION "intake"

static void usage(void)
{
    fprintf(stderr,
            "usage: casebus-intake --config FILE\n"
            "       casebus-intake token create --config FILE --org ID [--org ID ...] "
            "[--label TEXT] [--operator] [--expires SPAN|TIME]\n"
            "       casebus-intake token list --config FILE      (JSON)\n"
            "       casebus-intake token revoke --config FILE ID [--reason TEXT]\n");
    exit(2);
}

typedef struct token_args {
    const char *orgs[INTAKE_MAX_TOKEN_ORGS + 1];
    size_t norgs;
    const char *label, *token_id, *reason;
    bool operator_;
    int64_t expires_at_ms;
} token_args_t;

static void token_args(const char *verb, int argc, char **argv, token_args_t *a)
{
    *a = (token_args_t){.label = "", .reason = ""};
    bool create = strcmp(verb, "create") == 0, revoke = strcmp(verb, "revoke") == 0;
    for (int i = 0; i < argc; i++) {
        bool more = i + 1 < argc;
        if (create && strcmp(argv[i], "--org") == 0 && more && a->norgs <= INTAKE_MAX_TOKEN_ORGS)
            a->orgs[a->norgs++] = argv[++i];
        else if (create && strcmp(argv[i], "--label") == 0 && more)
            a->label = argv[++i];
        else if (create && strcmp(argv[i], "--operator") == 0)
            a->operator_ = true;
        else if (create && strcmp(argv[i], "--expires") == 0 && more) {
            cb_error_t err;
            if (cb_time_parse_after(argv[++i], cb_now_ms(), &a->expires_at_ms, &err) != 0) {
                fprintf(stderr, "casebus-intake: --expires %s\n", err.message);
                exit(2);
            }
        } else if (revoke && strcmp(argv[i], "--reason") == 0 && more)
            a->reason = argv[++i];
        else if (revoke && a->token_id == NULL && argv[i][0] != '-')
            a->token_id = argv[i];
        else
            usage();
    }
    if (revoke && a->token_id == NULL)
        usage();
}

static void warn_unknown_orgs(intake_t *in, MDB_txn *txn, const token_args_t *a)
{
    for (size_t i = 0; i < a->norgs; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, a->orgs[i]);
        if (o == NULL)
            fprintf(stderr, "casebus-intake: warning: organisation '%s' is not in the "
                            "registry yet\n", a->orgs[i]);
        else
            casebus__v1__organisation__free_unpacked(o, NULL);
    }
}

/* casebus-intake token VERB: writes (or reads) intake's store directly, so
 * intake must be stopped; `casebus token` uses the control socket while it runs. */
static int token_offline(intake_t *in, const char *config, const char *verb, int argc,
                         char **argv)
{
    token_args_t a;
    token_args(verb, argc, argv, &a);
    bool list = strcmp(verb, "list") == 0;
    cb_error_t err;
    if (cb_daemon_open_store(&in->d, SECTION, config, &err) != 0 ||
        intake_state_open(&in->st, in->d.store, &err) != 0) {
        fprintf(stderr, "casebus-intake: %s%s\n", err.message,
                err.code == CB_ERR_LOCKED ? " (stop intake first)" : "");
        cb_daemon_close(&in->d);
        return 1;
    }
    MDB_txn *txn = NULL;
    char *secret = NULL;
    json_t *tokens = NULL;
    int rc = cb_store_begin(in->d.store, !list, &txn, &err);
    if (rc == 0 && list)
        rc = (tokens = intake_tokens_json(in, txn, &err)) ? 0 : -1;
    else if (rc == 0 && strcmp(verb, "revoke") == 0)
        rc = intake_token_revoke_cmd(in, txn, a.token_id, a.reason, &err);
    else if (rc == 0) {
        warn_unknown_orgs(in, txn, &a);
        rc = intake_token_create(in, txn, a.orgs, a.norgs, a.label, a.operator_,
                                 a.expires_at_ms, &secret, &err);
    }
    if (rc == 0 && !list)
        rc = cb_store_commit(&txn, &err);
    else
        cb_store_abort(&txn);
    if (rc != 0)
        fprintf(stderr, "casebus-intake: token %s: %s\n", verb, err.message);
    else if (list) {
        char *text = json_dumps(tokens, JSON_COMPACT);
        printf("%s\n", text ? text : "");
        free(text);
    } else if (secret)
        printf("%s\n", secret);
    else
        printf("token %s revoked\n", a.token_id);
    json_decref(tokens);
    if (secret)
        sodium_memzero(secret, strlen(secret));
    free(secret);
    cb_daemon_close(&in->d);
    return rc ? 1 : 0;
}

static void stop_doors(cb_daemon_t *d, void *ctx)
{
    (void)d;
    intake_t *in = ctx;
    intake_http_stop(in);
    intake_zmq_stop(in);
    cb_control_stop(&in->control);
}

/* The control socket: tokens while intake runs (the offline `token create`
 * needs it stopped), and status. */
static int control(void *ctx, cb_control_req_t *cr, cb_error_t *err)
{
    intake_t *in = ctx;
    const Casebus__V1__ControlRequest *req = cr->req;
    MDB_txn *txn;
    int rc;
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS) {
        cb_log_head_t head = {0};
        if ((rc = cb_store_begin(in->d.store, false, &txn, err)) != 0)
            return rc;
        rc = cb_log_head(in->d.log, txn, &head, err);
        cb_store_abort(&txn);
        if (rc != 0)
            return rc;
        json_t *st = json_pack("{s:s,s:I,s:o*}", "daemon", "intake", "log_head",
                               (json_int_t)head.seq, "upstreams",
                               cb_daemon_upstreams_json(&in->d));
        cr->status_json = st ? json_dumps(st, JSON_COMPACT) : NULL;
        json_decref(st);
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_TOKENS) {
        if ((rc = cb_store_begin(in->d.store, false, &txn, err)) != 0)
            return rc;
        json_t *tokens = intake_tokens_json(in, txn, err);
        cb_store_abort(&txn);
        if (tokens == NULL)
            return err->code ? err->code : CB_ERR_NOMEM;
        cr->status_json = json_dumps(tokens, JSON_COMPACT);
        json_decref(tokens);
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    if (req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_REVOKE_TOKEN) {
        const Casebus__V1__RevokeToken *rt = req->revoke_token;
        if ((rc = cb_group_txn(in->d.group, &txn, err)) != 0)
            return rc;
        rc = intake_token_revoke_cmd(in, txn, rt->token_id, rt->reason, err);
        cr->wrote = rc == 0 || rc != CB_ERR_INVALID;
        if (rc == 0)
            snprintf(cr->message, sizeof(cr->message), "token %.40s revoked", rt->token_id);
        return rc;
    }
    if (req->kind_case != CASEBUS__V1__CONTROL_REQUEST__KIND_CREATE_TOKEN)
        return cb_error_set(err, CB_ERR_INVALID, "kind",
                            "intake answers status and token create, list and revoke only");
    const Casebus__V1__CreateToken *ct = req->create_token;
    if ((rc = cb_group_txn(in->d.group, &txn, err)) != 0)
        return rc;
    char *secret = NULL;
    rc = intake_token_create(in, txn, (const char *const *)ct->org_ids, ct->n_org_ids, ct->label,
                             ct->operator_, ct->expires_at_ms, &secret, err);
    cr->wrote = rc == 0 || rc != CB_ERR_INVALID;
    if (rc != 0)
        return rc;
    /* "cbt_<id>_<secret>": the id is the part before the second underscore. */
    char id[32] = "";
    if (strncmp(secret, "cbt_", 4) == 0)
        snprintf(id, sizeof(id), "%.*s", (int)strcspn(secret + 4, "_"), secret + 4);
    json_t *out = json_pack("{s:s,s:s}", "token", secret, "token_id", id);
    cr->status_json = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    sodium_memzero(secret, strlen(secret));
    free(secret);
    snprintf(cr->message, sizeof(cr->message), "token %s created for %zu organisations", id,
             ct->n_org_ids);
    return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
}

static void parse_listen(const char *listen, char *host, size_t size, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= size ||
        (*port = atoi(colon + 1)) <= 0 || *port > 65535)
        fatalx("config_failed error=\"[intake] http_listen = '%s': want HOST:PORT\"", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (host[0] == '[') { /* [::1]:8080 */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool token_cmd = argc > 2 && strcmp(argv[1], "token") == 0 &&
                     (strcmp(argv[2], "create") == 0 || strcmp(argv[2], "list") == 0 ||
                      strcmp(argv[2], "revoke") == 0);
    int first = token_cmd ? 3 : 1, rest = first;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (!token_cmd)
            usage();
        else
            argv[rest++] = argv[i];
    }
    if (config == NULL)
        usage();
    /* Static: the daemon's state lives until exit (and stays reachable for
     * LeakSanitizer while the loop's last handles close). */
    static intake_t in;
    if (token_cmd)
        return token_offline(&in, config, argv[2], rest - first, argv + first);

    cb_error_t err;
    if (cb_daemon_open(&in.d, SECTION, config, &err) != 0 ||
        intake_state_open(&in.st, in.d.store, &err) != 0 || intake_lists_rebuild(&in, &err) != 0)
        fatalx("start_failed error=\"%s\"", err.message);
    /* At most 2 MiB: the event of such a body stays under the 4 MiB record cap,
     * so no command can fail for size after it has begun writing. */
    intake_http_opts_t http = {0};
    if (cb_config_get_size(in.d.cfg, SECTION, "max_body", 1 << 20, 1024, 2 << 20, &in.max_body,
                           &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "max_age_days", 1825, 1, 36500, &in.max_age_days,
                          &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "max_connections", 1024, 1, 1000000,
                          &http.max_connections, &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "max_per_address", 256, 1, 1000000,
                          &http.max_per_address, &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "idle_timeout", 10, 1, 3600, &http.idle_timeout_s,
                          &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    in.m_answer_http = cb_metrics_histogram(
        in.d.metrics, "casebus_intake_answer_seconds{door=\"http\"}",
        "Seconds from a command's arrival to its answer (after its fsync when accepted)",
        cb_metrics_latency_buckets, CB_METRICS_LATENCY_BUCKETS);
    in.m_answer_zmq = cb_metrics_histogram(
        in.d.metrics, "casebus_intake_answer_seconds{door=\"zmq\"}",
        "Seconds from a command's arrival to its answer (after its fsync when accepted)",
        cb_metrics_latency_buckets, CB_METRICS_LATENCY_BUCKETS);
    in.m_commands_ok = cb_metrics_counter(in.d.metrics,
                                          "casebus_intake_commands_total{result=\"accepted\"}",
                                          "Commands by result");
    in.m_commands_refused = cb_metrics_counter(
        in.d.metrics, "casebus_intake_commands_total{result=\"refused\"}", "Commands by result");
    in.m_commands_failed = cb_metrics_counter(
        in.d.metrics, "casebus_intake_commands_total{result=\"failed\"}", "Commands by result");
    if (cb_daemon_pull(&in.d, intake_apply_upstream, &in, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);

    parse_listen(cb_config_get(in.d.cfg, SECTION, "http_listen", "127.0.0.1:8080"), http.host,
                 sizeof(http.host), &http.port);
    http.tls_cert = cb_config_get(in.d.cfg, SECTION, "tls_cert", NULL);
    http.tls_key = cb_config_get(in.d.cfg, SECTION, "tls_key", NULL);
    http.board_dir = cb_config_get(in.d.cfg, SECTION, "board_dir", "deploy/board");
    if (intake_http_start(&in, &http, &err) != 0)
        fatalx("http_failed error=\"%s\"", err.message);
    const char *zbind = cb_config_get(in.d.cfg, SECTION, "zmq_bind", "ipc://var/intake.cmd");
    if (intake_zmq_start(&in, zbind, &err) != 0)
        fatalx("zmq_failed error=\"%s\"", err.message);
    const char *cbind = cb_config_get(in.d.cfg, SECTION, "control_bind", NULL);
    if (cbind && cb_control_start(&in.control, &in.d, cbind, control, &in, &err) != 0)
        fatalx("control_failed error=\"%s\"", err.message);
    in.d.on_stop = stop_doors;
    in.d.hook_ctx = &in;
    cb_group_on_idle(in.d.group, intake_held_run, &in);
    if (cb_group_thread_commits(in.d.group, true, &err) != 0)
        log_warnx("commit_thread_failed error=\"%s\" (commits stay on the loop)", err.message);
    log_info("listening http%s=%s:%d zmq=%s control=%s", http.tls_cert ? "s" : "", http.host,
             http.port, zbind, cbind ? cbind : "none");
    int rc = cb_daemon_run(&in.d);
    cb_daemon_close(&in.d);
    intake_held_free(&in);
    return rc;
}
