/* Unit tests for controlplane/leases.c: grants never add up past a hard
 * budget, restarts keep earlier spend, releases and lapses give back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "controlplane/leases.h"

static Switchyard__Budget budget(const char *id, double amount, bool hard, double spent)
{
    Switchyard__Budget b = SWITCHYARD__BUDGET__INIT;
    b.id = (char *)id;
    b.period = "daily";
    b.amount_usd = amount;
    b.hard = hard;
    b.window_start = 86400;
    b.window_end = 2 * 86400;
    b.spent_usd = spent;
    return b;
}

/* One request for one lease; returns the granted total (and exhausted). */
static double ask(sy_leases_t *ls, const char *worker, const char *boot, const char *id,
                  double granted, double used, double want, double min, bool release, int64_t now,
                  bool *exhausted)
{
    Switchyard__BudgetLease l = SWITCHYARD__BUDGET_LEASE__INIT;
    l.budget_id = (char *)id;
    l.window_start = 86400;
    l.granted_usd = granted;
    l.used_usd = used;
    l.want_usd = want;
    l.min_usd = min;
    l.release = release;
    Switchyard__BudgetLease *lp = &l;
    Switchyard__LeaseRequest r = SWITCHYARD__LEASE_REQUEST__INIT;
    r.worker_id = (char *)worker;
    r.boot_id = (char *)boot;
    r.leases = &lp;
    r.n_leases = 1;
    Switchyard__LeaseGrant *g = NULL;
    assert_int_equal(sy_leases_handle(ls, &r, now, &g), 0);
    assert_int_equal(g->n_leases, 1);
    assert_string_equal(g->leases[0]->budget_id, id);
    double v = g->leases[0]->granted_usd;
    if (exhausted != NULL)
        *exhausted = g->leases[0]->exhausted;
    assert_true(g->leases[0]->expires_at_ms > now);
    sy_leases_grant_free(g);
    return v;
}

static void test_grants_stay_within_amount(void **state)
{
    (void)state;
    sy_leases_t *ls = sy_leases_new(30000);
    Switchyard__Budget b = budget("b", 1.0, true, 0.1);
    Switchyard__Budget *bs[1] = {&b};
    assert_int_equal(sy_leases_set_budgets(ls, bs, 1, 2), 0);
    /* Two workers keep asking for 0.3 at a time and use all of it. */
    double g1 = 0, g2 = 0;
    bool ex = false;
    for (int i = 0; i < 20; i++) {
        g1 = ask(ls, "w1", "boot1", "b", g1, g1, 0.3, 0.01, false, 1000 + i, &ex);
        g2 = ask(ls, "w2", "boot2", "b", g2, g2, 0.3, 0.01, false, 1000 + i, &ex);
    }
    /* The snapshot's $0.10 counts only while it exceeds the leases. */
    assert_true(g1 + g2 <= 1.0 + 1e-9);
    assert_true(g1 + g2 >= 0.99 - 1e-9);
    assert_true(ex);
    double c = 0;
    assert_int_equal(sy_leases_committed(ls, "b", 86400, &c), 0);
    assert_true(c <= 1.0 + 1e-9);
    /* w1 gives back half of its last slice: w2 can have it. */
    double before = g2;
    g1 = ask(ls, "w1", "boot1", "b", g1, g1 - 0.1, 0, 0, true, 2000, NULL);
    for (int i = 0; i < 10; i++)
        g2 = ask(ls, "w2", "boot2", "b", g2, g2, 0.3, 0.01, false, 2000 + i, &ex);
    assert_true(g2 > before + 0.09);
    assert_true(g1 + g2 <= 1.0 + 1e-9);
    sy_leases_free(ls);
}

static void test_restart_and_lapse(void **state)
{
    (void)state;
    sy_leases_t *ls = sy_leases_new(1000);
    Switchyard__Budget b = budget("b", 1.0, true, 0);
    Switchyard__Budget *bs[1] = {&b};
    assert_int_equal(sy_leases_set_budgets(ls, bs, 1, 1), 0);
    double g = ask(ls, "w1", "boot1", "b", 0, 0, 0.6, 0.1, false, 0, NULL);
    assert_true(g > 0.59 && g < 0.61);
    /* The worker restarts (new boot): what the old boot held still counts. */
    double g2 = ask(ls, "w1", "boot2", "b", 0, 0, 0.6, 0.1, false, 10, NULL);
    assert_true(g2 > 0.39 && g2 < 0.41);
    /* Another worker gets nothing more; it is told the budget is exhausted. */
    bool ex = false;
    double g3 = ask(ls, "w2", "boot9", "b", 0, 0, 0.5, 0.1, false, 20, &ex);
    assert_true(g3 < 1e-9);
    assert_true(ex);
    /* w1's second boot lapses unused (1 s ttl + 5 s grace): reclaimed. */
    g3 = ask(ls, "w2", "boot9", "b", 0, 0, 0.5, 0.1, false, 7000, &ex);
    assert_true(g3 > 0.39 && g3 < 0.41);
    /* A soft budget needs no lease: it grants what is asked. */
    Switchyard__Budget s = budget("s", 1.0, false, 5.0);
    Switchyard__Budget *ss[1] = {&s};
    assert_int_equal(sy_leases_set_budgets(ls, ss, 1, 1), 0);
    g = ask(ls, "w1", "boot2", "s", 0, 0, 0.5, 0.1, false, 8000, &ex);
    assert_true(g > 0.49);
    assert_false(ex);
    sy_leases_free(ls);
}

static void test_bad_request(void **state)
{
    (void)state;
    sy_leases_t *ls = sy_leases_new(0);
    Switchyard__LeaseRequest r = SWITCHYARD__LEASE_REQUEST__INIT;
    Switchyard__LeaseGrant *g = (Switchyard__LeaseGrant *)0x1;
    assert_int_equal(sy_leases_handle(ls, &r, 0, &g), SY_EINVAL);
    assert_ptr_equal(g, (Switchyard__LeaseGrant *)0x1);
    sy_leases_free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grants_stay_within_amount),
        cmocka_unit_test(test_restart_and_lapse),
        cmocka_unit_test(test_bad_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
