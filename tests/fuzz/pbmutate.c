/*
 * pbmutate.c — structure-aware protobuf mutation (pbmutate.h).
 */
#include "pbmutate.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

typedef struct rng {
    uint64_t s;
} rng_t;

static uint32_t next(rng_t *r)
{
    r->s = r->s * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(r->s >> 33);
}

static size_t below(rng_t *r, size_t n)
{
    return n ? next(r) % n : 0;
}

/* A place in the message tree: a field of a message. */
typedef struct slot {
    ProtobufCMessage *msg;
    const ProtobufCFieldDescriptor *f;
} slot_t;

#define MAX_SLOTS 512

static void collect(ProtobufCMessage *m, slot_t *slots, size_t *n, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields && *n < MAX_SLOTS; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        slots[(*n)++] = (slot_t){m, f};
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || depth > 6)
            continue;
        char *base = (char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
            *(uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(size_t *)(base + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + f->offset);
            for (size_t k = 0; k < count && k < 4; k++)
                collect(arr[k], slots, n, depth + 1);
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
            if (sub)
                collect(sub, slots, n, depth + 1);
        }
    }
}

static char *make_string(rng_t *r, const pbm_dict_t *dict, const char *old)
{
    size_t ndict = 0;
    while (dict->strings[ndict])
        ndict++;
    switch (below(r, 8)) {
    case 0: { /* at and past the limits: 64, 65, 4000, 8001 bytes */
        static const size_t lens[] = {0, 1, 18, 19, 64, 65, 129, 4001, 8001, 16001};
        size_t len = lens[below(r, sizeof(lens) / sizeof(lens[0]))];
        char *s = malloc(len + 1);
        const char *fill = below(r, 2) ? "x" : "\xe6\x92\xa4"; /* 撤: 3 bytes */
        size_t fl = strlen(fill);
        for (size_t i = 0; i < len; i++)
            s[i] = fill[i % fl];
        s[len] = '\0';
        return s;
    }
    case 1:
        return strdup(below(r, 2) ? "\xff\xfe not utf-8" : "a\xe6\x92"); /* bad, or cut */
    case 2: { /* the old value, mutated as bytes */
        size_t len = old ? strlen(old) : 0, max = len + 16;
        char *s = malloc(max + 1);
        if (old)
            memcpy(s, old, len);
        len = LLVMFuzzerMutate((uint8_t *)s, len, max);
        s[len] = '\0';
        for (size_t i = 0; i < len; i++)
            if (s[i] == '\0')
                s[i] = '0';
        return s;
    }
    default:
        return strdup(ndict ? dict->strings[below(r, ndict)] : "");
    }
}

static int64_t make_int(rng_t *r, const pbm_dict_t *dict)
{
    static const int64_t days[] = {0, 1, -1, 2, 3, 4, 5, 10, 30, -30, 365, -3650, 20000};
    switch (below(r, 5)) {
    case 0:
        return (int64_t)below(r, 20) - 2;
    case 1: {
        static const int64_t edge[] = {0, -1, 1, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN,
                                       100000000, 1 << 20};
        return edge[below(r, sizeof(edge) / sizeof(edge[0]))];
    }
    default: /* a time around now, in ms */
        return dict->now_ms + days[below(r, sizeof(days) / sizeof(days[0]))] * 86400000 +
               (int64_t)below(r, 86400000) - 43200000;
    }
}

static void free_value(const ProtobufCFieldDescriptor *f, void *at)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char **s = at;
        if (*s && *s != (char *)f->default_value && *s != protobuf_c_empty_string)
            free(*s);
        *s = NULL;
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage **m = at;
        if (*m)
            protobuf_c_message_free_unpacked(*m, NULL);
        *m = NULL;
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData *b = at;
        if (b->data && (f->default_value == NULL ||
                        b->data != ((const ProtobufCBinaryData *)f->default_value)->data))
            free(b->data);
        b->data = NULL;
        b->len = 0;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 8;
    }
}

/* Writes a fresh value of f's type at `at` (freed first). */
static void set_value(rng_t *r, const pbm_dict_t *dict, const ProtobufCFieldDescriptor *f,
                      void *at)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = make_string(r, dict, *(char **)at);
        free_value(f, at);
        *(char **)at = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        free_value(f, at);
        ProtobufCBinaryData *b = at;
        b->len = below(r, 3) ? 32 : below(r, 70);
        b->data = malloc(b->len ? b->len : 1);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)next(r);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        free_value(f, at);
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *m = malloc(sd->sizeof_message);
        protobuf_c_message_init(sd, m);
        *(ProtobufCMessage **)at = m;
        break;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int32_t *)at = below(r, 8) ? ed->values[below(r, ed->n_values)].value
                                     : (int32_t)below(r, 200) - 5;
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)at = !*(protobuf_c_boolean *)at;
        break;
    case PROTOBUF_C_TYPE_DOUBLE: {
        static const double v[] = {0, 28.9, 119.8, -91, 91, 181, 1e308};
        double x = below(r, 4) ? v[below(r, 7)] : below(r, 2) ? NAN : INFINITY;
        memcpy(at, &x, sizeof(x));
        break;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float x = below(r, 2) ? NAN : 1.5f;
        memcpy(at, &x, sizeof(x));
        break;
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(int32_t *)at = (int32_t)make_int(r, dict);
        break;
    default:
        *(int64_t *)at = make_int(r, dict);
        break;
    }
}

static void mutate_slot(rng_t *r, const pbm_dict_t *dict, slot_t s)
{
    const ProtobufCFieldDescriptor *f = s.f;
    char *base = (char *)s.msg;
    size_t vs = value_size(f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *count = (size_t *)(base + f->quantifier_offset);
        char **arr = (char **)(base + f->offset);
        if (*count > 0 && below(r, 3) == 0) { /* drop the last */
            free_value(f, *arr + (*count - 1) * vs);
            (*count)--;
            return;
        }
        if (*count > 0 && below(r, 3) == 0) { /* change one */
            set_value(r, dict, f, *arr + below(r, *count) * vs);
            return;
        }
        size_t add = below(r, 10) ? 1 : 70; /* now and then past a count limit */
        char *grown = realloc(*arr, (*count + add) * vs);
        if (grown == NULL)
            return;
        *arr = grown;
        for (size_t k = 0; k < add; k++) {
            memset(grown + (*count) * vs, 0, vs);
            set_value(r, dict, f, grown + (*count) * vs);
            (*count)++;
        }
        return;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
        if (*which != f->id) {
            /* the branches share their storage: free the one that is set */
            const ProtobufCMessageDescriptor *d = s.msg->descriptor;
            for (unsigned i = 0; i < d->n_fields; i++)
                if (d->fields[i].id == *which) {
                    free_value(&d->fields[i], base + d->fields[i].offset);
                    break;
                }
            memset(base + f->offset, 0, vs);
            *which = f->id;
        }
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)(base + f->offset) != NULL &&
        below(r, 4) != 0)
        return; /* keep an existing sub-message mostly; its fields are slots too */
    set_value(r, dict, f, base + f->offset);
}

size_t pbm_mutate(const ProtobufCMessageDescriptor *desc, uint8_t *data, size_t size, size_t max,
                  unsigned seed, const pbm_dict_t *dict)
{
    rng_t r = {seed * 2654435761u + 1};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size, data);
    if (m == NULL) {
        if (below(&r, 4) == 0)
            return LLVMFuzzerMutate(data, size, max);
        m = malloc(desc->sizeof_message);
        protobuf_c_message_init(desc, m);
    }
    static slot_t slots[MAX_SLOTS];
    size_t rounds = 1 + below(&r, 3);
    for (size_t k = 0; k < rounds; k++) {
        size_t n = 0;
        collect(m, slots, &n, 0);
        if (n)
            mutate_slot(&r, dict, slots[below(&r, n)]);
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len <= max)
        protobuf_c_message_pack(m, data);
    else
        len = LLVMFuzzerMutate(data, size, max);
    protobuf_c_message_free_unpacked(m, NULL);
    return len;
}
