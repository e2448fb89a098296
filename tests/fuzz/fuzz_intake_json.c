/* fuzz_intake_json — intake's HTTP body decoder, for every route, and the
 * limits every decoded command meets. The first byte picks the command kind
 * (intake.proto's field number minus 10); the rest is the body. Seeds: every
 * POST body of the end-to-end tests (tests/fuzz/seeds/fuzz_intake_json). */
#include <stddef.h>
#include <stdint.h>

#include "intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    intake_cmd_kind_t kind = (intake_cmd_kind_t)(CMD_REPORT_CASE + data[0] % 19);
    Casebus__V1__Command *cmd = NULL;
    cb_contract_report_t rep;
    if (intake_json_to_command(kind, "C20261123-000001", (const char *)data + 1, size - 1, &cmd,
                               &rep) == 0) {
        intake_check_command(cmd, &rep);
        casebus__v1__command__free_unpacked(cmd, NULL);
    }
    return 0;
}
