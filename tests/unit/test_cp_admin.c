/* Unit tests for controlplane/admin.c, in process: requests go straight to
 * the handler over a real store (real migrations, temporary directory).
 * Covers bootstrap, authentication, validation errors naming the field,
 * pagination, secrets shown once and never stored or audited in clear,
 * roles, usage queries over the rollups, and the OpenAPI document against
 * the route table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "controlplane/admin.h"
#include "controlplane/secrets.h"
#include "controlplane/store.h"

typedef struct fx {
    char dir[64];          /* temporary data directory */
    sy_store_t *store;     /* owned */
    sy_admin_t *admin;     /* owned */
    sy_envelope_key_t key; /* master key */
    char root[96];         /* platform admin token */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-admin-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char db[128];
    snprintf(db, sizeof(db), "%s/db.sqlite", f->dir);
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_store_open(db, "migrations", &f->store, &err) != 0)
        fail_msg("%s", err.msg);
    bool gen = false;
    assert_int_equal(sy_secrets_load_master_key(NULL, f->dir, &f->key, &gen, &err), 0);
    assert_true(gen);
    bool created = false;
    assert_int_equal(sy_admin_bootstrap(f->store, NULL, f->root, sizeof(f->root), &created, &err),
                     0);
    assert_true(created);
    sy_admin_options_t o = {.store = f->store, .master_key = &f->key, .cluster = NULL};
    assert_int_equal(sy_admin_new(&o, &f->admin, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    sy_admin_free(f->admin);
    sy_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Sends one request; returns the parsed answer (caller puts) and the status. */
static json_object *call(fx_t *f, const char *method, const char *url, const char *token,
                         const char *body, int *status)
{
    char auth[160] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Bearer %s", token);
    const char *q = strchr(url, '?');
    sy_httpd_request_t req = {
        .method = method,
        .path = {url, q ? (size_t)(q - url) : strlen(url)},
        .query = q ? sy_str_from_cstr(q + 1) : SY_STR_NULL,
        .authorization = sy_str_from_cstr(auth),
        .body = body ? sy_str_from_cstr(body) : SY_STR_NULL,
    };
    sy_httpd_response_t res = {.status = 200, .content_type = "application/json"};
    sy_buf_init(&res.body);
    sy_admin_handle(f->admin, &req, &res);
    json_object *o = json_tokener_parse(res.body.data ? res.body.data : "");
    if (o == NULL)
        fail_msg("%s %s: answer is not JSON: %s", method, url, res.body.data);
    sy_buf_free(&res.body);
    *status = res.status;
    return o;
}

static const char *get_s(json_object *o, const char *path)
{
    /* "a.b" walks nested objects. */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_object *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_object_get(cur, tok);
    return cur ? json_object_get_string(cur) : NULL;
}

/* Expects status; returns a copy of member "id" (or NULL). */
static char *expect(fx_t *f, const char *method, const char *url, const char *token,
                    const char *body, int want, json_object **out)
{
    int status;
    json_object *o = call(f, method, url, token, body, &status);
    if (status != want)
        fail_msg("%s %s: status %d, want %d: %s", method, url, status, want,
                 json_object_to_json_string(o));
    const char *id = get_s(o, "id");
    char *copy = id ? strdup(id) : NULL;
    if (out)
        *out = o;
    else
        json_object_put(o);
    return copy;
}

static void expect_error(fx_t *f, const char *method, const char *url, const char *token,
                         const char *body, int want, const char *param, const char *code)
{
    json_object *o;
    free(expect(f, method, url, token, body, want, &o));
    if (param)
        assert_string_equal(get_s(o, "error.param"), param);
    if (code)
        assert_string_equal(get_s(o, "error.code"), code);
    assert_non_null(get_s(o, "error.message"));
    assert_non_null(get_s(o, "error.type"));
    json_object_put(o);
}

static int64_t q_int(fx_t *f, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(f->store->db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_auth_and_bootstrap(void **state)
{
    fx_t *f = *state;
    expect_error(f, "GET", "/admin/v1/tenants", NULL, NULL, 401, NULL, "missing_token");
    expect_error(f, "GET", "/admin/v1/tenants", "sya-wrong", NULL, 401, NULL, "invalid_token");
    free(expect(f, "GET", "/admin/v1/tenants", f->root, NULL, 200, NULL));
    /* Only the hash is stored. */
    assert_int_equal(q_int(f, "SELECT count(*) FROM admin_tokens"), 1);
    assert_int_equal(q_int(f, "SELECT length(sha256) FROM admin_tokens"), 32);
    /* A second start creates nothing; an env token is registered once. */
    sy_err_t err;
    char tok[96] = "";
    bool created = true;
    assert_int_equal(sy_admin_bootstrap(f->store, NULL, tok, sizeof(tok), &created, &err), 0);
    assert_false(created);
    assert_int_equal(
        sy_admin_bootstrap(f->store, "env-token-0123456789", tok, sizeof(tok), &created, &err), 0);
    assert_int_equal(
        sy_admin_bootstrap(f->store, "env-token-0123456789", tok, sizeof(tok), &created, &err), 0);
    assert_int_equal(q_int(f, "SELECT count(*) FROM admin_tokens"), 2);
    assert_int_equal(sy_admin_bootstrap(f->store, "short", tok, sizeof(tok), &created, &err),
                     SY_EINVAL);
    free(expect(f, "GET", "/admin/v1/me", "env-token-0123456789", NULL, 200, NULL));
    /* Unknown routes and methods. */
    expect_error(f, "GET", "/admin/v1/nope", f->root, NULL, 404, NULL, "unknown_route");
    expect_error(f, "PUT", "/admin/v1/tenants", f->root, NULL, 405, NULL, "method_not_allowed");
    expect_error(f, "GET", "/elsewhere", NULL, NULL, 404, NULL, "unknown_route");
}

static void test_validation_names_field(void **state)
{
    fx_t *f = *state;
    const char *T = "/admin/v1/tenants";
    expect_error(f, "POST", T, f->root, NULL, 400, NULL, "invalid_body");
    expect_error(f, "POST", T, f->root, "{", 400, NULL, "invalid_json");
    expect_error(f, "POST", T, f->root, "[1]", 400, NULL, "invalid_body");
    expect_error(f, "POST", T, f->root, "null", 400, NULL, "invalid_body");
    expect_error(f, "POST", T, f->root, "\"x\"", 400, NULL, "invalid_body");
    expect_error(f, "PATCH", "/admin/v1/providers/prov_x", f->root, "null", 400, NULL,
                 "invalid_body");
    expect_error(f, "POST", T, f->root, "{}", 400, "name", "missing_field");
    expect_error(f, "POST", T, f->root, "{\"name\":5}", 400, "name", "invalid_type");
    expect_error(f, "POST", T, f->root, "{\"name\":\"\"}", 400, "name", "invalid_value");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"rpm\":-1}", 400, "rpm", "invalid_value");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"rpm\":1.5}", 400, "rpm", "invalid_type");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"blocked\":\"yes\"}", 400, "blocked",
                 "invalid_type");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"color\":\"red\"}", 400, "color",
                 "unknown_field");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"rpm\":NaN}", 400, NULL, "invalid_json");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"time_zone\":\"Mars/Olympus\"}", 400,
                 "time_zone", "invalid_value");
    expect_error(f, "POST", T, f->root, "{\"name\":\"a\",\"time_zone\":\"../../etc/passwd\"}", 400,
                 "time_zone", "invalid_value");
    expect_error(f, "POST", "/admin/v1/routes", f->root, "{\"alias\":\"two words\",\"rules\":[]}",
                 400, "alias", "invalid_value");
    char *tid = expect(f, "POST", T, f->root, "{\"name\":\"acme\"}", 201, NULL);
    expect_error(f, "POST", T, f->root, "{\"name\":\"acme\"}", 409, "name", "conflict");
    if (access("/usr/share/zoneinfo/Europe/Paris", F_OK) == 0)
        free(expect(f, "POST", T, f->root, "{\"name\":\"fr\",\"time_zone\":\"Europe/Paris\"}", 201,
                    NULL));
    char url[160];
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/keys", tid);
    expect_error(f, "POST", url, f->root, "{\"name\":\"k\",\"allowed_models\":[\"a\",3]}", 400,
                 "allowed_models[1]", "invalid_value");
    expect_error(f, "POST", url, f->root, "{\"name\":\"k\",\"team_id\":\"team_nope\"}", 400,
                 "team_id", "invalid_value");
    expect_error(f, "POST", "/admin/v1/providers", f->root,
                 "{\"name\":\"p\",\"kind\":\"cohere\",\"base_url\":\"http://x\"}", 400, "kind",
                 "invalid_value");
    expect_error(f, "POST", "/admin/v1/providers", f->root,
                 "{\"name\":\"p\",\"kind\":\"openai\",\"base_url\":\"ftp://x\"}", 400, "base_url",
                 "invalid_value");
    expect_error(f, "POST", "/admin/v1/models", f->root,
                 "{\"id\":\"m\",\"provider_id\":\"prov_x\",\"upstream_name\":\"m\"}", 400,
                 "provider_id", "invalid_value");
    expect_error(f, "POST", "/admin/v1/routes", f->root,
                 "{\"alias\":\"auto\",\"rules\":[{\"targets\":[]}]}", 400, "rules[0].targets",
                 "invalid_value");
    expect_error(f, "POST", "/admin/v1/routes", f->root,
                 "{\"alias\":\"auto\",\"rules\":[{\"strategy\":\"random\",\"targets\":[]}]}", 400,
                 "rules[0].strategy", "invalid_value");
    expect_error(f, "POST", "/admin/v1/budgets", f->root,
                 "{\"scope\":\"tenant\",\"scope_id\":\"x\",\"period\":\"daily\",\"amount_usd\":1,"
                 "\"soft_threshold\":2}",
                 400, "soft_threshold", "invalid_value");
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s", tid);
    expect_error(f, "PATCH", url, f->root, "{\"id\":\"x\"}", 400, "id", "unknown_field");
    expect_error(f, "GET", "/admin/v1/tenants?limit=0", f->root, NULL, 400, "limit", NULL);
    expect_error(f, "GET", "/admin/v1/tenants?limit=abc", f->root, NULL, 400, "limit", NULL);
    expect_error(f, "GET", "/admin/v1/tenants?cursor=%zz", f->root, NULL, 400, "cursor", NULL);
    expect_error(f, "GET", "/admin/v1/tenants/%2e%2e", f->root, NULL, 404, NULL, "not_found");
    /* Nothing failed half-way: only the accepted tenants and their audit records. */
    int64_t tenants = q_int(f, "SELECT count(*) FROM tenants");
    assert_true(tenants == 1 || tenants == 2);
    assert_int_equal(q_int(f, "SELECT count(*) FROM audit_log WHERE actor_role != 'system'"),
                     tenants);
    free(tid);
}

static void test_pagination(void **state)
{
    fx_t *f = *state;
    char body[64];
    for (int i = 0; i < 25; i++) {
        snprintf(body, sizeof(body), "{\"name\":\"t%02d\"}", i);
        free(expect(f, "POST", "/admin/v1/tenants", f->root, body, 201, NULL));
    }
    char url[200] = "/admin/v1/tenants?limit=10";
    int pages = 0, seen = 0;
    char last[64] = "";
    for (;;) {
        json_object *o;
        free(expect(f, "GET", url, f->root, NULL, 200, &o));
        json_object *data = json_object_object_get(o, "data");
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            const char *id = get_s(json_object_array_get_idx(data, i), "id");
            assert_true(strcmp(last, id) < 0); /* ordered, no repeats */
            snprintf(last, sizeof(last), "%s", id);
            char name[16];
            snprintf(name, sizeof(name), "t%02d", seen);
            assert_string_equal(get_s(json_object_array_get_idx(data, i), "name"), name);
            seen++;
        }
        pages++;
        const char *next = get_s(o, "next_cursor");
        if (next == NULL) {
            assert_false(json_object_get_boolean(json_object_object_get(o, "has_more")));
            json_object_put(o);
            break;
        }
        snprintf(url, sizeof(url), "/admin/v1/tenants?limit=10&cursor=%s", next);
        json_object_put(o);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(seen, 25);
}

static void test_secrets_once(void **state)
{
    fx_t *f = *state;
    char *tid = expect(f, "POST", "/admin/v1/tenants", f->root, "{\"name\":\"acme\"}", 201, NULL);
    char url[200];
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/keys", tid);
    json_object *o;
    char *kid = expect(f, "POST", url, f->root, "{\"name\":\"k1\",\"rpm\":5}", 201, &o);
    char secret[128];
    snprintf(secret, sizeof(secret), "%s", get_s(o, "secret"));
    assert_int_equal(strncmp(secret, "sk-sy-", 6), 0);
    assert_int_equal(strncmp(get_s(o, "prefix"), secret, strlen(get_s(o, "prefix"))), 0);
    json_object_put(o);
    /* Found by its display prefix. */
    char purl[200];
    snprintf(purl, sizeof(purl), "/admin/v1/tenants/%s/keys?prefix=%.12s", tid, secret);
    free(expect(f, "GET", purl, f->root, NULL, 200, &o));
    assert_int_equal(json_object_array_length(json_object_object_get(o, "data")), 1);
    assert_string_equal(
        get_s(json_object_array_get_idx(json_object_object_get(o, "data"), 0), "id"), kid);
    json_object_put(o);
    snprintf(purl, sizeof(purl), "/admin/v1/tenants/%s/keys?prefix=sk-sy-zzzzzz", tid);
    free(expect(f, "GET", purl, f->root, NULL, 200, &o));
    assert_int_equal(json_object_array_length(json_object_object_get(o, "data")), 0);
    json_object_put(o);
    /* Never again: not on GET, not in lists, not in the database, not in the audit. */
    snprintf(url, sizeof(url), "/admin/v1/keys/%s", kid);
    free(expect(f, "GET", url, f->root, NULL, 200, &o));
    assert_null(json_object_object_get(o, "secret"));
    assert_null(json_object_object_get(o, "sha256"));
    json_object_put(o);
    unsigned char h[32];
    sy_store_hash_secret(secret, strlen(secret), h);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(f->store->db, "SELECT sha256 FROM api_keys WHERE id = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_memory_equal(sqlite3_column_blob(st, 0), h, 32);
    sqlite3_finalize(st);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE instr(coalesce(after,''), '%s') > 0 OR "
             "instr(coalesce(before,''), '%s') > 0",
             secret + 6, secret + 6);
    assert_int_equal(q_int(f, sql), 0);

    /* Provider credential: sealed at rest, opens under the master key only
     * for its own row, never returned, never audited. */
    free(expect(f, "POST", "/admin/v1/providers", f->root,
                "{\"name\":\"p\",\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:1\","
                "\"api_key\":\"upstream-secret-xyz\"}",
                201, &o));
    char pid[64];
    snprintf(pid, sizeof(pid), "%s", get_s(o, "id"));
    assert_null(json_object_object_get(o, "api_key"));
    assert_true(json_object_get_boolean(json_object_object_get(o, "has_api_key")));
    json_object_put(o);
    assert_int_equal(q_int(f, "SELECT count(*) FROM audit_log WHERE "
                              "instr(coalesce(after,''), 'upstream-secret') > 0"),
                     0);
    assert_int_equal(sqlite3_prepare_v2(f->store->db,
                                        "SELECT credential FROM providers WHERE id = ?", -1, &st,
                                        NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const void *blob = sqlite3_column_blob(st, 0);
    int blen = sqlite3_column_bytes(st, 0);
    assert_null(memmem(blob, (size_t)blen, "upstream-secret", 15));
    sy_buf_t plain;
    sy_buf_init(&plain);
    assert_int_equal(sy_secrets_open(&f->key, pid, blob, (size_t)blen, &plain), 0);
    assert_int_equal(plain.len, strlen("upstream-secret-xyz"));
    assert_memory_equal(plain.data, "upstream-secret-xyz", plain.len);
    sy_buf_reset(&plain);
    assert_int_equal(sy_secrets_open(&f->key, "prov_other", blob, (size_t)blen, &plain), SY_EACCES);
    sy_envelope_key_t wrong = f->key;
    wrong.bytes[0] ^= 1;
    assert_int_equal(sy_secrets_open(&wrong, pid, blob, (size_t)blen, &plain), SY_EACCES);
    sqlite3_finalize(st);
    sy_buf_free(&plain);

    /* null clears the credential. */
    snprintf(sql, sizeof(sql), "/admin/v1/providers/%s", pid);
    free(expect(f, "PATCH", sql, f->root, "{\"api_key\":null}", 200, &o));
    assert_false(json_object_get_boolean(json_object_object_get(o, "has_api_key")));
    json_object_put(o);
    assert_int_equal(q_int(f, "SELECT count(*) FROM providers WHERE credential IS NULL"), 1);

    /* A team with a live key is not deleted; once the key is revoked it is,
     * with its budgets. */
    snprintf(sql, sizeof(sql), "/admin/v1/tenants/%s/teams", tid);
    char *team = expect(f, "POST", sql, f->root, "{\"name\":\"t\"}", 201, NULL);
    char tbody[200];
    snprintf(tbody, sizeof(tbody), "{\"team_id\":\"%s\"}", team);
    free(expect(f, "PATCH", url, f->root, tbody, 200, NULL));
    snprintf(tbody, sizeof(tbody),
             "{\"scope\":\"team\",\"scope_id\":\"%s\",\"period\":\"daily\",\"amount_usd\":1}",
             team);
    free(expect(f, "POST", "/admin/v1/budgets", f->root, tbody, 201, NULL));
    char turl[160];
    snprintf(turl, sizeof(turl), "/admin/v1/teams/%s", team);
    expect_error(f, "DELETE", turl, f->root, NULL, 409, NULL, "team_has_keys");

    /* Revocation keeps the row, sets revoked_at, is audited as "revoke". */
    free(expect(f, "DELETE", url, f->root, NULL, 200, &o));
    assert_true(json_object_get_int64(json_object_object_get(o, "revoked_at")) > 0);
    json_object_put(o);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'revoke' AND object_id = '%s' AND "
             "before IS NOT NULL AND after IS NOT NULL",
             kid);
    assert_int_equal(q_int(f, sql), 1);
    free(expect(f, "DELETE", turl, f->root, NULL, 200, NULL));
    assert_int_equal(q_int(f, "SELECT count(*) FROM budgets"), 0);
    assert_int_equal(q_int(f, "SELECT count(*) FROM teams"), 0);
    free(team);
    free(kid);
    free(tid);
}

/* A tenant admin and a viewer of tenant A against objects of tenant B. */
static void test_roles(void **state)
{
    fx_t *f = *state;
    char *ta = expect(f, "POST", "/admin/v1/tenants", f->root, "{\"name\":\"A\"}", 201, NULL);
    char *tb = expect(f, "POST", "/admin/v1/tenants", f->root, "{\"name\":\"B\"}", 201, NULL);
    char body[256], url[200];
    json_object *o;
    snprintf(body, sizeof(body),
             "{\"name\":\"adm-a\",\"role\":\"tenant_admin\",\"tenant_id\":\"%s\"}", ta);
    free(expect(f, "POST", "/admin/v1/users", f->root, body, 201, &o));
    char adm[96];
    snprintf(adm, sizeof(adm), "%s", get_s(o, "token"));
    json_object_put(o);
    snprintf(body, sizeof(body),
             "{\"name\":\"view-a\",\"role\":\"tenant_viewer\",\"tenant_id\":\"%s\"}", ta);
    free(expect(f, "POST", "/admin/v1/users", f->root, body, 201, &o));
    char view[96];
    snprintf(view, sizeof(view), "%s", get_s(o, "token"));
    json_object_put(o);

    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/teams", tb);
    char *team_b = expect(f, "POST", url, f->root, "{\"name\":\"x\"}", 201, NULL);
    /* A's admin: B's tenant, teams, keys are invisible. */
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s", tb);
    expect_error(f, "GET", url, adm, NULL, 404, NULL, "not_found");
    snprintf(url, sizeof(url), "/admin/v1/teams/%s", team_b);
    expect_error(f, "GET", url, adm, NULL, 404, NULL, "not_found");
    expect_error(f, "PATCH", url, adm, "{\"name\":\"y\"}", 404, NULL, "not_found");
    expect_error(f, "DELETE", url, adm, NULL, 404, NULL, "not_found");
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/keys", tb);
    expect_error(f, "POST", url, adm, "{\"name\":\"k\"}", 404, NULL, "not_found");
    /* Lists only show A. */
    free(expect(f, "GET", "/admin/v1/tenants", adm, NULL, 200, &o));
    assert_int_equal(json_object_array_length(json_object_object_get(o, "data")), 1);
    assert_string_equal(
        get_s(json_object_array_get_idx(json_object_object_get(o, "data"), 0), "id"), ta);
    json_object_put(o);
    /* Own tenant: admin writes, viewer reads only. */
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/teams", ta);
    free(expect(f, "POST", url, adm, "{\"name\":\"mine\"}", 201, NULL));
    expect_error(f, "POST", url, view, "{\"name\":\"v\"}", 403, NULL, "forbidden");
    free(expect(f, "GET", url, view, NULL, 200, NULL));
    /* A platform-wide route is not the tenant admin's to create, even with
     * an explicit null tenant. */
    expect_error(f, "POST", "/admin/v1/routes", adm,
                 "{\"alias\":\"x\",\"tenant_id\":null,\"rules\":[]}", 403, NULL, "forbidden");
    /* Platform objects. */
    expect_error(f, "POST", "/admin/v1/tenants", adm, "{\"name\":\"C\"}", 403, NULL, "forbidden");
    expect_error(f, "GET", "/admin/v1/providers", adm, NULL, 403, NULL, "forbidden");
    expect_error(f, "GET", "/admin/v1/stats", adm, NULL, 403, NULL, "forbidden");
    snprintf(body, sizeof(body), "{\"name\":\"boss\",\"role\":\"platform_admin\"}");
    expect_error(f, "POST", "/admin/v1/users", adm, body, 403, NULL, "forbidden");
    snprintf(url, sizeof(url), "/admin/v1/usage?tenant=%s", tb);
    expect_error(f, "GET", url, adm, NULL, 404, NULL, "not_found");
    snprintf(url, sizeof(url), "/admin/v1/audit?tenant_id=%s", tb);
    expect_error(f, "GET", url, adm, NULL, 404, NULL, "not_found");
    /* The audit a tenant admin sees is its own tenant's only. */
    free(expect(f, "GET", "/admin/v1/audit?limit=1000", adm, NULL, 200, &o));
    json_object *data = json_object_object_get(o, "data");
    assert_true(json_object_array_length(data) >= 1);
    for (size_t i = 0; i < json_object_array_length(data); i++)
        assert_string_equal(get_s(json_object_array_get_idx(data, i), "tenant_id"), ta);
    json_object_put(o);
    free(team_b);
    free(ta);
    free(tb);
}

/* Every GET route with mangled query strings: never a 500. */
static void test_mutated_queries(void **state)
{
    fx_t *f = *state;
    static const char *const params[] = {
        "limit", "cursor", "tenant_id", "tenant",      "team",        "key",      "model",
        "from",  "to",     "group_by",  "granularity", "object_type", "object_id"};
    static const char *const values[] = {"",
                                         "0",
                                         "1",
                                         "1000",
                                         "1001",
                                         "-1",
                                         "abc",
                                         "%00",
                                         "%zz",
                                         "x%20y",
                                         "tenant,model",
                                         "bucket",
                                         "day",
                                         "2026-01-01",
                                         "99999999999999999999",
                                         "ten_x",
                                         "%2e%2e"};
    uint32_t rng = 99;
    const char *method, *path;
    int answered = 0;
    for (size_t i = 0; sy_admin_route_at(i, &method, &path); i++) {
        if (strcmp(method, "GET") != 0)
            continue;
        for (int iter = 0; iter < 60; iter++) {
            char url[512];
            snprintf(url, sizeof(url), "%s", path);
            for (char *p; (p = strchr(url, '{')) != NULL;) {
                char *e = strchr(p, '}');
                memmove(p + 1, e + 1, strlen(e + 1) + 1);
                *p = 'x';
            }
            size_t len = strlen(url);
            for (int k = 0; k < 3; k++) {
                rng = rng * 1103515245u + 12345u;
                const char *pn = params[(rng >> 8) % SY_ARRAY_LEN(params)];
                const char *pv = values[(rng >> 16) % SY_ARRAY_LEN(values)];
                len += (size_t)snprintf(url + len, sizeof(url) - len, "%c%s=%s", k ? '&' : '?', pn,
                                        pv);
            }
            int status;
            json_object *o = call(f, "GET", url, f->root, NULL, &status);
            if (status >= 500)
                fail_msg("GET %s -> %d %s", url, status, json_object_to_json_string(o));
            json_object_put(o);
            answered++;
        }
    }
    assert_true(answered > 500);
}

static const char *user_id_of(fx_t *f, const char *token, char *out, size_t size)
{
    json_object *o;
    free(expect(f, "GET", "/admin/v1/me", token, NULL, 200, &o));
    snprintf(out, size, "%s", get_s(o, "user_id"));
    json_object_put(o);
    return out;
}

static void test_users_and_tokens(void **state)
{
    fx_t *f = *state;
    char root_id[64], url[160];
    user_id_of(f, f->root, root_id, sizeof(root_id));
    /* The last enabled platform admin can be neither disabled nor deleted. */
    snprintf(url, sizeof(url), "/admin/v1/users/%s", root_id);
    expect_error(f, "PATCH", url, f->root, "{\"disabled\":true}", 409, NULL, "last_platform_admin");
    expect_error(f, "DELETE", url, f->root, NULL, 409, NULL, "last_platform_admin");
    expect_error(f, "PATCH", url, f->root, "{\"role\":\"tenant_viewer\"}", 400, "role",
                 "immutable_field");
    /* A second platform admin; rotate its token. */
    json_object *o;
    char *uid = expect(f, "POST", "/admin/v1/users", f->root,
                       "{\"name\":\"ops\",\"role\":\"platform_admin\"}", 201, &o);
    char first[96];
    snprintf(first, sizeof(first), "%s", get_s(o, "token"));
    json_object_put(o);
    snprintf(url, sizeof(url), "/admin/v1/users/%s/tokens", uid);
    free(expect(f, "POST", url, first, "{}", 201, &o));
    char second[96];
    snprintf(second, sizeof(second), "%s", get_s(o, "token"));
    assert_string_not_equal(first, second);
    assert_string_equal(get_s(o, "revoked_others"), "0");
    json_object_put(o);
    free(expect(f, "GET", "/admin/v1/me", first, NULL, 200, NULL));
    free(expect(f, "POST", url, second, "{\"revoke_existing\":true}", 201, &o));
    char third[96];
    snprintf(third, sizeof(third), "%s", get_s(o, "token"));
    assert_string_equal(get_s(o, "revoked_others"), "2");
    json_object_put(o);
    expect_error(f, "GET", "/admin/v1/me", first, NULL, 401, NULL, "invalid_token");
    expect_error(f, "GET", "/admin/v1/me", second, NULL, 401, NULL, "invalid_token");
    free(expect(f, "GET", "/admin/v1/me", third, NULL, 200, NULL));
    /* The user shows its tokens by prefix only; the audit has no token. */
    snprintf(url, sizeof(url), "/admin/v1/users/%s", uid);
    free(expect(f, "GET", url, f->root, NULL, 200, &o));
    json_object *toks = json_object_object_get(o, "tokens");
    assert_int_equal(json_object_array_length(toks), 3);
    const char *oj = json_object_to_json_string(o);
    assert_null(strstr(oj, first + 4));
    assert_null(strstr(oj, third + 4));
    json_object_put(o);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_log WHERE instr(after, '%s') > 0",
             third + 4);
    assert_int_equal(q_int(f, sql), 0);
    /* The bootstrap token and the two issued here. */
    assert_int_equal(q_int(f, "SELECT count(*) FROM audit_log WHERE object_type = 'admin_token'"),
                     3);
    /* Disabling a user stops its tokens at once; now root may be disabled too. */
    free(expect(f, "PATCH", url, f->root, "{\"disabled\":true}", 200, NULL));
    expect_error(f, "GET", "/admin/v1/me", third, NULL, 401, NULL, "invalid_token");
    free(expect(f, "PATCH", url, f->root, "{\"disabled\":false,\"name\":\"ops2\"}", 200, NULL));
    free(expect(f, "GET", "/admin/v1/me", third, NULL, 200, NULL));
    snprintf(url, sizeof(url), "/admin/v1/users/%s", root_id);
    free(expect(f, "PATCH", url, third, "{\"disabled\":true}", 200, NULL));
    expect_error(f, "GET", "/admin/v1/me", f->root, NULL, 401, NULL, "invalid_token");
    free(uid);
}

static void exec_ok(fx_t *f, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(f->store->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

static void test_usage_query(void **state)
{
    fx_t *f = *state;
    /* 2026-11-21 10:00 UTC and the day. */
    exec_ok(f, "INSERT INTO usage_minute (bucket, tenant_id, team_id, key_id, model_id, requests, "
               "prompt_tokens, completion_tokens, cost_usd) VALUES "
               "(1795255200, 'tA', 'm1', 'k1', 'gpt', 2, 100, 10, 0.5),"
               "(1795255260, 'tA', 'm1', 'k2', 'claude', 1, 50, 5, 0.25),"
               "(1795255260, 'tB', '', 'k3', 'gpt', 7, 700, 70, 3.5)");
    exec_ok(f, "INSERT INTO usage_day (bucket, tenant_id, team_id, key_id, model_id, requests, "
               "prompt_tokens, completion_tokens, cost_usd) VALUES "
               "(1795219200, 'tA', 'm1', 'k1', 'gpt', 2, 100, 10, 0.5),"
               "(1795219200, 'tA', 'm1', 'k2', 'claude', 1, 50, 5, 0.25),"
               "(1795219200, 'tB', '', 'k3', 'gpt', 7, 700, 70, 3.5)");
    json_object *o;
    free(expect(f, "GET", "/admin/v1/usage?tenant=tA", f->root, NULL, 200, &o));
    assert_string_equal(get_s(o, "granularity"), "day");
    assert_string_equal(get_s(o, "totals.requests"), "3");
    assert_string_equal(get_s(o, "totals.prompt_tokens"), "150");
    assert_string_equal(get_s(o, "totals.total_tokens"), "165");
    assert_string_equal(get_s(o, "totals.cost_usd"), "0.75");
    json_object_put(o);
    /* A minute-aligned window reads the minute rollup. */
    free(expect(f, "GET",
                "/admin/v1/usage?from=2026-11-21T10:01:00Z&to=1795255320&group_by=tenant,model",
                f->root, NULL, 200, &o));
    assert_string_equal(get_s(o, "granularity"), "minute");
    json_object *data = json_object_object_get(o, "data");
    assert_int_equal(json_object_array_length(data), 2);
    assert_string_equal(get_s(json_object_array_get_idx(data, 0), "tenant_id"), "tA");
    assert_string_equal(get_s(json_object_array_get_idx(data, 0), "model_id"), "claude");
    assert_string_equal(get_s(json_object_array_get_idx(data, 1), "requests"), "7");
    assert_string_equal(get_s(o, "totals.requests"), "8");
    json_object_put(o);
    /* The same usage in every rollup, as the report applier writes it, plus
     * 5 requests at 2026-11-20 23:30. A period that is not whole days is
     * read from days, hours and minutes together, exactly. */
    exec_ok(f, "INSERT INTO usage_hour (bucket, tenant_id, team_id, key_id, model_id, requests, "
               "prompt_tokens, cost_usd) VALUES (1795255200, 'tA', 'm1', 'k1', 'gpt', 2, 100, 0.5),"
               "(1795255200, 'tA', 'm1', 'k2', 'claude', 1, 50, 0.25),"
               "(1795255200, 'tB', '', 'k3', 'gpt', 7, 700, 3.5),"
               "(1795215600, 'tA', 'm1', 'k1', 'gpt', 5, 500, 2.5)");
    exec_ok(f,
            "INSERT INTO usage_day (bucket, tenant_id, team_id, key_id, model_id, requests, "
            "prompt_tokens, cost_usd) VALUES (1795132800, 'tA', 'm1', 'k1', 'gpt', 5, 500, 2.5)");
    exec_ok(f,
            "INSERT INTO usage_minute (bucket, tenant_id, team_id, key_id, model_id, requests, "
            "prompt_tokens, cost_usd) VALUES (1795217400, 'tA', 'm1', 'k1', 'gpt', 5, 500, 2.5)");
    static const struct {
        const char *query; /* period */
        const char *gran;  /* rollups read */
        const char *reqs;  /* requests of tA */
    } periods[] = {
        {"from=2026-11-20&to=2026-11-22", "day", "8"},
        {"from=2026-11-20T23:00:00Z&to=2026-11-21T10:02:00Z", "mixed", "8"},
        {"from=2026-11-20T23:30:00Z&to=2026-11-21T10:01:00Z", "mixed", "7"},
        {"from=2026-11-20T23:31:00Z&to=2026-11-21T10:00:00Z", "mixed", "0"},
        {"from=2026-11-21T10:00:00Z&to=2026-11-21T10:02:00Z", "minute", "3"},
        {"from=2026-11-20T23:00:00Z&to=2026-11-21T11:00:00Z", "hour", "8"},
        {"from=2026-11-19T22:00:00Z&to=2026-11-21T11:00:00Z", "mixed", "8"},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(periods); i++) {
        char url[200];
        snprintf(url, sizeof(url), "/admin/v1/usage?tenant=tA&%s", periods[i].query);
        free(expect(f, "GET", url, f->root, NULL, 200, &o));
        if (strcmp(get_s(o, "granularity"), periods[i].gran) != 0 ||
            strcmp(get_s(o, "totals.requests"), periods[i].reqs) != 0)
            fail_msg("%s: %s", periods[i].query, json_object_to_json_string(o));
        json_object_put(o);
    }
    expect_error(f, "GET", "/admin/v1/usage?from=2026-11-20T23:30:30Z", f->root, NULL, 400, "from",
                 NULL);
    free(expect(f, "GET", "/admin/v1/usage?key=k3&group_by=bucket", f->root, NULL, 200, &o));
    assert_string_equal(get_s(o, "totals.completion_tokens"), "70");
    json_object_put(o);
    expect_error(f, "GET", "/admin/v1/usage?group_by=color", f->root, NULL, 400, "group_by", NULL);
    expect_error(f, "GET", "/admin/v1/usage?from=yesterday", f->root, NULL, 400, "from", NULL);
    expect_error(f, "GET", "/admin/v1/usage?from=100&to=50", f->root, NULL, 400, "to", NULL);
    expect_error(f, "GET", "/admin/v1/usage?from=30&granularity=minute", f->root, NULL, 400, "from",
                 NULL);
}

static void test_routes_models_budgets(void **state)
{
    fx_t *f = *state;
    json_object *o;
    char *tid = expect(f, "POST", "/admin/v1/tenants", f->root, "{\"name\":\"acme\"}", 201, NULL);
    char *pid =
        expect(f, "POST", "/admin/v1/providers", f->root,
               "{\"name\":\"oa\",\"kind\":\"openai\",\"base_url\":\"http://h/v1\"}", 201, NULL);
    char body[512], url[200];
    snprintf(body, sizeof(body),
             "{\"id\":\"gpt-x\",\"provider_id\":\"%s\",\"upstream_name\":\"gpt-x-2026\","
             "\"prices\":[{\"valid_from\":0,\"input_per_mtok\":1,\"output_per_mtok\":2}]}",
             pid);
    free(expect(f, "POST", "/admin/v1/models", f->root, body, 201, NULL));
    free(expect(f, "POST", "/admin/v1/models/gpt-x/prices", f->root,
                "{\"valid_from\":1800000000,\"input_per_mtok\":0.5,\"output_per_mtok\":1.5}", 201,
                &o));
    json_object *prices = json_object_object_get(o, "prices");
    assert_int_equal(json_object_array_length(prices), 2);
    assert_string_equal(get_s(json_object_array_get_idx(prices, 1), "input_per_mtok"), "0.5");
    json_object_put(o);
    char *rid = expect(f, "POST", "/admin/v1/routes", f->root,
                       "{\"alias\":\"fast\",\"rules\":[{\"name\":\"big\",\"min_prompt_tokens\":"
                       "1000,\"targets\":[{\"model_id\":\"gpt-x\"}]},{\"strategy\":\"weighted\","
                       "\"targets\":[{\"model_id\":\"gpt-x\",\"weight\":2}]}]}",
                       201, &o);
    json_object *rules = json_object_object_get(o, "rules");
    assert_int_equal(json_object_array_length(rules), 2);
    /* The target's provider defaults to the model's. */
    assert_string_equal(
        get_s(json_object_array_get_idx(
                  json_object_object_get(json_object_array_get_idx(rules, 0), "targets"), 0),
              "provider_id"),
        pid);
    json_object_put(o);
    snprintf(url, sizeof(url), "/admin/v1/routes/%s", rid);
    free(expect(f, "PATCH", url, f->root, "{\"rules\":[{\"targets\":[{\"model_id\":\"gpt-x\"}]}]}",
                200, &o));
    assert_int_equal(json_object_array_length(json_object_object_get(o, "rules")), 1);
    json_object_put(o);
    assert_int_equal(q_int(f, "SELECT count(*) FROM route_targets"), 1);
    /* Same alias twice for the platform: conflict. */
    expect_error(f, "POST", "/admin/v1/routes", f->root,
                 "{\"alias\":\"fast\",\"rules\":[{\"targets\":[{\"model_id\":\"gpt-x\"}]}]}", 409,
                 "alias", "conflict");
    snprintf(body, sizeof(body),
             "{\"scope\":\"tenant\",\"scope_id\":\"%s\",\"period\":\"daily\",\"amount_usd\":5}",
             tid);
    char *bid = expect(f, "POST", "/admin/v1/budgets", f->root, body, 201, &o);
    assert_string_equal(get_s(o, "tenant_id"), tid);
    json_object_put(o);
    snprintf(url, sizeof(url), "/admin/v1/budgets/%s", bid);
    free(expect(f, "PATCH", url, f->root, "{\"amount_usd\":7.5}", 200, &o));
    assert_string_equal(get_s(o, "amount_usd"), "7.5");
    json_object_put(o);
    /* Deleting the provider cascades to models and targets; audited. */
    snprintf(url, sizeof(url), "/admin/v1/providers/%s", pid);
    free(expect(f, "DELETE", url, f->root, NULL, 200, NULL));
    expect_error(f, "GET", "/admin/v1/models/gpt-x", f->root, NULL, 404, NULL, "not_found");
    assert_int_equal(q_int(f, "SELECT count(*) FROM audit_log WHERE action = 'delete' AND "
                              "object_type = 'provider' AND before IS NOT NULL AND after IS NULL"),
                     1);
    free(bid);
    free(rid);
    free(pid);
    free(tid);
}

static void collect_refs(json_object *o, json_object *schemas)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            if (strcmp(k, "$ref") == 0) {
                const char *name = json_object_get_string(v) + strlen("#/components/schemas/");
                if (json_object_object_get(schemas, name) == NULL)
                    fail_msg("dangling $ref %s", json_object_get_string(v));
            } else {
                collect_refs(v, schemas);
            }
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            collect_refs(json_object_array_get_idx(o, i), schemas);
    }
}

static void test_openapi_matches_routes(void **state)
{
    fx_t *f = *state;
    json_object *doc;
    free(expect(f, "GET", "/admin/v1/openapi.json", NULL, NULL, 200, &doc));
    assert_string_equal(get_s(doc, "openapi"), "3.1.0");
    json_object *paths = json_object_object_get(doc, "paths");
    size_t n = 0, ops = 0;
    const char *method, *path;
    while (sy_admin_route_at(n, &method, &path)) {
        char m[16];
        size_t i;
        for (i = 0; method[i] && i < sizeof(m) - 1; i++)
            m[i] = (char)(method[i] + ('a' - 'A'));
        m[i] = '\0';
        json_object *item = json_object_object_get(paths, path);
        if (item == NULL || json_object_object_get(item, m) == NULL)
            fail_msg("route %s %s missing from the document", method, path);
        /* The route really dispatches (not "unknown route", not 405). */
        char url[256];
        snprintf(url, sizeof(url), "%s", path);
        for (char *p; (p = strchr(url, '{')) != NULL;) {
            char *e = strchr(p, '}');
            memmove(p + 7, e + 1, strlen(e + 1) + 1);
            memcpy(p, "missing", 7);
        }
        int status;
        json_object *o = call(f, method, url, f->root, "{}", &status);
        const char *code = get_s(o, "error.code");
        if (code && (strcmp(code, "unknown_route") == 0 || strcmp(code, "method_not_allowed") == 0))
            fail_msg("%s %s is documented but not served", method, url);
        json_object_put(o);
        n++;
    }
    /* And nothing in the document that the table lacks. */
    json_object_object_foreach(paths, p, item)
    {
        json_object_object_foreach(item, m, op)
        {
            (void)op;
            bool found = false;
            for (size_t i = 0; sy_admin_route_at(i, &method, &path); i++)
                if (strcmp(path, p) == 0 && strcasecmp(method, m) == 0)
                    found = true;
            if (!found)
                fail_msg("document has %s %s that the server does not route", m, p);
            ops++;
        }
    }
    assert_int_equal(ops, n);
    assert_true(n >= 40);
    collect_refs(doc, json_object_object_get(json_object_object_get(doc, "components"), "schemas"));
    json_object_put(doc);
}

/* Mutated bodies (deterministic byte flips, truncations, type swaps) against
 * every write route: the answer is always JSON with a 2xx/4xx status, never
 * a 500, and the database stays consistent. */
static void test_mutated_bodies(void **state)
{
    fx_t *f = *state;
    char *tid = expect(f, "POST", "/admin/v1/tenants", f->root, "{\"name\":\"seed\"}", 201, NULL);
    char *pid =
        expect(f, "POST", "/admin/v1/providers", f->root,
               "{\"name\":\"seedp\",\"kind\":\"openai\",\"base_url\":\"http://h\"}", 201, NULL);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"id\":\"seedm\",\"provider_id\":\"%s\",\"upstream_name\":\"u\"}", pid);
    free(expect(f, "POST", "/admin/v1/models", f->root, body, 201, NULL));
    struct {
        const char *method;
        char url[160];
        char seed[512];
    } cases[7];
    size_t n = 0;
#define CASE(m, u, b)                                                                              \
    do {                                                                                           \
        cases[n].method = m;                                                                       \
        snprintf(cases[n].url, sizeof(cases[n].url), "%s", u);                                     \
        snprintf(cases[n].seed, sizeof(cases[n].seed), "%s", b);                                   \
        n++;                                                                                       \
    } while (0)
    char url[160];
    CASE("POST", "/admin/v1/tenants",
         "{\"name\":\"n\",\"tier\":\"free\",\"rpm\":5,\"blocked\":false}");
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/keys", tid);
    CASE("POST", url, "{\"name\":\"k\",\"allowed_models\":[\"a\",\"b\"],\"budget_usd\":1.5}");
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s/teams", tid);
    CASE("POST", url, "{\"name\":\"t\",\"tpm\":100}");
    CASE("POST", "/admin/v1/routes",
         "{\"alias\":\"r\",\"rules\":[{\"task\":\"x\",\"targets\":[{\"model_id\":\"seedm\","
         "\"weight\":2}]}]}");
    CASE("POST", "/admin/v1/models/seedm/prices",
         "{\"valid_from\":5,\"input_per_mtok\":1,\"output_per_mtok\":2}");
    snprintf(url, sizeof(url), "/admin/v1/providers/%s", pid);
    CASE("PATCH", url, "{\"headers\":{\"a\":\"b\"},\"api_key\":\"s\",\"total_timeout_ms\":5}");
    snprintf(url, sizeof(url), "/admin/v1/tenants/%s", tid);
    CASE("PATCH", url, "{\"time_zone\":\"UTC\",\"tpm\":1}");
#undef CASE
    static const char alphabet[] = "{}[]\":,0123456789.-eE truefalsnul\\\x01\xff";
    uint32_t rng = 12345;
    int counts[600] = {0};
    for (int iter = 0; iter < 3000; iter++) {
        size_t c = (size_t)iter % n;
        char m[600];
        size_t len = strlen(cases[c].seed);
        memcpy(m, cases[c].seed, len + 1);
        int edits = 1 + (int)((rng = rng * 1103515245u + 12345u) >> 16) % 4;
        for (int e = 0; e < edits; e++) {
            rng = rng * 1103515245u + 12345u;
            size_t pos = len ? (rng >> 8) % len : 0;
            int op = (int)(rng >> 4) % 3;
            if (op == 0 && len) /* replace a byte */
                m[pos] = alphabet[(rng >> 20) % (sizeof(alphabet) - 1)];
            else if (op == 1) /* truncate */
                len = pos, m[len] = '\0';
            else if (len + 1 < sizeof(m)) { /* insert a byte */
                memmove(m + pos + 1, m + pos, len - pos + 1);
                m[pos] = alphabet[(rng >> 20) % (sizeof(alphabet) - 1)];
                len++;
            }
        }
        int status;
        json_object *o = call(f, cases[c].method, cases[c].url, f->root, m, &status);
        if (status >= 500 || status < 200)
            fail_msg("%s %s with %s -> %d %s", cases[c].method, cases[c].url, m, status,
                     json_object_to_json_string(o));
        if (status >= 400)
            assert_non_null(get_s(o, "error.message"));
        counts[status]++;
        json_object_put(o);
        assert_int_equal(sqlite3_get_autocommit(f->store->db), 1);
    }
    /* Both outcomes happen: the mutations are neither all fatal nor all benign. */
    assert_true(counts[400] > 100);
    int ok = counts[200] + counts[201] + counts[409];
    print_message("mutations: %d rejected (400), %d accepted or conflicting\n", counts[400], ok);
    assert_true(ok > 30);
    assert_int_equal(q_int(f, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(q_int(f, "SELECT count(*) FROM pragma_integrity_check WHERE "
                              "integrity_check != 'ok'"),
                     0);
    free(pid);
    free(tid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_and_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_names_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_models_budgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openapi_matches_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutated_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutated_queries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
