/*
 * daemon.c — shared daemon wiring (daemon.h).
 */
#include "daemon.h"
#include "promhttp.h"
#include "curve.h"
#include "cbtime.h"
#include "log.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static void wake_bus(void *ctx)
{
    cb_daemon_t *d = ctx;
    cb_bus_producer_wake(d->bus);
    if (d->after_commit)
        d->after_commit(d, d->hook_ctx);
}

int cb_daemon_open_store(cb_daemon_t *d, const char *name, const char *config_path, cb_error_t *err)
{
    int rc;
    memset(d, 0, sizeof(*d));
    d->name = name;
    signal(SIGPIPE, SIG_IGN);
    /* LMDB allocates a 2 MiB dirty list per child transaction: keep such blocks
     * in the heap rather than an mmap/munmap pair per use. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if ((rc = cb_config_load(&d->cfg, config_path, err)) != 0)
        return rc;
    const char *level = cb_config_get(d->cfg, name, "log_level", "info");
    log_init(name, strcmp(level, "debug") == 0  ? CB_LOG_DEBUG
                   : strcmp(level, "warn") == 0 ? CB_LOG_WARN
                                                : CB_LOG_INFO);
    uint64_t map_size;
    if ((rc = cb_config_get_size(d->cfg, name, "map_size", 1ULL << 30, 1 << 20, 1ULL << 40,
                                 &map_size, err)) != 0)
        return rc;
    char dflt[64];
    snprintf(dflt, sizeof(dflt), "var/%s", name);
    cb_store_opts_t opts = {.dir = cb_config_get(d->cfg, name, "data_dir", dflt),
                            .map_size = map_size};
    if ((rc = cb_store_open(&d->store, &opts, err)) != 0 ||
        (rc = cb_log_open(&d->log, d->store, name, err)) != 0)
        return rc;
    return 0;
}

int cb_daemon_open(cb_daemon_t *d, const char *name, const char *config_path, cb_error_t *err)
{
    int rc = cb_daemon_open_store(d, name, config_path, err);
    if (rc != 0)
        return rc;
    char dflt[64];
    d->loop = uv_default_loop();
    d->zctx = zmq_ctx_new();
    d->metrics = cb_metrics_new();
    d->group = cb_group_new(d->loop, d->store);
    if (d->zctx == NULL || d->metrics == NULL || d->group == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    cb_group_on_commit(d->group, wake_bus, d);
    char self[64];
    snprintf(self, sizeof(self), "daemons/%s", name);
    if ((rc = cb_curve_setup(d->cfg, self, NULL, err)) != 0 ||
        (rc = cb_zap_start(d->loop, d->zctx, err)) != 0)
        return rc;
    if (cb_curve_on())
        log_info("curve keys_dir=%s", cb_curve_dir());
    snprintf(dflt, sizeof(dflt), "ipc://var/%s.bus", name);
    const char *bus_bind = cb_config_get(d->cfg, name, "bus_bind", dflt);
    char label[96];
    snprintf(label, sizeof(label), "casebus_store_used_bytes{daemon=\"%s\"}", name);
    d->m_store_used = cb_metrics_gauge(d->metrics, label, "Bytes of the store's map in use");
    snprintf(label, sizeof(label), "casebus_store_map_size_bytes{daemon=\"%s\"}", name);
    d->m_store_map =
        cb_metrics_gauge(d->metrics, label, "The store's map_size: the most it may grow to");
    snprintf(label, sizeof(label), "casebus_log_head_seq{producer=\"%s\"}", name);
    d->m_log_head = cb_metrics_gauge(d->metrics, label, "The last sequence number of the log");
    snprintf(label, sizeof(label), "casebus_store_write_failing{daemon=\"%s\"}", name);
    d->m_failing = cb_metrics_gauge(d->metrics, label,
                                    "1 while the last group commit failed (until one succeeds)");
    if ((rc = cb_bus_producer_new(&d->bus, d->loop, d->zctx, d->log, bus_bind, d->metrics, err)) !=
        0)
        return rc;
    return cb_promhttp_start(&d->promhttp, d, err);
}

int cb_daemon_pull(cb_daemon_t *d, cb_bus_apply_fn apply, void *ctx, cb_error_t *err)
{
    const char *pulls[8];
    size_t n = cb_config_get_all(d->cfg, d->name, "pull", pulls, 8);
    if (n > 8)
        return cb_error_set(err, CB_ERR_CONFIG, "pull", "[%s] at most 8 pull lines", d->name);
    if (n == 0)
        return 0;
    uint64_t wait_ms;
    int rc =
        cb_config_get_u64(d->cfg, d->name, "pull_max_wait_ms", 5000, 100, 600000, &wait_ms, err);
    if (rc != 0)
        return rc;
    cb_bus_consumer_opts_t copts = {.max_wait_ms = (uint32_t)wait_ms};
    rc = cb_bus_consumer_new(&d->upstream, d->loop, d->zctx, d->store, d->group, &copts, apply, ctx,
                             d->metrics, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[32], endpoint[512];
        if (sscanf(pulls[i], "%31s %511s", name, endpoint) != 2)
            return cb_error_set(err, CB_ERR_CONFIG, "pull",
                                "[%s] pull = '%s': want 'PRODUCER ENDPOINT'", d->name, pulls[i]);
        rc = cb_bus_consumer_add(d->upstream, name, endpoint, err);
    }
    return rc;
}

json_t *cb_daemon_upstreams_json(const cb_daemon_t *d)
{
    json_t *ups = json_array();
    cb_bus_upstream_info_t info;
    int64_t now = cb_now_ms();
    for (size_t i = 0; ups && d->upstream && cb_bus_consumer_info(d->upstream, i, &info); i++) {
        json_t *u = json_pack(
            "{s:s,s:s,s:I,s:I,s:I,s:b,s:I,s:I}", "producer", info.producer, "endpoint",
            info.endpoint, "next_seq", (json_int_t)info.next_seq, "head", (json_int_t)info.head_seq,
            "lag", (json_int_t)cb_bus_upstream_lag(&info), "connected", info.connected,
            "last_answer_age_ms", (json_int_t)cb_bus_upstream_answer_age_ms(&info, now),
            "max_wait_ms", (json_int_t)info.max_wait_ms);
        if (u && info.problem)
            json_object_set_new(u, "problem", json_string(info.problem));
        if (u == NULL || json_array_append_new(ups, u) != 0) {
            json_decref(ups);
            return NULL;
        }
    }
    return ups;
}

char *cb_daemon_metrics_text(cb_daemon_t *d, size_t *len)
{
    cb_bus_consumer_update_metrics(d->upstream);
    cb_metric_set(d->m_store_used, (double)cb_store_used(d->store));
    cb_metric_set(d->m_store_map, (double)cb_store_map_size(d->store));
    cb_metric_set(d->m_failing, cb_group_failing(d->group) ? 1 : 0);
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    cb_error_t err;
    if (cb_store_begin(d->store, false, &txn, &err) == 0 &&
        cb_log_head(d->log, txn, &head, &err) == 0)
        cb_metric_set(d->m_log_head, (double)head.seq);
    if (d->refresh_metrics)
        d->refresh_metrics(d, txn, d->hook_ctx);
    cb_store_abort(&txn);
    return cb_metrics_render(d->metrics, len);
}

json_t *cb_daemon_health(cb_daemon_t *d, bool *healthy)
{
    cb_error_t err;
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    bool readable = cb_store_begin(d->store, false, &txn, &err) == 0 &&
                    cb_log_head(d->log, txn, &head, &err) == 0;
    cb_store_abort(&txn);
    const cb_error_t *failing = d->group ? cb_group_failing(d->group) : NULL;
    size_t used = cb_store_used(d->store), map = cb_store_map_size(d->store);
    bool nearly_full = map > 0 && used >= map / 20 * 19;
    const char *status = d->shutting_down         ? "shutting_down"
                         : !readable              ? "store_error"
                         : failing || nearly_full ? "degraded"
                                                  : "ok";
    *healthy = strcmp(status, "ok") == 0;
    char why[300] = "";
    if (!readable)
        snprintf(why, sizeof(why), "the store cannot be read: %s", err.message);
    else if (failing)
        snprintf(why, sizeof(why), "the last write failed: %s", failing->message);
    else if (nearly_full)
        snprintf(why, sizeof(why), "the store is %zu%% full (map_size): raise map_size",
                 used / (map / 100));
    json_t *st =
        json_pack("{s:s,s:s,s:I,s:I,s:I,s:o*}", "status", status, "daemon", d->name, "log_head",
                  (json_int_t)head.seq, "store_used_bytes", (json_int_t)used, "store_map_size",
                  (json_int_t)map, "upstreams", cb_daemon_upstreams_json(d));
    if (st && why[0])
        json_object_set_new(st, "reason", json_string(why));
    return st;
}

static void on_exit_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cb_daemon_t *d = s->data;
    if (d->shutting_down)
        return;
    log_info("shutting_down signal=%d", signum);
    d->shutting_down = true;
    cb_group_flush(d->group); /* commit and answer what is in hand */
    if (d->on_stop)
        d->on_stop(d, d->hook_ctx); /* the daemon's own doors */
    cb_promhttp_stop(&d->promhttp);
    cb_bus_consumer_destroy(&d->upstream);
    cb_bus_producer_destroy(&d->bus); /* answers parked fetches */
    cb_zap_stop();
    /* Let the last answers leave, then stop; without a timer, stop at once. */
    if (uv_timer_init(d->loop, &d->exit_timer) != 0 ||
        uv_timer_start(&d->exit_timer, on_exit_timer, 200, 0) != 0)
        uv_stop(d->loop);
}

int cb_daemon_run(cb_daemon_t *d)
{
    int rc;
    if ((rc = uv_signal_init(d->loop, &d->sig_term)) != 0 ||
        (rc = uv_signal_init(d->loop, &d->sig_int)) != 0) {
        log_error("start_failed error=\"signal handlers: %s\"", uv_strerror(rc));
        return 1;
    }
    d->sig_term.data = d->sig_int.data = d;
    if ((rc = uv_signal_start(&d->sig_term, on_signal, SIGTERM)) != 0 ||
        (rc = uv_signal_start(&d->sig_int, on_signal, SIGINT)) != 0) {
        log_error("start_failed error=\"signal handlers: %s\"", uv_strerror(rc));
        return 1;
    }
    log_info("started pid=%d data_dir=%s", (int)getpid(), cb_store_dir(d->store));
    uv_run(d->loop, UV_RUN_DEFAULT);
    cb_group_flush(d->group);
    log_info("stopped");
    return 0;
}

void cb_daemon_close(cb_daemon_t *d)
{
    cb_log_destroy(&d->log);
    cb_store_destroy(&d->store);
    cb_metrics_destroy(&d->metrics);
    cb_config_destroy(&d->cfg);
}

void cb_daemon_main(cb_daemon_t *d, const char *name, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--config") != 0) {
        fprintf(stderr, "usage: casebus-%s --config FILE\n", name);
        exit(2);
    }
    cb_error_t err;
    if (cb_daemon_open(d, name, argv[2], &err) != 0)
        fatalx("start_failed error=\"%s\"", err.message);
}
