/*
 * csv.c — a single-pass RFC 4180 reader (csv.h). Fields are copied into one
 * scratch buffer per row; the callback sees pointers into it. Every row has the
 * header's number of fields, or the file is refused at the first that has not.
 */
#include "csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int cb_csv_parse(const char *text, size_t len, cb_csv_row_fn on_row, void *ctx, cb_error_t *err)
{
    size_t bad;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (!cb_utf8_valid(text, len, &bad)) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < bad; i++, col++)
            if (text[i] == '\n')
                line++, col = 0;
        return cb_error_set(err, CB_ERR_INVALID, "", "line %zu, column %zu: not UTF-8 text",
                            line, col);
    }
    char *buf = malloc(len + CB_CSV_MAX_FIELDS + 1);
    if (buf == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = 0;
    size_t i = 0, line = 1, width = 0; /* width: the first row's (the header's) field count */
    while (i < len) {
        cb_csv_row_t row = {.line = line};
        size_t out = 0;
        bool row_done = false, blank = true;
        while (!row_done) {
            if (row.nfields == CB_CSV_MAX_FIELDS) {
                rc = cb_error_set(err, CB_ERR_INVALID, "", "line %zu: more than %d fields",
                                  row.line, CB_CSV_MAX_FIELDS);
                goto out;
            }
            row.fields[row.nfields++] = buf + out;
            if (i < len && text[i] == '"') {
                blank = false;
                size_t start_line = line;
                i++;
                for (;;) {
                    if (i >= len) {
                        rc = cb_error_set(err, CB_ERR_INVALID, "",
                                          "line %zu, field %zu: quote opened here is never closed",
                                          start_line, row.nfields);
                        goto out;
                    }
                    if (text[i] == '"') {
                        if (i + 1 < len && text[i + 1] == '"') {
                            buf[out++] = '"';
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (text[i] == '\n')
                        line++;
                    buf[out++] = text[i++];
                }
                if (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
                    rc = cb_error_set(err, CB_ERR_INVALID, "",
                                      "line %zu, field %zu: text after a closing quote", line,
                                      row.nfields);
                    goto out;
                }
            } else {
                while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
                    if (text[i] == '"') {
                        rc = cb_error_set(err, CB_ERR_INVALID, "",
                                          "line %zu, field %zu: a quote inside an unquoted field",
                                          line, row.nfields);
                        goto out;
                    }
                    blank = false;
                    buf[out++] = text[i++];
                }
            }
            buf[out++] = '\0';
            if (i < len && text[i] == ',') {
                blank = false;
                i++;
                continue;
            }
            if (i < len && text[i] == '\r')
                i++;
            if (i < len && text[i] == '\n') {
                i++;
                line++;
            }
            row_done = true;
        }
        if (blank)
            continue;
        if (width == 0) {
            width = row.nfields;
        } else if (row.nfields != width) {
            rc = cb_error_set(err, CB_ERR_INVALID, "",
                              "line %zu: %zu fields, but the header has %zu (a comma too %s, or "
                              "a field with a comma that is not quoted?)",
                              row.line, row.nfields, width, row.nfields > width ? "many" : "few");
            goto out;
        }
        if ((rc = on_row(ctx, &row, err)) != 0)
            goto out;
    }
out:
    free(buf);
    return rc;
}

int cb_csv_map_header(const cb_csv_row_t *row, const char *const *names, int ncols, int required,
                      int *col, cb_error_t *err)
{
    char known[512] = "";
    for (int c = 0; c < ncols; c++) {
        col[c] = -1;
        strncat(known, c ? ", " : "", sizeof(known) - strlen(known) - 1);
        strncat(known, names[c], sizeof(known) - strlen(known) - 1);
    }
    for (size_t f = 0; f < row->nfields; f++) {
        int found = -1;
        for (int c = 0; c < ncols; c++)
            if (strcmp(row->fields[f], names[c]) == 0)
                found = c;
        if (found < 0)
            return cb_error_set(err, CB_ERR_INVALID, row->fields[f],
                                "line %zu, column %zu: unknown column '%s' (expected %s)",
                                row->line, f + 1, row->fields[f], known);
        if (col[found] >= 0)
            return cb_error_set(err, CB_ERR_INVALID, row->fields[f],
                                "line %zu, column %zu: column '%s' given twice", row->line, f + 1,
                                row->fields[f]);
        col[found] = (int)f;
    }
    for (int c = 0; c < required; c++)
        if (col[c] < 0)
            return cb_error_set(err, CB_ERR_INVALID, names[c],
                                "line %zu: the header has no '%s' column", row->line, names[c]);
    return 0;
}

const char *cb_csv_field(const cb_csv_row_t *row, int col)
{
    return col >= 0 && (size_t)col < row->nfields ? row->fields[col] : "";
}
