/* test_codes.c — division codes, credit codes (GB 32100), the CSV reader and
 * the organisation registry parser (all-or-nothing, errors by line and column). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "codes.h"
#include "utf8.h"
#include "csv.h"
#include "orgs.h"

static void division_codes(void **state)
{
    (void)state;
    cb_error_t e;
    assert_int_equal(cb_check_county_code("330723", "c", &e), 0);
    assert_int_equal(cb_check_county_code("990723", "c", &e), CB_ERR_INVALID); /* no province 99 */
    assert_int_equal(cb_check_county_code("330700", "c", &e), CB_ERR_INVALID); /* a city, not a county */
    assert_int_equal(cb_check_county_code("33072", "c", &e), CB_ERR_INVALID);
    assert_int_equal(cb_check_township_code("330723101000", "t", &e), 0);
    assert_int_equal(cb_check_township_code("330723000000", "t", &e), CB_ERR_INVALID); /* county itself */
    assert_int_equal(cb_check_township_code("330723101201", "t", &e), CB_ERR_INVALID); /* a village */
    assert_int_equal(cb_check_township_code("33072310100a", "t", &e), CB_ERR_INVALID);
    assert_string_equal(e.field, "t");
}

static void credit_codes(void **state)
{
    (void)state;
    cb_error_t e;
    /* Check characters computed by hand with GB 32100-2015's weights:
     * 91350100M000100Y43 is the standard's own worked example. */
    assert_int_equal(cb_check_credit_code("91350100M000100Y43", "cc", &e), 0);
    assert_int_equal(cb_check_credit_code("91350100M000100Y44", "cc", &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "requires '3'"));
    assert_int_equal(cb_check_credit_code("91350100M000100I43", "cc", &e), CB_ERR_INVALID); /* I */
    assert_int_equal(cb_check_credit_code("9135010", "cc", &e), CB_ERR_INVALID);
    assert_int_equal(cb_credit_check_char("91350100M000100Y4"), '3');
}

typedef struct rows {
    int n;
    char last[4][64];
    size_t line;
} rows_t;

static int on_row(void *ctx, const cb_csv_row_t *row, cb_error_t *err)
{
    (void)err;
    rows_t *r = ctx;
    r->n++;
    r->line = row->line;
    for (size_t i = 0; i < row->nfields && i < 4; i++)
        snprintf(r->last[i], sizeof(r->last[i]), "%s", row->fields[i]);
    return 0;
}

static void csv_quotes_newlines_bom_and_errors(void **state)
{
    (void)state;
    const char text[] = "\xef\xbb\xbf" "a,b,c\r\n\r\n1,\"x, \"\"quoted\"\"\",\"two\nlines\"\n2,,z";
    rows_t r = {0};
    cb_error_t e;
    assert_int_equal(cb_csv_parse(text, sizeof(text) - 1, on_row, &r, &e), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.line, 5); /* header 1, blank 2, quoted row 3-4, last row 5 */
    assert_string_equal(r.last[1], "");
    assert_string_equal(r.last[2], "z");
    const char quoted[] = "1,\"x, \"\"q\"\"\",\"two\nlines\"\n";
    memset(&r, 0, sizeof(r));
    assert_int_equal(cb_csv_parse(quoted, sizeof(quoted) - 1, on_row, &r, &e), 0);
    assert_string_equal(r.last[1], "x, \"q\"");
    assert_string_equal(r.last[2], "two\nlines");

    const char open[] = "a,b\n1,\"never closed\n";
    assert_int_equal(cb_csv_parse(open, sizeof(open) - 1, on_row, &r, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 2"));
    /* every row has the header's width: an extra field (an unquoted comma) is refused */
    const char extra[] = "a,b,c\n1,2,3\n4,5,6,7\n";
    assert_int_equal(cb_csv_parse(extra, sizeof(extra) - 1, on_row, &r, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 3: 4 fields, but the header has 3"));
    const char fewer[] = "a,b,c\n1,2\n";
    assert_int_equal(cb_csv_parse(fewer, sizeof(fewer) - 1, on_row, &r, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 2: 2 fields, but the header has 3"));
    const char latin1[] = "a,b\nok,caf\xe9\n";
    assert_int_equal(cb_csv_parse(latin1, sizeof(latin1) - 1, on_row, &r, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "line 2, column 7: not UTF-8"));
}

static void org_registry_good_and_each_bad_row(void **state)
{
    (void)state;
    const char *head = "org_id,kind,name,parent_id,division_code,credit_code\n";
    const char *good = "o1,COUNTY_DEPARTMENT,住建局,,330723,91350100M000100Y43\n"
                       "u1,INTERNAL_UNIT,住建局执法队,o1,330723,\n"
                       "t1,TOWNSHIP,履坦镇,,330723101000,\n";
    char text[2048];
    cb_org_list_t list;
    cb_error_t e;
    snprintf(text, sizeof(text), "%s%s", head, good);
    assert_int_equal(cb_orgs_parse(text, strlen(text), &list, &e), 0);
    assert_int_equal(list.count, 3);
    assert_int_equal(list.orgs[1]->kind, CASEBUS__V1__ORG_KIND__ORG_KIND_INTERNAL_UNIT);
    assert_string_equal(list.orgs[1]->parent_id, "o1");
    cb_orgs_free(&list);

    struct {
        const char *row, *want;
    } bad[] = {
        {"o2,MINISTRY,x,,330723,\n", "line 5, column 2 (kind): unknown kind 'MINISTRY'"},
        {"o2,TOWNSHIP,x,,330723,\n", "line 5, column 5 (division_code)"},
        {"o1,TOWNSHIP,x,,330723102000,\n", "already given on line 2"},
        {"o2,COUNTY_DEPARTMENT,,,330723,\n", "line 5, column 3 (name): name is empty"},
        {"u2,DISPATCHED_UNIT,x,,330723,\n", "need a parent_id"},
        {"u2,DISPATCHED_UNIT,x,nobody,330723,\n", "'nobody' is not an org_id in this file"},
        {"u2,DISPATCHED_UNIT,x,u1,330723,\n", "is itself a unit"},
        {"o2,COUNTY_DEPARTMENT,x,,330723,91350100M000100Y44\n", "line 5, column 6 (credit_code)"},
        {"o 2,COUNTY_DEPARTMENT,x,,330723,\n", "line 5, column 1 (org_id)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s%s", head, good, bad[i].row);
        list.count = 99;
        assert_int_equal(cb_orgs_parse(text, strlen(text), &list, &e), CB_ERR_INVALID);
        if (strstr(e.message, bad[i].want) == NULL)
            fail_msg("row %zu: got '%s', want '%s'", i, e.message, bad[i].want);
        assert_int_equal(list.count, 0); /* all or nothing */
        assert_null(list.orgs);
    }
    const char *nohead = "org_id,name\n";
    assert_int_equal(cb_orgs_parse(nohead, strlen(nohead), &list, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "no 'kind' column"));
}

static void utf8_cuts_never_split_a_character(void **state)
{
    (void)state;
    char out[16];
    cb_utf8_copy(out, sizeof(out), "a撤撤撤撤撤撤"); /* 1 + 6 × 3 bytes; 15 fit: 1 + 4 whole */
    assert_string_equal(out, "a撤撤撤撤");
    cb_utf8_copy(out, 3, "撤");
    assert_string_equal(out, "");
    cb_utf8_copy(out, sizeof(out), "abc");
    assert_string_equal(out, "abc");
    char cut[] = "ok \xe6\x92"; /* an earlier snprintf cut inside 撤 */
    assert_int_equal(cb_utf8_trim_partial(cut), 3);
    assert_string_equal(cut, "ok ");
    char whole[] = "ok 撤";
    assert_int_equal(cb_utf8_trim_partial(whole), 6);
    char four[] = "x\xf0\x9f\x98"; /* 3 of a 4-byte emoji */
    assert_int_equal(cb_utf8_trim_partial(four), 1);
    char lone[] = "x\xc3";
    assert_int_equal(cb_utf8_trim_partial(lone), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(division_codes),
        cmocka_unit_test(utf8_cuts_never_split_a_character),
        cmocka_unit_test(credit_codes),
        cmocka_unit_test(csv_quotes_newlines_bom_and_errors),
        cmocka_unit_test(org_registry_good_and_each_bad_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
