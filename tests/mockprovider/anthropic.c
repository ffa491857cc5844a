/* The Anthropic Messages wire format (REFERENCE.md §3): plain and streamed
 * messages, tool_use blocks, and the error envelope. */
#include <string.h>
#include "json.h"
#include "mock.h"

int sy_mock_anthropic_error(int status, const char *message, sy_buf_t *out)
{
    const char *type = "invalid_request_error";
    const char *def = "Invalid request.";
    switch (status) {
    case 401:
        type = "authentication_error";
        def = "invalid x-api-key";
        break;
    case 402:
        type = "billing_error";
        def = "Your credit balance is too low.";
        break;
    case 403:
        type = "permission_error";
        def = "Your API key does not have permission to use the specified resource.";
        break;
    case 404:
        type = "not_found_error";
        def = "Not found.";
        break;
    case 413:
        type = "request_too_large";
        def = "Request exceeds the maximum allowed number of bytes.";
        break;
    case 429:
        type = "rate_limit_error";
        def = "Number of requests has exceeded your per-minute rate limit.";
        break;
    case 504:
        type = "timeout_error";
        def = "Request timed out.";
        break;
    case 529:
        type = "overloaded_error";
        def = "Overloaded";
        break;
    default:
        if (status >= 500) {
            type = "api_error";
            def = "Internal server error";
        }
    }
    const char *msg = message ? message : def;
    int rc =
        sy_buf_appendf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", type);
    rc = rc ? rc : sy_buf_append_json_string(out, msg, strlen(msg));
    return rc ? rc : SY_MOCK_LIT(out, "},\"request_id\":\"req_mock\"}");
}

int sy_mock_anthropic_validate(const sy_mock_req_t *r, const char **why)
{
    json_object *b = r->body;
    if (b == NULL || !json_object_is_type(b, json_type_object)) {
        *why = "The request body is not valid JSON.";
        return SY_EINVAL;
    }
    json_object *model = sy_json_get(b, "model");
    if (model == NULL || !json_object_is_type(model, json_type_string) ||
        json_object_get_string_len(model) == 0) {
        *why = "model: Field required";
        return SY_EINVAL;
    }
    json_object *mt = sy_json_get(b, "max_tokens");
    if (mt == NULL) {
        *why = "max_tokens: Field required";
        return SY_EINVAL;
    }
    if (!json_object_is_type(mt, json_type_int) || json_object_get_int64(mt) < 0) {
        *why = "max_tokens: Input should be a valid integer";
        return SY_EINVAL;
    }
    json_object *msgs = sy_json_get(b, "messages");
    if (msgs == NULL || !json_object_is_type(msgs, json_type_array)) {
        *why = "messages: Field required";
        return SY_EINVAL;
    }
    size_t n = json_object_array_length(msgs);
    if (n == 0) {
        *why = "messages: at least one message is required";
        return SY_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = sy_json_get_string(m, "role", NULL);
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            *why = "messages: Input tag found using 'role' does not match any of the expected "
                   "tags: 'user', 'assistant'";
            return SY_EINVAL;
        }
        if (sy_json_get(m, "content") == NULL) {
            *why = "messages: content: Field required";
            return SY_EINVAL;
        }
    }
    json_object *stream = sy_json_get(b, "stream");
    if (stream != NULL && !json_object_is_type(stream, json_type_boolean)) {
        *why = "stream: Input should be a valid boolean";
        return SY_EINVAL;
    }
    return 0;
}

/* usage: input_tokens excludes cache reads (REFERENCE.md §3.5). */
static int usage_json(const sy_mock_req_t *r, int64_t output, bool full, sy_buf_t *out)
{
    int rc = sy_buf_appendf(out,
                            "{\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
                            "\"cache_read_input_tokens\":%lld,",
                            (long long)(r->prompt_tokens - r->cached_tokens),
                            (long long)r->cached_tokens);
    if (rc == 0 && full)
        rc = SY_MOCK_LIT(out, "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
                              "\"ephemeral_1h_input_tokens\":0},");
    rc = rc ? rc : sy_buf_appendf(out, "\"output_tokens\":%lld", (long long)output);
    if (rc == 0 && full)
        rc = SY_MOCK_LIT(out, ",\"service_tier\":\"standard\"");
    return rc ? rc : sy_buf_append(out, "}", 1);
}

static int message_head(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = sy_buf_appendf(out,
                            "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\","
                            "\"model\":",
                            r->id);
    return rc ? rc : sy_mock_model_json(r, out);
}

static int tool_block_head(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = sy_buf_appendf(
        out, "{\"type\":\"tool_use\",\"id\":\"toolu_%s\",\"name\":", r->id + 4 /* skip "msg_" */);
    return rc ? rc : sy_mock_json_str(out, r->ans.tool_name);
}

int sy_mock_anthropic_message(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = message_head(r, out);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"content\":[");
    if (rc)
        return rc;
    if (r->ans.tool) {
        rc = tool_block_head(r, out);
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"input\":");
        rc = rc ? rc : sy_buf_append(out, r->ans.args.data, r->ans.args.len);
        rc = rc ? rc : SY_MOCK_LIT(out, "}],\"stop_reason\":\"tool_use\"");
    } else {
        rc = SY_MOCK_LIT(out, "{\"type\":\"text\",\"text\":");
        rc = rc ? rc : sy_mock_answer_text_json(&r->ans, out);
        rc = rc ? rc : SY_MOCK_LIT(out, "}],\"stop_reason\":\"end_turn\"");
    }
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"stop_sequence\":null,\"usage\":");
    rc = rc ? rc : usage_json(r, sy_mock_answer_tokens(&r->ans), true, out);
    return rc ? rc : sy_buf_append(out, "}", 1);
}

/* Deltas in the stream: one per word, or "" then one per argument fragment. */
static size_t ndeltas(const sy_mock_req_t *r)
{
    return r->ans.tool ? 1 + sy_mock_answer_fragments(&r->ans) : (size_t)r->ans.nwords;
}

size_t sy_mock_anthropic_stream_count(const sy_mock_req_t *r)
{
    /* message_start, content_block_start, ping, deltas, content_block_stop,
     * message_delta, message_stop */
    return ndeltas(r) + 6;
}

static int event(sy_buf_t *out, const char *type)
{
    return sy_buf_appendf(out, "event: %s\ndata: {\"type\":\"%s\"", type, type);
}

int sy_mock_anthropic_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out)
{
    size_t nd = ndeltas(r);
    int rc;
    if (i == 0) {
        rc = event(out, "message_start");
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"message\":");
        rc = rc ? rc : message_head(r, out);
        rc = rc ? rc
                : SY_MOCK_LIT(out, ",\"content\":[],\"stop_reason\":null,"
                                   "\"stop_sequence\":null,\"usage\":");
        rc = rc ? rc : usage_json(r, 1, true, out);
        rc = rc ? rc : sy_buf_append(out, "}", 1);
    } else if (i == 1) {
        rc = event(out, "content_block_start");
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"index\":0,\"content_block\":");
        if (rc == 0 && r->ans.tool) {
            rc = tool_block_head(r, out);
            rc = rc ? rc : SY_MOCK_LIT(out, ",\"input\":{}}");
        } else if (rc == 0) {
            rc = SY_MOCK_LIT(out, "{\"type\":\"text\",\"text\":\"\"}");
        }
    } else if (i == 2) {
        rc = event(out, "ping");
    } else if (i < 3 + nd) {
        size_t d = i - 3;
        rc = event(out, "content_block_delta");
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"index\":0,\"delta\":");
        if (rc == 0 && r->ans.tool) {
            rc = SY_MOCK_LIT(out, "{\"type\":\"input_json_delta\",\"partial_json\":");
            rc = rc ? rc
                    : sy_mock_json_str(out, d == 0 ? SY_STR("")
                                                   : sy_mock_answer_fragment(&r->ans, d - 1));
        } else if (rc == 0) {
            rc = SY_MOCK_LIT(out, "{\"type\":\"text_delta\",\"text\":\"");
            if (rc == 0 && d > 0)
                rc = sy_buf_append(out, " ", 1);
            rc = rc ? rc : sy_mock_json_escape(out, sy_mock_answer_word(&r->ans, (int64_t)d));
            rc = rc ? rc : sy_buf_append(out, "\"", 1);
        }
        rc = rc ? rc : sy_buf_append(out, "}", 1);
    } else if (i == 3 + nd) {
        rc = event(out, "content_block_stop");
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"index\":0");
    } else if (i == 4 + nd) {
        rc = event(out, "message_delta");
        rc = rc ? rc
                : sy_buf_appendf(out,
                                 ",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":"
                                 "null},\"usage\":",
                                 r->ans.tool ? "tool_use" : "end_turn");
        rc = rc ? rc : usage_json(r, sy_mock_answer_tokens(&r->ans), false, out);
    } else {
        rc = event(out, "message_stop");
    }
    return rc ? rc : SY_MOCK_LIT(out, "}\n\n");
}

int sy_mock_anthropic_stream_error(sy_buf_t *out)
{
    return SY_MOCK_LIT(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                            "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
}
