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

int cb_utf8_valid(const char *str, size_t len, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;      /* continuation bytes */
        unsigned min;  /* smallest code point allowed for this length (no overlongs) */
        if (c == 0)
            goto fail;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            goto fail;
        }
        if (n >= len - i)
            goto fail;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto fail;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            goto fail;
        i += n + 1;
    }
    return 1;
fail:
    if (bad)
        *bad = i;
    return 0;
}
