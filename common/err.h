/* Error type for cold paths (config, migrations, admin): a code plus a
 * human-readable message written by the callee. Hot paths use constant
 * strings instead (see STYLE.md). */
#ifndef SY_ERR_H
#define SY_ERR_H

#include "defs.h"

struct sy_err {
    int code;      /* SY_E* value, 0 when no error */
    char msg[256]; /* NUL-terminated message, truncated if longer */
};

/* Records code and a printf-style message in err (err may be NULL).
 * Returns code, so callers can write `return sy_err_set(err, SY_EINVAL, ...)`. */
int sy_err_set(sy_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err (err may be NULL). */
void sy_err_clear(sy_err_t *err);

/* A constant description of an SY_E* code (never NULL). */
const char *sy_err_name(int code);

#endif
