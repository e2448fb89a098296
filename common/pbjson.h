/*
 * pbjson.h — any casebus.v1 message as JSON, by its protobuf-c descriptor: the
 * same stable shape for `casebus tail --json`, webhook bodies and tests.
 *   - field names as in the .proto (snake_case); every field present, unset
 *     messages as null, unset oneof members left out;
 *   - enums as the value's name without its type prefix, lowercase
 *     ("ALERT_LEVEL_YELLOW" -> "yellow");
 *   - 64-bit integers as JSON integers; bytes as lowercase hex.
 */
#ifndef CB_PBJSON_H
#define CB_PBJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "casebus/v1/events.pb-c.h"
#include "contract.h"

/* A new JSON object for msg (NULL on out of memory). */
json_t *cb_pb_to_json(const ProtobufCMessage *msg);

/* The message field id of m holds (the member set of a oneof, or a plain
 * message field); NULL when unset, or not a single message field. */
ProtobufCMessage *cb_pb_message_field(const ProtobufCMessage *m, unsigned id);
/* The same, by the field's name ("obligation", "by"). */
ProtobufCMessage *cb_pb_message_named(const ProtobufCMessage *m, const char *name);

/* The bytes one value of f takes in a message or a repeated field's array. */
size_t cb_pb_value_size(const ProtobufCFieldDescriptor *f);

/* The word for an enum value in buf: its name without the type's prefix,
 * lowercase (ORG_KIND_TOWNSHIP -> "township"); the number for a value this
 * build does not know. Returns buf. */
const char *cb_pb_enum_word(const ProtobufCEnumDescriptor *ed, int value, char *buf, size_t size);

/* How cb_pb_from_json reads. Without flags, the encoder's own shape: field
 * names as in the .proto, X_at_ms as an integer (or X_at as RFC 3339), enums
 * as their words (or numbers), bytes as hex, messages as objects. */
enum {
    /* The HTTP API's spelling (contract.h): fields intake owns are unknown,
     * an OrgRef is its org_id, inlined messages' fields sit at their parent's
     * level, times are RFC 3339 only, "unspecified" is no enum word, and a
     * required bool left out is added to the report's missing fields. */
    CB_PBJSON_API = 1,
};

/* Decodes the JSON object j into a new message of md (*out; free with
 * protobuf_c_message_free_unpacked). An unknown field, a wrong type, an
 * integer out of its type's range, a bad enum word, time or hex string is
 * refused in rep->err, naming its path ("materials[1].kind"): the first one
 * found. Returns 0, CB_ERR_INVALID or CB_ERR_NOMEM. Limits and required
 * fields are cb_contract_check's. */
int cb_pb_from_json(const ProtobufCMessageDescriptor *md, json_t *j, unsigned flags,
                    ProtobufCMessage **out, cb_contract_report_t *rep);

/* An envelope for people and programs outside: producer, seq, event_id,
 * type (e.g. "deadline_warning"), recorded_at (RFC 3339, China Standard Time),
 * recorded_at_ms, case_id, hash (hex), and the body under "event". Personal
 * data (reporters; parties that are persons) is masked unless show_personal. */
json_t *cb_envelope_to_json(const Casebus__V1__Envelope *env, int show_personal);

/* Masks the same personal data inside a decoded message, in place: every
 * reporter's name, phone and ID number, and the name of every party that is a
 * person, become "***" (shorter strings: as many '*'). Returns whether anything
 * was masked. */
bool cb_pb_mask(ProtobufCMessage *msg);
/* A log record (cb_log_get's bytes) with its personal data masked: *out is a
 * new buffer (free it), or NULL with *out_len = len when there was nothing to
 * mask. Its hash is the original's, so a masked record does not verify.
 * Returns 0, or CB_ERR_CORRUPT / CB_ERR_NOMEM. */
int cb_record_mask(const uint8_t *raw, size_t len, uint8_t **out, size_t *out_len);

#endif
