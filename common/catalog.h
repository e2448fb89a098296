/*
 * catalog.h — the delegation catalogue (赋权目录) as counties publish it: a CSV
 * file with a header row naming the columns (any order):
 *   matter_code, name, domain, holder, department_id, townships,
 *   effective_from, effective_to
 * holder is TOWNSHIP_BASIC (基本盘: every township), TOWNSHIP_OPTIONAL (自选:
 * the townships listed in `townships`, division codes separated by ';'),
 * ENFORCEMENT_BUREAU, or DEPARTMENT (the organisation in department_id).
 * For TOWNSHIP_OPTIONAL, department_id names who keeps the matter where a
 * township did not accept it (empty: the enforcement bureau).
 * effective_from / effective_to are dates (YYYY-MM-DD, China Standard Time);
 * from is inclusive, to is the last day in force; both optional.
 * Parsing is all-or-nothing; the first bad row is reported by line and column.
 * Organisation ids are checked for form here; that they exist is the
 * importer's check (it has the registry).
 */
#ifndef CB_CATALOG_H
#define CB_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "casebus/v1/events.pb-c.h"
#include "error.h"

#define CB_MATTER_CODE_MAX 32

typedef struct cb_matter_list {
    Casebus__V1__Matter **matters;
    size_t *lines;                 /* the CSV line of each matter, for later checks */
    size_t count;
} cb_matter_list_t;

int cb_catalog_parse(const char *text, size_t len, cb_matter_list_t *out, cb_error_t *err);
void cb_catalog_free(cb_matter_list_t *list);

/* Is the matter in force at instant t (UTC ms)? */
int cb_matter_in_force(const Casebus__V1__Matter *m, int64_t t);
/* Does an optional matter's township list contain township_code? */
int cb_matter_accepted_by(const Casebus__V1__Matter *m, const char *township_code);

#endif
