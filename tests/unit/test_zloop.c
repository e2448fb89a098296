/* test_zloop.c — ZeroMQ in the libuv loop (messages that arrive while the loop
 * is busy are not missed) and group commit (one fsync for a turn's work; a
 * refused participant leaves nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "testutil.h"
#include "zloop.h"

typedef struct echo {
    cb_zwatch_t w;
    int received;
} echo_t;

static void on_echo(cb_zwatch_t *w, void *sock, void *ctx)
{
    echo_t *e = ctx;
    char buf[64];
    int n = zmq_recv(sock, buf, sizeof(buf), ZMQ_DONTWAIT);
    if (n < 0)
        return;
    e->received++;
    /* A send on the watched socket can eat the edge of the next message. */
    cb_zsend(w, buf, (size_t)(n > 64 ? 64 : n), false);
}

static bool got_all(void *ctx)
{
    return ((echo_t *)ctx)->received == 1000;
}

static void edge_triggered_fd_is_drained_after_sends(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *server = zmq_socket(zctx, ZMQ_PAIR), *client = zmq_socket(zctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(server, "inproc://echo"), 0);
    assert_int_equal(zmq_connect(client, "inproc://echo"), 0);
    echo_t e = {0};
    cb_error_t err;
    /* Messages queued before the watcher exists must be seen too. */
    for (int i = 0; i < 10; i++)
        zmq_send(client, "x", 1, 0);
    assert_int_equal(cb_zwatch_init(&e.w, &loop, server, on_echo, &e, &err), 0);
    for (int i = 10; i < 1000; i++)
        zmq_send(client, "y", 1, 0);
    assert_true(tu_run_until(&loop, got_all, &e, 5000));
    int echoed = 0;
    char buf[8];
    while (zmq_recv(client, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
        echoed++;
    assert_int_equal(echoed, 1000);
    cb_zwatch_close(&e.w, NULL);
    tu_loop_drain(&loop);
    uv_loop_close(&loop);
    zmq_close(server);
    zmq_close(client);
    zmq_ctx_term(zctx);
}

typedef struct outcome {
    int calls;
    int status;
} outcome_t;

static void on_done(void *arg, int status, const cb_error_t *err)
{
    (void)err;
    outcome_t *o = arg;
    o->calls++;
    o->status = status;
}

static void put(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
    MDB_val k = {strlen(key), (void *)key}, v = {1, "v"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
}

static bool all_done(void *ctx)
{
    outcome_t *o = ctx;
    return o[0].calls && o[1].calls && o[2].calls;
}

/* A loop and a scratch store with one database "kv", for the group tests. */
typedef struct store_fx {
    char *dir;
    uv_loop_t loop;
    cb_store_t *store;
    MDB_dbi dbi;
} store_fx_t;

static void store_fx_open(store_fx_t *f, const char *name)
{
    cb_error_t err;
    f->dir = tu_tmpdir(name);
    uv_loop_init(&f->loop);
    f->store = NULL;
    cb_store_opts_t opts = {.dir = f->dir, .map_size = 16 << 20};
    assert_int_equal(cb_store_open(&f->store, &opts, &err), 0);
    assert_int_equal(cb_store_dbi(f->store, "kv", 0, &f->dbi, &err), 0);
}

/* Entries in "kv" now. */
static size_t store_fx_entries(store_fx_t *f)
{
    MDB_txn *txn;
    cb_error_t err;
    MDB_stat st;
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    mdb_stat(txn, f->dbi, &st);
    cb_store_abort(&txn);
    return st.ms_entries;
}

static void store_fx_close(store_fx_t *f, cb_group_t **g)
{
    cb_group_destroy(g);
    tu_loop_drain(&f->loop);
    uv_loop_close(&f->loop);
    cb_store_destroy(&f->store);
    tu_rmtree(&f->dir);
}

static void one_turn_one_commit_and_refused_work_leaves_nothing(void **state)
{
    (void)state;
    store_fx_t f;
    store_fx_open(&f, "group");
    cb_error_t err;
    cb_group_t *g = cb_group_new(&f.loop, f.store);

    /* Three commands and one refused, all in one loop turn. */
    outcome_t o[4] = {{0}};
    const char *keys[] = {"a", "b", "c", "refused"};
    for (int i = 0; i < 4; i++) {
        MDB_txn *child;
        assert_int_equal(cb_group_begin(g, &child, &err), 0);
        put(child, f.dbi, keys[i]);
        assert_int_equal(cb_group_end(g, &child, i != 3, on_done, &o[i], &err), 0);
        assert_null(child);
    }
    assert_int_equal(o[0].calls, 0); /* not acknowledged before the commit */
    assert_true(tu_run_until(&f.loop, all_done, o, 5000));
    assert_int_equal(cb_group_commits(g), 1);
    assert_int_equal(o[3].calls, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(o[i].status, 0);

    assert_int_equal(store_fx_entries(&f), 3);
    MDB_txn *txn;
    cb_store_begin(f.store, false, &txn, &err);
    MDB_val k = {7, "refused"}, v;
    assert_int_equal(mdb_get(txn, f.dbi, &k, &v), MDB_NOTFOUND);
    cb_store_abort(&txn);
    store_fx_close(&f, &g);
}

static bool called(void *ctx)
{
    return ((outcome_t *)ctx)->calls > 0;
}

static void failed_group_acknowledges_nothing_and_keeps_nothing(void **state)
{
    (void)state;
    store_fx_t f;
    store_fx_open(&f, "groupfail");
    cb_error_t err;
    cb_group_t *g = cb_group_new(&f.loop, f.store);

    /* Two commands succeed in direct mode, then a third fails after writing. */
    outcome_t o[2] = {{0}};
    MDB_txn *txn;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cb_group_txn(g, &txn, &err), 0);
        put(txn, f.dbi, i ? "b" : "a");
        assert_int_equal(cb_group_join(g, on_done, &o[i], &err), 0);
    }
    assert_int_equal(cb_group_txn(g, &txn, &err), 0);
    put(txn, f.dbi, "half-written");
    cb_error_t boom = {CB_ERR_STORE_FULL, "", "store full"};
    cb_group_fail(g, &boom);
    assert_int_equal(o[0].calls, 1);
    assert_int_equal(o[0].status, CB_ERR_STORE_FULL);
    assert_int_equal(o[1].status, CB_ERR_STORE_FULL);

    /* The next turn works normally and finds none of the failed turn's writes. */
    outcome_t ok = {0};
    assert_int_equal(cb_group_txn(g, &txn, &err), 0);
    put(txn, f.dbi, "c");
    assert_int_equal(cb_group_join(g, on_done, &ok, &err), 0);
    assert_true(tu_run_until(&f.loop, called, &ok, 5000));
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.status, 0);
    assert_int_equal(store_fx_entries(&f), 1);
    store_fx_close(&f, &g);
}

/* Work that comes while a commit is on its way is held, and runs in the next
 * group once the first is on disk: the first's answer comes first. */
typedef struct held_fx {
    cb_group_t *g;
    MDB_dbi dbi;
    outcome_t first, second;
    int idle_calls, first_calls_at_idle;
    bool held;
} held_fx_t;

static void run_held(void *ctx)
{
    held_fx_t *h = ctx;
    h->idle_calls++;
    if (!h->held || cb_group_hold(h->g))
        return;
    h->held = false;
    h->first_calls_at_idle = h->first.calls;
    MDB_txn *child;
    cb_error_t err;
    assert_int_equal(cb_group_begin(h->g, &child, &err), 0);
    put(child, h->dbi, "second");
    assert_int_equal(cb_group_end(h->g, &child, true, on_done, &h->second, &err), 0);
}

static bool second_done(void *ctx)
{
    return ((held_fx_t *)ctx)->second.calls > 0;
}

static void work_held_during_a_commit_runs_after_it(void **state)
{
    (void)state;
    store_fx_t f;
    store_fx_open(&f, "grouphold");
    cb_error_t err;
    held_fx_t h = {.dbi = f.dbi};
    h.g = cb_group_new(&f.loop, f.store);
    assert_non_null(h.g);
    cb_group_on_idle(h.g, run_held, &h);
    assert_int_equal(cb_group_thread_commits(h.g, true, &err), 0);
    assert_true(cb_group_settled(h.g));

    /* A busy turn first (eight commands): the next group commits on the thread. */
    outcome_t busy[8] = {{0}};
    MDB_txn *child;
    for (int i = 0; i < 8; i++) {
        char key[8];
        snprintf(key, sizeof(key), "busy%d", i);
        assert_int_equal(cb_group_begin(h.g, &child, &err), 0);
        put(child, h.dbi, key);
        assert_int_equal(cb_group_end(h.g, &child, true, on_done, &busy[i], &err), 0);
    }
    assert_true(tu_run_until(&f.loop, called, &busy[7], 5000));

    assert_int_equal(cb_group_begin(h.g, &child, &err), 0);
    put(child, h.dbi, "first");
    assert_int_equal(cb_group_end(h.g, &child, true, on_done, &h.first, &err), 0);
    assert_false(cb_group_settled(h.g));
    assert_false(cb_group_hold(h.g)); /* a transaction is open: work joins it */
    uv_run(&f.loop, UV_RUN_NOWAIT);   /* the turn's check phase hands it over */
    assert_true(cb_group_hold(h.g));  /* on its way: new work waits */
    h.held = true;
    assert_int_equal(h.first.calls, 0);
    assert_true(tu_run_until(&f.loop, second_done, &h, 5000));
    assert_int_equal(h.first.calls, 1);
    assert_int_equal(h.first.status, 0);
    assert_int_equal(h.first_calls_at_idle, 1); /* answered before the held work ran */
    assert_int_equal(h.second.status, 0);
    assert_int_equal(cb_group_commits(h.g), 3);
    assert_true(cb_group_settled(h.g));
    assert_int_equal(store_fx_entries(&f), 10);
    store_fx_close(&f, &h.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edge_triggered_fd_is_drained_after_sends),
        cmocka_unit_test(one_turn_one_commit_and_refused_work_leaves_nothing),
        cmocka_unit_test(failed_group_acknowledges_nothing_and_keeps_nothing),
        cmocka_unit_test(work_held_during_a_commit_runs_after_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
