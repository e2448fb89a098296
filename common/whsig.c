/*
 * whsig.c — the HMAC with libsodium; the key never outlives the call.
 */
#include "whsig.h"

#include <sodium.h>
#include <string.h>

int cb_whsig_sign(const char *secret, const char *id, const char *timestamp, const char *body,
                  size_t len, char out[CB_WHSIG_MAX])
{
    unsigned char key[256];
    size_t klen = 0;
    size_t slen = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0) {
        if (sodium_base642bin(key, sizeof(key), secret + 6, slen - 6, NULL, &klen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            klen == 0)
            return -1;
    } else {
        if (slen > sizeof(key))
            return -1;
        memcpy(key, secret, slen);
        klen = slen;
    }
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, strlen(timestamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(key, sizeof(key));
    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, CB_WHSIG_MAX - 3, mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

bool cb_whsig_verify(const char *secret, const char *id, const char *timestamp, const char *body,
                     size_t len, const char *header)
{
    char want[CB_WHSIG_MAX];
    if (cb_whsig_sign(secret, id, timestamp, body, len, want) != 0)
        return false;
    size_t wl = strlen(want);
    bool ok = false;
    for (const char *p = header; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == wl && sodium_memcmp(p, want, wl) == 0)
            ok = true;
        p += n;
    }
    return ok;
}
