/*
 * promhttp.c — reads a request head (at most 4 KiB, within 5 s), answers it,
 * closes. Plain libuv: no parser beyond the request line is needed.
 */
#include "promhttp.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 4096
#define READ_TIMEOUT_MS 5000
#define MAX_CONNS 64

struct cb_promhttp {
    uv_tcp_t listener; /* first: freed through its handle */
    cb_daemon_t *d;
    size_t open;
    struct conn *conns;
};

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    cb_promhttp_t *p;
    char head[HEAD_MAX];
    size_t used;
    bool answered;
    int closing; /* handles still to close */
    struct conn *next;
    uv_write_t wr;
    char *out;
} conn_t;

int cb_listen_addr(const char *text, struct sockaddr_storage *addr)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof(host))
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return -1;
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0 ? 0 : -1;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0 ? 0 : -1;
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->closing > 0)
        return;
    cb_promhttp_t *p = c->p;
    if (p) {
        for (conn_t **q = &p->conns; *q; q = &(*q)->next)
            if (*q == c) {
                *q = c->next;
                break;
            }
        p->open--;
    }
    free(c->out);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 2;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void reply(conn_t *c, int status, const char *type, const char *body, size_t len)
{
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed" : status == 400 ? "Bad Request"
                                                                                 : "Service Unavailable";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, type, len);
    c->out = malloc((size_t)n + len);
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->out, head, (size_t)n);
    memcpy(c->out + n, body, len);
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)((size_t)n + len));
    c->wr.data = c;
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
}

static void answer(conn_t *c)
{
    char method[8], path[256];
    if (sscanf(c->head, "%7s %255s HTTP/1.", method, path) != 2) {
        const char *b = "{\"error\":\"not an HTTP request\"}";
        reply(c, 400, "application/json", b, strlen(b));
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0) {
        const char *b = "{\"error\":\"only /metrics and /healthz here\"}";
        reply(c, 404, "application/json", b, strlen(b));
    } else if (!get) {
        const char *b = "{\"error\":\"GET only\"}";
        reply(c, 405, "application/json", b, strlen(b));
    } else if (strcmp(path, "/metrics") == 0) {
        size_t len;
        char *text = cb_daemon_metrics_text(c->p->d, &len);
        if (text)
            reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        else
            reply(c, 503, "application/json", "{}", 2);
        free(text);
    } else {
        bool ok = false;
        json_t *h = cb_daemon_health(c->p->d, &ok);
        char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
        json_decref(h);
        if (text)
            reply(c, ok ? 200 : 503, "application/json", text, strlen(text));
        else
            reply(c, 503, "application/json", "{}", 2);
        free(text);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->head + c->used, (unsigned)(HEAD_MAX - 1 - c->used));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->used += (size_t)n;
    c->head[c->used] = '\0';
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        answer(c);
    else if (c->used >= HEAD_MAX - 1)
    {
        const char *b = "{\"error\":\"request head too large\"}";
        reply(c, 400, "application/json", b, strlen(b));
    }
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    cb_promhttp_t *p = server->data;
    if (status != 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->p = p;
    uv_tcp_init(p->d->loop, &c->tcp);
    uv_timer_init(p->d->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->next = p->conns;
    p->conns = c;
    p->open++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || p->open > MAX_CONNS) {
        conn_close(c); /* a scraper storm is not served at the loop's expense */
        return;
    }
    uv_timer_start(&c->timer, on_timeout, READ_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

int cb_promhttp_start(cb_promhttp_t **out, cb_daemon_t *d, cb_error_t *err)
{
    *out = NULL;
    const char *listen = cb_config_get(d->cfg, d->name, "metrics_listen", NULL);
    if (listen == NULL || *listen == '\0')
        return 0;
    struct sockaddr_storage addr;
    if (cb_listen_addr(listen, &addr) != 0)
        return cb_error_set(err, CB_ERR_CONFIG, "metrics_listen",
                            "[%s] metrics_listen = '%.100s': want HOST:PORT, e.g. 127.0.0.1:9101",
                            d->name, listen);
    cb_promhttp_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    p->d = d;
    int rc = uv_tcp_init(d->loop, &p->listener);
    p->listener.data = p;
    if (rc == 0 && ((rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&addr, 0)) != 0 ||
                    (rc = uv_listen((uv_stream_t *)&p->listener, 64, on_connection)) != 0)) {
        uv_close((uv_handle_t *)&p->listener, (uv_close_cb)free);
        return cb_error_set(err, CB_ERR_CONFIG, "metrics_listen", "[%s] metrics_listen %s: %s",
                            d->name, listen, uv_strerror(rc));
    }
    if (rc != 0) {
        free(p);
        return cb_error_set(err, CB_ERR_CONFIG, "metrics_listen", "%s", uv_strerror(rc));
    }
    log_info("metrics_listen=%s", listen);
    *out = p;
    return 0;
}

void cb_promhttp_stop(cb_promhttp_t **pp)
{
    cb_promhttp_t *p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    for (conn_t *c = p->conns; c; c = c->next) {
        c->p = NULL; /* they finish closing on their own */
        conn_close(c);
    }
    uv_close((uv_handle_t *)&p->listener, (uv_close_cb)free);
}
