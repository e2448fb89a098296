/* test_jsonw.c — cb_jsonw writes exactly what json_dumps(JSON_COMPACT) writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Text that needs every kind of escape, and UTF-8 that needs none. */
static json_t *random_string(char *key_out, size_t key_cap)
{
    static const char *const pieces[] = {"a",  "Z",  "\"",   "\\",   "/",    "\b", "\f",     "\n",
                                         "\r", "\t", "\x01", "\x1f", "\x7f", " ",  "履坦镇", "é",
                                         "𝄞",  "{",  "}",    ",",    ":",    "0"};
    char s[128] = "";
    size_t n = next() % 8;
    for (size_t i = 0; i < n; i++)
        strcat(s, pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))]);
    if (key_out)
        snprintf(key_out, key_cap, "%s", s);
    return json_string(s);
}

static json_t *random_doc(int depth)
{
    switch (next() % (depth > 3 ? 7 : 9)) {
    case 0: return random_string(NULL, 0);
    case 1: {
        static const json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1700000000000};
        return json_integer(ints[next() % 7]);
    }
    case 2: {
        static const double reals[] = {0.0, -0.0, 0.1, 3.0, 1e300, -2.5e-8, 123456789.125};
        return json_real(reals[next() % 7]);
    }
    case 3: return json_true();
    case 4: return json_false();
    case 5: return json_null();
    case 6: return json_string("");
    case 7: {
        json_t *a = json_array();
        for (size_t i = 0, n = next() % 5; i < n; i++)
            json_array_append_new(a, random_doc(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = 0, n = next() % 6; i < n; i++) {
            char key[128];
            json_decref(random_string(key, sizeof(key)));
            json_object_set_new(o, key, random_doc(depth + 1));
        }
        return o;
    }
    }
}

static void writes_what_jansson_writes(void **state)
{
    (void)state;
    cb_jsonw_t w = {0};
    for (int i = 0; i < 5000; i++) {
        json_t *doc = random_doc(0);
        char *want = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(want);
        w.len = 0;
        assert_int_equal(cb_jsonw_append(&w, doc), 0);
        assert_string_equal(w.text, want);
        assert_int_equal(w.len, strlen(want));
        char *again = cb_jsonw_dumps(doc);
        assert_string_equal(again, want);
        free(again);
        free(want);
        json_decref(doc);
    }
    cb_jsonw_close(&w);
    assert_null(w.text);
}

static void keeps_insertion_order_and_keys_with_nul(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    json_object_setn_new(o, "n\0ul", 4, json_string("x"));
    json_object_set_new(o, "m", json_pack("{s:[i,s,n]}", "k", 3, "履", NULL));
    char *got = cb_jsonw_dumps(o), *want = json_dumps(o, JSON_COMPACT);
    assert_string_equal(got,
                        "{\"z\":1,\"a\":2,\"n\\u0000ul\":\"x\",\"m\":{\"k\":[3,\"履\",null]}}");
    assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(o);
}

static void appends_after_what_is_there(void **state)
{
    (void)state;
    cb_jsonw_t w = {0};
    json_t *a = json_pack("{s:i}", "seq", 1), *b = json_pack("[s]", "x");
    assert_int_equal(cb_jsonw_append(&w, a), 0);
    assert_int_equal(cb_jsonw_append(&w, b), 0);
    assert_string_equal(w.text, "{\"seq\":1}[\"x\"]");
    json_decref(a);
    json_decref(b);
    cb_jsonw_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_what_jansson_writes),
        cmocka_unit_test(keeps_insertion_order_and_keys_with_nul),
        cmocka_unit_test(appends_after_what_is_there),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
