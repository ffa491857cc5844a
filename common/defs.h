/* Shared definitions: error codes, string views, forward typedefs.
 *
 * Error codes are negative errno values so that libuv results pass through
 * unchanged (libuv's UV_E* are negative errno on Unix as well). */
#ifndef SY_DEFS_H
#define SY_DEFS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SY_OK 0
#define SY_EINVAL (-EINVAL)       /* malformed input or argument */
#define SY_ENOMEM (-ENOMEM)       /* allocation failed */
#define SY_ENOENT (-ENOENT)       /* not found / missing field */
#define SY_E2BIG (-E2BIG)         /* a size cap was exceeded */
#define SY_EIO (-EIO)             /* I/O failure */
#define SY_EACCES (-EACCES)       /* authentication or integrity failure */
#define SY_EEXIST (-EEXIST)       /* already exists / duplicate */
#define SY_EAGAIN (-EAGAIN)       /* try again later */
#define SY_ECANCELED (-ECANCELED) /* stopped on request (e.g. a callback asked to stop) */

/* A borrowed pointer+length view; never assume NUL termination. */
typedef struct sy_str {
    const char *ptr; /* borrowed; may be NULL when len == 0 */
    size_t len;      /* bytes */
} sy_str_t;

#define SY_STR(lit) ((sy_str_t){(lit), sizeof(lit) - 1})
#define SY_STR_NULL ((sy_str_t){NULL, 0})

#define sy_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define SY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SY_UNUSED(x) ((void)(x))

typedef struct sy_err sy_err_t;
typedef struct sy_buf sy_buf_t;
typedef struct sy_json_parser sy_json_parser_t;
typedef struct sy_sse_framer sy_sse_framer_t;
typedef struct sy_sse_event sy_sse_event_t;
typedef struct sy_envelope_key sy_envelope_key_t;
typedef struct sy_envelope sy_envelope_t;
typedef struct sy_config_option sy_config_option_t;

#endif
