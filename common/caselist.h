/*
 * caselist.h — the case and obligation lists the command platform works from
 * (by township, organisation, state, alert level, overdue, matter; open limits
 * by time remaining). intake keeps them from the logs it already follows, in
 * its own store, beside the case view; its HTTP door and `casebus cases |
 * overdue | due-soon` read them. Never derives anything itself: a row is what
 * the caller says a case or a limit is now.
 *
 * Databases:
 *   case_rows   case_id -> row (caselist.c's encoding)
 *   case_index  tag value \0 be64(~reported_at) case_id -> ""   (newest first)
 *               tags: a (every case, value ""), t township code, o organisation
 *               with a role, s state, l alert level, m matter, v overdue ("1")
 *   ob_rows     obligation_id -> row          (open and paused limits only)
 *   ob_index    tag value \0 be64(due) obligation_id -> ""         (soonest first)
 *               tags: a (every open limit), r responsible, l level, t township
 *   ob_counts   org_id -> be32 × 4: its running limits, yellow, red (past due,
 *               escalated or not), escalated
 *               (paused limits are not counted)
 * Pages are stable: a cursor is the last key suffix returned, and the next page
 * starts after it. A query looks at no more than CB_LIST_SCAN_MAX candidates:
 * a sparse filter answers with fewer rows and a cursor to go on from.
 */
#ifndef CB_CASELIST_H
#define CB_CASELIST_H

#include <lmdb.h>
#include "casebus/v1/events.pb-c.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define CB_LIST_ID_MAX 96
#define CB_LIST_ORG_MAX 65
#define CB_LIST_MAX_ORGS 16
#define CB_LIST_LIMIT_MAX 200
#define CB_LIST_SCAN_MAX 10000
#define CB_LIST_CURSOR_MAX 160

enum { CB_LEVEL_NONE = 0, CB_LEVEL_YELLOW = 1, CB_LEVEL_RED = 2, CB_LEVEL_ESCALATED = 3 };

typedef struct cb_case_row {
    char case_id[CB_LIST_ID_MAX];
    int64_t reported_ms, discovered_ms;
    int64_t next_due_ms;   /* earliest due of its open limits; 0: none */
    uint32_t open;         /* open limits */
    uint8_t level;         /* highest alert standing on an open limit (CB_LEVEL_*) */
    bool overdue;          /* an open limit has passed (red or escalated) */
    char township[16], township_name[96], matter[40], matter_name[160], state[32];
    char finder[CB_LIST_ORG_MAX], competent[CB_LIST_ORG_MAX], holder[CB_LIST_ORG_MAX];
    char description[160]; /* the first characters, for a list line */
    size_t norgs;          /* every organisation with a role (reads the case) */
    char orgs[CB_LIST_MAX_ORGS][CB_LIST_ORG_MAX];
} cb_case_row_t;

typedef struct cb_ob_row {
    char obligation_id[CB_LIST_ID_MAX], case_id[CB_LIST_ID_MAX];
    char rule_id[40], title[200];
    char responsible[CB_LIST_ORG_MAX], responsible_name[96];
    char township[16], supervision_id[CB_LIST_ID_MAX + 16];
    int64_t due_ms;
    uint8_t level;
    bool paused;
} cb_ob_row_t;

typedef struct cb_lists {
    MDB_dbi case_rows, case_index, ob_rows, ob_index, ob_counts;
} cb_lists_t;

/* An organisation's running limits: open, and of those yellow, red, escalated. */
typedef struct cb_org_counts {
    uint32_t open, yellow, red, escalated;
} cb_org_counts_t;

/* Opens (creates, unless the store is read-only) the four databases. */
int cb_lists_open(cb_lists_t *l, cb_store_t *s, cb_error_t *err);

/* Stores what a case is now, moving its index keys from what it was. */
int cb_lists_case_put(const cb_lists_t *l, MDB_txn *txn, const cb_case_row_t *row,
                      cb_error_t *err);
/* An open (or paused) limit as it is now; cb_lists_ob_del when it ends. */
int cb_lists_ob_put(const cb_lists_t *l, MDB_txn *txn, const cb_ob_row_t *row, cb_error_t *err);
int cb_lists_ob_del(const cb_lists_t *l, MDB_txn *txn, const char *obligation_id,
                    cb_error_t *err);
/* The stored row (CB_ERR_NOT_FOUND when none). */
int cb_lists_ob_get(const cb_lists_t *l, MDB_txn *txn, const char *obligation_id,
                    cb_ob_row_t *row, cb_error_t *err);

/* What to list; NULL or -1 for "any". scope: the organisations a caller may
 * see (NULL: every case). from/to bound reported_at, [from, to). */
typedef struct cb_case_query {
    const char *township, *org, *state, *matter, *holder;
    int level;          /* a CB_LEVEL_*, or -1 */
    int overdue;        /* 0, 1, or -1 */
    int64_t from_ms, to_ms;
    const char *cursor;
    unsigned limit;     /* 1..CB_LIST_LIMIT_MAX */
    const char *const *scope;
    size_t nscope;
} cb_case_query_t;

typedef struct cb_ob_query {
    const char *responsible, *township, *rule, *case_id;
    int level;          /* -1 any; CB_LEVEL_NONE: no alert yet */
    int64_t due_from_ms, due_to_ms; /* [from, to) of the due instant; 0: open */
    bool include_paused;
    const char *cursor;
    unsigned limit;
    const char *const *scope;
    size_t nscope;
} cb_ob_query_t;

typedef int (*cb_case_row_fn)(void *ctx, const cb_case_row_t *row);
typedef int (*cb_ob_row_fn)(void *ctx, const cb_ob_row_t *row);

/* Calls fn for each matching row, newest report first (obligations: soonest
 * due first), at most q->limit; next gets the cursor of the next page ("" when
 * there is none). CB_ERR_INVALID for a cursor that is not one of ours. */
int cb_lists_cases(const cb_lists_t *l, MDB_txn *txn, const cb_case_query_t *q,
                   cb_case_row_fn fn, void *ctx, char next[CB_LIST_CURSOR_MAX], cb_error_t *err);
int cb_lists_obligations(const cb_lists_t *l, MDB_txn *txn, const cb_ob_query_t *q,
                         cb_ob_row_fn fn, void *ctx, char next[CB_LIST_CURSOR_MAX],
                         cb_error_t *err);

/* The organisation's counts (zeros when it has none). */
int cb_lists_org_counts(const cb_lists_t *l, MDB_txn *txn, const char *org, cb_org_counts_t *c,
                        cb_error_t *err);
/* Cases reported from from_ms on, counted up to max (a board's "today"). */
int cb_lists_count_since(const cb_lists_t *l, MDB_txn *txn, int64_t from_ms, uint64_t max,
                         uint64_t *count, cb_error_t *err);
/* Open limits due before to_ms, counted up to max (the overdue total). */
int cb_lists_count_due_before(const cb_lists_t *l, MDB_txn *txn, int64_t to_ms, uint64_t max,
                              uint64_t *count, cb_error_t *err);

const char *cb_level_name(int level);
/* An alert's level: CB_LEVEL_YELLOW for deadline_warning, CB_LEVEL_RED for
 * deadline_breached, CB_LEVEL_ESCALATED for escalated; -1 for any other event. */
int cb_alert_level(const Casebus__V1__Envelope *env);
/* The time limit an event is about (its body's `obligation`), or NULL. */
const Casebus__V1__Obligation *cb_event_obligation(const Casebus__V1__Envelope *env);
/* "yellow" -> CB_LEVEL_YELLOW …, "none"; -1 when unknown. */
int cb_level_parse(const char *word);

#endif
