/*
 * state.c — every mdb_* call of intake. Databases (besides the log's and the
 * bus cursors):
 *   tokens    token_id (16 hex)      -> TokenCreated (protobuf; secret only as hash)
 *   revoked   token_id (16 hex)      -> be64 revoked_at_ms | reason (UTF-8)
 *   idem      token_id \0 key        -> sha256(request)[32] | be16 status | be64 seq | reply JSON
 *   orgs      org_id                 -> Organisation (protobuf), replica of router's registry
 *   cases     case_id                -> case view (JSON object)
 *   timeline  case_id \0 be32 n      -> timeline entry (JSON object), n = 0, 1, …
 *   refs      transfer/dispute/assistance/decision/approval id -> JSON {case_id, kind, …}
 *   counters  name (e.g. "C20261123") -> be64 last number given
 */
#include "intake.h"
#include "jsonr.h"
#include "jsonw.h"
#include "bytes.h"
#include "utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int intake_state_open(intake_state_t *st, cb_store_t *store, cb_error_t *err)
{
    st->store = store;
    const cb_store_dbi_spec_t dbis[] = {
        {"tokens", &st->tokens}, {"revoked", &st->revoked},   {"idem", &st->idem},
        {"orgs", &st->orgs},     {"cases", &st->cases},       {"timeline", &st->timeline},
        {"refs", &st->refs},     {"counters", &st->counters}, {"names", &st->names},
    };
    int rc = cb_store_dbis(store, dbis, sizeof(dbis) / sizeof(dbis[0]), err);
    return rc ? rc : cb_lists_open(&st->lists, store, err);
}

/* Token text: "cbt_" + 16 hex id + "_" + 43 base64url chars of secret. */
int intake_token_lookup(intake_state_t *st, MDB_txn *txn, const char *token, int64_t now,
                        intake_actor_t *actor, cb_error_t *err)
{
    size_t n = token ? strlen(token) : 0;
    if (n < 4 + 16 + 2 || n > 128 || memcmp(token, "cbt_", 4) != 0 || token[20] != '_')
        return cb_error_set(err, CB_ERR_AUTH, "Authorization", "the token is malformed");
    char id[17];
    memcpy(id, token + 4, 16);
    id[16] = '\0';
    MDB_val k = cb_store_key(id), v;
    int rc = mdb_get(txn, st->tokens, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cb_error_set(err, CB_ERR_AUTH, "Authorization", "unknown token");
    if (rc != 0)
        return cb_store_error(rc, "read token", err);
    Casebus__V1__TokenCreated *tc = casebus__v1__token_created__unpack(NULL, v.mv_size, v.mv_data);
    if (tc == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "stored token %s does not decode", id);
    uint8_t hash[32];
    const char *secret = token + 21;
    crypto_hash_sha256(hash, (const uint8_t *)secret, strlen(secret));
    rc = 0;
    MDB_val rv;
    int revoked = mdb_get(txn, st->revoked, &k, &rv);
    if (tc->token_hash.len != 32 || sodium_memcmp(hash, tc->token_hash.data, 32) != 0) {
        rc = cb_error_set(err, CB_ERR_AUTH, "Authorization", "unknown token");
    } else if (revoked == 0) {
        rc = cb_error_set(err, CB_ERR_AUTH, "Authorization", "token %s was revoked", id);
    } else if (revoked != MDB_NOTFOUND) {
        rc = cb_store_error(revoked, "read revocation", err);
    } else if (tc->expires_at_ms != 0 && now >= tc->expires_at_ms) {
        rc = cb_error_set(err, CB_ERR_AUTH, "Authorization", "token %s has expired", id);
    } else {
        memset(actor, 0, sizeof(*actor));
        snprintf(actor->token_id, sizeof(actor->token_id), "%s", id);
        for (size_t i = 0; i < tc->n_org_ids && i < INTAKE_MAX_TOKEN_ORGS; i++)
            snprintf(actor->orgs[actor->norgs++], sizeof(actor->orgs[0]), "%s", tc->org_ids[i]);
        actor->operator_ = tc->operator_;
    }
    casebus__v1__token_created__free_unpacked(tc, NULL);
    return rc;
}

int intake_token_put(intake_state_t *st, MDB_txn *txn, const Casebus__V1__TokenCreated *tc,
                     cb_error_t *err)
{
    size_t len = casebus__v1__token_created__get_packed_size(tc);
    MDB_val k = cb_store_key(tc->token_id), v = {len, NULL};
    int rc = mdb_put(txn, st->tokens, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (rc != 0)
        return cb_store_error(rc, "store token", err);
    casebus__v1__token_created__pack(tc, v.mv_data);
    return 0;
}

static size_t idem_key(uint8_t *buf, size_t size, const char *token_id, const char *key)
{
    size_t a = strlen(token_id), b = strlen(key);
    if (a + 1 + b > size)
        return 0;
    memcpy(buf, token_id, a);
    buf[a] = '\0';
    memcpy(buf + a + 1, key, b);
    return a + 1 + b;
}

int intake_idem_get(intake_state_t *st, MDB_txn *txn, const char *token_id, const char *key,
                    const uint8_t req_hash[32], intake_reply_t *reply, cb_error_t *err)
{
    uint8_t kb[256];
    size_t kl = idem_key(kb, sizeof(kb), token_id, key);
    if (kl == 0)
        return cb_error_set(err, CB_ERR_INVALID, "Idempotency-Key", "idempotency key too long");
    MDB_val k = {kl, kb}, v;
    int rc = mdb_get(txn, st->idem, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CB_ERR_NOT_FOUND;
    if (rc != 0)
        return cb_store_error(rc, "read idempotency record", err);
    const uint8_t *p = v.mv_data;
    if (v.mv_size < 32 + 2 + 8)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "idempotency record too short");
    if (memcmp(p, req_hash, 32) != 0)
        return cb_error_set(err, CB_ERR_CONFLICT, "Idempotency-Key",
                            "idempotency key '%s' was already used with a different request", key);
    reply->status = (int)((p[32] << 8) | p[33]);
    reply->event_seq = cb_be64_get(p + 34);
    size_t blen = v.mv_size - 42;
    reply->body = malloc(blen + 1);
    if (reply->body == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    memcpy(reply->body, p + 42, blen);
    reply->body[blen] = '\0';
    return 0;
}

int intake_idem_put(intake_state_t *st, MDB_txn *txn, const char *token_id, const char *key,
                    const uint8_t req_hash[32], const intake_reply_t *reply, cb_error_t *err)
{
    uint8_t kb[256];
    size_t kl = idem_key(kb, sizeof(kb), token_id, key);
    if (kl == 0)
        return cb_error_set(err, CB_ERR_INVALID, "Idempotency-Key", "idempotency key too long");
    size_t blen = reply->body ? strlen(reply->body) : 0;
    MDB_val k = {kl, kb}, v = {42 + blen, NULL};
    int rc = mdb_put(txn, st->idem, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return cb_store_error(rc, "store idempotency record", err);
    uint8_t *p = v.mv_data;
    memcpy(p, req_hash, 32);
    p[32] = (uint8_t)(reply->status >> 8);
    p[33] = (uint8_t)reply->status;
    cb_be64_put(p + 34, reply->event_seq);
    if (blen)
        memcpy(p + 42, reply->body, blen);
    return 0;
}

Casebus__V1__Organisation *intake_org_get(intake_state_t *st, MDB_txn *txn, const char *org_id)
{
    return cb_store_get_msg(txn, st->orgs, org_id, &casebus__v1__organisation__descriptor);
}

typedef struct kinds_ctx {
    const int *kinds;
    size_t n;
    char (*ids)[CB_ORG_ID_MAX + 1];
} kinds_ctx_t;

static void first_of_kind(void *ctx, const Casebus__V1__Organisation *o)
{
    kinds_ctx_t *k = ctx;
    for (size_t i = 0; i < k->n; i++)
        if ((int)o->kind == k->kinds[i] && k->ids[i][0] == '\0')
            snprintf(k->ids[i], CB_ORG_ID_MAX + 1, "%s", o->org_id);
}

void intake_org_ids_of_kinds(intake_state_t *st, MDB_txn *txn, const int *kinds, size_t n,
                             char (*ids)[CB_ORG_ID_MAX + 1])
{
    for (size_t k = 0; k < n; k++)
        ids[k][0] = '\0';
    intake_org_each(st, txn, first_of_kind, &(kinds_ctx_t){kinds, n, ids});
}

void intake_org_each(intake_state_t *st, MDB_txn *txn, intake_org_fn fn, void *ctx)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, st->orgs, &cur) != 0)
        return;
    MDB_val key, v;
    for (int rc = mdb_cursor_get(cur, &key, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        Casebus__V1__Organisation *o =
            casebus__v1__organisation__unpack(NULL, v.mv_size, v.mv_data);
        if (o) {
            fn(ctx, o);
            casebus__v1__organisation__free_unpacked(o, NULL);
        }
    }
    mdb_cursor_close(cur);
}

int intake_org_put(intake_state_t *st, MDB_txn *txn, const Casebus__V1__Organisation *org,
                   cb_error_t *err)
{
    size_t len = casebus__v1__organisation__get_packed_size(org);
    MDB_val k = cb_store_key(org->org_id), v = {len, NULL};
    int rc = mdb_put(txn, st->orgs, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return cb_store_error(rc, "store organisation", err);
    casebus__v1__organisation__pack(org, v.mv_data);
    return 0;
}

static MDB_val name_key(char kind, const char *code, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%c%s", kind, code ? code : "");
    return (MDB_val){(size_t)n < size ? (size_t)n : size - 1, buf};
}

void intake_name_get(intake_state_t *st, MDB_txn *txn, char kind, const char *code, char *buf,
                     size_t size)
{
    char key[80];
    MDB_val k = name_key(kind, code, key, sizeof(key)), v;
    buf[0] = '\0';
    if (mdb_get(txn, st->names, &k, &v) == 0) {
        snprintf(buf, size, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        cb_utf8_trim_partial(buf); /* a name longer than buf is cut between characters */
    }
}

int intake_name_put(intake_state_t *st, MDB_txn *txn, char kind, const char *code, const char *name,
                    cb_error_t *err)
{
    char key[80];
    MDB_val k = name_key(kind, code, key, sizeof(key)), v = {strlen(name), (void *)name};
    if (k.mv_size < 2 || v.mv_size == 0)
        return 0;
    int rc = mdb_put(txn, st->names, &k, &v, 0);
    return rc ? cb_store_error(rc, "store a name", err) : 0;
}

int intake_counter_next(intake_state_t *st, MDB_txn *txn, const char *name, uint64_t *out,
                        cb_error_t *err)
{
    return cb_store_count(txn, st->counters, name, out, err);
}

static json_t *get_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key}, v;
    if (mdb_get(txn, dbi, &k, &v) != 0)
        return NULL;
    return cb_jsonr_loadb(v.mv_data, v.mv_size, NULL);
}

static int put_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t *val,
                    const char *what, cb_error_t *err)
{
    char *text = cb_jsonw_dumps(val);
    if (text == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "%s: out of memory", what);
    MDB_val k = {klen, (void *)key}, v = {strlen(text), text};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    free(text);
    return cb_store_error(rc, what, err);
}

json_t *intake_case_get(intake_state_t *st, MDB_txn *txn, const char *case_id)
{
    return get_json(txn, st->cases, case_id, strlen(case_id));
}

int intake_case_put(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                    cb_error_t *err)
{
    int rc = put_json(txn, st->cases, case_id, strlen(case_id), view, "store case view", err);
    return rc ? rc : intake_list_case(st, txn, case_id, view, err);
}

int intake_case_each(intake_state_t *st, MDB_txn *txn, intake_case_fn fn, size_t *n,
                     cb_error_t *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    char id[CB_CASE_ID_MAX + 1];
    int rc = mdb_cursor_open(txn, st->cases, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open case cursor", err);
    int mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > CB_CASE_ID_MAX)
            continue;
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        json_t *view = cb_jsonr_loadb(v.mv_data, v.mv_size, NULL);
        if (view == NULL)
            continue;
        rc = fn(st, txn, id, view, err);
        json_decref(view);
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = cb_store_error(mrc, "read case views", err);
    return rc;
}

bool intake_lists_empty(intake_state_t *st, MDB_txn *txn)
{
    MDB_stat s;
    return mdb_stat(txn, st->lists.case_rows, &s) == 0 && s.ms_entries == 0;
}

int intake_timeline_add(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *entry,
                        cb_error_t *err)
{
    size_t cl = strlen(case_id);
    uint8_t key[CB_CASE_ID_MAX + 1 + 4];
    if (cl > CB_CASE_ID_MAX)
        return cb_error_set(err, CB_ERR_INVALID, "case_id", "case id too long");
    /* The next number is one past the case's last entry. */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->timeline, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open timeline cursor", err);
    memcpy(key, case_id, cl);
    key[cl] = '\x01';
    MDB_val k = {cl + 1, key}, v;
    uint32_t n = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == cl + 5 && memcmp(k.mv_data, case_id, cl) == 0 &&
        ((uint8_t *)k.mv_data)[cl] == 0)
        n = cb_be32_get((uint8_t *)k.mv_data + cl + 1) + 1;
    mdb_cursor_close(cur);
    key[cl] = '\0';
    cb_be32_put(key + cl + 1, n);
    return put_json(txn, st->timeline, key, cl + 5, entry, "store timeline entry", err);
}

json_t *intake_timeline_get(intake_state_t *st, MDB_txn *txn, const char *case_id)
{
    json_t *arr = json_array();
    size_t cl = strlen(case_id);
    if (arr == NULL || cl > CB_CASE_ID_MAX)
        return arr;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, st->timeline, &cur) != 0)
        return arr;
    uint8_t key[CB_CASE_ID_MAX + 1];
    memcpy(key, case_id, cl);
    key[cl] = '\0';
    MDB_val k = {cl + 1, key}, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != cl + 5 || memcmp(k.mv_data, key, cl + 1) != 0)
            break;
        json_t *e = cb_jsonr_loadb(v.mv_data, v.mv_size, NULL);
        if (e)
            json_array_append_new(arr, e);
    }
    mdb_cursor_close(cur);
    return arr;
}

json_t *intake_ref_get(intake_state_t *st, MDB_txn *txn, const char *id)
{
    return id && *id ? get_json(txn, st->refs, id, strlen(id)) : NULL;
}

int intake_ref_put(intake_state_t *st, MDB_txn *txn, const char *id, json_t *ref, cb_error_t *err)
{
    return put_json(txn, st->refs, id, strlen(id), ref, "store reference", err);
}

int intake_token_revoke(intake_state_t *st, MDB_txn *txn, const char *token_id, int64_t now,
                        const char *reason, cb_error_t *err)
{
    MDB_val k = cb_store_key(token_id), v;
    int rc = mdb_get(txn, st->tokens, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "token_id", "no token '%.40s'", token_id);
    if (rc != 0)
        return cb_store_error(rc, "read token", err);
    if (mdb_get(txn, st->revoked, &k, &v) == 0)
        return cb_error_set(err, CB_ERR_CONFLICT, "token_id", "token %s is already revoked",
                            token_id);
    size_t rlen = reason ? strlen(reason) : 0;
    uint8_t buf[8 + INTAKE_MAX_TOKEN_NOTE];
    if (rlen > INTAKE_MAX_TOKEN_NOTE)
        return cb_error_set(err, CB_ERR_INVALID, "reason", "at most %d bytes",
                            INTAKE_MAX_TOKEN_NOTE);
    cb_be64_put(buf, (uint64_t)now);
    memcpy(buf + 8, reason ? reason : "", rlen);
    MDB_val rv = {8 + rlen, buf};
    if ((rc = mdb_put(txn, st->revoked, &k, &rv, 0)) != 0)
        return cb_store_error(rc, "store revocation", err);
    return 0;
}

int intake_token_each(intake_state_t *st, MDB_txn *txn, intake_token_fn fn, void *ctx,
                      cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->tokens, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open token cursor", err);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Casebus__V1__TokenCreated *tc =
            casebus__v1__token_created__unpack(NULL, v.mv_size, v.mv_data);
        if (tc == NULL) {
            mdb_cursor_close(cur);
            return cb_error_set(err, CB_ERR_CORRUPT, "", "a stored token does not decode");
        }
        MDB_val rk = cb_store_key(tc->token_id), rv;
        int64_t revoked_at = 0;
        if (mdb_get(txn, st->revoked, &rk, &rv) == 0 && rv.mv_size >= 8)
            revoked_at = (int64_t)cb_be64_get(rv.mv_data);
        int frc = fn(ctx, tc, revoked_at);
        casebus__v1__token_created__free_unpacked(tc, NULL);
        if (frc != 0) {
            mdb_cursor_close(cur);
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : cb_store_error(rc, "read tokens", err);
}
