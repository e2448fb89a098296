/*
 * evlog.c — append, read, index and verify a daemon's event log (evlog.h has
 * the layout). The head (last seq, time, hash) lives in log_meta and is read and
 * written inside the caller's transaction, so an aborted transaction leaves no
 * trace, and several appends in one transaction chain correctly.
 */
#include "evlog.h"
#include "bytes.h"
#include "cbtime.h"
#include "log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

struct cb_log {
    cb_store_t *store;
    MDB_dbi db_log, db_case, db_meta;
    char *producer;
    char event_id[40];
    uint8_t prev_hash[CB_HASH_LEN];
    uint8_t hash[CB_HASH_LEN];
    /* Compression (cb_log_compress). Appends run on one thread; reads may run
     * on several, so the reading side has its own context under rd_mu. */
    uint64_t train_at;   /* 0: records are stored as they are */
    uint64_t train_next; /* the seq at which a dictionary is trained next */
    uint8_t *dict;       /* the dictionary appends use (also in log_meta) */
    size_t dict_len;
    unsigned dict_id;
    ZSTD_CDict *cdict;
    ZSTD_CCtx *cctx;
    uint8_t *pack, *zbuf; /* a record before and after compression */
    size_t pack_cap, zbuf_cap;
    pthread_mutex_t rd_mu;
    ZSTD_DCtx *dctx;
    ZSTD_DDict *ddict;
    unsigned ddict_id;
};

#define META_HEAD "head"
#define META_PRODUCER "producer"
#define META_ZDICT "zdict"
#define HEAD_LEN (8 + 8 + CB_HASH_LEN)
#define ZDICT_MAX (32u << 10)
#define ZDICT_SAMPLES 2000 /* records a dictionary is trained from, at the most */
#define ZSTD_LEVEL 3

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
    pthread_mutex_init(&log->rd_mu, NULL);
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
    pthread_mutex_destroy(&log->rd_mu);
    free(log->producer);
    free(log);
    return rc;
}

void cb_log_destroy(cb_log_t **plog)
{
    cb_log_t *log = *plog;
    if (log == NULL)
        return;
    ZSTD_freeCDict(log->cdict);
    ZSTD_freeCCtx(log->cctx);
    ZSTD_freeDDict(log->ddict);
    ZSTD_freeDCtx(log->dctx);
    pthread_mutex_destroy(&log->rd_mu);
    free(log->dict);
    free(log->pack);
    free(log->zbuf);
    free(log->producer);
    free(log);
    *plog = NULL;
}

void cb_log_compress(cb_log_t *log, uint64_t train_at)
{
    log->train_at = train_at;
    log->train_next = train_at;
}

static int grow(uint8_t **buf, size_t *cap, size_t need, cb_error_t *err)
{
    if (need <= *cap)
        return 0;
    uint8_t *p = realloc(*buf, need);
    if (p == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    *buf = p;
    *cap = need;
    return 0;
}

/* Makes dict (len bytes) the one appends compress with. */
static int use_dict(cb_log_t *log, const void *dict, size_t len, cb_error_t *err)
{
    uint8_t *copy = malloc(len);
    ZSTD_CDict *cd = copy ? ZSTD_createCDict(dict, len, ZSTD_LEVEL) : NULL;
    if (log->cctx == NULL)
        log->cctx = ZSTD_createCCtx();
    if (cd == NULL || log->cctx == NULL) {
        free(copy);
        ZSTD_freeCDict(cd);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory for the log's dictionary");
    }
    memcpy(copy, dict, len);
    ZSTD_freeCDict(log->cdict);
    free(log->dict);
    log->cdict = cd;
    log->dict = copy;
    log->dict_len = len;
    log->dict_id = ZDICT_getDictID(dict, len);
    return 0;
}

/* Trains a dictionary from the records before seq (all stored as they are:
 * there was none). Too little to learn from is not an error: it is tried again
 * train_at records later. */
static int train(cb_log_t *log, MDB_txn *txn, uint64_t seq, cb_error_t *err)
{
    uint64_t from = seq > ZDICT_SAMPLES ? seq - ZDICT_SAMPLES : 1;
    size_t n = (size_t)(seq - from), total = 0;
    size_t *sizes = calloc(n ? n : 1, sizeof(*sizes));
    uint8_t *samples = NULL, *dict = malloc(ZDICT_MAX);
    int rc = sizes && dict ? 0 : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t key[8];
        cb_be64_put(key, from + i);
        MDB_val k = {sizeof(key), key}, v;
        if ((rc = mdb_get(txn, log->db_log, &k, &v)) != 0) {
            rc = cb_store_error(rc, "read log record", err);
            break;
        }
        uint8_t *more = realloc(samples, total + v.mv_size);
        if (more == NULL) {
            rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            break;
        }
        samples = more;
        memcpy(samples + total, v.mv_data, v.mv_size);
        total += v.mv_size;
        sizes[i] = v.mv_size;
    }
    if (rc == 0) {
        int64_t t0 = cb_now_ms();
        size_t len = ZDICT_trainFromBuffer(dict, ZDICT_MAX, samples, sizes, (unsigned)n);
        if (ZDICT_isError(len)) {
            log->train_next = seq + log->train_at;
            log_info("log_dictionary_not_trained records=%zu reason=\"%s\" retry_at=%llu", n,
                     ZDICT_getErrorName(len), (unsigned long long)log->train_next);
        } else if ((rc = use_dict(log, dict, len, err)) == 0) {
            log_info("log_dictionary_trained records=%zu bytes=%zu ms=%lld", n, len,
                     (long long)(cb_now_ms() - t0));
        }
    }
    free(sizes);
    free(samples);
    free(dict);
    return rc;
}

/* Before an append at seq to a compressed log: the dictionary, if there is one,
 * is the store's and is in txn's log_meta (one trained in a transaction that
 * was then aborted goes in with the first record that uses it). */
static int zip_ready(cb_log_t *log, MDB_txn *txn, uint64_t seq, cb_error_t *err)
{
    MDB_val k = {strlen(META_ZDICT), META_ZDICT}, v;
    int rc = mdb_get(txn, log->db_meta, &k, &v);
    if (rc == 0)
        return log->cdict && v.mv_size == log->dict_len &&
                       ZDICT_getDictID(v.mv_data, v.mv_size) == log->dict_id
                   ? 0
                   : use_dict(log, v.mv_data, v.mv_size, err);
    if (rc != MDB_NOTFOUND)
        return cb_store_error(rc, "read the log's dictionary", err);
    if (log->cdict == NULL && seq >= log->train_next && (rc = train(log, txn, seq, err)) != 0)
        return rc;
    if (log->cdict == NULL)
        return 0;
    v.mv_size = log->dict_len;
    v.mv_data = log->dict;
    if ((rc = mdb_put(txn, log->db_meta, &k, &v, 0)) != 0)
        return cb_store_error(rc, "store the log's dictionary", err);
    return 0;
}

/* The record stored as data (size bytes): itself, or decompressed into *owned. */
static int record_bytes(cb_log_t *log, MDB_txn *txn, const uint8_t *data, size_t size,
                        const uint8_t **raw, size_t *len, uint8_t **owned, cb_error_t *err)
{
    *owned = NULL;
    if (size < 4 || cb_be32_get(data) != 0x28b52ffdu) { /* ZSTD_MAGICNUMBER, little-endian */
        *raw = data;
        *len = size;
        return 0;
    }
    unsigned long long n = ZSTD_getFrameContentSize(data, size);
    unsigned id = ZSTD_getDictID_fromFrame(data, size);
    if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR || n > CB_RECORD_MAX)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "a compressed record has no usable size");
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = 0;
    pthread_mutex_lock(&log->rd_mu);
    if (log->ddict == NULL || log->ddict_id != id) {
        MDB_val k = {strlen(META_ZDICT), META_ZDICT}, v;
        if (mdb_get(txn, log->db_meta, &k, &v) != 0 || ZDICT_getDictID(v.mv_data, v.mv_size) != id) {
            rc = cb_error_set(err, CB_ERR_CORRUPT, "", "the log has no dictionary %u", id);
        } else {
            ZSTD_freeDDict(log->ddict);
            log->ddict = ZSTD_createDDict(v.mv_data, v.mv_size);
            log->ddict_id = id;
        }
    }
    if (rc == 0 && log->dctx == NULL)
        log->dctx = ZSTD_createDCtx();
    if (rc == 0 && (log->ddict == NULL || log->dctx == NULL))
        rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    if (rc == 0) {
        size_t got = ZSTD_decompress_usingDDict(log->dctx, out, n, data, size, log->ddict);
        if (ZSTD_isError(got) || got != n)
            rc = cb_error_set(err, CB_ERR_CORRUPT, "", "a compressed record does not decompress");
    }
    pthread_mutex_unlock(&log->rd_mu);
    if (rc != 0) {
        free(out);
        return rc;
    }
    *raw = out;
    *len = n;
    *owned = out;
    return 0;
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
    /* Random bytes drawn 4 KB at a time: one getrandom call per 256 ids. */
    static _Thread_local uint8_t pool[4096];
    static _Thread_local size_t used = sizeof(pool);
    if (used == sizeof(pool)) {
        randombytes_buf(pool, sizeof(pool));
        used = 0;
    }
    uint8_t b[16];
    memcpy(b, pool + used, sizeof(b));
    sodium_memzero(pool + used, sizeof(b));
    used += sizeof(b);
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
    bool zip = log->train_at && env->seq >= log->train_at;
    if (zip && (rc = zip_ready(log, txn, env->seq, err)) != 0)
        return rc;
    zip = zip && log->cdict;
    uint8_t *rec;
    if (zip) {
        if ((rc = grow(&log->pack, &log->pack_cap, rec_len, err)) != 0)
            return rc;
        rec = log->pack;
    } else {
        /* MDB_RESERVE: pack straight into the page; MDB_APPEND: keys only grow. */
        if ((rc = mdb_put(txn, log->db_log, &k, &v, MDB_RESERVE | MDB_APPEND)) != 0)
            return cb_store_error(rc, "append log record", err);
        rec = v.mv_data;
    }
    casebus__v1__envelope__pack(env, rec + CB_RECORD_BODY_OFF);
    chain_hash(log->hash, log->prev_hash, rec + CB_RECORD_BODY_OFF, body_len);
    rec[0] = 0x0a; /* field 1, length-delimited */
    rec[1] = CB_HASH_LEN;
    memcpy(rec + CB_RECORD_PREFIX, log->hash, CB_HASH_LEN);
    env->hash.data = log->hash;
    env->hash.len = CB_HASH_LEN;
    if (zip) {
        size_t bound = ZSTD_compressBound(rec_len);
        if ((rc = grow(&log->zbuf, &log->zbuf_cap, bound, err)) != 0)
            return rc;
        size_t z = ZSTD_compress_usingCDict(log->cctx, log->zbuf, bound, rec, rec_len, log->cdict);
        if (ZSTD_isError(z))
            return cb_error_set(err, CB_ERR_NOMEM, "", "compressing a record: %s",
                                ZSTD_getErrorName(z));
        v.mv_size = z;
        v.mv_data = log->zbuf;
        if ((rc = mdb_put(txn, log->db_log, &k, &v, MDB_APPEND)) != 0)
            return cb_store_error(rc, "append log record", err);
    }

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
               uint8_t **owned, cb_error_t *err)
{
    uint8_t key[8];
    cb_be64_put(key, seq);
    MDB_val k = {sizeof(key), key}, v;
    *owned = NULL;
    int rc = mdb_get(txn, log->db_log, &k, &v);
    if (rc != 0)
        return cb_store_error(rc, "read log record", err);
    return record_bytes(log, txn, v.mv_data, v.mv_size, raw, len, owned, err);
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
    uint8_t *owned;
    int rc = cb_log_get(log, txn, seq, &raw, &len, &owned, err);
    if (rc != 0)
        return rc;
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    free(owned);
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
        const uint8_t *raw;
        size_t len;
        uint8_t *owned = NULL;
        if (record_bytes(log, txn, v.mv_data, v.mv_size, &raw, &len, &owned, &e) != 0 ||
            cb_record_check(raw, len, prev, &env, &e) != 0) {
            free(owned);
            *bad_seq = seq;
            ret = cb_error_set(err, CB_ERR_CHAIN, "", "record %llu: %s", (unsigned long long)seq,
                               e.message);
            break;
        }
        bool ok = env->seq == seq && env->recorded_at_ms >= last_ms;
        last_ms = env->recorded_at_ms;
        casebus__v1__envelope__free_unpacked(env, NULL);
        if (ok)
            memcpy(prev, cb_record_hash(raw, len), CB_HASH_LEN);
        free(owned);
        if (!ok) {
            *bad_seq = seq;
            ret = cb_error_set(err, CB_ERR_CHAIN, "",
                               "record %llu: its seq or time does not fit its place",
                               (unsigned long long)seq);
            break;
        }
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
