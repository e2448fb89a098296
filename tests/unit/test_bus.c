/* test_bus.c — the pull bus: fetch ranges, long poll woken by an append,
 * several producers into one consumer, cursor survives a consumer restart, and
 * a replaced producer log is refused rather than applied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus.h"
#include "bytes.h"
#include "cbtime.h"
#include "testutil.h"

typedef struct producer_side {
    char name[16];
    char endpoint[4200];
    char dir[4200];
    cb_store_t *store;
    cb_log_t *log;
    cb_bus_producer_t *bus;
} producer_side_t;

typedef struct fixture {
    char *dir;
    void *zctx;
    uv_loop_t loop;
    producer_side_t p[2];
    /* consumer side */
    cb_store_t *cstore;
    cb_group_t *group;
    cb_bus_consumer_t *consumer;
    MDB_dbi applied_db;
    uint64_t applied[2];       /* per producer */
    uint64_t last_seq[2];
    int out_of_order, duplicates;
    void *client;              /* raw DEALER */
} fixture_t;

static void producer_open(fixture_t *f, int i, const char *name, const char *subdir)
{
    producer_side_t *p = &f->p[i];
    cb_error_t err;
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->endpoint, sizeof(p->endpoint), "ipc://%s/%s.bus", f->dir, name);
    snprintf(p->dir, sizeof(p->dir), "%s/%s", f->dir, subdir);
    cb_store_opts_t opts = {.dir = p->dir, .map_size = 64 << 20};
    assert_int_equal(cb_store_open(&p->store, &opts, &err), 0);
    assert_int_equal(cb_log_open(&p->log, p->store, name, &err), 0);
    assert_int_equal(cb_bus_producer_new(&p->bus, &f->loop, f->zctx, p->log, p->endpoint, NULL,
                                         &err),
                     0);
}

static void producer_close(fixture_t *f, int i)
{
    producer_side_t *p = &f->p[i];
    cb_bus_producer_destroy(&p->bus);
    tu_run_for(&f->loop, 5);
    cb_log_destroy(&p->log);
    cb_store_destroy(&p->store);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("bus");
    f->zctx = zmq_ctx_new();
    uv_loop_init(&f->loop);
    producer_open(f, 0, "intake", "intake");
    producer_open(f, 1, "router", "router");
    f->client = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f->client, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_connect(f->client, f->p[0].endpoint);
    *state = f;
    return 0;
}

static void consumer_close(fixture_t *f)
{
    cb_bus_consumer_destroy(&f->consumer);
    cb_group_destroy(&f->group);
    tu_run_for(&f->loop, 5);
    cb_store_destroy(&f->cstore);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->cstore)
        consumer_close(f);
    for (int i = 0; i < 2; i++)
        if (f->p[i].store)
            producer_close(f, i);
    zmq_close(f->client);
    tu_loop_drain(&f->loop);
    uv_loop_close(&f->loop);
    zmq_ctx_term(f->zctx);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

static void append(fixture_t *f, int i, int count)
{
    producer_side_t *p = &f->p[i];
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(p->store, true, &txn, &err), 0);
    uint8_t payload[200];
    memset(payload, 'p', sizeof(payload));
    for (int k = 0; k < count; k++)
        assert_int_equal(tu_append_probe(p->log, txn, 0, payload, sizeof(payload), 0, &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    cb_bus_producer_wake(p->bus);
}

/* ---- raw client ---- */

typedef struct answer {
    Casebus__V1__BatchHeader *h;
    Casebus__V1__Envelope *env[64];
    uint32_t n;
    uint64_t ms;   /* time to answer */
} answer_t;

static void send_request(fixture_t *f, Casebus__V1__BusRequest *req)
{
    uint8_t buf[256];
    size_t len = casebus__v1__bus_request__pack(req, buf);
    assert_int_equal(zmq_send(f->client, buf, len, 0), (int)len);
}

static bool receive_answer(fixture_t *f, answer_t *a, uint64_t timeout_ms)
{
    uint64_t start = cb_mono_ns();
    memset(a, 0, sizeof(*a));
    for (;;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        zmq_pollitem_t it = {f->client, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 1) == 1)
            break;
        if ((cb_mono_ns() - start) / 1000000 > timeout_ms)
            return false;
    }
    a->ms = (cb_mono_ns() - start) / 1000000;
    zmq_msg_t m;
    zmq_msg_init(&m);
    assert_true(zmq_msg_recv(&m, f->client, 0) >= 0);
    a->h = casebus__v1__batch_header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    assert_non_null(a->h);
    while (zmq_msg_more(&m)) {
        assert_true(zmq_msg_recv(&m, f->client, 0) >= 0);
        assert_true(a->n < 64);
        a->env[a->n] = casebus__v1__envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        assert_non_null(a->env[a->n]);
        a->n++;
    }
    zmq_msg_close(&m);
    return true;
}

static void answer_free(answer_t *a)
{
    if (a->h)
        casebus__v1__batch_header__free_unpacked(a->h, NULL);
    for (uint32_t i = 0; i < a->n; i++)
        casebus__v1__envelope__free_unpacked(a->env[i], NULL);
    memset(a, 0, sizeof(*a));
}

static void fetch(fixture_t *f, uint64_t id, uint64_t from, uint32_t max, uint32_t wait)
{
    Casebus__V1__Fetch fe = CASEBUS__V1__FETCH__INIT;
    Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
    fe.request_id = id;
    fe.from_seq = from;
    fe.max_events = max;
    fe.max_wait_ms = wait;
    req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_FETCH;
    req.fetch = &fe;
    send_request(f, &req);
}

static void fetch_returns_the_requested_range(void **state)
{
    fixture_t *f = *state;
    append(f, 0, 10);
    answer_t a;
    fetch(f, 7, 3, 4, 0);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.h->request_id, 7);
    assert_string_equal(a.h->producer, "intake");
    assert_int_equal(a.h->first_seq, 3);
    assert_int_equal(a.h->count, 4);
    assert_int_equal(a.h->head_seq, 10);
    assert_int_equal(a.n, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(a.env[i]->seq, 3 + i);
    answer_free(&a);

    /* Past the end of the range the answer is cut at the head. */
    fetch(f, 8, 9, 50, 0);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.n, 2);
    assert_int_equal(a.env[1]->seq, 10);
    answer_free(&a);

    /* Beyond the head, no wait asked: an empty answer at once. */
    fetch(f, 9, 11, 50, 0);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.n, 0);
    assert_int_equal(a.h->head_seq, 10);
    answer_free(&a);
}

static void from_zero_tells_the_head_and_locate_finds_a_time(void **state)
{
    fixture_t *f = *state;
    append(f, 0, 3);
    answer_t a;
    fetch(f, 1, 0, 10, 0);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.n, 0);
    assert_int_equal(a.h->first_seq, 4);
    assert_int_equal(a.h->head_seq, 3);
    answer_free(&a);

    Casebus__V1__Locate lo = CASEBUS__V1__LOCATE__INIT;
    Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
    lo.request_id = 2;
    lo.time_ms = cb_now_ms() - 3600 * 1000;
    req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_LOCATE;
    req.locate = &lo;
    send_request(f, &req);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.h->first_seq, 1);
    answer_free(&a);
    lo.time_ms = cb_now_ms() + 3600 * 1000;
    send_request(f, &req);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.h->first_seq, 4);
    answer_free(&a);
}

typedef struct wake_ctx {
    fixture_t *f;
    uv_timer_t timer;
    uint64_t appended_ns;
} wake_ctx_t;

static void on_wake_timer(uv_timer_t *t)
{
    wake_ctx_t *w = t->data;
    w->appended_ns = cb_mono_ns();
    append(w->f, 0, 1);
}

static void long_poll_is_answered_when_an_event_is_appended(void **state)
{
    fixture_t *f = *state;
    append(f, 0, 2);
    wake_ctx_t w = {.f = f};
    uv_timer_init(&f->loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_wake_timer, 300, 0);
    fetch(f, 5, 3, 10, 10000);
    answer_t a;
    assert_true(receive_answer(f, &a, 5000));
    uint64_t after_append_ms = (cb_mono_ns() - w.appended_ns) / 1000000;
    assert_true(a.ms >= 250);           /* parked until the append … */
    assert_true(after_append_ms < 200); /* … and answered right after it */
    assert_int_equal(a.n, 1);
    assert_int_equal(a.env[0]->seq, 3);
    answer_free(&a);
    uv_close((uv_handle_t *)&w.timer, NULL);
    tu_run_for(&f->loop, 2);
}

static void long_poll_ends_with_an_empty_answer_after_its_wait(void **state)
{
    fixture_t *f = *state;
    fetch(f, 6, 1, 10, 200);
    answer_t a;
    assert_true(receive_answer(f, &a, 3000));
    assert_true(a.ms >= 190 && a.ms < 1500);
    assert_int_equal(a.h->request_id, 6);
    assert_int_equal(a.n, 0);
    answer_free(&a);
}

static void malformed_request_gets_an_error_answer(void **state)
{
    fixture_t *f = *state;
    const char junk[] = "\xff\xff\xff\x01not a protobuf";
    zmq_send(f->client, junk, sizeof(junk), 0);
    answer_t a;
    assert_true(receive_answer(f, &a, 2000));
    assert_non_null(strstr(a.h->error, "does not decode"));
    answer_free(&a);
    /* And the producer still serves. */
    append(f, 0, 1);
    fetch(f, 2, 1, 10, 0);
    assert_true(receive_answer(f, &a, 2000));
    assert_int_equal(a.n, 1);
    answer_free(&a);
}

/* ---- consumer ---- */

static int apply_probe(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    fixture_t *f = ctx;
    int i = strcmp(ev->producer, "intake") == 0 ? 0 : 1;
    if (ev->seq != f->last_seq[i] + 1)
        f->out_of_order++;
    f->last_seq[i] = ev->seq;
    f->applied[i]++;
    uint8_t key[1 + 8];
    key[0] = (uint8_t)i;
    cb_be64_put(key + 1, ev->seq);
    MDB_val k = {sizeof(key), key}, v = {0, NULL};
    int rc = mdb_put(txn, f->applied_db, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        f->duplicates++;
    else if (rc != 0)
        return cb_store_error(rc, "record applied", err);
    return 0;
}

static void consumer_open(fixture_t *f, int nproducers)
{
    cb_error_t err;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/consumer", f->dir);
    cb_store_opts_t opts = {.dir = dir, .map_size = 64 << 20};
    assert_int_equal(cb_store_open(&f->cstore, &opts, &err), 0);
    assert_int_equal(cb_store_dbi(f->cstore, "applied", 0, &f->applied_db, &err), 0);
    f->group = cb_group_new(&f->loop, f->cstore);
    assert_non_null(f->group);
    cb_bus_consumer_opts_t copts = {.max_events = 64, .max_wait_ms = 1000};
    assert_int_equal(cb_bus_consumer_new(&f->consumer, &f->loop, f->zctx, f->cstore, f->group,
                                         &copts, apply_probe, f, NULL, &err),
                     0);
    for (int i = 0; i < nproducers; i++)
        assert_int_equal(cb_bus_consumer_add(f->consumer, f->p[i].name, f->p[i].endpoint, &err),
                         0);
}

typedef struct want {
    fixture_t *f;
    uint64_t n[2];
} want_t;

static bool cursors_reached(void *ctx)
{
    want_t *w = ctx;
    for (size_t i = 0; i < 2; i++) {
        cb_bus_upstream_info_t info;
        if (!cb_bus_consumer_info(w->f->consumer, i, &info))
            continue;
        int k = strcmp(info.producer, "intake") == 0 ? 0 : 1;
        if (info.next_seq != w->n[k] + 1)
            return false;
    }
    return true;
}

static uint64_t stored_applied(fixture_t *f)
{
    MDB_txn *txn;
    cb_error_t err;
    cb_store_begin(f->cstore, false, &txn, &err);
    MDB_stat st;
    mdb_stat(txn, f->applied_db, &st);
    cb_store_abort(&txn);
    return st.ms_entries;
}

static bool stored_457(void *ctx)
{
    return stored_applied(ctx) == 457;
}

static void consumer_applies_several_producers_once_across_restart(void **state)
{
    fixture_t *f = *state;
    append(f, 0, 100);
    consumer_open(f, 2);
    append(f, 1, 50);
    for (int r = 0; r < 20; r++) { /* appends while the consumer runs */
        append(f, 0, 10);
        append(f, 1, 5);
        tu_run_for(&f->loop, 2);
    }
    want_t w = {f, {300, 150}};
    assert_true(tu_run_until(&f->loop, cursors_reached, &w, 10000));
    assert_int_equal(f->applied[0], 300);
    assert_int_equal(f->applied[1], 150);
    assert_int_equal(stored_applied(f), 450);

    /* Restart the consumer: it resumes from its stored cursors. */
    consumer_close(f);
    append(f, 0, 7);
    consumer_open(f, 2);
    w.n[0] = 307;
    assert_true(tu_run_until(&f->loop, cursors_reached, &w, 10000));
    assert_true(tu_run_until(&f->loop, stored_457, f, 10000)); /* its commit is on disk */
    assert_int_equal(stored_applied(f), 457);
    assert_int_equal(f->duplicates, 0);
    assert_int_equal(f->out_of_order, 0);
}

static bool has_problem(void *ctx)
{
    fixture_t *f = ctx;
    cb_bus_upstream_info_t info;
    return cb_bus_consumer_info(f->consumer, 0, &info) && info.problem != NULL;
}

static void replaced_producer_log_is_refused_not_applied(void **state)
{
    fixture_t *f = *state;
    append(f, 0, 5);
    consumer_open(f, 1);
    want_t w = {f, {5, 0}};
    assert_true(tu_run_until(&f->loop, cursors_reached, &w, 5000));

    /* The producer comes back on a fresh data directory, with other events. */
    producer_close(f, 0);
    producer_open(f, 0, "intake", "intake-new");
    append(f, 0, 9);
    assert_true(tu_run_until(&f->loop, has_problem, f, 15000));
    cb_bus_upstream_info_t info;
    cb_bus_consumer_info(f->consumer, 0, &info);
    assert_non_null(strstr(info.problem, "breaks the chain"));
    assert_int_equal(info.next_seq, 6);
    assert_int_equal(stored_applied(f), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fetch_returns_the_requested_range, setup, teardown),
        cmocka_unit_test_setup_teardown(from_zero_tells_the_head_and_locate_finds_a_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(long_poll_is_answered_when_an_event_is_appended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(long_poll_ends_with_an_empty_answer_after_its_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(malformed_request_gets_an_error_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(consumer_applies_several_producers_once_across_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(replaced_producer_log_is_refused_not_applied, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
