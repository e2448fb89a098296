/*
 * lists.c — intake's case and obligation lists (common/caselist.h): the row
 * each case view and each open limit is, kept as the views and the upstream
 * events change, and the answers of GET /v1/cases and GET /v1/obligations,
 * scoped to the caller's organisations (operators, the command platform and the
 * leading-group office see every case, as they may read every case).
 */
#include "intake.h"
#include "pbjson.h"
#include "jsonw.h"
#include "cbtime.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#define MAX_PARAMS 16

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t time_of(json_t *o, const char *key)
{
    int64_t ms = 0;
    cb_error_t e;
    const char *s = json_string_value(json_object_get(o, key));
    if (s && cb_time_parse(s, &ms, &e) != 0)
        ms = 0;
    return ms;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The first bytes of text, cut at a UTF-8 character boundary. */
static void excerpt(char *dst, size_t size, const char *text)
{
    size_t n = strlen(text);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, text, n);
    dst[n] = '\0';
}

static void add_org(cb_case_row_t *row, const char *org)
{
    if (org == NULL || *org == '\0' || row->norgs == CB_LIST_MAX_ORGS)
        return;
    for (size_t i = 0; i < row->norgs; i++)
        if (strcmp(row->orgs[i], org) == 0)
            return;
    copy(row->orgs[row->norgs++], CB_LIST_ORG_MAX, org);
}

void intake_case_row(json_t *view, const char *case_id, cb_case_row_t *row)
{
    memset(row, 0, sizeof(*row));
    copy(row->case_id, sizeof(row->case_id), case_id);
    row->reported_ms = time_of(view, "reported_at");
    row->discovered_ms = time_of(view, "discovered_at");
    copy(row->township, sizeof(row->township), str_of(view, "township_code"));
    copy(row->township_name, sizeof(row->township_name), str_of(view, "township_name"));
    copy(row->matter, sizeof(row->matter), str_of(view, "matter_code"));
    copy(row->matter_name, sizeof(row->matter_name), str_of(view, "matter_name"));
    copy(row->state, sizeof(row->state), str_of(view, "state"));
    copy(row->finder, sizeof(row->finder),
         str_of(json_object_get(view, "discovered_by"), "org_id"));
    copy(row->competent, sizeof(row->competent),
         str_of(json_object_get(view, "competent"), "org_id"));
    copy(row->holder, sizeof(row->holder), str_of(json_object_get(view, "holder"), "org_id"));
    if (row->holder[0] == '\0')
        copy(row->holder, sizeof(row->holder), row->finder);
    excerpt(row->description, sizeof(row->description), str_of(view, "description"));
    add_org(row, row->finder);
    add_org(row, row->competent);
    add_org(row, row->holder);
    const char *id;
    json_t *t, *o;
    json_object_foreach(json_object_get(view, "transfers"), id, t)
    {
        add_org(row, str_of(t, "sender"));
        add_org(row, str_of(t, "receiver"));
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(t, "helpers"), i, h) add_org(row, json_string_value(h));
    }
    size_t i;
    json_array_foreach(json_object_get(view, "parties"), i, o) add_org(row, json_string_value(o));
    json_object_foreach(json_object_get(view, "obligations"), id, o)
    {
        if (strcmp(str_of(o, "state"), "open") != 0)
            continue;
        row->open++;
        int level = cb_level_parse(str_of(o, "level"));
        if (level > row->level)
            row->level = (uint8_t)level;
        int64_t due = time_of(o, "due_at");
        if (due && (row->next_due_ms == 0 || due < row->next_due_ms))
            row->next_due_ms = due;
    }
    row->overdue = row->level >= CB_LEVEL_RED;
}

int intake_list_case(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                     cb_error_t *err)
{
    cb_case_row_t row;
    intake_case_row(view, case_id, &row);
    st->changes++;
    return cb_lists_case_put(&st->lists, txn, &row, err);
}

int intake_list_obligation(intake_state_t *st, MDB_txn *txn, const Casebus__V1__Envelope *env,
                           cb_error_t *err)
{
    const Casebus__V1__Obligation *o = NULL;
    int level = -1;
    bool end = false, paused = false, resumed = false;
    const char *supervision = NULL;
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED: level = CB_LEVEL_NONE; break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET: end = true; break;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING:
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED:
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED:
        level = cb_alert_level(env);
        if (level == CB_LEVEL_ESCALATED)
            supervision = env->escalated->supervision_id;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED: {
        int change = env->obligation_changed->change;
        end = change == CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED;
        paused = change == CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_PAUSED;
        resumed = change == CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_RESUMED ||
                  change == CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_REOPENED;
        break;
    }
    default: return 0;
    }
    o = cb_event_obligation(env);
    if (o == NULL || o->obligation_id == NULL || *o->obligation_id == '\0')
        return 0;
    st->changes++;
    if (end)
        return cb_lists_ob_del(&st->lists, txn, o->obligation_id, err);
    cb_ob_row_t row;
    int rc = cb_lists_ob_get(&st->lists, txn, o->obligation_id, &row, err);
    if (rc == CB_ERR_NOT_FOUND) {
        if (env->body_case != CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED && !resumed)
            return 0; /* ended already, or before the lists existed */
        memset(&row, 0, sizeof(row));
    } else if (rc != 0) {
        return rc;
    }
    copy(row.obligation_id, sizeof(row.obligation_id), o->obligation_id);
    copy(row.case_id, sizeof(row.case_id), o->case_ ? o->case_->case_id : env->case_id);
    copy(row.rule_id, sizeof(row.rule_id), o->rule_id);
    excerpt(row.title, sizeof(row.title), o->rule_title ? o->rule_title : "");
    if (o->responsible) {
        copy(row.responsible, sizeof(row.responsible), o->responsible->org_id);
        copy(row.responsible_name, sizeof(row.responsible_name), o->responsible->name);
    }
    if (o->case_)
        copy(row.township, sizeof(row.township), o->case_->township_code);
    if (o->due_at_ms)
        row.due_ms = o->due_at_ms;
    if (level > row.level || env->body_case == CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED)
        row.level = (uint8_t)(level < 0 ? 0 : level);
    if (env->body_case == CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED &&
        env->obligation_changed->change ==
            CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_EXTENDED)
        row.level = CB_LEVEL_NONE; /* more time: the alerts start again */
    if (paused)
        row.paused = true;
    if (resumed)
        row.paused = false;
    if (supervision && *supervision)
        copy(row.supervision_id, sizeof(row.supervision_id), supervision);
    return cb_lists_ob_put(&st->lists, txn, &row, err);
}

/* ---- the HTTP answers ---- */

typedef struct param {
    char key[24];
    char value[200];
} param_t;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* "a=1&b=%E5%8C%97" into params (percent-decoded, + as space). */
static int parse_query(const char *q, size_t len, param_t *p, size_t *n, cb_error_t *err)
{
    *n = 0;
    size_t i = 0;
    while (i < len) {
        if (*n == MAX_PARAMS)
            return cb_error_set(err, CB_ERR_INVALID, "", "more than %d query parameters",
                                MAX_PARAMS);
        param_t *x = &p[(*n)++];
        char *dst = x->key;
        size_t cap = sizeof(x->key), k = 0;
        bool in_value = false;
        for (; i < len && q[i] != '&'; i++) {
            char c = q[i];
            if (c == '=' && !in_value) {
                dst[k] = '\0';
                dst = x->value;
                cap = sizeof(x->value);
                k = 0;
                in_value = true;
                continue;
            }
            if (c == '+')
                c = ' ';
            else if (c == '%') {
                int hi = i + 2 < len ? hexval(q[i + 1]) : -1,
                    lo = i + 2 < len ? hexval(q[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return cb_error_set(err, CB_ERR_INVALID, "",
                                        "a query parameter has a bad "
                                        "percent escape");
                c = (char)(hi * 16 + lo);
                i += 2;
            }
            if (k + 1 >= cap)
                return cb_error_set(err, CB_ERR_INVALID, in_value ? x->key : "",
                                    "a query parameter is too long");
            dst[k++] = c;
        }
        dst[k] = '\0';
        if (!in_value)
            x->value[0] = '\0';
        i++; /* the & */
        if (x->key[0] == '\0')
            (*n)--;
    }
    return 0;
}

static void reply_error(intake_reply_t *reply, int status, const char *code, const char *field,
                        const char *msg)
{
    intake_reply_error(reply, status, code, field, msg);
}

/* Who the caller may see: NULL (everyone) or its organisations. */
static bool scope_of(intake_state_t *st, MDB_txn *txn, const intake_actor_t *actor,
                     const char **scope, size_t *n)
{
    *n = 0;
    if (actor->operator_)
        return false;
    for (size_t i = 0; i < actor->norgs && i < CB_LIST_MAX_ORGS; i++) {
        Casebus__V1__Organisation *o = intake_org_get(st, txn, actor->orgs[i]);
        bool all = o && (o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU ||
                         o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE);
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
        if (all)
            return false; /* the command platform and the office supervise every case */
        scope[(*n)++] = actor->orgs[i];
    }
    return true;
}

static bool scope_has(const char *const *scope, size_t n, const char *org)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(scope[i], org) == 0)
            return true;
    return false;
}

static json_t *org_json(const char *id)
{
    return id && *id ? json_string(id) : json_null();
}

json_t *intake_json_time(int64_t ms)
{
    char buf[40];
    if (ms == 0)
        return json_null();
    cb_time_format_cst(ms, buf, sizeof(buf));
    return json_string(buf);
}

int intake_rows_add(intake_rows_t *rows, json_t *item)
{
    return item && json_array_append_new(rows->items, item) == 0 ? 0 : CB_ERR_NOMEM;
}

static int add_case(void *ctx, const cb_case_row_t *r)
{
    intake_rows_t *c = ctx;
    json_t *item = json_pack(
        "{s:s,s:o,s:o,s:{s:s,s:s},s:{s:s,s:s},s:s,s:s,s:b,s:i,s:o,s:o,s:o,s:o,s:s}", "case_id",
        r->case_id, "reported_at", intake_json_time(r->reported_ms), "discovered_at",
        intake_json_time(r->discovered_ms), "township", "code", r->township, "name",
        r->township_name, "matter", "code", r->matter, "name", r->matter_name, "state", r->state,
        "level", cb_level_name(r->level), "overdue", r->overdue, "open_limits", (int)r->open,
        "next_due", intake_json_time(r->next_due_ms), "finder", org_json(r->finder), "competent",
        org_json(r->competent), "holder", org_json(r->holder), "description", r->description);
    return intake_rows_add(c, item);
}

static int add_obligation(void *ctx, const cb_ob_row_t *r)
{
    intake_rows_t *c = ctx;
    int64_t remaining = r->due_ms - c->now;
    json_t *item = json_pack(
        "{s:s,s:s,s:s,s:s,s:{s:s,s:s},s:s,s:o,s:I,s:b,s:s,s:b,s:o}", "obligation_id",
        r->obligation_id, "case_id", r->case_id, "rule_id", r->rule_id, "title", r->title,
        "responsible", "org_id", r->responsible, "name", r->responsible_name, "township",
        r->township, "due_at", intake_json_time(r->due_ms), "remaining_ms", (json_int_t)remaining,
        "overdue", remaining < 0, "level", cb_level_name(r->level), "paused", r->paused,
        "supervision_id", r->supervision_id[0] ? json_string(r->supervision_id) : json_null());
    return intake_rows_add(c, item);
}

/* The page (takes items), or the refusal when the list could not be read. */
static void answer(intake_reply_t *reply, int rc, const cb_error_t *e, const char *key,
                   json_t *items, const char *next, uint64_t t0)
{
    if (rc != 0) {
        json_decref(items);
        if (rc == CB_ERR_INVALID)
            reply_error(reply, 400, "invalid_field", e->field, e->message);
        else
            reply_error(reply, 503, "unavailable", "",
                        rc == CB_ERR_NOMEM ? "out of memory" : e->message);
        return;
    }
    double ms = (double)(cb_mono_ns() - t0) / 1e6;
    json_t *doc =
        json_pack("{s:o,s:i,s:o,s:f}", key, items, "count", (int)json_array_size(items),
                  "next_cursor", next[0] ? json_string(next) : json_null(), "took_ms", ms);
    reply->status = doc ? 200 : 500;
    reply->body = doc ? cb_jsonw_dumps(doc) : NULL;
    json_decref(doc);
    if (reply->body == NULL)
        reply_error(reply, 500, "internal", "", "out of memory");
}

static bool org_param(const char *key, const char *value, const char *const *scope, size_t nscope,
                      bool scoped, intake_reply_t *reply)
{
    char msg[300];
    cb_error_t e;
    if (cb_check_org_id(value, key, &e) != 0) {
        reply_error(reply, 400, "invalid_field", key, e.message);
        return false;
    }
    if (scoped && !scope_has(scope, nscope, value)) {
        snprintf(msg, sizeof(msg), "%s: this token does not act for organisation '%s'", key, value);
        reply_error(reply, 403, "forbidden", key, msg);
        return false;
    }
    return true;
}

/* What both lists start with: the parameters and the caller's scope. */
typedef struct list_req {
    param_t p[MAX_PARAMS];
    size_t np;
    const char *scope[CB_LIST_MAX_ORGS];
    size_t nscope;
    bool scoped;
    uint64_t t0;
} list_req_t;

static bool list_begin(intake_t *in, MDB_txn *txn, const intake_actor_t *actor, const char *query,
                       size_t qlen, list_req_t *r, intake_reply_t *reply)
{
    cb_error_t e;
    memset(reply, 0, sizeof(*reply));
    r->t0 = cb_mono_ns();
    if (parse_query(query, qlen, r->p, &r->np, &e) != 0) {
        reply_error(reply, 400, "invalid_field", e.field, e.message);
        return false;
    }
    r->scoped = scope_of(&in->st, txn, actor, r->scope, &r->nscope);
    return true;
}

/* What a list parameter is, and where its value goes in the list's query. */
typedef enum param_kind {
    P_TEXT,   /* any text */
    P_ORG,    /* an organisation id */
    P_WORD,   /* one of words */
    P_BOOL,   /* true/false, 1/0: an int 1 or 0 */
    P_FROM,   /* a date or instant: its first millisecond */
    P_TO,     /* a date or instant: the millisecond after it */
    P_LEVEL,  /* none, yellow, red or escalation: an int CB_LEVEL_* */
    P_CURSOR, /* a page's cursor */
    P_LIMIT,  /* 1..CB_LIST_LIMIT_MAX: an unsigned */
} param_kind_t;

typedef struct param_spec {
    const char *name;
    param_kind_t kind;
    size_t off;                /* of the field in the query */
    bool scoped;               /* P_ORG: one of the caller's organisations */
    const char *const *words;  /* P_WORD */
} param_spec_t;

/* "a, b or c" */
static void join_words(char *out, size_t size, const char *const *w, const char *last_sep)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; w[i] && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s",
                                 i == 0 ? "" : w[i + 1] ? ", " : last_sep, w[i]);
}

static bool take_param(const param_spec_t *sp, void *q, const char *v, const list_req_t *r,
                       intake_reply_t *reply)
{
    char msg[400], words[300];
    void *at = (char *)q + sp->off;
    const char *k = sp->name;
    long n;
    char *end;
    switch (sp->kind) {
    case P_ORG:
        if (!org_param(k, v, r->scope, r->nscope, r->scoped && sp->scoped, reply))
            return false;
        /* fall through */
    case P_TEXT:
    case P_CURSOR: *(const char **)at = v; return true;
    case P_WORD:
        for (size_t i = 0; sp->words[i]; i++)
            if (strcmp(sp->words[i], v) == 0) {
                *(const char **)at = v;
                return true;
            }
        join_words(words, sizeof(words), sp->words, " or ");
        snprintf(msg, sizeof(msg), "%s: %s", k, words);
        break;
    case P_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "false") == 0 ||
            strcmp(v, "0") == 0) {
            *(int *)at = v[0] == 't' || v[0] == '1';
            return true;
        }
        snprintf(msg, sizeof(msg), "%s: true or false", k);
        break;
    case P_FROM:
    case P_TO:
        if (cb_bound_parse(v, sp->kind == P_TO, (int64_t *)at))
            return true;
        snprintf(msg, sizeof(msg),
                 "%s: want a date (2026-12-03, China time) or an RFC 3339 instant", k);
        break;
    case P_LEVEL:
        if ((*(int *)at = cb_level_parse(v)) >= 0)
            return true;
        snprintf(msg, sizeof(msg), "%s: none, yellow, red or escalation", k);
        break;
    case P_LIMIT:
        n = strtol(v, &end, 10);
        if (*v != '\0' && *end == '\0' && n >= 1 && n <= CB_LIST_LIMIT_MAX) {
            *(unsigned *)at = (unsigned)n;
            return true;
        }
        snprintf(msg, sizeof(msg), "%s: a whole number from 1 to %d", k, CB_LIST_LIMIT_MAX);
        break;
    }
    reply_error(reply, 400, "invalid_field", k, msg);
    return false;
}

/* Takes every parameter of r into q by the list's table; an unknown one is
 * refused, naming the list's own. */
static bool take_params(const param_spec_t *specs, size_t nspecs, void *q, const list_req_t *r,
                        intake_reply_t *reply)
{
    for (size_t i = 0; i < r->np; i++) {
        const char *k = r->p[i].key;
        size_t s = 0;
        while (s < nspecs && strcmp(specs[s].name, k) != 0)
            s++;
        if (s < nspecs) {
            if (!take_param(&specs[s], q, r->p[i].value, r, reply))
                return false;
            continue;
        }
        const char *names[24];
        size_t n = 0;
        for (s = 0; s < nspecs && n + 1 < sizeof(names) / sizeof(names[0]); s++)
            names[n++] = specs[s].name;
        names[n] = NULL;
        char allowed[300], msg[400];
        join_words(allowed, sizeof(allowed), names, ", ");
        snprintf(msg, sizeof(msg), "%s: not a parameter of this list (%s)", k, allowed);
        reply_error(reply, 400, "unknown_field", k, msg);
        return false;
    }
    return true;
}

static const char *const case_states[] = {"reported",        "transfer_required",
                                          "transfer_routed", "transfer_in_progress",
                                          "with_competent",  "manual_dispatch",
                                          "return_review",   "cancelled",
                                          NULL};

#define CQ(f) offsetof(cb_case_query_t, f)
static const param_spec_t case_params[] = {
    {"township", P_TEXT, CQ(township), false, NULL},
    {"org", P_ORG, CQ(org), true, NULL},
    {"holder", P_ORG, CQ(holder), false, NULL},
    {"state", P_WORD, CQ(state), false, case_states},
    {"level", P_LEVEL, CQ(level), false, NULL},
    {"overdue", P_BOOL, CQ(overdue), false, NULL},
    {"matter", P_TEXT, CQ(matter), false, NULL},
    {"from", P_FROM, CQ(from_ms), false, NULL},
    {"to", P_TO, CQ(to_ms), false, NULL},
    {"cursor", P_CURSOR, CQ(cursor), false, NULL},
    {"limit", P_LIMIT, CQ(limit), false, NULL},
};

void intake_list_cases(intake_t *in, MDB_txn *txn, const intake_actor_t *actor, const char *query,
                       size_t qlen, intake_reply_t *reply)
{
    list_req_t r;
    if (!list_begin(in, txn, actor, query, qlen, &r, reply))
        return;
    cb_case_query_t q = {.level = -1, .overdue = -1, .limit = 50};
    if (r.scoped) {
        q.scope = r.scope;
        q.nscope = r.nscope;
    }
    if (!take_params(case_params, sizeof(case_params) / sizeof(case_params[0]), &q, &r, reply))
        return;
    cb_error_t e;
    intake_rows_t c = {.items = json_array(), .now = cb_now_ms()};
    char next[CB_LIST_CURSOR_MAX];
    int rc =
        c.items ? cb_lists_cases(&in->st.lists, txn, &q, add_case, &c, next, &e) : CB_ERR_NOMEM;
    answer(reply, rc, &e, "cases", c.items, next, r.t0);
}

/* open (everything running), overdue (past due), due_soon (not yet due), paused */
static const char *const ob_states[] = {"open", "overdue", "due_soon", "paused", NULL};

typedef struct ob_params {
    cb_ob_query_t q;
    const char *state;
} ob_params_t;

#define OQ(f) offsetof(ob_params_t, q.f)
static const param_spec_t ob_params[] = {
    {"state", P_WORD, offsetof(ob_params_t, state), false, ob_states},
    {"level", P_LEVEL, OQ(level), false, NULL},
    {"responsible", P_ORG, OQ(responsible), true, NULL},
    {"township", P_TEXT, OQ(township), false, NULL},
    {"rule", P_TEXT, OQ(rule), false, NULL},
    {"case", P_TEXT, OQ(case_id), false, NULL},
    {"due_before", P_TO, OQ(due_to_ms), false, NULL},
    {"cursor", P_CURSOR, OQ(cursor), false, NULL},
    {"limit", P_LIMIT, OQ(limit), false, NULL},
};

void intake_list_obligations(intake_t *in, MDB_txn *txn, const intake_actor_t *actor,
                             const char *query, size_t qlen, intake_reply_t *reply)
{
    list_req_t r;
    if (!list_begin(in, txn, actor, query, qlen, &r, reply))
        return;
    int64_t now = cb_now_ms();
    ob_params_t o = {.q = {.level = -1, .limit = 50}, .state = "open"};
    if (r.scoped) {
        o.q.scope = r.scope;
        o.q.nscope = r.nscope;
    }
    if (!take_params(ob_params, sizeof(ob_params) / sizeof(ob_params[0]), &o, &r, reply))
        return;
    if (strcmp(o.state, "overdue") == 0 && (o.q.due_to_ms == 0 || o.q.due_to_ms > now))
        o.q.due_to_ms = now;
    else if (strcmp(o.state, "due_soon") == 0)
        o.q.due_from_ms = now;
    else if (strcmp(o.state, "paused") == 0)
        o.q.include_paused = true;
    cb_error_t e;
    intake_rows_t c = {.items = json_array(), .now = now};
    char next[CB_LIST_CURSOR_MAX];
    int rc = c.items ? cb_lists_obligations(&in->st.lists, txn, &o.q, add_obligation, &c, next, &e)
                     : CB_ERR_NOMEM;
    answer(reply, rc, &e, "obligations", c.items, next, r.t0);
}

/* A case's row and its open limits' rows, from its view alone. */
static int rebuild_case(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                        cb_error_t *err)
{
    int rc = intake_list_case(st, txn, case_id, view, err);
    const char *id;
    json_t *o;
    json_object_foreach(json_object_get(view, "obligations"), id, o)
    {
        const char *state = str_of(o, "state");
        if (rc != 0 || (strcmp(state, "open") != 0 && strcmp(state, "paused") != 0))
            continue;
        cb_ob_row_t row;
        memset(&row, 0, sizeof(row));
        copy(row.obligation_id, sizeof(row.obligation_id), id);
        copy(row.case_id, sizeof(row.case_id), case_id);
        copy(row.rule_id, sizeof(row.rule_id), str_of(o, "rule_id"));
        excerpt(row.title, sizeof(row.title), str_of(o, "title"));
        copy(row.responsible, sizeof(row.responsible),
             str_of(json_object_get(o, "responsible"), "org_id"));
        copy(row.responsible_name, sizeof(row.responsible_name),
             str_of(json_object_get(o, "responsible"), "name"));
        copy(row.township, sizeof(row.township), str_of(view, "township_code"));
        copy(row.supervision_id, sizeof(row.supervision_id),
             str_of(json_object_get(o, "supervision"), "id"));
        row.due_ms = time_of(o, "due_at");
        int level = cb_level_parse(str_of(o, "level"));
        row.level = (uint8_t)(level < 0 ? 0 : level);
        row.paused = strcmp(state, "paused") == 0;
        rc = cb_lists_ob_put(&st->lists, txn, &row, err);
    }
    return rc;
}

/* Builds the lists from the case views when this store has views and no lists
 * (a store made by an older intake). One transaction. */
int intake_lists_rebuild(intake_t *in, cb_error_t *err)
{
    MDB_txn *txn;
    int rc = cb_store_begin(in->st.store, true, &txn, err);
    if (rc != 0)
        return rc;
    size_t n = 0;
    if (!intake_lists_empty(&in->st, txn)) {
        cb_store_abort(&txn);
        return 0;
    }
    rc = intake_case_each(&in->st, txn, rebuild_case, &n, err);
    if (rc == 0 && n > 0)
        log_info("lists_rebuilt cases=%zu", n);
    if (rc == 0)
        return cb_store_commit(&txn, err);
    cb_store_abort(&txn);
    return rc;
}
