/*
 * jsonw.h — a jansson document written as compact JSON text, byte for byte
 * what json_dumps(j, JSON_COMPACT) writes, without its cost: jansson 2.14
 * guards every object and array it dumps against cycles with a hash table of
 * its parents (a malloc and a free each), which made the dump the largest
 * part of `casebus tail --json`. Objects keep their insertion order, strings
 * are escaped as jansson escapes them (UTF-8 left as is), reals are written by
 * jansson itself. A document must not contain itself (none of ours can).
 */
#ifndef CB_JSONW_H
#define CB_JSONW_H

#include <jansson.h>
#include <stddef.h>

/* A growable text buffer; zero-initialise, reuse across documents. */
typedef struct cb_jsonw {
    char *text;
    size_t len, cap;
} cb_jsonw_t;

/* Appends j's text to w (w->text stays NUL-terminated). Returns 0, or
 * CB_ERR_NOMEM (w keeps what it had before). */
int cb_jsonw_append(cb_jsonw_t *w, const json_t *j);
/* Appends s (n bytes of valid UTF-8) as a JSON string, escaped as above. */
int cb_jsonw_string(cb_jsonw_t *w, const char *s, size_t n);
/* Appends text that is JSON already, as it is. */
int cb_jsonw_raw(cb_jsonw_t *w, const char *text, size_t n);
/* j's text as a new string (free it), or NULL on out of memory. */
char *cb_jsonw_dumps(const json_t *j);
void cb_jsonw_close(cb_jsonw_t *w);

#endif
