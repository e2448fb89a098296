/*
 * control.c — what router answers on its control socket (common/control.c):
 * imports of the registry and the catalogue, read and checked on the thread
 * pool (so routing goes on meanwhile), then checked against the registry and
 * written in a turn's group transaction on the loop, adopted in memory only
 * once committed; status.
 */
#include "router.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After the commit: rebuild the registry from the store, so that what is in
 * memory is exactly what is on disk. */
static void adopt(void *ctx, cb_control_req_t *cr)
{
    router_t *r = ctx;
    router_registry_t *fresh = router_registry_new();
    router_registry_t *old = r->reg;
    cb_error_t e;
    r->reg = fresh;
    if (fresh == NULL || router_state_load(r, &e) != 0) {
        log_error("registry_reload_failed error=\"%s\"", fresh ? e.message : "out of memory");
        router_registry_destroy(&r->reg);
        r->reg = old;
    } else {
        router_registry_destroy(&old);
    }
    log_info("%s_imported version=%u count=%llu",
             cr->req->kind_case == CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CATALOG ? "catalog"
                                                                                      : "orgs",
             cr->reply.version, (unsigned long long)cr->reply.count);
}

static char *status_json(router_t *r)
{
    cb_error_t e;
    MDB_txn *txn = NULL;
    cb_log_head_t head = {0};
    if (cb_store_begin(r->d.store, false, &txn, &e) == 0)
        cb_log_head(r->d.log, txn, &head, &e);
    cb_store_abort(&txn);
    json_t *st = json_pack("{s:s,s:I,s:I,s:I,s:o*}", "daemon", "router", "log_head",
                           (json_int_t)head.seq, "orgs", (json_int_t)router_org_count(r->reg),
                           "catalog_version", (json_int_t)router_catalog_latest(r->reg),
                           "upstreams", cb_daemon_upstreams_json(&r->d));
    char *s = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    return s;
}

/* On the thread pool: the CSV read and checked, with no registry or store. */
static void parse_import(cb_control_req_t *cr)
{
    router_import_parse(cr->user, cr->req);
}

/* Back on the loop: checked against the registry and recorded. */
static int record_import(void *ctx, cb_control_req_t *cr, cb_error_t *err)
{
    router_t *r = ctx;
    router_import_t *job = cr->user;
    cr->user = NULL;
    int rc = 0;
    MDB_txn *txn;
    if (!cr->stopping && (rc = cb_group_txn(r->d.group, &txn, err)) == 0) {
        rc = router_import_record(r, txn, job, cr->req, &cr->reply, err);
        /* Refusals come before any write; a store failure may come after. */
        cr->wrote = rc == 0 || (rc != CB_ERR_INVALID && rc != CB_ERR_CONFLICT);
        if (rc == 0) {
            snprintf(cr->message, sizeof(cr->message), "%s version %u: %llu %s imported",
                     job->catalog ? "catalogue" : "organisation registry", cr->reply.version,
                     (unsigned long long)cr->reply.count,
                     job->catalog ? "matters" : "organisations");
            cr->after_commit = adopt;
        }
    }
    router_import_free(job);
    free(job);
    return rc;
}

static int handle(void *ctx, cb_control_req_t *cr, cb_error_t *err)
{
    router_t *r = ctx;
    const Casebus__V1__ControlRequest *req = cr->req;
    switch (req->kind_case) {
    case CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS:
        cr->status_json = status_json(r);
        return cr->status_json ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    case CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CATALOG:
    case CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_ORGS:
        break;
    default:
        return cb_error_set(err, CB_ERR_INVALID, "kind",
                            "router answers status, organisation and catalogue imports only");
    }
    router_import_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    cr->user = job;
    cr->work = parse_import;
    cr->resume = record_import;
    return 0;
}

int router_control_start(router_t *r, const char *endpoint, cb_error_t *err)
{
    return cb_control_start(&r->control, &r->d, endpoint, handle, r, err);
}

void router_control_stop(router_t *r)
{
    cb_control_stop(&r->control);
}
