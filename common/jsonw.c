/*
 * jsonw.c — compact JSON text from a jansson document (see jsonw.h). Owns the
 * text only; building documents stays with the callers.
 */
#include "jsonw.h"
#include "error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(cb_jsonw_t *w, size_t more)
{
    if (w->len + more + 1 <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 1024;
    while (cap < w->len + more + 1)
        cap *= 2;
    char *grown = realloc(w->text, cap);
    if (grown == NULL)
        return CB_ERR_NOMEM;
    w->text = grown;
    w->cap = cap;
    return 0;
}

static int put(cb_jsonw_t *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0)
        return CB_ERR_NOMEM;
    memcpy(w->text + w->len, s, n);
    w->len += n;
    return 0;
}

/* As jansson's dump_string without flags: '"', '\\' and control characters
 * escaped (\b \f \n \r \t by name, the rest \u00XX), everything else as is. */
static int put_string(cb_jsonw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (reserve(w, n + 2) != 0)
        return CB_ERR_NOMEM;
    w->text[w->len++] = '"';
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (put(w, s + run, i - run) != 0)
            return CB_ERR_NOMEM;
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (put(w, esc, elen) != 0)
            return CB_ERR_NOMEM;
    }
    if (put(w, s + run, n - run) != 0 || put(w, "\"", 1) != 0)
        return CB_ERR_NOMEM;
    return 0;
}

static int put_value(cb_jsonw_t *w, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (put(w, "{", 1) != 0)
            return CB_ERR_NOMEM;
        int first = 1;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if ((!first && put(w, ",", 1) != 0) ||
                put_string(w, json_object_iter_key(it), json_object_iter_key_len(it)) != 0 ||
                put(w, ":", 1) != 0 || put_value(w, json_object_iter_value(it)) != 0)
                return CB_ERR_NOMEM;
            first = 0;
        }
        return put(w, "}", 1);
    }
    case JSON_ARRAY: {
        if (put(w, "[", 1) != 0)
            return CB_ERR_NOMEM;
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++)
            if ((i && put(w, ",", 1) != 0) || put_value(w, json_array_get(j, i)) != 0)
                return CB_ERR_NOMEM;
        return put(w, "]", 1);
    }
    case JSON_STRING: return put_string(w, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        char num[24];
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return put(w, num, (size_t)n);
    }
    case JSON_REAL: { /* jansson's own formatting (%.17g, trimmed) */
        char num[64];
        size_t n = json_dumpb(j, num, sizeof(num), JSON_ENCODE_ANY | JSON_COMPACT);
        if (n == 0 || n > sizeof(num))
            return CB_ERR_NOMEM;
        return put(w, num, n);
    }
    case JSON_TRUE: return put(w, "true", 4);
    case JSON_FALSE: return put(w, "false", 5);
    case JSON_NULL: return put(w, "null", 4);
    }
    return CB_ERR_INVALID;
}

int cb_jsonw_append(cb_jsonw_t *w, const json_t *j)
{
    size_t was = w->len;
    if (reserve(w, 0) != 0)
        return CB_ERR_NOMEM;
    int rc = put_value(w, j);
    if (rc != 0)
        w->len = was;
    w->text[w->len] = '\0';
    return rc;
}

char *cb_jsonw_dumps(const json_t *j)
{
    cb_jsonw_t w = {0};
    if (cb_jsonw_append(&w, j) != 0) {
        free(w.text);
        return NULL;
    }
    return w.text;
}

int cb_jsonw_string(cb_jsonw_t *w, const char *s, size_t n)
{
    return put_string(w, s, n);
}

int cb_jsonw_raw(cb_jsonw_t *w, const char *text, size_t n)
{
    return put(w, text, n);
}

void cb_jsonw_close(cb_jsonw_t *w)
{
    free(w->text);
    *w = (cb_jsonw_t){0};
}
