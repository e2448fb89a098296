/*
 * state.c — every mdb_* call of deadline. Databases (besides the log's and the
 * bus cursors):
 *   meta         "orgs" -> OrgsImported (router's registry, replicated)
 *                "cal:YYYY" -> the text of that year's calendar file
 *                "missing:YYYY" -> be64 obligations counted without that year
 *                "calwatch" -> be64 CST day next year's missing notice was last raised
 *                "counts" -> 8 x be64 (dl_counts_t, in field order)
 *   obligations  obligation id -> dl_ob_t encoded (DL_OB_HEAD bytes); the
 *                casebus.v1.Obligation is its ObligationOpened event in the log
 *                (an obligation stored before that has it after the head)
 *   timers       be64 next firing instant (UTC ms) + obligation id -> "" (open ones only)
 *   bycase       case id + NUL + obligation id -> ""
 *   calyears     be16 year + obligation id -> "" (open, calendar-counted clocks)
 *   cases        case id -> casebus.v1.CaseSummary (from intake and router)
 * The timer index is what the daemon's one timer reads: its first key is the
 * next thing to fire. Nothing per obligation is held in memory.
 */
#include "deadline.h"
#include "bytes.h"
#include "cbtime.h"
#include "log.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX (CB_CASE_ID_MAX + 64)

int dl_state_open(deadline_t *dl, cb_error_t *err)
{
    const cb_store_dbi_spec_t dbis[] = {
        {"meta", &dl->db_meta},         {"obligations", &dl->db_obligations},
        {"timers", &dl->db_timers},     {"bycase", &dl->db_bycase},
        {"calyears", &dl->db_calyears}, {"cases", &dl->db_cases},
    };
    return cb_store_dbis(dl->d.store, dbis, sizeof(dbis) / sizeof(dbis[0]), err);
}

int dl_state_load(deadline_t *dl, cb_error_t *err)
{
    MDB_txn *txn;
    int rc = cb_store_begin(dl->d.store, false, &txn, err);
    if (rc != 0)
        return rc;
    ProtobufCMessage *m;
    if ((rc = cb_store_load_msg(txn, dl->db_meta, "orgs", &casebus__v1__orgs_imported__descriptor,
                                "registry", &m, err)) != 0)
        goto out;
    if (m) {
        if (dl->orgs)
            casebus__v1__orgs_imported__free_unpacked(dl->orgs, NULL);
        dl->orgs = (Casebus__V1__OrgsImported *)m;
    }
    MDB_val k, v;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, dl->db_meta, &cur)) != 0) {
        rc = cb_store_error(rc, "open meta cursor", err);
        goto out;
    }
    k = cb_store_key("cal:");
    rc = 0;
    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || memcmp(k.mv_data, "cal:", 4) != 0)
            break;
        char source[32];
        snprintf(source, sizeof(source), "stored %.*s", (int)k.mv_size, (char *)k.mv_data);
        rc = cb_cal_load_text(dl->cal, v.mv_data, v.mv_size, source, NULL, err);
    }
    mdb_cursor_close(cur);
out:
    cb_store_abort(&txn);
    return rc;
}

int dl_ob_get(deadline_t *dl, MDB_txn *txn, const char *id, dl_ob_t *o,
              Casebus__V1__Obligation **msg, cb_error_t *err)
{
    MDB_val k = cb_store_key(id), v;
    int rc = mdb_get(txn, dl->db_obligations, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "obligation_id", "no obligation %s", id);
    if (rc != 0)
        return cb_store_error(rc, "read obligation", err);
    if (dl_ob_decode(o, v.mv_data, v.mv_size) != 0)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "stored obligation %s does not decode", id);
    if (msg == NULL)
        return 0;
    if (o->opened_seq == 0) {
        *msg = casebus__v1__obligation__unpack(NULL, v.mv_size - DL_OB_HEAD,
                                               (const uint8_t *)v.mv_data + DL_OB_HEAD);
    } else {
        /* The message its ObligationOpened event carries; the caller brings its
         * clock's figures up to date (dl_load). */
        const uint8_t *raw;
        size_t len;
        uint8_t *owned = NULL;
        Casebus__V1__Envelope *env =
            cb_log_get(dl->d.log, txn, o->opened_seq, &raw, &len, &owned, err) == 0
                ? casebus__v1__envelope__unpack(NULL, len, raw)
                : NULL;
        free(owned);
        *msg = env && env->body_case == CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED
                   ? env->obligation_opened->obligation
                   : NULL;
        if (*msg) {
            env->obligation_opened->obligation = NULL;
            (*msg)->used_ms = o->used_ms;
        }
        if (env)
            casebus__v1__envelope__free_unpacked(env, NULL);
    }
    if (*msg == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "stored obligation %s does not decode", id);
    return 0;
}

int dl_ob_put(deadline_t *dl, MDB_txn *txn, const dl_ob_t *o, const Casebus__V1__Obligation *msg,
              cb_error_t *err)
{
    MDB_val k = cb_store_key(msg->obligation_id);
    dl_ob_t head = *o;
    head.used_ms = msg->used_ms;
    size_t len = o->opened_seq ? 0 : casebus__v1__obligation__get_packed_size(msg);
    MDB_val v = {DL_OB_HEAD + len, NULL};
    int rc = mdb_put(txn, dl->db_obligations, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return cb_store_error(rc, "store obligation", err);
    dl_ob_encode(&head, v.mv_data);
    if (len)
        casebus__v1__obligation__pack(msg, (uint8_t *)v.mv_data + DL_OB_HEAD);
    return 0;
}

static size_t timer_key(uint8_t *buf, int64_t at_ms, const char *id)
{
    size_t n = strlen(id);
    if (n > ID_MAX)
        n = ID_MAX;
    cb_be64_put(buf, (uint64_t)at_ms);
    memcpy(buf + 8, id, n);
    return 8 + n;
}

int dl_timer_put(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, cb_error_t *err)
{
    uint8_t buf[8 + ID_MAX];
    MDB_val k = {timer_key(buf, at_ms, id), buf}, v = {0, ""};
    int rc = mdb_put(txn, dl->db_timers, &k, &v, 0);
    if (rc)
        return cb_store_error(rc, "store timer", err);
    if (dl->timer_hint_ms == 0 || at_ms < dl->timer_hint_ms)
        dl->timer_hint_ms = at_ms;
    return 0;
}

int dl_timer_del(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, cb_error_t *err)
{
    uint8_t buf[8 + ID_MAX];
    MDB_val k = {timer_key(buf, at_ms, id), buf};
    int rc = mdb_del(txn, dl->db_timers, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? cb_store_error(rc, "delete timer", err) : 0;
}

int dl_timers_due(deadline_t *dl, MDB_txn *txn, int64_t now_ms, dl_due_key_t *keys, int max,
                  cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dl->db_timers, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open timer cursor", err);
    int n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 9 || k.mv_size > 8 + ID_MAX)
            continue; /* not a key this file wrote */
        int64_t at = (int64_t)cb_be64_get(k.mv_data);
        if (at > now_ms)
            break;
        keys[n].at_ms = at;
        memcpy(keys[n].id, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
        keys[n].id[k.mv_size - 8] = '\0';
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND && n < max)
        return cb_store_error(rc, "read timers", err);
    return n;
}

int dl_timer_first(deadline_t *dl, MDB_txn *txn, int64_t *at_ms, cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dl->db_timers, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open timer cursor", err);
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    *at_ms = rc == 0 && k.mv_size >= 8 ? (int64_t)cb_be64_get(k.mv_data) : 0;
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? cb_store_error(rc, "read timers", err) : 0;
}

static size_t pair_key(uint8_t *buf, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > CB_CASE_ID_MAX)
        na = CB_CASE_ID_MAX;
    if (nb > ID_MAX)
        nb = ID_MAX;
    memcpy(buf, a, na);
    buf[na] = '\0';
    memcpy(buf + na + 1, b, nb);
    return na + 1 + nb;
}

int dl_bycase_put(deadline_t *dl, MDB_txn *txn, const char *case_id, const char *id,
                  cb_error_t *err)
{
    uint8_t buf[CB_CASE_ID_MAX + 1 + ID_MAX];
    MDB_val k = {pair_key(buf, case_id, id), buf}, v = {0, ""};
    int rc = mdb_put(txn, dl->db_bycase, &k, &v, 0);
    return rc ? cb_store_error(rc, "store case index", err) : 0;
}

/* Collects the ids under a key prefix, then visits them (visit may write). */
static int each_under(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen, dl_id_fn visit,
                      void *ctx, cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open index cursor", err);
    char(*ids)[ID_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    MDB_val k = {plen, (void *)prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (CB_GROW(ids, cap, n, 16) != 0) {
            mdb_cursor_close(cur);
            free(ids);
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        }
        size_t len = k.mv_size - plen;
        if (len > ID_MAX)
            len = ID_MAX;
        memcpy(ids[n], (uint8_t *)k.mv_data + plen, len);
        ids[n][len] = '\0';
        n++;
    }
    mdb_cursor_close(cur);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = visit(ctx, ids[i]);
    free(ids);
    return rc;
}

int dl_bycase_each(deadline_t *dl, MDB_txn *txn, const char *case_id, dl_id_fn visit, void *ctx,
                   cb_error_t *err)
{
    uint8_t buf[CB_CASE_ID_MAX + 1];
    size_t n = strlen(case_id);
    if (n > CB_CASE_ID_MAX)
        n = CB_CASE_ID_MAX;
    memcpy(buf, case_id, n);
    buf[n] = '\0';
    return each_under(txn, dl->db_bycase, buf, n + 1, visit, ctx, err);
}

int dl_calyears_put(deadline_t *dl, MDB_txn *txn, int64_t from_ms, int64_t to_ms, const char *id,
                    bool del, cb_error_t *err)
{
    cb_civil_t a, b;
    cb_time_to_cst(from_ms, &a);
    cb_time_to_cst(to_ms, &b);
    for (int y = a.year; y <= b.year && y <= a.year + 5; y++) {
        uint8_t buf[2 + ID_MAX];
        size_t n = strlen(id);
        if (n > ID_MAX)
            n = ID_MAX;
        buf[0] = (uint8_t)(y >> 8);
        buf[1] = (uint8_t)y;
        memcpy(buf + 2, id, n);
        MDB_val k = {2 + n, buf}, v = {0, ""};
        int rc = del ? mdb_del(txn, dl->db_calyears, &k, NULL)
                     : mdb_put(txn, dl->db_calyears, &k, &v, 0);
        if (rc != 0 && !(del && rc == MDB_NOTFOUND))
            return cb_store_error(rc, "calendar index", err);
    }
    return 0;
}

int dl_calyears_each(deadline_t *dl, MDB_txn *txn, int year, dl_id_fn visit, void *ctx,
                     cb_error_t *err)
{
    uint8_t prefix[2] = {(uint8_t)(year >> 8), (uint8_t)year};
    return each_under(txn, dl->db_calyears, prefix, 2, visit, ctx, err);
}

int dl_case_put(deadline_t *dl, MDB_txn *txn, const Casebus__V1__CaseSummary *cs, cb_error_t *err)
{
    MDB_val k = cb_store_key(cs->case_id);
    return cb_store_put_msg(txn, dl->db_cases, &k, &cs->base, "store case", err);
}

Casebus__V1__CaseSummary *dl_case_get(deadline_t *dl, MDB_txn *txn, const char *case_id)
{
    return cb_store_get_msg(txn, dl->db_cases, case_id, &casebus__v1__case_summary__descriptor);
}

int dl_orgs_put(deadline_t *dl, MDB_txn *txn, const Casebus__V1__OrgsImported *oi, cb_error_t *err)
{
    MDB_val k = cb_store_key("orgs");
    return cb_store_put_msg(txn, dl->db_meta, &k, &oi->base, "store registry", err);
}

int dl_calendar_put(deadline_t *dl, MDB_txn *txn, int year, const char *text, size_t len,
                    cb_error_t *err)
{
    char key[16];
    snprintf(key, sizeof(key), "cal:%04d", year);
    MDB_val k = cb_store_key(key), v = {len, (void *)text};
    int rc = mdb_put(txn, dl->db_meta, &k, &v, 0);
    return rc ? cb_store_error(rc, "store calendar", err) : 0;
}

bool dl_calendar_stored(deadline_t *dl, MDB_txn *txn, int year)
{
    char key[16];
    snprintf(key, sizeof(key), "cal:%04d", year);
    MDB_val k = cb_store_key(key), v;
    return mdb_get(txn, dl->db_meta, &k, &v) == 0;
}

int dl_missing_add(deadline_t *dl, MDB_txn *txn, int year, uint64_t *count, cb_error_t *err)
{
    char key[16];
    snprintf(key, sizeof(key), "missing:%04d", year);
    return cb_store_count(txn, dl->db_meta, key, count, err);
}

int dl_missing_clear(deadline_t *dl, MDB_txn *txn, int year, cb_error_t *err)
{
    char key[16];
    snprintf(key, sizeof(key), "missing:%04d", year);
    MDB_val k = cb_store_key(key);
    int rc = mdb_del(txn, dl->db_meta, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? cb_store_error(rc, "clear missing year", err) : 0;
}

uint64_t dl_missing_count(deadline_t *dl, MDB_txn *txn, int year)
{
    char key[16];
    snprintf(key, sizeof(key), "missing:%04d", year);
    MDB_val k = cb_store_key(key), v;
    return mdb_get(txn, dl->db_meta, &k, &v) == 0 && v.mv_size == 8 ? cb_be64_get(v.mv_data) : 0;
}

int dl_meta_i64(deadline_t *dl, MDB_txn *txn, const char *key, int64_t *value, cb_error_t *err)
{
    MDB_val k = cb_store_key(key), v;
    int rc = mdb_get(txn, dl->db_meta, &k, &v);
    *value = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return cb_store_error(rc, "read meta", err);
    if (v.mv_size != 8)
        return cb_error_set(err, CB_ERR_CORRUPT, key, "meta %s is %zu bytes, not 8", key,
                            v.mv_size);
    *value = (int64_t)cb_be64_get(v.mv_data);
    return 0;
}

int dl_meta_i64_put(deadline_t *dl, MDB_txn *txn, const char *key, int64_t value, cb_error_t *err)
{
    uint8_t b[8];
    cb_be64_put(b, (uint64_t)value);
    MDB_val k = cb_store_key(key), v = {8, b};
    int rc = mdb_put(txn, dl->db_meta, &k, &v, 0);
    return rc ? cb_store_error(rc, "store meta", err) : 0;
}

void dl_missing_json(deadline_t *dl, MDB_txn *txn, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, dl->db_meta, &cur) == 0) {
        MDB_val k = cb_store_key("missing:"), v;
        bool first = true;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && used < size;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 12 || memcmp(k.mv_data, "missing:", 8) != 0)
                break;
            used += (size_t)snprintf(buf + used, size - used, "%s%.4s", first ? "" : ",",
                                     (char *)k.mv_data + 8);
            first = false;
        }
        mdb_cursor_close(cur);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

#define NCOUNTS (sizeof(dl_counts_t) / sizeof(uint64_t))

int dl_counts_get(deadline_t *dl, MDB_txn *txn, dl_counts_t *c, cb_error_t *err)
{
    MDB_val k = cb_store_key("counts"), v;
    memset(c, 0, sizeof(*c));
    int rc = mdb_get(txn, dl->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return cb_store_error(rc, "read counts", err);
    uint64_t *f = (uint64_t *)c;
    for (size_t i = 0; i < NCOUNTS && (i + 1) * 8 <= v.mv_size; i++)
        f[i] = cb_be64_get((uint8_t *)v.mv_data + 8 * i);
    return 0;
}

int dl_counts_put(deadline_t *dl, MDB_txn *txn, const dl_counts_t *c, cb_error_t *err)
{
    uint8_t b[NCOUNTS * 8];
    const uint64_t *f = (const uint64_t *)c;
    for (size_t i = 0; i < NCOUNTS; i++)
        cb_be64_put(b + 8 * i, f[i]);
    MDB_val k = cb_store_key("counts"), v = {sizeof(b), b};
    int rc = mdb_put(txn, dl->db_meta, &k, &v, 0);
    return rc ? cb_store_error(rc, "store counts", err) : 0;
}
