/*
 * grow.h — room for one more element at the end of an array that doubles.
 *
 *   if (CB_GROW(v, cap, n, 64) != 0) return out_of_memory;
 *   v[n++] = x;
 *
 * On failure the array and its capacity are as they were.
 */
#ifndef CB_GROW_H
#define CB_GROW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* *slot holds the array's pointer (read and written through memcpy, so that any
 * element type can be passed). */
static inline int cb_grow(void *slot, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : first;
    if (c <= n || c > SIZE_MAX / elem)
        return -1;
    void *old, *grown;
    memcpy(&old, slot, sizeof(old));
    if ((grown = realloc(old, c * elem)) == NULL)
        return -1;
    memcpy(slot, &grown, sizeof(grown));
    *cap = c;
    return 0;
}

#define CB_GROW(arr, cap, n, first) cb_grow(&(arr), &(cap), (n), sizeof(*(arr)), (first))

#endif
