/* Stream translation: every upstream fixture stream, fed in random-sized
 * slices (1 byte up to the whole), must say what the *_to_openai_* fixture
 * says: text, tool calls, finish reason, usage, error, [DONE]. */
#include "dp_providers_util.h"

#define RANDOM_RUNS 300

typedef struct case_def {
    const char *upstream; /* upstream fixture */
    const char *expected; /* expected OpenAI stream (NULL: built in the test) */
    const sy_provider_ops_t *ops;
    const char *model; /* public model name */
    bool byte_exact;   /* our output must equal the fixture byte for byte */
} case_def_t;

static void run_case(const case_def_t *c, const acc_t *want)
{
    size_t len;
    char *in = fixture(c->upstream, &len);
    char *exp = NULL;
    size_t exp_len = 0;
    if (c->byte_exact)
        exp = fixture(c->expected, &exp_len);
    /* 1-byte slices, the whole at once, then random slicings. */
    size_t fixed[] = {1, 2, 3, 7, len};
    for (size_t k = 0; k < SY_ARRAY_LEN(fixed) + RANDOM_RUNS; k++) {
        sy_buf_t out;
        sy_buf_init(&out);
        if (k < SY_ARRAY_LEN(fixed))
            translate_sliced(c->ops, in, len, c->model, true, fixed[k], 0, &out);
        else
            translate_sliced(c->ops, in, len, c->model, true, 0, (unsigned)k * 7919u, &out);
        acc_t got;
        acc_init(&got);
        acc_read(&got, out.data, out.len);
        acc_assert_same(&got, want, c->ops != &sy_provider_gemini);
        assert_int_equal(got.created, want->error && want->chunks == 0 ? 0 : FIXED_CREATED);
        if (exp != NULL) {
            if (out.len != exp_len || memcmp(out.data, exp, exp_len) != 0)
                fail_msg("output differs from %s:\n%.*s", c->expected, (int)out.len, out.data);
        }
        acc_free(&got);
        sy_buf_free(&out);
    }
    free(exp);
    free(in);
}

static void expected_from_fixture(const char *name, acc_t *want)
{
    size_t len;
    char *s = fixture(name, &len);
    acc_init(want);
    acc_read(want, s, len);
    free(s);
}

static void test_anthropic_text(void **state)
{
    (void)state;
    acc_t want;
    expected_from_fixture("anthropic_to_openai_stream_text.sse", &want);
    assert_int_equal(want.usage.cached_tokens, 1024); /* the fixture pair exercises caching */
    case_def_t c = {"anthropic_messages_stream.sse", "anthropic_to_openai_stream_text.sse",
                    &sy_provider_anthropic, "claude-sonnet-4-5", true};
    run_case(&c, &want);
    acc_free(&want);
}

static void test_anthropic_tool_use(void **state)
{
    (void)state;
    acc_t want;
    expected_from_fixture("anthropic_to_openai_stream.sse", &want);
    assert_int_equal(want.n_calls, 2);
    case_def_t c = {"anthropic_messages_stream_tool_use.sse", "anthropic_to_openai_stream.sse",
                    &sy_provider_anthropic, "claude-sonnet-4-5", true};
    run_case(&c, &want);
    acc_free(&want);
}

static void test_anthropic_error(void **state)
{
    (void)state;
    acc_t want;
    expected_from_fixture("anthropic_to_openai_stream_error.sse", &want);
    assert_true(want.error);
    case_def_t c = {"anthropic_messages_stream_error.sse", "anthropic_to_openai_stream_error.sse",
                    &sy_provider_anthropic, "claude-sonnet-4-5", false};
    run_case(&c, &want);
    acc_free(&want);
}

static void test_gemini_function_call(void **state)
{
    (void)state;
    acc_t want;
    expected_from_fixture("gemini_to_openai_stream.sse", &want);
    case_def_t c = {"gemini_stream_function_call.sse", NULL, &sy_provider_gemini,
                    "gemini-2.5-flash", false};
    run_case(&c, &want);
    acc_free(&want);
}

/* gemini_stream.sse has no translated twin: the expectation is its own text
 * (the same sentence as the non-streaming fixture) and its last usage. */
static void test_gemini_text(void **state)
{
    (void)state;
    acc_t want;
    acc_init(&want);
    json_object *resp = fixture_json("gemini_to_openai_response.json");
    const char *text = sy_provider__str(
        json_object_object_get(
            json_object_array_get_idx(json_object_object_get(resp, "choices"), 0), "message"),
        "content", NULL);
    sy_buf_append_str(&want.text, text);
    json_object_put(resp);
    want.role_seen = true;
    strcpy(want.finish, "stop");
    strcpy(want.model, "gemini-2.5-flash");
    want.done = true;
    want.usage_chunk = true;
    want.usage =
        (sy_provider_usage_t){.prompt_tokens = 9, .completion_tokens = 12, .total_tokens = 21};
    case_def_t c = {"gemini_stream.sse", NULL, &sy_provider_gemini, "gemini-2.5-flash", false};
    run_case(&c, &want);
    acc_free(&want);
}

/* OpenAI upstream: the stream passes through; only the model is renamed. */
static void test_openai_passthrough(void **state)
{
    (void)state;
    const char *files[] = {"openai_chat_stream.sse", "openai_chat_stream_tool_calls.sse",
                           "openai_chat_stream_error.sse"};
    for (size_t i = 0; i < SY_ARRAY_LEN(files); i++) {
        acc_t want;
        expected_from_fixture(files[i], &want);
        strcpy(want.model, "gpt-4o");
        case_def_t c = {files[i], NULL, &sy_provider_openai, "gpt-4o", false};
        /* openai_chat_stream_tool_calls.sse has no usage chunk, whatever was asked. */
        run_case(&c, &want);
        acc_free(&want);
    }
}

/* A client that did not ask for include_usage sees neither the usage chunk
 * nor "usage":null keys, though the gateway still meters the stream. */
static void test_openai_usage_hidden(void **state)
{
    (void)state;
    size_t len;
    char *in = fixture("openai_chat_stream.sse", &len);
    sy_json_parser_t *p = sy_json_parser_new();
    sy_provider_stream_t s;
    sy_provider_resp_opts_t o = {.public_model = SY_STR("gpt-4o-2024-08-06"),
                                 .created = FIXED_CREATED};
    sy_provider_stream_init(&s, &sy_provider_openai, p, &o);
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_provider_stream_feed(&s, in, len, &out), 0);
    assert_int_equal(sy_provider_stream_end(&s, &out), 0);
    assert_true(s.usage.present);
    assert_int_equal(s.usage.prompt_tokens, 1214);
    assert_int_equal(s.usage.cached_tokens, 1024);
    acc_t got;
    acc_init(&got);
    acc_read(&got, out.data, out.len);
    assert_false(got.usage_chunk);
    assert_int_equal(got.usage_null_keys, 0);
    assert_true(got.done);
    assert_string_equal(got.finish, "stop");
    assert_null(memmem(out.data, out.len, "\"usage\"", 7));
    acc_free(&got);
    sy_buf_free(&out);
    sy_provider_stream_free(&s);
    sy_json_parser_free(p);
    free(in);
}

/* Without include_usage the translators emit no usage chunk and no usage keys. */
static void test_no_include_usage(void **state)
{
    (void)state;
    const char *files[] = {"anthropic_messages_stream.sse", "gemini_stream.sse"};
    const sy_provider_ops_t *ops[] = {&sy_provider_anthropic, &sy_provider_gemini};
    for (size_t i = 0; i < SY_ARRAY_LEN(files); i++) {
        size_t len;
        char *in = fixture(files[i], &len);
        sy_buf_t out;
        sy_buf_init(&out);
        translate_sliced(ops[i], in, len, "m", false, 5, 0, &out);
        acc_t got;
        acc_init(&got);
        acc_read(&got, out.data, out.len);
        assert_false(got.usage_chunk);
        assert_int_equal(got.usage_null_keys, 0);
        assert_true(got.done);
        assert_true(got.text.len > 0);
        acc_free(&got);
        sy_buf_free(&out);
        free(in);
    }
}

/* A stream cut before its end must end in an explicit error, never [DONE]. */
static void test_truncated(void **state)
{
    (void)state;
    const char *files[] = {"anthropic_messages_stream_tool_use.sse", "gemini_stream.sse",
                           "openai_chat_stream_tool_calls.sse"};
    const sy_provider_ops_t *ops[] = {&sy_provider_anthropic, &sy_provider_gemini,
                                      &sy_provider_openai};
    for (size_t i = 0; i < SY_ARRAY_LEN(files); i++) {
        size_t len;
        char *in = fixture(files[i], &len);
        /* Cut at every tenth byte before the final event ends. */
        size_t errors = 0, cuts = 0;
        for (size_t cut = 1; cut < len - 4; cut += 10, cuts++) {
            sy_buf_t out;
            sy_buf_init(&out);
            translate_sliced(ops[i], in, cut, "m", true, 0, (unsigned)cut, &out);
            acc_t got;
            acc_init(&got);
            acc_read(&got, out.data, out.len);
            /* Either an explicit error, or [DONE] because the finish already went out. */
            assert_true(got.error != got.done);
            assert_false(got.after_done);
            if (got.error) {
                errors++;
                assert_string_equal(got.error_code, "upstream_stream_truncated");
                assert_string_equal(got.error_cause, "provider");
            } else {
                assert_true(got.finish[0] != '\0');
            }
            acc_free(&got);
            sy_buf_free(&out);
        }
        assert_true(errors * 10 > cuts * 8); /* only cuts in the last events may succeed */
        free(in);
    }
}

/* Garbage after the 200 becomes one error event; later bytes are ignored. */
static void test_invalid_event(void **state)
{
    (void)state;
    const sy_provider_ops_t *ops[] = {&sy_provider_anthropic, &sy_provider_gemini,
                                      &sy_provider_openai};
    static const char bad[] = "data: {\"truncated\": \n\ndata: {\"a\":1}\n\n";
    for (size_t i = 0; i < SY_ARRAY_LEN(ops); i++) {
        sy_buf_t out;
        sy_buf_init(&out);
        translate_sliced(ops[i], bad, sizeof(bad) - 1, "m", true, 0, 1, &out);
        acc_t got;
        acc_init(&got);
        acc_read(&got, out.data, out.len);
        assert_true(got.error);
        assert_false(got.after_done);
        assert_string_equal(got.error_code, "upstream_invalid_event");
        acc_free(&got);
        sy_buf_free(&out);
    }
}

/* Anthropic: a tool call with no argument bytes gets "{}"; tool indexes count
 * calls, not content blocks; thinking blocks do not leak. */
static void test_anthropic_no_args_and_indexes(void **state)
{
    (void)state;
    static const char in[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"now\","
        "\"input\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
        "event: some_future_event\ndata: {\"type\":\"some_future_event\"}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    sy_buf_t out;
    sy_buf_init(&out);
    translate_sliced(&sy_provider_anthropic, in, sizeof(in) - 1, "claude", true, 0, 3, &out);
    acc_t got;
    acc_init(&got);
    acc_read(&got, out.data, out.len);
    assert_int_equal(got.n_calls, 1);
    assert_string_equal(got.calls[0].id, "toolu_a");
    assert_int_equal(got.calls[0].args.len, 2);
    assert_memory_equal(got.calls[0].args.data, "{}", 2);
    assert_int_equal(got.text.len, 0);
    assert_null(memmem(out.data, out.len, "hmm", 3));
    assert_string_equal(got.finish, "tool_calls");
    assert_int_equal(got.usage.prompt_tokens, 5);
    assert_int_equal(got.usage.completion_tokens, 7);
    assert_true(got.done);
    acc_free(&got);
    sy_buf_free(&out);
}

/* Gemini: a call in one chunk and finishReason STOP in a later one is still
 * tool_calls; a thought signature rides along in the id; n > 1 candidates get
 * their own choice index. */
static void test_gemini_split_finish_and_candidates(void **state)
{
    (void)state;
    static const char in[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\","
        "\"args\":{}},\"thoughtSignature\":\"c2ln\"}],\"role\":\"model\"},\"index\":0},"
        "{\"content\":{\"parts\":[{\"text\":\"B\"}],\"role\":\"model\"},\"index\":1}],"
        "\"responseId\":\"r1\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\",\"index\":0},{\"content\":{\"role\":\"model\"},"
        "\"finishReason\":\"MAX_TOKENS\",\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":3,"
        "\"candidatesTokenCount\":4,\"totalTokenCount\":7},\"responseId\":\"r1\"}\r\n\r\n";
    sy_buf_t out;
    sy_buf_init(&out);
    translate_sliced(&sy_provider_gemini, in, sizeof(in) - 1, "g", false, 0, 9, &out);
    acc_t got;
    acc_init(&got);
    acc_read(&got, out.data, out.len); /* reads choice 0 and 1 together */
    assert_int_equal(got.n_calls, 1);
    assert_non_null(strstr(got.calls[0].id, "__thought__c2ln"));
    assert_memory_equal(got.calls[0].args.data, "{}", 2);
    assert_non_null(strstr(out.data, "\"index\":0,\"delta\":{},\"logprobs\":null,"
                                     "\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(out.data, "\"index\":1,\"delta\":{},\"logprobs\":null,"
                                     "\"finish_reason\":\"length\""));
    assert_non_null(strstr(out.data, "\"index\":1,\"delta\":{\"content\":\"B\"}"));
    assert_true(got.done);
    acc_free(&got);
    sy_buf_free(&out);
}

/* Gemini in-stream errors keep their status semantics (429 -> rate limit). */
static void test_gemini_in_stream_error(void **state)
{
    (void)state;
    static const char in[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},\"index\":0}]}\r\n\r\n"
        "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":"
        "\"UNAVAILABLE\"}}\r\n\r\n";
    sy_buf_t out;
    sy_buf_init(&out);
    translate_sliced(&sy_provider_gemini, in, sizeof(in) - 1, "g", true, 0, 4, &out);
    acc_t got;
    acc_init(&got);
    acc_read(&got, out.data, out.len);
    assert_true(got.error);
    assert_false(got.done);
    assert_string_equal(got.error_message, "The model is overloaded.");
    assert_string_equal(got.error_code, "overloaded");
    assert_memory_equal(got.text.data, "Hi", 2);
    acc_free(&got);
    sy_buf_free(&out);
}

/* An error before any content emits nothing but the error (no role chunk),
 * so the request path can still fail over invisibly; the error says whether
 * another target may help. */
static void test_error_before_content(void **state)
{
    (void)state;
    static const char in[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\","
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}\n\n";
    sy_json_parser_t *p = sy_json_parser_new();
    sy_provider_stream_t s;
    sy_provider_resp_opts_t o = {.public_model = SY_STR("m"), .created = 1};
    sy_provider_stream_init(&s, &sy_provider_anthropic, p, &o);
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_provider_stream_feed(&s, in, sizeof(in) - 1, &out), 0);
    assert_true(s.failed);
    assert_true(s.error.retryable);
    assert_int_equal(s.error.status, 503);
    assert_true(strncmp(out.data, "data: {\"error\":", 15) == 0); /* the first and only event */
    assert_null(strstr(out.data, "chat.completion.chunk"));
    sy_buf_free(&out);
    sy_provider_stream_free(&s);
    sy_json_parser_free(p);
}

/* An event over the cap ends the stream with an error instead of growing. */
static void test_event_cap(void **state)
{
    (void)state;
    sy_json_parser_t *p = sy_json_parser_new();
    sy_provider_stream_t s;
    sy_provider_resp_opts_t o = {.public_model = SY_STR("m"), .created = 1};
    sy_provider_stream_init(&s, &sy_provider_gemini, p, &o);
    sy_buf_t out;
    sy_buf_init(&out);
    char *big = malloc(1 << 20);
    memset(big, 'a', 1 << 20);
    memcpy(big, "data: ", 6);
    for (int i = 0; i < 9 && !s.done; i++)
        assert_int_equal(sy_provider_stream_feed(&s, big, 1 << 20, &out), 0);
    assert_true(s.done);
    assert_true(s.failed);
    assert_non_null(strstr(out.data, "upstream_event_too_large"));
    free(big);
    sy_buf_free(&out);
    sy_provider_stream_free(&s);
    sy_json_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_text),
        cmocka_unit_test(test_anthropic_tool_use),
        cmocka_unit_test(test_anthropic_error),
        cmocka_unit_test(test_gemini_function_call),
        cmocka_unit_test(test_gemini_text),
        cmocka_unit_test(test_openai_passthrough),
        cmocka_unit_test(test_openai_usage_hidden),
        cmocka_unit_test(test_no_include_usage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_invalid_event),
        cmocka_unit_test(test_anthropic_no_args_and_indexes),
        cmocka_unit_test(test_gemini_split_finish_and_candidates),
        cmocka_unit_test(test_gemini_in_stream_error),
        cmocka_unit_test(test_event_cap),
        cmocka_unit_test(test_error_before_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
