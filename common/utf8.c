/*
 * utf8.c — see utf8.h.
 */
#include "utf8.h"

#include <string.h>

/* The length of the sequence a lead byte starts (0 for a continuation byte or
 * a byte that never leads). */
static size_t seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
}

size_t cb_utf8_trim_partial(char *s)
{
    size_t n = strlen(s);
    /* Walk back over at most 3 continuation bytes to the sequence's lead. */
    size_t i = n;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0 || n - i >= 4)
        return n;
    size_t want = seq_len((unsigned char)s[i - 1]);
    if (want > 1 && (n - (i - 1)) < want) {
        s[i - 1] = '\0';
        return i - 1;
    }
    return n;
}

void cb_utf8_copy(char *out, size_t n, const char *s)
{
    size_t len = strlen(s);
    len = len < n ? len : n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
    cb_utf8_trim_partial(out);
}
