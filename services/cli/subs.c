/*
 * subs.c — notify's subscriptions and dead letters from the command line:
 *   subscribe, unsubscribe, subscriptions, deadletters, redeliver;
 *   subscription rotate-secret | update | test.
 */
#include "cli.h"
#include "cbtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int cli_make_whsec(char out[CLI_WHSEC_MAX])
{
    unsigned char key[24];
    if (sodium_init() < 0) {
        fprintf(stderr, "casebus: libsodium failed to start\n");
        return -1;
    }
    randombytes_buf(key, sizeof(key));
    memcpy(out, "whsec_", 6);
    sodium_bin2base64(out + 6, CLI_WHSEC_MAX - 6, key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(key, sizeof(key));
    return 0;
}

/* A whole number in [0, max] for option opt; -1 after saying why. */
static int count_arg(const char *opt, const char *v, unsigned long max, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*v == '\0' || *end != '\0' || *v == '-' || n > max) {
        fprintf(stderr, "casebus: %s wants a whole number from 0 to %lu, not '%s'\n", opt, max, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

size_t cli_split_types(char *buf, char **types)
{
    size_t n = 0;
    if (strcmp(buf, "all") == 0)
        return 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < CLI_MAX_TYPES; t = strtok_r(NULL, ",", &save))
        types[n++] = t;
    return n;
}

/* Sends req to notify; prints the answer (JSON lists as they come). */
static int ask(const cb_config_t *cfg, Casebus__V1__ControlRequest *req, const char *what,
               const char *made_secret)
{
    req->request_id = "cli";
    Casebus__V1__ControlReply *rep = cli_call(cfg, "notify", req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (!rep->ok)
        fprintf(stderr, "casebus: %s refused (%s): %s\n", what, rep->error_field, rep->message);
    else if (rep->status_json && *rep->status_json)
        printf("%s\n", rep->status_json);
    else
        printf("%s\n", rep->message);
    if (rep->ok && made_secret && made_secret[0])
        printf("secret %s\n(shown this once: give it to the platform; it verifies the "
               "webhook-signature header with any Standard Webhooks library)\n",
               made_secret);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static int subscribe(const cb_config_t *cfg, int argc, char **argv)
{
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__Subscribe sub = CASEBUS__V1__SUBSCRIBE__INIT;
    char *types[CLI_MAX_TYPES], events[1024] = "", made[CLI_WHSEC_MAX] = "";
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "casebus: subscribe: %s wants a value\n", o);
            return 2;
        } else if (strcmp(o, "--org") == 0) {
            sub.org_id = (char *)v;
        } else if (strcmp(o, "--url") == 0) {
            sub.url = (char *)v;
        } else if (strcmp(o, "--secret") == 0) {
            sub.secret = (char *)v;
        } else if (strcmp(o, "--events") == 0) {
            snprintf(events, sizeof(events), "%s", v);
        } else if (strcmp(o, "--channel") == 0) {
            sub.channel = (char *)v;
        } else if (strcmp(o, "--rate") == 0) {
            if (count_arg("--rate", v, 100000, &sub.rate_per_second) != 0)
                return 2;
        } else if (strcmp(o, "--batch") == 0) {
            if (count_arg("--batch", v, 100, &sub.batch_max) != 0)
                return 2;
        } else {
            fprintf(stderr, "casebus: subscribe: unknown option '%s' (casebus subscribe --help)\n",
                    o);
            return 2;
        }
    }
    bool zmq = sub.channel && strcmp(sub.channel, "zmq") == 0;
    if (sub.org_id == NULL || (sub.url == NULL && !zmq)) {
        fprintf(stderr, "casebus: subscribe needs --org and --url (or --channel zmq)\n");
        return 2;
    }
    if (sub.secret == NULL || *sub.secret == '\0') {
        if (cli_make_whsec(made) != 0)
            return 1;
        sub.secret = made;
    }
    if (sub.url == NULL)
        sub.url = "";
    sub.n_event_types = cli_split_types(events, types);
    sub.event_types = types;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE;
    req.subscribe = &sub;
    return ask(cfg, &req, "subscribe", made);
}

static void print_deliveries(const char *text)
{
    json_t *rows = json_loads(text, 0, NULL), *r;
    size_t i;
    printf("%-14s %-22s %-12s %-10s %7s %6s %9s  %s\n", "DELIVERY", "TYPE", "CASE", "STATE",
           "ATTEMPT", "STATUS", "LATENCY", "LAST ATTEMPT / ERROR");
    json_array_foreach(rows, i, r) {
        char when[40] = "-";
        json_int_t at = json_integer_value(json_object_get(r, "last_at_ms"));
        if (at)
            cb_time_format_cst(at, when, sizeof(when));
        const char *e = json_string_value(json_object_get(r, "last_error"));
        const char *c = json_string_value(json_object_get(r, "case_id"));
        printf("%-14s %-22s %-12s %-10s %7lld %6lld %7lldms  %s%s%s\n",
               json_string_value(json_object_get(r, "id")),
               json_string_value(json_object_get(r, "type")), c && *c ? c : "-",
               json_string_value(json_object_get(r, "state")),
               (long long)json_integer_value(json_object_get(r, "attempt")),
               (long long)json_integer_value(json_object_get(r, "last_status")),
               (long long)json_integer_value(json_object_get(r, "last_latency_ms")), when,
               e && *e ? "  " : "", e ? e : "");
    }
    if (json_array_size(rows) == 0)
        printf("(no deliveries)\n");
    json_decref(rows);
}

/* casebus deliveries --subscription ID [--limit N] [--json] */
static int deliveries(const cb_config_t *cfg, int argc, char **argv)
{
    Casebus__V1__ListDeliveries l = CASEBUS__V1__LIST_DELIVERIES__INIT;
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--subscription") == 0 && i + 1 < argc) {
            l.subscription_id = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            if (count_arg("--limit", argv[++i], 1000, &l.limit) != 0)
                return 2;
        } else {
            fprintf(stderr, "usage: casebus deliveries --subscription ID [--limit N] [--json]\n");
            return 2;
        }
    }
    if (l.subscription_id == NULL) {
        fprintf(stderr, "casebus: deliveries needs --subscription ID (casebus subscriptions lists them)\n");
        return 2;
    }
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.request_id = "cli";
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DELIVERIES;
    req.list_deliveries = &l;
    if (as_json)
        return ask(cfg, &req, "deliveries", NULL);
    Casebus__V1__ControlReply *rep = cli_call(cfg, "notify", &req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (!rep->ok)
        fprintf(stderr, "casebus: deliveries refused (%s): %s\n", rep->error_field, rep->message);
    else
        print_deliveries(rep->status_json);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static void print_subscriptions(json_t *rows)
{
    json_t *r;
    size_t i;
    printf("%-8s %-14s %-8s %-40s %-6s %-6s %s\n", "ID", "ORG", "CHANNEL", "URL", "RATE", "BATCH",
           "EVENTS");
    json_array_foreach(rows, i, r) {
        char types[512] = "all";
        size_t used = 0, k;
        json_t *t;
        json_array_foreach(json_object_get(r, "event_types"), k, t) {
            int n = snprintf(types + used, sizeof(types) - used, "%s%s", k ? "," : "",
                             json_string_value(t));
            if (n < 0 || (size_t)n >= sizeof(types) - used)
                break;
            used += (size_t)n;
        }
        const char *url = json_string_value(json_object_get(r, "url"));
        printf("%-8s %-14s %-8s %-40s %-6lld %-6lld %s\n", json_string_value(json_object_get(r, "id")),
               json_string_value(json_object_get(r, "org_id")),
               json_string_value(json_object_get(r, "channel")), url && *url ? url : "-",
               (long long)json_integer_value(json_object_get(r, "rate_per_second")),
               (long long)json_integer_value(json_object_get(r, "batch_max")), types);
    }
    if (json_array_size(rows) == 0)
        printf("(no subscriptions)\n");
}

static void print_dead_letters(json_t *rows)
{
    json_t *r;
    size_t i;
    printf("%-14s %-8s %-14s %-22s %-20s %7s %6s  %s\n", "DELIVERY", "SUB", "ORG", "TYPE", "CASE",
           "ATTEMPT", "STATUS", "LAST ERROR");
    json_array_foreach(rows, i, r) {
        const char *c = json_string_value(json_object_get(r, "case_id"));
        printf("%-14s %-8s %-14s %-22s %-20s %7lld %6lld  %s\n",
               json_string_value(json_object_get(r, "id")),
               json_string_value(json_object_get(r, "sub")),
               json_string_value(json_object_get(r, "org_id")),
               json_string_value(json_object_get(r, "type")), c && *c ? c : "-",
               (long long)json_integer_value(json_object_get(r, "attempt")),
               (long long)json_integer_value(json_object_get(r, "last_status")),
               json_string_value(json_object_get(r, "last_error")));
    }
    if (json_array_size(rows) == 0)
        printf("(no dead letters)\n");
    else
        printf("\ncasebus redeliver DELIVERY, or --dead --subscription SUB for all of one\n");
}

/* subscriptions / deadletters: a table, or with --json the list as notify gives it. */
static int list(const cb_config_t *cfg, const char *what, bool as_json)
{
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__ListSubscriptions ls = CASEBUS__V1__LIST_SUBSCRIPTIONS__INIT;
    Casebus__V1__ListDeadLetters ld = CASEBUS__V1__LIST_DEAD_LETTERS__INIT;
    bool subs = strcmp(what, "subscriptions") == 0;
    req.request_id = "cli";
    if (subs) {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_SUBSCRIPTIONS;
        req.list_subscriptions = &ls;
    } else {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DEAD_LETTERS;
        req.list_dead_letters = &ld;
    }
    if (as_json)
        return ask(cfg, &req, what, NULL);
    Casebus__V1__ControlReply *rep = cli_call(cfg, "notify", &req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    json_t *rows = rep->ok ? json_loads(rep->status_json, 0, NULL) : NULL;
    if (!rep->ok)
        fprintf(stderr, "casebus: %s refused (%s): %s\n", what, rep->error_field, rep->message);
    else if (subs)
        print_subscriptions(rows);
    else
        print_dead_letters(rows);
    json_decref(rows);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

int cli_notify(const cb_config_t *cfg, const char *what, int argc, char **argv)
{
    if ((strcmp(what, "subscriptions") == 0 || strcmp(what, "deadletters") == 0) &&
        (argc == 0 || (argc == 1 && strcmp(argv[0], "--json") == 0)))
        return list(cfg, what, argc == 1);
    if (strcmp(what, "subscribe") == 0)
        return subscribe(cfg, argc, argv);
    if (strcmp(what, "deliveries") == 0)
        return deliveries(cfg, argc, argv);
    if (strcmp(what, "redeliver") == 0 && argc == 3 && strcmp(argv[0], "--dead") == 0 &&
        strcmp(argv[1], "--subscription") == 0) {
        Casebus__V1__Redeliver rd = CASEBUS__V1__REDELIVER__INIT;
        rd.dead_of_subscription = argv[2];
        Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_REDELIVER;
        req.redeliver = &rd;
        return ask(cfg, &req, "redeliver", NULL);
    }
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__Unsubscribe uns = CASEBUS__V1__UNSUBSCRIBE__INIT;
    Casebus__V1__ListSubscriptions ls = CASEBUS__V1__LIST_SUBSCRIPTIONS__INIT;
    Casebus__V1__ListDeadLetters ld = CASEBUS__V1__LIST_DEAD_LETTERS__INIT;
    Casebus__V1__Redeliver rd = CASEBUS__V1__REDELIVER__INIT;
    bool takes_id = strcmp(what, "unsubscribe") == 0 || strcmp(what, "redeliver") == 0;
    if (argc != (takes_id ? 1 : 0)) {
        fprintf(stderr, "usage: casebus %s%s\n", what,
                takes_id ? (what[0] == 'u' ? " SUBSCRIPTION_ID"
                                           : " DELIVERY_ID | --dead --subscription ID")
                         : "");
        return 2;
    }
    if (strcmp(what, "unsubscribe") == 0) {
        uns.subscription_id = argv[0];
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE;
        req.unsubscribe = &uns;
    } else if (strcmp(what, "redeliver") == 0) {
        rd.delivery_id = argv[0];
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_REDELIVER;
        req.redeliver = &rd;
    } else if (strcmp(what, "subscriptions") == 0) {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_SUBSCRIPTIONS;
        req.list_subscriptions = &ls;
    } else {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DEAD_LETTERS;
        req.list_dead_letters = &ld;
    }
    return ask(cfg, &req, what, NULL);
}

static int rotate(const cb_config_t *cfg, const char *id, int argc, char **argv)
{
    Casebus__V1__RotateSecret rs = CASEBUS__V1__ROTATE_SECRET__INIT;
    char made[CLI_WHSEC_MAX] = "";
    rs.subscription_id = (char *)id;
    rs.overlap_seconds = 86400;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc) {
            rs.secret = argv[++i];
        } else if (strcmp(argv[i], "--overlap") == 0 && i + 1 < argc) {
            int64_t until;
            cb_error_t e;
            if (cb_time_parse_after(argv[++i], 0, &until, &e) != 0 || until < 0 ||
                until / 1000 > 30 * 86400) {
                fprintf(stderr, "casebus: --overlap wants a span such as 90m, 24h or 7d (at most "
                                "30d)\n");
                return 2;
            }
            rs.overlap_seconds = (uint32_t)(until / 1000);
        } else {
            fprintf(stderr, "casebus: subscription rotate-secret: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (rs.secret == NULL || *rs.secret == '\0') {
        if (cli_make_whsec(made) != 0)
            return 1;
        rs.secret = made;
    }
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_ROTATE_SECRET;
    req.rotate_secret = &rs;
    return ask(cfg, &req, "rotate-secret", made);
}

static int update(const cb_config_t *cfg, const char *id, int argc, char **argv)
{
    Casebus__V1__UpdateSubscription u = CASEBUS__V1__UPDATE_SUBSCRIPTION__INIT;
    char *types[CLI_MAX_TYPES], events[1024];
    u.subscription_id = (char *)id;
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "casebus: subscription update: %s wants a value\n", o);
            return 2;
        } else if (strcmp(o, "--url") == 0) {
            u.url = (char *)v;
        } else if (strcmp(o, "--events") == 0) {
            snprintf(events, sizeof(events), "%s", v);
            u.set_event_types = true;
            u.n_event_types = cli_split_types(events, types);
            u.event_types = types;
        } else if (strcmp(o, "--rate") == 0) {
            if (count_arg("--rate", v, 100000, &u.rate_per_second) != 0)
                return 2;
            u.set_rate = true;
        } else if (strcmp(o, "--batch") == 0) {
            if (count_arg("--batch", v, 100, &u.batch_max) != 0)
                return 2;
            u.set_batch = true;
        } else {
            fprintf(stderr, "casebus: subscription update: unknown option '%s'\n", o);
            return 2;
        }
    }
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_UPDATE_SUBSCRIPTION;
    req.update_subscription = &u;
    return ask(cfg, &req, "subscription update", NULL);
}

static void subscription_usage(FILE *to)
{
    fprintf(to,
            "usage: casebus subscription rotate-secret ID [--secret whsec_…] [--overlap 24h]\n"
            "       casebus subscription update ID [--url URL] [--events T,T…|all] [--rate N]\n"
            "                                      [--batch N]\n"
            "       casebus subscription test ID\n"
            "\n"
            "rotate-secret  a new secret (made when not given, shown once); the old one keeps\n"
            "               signing too for the overlap (default 24h)\n"
            "update         change the URL, the event types (all: every type), the rate\n"
            "               (0: no limit) or the batch size (0: one event per request) in\n"
            "               place; queued deliveries follow\n"
            "test           a signed ping CloudEvent, delivered as any event is\n"
            "\n"
            "example: casebus subscription update S000001 --events transfer_routed,escalated\n");
}

int cli_subscription(const cb_config_t *cfg, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        subscription_usage(stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            subscription_usage(stdout);
            return 0;
        }
    if (argc < 2 || argv[1][0] == '-') {
        subscription_usage(stderr);
        return 2;
    }
    if (strcmp(argv[0], "rotate-secret") == 0)
        return rotate(cfg, argv[1], argc - 2, argv + 2);
    if (strcmp(argv[0], "update") == 0)
        return update(cfg, argv[1], argc - 2, argv + 2);
    if (strcmp(argv[0], "test") == 0 && argc == 2) {
        Casebus__V1__TestSubscription t = CASEBUS__V1__TEST_SUBSCRIPTION__INIT;
        t.subscription_id = argv[1];
        Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_TEST_SUBSCRIPTION;
        req.test_subscription = &t;
        return ask(cfg, &req, "subscription test", NULL);
    }
    subscription_usage(stderr);
    return 2;
}
