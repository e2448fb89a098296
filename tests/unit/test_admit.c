/* test_admit.c — intake's connection caps: overall and per client address,
 * IPv4 and IPv6 counted apart, a closed connection gives its place back and
 * an address with nothing open is forgotten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "intake/intake.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
    sa->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sa->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
    sa->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sa->sin6_addr), 1);
    return ss;
}

#define SA(x) ((struct sockaddr *)&(x))

static void per_address_cap(void **state)
{
    (void)state;
    intake_admit_t a;
    intake_admit_init(&a, 100, 3);
    struct sockaddr_storage one = v4("127.0.0.2"), two = v4("127.0.0.1");
    intake_peer_t *p[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(intake_admit_take(&a, SA(one), &p[i]), INTAKE_ADMIT_OK);
    assert_int_equal(intake_admit_take(&a, SA(one), &p[3]), INTAKE_ADMIT_ADDRESS);
    assert_null(p[3]);
    intake_peer_t *q;
    assert_int_equal(intake_admit_take(&a, SA(two), &q), INTAKE_ADMIT_OK); /* another address */
    assert_int_equal(a.open, 4);
    assert_int_equal(a.peers, 2);
    intake_admit_release(&a, p[0]);
    assert_int_equal(intake_admit_open_from(&a, SA(one)), 2);
    assert_int_equal(intake_admit_take(&a, SA(one), &p[0]), INTAKE_ADMIT_OK);
    for (int i = 0; i < 3; i++)
        intake_admit_release(&a, p[i]);
    intake_admit_release(&a, q);
    assert_int_equal(a.open, 0);
    assert_int_equal(a.peers, 0);
    assert_int_equal(intake_admit_open_from(&a, SA(one)), 0);
}

static void overall_cap(void **state)
{
    (void)state;
    intake_admit_t a;
    intake_admit_init(&a, 5, 100);
    intake_peer_t *p[6];
    char ip[32];
    for (int i = 0; i < 5; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        struct sockaddr_storage s = v4(ip);
        assert_int_equal(intake_admit_take(&a, SA(s), &p[i]), INTAKE_ADMIT_OK);
    }
    struct sockaddr_storage s = v4("10.0.0.9");
    assert_int_equal(intake_admit_take(&a, SA(s), &p[5]), INTAKE_ADMIT_FULL);
    assert_int_equal(a.open, 5);
    intake_admit_release(&a, p[2]);
    assert_int_equal(intake_admit_take(&a, SA(s), &p[5]), INTAKE_ADMIT_OK);
    for (int i = 0; i < 6; i++)
        if (i != 2)
            intake_admit_release(&a, p[i]);
    assert_int_equal(a.open, 0);
    assert_int_equal(a.peers, 0);
}

static void families_apart(void **state)
{
    (void)state;
    intake_admit_t a;
    intake_admit_init(&a, 100, 1);
    struct sockaddr_storage four = v4("192.0.2.7"), mapped = v6("::ffff:192.0.2.7"),
                            six = v6("2001:db8::7");
    intake_peer_t *p, *q, *r;
    assert_int_equal(intake_admit_take(&a, SA(four), &p), INTAKE_ADMIT_OK);
    /* the same host seen through a dual-stack socket is the same address */
    assert_int_equal(intake_admit_take(&a, SA(mapped), &q), INTAKE_ADMIT_ADDRESS);
    assert_int_equal(intake_admit_take(&a, SA(six), &r), INTAKE_ADMIT_OK);
    intake_admit_release(&a, p);
    intake_admit_release(&a, r);
    assert_int_equal(a.peers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_address_cap),
        cmocka_unit_test(overall_cap),
        cmocka_unit_test(families_apart),
    };
    return cmocka_run_group_tests_name("test_admit", tests, NULL, NULL);
}
