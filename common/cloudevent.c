/*
 * cloudevent.c — the CloudEvents envelope around cb_envelope_to_json's document.
 */
#include "cloudevent.h"
#include "evlog.h"
#include "pbjson.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Reverse DNS: labels of [a-z0-9-], not starting or ending with '-'. */
static bool reverse_dns(const char *s)
{
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)))
            return false;
        label++;
    }
}

int cb_cloudevents_conf(cb_cloudevents_t *ce, const cb_config_t *cfg, cb_error_t *err)
{
    const char *code = cb_config_get(cfg, "events", "division_code", "");
    if (!digits(code, 6) && !digits(code, 12))
        return cb_error_set(err, CB_ERR_CONFIG, "division_code",
                            "[events] division_code '%.40s' must be the county's GB/T 2260 code "
                            "(6 digits, or 12 for a township): it names every event's source",
                            code);
    snprintf(ce->division_code, sizeof(ce->division_code), "%s", code);
    char def[sizeof(ce->type_prefix)];
    snprintf(def, sizeof(def), "cn.gov.%s.casebus.v1", code);
    const char *prefix = cb_config_get(cfg, "events", "type_prefix", def);
    if (strlen(prefix) >= sizeof(ce->type_prefix) || !reverse_dns(prefix))
        return cb_error_set(err, CB_ERR_CONFIG, "type_prefix",
                            "[events] type_prefix '%.40s' must be a reverse-DNS name "
                            "(lowercase letters, digits and '-' in dot-separated labels, "
                            "under %zu bytes), e.g. %s",
                            prefix, sizeof(ce->type_prefix), def);
    snprintf(ce->type_prefix, sizeof(ce->type_prefix), "%s", prefix);
    return 0;
}

/* The CloudEvent around data (cb_envelope_to_json's document, which it takes
 * over); NULL when out of memory (data freed). */
static json_t *cloudevent_wrap(json_t *data, const cb_cloudevents_t *ce)
{
    if (data == NULL)
        return NULL;
    const char *producer = json_string_value(json_object_get(data, "producer"));
    const char *type = json_string_value(json_object_get(data, "type"));
    const char *case_id = json_string_value(json_object_get(data, "case_id"));
    char source[64 + sizeof(ce->division_code)], full[sizeof(ce->type_prefix) + 64];
    snprintf(source, sizeof(source), "/casebus/%s/%s", ce->division_code, producer ? producer : "");
    snprintf(full, sizeof(full), "%s.%s", ce->type_prefix, type ? type : "unknown");
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "specversion", json_string(CB_CE_SPECVERSION)) ||
        json_object_set(o, "id", json_object_get(data, "event_id")) ||
        json_object_set_new(o, "source", json_string(source)) ||
        json_object_set_new(o, "type", json_string(full)) ||
        json_object_set(o, "time", json_object_get(data, "recorded_at")) ||
        json_object_set_new(o, "datacontenttype", json_string("application/json"))) {
        json_decref(o);
        json_decref(data);
        return NULL;
    }
    if (case_id && *case_id)
        json_object_set(o, "subject", json_object_get(data, "case_id"));
    json_t *seq = json_object_get(data, "seq"), *prod = json_object_get(data, "producer"),
           *hash = json_object_get(data, "hash");
    if (json_object_set_new(o, "data", data) != 0 || json_object_set(o, "seq", seq) != 0 ||
        json_object_set(o, "producer", prod) != 0 || json_object_set(o, "hash", hash) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cb_envelope_to_cloudevent(const Casebus__V1__Envelope *env, int show_personal,
                                  const cb_cloudevents_t *ce)
{
    return cloudevent_wrap(cb_envelope_to_json(env, show_personal), ce);
}
