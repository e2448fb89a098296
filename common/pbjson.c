/*
 * pbjson.c — protobuf-c messages as JSON (pbjson.h).
 */
#include "pbjson.h"
#include "cbtime.h"
#include "evlog.h"

#include <ctype.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *hex(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char small[129] = "", *s = len <= 64 ? small : malloc(len * 2 + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[data[i] >> 4];
        s[2 * i + 1] = digits[data[i] & 15];
    }
    json_t *j = json_stringn_nocheck(s, len * 2);
    if (s != small)
        free(s);
    return j;
}

const char *cb_pb_enum_word(const ProtobufCEnumDescriptor *ed, int value, char *buf, size_t size)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, value);
    if (v == NULL) {
        snprintf(buf, size, "%d", value);
        return buf;
    }
    /* The prefix is value 0's name less "UNSPECIFIED" (STYLE.md: X_UNSPECIFIED = 0). */
    const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(ed, 0);
    size_t skip = 0;
    if (zero && strlen(zero->name) > 11 &&
        strcmp(zero->name + strlen(zero->name) - 11, "UNSPECIFIED") == 0) {
        skip = strlen(zero->name) - 11;
        if (strncmp(v->name, zero->name, skip) != 0)
            skip = 0;
    }
    size_t n = 0;
    for (const char *p = v->name + skip; *p && n + 1 < size; p++)
        buf[n++] = (char)tolower((unsigned char)*p);
    buf[n] = '\0';
    return buf;
}

static json_t *enum_name(const ProtobufCEnumDescriptor *ed, int value)
{
    if (protobuf_c_enum_descriptor_get_value(ed, value) == NULL)
        return json_integer(value); /* a value newer than this build */
    char buf[128];
    return json_string(cb_pb_enum_word(ed, value, buf, sizeof(buf)));
}

static json_t *scalar(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: return enum_name(f->descriptor, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        json_t *j = json_string(s ? s : "");
        return j ? j : json_string("<not UTF-8>");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return hex(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? cb_pb_to_json(m) : json_null();
    }
    }
    return json_null();
}

size_t cb_pb_value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

ProtobufCMessage *cb_pb_message_field(const ProtobufCMessage *m, unsigned id)
{
    const ProtobufCFieldDescriptor *f =
        m ? protobuf_c_message_descriptor_get_field(m->descriptor, id) : NULL;
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
        ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         *(const uint32_t *)((const uint8_t *)m + f->quantifier_offset) != f->id))
        return NULL;
    return *(ProtobufCMessage *const *)((const uint8_t *)m + f->offset);
}

ProtobufCMessage *cb_pb_message_named(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        m ? protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name) : NULL;
    return f ? cb_pb_message_field(m, f->id) : NULL;
}

json_t *cb_pb_to_json(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const uint8_t *base = (const uint8_t *)msg + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const uint8_t *)msg + f->quantifier_offset);
            const uint8_t *arr = *(const uint8_t *const *)base;
            v = json_array();
            for (size_t k = 0; v && k < n; k++)
                json_array_append_new(v, scalar(f, arr + k * cb_pb_value_size(f)));
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t which = *(const uint32_t *)((const uint8_t *)msg + f->quantifier_offset);
                if (which != f->id)
                    continue;
            }
            v = scalar(f, base);
        }
        if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Masks personal data in place: reporters everywhere, parties that are persons. */
static void mask(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) mask(v);
        return;
    }
    if (!json_is_object(j))
        return;
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, "reporter") == 0 && json_is_object(v)) {
            const char *fields[] = {"name", "phone", "id_number"};
            for (size_t k = 0; k < 3; k++) {
                const char *s = json_string_value(json_object_get(v, fields[k]));
                if (s && *s)
                    json_object_set_new(v, fields[k], json_string("***"));
            }
        } else if (strcmp(key, "party") == 0 && json_is_true(json_object_get(v, "is_person"))) {
            json_object_set_new(v, "name", json_string("***"));
        } else {
            mask(v);
        }
    }
}

json_t *cb_envelope_to_json(const Casebus__V1__Envelope *env, int show_personal)
{
    char when[40];
    cb_time_format_cst(env->recorded_at_ms, when, sizeof(when));
    json_t *body = NULL;
    if (env->body_case) {
        const ProtobufCMessage *m = cb_pb_message_field(&env->base, (unsigned)env->body_case);
        body = m ? cb_pb_to_json(m) : json_null();
    }
    /* Set one by one: json_pack's format parsing showed in tail's profile. */
    json_t *o = json_object();
    if (o == NULL ||
        json_object_set_new(o, "producer", json_string(env->producer ? env->producer : "")) ||
        json_object_set_new(o, "seq", json_integer((json_int_t)env->seq)) ||
        json_object_set_new(o, "event_id", json_string(env->event_id ? env->event_id : "")) ||
        json_object_set_new(o, "type", json_string(cb_event_type(env))) ||
        json_object_set_new(o, "recorded_at", json_string(when)) ||
        json_object_set_new(o, "recorded_at_ms", json_integer((json_int_t)env->recorded_at_ms)) ||
        json_object_set_new(o, "case_id", json_string(env->case_id ? env->case_id : ""))) {
        json_decref(o);
        json_decref(body);
        return NULL;
    }
    json_object_set_new(o, "hash", hex(env->hash.data, env->hash.len));
    json_object_set_new(o, "event", body ? body : json_null());
    if (!show_personal)
        mask(o);
    return o;
}

static void star(char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return;
    memset(s, '*', n < 3 ? n : 3);
    s[n < 3 ? n : 3] = '\0';
}

static bool mask_strings(ProtobufCMessage *m, const char *const *names, size_t n)
{
    bool masked = false;
    for (size_t i = 0; i < n; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, names[i]);
        if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
            char *s = *(char **)((uint8_t *)m + f->offset);
            masked |= s && *s && strcmp(s, "***") != 0;
            star(s);
        }
    }
    return masked;
}

static bool is_person(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "is_person");
    return f && f->type == PROTOBUF_C_TYPE_BOOL &&
           *(const protobuf_c_boolean *)((const uint8_t *)m + f->offset);
}

bool cb_pb_mask(ProtobufCMessage *msg)
{
    static const char *const reporter[] = {"name", "phone", "id_number"};
    static const char *const party[] = {"name"};
    bool masked = false;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        /* Members of a oneof share their storage: only the one set is a message. */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const uint8_t *)msg + f->quantifier_offset) != f->id)
            continue;
        uint8_t *at = (uint8_t *)msg + f->offset;
        size_t n = f->label == PROTOBUF_C_LABEL_REPEATED
                       ? *(size_t *)((uint8_t *)msg + f->quantifier_offset)
                       : 1;
        ProtobufCMessage **subs = f->label == PROTOBUF_C_LABEL_REPEATED ? *(ProtobufCMessage ***)at
                                                                        : (ProtobufCMessage **)at;
        for (size_t k = 0; subs && k < n; k++) {
            ProtobufCMessage *sub = subs[k];
            if (sub == NULL)
                continue;
            if (strcmp(f->name, "reporter") == 0)
                masked |= mask_strings(sub, reporter, 3);
            else if (strcmp(f->name, "party") == 0 && is_person(sub))
                masked |= mask_strings(sub, party, 1);
            else
                masked |= cb_pb_mask(sub);
        }
    }
    return masked;
}

int cb_record_mask(const uint8_t *raw, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = len;
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    if (env == NULL)
        return CB_ERR_CORRUPT;
    int rc = 0;
    if (cb_pb_mask(&env->base)) {
        *out_len = casebus__v1__envelope__get_packed_size(env);
        if ((*out = malloc(*out_len ? *out_len : 1)) == NULL)
            rc = CB_ERR_NOMEM;
        else
            casebus__v1__envelope__pack(env, *out);
    }
    casebus__v1__envelope__free_unpacked(env, NULL);
    return rc;
}

/* ---- JSON into a message ---- */

typedef struct dec {
    unsigned flags;
    cb_contract_report_t *rep;
    int rc;
} dec_t;

static int dec_fail(dec_t *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_fail(dec_t *d, const char *path, const char *fmt, ...)
{
    if (d->rc)
        return d->rc;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->rc = cb_error_set(&d->rep->err, CB_ERR_INVALID, path, "%s", msg);
    return d->rc;
}

static int dec_nomem(dec_t *d, const char *path)
{
    if (!d->rc)
        d->rc = cb_error_set(&d->rep->err, CB_ERR_NOMEM, path, "out of memory");
    return d->rc;
}

static bool api(const dec_t *d)
{
    return d->flags & CB_PBJSON_API;
}

static void join(char *out, size_t n, const char *path, const char *key)
{
    snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

static bool inlined(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f)
{
    const cb_field_rule_t *r = cb_contract_rule(md, f);
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED && r &&
           r->inlined;
}

static bool owned(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f)
{
    const cb_field_rule_t *r = cb_contract_rule(md, f);
    return r && r->owned;
}

/* Whether key is f's API name (contract.h) without writing it out: a rule's
 * name, X_at for a time X_at_ms, or the field's own. */
static bool api_key_is(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f,
                       const char *key)
{
    const cb_field_rule_t *r = cb_contract_rule(md, f);
    if (r && r->api)
        return strcmp(r->api, key) == 0;
    if (cb_contract_is_time(f)) {
        size_t n = strlen(f->name) - 3; /* less "_ms" */
        return strncmp(f->name, key, n) == 0 && key[n] == '\0';
    }
    return strcmp(f->name, key) == 0;
}

/* The field key names in md: directly, or (API) inside an inlined message
 * field (*via). *as_text: a time written as RFC 3339. */
static const ProtobufCFieldDescriptor *find_key(const dec_t *d,
                                                const ProtobufCMessageDescriptor *md,
                                                const char *key,
                                                const ProtobufCFieldDescriptor **via, bool *as_text)
{
    *as_text = false;
    *via = NULL;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if (!api(d)) {
            if (strcmp(f->name, key) == 0)
                return f;
            if (cb_contract_is_time(f) && api_key_is(md, f, key)) {
                *as_text = true;
                return f;
            }
            continue;
        }
        if (owned(md, f))
            continue;
        if (inlined(md, f)) {
            const ProtobufCFieldDescriptor *via2,
                *g = find_key(d, f->descriptor, key, &via2, as_text);
            if (g && via2 == NULL) {
                *via = f;
                return g;
            }
            continue;
        }
        if (api_key_is(md, f, key)) {
            *as_text = cb_contract_is_time(f);
            return f;
        }
    }
    return NULL;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *md)
{
    ProtobufCMessage *m = malloc(md->sizeof_message);
    if (m)
        md->message_init(m);
    return m;
}

static int decode_object(dec_t *d, json_t *o, ProtobufCMessage *m, const char *path, int depth);

static int enum_value(dec_t *d, const ProtobufCFieldDescriptor *f, json_t *v, const char *at,
                      int *out)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (!api(d) && json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < INT32_MIN || n > INT32_MAX)
            return dec_fail(d, at, "%s is out of range", at);
        *out = (int)n;
        return 0;
    }
    const char *word = json_string_value(v);
    char w[128];
    for (unsigned i = 0; word && i < ed->n_values; i++)
        if ((ed->values[i].value != 0 || !api(d)) &&
            strcmp(cb_pb_enum_word(ed, ed->values[i].value, w, sizeof(w)), word) == 0) {
            *out = ed->values[i].value;
            return 0;
        }
    char list[300] = ""; /* the refusal lists the words */
    for (unsigned i = 0; i < ed->n_values; i++) {
        if (ed->values[i].value == 0 && api(d))
            continue;
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", *list ? ", " : "",
                 cb_pb_enum_word(ed, ed->values[i].value, w, sizeof(w)));
    }
    if (word == NULL)
        return dec_fail(d, at, "%s must be one of %s", at, list);
    return dec_fail(d, at, "%s '%.40s' is not one of %s", at, word, list);
}

static int hex_value(dec_t *d, json_t *v, const char *at, ProtobufCBinaryData *out)
{
    const char *s = json_string_value(v), *end = NULL;
    size_t n = s ? json_string_length(v) : 0, len = 0;
    if (s == NULL || n % 2)
        return dec_fail(d, at, "%s must be hexadecimal digits, two for each byte", at);
    if (n == 0)
        return 0;
    uint8_t *bin = malloc(n / 2);
    if (bin == NULL)
        return dec_nomem(d, at);
    if (sodium_hex2bin(bin, n / 2, s, n, NULL, &len, &end) != 0 || end != s + n) {
        free(bin);
        return dec_fail(d, at, "%s must be hexadecimal digits, two for each byte", at);
    }
    out->data = bin;
    out->len = len;
    return 0;
}

/* One value of field f into dst (a field of a message, or an array slot). */
static int decode_value(dec_t *d, const ProtobufCFieldDescriptor *f, json_t *v, bool as_text,
                        void *dst, const char *at, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return dec_fail(d, at, "%s must be a string", at);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return dec_fail(d, at, "%s contains a NUL character", at);
        char *s = strdup(json_string_value(v)), **slot = dst;
        if (s == NULL)
            return dec_nomem(d, at);
        if (*slot && *slot != (const char *)f->default_value)
            free(*slot);
        *slot = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        free(b->data);
        b->data = NULL;
        b->len = 0;
        return hex_value(d, v, at, b);
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return dec_fail(d, at, "%s must be true or false", at);
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: return enum_value(d, f, v, at, dst);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return dec_fail(d, at, "%s must be a number", at);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)dst = (float)json_number_value(v);
        else
            *(double *)dst = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **slot = dst;
        const ProtobufCFieldDescriptor *ref = cb_contract_ref_field(f->descriptor);
        if (*slot == NULL && (*slot = new_message(f->descriptor)) == NULL)
            return dec_nomem(d, at);
        if (api(d) && ref) {
            if (!json_is_string(v))
                return dec_fail(d, at, "%s must be an id (a string)", at);
            return decode_value(d, ref, v, false, (uint8_t *)*slot + ref->offset, at, depth);
        }
        if (!json_is_object(v))
            return dec_fail(d, at, "%s must be an object", at);
        return decode_object(d, v, *slot, at, depth + 1);
    }
    default: break;
    }
    int64_t n;
    if (as_text) {
        cb_error_t e;
        if (!json_is_string(v))
            return dec_fail(d, at, "%s must be a time in RFC 3339 (2026-03-02T09:30:00+08:00)", at);
        if (cb_time_parse(json_string_value(v), &n, &e) != 0)
            return dec_fail(d, at, "%s: %s", at, e.message);
    } else {
        if (!json_is_integer(v))
            return dec_fail(d, at, "%s must be an integer", at);
        n = json_integer_value(v);
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (n < INT32_MIN || n > INT32_MAX)
            return dec_fail(d, at, "%s is out of range (a 32-bit integer)", at);
        *(int32_t *)dst = (int32_t)n;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (n < 0 || n > UINT32_MAX)
            return dec_fail(d, at, "%s is out of range (0 to 4294967295)", at);
        *(uint32_t *)dst = (uint32_t)n;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (n < 0)
            return dec_fail(d, at, "%s is out of range (not negative)", at);
        *(uint64_t *)dst = (uint64_t)n;
        return 0;
    default: *(int64_t *)dst = n; return 0;
    }
}

static int decode_field(dec_t *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *v,
                        bool as_text, const char *at, int depth)
{
    uint8_t *base = (uint8_t *)m;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which && *which != f->id)
                return dec_fail(d, at, "%s: only one of its group may be given", at);
            *which = f->id;
        }
        return decode_value(d, f, v, as_text, base + f->offset, at, depth);
    }
    if (!json_is_array(v))
        return dec_fail(d, at, "%s must be an array", at);
    size_t n = json_array_size(v), max = cb_contract_max(m->descriptor, f);
    if (n > max)
        return dec_fail(d, at, "%s has at most %zu entries (got %zu)", at, max, n);
    size_t *count = (size_t *)(base + f->quantifier_offset);
    void **arr = (void **)(base + f->offset);
    if (*count || n == 0)
        return *count ? dec_fail(d, at, "%s is given twice", at) : 0;
    size_t size = cb_pb_value_size(f);
    if ((*arr = calloc(n, size)) == NULL)
        return dec_nomem(d, at);
    for (size_t i = 0; i < n; i++) {
        char item[256];
        snprintf(item, sizeof(item), "%s[%zu]", at, i);
        uint8_t *slot = (uint8_t *)*arr + i * size; /* calloc'd: pointers start NULL */
        int rc = decode_value(d, f, json_array_get(v, i), as_text, slot, item, depth);
        /* counted once it holds something the free function may free */
        bool pointer = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
        if (!pointer || *(void **)slot)
            *count = i + 1;
        if (rc)
            return rc;
    }
    return 0;
}

/* API: a required bool that the body left out (proto3 cannot tell). */
static void required_bools(dec_t *d, json_t *o, const ProtobufCMessageDescriptor *md,
                           const char *path)
{
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const cb_field_rule_t *r = cb_contract_rule(md, f);
        if (inlined(md, f)) {
            required_bools(d, o, f->descriptor, path);
            continue;
        }
        char name[64], at[256];
        if (f->type != PROTOBUF_C_TYPE_BOOL || !r || !r->required || r->owned)
            continue;
        json_t *v = json_object_get(o, cb_contract_api_name(md, f, name, sizeof(name)));
        if (v == NULL || json_is_null(v)) {
            join(at, sizeof(at), path, name);
            cb_contract_missing(d->rep, at);
        }
    }
}

static int decode_object(dec_t *d, json_t *o, ProtobufCMessage *m, const char *path, int depth)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    if (depth > 16)
        return dec_fail(d, path, "%s is nested too deeply", path);
    if (api(d)) {
        /* an inlined message is there even when none of its fields is */
        for (unsigned i = 0; i < md->n_fields; i++) {
            ProtobufCMessage **sub = (ProtobufCMessage **)((uint8_t *)m + md->fields[i].offset);
            if (inlined(md, &md->fields[i]) && *sub == NULL &&
                (*sub = new_message(md->fields[i].descriptor)) == NULL)
                return dec_nomem(d, path);
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        char at[256];
        join(at, sizeof(at), path, key);
        const ProtobufCFieldDescriptor *via = NULL;
        bool as_text;
        const ProtobufCFieldDescriptor *f = find_key(d, md, key, &via, &as_text);
        if (f == NULL)
            return dec_fail(d, at, "unknown field '%s'", at);
        if (json_is_null(v))
            continue;
        ProtobufCMessage *target = m;
        if (via)
            target = *(ProtobufCMessage **)((uint8_t *)m + via->offset);
        if (decode_field(d, target, f, v, as_text, at, depth) != 0)
            return d->rc;
    }
    if (api(d))
        required_bools(d, o, md, path);
    return 0;
}

int cb_pb_from_json(const ProtobufCMessageDescriptor *md, json_t *j, unsigned flags,
                    ProtobufCMessage **out, cb_contract_report_t *rep)
{
    dec_t d = {.flags = flags, .rep = rep};
    *out = NULL;
    if (!json_is_object(j))
        return cb_error_set(&rep->err, CB_ERR_INVALID, "", "the body must be a JSON object");
    ProtobufCMessage *m = new_message(md);
    if (m == NULL)
        return cb_error_set(&rep->err, CB_ERR_NOMEM, "", "out of memory");
    if (decode_object(&d, j, m, "", 0) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return d.rc;
    }
    *out = m;
    return 0;
}
