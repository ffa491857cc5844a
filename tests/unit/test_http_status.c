/* common/http_status: the reason phrases every server writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "buf.h"
#include "http_status.h"

static void test_known_codes(void **state)
{
    (void)state;
    assert_true(sy_str_eq_cstr(sy_http_reason(200), "OK"));
    assert_true(sy_str_eq_cstr(sy_http_reason(401), "Unauthorized"));
    assert_true(sy_str_eq_cstr(sy_http_reason(429), "Too Many Requests"));
    assert_true(sy_str_eq_cstr(sy_http_reason(431), "Request Header Fields Too Large"));
    assert_true(sy_str_eq_cstr(sy_http_reason(503), "Service Unavailable"));
}

static void test_unknown_code_has_a_phrase(void **state)
{
    (void)state;
    sy_str_t r = sy_http_reason(799);
    assert_true(r.len > 0);
    assert_true(sy_str_eq_cstr(r, "Status"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_codes),
        cmocka_unit_test(test_unknown_code_has_a_phrase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
