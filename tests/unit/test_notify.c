/* test_notify.c — notify's bookkeeping without sockets: what counts as
 * delivered, retryable or permanent; backoff with jitter; the signature; and
 * deliveries through their queue on a scratch store (order per endpoint and
 * case, retry, dead letter after the horizon, undeliverable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "notify/notify.h"
#include "testutil.h"

static int64_t clock_ms = 1000000;
static int64_t now_fn(void)
{
    return clock_ms;
}

static void classify_and_backoff(void **state)
{
    (void)state;
    assert_int_equal(nt_classify(200), NT_DELIVERED);
    assert_int_equal(nt_classify(204), NT_DELIVERED);
    assert_int_equal(nt_classify(400), NT_PERMANENT);
    assert_int_equal(nt_classify(404), NT_PERMANENT);
    assert_int_equal(nt_classify(408), NT_RETRY);
    assert_int_equal(nt_classify(429), NT_RETRY);
    assert_int_equal(nt_classify(500), NT_RETRY);
    assert_int_equal(nt_classify(0), NT_RETRY);    /* no answer */
    assert_int_equal(nt_classify(302), NT_RETRY);  /* not followed: not delivered */
    notify_t n = {.retry_base_ms = 1000, .retry_max_ms = 60000};
    /* attempt k waits base * 2^(k-1), ±20%, at most retry_max. */
    for (uint32_t r = 0; r < 2000; r += 97) {
        int64_t d1 = nt_backoff(&n, 1, r), d3 = nt_backoff(&n, 3, r), d20 = nt_backoff(&n, 20, r);
        assert_true(d1 >= 800 && d1 <= 1200);
        assert_true(d3 >= 3200 && d3 <= 4800);
        assert_true(d20 >= 48000 && d20 <= 72000);
    }
}

static void signature_is_hmac_sha256(void **state)
{
    (void)state;
    /* Expected value computed independently (Python's hmac module):
     * hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', sha256). */
    char sig[3 + 64 + 1];
    nt_sign("0123456789abcdef", "1700000000", "{\"a\":1}", 7, sig);
    assert_string_equal(sig, "v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23");
}

/* The Standard Webhooks example (the standardwebhooks package signs the same:
 * new Webhook(secret).sign(id, 1614265330 s, payload)). */
static void standard_webhooks_signature(void **state)
{
    (void)state;
    char sig[CB_WHSIG_MAX];
    assert_int_equal(cb_whsig_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                      "{\"test\": 2432232314}", 20, sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(cb_whsig_sign("whsec_*not base64*", "m", "1", "", 0, sig), -1);
}

typedef struct fx {
    char *dir;
    notify_t n;
    uint64_t seq;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    cb_error_t err;
    notify_t *n = &f->n;
    n->now = now_fn;
    n->retry_base_ms = 1000;
    n->retry_max_ms = 4000;
    n->allow_private_webhooks = true; /* the endpoints here are on loopback */
    n->horizon_ms = 10000;
    if (tu_store_open("notifyunit", "notify", &f->dir, &n->d.store, &n->d.log) != 0 ||
        nt_state_open(n, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    nt_state_close(&f->n);
    cb_log_destroy(&f->n.d.log);
    cb_store_destroy(&f->n.d.store);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

static MDB_txn *begin(fx_t *f)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->n.d.store, true, &txn, &err), 0);
    return txn;
}

static void commit(MDB_txn *txn)
{
    cb_error_t err;
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

/* router's TransferRequired for case_id, addressed to the finder `from`. */
static void required(fx_t *f, const char *case_id, const char *from)
{
    Casebus__V1__OrgRef r = CASEBUS__V1__ORG_REF__INIT;
    r.org_id = (char *)from;
    Casebus__V1__CaseSummary cs = CASEBUS__V1__CASE_SUMMARY__INIT;
    cs.case_id = (char *)case_id;
    Casebus__V1__TransferRequired tq = CASEBUS__V1__TRANSFER_REQUIRED__INIT;
    tq.case_ = &cs;
    tq.from = &r;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REQUIRED;
    env.transfer_required = &tq;
    env.case_id = (char *)case_id;
    env.event_id = "e";
    env.seq = ++f->seq;
    uint8_t raw[512]; /* as the bus gives it */
    size_t len = casebus__v1__envelope__pack(&env, raw);
    cb_bus_event_t ev = {"router", env.seq, &env, raw, len};
    MDB_txn *txn = begin(f);
    cb_error_t err;
    assert_int_equal(nt_apply(&f->n, txn, &ev, &err), 0);
    commit(txn);
}

static int due(fx_t *f, nt_ready_key_t *keys)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->n.d.store, false, &txn, &err), 0);
    int64_t next_at;
    int n = nt_ready_due(&f->n, txn, "S000001", clock_ms, keys, 16, &next_at, &err);
    cb_store_abort(&txn);
    return n;
}

static void attempt(fx_t *f, const char *id, long status)
{
    MDB_txn *txn = begin(f);
    cb_error_t err;
    assert_int_equal(nt_record_attempt(&f->n, txn, id, NULL, status, status ? "" : "timed out", 5,
                                       clock_ms, &err),
                     0);
    commit(txn);
}

/* wy-scjg's webhook at http://127.0.0.1:1/a */
static Casebus__V1__Subscribe subscribe_request(void)
{
    Casebus__V1__Subscribe req = CASEBUS__V1__SUBSCRIBE__INIT;
    req.org_id = "wy-scjg";
    req.url = "http://127.0.0.1:1/a";
    req.secret = "0123456789abcdef";
    return req;
}

static void order_retry_and_dead_letter(void **state)
{
    fx_t *f = *state;
    MDB_txn *txn = begin(f);
    char id[NT_ID_MAX];
    cb_error_t err;
    Casebus__V1__Subscribe req = subscribe_request();
    assert_int_equal(nt_subscribe(&f->n, txn, &req, id, &err), 0);
    req.url = "ftp://x";
    assert_int_equal(nt_subscribe(&f->n, txn, &req, id, &err), CB_ERR_INVALID);
    assert_string_equal(err.field, "url");
    req.url = "http://127.0.0.1:1/b";
    req.batch_max = 101;
    assert_int_equal(nt_subscribe(&f->n, txn, &req, id, &err), CB_ERR_INVALID);
    assert_string_equal(err.field, "batch_max");
    commit(txn);

    /* Two events of case C1 and one of C2: C1's second waits behind its first. */
    required(f, "C1", "wy-scjg");
    required(f, "C1", "wy-scjg");
    required(f, "C2", "wy-scjg");
    nt_ready_key_t keys[16];
    assert_int_equal(due(f, keys), 2);
    assert_string_equal(keys[0].id, "D000000000001");
    assert_string_equal(keys[1].id, "D000000000003");
    /* Its webhook-id names the event and the subscription, not the number. */
    txn = begin(f);
    nt_delivery_t d;
    char wid[NT_WID_MAX];
    assert_int_equal(nt_delivery_get(&f->n, txn, "D000000000003", &d), 0);
    nt_webhook_id(&d, wid, sizeof(wid));
    assert_string_equal(wid, "router-3-S000001");
    nt_delivery_free(&d);
    /* The answer of another event's webhook, which had the number before a
     * failed commit, is not this delivery's: nothing is recorded. */
    assert_int_equal(nt_record_attempt(&f->n, txn, "D000000000003", "router-2-S000001", 200, "", 5,
                                       clock_ms, &err),
                     0);
    commit(txn);
    assert_int_equal(due(f, keys), 2);

    /* C1's first fails (500): retried after the backoff; C1's second still waits. */
    attempt(f, "D000000000001", 500);
    attempt(f, "D000000000003", 200);
    assert_int_equal(due(f, keys), 0);
    clock_ms += 1300;
    assert_int_equal(due(f, keys), 1);
    assert_string_equal(keys[0].id, "D000000000001");
    /* Then it is delivered and the next of its queue becomes ready at once. */
    attempt(f, "D000000000001", 204);
    assert_int_equal(due(f, keys), 1);
    assert_string_equal(keys[0].id, "D000000000002");

    /* No answer again and again: dead after the 10 s horizon. */
    for (int i = 0; i < 8; i++) {
        attempt(f, "D000000000002", 0);
        clock_ms += 4900;
        if (due(f, keys) == 0)
            break;
    }
    txn = begin(f);
    json_t *rec = nt_get(&f->n, txn, f->n.db_deliveries, "D000000000002");
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "state")), "dead");
    assert_true(json_integer_value(json_object_get(rec, "attempt")) >= 3);
    json_decref(rec);
    assert_int_equal(nt_count(&f->n, txn, f->n.db_dead), 1);
    /* Sent again on request. */
    assert_int_equal(nt_redeliver(&f->n, txn, "D000000000002", &err), 0);
    assert_int_equal(nt_redeliver(&f->n, txn, "D000000000002", &err), CB_ERR_CONFLICT);
    commit(txn);
    assert_int_equal(due(f, keys), 1);

    /* An organisation with no subscription: recorded as undeliverable. */
    required(f, "C3", "wy-lt");
    txn = begin(f);
    cb_log_head_t head;
    assert_int_equal(cb_log_head(f->n.d.log, txn, &head, &err), 0);
    const uint8_t *raw;
    size_t len;
    uint8_t *owned;
    assert_int_equal(cb_log_get(f->n.d.log, txn, head.seq, &raw, &len, &owned, &err), 0);
    assert_null(owned);
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    assert_non_null(env);
    assert_int_equal(env->body_case, CASEBUS__V1__ENVELOPE__BODY_UNDELIVERABLE);
    assert_string_equal(env->undeliverable->delivery->org_id, "wy-lt");
    casebus__v1__envelope__free_unpacked(env, NULL);
    cb_store_abort(&txn);
}

static json_t *delivery(fx_t *f, const char *id)
{
    MDB_txn *txn = begin(f);
    json_t *rec = nt_get(&f->n, txn, f->n.db_deliveries, id);
    MDB_val body;
    cb_jsonw_t w = {0};
    if (rec && nt_body_get(&f->n, txn, id, &body) &&
        nt_stored_event_json(&f->n, body.mv_data, body.mv_size,
                             json_string_value(json_object_get(rec, "sub")),
                             json_string_value(json_object_get(rec, "org_id")), &w) == 0)
        json_object_set_new(rec, "sent", json_loadb(w.text, w.len, 0, NULL));
    cb_jsonw_close(&w);
    cb_store_abort(&txn);
    return rec;
}

/* Subscriptions are parsed once and kept, yet every change is seen at once,
 * and a change that was rolled back is not. */
static void subscription_changes_are_seen(void **state)
{
    fx_t *f = *state;
    char id[NT_ID_MAX];
    cb_error_t err;
    Casebus__V1__Subscribe req = subscribe_request();
    MDB_txn *txn = begin(f);
    assert_int_equal(nt_subscribe(&f->n, txn, &req, id, &err), 0);
    commit(txn);
    required(f, "C1", "wy-scjg");
    json_t *rec = delivery(f, "D000000000001");
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "url")), "http://127.0.0.1:1/a");
    /* The event it carries is kept beside the record, whole. */
    json_t *sent = json_object_get(rec, "sent");
    assert_string_equal(json_string_value(json_object_get(sent, "subject")), "C1");
    assert_string_equal(json_string_value(json_object_get(sent, "addressee")), "wy-scjg");
    json_decref(rec);

    Casebus__V1__UpdateSubscription u = CASEBUS__V1__UPDATE_SUBSCRIPTION__INIT;
    u.subscription_id = id;
    u.url = "http://127.0.0.1:1/b";
    txn = begin(f);
    assert_int_equal(nt_update_subscription(&f->n, txn, &u, &err), 0);
    cb_store_abort(&txn); /* rolled back */
    required(f, "C2", "wy-scjg");
    rec = delivery(f, "D000000000002");
    assert_string_equal(json_string_value(json_object_get(rec, "url")), "http://127.0.0.1:1/a");
    json_decref(rec);

    txn = begin(f);
    assert_int_equal(nt_update_subscription(&f->n, txn, &u, &err), 0);
    commit(txn);
    required(f, "C3", "wy-scjg");
    rec = delivery(f, "D000000000003");
    assert_string_equal(json_string_value(json_object_get(rec, "url")), "http://127.0.0.1:1/b");
    json_decref(rec);

    txn = begin(f);
    assert_int_equal(nt_unsubscribe(&f->n, txn, id, &err), 0);
    commit(txn);
    required(f, "C4", "wy-scjg");
    rec = delivery(f, "D000000000004");
    assert_null(rec); /* undeliverable now: no subscription */
}

/* A delivery's record is binary; one written before (JSON, its body inside)
 * is read, attempted and rewritten with nothing lost; a damaged one is
 * refused, not read past its end. */
static void delivery_records_old_and_new(void **state)
{
    fx_t *f = *state;
    Casebus__V1__Subscribe req = subscribe_request();
    char id[NT_ID_MAX];
    cb_error_t err;
    MDB_txn *txn = begin(f);
    assert_int_equal(nt_subscribe(&f->n, txn, &req, id, &err), 0);
    commit(txn);
    required(f, "C1", "wy-scjg");
    json_t *rec = delivery(f, "D000000000001");
    assert_string_equal(json_string_value(json_object_get(rec, "state")), "pending");
    assert_string_equal(json_string_value(json_object_get(rec, "case_key")), "C1");
    assert_string_equal(json_string_value(json_object_get(rec, "org_id")), "wy-scjg");
    assert_true(json_is_true(json_object_get(rec, "queued")));
    assert_null(json_object_get(rec, "last_at_ms")); /* not attempted yet */
    json_decref(rec);

    /* As notify wrote it before: JSON, the body inside, no separate body. */
    const char *old = "{\"id\":\"D000000000009\",\"sub\":\"S000001\",\"org_id\":\"wy-scjg\","
                      "\"url\":\"http://127.0.0.1:1/a\",\"type\":\"transfer_required\","
                      "\"event_id\":\"e9\",\"producer\":\"router\",\"seq\":9,\"case_id\":"
                      "\"C9\",\"case_key\":\"C9\",\"order\":9,\"state\":\"pending\","
                      "\"attempt\":0,\"first_at_ms\":1,\"next_at_ms\":1,\"last_status\":0,"
                      "\"last_error\":\"\",\"queued\":false,\"body\":\"{\\\"old\\\":1}\"}";
    txn = begin(f);
    MDB_val k = cb_store_key("D000000000009"), v = {strlen(old), (void *)old};
    assert_int_equal(mdb_put(txn, f->n.db_deliveries, &k, &v, 0), 0);
    assert_int_equal(nt_ready_put(&f->n, txn, "S000001", 1, "D000000000009", false, &err), 0);
    commit(txn);
    nt_delivery_t d;
    txn = begin(f);
    assert_int_equal(nt_delivery_get(&f->n, txn, "D000000000009", &d), 0);
    assert_string_equal(d.old_body, "{\"old\":1}");
    assert_int_equal(d.seq, 9);
    nt_delivery_free(&d);
    cb_store_abort(&txn);
    attempt(f, "D000000000009", 503);
    rec = delivery(f, "D000000000009");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempt")), 1);
    assert_int_equal(json_integer_value(json_object_get(rec, "last_status")), 503);
    /* first tried at 1 ms after the epoch: past the horizon, so a dead letter */
    assert_string_equal(json_string_value(json_object_get(rec, "state")), "dead");
    assert_string_equal(json_string_value(json_object_get(rec, "event_id")), "e9");
    assert_string_equal(json_string_value(json_object_get(rec, "url")), "http://127.0.0.1:1/a");
    assert_int_equal(json_integer_value(json_object_get(rec, "seq")), 9);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rec, "sent"), "old")), 1);
    json_decref(rec);

    /* Cut short, or a length past the end: refused. */
    txn = begin(f);
    assert_int_equal(mdb_get(txn, f->n.db_deliveries, &k, &v), 0);
    uint8_t copy[512];
    assert_true(v.mv_size <= sizeof(copy));
    memcpy(copy, v.mv_data, v.mv_size);
    for (size_t len = 0; len < v.mv_size; len++) {
        MDB_val cut = {len, copy};
        assert_int_equal(nt_delivery_decode(&cut, &d), -1);
    }
    copy[55] = 0xff; /* the id's length */
    copy[56] = 0xff;
    MDB_val bad = {v.mv_size, copy};
    assert_int_equal(nt_delivery_decode(&bad, &d), -1);
    cb_store_abort(&txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_and_backoff),
        cmocka_unit_test(signature_is_hmac_sha256),
        cmocka_unit_test(standard_webhooks_signature),
        cmocka_unit_test_setup_teardown(order_retry_and_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(subscription_changes_are_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(delivery_records_old_and_new, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
