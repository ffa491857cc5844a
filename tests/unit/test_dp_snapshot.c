/* Unit tests for dataplane/snapshot.c: building from a protobuf message,
 * the JSON form, protobuf files, lookups, prices and reference counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/sha.h>

#include "err.h"
#include "dataplane/snapshot.h"

static const char *JSON_SNAP =
    "{\"version\": 7, \"created_at\": 1700000000000, \"live_workers\": 2,"
    " \"tenants\": [{\"id\": \"t1\", \"name\": \"T\", \"tier\": \"standard\"},"
    "               {\"id\": \"t2\", \"blocked\": true}],"
    " \"teams\": [{\"id\": \"team1\", \"tenant_id\": \"t1\"}],"
    " \"keys\": [{\"id\": \"k1\", \"sha256\": \"%s\", \"tenant_id\": \"t1\", \"team_id\": "
    "\"team1\","
    "            \"allowed_models\": [\"m1\", \"auto\"], \"limits\": {\"rpm\": 60, \"tpm\": "
    "\"1000\"}},"
    "           {\"id\": \"k2\", \"sha256\": \"%s\", \"tenant_id\": \"t2\", \"expires_at\": 5}],"
    " \"providers\": [{\"id\": \"p1\", \"kind\": \"openai_compatible\", \"base_url\": "
    "\"http://u/v1\","
    "                  \"api_key\": \"sk-up\", \"headers\": {\"x-a\": \"1\", \"x-b\": \"2\"}},"
    "                 {\"id\": \"p2\", \"kind\": \"PROVIDER_KIND_ANTHROPIC\"}],"
    " \"models\": [{\"id\": \"m1\", \"provider_id\": \"p1\", \"upstream_name\": \"up-m1\","
    "               \"prices\": [{\"valid_from\": 0, \"input_per_mtok\": 1.0, \"output_per_mtok\": "
    "2.0},"
    "                          {\"valid_from\": 1000, \"input_per_mtok\": 10.0, "
    "\"output_per_mtok\": 20.0,"
    "                           \"cached_input_per_mtok\": 5.0}]},"
    "              {\"id\": \"m2\", \"provider_id\": \"missing\"}],"
    " \"routes\": [{\"id\": \"r1\", \"alias\": \"auto\", \"rules\": [{\"targets\": [{\"model_id\": "
    "\"m1\"}]}]},"
    "              {\"id\": \"r2\", \"alias\": \"auto\", \"tenant_id\": \"t1\"}]}";

static void hex_of(const char *secret, char out[65])
{
    unsigned char d[32];
    SHA256((const unsigned char *)secret, strlen(secret), d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static sy_snapshot_t *load_json(void)
{
    char h1[65], h2[65];
    hex_of("sk-one", h1);
    hex_of("sk-two", h2);
    char *doc = malloc(strlen(JSON_SNAP) + 200);
    sprintf(doc, JSON_SNAP, h1, h2);
    Switchyard__Snapshot *msg = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_snapshot_json_to_proto(doc, strlen(doc), &msg, &err), 0);
    free(doc);
    sy_snapshot_t *s = NULL;
    assert_int_equal(sy_snapshot_from_proto(msg, &s, &err), 0);
    /* The table is a deep copy: the message can go at once. */
    switchyard__snapshot__free_unpacked(msg, NULL);
    return s;
}

static void test_json_and_lookups(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_json();
    assert_int_equal(sy_snapshot_version(s), 7);
    const Switchyard__Snapshot *pb = sy_snapshot_proto(s);
    assert_int_equal(pb->live_workers, 2);
    assert_int_equal(pb->keys[0]->limits->tpm, 1000);

    unsigned char d[32];
    SHA256((const unsigned char *)"sk-one", 6, d);
    const sy_snapshot_key_t *k = sy_snapshot_find_key(s, d);
    assert_non_null(k);
    assert_string_equal(k->pb->id, "k1");
    assert_non_null(k->tenant);
    assert_string_equal(k->tenant->id, "t1");
    assert_non_null(k->team);
    SHA256((const unsigned char *)"sk-nope", 7, d);
    assert_null(sy_snapshot_find_key(s, d));

    const sy_snapshot_model_t *m = sy_snapshot_find_model(s, SY_STR("m1"));
    assert_non_null(m);
    assert_true(m->rename);
    assert_non_null(m->provider);
    assert_string_equal(m->provider->base_url, "http://u/v1");
    assert_int_equal(m->provider->kind, SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_OPENAI_COMPATIBLE);
    assert_int_equal(m->provider->n_headers, 2);
    assert_null(sy_snapshot_find_model(s, SY_STR("m3")));
    assert_null(sy_snapshot_find_model(s, SY_STR("")));
    const sy_snapshot_model_t *m2 = sy_snapshot_find_model(s, SY_STR("m2"));
    assert_non_null(m2);
    assert_null(m2->provider);
    assert_false(m2->rename);
    assert_int_equal(sy_snapshot_find_provider(s, SY_STR("p2"))->kind,
                     SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_ANTHROPIC);

    assert_true(sy_snapshot_key_allows(k, SY_STR("m1")));
    assert_false(sy_snapshot_key_allows(k, SY_STR("m2")));
    SHA256((const unsigned char *)"sk-two", 6, d);
    const sy_snapshot_key_t *k2 = sy_snapshot_find_key(s, d);
    assert_true(sy_snapshot_key_allows(k2, SY_STR("anything")));
    assert_true(k2->tenant->blocked);
    assert_int_equal(k2->pb->expires_at, 5);

    /* A tenant's own route wins over the route for every tenant. */
    assert_string_equal(sy_snapshot_find_route(s, SY_STR("auto"), "t1")->id, "r2");
    assert_string_equal(sy_snapshot_find_route(s, SY_STR("auto"), "t2")->id, "r1");
    assert_null(sy_snapshot_find_route(s, SY_STR("fast"), "t1"));
    assert_int_equal(sy_snapshot_model_count(s), 2);
    assert_string_equal(sy_snapshot_model_at(s, 1)->pb->id, "m2");
    assert_null(sy_snapshot_model_at(s, 2));
    sy_snapshot_unref(s);
}

static void test_prices_and_cost(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_json();
    const Switchyard__Model *m = sy_snapshot_find_model(s, SY_STR("m1"))->pb;
    const Switchyard__Price *p0 = sy_snapshot_price_at(m, 999);
    const Switchyard__Price *p1 = sy_snapshot_price_at(m, 1000);
    assert_true(p0->input_per_mtok == 1.0);
    assert_true(p1->input_per_mtok == 10.0);
    assert_null(sy_snapshot_price_at(m, -1));
    /* 1M prompt tokens of which 500k cached, 1M completion. */
    double c0 = sy_snapshot_cost(p0, 1000000, 1000000, 500000, 0);
    assert_true(c0 > 2.999999 && c0 < 3.000001); /* cached at input price when unset */
    double c1 = sy_snapshot_cost(p1, 1000000, 1000000, 500000, 0);
    assert_true(c1 > 27.499999 && c1 < 27.500001); /* 5 + 2.5 + 20 */
    assert_true(sy_snapshot_cost(NULL, 5, 5, 0, 0) == 0.0);
    sy_snapshot_unref(s);
}

static void test_refcount(void **state)
{
    (void)state;
    sy_snapshot_t *s = load_json();
    assert_ptr_equal(sy_snapshot_ref(s), s);
    sy_snapshot_unref(s);
    /* Still alive: one reference left. */
    assert_int_equal(sy_snapshot_version(s), 7);
    sy_snapshot_unref(s);
    sy_snapshot_unref(NULL);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    sy_err_t err;
    Switchyard__Snapshot *msg = NULL;
    const char *bad[] = {
        "{\"keys\": [{\"id\": \"k\", \"sha256\": \"zz\"}]}",
        "{\"unknown_field\": 1}",
        "{\"version\": -1}",
        "{\"providers\": [{\"id\": \"p\", \"kind\": \"martian\"}]}",
        "{\"tenants\": {}}",
        "[1, 2]",
        "{\"version\": 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sy_err_clear(&err);
        assert_int_not_equal(sy_snapshot_json_to_proto(bad[i], strlen(bad[i]), &msg, &err), 0);
        assert_true(err.msg[0] != '\0');
    }
    /* A key hash of the wrong length, and duplicate ids. */
    const char *dups[] = {
        "{\"keys\": [{\"id\": \"k\", \"sha256\": \"abcd\"}]}",
        "{\"models\": [{\"id\": \"m\"}, {\"id\": \"m\"}]}",
        "{\"models\": [{\"id\": \"\"}]}",
    };
    for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
        sy_err_clear(&err);
        assert_int_equal(sy_snapshot_json_to_proto(dups[i], strlen(dups[i]), &msg, &err), 0);
        sy_snapshot_t *s = (sy_snapshot_t *)0x1;
        assert_int_equal(sy_snapshot_from_proto(msg, &s, &err), SY_EINVAL);
        assert_ptr_equal(s, (sy_snapshot_t *)0x1); /* untouched on failure */
        switchyard__snapshot__free_unpacked(msg, NULL);
    }
}

static void test_load_file_json_and_protobuf(void **state)
{
    (void)state;
    char path[] = "/tmp/sy-snap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* Protobuf form. */
    Switchyard__Snapshot msg = SWITCHYARD__SNAPSHOT__INIT;
    Switchyard__Model model = SWITCHYARD__MODEL__INIT;
    Switchyard__Model *models[1] = {&model};
    model.id = "pm";
    msg.version = 42;
    msg.n_models = 1;
    msg.models = models;
    size_t n = switchyard__snapshot__get_packed_size(&msg);
    uint8_t *buf = malloc(n);
    switchyard__snapshot__pack(&msg, buf);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    free(buf);
    close(fd);
    sy_snapshot_t *s = NULL;
    sy_err_t err;
    assert_int_equal(sy_snapshot_load_file(path, &s, &err), 0);
    assert_int_equal(sy_snapshot_version(s), 42);
    assert_non_null(sy_snapshot_find_model(s, SY_STR("pm")));
    sy_snapshot_unref(s);
    /* JSON form, with leading blanks. */
    FILE *f = fopen(path, "w");
    fputs("  \n{\"version\": 3, \"models\": [{\"id\": \"jm\"}]}", f);
    fclose(f);
    assert_int_equal(sy_snapshot_load_file(path, &s, &err), 0);
    assert_int_equal(sy_snapshot_version(s), 3);
    sy_snapshot_unref(s);
    /* Garbage. */
    f = fopen(path, "w");
    fputs("\xff\xff\xff garbage", f);
    fclose(f);
    assert_int_not_equal(sy_snapshot_load_file(path, &s, &err), 0);
    unlink(path);
    assert_int_not_equal(sy_snapshot_load_file(path, &s, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_and_lookups),
        cmocka_unit_test(test_prices_and_cost),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_load_file_json_and_protobuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
