/*
 * handlers.c — what notify does with each event it pulls, and with the outcome
 * of each attempt. Never touches a socket.
 *
 * Addressing (who an event is for):
 *   transfer_routed          the receiver, its copies (the procuratorate for a crime) and
 *                            a dispatch's helpers (协办)
 *   transfer_required        the finder, who must transfer
 *   transfer_state_changed   the sender, the receiver, a dispatch's helpers, and whoever
 *                            reviews a return (the platform or the leading-group office)
 *   supervision_answered     the supervisors who issued the 督办 order
 *   transfer_rejected        the organisation whose command was refused
 *   dispute_escalated        the judicial bureau and both parties
 *   routing_failed           the county command platform it was assigned to
 *   obligation_opened / _met / _changed   the responsible organisation
 *   deadline_warning / _breached, escalated   alert.notify (the responsible; for red
 *                            and 督办 also the supervisors the rule names)
 * Each addressee's subscriptions for the type get a delivery; an addressee with
 * none gets an Undeliverable event, so operators see it: nothing is dropped.
 */
#include "notify.h"
#include "jsonw.h"
#include "cbtime.h"
#include "log.h"
#include "pbjson.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B(x) CASEBUS__V1__ENVELOPE__BODY_##x
#define MAX_ADDRESSEES 16

/* The events notify delivers, and who each is addressed to: the
 * organisations in these fields of its body (an OrgRef, or a repeated one;
 * "a.b" reaches into the message a). intake writes who is to be told of its
 * records into the event (seed 002 §五(一)(二), seed 000 §四(三)). */
static const struct {
    const char *type;
    const char *fields[4];
} addressed[] = {
    {"transfer_routed", {"receiver", "copies", "helpers"}},
    {"transfer_required", {"from"}},
    {"transfer_state_changed", {"sender", "receiver", "reviewer", "helpers"}},
    {"transfer_rejected", {"by"}},
    {"dispute_escalated", {"decider", "raised_by", "other_party"}},
    {"routing_failed", {"assigned_to"}},
    {"obligation_opened", {"obligation.responsible"}},
    {"obligation_met", {"obligation.responsible"}},
    {"obligation_changed", {"obligation.responsible"}},
    {"deadline_warning", {"alert.notify"}},
    {"deadline_breached", {"alert.notify"}},
    {"escalated", {"alert.notify"}},
    {"calendar_missing", {"notify"}},
    {"assistance_requested", {"to"}},
    {"assistance_answered", {"requested_by"}},
    {"feedback_given", {"to"}},
    {"approval_recorded", {"inform"}},
    {"decision_recorded", {"inform"}},
    {"crime_referral_step", {"inform"}},
    {"supervision_answered", {"inform"}},
};

typedef struct addressees {
    const char *ids[MAX_ADDRESSEES];
    size_t n;
} addressees_t;

static void add(addressees_t *a, const ProtobufCMessage *m)
{
    if (m == NULL || m->descriptor != &casebus__v1__org_ref__descriptor)
        return;
    const char *id = ((const Casebus__V1__OrgRef *)m)->org_id;
    if (id == NULL || *id == '\0')
        return;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ids[i], id) == 0)
            return;
    if (a->n < MAX_ADDRESSEES)
        a->ids[a->n++] = id;
}

/* The organisations in field path of m. */
static void add_field(addressees_t *a, const ProtobufCMessage *m, const char *path)
{
    const char *dot = strchr(path, '.');
    if (dot) {
        char head[32];
        snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
        add_field(a, cb_pb_message_named(m, head), dot + 1);
        return;
    }
    const ProtobufCFieldDescriptor *f =
        m ? protobuf_c_message_descriptor_get_field_by_name(m->descriptor, path) : NULL;
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        add(a, cb_pb_message_field(m, f->id));
        return;
    }
    size_t n = *(const size_t *)((const uint8_t *)m + f->quantifier_offset);
    ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)((const uint8_t *)m + f->offset);
    for (size_t i = 0; i < n; i++)
        add(a, v[i]);
}

static size_t addressed_index(const char *type)
{
    size_t i = 0;
    while (i < sizeof(addressed) / sizeof(addressed[0]) && strcmp(addressed[i].type, type) != 0)
        i++;
    return i;
}

static void address(const Casebus__V1__Envelope *env, addressees_t *a)
{
    a->n = 0;
    size_t k = addressed_index(cb_event_type(env));
    if (k == sizeof(addressed) / sizeof(addressed[0]))
        return;
    const ProtobufCMessage *body = cb_pb_message_field(&env->base, (unsigned)env->body_case);
    for (size_t i = 0; i < 4 && addressed[k].fields[i]; i++)
        add_field(a, body, addressed[k].fields[i]);
}

bool nt_type_known(const char *type);
bool nt_type_known(const char *type)
{
    return addressed_index(type) < sizeof(addressed) / sizeof(addressed[0]);
}

/* ---- events of notify's own log ---- */

static void fill_ref(Casebus__V1__DeliveryRef *r, const nt_delivery_t *d)
{
    casebus__v1__delivery_ref__init(r);
    r->delivery_id = (char *)d->id;
    r->source_event_id = (char *)d->event_id;
    r->source_producer = (char *)d->producer;
    r->source_seq = d->seq;
    r->event_type = (char *)d->type;
    r->org_id = (char *)d->org_id;
    r->subscription_id = (char *)d->sub;
    r->url = (char *)d->url;
}

static int emit(notify_t *n, MDB_txn *txn, Casebus__V1__Envelope *env, const char *case_id,
                cb_error_t *err)
{
    env->case_id = (char *)(case_id ? case_id : "");
    return cb_log_append(n->d.log, txn, env, err);
}

/* ---- subscriptions ---- */

typedef struct match_ctx {
    const char *org_id, *type;
    json_t *subs; /* array of matching subscription records */
} match_ctx_t;

static int match_one(void *ctx, const char *id, json_t *rec)
{
    (void)id;
    match_ctx_t *m = ctx;
    if (rec == NULL || strcmp(json_string_value(json_object_get(rec, "org_id")), m->org_id) != 0)
        return 0;
    json_t *types = json_object_get(rec, "event_types");
    bool wanted = json_array_size(types) == 0;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) wanted = wanted || strcmp(json_string_value(t), m->type) == 0;
    if (wanted)
        json_array_append(m->subs, rec);
    return 0;
}

/* ---- deliveries ---- */

typedef struct source {
    const char *type, *event_id, *producer, *case_id, *case_key;
    uint64_t seq;
} source_t;

static int put_delivery(notify_t *n, MDB_txn *txn, const source_t *src, const char *org_id,
                        json_t *sub, const void *body, size_t body_len, char id[NT_ID_MAX],
                        cb_error_t *err)
{
    uint64_t num;
    int rc = nt_next(n, txn, "delivery", &num, err);
    if (rc != 0)
        return rc;
    snprintf(id, NT_ID_MAX, "D%012llu", (unsigned long long)num);
    const char *sub_id = json_string_value(json_object_get(sub, "id"));
    const char *url = json_string_value(json_object_get(sub, "url"));
    int64_t now = n->now();
    nt_delivery_t d = {
        .id = id, .sub = sub_id, .org_id = org_id, .url = url ? url : "", .type = src->type,
        .event_id = src->event_id, .producer = src->producer, .case_id = src->case_id,
        .case_key = src->case_key, .last_error = "", .seq = src->seq, .order = num,
        .first_at_ms = now, .next_at_ms = now, .state = NT_STATE_PENDING, .queued = true,
    };
    bool head = false;
    if ((rc = nt_queue_push(n, txn, sub_id, src->case_key, num, id, &head, err)) == 0 &&
        (rc = nt_delivery_put(n, txn, &d, err)) == 0 &&
        (rc = nt_body_put(n, txn, id, body, body_len, err)) == 0 && head &&
        (rc = nt_ready_put(n, txn, sub_id, now, id, false, err)) == 0)
        nt_sender_offer(n, txn, sub, &d);
    return rc;
}

static int new_delivery(notify_t *n, MDB_txn *txn, const cb_bus_event_t *ev, const char *type,
                        const char *org_id, json_t *sub, cb_error_t *err)
{
    const char *case_id = ev->env->case_id ? ev->env->case_id : "";
    source_t src = {type, ev->env->event_id ? ev->env->event_id : "", ev->producer, case_id,
                    *case_id ? case_id : "-", ev->seq};
    char id[NT_ID_MAX];
    return put_delivery(n, txn, &src, org_id, sub, ev->raw, ev->len, id, err);
}

int nt_test_subscription(notify_t *n, MDB_txn *txn, const char *sub_id, char id[NT_ID_MAX],
                         cb_error_t *err)
{
    json_t *sub = nt_get(n, txn, n->db_subs, sub_id);
    if (sub == NULL)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "subscription_id", "no subscription %.64s",
                            sub_id);
    if (strcmp(json_string_value(json_object_get(sub, "channel")), "webhook") != 0) {
        json_decref(sub);
        return cb_error_set(err, CB_ERR_INVALID, "subscription_id",
                            "subscription %.64s is a zmq stream: only webhooks are tested", sub_id);
    }
    const char *org = json_string_value(json_object_get(sub, "org_id"));
    int64_t now = n->now();
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    char event_id[40], when[40], source[64], type[sizeof(n->ce.type_prefix) + 8], key[80];
    snprintf(event_id, sizeof(event_id), "ping_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    cb_time_format_cst(now, when, sizeof(when));
    snprintf(source, sizeof(source), "/casebus/%s/notify", n->ce.division_code);
    snprintf(type, sizeof(type), "%s.ping", n->ce.type_prefix);
    snprintf(key, sizeof(key), "ping:%s", event_id); /* its own queue: behind nobody */
    json_t *ce = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:s,s:{s:s,s:s,s:s,s:s,s:O,s:s,s:s}}",
                           "specversion", CB_CE_SPECVERSION, "id", event_id, "source", source,
                           "type", type, "time", when, "datacontenttype", "application/json",
                           "producer", "notify", "subscription", json_object_get(sub, "id"), "addressee", org, "data",
                           "type", "ping", "event_id", event_id, "producer", "notify",
                           "recorded_at", when,
                           "subscription_id", json_object_get(sub, "id"), "org_id", org,
                           "message", "casebus subscription test: signed as every delivery is");
    char *body = ce ? cb_jsonw_dumps(ce) : NULL;
    json_decref(ce);
    int rc;
    if (body == NULL) {
        rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    } else {
        source_t src = {"ping", event_id, "notify", "", key, 0};
        rc = put_delivery(n, txn, &src, org, sub, body, strlen(body), id, err);
    }
    free(body);
    json_decref(sub);
    return rc;
}

static int undeliverable(notify_t *n, MDB_txn *txn, const cb_bus_event_t *ev, const char *type,
                         const char *org_id, cb_error_t *err)
{
    char reason[200];
    snprintf(reason, sizeof(reason), "organisation %s has no subscription for %s", org_id, type);
    Casebus__V1__DeliveryRef r = CASEBUS__V1__DELIVERY_REF__INIT;
    r.delivery_id = "";
    r.source_event_id = ev->env->event_id ? ev->env->event_id : "";
    r.source_producer = (char *)ev->producer;
    r.source_seq = ev->seq;
    r.event_type = (char *)type;
    r.org_id = (char *)org_id;
    r.subscription_id = "";
    r.url = "";
    Casebus__V1__Undeliverable u = CASEBUS__V1__UNDELIVERABLE__INIT;
    u.delivery = &r;
    u.reason = reason;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(UNDELIVERABLE);
    env.undeliverable = &u;
    log_debug("undeliverable org=%s type=%s seq=%llu", org_id, type,
              (unsigned long long)ev->seq);
    return emit(n, txn, &env, ev->env->case_id, err);
}

int nt_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err)
{
    notify_t *n = ctx;
    if (ev->env->body_case == B(ORGS_IMPORTED) && ev->env->orgs_imported) {
        /* The registry's ids, so a subscription names a real organisation. */
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < ev->env->orgs_imported->n_orgs; i++)
            json_array_append_new(ids, json_string(ev->env->orgs_imported->orgs[i]->org_id));
        int rc = ids ? nt_put(n, txn, n->db_meta, "orgs", ids, err)
                     : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        json_decref(ids);
        return rc;
    }
    addressees_t a;
    address(ev->env, &a);
    if (a.n == 0)
        return 0;
    const char *type = cb_event_type(ev->env);
    int rc = 0;
    for (size_t i = 0; i < a.n && rc == 0; i++) {
        match_ctx_t m = {a.ids[i], type, json_array()};
        if (m.subs == NULL) {
            rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
            break;
        }
        rc = nt_subs_each_shared(n, txn, match_one, &m, err);
        if (rc == 0 && json_array_size(m.subs) == 0)
            rc = undeliverable(n, txn, ev, type, a.ids[i], err);
        size_t k;
        json_t *sub;
        json_array_foreach(m.subs, k, sub)
        {
            if (rc != 0)
                break;
            const char *channel = json_string_value(json_object_get(sub, "channel"));
            if (channel && strcmp(channel, "zmq") == 0) { /* pulled: the stream keeps it */
                rc = nt_stream_append(n, txn, json_string_value(json_object_get(sub, "id")),
                                      ev->raw, ev->len, err);
                continue;
            }
            /* The event as it came: the sender thread makes its CloudEvent. */
            rc = new_delivery(n, txn, ev, type, a.ids[i], sub, err);
        }
        json_decref(m.subs);
    }
    return rc;
}

/* ---- attempts ---- */

nt_outcome_t nt_classify(long status)
{
    if (status >= 200 && status < 300)
        return NT_DELIVERED;
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        return NT_PERMANENT;
    return NT_RETRY;
}

int64_t nt_backoff(const notify_t *n, uint32_t attempt, uint32_t random)
{
    int64_t d = n->retry_base_ms;
    for (uint32_t i = 1; i < attempt && d < n->retry_max_ms; i++)
        d *= 2;
    if (d > n->retry_max_ms)
        d = n->retry_max_ms;
    /* ±20% jitter, so endpoints that failed together do not retry together. */
    int64_t span = d * 2 / 5;
    return d - d / 5 + (span > 0 ? (int64_t)(random % (uint64_t)span) : 0);
}

/* The delivery leaves its queue: the next one of the same endpoint and case
 * becomes ready now. */
static int finish(notify_t *n, MDB_txn *txn, const nt_delivery_t *d, int64_t now,
                  cb_error_t *err)
{
    if (!d->queued)
        return 0;
    char next[NT_ID_MAX];
    int rc = nt_queue_pop(n, txn, d->sub, d->case_key, next, err);
    if (rc != 0 || next[0] == '\0')
        return rc;
    nt_delivery_t nd;
    if (nt_delivery_get(n, txn, next, &nd) != 0)
        return 0;
    nd.next_at_ms = nd.first_at_ms = now;
    if ((rc = nt_delivery_put(n, txn, &nd, err)) == 0)
        rc = nt_ready_put(n, txn, nd.sub, now, next, false, err);
    nt_delivery_free(&nd);
    return rc;
}

static int dead_letter(notify_t *n, MDB_txn *txn, nt_delivery_t *d, uint32_t attempts,
                       const char *last_error, int64_t now, cb_error_t *err)
{
    const char *id = d->id;
    d->state = NT_STATE_DEAD;
    json_t *mark = json_object();
    int rc = nt_delivery_put(n, txn, d, err);
    if (rc == 0)
        rc = mark ? nt_put(n, txn, n->db_dead, id, mark, err)
                  : cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    json_decref(mark);
    if (rc != 0)
        return rc;
    Casebus__V1__DeliveryRef r;
    fill_ref(&r, d);
    Casebus__V1__DeadLettered dl = CASEBUS__V1__DEAD_LETTERED__INIT;
    dl.delivery = &r;
    dl.attempts = attempts;
    dl.last_error = (char *)last_error;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(DEAD_LETTERED);
    env.dead_lettered = &dl;
    log_warnx("dead_lettered delivery=%s org=%s url=%s attempts=%u error=\"%s\"", id, r.org_id,
              r.url, attempts, last_error);
    if ((rc = emit(n, txn, &env, d->case_id, err)) != 0)
        return rc;
    return finish(n, txn, d, now, err);
}

int nt_record_attempt(notify_t *n, MDB_txn *txn, const char *id, const char *wid,
                      long status, const char *error, uint32_t latency_ms, int64_t now,
                      cb_error_t *err)
{
    nt_delivery_t d;
    if (nt_delivery_get(n, txn, id, &d) != 0)
        return 0;
    int rc = 0;
    char mine[NT_WID_MAX];
    nt_webhook_id(&d, mine, sizeof(mine));
    if (wid && strcmp(mine, wid) != 0) {
        /* sent before a commit that failed: its event comes again */
        log_warnx("delivery_superseded delivery=%s sent=%s now=%s", id, wid, mine);
        goto out;
    }
    if (d.state != NT_STATE_PENDING)
        goto out; /* already settled (e.g. answered twice around a redelivery) */
    uint32_t attempt = ++d.attempt;
    int64_t was_at = d.next_at_ms;
    d.last_status = (int32_t)status;
    d.last_error = error ? error : "";
    d.last_latency_ms = latency_ms;
    d.last_at_ms = now;
    if ((rc = nt_ready_put(n, txn, d.sub, was_at, id, true, err)) != 0)
        goto out;
    Casebus__V1__DeliveryRef r;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    nt_outcome_t outcome = nt_classify(status);
    if (outcome == NT_DELIVERED) {
        d.state = NT_STATE_DELIVERED;
        if ((rc = nt_delivery_put(n, txn, &d, err)) != 0)
            goto out;
        fill_ref(&r, &d);
        Casebus__V1__Delivered dv = CASEBUS__V1__DELIVERED__INIT;
        dv.delivery = &r;
        dv.attempt = attempt;
        dv.http_status = (uint32_t)status;
        dv.latency_ms = latency_ms;
        env.body_case = B(DELIVERED);
        env.delivered = &dv;
        if ((rc = emit(n, txn, &env, d.case_id, err)) == 0)
            rc = finish(n, txn, &d, now, err);
        goto out;
    }
    char why[300];
    if (status)
        snprintf(why, sizeof(why), "HTTP %ld%s%s", status, error && *error ? ": " : "",
                 error ? error : "");
    else
        snprintf(why, sizeof(why), "%s", error && *error ? error : "no answer");
    int64_t next = now + nt_backoff(n, attempt, randombytes_random());
    bool permanent = outcome == NT_PERMANENT;
    bool give_up = permanent || next - d.first_at_ms > n->horizon_ms;
    fill_ref(&r, &d);
    Casebus__V1__DeliveryFailed f = CASEBUS__V1__DELIVERY_FAILED__INIT;
    f.delivery = &r;
    f.attempt = attempt;
    f.http_status = (uint32_t)status;
    f.error = why;
    f.permanent = permanent;
    f.next_attempt_at_ms = give_up ? 0 : next;
    env.body_case = B(DELIVERY_FAILED);
    env.delivery_failed = &f;
    if ((rc = emit(n, txn, &env, d.case_id, err)) != 0)
        goto out;
    if (give_up) {
        rc = dead_letter(n, txn, &d, attempt, why, now, err);
        goto out;
    }
    d.next_at_ms = next;
    if ((rc = nt_delivery_put(n, txn, &d, err)) == 0)
        rc = nt_ready_put(n, txn, d.sub, next, id, false, err);
out:
    nt_delivery_free(&d);
    return rc;
}

/* ---- control ---- */

static int subscription_event(notify_t *n, MDB_txn *txn, json_t *sub, bool removed,
                              cb_error_t *err)
{
    Casebus__V1__SubscriptionChanged sc = CASEBUS__V1__SUBSCRIPTION_CHANGED__INIT;
    sc.subscription_id = (char *)json_string_value(json_object_get(sub, "id"));
    sc.org_id = (char *)json_string_value(json_object_get(sub, "org_id"));
    sc.channel = (char *)json_string_value(json_object_get(sub, "channel"));
    sc.url = (char *)json_string_value(json_object_get(sub, "url"));
    sc.removed = removed;
    sc.rate_per_second = (uint32_t)json_integer_value(json_object_get(sub, "rate_per_second"));
    sc.batch_max = (uint32_t)json_integer_value(json_object_get(sub, "batch_max"));
    json_t *types = json_object_get(sub, "event_types");
    const char *tv[32];
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) if (i < 32) tv[i] = json_string_value(t);
    sc.event_types = (char **)tv;
    sc.n_event_types = json_array_size(types) < 32 ? json_array_size(types) : 32;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(SUBSCRIPTION_CHANGED);
    env.subscription_changed = &sc;
    return emit(n, txn, &env, NULL, err);
}

static int check_url(notify_t *n, const char *url, cb_error_t *err)
{
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > 2000 || strchr(url, ' '))
        return cb_error_set(err, CB_ERR_INVALID, "url",
                            "url must be an http:// or https:// address without spaces, at most "
                            "2000 characters");
    return nt_webhook_url_check(n, url, err);
}

/* A new array of the event type names, each one notify delivers. */
static int check_types(char *const *types, size_t ntypes, json_t **out, cb_error_t *err)
{
    json_t *tv = json_array();
    if (tv == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; i < ntypes; i++) {
        if (!nt_type_known(types[i])) {
            json_decref(tv);
            return cb_error_set(err, CB_ERR_INVALID, "event_types",
                                "'%.64s' is not an event type notify delivers (casebus subscribe "
                                "--help lists them)",
                                types[i]);
        }
        json_array_append_new(tv, json_string(types[i]));
    }
    *out = tv;
    return 0;
}

static int check_batch(uint32_t batch, cb_error_t *err)
{
    if (batch > NT_BATCH_MAX)
        return cb_error_set(err, CB_ERR_INVALID, "batch_max",
                            "batch_max is 0 (one event per request) to %d events per request",
                            NT_BATCH_MAX);
    return 0;
}

int nt_subscribe(notify_t *n, MDB_txn *txn, const Casebus__V1__Subscribe *req,
                 char id[NT_ID_MAX], cb_error_t *err)
{
    const char *org_id = req->org_id, *channel = req->channel, *url = req->url,
               *secret = req->secret;
    if (org_id == NULL || *org_id == '\0' || strlen(org_id) > 64)
        return cb_error_set(err, CB_ERR_INVALID, "org_id", "org_id is required (at most 64 characters)");
    json_t *registry = nt_get(n, txn, n->db_meta, "orgs"), *known;
    bool found = registry == NULL; /* before the first import nothing can be judged */
    size_t k;
    json_array_foreach(registry, k, known) found = found || strcmp(json_string_value(known), org_id) == 0;
    size_t count = json_array_size(registry);
    json_decref(registry);
    if (!found)
        return cb_error_set(err, CB_ERR_INVALID, "org_id",
                            "organisation '%.64s' is not in the registry (%zu organisations; "
                            "casebus org import)",
                            org_id, count);
    if (channel == NULL || *channel == '\0')
        channel = "webhook";
    bool zmq = strcmp(channel, "zmq") == 0;
    if (!zmq && strcmp(channel, "webhook") != 0)
        return cb_error_set(err, CB_ERR_INVALID, "channel", "channel is webhook or zmq");
    if (zmq && url && *url)
        return cb_error_set(err, CB_ERR_INVALID, "url",
                            "a zmq subscription has no url: the platform pulls from stream_bind");
    if (zmq && req->batch_max)
        return cb_error_set(err, CB_ERR_INVALID, "batch_max",
                            "a zmq subscription has no batches: the platform fetches as many as "
                            "it asks for");
    int rc;
    if (zmq)
        url = "";
    else if ((rc = check_url(n, url, err)) != 0)
        return rc;
    if ((rc = check_batch(req->batch_max, err)) != 0)
        return rc;
    if (secret == NULL || strlen(secret) < 16 || strlen(secret) > 256)
        return cb_error_set(err, CB_ERR_INVALID, "secret",
                            "secret must be 16 to 256 characters (it keys the HMAC signature)");
    char probe[CB_WHSIG_MAX];
    if (strncmp(secret, "whsec_", 6) == 0 && cb_whsig_sign(secret, "", "", "", 0, probe) != 0)
        return cb_error_set(err, CB_ERR_INVALID, "secret",
                            "a secret starting whsec_ is base64 after the prefix (Standard "
                            "Webhooks), of at most 256 bytes");
    json_t *tv;
    rc = check_types(req->event_types, req->n_event_types, &tv, err);
    if (rc != 0)
        return rc;
    uint64_t num;
    if ((rc = nt_next(n, txn, "sub", &num, err)) != 0) {
        json_decref(tv);
        return rc;
    }
    snprintf(id, NT_ID_MAX, "S%06llu", (unsigned long long)num);
    json_t *sub = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:i,s:i,s:I}", "id", id, "org_id", org_id,
                            "channel", channel, "url", url, "secret", secret, "event_types", tv,
                            "rate_per_second", (int)req->rate_per_second, "batch_max",
                            (int)req->batch_max, "created_at_ms", (json_int_t)n->now());
    if (sub == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    if ((rc = nt_put(n, txn, n->db_subs, id, sub, err)) == 0)
        rc = subscription_event(n, txn, sub, false, err);
    json_decref(sub);
    return rc;
}

int nt_update_subscription(notify_t *n, MDB_txn *txn, const Casebus__V1__UpdateSubscription *u,
                           cb_error_t *err)
{
    json_t *sub = nt_get(n, txn, n->db_subs, u->subscription_id);
    if (sub == NULL)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "subscription_id", "no subscription %.64s",
                            u->subscription_id);
    bool zmq = strcmp(json_string_value(json_object_get(sub, "channel")), "zmq") == 0;
    json_t *tv = NULL;
    int rc = 0;
    if (!u->set_event_types && !u->set_rate && !u->set_batch && !(u->url && *u->url))
        rc = cb_error_set(err, CB_ERR_INVALID, "subscription_id",
                          "nothing to change: give a url, event types, a rate or a batch size");
    else if (u->url && *u->url && zmq)
        rc = cb_error_set(err, CB_ERR_INVALID, "url", "a zmq subscription has no url");
    else if (u->url && *u->url && (rc = check_url(n, u->url, err)) != 0)
        ;
    else if (u->set_batch && zmq && u->batch_max)
        rc = cb_error_set(err, CB_ERR_INVALID, "batch_max", "a zmq subscription has no batches");
    else if (u->set_batch && (rc = check_batch(u->batch_max, err)) != 0)
        ;
    else if (u->set_event_types)
        rc = check_types(u->event_types, u->n_event_types, &tv, err);
    if (rc != 0) {
        json_decref(sub);
        return rc;
    }
    if (u->url && *u->url)
        json_object_set_new(sub, "url", json_string(u->url));
    if (tv)
        json_object_set_new(sub, "event_types", tv);
    if (u->set_rate)
        json_object_set_new(sub, "rate_per_second", json_integer(u->rate_per_second));
    if (u->set_batch)
        json_object_set_new(sub, "batch_max", json_integer(u->batch_max));
    json_object_set_new(sub, "updated_at_ms", json_integer(n->now()));
    if ((rc = nt_put(n, txn, n->db_subs, u->subscription_id, sub, err)) == 0)
        rc = subscription_event(n, txn, sub, false, err);
    json_decref(sub);
    return rc;
}

int nt_unsubscribe(notify_t *n, MDB_txn *txn, const char *id, cb_error_t *err)
{
    json_t *sub = nt_get(n, txn, n->db_subs, id);
    if (sub == NULL)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "subscription_id", "no subscription %s", id);
    int rc;
    if ((rc = nt_del(n, txn, n->db_subs, id, err)) == 0)
        rc = subscription_event(n, txn, sub, true, err);
    json_decref(sub);
    return rc;
}

int nt_rotate_secret(notify_t *n, MDB_txn *txn, const char *id, const char *secret,
                     uint32_t overlap_s, cb_error_t *err)
{
    char probe[CB_WHSIG_MAX];
    if (secret == NULL || strlen(secret) < 16 || strlen(secret) > 256 ||
        cb_whsig_sign(secret, "", "", "", 0, probe) != 0)
        return cb_error_set(err, CB_ERR_INVALID, "secret",
                            "secret must be 16 to 256 characters (whsec_ + base64 for Standard "
                            "Webhooks)");
    if (overlap_s > 30 * 86400)
        return cb_error_set(err, CB_ERR_INVALID, "overlap_seconds",
                            "the overlap is at most 30 days (2592000 s)");
    json_t *sub = nt_get(n, txn, n->db_subs, id);
    if (sub == NULL)
        return cb_error_set(err, CB_ERR_NOT_FOUND, "subscription_id", "no subscription %s", id);
    json_object_set(sub, "old_secret", json_object_get(sub, "secret"));
    json_object_set_new(sub, "old_until_ms", json_integer(n->now() + (int64_t)overlap_s * 1000));
    json_object_set_new(sub, "secret", json_string(secret));
    int rc = nt_put(n, txn, n->db_subs, id, sub, err);
    if (rc == 0)
        rc = subscription_event(n, txn, sub, false, err);
    json_decref(sub);
    return rc;
}

int nt_redeliver(notify_t *n, MDB_txn *txn, const char *id, cb_error_t *err)
{
    nt_delivery_t d;
    int got = nt_delivery_get(n, txn, id, &d);
    if (got != 0)
        return got > 0 ? cb_error_set(err, CB_ERR_NOT_FOUND, "delivery_id", "no delivery %s", id)
                       : cb_error_set(err, CB_ERR_CORRUPT, "delivery_id",
                                      "delivery %s: its record is unreadable", id);
    int rc = 0;
    if (d.state != NT_STATE_DEAD) {
        rc = cb_error_set(err, CB_ERR_CONFLICT, "delivery_id",
                          "delivery %s is not a dead letter (it is %s)", id,
                          nt_state_word(d.state));
        goto out;
    }
    int64_t now = n->now();
    d.state = NT_STATE_PENDING;
    d.queued = false; /* outside the case's queue now */
    d.first_at_ms = d.next_at_ms = now;
    if ((rc = nt_delivery_put(n, txn, &d, err)) == 0 &&
        (rc = nt_del(n, txn, n->db_dead, id, err)) == 0)
        rc = nt_ready_put(n, txn, d.sub, now, id, false, err);
out:
    nt_delivery_free(&d);
    return rc;
}
