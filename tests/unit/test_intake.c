/* test_intake.c — intake's handlers without sockets: a command executed into a
 * case view, then router's and deadline's events applied to that view exactly
 * as the bus would hand them over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbtime.h"
#include "intake/intake.h"
#include "orgs.h"
#include "testutil.h"

typedef struct fx {
    char *dir;
    cb_store_t *store;
    intake_t in;
    intake_actor_t actor;
    char case_id[48];
    uint64_t seq;
} fx_t;

static Casebus__V1__OrgRef *ref(const char *id, const char *name, int kind)
{
    static Casebus__V1__OrgRef r[8];
    static int n;
    Casebus__V1__OrgRef *o = &r[n++ % 8];
    casebus__v1__org_ref__init(o);
    o->org_id = (char *)id;
    o->name = (char *)name;
    o->kind = kind;
    return o;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    cb_error_t err;
    if (tu_store_open("intakeunit", "intake", &f->dir, &f->store, &f->in.d.log) != 0 ||
        intake_state_open(&f->in.st, f->store, &err) != 0)
        return -1;
    f->in.max_age_days = 1825;
    const char *csv = "org_id,kind,name,division_code\n"
                      "wy-scjg,COUNTY_DEPARTMENT,市场监管局,330723\n"
                      "wy-lt,TOWNSHIP,履坦镇,330723101000\n";
    cb_org_list_t list;
    MDB_txn *txn;
    if (cb_orgs_parse(csv, strlen(csv), &list, &err) || cb_store_begin(f->store, true, &txn, &err))
        return -1;
    /* The registry arrives as router's OrgsImported. */
    Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
    oi.orgs = list.orgs;
    oi.n_orgs = list.count;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_ORGS_IMPORTED;
    env.orgs_imported = &oi;
    cb_bus_event_t ev = {"router", 1, &env, NULL, 0};
    if (intake_apply_upstream(&f->in, txn, &ev, &err) != 0)
        return -1;
    cb_orgs_free(&list);

    snprintf(f->actor.token_id, sizeof(f->actor.token_id), "0011223344556677");
    snprintf(f->actor.orgs[0], sizeof(f->actor.orgs[0]), "wy-scjg");
    f->actor.norgs = 1;
    char body[512];
    char at[40];
    cb_time_format_cst(cb_now_ms() - 3600 * 1000, at, sizeof(at));
    snprintf(body, sizeof(body),
             "{\"source\":\"patrol\",\"matter_code\":\"M1\",\"township_code\":\"330723101000\","
             "\"discovered_at\":\"%s\",\"discovered_by\":\"wy-scjg\",\"description\":\"d\"}",
             at);
    Casebus__V1__Command *cmd;
    cb_contract_report_t rep;
    if (intake_json_to_command(CMD_REPORT_CASE, NULL, body, strlen(body), &cmd, &rep))
        return -1;
    uint8_t hash[32] = {0};
    intake_reply_t reply;
    intake_execute(&f->in, txn, cmd, &f->actor, hash, &reply);
    casebus__v1__command__free_unpacked(cmd, NULL);
    if (reply.status != 201) {
        fprintf(stderr, "report: %d %s\n", reply.status, reply.body);
        return -1;
    }
    json_t *doc = json_loads(reply.body, 0, NULL);
    snprintf(f->case_id, sizeof(f->case_id), "%s",
             json_string_value(json_object_get(doc, "case_id")));
    json_decref(doc);
    intake_reply_free(&reply);
    if (cb_store_commit(&txn, &err))
        return -1;
    f->seq = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    cb_log_destroy(&f->in.d.log);
    cb_store_destroy(&f->store);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

static void apply(fx_t *f, const char *producer, Casebus__V1__Envelope *env)
{
    MDB_txn *txn;
    cb_error_t err;
    env->case_id = f->case_id;
    env->recorded_at_ms = cb_now_ms();
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    cb_bus_event_t ev = {producer, ++f->seq, env, NULL, 0};
    assert_int_equal(intake_apply_upstream(&f->in, txn, &ev, &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

static json_t *view(fx_t *f)
{
    MDB_txn *txn;
    cb_error_t err;
    intake_reply_t r;
    f->actor.operator_ = true;
    cb_store_begin(f->store, false, &txn, &err);
    intake_case_view(&f->in, txn, f->case_id, &f->actor, &r);
    cb_store_abort(&txn);
    assert_int_equal(r.status, 200);
    json_t *v = json_loads(r.body, 0, NULL);
    intake_reply_free(&r);
    return v;
}

static void router_and_deadline_events_shape_the_case_view(void **state)
{
    fx_t *f = *state;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;

    Casebus__V1__JurisdictionResolved jr = CASEBUS__V1__JURISDICTION_RESOLVED__INIT;
    jr.competent = ref("wy-lt", "履坦镇", CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP);
    jr.rule = CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_TOWNSHIP;
    jr.transfer_needed = true;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_JURISDICTION_RESOLVED;
    env.jurisdiction_resolved = &jr;
    apply(f, "router", &env);

    Casebus__V1__TransferRouted tr = CASEBUS__V1__TRANSFER_ROUTED__INIT;
    tr.transfer_id = "T20261123-000001";
    tr.sender = ref("wy-scjg", "市场监管局", CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT);
    tr.receiver = ref("wy-lt", "履坦镇", CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP);
    tr.state = CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_SENT;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED;
    env.transfer_routed = &tr;
    apply(f, "router", &env);

    Casebus__V1__Obligation ob = CASEBUS__V1__OBLIGATION__INIT;
    ob.obligation_id = "O1";
    ob.rule_id = "sign_for";
    ob.rule_title = "签收移送案件";
    ob.responsible = ref("wy-lt", "履坦镇", CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP);
    ob.due_at_ms = cb_now_ms() + CB_DAY_MS;
    Casebus__V1__ObligationOpened oo = CASEBUS__V1__OBLIGATION_OPENED__INIT;
    oo.obligation = &ob;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED;
    env.obligation_opened = &oo;
    apply(f, "deadline", &env);
    Casebus__V1__DeadlineBreached db = CASEBUS__V1__DEADLINE_BREACHED__INIT;
    db.obligation = &ob;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED;
    env.deadline_breached = &db;
    apply(f, "deadline", &env);

    Casebus__V1__TransferStateChanged sc = CASEBUS__V1__TRANSFER_STATE_CHANGED__INIT;
    sc.transfer_id = "T20261123-000001";
    sc.from_state = CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_RECEIVED;
    sc.to_state = CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_ACCEPTED;
    sc.receiver = tr.receiver;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_STATE_CHANGED;
    env.transfer_state_changed = &sc;
    apply(f, "router", &env);

    json_t *v = view(f);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "competent"), "org_id")),
                        "wy-lt");
    assert_string_equal(json_string_value(json_object_get(v, "jurisdiction_rule")), "township");
    assert_string_equal(json_string_value(json_object_get(v, "state")), "with_competent");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "holder"), "org_id")),
                        "wy-lt");
    json_t *t = json_object_get(json_object_get(v, "transfers"), "T20261123-000001");
    assert_string_equal(json_string_value(json_object_get(t, "state")), "accepted");
    json_t *o = json_object_get(json_object_get(v, "obligations"), "O1");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "red");
    assert_string_equal(json_string_value(json_object_get(o, "state")), "open");
    json_t *tl = json_object_get(v, "timeline");
    assert_int_equal(json_array_size(tl), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 4), "producer")),
                        "deadline");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 5), "event")),
                        "transfer_state_changed");
    json_decref(v);
}

static void events_of_unknown_cases_change_nothing(void **state)
{
    fx_t *f = *state;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    Casebus__V1__RoutingFailed rf = CASEBUS__V1__ROUTING_FAILED__INIT;
    rf.reason = "unknown matter";
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_ROUTING_FAILED;
    env.routing_failed = &rf;
    snprintf(f->case_id, sizeof(f->case_id), "C19990101-000001");
    apply(f, "router", &env); /* returns 0: nothing to show, nothing written */
    MDB_txn *txn;
    cb_error_t err;
    cb_store_begin(f->store, false, &txn, &err);
    assert_null(intake_case_get(&f->in.st, txn, "C19990101-000001"));
    cb_store_abort(&txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(router_and_deadline_events_shape_the_case_view, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(events_of_unknown_cases_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
