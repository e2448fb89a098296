/*
 * codes.h — checks of the identifiers Chinese administration uses:
 *   administrative division codes (GB/T 2260 county codes, 6 digits, and the
 *   12-digit statistical codes of townships and streets),
 *   unified social credit codes (统一社会信用代码, GB 32100-2015: 18 characters,
 *   the last a check character).
 * Each check fills cb_error_t with the field name it is given and the rule.
 */
#ifndef CB_CODES_H
#define CB_CODES_H

#include <stdbool.h>

#include "error.h"

/* A county-level code: 6 digits, a known province prefix (11–82), county part
 * not 00. */
int cb_check_county_code(const char *code, const char *field, cb_error_t *err);
/* A township/street code: 12 digits, a valid county code, township part
 * (digits 7–9) not 000, and ending in 000 (township level, not a village). */
int cb_check_township_code(const char *code, const char *field, cb_error_t *err);
/* Either of the two. */
int cb_check_division_code(const char *code, const char *field, cb_error_t *err);
/* GB 32100-2015, including the check character. */
int cb_check_credit_code(const char *code, const char *field, cb_error_t *err);
/* The check character a 17-character credit code prefix needs ('\0' when the
 * prefix has a character outside the code's alphabet). */
char cb_credit_check_char(const char *first17);

#endif
