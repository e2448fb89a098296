/*
 * contract.h — what the .proto files of casebus.v1 cannot say for themselves:
 * each field's limits, whether a command must carry it, whether intake owns it,
 * and how the HTTP API spells it. The rules are one line each in
 * proto/casebus/v1/fields.def, beside the contract; this module reads them for
 * the JSON decoder (pbjson.h), the checks on a decoded Command (both doors) and
 * the OpenAPI document.
 *
 * protobuf-c 1.4 keeps no custom options in its generated descriptors (a
 * ProtobufCFieldDescriptor has name, number, label, type, offsets and default,
 * nothing else), so the rules cannot live in the .proto as options.
 *
 * The API's spelling of a field, everywhere (requests, errors, the document):
 *   - its .proto name, except
 *   - X_at_ms is X_at, an RFC 3339 time ("at_ms" is "at");
 *   - a rule may give another name (proposed_receiver_id is receiver);
 *   - an OrgRef is written as its org_id, a string;
 *   - an inlined message field (a report's case), and a message in a oneof
 *     (a Command's body), has its fields at its parent's level.
 */
#ifndef CB_CONTRACT_H
#define CB_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "error.h"

#define CB_CONTRACT_STRING_MAX 128 /* bytes of a string without a rule */
#define CB_CONTRACT_REPEATED_MAX 64
#define CB_CONTRACT_BYTES_MAX 64
#define CB_CONTRACT_MISSING_MAX 16

typedef struct cb_field_rule {
    const char *message; /* short name ("CaseSummary"), or "ANY" */
    const char *field;
    bool required;     /* a command must carry it (non-empty, non-zero, set) */
    bool owned;        /* intake fills it: not in requests, ignored when sent */
    bool inlined;      /* a message whose fields the API writes at its parent's level */
    uint32_t min, max; /* strings and bytes: bytes; repeated: entries (0: the default) */
    double lo, hi;     /* numbers, inclusive, when lo < hi */
    int dflt;          /* an enum's value when a command leaves it unset */
    const char *api;   /* the API's name, when not derived from the field's */
    const char *doc;   /* a note for the OpenAPI document */
} cb_field_rule_t;

/* The rule for field f of message md, or NULL when there is none. */
const cb_field_rule_t *cb_contract_rule(const ProtobufCMessageDescriptor *md,
                                        const ProtobufCFieldDescriptor *f);

/* The API's name of f (see above) in buf. Returns buf. */
const char *cb_contract_api_name(const ProtobufCMessageDescriptor *md,
                                 const ProtobufCFieldDescriptor *f, char *buf, size_t size);
/* Whether f is a time: int64 named X_at_ms or at_ms. */
bool cb_contract_is_time(const ProtobufCFieldDescriptor *f);
/* For a message the API writes as one of its fields (OrgRef as its org_id):
 * that field; NULL for a message written as an object. */
const ProtobufCFieldDescriptor *cb_contract_ref_field(const ProtobufCMessageDescriptor *md);
/* Limits of f with the defaults applied: bytes or entries. */
uint32_t cb_contract_max(const ProtobufCMessageDescriptor *md, const ProtobufCFieldDescriptor *f);

/* The result of checking a message. */
typedef struct cb_contract_report {
    cb_error_t err;  /* the first broken limit, or every missing field */
    size_t nmissing; /* required fields left empty, in the API's spelling */
    char missing[CB_CONTRACT_MISSING_MAX][96];
} cb_contract_report_t;

void cb_contract_report_init(cb_contract_report_t *rep);
/* Adds a missing field (its API path) to rep. */
void cb_contract_missing(cb_contract_report_t *rep, const char *path);

/* Prepares a decoded command body from either door: clears what intake owns
 * (what a client put there is not kept) and sets enum defaults. */
void cb_contract_prepare(ProtobufCMessage *msg);
/* Checks msg against the rules, adding to rep (initialised by the caller, who
 * may have added missing fields of its own): every required field missing is
 * listed (code CB_ERR_MISSING, err.field the first, err.message all of them),
 * else the first field over a limit (CB_ERR_INVALID), named by its API path
 * ("materials[1].title"). A bool cannot be seen missing in a decoded message
 * (proto3 keeps no presence for it, and protobuf-c 1.4 has no proto3
 * "optional"): the JSON decoder adds a required one that a body left out.
 * Returns 0 or the code. */
int cb_contract_check(const ProtobufCMessage *msg, cb_contract_report_t *rep);

#endif
