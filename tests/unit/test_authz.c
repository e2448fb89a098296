/* test_authz.c — who may act on a case (services/intake/authz.c), as a table:
 * command × the organisation's role (and kind) × the case's state, and the
 * verdict. One case throughout: found by 市场监管局 (wy-scjg), within 履坦镇's
 * (wy-lt) jurisdiction, a transfer from the one to the other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "intake/intake.h"

#define K(x) CASEBUS__V1__ORG_KIND__ORG_KIND_##x
#define STEP(x) CASEBUS__V1__CRIME_STEP__CRIME_STEP_##x

enum state { FOUND, ROUTED, ACCEPTED, REFERRED };

static void facts(enum state st, intake_facts_t *f)
{
    memset(f, 0, sizeof(*f));
    f->finder = "wy-scjg";
    f->competent = "wy-lt";
    f->transfer_sender = "wy-scjg";
    f->decider = "wy-lt";
    f->addressee = "wy-zjj";
    f->holder = st == FOUND ? "" : "wy-lt";   /* "" : the finder holds it */
    f->transfer_receiver = st == FOUND ? "" : "wy-lt"; /* not routed yet: router checks */
    f->referral_made = st == REFERRED;
    f->parties[f->nparties++] = "wy-zjj";
}

static const struct row {
    intake_cmd_kind_t cmd;
    const char *org;
    int kind;
    enum state state;
    int step;
    int status; /* 0: allowed */
    const char *code;
} table[] = {
    /* transfers: only the holder sends; only the receiver signs, accepts, returns */
    {CMD_SEND_TRANSFER, "wy-scjg", K(COUNTY_DEPARTMENT), FOUND, 0, 0, NULL},
    {CMD_SEND_TRANSFER, "wy-sx", K(TOWNSHIP), FOUND, 0, 403, "not_holder"},
    {CMD_SEND_TRANSFER, "wy-zhzf", K(ENFORCEMENT_BUREAU), FOUND, 0, 403, "not_holder"},
    {CMD_SEND_TRANSFER, "wy-scjg", K(COUNTY_DEPARTMENT), ACCEPTED, 0, 403, "not_holder"},
    {CMD_RECEIVE_TRANSFER, "wy-lt", K(TOWNSHIP), ROUTED, 0, 0, NULL},
    {CMD_RECEIVE_TRANSFER, "wy-sx", K(TOWNSHIP), ROUTED, 0, 403, "not_receiver"},
    {CMD_RECEIVE_TRANSFER, "wy-scjg", K(COUNTY_DEPARTMENT), ROUTED, 0, 403, "not_receiver"},
    {CMD_RECEIVE_TRANSFER, "wy-sx", K(TOWNSHIP), FOUND, 0, 0, NULL}, /* router decides */
    {CMD_ACCEPT_TRANSFER, "wy-lt", K(TOWNSHIP), ROUTED, 0, 0, NULL},
    {CMD_ACCEPT_TRANSFER, "wy-sx", K(TOWNSHIP), ROUTED, 0, 403, "not_receiver"},
    {CMD_RETURN_TRANSFER, "wy-lt", K(TOWNSHIP), ROUTED, 0, 0, NULL},
    {CMD_RETURN_TRANSFER, "wy-zhzf", K(ENFORCEMENT_BUREAU), ROUTED, 0, 403, "not_receiver"},
    {CMD_RAISE_DISPUTE, "wy-lt", K(TOWNSHIP), ROUTED, 0, 0, NULL},
    {CMD_RAISE_DISPUTE, "wy-scjg", K(COUNTY_DEPARTMENT), ROUTED, 0, 0, NULL},
    {CMD_RAISE_DISPUTE, "wy-sx", K(TOWNSHIP), ROUTED, 0, 403, "not_party"},
    /* assistance and decisions: the organisation handling the case */
    {CMD_REQUEST_ASSISTANCE, "wy-scjg", K(COUNTY_DEPARTMENT), FOUND, 0, 0, NULL},
    {CMD_REQUEST_ASSISTANCE, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 0, NULL},
    {CMD_REQUEST_ASSISTANCE, "wy-sx", K(TOWNSHIP), ACCEPTED, 0, 403, "not_handling"},
    {CMD_ANSWER_ASSISTANCE, "wy-zjj", K(COUNTY_DEPARTMENT), ACCEPTED, 0, 0, NULL},
    {CMD_ANSWER_ASSISTANCE, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 403, "not_addressee"},
    {CMD_RECORD_DECISION, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 0, NULL},
    {CMD_RECORD_DECISION, "wy-sx", K(TOWNSHIP), ACCEPTED, 0, 403, "not_handling"},
    {CMD_RECORD_DECISION, "wy-zjj", K(COUNTY_DEPARTMENT), ACCEPTED, 0, 403, "not_handling"},
    {CMD_GIVE_FEEDBACK, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 0, NULL},
    {CMD_GIVE_FEEDBACK, "wy-scjg", K(COUNTY_DEPARTMENT), ACCEPTED, 0, 403, "not_decider"},
    {CMD_FILE_DECISION, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 0, NULL},
    {CMD_FILE_DECISION, "wy-sx", K(TOWNSHIP), ACCEPTED, 0, 403, "not_decider"},
    /* cancellation: the finder or the command platform */
    {CMD_CANCEL_CASE, "wy-scjg", K(COUNTY_DEPARTMENT), FOUND, 0, 0, NULL},
    {CMD_CANCEL_CASE, "wy-zhzf", K(ENFORCEMENT_BUREAU), ACCEPTED, 0, 0, NULL},
    {CMD_CANCEL_CASE, "wy-lt", K(TOWNSHIP), ACCEPTED, 0, 403, "not_allowed"},
    /* crime referral (Decree 310): the handler's steps; police only answer, after one */
    {CMD_CRIME_STEP, "wy-lt", K(TOWNSHIP), ACCEPTED, STEP(HANDED_TO_POLICE), 0, NULL},
    {CMD_CRIME_STEP, "wy-sx", K(TOWNSHIP), ACCEPTED, STEP(HANDED_TO_POLICE), 403, "not_allowed"},
    {CMD_CRIME_STEP, "wy-scjg", K(COUNTY_DEPARTMENT), FOUND, STEP(HANDED_TO_POLICE), 0, NULL},
    {CMD_CRIME_STEP, "wy-scjg", K(COUNTY_DEPARTMENT), ACCEPTED, STEP(TRANSFER_DECIDED), 0, NULL},
    {CMD_CRIME_STEP, "wy-gaj", K(PUBLIC_SECURITY), REFERRED, STEP(POLICE_ANSWERED), 0, NULL},
    {CMD_CRIME_STEP, "wy-gaj", K(PUBLIC_SECURITY), ACCEPTED, STEP(POLICE_ANSWERED), 409, "no_referral"},
    {CMD_CRIME_STEP, "wy-lt", K(TOWNSHIP), REFERRED, STEP(POLICE_ANSWERED), 403, "not_allowed"},
    {CMD_CRIME_STEP, "wy-gaj", K(PUBLIC_SECURITY), REFERRED, STEP(TRANSFER_DECIDED), 403, "not_allowed"},
    /* commands not about a party's role */
    {CMD_REPORT_CASE, "wy-sx", K(TOWNSHIP), FOUND, 0, 0, NULL},
    {CMD_RECORD_FILING, "wy-sx", K(TOWNSHIP), FOUND, 0, 0, NULL},
};

static void every_command_role_and_state(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const struct row *r = &table[i];
        intake_facts_t f;
        intake_verdict_t v;
        facts(r->state, &f);
        bool ok = intake_authorize(r->cmd, r->org, r->kind, r->step, &f, &v);
        if (ok != (r->status == 0) || (!ok && (v.status != r->status || strcmp(v.code, r->code))))
            fail_msg("row %zu: %s by %s: got %s %d %s, want %d %s", i, intake_cmd_name(r->cmd),
                     r->org, ok ? "allowed" : "refused", v.status, v.code ? v.code : "",
                     r->status, r->code ? r->code : "");
        if (!ok && strstr(v.message, r->org) == NULL)
            fail_msg("row %zu: the refusal does not name %s: %s", i, r->org, v.message);
    }
    printf("# %zu rows\n", sizeof(table) / sizeof(table[0]));
}

static void reads_by_role(void **s)
{
    (void)s;
    intake_facts_t f;
    facts(ACCEPTED, &f);
    static const struct {
        const char *org;
        int kind;
        bool referred, may;
    } rows[] = {
        {"wy-scjg", K(COUNTY_DEPARTMENT), false, true},   /* finder */
        {"wy-lt", K(TOWNSHIP), false, true},              /* holder, competent */
        {"wy-zjj", K(COUNTY_DEPARTMENT), false, true},    /* asked for assistance */
        {"wy-zhzf", K(ENFORCEMENT_BUREAU), false, true},  /* the command platform */
        {"wy-ldxz", K(LEADING_GROUP_OFFICE), false, true},
        {"wy-sx", K(TOWNSHIP), false, false},             /* no role */
        {"wy-gaj", K(PUBLIC_SECURITY), false, false},     /* no referral */
        {"wy-gaj", K(PUBLIC_SECURITY), true, true},       /* after one */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        f.referral_made = rows[i].referred;
        const char *orgs[] = {rows[i].org};
        int kinds[] = {rows[i].kind};
        if (intake_may_read(&f, orgs, kinds, 1) != rows[i].may)
            fail_msg("read row %zu: %s", i, rows[i].org);
    }
    const char *two[] = {"wy-sx", "wy-lt"};
    int kinds2[] = {K(TOWNSHIP), K(TOWNSHIP)};
    assert_true(intake_may_read(&f, two, kinds2, 2)); /* any of a token's organisations */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_command_role_and_state),
        cmocka_unit_test(reads_by_role),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
