/* Anthropic-style ingress: Anthropic requests become OpenAI requests, and
 * OpenAI answers become Anthropic messages and event sequences. The tests go
 * full circle through the fixtures: an Anthropic fixture translated to the
 * OpenAI side and back must still say the same thing. */
#include "dp_providers_util.h"
#include "dataplane/providers/anthropic_ingress.h"

static void test_request_round_trip(void **state)
{
    (void)state;
    json_object *anth = fixture_json("anthropic_messages_request.json");
    json_object *oai = NULL;
    sy_provider_error_t e;
    assert_int_equal(sy_anthropic_ingress_request(anth, &oai, &e), 0);

    /* The OpenAI side carries the same conversation as openai_chat_request.json. */
    json_object *ref = fixture_json("openai_chat_request.json");
    json_object *msgs = json_object_object_get(oai, "messages");
    json_object *rmsgs = json_object_object_get(ref, "messages");
    assert_int_equal(json_object_array_length(msgs), json_object_array_length(rmsgs));
    assert_string_equal(sy_provider__str(json_object_array_get_idx(msgs, 0), "role", NULL),
                        "system");
    assert_json_equal(json_object_array_get_idx(msgs, 2), json_object_array_get_idx(rmsgs, 2));
    assert_json_equal(json_object_array_get_idx(msgs, 3), json_object_array_get_idx(rmsgs, 3));
    /* strict:false is OpenAI's default and has no Anthropic counterpart. */
    json_object_object_del(
        json_object_object_get(json_object_array_get_idx(json_object_object_get(ref, "tools"), 0),
                               "function"),
        "strict");
    assert_json_equal(json_object_object_get(oai, "tools"), json_object_object_get(ref, "tools"));
    assert_true(json_object_get_boolean(
        json_object_object_get(json_object_object_get(oai, "stream_options"), "include_usage")));

    /* And back to Anthropic: the original request (Anthropic's parallel-use
     * default is not restated). */
    sy_provider_target_t t = {.upstream_model = SY_STR("claude-sonnet-4-5")};
    sy_provider_request_t r;
    sy_provider_request_init(&r);
    assert_int_equal(sy_provider_anthropic.build_request(&t, oai, &r, &e), 0);
    json_object *back = NULL;
    assert_int_equal(sy_json_parse_once(r.body.data, r.body.len, &back, NULL), 0);
    json_object_object_del(json_object_object_get(anth, "tool_choice"),
                           "disable_parallel_tool_use");
    assert_json_equal(back, anth);
    json_object_put(back);
    sy_provider_request_free(&r);
    json_object_put(ref);
    json_object_put(oai);
    json_object_put(anth);
}

static void test_request_shapes_and_refusals(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"any\",\"max_tokens\":10,\"system\":[{\"type\":\"text\",\"text\":\"S\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":"
        "\"url\",\"url\":\"https://e.com/x.png\"}},{\"type\":\"text\",\"text\":\"what?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\","
        "\"signature\":\"s\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\","
        "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]},"
        "{\"type\":\"text\",\"text\":\"go on\"}]}],"
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\",\"disable_parallel_tool_use\":true},"
        "\"top_k\":5,\"top_p\":0.9}";
    json_object *req = NULL, *oai = NULL;
    sy_provider_error_t e;
    assert_int_equal(sy_json_parse_once(body, strlen(body), &req, NULL), 0);
    assert_int_equal(sy_anthropic_ingress_request(req, &oai, &e), 0);
    const char *want_text =
        "{\"model\":\"any\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://e.com/x.png\"}},{\"type\":\"text\",\"text\":\"what?\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"r\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"go on\"}]}],"
        "\"max_completion_tokens\":10,\"top_p\":0.9,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{"
        "\"type\":\"object\"}}}],\"parallel_tool_calls\":false,"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}";
    json_object *want = NULL;
    assert_int_equal(sy_json_parse_once(want_text, strlen(want_text), &want, NULL), 0);
    assert_json_equal(oai, want);
    json_object_put(want);
    json_object_put(oai);
    json_object_put(req);

    const char *bad[] = {
        "[]",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
        "\"source\":{}}]}]}",
        "{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
        "\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        req = NULL;
        oai = (json_object *)&e; /* must stay untouched */
        assert_int_equal(sy_json_parse_once(bad[i], strlen(bad[i]), &req, NULL), 0);
        assert_int_equal(sy_anthropic_ingress_request(req, &oai, &e), SY_EINVAL);
        assert_ptr_equal(oai, (json_object *)&e);
        assert_int_equal(e.status, 400);
        sy_buf_t out;
        sy_buf_init(&out);
        assert_int_equal(sy_anthropic_ingress_error_write(&e, &out), 0);
        assert_non_null(strstr(out.data, "{\"type\":\"error\",\"error\":{\"type\":"
                                         "\"invalid_request_error\""));
        sy_buf_free(&out);
        json_object_put(req);
    }
}

/* OpenAI response (the gateway's own translation of the Anthropic fixture)
 * back to Anthropic: the original message. */
static void test_response_round_trip(void **state)
{
    (void)state;
    size_t len;
    char *body = fixture("anthropic_to_openai_response.json", &len);
    json_object *orig = fixture_json("anthropic_messages_response_tool_use.json");
    sy_json_parser_t *p = sy_json_parser_new();
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(
        sy_anthropic_ingress_response(p, body, len, SY_STR("claude-sonnet-4-5-20250929"), &out), 0);
    json_object *got = NULL;
    assert_int_equal(sy_json_parse_once(out.data, out.len, &got, NULL), 0);
    const char *same[] = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence"};
    for (size_t i = 0; i < SY_ARRAY_LEN(same); i++)
        assert_json_equal(json_object_object_get(got, same[i]),
                          json_object_object_get(orig, same[i]));
    json_object *gu = json_object_object_get(got, "usage"),
                *ou = json_object_object_get(orig, "usage");
    const char *ukeys[] = {"input_tokens", "output_tokens", "cache_read_input_tokens",
                           "cache_creation_input_tokens"};
    for (size_t i = 0; i < SY_ARRAY_LEN(ukeys); i++)
        assert_json_equal(json_object_object_get(gu, ukeys[i]),
                          json_object_object_get(ou, ukeys[i]));
    json_object_put(got);

    /* Not a chat completion: refused, out untouched. */
    size_t before = out.len;
    assert_int_equal(sy_anthropic_ingress_response(p, "{\"x\":1}", 7, SY_STR("m"), &out),
                     SY_EINVAL);
    assert_int_equal(sy_anthropic_ingress_response(p, "{", 1, SY_STR("m"), &out), SY_EINVAL);
    assert_int_equal(out.len, before);
    sy_buf_free(&out);
    sy_json_parser_free(p);
    json_object_put(orig);
    free(body);
}

/* upstream -> OpenAI chunks -> Anthropic events, in random slices. */
static void to_anthropic_events(const sy_provider_ops_t *ops, const char *file, unsigned seed,
                                sy_buf_t *events)
{
    size_t len;
    char *in = fixture(file, &len);
    sy_buf_t chunks;
    sy_buf_init(&chunks);
    translate_sliced(ops, in, len, "public-model", true, 0, seed, &chunks);
    sy_json_parser_t *p = sy_json_parser_new();
    sy_anthropic_egress_t e;
    sy_anthropic_egress_init(&e, p, SY_STR("public-model"));
    size_t off = 0;
    while (off < chunks.len) {
        size_t n = 1 + (size_t)rand_r(&seed) % (chunks.len - off);
        assert_int_equal(sy_anthropic_egress_feed(&e, chunks.data + off, n, events), 0);
        off += n;
    }
    assert_int_equal(sy_anthropic_egress_end(&e, events), 0);
    assert_true(e.done);
    sy_anthropic_egress_free(&e);
    sy_json_parser_free(p);
    sy_buf_free(&chunks);
    free(in);
}

/* The event grammar of §3.6: message_start, blocks opened/closed in index
 * order, message_delta, message_stop (or error); every data type = event. */
typedef struct grammar {
    int state; /* 0 before start, 1 in message, 2 after delta, 3 stopped, 4 error */
    int open;  /* open block index or -1 */
    int next;  /* next block index */
} grammar_t;

static int grammar_event(void *ctx, const sy_sse_event_t *ev)
{
    grammar_t *g = ctx;
    json_object *o = NULL;
    assert_int_equal(sy_json_parse_once(ev->data.ptr, ev->data.len, &o, NULL), 0);
    const char *type = sy_provider__str(o, "type", NULL);
    assert_non_null(type);
    assert_int_equal(ev->event.len, strlen(type));
    assert_memory_equal(ev->event.ptr, type, ev->event.len);
    assert_true(g->state < 3);
    uint64_t idx = 0;
    sy_provider__u64(o, "index", &idx);
    if (strcmp(type, "message_start") == 0) {
        assert_int_equal(g->state, 0);
        g->state = 1;
    } else if (strcmp(type, "content_block_start") == 0) {
        assert_int_equal(g->state, 1);
        assert_int_equal(g->open, -1);
        assert_int_equal((int)idx, g->next);
        g->open = g->next++;
    } else if (strcmp(type, "content_block_delta") == 0) {
        assert_int_equal((int)idx, g->open);
    } else if (strcmp(type, "content_block_stop") == 0) {
        assert_int_equal((int)idx, g->open);
        g->open = -1;
    } else if (strcmp(type, "message_delta") == 0) {
        assert_int_equal(g->state, 1);
        assert_int_equal(g->open, -1);
        g->state = 2;
    } else if (strcmp(type, "message_stop") == 0) {
        assert_int_equal(g->state, 2);
        g->state = 3;
    } else if (strcmp(type, "error") == 0) {
        g->state = 4;
    } else {
        fail_msg("unexpected event %s", type);
    }
    json_object_put(o);
    return 0;
}

static void check_grammar(const sy_buf_t *events, int end_state)
{
    grammar_t g = {.state = 0, .open = -1, .next = 0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1 << 20, grammar_event, &g);
    assert_int_equal(sy_sse_framer_feed(&f, events->data, events->len), 0);
    sy_sse_framer_free(&f);
    assert_int_equal(g.state, end_state);
}

/* Full circle: the Anthropic events we emit, read by our own Anthropic
 * translator, give the same OpenAI stream as the upstream fixture did. */
static void test_stream_full_circle(void **state)
{
    (void)state;
    const struct {
        const sy_provider_ops_t *ops;
        const char *upstream;
        const char *expected;
        int end_state;
    } cases[] = {
        {&sy_provider_anthropic, "anthropic_messages_stream_tool_use.sse",
         "anthropic_to_openai_stream.sse", 3},
        {&sy_provider_anthropic, "anthropic_messages_stream.sse",
         "anthropic_to_openai_stream_text.sse", 3},
        {&sy_provider_anthropic, "anthropic_messages_stream_error.sse",
         "anthropic_to_openai_stream_error.sse", 4},
        {&sy_provider_gemini, "gemini_stream_function_call.sse", "gemini_to_openai_stream.sse", 3},
        {&sy_provider_openai, "openai_chat_stream_tool_calls.sse",
         "openai_chat_stream_tool_calls.sse", 3},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        for (unsigned seed = 1; seed <= 40; seed++) {
            sy_buf_t events, back;
            sy_buf_init(&events);
            sy_buf_init(&back);
            to_anthropic_events(cases[i].ops, cases[i].upstream, seed, &events);
            check_grammar(&events, cases[i].end_state);
            translate_sliced(&sy_provider_anthropic, events.data, events.len, "public-model", true,
                             0, seed, &back);
            acc_t got, want;
            acc_init(&got);
            acc_init(&want);
            acc_read(&got, back.data, back.len);
            size_t len;
            char *exp = fixture(cases[i].expected, &len);
            acc_read(&want, exp, len);
            free(exp);
            strcpy(want.model, "public-model");
            if (cases[i].ops == &sy_provider_openai) {
                /* No usage upstream: the circle reports zeros, still a usage chunk. */
                want.usage_chunk = true;
            }
            acc_assert_same(&got, &want, cases[i].ops != &sy_provider_gemini);
            acc_free(&got);
            acc_free(&want);
            sy_buf_free(&events);
            sy_buf_free(&back);
        }
    }
}

/* An OpenAI stream that stops without [DONE] ends in an Anthropic error event. */
static void test_stream_truncated(void **state)
{
    (void)state;
    size_t len;
    char *in = fixture("openai_chat_stream.sse", &len);
    sy_json_parser_t *p = sy_json_parser_new();
    sy_anthropic_egress_t e;
    sy_anthropic_egress_init(&e, p, SY_STR("m"));
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_anthropic_egress_feed(&e, in, len / 2, &out), 0);
    assert_int_equal(sy_anthropic_egress_end(&e, &out), 0);
    assert_true(e.failed);
    check_grammar(&out, 4);
    assert_non_null(strstr(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                     "\"api_error\""));
    sy_buf_free(&out);
    sy_anthropic_egress_free(&e);
    sy_json_parser_free(p);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_shapes_and_refusals),
        cmocka_unit_test(test_response_round_trip),
        cmocka_unit_test(test_stream_full_circle),
        cmocka_unit_test(test_stream_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
