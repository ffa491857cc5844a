/* Unit tests for the routing modules: dataplane/breaker.c, retry.c,
 * ratelimit.c, router.c, budget.c and strmap.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "dataplane/breaker.h"
#include "dataplane/budget.h"
#include "dataplane/ratelimit.h"
#include "dataplane/retry.h"
#include "dataplane/router.h"
#include "dataplane/strmap.h"

/* --- breaker ------------------------------------------------------------------- */

static void test_breaker_consecutive_failures(void **state)
{
    (void)state;
    sy_breaker_config_t cfg = {.failures = 3, .open_ms = 1000};
    sy_breaker_t b;
    sy_breaker_init(&b);
    bool probe = true;
    assert_true(sy_breaker_acquire(&b, &cfg, 0, &probe));
    assert_false(probe);
    assert_false(sy_breaker_record(&b, &cfg, 0, false, false));
    assert_false(sy_breaker_record(&b, &cfg, 1, false, true)); /* resets the count */
    assert_false(sy_breaker_record(&b, &cfg, 2, false, false));
    assert_false(sy_breaker_record(&b, &cfg, 3, false, false));
    assert_true(sy_breaker_record(&b, &cfg, 4, false, false));
    assert_string_equal(sy_breaker_state_name(&b, &cfg, 5), "open");
    assert_false(sy_breaker_usable(&b, &cfg, 500));
    assert_false(sy_breaker_acquire(&b, &cfg, 500, &probe));
    /* Half-open after open_ms: exactly one probe. */
    assert_true(sy_breaker_usable(&b, &cfg, 1004));
    assert_true(sy_breaker_acquire(&b, &cfg, 1004, &probe));
    assert_true(probe);
    assert_false(sy_breaker_usable(&b, &cfg, 1005));
    assert_false(sy_breaker_acquire(&b, &cfg, 1005, &probe));
    /* A failed probe reopens it. */
    assert_true(sy_breaker_record(&b, &cfg, 1010, true, false));
    assert_false(sy_breaker_usable(&b, &cfg, 1500));
    assert_true(sy_breaker_acquire(&b, &cfg, 2010, &probe));
    assert_true(probe);
    /* A released probe (client left) can be taken again. */
    sy_breaker_release(&b, true);
    assert_true(sy_breaker_acquire(&b, &cfg, 2011, &probe));
    assert_true(probe);
    /* A successful probe closes it. */
    assert_false(sy_breaker_record(&b, &cfg, 2020, true, true));
    assert_string_equal(sy_breaker_state_name(&b, &cfg, 2021), "closed");
    assert_true(sy_breaker_acquire(&b, &cfg, 2021, &probe));
    assert_false(probe);
    assert_int_equal(b.opens, 2);
}

static void test_breaker_error_rate(void **state)
{
    (void)state;
    sy_breaker_config_t cfg = {
        .failures = 0, .error_rate = 0.5, .min_requests = 10, .window_ms = 1000, .open_ms = 100};
    sy_breaker_t b;
    sy_breaker_init(&b);
    /* 4 failures out of 9: below min_requests, nothing. */
    for (int i = 0; i < 9; i++)
        assert_false(sy_breaker_record(&b, &cfg, 10, false, i % 2 == 0 && i < 8));
    /* Alternating successes and failures reach 50% at 10 requests. */
    bool opened = sy_breaker_record(&b, &cfg, 11, false, false);
    assert_true(opened);
    /* A new window forgets the old outcomes. */
    sy_breaker_init(&b);
    for (int i = 0; i < 9; i++)
        sy_breaker_record(&b, &cfg, 10, false, false == (i < 4));
    assert_false(sy_breaker_record(&b, &cfg, 2000, false, false)); /* window reset */
}

/* --- retry --------------------------------------------------------------------- */

static void test_retry_policy(void **state)
{
    (void)state;
    int yes[] = {429, 500, 502, 503, 504, 529};
    int no[] = {200, 400, 401, 403, 404, 409, 413, 422, 501};
    for (size_t i = 0; i < SY_ARRAY_LEN(yes); i++)
        assert_true(sy_retry_status_retryable(yes[i]));
    for (size_t i = 0; i < SY_ARRAY_LEN(no); i++)
        assert_false(sy_retry_status_retryable(no[i]));
    assert_true(sy_retry_result_retryable(-ECONNREFUSED));
    assert_true(sy_retry_result_retryable(-ETIMEDOUT));
    assert_false(sy_retry_result_retryable(SY_ECANCELED));
    assert_false(sy_retry_result_retryable(SY_E2BIG));

    int64_t ms = -1;
    assert_int_equal(sy_retry_parse_after("3", 0, &ms), 0);
    assert_int_equal(ms, 3000);
    assert_int_equal(sy_retry_parse_after(" 0.5 ", 0, &ms), 0);
    assert_int_equal(ms, 500);
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    assert_int_equal(sy_retry_parse_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770, &ms), 0);
    assert_int_equal(ms, 7000);
    ms = 42;
    assert_int_equal(sy_retry_parse_after("soon", 0, &ms), SY_EINVAL);
    assert_int_equal(sy_retry_parse_after("-1", 0, &ms), SY_EINVAL);
    assert_int_equal(ms, 42);

    sy_retry_policy_t p = {
        .max_attempts = 3, .deadline_ms = 1000, .base_ms = 100, .max_backoff_ms = 300};
    /* Full jitter within the doubling ceiling, capped. */
    for (uint64_t r = 0; r < 1000; r += 7) {
        assert_true(sy_retry_backoff_ms(&p, 1, -1, r) <= 100);
        assert_true(sy_retry_backoff_ms(&p, 2, -1, r) <= 200);
        assert_true(sy_retry_backoff_ms(&p, 5, -1, r) <= 300);
    }
    assert_int_equal(sy_retry_backoff_ms(&p, 1, 2000, 5), 2000); /* Retry-After wins */
    assert_int_equal(sy_retry_backoff_ms(&p, 1, 999999, 5), 60000);
    assert_true(sy_retry_may_retry(&p, 1, 100, 50));
    assert_false(sy_retry_may_retry(&p, 3, 100, 0));   /* attempts */
    assert_false(sy_retry_may_retry(&p, 1, 900, 200)); /* deadline */
}

/* --- rate limits --------------------------------------------------------------- */

static void test_ratelimit_rpm_rate(void **state)
{
    (void)state;
    /* 600 per 60 s window, one worker of two: this worker may take 300/min;
     * hammered every 10 ms for 30 s it admits 150 + the 5-request burst. */
    sy_ratelimit_t *rl = sy_ratelimit_new(60000);
    assert_non_null(rl);
    sy_ratelimit_check_t c[1] = {{SY_RATELIMIT_KEY, "k1", 600, 0}};
    int admitted = 0, refused = 0;
    sy_ratelimit_result_t res;
    for (uint64_t t = 0; t < 30000; t += 10) {
        int rc = sy_ratelimit_admit(rl, c, 1, 0, 0.5, t, &res);
        if (rc == 0) {
            admitted++;
            assert_true(res.allowed);
            assert_int_equal(res.limit_requests, 600);
        } else {
            assert_int_equal(rc, SY_EAGAIN);
            assert_false(res.allowed);
            assert_false(res.refused_tokens);
            assert_true(res.retry_after_ms > 0 && res.retry_after_ms <= 200);
            refused++;
        }
    }
    assert_in_range(admitted, 150, 156);
    assert_true(refused > 2000);
    sy_ratelimit_free(rl);
}

static void test_ratelimit_tpm_and_all_or_nothing(void **state)
{
    (void)state;
    sy_ratelimit_t *rl = sy_ratelimit_new(60000);
    sy_ratelimit_check_t c[2] = {{SY_RATELIMIT_KEY, "k", 1000, 0},
                                 {SY_RATELIMIT_TENANT, "t", 0, 6000}};
    sy_ratelimit_result_t res;
    /* 6000 tokens per minute: two 2500-token requests fit, the third not. */
    assert_int_equal(sy_ratelimit_admit(rl, c, 2, 2500, 1.0, 0, &res), 0);
    assert_true(res.has_tokens);
    assert_int_equal(res.remaining_tokens, 3500);
    assert_int_equal(sy_ratelimit_admit(rl, c, 2, 2500, 1.0, 0, &res), 0);
    assert_int_equal(sy_ratelimit_admit(rl, c, 2, 2500, 1.0, 0, &res), SY_EAGAIN);
    assert_true(res.refused_tokens);
    assert_int_equal(res.scope, SY_RATELIMIT_TENANT);
    /* 1500 missing at 100 tokens/s: 15 s. */
    assert_in_range(res.retry_after_ms, 14990, 15010);
    /* The refused request took nothing from the key's RPM bucket: it had
     * 1000/60 = 16.67 requests of burst, 2 were taken. */
    assert_int_equal(res.remaining_requests, 14);
    /* Settling with fewer actual tokens gives them back. */
    sy_ratelimit_settle(rl, c, 2, 2500, 500, 0);
    assert_int_equal(sy_ratelimit_admit(rl, c, 2, 2500, 1.0, 0, &res), 0);
    /* A request larger than the whole bucket is admitted when it is full. */
    sy_ratelimit_check_t big[1] = {{SY_RATELIMIT_MODEL, "m", 0, 100}};
    assert_int_equal(sy_ratelimit_admit(rl, big, 1, 1000, 1.0, 0, &res), 0);
    assert_int_equal(sy_ratelimit_admit(rl, big, 1, 1, 1.0, 1000, &res), SY_EAGAIN);
    /* Idle buckets go away in the sweep, busy ones stay. */
    assert_int_equal(sy_ratelimit_buckets(rl), 3);
    sy_ratelimit_sweep(rl, 10 * 60000);
    assert_int_equal(sy_ratelimit_buckets(rl), 0);
    char buf[32];
    sy_ratelimit_format_reset(120, buf, sizeof(buf));
    assert_string_equal(buf, "120ms");
    sy_ratelimit_format_reset(1500, buf, sizeof(buf));
    assert_string_equal(buf, "2s");
    sy_ratelimit_format_reset(360000, buf, sizeof(buf));
    assert_string_equal(buf, "6m0s");
    sy_ratelimit_free(rl);
}

static void test_ratelimit_peek(void **state)
{
    (void)state;
    /* The router asks a fallback target's model limit before it chooses the
     * target: a peek gives admit's verdict and figures and takes nothing. */
    sy_ratelimit_t *rl = sy_ratelimit_new(60000);
    sy_ratelimit_check_t m[1] = {{SY_RATELIMIT_MODEL, "m-b", 120, 1000}};
    sy_ratelimit_result_t res;
    /* No bucket yet: room, and none is created. */
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 0, &res), 0);
    assert_true(res.allowed);
    assert_int_equal(sy_ratelimit_buckets(rl), 0);
    /* 120 per minute: a burst of 2 requests. Peeking any number of times
     * leaves both. */
    assert_int_equal(sy_ratelimit_admit(rl, m, 1, 100, 1.0, 0, &res), 0);
    assert_int_equal(res.remaining_requests, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 0, &res), 0);
        assert_int_equal(res.remaining_requests, 1);
        assert_int_equal(res.remaining_tokens, 900);
    }
    assert_int_equal(sy_ratelimit_admit(rl, m, 1, 100, 1.0, 0, &res), 0);
    /* Empty: the peek refuses as admit would, with the wait (one request
     * at 2 per second: 500 ms) and the model's scope. */
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 0, &res), SY_EAGAIN);
    assert_false(res.allowed);
    assert_false(res.refused_tokens);
    assert_int_equal(res.scope, SY_RATELIMIT_MODEL);
    assert_int_equal(res.retry_after_ms, 500);
    assert_int_equal(res.limit_requests, 120);
    assert_int_equal(res.remaining_requests, 0);
    assert_int_equal(sy_ratelimit_admit(rl, m, 1, 100, 1.0, 0, &res), SY_EAGAIN);
    /* Refilled: room again, and admit agrees at the same instant. */
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 500, &res), 0);
    assert_int_equal(sy_ratelimit_admit(rl, m, 1, 100, 1.0, 500, &res), 0);
    /* A failed attempt's tokens go back (settled at 0), its request does
     * not: the bucket is short of a request again, not of tokens. */
    sy_ratelimit_settle(rl, m, 1, 100, 0, 500);
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 500, &res), SY_EAGAIN);
    assert_false(res.refused_tokens);
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 100, 1.0, 1000, &res), 0);
    assert_int_equal(res.remaining_tokens, 816); /* 800 + 1 s of refill at 1000/min */
    /* TPM: a peek refuses an estimate the bucket cannot hold. */
    assert_int_equal(sy_ratelimit_peek(rl, m, 1, 900, 1.0, 1000, &res), SY_EAGAIN);
    assert_true(res.refused_tokens);
    sy_ratelimit_free(rl);
}

/* --- router -------------------------------------------------------------------- */

static const char SNAP[] =
    "{\"version\":1,\"live_workers\":1,"
    "\"tenants\":[{\"id\":\"t\",\"name\":\"T\",\"tier\":\"enterprise\"}],"
    "\"providers\":["
    " {\"id\":\"pa\",\"kind\":\"openai\",\"base_url\":\"http://a/v1\"},"
    " {\"id\":\"pb\",\"kind\":\"openai\",\"base_url\":\"http://b/v1\"},"
    " {\"id\":\"pc\",\"kind\":\"openai\",\"base_url\":\"http://c/v1\"}],"
    "\"models\":["
    " {\"id\":\"ma\",\"provider_id\":\"pa\",\"prices\":[{\"valid_from\":0,\"input_per_mtok\":5,"
    "\"output_per_mtok\":15}]},"
    " {\"id\":\"mb\",\"provider_id\":\"pb\",\"prices\":[{\"valid_from\":0,\"input_per_mtok\":0.15,"
    "\"output_per_mtok\":0.6}]},"
    " {\"id\":\"mc\",\"provider_id\":\"pc\",\"prices\":[{\"valid_from\":0,\"input_per_mtok\":1,"
    "\"output_per_mtok\":2}]}],"
    "\"routes\":[{\"id\":\"r\",\"alias\":\"auto\",\"rules\":["
    " {\"name\":\"fast\",\"task\":\"fast-classify\",\"strategy\":\"priority\","
    "  \"targets\":[{\"model_id\":\"mc\"}]},"
    " {\"name\":\"long\",\"min_prompt_tokens\":50000,\"strategy\":\"priority\","
    "  \"targets\":[{\"model_id\":\"mb\"}]},"
    " {\"name\":\"crit\",\"latency_class\":\"critical\",\"tenant_tier\":\"enterprise\","
    "  \"strategy\":\"lowest-latency\","
    "  \"targets\":[{\"model_id\":\"ma\"},{\"model_id\":\"mb\"},{\"model_id\":\"mc\"}]},"
    " {\"name\":\"cheap\",\"task\":\"bulk\",\"strategy\":\"lowest-cost\","
    "  \"targets\":[{\"model_id\":\"ma\"},{\"model_id\":\"mc\"},{\"model_id\":\"mb\"}]},"
    " {\"name\":\"busy\",\"task\":\"busy\",\"strategy\":\"least-busy\","
    "  \"targets\":[{\"model_id\":\"ma\"},{\"model_id\":\"mb\"},{\"model_id\":\"mc\"}]},"
    " {\"name\":\"w\",\"task\":\"w\",\"strategy\":\"weighted\","
    "  \"targets\":[{\"model_id\":\"ma\",\"weight\":3},{\"model_id\":\"mb\",\"weight\":1},"
    "               {\"model_id\":\"nope\",\"weight\":5}]},"
    " {\"name\":\"low\",\"max_budget_remaining_fraction\":0.2,\"strategy\":\"priority\","
    "  \"targets\":[{\"model_id\":\"mb\"}]},"
    " {\"name\":\"default\",\"strategy\":\"priority\","
    "  \"targets\":[{\"model_id\":\"ma\"},{\"model_id\":\"mb\"},{\"model_id\":\"mc\"}]}]}]}";

static sy_snapshot_t *load_snap(void)
{
    Switchyard__Snapshot *msg = NULL;
    sy_err_t err;
    assert_int_equal(sy_snapshot_json_to_proto(SNAP, strlen(SNAP), &msg, &err), 0);
    sy_snapshot_t *s = NULL;
    assert_int_equal(sy_snapshot_from_proto(msg, &s, &err), 0);
    switchyard__snapshot__free_unpacked(msg, NULL);
    return s;
}

static sy_router_input_t input(void)
{
    sy_router_input_t in = {.prompt_tokens = 100,
                            .tenant_tier = "standard",
                            .budget_remaining_fraction = 1.0,
                            .now_unix = 1000};
    return in;
}

static const char *first_model(sy_router_t *rt, sy_snapshot_t *s, const sy_router_input_t *in,
                               uint64_t now, sy_router_plan_t *p)
{
    const Switchyard__Route *route = sy_snapshot_find_route(s, SY_STR("auto"), "t");
    assert_non_null(route);
    assert_int_equal(sy_router_plan(rt, s, route, in, now, 12345, p), 0);
    return p->n > 0 ? p->c[0].model->pb->id : NULL;
}

static void test_router_rules(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_snap();
    sy_router_t *rt = sy_router_new(NULL);
    sy_router_plan_t p;
    sy_router_input_t in = input();
    assert_string_equal(first_model(rt, s, &in, 0, &p), "ma");
    assert_string_equal(p.rule->name, "default");
    assert_int_equal(p.n, 3);
    in.task = SY_STR("Fast-Classify");
    assert_string_equal(first_model(rt, s, &in, 0, &p), "mc");
    assert_string_equal(p.rule->name, "fast");
    in = input();
    in.prompt_tokens = 50000;
    assert_string_equal(first_model(rt, s, &in, 0, &p), "mb");
    assert_string_equal(p.rule->name, "long");
    in = input();
    in.latency_class = SY_STR("critical");
    first_model(rt, s, &in, 0, &p);
    assert_string_equal(p.rule->name, "default"); /* tier does not match */
    in.tenant_tier = "enterprise";
    first_model(rt, s, &in, 0, &p);
    assert_string_equal(p.rule->name, "crit");
    in = input();
    in.budget_remaining_fraction = 0.1;
    first_model(rt, s, &in, 0, &p);
    assert_string_equal(p.rule->name, "low");
    sy_router_free(rt);
    sy_snapshot_unref(s);
}

static void test_router_strategies(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_snap();
    sy_router_t *rt = sy_router_new(NULL);
    sy_router_plan_t p;
    sy_router_input_t in = input();
    /* lowest-cost: mb (0.15/0.6) < mc (1/2) < ma (5/15). */
    in.task = SY_STR("bulk");
    first_model(rt, s, &in, 0, &p);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.c[0].model->pb->id, "mb");
    assert_string_equal(p.c[1].model->pb->id, "mc");
    assert_string_equal(p.c[2].model->pb->id, "ma");
    double cost = sy_router_estimate_cost(p.c[2].model->pb, 1000, 1000000, 1000000);
    assert_true(cost > 19.99 && cost < 20.01);
    /* least-busy */
    in.task = SY_STR("busy");
    sy_router_state(rt, "pa", "ma")->in_flight = 5;
    sy_router_state(rt, "pb", "mb")->in_flight = 2;
    sy_router_state(rt, "pc", "mc")->in_flight = 3;
    first_model(rt, s, &in, 0, &p);
    assert_string_equal(p.c[0].model->pb->id, "mb");
    assert_string_equal(p.c[1].model->pb->id, "mc");
    assert_string_equal(p.c[2].model->pb->id, "ma");
    /* lowest-latency: unmeasured first, then by median TTFT; low headroom last. */
    in = input();
    in.latency_class = SY_STR("critical");
    in.tenant_tier = "enterprise";
    for (int i = 0; i < 10; i++) {
        sy_router_observe_ttft(sy_router_state(rt, "pa", "ma"), 300 + i);
        sy_router_observe_ttft(sy_router_state(rt, "pb", "mb"), 100 + i);
    }
    first_model(rt, s, &in, 0, &p);
    assert_string_equal(p.c[0].model->pb->id, "mc");
    assert_string_equal(p.c[1].model->pb->id, "mb");
    sy_router_observe_ttft(sy_router_state(rt, "pc", "mc"), 200);
    sy_router_target_t *b = sy_router_state(rt, "pb", "mb");
    assert_int_equal(sy_router_ttft_percentile(b, 50), 105);
    sy_router_observe_header(b, SY_STR("X-RateLimit-Limit-Requests"), SY_STR(" 1000\r\n"), 10);
    sy_router_observe_header(b, SY_STR("x-ratelimit-remaining-requests"), SY_STR("50"), 10);
    assert_true(sy_router_headroom(b, 20) > 0.049 && sy_router_headroom(b, 20) < 0.051);
    first_model(rt, s, &in, 20, &p);
    assert_string_equal(p.c[0].model->pb->id, "mc");
    assert_string_equal(p.c[1].model->pb->id, "ma");
    assert_string_equal(p.c[2].model->pb->id, "mb");
    /* Headroom figures expire after a minute. */
    assert_true(sy_router_headroom(b, 70000) < 0);
    sy_router_target_t *a = sy_router_state(rt, "pa", "ma");
    sy_router_observe_header(a, SY_STR("anthropic-ratelimit-tokens-limit"), SY_STR("100"), 5);
    sy_router_observe_header(a, SY_STR("anthropic-ratelimit-tokens-remaining"), SY_STR("25"), 5);
    assert_true(sy_router_headroom(a, 6) > 0.24 && sy_router_headroom(a, 6) < 0.26);
    /* weighted: unknown model left out; ma about 3x as often first as mb. */
    in = input();
    in.task = SY_STR("w");
    int first_a = 0;
    const Switchyard__Route *route = sy_snapshot_find_route(s, SY_STR("auto"), "t");
    for (uint64_t r = 1; r <= 4000; r++) {
        assert_int_equal(sy_router_plan(rt, s, route, &in, 0, r * 2654435761u, &p), 0);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.skipped_unknown, 1);
        first_a += strcmp(p.c[0].model->pb->id, "ma") == 0;
    }
    assert_in_range(first_a, 2700, 3300);
    sy_router_free(rt);
    sy_snapshot_unref(s);
}

static void test_router_breaker_and_cooldown(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_snap();
    sy_breaker_config_t cfg = {.failures = 2, .open_ms = 1000};
    sy_router_t *rt = sy_router_new(&cfg);
    sy_router_plan_t p;
    sy_router_input_t in = input();
    sy_router_target_t *a = sy_router_state(rt, "pa", "ma");
    sy_breaker_record(&a->breaker, &cfg, 0, false, false);
    sy_breaker_record(&a->breaker, &cfg, 0, false, false);
    assert_string_equal(first_model(rt, s, &in, 10, &p), "mb");
    assert_int_equal(p.n, 2);
    assert_int_equal(p.skipped_open, 1);
    /* Half-open: back in the plan for its probe. */
    assert_string_equal(first_model(rt, s, &in, 1000, &p), "ma");
    /* Cooling down after a Retry-After: still there, but last. */
    sy_router_state(rt, "pb", "mb")->cooldown_until_ms = 5000;
    sy_breaker_init(&a->breaker);
    first_model(rt, s, &in, 2000, &p);
    assert_string_equal(p.c[0].model->pb->id, "ma");
    assert_string_equal(p.c[1].model->pb->id, "mc");
    assert_string_equal(p.c[2].model->pb->id, "mb");
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_router_stats_json(rt, 2000, &b), 0);
    assert_non_null(strstr(b.data, "\"provider\":\"pa\""));
    sy_buf_free(&b);
    sy_router_free(rt);
    sy_snapshot_unref(s);
}

/* --- budgets ------------------------------------------------------------------- */

static void test_budget_windows(void **state)
{
    (void)state;
    int64_t s, e;
    /* 2026-11-21 22:10:00 UTC = 1795299000 */
    assert_int_equal(sy_budget_window("daily", NULL, 1795299000, &s, &e), 0);
    assert_int_equal(s, 1795219200); /* 2026-11-21 00:00 UTC */
    assert_int_equal(e, 1795305600);
    assert_int_equal(sy_budget_window("monthly", "UTC", 1795299000, &s, &e), 0);
    assert_int_equal(s, 1793491200); /* 2026-11-01 */
    assert_int_equal(e, 1796083200); /* 2026-12-01 */
    /* In Tokyo (UTC+9) it is already the 22nd. */
    assert_int_equal(sy_budget_window("daily", "Asia/Tokyo", 1795299000, &s, &e), 0);
    assert_int_equal(s, 1795305600 - 9 * 3600);
    assert_int_equal(e - s, 86400);
    /* New York in November: UTC-5. */
    assert_int_equal(sy_budget_window("daily", "America/New_York", 1795299000, &s, &e), 0);
    assert_int_equal(s, 1795219200 + 5 * 3600);
    s = e = 7;
    assert_int_equal(sy_budget_window("weekly", NULL, 0, &s, &e), SY_EINVAL);
    assert_int_equal(s, 7);
}

static void test_budget_hard_lease(void **state)
{
    (void)state;
    Switchyard__Budget b = SWITCHYARD__BUDGET__INIT;
    b.id = "b1";
    b.period = "daily";
    b.amount_usd = 1.0;
    b.hard = true;
    const Switchyard__Budget *bs[1] = {&b};
    sy_budget_ledger_t *l = sy_budget_ledger_new();
    sy_budget_hold_t holds[40];
    sy_budget_verdict_t v;
    int64_t now = 1795299000;
    /* Two workers: this one's lease is $0.50. Reserve 0.03 each until refused. */
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        if (sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.03, now, 0, &holds[ok], &v) == 0)
            ok++;
    }
    assert_int_equal(ok, 16); /* 16 x 0.03 = 0.48; the 17th does not fit */
    assert_false(v.allowed);
    assert_ptr_equal(v.refused_by, &b);
    assert_int_equal(v.reset_at, 1795305600);
    /* Settle at a lower actual cost: room comes back. */
    for (int i = 0; i < ok; i++)
        sy_budget_settle(l, &holds[i], 0.02);
    sy_budget_lease_info_t li;
    assert_int_equal(sy_budget_lease(l, "b1", &li), 0);
    assert_true(li.settled > 0.3199 && li.settled < 0.3201);
    assert_true(li.reserved < 1e-9);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.03, now, 0, &holds[0], &v), 0);
    double f = sy_budget_remaining_fraction(l, bs, 1, NULL, 0.5, now);
    assert_true(f > 0.29 && f < 0.31);
    /* The next window starts empty; a reservation from the old window
     * settles into nothing. */
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.4, now + 86400, 0, &holds[1], &v), 0);
    sy_budget_settle(l, &holds[0], 0.03);
    assert_int_equal(sy_budget_lease(l, "b1", &li), 0);
    assert_true(li.settled < 1e-9);
    assert_int_equal(li.window_start, 1795305600);
    /* An explicit grant replaces the self-granted share. */
    assert_int_equal(sy_budget_grant(l, "b1", 1795305600, 0.41), 0);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.02, now + 86400, 0, &holds[2], &v),
                     SY_EAGAIN);
    sy_budget_ledger_free(l);
}

static void test_budget_soft_and_snapshot_spend(void **state)
{
    (void)state;
    Switchyard__Budget soft = SWITCHYARD__BUDGET__INIT, hard = SWITCHYARD__BUDGET__INIT;
    soft.id = "soft";
    soft.period = "monthly";
    soft.amount_usd = 1.0;
    soft.soft_threshold = 0.5;
    hard.id = "hard";
    hard.period = "monthly";
    hard.amount_usd = 10.0;
    hard.hard = true;
    int64_t now = 1795299000;
    /* The snapshot says $9.50 is already spent this month. */
    hard.window_start = 1793491200;
    hard.spent_usd = 9.5;
    const Switchyard__Budget *bs[2] = {&soft, &hard};
    sy_budget_ledger_t *l = sy_budget_ledger_new();
    sy_budget_hold_t h;
    sy_budget_verdict_t v;
    assert_int_equal(sy_budget_reserve(l, bs, 2, NULL, 1.0, 0.4, now, 0, &h, &v), 0);
    assert_false(v.soft_exceeded);
    assert_int_equal(sy_budget_reserve(l, bs, 2, NULL, 1.0, 0.2, now, 0, &h, &v), SY_EAGAIN);
    assert_ptr_equal(v.refused_by, &hard);
    /* Nothing was reserved on the soft budget by the refused request. */
    sy_budget_lease_info_t li;
    assert_int_equal(sy_budget_lease(l, "soft", &li), 0);
    assert_true(li.reserved > 0.399 && li.reserved < 0.401);
    const Switchyard__Budget *only_soft[1] = {&soft};
    assert_int_equal(sy_budget_reserve(l, only_soft, 1, NULL, 1.0, 0.2, now, 0, &h, &v), 0);
    assert_true(v.soft_exceeded);
    sy_budget_ledger_free(l);
}

static void test_budget_lease_mode(void **state)
{
    (void)state;
    Switchyard__Budget b = SWITCHYARD__BUDGET__INIT;
    b.id = "lb";
    b.period = "daily";
    b.amount_usd = 1.0;
    b.hard = true;
    const Switchyard__Budget *bs[1] = {&b};
    sy_budget_ledger_t *l = sy_budget_ledger_new();
    sy_budget_set_lease_mode(l, true);
    sy_budget_hold_t h;
    sy_budget_verdict_t v;
    int64_t now = 1795299000, ms = 1000000;
    /* No grant yet: refused, but a grant may come. */
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms, &h, &v), SY_EAGAIN);
    assert_true(v.need_lease);
    Switchyard__BudgetLease req[4];
    size_t n = 0;
    sy_budget_lease_requests(l, ms, req, 4, &n);
    assert_int_equal(n, 1);
    assert_string_equal(req[0].budget_id, "lb");
    assert_true(req[0].want_usd > 0.199 && req[0].want_usd < 0.201); /* 4 x 0.05 > 0.1 */
    assert_true(req[0].min_usd > 0.049 && req[0].min_usd < 0.051);
    assert_false(req[0].release);
    /* Asked once: not listed again until answered (or unasked). */
    sy_budget_lease_requests(l, ms, req, 4, &n);
    assert_int_equal(n, 0);
    Switchyard__BudgetLease g = SWITCHYARD__BUDGET_LEASE__INIT;
    g.budget_id = "lb";
    g.window_start = 1795219200;
    g.granted_usd = 0.12;
    g.expires_at_ms = ms + 30000;
    sy_budget_apply_grant(l, &g);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms, &h, &v), 0);
    sy_budget_settle(l, &h, 0.04);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms + 1, &h, &v), 0);
    /* 0.04 settled + 0.05 reserved: the next 0.05 does not fit; low: asked. */
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms + 2, &h, &v), SY_EAGAIN);
    assert_true(v.need_lease);
    sy_budget_lease_requests(l, ms + 3, req, 4, &n);
    assert_int_equal(n, 1);
    assert_true(req[0].used_usd > 0.089 && req[0].used_usd < 0.091);
    assert_true(req[0].granted_usd > 0.119 && req[0].granted_usd < 0.121);
    /* The control plane has nothing left: a plain refusal now. */
    g.granted_usd = 0.12;
    g.exhausted = true;
    sy_budget_apply_grant(l, &g);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms + 4, &h, &v), SY_EAGAIN);
    assert_false(v.need_lease);
    /* The control plane is away: this worker's share keeps it serving. */
    sy_budget_fallback(l, "lb", 0.5);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 0.5, 0.05, now, ms + 5, &h, &v), 0);
    sy_budget_lease_info_t li;
    assert_int_equal(sy_budget_lease(l, "lb", &li), 0);
    assert_true(li.granted > 0.499);
    sy_budget_ledger_free(l);

    /* A grant lapses unless renewed; renewal is asked ahead; idle leases go back. */
    l = sy_budget_ledger_new();
    sy_budget_set_lease_mode(l, true);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 1, 0.01, now, ms, &h, &v), SY_EAGAIN);
    sy_budget_lease_requests(l, ms, req, 4, &n);
    g.exhausted = false;
    g.granted_usd = 0.3;
    g.expires_at_ms = ms + 30000;
    sy_budget_apply_grant(l, &g);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 1, 0.01, now, ms, &h, &v), 0);
    sy_budget_settle(l, &h, 0.01);
    sy_budget_lease_requests(l, ms + 5000, req, 4, &n);
    assert_int_equal(n, 0); /* nothing to do yet */
    sy_budget_lease_requests(l, ms + 25000, req, 4, &n);
    assert_int_equal(n, 1); /* 5 s before it lapses, used recently: renew */
    assert_true(req[0].want_usd == 0 && !req[0].release);
    sy_budget_lease_unask(l);
    /* Lapsed: nothing more is spent from it. */
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 1, 0.01, now, ms + 30001, &h, &v),
                     SY_EAGAIN);
    assert_true(v.need_lease);
    sy_budget_ledger_free(l);

    l = sy_budget_ledger_new();
    sy_budget_set_lease_mode(l, true);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 1, 0.01, now, ms, &h, &v), SY_EAGAIN);
    sy_budget_lease_requests(l, ms, req, 4, &n);
    g.expires_at_ms = ms + 300000;
    sy_budget_apply_grant(l, &g);
    assert_int_equal(sy_budget_reserve(l, bs, 1, NULL, 1, 0.01, now, ms, &h, &v), 0);
    sy_budget_settle(l, &h, 0.01);
    sy_budget_lease_requests(l, ms + 11000, req, 4, &n);
    assert_int_equal(n, 1);
    assert_true(req[0].release);
    sy_budget_ledger_free(l);
}

static bool drop_odd(sy_str_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    return *(int *)value % 2 == 1;
}

static void test_strmap(void **state)
{
    (void)state;
    sy_strmap_t *m = sy_strmap_new(sizeof(int));
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        bool created = false;
        int *v = sy_strmap_upsert(m, sy_str_from_cstr(k), &created);
        assert_true(created);
        *v = i;
    }
    assert_int_equal(sy_strmap_count(m), 1000);
    int *v = sy_strmap_get(m, SY_STR("key-777"));
    assert_non_null(v);
    assert_int_equal(*v, 777);
    assert_null(sy_strmap_get(m, SY_STR("key-1000")));
    sy_strmap_sweep(m, drop_odd, NULL);
    assert_int_equal(sy_strmap_count(m), 500);
    assert_null(sy_strmap_get(m, SY_STR("key-777")));
    assert_non_null(sy_strmap_get(m, SY_STR("key-778")));
    sy_strmap_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_consecutive_failures),
        cmocka_unit_test(test_breaker_error_rate),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_ratelimit_rpm_rate),
        cmocka_unit_test(test_ratelimit_tpm_and_all_or_nothing),
        cmocka_unit_test(test_ratelimit_peek),
        cmocka_unit_test(test_router_rules),
        cmocka_unit_test(test_router_strategies),
        cmocka_unit_test(test_router_breaker_and_cooldown),
        cmocka_unit_test(test_budget_windows),
        cmocka_unit_test(test_budget_hard_lease),
        cmocka_unit_test(test_budget_soft_and_snapshot_spend),
        cmocka_unit_test(test_budget_lease_mode),
        cmocka_unit_test(test_strmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
