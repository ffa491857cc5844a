/* Unit tests for dataplane/openai.c: usage extraction from responses and
 * stream chunks (the usage-only chunk filter), error documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dataplane/openai.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures/providers"
#endif

static sy_json_parser_t *P;

static int setup(void **state)
{
    (void)state;
    P = sy_json_parser_new();
    return P ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sy_json_parser_free(P);
    return 0;
}

static void test_find_usage_in_response(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"the \\\"usage\\\": "
        "{\\\"prompt_tokens\\\":"
        " 999} trick\"}}],\"usage\":{\"prompt_tokens\":1214,\"completion_tokens\":12,"
        "\"total_tokens\":1226,\"prompt_tokens_details\":{\"cached_tokens\":1024,"
        "\"cache_write_tokens\":7}},\"service_tier\":\"default\"}";
    sy_openai_usage_t u;
    assert_int_equal(sy_openai_find_usage(P, body, strlen(body), &u), 0);
    assert_int_equal(u.prompt_tokens, 1214);
    assert_int_equal(u.completion_tokens, 12);
    assert_int_equal(u.cached_tokens, 1024);
    assert_int_equal(u.cache_write_tokens, 7);

    const char *none = "{\"id\":\"x\",\"usage\":null}";
    assert_int_equal(sy_openai_find_usage(P, none, strlen(none), &u), SY_ENOENT);
    const char *cut = "{\"usage\":{\"prompt_tokens\":1";
    assert_int_equal(sy_openai_find_usage(P, cut, strlen(cut), &u), SY_EINVAL);
    const char *spaced = "{ \"usage\" :\n {\"prompt_tokens\": 3, \"completion_tokens\": 4} }";
    assert_int_equal(sy_openai_find_usage(P, spaced, strlen(spaced), &u), 0);
    assert_int_equal(u.prompt_tokens, 3);
    assert_int_equal(u.cached_tokens, 0);

    /* The search runs backwards from the end: usage first, a later
     * "usage": that is no object, and a key at offset 0 are all found. */
    const char *first = "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8},\"id\":\"x\","
                        "\"meta\":{\"usage\":null,\"note\":\"usage\"}}";
    assert_int_equal(sy_openai_find_usage(P, first, strlen(first), &u), 0);
    assert_int_equal(u.prompt_tokens, 7);
    assert_int_equal(u.completion_tokens, 8);
    const char *twice = "{\"usage\":{\"prompt_tokens\":1},\"x\":{\"usage\":{\"prompt_tokens\":2}}}";
    assert_int_equal(sy_openai_find_usage(P, twice, strlen(twice), &u), 0);
    assert_int_equal(u.prompt_tokens, 2); /* the last one, as before */
}

static void test_find_usage_in_fixture(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURES "/openai_chat_response.json", "rb");
    if (f == NULL)
        skip();
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    sy_openai_usage_t u;
    assert_int_equal(sy_openai_find_usage(P, buf, n, &u), 0);
    assert_true(u.prompt_tokens > 0);
}

static void test_chunk_usage_filter(void **state)
{
    (void)state;
    sy_openai_usage_t u;
    bool only = true;
    sy_str_t normal =
        SY_STR("{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],"
               "\"usage\":null}");
    assert_int_equal(sy_openai_chunk_usage(P, normal, &u, &only), SY_ENOENT);
    sy_str_t no_usage = SY_STR("{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{}}]}");
    assert_int_equal(sy_openai_chunk_usage(P, no_usage, &u, &only), SY_ENOENT);
    sy_str_t usage_only = SY_STR(
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,"
        "\"total_tokens\":11}}");
    assert_int_equal(sy_openai_chunk_usage(P, usage_only, &u, &only), 0);
    assert_true(only);
    assert_int_equal(u.prompt_tokens, 5);
    assert_int_equal(u.completion_tokens, 6);
    /* Some servers put usage on the last content chunk: keep that chunk. */
    sy_str_t with_choices =
        SY_STR("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
               "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}");
    only = true;
    assert_int_equal(sy_openai_chunk_usage(P, with_choices, &u, &only), 0);
    assert_false(only);
    sy_str_t broken = SY_STR("{\"usage\":{\"prompt_tokens\":1}");
    assert_int_equal(sy_openai_chunk_usage(P, broken, &u, &only), SY_EINVAL);
}

static void test_error_event_and_json(void **state)
{
    (void)state;
    assert_true(sy_openai_is_error_event(SY_STR("{\"error\":{\"message\":\"x\"}}")));
    assert_true(sy_openai_is_error_event(SY_STR(" { \"error\" : 1}")));
    assert_false(sy_openai_is_error_event(SY_STR("{\"id\":\"x\",\"error\":1}")));
    assert_false(sy_openai_is_error_event(SY_STR("[DONE]")));
    assert_false(sy_openai_is_error_event(SY_STR("")));

    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(
        sy_openai_error_json(&b, "bad \"thing\"", "invalid_request_error", "model", NULL), 0);
    assert_string_equal(b.data, "{\"error\":{\"message\":\"bad \\\"thing\\\"\",\"type\":"
                                "\"invalid_request_error\",\"param\":\"model\",\"code\":null}}");
    json_object *o = NULL;
    const char *why;
    assert_int_equal(sy_json_parse(P, b.data, b.len, &o, &why), 0);
    json_object_put(o);
    sy_buf_free(&b);
}

static void test_value_len(void **state)
{
    (void)state;
    const char *s = "{\"a\":\"}\\\"{\",\"b\":[1,{\"c\":2}]} tail";
    assert_int_equal(sy_openai_value_len(s, strlen(s)), strlen(s) - 5);
    assert_int_equal(sy_openai_value_len("{\"a\":1", 6), 0);
    assert_int_equal(sy_openai_value_len("[]", 2), 2);
}

/* The scanner-based reading keeps json-c's semantics: duplicates (the last
 * wins), members that are not counts read as 0, invalid JSON refused. */
static void test_usage_edge_cases(void **state)
{
    (void)state;
    sy_openai_usage_t u;
    const char *dup =
        "{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":9,\"completion_tokens\":2}}";
    assert_int_equal(sy_openai_find_usage(P, dup, strlen(dup), &u), 0);
    assert_int_equal(u.prompt_tokens, 9);
    assert_int_equal(u.completion_tokens, 2);
    const char *odd = "{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":\"7\","
                      "\"prompt_tokens_details\":null}}";
    assert_int_equal(sy_openai_find_usage(P, odd, strlen(odd), &u), 0);
    assert_int_equal(u.prompt_tokens, 0);
    assert_int_equal(u.completion_tokens, 0);
    assert_int_equal(u.cached_tokens, 0);
    const char *huge =
        "{\"usage\":{\"prompt_tokens\":9999999999999999999,\"completion_tokens\":4}}";
    assert_int_equal(sy_openai_find_usage(P, huge, strlen(huge), &u), 0);
    assert_int_equal(u.prompt_tokens, 0);
    assert_int_equal(u.completion_tokens, 4);
    const char *bad = "{\"usage\":{\"prompt_tokens\":1,\"x\":[1,}}";
    assert_int_equal(sy_openai_find_usage(P, bad, strlen(bad), &u), SY_EINVAL);
    const char *nested = "{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":5,"
                         "\"cached_tokens\":6},\"prompt_tokens\":10}}";
    assert_int_equal(sy_openai_find_usage(P, nested, strlen(nested), &u), 0);
    assert_int_equal(u.cached_tokens, 6);
    assert_int_equal(u.prompt_tokens, 10);

    bool only = false;
    /* Trailing bytes after the chunk's object: not JSON. */
    sy_str_t trailing = SY_STR("{\"choices\":[],\"usage\":{\"prompt_tokens\":1}} x");
    assert_int_equal(sy_openai_chunk_usage(P, trailing, &u, &only), SY_EINVAL);
    /* "choices": null counts as absent; a non-array keeps its chunk. */
    sy_str_t null_choices = SY_STR("{\"choices\":null,\"usage\":{\"prompt_tokens\":1}}");
    assert_int_equal(sy_openai_chunk_usage(P, null_choices, &u, &only), 0);
    assert_true(only);
    sy_str_t weird = SY_STR("{\"choices\":{},\"usage\":{\"prompt_tokens\":1}}");
    assert_int_equal(sy_openai_chunk_usage(P, weird, &u, &only), 0);
    assert_false(only);
    sy_str_t no_choices = SY_STR("{\"usage\":{\"prompt_tokens\":3}}");
    assert_int_equal(sy_openai_chunk_usage(P, no_choices, &u, &only), 0);
    assert_true(only);
    assert_int_equal(u.prompt_tokens, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_usage_in_response),
        cmocka_unit_test(test_find_usage_in_fixture),
        cmocka_unit_test(test_chunk_usage_filter),
        cmocka_unit_test(test_error_event_and_json),
        cmocka_unit_test(test_value_len),
        cmocka_unit_test(test_usage_edge_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
