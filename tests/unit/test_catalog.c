/* test_catalog.c — the delegation catalogue CSV: the sample county's file,
 * dates in force, optional matters, and each kind of bad row refused by line
 * and column with nothing returned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cbtime.h"
#include "testutil.h"


static const Casebus__V1__Matter *find(const cb_matter_list_t *l, const char *code)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->matters[i]->code, code) == 0)
            return l->matters[i];
    return NULL;
}

static void sample_county_catalogue(void **state)
{
    (void)state;
    size_t len;
    char *text = tu_slurp("deploy/sample/catalog.csv", &len);
    assert_non_null(text);
    cb_matter_list_t l;
    cb_error_t e;
    assert_int_equal(cb_catalog_parse(text, len, &l, &e), 0);
    free(text);
    assert_int_equal(l.count, 40);
    int holders[5] = {0};
    for (size_t i = 0; i < l.count; i++)
        holders[l.matters[i]->holder]++;
    assert_int_equal(holders[CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_BASIC], 18);
    assert_int_equal(holders[CASEBUS__V1__MATTER_HOLDER__MATTER_HOLDER_TOWNSHIP_OPTIONAL], 8);
    const Casebus__V1__Matter *sand = find(&l, "330218001");
    assert_true(cb_matter_accepted_by(sand, "330723101000"));
    assert_false(cb_matter_accepted_by(sand, "330723103000"));
    assert_string_equal(sand->department_id, "wy-sw");
    /* 330219008 is in force to 2025-12-31 inclusive (CST). */
    const Casebus__V1__Matter *road = find(&l, "330219008");
    assert_true(cb_matter_in_force(road, tu_at("2025-12-31T23:59:59+08:00")));
    assert_false(cb_matter_in_force(road, tu_at("2026-01-01T00:00:00+08:00")));
    /* 330220006 starts on 2026-01-01 (CST), i.e. 2025-12-31T16:00Z. */
    const Casebus__V1__Matter *transport = find(&l, "330220006");
    assert_false(cb_matter_in_force(transport, tu_at("2025-12-31T15:59:59Z")));
    assert_true(cb_matter_in_force(transport, tu_at("2025-12-31T16:00:00Z")));
    cb_catalog_free(&l);
}

static void bad_rows_are_refused_by_line_and_column(void **state)
{
    (void)state;
    const char *head = "matter_code,name,domain,holder,department_id,townships,effective_from,"
                       "effective_to\n"
                       "M1,占道经营,市容,TOWNSHIP_BASIC,,,2024-01-01,\n";
    struct {
        const char *row, *want;
    } bad[] = {
        {"M 2,x,d,TOWNSHIP_BASIC,,,,\n", "line 3, column 1 (matter_code)"},
        {"M2,,d,TOWNSHIP_BASIC,,,,\n", "line 3, column 2 (name): name is empty"},
        {"M2,x,d,COUNTY,,,,\n", "line 3, column 4 (holder): unknown holder 'COUNTY'"},
        {"M2,x,d,DEPARTMENT,,,,\n", "line 3, column 5 (department_id): a DEPARTMENT matter needs"},
        {"M2,x,d,TOWNSHIP_BASIC,wy-zjj,,,\n", "column 5 (department_id): department_id is only"},
        {"M2,x,d,TOWNSHIP_BASIC,,330723101000,,\n", "column 6 (townships): townships are listed only"},
        {"M2,x,d,TOWNSHIP_OPTIONAL,,,,\n", "line 3, column 6 (townships): a TOWNSHIP_OPTIONAL"},
        {"M2,x,d,TOWNSHIP_OPTIONAL,,330723101000;3307231,,\n", "column 6 (townships): townships must be a 12-digit"},
        {"M2,x,d,TOWNSHIP_OPTIONAL,,330723101000;330723101000,,\n", "listed twice"},
        {"M2,x,d,TOWNSHIP_BASIC,,,2024-02-30,\n", "line 3, column 7 (effective_from)"},
        {"M2,x,d,TOWNSHIP_BASIC,,,2024-02-01,2024-01-01\n", "column 8 (effective_to): effective_to is before"},
        {"M1,x,d,TOWNSHIP_BASIC,,,,\n", "matter M1 already given on line 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s", head, bad[i].row);
        cb_matter_list_t l = {(void *)1, NULL, 99};
        cb_error_t e;
        assert_int_equal(cb_catalog_parse(text, strlen(text), &l, &e), CB_ERR_INVALID);
        if (strstr(e.message, bad[i].want) == NULL)
            fail_msg("row %zu: got '%s', want '%s'", i, e.message, bad[i].want);
        assert_int_equal(l.count, 0);
        assert_null(l.matters);
    }
    cb_matter_list_t l;
    cb_error_t e;
    const char *nohead = "matter_code,name\n";
    assert_int_equal(cb_catalog_parse(nohead, strlen(nohead), &l, &e), CB_ERR_INVALID);
    assert_non_null(strstr(e.message, "no 'holder' column"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_county_catalogue),
        cmocka_unit_test(bad_rows_are_refused_by_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
