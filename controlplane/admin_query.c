/* Query-string parameters of admin requests, percent-decoded into caller
 * buffers (no allocation). */
#include "admin_internal.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies the percent-decoded value of query parameter name into out.
 * Returns 1 when present, 0 when absent, -1 when malformed or too long. */
static int query_get(const rq_t *r, const char *name, char *out, size_t size)
{
    sy_str_t q = r->req->query;
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        size_t end = i;
        while (end < q.len && q.ptr[end] != '&')
            end++;
        const char *eq = memchr(q.ptr + i, '=', end - i);
        size_t kl = eq ? (size_t)(eq - (q.ptr + i)) : end - i;
        if (kl == nl && memcmp(q.ptr + i, name, nl) == 0) {
            size_t o = 0;
            for (const char *p = eq ? eq + 1 : q.ptr + end; p < q.ptr + end; p++) {
                char c = *p;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (p + 2 >= q.ptr + end)
                        return -1;
                    int h = hexval(p[1]), l = hexval(p[2]);
                    if (h < 0 || l < 0)
                        return -1;
                    c = (char)(h * 16 + l);
                    p += 2;
                }
                if (c == '\0' || o + 1 >= size)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int sy_admin__query_param(rq_t *r, const char *name, char *out, size_t size)
{
    int rc = query_get(r, name, out, size);
    if (rc < 0) {
        SY_ADMIN_BAD_FIELD(r, name, "invalid_value", "query parameter %s is malformed or too long",
                           name);
        return -1;
    }
    if (rc == 0)
        out[0] = '\0';
    return 0;
}
