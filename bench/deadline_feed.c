/*
 * deadline_feed — stands in for router in bench/deadline.sh: appends events to
 * a router-format log, prints "ready" once they are durable, then serves the
 * log on the bus until SIGTERM. Run again on the same DIR to append more.
 *
 *   deadline_feed DIR ENDPOINT ORGS.csv open N        N transfers required now (due in 3 working days)
 *   deadline_feed DIR ENDPOINT ORGS.csv due N RATE AT_MS
 *                      N emergency transfers; the i-th falls due at AT_MS + i*1000/RATE
 *   deadline_feed DIR ENDPOINT ORGS.csv herd N AT_MS  N emergency transfers all due at AT_MS
 *   deadline_feed DIR ENDPOINT ORGS.csv spread N     N transfers required of 10 departments in
 *                      turn (bench/notify.sh: events addressed to 10 platforms)
 * The first run records the registry (OrgsImported) first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cbtime.h"
#include "log.h"
#include "orgs.h"
#include "testutil.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: deadline_feed DIR ENDPOINT ORGS.csv open|due|herd N [RATE] [AT_MS]\n");
        return 2;
    }
    log_init("deadline_feed", CB_LOG_WARN);
    const char *mode = argv[4];
    uint64_t n = strtoull(argv[5], NULL, 10);
    double rate = strcmp(mode, "due") == 0 && argc > 6 ? strtod(argv[6], NULL) : 0;
    int64_t at_ms = strcmp(mode, "due") == 0 && argc > 7   ? strtoll(argv[7], NULL, 10)
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
        char *csv = slurp(argv[3], &len);
        cb_org_list_t list;
        if (csv == NULL || cb_orgs_parse(csv, len, &list, &err) != 0)
            fatalx("orgs %s", csv ? err.message : "cannot read");
        Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
        oi.version = 1;
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
    static const char *departments[] = {"wy-zjj", "wy-scjg", "wy-zrzy", "wy-sthj", "wy-sw",
                                        "wy-nync", "wy-jtys", "wy-wgl", "wy-wsj", "wy-yjgl"};
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
            int64_t due = strcmp(mode, "due") == 0 ? at_ms + (int64_t)((double)i * 1000.0 / rate)
                                                   : at_ms;
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
    printf("ready\n");
    fflush(stdout);
    int rc = tu_serve_log(log, argv[2]);
    cb_log_destroy(&log);
    cb_store_destroy(&store);
    return rc ? 1 : 0;
}
