/*
 * webhook.c — the sender: libcurl's multi interface driven by notify's loop
 * (each curl socket in a uv_poll, curl's timer in a uv_timer; no thread, no
 * blocking call). It reads the ready index, starts an HTTP POST for each due
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

typedef struct flight {
    struct notify_sender *s;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char id[NT_ID_MAX], sub[NT_ID_MAX]; /* id: the first delivery's, or the batch's */
    char (*ids)[NT_ID_MAX];             /* the deliveries this request carries */
    size_t nids;
    uint64_t started_ns;
    char errbuf[CURL_ERROR_SIZE];
    char blocked[160]; /* why the resolved address was refused, when it was */
    struct flight *next;
} flight_t;

typedef struct bucket {
    char sub[NT_ID_MAX];
    double tokens;
    int64_t at_ms;
} bucket_t;

struct notify_sender {
    notify_t *n;
    CURLM *multi;
    uv_timer_t curl_timer, scan_timer;
    flight_t *flights;
    size_t in_flight;
    bucket_t *buckets;
    size_t nbuckets;
    bool stopping;
    int open_handles;
};

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    notify_sender_t *s;
} sock_t;

static void scan(notify_sender_t *s);
static void check_done(notify_sender_t *s);
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
    curl_multi_socket_action(k->s->multi, k->fd, flags, &running);
    check_done(k->s);
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
    notify_sender_t *s = userp;
    sock_t *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            uv_poll_stop(&k->poll);
            uv_close((uv_handle_t *)&k->poll, on_sock_closed);
            curl_multi_assign(s->multi, fd, NULL);
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
        k->s = s;
        k->poll.data = k;
        s->open_handles++;
        curl_multi_assign(s->multi, fd, k);
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
    notify_sender_t *s = t->data;
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
}

static int on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    notify_sender_t *s = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&s->curl_timer);
    else
        uv_timer_start(&s->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the receiver's body is not ours to keep */
}

/* ---- starting and finishing attempts ---- */

static bool in_flight(const notify_sender_t *s, const char *id, const char *sub, size_t *for_sub)
{
    *for_sub = 0;
    bool found = false;
    for (const flight_t *f = s->flights; f; f = f->next) {
        for (size_t i = 0; *id && i < f->nids; i++)
            found = found || strcmp(f->ids[i], id) == 0;
        if (sub && strcmp(f->sub, sub) == 0)
            (*for_sub)++;
    }
    return found;
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
        !nt_addr_allowed(f->s->n, &a->addr, f->blocked, sizeof(f->blocked)))
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

/* The request body: one CloudEvent, or for a batch subscription a JSON array
 * of them (recs are the deliveries' records, each holding its event). */
static char *request_body(json_t *const *recs, size_t n, bool batch)
{
    if (!batch)
        return strdup(json_string_value(json_object_get(recs[0], "body")));
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += strlen(json_string_value(json_object_get(recs[i], "body"))) + 1;
    char *b = malloc(len + 1), *p = b;
    if (b == NULL)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        const char *one = json_string_value(json_object_get(recs[i], "body"));
        size_t l = strlen(one);
        if (i)
            *p++ = ',';
        memcpy(p, one, l);
        p += l;
    }
    *p++ = ']';
    *p = '\0';
    return b;
}

/* One POST carrying recs (one delivery, or up to the subscription's batch). */
static int start(notify_sender_t *s, json_t *const *recs, size_t nrecs, json_t *sub)
{
    flight_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    bool batch = json_integer_value(json_object_get(sub, "batch_max")) > 0;
    json_t *rec = recs[0];
    f->s = s;
    f->ids = calloc(nrecs, sizeof(*f->ids));
    f->body = request_body(recs, nrecs, batch);
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
    snprintf(f->sub, sizeof(f->sub), "%s", json_string_value(json_object_get(rec, "sub")));
    char ts[32], sig[3 + 64 + 1], h[512], std[2 * CB_WHSIG_MAX + 1];
    snprintf(ts, sizeof(ts), "%lld", (long long)(cb_now_ms() / 1000));
    const char *secret = json_string_value(json_object_get(sub, "secret"));
    nt_sign(secret, ts, f->body, strlen(f->body), sig);
    if (cb_whsig_sign(secret, f->id, ts, f->body, strlen(f->body), std) != 0)
        std[0] = '\0'; /* a whsec_ secret that is not base64 is refused when made */
    /* A rotated secret: the old one signs too until its overlap ends. */
    const char *old = json_string_value(json_object_get(sub, "old_secret"));
    char old_sig[CB_WHSIG_MAX];
    if (old && std[0] && cb_now_ms() < json_integer_value(json_object_get(sub, "old_until_ms")) &&
        cb_whsig_sign(old, f->id, ts, f->body, strlen(f->body), old_sig) == 0) {
        size_t l = strlen(std);
        snprintf(std + l, sizeof(std) - l, " %s", old_sig);
    }
    const char *headers[][2] = {
        {"Content-Type", batch ? CB_CE_BATCH_CONTENT_TYPE : CB_CE_CONTENT_TYPE},
        {"User-Agent", "casebus-notify/1"},
        {"webhook-id", f->id},
        {"webhook-timestamp", ts},
        {"webhook-signature", std},
        {"webhook-subscription", f->sub},
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
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(f->body));
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
    /* A fresh connection per attempt: with connections shared from one pool, a
     * hanging endpoint held back deliveries to live ones (bench/notify.sh:
     * 586/s vs 1,688/s to the 9 live endpoints), at the cost of peak rate. */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    f->started_ns = cb_mono_ns();
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        flight_free(f);
        return -1;
    }
    f->next = s->flights;
    s->flights = f;
    s->in_flight++;
    return 0;
}

typedef struct answer {
    notify_sender_t *s;
    char id[NT_ID_MAX];
} answer_t;

static void on_recorded(void *arg, int status, const cb_error_t *err)
{
    answer_t *a = arg;
    if (status != 0)
        log_error("delivery_record_failed delivery=%s error=\"%s\"", a->id, err->message);
    if (!a->s->stopping)
        nt_sender_kick(a->s->n);
    free(a);
}

/* Records one answer; on a failure the attempt is simply made again later
 * (its key is still in the ready index). */
static void record(notify_sender_t *s, const char *id, long status, const char *error,
                   uint32_t latency_ms)
{
    notify_t *n = s->n;
    cb_error_t err;
    MDB_txn *txn;
    answer_t *a = calloc(1, sizeof(*a));
    if (a == NULL || cb_group_txn(n->d.group, &txn, &err) != 0) {
        log_error("delivery_record_failed delivery=%s error=\"%s\"", id,
                  a ? err.message : "out of memory");
        free(a);
        return;
    }
    a->s = s;
    snprintf(a->id, sizeof(a->id), "%s", id);
    if (nt_record_attempt(n, txn, id, status, error, latency_ms, n->now(), &err) != 0 ||
        cb_group_join(n->d.group, on_recorded, a, &err) != 0) {
        log_error("delivery_record_failed delivery=%s error=\"%s\"", id, err.message);
        cb_group_fail(n->d.group, &err);
        free(a);
    }
}

static void check_done(notify_sender_t *s)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
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
        curl_multi_remove_handle(s->multi, m->easy_handle);
        for (flight_t **p = &s->flights; *p; p = &(*p)->next)
            if (*p == f) {
                *p = f->next;
                break;
            }
        s->in_flight--;
        cb_metric_observe(s->n->m_webhook_seconds, (double)(cb_mono_ns() - f->started_ns) / 1e9);
        cb_metric_add(s->n->m_attempts[nt_classify(status)], (double)f->nids);
        for (size_t i = 0; i < f->nids && !s->stopping; i++)
            record(s, f->ids[i], status, error, latency);
        flight_free(f);
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
        size_t busy;
        in_flight(s, "", sub_id, &busy);
        json_t *sub = nt_get(n, txn, n->db_subs, sub_id);
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
                if (start(s, recs, nrecs, sub) == 0)
                    room--;
                else
                    log_error("webhook_start_failed delivery=%s", keys[i - 1].id);
                while (nrecs)
                    json_decref(recs[--nrecs]);
            }
            if (i == count)
                break;
            size_t ignore;
            if (in_flight(s, keys[i].id, NULL, &ignore))
                continue;
            if (sub == NULL) {
                /* Unsubscribed since: a permanent failure, recorded (410 Gone). */
                record(s, keys[i].id, 410, "the subscription was removed", 0);
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
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
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
    if (s == NULL || (s->multi = curl_multi_init()) == NULL) {
        free(s);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    s->n = n;
    uv_timer_init(n->d.loop, &s->curl_timer);
    uv_timer_init(n->d.loop, &s->scan_timer);
    s->curl_timer.data = s->scan_timer.data = s;
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
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
    while (s->flights) {
        flight_t *f = s->flights;
        s->flights = f->next;
        curl_multi_remove_handle(s->multi, f->easy);
        flight_free(f);
    }
    uv_timer_stop(&s->curl_timer);
    uv_timer_stop(&s->scan_timer);
    uv_close((uv_handle_t *)&s->curl_timer, NULL);
    uv_close((uv_handle_t *)&s->scan_timer, NULL);
    /* The multi handle and the sender live until exit: curl may still call
     * on_socket(REMOVE) while the loop closes the polls. */
}
