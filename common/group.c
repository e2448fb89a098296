/*
 * group.c — see group.h. The loop thread and the committer thread share op,
 * op_txn and the outcome fields under mu; everything else is the loop's.
 */
#include "group.h"
#include "grow.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct group_waiter {
    cb_group_done_fn done;
    void *arg;
} group_waiter_t;

typedef enum { OP_NONE, OP_BEGIN, OP_COMMIT, OP_ABORT, OP_STOP } op_t;

/* A group of at least this many waiters makes the next one commit on the
 * thread (see begin_threaded). */
#define THREADED_GROUP 8
/* Without work held behind the last one, every so many commits on the loop
 * one goes on the thread to see whether work now overlaps it. */
#define THREADED_PROBE 64

struct cb_group {
    uv_check_t check;
    uv_idle_t idle; /* active while a transaction is open: poll must not block */
    uv_async_t async; /* the committer thread's "committed" */
    cb_store_t *store;
    MDB_txn *txn; /* the open group transaction */
    group_waiter_t *waiters;
    size_t count, cap;
    unsigned long commits;
    bool failing; /* the last group commit failed, or a group was failed */
    cb_error_t last_error;
    void (*on_commit)(void *ctx);
    void *on_commit_ctx;
    void (*on_idle)(void *ctx);
    void *on_idle_ctx;

    /* the commit on its way: handed over, its outcome not yet given */
    bool committing;
    bool threaded;      /* the open transaction was begun on the thread */
    bool may_thread;    /* cb_group_thread_commits */
    bool held_during;   /* work was held while the commit on its way is (written under mu) */
    bool overlapped;    /* the last commit on the thread had work held behind it */
    unsigned since_probe; /* loop-side commits since one on the thread */
    size_t last_group;  /* waiters of the last commit */
    group_waiter_t *c_waiters;
    size_t c_count;

    pthread_t thread; /* started by cb_group_thread_commits */
    bool thread_started;
    int open_handles; /* while closing */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    op_t op;         /* asked of the thread; OP_NONE when it is free */
    MDB_txn *op_txn; /* to commit or abort; the one begun */
    int op_rc;
    cb_error_t op_err;
    bool c_done; /* the commit handed over has finished; its outcome: */
    int c_rc;
    cb_error_t c_err;
    MDB_txn *next_txn; /* so begun, for the loop to take */
};

static void *committer(void *arg)
{
    cb_group_t *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (g->op == OP_NONE)
            pthread_cond_wait(&g->cv, &g->mu);
        op_t op = g->op;
        if (op == OP_STOP)
            break;
        MDB_txn *t = g->op_txn;
        pthread_mutex_unlock(&g->mu);
        cb_error_t err;
        cb_error_clear(&err);
        int rc = 0;
        if (op == OP_BEGIN)
            rc = cb_store_begin(g->store, true, &t, &err);
        else if (op == OP_COMMIT)
            rc = cb_store_commit(&t, &err);
        else
            cb_store_abort(&t);
        pthread_mutex_lock(&g->mu);
        if (op == OP_COMMIT) {
            if (rc == 0 && g->held_during && g->next_txn == NULL) {
                /* Work is held for the next transaction: begin it before the
                 * loop hears of the commit, so that it never waits for this
                 * thread to be scheduled again. */
                pthread_mutex_unlock(&g->mu);
                MDB_txn *next = NULL;
                cb_error_t ignored;
                if (cb_store_begin(g->store, true, &next, &ignored) != 0)
                    next = NULL; /* the loop asks again, and hears why */
                pthread_mutex_lock(&g->mu);
                g->next_txn = next;
            }
            g->c_done = true;
            g->c_rc = rc;
            g->c_err = err;
            uv_async_send(&g->async);
        } else {
            g->op_rc = rc;
            g->op_err = err;
        }
        g->op_txn = t;
        g->op = OP_NONE;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Waits until the thread is free (a commit on its way has finished). Under mu. */
static void wait_free(cb_group_t *g)
{
    while (g->op != OP_NONE)
        pthread_cond_wait(&g->cv, &g->mu);
}

/* Asks the thread to begin or abort a transaction and waits for it. */
static int ask(cb_group_t *g, op_t op, MDB_txn **t, cb_error_t *err)
{
    pthread_mutex_lock(&g->mu);
    wait_free(g);
    if (op == OP_BEGIN && g->next_txn) {
        *t = g->next_txn;
        g->next_txn = NULL;
        pthread_mutex_unlock(&g->mu);
        return 0;
    }
    g->op = op;
    g->op_txn = *t;
    pthread_cond_broadcast(&g->cv);
    wait_free(g);
    *t = g->op_txn;
    int rc = g->op_rc;
    if (rc != 0 && err)
        *err = g->op_err;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Tells every waiter its outcome. Callbacks may start the next turn's work, so
 * the list is taken first. */
static void call_waiters(group_waiter_t *w, size_t n, int status, const cb_error_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].done)
            w[i].done(w[i].arg, status, err);
    free(w);
}

/* Gives a commit's outcome to its waiters, then on_commit and on_idle. */
static void finish(cb_group_t *g, group_waiter_t *w, size_t n, int rc, const cb_error_t *err)
{
    if (rc == 0) {
        g->commits++;
        g->failing = false;
    } else {
        log_error("group_commit_failed waiters=%zu error=\"%s\"", n, err->message);
        g->failing = true;
        g->last_error = *err;
    }
    call_waiters(w, n, rc, rc ? err : NULL);
    if (rc == 0 && g->on_commit)
        g->on_commit(g->on_commit_ctx);
    if (g->on_idle)
        g->on_idle(g->on_idle_ctx);
}

/* Gives the outcome of the commit on its way once it has finished; false while
 * it has not. */
static bool deliver(cb_group_t *g)
{
    if (!g->committing)
        return true;
    pthread_mutex_lock(&g->mu);
    bool done = g->c_done;
    int rc = g->c_rc;
    cb_error_t err = g->c_err;
    pthread_mutex_unlock(&g->mu);
    if (!done)
        return false;
    g->committing = false;
    g->overlapped = g->held_during;
    uv_unref((uv_handle_t *)&g->async);
    group_waiter_t *w = g->c_waiters;
    size_t n = g->c_count;
    g->c_waiters = NULL;
    g->c_count = 0;
    finish(g, w, n, rc, &err);
    return true;
}

/* Commits the open transaction: on the loop when it was begun there, else
 * handed to the thread. */
static void group_commit(cb_group_t *g)
{
    /* The open transaction was begun after the last commit finished, so its
     * outcome can be given now; held-back work may join the open one. */
    deliver(g);
    if (g->txn == NULL)
        return;
    uv_unref((uv_handle_t *)&g->check);
    uv_idle_stop(&g->idle);
    g->last_group = g->count;
    if (!g->threaded) {
        cb_error_t err;
        cb_error_clear(&err);
        int rc = cb_store_commit(&g->txn, &err);
        group_waiter_t *w = g->waiters;
        size_t n = g->count;
        g->waiters = NULL;
        g->count = g->cap = 0;
        finish(g, w, n, rc, &err);
        return;
    }
    g->c_waiters = g->waiters;
    g->c_count = g->count;
    g->waiters = NULL;
    g->count = g->cap = 0;
    g->committing = true;
    uv_ref((uv_handle_t *)&g->async);
    pthread_mutex_lock(&g->mu);
    g->c_done = false;
    g->held_during = false;
    g->op = OP_COMMIT;
    g->op_txn = g->txn;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    g->txn = NULL;
}

static void on_check(uv_check_t *h)
{
    group_commit(h->data);
}

static void on_async(uv_async_t *h)
{
    deliver(h->data);
}

static void on_idle_noop(uv_idle_t *h)
{
    (void)h;
}

/* The three handles close together; the memory goes with the last. */
static void on_handle_closed(uv_handle_t *h)
{
    cb_group_t *g = h->data;
    if (--g->open_handles == 0)
        free(g);
}

cb_group_t *cb_group_new(uv_loop_t *loop, cb_store_t *store)
{
    cb_group_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->store = store;
    g->since_probe = THREADED_PROBE - 1; /* the first busy group tries the thread */
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        return NULL;
    }
    if (pthread_cond_init(&g->cv, NULL) != 0) {
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    int rc = uv_check_init(loop, &g->check);
    if (rc != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    if ((rc = uv_idle_init(loop, &g->idle)) != 0)
        uv_close((uv_handle_t *)&g->check, NULL);
    if (rc == 0 && (rc = uv_async_init(loop, &g->async, on_async)) != 0) {
        uv_close((uv_handle_t *)&g->check, NULL);
        uv_close((uv_handle_t *)&g->idle, NULL);
    }
    if (rc != 0) {
        /* The handles close on the loop's next turn; their memory must outlive
         * that, so it is kept (a start-up failure: the daemon exits). */
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        return NULL;
    }
    g->check.data = g->idle.data = g->async.data = g;
    /* Referenced only while there is work: an open transaction to commit, or a
     * commit whose outcome is to be given. */
    uv_unref((uv_handle_t *)&g->check);
    uv_unref((uv_handle_t *)&g->async);
    uv_check_start(&g->check, on_check);
    return g;
}

void cb_group_flush(cb_group_t *g)
{
    group_commit(g);
    if (!g->committing)
        return;
    pthread_mutex_lock(&g->mu);
    while (!g->c_done)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    deliver(g);
}

void cb_group_destroy(cb_group_t **pg)
{
    cb_group_t *g = *pg;
    if (g == NULL)
        return;
    cb_group_flush(g);
    if (g->thread_started) {
        MDB_txn *next = NULL;
        pthread_mutex_lock(&g->mu);
        wait_free(g);
        next = g->next_txn;
        g->next_txn = NULL;
        pthread_mutex_unlock(&g->mu);
        if (next)
            ask(g, OP_ABORT, &next, NULL);
        pthread_mutex_lock(&g->mu);
        g->op = OP_STOP;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    uv_check_stop(&g->check);
    g->open_handles = 3;
    uv_close((uv_handle_t *)&g->check, on_handle_closed);
    uv_close((uv_handle_t *)&g->idle, on_handle_closed);
    uv_close((uv_handle_t *)&g->async, on_handle_closed);
    *pg = NULL;
}

bool cb_group_hold(cb_group_t *g)
{
    if (!g->committing || g->txn != NULL)
        return false;
    pthread_mutex_lock(&g->mu);
    g->held_during = true; /* and the thread begins the next transaction ahead */
    pthread_mutex_unlock(&g->mu);
    return true;
}

int cb_group_thread_commits(cb_group_t *g, bool on, cb_error_t *err)
{
    if (on && !g->thread_started) {
        int rc = pthread_create(&g->thread, NULL, committer, g);
        if (rc != 0)
            return cb_error_set(err, CB_ERR_NOMEM, "", "cannot start the commit thread: %s",
                                strerror(rc));
        g->thread_started = true;
    }
    g->may_thread = on && g->thread_started;
    return 0;
}

bool cb_group_settled(const cb_group_t *g)
{
    return !g->committing && g->txn == NULL;
}

/* Whether the next transaction is begun (and so committed) on the thread: when
 * work queues up behind commits (the last group was large, or a transaction
 * was begun ahead for held work). A small group commits on the loop, saving the
 * two hand-overs a commit on the thread costs when there is nothing to overlap. */
static bool begin_threaded(cb_group_t *g)
{
    if (!g->may_thread)
        return false;
    pthread_mutex_lock(&g->mu);
    wait_free(g); /* the thread holds LMDB's writer lock while it works */
    bool ahead = g->next_txn != NULL;
    pthread_mutex_unlock(&g->mu);
    if (ahead)
        return true;
    if (g->last_group < THREADED_GROUP)
        return false;
    /* A commit on the thread pays when work comes while it is on its way (a
     * door with many clients). When none came (all of them waiting in the last
     * group), try again now and then. */
    if (g->overlapped || ++g->since_probe >= THREADED_PROBE) {
        g->since_probe = 0;
        return true;
    }
    return false;
}

int cb_group_txn(cb_group_t *g, MDB_txn **txn, cb_error_t *err)
{
    if (g->txn == NULL) {
        MDB_txn *t = NULL;
        g->threaded = begin_threaded(g);
        int rc = g->threaded ? ask(g, OP_BEGIN, &t, err) : cb_store_begin(g->store, true, &t, err);
        if (rc != 0)
            return rc;
        g->txn = t;
        uv_ref((uv_handle_t *)&g->check);
        /* Work may arrive before the poll phase (idle callbacks, drains): keep
         * poll from blocking so this turn's check phase commits it at once. */
        uv_idle_start(&g->idle, on_idle_noop);
    }
    *txn = g->txn;
    return 0;
}

int cb_group_begin(cb_group_t *g, MDB_txn **child, cb_error_t *err)
{
    MDB_txn *parent;
    int rc = cb_group_txn(g, &parent, err);
    if (rc != 0)
        return rc;
    return cb_store_begin_child(g->store, parent, child, err);
}

static int add_waiter(cb_group_t *g, cb_group_done_fn done, void *arg, cb_error_t *err)
{
    if (CB_GROW(g->waiters, g->cap, g->count, 64) != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    g->waiters[g->count++] = (group_waiter_t){done, arg};
    return 0;
}

int cb_group_join(cb_group_t *g, cb_group_done_fn done, void *arg, cb_error_t *err)
{
    if (g->txn == NULL)
        return cb_error_set(err, CB_ERR_STORE, "", "no group transaction to join");
    return add_waiter(g, done, arg, err);
}

void cb_group_fail(cb_group_t *g, const cb_error_t *err)
{
    log_error("group_failed waiters=%zu error=\"%s\"", g->count, err ? err->message : "");
    g->failing = true;
    if (err)
        g->last_error = *err;
    else
        cb_error_set(&g->last_error, CB_ERR_STORE, "", "a group transaction failed");
    if (g->txn != NULL) {
        MDB_txn *t = g->txn;
        g->txn = NULL;
        if (g->threaded)
            ask(g, OP_ABORT, &t, NULL);
        else
            cb_store_abort(&t);
    }
    uv_unref((uv_handle_t *)&g->check);
    uv_idle_stop(&g->idle);
    group_waiter_t *w = g->waiters;
    size_t n = g->count;
    g->waiters = NULL;
    g->count = g->cap = 0;
    call_waiters(w, n, err && err->code ? err->code : CB_ERR_STORE, err);
}

int cb_group_end(cb_group_t *g, MDB_txn **child, bool ok, cb_group_done_fn done, void *arg,
                 cb_error_t *err)
{
    if (!ok) {
        cb_store_abort(child);
        return 0;
    }
    cb_error_t local;
    if (err == NULL)
        err = &local;
    int rc = cb_store_commit(child, err);
    if (rc != 0) {
        /* LMDB may leave the parent unusable after a failed child commit: fail
         * the whole group rather than commit something half-known. */
        cb_group_fail(g, err);
        return rc;
    }
    if ((rc = add_waiter(g, done, arg, err)) != 0)
        cb_group_fail(g, err); /* the child's work is in the group: none of it may stay */
    return rc;
}

void cb_group_on_commit(cb_group_t *g, void (*fn)(void *ctx), void *ctx)
{
    g->on_commit = fn;
    g->on_commit_ctx = ctx;
}

void cb_group_on_idle(cb_group_t *g, void (*fn)(void *ctx), void *ctx)
{
    g->on_idle = fn;
    g->on_idle_ctx = ctx;
}

unsigned long cb_group_commits(const cb_group_t *g)
{
    return g->commits;
}

const cb_error_t *cb_group_failing(const cb_group_t *g)
{
    return g->failing ? &g->last_error : NULL;
}
