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
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING: level = CB_LEVEL_YELLOW; break;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED: level = CB_LEVEL_RED; break;
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED:
        level = CB_LEVEL_ESCALATED;
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
    /* the obligation the event is about: its body's "obligation" */
    ProtobufCMessage *ob = cb_pb_message_named(
        cb_pb_message_field(&env->base, (unsigned)env->body_case), "obligation");
    o = ob && ob->descriptor == &casebus__v1__obligation__descriptor
            ? (const Casebus__V1__Obligation *)ob
            : NULL;
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

static bool parse_instant(const char *key, const char *value, bool end_of_day, int64_t *out,
                          intake_reply_t *reply)
{
    if (cb_bound_parse(value, end_of_day, out))
        return true;
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: want a date (2026-12-03, China time) or an RFC 3339 instant",
             key);
    reply_error(reply, 400, "invalid_field", key, msg);
    return false;
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

typedef struct collect {
    json_t *items;
    int64_t now;
} collect_t;

static int add_case(void *ctx, const cb_case_row_t *r)
{
    collect_t *c = ctx;
    json_t *item = json_pack(
        "{s:s,s:o,s:o,s:{s:s,s:s},s:{s:s,s:s},s:s,s:s,s:b,s:i,s:o,s:o,s:o,s:o,s:s}", "case_id",
        r->case_id, "reported_at", intake_json_time(r->reported_ms), "discovered_at",
        intake_json_time(r->discovered_ms), "township", "code", r->township, "name",
        r->township_name, "matter", "code", r->matter, "name", r->matter_name, "state", r->state,
        "level", cb_level_name(r->level), "overdue", r->overdue, "open_limits", (int)r->open,
        "next_due", intake_json_time(r->next_due_ms), "finder", org_json(r->finder), "competent",
        org_json(r->competent), "holder", org_json(r->holder), "description", r->description);
    return item && json_array_append_new(c->items, item) == 0 ? 0 : CB_ERR_NOMEM;
}

static int add_obligation(void *ctx, const cb_ob_row_t *r)
{
    collect_t *c = ctx;
    int64_t remaining = r->due_ms - c->now;
    json_t *item = json_pack(
        "{s:s,s:s,s:s,s:s,s:{s:s,s:s},s:s,s:o,s:I,s:b,s:s,s:b,s:o}", "obligation_id",
        r->obligation_id, "case_id", r->case_id, "rule_id", r->rule_id, "title", r->title,
        "responsible", "org_id", r->responsible, "name", r->responsible_name, "township",
        r->township, "due_at", intake_json_time(r->due_ms), "remaining_ms", (json_int_t)remaining,
        "overdue", remaining < 0, "level", cb_level_name(r->level), "paused", r->paused,
        "supervision_id", r->supervision_id[0] ? json_string(r->supervision_id) : json_null());
    return item && json_array_append_new(c->items, item) == 0 ? 0 : CB_ERR_NOMEM;
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

static bool limit_of(const char *value, unsigned *limit, intake_reply_t *reply)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 1 || v > CB_LIST_LIMIT_MAX) {
        reply_error(reply, 400, "invalid_field", "limit", "limit: a whole number from 1 to 200");
        return false;
    }
    *limit = (unsigned)v;
    return true;
}

/* cursor= and limit=: 1 taken, 0 not one of them, -1 refused (in reply). */
static bool level_of(const char *value, int *out, intake_reply_t *reply)
{
    if ((*out = cb_level_parse(value)) < 0) {
        reply_error(reply, 400, "invalid_field", "level", "level: none, yellow, red or escalation");
        return false;
    }
    return true;
}

/* The parameters both lists take: level, cursor and limit. 1: k was one of
 * them, 0: it was not, -1: refused (in reply). */
/* The parameters both lists share (level, cursor, limit); anything else is
 * not a parameter of the list, whose own are allowed. False with the refusal
 * in reply. */
static bool page_param(const char *k, const char *v, int *level, const char **cursor,
                       unsigned *limit, const char *allowed, intake_reply_t *reply)
{
    if (strcmp(k, "cursor") == 0) {
        *cursor = v;
        return true;
    }
    if (strcmp(k, "limit") == 0)
        return limit_of(v, limit, reply);
    if (strcmp(k, "level") == 0)
        return level_of(v, level, reply);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: not a parameter of this list (%s)", k, allowed);
    reply_error(reply, 400, "unknown_field", k, msg);
    return false;
}

static bool bool_of(const char *key, const char *value, int *out, intake_reply_t *reply)
{
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
        *out = 1;
    else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
        *out = 0;
    else {
        char msg[100];
        snprintf(msg, sizeof(msg), "%s: true or false", key);
        reply_error(reply, 400, "invalid_field", key, msg);
        return false;
    }
    return true;
}

static const char *const case_states[] = {"reported",
                                          "transfer_required",
                                          "transfer_routed",
                                          "transfer_in_progress",
                                          "with_competent",
                                          "manual_dispatch",
                                          "return_review",
                                          "cancelled",
                                          NULL};

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

void intake_list_cases(intake_t *in, MDB_txn *txn, const intake_actor_t *actor, const char *query,
                       size_t qlen, intake_reply_t *reply)
{
    list_req_t r;
    if (!list_begin(in, txn, actor, query, qlen, &r, reply))
        return;
    param_t *p = r.p;
    size_t np = r.np, nscope = r.nscope;
    const char *const *scope = r.scope;
    bool scoped = r.scoped;
    cb_error_t e;
    cb_case_query_t q = {.level = -1, .overdue = -1, .limit = 50};
    if (scoped) {
        q.scope = scope;
        q.nscope = nscope;
    }
    for (size_t i = 0; i < np; i++) {
        const char *k = p[i].key, *v = p[i].value;
        if (strcmp(k, "township") == 0)
            q.township = v;
        else if (strcmp(k, "matter") == 0)
            q.matter = v;
        else if (strcmp(k, "org") == 0 || strcmp(k, "holder") == 0) {
            if (!org_param(k, v, scope, nscope, scoped && k[0] == 'o', reply))
                return;
            if (k[0] == 'o')
                q.org = v;
            else
                q.holder = v;
        } else if (strcmp(k, "state") == 0) {
            size_t s = 0;
            while (case_states[s] && strcmp(case_states[s], v) != 0)
                s++;
            if (case_states[s] == NULL) {
                reply_error(reply, 400, "invalid_field", "state",
                            "state: reported, transfer_required, transfer_routed, "
                            "transfer_in_progress, with_competent, manual_dispatch, "
                            "return_review or cancelled");
                return;
            }
            q.state = v;
        } else if (strcmp(k, "overdue") == 0) {
            if (!bool_of(k, v, &q.overdue, reply))
                return;
        } else if (strcmp(k, "from") == 0) {
            if (!parse_instant(k, v, false, &q.from_ms, reply))
                return;
        } else if (strcmp(k, "to") == 0) {
            if (!parse_instant(k, v, true, &q.to_ms, reply))
                return;
        } else if (!page_param(k, v, &q.level, &q.cursor, &q.limit,
                               "township, org, holder, state, level, overdue, matter, from, "
                               "to, cursor, limit",
                               reply)) {
            return;
        }
    }
    collect_t c = {.items = json_array(), .now = cb_now_ms()};
    char next[CB_LIST_CURSOR_MAX];
    int rc =
        c.items ? cb_lists_cases(&in->st.lists, txn, &q, add_case, &c, next, &e) : CB_ERR_NOMEM;
    answer(reply, rc, &e, "cases", c.items, next, r.t0);
}

void intake_list_obligations(intake_t *in, MDB_txn *txn, const intake_actor_t *actor,
                             const char *query, size_t qlen, intake_reply_t *reply)
{
    list_req_t r;
    if (!list_begin(in, txn, actor, query, qlen, &r, reply))
        return;
    param_t *p = r.p;
    size_t np = r.np, nscope = r.nscope;
    const char *const *scope = r.scope;
    bool scoped = r.scoped;
    cb_error_t e;
    int64_t now = cb_now_ms();
    cb_ob_query_t q = {.level = -1, .limit = 50};
    if (scoped) {
        q.scope = scope;
        q.nscope = nscope;
    }
    for (size_t i = 0; i < np; i++) {
        const char *k = p[i].key, *v = p[i].value;
        if (strcmp(k, "responsible") == 0) {
            if (!org_param(k, v, scope, nscope, scoped, reply))
                return;
            q.responsible = v;
        } else if (strcmp(k, "township") == 0) {
            q.township = v;
        } else if (strcmp(k, "rule") == 0) {
            q.rule = v;
        } else if (strcmp(k, "case") == 0) {
            q.case_id = v;
        } else if (strcmp(k, "state") == 0) {
            /* open (everything running), overdue (past due), due_soon (not yet due), paused */
            if (strcmp(v, "overdue") == 0)
                q.due_to_ms = now;
            else if (strcmp(v, "due_soon") == 0)
                q.due_from_ms = now;
            else if (strcmp(v, "paused") == 0)
                q.include_paused = true;
            else if (strcmp(v, "open") != 0) {
                reply_error(reply, 400, "invalid_field", "state",
                            "state: open, overdue, due_soon or paused");
                return;
            }
        } else if (strcmp(k, "due_before") == 0) {
            if (!parse_instant(k, v, true, &q.due_to_ms, reply))
                return;
        } else if (!page_param(k, v, &q.level, &q.cursor, &q.limit,
                               "state, level, responsible, township, rule, case, "
                               "due_before, cursor, limit",
                               reply)) {
            return;
        }
    }
    collect_t c = {.items = json_array(), .now = now};
    char next[CB_LIST_CURSOR_MAX];
    int rc = c.items ? cb_lists_obligations(&in->st.lists, txn, &q, add_obligation, &c, next, &e)
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
