/* Unit tests of the mock provider's deterministic rules: token counting, the
 * answer, tool arguments and their fragments, fault specs and rules, and the
 * shape of every streamed event (each must be one valid JSON document). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "tests/mockprovider/mock.h"

static json_object *parse(const char *s)
{
    json_object *o = NULL;
    assert_int_equal(sy_json_parse_once(s, strlen(s), &o, NULL), 0);
    return o;
}

static void test_words(void **state)
{
    (void)state;
    assert_int_equal(sy_mock_usage_words("", 0), 0);
    assert_int_equal(sy_mock_usage_words("   \t\n", 5), 0);
    assert_int_equal(sy_mock_usage_words("one", 3), 1);
    assert_int_equal(sy_mock_usage_words(" one  two\tthree\r\nfour ", 22), 4);
    /* Non-ASCII bytes are word bytes: "18 °C" is two words. */
    assert_int_equal(sy_mock_usage_words("18 \xc2\xb0"
                                         "C",
                                         6),
                     2);
}

static void test_prompt_openai(void **state)
{
    (void)state;
    json_object *req =
        parse("{\"model\":\"m\",\"messages\":["
              "{\"role\":\"system\",\"content\":\"be brief\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a b c\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x y\"}}]},"
              "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"ok done\"}]}");
    /* 4 messages + 2 + 3 + 0 + 2 words. */
    assert_int_equal(sy_mock_usage_prompt_tokens(SY_MOCK_OPENAI, false, req), 11);
    json_object_put(req);

    json_object *emb = parse("{\"model\":\"e\",\"input\":[\"a b\",\"c\"]}");
    assert_int_equal(sy_mock_usage_prompt_tokens(SY_MOCK_OPENAI, true, emb), 3);
    json_object_put(emb);
    emb = parse("{\"model\":\"e\",\"input\":[[1,2,3],[4]]}");
    assert_int_equal(sy_mock_usage_prompt_tokens(SY_MOCK_OPENAI, true, emb), 4);
    json_object_put(emb);
}

static void test_prompt_anthropic_gemini(void **state)
{
    (void)state;
    json_object *a =
        parse("{\"model\":\"c\",\"max_tokens\":5,\"system\":\"you are x\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
              "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
              "\"tool_use_id\":\"t\",\"content\":\"r1 r2 r3\"}]}]}");
    /* system 1+3, messages 3 + (2 + 1 + 3) words. */
    assert_int_equal(sy_mock_usage_prompt_tokens(SY_MOCK_ANTHROPIC, false, a), 13);
    json_object_put(a);

    json_object *g = parse("{\"systemInstruction\":{\"parts\":[{\"text\":\"be kind\"}]},"
                           "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a b\"},"
                           "{\"text\":\"c\"}]},{\"role\":\"model\",\"parts\":[{\"functionCall\":"
                           "{\"name\":\"f\",\"args\":{}}}]}]}");
    /* system 1+2, contents 2 + 3 words. */
    assert_int_equal(sy_mock_usage_prompt_tokens(SY_MOCK_GEMINI, false, g), 8);
    json_object_put(g);
}

static void test_answer_echo(void **state)
{
    (void)state;
    json_object *req = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"old\"},"
                             "{\"role\":\"assistant\",\"content\":\"x\"},"
                             "{\"role\":\"user\",\"content\":\"one two three four five six "
                             "seven eight nine ten\"}]}");
    sy_mock_answer_t a;
    assert_int_equal(sy_mock_answer_build(SY_MOCK_OPENAI, req, -1, &a), 0);
    assert_false(a.tool);
    sy_buf_t t;
    sy_buf_init(&t);
    assert_int_equal(sy_mock_answer_text(&a, &t), 0);
    assert_string_equal(t.data, "Echo: one two three four five six seven eight");
    assert_int_equal(sy_mock_answer_tokens(&a), 9);
    sy_mock_answer_free(&a);

    /* A word count cycles through the same list. */
    assert_int_equal(sy_mock_answer_build(SY_MOCK_OPENAI, req, 12, &a), 0);
    sy_buf_reset(&t);
    assert_int_equal(sy_mock_answer_text(&a, &t), 0);
    assert_string_equal(t.data, "Echo: one two three four five six seven eight Echo: one two");
    assert_int_equal(sy_mock_answer_tokens(&a), 12);
    assert_int_equal(sy_mock_usage_words(t.data, t.len), 12);
    sy_mock_answer_free(&a);
    sy_buf_free(&t);
    json_object_put(req);
}

static void test_answer_tool(void **state)
{
    (void)state;
    json_object *req = parse(
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\"},"
        "\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in \\\"Zürich\\\" today?\"}]}");
    sy_mock_answer_t a;
    assert_int_equal(sy_mock_answer_build(SY_MOCK_OPENAI, req, -1, &a), 0);
    assert_true(a.tool);
    assert_true(sy_str_eq_cstr(a.tool_name, "get_weather"));
    assert_string_equal(a.args.data, "{\"city\":\"Weather in \\\"Zürich\\\" today?\"}");
    /* 1 for the name + the words of the arguments text. */
    assert_int_equal(sy_mock_answer_tokens(&a), 1 + 4);

    /* Fragments reassemble to the arguments and never split a character. */
    size_t n = sy_mock_answer_fragments(&a);
    assert_true(n >= a.args.len / SY_MOCK_ARG_FRAGMENT);
    sy_buf_t joined;
    sy_buf_init(&joined);
    for (size_t i = 0; i < n; i++) {
        sy_str_t f = sy_mock_answer_fragment(&a, i);
        assert_true(f.len > 0 && f.len <= SY_MOCK_ARG_FRAGMENT);
        assert_true(((unsigned char)f.ptr[0] & 0xC0) != 0x80);
        sy_buf_append_view(&joined, f);
    }
    assert_int_equal(joined.len, a.args.len);
    assert_memory_equal(joined.data, a.args.data, a.args.len);
    sy_buf_free(&joined);
    sy_mock_answer_free(&a);
    json_object_put(req);

    /* Anthropic and Gemini tool declarations; typed and empty schemas. */
    req = parse("{\"tools\":[{\"name\":\"count\",\"input_schema\":{\"type\":\"object\","
                "\"properties\":{\"n\":{\"type\":\"integer\"}}}}],"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(sy_mock_answer_build(SY_MOCK_ANTHROPIC, req, -1, &a), 0);
    assert_true(a.tool);
    assert_string_equal(a.args.data, "{\"n\":1}");
    sy_mock_answer_free(&a);
    json_object_put(req);
    req = parse("{\"tools\":[{\"functionDeclarations\":[{\"name\":\"ping\"}]}],"
                "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}");
    assert_int_equal(sy_mock_answer_build(SY_MOCK_GEMINI, req, -1, &a), 0);
    assert_true(a.tool);
    assert_true(sy_str_eq_cstr(a.tool_name, "ping"));
    assert_string_equal(a.args.data, "{}");
    sy_mock_answer_free(&a);
    json_object_put(req);
}

static void test_fault_parse(void **state)
{
    (void)state;
    sy_mock_fault_t f;
    const char *why = NULL;
    sy_mock_fault_init(&f);
    assert_int_equal(
        sy_mock_fault_parse("latency=150; chunk_delay=5, status=429;retry_after=7", 52, &f, &why),
        0);
    assert_int_equal(f.latency_ms, 150);
    assert_int_equal(f.chunk_delay_ms, 5);
    assert_int_equal(f.status, 429);
    assert_int_equal(f.retry_after, 7);
    assert_true(f.any);

    sy_mock_fault_init(&f);
    assert_int_equal(
        sy_mock_fault_parse("reset=3;stall;malformed=true;rl_requests=4", 42, &f, &why), 0);
    assert_int_equal(f.reset, SY_MOCK_RESET_AFTER);
    assert_int_equal(f.reset_after, 3);
    assert_true(f.stall && f.malformed && f.ratelimit);
    assert_int_equal(f.rl_requests, 4);

    sy_mock_fault_init(&f);
    assert_int_equal(sy_mock_fault_parse("stream_error=3", 14, &f, &why), 0);
    assert_true(f.stream_error);
    assert_int_equal(f.stream_error_after, 3);

    sy_mock_fault_init(&f);
    assert_int_equal(sy_mock_fault_parse("reset=before", 12, &f, &why), 0);
    assert_int_equal(f.reset, SY_MOCK_RESET_BEFORE);

    /* Errors leave the fault untouched. */
    sy_mock_fault_init(&f);
    assert_int_equal(sy_mock_fault_parse("latency=5;bogus=1", 17, &f, &why), SY_EINVAL);
    assert_string_equal(why, "unknown fault key");
    assert_int_equal(f.latency_ms, 0);
    assert_int_equal(sy_mock_fault_parse("status=200", 10, &f, &why), SY_EINVAL);
    assert_int_equal(sy_mock_fault_parse("latency=-1", 10, &f, &why), SY_EINVAL);
    assert_int_equal(sy_mock_fault_parse("stall=maybe", 11, &f, &why), SY_EINVAL);
    assert_false(f.any);
}

static void test_fault_rules(void **state)
{
    (void)state;
    sy_mock_faults_t fs;
    sy_mock_fault_t f;
    const char *why = NULL;
    sy_mock_faults_init(&fs);
    json_object *b = parse("[{\"fault\":{\"status\":503},\"count\":2,\"endpoint\":\"messages\"},"
                           "{\"fault\":\"latency=10\"}]");
    assert_int_equal(sy_mock_faults_add_json(&fs, b, &why), 0);
    json_object_put(b);
    assert_int_equal(fs.n, 2);

    /* chat: only the catch-all latency rule applies, every time. */
    assert_true(sy_mock_faults_take(&fs, SY_MOCK_EP_CHAT, &f));
    assert_int_equal(f.status, 0);
    assert_int_equal(f.latency_ms, 10);
    /* messages: the counted rule twice, then the catch-all. */
    assert_true(sy_mock_faults_take(&fs, SY_MOCK_EP_MESSAGES, &f));
    assert_int_equal(f.status, 503);
    assert_true(sy_mock_faults_take(&fs, SY_MOCK_EP_MESSAGES, &f));
    assert_int_equal(f.status, 503);
    assert_true(sy_mock_faults_take(&fs, SY_MOCK_EP_MESSAGES, &f));
    assert_int_equal(f.status, 0);
    assert_int_equal(fs.n, 1);

    b = parse("{\"fault\":{\"status\":503},\"endpoint\":\"nope\"}");
    assert_int_equal(sy_mock_faults_add_json(&fs, b, &why), SY_EINVAL);
    json_object_put(b);
    b = parse("{\"fault\":{\"status\":503},\"count\":0}");
    assert_int_equal(sy_mock_faults_add_json(&fs, b, &why), SY_EINVAL);
    json_object_put(b);
    assert_int_equal(fs.n, 1);

    sy_mock_faults_clear(&fs);
    assert_false(sy_mock_faults_take(&fs, SY_MOCK_EP_CHAT, &f));
}

/* Builds a request as the server would, for the stream tests. */
static void make_req(sy_mock_req_t *r, sy_mock_provider_t prov, const char *body, int64_t cached)
{
    memset(r, 0, sizeof(*r));
    r->prov = prov;
    r->body = parse(body);
    r->model = SY_STR("model-x");
    r->name = "unit";
    r->created = 1760000000;
    snprintf(r->id, sizeof(r->id), "%s",
             prov == SY_MOCK_ANTHROPIC ? "msg_unit-1" : "chatcmpl-unit-1");
    json_object *so = sy_json_get_object(r->body, "stream_options");
    sy_json_get_bool(so, "include_usage", &r->include_usage);
    assert_int_equal(sy_mock_answer_build(prov, r->body, -1, &r->ans), 0);
    r->prompt_tokens = sy_mock_usage_prompt_tokens(prov, false, r->body);
    r->cached_tokens = cached;
}

static void free_req(sy_mock_req_t *r)
{
    sy_mock_answer_free(&r->ans);
    json_object_put(r->body);
}

/* Strips the SSE framing of one event and returns its parsed data. */
static json_object *event_json(sy_buf_t *ev, const char *event_name, const char *end)
{
    const char *d = ev->data;
    if (event_name != NULL) {
        char want[64];
        snprintf(want, sizeof(want), "event: %s\n", event_name);
        assert_true(strncmp(d, want, strlen(want)) == 0);
        d += strlen(want);
    }
    assert_true(strncmp(d, "data: ", 6) == 0);
    d += 6;
    size_t elen = strlen(end);
    assert_true(ev->len >= elen);
    assert_string_equal(ev->data + ev->len - elen, end);
    size_t len = (size_t)(ev->data + ev->len - elen - d);
    assert_null(memchr(d, '\n', len));
    json_object *o = NULL;
    assert_int_equal(sy_json_parse_once(d, len, &o, NULL), 0);
    return o;
}

static void test_openai_stream(void **state)
{
    (void)state;
    sy_mock_req_t r;
    make_req(&r, SY_MOCK_OPENAI,
             "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hello big world\"}]}",
             2);
    size_t n = sy_mock_openai_stream_count(&r);
    assert_int_equal(n, 1 + 4 + 1 + 1 + 1);
    sy_buf_t ev, text;
    sy_buf_init(&ev);
    sy_buf_init(&text);
    for (size_t i = 0; i + 1 < n; i++) {
        sy_buf_reset(&ev);
        assert_int_equal(sy_mock_openai_stream_event(&r, i, &ev), 0);
        json_object *o = event_json(&ev, NULL, "\n\n");
        json_object *choices = sy_json_get_array(o, "choices");
        if (i + 2 == n) {
            json_object *u = sy_json_get_object(o, "usage");
            int64_t p, c, cached;
            assert_int_equal(sy_json_get_int64(u, "prompt_tokens", &p), 0);
            assert_int_equal(sy_json_get_int64(u, "completion_tokens", &c), 0);
            sy_json_get_int64(sy_json_get_object(u, "prompt_tokens_details"), "cached_tokens",
                              &cached);
            assert_int_equal(p, 4);
            assert_int_equal(c, 4);
            assert_int_equal(cached, 2);
            assert_int_equal(json_object_array_length(choices), 0);
        } else {
            json_object *delta = sy_json_get_object(json_object_array_get_idx(choices, 0), "delta");
            size_t len = 0;
            const char *s = sy_json_get_string(delta, "content", &len);
            if (s != NULL)
                sy_buf_append(&text, s, len);
            assert_true(json_object_object_get_ex(o, "usage", NULL)); /* "usage": null */
        }
        json_object_put(o);
    }
    sy_buf_reset(&ev);
    assert_int_equal(sy_mock_openai_stream_event(&r, n - 1, &ev), 0);
    assert_string_equal(ev.data, "data: [DONE]\n\n");
    assert_string_equal(text.data, "Echo: hello big world");
    sy_buf_free(&ev);
    sy_buf_free(&text);
    free_req(&r);
}

static void test_anthropic_stream_tool(void **state)
{
    (void)state;
    static const char *const order[] = {"message_start", "content_block_start", "ping"};
    sy_mock_req_t r;
    make_req(&r, SY_MOCK_ANTHROPIC,
             "{\"model\":\"m\",\"max_tokens\":9,\"tools\":[{\"name\":\"lookup\",\"input_schema\":"
             "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}],"
             "\"messages\":[{\"role\":\"user\",\"content\":\"find the cat\"}]}",
             0);
    size_t n = sy_mock_anthropic_stream_count(&r);
    size_t frags = sy_mock_answer_fragments(&r.ans);
    assert_int_equal(n, 6 + 1 + frags);
    sy_buf_t ev, args;
    sy_buf_init(&ev);
    sy_buf_init(&args);
    for (size_t i = 0; i < n; i++) {
        const char *name = i < 3               ? order[i]
                           : i < 3 + 1 + frags ? "content_block_delta"
                           : i == n - 3        ? "content_block_stop"
                           : i == n - 2        ? "message_delta"
                                               : "message_stop";
        sy_buf_reset(&ev);
        assert_int_equal(sy_mock_anthropic_stream_event(&r, i, &ev), 0);
        json_object *o = event_json(&ev, name, "\n\n");
        assert_string_equal(sy_json_get_string(o, "type", NULL), name);
        if (strcmp(name, "content_block_delta") == 0) {
            size_t len = 0;
            const char *s =
                sy_json_get_string(sy_json_get_object(o, "delta"), "partial_json", &len);
            assert_non_null(s);
            sy_buf_append(&args, s, len);
        }
        if (strcmp(name, "message_delta") == 0) {
            int64_t out = 0;
            assert_string_equal(
                sy_json_get_string(sy_json_get_object(o, "delta"), "stop_reason", NULL),
                "tool_use");
            sy_json_get_int64(sy_json_get_object(o, "usage"), "output_tokens", &out);
            assert_int_equal(out, sy_mock_answer_tokens(&r.ans));
        }
        json_object_put(o);
    }
    assert_string_equal(args.data, "{\"q\":\"find the cat\"}");
    sy_buf_free(&ev);
    sy_buf_free(&args);
    free_req(&r);
}

static void test_gemini_stream(void **state)
{
    (void)state;
    sy_mock_req_t r;
    make_req(&r, SY_MOCK_GEMINI, "{\"contents\":[{\"parts\":[{\"text\":\"a b\"}]}]}", 1);
    size_t n = sy_mock_gemini_stream_count(&r);
    assert_int_equal(n, 3 + 1);
    sy_buf_t ev;
    sy_buf_init(&ev);
    for (size_t i = 0; i < n; i++) {
        sy_buf_reset(&ev);
        assert_int_equal(sy_mock_gemini_stream_event(&r, i, &ev), 0);
        json_object *o = event_json(&ev, NULL, "\r\n\r\n");
        json_object *cand = json_object_array_get_idx(sy_json_get_array(o, "candidates"), 0);
        json_object *um = sy_json_get_object(o, "usageMetadata");
        int64_t p = 0, c = 0, cached = 0;
        sy_json_get_int64(um, "promptTokenCount", &p);
        sy_json_get_int64(um, "candidatesTokenCount", &c);
        sy_json_get_int64(um, "cachedContentTokenCount", &cached);
        assert_int_equal(p, 3);
        assert_int_equal(cached, 1);
        assert_int_equal(c, i + 1 < n ? (int64_t)i + 1 : 3);
        assert_int_equal(sy_json_get(cand, "finishReason") != NULL, i + 1 == n);
        json_object_put(o);
    }
    sy_buf_free(&ev);
    free_req(&r);
}

static void test_error_shapes(void **state)
{
    (void)state;
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_mock_openai_error(401, NULL, NULL, "invalid_api_key", &b), 0);
    json_object *o = parse(b.data);
    json_object *e = sy_json_get_object(o, "error");
    assert_string_equal(sy_json_get_string(e, "code", NULL), "invalid_api_key");
    assert_true(json_object_is_type(sy_json_get(e, "param"), json_type_null));
    json_object_put(o);

    sy_buf_reset(&b);
    assert_int_equal(sy_mock_anthropic_error(529, NULL, &b), 0);
    o = parse(b.data);
    assert_string_equal(sy_json_get_string(sy_json_get_object(o, "error"), "type", NULL),
                        "overloaded_error");
    json_object_put(o);

    sy_buf_reset(&b);
    assert_int_equal(sy_mock_gemini_error(400, NULL, "API_KEY_INVALID", -1, &b), 0);
    o = parse(b.data);
    e = sy_json_get_object(o, "error");
    assert_string_equal(sy_json_get_string(e, "status", NULL), "INVALID_ARGUMENT");
    json_object *d = json_object_array_get_idx(sy_json_get_array(e, "details"), 0);
    assert_string_equal(sy_json_get_string(d, "reason", NULL), "API_KEY_INVALID");
    json_object_put(o);
    sy_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_prompt_openai),
        cmocka_unit_test(test_prompt_anthropic_gemini),
        cmocka_unit_test(test_answer_echo),
        cmocka_unit_test(test_answer_tool),
        cmocka_unit_test(test_fault_parse),
        cmocka_unit_test(test_fault_rules),
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_anthropic_stream_tool),
        cmocka_unit_test(test_gemini_stream),
        cmocka_unit_test(test_error_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
