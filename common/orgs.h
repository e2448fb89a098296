/*
 * orgs.h — the organisation registry as counties publish it: a CSV file with a
 * header row naming the columns (any order):
 *   org_id, kind, name, parent_id, division_code, credit_code
 * kind is one of COUNTY_DEPARTMENT, ENFORCEMENT_BUREAU, TOWNSHIP, JUDICIAL_BUREAU,
 * PUBLIC_SECURITY, PROCURATORATE, LEADING_GROUP_OFFICE, INTERNAL_UNIT,
 * DISPATCHED_UNIT. Parsing is all-or-nothing: the first bad row is reported by
 * line and column and nothing is returned.
 */
#ifndef CB_ORGS_H
#define CB_ORGS_H

#include <stddef.h>

#include "casebus/v1/common.pb-c.h"
#include "error.h"

#define CB_ORG_ID_MAX 64

typedef struct cb_org_list {
    Casebus__V1__Organisation **orgs;  /* each allocated by cb_orgs_parse */
    size_t count;
} cb_org_list_t;

/* r points into o (valid while o lives). */
void cb_org_ref_fill(Casebus__V1__OrgRef *r, const Casebus__V1__Organisation *o);

int cb_orgs_parse(const char *text, size_t len, cb_org_list_t *out, cb_error_t *err);
void cb_orgs_free(cb_org_list_t *list);

/* "TOWNSHIP" ↔ CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP; 0 / NULL when unknown. */
int cb_org_kind_parse(const char *name);
const char *cb_org_kind_name(int kind);
/* An id: 1–64 characters of A-Z a-z 0-9 . _ - */
int cb_check_org_id(const char *id, const char *field, cb_error_t *err);

#endif
