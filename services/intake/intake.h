/*
 * intake.h — the intake daemon's private header: its struct, and what its files
 * share. intake is the one door for commands from outside: it validates,
 * authenticates, makes commands idempotent, assigns ids, and records each
 * accepted command as an event in its log (the router and deadline daemons pull
 * them). It keeps a read-only view of cases from router's and deadline's events
 * for GET /v1/cases/{id}.
 *
 * Files: main.c (options, wiring, signals), state.c (every mdb_* call),
 * commands.c (an HTTP body into a Command), command.c (running a command:
 * checks, roles, the event; intake_execute), cmd_case.c, cmd_transfer.c and
 * cmd_limit.c (one do_<command> each), view.c (the case view), replica.c
 * (router's and deadline's events), tokens.c, lists.c, board.c, authz.c
 * (who may act), http.c and zmq.c (the doors). command.h is what the command
 * files share.
 */
#ifndef CB_INTAKE_H
#define CB_INTAKE_H

#include <jansson.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bus.h"
#include "caselist.h"
#include "casebus/v1/intake.pb-c.h"
#include "config.h"
#include "contract.h"
#include "control.h"
#include "daemon.h"
#include "orgs.h"
#include "error.h"
#include "evlog.h"
#include "metrics.h"
#include "store.h"
#include "zloop.h"

#define INTAKE_MAX_TOKEN_NOTE 500 /* bytes of a token's label or a revocation's reason */
#define INTAKE_MAX_TOKEN_ORGS 64
#define INTAKE_IDEM_KEY_MAX 128

/* Which command: the routes of the HTTP door and the oneof of Command. */
typedef enum intake_cmd_kind {
    CMD_NONE = 0,
    CMD_REPORT_CASE = CASEBUS__V1__COMMAND__KIND_REPORT_CASE,
    CMD_SEND_TRANSFER = CASEBUS__V1__COMMAND__KIND_SEND_TRANSFER,
    CMD_RECEIVE_TRANSFER = CASEBUS__V1__COMMAND__KIND_RECEIVE_TRANSFER,
    CMD_ACCEPT_TRANSFER = CASEBUS__V1__COMMAND__KIND_ACCEPT_TRANSFER,
    CMD_RETURN_TRANSFER = CASEBUS__V1__COMMAND__KIND_RETURN_TRANSFER,
    CMD_RAISE_DISPUTE = CASEBUS__V1__COMMAND__KIND_RAISE_DISPUTE,
    CMD_DECIDE_DISPUTE = CASEBUS__V1__COMMAND__KIND_DECIDE_DISPUTE,
    CMD_REQUEST_ASSISTANCE = CASEBUS__V1__COMMAND__KIND_REQUEST_ASSISTANCE,
    CMD_ANSWER_ASSISTANCE = CASEBUS__V1__COMMAND__KIND_ANSWER_ASSISTANCE,
    CMD_RECORD_DECISION = CASEBUS__V1__COMMAND__KIND_RECORD_DECISION,
    CMD_GIVE_FEEDBACK = CASEBUS__V1__COMMAND__KIND_GIVE_FEEDBACK,
    CMD_RECORD_APPROVAL = CASEBUS__V1__COMMAND__KIND_RECORD_APPROVAL,
    CMD_REQUEST_EXTENSION = CASEBUS__V1__COMMAND__KIND_REQUEST_EXTENSION,
    CMD_DECIDE_EXTENSION = CASEBUS__V1__COMMAND__KIND_DECIDE_EXTENSION,
    CMD_CANCEL_CASE = CASEBUS__V1__COMMAND__KIND_CANCEL_CASE,
    CMD_CRIME_STEP = CASEBUS__V1__COMMAND__KIND_CRIME_STEP,
    CMD_FILE_DECISION = CASEBUS__V1__COMMAND__KIND_FILE_DECISION,
    CMD_APPLY_JOINT_OPERATION = CASEBUS__V1__COMMAND__KIND_APPLY_JOINT_OPERATION,
    CMD_RECORD_FILING = CASEBUS__V1__COMMAND__KIND_RECORD_FILING,
    CMD_DISPATCH_CASE = CASEBUS__V1__COMMAND__KIND_DISPATCH_CASE,
    CMD_REVIEW_RETURN = CASEBUS__V1__COMMAND__KIND_REVIEW_RETURN,
    CMD_ANSWER_SUPERVISION = CASEBUS__V1__COMMAND__KIND_ANSWER_SUPERVISION,
} intake_cmd_kind_t;

#define INTAKE_MAX_HELPERS 8 /* 协办 of one dispatch */

/* An authenticated caller. */
typedef struct intake_actor {
    char token_id[40];
    size_t norgs;
    char orgs[INTAKE_MAX_TOKEN_ORGS][64 + 1];
    bool operator_;
} intake_actor_t;

/* The answer to a command, the same for both doors. */
typedef struct intake_reply {
    int status;               /* HTTP status */
    char *body;               /* JSON text, malloc'd */
    uint64_t event_seq;
} intake_reply_t;

typedef struct intake_state {
    cb_store_t *store;
    MDB_dbi tokens, revoked, idem, orgs, cases, timeline, refs, counters;
    MDB_dbi names; /* "m" + matter code, "t" + township code -> its name */
    cb_lists_t lists; /* case and obligation lists (lists.c) */
    uint64_t changes; /* list updates since start: the board refreshes when it moves */
} intake_state_t;

typedef struct intake {
    cb_daemon_t d;                /* config, loop, store, log, group, bus (common/daemon.h) */
    intake_state_t st;
    struct intake_http *http;
    struct intake_zmq *zdoor;
    cb_control_t *control;        /* [intake] control_bind: tokens, status */
    /* limits */
    uint64_t max_body;
    uint64_t max_age_days;        /* discovered_at older than this is refused */
    cb_metric_t *m_commands_ok, *m_commands_refused, *m_commands_failed;
    cb_metric_t *m_answer_http, *m_answer_zmq; /* a command's arrival to its answer, s */
    /* commands that came while a commit was on its way, run after it in order */
    struct intake_held *held;
    size_t held_first, held_count, held_cap;
} intake_t;

/* ---- commands.c ---- */

/* Decodes an HTTP JSON body for a route into a Command (malloc'd; free with
 * casebus__v1__command__free_unpacked(cmd, NULL)), checked against the
 * contract: rep says what was refused (every missing field, or the first
 * broken rule, named by its path). target_id (may be NULL) is the path's id. */
int intake_json_to_command(intake_cmd_kind_t kind, const char *target_id, const char *body,
                           size_t len, Casebus__V1__Command **out, cb_contract_report_t *rep);
/* The route name of a kind ("report_case", …): its field in Command. */
const char *intake_cmd_name(intake_cmd_kind_t kind);

/* ---- state.c ---- */

int intake_state_open(intake_state_t *st, cb_store_t *store, cb_error_t *err);
/* CB_ERR_AUTH for an unknown, wrong, revoked or (at now) expired token. */
int intake_token_lookup(intake_state_t *st, MDB_txn *txn, const char *token, int64_t now,
                        intake_actor_t *actor, cb_error_t *err);
/* CB_ERR_NOT_FOUND, or CB_ERR_CONFLICT when already revoked. */
int intake_token_revoke(intake_state_t *st, MDB_txn *txn, const char *token_id, int64_t now,
                        const char *reason, cb_error_t *err);
/* Calls fn for every token (revoked_at_ms 0 when live); fn returns non-zero
 * when out of memory. */
typedef int (*intake_token_fn)(void *ctx, const Casebus__V1__TokenCreated *tc,
                               int64_t revoked_at_ms);
int intake_token_each(intake_state_t *st, MDB_txn *txn, intake_token_fn fn, void *ctx,
                      cb_error_t *err);
int intake_token_put(intake_state_t *st, MDB_txn *txn, const Casebus__V1__TokenCreated *tc,
                     cb_error_t *err);
/* Idempotency: CB_ERR_NOT_FOUND when the key is new; 0 with *reply filled (a
 * copy) when the same request was answered before; CB_ERR_CONFLICT when the key
 * was used with another request. */
int intake_idem_get(intake_state_t *st, MDB_txn *txn, const char *token_id, const char *key,
                    const uint8_t req_hash[32], intake_reply_t *reply, cb_error_t *err);
int intake_idem_put(intake_state_t *st, MDB_txn *txn, const char *token_id, const char *key,
                    const uint8_t req_hash[32], const intake_reply_t *reply, cb_error_t *err);
/* Organisation replica. Returns NULL when unknown; free with
 * casebus__v1__organisation__free_unpacked. */
Casebus__V1__Organisation *intake_org_get(intake_state_t *st, MDB_txn *txn, const char *org_id);
int intake_org_put(intake_state_t *st, MDB_txn *txn, const Casebus__V1__Organisation *org,
                   cb_error_t *err);
/* Calls fn for every organisation of the replica (o is freed after the call). */
typedef void (*intake_org_fn)(void *ctx, const Casebus__V1__Organisation *o);
void intake_org_each(intake_state_t *st, MDB_txn *txn, intake_org_fn fn, void *ctx);
/* ids[k]: the first organisation (org_id order) of kinds[k], "" when none; one
 * pass over the replica. */
void intake_org_ids_of_kinds(intake_state_t *st, MDB_txn *txn, const int *kinds, size_t n,
                             char (*ids)[CB_ORG_ID_MAX + 1]);
/* inform.c: sets *field (a repeated OrgRef of an unpacked event, freed with it;
 * what was there is freed) to the organisations named, less unknown ones,
 * repeats and except. ids end with NULL. Returns 0 or CB_ERR_NOMEM. */
int intake_inform_set(intake_state_t *st, MDB_txn *txn, Casebus__V1__OrgRef ***field, size_t *n,
                      const char *const *ids, const char *except);
/* An OrgRef of o that protobuf-c frees with the message it joins (NULL: no memory). */
Casebus__V1__OrgRef *intake_owned_ref(const Casebus__V1__Organisation *o);

/* Next number of a per-day counter ("C" + "20261123") — 1, 2, … */
/* The name of a matter (kind 'm', from router's catalog) or a township (kind
 * 't', from the registry) into buf, "" when unknown. */
void intake_name_get(intake_state_t *st, MDB_txn *txn, char kind, const char *code, char *buf,
                     size_t size);
int intake_name_put(intake_state_t *st, MDB_txn *txn, char kind, const char *code,
                    const char *name, cb_error_t *err);
int intake_counter_next(intake_state_t *st, MDB_txn *txn, const char *name, uint64_t *out,
                        cb_error_t *err);
/* Case view (JSON object) and timeline. get returns a new reference or NULL. */
json_t *intake_case_get(intake_state_t *st, MDB_txn *txn, const char *case_id);
int intake_case_put(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                    cb_error_t *err);
int intake_timeline_add(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *entry,
                        cb_error_t *err);
json_t *intake_timeline_get(intake_state_t *st, MDB_txn *txn, const char *case_id);
/* refs: transfer/dispute/assistance/decision id -> JSON {case_id, …}. */
json_t *intake_ref_get(intake_state_t *st, MDB_txn *txn, const char *id);
int intake_ref_put(intake_state_t *st, MDB_txn *txn, const char *id, json_t *ref,
                   cb_error_t *err);

/* Calls fn for every case view; *n counts them. */
typedef int (*intake_case_fn)(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                              cb_error_t *err);
int intake_case_each(intake_state_t *st, MDB_txn *txn, intake_case_fn fn, size_t *n,
                     cb_error_t *err);
/* No case rows yet (a store from before the lists). */
bool intake_lists_empty(intake_state_t *st, MDB_txn *txn);

/* ---- lists.c ---- */

/* An instant as the API shows it: RFC 3339 in China time; null for 0. */
json_t *intake_json_time(int64_t ms);
/* The items of an answer as a list's rows are walked, and the instant it was read. */
typedef struct intake_rows {
    json_t *items;
    int64_t now;
} intake_rows_t;
/* Appends item (taken; NULL: out of memory) to rows; 0 or CB_ERR_NOMEM. */
int intake_rows_add(intake_rows_t *rows, json_t *item);
/* The list row of a case view. */
void intake_case_row(json_t *view, const char *case_id, cb_case_row_t *row);
/* Keeps the case's row (intake_case_put calls it with every view it stores). */
int intake_list_case(intake_state_t *st, MDB_txn *txn, const char *case_id, json_t *view,
                     cb_error_t *err);
/* Keeps an open limit's row from deadline's obligation events (others: nothing). */
int intake_list_obligation(intake_state_t *st, MDB_txn *txn, const Casebus__V1__Envelope *env,
                           cb_error_t *err);
/* GET /v1/cases?… and GET /v1/obligations?… (query: the text after '?'). */
void intake_list_cases(intake_t *in, MDB_txn *txn, const intake_actor_t *actor,
                       const char *query, size_t qlen, intake_reply_t *reply);
void intake_list_obligations(intake_t *in, MDB_txn *txn, const intake_actor_t *actor,
                             const char *query, size_t qlen, intake_reply_t *reply);
/* Builds the lists from the case views when the store has none (upgrade). */
int intake_lists_rebuild(intake_t *in, cb_error_t *err);

/* ---- authz.c ---- */

#define INTAKE_MAX_PARTIES 64

/* What is known of a case and of the transfer, decision or assistance request
 * a command is about, as organisation ids ("" or NULL when unknown). */
typedef struct intake_facts {
    const char *finder, *holder, *competent;
    const char *transfer_sender, *transfer_receiver;
    const char *decider, *addressee;
    const char *responsible; /* of the limit a 督办 order is about */
    bool referral_made; /* handed to public security (Decree 310) */
    const char *parties[INTAKE_MAX_PARTIES]; /* every other organisation with a role */
    size_t nparties;
} intake_facts_t;

typedef struct intake_verdict {
    int status;       /* 403, or 409 when the case's state is what is missing */
    const char *code; /* "not_holder", "not_receiver", … */
    char message[300];
} intake_verdict_t;

/* May org (of kind org_kind) give command kind on the case f describes?
 * crime_step: CrimeStep of a crime-referral command. false with v filled. */
bool intake_authorize(intake_cmd_kind_t kind, const char *org, int org_kind, int crime_step,
                      const intake_facts_t *f, intake_verdict_t *v);
/* May a token acting for orgs (kinds beside) read the case? Operators always may. */
bool intake_may_read(const intake_facts_t *f, const char *const *orgs, const int *kinds,
                     size_t norgs);

/* ---- command.c, view.c, replica.c, tokens.c ---- */

/* Authenticates a bearer token (the part after "Bearer "). 401 on failure. */
int intake_authenticate(intake_t *in, MDB_txn *txn, const char *token, intake_actor_t *actor,
                        cb_error_t *err);
/* Executes cmd for actor inside txn (the turn's group transaction): checks
 * every rule, assigns ids, appends the event, updates the case view, stores the
 * idempotency record. Fills reply in every case. A refusal may come after some
 * writes: run it through intake_submit, which undoes them. req_hash identifies
 * the request for idempotency (SHA-256 of route, target and body). */
void intake_execute(intake_t *in, MDB_txn *txn, const Casebus__V1__Command *cmd,
                    const intake_actor_t *actor, const uint8_t req_hash[32],
                    intake_reply_t *reply);
/* Either door's command before it runs: what intake owns cleared, defaults
 * set, the contract's limits and required fields checked (contract.h). The
 * HTTP door's decoder does it (intake_json_to_command), the ZeroMQ door calls
 * it on the frame it unpacked. */
int intake_check_command(Casebus__V1__Command *cmd, cb_contract_report_t *rep);
/* What both doors do with a decoded, authenticated, checked command (taken:
 * this frees it): intake_execute in a child transaction of a group commit.
 * done(arg, status, err) runs exactly once, on the loop thread. Status 0: reply
 * is the answer to give — a refusal or failure at once (only the command's own
 * writes undone; the rest of the group commits as if it had never come), an
 * acceptance (2xx) once its group is on disk. Otherwise the group's commit
 * failed (err says why) and nothing of the command was kept. While a commit is
 * on its way the command is held, and runs after it, in the order of arrival. */
void intake_submit(intake_t *in, Casebus__V1__Command *cmd, const intake_actor_t *actor,
                   const uint8_t req_hash[32], intake_reply_t *reply, cb_group_done_fn done,
                   void *arg);
/* Runs the held commands (the group's on_idle); frees them at shutdown. */
void intake_held_run(void *in);
void intake_held_free(intake_t *in);
/* GET /v1/cases/{id}: 200 with the view, 403, or 404. */
void intake_case_view(intake_t *in, MDB_txn *txn, const char *case_id,
                      const intake_actor_t *actor, intake_reply_t *reply);
/* Apply function for events pulled from router and deadline. */
int intake_apply_upstream(void *ctx, MDB_txn *txn, const cb_bus_event_t *ev, cb_error_t *err);
/* Fills reply with {"error":{code,field,message}} and status. */
void intake_reply_error(intake_reply_t *reply, int status, const char *code, const char *field,
                        const char *message);
void intake_reply_free(intake_reply_t *reply);
/* A command refused by the contract or the decoder: 400 missing_field (with
 * "fields", every one missing), 400 invalid_field / invalid_body, or 503 when
 * out of memory. */
void intake_reply_refused(intake_reply_t *reply, const cb_contract_report_t *rep);
/* Creates a token for orgs and records TokenCreated; *secret gets the token
 * text to show once (malloc'd). expires_at_ms: 0 for never, else in the future. */
int intake_token_create(intake_t *in, MDB_txn *txn, const char *const *orgs, size_t norgs,
                        const char *label, bool operator_, int64_t expires_at_ms, char **secret,
                        cb_error_t *err);
/* Revokes a token at once and records TokenRevoked. */
int intake_token_revoke_cmd(intake_t *in, MDB_txn *txn, const char *token_id, const char *reason,
                            cb_error_t *err);
/* {"tokens": [...]}: every token with its organisations, label, times and
 * state (live, expired, revoked), never a secret. A new reference or NULL. */
json_t *intake_tokens_json(intake_t *in, MDB_txn *txn, cb_error_t *err);

/* ---- admit.c ---- */

#define INTAKE_ADMIT_BUCKETS 1024

typedef struct intake_peer intake_peer_t;

typedef struct intake_admit {
    uint64_t max, per_address;
    uint64_t open;     /* admitted connections */
    uint64_t peers;    /* distinct addresses among them */
    uint64_t refusing; /* being answered 503 or closed */
    uint64_t refused;  /* since start */
    intake_peer_t *bucket[INTAKE_ADMIT_BUCKETS];
} intake_admit_t;

typedef enum { INTAKE_ADMIT_OK, INTAKE_ADMIT_FULL, INTAKE_ADMIT_ADDRESS } intake_admit_result_t;

/* An accepted connection; tcp first, so that the handle is the connection. */
typedef struct intake_conn {
    uv_tcp_t tcp;
    intake_admit_t *admit;
    intake_peer_t *peer;
    struct refusal *refusal;
} intake_conn_t;

void intake_admit_init(intake_admit_t *a, uint64_t max, uint64_t per_address);
/* Counts a connection from sa, or says which cap it is over (nothing counted). */
intake_admit_result_t intake_admit_take(intake_admit_t *a, const struct sockaddr *sa,
                                        intake_peer_t **peer);
void intake_admit_release(intake_admit_t *a, intake_peer_t *peer);
uint32_t intake_admit_open_from(const intake_admit_t *a, const struct sockaddr *sa);
/* Accepts the listener's next connection: the admitted one (hand it to h2o,
 * closing with intake_admit_closed), or NULL when it was over a cap (answered
 * 503 and closed here) or could not be accepted. */
intake_conn_t *intake_admit_accept(intake_admit_t *a, uv_stream_t *listener, bool tls);
void intake_admit_closed(uv_handle_t *h);

/* ---- http.c / zmq.c ---- */

/* [intake] settings of the HTTP door. */
typedef struct intake_http_opts {
    char host[256];
    int port;
    uint64_t max_connections;   /* open connections overall */
    uint64_t max_per_address;   /* open connections from one client address */
    uint64_t idle_timeout_s;    /* a connection with no complete request is closed after it */
    const char *tls_cert, *tls_key; /* PEM files; both or neither */
    const char *board_dir;      /* the command board's page (deploy/board) */
} intake_http_opts_t;

int intake_http_start(intake_t *in, const intake_http_opts_t *opts, cb_error_t *err);
void intake_http_stop(intake_t *in);
int intake_zmq_start(intake_t *in, const char *endpoint, cb_error_t *err);
void intake_zmq_stop(intake_t *in);

#endif
