/* fuzz_jsonr — cb_jsonr_loadb against jansson's json_loadb with
 * JSON_REJECT_DUPLICATES: the same texts accepted, as equal documents, and
 * the same refused. Seeds: intake's POST bodies (tests/fuzz/seeds/fuzz_jsonr
 * is a link to fuzz_intake_json's, whose first byte is a command kind).
 * The one difference allowed: a NUL byte, which cb_jsonr refuses wherever it
 * is, and jansson skips when it comes right after a number or a word. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *want = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *got = cb_jsonr_loadb((const char *)data, size, NULL);
    bool nul = memchr(data, 0, size) != NULL;
    if ((want == NULL && got != NULL) || (want && !got && !nul) ||
        (want && got && !json_equal(want, got)))
        abort();
    json_decref(want);
    json_decref(got);
    return 0;
}
