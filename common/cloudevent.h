/*
 * cloudevent.h — an event as a CloudEvents 1.0 JSON object (structured mode,
 * https://github.com/cloudevents/spec): what webhook bodies carry and what
 * `casebus tail --json` prints, one per line.
 *   specversion  "1.0"
 *   id           the event's event_id
 *   source       /casebus/<county division code>/<producer>
 *   type         <type_prefix>.<event type>, e.g. cn.gov.330723.casebus.v1.transfer_routed
 *   time         recorded_at (RFC 3339, China Standard Time)
 *   subject      the case id (absent for events of no case)
 *   datacontenttype  application/json
 *   data         cb_envelope_to_json's document
 *   seq, producer, hash   extension attributes (the log position and chain)
 * The deployment names the county in [events] (division_code, type_prefix).
 */
#ifndef CB_CLOUDEVENT_H
#define CB_CLOUDEVENT_H

#include <jansson.h>

#include "casebus/v1/events.pb-c.h"
#include "config.h"
#include "error.h"

#define CB_CE_SPECVERSION "1.0"
#define CB_CE_CONTENT_TYPE "application/cloudevents+json"
#define CB_CE_BATCH_CONTENT_TYPE "application/cloudevents-batch+json"

typedef struct cb_cloudevents {
    char division_code[16]; /* GB/T 2260: 6 digits (or 12 for a township) */
    char type_prefix[128];  /* reverse DNS, no trailing dot */
} cb_cloudevents_t;

/* Reads [events] division_code and type_prefix (default
 * cn.gov.<division_code>.casebus.v1). Errors name the key and the rule. */
int cb_cloudevents_conf(cb_cloudevents_t *ce, const cb_config_t *cfg, cb_error_t *err);

/* A new CloudEvent for env (personal data masked unless show_personal); NULL
 * when out of memory. */
json_t *cb_envelope_to_cloudevent(const Casebus__V1__Envelope *env, int show_personal,
                                  const cb_cloudevents_t *ce);
/* cb_envelope_to_cloudevent's document written straight into w as text, with
 * nextra more string members {name, value} at its end (notify's subscription
 * and addressee); on failure w is as it was (pbjsonw.c). */
struct cb_jsonw;
int cb_cloudevent_write(struct cb_jsonw *w, const Casebus__V1__Envelope *env, int show_personal,
                        const cb_cloudevents_t *ce, const char *const (*extra)[2], size_t nextra);

#endif
