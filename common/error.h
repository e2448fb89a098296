/*
 * error.h — the error codes every casebus function returns, and cb_error_t, the
 * detail for people (which field, which rule) that the caller may ask for.
 *
 * Functions that can fail return 0 or a negative code: a CB_ERR_* below, or
 * -errno for a system call. They never print; the caller decides.
 */
#ifndef CB_ERROR_H
#define CB_ERROR_H

#include <stddef.h>

enum {
    CB_OK = 0,
    CB_ERR_INVALID = -1000, /* input breaks a rule (field + message say which) */
    CB_ERR_NOT_FOUND,       /* no such record */
    CB_ERR_EXISTS,          /* already there */
    CB_ERR_CONFLICT,        /* conflicts with the current state */
    CB_ERR_STORE_FULL,      /* LMDB map (or a limit) is full */
    CB_ERR_STORE,           /* any other LMDB failure */
    CB_ERR_CORRUPT,         /* stored or received bytes do not decode */
    CB_ERR_CHAIN,           /* the hash chain does not hold */
    CB_ERR_LOCKED,          /* the data directory is held by another process */
    CB_ERR_NOMEM,
    CB_ERR_TOO_LARGE,
    CB_ERR_AGAIN,           /* try again later */
    CB_ERR_SHUTDOWN,        /* shutting down */
    CB_ERR_CONFIG,          /* the configuration breaks a rule */
    CB_ERR_PROTO,           /* a peer broke the wire protocol */
    CB_ERR_ZMQ,             /* libzmq failed (errno in message) */
    CB_ERR_UV,              /* libuv failed */
    CB_ERR_AUTH,            /* not authenticated */
    CB_ERR_FORBIDDEN,       /* authenticated, but not allowed */
    CB_ERR_MISSING,         /* a required field is absent (field says which) */
};

typedef struct cb_error {
    int code;
    char field[96];   /* the offending field or config key, "" when none */
    char message[320];
} cb_error_t;

/* Fills err (which may be NULL) and returns code, so callers can write
 * `return cb_error_set(err, CB_ERR_INVALID, "urgency", "must be ...")`. */
int cb_error_set(cb_error_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err (may be NULL). */
void cb_error_clear(cb_error_t *err);

/* A short, stable, lowercase name for a code: "invalid", "store_full", … For
 * -errno it is strerror's text. Never NULL. */
const char *cb_strerror(int code);

#endif
