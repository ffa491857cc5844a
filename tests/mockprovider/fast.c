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
#include <stdint.h>
#include <string.h>

#include "jscan.h"
#include "json.h"
#include "mock.h"

/* ---- walking bytes the validating pass already accepted ------------------- */

/* One value of the tape: where it lies in the document, and the index of
 * the first token after it (after its last descendant for a container). */
typedef struct tok {
    uint32_t off;  /* offset of its first byte */
    uint32_t len;  /* bytes */
    uint32_t next; /* tape index past it */
} tok_t;

#define TAPE_MAX 1024 /* tokens; larger documents are walked without a tape */

typedef struct fctx {
    bool bail;             /* fall back to the json-c path */
    const char *doc;       /* borrowed; the document the tape indexes */
    const tok_t *tape;     /* borrowed; every value and key in document order, or NULL */
    uint32_t ntape;        /* tokens in tape */
    bool no_escape;        /* the document holds no backslash at all */
    uint32_t cont_off[64]; /* containers of the tape by offset: open addressing, off + 1 */
    uint16_t cont_idx[64]; /* their tape indexes */
    bool cont_full;        /* too many containers for the table: search the tape */
} fctx_t;

/* Iterator over one container of a document sy_jscan_document accepted:
 * the same views as sy_jscan_next gives, without validating again; on the
 * tape when there is one (no byte is looked at twice), else by skipping. */
typedef struct nv {
    const char *p;     /* borrowed; the container's bytes, brackets included */
    size_t n;          /* bytes in p */
    size_t i;          /* cursor */
    bool obj;          /* an object (else an array) */
    const tok_t *tape; /* borrowed; or NULL */
    const char *doc;   /* borrowed; what tape offsets are relative to */
    uint32_t j, end;   /* tape cursor and end */
} nv_t;

static bool nv_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t nv_skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && nv_ws(p[i]))
        i++;
    return i;
}

/* Just past the string opening at p[i]: quotes and backslashes are looked
 * for eight bytes at a time. */
static size_t nv_string(const char *p, size_t n, size_t i)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    i++;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
            uint64_t m = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
            if (m == 0) {
                i += 8;
                continue;
            }
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            i += (size_t)__builtin_ctzll(m) / 8; /* the lowest flag is exact */
#endif
        }
        if (p[i] == '"')
            return i + 1;
        i += p[i] == '\\' ? 2 : 1;
    }
    return n;
}

/* Just past the value starting at p[i]. */
static size_t nv_value(const char *p, size_t n, size_t i)
{
    char c = p[i];
    if (c == '"')
        return nv_string(p, n, i);
    if (c == '{' || c == '[') {
        int depth = 0;
        while (i < n) {
            c = p[i];
            if (c == '"') {
                i = nv_string(p, n, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !nv_ws(p[i]))
        i++;
    return i;
}

static bool nv_begin(const fctx_t *x, nv_t *it, sy_str_t v, bool obj)
{
    if (v.ptr == NULL || v.len < 2 || v.ptr[0] != (obj ? '{' : '['))
        return false;
    *it = (nv_t){.p = v.ptr, .n = v.len - 1, .i = 1, .obj = obj}; /* n: up to the closing bracket */
    if (x->tape != NULL) {
        /* The container's token: from the table, else a binary search by
         * offset (offsets are increasing and unique along the tape). */
        uint32_t off = (uint32_t)(v.ptr - x->doc), lo = 0, hi = x->ntape;
        if (!x->cont_full) {
            uint32_t h = (off * 2654435761u) >> 26;
            for (size_t probes = 0; x->cont_off[h] != 0 && probes < 64; probes++) {
                if (x->cont_off[h] == off + 1) {
                    lo = x->cont_idx[h];
                    hi = lo; /* found: no search */
                    break;
                }
                h = (h + 1) & 63;
            }
        }
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (x->tape[mid].off < off)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < x->ntape && x->tape[lo].off == off) {
            it->tape = x->tape;
            it->doc = x->doc;
            it->j = lo + 1;
            it->end = x->tape[lo].next;
        }
    }
    return true;
}

/* 1 with the next member (key raw, without quotes; empty for arrays), 0 at the end. */
static int nv_next(nv_t *it, sy_str_t *key, sy_str_t *val)
{
    if (it->tape != NULL) {
        if (it->j >= it->end)
            return 0;
        const tok_t *t = it->tape;
        *key = SY_STR_NULL;
        if (it->obj) {
            *key = (sy_str_t){it->doc + t[it->j].off + 1, t[it->j].len - 2};
            it->j++;
        }
        *val = (sy_str_t){it->doc + t[it->j].off, t[it->j].len};
        it->j = t[it->j].next;
        return 1;
    }
    const char *p = it->p;
    size_t n = it->n;
    size_t i = nv_skip_ws(p, n, it->i);
    if (i < n && p[i] == ',')
        i = nv_skip_ws(p, n, i + 1);
    if (i >= n)
        return 0;
    *key = SY_STR_NULL;
    if (it->obj) {
        size_t e = nv_string(p, n, i);
        *key = (sy_str_t){p + i + 1, e - i - 2};
        i = nv_skip_ws(p, n, e);
        i = nv_skip_ws(p, n, i + 1); /* ':' */
    }
    size_t e = nv_value(p, n, i);
    *val = (sy_str_t){p + i, e - i};
    it->i = e;
    return 1;
}

/* ---- one validating pass that also writes the tape -------------------------
 * The grammar and limits of common/jscan.c (strict JSON, valid escapes and
 * UTF-8, no raw control bytes, depth <= SY_JSON_MAX_DEPTH), so this path
 * accepts nothing that jscan, and with it json.c, would refuse. */

typedef struct tb {
    const char *p; /* borrowed; the document */
    size_t n;      /* bytes in p */
    tok_t *t;      /* borrowed; the tape being written */
    uint32_t k;    /* tokens written */
    bool full;     /* the tape overflowed */
    bool escape;   /* a string held a backslash */
    fctx_t *x;     /* borrowed; its container table is filled */
} tb_t;

/* The string at p[i] (a quote): its end, 0 when invalid. */
static size_t tb_string(const char *p, size_t n, size_t i, bool *escape)
{
    size_t len = sy_jscan_string(p + i, n - i, escape);
    return len != 0 ? i + len : 0;
}

/* The number at p[i]: its end, 0 when invalid. */
static size_t tb_number(const char *p, size_t n, size_t i)
{
    size_t len = sy_jscan_number(p + i, n - i);
    return len != 0 ? i + len : 0;
}

static bool tb_push(tb_t *b, size_t off, size_t end)
{
    if (b->k == TAPE_MAX) {
        b->full = true;
        return false;
    }
    b->t[b->k] = (tok_t){(uint32_t)off, (uint32_t)(end - off), b->k + 1};
    b->k++;
    return true;
}

static size_t tb_value(tb_t *b, size_t i, int depth);

/* The container at p[i]: its end, 0 when invalid or the tape is full. */
static size_t tb_container(tb_t *b, size_t i, int depth)
{
    const char *p = b->p;
    size_t n = b->n;
    bool obj = p[i] == '{';
    char close = obj ? '}' : ']';
    if (depth >= SY_JSON_MAX_DEPTH || b->k == TAPE_MAX) {
        b->full = b->k == TAPE_MAX;
        return 0;
    }
    uint32_t self = b->k++;
    b->t[self].off = (uint32_t)i;
    i = nv_skip_ws(p, n, i + 1);
    if (i < n && p[i] == close) {
        i++;
    } else {
        for (;;) {
            if (obj) {
                if (i >= n || p[i] != '"')
                    return 0;
                size_t e = tb_string(p, n, i, &b->escape);
                if (e == 0 || !tb_push(b, i, e))
                    return 0;
                i = nv_skip_ws(p, n, e);
                if (i >= n || p[i] != ':')
                    return 0;
                i = nv_skip_ws(p, n, i + 1);
            }
            if (i >= n)
                return 0;
            size_t e = tb_value(b, i, depth + 1);
            if (e == 0)
                return 0;
            i = nv_skip_ws(p, n, e);
            if (i >= n)
                return 0;
            if (p[i] == close) {
                i++;
                break;
            }
            if (p[i] != ',')
                return 0;
            i = nv_skip_ws(p, n, i + 1);
        }
    }
    b->t[self].len = (uint32_t)(i - b->t[self].off);
    b->t[self].next = b->k;
    fctx_t *x = b->x;
    if (!x->cont_full) {
        uint32_t off = b->t[self].off, h = (off * 2654435761u) >> 26; /* 6 bits */
        size_t probes = 0;
        while (x->cont_off[h] != 0 && probes++ < 64)
            h = (h + 1) & 63;
        if (probes >= 32 || self > UINT16_MAX) {
            x->cont_full = true; /* more than half full: stop, search the tape instead */
        } else {
            x->cont_off[h] = off + 1;
            x->cont_idx[h] = (uint16_t)self;
        }
    }
    return i;
}

static size_t tb_value(tb_t *b, size_t i, int depth)
{
    const char *p = b->p;
    size_t n = b->n, e;
    switch (p[i]) {
    case '"':
        e = tb_string(p, n, i, &b->escape);
        break;
    case '{':
    case '[':
        return tb_container(b, i, depth);
    case 't':
        e = n - i >= 4 && memcmp(p + i, "true", 4) == 0 ? i + 4 : 0;
        break;
    case 'f':
        e = n - i >= 5 && memcmp(p + i, "false", 5) == 0 ? i + 5 : 0;
        break;
    case 'n':
        e = n - i >= 4 && memcmp(p + i, "null", 4) == 0 ? i + 4 : 0;
        break;
    default:
        e = tb_number(p, n, i);
        break;
    }
    return e != 0 && tb_push(b, i, e) ? e : 0;
}

/* Validates the whole document p[0..n) (one value, whitespace around) and
 * writes its tape. 1: valid, tape complete; 0: invalid; -1: valid so far
 * but more than TAPE_MAX tokens. *doc is the value's view. */
static int tape_scan(fctx_t *x, const char *p, size_t n, tok_t *t, uint32_t *nt, sy_str_t *doc)
{
    tb_t b = {.p = p, .n = n, .t = t, .x = x};
    size_t i = nv_skip_ws(p, n, 0);
    size_t e = i < n ? tb_value(&b, i, 0) : 0;
    if (e == 0)
        return b.full ? -1 : 0;
    if (nv_skip_ws(p, n, e) != n)
        return 0;
    *nt = b.k;
    *doc = (sy_str_t){p + i, e - i};
    x->no_escape = !b.escape;
    return 1;
}

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
    if (!x->no_escape && memchr(s.ptr, '\\', s.len) != NULL) {
        x->bail = true;
        return false;
    }
    *out = s;
    return true;
}

/* Looks up keys of object o: vals[i] is the value of the last member
 * named keys[i], SY_STR_NULL when absent or null. Bails on an escaped key
 * (it might decode to one of keys). */
static void members(fctx_t *x, sy_str_t o, const sy_str_t keys[], size_t nk, sy_str_t *vals)
{
    for (size_t i = 0; i < nk; i++)
        vals[i] = SY_STR_NULL;
    nv_t it;
    if (x->bail || !nv_begin(x, &it, o, true)) {
        x->bail = true;
        return;
    }
    sy_str_t k, v;
    int rc;
    while ((rc = nv_next(&it, &k, &v)) == 1) {
        if (!x->no_escape && memchr(k.ptr, '\\', k.len) != NULL) {
            x->bail = true;
            return;
        }
        for (size_t i = 0; i < nk; i++) {
            if (k.len == keys[i].len && memcmp(k.ptr, keys[i].ptr, k.len) == 0) {
                vals[i] = v.ptr[0] == 'n' ? SY_STR_NULL : v;
                break;
            }
        }
    }
    if (rc < 0)
        x->bail = true;
}

static sy_str_t member(fctx_t *x, sy_str_t o, sy_str_t key)
{
    const sy_str_t keys[1] = {key};
    sy_str_t v;
    members(x, o, keys, 1, &v);
    return v;
}

/* Array iteration: elements are json-c's array items (null items are NULL
 * there, which no caller treats as an object or string either). */
static bool each_begin(fctx_t *x, nv_t *it, sy_str_t arr)
{
    if (x->bail || !nv_begin(x, it, arr, false)) {
        x->bail = true;
        return false;
    }
    return true;
}

static bool each_next(fctx_t *x, nv_t *it, sy_str_t *el)
{
    sy_str_t key;
    if (x->bail)
        return false;
    int rc = nv_next(it, &key, el);
    if (rc < 0)
        x->bail = true;
    return rc == 1;
}

#define EACH(x, arr, it, el)                                                                       \
    for (bool each_ok_ = each_begin((x), &(it), (arr)); each_ok_ && each_next((x), &(it), &(el));)

static size_t arr_len(fctx_t *x, sy_str_t arr)
{
    nv_t it;
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
    static const sy_str_t keys[] = {SY_STR("type"), SY_STR("text"), SY_STR("content")};
    int64_t n = 0;
    nv_t it;
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
    static const sy_str_t keys[] = {SY_STR("type"), SY_STR("text")};
    nv_t it;
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
    sy_str_t parts = member(x, content, SY_STR("parts"));
    if (!is_arr(parts))
        return 0;
    int64_t n = 0;
    nv_t it;
    sy_str_t p;
    EACH(x, parts, it, p)
    {
        if (is_obj(p))
            n += str_words(x, member(x, p, SY_STR("text")));
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
    static const sy_str_t keys[] = {SY_STR("role"), SY_STR("content")};
    size_t n = 0;
    nv_t it;
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
    nv_t it;
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
            static const sy_str_t keys[] = {SY_STR("function"), SY_STR("custom")};
            sy_str_t v[2];
            members(x, t, keys, 2, v);
            fn = is_obj(v[0]) ? v[0] : is_obj(v[1]) ? v[1] : SY_STR_NULL;
        }
        if (is_obj(fn))
            *schema = member(x, fn, SY_STR("parameters"));
    } else if (prov == SY_MOCK_ANTHROPIC) {
        fn = t;
        if (is_obj(fn))
            *schema = member(x, fn, SY_STR("input_schema"));
    } else {
        if (!is_obj(t))
            return false;
        static const sy_str_t keys[] = {SY_STR("functionDeclarations"),
                                        SY_STR("function_declarations")};
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
            static const sy_str_t skeys[] = {SY_STR("parametersJsonSchema"), SY_STR("parameters")};
            members(x, fn, skeys, 2, v);
            *schema = is_obj(v[0]) ? v[0] : v[1];
        }
    }
    if (!is_obj(*schema))
        *schema = SY_STR_NULL;
    sy_str_t s;
    if (!is_obj(fn) || !str_of(x, member(x, fn, SY_STR("name")), &s) || s.len == 0)
        return false;
    *name = s;
    return true;
}

/* usage.c build_args: the first required property, else the first one. */
static int tool_args(fctx_t *x, sy_mock_answer_t *a, sy_str_t schema)
{
    sy_str_t props = SY_STR_NULL, required = SY_STR_NULL;
    if (schema.ptr != NULL) {
        static const sy_str_t keys[] = {SY_STR("properties"), SY_STR("required")};
        sy_str_t v[2];
        members(x, schema, keys, 2, v);
        props = is_obj(v[0]) ? v[0] : SY_STR_NULL;
        required = is_arr(v[1]) ? v[1] : SY_STR_NULL;
    }
    sy_str_t key = SY_STR_NULL, k, el;
    nv_t it;
    if (required.ptr != NULL) {
        EACH(x, required, it, el)
        {
            str_of(x, el, &key);
            break;
        }
    }
    if (key.ptr == NULL && props.ptr != NULL && nv_begin(x, &it, props, true)) {
        int rc = nv_next(&it, &k, &el);
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
        nv_begin(x, &it, props, true);
        int rc;
        while ((rc = nv_next(&it, &k, &el)) == 1) {
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
            str_of(x, member(x, prop, SY_STR("type")), &type);
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

static int analyze(fctx_t *x, sy_mock_req_t *r, const char *body, size_t len, tok_t *tape)
{
    static const sy_str_t keys[] = {SY_STR("model"),
                                    SY_STR("stream"),
                                    SY_STR("stream_options"),
                                    SY_STR("messages"),
                                    SY_STR("tools"),
                                    SY_STR("system"),
                                    SY_STR("max_tokens"),
                                    SY_STR("contents"),
                                    SY_STR("systemInstruction"),
                                    SY_STR("system_instruction")};
    enum { K_MODEL, K_STREAM, K_OPTS, K_MSGS, K_TOOLS, K_SYSTEM, K_MAX, K_CONTENTS, K_SI, K_SI2 };
    sy_str_t v[SY_ARRAY_LEN(keys)] = {{0}};
    if (long_numbers(body, len))
        return SY_EAGAIN;

    /* One validating pass over the whole document; the walks below skip
     * through the bytes it vouched for without checking them again. */
    sy_str_t doc;
    if (len > UINT32_MAX)
        return SY_EAGAIN;
    int ts = tape_scan(x, body, len, tape, &x->ntape, &doc);
    if (ts == 0)
        return SY_EAGAIN;
    if (ts > 0) {
        x->doc = body; /* tape offsets count from the start of the body */
        x->tape = tape;
    } else if (!sy_jscan_document(body, len, &doc)) {
        return SY_EAGAIN; /* too many tokens for the tape: validate, then skip */
    }
    if (!is_obj(doc))
        return SY_EAGAIN;
    members(x, doc, keys, SY_ARRAY_LEN(keys), v);
    if (x->bail)
        return SY_EAGAIN;
    nv_t it;
    int rc;

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
            static const sy_str_t ckeys[] = {SY_STR("parts"), SY_STR("role")};
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
                if (is_obj(c) && str_of(x, member(x, c, SY_STR("text")), &s))
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
            sy_str_t iu = member(x, v[K_OPTS], SY_STR("include_usage"));
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
    tok_t tape[TAPE_MAX];
    int rc = analyze(&x, r, body, len, tape);
    if (rc != 0) {
        sy_mock_answer_free(&r->ans);
        r->model = SY_STR_NULL;
        r->stream = false;
        r->include_usage = false;
        r->prompt_tokens = 0;
        return SY_EAGAIN;
    }
    r->ans.nwords = words >= 0 ? words : (int64_t)r->ans.nbase;
    /* Every string this path took holds no backslash, and a valid JSON
     * string without one holds no quote or control byte either: its bytes
     * are already the escaped form. */
    r->ans.raw = true;
    r->model_raw = r->prov != SY_MOCK_GEMINI;
    return 0;
}
