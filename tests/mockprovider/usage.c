/* The deterministic usage rule and the answer (README.md, "Usage rule").
 * Everything here is a pure function of the parsed request body, so tests can
 * predict token counts exactly. */
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "json.h"
#include "mock.h"

static const char echo_word[] = "Echo:";

/* 1 for the word separators: space, \t, \n, \v, \f, \r. */
static const unsigned char space_tab[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1};

static bool is_space(unsigned char c)
{
    return space_tab[c] != 0;
}

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* High bit of each byte of w set when that byte is a word separator
 * (exact per byte: no borrow crosses bytes). */
static uint64_t space8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
    uint64_t x = w ^ (ones * ' ');
    uint64_t blank = ~(((x & low7) + low7) | x) & highs;        /* byte == ' ' */
    uint64_t lt0e = ~(((w | highs) - ones * 0x0e) | w) & highs; /* byte < 0x0e */
    uint64_t lt09 = ~(((w | highs) - ones * 0x09) | w) & highs; /* byte < 0x09 */
    return blank | (lt0e & ~lt09);
}
#endif

int64_t sy_mock_usage_words(const char *s, size_t n)
{
    /* A word starts at each non-space byte that follows a space (or the start). */
    int64_t words = 0;
    unsigned prev_space = 1;
    size_t i = 0;
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight bytes at a time: word starts are the non-space bytes whose
     * previous byte is a space. */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t sp = space8(w);
        uint64_t before = (sp << 8) | ((uint64_t)prev_space << 7); /* little-endian order */
        uint64_t starts = ~sp & before & 0x8080808080808080ull;
        words += (int64_t)(((starts >> 7) * 0x0101010101010101ull) >> 56); /* bits set */
        prev_space = (unsigned)(sp >> 63);
    }
#endif
    for (; i < n; i++) {
        unsigned sp = space_tab[(unsigned char)s[i]];
        words += prev_space & (sp ^ 1);
        prev_space = sp;
    }
    return words;
}

static int64_t string_words(json_object *o)
{
    if (o == NULL || !json_object_is_type(o, json_type_string))
        return 0;
    return sy_mock_usage_words(json_object_get_string(o), (size_t)json_object_get_string_len(o));
}

/* Words of a "content" value: a string, or an array of parts whose text lives
 * under text_key (OpenAI/Anthropic "text" parts; Anthropic tool_result
 * blocks hold nested content). */
static int64_t content_words(json_object *c)
{
    if (c == NULL)
        return 0;
    if (json_object_is_type(c, json_type_string))
        return string_words(c);
    if (!json_object_is_type(c, json_type_array))
        return 0;
    int64_t n = 0;
    size_t len = json_object_array_length(c);
    for (size_t i = 0; i < len; i++) {
        json_object *part = json_object_array_get_idx(c, i);
        if (!json_object_is_type(part, json_type_object))
            continue;
        const char *type = sy_json_get_string(part, "type", NULL);
        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0)
            n += string_words(sy_json_get(part, "text"));
        else if (strcmp(type, "tool_result") == 0)
            n += content_words(sy_json_get(part, "content"));
    }
    return n;
}

static int64_t gemini_parts_words(json_object *content)
{
    json_object *parts = sy_json_get_array(content, "parts");
    if (parts == NULL)
        return 0;
    int64_t n = 0;
    size_t len = json_object_array_length(parts);
    for (size_t i = 0; i < len; i++) {
        json_object *part = json_object_array_get_idx(parts, i);
        if (json_object_is_type(part, json_type_object))
            n += string_words(sy_json_get(part, "text"));
    }
    return n;
}

static int64_t embedding_input_tokens(json_object *in)
{
    if (in == NULL)
        return 0;
    if (json_object_is_type(in, json_type_string))
        return string_words(in);
    if (!json_object_is_type(in, json_type_array))
        return 0;
    int64_t n = 0;
    size_t len = json_object_array_length(in);
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(in, i);
        if (json_object_is_type(e, json_type_string))
            n += string_words(e);
        else if (json_object_is_type(e, json_type_int))
            n += 1;
        else if (json_object_is_type(e, json_type_array))
            n += (int64_t)json_object_array_length(e);
    }
    return n;
}

int64_t sy_mock_usage_prompt_tokens(sy_mock_provider_t prov, bool embeddings, json_object *req)
{
    if (req == NULL || !json_object_is_type(req, json_type_object))
        return 0;
    if (embeddings)
        return embedding_input_tokens(sy_json_get(req, "input"));

    int64_t n = 0;
    if (prov == SY_MOCK_GEMINI) {
        json_object *sys = sy_json_get_object(req, "systemInstruction");
        if (sys == NULL)
            sys = sy_json_get_object(req, "system_instruction");
        if (sys != NULL)
            n += 1 + gemini_parts_words(sys);
        json_object *contents = sy_json_get_array(req, "contents");
        size_t len = contents ? json_object_array_length(contents) : 0;
        for (size_t i = 0; i < len; i++) {
            json_object *c = json_object_array_get_idx(contents, i);
            if (json_object_is_type(c, json_type_object))
                n += 1 + gemini_parts_words(c);
        }
        return n;
    }
    if (prov == SY_MOCK_ANTHROPIC) {
        json_object *sys = sy_json_get(req, "system");
        if (sys != NULL && !json_object_is_type(sys, json_type_null))
            n += 1 + content_words(sys);
    }
    json_object *msgs = sy_json_get_array(req, "messages");
    size_t len = msgs ? json_object_array_length(msgs) : 0;
    for (size_t i = 0; i < len; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (json_object_is_type(m, json_type_object))
            n += 1 + content_words(sy_json_get(m, "content"));
    }
    return n;
}

/* Collects up to SY_MOCK_ECHO_WORDS words of s into a->base. */
void sy_mock_answer_take_words(sy_mock_answer_t *a, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && a->nbase < SY_MOCK_ECHO_WORDS + 1) {
        while (i < n && is_space((unsigned char)s[i]))
            i++;
        size_t start = i;
        while (i < n && !is_space((unsigned char)s[i]))
            i++;
        if (i > start)
            a->base[a->nbase++] = (sy_str_t){s + start, i - start};
    }
}

static void take_string(sy_mock_answer_t *a, json_object *o)
{
    if (o != NULL && json_object_is_type(o, json_type_string))
        sy_mock_answer_take_words(a, json_object_get_string(o),
                                  (size_t)json_object_get_string_len(o));
}

static void take_content(sy_mock_answer_t *a, json_object *c)
{
    if (c == NULL)
        return;
    if (json_object_is_type(c, json_type_string)) {
        take_string(a, c);
        return;
    }
    if (!json_object_is_type(c, json_type_array))
        return;
    size_t len = json_object_array_length(c);
    for (size_t i = 0; i < len; i++) {
        json_object *part = json_object_array_get_idx(c, i);
        if (!json_object_is_type(part, json_type_object))
            continue;
        const char *type = sy_json_get_string(part, "type", NULL);
        if (type != NULL && strcmp(type, "text") == 0)
            take_string(a, sy_json_get(part, "text"));
    }
}

/* Finds the text of the last user message and echoes its first words. */
static void echo_last_user(sy_mock_provider_t prov, json_object *req, sy_mock_answer_t *a)
{
    if (prov == SY_MOCK_GEMINI) {
        json_object *contents = sy_json_get_array(req, "contents");
        size_t len = contents ? json_object_array_length(contents) : 0;
        for (size_t i = len; i-- > 0;) {
            json_object *c = json_object_array_get_idx(contents, i);
            if (!json_object_is_type(c, json_type_object))
                continue;
            const char *role = sy_json_get_string(c, "role", NULL);
            if (role != NULL && strcmp(role, "user") != 0)
                continue;
            json_object *parts = sy_json_get_array(c, "parts");
            size_t np = parts ? json_object_array_length(parts) : 0;
            for (size_t j = 0; j < np; j++) {
                json_object *p = json_object_array_get_idx(parts, j);
                if (json_object_is_type(p, json_type_object))
                    take_string(a, sy_json_get(p, "text"));
            }
            return;
        }
        return;
    }
    json_object *msgs = sy_json_get_array(req, "messages");
    size_t len = msgs ? json_object_array_length(msgs) : 0;
    for (size_t i = len; i-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (!json_object_is_type(m, json_type_object))
            continue;
        const char *role = sy_json_get_string(m, "role", NULL);
        if (role == NULL || strcmp(role, "user") != 0)
            continue;
        take_content(a, sy_json_get(m, "content"));
        return;
    }
}

/* The first declared tool: its name and parameter schema, per format. */
static bool first_tool(sy_mock_provider_t prov, json_object *req, sy_str_t *name,
                       json_object **schema)
{
    json_object *tools = sy_json_get_array(req, "tools");
    if (tools == NULL || json_object_array_length(tools) == 0)
        return false;
    json_object *t = json_object_array_get_idx(tools, 0);
    json_object *fn = NULL;
    if (prov == SY_MOCK_OPENAI) {
        fn = sy_json_get_object(t, "function");
        if (fn == NULL)
            fn = sy_json_get_object(t, "custom");
        *schema = sy_json_get_object(fn, "parameters");
    } else if (prov == SY_MOCK_ANTHROPIC) {
        fn = t;
        *schema = sy_json_get_object(fn, "input_schema");
    } else {
        json_object *decls = sy_json_get_array(t, "functionDeclarations");
        if (decls == NULL)
            decls = sy_json_get_array(t, "function_declarations");
        if (decls == NULL || json_object_array_length(decls) == 0)
            return false;
        fn = json_object_array_get_idx(decls, 0);
        *schema = sy_json_get_object(fn, "parametersJsonSchema");
        if (*schema == NULL)
            *schema = sy_json_get_object(fn, "parameters");
    }
    size_t len = 0;
    const char *s = sy_json_get_string(fn, "name", &len);
    if (s == NULL || len == 0)
        return false;
    *name = (sy_str_t){s, len};
    return true;
}

/* Arguments: {"<key>": <value>} where a string property gets the echoed
 * words (without "Echo:"), number/integer 1, boolean true; no key gives {}. */
int sy_mock_answer_args(sy_mock_answer_t *a, sy_str_t key, sy_str_t type)
{
    if (key.ptr == NULL)
        return SY_MOCK_LIT(&a->args, "{}");
    int rc = SY_MOCK_LIT(&a->args, "{");
    rc = rc ? rc : sy_buf_append_json_string(&a->args, key.len ? key.ptr : "", key.len);
    rc = rc ? rc : SY_MOCK_LIT(&a->args, ":");
    if (rc)
        return rc;
    if (sy_str_case_eq_cstr(type, "number") || sy_str_case_eq_cstr(type, "integer")) {
        rc = SY_MOCK_LIT(&a->args, "1");
    } else if (sy_str_case_eq_cstr(type, "boolean")) {
        rc = SY_MOCK_LIT(&a->args, "true");
    } else {
        /* Join the echoed words (base[1..]) into one string. */
        sy_buf_t tmp;
        sy_buf_init(&tmp);
        for (size_t i = 1; i < a->nbase && rc == 0; i++) {
            if (i > 1)
                rc = sy_buf_append(&tmp, " ", 1);
            rc = rc ? rc : sy_buf_append_view(&tmp, a->base[i]);
        }
        rc = rc ? rc : sy_buf_append_json_string(&a->args, tmp.len ? tmp.data : "", tmp.len);
        sy_buf_free(&tmp);
    }
    return rc ? rc : SY_MOCK_LIT(&a->args, "}");
}

/* The key is the first `required` property, else the first property. */
static int build_args(sy_mock_answer_t *a, json_object *schema)
{
    json_object *props = sy_json_get_object(schema, "properties");
    const char *key = NULL;
    json_object *required = sy_json_get_array(schema, "required");
    if (required != NULL && json_object_array_length(required) > 0) {
        json_object *k = json_object_array_get_idx(required, 0);
        if (json_object_is_type(k, json_type_string))
            key = json_object_get_string(k);
    }
    if (key == NULL && props != NULL) {
        json_object_object_foreach(props, k, v)
        {
            SY_UNUSED(v);
            key = k;
            break;
        }
    }
    if (key == NULL)
        return sy_mock_answer_args(a, SY_STR_NULL, SY_STR_NULL);
    const char *type = NULL;
    json_object *prop = sy_json_get_object(props, key);
    if (prop != NULL)
        type = sy_json_get_string(prop, "type", NULL);
    return sy_mock_answer_args(a, sy_str_from_cstr(key),
                               type ? sy_str_from_cstr(type) : SY_STR_NULL);
}

void sy_mock_answer_init(sy_mock_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    sy_buf_init(&a->args);
    a->base[0] = (sy_str_t){echo_word, sizeof(echo_word) - 1};
    a->nbase = 1;
}

int sy_mock_answer_build(sy_mock_provider_t prov, json_object *req, int64_t words,
                         sy_mock_answer_t *a)
{
    sy_mock_answer_init(a);
    if (req == NULL || !json_object_is_type(req, json_type_object)) {
        a->nwords = words >= 0 ? words : 1;
        return 0;
    }
    echo_last_user(prov, req, a);
    a->nwords = words >= 0 ? words : (int64_t)a->nbase;

    json_object *schema = NULL;
    if (first_tool(prov, req, &a->tool_name, &schema)) {
        a->tool = true;
        return build_args(a, schema);
    }
    return 0;
}

void sy_mock_answer_free(sy_mock_answer_t *a)
{
    if (a == NULL)
        return;
    sy_buf_free(&a->args);
    a->tool = false;
}

sy_str_t sy_mock_answer_word(const sy_mock_answer_t *a, int64_t i)
{
    return a->base[(size_t)i % a->nbase];
}

int sy_mock_answer_text(const sy_mock_answer_t *a, sy_buf_t *out)
{
    for (int64_t i = 0; i < a->nwords; i++) {
        if (i > 0) {
            int rc = sy_buf_append(out, " ", 1);
            if (rc)
                return rc;
        }
        int rc = sy_buf_append_view(out, sy_mock_answer_word(a, i));
        if (rc)
            return rc;
    }
    return 0;
}

int64_t sy_mock_answer_tokens(const sy_mock_answer_t *a)
{
    if (a->tool)
        return 1 + sy_mock_usage_words(a->args.data, a->args.len);
    return a->nwords;
}

/* Moves end back so that it does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t end)
{
    if (end >= len)
        return len;
    size_t e = end;
    while (e > 0 && ((unsigned char)s[e] & 0xC0) == 0x80)
        e--;
    return e == 0 ? end : e;
}

size_t sy_mock_answer_fragments(const sy_mock_answer_t *a)
{
    size_t n = 0, pos = 0;
    while (pos < a->args.len) {
        size_t end = utf8_cut(a->args.data, a->args.len, pos + SY_MOCK_ARG_FRAGMENT);
        if (end <= pos)
            end = pos + SY_MOCK_ARG_FRAGMENT;
        pos = end > a->args.len ? a->args.len : end;
        n++;
    }
    return n;
}

sy_str_t sy_mock_answer_fragment(const sy_mock_answer_t *a, size_t i)
{
    size_t n = 0, pos = 0;
    while (pos < a->args.len) {
        size_t end = utf8_cut(a->args.data, a->args.len, pos + SY_MOCK_ARG_FRAGMENT);
        if (end <= pos)
            end = pos + SY_MOCK_ARG_FRAGMENT;
        if (end > a->args.len)
            end = a->args.len;
        if (n == i)
            return (sy_str_t){a->args.data + pos, end - pos};
        pos = end;
        n++;
    }
    return SY_STR_NULL;
}

int sy_mock_json_str(sy_buf_t *out, sy_str_t s)
{
    return sy_buf_append_json_string(out, s.len ? s.ptr : "", s.len);
}

/* Appends s escaped for the inside of a JSON string (no quotes). */
int sy_mock_json_escape(sy_buf_t *out, sy_str_t s)
{
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        int rc = sy_mock_put(out, s.ptr + start, i - start);
        if (rc)
            return rc;
        if (c == '"')
            rc = sy_buf_append(out, "\\\"", 2);
        else if (c == '\\')
            rc = sy_buf_append(out, "\\\\", 2);
        else if (c == '\n')
            rc = sy_buf_append(out, "\\n", 2);
        else if (c == '\t')
            rc = sy_buf_append(out, "\\t", 2);
        else
            rc = sy_buf_appendf(out, "\\u%04x", c);
        if (rc)
            return rc;
        start = i + 1;
    }
    return sy_mock_put(out, s.ptr + start, s.len - start);
}

/* The text answer as one JSON string. */
int sy_mock_answer_text_json(const sy_mock_answer_t *a, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "\"");
    for (int64_t i = 0; i < a->nwords && rc == 0; i++) {
        if (i > 0)
            rc = SY_MOCK_LIT(out, " ");
        sy_str_t w = sy_mock_answer_word(a, i);
        if (rc == 0 && a->raw) {
            /* Words that follow one another in the request, one space
             * apart, go out as one piece. */
            size_t len = w.len;
            while (i + 1 < a->nwords && (size_t)(i + 1) % a->nbase != 0) {
                sy_str_t next = sy_mock_answer_word(a, i + 1);
                if (next.ptr != w.ptr + len + 1 || w.ptr[len] != ' ')
                    break;
                len += 1 + next.len;
                i++;
            }
            rc = sy_mock_put(out, w.ptr, len);
        } else if (rc == 0) {
            rc = sy_mock_json_escape(out, w);
        }
    }
    return rc ? rc : SY_MOCK_LIT(out, "\"");
}

int sy_mock_model_json(const sy_mock_req_t *r, sy_buf_t *out)
{
    if (!r->model_raw)
        return sy_mock_json_str(out, r->model);
    int rc = SY_MOCK_LIT(out, "\"");
    rc = rc ? rc : sy_mock_put(out, r->model.ptr, r->model.len);
    return rc ? rc : SY_MOCK_LIT(out, "\"");
}

int sy_mock_put_i64(sy_buf_t *out, int64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    /* Two digits per division. */
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        tmp[sizeof(tmp) - 1 - n++] = pairs[d + 1];
        tmp[sizeof(tmp) - 1 - n++] = pairs[d];
    }
    if (u >= 10) {
        tmp[sizeof(tmp) - 1 - n++] = pairs[u * 2 + 1];
        tmp[sizeof(tmp) - 1 - n++] = pairs[u * 2];
    } else {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u);
    }
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    return sy_mock_put(out, tmp + sizeof(tmp) - n, n);
}
