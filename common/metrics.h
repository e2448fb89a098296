/*
 * metrics.h — counters and gauges a daemon keeps in memory and renders as
 * Prometheus text (`GET /metrics`, `casebus status`). A metric's name may carry
 * labels: `casebus_bus_fetches_total{producer="router"}`; series of one family
 * share one HELP/TYPE header. Not thread-safe: one loop owns them.
 */
#ifndef CB_METRICS_H
#define CB_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cb_metrics cb_metrics_t;
typedef struct cb_metric cb_metric_t;

cb_metrics_t *cb_metrics_new(void);
void cb_metrics_destroy(cb_metrics_t **m);

/* Registers (or finds) a series; returns NULL only when out of memory. The
 * pointer stays valid until cb_metrics_destroy. */
cb_metric_t *cb_metrics_counter(cb_metrics_t *m, const char *name, const char *help);
cb_metric_t *cb_metrics_gauge(cb_metrics_t *m, const char *name, const char *help);

/* A histogram of observations (e.g. seconds) with upper bounds in increasing
 * order; rendered as _bucket{le}, _sum and _count. */
cb_metric_t *cb_metrics_histogram(cb_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds);
/* 0.5 ms to 60 s, for answer, apply, delivery and lateness times in seconds. */
#define CB_METRICS_LATENCY_BUCKETS 16
extern const double cb_metrics_latency_buckets[CB_METRICS_LATENCY_BUCKETS];
void cb_metric_observe(cb_metric_t *h, double v);

/* All of these accept NULL (a metric that failed to register is not fatal). */
void cb_metric_inc(cb_metric_t *c);
void cb_metric_add(cb_metric_t *c, double v);
void cb_metric_set(cb_metric_t *g, double v);
double cb_metric_value(const cb_metric_t *c);

/* Prometheus text exposition format 0.0.4 into a new malloc'd string (caller
 * frees); NULL when out of memory. */
char *cb_metrics_render(const cb_metrics_t *m, size_t *len);

#endif
