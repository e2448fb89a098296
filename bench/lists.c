/*
 * bench/lists — the command platform's lists (common/caselist.c) at scale.
 *
 *   lists fill DIR N     writes N case rows and their index keys into a store
 *                        at DIR (intake's databases, as intake keeps them), with
 *                        a county's spread: 18 townships, 40 matters, 30
 *                        organisations, 9 states, 6 % yellow, 3 % red, 1 %
 *                        escalated, reported over 365 days; and an open limit
 *                        for every other case. Rows per second.
 *   lists query DIR      each query below ROUNDS times on a read transaction,
 *                        first page (50) and a deep page (after 100 pages):
 *                        p50 / p99 / max in ms. The need: under 50 ms.
 *
 * The HTTP answer around the same call is measured by bench/lists.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caselist.h"
#include "cbtime.h"
#include "store.h"

#define ROUNDS 200
#define BATCH 20000

static const char *const states[] = {"transfer_required", "transfer_routed", "transfer_in_progress",
                                     "with_competent",    "with_competent",  "with_competent",
                                     "manual_dispatch",   "return_review",   "cancelled"};

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void township(unsigned i, char *code, size_t size)
{
    snprintf(code, size, "3307231%02u000", i);
}

/* intake's store at dir and its list databases; 0, or -1 with the reason printed */
static int open_lists(const char *dir, bool writable, cb_store_t **s, cb_lists_t *l)
{
    cb_store_opts_t o = {.dir = dir, .map_size = writable ? 16ULL << 30 : 0, .read_only = !writable};
    cb_error_t err;
    if (cb_store_open(s, &o, &err) != 0 || cb_lists_open(l, *s, &err) != 0) {
        fprintf(stderr, "lists: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int fill(const char *dir, unsigned long n)
{
    cb_store_t *s = NULL;
    cb_lists_t l;
    cb_error_t err;
    if (open_lists(dir, true, &s, &l) != 0)
        return 1;
    int64_t now = cb_now_ms(), year = 365LL * CB_DAY_MS;
    uint64_t t0 = cb_mono_ns();
    MDB_txn *txn = NULL;
    for (unsigned long i = 0; i < n; i++) {
        if (txn == NULL && cb_store_begin(s, true, &txn, &err) != 0)
            goto fail;
        cb_case_row_t r;
        memset(&r, 0, sizeof(r));
        uint64_t x = next_rand();
        snprintf(r.case_id, sizeof(r.case_id), "C2026%07lu", i + 1);
        /* increasing report times, as cases arrive */
        r.reported_ms = now - year + (int64_t)((double)year * (double)i / (double)n);
        r.discovered_ms = r.reported_ms - (int64_t)(x % 86400000);
        unsigned town = (unsigned)(x >> 8) % 18, matter = (unsigned)(x >> 16) % 40;
        township(town, r.township, sizeof(r.township));
        snprintf(r.township_name, sizeof(r.township_name), "乡镇%02u", town);
        snprintf(r.matter, sizeof(r.matter), "3302170%02u", matter);
        snprintf(r.matter_name, sizeof(r.matter_name), "事项 %u", matter);
        snprintf(r.state, sizeof(r.state), "%s", states[(x >> 24) % 9]);
        unsigned lv = (unsigned)(x >> 32) % 100;
        r.level = lv < 1 ? CB_LEVEL_ESCALATED : lv < 4 ? CB_LEVEL_RED : lv < 10 ? CB_LEVEL_YELLOW : 0;
        r.overdue = r.level >= CB_LEVEL_RED;
        r.open = (uint32_t)(x >> 40) % 3;
        r.next_due_ms = r.open ? now + (int64_t)(x % (5 * CB_DAY_MS)) : 0;
        snprintf(r.finder, sizeof(r.finder), "org-%02u", (unsigned)(x >> 44) % 12);
        snprintf(r.competent, sizeof(r.competent), "town-%02u", town);
        snprintf(r.holder, sizeof(r.holder), "%s", r.competent);
        snprintf(r.description, sizeof(r.description), "沿街占道经营 %lu", i);
        snprintf(r.orgs[r.norgs++], CB_LIST_ORG_MAX, "%s", r.finder);
        snprintf(r.orgs[r.norgs++], CB_LIST_ORG_MAX, "%s", r.competent);
        if (cb_lists_case_put(&l, txn, &r, &err) != 0)
            goto fail;
        if (i % 2 == 0) {
            cb_ob_row_t ob;
            memset(&ob, 0, sizeof(ob));
            snprintf(ob.obligation_id, sizeof(ob.obligation_id), "sign:T2026%07lu:1", i + 1);
            snprintf(ob.case_id, sizeof(ob.case_id), "%s", r.case_id);
            snprintf(ob.rule_id, sizeof(ob.rule_id), "sign");
            snprintf(ob.title, sizeof(ob.title), "签收移送案件");
            snprintf(ob.responsible, sizeof(ob.responsible), "%s", r.competent);
            snprintf(ob.township, sizeof(ob.township), "%s", r.township);
            ob.due_ms = now - 10 * CB_DAY_MS + (int64_t)(x % (20 * CB_DAY_MS));
            ob.level = r.level;
            if (cb_lists_ob_put(&l, txn, &ob, &err) != 0)
                goto fail;
        }
        if ((i + 1) % BATCH == 0 || i + 1 == n) {
            if (cb_store_commit(&txn, &err) != 0)
                goto fail;
        }
    }
    double secs = (double)(cb_mono_ns() - t0) / 1e9;
    printf("filled %lu cases (%lu open limits) in %.1f s: %.0f rows/s\n", n, (n + 1) / 2, secs,
           (double)n / secs);
    cb_store_destroy(&s);
    return 0;
fail:
    fprintf(stderr, "lists: %s\n", err.message);
    cb_store_abort(&txn);
    cb_store_destroy(&s);
    return 1;
}

static int count_case(void *ctx, const cb_case_row_t *r)
{
    (void)r;
    (*(unsigned *)ctx)++;
    return 0;
}

static int count_ob(void *ctx, const cb_ob_row_t *r)
{
    (void)r;
    (*(unsigned *)ctx)++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct named {
    const char *name;
    cb_case_query_t cq;
    cb_ob_query_t oq;
    bool obligations;
    unsigned deep; /* pages to skip first */
} named_t;

static int query(const char *dir)
{
    cb_store_t *s = NULL;
    cb_lists_t l;
    cb_error_t err;
    if (open_lists(dir, false, &s, &l) != 0)
        return 1;
    int64_t now = cb_now_ms();
    static const char *const scope[] = {"town-03"};
    named_t qs[] = {
        {"all, first page", .cq = {.level = -1, .overdue = -1, .limit = 50}},
        {"all, page 101", .cq = {.level = -1, .overdue = -1, .limit = 50}, .deep = 100},
        {"township", .cq = {.township = "330723105000", .level = -1, .overdue = -1, .limit = 50}},
        {"township + red", .cq = {.township = "330723105000", .level = CB_LEVEL_RED, .overdue = -1,
                                  .limit = 50}},
        {"state manual_dispatch", .cq = {.state = "manual_dispatch", .level = -1, .overdue = -1,
                                         .limit = 50}},
        {"overdue", .cq = {.level = -1, .overdue = 1, .limit = 50}},
        {"escalated + matter", .cq = {.matter = "330217007", .level = CB_LEVEL_ESCALATED,
                                      .overdue = -1, .limit = 50}},
        {"sparse filter (budget)", .cq = {.matter = "330217007", .state = "cancelled",
                                            .township = "330723101000", .level = CB_LEVEL_ESCALATED,
                                            .overdue = -1, .limit = 50}},
        {"last 7 days", .cq = {.level = -1, .overdue = -1, .limit = 50,
                               .from_ms = now - 7 * CB_DAY_MS}},
        {"a township's token", .cq = {.level = -1, .overdue = -1, .limit = 50, .scope = scope,
                                      .nscope = 1}},
        {"obligations overdue", .oq = {.level = -1, .limit = 50, .due_to_ms = now},
         .obligations = true},
        {"obligations due soon", .oq = {.level = -1, .limit = 50, .due_from_ms = now},
         .obligations = true},
        {"obligations of one org", .oq = {.responsible = "town-07", .level = -1, .limit = 50,
                                          .due_from_ms = now},
         .obligations = true},
    };
    printf("%-26s %6s %8s %8s %8s   (need: under 50 ms)\n", "query", "rows", "p50 ms", "p99 ms",
           "max ms");
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double t[ROUNDS];
        unsigned rows = 0;
        for (int round = 0; round < ROUNDS; round++) {
            MDB_txn *txn;
            if (cb_store_begin(s, false, &txn, &err) != 0)
                return 1;
            char next[CB_LIST_CURSOR_MAX] = "", cur[CB_LIST_CURSOR_MAX] = "";
            unsigned got = 0;
            for (unsigned p = 0; p < qs[k].deep; p++) {
                qs[k].cq.cursor = cur;
                if (cb_lists_cases(&l, txn, &qs[k].cq, count_case, &got, next, &err) != 0)
                    return 1;
                snprintf(cur, sizeof(cur), "%s", next);
            }
            got = 0;
            qs[k].cq.cursor = cur;
            qs[k].oq.cursor = cur;
            uint64_t t0 = cb_mono_ns();
            int rc = qs[k].obligations
                         ? cb_lists_obligations(&l, txn, &qs[k].oq, count_ob, &got, next, &err)
                         : cb_lists_cases(&l, txn, &qs[k].cq, count_case, &got, next, &err);
            t[round] = (double)(cb_mono_ns() - t0) / 1e6;
            cb_store_abort(&txn);
            if (rc != 0) {
                fprintf(stderr, "lists: %s: %s\n", qs[k].name, err.message);
                return 1;
            }
            rows = got;
        }
        qsort(t, ROUNDS, sizeof(double), cmp_double);
        printf("%-26s %6u %8.3f %8.3f %8.3f\n", qs[k].name, rows, t[ROUNDS / 2],
               t[ROUNDS * 99 / 100], t[ROUNDS - 1]);
    }
    cb_store_destroy(&s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "fill") == 0)
        return fill(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "query") == 0)
        return query(argv[2]);
    fprintf(stderr, "usage: lists fill DIR N | lists query DIR\n");
    return 2;
}
