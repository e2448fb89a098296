/*
 * feed — stands in for an upstream daemon: appends events to its log in DIR,
 * prints "ready" once they are durable, then serves the log on the bus at
 * ENDPOINT until SIGTERM. Run again on the same DIR to append more. One feeder
 * for the end-to-end tests and the benches.
 *
 * As router (the first run records the registry, OrgsImported, first):
 *   feed DIR ENDPOINT ORGS.csv registry         the registry alone (intake's tests)
 *   feed DIR ENDPOINT ORGS.csv open N           N transfers required now (due in 3 working days)
 *   feed DIR ENDPOINT ORGS.csv due N RATE AT_MS N emergency transfers; the i-th falls due at
 *                                               AT_MS + i*1000/RATE
 *   feed DIR ENDPOINT ORGS.csv herd N AT_MS     N emergency transfers all due at AT_MS
 *   feed DIR ENDPOINT ORGS.csv spread N         N transfers required of 10 departments in
 *                                               turn (events addressed to 10 platforms)
 * As intake:
 *   feed DIR ENDPOINT - cases N                 N CaseReported (sample-county matters and
 *                                               townships): bench/router.sh
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"
#include "testutil.h"

/* "ready", then the log on the bus until SIGTERM. */
static int serve(cb_store_t *store, cb_log_t *log, const char *endpoint)
{
    printf("ready\n");
    fflush(stdout);
    int rc = tu_serve_log(log, endpoint);
    cb_log_destroy(&log);
    cb_store_destroy(&store);
    return rc ? 1 : 0;
}

/* As intake: n CaseReported, 1000 to a commit. */
static int feed_cases(const char *dir, const char *endpoint, uint64_t n)
{
    cb_store_t *store;
    cb_log_t *log;
    cb_error_t err;
    cb_store_opts_t o = {.dir = dir, .map_size = 8ULL << 30};
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, "intake", &err))
        fatalx("store %s", err.message);
    static const char *matters[] = {"330217001", "330218001", "330219001",
                                    "330220001", "330218004", "330217010"};
    static const char *towns[] = {"330723101000", "330723102000", "330723103000", "330723201000"};
    Casebus__V1__OrgRef by = CASEBUS__V1__ORG_REF__INIT;
    by.org_id = "wy-scjg";
    by.name = "武义县市场监督管理局";
    by.kind = CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT;
    int64_t at = cb_now_ms() - 3600 * 1000;
    for (uint64_t i = 0; i < n;) {
        MDB_txn *txn;
        if (cb_store_begin(store, true, &txn, &err) != 0)
            fatalx("begin %s", err.message);
        for (int k = 0; k < 1000 && i < n; k++, i++) {
            char case_id[32];
            snprintf(case_id, sizeof(case_id), "C20261123-%06llu", (unsigned long long)i + 1);
            Casebus__V1__CaseSummary c = CASEBUS__V1__CASE_SUMMARY__INIT;
            c.case_id = case_id;
            c.source = CASEBUS__V1__SOURCE_CHANNEL__SOURCE_CHANNEL_PATROL;
            c.matter_code = (char *)matters[i % 6];
            c.township_code = (char *)towns[i % 4];
            c.discovered_at_ms = at;
            c.discovered_by = &by;
            c.urgency = CASEBUS__V1__URGENCY__URGENCY_NORMAL;
            c.description = "巡查发现沿街店铺占道经营，影响通行。";
            Casebus__V1__CaseReported r = CASEBUS__V1__CASE_REPORTED__INIT;
            r.case_ = &c;
            Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
            env.case_id = case_id;
            env.body_case = CASEBUS__V1__ENVELOPE__BODY_CASE_REPORTED;
            env.case_reported = &r;
            if (cb_log_append(log, txn, &env, &err) != 0)
                fatalx("append %s", err.message);
        }
        if (cb_store_commit(&txn, &err) != 0)
            fatalx("commit %s", err.message);
    }
    return serve(store, log, endpoint);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc < 6 && strcmp(argv[4], "registry") != 0)) {
        fprintf(stderr, "usage: feed DIR ENDPOINT ORGS.csv registry|open|due|herd|spread|cases "
                        "[N [RATE] [AT_MS]]\n");
        return 2;
    }
    log_init("feed", CB_LOG_WARN);
    const char *mode = argv[4];
    uint64_t n = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
    if (strcmp(mode, "cases") == 0)
        return feed_cases(argv[1], argv[2], n);
    double rate = strcmp(mode, "due") == 0 && argc > 6 ? strtod(argv[6], NULL) : 0;
    int64_t at_ms = strcmp(mode, "due") == 0 && argc > 7    ? strtoll(argv[7], NULL, 10)
                    : strcmp(mode, "herd") == 0 && argc > 6 ? strtoll(argv[6], NULL, 10)
                                                            : 0;
    cb_store_t *store;
    cb_log_t *log;
    cb_error_t err;
    cb_store_opts_t o = {.dir = argv[1], .map_size = 16ULL << 30};
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, "router", &err))
        fatalx("store %s", err.message);
    MDB_txn *txn;
    cb_log_head_t head;
    if (cb_store_begin(store, true, &txn, &err) || cb_log_head(log, txn, &head, &err))
        fatalx("head %s", err.message);
    if (head.seq == 0) {
        size_t len;
        char *csv = tu_slurp(argv[3], &len);
        cb_org_list_t list;
        if (csv == NULL || cb_orgs_parse(csv, len, &list, &err) != 0)
            fatalx("orgs %s", csv ? err.message : "cannot read");
        free(csv);
        Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
        oi.version = 1;
        oi.source_name = (char *)argv[3];
        oi.orgs = list.orgs;
        oi.n_orgs = list.count;
        Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED;
        env.orgs_imported = &oi;
        if (cb_log_append(log, txn, &env, &err) != 0)
            fatalx("append %s", err.message);
        cb_orgs_free(&list);
    }
    if (cb_store_commit(&txn, &err) != 0)
        fatalx("commit %s", err.message);

    Casebus__V1__OrgRef from = CASEBUS__V1__ORG_REF__INIT, to = CASEBUS__V1__ORG_REF__INIT;
    from.org_id = "wy-scjg";
    from.name = "武义县市场监督管理局";
    from.kind = CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT;
    to.org_id = "wy-lt";
    to.name = "履坦镇人民政府";
    to.kind = CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP;
    int64_t now = cb_now_ms();
    bool emergency = strcmp(mode, "due") == 0 || strcmp(mode, "herd") == 0;
    static const char *departments[] = {"wy-zjj",  "wy-scjg", "wy-zrzy", "wy-sthj", "wy-sw",
                                        "wy-nync", "wy-jtys", "wy-wgl",  "wy-wsj",  "wy-yjgl"};
    bool spread = strcmp(mode, "spread") == 0;
    for (uint64_t i = 0; i < n;) {
        if (cb_store_begin(store, true, &txn, &err) != 0)
            fatalx("begin %s", err.message);
        for (int k = 0; k < 2000 && i < n; k++, i++) {
            char case_id[48];
            snprintf(case_id, sizeof(case_id), "B%s-%lld-%09llu", mode, (long long)(now / 1000),
                     (unsigned long long)i);
            Casebus__V1__CaseSummary c = CASEBUS__V1__CASE_SUMMARY__INIT;
            c.case_id = case_id;
            c.matter_code = "330217001";
            c.township_code = "330723101000";
            c.discovered_by = &from;
            c.urgency = emergency ? CASEBUS__V1__URGENCY__URGENCY_EMERGENCY
                                  : CASEBUS__V1__URGENCY__URGENCY_NORMAL;
            int64_t due =
                strcmp(mode, "due") == 0 ? at_ms + (int64_t)((double)i * 1000.0 / rate) : at_ms;
            c.discovered_at_ms = emergency ? due - 24 * 3600 * 1000LL : now;
            if (spread)
                from.org_id = (char *)departments[i % 10];
            Casebus__V1__TransferRequired t = CASEBUS__V1__TRANSFER_REQUIRED__INIT;
            t.transfer_id = "";
            t.case_ = &c;
            t.from = &from;
            t.to = &to;
            t.urgency = c.urgency;
            Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
            env.case_id = case_id;
            env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_REQUIRED;
            env.transfer_required = &t;
            if (cb_log_append(log, txn, &env, &err) != 0)
                fatalx("append %s", err.message);
        }
        if (cb_store_commit(&txn, &err) != 0)
            fatalx("commit %s", err.message);
    }
    return serve(store, log, argv[2]);
}
