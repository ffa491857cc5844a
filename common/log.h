/* Structured logging: one JSON line per event, written with a single
 * write(2) so lines from several processes sharing a file never interleave.
 * Never pass a secret (API key, token, credential) to these functions: use
 * sy_log_key_prefix() for a displayable prefix of a key. */
#ifndef SY_LOG_H
#define SY_LOG_H

#include "defs.h"

typedef enum sy_log_level {
    SY_LOG_DEBUG = 0,
    SY_LOG_INFO = 1,
    SY_LOG_WARN = 2,
    SY_LOG_ERROR = 3,
} sy_log_level_t;

/* Opens the log. path NULL or "-" means stderr. component names the process
 * ("dataplane", "control", ...) and is copied. Returns 0 or SY_E*. */
int sy_log_open(const char *path, sy_log_level_t level, const char *component);

/* Reopens the log file (after rotation; on SIGHUP). Returns 0 or SY_E*. */
int sy_log_reopen(void);

/* Async-signal-safe: asks for a reopen, done by the next logging call on any
 * thread. For daemons that catch SIGHUP with a plain signal handler; a libuv
 * uv_signal_t callback may call sy_log_reopen() directly instead. */
void sy_log_request_reopen(void);

/* Closes the log; later calls write to stderr. */
void sy_log_close(void);

/* Parses "debug"/"info"/"warn"/"error". Writes *out only on success. */
int sy_log_level_parse(const char *s, sy_log_level_t *out);

bool sy_log_enabled(sy_log_level_t level);

/* Logs {"ts":..,"level":..,"component":..,"pid":..,"event":event,"msg":<fmt, JSON-escaped>}. */
void sy_log(sy_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs an event with extra pre-built JSON members: fields is a fragment such
 * as "\"worker\":3,\"status\":200" (no braces), appended to the line as is. */
void sy_log_fields(sy_log_level_t level, const char *event, const char *fields, size_t len);

/* Writes one complete line (a newline is added) to the log as is; used by the
 * access log, which builds its own JSON. */
void sy_log_line(const char *line, size_t len);

/* Writes a displayable prefix of a secret key (at most 8 characters, then
 * "…") into out (NUL-terminated, out_size >= 16). */
void sy_log_key_prefix(const char *key, size_t key_len, char *out, size_t out_size);

#define SY_LOG_DEBUG_(ev, ...)                                                                     \
    (sy_log_enabled(SY_LOG_DEBUG) ? sy_log(SY_LOG_DEBUG, ev, __VA_ARGS__) : (void)0)

#endif
