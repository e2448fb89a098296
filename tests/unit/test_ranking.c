/* test_ranking.c — the two-way ranking (services/cli/ranking.c): an
 * organisation that never answers ranks last, not first; a re-routed transfer
 * is received once; nothing due is no share at all; ties go to fewer breaches,
 * then to smaller lateness; limits count in the period they fall due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli/ranking.h"

#define DAY (24 * 3600 * 1000LL)
#define FROM (100 * DAY)
#define TO (190 * DAY)
#define TOWN CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP
#define DEPT CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT

static Casebus__V1__OrgRef org(const char *id, int kind)
{
    Casebus__V1__OrgRef r = CASEBUS__V1__ORG_REF__INIT;
    r.org_id = (char *)id;
    r.name = (char *)id;
    r.kind = kind;
    return r;
}


static void opened(cb_ranking_t *r, const char *id, Casebus__V1__OrgRef *who, int64_t at, int64_t due)
{
    Casebus__V1__Obligation o = CASEBUS__V1__OBLIGATION__INIT;
    o.obligation_id = (char *)id;
    o.responsible = who;
    o.due_at_ms = due;
    Casebus__V1__ObligationOpened oo = CASEBUS__V1__OBLIGATION_OPENED__INIT;
    oo.obligation = &o;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.recorded_at_ms = at;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED;
    env.obligation_opened = &oo;
    assert_int_equal(cb_ranking_add(r, &env), 0);
}

static void met(cb_ranking_t *r, const char *id, Casebus__V1__OrgRef *who, int64_t at, int64_t due)
{
    Casebus__V1__Obligation o = CASEBUS__V1__OBLIGATION__INIT;
    o.obligation_id = (char *)id;
    o.responsible = who;
    o.due_at_ms = due;
    Casebus__V1__ObligationMet m = CASEBUS__V1__OBLIGATION_MET__INIT;
    m.obligation = &o;
    m.met_at_ms = at;
    m.on_time = at <= due;
    m.late_by_ms = at > due ? at - due : 0;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.recorded_at_ms = at;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET;
    env.obligation_met = &m;
    assert_int_equal(cb_ranking_add(r, &env), 0);
}

static void breached(cb_ranking_t *r, const char *id, Casebus__V1__OrgRef *who, int64_t at)
{
    Casebus__V1__Obligation o = CASEBUS__V1__OBLIGATION__INIT;
    o.obligation_id = (char *)id;
    o.responsible = who;
    Casebus__V1__DeadlineBreached b = CASEBUS__V1__DEADLINE_BREACHED__INIT;
    b.obligation = &o;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.recorded_at_ms = at;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED;
    env.deadline_breached = &b;
    assert_int_equal(cb_ranking_add(r, &env), 0);
}

static void routed(cb_ranking_t *r, const char *transfer, Casebus__V1__OrgRef *from,
                   Casebus__V1__OrgRef *to, unsigned route, int64_t at)
{
    Casebus__V1__TransferRouted t = CASEBUS__V1__TRANSFER_ROUTED__INIT;
    t.transfer_id = (char *)transfer;
    t.sender = from;
    t.receiver = to;
    t.route_count = route;
    t.sent_at_ms = at;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.recorded_at_ms = at;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED;
    env.transfer_routed = &t;
    assert_int_equal(cb_ranking_add(r, &env), 0);
}

static cb_rank_org_t *find(cb_rank_org_t **rows, size_t n, const char *id, size_t *rank)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i]->org, id) == 0) {
            if (rank)
                *rank = i + 1;
            return rows[i];
        }
    return NULL;
}

static void never_answering_ranks_last(void **state)
{
    (void)state;
    cb_ranking_t *r = cb_ranking_new(FROM, TO, TO + DAY);
    Casebus__V1__OrgRef silent = org("town-silent", TOWN), busy = org("town-busy", TOWN);
    char id[32];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "S%d", i);
        opened(r, id, &silent, FROM + DAY, FROM + (10 + i) * DAY);
        breached(r, id, &silent, FROM + (10 + i) * DAY);
        snprintf(id, sizeof(id), "B%d", i);
        opened(r, id, &busy, FROM + DAY, FROM + (10 + i) * DAY);
        /* two on time, the last one day late */
        met(r, id, &busy, FROM + (9 + 2 * (i == 2) + i) * DAY, FROM + (10 + i) * DAY);
    }
    cb_rank_org_t **rows;
    size_t n = cb_ranking_group(r, true, &rows), rank;
    assert_int_equal(n, 2);
    cb_rank_org_t *s = find(rows, n, "town-silent", &rank);
    assert_non_null(s);
    assert_int_equal(rank, 2);
    assert_int_equal(s->due, 3);
    assert_int_equal(s->on_time, 0);
    assert_int_equal(s->late, 3); /* open and overdue counts as late */
    assert_true(cb_rank_share(s) == 0.0);
    cb_rank_org_t *b = find(rows, n, "town-busy", &rank);
    assert_int_equal(rank, 1);
    assert_int_equal(b->due, 3);
    assert_int_equal(b->on_time, 2);
    assert_int_equal(b->late, 1);
    assert_true(cb_rank_share(b) > 0.66 && cb_rank_share(b) < 0.67);
    assert_int_equal(cb_rank_median_lateness_ms(b), DAY);
    cb_ranking_destroy(&r);
    assert_null(r);
}

static void rerouted_transfer_is_received_once(void **state)
{
    (void)state;
    cb_ranking_t *r = cb_ranking_new(FROM, TO, TO);
    Casebus__V1__OrgRef dept = org("dept", DEPT), town = org("town", TOWN), other = org("other", TOWN);
    routed(r, "T1", &dept, &town, 1, FROM + DAY);
    routed(r, "T1", &dept, &town, 2, FROM + 2 * DAY);  /* sent again after a return */
    routed(r, "T1", &dept, &other, 3, FROM + 3 * DAY); /* a dispute decided for another */
    cb_rank_org_t **rows;
    size_t n = cb_ranking_group(r, true, &rows);
    assert_int_equal(find(rows, n, "town", NULL)->received, 1);
    assert_int_equal(find(rows, n, "other", NULL)->received, 1);
    n = cb_ranking_group(r, false, &rows);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0]->sent, 1);
    cb_ranking_destroy(&r);
}

static void nothing_due_is_no_share_and_ranks_last(void **state)
{
    (void)state;
    cb_ranking_t *r = cb_ranking_new(FROM, TO, TO);
    Casebus__V1__OrgRef idle = org("a-idle", TOWN), late = org("z-late", TOWN), dept = org("dept", DEPT);
    routed(r, "T1", &dept, &idle, 1, FROM + DAY); /* received, nothing fell due */
    opened(r, "L", &late, FROM, FROM + 5 * DAY);
    met(r, "L", &late, FROM + 6 * DAY, FROM + 5 * DAY);
    cb_rank_org_t **rows;
    size_t n = cb_ranking_group(r, true, &rows);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0]->org, "z-late"); /* 0 % of 1 beats nothing due */
    assert_true(cb_rank_share(rows[1]) < 0);
    assert_int_equal(rows[1]->due, 0);
    cb_ranking_destroy(&r);
}

static void ties_go_to_fewer_breaches_then_less_lateness(void **state)
{
    (void)state;
    cb_ranking_t *r = cb_ranking_new(FROM, TO, TO);
    Casebus__V1__OrgRef a = org("a", TOWN), b = org("b", TOWN), c = org("c", TOWN);
    /* each: one of two late (50 %); a has a breach, b is 3 days late, c 1 day */
    opened(r, "a1", &a, FROM, FROM + 10 * DAY);
    met(r, "a1", &a, FROM + 9 * DAY, FROM + 10 * DAY);
    opened(r, "a2", &a, FROM, FROM + 10 * DAY);
    breached(r, "a2", &a, FROM + 10 * DAY);
    met(r, "a2", &a, FROM + 11 * DAY, FROM + 10 * DAY);
    opened(r, "b1", &b, FROM, FROM + 10 * DAY);
    met(r, "b1", &b, FROM + 9 * DAY, FROM + 10 * DAY);
    opened(r, "b2", &b, FROM, FROM + 10 * DAY);
    met(r, "b2", &b, FROM + 13 * DAY, FROM + 10 * DAY);
    opened(r, "c1", &c, FROM, FROM + 10 * DAY);
    met(r, "c1", &c, FROM + 9 * DAY, FROM + 10 * DAY);
    opened(r, "c2", &c, FROM, FROM + 10 * DAY);
    met(r, "c2", &c, FROM + 11 * DAY, FROM + 10 * DAY);
    cb_rank_org_t **rows;
    size_t n = cb_ranking_group(r, true, &rows);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0]->org, "c");
    assert_string_equal(rows[1]->org, "b");
    assert_string_equal(rows[2]->org, "a");
    cb_ranking_destroy(&r);
}

static void limits_count_in_the_period_they_fall_due(void **state)
{
    (void)state;
    cb_ranking_t *r = cb_ranking_new(FROM, TO, TO + 30 * DAY);
    Casebus__V1__OrgRef t = org("t", TOWN);
    opened(r, "before", &t, FROM - 20 * DAY, FROM - DAY);     /* fell due before: not counted */
    opened(r, "early", &t, FROM - 20 * DAY, FROM + DAY);      /* opened before, due within */
    met(r, "early", &t, FROM - 10 * DAY, FROM + DAY);          /* met before the period: on time */
    opened(r, "after", &t, FROM + DAY, TO + DAY);              /* due after: not counted */
    opened(r, "gone", &t, FROM + DAY, FROM + 3 * DAY);         /* cancelled: not counted */
    Casebus__V1__Obligation o = CASEBUS__V1__OBLIGATION__INIT;
    o.obligation_id = "gone";
    Casebus__V1__ObligationChanged oc = CASEBUS__V1__OBLIGATION_CHANGED__INIT;
    oc.obligation = &o;
    oc.change = CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.recorded_at_ms = FROM + 2 * DAY;
    env.body_case = CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED;
    env.obligation_changed = &oc;
    assert_int_equal(cb_ranking_add(r, &env), 0);
    cb_rank_org_t **rows;
    size_t n = cb_ranking_group(r, true, &rows);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0]->due, 1);
    assert_int_equal(rows[0]->on_time, 1);
    assert_int_equal(rows[0]->late, 0);
    cb_ranking_destroy(&r);

    /* The current quarter: a limit due later in it is open, not late. */
    r = cb_ranking_new(FROM, TO, FROM + 10 * DAY);
    opened(r, "soon", &t, FROM, FROM + 20 * DAY);
    opened(r, "missed", &t, FROM, FROM + 5 * DAY);
    n = cb_ranking_group(r, true, &rows);
    assert_int_equal(rows[0]->due, 1);
    assert_int_equal(rows[0]->late, 1);
    assert_int_equal(rows[0]->pending, 1);
    assert_int_equal(cb_rank_median_lateness_ms(rows[0]), 5 * DAY);
    cb_ranking_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(never_answering_ranks_last),
        cmocka_unit_test(rerouted_transfer_is_received_once),
        cmocka_unit_test(nothing_due_is_no_share_and_ranks_last),
        cmocka_unit_test(ties_go_to_fewer_breaches_then_less_lateness),
        cmocka_unit_test(limits_count_in_the_period_they_fall_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
