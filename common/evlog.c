/*
 * evlog.c — append, read, index and verify a daemon's event log (evlog.h has
 * the layout). The head (last seq, time, hash) lives in log_meta and is read and
 * written inside the caller's transaction, so an aborted transaction leaves no
 * trace, and several appends in one transaction chain correctly.
 */
#include "evlog.h"
#include "bytes.h"
#include "cbtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cb_log {
    cb_store_t *store;
    MDB_dbi db_log, db_case, db_meta;
    char *producer;
    char event_id[40];
    uint8_t prev_hash[CB_HASH_LEN];
    uint8_t hash[CB_HASH_LEN];
};

#define META_HEAD "head"
#define META_PRODUCER "producer"
#define HEAD_LEN (8 + 8 + CB_HASH_LEN)

int cb_log_open(cb_log_t **out, cb_store_t *store, const char *producer, cb_error_t *err)
{
    int rc;
    MDB_txn *txn = NULL;
    if (sodium_init() < 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "libsodium failed to initialise");
    cb_log_t *log = calloc(1, sizeof(*log));
    if (log == NULL || (log->producer = strdup(producer)) == NULL) {
        free(log);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    log->store = store;
    if ((rc = cb_store_dbi(store, "log", 0, &log->db_log, err)) != 0 ||
        (rc = cb_store_dbi(store, "log_case", MDB_DUPSORT | MDB_DUPFIXED, &log->db_case, err)) ||
        (rc = cb_store_dbi(store, "log_meta", 0, &log->db_meta, err)) != 0)
        goto out_free;

    /* The first writer names the log; a later opener must use the same name. */
    bool read_only = false;
    if ((rc = cb_store_begin(store, true, &txn, NULL)) != 0) {
        read_only = true;
        if ((rc = cb_store_begin(store, false, &txn, err)) != 0)
            goto out_free;
    }
    MDB_val k = {strlen(META_PRODUCER), META_PRODUCER}, v;
    rc = mdb_get(txn, log->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND && !read_only) {
        v.mv_size = strlen(producer);
        v.mv_data = (void *)producer;
        if ((rc = mdb_put(txn, log->db_meta, &k, &v, 0)) != 0) {
            rc = cb_store_error(rc, "record log producer", err);
            goto out_abort_txn;
        }
    } else if (rc == 0) {
        if (v.mv_size != strlen(producer) || memcmp(v.mv_data, producer, v.mv_size) != 0) {
            rc = cb_error_set(err, CB_ERR_CONFLICT, "data_dir",
                              "%s holds the log of producer '%.*s', not '%s'", cb_store_dir(store),
                              (int)v.mv_size, (const char *)v.mv_data, producer);
            goto out_abort_txn;
        }
    } else if (rc != MDB_NOTFOUND) {
        rc = cb_store_error(rc, "read log producer", err);
        goto out_abort_txn;
    }
    if (read_only)
        cb_store_abort(&txn);
    else if ((rc = cb_store_commit(&txn, err)) != 0)
        goto out_free;
    *out = log;
    return 0;

out_abort_txn:
    cb_store_abort(&txn);
out_free:
    free(log->producer);
    free(log);
    return rc;
}

void cb_log_destroy(cb_log_t **plog)
{
    cb_log_t *log = *plog;
    if (log == NULL)
        return;
    free(log->producer);
    free(log);
    *plog = NULL;
}

const char *cb_log_producer(const cb_log_t *log)
{
    return log->producer;
}

cb_store_t *cb_log_store(cb_log_t *log)
{
    return log->store;
}

int cb_log_head(cb_log_t *log, MDB_txn *txn, cb_log_head_t *head, cb_error_t *err)
{
    MDB_val k = {strlen(META_HEAD), META_HEAD}, v;
    int rc = mdb_get(txn, log->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(head, 0, sizeof(*head));
        return 0;
    }
    if (rc != 0)
        return cb_store_error(rc, "read log head", err);
    if (v.mv_size != HEAD_LEN)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "log head has %zu bytes, want %d",
                            v.mv_size, HEAD_LEN);
    const uint8_t *p = v.mv_data;
    head->seq = cb_be64_get(p);
    head->recorded_at_ms = (int64_t)cb_be64_get(p + 8);
    memcpy(head->hash, p + 16, CB_HASH_LEN);
    return 0;
}

/* A UUIDv7: 48 bits of Unix ms, version, 74 random bits, variant. */
static void make_event_id(char *out, int64_t ms)
{
    uint8_t b[16];
    randombytes_buf(b, sizeof(b));
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    int j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 15];
    }
    out[j] = '\0';
}

static void chain_hash(uint8_t out[CB_HASH_LEN], const uint8_t *prev, const uint8_t *body,
                       size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, prev, CB_HASH_LEN);
    crypto_hash_sha256_update(&st, body, len);
    crypto_hash_sha256_final(&st, out);
}

int cb_log_append(cb_log_t *log, MDB_txn *txn, Casebus__V1__Envelope *env, cb_error_t *err)
{
    int rc;
    cb_log_head_t head;
    if ((rc = cb_log_head(log, txn, &head, err)) != 0)
        return rc;
    size_t case_len = env->case_id ? strlen(env->case_id) : 0;
    if (case_len > CB_CASE_ID_MAX)
        return cb_error_set(err, CB_ERR_INVALID, "case_id", "case_id longer than %d bytes",
                            CB_CASE_ID_MAX);

    int64_t now = cb_now_ms();
    memcpy(log->prev_hash, head.hash, CB_HASH_LEN);
    make_event_id(log->event_id, now);
    env->producer = log->producer;
    env->seq = head.seq + 1;
    env->event_id = log->event_id;
    env->recorded_at_ms = now > head.recorded_at_ms ? now : head.recorded_at_ms;
    env->prev_hash.data = log->prev_hash;
    env->prev_hash.len = CB_HASH_LEN;
    env->hash.data = NULL;
    env->hash.len = 0;

    size_t body_len = casebus__v1__envelope__get_packed_size(env);
    size_t rec_len = CB_RECORD_BODY_OFF + body_len;
    if (rec_len > CB_RECORD_MAX)
        return cb_error_set(err, CB_ERR_TOO_LARGE, "", "event of %zu bytes exceeds %u bytes",
                            rec_len, CB_RECORD_MAX);

    uint8_t key[8];
    cb_be64_put(key, env->seq);
    MDB_val k = {sizeof(key), key}, v = {rec_len, NULL};
    /* MDB_RESERVE: pack straight into the page; MDB_APPEND: keys only grow. */
    if ((rc = mdb_put(txn, log->db_log, &k, &v, MDB_RESERVE | MDB_APPEND)) != 0)
        return cb_store_error(rc, "append log record", err);
    uint8_t *rec = v.mv_data;
    casebus__v1__envelope__pack(env, rec + CB_RECORD_BODY_OFF);
    chain_hash(log->hash, log->prev_hash, rec + CB_RECORD_BODY_OFF, body_len);
    rec[0] = 0x0a; /* field 1, length-delimited */
    rec[1] = CB_HASH_LEN;
    memcpy(rec + CB_RECORD_PREFIX, log->hash, CB_HASH_LEN);
    env->hash.data = log->hash;
    env->hash.len = CB_HASH_LEN;

    if (case_len > 0) {
        MDB_val ck = {case_len, (void *)env->case_id}, cv = {sizeof(key), key};
        if ((rc = mdb_put(txn, log->db_case, &ck, &cv, 0)) != 0)
            return cb_store_error(rc, "index log record by case", err);
    }

    uint8_t hb[HEAD_LEN];
    cb_be64_put(hb, env->seq);
    cb_be64_put(hb + 8, (uint64_t)env->recorded_at_ms);
    memcpy(hb + 16, log->hash, CB_HASH_LEN);
    MDB_val hk = {strlen(META_HEAD), META_HEAD}, hv = {sizeof(hb), hb};
    if ((rc = mdb_put(txn, log->db_meta, &hk, &hv, 0)) != 0)
        return cb_store_error(rc, "update log head", err);
    return 0;
}

int cb_log_get(cb_log_t *log, MDB_txn *txn, uint64_t seq, const uint8_t **raw, size_t *len,
               cb_error_t *err)
{
    uint8_t key[8];
    cb_be64_put(key, seq);
    MDB_val k = {sizeof(key), key}, v;
    int rc = mdb_get(txn, log->db_log, &k, &v);
    if (rc != 0)
        return cb_store_error(rc, "read log record", err);
    *raw = v.mv_data;
    *len = v.mv_size;
    return 0;
}

const uint8_t *cb_record_hash(const uint8_t *raw, size_t len)
{
    if (len < CB_RECORD_BODY_OFF || raw[0] != 0x0a || raw[1] != CB_HASH_LEN)
        return NULL;
    return raw + CB_RECORD_PREFIX;
}

int cb_record_check(const uint8_t *raw, size_t len, const uint8_t *prev_hash,
                    Casebus__V1__Envelope **env_out, cb_error_t *err)
{
    const uint8_t *hash = cb_record_hash(raw, len);
    if (hash == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "record does not start with its hash");
    if (prev_hash != NULL) {
        uint8_t want[CB_HASH_LEN];
        chain_hash(want, prev_hash, raw + CB_RECORD_BODY_OFF, len - CB_RECORD_BODY_OFF);
        if (sodium_memcmp(want, hash, CB_HASH_LEN) != 0)
            return cb_error_set(err, CB_ERR_CHAIN, "",
                                "record hash does not match its bytes and the previous hash");
    }
    if (env_out == NULL && prev_hash == NULL)
        return 0;
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    if (env == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "record does not decode as an Envelope");
    if (prev_hash != NULL &&
        (env->prev_hash.len != CB_HASH_LEN || memcmp(env->prev_hash.data, prev_hash, CB_HASH_LEN))) {
        casebus__v1__envelope__free_unpacked(env, NULL);
        return cb_error_set(err, CB_ERR_CHAIN, "", "record's prev_hash is not the previous hash");
    }
    if (env_out)
        *env_out = env;
    else
        casebus__v1__envelope__free_unpacked(env, NULL);
    return 0;
}

static int record_time(cb_log_t *log, MDB_txn *txn, uint64_t seq, int64_t *ms, cb_error_t *err)
{
    const uint8_t *raw;
    size_t len;
    int rc = cb_log_get(log, txn, seq, &raw, &len, err);
    if (rc != 0)
        return rc;
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    if (env == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "record %llu does not decode",
                            (unsigned long long)seq);
    *ms = env->recorded_at_ms;
    casebus__v1__envelope__free_unpacked(env, NULL);
    return 0;
}

int cb_log_seq_at_time(cb_log_t *log, MDB_txn *txn, int64_t time_ms, uint64_t *seq,
                       cb_error_t *err)
{
    cb_log_head_t head;
    int rc = cb_log_head(log, txn, &head, err);
    if (rc != 0)
        return rc;
    /* Times never decrease along the log, so binary search the dense seqs. */
    uint64_t lo = 1, hi = head.seq + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t t = 0;
        if ((rc = record_time(log, txn, mid, &t, err)) != 0)
            return rc;
        if (t < time_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    *seq = lo;
    return 0;
}

int cb_log_case_seqs(cb_log_t *log, MDB_txn *txn, const char *case_id, cb_log_case_fn visit,
                     void *ctx, cb_error_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, log->db_case, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open case index cursor", err);
    MDB_val k = {strlen(case_id), (void *)case_id}, v;
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 8) {
            ret = cb_error_set(err, CB_ERR_CORRUPT, "", "case index value of %zu bytes",
                               v.mv_size);
            break;
        }
        if ((ret = visit(ctx, cb_be64_get(v.mv_data))) != 0)
            break;
    }
    if (ret == 0 && rc != MDB_NOTFOUND && rc != 0)
        ret = cb_store_error(rc, "walk case index", err);
    mdb_cursor_close(cur);
    return ret;
}

int cb_log_verify(cb_log_t *log, MDB_txn *txn, uint64_t *bad_seq, uint64_t *checked,
                  cb_error_t *err)
{
    cb_log_head_t head;
    int rc = cb_log_head(log, txn, &head, err);
    if (rc != 0)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, log->db_log, &cur)) != 0)
        return cb_store_error(rc, "open log cursor", err);
    uint8_t prev[CB_HASH_LEN] = {0};
    uint64_t want = 1;
    int64_t last_ms = INT64_MIN;
    MDB_val k, v;
    int ret = 0;
    *bad_seq = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), want++) {
        uint64_t seq = k.mv_size == 8 ? cb_be64_get(k.mv_data) : 0;
        if (seq != want) {
            *bad_seq = want;
            ret = cb_error_set(err, CB_ERR_CHAIN, "", "record %llu is missing",
                               (unsigned long long)want);
            break;
        }
        Casebus__V1__Envelope *env = NULL;
        cb_error_t e;
        if (cb_record_check(v.mv_data, v.mv_size, prev, &env, &e) != 0) {
            *bad_seq = seq;
            ret = cb_error_set(err, CB_ERR_CHAIN, "", "record %llu: %s", (unsigned long long)seq,
                               e.message);
            break;
        }
        bool ok = env->seq == seq && env->recorded_at_ms >= last_ms;
        last_ms = env->recorded_at_ms;
        casebus__v1__envelope__free_unpacked(env, NULL);
        if (!ok) {
            *bad_seq = seq;
            ret = cb_error_set(err, CB_ERR_CHAIN, "",
                               "record %llu: its seq or time does not fit its place",
                               (unsigned long long)seq);
            break;
        }
        memcpy(prev, cb_record_hash(v.mv_data, v.mv_size), CB_HASH_LEN);
    }
    mdb_cursor_close(cur);
    if (ret == 0 && rc != MDB_NOTFOUND)
        return cb_store_error(rc, "walk log", err);
    if (ret == 0 && (want - 1 != head.seq || memcmp(prev, head.hash, CB_HASH_LEN) != 0)) {
        *bad_seq = want - 1 < head.seq ? want : head.seq;
        ret = cb_error_set(err, CB_ERR_CHAIN, "",
                           "log ends at %llu but its head says %llu (records removed?)",
                           (unsigned long long)(want - 1), (unsigned long long)head.seq);
    }
    if (checked)
        *checked = want - 1;
    return ret;
}

bool cb_event_type_known(const char *name)
{
    const ProtobufCMessageDescriptor *d = &casebus__v1__envelope__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            strcmp(d->fields[i].name, name) == 0)
            return true;
    return false;
}

const char *cb_event_type(const Casebus__V1__Envelope *env)
{
    const ProtobufCMessageDescriptor *d = &casebus__v1__envelope__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == (uint32_t)env->body_case)
            return d->fields[i].name;
    return "unknown";
}
