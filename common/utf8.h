/*
 * utf8.h — cutting text without cutting a character. snprintf into a fixed
 * buffer stops at a byte count, which may fall inside a multi-byte UTF-8
 * sequence; jansson then refuses the whole string.
 */
#ifndef CB_UTF8_H
#define CB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Drops an incomplete sequence at the end of s (in place). Returns the new
 * length. Bytes before the end are left alone. */
size_t cb_utf8_trim_partial(char *s);
/* s into out (size n, n > 0), cut to fit, without an incomplete sequence at
 * the end: neither one this cut makes nor one s already ended with (an
 * earlier snprintf's cut). */
void cb_utf8_copy(char *out, size_t n, const char *s);
/* True when s[0..len) is valid UTF-8 without NUL; *bad gets the offset of the
 * first bad byte otherwise. */
int cb_utf8_valid(const char *s, size_t len, size_t *bad);

#endif
