/* Shared parts of the provider adapters: the stream driver, chunk framing,
 * error and usage rendering, small JSON helpers. */
#include "dataplane/providers/provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void sy_provider_request_init(sy_provider_request_t *r)
{
    memset(r, 0, sizeof(*r));
    sy_buf_init(&r->path);
    sy_buf_init(&r->body);
}

void sy_provider_request_free(sy_provider_request_t *r)
{
    if (r == NULL)
        return;
    sy_buf_free(&r->path);
    sy_buf_free(&r->body);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i]);
        r->headers[i] = NULL;
    }
    r->n_headers = 0;
}

const sy_provider_ops_t *sy_provider_for(sy_provider_family_t family)
{
    switch (family) {
    case SY_PROVIDER_OPENAI:
    case SY_PROVIDER_OPENAI_COMPATIBLE:
        return &sy_provider_openai;
    case SY_PROVIDER_ANTHROPIC:
        return &sy_provider_anthropic;
    case SY_PROVIDER_GEMINI:
        return &sy_provider_gemini;
    }
    return NULL;
}

/* --- errors ----------------------------------------------------------------- */

const char *sy_provider_cause_name(sy_provider_cause_t c)
{
    switch (c) {
    case SY_CAUSE_CALLER:
        return "caller";
    case SY_CAUSE_POLICY:
        return "policy";
    case SY_CAUSE_PROVIDER:
        return "provider";
    case SY_CAUSE_GATEWAY:
        return "gateway";
    }
    return "gateway";
}

static void verror_set(sy_provider_error_t *e, int status, const char *type, const char *code,
                       const char *param, sy_provider_cause_t cause, const char *fmt, va_list ap)
{
    e->status = status;
    e->type = type;
    e->code = code;
    e->param = param;
    e->cause = cause;
    e->retryable = false;
    e->retry_after_s = 0;
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

void sy_provider_error_set(sy_provider_error_t *e, int status, const char *type, const char *code,
                           const char *param, sy_provider_cause_t cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_set(e, status, type, code, param, cause, fmt, ap);
    va_end(ap);
}

int sy_provider__bad(sy_provider_error_t *e, const char *param, const char *code, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_set(e, 400, "invalid_request_error", code, param, SY_CAUSE_CALLER, fmt, ap);
    va_end(ap);
    return SY_EINVAL;
}

static int append_nullable(sy_buf_t *b, const char *s)
{
    if (s == NULL)
        return sy_buf_append(b, "null", 4);
    return sy_buf_append_json_string(b, s, strlen(s));
}

int sy_provider_error_write(const sy_provider_error_t *e, sy_buf_t *out)
{
    int rc;
    if ((rc = sy_buf_append_str(out, "{\"error\":{\"message\":")) < 0 ||
        (rc = sy_buf_append_json_string(out, e->message, strnlen(e->message, sizeof(e->message)))) <
            0 ||
        (rc = sy_buf_append_str(out, ",\"type\":")) < 0 ||
        (rc = append_nullable(out, e->type ? e->type : "server_error")) < 0 ||
        (rc = sy_buf_append_str(out, ",\"param\":")) < 0 ||
        (rc = append_nullable(out, e->param)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"code\":")) < 0 ||
        (rc = append_nullable(out, e->code)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"cause\":")) < 0 ||
        (rc = append_nullable(out, sy_provider_cause_name(e->cause))) < 0)
        return rc;
    return sy_buf_append(out, "}}", 2);
}

int sy_provider_error_write_sse(const sy_provider_error_t *e, sy_buf_t *out)
{
    int rc;
    if ((rc = sy_buf_append(out, "data: ", 6)) < 0 || (rc = sy_provider_error_write(e, out)) < 0)
        return rc;
    return sy_buf_append(out, "\n\n", 2);
}

void sy_provider__error_from_status(sy_provider_error_t *e, int status, const char *msg,
                                    size_t msg_len)
{
    const char *type = "server_error";
    const char *code = NULL;
    int out_status = status;
    sy_provider_cause_t cause = SY_CAUSE_PROVIDER;
    bool retry = false;

    switch (status) {
    case 400:
    case 413:
    case 422:
        type = "invalid_request_error";
        cause = SY_CAUSE_CALLER;
        if (status == 413)
            code = "request_too_large";
        break;
    case 401:
        type = "invalid_request_error";
        code = "invalid_api_key";
        break;
    case 402:
        out_status = 429;
        type = "insufficient_quota";
        code = "insufficient_quota";
        break;
    case 403:
        type = "permission_error";
        break;
    case 404:
        type = "invalid_request_error";
        code = "model_not_found";
        break;
    case 408:
    case 409:
        type = "server_error";
        retry = true;
        break;
    case 429:
        type = "rate_limit_error";
        code = "rate_limit_exceeded";
        retry = true;
        break;
    case 503:
    case 529:
        out_status = 503;
        code = "overloaded";
        retry = true;
        break;
    case 504:
        code = "timeout";
        retry = true;
        break;
    default:
        if (status >= 500 && status <= 599) {
            retry = true;
        } else if (status >= 400 && status <= 499) {
            type = "invalid_request_error";
        } else {
            /* A 1xx/2xx/3xx here is a protocol failure of the upstream. */
            out_status = 502;
            retry = true;
        }
        break;
    }
    e->status = out_status;
    e->type = type;
    e->code = code;
    e->param = NULL;
    e->cause = cause;
    e->retryable = retry;
    e->retry_after_s = 0;
    if (msg != NULL && msg_len > 0) {
        size_t n = msg_len < sizeof(e->message) - 1 ? msg_len : sizeof(e->message) - 1;
        memcpy(e->message, msg, n);
        e->message[n] = '\0';
    } else {
        snprintf(e->message, sizeof(e->message), "upstream provider answered HTTP %d", status);
    }
}

/* --- usage ------------------------------------------------------------------ */

int sy_provider_usage_write(const sy_provider_usage_t *u, sy_buf_t *out)
{
    uint64_t total = u->total_tokens ? u->total_tokens : u->prompt_tokens + u->completion_tokens;
    int rc = sy_buf_appendf(
        out,
        "{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu,"
        "\"prompt_tokens_details\":{\"cached_tokens\":%llu",
        (unsigned long long)u->prompt_tokens, (unsigned long long)u->completion_tokens,
        (unsigned long long)total, (unsigned long long)u->cached_tokens);
    if (rc < 0)
        return rc;
    if (u->has_cache_write && (rc = sy_buf_appendf(out, ",\"cache_write_tokens\":%llu",
                                                   (unsigned long long)u->cache_write_tokens)) < 0)
        return rc;
    return sy_buf_appendf(out, "},\"completion_tokens_details\":{\"reasoning_tokens\":%llu}}",
                          (unsigned long long)u->reasoning_tokens);
}

/* --- JSON helpers ------------------------------------------------------------ */

const char *sy_provider__str(json_object *o, const char *key, size_t *len)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

bool sy_provider__u64(json_object *o, const char *key, uint64_t *out)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    int64_t x = json_object_get_int64(v);
    if (x < 0)
        return false;
    *out = (uint64_t)x;
    return true;
}

int sy_provider__append_json(sy_buf_t *b, json_object *o)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s == NULL)
        return SY_ENOMEM;
    return sy_buf_append(b, s, len);
}

bool sy_provider__true(json_object *o, const char *key)
{
    json_object *v = o != NULL ? json_object_object_get(o, key) : NULL;
    return v != NULL && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

int sy_provider__add(json_object *o, const char *key, json_object *value)
{
    if (value == NULL)
        return SY_ENOMEM;
    if (json_object_object_add(o, key, value) != 0) {
        json_object_put(value);
        return SY_ENOMEM;
    }
    return 0;
}

/* The body of text_content and blocks_text: the part types they take differ. */
static int text_parts(json_object *content, bool refusals, sy_buf_t *b, bool *ok)
{
    *ok = true;
    if (content == NULL || json_object_is_type(content, json_type_null))
        return 0;
    if (json_object_is_type(content, json_type_string))
        return sy_buf_append(b, json_object_get_string(content),
                             (size_t)json_object_get_string_len(content));
    if (!json_object_is_type(content, json_type_array)) {
        *ok = false;
        return 0;
    }
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i);
        size_t len;
        const char *type = sy_provider__str(part, "type", NULL);
        const char *text = sy_provider__str(part, "text", &len);
        bool refusal = refusals && type != NULL && strcmp(type, "refusal") == 0;
        if (type == NULL || (strcmp(type, "text") != 0 && !refusal)) {
            *ok = false;
            return 0;
        }
        if (text == NULL && refusals)
            text = sy_provider__str(part, "refusal", &len);
        if (text == NULL) {
            *ok = false;
            return 0;
        }
        int rc = sy_buf_append(b, text, len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int sy_provider__text_content(json_object *content, sy_buf_t *b, bool *ok)
{
    return text_parts(content, true, b, ok);
}

int sy_provider__blocks_text(json_object *content, sy_buf_t *b, bool *ok)
{
    return text_parts(content, false, b, ok);
}

int sy_provider__add_turn(json_object *turns, const char *role, const char *member,
                          json_object *items)
{
    size_t n = json_object_array_length(turns);
    if (json_object_array_length(items) == 0) {
        json_object_put(items);
        return 0;
    }
    if (n > 0) {
        json_object *last = json_object_array_get_idx(turns, n - 1);
        if (strcmp(sy_provider__str(last, "role", NULL), role) == 0) {
            json_object *to = json_object_object_get(last, member);
            size_t ni = json_object_array_length(items);
            for (size_t i = 0; i < ni; i++) {
                json_object *it = json_object_get(json_object_array_get_idx(items, i));
                if (json_object_array_add(to, it) != 0) {
                    json_object_put(it);
                    json_object_put(items);
                    return SY_ENOMEM;
                }
            }
            json_object_put(items);
            return 0;
        }
    }
    json_object *t = json_object_new_object();
    if (t == NULL || json_object_array_add(turns, t) != 0) {
        json_object_put(t);
        json_object_put(items);
        return SY_ENOMEM;
    }
    int rc = sy_provider__add(t, "role", json_object_new_string(role));
    if (rc < 0) {
        json_object_put(items);
        return rc;
    }
    return sy_provider__add(t, member, items);
}

int sy_provider__tools(json_object *req, json_object **tools, size_t *n, sy_provider_error_t *e)
{
    json_object *t = json_object_object_get(req, "tools");
    *n = 0;
    if (t == NULL || json_object_is_type(t, json_type_null))
        return 0;
    if (!json_object_is_type(t, json_type_array))
        return sy_provider__bad(e, "tools", NULL, "'tools' must be an array");
    *tools = t;
    *n = json_object_array_length(t);
    return 0;
}

int sy_provider__tool_function(json_object *tool, size_t i, const char *family, json_object **fn,
                               sy_str_t *name, sy_provider_error_t *e)
{
    const char *type = sy_provider__str(tool, "type", NULL);
    json_object *f = json_object_object_get(tool, "function");
    size_t nl;
    const char *nm = sy_provider__str(f, "name", &nl);
    if (type == NULL || strcmp(type, "function") != 0)
        return sy_provider__bad(e, "tools", "unsupported_parameter",
                                "tools[%zu]: only function tools are supported by %s models", i,
                                family);
    if (nm == NULL)
        return sy_provider__bad(e, "tools", NULL, "tools[%zu].function.name is required", i);
    *fn = f;
    *name = (sy_str_t){nm, nl};
    return 0;
}

int sy_provider__invalid_response(sy_provider_error_t *e, const char *upstream, const char *why)
{
    sy_provider_error_set(e, 502, "server_error", "upstream_invalid_response", NULL,
                          SY_CAUSE_PROVIDER, "the %s upstream returned an invalid response: %s",
                          upstream, why);
    e->retryable = true;
    return SY_EINVAL;
}

int sy_provider__parse_upstream(sy_json_parser_t *p, const char *body, size_t len,
                                const char *upstream, json_object **out, sy_provider_error_t *e)
{
    const char *why = NULL;
    int rc = sy_json_parse(p, body, len, out, &why);
    if (rc == SY_ENOMEM)
        return rc;
    if (rc < 0)
        return sy_provider__invalid_response(e, upstream, why);
    return 0;
}

int sy_provider__stream_truncated(sy_provider_stream_t *s, sy_buf_t *out, const char *why)
{
    sy_provider_error_t e;
    sy_provider_error_set(&e, 502, "server_error", "upstream_stream_truncated", NULL,
                          SY_CAUSE_PROVIDER, "%s", why);
    /* Nothing wrong with the request: another target may answer in full. */
    e.retryable = true;
    return sy_provider_stream_fail(s, &e, out);
}

int sy_provider__data_url(const char *url, size_t len, sy_str_t *mime, sy_str_t *data)
{
    static const char b64[] = ";base64,";
    if (len < 5 || strncmp(url, "data:", 5) != 0)
        return SY_EINVAL;
    const char *p = url + 5;
    const char *end = url + len;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL || (size_t)(comma - p) < sizeof(b64) - 2)
        return SY_EINVAL;
    const char *semi = comma - (sizeof(b64) - 2);
    if (memcmp(semi, b64, sizeof(b64) - 2) != 0 || semi == p)
        return SY_EINVAL;
    if (comma + 1 == end)
        return SY_EINVAL;
    mime->ptr = p;
    mime->len = (size_t)(semi - p);
    data->ptr = comma + 1;
    data->len = (size_t)(end - comma - 1);
    return 0;
}

/* --- streams ----------------------------------------------------------------- */

static int on_event(void *ctx, const sy_sse_event_t *ev)
{
    sy_provider_stream_t *s = ctx;
    if (s->done)
        return 0;
    return s->ops->stream_event(s, ev, s->out) < 0 ? SY_ENOMEM : 0;
}

void sy_provider_stream_init(sy_provider_stream_t *s, const sy_provider_ops_t *ops,
                             sy_json_parser_t *parser, const sy_provider_resp_opts_t *o)
{
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->parser = parser;
    sy_sse_framer_init(&s->framer, SY_PROVIDER_MAX_EVENT, on_event, s);
    sy_buf_init(&s->prefix);
    sy_buf_init(&s->scratch);
    sy_buf_init(&s->public_model);
    /* The model name is copied so the stream does not depend on the request. */
    sy_buf_init(&s->public_json);
    if (o->public_model.len > 0) {
        (void)sy_buf_append(&s->public_model, o->public_model.ptr, o->public_model.len);
        (void)sy_buf_append_json_string(&s->public_json, o->public_model.ptr, o->public_model.len);
    }
    s->created = o->created;
    s->include_usage = o->include_usage;
    s->tool_count = -1;
    if (ops->stream_begin != NULL)
        ops->stream_begin(s);
}

void sy_provider_stream_free(sy_provider_stream_t *s)
{
    if (s == NULL)
        return;
    sy_sse_framer_free(&s->framer);
    sy_buf_free(&s->prefix);
    sy_buf_free(&s->scratch);
    sy_buf_free(&s->public_model);
    sy_buf_free(&s->public_json);
    s->out = NULL;
}

int sy_provider_stream_fail(sy_provider_stream_t *s, const sy_provider_error_t *e, sy_buf_t *out)
{
    if (s->done)
        return 0;
    if (&s->error != e)
        s->error = *e;
    s->done = true;
    s->failed = true;
    return sy_provider_error_write_sse(&s->error, out);
}

int sy_provider_stream_feed(sy_provider_stream_t *s, const char *p, size_t n, sy_buf_t *out)
{
    if (s->done)
        return 0;
    s->out = out;
    int rc = sy_sse_framer_feed(&s->framer, p, n);
    s->out = NULL;
    if (rc == SY_E2BIG) {
        sy_provider_error_t e;
        sy_provider_error_set(&e, 502, "server_error", "upstream_event_too_large", NULL,
                              SY_CAUSE_PROVIDER, "upstream stream event exceeds %u bytes",
                              SY_PROVIDER_MAX_EVENT);
        e.retryable = true; /* another target may well answer */
        return sy_provider_stream_fail(s, &e, out);
    }
    return rc < 0 ? rc : 0;
}

int sy_provider_stream_end(sy_provider_stream_t *s, sy_buf_t *out)
{
    if (s->done)
        return 0;
    if (sy_sse_framer_has_partial(&s->framer)) {
        /* A well-formed stream ends on an event boundary; a half event is a cut. */
        sy_provider_error_t e;
        sy_provider_error_set(&e, 502, "server_error", "upstream_stream_truncated", NULL,
                              SY_CAUSE_PROVIDER, "upstream stream ended in the middle of an event");
        e.retryable = true; /* another target may well answer */
        return sy_provider_stream_fail(s, &e, out);
    }
    return s->ops->stream_end(s, out);
}

int sy_provider__stream_set_id(sy_provider_stream_t *s, const char *id, size_t len)
{
    int rc;
    sy_buf_reset(&s->prefix);
    if ((rc = sy_buf_append_str(&s->prefix, "data: {\"id\":")) < 0)
        return rc;
    if (len >= 9 && memcmp(id, "chatcmpl-", 9) == 0) {
        rc = sy_buf_append_json_string(&s->prefix, id, len);
    } else {
        sy_buf_reset(&s->scratch);
        if ((rc = sy_buf_append(&s->scratch, "chatcmpl-", 9)) < 0 ||
            (rc = sy_buf_append(&s->scratch, id, len)) < 0)
            return rc;
        rc = sy_buf_append_json_string(&s->prefix, s->scratch.data, s->scratch.len);
    }
    if (rc < 0)
        return rc;
    if ((rc = sy_buf_appendf(&s->prefix,
                             ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                             (long long)s->created)) < 0 ||
        (rc = sy_buf_append_json_string(&s->prefix, s->public_model.len ? s->public_model.data : "",
                                        s->public_model.len)) < 0)
        return rc;
    return sy_buf_append(&s->prefix, ",\"choices\":", 11);
}

int sy_provider__chunk(sy_provider_stream_t *s, sy_buf_t *out, uint32_t idx, const char *delta,
                       size_t delta_len, const char *finish)
{
    int rc;
    if (s->prefix.len == 0 && (rc = sy_provider__stream_set_id(s, "gw", 2)) < 0)
        return rc;
    if ((rc = sy_buf_append(out, s->prefix.data, s->prefix.len)) < 0 ||
        (rc = sy_buf_appendf(out, "[{\"index\":%u,\"delta\":", idx)) < 0 ||
        (rc = sy_buf_append(out, delta, delta_len)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"logprobs\":null,\"finish_reason\":")) < 0)
        return rc;
    if (finish != NULL)
        rc = sy_buf_appendf(out, "\"%s\"}]", finish);
    else
        rc = sy_buf_append(out, "null}]", 6);
    if (rc < 0)
        return rc;
    if (s->include_usage && (rc = sy_buf_append(out, ",\"usage\":null", 13)) < 0)
        return rc;
    return sy_buf_append(out, "}\n\n", 3);
}

int sy_provider__stream_close(sy_provider_stream_t *s, sy_buf_t *out)
{
    int rc;
    if (s->include_usage) {
        if (s->prefix.len == 0 && (rc = sy_provider__stream_set_id(s, "gw", 2)) < 0)
            return rc;
        if ((rc = sy_buf_append(out, s->prefix.data, s->prefix.len)) < 0 ||
            (rc = sy_buf_append(out, "[],\"usage\":", 11)) < 0 ||
            (rc = sy_provider_usage_write(&s->usage, out)) < 0 ||
            (rc = sy_buf_append(out, "}\n\n", 3)) < 0)
            return rc;
    }
    s->done = true;
    return sy_buf_append_str(out, "data: [DONE]\n\n");
}

int sy_provider__parse_event(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out,
                             json_object **obj)
{
    const char *why = NULL;
    json_object *o = NULL;
    int rc = sy_json_parse(s->parser, ev->data.ptr, ev->data.len, &o, &why);
    if (rc == SY_ENOMEM)
        return rc;
    if (rc < 0 || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        sy_provider_error_t e;
        sy_provider_error_set(&e, 502, "server_error", "upstream_invalid_event", NULL,
                              SY_CAUSE_PROVIDER, "upstream sent an invalid stream event: %s",
                              why ? why : "not a JSON object");
        e.retryable = true; /* another target may well answer */
        rc = sy_provider_stream_fail(s, &e, out);
        return rc < 0 ? rc : SY_EINVAL;
    }
    *obj = o;
    return 0;
}

/* --- request checks ------------------------------------------------------------ */

bool sy_provider__num(json_object *o, const char *key, double *out, bool *bad)
{
    json_object *v;
    *bad = false;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return false;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        *bad = true;
        return false;
    }
    *out = json_object_get_double(v);
    return true;
}

int sy_provider__header(sy_provider_request_t *r, const char *name, sy_str_t value)
{
    if (r->n_headers >= SY_PROVIDER_MAX_HEADERS)
        return SY_E2BIG;
    size_t nl = strlen(name);
    char *h = malloc(nl + 2 + value.len + 1);
    if (h == NULL)
        return SY_ENOMEM;
    memcpy(h, name, nl);
    memcpy(h + nl, ": ", 2);
    if (value.len > 0)
        memcpy(h + nl + 2, value.ptr, value.len);
    h[nl + 2 + value.len] = '\0';
    r->headers[r->n_headers++] = h;
    return 0;
}

static bool has_images(json_object *msgs)
{
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n; i++) {
        json_object *content =
            json_object_object_get(json_object_array_get_idx(msgs, i), "content");
        if (content == NULL || !json_object_is_type(content, json_type_array))
            continue;
        size_t np = json_object_array_length(content);
        for (size_t j = 0; j < np; j++) {
            const char *type =
                sy_provider__str(json_object_array_get_idx(content, j), "type", NULL);
            if (type != NULL && strcmp(type, "image_url") == 0)
                return true;
        }
    }
    return false;
}

int sy_provider__check_request(const sy_provider_target_t *t, json_object *req, int64_t max_n,
                               const char *family, sy_provider_error_t *e)
{
    json_object *msgs = NULL, *v = NULL;
    if (req == NULL || !json_object_is_type(req, json_type_object))
        return sy_provider__bad(e, NULL, NULL, "the request body must be a JSON object");
    if (!json_object_object_get_ex(req, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0)
        return sy_provider__bad(e, "messages", NULL, "'messages' must be a non-empty array");
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (sy_provider__str(m, "role", NULL) == NULL)
            return sy_provider__bad(e, "messages", NULL,
                                    "messages[%zu] must be an object with a string 'role'", i);
    }
    if (json_object_object_get_ex(req, "n", &v) && !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            return sy_provider__bad(e, "n", NULL, "'n' must be a positive integer");
        if (json_object_get_int64(v) > max_n)
            return sy_provider__bad(e, "n", "unsupported_parameter",
                                    "n = %lld is not supported by %s models (at most %lld)",
                                    (long long)json_object_get_int64(v), family, (long long)max_n);
    }
    if (t->caps == 0)
        return 0;
    json_object *tools = NULL;
    if ((t->caps & SY_PROVIDER_CAP_TOOLS) == 0 && json_object_object_get_ex(req, "tools", &tools) &&
        json_object_is_type(tools, json_type_array) && json_object_array_length(tools) > 0)
        return sy_provider__bad(e, "tools", "unsupported_parameter",
                                "this model does not support tools");
    if ((t->caps & SY_PROVIDER_CAP_VISION) == 0 && has_images(msgs))
        return sy_provider__bad(e, "messages", "unsupported_parameter",
                                "this model does not accept image input");
    json_object *rf = json_object_object_get(req, "response_format");
    const char *rft = sy_provider__str(rf, "type", NULL);
    if ((t->caps & SY_PROVIDER_CAP_JSON_SCHEMA) == 0 && rft != NULL &&
        strcmp(rft, "json_schema") == 0)
        return sy_provider__bad(e, "response_format", "unsupported_parameter",
                                "this model does not support response_format json_schema");
    return 0;
}

const char *sy_provider__intern(const char *s, const char *const *list, const char *dflt)
{
    for (size_t i = 0; s != NULL && list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return list[i];
    return dflt;
}

uint32_t sy_provider_caps_from(const char *const *names, size_t n)
{
    uint32_t caps = 0;
    bool features = false;
    for (size_t i = 0; i < n; i++) {
        const char *c = names[i];
        if (c == NULL)
            continue;
        if (strcmp(c, "chat") == 0) {
            caps |= SY_PROVIDER_CAP_CHAT;
        } else if (strcmp(c, "tools") == 0) {
            caps |= SY_PROVIDER_CAP_TOOLS;
            features = true;
        } else if (strcmp(c, "vision") == 0) {
            caps |= SY_PROVIDER_CAP_VISION;
            features = true;
        } else if (strcmp(c, "json_schema") == 0) {
            caps |= SY_PROVIDER_CAP_JSON_SCHEMA;
            features = true;
        }
    }
    return features ? caps | SY_PROVIDER_CAP_CHAT : 0;
}
