/*
 * router_feed — stands in for intake in bench/router.sh: writes N CaseReported
 * events (sample-county matters and townships, in batches of 1000 per commit)
 * into an intake-format log, prints "ready" once they are durable, then serves
 * the log on the bus until SIGTERM.
 *
 *   router_feed DIR ENDPOINT N
 */
#include <stdio.h>
#include <stdlib.h>

#include "bus.h"
#include "cbtime.h"
#include "log.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: router_feed DIR ENDPOINT N\n");
        return 2;
    }
    log_init("router_feed", CB_LOG_WARN);
    uint64_t n = strtoull(argv[3], NULL, 10);
    cb_store_t *store;
    cb_log_t *log;
    cb_error_t err;
    cb_store_opts_t o = {.dir = argv[1], .map_size = 8ULL << 30};
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, "intake", &err))
        fatalx("store %s", err.message);
    static const char *matters[] = {"330217001", "330218001", "330219001", "330220001",
                                    "330218004", "330217010"};
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
    printf("ready\n");
    fflush(stdout);
    int rc = tu_serve_log(log, argv[2]);
    cb_log_destroy(&log);
    cb_store_destroy(&store);
    return rc ? 1 : 0;
}
