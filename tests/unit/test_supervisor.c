/* test_supervisor.c — casebus-supervisor's policy: restart delays and when a
 * daemon is announced as down too long. Times are ms from an arbitrary 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "supervisor/supervisor.h"

static const sv_policy_t P = {.backoff_initial_ms = 200, .backoff_max_ms = 10000,
                              .stable_after_ms = 10000, .up_after_ms = 1000, .grace_ms = 2000};

/* Runs ticks every 50 ms from `from` to `to`; returns the first notice other
 * than SV_NOTHING and sets *at to its time (0 and to when none). */
static sv_notice_t ticks(sv_daemon_t *d, int64_t from, int64_t to, int64_t *at)
{
    for (int64_t t = from; t <= to; t += 50) {
        sv_notice_t n = sv_tick(d, &P, t);
        if (n != SV_NOTHING) {
            *at = t;
            return n;
        }
    }
    *at = to;
    return SV_NOTHING;
}

static void delays_double_while_it_cannot_come_up_and_reset_after_a_stable_run(void **s)
{
    (void)s;
    sv_daemon_t d;
    sv_daemon_init(&d, "router");
    int64_t now = 0, want[] = {200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    sv_started(&d, now, 100);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        now += 50; /* dies 50 ms after each start: never up */
        assert_int_equal(sv_exited(&d, &P, now, 1, 0), want[i]);
        assert_int_equal(d.state, SV_BACKOFF);
        assert_int_equal(d.next_start_ms, now + want[i]);
        now += want[i];
        sv_started(&d, now, 101 + (int)i);
    }
    assert_int_equal(d.restarts, 8);
    assert_string_equal(d.last_exit, "exit status 1");
    now += 10000; /* a stable run */
    assert_int_equal(sv_exited(&d, &P, now, 0, 9), 200);
    assert_string_equal(d.last_exit, "killed by signal 9");
}

static void an_exit_after_it_came_up_halves_the_delay(void **s)
{
    (void)s;
    sv_daemon_t d;
    sv_daemon_init(&d, "intake");
    sv_started(&d, 0, 10);
    assert_int_equal(sv_exited(&d, &P, 100, 1, 0), 200);
    sv_started(&d, 300, 11);
    assert_int_equal(sv_exited(&d, &P, 400, 1, 0), 400);
    sv_started(&d, 800, 12);
    assert_int_equal(sv_exited(&d, &P, 900, 1, 0), 800);
    sv_started(&d, 1700, 13);
    assert_int_equal(sv_exited(&d, &P, 1700 + 5000, 0, 9), 400); /* up 5 s, then killed */
    sv_started(&d, 7100, 14);
    assert_int_equal(sv_exited(&d, &P, 7100 + 2000, 0, 9), 200);
    sv_started(&d, 9300, 15);
    assert_int_equal(sv_exited(&d, &P, 9300 + 2000, 0, 9), 200); /* never below the first */
}

static void a_single_kill_is_never_announced(void **s)
{
    (void)s;
    sv_daemon_t d;
    sv_daemon_init(&d, "deadline");
    int64_t at;
    sv_started(&d, 0, 10);
    assert_int_equal(ticks(&d, 0, 2000, &at), SV_CAME_UP);
    assert_int_equal(at, 1000);
    assert_int_equal(d.state, SV_UP);
    assert_int_equal(sv_down_ms(&d, 5000), 0);
    int64_t delay = sv_exited(&d, &P, 60000, 0, 9);
    assert_int_equal(sv_down_ms(&d, 60100), 100);
    assert_int_equal(ticks(&d, 60000, 60000 + delay - 50, &at), SV_NOTHING);
    sv_started(&d, 60000 + delay, 11);
    assert_int_equal(ticks(&d, 60000 + delay, 70000, &at), SV_CAME_UP);
    assert_int_equal(at, 60000 + delay + 1000);
    assert_false(d.degraded);
}

static void a_crash_loop_is_announced_once_and_its_recovery_said(void **s)
{
    (void)s;
    sv_daemon_t d;
    sv_daemon_init(&d, "notify");
    int64_t now = 1000, at, announced = 0;
    sv_started(&d, now, 10);
    sv_tick(&d, &P, 1500);
    assert_int_equal(sv_exited(&d, &P, 1900, 1, 0), 200); /* dies before it is up */
    now = 1900;
    for (int i = 0; i < 8; i++) {
        int64_t start = d.next_start_ms;
        sv_notice_t n = ticks(&d, now, start - 1, &at);
        if (n == SV_BECAME_DEGRADED && announced == 0)
            announced = at;
        else
            assert_int_equal(n, SV_NOTHING); /* said once */
        sv_started(&d, start, 11 + i);
        now = start + 100;
        sv_exited(&d, &P, now, 1, 0);
    }
    /* Down since the first spawn at 1 s (it never came up): starts at 2.1, 2.6,
     * 3.5 s, each dying 0.1 s later; during the 1.6 s delay from 3.6 s, down
     * passes 1.6 + 2 s at 4.6 s: the tick at 4.65 s announces it. */
    assert_true(d.degraded);
    assert_int_equal(announced, 4650);
    int64_t start = d.next_start_ms;
    sv_started(&d, start, 99);
    assert_int_equal(ticks(&d, start, start + 2000, &at), SV_RECOVERED);
    assert_int_equal(at, start + 1000);
    assert_false(d.degraded);
    assert_int_equal(sv_down_ms(&d, at), 0);
}

static void a_kill_before_it_came_up_continues_the_outage(void **s)
{
    (void)s;
    sv_daemon_t d;
    sv_daemon_init(&d, "router");
    sv_started(&d, 0, 10);
    sv_tick(&d, &P, 1000);
    sv_exited(&d, &P, 20000, 0, 9);       /* outage from 20 s */
    sv_started(&d, 20200, 11);
    sv_exited(&d, &P, 20500, 0, 9);       /* killed again before it was up */
    assert_int_equal(sv_down_ms(&d, 21000), 1000);
    assert_int_equal(d.delay_ms, 400);
    assert_string_equal(sv_state_name(d.state), "backoff");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delays_double_while_it_cannot_come_up_and_reset_after_a_stable_run),
        cmocka_unit_test(an_exit_after_it_came_up_halves_the_delay),
        cmocka_unit_test(a_single_kill_is_never_announced),
        cmocka_unit_test(a_crash_loop_is_announced_once_and_its_recovery_said),
        cmocka_unit_test(a_kill_before_it_came_up_continues_the_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
