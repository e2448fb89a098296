/*
 * ranking.c — the two-way ranking fold (ranking.h). Obligations and the
 * (transfer, receiver) pairs already counted live in small open-addressing
 * tables keyed by string; organisations in a growing array.
 */
#include "ranking.h"
#include "caselist.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OB_OPEN 0
#define OB_MET 1
#define OB_CANCELLED 2
#define OB_PAUSED 3

typedef struct ob {
    char *id;
    char org[72], name[160];
    int kind;
    int64_t due_ms;
    int state;
    bool on_time;
    int64_t late_by_ms;
} ob_t;

typedef struct table {
    void **slots; /* ob_t* or char* (a key only) */
    size_t cap, n;
    bool keys_only;
} table_t;

struct cb_ranking {
    int64_t from, to, now;
    cb_rank_org_t *orgs;
    size_t norgs, caporgs;
    cb_rank_org_t **sorted;
    table_t obs, received;
    bool tallied;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static const char *slot_key(const table_t *t, void *slot)
{
    return t->keys_only ? (const char *)slot : ((ob_t *)slot)->id;
}

/* The slot holding key, or the empty slot where it would go. */
static void **table_find(table_t *t, const char *key)
{
    size_t i = hash_str(key) & (t->cap - 1);
    while (t->slots[i] && strcmp(slot_key(t, t->slots[i]), key) != 0)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

static int table_grow(table_t *t)
{
    if (t->cap && (t->n + 1) * 4 < t->cap * 3)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 1024;
    table_t bigger = {.slots = calloc(cap, sizeof(void *)), .cap = cap, .n = t->n,
                      .keys_only = t->keys_only};
    if (bigger.slots == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i])
            *table_find(&bigger, slot_key(t, t->slots[i])) = t->slots[i];
    free(t->slots);
    *t = bigger;
    return 0;
}

static void table_free(table_t *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] && !t->keys_only)
            free(((ob_t *)t->slots[i])->id);
        free(t->slots[i]);
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

cb_ranking_t *cb_ranking_new(int64_t from_ms, int64_t to_ms, int64_t now_ms)
{
    cb_ranking_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->from = from_ms;
    r->to = to_ms;
    r->now = now_ms;
    r->received.keys_only = true;
    return r;
}

void cb_ranking_destroy(cb_ranking_t **rp)
{
    cb_ranking_t *r = rp ? *rp : NULL;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->norgs; i++) {
        free(r->orgs[i].waits);
        free(r->orgs[i].lateness);
    }
    free(r->orgs);
    free(r->sorted);
    table_free(&r->obs);
    table_free(&r->received);
    free(r);
    *rp = NULL;
}

static cb_rank_org_t *org_row(cb_ranking_t *r, const char *id, const char *name, int kind)
{
    if (id == NULL || *id == '\0')
        return NULL;
    for (size_t i = 0; i < r->norgs; i++)
        if (strcmp(r->orgs[i].org, id) == 0)
            return &r->orgs[i];
    if (r->norgs == r->caporgs) {
        size_t cap = r->caporgs ? r->caporgs * 2 : 64;
        cb_rank_org_t *g = realloc(r->orgs, cap * sizeof(*g));
        if (g == NULL)
            return NULL;
        r->orgs = g;
        r->caporgs = cap;
    }
    cb_rank_org_t *o = &r->orgs[r->norgs++];
    memset(o, 0, sizeof(*o));
    snprintf(o->org, sizeof(o->org), "%s", id);
    snprintf(o->name, sizeof(o->name), "%s", name ? name : "");
    o->kind = kind;
    return o;
}

static cb_rank_org_t *row_of(cb_ranking_t *r, const Casebus__V1__OrgRef *o)
{
    return o ? org_row(r, o->org_id, o->name, o->kind) : NULL;
}

/* Appends x to the array *v of *n (capacity *cap); -1 when out of memory. */
#define PUSH(v, n, cap, x) (CB_GROW(*(v), *(cap), *(n), 16) != 0 ? -1 : ((*(v))[(*(n))++] = (x), 0))

/* The obligation's record, made on first sight (NULL when out of memory). */
static ob_t *ob_of(cb_ranking_t *r, const Casebus__V1__Obligation *o)
{
    if (o == NULL || o->obligation_id == NULL || *o->obligation_id == '\0')
        return NULL;
    if (table_grow(&r->obs) != 0)
        return NULL;
    void **slot = table_find(&r->obs, o->obligation_id);
    ob_t *b = *slot;
    if (b == NULL) {
        if ((b = calloc(1, sizeof(*b))) == NULL || (b->id = strdup(o->obligation_id)) == NULL) {
            free(b);
            return NULL;
        }
        *slot = b;
        r->obs.n++;
    }
    if (o->responsible && o->responsible->org_id && *o->responsible->org_id) {
        snprintf(b->org, sizeof(b->org), "%s", o->responsible->org_id);
        snprintf(b->name, sizeof(b->name), "%s", o->responsible->name ? o->responsible->name : "");
        b->kind = o->responsible->kind;
    }
    if (o->due_at_ms)
        b->due_ms = o->due_at_ms;
    return b;
}

/* Counts the receiver once per transfer: a re-sent or re-routed transfer to
 * the same receiver is one received case. 1 when new, 0 when seen, -1 no memory. */
static int first_receipt(cb_ranking_t *r, const char *transfer_id, const char *receiver)
{
    size_t len = strlen(transfer_id) + strlen(receiver) + 2;
    char *key = malloc(len);
    if (key == NULL || table_grow(&r->received) != 0) {
        free(key);
        return -1;
    }
    snprintf(key, len, "%s|%s", transfer_id, receiver);
    void **slot = table_find(&r->received, key);
    if (*slot) {
        free(key);
        return 0;
    }
    *slot = key;
    r->received.n++;
    return 1;
}

/* The answer to a 督办 order (deadline's supervision_answer rule). */
static bool is_answer(const Casebus__V1__Obligation *o)
{
    return o && o->rule_id && strcmp(o->rule_id, "supervision_answer") == 0;
}

static bool in_period(const cb_ranking_t *r, int64_t at)
{
    return at >= r->from && at < r->to;
}

int cb_ranking_add(cb_ranking_t *r, const Casebus__V1__Envelope *env)
{
    bool now_in = in_period(r, env->recorded_at_ms);
    cb_rank_org_t *w;
    ob_t *b;
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_TRANSFER_ROUTED: {
        const Casebus__V1__TransferRouted *t = env->transfer_routed;
        if (!now_in)
            break;
        if (t->route_count == 1 && (w = row_of(r, t->sender))) {
            w->sent++;
            if (t->case_ && t->case_->discovered_at_ms && t->sent_at_ms >= t->case_->discovered_at_ms &&
                PUSH(&w->waits, &w->nwaits, &w->capwaits,
                            (double)(t->sent_at_ms - t->case_->discovered_at_ms) / 3600000.0) != 0)
                return -1;
        }
        if (t->receiver && t->receiver->org_id && t->transfer_id) {
            int first = first_receipt(r, t->transfer_id, t->receiver->org_id);
            if (first < 0)
                return -1;
            if (first && (w = row_of(r, t->receiver)))
                w->received++;
        }
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_OPENED: {
        const Casebus__V1__Obligation *o = env->obligation_opened->obligation;
        if (ob_of(r, o) == NULL)
            return -1;
        if (now_in && is_answer(o) && (w = row_of(r, o->responsible)))
            w->orders++; /* a 督办 order, to be answered */
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_MET:
        if ((b = ob_of(r, env->obligation_met->obligation)) == NULL)
            return env->obligation_met->obligation ? -1 : 0;
        b->state = OB_MET;
        b->on_time = env->obligation_met->on_time;
        b->late_by_ms = env->obligation_met->late_by_ms;
        if (now_in && is_answer(env->obligation_met->obligation) &&
            (w = row_of(r, env->obligation_met->obligation->responsible)))
            w->answers++;
        break;
    case CASEBUS__V1__ENVELOPE__BODY_OBLIGATION_CHANGED: {
        const Casebus__V1__ObligationChanged *oc = env->obligation_changed;
        if (oc->obligation == NULL || oc->obligation->obligation_id == NULL ||
            *oc->obligation->obligation_id == '\0')
            break;
        if ((b = ob_of(r, oc->obligation)) == NULL)
            return -1;
        switch (oc->change) {
        case CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_CANCELLED:
            b->state = OB_CANCELLED;
            break;
        case CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_PAUSED:
            b->state = OB_PAUSED;
            break;
        case CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_RESUMED:
        case CASEBUS__V1__OBLIGATION_CHANGE__OBLIGATION_CHANGE_REOPENED:
            b->state = OB_OPEN;
            break;
        default:
            break;
        }
        break;
    }
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING:
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED:
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED: {
        const Casebus__V1__Obligation *o = cb_event_obligation(env);
        if (!now_in || o == NULL || (w = row_of(r, o->responsible)) == NULL)
            break;
        int level = cb_alert_level(env);
        if (level == CB_LEVEL_YELLOW)
            w->warnings++;
        else if (level == CB_LEVEL_RED)
            w->breaches++;
        else
            w->escalations++;
        break;
    }
    default:
        break;
    }
    return 0;
}

double cb_rank_share(const cb_rank_org_t *o)
{
    return o->due ? (double)o->on_time / o->due : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double cb_rank_median_hours(cb_rank_org_t *o)
{
    return median(o->waits, o->nwaits);
}

int64_t cb_rank_median_lateness_ms(cb_rank_org_t *o)
{
    return (int64_t)median(o->lateness, o->nlate);
}

static int rank_cmp(const void *a, const void *b)
{
    cb_rank_org_t *x = *(cb_rank_org_t *const *)a, *y = *(cb_rank_org_t *const *)b;
    double sx = cb_rank_share(x), sy = cb_rank_share(y);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    if (x->breaches != y->breaches)
        return x->breaches < y->breaches ? -1 : 1;
    int64_t lx = cb_rank_median_lateness_ms(x), ly = cb_rank_median_lateness_ms(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x->org, y->org);
}

static int tally(cb_ranking_t *r)
{
    int64_t end = r->now < r->to ? r->now : r->to;
    for (size_t i = 0; i < r->obs.cap; i++) {
        ob_t *b = r->obs.slots[i];
        if (b == NULL || !in_period(r, b->due_ms) || b->state == OB_CANCELLED ||
            b->state == OB_PAUSED)
            continue;
        cb_rank_org_t *w = org_row(r, b->org, b->name, b->kind);
        if (w == NULL)
            continue;
        if (b->state == OB_MET && b->on_time) {
            w->due++;
            w->on_time++;
        } else if (b->state == OB_MET) {
            w->due++;
            w->late++;
            if (PUSH(&w->lateness, &w->nlate, &w->caplate, (double)b->late_by_ms) != 0)
                return -1;
        } else if (b->due_ms < end) {
            w->due++;
            w->late++; /* open and overdue */
            if (PUSH(&w->lateness, &w->nlate, &w->caplate, (double)(end - b->due_ms)) != 0)
                return -1;
        } else {
            w->pending++;
        }
    }
    r->sorted = calloc(r->norgs ? r->norgs : 1, sizeof(*r->sorted));
    return r->sorted ? 0 : -1;
}

size_t cb_ranking_group(cb_ranking_t *r, bool townships, cb_rank_org_t ***out)
{
    *out = NULL;
    if (!r->tallied) {
        if (tally(r) != 0)
            return 0;
        r->tallied = true;
    }
    /* Townships first in the array, the county after: two sorted runs. */
    size_t nt = 0;
    for (size_t i = 0; i < r->norgs; i++)
        if (r->orgs[i].kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP)
            r->sorted[nt++] = &r->orgs[i];
    size_t nc = nt;
    for (size_t i = 0; i < r->norgs; i++)
        if (r->orgs[i].kind != CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP)
            r->sorted[nc++] = &r->orgs[i];
    cb_rank_org_t **group = townships ? r->sorted : r->sorted + nt;
    size_t n = townships ? nt : nc - nt;
    qsort(group, n, sizeof(*group), rank_cmp);
    *out = group;
    return n;
}
