/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"
#include "bus.h"
#include "cbtime.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <zmq.h>

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    if (path == NULL)
        return NULL;
    snprintf(path, 4096, "%s/casebus-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

void tu_rmtree(char **path)
{
    if (*path == NULL)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", *path);
    if (system(cmd) != 0)
        fprintf(stderr, "tu_rmtree: could not remove %s\n", *path);
    free(*path);
    *path = NULL;
}

bool tu_run_until(uv_loop_t *loop, bool (*pred)(void *ctx), void *ctx, uint64_t timeout_ms)
{
    uint64_t end = cb_mono_ns() + timeout_ms * 1000000ULL;
    while (!pred(ctx)) {
        if (cb_mono_ns() > end)
            return pred(ctx);
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    return true;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

void tu_run_for(uv_loop_t *loop, uint64_t ms)
{
    tu_run_until(loop, never, NULL, ms);
}

static void close_one(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void tu_loop_drain(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_one, NULL);
    while (uv_run(loop, UV_RUN_NOWAIT) != 0)
        ;
}

static void on_term(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

int tu_serve_log(struct cb_log *log, const char *endpoint)
{
    uv_loop_t *loop = uv_default_loop();
    void *zctx = zmq_ctx_new();
    cb_bus_producer_t *bus;
    cb_error_t err;
    if (cb_bus_producer_new(&bus, loop, zctx, log, endpoint, NULL, &err) != 0) {
        log_error("serve_failed error=\"%s\"", err.message);
        return err.code;
    }
    uv_signal_t term;
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    cb_bus_producer_destroy(&bus);
    uv_close((uv_handle_t *)&term, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return 0;
}

char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *more = realloc(buf, cap *= 2);
        if (more == NULL)
            free(buf);
        buf = more;
    }
    bool failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int64_t tu_at(const char *text)
{
    int64_t t;
    cb_error_t e;
    if (cb_time_parse(text, &t, &e) != 0) {
        fprintf(stderr, "bad time in test: %s (%s)\n", text, e.message);
        abort();
    }
    return t;
}

int tu_store_open(const char *tag, const char *producer, char **dir, cb_store_t **store,
                  cb_log_t **log)
{
    cb_error_t err;
    *dir = tu_tmpdir(tag);
    cb_store_opts_t opts = {.dir = *dir, .map_size = 64 << 20};
    if (cb_store_open(store, &opts, &err) != 0 ||
        (producer && cb_log_open(log, *store, producer, &err) != 0)) {
        fprintf(stderr, "test store %s: %s\n", *dir, err.message);
        cb_store_destroy(store);
        tu_rmtree(dir);
        return -1;
    }
    return 0;
}

int tu_append_probe(cb_log_t *log, MDB_txn *txn, uint64_t n, uint8_t *payload, size_t len,
                    int64_t sent_mono_ns, cb_error_t *err)
{
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    Casebus__V1__Probe probe = CASEBUS__V1__PROBE__INIT;
    probe.n = n;
    probe.payload.data = payload;
    probe.payload.len = len;
    probe.sent_mono_ns = sent_mono_ns;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_PROBE;
    env.probe = &probe;
    return cb_log_append(log, txn, &env, err);
}
