/* fuzz_csv_imports — the registry and catalogue CSV decoders router runs on
 * every import (and the RFC 4180 reader beneath them). */
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "orgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_error_t err;
    cb_org_list_t orgs;
    if (cb_orgs_parse((const char *)data, size, &orgs, &err) == 0)
        cb_orgs_free(&orgs);
    cb_matter_list_t matters;
    if (cb_catalog_parse((const char *)data, size, &matters, &err) == 0)
        cb_catalog_free(&matters);
    return 0;
}
