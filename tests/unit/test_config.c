/* Unit tests for common/config.c: flag forms, environment fallback,
 * defaults, typed values, errors naming the flag, and --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"

typedef struct cfg {
    const char *listen;
    int64_t workers;
    bool verbose;
    int64_t timeout_ms;
    int64_t max_body;
    const char *nodefault;
} cfg_t;

static void opts_for(cfg_t *c, sy_config_option_t o[6])
{
    memset(c, 0, sizeof(*c));
    c->nodefault = "untouched";
    sy_config_option_t tmpl[6] = {
        {"listen", "SY_TEST_LISTEN", SY_CONFIG_STRING, &c->listen, "127.0.0.1:8080",
         "address to listen on"},
        {"workers", "SY_TEST_WORKERS", SY_CONFIG_INT, &c->workers, "2", "worker threads"},
        {"verbose", "SY_TEST_VERBOSE", SY_CONFIG_BOOL, &c->verbose, "false", "log more"},
        {"timeout", "SY_TEST_TIMEOUT", SY_CONFIG_DURATION, &c->timeout_ms, "30s",
         "upstream timeout"},
        {"max-body", NULL, SY_CONFIG_SIZE, &c->max_body, "1m", "request body cap"},
        {"nodefault", NULL, SY_CONFIG_STRING, &c->nodefault, NULL, "left alone when absent"},
    };
    memcpy(o, tmpl, sizeof(tmpl));
}

static void clear_env(void)
{
    unsetenv("SY_TEST_LISTEN");
    unsetenv("SY_TEST_WORKERS");
    unsetenv("SY_TEST_VERBOSE");
    unsetenv("SY_TEST_TIMEOUT");
}

static int parse(cfg_t *c, sy_err_t *err, int argc, const char **argv)
{
    sy_config_option_t o[6];
    opts_for(c, o);
    return sy_config_parse(o, 6, argc, (char **)argv, err);
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    cfg_t c;
    sy_err_t err;
    const char *argv[] = {"prog"};
    assert_int_equal(parse(&c, &err, 1, argv), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(c.workers, 2);
    assert_false(c.verbose);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.max_body, 1024 * 1024);
    assert_string_equal(c.nodefault, "untouched");
}

static void test_flag_forms(void **state)
{
    (void)state;
    clear_env();
    cfg_t c;
    sy_err_t err;
    const char *argv[] = {"prog",         "--listen",  "0.0.0.0:9", "--workers=8",
                          "--verbose",    "--timeout", "250ms",     "--max-body=64k",
                          "--nodefault=", "--workers", "-3"};
    assert_int_equal(parse(&c, &err, (int)SY_ARRAY_LEN(argv), argv), 0);
    assert_string_equal(c.listen, "0.0.0.0:9");
    assert_ptr_equal(c.listen, argv[2]); /* borrowed, not copied */
    assert_int_equal(c.workers, -3);     /* the last occurrence wins */
    assert_true(c.verbose);
    assert_int_equal(c.timeout_ms, 250);
    assert_int_equal(c.max_body, 64 * 1024);
    assert_string_equal(c.nodefault, "");

    const char *argv2[] = {"prog", "--verbose=no", "--timeout=2m"};
    assert_int_equal(parse(&c, &err, 3, argv2), 0);
    assert_false(c.verbose);
    assert_int_equal(c.timeout_ms, 120000);
    const char *argv3[] = {"prog", "--verbose", "--no-verbose"};
    assert_int_equal(parse(&c, &err, 3, argv3), 0);
    assert_false(c.verbose);
}

static void test_env_fallback_and_precedence(void **state)
{
    (void)state;
    clear_env();
    setenv("SY_TEST_LISTEN", "10.0.0.1:1", 1);
    setenv("SY_TEST_WORKERS", "16", 1);
    setenv("SY_TEST_VERBOSE", "yes", 1);
    setenv("SY_TEST_TIMEOUT", "1h", 1);
    cfg_t c;
    sy_err_t err;
    const char *argv[] = {"prog", "--workers", "4"};
    assert_int_equal(parse(&c, &err, 3, argv), 0);
    assert_string_equal(c.listen, "10.0.0.1:1"); /* env over default */
    assert_int_equal(c.workers, 4);              /* flag over env */
    assert_true(c.verbose);
    assert_int_equal(c.timeout_ms, 3600000);
    /* An empty variable counts as unset. */
    setenv("SY_TEST_LISTEN", "", 1);
    assert_int_equal(parse(&c, &err, 1, argv), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    /* A bad value from the environment names the variable. */
    setenv("SY_TEST_WORKERS", "many", 1);
    assert_int_equal(parse(&c, &err, 1, argv), SY_EINVAL);
    assert_non_null(strstr(err.msg, "SY_TEST_WORKERS"));
    assert_non_null(strstr(err.msg, "many"));
    clear_env();
}

static void expect_error(const char **argv, int argc, const char *needle)
{
    clear_env();
    cfg_t c;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(parse(&c, &err, argc, argv), SY_EINVAL);
    assert_int_equal(err.code, SY_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_errors_name_the_flag(void **state)
{
    (void)state;
    const char *a1[] = {"prog", "--bogus", "1"};
    expect_error(a1, 3, "--bogus");
    const char *a1b[] = {"prog", "--bogus=1"};
    expect_error(a1b, 2, "unknown flag --bogus");
    const char *a2[] = {"prog", "--listen"};
    expect_error(a2, 2, "--listen");
    const char *a3[] = {"prog", "--listen", "--workers", "2"};
    expect_error(a3, 4, "--listen");
    const char *a4[] = {"prog", "--workers", "2x"};
    expect_error(a4, 3, "--workers");
    const char *a5[] = {"prog", "--workers=99999999999999999999"};
    expect_error(a5, 2, "--workers");
    const char *a6[] = {"prog", "--timeout", "5 s"};
    expect_error(a6, 3, "--timeout");
    const char *a7[] = {"prog", "--max-body", "12t"};
    expect_error(a7, 3, "--max-body");
    const char *a8[] = {"prog", "--verbose=maybe"};
    expect_error(a8, 2, "--verbose");
    const char *a9[] = {"prog", "stray"};
    expect_error(a9, 2, "stray");
    const char *a10[] = {"prog", "-v"};
    expect_error(a10, 2, "-v");
    const char *a11[] = {"prog", "--no-listen"};
    expect_error(a11, 2, "--no-listen");
}

static void test_help(void **state)
{
    (void)state;
    clear_env();
    char path[] = "/tmp/sy-test-help-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    cfg_t c;
    sy_err_t err;
    const char *argv[] = {"switchyard-dataplane", "--workers", "3", "--help", "--bogus"};
    int rc = parse(&c, &err, 5, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, SY_ECANCELED);
    assert_int_equal(err.code, SY_ECANCELED);

    char text[4096] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(strstr(text, "switchyard-dataplane"));
    assert_non_null(strstr(text, "--listen <string>"));
    assert_non_null(strstr(text, "address to listen on"));
    assert_non_null(strstr(text, "SY_TEST_LISTEN"));
    assert_non_null(strstr(text, "default 30s"));
    assert_non_null(strstr(text, "--timeout <duration>"));
    assert_non_null(strstr(text, "--max-body <size>"));
    assert_non_null(strstr(text, "--help"));
}

static void test_duration_and_size(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(sy_config_parse_duration("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sy_config_parse_duration("1500", &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(sy_config_parse_duration("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(sy_config_parse_duration("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(sy_config_parse_duration("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(sy_config_parse_duration("1h", &v), 0);
    assert_int_equal(v, 3600000);
    v = -1;
    const char *bad_d[] = {
        "",  "s", "-5s", "5x", "5 s", "1.5s", "5sec", "99999999999999999h", "18446744073709551616",
        NULL};
    for (int i = 0; bad_d[i]; i++)
        assert_int_equal(sy_config_parse_duration(bad_d[i], &v), SY_EINVAL);
    assert_int_equal(sy_config_parse_duration(NULL, &v), SY_EINVAL);
    assert_int_equal(v, -1);

    assert_int_equal(sy_config_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(sy_config_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(sy_config_parse_size("16m", &v), 0);
    assert_int_equal(v, 16 * 1024 * 1024);
    assert_int_equal(sy_config_parse_size("1g", &v), 0);
    assert_int_equal(v, 1024ll * 1024 * 1024);
    assert_int_equal(sy_config_parse_size("2G", &v), 0);
    assert_int_equal(v, 2048ll * 1024 * 1024);
    v = -1;
    const char *bad_s[] = {"", "k", "-1", "1.5m", "10x", "1 k", "9999999999999g", NULL};
    for (int i = 0; bad_s[i]; i++)
        assert_int_equal(sy_config_parse_size(bad_s[i], &v), SY_EINVAL);
    assert_int_equal(v, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flag_forms),
        cmocka_unit_test(test_env_fallback_and_precedence),
        cmocka_unit_test(test_errors_name_the_flag),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_duration_and_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
