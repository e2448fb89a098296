/*
 * webhook.c — the sender: libcurl's multi interface driven by notify's loop
 * (each curl socket in a uv_poll, curl's timer in a uv_timer; no thread, no
 * blocking call), one multi per subscription so that each endpoint has its own
 * kept-alive connections. It reads the ready index, starts an HTTP POST for each due
 * delivery within the limits (in flight overall, per endpoint, per-endpoint
 * rate), and records each answer in a group transaction. A delivery's key
 * stays in the ready index until its answer is recorded, so a crash resends
 * exactly the attempts whose answer was never recorded.
 *
 * Request: POST, the event as JSON (docs/events.md), signed as Standard
 * Webhooks 1.0 says (https://www.standardwebhooks.com):
 *   webhook-id             this delivery: the same for every retry of it
 *   webhook-timestamp      Unix seconds when this attempt was signed
 *   webhook-signature      v1,base64(HMAC-SHA256(key, id "." timestamp "." body)); the
 *                          key is the base64 after "whsec_" of the secret, or
 *                          the secret's own bytes when it has no such prefix
 * and, for receivers written before, casebus's own (deprecated):
 *   X-Casebus-Event-Id     the source event's id (receivers drop repeats by it)
 *   X-Casebus-Event-Type   e.g. transfer_routed
 *   X-Casebus-Delivery-Id  this delivery
 *   X-Casebus-Timestamp    Unix seconds when this attempt was signed
 *   X-Casebus-Signature    v1=hex(HMAC-SHA256(secret, timestamp + "." + body))
 */
#include "notify.h"
#include "cbtime.h"
#include "log.h"
#include "netaddr.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX 512
#define IDLE_SCAN_MS 1000

typedef struct pool pool_t;

typedef struct flight {
    pool_t *pool;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char id[NT_ID_MAX]; /* the first delivery's, or the batch's */
    char (*ids)[NT_ID_MAX]; /* the deliveries this request carries */
    size_t nids;
    uint64_t started_ns;
    char errbuf[CURL_ERROR_SIZE];
    char blocked[160]; /* why the resolved address was refused, when it was */
    struct flight *next;
} flight_t;

/* One subscription's connections: a curl multi of its own, so its kept-alive
 * connections (HTTP/1.1, or HTTP/2 where an https endpoint offers it) are its
 * alone and a hanging endpoint holds back nobody else. At most per_endpoint
 * connections; closed after POOL_IDLE_MS without an attempt. */
struct pool {
    notify_sender_t *s;
    char sub[NT_ID_MAX];
    CURLM *multi;
    uv_timer_t timer;
    flight_t *flights, *recording;
    size_t in_flight;
    int64_t used_ms;
    pool_t *next;
};

typedef struct bucket {
    char sub[NT_ID_MAX];
    double tokens;
    int64_t at_ms;
} bucket_t;

struct notify_sender {
    notify_t *n;
    uv_timer_t scan_timer;
    pool_t *pools;
    size_t in_flight;
    bucket_t *buckets;
    size_t nbuckets;
    bool stopping;
    int open_handles;
};

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    pool_t *p;
    notify_sender_t *s;
} sock_t;

#define POOL_IDLE_MS 30000

static void scan(notify_sender_t *s);
static void check_done(pool_t *p);
static void on_scan_timer(uv_timer_t *t);

void nt_sign(const char *secret, const char *timestamp, const char *body, size_t len,
             char out[3 + 64 + 1])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, strlen(timestamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "v1=", 3);
    sodium_bin2hex(out + 3, 65, mac, sizeof(mac));
}


/* ---- curl on the loop ---- */

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *k = p->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(k->p->multi, k->fd, flags, &running);
    check_done(k->p);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_t *k = h->data;
    k->s->open_handles--;
    free(k);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    pool_t *p = userp;
    notify_sender_t *s = p->s;
    sock_t *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            uv_poll_stop(&k->poll);
            uv_close((uv_handle_t *)&k->poll, on_sock_closed);
            curl_multi_assign(p->multi, fd, NULL);
        }
        return 0;
    }
    if (k == NULL) {
        k = calloc(1, sizeof(*k));
        if (k == NULL || uv_poll_init_socket(s->n->d.loop, &k->poll, fd) != 0) {
            free(k);
            log_error("webhook_poll_failed fd=%d", (int)fd);
            return -1;
        }
        k->fd = fd;
        k->p = p;
        k->s = s;
        k->poll.data = k;
        s->open_handles++;
        curl_multi_assign(p->multi, fd, k);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&k->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    pool_t *p = t->data;
    int running;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
}

static int on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    pool_t *p = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&p->timer);
    else
        uv_timer_start(&p->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static pool_t *pool_find(notify_sender_t *s, const char *sub)
{
    for (pool_t *p = s->pools; p; p = p->next)
        if (strcmp(p->sub, sub) == 0)
            return p;
    return NULL;
}

static pool_t *pool_get(notify_sender_t *s, const char *sub)
{
    pool_t *p = pool_find(s, sub);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->multi = curl_multi_init()) == NULL) {
        free(p);
        return NULL;
    }
    p->s = s;
    snprintf(p->sub, sizeof(p->sub), "%s", sub);
    uv_timer_init(s->n->d.loop, &p->timer);
    p->timer.data = p;
    long cap = (long)s->n->per_endpoint;
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    p->used_ms = s->n->now();
    p->next = s->pools;
    s->pools = p;
    return p;
}

static void on_pool_closed(uv_handle_t *h)
{
    free(h->data);
}

/* A pool unused for POOL_IDLE_MS closes its connections and goes. */
static void pools_sweep(notify_sender_t *s, int64_t now)
{
    for (pool_t **pp = &s->pools; *pp;) {
        pool_t *p = *pp;
        if (p->in_flight > 0 || p->recording || now - p->used_ms < POOL_IDLE_MS) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        curl_multi_cleanup(p->multi); /* its sockets' REMOVE callbacks come first */
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, on_pool_closed);
    }
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the receiver's body is not ours to keep */
}

/* ---- starting and finishing attempts ---- */

static bool carries(const flight_t *f, const char *id)
{
    for (; f; f = f->next)
        for (size_t i = 0; i < f->nids; i++)
            if (strcmp(f->ids[i], id) == 0)
                return true;
    return false;
}

/* Sent and not yet answered, or answered and not yet on disk. */
static bool in_flight(const pool_t *p, const char *id)
{
    return p && (carries(p->flights, id) || carries(p->recording, id));
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

/* Every address curl connects to, after DNS and for each one it tries. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    flight_t *f = arg;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        !nt_addr_allowed(f->pool->s->n, &a->addr, f->blocked, sizeof(f->blocked)))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

static void flight_free(flight_t *f)
{
    if (f->easy)
        curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->headers);
    free(f->body);
    free(f->ids);
    free(f);
}

/* A delivery's CloudEvent (valid while txn lives). */
static MDB_val event_of(notify_t *n, MDB_txn *txn, json_t *rec)
{
    MDB_val v = {0, NULL};
    if (!nt_body_get(n, txn, json_string_value(json_object_get(rec, "id")), &v)) {
        const char *old = json_string_value(json_object_get(rec, "body"));
        v.mv_data = (void *)(old ? old : "{}");
        v.mv_size = strlen(v.mv_data);
    }
    return v;
}

/* The request body: one CloudEvent, or for a batch subscription a JSON array
 * of them (recs are the deliveries' records). */
static char *request_body(notify_t *n, MDB_txn *txn, json_t *const *recs, size_t nrecs,
                          bool batch, size_t *len)
{
    MDB_val ev[NT_BATCH_MAX];
    size_t total = batch ? 2 : 0;
    for (size_t i = 0; i < nrecs; i++) {
        ev[i] = event_of(n, txn, recs[i]);
        total += ev[i].mv_size + (i > 0);
    }
    char *b = malloc(total + 1), *p = b;
    if (b == NULL)
        return NULL;
    if (batch)
        *p++ = '[';
    for (size_t i = 0; i < nrecs; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, ev[i].mv_data, ev[i].mv_size);
        p += ev[i].mv_size;
    }
    if (batch)
        *p++ = ']';
    *p = '\0';
    *len = total;
    return b;
}

/* One POST carrying recs (one delivery, or up to the subscription's batch). */
static int start(pool_t *p, MDB_txn *txn, json_t *const *recs, size_t nrecs, json_t *sub)
{
    notify_sender_t *s = p->s;
    flight_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    bool batch = json_integer_value(json_object_get(sub, "batch_max")) > 0;
    json_t *rec = recs[0];
    f->pool = p;
    f->ids = calloc(nrecs, sizeof(*f->ids));
    size_t len = 0;
    f->body = request_body(s->n, txn, recs, nrecs, batch, &len);
    f->easy = curl_easy_init();
    if (f->ids == NULL || f->body == NULL || f->easy == NULL) {
        flight_free(f);
        return -1;
    }
    for (size_t i = 0; i < nrecs; i++)
        snprintf(f->ids[i], sizeof(f->ids[i]), "%s",
                 json_string_value(json_object_get(recs[i], "id")));
    f->nids = nrecs;
    /* A batch's id is stable for the same deliveries sent again. */
    if (batch)
        snprintf(f->id, sizeof(f->id), "batch_%s_%zu", f->ids[0], nrecs);
    else
        snprintf(f->id, sizeof(f->id), "%s", f->ids[0]);
    char ts[32], sig[3 + 64 + 1], h[512], std[2 * CB_WHSIG_MAX + 1];
    snprintf(ts, sizeof(ts), "%lld", (long long)(cb_now_ms() / 1000));
    const char *secret = json_string_value(json_object_get(sub, "secret"));
    nt_sign(secret, ts, f->body, len, sig);
    if (cb_whsig_sign(secret, f->id, ts, f->body, len, std) != 0)
        std[0] = '\0'; /* a whsec_ secret that is not base64 is refused when made */
    /* A rotated secret: the old one signs too until its overlap ends. */
    const char *old = json_string_value(json_object_get(sub, "old_secret"));
    char old_sig[CB_WHSIG_MAX];
    if (old && std[0] && cb_now_ms() < json_integer_value(json_object_get(sub, "old_until_ms")) &&
        cb_whsig_sign(old, f->id, ts, f->body, len, old_sig) == 0) {
        size_t l = strlen(std);
        snprintf(std + l, sizeof(std) - l, " %s", old_sig);
    }
    const char *headers[][2] = {
        {"Content-Type", batch ? CB_CE_BATCH_CONTENT_TYPE : CB_CE_CONTENT_TYPE},
        {"User-Agent", "casebus-notify/1"},
        {"webhook-id", f->id},
        {"webhook-timestamp", ts},
        {"webhook-signature", std},
        {"webhook-subscription", p->sub},
        {"webhook-addressee", json_string_value(json_object_get(rec, "org_id"))},
        {"X-Casebus-Delivery-Id", f->id},
        {"X-Casebus-Timestamp", ts},
        {"X-Casebus-Signature", sig},
        {"Expect", NULL},
        /* one event's own (deprecated; a batch names each inside) */
        {"X-Casebus-Event-Id", batch ? NULL : json_string_value(json_object_get(rec, "event_id"))},
        {"X-Casebus-Event-Type", batch ? NULL : json_string_value(json_object_get(rec, "type"))},
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (headers[i][1] == NULL && strcmp(headers[i][0], "Expect") != 0)
            continue;
        snprintf(h, sizeof(h), "%s: %s", headers[i][0], headers[i][1] ? headers[i][1] : "");
        if (strcmp(headers[i][0], "Expect") == 0)
            snprintf(h, sizeof(h), "Expect:");
        struct curl_slist *l = curl_slist_append(f->headers, h);
        if (l)
            f->headers = l;
    }
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, json_string_value(json_object_get(rec, "url")));
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, f->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, f);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    f->started_ns = cb_mono_ns();
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) {
        flight_free(f);
        return -1;
    }
    f->next = p->flights;
    p->flights = f;
    p->in_flight++;
    p->used_ms = s->n->now();
    s->in_flight++;
    return 0;
}

/* A finished flight waits on p->recording until its answers are on disk: its
 * keys are still in the ready index that scans read, and must not go twice. */
static void unrecord(flight_t *f)
{
    for (flight_t **fp = &f->pool->recording; *fp; fp = &(*fp)->next)
        if (*fp == f) {
            *fp = f->next;
            break;
        }
    flight_free(f);
}

static void on_recorded(void *arg, int status, const cb_error_t *err)
{
    flight_t *f = arg;
    notify_sender_t *s = f->pool->s;
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
static void record(notify_sender_t *s, flight_t *f, const char *id, long status, const char *error,
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
        rc = nt_record_attempt(n, txn, f ? f->ids[i] : id, status, error, latency_ms, n->now(),
                               &err);
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

static void check_done(pool_t *p)
{
    notify_sender_t *s = p->s;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        flight_t *f = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        long status = 0;
        if (m->data.result == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        char error[CURL_ERROR_SIZE + 64];
        if (m->data.result != CURLE_OK && f->blocked[0])
            snprintf(error, sizeof(error), "refused: %s", f->blocked);
        else if (m->data.result != CURLE_OK)
            snprintf(error, sizeof(error), "%s", f->errbuf[0] ? f->errbuf
                                                            : curl_easy_strerror(m->data.result));
        else
            error[0] = '\0';
        uint32_t latency = (uint32_t)((cb_mono_ns() - f->started_ns) / 1000000);
        curl_multi_remove_handle(p->multi, m->easy_handle);
        for (flight_t **fp = &p->flights; *fp; fp = &(*fp)->next)
            if (*fp == f) {
                *fp = f->next;
                break;
            }
        p->in_flight--;
        p->used_ms = s->n->now();
        s->in_flight--;
        cb_metric_observe(s->n->m_webhook_seconds, (double)(cb_mono_ns() - f->started_ns) / 1e9);
        cb_metric_add(s->n->m_attempts[nt_classify(status)], (double)f->nids);
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
        if (s->stopping) {
            flight_free(f);
            continue;
        }
        f->next = p->recording;
        p->recording = f;
        record(s, f, f->id, status, error, latency);
    }
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
        pool_t *pool = sub ? pool_get(s, sub_id) : pool_find(s, sub_id);
        if (sub && pool == NULL) {
            log_error("webhook_pool_failed sub=%s error=\"out of memory\"", sub_id);
            json_decref(sub);
            continue;
        }
        size_t busy = pool ? pool->in_flight : 0;
        size_t room = sub && busy < n->per_endpoint ? n->per_endpoint - busy : 0;
        size_t per = sub ? (size_t)json_integer_value(json_object_get(sub, "batch_max")) : 0;
        if (per > NT_BATCH_MAX)
            per = NT_BATCH_MAX;
        int want = (int)((busy + (sub ? room : 64)) * (per ? per : 1));
        int64_t next_at = 0;
        int count = nt_ready_due(n, txn, sub_id, now, keys, want < SCAN_MAX ? want : SCAN_MAX,
                                 &next_at, &err);
        if (next_at && next_at < wake)
            wake = next_at;
        json_t *recs[NT_BATCH_MAX];
        size_t nrecs = 0;
        for (int i = 0; i <= count && s->in_flight < n->max_in_flight; i++) {
            /* A request goes when it is full, or at the end of what is due. */
            if (nrecs > 0 && (i == count || nrecs >= (per ? per : 1))) {
                log_debug("webhook_start sub=%s deliveries=%zu due=%d", sub_id, nrecs, count);
                if (start(pool, txn, recs, nrecs, sub) == 0)
                    room--;
                else
                    log_error("webhook_start_failed delivery=%s", keys[i - 1].id);
                while (nrecs)
                    json_decref(recs[--nrecs]);
            }
            if (i == count)
                break;
            if (in_flight(pool, keys[i].id))
                continue;
            if (sub == NULL) {
                /* Unsubscribed since: a permanent failure, recorded (410 Gone). */
                record(s, NULL, keys[i].id, 410, "the subscription was removed", 0);
                continue;
            }
            if (room == 0)
                break;
            unsigned rate = (unsigned)json_integer_value(json_object_get(sub, "rate_per_second"));
            if (nrecs == 0 && !rate_allows(s, sub_id, rate, now)) {
                limited = true;
                break;
            }
            json_t *rec = nt_get(n, txn, n->db_deliveries, keys[i].id);
            if (rec)
                recs[nrecs++] = rec;
            else
                log_error("webhook_start_failed delivery=%s", keys[i].id);
        }
        while (nrecs)
            json_decref(recs[--nrecs]);
        json_decref(sub);
    }
    cb_store_abort(&txn);
    /* Kick curl for the handles just added. */
    for (pool_t *p = s->pools; p; p = p->next) {
        int running;
        if (p->flights)
            curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    pools_sweep(s, now);
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
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cb_error_set(err, CB_ERR_NOMEM, "", "libcurl did not initialise");
    notify_sender_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    s->n = n;
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
    for (pool_t *p = s->pools; p; p = p->next) {
        while (p->flights) {
            flight_t *f = p->flights;
            p->flights = f->next;
            curl_multi_remove_handle(p->multi, f->easy);
            flight_free(f);
        }
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, NULL);
    }
    uv_timer_stop(&s->scan_timer);
    uv_close((uv_handle_t *)&s->scan_timer, NULL);
    /* The multi handles, pools and the sender live until exit: curl may still
     * call on_socket(REMOVE) while the loop closes the polls. */
}
