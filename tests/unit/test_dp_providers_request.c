/* Request translation: openai_chat_request.json must become exactly the
 * Anthropic and Gemini request fixtures; refusals are clear 400s. */
#include "dp_providers_util.h"

static sy_provider_target_t target(const char *model)
{
    return (sy_provider_target_t){.upstream_model = sy_str_from_cstr(model),
                                  .api_key = SY_STR("sk-test-key"),
                                  .default_max_tokens = 0,
                                  .caps = 0};
}

static json_object *build_ok(const sy_provider_ops_t *ops, const sy_provider_target_t *t,
                             json_object *req, sy_provider_request_t *r)
{
    sy_provider_error_t e;
    sy_provider_request_init(r);
    int rc = ops->build_request(t, req, r, &e);
    if (rc != 0)
        fail_msg("build_request failed (%d): %s", rc, e.message);
    json_object *body = NULL;
    assert_int_equal(sy_json_parse_once(r->body.data, r->body.len, &body, NULL), 0);
    return body;
}

static const char *header(const sy_provider_request_t *r, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncmp(r->headers[i], name, nl) == 0 && r->headers[i][nl] == ':')
            return r->headers[i] + nl + 2;
    return NULL;
}

static void test_to_anthropic_fixture(void **state)
{
    (void)state;
    json_object *req = fixture_json("openai_chat_request.json");
    json_object *want = fixture_json("anthropic_messages_request.json");
    const char *before = strdup(json_object_to_json_string(req));
    sy_provider_target_t t = target("claude-sonnet-4-5");
    sy_provider_request_t r;
    json_object *got = build_ok(&sy_provider_anthropic, &t, req, &r);
    assert_json_equal(got, want);
    assert_string_equal(r.path.data, "/v1/messages");
    assert_string_equal(header(&r, "x-api-key"), "sk-test-key");
    assert_string_equal(header(&r, "anthropic-version"), "2023-06-01");
    assert_true(r.stream);
    assert_true(r.include_usage);
    /* The client's request is borrowed, never modified. */
    assert_string_equal(before, json_object_to_json_string(req));
    free((void *)before);
    sy_provider_request_free(&r);
    json_object_put(got);
    json_object_put(want);
    json_object_put(req);
}

static void test_to_gemini_fixture(void **state)
{
    (void)state;
    json_object *req = fixture_json("openai_chat_request.json");
    json_object *want = fixture_json("gemini_generate_request.json");
    sy_provider_target_t t = target("gemini-2.5-flash");
    sy_provider_request_t r;
    json_object *got = build_ok(&sy_provider_gemini, &t, req, &r);
    assert_json_equal(got, want);
    assert_string_equal(r.path.data,
                        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_string_equal(header(&r, "x-goog-api-key"), "sk-test-key");
    assert_null(header(&r, "Authorization"));
    sy_provider_request_free(&r);
    json_object_put(got);

    /* Not streaming: the plain endpoint. */
    json_object_object_add(req, "stream", json_object_new_boolean(0));
    got = build_ok(&sy_provider_gemini, &t, req, &r);
    assert_string_equal(r.path.data, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_false(r.stream);
    sy_provider_request_free(&r);
    json_object_put(got);
    json_object_put(want);
    json_object_put(req);
}

static void test_to_openai_passthrough(void **state)
{
    (void)state;
    json_object *req = fixture_json("openai_chat_request.json");
    sy_provider_target_t t = target("gpt-4o-2024-08-06");
    sy_provider_request_t r;
    json_object *got = build_ok(&sy_provider_openai, &t, req, &r);
    assert_string_equal(sy_provider__str(got, "model", NULL), "gpt-4o-2024-08-06");
    /* Everything else is the client's request as sent. */
    json_object_object_add(got, "model", json_object_new_string("gpt-4o"));
    assert_json_equal(got, req);
    assert_string_equal(r.path.data, "/chat/completions");
    assert_string_equal(header(&r, "Authorization"), "Bearer sk-test-key");
    sy_provider_request_free(&r);
    json_object_put(got);

    /* Streaming without include_usage: the gateway asks for usage anyway. */
    json_object_object_del(req, "stream_options");
    t.api_key = SY_STR_NULL; /* self-hosted, no key */
    got = build_ok(&sy_provider_openai, &t, req, &r);
    json_object *iu =
        json_object_object_get(json_object_object_get(got, "stream_options"), "include_usage");
    assert_true(json_object_get_boolean(iu));
    assert_false(r.include_usage);
    assert_null(header(&r, "Authorization"));
    sy_provider_request_free(&r);
    json_object_put(got);
    json_object_put(req);
}

static void test_json_schema(void **state)
{
    (void)state;
    json_object *req = fixture_json("openai_chat_request_json_schema.json");
    json_object *schema = json_object_object_get(
        json_object_object_get(json_object_object_get(req, "response_format"), "json_schema"),
        "schema");
    sy_provider_target_t t = target("m");
    sy_provider_request_t r;

    json_object *got = build_ok(&sy_provider_anthropic, &t, req, &r);
    json_object *fmt =
        json_object_object_get(json_object_object_get(got, "output_config"), "format");
    assert_string_equal(sy_provider__str(fmt, "type", NULL), "json_schema");
    assert_json_equal(json_object_object_get(fmt, "schema"), schema);
    assert_string_equal(sy_provider__str(got, "system", NULL), "Extract the event.");
    assert_int_equal(json_object_get_int(json_object_object_get(got, "max_tokens")), 200);
    assert_false(r.stream);
    sy_provider_request_free(&r);
    json_object_put(got);

    got = build_ok(&sy_provider_gemini, &t, req, &r);
    json_object *gc = json_object_object_get(got, "generationConfig");
    assert_string_equal(sy_provider__str(gc, "responseMimeType", NULL), "application/json");
    assert_json_equal(json_object_object_get(gc, "responseJsonSchema"), schema);
    sy_provider_request_free(&r);
    json_object_put(got);

    /* A model configured without json_schema gets a clear 400. */
    t.caps = SY_PROVIDER_CAP_CHAT | SY_PROVIDER_CAP_TOOLS;
    const sy_provider_ops_t *all[] = {&sy_provider_openai, &sy_provider_anthropic,
                                      &sy_provider_gemini};
    for (size_t i = 0; i < SY_ARRAY_LEN(all); i++) {
        sy_provider_error_t e;
        sy_provider_request_init(&r);
        assert_int_equal(all[i]->build_request(&t, req, &r, &e), SY_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.param, "response_format");
        assert_int_equal(e.cause, SY_CAUSE_CALLER);
        assert_null(r.body.data); /* out untouched on failure */
    }
    json_object_put(req);
}

/* Expects a 400 for body (JSON text) on ops, naming param. */
static void expect_400(const sy_provider_ops_t *ops, const char *body, const char *param,
                       const char *needle)
{
    json_object *req = NULL;
    assert_int_equal(sy_json_parse_once(body, strlen(body), &req, NULL), 0);
    sy_provider_target_t t = target("m");
    sy_provider_request_t r;
    sy_provider_error_t e;
    sy_provider_request_init(&r);
    int rc = ops->build_request(&t, req, &r, &e);
    if (rc != SY_EINVAL)
        fail_msg("%s accepted %s", ops->name, body);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    if (param != NULL)
        assert_string_equal(e.param, param);
    else
        assert_null(e.param);
    if (needle != NULL && strstr(e.message, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", e.message, needle);
    /* The error renders as OpenAI's shape with the cause. */
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_provider_error_write(&e, &out), 0);
    json_object *doc = NULL;
    assert_int_equal(sy_json_parse_once(out.data, out.len, &doc, NULL), 0);
    json_object *err = json_object_object_get(doc, "error");
    assert_non_null(sy_provider__str(err, "message", NULL));
    assert_string_equal(sy_provider__str(err, "cause", NULL), "caller");
    assert_true(json_object_object_get_ex(err, "code", NULL));
    assert_true(json_object_object_get_ex(err, "param", NULL));
    json_object_put(doc);
    sy_buf_free(&out);
    json_object_put(req);
}

static void test_refusals(void **state)
{
    (void)state;
    const sy_provider_ops_t *all[] = {&sy_provider_openai, &sy_provider_anthropic,
                                      &sy_provider_gemini};
    for (size_t i = 0; i < SY_ARRAY_LEN(all); i++) {
        expect_400(all[i], "{\"model\":\"m\"}", "messages", NULL);
        expect_400(all[i], "{\"messages\":[]}", "messages", NULL);
        expect_400(all[i], "{\"messages\":[{\"content\":\"x\"}]}", "messages", "role");
        expect_400(all[i], "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n",
                   NULL);
    }
    const sy_provider_ops_t *xl[] = {&sy_provider_anthropic, &sy_provider_gemini};
    for (size_t i = 0; i < SY_ARRAY_LEN(xl); i++) {
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
                   "\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
                   "messages", "input_audio");
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                   "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
                   "messages", "image_url");
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                   "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                   "\"arguments\":\"{not json\"}}]}]}",
                   "messages", "arguments");
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}",
                   "logprobs", NULL);
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
                   "\"type\":\"custom\",\"custom\":{\"name\":\"c\"}}]}",
                   "tools", "function");
        expect_400(xl[i], "{\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}",
                   "messages", "at least one");
        expect_400(xl[i],
                   "{\"messages\":[{\"role\":\"function\",\"content\":\"x\",\"name\":\"f\"}]}",
                   "messages", "function");
    }
    /* Anthropic-only limits. */
    expect_400(&sy_provider_anthropic,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n", "n = 2");
    expect_400(&sy_provider_anthropic,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.5}",
               "temperature", "0 to 1");
    expect_400(&sy_provider_anthropic,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{"
               "\"type\":\"json_object\"}}",
               "response_format", "json_schema");
    expect_400(&sy_provider_anthropic,
               "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
               "\"image_url\":{\"url\":\"data:image/tiff;base64,AAAA\"}}]}]}",
               "messages", "image/tiff");
    /* Gemini needs the name of every tool result's call. */
    expect_400(&sy_provider_gemini,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\","
               "\"tool_call_id\":\"nope\",\"content\":\"1\"}]}",
               "messages", "nope");
    expect_400(&sy_provider_gemini,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":9}", "n", NULL);
    expect_400(&sy_provider_gemini,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
               "temperature", NULL);
}

static json_object *build_json(const sy_provider_ops_t *ops, const sy_provider_target_t *t,
                               const char *body)
{
    json_object *req = NULL;
    assert_int_equal(sy_json_parse_once(body, strlen(body), &req, NULL), 0);
    sy_provider_request_t r;
    json_object *got = build_ok(ops, t, req, &r);
    sy_provider_request_free(&r);
    json_object_put(req);
    return got;
}

static void assert_json_text(json_object *got, const char *want_text)
{
    json_object *want = NULL;
    assert_int_equal(sy_json_parse_once(want_text, strlen(want_text), &want, NULL), 0);
    assert_json_equal(got, want);
    json_object_put(want);
}

static void test_anthropic_shapes(void **state)
{
    (void)state;
    sy_provider_target_t t = target("claude");
    t.default_max_tokens = 777;
    /* System and developer messages anywhere join the system prompt; tool
     * results and a following user message share one user turn, results
     * first; consecutive assistant turns merge; http images become url
     * sources; required -> any; parallel_tool_calls false disables it;
     * whitespace-only stop sequences are dropped; a prefill loses trailing
     * whitespace; an e-mail-like user is not forwarded. */
    json_object *got = build_json(
        &sy_provider_anthropic, &t,
        "{\"model\":\"x\",\"messages\":["
        "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"A\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://e.com/cat.png\"}},{\"type\":\"text\",\"text\":\"\"}]},"
        "{\"role\":\"assistant\",\"content\":\"calling\",\"tool_calls\":[{\"id\":\"call.1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call.1\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"ok\"}]},"
        "{\"role\":\"developer\",\"content\":\"B\"},"
        "{\"role\":\"user\",\"content\":\"next\"},"
        "{\"role\":\"assistant\",\"content\":\"Sure, \"},"
        "{\"role\":\"assistant\",\"content\":\"here  \\n\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,\"stop\":[\" \",\"END\"],"
        "\"user\":\"bob@example.com\",\"top_p\":0.5,\"seed\":3,\"logit_bias\":{\"1\":2}}");
    assert_json_text(
        got,
        "{\"model\":\"claude\",\"max_tokens\":777,\"top_p\":0.5,\"stop_sequences\":[\"END\"],"
        "\"system\":\"A\\n\\nB\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"url\","
        "\"url\":\"https://e.com/cat.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"calling\"},"
        "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\","
        "\"content\":\"ok\"},{\"type\":\"text\",\"text\":\"next\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Sure, \"},"
        "{\"type\":\"text\",\"text\":\"here\"}]}],"
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true}}");
    json_object_put(got);

    /* The client's max_tokens wins; tool_choice naming a function. */
    got = build_json(&sy_provider_anthropic, &t,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":9,"
                     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\","
                     "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":{\"type\":"
                     "\"function\",\"function\":{\"name\":\"g\"}},\"stop\":\"X\"}");
    assert_json_text(got, "{\"model\":\"claude\",\"max_tokens\":9,\"stop_sequences\":[\"X\"],"
                          "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                          "\"text\":\"hi\"}]}],\"tools\":[{\"name\":\"g\",\"input_schema\":"
                          "{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"tool\","
                          "\"name\":\"g\"}}");
    json_object_put(got);

    /* No default configured: SY_PROVIDER_DEFAULT_MAX_TOKENS. */
    t.default_max_tokens = 0;
    got = build_json(&sy_provider_anthropic, &t,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(json_object_get_int(json_object_object_get(got, "max_tokens")),
                     SY_PROVIDER_DEFAULT_MAX_TOKENS);
    json_object_put(got);
}

static void test_gemini_shapes(void **state)
{
    (void)state;
    sy_provider_target_t t = target("models/odd name");
    /* Tool results find their function names in earlier assistant turns; a
     * non-object result is wrapped; thought signatures return to their call;
     * http images become fileData; a named tool_choice restricts calls;
     * schemas lose keywords Gemini rejects. */
    json_object *req = NULL;
    const char *body =
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},{\"type\":"
        "\"image_url\",\"image_url\":\"http://e.com/a.JPG?x=1\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_a__thought__U0lH\",\"type\":\"function\",\"function\":{\"name\":\"fa\","
        "\"arguments\":\"{\\\"x\\\":1}\"}},"
        "{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"fb\",\"arguments\":"
        "\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"content\":\"plain text\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_a__thought__U0lH\",\"content\":\"[1,2]\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"fa\",\"parameters\":{"
        "\"type\":\"object\",\"$schema\":\"x\",\"properties\":{\"x\":{\"type\":\"object\","
        "\"additionalProperties\":false}}}}},{\"type\":\"function\",\"function\":{\"name\":"
        "\"fb\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"fa\"}},\"n\":2,"
        "\"max_tokens\":50,\"stop\":\"Z\",\"presence_penalty\":0.5}";
    assert_int_equal(sy_json_parse_once(body, strlen(body), &req, NULL), 0);
    sy_provider_request_t r;
    json_object *got = build_ok(&sy_provider_gemini, &t, req, &r);
    assert_string_equal(r.path.data, "/v1beta/models/models%2Fodd%20name:generateContent");
    assert_json_text(
        got,
        "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"look\"},{\"fileData\":{\"mimeType\":"
        "\"image/jpeg\",\"fileUri\":\"http://e.com/a.JPG?x=1\"}}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"fa\",\"args\":{\"x\":1}},"
        "\"thoughtSignature\":\"U0lH\"},{\"functionCall\":{\"name\":\"fb\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"fb\",\"response\":"
        "{\"content\":\"plain text\"}}},{\"functionResponse\":{\"name\":\"fa\",\"response\":"
        "{\"content\":\"[1,2]\"}}}]}],"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"fa\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"x\":{\"type\":\"object\"}}}},{\"name\":\"fb\"}]}],"
        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":"
        "[\"fa\"]}},"
        "\"generationConfig\":{\"maxOutputTokens\":50,\"stopSequences\":[\"Z\"],"
        "\"candidateCount\":2,\"presencePenalty\":0.5}}");
    sy_provider_request_free(&r);
    json_object_put(got);
    json_object_put(req);
}

/* JSON null members are forwarded as null, not mistaken for a failure. */
static void test_openai_null_members(void **state)
{
    (void)state;
    sy_provider_target_t t = target("up");
    json_object *got = build_json(
        &sy_provider_openai, &t,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"user\":null,\"stream\":true,\"stream_options\":{\"include_obfuscation\":null}}");
    assert_json_text(got, "{\"model\":\"up\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"user\":null,\"stream\":true,\"stream_options\":{"
                          "\"include_obfuscation\":null,\"include_usage\":true}}");
    json_object_put(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_anthropic_fixture),
        cmocka_unit_test(test_to_gemini_fixture),
        cmocka_unit_test(test_to_openai_passthrough),
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_anthropic_shapes),
        cmocka_unit_test(test_gemini_shapes),
        cmocka_unit_test(test_openai_null_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
