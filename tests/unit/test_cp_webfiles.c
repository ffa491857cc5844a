/* Unit tests for controlplane/webfiles.c: the admin-web files under /admin/,
 * index and client-route fallback, content types, and confinement (no "..",
 * no hidden files, no symlinks, no directories). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "controlplane/webfiles.h"

static char dir[64];

static void put(const char *rel, const char *text)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sy-web-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char sub[96];
    snprintf(sub, sizeof(sub), "%s/assets", dir);
    mkdir(sub, 0700);
    put("index.html", "<!doctype html><title>admin</title>");
    put("assets/app.js", "console.log(1)");
    put(".secret", "no");
    char link[96];
    snprintf(link, sizeof(link), "%s/passwd.txt", dir);
    if (symlink("/etc/passwd", link) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Serves path; returns the status (0 when refused) and the body's start. */
static int serve(const char *path, char *body, size_t size, const char **ctype)
{
    sy_httpd_response_t res = {.status = 0, .content_type = "none"};
    sy_buf_init(&res.body);
    int rc = sy_webfiles_serve(dir, sy_str_from_cstr(path), &res);
    if (rc != 0) {
        assert_int_equal(res.status, 0); /* untouched on failure */
        assert_int_equal(res.body.len, 0);
        sy_buf_free(&res.body);
        return rc;
    }
    snprintf(body, size, "%.*s", (int)res.body.len, res.body.data);
    *ctype = res.content_type;
    sy_buf_free(&res.body);
    return res.status;
}

static void test_serves_and_falls_back(void **state)
{
    (void)state;
    char body[256];
    const char *ct = NULL;
    const char *index_paths[] = {"/admin", "/admin/", "/admin/teams", "/admin/tenants/ten_1/keys"};
    for (size_t i = 0; i < SY_ARRAY_LEN(index_paths); i++) {
        assert_int_equal(serve(index_paths[i], body, sizeof(body), &ct), 200);
        assert_string_equal(body, "<!doctype html><title>admin</title>");
        assert_string_equal(ct, "text/html; charset=utf-8");
    }
    assert_int_equal(serve("/admin/assets/app.js", body, sizeof(body), &ct), 200);
    assert_string_equal(body, "console.log(1)");
    assert_string_equal(ct, "text/javascript; charset=utf-8");
}

static void test_confined(void **state)
{
    (void)state;
    char body[256];
    const char *ct = NULL;
    static const struct {
        const char *path; /* request path */
        bool index;       /* true: answered with index.html (a client route), else refused */
    } cases[] = {
        {"/admin/../etc/passwd", false},
        {"/admin/assets/../../x", false},
        {"/admin/.secret", false},
        {"/admin/passwd.txt", false}, /* a symlink */
        {"/admin/missing.js", false},
        {"/admin//index.html", false},
        {"/adminx", false},
        {"/admin/a%2e%2e/b", false},
        {"/other/index.html", false},
        {"/admin/assets/", false},
        {"/admin/assets", true}, /* a directory is not served; the route is the app's */
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        int rc = serve(cases[i].path, body, sizeof(body), &ct);
        if (cases[i].index) {
            assert_int_equal(rc, 200);
            assert_string_equal(body, "<!doctype html><title>admin</title>");
        } else if (rc != SY_ENOENT) {
            fail_msg("%s: %d %s", cases[i].path, rc, rc == 200 ? body : "");
        }
    }
    /* Without a directory nothing is served. */
    sy_httpd_response_t res = {.status = 0};
    sy_buf_init(&res.body);
    assert_int_equal(sy_webfiles_serve(NULL, SY_STR("/admin/"), &res), SY_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serves_and_falls_back),
        cmocka_unit_test(test_confined),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
