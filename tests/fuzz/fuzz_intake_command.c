/* fuzz_intake_command — the ZeroMQ door's path: a Command frame decoded and
 * executed against every rule, on a scratch store holding the sample county's
 * registry and one case. Every transaction is aborted, so nothing accumulates. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "log.h"
#include "orgs.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static intake_t in;
static intake_actor_t actor;
static char *scratch;

static void remove_scratch(void)
{
    tu_rmtree(&scratch);
}

static void setup(void)
{
    cb_error_t err;
    cb_store_t *store;
    log_init("fuzz", CB_LOG_ERROR);
    scratch = tu_tmpdir("fuzzintake");
    atexit(remove_scratch);
    cb_store_opts_t o = {.dir = scratch, .map_size = 256 << 20};
    if (cb_store_open(&store, &o, &err) || intake_state_open(&in.st, store, &err) ||
        cb_log_open(&in.d.log, store, "intake", &err))
        abort();
    in.max_age_days = 1825;
    FILE *f = fopen("deploy/sample/orgs.csv", "rb");
    static char text[1 << 16];
    size_t len = f ? fread(text, 1, sizeof(text), f) : 0;
    if (f)
        fclose(f);
    cb_org_list_t list;
    MDB_txn *txn;
    if (cb_orgs_parse(text, len, &list, &err) || cb_store_begin(store, true, &txn, &err))
        abort();
    for (size_t i = 0; i < list.count; i++)
        intake_org_put(&in.st, txn, list.orgs[i], &err);
    cb_orgs_free(&list);
    if (cb_store_commit(&txn, &err))
        abort();
    const char *orgs[] = {"wy-scjg", "wy-lt", "wy-sfj", "wy-scjg-jcdd"};
    actor.norgs = 4;
    for (int i = 0; i < 4; i++)
        snprintf(actor.orgs[i], sizeof(actor.orgs[i]), "%s", orgs[i]);
    snprintf(actor.token_id, sizeof(actor.token_id), "0123456789abcdef");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (in.d.log == NULL)
        setup();
    Casebus__V1__Command *cmd = casebus__v1__command__unpack(NULL, size, data);
    if (cmd == NULL)
        return 0;
    MDB_txn *txn;
    cb_error_t err;
    if (cb_store_begin(in.st.store, true, &txn, &err) == 0) {
        uint8_t hash[32] = {0};
        intake_reply_t reply;
        intake_execute(&in, txn, cmd, &actor, hash, &reply);
        intake_reply_free(&reply);
        cb_store_abort(&txn);
    }
    casebus__v1__command__free_unpacked(cmd, NULL);
    return 0;
}
