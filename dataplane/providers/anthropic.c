/* Anthropic Messages API adapter (REFERENCE.md §3, §5). */
#include "dataplane/providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jscan.h"

#define ANTHROPIC_VERSION "2023-06-01"

/* --- request ------------------------------------------------------------------ */

/* Anthropic ids must match ^[a-zA-Z0-9_-]+$; other characters become '_'. */
static json_object *sanitized_id(const char *id, size_t len)
{
    char stack[256] = {0};
    char *buf = len < sizeof(stack) ? stack : malloc(len + 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        buf[i] = ok ? c : '_';
    }
    json_object *o = json_object_new_string_len(buf, (int)len);
    if (buf != stack)
        free(buf);
    return o;
}

static json_object *text_block(const char *text, size_t len)
{
    json_object *b = json_object_new_object();
    if (b == NULL)
        return NULL;
    if (sy_provider__add(b, "type", json_object_new_string("text")) < 0 ||
        sy_provider__add(b, "text", json_object_new_string_len(text, (int)len)) < 0) {
        json_object_put(b);
        return NULL;
    }
    return b;
}

static bool media_type_ok(sy_str_t mime)
{
    return sy_str_eq_cstr(mime, "image/jpeg") || sy_str_eq_cstr(mime, "image/png") ||
           sy_str_eq_cstr(mime, "image/gif") || sy_str_eq_cstr(mime, "image/webp");
}

/* Converts one OpenAI image_url part into an Anthropic image block. */
static int image_block(json_object *part, size_t mi, json_object **out, sy_provider_error_t *e)
{
    json_object *iu = json_object_object_get(part, "image_url");
    size_t len = 0;
    const char *url = NULL;
    if (iu != NULL && json_object_is_type(iu, json_type_string)) {
        url = json_object_get_string(iu);
        len = (size_t)json_object_get_string_len(iu);
    } else {
        url = sy_provider__str(iu, "url", &len);
    }
    if (url == NULL)
        return sy_provider__bad(e, "messages", NULL, "messages[%zu]: image_url.url is missing", mi);
    json_object *b = json_object_new_object(), *src = json_object_new_object();
    if (b == NULL || src == NULL) {
        json_object_put(b);
        json_object_put(src);
        return SY_ENOMEM;
    }
    int rc = 0;
    sy_str_t mime, data;
    if (sy_provider__data_url(url, len, &mime, &data) == 0) {
        if (!media_type_ok(mime)) {
            json_object_put(b);
            json_object_put(src);
            return sy_provider__bad(e, "messages", "unsupported_parameter",
                                    "messages[%zu]: image type '%.*s' is not supported by "
                                    "Anthropic models (jpeg, png, gif, webp)",
                                    mi, (int)(mime.len > 64 ? 64 : mime.len), mime.ptr);
        }
        if ((rc = sy_provider__add(src, "type", json_object_new_string("base64"))) < 0 ||
            (rc = sy_provider__add(src, "media_type",
                                   json_object_new_string_len(mime.ptr, (int)mime.len))) < 0 ||
            (rc = sy_provider__add(src, "data",
                                   json_object_new_string_len(data.ptr, (int)data.len))) < 0)
            goto fail;
    } else if ((len > 8 && strncmp(url, "https://", 8) == 0) ||
               (len > 7 && strncmp(url, "http://", 7) == 0)) {
        if ((rc = sy_provider__add(src, "type", json_object_new_string("url"))) < 0 ||
            (rc = sy_provider__add(src, "url", json_object_new_string_len(url, (int)len))) < 0)
            goto fail;
    } else {
        json_object_put(b);
        json_object_put(src);
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu]: image_url.url must be a data: URL with base64 "
                                "data or an http(s) URL",
                                mi);
    }
    if ((rc = sy_provider__add(b, "type", json_object_new_string("image"))) < 0)
        goto fail;
    rc = sy_provider__add(b, "source", src);
    src = NULL;
    if (rc < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    json_object_put(b);
    json_object_put(src);
    return rc;
}

/* Appends the blocks of a user message's content to blocks. */
static int user_blocks(json_object *content, size_t mi, json_object *blocks, sy_provider_error_t *e)
{
    if (content != NULL && json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content) == 0)
            return 0;
        json_object *b = text_block(json_object_get_string(content),
                                    (size_t)json_object_get_string_len(content));
        return b != NULL ? json_object_array_add(blocks, b) == 0 ? 0 : SY_ENOMEM : SY_ENOMEM;
    }
    if (content == NULL || !json_object_is_type(content, json_type_array))
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu].content must be a string or an array of parts", mi);
    size_t n = json_object_array_length(content);
    for (size_t j = 0; j < n; j++) {
        json_object *part = json_object_array_get_idx(content, j), *b = NULL;
        const char *type = sy_provider__str(part, "type", NULL);
        int rc;
        if (type != NULL && strcmp(type, "text") == 0) {
            size_t len;
            const char *text = sy_provider__str(part, "text", &len);
            if (text == NULL)
                return sy_provider__bad(e, "messages", NULL,
                                        "messages[%zu].content[%zu].text must be a string", mi, j);
            if (len == 0)
                continue; /* Anthropic rejects empty text blocks. */
            if ((b = text_block(text, len)) == NULL)
                return SY_ENOMEM;
        } else if (type != NULL && strcmp(type, "image_url") == 0) {
            if ((rc = image_block(part, mi, &b, e)) < 0)
                return rc;
        } else {
            return sy_provider__bad(e, "messages", "unsupported_parameter",
                                    "messages[%zu].content[%zu]: part type '%s' is not supported "
                                    "by Anthropic models",
                                    mi, j, type ? type : "(none)");
        }
        if (json_object_array_add(blocks, b) != 0) {
            json_object_put(b);
            return SY_ENOMEM;
        }
    }
    return 0;
}

static int assistant_blocks(json_object *m, size_t mi, json_object *blocks, sy_provider_error_t *e)
{
    sy_buf_t text;
    bool ok;
    int rc;
    sy_buf_init(&text);
    if ((rc = sy_provider__text_content(json_object_object_get(m, "content"), &text, &ok)) < 0)
        goto out;
    if (!ok) {
        rc = sy_provider__bad(e, "messages", NULL,
                              "messages[%zu].content must be null, a string or text parts", mi);
        goto out;
    }
    if (text.len > 0) {
        json_object *b = text_block(text.data, text.len);
        if (b == NULL || json_object_array_add(blocks, b) != 0) {
            json_object_put(b);
            rc = SY_ENOMEM;
            goto out;
        }
    }
    json_object *calls = json_object_object_get(m, "tool_calls");
    if (calls != NULL && json_object_is_type(calls, json_type_array)) {
        size_t n = json_object_array_length(calls);
        for (size_t j = 0; j < n; j++) {
            json_object *c = json_object_array_get_idx(calls, j);
            json_object *fn = json_object_object_get(c, "function");
            size_t idl, nl, al = 0;
            const char *id = sy_provider__str(c, "id", &idl);
            const char *name = sy_provider__str(fn, "name", &nl);
            const char *args = sy_provider__str(fn, "arguments", &al);
            if (id == NULL || name == NULL) {
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].tool_calls[%zu] needs an id and a "
                                      "function name",
                                      mi, j);
                goto out;
            }
            json_object *input = NULL;
            if (args == NULL || al == 0) {
                input = json_object_new_object();
            } else if (sy_json_parse_once(args, al, &input, NULL) < 0 ||
                       !json_object_is_type(input, json_type_object)) {
                json_object_put(input);
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].tool_calls[%zu].function.arguments is not a "
                                      "JSON object",
                                      mi, j);
                goto out;
            }
            json_object *b = json_object_new_object();
            if (b == NULL || json_object_array_add(blocks, b) != 0) {
                json_object_put(b);
                json_object_put(input);
                rc = SY_ENOMEM;
                goto out;
            }
            if ((rc = sy_provider__add(b, "type", json_object_new_string("tool_use"))) < 0 ||
                (rc = sy_provider__add(b, "id", sanitized_id(id, idl))) < 0 ||
                (rc = sy_provider__add(b, "name", json_object_new_string_len(name, (int)nl))) < 0 ||
                (rc = sy_provider__add(b, "input", input)) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    sy_buf_free(&text);
    return rc;
}

static int tool_result_block(json_object *m, size_t mi, json_object *blocks, sy_provider_error_t *e)
{
    size_t idl;
    const char *id = sy_provider__str(m, "tool_call_id", &idl);
    if (id == NULL)
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu]: a tool message needs a "
                                "string tool_call_id",
                                mi);
    sy_buf_t text;
    bool ok;
    sy_buf_init(&text);
    int rc = sy_provider__text_content(json_object_object_get(m, "content"), &text, &ok);
    if (rc == 0 && !ok)
        rc = sy_provider__bad(e, "messages", NULL,
                              "messages[%zu].content must be a string or text parts", mi);
    json_object *b = NULL;
    if (rc == 0) {
        b = json_object_new_object();
        if (b == NULL || json_object_array_add(blocks, b) != 0) {
            json_object_put(b);
            rc = SY_ENOMEM;
        } else if ((rc = sy_provider__add(b, "type", json_object_new_string("tool_result"))) < 0 ||
                   (rc = sy_provider__add(b, "tool_use_id", sanitized_id(id, idl))) < 0 ||
                   (rc = sy_provider__add(b, "content",
                                          json_object_new_string_len(text.len ? text.data : "",
                                                                     (int)text.len))) < 0) {
        }
    }
    sy_buf_free(&text);
    return rc;
}

/* A final assistant turn is a prefill; Anthropic rejects trailing whitespace in it. */
static void strip_prefill(json_object *turns)
{
    size_t n = json_object_array_length(turns);
    if (n == 0)
        return;
    json_object *last = json_object_array_get_idx(turns, n - 1);
    if (strcmp(sy_provider__str(last, "role", NULL), "assistant") != 0)
        return;
    json_object *blocks = json_object_object_get(last, "content");
    json_object *b = json_object_array_get_idx(blocks, json_object_array_length(blocks) - 1);
    size_t len;
    const char *text = sy_provider__str(b, "text", &len);
    if (text == NULL)
        return;
    size_t k = len;
    while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\n' || text[k - 1] == '\t' ||
                     text[k - 1] == '\r'))
        k--;
    if (k != len && k > 0)
        json_object_object_add(b, "text", json_object_new_string_len(text, (int)k));
}

static int convert_messages(json_object *msgs, json_object *body, sy_provider_error_t *e)
{
    sy_buf_t sys;
    int rc = 0;
    json_object *turns = json_object_new_array();
    if (turns == NULL)
        return SY_ENOMEM;
    sy_buf_init(&sys);
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = sy_provider__str(m, "role", NULL);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            bool ok;
            size_t before = sys.len;
            if (sys.len > 0 && (rc = sy_buf_append(&sys, "\n\n", 2)) < 0)
                break;
            if ((rc = sy_provider__text_content(json_object_object_get(m, "content"), &sys, &ok)) <
                0)
                break;
            if (!ok)
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].content must be a string or text parts", i);
            if (sys.len == before + 2 && before > 0)
                sys.len = before; /* an empty system message adds nothing */
            continue;
        }
        json_object *blocks = json_object_new_array();
        if (blocks == NULL) {
            rc = SY_ENOMEM;
            break;
        }
        const char *turn_role = "user";
        if (strcmp(role, "user") == 0) {
            rc = user_blocks(json_object_object_get(m, "content"), i, blocks, e);
        } else if (strcmp(role, "assistant") == 0) {
            turn_role = "assistant";
            rc = assistant_blocks(m, i, blocks, e);
        } else if (strcmp(role, "tool") == 0) {
            rc = tool_result_block(m, i, blocks, e);
        } else {
            rc = sy_provider__bad(e, "messages", NULL,
                                  "messages[%zu]: role '%s' is not supported by Anthropic models",
                                  i, role);
        }
        if (rc < 0) {
            json_object_put(blocks);
            break;
        }
        rc = sy_provider__add_turn(turns, turn_role, "content", blocks);
    }
    if (rc == 0 && json_object_array_length(turns) == 0)
        rc = sy_provider__bad(e, "messages", NULL,
                              "messages must contain at least one non-empty user or assistant "
                              "message");
    if (rc == 0) {
        strip_prefill(turns);
        if (sys.len > 0)
            rc = sy_provider__add(body, "system",
                                  json_object_new_string_len(sys.data, (int)sys.len));
    }
    if (rc == 0) {
        rc = sy_provider__add(body, "messages", turns);
        turns = NULL;
    }
    json_object_put(turns);
    sy_buf_free(&sys);
    return rc;
}

/* tool_choice and parallel_tool_calls as Anthropic's tool_choice. */
static int convert_tool_choice(json_object *req, json_object *body, sy_provider_error_t *e)
{
    int rc;
    json_object *tc = json_object_object_get(req, "tool_choice");
    json_object *choice = json_object_new_object();
    if (choice == NULL)
        return SY_ENOMEM;
    const char *ctype = "auto";
    if (tc != NULL && json_object_is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        if (strcmp(s, "auto") == 0)
            ctype = "auto";
        else if (strcmp(s, "none") == 0)
            ctype = "none";
        else if (strcmp(s, "required") == 0)
            ctype = "any";
        else
            ctype = NULL;
    } else if (tc != NULL && json_object_is_type(tc, json_type_object)) {
        const char *t = sy_provider__str(tc, "type", NULL);
        size_t nl;
        const char *name = sy_provider__str(json_object_object_get(tc, "function"), "name", &nl);
        if (t != NULL && strcmp(t, "function") == 0 && name != NULL) {
            ctype = "tool";
            if ((rc = sy_provider__add(choice, "name", json_object_new_string_len(name, (int)nl))) <
                0) {
                json_object_put(choice);
                return rc;
            }
        } else {
            ctype = NULL;
        }
    } else if (tc != NULL && !json_object_is_type(tc, json_type_null)) {
        ctype = NULL;
    }
    if (ctype == NULL) {
        json_object_put(choice);
        return sy_provider__bad(e, "tool_choice", "unsupported_parameter",
                                "tool_choice must be \"auto\", \"none\", \"required\" or "
                                "{\"type\":\"function\",...} for Anthropic models");
    }
    json_object *ptc = json_object_object_get(req, "parallel_tool_calls");
    if ((rc = sy_provider__add(choice, "type", json_object_new_string(ctype))) < 0) {
        json_object_put(choice);
        return rc;
    }
    /* json-c keeps insertion order; put "type" first for readability. */
    if (strcmp(ctype, "tool") == 0) {
        json_object *name = json_object_get(json_object_object_get(choice, "name"));
        json_object_object_del(choice, "name");
        if ((rc = sy_provider__add(choice, "name", name)) < 0) {
            json_object_put(choice);
            return rc;
        }
    }
    if (ptc != NULL && json_object_is_type(ptc, json_type_boolean) && strcmp(ctype, "none") != 0 &&
        (rc = sy_provider__add(choice, "disable_parallel_tool_use",
                               json_object_new_boolean(!json_object_get_boolean(ptc)))) < 0) {
        json_object_put(choice);
        return rc;
    }
    if (tc == NULL && ptc == NULL) {
        json_object_put(choice); /* the provider's default is auto */
        return 0;
    }
    return sy_provider__add(body, "tool_choice", choice);
}

static int convert_tools(json_object *req, json_object *body, sy_provider_error_t *e)
{
    json_object *tools = NULL;
    size_t n;
    int rc = sy_provider__tools(req, &tools, &n, e);
    if (rc < 0 || n == 0)
        return rc;
    json_object *out = json_object_new_array();
    if ((rc = sy_provider__add(body, "tools", out)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        json_object *fn;
        sy_str_t name;
        size_t dl;
        if ((rc = sy_provider__tool_function(json_object_array_get_idx(tools, i), i, "Anthropic",
                                             &fn, &name, e)) < 0)
            return rc;
        json_object *t = json_object_new_object();
        if (t == NULL || json_object_array_add(out, t) != 0) {
            json_object_put(t);
            return SY_ENOMEM;
        }
        if ((rc = sy_provider__add(t, "name",
                                   json_object_new_string_len(name.ptr, (int)name.len))) < 0)
            return rc;
        const char *desc = sy_provider__str(fn, "description", &dl);
        if (desc != NULL && (rc = sy_provider__add(t, "description",
                                                   json_object_new_string_len(desc, (int)dl))) < 0)
            return rc;
        json_object *params = json_object_object_get(fn, "parameters");
        if (params != NULL && json_object_is_type(params, json_type_object)) {
            rc = sy_provider__add(t, "input_schema", json_object_get(params));
        } else if (params == NULL || json_object_is_type(params, json_type_null)) {
            json_object *schema = json_object_new_object();
            if (schema == NULL)
                return SY_ENOMEM;
            if ((rc = sy_provider__add(schema, "type", json_object_new_string("object"))) < 0 ||
                (rc = sy_provider__add(schema, "properties", json_object_new_object())) < 0) {
                json_object_put(schema);
                return rc;
            }
            rc = sy_provider__add(t, "input_schema", schema);
        } else {
            return sy_provider__bad(e, "tools", NULL,
                                    "tools[%zu].function.parameters must be an object", i);
        }
        if (rc < 0)
            return rc;
    }
    /* tool_choice and parallel_tool_calls only mean something with tools. */
    return convert_tool_choice(req, body, e);
}

static int convert_params(const sy_provider_target_t *t, json_object *req, json_object *body,
                          sy_provider_request_t *out, sy_provider_error_t *e)
{
    json_object *v;
    int rc;
    bool bad;
    double d;

    /* max_tokens is required by Anthropic: the client's, else the model's default. */
    int64_t max_tokens =
        t->default_max_tokens ? t->default_max_tokens : SY_PROVIDER_DEFAULT_MAX_TOKENS;
    const char *mt_keys[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < SY_ARRAY_LEN(mt_keys); i++) {
        if (!json_object_object_get_ex(req, mt_keys[i], &v) ||
            json_object_is_type(v, json_type_null))
            continue;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            return sy_provider__bad(e, mt_keys[i], NULL, "'%s' must be a positive integer",
                                    mt_keys[i]);
        max_tokens = json_object_get_int64(v);
        break;
    }
    if ((rc = sy_provider__add(body, "max_tokens", json_object_new_int64(max_tokens))) < 0)
        return rc;

    if (sy_provider__num(req, "temperature", &d, &bad)) {
        if (d < 0 || d > 1)
            return sy_provider__bad(e, "temperature", "unsupported_value",
                                    "temperature %g is out of range for Anthropic models "
                                    "(0 to 1)",
                                    d);
        if ((rc = sy_provider__add(body, "temperature",
                                   json_object_get(json_object_object_get(req, "temperature")))) <
            0)
            return rc;
    } else if (bad) {
        return sy_provider__bad(e, "temperature", NULL, "'temperature' must be a number");
    }
    if (sy_provider__num(req, "top_p", &d, &bad)) {
        if (d < 0 || d > 1)
            return sy_provider__bad(e, "top_p", NULL, "top_p must be between 0 and 1");
        /* top_p = 1 is the default; some models reject it next to temperature. */
        if (d < 1 &&
            (rc = sy_provider__add(body, "top_p",
                                   json_object_get(json_object_object_get(req, "top_p")))) < 0)
            return rc;
    } else if (bad) {
        return sy_provider__bad(e, "top_p", NULL, "'top_p' must be a number");
    }

    json_object *stop = json_object_object_get(req, "stop");
    if (stop != NULL && !json_object_is_type(stop, json_type_null)) {
        json_object *seqs = json_object_new_array();
        if ((rc = sy_provider__add(body, "stop_sequences", seqs)) < 0)
            return rc;
        size_t n = json_object_is_type(stop, json_type_array) ? json_object_array_length(stop) : 1;
        if (!json_object_is_type(stop, json_type_array) &&
            !json_object_is_type(stop, json_type_string))
            return sy_provider__bad(e, "stop", NULL,
                                    "'stop' must be a string or an array of strings");
        for (size_t i = 0; i < n; i++) {
            json_object *s = json_object_is_type(stop, json_type_array)
                                 ? json_object_array_get_idx(stop, i)
                                 : stop;
            if (!json_object_is_type(s, json_type_string))
                return sy_provider__bad(e, "stop", NULL, "'stop' entries must be strings");
            const char *str = json_object_get_string(s);
            bool blank = true;
            for (const char *c = str; *c; c++)
                if (*c != ' ' && *c != '\n' && *c != '\t' && *c != '\r')
                    blank = false;
            if (blank)
                continue; /* Anthropic rejects whitespace-only stop sequences. */
            if (json_object_array_add(seqs, json_object_get(s)) != 0)
                return SY_ENOMEM;
        }
        if (json_object_array_length(seqs) == 0)
            json_object_object_del(body, "stop_sequences");
    }

    json_object *rf = json_object_object_get(req, "response_format");
    if (rf != NULL && !json_object_is_type(rf, json_type_null)) {
        const char *type = sy_provider__str(rf, "type", NULL);
        if (type == NULL)
            return sy_provider__bad(e, "response_format", NULL, "response_format.type is required");
        if (strcmp(type, "json_schema") == 0) {
            json_object *schema =
                json_object_object_get(json_object_object_get(rf, "json_schema"), "schema");
            if (schema == NULL || !json_object_is_type(schema, json_type_object))
                return sy_provider__bad(e, "response_format", NULL,
                                        "response_format.json_schema.schema must be an object");
            json_object *oc = json_object_new_object(), *fmt = json_object_new_object();
            if ((rc = sy_provider__add(body, "output_config", oc)) < 0) {
                json_object_put(fmt);
                return rc;
            }
            if ((rc = sy_provider__add(oc, "format", fmt)) < 0 ||
                (rc = sy_provider__add(fmt, "type", json_object_new_string("json_schema"))) < 0 ||
                (rc = sy_provider__add(fmt, "schema", json_object_get(schema))) < 0)
                return rc;
        } else if (strcmp(type, "text") != 0) {
            return sy_provider__bad(e, "response_format", "unsupported_parameter",
                                    "response_format type '%s' is not supported by Anthropic "
                                    "models; use json_schema",
                                    type);
        }
    }

    if (sy_provider__true(req, "logprobs"))
        return sy_provider__bad(e, "logprobs", "unsupported_parameter",
                                "logprobs are not supported by Anthropic models");

    size_t ul;
    const char *user = sy_provider__str(req, "safety_identifier", &ul);
    if (user == NULL)
        user = sy_provider__str(req, "user", &ul);
    /* metadata.user_id must be an opaque id: never forward an e-mail address. */
    if (user != NULL && ul > 0 && memchr(user, '@', ul) == NULL) {
        json_object *md = json_object_new_object();
        if ((rc = sy_provider__add(body, "metadata", md)) < 0 ||
            (rc = sy_provider__add(md, "user_id", json_object_new_string_len(user, (int)ul))) < 0)
            return rc;
    }

    if (sy_provider__true(req, "stream")) {
        out->stream = true;
        if ((rc = sy_provider__add(body, "stream", json_object_new_boolean(1))) < 0)
            return rc;
        out->include_usage =
            sy_provider__true(json_object_object_get(req, "stream_options"), "include_usage");
    }
    return 0;
}

static int build_request(const sy_provider_target_t *t, json_object *req,
                         sy_provider_request_t *out, sy_provider_error_t *e)
{
    int rc = sy_provider__check_request(t, req, 1, "Anthropic", e);
    if (rc < 0)
        return rc;
    json_object *body = json_object_new_object();
    if (body == NULL)
        return SY_ENOMEM;
    sy_provider_request_t r;
    sy_provider_request_init(&r);
    if ((rc = sy_provider__add(
             body, "model",
             json_object_new_string_len(t->upstream_model.ptr ? t->upstream_model.ptr : "",
                                        (int)t->upstream_model.len))) < 0 ||
        (rc = convert_params(t, req, body, &r, e)) < 0 ||
        (rc = convert_messages(json_object_object_get(req, "messages"), body, e)) < 0 ||
        (rc = convert_tools(req, body, e)) < 0)
        goto fail;
    if ((rc = sy_provider__append_json(&r.body, body)) < 0 ||
        (rc = sy_buf_append_str(&r.path, "/v1/messages")) < 0 ||
        (rc = sy_provider__header(&r, "anthropic-version", SY_STR(ANTHROPIC_VERSION))) < 0)
        goto fail;
    if (t->api_key.len > 0 && (rc = sy_provider__header(&r, "x-api-key", t->api_key)) < 0)
        goto fail;
    json_object_put(body);
    *out = r;
    return 0;
fail:
    json_object_put(body);
    sy_provider_request_free(&r);
    return rc;
}

/* --- responses ------------------------------------------------------------------ */

static const char *map_stop(const char *r)
{
    if (r == NULL)
        return "stop";
    if (strcmp(r, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(r, "max_tokens") == 0 || strcmp(r, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(r, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, unknown */
}

/* Merges the usage fields present in u into *out; prompt is recomputed from
 * the parts because Anthropic's input_tokens excludes cached tokens. */
static void merge_usage(json_object *u, sy_provider_usage_t *out)
{
    uint64_t in = out->prompt_tokens - out->cached_tokens - out->cache_write_tokens, x;
    if (sy_provider__u64(u, "input_tokens", &x))
        in = x;
    if (sy_provider__u64(u, "cache_read_input_tokens", &x))
        out->cached_tokens = x;
    if (sy_provider__u64(u, "cache_creation_input_tokens", &x))
        out->cache_write_tokens = x;
    if (sy_provider__u64(u, "output_tokens", &x))
        out->completion_tokens = x;
    if (sy_provider__u64(json_object_object_get(u, "output_tokens_details"), "thinking_tokens", &x))
        out->reasoning_tokens = x;
    out->prompt_tokens = in + out->cached_tokens + out->cache_write_tokens;
    out->total_tokens = out->prompt_tokens + out->completion_tokens;
    out->present = true;
    out->has_cache_write = true;
}

static int extract_usage(json_object *resp, sy_provider_usage_t *usage)
{
    json_object *u = json_object_object_get(resp, "usage");
    if (u == NULL)
        u = json_object_object_get(json_object_object_get(resp, "message"), "usage");
    if (u == NULL || !json_object_is_type(u, json_type_object))
        return SY_ENOENT;
    merge_usage(u, usage);
    return 0;
}

static int parse_response(const sy_provider_resp_opts_t *o, sy_json_parser_t *p, const char *body,
                          size_t len, sy_buf_t *out, sy_provider_usage_t *usage,
                          sy_provider_error_t *e)
{
    json_object *r = NULL;
    int rc = sy_provider__parse_upstream(p, body, len, "Anthropic", &r, e);
    if (rc < 0)
        return rc;
    json_object *content = json_object_object_get(r, "content");
    size_t idl;
    const char *id = sy_provider__str(r, "id", &idl);
    if (!json_object_is_type(r, json_type_object) || content == NULL ||
        !json_object_is_type(content, json_type_array) || id == NULL) {
        json_object_put(r);
        return sy_provider__invalid_response(e, "Anthropic", "no id or content");
    }
    sy_provider_usage_t u = {0};
    extract_usage(r, &u);
    size_t start = out->len;
    sy_buf_t text;
    sy_buf_init(&text);
    size_t n = json_object_array_length(content), ncalls = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = sy_provider__str(b, "type", NULL);
        size_t tl;
        const char *t = sy_provider__str(b, "text", &tl);
        if (type != NULL && strcmp(type, "text") == 0 && t != NULL &&
            (rc = sy_buf_append(&text, t, tl)) < 0)
            goto out;
    }
    sy_buf_t idb;
    sy_buf_init(&idb);
    if ((rc = sy_buf_append(&idb, "chatcmpl-", 9)) < 0 || (rc = sy_buf_append(&idb, id, idl)) < 0 ||
        (rc = sy_buf_append_str(out, "{\"id\":")) < 0 ||
        (rc = sy_buf_append_json_string(out, idb.data, idb.len)) < 0) {
        sy_buf_free(&idb);
        goto out;
    }
    sy_buf_free(&idb);
    if ((rc = sy_buf_appendf(out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                             (long long)o->created)) < 0 ||
        (rc = sy_buf_append_json_string(out, o->public_model.ptr ? o->public_model.ptr : "",
                                        o->public_model.len)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                     "\"assistant\",\"content\":")) < 0)
        goto out;
    if (text.len > 0)
        rc = sy_buf_append_json_string(out, text.data, text.len);
    else
        rc = sy_buf_append(out, "null", 4);
    if (rc < 0 || (rc = sy_buf_append_str(out, ",\"refusal\":null")) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = sy_provider__str(b, "type", NULL);
        if (type == NULL || strcmp(type, "tool_use") != 0)
            continue;
        size_t cl, nl;
        const char *cid = sy_provider__str(b, "id", &cl);
        const char *name = sy_provider__str(b, "name", &nl);
        json_object *input = json_object_object_get(b, "input");
        if (cid == NULL || name == NULL) {
            rc = sy_provider__invalid_response(e, "Anthropic", "tool_use block without id or name");
            goto out;
        }
        if ((rc = sy_buf_append_str(out, ncalls == 0 ? ",\"tool_calls\":[{\"id\":" : ",{\"id\":")) <
                0 ||
            (rc = sy_buf_append_json_string(out, cid, cl)) < 0 ||
            (rc = sy_buf_append_str(out, ",\"type\":\"function\",\"function\":{\"name\":")) < 0 ||
            (rc = sy_buf_append_json_string(out, name, nl)) < 0 ||
            (rc = sy_buf_append_str(out, ",\"arguments\":")) < 0)
            goto out;
        sy_buf_reset(&text);
        if (input == NULL ||
            (json_object_is_type(input, json_type_object) && json_object_object_length(input) == 0))
            rc = sy_buf_append(&text, "{}", 2);
        else
            rc = sy_provider__append_json(&text, input);
        if (rc < 0 || (rc = sy_buf_append_json_string(out, text.data, text.len)) < 0 ||
            (rc = sy_buf_append(out, "}}", 2)) < 0)
            goto out;
        ncalls++;
    }
    if (ncalls > 0 && (rc = sy_buf_append(out, "]", 1)) < 0)
        goto out;
    if ((rc = sy_buf_appendf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":",
                             map_stop(sy_provider__str(r, "stop_reason", NULL)))) < 0 ||
        (rc = sy_provider_usage_write(&u, out)) < 0 || (rc = sy_buf_append(out, "}", 1)) < 0)
        goto out;
    *usage = u;
    rc = 0;
out:
    if (rc < 0)
        out->len = start;
    sy_buf_free(&text);
    json_object_put(r);
    return rc;
}

/* --- errors --------------------------------------------------------------------- */

/* Anthropic error types as constants (error.type is open-ended upstream). */
static const char *error_type_const(const char *t)
{
    static const char *const known[] = {
        "invalid_request_error", "authentication_error", "billing_error",    "permission_error",
        "not_found_error",       "request_too_large",    "rate_limit_error", "api_error",
        "timeout_error",         "overloaded_error",
    };
    for (size_t i = 0; t != NULL && i < SY_ARRAY_LEN(known); i++)
        if (strcmp(t, known[i]) == 0)
            return known[i];
    return "api_error";
}

static void map_error(int status, const char *body, size_t len, sy_provider_error_t *e)
{
    json_object *r = NULL;
    size_t ml = 0;
    const char *msg = NULL;
    if (body != NULL && len > 0 && sy_json_parse_once(body, len, &r, NULL) == 0)
        msg = sy_provider__str(json_object_object_get(r, "error"), "message", &ml);
    sy_provider__error_from_status(e, status, msg, ml);
    json_object_put(r);
}

/* --- streaming ------------------------------------------------------------------ */

/* The role chunk goes out with the first thing to say, not at message_start:
 * a stream that fails before any content has sent nothing, so the request
 * path can still fail over to another target invisibly. */
static int ensure_started(sy_provider_stream_t *s, sy_buf_t *out)
{
    if (s->started)
        return 0;
    s->started = true;
    static const char role[] = "{\"role\":\"assistant\",\"content\":\"\"}";
    return sy_provider__chunk(s, out, 0, role, sizeof(role) - 1, NULL);
}

static int emit_text(sy_provider_stream_t *s, sy_buf_t *out, const char *text, size_t len)
{
    int rc;
    if ((rc = ensure_started(s, out)) < 0)
        return rc;
    sy_buf_reset(&s->scratch);
    if ((rc = sy_buf_append(&s->scratch, "{\"content\":", 11)) < 0 ||
        (rc = sy_buf_append_json_string(&s->scratch, text, len)) < 0 ||
        (rc = sy_buf_append(&s->scratch, "}", 1)) < 0)
        return rc;
    return sy_provider__chunk(s, out, 0, s->scratch.data, s->scratch.len, NULL);
}

static int emit_args(sy_provider_stream_t *s, sy_buf_t *out, int tool_index, const char *args,
                     size_t len)
{
    int rc;
    if ((rc = ensure_started(s, out)) < 0)
        return rc;
    sy_buf_reset(&s->scratch);
    if ((rc = sy_buf_appendf(
             &s->scratch,
             "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", tool_index)) < 0 ||
        (rc = sy_buf_append_json_string(&s->scratch, args, len)) < 0 ||
        (rc = sy_buf_append(&s->scratch, "}}]}", 4)) < 0)
        return rc;
    return sy_provider__chunk(s, out, 0, s->scratch.data, s->scratch.len, NULL);
}

static int block_index(json_object *ev)
{
    uint64_t i;
    if (!sy_provider__u64(ev, "index", &i) || i >= SY_PROVIDER_MAX_TOOLS)
        return -1;
    return (int)i;
}

static int on_block_start(sy_provider_stream_t *s, json_object *ev, sy_buf_t *out)
{
    int bi = block_index(ev), rc;
    json_object *cb = json_object_object_get(ev, "content_block");
    const char *type = sy_provider__str(cb, "type", NULL);
    if (bi < 0 || type == NULL)
        return 0;
    while (s->n_blocks <= bi)
        s->blocks[s->n_blocks++] = (sy_provider_block_t){.tool_index = -1};
    s->blocks[bi] = (sy_provider_block_t){.tool_index = -1};
    if (strcmp(type, "text") == 0) {
        size_t len;
        const char *text = sy_provider__str(cb, "text", &len);
        return text != NULL && len > 0 ? emit_text(s, out, text, len) : 0;
    }
    if (strcmp(type, "tool_use") != 0)
        return 0; /* thinking and server-tool blocks have no OpenAI slot */
    size_t il, nl;
    const char *id = sy_provider__str(cb, "id", &il);
    const char *name = sy_provider__str(cb, "name", &nl);
    if (id == NULL || name == NULL)
        return 0;
    if ((rc = ensure_started(s, out)) < 0)
        return rc;
    s->tool_count++;
    s->blocks[bi].tool_index = (int16_t)s->tool_count;
    sy_buf_reset(&s->scratch);
    if ((rc = sy_buf_appendf(&s->scratch,
                             "{\"tool_calls\":[{\"index\":%d,\"id\":", s->tool_count)) < 0 ||
        (rc = sy_buf_append_json_string(&s->scratch, id, il)) < 0 ||
        (rc = sy_buf_append_str(&s->scratch, ",\"type\":\"function\",\"function\":{\"name\":")) <
            0 ||
        (rc = sy_buf_append_json_string(&s->scratch, name, nl)) < 0 ||
        (rc = sy_buf_append_str(&s->scratch, ",\"arguments\":\"\"}}]}")) < 0)
        return rc;
    return sy_provider__chunk(s, out, 0, s->scratch.data, s->scratch.len, NULL);
}

static int on_block_delta(sy_provider_stream_t *s, json_object *ev, sy_buf_t *out)
{
    int bi = block_index(ev);
    json_object *d = json_object_object_get(ev, "delta");
    const char *type = sy_provider__str(d, "type", NULL);
    size_t len;
    if (type == NULL)
        return 0;
    if (strcmp(type, "text_delta") == 0) {
        const char *text = sy_provider__str(d, "text", &len);
        return text != NULL && len > 0 ? emit_text(s, out, text, len) : 0;
    }
    if (strcmp(type, "input_json_delta") == 0 && bi >= 0 && bi < s->n_blocks &&
        s->blocks[bi].tool_index >= 0) {
        const char *pj = sy_provider__str(d, "partial_json", &len);
        if (pj == NULL || len == 0)
            return 0;
        s->blocks[bi].got_args = true;
        return emit_args(s, out, s->blocks[bi].tool_index, pj, len);
    }
    return 0; /* thinking, signature, citations */
}

/* content_block_delta is most of a stream: it is translated from a scan of
 * its bytes, copying the text or argument string verbatim (no tree, no
 * unescape/escape). Returns 1 when the event needs the full parser. */
static int fast_delta(sy_provider_stream_t *s, sy_str_t data, sy_buf_t *out)
{
    sy_str_t doc, key, val, type = SY_STR_NULL, index = SY_STR_NULL, delta = SY_STR_NULL;
    sy_str_t dtype = SY_STR_NULL, text = SY_STR_NULL, pj = SY_STR_NULL;
    sy_jscan_t it;
    int r, rc;
    if (s->prefix.len == 0 || !sy_jscan_begin_doc(&it, data.ptr, data.len))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "type"))
            type = val;
        else if (sy_jscan_key_is(key, "index"))
            index = val;
        else if (sy_jscan_key_is(key, "delta"))
            delta = val;
    }
    if (r < 0 || !sy_jscan_end_doc(&it, &doc) || !sy_jscan_str_is(type, "content_block_delta") ||
        !sy_jscan_begin(&it, delta, true))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "type"))
            dtype = val;
        else if (sy_jscan_key_is(key, "text"))
            text = val;
        else if (sy_jscan_key_is(key, "partial_json"))
            pj = val;
    }
    if (r < 0)
        return 1;
    sy_buf_reset(&s->scratch);
    if (sy_jscan_str_is(dtype, "text_delta")) {
        if (text.len < 2 || text.ptr[0] != '"')
            return 1;
        if (text.len == 2)
            return 0; /* "" */
        if ((rc = ensure_started(s, out)) < 0)
            return rc;
        sy_buf_reset(&s->scratch);
        if ((rc = sy_buf_append(&s->scratch, "{\"content\":", 11)) < 0 ||
            (rc = sy_buf_append(&s->scratch, text.ptr, text.len)) < 0 ||
            (rc = sy_buf_append(&s->scratch, "}", 1)) < 0)
            return rc;
        return sy_provider__chunk(s, out, 0, s->scratch.data, s->scratch.len, NULL);
    }
    if (sy_jscan_str_is(dtype, "input_json_delta")) {
        uint64_t bi;
        if (pj.len < 2 || pj.ptr[0] != '"')
            return 1;
        if (!sy_jscan_u64(index, &bi) || bi >= (uint64_t)s->n_blocks ||
            s->blocks[bi].tool_index < 0 || pj.len == 2)
            return 0;
        s->blocks[bi].got_args = true;
        if ((rc = ensure_started(s, out)) < 0)
            return rc;
        sy_buf_reset(&s->scratch);
        if ((rc = sy_buf_appendf(&s->scratch,
                                 "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":",
                                 s->blocks[bi].tool_index)) < 0 ||
            (rc = sy_buf_append(&s->scratch, pj.ptr, pj.len)) < 0 ||
            (rc = sy_buf_append(&s->scratch, "}}]}", 4)) < 0)
            return rc;
        return sy_provider__chunk(s, out, 0, s->scratch.data, s->scratch.len, NULL);
    }
    return dtype.len > 0 && dtype.ptr[0] == '"' ? 0 : 1; /* thinking, signature, citations */
}

static int stream_event(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out)
{
    json_object *o = NULL;
    int rc;
    if (sy_str_eq_cstr(ev->event, "ping"))
        return 0; /* keep-alive, no need to parse it */
    if (sy_str_eq_cstr(ev->event, "content_block_delta") &&
        (rc = fast_delta(s, ev->data, out)) != 1)
        return rc;
    if ((rc = sy_provider__parse_event(s, ev, out, &o)) < 0)
        return rc == SY_EINVAL ? 0 : rc;
    const char *type = sy_provider__str(o, "type", NULL);
    if (type == NULL) {
        rc = 0;
    } else if (strcmp(type, "message_start") == 0) {
        json_object *m = json_object_object_get(o, "message");
        size_t il;
        const char *id = sy_provider__str(m, "id", &il);
        extract_usage(o, &s->usage);
        rc = 0;
        if (id != NULL && !s->started)
            rc = sy_provider__stream_set_id(s, id, il);
    } else if (strcmp(type, "content_block_start") == 0) {
        rc = on_block_start(s, o, out);
    } else if (strcmp(type, "content_block_delta") == 0) {
        rc = on_block_delta(s, o, out);
    } else if (strcmp(type, "content_block_stop") == 0) {
        int bi = block_index(o);
        rc = 0;
        if (bi >= 0 && bi < s->n_blocks && s->blocks[bi].tool_index >= 0 &&
            !s->blocks[bi].got_args) {
            /* A call without arguments still needs valid JSON for the client. */
            s->blocks[bi].got_args = true;
            rc = emit_args(s, out, s->blocks[bi].tool_index, "{}", 2);
        }
    } else if (strcmp(type, "message_delta") == 0) {
        extract_usage(o, &s->usage);
        const char *sr = sy_provider__str(json_object_object_get(o, "delta"), "stop_reason", NULL);
        rc = 0;
        if (sr != NULL && !s->finished) {
            s->finished = true;
            s->finish_reason = map_stop(sr);
            if ((rc = ensure_started(s, out)) == 0)
                rc = sy_provider__chunk(s, out, 0, "{}", 2, s->finish_reason);
        }
    } else if (strcmp(type, "message_stop") == 0) {
        rc = 0;
        if (!s->finished) {
            s->finished = true;
            s->finish_reason = "stop";
            if ((rc = ensure_started(s, out)) == 0)
                rc = sy_provider__chunk(s, out, 0, "{}", 2, s->finish_reason);
        }
        if (rc == 0)
            rc = sy_provider__stream_close(s, out);
    } else if (strcmp(type, "error") == 0) {
        json_object *err = json_object_object_get(o, "error");
        size_t ml;
        const char *msg = sy_provider__str(err, "message", &ml);
        const char *et = error_type_const(sy_provider__str(err, "type", NULL));
        int status = strcmp(et, "overloaded_error") == 0   ? 503
                     : strcmp(et, "rate_limit_error") == 0 ? 429
                     : strcmp(et, "api_error") == 0        ? 500
                                                           : 502;
        sy_provider_error_set(&s->error, status, et, NULL, NULL, SY_CAUSE_PROVIDER, "%.*s",
                              (int)(msg ? ml : 14), msg ? msg : "upstream error");
        s->error.retryable = status != 502;
        rc = sy_provider_stream_fail(s, &s->error, out);
    } else {
        rc = 0; /* unknown event types are reserved for the future: ignore */
    }
    json_object_put(o);
    return rc;
}

static int stream_end(sy_provider_stream_t *s, sy_buf_t *out)
{
    if (s->done)
        return 0;
    if (s->finished)
        return sy_provider__stream_close(s, out); /* message_stop lost, content complete */
    return sy_provider__stream_truncated(s, out, "the Anthropic stream ended before message_stop");
}

const sy_provider_ops_t sy_provider_anthropic = {
    .name = "anthropic",
    .build_request = build_request,
    .parse_response = parse_response,
    .stream_begin = NULL,
    .stream_event = stream_event,
    .stream_end = stream_end,
    .map_error = map_error,
    .extract_usage = extract_usage,
};
