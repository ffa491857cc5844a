/* Error type for cold paths: a code plus a formatted message. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int sy_err_set(sy_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    /* vsnprintf truncates and always NUL-terminates within the array. */
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        err->msg[0] = '\0';
    return code;
}

void sy_err_clear(sy_err_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *sy_err_name(int code)
{
    switch (code) {
    case SY_OK:
        return "ok";
    case SY_EINVAL:
        return "invalid argument";
    case SY_ENOMEM:
        return "out of memory";
    case SY_ENOENT:
        return "not found";
    case SY_E2BIG:
        return "too large";
    case SY_EIO:
        return "I/O error";
    case SY_EACCES:
        return "access denied";
    case SY_EEXIST:
        return "already exists";
    case SY_EAGAIN:
        return "try again";
    case SY_ECANCELED:
        return "canceled";
    default:
        return "unknown error";
    }
}
