/* test_config.c — the deployment INI file and metrics rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
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

static void histograms_render_cumulative_buckets_with_labels(void **state)
{
    (void)state;
    cb_metrics_t *m = cb_metrics_new();
    const double bounds[] = {0.01, 0.1};
    cb_metric_t *h = cb_metrics_histogram(m, "casebus_answer_seconds{door=\"http\"}",
                                          "Answers.", bounds, 2);
    cb_metric_t *plain = cb_metrics_histogram(m, "casebus_lateness_seconds", "Late.", bounds, 2);
    cb_metric_observe(h, 0.005);
    cb_metric_observe(h, 0.01); /* on a bound: counted in it (le) */
    cb_metric_observe(h, 0.05);
    cb_metric_observe(h, 3);
    cb_metric_observe(plain, 0.2);
    cb_metric_observe(NULL, 1);
    char *text = cb_metrics_render(m, NULL);
    assert_string_equal(text, "# HELP casebus_answer_seconds Answers.\n"
                              "# TYPE casebus_answer_seconds histogram\n"
                              "casebus_answer_seconds_bucket{door=\"http\",le=\"0.01\"} 2\n"
                              "casebus_answer_seconds_bucket{door=\"http\",le=\"0.1\"} 3\n"
                              "casebus_answer_seconds_bucket{door=\"http\",le=\"+Inf\"} 4\n"
                              "casebus_answer_seconds_sum{door=\"http\"} 3.0649999999999999\n"
                              "casebus_answer_seconds_count{door=\"http\"} 4\n"
                              "# HELP casebus_lateness_seconds Late.\n"
                              "# TYPE casebus_lateness_seconds histogram\n"
                              "casebus_lateness_seconds_bucket{le=\"0.01\"} 0\n"
                              "casebus_lateness_seconds_bucket{le=\"0.1\"} 0\n"
                              "casebus_lateness_seconds_bucket{le=\"+Inf\"} 1\n"
                              "casebus_lateness_seconds_sum 0.20000000000000001\n"
                              "casebus_lateness_seconds_count 1\n");
    free(text);
    cb_metrics_destroy(&m);
}

static void events_name_the_county(void **state)
{
    (void)state;
    cb_config_t *cfg;
    cb_error_t err;
    cb_cloudevents_t ce;
    assert_int_equal(cb_config_parse(&cfg, "[events]\ndivision_code = 330723\n", &err), 0);
    assert_int_equal(cb_cloudevents_conf(&ce, cfg, &err), 0);
    assert_string_equal(ce.type_prefix, "cn.gov.330723.casebus.v1");
    cb_config_destroy(&cfg);
    const char *bad[][2] = {{"[notify]\n", "division_code"},
                            {"[events]\ndivision_code = 33072\n", "division_code"},
                            {"[events]\ndivision_code = 330723\ntype_prefix = Cn.gov\n", "type_prefix"},
                            {"[events]\ndivision_code = 330723\ntype_prefix = cn..x\n", "type_prefix"},
                            {"[events]\ndivision_code = 330723\ntype_prefix = cn.x-\n", "type_prefix"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cb_config_parse(&cfg, bad[i][0], &err), 0);
        assert_int_equal(cb_cloudevents_conf(&ce, cfg, &err), CB_ERR_CONFIG);
        assert_string_equal(err.field, bad[i][1]);
        cb_config_destroy(&cfg);
    }
    assert_int_equal(cb_config_parse(&cfg, "[events]\ndivision_code = 330723101000\n"
                                           "type_prefix = cn.gov.wuyi.casebus.v1\n", &err), 0);
    assert_int_equal(cb_cloudevents_conf(&ce, cfg, &err), 0);
    assert_string_equal(ce.division_code, "330723101000");
    assert_string_equal(ce.type_prefix, "cn.gov.wuyi.casebus.v1");
    cb_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_values_sizes_and_repeated_keys),
        cmocka_unit_test(errors_name_section_key_and_rule),
        cmocka_unit_test(metrics_render_as_prometheus_text),
        cmocka_unit_test(histograms_render_cumulative_buckets_with_labels),
        cmocka_unit_test(events_name_the_county),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
