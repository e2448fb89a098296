/*
 * policy.c — when to restart a daemon and when to say it is down too long.
 *
 * An outage starts when an up daemon exits (or at the first spawn, until it
 * comes up) and lasts until a process has stayed alive for up_after_ms: a
 * daemon that dies right after each restart is one long outage, not many short
 * ones. It is announced (degraded) when it has lasted longer than the current
 * restart delay plus grace_ms, which a single kill never reaches.
 *
 * The delay doubles after an exit before the daemon came up (a crash at start,
 * a bad configuration), halves after an exit once it was up, and is back to the
 * first after a run of stable_after_ms: a daemon killed now and then from
 * outside is restarted at once, one that cannot start is not hammered.
 */
#include "supervisor.h"

#include <stdio.h>
#include <string.h>

void sv_daemon_init(sv_daemon_t *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->state = SV_STOPPED;
}

void sv_started(sv_daemon_t *d, int64_t now, int pid)
{
    if (d->state == SV_BACKOFF)
        d->restarts++;
    if (d->down_since_ms == 0)
        d->down_since_ms = now;
    d->state = SV_STARTING;
    d->pid = pid;
    d->started_ms = now;
    d->next_start_ms = 0;
}

int64_t sv_exited(sv_daemon_t *d, const sv_policy_t *p, int64_t now, int64_t status,
                  int term_signal)
{
    int64_t ran = d->pid ? now - d->started_ms : 0;
    if (term_signal)
        snprintf(d->last_exit, sizeof(d->last_exit), "killed by signal %d", term_signal);
    else if (status == -1)
        snprintf(d->last_exit, sizeof(d->last_exit), "could not be started");
    else if (status < 0)
        snprintf(d->last_exit, sizeof(d->last_exit), "gone without an exit status");
    else
        snprintf(d->last_exit, sizeof(d->last_exit), "exit status %lld", (long long)status);
    if (d->state == SV_UP || d->down_since_ms == 0)
        d->down_since_ms = now;
    if (d->delay_ms == 0 || ran >= p->stable_after_ms)
        d->delay_ms = p->backoff_initial_ms;
    else if (ran < p->up_after_ms) /* it did not come up: back off */
        d->delay_ms = d->delay_ms * 2 > p->backoff_max_ms ? p->backoff_max_ms : d->delay_ms * 2;
    else /* it came up, then died: an outside kill as often as a crash */
        d->delay_ms = d->delay_ms / 2 < p->backoff_initial_ms ? p->backoff_initial_ms : d->delay_ms / 2;
    d->exits++;
    d->pid = 0;
    d->state = SV_BACKOFF;
    d->next_start_ms = now + d->delay_ms;
    return d->delay_ms;
}

sv_notice_t sv_tick(sv_daemon_t *d, const sv_policy_t *p, int64_t now)
{
    if (d->state == SV_STARTING && now - d->started_ms >= p->up_after_ms) {
        bool was = d->degraded;
        d->state = SV_UP;
        d->down_since_ms = 0;
        d->degraded = false;
        return was ? SV_RECOVERED : SV_CAME_UP;
    }
    if ((d->state == SV_BACKOFF || d->state == SV_STARTING) && !d->degraded &&
        d->down_since_ms != 0 && now - d->down_since_ms > d->delay_ms + p->grace_ms) {
        d->degraded = true;
        return SV_BECAME_DEGRADED;
    }
    return SV_NOTHING;
}

int64_t sv_down_ms(const sv_daemon_t *d, int64_t now)
{
    return d->down_since_ms ? now - d->down_since_ms : 0;
}

const char *sv_state_name(sv_state_t s)
{
    switch (s) {
    case SV_STARTING: return "starting";
    case SV_UP: return "up";
    case SV_BACKOFF: return "backoff";
    case SV_STOPPING: return "stopping";
    case SV_STOPPED: return "stopped";
    }
    return "unknown";
}
