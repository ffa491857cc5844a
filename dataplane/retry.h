/* Retry policy of the failover loop: which outcomes are retried, how long
 * to wait (exponential backoff with full jitter, never less than a
 * Retry-After the upstream asked for), and when to give up (attempt limit,
 * overall deadline). Pure functions; the caller supplies time and
 * randomness. */
#ifndef SY_DP_RETRY_H
#define SY_DP_RETRY_H

#include "defs.h"

typedef struct sy_retry_policy {
    uint32_t max_attempts;   /* attempts in all, the first included; 0 = 3 */
    uint32_t deadline_ms;    /* from the request's start; 0 = none */
    uint32_t base_ms;        /* first backoff ceiling; 0 = 50 */
    uint32_t max_backoff_ms; /* backoff ceiling; 0 = 2000 */
} sy_retry_policy_t;

/* Upstream HTTP statuses worth another attempt: 429, 500, 502, 503, 504,
 * 529. Every other 4xx is the caller's fault and is never retried. */
bool sy_retry_status_retryable(int status);

/* Transfer failures (negative errno from the upstream client) worth another
 * attempt: connection refused/reset/unreachable, timeouts (connect, first
 * byte), I/O errors. Not: client gone (ECANCELED), response too large. */
bool sy_retry_result_retryable(int result);

/* Parses a Retry-After value (delta seconds, or an HTTP date compared with
 * now_unix). Writes *ms only on success; SY_EINVAL otherwise. */
int sy_retry_parse_after(const char *v, int64_t now_unix, int64_t *ms);

/* The wait before attempt number `attempt` (1 = the first retry): a random
 * value in [0, min(max_backoff, base * 2^(attempt-1))] taken from rnd, raised
 * to retry_after_ms when that is >= 0 (and capped at 60 s). */
uint32_t sy_retry_backoff_ms(const sy_retry_policy_t *p, uint32_t attempt, int64_t retry_after_ms,
                             uint64_t rnd);

/* Whether another attempt is allowed: attempts_done < max_attempts and the
 * deadline leaves room for the wait (elapsed_ms + wait_ms < deadline). */
bool sy_retry_may_retry(const sy_retry_policy_t *p, uint32_t attempts_done, uint64_t elapsed_ms,
                        uint32_t wait_ms);

#endif
