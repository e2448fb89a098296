/*
 * strindex.c — open addressing, linear probing, FNV-1a (strindex.h).
 */
#include "strindex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

size_t cb_strindex_get(const cb_strindex_t *ix, const char *key)
{
    if (ix->cap == 0)
        return CB_STRINDEX_NONE;
    for (size_t i = hash(key) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
        if (ix->slots[i].key == NULL)
            return CB_STRINDEX_NONE;
        if (strcmp(ix->slots[i].key, key) == 0)
            return ix->slots[i].value;
    }
}

static void place(cb_strindex_entry_t *slots, size_t cap, cb_strindex_entry_t e)
{
    size_t i = hash(e.key) & (cap - 1);
    while (slots[i].key)
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

size_t cb_strindex_put(cb_strindex_t *ix, const char *key, size_t value, int *nomem)
{
    *nomem = 0;
    size_t have = cb_strindex_get(ix, key);
    if (have != CB_STRINDEX_NONE)
        return have;
    if ((ix->count + 1) * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        cb_strindex_entry_t *slots = calloc(cap, sizeof(*slots));
        if (slots == NULL) {
            *nomem = 1;
            return CB_STRINDEX_NONE;
        }
        for (size_t i = 0; i < ix->cap; i++)
            if (ix->slots[i].key)
                place(slots, cap, ix->slots[i]);
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
    }
    place(ix->slots, ix->cap, (cb_strindex_entry_t){key, value});
    ix->count++;
    return CB_STRINDEX_NONE;
}

void cb_strindex_free(cb_strindex_t *ix)
{
    free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}
