/*
 * commands.c — an HTTP JSON body into the Command the ZeroMQ door receives,
 * so that the checks and the execution that follow are one code path. The
 * route gives the command (http.c's table); the body is that command's
 * message, decoded from its descriptor in the API's spelling (pbjson.h,
 * contract.h) and checked against proto/casebus/v1/fields.def. Rules that
 * need state (organisations, cases) are the handlers'.
 */
#include "intake.h"
#include "jsonr.h"
#include "pbjson.h"

#include <stdlib.h>
#include <string.h>

static const ProtobufCFieldDescriptor *body_field(intake_cmd_kind_t kind)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&casebus__v1__command__descriptor, (unsigned)kind);
    return f && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? f : NULL;
}

const char *intake_cmd_name(intake_cmd_kind_t kind)
{
    const ProtobufCFieldDescriptor *f = body_field(kind);
    return f ? f->name : "unknown";
}

int intake_json_to_command(intake_cmd_kind_t kind, const char *target_id, const char *body,
                           size_t len, Casebus__V1__Command **out, cb_contract_report_t *rep)
{
    *out = NULL;
    cb_contract_report_init(rep);
    const ProtobufCFieldDescriptor *f = body_field(kind);
    if (f == NULL)
        return cb_error_set(&rep->err, CB_ERR_INVALID, "", "no such command");
    cb_jsonr_error_t jerr;
    json_t *o = cb_jsonr_loadb(body, len, &jerr);
    if (o == NULL)
        return cb_error_set(&rep->err, CB_ERR_INVALID, "",
                            "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                            jerr.line, jerr.column);
    ProtobufCMessage *msg = NULL;
    int rc = cb_pb_from_json(f->descriptor, o, CB_PBJSON_API, &msg, rep);
    json_decref(o);
    if (rc != 0)
        return rc;
    Casebus__V1__Command *cmd = malloc(sizeof(*cmd));
    char *target = strdup(target_id ? target_id : "");
    if (cmd == NULL || target == NULL) {
        free(cmd);
        free(target);
        protobuf_c_message_free_unpacked(msg, NULL);
        return cb_error_set(&rep->err, CB_ERR_NOMEM, "", "out of memory");
    }
    casebus__v1__command__init(cmd);
    cmd->target_id = target;
    cmd->kind_case = (Casebus__V1__Command__KindCase)kind;
    *(ProtobufCMessage **)((uint8_t *)cmd + f->offset) = msg;
    cb_contract_prepare(&cmd->base);
    if ((rc = cb_contract_check(&cmd->base, rep)) != 0) {
        casebus__v1__command__free_unpacked(cmd, NULL);
        return rc;
    }
    *out = cmd;
    return 0;
}
