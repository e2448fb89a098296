/*
 * registry.c — organisations, catalogue versions and jurisdiction (registry.h).
 * Sizes are a county's: tens of organisations, a few thousand matters per
 * version, so lookups are linear scans over the current registry and a binary
 * search over a version's matters sorted by code.
 */
#include "registry.h"
#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router_registry {
    Casebus__V1__OrgsImported *orgs;
    Casebus__V1__CatalogImported **versions;   /* by version number */
    size_t nversions;
};

router_registry_t *router_registry_new(void)
{
    return calloc(1, sizeof(router_registry_t));
}

void router_registry_destroy(router_registry_t **preg)
{
    router_registry_t *reg = *preg;
    if (reg == NULL)
        return;
    if (reg->orgs)
        casebus__v1__orgs_imported__free_unpacked(reg->orgs, NULL);
    for (size_t i = 0; i < reg->nversions; i++)
        casebus__v1__catalog_imported__free_unpacked(reg->versions[i], NULL);
    free(reg->versions);
    free(reg);
    *preg = NULL;
}

int router_registry_set_orgs(router_registry_t *reg, Casebus__V1__OrgsImported **orgs,
                             cb_error_t *err)
{
    (void)err;
    if (reg->orgs)
        casebus__v1__orgs_imported__free_unpacked(reg->orgs, NULL);
    reg->orgs = *orgs;
    *orgs = NULL;
    return 0;
}

static int by_code(const void *a, const void *b)
{
    return strcmp((*(Casebus__V1__Matter *const *)a)->code, (*(Casebus__V1__Matter *const *)b)->code);
}

int router_registry_add_catalog(router_registry_t *reg, Casebus__V1__CatalogImported **cat,
                                cb_error_t *err)
{
    Casebus__V1__CatalogImported *c = *cat;
    if (reg->nversions > 0 && c->version <= reg->versions[reg->nversions - 1]->version)
        return cb_error_set(err, CB_ERR_CONFLICT, "version",
                            "catalogue version %u is not after version %u", c->version,
                            reg->versions[reg->nversions - 1]->version);
    Casebus__V1__CatalogImported **v =
        realloc(reg->versions, (reg->nversions + 1) * sizeof(*v));
    if (v == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    reg->versions = v;
    qsort(c->matters, c->n_matters, sizeof(*c->matters), by_code);
    reg->versions[reg->nversions++] = c;
    *cat = NULL;
    return 0;
}

size_t router_org_count(const router_registry_t *reg)
{
    return reg->orgs ? reg->orgs->n_orgs : 0;
}

const Casebus__V1__Organisation *router_org(const router_registry_t *reg, const char *org_id)
{
    for (size_t i = 0; org_id && i < router_org_count(reg); i++)
        if (strcmp(reg->orgs->orgs[i]->org_id, org_id) == 0)
            return reg->orgs->orgs[i];
    return NULL;
}

const Casebus__V1__Organisation *router_org_of_kind(const router_registry_t *reg, int kind)
{
    for (size_t i = 0; i < router_org_count(reg); i++)
        if ((int)reg->orgs->orgs[i]->kind == kind)
            return reg->orgs->orgs[i];
    return NULL;
}

const Casebus__V1__Organisation *router_township(const router_registry_t *reg,
                                                 const char *division_code)
{
    for (size_t i = 0; division_code && i < router_org_count(reg); i++) {
        const Casebus__V1__Organisation *o = reg->orgs->orgs[i];
        if (o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP &&
            strcmp(o->division_code, division_code) == 0)
            return o;
    }
    return NULL;
}

const Casebus__V1__CatalogImported *router_catalog_at(const router_registry_t *reg, int64_t t)
{
    const Casebus__V1__CatalogImported *best = NULL;
    for (size_t i = 0; i < reg->nversions; i++)
        if (reg->versions[i]->effective_from_ms <= t &&
            (best == NULL || reg->versions[i]->effective_from_ms >= best->effective_from_ms))
            best = reg->versions[i];
    return best;
}

uint32_t router_catalog_latest(const router_registry_t *reg)
{
    return reg->nversions ? reg->versions[reg->nversions - 1]->version : 0;
}

static const Casebus__V1__Matter *find_matter(const Casebus__V1__CatalogImported *cat,
                                              const char *code)
{
    size_t lo = 0, hi = cat->n_matters;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(cat->matters[mid]->code, code);
        if (c == 0)
            return cat->matters[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* 5. Unknown matter or township: to the county command platform (the
 * enforcement bureau) for manual dispatch, with an alert. Never dropped. */
static int manual(router_resolution_t *out, const Casebus__V1__Organisation *bureau,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int manual(router_resolution_t *out, const Casebus__V1__Organisation *bureau,
                  const char *fmt, ...)
{
    out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_MANUAL_DISPATCH;
    out->competent = bureau;
    out->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
    return 0;
}

int router_resolve(const router_registry_t *reg, const Casebus__V1__CaseSummary *c,
                   router_resolution_t *out, cb_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const Casebus__V1__Organisation *bureau =
        router_org_of_kind(reg, CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU);
    if (bureau == NULL)
        return cb_error_set(err, CB_ERR_CONFIG, "orgs",
                            "the registry has no ENFORCEMENT_BUREAU: import the organisations");
    const Casebus__V1__CatalogImported *cat = router_catalog_at(reg, c->discovered_at_ms);
    out->catalog_version = cat ? cat->version : 0;
    out->matter = cat ? find_matter(cat, c->matter_code) : NULL;

    /* 1. Suspected crime: public security, copied to the procuratorate (seed 000 §四(三)). */
    if (c->suspected_crime) {
        const Casebus__V1__Organisation *police =
            router_org_of_kind(reg, CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY);
        const Casebus__V1__Organisation *proc =
            router_org_of_kind(reg, CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE);
        if (police == NULL)
            return manual(out, bureau, "suspected crime, but the registry has no PUBLIC_SECURITY");
        out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_SUSPECTED_CRIME;
        out->competent = police;
        if (proc)
            out->copies[out->ncopies++] = proc;
        return 0;
    }
    const Casebus__V1__Organisation *town = router_township(reg, c->township_code);
    if (cat == NULL)
        return manual(out, bureau, "no catalogue version is in force at the discovery time");
    if (out->matter == NULL || !cb_matter_in_force(out->matter, c->discovered_at_ms))
        return manual(out, bureau, "matter %s is not in force in catalogue version %u%s",
                      c->matter_code, cat->version,
                      out->matter ? " at the discovery time" : "");
    const Casebus__V1__Matter *m = out->matter;
    switch (m->holder) {
    case CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_BASIC:
    case CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_OPTIONAL:
        if (town == NULL)
            return manual(out, bureau, "township %s is not in the registry (matter %s)",
                          c->township_code, m->code);
        /* 2. Delegated to that township: basic, or optional and accepted. */
        if (m->holder == CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_BASIC ||
            cb_matter_accepted_by(m, c->township_code)) {
            out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_TOWNSHIP;
            out->competent = town;
            return 0;
        }
        /* Optional, not accepted here: it stays with whoever keeps it. */
        if (m->department_id[0] == '\0') {
            out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_ENFORCEMENT_BUREAU;
            out->competent = bureau;
            return 0;
        }
        goto department; /* kept by the named department */
    case CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_DEPARTMENT:
    department: {
        const Casebus__V1__Organisation *dept = router_org(reg, m->department_id);
        if (dept == NULL)
            return manual(out, bureau, "matter %s names department %s, which is not registered",
                          m->code, m->department_id);
        out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_DEPARTMENT;
        out->competent = dept;
        return 0;
    }
    case CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_ENFORCEMENT_BUREAU:
        out->rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_ENFORCEMENT_BUREAU;
        out->competent = bureau;
        return 0;
    default:
        return manual(out, bureau, "matter %s has no holder", m->code);
    }
}
