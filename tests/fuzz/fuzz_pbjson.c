/* fuzz_pbjson — the JSON decoder (pbjson.h) against the encoder, on any input.
 * The first byte picks what the rest is:
 *   even: protobuf bytes of an Envelope or a Command (by bit 1). Whatever
 *         unpacks is encoded to JSON, decoded back and encoded again: the two
 *         JSON documents must be equal (decode(encode(m)) = m);
 *   odd:  JSON text, decoded as an Envelope, a Command or each command body,
 *         in the encoder's shape and in the HTTP API's, then checked against
 *         the contract: refused or accepted, never a crash (ASan, UBSan). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "casebus/v1/intake.pb-c.h"
#include "pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const ProtobufCMessageDescriptor *md, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(md, NULL, size, data);
    if (m == NULL)
        return;
    json_t *x = cb_pb_to_json(m);
    ProtobufCMessage *back = NULL;
    cb_contract_report_t rep;
    cb_contract_report_init(&rep);
    /* bytes that unpack but are not UTF-8 are out of JSON's reach: the encoder
     * writes a placeholder, and the round trip stops at that */
    if (x && cb_pb_from_json(md, x, 0, &back, &rep) == 0) {
        json_t *y = cb_pb_to_json(back);
        if (y && !json_equal(x, y)) {
            char *text = json_dumps(x, 0);
            if (text == NULL || strstr(text, "<not UTF-8>") == NULL)
                abort();
            free(text);
        }
        json_decref(y);
        protobuf_c_message_free_unpacked(back, NULL);
    }
    json_decref(x);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void decode_text(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL)
        return;
    const ProtobufCMessageDescriptor *roots[] = {&casebus__v1__envelope__descriptor,
                                                 &casebus__v1__command__descriptor};
    for (unsigned flags = 0; flags <= CB_PBJSON_API; flags++) {
        for (size_t r = 0; r < 2 + casebus__v1__command__descriptor.n_fields; r++) {
            const ProtobufCMessageDescriptor *md = NULL;
            if (r < 2)
                md = roots[r];
            else if (casebus__v1__command__descriptor.fields[r - 2].type == PROTOBUF_C_TYPE_MESSAGE)
                md = casebus__v1__command__descriptor.fields[r - 2].descriptor;
            if (md == NULL)
                continue;
            ProtobufCMessage *m = NULL;
            cb_contract_report_t rep;
            cb_contract_report_init(&rep);
            if (cb_pb_from_json(md, j, flags, &m, &rep) == 0) {
                cb_contract_prepare(m);
                cb_contract_check(m, &rep);
                protobuf_c_message_free_unpacked(m, NULL);
            }
        }
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        decode_text(data + 1, size - 1);
    else
        round_trip(data[0] & 2 ? &casebus__v1__command__descriptor
                               : &casebus__v1__envelope__descriptor,
                   data + 1, size - 1);
    return 0;
}
