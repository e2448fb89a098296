/*
 * inform.c — who a record must reach, written into the event by intake, so
 * that notify addresses it from the event alone (docs/events.md, "Who
 * receives what"): the duties to inform of seed 002 §五(一)(二) and the
 * procuratorate's copy of a criminal referral (seed 000 §四(三)).
 */
#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

Casebus__V1__OrgRef *intake_owned_ref(const Casebus__V1__Organisation *o)
{
    Casebus__V1__OrgRef *r = malloc(sizeof(*r));
    if (r == NULL)
        return NULL;
    casebus__v1__org_ref__init(r);
    r->kind = o->kind;
    r->org_id = dup_str(o->org_id);
    r->name = dup_str(o->name);
    r->division_code = dup_str(o->division_code);
    r->parent_id = dup_str(o->parent_id);
    if (!r->org_id || !r->name || !r->division_code || !r->parent_id) {
        casebus__v1__org_ref__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

int intake_inform_set(intake_state_t *st, MDB_txn *txn, Casebus__V1__OrgRef ***field, size_t *n,
                      const char *const *ids, const char *except)
{
    for (size_t i = 0; i < *n; i++)
        casebus__v1__org_ref__free_unpacked((*field)[i], NULL);
    free(*field);
    *field = NULL;
    *n = 0;
    size_t want = 0;
    while (ids[want])
        want++;
    if (want == 0)
        return 0;
    Casebus__V1__OrgRef **refs = calloc(want, sizeof(*refs));
    if (refs == NULL)
        return CB_ERR_NOMEM;
    *field = refs;
    for (size_t i = 0; i < want; i++) {
        const char *id = ids[i];
        bool seen = id == NULL || *id == '\0' || (except && strcmp(id, except) == 0);
        for (size_t j = 0; j < *n && !seen; j++)
            seen = strcmp(refs[j]->org_id, id) == 0;
        if (seen)
            continue;
        Casebus__V1__Organisation *o = intake_org_get(st, txn, id);
        if (o == NULL)
            continue;
        refs[*n] = intake_owned_ref(o);
        casebus__v1__organisation__free_unpacked(o, NULL);
        if (refs[*n] == NULL)
            return CB_ERR_NOMEM;
        (*n)++;
    }
    return 0;
}
