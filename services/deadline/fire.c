/*
 * fire.c — deadline's one timer. It is armed for the first key of the timer
 * index (capped, so a clock step is noticed within a second); when it fires it
 * takes at most `batch` due obligations into one transaction of the group
 * commit, and when that commits, yields to the loop before the next batch. So a
 * midnight herd (every working-day limit ends at 24:00) is worked through in
 * short slices, and the bus, the control socket and the loop keep answering
 * meanwhile.
 *
 * The timer owns when; the handlers own what. They put due instants in the
 * timer index (state.c notes the earliest in dl->timer_hint_ms), and the timer
 * looks at that note after each loop turn, so nothing they do calls in here.
 */
#include "deadline.h"
#include "log.h"

#include <stdlib.h>

#define ARM_MAX_MS 1000     /* re-read the first key at least this often */

static void on_timer(uv_timer_t *t);

static void arm_in(deadline_t *dl, int64_t delay_ms, int64_t at_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    if (delay_ms > ARM_MAX_MS)
        delay_ms = ARM_MAX_MS;
    int rc = uv_timer_start(&dl->timer, on_timer, (uint64_t)delay_ms, 0);
    if (rc != 0)
        log_error("timer_failed error=\"%s\"", uv_strerror(rc));
    dl->armed_at_ms = at_ms;
}

/* Arms for at_ms when that is sooner than what the timer waits for. */
static void want(deadline_t *dl, int64_t at_ms)
{
    if (dl->d.loop == NULL || dl->firing || at_ms <= 0)
        return; /* no loop (unit tests), or the batch's commit re-arms */
    if (dl->armed_at_ms != 0 && dl->armed_at_ms <= at_ms)
        return;
    arm_in(dl, at_ms - dl->now(), at_ms);
}

/* Re-reads the first key and arms the timer for it. */
static void rearm(deadline_t *dl)
{
    MDB_txn *txn;
    cb_error_t err;
    int64_t first = 0;
    if (cb_store_begin(dl->d.store, false, &txn, &err) != 0 ||
        dl_timer_first(dl, txn, &first, &err) != 0) {
        log_error("timer_read_failed error=\"%s\"", err.message);
        first = 0;
    }
    cb_store_abort(&txn);
    int64_t now = dl->now();
    if (first == 0)
        arm_in(dl, ARM_MAX_MS, now + ARM_MAX_MS);
    else
        arm_in(dl, first - now, first);
}

static void on_batch_committed(void *arg, int status, const cb_error_t *err)
{
    deadline_t *dl = arg;
    dl->firing = false;
    if (dl->d.shutting_down)
        return;
    if (status != 0) {
        log_error("fire_commit_failed error=\"%s\"", err->message);
        arm_in(dl, 1000, dl->now() + 1000); /* try again in a second */
        return;
    }
    rearm(dl);
}

static void fire_batch(deadline_t *dl)
{
    if (dl->firing || dl->d.shutting_down)
        return;
    dl->armed_at_ms = 0;
    int64_t now = dl->now();
    cb_error_t err;
    MDB_txn *txn = NULL;
    dl_due_key_t *keys = malloc(sizeof(*keys) * dl->batch);
    if (keys == NULL || cb_group_begin(dl->d.group, &txn, &err) != 0) {
        log_error("fire_failed error=\"%s\"", keys ? err.message : "out of memory");
        free(keys);
        arm_in(dl, 1000, now + 1000);
        return;
    }
    int n = dl_timers_due(dl, txn, now, keys, (int)dl->batch, &err);
    int rc = n < 0 ? n : 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = dl_fire(dl, txn, keys[i].at_ms, keys[i].id, now, &err);
    free(keys);
    if (rc != 0) {
        log_error("fire_failed error=\"%s\"", err.message);
        cb_group_end(dl->d.group, &txn, false, NULL, NULL, NULL);
        arm_in(dl, 1000, now + 1000);
        return;
    }
    if (n == 0) {
        cb_group_end(dl->d.group, &txn, false, NULL, NULL, NULL);
        rearm(dl);
        return;
    }
    dl->firing = true;
    if (cb_group_end(dl->d.group, &txn, true, on_batch_committed, dl, &err) != 0) {
        dl->firing = false;
        log_error("fire_failed error=\"%s\"", err.message);
        arm_in(dl, 1000, now + 1000);
    }
}

static void on_timer(uv_timer_t *t)
{
    fire_batch(t->data);
}

/* After each loop turn: what the handlers put in the index may be due sooner. */
static void on_check(uv_check_t *c)
{
    deadline_t *dl = c->data;
    int64_t at = dl->timer_hint_ms;
    dl->timer_hint_ms = 0;
    if (at)
        want(dl, at);
}

/* Once a minute: the date rules' obligations of the period that has begun, and
 * the daily alarm for next year's missing calendar. */
static void on_periodic(uv_timer_t *t)
{
    deadline_t *dl = t->data;
    if (dl->d.shutting_down)
        return;
    MDB_txn *txn;
    cb_error_t err;
    if (cb_group_begin(dl->d.group, &txn, &err) != 0) {
        log_error("periodic_failed error=\"%s\"", err.message);
        return;
    }
    int64_t now = dl->now();
    bool ok = dl_open_periodic(dl, txn, now, &err) == 0 && dl_watch_calendar(dl, txn, now, &err) == 0;
    if (!ok)
        log_error("periodic_failed error=\"%s\"", err.message);
    if (cb_group_end(dl->d.group, &txn, ok, NULL, NULL, &err) != 0)
        log_error("periodic_failed error=\"%s\"", err.message);
}

int dl_timer_init(deadline_t *dl, cb_error_t *err)
{
    int rc = uv_timer_init(dl->d.loop, &dl->timer);
    if (rc == 0 && (rc = uv_timer_init(dl->d.loop, &dl->periodic)) == 0) {
        dl->periodic.data = dl;
        rc = uv_timer_start(&dl->periodic, on_periodic, 0, 60000);
    }
    if (rc == 0 && (rc = uv_check_init(dl->d.loop, &dl->timer_check)) == 0) {
        dl->timer_check.data = dl;
        rc = uv_check_start(&dl->timer_check, on_check);
    }
    if (rc != 0)
        return cb_error_set(err, CB_ERR_UV, "", "timer: %s", uv_strerror(rc));
    dl->timer.data = dl;
    rearm(dl);
    return 0;
}

void dl_timer_close(deadline_t *dl)
{
    uv_timer_stop(&dl->timer);
    uv_close((uv_handle_t *)&dl->timer, NULL);
    uv_timer_stop(&dl->periodic);
    uv_close((uv_handle_t *)&dl->periodic, NULL);
    uv_check_stop(&dl->timer_check);
    uv_close((uv_handle_t *)&dl->timer_check, NULL);
}
