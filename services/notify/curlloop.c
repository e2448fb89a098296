/*
 * curlloop.c — the sender thread: libcurl's multi interface on a libuv loop of
 * its own (each curl socket in a uv_poll, curl's timer in a uv_timer), one
 * multi per subscription so that each endpoint has its own kept-alive
 * connections (HTTP/1.1, or HTTP/2 where an https endpoint offers it) and a
 * hanging endpoint holds back nobody else. It signs each request, sends it and
 * hands the answer back; it never touches the store. The loop thread, which
 * does, keeps working while requests are on the wire (webhook.c).
 *
 * Request: POST, the event as JSON (docs/events.md), signed as Standard
 * Webhooks 1.0 says (https://www.standardwebhooks.com):
 *   webhook-id             the source event and the subscription (producer-seq-sub):
 *                          the same for every retry, and after a crash
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
#include "sender.h"
#include "cbtime.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_IDLE_MS 30000
#define SWEEP_MS 5000

typedef struct nt_pool pool_t;

typedef struct fqueue {
    nt_flight_t *head, *tail;
} fqueue_t;

struct nt_curl {
    notify_t *n;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;       /* on the sender's loop: something to send, or stop */
    uv_async_t done_async; /* on notify's loop: answers are waiting */
    uv_timer_t sweep;
    void (*on_done)(void *ctx);
    void *ctx;
    uv_mutex_t mu; /* guards the two queues and stop */
    fqueue_t in, out;
    bool stop;
    pool_t *pools; /* the sender thread's alone */
    struct sock **socks; /* by fd: kept from curl's first use of a socket to its close */
    size_t nsocks;
};

/* One subscription's connections: at most per_endpoint; closed after
 * POOL_IDLE_MS without an attempt. */
struct nt_pool {
    nt_curl_t *c;
    char sub[NT_ID_MAX];
    CURLM *multi;
    uv_timer_t timer;
    nt_flight_t *out; /* linked by qnext: no queue holds a flight while it is out */
    size_t in_flight;
    CURL **idle; /* easy handles done with, set up for the next request */
    size_t nidle;
    int64_t used_ms;
    pool_t *next;
};

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    pool_t *p;
    int events; /* what the poll watches now (0: stopped) */
} sock_t;

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

static void check_done(pool_t *p);

/* ---- curl on the sender's loop ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_t *k = h->data;
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
    free(h->data);
}

/* A kept-alive connection's socket is watched again at each request, and
 * curl says so every time (it forgets it between requests): its poll is made
 * once and kept until the socket closes (close_socket), and restarted only
 * when what it watches changes. */
static sock_t *sock_get(nt_curl_t *c, pool_t *p, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= c->nsocks) {
        size_t n = (size_t)fd + 64;
        sock_t **grown = realloc(c->socks, n * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        memset(grown + c->nsocks, 0, (n - c->nsocks) * sizeof(*grown));
        c->socks = grown;
        c->nsocks = n;
    }
    sock_t *k = c->socks[fd];
    if (k == NULL) {
        if ((k = calloc(1, sizeof(*k))) == NULL ||
            uv_poll_init_socket(&c->loop, &k->poll, fd) != 0) {
            free(k);
            return NULL;
        }
        k->fd = fd;
        k->poll.data = k;
        c->socks[fd] = k;
    }
    k->p = p;
    return k;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    pool_t *p = userp;
    nt_curl_t *c = p->c;
    if (what == CURL_POLL_REMOVE) {
        sock_t *k = fd >= 0 && (size_t)fd < c->nsocks ? c->socks[fd] : NULL;
        if (k && k->events) {
            uv_poll_stop(&k->poll);
            k->events = 0;
        }
        return 0;
    }
    sock_t *k = sock_get(c, p, fd);
    if (k == NULL) {
        log_error("webhook_poll_failed fd=%d", (int)fd);
        return -1;
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if (events != k->events) {
        uv_poll_start(&k->poll, events, on_poll);
        k->events = events;
    }
    return 0;
}

/* curl closes a socket: its poll goes first (libuv stops watching the fd). */
static int close_socket(void *arg, curl_socket_t fd)
{
    nt_curl_t *c = arg;
    sock_t *k = fd >= 0 && (size_t)fd < c->nsocks ? c->socks[fd] : NULL;
    if (k) {
        c->socks[fd] = NULL;
        uv_close((uv_handle_t *)&k->poll, on_sock_closed);
    }
    return close(fd);
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

static pool_t *pool_get(nt_curl_t *c, const char *sub)
{
    for (pool_t *p = c->pools; p; p = p->next)
        if (strcmp(p->sub, sub) == 0)
            return p;
    pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->multi = curl_multi_init()) == NULL) {
        free(p);
        return NULL;
    }
    p->c = c;
    snprintf(p->sub, sizeof(p->sub), "%s", sub);
    uv_timer_init(&c->loop, &p->timer);
    p->timer.data = p;
    long cap = (long)c->n->per_endpoint;
    if ((p->idle = calloc((size_t)cap, sizeof(*p->idle))) == NULL) {
        curl_multi_cleanup(p->multi);
        free(p);
        return NULL;
    }
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, cap);
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    p->used_ms = cb_now_ms();
    p->next = c->pools;
    c->pools = p;
    return p;
}

static void on_pool_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Its flights' requests abandoned, its connections closed, and it goes. */
static void pool_close(pool_t *p)
{
    for (nt_flight_t *f = p->out; f; f = f->qnext) {
        curl_multi_remove_handle(p->multi, f->easy);
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
        curl_slist_free_all(f->headers);
        f->headers = NULL;
    }
    while (p->nidle)
        curl_easy_cleanup(p->idle[--p->nidle]);
    free(p->idle);
    curl_multi_cleanup(p->multi); /* its sockets' REMOVE callbacks come first */
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pool_closed);
}

static void on_sweep(uv_timer_t *t)
{
    nt_curl_t *c = t->data;
    int64_t now = cb_now_ms();
    for (pool_t **pp = &c->pools; *pp;) {
        pool_t *p = *pp;
        if (p->in_flight > 0 || now - p->used_ms < POOL_IDLE_MS) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        pool_close(p);
    }
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the receiver's body is not ours to keep */
}

/* Every address curl connects to, after DNS and for each one it tries. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    nt_flight_t *f = arg;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        !nt_addr_allowed(f->pool->c->n, &a->addr, f->blocked, sizeof(f->blocked)))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

/* The request's headers, signed now (Standard Webhooks, and casebus's own). */
static int sign_headers(nt_flight_t *f)
{
    char ts[32], sig[3 + 64 + 1], h[512], std[2 * CB_WHSIG_MAX + 1];
    int64_t now = cb_now_ms();
    snprintf(ts, sizeof(ts), "%lld", (long long)(now / 1000));
    nt_sign(f->secret, ts, f->body, f->len, sig);
    if (cb_whsig_sign(f->secret, f->wid, ts, f->body, f->len, std) != 0)
        std[0] = '\0'; /* a whsec_ secret that is not base64 is refused when made */
    /* A rotated secret: the old one signs too until its overlap ends. */
    char old_sig[CB_WHSIG_MAX];
    if (f->old_secret && std[0] && now < f->old_until_ms &&
        cb_whsig_sign(f->old_secret, f->wid, ts, f->body, f->len, old_sig) == 0) {
        size_t l = strlen(std);
        snprintf(std + l, sizeof(std) - l, " %s", old_sig);
    }
    const char *headers[][2] = {
        {"Content-Type", f->batch ? CB_CE_BATCH_CONTENT_TYPE : CB_CE_CONTENT_TYPE},
        {"User-Agent", "casebus-notify/1"},
        {"webhook-id", f->wid},
        {"webhook-timestamp", ts},
        {"webhook-signature", std},
        {"webhook-subscription", f->sub},
        {"webhook-addressee", f->org_id},
        {"X-Casebus-Delivery-Id", f->id},
        {"X-Casebus-Timestamp", ts},
        {"X-Casebus-Signature", sig},
        /* one event's own (deprecated; a batch names each inside) */
        {"X-Casebus-Event-Id", f->batch ? NULL : f->event_id},
        {"X-Casebus-Event-Type", f->batch ? NULL : f->type},
        {"Expect", ""}, /* no 100-continue */
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (headers[i][1] == NULL)
            continue;
        snprintf(h, sizeof(h), "%s:%s%s", headers[i][0], *headers[i][1] ? " " : "",
                 headers[i][1]);
        struct curl_slist *l = curl_slist_append(f->headers, h);
        if (l == NULL)
            return -1;
        f->headers = l;
    }
    return 0;
}

/* f joins q, and the thread that reads q is woken. */
static void enqueue(nt_curl_t *c, fqueue_t *q, nt_flight_t *f, uv_async_t *wake)
{
    f->qnext = NULL;
    uv_mutex_lock(&c->mu);
    if (q->tail)
        q->tail->qnext = f;
    else
        q->head = f;
    q->tail = f;
    uv_mutex_unlock(&c->mu);
    uv_async_send(wake);
}

/* Everything in q, oldest first. */
static nt_flight_t *dequeue_all(nt_curl_t *c, fqueue_t *q, bool *stop)
{
    uv_mutex_lock(&c->mu);
    nt_flight_t *f = q->head;
    q->head = q->tail = NULL;
    if (stop)
        *stop = c->stop;
    uv_mutex_unlock(&c->mu);
    return f;
}

/* An answer goes back to the loop thread. */
static void hand_back(nt_curl_t *c, nt_flight_t *f)
{
    enqueue(c, &c->out, f, &c->done_async);
}

/* f's easy handle is kept for the pool's next request (or goes), its headers
 * go. */
static void release(pool_t *p, nt_flight_t *f)
{
    if (f->easy && p && p->nidle < p->c->n->per_endpoint)
        p->idle[p->nidle++] = f->easy;
    else if (f->easy)
        curl_easy_cleanup(f->easy);
    f->easy = NULL;
    curl_slist_free_all(f->headers);
    f->headers = NULL;
}

static void fail(nt_curl_t *c, nt_flight_t *f, const char *why)
{
    release(f->pool, f);
    f->status = 0;
    snprintf(f->error, sizeof(f->error), "%s", why);
    f->latency_ns = 0;
    hand_back(c, f);
}

/* An easy handle with what every request of ours sets alike. */
static CURL *easy_new(nt_curl_t *c)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    return e;
}

static void launch(nt_curl_t *c, nt_flight_t *f)
{
    pool_t *p = pool_get(c, f->sub);
    if (p == NULL)
        return fail(c, f, "out of memory");
    f->pool = p;
    f->errbuf[0] = f->blocked[0] = '\0';
    CURL *e = p->nidle ? p->idle[--p->nidle] : easy_new(c);
    if ((f->easy = e) == NULL || sign_headers(f) != 0)
        return fail(c, f, "out of memory");
    curl_easy_setopt(e, CURLOPT_URL, f->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, f->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)f->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, f);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    f->started_ns = cb_mono_ns();
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK)
        return fail(c, f, "libcurl refused the request");
    f->qnext = p->out;
    p->out = f;
    p->in_flight++;
    p->used_ms = cb_now_ms();
}

static void check_done(pool_t *p)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        nt_flight_t *f = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        f->status = 0;
        if (m->data.result == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &f->status);
        if (m->data.result != CURLE_OK && f->blocked[0])
            snprintf(f->error, sizeof(f->error), "refused: %s", f->blocked);
        else if (m->data.result != CURLE_OK)
            snprintf(f->error, sizeof(f->error), "%s",
                     f->errbuf[0] ? f->errbuf : curl_easy_strerror(m->data.result));
        else
            f->error[0] = '\0';
        f->latency_ns = cb_mono_ns() - f->started_ns;
        curl_multi_remove_handle(p->multi, m->easy_handle);
        for (nt_flight_t **fp = &p->out; *fp; fp = &(*fp)->qnext)
            if (*fp == f) {
                *fp = f->qnext;
                break;
            }
        p->in_flight--;
        p->used_ms = cb_now_ms();
        release(p, f);
        hand_back(p->c, f);
    }
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* What the loop thread handed over goes out; on stop, everything closes. */
static void on_wake(uv_async_t *a)
{
    nt_curl_t *c = a->data;
    bool stop;
    nt_flight_t *f = dequeue_all(c, &c->in, &stop);
    if (stop) {
        while (c->pools) {
            pool_t *p = c->pools;
            c->pools = p->next;
            pool_close(p);
        }
        uv_walk(&c->loop, close_handle, NULL);
        return;
    }
    while (f) {
        nt_flight_t *next = f->qnext;
        launch(c, f);
        f = next;
    }
    for (pool_t *p = c->pools; p; p = p->next) {
        int running;
        if (p->out)
            curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(p);
    }
}

static void run(void *arg)
{
    nt_curl_t *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
}

static void on_done_async(uv_async_t *a)
{
    nt_curl_t *c = a->data;
    c->on_done(c->ctx);
}

int nt_curl_start(notify_t *n, void (*on_done)(void *ctx), void *ctx, nt_curl_t **out,
                  cb_error_t *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cb_error_set(err, CB_ERR_NOMEM, "", "libcurl did not initialise");
    nt_curl_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    c->n = n;
    c->on_done = on_done;
    c->ctx = ctx;
    if (uv_loop_init(&c->loop) != 0) {
        free(c);
        return cb_error_set(err, CB_ERR_NOMEM, "", "the sender's loop did not start");
    }
    uv_mutex_init(&c->mu);
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_init(&c->loop, &c->sweep);
    c->sweep.data = c;
    uv_timer_start(&c->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_async_init(n->d.loop, &c->done_async, on_done_async);
    c->done_async.data = c;
    if (uv_thread_create(&c->thread, run, c) != 0) {
        uv_close((uv_handle_t *)&c->done_async, NULL);
        uv_walk(&c->loop, close_handle, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        uv_mutex_destroy(&c->mu);
        /* c stays: done_async is still closing on notify's loop */
        return cb_error_set(err, CB_ERR_NOMEM, "", "the sender thread did not start");
    }
    *out = c;
    return 0;
}

void nt_curl_send(nt_curl_t *c, nt_flight_t *f)
{
    enqueue(c, &c->in, f, &c->wake);
}

nt_flight_t *nt_curl_done(nt_curl_t *c)
{
    return dequeue_all(c, &c->out, NULL);
}

static void on_curl_closed(uv_handle_t *h)
{
    nt_curl_t *c = h->data;
    uv_mutex_destroy(&c->mu);
    free(c);
}

void nt_curl_stop(nt_curl_t *c)
{
    uv_mutex_lock(&c->mu);
    c->stop = true;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->wake);
    uv_thread_join(&c->thread);
    uv_loop_close(&c->loop);
    /* Polls that curl had not closed were closed with the loop: their memory
     * is ours to free now that the thread is gone. */
    for (size_t i = 0; i < c->nsocks; i++)
        free(c->socks[i]);
    free(c->socks);
    c->socks = NULL;
    c->nsocks = 0;
    uv_close((uv_handle_t *)&c->done_async, on_curl_closed);
}
