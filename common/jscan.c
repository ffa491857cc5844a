/* Validating JSON scanner (see jscan.h). */
#include "jscan.h"

#include <string.h>

#include "json.h"

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && is_ws(p[i]))
        i++;
    return i;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of a valid UTF-8 sequence starting at p (lead byte >= 0x80), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;
        if (c == 0xF4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

/* Nonzero when one of the 8 bytes of w is a quote, a backslash, a control
 * character or not ASCII (exact: the borrow tricks only misreport bytes
 * above a real match). */
static uint64_t special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t ctl = (w - ones * 0x20) & ~w; /* a byte < 0x20 (non-ASCII: `w` itself) */
    uint64_t quote = (q - ones) & ~q;      /* a zero byte of q */
    uint64_t bslash = (b - ones) & ~b;
    return (ctl | quote | bslash | w) & highs;
}

size_t sy_jscan_string(const char *p, size_t n, bool *escape)
{
    size_t i = 1;
    while (i < n) {
        /* Plain bytes eight at a time, then straight to the first special
         * one (the lowest flagged byte is exact on a little-endian load). */
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            uint64_t m = special8(w);
            if (m == 0) {
                i += 8;
                continue;
            }
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            i += (size_t)__builtin_ctzll(m) / 8;
#endif
        }
        unsigned char c = (unsigned char)p[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (escape != NULL)
                *escape = true;
            if (i + 1 >= n)
                return 0;
            char e = p[i + 1];
            if (e == 'u') {
                if (i + 5 >= n || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) || !is_hex(p[i + 4]) ||
                    !is_hex(p[i + 5]))
                    return 0;
                i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                i += 2;
            } else {
                return 0;
            }
        } else if (c >= 0x80) {
            size_t l = utf8_len((const unsigned char *)p + i, n - i);
            if (l == 0)
                return 0;
            i += l;
        } else {
            i++;
        }
    }
    return 0;
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

size_t sy_jscan_number(const char *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && p[i] >= '1' && p[i] <= '9') {
        while (i < n && digit(p[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !digit(p[i]))
            return 0;
        while (i < n && digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !digit(p[i]))
            return 0;
        while (i < n && digit(p[i]))
            i++;
    }
    return i;
}

static size_t scan_value(const char *p, size_t n, int depth);

static size_t scan_container(const char *p, size_t n, int depth)
{
    bool obj = p[0] == '{';
    char close = obj ? '}' : ']';
    if (depth >= SY_JSON_MAX_DEPTH)
        return 0;
    size_t i = skip_ws(p, n, 1);
    if (i < n && p[i] == close)
        return i + 1;
    for (;;) {
        if (obj) {
            if (i >= n || p[i] != '"')
                return 0;
            size_t k = sy_jscan_string(p + i, n - i, NULL);
            if (k == 0)
                return 0;
            i = skip_ws(p, n, i + k);
            if (i >= n || p[i] != ':')
                return 0;
            i = skip_ws(p, n, i + 1);
        }
        if (i >= n)
            return 0;
        size_t v = scan_value(p + i, n - i, depth + 1);
        if (v == 0)
            return 0;
        i = skip_ws(p, n, i + v);
        if (i >= n)
            return 0;
        if (p[i] == close)
            return i + 1;
        if (p[i] != ',')
            return 0;
        i = skip_ws(p, n, i + 1);
    }
}

static size_t scan_value(const char *p, size_t n, int depth)
{
    if (n == 0)
        return 0;
    switch (p[0]) {
    case '"':
        return sy_jscan_string(p, n, NULL);
    case '{':
    case '[':
        return scan_container(p, n, depth);
    case 't':
        return n >= 4 && memcmp(p, "true", 4) == 0 ? 4 : 0;
    case 'f':
        return n >= 5 && memcmp(p, "false", 5) == 0 ? 5 : 0;
    case 'n':
        return n >= 4 && memcmp(p, "null", 4) == 0 ? 4 : 0;
    default:
        return sy_jscan_number(p, n);
    }
}

size_t sy_jscan_value(const char *p, size_t n)
{
    return scan_value(p, n, 0);
}

bool sy_jscan_document(const char *p, size_t n, sy_str_t *val)
{
    size_t i = skip_ws(p, n, 0);
    size_t v = i < n ? scan_value(p + i, n - i, 0) : 0;
    if (v == 0 || skip_ws(p, n, i + v) != n)
        return false;
    val->ptr = p + i;
    val->len = v;
    return true;
}

bool sy_jscan_begin(sy_jscan_t *it, sy_str_t v, bool is_object)
{
    if (v.len < 2 || v.ptr[0] != (is_object ? '{' : '['))
        return false;
    it->p = v.ptr;
    it->n = v.len;
    it->i = 1;
    it->prev_end = 1;
    it->last_end = 1;
    it->key_at = 0;
    it->state = 0;
    it->is_object = is_object;
    return true;
}

int sy_jscan_next(sy_jscan_t *it, sy_str_t *key, sy_str_t *val)
{
    const char *p = it->p;
    size_t n = it->n;
    char close = it->is_object ? '}' : ']';
    if (it->state == 2)
        return 0;
    size_t i = skip_ws(p, n, it->i);
    if (i >= n)
        return -1;
    if (p[i] == close) {
        it->state = 2;
        it->i = i + 1; /* just past the close */
        return 0;
    }
    if (it->state == 1) {
        if (p[i] != ',')
            return -1;
        i = skip_ws(p, n, i + 1);
        if (i >= n)
            return -1;
    }
    *key = SY_STR_NULL;
    it->key_at = i;
    if (it->is_object) {
        if (p[i] != '"')
            return -1;
        size_t k = sy_jscan_string(p + i, n - i, NULL);
        if (k == 0)
            return -1;
        key->ptr = p + i + 1;
        key->len = k - 2;
        i = skip_ws(p, n, i + k);
        if (i >= n || p[i] != ':')
            return -1;
        i = skip_ws(p, n, i + 1);
    }
    size_t v = i < n ? scan_value(p + i, n - i, 1) : 0;
    if (v == 0)
        return -1;
    val->ptr = p + i;
    val->len = v;
    it->prev_end = it->last_end;
    it->last_end = i + v;
    it->i = i + v;
    it->state = 1;
    return 1;
}

bool sy_jscan_key_is(sy_str_t key, const char *lit)
{
    size_t l = strlen(lit);
    return key.len == l && memcmp(key.ptr, lit, l) == 0;
}

bool sy_jscan_str_is(sy_str_t val, const char *lit)
{
    size_t l = strlen(lit);
    return val.len == l + 2 && val.ptr[0] == '"' && memcmp(val.ptr + 1, lit, l) == 0 &&
           val.ptr[l + 1] == '"';
}

bool sy_jscan_u64(sy_str_t val, uint64_t *out)
{
    uint64_t x = 0;
    if (val.len == 0 || val.len > 19)
        return false;
    for (size_t i = 0; i < val.len; i++) {
        if (!digit(val.ptr[i]))
            return false;
        x = x * 10 + (uint64_t)(val.ptr[i] - '0');
    }
    *out = x;
    return true;
}

bool sy_jscan_begin_doc(sy_jscan_t *it, const char *p, size_t n)
{
    size_t i = skip_ws(p, n, 0);
    return i < n && sy_jscan_begin(it, (sy_str_t){p + i, n - i}, true);
}

bool sy_jscan_end_doc(const sy_jscan_t *it, sy_str_t *doc)
{
    if (it->state != 2 || skip_ws(it->p, it->n, it->i) != it->n)
        return false;
    doc->ptr = it->p;
    doc->len = it->i;
    return true;
}
