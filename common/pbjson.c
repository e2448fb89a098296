/*
 * pbjson.c — protobuf-c messages as JSON (pbjson.h).
 */
#include "pbjson.h"
#include "cbtime.h"
#include "evlog.h"

#include <ctype.h>
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

static json_t *enum_name(const ProtobufCEnumDescriptor *ed, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, value);
    if (v == NULL)
        return json_integer(value); /* a value newer than this build */
    /* The prefix is value 0's name less "UNSPECIFIED" (STYLE.md: X_UNSPECIFIED = 0). */
    const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(ed, 0);
    size_t skip = 0;
    if (zero && strlen(zero->name) > 11 &&
        strcmp(zero->name + strlen(zero->name) - 11, "UNSPECIFIED") == 0) {
        skip = strlen(zero->name) - 11;
        if (strncmp(v->name, zero->name, skip) != 0)
            skip = 0;
    }
    char buf[128];
    size_t n = 0;
    for (const char *p = v->name + skip; *p && n + 1 < sizeof(buf); p++)
        buf[n++] = (char)tolower((unsigned char)*p);
    buf[n] = '\0';
    return json_string(buf);
}

static json_t *scalar(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_name(f->descriptor, *(const int *)p);
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

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
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
                json_array_append_new(v, scalar(f, arr + k * elem_size(f)));
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
    const ProtobufCFieldDescriptor *f =
        env->body_case ? protobuf_c_message_descriptor_get_field(&casebus__v1__envelope__descriptor,
                                                                 env->body_case)
                       : NULL;
    if (f) {
        const ProtobufCMessage *m =
            *(ProtobufCMessage *const *)((const uint8_t *)env + f->offset);
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
        size_t n = f->label == PROTOBUF_C_LABEL_REPEATED ? *(size_t *)((uint8_t *)msg +
                                                                       f->quantifier_offset)
                                                         : 1;
        ProtobufCMessage **subs = f->label == PROTOBUF_C_LABEL_REPEATED
                                      ? *(ProtobufCMessage ***)at
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
