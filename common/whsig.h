/*
 * whsig.h — Standard Webhooks 1.0 signatures (https://www.standardwebhooks.com):
 * "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)), keyed by the
 * base64 after "whsec_" of the secret, or by the secret's own bytes when it has
 * no such prefix (secrets made before whsec_). notify signs; `casebus listen`
 * verifies.
 */
#ifndef CB_WHSIG_H
#define CB_WHSIG_H

#include <stdbool.h>
#include <stddef.h>

#define CB_WHSIG_MAX (3 + 45) /* "v1," + base64 of 32 bytes + NUL */

/* -1: a whsec_ secret that is not base64 (or longer than 256 bytes). */
int cb_whsig_sign(const char *secret, const char *id, const char *timestamp, const char *body,
                  size_t len, char out[CB_WHSIG_MAX]);
/* Whether any of the space-separated signatures of header is secret's, compared
 * in constant time. */
bool cb_whsig_verify(const char *secret, const char *id, const char *timestamp, const char *body,
                     size_t len, const char *header);

#endif
