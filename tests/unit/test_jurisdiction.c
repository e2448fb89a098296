/* test_jurisdiction.c — DOMAIN.md's five routing rules, in order, over the
 * sample county (deploy/sample/orgs.csv and catalog.csv), table-driven; a
 * catalogue change between two discovery times routes two cases differently;
 * an optional matter accepted by one township and not another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cbtime.h"
#include "orgs.h"
#include "router/registry.h"
#include "testutil.h"


/* A new string: text with its first `from` replaced by `to` (which must be there). */
static char *replace_once(const char *text, const char *from, const char *to)
{
    const char *hit = strstr(text, from);
    assert_non_null(hit);
    size_t head = (size_t)(hit - text), n = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, hit + strlen(from));
    return out;
}

/* An import as router will keep it: parsed, packed into its event, unpacked. */
static void add_catalog(router_registry_t *reg, const char *text, size_t len, uint32_t version,
                        const char *from)
{
    cb_matter_list_t l;
    cb_error_t e;
    assert_int_equal(cb_catalog_parse(text, len, &l, &e), 0);
    Casebus__V1__CatalogImported ci = CASEBUS__V1__CATALOG_IMPORTED__INIT;
    ci.version = version;
    ci.matters = l.matters;
    ci.n_matters = l.count;
    ci.effective_from_ms = tu_at(from);
    size_t n = casebus__v1__catalog_imported__get_packed_size(&ci);
    uint8_t *buf = malloc(n);
    casebus__v1__catalog_imported__pack(&ci, buf);
    Casebus__V1__CatalogImported *owned = casebus__v1__catalog_imported__unpack(NULL, n, buf);
    free(buf);
    cb_catalog_free(&l);
    assert_int_equal(router_registry_add_catalog(reg, &owned, &e), 0);
}

static int setup(void **state)
{
    router_registry_t *reg = router_registry_new();
    size_t len;
    char *text = tu_slurp("deploy/sample/orgs.csv", &len);
    assert_non_null(text);
    cb_org_list_t orgs;
    cb_error_t e;
    if (cb_orgs_parse(text, len, &orgs, &e) != 0)
        return -1;
    free(text);
    Casebus__V1__OrgsImported oi = CASEBUS__V1__ORGS_IMPORTED__INIT;
    oi.orgs = orgs.orgs;
    oi.n_orgs = orgs.count;
    size_t n = casebus__v1__orgs_imported__get_packed_size(&oi);
    uint8_t *buf = malloc(n);
    casebus__v1__orgs_imported__pack(&oi, buf);
    Casebus__V1__OrgsImported *owned = casebus__v1__orgs_imported__unpack(NULL, n, buf);
    free(buf);
    cb_orgs_free(&orgs);
    router_registry_set_orgs(reg, &owned, &e);

    /* Version 1 from 2024-01-01; version 2 from 2026-06-01 moves restaurant
     * fumes (330219003) from the enforcement bureau to every township. */
    text = tu_slurp("deploy/sample/catalog.csv", &len);
    assert_non_null(text);
    add_catalog(reg, text, len, 1, "2024-01-01");
    char *v2 = replace_once(text, "330219003,对餐饮服务业油烟超标排放的行政处罚,生态环境,ENFORCEMENT_BUREAU",
                            "330219003,对餐饮服务业油烟超标排放的行政处罚,生态环境,TOWNSHIP_BASIC");
    add_catalog(reg, v2, strlen(v2), 2, "2026-06-01");
    free(v2);
    free(text);
    *state = reg;
    return 0;
}

static int teardown(void **state)
{
    router_registry_t *reg = *state;
    router_registry_destroy(&reg);
    return 0;
}

typedef struct route_case {
    const char *name;
    const char *matter, *township, *discovered;
    bool crime;
    int rule;
    const char *competent;
    const char *copy;        /* NULL: none */
    uint32_t version;
} route_case_t;

#define R(x) CASEBUS__V1__JURISDICTION_RULE__JURISDICTION_RULE_##x

static const route_case_t table[] = {
    {"suspected crime goes to public security, copied to the procuratorate", "330217001",
     "330723101000", "2026-03-02T10:00:00+08:00", true, R(SUSPECTED_CRIME), "wy-gaj", "wy-jcy", 1},
    {"basic matter goes to the township it happened in", "330217001", "330723101000",
     "2026-03-02T10:00:00+08:00", false, R(TOWNSHIP), "wy-lt", NULL, 1},
    {"same basic matter in another township", "330217001", "330723201000",
     "2026-03-02T10:00:00+08:00", false, R(TOWNSHIP), "wy-dt", NULL, 1},
    {"optional matter in a township that accepted it", "330218001", "330723101000",
     "2026-03-02T10:00:00+08:00", false, R(TOWNSHIP), "wy-lt", NULL, 1},
    {"optional matter where it was not accepted stays with its department", "330218001",
     "330723103000", "2026-03-02T10:00:00+08:00", false, R(DEPARTMENT), "wy-sw", NULL, 1},
    {"optional matter with no department, not accepted: the enforcement bureau", "330218004",
     "330723101000", "2026-03-02T10:00:00+08:00", false, R(ENFORCEMENT_BUREAU), "wy-zhzf", NULL,
     1},
    {"matter kept by the enforcement bureau", "330219001", "330723101000",
     "2026-03-02T10:00:00+08:00", false, R(ENFORCEMENT_BUREAU), "wy-zhzf", NULL, 1},
    {"matter kept by a department", "330220001", "330723102000", "2026-03-02T10:00:00+08:00",
     false, R(DEPARTMENT), "wy-scjg", NULL, 1},
    {"unknown matter: manual dispatch by the command platform", "999999999", "330723101000",
     "2026-03-02T10:00:00+08:00", false, R(MANUAL_DISPATCH), "wy-zhzf", NULL, 1},
    {"unknown township: manual dispatch", "330217001", "330723999000",
     "2026-03-02T10:00:00+08:00", false, R(MANUAL_DISPATCH), "wy-zhzf", NULL, 1},
    {"matter not yet in force at discovery", "330220006", "330723101000",
     "2025-06-01T10:00:00+08:00", false, R(MANUAL_DISPATCH), "wy-zhzf", NULL, 1},
    {"same matter once in force", "330220006", "330723101000", "2026-02-01T10:00:00+08:00",
     false, R(DEPARTMENT), "wy-jtys", NULL, 1},
    {"matter whose delegation ended before discovery", "330219008", "330723101000",
     "2026-02-01T10:00:00+08:00", false, R(MANUAL_DISPATCH), "wy-zhzf", NULL, 1},
    {"catalogue v1 in force: fumes go to the enforcement bureau", "330219003", "330723101000",
     "2026-05-31T23:59:59+08:00", false, R(ENFORCEMENT_BUREAU), "wy-zhzf", NULL, 1},
    {"catalogue v2 in force: the same matter goes to the township", "330219003", "330723101000",
     "2026-06-01T00:00:00+08:00", false, R(TOWNSHIP), "wy-lt", NULL, 2},
    {"before any catalogue: manual dispatch", "330217001", "330723101000",
     "2023-12-31T10:00:00+08:00", false, R(MANUAL_DISPATCH), "wy-zhzf", NULL, 0},
};

static void five_rules_over_the_sample_county(void **state)
{
    router_registry_t *reg = *state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const route_case_t *tc = &table[i];
        Casebus__V1__CaseSummary c = CASEBUS__V1__CASE_SUMMARY__INIT;
        c.matter_code = (char *)tc->matter;
        c.township_code = (char *)tc->township;
        c.discovered_at_ms = tu_at(tc->discovered);
        c.suspected_crime = tc->crime;
        router_resolution_t r;
        cb_error_t e;
        assert_int_equal(router_resolve(reg, &c, &r, &e), 0);
        if ((int)r.rule != tc->rule || strcmp(r.competent->org_id, tc->competent) != 0 ||
            r.catalog_version != tc->version ||
            (tc->copy ? r.ncopies != 1 || strcmp(r.copies[0]->org_id, tc->copy) != 0
                      : r.ncopies != 0) ||
            r.failed != (tc->rule == R(MANUAL_DISPATCH)))
            fail_msg("%s: got rule %d to %s (v%u, %zu copies, failed=%d, reason '%s')", tc->name,
                     r.rule, r.competent->org_id, r.catalog_version, r.ncopies, r.failed,
                     r.reason);
        if (r.failed && r.reason[0] == '\0')
            fail_msg("%s: manual dispatch without a reason", tc->name);
    }
}

static void no_enforcement_bureau_is_an_error_not_a_drop(void **state)
{
    (void)state;
    router_registry_t *empty = router_registry_new();
    Casebus__V1__CaseSummary c = CASEBUS__V1__CASE_SUMMARY__INIT;
    c.matter_code = "330217001";
    c.township_code = "330723101000";
    router_resolution_t r;
    cb_error_t e;
    assert_int_equal(router_resolve(empty, &c, &r, &e), CB_ERR_CONFIG);
    assert_non_null(strstr(e.message, "ENFORCEMENT_BUREAU"));
    router_registry_destroy(&empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(five_rules_over_the_sample_county, setup, teardown),
        cmocka_unit_test(no_enforcement_bureau_is_an_error_not_a_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
