/*
 * catalog.c — delegation catalogue CSV (catalog.h).
 */
#include "catalog.h"
#include "cbtime.h"
#include "codes.h"
#include "csv.h"
#include "orgs.h"
#include "strindex.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_CODE, C_NAME, C_DOMAIN, C_HOLDER, C_DEPT, C_TOWNS, C_FROM, C_TO, NCOLS };
static const char *col_names[NCOLS] = {"matter_code", "name",     "domain",         "holder",
                                       "department_id", "townships", "effective_from",
                                       "effective_to"};

typedef struct ctx {
    int col[NCOLS];
    bool header_done;
    cb_matter_list_t *out;
    size_t cap;
    size_t *lines;
    cb_strindex_t codes; /* matter code → its index in out */
} ctx_t;

static int holder_parse(const char *s)
{
    static const char *names[] = {"", "TOWNSHIP_BASIC", "TOWNSHIP_OPTIONAL", "ENFORCEMENT_BUREAU",
                                  "DEPARTMENT"};
    for (int i = 1; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return 0;
}

static bool code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CB_MATTER_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

static void free_matter(Casebus__V1__Matter *m)
{
    if (m == NULL)
        return;
    free(m->code);
    free(m->name);
    free(m->domain);
    free(m->department_id);
    for (size_t i = 0; i < m->n_accepting_townships; i++)
        free(m->accepting_townships[i]);
    free(m->accepting_townships);
    free(m);
}

/* Splits "330723101000;330723102000" into the matter's township list, checking each. */
static int towns(Casebus__V1__Matter *m, const char *text, char *msg, size_t msize)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return CB_ERR_NOMEM;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ';';
    m->accepting_townships = calloc(n, sizeof(char *));
    if (m->accepting_townships == NULL) {
        free(copy);
        return CB_ERR_NOMEM;
    }
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ')
            t++;
        size_t l = strlen(t);
        while (l > 0 && t[l - 1] == ' ')
            t[--l] = '\0';
        if (*t == '\0')
            continue;
        cb_error_t e;
        if (cb_check_township_code(t, "townships", &e) != 0) {
            snprintf(msg, msize, "%s", e.message);
            rc = CB_ERR_INVALID;
            break;
        }
        for (size_t i = 0; i < m->n_accepting_townships; i++)
            if (strcmp(m->accepting_townships[i], t) == 0) {
                snprintf(msg, msize, "township %s is listed twice", t);
                rc = CB_ERR_INVALID;
            }
        if (rc)
            break;
        if ((m->accepting_townships[m->n_accepting_townships] = strdup(t)) == NULL) {
            rc = CB_ERR_NOMEM;
            break;
        }
        m->n_accepting_townships++;
    }
    free(copy);
    return rc;
}

static int on_row(void *vctx, const cb_csv_row_t *row, cb_error_t *err)
{
    ctx_t *ctx = vctx;
    if (!ctx->header_done) {
        int rc = cb_csv_map_header(row, col_names, NCOLS, 0, ctx->col, err);
        static const int required[] = {C_CODE, C_NAME, C_HOLDER};
        for (size_t i = 0; rc == 0 && i < 3; i++)
            if (ctx->col[required[i]] < 0)
                rc = cb_error_set(err, CB_ERR_INVALID, col_names[required[i]],
                                  "line %zu: the header has no '%s' column", row->line,
                                  col_names[required[i]]);
        ctx->header_done = rc == 0;
        return rc;
    }
    const char *v[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        v[c] = cb_csv_field(row, ctx->col[c]);
    char msg[300] = "";
    int bad = -1;
    int holder = holder_parse(v[C_HOLDER]);
    int64_t from = 0, to = 0;
    cb_error_t e;
    if (!code_ok(v[C_CODE])) {
        bad = C_CODE;
        snprintf(msg, sizeof(msg), "'%s' is not a matter code (1-%d of A-Z a-z 0-9 . - _)",
                 v[C_CODE], CB_MATTER_CODE_MAX);
    } else if (v[C_NAME][0] == '\0') {
        bad = C_NAME;
        snprintf(msg, sizeof(msg), "name is empty");
    } else if (holder == 0) {
        bad = C_HOLDER;
        snprintf(msg, sizeof(msg),
                 "unknown holder '%s' (TOWNSHIP_BASIC, TOWNSHIP_OPTIONAL, ENFORCEMENT_BUREAU, "
                 "DEPARTMENT)",
                 v[C_HOLDER]);
    } else if (holder == CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_DEPARTMENT &&
               v[C_DEPT][0] == '\0') {
        bad = C_DEPT;
        snprintf(msg, sizeof(msg), "a DEPARTMENT matter needs department_id");
    } else if (v[C_DEPT][0] && cb_check_org_id(v[C_DEPT], "department_id", &e) != 0) {
        bad = C_DEPT;
        snprintf(msg, sizeof(msg), "%s", e.message);
    } else if ((holder == CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_BASIC ||
                holder == CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_ENFORCEMENT_BUREAU) &&
               v[C_DEPT][0]) {
        bad = C_DEPT;
        snprintf(msg, sizeof(msg), "department_id is only for DEPARTMENT and TOWNSHIP_OPTIONAL");
    } else if (holder != CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_OPTIONAL &&
               v[C_TOWNS][0]) {
        bad = C_TOWNS;
        snprintf(msg, sizeof(msg), "townships are listed only for TOWNSHIP_OPTIONAL matters");
    } else if (v[C_FROM][0] && cb_date_parse(v[C_FROM], &from, &e) != 0) {
        bad = C_FROM;
        snprintf(msg, sizeof(msg), "%s", e.message);
    } else if (v[C_TO][0] && cb_date_parse(v[C_TO], &to, &e) != 0) {
        bad = C_TO;
        snprintf(msg, sizeof(msg), "%s", e.message);
    } else if (v[C_FROM][0] && v[C_TO][0] && to < from) {
        bad = C_TO;
        snprintf(msg, sizeof(msg), "effective_to is before effective_from");
    }
    size_t seen = bad < 0 ? cb_strindex_get(&ctx->codes, v[C_CODE]) : CB_STRINDEX_NONE;
    if (seen != CB_STRINDEX_NONE) {
        bad = C_CODE;
        snprintf(msg, sizeof(msg), "matter %s already given on line %zu", v[C_CODE],
                 ctx->lines[seen]);
    }
    if (bad >= 0)
        return cb_error_set(err, CB_ERR_INVALID, col_names[bad], "line %zu, column %d (%s): %s",
                            row->line, ctx->col[bad] + 1, col_names[bad], msg);

    if (ctx->out->count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 64;
        Casebus__V1__Matter **m = realloc(ctx->out->matters, cap * sizeof(*m));
        if (m)
            ctx->out->matters = m;
        size_t *l = realloc(ctx->lines, cap * sizeof(*l));
        if (l)
            ctx->lines = l;
        if (!m || !l)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        ctx->cap = cap;
    }
    Casebus__V1__Matter *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    casebus__v1__matter__init(m);
    m->code = strdup(v[C_CODE]);
    m->name = strdup(v[C_NAME]);
    m->domain = strdup(v[C_DOMAIN]);
    m->department_id = strdup(v[C_DEPT]);
    m->holder = holder;
    m->effective_from_ms = v[C_FROM][0] ? cb_cst_day_start_ms(from) : 0;
    m->effective_to_ms = v[C_TO][0] ? cb_cst_day_start_ms(to + 1) : 0; /* end of that day */
    ctx->lines[ctx->out->count] = row->line;
    ctx->out->matters[ctx->out->count++] = m;
    int nomem = 0;
    if (!m->code || !m->name || !m->domain || !m->department_id ||
        (cb_strindex_put(&ctx->codes, m->code, ctx->out->count - 1, &nomem), nomem))
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = v[C_TOWNS][0] ? towns(m, v[C_TOWNS], msg, sizeof(msg)) : 0;
    if (rc == CB_ERR_INVALID)
        return cb_error_set(err, CB_ERR_INVALID, "townships", "line %zu, column %d (townships): %s",
                            row->line, ctx->col[C_TOWNS] + 1, msg);
    if (rc != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    if (holder == CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_OPTIONAL &&
        m->n_accepting_townships == 0)
        return cb_error_set(err, CB_ERR_INVALID, "townships",
                            "line %zu, column %d (townships): a TOWNSHIP_OPTIONAL matter lists "
                            "the townships that accepted it",
                            row->line, ctx->col[C_TOWNS] >= 0 ? ctx->col[C_TOWNS] + 1 : 0);
    return 0;
}

void cb_catalog_free(cb_matter_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free_matter(list->matters[i]);
    free(list->matters);
    free(list->lines);
    list->matters = NULL;
    list->lines = NULL;
    list->count = 0;
}

int cb_catalog_parse(const char *text, size_t len, cb_matter_list_t *out, cb_error_t *err)
{
    ctx_t ctx = {.out = out};
    out->matters = NULL;
    out->lines = NULL;
    out->count = 0;
    int rc = cb_csv_parse(text, len, on_row, &ctx, err);
    if (rc == 0 && !ctx.header_done)
        rc = cb_error_set(err, CB_ERR_INVALID, "", "the file is empty (no header row)");
    out->lines = ctx.lines;
    cb_strindex_free(&ctx.codes);
    if (rc != 0)
        cb_catalog_free(out);
    return rc;
}

int cb_matter_in_force(const Casebus__V1__Matter *m, int64_t t)
{
    return (m->effective_from_ms == 0 || t >= m->effective_from_ms) &&
           (m->effective_to_ms == 0 || t < m->effective_to_ms);
}

int cb_matter_accepted_by(const Casebus__V1__Matter *m, const char *township_code)
{
    for (size_t i = 0; i < m->n_accepting_townships; i++)
        if (strcmp(m->accepting_townships[i], township_code) == 0)
            return 1;
    return 0;
}
