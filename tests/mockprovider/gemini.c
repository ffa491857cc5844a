/* The Gemini generateContent wire format (REFERENCE.md §4): plain and
 * streamed (alt=sse, CRLF framing) responses, functionCall parts, and the
 * google.rpc error envelope. */
#include <string.h>
#include "json.h"
#include "mock.h"

static const char *rpc_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 402:
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 503:
    case 529:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

int sy_mock_gemini_error(int status, const char *message, const char *reason, int64_t retry_after,
                         sy_buf_t *out)
{
    const char *def = "Request contains an invalid argument.";
    if (status == 429)
        def = "You exceeded your current quota, please check your plan and billing details.";
    else if (status == 503 || status == 529)
        def = "The model is overloaded. Please try again later.";
    else if (status >= 500)
        def = "An internal error has occurred. Please retry or report in "
              "https://developers.generativeai.google/guide/troubleshooting";
    else if (status == 403)
        def = "The caller does not have permission";
    else if (status == 404)
        def = "Requested entity was not found.";
    const char *msg = message ? message : def;
    int rc = sy_buf_appendf(out, "{\"error\":{\"code\":%d,\"message\":", status);
    rc = rc ? rc : sy_buf_append_json_string(out, msg, strlen(msg));
    rc = rc ? rc : sy_buf_appendf(out, ",\"status\":\"%s\"", rpc_status(status));
    if (rc)
        return rc;
    if (reason != NULL) {
        rc = sy_buf_appendf(out,
                            ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                            "\"reason\":\"%s\",\"domain\":\"googleapis.com\",\"metadata\":"
                            "{\"service\":\"generativelanguage.googleapis.com\"}}]",
                            reason);
    } else if (status == 429 || retry_after >= 0) {
        rc = sy_buf_appendf(out,
                            ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                            "\"retryDelay\":\"%llds\"}]",
                            (long long)(retry_after >= 0 ? retry_after : 1));
    }
    return rc ? rc : SY_MOCK_LIT(out, "}}");
}

int sy_mock_gemini_validate(const sy_mock_req_t *r, const char **why)
{
    json_object *b = r->body;
    if (b == NULL || !json_object_is_type(b, json_type_object)) {
        *why = "Invalid JSON payload received. The request body must be a JSON object.";
        return SY_EINVAL;
    }
    json_object *contents = sy_json_get(b, "contents");
    if (contents == NULL || !json_object_is_type(contents, json_type_array) ||
        json_object_array_length(contents) == 0) {
        *why = "* GenerateContentRequest.contents: contents is not specified";
        return SY_EINVAL;
    }
    size_t n = json_object_array_length(contents);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(contents, i);
        json_object *parts = sy_json_get(c, "parts");
        if (!json_object_is_type(c, json_type_object) || parts == NULL ||
            !json_object_is_type(parts, json_type_array) || json_object_array_length(parts) == 0) {
            *why = "* GenerateContentRequest.contents: contents.parts must not be empty.";
            return SY_EINVAL;
        }
    }
    return 0;
}

/* candidatesTokenCount = completion so far; promptTokenCount includes cached. */
static int usage_json(const sy_mock_req_t *r, int64_t completion, sy_buf_t *out)
{
    int rc = sy_buf_appendf(out,
                            ",\"usageMetadata\":{\"promptTokenCount\":%lld,"
                            "\"candidatesTokenCount\":%lld,\"totalTokenCount\":%lld",
                            (long long)r->prompt_tokens, (long long)completion,
                            (long long)(r->prompt_tokens + completion));
    if (rc == 0 && r->cached_tokens > 0)
        rc = sy_buf_appendf(out, ",\"cachedContentTokenCount\":%lld", (long long)r->cached_tokens);
    rc = rc ? rc
            : sy_buf_appendf(out,
                             ",\"promptTokensDetails\":[{\"modality\":\"TEXT\","
                             "\"tokenCount\":%lld}]},\"modelVersion\":",
                             (long long)r->prompt_tokens);
    rc = rc ? rc : sy_mock_model_json(r, out);
    return rc ? rc : sy_buf_appendf(out, ",\"responseId\":\"%s\"}", r->id);
}

static int function_call(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"functionCall\":{\"name\":");
    rc = rc ? rc : sy_mock_json_str(out, r->ans.tool_name);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"args\":");
    rc = rc ? rc : sy_buf_append(out, r->ans.args.data, r->ans.args.len);
    return rc ? rc : SY_MOCK_LIT(out, "}}");
}

int sy_mock_gemini_generate(const sy_mock_req_t *r, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"candidates\":[{\"content\":{\"parts\":[");
    if (rc == 0 && r->ans.tool) {
        rc = function_call(r, out);
    } else if (rc == 0) {
        rc = SY_MOCK_LIT(out, "{\"text\":");
        rc = rc ? rc : sy_mock_answer_text_json(&r->ans, out);
        rc = rc ? rc : sy_buf_append(out, "}", 1);
    }
    rc = rc ? rc
            : SY_MOCK_LIT(out, "],\"role\":\"model\"},\"finishReason\":\"STOP\","
                               "\"index\":0}]");
    return rc ? rc : usage_json(r, sy_mock_answer_tokens(&r->ans), out);
}

/* Text: one event per word, then a final event with an empty text part and
 * finishReason. Tool call: one event with the whole functionCall and
 * finishReason (the Gemini API does not stream arguments). */
size_t sy_mock_gemini_stream_count(const sy_mock_req_t *r)
{
    return r->ans.tool ? 1 : (size_t)r->ans.nwords + 1;
}

int sy_mock_gemini_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out)
{
    size_t n = sy_mock_gemini_stream_count(r);
    bool last = i + 1 == n;
    int rc = SY_MOCK_LIT(out, "data: {\"candidates\":[{\"content\":{\"parts\":[");
    int64_t completion;
    if (rc == 0 && r->ans.tool) {
        rc = function_call(r, out);
        completion = sy_mock_answer_tokens(&r->ans);
    } else if (rc == 0 && last) {
        rc = SY_MOCK_LIT(out, "{\"text\":\"\"}");
        completion = r->ans.nwords;
    } else {
        rc = rc ? rc : SY_MOCK_LIT(out, "{\"text\":\"");
        if (rc == 0 && i > 0)
            rc = sy_buf_append(out, " ", 1);
        rc = rc ? rc : sy_mock_json_escape(out, sy_mock_answer_word(&r->ans, (int64_t)i));
        rc = rc ? rc : SY_MOCK_LIT(out, "\"}");
        completion = (int64_t)i + 1;
    }
    rc = rc ? rc : SY_MOCK_LIT(out, "],\"role\":\"model\"}");
    if (rc == 0 && last)
        rc = SY_MOCK_LIT(out, ",\"finishReason\":\"STOP\"");
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"index\":0}]");
    rc = rc ? rc : usage_json(r, completion, out);
    return rc ? rc : SY_MOCK_LIT(out, "\r\n\r\n");
}

int sy_mock_gemini_stream_error(sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "data: ");
    rc = rc ? rc : sy_mock_gemini_error(503, NULL, NULL, -1, out);
    return rc ? rc : SY_MOCK_LIT(out, "\r\n\r\n");
}

/* One entry of GET /v1beta/models: names are "models/<id>". */
static int model_json(const char *name, sy_str_t id, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"name\":\"models/");
    rc = rc ? rc : sy_mock_json_escape(out, id);
    rc = rc ? rc : SY_MOCK_LIT(out, "\",\"version\":\"001\",\"displayName\":");
    rc = rc ? rc : sy_mock_json_str(out, id);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"description\":\"mock model of ");
    rc = rc ? rc : sy_buf_append_str(out, name);
    return rc ? rc
              : SY_MOCK_LIT(out, "\",\"inputTokenLimit\":1048576,\"outputTokenLimit\":65536,"
                                 "\"supportedGenerationMethods\":[\"generateContent\","
                                 "\"countTokens\"]}");
}

int sy_mock_gemini_models(const char *name, sy_str_t id, sy_buf_t *out)
{
    if (id.len > 0)
        return model_json(name, id, out);
    int rc = SY_MOCK_LIT(out, "{\"models\":[");
    rc = rc ? rc : model_json(name, SY_STR("gemini-2.5-flash"), out);
    rc = rc ? rc : SY_MOCK_LIT(out, ",");
    rc = rc ? rc : model_json(name, SY_STR("gemini-2.5-pro"), out);
    return rc ? rc : SY_MOCK_LIT(out, "]}");
}
