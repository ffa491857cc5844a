/* Unit tests for dataplane/usage.c: aggregation keys, counters, histograms
 * and draining into Switchyard__UsageRow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dataplane/usage.h"

static sy_usage_sample_t sample(int64_t ms, const char *key, const char *model)
{
    sy_usage_sample_t s = {
        .unix_ms = ms,
        .tenant_id = "t1",
        .team_id = "team",
        .key_id = key,
        .route = NULL,
        .provider_id = "p1",
        .model_id = model,
        .prompt_tokens = 10,
        .completion_tokens = 5,
        .cached_tokens = 2,
        .cost_usd = 0.5,
        .latency_ms = 30,
        .ttft_ms = -1,
    };
    return s;
}

static const Switchyard__UsageRow *find(Switchyard__UsageRow **rows, size_t n, int64_t minute,
                                        const char *key, const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i]->minute == minute && strcmp(rows[i]->key_id, key) == 0 &&
            strcmp(rows[i]->model_id, model) == 0)
            return rows[i];
    return NULL;
}

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(sy_usage_bucket(0), 0);
    assert_int_equal(sy_usage_bucket(10), 0);
    assert_int_equal(sy_usage_bucket(11), 1);
    assert_int_equal(sy_usage_bucket(1000), 6);
    assert_int_equal(sy_usage_bucket(60000), 11);
    assert_int_equal(sy_usage_bucket(60001), 12);
    assert_int_equal(sy_usage_bucket(INT64_MAX), SY_USAGE_BUCKETS - 1);
}

static void test_aggregates_by_key_and_minute(void **state)
{
    (void)state;
    sy_usage_t *u = sy_usage_new();
    assert_non_null(u);
    /* Minute 1700000040 (ms 1700000040000..1700000099999). */
    for (int i = 0; i < 3; i++) {
        sy_usage_sample_t s = sample(1700000040000 + i * 1000, "k1", "m1");
        s.ttft_ms = 200;
        assert_int_equal(sy_usage_record(u, &s), 0);
    }
    sy_usage_sample_t e = sample(1700000099999, "k1", "m1");
    e.error = true;
    e.estimated = true;
    e.latency_ms = 70000;
    assert_int_equal(sy_usage_record(u, &e), 0);
    sy_usage_sample_t next_minute = sample(1700000100000, "k1", "m1");
    assert_int_equal(sy_usage_record(u, &next_minute), 0);
    sy_usage_sample_t other_model = sample(1700000040000, "k1", "m2");
    assert_int_equal(sy_usage_record(u, &other_model), 0);
    /* Keys that concatenate to the same text must not collide. */
    sy_usage_sample_t a = sample(1700000040000, "ab", "c");
    sy_usage_sample_t b = sample(1700000040000, "a", "bc");
    assert_int_equal(sy_usage_record(u, &a), 0);
    assert_int_equal(sy_usage_record(u, &b), 0);
    assert_int_equal(sy_usage_row_count(u), 5);

    Switchyard__UsageRow **rows = NULL;
    size_t n = 0;
    assert_int_equal(sy_usage_drain(u, &rows, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(sy_usage_row_count(u), 0);
    const Switchyard__UsageRow *r = find(rows, n, 1700000040, "k1", "m1");
    assert_non_null(r);
    assert_string_equal(r->tenant_id, "t1");
    assert_string_equal(r->route, "");
    assert_int_equal(r->requests, 4);
    assert_int_equal(r->errors, 1);
    assert_int_equal(r->estimated_requests, 1);
    assert_int_equal(r->prompt_tokens, 40);
    assert_int_equal(r->completion_tokens, 20);
    assert_int_equal(r->cached_tokens, 8);
    assert_true(r->cost_usd > 1.999 && r->cost_usd < 2.001);
    assert_int_equal(r->n_latency_hist, SY_USAGE_BUCKETS);
    assert_int_equal(r->latency_hist[sy_usage_bucket(30)], 3);
    assert_int_equal(r->latency_hist[SY_USAGE_BUCKETS - 1], 1);
    assert_int_equal(r->ttft_hist[sy_usage_bucket(200)], 3);
    uint32_t ttft_total = 0;
    for (size_t i = 0; i < r->n_ttft_hist; i++)
        ttft_total += r->ttft_hist[i];
    assert_int_equal(ttft_total, 3); /* ttft < 0 is not counted */
    assert_non_null(find(rows, n, 1700000100, "k1", "m1"));
    assert_non_null(find(rows, n, 1700000040, "k1", "m2"));
    assert_int_equal(find(rows, n, 1700000040, "ab", "c")->requests, 1);
    assert_int_equal(find(rows, n, 1700000040, "a", "bc")->requests, 1);
    /* Rows pack into a UsageReport as is. */
    Switchyard__UsageReport rep = SWITCHYARD__USAGE_REPORT__INIT;
    rep.n_rows = n;
    rep.rows = rows;
    size_t len = switchyard__usage_report__get_packed_size(&rep);
    uint8_t *buf = malloc(len);
    switchyard__usage_report__pack(&rep, buf);
    Switchyard__UsageReport *back = switchyard__usage_report__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->n_rows, 5);
    switchyard__usage_report__free_unpacked(back, NULL);
    free(buf);
    sy_usage_rows_free(rows, n);

    /* Empty drain. */
    assert_int_equal(sy_usage_drain(u, &rows, &n), 0);
    assert_null(rows);
    assert_int_equal(n, 0);
    sy_usage_free(u);
    sy_usage_free(NULL);
}

static void test_many_rows_grow(void **state)
{
    (void)state;
    sy_usage_t *u = sy_usage_new();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        sy_usage_sample_t s = sample(0, key, "m");
        assert_int_equal(sy_usage_record(u, &s), 0);
        assert_int_equal(sy_usage_record(u, &s), 0);
    }
    assert_int_equal(sy_usage_row_count(u), 5000);
    Switchyard__UsageRow **rows;
    size_t n;
    assert_int_equal(sy_usage_drain(u, &rows, &n), 0);
    assert_int_equal(n, 5000);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rows[i]->requests, 2);
    sy_usage_rows_free(rows, n);
    /* Undrained rows are freed with the aggregator. */
    sy_usage_sample_t s = sample(0, "k", "m");
    sy_usage_record(u, &s);
    sy_usage_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_aggregates_by_key_and_minute),
        cmocka_unit_test(test_many_rows_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
