/* Google Gemini (Generative Language API v1beta) adapter (REFERENCE.md §4, §5). */
#include "dataplane/providers/provider.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "jscan.h"

/* Gemini has no tool-call ids; the gateway invents them. A call that carries a
 * thought signature gets it appended after this separator (LiteLLM's scheme),
 * so a stateless client sends it back and it can be re-attached. */
#define THOUGHT_SEP "__thought__"

/* --- request ------------------------------------------------------------------ */

static json_object *text_part(const char *text, size_t len)
{
    json_object *p = json_object_new_object();
    if (p != NULL && sy_provider__add(p, "text", json_object_new_string_len(text, (int)len)) < 0) {
        json_object_put(p);
        return NULL;
    }
    return p;
}

static int add_part(json_object *parts, json_object *p)
{
    if (p == NULL)
        return SY_ENOMEM;
    if (json_object_array_add(parts, p) != 0) {
        json_object_put(p);
        return SY_ENOMEM;
    }
    return 0;
}

static const char *mime_from_url(const char *url, size_t len)
{
    static const struct {
        const char *ext;
        const char *mime;
    } map[] = {{".png", "image/png"},      {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
               {".gif", "image/gif"},      {".webp", "image/webp"}, {".heic", "image/heic"},
               {".pdf", "application/pdf"}};
    const char *q = memchr(url, '?', len);
    size_t end = q ? (size_t)(q - url) : len;
    for (size_t i = 0; i < SY_ARRAY_LEN(map); i++) {
        size_t el = strlen(map[i].ext);
        if (end >= el && strncasecmp(url + end - el, map[i].ext, el) == 0)
            return map[i].mime;
    }
    return "image/jpeg";
}

static int image_part(json_object *part, size_t mi, json_object *parts, sy_provider_error_t *e)
{
    json_object *iu = json_object_object_get(part, "image_url");
    size_t len = 0;
    const char *url;
    if (iu != NULL && json_object_is_type(iu, json_type_string)) {
        url = json_object_get_string(iu);
        len = (size_t)json_object_get_string_len(iu);
    } else {
        url = sy_provider__str(iu, "url", &len);
    }
    if (url == NULL)
        return sy_provider__bad(e, "messages", NULL, "messages[%zu]: image_url.url is missing", mi);
    sy_str_t mime, data;
    json_object *p = json_object_new_object(), *blob = json_object_new_object();
    int rc;
    if (p == NULL || blob == NULL) {
        json_object_put(p);
        json_object_put(blob);
        return SY_ENOMEM;
    }
    if (sy_provider__data_url(url, len, &mime, &data) == 0) {
        rc = sy_provider__add(p, "inlineData", blob);
        if (rc == 0 &&
            (rc = sy_provider__add(blob, "mimeType",
                                   json_object_new_string_len(mime.ptr, (int)mime.len))) == 0)
            rc =
                sy_provider__add(blob, "data", json_object_new_string_len(data.ptr, (int)data.len));
    } else if ((len > 8 && strncmp(url, "https://", 8) == 0) ||
               (len > 7 && strncmp(url, "http://", 7) == 0)) {
        rc = sy_provider__add(p, "fileData", blob);
        if (rc == 0 &&
            (rc = sy_provider__add(blob, "mimeType",
                                   json_object_new_string(mime_from_url(url, len)))) == 0)
            rc = sy_provider__add(blob, "fileUri", json_object_new_string_len(url, (int)len));
    } else {
        json_object_put(p);
        json_object_put(blob);
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu]: image_url.url must be a data: URL with base64 "
                                "data or an http(s) URL",
                                mi);
    }
    if (rc < 0) {
        json_object_put(p);
        return rc;
    }
    return add_part(parts, p);
}

static int user_parts(json_object *content, size_t mi, json_object *parts, sy_provider_error_t *e)
{
    if (content != NULL && json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content) == 0)
            return 0;
        return add_part(parts, text_part(json_object_get_string(content),
                                         (size_t)json_object_get_string_len(content)));
    }
    if (content == NULL || !json_object_is_type(content, json_type_array))
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu].content must be a string or an array of parts", mi);
    size_t n = json_object_array_length(content);
    for (size_t j = 0; j < n; j++) {
        json_object *part = json_object_array_get_idx(content, j);
        const char *type = sy_provider__str(part, "type", NULL);
        int rc;
        if (type != NULL && strcmp(type, "text") == 0) {
            size_t len;
            const char *text = sy_provider__str(part, "text", &len);
            if (text == NULL)
                return sy_provider__bad(e, "messages", NULL,
                                        "messages[%zu].content[%zu].text must be a string", mi, j);
            if (len > 0 && (rc = add_part(parts, text_part(text, len))) < 0)
                return rc;
        } else if (type != NULL && strcmp(type, "image_url") == 0) {
            if ((rc = image_part(part, mi, parts, e)) < 0)
                return rc;
        } else {
            return sy_provider__bad(e, "messages", "unsupported_parameter",
                                    "messages[%zu].content[%zu]: part type '%s' is not supported "
                                    "by Gemini models through this gateway",
                                    mi, j, type ? type : "(none)");
        }
    }
    return 0;
}

static int model_parts(json_object *m, size_t mi, json_object *parts, sy_provider_error_t *e)
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
    if (text.len > 0 && (rc = add_part(parts, text_part(text.data, text.len))) < 0)
        goto out;
    json_object *calls = json_object_object_get(m, "tool_calls");
    size_t n = calls != NULL && json_object_is_type(calls, json_type_array)
                   ? json_object_array_length(calls)
                   : 0;
    for (size_t j = 0; j < n; j++) {
        json_object *c = json_object_array_get_idx(calls, j);
        json_object *fn = json_object_object_get(c, "function");
        size_t nl, al = 0, il = 0;
        const char *name = sy_provider__str(fn, "name", &nl);
        const char *args = sy_provider__str(fn, "arguments", &al);
        const char *id = sy_provider__str(c, "id", &il);
        if (name == NULL) {
            rc = sy_provider__bad(e, "messages", NULL,
                                  "messages[%zu].tool_calls[%zu] needs a function name", mi, j);
            goto out;
        }
        json_object *input = NULL;
        if (args == NULL || al == 0) {
            input = json_object_new_object();
        } else if (sy_json_parse_once(args, al, &input, NULL) < 0 ||
                   !json_object_is_type(input, json_type_object)) {
            json_object_put(input);
            rc = sy_provider__bad(e, "messages", NULL,
                                  "messages[%zu].tool_calls[%zu].function.arguments is not a JSON "
                                  "object",
                                  mi, j);
            goto out;
        }
        json_object *p = json_object_new_object(), *fc = json_object_new_object();
        if ((rc = sy_provider__add(p, "functionCall", fc)) < 0 || (rc = add_part(parts, p)) < 0) {
            json_object_put(input);
            goto out;
        }
        if ((rc = sy_provider__add(fc, "name", json_object_new_string_len(name, (int)nl))) < 0 ||
            (rc = sy_provider__add(fc, "args", input)) < 0)
            goto out;
        /* Re-attach a thought signature smuggled in the id (see THOUGHT_SEP). */
        const char *sig = id ? memmem(id, il, THOUGHT_SEP, sizeof(THOUGHT_SEP) - 1) : NULL;
        if (sig != NULL) {
            sig += sizeof(THOUGHT_SEP) - 1;
            size_t sl = il - (size_t)(sig - id);
            if (sl > 0 && (rc = sy_provider__add(p, "thoughtSignature",
                                                 json_object_new_string_len(sig, (int)sl))) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    sy_buf_free(&text);
    return rc;
}

/* Finds the function name of tool call id in the assistant turns before mi. */
static const char *lookup_call_name(json_object *msgs, size_t mi, const char *id, size_t il,
                                    size_t *nl)
{
    for (size_t k = mi; k-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, k);
        const char *role = sy_provider__str(m, "role", NULL);
        if (strcmp(role, "assistant") != 0)
            continue;
        json_object *calls = json_object_object_get(m, "tool_calls");
        size_t n = calls != NULL && json_object_is_type(calls, json_type_array)
                       ? json_object_array_length(calls)
                       : 0;
        for (size_t j = 0; j < n; j++) {
            json_object *c = json_object_array_get_idx(calls, j);
            size_t cl;
            const char *cid = sy_provider__str(c, "id", &cl);
            if (cid != NULL && cl == il && memcmp(cid, id, il) == 0)
                return sy_provider__str(json_object_object_get(c, "function"), "name", nl);
        }
    }
    return NULL;
}

static int function_response(json_object *msgs, size_t mi, json_object *parts,
                             sy_provider_error_t *e)
{
    json_object *m = json_object_array_get_idx(msgs, mi);
    size_t il, nl;
    const char *id = sy_provider__str(m, "tool_call_id", &il);
    if (id == NULL)
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu]: a tool message needs a string tool_call_id", mi);
    const char *name = lookup_call_name(msgs, mi, id, il, &nl);
    if (name == NULL)
        return sy_provider__bad(e, "messages", NULL,
                                "messages[%zu]: tool_call_id '%.*s' matches no earlier assistant "
                                "tool call (Gemini needs the function name)",
                                mi, (int)(il > 64 ? 64 : il), id);
    sy_buf_t text;
    bool ok;
    sy_buf_init(&text);
    int rc = sy_provider__text_content(json_object_object_get(m, "content"), &text, &ok);
    if (rc == 0 && !ok)
        rc = sy_provider__bad(e, "messages", NULL,
                              "messages[%zu].content must be a string or text parts", mi);
    json_object *resp = NULL;
    if (rc == 0) {
        /* response must be an object: the result itself when it is one, else wrapped. */
        if (text.len == 0 || sy_json_parse_once(text.data, text.len, &resp, NULL) < 0 ||
            !json_object_is_type(resp, json_type_object)) {
            json_object_put(resp);
            resp = json_object_new_object();
            if (resp == NULL || sy_provider__add(resp, "content",
                                                 json_object_new_string_len(
                                                     text.len ? text.data : "", (int)text.len)) < 0)
                rc = SY_ENOMEM;
        }
    }
    sy_buf_free(&text);
    if (rc < 0) {
        json_object_put(resp);
        return rc;
    }
    json_object *p = json_object_new_object(), *fr = json_object_new_object();
    if ((rc = sy_provider__add(p, "functionResponse", fr)) < 0 || (rc = add_part(parts, p)) < 0) {
        json_object_put(resp);
        return rc;
    }
    if ((rc = sy_provider__add(fr, "name", json_object_new_string_len(name, (int)nl))) < 0)
        return rc;
    return sy_provider__add(fr, "response", resp);
}

static int convert_messages(json_object *msgs, json_object *body, sy_provider_error_t *e)
{
    int rc = 0;
    json_object *contents = json_object_new_array(), *sys = json_object_new_array();
    if (contents == NULL || sys == NULL) {
        json_object_put(contents);
        json_object_put(sys);
        return SY_ENOMEM;
    }
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = sy_provider__str(m, "role", NULL);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            sy_buf_t text;
            bool ok;
            sy_buf_init(&text);
            rc = sy_provider__text_content(json_object_object_get(m, "content"), &text, &ok);
            if (rc == 0 && !ok)
                rc = sy_provider__bad(e, "messages", NULL,
                                      "messages[%zu].content must be a string or text parts", i);
            if (rc == 0 && text.len > 0)
                rc = add_part(sys, text_part(text.data, text.len));
            sy_buf_free(&text);
            continue;
        }
        json_object *parts = json_object_new_array();
        if (parts == NULL) {
            rc = SY_ENOMEM;
            break;
        }
        const char *crole = "user";
        if (strcmp(role, "user") == 0) {
            rc = user_parts(json_object_object_get(m, "content"), i, parts, e);
        } else if (strcmp(role, "assistant") == 0) {
            crole = "model";
            rc = model_parts(m, i, parts, e);
        } else if (strcmp(role, "tool") == 0) {
            rc = function_response(msgs, i, parts, e);
        } else {
            rc = sy_provider__bad(e, "messages", NULL,
                                  "messages[%zu]: role '%s' is not supported by Gemini models", i,
                                  role);
        }
        if (rc < 0) {
            json_object_put(parts);
            break;
        }
        rc = sy_provider__add_turn(contents, crole, "parts", parts);
    }
    if (rc == 0 && json_object_array_length(contents) == 0)
        rc = sy_provider__bad(e, "messages", NULL,
                              "messages must contain at least one non-empty user or assistant "
                              "message");
    if (rc == 0 && json_object_array_length(sys) > 0) {
        json_object *si = json_object_new_object();
        rc = sy_provider__add(body, "systemInstruction", si);
        if (rc == 0) {
            rc = sy_provider__add(si, "parts", sys);
            sys = NULL;
        }
    }
    if (rc == 0) {
        rc = sy_provider__add(body, "contents", contents);
        contents = NULL;
    }
    json_object_put(sys);
    json_object_put(contents);
    return rc;
}

/* Gemini's `parameters` takes an OpenAPI 3.0 subset: drop the JSON Schema
 * keywords it rejects, recursively. */
static void strip_schema(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            strip_schema(json_object_array_get_idx(o, i));
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_del(o, "additionalProperties");
    json_object_object_del(o, "$schema");
    json_object_object_del(o, "strict");
    json_object_object_foreach(o, key, val)
    {
        (void)key;
        strip_schema(val);
    }
}

/* tool_choice as Gemini's toolConfig.functionCallingConfig. */
static int convert_tool_config(json_object *req, json_object *body, sy_provider_error_t *e)
{
    int rc;
    json_object *tc = json_object_object_get(req, "tool_choice");
    if (tc == NULL || json_object_is_type(tc, json_type_null))
        return 0;
    const char *mode = NULL;
    json_object *allowed = NULL;
    if (json_object_is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        mode = strcmp(s, "auto") == 0       ? "AUTO"
               : strcmp(s, "none") == 0     ? "NONE"
               : strcmp(s, "required") == 0 ? "ANY"
                                            : NULL;
    } else if (json_object_is_type(tc, json_type_object)) {
        const char *t = sy_provider__str(tc, "type", NULL);
        if (t != NULL && strcmp(t, "function") == 0) {
            size_t nl;
            const char *name =
                sy_provider__str(json_object_object_get(tc, "function"), "name", &nl);
            if (name != NULL) {
                mode = "ANY";
                allowed = json_object_new_array();
                if ((rc = add_part(allowed, json_object_new_string_len(name, (int)nl))) < 0) {
                    json_object_put(allowed);
                    return rc;
                }
            }
        } else if (t != NULL && strcmp(t, "allowed_tools") == 0) {
            json_object *at = json_object_object_get(tc, "allowed_tools");
            const char *m = sy_provider__str(at, "mode", NULL);
            json_object *list = json_object_object_get(at, "tools");
            mode = m == NULL                    ? NULL
                   : strcmp(m, "auto") == 0     ? "AUTO"
                   : strcmp(m, "required") == 0 ? "ANY"
                                                : NULL;
            if (mode != NULL && list != NULL && json_object_is_type(list, json_type_array)) {
                allowed = json_object_new_array();
                size_t nt = json_object_array_length(list);
                for (size_t i = 0; i < nt; i++) {
                    size_t nl;
                    const char *name = sy_provider__str(
                        json_object_object_get(json_object_array_get_idx(list, i), "function"),
                        "name", &nl);
                    if (name != NULL &&
                        (rc = add_part(allowed, json_object_new_string_len(name, (int)nl))) < 0) {
                        json_object_put(allowed);
                        return rc;
                    }
                }
            }
        }
    }
    if (mode == NULL) {
        json_object_put(allowed);
        return sy_provider__bad(e, "tool_choice", "unsupported_parameter",
                                "tool_choice must be \"auto\", \"none\", \"required\", a function "
                                "or allowed_tools for Gemini models");
    }
    json_object *cfg = json_object_new_object(), *fcc = json_object_new_object();
    if ((rc = sy_provider__add(body, "toolConfig", cfg)) < 0) {
        json_object_put(fcc);
        json_object_put(allowed);
        return rc;
    }
    if ((rc = sy_provider__add(cfg, "functionCallingConfig", fcc)) < 0 ||
        (rc = sy_provider__add(fcc, "mode", json_object_new_string(mode))) < 0) {
        json_object_put(allowed);
        return rc;
    }
    return allowed != NULL ? sy_provider__add(fcc, "allowedFunctionNames", allowed) : 0;
}

static int convert_tools(json_object *req, json_object *body, sy_provider_error_t *e)
{
    json_object *tools = NULL;
    size_t n;
    int rc = sy_provider__tools(req, &tools, &n, e);
    if (rc < 0 || n == 0)
        return rc;
    json_object *wrap = json_object_new_array(), *tool = json_object_new_object(),
                *decls = json_object_new_array();
    if ((rc = sy_provider__add(body, "tools", wrap)) < 0) {
        json_object_put(tool);
        json_object_put(decls);
        return rc;
    }
    if ((rc = add_part(wrap, tool)) < 0) {
        json_object_put(decls);
        return rc;
    }
    if ((rc = sy_provider__add(tool, "functionDeclarations", decls)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        json_object *fn;
        sy_str_t name;
        size_t dl;
        if ((rc = sy_provider__tool_function(json_object_array_get_idx(tools, i), i, "Gemini", &fn,
                                             &name, e)) < 0)
            return rc;
        json_object *d = json_object_new_object();
        if ((rc = add_part(decls, d)) < 0 ||
            (rc = sy_provider__add(d, "name",
                                   json_object_new_string_len(name.ptr, (int)name.len))) < 0)
            return rc;
        const char *desc = sy_provider__str(fn, "description", &dl);
        if (desc != NULL && (rc = sy_provider__add(d, "description",
                                                   json_object_new_string_len(desc, (int)dl))) < 0)
            return rc;
        json_object *params = json_object_object_get(fn, "parameters");
        if (params != NULL && json_object_is_type(params, json_type_object)) {
            json_object *copy = NULL;
            if (json_object_deep_copy(params, &copy, NULL) != 0)
                return SY_ENOMEM;
            strip_schema(copy);
            if ((rc = sy_provider__add(d, "parameters", copy)) < 0)
                return rc;
        } else if (params != NULL && !json_object_is_type(params, json_type_null)) {
            return sy_provider__bad(e, "tools", NULL,
                                    "tools[%zu].function.parameters must be an object", i);
        }
    }
    return convert_tool_config(req, body, e);
}

/* Copies a numeric member into gc under another name (type preserved). */
static int copy_num(json_object *req, const char *from, json_object *gc, const char *to, double lo,
                    double hi, sy_provider_error_t *e)
{
    double d;
    bool bad;
    if (sy_provider__num(req, from, &d, &bad)) {
        if (d < lo || d > hi)
            return sy_provider__bad(e, from, "unsupported_value",
                                    "'%s' = %g is out of range for Gemini models (%g to %g)", from,
                                    d, lo, hi);
        return sy_provider__add(gc, to, json_object_get(json_object_object_get(req, from)));
    }
    return bad ? sy_provider__bad(e, from, NULL, "'%s' must be a number", from) : 0;
}

static int convert_params(json_object *req, json_object *body, sy_provider_request_t *out,
                          sy_provider_error_t *e)
{
    json_object *gc = json_object_new_object(), *v;
    int rc;
    if (gc == NULL)
        return SY_ENOMEM;
    if ((rc = copy_num(req, "temperature", gc, "temperature", 0, 2, e)) < 0 ||
        (rc = copy_num(req, "top_p", gc, "topP", 0, 1, e)) < 0)
        goto fail;
    const char *mt_keys[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < SY_ARRAY_LEN(mt_keys); i++) {
        if (!json_object_object_get_ex(req, mt_keys[i], &v) ||
            json_object_is_type(v, json_type_null))
            continue;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
            rc = sy_provider__bad(e, mt_keys[i], NULL, "'%s' must be a positive integer",
                                  mt_keys[i]);
            goto fail;
        }
        if ((rc = sy_provider__add(gc, "maxOutputTokens", json_object_get(v))) < 0)
            goto fail;
        break;
    }
    json_object *stop = json_object_object_get(req, "stop");
    if (stop != NULL && json_object_is_type(stop, json_type_string)) {
        json_object *a = json_object_new_array();
        if ((rc = sy_provider__add(gc, "stopSequences", a)) < 0 ||
            (rc = add_part(a, json_object_get(stop))) < 0)
            goto fail;
    } else if (stop != NULL && json_object_is_type(stop, json_type_array)) {
        size_t n = json_object_array_length(stop);
        for (size_t i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(stop, i), json_type_string)) {
                rc = sy_provider__bad(e, "stop", NULL, "'stop' entries must be strings");
                goto fail;
            }
        if (n > 0 && (rc = sy_provider__add(gc, "stopSequences", json_object_get(stop))) < 0)
            goto fail;
    } else if (stop != NULL && !json_object_is_type(stop, json_type_null)) {
        rc = sy_provider__bad(e, "stop", NULL, "'stop' must be a string or an array of strings");
        goto fail;
    }
    if (json_object_object_get_ex(req, "n", &v) && json_object_is_type(v, json_type_int) &&
        (rc = sy_provider__add(gc, "candidateCount", json_object_get(v))) < 0)
        goto fail;
    if (json_object_object_get_ex(req, "seed", &v) && json_object_is_type(v, json_type_int) &&
        (rc = sy_provider__add(gc, "seed", json_object_get(v))) < 0)
        goto fail;
    if ((rc = copy_num(req, "presence_penalty", gc, "presencePenalty", -2, 2, e)) < 0 ||
        (rc = copy_num(req, "frequency_penalty", gc, "frequencyPenalty", -2, 2, e)) < 0)
        goto fail;

    json_object *rf = json_object_object_get(req, "response_format");
    if (rf != NULL && !json_object_is_type(rf, json_type_null)) {
        const char *type = sy_provider__str(rf, "type", NULL);
        if (type == NULL) {
            rc = sy_provider__bad(e, "response_format", NULL, "response_format.type is required");
            goto fail;
        }
        if (strcmp(type, "json_schema") == 0 || strcmp(type, "json_object") == 0) {
            if ((rc = sy_provider__add(gc, "responseMimeType",
                                       json_object_new_string("application/json"))) < 0)
                goto fail;
        }
        if (strcmp(type, "json_schema") == 0) {
            json_object *schema =
                json_object_object_get(json_object_object_get(rf, "json_schema"), "schema");
            if (schema == NULL || !json_object_is_type(schema, json_type_object)) {
                rc = sy_provider__bad(e, "response_format", NULL,
                                      "response_format.json_schema.schema must be an object");
                goto fail;
            }
            if ((rc = sy_provider__add(gc, "responseJsonSchema", json_object_get(schema))) < 0)
                goto fail;
        } else if (strcmp(type, "text") != 0 && strcmp(type, "json_object") != 0) {
            rc = sy_provider__bad(e, "response_format", "unsupported_parameter",
                                  "response_format type '%s' is not supported by Gemini models",
                                  type);
            goto fail;
        }
    }
    if (sy_provider__true(req, "logprobs")) {
        rc = sy_provider__bad(e, "logprobs", "unsupported_parameter",
                              "logprobs are not supported for Gemini models by this gateway");
        goto fail;
    }
    if (sy_provider__true(req, "stream")) {
        out->stream = true;
        out->include_usage =
            sy_provider__true(json_object_object_get(req, "stream_options"), "include_usage");
    }
    if (json_object_object_length(gc) == 0) {
        json_object_put(gc);
        return 0;
    }
    return sy_provider__add(body, "generationConfig", gc);
fail:
    json_object_put(gc);
    return rc;
}

static int build_request(const sy_provider_target_t *t, json_object *req,
                         sy_provider_request_t *out, sy_provider_error_t *e)
{
    int rc = sy_provider__check_request(t, req, SY_PROVIDER_MAX_CHOICES, "Gemini", e);
    if (rc < 0)
        return rc;
    json_object *body = json_object_new_object();
    if (body == NULL)
        return SY_ENOMEM;
    sy_provider_request_t r;
    sy_provider_request_init(&r);
    if ((rc = convert_messages(json_object_object_get(req, "messages"), body, e)) < 0 ||
        (rc = convert_tools(req, body, e)) < 0 || (rc = convert_params(req, body, &r, e)) < 0)
        goto fail;
    if ((rc = sy_provider__append_json(&r.body, body)) < 0 ||
        (rc = sy_buf_append_str(&r.path, "/v1beta/models/")) < 0)
        goto fail;
    /* The model is a path segment: percent-encode anything unusual. */
    for (size_t i = 0; i < t->upstream_model.len; i++) {
        unsigned char c = (unsigned char)t->upstream_model.ptr[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_';
        rc = plain ? sy_buf_append(&r.path, &t->upstream_model.ptr[i], 1)
                   : sy_buf_appendf(&r.path, "%%%02X", c);
        if (rc < 0)
            goto fail;
    }
    if ((rc = sy_buf_append_str(&r.path, r.stream ? ":streamGenerateContent?alt=sse"
                                                  : ":generateContent")) < 0)
        goto fail;
    if (t->api_key.len > 0 && (rc = sy_provider__header(&r, "x-goog-api-key", t->api_key)) < 0)
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

static const char *map_finish(const char *r, bool tool_calls)
{
    if (r == NULL || strcmp(r, "STOP") == 0 || strcmp(r, "FINISH_REASON_UNSPECIFIED") == 0)
        return tool_calls ? "tool_calls" : "stop";
    if (strcmp(r, "MAX_TOKENS") == 0)
        return "length";
    if (strcmp(r, "MALFORMED_FUNCTION_CALL") == 0 || strcmp(r, "UNEXPECTED_TOOL_CALL") == 0 ||
        strcmp(r, "TOO_MANY_TOOL_CALLS") == 0)
        return tool_calls ? "tool_calls" : "stop";
    /* SAFETY, RECITATION, LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, NO_IMAGE, OTHER
     */
    return "content_filter";
}

static int extract_usage(json_object *resp, sy_provider_usage_t *u)
{
    json_object *m = json_object_object_get(resp, "usageMetadata");
    if (m == NULL || !json_object_is_type(m, json_type_object))
        return SY_ENOENT;
    uint64_t prompt = 0, cand = 0, total = 0, cached = 0, thoughts = 0, tool = 0;
    sy_provider__u64(m, "promptTokenCount", &prompt);
    sy_provider__u64(m, "candidatesTokenCount", &cand);
    sy_provider__u64(m, "totalTokenCount", &total);
    sy_provider__u64(m, "cachedContentTokenCount", &cached);
    sy_provider__u64(m, "thoughtsTokenCount", &thoughts);
    sy_provider__u64(m, "toolUsePromptTokenCount", &tool);
    sy_provider_usage_t r = {0};
    r.prompt_tokens = prompt + tool;
    /* candidatesTokenCount excludes thoughts, unless the totals say otherwise. */
    r.completion_tokens = (total != 0 && prompt + tool + cand == total) ? cand : cand + thoughts;
    r.total_tokens = total ? total : r.prompt_tokens + r.completion_tokens;
    r.cached_tokens = cached;
    r.reasoning_tokens = thoughts;
    r.present = true;
    *u = r;
    return 0;
}

/* A stable synthetic id: FNV-1a of the response id, candidate and call number. */
static int append_call_id(sy_buf_t *b, const char *rid, size_t rl, unsigned cand, unsigned n,
                          json_object *part)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < rl; i++)
        h = (h ^ (unsigned char)rid[i]) * 1099511628211ull;
    h = (h ^ cand) * 1099511628211ull;
    h = (h ^ n) * 1099511628211ull;
    json_object *fc = json_object_object_get(part, "functionCall");
    size_t il, sl;
    const char *id = sy_provider__str(fc, "id", &il);
    const char *sig = sy_provider__str(part, "thoughtSignature", &sl);
    int rc;
    sy_buf_t tmp;
    sy_buf_init(&tmp);
    if (id != NULL && il > 0)
        rc = sy_buf_append(&tmp, id, il);
    else
        rc = sy_buf_appendf(&tmp, "call_%016llx", (unsigned long long)h);
    if (rc == 0 && sig != NULL && sl > 0 && ((rc = sy_buf_append_str(&tmp, THOUGHT_SEP)) == 0))
        rc = sy_buf_append(&tmp, sig, sl);
    if (rc == 0)
        rc = sy_buf_append_json_string(b, tmp.data, tmp.len);
    sy_buf_free(&tmp);
    return rc;
}

/* Appends one tool call ({"id","type","function":{...}}) for a functionCall part. */
static int append_call(sy_buf_t *b, sy_buf_t *scratch, const char *rid, size_t rl, unsigned cand,
                       unsigned n, json_object *part)
{
    json_object *fc = json_object_object_get(part, "functionCall");
    size_t nl;
    const char *name = sy_provider__str(fc, "name", &nl);
    json_object *args = json_object_object_get(fc, "args");
    int rc;
    if (name == NULL)
        return SY_EINVAL;
    if ((rc = sy_buf_append_str(b, "\"id\":")) < 0 ||
        (rc = append_call_id(b, rid, rl, cand, n, part)) < 0 ||
        (rc = sy_buf_append_str(b, ",\"type\":\"function\",\"function\":{\"name\":")) < 0 ||
        (rc = sy_buf_append_json_string(b, name, nl)) < 0 ||
        (rc = sy_buf_append_str(b, ",\"arguments\":")) < 0)
        return rc;
    sy_buf_reset(scratch);
    if (args == NULL || json_object_is_type(args, json_type_null) ||
        (json_object_is_type(args, json_type_object) && json_object_object_length(args) == 0))
        rc = sy_buf_append(scratch, "{}", 2);
    else
        rc = sy_provider__append_json(scratch, args);
    if (rc < 0 || (rc = sy_buf_append_json_string(b, scratch->data, scratch->len)) < 0)
        return rc;
    return sy_buf_append(b, "}", 1);
}

static bool is_answer_text(json_object *part, const char **text, size_t *len)
{
    json_object *th = json_object_object_get(part, "thought");
    if (th != NULL && json_object_get_boolean(th))
        return false; /* thought summaries are not answer text */
    *text = sy_provider__str(part, "text", len);
    return *text != NULL;
}

static int parse_response(const sy_provider_resp_opts_t *o, sy_json_parser_t *p, const char *body,
                          size_t len, sy_buf_t *out, sy_provider_usage_t *usage,
                          sy_provider_error_t *e)
{
    json_object *r = NULL;
    int rc = sy_provider__parse_upstream(p, body, len, "Gemini", &r, e);
    if (rc < 0)
        return rc;
    if (!json_object_is_type(r, json_type_object)) {
        json_object_put(r);
        return sy_provider__invalid_response(e, "Gemini", "not a JSON object");
    }
    json_object *cands = json_object_object_get(r, "candidates");
    json_object *pf = json_object_object_get(r, "promptFeedback");
    size_t nc = cands != NULL && json_object_is_type(cands, json_type_array)
                    ? json_object_array_length(cands)
                    : 0;
    if (nc == 0 && sy_provider__str(pf, "blockReason", NULL) == NULL) {
        json_object_put(r);
        return sy_provider__invalid_response(e, "Gemini", "no candidates");
    }
    size_t rl = 0;
    const char *rid = sy_provider__str(r, "responseId", &rl);
    if (rid == NULL)
        rid = "gemini", rl = 6;
    sy_provider_usage_t u = {0};
    extract_usage(r, &u);
    size_t start = out->len;
    sy_buf_t text, scratch;
    sy_buf_init(&text);
    sy_buf_init(&scratch);
    if ((rc = sy_buf_append(&scratch, "chatcmpl-", 9)) < 0 ||
        (rc = sy_buf_append(&scratch, rid, rl)) < 0 ||
        (rc = sy_buf_append_str(out, "{\"id\":")) < 0 ||
        (rc = sy_buf_append_json_string(out, scratch.data, scratch.len)) < 0 ||
        (rc = sy_buf_appendf(out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                             (long long)o->created)) < 0 ||
        (rc = sy_buf_append_json_string(out, o->public_model.ptr ? o->public_model.ptr : "",
                                        o->public_model.len)) < 0 ||
        (rc = sy_buf_append_str(out, ",\"choices\":[")) < 0)
        goto out;
    if (nc == 0) {
        /* The prompt itself was blocked: one empty, filtered choice. */
        rc = sy_buf_append_str(out, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                                    "null,\"refusal\":null},\"logprobs\":null,\"finish_reason\":"
                                    "\"content_filter\"}");
        if (rc < 0)
            goto out;
    }
    for (size_t k = 0; k < nc; k++) {
        json_object *c = json_object_array_get_idx(cands, k);
        json_object *parts = json_object_object_get(json_object_object_get(c, "content"), "parts");
        size_t np = parts != NULL && json_object_is_type(parts, json_type_array)
                        ? json_object_array_length(parts)
                        : 0;
        uint64_t idx = k;
        sy_provider__u64(c, "index", &idx);
        sy_buf_reset(&text);
        for (size_t j = 0; j < np; j++) {
            const char *t;
            size_t tl;
            if (is_answer_text(json_object_array_get_idx(parts, j), &t, &tl) &&
                (rc = sy_buf_append(&text, t, tl)) < 0)
                goto out;
        }
        if ((rc = sy_buf_appendf(out,
                                 "%s{\"index\":%llu,\"message\":{\"role\":\"assistant\","
                                 "\"content\":",
                                 k ? "," : "", (unsigned long long)idx)) < 0)
            goto out;
        rc = text.len ? sy_buf_append_json_string(out, text.data, text.len)
                      : sy_buf_append(out, "null", 4);
        if (rc < 0 || (rc = sy_buf_append_str(out, ",\"refusal\":null")) < 0)
            goto out;
        unsigned ncalls = 0;
        for (size_t j = 0; j < np; j++) {
            json_object *part = json_object_array_get_idx(parts, j);
            if (json_object_object_get(part, "functionCall") == NULL)
                continue;
            if ((rc = sy_buf_append_str(out, ncalls ? ",{" : ",\"tool_calls\":[{")) < 0)
                goto out;
            rc = append_call(out, &scratch, rid, rl, (unsigned)idx, ncalls, part);
            if (rc == SY_EINVAL) {
                rc = sy_provider__invalid_response(e, "Gemini", "functionCall without a name");
                goto out;
            }
            if (rc < 0 || (rc = sy_buf_append(out, "}", 1)) < 0)
                goto out;
            ncalls++;
        }
        if (ncalls && (rc = sy_buf_append(out, "]", 1)) < 0)
            goto out;
        if ((rc = sy_buf_appendf(
                 out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}",
                 map_finish(sy_provider__str(c, "finishReason", NULL), ncalls > 0))) < 0)
            goto out;
    }
    if ((rc = sy_buf_append_str(out, "],\"usage\":")) < 0 ||
        (rc = sy_provider_usage_write(&u, out)) < 0 || (rc = sy_buf_append(out, "}", 1)) < 0)
        goto out;
    *usage = u;
    rc = 0;
out:
    if (rc < 0)
        out->len = start;
    sy_buf_free(&text);
    sy_buf_free(&scratch);
    json_object_put(r);
    return rc;
}

/* --- errors --------------------------------------------------------------------- */

static bool has_reason(json_object *err, const char *reason)
{
    json_object *details = json_object_object_get(err, "details");
    size_t n = details != NULL && json_object_is_type(details, json_type_array)
                   ? json_object_array_length(details)
                   : 0;
    for (size_t i = 0; i < n; i++) {
        const char *r = sy_provider__str(json_object_array_get_idx(details, i), "reason", NULL);
        if (r != NULL && strcmp(r, reason) == 0)
            return true;
    }
    return false;
}

/* RetryInfo.retryDelay ("34s", "34.4s") rounded up, 0 when absent. */
static uint32_t retry_delay(json_object *err)
{
    json_object *details = json_object_object_get(err, "details");
    size_t n = details != NULL && json_object_is_type(details, json_type_array)
                   ? json_object_array_length(details)
                   : 0;
    for (size_t i = 0; i < n; i++) {
        const char *d = sy_provider__str(json_object_array_get_idx(details, i), "retryDelay", NULL);
        if (d == NULL)
            continue;
        char *end = NULL;
        double s = strtod(d, &end);
        if (end != d && s > 0 && s < 86400)
            return (uint32_t)ceil(s);
    }
    return 0;
}

static void map_error_obj(int status, json_object *err, sy_provider_error_t *e)
{
    size_t ml = 0;
    const char *msg = sy_provider__str(err, "message", &ml);
    const char *st = sy_provider__str(err, "status", NULL);
    if (status == 400 && has_reason(err, "API_KEY_INVALID")) {
        /* Gemini reports a bad key as 400; OpenAI clients expect 401. */
        sy_provider__error_from_status(e, 401, msg, ml);
        return;
    }
    sy_provider__error_from_status(e, status, msg, ml);
    if (status == 400 && st != NULL && strcmp(st, "FAILED_PRECONDITION") == 0) {
        /* Billing or region of the gateway's account: not the caller's doing. */
        e->cause = SY_CAUSE_PROVIDER;
        e->retryable = true;
    }
    if (status == 429)
        e->retry_after_s = retry_delay(err);
}

static void map_error(int status, const char *body, size_t len, sy_provider_error_t *e)
{
    json_object *r = NULL;
    if (body != NULL && len > 0 && sy_json_parse_once(body, len, &r, NULL) == 0) {
        json_object *err = json_object_object_get(r, "error");
        /* The non-SSE stream endpoint wraps responses in an array. */
        if (err == NULL && json_object_is_type(r, json_type_array))
            err = json_object_object_get(json_object_array_get_idx(r, 0), "error");
        map_error_obj(status, err, e);
    } else {
        sy_provider__error_from_status(e, status, NULL, 0);
    }
    json_object_put(r);
}

/* --- streaming ------------------------------------------------------------------ */

static int start_choice(sy_provider_stream_t *s, sy_buf_t *out, unsigned idx)
{
    if (s->choices_started & (1u << idx))
        return 0;
    s->choices_started |= 1u << idx;
    static const char role[] = "{\"role\":\"assistant\",\"content\":\"\"}";
    return sy_provider__chunk(s, out, idx, role, sizeof(role) - 1, NULL);
}

static int stream_candidate(sy_provider_stream_t *s, json_object *c, unsigned k, const char *rid,
                            size_t rl, sy_buf_t *out)
{
    uint64_t idx = k;
    int rc;
    sy_provider__u64(c, "index", &idx);
    if (idx >= SY_PROVIDER_MAX_CHOICES)
        return 0;
    if ((rc = start_choice(s, out, (unsigned)idx)) < 0)
        return rc;
    json_object *parts = json_object_object_get(json_object_object_get(c, "content"), "parts");
    size_t np = parts != NULL && json_object_is_type(parts, json_type_array)
                    ? json_object_array_length(parts)
                    : 0;
    for (size_t j = 0; j < np; j++) {
        json_object *part = json_object_array_get_idx(parts, j);
        const char *t;
        size_t tl;
        sy_buf_reset(&s->scratch);
        if (json_object_object_get(part, "functionCall") != NULL) {
            int n = ++s->cand_tools[idx];
            sy_buf_t *b = &s->scratch;
            /* Gemini sends each call whole: one delta with id, name and arguments. */
            sy_buf_t args;
            sy_buf_init(&args);
            rc = sy_buf_appendf(b, "{\"tool_calls\":[{\"index\":%d,", n - 1);
            if (rc == 0)
                rc = append_call(b, &args, rid, rl, (unsigned)idx, (unsigned)(n - 1), part);
            sy_buf_free(&args);
            if (rc == SY_EINVAL)
                continue; /* a call without a name cannot be surfaced */
            if (rc < 0 || (rc = sy_buf_append(b, "}]}", 3)) < 0)
                return rc;
            s->choices_tooled |= 1u << idx;
            if (idx == 0)
                s->tool_count = n - 1;
            if ((rc = sy_provider__chunk(s, out, (unsigned)idx, b->data, b->len, NULL)) < 0)
                return rc;
        } else if (is_answer_text(part, &t, &tl) && tl > 0) {
            if ((rc = sy_buf_append(&s->scratch, "{\"content\":", 11)) < 0 ||
                (rc = sy_buf_append_json_string(&s->scratch, t, tl)) < 0 ||
                (rc = sy_buf_append(&s->scratch, "}", 1)) < 0 ||
                (rc = sy_provider__chunk(s, out, (unsigned)idx, s->scratch.data, s->scratch.len,
                                         NULL)) < 0)
                return rc;
        }
    }
    const char *fr = sy_provider__str(c, "finishReason", NULL);
    if (fr != NULL && !(s->choices_finished & (1u << idx))) {
        s->choices_finished |= 1u << idx;
        s->finish_reason = map_finish(fr, (s->choices_tooled & (1u << idx)) != 0);
        if ((rc = sy_provider__chunk(s, out, (unsigned)idx, "{}", 2, s->finish_reason)) < 0)
            return rc;
    }
    return 0;
}

static bool is_null(sy_str_t v)
{
    return v.len == 4 && memcmp(v.ptr, "null", 4) == 0;
}

/* Checks one candidate for the fast path (text parts only) and finds its
 * parts, index and finishReason. */
static bool fast_candidate(sy_str_t cand, sy_str_t *parts, uint64_t *idx, sy_str_t *finish)
{
    sy_jscan_t it, pi, fi;
    sy_str_t key, val, content = SY_STR_NULL;
    int r;
    *parts = SY_STR_NULL;
    *finish = SY_STR_NULL;
    if (!sy_jscan_begin(&it, cand, true))
        return false;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "content"))
            content = val;
        else if (sy_jscan_key_is(key, "finishReason"))
            *finish = val;
        else if (sy_jscan_key_is(key, "index") && !sy_jscan_u64(val, idx))
            return false;
    }
    if (r < 0 || *idx >= SY_PROVIDER_MAX_CHOICES)
        return false;
    if (finish->len > 0 && (finish->ptr[0] != '"' || finish->len > 40 ||
                            memchr(finish->ptr, '\\', finish->len) != NULL))
        return false;
    if (content.len == 0)
        return true;
    if (!sy_jscan_begin(&it, content, true))
        return false;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1)
        if (sy_jscan_key_is(key, "parts"))
            *parts = val;
    if (r < 0 || parts->len == 0)
        return r == 0;
    if (!sy_jscan_begin(&pi, *parts, false))
        return false;
    while ((r = sy_jscan_next(&pi, &key, &val)) == 1) {
        int r2;
        if (!sy_jscan_begin(&fi, val, true))
            return false;
        while ((r2 = sy_jscan_next(&fi, &key, &val)) == 1) {
            /* Calls and thoughts take the full path. */
            if (sy_jscan_key_is(key, "functionCall") || sy_jscan_key_is(key, "thought"))
                return false;
            if (sy_jscan_key_is(key, "text") && val.ptr[0] != '"')
                return false;
        }
        if (r2 < 0)
            return false;
    }
    return r == 0;
}

/* A usual Gemini event (text parts, usage, maybe a finish) from a scan of
 * its bytes; returns 1 when it needs the full parser. Everything is checked
 * before anything is emitted. */
static int fast_event(sy_provider_stream_t *s, sy_str_t data, sy_buf_t *out)
{
    sy_str_t doc, key, val, cands = SY_STR_NULL, um = SY_STR_NULL;
    sy_jscan_t it, ci, pi, fi;
    int r, rc;
    if (!s->started || !sy_jscan_begin_doc(&it, data.ptr, data.len))
        return 1;
    while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
        if (sy_jscan_key_is(key, "candidates"))
            cands = val;
        else if (sy_jscan_key_is(key, "usageMetadata"))
            um = val;
        else if (sy_jscan_key_is(key, "error") || sy_jscan_key_is(key, "promptFeedback"))
            return 1;
    }
    if (r < 0 || !sy_jscan_end_doc(&it, &doc) || !sy_jscan_begin(&ci, cands, false))
        return 1;
    sy_str_t parts[SY_PROVIDER_MAX_CHOICES], finish[SY_PROVIDER_MAX_CHOICES];
    uint64_t idx[SY_PROVIDER_MAX_CHOICES];
    size_t k = 0;
    while ((r = sy_jscan_next(&ci, &key, &val)) == 1) {
        if (k == SY_PROVIDER_MAX_CHOICES)
            return 1;
        idx[k] = k;
        if (!fast_candidate(val, &parts[k], &idx[k], &finish[k]))
            return 1;
        k++;
    }
    if (r < 0 || k == 0)
        return 1;
    sy_provider_usage_t u = {0};
    bool have_usage = false;
    if (um.len > 0 && !is_null(um)) {
        uint64_t prompt = 0, cand = 0, total = 0, cached = 0, thoughts = 0, tool = 0, x;
        if (!sy_jscan_begin(&it, um, true))
            return 1;
        while ((r = sy_jscan_next(&it, &key, &val)) == 1) {
            uint64_t *dst = sy_jscan_key_is(key, "promptTokenCount")          ? &prompt
                            : sy_jscan_key_is(key, "candidatesTokenCount")    ? &cand
                            : sy_jscan_key_is(key, "totalTokenCount")         ? &total
                            : sy_jscan_key_is(key, "cachedContentTokenCount") ? &cached
                            : sy_jscan_key_is(key, "thoughtsTokenCount")      ? &thoughts
                            : sy_jscan_key_is(key, "toolUsePromptTokenCount") ? &tool
                                                                              : NULL;
            if (dst != NULL && sy_jscan_u64(val, &x))
                *dst = x;
        }
        if (r < 0)
            return 1;
        u.prompt_tokens = prompt + tool;
        u.completion_tokens =
            (total != 0 && prompt + tool + cand == total) ? cand : cand + thoughts;
        u.total_tokens = total ? total : u.prompt_tokens + u.completion_tokens;
        u.cached_tokens = cached;
        u.reasoning_tokens = thoughts;
        u.present = true;
        have_usage = true;
    }
    /* Valid and simple: emit. */
    for (size_t c = 0; c < k; c++) {
        if ((rc = start_choice(s, out, (unsigned)idx[c])) < 0)
            return rc;
        if (parts[c].len > 0 && sy_jscan_begin(&pi, parts[c], false)) {
            sy_str_t part;
            while (sy_jscan_next(&pi, &key, &part) == 1) {
                sy_jscan_begin(&fi, part, true);
                while (sy_jscan_next(&fi, &key, &val) == 1) {
                    if (!sy_jscan_key_is(key, "text") || val.len <= 2)
                        continue;
                    sy_buf_reset(&s->scratch);
                    if ((rc = sy_buf_append(&s->scratch, "{\"content\":", 11)) < 0 ||
                        (rc = sy_buf_append(&s->scratch, val.ptr, val.len)) < 0 ||
                        (rc = sy_buf_append(&s->scratch, "}", 1)) < 0 ||
                        (rc = sy_provider__chunk(s, out, (unsigned)idx[c], s->scratch.data,
                                                 s->scratch.len, NULL)) < 0)
                        return rc;
                }
            }
        }
        if (finish[c].len > 0 && !(s->choices_finished & (1u << idx[c]))) {
            char fr[48];
            memcpy(fr, finish[c].ptr + 1, finish[c].len - 2);
            fr[finish[c].len - 2] = '\0';
            s->choices_finished |= 1u << idx[c];
            s->finish_reason = map_finish(fr, (s->choices_tooled & (1u << idx[c])) != 0);
            if ((rc = sy_provider__chunk(s, out, (unsigned)idx[c], "{}", 2, s->finish_reason)) < 0)
                return rc;
        }
    }
    if (have_usage)
        s->usage = u;
    s->finished =
        s->choices_started != 0 && (s->choices_finished & s->choices_started) == s->choices_started;
    return 0;
}

static int stream_event(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out)
{
    json_object *o = NULL;
    int rc;
    if ((rc = fast_event(s, ev->data, out)) != 1)
        return rc;
    if ((rc = sy_provider__parse_event(s, ev, out, &o)) < 0)
        return rc == SY_EINVAL ? 0 : rc;
    json_object *err = json_object_object_get(o, "error");
    if (err != NULL) {
        uint64_t code = 500;
        sy_provider__u64(err, "code", &code);
        map_error_obj(code >= 400 && code <= 599 ? (int)code : 500, err, &s->error);
        rc = sy_provider_stream_fail(s, &s->error, out);
        json_object_put(o);
        return rc;
    }
    size_t rl = 0;
    const char *rid = sy_provider__str(o, "responseId", &rl);
    if (rid == NULL)
        rid = "gemini", rl = 6;
    if (!s->started) {
        s->started = true;
        if ((rc = sy_provider__stream_set_id(s, rid, rl)) < 0)
            goto out;
    }
    extract_usage(o, &s->usage);
    json_object *cands = json_object_object_get(o, "candidates");
    size_t nc = cands != NULL && json_object_is_type(cands, json_type_array)
                    ? json_object_array_length(cands)
                    : 0;
    for (size_t k = 0; k < nc; k++)
        if ((rc = stream_candidate(s, json_object_array_get_idx(cands, k), (unsigned)k, rid, rl,
                                   out)) < 0)
            goto out;
    const char *block =
        sy_provider__str(json_object_object_get(o, "promptFeedback"), "blockReason", NULL);
    if (nc == 0 && block != NULL && !(s->choices_finished & 1u)) {
        if ((rc = start_choice(s, out, 0)) < 0)
            goto out;
        s->choices_finished |= 1u;
        s->finish_reason = "content_filter";
        if ((rc = sy_provider__chunk(s, out, 0, "{}", 2, s->finish_reason)) < 0)
            goto out;
    }
    s->finished =
        s->choices_started != 0 && (s->choices_finished & s->choices_started) == s->choices_started;
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

static int stream_end(sy_provider_stream_t *s, sy_buf_t *out)
{
    if (s->done)
        return 0;
    if (s->finished)
        return sy_provider__stream_close(s, out);
    /* No finishReason before EOF: the answer was cut, never report success. */
    return sy_provider__stream_truncated(
        s, out, "the Gemini stream ended without a finishReason (truncated answer)");
}

const sy_provider_ops_t sy_provider_gemini = {
    .name = "gemini",
    .build_request = build_request,
    .parse_response = parse_response,
    .stream_begin = NULL,
    .stream_event = stream_event,
    .stream_end = stream_end,
    .map_error = map_error,
    .extract_usage = extract_usage,
};
