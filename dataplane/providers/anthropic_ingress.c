/* Anthropic-style ingress: Anthropic request -> OpenAI request, and OpenAI
 * responses/chunks -> Anthropic responses/events (REFERENCE.md §3, §5.5). */
#include "dataplane/providers/anthropic_ingress.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "jscan.h"

/* --- request --------------------------------------------------------------------- */

static int add_str(json_object *o, const char *key, const char *s, size_t len)
{
    return sy_provider__add(o, key, json_object_new_string_len(s, (int)len));
}

static json_object *image_part(json_object *blk, size_t mi, sy_provider_error_t *e, int *rc)
{
    json_object *src = json_object_object_get(blk, "source");
    const char *st = sy_provider__str(src, "type", NULL);
    sy_buf_t url;
    sy_buf_init(&url);
    *rc = 0;
    if (st != NULL && strcmp(st, "base64") == 0) {
        size_t ml, dl;
        const char *mt = sy_provider__str(src, "media_type", &ml);
        const char *data = sy_provider__str(src, "data", &dl);
        if (mt == NULL || data == NULL) {
            *rc = sy_provider__bad(e, "messages", NULL,
                                   "messages[%zu]: a base64 image needs media_type and data", mi);
            return NULL;
        }
        if ((*rc = sy_buf_append_str(&url, "data:")) < 0 ||
            (*rc = sy_buf_append(&url, mt, ml)) < 0 ||
            (*rc = sy_buf_append_str(&url, ";base64,")) < 0 ||
            (*rc = sy_buf_append(&url, data, dl)) < 0) {
            sy_buf_free(&url);
            return NULL;
        }
    } else if (st != NULL && strcmp(st, "url") == 0) {
        size_t ul;
        const char *u = sy_provider__str(src, "url", &ul);
        if (u == NULL) {
            *rc =
                sy_provider__bad(e, "messages", NULL, "messages[%zu]: an url image needs url", mi);
            return NULL;
        }
        if ((*rc = sy_buf_append(&url, u, ul)) < 0) {
            sy_buf_free(&url);
            return NULL;
        }
    } else {
        *rc = sy_provider__bad(e, "messages", NULL,
                               "messages[%zu]: image source type must be base64 or url", mi);
        return NULL;
    }
    json_object *part = json_object_new_object(), *iu = json_object_new_object();
    if (part == NULL || iu == NULL || (*rc = add_str(part, "type", "image_url", 9)) < 0 ||
        (*rc = add_str(iu, "url", url.data, url.len)) < 0) {
        json_object_put(part);
        json_object_put(iu);
        sy_buf_free(&url);
        if (*rc == 0)
            *rc = SY_ENOMEM;
        return NULL;
    }
    sy_buf_free(&url);
    if ((*rc = sy_provider__add(part, "image_url", iu)) < 0) {
        json_object_put(part);
        return NULL;
    }
    return part;
}

static int push(json_object *arr, json_object *o)
{
    if (o == NULL)
        return SY_ENOMEM;
    if (json_object_array_add(arr, o) != 0) {
        json_object_put(o);
        return SY_ENOMEM;
    }
    return 0;
}

/* A user turn: tool results become tool messages (first), the rest one user message. */
static int user_turn(json_object *m, size_t mi, json_object *msgs, sy_provider_error_t *e)
{
    json_object *content = json_object_object_get(m, "content");
    int rc;
    if (content != NULL && json_object_is_type(content, json_type_string)) {
        json_object *u = json_object_new_object();
        if ((rc = push(msgs, u)) < 0 || (rc = add_str(u, "role", "user", 4)) < 0)
            return rc;
        return sy_provider__add(u, "content", json_object_get(content));
    }
    if (content == NULL || !json_object_is_type(content, json_type_array))
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu].content must be a string or an array of blocks", mi);
    json_object *parts = json_object_new_array();
    if (parts == NULL)
        return SY_ENOMEM;
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        const char *type = sy_provider__str(blk, "type", NULL);
        if (type != NULL && strcmp(type, "text") == 0) {
            size_t tl;
            const char *t = sy_provider__str(blk, "text", &tl);
            json_object *p = json_object_new_object();
            if (t == NULL) {
                json_object_put(p);
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].content[%zu].text must be a string", mi, i);
                goto fail;
            }
            if ((rc = push(parts, p)) < 0 || (rc = add_str(p, "type", "text", 4)) < 0 ||
                (rc = add_str(p, "text", t, tl)) < 0)
                goto fail;
        } else if (type != NULL && strcmp(type, "image") == 0) {
            json_object *p = image_part(blk, mi, e, &rc);
            if (p == NULL || (rc = push(parts, p)) < 0)
                goto fail;
        } else if (type != NULL && strcmp(type, "tool_result") == 0) {
            size_t il;
            const char *id = sy_provider__str(blk, "tool_use_id", &il);
            sy_buf_t text;
            bool ok;
            if (id == NULL) {
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].content[%zu]: tool_result needs tool_use_id",
                                      mi, i);
                goto fail;
            }
            sy_buf_init(&text);
            rc = sy_provider__blocks_text(json_object_object_get(blk, "content"), &text, &ok);
            if (rc == 0 && !ok)
                rc = sy_provider__bad(e, "messages", "unsupported_parameter",
                                      "messages[%zu].content[%zu]: only text tool results can be "
                                      "translated",
                                      mi, i);
            json_object *tm = rc == 0 ? json_object_new_object() : NULL;
            if (rc == 0 &&
                ((rc = push(msgs, tm)) < 0 || (rc = add_str(tm, "role", "tool", 4)) < 0 ||
                 (rc = add_str(tm, "tool_call_id", id, il)) < 0 ||
                 (rc = add_str(tm, "content", text.len ? text.data : "", text.len)) < 0)) {
            }
            sy_buf_free(&text);
            if (rc < 0)
                goto fail;
        } else {
            rc = sy_provider__bad(e, "messages", "unsupported_parameter",
                                  "messages[%zu].content[%zu]: block type '%s' cannot be "
                                  "translated by this gateway",
                                  mi, i, type ? type : "(none)");
            goto fail;
        }
    }
    if (json_object_array_length(parts) == 0) {
        json_object_put(parts);
        return 0;
    }
    json_object *u = json_object_new_object();
    if ((rc = push(msgs, u)) < 0 || (rc = add_str(u, "role", "user", 4)) < 0)
        goto fail;
    return sy_provider__add(u, "content", parts);
fail:
    json_object_put(parts);
    return rc;
}

static int assistant_turn(json_object *m, size_t mi, json_object *msgs, sy_provider_error_t *e)
{
    json_object *content = json_object_object_get(m, "content");
    json_object *a = json_object_new_object();
    int rc;
    if ((rc = push(msgs, a)) < 0 || (rc = add_str(a, "role", "assistant", 9)) < 0)
        return rc;
    if (content != NULL && json_object_is_type(content, json_type_string))
        return sy_provider__add(a, "content", json_object_get(content));
    if (content == NULL || !json_object_is_type(content, json_type_array))
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu].content must be a string or an array of blocks", mi);
    sy_buf_t text;
    sy_buf_init(&text);
    json_object *calls = NULL;
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        const char *type = sy_provider__str(blk, "type", NULL);
        if (type != NULL && strcmp(type, "text") == 0) {
            size_t tl;
            const char *t = sy_provider__str(blk, "text", &tl);
            if (t != NULL && (rc = sy_buf_append(&text, t, tl)) < 0)
                goto out;
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            size_t il, nl;
            const char *id = sy_provider__str(blk, "id", &il);
            const char *name = sy_provider__str(blk, "name", &nl);
            json_object *input = json_object_object_get(blk, "input");
            if (id == NULL || name == NULL) {
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].content[%zu]: tool_use needs id and name", mi,
                                      i);
                goto out;
            }
            if (calls == NULL && (calls = json_object_new_array()) == NULL) {
                rc = SY_ENOMEM;
                goto out;
            }
            json_object *c = json_object_new_object(), *fn = json_object_new_object();
            if ((rc = push(calls, c)) < 0) {
                json_object_put(fn);
                goto out;
            }
            if ((rc = add_str(c, "id", id, il)) < 0 ||
                (rc = add_str(c, "type", "function", 8)) < 0 ||
                (rc = sy_provider__add(c, "function", fn)) < 0 ||
                (rc = add_str(fn, "name", name, nl)) < 0)
                goto out;
            size_t al = 0;
            const char *args =
                input != NULL
                    ? json_object_to_json_string_length(
                          input, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &al)
                    : "{}";
            if (input == NULL)
                al = 2;
            if ((rc = add_str(fn, "arguments", args, al)) < 0)
                goto out;
        }
        /* thinking / redacted_thinking blocks have no OpenAI slot: dropped. */
    }
    if (text.len > 0)
        rc = add_str(a, "content", text.data, text.len);
    else
        rc = json_object_object_add(a, "content", NULL) == 0 ? 0 : SY_ENOMEM;
    if (rc == 0 && calls != NULL) {
        rc = sy_provider__add(a, "tool_calls", calls);
        calls = NULL;
    }
out:
    json_object_put(calls);
    sy_buf_free(&text);
    return rc;
}

static int convert_tools(json_object *req, json_object *out, sy_provider_error_t *e)
{
    json_object *tools = json_object_object_get(req, "tools");
    int rc;
    if (tools != NULL && json_object_is_type(tools, json_type_array) &&
        json_object_array_length(tools) > 0) {
        json_object *arr = json_object_new_array();
        if ((rc = sy_provider__add(out, "tools", arr)) < 0)
            return rc;
        size_t n = json_object_array_length(tools);
        for (size_t i = 0; i < n; i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            const char *type = sy_provider__str(t, "type", NULL);
            size_t nl, dl;
            const char *name = sy_provider__str(t, "name", &nl);
            const char *desc = sy_provider__str(t, "description", &dl);
            json_object *schema = json_object_object_get(t, "input_schema");
            if (type != NULL && strcmp(type, "custom") != 0)
                return sy_provider__bad(e, "tools", "unsupported_parameter",
                                        "tools[%zu]: server tool '%s' is not supported by this "
                                        "gateway",
                                        i, type);
            if (name == NULL)
                return sy_provider__bad(e, "tools", NULL, "tools[%zu].name is required", i);
            json_object *ot = json_object_new_object(), *fn = json_object_new_object();
            if ((rc = push(arr, ot)) < 0) {
                json_object_put(fn);
                return rc;
            }
            if ((rc = add_str(ot, "type", "function", 8)) < 0 ||
                (rc = sy_provider__add(ot, "function", fn)) < 0 ||
                (rc = add_str(fn, "name", name, nl)) < 0 ||
                (desc != NULL && (rc = add_str(fn, "description", desc, dl)) < 0) ||
                (schema != NULL &&
                 (rc = sy_provider__add(fn, "parameters", json_object_get(schema))) < 0))
                return rc;
        }
    }
    json_object *tc = json_object_object_get(req, "tool_choice");
    const char *ct = sy_provider__str(tc, "type", NULL);
    if (ct == NULL)
        return 0;
    json_object *dp = json_object_object_get(tc, "disable_parallel_tool_use");
    if (dp != NULL && json_object_get_boolean(dp) &&
        (rc = sy_provider__add(out, "parallel_tool_calls", json_object_new_boolean(0))) < 0)
        return rc;
    if (strcmp(ct, "auto") == 0)
        return add_str(out, "tool_choice", "auto", 4);
    if (strcmp(ct, "any") == 0)
        return add_str(out, "tool_choice", "required", 8);
    if (strcmp(ct, "none") == 0)
        return add_str(out, "tool_choice", "none", 4);
    size_t nl;
    const char *name = sy_provider__str(tc, "name", &nl);
    if (strcmp(ct, "tool") == 0 && name != NULL) {
        json_object *o = json_object_new_object(), *fn = json_object_new_object();
        if ((rc = sy_provider__add(out, "tool_choice", o)) < 0) {
            json_object_put(fn);
            return rc;
        }
        if ((rc = add_str(o, "type", "function", 8)) < 0 ||
            (rc = sy_provider__add(o, "function", fn)) < 0)
            return rc;
        return add_str(fn, "name", name, nl);
    }
    return sy_provider__bad(e, "tool_choice", NULL, "tool_choice type '%s' is not supported", ct);
}

static int convert(json_object *req, json_object *out, sy_provider_error_t *e)
{
    json_object *v;
    int rc;
    size_t ml;
    const char *model = sy_provider__str(req, "model", &ml);
    if (model == NULL)
        return sy_provider__bad(e, "model", NULL, "model: Field required");
    if ((rc = add_str(out, "model", model, ml)) < 0)
        return rc;
    json_object *msgs = json_object_new_array();
    if ((rc = sy_provider__add(out, "messages", msgs)) < 0)
        return rc;

    json_object *sys = json_object_object_get(req, "system");
    if (sys != NULL && !json_object_is_type(sys, json_type_null)) {
        sy_buf_t text;
        bool ok;
        sy_buf_init(&text);
        rc = sy_provider__blocks_text(sys, &text, &ok);
        if (rc == 0 && !ok)
            rc = sy_provider__bad(e, "system", NULL,
                                  "system must be a string or an array of text blocks");
        json_object *m = rc == 0 && text.len > 0 ? json_object_new_object() : NULL;
        if (m != NULL && ((rc = push(msgs, m)) < 0 || (rc = add_str(m, "role", "system", 6)) < 0 ||
                          (rc = add_str(m, "content", text.data, text.len)) < 0)) {
        }
        sy_buf_free(&text);
        if (rc < 0)
            return rc;
    }
    json_object *in = json_object_object_get(req, "messages");
    if (in == NULL || !json_object_is_type(in, json_type_array) ||
        json_object_array_length(in) == 0)
        return sy_provider__bad(e, "messages", NULL, "messages: must be a non-empty array");
    size_t n = json_object_array_length(in);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = sy_provider__str(m, "role", NULL);
        if (role != NULL && strcmp(role, "user") == 0)
            rc = user_turn(m, i, msgs, e);
        else if (role != NULL && strcmp(role, "assistant") == 0)
            rc = assistant_turn(m, i, msgs, e);
        else
            rc = sy_provider__bad(e, "messages", NULL,
                                  "messages[%zu].role must be \"user\" or \"assistant\"", i);
        if (rc < 0)
            return rc;
    }

    if (json_object_object_get_ex(req, "max_tokens", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            return sy_provider__bad(e, "max_tokens", NULL, "max_tokens must be a positive integer");
        if ((rc = sy_provider__add(out, "max_completion_tokens", json_object_get(v))) < 0)
            return rc;
    }
    const char *nums[][2] = {{"temperature", "temperature"}, {"top_p", "top_p"}};
    for (size_t i = 0; i < SY_ARRAY_LEN(nums); i++) {
        double d;
        bool bad;
        if (sy_provider__num(req, nums[i][0], &d, &bad)) {
            if ((rc = sy_provider__add(out, nums[i][1],
                                       json_object_get(json_object_object_get(req, nums[i][0])))) <
                0)
                return rc;
        } else if (bad) {
            return sy_provider__bad(e, NULL, NULL, "%s must be a number", nums[i][0]);
        }
    }
    json_object *stop = json_object_object_get(req, "stop_sequences");
    if (stop != NULL && json_object_is_type(stop, json_type_array) &&
        json_object_array_length(stop) > 0 &&
        (rc = sy_provider__add(out, "stop", json_object_get(stop))) < 0)
        return rc;
    size_t ul;
    const char *user = sy_provider__str(json_object_object_get(req, "metadata"), "user_id", &ul);
    if (user != NULL && (rc = add_str(out, "user", user, ul)) < 0)
        return rc;
    if ((rc = convert_tools(req, out, e)) < 0)
        return rc;
    json_object *st = json_object_object_get(req, "stream");
    if (st != NULL && json_object_get_boolean(st)) {
        json_object *so = json_object_new_object();
        if ((rc = sy_provider__add(out, "stream", json_object_new_boolean(1))) < 0 ||
            (rc = sy_provider__add(out, "stream_options", so)) < 0 ||
            (rc = sy_provider__add(so, "include_usage", json_object_new_boolean(1))) < 0)
            return rc;
    }
    return 0;
}

int sy_anthropic_ingress_request(json_object *req, json_object **out, sy_provider_error_t *err)
{
    if (req == NULL || !json_object_is_type(req, json_type_object))
        return sy_provider__bad(err, NULL, NULL, "the request body must be a JSON object");
    json_object *o = json_object_new_object();
    if (o == NULL)
        return SY_ENOMEM;
    int rc = convert(req, o, err);
    if (rc < 0) {
        json_object_put(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* --- responses ---------------------------------------------------------------------- */

static const char *stop_reason(const char *finish)
{
    if (finish == NULL || strcmp(finish, "stop") == 0)
        return "end_turn";
    if (strcmp(finish, "length") == 0)
        return "max_tokens";
    if (strcmp(finish, "tool_calls") == 0 || strcmp(finish, "function_call") == 0)
        return "tool_use";
    if (strcmp(finish, "content_filter") == 0)
        return "refusal";
    return "end_turn";
}

static int write_usage(sy_buf_t *out, const sy_provider_usage_t *u)
{
    uint64_t cached = u->cached_tokens, written = u->cache_write_tokens;
    /* Anthropic's input_tokens excludes the cached parts. */
    uint64_t in = u->prompt_tokens >= cached + written ? u->prompt_tokens - cached - written : 0;
    return sy_buf_appendf(out,
                          "{\"input_tokens\":%llu,\"cache_creation_input_tokens\":%llu,"
                          "\"cache_read_input_tokens\":%llu,\"output_tokens\":%llu}",
                          (unsigned long long)in, (unsigned long long)written,
                          (unsigned long long)cached, (unsigned long long)u->completion_tokens);
}

/* "msg_" + the id without OpenAI's "chatcmpl-" prefix. */
static int append_msg_id(sy_buf_t *out, sy_buf_t *tmp, const char *id, size_t len)
{
    int rc;
    sy_buf_reset(tmp);
    if (id == NULL)
        id = "gateway", len = 7;
    if (len > 9 && memcmp(id, "chatcmpl-", 9) == 0)
        id += 9, len -= 9;
    /* An id that came from Anthropic in the first place keeps its form. */
    if (!(len > 4 && memcmp(id, "msg_", 4) == 0) && (rc = sy_buf_append(tmp, "msg_", 4)) < 0)
        return rc;
    if ((rc = sy_buf_append(tmp, id, len)) < 0)
        return rc;
    return sy_buf_append_json_string(out, tmp->data, tmp->len);
}

int sy_anthropic_ingress_response(sy_json_parser_t *p, const char *body, size_t len, sy_str_t model,
                                  sy_buf_t *out)
{
    json_object *r = NULL;
    const char *why;
    int rc = sy_json_parse(p, body, len, &r, &why);
    if (rc < 0)
        return rc;
    json_object *choices = json_object_object_get(r, "choices");
    json_object *choice = choices != NULL && json_object_is_type(choices, json_type_array)
                              ? json_object_array_get_idx(choices, 0)
                              : NULL;
    json_object *msg = json_object_object_get(choice, "message");
    if (msg == NULL) {
        json_object_put(r);
        return SY_EINVAL;
    }
    size_t start = out->len, il;
    sy_buf_t tmp;
    sy_buf_init(&tmp);
    sy_provider_usage_t u = {0};
    sy_provider_openai.extract_usage(r, &u);
    const char *id = sy_provider__str(r, "id", &il);
    if ((rc = sy_buf_append_str(out, "{\"id\":")) < 0 ||
        (rc = append_msg_id(out, &tmp, id, il)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":")) <
            0 ||
        (rc = sy_buf_append_json_string(out, model.ptr ? model.ptr : "", model.len)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"content\":[")) < 0)
        goto out;
    size_t tl;
    const char *text = sy_provider__str(msg, "content", &tl);
    if (text == NULL)
        text = sy_provider__str(msg, "refusal", &tl);
    bool first = true;
    if (text != NULL && tl > 0) {
        if ((rc = sy_buf_append_str(out, "{\"type\":\"text\",\"text\":")) < 0 ||
            (rc = sy_buf_append_json_string(out, text, tl)) < 0 ||
            (rc = sy_buf_append(out, "}", 1)) < 0)
            goto out;
        first = false;
    }
    json_object *calls = json_object_object_get(msg, "tool_calls");
    size_t nc = calls != NULL && json_object_is_type(calls, json_type_array)
                    ? json_object_array_length(calls)
                    : 0;
    for (size_t i = 0; i < nc; i++) {
        json_object *c = json_object_array_get_idx(calls, i);
        json_object *fn = json_object_object_get(c, "function");
        size_t cl, nl, al;
        const char *cid = sy_provider__str(c, "id", &cl);
        const char *name = sy_provider__str(fn, "name", &nl);
        const char *args = sy_provider__str(fn, "arguments", &al);
        if (cid == NULL || name == NULL)
            continue;
        json_object *input = NULL;
        /* input must be an object; arguments that are not one become {}. */
        bool parsed = args != NULL && al > 0 && sy_json_parse(p, args, al, &input, &why) == 0 &&
                      json_object_is_type(input, json_type_object);
        if ((rc = sy_buf_append_str(out, first ? "{\"type\":\"tool_use\",\"id\":"
                                               : ",{\"type\":\"tool_use\",\"id\":")) < 0 ||
            (rc = sy_buf_append_json_string(out, cid, cl)) < 0 ||
            (rc = sy_buf_append_str(out, ",\"name\":")) < 0 ||
            (rc = sy_buf_append_json_string(out, name, nl)) < 0 ||
            (rc = sy_buf_append_str(out, ",\"input\":")) < 0 ||
            (rc = parsed ? sy_provider__append_json(out, input) : sy_buf_append(out, "{}", 2)) <
                0 ||
            (rc = sy_buf_append(out, "}", 1)) < 0) {
            json_object_put(input);
            goto out;
        }
        json_object_put(input);
        first = false;
    }
    if ((rc = sy_buf_appendf(out, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":",
                             stop_reason(sy_provider__str(choice, "finish_reason", NULL)))) < 0 ||
        (rc = write_usage(out, &u)) < 0 || (rc = sy_buf_append(out, "}", 1)) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        out->len = start;
    sy_buf_free(&tmp);
    json_object_put(r);
    return rc;
}

const char *sy_anthropic_ingress_error_type(int status)
{
    switch (status) {
    case 400:
    case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

int sy_anthropic_ingress_error_write(const sy_provider_error_t *e, sy_buf_t *out)
{
    int rc;
    if ((rc = sy_buf_appendf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                             sy_anthropic_ingress_error_type(e->status))) < 0 ||
        (rc = sy_buf_append_json_string(out, e->message, strnlen(e->message, sizeof(e->message)))) <
            0)
        return rc;
    return sy_buf_appendf(out, ",\"cause\":\"%s\"}}", sy_provider_cause_name(e->cause));
}

/* --- streams ------------------------------------------------------------------------- */

static int emit(sy_buf_t *out, const char *event, const char *data, size_t len)
{
    int rc;
    if ((rc = sy_buf_appendf(out, "event: %s\ndata: ", event)) < 0 ||
        (rc = sy_buf_append(out, data, len)) < 0)
        return rc;
    return sy_buf_append(out, "\n\n", 2);
}

static int close_block(sy_anthropic_egress_t *e, sy_buf_t *out)
{
    if (e->open_block < 0)
        return 0;
    char data[96];
    int n = snprintf(data, sizeof(data), "{\"type\":\"content_block_stop\",\"index\":%d}",
                     e->open_block);
    e->open_block = -1;
    return emit(out, "content_block_stop", data, (size_t)n);
}

static int start(sy_anthropic_egress_t *e, const char *id, size_t il, sy_buf_t *out)
{
    int rc;
    sy_buf_t tmp;
    if (e->started)
        return 0;
    e->started = true;
    sy_buf_init(&tmp);
    sy_buf_reset(&e->scratch);
    if ((rc = sy_buf_append_str(&e->scratch, "{\"type\":\"message_start\",\"message\":{\"id\":")) <
            0 ||
        (rc = append_msg_id(&e->scratch, &tmp, id, il)) < 0 ||
        (rc = sy_buf_append_str(&e->scratch,
                                ",\"type\":\"message\",\"role\":\"assistant\",\"model\":")) < 0 ||
        (rc = sy_buf_append_json_string(&e->scratch, e->model.len ? e->model.data : "",
                                        e->model.len)) < 0 ||
        (rc = sy_buf_append_str(&e->scratch,
                                ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                                "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}")) < 0) {
        sy_buf_free(&tmp);
        return rc;
    }
    sy_buf_free(&tmp);
    return emit(out, "message_start", e->scratch.data, e->scratch.len);
}

static int fail(sy_anthropic_egress_t *e, const char *type, const char *msg, size_t ml,
                sy_buf_t *out)
{
    int rc;
    e->done = true;
    e->failed = true;
    sy_buf_reset(&e->scratch);
    if ((rc = sy_buf_appendf(&e->scratch,
                             "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                             "\"message\":",
                             type)) < 0 ||
        (rc = sy_buf_append_json_string(&e->scratch, msg, ml)) < 0 ||
        (rc = sy_buf_append(&e->scratch, "}}", 2)) < 0)
        return rc;
    return emit(out, "error", e->scratch.data, e->scratch.len);
}

/* t is the text, or (raw) a JSON string token copied verbatim. */
static int text_delta(sy_anthropic_egress_t *e, const char *t, size_t tl, bool raw, sy_buf_t *out)
{
    int rc;
    char head[128];
    if (e->open_block < 0 || !e->open_is_text) {
        if ((rc = close_block(e, out)) < 0)
            return rc;
        e->open_block = e->n_blocks++;
        e->open_is_text = true;
        int n = snprintf(head, sizeof(head),
                         "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                         "{\"type\":\"text\",\"text\":\"\"}}",
                         e->open_block);
        if ((rc = emit(out, "content_block_start", head, (size_t)n)) < 0)
            return rc;
    }
    sy_buf_reset(&e->scratch);
    if ((rc = sy_buf_appendf(&e->scratch,
                             "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                             "\"text_delta\",\"text\":",
                             e->open_block)) < 0 ||
        (rc = raw ? sy_buf_append(&e->scratch, t, tl)
                  : sy_buf_append_json_string(&e->scratch, t, tl)) < 0 ||
        (rc = sy_buf_append(&e->scratch, "}}", 2)) < 0)
        return rc;
    return emit(out, "content_block_delta", e->scratch.data, e->scratch.len);
}

/* The common chunk (one choice, a text delta, no finish, no usage) from a
 * scan of its bytes; returns 1 when the chunk needs the full parser. */
static int fast_chunk(sy_anthropic_egress_t *e, sy_str_t data, sy_buf_t *out)
{
    sy_str_t doc, key, val, choices = SY_STR_NULL, delta = SY_STR_NULL, content = SY_STR_NULL;
    sy_str_t calls = SY_STR_NULL;
    sy_jscan_t it;
    int r;
    if (!e->started || !sy_jscan_begin_doc(&it, data.ptr, data.len))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "choices"))
            choices = val;
        else if (sy_jscan_key_is(key, "error") ||
                 (sy_jscan_key_is(key, "usage") &&
                  !(val.len == 4 && memcmp(val.ptr, "null", 4) == 0)))
            return 1;
    }
    sy_jscan_t ci;
    if (r < 0 || !sy_jscan_end_doc(&it, &doc) || !sy_jscan_begin(&ci, choices, false) ||
        sy_jscan_next(&ci, &key, &val) != 1)
        return 1;
    sy_str_t choice = val;
    if (sy_jscan_next(&ci, &key, &val) != 0 || !sy_jscan_begin(&it, choice, true))
        return 1; /* several choices: the full path picks choice 0 */
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "delta"))
            delta = val;
        else if (sy_jscan_key_is(key, "finish_reason") &&
                 !(val.len == 4 && memcmp(val.ptr, "null", 4) == 0))
            return 1;
        else if (sy_jscan_key_is(key, "index") && !(val.len == 1 && val.ptr[0] == '0'))
            return 1;
    }
    if (r < 0 || !sy_jscan_begin(&it, delta, true))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "content"))
            content = val;
        else if (sy_jscan_key_is(key, "tool_calls"))
            calls = val;
    }
    if (r < 0)
        return 1;
    if (calls.len > 0 && !(calls.len == 4 && memcmp(calls.ptr, "null", 4) == 0)) {
        /* An argument fragment of a known call: {"index":i,"function":{"arguments":"…"}}. */
        sy_str_t index = SY_STR_NULL, fn = SY_STR_NULL, args = SY_STR_NULL, tc;
        uint64_t ti;
        if (content.len > 2 || !sy_jscan_begin(&ci, calls, false) ||
            sy_jscan_next(&ci, &key, &tc) != 1 || sy_jscan_next(&ci, &key, &val) != 0 ||
            !sy_jscan_begin(&it, tc, true))
            return 1;
        while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
            if (sy_jscan_key_is(key, "index"))
                index = val;
            else if (sy_jscan_key_is(key, "function"))
                fn = val;
            else if (sy_jscan_key_is(key, "id"))
                return 1; /* a new call: the full path opens its block */
        }
        if (r < 0 || !sy_jscan_u64(index, &ti) || ti >= SY_ANTHROPIC_EGRESS_MAX_TOOLS ||
            e->tool_block[ti] < 0 || !sy_jscan_begin(&it, fn, true))
            return 1;
        while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
            if (sy_jscan_key_is(key, "arguments"))
                args = val;
            else if (sy_jscan_key_is(key, "name"))
                return 1;
        }
        if (r < 0 || args.len < 2 || args.ptr[0] != '"')
            return 1;
        if (args.len == 2)
            return 0;
        int rc;
        sy_buf_reset(&e->scratch);
        if ((rc = sy_buf_appendf(&e->scratch,
                                 "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{"
                                 "\"type\":\"input_json_delta\",\"partial_json\":",
                                 e->tool_block[ti])) < 0 ||
            (rc = sy_buf_append(&e->scratch, args.ptr, args.len)) < 0 ||
            (rc = sy_buf_append(&e->scratch, "}}", 2)) < 0)
            return rc;
        return emit(out, "content_block_delta", e->scratch.data, e->scratch.len);
    }
    if (content.len > 2 && content.ptr[0] == '"')
        return text_delta(e, content.ptr, content.len, true, out);
    return 0;
}

static int tool_delta(sy_anthropic_egress_t *e, json_object *tc, sy_buf_t *out)
{
    uint64_t idx;
    int rc;
    if (!sy_provider__u64(tc, "index", &idx) || idx >= SY_ANTHROPIC_EGRESS_MAX_TOOLS)
        return 0;
    json_object *fn = json_object_object_get(tc, "function");
    size_t il, nl, al;
    const char *id = sy_provider__str(tc, "id", &il);
    const char *name = sy_provider__str(fn, "name", &nl);
    const char *args = sy_provider__str(fn, "arguments", &al);
    if (id != NULL && e->tool_block[idx] < 0) {
        if ((rc = close_block(e, out)) < 0)
            return rc;
        e->open_block = e->n_blocks++;
        e->open_is_text = false;
        e->tool_block[idx] = (int16_t)e->open_block;
        sy_buf_reset(&e->scratch);
        if ((rc = sy_buf_appendf(&e->scratch,
                                 "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                                 "{\"type\":\"tool_use\",\"id\":",
                                 e->open_block)) < 0 ||
            (rc = sy_buf_append_json_string(&e->scratch, id, il)) < 0 ||
            (rc = sy_buf_append_str(&e->scratch, ",\"name\":")) < 0 ||
            (rc = sy_buf_append_json_string(&e->scratch, name ? name : "", name ? nl : 0)) < 0 ||
            (rc = sy_buf_append_str(&e->scratch, ",\"input\":{}}}")) < 0 ||
            (rc = emit(out, "content_block_start", e->scratch.data, e->scratch.len)) < 0)
            return rc;
    }
    if (args == NULL || al == 0 || e->tool_block[idx] < 0)
        return 0;
    sy_buf_reset(&e->scratch);
    if ((rc = sy_buf_appendf(&e->scratch,
                             "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                             "\"input_json_delta\",\"partial_json\":",
                             e->tool_block[idx])) < 0 ||
        (rc = sy_buf_append_json_string(&e->scratch, args, al)) < 0 ||
        (rc = sy_buf_append(&e->scratch, "}}", 2)) < 0)
        return rc;
    return emit(out, "content_block_delta", e->scratch.data, e->scratch.len);
}

static int finish(sy_anthropic_egress_t *e, sy_buf_t *out)
{
    int rc;
    if ((rc = start(e, NULL, 0, out)) < 0 || (rc = close_block(e, out)) < 0)
        return rc;
    sy_buf_reset(&e->scratch);
    if ((rc = sy_buf_appendf(&e->scratch,
                             "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                             "\"stop_sequence\":null},\"usage\":",
                             e->stop_reason ? e->stop_reason : "end_turn")) < 0 ||
        (rc = write_usage(&e->scratch, &e->usage)) < 0 ||
        (rc = sy_buf_append(&e->scratch, "}", 1)) < 0 ||
        (rc = emit(out, "message_delta", e->scratch.data, e->scratch.len)) < 0)
        return rc;
    e->done = true;
    static const char stop[] = "{\"type\":\"message_stop\"}";
    return emit(out, "message_stop", stop, sizeof(stop) - 1);
}

static int on_chunk(void *ctx, const sy_sse_event_t *ev)
{
    sy_anthropic_egress_t *e = ctx;
    sy_buf_t *out = e->out;
    int rc = 0;
    if (e->done)
        return 0;
    if (ev->data.len == 6 && memcmp(ev->data.ptr, "[DONE]", 6) == 0)
        return finish(e, out) < 0 ? SY_ENOMEM : 0;
    if ((rc = fast_chunk(e, ev->data, out)) != 1)
        return rc < 0 ? SY_ENOMEM : 0;
    json_object *o = NULL;
    const char *why;
    rc = sy_json_parse(e->parser, ev->data.ptr, ev->data.len, &o, &why);
    if (rc == SY_ENOMEM)
        return rc;
    if (rc < 0) {
        static const char m[] = "the gateway produced an invalid chunk";
        return fail(e, "api_error", m, sizeof(m) - 1, out) < 0 ? SY_ENOMEM : 0;
    }
    json_object *err = json_object_object_get(o, "error");
    if (err != NULL) {
        size_t ml;
        const char *msg = sy_provider__str(err, "message", &ml);
        const char *type = sy_provider__str(err, "type", NULL);
        /* OpenAI-style types back to Anthropic's. */
        static const char *const same[] = {
            "overloaded_error",      "rate_limit_error",     "api_error",
            "invalid_request_error", "authentication_error", "permission_error",
            "not_found_error",       "timeout_error",        NULL};
        const char *at = sy_provider__intern(type, same, NULL);
        const char *code = sy_provider__str(err, "code", NULL);
        if (at == NULL)
            at = code != NULL && strcmp(code, "overloaded") == 0            ? "overloaded_error"
                 : code != NULL && strcmp(code, "rate_limit_exceeded") == 0 ? "rate_limit_error"
                                                                            : "api_error";
        rc = fail(e, at, msg ? msg : "upstream error", msg ? ml : 14, out);
        json_object_put(o);
        return rc < 0 ? SY_ENOMEM : 0;
    }
    size_t il;
    const char *id = sy_provider__str(o, "id", &il);
    if ((rc = start(e, id, il, out)) < 0)
        goto out;
    json_object *choices = json_object_object_get(o, "choices");
    json_object *c = choices != NULL && json_object_is_type(choices, json_type_array)
                         ? json_object_array_get_idx(choices, 0)
                         : NULL;
    uint64_t ci = 0;
    if (c != NULL && (!sy_provider__u64(c, "index", &ci) || ci == 0)) {
        json_object *d = json_object_object_get(c, "delta");
        size_t tl;
        const char *t = sy_provider__str(d, "content", &tl);
        if (t != NULL && tl > 0 && (rc = text_delta(e, t, tl, false, out)) < 0)
            goto out;
        json_object *tcs = json_object_object_get(d, "tool_calls");
        size_t nt = tcs != NULL && json_object_is_type(tcs, json_type_array)
                        ? json_object_array_length(tcs)
                        : 0;
        for (size_t i = 0; i < nt; i++)
            if ((rc = tool_delta(e, json_object_array_get_idx(tcs, i), out)) < 0)
                goto out;
        const char *fr = sy_provider__str(c, "finish_reason", NULL);
        if (fr != NULL)
            e->stop_reason = stop_reason(fr);
    }
    json_object *u = json_object_object_get(o, "usage");
    if (u != NULL && json_object_is_type(u, json_type_object))
        sy_provider_openai.extract_usage(o, &e->usage);
    rc = 0;
out:
    json_object_put(o);
    return rc < 0 ? SY_ENOMEM : 0;
}

void sy_anthropic_egress_init(sy_anthropic_egress_t *e, sy_json_parser_t *parser, sy_str_t model)
{
    memset(e, 0, sizeof(*e));
    e->parser = parser;
    sy_sse_framer_init(&e->framer, SY_PROVIDER_MAX_EVENT, on_chunk, e);
    sy_buf_init(&e->model);
    sy_buf_init(&e->scratch);
    if (model.len > 0)
        (void)sy_buf_append(&e->model, model.ptr, model.len);
    e->open_block = -1;
    for (size_t i = 0; i < SY_ARRAY_LEN(e->tool_block); i++)
        e->tool_block[i] = -1;
}

void sy_anthropic_egress_free(sy_anthropic_egress_t *e)
{
    if (e == NULL)
        return;
    sy_sse_framer_free(&e->framer);
    sy_buf_free(&e->model);
    sy_buf_free(&e->scratch);
    e->out = NULL;
}

int sy_anthropic_egress_feed(sy_anthropic_egress_t *e, const char *p, size_t n, sy_buf_t *out)
{
    if (e->done)
        return 0;
    e->out = out;
    int rc = sy_sse_framer_feed(&e->framer, p, n);
    e->out = NULL;
    if (rc == SY_E2BIG) {
        static const char m[] = "stream event too large";
        return fail(e, "api_error", m, sizeof(m) - 1, out);
    }
    return rc < 0 ? rc : 0;
}

int sy_anthropic_egress_end(sy_anthropic_egress_t *e, sy_buf_t *out)
{
    if (e->done)
        return 0;
    static const char m[] = "the upstream stream ended before completion";
    return fail(e, "api_error", m, sizeof(m) - 1, out);
}
