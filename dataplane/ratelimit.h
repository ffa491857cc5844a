/* Rate limits of a worker: token buckets for requests per minute (RPM) and
 * tokens per minute (TPM) per key, team, tenant and model.
 *
 * Across N workers each worker enforces its share of a limit (limit x
 * share, share = 1 / live workers from the snapshot), so the total stays
 * within the limit without a shared store. A request bucket holds at most
 * one second's worth of requests (window / 60, at least 1), so a burst
 * cannot take a whole window at once and the accepted rate stays within a
 * few percent of the limit over any period of some seconds. A token bucket
 * holds a whole window's worth; a request is admitted while the bucket
 * holds its estimate (or is full), the estimate is taken at admission and
 * corrected with the actual tokens when the request ends, so the bucket
 * may go into debt.
 *
 * The window is 60 s; tests compress it (SWITCHYARD_RATELIMIT_WINDOW_MS) so
 * that "60 per window" over 10 s behaves as 600 RPM over a minute would.
 * Time is passed in (monotonic milliseconds). Single-threaded. */
#ifndef SY_DP_RATELIMIT_H
#define SY_DP_RATELIMIT_H

#include "defs.h"

typedef enum sy_ratelimit_scope {
    SY_RATELIMIT_KEY = 0,
    SY_RATELIMIT_TEAM,
    SY_RATELIMIT_TENANT,
    SY_RATELIMIT_MODEL,
} sy_ratelimit_scope_t;

/* One limit that applies to a request. */
typedef struct sy_ratelimit_check {
    sy_ratelimit_scope_t scope;
    const char *id; /* borrowed; the key, team, tenant or model id */
    uint64_t rpm;   /* per window, whole cluster; 0 = unlimited */
    uint64_t tpm;   /* per window, whole cluster; 0 = unlimited */
} sy_ratelimit_check_t;

#define SY_RATELIMIT_MAX_CHECKS 4

/* The outcome of an admission, for the 429 and the x-ratelimit-* headers
 * (figures of the tightest applicable limit, scaled back to the cluster:
 * this worker's remaining / share). */
typedef struct sy_ratelimit_result {
    bool allowed;                /* admitted (and taken from every bucket) */
    bool refused_tokens;         /* refused on TPM (else on RPM) when !allowed */
    sy_ratelimit_scope_t scope;  /* the refusing limit's scope */
    bool has_requests;           /* a RPM limit applied */
    uint64_t limit_requests;     /* cluster-wide RPM of the tightest limit */
    uint64_t remaining_requests; /* after this request */
    uint32_t reset_requests_ms;  /* until that bucket is full again */
    bool has_tokens;             /* a TPM limit applied */
    uint64_t limit_tokens;       /* cluster-wide TPM of the tightest limit */
    uint64_t remaining_tokens;   /* after this request's estimate */
    uint32_t reset_tokens_ms;    /* until that bucket is full again */
    uint32_t retry_after_ms;     /* refused: when a retry can succeed */
} sy_ratelimit_result_t;

typedef struct sy_ratelimit sy_ratelimit_t;

/* window_ms: the length of a "minute" (60000 in production). NULL on ENOMEM. */
sy_ratelimit_t *sy_ratelimit_new(uint32_t window_ms);
void sy_ratelimit_free(sy_ratelimit_t *rl);

/* Admits one request estimated at tokens_est tokens against every check
 * (all or nothing: a refused request takes nothing). share is this worker's
 * share of each limit (0 < share <= 1). Writes *res (always). Returns 0 when
 * admitted, SY_EAGAIN when refused, SY_ENOMEM when a bucket could not be
 * created (the request is then admitted for that limit: fail open). */
int sy_ratelimit_admit(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                       uint64_t tokens_est, double share, uint64_t now_ms,
                       sy_ratelimit_result_t *res);

/* Whether sy_ratelimit_admit would admit the request now, without taking
 * anything and without creating buckets (a limit without a bucket yet is
 * full). Writes *res (always) with the figures admit would report, the
 * remaining ones before this request. Returns 0 when there is room,
 * SY_EAGAIN when not. The router asks it for each target's model limit
 * before it chooses the target, so that a target whose model is at its
 * limit is skipped and nothing is charged for a target not attempted. */
int sy_ratelimit_peek(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                      uint64_t tokens_est, double share, uint64_t now_ms,
                      sy_ratelimit_result_t *res);

/* Corrects the TPM buckets of an admitted request with its actual tokens
 * (actual < est gives tokens back; actual > est takes more, into debt). */
void sy_ratelimit_settle(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                         uint64_t tokens_est, uint64_t tokens_actual, uint64_t now_ms);

/* Drops buckets that are full again (idle), bounding memory. */
void sy_ratelimit_sweep(sy_ratelimit_t *rl, uint64_t now_ms);

size_t sy_ratelimit_buckets(const sy_ratelimit_t *rl);
uint32_t sy_ratelimit_window_ms(const sy_ratelimit_t *rl);

/* Formats a duration the way OpenAI's x-ratelimit-reset-* headers do
 * ("1s", "6m0s", "120ms"). Returns the length written (NUL-terminated). */
size_t sy_ratelimit_format_reset(uint32_t ms, char *out, size_t size);

#endif
