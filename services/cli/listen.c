/*
 * listen.c — `casebus listen --org ID`: a local webhook receiver, like `stripe
 * listen`. It binds 127.0.0.1 (a free port unless --port), subscribes itself
 * for the organisation with a fresh whsec_ secret, and prints each delivery as
 * it arrives, its Standard Webhooks signature verified and its CloudEvent read;
 * on SIGINT or SIGTERM it unsubscribes and exits 0. notify must be allowed to
 * reach the loopback ([notify] webhook_allow = 127.0.0.1/32: make run does).
 */
#include "cli.h"
#include "cbtime.h"
#include "whsig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define BODY_MAX (8 << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The value of header name in head (case-insensitive), copied into out. */
static bool header(const char *head, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            size_t l = strcspn(p, "\r\n");
            if (l >= size)
                return false;
            memcpy(out, p, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

static void print_event(json_t *ev, bool verified, bool as_json, const char *sub)
{
    if (as_json) {
        char *s = json_dumps(ev, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
        return;
    }
    json_t *data = json_object_get(ev, "data");
    const char *type = json_string_value(json_object_get(data, "type"));
    const char *subject = json_string_value(json_object_get(ev, "subject"));
    printf("%s  %-24s %-14s %-12s %s  %s\n", json_string_value(json_object_get(ev, "time")),
           type ? type : "?", subject ? subject : "-",
           json_string_value(json_object_get(ev, "addressee")), sub,
           verified ? "signature ok" : "SIGNATURE INVALID");
}

/* One request: read, verify, print, answer. */
static void serve(int fd, const char *secret, bool as_json)
{
    static char head[HEAD_MAX + 1];
    size_t used = 0;
    char *end = NULL;
    head[0] = '\0'; /* not the last request's */
    while (used < HEAD_MAX && (end = strstr(head, "\r\n\r\n")) == NULL) {
        ssize_t n = read(fd, head + used, HEAD_MAX - used);
        if (n <= 0)
            return;
        used += (size_t)n;
        head[used] = '\0';
    }
    if (end == NULL)
        return;
    char len_s[32] = "0", id[128] = "", ts[32] = "", sig[512] = "", sub[80] = "", ctype[128] = "";
    header(head, "Content-Length", len_s, sizeof(len_s));
    header(head, "webhook-id", id, sizeof(id));
    header(head, "webhook-timestamp", ts, sizeof(ts));
    header(head, "webhook-signature", sig, sizeof(sig));
    header(head, "webhook-subscription", sub, sizeof(sub));
    header(head, "Content-Type", ctype, sizeof(ctype));
    size_t len = strtoul(len_s, NULL, 10);
    const char *status = "200 OK";
    if (len > BODY_MAX) {
        status = "413 Payload Too Large";
    } else {
        char *body = malloc(len + 1);
        size_t have = used - (size_t)(end + 4 - head);
        if (body == NULL)
            return;
        memcpy(body, end + 4, have < len ? have : len);
        while (have < len) {
            ssize_t n = read(fd, body + have, len - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        body[len] = '\0';
        bool verified = have == len && cb_whsig_verify(secret, id, ts, body, len, sig);
        json_t *doc = json_loads(body, 0, NULL);
        if (!verified)
            status = "401 Unauthorized";
        if (json_is_array(doc)) {
            size_t i;
            json_t *ev;
            json_array_foreach(doc, i, ev) print_event(ev, verified, as_json, sub);
        } else if (json_is_object(doc)) {
            print_event(doc, verified, as_json, sub);
        } else {
            printf("a request that is not a CloudEvent (%s, %zu bytes)\n", ctype, len);
        }
        fflush(stdout);
        json_decref(doc);
        free(body);
    }
    char answer[128];
    int n = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    if (write(fd, answer, (size_t)n) < 0)
        return;
}

static int unsubscribe(const cb_config_t *cfg, const char *id)
{
    Casebus__V1__Unsubscribe u = CASEBUS__V1__UNSUBSCRIBE__INIT;
    u.subscription_id = (char *)id;
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.request_id = "cli";
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE;
    req.unsubscribe = &u;
    /* On the way out: a notify stopping at the same moment (the whole process
     * group signalled) must not hold the listener for the usual 30 s. */
    Casebus__V1__ControlReply *rep = cli_call_within(cfg, "notify", &req, 3000);
    int rc = rep && rep->ok ? 0 : 1;
    if (rep)
        casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

int cli_listen(const cb_config_t *cfg, int argc, char **argv)
{
    const char *org = NULL, *events = NULL;
    int port = 0;
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
            org = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else {
            fprintf(stderr, "usage: casebus listen --org ID [--events T,T…] [--port N] [--json]\n");
            return 2;
        }
    }
    if (org == NULL || port < 0 || port > 65535) {
        fprintf(stderr, "usage: casebus listen --org ID [--events T,T…] [--port N] [--json]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "casebus listen: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        return 1;
    }
    char secret[CLI_WHSEC_MAX], url[64];
    if (cli_make_whsec(secret) != 0) {
        close(fd);
        return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    Casebus__V1__Subscribe s = CASEBUS__V1__SUBSCRIBE__INIT;
    char *types[CLI_MAX_TYPES], buf[1024];
    s.org_id = (char *)org;
    s.url = url;
    s.secret = secret;
    snprintf(buf, sizeof(buf), "%s", events ? events : "");
    s.n_event_types = cli_split_types(buf, types);
    s.event_types = types;
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.request_id = "cli";
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE;
    req.subscribe = &s;
    Casebus__V1__ControlReply *rep = cli_call(cfg, "notify", &req);
    if (rep == NULL || !rep->ok) {
        if (rep)
            fprintf(stderr, "casebus listen: subscribe refused (%s): %s\n", rep->error_field,
                    rep->message);
        if (rep)
            casebus__v1__control_reply__free_unpacked(rep, NULL);
        close(fd);
        return 1;
    }
    char sub_id[80];
    snprintf(sub_id, sizeof(sub_id), "%s", rep->id);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    printf("listening on %s for %s as subscription %s (signatures verified; Ctrl-C stops and "
           "unsubscribes)\n",
           url, org, sub_id);
    fflush(stdout);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!stop) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0)
            continue;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        struct timeval tv = {5, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        serve(c, secret, as_json);
        close(c);
    }
    close(fd);
    sodium_memzero(secret, sizeof(secret));
    int rc = unsubscribe(cfg, sub_id);
    if (rc != 0)
        fprintf(stderr, "casebus listen: could not remove subscription %s: casebus unsubscribe %s\n",
                sub_id, sub_id);
    return rc;
}
