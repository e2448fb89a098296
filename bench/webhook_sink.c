/*
 * webhook_sink — a loopback webhook receiver for the benches, on h2o's libuv
 * binding: answers every POST 200 at once, except paths under /hang/, which it
 * never answers (a dead endpoint). Listens on every port given, one per
 * endpoint, and counts per port the events answered (a batch's each), the connections opened
 * and the most open at once. With --expect N it prints "reached N MS" (the
 * wall clock in ms, as date +%s%3N) when N requests have been answered; on SIGTERM it
 * prints the counts. With --log FILE it writes a line for each request as it
 * arrives, "US SUBJECT" (wall clock in microseconds) (the CloudEvent's subject: the case; "-" if
 * none), for bench/e2e.sh to match against the moment each case was sent:
 *
 *   webhook_sink [--expect N] [--log FILE] PORT...
 *   answered EVENTS requests REQUESTS
 *   port PORT answered N connections C peak P last MS (its last answer's wall clock)
 */
#include <h2o.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PORTS_MAX 64

typedef struct endpoint {
    uv_tcp_t listener;
    int port;
    unsigned long answered, connections, open, peak;
    long long last_ms;
} endpoint_t;

typedef struct conn {
    uv_tcp_t tcp;
    endpoint_t *ep;
} conn_t;

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static endpoint_t endpoints[PORTS_MAX];
static size_t nendpoints;
static unsigned long answered, requests, expect; /* answered: events (a batch carries several) */
static FILE *arrivals; /* --log */

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Each CloudEvent's "subject" in a structured or batched body. */
static void log_arrival(h2o_iovec_t body)
{
    static const char key[] = "\"subject\":\"";
    long long at = now_us();
    const char *p = body.base, *end = body.base + body.len;
    int found = 0;
    while (p && p < end && (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) != NULL) {
        p += sizeof(key) - 1;
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL)
            break;
        fprintf(arrivals, "%lld %.*s\n", at, (int)(q - p), p);
        found = 1;
        p = q;
    }
    if (!found)
        fprintf(arrivals, "%lld -\n", at);
}

/* The CloudEvents a body carries: one, or a batch's several. */
static unsigned long events_in(h2o_iovec_t body)
{
    static const char key[] = "\"specversion\":";
    unsigned long n = 0;
    const char *p = body.base, *end = body.base + body.len;
    while (p && p < end && (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) != NULL) {
        n++;
        p += sizeof(key) - 1;
    }
    return n ? n : 1;
}

static endpoint_t *endpoint_of(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss);
    int port = len ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : 0;
    for (size_t i = 0; i < nendpoints; i++)
        if (endpoints[i].port == port)
            return &endpoints[i];
    return NULL;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (req->path.len >= 6 && memcmp(req->path.base, "/hang/", 6) == 0)
        return 0; /* keep it: never answered */
    if (arrivals)
        log_arrival(req->entity);
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = 0;
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, 1);
    endpoint_t *ep = endpoint_of(req);
    unsigned long events = events_in(req->entity), was = answered;
    requests++;
    answered += events;
    if (ep) {
        ep->answered += events;
        ep->last_ms = now_us() / 1000;
    }
    if (expect && was < expect && answered >= expect) {
        printf("reached %lu %lld\n", answered, now_us() / 1000);
        fflush(stdout);
    }
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = (conn_t *)h;
    c->ep->open--;
    free(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(listener->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->ep = listener->data;
    c->ep->connections++;
    if (++c->ep->open > c->ep->peak)
        c->ep->peak = c->ep->open;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    h2o_accept(&accept_ctx, h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_closed));
}

static void on_term(uv_signal_t *s, int signum)
{
    (void)signum;
    if (arrivals)
        fflush(arrivals);
    printf("answered %lu requests %lu\n", answered, requests);
    for (size_t i = 0; i < nendpoints; i++)
        printf("port %d answered %lu connections %lu peak %lu last %lld\n", endpoints[i].port,
               endpoints[i].answered, endpoints[i].connections, endpoints[i].peak,
               endpoints[i].last_ms);
    fflush(stdout);
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--expect") == 0) {
            expect = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--log") == 0) {
            arrivals = fopen(argv[i + 1], "w");
            if (arrivals)
                setvbuf(arrivals, NULL, _IOLBF, 0); /* read while the bench runs */
            if (arrivals == NULL) {
                perror(argv[i + 1]);
                return 1;
            }
        } else {
            break;
        }
    }
    if (i >= argc || argc - i > PORTS_MAX || strncmp(argv[i], "--", 2) == 0) {
        fprintf(stderr, "usage: webhook_sink [--expect N] [--log FILE] PORT...\n");
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    for (; i < argc; i++) {
        endpoint_t *ep = &endpoints[nendpoints++];
        struct sockaddr_in addr;
        ep->port = atoi(argv[i]);
        ep->listener.data = ep;
        uv_tcp_init(loop, &ep->listener);
        uv_ip4_addr("127.0.0.1", ep->port, &addr);
        if (uv_tcp_bind(&ep->listener, (struct sockaddr *)&addr, 0) != 0 ||
            uv_listen((uv_stream_t *)&ep->listener, 511, on_accept) != 0) {
            fprintf(stderr, "webhook_sink: cannot listen on %s\n", argv[i]);
            return 1;
        }
    }
    static uv_signal_t term;
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
    printf("ready\n");
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
