/* Integration tests of the cluster channels in one process, over real
 * nanomsg ipc sockets and one libuv loop: controlplane/cluster.c (PUB/REP)
 * against dataplane/control_link.c (SUB/REQ). Covers snapshot delivery and
 * revocation, provider credential decryption, usage reports applied exactly
 * once across a worker restart (spool replay), and messages sealed with a
 * wrong key or with a flipped byte being refused and counted on both sides,
 * including the worker's snapshot cache file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>
#include <cmocka.h>

#include "controlplane/cluster.h"
#include "controlplane/secrets.h"
#include "controlplane/store.h"
#include "cp_test_util.h"
#include "dataplane/control_link.h"
#include "log.h"

#define SECRET "sk-test-cluster-0001"

typedef struct fixture {
    char dir[256];
    char pub_url[300], rep_url[300];
    uv_loop_t loop;
    uv_timer_t wake; /* keeps uv_run(UV_RUN_ONCE) returning */
    sy_store_t *store;
    sy_envelope_key_t key, master;
    sy_cluster_t *cluster;
    sy_snapshot_t *snap; /* the last snapshot installed by a link */
    int installs;
} fixture_t;

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*pred_fn)(void *arg);

/* Runs the loop until pred holds or timeout_ms passes; returns pred's value. */
static bool run_until(fixture_t *f, pred_fn pred, void *arg, int timeout_ms)
{
    uint64_t deadline = uv_now(&f->loop) + (uint64_t)timeout_ms;
    while (!pred(arg)) {
        if (uv_now(&f->loop) > deadline)
            return false;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return true;
}

static void install(void *arg, sy_snapshot_t *snap)
{
    fixture_t *f = arg;
    sy_snapshot_unref(f->snap);
    f->snap = snap;
    f->installs++;
}

static void cluster_stat(fixture_t *f, const char *name, uint64_t *out)
{
    sy_buf_t b;
    sy_buf_init(&b);
    assert_int_equal(sy_cluster_stats_json(f->cluster, &b), 0);
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = strstr(b.data, pat);
    assert_non_null(p);
    *out = strtoull(p + strlen(pat), NULL, 10);
    sy_buf_free(&b);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-cluster-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->pub_url, sizeof(f->pub_url), "ipc://%s/snap.ipc", f->dir);
    snprintf(f->rep_url, sizeof(f->rep_url), "ipc://%s/rep.ipc", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->wake);
    uv_timer_start(&f->wake, on_wake, 5, 5);

    char path[300], hex[80];
    snprintf(path, sizeof(path), "%s/db.sqlite", f->dir);
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_store_open(path, "migrations", &f->store, &err) != 0)
        fail_msg("store: %s", err.msg);
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &f->key), 0);
    snprintf(path, sizeof(path), "%s/cluster.key", f->dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "%s\n", hex);
    fclose(fp);
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &f->master), 0);

    /* One tenant with a key, a provider with a sealed credential, a priced model. */
    sqlite3 *db = f->store->db;
    unsigned char h[32];
    sy_store_hash_secret(SECRET, strlen(SECRET), h);
    char sql[1024], hh[65];
    for (int i = 0; i < 32; i++)
        snprintf(hh + 2 * i, 3, "%02x", h[i]);
    snprintf(sql, sizeof(sql),
             "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ('ten_a', 'A', 0, 0);"
             "INSERT INTO teams (id, tenant_id, name, created_at, updated_at)"
             " VALUES ('team_a', 'ten_a', 'T', 0, 0);"
             "INSERT INTO api_keys (id, tenant_id, team_id, name, sha256, prefix, created_at,"
             " updated_at, allowed_models) VALUES ('key_1', 'ten_a', 'team_a', 'k', x'%s',"
             " 'sk-test', 0, 0, '[\"gpt-x\"]');"
             "INSERT INTO models (id, provider_id, upstream_name, created_at, updated_at)"
             " VALUES ('gpt-x', 'prv_1', 'gpt-x-up', 0, 0);"
             "INSERT INTO model_prices VALUES ('gpt-x', 0, 2.0, 8.0, 0, 0);",
             hh);
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    assert_int_equal(sy_secrets_seal(&f->master, "prv_1", "sk-upstream", 11, &sealed), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO providers (id, name, kind, base_url,"
                                        " credential, headers, created_at, updated_at) VALUES"
                                        " ('prv_1', 'mock', 'openai', 'http://127.0.0.1:9', ?1,"
                                        " '{\"x-extra\":\"1\"}', 0, 0)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, sealed.data, (int)sealed.len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sy_buf_free(&sealed);
    exec_ok(db, sql);

    sy_cluster_options_t o = {
        .data_dir = f->dir,
        .snapshot_bind = f->pub_url,
        .report_bind = f->rep_url,
        .cluster_key_file = path,
        .master_key = &f->master,
        .heartbeat_ms = 100,
        .debounce_ms = 10,
        .usage_refresh_ms = 100,
    };
    if (sy_cluster_start(&f->loop, db, &o, &f->cluster, &err) != 0)
        fail_msg("cluster: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sy_cluster_stop(f->cluster);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* The loop closes clean: no handle left open. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sy_snapshot_unref(f->snap);
    sy_store_close(f->store);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static sy_control_link_t *start_link(fixture_t *f, const char *snap_url, const char *rep_url,
                                     const char *state_dir, sy_usage_t *usage,
                                     const sy_envelope_key_t *key)
{
    sy_control_link_options_t o = {
        .snapshots_url = snap_url,
        .reports_url = rep_url,
        .key = key != NULL ? key : &f->key,
        .worker_id = "testhost/0",
        .host = "testhost",
        .state_dir = state_dir,
        .usage = usage,
        .install = install,
        .install_arg = f,
        .report_interval_ms = 50,
    };
    sy_control_link_t *l = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_control_link_start(&f->loop, &o, &l, &err) != 0)
        fail_msg("link: %s", err.msg);
    return l;
}

static void stop_link(fixture_t *f, sy_control_link_t *l)
{
    sy_control_link_stop(l);
    /* Let the close callbacks run. */
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

typedef struct wait_version {
    fixture_t *f;
    uint64_t above;
} wait_version_t;

static bool has_newer(void *arg)
{
    wait_version_t *w = arg;
    return w->f->snap != NULL && sy_snapshot_version(w->f->snap) > w->above;
}

static const sy_snapshot_key_t *find_secret(fixture_t *f, const char *secret)
{
    unsigned char h[32];
    sy_store_hash_secret(secret, strlen(secret), h);
    return sy_snapshot_find_key(f->snap, h);
}

static void test_snapshot_delivery_and_revocation(void **state)
{
    fixture_t *f = *state;
    uint64_t v1 = sy_cluster_snapshot_version(f->cluster);
    sy_control_link_t *l = start_link(f, f->pub_url, f->rep_url, NULL, NULL, NULL);
    /* The Hello answer (or the PUB) carries the current version at once. */
    wait_version_t w = {f, v1 - 1};
    assert_true(run_until(f, has_newer, &w, 3000));
    const sy_snapshot_key_t *k = find_secret(f, SECRET);
    assert_non_null(k);
    assert_string_equal(k->pb->tenant_id, "ten_a");
    assert_non_null(k->team);
    assert_int_equal(k->pb->n_allowed_models, 1);
    assert_null(find_secret(f, "sk-some-other"));
    const Switchyard__Provider *p = sy_snapshot_find_provider(f->snap, SY_STR("prv_1"));
    assert_non_null(p);
    assert_string_equal(p->api_key, "sk-upstream");
    assert_int_equal(p->n_headers, 1);
    const sy_snapshot_model_t *m = sy_snapshot_find_model(f->snap, SY_STR("gpt-x"));
    assert_non_null(m);
    assert_int_equal(m->pb->n_prices, 1);

    /* Revoke: the next snapshot no longer has the key. */
    exec_ok(f->store->db, "UPDATE api_keys SET revoked_at = 1 WHERE id = 'key_1'");
    uint64_t v2 = sy_cluster_snapshot_version(f->cluster);
    sy_cluster_notify_change(f->cluster);
    for (int i = 0; i < 500 && sy_cluster_snapshot_version(f->cluster) == v2; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    w.above = sy_cluster_snapshot_version(f->cluster) - 1;
    assert_true(run_until(f, has_newer, &w, 2000));
    assert_null(find_secret(f, SECRET));

    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.rejected_messages, 0);
    assert_true(s.snapshots_installed >= 2);
    stop_link(f, l);
}

static bool link_idle(void *arg)
{
    return sy_control_link_pending(arg) == 0;
}

/* One request of the fixture's key at T0. */
static sy_usage_sample_t sample(uint64_t prompt, uint64_t completion)
{
    return (sy_usage_sample_t){
        .unix_ms = 1795255200000LL,
        .tenant_id = "ten_a",
        .team_id = "team_a",
        .key_id = "key_1",
        .route = "",
        .provider_id = "prv_1",
        .model_id = "gpt-x",
        .prompt_tokens = prompt,
        .completion_tokens = completion,
        .latency_ms = 12,
        .ttft_ms = -1,
    };
}

static void record(sy_usage_t *u, uint64_t prompt, uint64_t completion)
{
    sy_usage_sample_t s = sample(prompt, completion);
    assert_int_equal(sy_usage_record(u, &s), 0);
}

static void test_usage_exactly_once_across_restart(void **state)
{
    fixture_t *f = *state;
    char st_dir[300], dead[300];
    snprintf(st_dir, sizeof(st_dir), "%s/worker-state", f->dir);
    snprintf(dead, sizeof(dead), "ipc://%s/nobody.ipc", f->dir);
    sy_usage_t *u = sy_usage_new();

    /* A worker whose control plane is unreachable keeps its reports. */
    sy_control_link_t *l = start_link(f, NULL, dead, st_dir, u, NULL);
    record(u, 100, 10);
    record(u, 50, 5);
    assert_int_equal(sy_control_link_flush(l), 0);
    record(u, 1, 1);
    assert_int_equal(sy_control_link_flush(l), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(sy_control_link_pending(l), 2);
    stop_link(f, l); /* as if killed: the reports live on in the spool */
    /* ... and as if killed in the middle of writing a third one. */
    char spool[400];
    snprintf(spool, sizeof(spool), "%s/reports-testhost_0.spool", st_dir);
    FILE *fp = fopen(spool, "ab");
    assert_non_null(fp);
    static const unsigned char torn[] = {0x40, 0, 0, 0, 1, 0x20, 0x61, 0x62, 0x63};
    fwrite(torn, 1, sizeof(torn), fp);
    fclose(fp);

    /* Its successor (same worker id, same state dir) replays them. */
    l = start_link(f, NULL, f->rep_url, st_dir, u, NULL);
    assert_int_equal(sy_control_link_pending(l), 2);
    assert_true(run_until(f, link_idle, l, 3000));
    sqlite3 *db = f->store->db;
    assert_int_equal(q_int(db, "SELECT sum(prompt_tokens) FROM usage_minute"), 151);
    assert_int_equal(q_int(db, "SELECT sum(completion_tokens) FROM usage_day"), 16);
    assert_int_equal(q_int(db, "SELECT sum(requests) FROM usage_hour"), 3);
    /* Cost from the price table: 151 x $2 + 16 x $8 per Mtok. */
    assert_int_equal(q_int(db, "SELECT round(sum(cost_usd) * 1e9) FROM usage_day"), 430000);
    stop_link(f, l);

    /* A third start finds nothing left to send, and nothing is applied twice. */
    l = start_link(f, NULL, f->rep_url, st_dir, u, NULL);
    assert_int_equal(sy_control_link_pending(l), 0);
    record(u, 7, 0);
    assert_int_equal(sy_control_link_flush(l), 0);
    assert_true(run_until(f, link_idle, l, 3000));
    assert_int_equal(q_int(db, "SELECT sum(prompt_tokens) FROM usage_minute"), 158);
    assert_int_equal(q_int(db, "SELECT count(*) FROM applied_reports"), 3);
    stop_link(f, l);
    uint64_t applied, dup;
    cluster_stat(f, "reports_applied", &applied);
    cluster_stat(f, "reports_duplicate", &dup);
    assert_int_equal(applied, 3);
    sy_usage_free(u);
}

static void test_spill_beyond_memory_bound(void **state)
{
    fixture_t *f = *state;
    char st_dir[300], spool[400];
    snprintf(st_dir, sizeof(st_dir), "%s/spill-state", f->dir);
    sy_usage_t *u = sy_usage_new();
    sy_control_link_options_t o = {
        .reports_url = f->rep_url,
        .key = &f->key,
        .worker_id = "testhost/7",
        .host = "testhost",
        .state_dir = st_dir,
        .usage = u,
        .report_interval_ms = 60000,
        .max_pending = 2,
    };
    sy_control_link_t *l = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_control_link_start(&f->loop, &o, &l, &err) != 0)
        fail_msg("link: %s", err.msg);
    /* Seven reports before the loop runs once: two stay in memory, five wait
     * in the spool file only. */
    uint64_t want = 0;
    for (uint64_t i = 1; i <= 7; i++) {
        record(u, i * 10, i);
        want += i * 10;
        assert_int_equal(sy_control_link_flush(l), 0);
    }
    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.reports_pending, 7);
    assert_int_equal(s.reports_spilled, 5);
    snprintf(spool, sizeof(spool), "%s/reports-testhost_7.spool", st_dir);
    FILE *fp = fopen(spool, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    assert_true(ftell(fp) > 0);
    fclose(fp);
    /* Delivered in order, memory refilled from the spool as it drains. */
    assert_true(run_until(f, link_idle, l, 5000));
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.reports_acked, 7);
    assert_int_equal(s.reports_spilled, 0);
    assert_int_equal(q_int(f->store->db, "SELECT sum(prompt_tokens) FROM usage_minute"), want);
    assert_int_equal(q_int(f->store->db, "SELECT count(*) FROM applied_reports"), 7);
    /* Everything acked: the spool is empty again. */
    fp = fopen(spool, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    assert_int_equal(ftell(fp), 0);
    fclose(fp);
    stop_link(f, l);
    sy_usage_free(u);
}

/* record() plus what the proxy does after it: journal the sample. */
static void record_journaled(sy_control_link_t *l, sy_usage_t *u, uint64_t prompt,
                             uint64_t completion)
{
    record(u, prompt, completion);
    sy_usage_sample_t s = sample(prompt, completion);
    sy_control_link_journal(l, &s);
}

static void test_journal_covers_the_undrained_window(void **state)
{
    fixture_t *f = *state;
    char st_dir[300], dead[300];
    snprintf(st_dir, sizeof(st_dir), "%s/journal-state", f->dir);
    snprintf(dead, sizeof(dead), "ipc://%s/nobody.ipc", f->dir);
    sqlite3 *db = f->store->db;

    /* 1. Usage recorded but never drained into a report: killed. */
    sy_usage_t *u = sy_usage_new();
    sy_control_link_t *l = start_link(f, NULL, dead, st_dir, u, NULL);
    record_journaled(l, u, 100, 10);
    record_journaled(l, u, 200, 20);
    stop_link(f, l);
    sy_usage_free(u); /* the aggregator dies with the process */

    /* 2. The successor replays them; one more sample is drained into a
     * report that cannot be delivered yet (the control plane is away). */
    u = sy_usage_new();
    l = start_link(f, NULL, dead, st_dir, u, NULL);
    assert_int_equal(sy_usage_row_count(u), 1);
    record_journaled(l, u, 400, 40);
    assert_int_equal(sy_control_link_flush(l), 0);
    assert_int_equal(sy_control_link_pending(l), 1);
    /* 3. More usage after the report, then killed again. */
    record_journaled(l, u, 800, 80);
    stop_link(f, l);
    sy_usage_free(u);

    /* 4. Its successor reaches the control plane: the spooled report (700)
     * and the journaled sample (800) arrive, each exactly once. */
    u = sy_usage_new();
    l = start_link(f, NULL, f->rep_url, st_dir, u, NULL);
    assert_int_equal(sy_usage_row_count(u), 1);
    assert_int_equal(sy_control_link_flush(l), 0);
    assert_true(run_until(f, link_idle, l, 3000));
    assert_int_equal(q_int(db, "SELECT sum(prompt_tokens) FROM usage_minute"), 1500);
    assert_int_equal(q_int(db, "SELECT sum(requests) FROM usage_day"), 4);
    stop_link(f, l);

    /* 5. Nothing is left to replay. */
    sy_usage_free(u);
    u = sy_usage_new();
    l = start_link(f, NULL, f->rep_url, st_dir, u, NULL);
    assert_int_equal(sy_usage_row_count(u), 0);
    assert_int_equal(sy_control_link_pending(l), 0);
    stop_link(f, l);
    sy_usage_free(u);
    assert_int_equal(q_int(db, "SELECT sum(prompt_tokens) FROM usage_minute"), 1500);
}

typedef struct wait_stat {
    fixture_t *f;
    const char *name;
    uint64_t want;
} wait_stat_t;

static bool stat_reaches(void *arg)
{
    wait_stat_t *w = arg;
    uint64_t v;
    cluster_stat(w->f, w->name, &v);
    return v >= w->want;
}

/* Sends one request on its own REQ socket (so none cancels another). */
static int raw_request(const char *url, const void *data, size_t len)
{
    int s = nn_socket(AF_SP, NN_REQ);
    assert_true(s >= 0);
    int tmo = 2000;
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(tmo));
    assert_true(nn_connect(s, url) >= 0);
    assert_int_equal(nn_send(s, data, len, 0), (int)len);
    return s;
}

static void test_control_refuses_tampered_requests(void **state)
{
    fixture_t *f = *state;
    sy_envelope_key_t wrong;
    char hex[80];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &wrong), 0);

    Switchyard__UsageRow row = SWITCHYARD__USAGE_ROW__INIT;
    row.minute = 1795255200;
    row.tenant_id = "ten_a";
    row.prompt_tokens = 1000000;
    Switchyard__UsageRow *rows[] = {&row};
    Switchyard__UsageReport rep = SWITCHYARD__USAGE_REPORT__INIT;
    rep.worker_id = "evil/0";
    rep.boot_id = "evilboot";
    rep.seq = 1;
    rep.rows = rows;
    rep.n_rows = 1;
    uint8_t pb[256];
    size_t n = switchyard__usage_report__pack(&rep, pb);

    sy_buf_t bad_key, flipped;
    sy_buf_init(&bad_key);
    sy_buf_init(&flipped);
    assert_int_equal(sy_envelope_seal(&wrong, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_USAGE_REPORT,
                                      "evil/0", 1, pb, n, &bad_key),
                     0);
    assert_int_equal(sy_envelope_seal(&f->key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_USAGE_REPORT,
                                      "evil/0", 1, pb, n, &flipped),
                     0);
    flipped.data[flipped.len / 2] ^= 0x01;
    int s1 = raw_request(f->rep_url, bad_key.data, bad_key.len);
    int s2 = raw_request(f->rep_url, flipped.data, flipped.len);
    int s3 = raw_request(f->rep_url, "garbage", 7);
    wait_stat_t w = {f, "rejected_messages", 3};
    assert_true(run_until(f, stat_reaches, &w, 3000));
    uint64_t rejected, applied;
    cluster_stat(f, "rejected_messages", &rejected);
    cluster_stat(f, "reports_applied", &applied);
    assert_int_equal(rejected, 3);
    assert_int_equal(applied, 0);
    assert_int_equal(q_int(f->store->db, "SELECT count(*) FROM applied_reports"), 0);
    assert_int_equal(q_int(f->store->db, "SELECT count(*) FROM usage_minute"), 0);

    /* The same message sealed correctly is applied, proving the path works. */
    sy_buf_reset(&flipped);
    assert_int_equal(sy_envelope_seal(&f->key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_USAGE_REPORT,
                                      "evil/0", 2, pb, n, &flipped),
                     0);
    int s4 = raw_request(f->rep_url, flipped.data, flipped.len);
    wait_stat_t w2 = {f, "reports_applied", 1};
    assert_true(run_until(f, stat_reaches, &w2, 3000));
    assert_int_equal(q_int(f->store->db, "SELECT sum(prompt_tokens) FROM usage_minute"), 1000000);
    /* The same report again (its ack was lost, say): acked, not applied. */
    int s5 = raw_request(f->rep_url, flipped.data, flipped.len);
    wait_stat_t w3 = {f, "reports_duplicate", 1};
    assert_true(run_until(f, stat_reaches, &w3, 3000));
    int tmo = 2000;
    nn_setsockopt(s5, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
    void *reply = NULL;
    int rn = -1;
    for (int i = 0; i < 100 && rn < 0; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        rn = nn_recv(s5, &reply, NN_MSG, NN_DONTWAIT);
        if (rn < 0)
            usleep(10000);
    }
    assert_true(rn > 0);
    sy_envelope_t env;
    assert_int_equal(sy_envelope_open(&f->key, reply, (size_t)rn, &env), 0);
    assert_int_equal(env.kind, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_ACK);
    Switchyard__Ack *ack =
        switchyard__ack__unpack(NULL, env.payload.len, (const uint8_t *)env.payload.data);
    assert_non_null(ack);
    assert_true(ack->duplicate);
    assert_int_equal(ack->seq, 1);
    assert_string_equal(ack->boot_id, "evilboot");
    switchyard__ack__free_unpacked(ack, NULL);
    sy_envelope_free(&env);
    nn_freemsg(reply);
    nn_close(s5);
    assert_int_equal(q_int(f->store->db, "SELECT sum(prompt_tokens) FROM usage_minute"), 1000000);
    nn_close(s1);
    nn_close(s2);
    nn_close(s3);
    nn_close(s4);
    sy_buf_free(&bad_key);
    sy_buf_free(&flipped);
}

static void seal_snapshot(const sy_envelope_key_t *key, uint64_t version, sy_buf_t *out)
{
    Switchyard__Snapshot s = SWITCHYARD__SNAPSHOT__INIT;
    Switchyard__Tenant t = SWITCHYARD__TENANT__INIT;
    Switchyard__ApiKey k = SWITCHYARD__API_KEY__INIT;
    Switchyard__Tenant *tenants[] = {&t};
    Switchyard__ApiKey *keys[] = {&k};
    unsigned char h[32];
    sy_store_hash_secret("sk-forged", 9, h);
    t.id = "ten_x";
    k.id = "key_x";
    k.tenant_id = "ten_x";
    k.sha256.data = h;
    k.sha256.len = 32;
    s.version = version;
    s.tenants = tenants;
    s.n_tenants = 1;
    s.keys = keys;
    s.n_keys = 1;
    uint8_t pb[512];
    size_t n = switchyard__snapshot__pack(&s, pb);
    sy_buf_reset(out);
    assert_int_equal(sy_envelope_seal(key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_SNAPSHOT,
                                      "control", version, pb, n, out),
                     0);
}

typedef struct wait_link {
    sy_control_link_t *l;
    uint64_t version;
} wait_link_t;

static bool link_has_version(void *arg)
{
    wait_link_t *w = arg;
    sy_control_link_stats_t s;
    sy_control_link_get_stats(w->l, &s);
    return s.version >= w->version;
}

static void test_worker_refuses_tampered_snapshots(void **state)
{
    fixture_t *f = *state;
    char fake_url[300], st_dir[300];
    snprintf(fake_url, sizeof(fake_url), "ipc://%s/fake-pub.ipc", f->dir);
    snprintf(st_dir, sizeof(st_dir), "%s/worker-snap", f->dir);
    int pub = nn_socket(AF_SP, NN_PUB);
    assert_true(pub >= 0);
    assert_true(nn_bind(pub, fake_url) >= 0);
    sy_control_link_t *l = start_link(f, fake_url, NULL, st_dir, NULL, NULL);

    sy_envelope_key_t wrong;
    char hex[80];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &wrong), 0);
    sy_buf_t good, bad;
    sy_buf_init(&good);
    sy_buf_init(&bad);

    /* Publish a valid version 5 until the subscription is up. */
    seal_snapshot(&f->key, 5, &good);
    wait_link_t w = {l, 5};
    for (int i = 0; i < 100 && !link_has_version(&w); i++) {
        nn_send(pub, good.data, good.len, NN_DONTWAIT);
        run_until(f, link_has_version, &w, 20);
    }
    assert_true(link_has_version(&w));

    /* Version 9 under the wrong key, version 9 with one flipped byte, then a valid 6. */
    seal_snapshot(&wrong, 9, &bad);
    assert_true(nn_send(pub, bad.data, bad.len, 0) >= 0);
    seal_snapshot(&f->key, 9, &bad);
    bad.data[bad.len - 3] ^= 0x40;
    assert_true(nn_send(pub, bad.data, bad.len, 0) >= 0);
    seal_snapshot(&f->key, 6, &good);
    assert_true(nn_send(pub, good.data, good.len, 0) >= 0);
    w.version = 6;
    assert_true(run_until(f, link_has_version, &w, 3000));
    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.rejected_messages, 2);
    assert_int_equal(s.version, 6);
    assert_int_equal(sy_snapshot_version(f->snap), 6);
    assert_non_null(find_secret(f, "sk-forged"));
    stop_link(f, l);
    nn_close(pub);

    /* A worker started with no control plane serves the cached snapshot. */
    sy_snapshot_unref(f->snap);
    f->snap = NULL;
    l = start_link(f, NULL, NULL, st_dir, NULL, NULL);
    assert_non_null(f->snap);
    assert_int_equal(sy_snapshot_version(f->snap), 6);
    stop_link(f, l);

    /* A cache file with one flipped byte is refused and counted. */
    char path[400];
    snprintf(path, sizeof(path), "%s/snapshot.sealed", st_dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, -5, SEEK_END);
    int c = fgetc(fp);
    fseek(fp, -5, SEEK_END);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    sy_snapshot_unref(f->snap);
    f->snap = NULL;
    l = start_link(f, NULL, NULL, st_dir, NULL, NULL);
    assert_null(f->snap);
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.rejected_messages, 1);
    assert_int_equal(s.version, 0);
    stop_link(f, l);

    /* A worker with the wrong cluster key is refused by the control plane
     * and refuses the control plane's snapshots. */
    l = start_link(f, f->pub_url, f->rep_url, NULL, NULL, &wrong);
    wait_stat_t ws = {f, "rejected_messages", 1};
    assert_true(run_until(f, stat_reaches, &ws, 3000));
    sy_control_link_get_stats(l, &s);
    assert_null(f->snap);
    stop_link(f, l);
    sy_buf_free(&good);
    sy_buf_free(&bad);
}

typedef struct gap_probe {
    uv_timer_t t;     /* fires every ms */
    uint64_t last;    /* loop time of the previous tick */
    uint64_t max_gap; /* longest time between two ticks */
} gap_probe_t;

static void on_probe(uv_timer_t *t)
{
    gap_probe_t *g = (gap_probe_t *)t;
    uint64_t now = uv_now(t->loop);
    if (g->last != 0 && now - g->last > g->max_gap)
        g->max_gap = now - g->last;
    g->last = now;
}

static void test_large_snapshot_decoded_off_loop(void **state)
{
    fixture_t *f = *state;
    /* 6,000 keys: a ~700 KB snapshot, past the size decoded in place. */
    sqlite3 *db = f->store->db;
    exec_ok(db, "BEGIN");
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO api_keys (id, tenant_id, name, sha256, prefix,"
                                        " created_at, updated_at) VALUES (?1, 'ten_a', 'bulk', ?2,"
                                        " 'sk-bulk', 0, 0)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 6000; i++) {
        char id[32], secret[48];
        unsigned char h[32];
        snprintf(id, sizeof(id), "key_bulk_%05d", i);
        snprintf(secret, sizeof(secret), "sk-bulk-%05d", i);
        sy_store_hash_secret(secret, strlen(secret), h);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 2, h, 32, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");
    uint64_t v0 = sy_cluster_snapshot_version(f->cluster);
    sy_cluster_notify_change(f->cluster);
    for (int i = 0; i < 200 && sy_cluster_snapshot_version(f->cluster) == v0; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uint64_t bytes;
    cluster_stat(f, "snapshot_bytes", &bytes);
    assert_true(bytes > 256 * 1024);

    gap_probe_t g = {0};
    uv_timer_init(&f->loop, &g.t);
    uv_timer_start(&g.t, on_probe, 1, 1);
    char st_dir[300];
    snprintf(st_dir, sizeof(st_dir), "%s/big-state", f->dir);
    /* The Hello answer carries it (decoded in the thread pool)... */
    uint64_t v1 = sy_cluster_snapshot_version(f->cluster);
    sy_control_link_t *l = start_link(f, f->pub_url, f->rep_url, st_dir, NULL, NULL);
    wait_version_t w = {f, v1 - 1};
    assert_true(run_until(f, has_newer, &w, 5000));
    assert_non_null(find_secret(f, "sk-bulk-05999"));
    /* ... and so does the next PUB after a change. */
    exec_ok(db, "UPDATE api_keys SET revoked_at = 1 WHERE id = 'key_bulk_00042'");
    uint64_t v2 = sy_cluster_snapshot_version(f->cluster);
    sy_cluster_notify_change(f->cluster);
    for (int i = 0; i < 500 && sy_cluster_snapshot_version(f->cluster) == v2; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    /* Wait for that build (an earlier one may still be in flight). */
    w.above = sy_cluster_snapshot_version(f->cluster) - 1;
    assert_true(run_until(f, has_newer, &w, 5000));
    assert_null(find_secret(f, "sk-bulk-00042"));
    assert_non_null(find_secret(f, "sk-bulk-00043"));
    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    assert_int_equal(s.rejected_messages, 0);
    assert_int_equal(s.invalid_messages, 0);
    /* (The control plane shares this loop here, so its own build counts.) */
    print_message("6,000-key snapshot of %llu bytes: longest loop stall %llu ms\n",
                  (unsigned long long)bytes, (unsigned long long)g.max_gap);
    stop_link(f, l);
    /* The cache written by the thread opens again. */
    sy_snapshot_unref(f->snap);
    f->snap = NULL;
    l = start_link(f, NULL, NULL, st_dir, NULL, NULL);
    assert_non_null(f->snap);
    assert_non_null(find_secret(f, "sk-bulk-00043"));
    stop_link(f, l);
    uv_close((uv_handle_t *)&g.t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* g lives on this stack: finish closing it here */
}

typedef struct wait_seen {
    sy_control_link_t *l;
    uint64_t want; /* rejected + invalid + received */
} wait_seen_t;

static bool link_saw(void *arg)
{
    wait_seen_t *w = arg;
    sy_control_link_stats_t s;
    sy_control_link_get_stats(w->l, &s);
    return s.rejected_messages + s.invalid_messages + s.snapshots_received >= w->want;
}

static void test_worker_survives_garbage_and_truncations(void **state)
{
    fixture_t *f = *state;
    char fake_url[300];
    snprintf(fake_url, sizeof(fake_url), "ipc://%s/garbage-pub.ipc", f->dir);
    int pub = nn_socket(AF_SP, NN_PUB);
    assert_true(pub >= 0);
    assert_true(nn_bind(pub, fake_url) >= 0);
    sy_control_link_t *l = start_link(f, fake_url, NULL, NULL, NULL, NULL);
    sy_buf_t good;
    sy_buf_init(&good);
    seal_snapshot(&f->key, 3, &good);
    wait_link_t wl = {l, 3};
    for (int i = 0; i < 100 && !link_has_version(&wl); i++) {
        nn_send(pub, good.data, good.len, NN_DONTWAIT);
        run_until(f, link_has_version, &wl, 20);
    }
    assert_true(link_has_version(&wl));
    sy_control_link_stats_t s0;
    sy_control_link_get_stats(l, &s0);
    uint64_t base = s0.rejected_messages + s0.invalid_messages + s0.snapshots_received;

    /* Every proper prefix of a valid sealed version 4, then random bytes and
     * random mutations of it, in batches the subscriber queue can hold. */
    sy_buf_t next;
    sy_buf_init(&next);
    seal_snapshot(&f->key, 4, &next);
    uint64_t sent = 0;
    unsigned seed = 12345;
    uint8_t msg[1024];
    for (size_t round = 0; round < next.len + 400; round++) {
        size_t n;
        if (round < next.len) {
            n = round == 0 ? 1 : round;
            memcpy(msg, next.data, n);
        } else if (round < next.len + 200) {
            n = 1 + (size_t)(rand_r(&seed) % sizeof(msg));
            for (size_t i = 0; i < n; i++)
                msg[i] = (uint8_t)rand_r(&seed);
        } else {
            n = next.len;
            memcpy(msg, next.data, n);
            for (int k = 0; k < 1 + rand_r(&seed) % 4; k++)
                msg[(size_t)rand_r(&seed) % n] ^= (uint8_t)(1 + rand_r(&seed) % 255);
        }
        assert_int_equal(nn_send(pub, msg, n, 0), (int)n);
        sent++;
        if (sent % 32 == 0) {
            wait_seen_t ws = {l, base + sent};
            assert_true(run_until(f, link_saw, &ws, 3000));
        }
    }
    wait_seen_t ws = {l, base + sent};
    assert_true(run_until(f, link_saw, &ws, 3000));
    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    /* Nothing but version 3 was ever installed. */
    assert_int_equal(s.version, 3);
    assert_int_equal(s.snapshots_installed, s0.snapshots_installed);
    assert_true(s.rejected_messages - s0.rejected_messages >= next.len + 200 - 8);
    /* And the real version 4 still goes through afterwards. */
    assert_true(nn_send(pub, next.data, next.len, 0) >= 0);
    wl.version = 4;
    assert_true(run_until(f, link_has_version, &wl, 3000));
    stop_link(f, l);
    nn_close(pub);
    sy_buf_free(&good);
    sy_buf_free(&next);
}

int main(void)
{
    sy_log_open("-", SY_LOG_ERROR, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_delivery_and_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_exactly_once_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_beyond_memory_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_covers_the_undrained_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_refuses_tampered_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_refuses_tampered_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_survives_garbage_and_truncations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_snapshot_decoded_off_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
