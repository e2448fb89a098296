/*
 * main.c — casebus-intake: options, configuration, wiring, the loop.
 *
 *   casebus-intake --config FILE                  serve (HTTP + ZeroMQ doors, bus)
 *   casebus-intake token create --config FILE --org ID [--org ID …] [--label TEXT] [--operator]
 *
 * Configuration ([intake] section of the deployment file, see deploy/casebus.conf):
 *   data_dir, map_size, bus_bind, pull = PRODUCER ENDPOINT (repeatable), log_level
 *   (common/daemon.h), and http_listen = 127.0.0.1:8080, zmq_bind, max_body (≤ 2M),
 *   max_connections = 1024, max_age_days = 1825.
 */
#include "intake.h"
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
            "[--label TEXT] [--operator]\n");
    exit(2);
}

static int token_create(intake_t *in, const char *config, int argc, char **argv)
{
    const char *orgs[INTAKE_MAX_TOKEN_ORGS + 1];
    size_t norgs = 0;
    const char *label = "";
    bool operator_ = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--org") == 0 && i + 1 < argc && norgs <= INTAKE_MAX_TOKEN_ORGS)
            orgs[norgs++] = argv[++i];
        else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
            label = argv[++i];
        else if (strcmp(argv[i], "--operator") == 0)
            operator_ = true;
        else
            usage();
    }
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
    int rc = cb_store_begin(in->d.store, true, &txn, &err);
    if (rc == 0) {
        for (size_t i = 0; i < norgs; i++) {
            Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, orgs[i]);
            if (o == NULL)
                fprintf(stderr, "casebus-intake: warning: organisation '%s' is not in the "
                                "registry yet\n", orgs[i]);
            else
                casebus__v1__organisation__free_unpacked(o, NULL);
        }
        rc = intake_token_create(in, txn, orgs, norgs, label, operator_, &secret, &err);
    }
    if (rc == 0)
        rc = cb_store_commit(&txn, &err);
    else
        cb_store_abort(&txn);
    if (rc != 0)
        fprintf(stderr, "casebus-intake: token create: %s\n", err.message);
    else
        printf("%s\n", secret);
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
    if (req->kind_case != CASEBUS__V1__CONTROL_REQUEST__KIND_CREATE_TOKEN)
        return cb_error_set(err, CB_ERR_INVALID, "kind", "intake answers status and token creation only");
    const Casebus__V1__CreateToken *ct = req->create_token;
    if ((rc = cb_group_txn(in->d.group, &txn, err)) != 0)
        return rc;
    char *secret = NULL;
    rc = intake_token_create(in, txn, (const char *const *)ct->org_ids, ct->n_org_ids, ct->label,
                             ct->operator_, &secret, err);
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
    bool token_cmd = argc > 2 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "create") == 0;
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
        return token_create(&in, config, rest - first, argv + first);

    cb_error_t err;
    if (cb_daemon_open(&in.d, SECTION, config, &err) != 0 ||
        intake_state_open(&in.st, in.d.store, &err) != 0)
        fatalx("start_failed error=\"%s\"", err.message);
    /* At most 2 MiB: the event of such a body stays under the 4 MiB record cap,
     * so no command can fail for size after it has begun writing. */
    uint64_t max_conn;
    if (cb_config_get_size(in.d.cfg, SECTION, "max_body", 1 << 20, 1024, 2 << 20, &in.max_body,
                           &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "max_age_days", 1825, 1, 36500, &in.max_age_days,
                          &err) != 0 ||
        cb_config_get_u64(in.d.cfg, SECTION, "max_connections", 1024, 1, 1000000, &max_conn,
                          &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    in.m_commands_ok = cb_metrics_counter(in.d.metrics,
                                          "casebus_intake_commands_total{result=\"accepted\"}",
                                          "Commands by result");
    in.m_commands_refused = cb_metrics_counter(
        in.d.metrics, "casebus_intake_commands_total{result=\"refused\"}", "Commands by result");
    in.m_commands_failed = cb_metrics_counter(
        in.d.metrics, "casebus_intake_commands_total{result=\"failed\"}", "Commands by result");
    if (cb_daemon_pull(&in.d, intake_apply_upstream, &in, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);

    char host[256];
    int port = 0;
    parse_listen(cb_config_get(in.d.cfg, SECTION, "http_listen", "127.0.0.1:8080"), host,
                 sizeof(host), &port);
    if (intake_http_start(&in, host, port, max_conn, &err) != 0)
        fatalx("http_failed error=\"%s\"", err.message);
    const char *zbind = cb_config_get(in.d.cfg, SECTION, "zmq_bind", "ipc://var/intake.cmd");
    if (intake_zmq_start(&in, zbind, &err) != 0)
        fatalx("zmq_failed error=\"%s\"", err.message);
    const char *cbind = cb_config_get(in.d.cfg, SECTION, "control_bind", NULL);
    if (cbind && cb_control_start(&in.control, &in.d, cbind, control, &in, &err) != 0)
        fatalx("control_failed error=\"%s\"", err.message);
    in.d.on_stop = stop_doors;
    in.d.hook_ctx = &in;
    log_info("listening http=%s:%d zmq=%s control=%s", host, port, zbind, cbind ? cbind : "none");
    int rc = cb_daemon_run(&in.d);
    cb_daemon_close(&in.d);
    return rc;
}
