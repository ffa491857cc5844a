/* Strict JSON over json-c.
 *
 * json-c's strict mode still accepts NaN, Infinity and -Infinity, numbers
 * such as "1." and "1.e5", and silently clamps integers beyond 64 bits, so
 * after a successful parse the tree is walked once: every double's original
 * text (kept by json-c as the node's userdata, which is also what makes
 * doubles survive a round trip exactly) is checked against the JSON number
 * grammar, and integers at the clamping bounds are refused. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct sy_json_parser {
    json_tokener *tok; /* owned; strict, depth SY_JSON_MAX_DEPTH */
};

static const char why_invalid[] = "invalid JSON";
static const char why_trailing[] = "trailing bytes after JSON";
static const char why_nonfinite[] = "NaN or Infinity is not JSON";
static const char why_depth[] = "JSON nested too deeply";
static const char why_range[] = "JSON number out of range";
static const char why_empty[] = "empty JSON document";
static const char why_utf8[] = "invalid UTF-8 in JSON";

sy_json_parser_t *sy_json_parser_new(void)
{
    sy_json_parser_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tok = json_tokener_new_ex(SY_JSON_MAX_DEPTH);
    if (p->tok == NULL) {
        free(p);
        return NULL;
    }
    json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return p;
}

void sy_json_parser_free(sy_json_parser_t *p)
{
    if (p == NULL)
        return;
    json_tokener_free(p->tok);
    free(p);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True when s is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_text_ok(const char *s)
{
    if (s == NULL)
        return false;
    if (*s == '-')
        s++;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (is_digit(*s))
            s++;
    } else {
        return false;
    }
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return false;
        while (is_digit(*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!is_digit(*s))
            return false;
        while (is_digit(*s))
            s++;
    }
    return *s == '\0';
}

/* Returns NULL when every number in o is valid JSON, else the reason. */
static const char *check_tree(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_double: {
        const char *text = json_object_get_userdata(o);
        if (number_text_ok(text))
            return NULL;
        /* json-c's own spellings of the non-finite values start with a letter
         * after an optional sign ("NaN", "Infinity", "-Infinity"). */
        if (text != NULL) {
            const char *t = text[0] == '-' ? text + 1 : text;
            if (*t == 'N' || *t == 'I' || *t == 'n' || *t == 'i')
                return why_nonfinite;
        }
        return why_invalid;
    }
    case json_type_int: {
        /* json-c clamps out-of-range integers to these bounds; an input that
         * was clamped cannot be told apart from the bound itself. */
        if (json_object_get_int64(o) == INT64_MIN)
            return why_range;
        if (json_object_get_uint64(o) == UINT64_MAX)
            return why_range;
        return NULL;
    }
    case json_type_array: {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            const char *why = check_tree(json_object_array_get_idx(o, i));
            if (why)
                return why;
        }
        return NULL;
    }
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key;
            const char *why = check_tree(val);
            if (why)
                return why;
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

static const char *why_of(enum json_tokener_error e)
{
    switch (e) {
    case json_tokener_error_depth:
        return why_depth;
    case json_tokener_error_parse_utf8_string:
        return why_utf8;
    default:
        return why_invalid;
    }
}

int sy_json_parse(sy_json_parser_t *p, const char *data, size_t len, json_object **out,
                  const char **why)
{
    static const char *ignored;
    if (why == NULL)
        why = &ignored;
    if (len > INT32_MAX) {
        *why = "JSON document too large";
        return SY_E2BIG;
    }
    size_t start = 0;
    while (start < len && is_ws(data[start]))
        start++;
    if (start == len) {
        *why = why_empty;
        return SY_EINVAL;
    }
    json_tokener *tok = p->tok;
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (o == NULL && e == json_tokener_continue) {
        /* A top-level scalar ("123", "true") is only complete once a byte
         * follows it: the document ends here, so supply one space. */
        o = json_tokener_parse_ex(tok, " ", 1);
        e = json_tokener_get_error(tok);
        if (o == NULL) {
            *why = e == json_tokener_continue ? why_invalid : why_of(e);
            json_tokener_reset(tok);
            return SY_EINVAL;
        }
    } else if (o == NULL) {
        *why = why_of(e);
        json_tokener_reset(tok);
        return SY_EINVAL;
    } else {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            if (!is_ws(data[i])) {
                json_object_put(o);
                json_tokener_reset(tok);
                *why = why_trailing;
                return SY_EINVAL;
            }
        }
    }
    json_tokener_reset(tok);
    const char *bad = check_tree(o);
    if (bad != NULL) {
        json_object_put(o);
        *why = bad;
        return SY_EINVAL;
    }
    *out = o;
    return SY_OK;
}

int sy_json_parse_once(const char *data, size_t len, json_object **out, sy_err_t *err)
{
    sy_json_parser_t *p = sy_json_parser_new();
    if (p == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    const char *why = NULL;
    int rc = sy_json_parse(p, data, len, out, &why);
    sy_json_parser_free(p);
    if (rc < 0)
        return sy_err_set(err, rc, "%s", why ? why : why_invalid);
    return SY_OK;
}

const char *sy_json_to_string(json_object *o, size_t *len)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (len)
        *len = s ? n : 0;
    return s;
}

json_object *sy_json_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

const char *sy_json_get_string(json_object *o, const char *key, size_t *len)
{
    json_object *v = sy_json_get(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

int sy_json_get_int64(json_object *o, const char *key, int64_t *out)
{
    json_object *v = sy_json_get(o, key);
    if (v == NULL)
        return SY_ENOENT;
    if (!json_object_is_type(v, json_type_int))
        return SY_EINVAL;
    /* json-c keeps values above INT64_MAX as uint64; they do not fit. */
    if (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) > INT64_MAX)
        return SY_EINVAL;
    *out = json_object_get_int64(v);
    return SY_OK;
}

int sy_json_get_double(json_object *o, const char *key, double *out)
{
    json_object *v = sy_json_get(o, key);
    if (v == NULL)
        return SY_ENOENT;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return SY_EINVAL;
    *out = json_object_get_double(v);
    return SY_OK;
}

int sy_json_get_bool(json_object *o, const char *key, bool *out)
{
    json_object *v = sy_json_get(o, key);
    if (v == NULL)
        return SY_ENOENT;
    if (!json_object_is_type(v, json_type_boolean))
        return SY_EINVAL;
    *out = json_object_get_boolean(v) != 0;
    return SY_OK;
}

json_object *sy_json_get_object(json_object *o, const char *key)
{
    json_object *v = sy_json_get(o, key);
    return (v && json_object_is_type(v, json_type_object)) ? v : NULL;
}

json_object *sy_json_get_array(json_object *o, const char *key)
{
    json_object *v = sy_json_get(o, key);
    return (v && json_object_is_type(v, json_type_array)) ? v : NULL;
}
