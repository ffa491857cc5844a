/* Static admin-web files: see webfiles.h. */
#include "webfiles.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REL 200

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext;  /* file extension with the dot */
        const char *type; /* Content-Type */
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (dot != NULL)
        for (size_t i = 0; i < SY_ARRAY_LEN(types); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* A relative path of safe characters, no empty or dot-only segments. */
static bool safe_rel(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > MAX_REL || rel[0] == '/' || rel[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = rel[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '/'))
            return false;
    }
    return strstr(rel, "//") == NULL && strstr(rel, "..") == NULL && rel[0] != '.' &&
           strstr(rel, "/.") == NULL;
}

static int read_file(const char *dir, const char *rel, sy_buf_t *out)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return SY_ENOENT;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return SY_ENOENT;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = SY_ENOENT;
    else if (st.st_size > SY_WEBFILES_MAX_BYTES)
        rc = SY_E2BIG;
    else if (sy_buf_reserve(out, (size_t)st.st_size + 1) != 0)
        rc = SY_ENOMEM;
    while (rc == 0) {
        ssize_t got = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = SY_EIO;
            break;
        }
        if (got == 0)
            break;
        out->len += (size_t)got;
        if (out->len > (size_t)SY_WEBFILES_MAX_BYTES) {
            rc = SY_E2BIG;
            break;
        }
        if (out->len + 1 >= out->cap && sy_buf_reserve(out, 4096) != 0)
            rc = SY_ENOMEM;
    }
    if (rc == 0 && out->data)
        out->data[out->len] = '\0';
    close(fd);
    return rc;
}

int sy_webfiles_serve(const char *dir, sy_str_t path, sy_httpd_response_t *res)
{
    static const char base[] = "/admin";
    if (dir == NULL || !sy_str_has_prefix(path, base))
        return SY_ENOENT;
    sy_str_t rest = {path.ptr + strlen(base), path.len - strlen(base)};
    char rel[MAX_REL + 1];
    if (rest.len == 0 || (rest.len == 1 && rest.ptr[0] == '/')) {
        snprintf(rel, sizeof(rel), "index.html");
    } else {
        if (rest.ptr[0] != '/' || rest.len - 1 > MAX_REL)
            return SY_ENOENT;
        memcpy(rel, rest.ptr + 1, rest.len - 1);
        rel[rest.len - 1] = '\0';
        if (memchr(rest.ptr, '\0', rest.len) != NULL || !safe_rel(rel))
            return SY_ENOENT;
    }
    sy_buf_t body;
    sy_buf_init(&body);
    int rc = read_file(dir, rel, &body);
    const char *last = strrchr(rel, '/');
    last = last ? last + 1 : rel;
    if (rc == SY_ENOENT && strchr(last, '.') == NULL) {
        snprintf(rel, sizeof(rel), "index.html");
        sy_buf_reset(&body);
        rc = read_file(dir, rel, &body);
    }
    if (rc != 0) {
        sy_buf_free(&body);
        return rc;
    }
    sy_buf_free(&res->body);
    res->body = body;
    res->status = 200;
    res->content_type = content_type(rel);
    return 0;
}
