/* Unit tests for controlplane/reports.c: exactly-once application of usage
 * reports, minute/hour/day rollups, cost at the price valid at the row's
 * minute, and all-or-nothing transactions. Runs on a real SQLite database
 * with the real migrations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "controlplane/reports.h"
#include "cp_test_util.h"

typedef struct fixture {
    sqlite3 *db;
    sy_reports_t *r;
} fixture_t;

/* 2026-11-21 10:00:00 UTC, a minute boundary. */
#define T0 1795255200LL

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->db = migrated_db();
    sy_err_t err;
    sy_err_clear(&err);
    exec_ok(f->db, "INSERT INTO providers (id, name, kind, base_url, created_at, updated_at)"
                   " VALUES ('prv_1', 'mock', 'openai', 'http://127.0.0.1:1', 0, 0);"
                   "INSERT INTO models (id, provider_id, upstream_name, created_at, updated_at)"
                   " VALUES ('gpt-x', 'prv_1', 'gpt-x', 0, 0);"
                   /* $2/$8 per Mtok until T0 + 1 h, then $1/$4, cached $0.5, writes $3. */
                   "INSERT INTO model_prices VALUES ('gpt-x', 0, 2.0, 8.0, 0, 0);"
                   "INSERT INTO model_prices VALUES ('gpt-x', 1795258800, 1.0, 4.0, 0.5, 3.0);");
    if (sy_reports_open(f->db, &f->r, &err) != 0)
        fail_msg("open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sy_reports_free(f->r);
    sqlite3_close(f->db);
    free(f);
    return 0;
}

static Switchyard__UsageRow make_row(int64_t minute, const char *key, uint64_t prompt,
                                     uint64_t completion)
{
    Switchyard__UsageRow r = SWITCHYARD__USAGE_ROW__INIT;
    r.minute = minute;
    r.tenant_id = "ten_a";
    r.team_id = "team_a";
    r.key_id = (char *)key;
    r.route = "auto";
    r.provider_id = "prv_1";
    r.model_id = "gpt-x";
    r.requests = 1;
    r.prompt_tokens = prompt;
    r.completion_tokens = completion;
    r.cost_usd = 999; /* the worker's figure is ignored when a price exists */
    return r;
}

static int apply(fixture_t *f, const char *boot, uint64_t seq, Switchyard__UsageRow **rows,
                 size_t n, bool *dup)
{
    Switchyard__UsageReport rep = SWITCHYARD__USAGE_REPORT__INIT;
    rep.worker_id = "host/0";
    rep.boot_id = (char *)boot;
    rep.seq = seq;
    rep.rows = rows;
    rep.n_rows = n;
    sy_err_t err;
    sy_err_clear(&err);
    return sy_reports_apply(f->r, &rep, T0, dup, &err);
}

static void test_duplicate_is_acked_not_applied(void **state)
{
    fixture_t *f = *state;
    Switchyard__UsageRow a = make_row(T0 + 5, "key_1", 100, 10);
    Switchyard__UsageRow *rows[] = {&a};
    bool dup = true;
    assert_int_equal(apply(f, "boot1", 1, rows, 1, &dup), 0);
    assert_false(dup);
    /* The same id again, even with other content, changes nothing. */
    a.prompt_tokens = 5000;
    assert_int_equal(apply(f, "boot1", 1, rows, 1, &dup), 0);
    assert_true(dup);
    assert_int_equal(q_int(f->db, "SELECT prompt_tokens FROM usage_minute"), 100);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM applied_reports"), 1);
    /* Same seq under another boot is another report. */
    a.prompt_tokens = 50;
    assert_int_equal(apply(f, "boot2", 1, rows, 1, &dup), 0);
    assert_false(dup);
    assert_int_equal(q_int(f->db, "SELECT prompt_tokens FROM usage_minute"), 150);
    assert_int_equal(q_int(f->db, "SELECT requests FROM usage_day"), 2);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM applied_reports"), 2);
}

static void test_rollups_and_buckets(void **state)
{
    fixture_t *f = *state;
    /* Two minutes of one hour, and one row in the next hour. */
    Switchyard__UsageRow a = make_row(T0 + 1, "key_1", 10, 1);
    Switchyard__UsageRow b = make_row(T0 + 61, "key_1", 20, 2);
    Switchyard__UsageRow c = make_row(T0 + 3600 + 59, "key_1", 40, 4);
    Switchyard__UsageRow d = make_row(T0 + 2, "key_2", 1, 1);
    Switchyard__UsageRow *rows[] = {&a, &b, &c, &d};
    bool dup;
    assert_int_equal(apply(f, "boot1", 7, rows, 4, &dup), 0);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM usage_minute"), 4);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM usage_hour"), 3);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM usage_day"), 2);
    assert_int_equal(q_int(f->db, "SELECT min(bucket) FROM usage_minute"), T0);
    assert_int_equal(q_int(f->db, "SELECT prompt_tokens FROM usage_minute WHERE bucket = "
                                  "1795255260"),
                     20);
    assert_int_equal(q_int(f->db,
                           "SELECT prompt_tokens FROM usage_hour WHERE bucket = 1795255200 AND "
                           "key_id = 'key_1'"),
                     30);
    assert_int_equal(q_int(f->db, "SELECT prompt_tokens FROM usage_day WHERE key_id = 'key_1'"),
                     70);
    assert_int_equal(q_int(f->db, "SELECT bucket FROM usage_day LIMIT 1"), 1795219200);
    /* Every level sums to the same totals. */
    assert_int_equal(q_int(f->db, "SELECT sum(completion_tokens) FROM usage_minute"), 8);
    assert_int_equal(q_int(f->db, "SELECT sum(completion_tokens) FROM usage_hour"), 8);
    assert_int_equal(q_int(f->db, "SELECT sum(completion_tokens) FROM usage_day"), 8);
}

static void test_cost_uses_price_valid_at_minute(void **state)
{
    fixture_t *f = *state;
    /* Before the change: 1000 in x $2 + 500 out x $8 = 0.006. */
    Switchyard__UsageRow a = make_row(T0 + 3599, "key_1", 1000, 500);
    /* After: (1000 - 200 cached) x $1 + 200 x $0.5 + 500 x $4 + 100 writes x $3 = 0.0032. */
    Switchyard__UsageRow b = make_row(T0 + 3600, "key_1", 1000, 500);
    b.cached_tokens = 200;
    b.cache_write_tokens = 100;
    /* An unknown model keeps the worker's cost. */
    Switchyard__UsageRow c = make_row(T0, "key_1", 1000, 500);
    c.model_id = "unpriced";
    c.cost_usd = 0.25;
    Switchyard__UsageRow *rows[] = {&a, &b, &c};
    bool dup;
    assert_int_equal(apply(f, "boot1", 1, rows, 3, &dup), 0);
    assert_true(fabs(q_double(f->db, "SELECT cost_usd FROM usage_minute WHERE bucket = "
                                     "1795258740 AND model_id = 'gpt-x'") -
                     0.006) < 1e-12);
    assert_true(fabs(q_double(f->db, "SELECT cost_usd FROM usage_minute WHERE bucket = "
                                     "1795258800") -
                     0.0032) < 1e-12);
    assert_true(fabs(q_double(f->db, "SELECT cost_usd FROM usage_minute WHERE model_id = "
                                     "'unpriced'") -
                     0.25) < 1e-12);
    assert_true(fabs(q_double(f->db, "SELECT sum(cost_usd) FROM usage_day") - 0.2592) < 1e-12);
}

static void test_failure_rolls_back_everything(void **state)
{
    fixture_t *f = *state;
    /* Make the day rollup fail for one tenant, after the id and the minute
     * and hour rows of the same report were written. */
    exec_ok(f->db, "CREATE TRIGGER boom BEFORE INSERT ON usage_day WHEN NEW.tenant_id = 'ten_b'"
                   " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    Switchyard__UsageRow a = make_row(T0, "key_1", 10, 1);
    Switchyard__UsageRow b = make_row(T0, "key_9", 10, 1);
    b.tenant_id = "ten_b";
    Switchyard__UsageRow *rows[] = {&a, &b};
    bool dup = false;
    assert_int_equal(apply(f, "boot1", 1, rows, 2, &dup), SY_EIO);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM applied_reports"), 0);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM usage_minute"), 0);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM usage_hour"), 0);
    assert_true(sqlite3_get_autocommit(f->db));
    /* Once the cause is gone the same report applies, once. */
    exec_ok(f->db, "DROP TRIGGER boom");
    assert_int_equal(apply(f, "boot1", 1, rows, 2, &dup), 0);
    assert_false(dup);
    assert_int_equal(apply(f, "boot1", 1, rows, 2, &dup), 0);
    assert_true(dup);
    assert_int_equal(q_int(f->db, "SELECT sum(prompt_tokens) FROM usage_day"), 20);
}

static void test_malformed_reports_refused(void **state)
{
    fixture_t *f = *state;
    Switchyard__UsageRow a = make_row(T0, "key_1", 10, 1);
    Switchyard__UsageRow *rows[] = {&a};
    bool dup;
    assert_int_equal(apply(f, "", 1, rows, 1, &dup), SY_EINVAL);
    assert_int_equal(apply(f, "boot1", 0, rows, 1, &dup), SY_EINVAL);
    a.tenant_id = "";
    assert_int_equal(apply(f, "boot1", 1, rows, 1, &dup), SY_EINVAL);
    a.tenant_id = "ten_a";
    a.prompt_tokens = UINT64_MAX;
    assert_int_equal(apply(f, "boot1", 1, rows, 1, &dup), SY_EINVAL);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM applied_reports"), 0);
    assert_true(sqlite3_get_autocommit(f->db));
}

static void test_many_reports_sum_exactly(void **state)
{
    fixture_t *f = *state;
    /* 500 reports from 2 workers, some delivered twice: totals count each once. */
    uint64_t want_prompt = 0;
    for (uint64_t seq = 1; seq <= 250; seq++) {
        for (int w = 0; w < 2; w++) {
            Switchyard__UsageRow a =
                make_row(T0 + (int64_t)seq, w ? "key_2" : "key_1", seq + (uint64_t)w, 3);
            Switchyard__UsageRow *rows[] = {&a};
            bool dup;
            const char *boot = w ? "boot-w1" : "boot-w0";
            assert_int_equal(apply(f, boot, seq, rows, 1, &dup), 0);
            assert_false(dup);
            want_prompt += seq + (uint64_t)w;
            if (seq % 7 == 0) {
                assert_int_equal(apply(f, boot, seq, rows, 1, &dup), 0);
                assert_true(dup);
            }
        }
    }
    assert_int_equal(q_int(f->db, "SELECT sum(prompt_tokens) FROM usage_minute"), want_prompt);
    assert_int_equal(q_int(f->db, "SELECT sum(prompt_tokens) FROM usage_hour"), want_prompt);
    assert_int_equal(q_int(f->db, "SELECT sum(requests) FROM usage_day"), 500);
    assert_int_equal(q_int(f->db, "SELECT count(*) FROM applied_reports"), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicate_is_acked_not_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups_and_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost_uses_price_valid_at_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_rolls_back_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_reports_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_reports_sum_exactly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
