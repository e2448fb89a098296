/*
 * jsonr.h — JSON text read into a jansson document, accepting and refusing
 * exactly what json_loadb(text, len, JSON_REJECT_DUPLICATES, ...) does, four
 * to five times faster: jansson reads its input a character at a time through
 * a callback, which made parsing the largest part of intake's HTTP door.
 * tests/unit/test_jsonr.c and tests/fuzz/fuzz_jsonr.c hold the two to the
 * same answers.
 *
 * The rules, as jansson's: the document is an object or an array; strings are
 * valid UTF-8, with no control character unescaped and no \u0000; integers fit
 * a json_int_t (long long) and are json_integer; a number with a fraction or
 * an exponent is json_real, refused when it overflows; objects have no key
 * twice; nesting goes at most 2048 deep; only whitespace (space, tab, CR, LF)
 * may follow the document. The one difference: a NUL byte is refused wherever
 * it is (jansson skips one that comes right after a number or a word).
 */
#ifndef CB_JSONR_H
#define CB_JSONR_H

#include <jansson.h>
#include <stddef.h>

#define CB_JSONR_MAX_DEPTH 2048

typedef struct cb_jsonr_error {
    char text[128];  /* what is wrong */
    int line, column; /* where, from 1; the column counts bytes */
    size_t position; /* the byte offset */
} cb_jsonr_error_t;

/* The document text[0..len) holds, or NULL with *err saying why (err may be
 * NULL). Out of memory is an error too ("out of memory"). */
json_t *cb_jsonr_loadb(const char *text, size_t len, cb_jsonr_error_t *err);

#endif
