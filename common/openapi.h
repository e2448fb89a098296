/*
 * openapi.h — the HTTP API as an OpenAPI 3.1 document, written from the route
 * table (routes.h), the .proto descriptors and the field rules (contract.h):
 * what `casebus openapi` prints and intake serves at /openapi.json.
 */
#ifndef CB_OPENAPI_H
#define CB_OPENAPI_H

#include <jansson.h>

#define CB_API_VERSION "1.0.0" /* of the HTTP API: proto/casebus/v1 */

/* A new document (NULL when out of memory); version is the API's version. */
json_t *cb_openapi_document(const char *version);

#endif
