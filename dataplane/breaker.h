/* Per-target circuit breaker.
 *
 * A breaker is closed (traffic flows) until the target fails too often:
 * `failures` consecutive failures, or an error rate of at least `error_rate`
 * over the last `window_ms` once `min_requests` outcomes were seen in that
 * window. It is then open for `open_ms`: the router skips the target. After
 * that it is half-open: exactly one request (the probe) is let through; its
 * success closes the breaker, its failure opens it again for another
 * `open_ms`. Time is passed in by the caller (loop milliseconds), so the
 * module is pure and testable. Single-threaded: one set per worker. */
#ifndef SY_DP_BREAKER_H
#define SY_DP_BREAKER_H

#include "defs.h"

typedef enum sy_breaker_state {
    SY_BREAKER_CLOSED = 0, /* traffic flows */
    SY_BREAKER_OPEN,       /* skipped until opened_ms + open_ms */
    SY_BREAKER_HALF_OPEN,  /* one probe allowed */
} sy_breaker_state_t;

typedef struct sy_breaker_config {
    uint32_t failures;     /* consecutive failures that open it; 0 = never by count */
    double error_rate;     /* 0..1 error rate that opens it; 0 = never by rate */
    uint32_t min_requests; /* outcomes needed in the window before the rate counts */
    uint32_t window_ms;    /* rate window (a tumbling window) */
    uint32_t open_ms;      /* time spent open before the probe */
} sy_breaker_config_t;

/* Defaults: 5 consecutive failures, or 50% errors over at least 20
 * requests in 10 s; open for 5 s. */
extern const sy_breaker_config_t sy_breaker_defaults;

typedef struct sy_breaker {
    sy_breaker_state_t state; /* current state (as of the last call) */
    uint32_t consecutive;     /* consecutive failures while closed */
    uint64_t window_start_ms; /* start of the current rate window */
    uint32_t window_total;    /* outcomes in the window */
    uint32_t window_failed;   /* failures in the window */
    uint64_t opened_ms;       /* when it last opened */
    bool probe_out;           /* half-open: the probe is in flight */
    uint64_t opens;           /* times it opened (stats) */
} sy_breaker_t;

/* Zeroes b: closed, no history. */
void sy_breaker_init(sy_breaker_t *b);

/* True when a request may be sent now, without taking anything: closed, or
 * open long enough to be half-open with no probe out. For ordering. */
bool sy_breaker_usable(const sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms);

/* Asks to send one request now. Closed: true. Open past open_ms or
 * half-open without a probe: true, and this request becomes the probe
 * (*probe set to true). Otherwise false. probe may be NULL. */
bool sy_breaker_acquire(sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms,
                        bool *probe);

/* Records the outcome of a request let through by sy_breaker_acquire. A
 * probe's success closes the breaker, its failure reopens it. Returns true
 * when this call opened the breaker. */
bool sy_breaker_record(sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms, bool probe,
                       bool success);

/* A request let through (acquire returned true) ended without an outcome
 * that says anything about the target (e.g. the client left). A probe is
 * given back so that another one can be sent. */
void sy_breaker_release(sy_breaker_t *b, bool probe);

/* "closed", "open" or "half_open" as of now. */
const char *sy_breaker_state_name(const sy_breaker_t *b, const sy_breaker_config_t *cfg,
                                  uint64_t now_ms);

#endif
