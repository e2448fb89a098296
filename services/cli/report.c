/*
 * report.c — `casebus report --quarter 2026Q3 | --from DATE --to DATE [--csv]`:
 * the two-way supervision ranking of DOMAIN.md (seed 000 §六): per
 * organisation, transfers sent and received, time limits on time / late /
 * still open, the median time from discovery to a routed transfer, and the
 * warnings, breaches and escalations it drew. Read-only from router's and
 * deadline's logs; an event counts when it was recorded within the period.
 * Townships and county organisations are ranked apart, by the share of limits
 * met on time, then by fewest breaches.
 */
#include "cli.h"
#include "cbtime.h"
#include "evlog.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORGS 512

typedef struct row {
    char org[72], name[160];
    int kind;
    unsigned sent, received, on_time, late, open, warnings, breaches, escalations;
    double *waits; /* hours from discovery to routing, of transfers it sent */
    size_t nwaits, capwaits;
} row_t;

typedef struct report {
    row_t rows[MAX_ORGS];
    size_t n;
    int64_t from, to;
} report_t;

static row_t *row(report_t *r, const Casebus__V1__OrgRef *o)
{
    if (o == NULL || o->org_id == NULL || *o->org_id == '\0')
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->rows[i].org, o->org_id) == 0)
            return &r->rows[i];
    if (r->n == MAX_ORGS)
        return NULL;
    row_t *w = &r->rows[r->n++];
    memset(w, 0, sizeof(*w));
    snprintf(w->org, sizeof(w->org), "%s", o->org_id);
    snprintf(w->name, sizeof(w->name), "%s", o->name ? o->name : "");
    w->kind = o->kind;
    return w;
}

static void wait_add(row_t *w, double h)
{
    if (w->nwaits == w->capwaits) {
        size_t cap = w->capwaits ? w->capwaits * 2 : 16;
        double *g = realloc(w->waits, cap * sizeof(*g));
        if (g == NULL)
            return;
        w->waits = g;
        w->capwaits = cap;
    }
    w->waits[w->nwaits++] = h;
}

static void tally(report_t *r, const Casebus__V1__Envelope *env)
{
    row_t *w;
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED: {
        const Casebus__V1__TransferRouted *t = env->transfer_routed;
        if ((w = row(r, t->sender)) && t->route_count == 1) {
            w->sent++;
            if (t->case_ && t->case_->discovered_at_ms && t->sent_at_ms >= t->case_->discovered_at_ms)
                wait_add(w, (double)(t->sent_at_ms - t->case_->discovered_at_ms) / 3600000.0);
        }
        if ((w = row(r, t->receiver)))
            w->received++;
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED:
        if (env->obligation_opened->obligation && (w = row(r, env->obligation_opened->obligation->responsible)))
            w->open++;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET:
        if (env->obligation_met->obligation && (w = row(r, env->obligation_met->obligation->responsible))) {
            if (env->obligation_met->on_time)
                w->on_time++;
            else
                w->late++;
            if (w->open)
                w->open--;
        }
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED:
        if (env->obligation_changed->change ==
                CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED &&
            env->obligation_changed->obligation &&
            (w = row(r, env->obligation_changed->obligation->responsible)) && w->open)
            w->open--;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING:
        if ((w = row(r, env->deadline_warning->obligation ? env->deadline_warning->obligation->responsible : NULL)))
            w->warnings++;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED:
        if ((w = row(r, env->deadline_breached->obligation ? env->deadline_breached->obligation->responsible : NULL)))
            w->breaches++;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED:
        if ((w = row(r, env->escalated->obligation ? env->escalated->obligation->responsible : NULL)))
            w->escalations++;
        break;
    default:
        break;
    }
}

static int read_log(report_t *r, const cb_config_t *cfg, const char *daemon)
{
    char dflt[64];
    snprintf(dflt, sizeof(dflt), "var/%s", daemon);
    cb_store_opts_t o = {.dir = cb_config_get(cfg, daemon, "data_dir", dflt), .read_only = true};
    cb_store_t *store = NULL;
    cb_log_t *log = NULL;
    MDB_txn *txn = NULL;
    cb_error_t err;
    cb_log_head_t head;
    int rc = 0;
    uint64_t first = 1;
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, daemon, &err) ||
        cb_store_begin(store, false, &txn, &err) || cb_log_head(log, txn, &head, &err)) {
        fprintf(stderr, "casebus: %s: cannot read its log: %s\n", daemon, err.message);
        rc = 1;
        goto out;
    }
    if (cb_log_seq_at_time(log, txn, r->from, &first, &err) != 0)
        first = 1;
    for (uint64_t seq = first ? first : 1; seq <= head.seq; seq++) {
        const uint8_t *raw;
        size_t len;
        if (cb_log_get(log, txn, seq, &raw, &len, &err) != 0)
            break;
        Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
        if (env == NULL)
            continue;
        bool stop = env->recorded_at_ms >= r->to;
        if (!stop && env->recorded_at_ms >= r->from)
            tally(r, env);
        casebus__v1__envelope__free_unpacked(env, NULL);
        if (stop)
            break;
    }
out:
    cb_store_abort(&txn);
    cb_log_destroy(&log);
    cb_store_destroy(&store);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(row_t *w)
{
    if (w->nwaits == 0)
        return -1;
    qsort(w->waits, w->nwaits, sizeof(double), cmp_double);
    return w->nwaits % 2 ? w->waits[w->nwaits / 2]
                         : (w->waits[w->nwaits / 2 - 1] + w->waits[w->nwaits / 2]) / 2;
}

static double on_time_share(const row_t *w)
{
    unsigned done = w->on_time + w->late;
    return done ? (double)w->on_time / done : 1.0;
}

static int rank(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    double sx = on_time_share(x), sy = on_time_share(y);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    if (x->breaches != y->breaches)
        return x->breaches < y->breaches ? -1 : 1;
    return strcmp(x->org, y->org);
}

int cli_report(const cb_config_t *cfg, int argc, char **argv)
{
    static report_t r;
    memset(&r, 0, sizeof(r));
    bool csv = false;
    const char *quarter = NULL, *from = NULL, *to = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0)
            csv = true;
        else if (strcmp(argv[i], "--quarter") == 0 && i + 1 < argc)
            quarter = argv[++i];
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else {
            fprintf(stderr, "usage: casebus report (--quarter YYYYQn | --from DATE --to DATE) [--csv]\n");
            return 2;
        }
    }
    int year, q;
    char tail;
    cb_error_t err;
    int64_t d0, d1;
    if (quarter && sscanf(quarter, "%dQ%d%c", &year, &q, &tail) == 2 && q >= 1 && q <= 4 &&
        year >= 2000 && year <= 2099) {
        d0 = cb_days_from_civil(year, 3 * q - 2, 1);
        d1 = q == 4 ? cb_days_from_civil(year + 1, 1, 1) : cb_days_from_civil(year, 3 * q + 1, 1);
    } else if (!quarter && from && to && cb_date_parse(from, &d0, &err) == 0 &&
               cb_date_parse(to, &d1, &err) == 0 && d1 >= d0) {
        d1++; /* --to is the last day counted */
    } else {
        fprintf(stderr, "casebus: report wants --quarter YYYYQn (e.g. 2026Q3) or --from DATE --to DATE\n");
        return 2;
    }
    r.from = cb_cst_day_start_ms(d0);
    r.to = cb_cst_day_start_ms(d1);
    if (read_log(&r, cfg, "router") != 0 || read_log(&r, cfg, "deadline") != 0)
        return 1;
    /* Two rankings: townships, and the county organisations that support them. */
    row_t *towns = malloc(sizeof(row_t) * (r.n ? r.n : 1)), *county = malloc(sizeof(row_t) * (r.n ? r.n : 1));
    size_t nt = 0, nc = 0;
    for (size_t i = 0; towns && county && i < r.n; i++) {
        if (r.rows[i].kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP)
            towns[nt++] = r.rows[i];
        else
            county[nc++] = r.rows[i];
    }
    qsort(towns, nt, sizeof(row_t), rank);
    qsort(county, nc, sizeof(row_t), rank);
    char a[16], b[16];
    cb_date_format(d0, a, sizeof(a));
    cb_date_format(d1 - 1, b, sizeof(b));
    if (csv)
        printf("group,rank,org_id,name,sent,received,on_time,late,open,on_time_share,median_hours_to_transfer,warnings,breaches,escalations\n");
    else
        printf("casebus report %s .. %s (China Standard Time)\n", a, b);
    for (int g = 0; g < 2; g++) {
        row_t *rows = g ? county : towns;
        size_t n = g ? nc : nt;
        const char *group = g ? "county" : "township";
        if (!csv) {
            printf("\n%s\n", g ? "County organisations (how they supported the townships)"
                                : "Townships (handling of enforcement)");
            printf("%4s  %-12s %5s %5s %7s %5s %5s %6s %9s %5s %5s %5s  %s\n", "rank", "org", "sent",
                   "recv", "on-time", "late", "open", "share", "median h", "warn", "red", "esc",
                   "name");
        }
        for (size_t i = 0; i < n; i++) {
            row_t *w = &rows[i];
            double m = median(w);
            char med[16];
            if (m < 0)
                snprintf(med, sizeof(med), "-");
            else
                snprintf(med, sizeof(med), "%.1f", m);
            if (csv)
                printf("%s,%zu,%s,\"%s\",%u,%u,%u,%u,%u,%.3f,%s,%u,%u,%u\n", group, i + 1, w->org,
                       w->name, w->sent, w->received, w->on_time, w->late, w->open,
                       on_time_share(w), m < 0 ? "" : med, w->warnings, w->breaches, w->escalations);
            else
                printf("%4zu  %-12s %5u %5u %7u %5u %5u %5.0f%% %9s %5u %5u %5u  %s\n", i + 1, w->org,
                       w->sent, w->received, w->on_time, w->late, w->open, 100 * on_time_share(w),
                       med, w->warnings, w->breaches, w->escalations, w->name);
        }
    }
    for (size_t i = 0; i < r.n; i++)
        free(r.rows[i].waits);
    free(towns);
    free(county);
    return 0;
}
