/*
 * main.c — casebus-intake: options, configuration, wiring, signals, the loop.
 *
 *   casebus-intake --config FILE                  serve (HTTP + ZeroMQ doors, bus)
 *   casebus-intake token create --config FILE --org ID [--org ID …] [--label TEXT] [--operator]
 *
 * Configuration ([intake] section of the deployment file):
 *   data_dir = var/intake          map_size = 1G
 *   http_listen = 127.0.0.1:8080   zmq_bind = ipc://var/intake.cmd
 *   bus_bind = ipc://var/intake.bus
 *   pull = router ipc://var/router.bus      (repeatable: the case view's sources)
 *   max_body = 1M   max_connections = 1024   max_age_days = 1825   log_level = info
 */
#include "intake.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define SECTION "intake"

static void usage(void)
{
    fprintf(stderr,
            "usage: casebus-intake --config FILE\n"
            "       casebus-intake token create --config FILE --org ID [--org ID ...] "
            "[--label TEXT] [--operator]\n");
    exit(2);
}

static int open_store(intake_t *in, cb_store_t **store, cb_error_t *err)
{
    uint64_t map_size;
    int rc = cb_config_get_size(in->cfg, SECTION, "map_size", 1ULL << 30, 1 << 20, 1ULL << 40,
                                &map_size, err);
    if (rc != 0)
        return rc;
    cb_store_opts_t opts = {.dir = cb_config_get(in->cfg, SECTION, "data_dir", "var/intake"),
                            .map_size = map_size};
    if ((rc = cb_store_open(store, &opts, err)) != 0)
        return rc;
    if ((rc = intake_state_open(&in->st, *store, err)) != 0 ||
        (rc = cb_log_open(&in->log, *store, "intake", err)) != 0) {
        cb_store_destroy(store);
        return rc;
    }
    return 0;
}

static int token_create(intake_t *in, int argc, char **argv)
{
    const char *orgs[INTAKE_MAX_TOKEN_ORGS + 1];
    size_t norgs = 0;
    const char *label = "";
    bool operator_ = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--org") == 0 && i + 1 < argc) {
            if (norgs > INTAKE_MAX_TOKEN_ORGS)
                fatalx("token_create_failed reason=\"at most %d --org\"", INTAKE_MAX_TOKEN_ORGS);
            orgs[norgs++] = argv[++i];
        } else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
            label = argv[++i];
        } else if (strcmp(argv[i], "--operator") == 0) {
            operator_ = true;
        } else {
            usage();
        }
    }
    cb_error_t err;
    cb_store_t *store = NULL;
    if (open_store(in, &store, &err) != 0) {
        fprintf(stderr, "casebus-intake: %s%s\n", err.message,
                err.code == CB_ERR_LOCKED ? " (stop intake first, or use `casebus token create`)"
                                          : "");
        return 1;
    }
    MDB_txn *txn = NULL;
    char *secret = NULL;
    int rc = cb_store_begin(store, true, &txn, &err);
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
    if (rc != 0) {
        fprintf(stderr, "casebus-intake: token create: %s\n", err.message);
        free(secret);
    } else {
        printf("%s\n", secret);
        free(secret);
    }
    cb_log_destroy(&in->log);
    cb_store_destroy(&store);
    return rc ? 1 : 0;
}

static uv_signal_t sig_term, sig_int;
static uv_timer_t exit_timer;

static void on_exit_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    intake_t *in = s->data;
    if (in->shutting_down)
        return;
    log_info("shutting_down signal=%d", signum);
    in->shutting_down = true;
    intake_http_stop(in);
    cb_group_flush(in->group);      /* answer every command in hand */
    intake_zmq_stop(in);
    cb_bus_consumer_destroy(&in->upstream);
    cb_bus_producer_destroy(&in->bus); /* answers parked fetches */
    /* Let the last responses leave, then stop. */
    uv_timer_init(in->loop, &exit_timer);
    uv_timer_start(&exit_timer, on_exit_timer, 200, 0);
}

static void wake_bus(void *ctx)
{
    intake_t *in = ctx;
    cb_bus_producer_wake(in->bus);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool token_cmd = argc > 2 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "create") == 0;
    int first = token_cmd ? 3 : 1;
    int rest = first;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (!token_cmd) {
            usage();
        } else {
            argv[rest++] = argv[i];
        }
    }
    if (config == NULL)
        usage();
    signal(SIGPIPE, SIG_IGN);
    /* LMDB allocates a 2 MiB dirty list for every child transaction (one per
     * command): keep such blocks in the heap instead of an mmap/munmap pair and
     * fresh page faults per command. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    /* Static: the daemon's state lives until exit (and stays reachable for
     * LeakSanitizer while the loop's last handles close). */
    static intake_t in;
    cb_error_t err;
    if (cb_config_load(&in.cfg, config, &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    const char *level = cb_config_get(in.cfg, SECTION, "log_level", "info");
    log_init("intake", strcmp(level, "debug") == 0 ? CB_LOG_DEBUG
                       : strcmp(level, "warn") == 0 ? CB_LOG_WARN
                                                     : CB_LOG_INFO);
    /* At most 2 MiB: the event of such a body stays under the 4 MiB record cap,
     * so no command can fail for size after it has begun writing. */
    if (cb_config_get_size(in.cfg, SECTION, "max_body", 1 << 20, 1024, 2 << 20, &in.max_body,
                           &err) != 0 ||
        cb_config_get_u64(in.cfg, SECTION, "max_age_days", 1825, 1, 36500, &in.max_age_days,
                          &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    if (token_cmd) {
        int rc = token_create(&in, rest - first, argv + first);
        cb_config_destroy(&in.cfg);
        return rc;
    }

    uint64_t max_conn;
    if (cb_config_get_u64(in.cfg, SECTION, "max_connections", 1024, 1, 1000000, &max_conn, &err))
        fatalx("config_failed error=\"%s\"", err.message);
    uv_loop_t *loop = uv_default_loop();
    in.loop = loop;
    in.zctx = zmq_ctx_new();
    in.metrics = cb_metrics_new();
    cb_store_t *store = NULL;
    if (open_store(&in, &store, &err) != 0)
        fatalx("store_failed error=\"%s\"", err.message);
    in.group = cb_group_new(loop, store);
    if (in.group == NULL)
        fatalx("start_failed error=\"out of memory\"");
    cb_group_on_commit(in.group, wake_bus, &in);
    in.m_commands_ok = cb_metrics_counter(in.metrics, "casebus_intake_commands_total{result=\"accepted\"}",
                                          "Commands by result");
    in.m_commands_refused = cb_metrics_counter(
        in.metrics, "casebus_intake_commands_total{result=\"refused\"}", "Commands by result");
    in.m_commands_failed = cb_metrics_counter(
        in.metrics, "casebus_intake_commands_total{result=\"failed\"}", "Commands by result");

    const char *bus_bind = cb_config_get(in.cfg, SECTION, "bus_bind", "ipc://var/intake.bus");
    if (cb_bus_producer_new(&in.bus, loop, in.zctx, in.log, bus_bind, in.metrics, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);

    const char *pulls[8];
    size_t npull = cb_config_get_all(in.cfg, SECTION, "pull", pulls, 8);
    if (npull > 0) {
        cb_bus_consumer_opts_t copts = {0};
        if (cb_bus_consumer_new(&in.upstream, loop, in.zctx, store, in.group, &copts,
                                intake_apply_upstream, &in, in.metrics, &err) != 0)
            fatalx("bus_failed error=\"%s\"", err.message);
        for (size_t i = 0; i < npull && i < 8; i++) {
            char name[32], endpoint[512];
            if (sscanf(pulls[i], "%31s %511s", name, endpoint) != 2)
                fatalx("config_failed error=\"[intake] pull = '%s': want 'PRODUCER ENDPOINT'\"",
                       pulls[i]);
            if (cb_bus_consumer_add(in.upstream, name, endpoint, &err) != 0)
                fatalx("bus_failed error=\"%s\"", err.message);
        }
    }

    const char *listen = cb_config_get(in.cfg, SECTION, "http_listen", "127.0.0.1:8080");
    char host[256];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof(host) ||
        (port = atoi(colon + 1)) <= 0 || port > 65535)
        fatalx("config_failed error=\"[intake] http_listen = '%s': want HOST:PORT\"", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (host[0] == '[') { /* [::1]:8080 */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    if (intake_http_start(&in, host, port, max_conn, &err) != 0)
        fatalx("http_failed error=\"%s\"", err.message);
    const char *zbind = cb_config_get(in.cfg, SECTION, "zmq_bind", "ipc://var/intake.cmd");
    if (intake_zmq_start(&in, zbind, &err) != 0)
        fatalx("zmq_failed error=\"%s\"", err.message);

    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    sig_term.data = sig_int.data = &in;
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    log_info("started pid=%d http=%s:%d zmq=%s bus=%s data_dir=%s", (int)getpid(), host, port,
             zbind, bus_bind, cb_store_dir(store));
    uv_run(loop, UV_RUN_DEFAULT);
    /* Stopped by a signal: everything acknowledged is committed (group flushed). */
    cb_group_flush(in.group);
    log_info("stopped");
    cb_log_destroy(&in.log);
    cb_store_destroy(&store);
    cb_metrics_destroy(&in.metrics);
    cb_config_destroy(&in.cfg);
    return 0;
}
