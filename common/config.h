/*
 * config.h — the deployment's INI file (deploy/casebus.conf): a section per
 * daemon, key = value lines, a key may repeat (e.g. `pull = router ipc://…`).
 * Loaded once in main; read-only afterwards. Errors name the file, the line and
 * the key, and say the rule.
 */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct cb_config cb_config_t;

/* Parses path. On a syntax error returns CB_ERR_CONFIG naming the line. */
int cb_config_load(cb_config_t **out, const char *path, cb_error_t *err);
/* Parses text held in memory (tests, embedded defaults). */
int cb_config_parse(cb_config_t **out, const char *text, cb_error_t *err);
void cb_config_destroy(cb_config_t **cfg);

/* The last value of section.key, or def. The pointer lives as long as cfg. */
const char *cb_config_get(const cb_config_t *cfg, const char *section, const char *key,
                          const char *def);
/* Every value of a repeated key, in file order; returns how many there are
 * (vals holds at most max of them). */
size_t cb_config_get_all(const cb_config_t *cfg, const char *section, const char *key,
                         const char **vals, size_t max);
bool cb_config_has_section(const cb_config_t *cfg, const char *section);

/* Unsigned integer in [min, max]; absent → def. Errors name "[section] key". */
int cb_config_get_u64(const cb_config_t *cfg, const char *section, const char *key,
                      uint64_t def, uint64_t min, uint64_t max, uint64_t *out, cb_error_t *err);
/* A section's numeric settings, read in order by one table; the first error
 * stops and names its key. */
typedef struct cb_config_u64_spec {
    const char *key;
    uint64_t def, min, max;
    uint64_t *out;
} cb_config_u64_spec_t;
int cb_config_get_u64s(const cb_config_t *cfg, const char *section,
                       const cb_config_u64_spec_t *specs, size_t n, cb_error_t *err);
/* A size with an optional K/M/G/T suffix (binary), e.g. map_size = 4G. */
int cb_config_get_size(const cb_config_t *cfg, const char *section, const char *key,
                       uint64_t def, uint64_t min, uint64_t max, uint64_t *out, cb_error_t *err);
/* yes/no, true/false, on/off, 1/0. */
int cb_config_get_bool(const cb_config_t *cfg, const char *section, const char *key, bool def,
                       bool *out, cb_error_t *err);

/* The i-th entry in file order (false past the last), for files whose sections
 * are a closed vocabulary and must refuse what they do not know. */
bool cb_config_entry(const cb_config_t *cfg, size_t i, const char **section, const char **key);

/* Where the file was loaded from ("" for parsed text): relative paths in the
 * configuration are relative to the working directory, not to this. */
const char *cb_config_path(const cb_config_t *cfg);
/* section.key if set, else file in the directory the configuration was loaded
 * from (make run: var/). -1 when it does not fit in n bytes. */
int cb_config_path_near(const cb_config_t *cfg, const char *section, const char *key,
                        const char *file, char *out, size_t n);

#endif
