/*
 * metrics.c — a flat list of series; registration is rare (start-up), updates
 * are a double add, rendering walks the list grouping series by family name.
 */
#include "metrics.h"
#include "grow.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COUNTER, GAUGE, HISTOGRAM };

struct cb_metric {
    char *name;     /* with labels */
    char *help;
    int kind;
    double value;   /* counter, gauge; a histogram's sum */
    /* histograms: counts[i] observations <= bounds[i] (not cumulative), and
     * counts[nbounds] the ones above every bound */
    double *bounds;
    uint64_t *counts;
    size_t nbounds;
    uint64_t count;
};

struct cb_metrics {
    cb_metric_t **items;
    size_t count, cap;
};

cb_metrics_t *cb_metrics_new(void)
{
    return calloc(1, sizeof(cb_metrics_t));
}

void cb_metrics_destroy(cb_metrics_t **pm)
{
    cb_metrics_t *m = *pm;
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i]->name);
        free(m->items[i]->help);
        free(m->items[i]->bounds);
        free(m->items[i]->counts);
        free(m->items[i]);
    }
    free(m->items);
    free(m);
    *pm = NULL;
}

static cb_metric_t *reg(cb_metrics_t *m, const char *name, const char *help, int kind)
{
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->items[i]->name, name) == 0)
            return m->items[i];
    if (CB_GROW(m->items, m->cap, m->count, 32) != 0)
        return NULL;
    cb_metric_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->name = strdup(name);
    c->help = strdup(help ? help : "");
    if (!c->name || !c->help) {
        free(c->name);
        free(c->help);
        free(c);
        return NULL;
    }
    c->kind = kind;
    m->items[m->count++] = c;
    return c;
}

cb_metric_t *cb_metrics_counter(cb_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, COUNTER);
}

cb_metric_t *cb_metrics_gauge(cb_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, GAUGE);
}

const double cb_metrics_latency_buckets[CB_METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

cb_metric_t *cb_metrics_histogram(cb_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds)
{
    cb_metric_t *h = reg(m, name, help, HISTOGRAM);
    if (h == NULL || h->bounds != NULL)
        return h;
    h->bounds = malloc(nbounds * sizeof(*h->bounds));
    h->counts = calloc(nbounds + 1, sizeof(*h->counts));
    if (h->bounds == NULL || h->counts == NULL) {
        free(h->bounds);
        free(h->counts);
        h->bounds = NULL;
        h->counts = NULL;
        return NULL; /* registered, but never observed or rendered with buckets */
    }
    memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
    h->nbounds = nbounds;
    return h;
}

void cb_metric_observe(cb_metric_t *h, double v)
{
    if (h == NULL || h->counts == NULL)
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->value += v;
}

void cb_metric_inc(cb_metric_t *c)
{
    if (c)
        c->value += 1;
}

void cb_metric_add(cb_metric_t *c, double v)
{
    if (c)
        c->value += v;
}

void cb_metric_set(cb_metric_t *g, double v)
{
    if (g)
        g->value = v;
}

double cb_metric_value(const cb_metric_t *c)
{
    return c ? c->value : 0;
}

static size_t family_len(const char *name)
{
    const char *brace = strchr(name, '{');
    return brace ? (size_t)(brace - name) : strlen(name);
}

/* One histogram series: cumulative buckets (le), +Inf, _sum and _count, with
 * the series' own labels kept. */
static void render_histogram(FILE *f, const cb_metric_t *h)
{
    size_t flen = family_len(h->name);
    const char *labels = h->name[flen] == '{' ? h->name + flen + 1 : "";
    size_t llen = *labels ? strlen(labels) - 1 : 0; /* without the closing brace */
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += h->counts ? h->counts[i] : 0;
        char le[32];
        if (i < h->nbounds)
            snprintf(le, sizeof(le), "%.10g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        fprintf(f, "%.*s_bucket{%.*s%sle=\"%s\"} %llu\n", (int)flen, h->name, (int)llen, labels,
                llen ? "," : "", le, (unsigned long long)cum);
    }
    const char *rest = h->name + flen;
    fprintf(f, "%.*s_sum%s %.17g\n%.*s_count%s %llu\n", (int)flen, h->name, rest, h->value,
            (int)flen, h->name, rest, (unsigned long long)h->count);
}

char *cb_metrics_render(const cb_metrics_t *m, size_t *len)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < m->count; i++) {
        const cb_metric_t *c = m->items[i];
        size_t flen = family_len(c->name);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = family_len(m->items[j]->name) == flen &&
                   memcmp(m->items[j]->name, c->name, flen) == 0;
        if (seen)
            continue;
        fprintf(f, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)flen, c->name, c->help, (int)flen,
                c->name, types[c->kind]);
        for (size_t j = i; j < m->count; j++) {
            const cb_metric_t *s = m->items[j];
            if (family_len(s->name) != flen || memcmp(s->name, c->name, flen) != 0)
                continue;
            if (s->kind == HISTOGRAM)
                render_histogram(f, s);
            else
                fprintf(f, "%s %.17g\n", s->name, s->value);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}
