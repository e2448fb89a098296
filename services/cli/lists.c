/*
 * lists.c — `casebus cases`, `casebus overdue` and `casebus due-soon`: the
 * lists of common/caselist.h read from intake's store, read-only beside the
 * running daemon (as `casebus case` reads the logs), as tables for people or
 * JSON lines for scripts. The operator on the host sees every case.
 */
#include "cli.h"
#include "caselist.h"
#include "cbtime.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct lister {
    bool json;
    int64_t now;
    unsigned rows;
} lister_t;

static void local_time(int64_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        snprintf(buf, size, "-");
        return;
    }
    cb_civil_t c;
    cb_time_to_cst(ms, &c);
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d", c.year, c.month, c.day, c.hour, c.min);
}

/* "3d 4h", "5h 20m", "12m": a span for people. */
static void span(int64_t ms, char *buf, size_t size)
{
    int64_t m = (ms < 0 ? -ms : ms) / 60000;
    if (m >= 1440)
        snprintf(buf, size, "%lldd %lldh", (long long)(m / 1440), (long long)(m % 1440 / 60));
    else if (m >= 60)
        snprintf(buf, size, "%lldh %lldm", (long long)(m / 60), (long long)(m % 60));
    else
        snprintf(buf, size, "%lldm", (long long)m);
}

/* Prints o (taken) as one line of JSON. */
static int json_line(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return CB_ERR_NOMEM;
    puts(text);
    free(text);
    return 0;
}

static int print_case(void *ctx, const cb_case_row_t *r)
{
    lister_t *l = ctx;
    char rep[32], due[32];
    l->rows++;
    if (l->json) {
        json_t *o =
            json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:I,s:s,s:s,s:s}", "case_id",
                      r->case_id, "reported_at_ms", (json_int_t)r->reported_ms, "township",
                      r->township, "township_name", r->township_name, "matter", r->matter, "state",
                      r->state, "level", cb_level_name(r->level), "overdue", r->overdue,
                      "open_limits", (int)r->open, "next_due_ms", (json_int_t)r->next_due_ms,
                      "finder", r->finder, "competent", r->competent, "holder", r->holder);
        return json_line(o);
    }
    local_time(r->reported_ms, rep, sizeof(rep));
    local_time(r->next_due_ms, due, sizeof(due));
    printf("%-18s %-16s %-14s %-10s %-20s %-9s %-12s %-16s %s\n", r->case_id, rep,
           r->township_name[0] ? r->township_name : r->township, r->matter, r->state,
           cb_level_name(r->level), r->holder, due, r->description);
    return 0;
}

static int print_obligation(void *ctx, const cb_ob_row_t *r)
{
    lister_t *l = ctx;
    char due[32], left[32];
    int64_t remaining = r->due_ms - l->now;
    l->rows++;
    if (l->json) {
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b}", "obligation_id", r->obligation_id, "case_id",
            r->case_id, "rule_id", r->rule_id, "responsible", r->responsible, "due_at_ms",
            (json_int_t)r->due_ms, "remaining_ms", (json_int_t)remaining, "level",
            cb_level_name(r->level), "supervision_id", r->supervision_id, "paused", r->paused);
        return json_line(o);
    }
    local_time(r->due_ms, due, sizeof(due));
    span(remaining, left, sizeof(left));
    char when[40];
    snprintf(when, sizeof(when), "%s%s", remaining < 0 ? "late " : "in ", left);
    printf("%-16s %-14s %-9s %-12s %-18s %-20s %s\n", due, when, cb_level_name(r->level),
           r->responsible, r->case_id[0] ? r->case_id : "-", r->rule_id,
           r->supervision_id[0] ? r->supervision_id : "");
    return 0;
}

typedef struct opened {
    cb_store_t *store;
    MDB_txn *txn;
    cb_lists_t lists;
} opened_t;

static int open_intake(const cb_config_t *cfg, opened_t *o)
{
    cb_store_opts_t so = {.dir = cb_config_get(cfg, "intake", "data_dir", "var/intake"),
                          .read_only = true};
    cb_error_t err;
    memset(o, 0, sizeof(*o));
    if (cb_store_open(&o->store, &so, &err) != 0 || cb_lists_open(&o->lists, o->store, &err) != 0 ||
        cb_store_begin(o->store, false, &o->txn, &err) != 0) {
        fprintf(stderr, "casebus: cannot read intake's lists in %s: %s\n", so.dir, err.message);
        cb_store_abort(&o->txn);
        cb_store_destroy(&o->store);
        return -1;
    }
    return 0;
}

static void close_intake(opened_t *o)
{
    cb_store_abort(&o->txn);
    cb_store_destroy(&o->store);
}

static int bad(const char *cmd, const char *what)
{
    fprintf(stderr, "casebus %s: %s (casebus %s --help)\n", cmd, what, cmd);
    return 2;
}

static bool instant(const char *cmd, const char *flag, const char *v, bool end, int64_t *out)
{
    if (cb_bound_parse(v, end, out))
        return true;
    fprintf(stderr, "casebus %s: %s: want a date (2026-12-03) or an RFC 3339 instant\n", cmd, flag);
    return false;
}

/* Pages through the list until limit rows or the end; prints how to go on. */
static int finish(const char *cmd, lister_t *l, int rc, const char *next, cb_error_t *err)
{
    if (rc != 0) {
        fprintf(stderr, "casebus %s: %s\n", cmd, err->message);
        return rc == CB_ERR_INVALID ? 2 : 1;
    }
    if (!l->json) {
        if (l->rows == 0)
            printf("(none)\n");
        if (next[0])
            printf("more: casebus %s ... --cursor %s\n", cmd, next);
    }
    return 0;
}

/* An option whose value is kept as it is. */
struct text_opt {
    const char *name;
    const char **value;
};

/* 1: a was one of opts (its value kept), 0: it was not. */
static int text_option(const struct text_opt *opts, const char *a, const char *v)
{
    for (; opts->name; opts++)
        if (strcmp(a, opts->name) == 0) {
            *opts->value = v;
            return 1;
        }
    return 0;
}

/* --level and --limit, which both lists take: 1 taken, 0 not one of them, -1
 * refused (said on stderr). */
static int shared_option(const char *cmd, const char *a, const char *v, int *level, unsigned *limit)
{
    if (strcmp(a, "--level") == 0) {
        if ((*level = cb_level_parse(v)) >= 0)
            return 1;
        bad(cmd, "--level: none, yellow, red or escalation");
        return -1;
    }
    if (strcmp(a, "--limit") == 0) {
        *limit = (unsigned)atoi(v);
        if (*limit >= 1 && *limit <= CB_LIST_LIMIT_MAX)
            return 1;
        bad(cmd, "--limit: 1 to 200");
        return -1;
    }
    return 0;
}

int cli_cases(const cb_config_t *cfg, int argc, char **argv)
{
    cb_case_query_t q = {.level = -1, .overdue = -1, .limit = 50};
    lister_t l = {.now = cb_now_ms()};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            l.json = true;
            continue;
        }
        if (strcmp(a, "--overdue") == 0) {
            q.overdue = 1;
            continue;
        }
        if (v == NULL)
            return bad("cases", "every option but --json and --overdue takes a value");
        i++;
        const struct text_opt texts[] = {{"--township", &q.township},
                                         {"--org", &q.org},
                                         {"--holder", &q.holder},
                                         {"--state", &q.state},
                                         {"--matter", &q.matter},
                                         {"--cursor", &q.cursor},
                                         {NULL, NULL}};
        int done = text_option(texts, a, v);
        if (done == 0)
            done = shared_option("cases", a, v, &q.level, &q.limit);
        if (done < 0)
            return 2;
        if (done > 0)
            continue;
        if (strcmp(a, "--from") == 0) {
            if (!instant("cases", a, v, false, &q.from_ms))
                return 2;
        } else if (strcmp(a, "--to") == 0) {
            if (!instant("cases", a, v, true, &q.to_ms))
                return 2;
        } else
            return bad("cases", "unknown option");
    }
    opened_t o;
    if (open_intake(cfg, &o) != 0)
        return 1;
    if (!l.json)
        printf("%-18s %-16s %-14s %-10s %-20s %-9s %-12s %-16s %s\n", "CASE", "REPORTED",
               "TOWNSHIP", "MATTER", "STATE", "LEVEL", "HOLDER", "NEXT DUE", "DESCRIPTION");
    char next[CB_LIST_CURSOR_MAX];
    cb_error_t err;
    int rc = cb_lists_cases(&o.lists, o.txn, &q, print_case, &l, next, &err);
    close_intake(&o);
    return finish("cases", &l, rc, next, &err);
}

/* overdue: open limits past due, most overdue first. due-soon: those not yet
 * due, soonest first (--within 2d: only those due within it). */
int cli_obligations(const cb_config_t *cfg, const char *cmd, int argc, char **argv)
{
    lister_t l = {.now = cb_now_ms()};
    bool overdue = strcmp(cmd, "overdue") == 0;
    cb_ob_query_t q = {.level = -1, .limit = 50};
    if (overdue)
        q.due_to_ms = l.now;
    else
        q.due_from_ms = l.now;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            l.json = true;
            continue;
        }
        if (v == NULL)
            return bad(cmd, "every option but --json takes a value");
        i++;
        const struct text_opt texts[] = {{"--responsible", &q.responsible},
                                         {"--township", &q.township},
                                         {"--rule", &q.rule},
                                         {"--cursor", &q.cursor},
                                         {NULL, NULL}};
        int done = text_option(texts, a, v);
        if (done == 0)
            done = shared_option(cmd, a, v, &q.level, &q.limit);
        if (done < 0)
            return 2;
        if (done > 0)
            continue;
        if (!overdue && strcmp(a, "--within") == 0) {
            int64_t until;
            cb_error_t e;
            if (cb_time_parse_after(v, l.now, &until, &e) != 0)
                return bad(cmd, "--within: a span such as 4h, 2d, 1w");
            q.due_to_ms = until;
        } else
            return bad(cmd, "unknown option");
    }
    opened_t o;
    if (open_intake(cfg, &o) != 0)
        return 1;
    if (!l.json)
        printf("%-16s %-14s %-9s %-12s %-18s %-20s %s\n", "DUE", overdue ? "LATE BY" : "REMAINING",
               "LEVEL", "RESPONSIBLE", "CASE", "RULE", "督办 ORDER");
    char next[CB_LIST_CURSOR_MAX];
    cb_error_t err;
    int rc = cb_lists_obligations(&o.lists, o.txn, &q, print_obligation, &l, next, &err);
    close_intake(&o);
    return finish(cmd, &l, rc, next, &err);
}
