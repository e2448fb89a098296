/*
 * testutil.h — what unit tests, e2e helpers and benchmarks share: temporary
 * directories, and running a libuv loop until a condition holds.
 */
#ifndef CB_TESTUTIL_H
#define CB_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include <uv.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *tu_tmpdir(const char *tag);
/* Removes a directory tree (rm -rf); frees path and sets it to NULL. */
void tu_rmtree(char **path);
/* The whole file at path, NUL-terminated (malloc'd; *len, when given, its
 * length); NULL when it cannot be read. */
char *tu_slurp(const char *path, size_t *len);

struct cb_store;
struct cb_log;
struct cb_error;

/* A fresh store (64 MiB map) in a fresh directory (*dir, free it with
 * tu_rmtree), and, when producer is given, that producer's log in it
 * (*log). Returns 0, or -1 with the reason printed (nothing left open). */
int tu_store_open(const char *tag, const char *producer, char **dir, struct cb_store **store,
                  struct cb_log **log);

/* The instant of an RFC 3339 text, in ms; a bad text is the test's own
 * mistake: it is printed and the test aborts. */
int64_t tu_at(const char *text);

/* Runs the loop (non-blocking turns with short sleeps) until pred(ctx) is true
 * or timeout_ms passes; returns pred's final value. */
bool tu_run_until(uv_loop_t *loop, bool (*pred)(void *ctx), void *ctx, uint64_t timeout_ms);
/* Runs the loop for ms milliseconds. */
void tu_run_for(uv_loop_t *loop, uint64_t ms);
/* Closes every handle still open and runs the loop until they are closed. */
void tu_loop_drain(uv_loop_t *loop);

/* Appends probe number n (its payload, len bytes, and sent_mono_ns) to log in
 * txn: the events of the bus tests and benchmarks. */
int tu_append_probe(struct cb_log *log, MDB_txn *txn, uint64_t n, uint8_t *payload, size_t len,
                    int64_t sent_mono_ns, struct cb_error *err);

/* Serves log on the bus at endpoint until SIGTERM (test and bench feeders that
 * stand in for a daemon). Returns 0, or the error of binding the producer. */
int tu_serve_log(struct cb_log *log, const char *endpoint);

#endif
