/*
 * cli.h — the `casebus` command line's private header: subcommands that live
 * in files of their own.
 */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "casebus/v1/control.pb-c.h"

#include <stddef.h>

/* A file's whole text (malloc'd), or NULL after saying why on stderr. */
char *cli_slurp(const char *path, size_t *len);

/* argv[0] asks for help (--help, -h). */
bool cli_wants_help(int argc, char **argv);
/* A subcommand: its word and what runs it with the arguments after the word. */
typedef struct cli_sub {
    const char *name;
    int (*run)(const cb_config_t *cfg, int argc, char **argv);
} cli_sub_t;
/* Runs the subcommand argv[0] names; -1 when there is none or argv[0] names
 * none of subs. */
int cli_run_sub(const cli_sub_t *subs, size_t n, const cb_config_t *cfg, int argc, char **argv);

/* Sends req to daemon's control socket and waits for the reply; returns it
 * (caller frees) or NULL after saying why on stderr. */
Casebus__V1__ControlReply *cli_call(const cb_config_t *cfg, const char *daemon,
                                     Casebus__V1__ControlRequest *req);
/* The same, waiting at most timeout_ms (cli_call waits 30 s). */
Casebus__V1__ControlReply *cli_call_within(const cb_config_t *cfg, const char *daemon,
                                           Casebus__V1__ControlRequest *req, int timeout_ms);

/* casebus calendar import | show, and casebus due (calendar.c). */
int cli_calendar(const cb_config_t *cfg, int argc, char **argv);
int cli_due(const cb_config_t *cfg, int argc, char **argv);

/* casebus status [--json] (status.c): every daemon's status, problems first,
 * as a table (--json: one JSON object), each upstream marked current,
 * catching_up, stalled or producer_down; exit 1 when a daemon is down or an
 * upstream stalled. */
int cli_status(const cb_config_t *cfg, int argc, char **argv);

/* casebus tail … (tail.c); returns the exit status. */
int cli_tail(const cb_config_t *cfg, int argc, char **argv);

/* One event (cb_envelope_to_json's shape) as a line for people (tail.c). */
void cli_print_event(json_t *doc, bool colour);

/* casebus case ID [--json] (case.c): one case's whole timeline across every
 * daemon's log, read-only, with who holds it and its time limits. */
int cli_case(const cb_config_t *cfg, int argc, char **argv);

/* casebus submit FILE.json [--path P] [--token T] (case.c): a command to
 * intake's HTTP API, for trying things by hand. */
int cli_submit(const cb_config_t *cfg, int argc, char **argv);

/* casebus report (--quarter YYYYQn | --from DATE --to DATE) [--csv] (report.c). */
int cli_report(const cb_config_t *cfg, int argc, char **argv);

/* casebus keys init | gen | list (keys.c). */
int cli_keys(const cb_config_t *cfg, int argc, char **argv);

/* casebus subscribe | unsubscribe | subscriptions | deadletters | redeliver
 * (what), and casebus subscription rotate-secret | update | test (subs.c). */
int cli_notify(const cb_config_t *cfg, const char *what, int argc, char **argv);
int cli_subscription(const cb_config_t *cfg, int argc, char **argv);
/* A Standard Webhooks secret: whsec_ + base64 of 24 random bytes (-1 after
 * saying why). */
#define CLI_WHSEC_MAX (6 + 45)
int cli_make_whsec(char out[CLI_WHSEC_MAX]);
/* "a,b,c" into types (pointing into buf, at most CLI_MAX_TYPES); "all" or ""
 * is none (every type). */
#define CLI_MAX_TYPES 32
size_t cli_split_types(char *buf, char **types);

/* casebus listen --org ID (listen.c): a local receiver that subscribes itself
 * and prints each delivery, signature verified, until SIGINT/SIGTERM. */
int cli_listen(const cb_config_t *cfg, int argc, char **argv);

/* casebus cases [filters], casebus overdue | due-soon [filters] (lists.c):
 * intake's lists, read-only from its store. */
int cli_cases(const cb_config_t *cfg, int argc, char **argv);
int cli_obligations(const cb_config_t *cfg, const char *cmd, int argc, char **argv);

/* casebus token create | list | revoke (token.c). */
int cli_token(const cb_config_t *cfg, int argc, char **argv);

#endif
