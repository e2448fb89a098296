/*
 * jsonr.c — JSON text into a jansson document (jsonr.h): one pass over the
 * bytes, strings without an escape copied in one piece.
 */
#include "jsonr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *start, *p, *end;
    int depth;
    cb_jsonr_error_t *err;
    char *buf; /* an escaped string's bytes */
    size_t cap;
} reader_t;

static json_t *fail(reader_t *r, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *fail(reader_t *r, const unsigned char *at, const char *fmt, ...)
{
    if (r->err == NULL || r->err->text[0])
        return NULL; /* the first error is the one to tell */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->text, sizeof(r->err->text), fmt, ap);
    va_end(ap);
    r->err->position = (size_t)(at - r->start);
    r->err->line = 1;
    const unsigned char *bol = r->start;
    for (const unsigned char *q = r->start; q < at; q++)
        if (*q == '\n')
            r->err->line++, bol = q + 1;
    r->err->column = (int)(at - bol) + 1;
    return NULL;
}

static void skip_space(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* The length of the UTF-8 sequence at p (as cb_utf8_valid allows: no
 * overlong form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], min;
    size_t n;
    if ((c & 0xe0) == 0xc0)
        n = 1, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0)
        n = 2, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0)
        n = 3, min = 0x10000, c &= 0x07;
    else
        return 0;
    if ((size_t)(end - p) <= n)
        return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return n + 1;
}

static int put_byte(reader_t *r, size_t *len, unsigned char c)
{
    if (*len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        char *b = realloc(r->buf, cap);
        if (b == NULL)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[(*len)++] = (char)c;
    return 0;
}

static int put_bytes(reader_t *r, size_t *len, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (put_byte(r, len, s[i]) != 0)
            return -1;
    return 0;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *v)
{
    if (end - p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static int put_code_point(reader_t *r, size_t *len, unsigned u)
{
    unsigned char b[4];
    size_t n;
    if (u < 0x80)
        b[0] = (unsigned char)u, n = 1;
    else if (u < 0x800)
        b[0] = (unsigned char)(0xc0 | u >> 6), b[1] = (unsigned char)(0x80 | (u & 0x3f)), n = 2;
    else if (u < 0x10000)
        b[0] = (unsigned char)(0xe0 | u >> 12), b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f)),
        b[2] = (unsigned char)(0x80 | (u & 0x3f)), n = 3;
    else
        b[0] = (unsigned char)(0xf0 | u >> 18), b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f)),
        b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (u & 0x3f)),
        n = 4;
    return put_bytes(r, len, b, n);
}

/* An escape after its backslash (at p, advanced past it); -1 with the error told. */
static int escape(reader_t *r, size_t *len)
{
    const unsigned char *at = r->p - 1;
    if (r->p >= r->end) {
        fail(r, at, "unexpected end of input in a string");
        return -1;
    }
    unsigned char c = *r->p++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(from, c) : NULL;
    if (k)
        return put_byte(r, len, (unsigned char)to[k - from]) ? (fail(r, at, "out of memory"), -1) : 0;
    unsigned u, lo;
    if (c != 'u') {
        fail(r, at, "invalid escape '\\%c' in a string", c >= 0x20 && c < 0x7f ? c : '?');
        return -1;
    }
    if (hex4(r->p, r->end, &u) != 0) {
        fail(r, at, "invalid \\u escape: four hexadecimal digits expected");
        return -1;
    }
    r->p += 4;
    if (u >= 0xdc00 && u <= 0xdfff) {
        fail(r, at, "invalid Unicode '\\u%04X': a low surrogate alone", u);
        return -1;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
        if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
            hex4(r->p + 2, r->end, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
            fail(r, at, "invalid Unicode '\\u%04X': a high surrogate without its low one", u);
            return -1;
        }
        r->p += 6;
        u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (u == 0) {
        fail(r, at, "\\u0000 is not allowed in a string");
        return -1;
    }
    return put_code_point(r, len, u) ? (fail(r, at, "out of memory"), -1) : 0;
}

/* A string after its opening quote. *s and *n: its bytes (in the text when it
 * has no escape, else in r->buf). Returns 0 or -1 with the error told. */
static int string(reader_t *r, const char **s, size_t *n)
{
    const unsigned char *from = r->p;
    size_t len = 0;
    bool escaped = false;
    for (;;) {
        const unsigned char *q = r->p;
        while (q < r->end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
        if (escaped && put_bytes(r, &len, r->p, (size_t)(q - r->p)) != 0) {
            fail(r, q, "out of memory");
            return -1;
        }
        r->p = q;
        if (q >= r->end) {
            fail(r, q, "unexpected end of input in a string");
            return -1;
        }
        unsigned char c = *q;
        if (c == '"') {
            r->p++;
            *s = escaped ? r->buf : (const char *)from;
            *n = escaped ? len : (size_t)(q - from);
            return 0;
        }
        if (c < 0x20) {
            fail(r, q, "control character 0x%x in a string", c);
            return -1;
        }
        if (c >= 0x80) {
            size_t k = utf8_len(q, r->end);
            if (k == 0) {
                fail(r, q, "invalid UTF-8 byte 0x%x", c);
                return -1;
            }
            if (escaped && put_bytes(r, &len, q, k) != 0) {
                fail(r, q, "out of memory");
                return -1;
            }
            r->p += k;
            continue;
        }
        /* a backslash: from here on the string is built in r->buf */
        if (!escaped) {
            escaped = true;
            if (put_bytes(r, &len, from, (size_t)(q - from)) != 0) {
                fail(r, q, "out of memory");
                return -1;
            }
        }
        r->p++;
        if (escape(r, &len) != 0)
            return -1;
    }
}

static bool digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static json_t *number(reader_t *r)
{
    const unsigned char *from = r->p, *p = r->p;
    if (*p == '-')
        p++;
    if (!digit(p, r->end))
        return fail(r, from, "invalid token");
    if (*p == '0') {
        p++;
        if (digit(p, r->end))
            return fail(r, from, "invalid token: a number does not begin with 0");
    } else {
        while (digit(p, r->end))
            p++;
    }
    bool real = false;
    if (p < r->end && *p == '.') {
        p++;
        if (!digit(p, r->end))
            return fail(r, from, "invalid token: digits expected after '.'");
        while (digit(p, r->end))
            p++;
        real = true;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (!digit(p, r->end))
            return fail(r, from, "invalid token: digits expected in the exponent");
        while (digit(p, r->end))
            p++;
        real = true;
    }
    char text[64], *t = text, *big = NULL, *end;
    size_t n = (size_t)(p - from);
    if (n >= sizeof(text) && (t = big = malloc(n + 1)) == NULL)
        return fail(r, from, "out of memory");
    memcpy(t, from, n);
    t[n] = '\0';
    json_t *v;
    errno = 0;
    if (real) {
        double d = strtod(t, &end);
        v = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE
                ? fail(r, from, "real number overflow")
                : json_real(d);
    } else {
        long long i = strtoll(t, &end, 10);
        v = errno == ERANGE ? fail(r, from, i < 0 ? "too big negative integer" : "too big integer")
                            : json_integer(i);
    }
    free(big);
    if (v == NULL)
        return fail(r, from, "out of memory");
    r->p = p;
    return v;
}

static json_t *value(reader_t *r);

/* After an element of an array or a member of an object: ',' or the close. 1:
 * another follows, 0: the end, -1: an error (told). */
static int next(reader_t *r, unsigned char close)
{
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
        r->p++;
        return 1;
    }
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    fail(r, r->p, "'%c' or ',' expected", close);
    return -1;
}

/* Past an array's or an object's opening: true when it closes at once. */
static bool empty(reader_t *r, unsigned char close)
{
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    return false;
}

static json_t *array(reader_t *r)
{
    json_t *a = json_array();
    if (a == NULL)
        return fail(r, r->p, "out of memory");
    if (empty(r, ']'))
        return a;
    for (int more = 1; more == 1;) {
        json_t *v = value(r);
        if (v == NULL || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return v ? fail(r, r->p, "out of memory") : NULL;
        }
        if ((more = next(r, ']')) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *object(reader_t *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return fail(r, r->p, "out of memory");
    if (empty(r, '}'))
        return o;
    for (int more = 1; more == 1;) {
        skip_space(r);
        const unsigned char *at = r->p;
        const char *s;
        size_t n;
        if (r->p >= r->end || *r->p != '"') {
            json_decref(o);
            return fail(r, r->p, "string or '}' expected");
        }
        r->p++;
        if (string(r, &s, &n) != 0) {
            json_decref(o);
            return NULL;
        }
        char small[64], *key = n < sizeof(small) ? small : malloc(n + 1);
        if (key == NULL) {
            json_decref(o);
            return fail(r, at, "out of memory");
        }
        memcpy(key, s, n);
        key[n] = '\0';
        json_t *v = NULL;
        if (json_object_getn(o, key, n) != NULL) {
            fail(r, at, "duplicate object key");
        } else {
            skip_space(r);
            if (r->p >= r->end || *r->p != ':')
                fail(r, r->p, "':' expected");
            else if (r->p++, (v = value(r)) != NULL &&
                     json_object_setn_new_nocheck(o, key, n, v) != 0)
                v = fail(r, at, "out of memory");
        }
        if (key != small)
            free(key);
        if (v == NULL || (more = next(r, '}')) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static bool word(reader_t *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

static json_t *scalar_or_container(reader_t *r)
{
    json_t *v;
    switch (*r->p) {
    case '{': return object(r);
    case '[': return array(r);
    case '"': {
        const char *s;
        size_t n;
        r->p++;
        if (string(r, &s, &n) != 0)
            return NULL;
        return (v = json_stringn_nocheck(s, n)) ? v : fail(r, r->p, "out of memory");
    }
    case 't': return word(r, "true", 4) ? json_true() : fail(r, r->p, "invalid token");
    case 'f': return word(r, "false", 5) ? json_false() : fail(r, r->p, "invalid token");
    case 'n': return word(r, "null", 4) ? json_null() : fail(r, r->p, "invalid token");
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return number(r);
        return fail(r, r->p, "invalid token");
    }
}

/* Every value counts towards the depth, as in jansson: 2048 arrays nested
 * may hold nothing but each other. */
static json_t *value(reader_t *r)
{
    skip_space(r);
    if (r->p >= r->end)
        return fail(r, r->p, "unexpected end of input");
    if (++r->depth > CB_JSONR_MAX_DEPTH)
        return fail(r, r->p, "maximum parsing depth reached");
    json_t *v = scalar_or_container(r);
    r->depth--;
    return v;
}

json_t *cb_jsonr_loadb(const char *text, size_t len, cb_jsonr_error_t *err)
{
    reader_t r = {.start = (const unsigned char *)text, .p = (const unsigned char *)text,
                  .end = (const unsigned char *)text + len, .err = err};
    if (err)
        memset(err, 0, sizeof(*err));
    json_t *doc = NULL;
    skip_space(&r);
    if (r.p >= r.end || (*r.p != '{' && *r.p != '['))
        fail(&r, r.p, "'[' or '{' expected");
    else if ((doc = value(&r)) != NULL) {
        skip_space(&r);
        if (r.p < r.end) {
            fail(&r, r.p, "end of input expected");
            json_decref(doc);
            doc = NULL;
        }
    }
    free(r.buf);
    return doc;
}
