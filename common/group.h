/*
 * group.h — group commit.
 *
 * Every write that arrives in one loop turn shares one LMDB write transaction,
 * committed (fsync'd, LMDB's default durability) after the turn's work, after
 * which each participant's done callback learns the outcome. Each participant
 * works in a child transaction, so a refused command leaves nothing in the group.
 *
 * Under load, where the daemon allows it (cb_group_thread_commits), the commit
 * runs on a thread of the group's own: after a group of 8 or more that last
 * time had work come while it was on its way (or, failing that, every 64th
 * such group, to look again), the next transaction is begun there. LMDB
 * ties a write transaction's lock to the thread that began it, so that thread
 * begins such a transaction and commits or aborts it; the loop thread works in
 * it in between, handed over under a mutex. While a commit is on its way to the
 * disk the loop goes on: it reads, parses and answers. A small group commits on
 * the loop, as the hand-overs would only add to its latency. Work that needs the next
 * transaction either waits for the commit (cb_group_txn, cb_group_begin) or is
 * held back by its caller while cb_group_hold and taken up in cb_group_on_idle.
 * Done callbacks, on_commit and on_idle run on the loop thread, after the
 * commit they wait for is on disk.
 */
#ifndef CB_GROUP_H
#define CB_GROUP_H

#include <lmdb.h>
#include <stdbool.h>
#include <uv.h>

#include "error.h"
#include "store.h"

typedef struct cb_group cb_group_t;
typedef void (*cb_group_done_fn)(void *arg, int status, const cb_error_t *err);

/* NULL when out of memory. */
cb_group_t *cb_group_new(uv_loop_t *loop, cb_store_t *store);
/* Commits what is pending (the done callbacks run), stops the thread, frees. */
void cb_group_destroy(cb_group_t **g);

/* A child transaction of this turn's group transaction (begun on first use;
 * waits for a commit on its way). Finish it with cb_group_end. */
int cb_group_begin(cb_group_t *g, MDB_txn **child, cb_error_t *err);
/* ok: commit the child into the group and call done(arg, status, err) after the
 * group's commit (status 0, or the commit's error). !ok: abort the child; done
 * is not called. Returns the error of committing the child (then done is not
 * called either; the caller answers the failure itself). */
int cb_group_end(cb_group_t *g, MDB_txn **child, bool ok, cb_group_done_fn done, void *arg,
                 cb_error_t *err);
/* Direct mode, for work whose every refusal comes before its first write:
 * cb_group_txn gives the group transaction itself (no child); a command that
 * succeeded registers with cb_group_join; a failure after writing calls
 * cb_group_fail, which aborts the whole group — every waiter gets the error and
 * nothing of the turn is kept (nothing unacknowledged was acknowledged). */
int cb_group_txn(cb_group_t *g, MDB_txn **txn, cb_error_t *err);
int cb_group_join(cb_group_t *g, cb_group_done_fn done, void *arg, cb_error_t *err);
void cb_group_fail(cb_group_t *g, const cb_error_t *err);

/* Lets commits under load run on the group's thread (off by default; the
 * thread starts the first time). For a
 * door that answers many clients: on a machine with few cores, the extra
 * thread's hand-overs cost latency wherever there is little to overlap. */
int cb_group_thread_commits(cb_group_t *g, bool on, cb_error_t *err);
/* True while a commit is on its way and no transaction is open, so that
 * cb_group_txn would wait: the caller holds its work back and takes it up in
 * on_idle, and the next transaction is begun as soon as the commit ends. */
bool cb_group_hold(cb_group_t *g);
/* Nothing is open and nothing on its way: a read now sees every write made. */
bool cb_group_settled(const cb_group_t *g);
/* Commits now and waits for the outcome (done callbacks run before it
 * returns): shutdown, tests. */
void cb_group_flush(cb_group_t *g);
/* Called after each successful group commit (e.g. to wake the bus producer). */
void cb_group_on_commit(cb_group_t *g, void (*fn)(void *ctx), void *ctx);
/* Called after each commit's outcome was given, whatever it was: the moment
 * to take up work held back while busy. */
void cb_group_on_idle(cb_group_t *g, void (*fn)(void *ctx), void *ctx);
/* Commits made so far (for tests and metrics). */
unsigned long cb_group_commits(const cb_group_t *g);
/* The error of the last write when it failed (a group commit, or a group
 * failed), NULL once a commit has succeeded since. */
const cb_error_t *cb_group_failing(const cb_group_t *g);

#endif
