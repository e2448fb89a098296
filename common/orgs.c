/*
 * orgs.c — organisation registry CSV (orgs.h).
 */
#include "orgs.h"
#include "codes.h"
#include "csv.h"
#include "strindex.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[] = {
    [CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT] = "COUNTY_DEPARTMENT",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU] = "ENFORCEMENT_BUREAU",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP] = "TOWNSHIP",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_JUDICIAL_BUREAU] = "JUDICIAL_BUREAU",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY] = "PUBLIC_SECURITY",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE] = "PROCURATORATE",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE] = "LEADING_GROUP_OFFICE",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT] = "INTERNAL_UNIT",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT] = "DISPATCHED_UNIT",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_STAFFING_OFFICE] = "STAFFING_OFFICE",
    [CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_GOVERNMENT] = "COUNTY_GOVERNMENT",
};
#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

int cb_org_kind_parse(const char *name)
{
    for (size_t k = 1; k < NKINDS; k++)
        if (kind_names[k] && strcmp(kind_names[k], name) == 0)
            return (int)k;
    return 0;
}

const char *cb_org_kind_name(int kind)
{
    return kind > 0 && (size_t)kind < NKINDS ? kind_names[kind] : NULL;
}

int cb_check_org_id(const char *id, const char *field, cb_error_t *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > CB_ORG_ID_MAX)
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s must be 1 to %d characters, got %zu", field, CB_ORG_ID_MAX, n);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return cb_error_set(err, CB_ERR_INVALID, field,
                                "%s '%s': only letters, digits, '.', '_' and '-' are allowed",
                                field, id);
    }
    return 0;
}

enum { COL_ID, COL_KIND, COL_NAME, COL_PARENT, COL_DIVISION, COL_CREDIT, NCOLS };
static const char *col_names[NCOLS] = {"org_id", "kind", "name", "parent_id", "division_code",
                                       "credit_code"};

typedef struct parse_ctx {
    int col[NCOLS];         /* field index of each column, -1 when absent */
    bool header_done;
    cb_org_list_t *out;
    size_t cap;
    size_t *lines;          /* line of each org, for the parent check */
    cb_strindex_t ids;      /* org_id → its index in out */
} parse_ctx_t;

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int on_row(void *vctx, const cb_csv_row_t *row, cb_error_t *err)
{
    parse_ctx_t *ctx = vctx;
    if (!ctx->header_done) {
        /* org_id, kind and name are required columns; the rest may be absent. */
        int rc = cb_csv_map_header(row, col_names, NCOLS, COL_NAME + 1, ctx->col, err);
        ctx->header_done = rc == 0;
        return rc;
    }
    const char *v[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        v[c] = cb_csv_field(row, ctx->col[c]);
    int rc;
    cb_error_t e;
#define FAIL_AT(c, ...)                                                                            \
    cb_error_set(err, CB_ERR_INVALID, col_names[c], "line %zu, column %d (%s): %s", row->line,    \
                 ctx->col[c] + 1, col_names[c], __VA_ARGS__)
    if (cb_check_org_id(v[COL_ID], "org_id", &e) != 0)
        return FAIL_AT(COL_ID, e.message);
    size_t seen = cb_strindex_get(&ctx->ids, v[COL_ID]);
    if (seen != CB_STRINDEX_NONE) {
        char m[160];
        snprintf(m, sizeof(m), "org_id '%s' already given on line %zu", v[COL_ID],
                 ctx->lines[seen]);
        return FAIL_AT(COL_ID, m);
    }
    int kind = cb_org_kind_parse(v[COL_KIND]);
    if (kind == 0) {
        char m[200];
        snprintf(m, sizeof(m), "unknown kind '%s'", v[COL_KIND]);
        return FAIL_AT(COL_KIND, m);
    }
    if (v[COL_NAME][0] == '\0')
        return FAIL_AT(COL_NAME, "name is empty");
    bool unit = kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ||
                kind == CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT;
    if (unit && v[COL_PARENT][0] == '\0')
        return ctx->col[COL_PARENT] < 0
                   ? cb_error_set(err, CB_ERR_INVALID, "parent_id",
                                  "line %zu: %s needs a parent_id column", row->line,
                                  v[COL_KIND])
                   : FAIL_AT(COL_PARENT, "internal and dispatched units need a parent_id");
    if (!unit && v[COL_PARENT][0] != '\0')
        return FAIL_AT(COL_PARENT, "only internal and dispatched units have a parent");
    if (v[COL_DIVISION][0] == '\0') {
        if (ctx->col[COL_DIVISION] < 0)
            return cb_error_set(err, CB_ERR_INVALID, "division_code",
                                "line %zu: the header has no 'division_code' column", row->line);
        return FAIL_AT(COL_DIVISION, "division_code is empty");
    }
    rc = kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP
             ? cb_check_township_code(v[COL_DIVISION], "division_code", &e)
             : cb_check_division_code(v[COL_DIVISION], "division_code", &e);
    if (rc != 0)
        return FAIL_AT(COL_DIVISION, e.message);
    if (v[COL_CREDIT][0] != '\0' && cb_check_credit_code(v[COL_CREDIT], "credit_code", &e) != 0)
        return FAIL_AT(COL_CREDIT, e.message);
#undef FAIL_AT

    if (ctx->out->count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 64;
        Casebus__V1__Organisation **o = realloc(ctx->out->orgs, cap * sizeof(*o));
        size_t *l = realloc(ctx->lines, cap * sizeof(*l));
        if (o)
            ctx->out->orgs = o;
        if (l)
            ctx->lines = l;
        if (!o || !l)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        ctx->cap = cap;
    }
    Casebus__V1__Organisation *org = malloc(sizeof(*org));
    if (org == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    casebus__v1__organisation__init(org);
    org->kind = kind;
    org->org_id = dup_or_empty(v[COL_ID]);
    org->name = dup_or_empty(v[COL_NAME]);
    org->parent_id = dup_or_empty(v[COL_PARENT]);
    org->division_code = dup_or_empty(v[COL_DIVISION]);
    org->credit_code = dup_or_empty(v[COL_CREDIT]);
    ctx->lines[ctx->out->count] = row->line;
    ctx->out->orgs[ctx->out->count++] = org;
    int nomem = 0;
    if (!org->org_id || !org->name || !org->parent_id || !org->division_code || !org->credit_code ||
        (cb_strindex_put(&ctx->ids, org->org_id, ctx->out->count - 1, &nomem), nomem))
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    return 0;
}

static void free_org(Casebus__V1__Organisation *o)
{
    free(o->org_id);
    free(o->name);
    free(o->parent_id);
    free(o->division_code);
    free(o->credit_code);
    free(o);
}

void cb_orgs_free(cb_org_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free_org(list->orgs[i]);
    free(list->orgs);
    list->orgs = NULL;
    list->count = 0;
}

int cb_orgs_parse(const char *text, size_t len, cb_org_list_t *out, cb_error_t *err)
{
    parse_ctx_t ctx = {.out = out};
    out->orgs = NULL;
    out->count = 0;
    int rc = cb_csv_parse(text, len, on_row, &ctx, err);
    if (rc == 0 && !ctx.header_done)
        rc = cb_error_set(err, CB_ERR_INVALID, "", "the file is empty (no header row)");
    /* Parents must exist in the file and be organisations in their own right. */
    for (size_t i = 0; rc == 0 && i < out->count; i++) {
        Casebus__V1__Organisation *o = out->orgs[i];
        if (o->parent_id[0] == '\0')
            continue;
        size_t at = cb_strindex_get(&ctx.ids, o->parent_id);
        Casebus__V1__Organisation *parent = at != CB_STRINDEX_NONE ? out->orgs[at] : NULL;
        if (parent == NULL || parent->parent_id[0] != '\0')
            rc = cb_error_set(err, CB_ERR_INVALID, "parent_id",
                              "line %zu, column %d (parent_id): '%s' %s", ctx.lines[i],
                              ctx.col[COL_PARENT] + 1, o->parent_id,
                              parent ? "is itself a unit; a unit's parent must be an organisation"
                                     : "is not an org_id in this file");
    }
    free(ctx.lines);
    cb_strindex_free(&ctx.ids);
    if (rc != 0)
        cb_orgs_free(out);
    return rc;
}

void cb_org_ref_fill(Casebus__V1__OrgRef *r, const Casebus__V1__Organisation *o)
{
    casebus__v1__org_ref__init(r);
    r->org_id = o->org_id;
    r->kind = o->kind;
    r->name = o->name;
    r->division_code = o->division_code;
    r->parent_id = o->parent_id;
}
