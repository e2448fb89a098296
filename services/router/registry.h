/*
 * registry.h — router's in-memory view of who is who and who holds what: the
 * current organisation registry and every version of the delegation catalogue,
 * and jurisdiction over them (DOMAIN.md "Where a case belongs"). Pure memory,
 * no I/O: router's state.c persists the imports and rebuilds this at start-up.
 */
#ifndef CB_ROUTER_REGISTRY_H
#define CB_ROUTER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "casebus/v1/events.pb-c.h"
#include "error.h"

typedef struct router_registry router_registry_t;

router_registry_t *router_registry_new(void);
void router_registry_destroy(router_registry_t **reg);

/* Takes ownership of orgs (an unpacked OrgsImported) on success; replaces the
 * previous registry. */
int router_registry_set_orgs(router_registry_t *reg, Casebus__V1__OrgsImported **orgs,
                             cb_error_t *err);
/* Takes ownership of an unpacked CatalogImported on success. Versions must be
 * added in increasing version number. */
int router_registry_add_catalog(router_registry_t *reg, Casebus__V1__CatalogImported **cat,
                                cb_error_t *err);

const Casebus__V1__Organisation *router_org(const router_registry_t *reg, const char *org_id);
/* The county's organisation of a kind that has exactly one (enforcement bureau,
 * judicial bureau, public security, procuratorate, leading-group office). */
const Casebus__V1__Organisation *router_org_of_kind(const router_registry_t *reg, int kind);
const Casebus__V1__Organisation *router_township(const router_registry_t *reg,
                                                 const char *division_code);
/* The catalogue version in force at t (latest effective_from <= t), or NULL. */
const Casebus__V1__CatalogImported *router_catalog_at(const router_registry_t *reg, int64_t t);
uint32_t router_catalog_latest(const router_registry_t *reg);
size_t router_org_count(const router_registry_t *reg);

typedef struct router_resolution {
    int rule;                                    /* CASEBUS__V1__JURISDICTION_RULE__… */
    const Casebus__V1__Organisation *competent;  /* never NULL when an enforcement bureau exists */
    const Casebus__V1__Organisation *copies[2];
    size_t ncopies;
    const Casebus__V1__Matter *matter;           /* NULL when unknown */
    uint32_t catalog_version;                    /* 0 when none in force */
    bool failed;                                 /* rule 5: manual dispatch, alert */
    char reason[256];                            /* why rule 5 applied */
} router_resolution_t;

/* Applies DOMAIN.md's five rules, in order, to a case discovered at
 * c->discovered_at_ms. Returns CB_ERR_CONFIG when the registry has no
 * enforcement bureau (nobody to route to: never drop the case silently). */
int router_resolve(const router_registry_t *reg, const Casebus__V1__CaseSummary *c,
                   router_resolution_t *out, cb_error_t *err);

#endif
