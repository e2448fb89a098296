/* test_jsonr.c — cb_jsonr_loadb accepts what json_loadb(JSON_REJECT_DUPLICATES)
 * accepts, with an equal document, and refuses what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Both readers on text; fails the test, naming the text, where they differ. */
static void same(const char *text, size_t len)
{
    json_error_t je;
    cb_jsonr_error_t e;
    json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *got = cb_jsonr_loadb(text, len, &e);
    if ((want == NULL) != (got == NULL) || (want && !json_equal(want, got))) {
        char shown[200];
        size_t n = len < 150 ? len : 150;
        for (size_t i = 0; i < n; i++)
            shown[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '.';
        shown[n] = '\0';
        fail_msg("they differ on [%s] (%zu bytes): jansson %s (%s), cb_jsonr %s (%s)", shown, len,
                 want ? "accepts" : "refuses", want ? "" : je.text, got ? "accepts" : "refuses",
                 got ? "" : e.text);
    }
    if (got == NULL)
        assert_true(e.text[0] != '\0' && e.line >= 1 && e.column >= 1 && e.position <= len);
    json_decref(want);
    json_decref(got);
}

static void same_s(const char *text)
{
    same(text, strlen(text));
}

static const char *const cases[] = {
    "{}", "[]", " { } ", "\t[\r\n]\n", "", " ", "1", "\"a\"", "true", "null",
    "{\"a\":1}", "{\"a\":1,}", "{,}", "[1,]", "[,1]", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{1:2}",
    "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":{\"a\":2}}", "{\"\":0}", "{\"\":0,\"\":1}",
    "[0]", "[-0]", "[01]", "[-01]", "[-]", "[1.]", "[.5]", "[1.5]", "[-1.5e3]", "[1e]", "[1e+]",
    "[1E-2]", "[1e400]", "[-1e400]", "[1e-400]", "[9223372036854775807]",
    "[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]",
    "[123456789012345678901234567890123456789012345678901234567890123456789012345678901.5]",
    "[0.000000000000000000000000000000000000000000000000000000000000000000000000000001]",
    "[true]", "[false]", "[null]", "[tru]", "[truex]", "[true1]", "[nul]", "[nulll]", "[True]",
    "[\"a\"]", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\u0041\\u00e9\\u5c65\"]", "[\"\\u0000\"]",
    "[\"\\ud834\\udd1e\"]", "[\"\\ud834\"]", "[\"\\ud834x\"]", "[\"\\ud834\\u0041\"]", "[\"\\udd1e\"]",
    "[\"\\u12\"]", "[\"\\u12g4\"]", "[\"\\x\"]", "[\"\\\"]", "[\"abc", "[\"a\tb\"]", "[\"a\x7f\"]",
    "[\"履坦镇\"]", "[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xc0\x80\"]", "[\"\xed\xa0\x80\"]",
    "[\"\xf4\x90\x80\x80\"]", "[\"\xf0\x9d\x84\x9e\"]", "[\"\xff\"]", "[\"\x80\"]", "[1] x", "[1] ]",
    "[1]\xff", "\xef\xbb\xbf[1]", "[1]  \n ", "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "[[[]]]",
    "[\"\\u00e9\\uD834\\uDD1E\"]", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
    "{\"location\":{\"latitude\":28.9,\"longitude\":119.8}}", "[/* */1]", "['a']", "[\"a\"\"b\"]",
    "[+1]", "[0x10]", "[Infinity]", "[NaN]", "[1.0e+0]", "[-0.0]", "{\"a\":1}{}", "[]]",
};

static void agrees_on_chosen_texts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same_s(cases[i]);
    same("[\"a\0b\"]", 7);
    same("[1]\0", 4);
    same("{\"a\0\":1}", 8);
}

static void agrees_on_depth(void **state)
{
    (void)state;
    /* 2048 values deep is the most either reads, scalars counted */
    for (int depth = 2046; depth <= 2050; depth++) {
        char *t = malloc((size_t)depth * 2 + 4);
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            t[n++] = '[';
        for (int i = 0; i < depth; i++)
            t[n++] = ']';
        same(t, n);
        n = 0;
        for (int i = 0; i < depth - 1; i++)
            t[n++] = '[';
        t[n++] = '1';
        for (int i = 0; i < depth - 1; i++)
            t[n++] = ']';
        same(t, n);
        free(t);
    }
}

/* Random edits of real bodies: a byte changed, dropped, doubled or put in. */
static void agrees_on_mutated_bodies(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"source\":\"patrol\",\"matter_code\":\"330217001\",\"township_code\":\"330723101000\","
        "\"discovered_at\":\"2026-12-08T01:00:00Z\",\"discovered_by\":\"wy-scjg\",\"description\":"
        "\"巡查发现沿街店铺占道经营\\n影响通行\",\"location\":{\"address\":\"履坦镇履坦街1号\","
        "\"latitude\":28.9,\"longitude\":-119.8e0},\"urgency\":\"emergency\",\"materials\":[{\"kind\":"
        "\"photo\",\"uri\":\"https://x/\\u5c65.jpg\"}],\"suspected_crime\":false,\"party\":null}",
        "[\"\\ud834\\udd1e\",-0,1e-5,9223372036854775807,{\"\":[[],{}]},true,null,\"\\\"\"]",
    };
    static const char alphabet[] = "{}[]\",:\\/-+.0123456789eEtrufalsn \t\r\nu\x01\xc3\xa9\xe5\x80\xff";
    char buf[1024];
    for (int round = 0; round < 300000; round++) {
        const char *seed = seeds[next() % 2];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (int edits = 1 + (int)(next() % 3); edits > 0; edits--) {
            size_t at = next() % n;
            char c = alphabet[next() % (sizeof(alphabet) - 1)];
            switch (next() % 4) {
            case 0: buf[at] = c; break;
            case 1: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
            case 2:
                if (n + 1 < sizeof(buf))
                    memmove(buf + at + 1, buf + at, n - at), n++;
                break;
            default:
                if (n + 1 < sizeof(buf))
                    memmove(buf + at + 1, buf + at, n - at), buf[at] = c, n++;
            }
            if (n == 0)
                break;
        }
        same(buf, n);
    }
}

static void tells_where(void **state)
{
    (void)state;
    cb_jsonr_error_t e;
    assert_null(cb_jsonr_loadb("{\"a\":1,\n \"a\":2}", 15, &e));
    assert_string_equal(e.text, "duplicate object key");
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 2);
    assert_int_equal(e.position, 9);
    assert_null(cb_jsonr_loadb("[\"\\u0000\"]", 10, &e));
    assert_non_null(strstr(e.text, "\\u0000"));
    assert_null(cb_jsonr_loadb("[1] x", 5, NULL)); /* no error asked for */
    /* the one difference: jansson skips a NUL byte right after a number */
    json_t *j = json_loadb("[6\0]", 4, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    json_decref(j);
    assert_null(cb_jsonr_loadb("[6\0]", 4, &e));
    assert_int_equal(e.position, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_on_chosen_texts),
        cmocka_unit_test(agrees_on_depth),
        cmocka_unit_test(agrees_on_mutated_bodies),
        cmocka_unit_test(tells_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
