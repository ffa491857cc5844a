/* Unit tests for common/envelope.c: sealing round trips, authentication of
 * every byte, the AAD binding of kind/sender/seq, malformed input, and key
 * loading from a file and from the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "envelope.h"
#include "err.h"
#include "switchyard.pb-c.h"

static const char KEY_HEX[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char KEY2_HEX[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static sy_envelope_key_t key_of(const char *hex)
{
    sy_envelope_key_t k;
    assert_int_equal(sy_envelope_key_from_hex(hex, strlen(hex), &k), 0);
    return k;
}

/* Opening must fail and leave env empty. */
static void expect_refused(const sy_envelope_key_t *k, const void *msg, size_t len)
{
    sy_envelope_t env;
    int rc = sy_envelope_open(k, msg, len, &env);
    if (rc != SY_EINVAL && rc != SY_EACCES)
        fail_msg("a tampered message of %zu bytes was not refused (rc %d)", len, rc);
    assert_int_equal(env.payload.len, 0);
    assert_null(env.payload.data);
    assert_string_equal(env.sender, "");
    assert_int_equal(env.kind, 0);
    assert_true(env.seq == 0);
    sy_envelope_free(&env);
}

static void test_round_trip(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 1 << 20};
    for (size_t s = 0; s < SY_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        unsigned char *payload = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            payload[i] = (unsigned char)(i * 7 + s);
        sy_buf_t out;
        sy_buf_init(&out);
        assert_int_equal(
            sy_envelope_seal(&k, 3, "host-a/2", 1234567890123ull + s, payload, n, &out), 0);
        /* The payload is not readable on the wire. */
        if (n >= 16)
            assert_null(memmem(out.data, out.len, payload, 16));
        sy_envelope_t env;
        assert_int_equal(sy_envelope_open(&k, out.data, out.len, &env), 0);
        assert_int_equal(env.kind, 3);
        assert_string_equal(env.sender, "host-a/2");
        assert_true(env.seq == 1234567890123ull + s);
        assert_int_equal(env.payload.len, n);
        if (n)
            assert_memory_equal(env.payload.data, payload, n);
        sy_envelope_free(&env);
        sy_envelope_free(&env); /* idempotent */
        sy_buf_free(&out);
        free(payload);
    }
}

static void test_nonce_is_random_and_seal_appends(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    sy_buf_t a;
    sy_buf_t b;
    sy_buf_init(&a);
    sy_buf_init(&b);
    sy_buf_append_str(&b, "prefix");
    assert_int_equal(sy_envelope_seal(&k, 1, "control", 1, "same", 4, &a), 0);
    assert_int_equal(sy_envelope_seal(&k, 1, "control", 1, "same", 4, &b), 0);
    /* Appended after existing bytes, same length, different bytes (nonce). */
    assert_memory_equal(b.data, "prefix", 6);
    assert_int_equal(b.len - 6, a.len);
    assert_memory_not_equal(a.data, b.data + 6, a.len);
    sy_envelope_t env;
    assert_int_equal(sy_envelope_open(&k, b.data + 6, b.len - 6, &env), 0);
    assert_int_equal(env.payload.len, 4);
    assert_memory_equal(env.payload.data, "same", 4);
    sy_envelope_free(&env);
    /* The wire form is the protobuf Envelope with the documented fields. */
    Switchyard__Envelope *m = switchyard__envelope__unpack(NULL, a.len, (uint8_t *)a.data);
    assert_non_null(m);
    assert_int_equal(m->version, 1);
    assert_int_equal(m->kind, 1);
    assert_string_equal(m->sender, "control");
    assert_int_equal(m->seq, 1);
    assert_int_equal(m->nonce.len, 12);
    assert_int_equal(m->tag.len, 16);
    assert_int_equal(m->ciphertext.len, 4);
    switchyard__envelope__free_unpacked(m, NULL);
    sy_buf_free(&a);
    sy_buf_free(&b);
}

static void test_wrong_key(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    sy_envelope_key_t k2 = key_of(KEY2_HEX);
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_envelope_seal(&k, 2, "w/1", 9, "hello", 5, &out), 0);
    sy_envelope_t env;
    assert_int_equal(sy_envelope_open(&k2, out.data, out.len, &env), SY_EACCES);
    assert_int_equal(env.payload.len, 0);
    assert_string_equal(env.sender, "");
    sy_envelope_free(&env);
    sy_buf_free(&out);
}

static void test_every_byte_flip_refused(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    sy_buf_t out;
    sy_buf_init(&out);
    const char payload[] = "{\"snapshot\":\"payload bytes\"}";
    assert_int_equal(sy_envelope_seal(&k, 1, "control", 77, payload, sizeof(payload) - 1, &out), 0);
    unsigned char *m = malloc(out.len);
    const unsigned char masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    for (size_t i = 0; i < out.len; i++) {
        for (size_t j = 0; j < SY_ARRAY_LEN(masks); j++) {
            memcpy(m, out.data, out.len);
            m[i] ^= masks[j];
            expect_refused(&k, m, out.len);
        }
    }
    /* Every truncation, and every extension by one byte. */
    for (size_t n = 0; n < out.len; n++)
        expect_refused(&k, out.data, n);
    unsigned char *longer = malloc(out.len + 1);
    memcpy(longer, out.data, out.len);
    for (int c = 0; c < 256; c += 17) {
        longer[out.len] = (unsigned char)c;
        expect_refused(&k, longer, out.len + 1);
    }
    free(longer);
    free(m);
    sy_buf_free(&out);
}

/* Re-encodes a sealed message with one clear field changed. */
static void test_aad_binds_clear_fields(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    sy_buf_t out;
    sy_buf_init(&out);
    assert_int_equal(sy_envelope_seal(&k, 2, "host/1", 5, "usage", 5, &out), 0);
    for (int field = 0; field < 5; field++) {
        Switchyard__Envelope *m = switchyard__envelope__unpack(NULL, out.len, (uint8_t *)out.data);
        assert_non_null(m);
        char *orig_sender = m->sender;
        char other[] = "host/2";
        switch (field) {
        case 0:
            m->kind = 3;
            break;
        case 1:
            m->sender = other;
            break;
        case 2:
            m->seq = 6;
            break;
        case 3:
            m->version = 2;
            break;
        case 4:
            m->tag.len = 12; /* a truncated tag */
            break;
        }
        size_t n = switchyard__envelope__get_packed_size(m);
        uint8_t *buf = malloc(n);
        switchyard__envelope__pack(m, buf);
        m->sender = orig_sender;
        switchyard__envelope__free_unpacked(m, NULL);
        sy_envelope_t env;
        int rc = sy_envelope_open(&k, buf, n, &env);
        if (field <= 2)
            assert_int_equal(rc, SY_EACCES);
        else
            assert_int_equal(rc, SY_EINVAL);
        sy_envelope_free(&env);
        free(buf);
    }
    sy_buf_free(&out);
}

static void test_garbage_refused(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    expect_refused(&k, "", 0);
    expect_refused(&k, NULL, 0);
    expect_refused(&k, "\x08\x01", 2); /* version 1 and nothing else */
    unsigned st = 12345;
    unsigned char buf[256];
    for (int round = 0; round < 5000; round++) {
        size_t n = (size_t)(round % 256);
        for (size_t i = 0; i < n; i++) {
            st = st * 1103515245u + 12345u;
            buf[i] = (unsigned char)(st >> 16);
        }
        expect_refused(&k, buf, n);
    }
}

static void test_seal_rejects_bad_arguments(void **state)
{
    (void)state;
    sy_envelope_key_t k = key_of(KEY_HEX);
    sy_buf_t out;
    sy_buf_init(&out);
    char sender[SY_ENVELOPE_MAX_SENDER + 2];
    memset(sender, 's', sizeof(sender) - 1);
    sender[sizeof(sender) - 1] = '\0';
    assert_int_equal(sy_envelope_seal(&k, 1, sender, 1, "x", 1, &out), SY_EINVAL);
    assert_int_equal(out.len, 0);
    sender[SY_ENVELOPE_MAX_SENDER] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(sy_envelope_seal(&k, 1, sender, 1, "x", 1, &out), 0);
    sy_envelope_t env;
    assert_int_equal(sy_envelope_open(&k, out.data, out.len, &env), 0);
    assert_string_equal(env.sender, sender);
    sy_envelope_free(&env);
    assert_int_equal(sy_envelope_seal(&k, 1, NULL, 1, "x", 1, &out), SY_EINVAL);
    assert_int_equal(sy_envelope_seal(&k, 1, "c", 1, NULL, 3, &out), SY_EINVAL);
    sy_buf_free(&out);
}

static void test_key_hex(void **state)
{
    (void)state;
    sy_envelope_key_t k;
    memset(&k, 0xaa, sizeof(k));
    assert_int_equal(sy_envelope_key_from_hex(KEY_HEX, 64, &k), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(k.bytes[i], i);
    /* Upper case and surrounding whitespace are accepted. */
    sy_envelope_key_t k2;
    const char *upper = " \n000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\r\n";
    assert_int_equal(sy_envelope_key_from_hex(upper, strlen(upper), &k2), 0);
    assert_memory_equal(&k, &k2, sizeof(k));
    /* Wrong length, non-hex, inner space: refused, out untouched. */
    memset(&k2, 0x55, sizeof(k2));
    assert_int_equal(sy_envelope_key_from_hex(KEY_HEX, 63, &k2), SY_EINVAL);
    char bad[65];
    memcpy(bad, KEY_HEX, 65);
    bad[10] = 'g';
    assert_int_equal(sy_envelope_key_from_hex(bad, 64, &k2), SY_EINVAL);
    bad[10] = ' ';
    assert_int_equal(sy_envelope_key_from_hex(bad, 64, &k2), SY_EINVAL);
    char longer[70];
    snprintf(longer, sizeof(longer), "%s00", KEY_HEX);
    assert_int_equal(sy_envelope_key_from_hex(longer, 66, &k2), SY_EINVAL);
    assert_int_equal(sy_envelope_key_from_hex("", 0, &k2), SY_EINVAL);
    for (size_t i = 0; i < sizeof(k2); i++)
        assert_int_equal(k2.bytes[i], 0x55);

    char hex[65];
    char hex2[65];
    assert_int_equal(sy_envelope_key_generate_hex(hex, sizeof(hex)), 0);
    assert_int_equal(sy_envelope_key_generate_hex(hex2, sizeof(hex2)), 0);
    assert_int_equal(strlen(hex), 64);
    assert_string_not_equal(hex, hex2);
    assert_int_equal(sy_envelope_key_from_hex(hex, 64, &k2), 0);
    assert_int_equal(sy_envelope_key_generate_hex(hex, 64), SY_EINVAL);
}

static void test_key_load_file_and_env(void **state)
{
    (void)state;
    char dir[] = "/tmp/sy-test-env-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/cluster.key", dir);
    sy_envelope_key_t want = key_of(KEY_HEX);
    sy_envelope_key_t got;
    sy_err_t err;

    FILE *fp = fopen(path, "w");
    fprintf(fp, "  %s\n", KEY_HEX);
    fclose(fp);
    sy_err_clear(&err);
    assert_int_equal(sy_envelope_key_load(path, "SY_TEST_KEY_UNUSED", &got, &err), 0);
    assert_memory_equal(&got, &want, sizeof(got));

    /* Bad key material: the message names the file, never the contents. */
    fp = fopen(path, "w");
    fprintf(fp, "%.62s\n", KEY2_HEX);
    fclose(fp);
    memset(&got, 0x11, sizeof(got));
    assert_int_equal(sy_envelope_key_load(path, NULL, &got, &err), SY_EINVAL);
    assert_int_equal(err.code, SY_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "64 hex"));
    assert_null(strstr(err.msg, "ff0102"));
    assert_int_equal(got.bytes[0], 0x11);

    /* A large file is refused too. */
    fp = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fputs(KEY_HEX, fp);
    fclose(fp);
    assert_int_equal(sy_envelope_key_load(path, NULL, &got, &err), SY_EINVAL);

    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.key", dir);
    assert_int_equal(sy_envelope_key_load(missing, NULL, &got, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "none.key"));

    /* From the environment. */
    unsetenv("SY_TEST_CLUSTER_KEY");
    assert_int_equal(sy_envelope_key_load(NULL, "SY_TEST_CLUSTER_KEY", &got, &err), SY_ENOENT);
    assert_non_null(strstr(err.msg, "SY_TEST_CLUSTER_KEY"));
    setenv("SY_TEST_CLUSTER_KEY", KEY2_HEX, 1);
    assert_int_equal(sy_envelope_key_load(NULL, "SY_TEST_CLUSTER_KEY", &got, &err), 0);
    sy_envelope_key_t want2 = key_of(KEY2_HEX);
    assert_memory_equal(&got, &want2, sizeof(got));
    setenv("SY_TEST_CLUSTER_KEY", "not-a-key", 1);
    assert_int_equal(sy_envelope_key_load(NULL, "SY_TEST_CLUSTER_KEY", &got, &err), SY_EINVAL);
    assert_non_null(strstr(err.msg, "SY_TEST_CLUSTER_KEY"));
    assert_null(strstr(err.msg, "not-a-key"));
    unsetenv("SY_TEST_CLUSTER_KEY");
    assert_int_equal(sy_envelope_key_load(NULL, NULL, &got, &err), SY_EINVAL);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nonce_is_random_and_seal_appends),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_every_byte_flip_refused),
        cmocka_unit_test(test_aad_binds_clear_fields),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_seal_rejects_bad_arguments),
        cmocka_unit_test(test_key_hex),
        cmocka_unit_test(test_key_load_file_and_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
