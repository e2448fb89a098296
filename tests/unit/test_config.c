/* test_config.c — the deployment INI file and metrics rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"

static const char *sample = "[intake]\n"
                            "data_dir = var/intake\n"
                            "map_size = 2G\n"
                            "max_batch = 512\n"
                            "fsync = yes\n"
                            "[deadline]\n"
                            "pull = intake ipc://var/intake.bus\n"
                            "pull = router ipc://var/router.bus\n";

static void reads_values_sizes_and_repeated_keys(void **state)
{
    (void)state;
    cb_config_t *cfg = NULL;
    cb_error_t err;
    assert_int_equal(cb_config_parse(&cfg, sample, &err), 0);
    assert_string_equal(cb_config_get(cfg, "intake", "data_dir", NULL), "var/intake");
    assert_string_equal(cb_config_get(cfg, "intake", "absent", "dflt"), "dflt");
    uint64_t v;
    assert_int_equal(cb_config_get_size(cfg, "intake", "map_size", 0, 1, UINT64_MAX, &v, &err), 0);
    assert_true(v == 2ULL << 30);
    assert_int_equal(cb_config_get_u64(cfg, "intake", "max_batch", 1, 1, 4096, &v, &err), 0);
    assert_int_equal(v, 512);
    bool b;
    assert_int_equal(cb_config_get_bool(cfg, "intake", "fsync", false, &b, &err), 0);
    assert_true(b);
    const char *pulls[4];
    assert_int_equal(cb_config_get_all(cfg, "deadline", "pull", pulls, 4), 2);
    assert_string_equal(pulls[1], "router ipc://var/router.bus");
    assert_true(cb_config_has_section(cfg, "deadline"));
    assert_false(cb_config_has_section(cfg, "notify"));
    cb_config_destroy(&cfg);
    assert_null(cfg);
}

static void errors_name_section_key_and_rule(void **state)
{
    (void)state;
    cb_config_t *cfg = NULL;
    cb_error_t err;
    assert_int_equal(cb_config_parse(&cfg, "[a]\nn = 12x\ns = 5Q\nm = 9000\nb = maybe\n", &err), 0);
    uint64_t v;
    bool b;
    assert_int_equal(cb_config_get_u64(cfg, "a", "n", 0, 0, 100, &v, &err), CB_ERR_CONFIG);
    assert_string_equal(err.field, "n");
    assert_non_null(strstr(err.message, "[a] n = '12x'"));
    assert_int_equal(cb_config_get_size(cfg, "a", "s", 0, 0, UINT64_MAX, &v, &err), CB_ERR_CONFIG);
    assert_int_equal(cb_config_get_u64(cfg, "a", "m", 0, 0, 100, &v, &err), CB_ERR_CONFIG);
    assert_non_null(strstr(err.message, "between 0 and 100"));
    assert_int_equal(cb_config_get_bool(cfg, "a", "b", false, &b, &err), CB_ERR_CONFIG);
    cb_config_destroy(&cfg);

    assert_int_equal(cb_config_parse(&cfg, "[a]\nok = 1\nthis line is wrong\n", &err),
                     CB_ERR_CONFIG);
    assert_non_null(strstr(err.message, ":3:"));
    assert_true(cb_config_load(&cfg, "/nonexistent/casebus.conf", &err) < 0);
    assert_non_null(strstr(err.message, "cannot open"));
}

static void metrics_render_as_prometheus_text(void **state)
{
    (void)state;
    cb_metrics_t *m = cb_metrics_new();
    cb_metric_t *a = cb_metrics_counter(m, "casebus_x_total{producer=\"intake\"}", "Things.");
    cb_metric_t *b = cb_metrics_counter(m, "casebus_x_total{producer=\"router\"}", "Things.");
    cb_metric_t *g = cb_metrics_gauge(m, "casebus_open", "Open ones.");
    assert_ptr_equal(cb_metrics_counter(m, "casebus_x_total{producer=\"intake\"}", ""), a);
    cb_metric_inc(a);
    cb_metric_add(b, 41);
    cb_metric_set(g, 7);
    cb_metric_inc(NULL); /* a metric that failed to register is harmless */
    size_t len;
    char *text = cb_metrics_render(m, &len);
    assert_string_equal(text, "# HELP casebus_x_total Things.\n"
                              "# TYPE casebus_x_total counter\n"
                              "casebus_x_total{producer=\"intake\"} 1\n"
                              "casebus_x_total{producer=\"router\"} 41\n"
                              "# HELP casebus_open Open ones.\n"
                              "# TYPE casebus_open gauge\n"
                              "casebus_open 7\n");
    free(text);
    cb_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_values_sizes_and_repeated_keys),
        cmocka_unit_test(errors_name_section_key_and_rule),
        cmocka_unit_test(metrics_render_as_prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
