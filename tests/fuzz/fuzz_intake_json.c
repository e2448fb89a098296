/* fuzz_intake_json — intake's HTTP body decoder, for every route. The first
 * byte picks the command kind; the rest is the body. */
#include <stddef.h>
#include <stdint.h>

#include "intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    intake_cmd_kind_t kind = (intake_cmd_kind_t)(CMD_REPORT_CASE + data[0] % 12);
    Casebus__V1__Command *cmd = NULL;
    cb_error_t err;
    if (intake_json_to_command(kind, "C20261123-000001", (const char *)data + 1, size - 1, &cmd,
                               &err) == 0)
        casebus__v1__command__free_unpacked(cmd, NULL);
    return 0;
}
