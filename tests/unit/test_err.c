/* Unit tests for common/err.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"

static void test_set_formats_and_returns_code(void **state)
{
    (void)state;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    int rc = sy_err_set(&err, SY_EINVAL, "bad value '%s' for --%s (%d)", "x", "port", 7);
    assert_int_equal(rc, SY_EINVAL);
    assert_int_equal(err.code, SY_EINVAL);
    assert_string_equal(err.msg, "bad value 'x' for --port (7)");
    sy_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
}

static void test_set_null_err(void **state)
{
    (void)state;
    assert_int_equal(sy_err_set(NULL, SY_ENOENT, "ignored %d", 1), SY_ENOENT);
    sy_err_clear(NULL);
}

static void test_set_truncates_safely(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sy_err_t err;
    /* Fill with a sentinel so an overrun past msg would be visible to ASan
     * and a missing terminator to strlen. */
    memset(&err, 0x55, sizeof(err));
    assert_int_equal(sy_err_set(&err, SY_E2BIG, "start %s end", big), SY_E2BIG);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_memory_equal(err.msg, "start zzz", 9);
    assert_int_equal(err.msg[sizeof(err.msg) - 1], '\0');
}

static void test_names(void **state)
{
    (void)state;
    const int codes[] = {SY_OK,  SY_EINVAL, SY_ENOMEM, SY_ENOENT, SY_E2BIG,
                         SY_EIO, SY_EACCES, SY_EEXIST, SY_EAGAIN, SY_ECANCELED};
    const char *unknown = sy_err_name(-99999);
    assert_non_null(unknown);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *n = sy_err_name(codes[i]);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        assert_string_not_equal(n, unknown);
        /* Every code has its own description. */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(n, sy_err_name(codes[j]));
    }
    assert_string_equal(sy_err_name(SY_EACCES), "access denied");
    assert_non_null(sy_err_name(12345));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_formats_and_returns_code),
        cmocka_unit_test(test_set_null_err),
        cmocka_unit_test(test_set_truncates_safely),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
