/*
 * status.c — `casebus status`: every daemon's own status answer, gathered into
 * one JSON object, with each consumer's upstreams judged against what their
 * producer says of itself.
 *
 * An upstream is "stalled" when its producer is up and ahead of the consumer
 * (log_head ≥ next_seq) but has not answered that consumer for more than
 * 3 × max_wait_ms: a healthy long poll is answered at least every max_wait_ms.
 * Its lag is recomputed from the producer's own head, which is fresher than the
 * head the consumer saw in its last answer. Exit 1 when a daemon is down or an
 * upstream is stalled, so a monitoring script can use the exit status alone.
 *
 * Where a supervisor runs the daemons (make run: casebus-supervisor), its state
 * file says what it holds: each daemon's entry gains "supervisor" (state,
 * restarts, how long down, last exit), and a daemon the supervisor names as
 * degraded (down longer than its backoff), or a supervisor that is gone, is
 * said on stderr and exits 1 too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <stdarg.h>
#include <sys/types.h>
#include <unistd.h>

#include <curl/curl.h>

#include "casebus/v1/control.pb-c.h"
#include "cli.h"
#include "cbtime.h"
#include "control.h"

#define STATUS_TIMEOUT_MS 3000
#define BODY_MAX 65536

typedef struct body {
    char data[BODY_MAX];
    size_t len;
} body_t;

static size_t into_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n >= sizeof(b->data))
        return 0; /* too large: curl fails the transfer */
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* intake answers on its control socket when it has one ([intake] control_bind);
 * otherwise its /healthz carries the same log head and upstreams. */
static json_t *intake_status(const cb_config_t *cfg)
{
    const char *listen = cb_config_get(cfg, "intake", "http_listen", "127.0.0.1:8080");
    bool any = strncmp(listen, "0.0.0.0:", 8) == 0;
    char url[300];
    snprintf(url, sizeof(url), "http://%s%s/healthz", any ? "127.0.0.1:" : "",
             any ? listen + 8 : listen);
    static body_t body;
    body.len = 0;
    body.data[0] = '\0';
    CURL *c = curl_easy_init();
    long code = 0;
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)STATUS_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, into_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)&body);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
    }
    json_t *h = code == 200 ? json_loads(body.data, 0, NULL) : NULL;
    if (h == NULL || !json_is_integer(json_object_get(h, "log_head"))) {
        json_decref(h);
        return NULL;
    }
    json_t *st = json_pack("{s:s,s:O,s:s,s:O*}", "daemon", "intake", "log_head",
                           json_object_get(h, "log_head"), "http", listen, "upstreams",
                           json_object_get(h, "upstreams"));
    json_decref(h);
    return st;
}

static json_t *control_status(const cb_config_t *cfg, const char *daemon)
{
    char dflt[64];
    snprintf(dflt, sizeof(dflt), "ipc://var/%s.ctl", daemon);
    const char *ep = cb_config_get(cfg, daemon, "control_bind", NULL);
    if (ep == NULL && strcmp(daemon, "intake") == 0)
        return intake_status(cfg);
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__StatusRequest st = CASEBUS__V1__STATUS_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_STATUS;
    req.status = &st;
    Casebus__V1__ControlReply *rep;
    cb_error_t e;
    if (cb_control_call(daemon, ep ? ep : dflt, &req, STATUS_TIMEOUT_MS, &rep, &e) != 0) {
        fprintf(stderr, "casebus status: %s\n", e.message);
        return NULL;
    }
    json_t *doc = rep->status_json ? json_loads(rep->status_json, 0, NULL) : NULL;
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return json_is_object(doc) ? doc : (json_decref(doc), NULL);
}

/* Judges one upstream against its producer's status (NULL when it is down or
 * not part of this deployment). Returns true when it is stalled. */
static bool judge_upstream(json_t *up, const json_t *producer, const char *consumer)
{
    json_int_t next = json_integer_value(json_object_get(up, "next_seq"));
    json_int_t age = json_integer_value(json_object_get(up, "last_answer_age_ms"));
    json_int_t wait = json_integer_value(json_object_get(up, "max_wait_ms"));
    const json_t *h = producer ? json_object_get(producer, "log_head") : NULL;
    if (!json_is_integer(h)) {
        json_object_set_new(up, "state", json_string("producer_down"));
        return false;
    }
    json_int_t head = json_integer_value(h);
    json_object_set_new(up, "head", json_integer(head));
    json_object_set_new(up, "lag", json_integer(head + 1 > next ? head + 1 - next : 0));
    bool stalled = head >= next && age > 3 * wait;
    json_object_set_new(up, "state", json_string(stalled ? "stalled"
                                                 : head >= next ? "catching_up"
                                                                : "current"));
    if (stalled)
        fprintf(stderr,
                "casebus status: %s is stalled on %s: %lld events behind, no answer for "
                "%lld ms (max_wait %lld ms)\n",
                consumer, json_string_value(json_object_get(up, "producer")),
                (long long)(head + 1 - next), (long long)age, (long long)wait);
    return stalled;
}

#define SUPERVISOR_STALE_MS 3000

/* Adds the supervisor's view to all; returns 1 when it reports trouble. */
static int supervisor_status(const cb_config_t *cfg, json_t *all)
{
    char path[1024];
    if (cb_config_path_near(cfg, "supervisor", "state_file", "supervisor.json", path,
                            sizeof(path)) != 0)
        return 0;
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL) /* no supervisor in this deployment (systemd, compose) */
        return 0;
    const char *state = json_string_value(json_object_get(doc, "state"));
    json_int_t pid = json_integer_value(json_object_get(doc, "pid"));
    json_int_t age = cb_now_ms() - json_integer_value(json_object_get(doc, "updated_at_ms"));
    int rc = 0;
    bool gone = state && strcmp(state, "stopped") != 0 && age > SUPERVISOR_STALE_MS &&
                (pid <= 0 || kill((pid_t)pid, 0) != 0);
    if (gone) {
        fprintf(stderr, "casebus status: the supervisor (pid %lld) is not running: nothing "
                        "restarts a daemon that dies\n", (long long)pid);
        rc = 1;
    }
    json_object_set_new(all, "supervisor",
                        json_pack("{s:I,s:s,s:I}", "pid", pid, "state",
                                  gone ? "gone" : state ? state : "unknown", "updated_age_ms",
                                  age));
    json_t *daemons = json_object_get(doc, "daemons"), *d;
    size_t i;
    json_array_foreach(daemons, i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        json_t *mine = name ? json_object_get(all, name) : NULL;
        if (mine == NULL || gone)
            continue;
        json_t *view = json_deep_copy(d);
        json_object_del(view, "name");
        json_object_set_new(mine, "supervisor", view);
        if (json_is_true(json_object_get(d, "degraded"))) {
            fprintf(stderr,
                    "casebus status: %s has been down for %.1f s, longer than its %.1f s backoff "
                    "(supervisor: %lld restarts, last: %s; see %s)\n",
                    name, (double)json_integer_value(json_object_get(d, "down_ms")) / 1000.0,
                    (double)json_integer_value(json_object_get(d, "delay_ms")) / 1000.0,
                    (long long)json_integer_value(json_object_get(d, "restarts")),
                    json_string_value(json_object_get(d, "last_exit")),
                    json_string_value(json_object_get(d, "log")));
            rc = 1;
        }
    }
    json_decref(doc);
    return rc;
}

/* ---- the table for people ---- */

typedef struct out {
    bool colour;
    int problems;
} out_t;

static void problem(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(out_t *o, const char *fmt, ...)
{
    if (o->problems++ == 0)
        printf("%sPROBLEMS%s\n", o->colour ? "\033[1;31m" : "", o->colour ? "\033[0m" : "");
    va_list ap;
    va_start(ap, fmt);
    printf("  %s", o->colour ? "\033[31m" : "");
    vprintf(fmt, ap);
    printf("%s\n", o->colour ? "\033[0m" : "");
    va_end(ap);
}

static json_int_t num(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_integer_value(v);
}

static void problems(out_t *o, json_t *all)
{
    const char *name;
    json_t *st;
    json_object_foreach(all, name, st) {
        if (strcmp(name, "supervisor") == 0) {
            if (strcmp(json_string_value(json_object_get(st, "state")), "gone") == 0)
                problem(o, "the supervisor (pid %lld) is gone: nothing restarts a daemon that dies",
                        (long long)num(st, "pid", NULL));
            continue;
        }
        if (json_is_false(json_object_get(st, "up"))) {
            problem(o, "%s is down (its control socket does not answer)", name);
            continue;
        }
        json_t *sup = json_object_get(st, "supervisor");
        if (json_is_true(json_object_get(sup, "degraded")))
            problem(o, "%s has been down %.1f s, longer than its backoff (last exit: %s)", name,
                    (double)num(sup, "down_ms", NULL) / 1000.0,
                    json_string_value(json_object_get(sup, "last_exit")));
        json_t *up;
        size_t k;
        json_array_foreach(json_object_get(st, "upstreams"), k, up) {
            const char *state = json_string_value(json_object_get(up, "state"));
            const char *prod = json_string_value(json_object_get(up, "producer"));
            if (state && strcmp(state, "stalled") == 0)
                problem(o, "%s is stalled on %s: %lld events behind, no answer for %.1f s", name,
                        prod, (long long)num(up, "lag", NULL),
                        (double)num(up, "last_answer_age_ms", NULL) / 1000.0);
            else if (json_is_string(json_object_get(up, "problem")))
                problem(o, "%s on %s: %s", name, prod,
                        json_string_value(json_object_get(up, "problem")));
        }
        if (strcmp(name, "notify") == 0 && num(st, "dead_letters", NULL) > 0)
            problem(o, "notify: %lld dead letters (casebus deadletters; casebus redeliver ID)",
                    (long long)num(st, "dead_letters", NULL));
        json_t *ny = json_object_get(st, "calendar_next_year");
        if (strcmp(name, "deadline") == 0 && json_is_true(json_object_get(ny, "alarm")))
            problem(o, "deadline: no State Council notice for %lld: limits into it are counted by "
                       "%s (casebus calendar import FILE)",
                    (long long)num(ny, "year", NULL),
                    json_string_value(json_object_get(ny, "counted_by")));
    }
    if (o->problems)
        printf("\n");
}

static void upstreams_cell(json_t *st, char *cell, size_t size)
{
    size_t used = 0;
    json_t *up;
    size_t k;
    cell[0] = '\0';
    json_array_foreach(json_object_get(st, "upstreams"), k, up) {
        int n = snprintf(cell + used, size - used, "%s%s %s lag %lld, %.1fs", used ? "; " : "",
                         json_string_value(json_object_get(up, "producer")),
                         json_string_value(json_object_get(up, "state")),
                         (long long)num(up, "lag", NULL),
                         (double)num(up, "last_answer_age_ms", NULL) / 1000.0);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(cell, size, "-");
}

static void detail_cell(const char *name, json_t *st, char *cell, size_t size)
{
    cell[0] = '\0';
    if (strcmp(name, "deadline") == 0) {
        json_t *y = json_object_get(st, "calendar_years"), *v;
        size_t k, n = json_array_size(y);
        json_int_t first = 0, last = 0;
        json_array_foreach(y, k, v) {
            if (k == 0)
                first = json_integer_value(v);
            last = json_integer_value(v);
        }
        json_t *ny = json_object_get(st, "calendar_next_year");
        snprintf(cell, size,
                 "limits open %lld, yellow %lld, red %lld, paused %lld; calendar %lld-%lld (%zu "
                 "years), %lld by %s",
                 (long long)num(st, "obligations", "open"), (long long)num(st, "obligations", "yellow"),
                 (long long)num(st, "obligations", "red"), (long long)num(st, "obligations", "paused"),
                 (long long)first, (long long)last, n, (long long)num(ny, "year", NULL),
                 json_string_value(json_object_get(ny, "counted_by")));
    } else if (strcmp(name, "notify") == 0) {
        snprintf(cell, size, "subscriptions %lld, pending %lld, in flight %lld, dead letters %lld",
                 (long long)num(st, "subscriptions", NULL),
                 (long long)num(st, "pending_deliveries", NULL),
                 (long long)num(st, "in_flight", NULL), (long long)num(st, "dead_letters", NULL));
    } else if (strcmp(name, "intake") == 0 && json_is_string(json_object_get(st, "http"))) {
        snprintf(cell, size, "http %s", json_string_value(json_object_get(st, "http")));
    }
    json_t *sup = json_object_get(st, "supervisor");
    if (sup && num(sup, "restarts", NULL) > 0) {
        size_t used = strlen(cell);
        snprintf(cell + used, size - used, "%srestarted %lld times", used ? "; " : "",
                 (long long)num(sup, "restarts", NULL));
    }
}

static void print_table(json_t *all, bool colour)
{
    out_t o = {colour, 0};
    problems(&o, all);
    printf("%-9s %-5s %-9s %-44s %s\n", "DAEMON", "STATE", "LOG HEAD", "UPSTREAMS (state, lag, last answer)",
           "DETAIL");
    const char *name;
    json_t *st;
    json_object_foreach(all, name, st) {
        if (strcmp(name, "supervisor") == 0)
            continue;
        bool up = !json_is_false(json_object_get(st, "up"));
        char ups[512], detail[512], head[24];
        if (up) {
            upstreams_cell(st, ups, sizeof(ups));
            detail_cell(name, st, detail, sizeof(detail));
            snprintf(head, sizeof(head), "%lld", (long long)num(st, "log_head", NULL));
        } else {
            snprintf(ups, sizeof(ups), "-");
            snprintf(detail, sizeof(detail), "-");
            snprintf(head, sizeof(head), "-");
        }
        printf("%-9s %s%-5s%s %-9s %-44s %s\n", name, !up && colour ? "\033[31m" : "",
               up ? "up" : "DOWN", !up && colour ? "\033[0m" : "", head, ups, detail);
    }
    json_t *sup = json_object_get(all, "supervisor");
    if (sup)
        printf("\nsupervisor pid %lld: %s\n", (long long)num(sup, "pid", NULL),
               json_string_value(json_object_get(sup, "state")));
    if (o.problems == 0)
        printf("\nno problems\n");
}

int cli_status(const cb_config_t *cfg, int argc, char **argv)
{
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else {
            fprintf(stderr, "usage: casebus status [--json]\n");
            return 2;
        }
    }
    static const char *daemons[] = {"intake", "router", "deadline", "notify"};
    json_t *all = json_object();
    if (all == NULL)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++) {
        if (!cb_config_has_section(cfg, daemons[i]))
            continue;
        json_t *st = control_status(cfg, daemons[i]);
        if (st == NULL) {
            st = json_pack("{s:b}", "up", 0);
            rc = 1;
        }
        json_object_set_new(all, daemons[i], st);
    }
    const char *name;
    json_t *st;
    json_object_foreach(all, name, st) {
        json_t *ups = json_object_get(st, "upstreams"), *up;
        size_t k;
        json_array_foreach(ups, k, up) {
            const char *producer = json_string_value(json_object_get(up, "producer"));
            if (judge_upstream(up, producer ? json_object_get(all, producer) : NULL, name))
                rc = 1;
        }
    }
    if (supervisor_status(cfg, all) != 0)
        rc = 1;
    if (!as_json) {
        print_table(all, isatty(STDOUT_FILENO));
        json_decref(all);
        return rc;
    }
    char *text = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(all);
    if (text == NULL)
        return 1;
    printf("%s\n", text);
    free(text);
    return rc;
}
