/*
 * state.c — every mdb_* call of notify. Databases (besides the log's and the
 * bus cursors):
 *   meta        counter name -> be64 last number given ("sub", "delivery")
 *   subs        subscription id -> JSON {id, org_id, channel, url, secret,
 *               event_types[], rate_per_second, created_at_ms}
 *   deliveries  delivery id -> its record, binary (delivery.c): id, sub, org_id,
 *               url, type, event_id, producer, seq, case_id, case_key, order,
 *               state (pending | delivered | dead), attempt, first_at_ms,
 *               next_at_ms, last_at_ms, last_status, last_latency_ms, last_error,
 *               queued (in a per-case queue); JSON in stores written before
 *   bodies      delivery id -> the source event's Envelope, as pulled (the
 *               sender thread makes the CloudEvent from it), or a request body
 *               of JSON (a test ping, and stores written before)
 *   queue       sub id NUL case key NUL be64 order -> delivery id (the FIFO per
 *               endpoint and case: only the head may be sent)
 *   ready       sub id NUL be64 next attempt (UTC ms) + delivery id -> "" (heads
 *               waiting to be sent, per endpoint)
 *   dead        delivery id -> "" (dead letters)
 *   stream      sub id NUL be64 seq -> the source event's Envelope (zmq channel);
 *               meta "stream:<sub>" -> be64 its head
 */
#include "notify.h"
#include "jsonr.h"
#include "jsonw.h"
#include "bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nt_state_open(notify_t *n, cb_error_t *err)
{
    const cb_store_dbi_spec_t dbis[] = {
        {"meta", &n->db_meta},     {"subs", &n->db_subs},     {"deliveries", &n->db_deliveries},
        {"bodies", &n->db_bodies}, {"queue", &n->db_queue},   {"ready", &n->db_ready},
        {"dead", &n->db_dead},     {"stream", &n->db_stream},
    };
    return cb_store_dbis(n->d.store, dbis, sizeof(dbis) / sizeof(dbis[0]), err);
}

static json_t *record_json(notify_t *n, MDB_dbi db, const MDB_val *v)
{
    if (db != n->db_deliveries)
        return cb_jsonr_loadb(v->mv_data, v->mv_size, NULL);
    nt_delivery_t d;
    if (nt_delivery_decode(v, &d) != 0)
        return NULL;
    json_t *rec = nt_delivery_json(&d);
    nt_delivery_free(&d);
    return rec;
}

json_t *nt_get(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id)
{
    MDB_val k = cb_store_key(id), v;
    if (id == NULL || *id == '\0' || mdb_get(txn, db, &k, &v) != 0)
        return NULL;
    return record_json(n, db, &v);
}

int nt_body_put(notify_t *n, MDB_txn *txn, const char *id, const void *body, size_t len,
                cb_error_t *err)
{
    MDB_val k = cb_store_key(id), v = {len, (void *)body};
    int rc = mdb_put(txn, n->db_bodies, &k, &v, 0);
    return rc ? cb_store_error(rc, "store body", err) : 0;
}

bool nt_body_get(notify_t *n, MDB_txn *txn, const char *id, MDB_val *out)
{
    MDB_val k = cb_store_key(id);
    return mdb_get(txn, n->db_bodies, &k, out) == 0;
}

int nt_put(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id, json_t *rec, cb_error_t *err)
{
    (void)n;
    char *text = cb_jsonw_dumps(rec);
    if (text == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    MDB_val k = cb_store_key(id), v = {strlen(text), text};
    int rc = mdb_put(txn, db, &k, &v, 0);
    free(text);
    return rc ? cb_store_error(rc, "store record", err) : 0;
}

int nt_del(notify_t *n, MDB_txn *txn, MDB_dbi db, const char *id, cb_error_t *err)
{
    (void)n;
    MDB_val k = cb_store_key(id);
    int rc = mdb_del(txn, db, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? cb_store_error(rc, "delete record", err) : 0;
}

/* ---- subscriptions parsed once per content ---- */

typedef struct shared_sub {
    char id[NT_ID_MAX];
    char *raw;
    size_t len;
    json_t *rec;
} shared_sub_t;

struct nt_subcache {
    shared_sub_t *v;
    size_t n, cap;
};

/* The parsed record for (id, raw), parsing only when the bytes changed. */
static json_t *shared(notify_t *n, const char *id, const MDB_val *raw, size_t *hint)
{
    struct nt_subcache *c = n->subcache;
    if (c == NULL && (c = n->subcache = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    shared_sub_t *e = NULL;
    for (size_t i = 0; i < c->n && e == NULL; i++) {
        size_t j = (*hint + i) % c->n;
        if (strcmp(c->v[j].id, id) == 0) {
            e = &c->v[j];
            *hint = j + 1;
        }
    }
    if (e && e->len == raw->mv_size && memcmp(e->raw, raw->mv_data, e->len) == 0)
        return e->rec;
    json_t *rec = cb_jsonr_loadb(raw->mv_data, raw->mv_size, NULL);
    char *copy = malloc(raw->mv_size ? raw->mv_size : 1);
    if (rec == NULL || copy == NULL) {
        json_decref(rec);
        free(copy);
        return NULL;
    }
    memcpy(copy, raw->mv_data, raw->mv_size);
    if (e == NULL) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 16;
            shared_sub_t *grown = realloc(c->v, cap * sizeof(*grown));
            if (grown == NULL) {
                json_decref(rec);
                free(copy);
                return NULL;
            }
            c->v = grown;
            c->cap = cap;
        }
        e = &c->v[c->n++];
        snprintf(e->id, sizeof(e->id), "%s", id);
    } else {
        json_decref(e->rec);
        free(e->raw);
    }
    e->raw = copy;
    e->len = raw->mv_size;
    e->rec = rec;
    return rec;
}

/* Every record of db in key order; shared: the subscriptions' parsed records. */
static int each(notify_t *n, MDB_txn *txn, MDB_dbi db, bool is_shared, nt_each_fn visit, void *ctx,
                cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open cursor", err);
    MDB_val k, v;
    int vrc = 0;
    size_t hint = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && vrc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char id[NT_ID_MAX];
        if (k.mv_size >= sizeof(id))
            continue;
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        json_t *rec = v.mv_size == 0 ? NULL
                      : is_shared    ? json_incref(shared(n, id, &v, &hint))
                                     : record_json(n, db, &v);
        vrc = visit(ctx, id, rec);
        json_decref(rec);
    }
    mdb_cursor_close(cur);
    return vrc;
}

int nt_each(notify_t *n, MDB_txn *txn, MDB_dbi db, nt_each_fn visit, void *ctx, cb_error_t *err)
{
    return each(n, txn, db, false, visit, ctx, err);
}

json_t *nt_sub_shared(notify_t *n, MDB_txn *txn, const char *id)
{
    MDB_val k = cb_store_key(id), v;
    size_t hint = 0;
    if (id == NULL || *id == '\0' || strlen(id) >= NT_ID_MAX ||
        mdb_get(txn, n->db_subs, &k, &v) != 0)
        return NULL;
    return json_incref(shared(n, id, &v, &hint));
}

int nt_subs_each_shared(notify_t *n, MDB_txn *txn, nt_each_fn visit, void *ctx, cb_error_t *err)
{
    return each(n, txn, n->db_subs, true, visit, ctx, err);
}

void nt_state_close(notify_t *n)
{
    struct nt_subcache *c = n->subcache;
    for (size_t i = 0; c && i < c->n; i++) {
        json_decref(c->v[i].rec);
        free(c->v[i].raw);
    }
    if (c)
        free(c->v);
    free(c);
    n->subcache = NULL;
}

int nt_next(notify_t *n, MDB_txn *txn, const char *counter, uint64_t *out, cb_error_t *err)
{
    return cb_store_count(txn, n->db_meta, counter, out, err);
}

static size_t queue_prefix(uint8_t *buf, size_t size, const char *sub, const char *case_key)
{
    int len = snprintf((char *)buf, size, "%s%c%s%c", sub, 0, case_key, 0);
    return len < 0 || (size_t)len >= size ? 0 : (size_t)len;
}

/* A cursor on the first entry of the queue buf[0..plen) names (*found), or
 * after where it would be. */
static int queue_first(notify_t *n, MDB_txn *txn, const uint8_t *buf, size_t plen,
                       MDB_cursor **cur, bool *found, cb_error_t *err)
{
    int rc = mdb_cursor_open(txn, n->db_queue, cur);
    if (rc != 0)
        return cb_store_error(rc, "open queue cursor", err);
    MDB_val k = {plen, (void *)buf}, v;
    rc = mdb_cursor_get(*cur, &k, &v, MDB_SET_RANGE);
    *found = rc == 0 && k.mv_size > plen && memcmp(k.mv_data, buf, plen) == 0;
    return 0;
}

int nt_queue_push(notify_t *n, MDB_txn *txn, const char *sub, const char *case_key, uint64_t order,
                  const char *delivery_id, bool *is_head, cb_error_t *err)
{
    uint8_t buf[2 * NT_ID_MAX + CB_CASE_ID_MAX + 16];
    size_t plen = queue_prefix(buf, sizeof(buf) - 8, sub, case_key);
    if (plen == 0)
        return cb_error_set(err, CB_ERR_INVALID, "", "queue key too long");
    /* Head: nothing queued under this prefix yet. */
    MDB_cursor *cur;
    bool queued;
    int rc = queue_first(n, txn, buf, plen, &cur, &queued, err);
    if (rc != 0)
        return rc;
    *is_head = !queued;
    mdb_cursor_close(cur);
    cb_be64_put(buf + plen, order);
    MDB_val key = {plen + 8, buf}, val = cb_store_key(delivery_id);
    if ((rc = mdb_put(txn, n->db_queue, &key, &val, 0)) != 0)
        return cb_store_error(rc, "store queue", err);
    return 0;
}

int nt_queue_pop(notify_t *n, MDB_txn *txn, const char *sub, const char *case_key,
                 char next[NT_ID_MAX], cb_error_t *err)
{
    uint8_t buf[2 * NT_ID_MAX + CB_CASE_ID_MAX + 16];
    size_t plen = queue_prefix(buf, sizeof(buf), sub, case_key);
    next[0] = '\0';
    MDB_cursor *cur;
    bool queued;
    int rc = queue_first(n, txn, buf, plen, &cur, &queued, err);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    if (queued) {
        if ((rc = mdb_cursor_del(cur, 0)) != 0) {
            mdb_cursor_close(cur);
            return cb_store_error(rc, "pop queue", err);
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, buf, plen) == 0 &&
            v.mv_size < NT_ID_MAX) {
            memcpy(next, v.mv_data, v.mv_size);
            next[v.mv_size] = '\0';
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

static size_t ready_prefix(uint8_t *buf, const char *sub)
{
    size_t len = strlen(sub);
    if (len >= NT_ID_MAX)
        len = NT_ID_MAX - 1;
    memcpy(buf, sub, len);
    buf[len] = '\0';
    return len + 1;
}

int nt_ready_put(notify_t *n, MDB_txn *txn, const char *sub, int64_t at_ms, const char *delivery_id,
                 bool del, cb_error_t *err)
{
    uint8_t buf[2 * NT_ID_MAX + 8];
    size_t len = strlen(delivery_id);
    if (len >= NT_ID_MAX || sub == NULL)
        return cb_error_set(err, CB_ERR_INVALID, "", "delivery id too long");
    size_t plen = ready_prefix(buf, sub);
    cb_be64_put(buf + plen, (uint64_t)at_ms);
    memcpy(buf + plen + 8, delivery_id, len);
    MDB_val k = {plen + 8 + len, buf}, v = {0, ""};
    int rc = del ? mdb_del(txn, n->db_ready, &k, NULL) : mdb_put(txn, n->db_ready, &k, &v, 0);
    if (rc != 0 && !(del && rc == MDB_NOTFOUND))
        return cb_store_error(rc, "ready index", err);
    return 0;
}

int nt_ready_next_sub(notify_t *n, MDB_txn *txn, const char *after, char sub[NT_ID_MAX])
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, n->db_ready, &cur) != 0)
        return 1;
    /* Past every key of `after`: its prefix with the NUL raised to 0x01. */
    uint8_t seek[NT_ID_MAX + 1];
    size_t plen = 0;
    if (*after) {
        plen = ready_prefix(seek, after);
        seek[plen - 1] = 0x01;
    }
    MDB_val k = {plen, seek}, v;
    int rc =
        plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    int found = 1;
    if (rc == 0) {
        const uint8_t *nul = memchr(k.mv_data, 0, k.mv_size);
        size_t len = nul ? (size_t)(nul - (const uint8_t *)k.mv_data) : 0;
        if (nul && len > 0 && len < NT_ID_MAX) {
            memcpy(sub, k.mv_data, len);
            sub[len] = '\0';
            found = 0;
        }
    }
    mdb_cursor_close(cur);
    return found;
}

int nt_ready_due(notify_t *n, MDB_txn *txn, const char *sub, int64_t now_ms, nt_ready_key_t *keys,
                 int max, int64_t *next_at, cb_error_t *err)
{
    *next_at = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, n->db_ready, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open ready cursor", err);
    uint8_t prefix[NT_ID_MAX];
    size_t plen = ready_prefix(prefix, sub);
    int count = 0;
    MDB_val k = {plen, prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= plen + 8 || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        size_t idlen = k.mv_size - plen - 8;
        if (idlen >= NT_ID_MAX)
            continue;
        int64_t at = (int64_t)cb_be64_get((uint8_t *)k.mv_data + plen);
        if (at > now_ms) {
            *next_at = at; /* the first retry still to come */
            break;
        }
        if (count == max)
            break; /* more are due: a completion will look again */
        keys[count].at_ms = at;
        memcpy(keys[count].id, (uint8_t *)k.mv_data + plen + 8, idlen);
        keys[count].id[idlen] = '\0';
        count++;
    }
    mdb_cursor_close(cur);
    return count;
}

size_t nt_count(notify_t *n, MDB_txn *txn, MDB_dbi db)
{
    (void)n;
    MDB_stat st;
    return mdb_stat(txn, db, &st) == 0 ? st.ms_entries : 0;
}

static size_t stream_key(uint8_t *buf, const char *sub, uint64_t seq)
{
    size_t plen = ready_prefix(buf, sub);
    cb_be64_put(buf + plen, seq);
    return plen + 8;
}

uint64_t nt_stream_head(notify_t *n, MDB_txn *txn, const char *sub)
{
    char key[NT_ID_MAX + 8];
    snprintf(key, sizeof(key), "stream:%s", sub);
    MDB_val k = cb_store_key(key), v;
    return mdb_get(txn, n->db_meta, &k, &v) == 0 && v.mv_size == 8 ? cb_be64_get(v.mv_data) : 0;
}

int nt_stream_append(notify_t *n, MDB_txn *txn, const char *sub, const uint8_t *raw, size_t len,
                     cb_error_t *err)
{
    char key[NT_ID_MAX + 8];
    snprintf(key, sizeof(key), "stream:%s", sub);
    uint64_t seq = nt_stream_head(n, txn, sub) + 1;
    uint8_t b[8], kb[NT_ID_MAX + 8];
    cb_be64_put(b, seq);
    MDB_val hk = cb_store_key(key), hv = {8, b};
    MDB_val k = {stream_key(kb, sub, seq), kb}, v = {len, (void *)raw};
    int rc = mdb_put(txn, n->db_meta, &hk, &hv, 0);
    if (rc == 0)
        rc = mdb_put(txn, n->db_stream, &k, &v, 0);
    return rc ? cb_store_error(rc, "store stream record", err) : 0;
}

int nt_stream_get(notify_t *n, MDB_txn *txn, const char *sub, uint64_t seq, MDB_val *out)
{
    uint8_t kb[NT_ID_MAX + 8];
    MDB_val k = {stream_key(kb, sub, seq), kb};
    return mdb_get(txn, n->db_stream, &k, out) == 0 ? 0 : CB_ERR_NOT_FOUND;
}
