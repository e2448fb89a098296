/*
 * pbjsonw.c — an event written as JSON text straight from its protobuf-c
 * message: the same bytes as cb_jsonw_dumps of cb_envelope_to_cloudevent's
 * document, personal data masked the same way,
 * without building that document first. notify makes a webhook body for every
 * delivery and the tail a line for every event; the document's allocations
 * were the larger part of both (tests/unit/test_pbjson.c compares the two on
 * random events).
 */
#include "cloudevent.h"
#include "cbtime.h"
#include "evlog.h"
#include "jsonw.h"
#include "pbjson.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* What mask() does to a message's own fields (pbjson.c): a reporter's name,
 * phone and id number when not empty, a person party's name. Neither is
 * looked into further, as mask() does not. */
typedef enum { MASK_NONE, MASK_REPORTER, MASK_PARTY } mask_t;

#define PUT(w, lit) cb_jsonw_raw((w), (lit), sizeof(lit) - 1)

/* jansson's rule for a string: UTF-8 without overlong forms, surrogates or
 * code points past U+10FFFF. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
        if (len == 0 || i + len > n)
            return false;
        uint32_t v = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            v = v << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || (v >= 0xd800 && v <= 0xdfff) ||
            v > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

static int put_text(cb_jsonw_t *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!utf8_ok((const unsigned char *)(s ? s : ""), n))
        return PUT(w, "\"<not UTF-8>\"");
    return cb_jsonw_string(w, s ? s : "", n);
}

static int put_int(cb_jsonw_t *w, long long v)
{
    char num[24], *p = num + sizeof(num);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return cb_jsonw_raw(w, p, (size_t)(num + sizeof(num) - p));
}

static int put_hex(cb_jsonw_t *w, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char text[2 * 64];
    int rc = PUT(w, "\"");
    for (size_t i = 0; rc == 0 && i < len; i += 64) {
        size_t n = len - i < 64 ? len - i : 64;
        for (size_t j = 0; j < n; j++) {
            text[2 * j] = digits[data[i + j] >> 4];
            text[2 * j + 1] = digits[data[i + j] & 15];
        }
        rc = cb_jsonw_raw(w, text, 2 * n);
    }
    return rc ? rc : PUT(w, "\"");
}

static int put_message(cb_jsonw_t *w, const ProtobufCMessage *m, bool masking, mask_t mode);

/* A message field's value: masked as its name says when masking. */
static int put_child(cb_jsonw_t *w, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                     bool masking)
{
    if (m == NULL)
        return PUT(w, "null");
    if (masking && strcmp(f->name, "reporter") == 0)
        return put_message(w, m, false, MASK_REPORTER);
    if (masking && strcmp(f->name, "party") == 0) {
        const ProtobufCFieldDescriptor *p =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "is_person");
        if (p && p->type == PROTOBUF_C_TYPE_BOOL && p->label != PROTOBUF_C_LABEL_REPEATED &&
            *(const protobuf_c_boolean *)((const uint8_t *)m + p->offset))
            return put_message(w, m, false, MASK_PARTY);
    }
    return put_message(w, m, masking, MASK_NONE);
}

static int put_scalar(cb_jsonw_t *w, const ProtobufCFieldDescriptor *f, const void *p, bool masking)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return put_int(w, *(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return put_int(w, *(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return put_int(w, *(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return put_int(w, (long long)(json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: { /* jansson's own formatting, as the document's */
        json_t *r = json_real(f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p
                                                                : *(const double *)p);
        int rc = r ? cb_jsonw_append(w, r) : PUT(w, "null");
        json_decref(r);
        return rc;
    }
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p ? PUT(w, "true") : PUT(w, "false");
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        char buf[128];
        if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) == NULL)
            return put_int(w, v); /* a value newer than this build */
        return put_text(w, cb_pb_enum_word(f->descriptor, v, buf, sizeof(buf)));
    }
    case PROTOBUF_C_TYPE_STRING: return put_text(w, *(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return put_hex(w, b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: return put_child(w, f, *(ProtobufCMessage *const *)p, masking);
    }
    return PUT(w, "null");
}

static bool masked(const ProtobufCFieldDescriptor *f, const void *p, mask_t mode)
{
    if (mode == MASK_PARTY)
        return strcmp(f->name, "name") == 0;
    if (mode != MASK_REPORTER || f->type != PROTOBUF_C_TYPE_STRING ||
        (strcmp(f->name, "name") != 0 && strcmp(f->name, "phone") != 0 &&
         strcmp(f->name, "id_number") != 0))
        return false;
    const char *s = *(char *const *)p;
    return s && *s;
}

static int put_message(cb_jsonw_t *w, const ProtobufCMessage *m, bool masking, mask_t mode)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rc = PUT(w, "{");
    bool first = true, named = false;
    for (unsigned i = 0; rc == 0 && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const uint8_t *base = (const uint8_t *)m + f->offset;
        if (f->label != PROTOBUF_C_LABEL_REPEATED && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const uint8_t *)m + f->quantifier_offset) != f->id)
            continue;
        if ((!first && (rc = PUT(w, ",")) != 0) ||
            (rc = cb_jsonw_string(w, f->name, strlen(f->name))) != 0 || (rc = PUT(w, ":")) != 0)
            break;
        first = false;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const uint8_t *)m + f->quantifier_offset);
            const uint8_t *arr = *(const uint8_t *const *)base;
            rc = PUT(w, "[");
            for (size_t k = 0; rc == 0 && k < n; k++) {
                const void *p = arr + k * cb_pb_value_size(f);
                const ProtobufCMessage *e = *(ProtobufCMessage *const *)p;
                if (k > 0 && (rc = PUT(w, ",")) != 0)
                    break;
                /* an element is not masked for its field's name, as mask() does not */
                rc = f->type != PROTOBUF_C_TYPE_MESSAGE ? put_scalar(w, f, p, masking)
                     : e                                ? put_message(w, e, masking, MASK_NONE)
                                                        : PUT(w, "null");
            }
            if (rc == 0)
                rc = PUT(w, "]");
        } else if (masked(f, base, mode)) {
            named = true;
            rc = PUT(w, "\"***\"");
        } else {
            rc = put_scalar(w, f, base, masking);
        }
    }
    /* mask() gives a person party a name even when its message has none */
    if (rc == 0 && mode == MASK_PARTY && !named)
        rc = first ? PUT(w, "\"name\":\"***\"") : PUT(w, ",\"name\":\"***\"");
    return rc ? rc : PUT(w, "}");
}

/* cb_envelope_to_json's document, its members in the same order. */
static int put_envelope(cb_jsonw_t *w, const Casebus__V1__Envelope *env, int show_personal)
{
    char when[40];
    cb_time_format_cst(env->recorded_at_ms, when, sizeof(when));
    int rc;
    if ((rc = PUT(w, "{\"producer\":")) || (rc = put_text(w, env->producer)) ||
        (rc = PUT(w, ",\"seq\":")) || (rc = put_int(w, (long long)(json_int_t)env->seq)) ||
        (rc = PUT(w, ",\"event_id\":")) || (rc = put_text(w, env->event_id)) ||
        (rc = PUT(w, ",\"type\":")) || (rc = put_text(w, cb_event_type(env))) ||
        (rc = PUT(w, ",\"recorded_at\":")) || (rc = put_text(w, when)) ||
        (rc = PUT(w, ",\"recorded_at_ms\":")) || (rc = put_int(w, env->recorded_at_ms)) ||
        (rc = PUT(w, ",\"case_id\":")) || (rc = put_text(w, env->case_id)) ||
        (rc = PUT(w, ",\"hash\":")) || (rc = put_hex(w, env->hash.data, env->hash.len)) ||
        (rc = PUT(w, ",\"event\":")))
        return rc;
    const ProtobufCMessage *m =
        env->body_case ? cb_pb_message_field(&env->base, (unsigned)env->body_case) : NULL;
    rc = m ? put_message(w, m, !show_personal, MASK_NONE) : PUT(w, "null");
    return rc ? rc : PUT(w, "}");
}

/* a, b, c and d into out, cut to fit as snprintf("%s%s%s%s") would cut them */
static void join(char *out, size_t size, const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[] = {a, b, c, d};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(parts[i]);
        if (len > size - 1 - n)
            len = size - 1 - n;
        memcpy(out + n, parts[i], len);
        n += len;
    }
    out[n] = '\0';
}

int cb_cloudevent_write(cb_jsonw_t *w, const Casebus__V1__Envelope *env, int show_personal,
                        const cb_cloudevents_t *ce, const char *const (*extra)[2], size_t nextra)
{
    const char *producer = env->producer ? env->producer : "";
    char source[64 + sizeof(ce->division_code)], full[sizeof(ce->type_prefix) + 64], when[40];
    join(source, sizeof(source), "/casebus/", ce->division_code, "/", producer);
    join(full, sizeof(full), ce->type_prefix, ".", cb_event_type(env), "");
    cb_time_format_cst(env->recorded_at_ms, when, sizeof(when));
    size_t was = w->len;
    int rc;
    if ((rc = PUT(w, "{\"specversion\":\"" CB_CE_SPECVERSION "\",\"id\":")) ||
        (rc = put_text(w, env->event_id)) || (rc = PUT(w, ",\"source\":")) ||
        (rc = put_text(w, source)) || (rc = PUT(w, ",\"type\":")) || (rc = put_text(w, full)) ||
        (rc = PUT(w, ",\"time\":")) || (rc = put_text(w, when)) ||
        (rc = PUT(w, ",\"datacontenttype\":\"application/json\"")))
        goto out;
    if (env->case_id && *env->case_id &&
        ((rc = PUT(w, ",\"subject\":")) || (rc = put_text(w, env->case_id))))
        goto out;
    if ((rc = PUT(w, ",\"data\":")) || (rc = put_envelope(w, env, show_personal)) ||
        (rc = PUT(w, ",\"seq\":")) || (rc = put_int(w, (long long)(json_int_t)env->seq)) ||
        (rc = PUT(w, ",\"producer\":")) || (rc = put_text(w, producer)) ||
        (rc = PUT(w, ",\"hash\":")) || (rc = put_hex(w, env->hash.data, env->hash.len)))
        goto out;
    for (size_t i = 0; i < nextra; i++)
        if ((rc = PUT(w, ",")) || (rc = put_text(w, extra[i][0])) || (rc = PUT(w, ":")) ||
            (rc = put_text(w, extra[i][1])))
            goto out;
    rc = PUT(w, "}");
out:
    if (rc != 0)
        w->len = was;
    return rc;
}
