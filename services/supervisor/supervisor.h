/*
 * supervisor.h — casebus-supervisor, the process supervisor `make run` uses:
 * the daemons of one deployment as children, each restarted whenever it exits,
 * with backoff, and loud when one stays down.
 *
 * policy.c decides (pure: times in, decisions out, unit-tested); main.c does
 * (libuv process handles, signals, the state file).
 */
#ifndef CB_SUPERVISOR_H
#define CB_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#define SV_NAME_MAX 32
#define SV_EXIT_MAX 48

typedef struct sv_policy {
    int64_t backoff_initial_ms; /* first restart delay */
    int64_t backoff_max_ms;     /* the delay doubles up to this */
    int64_t stable_after_ms;    /* a run this long resets the delay */
    int64_t up_after_ms;        /* a process alive this long counts as up */
    int64_t grace_ms;           /* down longer than its delay plus this: degraded */
} sv_policy_t;

typedef enum sv_state {
    SV_STARTING = 0, /* spawned, not yet alive for up_after_ms */
    SV_UP,
    SV_BACKOFF,      /* exited; restart scheduled at next_start_ms */
    SV_STOPPING,     /* asked to stop (SIGTERM sent) */
    SV_STOPPED,
} sv_state_t;

typedef struct sv_daemon {
    char name[SV_NAME_MAX];
    sv_state_t state;
    int pid;
    int64_t started_ms;    /* last spawn */
    int64_t down_since_ms; /* start of the current outage; 0 while up */
    int64_t next_start_ms; /* in SV_BACKOFF */
    int64_t delay_ms;      /* the delay of the current (or last) backoff */
    unsigned restarts;     /* spawns after the first */
    unsigned exits;
    char last_exit[SV_EXIT_MAX]; /* "killed by signal 9", "exit status 1" */
    bool degraded;               /* announced as down too long; cleared when up */
} sv_daemon_t;

typedef enum sv_notice {
    SV_NOTHING = 0,
    SV_CAME_UP,        /* alive for up_after_ms (was not degraded) */
    SV_RECOVERED,      /* came up after having been announced degraded */
    SV_BECAME_DEGRADED /* down for longer than its backoff plus grace */
} sv_notice_t;

void sv_daemon_init(sv_daemon_t *d, const char *name);
/* A spawn succeeded (pid) at now. */
void sv_started(sv_daemon_t *d, int64_t now, int pid);
/* The process ended (status -1: it could not be spawned; -2: it vanished
 * without an exit status; term_signal: killed by that signal). Returns the
 * delay before the restart: the first delay after a stable run, doubled after
 * an exit before it came up (at most backoff_max_ms), halved after one once it
 * was up (at least backoff_initial_ms). */
int64_t sv_exited(sv_daemon_t *d, const sv_policy_t *p, int64_t now, int64_t status,
                  int term_signal);
/* Called often (every tick): moves STARTING to UP and says so, and announces a
 * daemon down for longer than its delay plus grace once per outage. */
sv_notice_t sv_tick(sv_daemon_t *d, const sv_policy_t *p, int64_t now);
/* How long the current outage has lasted (0 while up). */
int64_t sv_down_ms(const sv_daemon_t *d, int64_t now);
const char *sv_state_name(sv_state_t s);

#endif
