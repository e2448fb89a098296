/* fuzz_intake_command — the path both doors share: a Command checked
 * (limits.c) and executed against every rule, by one of eight actors, on a
 * scratch store holding the sample county's registry, three cases (one a
 * suspected crime), a transfer sent and a decision recorded. Every
 * transaction is aborted, so nothing accumulates between inputs.
 *
 * Input: byte 0 picks the actor; then either a casebus.v1.Command, or 0xFF,
 * one byte of command kind (minus 10) and a JSON body as the HTTP door takes
 * it (the seeds captured from the end-to-end tests). The custom mutator
 * (pbmutate.c) turns a JSON seed into its Command and mutates Commands as
 * protobuf, with the ids this store holds in its dictionary. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbtime.h"
#include "intake.h"
#include "log.h"
#include "orgs.h"
#include "pbmutate.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define NACTORS 8
#define JSON_FORM 0xFF

static intake_t in;
static intake_actor_t actors[NACTORS];
static char *scratch;
static const char *dict_strings[128];
static size_t ndict;
static pbm_dict_t dict = {dict_strings, 0};
static char ids[16][80]; /* ids made at setup */
static size_t nids;

static void remove_scratch(void)
{
    tu_rmtree(&scratch);
}

static void actor(int i, bool op, const char *a, const char *b)
{
    actors[i].operator_ = op;
    snprintf(actors[i].token_id, sizeof(actors[i].token_id), "%016x", i);
    snprintf(actors[i].orgs[actors[i].norgs++], 65, "%s", a);
    if (b)
        snprintf(actors[i].orgs[actors[i].norgs++], 65, "%s", b);
}

static void add_word(const char *s)
{
    if (ndict < sizeof(dict_strings) / sizeof(dict_strings[0]) - 1)
        dict_strings[ndict++] = s;
}

/* Runs a JSON command in a committed transaction; keeps the id it made. */
static void setup_command(intake_cmd_kind_t kind, const char *target, const char *json, int who,
                          const char *id_key)
{
    Casebus__V1__Command *cmd = NULL;
    cb_error_t err;
    cb_contract_report_t rep;
    MDB_txn *txn;
    if (intake_json_to_command(kind, target, json, strlen(json), &cmd, &rep) != 0) {
        fprintf(stderr, "fuzz setup: %s: %s\n", rep.err.field, rep.err.message);
        return;
    }
    if (cb_store_begin(in.st.store, true, &txn, &err) != 0)
        abort();
    uint8_t hash[32] = {0};
    intake_reply_t reply;
    intake_execute(&in, txn, cmd, &actors[who], hash, &reply);
    casebus__v1__command__free_unpacked(cmd, NULL);
    if (reply.status >= 300) {
        fprintf(stderr, "fuzz setup: %d %s\n", reply.status, reply.body);
        cb_store_abort(&txn);
    } else if (cb_store_commit(&txn, &err) != 0) {
        abort();
    }
    json_t *doc = reply.body ? json_loads(reply.body, 0, NULL) : NULL;
    const char *id = doc ? json_string_value(json_object_get(doc, id_key)) : NULL;
    if (id && nids < 16) {
        snprintf(ids[nids], sizeof(ids[nids]), "%s", id);
        add_word(ids[nids++]);
    }
    json_decref(doc);
    intake_reply_free(&reply);
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
    static char org_ids[64][65];
    for (size_t i = 0; i < list.count; i++) {
        intake_org_put(&in.st, txn, list.orgs[i], &err);
        if (i < 64) {
            snprintf(org_ids[i], sizeof(org_ids[i]), "%s", list.orgs[i]->org_id);
            add_word(org_ids[i]);
        }
    }
    cb_orgs_free(&list);
    if (cb_store_commit(&txn, &err))
        abort();

    actor(0, false, "wy-scjg", "wy-scjg-jcdd"); /* a county department, the finder */
    actor(1, false, "wy-lt", NULL);              /* a township */
    actor(2, false, "wy-sfj", NULL);             /* the judicial bureau */
    actor(3, false, "wy-gaj", NULL);             /* public security */
    actor(4, false, "wy-zhzf", NULL);            /* the command platform */
    actor(5, false, "wy-ldxz", NULL);            /* the leading-group office */
    actor(6, false, "wy-jcy", NULL);             /* the procuratorate */
    actor(7, true, "wy-zhzf", "wy-scjg");        /* an operator */

    static const char *const words[] = {"330217001", "330219003", "330723101000",
                                        "330723102000", "wy-ghost", "",
                                        "T20261123-000001", "D20261123-000001",
                                        "A20261123-000001", "transfer_letter", "case_source",
                                        "investigation", "2026-01", "2026", NULL};
    for (size_t i = 0; words[i]; i++)
        add_word(words[i]);
    dict.now_ms = cb_now_ms();

    char at[40], json[2048];
    time_t t = time(NULL) - 3600 + 8 * 3600;
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S+08:00", gmtime(&t));
    static const char *const cases[] = {
        "{\"source\":\"patrol\",\"matter_code\":\"330217001\",\"township_code\":\"330723101000\","
        "\"discovered_at\":\"%s\",\"discovered_by\":\"wy-scjg\",\"description\":\"fuzz 1\"}",
        "{\"source\":\"citizen_report\",\"matter_code\":\"330219003\",\"township_code\":"
        "\"330723102000\",\"discovered_at\":\"%s\",\"discovered_by\":\"wy-scjg\",\"urgency\":"
        "\"emergency\",\"description\":\"fuzz 2\",\"reporter\":{\"name\":\"张三\",\"phone\":"
        "\"13800138000\"}}",
        "{\"source\":\"patrol\",\"matter_code\":\"330217001\",\"township_code\":\"330723101000\","
        "\"discovered_at\":\"%s\",\"discovered_by\":\"wy-scjg\",\"suspected_crime\":true,"
        "\"description\":\"fuzz 3\"}",
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(json, sizeof(json), cases[i], at);
        setup_command(CMD_REPORT_CASE, NULL, json, 0, "case_id");
    }
    if (nids == 0)
        abort(); /* the rules would be unreachable: fix the setup */
    char case1[80];
    snprintf(case1, sizeof(case1), "%s", ids[0]);
    snprintf(json, sizeof(json),
             "{\"sender\":\"wy-scjg\",\"receiver\":\"wy-lt\",\"reason\":\"属乡镇赋权事项\","
             "\"approved_by\":\"王局长\",\"approved_at\":\"%s\",\"materials\":["
             "{\"kind\":\"transfer_letter\",\"title\":\"移送函\"},{\"kind\":\"case_source\","
             "\"title\":\"记录\"},{\"kind\":\"investigation\",\"text\":\"调查\"}]}",
             at);
    setup_command(CMD_SEND_TRANSFER, case1, json, 0, "transfer_id");
    snprintf(json, sizeof(json),
             "{\"by\":\"wy-scjg\",\"decided_at\":\"%s\",\"major\":true,\"summary\":\"罚款\","
             "\"fine_fen\":100000,\"feedback_to\":\"wy-lt\"}",
             at);
    setup_command(CMD_RECORD_DECISION, ids[1 < nids ? 1 : 0], json, 0, "decision_id");
    dict_strings[ndict] = NULL;
}

/* A JSON seed (0xFF, kind, body) as the Command the HTTP door makes of it. */
static Casebus__V1__Command *from_json(const uint8_t *data, size_t size)
{
    if (size < 2)
        return NULL;
    intake_cmd_kind_t kind = (intake_cmd_kind_t)(CMD_REPORT_CASE + data[0] % 19);
    Casebus__V1__Command *cmd = NULL;
    cb_contract_report_t rep;
    if (intake_json_to_command(kind, ids[data[0] % (nids ? nids : 1)], (const char *)data + 1,
                               size - 1, &cmd, &rep) != 0)
        return NULL;
    return cmd;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed)
{
    if (in.d.log == NULL)
        setup();
    if (size < 2 || max < 2)
        return LLVMFuzzerMutate(data, size, max);
    if (seed % 16 == 0)
        data[0] = (uint8_t)(seed >> 8); /* another actor */
    if (data[1] == JSON_FORM) {
        Casebus__V1__Command *cmd = from_json(data + 2, size - 2);
        if (cmd == NULL)
            return LLVMFuzzerMutate(data, size, max);
        size_t len = casebus__v1__command__get_packed_size(cmd);
        if (len + 1 <= max) {
            casebus__v1__command__pack(cmd, data + 1);
            size = len + 1;
        }
        casebus__v1__command__free_unpacked(cmd, NULL);
    }
    return 1 + pbm_mutate(&casebus__v1__command__descriptor, data + 1, size - 1, max - 1, seed,
                          &dict);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (in.d.log == NULL)
        setup();
    if (size < 1)
        return 0;
    const intake_actor_t *who = &actors[data[0] % NACTORS];
    Casebus__V1__Command *cmd = size >= 2 && data[1] == JSON_FORM
                                    ? from_json(data + 2, size - 2)
                                    : casebus__v1__command__unpack(NULL, size - 1, data + 1);
    if (cmd == NULL)
        return 0;
    MDB_txn *txn;
    cb_error_t err;
    cb_contract_report_t rep;
    intake_reply_t reply = {0};
    if (intake_check_command(cmd, &rep) == 0 && cb_store_begin(in.st.store, true, &txn, &err) == 0) {
        uint8_t hash[32] = {0};
        intake_execute(&in, txn, cmd, who, hash, &reply);
        intake_reply_free(&reply);
        cb_store_abort(&txn);
    }
    casebus__v1__command__free_unpacked(cmd, NULL);
    return 0;
}
