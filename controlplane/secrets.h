/* Secrets at rest: provider credentials are sealed with AES-256-GCM under the
 * master key (the envelope format of common/envelope.h, with the owning row's
 * id bound as authenticated data so a sealed value cannot be moved to
 * another row). */
#ifndef SY_SECRETS_H
#define SY_SECRETS_H

#include "buf.h"
#include "envelope.h"
#include "err.h"

/* Loads the master key: from path when non-NULL, else from the environment
 * variable SWITCHYARD_MASTER_KEY when set, else from <data_dir>/master.key,
 * generating that file (mode 0600) on first start. *generated (may be NULL)
 * tells whether a new key was written. Writes *out only on success. */
int sy_secrets_load_master_key(const char *path, const char *data_dir, sy_envelope_key_t *out,
                               bool *generated, sy_err_t *err);

/* Seals plaintext bound to owner_id (e.g. the provider id); appends to out. */
int sy_secrets_seal(const sy_envelope_key_t *key, const char *owner_id, const void *plaintext,
                    size_t len, sy_buf_t *out);

/* Opens a sealed value of owner_id; appends the plaintext to out. Returns
 * SY_EACCES when the key is wrong, the value was tampered with or belongs to
 * another owner, SY_EINVAL when malformed. */
int sy_secrets_open(const sy_envelope_key_t *key, const char *owner_id, const void *sealed,
                    size_t len, sy_buf_t *out);

#endif
