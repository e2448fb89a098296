/*
 * openapi.c — the OpenAPI 3.1 document (openapi.h). Request bodies are the
 * commands' messages in the API's spelling (contract.h), so a field added to
 * a .proto appears here with its rule; the answers that are not messages (the
 * case view, the lists, health) are described by hand below.
 */
#include "openapi.h"
#include "contract.h"
#include "pbjson.h"
#include "routes.h"

#include "casebus/v1/intake.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static json_t *ref(const char *name)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", buf);
}

static json_t *nullable(json_t *schema)
{
    return json_pack("{s:[o,{s:s}]}", "oneOf", schema, "type", "null");
}

static void integer_range(json_t *s, const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        json_object_set_new(s, "minimum", json_integer(0));
        json_object_set_new(s, "maximum", json_integer(UINT32_MAX));
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: json_object_set_new(s, "minimum", json_integer(0)); return;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        json_object_set_new(s, "minimum", json_integer(INT32_MIN));
        json_object_set_new(s, "maximum", json_integer(INT32_MAX));
        return;
    default: return;
    }
}

/* One value of f (an array's item when f is repeated), in the API's spelling. */
static json_t *message_schema(const ProtobufCMessageDescriptor *md, json_t *schemas);

static json_t *value_schema(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f,
                            const cb_field_rule_t *r, json_t *schemas)
{
    json_t *s = NULL;
    uint32_t max = cb_contract_max(md, f);
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char d[96];
        snprintf(d, sizeof(d), "at most %u bytes of UTF-8", max);
        s = json_pack("{s:s,s:i,s:s}", "type", "string", "maxLength", (int)max, "description", d);
        if (r && r->required)
            json_object_set_new(s, "minLength", json_integer(1));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        char pat[64];
        uint32_t min = r ? r->min : 0;
        if (min == max)
            snprintf(pat, sizeof(pat), "^[0-9a-fA-F]{%u}$", 2 * max);
        else
            snprintf(pat, sizeof(pat), "^([0-9a-fA-F]{2}){0,%u}$", max);
        s = json_pack("{s:s,s:s,s:s}", "type", "string", "pattern", pat, "description",
                      "hexadecimal digits, two for each byte");
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: s = json_pack("{s:s}", "type", "boolean"); break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        json_t *words = json_array();
        for (unsigned i = 0; i < ed->n_values; i++) {
            char w[96];
            if (ed->values[i].value != 0)
                json_array_append_new(
                    words, json_string(cb_pb_enum_word(ed, ed->values[i].value, w, sizeof(w))));
        }
        s = json_pack("{s:s,s:o}", "type", "string", "enum", words);
        if (r && r->dflt) {
            char w[96];
            json_object_set_new(s, "default",
                                json_string(cb_pb_enum_word(ed, r->dflt, w, sizeof(w))));
        }
        break;
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: s = json_pack("{s:s}", "type", "number"); break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        const ProtobufCFieldDescriptor *id = cb_contract_ref_field(sub);
        if (id == NULL) {
            if (json_object_get(schemas, sub->short_name) == NULL) {
                json_object_set_new(schemas, sub->short_name, json_object()); /* taken */
                json_object_set_new(schemas, sub->short_name, message_schema(sub, schemas));
            }
            return ref(sub->short_name);
        }
        s = json_pack("{s:s,s:i,s:i,s:s}", "type", "string", "minLength", 1, "maxLength",
                      (int)cb_contract_max(sub, id), "description",
                      "an organisation's id in the registry (orgs.csv)");
        break;
    }
    default:
        if (cb_contract_is_time(f)) {
            s = json_pack("{s:s,s:s,s:s}", "type", "string", "format", "date-time", "description",
                          "RFC 3339, with its offset (2026-03-02T09:30:00+08:00)");
            break;
        }
        s = json_pack("{s:s}", "type", "integer");
        integer_range(s, f);
        break;
    }
    if (s && r && r->lo < r->hi && f->type != PROTOBUF_C_TYPE_MESSAGE) {
        json_object_set_new(s, "minimum", json_real(r->lo));
        json_object_set_new(s, "maximum", json_real(r->hi));
        if (r->lo == (double)(json_int_t)r->lo && r->hi == (double)(json_int_t)r->hi) {
            json_object_set_new(s, "minimum", json_integer((json_int_t)r->lo));
            json_object_set_new(s, "maximum", json_integer((json_int_t)r->hi));
        }
    }
    if (s && r && r->doc) {
        const char *d = json_string_value(json_object_get(s, "description"));
        char text[400];
        snprintf(text, sizeof(text), "%s%s%s", r->doc, d ? "; " : "", d ? d : "");
        json_object_set_new(s, "description", json_string(text));
    }
    return s;
}

/* md's fields into props and required (inlined messages' too). */
static void add_fields(const ProtobufCMessageDescriptor *md, json_t *props, json_t *required,
                       json_t *schemas)
{
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const cb_field_rule_t *r = cb_contract_rule(md, f);
        if (r && r->owned)
            continue;
        if (r && r->inlined && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            add_fields(f->descriptor, props, required, schemas);
            continue;
        }
        char name[64];
        cb_contract_api_name(md, f, name, sizeof(name));
        json_t *v = value_schema(md, f, r, schemas);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            v = json_pack("{s:s,s:o,s:i}", "type", "array", "items", v, "maxItems",
                          (int)cb_contract_max(md, f));
        json_object_set_new(props, name, v);
        if (r && r->required)
            json_array_append_new(required, json_string(name));
    }
}

static json_t *message_schema(const ProtobufCMessageDescriptor *md, json_t *schemas)
{
    json_t *props = json_object(), *required = json_array();
    add_fields(md, props, required, schemas);
    json_t *s = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                          "additionalProperties", 0);
    if (json_array_size(required))
        json_object_set_new(s, "required", required);
    else
        json_decref(required);
    return s;
}

/* ---- the answers that are not messages ---- */

static json_t *error_schema(void)
{
    return json_pack(
        "{s:s,s:[s],s:b,s:{s:{s:s,s:[s,s,s],s:b,s:{s:{s:s,s:s},s:{s:s,s:s},s:{s:s},s:{s:s,s:{s:s},"
        "s:s}}}}}",
        "type", "object", "required", "error", "additionalProperties", 0, "properties", "error",
        "type", "object", "required", "code", "field", "message", "additionalProperties", 0,
        "properties", "code", "type", "string", "description",
        "stable and machine-readable: invalid_field, missing_field, forbidden, not_found, …",
        "field", "type", "string", "description",
        "the offending field by its path (materials[1].kind), or \"\"", "message", "type", "string",
        "fields", "type", "array", "items", "type", "string", "description",
        "missing_field: every required field left out");
}

static json_t *org_view(void)
{
    return json_pack("{s:s,s:[s],s:{s:{s:s},s:{s:s},s:{s:s}}}", "type", "object", "required",
                     "org_id", "properties", "org_id", "type", "string", "name", "type", "string",
                     "kind", "type", "string");
}

static json_t *time_or_null(void)
{
    return nullable(json_pack("{s:s,s:s}", "type", "string", "format", "date-time"));
}

static json_t *case_view(void)
{
    json_t *timeline =
        json_pack("{s:s,s:{s:s,s:[s,s,s,s,s],s:{s:o,s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}}", "type",
                  "array", "items", "type", "object", "required", "at", "producer", "seq", "event",
                  "summary", "properties", "at", time_or_null(), "producer", "type", "string",
                  "seq", "type", "integer", "event", "type", "string", "summary", "type", "string");
    return json_pack(
        "{s:s,s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:o,s:o,s:o,s:{s:s},s:{s:s},"
        "s:o,s:o,s:o,s:{s:s,s:s},s:{s:s,s:s},s:o}}",
        "type", "object", "description",
        "A case as intake sees it: the report, then what router and deadline decided. Personal "
        "data is masked for those who did not report the case.",
        "required", "case_id", "state", "timeline", "properties", "case_id", "type", "string",
        "state", "type", "string", "matter_code", "type", "string", "township_code", "type",
        "string", "discovered_at", time_or_null(), "reported_at", time_or_null(), "discovered_by",
        org_view(), "source", "type", "string", "urgency", "type", "string", "competent",
        nullable(org_view()), "holder", nullable(org_view()), "timeline", timeline, "transfers",
        "type", "object", "description", "by transfer id", "obligations", "type", "object",
        "description", "by obligation id: the limits deadline watches, with their level",
        "reporter", json_pack("{s:s}", "type", "object"));
}

static json_t *list_schema(const char *key, json_t *item)
{
    return json_pack("{s:s,s:[s,s,s],s:{s:{s:s,s:o},s:{s:s},s:o,s:{s:s}}}", "type", "object",
                     "required", key, "count", "next_cursor", "properties", key, "type", "array",
                     "items", item, "count", "type", "integer", "next_cursor",
                     nullable(json_pack("{s:s}", "type", "string")), "took_ms", "type", "number");
}

static json_t *case_row(void)
{
    json_t *code_name = json_pack("{s:s,s:{s:{s:s},s:{s:s}}}", "type", "object", "properties",
                                  "code", "type", "string", "name", "type", "string");
    json_t *org = nullable(json_pack("{s:s}", "type", "string"));
    return json_pack("{s:s,s:[s,s,s,s],s:{s:{s:s},s:o,s:o,s:o,s:o,s:{s:s},s:{s:s,s:[s,s,s,s]},"
                     "s:{s:s},s:{s:s},s:o,s:o,s:o,s:o,s:{s:s}}}",
                     "type", "object", "required", "case_id", "state", "level", "overdue",
                     "properties", "case_id", "type", "string", "reported_at", time_or_null(),
                     "discovered_at", time_or_null(), "township", code_name, "matter",
                     json_deep_copy(code_name), "state", "type", "string", "level", "type",
                     "string", "enum", "none", "yellow", "red", "escalation", "overdue", "type",
                     "boolean", "open_limits", "type", "integer", "next_due", time_or_null(),
                     "finder", org, "competent", json_deep_copy(org), "holder", json_deep_copy(org),
                     "description", "type", "string");
}

static json_t *obligation_row(void)
{
    return json_pack(
        "{s:s,s:[s,s,s,s],s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:o,"
        "s:{s:s},s:{s:s},s:{s:s,s:[s,s,s,s]},s:{s:s},s:o}}",
        "type", "object", "required", "obligation_id", "case_id", "due_at", "level", "properties",
        "obligation_id", "type", "string", "case_id", "type", "string", "rule_id", "type", "string",
        "title", "type", "string", "responsible", "type", "object", "township", "type", "string",
        "due_at", time_or_null(), "remaining_ms", "type", "integer", "overdue", "type", "boolean",
        "level", "type", "string", "enum", "none", "yellow", "red", "escalation", "paused", "type",
        "boolean", "supervision_id", nullable(json_pack("{s:s}", "type", "string")));
}

static json_t *health_schema(void)
{
    return json_pack("{s:s,s:[s,s,s],s:{s:{s:s,s:[s,s,s,s]},s:{s:s},s:{s:s},s:{s:s},s:{s:s},"
                     "s:{s:s},s:{s:s}}}",
                     "type", "object", "required", "status", "daemon", "log_head", "properties",
                     "status", "type", "string", "enum", "ok", "degraded", "shutting_down",
                     "store_error", "daemon", "type", "string", "log_head", "type", "integer",
                     "store_used_bytes", "type", "integer", "store_map_size", "type", "integer",
                     "upstreams", "type", "array", "reason", "type", "string");
}

/* ---- operations ---- */

static json_t *json_body(json_t *schema)
{
    return json_pack("{s:{s:{s:o}}}", "content", "application/json", "schema", schema);
}

static json_t *answer(const char *description, json_t *schema)
{
    json_t *a = schema ? json_body(schema) : json_object();
    json_object_set_new(a, "description", json_string(description));
    return a;
}

static json_t *error_answer(const char *description)
{
    return answer(description, ref("Error"));
}

static void add_errors(json_t *responses, const char *const *codes)
{
    static const struct {
        const char *code, *text;
    } texts[] = {
        {"400", "a field breaks a rule (named in error.field), or the body is not JSON"},
        {"401", "no token, or an unknown, expired or revoked one"},
        {"403", "the token does not act for that organisation, or it has no role here"},
        {"404", "no such case, transfer, dispute, request, limit or order"},
        {"409", "the state does not allow it, or the idempotency key was used for another request"},
        {"413", "the body is larger than max_body (answered by the HTTP library before intake "
                "reads it, as text)"},
        {"415", "the body is not application/json"},
        {"500", "intake failed; nothing was written"},
        {"503", "intake cannot write now (full, shutting down, overloaded): retry later"},
    };
    for (size_t i = 0; codes[i]; i++)
        for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
            if (strcmp(codes[i], texts[k].code) == 0)
                json_object_set_new(responses, codes[i],
                                    strcmp(codes[i], "413") == 0
                                        ? json_pack("{s:s,s:{s:{s:{s:s}}}}", "description",
                                                    texts[k].text, "content", "text/plain",
                                                    "schema", "type", "string")
                                        : error_answer(texts[k].text));
}

static json_t *path_param(const char *name)
{
    return json_pack("{s:s,s:s,s:b,s:{s:s,s:s,s:i}}", "name", name, "in", "path", "required", 1,
                     "schema", "type", "string", "pattern", "^[A-Za-z0-9_:-]+$", "maxLength", 79);
}

static json_t *idempotency_param(void)
{
    return json_pack("{s:s,s:s,s:b,s:s,s:{s:s,s:i}}", "name", "Idempotency-Key", "in", "header",
                     "required", 0, "description",
                     "a repeat with the same key and body gets the first answer, and nothing new "
                     "is written",
                     "schema", "type", "string", "maxLength", 128);
}

static json_t *command_operation(const cb_route_t *rt, json_t *schemas)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &casebus__v1__command__descriptor, (unsigned)rt->kind);
    const ProtobufCMessageDescriptor *md = f->descriptor;
    if (json_object_get(schemas, md->short_name) == NULL)
        json_object_set_new(schemas, md->short_name, message_schema(md, schemas));
    json_t *props =
        json_pack("{s:{s:s},s:{s:s,s:i},s:{s:s}}", "case_id", "type", "string", "event_seq", "type",
                  "integer", "minimum", 1, "event_id", "type", "string");
    json_t *req = json_pack("[s,s,s]", "case_id", "event_seq", "event_id");
    if (rt->id_name && json_object_get(props, rt->id_name) == NULL) {
        json_object_set_new(props, rt->id_name, json_pack("{s:s}", "type", "string"));
        json_array_append_new(req, json_string(rt->id_name));
    }
    json_t *ok = json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required",
                           req, "additionalProperties", 0);
    json_t *responses = json_object();
    char status[8];
    snprintf(status, sizeof(status), "%d", rt->status);
    json_object_set_new(responses, status,
                        answer(rt->status == 201 ? "recorded: the event's sequence and id"
                                                 : "accepted: recorded, and another daemon acts "
                                                   "next (watch the case or the events)",
                               ok));
    static const char *const errors[] = {"400", "401", "403", "404", "409",
                                         "413", "415", "500", "503", NULL};
    add_errors(responses, errors);
    json_t *params = json_pack("[o]", idempotency_param());
    if (rt->param)
        json_array_insert_new(params, 0, path_param(rt->param));
    json_t *op = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "operationId", f->name, "summary",
                           rt->summary, "description", "", "parameters", params, "requestBody",
                           json_body(ref(md->short_name)), "responses", responses);
    char text[200];
    snprintf(text, sizeof(text),
             "The body is the `%s` message of proto/casebus/v1 in the API's spelling; the same "
             "command goes over ZeroMQ as Command.%s.",
             md->short_name, f->name);
    json_object_set_new(op, "description", json_string(text));
    json_object_set_new(json_object_get(op, "requestBody"), "required", json_true());
    json_object_set_new(op, "tags", json_pack("[s]", "commands"));
    return op;
}

static json_t *query(const char *name, const char *description)
{
    return json_pack("{s:s,s:s,s:s,s:{s:s}}", "name", name, "in", "query", "description",
                     description, "schema", "type", "string");
}

static json_t *list_operation(const char *id, const char *summary, const char *key, json_t *item,
                              json_t *params)
{
    json_t *responses =
        json_pack("{s:o}", "200", answer("one page, oldest first", list_schema(key, item)));
    static const char *const errors[] = {"400", "401", "403", "503", NULL};
    add_errors(responses, errors);
    return json_pack("{s:s,s:s,s:o,s:o,s:[s]}", "operationId", id, "summary", summary, "parameters",
                     params, "responses", responses, "tags", "lists");
}

static void add_reads(json_t *paths, json_t *schemas)
{
    json_object_set_new(schemas, "CaseView", case_view());
    json_t *responses = json_pack("{s:o}", "200", answer("the case", ref("CaseView")));
    static const char *const errors[] = {"401", "403", "404", "503", NULL};
    add_errors(responses, errors);
    json_object_set_new(
        paths, "/v1/cases/{case_id}",
        json_pack("{s:{s:s,s:s,s:[o],s:o,s:[s]}}", "get", "operationId", "get_case", "summary",
                  "A case, its transfers, limits and timeline (to those with a "
                  "role in it, and operators)",
                  "parameters", path_param("case_id"), "responses", responses, "tags", "lists"));
    json_t *cp =
        json_pack("[o,o,o,o,o,o,o,o,o,o,o]", query("township", "a 12-digit township code"),
                  query("org", "cases an organisation has a role in"),
                  query("holder", "the organisation holding the case now"),
                  query("state", "a case state"), query("level", "none, yellow, red or escalation"),
                  query("overdue", "true or false"), query("matter", "a matter code"),
                  query("from", "reported on or after (YYYY-MM-DD, China time)"),
                  query("to", "reported on or before (YYYY-MM-DD)"),
                  query("limit", "rows per page, 1 to 200"),
                  query("cursor", "next_cursor of the page before"));
    json_object_set_new(json_object_get(paths, "/v1/cases"), "get",
                        list_operation("list_cases", "Cases, filtered", "cases", case_row(), cp));
    json_t *op = json_pack(
        "[o,o,o,o,o,o,o,o,o]", query("state", "open, overdue or due_soon"),
        query("level", "none, yellow, red or escalation"),
        query("responsible", "an organisation id"), query("township", "a 12-digit township code"),
        query("rule", "a rule id (deadlines.conf)"), query("case", "a case id"),
        query("paused", "true to include paused limits"), query("limit", "rows per page, 1 to 200"),
        query("cursor", "next_cursor of the page before"));
    json_object_set_new(paths, "/v1/obligations",
                        json_pack("{s:o}", "get",
                                  list_operation("list_obligations", "Open limits, filtered",
                                                 "obligations", obligation_row(), op)));
    json_t *health = json_pack(
        "{s:o,s:o}", "200", answer("ok", health_schema()), "503",
        answer("degraded (commands may be refused), or too many connections (the error shape, "
               "with Retry-After)",
               json_pack("{s:[o,o]}", "oneOf", health_schema(), ref("Error"))));
    json_object_set_new(paths, "/healthz",
                        json_pack("{s:{s:s,s:s,s:o,s:[],s:[s]}}", "get", "operationId", "health",
                                  "summary", "Whether intake can take commands", "responses",
                                  health, "security", "tags", "operations"));
    json_object_set_new(paths, "/metrics",
                        json_pack("{s:{s:s,s:s,s:{s:{s:s,s:{s:{s:{s:s}}}}},s:[],s:[s]}}", "get",
                                  "operationId", "metrics", "summary",
                                  "Prometheus text exposition format 0.0.4", "responses", "200",
                                  "description", "the metrics", "content", "text/plain", "schema",
                                  "type", "string", "security", "tags", "operations"));
    json_object_set_new(paths, "/openapi.json",
                        json_pack("{s:{s:s,s:s,s:{s:{s:s,s:{s:{s:{s:s}}}}},s:[],s:[s]}}", "get",
                                  "operationId", "openapi", "summary", "This document", "responses",
                                  "200", "description", "OpenAPI 3.1", "content",
                                  "application/json", "schema", "type", "object", "security",
                                  "tags", "operations"));
}

json_t *cb_openapi_document(const char *version)
{
    json_t *paths = json_object(), *schemas = json_object();
    for (size_t i = 0; i < cb_nroutes; i++)
        json_object_set_new(paths, cb_routes[i].path,
                            json_pack("{s:o}", "post", command_operation(&cb_routes[i], schemas)));
    json_object_set_new(schemas, "Error", error_schema());
    add_reads(paths, schemas);
    json_t *info = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:s}}", "title", "casebus intake", "version", version, "description",
        "The HTTP door of casebus: county platforms report cases and record every step of a "
        "transfer, and read cases, limits and lists. Commands are answered once they are on "
        "disk. The same commands go over ZeroMQ as protobuf (proto/casebus/v1/intake.proto). "
        "Prose: docs/api.md.",
        "license", "name", "Proprietary", "identifier", "LicenseRef-casebus");
    json_t *tags = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name", "commands", "description",
                             "POST: each records one event", "name", "lists", "description",
                             "GET: what intake knows of cases and limits", "name", "operations",
                             "description", "for monitoring; no token");
    json_t *security = json_pack("{s:{s:s,s:s,s:s}}", "bearer", "type", "http", "scheme", "bearer",
                                 "description", "a token made by `casebus token create`");
    return json_pack("{s:s,s:o,s:[{s:s,s:s}],s:[{s:[]}],s:o,s:o,s:{s:o,s:o}}", "openapi", "3.1.0",
                     "info", info, "servers", "url", "http://127.0.0.1:8080", "description",
                     "make run's intake", "security", "bearer", "tags", tags, "paths", paths,
                     "components", "schemas", schemas, "securitySchemes", security);
}
