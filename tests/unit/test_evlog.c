/* test_evlog.c — the event log: append in the caller's transaction, sequence,
 * hash chain (tampering caught), case index, lookup by time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "cbtime.h"
#include "evlog.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;
    cb_store_t *store;
    cb_log_t *log;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (tu_store_open("evlog", "router", &f->dir, &f->store, &f->log) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cb_log_destroy(&f->log);
    cb_store_destroy(&f->store);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

/* Appends one probe event for case_id (may be NULL) in its own transaction. */
static uint64_t append_probe(fixture_t *f, const char *case_id, uint64_t n)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    Casebus__V1__Probe probe = CASEBUS__V1__PROBE__INIT;
    probe.n = n;
    env.case_id = (char *)(case_id ? case_id : "");
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_PROBE;
    env.probe = &probe;
    assert_int_equal(cb_log_append(f->log, txn, &env, &err), 0);
    uint64_t seq = env.seq;
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    return seq;
}

static void appends_number_from_one_and_chain_verifies(void **state)
{
    fixture_t *f = *state;
    for (uint64_t i = 1; i <= 50; i++)
        assert_int_equal(append_probe(f, "C1", i), i);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    cb_log_head_t head;
    assert_int_equal(cb_log_head(f->log, txn, &head, &err), 0);
    assert_int_equal(head.seq, 50);
    uint64_t bad = 99, checked = 0;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), 0);
    assert_int_equal(checked, 50);

    /* Each record decodes to what was appended, and links to the one before. */
    const uint8_t *raw;
    size_t len;
    uint8_t *owned;
    uint8_t prev[CB_HASH_LEN] = {0};
    for (uint64_t s = 1; s <= 50; s++) {
        assert_int_equal(cb_log_get(f->log, txn, s, &raw, &len, &owned, &err), 0);
        assert_null(owned);
        Casebus__V1__Envelope *env = NULL;
        assert_int_equal(cb_record_check(raw, len, prev, &env, &err), 0);
        assert_int_equal(env->seq, s);
        assert_string_equal(env->producer, "router");
        assert_int_equal(strlen(env->event_id), 36);
        assert_int_equal(env->probe->n, s);
        assert_string_equal(cb_event_type(env), "probe");
        memcpy(prev, cb_record_hash(raw, len), CB_HASH_LEN);
        casebus__v1__envelope__free_unpacked(env, NULL);
    }
    assert_int_equal(cb_log_get(f->log, txn, 51, &raw, &len, &owned, &err), CB_ERR_NOT_FOUND);
    cb_store_abort(&txn);
}

/* Rewrites record seq through raw LMDB access, as an attacker with the files could. */
static void tamper(fixture_t *f, uint64_t seq, bool remove)
{
    MDB_dbi dbi;
    cb_error_t err;
    assert_int_equal(cb_store_dbi(f->store, "log", 0, &dbi, &err), 0);
    MDB_txn *txn;
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    uint8_t key[8];
    cb_be64_put(key, seq);
    MDB_val k = {8, key}, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    if (remove) {
        assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    } else {
        uint8_t copy[4096];
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size - 1] ^= 0x01; /* flip one bit of the body */
        MDB_val nv = {v.mv_size, copy};
        assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
    }
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

static void tampered_record_is_caught_at_its_seq(void **state)
{
    fixture_t *f = *state;
    for (uint64_t i = 1; i <= 20; i++)
        append_probe(f, NULL, i);
    tamper(f, 13, false);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t bad = 0, checked = 0;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), CB_ERR_CHAIN);
    assert_int_equal(bad, 13);
    assert_non_null(strstr(err.message, "record 13"));
    cb_store_abort(&txn);
}

static void removed_record_is_caught(void **state)
{
    fixture_t *f = *state;
    for (uint64_t i = 1; i <= 20; i++)
        append_probe(f, NULL, i);
    tamper(f, 7, true);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t bad = 0, checked = 0;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), CB_ERR_CHAIN);
    assert_int_equal(bad, 7);
    cb_store_abort(&txn);
}

static void removed_tail_is_caught_by_head(void **state)
{
    fixture_t *f = *state;
    for (uint64_t i = 1; i <= 5; i++)
        append_probe(f, NULL, i);
    tamper(f, 5, true);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t bad = 0, checked = 0;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), CB_ERR_CHAIN);
    assert_int_equal(bad, 5);
    cb_store_abort(&txn);
}

static void aborted_transaction_leaves_no_event(void **state)
{
    fixture_t *f = *state;
    append_probe(f, "C1", 1);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    Casebus__V1__Probe probe = CASEBUS__V1__PROBE__INIT;
    env.case_id = "C1";
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_PROBE;
    env.probe = &probe;
    assert_int_equal(cb_log_append(f->log, txn, &env, &err), 0);
    assert_int_equal(cb_log_append(f->log, txn, &env, &err), 0); /* two in one txn chain */
    assert_int_equal(env.seq, 3);
    cb_store_abort(&txn);

    assert_int_equal(append_probe(f, "C1", 2), 2); /* seq 2 again: nothing was kept */
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t bad, checked;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), 0);
    assert_int_equal(checked, 2);
    cb_store_abort(&txn);
}

static int collect(void *ctx, uint64_t seq)
{
    uint64_t *out = ctx;
    out[++out[0]] = seq;
    return 0;
}

static void case_index_lists_every_event_of_a_case(void **state)
{
    fixture_t *f = *state;
    const char *cases[] = {"A", "B", "A", NULL, "A", "B"};
    for (int i = 0; i < 6; i++)
        append_probe(f, cases[i], (uint64_t)i);
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t got[16] = {0};
    assert_int_equal(cb_log_case_seqs(f->log, txn, "A", collect, got, &err), 0);
    assert_int_equal(got[0], 3);
    assert_int_equal(got[1], 1);
    assert_int_equal(got[2], 3);
    assert_int_equal(got[3], 5);
    memset(got, 0, sizeof(got));
    assert_int_equal(cb_log_case_seqs(f->log, txn, "B", collect, got, &err), 0);
    assert_int_equal(got[0], 2);
    memset(got, 0, sizeof(got));
    assert_int_equal(cb_log_case_seqs(f->log, txn, "none", collect, got, &err), 0);
    assert_int_equal(got[0], 0);
    cb_store_abort(&txn);
}

static void finds_first_seq_at_or_after_a_time(void **state)
{
    fixture_t *f = *state;
    int64_t t[6];
    for (int i = 0; i < 6; i++) {
        append_probe(f, NULL, (uint64_t)i);
        MDB_txn *txn;
        cb_error_t err;
        cb_store_begin(f->store, false, &txn, &err);
        const uint8_t *raw;
        size_t len;
        uint8_t *owned;
        cb_log_get(f->log, txn, (uint64_t)i + 1, &raw, &len, &owned, &err);
        Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
        t[i] = env->recorded_at_ms;
        casebus__v1__envelope__free_unpacked(env, NULL);
        cb_store_abort(&txn);
        struct timespec ts = {0, 3 * 1000000};
        nanosleep(&ts, NULL);
    }
    MDB_txn *txn;
    cb_error_t err;
    cb_store_begin(f->store, false, &txn, &err);
    uint64_t seq;
    assert_int_equal(cb_log_seq_at_time(f->log, txn, t[0] - 1000, &seq, &err), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(cb_log_seq_at_time(f->log, txn, t[3], &seq, &err), 0);
    assert_true(seq <= 4);
    assert_int_equal(cb_log_seq_at_time(f->log, txn, t[3] + 1, &seq, &err), 0);
    assert_int_equal(seq, 5);
    assert_int_equal(cb_log_seq_at_time(f->log, txn, t[5] + 1, &seq, &err), 0);
    assert_int_equal(seq, 7); /* head + 1: nothing yet */
    cb_store_abort(&txn);
}

static void store_of_another_producer_is_refused(void **state)
{
    fixture_t *f = *state;
    cb_log_t *other = NULL;
    cb_error_t err;
    assert_int_equal(cb_log_open(&other, f->store, "intake", &err), CB_ERR_CONFLICT);
    assert_null(other);
    assert_non_null(strstr(err.message, "router"));
}

static void overlong_case_id_is_refused_and_nothing_written(void **state)
{
    fixture_t *f = *state;
    char id[200];
    memset(id, 'c', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    MDB_txn *txn;
    cb_error_t err;
    cb_store_begin(f->store, true, &txn, &err);
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = id;
    assert_int_equal(cb_log_append(f->log, txn, &env, &err), CB_ERR_INVALID);
    assert_string_equal(err.field, "case_id");
    cb_store_abort(&txn);
    assert_int_equal(append_probe(f, NULL, 1), 1);
}

/* ---- a compressed log ---- */

/* Appends a case report like intake's (alike but for its ids and text); abort
 * leaves nothing. Returns its seq. */
static uint64_t append_case(fixture_t *f, uint64_t i, bool abort)
{
    char id[40], text[120];
    snprintf(id, sizeof(id), "C20261207-%06llu", (unsigned long long)i);
    snprintf(text, sizeof(text), "沿街店铺占道经营，第 %llu 次巡查发现，已拍照取证",
             (unsigned long long)i);
    Casebus__V1__OrgRef by = CASEBUS__V1__ORG_REF__INIT;
    by.org_id = i % 3 ? "wy-scjg" : "wy-lt";
    by.name = i % 3 ? "武义县市场监督管理局" : "履坦镇人民政府";
    Casebus__V1__CaseSummary cs = CASEBUS__V1__CASE_SUMMARY__INIT;
    Casebus__V1__CaseReported cr = CASEBUS__V1__CASE_REPORTED__INIT;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.case_id = cs.case_id = id;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_CASE_REPORTED;
    env.case_reported = &cr;
    cr.case_ = &cs;
    cs.matter_code = "330217001";
    cs.township_code = "330723101000";
    cs.discovered_by = &by;
    cs.description = text;
    cs.discovered_at_ms = 1796621766000 + (int64_t)i * 1000;
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(cb_log_append(f->log, txn, &env, &err), 0);
    if (abort)
        cb_store_abort(&txn);
    else
        assert_int_equal(cb_store_commit(&txn, &err), 0);
    return env.seq;
}

/* The size record seq takes in the store, and whether it is a zstd frame. */
static size_t stored(fixture_t *f, uint64_t seq, bool *zipped)
{
    MDB_dbi dbi;
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_dbi(f->store, "log", 0, &dbi, &err), 0);
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint8_t key[8];
    cb_be64_put(key, seq);
    MDB_val k = {8, key}, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    const uint8_t *p = v.mv_data;
    *zipped = v.mv_size > 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd;
    size_t n = v.mv_size;
    cb_store_abort(&txn);
    return n;
}

/* Every record reads back as appended, the chain verifies, and from train_at on
 * records are stored compressed. */
static void check_log(fixture_t *f, uint64_t n, uint64_t train_at)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    uint64_t bad = 0, checked = 0;
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), 0);
    assert_int_equal(checked, n);
    size_t raw_bytes = 0, kept_bytes = 0;
    for (uint64_t s = 1; s <= n; s++) {
        const uint8_t *raw;
        size_t len;
        uint8_t *owned;
        assert_int_equal(cb_log_get(f->log, txn, s, &raw, &len, &owned, &err), 0);
        Casebus__V1__Envelope *env = NULL;
        assert_int_equal(cb_record_check(raw, len, NULL, &env, &err), 0);
        assert_int_equal(env->seq, s);
        assert_string_equal(env->case_reported->case_->case_id, env->case_id);
        casebus__v1__envelope__free_unpacked(env, NULL);
        bool zipped;
        size_t size = stored(f, s, &zipped);
        assert_int_equal(zipped, s >= train_at);
        assert_int_equal(owned != NULL, zipped);
        if (zipped) {
            raw_bytes += len;
            kept_bytes += size;
        }
        free(owned);
    }
    cb_store_abort(&txn);
    /* Alike records: under 60 % (their two hashes and event id, a third of
     * each, do not compress). */
    if (n >= train_at)
        assert_true(kept_bytes * 5 < raw_bytes * 3);
}

static void compressed_log_reads_back_the_same_records(void **state)
{
    fixture_t *f = *state;
    cb_log_compress(f->log, 100);
    for (uint64_t i = 1; i <= 99; i++)
        append_case(f, i, false);
    /* The dictionary is trained by the 100th append; that one is aborted, so
     * the dictionary goes into the store with the next that uses it. */
    assert_int_equal(append_case(f, 100, true), 100);
    for (uint64_t i = 100; i <= 300; i++)
        assert_int_equal(append_case(f, i, false), i);
    check_log(f, 300, 100);

    /* Another opener (the CLI, or after a restart) reads it with the stored
     * dictionary, and appends to it as it is. */
    cb_log_destroy(&f->log);
    cb_error_t err;
    assert_int_equal(cb_log_open(&f->log, f->store, "router", &err), 0);
    check_log(f, 300, 100);
    cb_log_compress(f->log, 100);
    assert_int_equal(append_case(f, 301, false), 301);
    check_log(f, 301, 100);

    /* A bit flipped inside a compressed record is caught. */
    tamper(f, 200, false);
    MDB_txn *txn;
    uint64_t bad = 0, checked = 0;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    assert_int_equal(cb_log_verify(f->log, txn, &bad, &checked, &err), CB_ERR_CHAIN);
    assert_int_equal(bad, 200);
    cb_store_abort(&txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(appends_number_from_one_and_chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_record_is_caught_at_its_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_record_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_tail_is_caught_by_head, setup, teardown),
        cmocka_unit_test_setup_teardown(aborted_transaction_leaves_no_event, setup, teardown),
        cmocka_unit_test_setup_teardown(case_index_lists_every_event_of_a_case, setup, teardown),
        cmocka_unit_test_setup_teardown(finds_first_seq_at_or_after_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(store_of_another_producer_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(compressed_log_reads_back_the_same_records, setup, teardown),
        cmocka_unit_test_setup_teardown(overlong_case_id_is_refused_and_nothing_written, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
