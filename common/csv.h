/*
 * csv.h — reads the CSV files counties publish (RFC 4180: comma separated,
 * double-quoted fields with "" for a quote, CRLF or LF line ends, an optional
 * UTF-8 byte-order mark). Text must be UTF-8. Rows are handed to a callback with
 * the line number they start on, so errors can name line and column.
 */
#ifndef CB_CSV_H
#define CB_CSV_H

#include <stddef.h>

#include "error.h"
#include "utf8.h"

#define CB_CSV_MAX_FIELDS 64

typedef struct cb_csv_row {
    size_t line;                 /* 1-based line the row starts on */
    size_t nfields;
    const char *fields[CB_CSV_MAX_FIELDS]; /* NUL-terminated, trimmed of nothing */
} cb_csv_row_t;

/* Returns 0 to go on, or an error code to stop (returned by cb_csv_parse). */
typedef int (*cb_csv_row_fn)(void *ctx, const cb_csv_row_t *row, cb_error_t *err);

/* Parses text[0..len). Blank lines are skipped. Errors: CB_ERR_INVALID for an
 * unterminated quote, a quote inside an unquoted field, too many fields, or
 * invalid UTF-8, naming the line and column. */
int cb_csv_parse(const char *text, size_t len, cb_csv_row_fn on_row, void *ctx, cb_error_t *err);

/* Maps a header row onto known column names: col[c] gets the field index of
 * names[c], or -1 when absent. An unknown or repeated column is CB_ERR_INVALID
 * naming line and column (and listing the known names); so is the absence of
 * any of the first `required` names. */
int cb_csv_map_header(const cb_csv_row_t *row, const char *const *names, int ncols, int required,
                      int *col, cb_error_t *err);
/* The value of column index col (-1: absent) in row, "" when the row is short. */
const char *cb_csv_field(const cb_csv_row_t *row, int col);


#endif
