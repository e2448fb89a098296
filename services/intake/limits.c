/*
 * limits.c — the size rules every command obeys, whichever door it came by.
 *
 * Checked on the decoded Command, from its descriptor, before anything runs:
 * each string's length in bytes and that it is UTF-8 without NUL, each
 * repeated field's count, each byte string's length, each double finite (and
 * coordinates in range). The HTTP decoder checks the same while it reads JSON
 * (so that its errors come with JSON's context); this pass is what the ZeroMQ
 * door relies on, and a second fence behind the first.
 *
 * Field names in errors are the JSON API's: the case summary's fields sit at
 * the top of a report (description, not case.description), an OrgRef is named
 * by its field (sender, not sender.org_id), and a few fields have API names
 * of their own (receiver for proposed_receiver_id).
 */
#include "intake.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_STRING_MAX 128
#define DEFAULT_REPEATED_MAX 64
#define DEFAULT_BYTES_MAX 64

typedef struct limit {
    const char *message; /* short name of the message, NULL: any */
    const char *field;
    size_t max;
} limit_t;

/* The same figures as commands.c's JSON decoder. */
static const limit_t limits[] = {
    {"Reporter", "name", 64},
    {"Reporter", "phone", 20},
    {"Reporter", "id_number", 18},
    {NULL, "name", 256},
    {NULL, "credit_code", 18},
    {NULL, "address", 512},
    {NULL, "description", 8000},
    {NULL, "external_ref", 128},
    {NULL, "matter_code", 32},
    {NULL, "township_code", 12},
    {NULL, "media_type", 128},
    {NULL, "uri", 2048},
    {NULL, "title", 256},
    {NULL, "text", 16000},
    {NULL, "answer", 16000},
    {NULL, "question", 8000},
    {NULL, "reasoning", 8000},
    {NULL, "summary", 8000},
    {NULL, "reason", 4000},
    {NULL, "note", 4000},
    {NULL, "subject", 1000},
    {NULL, "period", 7},
    {NULL, "org_id", 64},
    {NULL, "proposed_receiver_id", 64},
    {NULL, "competent_org_id", 64},
    {NULL, "approved_by", 64},
    {NULL, "decision_id", 64},
    {"TransferSent", "materials", 32},
    {NULL, "attachments", 64},
    {"Attachment", "sha256", 32},
};

static const struct {
    const char *proto, *api;
} renamed[] = {
    {"proposed_receiver_id", "receiver"},
    {"competent_org_id", "competent_org"},
};

static size_t limit_of(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f,
                       size_t def)
{
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (strcmp(limits[i].field, f->name) == 0 &&
            (limits[i].message == NULL || strcmp(limits[i].message, md->short_name) == 0))
            return limits[i].max;
    return def;
}

/* Appends field f (element i when repeated, i < 0 otherwise) to path, in the API's spelling. */
static void step(char *out, size_t n, const char *path, const ProtobufCMessageDescriptor *md,
                 const ProtobufCFieldDescriptor *f, long i)
{
    const char *name = f->name;
    for (size_t k = 0; k < sizeof(renamed) / sizeof(renamed[0]); k++)
        if (strcmp(renamed[k].proto, name) == 0)
            name = renamed[k].api;
    if (strcmp(md->short_name, "OrgRef") == 0 && strcmp(name, "org_id") == 0) {
        snprintf(out, n, "%s", path); /* "sender": the organisation is named by its id */
        return;
    }
    if (strcmp(md->short_name, "CaseReported") == 0 && strcmp(name, "case") == 0) {
        snprintf(out, n, "%s", path); /* a report's JSON is the case's own fields */
        return;
    }
    if (i >= 0)
        snprintf(out, n, "%s%s%s[%ld]", path, *path ? "." : "", name, i);
    else
        snprintf(out, n, "%s%s%s", path, *path ? "." : "", name);
}

static int check_message(const ProtobufCMessage *m, const char *path, cb_error_t *err);

static int check_value(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f,
                       const void *v, const char *at, cb_error_t *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        size_t len = s ? strlen(s) : 0, bad, max = limit_of(md, f, DEFAULT_STRING_MAX);
        if (len > max)
            return cb_error_set(err, CB_ERR_INVALID, at, "%s is at most %zu bytes (got %zu)", at,
                                max, len);
        if (len && !cb_utf8_valid(s, len, &bad))
            return cb_error_set(err, CB_ERR_INVALID, at,
                                "%s must be UTF-8 text (bad byte at offset %zu)", at, bad);
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        size_t max = limit_of(md, f, DEFAULT_BYTES_MAX);
        if (b->len > max)
            return cb_error_set(err, CB_ERR_INVALID, at, "%s is at most %zu bytes (got %zu)", at,
                                max, b->len);
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = *(const double *)v;
        double lim = strcmp(f->name, "latitude") == 0    ? 90
                     : strcmp(f->name, "longitude") == 0 ? 180
                                                         : INFINITY;
        if (!isfinite(d))
            return cb_error_set(err, CB_ERR_INVALID, at, "%s must be a finite number", at);
        if (d < -lim || d > lim)
            return cb_error_set(err, CB_ERR_INVALID, at, "%s must be between %g and %g", at, -lim,
                                lim);
        return 0;
    }
    case PROTOBUF_C_TYPE_FLOAT:
        if (!isfinite(*(const float *)v))
            return cb_error_set(err, CB_ERR_INVALID, at, "%s must be a finite number", at);
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
        return sub ? check_message(sub, at, err) : 0;
    }
    default:
        return 0;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    default:
        return 0; /* not checked */
    }
}

static int check_message(const ProtobufCMessage *m, const char *path, cb_error_t *err)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        }
        size_t size = value_size(f);
        char at[256];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            size_t max = limit_of(md, f, DEFAULT_REPEATED_MAX);
            step(at, sizeof(at), path, md, f, -1);
            if (n > max)
                return cb_error_set(err, CB_ERR_INVALID, at, "%s has at most %zu entries (got %zu)",
                                    at, max, n);
            if (size == 0)
                continue;
            const char *arr = *(const char *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                step(at, sizeof(at), path, md, f, (long)k);
                if (check_value(md, f, arr + k * size, at, err) != 0)
                    return -1;
            }
        } else if (size != 0) {
            step(at, sizeof(at), path, md, f, -1);
            if (check_value(md, f, base + f->offset, at, err) != 0)
                return -1;
        }
    }
    return 0;
}

int intake_check_limits(const Casebus__V1__Command *cmd, cb_error_t *err)
{
    const ProtobufCMessageDescriptor *md = cmd->base.descriptor;
    const char *base = (const char *)cmd;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const char *field = f->name;
        if (strcmp(field, "target_id") == 0)
            field = "target";
        if (f->type == PROTOBUF_C_TYPE_STRING &&
            check_value(md, f, base + f->offset, field, err) != 0)
            return -1;
    }
    /* The body: its fields are named as in the JSON body, without the command's name. */
    const ProtobufCMessage *body = NULL;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) == f->id)
            body = *(ProtobufCMessage *const *)(base + f->offset);
    }
    return body ? check_message(body, "", err) : 0;
}
