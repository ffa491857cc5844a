/* Growable byte buffers and string-view helpers. */
#ifndef SY_BUF_H
#define SY_BUF_H

#include <stdarg.h>
#include "defs.h"

struct sy_buf {
    char *data; /* owned; NUL-terminated when len > 0 (one spare byte kept) */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

void sy_buf_init(sy_buf_t *b);
/* Ensures room for extra more bytes (plus the NUL). Returns 0 or SY_ENOMEM. */
int sy_buf_reserve(sy_buf_t *b, size_t extra);
int sy_buf_append(sy_buf_t *b, const void *p, size_t n);
int sy_buf_append_str(sy_buf_t *b, const char *s);
int sy_buf_append_view(sy_buf_t *b, sy_str_t s);
int sy_buf_appendf(sy_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sy_buf_vappendf(sy_buf_t *b, const char *fmt, va_list ap);
/* Appends s as a quoted, escaped JSON string (control characters as \u00XX). */
int sy_buf_append_json_string(sy_buf_t *b, const char *s, size_t n);

/* True when byte c stands for itself inside a JSON string (inline: writers
 * test every byte with it). */
static inline bool sy_buf_json_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/* Writes the JSON string escape of byte c (one that is not plain) to esc
 * and returns its length, 2 or 6. For writers with their own buffer (the
 * logger) as well as sy_buf_append_json_string. */
size_t sy_buf_json_escape(unsigned char c, char esc[6]);
/* Drops the first n bytes (n > len drops everything). */
void sy_buf_consume(sy_buf_t *b, size_t n);
/* Sets len to 0, keeps the allocation. */
void sy_buf_reset(sy_buf_t *b);
/* Frees the allocation; b is left initialized and empty. NULL is a no-op. */
void sy_buf_free(sy_buf_t *b);
/* Hands the allocation to the caller (who frees it) and empties b. */
char *sy_buf_steal(sy_buf_t *b, size_t *len);

/* String views. */
sy_str_t sy_str_from_cstr(const char *s);
bool sy_str_eq(sy_str_t a, sy_str_t b);
bool sy_str_eq_cstr(sy_str_t a, const char *s);
bool sy_str_case_eq_cstr(sy_str_t a, const char *s); /* ASCII case-insensitive */
bool sy_str_has_prefix(sy_str_t a, const char *prefix);
sy_str_t sy_str_trim(sy_str_t a); /* strips ASCII spaces and tabs */
/* Parses a decimal unsigned integer filling the whole view; writes *out only on success. */
int sy_str_to_u64(sy_str_t a, uint64_t *out);
/* Returns a NUL-terminated heap copy (caller frees), or NULL on ENOMEM. */
char *sy_str_dup(sy_str_t a);

#endif
