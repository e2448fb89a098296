/*
 * obligation.c — the clock of one obligation, pure: its due instant by the
 * counting rules (common/calendar.c), its warning points, what fires next, and
 * its stored encoding. No store, no loop.
 *
 * A paused or met clock keeps the time it had left (DOMAIN.md: "the clock keeps
 * what it had used"): for working-day periods that is working time, so a pause
 * over a weekend or a holiday costs nothing.
 */
#include "deadline.h"
#include "bytes.h"
#include "cbtime.h"

#include <string.h>

#define U(x) CASEBUS__V1__TIME_UNIT__TIME_UNIT_##x
#define L(x) CASEBUS__V1__ALERT_LEVEL__ALERT_LEVEL_##x

/* Encoding (big-endian), DL_OB_HEAD bytes:
 *   0 version 1 status 2 unit 3 nwarn 4 fired 5 level 6 escalate 7 flags
 *   8 escalations(4) 12 length(4) 16 ext_pending(4) 20 ext_total(4)
 *   24 start 32 due 40 next_fire 48 remaining 56 esc_grace 64 esc_every (8 each)
 *   72 + 9*i: warn[i] kind(1) value(8), i < 4  (-> 108)
 *   108 anchor(8) 116 ext_at_anchor(4) 120 opened_seq(8) 128 used(8), zero to 160
 * Version 1: the casebus.v1.Obligation follows the head. Version 2: the head
 * alone; the message is the one opened_seq's event carries. */
#define OB_VERSION_WITH_MSG 1
#define OB_VERSION_LOGGED 2

void dl_ob_encode(const dl_ob_t *o, uint8_t out[DL_OB_HEAD])
{
    memset(out, 0, DL_OB_HEAD);
    out[0] = o->opened_seq ? OB_VERSION_LOGGED : OB_VERSION_WITH_MSG;
    out[1] = o->status;
    out[2] = o->unit;
    out[3] = o->nwarn;
    out[4] = o->fired;
    out[5] = o->level;
    out[6] = o->escalate;
    out[7] = o->flags;
    cb_be32_put(out + 8, o->escalations);
    cb_be32_put(out + 12, o->length);
    cb_be32_put(out + 16, o->ext_pending);
    cb_be32_put(out + 20, o->ext_total);
    cb_be64_put(out + 24, (uint64_t)o->start_ms);
    cb_be64_put(out + 32, (uint64_t)o->due_ms);
    cb_be64_put(out + 40, (uint64_t)o->next_fire_ms);
    cb_be64_put(out + 48, (uint64_t)o->remaining_ms);
    cb_be64_put(out + 56, (uint64_t)o->esc_grace_ms);
    cb_be64_put(out + 64, (uint64_t)o->esc_every_ms);
    for (unsigned i = 0; i < DL_MAX_WARN; i++) {
        out[72 + 9 * i] = o->warn[i].kind;
        cb_be64_put(out + 73 + 9 * i, (uint64_t)o->warn[i].value);
    }
    cb_be64_put(out + 108, (uint64_t)o->anchor_ms);
    cb_be32_put(out + 116, o->ext_at_anchor);
    cb_be64_put(out + 120, o->opened_seq);
    cb_be64_put(out + 128, (uint64_t)o->used_ms);
}

int dl_ob_decode(dl_ob_t *o, const uint8_t *in, size_t len)
{
    if (len < DL_OB_HEAD || in[3] > DL_MAX_WARN ||
        !(in[0] == OB_VERSION_WITH_MSG || (in[0] == OB_VERSION_LOGGED && len == DL_OB_HEAD)))
        return CB_ERR_CORRUPT;
    memset(o, 0, sizeof(*o));
    o->status = in[1];
    o->unit = in[2];
    o->nwarn = in[3];
    o->fired = in[4];
    o->level = in[5];
    o->escalate = in[6];
    o->flags = in[7];
    o->escalations = cb_be32_get(in + 8);
    o->length = cb_be32_get(in + 12);
    o->ext_pending = cb_be32_get(in + 16);
    o->ext_total = cb_be32_get(in + 20);
    o->start_ms = (int64_t)cb_be64_get(in + 24);
    o->due_ms = (int64_t)cb_be64_get(in + 32);
    o->next_fire_ms = (int64_t)cb_be64_get(in + 40);
    o->remaining_ms = (int64_t)cb_be64_get(in + 48);
    o->esc_grace_ms = (int64_t)cb_be64_get(in + 56);
    o->esc_every_ms = (int64_t)cb_be64_get(in + 64);
    for (unsigned i = 0; i < DL_MAX_WARN; i++) {
        o->warn[i].kind = in[72 + 9 * i];
        o->warn[i].value = (int64_t)cb_be64_get(in + 73 + 9 * i);
    }
    o->anchor_ms = (int64_t)cb_be64_get(in + 108);
    o->ext_at_anchor = cb_be32_get(in + 116);
    o->opened_seq = cb_be64_get(in + 120);
    o->used_ms = (int64_t)cb_be64_get(in + 128);
    if ((in[0] == OB_VERSION_LOGGED) != (o->opened_seq != 0))
        return CB_ERR_CORRUPT;
    return 0;
}

int64_t dl_due(const cb_calendar_t *cal, int unit, uint32_t length, int64_t start_ms,
               bool move, int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    switch (unit) {
    case U(WORKING_DAYS):
        return cb_cal_add_working_days(cal, start_ms, length, missing_year);
    case U(DAYS):
        if (!move)
            return cb_cst_day_start_ms(cb_cst_day(start_ms) + length + 1);
        return cb_cal_add_days(cal, start_ms, length, missing_year);
    default:
        return cb_cal_add_hours(start_ms, length);
    }
}

int64_t dl_extend(const cb_calendar_t *cal, int unit, uint32_t extra, int64_t due_ms,
                  bool move, int *missing_year)
{
    /* A counted period ends at 24:00, i.e. 00:00 of the next day: count on
     * from the last instant of the day it ends. */
    if (unit == U(HOURS))
        return cb_cal_add_hours(due_ms, extra);
    return dl_due(cal, unit == U(DATE) ? U(DAYS) : unit, extra, due_ms - 1, move, missing_year);
}

int64_t dl_date_due(const cb_calendar_t *cal, int64_t day, bool move, int *missing_year)
{
    if (missing_year)
        *missing_year = 0;
    for (int i = 0; move && i < 30 && !cb_cal_is_working_day(cal, day, missing_year); i++)
        day++;
    return cb_cst_day_start_ms(day + 1);
}

int64_t dl_recount(const cb_calendar_t *cal, const dl_ob_t *o, int *missing_year)
{
    bool move = !(o->flags & DL_F_STAY);
    int64_t due;
    uint32_t ext = o->ext_total;
    int m1 = 0, m2 = 0;
    if (o->flags & DL_F_DATE) {
        due = dl_date_due(cal, cb_cst_day(o->anchor_ms), move, &m1);
    } else if (o->flags & DL_F_REBASED) {
        due = dl_clock_resume(cal, o, o->anchor_ms);
        ext = o->ext_total - o->ext_at_anchor;
    } else {
        due = dl_due(cal, o->unit, o->length, o->start_ms, move, &m1);
    }
    if (ext)
        due = dl_extend(cal, o->unit, ext, due, move, &m2);
    if (missing_year)
        *missing_year = m1 ? m1 : m2;
    return due;
}

static bool working(const dl_ob_t *o)
{
    return o->unit == U(WORKING_DAYS);
}

int64_t dl_clock_left(const cb_calendar_t *cal, const dl_ob_t *o, int64_t now_ms)
{
    if (!working(o))
        return o->due_ms - now_ms;
    if (now_ms >= o->due_ms)
        return o->due_ms - now_ms; /* overdue: in clock time */
    return cb_cal_working_ms(cal, now_ms, o->due_ms, NULL);
}

int64_t dl_clock_resume(const cb_calendar_t *cal, const dl_ob_t *o, int64_t now_ms)
{
    if (!working(o) || o->remaining_ms <= 0)
        return now_ms + o->remaining_ms;
    /* A period counted in days ends at 24:00 of its last day (民法典 第203条),
     * however the time left was counted: a clock resumed mid-day still ends
     * at midnight, not at the hour it resumed. */
    int64_t due = cb_cal_add_working_ms(cal, now_ms, o->remaining_ms, NULL);
    int64_t day = cb_cst_day(due);
    return due == cb_cst_day_start_ms(day) ? due : cb_cst_day_start_ms(day + 1);
}

int64_t dl_point_at(const cb_calendar_t *cal, const dl_ob_t *o, unsigned i)
{
    if (i >= o->nwarn)
        return o->due_ms;
    const dl_offset_t *w = &o->warn[i];
    switch (w->kind) {
    case DL_OFF_WORKING:
        return cb_cal_sub_working_ms(cal, o->due_ms, w->value, NULL);
    case DL_OFF_PERCENT: {
        /* A share of the whole period, on the period's own clock. */
        int64_t whole = working(o) ? cb_cal_working_ms(cal, o->start_ms, o->due_ms, NULL)
                                   : o->due_ms - o->start_ms;
        int64_t before = whole * w->value / 100;
        return working(o) ? cb_cal_sub_working_ms(cal, o->due_ms, before, NULL)
                          : o->due_ms - before;
    }
    default:
        return o->due_ms - w->value;
    }
}

void dl_skip_points_before_start(const cb_calendar_t *cal, dl_ob_t *o)
{
    for (unsigned i = 0; i < o->nwarn; i++)
        if (dl_point_at(cal, o, i) <= o->start_ms)
            o->fired |= (uint8_t)(1u << i);
}

static int64_t escalation_at(const dl_ob_t *o, uint32_t k)
{
    return o->due_ms + o->esc_grace_ms + (int64_t)k * o->esc_every_ms;
}

int64_t dl_next_fire(const cb_calendar_t *cal, const dl_ob_t *o)
{
    if (o->status != DL_OPEN)
        return 0;
    int64_t next = 0;
    for (unsigned i = 0; i < o->nwarn; i++) {
        if (o->fired & (1u << i))
            continue;
        int64_t t = dl_point_at(cal, o, i);
        if (next == 0 || t < next)
            next = t;
    }
    if (!(o->fired & DL_RED_BIT)) {
        if (next == 0 || o->due_ms < next)
            next = o->due_ms;
        return next;
    }
    if (o->escalate && (o->escalations == 0 || o->esc_every_ms > 0)) {
        int64_t t = escalation_at(o, o->escalations);
        if (next == 0 || t < next)
            next = t;
    }
    return next;
}

bool dl_take_due(const cb_calendar_t *cal, dl_ob_t *o, int64_t now_ms, dl_alert_t *a)
{
    if (o->status != DL_OPEN)
        return false;
    /* The earliest unfired warning or red point due by now. */
    int best = -1;
    int64_t best_at = 0;
    for (unsigned i = 0; i <= o->nwarn; i++) {
        bool fired = i < o->nwarn ? (o->fired & (1u << i)) : (o->fired & DL_RED_BIT);
        if (fired)
            continue;
        int64_t t = dl_point_at(cal, o, i);
        if (t <= now_ms && (best < 0 || t < best_at)) {
            best = (int)i;
            best_at = t;
        }
    }
    if (best >= 0) {
        a->point = (unsigned)best;
        a->fire_at_ms = best_at;
        a->repeat = 0;
        if ((unsigned)best < o->nwarn) {
            o->fired |= (uint8_t)(1u << best);
            a->level = L(YELLOW);
            if (o->level < L(YELLOW))
                o->level = L(YELLOW);
        } else {
            o->fired |= DL_RED_BIT;
            a->level = L(RED);
            o->level = L(RED);
        }
        return true;
    }
    if (!(o->fired & DL_RED_BIT) || !o->escalate)
        return false;
    if (o->escalations > 0 && o->esc_every_ms == 0)
        return false;
    int64_t first = escalation_at(o, o->escalations);
    if (first > now_ms)
        return false;
    /* Steps missed while nobody looked fire once, as the latest repeat. */
    uint32_t k = o->escalations;
    if (o->esc_every_ms > 0) {
        int64_t latest = (now_ms - escalation_at(o, 0)) / o->esc_every_ms;
        if (latest > (int64_t)k)
            k = latest > (int64_t)UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)latest;
    }
    o->escalations = k + 1;
    a->level = L(ESCALATION);
    a->point = o->nwarn;
    a->fire_at_ms = escalation_at(o, k);
    a->repeat = k + 1;
    return true;
}
