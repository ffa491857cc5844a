/* Growable byte buffers and string-view helpers. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy_buf_init(sy_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int sy_buf_reserve(sy_buf_t *b, size_t extra)
{
    /* One spare byte is always kept so that data stays NUL-terminated. */
    if (extra > SIZE_MAX - b->len - 1)
        return SY_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return SY_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return SY_ENOMEM;
    b->data = p;
    b->cap = cap;
    return SY_OK;
}

int sy_buf_append(sy_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return SY_OK;
    int rc = sy_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SY_OK;
}

int sy_buf_append_str(sy_buf_t *b, const char *s)
{
    return sy_buf_append(b, s, strlen(s));
}

int sy_buf_append_view(sy_buf_t *b, sy_str_t s)
{
    return sy_buf_append(b, s.ptr, s.len);
}

int sy_buf_vappendf(sy_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return SY_EINVAL;
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return SY_OK;
    }
    int rc = sy_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_copy(ap2, ap);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return SY_OK;
}

int sy_buf_appendf(sy_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sy_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

size_t sy_buf_json_escape(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";
    static const char short_form[] = {['"'] = '"',  ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
                                      ['\t'] = 't', ['\b'] = 'b',  ['\f'] = 'f'};
    esc[0] = '\\';
    if (c < sizeof(short_form) && short_form[c] != 0) {
        esc[1] = short_form[c];
        return 2;
    }
    esc[1] = 'u';
    esc[2] = '0';
    esc[3] = '0';
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
}

int sy_buf_append_json_string(sy_buf_t *b, const char *s, size_t n)
{
    /* Worst case is six bytes per input byte plus the two quotes. */
    if (n > (SIZE_MAX - 3) / 6)
        return SY_ENOMEM;
    int rc = sy_buf_reserve(b, n + 2);
    if (rc < 0)
        return rc;
    b->data[b->len++] = '"';
    size_t run = 0; /* start of the pending run of bytes copied as is */
    for (size_t i = 0; i < n; i++) {
        if (sy_buf_json_plain((unsigned char)s[i]))
            continue;
        char esc[6];
        size_t elen = sy_buf_json_escape((unsigned char)s[i], esc);
        size_t chunk = i - run;
        rc = sy_buf_reserve(b, chunk + elen + (n - i) + 1);
        if (rc < 0)
            return rc;
        memcpy(b->data + b->len, s + run, chunk);
        b->len += chunk;
        memcpy(b->data + b->len, esc, elen);
        b->len += elen;
        run = i + 1;
    }
    size_t chunk = n - run;
    rc = sy_buf_reserve(b, chunk + 1);
    if (rc < 0)
        return rc;
    if (chunk)
        memcpy(b->data + b->len, s + run, chunk);
    b->len += chunk;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return SY_OK;
}

void sy_buf_consume(sy_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->data)
            b->data[0] = '\0';
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void sy_buf_reset(sy_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sy_buf_free(sy_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    sy_buf_init(b);
}

char *sy_buf_steal(sy_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    sy_buf_init(b);
    return p;
}

sy_str_t sy_str_from_cstr(const char *s)
{
    if (s == NULL)
        return SY_STR_NULL;
    return (sy_str_t){s, strlen(s)};
}

bool sy_str_eq(sy_str_t a, sy_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool sy_str_eq_cstr(sy_str_t a, const char *s)
{
    return sy_str_eq(a, sy_str_from_cstr(s));
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool sy_str_case_eq_cstr(sy_str_t a, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != a.len)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool sy_str_has_prefix(sy_str_t a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && (n == 0 || memcmp(a.ptr, prefix, n) == 0);
}

sy_str_t sy_str_trim(sy_str_t a)
{
    while (a.len > 0 && (a.ptr[0] == ' ' || a.ptr[0] == '\t')) {
        a.ptr++;
        a.len--;
    }
    while (a.len > 0 && (a.ptr[a.len - 1] == ' ' || a.ptr[a.len - 1] == '\t'))
        a.len--;
    return a;
}

int sy_str_to_u64(sy_str_t a, uint64_t *out)
{
    if (a.len == 0)
        return SY_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char c = (unsigned char)a.ptr[i];
        if (c < '0' || c > '9')
            return SY_EINVAL;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SY_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return SY_OK;
}

char *sy_str_dup(sy_str_t a)
{
    char *p = malloc(a.len + 1);
    if (p == NULL)
        return NULL;
    if (a.len)
        memcpy(p, a.ptr, a.len);
    p[a.len] = '\0';
    return p;
}
