/*
 * error.c — cb_error_t filling and the names of error codes.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cb_error_set(cb_error_t *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

void cb_error_clear(cb_error_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

const char *cb_strerror(int code)
{
    switch (code) {
    case CB_OK: return "ok";
    case CB_ERR_INVALID: return "invalid";
    case CB_ERR_NOT_FOUND: return "not_found";
    case CB_ERR_EXISTS: return "exists";
    case CB_ERR_CONFLICT: return "conflict";
    case CB_ERR_STORE_FULL: return "store_full";
    case CB_ERR_STORE: return "store_error";
    case CB_ERR_CORRUPT: return "corrupt";
    case CB_ERR_CHAIN: return "chain_broken";
    case CB_ERR_LOCKED: return "locked";
    case CB_ERR_NOMEM: return "out_of_memory";
    case CB_ERR_TOO_LARGE: return "too_large";
    case CB_ERR_AGAIN: return "again";
    case CB_ERR_SHUTDOWN: return "shutting_down";
    case CB_ERR_CONFIG: return "config";
    case CB_ERR_PROTO: return "protocol";
    case CB_ERR_ZMQ: return "zmq";
    case CB_ERR_UV: return "uv";
    case CB_ERR_AUTH: return "unauthenticated";
    case CB_ERR_FORBIDDEN: return "forbidden";
    case CB_ERR_MISSING: return "missing";
    default:
        if (code < 0 && code > -4096)
            return strerror(-code);
        return "unknown_error";
    }
}
