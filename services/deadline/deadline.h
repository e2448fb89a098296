/*
 * deadline.h — the deadline daemon's private header. deadline is the single
 * authority on time (DESIGN.md): it pulls intake's and router's logs, opens an
 * obligation for every legal time limit a rule names (DOMAIN.md "Every time
 * limit"), watches it on the working-day calendar, and records yellow warnings,
 * red breaches, escalations (督办) and the obligation's end as self-contained
 * events of its own log.
 *
 * Open obligations live in LMDB under a key ordered by their next firing
 * instant: one libuv timer, set to the first key, drives everything; nothing per
 * obligation is kept in memory, and a restart rebuilds nothing.
 *
 * Files: main.c (wiring), rules.c (the rules file), obligation.c (pure clock
 * arithmetic of one obligation), state.c (every mdb_* call), handlers.c (one
 * on_<event> per input event), lifecycle.c (opening, pausing, resuming and
 * closing an obligation, and the events that record it), alert.c (what a due
 * point does: warning, breach, 督办), calwatch.c (calendar imports and the
 * missing-year alarm), fire.c (the timer: when, in short batches), control.c
 * (calendar import, status). dlint.h is what the handler files share.
 */
#ifndef CB_DEADLINE_H
#define CB_DEADLINE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "casebus/v1/events.pb-c.h"
#include "control.h"
#include "daemon.h"

/* ---- rules (rules.c) ---- */

#define DL_MAX_WARN 4
#define DL_MAX_ESC_KINDS 4

/* Every rule the daemon knows: a rule's trigger, stop event and responsible
 * party are code (they follow the law and the events); its length, unit,
 * warning points and escalation come from the rules file. */
typedef enum dl_rule_id {
    DL_RULE_TRANSFER,              /* 3 working days from discovery (seed 002 §五(三)3) */
    DL_RULE_TRANSFER_EMERGENCY,    /* 24 hours from discovery */
    DL_RULE_SIGN,                  /* 1 working day to sign for a routed transfer */
    DL_RULE_ASSISTANCE,            /* 5 working days to answer a request for help */
    DL_RULE_APPROVAL_NOTICE,       /* 10 working days to tell the enforcement side */
    DL_RULE_DECISION_FEEDBACK,     /* 10 working days to feed a decision back */
    DL_RULE_MAJOR_DECISION_FILING, /* 10 days to file a major decision */
    DL_RULE_CRIME_DECIDE,          /* Decree 310: 3 days to decide on a crime transfer */
    DL_RULE_CRIME_HANDOVER,        /* Decree 310: 24 hours to hand it over */
    DL_RULE_POLICE_ANSWER,         /* Decree 310: 3 days for public security to answer */
    DL_RULE_RECONSIDERATION,       /* Decree 310: 3 days to ask for reconsideration */
    DL_RULE_JOINT_OPERATION,       /* apply 5 days before a special joint operation */
    DL_RULE_CASE_FILE_CATALOGUE,   /* last year's case-file catalogue by 31 January */
    DL_RULE_ENFORCEMENT_DATA,      /* last year's enforcement data by 31 January */
    DL_RULE_MONTHLY_STATUS,        /* the month's status collection by the 20th */
    DL_RULE_APPROVAL_NOTICE_URGENT, /* an urgent approval: told at once (hours) */
    DL_RULE_RECONSIDERATION_ANSWER, /* Decree 310: 3 days to answer a reconsideration */
    DL_RULE_EXHIBITS_HANDOVER,      /* Decree 310: 3 days to hand over the exhibits */
    DL_RULE_DISPATCH_SIGN,          /* sign for a case the command platform dispatched */
    DL_RULE_RETURN_REVIEW,          /* the platform reviews a dispatch's return (退单审核) */
    DL_RULE_SUPERVISION_ANSWER,     /* answer a 督办 order */
    DL_NRULES
} dl_rule_id_t;

typedef enum dl_offset_kind {
    DL_OFF_WALL = 1,     /* clock time before the limit (ms) */
    DL_OFF_WORKING = 2,  /* working time before the limit (ms of working days) */
    DL_OFF_PERCENT = 3,  /* this share of the whole period before the limit */
} dl_offset_kind_t;

typedef struct dl_offset {
    uint8_t kind;
    int64_t value;       /* ms, or percent */
} dl_offset_t;

typedef struct dl_rule {
    bool enabled;
    char title[256];
    char source[128];
    int unit;            /* CASEBUS__V1__TIME_UNIT__… */
    uint32_t length;
    dl_offset_t warn[DL_MAX_WARN];
    uint8_t nwarn;
    bool escalate;
    int64_t esc_grace_ms, esc_every_ms;  /* every 0: escalate once */
    int esc_kinds[DL_MAX_ESC_KINDS];     /* CASEBUS__V1__ORG_KIND__… to escalate to */
    uint8_t nesc_kinds;
    /* Date rules (unit DATE): due on a day of the year (month 1-12) or of every
     * month (month 0), opened each period for every organisation of the kinds. */
    int due_month, due_day;
    int resp_kinds[DL_MAX_ESC_KINDS];
    uint8_t nresp_kinds;
    /* Days and date rules: a last day that is not a working day moves to the
     * next working day (民法典 第二百零三条; default yes for days, no for dates,
     * whose documents say "before the end of January"). */
    bool move;
} dl_rule_t;

typedef struct dl_rules {
    dl_rule_t rule[DL_NRULES];
} dl_rules_t;

const char *dl_rule_name(dl_rule_id_t id);
/* Parses a rules file (INI, one section per rule; every rule must be present).
 * Errors name the section and key. */
int dl_rules_parse(dl_rules_t *rules, const char *text, const char *source, cb_error_t *err);
int dl_rules_load(dl_rules_t *rules, const char *path, cb_error_t *err);

/* ---- one obligation's clock (obligation.c) ---- */

typedef enum dl_status {
    DL_OPEN = 1,
    DL_PAUSED = 2,
    DL_MET = 3,
    DL_CANCELLED = 4,
} dl_status_t;

#define DL_RED_BIT 0x80
#define DL_F_MET_LATE 0x01   /* met after its limit */
#define DL_F_REBASED 0x02    /* paused or reopened: the due no longer follows from the start */
#define DL_F_STAY 0x04       /* a last day off does not move to the next working day */
#define DL_F_DATE 0x08       /* a date rule: due 24:00 of the day anchor_ms begins */

/* The part of a stored obligation the clock needs (the rest is the
 * casebus.v1.Obligation the events carry). */
typedef struct dl_ob {
    uint8_t status;
    uint8_t unit;
    uint8_t nwarn;
    uint8_t fired;           /* bit i: warning point i fired; DL_RED_BIT: red fired */
    uint8_t level;           /* highest alert level standing: 0, yellow, red */
    uint8_t escalate;
    uint8_t flags;           /* DL_F_… */
    uint32_t escalations;    /* escalation steps fired */
    uint32_t length;
    uint32_t ext_pending;    /* extra length asked for, awaiting the supervisor */
    uint32_t ext_total;      /* extra length granted so far */
    int64_t start_ms;
    int64_t due_ms;
    int64_t next_fire_ms;    /* its key in the timer index; 0 when none */
    int64_t remaining_ms;    /* paused or met: clock left (working ms for working days) */
    int64_t esc_grace_ms, esc_every_ms;
    dl_offset_t warn[DL_MAX_WARN];
    int64_t anchor_ms;       /* DL_F_DATE: the date; rebased: the instant it resumed */
    uint32_t ext_at_anchor;  /* ext_total when it resumed */
    /* The ObligationOpened event in deadline's log that holds the rest of the
     * obligation (its case, rule, parties), so that the store need not hold a
     * second copy; 0 for one stored with its message (before this existed). */
    uint64_t opened_seq;
    int64_t used_ms;         /* the message's used_ms: the clock used before a pause */
} dl_ob_t;

#define DL_OB_HEAD 160       /* encoded size of dl_ob_t */

void dl_ob_encode(const dl_ob_t *o, uint8_t out[DL_OB_HEAD]);
int dl_ob_decode(dl_ob_t *o, const uint8_t *in, size_t len);

/* The due instant of a period of rule unit/length from start. *missing_year
 * gets a year the count needed and had no calendar for (0 when none). */
int64_t dl_due(const cb_calendar_t *cal, int unit, uint32_t length, int64_t start_ms,
               bool move, int *missing_year);
/* Moves a due instant by extra units (an approved extension). */
int64_t dl_extend(const cb_calendar_t *cal, int unit, uint32_t extra, int64_t due_ms,
                  bool move, int *missing_year);
/* 24:00 of a CST day, moved past days off when move (date rules). */
int64_t dl_date_due(const cb_calendar_t *cal, int64_t cst_day, bool move, int *missing_year);
/* The due instant the obligation's clock gives by today's calendar: its count
 * from the start, its date, or its time left from when it resumed, plus the
 * extensions granted since. Recomputing after a calendar import uses it. */
int64_t dl_recount(const cb_calendar_t *cal, const dl_ob_t *o, int *missing_year);
/* Time left from now to due on the obligation's clock (working time for
 * working-day periods), negative when overdue; and the inverse. */
int64_t dl_clock_left(const cb_calendar_t *cal, const dl_ob_t *o, int64_t now_ms);
int64_t dl_clock_resume(const cb_calendar_t *cal, const dl_ob_t *o, int64_t now_ms);
/* The instant of point i (i < nwarn: a warning; i == nwarn: the limit). */
int64_t dl_point_at(const cb_calendar_t *cal, const dl_ob_t *o, unsigned i);
/* Marks warning points that fall at or before the start as passed (a warning
 * the obligation was born past is noise, not news). */
void dl_skip_points_before_start(const cb_calendar_t *cal, dl_ob_t *o);
/* The next instant something fires (0: nothing more). */
int64_t dl_next_fire(const cb_calendar_t *cal, const dl_ob_t *o);

typedef struct dl_alert {
    int level;               /* CASEBUS__V1__ALERT_LEVEL__… */
    unsigned point;          /* warning index; nwarn for red and escalations */
    int64_t fire_at_ms;
    uint32_t repeat;         /* escalations: 1, 2, … */
} dl_alert_t;

/* Takes the earliest point due at now that has not fired, marks it fired and
 * describes it in *a. Returns false when none is due. An escalation step that
 * fell due several times while nobody looked fires once, as the latest repeat. */
bool dl_take_due(const cb_calendar_t *cal, dl_ob_t *o, int64_t now_ms, dl_alert_t *a);

/* ---- the daemon ---- */

typedef struct dl_counts {
    uint64_t open, paused, yellow, red, met_on_time, met_late, cancelled, fired;
} dl_counts_t;

typedef struct deadline {
    cb_daemon_t d;
    cb_calendar_t *cal;
    dl_rules_t rules;
    Casebus__V1__OrgsImported *orgs;     /* the registry replica (from router) */
    MDB_dbi db_meta, db_obligations, db_timers, db_bycase, db_calyears, db_cases;
    cb_control_t *control;
    uv_timer_t timer;
    uv_timer_t periodic;                 /* date rules: opens each period's filings */
    uv_check_t timer_check;              /* after each loop turn: the hint below */
    int64_t armed_at_ms;                 /* 0: not armed */
    /* The earliest instant put in the timer index since the timer last looked
     * (state.c sets it, fire.c reads it after each loop turn): the handlers say
     * what is due when, the timer alone decides when to wake. 0: none. */
    int64_t timer_hint_ms;
    bool firing;                         /* a batch waits for its commit */
    unsigned batch;                      /* obligations per firing transaction */
    int64_t late_after_ms;               /* a point fired later than this is "late" */
    uint64_t fired_total, late_total;
    uint64_t calendar_alarms;            /* CalendarMissing events raised since start */
    /* metrics (control.c brings the gauges up to date at each scrape) */
    cb_metric_t *m_lateness, *m_fired, *m_late, *m_cal_alarms, *m_next_year_missing;
    cb_metric_t *m_obligations[7];       /* by state: dl_counts_t's first seven */
    int64_t (*now)(void);                /* the clock (tests may replace it) */
} deadline_t;

/* ---- state.c ---- */
int dl_state_open(deadline_t *dl, cb_error_t *err);
/* Loads the registry replica and every stored calendar year. */
int dl_state_load(deadline_t *dl, cb_error_t *err);
/* An obligation: its clock and its message (NULL when unknown; free with
 * casebus__v1__obligation__free_unpacked). Returns CB_ERR_NOT_FOUND when absent. */
int dl_ob_get(deadline_t *dl, MDB_txn *txn, const char *id, dl_ob_t *o,
              Casebus__V1__Obligation **msg, cb_error_t *err);
int dl_ob_put(deadline_t *dl, MDB_txn *txn, const dl_ob_t *o, const Casebus__V1__Obligation *msg,
              cb_error_t *err);
int dl_timer_put(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, cb_error_t *err);
int dl_timer_del(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, cb_error_t *err);
/* Up to max timer keys due at or before now: instants and ids (ids[i] has
 * room for CB_CASE_ID_MAX + 64). Returns how many. */
typedef struct dl_due_key {
    int64_t at_ms;
    char id[CB_CASE_ID_MAX + 64];
} dl_due_key_t;
int dl_timers_due(deadline_t *dl, MDB_txn *txn, int64_t now_ms, dl_due_key_t *keys, int max,
                  cb_error_t *err);
/* The first timer instant (0 when none). */
int dl_timer_first(deadline_t *dl, MDB_txn *txn, int64_t *at_ms, cb_error_t *err);
int dl_bycase_put(deadline_t *dl, MDB_txn *txn, const char *case_id, const char *id,
                  cb_error_t *err);
typedef int (*dl_id_fn)(void *ctx, const char *id);
/* Visits the ids of a case's obligations (copied out first: visit may write). */
int dl_bycase_each(deadline_t *dl, MDB_txn *txn, const char *case_id, dl_id_fn visit, void *ctx,
                   cb_error_t *err);
/* The calendar-year index: open obligations whose clock crosses a year. */
int dl_calyears_put(deadline_t *dl, MDB_txn *txn, int64_t from_ms, int64_t to_ms, const char *id,
                    bool del, cb_error_t *err);
int dl_calyears_each(deadline_t *dl, MDB_txn *txn, int year, dl_id_fn visit, void *ctx,
                     cb_error_t *err);
int dl_case_put(deadline_t *dl, MDB_txn *txn, const Casebus__V1__CaseSummary *cs, cb_error_t *err);
Casebus__V1__CaseSummary *dl_case_get(deadline_t *dl, MDB_txn *txn, const char *case_id);
int dl_orgs_put(deadline_t *dl, MDB_txn *txn, const Casebus__V1__OrgsImported *oi,
                cb_error_t *err);
int dl_calendar_put(deadline_t *dl, MDB_txn *txn, int year, const char *text, size_t len,
                    cb_error_t *err);
bool dl_calendar_stored(deadline_t *dl, MDB_txn *txn, int year);
/* Missing calendar years: counts of obligations computed without them. */
int dl_missing_add(deadline_t *dl, MDB_txn *txn, int year, uint64_t *count, cb_error_t *err);
int dl_missing_clear(deadline_t *dl, MDB_txn *txn, int year, cb_error_t *err);
uint64_t dl_missing_count(deadline_t *dl, MDB_txn *txn, int year);
int dl_meta_i64(deadline_t *dl, MDB_txn *txn, const char *key, int64_t *value, cb_error_t *err);
int dl_meta_i64_put(deadline_t *dl, MDB_txn *txn, const char *key, int64_t value, cb_error_t *err);
/* Years still missing, written as a JSON array into buf. */
void dl_missing_json(deadline_t *dl, MDB_txn *txn, char *buf, size_t size);
/* Registers deadline's own metrics and their refresh (control.c). */
void dl_metrics_init(deadline_t *dl);
int dl_counts_get(deadline_t *dl, MDB_txn *txn, dl_counts_t *c, cb_error_t *err);
int dl_counts_put(deadline_t *dl, MDB_txn *txn, const dl_counts_t *c, cb_error_t *err);

/* ---- handlers.c, alert.c, calwatch.c ---- */
/* Apply function for intake's and router's events. */
int dl_apply(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err);
/* Fires what is due of obligation id at now (the timer key at_ms is its
 * current one), records the events and moves its timer key. */
int dl_fire(deadline_t *dl, MDB_txn *txn, int64_t at_ms, const char *id, int64_t now_ms,
            cb_error_t *err);
/* Opens the date rules' obligations of the current period (each yearly or
 * monthly filing, for every organisation of the rule's kinds) that are not
 * open yet and not past; idempotent. */
int dl_open_periodic(deadline_t *dl, MDB_txn *txn, int64_t now_ms, cb_error_t *err);
/* From 1 November, records CalendarMissing for next year once a day while its
 * notice is not loaded (the day raised is stored: a restart does not repeat it). */
int dl_watch_calendar(deadline_t *dl, MDB_txn *txn, int64_t now_ms, cb_error_t *err);
/* Next year when it is 1 November or later and its notice is not loaded, else 0. */
int dl_next_year_unannounced(const deadline_t *dl, int64_t now_ms);
/* A calendar year, loaded or corrected: stores it, recomputes the open
 * obligations whose clock crosses it, records CalendarLoaded. */
int dl_calendar_import(deadline_t *dl, MDB_txn *txn, const char *text, size_t len,
                       const char *source, int *year, uint64_t *recomputed, cb_error_t *err);

/* ---- fire.c ---- */
int dl_timer_init(deadline_t *dl, cb_error_t *err);
void dl_timer_close(deadline_t *dl);

/* ---- control.c ---- */
int dl_control_start(deadline_t *dl, const char *endpoint, cb_error_t *err);
void dl_control_stop(deadline_t *dl);

#endif
