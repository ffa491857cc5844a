/* Unit tests for controlplane/snapshot_build.c on a real migrated SQLite
 * database: what goes into a snapshot (and what stays out: revoked and
 * expired keys), credentials opened under the master key, routes with
 * ordered rules and targets, and budgets: spend in the current window from
 * the day rollups, with an exhausted hard budget blocking its tenant, team or
 * key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "controlplane/secrets.h"
#include "controlplane/snapshot_build.h"
#include "cp_test_util.h"
#include "log.h"

/* 2026-11-21 10:00:00 UTC */
#define NOW_S 1795255200LL
#define DAY0 1795219200LL   /* 2026-11-21 00:00 UTC */
#define MONTH0 1793491200LL /* 2026-11-01 00:00 UTC */

typedef struct fixture {
    sqlite3 *db;
    sy_envelope_key_t master;
} fixture_t;

static void add_provider(fixture_t *f, const char *id, const char *secret,
                         const sy_envelope_key_t *key)
{
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    assert_int_equal(sy_secrets_seal(key, id, secret, strlen(secret), &sealed), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(f->db,
                                        "INSERT INTO providers (id, name, kind, base_url,"
                                        " credential, headers, created_at, updated_at) VALUES"
                                        " (?1, ?1, 'anthropic', 'http://x', ?2,"
                                        " '{\"anthropic-version\":\"2023-06-01\"}', 0, 0)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, sealed.data, (int)sealed.len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sy_buf_free(&sealed);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->db = migrated_db();
    char hex[80];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &f->master), 0);
    exec_ok(
        f->db,
        "INSERT INTO tenants (id, name, tier, created_at, updated_at, rpm)"
        " VALUES ('ten_a', 'A', 'enterprise', 0, 0, 100), ('ten_b', 'B', 'free', 0, 0, 0);"
        "INSERT INTO teams (id, tenant_id, name, created_at, updated_at)"
        " VALUES ('team_a', 'ten_a', 'T', 0, 0), ('team_b', 'ten_b', 'T', 0, 0);"
        "INSERT INTO api_keys (id, tenant_id, team_id, name, sha256, prefix, created_at,"
        " updated_at, expires_at, revoked_at, allowed_models, tpm) VALUES"
        " ('key_live', 'ten_a', 'team_a', 'live', randomblob(32), 'sk-1', 0, 0, 0, 0,"
        "  '[\"m1\",\"auto\"]', 5000),"
        " ('key_revoked', 'ten_a', NULL, 'revoked', randomblob(32), 'sk-2', 0, 0, 0, 5, '[]', 0),"
        " ('key_expired', 'ten_a', NULL, 'expired', randomblob(32), 'sk-3', 0, 0, 100, 0, '[]', 0),"
        " ('key_later', 'ten_a', NULL, 'expires later', randomblob(32), 'sk-4', 0, 0,"
        "  1895255200, 0, '[]', 0),"
        " ('key_b', 'ten_b', 'team_b', 'b', randomblob(32), 'sk-5', 0, 0, 0, 0, '[]', 0);");
    add_provider(f, "prv_1", "sk-ant-secret", &f->master);
    exec_ok(f->db,
            "INSERT INTO models (id, provider_id, upstream_name, capabilities, created_at,"
            " updated_at) VALUES ('m1', 'prv_1', 'claude-x', '[\"chat\",\"tools\"]', 0, 0),"
            " ('m2', 'prv_1', 'claude-y', '[\"chat\"]', 0, 0);"
            "INSERT INTO model_prices VALUES ('m1', 2000, 3.0, 15.0, 0.3, 3.75),"
            " ('m1', 1000, 4.0, 16.0, 0, 0);"
            "INSERT INTO routes (id, alias, tenant_id, max_attempts, created_at, updated_at)"
            " VALUES ('route_1', 'auto', NULL, 2, 0, 0), ('route_2', 'auto', 'ten_b', 1, 0, 0);"
            "INSERT INTO route_rules (route_id, position, name, task, min_prompt_tokens, strategy)"
            " VALUES ('route_1', 1, 'long', '', 8000, 'lowest-cost'),"
            " ('route_1', 0, 'code', 'code', 0, 'priority'),"
            " ('route_2', 0, 'all', '', 0, 'weighted');"
            "INSERT INTO route_targets VALUES ('route_1', 0, 1, 'prv_1', 'm2', 1),"
            " ('route_1', 0, 0, 'prv_1', 'm1', 1), ('route_1', 1, 0, 'prv_1', 'm2', 1),"
            " ('route_2', 0, 0, 'prv_1', 'm1', 3), ('route_2', 0, 1, 'prv_1', 'm2', 1);");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sqlite3_close(f->db);
    free(f);
    return 0;
}

static const Switchyard__Snapshot *build(fixture_t *f, sy_snapshot_build_t **b)
{
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_snapshot_build(f->db, &f->master, 7, NOW_S * 1000, 3, b, &err) != 0)
        fail_msg("%s", err.msg);
    return sy_snapshot_build_message(*b);
}

static const Switchyard__ApiKey *key_by_id(const Switchyard__Snapshot *s, const char *id)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i]->id, id) == 0)
            return s->keys[i];
    return NULL;
}

static void test_contents(void **state)
{
    fixture_t *f = *state;
    sy_snapshot_build_t *b = NULL;
    const Switchyard__Snapshot *s = build(f, &b);
    assert_int_equal(s->version, 7);
    assert_int_equal(s->live_workers, 3);
    assert_int_equal(s->n_tenants, 2);
    assert_string_equal(s->tenants[0]->tier, "enterprise");
    assert_int_equal(s->tenants[0]->limits->rpm, 100);
    assert_int_equal(s->n_teams, 2);

    /* Revoked and expired keys stay out; a key expiring later is in. */
    assert_int_equal(s->n_keys, 3);
    assert_null(key_by_id(s, "key_revoked"));
    assert_null(key_by_id(s, "key_expired"));
    const Switchyard__ApiKey *k = key_by_id(s, "key_live");
    assert_non_null(k);
    assert_int_equal(k->sha256.len, 32);
    assert_string_equal(k->team_id, "team_a");
    assert_int_equal(k->n_allowed_models, 2);
    assert_string_equal(k->allowed_models[1], "auto");
    assert_int_equal(k->limits->tpm, 5000);
    assert_false(k->blocked);
    assert_int_equal(key_by_id(s, "key_later")->expires_at, 1895255200);
    assert_string_equal(key_by_id(s, "key_later")->team_id, "");

    /* The credential is opened under the master key; headers come along. */
    assert_int_equal(s->n_providers, 1);
    assert_string_equal(s->providers[0]->api_key, "sk-ant-secret");
    assert_int_equal(s->providers[0]->kind, SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_ANTHROPIC);
    assert_int_equal(s->providers[0]->n_headers, 1);
    assert_string_equal(s->providers[0]->headers[0]->key, "anthropic-version");

    /* Prices ordered by valid_from. */
    assert_string_equal(s->models[0]->id, "m1");
    assert_int_equal(s->models[0]->n_prices, 2);
    assert_int_equal(s->models[0]->prices[0]->valid_from, 1000);
    assert_true(s->models[0]->prices[1]->cache_write_per_mtok == 3.75);
    assert_int_equal(s->models[0]->n_capabilities, 2);

    /* Routes: rules by position, targets by position. */
    assert_int_equal(s->n_routes, 2);
    const Switchyard__Route *r = s->routes[0];
    assert_string_equal(r->tenant_id, "");
    assert_int_equal(r->max_attempts, 2);
    assert_int_equal(r->n_rules, 2);
    assert_string_equal(r->rules[0]->name, "code");
    assert_string_equal(r->rules[0]->task, "code");
    assert_int_equal(r->rules[0]->n_targets, 2);
    assert_string_equal(r->rules[0]->targets[0]->model_id, "m1");
    assert_string_equal(r->rules[0]->targets[1]->model_id, "m2");
    assert_string_equal(r->rules[1]->strategy, "lowest-cost");
    assert_int_equal(r->rules[1]->min_prompt_tokens, 8000);
    assert_string_equal(s->routes[1]->tenant_id, "ten_b");
    assert_int_equal(s->routes[1]->rules[0]->targets[0]->weight, 3);

    /* It packs and unpacks as a valid message. */
    size_t n = switchyard__snapshot__get_packed_size(s);
    uint8_t *buf = malloc(n);
    switchyard__snapshot__pack(s, buf);
    Switchyard__Snapshot *back = switchyard__snapshot__unpack(NULL, n, buf);
    assert_non_null(back);
    assert_int_equal(back->n_keys, 3);
    switchyard__snapshot__free_unpacked(back, NULL);
    free(buf);
    sy_snapshot_build_free(b);
}

static void test_wrong_master_key_leaves_credential_out(void **state)
{
    fixture_t *f = *state;
    sy_envelope_key_t other;
    char hex[80];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &other), 0);
    add_provider(f, "prv_2", "sk-other", &other);
    sy_snapshot_build_t *b = NULL;
    const Switchyard__Snapshot *s = build(f, &b);
    assert_int_equal(s->n_providers, 2);
    assert_string_equal(s->providers[0]->api_key, "sk-ant-secret");
    /* Sealed under another key: the provider is kept, without a credential. */
    assert_string_equal(s->providers[1]->id, "prv_2");
    assert_true(s->providers[1]->api_key == NULL || s->providers[1]->api_key[0] == '\0');
    sy_snapshot_build_free(b);
}

static void add_spend(fixture_t *f, int64_t day, const char *tenant, const char *team,
                      const char *key, double cost)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO usage_day (bucket, tenant_id, team_id, key_id, model_id, requests,"
             " cost_usd) VALUES (%lld, '%s', '%s', '%s', 'm1', 1, %.17g)",
             (long long)day, tenant, team, key, cost);
    exec_ok(f->db, sql);
}

static void test_budgets_block_when_exhausted(void **state)
{
    fixture_t *f = *state;
    exec_ok(f->db, "INSERT INTO budgets (id, tenant_id, scope, scope_id, period, amount_usd,"
                   " soft_threshold, hard, created_at, updated_at) VALUES"
                   " ('bud_1', 'ten_a', 'tenant', 'ten_a', 'daily', 10, 0.8, 1, 0, 0),"
                   " ('bud_2', 'ten_b', 'team', 'team_b', 'monthly', 5, 0.5, 1, 0, 0),"
                   " ('bud_3', 'ten_a', 'key', 'key_live', 'daily', 1, 0.8, 0, 0, 0);"
                   "UPDATE api_keys SET budget_usd = 2 WHERE id = 'key_b'");
    /* ten_a: 9.5 today (under 10), 50 yesterday (another window). */
    add_spend(f, DAY0, "ten_a", "team_a", "key_live", 9.5);
    add_spend(f, DAY0 - 86400, "ten_a", "team_a", "key_live", 50);
    /* team_b: 3 this month before today + 2.5 today = 5.5 >= 5: blocked;
     * its key_b has spent the same 5.5 >= 2 this month: blocked as well. */
    add_spend(f, MONTH0 + 86400, "ten_b", "team_b", "key_b", 3);
    add_spend(f, DAY0, "ten_b", "team_b", "key_b", 2.5);
    add_spend(f, MONTH0 - 86400, "ten_b", "team_b", "key_b", 100); /* last month */

    sy_snapshot_build_t *b = NULL;
    const Switchyard__Snapshot *s = build(f, &b);
    assert_int_equal(s->n_budgets, 4);
    const Switchyard__Budget *b1 = s->budgets[0], *b2 = s->budgets[1], *b3 = s->budgets[2];
    assert_string_equal(b1->id, "bud_1");
    assert_true(fabs(b1->spent_usd - 9.5) < 1e-9);
    assert_int_equal(b1->window_start, DAY0);
    assert_int_equal(b1->window_end, DAY0 + 86400);
    assert_true(fabs(b2->spent_usd - 5.5) < 1e-9);
    assert_int_equal(b2->window_start, MONTH0);
    assert_int_equal(b2->window_end, MONTH0 + 30 * 86400);
    assert_int_equal(b2->scope, SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TEAM);
    /* A soft (not hard) key budget over its amount never blocks. */
    assert_true(b3->spent_usd > b3->amount_usd);
    assert_false(b3->hard);
    assert_string_equal(s->budgets[3]->id, "key:key_b");

    assert_false(s->tenants[0]->blocked); /* ten_a: 9.5 of 10 */
    assert_false(s->tenants[1]->blocked);
    assert_false(s->teams[0]->blocked);
    assert_true(s->teams[1]->blocked); /* team_b */
    assert_false(key_by_id(s, "key_live")->blocked);
    assert_true(key_by_id(s, "key_b")->blocked);
    sy_snapshot_build_free(b);

    /* Half a dollar more today exhausts ten_a's daily budget. */
    add_spend(f, DAY0 + 3600, "ten_a", "team_a", "key_live", 0.5);
    s = build(f, &b);
    assert_true(s->tenants[0]->blocked);
    sy_snapshot_build_free(b);
}

static void test_budget_windows_follow_tenant_time_zone(void **state)
{
    fixture_t *f = *state;
    /* New York is UTC-5 in November: at 10:00 UTC the local day began at
     * 05:00 UTC. Kolkata is UTC+5:30: its day began at 18:30 UTC the day
     * before, which only minute buckets tile. */
    exec_ok(f->db,
            "INSERT INTO tenants (id, name, time_zone, created_at, updated_at) VALUES"
            " ('ten_ny', 'NY', 'America/New_York', 0, 0), ('ten_in', 'IN', 'Asia/Kolkata', 0, 0);"
            "INSERT INTO budgets (id, tenant_id, scope, scope_id, period, amount_usd, hard,"
            " created_at, updated_at) VALUES"
            " ('bud_ny', 'ten_ny', 'tenant', 'ten_ny', 'daily', 10, 1, 0, 0),"
            " ('bud_nym', 'ten_ny', 'tenant', 'ten_ny', 'monthly', 100, 1, 0, 0),"
            " ('bud_in', 'ten_in', 'tenant', 'ten_in', 'daily', 1, 1, 0, 0);");
    char sql[512];
    /* NY: 04:00 UTC is the previous local day, 06:00 UTC is today. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO usage_hour (bucket, tenant_id, cost_usd) VALUES"
             " (%lld, 'ten_ny', 7), (%lld, 'ten_ny', 2);"
             "INSERT INTO usage_minute (bucket, tenant_id, cost_usd) VALUES"
             " (%lld, 'ten_in', 0.75), (%lld, 'ten_in', 0.5);",
             (long long)(DAY0 + 4 * 3600), (long long)(DAY0 + 6 * 3600),
             (long long)(DAY0 - 5 * 3600 - 35 * 60), (long long)(DAY0 - 5 * 3600 - 25 * 60));
    exec_ok(f->db, sql);
    sy_snapshot_build_t *b = NULL;
    const Switchyard__Snapshot *s = build(f, &b);
    const Switchyard__Budget *ny = NULL, *nym = NULL, *in = NULL;
    for (size_t i = 0; i < s->n_budgets; i++) {
        if (strcmp(s->budgets[i]->id, "bud_ny") == 0)
            ny = s->budgets[i];
        if (strcmp(s->budgets[i]->id, "bud_nym") == 0)
            nym = s->budgets[i];
        if (strcmp(s->budgets[i]->id, "bud_in") == 0)
            in = s->budgets[i];
    }
    assert_non_null(ny);
    assert_int_equal(ny->window_start, DAY0 + 5 * 3600);
    assert_int_equal(ny->window_end, DAY0 + 29 * 3600);
    assert_true(fabs(ny->spent_usd - 2) < 1e-9);
    /* The local month began at 2026-11-01 04:00 UTC (still daylight time). */
    assert_int_equal(nym->window_start, MONTH0 + 4 * 3600);
    assert_true(fabs(nym->spent_usd - 9) < 1e-9);
    assert_int_equal(in->window_start, DAY0 - 5 * 3600 - 30 * 60);
    assert_true(fabs(in->spent_usd - 0.5) < 1e-9);
    /* Nothing blocked: NY spent 2 of 10 today, Kolkata 0.5 of 1. */
    for (size_t i = 0; i < s->n_tenants; i++)
        assert_false(s->tenants[i]->blocked);
    /* TZ of the process is left as it was. */
    assert_null(getenv("TZ"));
    sy_snapshot_build_free(b);
}

int main(void)
{
    sy_log_open("-", SY_LOG_ERROR, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_key_leaves_credential_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_budgets_block_when_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_windows_follow_tenant_time_zone, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
