/* The hot-path JSON scanner must accept exactly what the strict parser
 * accepts (it decides which bytes are copied to clients verbatim) and hand
 * out the right member views. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "jscan.h"

static void test_agrees_with_strict_parser(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        " {\"a\":1} ",
        "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
        "{\"s\":\"\\u00b0\\n\\\"\\\\\\/\"}",
        "{\"u\":\"\xc2\xb0 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "-0",
        "1.5e-3",
        "\"x\"",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "[1,]",
        "[,1]",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":-}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":tru}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"raw\ttab\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"\xe2\x82\"}",
        "{} {}",
        "{\"a\":1}x",
        "",
        "   ",
        "{\"a\":'x'}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "{\"\":\"\"}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    sy_json_parser_t *p = sy_json_parser_new();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_object *o = NULL;
        const char *why;
        bool strict = sy_json_parse(p, docs[i], strlen(docs[i]), &o, &why) == 0;
        json_object_put(o);
        sy_str_t v;
        bool scan = sy_jscan_document(docs[i], strlen(docs[i]), &v);
        /* Never more lenient; on ASCII exactly as strict (json-c lets some
         * ill-formed UTF-8 such as overlong forms through, the scanner does
         * not: such events just take the slow path). */
        bool ascii = true;
        for (const char *c = docs[i]; *c; c++)
            if ((unsigned char)*c >= 0x80)
                ascii = false;
        if ((scan && !strict) || (ascii && strict != scan))
            fail_msg("doc %zu (%s): strict parser %d, scanner %d", i, docs[i], strict, scan);
    }
    sy_json_parser_free(p);
}

static void test_members_and_offsets(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"model\":\"m\", \"choices\":[{\"finish_reason\":null}],\"usage\":null}";
    sy_str_t v, key, val;
    sy_jscan_t it;
    assert_true(sy_jscan_document(doc, sizeof(doc) - 1, &v));
    assert_true(sy_jscan_begin(&it, v, true));
    assert_int_equal(sy_jscan_next(&it, &key, &val), 1);
    assert_true(sy_jscan_key_is(key, "model"));
    assert_true(sy_jscan_str_is(val, "m"));
    assert_int_equal(it.prev_end, 1);
    assert_int_equal(sy_jscan_next(&it, &key, &val), 1);
    assert_true(sy_jscan_key_is(key, "choices"));
    sy_jscan_t ai;
    sy_str_t k2, v2;
    assert_true(sy_jscan_begin(&ai, val, false));
    assert_int_equal(sy_jscan_next(&ai, &k2, &v2), 1);
    assert_int_equal(k2.len, 0);
    assert_int_equal(v2.ptr[0], '{');
    assert_int_equal(sy_jscan_next(&ai, &k2, &v2), 0);
    assert_int_equal(sy_jscan_next(&it, &key, &val), 1);
    assert_true(sy_jscan_key_is(key, "usage"));
    /* Cutting [prev_end, last_end) removes the member and its leading comma. */
    char cut[sizeof(doc)];
    size_t a = it.prev_end, b = it.last_end;
    memcpy(cut, doc, a);
    memcpy(cut + a, doc + b, sizeof(doc) - b);
    assert_string_equal(cut, "{\"model\":\"m\", \"choices\":[{\"finish_reason\":null}]}");
    assert_int_equal(sy_jscan_next(&it, &key, &val), 0);
    assert_int_equal(sy_jscan_next(&it, &key, &val), 0);

    uint64_t x;
    assert_true(sy_jscan_u64(SY_STR("42"), &x));
    assert_int_equal(x, 42);
    assert_false(sy_jscan_u64(SY_STR("-1"), &x));
    assert_false(sy_jscan_u64(SY_STR("1.0"), &x));
    assert_false(sy_jscan_u64(SY_STR("99999999999999999999"), &x));
    assert_false(sy_jscan_str_is(SY_STR("\"a\\u0062\""), "ab")); /* escapes never match */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_strict_parser),
        cmocka_unit_test(test_members_and_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
