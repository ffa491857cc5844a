/* Non-streaming responses and error mapping against the fixtures. */
#include "dp_providers_util.h"

static json_object *parse_resp(const sy_provider_ops_t *ops, const char *file, const char *model,
                               sy_provider_usage_t *u)
{
    size_t len;
    char *body = fixture(file, &len);
    sy_json_parser_t *p = sy_json_parser_new();
    sy_provider_resp_opts_t o = {.public_model = sy_str_from_cstr(model), .created = FIXED_CREATED};
    sy_buf_t out;
    sy_provider_error_t e;
    sy_buf_init(&out);
    int rc = ops->parse_response(&o, p, body, len, &out, u, &e);
    if (rc != 0)
        fail_msg("parse_response(%s) failed: %s", file, e.message);
    json_object *got = NULL;
    assert_int_equal(sy_json_parse_once(out.data, out.len, &got, NULL), 0);
    sy_buf_free(&out);
    sy_json_parser_free(p);
    free(body);
    return got;
}

static void test_anthropic_tool_use(void **state)
{
    (void)state;
    sy_provider_usage_t u;
    json_object *got =
        parse_resp(&sy_provider_anthropic, "anthropic_messages_response_tool_use.json",
                   "claude-sonnet-4-5", &u);
    json_object *want = fixture_json("anthropic_to_openai_response.json");
    assert_json_equal(got, want);
    assert_int_equal(u.prompt_tokens, 412);
    assert_int_equal(u.completion_tokens, 98);
    json_object_put(got);
    json_object_put(want);
}

static void test_anthropic_text_cached(void **state)
{
    (void)state;
    sy_provider_usage_t u;
    json_object *got = parse_resp(&sy_provider_anthropic, "anthropic_messages_response.json",
                                  "claude-sonnet-4-5", &u);
    /* Same text as the Gemini twin; prompt = 190 + 0 + 1024 (input excludes cache). */
    json_object *twin = fixture_json("gemini_to_openai_response.json");
    json_object *msg = json_object_object_get(
        json_object_array_get_idx(json_object_object_get(got, "choices"), 0), "message");
    json_object *tmsg = json_object_object_get(
        json_object_array_get_idx(json_object_object_get(twin, "choices"), 0), "message");
    assert_json_equal(msg, tmsg);
    assert_int_equal(u.prompt_tokens, 1214);
    assert_int_equal(u.cached_tokens, 1024);
    assert_int_equal(u.cache_write_tokens, 0);
    assert_int_equal(u.completion_tokens, 14);
    json_object *usage = json_object_object_get(got, "usage");
    assert_int_equal(json_object_get_int(json_object_object_get(usage, "total_tokens")), 1228);
    assert_string_equal(
        sy_provider__str(json_object_array_get_idx(json_object_object_get(got, "choices"), 0),
                         "finish_reason", NULL),
        "stop");
    json_object_put(twin);
    json_object_put(got);
}

static void test_gemini_text(void **state)
{
    (void)state;
    sy_provider_usage_t u;
    json_object *got =
        parse_resp(&sy_provider_gemini, "gemini_generate_response.json", "gemini-2.5-flash", &u);
    json_object *want = fixture_json("gemini_to_openai_response.json");
    assert_json_equal(got, want);
    assert_int_equal(u.completion_tokens, 76); /* candidates 12 + thoughts 64 */
    assert_int_equal(u.reasoning_tokens, 64);
    json_object_put(got);
    json_object_put(want);
}

/* The function-call response carries the same calls as the streamed twin. */
static void test_gemini_function_call(void **state)
{
    (void)state;
    sy_provider_usage_t u;
    json_object *got = parse_resp(
        &sy_provider_gemini, "gemini_generate_response_function_call.json", "gemini-2.5-flash", &u);
    json_object *want = fixture_json("openai_chat_response_tool_calls.json");
    json_object *c = json_object_array_get_idx(json_object_object_get(got, "choices"), 0);
    json_object *wc = json_object_array_get_idx(json_object_object_get(want, "choices"), 0);
    assert_string_equal(sy_provider__str(c, "finish_reason", NULL), "tool_calls");
    json_object *calls = json_object_object_get(json_object_object_get(c, "message"), "tool_calls");
    json_object *wcalls =
        json_object_object_get(json_object_object_get(wc, "message"), "tool_calls");
    assert_int_equal(json_object_array_length(calls), json_object_array_length(wcalls));
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *a = json_object_array_get_idx(calls, i);
        json_object *b = json_object_array_get_idx(wcalls, i);
        /* Synthesised ids: present, distinct; names and arguments as in the twin. */
        assert_true(strncmp(sy_provider__str(a, "id", NULL), "call_", 5) == 0);
        json_object *fa = json_object_object_get(a, "function");
        json_object *fb = json_object_object_get(b, "function");
        assert_string_equal(sy_provider__str(fa, "name", NULL), sy_provider__str(fb, "name", NULL));
        size_t al, bl;
        const char *aa = sy_provider__str(fa, "arguments", &al);
        const char *ba = sy_provider__str(fb, "arguments", &bl);
        assert_args_equal(aa, al, ba, bl);
    }
    assert_string_not_equal(sy_provider__str(json_object_array_get_idx(calls, 0), "id", NULL),
                            sy_provider__str(json_object_array_get_idx(calls, 1), "id", NULL));
    assert_true(json_object_is_type(
        json_object_object_get(json_object_object_get(c, "message"), "content"), json_type_null));
    assert_int_equal(u.prompt_tokens, 61);
    assert_int_equal(u.completion_tokens, 28); /* 61 + 28 == 89: no thoughts to add */
    json_object_put(got);
    json_object_put(want);
}

static void test_openai_passthrough(void **state)
{
    (void)state;
    const char *files[] = {"openai_chat_response.json", "openai_chat_response_tool_calls.json"};
    for (size_t i = 0; i < SY_ARRAY_LEN(files); i++) {
        sy_provider_usage_t u;
        json_object *got = parse_resp(&sy_provider_openai, files[i], "gpt-4o", &u);
        json_object *want = fixture_json(files[i]);
        json_object_object_add(want, "model", json_object_new_string("gpt-4o"));
        assert_json_equal(got, want);
        json_object *wu = json_object_object_get(want, "usage");
        assert_int_equal(u.prompt_tokens,
                         json_object_get_int(json_object_object_get(wu, "prompt_tokens")));
        assert_int_equal(u.completion_tokens,
                         json_object_get_int(json_object_object_get(wu, "completion_tokens")));
        json_object_put(got);
        json_object_put(want);
    }
}

/* A 200 whose body is not a response is the provider's failure (502). */
static void test_invalid_bodies(void **state)
{
    (void)state;
    const sy_provider_ops_t *all[] = {&sy_provider_openai, &sy_provider_anthropic,
                                      &sy_provider_gemini};
    const char *bodies[] = {"",
                            "<html>bad gateway</html>",
                            "{}",
                            "[]",
                            "{\"content\":1}",
                            "{\"choices\":{}}",
                            "{\"candidates\":[]}",
                            "nan"};
    sy_json_parser_t *p = sy_json_parser_new();
    for (size_t i = 0; i < SY_ARRAY_LEN(all); i++) {
        for (size_t j = 0; j < SY_ARRAY_LEN(bodies); j++) {
            sy_provider_resp_opts_t o = {.public_model = SY_STR("m")};
            sy_buf_t out;
            sy_provider_usage_t u = {.prompt_tokens = 99};
            sy_provider_error_t e;
            sy_buf_init(&out);
            assert_int_equal(
                all[i]->parse_response(&o, p, bodies[j], strlen(bodies[j]), &out, &u, &e),
                SY_EINVAL);
            assert_int_equal(e.status, 502);
            assert_int_equal(e.cause, SY_CAUSE_PROVIDER);
            assert_int_equal(out.len, 0);
            assert_int_equal(u.prompt_tokens, 99); /* out-params untouched on failure */
            sy_buf_free(&out);
        }
    }
    sy_json_parser_free(p);
}

/* --- errors ------------------------------------------------------------------------ */

typedef struct err_case {
    const sy_provider_ops_t *ops;
    const char *file;
    int upstream_status;
    int status;
    const char *type;
    const char *code;
    sy_provider_cause_t cause;
    bool retryable;
    uint32_t retry_after;
} err_case_t;

static void test_error_fixtures(void **state)
{
    (void)state;
    const err_case_t cases[] = {
        {&sy_provider_anthropic, "anthropic_error_400.json", 400, 400, "invalid_request_error",
         NULL, SY_CAUSE_CALLER, false, 0},
        {&sy_provider_anthropic, "anthropic_error_401.json", 401, 401, "invalid_request_error",
         "invalid_api_key", SY_CAUSE_PROVIDER, false, 0},
        {&sy_provider_anthropic, "anthropic_error_429.json", 429, 429, "rate_limit_error",
         "rate_limit_exceeded", SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_anthropic, "anthropic_error_529.json", 529, 503, "server_error", "overloaded",
         SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_gemini, "gemini_error_400_invalid_key.json", 400, 401,
         "invalid_request_error", "invalid_api_key", SY_CAUSE_PROVIDER, false, 0},
        {&sy_provider_gemini, "gemini_error_429.json", 429, 429, "rate_limit_error",
         "rate_limit_exceeded", SY_CAUSE_PROVIDER, true, 34},
        {&sy_provider_gemini, "gemini_error_503.json", 503, 503, "server_error", "overloaded",
         SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_openai, "openai_error_400.json", 400, 400, "invalid_request_error",
         "unsupported_parameter", SY_CAUSE_CALLER, false, 0},
        {&sy_provider_openai, "openai_error_401.json", 401, 401, "invalid_request_error",
         "invalid_api_key", SY_CAUSE_PROVIDER, false, 0},
        {&sy_provider_openai, "openai_error_404.json", 404, 404, "invalid_request_error",
         "model_not_found", SY_CAUSE_PROVIDER, false, 0},
        {&sy_provider_openai, "openai_error_429.json", 429, 429, "tokens", "rate_limit_exceeded",
         SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_openai, "openai_error_429_quota.json", 429, 429, "insufficient_quota",
         "insufficient_quota", SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_openai, "openai_error_500.json", 500, 500, "server_error", NULL,
         SY_CAUSE_PROVIDER, true, 0},
        {&sy_provider_openai, "openai_error_503.json", 503, 503, "server_error", "overloaded",
         SY_CAUSE_PROVIDER, true, 0},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        const err_case_t *c = &cases[i];
        size_t len;
        char *body = fixture(c->file, &len);
        json_object *doc = fixture_json(c->file);
        json_object *uerr = json_object_object_get(doc, "error");
        sy_provider_error_t e;
        c->ops->map_error(c->upstream_status, body, len, &e);
        print_message("%s -> %d %s/%s\n", c->file, e.status, e.type, e.code ? e.code : "null");
        assert_int_equal(e.status, c->status);
        assert_string_equal(e.type, c->type);
        if (c->code)
            assert_string_equal(e.code, c->code);
        else
            assert_null(e.code);
        assert_int_equal(e.cause, c->cause);
        assert_int_equal(e.retryable, c->retryable);
        assert_int_equal(e.retry_after_s, c->retry_after);
        /* The upstream's message reaches the client. */
        assert_string_equal(e.message, sy_provider__str(uerr, "message", NULL));
        sy_buf_t out;
        sy_buf_init(&out);
        assert_int_equal(sy_provider_error_write(&e, &out), 0);
        json_object *w = NULL;
        assert_int_equal(sy_json_parse_once(out.data, out.len, &w, NULL), 0);
        json_object *we = json_object_object_get(w, "error");
        assert_non_null(we);
        assert_int_equal(json_object_object_length(we), 5);
        assert_string_equal(sy_provider__str(we, "cause", NULL), sy_provider_cause_name(c->cause));
        json_object_put(w);
        sy_buf_free(&out);
        json_object_put(doc);
        free(body);
    }
}

/* Bodies that are not the provider's error shape still map by status. */
static void test_error_garbage(void **state)
{
    (void)state;
    const sy_provider_ops_t *all[] = {&sy_provider_openai, &sy_provider_anthropic,
                                      &sy_provider_gemini};
    for (size_t i = 0; i < SY_ARRAY_LEN(all); i++) {
        sy_provider_error_t e;
        all[i]->map_error(502, "<html>Bad Gateway</html>", 24, &e);
        assert_int_equal(e.status, 502);
        assert_true(e.retryable);
        assert_non_null(strstr(e.message, "502"));
        all[i]->map_error(418, NULL, 0, &e);
        assert_int_equal(e.status, 418);
        assert_string_equal(e.type, "invalid_request_error");
        all[i]->map_error(200, "{\"error\":{\"message\":[1]}}", 26, &e);
        assert_int_equal(e.status, 502);
        all[i]->map_error(413, "{\"error\":7}", 11, &e);
        assert_int_equal(e.status, 413);
        assert_string_equal(e.code, "request_too_large");
    }
    /* Anthropic 402 billing -> 429 insufficient_quota (OpenAI's convention). */
    sy_provider_error_t e;
    const char billing[] = "{\"type\":\"error\",\"error\":{\"type\":\"billing_error\","
                           "\"message\":\"no credit\"}}";
    sy_provider_anthropic.map_error(402, billing, sizeof(billing) - 1, &e);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.code, "insufficient_quota");
    assert_string_equal(e.message, "no credit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_tool_use), cmocka_unit_test(test_anthropic_text_cached),
        cmocka_unit_test(test_gemini_text),        cmocka_unit_test(test_gemini_function_call),
        cmocka_unit_test(test_openai_passthrough), cmocka_unit_test(test_invalid_bodies),
        cmocka_unit_test(test_error_fixtures),     cmocka_unit_test(test_error_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
