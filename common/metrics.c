/*
 * metrics.c — a flat list of series; registration is rare (start-up), updates
 * are a double add, rendering walks the list grouping series by family name.
 */
#include "metrics.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cb_metric {
    char *name;     /* with labels */
    char *help;
    bool gauge;
    double value;
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
        free(m->items[i]);
    }
    free(m->items);
    free(m);
    *pm = NULL;
}

static cb_metric_t *reg(cb_metrics_t *m, const char *name, const char *help, bool gauge)
{
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->items[i]->name, name) == 0)
            return m->items[i];
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        cb_metric_t **items = realloc(m->items, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        m->items = items;
        m->cap = cap;
    }
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
    c->gauge = gauge;
    m->items[m->count++] = c;
    return c;
}

cb_metric_t *cb_metrics_counter(cb_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, false);
}

cb_metric_t *cb_metrics_gauge(cb_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, true);
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

char *cb_metrics_render(const cb_metrics_t *m, size_t *len)
{
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
                c->name, c->gauge ? "gauge" : "counter");
        for (size_t j = i; j < m->count; j++) {
            const cb_metric_t *s = m->items[j];
            if (family_len(s->name) == flen && memcmp(s->name, c->name, flen) == 0)
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
