/* The request analysis without a JSON tree (see sy_mock_fast_request in
 * mock.h). It mirrors the json-c path member for member (validation in
 * openai.c/anthropic.c/gemini.c, usage and answer in usage.c, the fields
 * server.c reads) with json-c's semantics: the last of duplicate members
 * wins, a null member counts as absent, only objects have members. Whatever
 * it cannot decide exactly (escapes in a string or key it interprets, an
 * integer json.c might refuse as clamped, any invalid or unexpected shape)
 * makes it give up, and the caller parses with json-c as before. The
 * differential unit test (tests/unit/test_mock_fast.c) holds both paths
 * equal. */
#include <string.h>

#include "jscan.h"
#include "mock.h"

typedef struct fctx {
    bool bail; /* fall back to the json-c path */
} fctx_t;

static bool is_obj(sy_str_t v)
{
    return v.ptr != NULL && v.ptr[0] == '{';
}

static bool is_arr(sy_str_t v)
{
    return v.ptr != NULL && v.ptr[0] == '[';
}

static bool is_str(sy_str_t v)
{
    return v.ptr != NULL && v.ptr[0] == '"';
}

/* A JSON integer for json-c: digits with an optional '-', no fraction or
 * exponent. */
static bool is_int(sy_str_t v)
{
    if (v.ptr == NULL || (v.ptr[0] != '-' && (v.ptr[0] < '0' || v.ptr[0] > '9')))
        return false;
    return memchr(v.ptr, '.', v.len) == NULL && memchr(v.ptr, 'e', v.len) == NULL &&
           memchr(v.ptr, 'E', v.len) == NULL;
}

/* The text of a string value; false (and no bail) when v is not a string,
 * bail when it holds an escape (json-c would decode it). */
static bool str_of(fctx_t *x, sy_str_t v, sy_str_t *out)
{
    if (!is_str(v))
        return false;
    sy_str_t s = {v.ptr + 1, v.len - 2};
    if (memchr(s.ptr, '\\', s.len) != NULL) {
        x->bail = true;
        return false;
    }
    *out = s;
    return true;
}

/* Looks up keys of object o: vals[i] is the value of the last member
 * named keys[i], SY_STR_NULL when absent or null. Bails on an escaped key
 * (it might decode to one of keys). */
static void members(fctx_t *x, sy_str_t o, const char *const keys[], size_t nk, sy_str_t *vals)
{
    for (size_t i = 0; i < nk; i++)
        vals[i] = SY_STR_NULL;
    sy_jscan_t it;
    if (x->bail || !sy_jscan_begin(&it, o, true)) {
        x->bail = true;
        return;
    }
    sy_str_t k, v;
    int rc;
    while ((rc = sy_jscan_next(&it, &k, &v)) == 1) {
        if (memchr(k.ptr, '\\', k.len) != NULL) {
            x->bail = true;
            return;
        }
        for (size_t i = 0; i < nk; i++) {
            if (sy_jscan_key_is(k, keys[i])) {
                vals[i] = v.ptr[0] == 'n' ? SY_STR_NULL : v;
                break;
            }
        }
    }
    if (rc < 0)
        x->bail = true;
}

static sy_str_t member(fctx_t *x, sy_str_t o, const char *key)
{
    const char *keys[1] = {key};
    sy_str_t v;
    members(x, o, keys, 1, &v);
    return v;
}

/* Array iteration: elements are json-c's array items (null items are NULL
 * there, which no caller treats as an object or string either). */
static bool each_begin(fctx_t *x, sy_jscan_t *it, sy_str_t arr)
{
    if (x->bail || !sy_jscan_begin(it, arr, false)) {
        x->bail = true;
        return false;
    }
    return true;
}

static bool each_next(fctx_t *x, sy_jscan_t *it, sy_str_t *el)
{
    sy_str_t key;
    if (x->bail)
        return false;
    int rc = sy_jscan_next(it, &key, el);
    if (rc < 0)
        x->bail = true;
    return rc == 1;
}

#define EACH(x, arr, it, el)                                                                       \
    for (bool each_ok_ = each_begin((x), &(it), (arr)); each_ok_ && each_next((x), &(it), &(el));)

static size_t arr_len(fctx_t *x, sy_str_t arr)
{
    sy_jscan_t it;
    sy_str_t el;
    size_t n = 0;
    EACH(x, arr, it, el)
    n++;
    return n;
}

static int64_t str_words(fctx_t *x, sy_str_t v)
{
    sy_str_t s;
    return str_of(x, v, &s) ? sy_mock_usage_words(s.ptr, s.len) : 0;
}

/* A part's "type" equals lit (a non-string type equals nothing). */
static bool type_is(fctx_t *x, sy_str_t type, const char *lit)
{
    sy_str_t s;
    return str_of(x, type, &s) && sy_str_eq_cstr(s, lit);
}

/* usage.c content_words: a string, or text / tool_result parts. */
static int64_t content_words(fctx_t *x, sy_str_t c, int depth)
{
    if (is_str(c))
        return str_words(x, c);
    if (!is_arr(c))
        return 0;
    if (depth > 8) { /* nested tool_result content: leave it to json-c */
        x->bail = true;
        return 0;
    }
    static const char *const keys[] = {"type", "text", "content"};
    int64_t n = 0;
    sy_jscan_t it;
    sy_str_t part;
    EACH(x, c, it, part)
    {
        if (!is_obj(part))
            continue;
        sy_str_t v[3];
        members(x, part, keys, 3, v);
        if (type_is(x, v[0], "text"))
            n += str_words(x, v[1]);
        else if (type_is(x, v[0], "tool_result"))
            n += content_words(x, v[2], depth + 1);
    }
    return n;
}

/* usage.c take_content: the words of a string or of its text parts. */
static void take_content(fctx_t *x, sy_mock_answer_t *a, sy_str_t c)
{
    sy_str_t s;
    if (str_of(x, c, &s)) {
        sy_mock_answer_take_words(a, s.ptr, s.len);
        return;
    }
    if (!is_arr(c))
        return;
    static const char *const keys[] = {"type", "text"};
    sy_jscan_t it;
    sy_str_t part;
    EACH(x, c, it, part)
    {
        if (!is_obj(part))
            continue;
        sy_str_t v[2];
        members(x, part, keys, 2, v);
        if (type_is(x, v[0], "text") && str_of(x, v[1], &s))
            sy_mock_answer_take_words(a, s.ptr, s.len);
    }
}

/* Gemini parts: the words of each part's text. */
static int64_t parts_words(fctx_t *x, sy_str_t content)
{
    sy_str_t parts = member(x, content, "parts");
    if (!is_arr(parts))
        return 0;
    int64_t n = 0;
    sy_jscan_t it;
    sy_str_t p;
    EACH(x, parts, it, p)
    {
        if (is_obj(p))
            n += str_words(x, member(x, p, "text"));
    }
    return n;
}

/* OpenAI / Anthropic messages: validation, prompt tokens, last user message.
 * Returns false when the json-c path would refuse them. */
static bool chat_messages(fctx_t *x, sy_mock_provider_t prov, sy_str_t msgs, int64_t *tokens,
                          sy_str_t *last_user)
{
    if (!is_arr(msgs))
        return false;
    static const char *const keys[] = {"role", "content"};
    size_t n = 0;
    sy_jscan_t it;
    sy_str_t m;
    EACH(x, msgs, it, m)
    {
        n++;
        if (!is_obj(m))
            return false;
        sy_str_t v[2], role;
        members(x, m, keys, 2, v);
        if (!str_of(x, v[0], &role))
            return false;
        bool user = sy_str_eq_cstr(role, "user");
        if (prov == SY_MOCK_ANTHROPIC &&
            ((!user && !sy_str_eq_cstr(role, "assistant")) || v[1].ptr == NULL))
            return false;
        *tokens += 1 + content_words(x, v[1], 0);
        if (user)
            *last_user = v[1];
    }
    return n > 0;
}

/* The first tool's name and parameter schema (usage.c first_tool). */
static bool first_tool(fctx_t *x, sy_mock_provider_t prov, sy_str_t tools, sy_str_t *name,
                       sy_str_t *schema)
{
    if (!is_arr(tools))
        return false;
    sy_jscan_t it;
    sy_str_t t = SY_STR_NULL, el;
    EACH(x, tools, it, el)
    {
        t = el;
        break;
    }
    if (t.ptr == NULL || x->bail)
        return false;
    sy_str_t fn = SY_STR_NULL;
    *schema = SY_STR_NULL;
    if (prov == SY_MOCK_OPENAI) {
        if (is_obj(t)) {
            static const char *const keys[] = {"function", "custom"};
            sy_str_t v[2];
            members(x, t, keys, 2, v);
            fn = is_obj(v[0]) ? v[0] : is_obj(v[1]) ? v[1] : SY_STR_NULL;
        }
        if (is_obj(fn))
            *schema = member(x, fn, "parameters");
    } else if (prov == SY_MOCK_ANTHROPIC) {
        fn = t;
        if (is_obj(fn))
            *schema = member(x, fn, "input_schema");
    } else {
        if (!is_obj(t))
            return false;
        static const char *const keys[] = {"functionDeclarations", "function_declarations"};
        sy_str_t v[2];
        members(x, t, keys, 2, v);
        sy_str_t decls = is_arr(v[0]) ? v[0] : v[1];
        if (!is_arr(decls))
            return false;
        EACH(x, decls, it, el)
        {
            fn = el;
            break;
        }
        if (fn.ptr == NULL)
            return false;
        if (is_obj(fn)) {
            static const char *const skeys[] = {"parametersJsonSchema", "parameters"};
            members(x, fn, skeys, 2, v);
            *schema = is_obj(v[0]) ? v[0] : v[1];
        }
    }
    if (!is_obj(*schema))
        *schema = SY_STR_NULL;
    sy_str_t s;
    if (!is_obj(fn) || !str_of(x, member(x, fn, "name"), &s) || s.len == 0)
        return false;
    *name = s;
    return true;
}

/* usage.c build_args: the first required property, else the first one. */
static int tool_args(fctx_t *x, sy_mock_answer_t *a, sy_str_t schema)
{
    sy_str_t props = SY_STR_NULL, required = SY_STR_NULL;
    if (schema.ptr != NULL) {
        static const char *const keys[] = {"properties", "required"};
        sy_str_t v[2];
        members(x, schema, keys, 2, v);
        props = is_obj(v[0]) ? v[0] : SY_STR_NULL;
        required = is_arr(v[1]) ? v[1] : SY_STR_NULL;
    }
    sy_str_t key = SY_STR_NULL, k, el;
    sy_jscan_t it;
    if (required.ptr != NULL) {
        EACH(x, required, it, el)
        {
            str_of(x, el, &key);
            break;
        }
    }
    if (key.ptr == NULL && props.ptr != NULL && sy_jscan_begin(&it, props, true)) {
        int rc = sy_jscan_next(&it, &k, &el);
        if (rc < 0 || (rc == 1 && memchr(k.ptr, '\\', k.len) != NULL))
            x->bail = true;
        else if (rc == 1)
            key = k;
    }
    if (x->bail)
        return 0;
    sy_str_t type = SY_STR_NULL;
    if (key.ptr != NULL && props.ptr != NULL) {
        /* The last member named key (json-c's lookup). */
        sy_str_t prop = SY_STR_NULL;
        sy_jscan_begin(&it, props, true);
        int rc;
        while ((rc = sy_jscan_next(&it, &k, &el)) == 1) {
            if (memchr(k.ptr, '\\', k.len) != NULL) {
                x->bail = true;
                return 0;
            }
            if (k.len == key.len && memcmp(k.ptr, key.ptr, k.len) == 0)
                prop = el.ptr[0] == 'n' ? SY_STR_NULL : el;
        }
        if (rc < 0)
            x->bail = true;
        if (is_obj(prop))
            str_of(x, member(x, prop, "type"), &type);
        if (x->bail)
            return 0;
    }
    return sy_mock_answer_args(a, key, type);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True when s holds a run of 19 or more digits (json.c then walks its tree
 * for clamped integers, which this path does not imitate). Such a run
 * covers one of every 19th byte, so only those are looked at (and the run
 * around a digit found there). */
static bool long_numbers(const char *s, size_t n)
{
    for (size_t i = 18; i < n; i += 19) {
        if (!is_digit(s[i]))
            continue;
        size_t a = i, b = i;
        while (a > 0 && is_digit(s[a - 1]))
            a--;
        while (b + 1 < n && is_digit(s[b + 1]))
            b++;
        if (b - a + 1 >= 19)
            return true;
        i = b; /* s[b + 1] is not a digit: a run after it covers b + 19 */
    }
    return false;
}

static int analyze(fctx_t *x, sy_mock_req_t *r, const char *body, size_t len)
{
    static const char *const keys[] = {
        "model",  "stream",     "stream_options", "messages",          "tools",
        "system", "max_tokens", "contents",       "systemInstruction", "system_instruction"};
    enum { K_MODEL, K_STREAM, K_OPTS, K_MSGS, K_TOOLS, K_SYSTEM, K_MAX, K_CONTENTS, K_SI, K_SI2 };
    sy_str_t v[SY_ARRAY_LEN(keys)] = {{0}};
    if (long_numbers(body, len))
        return SY_EAGAIN;

    /* One validating pass over the whole document. */
    sy_jscan_t it;
    sy_str_t k, val, doc;
    if (!sy_jscan_begin_doc(&it, body, len))
        return SY_EAGAIN;
    int rc;
    while ((rc = sy_jscan_next(&it, &k, &val)) == 1) {
        if (memchr(k.ptr, '\\', k.len) != NULL)
            return SY_EAGAIN;
        for (size_t i = 0; i < SY_ARRAY_LEN(keys); i++) {
            if (sy_jscan_key_is(k, keys[i])) {
                v[i] = val.ptr[0] == 'n' ? SY_STR_NULL : val;
                break;
            }
        }
    }
    if (rc < 0 || !sy_jscan_end_doc(&it, &doc))
        return SY_EAGAIN;

    sy_mock_answer_t *a = &r->ans;
    sy_str_t last_user = SY_STR_NULL;
    int64_t tokens = 0;
    if (r->prov == SY_MOCK_GEMINI) {
        /* gemini.c validate: contents non-empty, each an object with non-empty parts. */
        if (!is_arr(v[K_CONTENTS]))
            return SY_EAGAIN;
        sy_str_t sys = is_obj(v[K_SI]) ? v[K_SI] : v[K_SI2];
        if (is_obj(sys))
            tokens += 1 + parts_words(x, sys);
        size_t n = 0;
        bool found = false;
        sy_str_t c;
        EACH(x, v[K_CONTENTS], it, c)
        {
            n++;
            if (!is_obj(c))
                return SY_EAGAIN;
            static const char *const ckeys[] = {"parts", "role"};
            sy_str_t cv[2], role;
            members(x, c, ckeys, 2, cv);
            if (!is_arr(cv[0]) || arr_len(x, cv[0]) == 0)
                return SY_EAGAIN;
            tokens += 1 + parts_words(x, c);
            /* The last content whose role is "user" or not a string. */
            bool is_role = str_of(x, cv[1], &role);
            if (!is_role || sy_str_eq_cstr(role, "user")) {
                last_user = cv[0];
                found = true;
            }
        }
        if (x->bail || n == 0)
            return SY_EAGAIN;
        if (found) {
            EACH(x, last_user, it, c)
            {
                sy_str_t s;
                if (is_obj(c) && str_of(x, member(x, c, "text"), &s))
                    sy_mock_answer_take_words(a, s.ptr, s.len);
            }
        }
    } else {
        /* openai.c / anthropic.c validate. */
        if (!str_of(x, v[K_MODEL], &r->model) || r->model.len == 0)
            return SY_EAGAIN;
        if (v[K_STREAM].ptr != NULL && v[K_STREAM].ptr[0] != 't' && v[K_STREAM].ptr[0] != 'f')
            return SY_EAGAIN;
        if (r->prov == SY_MOCK_ANTHROPIC) {
            sy_str_t mt = v[K_MAX];
            if (!is_int(mt) || mt.ptr[0] == '-')
                return SY_EAGAIN; /* json-c: missing, not an integer, or "-0" / negative */
            if (v[K_SYSTEM].ptr != NULL)
                tokens += 1 + content_words(x, v[K_SYSTEM], 0);
        }
        if (!chat_messages(x, r->prov, v[K_MSGS], &tokens, &last_user) || x->bail)
            return SY_EAGAIN;
        if (last_user.ptr != NULL)
            take_content(x, a, last_user);
        r->stream = v[K_STREAM].ptr != NULL && v[K_STREAM].ptr[0] == 't';
        if (is_obj(v[K_OPTS])) {
            sy_str_t iu = member(x, v[K_OPTS], "include_usage");
            if (iu.ptr != NULL && (iu.ptr[0] == 't' || iu.ptr[0] == 'f'))
                r->include_usage = iu.ptr[0] == 't';
        }
    }
    if (x->bail)
        return SY_EAGAIN;
    r->prompt_tokens = tokens;

    sy_str_t schema;
    if (first_tool(x, r->prov, v[K_TOOLS], &a->tool_name, &schema) && !x->bail) {
        a->tool = true;
        rc = tool_args(x, a, schema);
        if (rc != 0)
            return rc;
    }
    return x->bail ? SY_EAGAIN : 0;
}

int sy_mock_fast_request(sy_mock_req_t *r, const char *body, size_t len, int64_t words)
{
    sy_mock_answer_init(&r->ans);
    if (r->ep == SY_MOCK_EP_EMBEDDINGS || body == NULL) {
        sy_mock_answer_free(&r->ans);
        return SY_EAGAIN;
    }
    fctx_t x = {.bail = false};
    int rc = analyze(&x, r, body, len);
    if (rc != 0) {
        sy_mock_answer_free(&r->ans);
        r->model = SY_STR_NULL;
        r->stream = false;
        r->include_usage = false;
        r->prompt_tokens = 0;
        return SY_EAGAIN;
    }
    r->ans.nwords = words >= 0 ? words : (int64_t)r->ans.nbase;
    return 0;
}
