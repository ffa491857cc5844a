/* Unit tests for dataplane/usage_journal.c: samples survive a crash of the
 * worker, generations covered by a spooled report are not replayed, a torn
 * last record is ignored, and replayed samples are journaled again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dataplane/usage_journal.h"
#include "log.h"

typedef struct fixture {
    char dir[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-journal-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static sy_usage_sample_t sample(uint64_t prompt, const char *key)
{
    sy_usage_sample_t s = {
        .unix_ms = 1795255200123LL,
        .tenant_id = "ten_a",
        .team_id = "team_a",
        .key_id = key,
        .route = "auto",
        .provider_id = "prv_1",
        .model_id = "gpt-x",
        .prompt_tokens = prompt,
        .completion_tokens = prompt / 2,
        .cached_tokens = 1,
        .cost_usd = 0.125,
        .latency_ms = 42,
        .ttft_ms = -1,
    };
    return s;
}

/* Drains u and returns the sum of prompt tokens (and checks the strings). */
static uint64_t drained_prompt(sy_usage_t *u, size_t *rows_out, uint64_t *requests)
{
    Switchyard__UsageRow **rows = NULL;
    size_t n = 0;
    assert_int_equal(sy_usage_drain(u, &rows, &n), 0);
    uint64_t sum = 0, req = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rows[i]->tenant_id, "ten_a");
        assert_string_equal(rows[i]->model_id, "gpt-x");
        assert_string_equal(rows[i]->route, "auto");
        assert_int_equal(rows[i]->minute, 1795255200);
        sum += rows[i]->prompt_tokens;
        req += rows[i]->requests;
    }
    sy_usage_rows_free(rows, n);
    *rows_out = n;
    *requests = req;
    return sum;
}

static void test_samples_survive_a_crash(void **state)
{
    fixture_t *f = *state;
    sy_usage_journal_t *j = NULL;
    size_t replayed = 99;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, NULL, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        sy_usage_sample_t s = sample(i * 100, i == 3 ? "key_2" : "key_1");
        assert_int_equal(sy_usage_journal_append(j, &s), 0);
    }
    assert_int_equal(sy_usage_journal_pending(j), 3);
    sy_usage_journal_close(j); /* as if killed */

    sy_usage_t *u = sy_usage_new();
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 3);
    size_t rows;
    uint64_t req;
    assert_int_equal(drained_prompt(u, &rows, &req), 600);
    assert_int_equal(rows, 2);
    assert_int_equal(req, 3);
    /* Replayed samples were journaled again: still safe until a report. */
    assert_int_equal(sy_usage_journal_pending(j), 3);
    sy_usage_journal_close(j);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 3);
    sy_usage_journal_close(j);
    /* Another worker's journal is its own. */
    assert_int_equal(sy_usage_journal_open(f->dir, "w1", 0, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 0);
    sy_usage_journal_close(j);
    assert_int_equal(drained_prompt(u, &rows, &req), 600); /* the second replay */
    sy_usage_free(u);
}

static void test_covered_generations_are_dropped(void **state)
{
    fixture_t *f = *state;
    sy_usage_journal_t *j = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, NULL, &j, NULL, &err), 0);
    sy_usage_sample_t a = sample(10, "key_1"), b = sample(20, "key_1"), c = sample(40, "key_1");
    assert_int_equal(sy_usage_journal_append(j, &a), 0);
    assert_int_equal(sy_usage_journal_append(j, &b), 0);
    uint64_t closed = 0;
    assert_int_equal(sy_usage_journal_rotate(j, &closed), 0);
    assert_int_equal(sy_usage_journal_pending(j), 0);
    assert_int_equal(sy_usage_journal_append(j, &c), 0);
    /* Killed after spooling the report of `closed`, before deleting its file. */
    sy_usage_journal_close(j);
    sy_usage_t *u = sy_usage_new();
    size_t replayed = 0, rows;
    uint64_t req;
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", closed, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 1);
    assert_int_equal(drained_prompt(u, &rows, &req), 40);
    /* The normal path: rotate, spool, forget. */
    assert_int_equal(sy_usage_journal_rotate(j, &closed), 0);
    sy_usage_journal_forget(j, closed);
    sy_usage_journal_close(j);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 0);
    sy_usage_journal_close(j);
    sy_usage_free(u);
}

static void test_torn_tail_is_ignored(void **state)
{
    fixture_t *f = *state;
    sy_usage_journal_t *j = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, NULL, &j, NULL, &err), 0);
    sy_usage_sample_t a = sample(7, "key_1");
    assert_int_equal(sy_usage_journal_append(j, &a), 0);
    assert_int_equal(sy_usage_journal_append(j, &a), 0);
    sy_usage_journal_close(j);
    /* A record cut short by the kill. */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "printf '\\x50\\x00\\x00\\x00\\x01\\x02' >> %s/w0.1.journal",
             f->dir);
    assert_int_equal(system(cmd), 0);
    sy_usage_t *u = sy_usage_new();
    size_t replayed = 0, rows;
    uint64_t req;
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, u, &j, &replayed, &err), 0);
    assert_int_equal(replayed, 2);
    assert_int_equal(drained_prompt(u, &rows, &req), 14);
    sy_usage_journal_close(j);
    sy_usage_free(u);
}

static void test_oversized_ids_refused(void **state)
{
    fixture_t *f = *state;
    sy_usage_journal_t *j = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_usage_journal_open(f->dir, "w0", 0, NULL, &j, NULL, &err), 0);
    char big[5000];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sy_usage_sample_t s = sample(1, big);
    assert_int_equal(sy_usage_journal_append(j, &s), SY_E2BIG);
    assert_int_equal(sy_usage_journal_pending(j), 0);
    sy_usage_journal_close(j);
}

int main(void)
{
    sy_log_open("-", SY_LOG_ERROR, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_samples_survive_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_covered_generations_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_ids_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
