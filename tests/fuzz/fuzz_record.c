/* fuzz_record — the consumer's check and decoder of records from a producer,
 * and of the batch header that announces them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "evlog.h"
#include "casebus/v1/bus.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zero[CB_HASH_LEN];
    Casebus__V1__Envelope *env = NULL;
    cb_error_t err;
    if (cb_record_check(data, size, NULL, &env, &err) == 0) {
        (void)cb_event_type(env);
        casebus__v1__envelope__free_unpacked(env, NULL);
    }
    env = NULL;
    if (cb_record_check(data, size, zero, &env, &err) == 0)
        casebus__v1__envelope__free_unpacked(env, NULL);
    Casebus__V1__BatchHeader *h = casebus__v1__batch_header__unpack(NULL, size, data);
    if (h)
        casebus__v1__batch_header__free_unpacked(h, NULL);
    return 0;
}
