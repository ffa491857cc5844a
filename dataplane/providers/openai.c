/* OpenAI and OpenAI-compatible (vLLM, Ollama, llama.cpp) adapter: the body
 * passes through; the adapter renames the model, always asks for usage (the
 * gateway meters every stream) and hides the usage chunk from clients that
 * did not ask for it. */
#include "dataplane/providers/provider.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "jscan.h"

static const char *const known_types[] = {
    "invalid_request_error",
    "server_error",
    "rate_limit_error",
    "tokens",
    "requests",
    "insufficient_quota",
    "api_error",
    "permission_error",
    "authentication_error",
    NULL,
};
static const char *const known_codes[] = {
    "rate_limit_exceeded",
    "insufficient_quota",
    "context_length_exceeded",
    "invalid_api_key",
    "model_not_found",
    "unsupported_parameter",
    "unsupported_value",
    "invalid_value",
    "server_error",
    "content_filter",
    NULL,
};
static const char *const known_params[] = {
    "messages",
    "model",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "stream",
    "stream_options",
    "seed",
    NULL,
};

/* --- request ------------------------------------------------------------------ */

/* Adds a shared reference to val (which may be JSON null, i.e. NULL). */
static int add_ref(json_object *o, const char *key, json_object *val)
{
    if (json_object_object_add(o, key, json_object_get(val)) != 0) {
        json_object_put(val);
        return SY_ENOMEM;
    }
    return 0;
}

static int build_request(const sy_provider_target_t *t, json_object *req,
                         sy_provider_request_t *out, sy_provider_error_t *e)
{
    int rc = sy_provider__check_request(t, req, 128, "OpenAI", e);
    if (rc < 0)
        return rc;
    sy_provider_request_t r;
    sy_provider_request_init(&r);
    r.stream = sy_provider__true(req, "stream");
    json_object *so = json_object_object_get(req, "stream_options");
    r.include_usage = r.stream && sy_provider__true(so, "include_usage");

    /* A shallow copy: members are shared by reference, the request is untouched. */
    json_object *body = json_object_new_object();
    if (body == NULL)
        return SY_ENOMEM;
    json_object_object_foreach(req, key, val)
    {
        if (strcmp(key, "model") == 0 || strcmp(key, "stream_options") == 0)
            continue;
        if ((rc = add_ref(body, key, val)) < 0)
            goto fail;
    }
    if ((rc = sy_provider__add(
             body, "model",
             json_object_new_string_len(t->upstream_model.ptr ? t->upstream_model.ptr : "",
                                        (int)t->upstream_model.len))) < 0)
        goto fail;
    if (r.stream) {
        json_object *nso = json_object_new_object();
        if ((rc = sy_provider__add(body, "stream_options", nso)) < 0)
            goto fail;
        if (so != NULL && json_object_is_type(so, json_type_object)) {
            json_object_object_foreach(so, k2, v2)
            {
                if (strcmp(k2, "include_usage") != 0 && (rc = add_ref(nso, k2, v2)) < 0)
                    goto fail;
            }
        }
        if ((rc = sy_provider__add(nso, "include_usage", json_object_new_boolean(1))) < 0)
            goto fail;
    }
    if ((rc = sy_provider__append_json(&r.body, body)) < 0 ||
        (rc = sy_buf_append_str(&r.path, "/chat/completions")) < 0)
        goto fail;
    if (t->api_key.len > 0) {
        sy_buf_t auth;
        sy_buf_init(&auth);
        if ((rc = sy_buf_append_str(&auth, "Bearer ")) == 0 &&
            (rc = sy_buf_append_view(&auth, t->api_key)) == 0)
            rc = sy_provider__header(&r, "Authorization", (sy_str_t){auth.data, auth.len});
        sy_buf_free(&auth);
        if (rc < 0)
            goto fail;
    }
    json_object_put(body);
    *out = r;
    return 0;
fail:
    json_object_put(body);
    sy_provider_request_free(&r);
    return rc;
}

/* --- usage and responses -------------------------------------------------------- */

static int extract_usage(json_object *resp, sy_provider_usage_t *usage)
{
    json_object *u = json_object_object_get(resp, "usage");
    if (u == NULL || !json_object_is_type(u, json_type_object))
        return SY_ENOENT;
    sy_provider_usage_t r = {0};
    json_object *pd = json_object_object_get(u, "prompt_tokens_details");
    json_object *cd = json_object_object_get(u, "completion_tokens_details");
    sy_provider__u64(u, "prompt_tokens", &r.prompt_tokens);
    sy_provider__u64(u, "completion_tokens", &r.completion_tokens);
    sy_provider__u64(u, "total_tokens", &r.total_tokens);
    sy_provider__u64(pd, "cached_tokens", &r.cached_tokens);
    r.has_cache_write = sy_provider__u64(pd, "cache_write_tokens", &r.cache_write_tokens);
    sy_provider__u64(cd, "reasoning_tokens", &r.reasoning_tokens);
    if (r.total_tokens == 0)
        r.total_tokens = r.prompt_tokens + r.completion_tokens;
    r.present = true;
    *usage = r;
    return 0;
}

static int parse_response(const sy_provider_resp_opts_t *o, sy_json_parser_t *p, const char *body,
                          size_t len, sy_buf_t *out, sy_provider_usage_t *usage,
                          sy_provider_error_t *e)
{
    json_object *r = NULL;
    int rc = sy_provider__parse_upstream(p, body, len, "OpenAI-compatible", &r, e);
    if (rc < 0)
        return rc;
    json_object *choices = json_object_object_get(r, "choices");
    if (choices == NULL || !json_object_is_type(choices, json_type_array)) {
        json_object_put(r);
        return sy_provider__invalid_response(e, "OpenAI-compatible", "no choices");
    }
    sy_provider_usage_t u = {0};
    extract_usage(r, &u);
    if (o->public_model.len > 0 &&
        (rc = sy_provider__add(
             r, "model",
             json_object_new_string_len(o->public_model.ptr, (int)o->public_model.len))) < 0)
        goto out;
    if ((rc = sy_provider__append_json(out, r)) < 0)
        goto out;
    *usage = u;
out:
    json_object_put(r);
    return rc;
}

/* --- errors --------------------------------------------------------------------- */

static void error_from_obj(int status, json_object *err, sy_provider_error_t *e)
{
    size_t ml = 0;
    const char *msg = sy_provider__str(err, "message", &ml);
    sy_provider__error_from_status(e, status, msg, ml);
    /* Keep OpenAI's own classification where it is one we know. */
    e->type = sy_provider__intern(sy_provider__str(err, "type", NULL), known_types, e->type);
    e->code = sy_provider__intern(sy_provider__str(err, "code", NULL), known_codes, e->code);
    e->param = sy_provider__intern(sy_provider__str(err, "param", NULL), known_params, NULL);
    if (status == 429 && e->code != NULL && strcmp(e->code, "insufficient_quota") == 0)
        e->retryable = true; /* another provider account may still have quota */
}

static void map_error(int status, const char *body, size_t len, sy_provider_error_t *e)
{
    json_object *r = NULL;
    if (body != NULL && len > 0 && sy_json_parse_once(body, len, &r, NULL) == 0)
        error_from_obj(status, json_object_object_get(r, "error"), e);
    else
        sy_provider__error_from_status(e, status, NULL, 0);
    json_object_put(r);
}

/* --- streaming ------------------------------------------------------------------ */

static const char *const finish_reasons[] = {"stop",           "length",        "tool_calls",
                                             "content_filter", "function_call", NULL};

/* The usual chunk (choices with deltas, "usage" absent or null, no error) is
 * forwarded from a scan of its bytes: the model value is replaced and a
 * "usage":null member dropped by splicing, without building a tree.
 * Returns 1 when the chunk needs the full parser. */
static int fast_chunk(sy_provider_stream_t *s, sy_str_t data, sy_buf_t *out)
{
    sy_str_t doc, key, val, model = SY_STR_NULL, usage = SY_STR_NULL, choices = SY_STR_NULL;
    size_t usage_from = 0, usage_to = 0;
    sy_jscan_t it, ci, fi;
    int r, rc;
    if (!sy_jscan_begin_doc(&it, data.ptr, data.len))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "model")) {
            model = val;
        } else if (sy_jscan_key_is(key, "usage")) {
            usage = val;
            usage_from = it.prev_end; /* from the end of the previous member: its ',' too */
            usage_to = it.last_end;
            if (it.prev_end == 1)
                return 1; /* usage as the first member: let the full path cut it */
        } else if (sy_jscan_key_is(key, "choices")) {
            choices = val;
        } else if (sy_jscan_key_is(key, "error")) {
            return 1;
        }
    }
    bool usage_null = usage.len == 4 && memcmp(usage.ptr, "null", 4) == 0;
    if (r < 0 || !sy_jscan_end_doc(&it, &doc) || model.len < 2 || model.ptr[0] != '"' ||
        (usage.len > 0 && !usage_null))
        return 1;
    if (!sy_jscan_begin(&ci, choices, false))
        return 1;
    size_t nc = 0;
    while ((r = sy_jscan_next(&ci, &key, &val)) == 1) {
        nc++;
        if (!sy_jscan_begin(&fi, val, true))
            return 1;
        while ((r = sy_jscan_next(&fi, &key, &val)) == 1) {
            if (!sy_jscan_key_is(key, "finish_reason") ||
                (val.len == 4 && memcmp(val.ptr, "null", 4) == 0))
                continue;
            if (val.ptr[0] != '"')
                return 1;
            const char *fr = "stop";
            for (size_t k = 0; finish_reasons[k] != NULL; k++)
                if (sy_jscan_str_is(val, finish_reasons[k]))
                    fr = finish_reasons[k];
            s->finish_reason = fr;
            s->finished = true;
        }
        if (r < 0)
            return 1;
    }
    if (r < 0 || nc == 0)
        return 1;
    s->started = true;
    bool rename =
        s->public_json.len > 0 &&
        (model.len != s->public_json.len || memcmp(model.ptr, s->public_json.data, model.len) != 0);
    bool strip = !s->include_usage && usage.len > 0;
    size_t m_from = (size_t)(model.ptr - doc.ptr), m_to = m_from + model.len;
    if ((rc = sy_buf_append(out, "data: ", 6)) < 0)
        return rc;
    /* Splice: at most one replacement (model) and one cut (usage), in order. */
    size_t at = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool model_first = !strip || m_from < usage_from;
        bool do_model = rename && (pass == 0 ? model_first : !model_first);
        bool do_usage = strip && (pass == 0 ? !model_first : model_first);
        if (do_model) {
            if ((rc = sy_buf_append(out, doc.ptr + at, m_from - at)) < 0 ||
                (rc = sy_buf_append(out, s->public_json.data, s->public_json.len)) < 0)
                return rc;
            at = m_to;
        } else if (do_usage) {
            if ((rc = sy_buf_append(out, doc.ptr + at, usage_from - at)) < 0)
                return rc;
            at = usage_to;
        }
    }
    if ((rc = sy_buf_append(out, doc.ptr + at, doc.len - at)) < 0)
        return rc;
    return sy_buf_append(out, "\n\n", 2);
}

static int stream_event(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out)
{
    int rc;
    if (ev->data.len >= 6 && memcmp(ev->data.ptr, "[DONE]", 6) == 0) {
        s->done = true;
        return sy_buf_append_str(out, "data: [DONE]\n\n");
    }
    if ((rc = fast_chunk(s, ev->data, out)) != 1)
        return rc;
    json_object *o = NULL;
    if ((rc = sy_provider__parse_event(s, ev, out, &o)) < 0)
        return rc == SY_EINVAL ? 0 : rc;
    json_object *err = json_object_object_get(o, "error");
    if (err != NULL) {
        error_from_obj(500, err, &s->error);
        s->error.status = 502;
        rc = sy_provider_stream_fail(s, &s->error, out);
        json_object_put(o);
        return rc;
    }
    json_object *choices = json_object_object_get(o, "choices");
    json_object *u = NULL;
    bool has_usage_key = json_object_object_get_ex(o, "usage", &u); /* also "usage":null */
    if ((choices == NULL || !json_object_is_type(choices, json_type_array)) &&
        (u == NULL || !json_object_is_type(u, json_type_object))) {
        json_object_put(o); /* not a chunk (a server's extension): nothing for the client */
        return 0;
    }
    s->started = true;
    size_t nc = choices != NULL && json_object_is_type(choices, json_type_array)
                    ? json_object_array_length(choices)
                    : 0;
    for (size_t i = 0; i < nc; i++) {
        json_object *c = json_object_array_get_idx(choices, i);
        const char *fr = sy_provider__str(c, "finish_reason", NULL);
        if (fr != NULL) {
            s->finish_reason = sy_provider__intern(fr, finish_reasons, "stop");
            s->finished = true;
        }
        json_object *tcs = json_object_object_get(json_object_object_get(c, "delta"), "tool_calls");
        size_t nt = tcs != NULL && json_object_is_type(tcs, json_type_array)
                        ? json_object_array_length(tcs)
                        : 0;
        for (size_t j = 0; j < nt; j++) {
            uint64_t ti;
            if (sy_provider__u64(json_object_array_get_idx(tcs, j), "index", &ti) &&
                (int64_t)ti > s->tool_count && ti < SY_PROVIDER_MAX_TOOLS)
                s->tool_count = (int)ti;
        }
    }
    if (u != NULL && json_object_is_type(u, json_type_object))
        extract_usage(o, &s->usage);
    if (!s->include_usage && nc == 0 && u != NULL && json_object_is_type(u, json_type_object)) {
        json_object_put(o); /* the usage chunk the client did not ask for */
        return 0;
    }
    size_t ml = 0;
    const char *model = sy_provider__str(o, "model", &ml);
    bool rename = s->public_model.len > 0 && (model == NULL || ml != s->public_model.len ||
                                              memcmp(model, s->public_model.data, ml) != 0);
    bool strip = !s->include_usage && has_usage_key;
    bool no_choices = choices == NULL || !json_object_is_type(choices, json_type_array);
    if ((rc = sy_buf_append(out, "data: ", 6)) < 0)
        goto out;
    if (!rename && !strip && !no_choices) {
        rc = sy_buf_append(out, ev->data.ptr, ev->data.len); /* untouched: forward the bytes */
    } else {
        if (strip)
            json_object_object_del(o, "usage");
        /* A usage chunk must carry "choices":[] for clients. */
        if (no_choices && (rc = sy_provider__add(o, "choices", json_object_new_array())) < 0)
            goto out;
        if (rename &&
            (rc = sy_provider__add(
                 o, "model",
                 json_object_new_string_len(s->public_model.data, (int)s->public_model.len))) < 0)
            goto out;
        rc = sy_provider__append_json(out, o);
    }
    if (rc == 0)
        rc = sy_buf_append(out, "\n\n", 2);
out:
    json_object_put(o);
    return rc;
}

static int stream_end(sy_provider_stream_t *s, sy_buf_t *out)
{
    if (s->done)
        return 0;
    if (s->finished) {
        /* Some self-hosted servers close without [DONE]; the answer is complete. */
        s->done = true;
        return sy_buf_append_str(out, "data: [DONE]\n\n");
    }
    return sy_provider__stream_truncated(s, out,
                                         "the upstream stream ended before a finish_reason");
}

const sy_provider_ops_t sy_provider_openai = {
    .name = "openai",
    .build_request = build_request,
    .parse_response = parse_response,
    .stream_begin = NULL,
    .stream_event = stream_event,
    .stream_end = stream_end,
    .map_error = map_error,
    .extract_usage = extract_usage,
};
