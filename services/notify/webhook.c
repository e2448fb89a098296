/*
 * webhook.c — webhooks, on notify's loop thread: it reads the ready index,
 * hands a request for each due delivery within the limits (in flight overall,
 * per endpoint, per-endpoint rate) to the sender thread (curlloop.c), and
 * records each answer in a group transaction. A delivery's key stays in the
 * ready index until its answer is recorded, so a crash resends exactly the
 * attempts whose answer was never recorded. A delivery made ready while an
 * event is applied goes at once when its endpoint has room (nt_sender_offer),
 * before the commit: its webhook-id names the event, not the number.
 */
#include "sender.h"
#include "cbtime.h"
#include "jsonw.h"
#include "log.h"
#include "netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX 512
#define IDLE_SCAN_MS 1000

/* One subscription's requests, as the loop thread sees them. */
typedef struct nt_lane {
    struct notify_sender *s;
    char sub[NT_ID_MAX];
    nt_flight_t *flights;   /* with the sender thread */
    nt_flight_t *recording; /* answered, the answer not yet on disk */
    size_t in_flight;
    int64_t used_ms;
    struct nt_lane *next;
} lane_t;

typedef struct bucket {
    char sub[NT_ID_MAX];
    double tokens;
    int64_t at_ms;
} bucket_t;

typedef struct idset {
    const char **slot;
    size_t cap, count;
} idset_t;

struct notify_sender {
    notify_t *n;
    idset_t out; /* ids of the deliveries in flight (ids_has) */
    nt_curl_t *curl;
    uv_timer_t scan_timer;
    lane_t *lanes;
    size_t in_flight;
    bucket_t *buckets;
    size_t nbuckets;
    bool stopping;
};

#define LANE_IDLE_MS 30000

static void on_scan_timer(uv_timer_t *t);

static lane_t *lane_find(notify_sender_t *s, const char *sub)
{
    for (lane_t *l = s->lanes; l; l = l->next)
        if (strcmp(l->sub, sub) == 0)
            return l;
    return NULL;
}

static lane_t *lane_get(notify_sender_t *s, const char *sub)
{
    lane_t *l = lane_find(s, sub);
    if (l)
        return l;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return NULL;
    l->s = s;
    snprintf(l->sub, sizeof(l->sub), "%s", sub);
    l->used_ms = s->n->now();
    l->next = s->lanes;
    s->lanes = l;
    return l;
}

/* A lane with nothing out for LANE_IDLE_MS goes (the sender thread closes its
 * connections on its own clock). */
static void lanes_sweep(notify_sender_t *s, int64_t now)
{
    for (lane_t **lp = &s->lanes; *lp;) {
        lane_t *l = *lp;
        if (l->in_flight > 0 || l->recording || now - l->used_ms < LANE_IDLE_MS) {
            lp = &l->next;
            continue;
        }
        *lp = l->next;
        free(l);
    }
}

/* ---- starting and finishing attempts ---- */

/* The ids of every delivery sent and not yet answered, or answered and not
 * yet on disk (their keys are still in the ready index, and must not go
 * twice): open addressing, the flights' own strings as keys. */
static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return h;
}

static bool ids_has(const idset_t *set, const char *id)
{
    if (set->cap == 0)
        return false;
    for (size_t i = id_hash(id) & (set->cap - 1); set->slot[i]; i = (i + 1) & (set->cap - 1))
        if (strcmp(set->slot[i], id) == 0)
            return true;
    return false;
}

static int ids_add(idset_t *set, const char *id)
{
    if (2 * (set->count + 1) > set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        const char **slot = calloc(cap, sizeof(*slot));
        if (slot == NULL)
            return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (set->slot[i] == NULL)
                continue;
            size_t j = id_hash(set->slot[i]) & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = set->slot[i];
        }
        free(set->slot);
        set->slot = slot;
        set->cap = cap;
    }
    size_t i = id_hash(id) & (set->cap - 1);
    while (set->slot[i])
        i = (i + 1) & (set->cap - 1);
    set->slot[i] = id;
    set->count++;
    return 0;
}

/* Removes the entry that is this very string (backward-shift deletion). */
static void ids_del(idset_t *set, const char *id)
{
    if (set->cap == 0)
        return;
    size_t mask = set->cap - 1, i = id_hash(id) & mask;
    while (set->slot[i] && set->slot[i] != id)
        i = (i + 1) & mask;
    if (set->slot[i] == NULL)
        return;
    set->slot[i] = NULL;
    set->count--;
    for (size_t j = (i + 1) & mask; set->slot[j]; j = (j + 1) & mask) {
        size_t home = id_hash(set->slot[j]) & mask;
        /* moved back when its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            set->slot[i] = set->slot[j];
            set->slot[j] = NULL;
            i = j;
        }
    }
}

/* Token bucket per endpoint (rate 0: unlimited). */
static bool rate_allows(notify_sender_t *s, const char *sub, unsigned rate, int64_t now)
{
    if (rate == 0)
        return true;
    bucket_t *b = NULL;
    for (size_t i = 0; i < s->nbuckets; i++)
        if (strcmp(s->buckets[i].sub, sub) == 0)
            b = &s->buckets[i];
    if (b == NULL) {
        bucket_t *grown = realloc(s->buckets, (s->nbuckets + 1) * sizeof(*grown));
        if (grown == NULL)
            return true;
        s->buckets = grown;
        b = &s->buckets[s->nbuckets++];
        snprintf(b->sub, sizeof(b->sub), "%s", sub);
        b->tokens = rate;
        b->at_ms = now;
    }
    b->tokens += (double)(now - b->at_ms) * rate / 1000.0;
    if (b->tokens > rate)
        b->tokens = rate;
    b->at_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

bool nt_addr_allowed(const notify_t *n, const struct sockaddr *sa, char *why, size_t size)
{
    const char *range = cb_addr_restricted(sa);
    if (range == NULL || n->allow_private_webhooks)
        return true;
    for (size_t i = 0; i < n->nallow; i++)
        if (cb_cidr_match(&n->allow[i], sa))
            return true;
    char text[64];
    cb_addr_text(sa, text, sizeof(text));
    snprintf(why, size,
             "%s is a %s address: webhooks go to public addresses unless [notify] webhook_allow "
             "lists its network (or allow_private_webhooks = yes)",
             text, range);
    return false;
}

int nt_webhook_url_check(const notify_t *n, const char *url, cb_error_t *err)
{
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    int rc = 0;
    if (u == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "url", "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = cb_error_set(err, CB_ERR_INVALID, "url", "url '%.200s' is not a URL with a host", url);
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = cb_error_set(err, CB_ERR_INVALID, "url", "url must be http:// or https://");
    } else {
        /* An IP literal in any spelling is judged now; a name at each connection. */
        struct sockaddr_storage ss;
        char why[200];
        if (cb_addr_literal(host, &ss) && !nt_addr_allowed(n, (struct sockaddr *)&ss, why, sizeof(why)))
            rc = cb_error_set(err, CB_ERR_INVALID, "url", "url host %s: %s", host, why);
    }
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static void flight_free(nt_flight_t *f)
{
    for (size_t i = 0; i < f->nids; i++)
        ids_del(&f->lane->s->out, f->ids[i]);
    free(f->body);
    free(f->ids);
    free(f->strings);
    free(f);
}

/* A delivery's CloudEvent (valid while txn lives). */
static MDB_val event_of(notify_t *n, MDB_txn *txn, const nt_delivery_t *d)
{
    MDB_val v = {0, NULL};
    if (!nt_body_get(n, txn, d->id, &v)) {
        v.mv_data = (void *)(d->old_body ? d->old_body : "{}");
        v.mv_size = strlen(v.mv_data);
    }
    return v;
}

/* The request's body: one CloudEvent, or for a batch subscription a JSON
 * array of them, made from what each delivery stored. Made here rather than
 * on the sender thread, which has the sockets and the signing to do. */
static char *request_body(notify_t *n, MDB_txn *txn, const nt_delivery_t *recs, size_t nrecs,
                          const char *sub, bool batch, size_t *len, size_t *unreadable)
{
    cb_jsonw_t w = {0};
    int rc = batch ? cb_jsonw_raw(&w, "[", 1) : 0;
    for (size_t i = 0; rc == 0 && i < nrecs; i++) {
        MDB_val ev = event_of(n, txn, &recs[i]);
        if (i > 0)
            rc = cb_jsonw_raw(&w, ",", 1);
        if (rc == 0 &&
            (rc = nt_stored_event_json(n, ev.mv_data, ev.mv_size, sub, recs[i].org_id, &w)) != 0 &&
            rc != CB_ERR_NOMEM) {
            log_error("webhook_body_failed delivery=%s error=\"its stored event is unreadable\"",
                      recs[i].id);
            *unreadable = i;
        }
    }
    if (rc == 0 && batch)
        rc = cb_jsonw_raw(&w, "]", 1);
    if (rc != 0 || w.text == NULL) {
        cb_jsonw_close(&w);
        return NULL;
    }
    *len = w.len;
    return w.text;
}

#define START_UNREADABLE (-2) /* start(): recs[*unreadable]'s stored event */

/* Copies of the strings the sender thread signs and sends with, in one
 * allocation that the flight owns. */
static int flight_strings(nt_flight_t *f, const char *const v[6])
{
    size_t total = 0, len[6];
    for (int i = 0; i < 6; i++)
        total += (len[i] = v[i] ? strlen(v[i]) + 1 : 0);
    if ((f->strings = malloc(total ? total : 1)) == NULL)
        return -1;
    const char **out[6] = {&f->url, &f->secret, &f->old_secret, &f->org_id, &f->event_id, &f->type};
    char *p = f->strings;
    for (int i = 0; i < 6; i++) {
        *out[i] = v[i] ? memcpy(p, v[i], len[i]) : NULL;
        p += len[i];
    }
    return 0;
}

/* One POST carrying recs (one delivery, or up to the subscription's batch),
 * handed to the sender thread. */
static int start(notify_sender_t *s, lane_t *l, MDB_txn *txn, const nt_delivery_t *recs,
                 size_t nrecs, const json_t *sub, size_t *unreadable)
{
    nt_flight_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    const nt_delivery_t *rec = &recs[0];
    f->lane = l;
    snprintf(f->sub, sizeof(f->sub), "%s", l->sub);
    f->batch = json_integer_value(json_object_get(sub, "batch_max")) > 0;
    f->ids = calloc(nrecs, sizeof(*f->ids));
    *unreadable = nrecs;
    f->body = request_body(s->n, txn, recs, nrecs, l->sub, f->batch, &f->len, unreadable);
    const char *strings[6] = {
        rec->url,
        json_string_value(json_object_get(sub, "secret")),
        json_string_value(json_object_get(sub, "old_secret")),
        rec->org_id,
        rec->event_id,
        rec->type,
    };
    if (f->ids == NULL || f->body == NULL || flight_strings(f, strings) != 0) {
        flight_free(f);
        return *unreadable < nrecs ? START_UNREADABLE : -1;
    }
    f->old_until_ms = json_integer_value(json_object_get(sub, "old_until_ms"));
    for (size_t i = 0; i < nrecs; i++)
        snprintf(f->ids[i], sizeof(f->ids[i]), "%s", recs[i].id);
    for (; f->nids < nrecs; f->nids++)
        if (ids_add(&s->out, f->ids[f->nids]) != 0) {
            flight_free(f);
            return -1;
        }
    /* A batch's ids are stable for the same deliveries sent again. */
    char wid[sizeof(f->wid)];
    nt_webhook_id(rec, wid, sizeof(wid));
    if (f->batch) {
        snprintf(f->id, sizeof(f->id), "batch_%s_%zu", f->ids[0], nrecs);
        snprintf(f->wid, sizeof(f->wid), "batch_%s_%zu", wid, nrecs);
    } else {
        snprintf(f->id, sizeof(f->id), "%s", f->ids[0]);
        snprintf(f->wid, sizeof(f->wid), "%s", wid);
    }
    f->next = l->flights;
    l->flights = f;
    l->in_flight++;
    l->used_ms = s->n->now();
    s->in_flight++;
    nt_curl_send(s->curl, f);
    return 0;
}

/* A finished flight waits on p->recording until its answers are on disk: its
 * keys are still in the ready index that scans read, and must not go twice. */
static void unrecord(nt_flight_t *f)
{
    for (nt_flight_t **fp = &f->lane->recording; *fp; fp = &(*fp)->next)
        if (*fp == f) {
            *fp = f->next;
            break;
        }
    flight_free(f);
}

static void on_recorded(void *arg, int status, const cb_error_t *err)
{
    nt_flight_t *f = arg;
    notify_sender_t *s = f->lane->s;
    if (status != 0)
        log_error("delivery_record_failed delivery=%s error=\"%s\"", f->id, err->message);
    unrecord(f);
    if (!s->stopping)
        nt_sender_kick(s->n);
}

static void on_recorded_one(void *arg, int status, const cb_error_t *err)
{
    notify_sender_t *s = arg;
    if (status != 0)
        log_error("delivery_record_failed error=\"%s\"", err->message);
    if (!s->stopping)
        nt_sender_kick(s->n);
}

/* Records the answer of every delivery f carried, in one group commit; on a
 * failure the attempts are simply made again later (their keys are still in
 * the ready index). With f NULL, records one answer for id. */
static void record(notify_sender_t *s, nt_flight_t *f, const char *id, long status, const char *error,
                   uint32_t latency_ms)
{
    notify_t *n = s->n;
    cb_error_t err;
    MDB_txn *txn;
    if (cb_group_txn(n->d.group, &txn, &err) != 0) {
        log_error("delivery_record_failed delivery=%s error=\"%s\"", id, err.message);
        if (f)
            unrecord(f);
        return;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < (f ? f->nids : 1); i++)
        rc = nt_record_attempt(n, txn, f ? f->ids[i] : id, f && !f->batch ? f->wid : NULL, status,
                               error, latency_ms, n->now(), &err);
    if (rc == 0)
        rc = f ? cb_group_join(n->d.group, on_recorded, f, &err)
               : cb_group_join(n->d.group, on_recorded_one, s, &err);
    if (rc != 0) {
        log_error("delivery_record_failed delivery=%s error=\"%s\"", id, err.message);
        cb_group_fail(n->d.group, &err);
        if (f)
            unrecord(f);
    }
}

/* The sender thread's answers: each recorded (the flight waits on its lane's
 * recording list until it is on disk). */
static void on_done(void *ctx)
{
    notify_sender_t *s = ctx;
    nt_flight_t *f = nt_curl_done(s->curl);
    while (f) {
        nt_flight_t *next = f->qnext;
        lane_t *l = f->lane;
        for (nt_flight_t **fp = &l->flights; *fp; fp = &(*fp)->next)
            if (*fp == f) {
                *fp = f->next;
                break;
            }
        l->in_flight--;
        l->used_ms = s->n->now();
        s->in_flight--;
        cb_metric_observe(s->n->m_webhook_seconds, (double)f->latency_ns / 1e9);
        cb_metric_add(s->n->m_attempts[nt_classify(f->status)], (double)f->nids);
        f->next = l->recording;
        l->recording = f;
        record(s, f, f->id, f->status, f->error, (uint32_t)(f->latency_ns / 1000000));
        f = next;
    }
}

/* Whether endpoint sub_id (its lane l) may start one more request now: room
 * in the sender and on the lane, and its rate (which this takes from). */
static bool may_start(notify_sender_t *s, const lane_t *l, const char *sub_id, const json_t *sub,
                      int64_t now)
{
    unsigned rate = (unsigned)json_integer_value(json_object_get(sub, "rate_per_second"));
    return s->in_flight < s->n->max_in_flight && l->in_flight < s->n->per_endpoint &&
           rate_allows(s, sub_id, rate, now);
}

/* Starts one request; true when it went. A delivery whose stored event cannot
 * be read is recorded as a failed attempt (no answer), so that backoff and the
 * horizon apply to it and it ends as a dead letter rather than standing ready
 * for ever; the others of its batch stay ready for the next scan. */
static bool start_or_record(notify_sender_t *s, lane_t *l, MDB_txn *txn, const nt_delivery_t *recs,
                            size_t nrecs, const json_t *sub)
{
    size_t bad;
    int rc = start(s, l, txn, recs, nrecs, sub, &bad);
    if (rc == START_UNREADABLE)
        record(s, NULL, recs[bad].id, 0, "its stored event is unreadable", 0);
    else if (rc != 0)
        log_error("webhook_start_failed delivery=%s", recs[0].id);
    return rc == 0;
}

void nt_sender_offer(notify_t *n, MDB_txn *txn, const json_t *sub, const nt_delivery_t *d)
{
    notify_sender_t *s = n->sender;
    if (s == NULL || s->stopping || ids_has(&s->out, d->id) ||
        json_integer_value(json_object_get(sub, "batch_max")) > 0) /* batches: the scan's */
        return;
    lane_t *l = lane_get(s, d->sub);
    if (l == NULL || !may_start(s, l, d->sub, sub, n->now()))
        return; /* it stays ready: the scan sends it */
    /* Not start_or_record: this runs inside the apply's transaction. Whatever
     * does not go stays ready, and the scan sends or records it. */
    size_t bad;
    if (start(s, l, txn, d, 1, sub, &bad) != 0)
        log_error("webhook_start_failed delivery=%s", d->id);
}

/* Starts what is due and allowed, endpoint by endpoint (each has its own
 * ready index and its own limits, so a dead endpoint's backlog never stands in
 * front of a live one's); arms the scan timer for what comes next. */
static void scan(notify_sender_t *s)
{
    notify_t *n = s->n;
    if (s->stopping)
        return;
    int64_t now = n->now();
    MDB_txn *txn;
    cb_error_t err;
    if (cb_store_begin(n->d.store, false, &txn, &err) != 0) {
        log_error("scan_failed error=\"%s\"", err.message);
        uv_timer_start(&s->scan_timer, on_scan_timer, IDLE_SCAN_MS, 0);
        return;
    }
    static nt_ready_key_t keys[SCAN_MAX];
    int64_t wake = now + IDLE_SCAN_MS;
    bool limited = false;
    char sub_id[NT_ID_MAX] = "";
    while (nt_ready_next_sub(n, txn, sub_id, sub_id) == 0) {
        json_t *sub = nt_sub_shared(n, txn, sub_id);
        lane_t *lane = sub ? lane_get(s, sub_id) : lane_find(s, sub_id);
        if (sub && lane == NULL) {
            log_error("webhook_lane_failed sub=%s error=\"out of memory\"", sub_id);
            json_decref(sub);
            continue;
        }
        size_t busy = lane ? lane->in_flight : 0;
        size_t room = sub && busy < n->per_endpoint ? n->per_endpoint - busy : 0;
        if (sub && room == 0) { /* full: its next answer scans again */
            json_decref(sub);
            continue;
        }
        size_t per = sub ? (size_t)json_integer_value(json_object_get(sub, "batch_max")) : 0;
        if (per > NT_BATCH_MAX)
            per = NT_BATCH_MAX;
        int want = (int)((busy + (sub ? room : 64)) * (per ? per : 1));
        int64_t next_at = 0;
        int count = nt_ready_due(n, txn, sub_id, now, keys, want < SCAN_MAX ? want : SCAN_MAX,
                                 &next_at, &err);
        if (next_at && next_at < wake)
            wake = next_at;
        nt_delivery_t recs[NT_BATCH_MAX];
        size_t nrecs = 0;
        for (int i = 0; i <= count && s->in_flight < n->max_in_flight; i++) {
            /* A request goes when it is full, or at the end of what is due. */
            if (nrecs > 0 && (i == count || nrecs >= (per ? per : 1))) {
                log_debug("webhook_start sub=%s deliveries=%zu due=%d", sub_id, nrecs, count);
                if (start_or_record(s, lane, txn, recs, nrecs, sub))
                    room--;
                while (nrecs)
                    nt_delivery_free(&recs[--nrecs]);
            }
            if (i == count)
                break;
            if (ids_has(&s->out, keys[i].id))
                continue;
            if (sub == NULL) {
                /* Unsubscribed since: a permanent failure, recorded (410 Gone). */
                record(s, NULL, keys[i].id, 410, "the subscription was removed", 0);
                continue;
            }
            if (room == 0)
                break;
            if (nrecs == 0 && !may_start(s, lane, sub_id, sub, now)) {
                limited = true;
                break;
            }
            if (nt_delivery_get(n, txn, keys[i].id, &recs[nrecs]) == 0)
                nrecs++;
            else
                log_error("webhook_start_failed delivery=%s", keys[i].id);
        }
        while (nrecs)
            nt_delivery_free(&recs[--nrecs]);
        json_decref(sub);
    }
    cb_store_abort(&txn);
    lanes_sweep(s, now);
    int64_t wait = limited ? 50 : wake - now;
    if (wait < 0)
        wait = 0;
    /* Completions kick a new scan; this timer is for retries coming due. */
    uv_timer_start(&s->scan_timer, on_scan_timer, (uint64_t)wait, 0);
}

static void on_scan_timer(uv_timer_t *t)
{
    scan(t->data);
}

void nt_sender_kick(notify_t *n)
{
    notify_sender_t *s = n->sender;
    if (s && !s->stopping)
        uv_timer_start(&s->scan_timer, on_scan_timer, 0, 0);
}

int nt_sender_start(notify_t *n, cb_error_t *err)
{
    notify_sender_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    s->n = n;
    if (nt_curl_start(n, on_done, s, &s->curl, err) != 0) {
        free(s);
        return -1;
    }
    uv_timer_init(n->d.loop, &s->scan_timer);
    s->scan_timer.data = s;
    n->sender = s;
    nt_sender_kick(n);
    return 0;
}

size_t nt_sender_in_flight(const notify_t *n)
{
    return n->sender ? n->sender->in_flight : 0;
}

void nt_sender_stop(notify_t *n)
{
    notify_sender_t *s = n->sender;
    if (s == NULL)
        return;
    /* Attempts in flight are abandoned: their keys stay ready and are sent
     * again after the restart (at least once). */
    s->stopping = true;
    nt_curl_stop(s->curl);
    for (lane_t *l = s->lanes; l; l = l->next)
        while (l->flights) {
            nt_flight_t *f = l->flights;
            l->flights = f->next;
            flight_free(f);
        }
    uv_timer_stop(&s->scan_timer);
    uv_close((uv_handle_t *)&s->scan_timer, NULL);
    /* The lanes and the sender live until exit: answers being recorded still
     * come back to them. */
}
