/* Sealed envelopes for every nanomsg message: the payload is encrypted and
 * authenticated with AES-256-GCM under the cluster key; kind, sender and seq
 * travel in clear but are bound as additional authenticated data. The wire
 * form is the protobuf `Envelope` (proto/switchyard.proto). */
#ifndef SY_ENVELOPE_H
#define SY_ENVELOPE_H

#include "buf.h"

#define SY_ENVELOPE_KEY_LEN 32
#define SY_ENVELOPE_MAX_SENDER 128

struct sy_envelope_key {
    unsigned char bytes[SY_ENVELOPE_KEY_LEN]; /* the AES-256 key */
};

struct sy_envelope {
    uint32_t kind;                           /* SY_MSG_* (proto MessageKind) */
    char sender[SY_ENVELOPE_MAX_SENDER + 1]; /* NUL-terminated */
    uint64_t seq;                            /* sender's sequence number */
    sy_buf_t payload;                        /* owned; decrypted bytes */
};

/* Loads the key: from the file at path if path is non-NULL, else from the
 * environment variable env_name. Either holds 64 hex characters (surrounding
 * whitespace ignored). Writes *out only on success. */
int sy_envelope_key_load(const char *path, const char *env_name, sy_envelope_key_t *out,
                         sy_err_t *err);
int sy_envelope_key_from_hex(const char *hex, size_t len, sy_envelope_key_t *out);
/* Writes a new random key as 64 hex characters + NUL into hex (>= 65 bytes). */
int sy_envelope_key_generate_hex(char *hex, size_t size);

/* Seals payload into out (appended). Returns 0 or SY_E*. */
int sy_envelope_seal(const sy_envelope_key_t *key, uint32_t kind, const char *sender, uint64_t seq,
                     const void *payload, size_t len, sy_buf_t *out);

/* Opens msg into *env (initialized by this call; free with sy_envelope_free).
 * Returns SY_EINVAL for a malformed message, SY_EACCES when authentication
 * fails (wrong key or tampering); env is then empty. */
int sy_envelope_open(const sy_envelope_key_t *key, const void *msg, size_t len, sy_envelope_t *env);
void sy_envelope_free(sy_envelope_t *env);

#endif
