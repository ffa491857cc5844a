/* Sealed envelopes: AES-256-GCM over the payload, with kind, sender, seq and
 * the format version bound as additional authenticated data.
 *
 * AAD layout (all integers big-endian, so the encoding is unambiguous):
 *   "SYENV" | version u32 | kind u32 | sender length u32 | sender | seq u64 */
#include "envelope.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "err.h"
#include "switchyard.pb-c.h"

#define ENVELOPE_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define AAD_MAX (5 + 4 + 4 + 4 + SY_ENVELOPE_MAX_SENDER + 8)
#define KEY_FILE_MAX 4096

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int sy_envelope_key_from_hex(const char *hex, size_t len, sy_envelope_key_t *out)
{
    if (hex == NULL)
        return SY_EINVAL;
    while (len > 0 && is_space(hex[0])) {
        hex++;
        len--;
    }
    while (len > 0 && is_space(hex[len - 1]))
        len--;
    if (len != 2 * SY_ENVELOPE_KEY_LEN)
        return SY_EINVAL;
    sy_envelope_key_t k;
    for (size_t i = 0; i < SY_ENVELOPE_KEY_LEN; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(&k, sizeof(k));
            return SY_EINVAL;
        }
        k.bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    *out = k;
    OPENSSL_cleanse(&k, sizeof(k));
    return SY_OK;
}

int sy_envelope_key_load(const char *path, const char *env_name, sy_envelope_key_t *out,
                         sy_err_t *err)
{
    if (path != NULL) {
        FILE *fp = fopen(path, "rb");
        if (fp == NULL)
            return sy_err_set(err, -errno, "cluster key file %s: %s", path, strerror(errno));
        char buf[KEY_FILE_MAX + 1];
        size_t n = fread(buf, 1, sizeof(buf), fp);
        bool read_err = ferror(fp) != 0;
        fclose(fp);
        int rc = SY_OK;
        if (read_err)
            rc = sy_err_set(err, SY_EIO, "cluster key file %s: read error", path);
        else if (n > KEY_FILE_MAX)
            rc = sy_err_set(err, SY_EINVAL,
                            "cluster key file %s: too large (expected 64 hex "
                            "characters)",
                            path);
        else if (sy_envelope_key_from_hex(buf, n, out) < 0)
            rc = sy_err_set(err, SY_EINVAL,
                            "cluster key file %s: expected 64 hex characters (32 bytes)", path);
        OPENSSL_cleanse(buf, sizeof(buf));
        return rc;
    }
    if (env_name == NULL)
        return sy_err_set(err, SY_EINVAL, "no cluster key file or environment variable given");
    const char *v = getenv(env_name);
    if (v == NULL || v[0] == '\0')
        return sy_err_set(err, SY_ENOENT, "cluster key: environment variable %s is not set",
                          env_name);
    if (sy_envelope_key_from_hex(v, strlen(v), out) < 0)
        return sy_err_set(err, SY_EINVAL,
                          "cluster key in %s: expected 64 hex characters (32 bytes)", env_name);
    return SY_OK;
}

int sy_envelope_key_generate_hex(char *hex, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    if (hex == NULL || size < 2 * SY_ENVELOPE_KEY_LEN + 1)
        return SY_EINVAL;
    unsigned char k[SY_ENVELOPE_KEY_LEN];
    if (RAND_bytes(k, sizeof(k)) != 1)
        return SY_EIO;
    for (size_t i = 0; i < sizeof(k); i++) {
        hex[2 * i] = digits[k[i] >> 4];
        hex[2 * i + 1] = digits[k[i] & 15];
    }
    hex[2 * SY_ENVELOPE_KEY_LEN] = '\0';
    OPENSSL_cleanse(k, sizeof(k));
    return SY_OK;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t build_aad(unsigned char *aad, uint32_t version, uint32_t kind, const char *sender,
                        size_t sender_len, uint64_t seq)
{
    size_t n = 0;
    memcpy(aad, "SYENV", 5);
    n += 5;
    put_u32(aad + n, version);
    n += 4;
    put_u32(aad + n, kind);
    n += 4;
    put_u32(aad + n, (uint32_t)sender_len);
    n += 4;
    memcpy(aad + n, sender, sender_len);
    n += sender_len;
    put_u32(aad + n, (uint32_t)(seq >> 32));
    put_u32(aad + n + 4, (uint32_t)seq);
    n += 8;
    return n;
}

int sy_envelope_seal(const sy_envelope_key_t *key, uint32_t kind, const char *sender, uint64_t seq,
                     const void *payload, size_t len, sy_buf_t *out)
{
    if (key == NULL || sender == NULL || out == NULL || (payload == NULL && len > 0))
        return SY_EINVAL;
    size_t sender_len = strlen(sender);
    if (sender_len > SY_ENVELOPE_MAX_SENDER)
        return SY_EINVAL;
    if (len > INT_MAX - TAG_LEN)
        return SY_E2BIG;

    unsigned char nonce[NONCE_LEN];
    unsigned char tag[TAG_LEN];
    unsigned char aad[AAD_MAX];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return SY_EIO;
    size_t aad_len = build_aad(aad, ENVELOPE_VERSION, kind, sender, sender_len, seq);

    unsigned char *ct = malloc(len ? len : 1);
    if (ct == NULL)
        return SY_ENOMEM;
    int rc = SY_EIO;
    int outl = 0;
    int total = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = SY_ENOMEM;
        goto out_ct;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
        goto out_ctx;
    if (len > 0) {
        if (EVP_EncryptUpdate(ctx, ct, &outl, payload, (int)len) != 1)
            goto out_ctx;
        total = outl;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + total, &outl) != 1)
        goto out_ctx;
    total += outl;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out_ctx;

    Switchyard__Envelope msg = SWITCHYARD__ENVELOPE__INIT;
    msg.version = ENVELOPE_VERSION;
    msg.kind = (Switchyard__MessageKind)kind;
    msg.sender = (char *)sender;
    msg.seq = seq;
    msg.nonce.data = nonce;
    msg.nonce.len = NONCE_LEN;
    msg.ciphertext.data = ct;
    msg.ciphertext.len = (size_t)total;
    msg.tag.data = tag;
    msg.tag.len = TAG_LEN;
    size_t packed = switchyard__envelope__get_packed_size(&msg);
    rc = sy_buf_reserve(out, packed);
    if (rc < 0)
        goto out_ctx;
    out->len += switchyard__envelope__pack(&msg, (uint8_t *)out->data + out->len);
    out->data[out->len] = '\0';
    rc = SY_OK;
out_ctx:
    EVP_CIPHER_CTX_free(ctx);
out_ct:
    OPENSSL_cleanse(ct, len ? len : 1);
    free(ct);
    return rc;
}

static void env_clear(sy_envelope_t *env)
{
    env->kind = 0;
    env->sender[0] = '\0';
    env->seq = 0;
    sy_buf_init(&env->payload);
}

int sy_envelope_open(const sy_envelope_key_t *key, const void *msg, size_t len, sy_envelope_t *env)
{
    env_clear(env);
    if (key == NULL || (msg == NULL && len > 0))
        return SY_EINVAL;
    Switchyard__Envelope *m = switchyard__envelope__unpack(NULL, len, msg);
    if (m == NULL)
        return SY_EINVAL;
    int rc = SY_EINVAL;
    size_t sender_len = m->sender ? strlen(m->sender) : 0;
    /* Unknown fields are refused: nothing outside the authenticated fields
     * may ride along in a sealed message. */
    if (m->version != ENVELOPE_VERSION || m->base.n_unknown_fields != 0 ||
        sender_len > SY_ENVELOPE_MAX_SENDER || m->nonce.len != NONCE_LEN || m->tag.len != TAG_LEN ||
        m->ciphertext.len > INT_MAX)
        goto out_msg;

    unsigned char aad[AAD_MAX];
    size_t aad_len = build_aad(aad, m->version, (uint32_t)m->kind, m->sender ? m->sender : "",
                               sender_len, m->seq);
    size_t ct_len = m->ciphertext.len;
    rc = sy_buf_reserve(&env->payload, ct_len);
    if (rc < 0)
        goto out_msg;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = SY_ENOMEM;
        goto out_msg;
    }
    int outl = 0;
    int total = 0;
    rc = SY_EIO;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, m->nonce.data) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
        goto out_ctx;
    if (ct_len > 0) {
        if (EVP_DecryptUpdate(ctx, (unsigned char *)env->payload.data, &outl, m->ciphertext.data,
                              (int)ct_len) != 1)
            goto out_ctx;
        total = outl;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, m->tag.data) != 1)
        goto out_ctx;
    if (EVP_DecryptFinal_ex(ctx, (unsigned char *)env->payload.data + total, &outl) != 1) {
        rc = SY_EACCES;
        goto out_ctx;
    }
    total += outl;
    env->payload.len = (size_t)total;
    env->payload.data[total] = '\0';
    env->kind = (uint32_t)m->kind;
    memcpy(env->sender, m->sender ? m->sender : "", sender_len + 1);
    env->seq = m->seq;
    rc = SY_OK;
out_ctx:
    EVP_CIPHER_CTX_free(ctx);
out_msg:
    switchyard__envelope__free_unpacked(m, NULL);
    if (rc < 0) {
        if (env->payload.data)
            OPENSSL_cleanse(env->payload.data, env->payload.cap);
        sy_buf_free(&env->payload);
        env_clear(env);
    }
    return rc;
}

void sy_envelope_free(sy_envelope_t *env)
{
    if (env == NULL)
        return;
    sy_buf_free(&env->payload);
    env_clear(env);
}
