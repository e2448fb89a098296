/* test_deadline.c — deadline without sockets or a loop: the rules file, one
 * obligation's clock, and the handlers applied to events exactly as the bus
 * would hand them over, with firing at chosen instants (the timer's job). The
 * expectations use the official 2026 calendar (deploy/calendar/2026.cal).
 * Longer than 800 lines: every test shares one fixture (a store, the calendar,
 * the rules file, the registry) and the helpers that feed it events, and the
 * tests read in the order of an obligation's life. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbtime.h"
#include "deadline/deadline.h"
#include "deadline/dlint.h"
#include "orgs.h"
#include "testutil.h"

#define H (3600 * 1000LL)

/* ---- the rules file ---- */

static void shipped_rules_parse(void **state)
{
    (void)state;
    dl_rules_t r;
    cb_error_t err;
    assert_int_equal(dl_rules_load(&r, "deploy/deadlines.conf", &err), 0);
    const dl_rule_t *t = &r.rule[DL_RULE_TRANSFER];
    assert_int_equal(t->unit, CASEBUS__V1__TIME_UNIT__TIME_UNIT_WORKING_DAYS);
    assert_int_equal(t->length, 3);
    assert_int_equal(t->nwarn, 2);
    assert_int_equal(t->warn[0].kind, DL_OFF_WORKING);
    assert_int_equal(t->warn[1].kind, DL_OFF_WALL);
    assert_int_equal(t->warn[1].value, 2 * H);
    const dl_rule_t *e = &r.rule[DL_RULE_TRANSFER_EMERGENCY];
    assert_int_equal(e->unit, CASEBUS__V1__TIME_UNIT__TIME_UNIT_HOURS);
    assert_int_equal(e->length, 24);
    assert_int_equal(e->warn[0].kind, DL_OFF_PERCENT);
    assert_int_equal(e->warn[0].value, 25);
    assert_true(e->escalate);
    assert_int_equal(e->nesc_kinds, 2);
    assert_false(r.rule[DL_RULE_RECONSIDERATION].escalate);
}

static void bad_rules_name_section_and_key(void **state)
{
    (void)state;
    FILE *f = fopen("deploy/deadlines.conf", "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"length = 3wd", "length = 3 weeks", "[transfer] length = '3 weeks'"},
        {"length = 3wd", "length = 3y", "the unit is wd, h or d"},
        {"warn = 1wd, 2h\nescalate_after = 0s\nescalate_every = 1d\nescalate_to = LEADING_GROUP_OFFICE, "
         "JUDICIAL_BUREAU\n\n[transfer_emergency]",
         "warn = 1wd, 120%\nescalate_after = 0s\nescalate_every = 1d\nescalate_to = "
         "LEADING_GROUP_OFFICE, JUDICIAL_BUREAU\n\n[transfer_emergency]",
         "below 100%"},
        {"escalate_to = LEADING_GROUP_OFFICE, JUDICIAL_BUREAU", "escalate_to = MAYOR",
         "organisation kinds"},
        {"[sign]", "[signature]", "[signature] is not a rule casebus knows"},
        {"title = 签收", "titel = 签收", "titel is not a rule setting"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = strstr(text, cases[i].from);
        assert_non_null(p);
        static char edited[65536];
        snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(p - text), text, cases[i].to,
                 p + strlen(cases[i].from));
        dl_rules_t r;
        memset(&r, 0x5a, sizeof(r));
        dl_rules_t before = r;
        cb_error_t err;
        assert_int_equal(dl_rules_parse(&r, edited, "rules.conf", &err), CB_ERR_CONFIG);
        if (strstr(err.message, cases[i].expect) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, err.message, cases[i].expect);
        assert_memory_equal(&r, &before, sizeof(r)); /* refused: nothing taken */
    }
}

/* ---- one clock ---- */

static cb_calendar_t *calendar(void)
{
    cb_calendar_t *cal = cb_cal_new();
    cb_error_t err;
    int loaded;
    if (cal == NULL || cb_cal_load_dir(cal, "deploy/calendar", &loaded, &err) != 0)
        fail_msg("cannot load deploy/calendar");
    return cal;
}

/* Due Thu 24:00, paused Tue 15:00 (57 working hours left), resumed Fri 09:30:
 * the time left runs out Tue 18:30, and the period ends at 24:00 that Tuesday. */
static void resumed_clock_ends_at_midnight(void **state)
{
    (void)state;
    cb_calendar_t *cal = calendar();
    dl_ob_t o;
    memset(&o, 0, sizeof(o));
    o.unit = CASEBUS__V1__TIME_UNIT__TIME_UNIT_WORKING_DAYS;
    o.length = 3;
    o.remaining_ms = 57 * H; /* paused Tue 2026-11-17 15:00, due Thu Nov 19 24:00 */
    int64_t due = dl_clock_resume(cal, &o, tu_at("2026-11-20T09:30:00+08:00"));
    assert_int_equal(due, tu_at("2026-11-25T00:00:00+08:00")); /* 24:00 Tue Nov 24 */
    o.remaining_ms = 24 * H - 9 * H - 30 * 60000; /* exactly to midnight: unchanged */
    assert_int_equal(dl_clock_resume(cal, &o, tu_at("2026-11-20T09:30:00+08:00")),
                     tu_at("2026-11-21T00:00:00+08:00"));
    o.unit = CASEBUS__V1__TIME_UNIT__TIME_UNIT_HOURS; /* an hour limit is not rounded */
    o.remaining_ms = 2 * H;
    assert_int_equal(dl_clock_resume(cal, &o, tu_at("2026-11-20T09:30:00+08:00")),
                     tu_at("2026-11-20T11:30:00+08:00"));
    cb_cal_destroy(&cal);
}

/* An open clock of length working days, nothing else set. */
static dl_ob_t open_clock(uint32_t length)
{
    dl_ob_t o;
    memset(&o, 0, sizeof(o));
    o.status = DL_OPEN;
    o.unit = CASEBUS__V1__TIME_UNIT__TIME_UNIT_WORKING_DAYS;
    o.length = length;
    return o;
}

/* What a calendar import recounts: a clock from its start, a resumed clock from
 * when it resumed with the time it had left, plus extensions granted since, and
 * the obligation survives its stored encoding with its anchor. */
static void recount_after_a_calendar_import(void **state)
{
    (void)state;
    cb_calendar_t *cal = calendar();
    dl_ob_t o = open_clock(3);
    o.start_ms = tu_at("2026-12-30T10:00:00+08:00");
    assert_int_equal(dl_recount(cal, &o, NULL), tu_at("2027-01-06T00:00:00+08:00"));
    /* Resumed Thu 31 Dec 09:30 with one working day left: 14.5 h of Thursday,
     * Fri 1 Jan off (provisional 2027), 9.5 h of Mon 4 -> 24:00 Mon 4 Jan; one
     * more working day granted after it resumed -> 24:00 Tue 5. */
    o.flags = DL_F_REBASED;
    o.remaining_ms = 24 * H;
    o.anchor_ms = tu_at("2026-12-31T09:30:00+08:00");
    o.ext_total = 2;
    o.ext_at_anchor = 1;
    int missing = 0;
    assert_int_equal(dl_recount(cal, &o, &missing), tu_at("2027-01-06T00:00:00+08:00"));
    assert_int_equal(missing, 2027);
    o.ext_total = 1;
    assert_int_equal(dl_recount(cal, &o, NULL), tu_at("2027-01-05T00:00:00+08:00"));
    uint8_t buf[DL_OB_HEAD];
    dl_ob_encode(&o, buf);
    dl_ob_t back;
    assert_int_equal(dl_ob_decode(&back, buf, sizeof(buf)), 0);
    assert_int_equal(back.anchor_ms, o.anchor_ms);
    assert_int_equal(back.ext_at_anchor, 1);
    cb_cal_destroy(&cal);
}

static void clock_points_and_missed_escalations(void **state)
{
    (void)state;
    cb_calendar_t *cal = calendar();
    dl_ob_t o = open_clock(3);
    o.nwarn = 2;
    o.warn[0] = (dl_offset_t){DL_OFF_WORKING, 24 * H};
    o.warn[1] = (dl_offset_t){DL_OFF_WALL, 2 * H};
    o.escalate = 1;
    o.esc_grace_ms = 0;
    o.esc_every_ms = 24 * H;
    /* Discovered Fri 2026-09-25 10:00, the first day of the Mid-Autumn break
     * (Sep 25-27 off): Mon Sep 28 = 1, Tue 29 = 2, Wed 30 = 3 -> due 24:00 Sep 30.
     * One working day before: 00:00 Sep 30; two hours before: 22:00 Sep 30. */
    o.start_ms = tu_at("2026-09-25T10:00:00+08:00");
    o.due_ms = dl_due(cal, o.unit, o.length, o.start_ms, true, NULL);
    assert_int_equal(o.due_ms, tu_at("2026-10-01T00:00:00+08:00"));
    assert_int_equal(dl_point_at(cal, &o, 0), tu_at("2026-09-30T00:00:00+08:00"));
    assert_int_equal(dl_point_at(cal, &o, 1), tu_at("2026-09-30T22:00:00+08:00"));
    assert_int_equal(dl_next_fire(cal, &o), tu_at("2026-09-30T00:00:00+08:00"));

    /* Nobody looked until Oct 5 12:00 (National Day, Oct 1-7 off): the two
     * warnings and red fire once each, in order; the daily 督办 that fell due
     * on Oct 1, 2, 3, 4 and 5 fires once, as repeat 5. */
    int64_t now = tu_at("2026-10-05T12:00:00+08:00");
    dl_alert_t a;
    assert_true(dl_take_due(cal, &o, now, &a));
    assert_int_equal(a.level, CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_YELLOW);
    assert_int_equal(a.point, 0);
    assert_true(dl_take_due(cal, &o, now, &a));
    assert_int_equal(a.point, 1);
    assert_true(dl_take_due(cal, &o, now, &a));
    assert_int_equal(a.level, CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_RED);
    assert_int_equal(a.fire_at_ms, o.due_ms);
    assert_true(dl_take_due(cal, &o, now, &a));
    assert_int_equal(a.level, CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_ESCALATION);
    assert_int_equal(a.repeat, 5);
    assert_int_equal(a.fire_at_ms, tu_at("2026-10-05T00:00:00+08:00"));
    assert_false(dl_take_due(cal, &o, now, &a));
    assert_int_equal(dl_next_fire(cal, &o), tu_at("2026-10-06T00:00:00+08:00"));

    /* A 24-hour limit across a holiday is still 24 hours; 25% = 6 h before. */
    dl_ob_t e;
    memset(&e, 0, sizeof(e));
    e.status = DL_OPEN;
    e.unit = CASEBUS__V1__TIME_UNIT__TIME_UNIT_HOURS;
    e.length = 24;
    e.nwarn = 1;
    e.warn[0] = (dl_offset_t){DL_OFF_PERCENT, 25};
    e.start_ms = tu_at("2026-09-30T20:00:00+08:00");
    e.due_ms = dl_due(cal, e.unit, e.length, e.start_ms, true, NULL);
    assert_int_equal(e.due_ms, tu_at("2026-10-01T20:00:00+08:00"));
    assert_int_equal(dl_point_at(cal, &e, 0), tu_at("2026-10-01T14:00:00+08:00"));
    /* The encoding keeps everything. */
    uint8_t buf[DL_OB_HEAD];
    dl_ob_t back;
    dl_ob_encode(&o, buf);
    assert_int_equal(dl_ob_decode(&back, buf, sizeof(buf)), 0);
    assert_memory_equal(&back, &o, sizeof(o));
    cb_cal_destroy(&cal);
}

/* ---- the handlers, on a scratch store ---- */

typedef struct fx {
    char *dir;
    deadline_t dl;
    uint64_t seq[2];       /* intake, router */
    uint64_t read;         /* deadline's log records already looked at */
} fx_t;

static int64_t fixed_now(void)
{
    return 0;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    cb_error_t err;
    deadline_t *dl = &f->dl;
    dl->now = fixed_now;
    dl->late_after_ms = 1000;
    dl->cal = calendar();
    if (tu_store_open("deadlineunit", "deadline", &f->dir, &dl->d.store, &dl->d.log) != 0 ||
        dl_state_open(dl, &err) || dl_rules_load(&dl->rules, "deploy/deadlines.conf", &err))
        return -1;
    /* As the daemon keeps it, compressed, but early: every test reads
     * compressed records (the events, and obligations from their opening). */
    cb_log_compress(dl->d.log, 8);
    /* The date rules open filings for every organisation on import; tests of
     * them turn them on themselves. */
    dl->rules.rule[DL_RULE_CASE_FILE_CATALOGUE].enabled = false;
    dl->rules.rule[DL_RULE_ENFORCEMENT_DATA].enabled = false;
    dl->rules.rule[DL_RULE_MONTHLY_STATUS].enabled = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->dl.orgs)
        casebus__v1__orgs_imported__free_unpacked(f->dl.orgs, NULL);
    cb_cal_destroy(&f->dl.cal);
    cb_log_destroy(&f->dl.d.log);
    cb_store_destroy(&f->dl.d.store);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

/* Applies one event as the bus would (its own committed transaction). */
static void apply(fx_t *f, const char *producer, Casebus__V1__Envelope *env, int64_t at_ms)
{
    MDB_txn *txn;
    cb_error_t err;
    int p = strcmp(producer, "intake") == 0 ? 0 : 1;
    env->recorded_at_ms = at_ms;
    env->seq = ++f->seq[p];
    cb_bus_event_t ev = {producer, env->seq, env, NULL, 0};
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    if (dl_apply(&f->dl, txn, &ev, &err) != 0)
        fail_msg("apply: %s", err.message);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

/* What the timer does at now: fire every due key, committed. */
static void fire_at(fx_t *f, int64_t now)
{
    MDB_txn *txn;
    cb_error_t err;
    dl_due_key_t keys[64];
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    int n = dl_timers_due(&f->dl, txn, now, keys, 64, &err);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++)
        if (dl_fire(&f->dl, txn, keys[i].at_ms, keys[i].id, now, &err) != 0)
            fail_msg("fire: %s", err.message);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

/* The next event of deadline's log (NULL when none); caller frees. */
static Casebus__V1__Envelope *next_event(fx_t *f)
{
    MDB_txn *txn;
    cb_error_t err;
    const uint8_t *raw;
    size_t len;
    uint8_t *owned;
    Casebus__V1__Envelope *env = NULL;
    assert_int_equal(cb_store_begin(f->dl.d.store, false, &txn, &err), 0);
    if (cb_log_get(f->dl.d.log, txn, f->read + 1, &raw, &len, &owned, &err) == 0) {
        env = casebus__v1__envelope__unpack(NULL, len, raw);
        free(owned);
        f->read++;
    }
    cb_store_abort(&txn);
    return env;
}

/* Takes the next event, checks its type, returns it (caller frees). */
static Casebus__V1__Envelope *expect(fx_t *f, int body_case)
{
    Casebus__V1__Envelope *env = next_event(f);
    if (env == NULL)
        fail_msg("no event where one of type %d was expected", body_case);
    if ((int)env->body_case != body_case)
        fail_msg("event %s where type %d was expected", cb_event_type(env), body_case);
    return env;
}

static void expect_none(fx_t *f)
{
    Casebus__V1__Envelope *env = next_event(f);
    if (env)
        fail_msg("unexpected event %s", cb_event_type(env));
}

#define B(x) CASEBUS__V1__ENVELOPE__BODY_##x

static void orgs(fx_t *f)
{
    const char *csv = "org_id,kind,name,division_code\n"
                      "wy-scjg,COUNTY_DEPARTMENT,市场监管局,330723\n"
                      "wy-lt,TOWNSHIP,履坦镇,330723101000\n"
                      "wy-ldxz,LEADING_GROUP_OFFICE,领导小组办公室,330723\n"
                      "wy-sfj,JUDICIAL_BUREAU,司法局,330723\n"
                      "wy-gaj,PUBLIC_SECURITY,公安局,330723\n";
    cb_org_list_t list;
    cb_error_t err;
    assert_int_equal(cb_orgs_parse(csv, strlen(csv), &list, &err), 0);
    Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
    oi.orgs = list.orgs;
    oi.n_orgs = list.count;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(ORGS_IMPORTED);
    env.orgs_imported = &oi;
    apply(f, "router", &env, 1);
    cb_orgs_free(&list);
}

static Casebus__V1__OrgRef *ref(const char *id)
{
    static Casebus__V1__OrgRef r[8];
    static int n;
    Casebus__V1__OrgRef *o = &r[n++ % 8];
    casebus__v1__org_ref__init(o);
    o->org_id = (char *)id;
    return o;
}

/* router's TransferRequired for a case discovered at discovered. */
static void transfer_required(fx_t *f, const char *case_id, int64_t discovered, int urgency)
{
    Casebus__V1__CaseSummary cs = CASEBUS__V1__CASE_SUMMARY__INIT;
    cs.case_id = (char *)case_id;
    cs.discovered_at_ms = discovered;
    cs.urgency = urgency;
    Casebus__V1__TransferRequired tq = CASEBUS__V1__TRANSFER_REQUIRED__INIT;
    tq.case_ = &cs;
    tq.from = ref("wy-scjg");
    tq.to = ref("wy-lt");
    tq.urgency = urgency;
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(TRANSFER_REQUIRED);
    env.transfer_required = &tq;
    env.case_id = (char *)case_id;
    apply(f, "router", &env, discovered + 1000);
}

static void extension_requested_then_approved(void **state)
{
    fx_t *f = *state;
    orgs(f);
    /* Discovered Mon 2026-11-02 09:00: due 24:00 Thu Nov 5. */
    transfer_required(f, "C1", tu_at("2026-11-02T09:00:00+08:00"),
                      CASEBUS__V1__URGENCY__URGENCY_NORMAL);
    Casebus__V1__Envelope *e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->obligation_id, "transfer:C1");
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-11-06T00:00:00+08:00"));
    assert_string_equal(e->obligation_opened->obligation->due_local, "2026-11-06T00:00:00.000+08:00");
    casebus__v1__envelope__free_unpacked(e, NULL);

    Casebus__V1__ExtensionRequested xr = CASEBUS__V1__EXTENSION_REQUESTED__INIT;
    xr.obligation_id = "transfer:C1";
    xr.extra_length = 2;
    xr.reason = "需补充证据";
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(EXTENSION_REQUESTED);
    env.extension_requested = &xr;

    /* Not the responsible party: refused, nothing pending. */
    xr.by = ref("wy-lt");
    apply(f, "intake", &env, tu_at("2026-11-04T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_int_equal(e->obligation_changed->change,
                     CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_EXTENSION_REFUSED);
    assert_non_null(strstr(e->obligation_changed->reason, "only the responsible"));
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* The finder asks before the limit: recorded. */
    xr.by = ref("wy-scjg");
    apply(f, "intake", &env, tu_at("2026-11-04T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_int_equal(e->obligation_changed->change,
                     CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_EXTENSION_REQUESTED);
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* A township cannot approve; the leading-group office can. */
    Casebus__V1__ExtensionDecided xd = CASEBUS__V1__EXTENSION_DECIDED__INIT;
    xd.obligation_id = "transfer:C1";
    xd.approved = true;
    xd.by = ref("wy-lt");
    Casebus__V1__Envelope denv = CASEBUS__V1__ENVELOPE__INIT;
    denv.body_case = B(EXTENSION_DECIDED);
    denv.extension_decided = &xd;
    apply(f, "intake", &denv, tu_at("2026-11-05T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_int_equal(e->obligation_changed->change,
                     CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_EXTENSION_REFUSED);
    assert_non_null(strstr(e->obligation_changed->reason, "does not supervise"));
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* Before the approval the yellow point (00:00 Nov 5) fired. */
    fire_at(f, tu_at("2026-11-05T08:00:00+08:00"));
    e = expect(f, B(DEADLINE_WARNING));
    assert_int_equal(e->deadline_warning->alert->fire_at_ms, tu_at("2026-11-05T00:00:00+08:00"));
    assert_true(e->deadline_warning->alert->late); /* 8 h after its time */
    casebus__v1__envelope__free_unpacked(e, NULL);

    xd.by = ref("wy-ldxz");
    apply(f, "intake", &denv, tu_at("2026-11-05T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_int_equal(e->obligation_changed->change,
                     CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_EXTENDED);
    assert_int_equal(e->obligation_changed->previous_due_ms, tu_at("2026-11-06T00:00:00+08:00"));
    /* 2 more working days after Thu Nov 5: Fri 6, Mon 9 -> 24:00 Mon Nov 9. */
    assert_int_equal(e->obligation_changed->obligation->due_at_ms, tu_at("2026-11-10T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* The 1-working-day warning already fired is not repeated; the 2-hour one
     * and red come at the new limit. */
    fire_at(f, tu_at("2026-11-09T12:00:00+08:00"));
    expect_none(f);
    fire_at(f, tu_at("2026-11-09T22:00:00+08:00"));
    e = expect(f, B(DEADLINE_WARNING));
    assert_int_equal(e->deadline_warning->alert->point, 1);
    assert_false(e->deadline_warning->alert->late);
    casebus__v1__envelope__free_unpacked(e, NULL);
    fire_at(f, tu_at("2026-11-10T00:00:00+08:00"));
    e = expect(f, B(DEADLINE_BREACHED));
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(ESCALATED)); /* grace 0: 督办 at the limit */
    assert_int_equal(e->escalated->alert->repeat, 1);
    assert_int_equal(e->escalated->alert->n_notify, 3);
    assert_string_equal(e->escalated->supervision_id, "SV-transfer:C1-1");
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED)); /* the order's answer */
    assert_string_equal(e->obligation_opened->obligation->rule_id, "supervision_answer");
    casebus__v1__envelope__free_unpacked(e, NULL);
    fire_at(f, tu_at("2026-11-10T00:00:00+08:00"));
    expect_none(f); /* fired once, whatever happens */

    /* Asked after the limit: refused. */
    apply(f, "intake", &env, tu_at("2026-11-10T09:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_non_null(strstr(e->obligation_changed->reason, "before the limit"));
    casebus__v1__envelope__free_unpacked(e, NULL);
}

/* The events from now on until one of type body_case (freed); fails if none. */
static Casebus__V1__Envelope *skip_to(fx_t *f, int body_case)
{
    Casebus__V1__Envelope *e;
    while ((e = next_event(f)) != NULL && (int)e->body_case != body_case)
        casebus__v1__envelope__free_unpacked(e, NULL);
    if (e == NULL)
        fail_msg("no event of type %d", body_case);
    return e;
}

static void supervision_orders_are_answered(void **state)
{
    fx_t *f = *state;
    orgs(f);
    /* Discovered Mon 2026-11-02 09:00: due 24:00 Thu Nov 5; 督办 at the limit. */
    transfer_required(f, "C9", tu_at("2026-11-02T09:00:00+08:00"),
                      CASEBUS__V1__URGENCY__URGENCY_NORMAL);
    fire_at(f, tu_at("2026-11-06T00:00:00+08:00"));
    Casebus__V1__Envelope *e = skip_to(f, B(ESCALATED));
    assert_string_equal(e->escalated->supervision_id, "SV-transfer:C9-1");
    /* 3 working days from Fri Nov 6: Mon 9, Tue 10, Wed 11 -> 24:00 Wed Nov 11. */
    assert_int_equal(e->escalated->answer_due_ms, tu_at("2026-11-12T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED));
    const Casebus__V1__Obligation *ob = e->obligation_opened->obligation;
    assert_string_equal(ob->obligation_id, "answer:SV-transfer:C9-1");
    assert_string_equal(ob->rule_id, "supervision_answer");
    assert_string_equal(ob->responsible->org_id, "wy-scjg");
    assert_int_equal(ob->due_at_ms, tu_at("2026-11-12T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* A day later, unanswered: the same order is restated, no second answer opens. */
    fire_at(f, tu_at("2026-11-07T00:00:00+08:00"));
    e = expect(f, B(ESCALATED));
    assert_int_equal(e->escalated->alert->repeat, 2);
    assert_string_equal(e->escalated->supervision_id, "SV-transfer:C9-1");
    casebus__v1__envelope__free_unpacked(e, NULL);
    expect_none(f);

    /* Answered on Monday: on time. */
    Casebus__V1__SupervisionAnswered sa = CASEBUS__V1__SUPERVISION_ANSWERED__INIT;
    sa.supervision_id = "SV-transfer:C9-1";
    sa.obligation_id = "transfer:C9";
    sa.case_id = "C9";
    sa.by = ref("wy-scjg");
    sa.answer = "已补齐材料, 当日移送";
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(SUPERVISION_ANSWERED);
    env.supervision_answered = &sa;
    env.case_id = "C9";
    apply(f, "intake", &env, tu_at("2026-11-09T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_MET));
    assert_string_equal(e->obligation_met->obligation->obligation_id, "answer:SV-transfer:C9-1");
    assert_true(e->obligation_met->on_time);
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* Still not transferred: the next escalation is a new order, with its own answer. */
    fire_at(f, tu_at("2026-11-10T00:00:00+08:00"));
    size_t orders = 0, answers = 0;
    while ((e = next_event(f)) != NULL) {
        if (e->body_case == B(ESCALATED)) {
            assert_string_equal(e->escalated->supervision_id, "SV-transfer:C9-2");
            orders++;
        } else if (e->body_case == B(OBLIGATION_OPENED)) {
            assert_string_equal(e->obligation_opened->obligation->obligation_id,
                                "answer:SV-transfer:C9-2");
            answers++;
        }
        casebus__v1__envelope__free_unpacked(e, NULL);
    }
    assert_true(orders >= 1);
    assert_int_equal(answers, 1);
}

static void calendar_missing_then_loaded_recomputes(void **state)
{
    fx_t *f = *state;
    orgs(f);
    /* Discovered Wed 2026-12-30: Thu 31 = 1; 2027 has no notice loaded, so it is
     * counted by its statutory holidays: Fri Jan 1 (元旦) off, Mon 4 = 2, Tue 5 = 3:
     * due 24:00 Tue Jan 5, marked provisional, and the alarm is raised. */
    transfer_required(f, "C2", tu_at("2026-12-30T15:00:00+08:00"),
                      CASEBUS__V1__URGENCY__URGENCY_NORMAL);
    Casebus__V1__Envelope *e = expect(f, B(CALENDAR_MISSING));
    assert_int_equal(e->calendar_missing->year, 2027);
    assert_true(e->calendar_missing->provisional);
    assert_int_equal(e->calendar_missing->n_notify, 1);
    assert_string_equal(e->calendar_missing->notify[0]->org_id, "wy-ldxz");
    assert_non_null(strstr(e->calendar_missing->action, "casebus calendar import 2027"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED));
    const Casebus__V1__Obligation *ob = e->obligation_opened->obligation;
    assert_int_equal(ob->due_at_ms, tu_at("2027-01-06T00:00:00+08:00"));
    assert_true(ob->calendar_provisional);
    assert_non_null(strstr(ob->calendar_version, "2026: "));
    assert_non_null(strstr(ob->calendar_version, "2027: PROVISIONAL: statutory holidays"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    /* A second obligation counted with 2027 raises no second alarm. Thu Dec 31
     * 09:00: Mon 4 = 1, Tue 5 = 2, Wed 6 = 3. */
    transfer_required(f, "C3", tu_at("2026-12-31T09:00:00+08:00"),
                      CASEBUS__V1__URGENCY__URGENCY_NORMAL);
    e = expect(f, B(OBLIGATION_OPENED));
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2027-01-07T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* A (test) notice with Jan 1-4 off. C2: Thu Dec 31 = 1, Tue 5 = 2, Wed 6 = 3
     * -> 24:00 Jan 6. C3: Tue 5, Wed 6, Thu 7 -> 24:00 Jan 7. Each says why. */
    const char *y2027 = "year 2027\nversion test notice\nholiday 2027-01-01..2027-01-04 元旦\n";
    MDB_txn *txn;
    cb_error_t err;
    int year;
    uint64_t recomputed;
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_calendar_import(&f->dl, txn, y2027, strlen(y2027), "2027.cal", &year,
                                        &recomputed, &err),
                     0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    assert_int_equal(year, 2027);
    assert_int_equal(recomputed, 2);
    int64_t want[2] = {tu_at("2027-01-07T00:00:00+08:00"), tu_at("2027-01-08T00:00:00+08:00")};
    int64_t before[2] = {tu_at("2027-01-06T00:00:00+08:00"), tu_at("2027-01-07T00:00:00+08:00")};
    for (int i = 0; i < 2; i++) {
        e = expect(f, B(OBLIGATION_CHANGED));
        const Casebus__V1__ObligationChanged *oc = e->obligation_changed;
        assert_int_equal(oc->change, CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_RECOMPUTED);
        assert_int_equal(oc->obligation->due_at_ms, want[i]);
        assert_int_equal(oc->previous_due_ms, before[i]);
        assert_false(oc->obligation->calendar_provisional);
        assert_non_null(strstr(oc->obligation->calendar_version, "2027: test notice"));
        assert_string_equal(oc->reason, "the calendar of 2027 was loaded: test notice");
        casebus__v1__envelope__free_unpacked(e, NULL);
    }
    e = expect(f, B(CALENDAR_LOADED));
    assert_int_equal(e->calendar_loaded->recomputed_obligations, 2);
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* A bad file is refused and changes nothing. */
    const char *bad = "year 2027\nholiday 2027-02-30\n";
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_calendar_import(&f->dl, txn, bad, strlen(bad), "bad.cal", &year,
                                        &recomputed, &err),
                     CB_ERR_INVALID);
    cb_store_abort(&txn);
    assert_true(cb_cal_has_year(f->dl.cal, 2027));
    assert_string_equal(cb_cal_version(f->dl.cal, 2027), "test notice");
    expect_none(f);
}

/* From 1 November, next year's missing notice is raised once a day (a second
 * look the same day says nothing), until the notice is loaded. */
static void next_years_calendar_is_watched_from_november(void **state)
{
    fx_t *f = *state;
    orgs(f);
    MDB_txn *txn;
    cb_error_t err;
    const char *times[] = {"2027-10-31T23:59:00+08:00", "2027-11-01T00:00:30+08:00",
                           "2027-11-01T18:00:00+08:00", "2027-11-02T08:00:00+08:00"};
    const int raised[] = {0, 1, 0, 1};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
        assert_int_equal(dl_watch_calendar(&f->dl, txn, tu_at(times[i]), &err), 0);
        assert_int_equal(cb_store_commit(&txn, &err), 0);
        if (!raised[i]) {
            expect_none(f);
            continue;
        }
        Casebus__V1__Envelope *e = expect(f, B(CALENDAR_MISSING));
        assert_int_equal(e->calendar_missing->year, 2028);
        assert_true(e->calendar_missing->provisional);
        assert_non_null(strstr(e->calendar_missing->reason, "next year"));
        assert_string_equal(e->calendar_missing->notify[0]->org_id, "wy-ldxz");
        casebus__v1__envelope__free_unpacked(e, NULL);
    }
    const char *y2028 = "year 2028\nversion the 2028 notice\nholiday 2028-01-01\n";
    int year;
    uint64_t recomputed;
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_calendar_import(&f->dl, txn, y2028, strlen(y2028), "2028.cal", &year,
                                        &recomputed, &err),
                     0);
    assert_int_equal(dl_watch_calendar(&f->dl, txn, tu_at("2027-11-03T08:00:00+08:00"), &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    Casebus__V1__Envelope *e = expect(f, B(CALENDAR_LOADED));
    casebus__v1__envelope__free_unpacked(e, NULL);
    expect_none(f);
}

static void cancelled_case_closes_its_obligations(void **state)
{
    fx_t *f = *state;
    orgs(f);
    transfer_required(f, "C4", tu_at("2026-11-02T09:00:00+08:00"),
                      CASEBUS__V1__URGENCY__URGENCY_EMERGENCY);
    Casebus__V1__Envelope *e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->rule_id, "transfer_emergency");
    casebus__v1__envelope__free_unpacked(e, NULL);
    Casebus__V1__CaseCancelled cc = CASEBUS__V1__CASE_CANCELLED__INIT;
    cc.case_id = "C4";
    cc.by = ref("wy-scjg");
    cc.reason = "重复报案";
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(CASE_CANCELLED);
    env.case_cancelled = &cc;
    apply(f, "intake", &env, tu_at("2026-11-02T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_CHANGED));
    assert_int_equal(e->obligation_changed->change,
                     CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED);
    assert_string_equal(e->obligation_changed->reason, "重复报案");
    casebus__v1__envelope__free_unpacked(e, NULL);
    fire_at(f, tu_at("2026-11-04T00:00:00+08:00"));
    expect_none(f); /* a cancelled obligation never fires */
    MDB_txn *txn;
    cb_error_t err;
    dl_counts_t c;
    assert_int_equal(cb_store_begin(f->dl.d.store, false, &txn, &err), 0);
    assert_int_equal(dl_counts_get(&f->dl, txn, &c, &err), 0);
    cb_store_abort(&txn);
    assert_int_equal(c.open, 0);
    assert_int_equal(c.cancelled, 1);
}

/* The store keeps an obligation's clock; the rest of it (case, rule, parties)
 * is read from its ObligationOpened event. One stored with its message, as
 * before that, still loads and is kept so. */
static size_t stored_size(fx_t *f, const char *id)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->dl.d.store, false, &txn, &err), 0);
    MDB_val k = cb_store_key(id), v;
    assert_int_equal(mdb_get(txn, f->dl.db_obligations, &k, &v), 0);
    size_t n = v.mv_size;
    cb_store_abort(&txn);
    return n;
}

static Casebus__V1__Obligation *load(fx_t *f, const char *id, dl_ob_t *o)
{
    MDB_txn *txn;
    cb_error_t err;
    Casebus__V1__Obligation *msg = NULL;
    assert_int_equal(cb_store_begin(f->dl.d.store, false, &txn, &err), 0);
    assert_int_equal(dl_load(&f->dl, txn, id, o, &msg, &err), 0);
    cb_store_abort(&txn);
    return msg;
}

static void load_equals(fx_t *f, const char *id, const Casebus__V1__Obligation *want,
                        int64_t used_ms)
{
    dl_ob_t o;
    Casebus__V1__Obligation *got = load(f, id, &o);
    assert_int_equal(got->used_ms, used_ms);
    got->used_ms = want->used_ms;
    size_t n = casebus__v1__obligation__get_packed_size(want);
    assert_int_equal(casebus__v1__obligation__get_packed_size(got), n);
    uint8_t *a = malloc(n), *b = malloc(n);
    casebus__v1__obligation__pack(want, a);
    casebus__v1__obligation__pack(got, b);
    assert_memory_equal(a, b, n);
    free(a);
    free(b);
    casebus__v1__obligation__free_unpacked(got, NULL);
}

static void store_keeps_the_clock_and_the_log_the_rest(void **state)
{
    fx_t *f = *state;
    orgs(f);
    transfer_required(f, "C9", tu_at("2026-11-02T09:00:00+08:00"), CASEBUS__V1__URGENCY__URGENCY_NORMAL);
    Casebus__V1__Envelope *opened = expect(f, B(OBLIGATION_OPENED));
    const Casebus__V1__Obligation *want = opened->obligation_opened->obligation;
    const char *id = want->obligation_id;
    assert_int_equal(stored_size(f, id), DL_OB_HEAD);
    load_equals(f, id, want, 0);

    /* Stored the old way (the message after the head): loads the same, and a
     * change keeps it that way. */
    dl_ob_t o;
    Casebus__V1__Obligation *msg = load(f, id, &o);
    uint64_t opened_seq = o.opened_seq;
    assert_int_equal(opened_seq, opened->seq);
    o.opened_seq = 0;
    msg->used_ms = 7 * H;
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_ob_put(&f->dl, txn, &o, msg, &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    assert_true(stored_size(f, id) > DL_OB_HEAD);
    load_equals(f, id, want, 7 * H);

    /* Back to the event: used_ms is the clock's, kept in the head. */
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    o.opened_seq = opened_seq;
    assert_int_equal(dl_ob_put(&f->dl, txn, &o, msg, &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    casebus__v1__obligation__free_unpacked(msg, NULL);
    assert_int_equal(stored_size(f, id), DL_OB_HEAD);
    load_equals(f, id, want, 7 * H);

    /* Its alerts still carry the whole obligation: the case and the parties. */
    fire_at(f, want->due_at_ms);
    Casebus__V1__Envelope *red = skip_to(f, B(DEADLINE_BREACHED));
    const Casebus__V1__Obligation *ob = red->deadline_breached->obligation;
    assert_string_equal(ob->case_->case_id, "C9");
    assert_string_equal(ob->responsible->org_id, want->responsible->org_id);
    assert_string_equal(ob->rule_title, want->rule_title);
    assert_int_equal(ob->n_supervisors, want->n_supervisors);
    casebus__v1__envelope__free_unpacked(red, NULL);
    casebus__v1__envelope__free_unpacked(opened, NULL);
}

static void crime_referral_steps(void **state)
{
    fx_t *f = *state;
    orgs(f);
    Casebus__V1__CrimeReferralStep s = CASEBUS__V1__CRIME_REFERRAL_STEP__INIT;
    s.case_id = "C5";
    s.by = ref("wy-scjg");
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(CRIME_REFERRAL_STEP);
    env.crime_referral_step = &s;
    /* Decree 310: 3 days to decide (calendar days; Fri Nov 6 + 3 = Mon Nov 9). */
    s.step = CASEBUS__V1__CRIME_STEP__CRIME_STEP_INVESTIGATOR_REPORTED;
    s.at_ms = tu_at("2026-11-06T10:00:00+08:00");
    apply(f, "intake", &env, s.at_ms);
    Casebus__V1__Envelope *e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->rule_id, "crime_decide");
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-11-10T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    /* Decided: met; 24 hours to hand over. */
    s.step = CASEBUS__V1__CRIME_STEP__CRIME_STEP_TRANSFER_DECIDED;
    s.at_ms = tu_at("2026-11-07T11:00:00+08:00");
    apply(f, "intake", &env, s.at_ms);
    e = expect(f, B(OBLIGATION_MET));
    assert_true(e->obligation_met->on_time);
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED));
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-11-08T11:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    /* Handed over 2 hours late; public security's 3 days start. */
    s.step = CASEBUS__V1__CRIME_STEP__CRIME_STEP_HANDED_TO_POLICE;
    s.at_ms = tu_at("2026-11-08T13:00:00+08:00");
    apply(f, "intake", &env, s.at_ms);
    e = expect(f, B(OBLIGATION_MET));
    assert_false(e->obligation_met->on_time);
    assert_int_equal(e->obligation_met->late_by_ms, 2 * H);
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->responsible->org_id, "wy-gaj");
    casebus__v1__envelope__free_unpacked(e, NULL);
    /* Refused: the department may ask for reconsideration within 3 days. */
    s.step = CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED;
    s.by = ref("wy-gaj");
    s.accepted = false;
    s.at_ms = tu_at("2026-11-10T09:00:00+08:00");
    apply(f, "intake", &env, s.at_ms);
    e = expect(f, B(OBLIGATION_MET));
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->rule_id, "reconsideration");
    assert_string_equal(e->obligation_opened->obligation->responsible->org_id, "wy-scjg");
    casebus__v1__envelope__free_unpacked(e, NULL);
}

static void date_rules_and_joint_operations(void **state)
{
    fx_t *f = *state;
    orgs(f);
    /* Monthly status, by the 20th: opened for the judicial bureau on 2026-11-05;
     * Fri Nov 20 is a working day, so due 24:00 Nov 20. */
    f->dl.rules.rule[DL_RULE_MONTHLY_STATUS].enabled = true;
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_open_periodic(&f->dl, txn, tu_at("2026-11-05T10:00:00+08:00"), &err), 0);
    assert_int_equal(dl_open_periodic(&f->dl, txn, tu_at("2026-11-06T10:00:00+08:00"), &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    Casebus__V1__Envelope *e = expect(f, B(OBLIGATION_OPENED));
    assert_string_equal(e->obligation_opened->obligation->obligation_id,
                        "monthly_status:wy-sfj:2026-11");
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-11-21T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    expect_none(f); /* opened once, however often the opener runs */
    /* 2026-12-20 is a Sunday: a date rule stays on its date unless the rule says
     * move_to_working_day = yes; this one does: 24:00 Mon Dec 21. */
    f->dl.rules.rule[DL_RULE_MONTHLY_STATUS].move = true;
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_open_periodic(&f->dl, txn, tu_at("2026-12-01T09:00:00+08:00"), &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    e = expect(f, B(OBLIGATION_OPENED));
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-12-22T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    /* "By 31 January" (1月底之前, seed 001 #16): Sun 31 Jan 2027 stays the limit by
     * default (the shipped rule does not move), and is counted on the provisional
     * 2027 calendar, which the obligation says. */
    dl_rules_t saved = f->dl.rules;
    for (int r = 0; r < DL_NRULES; r++)
        f->dl.rules.rule[r].enabled = r == DL_RULE_CASE_FILE_CATALOGUE;
    assert_false(f->dl.rules.rule[DL_RULE_CASE_FILE_CATALOGUE].move);
    assert_int_equal(cb_store_begin(f->dl.d.store, true, &txn, &err), 0);
    assert_int_equal(dl_open_periodic(&f->dl, txn, tu_at("2027-01-04T09:00:00+08:00"), &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    bool seen = false;
    while ((e = next_event(f)) != NULL) {
        const Casebus__V1__Obligation *ob =
            e->body_case == B(OBLIGATION_OPENED) ? e->obligation_opened->obligation : NULL;
        if (ob && strcmp(ob->obligation_id, "case_file_catalogue:wy-scjg:2026") == 0) {
            assert_int_equal(ob->due_at_ms, tu_at("2027-02-01T00:00:00+08:00"));
            assert_true(ob->calendar_provisional);
            assert_non_null(strstr(ob->calendar_version, "2027: PROVISIONAL"));
            seen = true;
        }
        casebus__v1__envelope__free_unpacked(e, NULL);
    }
    assert_true(seen);
    /* Had the rule said move_to_working_day = yes: 24:00 Mon 1 Feb. */
    dl_ob_t o;
    assert_int_equal(cb_store_begin(f->dl.d.store, false, &txn, &err), 0);
    assert_int_equal(dl_ob_get(&f->dl, txn, "case_file_catalogue:wy-scjg:2026", &o, NULL, &err), 0);
    cb_store_abort(&txn);
    assert_true(o.flags & DL_F_DATE);
    assert_true(o.flags & DL_F_STAY);
    o.flags &= (uint8_t)~DL_F_STAY;
    assert_int_equal(dl_recount(f->dl.cal, &o, NULL), tu_at("2027-02-02T00:00:00+08:00"));
    f->dl.rules = saved;
    /* The filing for November meets November's. */
    Casebus__V1__FilingRecorded fr = CASEBUS__V1__FILING_RECORDED__INIT;
    fr.kind = CASEBUS__V1__FILING_KIND__FILING_KIND_MONTHLY_STATUS;
    fr.by = ref("wy-sfj");
    fr.period = "2026-11";
    Casebus__V1__Envelope env = CASEBUS__V1__ENVELOPE__INIT;
    env.body_case = B(FILING_RECORDED);
    env.filing_recorded = &fr;
    apply(f, "intake", &env, tu_at("2026-11-19T16:00:00+08:00"));
    e = expect(f, B(OBLIGATION_MET));
    assert_true(e->obligation_met->on_time);
    assert_string_equal(e->obligation_met->obligation->obligation_id, "monthly_status:wy-sfj:2026-11");
    casebus__v1__envelope__free_unpacked(e, NULL);

    /* A joint operation starting Mon Nov 16 is applied for by 24:00 Wed Nov 11
     * (5 days before its first day); applied on Thu Nov 12 it is late by 10 h. */
    Casebus__V1__JointOperationApplied j = CASEBUS__V1__JOINT_OPERATION_APPLIED__INIT;
    j.operation_id = "J1";
    j.by = ref("wy-scjg");
    j.starts_at_ms = tu_at("2026-11-16T08:00:00+08:00");
    j.subject = "夜市整治";
    Casebus__V1__Envelope jenv = CASEBUS__V1__ENVELOPE__INIT;
    jenv.body_case = B(JOINT_OPERATION_APPLIED);
    jenv.joint_operation_applied = &j;
    apply(f, "intake", &jenv, tu_at("2026-11-12T10:00:00+08:00"));
    e = expect(f, B(OBLIGATION_OPENED));
    assert_int_equal(e->obligation_opened->obligation->due_at_ms, tu_at("2026-11-12T00:00:00+08:00"));
    casebus__v1__envelope__free_unpacked(e, NULL);
    e = expect(f, B(OBLIGATION_MET));
    assert_false(e->obligation_met->on_time);
    assert_int_equal(e->obligation_met->late_by_ms, 10 * H);
    casebus__v1__envelope__free_unpacked(e, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_rules_parse),
        cmocka_unit_test(bad_rules_name_section_and_key),
        cmocka_unit_test(resumed_clock_ends_at_midnight),
        cmocka_unit_test(recount_after_a_calendar_import),
        cmocka_unit_test(clock_points_and_missed_escalations),
        cmocka_unit_test_setup_teardown(extension_requested_then_approved, setup, teardown),
        cmocka_unit_test_setup_teardown(supervision_orders_are_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(calendar_missing_then_loaded_recomputes, setup, teardown),
        cmocka_unit_test_setup_teardown(next_years_calendar_is_watched_from_november, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_case_closes_its_obligations, setup, teardown),
        cmocka_unit_test_setup_teardown(store_keeps_the_clock_and_the_log_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(crime_referral_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(date_rules_and_joint_operations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
