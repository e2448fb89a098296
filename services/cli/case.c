/*
 * case.c — `casebus case ID`: one case across every daemon's log, read-only
 * beside the running daemons (each log's case index), merged by time; with a
 * summary of who is competent, each transfer's state and each time limit's due
 * and standing. And `casebus submit`: a command to intake's HTTP API by hand.
 */
#include "cli.h"
#include "cbtime.h"
#include "evlog.h"
#include "pbjson.h"
#include "store.h"

#include <curl/curl.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct collect {
    cb_log_t *log;
    MDB_txn *txn;
    json_t *events;
} collect_t;

static int visit(void *ctx, uint64_t seq)
{
    collect_t *c = ctx;
    const uint8_t *raw;
    size_t len;
    cb_error_t err;
    uint8_t *owned;
    if (cb_log_get(c->log, c->txn, seq, &raw, &len, &owned, &err) != 0)
        return 0;
    Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
    free(owned);
    if (env == NULL)
        return 0;
    json_t *doc = cb_envelope_to_json(env, 0);
    casebus__v1__envelope__free_unpacked(env, NULL);
    if (doc)
        json_array_append_new(c->events, doc);
    return 0;
}

static int by_time(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t tx = json_integer_value(json_object_get(x, "recorded_at_ms"));
    json_int_t ty = json_integer_value(json_object_get(y, "recorded_at_ms"));
    return tx < ty ? -1 : tx > ty;
}

static const char *str(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Who holds the case, its transfers and its time limits, from the events. */
static void summary(json_t *events)
{
    json_t *transfers = json_object(), *obligations = json_object();
    const char *competent = "", *competent_name = "", *matter = "", *township = "", *found = "";
    size_t i;
    json_t *doc;
    json_array_foreach(events, i, doc)
    {
        const char *type = str(doc, "type", NULL);
        json_t *ev = json_object_get(doc, "event");
        if (strcmp(type, "case_reported") == 0 || strcmp(type, "jurisdiction_resolved") == 0) {
            json_t *cs = json_object_get(ev, "case");
            matter = *str(cs, "matter_name", NULL) ? str(cs, "matter_name", NULL) : str(cs, "matter_code", NULL);
            township = *str(cs, "township_name", NULL) ? str(cs, "township_name", NULL)
                                                       : str(cs, "township_code", NULL);
            found = str(cs, "discovered_by", "org_id");
        }
        if (strcmp(type, "jurisdiction_resolved") == 0) {
            competent = str(ev, "competent", "org_id");
            competent_name = str(ev, "competent", "name");
        }
        if (strcmp(type, "transfer_routed") == 0 || strcmp(type, "transfer_state_changed") == 0) {
            const char *id = str(ev, "transfer_id", NULL);
            const char *state = strcmp(type, "transfer_routed") == 0 ? str(ev, "state", NULL)
                                                                     : str(ev, "to_state", NULL);
            json_object_set_new(transfers, id,
                                json_pack("{s:s,s:s,s:s}", "sender", str(ev, "sender", "org_id"),
                                          "receiver", str(ev, "receiver", "org_id"), "state",
                                          state));
        }
        json_t *ob = json_object_get(ev, "obligation");
        if (ob) {
            const char *id = str(ob, "obligation_id", NULL);
            json_t *cur = json_object_get(obligations, id);
            if (cur == NULL) {
                cur = json_object();
                json_object_set_new(obligations, id, cur);
            }
            json_object_set_new(cur, "rule", json_string(str(ob, "rule_id", NULL)));
            json_object_set_new(cur, "responsible", json_string(str(ob, "responsible", "org_id")));
            json_object_set_new(cur, "due", json_string(str(ob, "due_local", NULL)));
            const char *standing = strcmp(type, "obligation_opened") == 0 ? "open"
                                   : strcmp(type, "deadline_warning") == 0 ? "yellow"
                                   : strcmp(type, "deadline_breached") == 0 ? "red"
                                   : strcmp(type, "escalated") == 0 ? "red, escalated (督办)"
                                   : strcmp(type, "obligation_met") == 0
                                       ? (json_is_true(json_object_get(ev, "on_time")) ? "met on time"
                                                                                      : "met late")
                                       : NULL;
            if (strcmp(type, "obligation_changed") == 0)
                standing = str(ev, "change", NULL);
            if (standing && *standing)
                json_object_set_new(cur, "standing", json_string(standing));
        }
    }
    printf("matter     %s, %s; found by %s\n", matter, township, found);
    printf("competent  %s %s\n", competent, competent_name);
    const char *key;
    json_t *v;
    json_object_foreach(transfers, key, v)
        printf("transfer   %s  %s -> %s  %s\n", key, str(v, "sender", NULL), str(v, "receiver", NULL),
               str(v, "state", NULL));
    json_object_foreach(obligations, key, v)
        printf("limit      %s  %s, due %s: %s\n", key, str(v, "responsible", NULL), str(v, "due", NULL),
               str(v, "standing", NULL));
    json_decref(transfers);
    json_decref(obligations);
}

int cli_case(const cb_config_t *cfg, int argc, char **argv)
{
    const char *case_id = NULL;
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (case_id == NULL && argv[i][0] != '-')
            case_id = argv[i];
        else {
            fprintf(stderr, "usage: casebus case ID [--json]\n");
            return 2;
        }
    }
    if (case_id == NULL || strlen(case_id) > CB_CASE_ID_MAX) {
        fprintf(stderr, "usage: casebus case ID [--json]\n");
        return 2;
    }
    static const char *daemons[] = {"intake", "router", "deadline", "notify"};
    json_t *events = json_array();
    for (size_t i = 0; i < 4; i++) {
        if (!cb_config_has_section(cfg, daemons[i]))
            continue;
        char dflt[64];
        snprintf(dflt, sizeof(dflt), "var/%s", daemons[i]);
        cb_store_opts_t o = {.dir = cb_config_get(cfg, daemons[i], "data_dir", dflt),
                             .read_only = true};
        cb_store_t *store = NULL;
        cb_log_t *log = NULL;
        MDB_txn *txn = NULL;
        cb_error_t err;
        if (cb_store_open(&store, &o, &err) == 0 && cb_log_open(&log, store, daemons[i], &err) == 0 &&
            cb_store_begin(store, false, &txn, &err) == 0) {
            collect_t c = {log, txn, events};
            cb_log_case_seqs(log, txn, case_id, visit, &c, &err);
        } else {
            fprintf(stderr, "casebus: %s: cannot read its log: %s\n", daemons[i], err.message);
        }
        cb_store_abort(&txn);
        cb_log_destroy(&log);
        cb_store_destroy(&store);
    }
    size_t n = json_array_size(events);
    json_t **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    for (size_t i = 0; sorted && i < n; i++)
        sorted[i] = json_array_get(events, i);
    if (sorted)
        qsort(sorted, n, sizeof(*sorted), by_time);
    json_t *ordered = json_array();
    for (size_t i = 0; sorted && i < n; i++)
        json_array_append(ordered, sorted[i]);
    free(sorted);
    json_decref(events);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "casebus: no events for case %s\n", case_id);
        rc = 1;
    } else if (as_json) {
        json_t *out = json_pack("{s:s,s:O}", "case_id", case_id, "events", ordered);
        char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        printf("case       %s (%zu events)\n", case_id, n);
        summary(ordered);
        printf("timeline\n");
        size_t i;
        json_t *doc;
        json_array_foreach(ordered, i, doc)
        {
            printf("  ");
            cli_print_event(doc, isatty(STDOUT_FILENO));
        }
    }
    json_decref(ordered);
    return rc;
}

/* ---- submit ---- */

static size_t keep(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fwrite(ptr, size, nmemb, userdata);
    return size * nmemb;
}

int cli_submit(const cb_config_t *cfg, int argc, char **argv)
{
    const char *file = NULL, *path = "/v1/cases", *token = getenv("CASEBUS_TOKEN");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
            token = argv[++i];
        else if (file == NULL && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "usage: casebus submit FILE.json [--path /v1/...] [--token T]\n");
            return 2;
        }
    }
    if (file == NULL || path[0] != '/') {
        fprintf(stderr, "usage: casebus submit FILE.json [--path /v1/...] [--token T]\n");
        return 2;
    }
    char tokbuf[256] = "";
    if (token == NULL) {
        /* make run keeps the sample token beside the configuration. */
        char conf[4096], tokpath[4200];
        snprintf(conf, sizeof(conf), "%s", cb_config_path(cfg));
        snprintf(tokpath, sizeof(tokpath), "%s/token", dirname(conf));
        FILE *tf = fopen(tokpath, "r");
        if (tf && fgets(tokbuf, sizeof(tokbuf), tf))
            tokbuf[strcspn(tokbuf, "\r\n")] = '\0';
        if (tf)
            fclose(tf);
        token = tokbuf;
    }
    if (*token == '\0') {
        fprintf(stderr, "casebus: no token: give --token, set CASEBUS_TOKEN, or keep one in "
                        "the configuration's directory as 'token'\n");
        return 2;
    }
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "casebus: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    static char body[2 << 20];
    size_t len = fread(body, 1, sizeof(body), f);
    fclose(f);
    const char *listen = cb_config_get(cfg, "intake", "http_listen", "127.0.0.1:8080");
    char host[256];
    snprintf(host, sizeof(host), "%s", listen);
    if (strncmp(host, "0.0.0.0:", 8) == 0)
        memmove(host, "127.0.0.1:", 10), memmove(host + 10, listen + 8, strlen(listen + 8) + 1);
    char url[512], auth[400];
    snprintf(url, sizeof(url), "http://%s%s", host, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, stdout);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    printf("\n");
    if (res != CURLE_OK) {
        fprintf(stderr, "casebus: %s: %s\n", url, curl_easy_strerror(res));
        return 1;
    }
    fprintf(stderr, "casebus: %s answered %ld\n", url, status);
    return status >= 200 && status < 300 ? 0 : 1;
}
