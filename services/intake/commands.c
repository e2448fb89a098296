/*
 * commands.c — HTTP JSON bodies into Commands (the same message the ZeroMQ door
 * receives), so the checks and the execution that follow are one code path.
 * Strict on shape: an unknown field, a wrong type, a bad enum word or time is
 * refused here naming the field ("materials[1].kind"); rules that need state
 * (organisations, cases) are checked in handlers.c.
 */
#include "intake.h"
#include "cbtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cmd_names[] = {
    [CMD_REPORT_CASE] = "report_case",           [CMD_SEND_TRANSFER] = "send_transfer",
    [CMD_RECEIVE_TRANSFER] = "receive_transfer", [CMD_ACCEPT_TRANSFER] = "accept_transfer",
    [CMD_RETURN_TRANSFER] = "return_transfer",   [CMD_RAISE_DISPUTE] = "raise_dispute",
    [CMD_DECIDE_DISPUTE] = "decide_dispute",     [CMD_REQUEST_ASSISTANCE] = "request_assistance",
    [CMD_ANSWER_ASSISTANCE] = "answer_assistance", [CMD_RECORD_DECISION] = "record_decision",
    [CMD_GIVE_FEEDBACK] = "give_feedback",       [CMD_RECORD_APPROVAL] = "record_approval",
    [CMD_REQUEST_EXTENSION] = "request_extension", [CMD_DECIDE_EXTENSION] = "decide_extension",
    [CMD_CANCEL_CASE] = "cancel_case",           [CMD_CRIME_STEP] = "crime_step",
    [CMD_FILE_DECISION] = "file_decision",
    [CMD_APPLY_JOINT_OPERATION] = "apply_joint_operation", [CMD_RECORD_FILING] = "record_filing",
    [CMD_DISPATCH_CASE] = "dispatch_case",       [CMD_REVIEW_RETURN] = "review_return",
    [CMD_ANSWER_SUPERVISION] = "answer_supervision",
};

const char *intake_cmd_name(intake_cmd_kind_t kind)
{
    if ((size_t)kind < sizeof(cmd_names) / sizeof(cmd_names[0]) && cmd_names[kind])
        return cmd_names[kind];
    return "unknown";
}

/* A decoding pass: the first error wins and later calls do nothing. */
typedef struct dec {
    cb_error_t *err;
    int rc;
    int code;  /* the code fail() gives: CB_ERR_INVALID, or CB_ERR_MISSING */
} dec_t;

static void fail(dec_t *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(dec_t *d, const char *field, const char *fmt, ...)
{
    if (d->rc)
        return;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->rc = cb_error_set(d->err, d->code ? d->code : CB_ERR_INVALID, field, "%s", msg);
}

static void fail_missing(dec_t *d, const char *field)
{
    d->code = CB_ERR_MISSING;
    fail(d, field, "%s is required", field);
    d->code = CB_ERR_INVALID;
}

static void path(char *buf, size_t size, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        snprintf(buf, size, "%s.%s", prefix, key);
    else
        snprintf(buf, size, "%s", key);
}

/* Refuses keys of obj not in allowed (NULL-terminated). */
static void only_keys(dec_t *d, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char f[128];
            path(f, sizeof(f), prefix, key);
            fail(d, f, "unknown field '%s' (see docs/api.md)", f);
            return;
        }
    }
}

/* A string of at most max bytes; NULL when absent (or JSON null). */
static char *get_str(dec_t *d, json_t *obj, const char *prefix, const char *key, size_t max,
                     bool required)
{
    char f[128];
    path(f, sizeof(f), prefix, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            fail_missing(d, f);
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(d, f, "%s must be a string", f);
        return NULL;
    }
    size_t len = json_string_length(v);
    if (len > max) {
        fail(d, f, "%s is longer than %zu bytes", f, max);
        return NULL;
    }
    if (required && len == 0) {
        fail(d, f, "%s must not be empty", f);
        return NULL;
    }
    if (strlen(json_string_value(v)) != len) {
        fail(d, f, "%s contains a NUL character", f);
        return NULL;
    }
    char *s = strdup(json_string_value(v));
    if (s == NULL)
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, f, "out of memory");
    return s;
}

static char *empty(void)
{
    return strdup("");
}

/* Sets *dst to a string field or "" (protobuf-c wants non-NULL strings). */
static void set_str(dec_t *d, char **dst, json_t *obj, const char *prefix, const char *key,
                    size_t max, bool required)
{
    char *s = get_str(d, obj, prefix, key, max, required);
    *dst = s ? s : empty();
}

static bool get_bool(dec_t *d, json_t *obj, const char *prefix, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return false;
    if (!json_is_boolean(v)) {
        char f[128];
        path(f, sizeof(f), prefix, key);
        fail(d, f, "%s must be true or false", f);
        return false;
    }
    return json_is_true(v);
}

static int64_t get_time(dec_t *d, json_t *obj, const char *prefix, const char *key,
                        bool required)
{
    char f[128];
    path(f, sizeof(f), prefix, key);
    char *s = get_str(d, obj, prefix, key, 64, required);
    if (s == NULL)
        return 0;
    int64_t ms = 0;
    cb_error_t e;
    if (cb_time_parse(s, &ms, &e) != 0)
        fail(d, f, "%s: %s", f, e.message);
    free(s);
    return ms;
}

static int64_t get_int(dec_t *d, json_t *obj, const char *prefix, const char *key, int64_t min,
                       int64_t max)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    char f[128];
    path(f, sizeof(f), prefix, key);
    if (!json_is_integer(v)) {
        fail(d, f, "%s must be an integer", f);
        return 0;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        fail(d, f, "%s is out of range", f);
        return 0;
    }
    return n;
}

static double get_number(dec_t *d, json_t *obj, const char *prefix, const char *key, double min,
                         double max)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    char f[128];
    path(f, sizeof(f), prefix, key);
    if (!json_is_number(v)) {
        fail(d, f, "%s must be a number", f);
        return 0;
    }
    double x = json_number_value(v);
    if (!(x >= min && x <= max))
        fail(d, f, "%s is out of range", f);
    return x;
}

/* An enum word: returns its index in words (1-based values), 0 when absent. */
static int get_enum(dec_t *d, json_t *obj, const char *prefix, const char *key,
                    const char *const *words, bool required)
{
    char f[128];
    path(f, sizeof(f), prefix, key);
    char *s = get_str(d, obj, prefix, key, 64, required);
    if (s == NULL)
        return 0;
    int found = 0;
    char list[256] = "";
    for (int i = 1; words[i]; i++) {
        if (strcmp(s, words[i]) == 0)
            found = i;
        strncat(list, i > 1 ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, words[i], sizeof(list) - strlen(list) - 1);
    }
    if (!found) {
        fail(d, f, "%s '%.40s' is not one of %s", f, s, list);
    }
    free(s);
    return found;
}

static json_t *get_obj(dec_t *d, json_t *obj, const char *prefix, const char *key, bool required)
{
    char f[128];
    path(f, sizeof(f), prefix, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            fail_missing(d, f);
        return NULL;
    }
    if (!json_is_object(v)) {
        fail(d, f, "%s must be an object", f);
        return NULL;
    }
    return v;
}

static json_t *get_array(dec_t *d, json_t *obj, const char *prefix, const char *key, size_t max)
{
    char f[128];
    path(f, sizeof(f), prefix, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        fail(d, f, "%s must be an array", f);
        return NULL;
    }
    if (json_array_size(v) > max) {
        fail(d, f, "%s has more than %zu items", f, max);
        return NULL;
    }
    return v;
}

static Casebus__V1__OrgRef *org_ref(dec_t *d, json_t *obj, const char *prefix, const char *key,
                                   bool required)
{
    char *id = get_str(d, obj, prefix, key, 64, required);
    if (id == NULL)
        return NULL;
    Casebus__V1__OrgRef *r = malloc(sizeof(*r));
    if (r == NULL) {
        free(id);
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, key, "out of memory");
        return NULL;
    }
    casebus__v1__org_ref__init(r);
    r->org_id = id;
    r->name = empty();
    r->division_code = empty();
    r->parent_id = empty();
    return r;
}

/* "key": ["org-id", …]: at most max organisation ids, each a non-empty string. */
static Casebus__V1__OrgRef **org_refs(dec_t *d, json_t *obj, const char *key, size_t max,
                                      size_t *count)
{
    *count = 0;
    json_t *arr = get_array(d, obj, "", key, max);
    if (arr == NULL || d->rc)
        return NULL;
    size_t n = json_array_size(arr);
    Casebus__V1__OrgRef **out = calloc(n ? n : 1, sizeof(*out));
    if (out == NULL) {
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, key, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n && !d->rc; i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s[%zu]", key, i);
        const char *id = json_string_value(json_array_get(arr, i));
        if (id == NULL || *id == '\0' || strlen(id) > 64) {
            fail(d, f, "%s must be an organisation id (a string of 1 to 64 bytes)", f);
            break;
        }
        Casebus__V1__OrgRef *r = malloc(sizeof(*r));
        char *copy = strdup(id);
        if (r == NULL || copy == NULL) {
            free(r);
            free(copy);
            d->rc = cb_error_set(d->err, CB_ERR_NOMEM, f, "out of memory");
            break;
        }
        casebus__v1__org_ref__init(r);
        r->org_id = copy;
        r->name = empty();
        r->division_code = empty();
        r->parent_id = empty();
        out[(*count)++] = r;
    }
    return out;
}

/* ---- the shapes ---- */

static const char *const source_words[] = {"", "patrol", "county_dispatch", "department_notice",
                                           "citizen_report", "police_referral", NULL};
static const char *const urgency_words[] = {"", "normal", "emergency", NULL};
static const char *const material_words[] = {"",
                                             "transfer_letter",
                                             "case_source",
                                             "party_info",
                                             "approval_info",
                                             "investigation",
                                             "other",
                                             "crime_transfer_notice",
                                             "crime_investigation_report",
                                             "exhibit_list",
                                             "inspection_report",
                                             NULL};
static const char *const dispute_kind_words[] = {"", "jurisdiction", "duty_division", NULL};
static const char *const crime_step_words[] = {"",
                                               "investigator_reported",
                                               "transfer_decided",
                                               "handed_to_police",
                                               "police_answered",
                                               "reconsideration_requested",
                                               "reconsideration_answered",
                                               "exhibits_handed_over",
                                               "sent_back",
                                               NULL};
static const char *const filing_words[] = {"", "case_file_catalogue", "enforcement_data",
                                           "monthly_status", NULL};
static const char *const assistance_words[] = {"", "identification", "appraisal", "advice", NULL};

static Casebus__V1__Attachment **attachments(dec_t *d, json_t *obj, const char *prefix,
                                             size_t *n)
{
    json_t *arr = get_array(d, obj, prefix, "attachments", 64);
    *n = 0;
    if (arr == NULL || json_array_size(arr) == 0)
        return NULL;
    size_t count = json_array_size(arr);
    Casebus__V1__Attachment **out = calloc(count, sizeof(*out));
    if (out == NULL) {
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "attachments", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count && !d->rc; i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s%sattachments[%zu]", prefix ? prefix : "",
                 prefix && *prefix ? "." : "", i);
        json_t *a = json_array_get(arr, i);
        if (!json_is_object(a)) {
            fail(d, p, "%s must be an object", p);
            break;
        }
        static const char *const keys[] = {"name", "uri", "sha256", "size_bytes", "media_type",
                                           NULL};
        only_keys(d, a, p, keys);
        Casebus__V1__Attachment *at = malloc(sizeof(*at));
        if (at == NULL) {
            d->rc = cb_error_set(d->err, CB_ERR_NOMEM, p, "out of memory");
            break;
        }
        casebus__v1__attachment__init(at);
        out[(*n)++] = at;
        set_str(d, &at->name, a, p, "name", 256, true);
        set_str(d, &at->uri, a, p, "uri", 2048, true);
        set_str(d, &at->media_type, a, p, "media_type", 128, false);
        at->size_bytes = (uint64_t)get_int(d, a, p, "size_bytes", 0, (int64_t)1 << 40);
        char *hex = get_str(d, a, p, "sha256", 64, true);
        if (hex) {
            char f[128];
            path(f, sizeof(f), p, "sha256");
            uint8_t *bin = malloc(32);
            bool ok = bin && strlen(hex) == 64;
            for (size_t k = 0; ok && k < 32; k++) {
                unsigned byte;
                ok = sscanf(hex + 2 * k, "%2x", &byte) == 1 &&
                     strchr("0123456789abcdefABCDEF", hex[2 * k]) &&
                     strchr("0123456789abcdefABCDEF", hex[2 * k + 1]);
                if (ok)
                    bin[k] = (uint8_t)byte;
            }
            if (!ok) {
                free(bin);
                fail(d, f, "%s must be 64 hexadecimal characters (SHA-256)", f);
            } else {
                at->sha256.data = bin;
                at->sha256.len = 32;
            }
            free(hex);
        }
    }
    return out;
}

static Casebus__V1__CommandMeta *meta(dec_t *d)
{
    Casebus__V1__CommandMeta *m = malloc(sizeof(*m));
    if (m == NULL) {
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    casebus__v1__command_meta__init(m);
    m->token_id = empty();
    m->idempotency_key = empty();
    m->request_id = empty();
    return m;
}

static void report_case(dec_t *d, json_t *o, Casebus__V1__Command *cmd)
{
    static const char *const keys[] = {"source",     "matter_code", "township_code", "location",
                                       "discovered_at", "discovered_by", "urgency",
                                       "suspected_crime", "reporter", "description",
                                       "attachments", "external_ref", "party", NULL};
    only_keys(d, o, "", keys);
    Casebus__V1__CaseReported *r = calloc(1, sizeof(*r));
    Casebus__V1__CaseSummary *c = calloc(1, sizeof(*c));
    if (!r || !c) {
        free(r);
        free(c);
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
        return;
    }
    casebus__v1__case_reported__init(r);
    casebus__v1__case_summary__init(c);
    cmd->kind_case = CASEBUS__V1__COMMAND__KIND_REPORT_CASE;
    cmd->report_case = r;
    r->case_ = c;
    r->meta = meta(d);
    c->case_id = empty();
    c->matter_name = empty();
    c->township_name = empty();
    c->source = get_enum(d, o, "", "source", source_words, true);
    set_str(d, &c->matter_code, o, "", "matter_code", 32, true);
    set_str(d, &c->township_code, o, "", "township_code", 12, true);
    c->discovered_at_ms = get_time(d, o, "", "discovered_at", true);
    c->discovered_by = org_ref(d, o, "", "discovered_by", true);
    c->urgency = get_enum(d, o, "", "urgency", urgency_words, false);
    if (c->urgency == 0)
        c->urgency = CASEBUS__V1__URGENCY__URGENCY_NORMAL;
    c->suspected_crime = get_bool(d, o, "", "suspected_crime");
    set_str(d, &c->description, o, "", "description", 8000, true);
    set_str(d, &c->external_ref, o, "", "external_ref", 128, false);
    json_t *loc = get_obj(d, o, "", "location", false);
    if (loc) {
        static const char *const lk[] = {"address", "latitude", "longitude", NULL};
        only_keys(d, loc, "location", lk);
        c->location = malloc(sizeof(*c->location));
        if (c->location) {
            casebus__v1__location__init(c->location);
            set_str(d, &c->location->address, loc, "location", "address", 512, false);
            c->location->latitude = get_number(d, loc, "location", "latitude", -90, 90);
            c->location->longitude = get_number(d, loc, "location", "longitude", -180, 180);
        }
    }
    json_t *rep = get_obj(d, o, "", "reporter", false);
    if (rep) {
        static const char *const rk[] = {"name", "phone", "id_number", "anonymous", NULL};
        only_keys(d, rep, "reporter", rk);
        r->reporter = malloc(sizeof(*r->reporter));
        if (r->reporter) {
            casebus__v1__reporter__init(r->reporter);
            set_str(d, &r->reporter->name, rep, "reporter", "name", 64, false);
            set_str(d, &r->reporter->phone, rep, "reporter", "phone", 20, false);
            set_str(d, &r->reporter->id_number, rep, "reporter", "id_number", 18, false);
            r->reporter->anonymous = get_bool(d, rep, "reporter", "anonymous");
        }
    }
    r->attachments = attachments(d, o, "", &r->n_attachments);
    json_t *party = get_obj(d, o, "", "party", false);
    if (party) {
        static const char *const pk[] = {"name", "credit_code", "is_person", NULL};
        only_keys(d, party, "party", pk);
        r->party = malloc(sizeof(*r->party));
        if (r->party == NULL) {
            d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "party", "out of memory");
            return;
        }
        casebus__v1__party__init(r->party);
        set_str(d, &r->party->name, party, "party", "name", 256, true);
        set_str(d, &r->party->credit_code, party, "party", "credit_code", 18, false);
        r->party->is_person = get_bool(d, party, "party", "is_person");
    }
}

/* "materials": [{kind, title, text, attachments}], each with something in it. */
static Casebus__V1__Material **materials(dec_t *d, json_t *o, size_t *count)
{
    *count = 0;
    json_t *arr = get_array(d, o, "", "materials", 32);
    if (arr == NULL || d->rc)
        return NULL;
    size_t n = json_array_size(arr);
    Casebus__V1__Material **out = calloc(n ? n : 1, sizeof(*out));
    if (out == NULL) {
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n && !d->rc; i++) {
        char p[64];
        snprintf(p, sizeof(p), "materials[%zu]", i);
        json_t *m = json_array_get(arr, i);
        if (!json_is_object(m)) {
            fail(d, p, "%s must be an object", p);
            break;
        }
        static const char *const mk[] = {"kind", "title", "text", "attachments", NULL};
        only_keys(d, m, p, mk);
        Casebus__V1__Material *mat = malloc(sizeof(*mat));
        if (mat == NULL) {
            d->rc = cb_error_set(d->err, CB_ERR_NOMEM, p, "out of memory");
            break;
        }
        casebus__v1__material__init(mat);
        out[(*count)++] = mat;
        mat->kind = get_enum(d, m, p, "kind", material_words, true);
        set_str(d, &mat->title, m, p, "title", 256, false);
        set_str(d, &mat->text, m, p, "text", 16000, false);
        mat->attachments = attachments(d, m, p, &mat->n_attachments);
        if (!d->rc && mat->title[0] == '\0' && mat->text[0] == '\0' && mat->n_attachments == 0)
            fail(d, p, "%s is empty: give a title, text or attachments", p);
    }
    return out;
}

static void send_transfer(dec_t *d, json_t *o, Casebus__V1__Command *cmd)
{
    static const char *const keys[] = {"sender",      "receiver",        "materials",
                                       "reason",      "approved_by",     "approved_at",
                                       "stop_ordered_at", "competent_informed_at", NULL};
    only_keys(d, o, "", keys);
    Casebus__V1__TransferSent *t = malloc(sizeof(*t));
    if (t == NULL) {
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
        return;
    }
    casebus__v1__transfer_sent__init(t);
    cmd->kind_case = CASEBUS__V1__COMMAND__KIND_SEND_TRANSFER;
    cmd->send_transfer = t;
    t->meta = meta(d);
    t->transfer_id = empty();
    t->case_id = empty();
    t->sender = org_ref(d, o, "", "sender", true);
    set_str(d, &t->proposed_receiver_id, o, "", "receiver", 64, false);
    set_str(d, &t->reason, o, "", "reason", 4000, false);
    set_str(d, &t->approved_by, o, "", "approved_by", 64, false);
    t->approved_at_ms = get_time(d, o, "", "approved_at", false);
    t->stop_ordered_at_ms = get_time(d, o, "", "stop_ordered_at", false);
    t->competent_informed_at_ms = get_time(d, o, "", "competent_informed_at", false);
    t->materials = materials(d, o, &t->n_materials);
}

/* Commands whose body is {by[, reason]} or similar small shapes. */
static void small(dec_t *d, json_t *o, Casebus__V1__Command *cmd, intake_cmd_kind_t kind)
{
    switch (kind) {
    case CMD_RECEIVE_TRANSFER:
    case CMD_ACCEPT_TRANSFER: {
        static const char *const keys[] = {"by", NULL};
        only_keys(d, o, "", keys);
        /* TransferReceived and TransferAccepted have the same layout. */
        Casebus__V1__TransferReceived *r = malloc(sizeof(Casebus__V1__TransferReceived));
        Casebus__V1__TransferAccepted *a = malloc(sizeof(Casebus__V1__TransferAccepted));
        if (!r || !a) {
            free(r);
            free(a);
            d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
            return;
        }
        if (kind == CMD_RECEIVE_TRANSFER) {
            free(a);
            casebus__v1__transfer_received__init(r);
            cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RECEIVE_TRANSFER;
            cmd->receive_transfer = r;
            r->transfer_id = empty();
            r->meta = meta(d);
            r->by = org_ref(d, o, "", "by", true);
        } else {
            free(r);
            casebus__v1__transfer_accepted__init(a);
            cmd->kind_case = CASEBUS__V1__COMMAND__KIND_ACCEPT_TRANSFER;
            cmd->accept_transfer = a;
            a->transfer_id = empty();
            a->meta = meta(d);
            a->by = org_ref(d, o, "", "by", true);
        }
        return;
    }
    case CMD_RETURN_TRANSFER: {
        static const char *const keys[] = {"by", "reason", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__TransferReturned *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__transfer_returned__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RETURN_TRANSFER;
        cmd->return_transfer = r;
        r->transfer_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        return;
    }
    case CMD_RAISE_DISPUTE: {
        static const char *const keys[] = {"by", "reason", "kind", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__DisputeRaised *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__dispute_raised__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE;
        cmd->raise_dispute = r;
        r->dispute_id = empty();
        r->transfer_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        r->kind = get_enum(d, o, "", "kind", dispute_kind_words, false);
        if (r->kind == 0)
            r->kind = CASEBUS__V1__DISPUTE_KIND__DISPUTE_KIND_JURISDICTION;
        return;
    }
    case CMD_DECIDE_DISPUTE: {
        static const char *const keys[] = {"decided_by", "competent_org", "reasoning",
                                           "refer_to_government", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__DisputeDecided *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__dispute_decided__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_DECIDE_DISPUTE;
        cmd->decide_dispute = r;
        r->dispute_id = empty();
        r->transfer_id = empty();
        r->meta = meta(d);
        r->decided_by = org_ref(d, o, "", "decided_by", true);
        r->refer_to_government = get_bool(d, o, "", "refer_to_government");
        set_str(d, &r->competent_org_id, o, "", "competent_org", 64, !r->refer_to_government);
        set_str(d, &r->reasoning, o, "", "reasoning", 8000, true);
        return;
    }
    case CMD_REQUEST_ASSISTANCE: {
        static const char *const keys[] = {"requested_by", "to", "kind", "question",
                                           "letter_received_at", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__AssistanceRequested *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__assistance_requested__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_REQUEST_ASSISTANCE;
        cmd->request_assistance = r;
        r->assistance_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->requested_by = org_ref(d, o, "", "requested_by", true);
        r->to = org_ref(d, o, "", "to", true);
        r->kind = get_enum(d, o, "", "kind", assistance_words, true);
        set_str(d, &r->question, o, "", "question", 8000, true);
        r->letter_received_at_ms = get_time(d, o, "", "letter_received_at", false);
        return;
    }
    case CMD_ANSWER_ASSISTANCE: {
        static const char *const keys[] = {"by", "answer", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__AssistanceAnswered *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__assistance_answered__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_ANSWER_ASSISTANCE;
        cmd->answer_assistance = r;
        r->assistance_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->answer, o, "", "answer", 16000, true);
        return;
    }
    case CMD_RECORD_DECISION: {
        static const char *const keys[] = {"by", "decided_at", "major", "summary", "fine_fen",
                                           "feedback_to", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__DecisionRecorded *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__decision_recorded__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RECORD_DECISION;
        cmd->record_decision = r;
        r->decision_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        r->decided_at_ms = get_time(d, o, "", "decided_at", true);
        r->major = get_bool(d, o, "", "major");
        set_str(d, &r->summary, o, "", "summary", 8000, true);
        r->fine_fen = get_int(d, o, "", "fine_fen", 0, INT64_C(100000000000000));
        r->feedback_to = org_ref(d, o, "", "feedback_to", false);
        return;
    }
    case CMD_GIVE_FEEDBACK: {
        static const char *const keys[] = {"decision_id", "by", "to", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__FeedbackGiven *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__feedback_given__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_GIVE_FEEDBACK;
        cmd->give_feedback = r;
        r->case_id = empty();
        r->meta = meta(d);
        set_str(d, &r->decision_id, o, "", "decision_id", 64, true);
        r->by = org_ref(d, o, "", "by", true);
        r->to = org_ref(d, o, "", "to", true);
        return;
    }
    case CMD_RECORD_APPROVAL: {
        static const char *const keys[] = {"by", "approved_at", "subject", "matter_code",
                                           "urgent", "case_id", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__ApprovalRecorded *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__approval_recorded__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RECORD_APPROVAL;
        cmd->record_approval = r;
        r->approval_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        r->approved_at_ms = get_time(d, o, "", "approved_at", true);
        set_str(d, &r->subject, o, "", "subject", 1000, true);
        set_str(d, &r->matter_code, o, "", "matter_code", 32, false);
        r->urgent = get_bool(d, o, "", "urgent");
        set_str(d, &r->case_id, o, "", "case_id", CB_CASE_ID_MAX, false);
        return;
    }
    case CMD_REQUEST_EXTENSION: {
        static const char *const keys[] = {"by", "extra_length", "reason", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__ExtensionRequested *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__extension_requested__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_REQUEST_EXTENSION;
        cmd->request_extension = r;
        r->obligation_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        if (json_object_get(o, "extra_length") == NULL)
            fail_missing(d, "extra_length");
        r->extra_length = (uint32_t)get_int(d, o, "", "extra_length", 1, 366);
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        return;
    }
    case CMD_DECIDE_EXTENSION: {
        static const char *const keys[] = {"by", "approved", "extra_length", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__ExtensionDecided *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__extension_decided__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_DECIDE_EXTENSION;
        cmd->decide_extension = r;
        r->obligation_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        if (json_object_get(o, "approved") == NULL)
            fail_missing(d, "approved");
        r->approved = get_bool(d, o, "", "approved");
        if (json_object_get(o, "extra_length"))
            r->extra_length = (uint32_t)get_int(d, o, "", "extra_length", 1, 366);
        return;
    }
    case CMD_CANCEL_CASE: {
        static const char *const keys[] = {"by", "reason", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__CaseCancelled *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__case_cancelled__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_CANCEL_CASE;
        cmd->cancel_case = r;
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        return;
    }
    case CMD_CRIME_STEP: {
        static const char *const keys[] = {"step", "by", "at", "accepted", "note", "materials", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__CrimeReferralStep *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__crime_referral_step__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_CRIME_STEP;
        cmd->crime_step = r;
        r->case_id = empty();
        r->meta = meta(d);
        r->step = get_enum(d, o, "", "step", crime_step_words, true);
        r->by = org_ref(d, o, "", "by", true);
        r->at_ms = get_time(d, o, "", "at", true);
        r->accepted = get_bool(d, o, "", "accepted");
        set_str(d, &r->note, o, "", "note", 4000, false);
        if (json_object_get(o, "materials"))
            r->materials = materials(d, o, &r->n_materials);
        return;
    }
    case CMD_FILE_DECISION: {
        static const char *const keys[] = {"decision_id", "by", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__DecisionFiled *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__decision_filed__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_FILE_DECISION;
        cmd->file_decision = r;
        r->case_id = empty();
        r->meta = meta(d);
        set_str(d, &r->decision_id, o, "", "decision_id", 64, true);
        r->by = org_ref(d, o, "", "by", true);
        return;
    }
    case CMD_APPLY_JOINT_OPERATION: {
        static const char *const keys[] = {"by", "starts_at", "subject", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__JointOperationApplied *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__joint_operation_applied__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_APPLY_JOINT_OPERATION;
        cmd->apply_joint_operation = r;
        r->operation_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        r->starts_at_ms = get_time(d, o, "", "starts_at", true);
        set_str(d, &r->subject, o, "", "subject", 1000, true);
        return;
    }
    case CMD_RECORD_FILING: {
        static const char *const keys[] = {"kind", "by", "period", "note", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__FilingRecorded *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__filing_recorded__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_RECORD_FILING;
        cmd->record_filing = r;
        r->filing_id = empty();
        r->meta = meta(d);
        r->kind = get_enum(d, o, "", "kind", filing_words, true);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->period, o, "", "period", 7, true);
        set_str(d, &r->note, o, "", "note", 4000, false);
        return;
    }
    case CMD_DISPATCH_CASE: {
        static const char *const keys[] = {"by", "lead", "helpers", "reason", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__CaseDispatched *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__case_dispatched__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_DISPATCH_CASE;
        cmd->dispatch_case = r;
        r->transfer_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        r->lead = org_ref(d, o, "", "lead", true);
        r->helpers = org_refs(d, o, "helpers", INTAKE_MAX_HELPERS, &r->n_helpers);
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        return;
    }
    case CMD_REVIEW_RETURN: {
        static const char *const keys[] = {"by", "approved", "reason", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__ReturnReviewed *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__return_reviewed__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_REVIEW_RETURN;
        cmd->review_return = r;
        r->transfer_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        if (json_object_get(o, "approved") == NULL)
            fail_missing(d, "approved");
        r->approved = get_bool(d, o, "", "approved");
        set_str(d, &r->reason, o, "", "reason", 4000, true);
        return;
    }
    case CMD_ANSWER_SUPERVISION: {
        static const char *const keys[] = {"by", "answer", NULL};
        only_keys(d, o, "", keys);
        Casebus__V1__SupervisionAnswered *r = malloc(sizeof(*r));
        if (!r)
            break;
        casebus__v1__supervision_answered__init(r);
        cmd->kind_case = CASEBUS__V1__COMMAND__KIND_ANSWER_SUPERVISION;
        cmd->answer_supervision = r;
        r->supervision_id = empty();
        r->obligation_id = empty();
        r->case_id = empty();
        r->meta = meta(d);
        r->by = org_ref(d, o, "", "by", true);
        set_str(d, &r->answer, o, "", "answer", 16000, true);
        return;
    }
    default:
        break;
    }
    if (!d->rc)
        d->rc = cb_error_set(d->err, CB_ERR_NOMEM, "", "out of memory");
}

int intake_json_to_command(intake_cmd_kind_t kind, const char *target_id, const char *body,
                           size_t len, Casebus__V1__Command **out, cb_error_t *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return cb_error_set(err, CB_ERR_INVALID, "",
                            "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                            jerr.line, jerr.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return cb_error_set(err, CB_ERR_INVALID, "", "the body must be a JSON object");
    }
    Casebus__V1__Command *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL) {
        json_decref(o);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    casebus__v1__command__init(cmd);
    cmd->token = empty();
    cmd->idempotency_key = empty();
    cmd->request_id = empty();
    cmd->target_id = strdup(target_id ? target_id : "");
    dec_t d = {.err = err};
    if (kind == CMD_REPORT_CASE)
        report_case(&d, o, cmd);
    else if (kind == CMD_SEND_TRANSFER)
        send_transfer(&d, o, cmd);
    else
        small(&d, o, cmd, kind);
    json_decref(o);
    if (d.rc != 0 || !cmd->token || !cmd->target_id) {
        casebus__v1__command__free_unpacked(cmd, NULL);
        return d.rc ? d.rc : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    *out = cmd;
    return 0;
}
