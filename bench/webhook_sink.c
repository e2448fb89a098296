/*
 * webhook_sink — a loopback webhook receiver for bench/notify.sh, on h2o's
 * libuv binding: answers every POST 200 at once, except paths under /hang/,
 * which it never answers (a dead endpoint). Counts what it answered and, on
 * SIGTERM, prints the count.
 *
 *   webhook_sink PORT
 */
#include <h2o.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static unsigned long answered;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (req->path.len >= 6 && memcmp(req->path.base, "/hang/", 6) == 0)
        return 0; /* keep it: never answered */
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = 0;
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, 1);
    answered++;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    uv_tcp_t *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(listener->loop, c) != 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, on_closed);
        return;
    }
    h2o_accept(&accept_ctx, h2o_uv_socket_create((uv_stream_t *)c, on_closed));
}

static void on_term(uv_signal_t *s, int signum)
{
    (void)signum;
    printf("answered %lu\n", answered);
    fflush(stdout);
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    uv_loop_t *loop = uv_default_loop();
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    static uv_tcp_t listener;
    struct sockaddr_in addr;
    uv_tcp_init(loop, &listener);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 511, on_accept) != 0) {
        fprintf(stderr, "webhook_sink: cannot listen on %s\n", argv[1]);
        return 1;
    }
    static uv_signal_t term;
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
    printf("ready\n");
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
