/*
 * netaddr.h — which network addresses a webhook may reach. A subscription's
 * URL must not turn notify into a way into the host or its network (loopback,
 * link-local cloud metadata, private ranges): the check is made on the address
 * a name resolves to, at each connection, and on IP literals in any spelling
 * (2130706433, 0x7f.1) when the URL is given.
 */
#ifndef CB_NETADDR_H
#define CB_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cb_cidr {
    uint8_t addr[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
    unsigned bits;    /* of the 128 */
} cb_cidr_t;

/* sa's address as 16 bytes: IPv6, or IPv4 as ::ffff:a.b.c.d (so a host seen
 * through a dual-stack socket is the same key). False for other families. */
bool cb_addr_key(const struct sockaddr *sa, uint8_t key[16]);
/* The range sa falls in when it is not a public unicast address ("loopback",
 * "private", "link-local", "unspecified", "multicast", "reserved",
 * "shared (CGNAT)", "documentation", "benchmarking", "unique-local"), or NULL
 * when it is public. IPv4-mapped IPv6 addresses are judged as IPv4. */
const char *cb_addr_restricted(const struct sockaddr *sa);
/* Parses "10.20.0.0/16", "fd00::/8" or a bare address (a /32 or /128). */
int cb_cidr_parse(const char *text, cb_cidr_t *out);
bool cb_cidr_match(const cb_cidr_t *c, const struct sockaddr *sa);
/* Parses an IP literal in any form inet_aton takes (dotted, decimal, hex,
 * octal, fewer parts) or IPv6 (brackets allowed) into *ss; false when host is
 * a name. */
bool cb_addr_literal(const char *host, struct sockaddr_storage *ss);
/* "a.b.c.d" or IPv6 text of sa into out. */
void cb_addr_text(const struct sockaddr *sa, char *out, size_t n);

#endif
