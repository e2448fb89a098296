/* fuzz_bus_request — the producer's decoder of requests from the network. */
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Casebus__V1__BusRequest *req = NULL;
    cb_error_t err;
    if (cb_bus_request_parse(data, size, &req, &err) == 0)
        casebus__v1__bus_request__free_unpacked(req, NULL);
    return 0;
}
