/* Strict JSON over json-c.
 *
 * json-c's strict mode still accepts NaN, Infinity and -Infinity, single
 * quotes, raw control characters in strings, numbers such as "1.", "1.e5" and
 * "-01", and silently clamps integers beyond 64 bits. A cheap byte pass
 * (prescan) refuses all of these before json-c builds the tree; only when an
 * integer of 19 or more digits was seen is the tree walked for clamped values.
 * Doubles keep their original text in json-c, so they survive a round trip
 * exactly. */
#include "json.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

struct sy_json_parser {
    json_tokener *tok; /* owned; strict, depth SY_JSON_MAX_DEPTH */
    locale_t c_locale; /* owned; the "C" locale (glibc's static object), 0 if unavailable */
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
    /* prescan enforces SY_JSON_MAX_DEPTH exactly; the tokener's own limit
     * (which counts a scalar inside the innermost container) is a backstop. */
    p->tok = json_tokener_new_ex(SY_JSON_MAX_DEPTH + 2);
    if (p->tok == NULL) {
        free(p);
        return NULL;
    }
    json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    /* json_tokener_parse_ex (json-c 0.16) runs duplocale(current) +
     * newlocale(LC_NUMERIC_MASK, "C", dup) + uselocale on every call, and
     * freelocale at the end: mallocs, a global lock and a getenv per parse.
     * glibc returns its static "C" object from both without allocating when
     * the current locale already is that object (and freelocale ignores it),
     * so sy_json_parse switches the thread to it around json-c and back:
     * numbers parse exactly as json-c intends ("C"), for a fraction of the
     * cost. On failure the switch is skipped (json-c's own path still works). */
    p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    return p;
}

void sy_json_parser_free(sy_json_parser_t *p)
{
    if (p == NULL)
        return;
    json_tokener_free(p->tok);
    if (p->c_locale != (locale_t)0)
        freelocale(p->c_locale);
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

/* True when s[0..n) is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * *plain_digits receives the digit count of an integer without fraction or
 * exponent (0 otherwise), so callers can spot integers json-c would clamp. */
static bool number_ok(const char *s, size_t n, size_t *plain_digits)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t int_start = i;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return false;
    }
    size_t int_digits = i - int_start;
    bool plain = true;
    if (i < n && s[i] == '.') {
        plain = false;
        i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        plain = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    *plain_digits = plain ? int_digits : 0;
    return i == n;
}

static bool is_number_char(char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One pass over the bytes for what json-c's strict mode lets through:
 * NaN/Infinity, single-quoted strings, raw control characters in strings,
 * numbers such as "1.", "1.e5" and "-01", nesting deeper than the limit, and
 * anything after the first complete value. Structure itself is left to
 * json-c. On success *value_len is the length of the document up to the end
 * of its value and *need_range says an integer may have been clamped. */
static const char *prescan(const char *s, size_t n, size_t *value_len, bool *need_range)
{
    int depth = 0;
    bool ended = false; /* the top-level value is complete */
    size_t end = n;
    *need_range = false;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (ended) {
            if (!is_ws(c))
                return why_trailing;
            i++;
            continue;
        }
        if (c == '"') {
            i++;
            while (i < n && s[i] != '"') {
                if ((unsigned char)s[i] < 0x20)
                    return why_invalid;
                if (s[i] == '\\')
                    i++;
                i++;
            }
            if (i >= n)
                return why_invalid;
            i++;
            if (depth == 0) {
                ended = true;
                end = i;
            }
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > SY_JSON_MAX_DEPTH)
                return why_depth;
            i++;
            continue;
        }
        if (c == ']' || c == '}') {
            if (--depth < 0)
                return why_invalid;
            i++;
            if (depth == 0) {
                ended = true;
                end = i;
            }
            continue;
        }
        if (c == '-' && i + 1 < n && (s[i + 1] == 'I' || s[i + 1] == 'N'))
            return why_nonfinite;
        if (is_digit(c) || c == '-') {
            size_t t = i;
            while (t < n && is_number_char(s[t]))
                t++;
            size_t plain_digits = 0;
            if (!number_ok(s + i, t - i, &plain_digits))
                return why_invalid;
            /* 19 digits reach INT64_MAX's order; json-c clamps beyond 64 bits. */
            if (plain_digits >= 19)
                *need_range = true;
            i = t;
        } else if (is_alpha(c)) {
            size_t t = i;
            while (t < n && is_alpha(s[t]))
                t++;
            sy_str_t word = {s + i, t - i};
            if (c == 'N' || c == 'I')
                return why_nonfinite;
            if (!sy_str_eq_cstr(word, "true") && !sy_str_eq_cstr(word, "false") &&
                !sy_str_eq_cstr(word, "null"))
                return why_invalid;
            i = t;
        } else if (is_ws(c) || c == ',' || c == ':') {
            i++;
            continue;
        } else {
            return why_invalid;
        }
        /* A number or literal just ended. */
        if (depth == 0) {
            ended = true;
            end = i;
        }
    }
    *value_len = end;
    return NULL;
}

/* Returns why_range when an integer in o lies at the bounds json-c clamps
 * out-of-range integers to (a clamped value cannot be told apart from the
 * bound itself, so both are refused), else NULL. */
static const char *check_range(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_int:
        if (json_object_get_int64(o) == INT64_MIN || json_object_get_uint64(o) == UINT64_MAX)
            return why_range;
        return NULL;
    case json_type_array: {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            const char *why = check_range(json_object_array_get_idx(o, i));
            if (why)
                return why;
        }
        return NULL;
    }
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key;
            const char *why = check_range(val);
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
    size_t value_len = len;
    bool need_range = false;
    const char *bad = prescan(data, len, &value_len, &need_range);
    if (bad != NULL) {
        *why = bad;
        return SY_EINVAL;
    }
    json_tokener *tok = p->tok;
    locale_t old_locale = p->c_locale != (locale_t)0 ? uselocale(p->c_locale) : (locale_t)0;
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, data, (int)value_len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (e == json_tokener_continue) {
        /* A top-level scalar ("123", "true") is only complete once a byte
         * follows it: the document ends here, so supply one space. */
        o = json_tokener_parse_ex(tok, " ", 1);
        e = json_tokener_get_error(tok);
    }
    if (old_locale != (locale_t)0)
        uselocale(old_locale);
    json_tokener_reset(tok);
    if (e != json_tokener_success) {
        json_object_put(o);
        *why = e == json_tokener_continue ? why_invalid : why_of(e);
        return SY_EINVAL;
    }
    /* o is NULL for the document "null", which json-c represents so. */
    if (need_range && o != NULL && (bad = check_range(o)) != NULL) {
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
