/*
 * strindex.h — strings to numbers, for the checks an import makes on every
 * row (an id given twice, a parent that must exist) in O(1) each instead of a
 * scan of the rows before it. Keys are not copied: they must outlive the index.
 */
#ifndef CB_STRINDEX_H
#define CB_STRINDEX_H

#include <stddef.h>

#define CB_STRINDEX_NONE ((size_t)-1)

typedef struct cb_strindex_entry {
    const char *key;
    size_t value;
} cb_strindex_entry_t;

typedef struct cb_strindex {
    cb_strindex_entry_t *slots;
    size_t cap, count; /* cap a power of two, at most half full */
} cb_strindex_t;

/* The value of key, or CB_STRINDEX_NONE. */
size_t cb_strindex_get(const cb_strindex_t *ix, const char *key);
/* Adds key → value unless key is there: returns the value already there, or
 * CB_STRINDEX_NONE when it was added (or could not be: *nomem set). */
size_t cb_strindex_put(cb_strindex_t *ix, const char *key, size_t value, int *nomem);
void cb_strindex_free(cb_strindex_t *ix);

#endif
