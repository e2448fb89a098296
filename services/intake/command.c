/*
 * command.c — running a command from either door: the replies, the checks
 * every command shares (organisations and the roles authz.c decides, times,
 * ids), appending its event, and intake_execute, which hands each command to
 * its do_<command> (cmd_case.c, cmd_transfer.c, cmd_limit.c). Never touches a
 * socket: a command in, a reply and (when accepted) one event plus state
 * changes out.
 *
 * intake decides only what it can know for certain at the door (DESIGN.md "Who
 * decides what"): shape, authentication, which organisations the token acts for,
 * organisation kinds (the internal-unit rule, seed 002 §五(三)1), required
 * materials (seed 002 §五(三)), emergency stop orders (§五(三)3), idempotency.
 * Whether a transfer may be signed, accepted, returned or disputed in its current
 * state is router's decision, given later as an event.
 */
#include "intake.h"
#include "command.h"
#include "pbjson.h"
#include "routes.h"
#include "jsonw.h"
#include "cbtime.h"
#include "codes.h"
#include "log.h"
#include "orgs.h"
#include "utf8.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What fill_meta replaced, so that restore_meta can put it back
 * before the command is freed (its strings belong to the decoder or to
 * protobuf-c). */
typedef struct meta_saved {
    char *token_id, *idempotency_key, *request_id;
    char **acting_orgs;
    size_t n_acting_orgs;
} meta_saved_t;

#define CLOCK_SKEW_MS (5 * 60 * 1000)

void intake_reply_free(intake_reply_t *reply)
{
    free(reply->body);
    reply->body = NULL;
}

/* The error answer; fields (a JSON array, taken) lists every missing field. */
static void reply_error_with(intake_reply_t *reply, int status, const char *code, const char *field,
                             const char *message, json_t *fields)
{
    intake_reply_free(reply);
    char text[1024]; /* messages are made with snprintf: the cut may split a character */
    cb_utf8_copy(text, sizeof(text), message);
    json_t *o = json_pack("{s:{s:s,s:s,s:s,s:o*}}", "error", "code", code, "field",
                          field ? field : "", "message", text, "fields", fields);
    reply->status = status;
    reply->event_seq = 0;
    reply->body = o ? cb_jsonw_dumps(o) : NULL;
    json_decref(o);
}

void intake_reply_error(intake_reply_t *reply, int status, const char *code, const char *field,
                        const char *message)
{
    reply_error_with(reply, status, code, field, message, NULL);
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
    json_t *fields = json_array();
    size_t n = rep->nmissing < CB_CONTRACT_MISSING_MAX ? rep->nmissing : CB_CONTRACT_MISSING_MAX;
    for (size_t i = 0; fields && i < n; i++)
        json_array_append_new(fields, json_string(rep->missing[i]));
    reply_error_with(reply, 400, "missing_field", e->field, e->message, fields);
}

/* Maps a cb_error from the store to 503 (full, shutting down) or 500. */
void intake_reply_store_error(intake_reply_t *reply, const cb_error_t *err)
{
    int status = err->code == CB_ERR_STORE_FULL || err->code == CB_ERR_SHUTDOWN ? 503 : 500;
    intake_reply_error(reply, status, status == 503 ? "unavailable" : "internal", "", err->message);
}

/* Replaces a protobuf-c string field (which may hold the shared empty default). */
int intake_set_string(char **dst, const char *value)
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

bool intake_str_empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* A string member of a JSON object, "" when absent. */
const char *intake_json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int intake_authenticate(intake_t *in, MDB_txn *txn, const char *token, intake_actor_t *actor,
                        cb_error_t *err)
{
    if (intake_str_empty(token))
        return cb_error_set(err, CB_ERR_AUTH, "Authorization",
                            "no token: send 'Authorization: Bearer <token>'");
    return intake_token_lookup(&in->st, txn, token, cb_now_ms(), actor, err);
}

bool intake_acts_for(const intake_actor_t *actor, const char *org_id)
{
    for (size_t i = 0; i < actor->norgs; i++)
        if (strcmp(actor->orgs[i], org_id) == 0)
            return true;
    return false;
}

/* Loads the organisation ref names and fills ref from the registry replica.
 * mine: the token must act for it (403 otherwise). Returns the organisation
 * (caller frees) or NULL with reply filled. */
Casebus__V1__Organisation *intake_resolve_org(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                                              const char *field, const intake_actor_t *actor,
                                              bool mine, intake_reply_t *reply)
{
    char msg[300];
    if (ref == NULL || intake_str_empty(ref->org_id)) {
        snprintf(msg, sizeof(msg), "%s is required", field);
        intake_reply_error(reply, 400, "missing_field", field, msg);
        return NULL;
    }
    cb_error_t e;
    if (cb_check_org_id(ref->org_id, field, &e) != 0) {
        intake_reply_error(reply, 400, "invalid_field", field, e.message);
        return NULL;
    }
    if (mine && !intake_acts_for(actor, ref->org_id)) {
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
    if (intake_set_string(&ref->name, org->name) ||
        intake_set_string(&ref->division_code, org->division_code) ||
        intake_set_string(&ref->parent_id, org->parent_id)) {
        casebus__v1__organisation__free_unpacked(org, NULL);
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return NULL;
    }
    return org;
}

bool intake_org_ok(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                   const intake_actor_t *actor, bool mine, intake_reply_t *reply)
{
    Casebus__V1__Organisation *o = intake_resolve_org(in, txn, ref, field, actor, mine, reply);
    if (o == NULL)
        return false;
    casebus__v1__organisation__free_unpacked(o, NULL);
    return true;
}

bool intake_time_ok(intake_t *in, int64_t at, int64_t now, const char *field, bool required,
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

bool intake_new_id(intake_t *in, MDB_txn *txn, const char *prefix, int64_t now, char *out,
                   size_t size, intake_reply_t *reply)
{
    char day[16], name[32];
    cb_civil_t c;
    cb_error_t e;
    cb_time_to_cst(now, &c);
    snprintf(day, sizeof(day), "%04d%02d%02d", c.year, c.month, c.day);
    snprintf(name, sizeof(name), "%s%s", prefix, day);
    uint64_t n;
    if (intake_counter_next(&in->st, txn, name, &n, &e) != 0) {
        intake_reply_store_error(reply, &e);
        return false;
    }
    snprintf(out, size, "%s%s-%06llu", prefix, day, (unsigned long long)n);
    return true;
}

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
static bool append(intake_t *in, MDB_txn *txn, Casebus__V1__Envelope *env, intake_reply_t *reply)
{
    cb_error_t err;
    if (cb_log_append(in->d.log, txn, env, &err) != 0) {
        if (err.code == CB_ERR_TOO_LARGE)
            intake_reply_error(reply, 413, "too_large", "", err.message);
        else
            intake_reply_store_error(reply, &err);
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

void intake_reply_no_case(intake_reply_t *reply, const char *case_id)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "no case '%.80s'", case_id ? case_id : "");
    intake_reply_error(reply, 404, "not_found", "case_id", msg);
}

/* The case a command names, or NULL with 404 in reply. */
json_t *intake_case_or_404(intake_t *in, MDB_txn *txn, const char *case_id, intake_reply_t *reply)
{
    json_t *view = intake_str_empty(case_id) ? NULL : intake_case_get(&in->st, txn, case_id);
    if (view == NULL)
        intake_reply_no_case(reply, case_id);
    return view;
}

json_t *intake_ref_or_404(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
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

/* What authz needs of view (and of ref, the transfer, decision or assistance
 * request the command is about); the strings point into them. */
void intake_facts_of(json_t *view, const char *transfer_id, json_t *ref, intake_facts_t *f)
{
    memset(f, 0, sizeof(*f));
    f->finder = intake_json_str(json_object_get(view, "discovered_by"), "org_id");
    f->holder = intake_json_str(json_object_get(view, "holder"), "org_id");
    f->competent = intake_json_str(json_object_get(view, "competent"), "org_id");
    f->referral_made = json_is_true(json_object_get(view, "referred_to_police"));
    const char *id;
    json_t *t;
    json_object_foreach(json_object_get(view, "transfers"), id, t)
    {
        const char *sender = intake_json_str(t, "sender"),
                   *receiver = intake_json_str(t, "receiver");
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
        json_array_foreach(json_object_get(t, "helpers"), h, helper)
        {
            if (f->nparties < INTAKE_MAX_PARTIES && json_is_string(helper))
                f->parties[f->nparties++] = json_string_value(helper);
        }
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(view, "parties"), i, p)
    {
        if (f->nparties < INTAKE_MAX_PARTIES && json_is_string(p))
            f->parties[f->nparties++] = json_string_value(p);
    }
    const char *kind = ref ? intake_json_str(ref, "kind") : "";
    if (strcmp(kind, "transfer") == 0 && (f->transfer_sender == NULL || !*f->transfer_sender))
        f->transfer_sender = intake_json_str(ref, "sender");
    else if (strcmp(kind, "decision") == 0)
        f->decider = intake_json_str(ref, "by");
    else if (strcmp(kind, "assistance") == 0)
        f->addressee = intake_json_str(ref, "to");
    else if (strcmp(kind, "supervision") == 0)
        f->responsible = intake_json_str(ref, "responsible");
}

/* intake_authorize, its refusal put in reply naming field. */
bool intake_authorized(intake_cmd_kind_t kind, const Casebus__V1__Organisation *o, int crime_step,
                       const intake_facts_t *f, const char *field, intake_reply_t *reply)
{
    intake_verdict_t v;
    if (intake_authorize(kind, o->org_id, o->kind, crime_step, f, &v))
        return true;
    intake_reply_error(reply, v.status, v.code, field, v.message);
    return false;
}

Casebus__V1__Organisation *intake_org_acting(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref,
                                             const char *field, const intake_actor_t *actor,
                                             intake_cmd_kind_t kind, int crime_step,
                                             const intake_facts_t *f, intake_reply_t *reply)
{
    Casebus__V1__Organisation *o = intake_resolve_org(in, txn, ref, field, actor, true, reply);
    if (o && !intake_authorized(kind, o, crime_step, f, field, reply)) {
        casebus__v1__organisation__free_unpacked(o, NULL);
        return NULL;
    }
    return o;
}

bool intake_org_may(intake_t *in, MDB_txn *txn, Casebus__V1__OrgRef *ref, const char *field,
                    const intake_actor_t *actor, intake_cmd_kind_t kind, int crime_step,
                    const intake_facts_t *f, intake_reply_t *reply)
{
    Casebus__V1__Organisation *o =
        intake_org_acting(in, txn, ref, field, actor, kind, crime_step, f, reply);
    if (o)
        casebus__v1__organisation__free_unpacked(o, NULL);
    return o != NULL;
}

/* The ref id names (404 otherwise), when by may give the command on it (the
 * refusal in reply otherwise); the caller frees it. */
json_t *intake_ref_for(intake_t *in, MDB_txn *txn, const char *id, const char *kind,
                       Casebus__V1__OrgRef *by, const intake_actor_t *actor,
                       intake_cmd_kind_t cmd_kind, intake_reply_t *reply)
{
    json_t *ref = intake_ref_or_404(in, txn, id, kind, reply);
    if (ref == NULL)
        return NULL;
    intake_facts_t facts;
    json_t *none = json_object();
    intake_facts_of(none, NULL, ref, &facts);
    bool may = intake_org_may(in, txn, by, "by", actor, cmd_kind, 0, &facts, reply);
    json_decref(none);
    if (!may) {
        json_decref(ref);
        return NULL;
    }
    return ref;
}

/* env's body is body: the envelope's oneof member of body's type. */
static bool wrap(Casebus__V1__Envelope *env, ProtobufCMessage *body)
{
    const ProtobufCMessageDescriptor *md = &casebus__v1__envelope__descriptor;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->descriptor == body->descriptor) {
            *(uint32_t *)((uint8_t *)env + f->quantifier_offset) = f->id;
            *(ProtobufCMessage **)((uint8_t *)env + f->offset) = body;
            return true;
        }
    }
    return false;
}

/* Sets the string fields named in set (name, value, …, NULL) and the meta of body. */
static Casebus__V1__CommandMeta *fill_body(ProtobufCMessage *body, const char *const *set)
{
    for (size_t i = 0; set[i]; i += 2) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(body->descriptor, set[i]);
        if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING ||
            intake_set_string((char **)((uint8_t *)body + f->offset), set[i + 1] ? set[i + 1] : ""))
            return NULL;
    }
    const ProtobufCFieldDescriptor *m =
        protobuf_c_message_descriptor_get_field_by_name(body->descriptor, "meta");
    return m ? ensure_meta((Casebus__V1__CommandMeta **)((uint8_t *)body + m->offset)) : NULL;
}

static bool vrecord(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                    const intake_actor_t *actor, int64_t now, intake_event_t *ev,
                    intake_reply_t *reply, const char *fmt, va_list ap)
    __attribute__((format(printf, 8, 0)));

static bool vrecord(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                    const intake_actor_t *actor, int64_t now, intake_event_t *ev,
                    intake_reply_t *reply, const char *fmt, va_list ap)
{
    const cb_route_t *route = cb_route_of(cmd->kind_case);
    ProtobufCMessage *body = cb_pb_message_field(&cmd->base, (unsigned)cmd->kind_case);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = (char *)(ev->case_id ? ev->case_id : "");
    Casebus__V1__CommandMeta *m = body ? fill_body(body, ev->set) : NULL;
    if (m == NULL || !wrap(&env, body)) {
        intake_reply_error(reply, 500, "internal", "", "out of memory");
        return false;
    }
    char summary[300]; /* a timeline line: cut before a character that does not fit */
    vsnprintf(summary, sizeof(summary), fmt, ap);
    char *orgs[INTAKE_MAX_TOKEN_ORGS];
    cb_error_t e;
    meta_saved_t saved;
    fill_meta(m, cmd, actor, orgs, now, &saved);
    bool ok = append(in, txn, &env, reply);
    restore_meta(m, &saved);
    if (!ok)
        return false;
    ev->seq = env.seq;
    ev->recorded_at_ms = env.recorded_at_ms;
    if ((ev->ref && intake_ref_put(&in->st, txn, ev->id, ev->ref, &e) != 0) ||
        (env.case_id[0] &&
         intake_timeline_event(in, txn, env.case_id, "intake", env.seq, env.recorded_at_ms,
                               cb_event_type(&env), summary, &e) != 0)) {
        intake_reply_store_error(reply, &e);
        return false;
    }
    reply_ok(reply, route ? route->status : 201, route ? route->id_name : NULL, ev->id, env.case_id,
             &env);
    return true;
}

bool intake_record(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                   const intake_actor_t *actor, int64_t now, intake_event_t *ev,
                   intake_reply_t *reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = vrecord(in, txn, cmd, actor, now, ev, reply, fmt, ap);
    va_end(ap);
    return ok;
}

bool intake_record_on_case(intake_t *in, MDB_txn *txn, Casebus__V1__Command *cmd,
                           const intake_actor_t *actor, int64_t now, const char *id, json_t *ref,
                           intake_reply_t *reply, const char *fmt, ...)
{
    /* A new id (a transfer's, a decision's) also goes in the body's field of
     * the route's id name, when the body has one. */
    const cb_route_t *route = cb_route_of(cmd->kind_case);
    ProtobufCMessage *body = cb_pb_message_field(&cmd->base, (unsigned)cmd->kind_case);
    bool named = id && route && route->id_name && body &&
                 protobuf_c_message_descriptor_get_field_by_name(body->descriptor, route->id_name);
    intake_event_t ev = {.case_id = cmd->target_id,
                         .id = id ? id : cmd->target_id,
                         .ref = ref,
                         .set = {"case_id", cmd->target_id, named ? route->id_name : NULL, id}};
    va_list ap;
    va_start(ap, fmt);
    bool ok = vrecord(in, txn, cmd, actor, now, &ev, reply, fmt, ap);
    va_end(ap);
    return ok;
}

void intake_execute(intake_t *in, MDB_txn *txn, const Casebus__V1__Command *ccmd,
                    const intake_actor_t *actor, const uint8_t req_hash[32], intake_reply_t *reply)
{
    /* The handlers fill server-owned fields of the command's messages. */
    Casebus__V1__Command *cmd = (Casebus__V1__Command *)ccmd;
    cb_error_t e;
    int64_t now = cb_now_ms();
    memset(reply, 0, sizeof(*reply));
    bool idem = !intake_str_empty(cmd->idempotency_key);
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
            intake_reply_error(reply, 409, "idempotency_key_reused", "Idempotency-Key", e.message);
            return;
        }
        if (rc != CB_ERR_NOT_FOUND) {
            intake_reply_store_error(reply, &e);
            return;
        }
    }
    static const struct {
        intake_do_fn *run;
        intake_do_case_fn *on_case;
    } route[] = {
        [CMD_REPORT_CASE] = {intake_do_report_case, NULL},
        [CMD_SEND_TRANSFER] = {NULL, intake_do_send_transfer},
        [CMD_RECEIVE_TRANSFER] = {intake_do_transfer_step, NULL},
        [CMD_ACCEPT_TRANSFER] = {intake_do_transfer_step, NULL},
        [CMD_RETURN_TRANSFER] = {intake_do_transfer_step, NULL},
        [CMD_RAISE_DISPUTE] = {intake_do_transfer_step, NULL},
        [CMD_DECIDE_DISPUTE] = {intake_do_decide_dispute, NULL},
        [CMD_REQUEST_ASSISTANCE] = {NULL, intake_do_request_assistance},
        [CMD_ANSWER_ASSISTANCE] = {intake_do_answer_assistance, NULL},
        [CMD_RECORD_DECISION] = {NULL, intake_do_record_decision},
        [CMD_GIVE_FEEDBACK] = {NULL, intake_do_give_feedback},
        [CMD_RECORD_APPROVAL] = {intake_do_record_approval, NULL},
        [CMD_REQUEST_EXTENSION] = {intake_do_extension, NULL},
        [CMD_DECIDE_EXTENSION] = {intake_do_extension, NULL},
        [CMD_CANCEL_CASE] = {NULL, intake_do_cancel_case},
        [CMD_CRIME_STEP] = {NULL, intake_do_crime_step},
        [CMD_FILE_DECISION] = {intake_do_file_decision, NULL},
        [CMD_APPLY_JOINT_OPERATION] = {intake_do_apply_joint_operation, NULL},
        [CMD_RECORD_FILING] = {intake_do_record_filing, NULL},
        [CMD_DISPATCH_CASE] = {NULL, intake_do_dispatch_case},
        [CMD_REVIEW_RETURN] = {intake_do_review_return, NULL},
        [CMD_ANSWER_SUPERVISION] = {intake_do_answer_supervision, NULL},
    };
    size_t kind = (size_t)cmd->kind_case;
    if (kind >= sizeof(route) / sizeof(route[0]) || (!route[kind].run && !route[kind].on_case)) {
        intake_reply_error(reply, 400, "invalid_command", "kind", "the command has no body");
    } else if (route[kind].run) {
        route[kind].run(in, txn, cmd, actor, now, reply);
    } else {
        intake_facts_t facts;
        json_t *view = intake_case_or_404(in, txn, cmd->target_id, reply);
        if (view) {
            intake_facts_of(view, NULL, NULL, &facts);
            route[kind].on_case(in, txn, cmd, actor, now, view, &facts, reply);
        }
        json_decref(view);
    }
    if (reply->status >= 200 && reply->status < 300 && idem &&
        intake_idem_put(&in->st, txn, actor->token_id, cmd->idempotency_key, req_hash, reply, &e) !=
            0)
        intake_reply_store_error(reply, &e);
}

int intake_check_command(Casebus__V1__Command *cmd, cb_contract_report_t *rep)
{
    cb_contract_report_init(rep);
    cb_contract_prepare(&cmd->base);
    return cb_contract_check(&cmd->base, rep);
}

/* A command held while a commit is on its way. */
struct intake_held {
    Casebus__V1__Command *cmd;
    intake_actor_t actor;
    uint8_t hash[32];
    intake_reply_t *reply;
    cb_group_done_fn done;
    void *arg;
};

/* The store's error a reply of 5xx (or 413) gives, for the group's failure:
 * /healthz names it (a full store says to raise map_size). */
static const cb_error_t *reply_as_error(const intake_reply_t *reply, cb_error_t *e)
{
    json_t *body = reply->body ? json_loads(reply->body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    cb_error_set(e, reply->status == 503 ? CB_ERR_STORE_FULL : CB_ERR_STORE, "", "%s",
                 msg ? msg : "a case report failed after writing");
    json_decref(body);
    return e;
}

/* A command runs in a child transaction of the group, so that a refusal leaves
 * nothing behind. A case report runs in the group's transaction itself
 * (cb_group_txn): LMDB's child transactions cost a case report about a sixth
 * of intake's throughput (the dirty-page lists of each, the pages copied from
 * the parent), and intake_do_report_case refuses only before its first write.
 * After it, it fails only as the store fails (5xx), and then the whole group
 * is given up: nothing of it was acknowledged, and nothing of it is kept. A
 * 413 is the one refusal a write can make (an event over CB_RECORD_MAX, more
 * than any report max_body lets in): it gives up the group too. */
static bool runs_in_group_txn(const Casebus__V1__Command *cmd)
{
    return cmd->kind_case == (Casebus__V1__Command__KindCase)CMD_REPORT_CASE;
}

static void run_now(intake_t *in, Casebus__V1__Command *cmd, const intake_actor_t *actor,
                    const uint8_t req_hash[32], intake_reply_t *reply, cb_group_done_fn done,
                    void *arg)
{
    cb_error_t e;
    MDB_txn *txn = NULL;
    bool ok = false, direct = runs_in_group_txn(cmd);
    if ((direct ? cb_group_txn(in->d.group, &txn, &e) : cb_group_begin(in->d.group, &txn, &e)) !=
        0) {
        memset(reply, 0, sizeof(*reply));
        intake_reply_store_error(reply, &e);
    } else {
        intake_execute(in, txn, cmd, actor, req_hash, reply);
        ok = reply->status >= 200 && reply->status < 300;
        if (direct && !ok && (reply->status >= 500 || reply->status == 413)) {
            cb_group_fail(in->d.group, reply_as_error(reply, &e));
        } else if (direct ? ok && cb_group_join(in->d.group, done, arg, &e) != 0
                          : cb_group_end(in->d.group, &txn, ok, done, arg, &e) != 0) {
            if (direct)
                cb_group_fail(in->d.group, &e); /* its writes are in the group */
            intake_reply_store_error(reply, &e);
            ok = false;
        }
    }
    casebus__v1__command__free_unpacked(cmd, NULL);
    if (ok) {
        cb_metric_inc(in->m_commands_ok);
        return; /* done runs after the group's commit */
    }
    cb_metric_inc(reply->status >= 500 ? in->m_commands_failed : in->m_commands_refused);
    done(arg, 0, NULL);
}

void intake_submit(intake_t *in, Casebus__V1__Command *cmd, const intake_actor_t *actor,
                   const uint8_t req_hash[32], intake_reply_t *reply, cb_group_done_fn done,
                   void *arg)
{
    if (in->held_count == 0 && !cb_group_hold(in->d.group)) {
        run_now(in, cmd, actor, req_hash, reply, done, arg);
        return;
    }
    if (in->held_count == in->held_cap) {
        /* a ring: grow it and lay it out from slot 0 */
        size_t cap = in->held_cap ? in->held_cap * 2 : 64;
        struct intake_held *h = malloc(cap * sizeof(*h));
        if (h == NULL) {
            run_now(in, cmd, actor, req_hash, reply, done, arg); /* waits for the commit */
            return;
        }
        for (size_t i = 0; i < in->held_count; i++)
            h[i] = in->held[(in->held_first + i) % in->held_cap];
        free(in->held);
        in->held = h;
        in->held_cap = cap;
        in->held_first = 0;
    }
    struct intake_held *h = &in->held[(in->held_first + in->held_count++) % in->held_cap];
    *h = (struct intake_held){.cmd = cmd, .actor = *actor, .reply = reply, .done = done,
                              .arg = arg};
    memcpy(h->hash, req_hash, sizeof(h->hash));
}

void intake_held_run(void *ctx)
{
    intake_t *in = ctx;
    while (in->held_count > 0 && !cb_group_hold(in->d.group)) {
        struct intake_held h = in->held[in->held_first];
        in->held_first = (in->held_first + 1) % in->held_cap;
        in->held_count--;
        run_now(in, h.cmd, &h.actor, h.hash, h.reply, h.done, h.arg);
    }
}

void intake_held_free(intake_t *in)
{
    while (in->held_count > 0) {
        struct intake_held *h = &in->held[in->held_first];
        in->held_first = (in->held_first + 1) % in->held_cap;
        in->held_count--;
        casebus__v1__command__free_unpacked(h->cmd, NULL);
    }
    free(in->held);
    in->held = NULL;
    in->held_cap = 0;
}
