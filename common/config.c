/*
 * config.c — INI parsing through libinih into a flat list of (section, key,
 * value) entries; lookups scan it (a deployment file has tens of lines).
 */
#include "config.h"
#include "grow.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct cb_config_entry {
    char *section;
    char *key;
    char *value;
    int line;
} cb_config_entry_t;

struct cb_config {
    char *path;
    cb_config_entry_t *entries;
    size_t count, cap;
    int line;        /* lines seen, for error messages */
    bool oom;
};

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    cb_config_t *cfg = user;
    if (key == NULL) /* a bare section header (INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    if (CB_GROW(cfg->entries, cfg->cap, cfg->count, 32) != 0) {
        cfg->oom = true;
        return 0;
    }
    cb_config_entry_t *e = &cfg->entries[cfg->count];
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->section || !e->key || !e->value) {
        free(e->section);
        free(e->key);
        free(e->value);
        cfg->oom = true;
        return 0;
    }
    cfg->count++;
    return 1;
}

static int finish(cb_config_t *cfg, int rc, const char *where, cb_config_t **out,
                  cb_error_t *err)
{
    if (rc == 0 && !cfg->oom) {
        *out = cfg;
        return 0;
    }
    int code = cfg->oom ? CB_ERR_NOMEM : CB_ERR_CONFIG;
    if (cfg->oom)
        cb_error_set(err, code, "", "out of memory reading %s", where);
    else if (rc == -1)
        code = cb_error_set(err, -errno ? -errno : CB_ERR_CONFIG, "", "cannot open %s: %s",
                            where, strerror(errno));
    else
        cb_error_set(err, code, "", "%s:%d: not a section header or key = value line", where,
                     rc);
    cb_config_destroy(&cfg);
    return code;
}

int cb_config_load(cb_config_t **out, const char *path, cb_error_t *err)
{
    cb_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup(path)) == NULL) {
        free(cfg);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    errno = 0;
    int rc = ini_parse(path, on_entry, cfg);
    return finish(cfg, rc, path, out, err);
}

int cb_config_parse(cb_config_t **out, const char *text, cb_error_t *err)
{
    cb_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup("")) == NULL) {
        free(cfg);
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    int rc = ini_parse_string(text, on_entry, cfg);
    return finish(cfg, rc, "<config text>", out, err);
}

void cb_config_destroy(cb_config_t **pcfg)
{
    cb_config_t *cfg = *pcfg;
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg->path);
    free(cfg);
    *pcfg = NULL;
}

const char *cb_config_path(const cb_config_t *cfg)
{
    return cfg->path;
}

int cb_config_path_near(const cb_config_t *cfg, const char *section, const char *key,
                        const char *file, char *out, size_t n)
{
    const char *v = cb_config_get(cfg, section, key, NULL);
    int len;
    if (v != NULL) {
        len = snprintf(out, n, "%s", v);
    } else {
        const char *path = cb_config_path(cfg);
        const char *slash = strrchr(path, '/');
        len = slash ? snprintf(out, n, "%.*s/%s", (int)(slash - path), path, file)
                    : snprintf(out, n, "%s", file);
    }
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

const char *cb_config_get(const cb_config_t *cfg, const char *section, const char *key,
                          const char *def)
{
    const char *found = def;
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->entries[i].section, section) == 0 && strcmp(cfg->entries[i].key, key) == 0)
            found = cfg->entries[i].value;
    return found;
}

size_t cb_config_get_all(const cb_config_t *cfg, const char *section, const char *key,
                         const char **vals, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->count; i++) {
        if (strcmp(cfg->entries[i].section, section) || strcmp(cfg->entries[i].key, key))
            continue;
        if (n < max)
            vals[n] = cfg->entries[i].value;
        n++;
    }
    return n;
}

bool cb_config_entry(const cb_config_t *cfg, size_t i, const char **section, const char **key)
{
    if (i >= cfg->count)
        return false;
    *section = cfg->entries[i].section;
    *key = cfg->entries[i].key;
    return true;
}

bool cb_config_has_section(const cb_config_t *cfg, const char *section)
{
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->entries[i].section, section) == 0)
            return true;
    return false;
}

static int parse_number(const cb_config_t *cfg, const char *section, const char *key,
                        uint64_t def, uint64_t min, uint64_t max, bool sized, uint64_t *out,
                        cb_error_t *err)
{
    const char *v = cb_config_get(cfg, section, key, NULL);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    if (v[0] == '-' || v[0] == '\0')
        goto bad;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v)
        goto bad;
    if (sized && *end) {
        int shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: goto bad;
        }
        end++;
        if (*end == 'i' || *end == 'B')
            end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (n > (UINT64_MAX >> shift))
            goto range;
        n <<= shift;
    }
    if (*end != '\0')
        goto bad;
    if (n < min || n > max)
        goto range;
    *out = n;
    return 0;
bad:
    return cb_error_set(err, CB_ERR_CONFIG, key, "[%s] %s = '%s': not a%s number", section, key,
                        v, sized ? " size (e.g. 512M, 4G)" : "n unsigned");
range:
    return cb_error_set(err, CB_ERR_CONFIG, key,
                        "[%s] %s = %s: must be between %llu and %llu", section, key, v,
                        (unsigned long long)min, (unsigned long long)max);
}

int cb_config_get_u64(const cb_config_t *cfg, const char *section, const char *key,
                      uint64_t def, uint64_t min, uint64_t max, uint64_t *out, cb_error_t *err)
{
    return parse_number(cfg, section, key, def, min, max, false, out, err);
}

int cb_config_get_size(const cb_config_t *cfg, const char *section, const char *key,
                       uint64_t def, uint64_t min, uint64_t max, uint64_t *out, cb_error_t *err)
{
    return parse_number(cfg, section, key, def, min, max, true, out, err);
}

int cb_config_get_bool(const cb_config_t *cfg, const char *section, const char *key, bool def,
                       bool *out, cb_error_t *err)
{
    const char *v = cb_config_get(cfg, section, key, NULL);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    static const char *yes[] = {"yes", "true", "on", "1"}, *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return cb_error_set(err, CB_ERR_CONFIG, key, "[%s] %s = '%s': must be yes or no", section,
                        key, v);
}

int cb_config_get_u64s(const cb_config_t *cfg, const char *section,
                       const cb_config_u64_spec_t *specs, size_t n, cb_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const cb_config_u64_spec_t *s = &specs[i];
        int rc = cb_config_get_u64(cfg, section, s->key, s->def, s->min, s->max, s->out, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
