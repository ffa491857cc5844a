/* OpenAI body helpers; see openai.h. */
#include "dataplane/openai.h"

#include <string.h>

#include "jscan.h"

size_t sy_openai_value_len(const char *p, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
            if (depth < 0)
                return 0;
        }
    }
    return 0;
}

static uint64_t get_u64(json_object *o, const char *key)
{
    int64_t v = 0;
    if (sy_json_get_int64(o, key, &v) != 0 || v < 0)
        return 0;
    return (uint64_t)v;
}

int sy_openai_usage_from_json(json_object *usage, sy_openai_usage_t *out)
{
    if (usage == NULL || json_object_get_type(usage) != json_type_object)
        return SY_EINVAL;
    sy_openai_usage_t u = {0};
    u.prompt_tokens = get_u64(usage, "prompt_tokens");
    u.completion_tokens = get_u64(usage, "completion_tokens");
    json_object *d = sy_json_get_object(usage, "prompt_tokens_details");
    if (d != NULL) {
        u.cached_tokens = get_u64(d, "cached_tokens");
        u.cache_write_tokens = get_u64(d, "cache_write_tokens");
    }
    *out = u;
    return 0;
}

/* Position of the '{' that follows the last `"usage"` key in p, or NULL. */
static const char *find_usage_object(const char *p, size_t len)
{
    /* Backwards from the end, quote by quote (memrchr): usage is the last
     * member of an OpenAI response, so the search usually stops within a
     * few quotes; the forward memmem walk read the whole body. The result is
     * the same: the last "usage" key followed by ':' and '{'. */
    static const char key[] = "\"usage"; /* followed by the closing quote */
    const size_t kl = sizeof(key) - 1;
    const char *end = p + len;
    size_t n = len;
    const char *qt;
    while (n > kl && (qt = memrchr(p, '"', n)) != NULL) {
        n = (size_t)(qt - p);
        if (n < kl || memcmp(qt - kl, key, kl) != 0)
            continue;
        const char *q = qt + 1;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
                q++;
            if (q < end && *q == '{')
                return q;
        }
    }
    return NULL;
}

/* A token count: a non-negative integer that fits int64_t, else 0 (as
 * sy_openai_usage_from_json reads a member that is no such integer). */
static uint64_t raw_count(sy_str_t v)
{
    uint64_t x = 0;
    if (!sy_jscan_u64(v, &x) || x > (uint64_t)INT64_MAX)
        return 0;
    return x;
}

/* Reads a raw usage object with the non-allocating scanner, which also
 * validates it (json-c built a tree of some twenty objects for these few
 * numbers, on every response). Duplicate members: the last wins, as with
 * json-c. SY_EINVAL when obj is not a valid JSON object. */
static int usage_from_raw(sy_str_t obj, sy_openai_usage_t *out)
{
    sy_jscan_t it, dit;
    sy_str_t k, v, dk, dv;
    if (!sy_jscan_begin(&it, obj, true))
        return SY_EINVAL;
    sy_openai_usage_t u = {0};
    int rc;
    while ((rc = sy_jscan_next(&it, &k, &v)) == 1) {
        if (sy_jscan_key_is(k, "prompt_tokens")) {
            u.prompt_tokens = raw_count(v);
        } else if (sy_jscan_key_is(k, "completion_tokens")) {
            u.completion_tokens = raw_count(v);
        } else if (sy_jscan_key_is(k, "prompt_tokens_details")) {
            u.cached_tokens = u.cache_write_tokens = 0;
            if (v.len == 0 || v.ptr[0] != '{' || !sy_jscan_begin(&dit, v, true))
                continue;
            int drc;
            while ((drc = sy_jscan_next(&dit, &dk, &dv)) == 1) {
                if (sy_jscan_key_is(dk, "cached_tokens"))
                    u.cached_tokens = raw_count(dv);
                else if (sy_jscan_key_is(dk, "cache_write_tokens"))
                    u.cache_write_tokens = raw_count(dv);
            }
            if (drc < 0)
                return SY_EINVAL;
        }
    }
    if (rc < 0)
        return SY_EINVAL;
    *out = u;
    return 0;
}

int sy_openai_find_usage(sy_json_parser_t *p, const char *body, size_t len, sy_openai_usage_t *out)
{
    SY_UNUSED(p);
    const char *obj = find_usage_object(body, len);
    if (obj == NULL)
        return SY_ENOENT;
    /* The scanner stops at the object's closing brace. */
    return usage_from_raw((sy_str_t){obj, len - (size_t)(obj - body)}, out);
}

int sy_openai_chunk_usage(sy_json_parser_t *p, sy_str_t data, sy_openai_usage_t *out,
                          bool *usage_only)
{
    SY_UNUSED(p);
    if (data.len == 0 || find_usage_object(data.ptr, data.len) == NULL)
        return SY_ENOENT;
    /* One validating pass over the chunk's top level: its last "usage" and
     * "choices" members (json-c's reading of duplicates). */
    sy_jscan_t it;
    sy_str_t k, v, usage = SY_STR_NULL, choices = SY_STR_NULL, doc;
    if (!sy_jscan_begin_doc(&it, data.ptr, data.len))
        return SY_EINVAL;
    int rc;
    while ((rc = sy_jscan_next(&it, &k, &v)) == 1) {
        if (sy_jscan_key_is(k, "usage"))
            usage = v;
        else if (sy_jscan_key_is(k, "choices"))
            choices = v;
    }
    if (rc < 0 || !sy_jscan_end_doc(&it, &doc))
        return SY_EINVAL;
    sy_openai_usage_t u;
    if (usage.len == 0 || usage.ptr[0] != '{' || usage_from_raw(usage, &u) != 0)
        return SY_ENOENT;
    bool only = choices.len == 0 || sy_str_eq_cstr(choices, "null"); /* json-c: absent */
    if (!only && choices.ptr[0] == '[') {
        sy_jscan_t ait;
        sy_str_t ak, av;
        only = sy_jscan_begin(&ait, choices, false) && sy_jscan_next(&ait, &ak, &av) == 0;
    }
    *out = u;
    *usage_only = only;
    return 0;
}

bool sy_openai_is_error_event(sy_str_t data)
{
    size_t i = 0;
    while (i < data.len && (data.ptr[i] == ' ' || data.ptr[i] == '\n' || data.ptr[i] == '\r'))
        i++;
    if (i >= data.len || data.ptr[i] != '{')
        return false;
    i++;
    while (i < data.len && (data.ptr[i] == ' ' || data.ptr[i] == '\n' || data.ptr[i] == '\r'))
        i++;
    return data.len - i >= 7 && memcmp(data.ptr + i, "\"error\"", 7) == 0;
}

static int append_nullable(sy_buf_t *out, const char *s)
{
    if (s == NULL)
        return sy_buf_append(out, "null", 4);
    return sy_buf_append_json_string(out, s, strlen(s));
}

int sy_openai_error_json(sy_buf_t *out, const char *message, const char *type, const char *param,
                         const char *code)
{
    int rc = 0;
    rc |= sy_buf_append_str(out, "{\"error\":{\"message\":");
    rc |= append_nullable(out, message ? message : "");
    rc |= sy_buf_append_str(out, ",\"type\":");
    rc |= append_nullable(out, type ? type : "invalid_request_error");
    rc |= sy_buf_append_str(out, ",\"param\":");
    rc |= append_nullable(out, param);
    rc |= sy_buf_append_str(out, ",\"code\":");
    rc |= append_nullable(out, code);
    rc |= sy_buf_append_str(out, "}}");
    return rc != 0 ? SY_ENOMEM : 0;
}
