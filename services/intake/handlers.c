/*
 * handlers.c — what intake does with a command once a door has decoded it, and
 * with the events it pulls from router and deadline. Never touches a socket:
 * a command in, a reply and (when accepted) one event plus state changes out.
 *
 * intake decides only what it can know for certain at the door (DESIGN.md "Who
 * decides what"): shape, authentication, which organisations the token acts for,
 * organisation kinds (the internal-unit rule, seed 002 §五(三)1), required
 * materials (seed 002 §五(三)), emergency stop orders (§五(三)3), idempotency.
 * Whether a transfer may be signed, accepted, returned or disputed in its current
 * state is router's decision, given later as an event.
 */
#include "intake.h"
#include "pbjson.h"
#include "routes.h"
#include "jsonw.h"
#include "cbtime.h"
#include "codes.h"
#include "log.h"
#include "orgs.h"
#include "utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_SKEW_MS (5 * 60 * 1000)

/* ---------- replies ---------- */

void intake_reply_free(intake_reply_t *reply)
{
    free(reply->body);
    reply->body = NULL;
}

void intake_reply_error(intake_reply_t *reply, int status, const char *code, const char *field,
                        const char *message)
{
    intake_reply_free(reply);
    char text[1024]; /* messages are made with snprintf: the cut may split a character */
    cb_utf8_copy(text, sizeof(text), message);
    json_t *o = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "field", field ? field : "",
                          "message", text);
    reply->status = status;
    reply->event_seq = 0;
    reply->body = o ? cb_jsonw_dumps(o) : NULL;
    json_decref(o);
}

void intake_reply_refused(intake_reply_t *reply, const cb_contract_report_t *rep)
{
    const cb_error_t *e = &rep->err;
    if (e->code == CB_ERR_NOMEM) {
        intake_reply_error(reply, 503, "unavailable", "", "out of memory");
        return;
    }
    if (e->code != CB_ERR_MISSING) {
        intake_reply_error(reply, 400, e->field[0] ? "invalid_field" : "invalid_body", e->field,
                           e->message);
        return;
    }
    intake_reply_error(reply, 400, "missing_field", e->field, e->message);
    json_t *o = reply->body ? json_loads(reply->body, 0, NULL) : NULL;
    json_t *fields = json_array();
    size_t n = rep->nmissing < CB_CONTRACT_MISSING_MAX ? rep->nmissing : CB_CONTRACT_MISSING_MAX;
    for (size_t i = 0; fields && i < n; i++)
        json_array_append_new(fields, json_string(rep->missing[i]));
    if (o && fields && json_object_set_new(json_object_get(o, "error"), "fields", fields) == 0) {
        fields = NULL;
        free(reply->body);
        reply->body = cb_jsonw_dumps(o);
    }
    json_decref(fields);
    json_decref(o);
}

/* Maps a cb_error from the store to 503 (full, shutting down) or 500. */
static void reply_store_error(intake_reply_t *reply, const cb_error_t *err)
{
    int status = err->code == CB_ERR_STORE_FULL || err->code == CB_ERR_SHUTDOWN ? 503 : 500;
    intake_reply_error(reply, status, status == 503 ? "unavailable" : "internal", "",
                       err->message);
}

/* ---------- strings in command messages ---------- */

/* Replaces a protobuf-c string field (which may hold the shared empty default). */
static int set_string(char **dst, const char *value)
{
    char *s = strdup(value ? value : "");
    if (s == NULL)
        return CB_ERR_NOMEM;
    if (*dst && *dst != protobuf_c_empty_string)
        free(*dst);
    *dst = s;
    return 0;
}

static Casebus__V1__CommandMeta *ensure_meta(Casebus__V1__CommandMeta **m)
{
    if (*m == NULL) {
        *m = malloc(sizeof(**m));
        if (*m == NULL)
            return NULL;
        casebus__v1__command_meta__init(*m);
    }
    return *m;
}

static bool str_empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* A string member of a JSON object, "" when absent. */
static const char *json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* ---------- authentication and organisations ---------- */

int intake_authenticate(intake_t *in, MDB_txn *txn, const char *token, intake_actor_t *actor,
                        cb_error_t *err)
{
    if (str_empty(token))
        return cb_error_set(err, CB_ERR_AUTH, "Authorization",
                            "no token: send 'Authorization: Bearer <token>'");
    return intake_token_lookup(&in->st, txn, token, cb_now_ms(), actor, err);
}

static bool acts_for(const intake_actor_t *actor, const char *org_id)
{
    for (size_t i = 0; i < actor->norgs; i++)
        if (strcmp(actor->orgs[i], org_id) == 0)
            return true;
    return false;
}

/* Loads the organisation ref names and fills ref from the registry replica.
 * mine: the token must act for it (403 otherwise). Returns the organisation
 * (caller frees) or NULL with reply filled. */
static Casebus__V1__Organisation *resolve_org(intake_t *in, MDB_txn *txn,
                                              Casebus__V1__OrgRef *ref, const char *field,
                                              const intake_actor_t *actor, bool mine,
                                              intake_reply_t *reply)
{
    char msg[300];
    if (ref == NULL || str_empty(ref->org_id)) {
        snprintf(msg, sizeof(msg), "%s is required", field);
        intake_reply_error(reply, 400, "missing_field", field, msg);
        return NULL;
    }
    cb_error_t e;
    if (cb_check_org_id(ref->org_id, field, &e) != 0) {
        intake_reply_error(reply, 400, "invalid_field", field, e.message);
        return NULL;
    }
    if (mine && !acts_for(actor, ref->org_id)) {
        snprintf(msg, sizeof(msg), "this token does not act for organisation '%s' (%s)",
                 ref->org_id, field);
        intake_reply_error(reply, 403, "forbidden", field, msg);
        return NULL;
    }
    Casebus__V1__Organisation *org = intake_org_get(&in->st, txn, ref->org_id);
    if (org == NULL) {
        snprintf(msg, sizeof(msg),
                 "%s: unknown organisation '%s' (not in the registry router published)", field,
                 ref->org_id);
        intake_reply_error(reply, 400, "unknown_organisation", field, msg);
        return NULL;
    }
    ref->kind = org->kind;
    if (set_string(&ref->name, org->name) || set_string(&ref->division_code, org->division_code) ||
        set_string(&ref->parent_id, org->parent_id)) {
        casebus__v1__organisation__free_unpacked(org, NULL);
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return NULL;
    }
    return org;
}

static bool org_ok(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                   const intake_actor_t *actor, bool mine, intake_reply_t *reply)
{
    Casebus__V1__Organisation *o = resolve_org(in, txn, ref, field, actor, mine, reply);
    if (o == NULL)
        return false;
    casebus__v1__organisation__free_unpacked(o, NULL);
    return true;
}

/* ---------- field rules ---------- */

static bool time_ok(intake_t *in, int64_t at, int64_t now, const char *field, bool required,
                    intake_reply_t *reply)
{
    char msg[200];
    if (at == 0) {
        if (!required)
            return true;
        snprintf(msg, sizeof(msg), "%s is required", field);
        intake_reply_error(reply, 400, "missing_field", field, msg);
        return false;
    }
    if (at > now + CLOCK_SKEW_MS) {
        snprintf(msg, sizeof(msg), "%s is in the future", field);
        intake_reply_error(reply, 400, "time_in_future", field, msg);
        return false;
    }
    if (at < now - (int64_t)in->max_age_days * CB_DAY_MS) {
        snprintf(msg, sizeof(msg), "%s is more than %llu days ago", field,
                 (unsigned long long)in->max_age_days);
        intake_reply_error(reply, 400, "time_too_old", field, msg);
        return false;
    }
    return true;
}

static bool code_chars_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* GB 11643-1999 citizen identity number: 17 digits and a check digit (0-9, X). */
static bool id_number_ok(const char *s)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    if (strlen(s) != 18)
        return false;
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        sum += (s[i] - '0') * w[i];
    }
    return s[17] == check[sum % 11];
}

static bool phone_ok(const char *s)
{
    size_t n = strlen(s), digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (!(s[i] == '-' || s[i] == ' ' || (s[i] == '+' && i == 0)))
            return false;
    }
    return digits >= 5 && digits <= 15;
}

/* ---------- ids ---------- */

static int new_id(intake_t *in, MDB_txn *txn, const char *prefix, int64_t now, char *out,
                  size_t size, cb_error_t *err)
{
    char day[16], name[32];
    cb_civil_t c;
    cb_time_to_cst(now, &c);
    snprintf(day, sizeof(day), "%04d%02d%02d", c.year, c.month, c.day);
    snprintf(name, sizeof(name), "%s%s", prefix, day);
    uint64_t n;
    int rc = intake_counter_next(&in->st, txn, name, &n, err);
    if (rc == 0)
        snprintf(out, size, "%s%s-%06llu", prefix, day, (unsigned long long)n);
    return rc;
}

/* ---------- the case view ---------- */

#define ENUM_WORD_MAX 48

/* The API's word for an enum value (pbjson.h: the events' words). */
static const char *enum_word(const ProtobufCEnumDescriptor *d, int value,
                             char out[ENUM_WORD_MAX])
{
    return cb_pb_enum_word(d, value, out, ENUM_WORD_MAX);
}

static json_t *json_time(int64_t ms)
{
    char buf[40];
    if (ms == 0)
        return json_null();
    cb_time_format_cst(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *json_org(const Casebus__V1__OrgRef *r)
{
    if (r == NULL || str_empty(r->org_id))
        return json_null();
    char kind[ENUM_WORD_MAX];
    return json_pack("{s:s,s:s,s:s}", "org_id", r->org_id, "name", r->name ? r->name : "", "kind",
                     enum_word(&casebus__v1__org_kind__descriptor, r->kind, kind));
}

static int timeline_add(intake_t *in, MDB_txn *txn, const char *case_id, const char *producer,
                        uint64_t seq, int64_t at, const char *event, const char *summary,
                        cb_error_t *err)
{
    char text[1024]; /* summaries are made with snprintf: the cut may split a character */
    cb_utf8_copy(text, sizeof(text), summary);
    json_t *e = json_pack("{s:o,s:s,s:I,s:s,s:s}", "at", json_time(at), "producer", producer,
                          "seq", (json_int_t)seq, "event", event, "summary", text);
    if (e == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = intake_timeline_add(&in->st, txn, case_id, e, err);
    json_decref(e);
    return rc;
}

/* ---------- appending ---------- */

typedef struct pending_event {
    Casebus__V1__Envelope env;
    const char *case_id;
} pending_event_t;

/* What fill_meta replaced, so that restore_meta can put it back before the
 * command is freed (its strings belong to the decoder or to protobuf-c). */
typedef struct meta_saved {
    char *token_id, *idempotency_key, *request_id;
    char **acting_orgs;
    size_t n_acting_orgs;
} meta_saved_t;

static void fill_meta(Casebus__V1__CommandMeta *m, const Casebus__V1__Command *cmd,
                      const intake_actor_t *actor, char **orgs, int64_t now, meta_saved_t *saved)
{
    *saved = (meta_saved_t){m->token_id, m->idempotency_key, m->request_id, m->acting_orgs,
                            m->n_acting_orgs};
    m->token_id = (char *)actor->token_id;
    m->idempotency_key = cmd->idempotency_key ? cmd->idempotency_key : (char *)"";
    m->request_id = cmd->request_id ? cmd->request_id : (char *)"";
    m->received_at_ms = now;
    for (size_t i = 0; i < actor->norgs; i++)
        orgs[i] = (char *)actor->orgs[i];
    m->acting_orgs = orgs;
    m->n_acting_orgs = actor->norgs;
}

static void restore_meta(Casebus__V1__CommandMeta *m, const meta_saved_t *saved)
{
    m->token_id = saved->token_id;
    m->idempotency_key = saved->idempotency_key;
    m->request_id = saved->request_id;
    m->acting_orgs = saved->acting_orgs;
    m->n_acting_orgs = saved->n_acting_orgs;
}

/* Appends env; on failure fills reply. */
static bool append(intake_t *in, MDB_txn *txn, Casebus__V1__Envelope *env,
                   intake_reply_t *reply)
{
    cb_error_t err;
    if (cb_log_append(in->d.log, txn, env, &err) != 0) {
        if (err.code == CB_ERR_TOO_LARGE)
            intake_reply_error(reply, 413, "too_large", "", err.message);
        else
            reply_store_error(reply, &err);
        return false;
    }
    reply->event_seq = env->seq;
    return true;
}

static void reply_ok(intake_reply_t *reply, int status, const char *id_name, const char *id,
                     const char *case_id, const Casebus__V1__Envelope *env)
{
    json_t *o = json_pack("{s:s,s:I,s:s}", "case_id", case_id ? case_id : "", "event_seq",
                          (json_int_t)env->seq, "event_id", env->event_id);
    if (o && id_name && id)
        json_object_set_new(o, id_name, json_string(id));
    intake_reply_free(reply);
    reply->status = status;
    reply->body = o ? cb_jsonw_dumps(o) : NULL;
    json_decref(o);
}

/* ---------- commands ---------- */

static void do_report_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseReported *r,
                           const Casebus__V1__Command *cmd, const intake_actor_t *actor,
                           int64_t now, intake_reply_t *reply)
{
    char msg[300], word[ENUM_WORD_MAX];
    cb_error_t e;
    Casebus__V1__CaseSummary *c = r->case_;
    /* the contract (fields.def) has checked presence, sizes and enum values */
    if (!code_chars_ok(c->matter_code)) {
        intake_reply_error(reply, 400, "invalid_field", "matter_code",
                           "matter_code must be 1-32 letters, digits, '.', '-' or '_'");
        return;
    }
    if (cb_check_township_code(c->township_code, "township_code", &e) != 0) {
        intake_reply_error(reply, 400, "invalid_field", "township_code", e.message);
        return;
    }
    if (!time_ok(in, c->discovered_at_ms, now, "discovered_at", true, reply))
        return;
    Casebus__V1__Reporter *rep = r->reporter;
    if (c->source == CASEBUS__V1__SOURCE_CHANNEL__SOURCE_CHANNEL_CITIZEN_REPORT && rep == NULL) {
        intake_reply_error(reply, 400, "missing_field", "reporter",
                           "a citizen report needs a reporter (or {\"anonymous\": true})");
        return;
    }
    if (rep && !str_empty(rep->phone) && !phone_ok(rep->phone)) {
        intake_reply_error(reply, 400, "invalid_field", "reporter.phone",
                           "reporter.phone must be 5-15 digits (with +, - or spaces)");
        return;
    }
    if (rep && !str_empty(rep->id_number) && !id_number_ok(rep->id_number)) {
        intake_reply_error(reply, 400, "invalid_field", "reporter.id_number",
                           "reporter.id_number is not a valid 18-character resident identity "
                           "number (GB 11643 check digit)");
        return;
    }
    if (rep && !rep->anonymous && str_empty(rep->name) && str_empty(rep->phone)) {
        intake_reply_error(reply, 400, "missing_field", "reporter",
                           "reporter needs a name or a phone, or \"anonymous\": true");
        return;
    }
    if (r->party && !str_empty(r->party->credit_code)) {
        if (r->party->is_person) {
            intake_reply_error(reply, 400, "invalid_field", "party.credit_code",
                               "a person has no unified social credit code");
            return;
        }
        if (cb_check_credit_code(r->party->credit_code, "party.credit_code", &e) != 0) {
            intake_reply_error(reply, 400, "invalid_field", "party.credit_code", e.message);
            return;
        }
    }
    if (!org_ok(in, txn, c->discovered_by, "discovered_by", actor, true, reply))
        return;

    /* the summary carries the names, as every later event's does */
    char matter_name[256], township_name[256];
    intake_name_get(&in->st, txn, 'm', c->matter_code, matter_name, sizeof(matter_name));
    intake_name_get(&in->st, txn, 't', c->township_code, township_name, sizeof(township_name));
    if (set_string(&c->matter_name, matter_name) || set_string(&c->township_name, township_name)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    char case_id[48];
    if (new_id(in, txn, "C", now, case_id, sizeof(case_id), &e) != 0) {
        reply_store_error(reply, &e);
        return;
    }
    if (set_string(&c->case_id, case_id) != 0) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    Casebus__V1__CommandMeta *m = ensure_meta(&r->meta);
    char *orgs[INTAKE_MAX_TOKEN_ORGS];
    if (m == NULL) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    meta_saved_t saved;
    fill_meta(m, cmd, actor, orgs, now, &saved);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CASE_REPORTED;
    env.case_reported = r;
    bool ok = append(in, txn, &env, reply);
    restore_meta(m, &saved);
    if (!ok)
        return;

    json_t *view = json_pack(
        "{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:b,s:s,s:s,s:o,s:s,s:o,s:{},s:{}}", "case_id", case_id,
        "source",
        enum_word(&casebus__v1__source_channel__descriptor, c->source, word),
        "matter_code", c->matter_code, "township_code", c->township_code, "discovered_at",
        json_time(c->discovered_at_ms), "discovered_by", json_org(c->discovered_by), "urgency",
        c->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY ? "emergency" : "normal",
        "suspected_crime", c->suspected_crime, "description", c->description, "external_ref",
        c->external_ref ? c->external_ref : "", "reported_at", json_time(env.recorded_at_ms),
        "state", "reported", "competent", json_null(), "transfers", "obligations");
    if (view && rep)
        json_object_set_new(view, "reporter",
                            json_pack("{s:s,s:s,s:s,s:b}", "name", rep->name ? rep->name : "",
                                      "phone", rep->phone ? rep->phone : "", "id_number",
                                      rep->id_number ? rep->id_number : "", "anonymous",
                                      rep->anonymous));
    if (view && r->party)
        json_object_set_new(view, "party",
                            json_pack("{s:s,s:s,s:b}", "name", r->party->name, "credit_code",
                                      r->party->credit_code ? r->party->credit_code : "",
                                      "is_person", r->party->is_person));
    if (view && c->location)
        json_object_set_new(view, "location",
                            json_pack("{s:s,s:f,s:f}", "address",
                                      c->location->address ? c->location->address : "",
                                      "latitude", c->location->latitude, "longitude",
                                      c->location->longitude));
    uint64_t seq = env.seq;
    int64_t at = env.recorded_at_ms;
    snprintf(msg, sizeof(msg), "reported by %s: matter %s in township %s%s%s",
             c->discovered_by->name, c->matter_code, c->township_code,
             c->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY ? ", emergency" : "",
             c->suspected_crime ? ", suspected crime" : "");
    if (view == NULL || intake_case_put(&in->st, txn, case_id, view, &e) != 0 ||
        timeline_add(in, txn, case_id, "intake", seq, at, "case_reported", msg, &e) != 0) {
        json_decref(view);
        reply_store_error(reply, view ? &e : &(cb_error_t){CB_ERR_NOMEM, "", "out of memory"});
        return;
    }
    json_decref(view);
    reply_ok(reply, cb_route_of(cmd->kind_case)->status, NULL, NULL, case_id, &env);
}

/* Which transfer materials are there (seed 002 §五(三)): a transfer letter, the
 * case-source material, preliminary evidence, the reason, the leader's approval. */
static bool materials_ok(const Casebus__V1__TransferSent *t, intake_reply_t *reply)
{
    bool letter = false, source = false, evidence = false;
    for (size_t i = 0; i < t->n_materials; i++) {
        switch (t->materials[i]->kind) {
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_TRANSFER_LETTER: letter = true; break;
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CASE_SOURCE: source = true; break;
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_PARTY_INFO:
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_APPROVAL_INFO:
        case CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_INVESTIGATION: evidence = true; break;
        default: break;
        }
    }
    char missing[600] = "";
    size_t n = 0;
#define MISSING(cond, text)                                                                        \
    if (!(cond)) {                                                                                 \
        strncat(missing, n++ ? "; " : "", sizeof(missing) - strlen(missing) - 1);                  \
        strncat(missing, text, sizeof(missing) - strlen(missing) - 1);                             \
    }
    MISSING(letter, "transfer_letter (移送函)");
    MISSING(source, "case_source (案件来源材料: 现场检查记录/举报投诉材料)");
    MISSING(evidence, "evidence (初步证据: party_info, approval_info or investigation)");
    MISSING(!str_empty(t->reason), "reason (移送理由)");
    MISSING(!str_empty(t->approved_by) && t->approved_at_ms != 0,
            "approved_by and approved_at (部门负责人审批)");
#undef MISSING
    if (n == 0)
        return true;
    char msg[700];
    snprintf(msg, sizeof(msg), "the transfer is incomplete (seed 002 §五(三)); missing: %s",
             missing);
    intake_reply_error(reply, 400, "missing_materials", "materials", msg);
    return false;
}

static void reply_no_case(intake_reply_t *reply, const char *case_id)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "no case '%.80s'", case_id ? case_id : "");
    intake_reply_error(reply, 404, "not_found", "case_id", msg);
}

/* The case a command names, or NULL with 404 in reply. */
static json_t *case_or_404(intake_t *in, MDB_txn *txn, const char *case_id,
                           intake_reply_t *reply)
{
    json_t *view = str_empty(case_id) ? NULL : intake_case_get(&in->st, txn, case_id);
    if (view == NULL)
        reply_no_case(reply, case_id);
    return view;
}

static json_t *ref_or_404(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
                          intake_reply_t *reply)
{
    char msg[200];
    json_t *ref = intake_ref_get(&in->st, txn, id);
    const char *k = ref ? json_string_value(json_object_get(ref, "kind")) : NULL;
    if (k == NULL || strcmp(k, kind) != 0) {
        json_decref(ref);
        snprintf(msg, sizeof(msg), "no %s '%.80s'", kind, id ? id : "");
        intake_reply_error(reply, 404, "not_found", "id", msg);
        return NULL;
    }
    return ref;
}

/* ---------- who may act on a case (authz.c decides) ---------- */

/* What authz needs of view (and of ref, the transfer, decision or assistance
 * request the command is about); the strings point into them. */
static void facts_of(json_t *view, const char *transfer_id, json_t *ref, intake_facts_t *f)
{
    memset(f, 0, sizeof(*f));
    f->finder = json_str(json_object_get(view, "discovered_by"), "org_id");
    f->holder = json_str(json_object_get(view, "holder"), "org_id");
    f->competent = json_str(json_object_get(view, "competent"), "org_id");
    f->referral_made = json_is_true(json_object_get(view, "referred_to_police"));
    const char *id;
    json_t *t;
    json_object_foreach(json_object_get(view, "transfers"), id, t) {
        const char *sender = json_str(t, "sender"), *receiver = json_str(t, "receiver");
        if (transfer_id && strcmp(id, transfer_id) == 0) {
            f->transfer_sender = sender;
            f->transfer_receiver = receiver;
        }
        if (f->nparties + 2 <= INTAKE_MAX_PARTIES) {
            f->parties[f->nparties++] = sender;
            f->parties[f->nparties++] = receiver;
        }
        size_t h;
        json_t *helper;
        json_array_foreach(json_object_get(t, "helpers"), h, helper) {
            if (f->nparties < INTAKE_MAX_PARTIES && json_is_string(helper))
                f->parties[f->nparties++] = json_string_value(helper);
        }
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(view, "parties"), i, p) {
        if (f->nparties < INTAKE_MAX_PARTIES && json_is_string(p))
            f->parties[f->nparties++] = json_string_value(p);
    }
    const char *kind = ref ? json_str(ref, "kind") : "";
    if (strcmp(kind, "transfer") == 0 && (f->transfer_sender == NULL || !*f->transfer_sender))
        f->transfer_sender = json_str(ref, "sender");
    else if (strcmp(kind, "decision") == 0)
        f->decider = json_str(ref, "by");
    else if (strcmp(kind, "assistance") == 0)
        f->addressee = json_str(ref, "to");
    else if (strcmp(kind, "supervision") == 0)
        f->responsible = json_str(ref, "responsible");
}

/* intake_authorize, its refusal put in reply naming field. */
static bool authorized(intake_cmd_kind_t kind, const Casebus__V1__Organisation *o, int crime_step,
                       const intake_facts_t *f, const char *field, intake_reply_t *reply)
{
    intake_verdict_t v;
    if (intake_authorize(kind, o->org_id, o->kind, crime_step, f, &v))
        return true;
    intake_reply_error(reply, v.status, v.code, field, v.message);
    return false;
}

/* resolve_org, then authorized; the organisation is freed. */
static bool org_may(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                    const intake_actor_t *actor, intake_cmd_kind_t kind, int crime_step,
                    const intake_facts_t *f, intake_reply_t *reply)
{
    Casebus__V1__Organisation *o = resolve_org(in, txn, ref, field, actor, true, reply);
    if (o == NULL)
        return false;
    bool ok = authorized(kind, o, crime_step, f, field, reply);
    casebus__v1__organisation__free_unpacked(o, NULL);
    return ok;
}

/* Names org as a party of the case (an assistance addressee, a department
 * fed back to): it may then read the case. Stores the view. */
static int view_add_party(intake_t *in, MDB_txn *txn, const char *case_id, json_t *view,
                          const char *org, cb_error_t *err)
{
    json_t *ps = json_object_get(view, "parties");
    if (!json_is_array(ps)) {
        ps = json_array();
        if (ps == NULL || json_object_set_new(view, "parties", ps) != 0)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p) {
        if (strcmp(json_string_value(p) ? json_string_value(p) : "", org) == 0)
            return 0;
    }
    if (json_array_append_new(ps, json_string(org)) != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    return intake_case_put(&in->st, txn, case_id, view, err);
}

/* Records an accepted command: event, reference, timeline, reply. body points at
 * the command's message inside env. */
static void record(intake_t *in, MDB_txn *txn, Casebus__V1__Envelope *env,
                   Casebus__V1__CommandMeta *m, const Casebus__V1__Command *cmd,
                   const intake_actor_t *actor, int64_t now, const char *id, json_t *ref,
                   const char *summary, intake_reply_t *reply)
{
    const cb_route_t *route = cb_route_of(cmd->kind_case);
    char *orgs[INTAKE_MAX_TOKEN_ORGS];
    cb_error_t e;
    meta_saved_t saved;
    fill_meta(m, cmd, actor, orgs, now, &saved);
    bool ok = append(in, txn, env, reply);
    restore_meta(m, &saved);
    if (!ok)
        return;
    if ((ref && intake_ref_put(&in->st, txn, id, ref, &e) != 0) ||
        timeline_add(in, txn, env->case_id, "intake", env->seq, env->recorded_at_ms,
                     cb_event_type(env), summary, &e) != 0) {
        reply_store_error(reply, &e);
        return;
    }
    reply_ok(reply, route ? route->status : 201, route ? route->id_name : NULL, id, env->case_id,
             env);
}

static void do_send_transfer(intake_t *in, MDB_txn *txn, Casebus__V1__TransferSent *t,
                             const Casebus__V1__Command *cmd, const intake_actor_t *actor,
                             int64_t now, intake_reply_t *reply)
{
    char msg[400];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    bool emergency = strcmp(json_str(view, "urgency"),
                            "emergency") == 0;
    Casebus__V1__Organisation *sender =
        resolve_org(in, txn, t->sender, "sender", actor, true, reply);
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    if (sender == NULL) {
        json_decref(view);
        return;
    }
    /* seed 002 §五(三)1: internal and dispatched units may not transfer in their
     * own name. */
    if (sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ||
        sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT) {
        Casebus__V1__Organisation *parent = intake_org_get(&in->st, txn, sender->parent_id);
        snprintf(msg, sizeof(msg),
                 "%s (%s) is %s unit of %s (%s) and may not send a transfer in its own name; "
                 "send it in the name of %s (seed 002 §五(三)1)",
                 sender->name, sender->org_id,
                 sender->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ? "an internal"
                                                                               : "a dispatched",
                 parent ? parent->name : sender->parent_id, sender->parent_id,
                 parent ? parent->name : sender->parent_id);
        if (parent)
            casebus__v1__organisation__free_unpacked(parent, NULL);
        casebus__v1__organisation__free_unpacked(sender, NULL);
        intake_reply_error(reply, 400, "unit_may_not_transfer", "sender", msg);
        json_decref(view);
        return;
    }
    bool may = authorized(CMD_SEND_TRANSFER, sender, 0, &facts, "sender", reply);
    /* One transfer of a case at a time (router, the authority, refuses it too). */
    static const char *const open_states[] = {"sent", "received", "disputed", "decided",
                                              "return_requested", NULL};
    const char *tid;
    json_t *tv;
    json_object_foreach(json_object_get(view, "transfers"), tid, tv) {
        for (size_t i = 0; may && open_states[i]; i++)
            if (strcmp(json_str(tv, "state"), open_states[i]) == 0) {
                snprintf(msg, sizeof(msg),
                         "transfer %s of this case is %s (to %s): one transfer at a time; wait "
                         "for it to be accepted, concluded or returned",
                         tid, open_states[i], json_str(tv, "receiver"));
                intake_reply_error(reply, 409, "transfer_open", "case_id", msg);
                may = false;
            }
    }
    json_decref(view);
    casebus__v1__organisation__free_unpacked(sender, NULL);
    if (!may)
        return;
    if (!str_empty(t->proposed_receiver_id)) {
        Casebus__V1__Organisation *r = intake_org_get(&in->st, txn, t->proposed_receiver_id);
        if (r == NULL) {
            snprintf(msg, sizeof(msg), "receiver: unknown organisation '%s'",
                     t->proposed_receiver_id);
            intake_reply_error(reply, 400, "unknown_organisation", "receiver", msg);
            return;
        }
        casebus__v1__organisation__free_unpacked(r, NULL);
    }
    if (!materials_ok(t, reply))
        return;
    if (!time_ok(in, t->approved_at_ms, now, "approved_at", true, reply))
        return;
    /* seed 002 §五(三)3: in an emergency, order the party to stop at once, tell the
     * competent party, and transfer within 24 hours. */
    if (emergency && (t->stop_ordered_at_ms == 0 || t->competent_informed_at_ms == 0)) {
        cb_contract_report_t rep;
        cb_contract_report_init(&rep);
        if (t->stop_ordered_at_ms == 0)
            cb_contract_missing(&rep, "stop_ordered_at");
        if (t->competent_informed_at_ms == 0)
            cb_contract_missing(&rep, "competent_informed_at");
        cb_error_set(&rep.err, CB_ERR_MISSING, rep.missing[0],
                     "an emergency transfer needs %s%s%s: when the party was ordered to stop "
                     "(责令停止) and when the competent party was told (seed 002 §五(三)3)",
                     rep.missing[0], rep.nmissing > 1 ? " and " : "",
                     rep.nmissing > 1 ? rep.missing[1] : "");
        intake_reply_refused(reply, &rep);
        return;
    }
    if (!time_ok(in, t->stop_ordered_at_ms, now, "stop_ordered_at", false, reply) ||
        !time_ok(in, t->competent_informed_at_ms, now, "competent_informed_at", false, reply))
        return;

    char id[48];
    if (new_id(in, txn, "T", now, id, sizeof(id), &e) != 0) {
        reply_store_error(reply, &e);
        return;
    }
    Casebus__V1__CommandMeta *m = ensure_meta(&t->meta);
    if (m == NULL || set_string(&t->transfer_id, id) || set_string(&t->case_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = t->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_SENT;
    env.transfer_sent = t;
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s}", "kind", "transfer", "case_id", t->case_id,
                            "sender", t->sender->org_id, "proposed_receiver",
                            t->proposed_receiver_id ? t->proposed_receiver_id : "");
    snprintf(msg, sizeof(msg), "transfer %s sent by %s (%zu materials)%s", id, t->sender->name,
             t->n_materials, emergency ? ", emergency" : "");
    record(in, txn, &env, m, cmd, actor, now, id, ref, msg, reply);
    json_decref(ref);
}

/* receipt / acceptance / return / dispute: the transfer must exist, `by` must be
 * one of the token's organisations; router judges the state. */
/* One party a county department, the other the enforcement bureau. */
static bool duty_division_parties(intake_t *in, MDB_txn *txn, const char *a, const char *b)
{
    int kinds[2] = {0, 0};
    const char *ids[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, ids[i]);
        if (o) {
            kinds[i] = o->kind;
            casebus__v1__organisation__free_unpacked(o, NULL);
        }
    }
    const int dept = CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT,
              bureau = CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
    return (kinds[0] == dept && kinds[1] == bureau) || (kinds[0] == bureau && kinds[1] == dept);
}

static void do_transfer_step(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                             const intake_actor_t *actor, int64_t now, intake_reply_t *reply)
{
    char msg[300];
    cb_error_t e;
    json_t *ref = ref_or_404(in, txn, cmd->target_id, "transfer", reply);
    if (ref == NULL)
        return;
    const char *case_id = json_string_value(json_object_get(ref, "case_id"));
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = (char *)case_id;
    Casebus__V1__OrgRef *by = NULL;
    char **transfer_id = NULL;
    Casebus__V1__CommandMeta **meta = NULL;
    const char *verb = "";
    char dispute_id[48] = "";
    switch (cmd->kind_case) {
    case CASEBUS__V1__COMMAND__KIND_RECEIVE_TRANSFER:
        by = cmd->receive_transfer->by;
        transfer_id = &cmd->receive_transfer->transfer_id;
        meta = &cmd->receive_transfer->meta;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_RECEIVED;
        env.transfer_received = cmd->receive_transfer;
        verb = "signed for (签收)";
        break;
    case CASEBUS__V1__COMMAND__KIND_ACCEPT_TRANSFER:
        by = cmd->accept_transfer->by;
        transfer_id = &cmd->accept_transfer->transfer_id;
        meta = &cmd->accept_transfer->meta;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ACCEPTED;
        env.transfer_accepted = cmd->accept_transfer;
        verb = "accepted";
        break;
    case CASEBUS__V1__COMMAND__KIND_RETURN_TRANSFER:
        by = cmd->return_transfer->by;
        transfer_id = &cmd->return_transfer->transfer_id;
        meta = &cmd->return_transfer->meta;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_RETURNED;
        env.transfer_returned = cmd->return_transfer;
        verb = "returned";
        if (str_empty(cmd->return_transfer->reason)) {
            intake_reply_error(reply, 400, "missing_field", "reason",
                               "a returned transfer needs a reason");
            goto out;
        }
        break;
    case CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE:
        by = cmd->raise_dispute->by;
        transfer_id = &cmd->raise_dispute->transfer_id;
        meta = &cmd->raise_dispute->meta;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_DISPUTE_RAISED;
        env.dispute_raised = cmd->raise_dispute;
        verb = "disputed";
        if (str_empty(cmd->raise_dispute->reason)) {
            intake_reply_error(reply, 400, "missing_field", "reason", "a dispute needs a reason");
            goto out;
        }
        break;
    default:
        intake_reply_error(reply, 400, "invalid_command", "", "not a transfer step");
        goto out;
    }
    json_t *view = intake_case_get(&in->st, txn, case_id);
    intake_facts_t facts;
    facts_of(view ? view : json_object(), cmd->target_id, ref, &facts);
    bool may = org_may(in, txn, by, "by", actor, (intake_cmd_kind_t)cmd->kind_case, 0, &facts,
                       reply);
    /* seed 002 §六(四): a duty-division dispute is between a department and the
     * enforcement bureau. */
    if (may && cmd->kind_case == CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE &&
        cmd->raise_dispute->kind == CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION &&
        !duty_division_parties(in, txn, facts.transfer_sender, facts.transfer_receiver)) {
        intake_reply_error(reply, 400, "not_duty_division", "kind",
                           "a duty-division dispute (职责分工争议) is between a county department "
                           "and the enforcement bureau (seed 002 §六(四)); this transfer's "
                           "parties are not: raise a jurisdiction dispute instead");
        may = false;
    }
    json_decref(view);
    if (!may)
        goto out;
    if (ensure_meta(meta) == NULL || set_string(transfer_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    json_t *new_ref = NULL;
    if (cmd->kind_case == CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE) {
        if (new_id(in, txn, "D", now, dispute_id, sizeof(dispute_id), &e) != 0 ||
            set_string(&cmd->raise_dispute->dispute_id, dispute_id)) {
            reply_store_error(reply, &e);
            goto out;
        }
        bool duty = cmd->raise_dispute->kind == CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_DUTY_DIVISION;
        new_ref = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "dispute", "case_id", case_id,
                            "transfer_id", cmd->target_id, "raised_by", by->org_id, "stage",
                            duty ? "staffing_office" : "judicial_bureau");
    }
    snprintf(msg, sizeof(msg), "transfer %s %s by %s%s%s", cmd->target_id, verb, by->name,
             dispute_id[0] ? ", dispute " : "", dispute_id);
    record(in, txn, &env, *meta, cmd, actor, now, dispute_id[0] ? dispute_id : cmd->target_id, new_ref, msg, reply);
    json_decref(new_ref);
out:
    json_decref(ref);
}

static void do_decide_dispute(intake_t *in, MDB_txn *txn, Casebus__V1__DisputeDecided *d,
                              Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                              intake_reply_t *reply)
{
    char msg[300];
    cb_error_t e;
    json_t *ref = ref_or_404(in, txn, cmd->target_id, "dispute", reply);
    if (ref == NULL)
        return;
    const char *case_id = json_string_value(json_object_get(ref, "case_id"));
    const char *transfer_id = json_string_value(json_object_get(ref, "transfer_id"));
    Casebus__V1__Organisation *o = resolve_org(in, txn, d->decided_by, "decided_by", actor, true,
                                               reply);
    if (o == NULL)
        goto out;
    /* seed 002 §五(三)4: the judicial bureau decides jurisdiction disputes;
     * §六(四): the staffing office coordinates duty-division disputes and, when
     * that fails, the county government decides. */
    int kind = o->kind;
    casebus__v1__organisation__free_unpacked(o, NULL);
    const char *stage = json_str(ref, "stage");
    bool staffing = strcmp(stage, "staffing_office") == 0;
    bool government = strcmp(stage, "county_government") == 0;
    if (!staffing && !government && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_JUDICIAL_BUREAU) {
        intake_reply_error(reply, 403, "not_judicial_bureau", "decided_by",
                           "only the judicial bureau (司法局) decides jurisdiction disputes "
                           "(seed 002 §五(三)4)");
        goto out;
    }
    if ((staffing && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_STAFFING_OFFICE) ||
        (government && kind != CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_GOVERNMENT)) {
        intake_reply_error(reply, 403, "not_decider", "decided_by",
                           staffing ? "the staffing office (编办) coordinates this duty-division "
                                      "dispute (seed 002 §六(四))"
                                    : "the county government decides this duty-division dispute, "
                                      "the staffing office having referred it (seed 002 §六(四))");
        goto out;
    }
    if (d->refer_to_government && !staffing) {
        intake_reply_error(reply, 400, "invalid_field", "refer_to_government",
                           "only the staffing office refers a duty-division dispute to the county "
                           "government");
        goto out;
    }
    if (d->refer_to_government) {
        /* Recorded, and the dispute waits for the county government. */
        if (json_object_set_new(ref, "stage", json_string("county_government")) != 0 ||
            intake_ref_put(&in->st, txn, cmd->target_id, ref, &e) != 0) {
            reply_store_error(reply, &e);
            goto out;
        }
        snprintf(msg, sizeof(msg), "dispute %s referred by %s to the county government",
                 cmd->target_id, d->decided_by->name);
        goto record;
    }
    Casebus__V1__Organisation *comp = intake_org_get(&in->st, txn, d->competent_org_id);
    if (comp == NULL) {
        snprintf(msg, sizeof(msg), "competent_org: unknown organisation '%s'",
                 d->competent_org_id ? d->competent_org_id : "");
        intake_reply_error(reply, 400, "unknown_organisation", "competent_org", msg);
        goto out;
    }
    snprintf(msg, sizeof(msg), "dispute %s decided by %s: %s has jurisdiction", cmd->target_id,
             d->decided_by->name, comp->name);
    casebus__v1__organisation__free_unpacked(comp, NULL);
record:
    if (ensure_meta(&d->meta) == NULL || set_string(&d->dispute_id, cmd->target_id) ||
        set_string(&d->transfer_id, transfer_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = (char *)case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DISPUTE_DECIDED;
    env.dispute_decided = d;
    record(in, txn, &env, d->meta, cmd, actor, now, cmd->target_id, NULL, msg,
           reply);
out:
    json_decref(ref);
}

static void do_request_assistance(intake_t *in, MDB_txn *txn, Casebus__V1__AssistanceRequested *a,
                                  Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                  int64_t now, intake_reply_t *reply)
{
    char msg[300], id[48];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    if (!org_may(in, txn, a->requested_by, "requested_by", actor, CMD_REQUEST_ASSISTANCE, 0,
                 &facts, reply) ||
        !org_ok(in, txn, a->to, "to", actor, false, reply)) {
        json_decref(view);
        return;
    }
    if (a->kind < 1 || a->kind > 3) {
        intake_reply_error(reply, 400, "invalid_field", "kind",
                           "kind must be identification, appraisal or advice");
        goto out;
    }
    if (str_empty(a->question)) {
        intake_reply_error(reply, 400, "missing_field", "question", "question is required");
        goto out;
    }
    if (a->letter_received_at_ms == 0)
        a->letter_received_at_ms = now;
    if (!time_ok(in, a->letter_received_at_ms, now, "letter_received_at", true, reply))
        goto out;
    if (new_id(in, txn, "A", now, id, sizeof(id), &e) != 0 ||
        view_add_party(in, txn, cmd->target_id, view, a->to->org_id, &e) != 0) {
        reply_store_error(reply, &e);
        goto out;
    }
    if (ensure_meta(&a->meta) == NULL || set_string(&a->assistance_id, id) ||
        set_string(&a->case_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = a->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_ASSISTANCE_REQUESTED;
    env.assistance_requested = a;
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "assistance", "case_id", a->case_id,
                            "requested_by", a->requested_by->org_id, "to", a->to->org_id,
                            "question", a->question ? a->question : "");
    snprintf(msg, sizeof(msg), "assistance %s requested by %s from %s", id,
             a->requested_by->name, a->to->name);
    record(in, txn, &env, a->meta, cmd, actor, now, id, ref, msg, reply);
    json_decref(ref);
out:
    json_decref(view);
}

/* The ref a command names (404 otherwise), when by may give the command on it
 * (the refusal in reply otherwise); the caller frees it. */
static json_t *ref_for_command(intake_t *in, MDB_txn *txn, const Casebus__V1__Command *cmd,
                               const char *kind, Casebus__V1__OrgRef *by,
                               const intake_actor_t *actor, intake_cmd_kind_t cmd_kind,
                               intake_reply_t *reply)
{
    json_t *ref = ref_or_404(in, txn, cmd->target_id, kind, reply);
    if (ref == NULL)
        return NULL;
    intake_facts_t facts;
    json_t *none = json_object();
    facts_of(none, NULL, ref, &facts);
    bool may = org_may(in, txn, by, "by", actor, cmd_kind, 0, &facts, reply);
    json_decref(none);
    if (!may) {
        json_decref(ref);
        return NULL;
    }
    return ref;
}

static void do_answer_assistance(intake_t *in, MDB_txn *txn, Casebus__V1__AssistanceAnswered *a,
                                 Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                 int64_t now, intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_for_command(in, txn, cmd, "assistance", a->by, actor, CMD_ANSWER_ASSISTANCE,
                                  reply);
    if (ref == NULL)
        return;
    /* The answer goes to whoever asked, with the question (seed 002 §五(二)). */
    Casebus__V1__Organisation *asker = intake_org_get(&in->st, txn, json_str(ref, "requested_by"));
    if (a->requested_by)
        casebus__v1__org_ref__free_unpacked(a->requested_by, NULL);
    a->requested_by = asker ? intake_owned_ref(asker) : NULL;
    if (asker)
        casebus__v1__organisation__free_unpacked(asker, NULL);
    if (ensure_meta(&a->meta) == NULL || set_string(&a->assistance_id, cmd->target_id) ||
        set_string(&a->case_id, json_string_value(json_object_get(ref, "case_id"))) ||
        set_string(&a->question, json_str(ref, "question")) || (asker && !a->requested_by)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = a->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_ASSISTANCE_ANSWERED;
    env.assistance_answered = a;
    snprintf(msg, sizeof(msg), "assistance %s answered by %s", cmd->target_id, a->by->name);
    record(in, txn, &env, a->meta, cmd, actor, now, cmd->target_id, NULL,
           msg, reply);
out:
    json_decref(ref);
}

static void do_record_decision(intake_t *in, MDB_txn *txn, Casebus__V1__DecisionRecorded *d,
                               Casebus__V1__Command *cmd, const intake_actor_t *actor,
                               int64_t now, intake_reply_t *reply)
{
    char msg[300], id[48];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    bool feedback = d->feedback_to && !str_empty(d->feedback_to->org_id);
    if (!org_may(in, txn, d->by, "by", actor, CMD_RECORD_DECISION, 0, &facts, reply) ||
        !time_ok(in, d->decided_at_ms, now, "decided_at", true, reply))
        goto out;
    if (feedback && !org_ok(in, txn, d->feedback_to, "feedback_to", actor, false, reply))
        goto out;
    if (json_is_true(json_object_get(view, "referred_to_police")) &&
        !json_is_true(json_object_get(view, "police_declined"))) {
        intake_reply_error(reply, 409, "crime_referral_open", "case_id",
                           "the case is referred to public security and it has not declined it "
                           "or sent it back: no penalty in place of prosecution (不得以罚代刑, "
                           "Decree 310 第十一条, seed 000 §四(三))");
        goto out;
    }
    if (str_empty(d->summary)) {
        intake_reply_error(reply, 400, "missing_field", "summary", "summary is required");
        goto out;
    }
    if (d->fine_fen < 0) {
        intake_reply_error(reply, 400, "invalid_field", "fine_fen", "fine_fen must not be negative");
        goto out;
    }
    if (new_id(in, txn, "P", now, id, sizeof(id), &e) != 0 ||
        (feedback && view_add_party(in, txn, cmd->target_id, view, d->feedback_to->org_id, &e))) {
        reply_store_error(reply, &e);
        goto out;
    }
    /* A case referred to public security: the procuratorate is told of the
     * decision (seed 000 §四(三), 行刑衔接). */
    char procuratorate[1][CB_ORG_ID_MAX + 1] = {""};
    if (json_is_true(json_object_get(view, "referred_to_police")))
        intake_org_ids_of_kinds(&in->st, txn,
                                (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE}, 1,
                                procuratorate);
    const char *inform[] = {procuratorate[0], NULL};
    if (ensure_meta(&d->meta) == NULL || set_string(&d->decision_id, id) ||
        set_string(&d->case_id, cmd->target_id) ||
        intake_inform_set(&in->st, txn, &d->inform, &d->n_inform, inform, d->by->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = d->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DECISION_RECORDED;
    env.decision_recorded = d;
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "kind", "decision", "case_id",
                            d->case_id, "by", d->by->org_id, "feedback_to",
                            feedback ? d->feedback_to->org_id : "", "summary", d->summary,
                            "decided_at_ms", (json_int_t)d->decided_at_ms, "fine_fen",
                            (json_int_t)d->fine_fen, "major", d->major);
    snprintf(msg, sizeof(msg), "%sdecision %s recorded by %s", d->major ? "major " : "", id,
             d->by->name);
    record(in, txn, &env, d->meta, cmd, actor, now, id, ref, msg, reply);
    json_decref(ref);
out:
    json_decref(view);
}

static void do_give_feedback(intake_t *in, MDB_txn *txn, Casebus__V1__FeedbackGiven *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply)
{
    char msg[300];
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    json_decref(view);
    json_t *ref = ref_or_404(in, txn, f->decision_id, "decision", reply);
    if (ref == NULL)
        return;
    const char *dcase = json_string_value(json_object_get(ref, "case_id"));
    if (strcmp(dcase ? dcase : "", cmd->target_id) != 0) {
        intake_reply_error(reply, 400, "invalid_field", "decision_id",
                           "decision_id belongs to another case");
        goto out;
    }
    intake_facts_t facts;
    json_t *none = json_object();
    facts_of(none, NULL, ref, &facts);
    bool may = org_may(in, txn, f->by, "by", actor, CMD_GIVE_FEEDBACK, 0, &facts, reply);
    json_decref(none);
    if (!may || !org_ok(in, txn, f->to, "to", actor, false, reply))
        goto out;
    const char *due_to = json_str(ref, "feedback_to");
    if (*due_to && strcmp(due_to, f->to->org_id) != 0) {
        snprintf(msg, sizeof(msg), "decision %s is to be fed back to '%s', not '%s'",
                 f->decision_id, due_to, f->to->org_id);
        intake_reply_error(reply, 400, "invalid_field", "to", msg);
        goto out;
    }
    /* What the department is told: the decision itself (seed 002 §五(一)). */
    f->decided_at_ms = json_integer_value(json_object_get(ref, "decided_at_ms"));
    f->fine_fen = json_integer_value(json_object_get(ref, "fine_fen"));
    f->major = json_is_true(json_object_get(ref, "major"));
    if (ensure_meta(&f->meta) == NULL || set_string(&f->case_id, cmd->target_id) ||
        set_string(&f->summary, json_str(ref, "summary"))) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = f->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_FEEDBACK_GIVEN;
    env.feedback_given = f;
    snprintf(msg, sizeof(msg), "decision %s fed back by %s to %s", f->decision_id, f->by->name,
             f->to->name);
    record(in, txn, &env, f->meta, cmd, actor, now, f->decision_id, NULL, msg,
           reply);
out:
    json_decref(ref);
}

/* ---------- time limits: extensions (decided by deadline), and the events
 * that open or end other limits ---------- */

/* The organisation ids a stored obligation reference lists under key. */
static bool ref_lists(json_t *ref, const char *key, const char *org_id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(ref, key), i, v) if (strcmp(json_string_value(v) ? json_string_value(v) : "", org_id) == 0) return true;
    return false;
}

static void do_request_extension(intake_t *in, MDB_txn *txn, Casebus__V1__ExtensionRequested *x,
                                 Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                 int64_t now, intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_or_404(in, txn, cmd->target_id, "obligation", reply);
    if (ref == NULL)
        return;
    if (!org_ok(in, txn, x->by, "by", actor, true, reply))
        goto out;
    if (strcmp(json_str(ref, "responsible"), x->by->org_id) != 0) {
        snprintf(msg, sizeof(msg), "only the responsible organisation ('%s') may ask for more time",
                 json_str(ref, "responsible"));
        intake_reply_error(reply, 403, "not_responsible", "by", msg);
        goto out;
    }
    if (ensure_meta(&x->meta) == NULL || set_string(&x->obligation_id, cmd->target_id) ||
        set_string(&x->case_id, json_str(ref, "case_id"))) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = x->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_EXTENSION_REQUESTED;
    env.extension_requested = x;
    snprintf(msg, sizeof(msg), "extension of %s by %u asked by %s", cmd->target_id,
             x->extra_length, x->by->name);
    /* deadline decides whether it came before the limit: 202, verdict on the tail. */
    record(in, txn, &env, x->meta, cmd, actor, now, cmd->target_id, NULL,
           msg, reply);
out:
    json_decref(ref);
}

static void do_decide_extension(intake_t *in, MDB_txn *txn, Casebus__V1__ExtensionDecided *x,
                                Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                int64_t now, intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_or_404(in, txn, cmd->target_id, "obligation", reply);
    if (ref == NULL)
        return;
    if (!org_ok(in, txn, x->by, "by", actor, true, reply))
        goto out;
    if (!ref_lists(ref, "supervisors", x->by->org_id)) {
        snprintf(msg, sizeof(msg), "'%s' does not supervise obligation %s", x->by->org_id,
                 cmd->target_id);
        intake_reply_error(reply, 403, "not_supervisor", "by", msg);
        goto out;
    }
    if (ensure_meta(&x->meta) == NULL || set_string(&x->obligation_id, cmd->target_id) ||
        set_string(&x->case_id, json_str(ref, "case_id"))) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = x->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_EXTENSION_DECIDED;
    env.extension_decided = x;
    snprintf(msg, sizeof(msg), "extension of %s %s by %s", cmd->target_id,
             x->approved ? "approved" : "refused", x->by->name);
    record(in, txn, &env, x->meta, cmd, actor, now, cmd->target_id, NULL,
           msg, reply);
out:
    json_decref(ref);
}

static void do_cancel_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseCancelled *c,
                           Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                           intake_reply_t *reply)
{
    char msg[300];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    Casebus__V1__Organisation *o = resolve_org(in, txn, c->by, "by", actor, true, reply);
    if (o == NULL)
        goto out;
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    if (!authorized(CMD_CANCEL_CASE, o, 0, &facts, "by", reply))
        goto out;
    if (strcmp(json_str(view, "state"), "cancelled") == 0) {
        intake_reply_error(reply, 409, "already_cancelled", "", "the case is already cancelled");
        goto out;
    }
    if (ensure_meta(&c->meta) == NULL || set_string(&c->case_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    json_object_set_new(view, "state", json_string("cancelled"));
    if (intake_case_put(&in->st, txn, cmd->target_id, view, &e) != 0) {
        reply_store_error(reply, &e);
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = c->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CASE_CANCELLED;
    env.case_cancelled = c;
    snprintf(msg, sizeof(msg), "case cancelled by %s: %s", o->name, c->reason);
    record(in, txn, &env, c->meta, cmd, actor, now, cmd->target_id, NULL, msg,
           reply);
out:
    if (o)
        casebus__v1__organisation__free_unpacked(o, NULL);
    json_decref(view);
}

/* Decree 310 第六条: what a handover to public security carries. */
static bool referral_dossier_ok(const Casebus__V1__CrimeReferralStep *s, intake_reply_t *reply)
{
    static const struct {
        int kind;
        const char *name;
    } need[] = {
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CRIME_TRANSFER_NOTICE,
         "crime_transfer_notice (涉嫌犯罪案件移送书)"},
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_CRIME_INVESTIGATION_REPORT,
         "crime_investigation_report (涉嫌犯罪案件情况的调查报告)"},
        {CASEBUS__V1__MATERIAL_KIND__MATERIAL_KIND_EXHIBIT_LIST, "exhibit_list (涉案物品清单)"},
    };
    char msg[600];
    size_t used = (size_t)snprintf(msg, sizeof(msg),
                                   "a handover to public security carries the dossier of Decree "
                                   "310 第六条; missing:");
    bool missing = false;
    for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++) {
        bool have = false;
        for (size_t i = 0; i < s->n_materials && !have; i++)
            have = (int)s->materials[i]->kind == need[k].kind;
        if (!have && used < sizeof(msg)) {
            used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s %s", missing ? "," : "",
                                     need[k].name);
            missing = true;
        }
    }
    if (missing)
        intake_reply_error(reply, 400, "missing_materials", "materials", msg);
    return !missing;
}

static void do_crime_step(intake_t *in, MDB_txn *txn, Casebus__V1__CrimeReferralStep *s,
                          Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                          intake_reply_t *reply)
{
    char msg[300];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    Casebus__V1__Organisation *o = resolve_org(in, txn, s->by, "by", actor, true, reply);
    if (o == NULL)
        goto out_view;
    if (!time_ok(in, s->at_ms, now, "at", true, reply))
        goto out;
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    if (!authorized(CMD_CRIME_STEP, o, s->step, &facts, "by", reply))
        goto out;
    if (s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE &&
        !referral_dossier_ok(s, reply))
        goto out;
    /* Public security's answer decides whether the administrative side may
     * decide a penalty (不得以罚代刑): only once it has declined or sent back. */
    int declined = -1;
    switch (s->step) {
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED:
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_ANSWERED:
        declined = !s->accepted;
        break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_REQUESTED:
        declined = 0;
        break;
    case CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK:
        declined = 1;
        break;
    default:
        break;
    }
    if (declined >= 0 && json_object_set_new(view, "police_declined", json_boolean(declined)) != 0) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    /* The administrative organisation of the referral: the one that records
     * its steps, told of public security's. */
    bool admin_step = o->kind != CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY &&
                      strcmp(json_str(view, "referred_by"), o->org_id) != 0;
    bool handed = s->step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE;
    if (admin_step || handed || declined >= 0) {
        int rc = (handed && json_object_set_new(view, "referred_to_police", json_true()) != 0) ||
                         (admin_step &&
                          json_object_set_new(view, "referred_by", json_string(o->org_id)) != 0)
                     ? cb_error_set(&e, CB_ERR_NOMEM, "", "out of memory")
                     : intake_case_put(&in->st, txn, cmd->target_id, view, &e);
        if (rc != 0) {
            reply_store_error(reply, &e);
            goto out;
        }
    }
    /* Every step is copied to the procuratorate (抄送) and told to the other side
     * of the handover: public security, or the administrative organisation. */
    char other[2][CB_ORG_ID_MAX + 1];
    intake_org_ids_of_kinds(&in->st, txn,
                            (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_PROCURATORATE,
                                          CASEBUS__V1__ORG_KIND__ORG_KIND_PUBLIC_SECURITY},
                            2, other);
    const char *holder = facts.holder && *facts.holder ? facts.holder : facts.finder;
    const char *inform[] = {other[0], other[1], json_str(view, "referred_by"), holder ? holder : "",
                            facts.competent ? facts.competent : "", NULL};
    if (ensure_meta(&s->meta) == NULL || set_string(&s->case_id, cmd->target_id) ||
        intake_inform_set(&in->st, txn, &s->inform, &s->n_inform, inform, o->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = s->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CRIME_REFERRAL_STEP;
    env.crime_referral_step = s;
    char word[ENUM_WORD_MAX];
    snprintf(msg, sizeof(msg), "crime referral: %s by %s",
             enum_word(&casebus__v1__crime_step__descriptor, s->step, word),
             o->name);
    record(in, txn, &env, s->meta, cmd, actor, now, cmd->target_id, NULL, msg,
           reply);
out:
    casebus__v1__organisation__free_unpacked(o, NULL);
out_view:
    json_decref(view);
}

static void do_file_decision(intake_t *in, MDB_txn *txn, Casebus__V1__DecisionFiled *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_or_404(in, txn, f->decision_id, "decision", reply);
    if (ref == NULL)
        return;
    if (strcmp(json_str(ref, "case_id"), cmd->target_id) != 0) {
        intake_reply_error(reply, 400, "invalid_field", "decision_id",
                           "decision_id belongs to another case");
        goto out;
    }
    intake_facts_t facts;
    json_t *none = json_object();
    facts_of(none, NULL, ref, &facts);
    bool may = org_may(in, txn, f->by, "by", actor, CMD_FILE_DECISION, 0, &facts, reply);
    json_decref(none);
    if (!may)
        goto out;
    if (ensure_meta(&f->meta) == NULL || set_string(&f->case_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = f->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DECISION_FILED;
    env.decision_filed = f;
    snprintf(msg, sizeof(msg), "decision %s filed with the legal office by %s", f->decision_id,
             f->by->name);
    record(in, txn, &env, f->meta, cmd, actor, now, f->decision_id, NULL, msg,
           reply);
out:
    json_decref(ref);
}

static void do_apply_joint_operation(intake_t *in, MDB_txn *txn,
                                     Casebus__V1__JointOperationApplied *j,
                                     Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                     int64_t now, intake_reply_t *reply)
{
    char msg[300], id[48];
    cb_error_t e;
    Casebus__V1__Organisation *o = resolve_org(in, txn, j->by, "by", actor, true, reply);
    if (o == NULL)
        return;
    if (new_id(in, txn, "J", now, id, sizeof(id), &e) != 0) {
        reply_store_error(reply, &e);
        goto out;
    }
    if (ensure_meta(&j->meta) == NULL || set_string(&j->operation_id, id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = "";
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_JOINT_OPERATION_APPLIED;
    env.joint_operation_applied = j;
    snprintf(msg, sizeof(msg), "joint operation %s applied for by %s", id, o->name);
    record(in, txn, &env, j->meta, cmd, actor, now, id, NULL, msg, reply);
out:
    casebus__v1__organisation__free_unpacked(o, NULL);
}

/* "2025" or "2026-11": the period a filing is for. */
static bool period_ok(const char *p, bool monthly)
{
    size_t n = strlen(p);
    if (n != (monthly ? 7u : 4u))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(i == 4 ? p[i] == '-' : p[i] >= '0' && p[i] <= '9'))
            return false;
    return !monthly || (atoi(p + 5) >= 1 && atoi(p + 5) <= 12);
}

static void do_record_filing(intake_t *in, MDB_txn *txn, Casebus__V1__FilingRecorded *f,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply)
{
    char msg[300], id[48];
    cb_error_t e;
    Casebus__V1__Organisation *o = resolve_org(in, txn, f->by, "by", actor, true, reply);
    if (o == NULL)
        return;
    bool monthly = f->kind == CASEBUS__V1__FILING_KIND__FILING_KIND_MONTHLY_STATUS;
    if (!period_ok(f->period, monthly)) {
        intake_reply_error(reply, 400, "invalid_field", "period",
                           monthly ? "period must be a month: YYYY-MM" : "period must be a year: YYYY");
        goto out;
    }
    if (new_id(in, txn, "F", now, id, sizeof(id), &e) != 0) {
        reply_store_error(reply, &e);
        goto out;
    }
    if (ensure_meta(&f->meta) == NULL || set_string(&f->filing_id, id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = "";
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_FILING_RECORDED;
    env.filing_recorded = f;
    snprintf(msg, sizeof(msg), "filing %s for %s by %s", id, f->period, o->name);
    record(in, txn, &env, f->meta, cmd, actor, now, id, NULL, msg, reply);
out:
    casebus__v1__organisation__free_unpacked(o, NULL);
}

static void do_record_approval(intake_t *in, MDB_txn *txn, Casebus__V1__ApprovalRecorded *a,
                               Casebus__V1__Command *cmd, const intake_actor_t *actor,
                               int64_t now, intake_reply_t *reply)
{
    char msg[300], id[48];
    cb_error_t e;
    Casebus__V1__Organisation *o = resolve_org(in, txn, a->by, "by", actor, true, reply);
    if (o == NULL)
        return;
    int kind = o->kind;
    casebus__v1__organisation__free_unpacked(o, NULL);
    if (kind != CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT) {
        intake_reply_error(reply, 400, "not_a_department", "by",
                           "approvals are recorded by the county department that approved "
                           "(seed 002 §五(一))");
        return;
    }
    if (!time_ok(in, a->approved_at_ms, now, "approved_at", true, reply))
        return;
    /* The enforcement side: the county's enforcement bureau, and the
     * organisation competent for the case the approval concerns. */
    char bureau[1][CB_ORG_ID_MAX + 1], competent[CB_ORG_ID_MAX + 1] = "";
    intake_org_ids_of_kinds(&in->st, txn,
                            (const int[]){CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU}, 1,
                            bureau);
    if (!str_empty(a->case_id)) {
        json_t *view = case_or_404(in, txn, a->case_id, reply);
        if (view == NULL)
            return;
        snprintf(competent, sizeof(competent), "%s",
                 json_str(json_object_get(view, "competent"), "org_id"));
        json_decref(view);
    }
    if (new_id(in, txn, "AP", now, id, sizeof(id), &e) != 0) {
        reply_store_error(reply, &e);
        return;
    }
    const char *inform[] = {bureau[0], competent, NULL};
    if (ensure_meta(&a->meta) == NULL || set_string(&a->approval_id, id) ||
        intake_inform_set(&in->st, txn, &a->inform, &a->n_inform, inform, a->by->org_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = a->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_APPROVAL_RECORDED;
    env.approval_recorded = a;
    char *orgs[INTAKE_MAX_TOKEN_ORGS];
    meta_saved_t saved;
    fill_meta(a->meta, cmd, actor, orgs, now, &saved);
    bool ok = append(in, txn, &env, reply);
    restore_meta(a->meta, &saved);
    if (!ok)
        return;
    if (!str_empty(a->case_id)) {
        snprintf(msg, sizeof(msg), "approval %s recorded by %s", id, a->by->name);
        if (timeline_add(in, txn, a->case_id, "intake", env.seq, env.recorded_at_ms,
                         "approval_recorded", msg, &e) != 0) {
            reply_store_error(reply, &e);
            return;
        }
    }
    reply_ok(reply, cb_route_of(cmd->kind_case)->status, cb_route_of(cmd->kind_case)->id_name, id,
             a->case_id, &env);
}

/* ---------- the command platform: dispatch, return review, 督办 answers ---------- */

static bool unit_kind(int kind)
{
    return kind == CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT ||
           kind == CASEBUS__V1__ORG_KIND__ORG_KIND_DISPATCHED_UNIT;
}

/* A lead or helper of a dispatch: registered, not a unit, not the platform. */
static bool dispatch_party_ok(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                              const char *field, const char *platform, const intake_actor_t *actor,
                              intake_reply_t *reply)
{
    char msg[300];
    Casebus__V1__Organisation *o = resolve_org(in, txn, ref, field, actor, false, reply);
    if (o == NULL)
        return false;
    bool unit = unit_kind(o->kind), self = strcmp(o->org_id, platform) == 0;
    if (unit)
        snprintf(msg, sizeof(msg),
                 "%s: %s (%s) is a unit of %s and takes no case in its own name; dispatch to %s",
                 field, o->name, o->org_id, o->parent_id, o->parent_id);
    else if (self)
        snprintf(msg, sizeof(msg),
                 "%s: the command platform dispatches to another organisation, not to itself",
                 field);
    casebus__v1__organisation__free_unpacked(o, NULL);
    if (unit || self) {
        intake_reply_error(reply, 400, "invalid_field", field, msg);
        return false;
    }
    return true;
}

static void do_dispatch_case(intake_t *in, MDB_txn *txn, Casebus__V1__CaseDispatched *d,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply)
{
    char msg[400], field[32];
    cb_error_t e;
    json_t *view = case_or_404(in, txn, cmd->target_id, reply);
    if (view == NULL)
        return;
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    bool may = org_may(in, txn, d->by, "by", actor, CMD_DISPATCH_CASE, 0, &facts, reply);
    json_decref(view);
    if (!may || !dispatch_party_ok(in, txn, d->lead, "lead", d->by->org_id, actor, reply))
        return;
    for (size_t i = 0; i < d->n_helpers; i++) {
        snprintf(field, sizeof(field), "helpers[%zu]", i);
        if (!dispatch_party_ok(in, txn, d->helpers[i], field, d->by->org_id, actor, reply))
            return;
        bool twice = strcmp(d->helpers[i]->org_id, d->lead->org_id) == 0;
        for (size_t k = 0; k < i && !twice; k++)
            twice = strcmp(d->helpers[i]->org_id, d->helpers[k]->org_id) == 0;
        if (twice) {
            snprintf(msg, sizeof(msg), "%s: '%s' is named twice (as lead or helper)", field,
                     d->helpers[i]->org_id);
            intake_reply_error(reply, 400, "invalid_field", field, msg);
            return;
        }
    }
    char id[48];
    if (new_id(in, txn, "T", now, id, sizeof(id), &e) != 0) {
        reply_store_error(reply, &e);
        return;
    }
    if (ensure_meta(&d->meta) == NULL || set_string(&d->transfer_id, id) ||
        set_string(&d->case_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = d->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CASE_DISPATCHED;
    env.case_dispatched = d;
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:b}", "kind", "transfer", "case_id", d->case_id,
                            "sender", d->by->org_id, "proposed_receiver", d->lead->org_id,
                            "dispatched", 1);
    snprintf(msg, sizeof(msg), "dispatched as %s to %s (lead)%s%zu helpers by %s", id,
             d->lead->name, d->n_helpers ? " with " : ", ", d->n_helpers, d->by->name);
    record(in, txn, &env, d->meta, cmd, actor, now, id, ref, msg, reply);
    json_decref(ref);
}

static void do_review_return(intake_t *in, MDB_txn *txn, Casebus__V1__ReturnReviewed *rv,
                             Casebus__V1__Command *cmd, const intake_actor_t *actor, int64_t now,
                             intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_or_404(in, txn, cmd->target_id, "transfer", reply);
    if (ref == NULL)
        return;
    if (!json_is_true(json_object_get(ref, "dispatched"))) {
        snprintf(msg, sizeof(msg),
                 "transfer %s is not a dispatch of the command platform: its return needs no "
                 "review (the sender sends it again or disputes it)",
                 cmd->target_id);
        intake_reply_error(reply, 409, "not_a_dispatch", "transfer_id", msg);
        goto out;
    }
    const char *case_id = json_str(ref, "case_id");
    json_t *view = intake_case_get(&in->st, txn, case_id);
    intake_facts_t facts;
    facts_of(view ? view : json_object(), cmd->target_id, ref, &facts);
    bool may = org_may(in, txn, rv->by, "by", actor, CMD_REVIEW_RETURN, 0, &facts, reply);
    json_decref(view);
    if (!may)
        goto out;
    if (ensure_meta(&rv->meta) == NULL || set_string(&rv->transfer_id, cmd->target_id)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = (char *)case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_RETURN_REVIEWED;
    env.return_reviewed = rv;
    snprintf(msg, sizeof(msg), "return of %s %s by %s", cmd->target_id,
             rv->approved ? "approved (back to the command platform)"
                          : "rejected (stays with the receiver)",
             rv->by->name);
    record(in, txn, &env, rv->meta, cmd, actor, now, cmd->target_id, NULL, msg,
           reply);
out:
    json_decref(ref);
}

static void do_answer_supervision(intake_t *in, MDB_txn *txn, Casebus__V1__SupervisionAnswered *a,
                                  Casebus__V1__Command *cmd, const intake_actor_t *actor,
                                  int64_t now, intake_reply_t *reply)
{
    char msg[300];
    json_t *ref = ref_for_command(in, txn, cmd, "supervision", a->by, actor,
                                  CMD_ANSWER_SUPERVISION, reply);
    if (ref == NULL)
        return;
    if (json_is_true(json_object_get(ref, "answered"))) {
        snprintf(msg, sizeof(msg), "supervision order %s was answered already (%s)",
                 cmd->target_id, json_str(ref, "answered_at"));
        intake_reply_error(reply, 409, "already_answered", "supervision_id", msg);
        goto out;
    }
    /* Who issued the order learns the answer: the supervisors of the limit. */
    const char *ids[INTAKE_MAX_PARTIES + 1];
    size_t n = 0, i;
    json_t *sup;
    json_array_foreach(json_object_get(ref, "supervisors"), i, sup) {
        if (n < INTAKE_MAX_PARTIES && json_is_string(sup))
            ids[n++] = json_string_value(sup);
    }
    ids[n] = NULL;
    if (intake_inform_set(&in->st, txn, &a->inform, &a->n_inform, ids, a->by->org_id) != 0 ||
        ensure_meta(&a->meta) == NULL || set_string(&a->supervision_id, cmd->target_id) ||
        set_string(&a->obligation_id, json_str(ref, "obligation_id")) ||
        set_string(&a->case_id, json_str(ref, "case_id"))) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        goto out;
    }
    char when[40];
    cb_time_format_cst(now, when, sizeof(when));
    json_object_set_new(ref, "answered", json_true());
    json_object_set_new(ref, "answered_at", json_string(when));
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = a->case_id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_SUPERVISION_ANSWERED;
    env.supervision_answered = a;
    snprintf(msg, sizeof(msg), "supervision order %s (督办) answered by %s", cmd->target_id,
             a->by->name);
    record(in, txn, &env, a->meta, cmd, actor, now, cmd->target_id, ref,
           msg, reply);
    if (reply->status == 201) {
        json_t *view = intake_case_get(&in->st, txn, a->case_id);
        json_t *sv = json_object_get(
            json_object_get(json_object_get(view, "obligations"), a->obligation_id), "supervision");
        cb_error_t e;
        if (json_is_object(sv) && strcmp(json_str(sv, "id"), cmd->target_id) == 0) {
            json_object_set_new(sv, "state", json_string("answered"));
            json_object_set_new(sv, "answered_at", json_time(now));
            if (intake_case_put(&in->st, txn, a->case_id, view, &e) != 0)
                reply_store_error(reply, &e);
        }
        json_decref(view);
    }
out:
    json_decref(ref);
}

void intake_execute(intake_t *in, MDB_txn *txn, const Casebus__V1__Command *ccmd,
                    const intake_actor_t *actor, const uint8_t req_hash[32],
                    intake_reply_t *reply)
{
    /* The handlers fill server-owned fields of the command's messages. */
    Casebus__V1__Command *cmd = (Casebus__V1__Command *)ccmd;
    cb_error_t e;
    int64_t now = cb_now_ms();
    memset(reply, 0, sizeof(*reply));
    bool idem = !str_empty(cmd->idempotency_key);
    if (idem) {
        if (strlen(cmd->idempotency_key) > INTAKE_IDEM_KEY_MAX) {
            intake_reply_error(reply, 400, "invalid_field", "Idempotency-Key",
                               "Idempotency-Key is longer than 128 characters");
            return;
        }
        int rc = intake_idem_get(&in->st, txn, actor->token_id, cmd->idempotency_key, req_hash,
                                 reply, &e);
        if (rc == 0)
            return; /* the first answer, again; nothing new is written */
        if (rc == CB_ERR_CONFLICT) {
            intake_reply_error(reply, 409, "idempotency_key_reused", "Idempotency-Key",
                               e.message);
            return;
        }
        if (rc != CB_ERR_NOT_FOUND) {
            reply_store_error(reply, &e);
            return;
        }
    }
    switch (cmd->kind_case) {
    case CASEBUS__V1__COMMAND__KIND_REPORT_CASE:
        do_report_case(in, txn, cmd->report_case, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_SEND_TRANSFER:
        do_send_transfer(in, txn, cmd->send_transfer, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_RECEIVE_TRANSFER:
    case CASEBUS__V1__COMMAND__KIND_ACCEPT_TRANSFER:
    case CASEBUS__V1__COMMAND__KIND_RETURN_TRANSFER:
    case CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE:
        do_transfer_step(in, txn, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_DECIDE_DISPUTE:
        do_decide_dispute(in, txn, cmd->decide_dispute, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_REQUEST_ASSISTANCE:
        do_request_assistance(in, txn, cmd->request_assistance, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_ANSWER_ASSISTANCE:
        do_answer_assistance(in, txn, cmd->answer_assistance, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_RECORD_DECISION:
        do_record_decision(in, txn, cmd->record_decision, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_GIVE_FEEDBACK:
        do_give_feedback(in, txn, cmd->give_feedback, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_RECORD_APPROVAL:
        do_record_approval(in, txn, cmd->record_approval, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_REQUEST_EXTENSION:
        do_request_extension(in, txn, cmd->request_extension, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_DECIDE_EXTENSION:
        do_decide_extension(in, txn, cmd->decide_extension, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_CANCEL_CASE:
        do_cancel_case(in, txn, cmd->cancel_case, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_CRIME_STEP:
        do_crime_step(in, txn, cmd->crime_step, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_FILE_DECISION:
        do_file_decision(in, txn, cmd->file_decision, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_APPLY_JOINT_OPERATION:
        do_apply_joint_operation(in, txn, cmd->apply_joint_operation, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_RECORD_FILING:
        do_record_filing(in, txn, cmd->record_filing, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_DISPATCH_CASE:
        do_dispatch_case(in, txn, cmd->dispatch_case, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_REVIEW_RETURN:
        do_review_return(in, txn, cmd->review_return, cmd, actor, now, reply);
        break;
    case CASEBUS__V1__COMMAND__KIND_ANSWER_SUPERVISION:
        do_answer_supervision(in, txn, cmd->answer_supervision, cmd, actor, now, reply);
        break;
    default:
        intake_reply_error(reply, 400, "invalid_command", "kind", "the command has no body");
        break;
    }
    if (reply->status >= 200 && reply->status < 300 && idem &&
        intake_idem_put(&in->st, txn, actor->token_id, cmd->idempotency_key, req_hash, reply,
                        &e) != 0)
        reply_store_error(reply, &e);
}

int intake_check_command(Casebus__V1__Command *cmd, cb_contract_report_t *rep)
{
    cb_contract_report_init(rep);
    cb_contract_prepare(&cmd->base);
    return cb_contract_check(&cmd->base, rep);
}

bool intake_submit(intake_t *in, Casebus__V1__Command *cmd, const intake_actor_t *actor,
                   const uint8_t req_hash[32], intake_reply_t *reply, cb_group_done_fn done,
                   void *arg)
{
    cb_error_t e;
    cb_contract_report_t rep;
    MDB_txn *child = NULL;
    if (intake_check_command(cmd, &rep) != 0) {
        memset(reply, 0, sizeof(*reply));
        intake_reply_refused(reply, &rep);
        return false;
    }
    if (cb_group_begin(in->d.group, &child, &e) != 0) {
        memset(reply, 0, sizeof(*reply));
        reply_store_error(reply, &e);
        return false;
    }
    intake_execute(in, child, cmd, actor, req_hash, reply);
    bool ok = reply->status >= 200 && reply->status < 300;
    if (cb_group_end(in->d.group, &child, ok, done, arg, &e) != 0) {
        reply_store_error(reply, &e);
        return false;
    }
    return ok;
}

/* ---------- GET /v1/cases/{id} ---------- */

/* A case is read by the organisations with a role in it and by operators. */
static bool involved(intake_t *in, MDB_txn *txn, json_t *view, const intake_actor_t *actor)
{
    if (actor->operator_)
        return true;
    const char *orgs[INTAKE_MAX_TOKEN_ORGS];
    int kinds[INTAKE_MAX_TOKEN_ORGS];
    for (size_t i = 0; i < actor->norgs; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, actor->orgs[i]);
        orgs[i] = actor->orgs[i];
        kinds[i] = o ? (int)o->kind : 0;
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
    }
    intake_facts_t facts;
    facts_of(view, NULL, NULL, &facts);
    return intake_may_read(&facts, orgs, kinds, actor->norgs);
}

static void mask(json_t *rep, const char *key, size_t keep_head, size_t keep_tail)
{
    const char *v = json_string_value(json_object_get(rep, key));
    if (v == NULL || *v == '\0')
        return;
    size_t n = strlen(v);
    char out[64];
    size_t j = 0;
    for (size_t i = 0; i < n && j < sizeof(out) - 1; i++)
        out[j++] = (i < keep_head || i + keep_tail >= n) ? v[i] : '*';
    out[j] = '\0';
    json_object_set_new(rep, key, json_string(out));
}

void intake_case_view(intake_t *in, MDB_txn *txn, const char *case_id,
                      const intake_actor_t *actor, intake_reply_t *reply)
{
    memset(reply, 0, sizeof(*reply));
    json_t *view = case_or_404(in, txn, case_id, reply);
    if (view == NULL)
        return;
    if (!involved(in, txn, view, actor)) {
        json_decref(view);
        reply_no_case(reply, case_id); /* the very answer an unknown case gets */
        return;
    }
    /* Personal data of the reporter: shown in full to the discovering
     * organisation and operators, masked for everyone else. */
    const char *disc = json_string_value(
        json_object_get(json_object_get(view, "discovered_by"), "org_id"));
    json_t *rep = json_object_get(view, "reporter");
    if (rep && !actor->operator_ && !(disc && acts_for(actor, disc))) {
        mask(rep, "name", 0, 0);
        mask(rep, "phone", 3, 4);
        mask(rep, "id_number", 0, 0);
    }
    json_t *party = json_object_get(view, "party");
    if (party && json_is_true(json_object_get(party, "is_person")) && !actor->operator_ &&
        !(disc && acts_for(actor, disc)))
        mask(party, "name", 0, 0);
    json_object_set_new(view, "timeline", intake_timeline_get(&in->st, txn, case_id));
    reply->status = 200;
    reply->body = cb_jsonw_dumps(view);
    json_decref(view);
}

/* ---------- tokens ---------- */

/* A token's label or a revocation's reason: optional, valid UTF-8, bounded. */
static int check_note(const char *text, const char *field, size_t max, cb_error_t *err)
{
    size_t n = text ? strlen(text) : 0, bad;
    if (n > max)
        return cb_error_set(err, CB_ERR_INVALID, field, "at most %zu bytes (got %zu)", max, n);
    if (n && !cb_utf8_valid(text, n, &bad))
        return cb_error_set(err, CB_ERR_INVALID, field, "not valid UTF-8 (byte %zu)", bad);
    return 0;
}

int intake_token_create(intake_t *in, MDB_txn *txn, const char *const *orgs, size_t norgs,
                        const char *label, bool operator_, int64_t expires_at_ms, char **secret,
                        cb_error_t *err)
{
    int64_t now = cb_now_ms();
    if (expires_at_ms != 0 && expires_at_ms <= now)
        return cb_error_set(err, CB_ERR_INVALID, "expires", "the expiry must be in the future");
    if (norgs == 0 && !operator_)
        return cb_error_set(err, CB_ERR_INVALID, "org", "a token needs at least one --org");
    int rc = check_note(label, "label", INTAKE_MAX_TOKEN_NOTE, err);
    if (rc != 0)
        return rc;
    if (norgs > INTAKE_MAX_TOKEN_ORGS)
        return cb_error_set(err, CB_ERR_INVALID, "org", "a token acts for at most %d organisations",
                            INTAKE_MAX_TOKEN_ORGS);
    /* Once the registry is replicated, a token acts only for organisations in it. */
    MDB_stat ms;
    bool registry = mdb_stat(txn, in->st.orgs, &ms) == 0 && ms.ms_entries > 0;
    for (size_t i = 0; i < norgs; i++) {
        if ((rc = cb_check_org_id(orgs[i], "org", err)) != 0)
            return rc;
        Casebus__V1__Organisation *o = registry ? intake_org_get(&in->st, txn, orgs[i]) : NULL;
        if (registry && o == NULL)
            return cb_error_set(err, CB_ERR_INVALID, "org",
                                "organisation '%.64s' is not in the registry (casebus org import; "
                                "the registry has %zu organisations)",
                                orgs[i], (size_t)ms.ms_entries);
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
    }
    uint8_t idb[8], sec[32];
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(sec, sizeof(sec));
    char id[17], sec_text[64];
    sodium_bin2hex(id, sizeof(id), idb, sizeof(idb));
    sodium_bin2base64(sec_text, sizeof(sec_text), sec, sizeof(sec),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    uint8_t hash[32];
    crypto_hash_sha256(hash, (const uint8_t *)sec_text, strlen(sec_text));

    Casebus__V1__TokenCreated tc = CASEBUS__V1__TOKEN_CREATED__INIT;
    tc.token_id = id;
    tc.token_hash.data = hash;
    tc.token_hash.len = 32;
    tc.org_ids = (char **)orgs;
    tc.n_org_ids = norgs;
    tc.label = (char *)(label ? label : "");
    tc.operator_ = operator_;
    tc.created_at_ms = now;
    tc.expires_at_ms = expires_at_ms;
    rc = intake_token_put(&in->st, txn, &tc, err);
    if (rc != 0)
        return rc;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TOKEN_CREATED;
    env.token_created = &tc;
    if ((rc = cb_log_append(in->d.log, txn, &env, err)) != 0)
        return rc;
    size_t n = 4 + 16 + 1 + strlen(sec_text) + 1;
    *secret = malloc(n);
    if (*secret == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    snprintf(*secret, n, "cbt_%s_%s", id, sec_text);
    sodium_memzero(sec, sizeof(sec));
    return 0;
}

int intake_token_revoke_cmd(intake_t *in, MDB_txn *txn, const char *token_id, const char *reason,
                            cb_error_t *err)
{
    if (str_empty(token_id))
        return cb_error_set(err, CB_ERR_INVALID, "token_id", "which token? (casebus token list)");
    int rc = check_note(reason, "reason", INTAKE_MAX_TOKEN_NOTE, err);
    if (rc != 0)
        return rc;
    rc = intake_token_revoke(&in->st, txn, token_id, cb_now_ms(), reason, err);
    if (rc != 0)
        return rc;
    Casebus__V1__TokenRevoked tr = CASEBUS__V1__TOKEN_REVOKED__INIT;
    tr.token_id = (char *)token_id;
    tr.reason = (char *)(reason ? reason : "");
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TOKEN_REVOKED;
    env.token_revoked = &tr;
    return cb_log_append(in->d.log, txn, &env, err);
}

typedef struct token_list {
    json_t *arr;
    int64_t now;
} token_list_t;

static int list_token(void *ctx, const Casebus__V1__TokenCreated *tc, int64_t revoked_at_ms)
{
    token_list_t *l = ctx;
    json_t *orgs = json_array();
    for (size_t i = 0; orgs && i < tc->n_org_ids; i++)
        json_array_append_new(orgs, json_string(tc->org_ids[i]));
    const char *state = revoked_at_ms                                          ? "revoked"
                        : tc->expires_at_ms && l->now >= tc->expires_at_ms ? "expired"
                                                                            : "live";
    json_t *o = json_pack("{s:s,s:s,s:o*,s:b,s:s}", "token_id", tc->token_id, "label",
                          tc->label ? tc->label : "", "org_ids", orgs, "operator", tc->operator_,
                          "state", state);
    if (o == NULL)
        return -1;
    if (tc->created_at_ms)
        json_object_set_new(o, "created_at", json_time(tc->created_at_ms));
    if (tc->expires_at_ms)
        json_object_set_new(o, "expires_at", json_time(tc->expires_at_ms));
    if (revoked_at_ms)
        json_object_set_new(o, "revoked_at", json_time(revoked_at_ms));
    return json_array_append_new(l->arr, o);
}

json_t *intake_tokens_json(intake_t *in, MDB_txn *txn, cb_error_t *err)
{
    token_list_t l = {json_array(), cb_now_ms()};
    if (l.arr == NULL || intake_token_each(&in->st, txn, list_token, &l, err) != 0) {
        json_decref(l.arr);
        if (l.arr == NULL)
            cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    return json_pack("{s:o}", "tokens", l.arr);
}

/* ---------- events from router and deadline ---------- */

static json_t *view_transfer(json_t *view, const char *transfer_id)
{
    json_t *ts = json_object_get(view, "transfers");
    if (!json_is_object(ts)) {
        ts = json_object();
        json_object_set_new(view, "transfers", ts);
    }
    json_t *t = json_object_get(ts, transfer_id);
    if (t == NULL) {
        t = json_object();
        json_object_set_new(ts, transfer_id, t);
    }
    return t;
}

static json_t *view_obligation(json_t *view, const Casebus__V1__Obligation *o)
{
    json_t *os = json_object_get(view, "obligations");
    if (!json_is_object(os)) {
        os = json_object();
        json_object_set_new(view, "obligations", os);
    }
    json_t *ob = json_object_get(os, o->obligation_id);
    if (ob == NULL) {
        ob = json_object();
        json_object_set_new(os, o->obligation_id, ob);
    }
    json_object_set_new(ob, "rule_id", json_string(o->rule_id ? o->rule_id : ""));
    json_object_set_new(ob, "title", json_string(o->rule_title ? o->rule_title : ""));
    json_object_set_new(ob, "responsible", json_org(o->responsible));
    json_object_set_new(ob, "due_at", json_time(o->due_at_ms));
    if (!str_empty(o->transfer_id))
        json_object_set_new(ob, "transfer_id", json_string(o->transfer_id));
    return ob;
}

static const char *state_word(int s, char out[ENUM_WORD_MAX])
{
    return enum_word(&casebus__v1__transfer_state__descriptor, s, out);
}

/* The 督办 order an escalation issued, kept so that its answer can be checked
 * at the door (who answers, once). A restated order keeps its first record. */
static int supervision_ref(intake_t *in, MDB_txn *txn, const Casebus__V1__Envelope *env,
                           const Casebus__V1__Escalated *es, cb_error_t *err)
{
    json_t *known = intake_ref_get(&in->st, txn, es->supervision_id);
    if (known) {
        json_decref(known);
        return 0;
    }
    const Casebus__V1__Obligation *o = es->obligation;
    json_t *sup = json_array();
    for (size_t i = 0; sup && o && i < o->n_supervisors; i++)
        json_array_append_new(sup, json_string(o->supervisors[i]->org_id));
    json_t *ref = json_pack("{s:s,s:s,s:s,s:s,s:o,s:I}", "kind", "supervision", "case_id",
                            env->case_id, "obligation_id", o ? o->obligation_id : "",
                            "responsible", o && o->responsible ? o->responsible->org_id : "",
                            "supervisors", sup ? sup : json_array(), "answer_due_ms",
                            (json_int_t)es->answer_due_ms);
    int rc = ref ? intake_ref_put(&in->st, txn, es->supervision_id, ref, err)
                 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    json_decref(ref);
    return rc;
}

int intake_apply_upstream(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    intake_t *in = ctx;
    const Casebus__V1__Envelope *env = ev->env;
    char summary[400] = "", w1[ENUM_WORD_MAX], w2[ENUM_WORD_MAX];
    int rc = 0;
    if (env->body_case == CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED) {
        for (size_t i = 0; i < env->orgs_imported->n_orgs && rc == 0; i++) {
            const Casebus__V1__Organisation *o = env->orgs_imported->orgs[i];
            rc = intake_org_put(&in->st, txn, o, err);
            if (rc == 0 && o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP)
                rc = intake_name_put(&in->st, txn, 't', o->division_code, o->name, err);
        }
        if (rc == 0)
            log_info("orgs_replicated version=%u count=%zu", env->orgs_imported->version,
                     env->orgs_imported->n_orgs);
        return rc;
    }
    if (env->body_case == CASEBUS__V1__ENVELOPE__BODY_CATALOG_IMPORTED) {
        const Casebus__V1__CatalogImported *c = env->catalog_imported;
        for (size_t i = 0; i < c->n_matters && rc == 0; i++)
            rc = intake_name_put(&in->st, txn, 'm', c->matters[i]->code, c->matters[i]->name, err);
        return rc;
    }
    if ((rc = intake_list_obligation(&in->st, txn, env, err)) != 0)
        return rc;
    if (str_empty(env->case_id))
        return 0;
    json_t *view = intake_case_get(&in->st, txn, env->case_id);
    if (view == NULL)
        return 0; /* a case this intake never saw (restored elsewhere): nothing to show */
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED: {
        const Casebus__V1__JurisdictionResolved *j = env->jurisdiction_resolved;
        json_object_set_new(view, "competent", json_org(j->competent));
        json_object_set_new(view, "jurisdiction_rule",
                            json_string(enum_word(&casebus__v1__jurisdiction_rule__descriptor, j->rule, w1)));
        bool platform = j->rule == CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_MANUAL_DISPATCH &&
                        j->competent &&
                        j->competent->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
        if (platform) /* with the command platform, to dispatch */
            json_object_set_new(view, "holder", json_org(j->competent));
        json_object_set_new(view, "state",
                            json_string(platform ? "manual_dispatch"
                                        : j->transfer_needed ? "transfer_required"
                                                             : "with_competent"));
        if (j->case_ && !str_empty(j->case_->matter_name))
            json_object_set_new(view, "matter_name", json_string(j->case_->matter_name));
        if (j->case_ && !str_empty(j->case_->township_name))
            json_object_set_new(view, "township_name", json_string(j->case_->township_name));
        snprintf(summary, sizeof(summary), "jurisdiction: %s%s",
                 j->competent ? j->competent->name : "?",
                 j->transfer_needed ? " (transfer required)" : "");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REQUIRED: {
        const Casebus__V1__TransferRequired *t = env->transfer_required;
        json_object_set_new(view, "transfer_required",
                            json_pack("{s:o,s:o,s:s}", "from", json_org(t->from), "to",
                                      json_org(t->to), "urgency",
                                      t->urgency == CASEBUS__V1__URGENCY__URGENCY_EMERGENCY
                                          ? "emergency"
                                          : "normal"));
        snprintf(summary, sizeof(summary), "transfer required from %s to %s",
                 t->from ? t->from->name : "?", t->to ? t->to->name : "?");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED: {
        const Casebus__V1__TransferRouted *t = env->transfer_routed;
        /* A transfer router made itself (a case public security sends back):
         * intake learns of it here, so its receiver can act on it. */
        json_t *known = intake_ref_get(&in->st, txn, t->transfer_id);
        if (known == NULL) {
            json_t *ref = json_pack("{s:s,s:s,s:s,s:s}", "kind", "transfer", "case_id",
                                    env->case_id, "sender", t->sender ? t->sender->org_id : "",
                                    "proposed_receiver", t->receiver ? t->receiver->org_id : "");
            rc = ref ? intake_ref_put(&in->st, txn, t->transfer_id, ref, err)
                     : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            json_decref(ref);
            if (rc != 0)
                break;
        }
        json_decref(known);
        json_t *tv = view_transfer(view, t->transfer_id);
        json_object_set_new(tv, "state", json_string(state_word(t->state, w1)));
        json_object_set_new(tv, "sender", json_string(t->sender ? t->sender->org_id : ""));
        json_object_set_new(tv, "receiver", json_string(t->receiver ? t->receiver->org_id : ""));
        json_object_set_new(tv, "sign_due", json_time(t->sign_due_ms));
        if (t->dispatched) {
            json_t *hs = json_array();
            for (size_t i = 0; hs && i < t->n_helpers; i++)
                json_array_append_new(hs, json_string(t->helpers[i]->org_id));
            json_object_set_new(tv, "dispatched", json_true());
            json_object_set_new(tv, "helpers", hs ? hs : json_array());
            json_object_set_new(tv, "returns", json_integer(t->returns));
        }
        json_object_set_new(view, "holder", json_org(t->receiver));
        json_object_set_new(view, "state", json_string("transfer_routed"));
        snprintf(summary, sizeof(summary), "transfer %s routed to %s", t->transfer_id,
                 t->receiver ? t->receiver->name : "?");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_STATE_CHANGED: {
        const Casebus__V1__TransferStateChanged *t = env->transfer_state_changed;
        json_t *tv = view_transfer(view, t->transfer_id);
        json_object_set_new(tv, "state", json_string(state_word(t->to_state, w1)));
        json_object_set_new(tv, "receiver", json_string(t->receiver ? t->receiver->org_id : ""));
        const char *state = "transfer_in_progress";
        switch (t->to_state) {
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_ACCEPTED:
            json_object_set_new(view, "holder", json_org(t->receiver));
            state = "with_competent";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURNED:
            json_object_set_new(view, "holder", json_org(t->sender)); /* back with the sender */
            state = t->dispatched ? "manual_dispatch" : state;
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_CONCLUDED:
            /* the judicial bureau decided for the finder: it is competent and holds it */
            json_object_set_new(view, "holder", json_org(t->sender));
            json_object_set_new(view, "competent", json_org(t->sender));
            state = "with_competent";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURN_REQUESTED:
            json_object_set_new(tv, "reviewer", json_org(t->reviewer));
            json_object_set_new(tv, "returns", json_integer(t->returns));
            state = "return_review";
            break;
        case CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_WITHDRAWN:
            state = NULL; /* the new dispatch that replaces it says where the case is */
            break;
        default:
            break;
        }
        if (t->from_state == CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RETURN_REQUESTED)
            json_object_del(tv, "reviewer");
        if (state)
            json_object_set_new(view, "state", json_string(state));
        snprintf(summary, sizeof(summary), "transfer %s: %s -> %s%s%s", t->transfer_id,
                 state_word(t->from_state, w1), state_word(t->to_state, w2),
                 t->reviewer ? "; reviewed by " : "", t->reviewer ? t->reviewer->name : "");
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REJECTED: {
        const Casebus__V1__TransferRejected *t = env->transfer_rejected;
        snprintf(summary, sizeof(summary), "refused %s on transfer %s: %s", t->command,
                 t->transfer_id, t->message);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_ROUTING_FAILED:
        json_object_set_new(view, "state", json_string("manual_dispatch"));
        json_object_set_new(view, "holder", json_org(env->routing_failed->assigned_to));
        snprintf(summary, sizeof(summary), "routing failed: %s; assigned to %s",
                 env->routing_failed->reason,
                 env->routing_failed->assigned_to ? env->routing_failed->assigned_to->name : "?");
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED: {
        const Casebus__V1__Obligation *o = env->obligation_opened->obligation;
        json_t *ob = view_obligation(view, o);
        json_object_set_new(ob, "state", json_string("open"));
        /* What the door needs to check an extension: the case, who answers for
         * the limit and who may approve more time. */
        json_t *sup = json_array();
        for (size_t i = 0; sup && i < o->n_supervisors; i++)
            json_array_append_new(sup, json_string(o->supervisors[i]->org_id));
        json_t *ref = json_pack("{s:s,s:s,s:s,s:o}", "kind", "obligation", "case_id",
                                env->case_id, "responsible",
                                o->responsible ? o->responsible->org_id : "", "supervisors",
                                sup ? sup : json_array());
        int prc = ref ? intake_ref_put(&in->st, txn, o->obligation_id, ref, err)
                      : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        json_decref(ref);
        if (prc != 0) {
            json_decref(view);
            return prc;
        }
        snprintf(summary, sizeof(summary), "time limit opened: %s",
                 env->obligation_opened->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET: {
        json_t *ob = view_obligation(view, env->obligation_met->obligation);
        json_object_set_new(ob, "state", json_string(env->obligation_met->on_time ? "met"
                                                                                   : "met_late"));
        snprintf(summary, sizeof(summary), "time limit met%s: %s",
                 env->obligation_met->on_time ? "" : " late",
                 env->obligation_met->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING:
        json_object_set_new(view_obligation(view, env->deadline_warning->obligation), "level",
                            json_string("yellow"));
        snprintf(summary, sizeof(summary), "yellow warning: %s",
                 env->deadline_warning->obligation->rule_title);
        break;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED:
        json_object_set_new(view_obligation(view, env->deadline_breached->obligation), "level",
                            json_string("red"));
        snprintf(summary, sizeof(summary), "red: limit passed: %s",
                 env->deadline_breached->obligation->rule_title);
        break;
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED: {
        const Casebus__V1__Escalated *es = env->escalated;
        json_t *ob = view_obligation(view, es->obligation);
        json_object_set_new(ob, "level", json_string(cb_level_name(CB_LEVEL_ESCALATED)));
        if (!str_empty(es->supervision_id)) {
            json_t *sv = json_object_get(ob, "supervision");
            if (!json_is_object(sv) ||
                strcmp(json_str(sv, "id"), es->supervision_id) != 0) {
                sv = json_pack("{s:s,s:s,s:o}", "id", es->supervision_id, "state", "open",
                               "answer_due", json_time(es->answer_due_ms));
                json_object_set_new(ob, "supervision", sv ? sv : json_object());
            }
            if ((rc = supervision_ref(in, txn, env, es, err)) != 0) {
                json_decref(view);
                return rc;
            }
        }
        snprintf(summary, sizeof(summary), "escalated for supervision (督办%s%s): %s",
                 str_empty(es->supervision_id) ? "" : " order ",
                 es->supervision_id ? es->supervision_id : "", es->obligation->rule_title);
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED: {
        const Casebus__V1__ObligationChanged *oc = env->obligation_changed;
        if (oc->obligation == NULL || str_empty(oc->obligation->obligation_id))
            break;
        char word[ENUM_WORD_MAX];
        enum_word(&casebus__v1__obligation_change__descriptor, oc->change, word);
        json_t *ob = view_obligation(view, oc->obligation);
        static const struct {
            int change;
            const char *state;
        } states[] = {
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_PAUSED, "paused"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_RESUMED, "open"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_REOPENED, "open"},
            {CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED, "cancelled"},
        };
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            if ((int)oc->change == states[i].change)
                json_object_set_new(ob, "state", json_string(states[i].state));
        snprintf(summary, sizeof(summary), "time limit %s: %s (%s)", word,
                 oc->obligation->rule_title ? oc->obligation->rule_title : oc->obligation->obligation_id,
                 oc->reason ? oc->reason : "");
        break;
    }
    default:
        break;
    }
    if (summary[0]) {
        if ((rc = intake_case_put(&in->st, txn, env->case_id, view, err)) == 0)
            rc = timeline_add(in, txn, env->case_id, ev->producer, ev->seq, env->recorded_at_ms,
                              cb_event_type(env), summary, err);
    }
    json_decref(view);
    return rc;
}
