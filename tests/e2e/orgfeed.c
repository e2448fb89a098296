/*
 * orgfeed — stands in for router's registry in intake's tests: publishes one
 * OrgsImported event (from an organisations CSV) on a bus endpoint under the
 * producer name "router", then serves fetches until SIGTERM.
 *
 *   orgfeed DIR ENDPOINT ORGS.csv
 */
#include <stdio.h>
#include <stdlib.h>

#include "bus.h"
#include "log.h"
#include "orgs.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: orgfeed DIR ENDPOINT ORGS.csv\n");
        return 2;
    }
    log_init("orgfeed", CB_LOG_WARN);
    FILE *f = fopen(argv[3], "rb");
    if (f == NULL)
        fatal("open %s", argv[3]);
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    cb_org_list_t list;
    cb_error_t err;
    if (cb_orgs_parse(text, len, &list, &err) != 0)
        fatalx("orgs %s", err.message);
    cb_store_t *store;
    cb_log_t *log;
    cb_store_opts_t o = {.dir = argv[1], .map_size = 64 << 20};
    if (cb_store_open(&store, &o, &err) || cb_log_open(&log, store, "router", &err))
        fatalx("store %s", err.message);
    MDB_txn *txn;
    cb_log_head_t head;
    if (cb_store_begin(store, true, &txn, &err) || cb_log_head(log, txn, &head, &err))
        fatalx("begin %s", err.message);
    if (head.seq == 0) {
        Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
        oi.version = 1;
        oi.source_name = argv[3];
        oi.orgs = list.orgs;
        oi.n_orgs = list.count;
        Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
        env.body_case = CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED;
        env.orgs_imported = &oi;
        if (cb_log_append(log, txn, &env, &err) != 0)
            fatalx("append %s", err.message);
    }
    if (cb_store_commit(&txn, &err) != 0)
        fatalx("commit %s", err.message);
    cb_orgs_free(&list);
    int rc = tu_serve_log(log, argv[2]);
    cb_log_destroy(&log);
    cb_store_destroy(&store);
    return rc ? 1 : 0;
}
