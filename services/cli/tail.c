/*
 * tail.c — `casebus tail`: the daemons' logs as one stream, in time order,
 * pulled with the bus protocol every consumer uses (proto/casebus/v1/bus.proto),
 * so a slow reader slows only itself and never loses an event.
 *
 *   casebus tail [--from beginning|now|SEQ|TIME] [--until TIME] [--producer NAME]...
 *                [--type T] [--case ID] [--org ID] [--township CODE]
 *                [--level yellow|red|escalation] [--last N] [--count N]
 *                [--exit-at-end] [--cursor-file F] [--json] [--show-personal-data]
 *
 * Following, each producer has one long-poll fetch outstanding; what arrives
 * within a short window is printed in recorded-time order. With --exit-at-end
 * everything up to each head is read first and printed merged.
 */
#include "cli.h"
#include "cbtime.h"
#include "curve.h"
#include "evlog.h"
#include "jsonw.h"
#include "cloudevent.h"
#include "pbjson.h"
#include "casebus/v1/bus.pb-c.h"
#include "grow.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_PRODUCERS 4
#define FETCH_MAX 512
#define WAIT_MS 1000
#define NO_ANSWER_MS 2000 /* a producer silent this long while catching up is named */

typedef struct upstream {
    const char *name;
    char endpoint[512];
    void *sock;
    uint64_t next;           /* next seq to fetch */
    uint64_t head;
    int64_t last_at;         /* recorded_at of the last record received */
    bool waiting;            /* a fetch is outstanding */
    bool caught_up;
    uint64_t request_id;
} upstream_t;

typedef struct item {
    int64_t at;
    int producer;
    uint64_t seq;
    uint8_t *record; /* the envelope as the producer sent it */
    size_t len;
} item_t;

typedef struct tail {
    upstream_t up[MAX_PRODUCERS];
    int n;
    const char *type, *case_id, *org, *township, *level, *cursor_file;
    int64_t until;
    uint64_t count, printed, last;
    bool json, exit_at_end, personal, colour;
    cb_cloudevents_t ce; /* --json prints CloudEvents */
    item_t *items;
    size_t nitems, cap;
} tail_t;

static const char *const all_producers[] = {"intake", "router", "deadline", "notify"};

/* ---- the bus protocol ---- */

static int send_request(upstream_t *u, const Casebus__V1__BusRequest *req)
{
    uint8_t buf[128];
    size_t len = casebus__v1__bus_request__get_packed_size(req);
    casebus__v1__bus_request__pack(req, buf);
    return zmq_send(u->sock, buf, len, 0) < 0 ? -1 : 0;
}

static int send_fetch(upstream_t *u, uint64_t from, uint32_t wait_ms)
{
    Casebus__V1__Fetch f = CASEBUS__V1__FETCH__INIT;
    f.request_id = ++u->request_id;
    f.from_seq = from;
    f.max_events = FETCH_MAX;
    f.max_wait_ms = wait_ms;
    Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_FETCH;
    req.fetch = &f;
    u->waiting = send_request(u, &req) == 0;
    return u->waiting ? 0 : -1;
}

/* Receives one answer: its header, and each record via visit. Returns the
 * header (caller frees) or NULL on a broken answer. */
static Casebus__V1__BatchHeader *recv_answer(upstream_t *u, tail_t *t,
                                             int (*visit)(tail_t *, int, const uint8_t *, size_t),
                                             int idx)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, u->sock, 0) < 0) {
        zmq_msg_close(&m);
        return NULL;
    }
    Casebus__V1__BatchHeader *h =
        casebus__v1__batch_header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    bool more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, u->sock, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (h && visit)
            visit(t, idx, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
    }
    u->waiting = false;
    return h;
}

/* One synchronous exchange (start-up questions: the head, a time). */
static Casebus__V1__BatchHeader *ask(upstream_t *u, const Casebus__V1__BusRequest *req)
{
    if (send_request(u, req) != 0)
        return NULL;
    zmq_pollitem_t pi = {u->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, 10000) <= 0)
        return NULL;
    return recv_answer(u, NULL, NULL, 0);
}

/* ---- filters and output ---- */

static bool has_value(json_t *j, const char *key, const char *want)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (has_value(v, key, want)) return true;
        return false;
    }
    if (!json_is_object(j))
        return false;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, key) == 0 && json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
        if ((json_is_object(v) || json_is_array(v)) && has_value(v, key, want))
            return true;
    }
    return false;
}

/* The filters on the envelope's own fields. */
static bool head_wanted(const tail_t *t, const Casebus__V1__Envelope *env)
{
    if (t->type && strcmp(cb_event_type(env), t->type) != 0)
        return false;
    if (t->case_id && strcmp(env->case_id ? env->case_id : "", t->case_id) != 0)
        return false;
    return !(t->until && env->recorded_at_ms > t->until);
}

/* The filters on the event's members, read from its document. */
static bool event_wanted(const tail_t *t, json_t *doc)
{
    json_t *ev = json_object_get(doc, "event");
    if (t->org && !has_value(ev, "org_id", t->org))
        return false;
    if (t->township && !has_value(ev, "township_code", t->township))
        return false;
    if (t->level) {
        json_t *alert = json_object_get(ev, "alert");
        const char *lv = json_string_value(json_object_get(alert, "level"));
        if (lv == NULL || strcmp(lv, t->level) != 0)
            return false;
    }
    return true;
}

static const char *str_at(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void cli_print_event(json_t *doc, bool colour_on)
{
    json_t *ev = json_object_get(doc, "event");
    const char *type = str_at(doc, "type", NULL);
    const char *colour = "";
    json_t *ob = json_object_get(ev, "obligation");
    const char *level = str_at(json_object_get(ev, "alert"), "level", NULL);
    if (colour_on && level)
        colour = strcmp(level, "yellow") == 0 ? "\033[33m" : "\033[31m";
    printf("%s%s %s#%lld %s", colour, str_at(doc, "recorded_at", NULL),
           str_at(doc, "producer", NULL),
           (long long)json_integer_value(json_object_get(doc, "seq")), type ? type : "?");
    const char *case_id = str_at(doc, "case_id", NULL);
    if (case_id && *case_id)
        printf(" case=%s", case_id);
    if (ob) {
        printf(" rule=%s responsible=%s due=%s", str_at(ob, "rule_id", NULL),
               str_at(ob, "responsible", "org_id") ? str_at(ob, "responsible", "org_id") : "-",
               str_at(ob, "due_local", NULL));
        json_t *alert = json_object_get(ev, "alert");
        if (alert)
            printf(" late=%s", json_is_true(json_object_get(alert, "late")) ? "yes" : "no");
    }
    const char *receiver = str_at(ev, "receiver", "org_id");
    if (receiver && !ob)
        printf(" receiver=%s", receiver);
    const char *competent = str_at(ev, "competent", "org_id");
    if (competent && *competent)
        printf(" competent=%s", competent);
    const char *lead = str_at(ev, "lead", "org_id"), *reviewer = str_at(ev, "reviewer", "org_id");
    if (lead && *lead)
        printf(" lead=%s helpers=%zu", lead, json_array_size(json_object_get(ev, "helpers")));
    if (reviewer && *reviewer)
        printf(" reviewer=%s", reviewer);
    const char *order = str_at(ev, "supervision_id", NULL);
    if (order && *order)
        printf(" order=%s", order);
    const char *from = str_at(ev, "from_state", NULL), *to = str_at(ev, "to_state", NULL);
    if (from && to)
        printf(" %s->%s", from, to);
    else if (str_at(ev, "state", NULL) && receiver)
        printf(" state=%s", str_at(ev, "state", NULL));
    printf("%s\n", *colour ? "\033[0m" : "");
}

/* Prints one event: with --json the CloudEvent a webhook carries, written
 * straight from the message (no document is built for it); else the line for
 * people, from doc. */
static void emit(tail_t *t, const Casebus__V1__Envelope *env, json_t *doc)
{
    if (t->count && t->printed >= t->count)
        return;
    if (t->json) {
        static cb_jsonw_t line;
        line.len = 0;
        if (cb_cloudevent_write(&line, env, t->personal, &t->ce, NULL, 0) == 0 &&
            cb_jsonw_raw(&line, "\n", 1) == 0)
            fwrite(line.text, 1, line.len, stdout);
        else
            fprintf(stderr, "casebus: out of memory writing event %s#%llu\n",
                    env->producer ? env->producer : "", (unsigned long long)env->seq);
    } else {
        cli_print_event(doc, t->colour);
    }
    t->printed++;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* An envelope's seq and recorded_at_ms (fields 3 and 5) read off its bytes
 * without decoding the body. */
static int peek_envelope(const uint8_t *p, size_t len, uint64_t *seq, int64_t *at)
{
    const uint8_t *end = p + len;
    *seq = 0, *at = 0;
    while (p < end) {
        uint64_t key, v;
        if (varint(&p, end, &key) != 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (varint(&p, end, &v) != 0)
                return -1;
            if (key >> 3 == 3)
                *seq = v;
            else if (key >> 3 == 5)
                *at = (int64_t)v;
            break;
        case 1:
        case 5:
            if ((size_t)(end - p) < ((key & 7) == 1 ? 8u : 4u))
                return -1;
            p += (key & 7) == 1 ? 8 : 4;
            break;
        case 2:
            if (varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
                return -1;
            p += v;
            break;
        default: return -1;
        }
    }
    return *seq ? 0 : -1;
}

/* Keeps a record's bytes until it can be printed in time order: decoded then,
 * one at a time, so a batch of 512 is never 512 documents alive at once. */
static int collect(tail_t *t, int idx, const uint8_t *data, size_t len)
{
    int64_t at;
    uint64_t seq;
    if (peek_envelope(data, len, &seq, &at) != 0) {
        fprintf(stderr, "casebus: %s sent a record that does not decode\n", t->up[idx].name);
        return -1;
    }
    t->up[idx].next = seq + 1;
    t->up[idx].last_at = at;
    if (CB_GROW(t->items, t->cap, t->nitems, 1024) != 0)
        return -1;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    t->items[t->nitems++] = (item_t){at, idx, seq, copy, len};
    return 0;
}

/* Decodes an item and asks the filters; prints it too when print is set.
 * Returns whether the filters want it. */
static bool item_show(tail_t *t, const item_t *it, bool print)
{
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, it->len, it->record);
    if (env == NULL) {
        fprintf(stderr, "casebus: %s#%llu does not decode\n", t->up[it->producer].name,
                (unsigned long long)it->seq);
        return false;
    }
    bool want = head_wanted(t, env);
    json_t *doc = NULL;
    if (want && (t->org || t->township || t->level || (print && !t->json))) {
        doc = cb_envelope_to_json(env, t->personal);
        want = doc != NULL && event_wanted(t, doc);
    }
    if (want && print)
        emit(t, env, doc);
    json_decref(doc);
    casebus__v1__envelope__free_unpacked(env, NULL);
    return want;
}

static int by_time(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->producer != y->producer)
        return x->producer < y->producer ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Prints what was collected, merged by time (the last `last` only, when
 * asked), up to before `below` (INT64_MAX: all); the rest waits. */
static void flush(tail_t *t, int64_t below)
{
    qsort(t->items, t->nitems, sizeof(item_t), by_time);
    size_t upto = 0;
    while (upto < t->nitems && t->items[upto].at < below)
        upto++;
    size_t from = 0;
    if (t->last) { /* the last `last` that the filters want */
        uint64_t found = 0;
        for (from = upto; from > 0 && found < t->last; from--) {
            found += item_show(t, &t->items[from - 1], false);
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < t->nitems; i++) {
        item_t *it = &t->items[i];
        bool cut = t->count && t->printed >= t->count;
        if (i >= upto && !cut) { /* waits for what is still to come */
            t->items[kept++] = *it;
            continue;
        }
        if (cut) {
            /* Cut by --count: the cursor resumes at the first event not shown. */
            if (it->seq < t->up[it->producer].next)
                t->up[it->producer].next = it->seq;
        } else if (i >= from) {
            item_show(t, it, true);
        }
        free(it->record);
    }
    t->nitems = kept;
    if (t->nitems == 0)
        t->last = 0;
    fflush(stdout);
}

/* While catching up, what can be printed already: each producer's records come
 * in order, so nothing still to come from one not caught up is older than the
 * last it sent. (--last must see the end first.) */
static int64_t printable_below(const tail_t *t)
{
    if (t->last)
        return INT64_MIN;
    int64_t below = INT64_MAX;
    for (int i = 0; i < t->n; i++)
        if (!t->up[i].caught_up && t->up[i].last_at < below)
            below = t->up[i].last_at;
    return below;
}

/* ---- cursor file: "producer next_seq" lines ---- */

static void cursor_load(tail_t *t)
{
    FILE *f = fopen(t->cursor_file, "r");
    if (f == NULL)
        return;
    char name[32];
    unsigned long long next;
    while (fscanf(f, "%31s %llu", name, &next) == 2)
        for (int i = 0; i < t->n; i++)
            if (strcmp(t->up[i].name, name) == 0)
                t->up[i].next = next;
    fclose(f);
}

static int cursor_save(const tail_t *t)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", t->cursor_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%s %llu\n", t->up[i].name, (unsigned long long)t->up[i].next);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, t->cursor_file) == 0 ? 0 : -1;
}

/* ---- where to start ---- */

static int start_at(tail_t *t, upstream_t *u, const char *from)
{
    Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
    Casebus__V1__Fetch f = CASEBUS__V1__FETCH__INIT;
    Casebus__V1__Locate l = CASEBUS__V1__LOCATE__INIT;
    cb_error_t err;
    if (strcmp(from, "beginning") == 0) {
        u->next = 1;
        return 0;
    }
    char *end;
    unsigned long long seq = strtoull(from, &end, 10);
    if (*from && *end == '\0') {
        u->next = seq ? seq : 1;
        return 0;
    }
    if (strcmp(from, "now") == 0) {
        req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_FETCH;
        req.fetch = &f; /* from_seq 0: "tell me the head" */
    } else {
        if (cb_time_parse(from, &l.time_ms, &err) != 0) {
            fprintf(stderr, "casebus: --from: want beginning, now, a sequence or a time: %s\n",
                    err.message);
            return 2;
        }
        req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_LOCATE;
        req.locate = &l;
    }
    Casebus__V1__BatchHeader *h = ask(u, &req);
    if (h == NULL) {
        fprintf(stderr, "casebus: %s at %s does not answer: is it running?\n", u->name,
                u->endpoint);
        return 1;
    }
    u->next = strcmp(from, "now") == 0 ? h->head_seq + 1 : h->first_seq;
    if (u->next == 0)
        u->next = 1;
    casebus__v1__batch_header__free_unpacked(h, NULL);
    (void)t;
    return 0;
}

static int add_producer(tail_t *t, const cb_config_t *cfg, const char *name, void *zctx)
{
    if (t->n == MAX_PRODUCERS)
        return 0;
    upstream_t *u = &t->up[t->n];
    char dflt[64];
    snprintf(dflt, sizeof(dflt), "ipc://var/%s.bus", name);
    snprintf(u->endpoint, sizeof(u->endpoint), "%s", cb_config_get(cfg, name, "bus_bind", dflt));
    /* A daemon bound to all interfaces (tcp, star, port) is reached on the loopback. */
    char *star = strstr(u->endpoint, "://*:");
    if (star) {
        char port[16];
        snprintf(port, sizeof(port), "%s", star + 5);
        snprintf(star, sizeof(u->endpoint) - (size_t)(star - u->endpoint), "://127.0.0.1:%s",
                 port);
    }
    u->name = name;
    u->sock = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    cb_error_t err;
    if (u->sock && cb_curve_client(u->sock, name, &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        return 1;
    }
    if (u->sock == NULL || zmq_setsockopt(u->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_connect(u->sock, u->endpoint) != 0) {
        fprintf(stderr, "casebus: cannot connect to %s: %s\n", u->endpoint,
                zmq_strerror(errno));
        return 1;
    }
    t->n++;
    return 0;
}

/* The operator key in $CASEBUS_OPERATOR_KEY hashes to the configuration's
 * [cli] operator_key_sha256 (compared in constant time). */
static bool operator_key_ok(const cb_config_t *cfg)
{
    const char *key = getenv("CASEBUS_OPERATOR_KEY");
    const char *want = cb_config_get(cfg, "cli", "operator_key_sha256", NULL);
    if (key == NULL || want == NULL || strlen(want) != 2 * crypto_hash_sha256_BYTES ||
        sodium_init() < 0)
        return false;
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    return sodium_memcmp(hex, want, sizeof(hex) - 1) == 0;
}

static void tail_usage(FILE *to)
{
    fprintf(to,
            "usage: casebus tail [--from beginning|now|SEQ|TIME] [--until TIME]\n"
            "                    [--producer intake|router|deadline|notify]...\n"
            "                    [--type EVENT] [--case ID] [--org ID] [--township CODE]\n"
            "                    [--level yellow|red|escalation] [--last N] [--count N]\n"
            "                    [--exit-at-end] [--cursor-file F] [--json]\n"
            "                    [--show-personal-data]\n"
            "\n"
            "Every daemon's log as one live stream in time order (default: from now,\n"
            "following). --exit-at-end stops once caught up; --cursor-file resumes\n"
            "where the last run stopped. --json prints each event as a CloudEvent, one\n"
            "per line (docs/events.md). Reporters' personal data is masked unless\n"
            "--show-personal-data is given. Behind CURVE (make run) the daemons decide\n"
            "by this program's key: an operator's (keys_dir/operators, or $CASEBUS_KEY)\n"
            "reads it, an observer's gets it masked. Without CURVE, --show-personal-data\n"
            "needs the key in $CASEBUS_OPERATOR_KEY whose SHA-256 is [cli]\n"
            "operator_key_sha256.\n"
            "\n"
            "example: casebus tail --producer deadline --level red --json\n");
}

int cli_tail(const cb_config_t *cfg, int argc, char **argv)
{
    static tail_t t; /* zeroed; large */
    memset(&t, 0, sizeof(t));
    const char *from = "now", *names[MAX_PRODUCERS];
    int nnames = 0;
    cb_error_t err;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--help") == 0) {
            tail_usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            t.json = true, takes = false;
        } else if (strcmp(a, "--exit-at-end") == 0) {
            t.exit_at_end = true, takes = false;
        } else if (strcmp(a, "--show-personal-data") == 0) {
            /* Behind CURVE the producers decide by this program's key (an
             * observer's gets masked bodies); without it, the operator key. */
            if (!cb_curve_on() && !operator_key_ok(cfg)) {
                fprintf(stderr, "casebus: --show-personal-data needs the operator key in "
                                "CASEBUS_OPERATOR_KEY (its SHA-256 is [cli] operator_key_sha256 "
                                "in the configuration)\n");
                return 2;
            }
            t.personal = true, takes = false;
        } else if (v == NULL) {
            tail_usage(stderr);
            return 2;
        } else if (strcmp(a, "--from") == 0) {
            from = v;
        } else if (strcmp(a, "--until") == 0) {
            if (cb_time_parse(v, &t.until, &err) != 0) {
                fprintf(stderr, "casebus: --until: %s\n", err.message);
                return 2;
            }
        } else if (strcmp(a, "--producer") == 0 && nnames < MAX_PRODUCERS) {
            bool known = false;
            for (size_t k = 0; k < 4; k++)
                known = known || strcmp(v, all_producers[k]) == 0;
            if (!known) {
                fprintf(stderr, "casebus: --producer '%s' is not a producer: intake, router, "
                                "deadline or notify\n", v);
                return 2;
            }
            names[nnames++] = v;
        } else if (strcmp(a, "--type") == 0) {
            if (!cb_event_type_known(v)) {
                fprintf(stderr, "casebus: --type '%s' is not an event type (docs/events.md lists "
                                "them, e.g. transfer_routed, deadline_warning)\n", v);
                return 2;
            }
            t.type = v;
        } else if (strcmp(a, "--case") == 0) {
            t.case_id = v;
        } else if (strcmp(a, "--org") == 0) {
            t.org = v;
        } else if (strcmp(a, "--township") == 0) {
            t.township = v;
        } else if (strcmp(a, "--level") == 0) {
            if (strcmp(v, "yellow") && strcmp(v, "red") && strcmp(v, "escalation")) {
                fprintf(stderr, "casebus: --level is yellow, red or escalation\n");
                return 2;
            }
            t.level = v;
        } else if (strcmp(a, "--count") == 0 || strcmp(a, "--last") == 0) {
            char *end;
            unsigned long long n = strtoull(v, &end, 10);
            if (*end || n == 0) {
                fprintf(stderr, "casebus: %s wants a positive number\n", a);
                return 2;
            }
            *(strcmp(a, "--count") == 0 ? &t.count : &t.last) = n;
        } else if (strcmp(a, "--cursor-file") == 0) {
            t.cursor_file = v;
        } else {
            tail_usage(stderr);
            return 2;
        }
        if (takes)
            i++;
    }
    if (t.last && strcmp(from, "now") == 0)
        from = "beginning"; /* the last N of what is there */
    t.colour = !t.json && isatty(STDOUT_FILENO);
    static char outbuf[1 << 16];
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf)); /* flushed after each batch */
    if (t.json && cb_cloudevents_conf(&t.ce, cfg, &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        return 2;
    }
    void *zctx = zmq_ctx_new();
    int rc = 0;
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        bool asked = nnames == 0;
        for (int k = 0; k < nnames; k++)
            asked = asked || strcmp(names[k], all_producers[i]) == 0;
        if (asked && cb_config_has_section(cfg, all_producers[i]))
            rc = add_producer(&t, cfg, all_producers[i], zctx);
    }
    if (rc == 0 && t.n == 0) {
        fprintf(stderr, "casebus: no producer to tail in the configuration\n");
        rc = 2;
    }
    for (int i = 0; i < t.n && rc == 0; i++)
        rc = start_at(&t, &t.up[i], from);
    if (rc == 0 && t.cursor_file)
        cursor_load(&t);

    /* First catch up with every producer (printed merged by time), then follow. */
    bool catching_up = true;
    while (rc == 0 && !(t.count && t.printed >= t.count)) {
        zmq_pollitem_t items[MAX_PRODUCERS];
        int waiting = 0;
        for (int i = 0; i < t.n; i++) {
            upstream_t *u = &t.up[i];
            if (!u->waiting && !(catching_up && u->caught_up) &&
                send_fetch(u, u->next, catching_up ? 0 : WAIT_MS) != 0) {
                fprintf(stderr, "casebus: cannot ask %s: %s\n", u->name, zmq_strerror(errno));
                rc = 1;
            }
            items[i] = (zmq_pollitem_t){u->sock, 0, ZMQ_POLLIN, 0};
            waiting += u->waiting;
        }
        if (rc != 0)
            break;
        int n = waiting ? zmq_poll(items, t.n, catching_up ? NO_ANSWER_MS : 2 * WAIT_MS + 1000) : 0;
        if (n < 0) {
            rc = errno == EINTR ? 0 : 1;
            break;
        }
        if (n == 0 && waiting) {
            for (int i = 0; i < t.n; i++)
                if (t.up[i].waiting)
                    fprintf(stderr, "casebus: %s at %s does not answer within %d s: is it "
                                    "running?\n",
                            t.up[i].name, t.up[i].endpoint,
                            (catching_up ? NO_ANSWER_MS : 2 * WAIT_MS + 1000) / 1000);
            if (catching_up) {
                rc = 1;
                break;
            }
        }
        for (int i = 0; i < t.n && n > 0; i++) {
            upstream_t *u = &t.up[i];
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            Casebus__V1__BatchHeader *h = recv_answer(u, &t, collect, i);
            if (h == NULL)
                continue;
            if (h->error && *h->error) {
                fprintf(stderr, "casebus: %s refused: %s\n", u->name, h->error);
                rc = 1;
            }
            u->head = h->head_seq;
            u->caught_up = u->next > h->head_seq;
            casebus__v1__batch_header__free_unpacked(h, NULL);
        }
        bool all_caught_up = true;
        for (int i = 0; i < t.n; i++)
            all_caught_up = all_caught_up && t.up[i].caught_up;
        if (catching_up && !all_caught_up) {
            flush(&t, printable_below(&t));
            if (!(t.count && t.printed >= t.count))
                continue; /* else the cursor is saved below, and the loop ends */
        } else {
            flush(&t, INT64_MAX);
        }
        if (t.cursor_file && cursor_save(&t) != 0) {
            fprintf(stderr, "casebus: cannot write %s: %s\n", t.cursor_file, strerror(errno));
            rc = 1;
        }
        if (catching_up && t.exit_at_end)
            break;
        /* --until: once every producer is read past it, nothing more can match. */
        if (t.until && cb_now_ms() > t.until)
            break;
        catching_up = false;
    }
    for (size_t i = 0; i < t.nitems; i++)
        free(t.items[i].record);
    for (int i = 0; i < t.n; i++)
        zmq_close(t.up[i].sock);
    zmq_ctx_term(zctx);
    free(t.items);
    return rc;
}
