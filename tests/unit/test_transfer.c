/* test_transfer.c — every transfer transition, allowed and refused, from every
 * state: who may do it, from which state, where it leads; a refusal changes
 * nothing and names its reason. Then the dispute path end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "router/transfer.h"

#define S(x) CASEBUS__V1__TRANSFER_STATE__TRANSFER_STATE_##x
#define SENDER "wy-scjg"
#define RECEIVER "wy-lt"
#define OTHER "wy-dt"

static router_transfer_t fresh(int state)
{
    router_transfer_t t = {.state = state, .route_count = 1};
    snprintf(t.transfer_id, sizeof(t.transfer_id), "T20261123-000001");
    snprintf(t.sender, sizeof(t.sender), SENDER);
    snprintf(t.receiver, sizeof(t.receiver), RECEIVER);
    return t;
}

typedef struct row {
    int from;
    router_step_t step;
    const char *by, *decided;
    int to;             /* 0: refused */
    const char *code;   /* when refused */
} row_t;

static const row_t table[] = {
    /* signing for (签收) */
    {S(SENT), STEP_RECEIVE, RECEIVER, NULL, S(RECEIVED), NULL},
    {S(SENT), STEP_RECEIVE, SENDER, NULL, 0, "not_receiver"},
    {S(SENT), STEP_RECEIVE, OTHER, NULL, 0, "not_receiver"},
    {S(RECEIVED), STEP_RECEIVE, RECEIVER, NULL, 0, "wrong_state"},
    {S(ACCEPTED), STEP_RECEIVE, RECEIVER, NULL, 0, "wrong_state"},
    {S(DISPUTED), STEP_RECEIVE, RECEIVER, NULL, 0, "wrong_state"},
    /* accepting */
    {S(SENT), STEP_ACCEPT, RECEIVER, NULL, S(ACCEPTED), NULL},
    {S(RECEIVED), STEP_ACCEPT, RECEIVER, NULL, S(ACCEPTED), NULL},
    {S(RECEIVED), STEP_ACCEPT, SENDER, NULL, 0, "not_receiver"},
    {S(RETURNED), STEP_ACCEPT, RECEIVER, NULL, 0, "wrong_state"},
    {S(ACCEPTED), STEP_ACCEPT, RECEIVER, NULL, 0, "wrong_state"},
    {S(CONCLUDED), STEP_ACCEPT, RECEIVER, NULL, 0, "wrong_state"},
    /* returning */
    {S(SENT), STEP_RETURN, RECEIVER, NULL, S(RETURNED), NULL},
    {S(RECEIVED), STEP_RETURN, RECEIVER, NULL, S(RETURNED), NULL},
    {S(RECEIVED), STEP_RETURN, OTHER, NULL, 0, "not_receiver"},
    {S(ACCEPTED), STEP_RETURN, RECEIVER, NULL, 0, "wrong_state"},
    {S(DECIDED), STEP_RETURN, RECEIVER, NULL, 0, "wrong_state"},
    /* disputing */
    {S(SENT), STEP_DISPUTE, RECEIVER, NULL, S(DISPUTED), NULL},
    {S(RECEIVED), STEP_DISPUTE, RECEIVER, NULL, S(DISPUTED), NULL},
    {S(RETURNED), STEP_DISPUTE, SENDER, NULL, S(DISPUTED), NULL},
    {S(RETURNED), STEP_DISPUTE, RECEIVER, NULL, 0, "wrong_state"},
    {S(SENT), STEP_DISPUTE, SENDER, NULL, 0, "wrong_state"},
    {S(SENT), STEP_DISPUTE, OTHER, NULL, 0, "not_party"},
    {S(ACCEPTED), STEP_DISPUTE, RECEIVER, NULL, 0, "wrong_state"},
    {S(DISPUTED), STEP_DISPUTE, RECEIVER, NULL, 0, "wrong_state"},
    /* deciding (the judicial bureau; intake checked the kind) */
    {S(DISPUTED), STEP_DECIDE, "wy-sfj", RECEIVER, S(SENT), NULL},
    {S(DISPUTED), STEP_DECIDE, "wy-sfj", OTHER, S(SENT), NULL},
    {S(DISPUTED), STEP_DECIDE, "wy-sfj", SENDER, S(CONCLUDED), NULL},
    {S(DISPUTED), STEP_DECIDE, "wy-sfj", "", 0, "no_decision"},
    {S(SENT), STEP_DECIDE, "wy-sfj", RECEIVER, 0, "wrong_state"},
    {S(RETURNED), STEP_DECIDE, "wy-sfj", RECEIVER, 0, "wrong_state"},
    {S(CONCLUDED), STEP_DECIDE, "wy-sfj", RECEIVER, 0, "wrong_state"},
    /* sending again after a return */
    {S(RETURNED), STEP_RESEND, SENDER, NULL, S(SENT), NULL},
    {S(RETURNED), STEP_RESEND, RECEIVER, NULL, 0, "not_sender"},
    {S(SENT), STEP_RESEND, SENDER, NULL, 0, "wrong_state"},
    {S(ACCEPTED), STEP_RESEND, SENDER, NULL, 0, "wrong_state"},
};

static void every_transition_allowed_and_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const row_t *r = &table[i];
        router_transfer_t t = fresh(r->from), before = t;
        router_verdict_t v;
        router_transfer_step(&t, r->step, r->by, r->decided, &v);
        char what[160];
        snprintf(what, sizeof(what), "row %zu: %s by %s from %s", i, router_step_name(r->step),
                 r->by, router_state_name(r->from));
        if (r->to) {
            if (!v.ok || t.state != r->to || v.from != r->from || v.to != r->to)
                fail_msg("%s: want %s, got ok=%d state=%s (%s)", what, router_state_name(r->to),
                         v.ok, router_state_name(t.state), v.message);
        } else {
            if (v.ok || strcmp(v.code, r->code) != 0 || v.message[0] == '\0' ||
                memcmp(&t, &before, sizeof(t)) != 0)
                fail_msg("%s: want refusal %s with nothing changed, got ok=%d code=%s", what,
                         r->code, v.ok, v.ok ? "" : v.code);
        }
    }
}

static void dispute_decision_reroutes_to_the_decided_organisation(void **state)
{
    (void)state;
    router_transfer_t t = fresh(S(SENT));
    router_verdict_t v;
    router_transfer_step(&t, STEP_RETURN, RECEIVER, NULL, &v);
    assert_true(v.ok);
    router_transfer_step(&t, STEP_DISPUTE, SENDER, NULL, &v);
    assert_true(v.ok);
    router_transfer_step(&t, STEP_DECIDE, "wy-sfj", OTHER, &v);
    assert_true(v.ok && v.rerouted);
    assert_string_equal(t.receiver, OTHER);
    assert_int_equal(t.route_count, 2);
    assert_int_equal(t.state, S(SENT));
    /* The old receiver is no longer party to the steps; the new one is. */
    router_transfer_step(&t, STEP_ACCEPT, RECEIVER, NULL, &v);
    assert_false(v.ok);
    router_transfer_step(&t, STEP_ACCEPT, OTHER, NULL, &v);
    assert_true(v.ok);
    assert_int_equal(t.state, S(ACCEPTED));
}

#define PLATFORM "wy-zhzf"
#define OFFICE "wy-ldxz"

static router_transfer_t dispatch(int state)
{
    router_transfer_t t = fresh(state);
    snprintf(t.sender, sizeof(t.sender), PLATFORM);
    t.dispatched = true;
    return t;
}

static void dispatch_returns_are_reviewed_and_the_third_goes_to_the_office(void **state)
{
    (void)state;
    router_transfer_t t = dispatch(S(SENT));
    router_verdict_t v;
    /* 1st return, rejected: back where it was, with the receiver. */
    router_transfer_step(&t, STEP_RETURN, RECEIVER, OFFICE, &v);
    assert_true(v.ok);
    assert_int_equal(t.state, S(RETURN_REQUESTED));
    assert_string_equal(t.reviewer, PLATFORM);
    assert_int_equal(t.returns, 1);
    router_transfer_step(&t, STEP_ACCEPT, RECEIVER, NULL, &v);
    assert_false(v.ok); /* awaiting review */
    assert_string_equal(v.code, "wrong_state");
    router_transfer_step(&t, STEP_REJECT_RETURN, RECEIVER, NULL, &v);
    assert_false(v.ok);
    assert_string_equal(v.code, "not_reviewer");
    router_transfer_step(&t, STEP_REJECT_RETURN, PLATFORM, NULL, &v);
    assert_true(v.ok);
    assert_int_equal(t.state, S(SENT));
    /* 2nd, after signing for it: a rejection leads back to received. */
    router_transfer_step(&t, STEP_RECEIVE, RECEIVER, NULL, &v);
    router_transfer_step(&t, STEP_RETURN, RECEIVER, OFFICE, &v);
    assert_true(v.ok);
    assert_string_equal(t.reviewer, PLATFORM);
    router_transfer_step(&t, STEP_REJECT_RETURN, PLATFORM, NULL, &v);
    assert_int_equal(t.state, S(RECEIVED));
    /* 3rd: the leading-group office reviews, not the platform. */
    router_transfer_step(&t, STEP_RETURN, RECEIVER, OFFICE, &v);
    assert_true(v.ok);
    assert_int_equal(t.returns, 3);
    assert_string_equal(t.reviewer, OFFICE);
    router_transfer_step(&t, STEP_APPROVE_RETURN, PLATFORM, NULL, &v);
    assert_false(v.ok);
    assert_string_equal(v.code, "not_reviewer");
    router_transfer_step(&t, STEP_APPROVE_RETURN, OFFICE, NULL, &v);
    assert_true(v.ok);
    assert_int_equal(t.state, S(RETURNED));
    assert_false(router_transfer_open(&t)); /* back with the platform: closed */
    router_transfer_step(&t, STEP_DISPUTE, PLATFORM, NULL, &v);
    assert_false(v.ok); /* the platform does not dispute a return it approved */
    router_transfer_step(&t, STEP_RESEND, PLATFORM, NULL, &v);
    assert_false(v.ok); /* it dispatches anew instead */
}

static void reassignment_withdraws_a_dispatch(void **state)
{
    (void)state;
    static const int from[] = {S(SENT), S(RECEIVED), S(ACCEPTED), S(RETURN_REQUESTED), S(RETURNED)};
    for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
        router_transfer_t t = dispatch(from[i]);
        router_verdict_t v;
        router_transfer_step(&t, STEP_WITHDRAW, RECEIVER, NULL, &v);
        assert_false(v.ok);
        assert_string_equal(v.code, "not_dispatcher");
        router_transfer_step(&t, STEP_WITHDRAW, PLATFORM, NULL, &v);
        assert_true(v.ok);
        assert_int_equal(t.state, S(WITHDRAWN));
        assert_false(router_transfer_open(&t));
    }
    router_transfer_t t = dispatch(S(DISPUTED));
    router_verdict_t v;
    router_transfer_step(&t, STEP_WITHDRAW, PLATFORM, NULL, &v);
    assert_false(v.ok);
    assert_string_equal(v.code, "wrong_state");
    t = fresh(S(SENT)); /* an ordinary transfer is never withdrawn */
    router_transfer_step(&t, STEP_WITHDRAW, SENDER, NULL, &v);
    assert_false(v.ok);
}

static void one_open_transfer_per_case(void **state)
{
    (void)state;
    static const struct {
        int state;
        bool open;
    } rows[] = {{S(SENT), true},      {S(RECEIVED), true},  {S(DISPUTED), true},
                {S(DECIDED), true},   {S(RETURN_REQUESTED), true},
                {S(ACCEPTED), false}, {S(CONCLUDED), false}, {S(RETURNED), false},
                {S(WITHDRAWN), false}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        router_transfer_t t = fresh(rows[i].state);
        assert_int_equal(router_transfer_open(&t), rows[i].open);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_transition_allowed_and_refused),
        cmocka_unit_test(dispute_decision_reroutes_to_the_decided_organisation),
        cmocka_unit_test(dispatch_returns_are_reviewed_and_the_third_goes_to_the_office),
        cmocka_unit_test(reassignment_withdraws_a_dispatch),
        cmocka_unit_test(one_open_transfer_per_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
