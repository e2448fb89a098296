/*
 * main.c — casebus-router: options, wiring, the loop.
 *
 *   casebus-router --config FILE
 *
 * [router] keys: data_dir, map_size, bus_bind (its log for deadline, notify,
 * intake and `casebus tail`), control_bind (imports, status), pull = intake
 * ENDPOINT, log_level.
 */
#include "router.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void stop_doors(cb_daemon_t *d, void *ctx)
{
    (void)d;
    router_control_stop(ctx);
}

int main(int argc, char **argv)
{
    /* Static: the daemon's state lives until exit. */
    static router_t r;
    cb_daemon_main(&r.d, "router", argc, argv);
    cb_error_t err;
    r.reg = router_registry_new();
    if (r.reg == NULL || router_state_open(&r, &err) != 0 || router_state_load(&r, &err) != 0)
        fatalx("store_failed error=\"%s\"", r.reg ? err.message : "out of memory");
    r.m_routed = cb_metrics_counter(r.d.metrics, "casebus_router_cases_routed_total",
                                    "Cases whose jurisdiction was resolved");
    r.m_manual = cb_metrics_counter(r.d.metrics, "casebus_router_routing_failed_total",
                                    "Cases sent to manual dispatch");
    r.m_rejected = cb_metrics_counter(r.d.metrics, "casebus_router_transfer_rejected_total",
                                      "Transfer commands refused");
    r.m_transitions = cb_metrics_counter(r.d.metrics, "casebus_router_transitions_total",
                                         "Transfer state transitions applied");
    if (cb_daemon_pull(&r.d, router_apply, &r, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);
    const char *control = cb_config_get(r.d.cfg, "router", "control_bind", "ipc://var/router.ctl");
    if (router_control_start(&r, control, &err) != 0)
        fatalx("control_failed error=\"%s\"", err.message);
    r.d.on_stop = stop_doors;
    r.d.hook_ctx = &r;
    log_info("registry orgs=%zu catalog_version=%u control=%s", router_org_count(r.reg),
             router_catalog_latest(r.reg), control);
    int rc = cb_daemon_run(&r.d);
    router_registry_destroy(&r.reg);
    cb_daemon_close(&r.d);
    return rc;
}
