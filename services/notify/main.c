/*
 * main.c — casebus-notify: options, wiring, the loop.
 *
 *   casebus-notify --config FILE
 *
 * [notify] keys: data_dir, map_size, bus_bind (its log), control_bind
 * (subscriptions, dead letters, status), stream_bind (the zmq channel: platforms
 * pull their events), pull = router ENDPOINT, pull = deadline
 * ENDPOINT, timeout_ms (per attempt, default 10000), retry_base_ms (first retry,
 * 1000), retry_max_ms (longest wait, 600000), horizon (give up and dead-letter
 * after, default 24h: s/m/h/d), max_in_flight (256), per_endpoint (32 attempts in
 * flight per subscription), subscribe = ORG URL SECRET [TYPE,TYPE…] [batch=N] (repeatable:
 * subscriptions made at start when the store has none for that org and url),
 * allow_private_webhooks (no: webhooks reach public addresses only), webhook_allow
 * = CIDR (repeatable: a private network webhooks may reach), log_level.
 */
#include "notify.h"
#include "cbtime.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void stop_doors(cb_daemon_t *d, void *ctx)
{
    (void)d;
    notify_t *n = ctx;
    nt_control_stop(n);
    nt_stream_stop(n);
    nt_sender_stop(n);
}

static void kick_sender(cb_daemon_t *d, void *ctx)
{
    (void)d;
    nt_sender_kick(ctx);
    nt_stream_wake(ctx);
}

typedef struct seen_ctx {
    const char *org, *url;
    bool found;
} seen_ctx_t;

static int seen(void *ctx, const char *id, json_t *rec)
{
    (void)id;
    seen_ctx_t *s = ctx;
    if (rec && strcmp(json_string_value(json_object_get(rec, "org_id")), s->org) == 0 &&
        strcmp(json_string_value(json_object_get(rec, "url")), s->url) == 0)
        s->found = true;
    return 0;
}

/* The configuration's `subscribe` lines (make run's sample platforms). */
static int seed_subscriptions(notify_t *n, cb_error_t *err)
{
    const char *lines[64];
    size_t count = cb_config_get_all(n->d.cfg, "notify", "subscribe", lines, 64);
    if (count == 0)
        return 0;
    if (count > 64)
        return cb_error_set(err, CB_ERR_CONFIG, "subscribe",
                            "[notify] at most 64 subscribe lines (use casebus subscribe for more)");
    MDB_txn *txn;
    int rc = cb_store_begin(n->d.store, true, &txn, err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char org[72], url[2048], secret[272], more[2][1024] = {"", ""}, none[1] = "", *types = none;
        int got = sscanf(lines[i], "%71s %2047s %271s %1023s %1023s", org, url, secret, more[0],
                         more[1]);
        unsigned long batch = 0;
        bool bad = got < 3;
        for (int m = 0; m < 2 && !bad; m++) { /* the types and batch=N, each at most once */
            char *end = more[m];
            if (strncmp(more[m], "batch=", 6) == 0 && batch == 0)
                batch = strtoul(more[m] + 6, &end, 10);
            else if (more[m][0] && types[0] == '\0')
                end = (types = more[m]) + strlen(more[m]);
            bad = *end != '\0';
        }
        if (bad) {
            rc = cb_error_set(err, CB_ERR_CONFIG, "subscribe",
                              "[notify] subscribe = '%s': want 'ORG URL SECRET [TYPE,TYPE…] "
                              "[batch=N]'",
                              lines[i]);
            break;
        }
        seen_ctx_t s = {org, url, false};
        if ((rc = nt_each(n, txn, n->db_subs, seen, &s, err)) != 0 || s.found)
            continue;
        char *tv[32];
        size_t nt = 0;
        char *save = NULL;
        for (char *t = strtok_r(types, ",", &save); t && nt < 32; t = strtok_r(NULL, ",", &save))
            tv[nt++] = t;
        char id[NT_ID_MAX];
        bool zmq = strcmp(url, "zmq") == 0; /* "subscribe = ORG zmq SECRET": the stream channel */
        Casebus__V1__Subscribe req = CASEBUS__V1__SUBSCRIBE__INIT;
        req.org_id = org;
        req.channel = zmq ? "zmq" : "webhook";
        req.url = zmq ? "" : url;
        req.secret = secret;
        req.event_types = (char **)tv;
        req.n_event_types = nt;
        req.batch_max = (uint32_t)(batch > UINT32_MAX ? UINT32_MAX : batch);
        if ((rc = nt_subscribe(n, txn, &req, id, err)) != 0) {
            char field[64];
            snprintf(field, sizeof(field), "%s", err->field);
            rc = cb_error_set(err, CB_ERR_CONFIG, "subscribe", "[notify] subscribe = '%s': %s: %s",
                              lines[i], field, err->message);
        } else {
            log_info("subscribed id=%s org=%s url=%s", id, org, url);
        }
    }
    if (rc == 0)
        rc = cb_store_commit(&txn, err);
    cb_store_abort(&txn);
    return rc;
}

static int duration(const cb_config_t *cfg, const char *key, const char *def, int64_t *out,
                    cb_error_t *err)
{
    const char *v = cb_config_get(cfg, "notify", key, def);
    char *end;
    double x = strtod(v, &end);
    int64_t mult = strcmp(end, "s") == 0   ? 1000
                   : strcmp(end, "m") == 0 ? 60000
                   : strcmp(end, "h") == 0 ? 3600000
                   : strcmp(end, "d") == 0 ? 86400000
                                           : 0;
    if (end == v || mult == 0 || x <= 0)
        return cb_error_set(err, CB_ERR_CONFIG, key,
                            "[notify] %s = '%s': want a time such as 30s, 2h, 1d", key, v);
    *out = (int64_t)(x * (double)mult);
    return 0;
}

/* webhook_allow = CIDR lines: networks webhooks may reach though not public. */
static int webhook_allow(notify_t *n, cb_error_t *err)
{
    const char *lines[NT_ALLOW_MAX + 1];
    size_t count = cb_config_get_all(n->d.cfg, "notify", "webhook_allow", lines, NT_ALLOW_MAX + 1);
    if (count > NT_ALLOW_MAX)
        return cb_error_set(err, CB_ERR_CONFIG, "webhook_allow",
                            "[notify] at most %d webhook_allow lines", NT_ALLOW_MAX);
    for (size_t i = 0; i < count; i++)
        if (cb_cidr_parse(lines[i], &n->allow[i]) != 0)
            return cb_error_set(err, CB_ERR_CONFIG, "webhook_allow",
                                "[notify] webhook_allow = '%s': want a network such as "
                                "10.20.0.0/16 or fd00::/8",
                                lines[i]);
    n->nallow = count;
    return 0;
}

int main(int argc, char **argv)
{
    /* Static: the daemon's state lives until exit. */
    static notify_t n;
    cb_daemon_main(&n.d, "notify", argc, argv);
    cb_error_t err;
    n.now = cb_now_ms;
    const cb_config_t *cfg = n.d.cfg;
    uint64_t timeout, base, max, in_flight, per_endpoint;
    const cb_config_u64_spec_t nums[] = {
        {"timeout_ms", 10000, 100, 600000, &timeout},
        {"retry_base_ms", 1000, 10, 3600000, &base},
        {"retry_max_ms", 600000, 10, 86400000, &max},
        {"max_in_flight", 256, 1, 10000, &in_flight},
        {"per_endpoint", 32, 1, 1000, &per_endpoint},
    };
    if (cb_config_get_u64s(cfg, "notify", nums, sizeof(nums) / sizeof(nums[0]), &err) ||
        duration(cfg, "horizon", "24h", &n.horizon_ms, &err))
        fatalx("config_failed error=\"%s\"", err.message);
    if (cb_config_get_bool(cfg, "notify", "allow_private_webhooks", false,
                           &n.allow_private_webhooks, &err) != 0 ||
        webhook_allow(&n, &err) != 0 || cb_cloudevents_conf(&n.ce, cfg, &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    n.timeout_ms = (int64_t)timeout;
    n.retry_base_ms = (int64_t)base;
    n.retry_max_ms = (int64_t)max;
    n.max_in_flight = (unsigned)in_flight;
    n.per_endpoint = (unsigned)per_endpoint;
    if (nt_state_open(&n, &err) != 0 || seed_subscriptions(&n, &err) != 0)
        fatalx("store_failed error=\"%s\"", err.message);
    if (cb_daemon_pull(&n.d, nt_apply, &n, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);
    const char *control = cb_config_get(cfg, "notify", "control_bind", "ipc://var/notify.ctl");
    const char *stream = cb_config_get(cfg, "notify", "stream_bind", "ipc://var/notify.stream");
    if (nt_control_start(&n, control, &err) != 0 || nt_stream_start(&n, stream, &err) != 0 ||
        nt_sender_start(&n, &err) != 0)
        fatalx("control_failed error=\"%s\"", err.message);
    /* Each commit may have made deliveries ready. */
    n.d.after_commit = kick_sender;
    n.d.on_stop = stop_doors;
    n.d.hook_ctx = &n;
    nt_metrics_init(&n);
    log_info("control=%s horizon_ms=%lld", control, (long long)n.horizon_ms);
    int rc = cb_daemon_run(&n.d);
    cb_daemon_close(&n.d);
    nt_state_close(&n);
    return rc;
}
