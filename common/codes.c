/*
 * codes.c — division and credit code checks (codes.h).
 */
#include "codes.h"

#include <string.h>

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool valid_province(const char *s)
{
    int p = (s[0] - '0') * 10 + (s[1] - '0');
    /* GB/T 2260 provinces: 11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82 */
    return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) || (p >= 31 && p <= 37) ||
           (p >= 41 && p <= 46) || (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
           p == 81 || p == 82;
}

int cb_check_county_code(const char *code, const char *field, cb_error_t *err)
{
    if (code == NULL || strlen(code) != 6 || !all_digits(code, 6))
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s must be a 6-digit county code (GB/T 2260), got '%s'", field,
                            code ? code : "");
    if (!valid_province(code) || memcmp(code + 4, "00", 2) == 0)
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s '%s' is not a county-level GB/T 2260 code", field, code);
    return 0;
}

int cb_check_township_code(const char *code, const char *field, cb_error_t *err)
{
    if (code == NULL || strlen(code) != 12 || !all_digits(code, 12))
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s must be a 12-digit township code, got '%s'", field,
                            code ? code : "");
    char county[7];
    memcpy(county, code, 6);
    county[6] = '\0';
    if (!valid_province(code) || memcmp(code + 4, "00", 2) == 0 ||
        memcmp(code + 6, "000", 3) == 0 || memcmp(code + 9, "000", 3) != 0)
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s '%s' is not a township-level code (county digits 1-6, township "
                            "digits 7-9 not 000, ending in 000)",
                            field, code);
    return 0;
}

int cb_check_division_code(const char *code, const char *field, cb_error_t *err)
{
    if (code != NULL && strlen(code) == 6)
        return cb_check_county_code(code, field, err);
    return cb_check_township_code(code, field, err);
}

static const char credit_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

static int credit_value(char c)
{
    const char *p = c ? strchr(credit_alphabet, c) : NULL;
    return p ? (int)(p - credit_alphabet) : -1;
}

char cb_credit_check_char(const char *first17)
{
    static const int weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = credit_value(first17[i]);
        if (v < 0)
            return '\0';
        sum += v * weights[i];
    }
    int c = 31 - sum % 31;
    return credit_alphabet[c == 31 ? 0 : c];
}

int cb_check_credit_code(const char *code, const char *field, cb_error_t *err)
{
    if (code == NULL || strlen(code) != 18)
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s must be an 18-character unified social credit code, got '%s'",
                            field, code ? code : "");
    for (int i = 0; i < 18; i++)
        if (credit_value(code[i]) < 0)
            return cb_error_set(err, CB_ERR_INVALID, field,
                                "%s '%s': character %d '%c' is not allowed (digits and "
                                "upper-case letters except I, O, Z, S, V)",
                                field, code, i + 1, code[i]);
    if (!all_digits(code + 2, 6))
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s '%s': characters 3-8 must be the division code digits", field,
                            code);
    char want = cb_credit_check_char(code);
    if (code[17] != want)
        return cb_error_set(err, CB_ERR_INVALID, field,
                            "%s '%s': check character is '%c', GB 32100-2015 requires '%c'",
                            field, code, code[17], want);
    return 0;
}
