/*
 * daemon.h — the wiring every casebus daemon shares, from its section of the
 * deployment file: log lines, the store (data_dir, map_size), its event log, the
 * group commit, the bus producer (bus_bind), consumers of the producers it pulls
 * (`pull = NAME ENDPOINT`, repeatable), /metrics and /healthz on metrics_listen
 * (promhttp.h), and a clean stop on SIGTERM/SIGINT
 * (stop doors, commit what is in hand, answer parked fetches, exit 0).
 */
#ifndef CB_DAEMON_H
#define CB_DAEMON_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "bus.h"
#include "config.h"
#include "error.h"
#include "evlog.h"
#include "metrics.h"
#include "store.h"
#include "zloop.h"

typedef struct cb_daemon cb_daemon_t;
struct cb_promhttp;
typedef void (*cb_daemon_hook_fn)(cb_daemon_t *d, void *ctx);

struct cb_daemon {
    const char *name;              /* section and producer name: "router" */
    uv_loop_t *loop;
    void *zctx;
    cb_config_t *cfg;
    cb_metrics_t *metrics;
    cb_store_t *store;
    cb_log_t *log;
    cb_group_t *group;
    cb_bus_producer_t *bus;
    cb_bus_consumer_t *upstream;
    bool shutting_down;
    cb_daemon_hook_fn on_stop;     /* close the daemon's own doors */
    cb_daemon_hook_fn after_commit; /* after each group commit (e.g. start what it made ready) */
    /* brings the daemon's own gauges up to date, reading in txn (NULL when the
     * store could not be read) */
    void (*refresh_metrics)(cb_daemon_t *d, MDB_txn *txn, void *ctx);
    void *hook_ctx;
    uv_signal_t sig_term, sig_int;
    uv_timer_t exit_timer;
    struct cb_promhttp *promhttp;  /* metrics_listen, when configured */
    cb_metric_t *m_store_used, *m_store_map, *m_log_head, *m_failing;
};

/* Loads the configuration, sets up log lines, opens the store and the log,
 * the group commit and the bus producer. Errors name the key. */
int cb_daemon_open(cb_daemon_t *d, const char *name, const char *config_path, cb_error_t *err);
/* A daemon's main: `casebus-NAME --config FILE` and cb_daemon_open, or the
 * usage (exit 2) or the reason it cannot start (exit 1) on stderr. */
void cb_daemon_main(cb_daemon_t *d, const char *name, int argc, char **argv);
/* The first half of open, for offline tools (e.g. `token create`): the
 * configuration, log lines, the store and the log; no loop, no sockets. */
int cb_daemon_open_store(cb_daemon_t *d, const char *name, const char *config_path,
                         cb_error_t *err);
/* Starts consumers for every `pull` line of the section, applying with apply. */
int cb_daemon_pull(cb_daemon_t *d, cb_bus_apply_fn apply, void *ctx, cb_error_t *err);
/* Each upstream this daemon pulls, as status JSON: producer, endpoint,
 * next_seq, head, lag, connected, last_answer_age_ms, max_wait_ms and, when
 * stuck, problem. A new reference; NULL when out of memory. */
json_t *cb_daemon_upstreams_json(const cb_daemon_t *d);
/* The daemon's metrics as Prometheus text (gauges brought up to date first);
 * the caller frees it. NULL when out of memory. */
char *cb_daemon_metrics_text(cb_daemon_t *d, size_t *len);
/* The daemon's health as /healthz answers it: status (ok, degraded,
 * store_error, shutting_down), reason, log_head, store use, upstreams;
 * *healthy is whether that is "ok". A new reference (NULL: out of memory). */
json_t *cb_daemon_health(cb_daemon_t *d, bool *healthy);
/* Runs the loop until a signal stops it; returns the exit status (0). */
int cb_daemon_run(cb_daemon_t *d);
/* Frees what open made (after run). */
void cb_daemon_close(cb_daemon_t *d);

#endif
