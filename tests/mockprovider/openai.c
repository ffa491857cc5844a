/* The OpenAI wire format: chat completions (plain and streamed), embeddings,
 * models, and the error envelope (REFERENCE.md §2). */
#include <math.h>
#include <string.h>
#include <openssl/evp.h>
#include "json.h"
#include "mock.h"

int sy_mock_openai_error(int status, const char *message, const char *param, const char *code,
                         sy_buf_t *out)
{
    const char *type = "invalid_request_error";
    const char *def = "Invalid request.";
    switch (status) {
    case 401:
        def = "Incorrect API key provided.";
        break;
    case 403:
        def = "You are not allowed to sample from this model.";
        break;
    case 404:
        def = "The requested resource does not exist.";
        break;
    case 413:
        def = "Request body too large.";
        break;
    case 429:
        type = "requests";
        def = "Rate limit reached for requests. Please try again later.";
        if (code == NULL)
            code = "rate_limit_exceeded";
        break;
    case 500:
        type = "server_error";
        def = "The server had an error while processing your request. Sorry about that!";
        break;
    case 502:
    case 503:
    case 529:
        type = "server_error";
        def = "The engine is currently overloaded, please try again later.";
        break;
    default:
        if (status >= 500) {
            type = "server_error";
            def = "The server had an error while processing your request.";
        }
    }
    const char *msg = message ? message : def;
    int rc = SY_MOCK_LIT(out, "{\"error\":{\"message\":");
    rc = rc ? rc : sy_buf_append_json_string(out, msg, strlen(msg));
    rc = rc ? rc : sy_buf_appendf(out, ",\"type\":\"%s\",\"param\":", type);
    if (rc == 0 && param != NULL)
        rc = sy_buf_append_json_string(out, param, strlen(param));
    else if (rc == 0)
        rc = SY_MOCK_LIT(out, "null");
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"code\":");
    if (rc == 0 && code != NULL)
        rc = sy_buf_append_json_string(out, code, strlen(code));
    else if (rc == 0)
        rc = SY_MOCK_LIT(out, "null");
    return rc ? rc : SY_MOCK_LIT(out, "}}");
}

int sy_mock_openai_validate(const sy_mock_req_t *r, const char **why, const char **param)
{
    json_object *b = r->body;
    *param = NULL;
    if (b == NULL || !json_object_is_type(b, json_type_object)) {
        *why = "The request body must be a JSON object.";
        return SY_EINVAL;
    }
    json_object *model = sy_json_get(b, "model");
    if (model == NULL || !json_object_is_type(model, json_type_string) ||
        json_object_get_string_len(model) == 0) {
        *why = "you must provide a model parameter";
        *param = "model";
        return SY_EINVAL;
    }
    json_object *stream = sy_json_get(b, "stream");
    if (stream != NULL && !json_object_is_type(stream, json_type_boolean) &&
        !json_object_is_type(stream, json_type_null)) {
        *why = "'stream' must be a boolean.";
        *param = "stream";
        return SY_EINVAL;
    }
    if (r->ep == SY_MOCK_EP_EMBEDDINGS) {
        json_object *in = sy_json_get(b, "input");
        if (in == NULL ||
            (json_object_is_type(in, json_type_string) && json_object_get_string_len(in) == 0) ||
            (json_object_is_type(in, json_type_array) && json_object_array_length(in) == 0) ||
            !(json_object_is_type(in, json_type_string) ||
              json_object_is_type(in, json_type_array))) {
            *why = "'input' must be a non-empty string or array.";
            *param = "input";
            return SY_EINVAL;
        }
        return 0;
    }
    json_object *msgs = sy_json_get(b, "messages");
    if (msgs == NULL || !json_object_is_type(msgs, json_type_array) ||
        json_object_array_length(msgs) == 0) {
        *why = "'messages' must be a non-empty array.";
        *param = "messages";
        return SY_EINVAL;
    }
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (!json_object_is_type(m, json_type_object) ||
            sy_json_get_string(m, "role", NULL) == NULL) {
            *why = "Each message must be an object with a 'role'.";
            *param = "messages";
            return SY_EINVAL;
        }
    }
    return 0;
}

static int usage_json(const sy_mock_req_t *r, sy_buf_t *out)
{
    int64_t c = sy_mock_answer_tokens(&r->ans);
    int rc = SY_MOCK_LIT(out, "{\"prompt_tokens\":");
    rc = rc ? rc : sy_mock_put_i64(out, r->prompt_tokens);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"completion_tokens\":");
    rc = rc ? rc : sy_mock_put_i64(out, c);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"total_tokens\":");
    rc = rc ? rc : sy_mock_put_i64(out, r->prompt_tokens + c);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    rc = rc ? rc : sy_mock_put_i64(out, r->cached_tokens);
    return rc ? rc
              : SY_MOCK_LIT(out, ",\"audio_tokens\":0},\"completion_tokens_details\":{"
                                 "\"reasoning_tokens\":0,\"audio_tokens\":0,"
                                 "\"accepted_prediction_tokens\":0,"
                                 "\"rejected_prediction_tokens\":0}}");
}

static int tool_call_head(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = sy_buf_appendf(out, "\"id\":\"call_%s\",\"type\":\"function\",\"function\":{\"name\":",
                            r->id + 9 /* skip "chatcmpl-" */);
    return rc ? rc : sy_mock_json_str(out, r->ans.tool_name);
}

int sy_mock_openai_chat(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"id\":\"");
    rc = rc ? rc : sy_buf_append_str(out, r->id);
    rc = rc ? rc : SY_MOCK_LIT(out, "\",\"object\":\"chat.completion\",\"created\":");
    rc = rc ? rc : sy_mock_put_i64(out, r->created);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"model\":");
    rc = rc ? rc : sy_mock_model_json(r, out);
    rc = rc ? rc
            : SY_MOCK_LIT(out, ",\"choices\":[{\"index\":0,\"message\":{"
                               "\"role\":\"assistant\",\"content\":");
    if (rc)
        return rc;
    if (r->ans.tool) {
        rc = SY_MOCK_LIT(out, "null,\"refusal\":null,\"annotations\":[],\"tool_calls\":[{");
        rc = rc ? rc : tool_call_head(r, out);
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"arguments\":");
        rc = rc ? rc : sy_buf_append_json_string(out, r->ans.args.data, r->ans.args.len);
        rc = rc ? rc
                : SY_MOCK_LIT(out, "}}]},\"logprobs\":null,"
                                   "\"finish_reason\":\"tool_calls\"}],\"usage\":");
    } else {
        rc = sy_mock_answer_text_json(&r->ans, out);
        rc = rc ? rc
                : SY_MOCK_LIT(out, ",\"refusal\":null,\"annotations\":[]},"
                                   "\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                                   "\"usage\":");
    }
    rc = rc ? rc : usage_json(r, out);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_");
    rc = rc ? rc : sy_buf_append_str(out, r->name);
    return rc ? rc : SY_MOCK_LIT(out, "\"}");
}

/* Streams. Events: role chunk; one chunk per word (text) or per argument
 * fragment (tool call); the finish chunk; the usage chunk when
 * include_usage; [DONE]. */
size_t sy_mock_openai_stream_count(const sy_mock_req_t *r)
{
    size_t body = r->ans.tool ? sy_mock_answer_fragments(&r->ans) : (size_t)r->ans.nwords;
    return 1 + body + 1 + (r->include_usage ? 1 : 0) + 1;
}

int sy_mock_openai_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out)
{
    size_t n = sy_mock_openai_stream_count(r);
    if (i + 1 == n)
        return SY_MOCK_LIT(out, "data: [DONE]\n\n");
    int rc = sy_buf_appendf(out,
                            "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
                            "\"created\":%lld,\"model\":",
                            r->id, (long long)r->created);
    rc = rc ? rc : sy_mock_model_json(r, out);
    rc = rc ? rc
            : sy_buf_appendf(out,
                             ",\"service_tier\":\"default\",\"system_fingerprint\":"
                             "\"fp_%s\",\"choices\":",
                             r->name);
    if (rc)
        return rc;
    size_t body = n - 3 - (r->include_usage ? 1 : 0);
    if (r->include_usage && i + 2 == n) {
        rc = SY_MOCK_LIT(out, "[],\"usage\":");
        rc = rc ? rc : usage_json(r, out);
        return rc ? rc : SY_MOCK_LIT(out, "}\n\n");
    }
    rc = SY_MOCK_LIT(out, "[{\"index\":0,\"delta\":");
    if (rc)
        return rc;
    const char *finish = "null";
    if (i == 0) {
        if (r->ans.tool) {
            rc = SY_MOCK_LIT(out, "{\"role\":\"assistant\",\"content\":null,"
                                  "\"tool_calls\":[{\"index\":0,");
            rc = rc ? rc : tool_call_head(r, out);
            rc = rc ? rc : SY_MOCK_LIT(out, ",\"arguments\":\"\"}}],\"refusal\":null}");
        } else {
            rc = SY_MOCK_LIT(out, "{\"role\":\"assistant\",\"content\":\"\","
                                  "\"refusal\":null}");
        }
    } else if (i <= body) {
        if (r->ans.tool) {
            rc = SY_MOCK_LIT(out, "{\"tool_calls\":[{\"index\":0,\"function\":"
                                  "{\"arguments\":");
            rc = rc ? rc : sy_mock_json_str(out, sy_mock_answer_fragment(&r->ans, i - 1));
            rc = rc ? rc : SY_MOCK_LIT(out, "}}]}");
        } else {
            rc = SY_MOCK_LIT(out, "{\"content\":\"");
            if (rc == 0 && i > 1)
                rc = sy_buf_append(out, " ", 1);
            rc = rc ? rc : sy_mock_json_escape(out, sy_mock_answer_word(&r->ans, (int64_t)i - 1));
            rc = rc ? rc : SY_MOCK_LIT(out, "\"}");
        }
    } else {
        rc = SY_MOCK_LIT(out, "{}");
        finish = r->ans.tool ? "\"tool_calls\"" : "\"stop\"";
    }
    rc = rc ? rc : sy_buf_appendf(out, ",\"logprobs\":null,\"finish_reason\":%s}]", finish);
    if (rc == 0 && r->include_usage)
        rc = SY_MOCK_LIT(out, ",\"usage\":null");
    return rc ? rc : SY_MOCK_LIT(out, "}\n\n");
}

/* Embeddings: a deterministic vector per input from an FNV-1a hash of its
 * JSON text, so equal inputs embed equally. */
static uint32_t fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static int embedding(json_object *in, int64_t dims, bool b64, sy_buf_t *out)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(in, JSON_C_TO_STRING_PLAIN, &len);
    uint32_t h = fnv1a(s, len, 2166136261u);
    if (!b64) {
        int rc = sy_buf_append(out, "[", 1);
        for (int64_t d = 0; d < dims && rc == 0; d++) {
            h = h * 1103515245u + 12345u;
            double v = ((double)(h >> 8) / (double)(1u << 24)) * 2.0 - 1.0;
            rc = sy_buf_appendf(out, "%s%.7f", d ? "," : "", v);
        }
        return rc ? rc : sy_buf_append(out, "]", 1);
    }
    /* base64 of little-endian float32 (the openai SDK asks for it). */
    unsigned char raw[4 * 256];
    unsigned char enc[4 * ((sizeof(raw) + 2) / 3) + 1];
    for (int64_t d = 0; d < dims; d++) {
        h = h * 1103515245u + 12345u;
        float v = (float)(((double)(h >> 8) / (double)(1u << 24)) * 2.0 - 1.0);
        uint32_t bits;
        memcpy(&bits, &v, 4);
        raw[4 * d] = (unsigned char)bits;
        raw[4 * d + 1] = (unsigned char)(bits >> 8);
        raw[4 * d + 2] = (unsigned char)(bits >> 16);
        raw[4 * d + 3] = (unsigned char)(bits >> 24);
    }
    int n = EVP_EncodeBlock(enc, raw, (int)(4 * dims));
    int rc = sy_buf_append(out, "\"", 1);
    rc = rc ? rc : sy_buf_append(out, enc, (size_t)n);
    return rc ? rc : sy_buf_append(out, "\"", 1);
}

int sy_mock_openai_embeddings(const sy_mock_req_t *r, sy_buf_t *out)
{
    int64_t dims = 8;
    if (sy_json_get_int64(r->body, "dimensions", &dims) != 0 || dims < 1 || dims > 256)
        dims = 8;
    const char *fmt = sy_json_get_string(r->body, "encoding_format", NULL);
    bool b64 = fmt != NULL && strcmp(fmt, "base64") == 0;
    json_object *in = sy_json_get(r->body, "input");
    /* A token array (array of ints) is one input. */
    bool many = json_object_is_type(in, json_type_array) && json_object_array_length(in) > 0 &&
                !json_object_is_type(json_object_array_get_idx(in, 0), json_type_int);
    size_t n = many ? json_object_array_length(in) : 1;
    int rc = SY_MOCK_LIT(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sy_buf_appendf(
            out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        rc = rc ? rc : embedding(many ? json_object_array_get_idx(in, i) : in, dims, b64, out);
        rc = rc ? rc : sy_buf_append(out, "}", 1);
    }
    rc = rc ? rc : SY_MOCK_LIT(out, "],\"model\":");
    rc = rc ? rc : sy_mock_model_json(r, out);
    return rc ? rc
              : sy_buf_appendf(out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                               (long long)r->prompt_tokens, (long long)r->prompt_tokens);
}

static const char *const model_ids[] = {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small",
                                        "claude-sonnet-4-5", "gemini-2.5-flash"};

int sy_mock_openai_models(const char *name, sy_str_t id, sy_buf_t *out)
{
    int rc = 0;
    if (id.len > 0) {
        rc = SY_MOCK_LIT(out, "{\"id\":");
        rc = rc ? rc : sy_mock_json_str(out, id);
        rc = rc ? rc
                : SY_MOCK_LIT(out, ",\"object\":\"model\",\"created\":1715367049,"
                                   "\"owned_by\":");
        rc = rc ? rc : sy_buf_append_json_string(out, name, strlen(name));
        return rc ? rc : sy_buf_append(out, "}", 1);
    }
    rc = SY_MOCK_LIT(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < SY_ARRAY_LEN(model_ids) && rc == 0; i++) {
        rc = sy_buf_appendf(out,
                            "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":1715367049,"
                            "\"owned_by\":",
                            i ? "," : "", model_ids[i]);
        rc = rc ? rc : sy_buf_append_json_string(out, name, strlen(name));
        rc = rc ? rc : sy_buf_append(out, "}", 1);
    }
    return rc ? rc : SY_MOCK_LIT(out, "]}");
}

int sy_mock_openai_stream_error(sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "data: ");
    rc = rc ? rc : sy_mock_openai_error(500, NULL, NULL, NULL, out);
    return rc ? rc : SY_MOCK_LIT(out, "\n\n");
}
