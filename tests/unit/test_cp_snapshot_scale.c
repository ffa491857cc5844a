/* Snapshot size and build time against the number of API keys: builds the
 * snapshot of a store holding N keys (2,000 by default; set
 * SY_SNAPSHOT_KEYS=100000 for the figure in the closing note), packs and
 * seals it as the control plane does, opens and indexes it as a worker does,
 * checks sampled keys resolve, and prints the figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "controlplane/snapshot_build.h"
#include "controlplane/store.h"
#include "controlplane/migrate.h"
#include "dataplane/snapshot.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

static void secret_of(size_t i, char *out, size_t size)
{
    snprintf(out, size, "sk-scale-%08zu", i);
}

static void test_snapshot_scale(void **state)
{
    (void)state;
    const char *env = getenv("SY_SNAPSHOT_KEYS");
    size_t n = env != NULL ? (size_t)strtoull(env, NULL, 10) : 2000;
    if (n == 0)
        n = 1;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_migrate_apply(db, "migrations", NULL, &err) != 0)
        fail_msg("%s", err.msg);
    /* 100 tenants with a team each; keys spread over them. */
    exec_ok(db, "BEGIN");
    for (int t = 0; t < 100; t++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO tenants (id, name, created_at, updated_at) VALUES"
                 " ('ten_%03d', 'tenant %d', 0, 0);"
                 "INSERT INTO teams (id, tenant_id, name, created_at, updated_at) VALUES"
                 " ('team_%03d', 'ten_%03d', 'team', 0, 0);",
                 t, t, t, t);
        exec_ok(db, sql);
    }
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "INSERT INTO api_keys (id, tenant_id, team_id, name, sha256, prefix,"
                           " created_at, updated_at, rpm, tpm) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                           " 0, 0, 600, 100000)",
                           -1, &st, NULL),
        SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        char id[48], tenant[32], team[32], name[48], secret[48];
        unsigned char h[32];
        snprintf(id, sizeof(id), "key_%08zu", i);
        snprintf(tenant, sizeof(tenant), "ten_%03zu", i % 100);
        snprintf(team, sizeof(team), "team_%03zu", i % 100);
        snprintf(name, sizeof(name), "service key %zu", i);
        secret_of(i, secret, sizeof(secret));
        sy_store_hash_secret(secret, strlen(secret), h);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, team, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 5, h, 32, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, secret, 12, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");

    double t0 = now_ms();
    sy_snapshot_build_t *b = NULL;
    if (sy_snapshot_build(db, NULL, 42, 1795255200000LL, 2, &b, &err) != 0)
        fail_msg("%s", err.msg);
    double t1 = now_ms();
    const Switchyard__Snapshot *msg = sy_snapshot_build_message(b);
    assert_int_equal(msg->n_keys, n);
    assert_int_equal(msg->n_tenants, 100);
    size_t len = switchyard__snapshot__get_packed_size(msg);
    uint8_t *pb = malloc(len);
    assert_non_null(pb);
    assert_int_equal(switchyard__snapshot__pack(msg, pb), len);
    double t2 = now_ms();
    sy_envelope_key_t key;
    char hex[80];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &key), 0);
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    assert_int_equal(sy_envelope_seal(&key, 1, "control", 1, pb, len, &sealed), 0);
    double t3 = now_ms();
    sy_snapshot_build_free(b);

    /* The worker side: open, unpack, index. */
    sy_envelope_t opened;
    assert_int_equal(sy_envelope_open(&key, sealed.data, sealed.len, &opened), 0);
    Switchyard__Snapshot *got = switchyard__snapshot__unpack(NULL, opened.payload.len,
                                                             (const uint8_t *)opened.payload.data);
    assert_non_null(got);
    sy_snapshot_t *snap = NULL;
    if (sy_snapshot_from_proto(got, &snap, &err) != 0)
        fail_msg("%s", err.msg);
    double t4 = now_ms();
    for (size_t i = 0; i < n; i += n / 97 + 1) {
        char secret[48];
        unsigned char h[32];
        secret_of(i, secret, sizeof(secret));
        sy_store_hash_secret(secret, strlen(secret), h);
        const sy_snapshot_key_t *k = sy_snapshot_find_key(snap, h);
        assert_non_null(k);
        assert_non_null(k->tenant);
        assert_int_equal(k->pb->limits->rpm, 600);
    }
    print_message("snapshot of %zu keys: %zu bytes (%.1f bytes/key), build %.1f ms, pack %.1f ms, "
                  "seal %.1f ms; worker open+unpack+index %.1f ms\n",
                  n, len, (double)len / (double)n, t1 - t0, t2 - t1, t3 - t2, t4 - t3);
    sy_snapshot_unref(snap);
    switchyard__snapshot__free_unpacked(got, NULL);
    sy_envelope_free(&opened);
    sy_buf_free(&sealed);
    free(pb);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
