/*
 * contract.c — the field rules of proto/casebus/v1/fields.def (contract.h).
 */
#include "contract.h"
#include "pbjson.h"
#include "utf8.h"

#include "casebus/v1/intake.pb-c.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE(m, f, ...) {.message = #m, .field = #f, __VA_ARGS__},
static const cb_field_rule_t rules[] = {
#include "../proto/casebus/v1/fields.def"
};
#undef RULE
#define NRULES (sizeof(rules) / sizeof(rules[0]))

static const cb_field_rule_t *search(const ProtobufCMessageDescriptor *md,
                                     const ProtobufCFieldDescriptor *f)
{
    const cb_field_rule_t *any = NULL;
    for (size_t i = 0; i < NRULES; i++) {
        if (strcmp(rules[i].field, f->name) != 0)
            continue;
        if (strcmp(rules[i].message, md->short_name) == 0)
            return &rules[i];
        if (strcmp(rules[i].message, "ANY") == 0)
            any = &rules[i];
    }
    return any;
}

/* The rules of every field reachable from a Command, by field descriptor:
 * a command is checked field by field, so the lookup is a hash, not a scan. */
#define SLOTS 2048
static struct slot {
    const ProtobufCFieldDescriptor *f;
    const cb_field_rule_t *rule;
} slots[SLOTS];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static size_t slot_of(const ProtobufCFieldDescriptor *f)
{
    return ((uintptr_t)f >> 4) * 2654435761u % SLOTS;
}

static void index_message(const ProtobufCMessageDescriptor *md, int depth)
{
    if (depth > 8)
        return;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        size_t s = slot_of(f), tries = 0;
        while (slots[s].f && slots[s].f != f && tries++ < SLOTS)
            s = (s + 1) % SLOTS;
        if (slots[s].f == f || tries >= SLOTS)
            continue; /* seen (a message reached twice), or full: search() serves it */
        slots[s].f = f;
        slots[s].rule = search(md, f);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            index_message(f->descriptor, depth + 1);
    }
}

static void build_index(void)
{
    index_message(&casebus__v1__command__descriptor, 0);
}

const cb_field_rule_t *cb_contract_rule(const ProtobufCMessageDescriptor *md,
                                        const ProtobufCFieldDescriptor *f)
{
    pthread_once(&index_once, build_index);
    for (size_t s = slot_of(f), tries = 0; slots[s].f && tries < SLOTS;
         s = (s + 1) % SLOTS, tries++)
        if (slots[s].f == f)
            return slots[s].rule;
    return search(md, f);
}

bool cb_contract_is_time(const ProtobufCFieldDescriptor *f)
{
    size_t n = strlen(f->name);
    return f->type == PROTOBUF_C_TYPE_INT64 && n >= 5 && strcmp(f->name + n - 5, "at_ms") == 0 &&
           (n == 5 || f->name[n - 6] == '_');
}

const char *cb_contract_api_name(const ProtobufCMessageDescriptor *md,
                                 const ProtobufCFieldDescriptor *f, char *buf, size_t size)
{
    const cb_field_rule_t *r = cb_contract_rule(md, f);
    if (r && r->api)
        snprintf(buf, size, "%s", r->api);
    else if (cb_contract_is_time(f))
        snprintf(buf, size, "%.*s", (int)strlen(f->name) - 3, f->name);
    else
        snprintf(buf, size, "%s", f->name);
    return buf;
}

const ProtobufCFieldDescriptor *cb_contract_ref_field(const ProtobufCMessageDescriptor *md)
{
    if (md == &casebus__v1__org_ref__descriptor)
        return protobuf_c_message_descriptor_get_field_by_name(md, "org_id");
    return NULL;
}

uint32_t cb_contract_max(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f)
{
    const cb_field_rule_t *r = cb_contract_rule(md, f);
    if (r && r->max)
        return r->max;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return CB_CONTRACT_REPEATED_MAX;
    return f->type == PROTOBUF_C_TYPE_BYTES ? CB_CONTRACT_BYTES_MAX : CB_CONTRACT_STRING_MAX;
}

void cb_contract_report_init(cb_contract_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
}

void cb_contract_missing(cb_contract_report_t *rep, const char *path)
{
    for (size_t i = 0; i < rep->nmissing && i < CB_CONTRACT_MISSING_MAX; i++)
        if (strcmp(rep->missing[i], path) == 0)
            return;
    if (rep->nmissing < CB_CONTRACT_MISSING_MAX)
        snprintf(rep->missing[rep->nmissing], sizeof(rep->missing[0]), "%s", path);
    rep->nmissing++;
}

/* ---- walking a message ---- */

static bool oneof_unset(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id;
}

static bool written_at_parent(const cb_field_rule_t *r, const ProtobufCFieldDescriptor *f)
{
    return (r && r->inlined) ||
           (f->type == PROTOBUF_C_TYPE_MESSAGE && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
}

/* The API path of f under path (element i when i >= 0). */
static void step(char *out, size_t n, const char *path, const ProtobufCMessageDescriptor *md,
                 const ProtobufCFieldDescriptor *f, const cb_field_rule_t *r, long i)
{
    char name[64];
    if (written_at_parent(r, f) || cb_contract_ref_field(md) == f) {
        snprintf(out, n, "%s", path);
        return;
    }
    cb_contract_api_name(md, f, name, sizeof(name));
    if (i >= 0)
        snprintf(out, n, "%s%s%s[%ld]", path, *path ? "." : "", name, i);
    else
        snprintf(out, n, "%s%s%s", path, *path ? "." : "", name);
}

static double number_of(const ProtobufCFieldDescriptor *f, const void *v, bool *is_number)
{
    *is_number = true;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return *(const int32_t *)v;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)v;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return (double)*(const int64_t *)v;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return (double)*(const uint64_t *)v;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)v;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)v;
    default: *is_number = false; return 0;
    }
}

/* Whether a value counts as absent for a required field. */
static bool empty_value(const ProtobufCFieldDescriptor *f, const void *v)
{
    bool num;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)v)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)v;
        if (m == NULL)
            return true;
        const ProtobufCFieldDescriptor *ref = cb_contract_ref_field(m->descriptor);
        return ref && empty_value(ref, (const char *)m + ref->offset);
    }
    case PROTOBUF_C_TYPE_ENUM: return *(const int *)v == 0;
    case PROTOBUF_C_TYPE_BOOL: return false; /* no presence: see contract.h */
    default: return number_of(f, v, &num) == 0;
    }
}

typedef struct walk {
    cb_contract_report_t *rep;
    bool failed; /* rep->err holds the first broken limit */
} walk_t;

/* Where a value is: its path is written only when it is needed (a refusal, or
 * a message to descend into), not for every field of every command. */
typedef struct place {
    const char *parent;
    const ProtobufCMessageDescriptor *md;
    const ProtobufCFieldDescriptor *f;
    const cb_field_rule_t *r;
    long i; /* the element of a repeated field, -1 for the field itself */
} place_t;

static const char *where(const place_t *p, char *buf, size_t n)
{
    step(buf, n, p->parent, p->md, p->f, p->r, p->i);
    return buf;
}

/* The first broken limit: the value's path, then what fmt says of it. */
static void broken(walk_t *w, const place_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void broken(walk_t *w, const place_t *p, const char *fmt, ...)
{
    if (w->failed)
        return;
    char at[256], rest[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    where(p, at, sizeof(at));
    w->failed = true;
    cb_error_set(&w->rep->err, CB_ERR_INVALID, at, "%s%s", at, rest);
}

static void missing(walk_t *w, const place_t *p)
{
    char at[256];
    const char *path = where(p, at, sizeof(at));
    /* a message written at its parent's level, missing: its own name */
    cb_contract_missing(w->rep, *path ? path : p->f->name);
}

static void check_message(walk_t *w, const ProtobufCMessage *m, const char *path, int depth);

static void check_value(walk_t *w, const place_t *p, const void *v, int depth)
{
    const ProtobufCFieldDescriptor *f = p->f;
    const cb_field_rule_t *r = p->r;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        size_t len = s ? strlen(s) : 0, bad, max = cb_contract_max(p->md, f);
        if (len > max)
            broken(w, p, " is at most %zu bytes (got %zu)", max, len);
        else if (len && r && len < r->min)
            broken(w, p, " is at least %u bytes (got %zu)", r->min, len);
        else if (len && !cb_utf8_valid(s, len, &bad))
            broken(w, p, " must be UTF-8 text (bad byte at offset %zu)", bad);
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t len = ((const ProtobufCBinaryData *)v)->len, max = cb_contract_max(p->md, f);
        if (len > max || (len && r && len < r->min)) {
            if (r && r->min == max)
                broken(w, p, " must be %zu bytes (got %zu)", max, len);
            else
                broken(w, p, " is at most %zu bytes (got %zu)", max, len);
        }
        return;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int e = *(const int *)v;
        if (e != 0 && protobuf_c_enum_descriptor_get_value(f->descriptor, e) == NULL)
            broken(w, p, ": %d is not a value of %s", e,
                   ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
        char at[256];
        if (sub)
            check_message(w, sub, where(p, at, sizeof(at)), depth + 1);
        return;
    }
    default: break;
    }
    bool num;
    double x = number_of(f, v, &num);
    if (!num)
        return;
    if (!isfinite(x))
        broken(w, p, " must be a finite number");
    else if (r && r->lo < r->hi && (x < r->lo || x > r->hi))
        broken(w, p, " must be between %.15g and %.15g", r->lo, r->hi);
}

static void check_message(walk_t *w, const ProtobufCMessage *m, const char *path, int depth)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    const char *base = (const char *)m;
    if (depth > 16) {
        w->failed = true;
        cb_error_set(&w->rep->err, CB_ERR_INVALID, path, "%s is nested too deeply", path);
        return;
    }
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const cb_field_rule_t *r = cb_contract_rule(md, f);
        if ((r && r->owned) || oneof_unset(m, f))
            continue;
        place_t p = {.parent = path, .md = md, .f = f, .r = r, .i = -1};
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            size_t max = cb_contract_max(md, f), size = cb_pb_value_size(f);
            if (r && r->required && n == 0)
                missing(w, &p);
            if (n > max) {
                broken(w, &p, " has at most %zu entries (got %zu)", max, n);
                continue;
            }
            const char *arr = *(const char *const *)(base + f->offset);
            for (size_t k = 0; arr && k < n; k++) {
                p.i = (long)k;
                check_value(w, &p, arr + k * size, depth);
            }
            continue;
        }
        if (r && r->required && empty_value(f, base + f->offset)) {
            missing(w, &p);
            /* a missing reference's own rule would name it twice */
            if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
                *(ProtobufCMessage *const *)(base + f->offset) == NULL)
                continue;
        }
        check_value(w, &p, base + f->offset, depth);
    }
}

int cb_contract_check(const ProtobufCMessage *msg, cb_contract_report_t *rep)
{
    walk_t w = {.rep = rep, .failed = rep->err.code != 0};
    check_message(&w, msg, "", 0);
    if (rep->nmissing) {
        char list[300] = "";
        size_t n =
            rep->nmissing < CB_CONTRACT_MISSING_MAX ? rep->nmissing : CB_CONTRACT_MISSING_MAX;
        for (size_t i = 0; i < n; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", rep->missing[i]);
        }
        if (rep->nmissing == 1)
            return cb_error_set(&rep->err, CB_ERR_MISSING, rep->missing[0], "%s is required",
                                rep->missing[0]);
        return cb_error_set(&rep->err, CB_ERR_MISSING, rep->missing[0],
                            "%zu required fields are missing: %s", rep->nmissing, list);
    }
    return w.failed ? rep->err.code : 0;
}

/* ---- preparing a command ---- */

static void clear_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *at = (char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)((char *)m + f->quantifier_offset);
        void **arr = *(void ***)at;
        for (size_t k = 0; arr && k < *n; k++) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                protobuf_c_message_free_unpacked(arr[k], NULL);
            else if (f->type == PROTOBUF_C_TYPE_STRING)
                free(arr[k]);
            else if (f->type == PROTOBUF_C_TYPE_BYTES)
                free(((ProtobufCBinaryData *)arr)[k].data);
        }
        free(arr);
        *(void **)at = NULL;
        *n = 0;
        return;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char **s = (char **)at;
        if (*s && *s != (const char *)f->default_value)
            free(*s);
        *s = (char *)f->default_value;
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = (ProtobufCBinaryData *)at;
        free(b->data);
        b->data = NULL;
        b->len = 0;
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **sub = (ProtobufCMessage **)at;
        if (*sub)
            protobuf_c_message_free_unpacked(*sub, NULL);
        *sub = NULL;
        return;
    }
    default: memset(at, 0, cb_pb_value_size(f)); return;
    }
}

static void prepare(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    for (unsigned i = 0; i < md->n_fields && depth < 16; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const cb_field_rule_t *r = cb_contract_rule(md, f);
        if (oneof_unset(m, f))
            continue;
        if (r && r->owned) {
            clear_field(m, f);
            continue;
        }
        char *at = (char *)m + f->offset;
        if (r && r->dflt && f->type == PROTOBUF_C_TYPE_ENUM &&
            f->label != PROTOBUF_C_LABEL_REPEATED && *(int *)at == 0)
            *(int *)at = r->dflt;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        size_t n = f->label == PROTOBUF_C_LABEL_REPEATED
                       ? *(size_t *)((char *)m + f->quantifier_offset)
                       : 1;
        ProtobufCMessage **subs = f->label == PROTOBUF_C_LABEL_REPEATED ? *(ProtobufCMessage ***)at
                                                                        : (ProtobufCMessage **)at;
        for (size_t k = 0; subs && k < n; k++)
            if (subs[k])
                prepare(subs[k], depth + 1);
    }
}

void cb_contract_prepare(ProtobufCMessage *msg)
{
    prepare(msg, 0);
}
