/* Secrets at rest: see secrets.h. */
#include "secrets.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_KIND 0x5ec /* envelope kind reserved for values at rest */

int sy_secrets_load_master_key(const char *path, const char *data_dir, sy_envelope_key_t *out,
                               bool *generated, sy_err_t *err)
{
    bool gen = false;
    if (path == NULL) {
        const char *env = getenv("SWITCHYARD_MASTER_KEY");
        if (env != NULL && env[0] != '\0') {
            int rc = sy_envelope_key_load(NULL, "SWITCHYARD_MASTER_KEY", out, err);
            if (rc == 0 && generated)
                *generated = false;
            return rc;
        }
    }
    char def[4096];
    if (path == NULL) {
        snprintf(def, sizeof(def), "%s/master.key", data_dir);
        path = def;
        if (access(path, F_OK) != 0) {
            char hex[65];
            int rc = sy_envelope_key_generate_hex(hex, sizeof(hex));
            if (rc != 0)
                return sy_err_set(err, rc, "cannot generate a master key");
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0)
                return sy_err_set(err, SY_EIO, "cannot create %s: %s", path, strerror(errno));
            hex[64] = '\n';
            ssize_t w = write(fd, hex, 65);
            int frc = fsync(fd);
            close(fd);
            if (w != 65 || frc != 0) {
                unlink(path);
                return sy_err_set(err, SY_EIO, "cannot write %s", path);
            }
            gen = true;
        }
    }
    int rc = sy_envelope_key_load(path, NULL, out, err);
    if (rc == 0 && generated)
        *generated = gen;
    return rc;
}

int sy_secrets_seal(const sy_envelope_key_t *key, const char *owner_id, const void *plaintext,
                    size_t len, sy_buf_t *out)
{
    if (strlen(owner_id) > SY_ENVELOPE_MAX_SENDER)
        return SY_EINVAL;
    return sy_envelope_seal(key, SECRET_KIND, owner_id, 0, plaintext, len, out);
}

int sy_secrets_open(const sy_envelope_key_t *key, const char *owner_id, const void *sealed,
                    size_t len, sy_buf_t *out)
{
    sy_envelope_t env;
    int rc = sy_envelope_open(key, sealed, len, &env);
    if (rc != 0)
        return rc;
    if (env.kind != SECRET_KIND || strcmp(env.sender, owner_id) != 0)
        rc = SY_EACCES;
    else
        rc = sy_buf_append(out, env.payload.data, env.payload.len);
    sy_envelope_free(&env);
    return rc;
}
