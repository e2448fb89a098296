/*
 * main.c — casebus-supervisor: the daemons of one deployment as child
 * processes on libuv process handles, each restarted whenever it exits.
 *
 *   casebus-supervisor --config FILE
 *
 * [supervisor] keys: daemons (space-separated, default every one of router
 * deadline notify intake that has a section), bin_dir (default: this binary's
 * directory), log_dir (each daemon's stdout and stderr, appended to NAME.log;
 * default: the configuration's directory), state_file (what `casebus status`
 * reads; default supervisor.json beside the configuration), backoff_initial_ms
 * (200), backoff_max_ms (10000), stable_after_ms (10000), up_after_ms (1000),
 * grace_ms (2000), stop_timeout_ms (10000).
 *
 * Why not the shell: bash reaps a child that dies while the script sits in a
 * foreground `sleep` and reports it there, so a later `wait -n` never returns
 * for it; a daemon killed during another's backoff was never restarted. libuv
 * reaps on SIGCHLD and calls each handle's exit callback once; a tick checks
 * every pid held against the process table as well.
 *
 * Each child runs under `setpriv --pdeathsig TERM` (it execs, so the pid is the
 * daemon's) in its own session: if this process dies the daemons get SIGTERM,
 * and a Ctrl-C at the terminal reaches only this process, which stops them in
 * order. SIGINT, SIGTERM or SIGHUP: SIGTERM to every daemon, SIGKILL to those
 * still running after stop_timeout_ms (a second SIGINT: at once); exit 0.
 */
#include "supervisor.h"
#include "cbtime.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define MAX_DAEMONS 8
#define PATH_LEN 1024
#define TICK_MS 250
#define REPEAT_DEGRADED_MS 30000

typedef struct child {
    sv_daemon_t d;
    uv_process_t *proc; /* NULL when no process is running */
    uv_timer_t restart;
    char bin[PATH_LEN];
    char log[PATH_LEN];
    int zombie_ticks;
    int64_t warned_ms; /* last "still down" line */
} child_t;

typedef struct supervisor {
    uv_loop_t *loop;
    sv_policy_t policy;
    child_t children[MAX_DAEMONS];
    size_t count;
    char config[PATH_LEN];
    char state_file[PATH_LEN];
    int64_t stop_timeout_ms;
    bool stopping;
    int stop_signals;
    uv_timer_t tick, kill_timer;
    uv_signal_t sig_int, sig_term, sig_hup;
} supervisor_t;

static supervisor_t sv;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("casebus: ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void write_state(void)
{
    int64_t now = cb_now_ms();
    json_t *daemons = json_array();
    for (size_t i = 0; i < sv.count && daemons; i++) {
        const sv_daemon_t *d = &sv.children[i].d;
        json_t *o = json_pack("{s:s,s:s,s:i,s:I,s:I,s:i,s:s,s:b,s:s}", "name", d->name, "state",
                              sv_state_name(d->state), "pid", d->pid, "down_ms",
                              (json_int_t)sv_down_ms(d, now), "delay_ms", (json_int_t)d->delay_ms,
                              "restarts", (int)d->restarts, "last_exit", d->last_exit,
                              "degraded", d->degraded, "log", sv.children[i].log);
        if (o && d->state == SV_BACKOFF)
            json_object_set_new(o, "next_start_in_ms",
                                json_integer(d->next_start_ms > now ? d->next_start_ms - now : 0));
        if (o && (d->state == SV_UP || d->state == SV_STARTING))
            json_object_set_new(o, "up_ms", json_integer(now - d->started_ms));
        json_array_append_new(daemons, o);
    }
    json_t *doc = json_pack("{s:i,s:I,s:s,s:o*}", "pid", (int)getpid(), "updated_at_ms",
                            (json_int_t)now, "state", sv.stopping ? "stopping" : "running",
                            "daemons", daemons);
    char tmp[PATH_LEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", sv.state_file);
    if (doc == NULL || json_dump_file(doc, tmp, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
        rename(tmp, sv.state_file) != 0)
        log_warn("state_write_failed file=%s", sv.state_file);
    json_decref(doc);
}

static void write_stopped_state(void)
{
    json_t *doc = json_pack("{s:i,s:I,s:s}", "pid", (int)getpid(), "updated_at_ms",
                            (json_int_t)cb_now_ms(), "state", "stopped");
    if (doc == NULL || json_dump_file(doc, sv.state_file, JSON_COMPACT) != 0)
        log_warn("state_write_failed file=%s", sv.state_file);
    json_decref(doc);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void spawn(child_t *c);

static void on_restart(uv_timer_t *t)
{
    child_t *c = t->data;
    if (!sv.stopping)
        spawn(c);
}

static void finish_if_all_stopped(void)
{
    for (size_t i = 0; i < sv.count; i++)
        if (sv.children[i].proc != NULL)
            return;
    say("stopped; data kept (run again to resume)");
    write_stopped_state();
    uv_stop(sv.loop);
}

/* The process of c ended with status or term_signal (libuv's exit callback,
 * or the tick finding it gone). */
static void ended(child_t *c, int64_t status, int term_signal)
{
    int64_t now = cb_now_ms();
    double ran = c->d.pid ? (double)(now - c->d.started_ms) / 1000.0 : 0.0;
    if (c->proc) {
        uv_close((uv_handle_t *)c->proc, free_handle);
        c->proc = NULL;
    }
    c->zombie_ticks = 0;
    if (sv.stopping) {
        c->d.state = SV_STOPPED;
        c->d.pid = 0;
        finish_if_all_stopped();
        return;
    }
    int64_t delay = sv_exited(&c->d, &sv.policy, now, status, term_signal);
    say("%s exited (%s) after %.1f s; restarting in %.1f s (see %s)", c->d.name, c->d.last_exit,
        ran, (double)delay / 1000.0, c->log);
    uv_timer_start(&c->restart, on_restart, (uint64_t)delay, 0);
    write_state();
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    child_t *c = p->data;
    if (c->proc != p) { /* already handled by the tick */
        if (!uv_is_closing((uv_handle_t *)p))
            uv_close((uv_handle_t *)p, free_handle);
        return;
    }
    ended(c, status, term_signal);
}

static void spawn(child_t *c)
{
    char *args[] = {"setpriv", "--pdeathsig", "TERM", "--", c->bin, "--config", sv.config, NULL};
    int fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_warn("log_open_failed daemon=%s file=%s", c->d.name, c->log);
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fd},
        {.flags = UV_INHERIT_FD, .data.fd = fd},
    };
    uv_process_options_t o = {
        .exit_cb = on_exit_cb,
        .file = args[0],
        .args = args,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    uv_process_t *p = calloc(1, sizeof(*p));
    int rc = p ? uv_spawn(sv.loop, p, &o) : UV_ENOMEM;
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        say("%s could not be started: %s", c->d.name, uv_strerror(rc));
        if (p) /* a failed uv_spawn leaves the handle initialised */
            uv_close((uv_handle_t *)p, free_handle);
        c->d.pid = 0;
        ended(c, -1, 0);
        return;
    }
    p->data = c;
    c->proc = p;
    sv_started(&c->d, cb_now_ms(), p->pid);
    write_state();
}

/* 'Z' for a zombie, '?' when the process is gone or unreadable. */
static char proc_state(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    return paren && paren[1] == ' ' && paren[2] ? paren[2] : '?';
}

/* The pid held against the process table: libuv reaps on SIGCHLD, and this
 * catches what a lost signal or a bug here would leave unnoticed. */
static void check_pid(child_t *c)
{
    if (c->proc == NULL || c->d.pid <= 0)
        return;
    if (kill(c->d.pid, 0) != 0 && errno == ESRCH) {
        say("WARNING: %s (pid %d) is gone but its exit was not reported; restarting it",
            c->d.name, c->d.pid);
        ended(c, -2, 0);
        return;
    }
    if (proc_state(c->d.pid) != 'Z') {
        c->zombie_ticks = 0;
        return;
    }
    if (++c->zombie_ticks < 4)
        return;
    int st;
    pid_t got = waitpid(c->d.pid, &st, WNOHANG);
    if (got == c->d.pid) {
        say("WARNING: %s (pid %d) had exited unreaped; restarting it", c->d.name, c->d.pid);
        ended(c, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    int64_t now = cb_now_ms();
    for (size_t i = 0; i < sv.count && !sv.stopping; i++) {
        child_t *c = &sv.children[i];
        check_pid(c);
        switch (sv_tick(&c->d, &sv.policy, now)) {
        case SV_RECOVERED:
            say("%s is up again (pid %d) after %u restarts", c->d.name, c->d.pid, c->d.restarts);
            break;
        case SV_BECAME_DEGRADED:
            c->warned_ms = now;
            say("WARNING: %s has been down for %.1f s, longer than its %.1f s backoff (last: %s); "
                "see %s",
                c->d.name, (double)sv_down_ms(&c->d, now) / 1000.0,
                (double)c->d.delay_ms / 1000.0, c->d.last_exit, c->log);
            break;
        case SV_CAME_UP:
        case SV_NOTHING:
            if (c->d.degraded && now - c->warned_ms >= REPEAT_DEGRADED_MS) {
                c->warned_ms = now;
                say("WARNING: %s still down after %.0f s (last: %s); see %s", c->d.name,
                    (double)sv_down_ms(&c->d, now) / 1000.0, c->d.last_exit, c->log);
            }
            break;
        }
    }
    if (!sv.stopping)
        write_state();
}

static void on_kill_timer(uv_timer_t *t)
{
    (void)t;
    for (size_t i = 0; i < sv.count; i++)
        if (sv.children[i].proc) {
            say("%s did not stop within %.0f s; killing it", sv.children[i].d.name,
                (double)sv.stop_timeout_ms / 1000.0);
            uv_process_kill(sv.children[i].proc, SIGKILL);
        }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (sv.stopping) {
        if (signum == SIGINT && ++sv.stop_signals >= 2)
            on_kill_timer(&sv.kill_timer);
        return;
    }
    sv.stopping = true;
    sv.stop_signals = signum == SIGINT;
    say("stopping (waiting for each daemon to finish what it has in hand) ...");
    uv_timer_stop(&sv.tick);
    for (size_t i = 0; i < sv.count; i++) {
        child_t *c = &sv.children[i];
        uv_timer_stop(&c->restart);
        if (c->proc) {
            c->d.state = SV_STOPPING;
            uv_process_kill(c->proc, SIGTERM);
        } else {
            c->d.state = SV_STOPPED;
        }
    }
    write_state();
    uv_timer_start(&sv.kill_timer, on_kill_timer, (uint64_t)sv.stop_timeout_ms, 0);
    finish_if_all_stopped();
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_PROCESS ? free_handle : NULL);
}

static int64_t setting(const cb_config_t *cfg, const char *key, uint64_t def, uint64_t min,
                       uint64_t max)
{
    uint64_t v;
    cb_error_t err;
    if (cb_config_get_u64(cfg, "supervisor", key, def, min, max, &v, &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    return (int64_t)v;
}

static void configure(const cb_config_t *cfg)
{
    sv.policy.backoff_initial_ms = setting(cfg, "backoff_initial_ms", 200, 10, 600000);
    sv.policy.backoff_max_ms = setting(cfg, "backoff_max_ms", 10000, 10, 3600000);
    sv.policy.stable_after_ms = setting(cfg, "stable_after_ms", 10000, 100, 86400000);
    sv.policy.up_after_ms = setting(cfg, "up_after_ms", 1000, 0, 600000);
    sv.policy.grace_ms = setting(cfg, "grace_ms", 2000, 0, 600000);
    sv.stop_timeout_ms = setting(cfg, "stop_timeout_ms", 10000, 100, 600000);
    if (sv.policy.backoff_max_ms < sv.policy.backoff_initial_ms)
        fatalx("config_failed error=\"[supervisor] backoff_max_ms is below backoff_initial_ms\"");

    char bin_dir[PATH_LEN], log_dir[PATH_LEN], self[PATH_LEN];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        fatal("readlink_failed path=/proc/self/exe");
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(bin_dir, sizeof(bin_dir), "%s", cb_config_get(cfg, "supervisor", "bin_dir", self));
    if (cb_config_path_near(cfg, "supervisor", "log_dir", ".", log_dir, sizeof(log_dir)) != 0 ||
        cb_config_path_near(cfg, "supervisor", "state_file", "supervisor.json", sv.state_file,
                            sizeof(sv.state_file)) != 0)
        fatalx("config_failed error=\"[supervisor] a path is too long\"");
    size_t ld = strlen(log_dir);
    if (ld > 2 && strcmp(log_dir + ld - 2, "/.") == 0)
        log_dir[ld -= 2] = '\0';
    while (ld > 1 && log_dir[ld - 1] == '/')
        log_dir[--ld] = '\0';

    char list[256];
    snprintf(list, sizeof(list), "%s",
             cb_config_get(cfg, "supervisor", "daemons", "router deadline notify intake"));
    bool named = cb_config_get(cfg, "supervisor", "daemons", NULL) != NULL;
    char *save = NULL;
    for (char *name = strtok_r(list, " \t,", &save); name; name = strtok_r(NULL, " \t,", &save)) {
        if (!cb_config_has_section(cfg, name)) {
            if (named)
                fatalx("config_failed error=\"[supervisor] daemons: %s has no [%s] section\"",
                       name, name);
            continue;
        }
        if (strlen(name) >= SV_NAME_MAX || sv.count == MAX_DAEMONS)
            fatalx("config_failed error=\"[supervisor] daemons: at most %d names of at most %d "
                   "characters\"",
                   MAX_DAEMONS, SV_NAME_MAX - 1);
        child_t *c = &sv.children[sv.count++];
        sv_daemon_init(&c->d, name);
        if (snprintf(c->bin, sizeof(c->bin), "%s/casebus-%s", bin_dir, name) >= PATH_LEN ||
            snprintf(c->log, sizeof(c->log), "%s/%s.log", log_dir, name) >= PATH_LEN)
            fatalx("config_failed error=\"[supervisor] a path is too long\"");
        if (access(c->bin, X_OK) != 0)
            fatal("daemon_missing daemon=%s file=%s", name, c->bin);
    }
    if (sv.count == 0)
        fatalx("config_failed error=\"no daemon to supervise: no [router], [deadline], [notify] "
               "or [intake] section\"");
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--config") != 0) {
        fprintf(stderr, "usage: casebus-supervisor --config FILE\n");
        return 2;
    }
    log_init("supervisor", CB_LOG_INFO);
    cb_config_t *cfg;
    cb_error_t err;
    if (cb_config_load(&cfg, argv[2], &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    if (snprintf(sv.config, sizeof(sv.config), "%s", argv[2]) >= PATH_LEN)
        fatalx("config_failed error=\"the configuration path is too long\"");
    configure(cfg);
    cb_config_destroy(&cfg);

    sv.loop = uv_default_loop();
    int rc = uv_timer_init(sv.loop, &sv.tick);
    rc = rc ? rc : uv_timer_init(sv.loop, &sv.kill_timer);
    rc = rc ? rc : uv_signal_init(sv.loop, &sv.sig_int);
    rc = rc ? rc : uv_signal_init(sv.loop, &sv.sig_term);
    rc = rc ? rc : uv_signal_init(sv.loop, &sv.sig_hup);
    rc = rc ? rc : uv_signal_start(&sv.sig_int, on_signal, SIGINT);
    rc = rc ? rc : uv_signal_start(&sv.sig_term, on_signal, SIGTERM);
    rc = rc ? rc : uv_signal_start(&sv.sig_hup, on_signal, SIGHUP);
    for (size_t i = 0; rc == 0 && i < sv.count; i++) {
        rc = uv_timer_init(sv.loop, &sv.children[i].restart);
        sv.children[i].restart.data = &sv.children[i];
    }
    if (rc != 0)
        fatalx("loop_failed error=\"%s\"", uv_strerror(rc));

    char names[MAX_DAEMONS * SV_NAME_MAX] = "";
    for (size_t i = 0; i < sv.count; i++) {
        strcat(names, i ? " " : "");
        strcat(names, sv.children[i].d.name);
    }
    say("supervising %s (state in %s)", names, sv.state_file);
    for (size_t i = 0; i < sv.count; i++)
        spawn(&sv.children[i]);
    uv_timer_start(&sv.tick, on_tick, TICK_MS, TICK_MS);
    uv_run(sv.loop, UV_RUN_DEFAULT);

    uv_walk(sv.loop, close_walk, NULL);
    uv_run(sv.loop, UV_RUN_DEFAULT);
    uv_loop_close(sv.loop);
    return 0;
}
