/*
 * busnode — a producer or consumer process for the bus crash test
 * (tests/e2e/bus_crash.sh). Not a daemon: it exists to be killed.
 *
 *   busnode produce DIR ENDPOINT TOTAL [RATE] [DIE]
 *        append events 1..TOTAL (deterministic bodies, 1–20 per fsync'd commit,
 *        RATE commits a second, 0 = as fast as it can), serve fetches forever
 *   busnode consume DIR ENDPOINT TOTAL [DIE]
 *        apply events; exit 0 once TOTAL are applied
 *   busnode caught PRODUCER_DIR CONSUMER_DIR TIMEOUT_MS
 *        read the producer's head now, wait until the consumer's cursor is past
 *        it; print the milliseconds that took; exit 1 on time-out
 *   busnode check DIR TOTAL
 *        verify the consumer applied 1..TOTAL exactly once, in order, with the
 *        right bodies
 *
 * DIE picks the moment the process dies by its own SIGKILL, so that the test
 * hits the windows a kill at a random time rarely does:
 *   producer  idle:N      after N commits, stop producing; die while a fetch is parked
 *             commit:N    die right after its Nth commit, before waking any fetch
 *             answer:N    die right after the Nth commit's wake, while the answer leaves
 *   consumer  apply:N     die inside apply after N events (a batch half applied)
 *             committed:N die right after the group commit that passed N events
 *             pending:N:PIDFILE  kill the producer (pid in PIDFILE) from inside apply
 *                         after N events, while this batch waits for its group
 *                         commit, and live on
 *
 * The consumer's evidence lives in its own store, written in the same
 * transaction as the bus cursor: a key per applied seq (a second application
 * would find it), a running order-sensitive checksum of the bodies, and counters
 * of anything out of place.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "bytes.h"
#include "cbtime.h"
#include "log.h"
#include "testutil.h"

#define PAYLOAD 200

static void body_of(uint64_t seq, uint8_t out[PAYLOAD])
{
    uint64_t x = seq * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < PAYLOAD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)x;
    }
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t checksum_step(uint64_t h, uint64_t seq, const uint8_t *body)
{
    uint8_t k[8];
    cb_be64_put(k, seq);
    return fnv(fnv(h, k, 8), body, PAYLOAD);
}

/* ---- dying on purpose ---- */

typedef struct die {
    char window[16]; /* "" = live until killed from outside */
    uint64_t after;
    char pidfile[512];
} die_t;

static void parse_die(const char *spec, die_t *d)
{
    memset(d, 0, sizeof(*d));
    if (spec == NULL || *spec == '\0')
        return;
    unsigned long long n = 0;
    int used = 0;
    if (sscanf(spec, "%15[a-z]:%llu%n", d->window, &n, &used) != 2)
        fatalx("bad DIE '%s'", spec);
    d->after = n;
    if (spec[used] == ':')
        snprintf(d->pidfile, sizeof(d->pidfile), "%s", spec + used + 1);
}

static bool die_is(const die_t *d, const char *window)
{
    return strcmp(d->window, window) == 0;
}

static void die_now(const char *why)
{
    log_info("dying_on_purpose window=%s", why);
    raise(SIGKILL);
}

/* The producer's and the consumer's store. The kills here are process kills,
 * which the page cache survives, so the nodes do not sync: an fsync that a
 * busy disk holds for seconds (seen on CI hosts after the rest of the suite)
 * would read as a bus that stalled, and the budget is for the bus. What a
 * commit leaves behind for the next process is the same either way. */
static void open_node_store(cb_store_t **store, const char *dir)
{
    cb_store_opts_t opts = {.dir = dir, .map_size = 1ULL << 30};
    cb_error_t err;
    int rc;
    if (cb_store_open(store, &opts, &err) != 0)
        fatalx("start %s", err.message);
    if ((rc = mdb_env_set_flags(cb_store_env(*store), MDB_NOSYNC, 1)) != 0)
        fatalx("start: %s", mdb_strerror(rc));
}

/* ---- produce ---- */

typedef struct producer {
    cb_store_t *store;
    cb_log_t *log;
    cb_bus_producer_t *bus;
    uint64_t total;
    uint64_t commits;
    die_t die;
    uv_timer_t tick;
} producer_t;

static void wait_parked(uv_timer_t *t)
{
    producer_t *p = t->data;
    if (cb_bus_producer_parked(p->bus) > 0) {
        usleep((useconds_t)(rand() % 50000)); /* somewhere in the parked wait */
        die_now("idle");
    }
}

static void produce_some(uv_timer_t *t)
{
    producer_t *p = t->data;
    MDB_txn *txn;
    cb_error_t err;
    cb_log_head_t head;
    if (cb_store_begin(p->store, true, &txn, &err) || cb_log_head(p->log, txn, &head, &err))
        fatalx("begin %s", err.message);
    uint64_t n = 1 + (uint64_t)rand() % 20;
    for (uint64_t i = 0; i < n && head.seq + i < p->total; i++) {
        uint8_t body[PAYLOAD];
        uint64_t seq = head.seq + i + 1;
        body_of(seq, body);
        if (tu_append_probe(p->log, txn, seq, body, PAYLOAD, 0, &err) != 0)
            fatalx("append %s", err.message);
    }
    if (cb_store_commit(&txn, &err) != 0)
        fatalx("commit %s", err.message);
    p->commits++;
    bool last = p->die.after && p->commits == p->die.after;
    if (last && die_is(&p->die, "commit"))
        die_now("commit");
    cb_bus_producer_wake(p->bus);
    if (last && die_is(&p->die, "answer")) {
        usleep((useconds_t)(rand() % 300)); /* the I/O thread is writing the answer */
        die_now("answer");
    }
    if (last && die_is(&p->die, "idle")) {
        uv_timer_stop(t);
        uv_timer_start(t, wait_parked, 1, 1);
        return;
    }
    if (head.seq + n >= p->total) {
        uv_timer_stop(t);
        log_info("produced_all total=%llu", (unsigned long long)p->total);
    }
}

static int produce(const char *dir, const char *endpoint, uint64_t total, uint64_t rate,
                   const char *die)
{
    producer_t p = {.total = total};
    parse_die(die, &p.die);
    cb_error_t err;
    uv_loop_t *loop = uv_default_loop();
    void *zctx = zmq_ctx_new();
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    open_node_store(&p.store, dir);
    if (cb_log_open(&p.log, p.store, "intake", &err) ||
        cb_bus_producer_new(&p.bus, loop, zctx, p.log, endpoint, NULL, &err))
        fatalx("start %s", err.message);
    log_info("producer_started pid=%ld", (long)getpid());
    uv_timer_init(loop, &p.tick);
    p.tick.data = &p;
    uv_timer_start(&p.tick, produce_some, 0, rate ? (1000 + rate - 1) / rate : 1);
    return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- consume ---- */

typedef struct consumer {
    MDB_dbi db_seen, db_state;
    uint64_t total;
    uint64_t seen;    /* events handed to apply by this process */
    cb_store_t *store;
    die_t die;
} consumer_t;

typedef struct state {
    uint64_t applied, last_seq, checksum, out_of_order, duplicates, bad_bodies;
} state_t;

static int state_get(MDB_txn *txn, MDB_dbi dbi, state_t *s)
{
    MDB_val k = {5, "state"}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(s, 0, sizeof(*s));
        return 0;
    }
    if (rc == 0 && v.mv_size == sizeof(*s))
        memcpy(s, v.mv_data, sizeof(*s));
    return rc;
}

static int apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    consumer_t *c = ctx;
    state_t s;
    if (++c->seen == c->die.after) {
        if (die_is(&c->die, "apply"))
            die_now("apply");
        if (die_is(&c->die, "pending")) {
            FILE *f = fopen(c->die.pidfile, "r");
            long pid = 0;
            if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0)
                fatalx("cannot read the producer's pid from %s", c->die.pidfile);
            fclose(f);
            kill((pid_t)pid, SIGKILL);
            log_info("killed_producer pid=%ld window=pending", pid);
        }
    }
    int rc = state_get(txn, c->db_state, &s);
    if (rc != 0)
        return cb_store_error(rc, "read state", err);
    if (ev->seq != s.last_seq + 1)
        s.out_of_order++;
    uint8_t want[PAYLOAD];
    body_of(ev->seq, want);
    const Casebus__V1__Probe *p = ev->env->probe;
    if (p == NULL || p->n != ev->seq || p->payload.len != PAYLOAD ||
        memcmp(p->payload.data, want, PAYLOAD) != 0)
        s.bad_bodies++;
    else
        s.checksum = checksum_step(s.checksum, ev->seq, p->payload.data);
    uint8_t key[8];
    cb_be64_put(key, ev->seq);
    MDB_val k = {8, key}, v = {0, NULL};
    rc = mdb_put(txn, c->db_seen, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        s.duplicates++;
    else if (rc != 0)
        return cb_store_error(rc, "mark seen", err);
    s.applied++;
    s.last_seq = ev->seq;
    MDB_val sk = {5, "state"}, sv = {sizeof(s), &s};
    if ((rc = mdb_put(txn, c->db_state, &sk, &sv, 0)) != 0)
        return cb_store_error(rc, "write state", err);
    return 0;
}

static void after_commit(void *ctx)
{
    consumer_t *c = ctx;
    MDB_txn *txn;
    state_t s;
    if (die_is(&c->die, "committed") && c->seen >= c->die.after)
        die_now("committed");
    if (cb_store_begin(c->store, false, &txn, NULL) != 0)
        return;
    if (state_get(txn, c->db_state, &s) == 0 && s.applied >= c->total) {
        log_info("consumed_all applied=%llu", (unsigned long long)s.applied);
        cb_store_abort(&txn);
        exit(0);
    }
    cb_store_abort(&txn);
}

static int consume(const char *dir, const char *endpoint, uint64_t total, const char *die)
{
    consumer_t c = {.total = total};
    parse_die(die, &c.die);
    cb_error_t err;
    uv_loop_t *loop = uv_default_loop();
    void *zctx = zmq_ctx_new();
    open_node_store(&c.store, dir);
    if (cb_store_dbi(c.store, "seen", 0, &c.db_seen, &err) ||
        cb_store_dbi(c.store, "state", 0, &c.db_state, &err))
        fatalx("start %s", err.message);
    cb_group_t *g = cb_group_new(loop, c.store);
    cb_group_on_commit(g, after_commit, &c);
    cb_bus_consumer_t *bus;
    cb_bus_consumer_opts_t bo = {.max_events = 256, .max_wait_ms = 2000};
    if (cb_bus_consumer_new(&bus, loop, zctx, c.store, g, &bo, apply, &c, NULL, &err) ||
        cb_bus_consumer_add(bus, "intake", endpoint, &err))
        fatalx("start %s", err.message);
    after_commit(&c); /* already done before a restart? */
    return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- caught: how long until the consumer has what the producer has now ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int caught(const char *pdir, const char *cdir, int64_t timeout_ms)
{
    int64_t t0 = mono_ms();
    cb_store_t *ps = NULL, *cs = NULL;
    cb_log_t *log = NULL;
    MDB_txn *txn = NULL;
    cb_log_head_t head;
    cb_error_t err;
    cb_store_opts_t po = {.dir = pdir, .read_only = true}, co = {.dir = cdir, .read_only = true};
    if (cb_store_open(&ps, &po, &err) || cb_log_open(&log, ps, "intake", &err) ||
        cb_store_begin(ps, false, &txn, &err) || cb_log_head(log, txn, &head, &err)) {
        printf("caught: cannot read the producer's head: %s\n", err.message);
        return 2;
    }
    cb_store_abort(&txn);
    uint64_t next = 0;
    /* The consumer may be creating its store right now: retry the open too. */
    while (mono_ms() - t0 < timeout_ms) {
        if (cs == NULL && cb_store_open(&cs, &co, &err) != 0)
            cs = NULL;
        if (cs && cb_bus_cursor_read(cs, "intake", &next, &err) == 0 && next > head.seq)
            break;
        usleep(2000);
    }
    int64_t took = mono_ms() - t0;
    printf("%lld %llu %llu\n", (long long)took, (unsigned long long)head.seq,
           (unsigned long long)next);
    cb_store_destroy(&cs);
    cb_log_destroy(&log);
    cb_store_destroy(&ps);
    return next > head.seq ? 0 : 1;
}

/* ---- check ---- */

static int check(const char *dir, uint64_t total)
{
    cb_store_t *store;
    cb_error_t err;
    cb_store_opts_t opts = {.dir = dir, .read_only = true};
    MDB_dbi db_seen, db_state;
    MDB_txn *txn;
    if (cb_store_open(&store, &opts, &err) || cb_store_dbi(store, "seen", 0, &db_seen, &err) ||
        cb_store_dbi(store, "state", 0, &db_state, &err) ||
        cb_store_begin(store, false, &txn, &err)) {
        printf("check: cannot open consumer store: %s\n", err.message);
        return 1;
    }
    state_t s;
    state_get(txn, db_state, &s);
    MDB_stat st;
    mdb_stat(txn, db_seen, &st);
    uint64_t want = 0;
    for (uint64_t seq = 1; seq <= total; seq++) {
        uint8_t body[PAYLOAD];
        body_of(seq, body);
        want = checksum_step(want, seq, body);
    }
    uint64_t next = 0;
    cb_store_abort(&txn);
    cb_bus_cursor_read(store, "intake", &next, &err);
    printf("applied=%llu distinct=%zu last_seq=%llu cursor=%llu out_of_order=%llu "
           "duplicates=%llu bad_bodies=%llu checksum=%016llx expected=%016llx\n",
           (unsigned long long)s.applied, st.ms_entries, (unsigned long long)s.last_seq,
           (unsigned long long)next, (unsigned long long)s.out_of_order,
           (unsigned long long)s.duplicates, (unsigned long long)s.bad_bodies,
           (unsigned long long)s.checksum, (unsigned long long)want);
    cb_store_destroy(&store);
    bool ok = s.applied == total && st.ms_entries == total && s.last_seq == total &&
              next == total + 1 && s.out_of_order == 0 && s.duplicates == 0 &&
              s.bad_bodies == 0 && s.checksum == want;
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    log_init(argc > 1 ? argv[1] : "busnode", CB_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2], argv[3], strtoull(argv[4], NULL, 10),
                       argc > 5 ? strtoull(argv[5], NULL, 10) : 0, argc > 6 ? argv[6] : NULL);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "consume") == 0)
        return consume(argv[2], argv[3], strtoull(argv[4], NULL, 10), argc > 5 ? argv[5] : NULL);
    if (argc == 5 && strcmp(argv[1], "caught") == 0)
        return caught(argv[2], argv[3], strtoll(argv[4], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: busnode produce DIR ENDPOINT TOTAL [RATE] [DIE] | consume DIR "
                    "ENDPOINT TOTAL [DIE] | caught PDIR CDIR TIMEOUT_MS | check DIR TOTAL\n");
    return 2;
}
