/*
 * tokens.c — bearer tokens: made, revoked and listed (each change recorded as
 * an event, so that a restored log restores them).
 */
#include "intake.h"
#include "command.h"
#include "pbjson.h"
#include "routes.h"
#include "jsonw.h"
#include "cbtime.h"
#include "codes.h"
#include "log.h"
#include "orgs.h"
#include "utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token's label or a revocation's reason: optional, valid UTF-8, bounded. */
static int check_note(const char *text, const char *field, size_t max, cb_error_t *err)
{
    size_t n = text ? strlen(text) : 0, bad;
    if (n > max)
        return cb_error_set(err, CB_ERR_INVALID, field, "at most %zu bytes (got %zu)", max, n);
    if (n && !cb_utf8_valid(text, n, &bad))
        return cb_error_set(err, CB_ERR_INVALID, field, "not valid UTF-8 (byte %zu)", bad);
    return 0;
}

int intake_token_create(intake_t *in, MDB_txn *txn, const char *const *orgs, size_t norgs,
                        const char *label, bool operator_, int64_t expires_at_ms, char **secret,
                        cb_error_t *err)
{
    int64_t now = cb_now_ms();
    if (expires_at_ms != 0 && expires_at_ms <= now)
        return cb_error_set(err, CB_ERR_INVALID, "expires", "the expiry must be in the future");
    if (norgs == 0 && !operator_)
        return cb_error_set(err, CB_ERR_INVALID, "org", "a token needs at least one --org");
    int rc = check_note(label, "label", INTAKE_MAX_TOKEN_NOTE, err);
    if (rc != 0)
        return rc;
    if (norgs > INTAKE_MAX_TOKEN_ORGS)
        return cb_error_set(err, CB_ERR_INVALID, "org", "a token acts for at most %d organisations",
                            INTAKE_MAX_TOKEN_ORGS);
    /* Once the registry is replicated, a token acts only for organisations in it. */
    MDB_stat ms;
    bool registry = mdb_stat(txn, in->st.orgs, &ms) == 0 && ms.ms_entries > 0;
    for (size_t i = 0; i < norgs; i++) {
        if ((rc = cb_check_org_id(orgs[i], "org", err)) != 0)
            return rc;
        Casebus__V1__Organisation *o = registry ? intake_org_get(&in->st, txn, orgs[i]) : NULL;
        if (registry && o == NULL)
            return cb_error_set(err, CB_ERR_INVALID, "org",
                                "organisation '%.64s' is not in the registry (casebus org import; "
                                "the registry has %zu organisations)",
                                orgs[i], (size_t)ms.ms_entries);
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
    }
    uint8_t idb[8], sec[32];
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(sec, sizeof(sec));
    char id[17], sec_text[64];
    sodium_bin2hex(id, sizeof(id), idb, sizeof(idb));
    sodium_bin2base64(sec_text, sizeof(sec_text), sec, sizeof(sec),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    uint8_t hash[32];
    crypto_hash_sha256(hash, (const uint8_t *)sec_text, strlen(sec_text));

    Casebus__V1__TokenCreated tc = CASEBUS__V1__TOKEN_CREATED__INIT;
    tc.token_id = id;
    tc.token_hash.data = hash;
    tc.token_hash.len = 32;
    tc.org_ids = (char **)orgs;
    tc.n_org_ids = norgs;
    tc.label = (char *)(label ? label : "");
    tc.operator_ = operator_;
    tc.created_at_ms = now;
    tc.expires_at_ms = expires_at_ms;
    rc = intake_token_put(&in->st, txn, &tc, err);
    if (rc != 0)
        return rc;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TOKEN_CREATED;
    env.token_created = &tc;
    if ((rc = cb_log_append(in->d.log, txn, &env, err)) != 0)
        return rc;
    size_t n = 4 + 16 + 1 + strlen(sec_text) + 1;
    *secret = malloc(n);
    if (*secret == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    snprintf(*secret, n, "cbt_%s_%s", id, sec_text);
    sodium_memzero(sec, sizeof(sec));
    return 0;
}

int intake_token_revoke_cmd(intake_t *in, MDB_txn *txn, const char *token_id, const char *reason,
                            cb_error_t *err)
{
    if (intake_str_empty(token_id))
        return cb_error_set(err, CB_ERR_INVALID, "token_id", "which token? (casebus token list)");
    int rc = check_note(reason, "reason", INTAKE_MAX_TOKEN_NOTE, err);
    if (rc != 0)
        return rc;
    rc = intake_token_revoke(&in->st, txn, token_id, cb_now_ms(), reason, err);
    if (rc != 0)
        return rc;
    Casebus__V1__TokenRevoked tr = CASEBUS__V1__TOKEN_REVOKED__INIT;
    tr.token_id = (char *)token_id;
    tr.reason = (char *)(reason ? reason : "");
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TOKEN_REVOKED;
    env.token_revoked = &tr;
    return cb_log_append(in->d.log, txn, &env, err);
}

typedef struct token_list {
    json_t *arr;
    int64_t now;
} token_list_t;

static int list_token(void *ctx, const Casebus__V1__TokenCreated *tc, int64_t revoked_at_ms)
{
    token_list_t *l = ctx;
    json_t *orgs = json_array();
    for (size_t i = 0; orgs && i < tc->n_org_ids; i++)
        json_array_append_new(orgs, json_string(tc->org_ids[i]));
    const char *state = revoked_at_ms                                      ? "revoked"
                        : tc->expires_at_ms && l->now >= tc->expires_at_ms ? "expired"
                                                                           : "live";
    json_t *o = json_pack("{s:s,s:s,s:o*,s:b,s:s}", "token_id", tc->token_id, "label",
                          tc->label ? tc->label : "", "org_ids", orgs, "operator", tc->operator_,
                          "state", state);
    if (o == NULL)
        return -1;
    if (tc->created_at_ms)
        json_object_set_new(o, "created_at", intake_json_time(tc->created_at_ms));
    if (tc->expires_at_ms)
        json_object_set_new(o, "expires_at", intake_json_time(tc->expires_at_ms));
    if (revoked_at_ms)
        json_object_set_new(o, "revoked_at", intake_json_time(revoked_at_ms));
    return json_array_append_new(l->arr, o);
}

json_t *intake_tokens_json(intake_t *in, MDB_txn *txn, cb_error_t *err)
{
    token_list_t l = {json_array(), cb_now_ms()};
    if (l.arr == NULL || intake_token_each(&in->st, txn, list_token, &l, err) != 0) {
        json_decref(l.arr);
        if (l.arr == NULL)
            cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    return json_pack("{s:o}", "tokens", l.arr);
}
