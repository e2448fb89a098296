/*
 * ranking.h — the two-way supervision ranking (seed 000 §六) as a pure fold
 * over router's and deadline's events: the county ranks townships by their
 * handling of enforcement, and the county organisations by how they supported
 * the townships. No store, no output: report.c reads the logs and prints.
 *
 * What is counted for a period [from, to):
 *   - transfers sent (first routing only) and received (once per transfer and
 *     receiver, whatever re-routing happened), warnings, breaches, escalations,
 *     督办 orders issued to it and orders it answered: when recorded within the
 *     period;
 *   - time limits: those that fell due within the period (the due instant as it
 *     last stood, after extensions), met or not. Met on time is on time; met
 *     late, or still open when the period (or, for the current period, now)
 *     ended, is late. Cancelled and paused limits are left out.
 *   on-time share = on time / fell due (undefined when nothing fell due).
 * Ranking: share (highest first; organisations with nothing due last), then
 * fewest breaches, then smallest median lateness, then id.
 */
#ifndef CB_CLI_RANKING_H
#define CB_CLI_RANKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "casebus/v1/events.pb-c.h"

typedef struct cb_rank_org {
    char org[72], name[160];
    int kind;
    unsigned sent, received, warnings, breaches, escalations, orders, answers;
    unsigned due, on_time, late, pending; /* pending: open, due in the period, not yet due */
    double *waits;                        /* hours from discovery to routing, of transfers sent */
    size_t nwaits, capwaits;
    double *lateness;                     /* ms late of each late limit */
    size_t nlate, caplate;
} cb_rank_org_t;

typedef struct cb_ranking cb_ranking_t;

/* A fold for the period [from_ms, to_ms) seen at now_ms (NULL without memory). */
cb_ranking_t *cb_ranking_new(int64_t from_ms, int64_t to_ms, int64_t now_ms);
void cb_ranking_destroy(cb_ranking_t **r);

/* Feeds one event; give every event of both logs up to to_ms, from their
 * beginning (a limit opened before the period may fall due in it). -1 when out
 * of memory (the fold is then incomplete and must not be printed). */
int cb_ranking_add(cb_ranking_t *r, const Casebus__V1__Envelope *env);

/* Tallies the limits and sorts: *out points at the group's rows, best first
 * (townships, or every other kind). Valid until cb_ranking_destroy. */
size_t cb_ranking_group(cb_ranking_t *r, bool townships, cb_rank_org_t ***out);

/* on time / fell due, or -1 when nothing fell due. */
double cb_rank_share(const cb_rank_org_t *o);
/* Median of the listed values, or -1 when there are none. */
double cb_rank_median_hours(cb_rank_org_t *o);
int64_t cb_rank_median_lateness_ms(cb_rank_org_t *o);

#define CB_RANK_FORMULA                                                                        \
    "on-time share = limits met on time / limits that fell due in the period (met or not; "    \
    "open and overdue counts as late); ties: fewest breaches, then smallest median lateness"

#endif
