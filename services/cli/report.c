/*
 * report.c — `casebus report --quarter 2026Q3 | --from DATE --to DATE [--csv]`:
 * the two-way supervision ranking of DOMAIN.md (seed 000 §六): per
 * organisation, transfers sent and received, time limits on time / late /
 * still open, the median time from discovery to a routed transfer, and the
 * warnings, breaches and escalations it drew. Read-only from router's and
 * deadline's logs; what is counted and how it is ranked is ranking.h's.
 */
#include "cli.h"
#include "cbtime.h"
#include "evlog.h"
#include "store.h"
#include "ranking.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_log(cb_ranking_t *r, int64_t to, const cb_config_t *cfg, const char *daemon)
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
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, daemon, &err) ||
        cb_store_begin(store, false, &txn, &err) || cb_log_head(log, txn, &head, &err)) {
        fprintf(stderr, "casebus: %s: cannot read its log: %s\n", daemon, err.message);
        rc = 1;
        goto out;
    }
    /* From the beginning: a limit opened before the period may fall due in it. */
    for (uint64_t seq = 1; seq <= head.seq; seq++) {
        const uint8_t *raw;
        size_t len;
        uint8_t *owned;
        if (cb_log_get(log, txn, seq, &raw, &len, &owned, &err) != 0)
            break;
        Casebus__V1__Envelope *env = casebus__v1__envelope__unpack(NULL, len, raw);
        free(owned);
        if (env == NULL)
            continue;
        bool stop = env->recorded_at_ms >= to;
        if (!stop && cb_ranking_add(r, env) != 0) {
            fprintf(stderr, "casebus: report: out of memory\n");
            rc = 1;
            stop = true;
        }
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

int cli_report(const cb_config_t *cfg, int argc, char **argv)
{
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
    int64_t from_ms = cb_cst_day_start_ms(d0), to_ms = cb_cst_day_start_ms(d1);
    cb_ranking_t *r = cb_ranking_new(from_ms, to_ms, cb_now_ms());
    if (r == NULL || read_log(r, to_ms, cfg, "router") != 0 ||
        read_log(r, to_ms, cfg, "deadline") != 0) {
        cb_ranking_destroy(&r);
        return 1;
    }
    char a[16], b[16];
    cb_date_format(d0, a, sizeof(a));
    cb_date_format(d1 - 1, b, sizeof(b));
    if (csv)
        printf("group,rank,org_id,name,sent,received,fell_due,on_time,late,open_not_yet_due,"
               "on_time_share,median_late_hours,median_hours_to_transfer,warnings,breaches,"
               "escalations,supervision_orders,supervision_answers\n");
    else
        printf("casebus report %s .. %s (China Standard Time)\n%s\n", a, b, CB_RANK_FORMULA);
    for (int g = 0; g < 2; g++) {
        cb_rank_org_t **rows;
        size_t n = cb_ranking_group(r, g == 0, &rows);
        const char *group = g ? "county" : "township";
        if (!csv) {
            printf("\n%s\n", g ? "County organisations (how they supported the townships)"
                                : "Townships (handling of enforcement)");
            printf("%4s  %-12s %5s %5s %5s %7s %5s %5s %6s %6s %9s %5s %5s %5s %7s  %s\n",
                   "rank", "org", "sent", "recv", "due", "on-time", "late", "open", "share",
                   "late h", "median h", "warn", "red", "esc", "督办 ans", "name");
        }
        for (size_t i = 0; i < n; i++) {
            cb_rank_org_t *w = rows[i];
            double m = cb_rank_median_hours(w), share = cb_rank_share(w);
            int64_t late = cb_rank_median_lateness_ms(w);
            char med[16] = "", lh[16] = "", sh[16] = "";
            if (m >= 0)
                snprintf(med, sizeof(med), "%.1f", m);
            if (late >= 0)
                snprintf(lh, sizeof(lh), "%.1f", (double)late / 3600000.0);
            if (csv) {
                if (share >= 0)
                    snprintf(sh, sizeof(sh), "%.3f", share);
                printf("%s,%zu,%s,\"%s\",%u,%u,%u,%u,%u,%u,%s,%s,%s,%u,%u,%u,%u,%u\n", group, i + 1,
                       w->org, w->name, w->sent, w->received, w->due, w->on_time, w->late,
                       w->pending, sh, lh, med, w->warnings, w->breaches, w->escalations,
                       w->orders, w->answers);
            } else {
                if (share >= 0)
                    snprintf(sh, sizeof(sh), "%.0f%%", 100 * share);
                char sv[24];
                snprintf(sv, sizeof(sv), "%u/%u", w->answers, w->orders);
                printf("%4zu  %-12s %5u %5u %5u %7u %5u %5u %6s %6s %9s %5u %5u %5u %7s  %s\n",
                       i + 1, w->org, w->sent, w->received, w->due, w->on_time, w->late,
                       w->pending, share >= 0 ? sh : "-", late >= 0 ? lh : "-", m >= 0 ? med : "-",
                       w->warnings, w->breaches, w->escalations, sv, w->name);
            }
        }
    }
    cb_ranking_destroy(&r);
    return 0;
}
