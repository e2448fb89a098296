/*
 * bench/bus — the durable pull bus, measured, beside its ceiling.
 *
 *   1. throughput: a producer process appends N 200-byte events (64 per
 *      fsync'd commit, as group commit does under load); this process consumes
 *      them, each batch applied with a write per event and the cursor in one
 *      fsync'd commit. Events per second from the first append to the last
 *      applied commit.
 *   2. latency: the producer appends one event per fsync'd commit at a steady
 *      rate; latency = the consumer's commit done − the moment before the
 *      producer began its append transaction. p50 / p99 / max.
 *   3. ceiling: libzmq alone, a DEALER sending 200-byte messages to a ROUTER
 *      over ipc, two threads, no disk.
 *
 * Usage: bus [N_THROUGHPUT] [LATENCY_RATE_PER_S] [LATENCY_SECONDS]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "bytes.h"
#include "cbtime.h"
#include "log.h"
#include "testutil.h"

#define PAYLOAD 200

/* ---------- producer child ---------- */

/* The probe payload that makes a stored record exactly PAYLOAD bytes: the
 * envelope's own fields (hash, prev_hash, event id, …) take the rest. */
static size_t payload_len(void)
{
    static size_t len;
    if (len)
        return len;
    uint8_t h[CB_HASH_LEN] = {0}, body[PAYLOAD] = {0};
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    Casebus__V1__Probe probe = CASEBUS__V1__PROBE__INIT;
    env.producer = "bench";
    env.seq = 100000;
    env.event_id = "01900000-0000-7000-8000-000000000000";
    env.recorded_at_ms = cb_now_ms();
    env.prev_hash.data = env.hash.data = h;
    env.prev_hash.len = env.hash.len = CB_HASH_LEN;
    probe.n = 100000;
    probe.sent_mono_ns = (int64_t)cb_mono_ns();
    probe.payload.data = body;
    probe.payload.len = 100;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_PROBE;
    env.probe = &probe;
    len = 100 + PAYLOAD - casebus__v1__envelope__get_packed_size(&env);
    return len;
}

typedef struct prod {
    cb_store_t *store;
    cb_log_t *log;
    cb_bus_producer_t *bus;
    uint64_t total, done;
    unsigned per_commit;
    uv_timer_t tick;
} prod_t;

static void append_batch(uv_timer_t *t)
{
    prod_t *p = t->data;
    MDB_txn *txn;
    cb_error_t err;
    uint64_t start = cb_mono_ns();
    if (cb_store_begin(p->store, true, &txn, &err) != 0)
        fatalx("begin %s", err.message);
    uint8_t body[PAYLOAD];
    memset(body, 'e', sizeof(body));
    for (unsigned i = 0; i < p->per_commit && p->done < p->total; i++, p->done++)
        if (tu_append_probe(p->log, txn, p->done + 1, body, payload_len(), (int64_t)start, &err))
            fatalx("append %s", err.message);
    if (cb_store_commit(&txn, &err) != 0)
        fatalx("commit %s", err.message);
    cb_bus_producer_wake(p->bus);
    if (p->done >= p->total)
        uv_timer_stop(t);
}

static void run_producer(const char *dir, const char *ep, uint64_t total, unsigned per_commit,
                         uint64_t interval_ms)
{
    prod_t p = {.total = total, .per_commit = per_commit};
    cb_error_t err;
    uv_loop_t *loop = uv_default_loop();
    void *zctx = zmq_ctx_new();
    cb_store_opts_t o = {.dir = dir, .map_size = 4ULL << 30};
    if (cb_store_open(&p.store, &o, &err) || cb_log_open(&p.log, p.store, "bench", &err) ||
        cb_bus_producer_new(&p.bus, loop, zctx, p.log, ep, NULL, &err))
        fatalx("producer %s", err.message);
    uv_timer_init(loop, &p.tick);
    p.tick.data = &p;
    uv_timer_start(&p.tick, append_batch, 200, interval_ms ? interval_ms : 0);
    if (interval_ms == 0) /* as fast as possible: a zero-repeat timer re-armed via idle */
        uv_timer_set_repeat(&p.tick, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---------- consumer (this process) ---------- */

typedef struct cons {
    cb_store_t *store;
    MDB_dbi db;
    uint64_t total, applied, committed, bytes;
    uint64_t first_sent_ns, last_commit_ns;
    uint64_t *pending_sent; /* sent times of events applied but not yet committed */
    size_t npending;
    uint64_t *lat_ns;       /* per committed event */
    size_t nlat;
} cons_t;

static int apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    cons_t *c = ctx;
    uint8_t key[8];
    cb_be64_put(key, ev->seq);
    uint64_t n = ev->env->probe ? ev->env->probe->n : 0;
    MDB_val k = {8, key}, v = {8, &n};
    int rc = mdb_put(txn, c->db, &k, &v, 0);
    if (rc != 0)
        return cb_store_error(rc, "bench put", err);
    uint64_t sent = (uint64_t)ev->env->probe->sent_mono_ns;
    if (c->first_sent_ns == 0 || sent < c->first_sent_ns)
        c->first_sent_ns = sent;
    c->pending_sent[c->npending++] = sent;
    c->bytes += ev->len;
    c->applied++;
    return 0;
}

static void on_commit(void *ctx)
{
    cons_t *c = ctx;
    uint64_t now = cb_mono_ns();
    for (size_t i = 0; i < c->npending; i++)
        c->lat_ns[c->nlat++] = now - c->pending_sent[i];
    c->committed += c->npending;
    c->npending = 0;
    c->last_commit_ns = now;
}

static bool all_committed(void *ctx)
{
    cons_t *c = ctx;
    return c->committed >= c->total;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct run_result {
    double events_per_s;
    double p50_ms, p99_ms, max_ms;
    uint64_t events;
    double record_bytes;
} run_result_t;

static int run_pair(uint64_t total, unsigned per_commit, uint64_t interval_ms, run_result_t *r)
{
    char *dir = tu_tmpdir("benchbus");
    char pdir[4200], cdir[4200], ep[4200];
    snprintf(pdir, sizeof(pdir), "%s/producer", dir);
    snprintf(cdir, sizeof(cdir), "%s/consumer", dir);
    snprintf(ep, sizeof(ep), "ipc://%s/bench.bus", dir);
    pid_t pid = fork();
    if (pid == 0)
        run_producer(pdir, ep, total, per_commit, interval_ms);

    cons_t c = {.total = total};
    c.pending_sent = calloc(CB_BUS_MAX_EVENTS * 4, sizeof(uint64_t));
    c.lat_ns = calloc(total, sizeof(uint64_t));
    cb_error_t err;
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *zctx = zmq_ctx_new();
    cb_store_opts_t o = {.dir = cdir, .map_size = 4ULL << 30};
    cb_bus_consumer_t *bus = NULL;
    if (cb_store_open(&c.store, &o, &err) || cb_store_dbi(c.store, "applied", 0, &c.db, &err))
        fatalx("consumer %s", err.message);
    cb_group_t *g = cb_group_new(&loop, c.store);
    cb_group_on_commit(g, on_commit, &c);
    cb_bus_consumer_opts_t bo = {.max_events = 1024, .max_wait_ms = 1000};
    if (cb_bus_consumer_new(&bus, &loop, zctx, c.store, g, &bo, apply, &c, NULL, &err) ||
        cb_bus_consumer_add(bus, "bench", ep, &err))
        fatalx("consumer %s", err.message);
    bool ok = tu_run_until(&loop, all_committed, &c, 600000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (ok) {
        r->events = c.committed;
        r->record_bytes = (double)c.bytes / (double)c.applied;
        r->events_per_s = (double)c.committed / ((double)(c.last_commit_ns - c.first_sent_ns) / 1e9);
        qsort(c.lat_ns, c.nlat, sizeof(uint64_t), cmp_u64);
        r->p50_ms = (double)c.lat_ns[c.nlat / 2] / 1e6;
        r->p99_ms = (double)c.lat_ns[c.nlat * 99 / 100] / 1e6;
        r->max_ms = (double)c.lat_ns[c.nlat - 1] / 1e6;
    }
    cb_bus_consumer_destroy(&bus);
    cb_group_destroy(&g);
    tu_loop_drain(&loop);
    uv_loop_close(&loop);
    cb_store_destroy(&c.store);
    zmq_ctx_term(zctx);
    free(c.pending_sent);
    free(c.lat_ns);
    tu_rmtree(&dir);
    return ok ? 0 : -1;
}

/* ---------- raw libzmq ceiling ---------- */

typedef struct raw {
    void *zctx;
    char ep[4200];
    uint64_t count;
} raw_t;

static void *raw_sender(void *arg)
{
    raw_t *r = arg;
    void *s = zmq_socket(r->zctx, ZMQ_DEALER);
    int hwm = 100000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_connect(s, r->ep);
    char msg[PAYLOAD];
    memset(msg, 'z', sizeof(msg));
    for (uint64_t i = 0; i < r->count; i++)
        zmq_send(s, msg, sizeof(msg), 0);
    zmq_close(s);
    return NULL;
}

static double raw_rate(uint64_t count)
{
    char *dir = tu_tmpdir("benchraw");
    raw_t r = {.zctx = zmq_ctx_new(), .count = count};
    snprintf(r.ep, sizeof(r.ep), "ipc://%s/raw", dir);
    void *router = zmq_socket(r.zctx, ZMQ_ROUTER);
    int hwm = 100000;
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_bind(router, r.ep);
    pthread_t th;
    pthread_create(&th, NULL, raw_sender, &r);
    zmq_msg_t m;
    zmq_msg_init(&m);
    uint64_t start = 0;
    for (uint64_t i = 0; i < count; i++) {
        zmq_msg_recv(&m, router, 0); /* identity */
        if (i == 0)
            start = cb_mono_ns();
        zmq_msg_recv(&m, router, 0); /* body */
    }
    double secs = (double)(cb_mono_ns() - start) / 1e9;
    zmq_msg_close(&m);
    pthread_join(th, NULL);
    zmq_close(router);
    zmq_ctx_term(r.zctx);
    tu_rmtree(&dir);
    return (double)(count - 1) / secs;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    uint64_t rate = argc > 2 ? strtoull(argv[2], NULL, 10) : 200;
    uint64_t secs = argc > 3 ? strtoull(argv[3], NULL, 10) : 10;
    log_init("bench-bus", CB_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);

    run_result_t thr = {0}, lat = {0};
    if (run_pair(n, 64, 0, &thr) != 0)
        fatalx("throughput run did not finish");
    if (run_pair(rate * secs, 1, 1000 / rate, &lat) != 0)
        fatalx("latency run did not finish");
    double ceiling = raw_rate(2000000);

    printf("bench/bus  (stored events of %.0f bytes, fsync on every commit, ipc, %ld cores)\n",
           thr.record_bytes, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  %-58s %12s\n", "measure", "figure");
    printf("  %-58s %12.0f ev/s\n", "throughput, producer log -> consumer applied (64/commit)",
           thr.events_per_s);
    printf("  %-58s %12.2f ms\n", "  latency under that load: p50", thr.p50_ms);
    printf("  %-58s %12.2f ms\n", "  latency under that load: p99", thr.p99_ms);
    printf("  %-58s %12.2f ms\n", "latency append -> applied, steady load: p50", lat.p50_ms);
    printf("  %-58s %12.2f ms\n", "latency append -> applied, steady load: p99", lat.p99_ms);
    printf("  %-58s %12.2f ms\n", "latency append -> applied, steady load: max", lat.max_ms);
    printf("  (steady load: %llu events at %llu/s, one event per fsync'd commit)\n",
           (unsigned long long)lat.events, (unsigned long long)rate);
    printf("  %-58s %12.0f msg/s\n", "ceiling: raw libzmq DEALER->ROUTER, ipc, no disk", ceiling);
    printf("  bus throughput is %.1f%% of the raw libzmq ceiling\n",
           100.0 * thr.events_per_s / ceiling);
    return 0;
}
