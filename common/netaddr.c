/*
 * netaddr.c — the address ranges a webhook may not reach (netaddr.h).
 * Ranges from the IANA special-purpose registries (RFC 6890 and successors).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cb_addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    return false;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

typedef struct range {
    const char *cidr, *name;
} range_t;

static const range_t restricted[] = {
    {"0.0.0.0/8", "unspecified"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "reserved"},
    {"192.0.2.0/24", "documentation"},
    {"192.88.99.0/24", "reserved"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "benchmarking"},
    {"198.51.100.0/24", "documentation"},
    {"203.0.113.0/24", "documentation"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"},
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"64:ff9b::/96", "reserved"}, /* NAT64: reaches any IPv4 address, private ones too */
    {"100::/64", "reserved"},
    {"2001:db8::/32", "documentation"},
    {"fc00::/7", "unique-local"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "link-local"},
    {"ff00::/8", "multicast"},
};

const char *cb_addr_restricted(const struct sockaddr *sa)
{
    uint8_t key[16];
    if (!cb_addr_key(sa, key))
        return "reserved";
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t v4compat[12] = {0};
    /* ::a.b.c.d (deprecated IPv4-compatible) is judged as the IPv4 address too */
    if (memcmp(key, v4compat, 12) == 0 && (key[12] | key[13] | key[14] | key[15]) &&
        !(key[12] == 0 && key[13] == 0 && key[14] == 0 && key[15] == 1))
        memcpy(key, v4mapped, 12);
    enum { N = sizeof(restricted) / sizeof(restricted[0]) };
    static cb_cidr_t parsed[N]; /* the table, parsed on first use */
    static bool ready;
    if (!ready) {
        for (size_t i = 0; i < N; i++)
            if (cb_cidr_parse(restricted[i].cidr, &parsed[i]) != 0)
                abort(); /* a typo in the table above */
        ready = true;
    }
    for (size_t i = 0; i < N; i++)
        if (prefix_match(key, parsed[i].addr, parsed[i].bits))
            return restricted[i].name;
    return NULL;
}

int cb_cidr_parse(const char *text, cb_cidr_t *out)
{
    char buf[64];
    if (text == NULL || strlen(text) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", text);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash++ = '\0';
        char *end;
        bits = strtol(slash, &end, 10);
        if (*slash == '\0' || *end != '\0' || bits < 0)
            return -1;
    }
    memset(out, 0, sizeof(*out));
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        if (bits > 32)
            return -1;
        out->addr[10] = out->addr[11] = 0xff;
        memcpy(out->addr + 12, &a4, 4);
        out->bits = 96 + (unsigned)(bits < 0 ? 32 : bits);
    } else if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (bits > 128)
            return -1;
        memcpy(out->addr, &a6, 16);
        out->bits = (unsigned)(bits < 0 ? 128 : bits);
    } else {
        return -1;
    }
    return 0;
}

bool cb_cidr_match(const cb_cidr_t *c, const struct sockaddr *sa)
{
    uint8_t key[16];
    return cb_addr_key(sa, key) && prefix_match(key, c->addr, c->bits);
}

bool cb_addr_literal(const char *host, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    char buf[80];
    size_t n = strlen(host);
    if (n >= sizeof(buf))
        return false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        memcpy(buf, host, n + 1);
    }
    char *pct = strchr(buf, '%'); /* a zone id: fe80::1%eth0 */
    if (pct)
        *pct = '\0';
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return true;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_aton(buf, &s4->sin_addr) != 0) { /* the lenient forms: 2130706433, 0x7f.1, 017700000001 */
        s4->sin_family = AF_INET;
        return true;
    }
    return false;
}

void cb_addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (n == 0 || inet_ntop(sa->sa_family, a, out, (socklen_t)n) == NULL)
        snprintf(out, n, "?");
}
