/* test_netaddr.c — which addresses a webhook may not reach, in every spelling
 * an attacker would try, and the networks an operator opens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "netaddr.h"

static const char *judge(const char *host)
{
    struct sockaddr_storage ss;
    assert_true(cb_addr_literal(host, &ss));
    return cb_addr_restricted((struct sockaddr *)&ss);
}

static void ranges(void **state)
{
    (void)state;
    static const struct {
        const char *host, *range; /* NULL: public */
    } rows[] = {
        {"127.0.0.1", "loopback"},        {"2130706433", "loopback"},
        {"0x7f.1", "loopback"},           {"017700000001", "loopback"},
        {"127.1", "loopback"},            {"169.254.169.254", "link-local"},
        {"10.0.0.5", "private"},          {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},    {"192.168.1.1", "private"},
        {"100.64.0.1", "shared (CGNAT)"}, {"0.0.0.0", "unspecified"},
        {"224.0.0.1", "multicast"},       {"255.255.255.255", "reserved"},
        {"[::1]", "loopback"},            {"::", "unspecified"},
        {"::ffff:127.0.0.1", "loopback"}, {"[::ffff:10.0.0.1]", "private"},
        {"::127.0.0.1", "loopback"},      {"fe80::1%eth0", "link-local"},
        {"fd12:3456::1", "unique-local"}, {"64:ff9b::a00:1", "reserved"},
        {"8.8.8.8", NULL},                {"172.32.0.1", NULL},
        {"100.128.0.1", NULL},            {"2400:3200::1", NULL},
        {"[2001:4860:4860::8888]", NULL}, {"59.111.0.1", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got = judge(rows[i].host);
        if (rows[i].range == NULL && got != NULL)
            fail_msg("%s: want public, got %s", rows[i].host, got);
        if (rows[i].range != NULL && (got == NULL || strcmp(got, rows[i].range) != 0))
            fail_msg("%s: want %s, got %s", rows[i].host, rows[i].range, got ? got : "public");
    }
}

static void names_are_not_literals(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    assert_false(cb_addr_literal("localhost", &ss));
    assert_false(cb_addr_literal("platform.wuyi.gov.cn", &ss));
    assert_false(cb_addr_literal("", &ss));
}

static void allowed_networks(void **state)
{
    (void)state;
    cb_cidr_t c;
    struct sockaddr_storage ss;
    assert_int_equal(cb_cidr_parse("10.20.0.0/16", &c), 0);
    assert_true(cb_addr_literal("10.20.3.4", &ss));
    assert_true(cb_cidr_match(&c, (struct sockaddr *)&ss));
    assert_true(cb_addr_literal("::ffff:10.20.3.4", &ss));
    assert_true(cb_cidr_match(&c, (struct sockaddr *)&ss));
    assert_true(cb_addr_literal("10.21.0.1", &ss));
    assert_false(cb_cidr_match(&c, (struct sockaddr *)&ss));
    assert_int_equal(cb_cidr_parse("fd00::/8", &c), 0);
    assert_true(cb_addr_literal("fd12::1", &ss));
    assert_true(cb_cidr_match(&c, (struct sockaddr *)&ss));
    assert_int_equal(cb_cidr_parse("192.0.2.7", &c), 0); /* a bare address is one host */
    assert_true(cb_addr_literal("192.0.2.7", &ss));
    assert_true(cb_cidr_match(&c, (struct sockaddr *)&ss));
    assert_true(cb_addr_literal("192.0.2.8", &ss));
    assert_false(cb_cidr_match(&c, (struct sockaddr *)&ss));
    static const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "fd00::/129", "example.org/8", "10.0.0.0/-1",
                                "10.0.0.0/8x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cb_cidr_parse(bad[i], &c) == 0)
            fail_msg("%s parsed", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges),
        cmocka_unit_test(names_are_not_literals),
        cmocka_unit_test(allowed_networks),
    };
    return cmocka_run_group_tests_name("test_netaddr", tests, NULL, NULL);
}
