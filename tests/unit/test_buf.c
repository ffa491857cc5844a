/* Unit tests for common/buf.c: growth, formatting, JSON escaping, consume,
 * steal and the string-view helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void test_growth_keeps_bytes_and_nul(void **state)
{
    (void)state;
    sy_buf_t b;
    sy_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    /* 100000 appends of one byte each: contents exact, always NUL-terminated. */
    for (int i = 0; i < 100000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(sy_buf_append(&b, &c, 1), 0);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    /* Capacity grows geometrically, not per append. */
    assert_true(b.cap < 4 * 100000);
    sy_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    sy_buf_free(NULL);
}

static void test_reserve_and_overflow(void **state)
{
    (void)state;
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_buf_reserve(&b, 1000), 0);
    assert_true(b.cap >= 1001);
    size_t cap = b.cap;
    assert_int_equal(sy_buf_append(&b, "xyz", 3), 0);
    assert_int_equal(b.cap, cap); /* no reallocation inside reserved room */
    assert_int_equal(sy_buf_reserve(&b, SIZE_MAX - 1), SY_ENOMEM);
    assert_int_equal(b.len, 3); /* unchanged on failure */
    assert_memory_equal(b.data, "xyz", 4);
    assert_int_equal(sy_buf_append(&b, NULL, 0), 0);
    sy_buf_free(&b);
}

static void test_appendf(void **state)
{
    (void)state;
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_buf_appendf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    /* A long formatted string forces the second vsnprintf pass. */
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(sy_buf_appendf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 2 + 4999);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(sy_buf_append_str(&b, "!"), 0);
    assert_int_equal(sy_buf_append_view(&b, SY_STR("?")), 0);
    assert_memory_equal(b.data + b.len - 2, "!?", 3);
    sy_buf_free(&b);
}

static void check_json(const char *in, size_t n, const char *want)
{
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_buf_append_json_string(&b, in, n), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len + 1);
    sy_buf_free(&b);
}

static void test_json_escaping(void **state)
{
    (void)state;
    check_json("", 0, "\"\"");
    check_json("plain", 5, "\"plain\"");
    check_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    check_json("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_json("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    check_json("a\0b", 3, "\"a\\u0000b\"");
    check_json("/", 1, "\"/\""); /* no slash escaping */
    /* Valid UTF-8 passes through untouched. */
    check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
               "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check_json("\x7f", 1, "\"\x7f\"");
    /* Appending after existing content keeps it. */
    sy_buf_t b;
    sy_buf_init(&b);
    sy_buf_append_str(&b, "{\"k\":");
    sy_buf_append_json_string(&b, "v\"", 2);
    sy_buf_append_str(&b, "}");
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    sy_buf_free(&b);
}

static void test_json_escaping_long(void **state)
{
    (void)state;
    /* Every byte value 0..255, many times, so the escaping crosses buffer
     * growth boundaries; verify against a straightforward reference. */
    size_t n = 256 * 40;
    char *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i % 256);
    sy_buf_t want;
    sy_buf_init(&want);
    sy_buf_append(&want, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '"')
            sy_buf_append_str(&want, "\\\"");
        else if (c == '\\')
            sy_buf_append_str(&want, "\\\\");
        else if (c == '\n')
            sy_buf_append_str(&want, "\\n");
        else if (c == '\r')
            sy_buf_append_str(&want, "\\r");
        else if (c == '\t')
            sy_buf_append_str(&want, "\\t");
        else if (c == '\b')
            sy_buf_append_str(&want, "\\b");
        else if (c == '\f')
            sy_buf_append_str(&want, "\\f");
        else if (c < 0x20)
            sy_buf_appendf(&want, "\\u%04x", c);
        else
            sy_buf_append(&want, &in[i], 1);
    }
    sy_buf_append(&want, "\"", 1);
    sy_buf_t got;
    sy_buf_init(&got);
    assert_int_equal(sy_buf_append_json_string(&got, in, n), 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    sy_buf_free(&got);
    sy_buf_free(&want);
    free(in);
}

static void test_consume_reset_steal(void **state)
{
    (void)state;
    sy_buf_t b;
    sy_buf_init(&b);
    sy_buf_append_str(&b, "hello world");
    sy_buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    sy_buf_consume(&b, 0);
    assert_string_equal(b.data, "world");
    sy_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.data[0], '\0');
    sy_buf_append_str(&b, "abc");
    size_t cap = b.cap;
    sy_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    sy_buf_append_str(&b, "stolen");
    size_t len = 0;
    char *p = sy_buf_steal(&b, &len);
    assert_int_equal(len, 6);
    assert_string_equal(p, "stolen");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);
    /* An empty buffer steals as NULL, and the buffer stays usable. */
    p = sy_buf_steal(&b, &len);
    assert_null(p);
    assert_int_equal(len, 0);
    sy_buf_consume(&b, 3); /* no-op on an empty, unallocated buffer */
    sy_buf_reset(&b);
    assert_int_equal(sy_buf_append_str(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    sy_buf_free(&b);
}

static void test_str_helpers(void **state)
{
    (void)state;
    sy_str_t a = sy_str_from_cstr("Bearer xyz");
    assert_int_equal(a.len, 10);
    assert_true(sy_str_eq(a, SY_STR("Bearer xyz")));
    assert_false(sy_str_eq(a, SY_STR("Bearer xy")));
    assert_true(sy_str_eq(SY_STR_NULL, SY_STR("")));
    assert_true(sy_str_eq_cstr(a, "Bearer xyz"));
    assert_false(sy_str_eq_cstr(a, "bearer xyz"));
    assert_true(sy_str_case_eq_cstr(SY_STR("Content-Type"), "content-type"));
    assert_false(sy_str_case_eq_cstr(SY_STR("Content-Type"), "content-typ"));
    assert_true(sy_str_has_prefix(a, "Bearer "));
    assert_true(sy_str_has_prefix(a, ""));
    assert_false(sy_str_has_prefix(SY_STR("Bear"), "Bearer "));
    assert_int_equal(sy_str_from_cstr(NULL).len, 0);

    sy_str_t t = sy_str_trim(SY_STR(" \t value \t "));
    assert_true(sy_str_eq_cstr(t, "value"));
    t = sy_str_trim(SY_STR("  \t "));
    assert_int_equal(t.len, 0);
    t = sy_str_trim(SY_STR("a\nb")); /* only spaces and tabs */
    assert_int_equal(t.len, 3);

    /* A view that is not NUL-terminated. */
    const char raw[] = {'1', '2', '3', '4', '5'};
    char *d = sy_str_dup((sy_str_t){raw, 3});
    assert_string_equal(d, "123");
    free(d);
    d = sy_str_dup(SY_STR_NULL);
    assert_string_equal(d, "");
    free(d);
}

static void test_str_to_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(sy_str_to_u64(SY_STR("0"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sy_str_to_u64(SY_STR("12345"), &v), 0);
    assert_int_equal(v, 12345);
    assert_int_equal(sy_str_to_u64(SY_STR("18446744073709551615"), &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(sy_str_to_u64(SY_STR("18446744073709551616"), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR("99999999999999999999"), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR(""), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR("-1"), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR("+1"), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR(" 1"), &v), SY_EINVAL);
    assert_int_equal(sy_str_to_u64(SY_STR("12a"), &v), SY_EINVAL);
    assert_true(v == 7); /* untouched on failure */
    /* Only the view is parsed, not what follows it. */
    const char raw[] = "42x";
    assert_int_equal(sy_str_to_u64((sy_str_t){raw, 2}, &v), 0);
    assert_int_equal(v, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_keeps_bytes_and_nul),
        cmocka_unit_test(test_reserve_and_overflow),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_json_escaping_long),
        cmocka_unit_test(test_consume_reset_steal),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_str_to_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
