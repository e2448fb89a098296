/*
 * admit.c — which connections intake's HTTP door takes.
 *
 * Owns the counts of open connections, overall (max_connections) and per
 * client address (max_per_address), so that one client holding idle sockets
 * cannot use up the door for everyone. A connection over either cap is not
 * reset: it gets a 503 in the JSON error shape with Retry-After, its write side
 * is shut, and what it sends is drained for a moment before the close (a close
 * with unread input would still be a reset). Over TLS there is no plaintext to
 * send, so such a connection is closed at once.
 */
#include "intake.h"
#include "netaddr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Connections being answered 503 at one time; past it they are closed at once. */
#define ADMIT_MAX_REFUSING 1024
#define ADMIT_DRAIN_MS 1000

struct intake_peer {
    struct intake_peer *next;
    uint8_t addr[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
    uint32_t open;
};

void intake_admit_init(intake_admit_t *a, uint64_t max, uint64_t per_address)
{
    memset(a, 0, sizeof(*a));
    a->max = max;
    a->per_address = per_address;
}

static size_t bucket_of(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % INTAKE_ADMIT_BUCKETS;
}

intake_admit_result_t intake_admit_take(intake_admit_t *a, const struct sockaddr *sa,
                                        intake_peer_t **peer)
{
    *peer = NULL;
    if (a->open >= a->max)
        return INTAKE_ADMIT_FULL;
    uint8_t key[16];
    cb_addr_key(sa, key);
    intake_peer_t **head = &a->bucket[bucket_of(key)], *p = *head;
    while (p && memcmp(p->addr, key, 16) != 0)
        p = p->next;
    if (p && p->open >= a->per_address)
        return INTAKE_ADMIT_ADDRESS;
    if (p == NULL) {
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return INTAKE_ADMIT_FULL;
        memcpy(p->addr, key, 16);
        p->next = *head;
        *head = p;
        a->peers++;
    }
    p->open++;
    a->open++;
    *peer = p;
    return INTAKE_ADMIT_OK;
}

void intake_admit_release(intake_admit_t *a, intake_peer_t *peer)
{
    if (peer == NULL)
        return;
    a->open--;
    if (--peer->open > 0)
        return;
    intake_peer_t **pp = &a->bucket[bucket_of(peer->addr)];
    while (*pp != peer)
        pp = &(*pp)->next;
    *pp = peer->next;
    free(peer);
    a->peers--;
}

uint32_t intake_admit_open_from(const intake_admit_t *a, const struct sockaddr *sa)
{
    uint8_t key[16];
    cb_addr_key(sa, key);
    for (const intake_peer_t *p = a->bucket[bucket_of(key)]; p; p = p->next)
        if (memcmp(p->addr, key, 16) == 0)
            return p->open;
    return 0;
}

/* ---------- accepting, and the 503 answer ---------- */

typedef struct refusal {
    intake_conn_t *conn;
    uv_write_t write;
    uv_shutdown_t shutdown;
    uv_timer_t timer;
    bool timer_open;
    char response[512];
} refusal_t;

void intake_admit_closed(uv_handle_t *h)
{
    intake_conn_t *c = (intake_conn_t *)h;
    intake_admit_release(c->admit, c->peer);
    free(c);
}

static void refused_tcp_closed(uv_handle_t *h)
{
    intake_conn_t *c = (intake_conn_t *)h;
    refusal_t *r = c->refusal;
    c->admit->refusing--;
    free(c);
    if (r) {
        r->conn = NULL;
        if (!r->timer_open)
            free(r);
    }
}

static void refusal_timer_closed(uv_handle_t *h)
{
    refusal_t *r = h->data;
    r->timer_open = false;
    if (r->conn == NULL)
        free(r);
}

static void refusal_end(refusal_t *r)
{
    if (r->conn && !uv_is_closing((uv_handle_t *)&r->conn->tcp))
        uv_close((uv_handle_t *)&r->conn->tcp, refused_tcp_closed);
    if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, refusal_timer_closed);
}

static void drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char sink[4096]; /* read and thrown away, on the one loop thread */
    *buf = uv_buf_init(sink, sizeof(sink));
}

static void drain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        refusal_end(((intake_conn_t *)s)->refusal);
}

static void drain_timeout(uv_timer_t *t)
{
    refusal_end(t->data);
}

/* True when the client has sent something we have not read. */
static bool unread_input(uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    char c;
    return uv_fileno((uv_handle_t *)tcp, &fd) == 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void on_shutdown(uv_shutdown_t *sh, int status)
{
    refusal_t *r = sh->data;
    if (r->conn == NULL)
        return;
    /* Nothing unread (a client holding the socket idle): the close sends FIN,
     * not a reset, so there is nothing to wait for. */
    if (status != 0 || !unread_input(&r->conn->tcp) ||
        uv_read_start((uv_stream_t *)&r->conn->tcp, drain_alloc, drain_read) != 0)
        refusal_end(r);
}

static void on_written(uv_write_t *w, int status)
{
    refusal_t *r = w->data;
    if (r->conn == NULL)
        return;
    if (status != 0 ||
        uv_shutdown(&r->shutdown, (uv_stream_t *)&r->conn->tcp, on_shutdown) != 0)
        refusal_end(r);
}

static void refuse(intake_conn_t *c, bool tls, intake_admit_result_t why)
{
    intake_admit_t *a = c->admit;
    a->refused++;
    a->refusing++;
    refusal_t *r = NULL;
    if (tls || a->refusing > ADMIT_MAX_REFUSING || (r = calloc(1, sizeof(*r))) == NULL ||
        uv_timer_init(c->tcp.loop, &r->timer) != 0) {
        free(r);
        uv_close((uv_handle_t *)&c->tcp, refused_tcp_closed);
        return;
    }
    r->conn = c;
    c->refusal = r;
    r->timer_open = true;
    r->timer.data = r->write.data = r->shutdown.data = r;
    char body[256];
    if (why == INTAKE_ADMIT_ADDRESS)
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"too_many_connections\",\"field\":\"\",\"message\":"
                 "\"this address already holds %llu connections (max_per_address); close idle "
                 "ones and retry\"}}",
                 (unsigned long long)a->per_address);
    else
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"overloaded\",\"field\":\"\",\"message\":"
                 "\"intake holds its %llu connections (max_connections); retry shortly\"}}",
                 (unsigned long long)a->max);
    int n = snprintf(r->response, sizeof(r->response),
                     "HTTP/1.1 503 Service Unavailable\r\nServer: casebus-intake\r\n"
                     "Content-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    uv_buf_t buf = uv_buf_init(r->response, (unsigned)n);
    if (uv_timer_start(&r->timer, drain_timeout, ADMIT_DRAIN_MS, 0) != 0 ||
        uv_write(&r->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        refusal_end(r);
}

intake_conn_t *intake_admit_accept(intake_admit_t *a, uv_stream_t *listener, bool tls)
{
    intake_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL; /* the connection waits in the backlog for the next accept */
    c->admit = a;
    if (uv_tcp_init(listener->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    a->refusing++; /* until admitted: a failure below closes through refused_tcp_closed */
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len) != 0) {
        uv_close((uv_handle_t *)&c->tcp, refused_tcp_closed);
        return NULL;
    }
    a->refusing--;
    intake_admit_result_t why = intake_admit_take(a, (struct sockaddr *)&peer, &c->peer);
    if (why != INTAKE_ADMIT_OK) {
        refuse(c, tls, why);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    return c;
}
