/*
 * router.h — the router daemon's private header. router is the single
 * authority on jurisdiction and on transfer state (DESIGN.md "Who decides
 * what"): it pulls intake's log, routes every reported case by the catalogue in
 * force at its discovery, runs every transfer through the state machine, and
 * records each verdict as a self-contained event in its own log. Imports of the
 * organisation registry and the delegation catalogue come through its control
 * socket and are events too.
 *
 * Files: main.c (wiring), state.c (every mdb_* call), registry.c (organisations,
 * catalogue versions, jurisdiction), transfer.c (the state machine), handlers.c
 * (one on_<event> per input event), control.c (the control socket).
 */
#ifndef CB_ROUTER_H
#define CB_ROUTER_H

#include <lmdb.h>

#include "casebus/v1/control.pb-c.h"
#include "control.h"
#include "catalog.h"
#include "daemon.h"
#include "orgs.h"
#include "registry.h"
#include "transfer.h"

typedef struct router {
    cb_daemon_t d;
    router_registry_t *reg;
    MDB_dbi db_meta, db_catalogs, db_cases, db_transfers, db_case_transfer;
    cb_control_t *control;
    cb_metric_t *m_routed, *m_manual, *m_rejected, *m_transitions;
} router_t;

/* ---- state.c ---- */
int router_state_open(router_t *r, cb_error_t *err);
/* Loads the registry and every catalogue version into r->reg. */
int router_state_load(router_t *r, cb_error_t *err);
int router_next_version(router_t *r, MDB_txn *txn, const char *which, uint32_t *version,
                        cb_error_t *err);
int router_orgs_put(router_t *r, MDB_txn *txn, const Casebus__V1__OrgsImported *oi,
                    cb_error_t *err);
int router_catalog_put(router_t *r, MDB_txn *txn, const Casebus__V1__CatalogImported *ci,
                       cb_error_t *err);
/* The stored resolution of a case (NULL when unknown); free with
 * casebus__v1__jurisdiction_resolved__free_unpacked. */
Casebus__V1__JurisdictionResolved *router_case_get(router_t *r, MDB_txn *txn, const char *case_id);
int router_case_put(router_t *r, MDB_txn *txn, const Casebus__V1__JurisdictionResolved *j,
                    cb_error_t *err);
/* The latest routed message of a transfer (NULL when unknown). */
Casebus__V1__TransferRouted *router_transfer_get(router_t *r, MDB_txn *txn, const char *id);
/* Stores t, and makes it its case's latest transfer. */
int router_transfer_put(router_t *r, MDB_txn *txn, const Casebus__V1__TransferRouted *t,
                        cb_error_t *err);
/* The case's latest transfer (NULL when none). */
Casebus__V1__TransferRouted *router_case_latest_transfer(router_t *r, MDB_txn *txn,
                                                         const char *case_id);

/* ---- handlers.c ---- */
/* Apply function for intake's events. */
int router_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err);
/* An import in two halves. router_import_parse reads and checks the CSV on its
 * own (no registry, no store: it runs on the thread pool, off the loop);
 * router_import_record checks it against the registry and records it in txn.
 * A refusal is CB_ERR_INVALID (or CB_ERR_CONFLICT) with err naming line and
 * column, and nothing written. */
typedef struct router_import {
    bool catalog;
    cb_org_list_t orgs;
    cb_matter_list_t matters;
    uint8_t hash[32];
    int rc;
    cb_error_t err;
} router_import_t;

void router_import_parse(router_import_t *job, const Casebus__V1__ControlRequest *req);
int router_import_record(router_t *r, MDB_txn *txn, router_import_t *job,
                         const Casebus__V1__ControlRequest *req, Casebus__V1__ControlReply *reply,
                         cb_error_t *err);
void router_import_free(router_import_t *job);

/* ---- control.c ---- */
int router_control_start(router_t *r, const char *endpoint, cb_error_t *err);
void router_control_stop(router_t *r);

#endif
