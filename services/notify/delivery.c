/*
 * delivery.c — a delivery's record in the store, in binary: it is read when
 * its request goes out and rewritten at every attempt, so it is not JSON.
 *
 *   byte 0      version (1); a record that starts with '{' is the JSON that
 *               notify wrote before, read as it was
 *   bytes 1..   the numbers, host order (an LMDB file is not portable across
 *               byte orders anyway): seq, order, first_at, next_at, last_at
 *               (8 bytes each), attempt, last_latency_ms, last_status (4
 *               each), state, queued (1 each)
 *   then        id, sub, org_id, url, type, event_id, producer, case_id,
 *               case_key, last_error: each a 2-byte length, its bytes, a NUL
 */
#include "notify.h"
#include "jsonr.h"
#include "jsonw.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define VERSION 1
#define FIXED (1 + 5 * 8 + 3 * 4 + 2)

static const char *const state_words[] = {"pending", "delivered", "dead"};

const char *nt_state_word(nt_state_t s)
{
    return (unsigned)s < 3 ? state_words[s] : "pending";
}

static const char *string_at(const nt_delivery_t *d, size_t i)
{
    const char *const s[NT_DELIVERY_STRINGS] = {d->id,       d->sub,      d->org_id, d->url,
                                                d->type,     d->event_id, d->producer,
                                                d->case_id,  d->case_key, d->last_error};
    return s[i];
}

static const char **strings_of(nt_delivery_t *d, size_t i)
{
    const char **s[NT_DELIVERY_STRINGS] = {&d->id,       &d->sub,      &d->org_id, &d->url,
                                           &d->type,     &d->event_id, &d->producer,
                                           &d->case_id,  &d->case_key, &d->last_error};
    return s[i];
}

void nt_delivery_free(nt_delivery_t *d)
{
    free(d->owned);
    d->owned = NULL;
}

/* A record written before: JSON, its strings copied into d->owned. */
static int from_json(const MDB_val *v, nt_delivery_t *d)
{
    json_t *rec = cb_jsonr_loadb(v->mv_data, v->mv_size, NULL);
    if (rec == NULL)
        return -1;
    static const char *const names[NT_DELIVERY_STRINGS] = {
        "id", "sub", "org_id", "url", "type", "event_id", "producer", "case_id", "case_key",
        "last_error"};
    const char *val[NT_DELIVERY_STRINGS + 1];
    size_t total = 0;
    for (size_t i = 0; i <= NT_DELIVERY_STRINGS; i++) {
        val[i] = json_string_value(json_object_get(rec, i < NT_DELIVERY_STRINGS ? names[i] : "body"));
        total += (val[i] ? strlen(val[i]) : 0) + 1;
    }
    char *p = d->owned = malloc(total);
    if (p == NULL) {
        json_decref(rec);
        return -1;
    }
    for (size_t i = 0; i <= NT_DELIVERY_STRINGS; i++) {
        size_t len = val[i] ? strlen(val[i]) : 0;
        memcpy(p, val[i] ? val[i] : "", len + 1);
        if (i < NT_DELIVERY_STRINGS)
            *strings_of(d, i) = p;
        else
            d->old_body = val[i] ? p : NULL;
        p += len + 1;
    }
    d->seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
    d->order = (uint64_t)json_integer_value(json_object_get(rec, "order"));
    d->first_at_ms = json_integer_value(json_object_get(rec, "first_at_ms"));
    d->next_at_ms = json_integer_value(json_object_get(rec, "next_at_ms"));
    d->last_at_ms = json_integer_value(json_object_get(rec, "last_at_ms"));
    d->attempt = (uint32_t)json_integer_value(json_object_get(rec, "attempt"));
    d->last_latency_ms = (uint32_t)json_integer_value(json_object_get(rec, "last_latency_ms"));
    d->last_status = (int32_t)json_integer_value(json_object_get(rec, "last_status"));
    const char *state = json_string_value(json_object_get(rec, "state"));
    d->state = state && strcmp(state, "delivered") == 0 ? NT_STATE_DELIVERED
               : state && strcmp(state, "dead") == 0    ? NT_STATE_DEAD
                                                         : NT_STATE_PENDING;
    d->queued = json_is_true(json_object_get(rec, "queued"));
    json_decref(rec);
    return 0;
}

int nt_delivery_decode(const MDB_val *v, nt_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    const uint8_t *b = v->mv_data;
    if (v->mv_size > 0 && b[0] == '{')
        return from_json(v, d);
    if (v->mv_size < FIXED || b[0] != VERSION || (d->owned = malloc(v->mv_size)) == NULL)
        return -1;
    memcpy(d->owned, b, v->mv_size);
    const uint8_t *p = (const uint8_t *)d->owned + 1, *end = (const uint8_t *)d->owned + v->mv_size;
    memcpy(&d->seq, p, 8);
    memcpy(&d->order, p + 8, 8);
    memcpy(&d->first_at_ms, p + 16, 8);
    memcpy(&d->next_at_ms, p + 24, 8);
    memcpy(&d->last_at_ms, p + 32, 8);
    memcpy(&d->attempt, p + 40, 4);
    memcpy(&d->last_latency_ms, p + 44, 4);
    memcpy(&d->last_status, p + 48, 4);
    d->state = (nt_state_t)p[52];
    d->queued = p[53] != 0;
    p += FIXED - 1;
    for (size_t i = 0; i < NT_DELIVERY_STRINGS; i++) {
        uint16_t len = 0;
        if (end - p >= 2)
            memcpy(&len, p, 2);
        if (end - p < 2 + (ptrdiff_t)len + 1 || p[2 + len] != '\0') {
            nt_delivery_free(d);
            return -1;
        }
        *strings_of(d, i) = (const char *)p + 2;
        p += 2 + len + 1;
    }
    return d->state <= NT_STATE_DEAD ? 0 : (nt_delivery_free(d), -1);
}

int nt_delivery_get(notify_t *n, MDB_txn *txn, const char *id, nt_delivery_t *d)
{
    MDB_val k = cb_store_key(id), v;
    if (id == NULL || *id == '\0' || mdb_get(txn, n->db_deliveries, &k, &v) != 0)
        return 1;
    return nt_delivery_decode(&v, d);
}

int nt_delivery_put(notify_t *n, MDB_txn *txn, const nt_delivery_t *d, cb_error_t *err)
{
    size_t len[NT_DELIVERY_STRINGS], total = FIXED;
    for (size_t i = 0; i < NT_DELIVERY_STRINGS; i++) {
        const char *s = string_at(d, i);
        len[i] = s ? strlen(s) : 0;
        if (len[i] > UINT16_MAX)
            return cb_error_set(err, CB_ERR_INVALID, "", "a delivery's field is over 64 KB");
        total += 2 + len[i] + 1;
    }
    /* A record written before kept its body inside: the body goes apart now. */
    int rc;
    if (d->old_body && (rc = nt_body_put(n, txn, d->id, d->old_body, strlen(d->old_body), err)) != 0)
        return rc;
    MDB_val k = cb_store_key(d->id), v = {total, NULL};
    /* Written in place: no copy of the record is made. */
    rc = mdb_put(txn, n->db_deliveries, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return cb_store_error(rc, "store delivery", err);
    uint8_t *p = v.mv_data;
    p[0] = VERSION;
    memcpy(p + 1, &d->seq, 8);
    memcpy(p + 9, &d->order, 8);
    memcpy(p + 17, &d->first_at_ms, 8);
    memcpy(p + 25, &d->next_at_ms, 8);
    memcpy(p + 33, &d->last_at_ms, 8);
    memcpy(p + 41, &d->attempt, 4);
    memcpy(p + 45, &d->last_latency_ms, 4);
    memcpy(p + 49, &d->last_status, 4);
    p[53] = (uint8_t)d->state;
    p[54] = d->queued;
    p += FIXED;
    for (size_t i = 0; i < NT_DELIVERY_STRINGS; i++) {
        uint16_t l = (uint16_t)len[i];
        memcpy(p, &l, 2);
        if (l)
            memcpy(p + 2, string_at(d, i), l);
        p[2 + l] = '\0';
        p += 2 + l + 1;
    }
    return 0;
}

json_t *nt_delivery_json(const nt_delivery_t *d)
{
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:i,s:I,s:I,"
                            "s:i,s:s,s:b}",
                            "id", d->id, "sub", d->sub, "org_id", d->org_id, "url", d->url,
                            "type", d->type, "event_id", d->event_id, "producer", d->producer,
                            "seq", (json_int_t)d->seq, "case_id", d->case_id, "case_key",
                            d->case_key, "order", (json_int_t)d->order, "state",
                            nt_state_word(d->state), "attempt", (int)d->attempt, "first_at_ms",
                            (json_int_t)d->first_at_ms, "next_at_ms", (json_int_t)d->next_at_ms,
                            "last_status", (int)d->last_status, "last_error", d->last_error,
                            "queued", d->queued);
    char wid[NT_WID_MAX];
    nt_webhook_id(d, wid, sizeof(wid));
    if (rec)
        json_object_set_new(rec, "webhook_id", json_string(wid));
    if (rec && d->attempt > 0) {
        json_object_set_new(rec, "last_latency_ms", json_integer(d->last_latency_ms));
        json_object_set_new(rec, "last_at_ms", json_integer(d->last_at_ms));
    }
    return rec;
}

void nt_webhook_id(const nt_delivery_t *d, char *out, size_t size)
{
    if (d->seq > 0)
        snprintf(out, size, "%s-%llu-%s", d->producer, (unsigned long long)d->seq, d->sub);
    else
        snprintf(out, size, "%s-%s", d->event_id, d->sub);
}

int nt_stored_event_json(const notify_t *n, const void *stored, size_t len, const char *sub,
                         const char *addressee, cb_jsonw_t *w)
{
    const uint8_t *p = stored;
    if (len > 0 && p[0] == '{') /* an Envelope never starts so: that is field 15, a group */
        return cb_jsonw_raw(w, stored, len);
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, p);
    if (env == NULL)
        return CB_ERR_CORRUPT;
    const char *const extra[2][2] = {{"subscription", sub}, {"addressee", addressee}};
    int rc = cb_cloudevent_write(w, env, 0, &n->ce, extra, 2);
    if (rc != 0 && rc != CB_ERR_NOMEM)
        rc = CB_ERR_CORRUPT;
    casebus__v1__envelope__free_unpacked(env, NULL);
    return rc;
}
