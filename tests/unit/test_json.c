/* Unit tests for common/json.c: strictness (NaN/Infinity, trailing bytes,
 * depth, malformed input), exact number round trips, serialization flags and
 * the typed getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "json.h"

static int setup(void **state)
{
    *state = sy_json_parser_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sy_json_parser_free(*state);
    return 0;
}

/* Parses s and expects a failure with the given reason; out stays untouched. */
static void expect_fail(sy_json_parser_t *p, const char *s, size_t len, const char *reason)
{
    json_object *sentinel = (json_object *)(uintptr_t)0x1;
    json_object *out = sentinel;
    const char *why = NULL;
    int rc = sy_json_parse(p, s, len, &out, &why);
    if (rc != SY_EINVAL)
        fail_msg("accepted %.*s", (int)len, s);
    assert_ptr_equal(out, sentinel);
    assert_non_null(why);
    if (reason != NULL && strcmp(why, reason) != 0)
        fail_msg("%.*s: reason '%s', expected '%s'", (int)len, s, why, reason);
}

/* Parses s, serializes the result and returns it (a new heap string). */
static char *round_trip(sy_json_parser_t *p, const char *s)
{
    json_object *o = NULL;
    const char *why = NULL;
    if (sy_json_parse(p, s, strlen(s), &o, &why) != 0)
        fail_msg("rejected %s: %s", s, why);
    size_t len = 0;
    const char *txt = sy_json_to_string(o, &len);
    assert_int_equal(len, strlen(txt));
    char *copy = strdup(txt);
    json_object_put(o);
    return copy;
}

static void expect_round_trip(sy_json_parser_t *p, const char *in, const char *want)
{
    char *got = round_trip(p, in);
    assert_string_equal(got, want);
    free(got);
}

static void test_valid_documents(void **state)
{
    sy_json_parser_t *p = *state;
    expect_round_trip(p, "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}",
                      "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
    /* Whitespace around and inside is fine; output is plain. */
    expect_round_trip(p, " \r\n\t{ \"a\" : [ 1 , 2 ] }\n\r\t ", "{\"a\":[1,2]}");
    /* Top-level scalars need no terminator after them. */
    expect_round_trip(p, "123", "123");
    expect_round_trip(p, "-7", "-7");
    expect_round_trip(p, "true", "true");
    expect_round_trip(p, "false", "false");
    expect_round_trip(p, "null", "null");
    expect_round_trip(p, "\"s\"", "\"s\"");
    expect_round_trip(p, "-0.5e3", "-0.5e3");
    /* No slash escaping; unicode escapes decode to UTF-8. */
    expect_round_trip(p, "{\"url\":\"https://x/y\"}", "{\"url\":\"https://x/y\"}");
    expect_round_trip(p, "[\"\\u00e9\\ud83d\\ude00\"]", "[\"\xc3\xa9\xf0\x9f\x98\x80\"]");
    expect_round_trip(p, "[\"\xc3\xa9\"]", "[\"\xc3\xa9\"]");
    expect_round_trip(p, "[\"a\\nb\\\"c\\\\\"]", "[\"a\\nb\\\"c\\\\\"]");
}

static void test_numbers_round_trip_exactly(void **state)
{
    sy_json_parser_t *p = *state;
    const char *nums[] = {
        "0",
        "-0.0",
        "0.1",
        "1.10",
        "1.5e10",
        "1E+2",
        "2.5E-3",
        "3.141592653589793238462643383279",
        "123456789012345678901234567890.5",
        "1e400",
        "-1e-400",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775807",
        "9223372036854775808",
        "18446744073709551614",
        "0.30000000000000004",
        "1.7976931348623157e308",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(nums); i++) {
        char in[128];
        char want[128];
        snprintf(in, sizeof(in), "{\"n\": %s ,\"m\":[ %s ]}", nums[i], nums[i]);
        snprintf(want, sizeof(want), "{\"n\":%s,\"m\":[%s]}", nums[i], nums[i]);
        expect_round_trip(p, in, want);
    }
}

static void test_nan_and_infinity_rejected(void **state)
{
    sy_json_parser_t *p = *state;
    const char *bad[] = {"NaN",
                         "Infinity",
                         "-Infinity",
                         "[NaN]",
                         "[1,Infinity]",
                         "{\"a\":-Infinity}",
                         "{\"a\":{\"b\":[0,{\"c\":NaN}]}}",
                         "[ NaN ]"};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        expect_fail(p, bad[i], strlen(bad[i]), "NaN or Infinity is not JSON");
    /* Spellings json-c does not accept at all are plain syntax errors. */
    expect_fail(p, "[nan]", 5, NULL);
    expect_fail(p, "[inf]", 5, NULL);
    expect_fail(p, "[-nan]", 6, NULL);
    /* ...but a string saying NaN is fine. */
    expect_round_trip(p, "[\"NaN\",\"Infinity\"]", "[\"NaN\",\"Infinity\"]");
}

static void test_trailing_bytes_rejected(void **state)
{
    sy_json_parser_t *p = *state;
    const char *bad[] = {"{} x", "[1]]", "{}{}", "[1] [2]", "\"a\"b", "{}\x01", "null,"};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        expect_fail(p, bad[i], strlen(bad[i]), "trailing bytes after JSON");
    /* A NUL after the document is trailing data too, not an end marker. */
    expect_fail(p, "{}\0", 3, "trailing bytes after JSON");
    /* Two top-level scalars are invalid (the tokener sees "1 2"). */
    expect_fail(p, "1 2", 3, NULL);
    /* Parsing stops at len: bytes past it are not looked at. */
    json_object *o = NULL;
    assert_int_equal(sy_json_parse(p, "[1]garbage", 3, &o, NULL), 0);
    json_object_put(o);
}

static void nest(sy_buf_t *b, int depth, const char *open, const char *close)
{
    sy_buf_reset(b);
    for (int i = 0; i < depth; i++)
        sy_buf_append_str(b, open);
    sy_buf_append_str(b, "1");
    for (int i = 0; i < depth; i++)
        sy_buf_append_str(b, close);
}

static void test_depth_limit(void **state)
{
    sy_json_parser_t *p = *state;
    sy_buf_t b;
    sy_buf_init(&b);
    json_object *o = NULL;
    nest(&b, SY_JSON_MAX_DEPTH, "[", "]");
    assert_int_equal(sy_json_parse(p, b.data, b.len, &o, NULL), 0);
    json_object_put(o);
    nest(&b, SY_JSON_MAX_DEPTH + 1, "[", "]");
    expect_fail(p, b.data, b.len, "JSON nested too deeply");
    nest(&b, SY_JSON_MAX_DEPTH, "{\"k\":", "}");
    assert_int_equal(sy_json_parse(p, b.data, b.len, &o, NULL), 0);
    json_object_put(o);
    nest(&b, SY_JSON_MAX_DEPTH + 1, "{\"k\":", "}");
    expect_fail(p, b.data, b.len, "JSON nested too deeply");
    /* Far deeper input fails the same way, without recursion trouble. */
    nest(&b, 100000, "[", "]");
    expect_fail(p, b.data, b.len, "JSON nested too deeply");
    sy_buf_free(&b);
    /* The parser is reusable after every failure. */
    assert_int_equal(sy_json_parse(p, "[1]", 3, &o, NULL), 0);
    json_object_put(o);
}

static void test_malformed_rejected(void **state)
{
    sy_json_parser_t *p = *state;
    const char *bad[] = {"[1,]",        "{\"a\":1,}",
                         "{'a':1}",     "[01]",
                         "[1.]",        "[1.e5]",
                         "[.5]",        "[1e]",
                         "[-]",         "tru",
                         "\"abc",       "{\"a\"}",
                         "{a:1}",       "[",
                         "{\"a\":",     "[1 2]",
                         "+1",          "0x10",
                         "[1,,2]",      "\"\\x\"",
                         "[\"\\u12\"]", "{\"a\":1 \"b\":2}"};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        expect_fail(p, bad[i], strlen(bad[i]), NULL);
    expect_fail(p, "", 0, "empty JSON document");
    expect_fail(p, " \n\t ", 4, "empty JSON document");
    expect_fail(p, "[\"\xff\"]", 5, "invalid UTF-8 in JSON");
    expect_fail(p, "[\"\xc3\"]", 5, "invalid UTF-8 in JSON");
    expect_fail(p, "\"a\0b\"", 5, NULL);
    /* json-c's strict mode lets these through; the wrapper does not. */
    const char *lenient[] = {"{'a':1}",    "['a']",       "[-01]",       "[0.]",
                             "[\"a\tb\"]", "[\"a\x01\"]", "{\"a\nb\":1}"};
    for (size_t i = 0; i < SY_ARRAY_LEN(lenient); i++)
        expect_fail(p, lenient[i], strlen(lenient[i]), "invalid JSON");
}

static void test_integer_range(void **state)
{
    sy_json_parser_t *p = *state;
    /* json-c clamps these silently; the wrapper refuses them instead. */
    expect_fail(p, "[18446744073709551616]", 22, "JSON number out of range");
    expect_fail(p, "[-9223372036854775809]", 22, "JSON number out of range");
    expect_fail(p, "{\"seed\":99999999999999999999999}", 32, "JSON number out of range");
    expect_round_trip(p, "[-9223372036854775807]", "[-9223372036854775807]");
}

static void test_parser_reuse(void **state)
{
    sy_json_parser_t *p = *state;
    /* Interleave successes and failures on one tokener. */
    for (int i = 0; i < 1000; i++) {
        char doc[64];
        int n = snprintf(doc, sizeof(doc), "{\"i\":%d,\"s\":\"v%d\"}", i, i);
        json_object *o = NULL;
        assert_int_equal(sy_json_parse(p, doc, (size_t)n, &o, NULL), 0);
        int64_t v = -1;
        assert_int_equal(sy_json_get_int64(o, "i", &v), 0);
        assert_int_equal(v, i);
        json_object_put(o);
        /* A truncated document must not leave state behind for the next one. */
        expect_fail(p, doc, (size_t)n - 1, "invalid JSON");
    }
}

static void test_parse_once(void **state)
{
    (void)state;
    json_object *o = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_json_parse_once("{\"a\":NaN}", 9, &o, &err), SY_EINVAL);
    assert_null(o);
    assert_int_equal(err.code, SY_EINVAL);
    assert_string_equal(err.msg, "NaN or Infinity is not JSON");
    assert_int_equal(sy_json_parse_once("{\"a\":2}", 7, &o, &err), 0);
    assert_non_null(o);
    json_object_put(o);
    assert_int_equal(sy_json_parse_once("{} {}", 5, &o, NULL), SY_EINVAL);
}

static void test_getters(void **state)
{
    sy_json_parser_t *p = *state;
    const char *doc = "{\"s\":\"he\\u0000llo\",\"i\":-42,\"big\":9223372036854775808,\"d\":2.5,"
                      "\"b\":true,\"o\":{\"x\":1},\"a\":[1,2],\"n\":null}";
    json_object *o = NULL;
    assert_int_equal(sy_json_parse(p, doc, strlen(doc), &o, NULL), 0);

    size_t len = 0;
    const char *s = sy_json_get_string(o, "s", &len);
    assert_non_null(s);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "he\0llo", 6);
    assert_null(sy_json_get_string(o, "i", &len));
    assert_null(sy_json_get_string(o, "missing", &len));

    int64_t i = 7;
    assert_int_equal(sy_json_get_int64(o, "i", &i), 0);
    assert_int_equal(i, -42);
    i = 7;
    assert_int_equal(sy_json_get_int64(o, "missing", &i), SY_ENOENT);
    assert_int_equal(sy_json_get_int64(o, "d", &i), SY_EINVAL);
    assert_int_equal(sy_json_get_int64(o, "s", &i), SY_EINVAL);
    assert_int_equal(sy_json_get_int64(o, "big", &i), SY_EINVAL); /* does not fit int64 */
    assert_int_equal(i, 7);

    double d = 0;
    assert_int_equal(sy_json_get_double(o, "d", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(sy_json_get_double(o, "i", &d), 0);
    assert_true(d == -42.0);
    assert_int_equal(sy_json_get_double(o, "b", &d), SY_EINVAL);
    assert_int_equal(sy_json_get_double(o, "nope", &d), SY_ENOENT);

    bool b = false;
    assert_int_equal(sy_json_get_bool(o, "b", &b), 0);
    assert_true(b);
    assert_int_equal(sy_json_get_bool(o, "i", &b), SY_EINVAL);
    assert_int_equal(sy_json_get_bool(o, "nope", &b), SY_ENOENT);

    assert_non_null(sy_json_get_object(o, "o"));
    assert_null(sy_json_get_object(o, "a"));
    assert_non_null(sy_json_get_array(o, "a"));
    assert_null(sy_json_get_array(o, "o"));
    assert_non_null(sy_json_get(o, "n") == NULL ? o : NULL); /* JSON null reads as NULL */
    assert_int_equal(sy_json_get_int64(o, "n", &i), SY_ENOENT);
    /* Member access on a non-object yields nothing. */
    assert_null(sy_json_get(sy_json_get_array(o, "a"), "x"));
    assert_null(sy_json_get(NULL, "x"));
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_round_trip_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nan_and_infinity_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_bytes_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integer_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parser_reuse, setup, teardown),
        cmocka_unit_test(test_parse_once),
        cmocka_unit_test_setup_teardown(test_getters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
