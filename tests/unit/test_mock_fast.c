/* Differential tests of the mock provider's scanner path (fast.c) against
 * its json-c path: whenever the scanner answers a body, the json-c path must
 * accept that body too and derive exactly the same request (model, stream
 * flags, prompt tokens, answer words, tool name and arguments), and the
 * rendered responses must be byte-identical. Bodies are a corpus of valid and
 * tricky requests plus deterministic random mutations of them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "tests/mockprovider/mock.h"

/* The json-c path as server.c runs it. Returns false when it refuses the
 * body (a 400). */
static bool slow_request(sy_mock_req_t *r, const char *body, size_t len, int64_t words)
{
    json_object *o = NULL;
    if (sy_json_parse_once(body, len, &o, NULL) != 0)
        return false;
    r->body = o;
    const char *why = NULL, *param = NULL;
    int rc = r->prov == SY_MOCK_OPENAI      ? sy_mock_openai_validate(r, &why, &param)
             : r->prov == SY_MOCK_ANTHROPIC ? sy_mock_anthropic_validate(r, &why)
                                            : sy_mock_gemini_validate(r, &why);
    if (rc != 0) {
        json_object_put(o);
        r->body = NULL;
        return false;
    }
    if (r->prov != SY_MOCK_GEMINI) {
        size_t n = 0;
        const char *m = sy_json_get_string(o, "model", &n);
        r->model = (sy_str_t){m, n};
        sy_json_get_bool(o, "stream", &r->stream);
        sy_json_get_bool(sy_json_get_object(o, "stream_options"), "include_usage",
                         &r->include_usage);
    }
    assert_int_equal(sy_mock_answer_build(r->prov, o, words, &r->ans), 0);
    r->prompt_tokens = sy_mock_usage_prompt_tokens(r->prov, false, o);
    return true;
}

static void init_req(sy_mock_req_t *r, sy_mock_provider_t prov)
{
    memset(r, 0, sizeof(*r));
    r->prov = prov;
    r->ep = prov == SY_MOCK_OPENAI      ? SY_MOCK_EP_CHAT
            : prov == SY_MOCK_ANTHROPIC ? SY_MOCK_EP_MESSAGES
                                        : SY_MOCK_EP_GENERATE;
    r->name = "unit";
    r->created = 1760000000;
    snprintf(r->id, sizeof(r->id), "%s",
             prov == SY_MOCK_ANTHROPIC ? "msg_unit-7"
             : prov == SY_MOCK_GEMINI  ? "resp-unit-7"
                                       : "chatcmpl-unit-7");
    sy_buf_init(&r->ans.args);
}

static void free_req(sy_mock_req_t *r)
{
    sy_mock_answer_free(&r->ans);
    json_object_put(r->body);
    r->body = NULL;
}

/* The full non-streaming body and every stream event, concatenated. */
static void render(const sy_mock_req_t *r, sy_buf_t *out)
{
    if (r->prov == SY_MOCK_OPENAI) {
        assert_int_equal(sy_mock_openai_chat(r, out), 0);
        size_t n = sy_mock_openai_stream_count(r);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sy_mock_openai_stream_event(r, i, out), 0);
    } else if (r->prov == SY_MOCK_ANTHROPIC) {
        assert_int_equal(sy_mock_anthropic_message(r, out), 0);
        size_t n = sy_mock_anthropic_stream_count(r);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sy_mock_anthropic_stream_event(r, i, out), 0);
    } else {
        assert_int_equal(sy_mock_gemini_generate(r, out), 0);
        size_t n = sy_mock_gemini_stream_count(r);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sy_mock_gemini_stream_event(r, i, out), 0);
    }
}

static bool str_eq(sy_str_t a, sy_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Runs both paths on one body; returns true when the scanner answered it
 * (and then checks that both agree exactly). */
static bool check(sy_mock_provider_t prov, const char *body, size_t len, int64_t words)
{
    /* The scanner borrows from the body: give it a copy with nothing after
     * it, so ASan sees any read past the end. */
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    sy_mock_req_t f, s;
    init_req(&f, prov);
    init_req(&s, prov);
    bool fast = sy_mock_fast_request(&f, copy, len, words) == 0;
    bool slow = slow_request(&s, copy, len, words);
    if (fast) {
        if (!slow)
            fail_msg("scanner accepted a body the json-c path refuses: %.*s", (int)len, body);
        if (prov == SY_MOCK_GEMINI) {
            f.model = s.model = SY_STR("gemini-x");
        } else {
            assert_true(str_eq(f.model, s.model));
        }
        assert_int_equal(f.stream, s.stream);
        assert_int_equal(f.include_usage, s.include_usage);
        assert_int_equal(f.prompt_tokens, s.prompt_tokens);
        assert_int_equal(f.ans.nbase, s.ans.nbase);
        for (size_t i = 0; i < f.ans.nbase; i++)
            assert_true(str_eq(f.ans.base[i], s.ans.base[i]));
        assert_int_equal(f.ans.nwords, s.ans.nwords);
        assert_int_equal(f.ans.tool, s.ans.tool);
        if (f.ans.tool) {
            assert_true(str_eq(f.ans.tool_name, s.ans.tool_name));
            assert_int_equal(f.ans.args.len, s.ans.args.len);
            assert_memory_equal(f.ans.args.data, s.ans.args.data, f.ans.args.len);
        }
        f.cached_tokens = s.cached_tokens = f.prompt_tokens / 2;
        sy_buf_t a, b;
        sy_buf_init(&a);
        sy_buf_init(&b);
        render(&f, &a);
        render(&s, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        sy_buf_free(&a);
        sy_buf_free(&b);
    }
    free_req(&f);
    free_req(&s);
    free(copy);
    return fast;
}

/* Bodies the scanner must answer itself (what SDKs and gateways send). */
static const struct {
    sy_mock_provider_t prov;
    const char *body;
} usual[] = {
    {SY_MOCK_OPENAI,
     "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
     "assistant.\"},{\"role\":\"user\",\"content\":\"What is the weather like in Paris "
     "today?\"}]}"},
    {SY_MOCK_OPENAI,
     "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
     "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one two "
     "three four five six seven eight nine ten\"},{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:x\"}}]},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
     "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"ok  done\"},"
     "{\"role\":\"user\",\"content\":\"  Caf\xc3\xa9 18 \xc2\xb0"
     "C  \"}],\"max_tokens\":64,\"temperature\":0.7}"},
    {SY_MOCK_OPENAI,
     "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris "
     "please\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
     "\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\"},"
     "\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}],\"tool_choice\":\"auto\"}"},
    {SY_MOCK_OPENAI,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"n\"}],\"tools\":[{"
     "\"type\":\"function\",\"function\":{\"name\":\"count\",\"parameters\":{\"properties\":{"
     "\"n\":{\"type\":\"Integer\"}}}}}]}"},
    {SY_MOCK_ANTHROPIC,
     "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"system\":\"Be brief.\","
     "\"messages\":[{\"role\":\"user\",\"content\":\"Hello there, how are you?\"}]}"},
    {SY_MOCK_ANTHROPIC,
     "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"stream\":true,\"messages\":[{"
     "\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"first words\"}]},{\"role\":"
     "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
     "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
     "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"sunny and "
     "warm\"}]},{\"type\":\"text\",\"text\":\"thanks a lot\"}]}],\"tools\":[{\"name\":"
     "\"lookup\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"flag\":{\"type\":"
     "\"boolean\"}}}}]}"},
    {SY_MOCK_GEMINI, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Tell me a "
                     "joke\"}]}],\"systemInstruction\":{\"parts\":[{\"text\":\"Be "
                     "funny\"}]},\"generationConfig\":{\"maxOutputTokens\":100}}"},
    {SY_MOCK_GEMINI,
     "{\"contents\":[{\"parts\":[{\"text\":\"a b\"}]},{\"role\":\"model\",\"parts\":[{"
     "\"text\":\"c\"}]},{\"role\":\"user\",\"parts\":[{\"text\":\"Weather in Paris\"},"
     "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"AAAA\"}}]}],\"tools\":[{"
     "\"functionDeclarations\":[{\"name\":\"get_weather\",\"parametersJsonSchema\":{\"type\":"
     "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}]}]}"},
};

/* Bodies where the scanner must step aside or agree: escapes, duplicates,
 * nulls, odd types, huge numbers, invalid JSON, missing fields. */
static const struct {
    sy_mock_provider_t prov;
    const char *body;
} tricky[] = {
    {SY_MOCK_OPENAI, "{\"model\":\"gpt\\u002d4o\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"a\\nb\"}]}"},
    {SY_MOCK_OPENAI, "{\"mod\\u0065l\":\"x\",\"model\":\"y\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"a\"}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"model\":\"b\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"x\"}],\"messages\":[{\"role\":\"user\",\"content\":\"y z\"}]}"},
    {SY_MOCK_OPENAI,
     "{\"model\":\"a\",\"stream\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
    {SY_MOCK_OPENAI,
     "{\"model\":\"a\",\"stream\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"content\":\"x\"}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"n\":12345678901234567890}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"n\":-9223372036854775808}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"t\":NaN}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} x"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"},
    {SY_MOCK_OPENAI, "[1,2]"},
    {SY_MOCK_OPENAI, "null"},
    {SY_MOCK_OPENAI, "  {\"model\":\"a\" , \"messages\" : [ { \"role\" : \"user\" , "
                     "\"content\" : \" spaced  out \" } ] , \"stream\" : false }  \n"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"c\"}}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[{\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":{"
                     "\"b\":{\"type\":\"number\"},\"b\":{\"type\":\"boolean\"}}}}}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[{\"function\":{\"name\":\"\"}}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[null,{\"function\":{\"name\":\"f\"}}]}"},
    {SY_MOCK_OPENAI, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[{\"function\":{\"name\":\"f\",\"parameters\":{\"required\":"
                     "[5],\"properties\":{}}}}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":-0,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":1.0,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":1,\"messages\":[{\"role\":\"system\","
                        "\"content\":\"x\"}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\","
                        "\"content\":null}]}"},
    {SY_MOCK_ANTHROPIC, "{\"model\":\"c\",\"max_tokens\":1,\"system\":[{\"type\":\"text\","
                        "\"text\":\"s t\"}],\"system\":7,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}"},
    {SY_MOCK_GEMINI, "{\"contents\":[{\"role\":5,\"parts\":[{\"text\":\"odd role\"}]}]}"},
    {SY_MOCK_GEMINI, "{\"contents\":[{\"parts\":[]}]}"},
    {SY_MOCK_GEMINI, "{\"contents\":[]}"},
    {SY_MOCK_GEMINI, "{\"contents\":[{\"role\":\"model\",\"parts\":[{\"text\":\"x\"}]}],"
                     "\"system_instruction\":{\"parts\":[{\"text\":\"p q r\"}]}}"},
    {SY_MOCK_GEMINI, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"tools\":[{"
                     "\"function_declarations\":[{\"name\":\"g\",\"parameters\":{\"type\":"
                     "\"object\",\"properties\":{\"k\":{\"type\":\"INTEGER\"}}}}]}]}"},
};

static void test_usual_bodies_take_the_scanner(void **state)
{
    (void)state;
    for (size_t i = 0; i < SY_ARRAY_LEN(usual); i++) {
        const char *b = usual[i].body;
        if (!check(usual[i].prov, b, strlen(b), -1))
            fail_msg("usual body %zu fell back to json-c", i);
        assert_true(check(usual[i].prov, b, strlen(b), 13)); /* x-mock-words */
    }
}

static void test_tricky_bodies_agree(void **state)
{
    (void)state;
    size_t fast = 0;
    for (size_t i = 0; i < SY_ARRAY_LEN(tricky); i++) {
        const char *b = tricky[i].body;
        fast += check(tricky[i].prov, b, strlen(b), -1);
    }
    /* Escapes, clamped numbers and invalid documents must not take it... */
    assert_false(check(SY_MOCK_OPENAI, tricky[0].body, strlen(tricky[0].body), -1));
    assert_false(check(SY_MOCK_OPENAI, tricky[1].body, strlen(tricky[1].body), -1));
    assert_false(check(SY_MOCK_OPENAI, tricky[8].body, strlen(tricky[8].body), -1));
    /* ...plain ones (duplicates, nulls, whitespace) may, and then agreed. */
    assert_true(check(SY_MOCK_OPENAI, tricky[2].body, strlen(tricky[2].body), -1));
    assert_true(check(SY_MOCK_OPENAI, tricky[15].body, strlen(tricky[15].body), -1));
    assert_true(fast >= 8);
}

/* Random mutations of every corpus body: flipped, dropped and inserted
 * bytes drawn from JSON's own alphabet, and truncations. */
static void test_mutations_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":,\\ 0123456789-.eEtrufalsn\xc3\xa9\x01xyz";
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    char buf[2048];
    size_t fast = 0, total = 0;
    for (int round = 0; round < 4000; round++) {
        size_t pick = (size_t)round % (SY_ARRAY_LEN(usual) + SY_ARRAY_LEN(tricky));
        sy_mock_provider_t prov;
        const char *src;
        if (pick < SY_ARRAY_LEN(usual)) {
            prov = usual[pick].prov;
            src = usual[pick].body;
        } else {
            prov = tricky[pick - SY_ARRAY_LEN(usual)].prov;
            src = tricky[pick - SY_ARRAY_LEN(usual)].body;
        }
        size_t n = strlen(src);
        memcpy(buf, src, n);
        int edits = 1 + (int)(seed % 3);
        for (int e = 0; e < edits && n > 0; e++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(seed >> 33) % n;
            char ch = alphabet[(seed >> 13) % (sizeof(alphabet) - 1)];
            switch ((seed >> 7) % 4) {
            case 0:
                buf[at] = ch;
                break;
            case 1:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            case 2:
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = ch;
                    n++;
                }
                break;
            default:
                n = at;
                break;
            }
        }
        fast += check(prov, buf, n, (int64_t)(seed % 5) - 1);
        total++;
    }
    /* Most single edits break the JSON; enough survive to exercise the scanner. */
    assert_true(fast > total / 20);
}

/* The word count (eight bytes at a time) against a byte-by-byte reference,
 * on strings of separators, near-separators and word bytes. */
static void test_words_match_reference(void **state)
{
    (void)state;
    static const unsigned char pool[] = {' ',  '\t', '\n', '\v', '\f', '\r', 0x08, 0x0e, 0x1f,
                                         0x21, 0x00, 0x7f, 0x80, 0x85, 0xa0, 0x8d, 0x89, 'a'};
    uint64_t seed = 12345;
    char s[64];
    for (int round = 0; round < 20000; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (size_t)(seed >> 58); /* 0..63 */
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            s[i] = (char)pool[(seed >> 40) % sizeof(pool)];
        }
        int64_t want = 0;
        bool in_word = false;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            bool sp = c == ' ' || (c >= '\t' && c <= '\r');
            if (!sp && !in_word)
                want++;
            in_word = !sp;
        }
        assert_int_equal(sy_mock_usage_words(s, n), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usual_bodies_take_the_scanner),
        cmocka_unit_test(test_tricky_bodies_agree),
        cmocka_unit_test(test_mutations_agree),
        cmocka_unit_test(test_words_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
