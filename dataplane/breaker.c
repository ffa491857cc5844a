/* Circuit breaker; see breaker.h. */
#include "dataplane/breaker.h"

#include <string.h>

const sy_breaker_config_t sy_breaker_defaults = {
    .failures = 5,
    .error_rate = 0.5,
    .min_requests = 20,
    .window_ms = 10000,
    .open_ms = 5000,
};

void sy_breaker_init(sy_breaker_t *b)
{
    memset(b, 0, sizeof(*b));
}

/* Moves an open breaker whose time is up to half-open. */
static sy_breaker_state_t current(const sy_breaker_t *b, const sy_breaker_config_t *cfg,
                                  uint64_t now_ms)
{
    if (b->state == SY_BREAKER_OPEN && now_ms >= b->opened_ms + cfg->open_ms)
        return SY_BREAKER_HALF_OPEN;
    return b->state;
}

bool sy_breaker_usable(const sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms)
{
    switch (current(b, cfg, now_ms)) {
    case SY_BREAKER_CLOSED:
        return true;
    case SY_BREAKER_HALF_OPEN:
        return !b->probe_out;
    default:
        return false;
    }
}

bool sy_breaker_acquire(sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms,
                        bool *probe)
{
    sy_breaker_state_t s = current(b, cfg, now_ms);
    if (s == SY_BREAKER_CLOSED) {
        if (probe != NULL)
            *probe = false;
        return true;
    }
    if (s == SY_BREAKER_HALF_OPEN && !b->probe_out) {
        b->state = SY_BREAKER_HALF_OPEN;
        b->probe_out = true;
        if (probe != NULL)
            *probe = true;
        return true;
    }
    return false;
}

static void trip(sy_breaker_t *b, uint64_t now_ms)
{
    b->state = SY_BREAKER_OPEN;
    b->opened_ms = now_ms;
    b->probe_out = false;
    b->consecutive = 0;
    b->window_start_ms = now_ms;
    b->window_total = b->window_failed = 0;
    b->opens++;
}

bool sy_breaker_record(sy_breaker_t *b, const sy_breaker_config_t *cfg, uint64_t now_ms, bool probe,
                       bool success)
{
    if (probe) {
        if (success) {
            b->state = SY_BREAKER_CLOSED;
            b->probe_out = false;
            b->consecutive = 0;
            b->window_start_ms = now_ms;
            b->window_total = b->window_failed = 0;
            return false;
        }
        trip(b, now_ms);
        return true;
    }
    /* An outcome of a request sent while closed that arrives after the
     * breaker opened (requests in flight) changes nothing. */
    if (b->state != SY_BREAKER_CLOSED)
        return false;
    if (cfg->window_ms > 0 && now_ms >= b->window_start_ms + cfg->window_ms) {
        b->window_start_ms = now_ms;
        b->window_total = b->window_failed = 0;
    }
    b->window_total++;
    if (success) {
        b->consecutive = 0;
        return false;
    }
    b->consecutive++;
    b->window_failed++;
    if (cfg->failures > 0 && b->consecutive >= cfg->failures) {
        trip(b, now_ms);
        return true;
    }
    if (cfg->error_rate > 0 && b->window_total >= cfg->min_requests && b->window_total > 0 &&
        (double)b->window_failed >= cfg->error_rate * (double)b->window_total) {
        trip(b, now_ms);
        return true;
    }
    return false;
}

void sy_breaker_release(sy_breaker_t *b, bool probe)
{
    if (probe)
        b->probe_out = false;
}

const char *sy_breaker_state_name(const sy_breaker_t *b, const sy_breaker_config_t *cfg,
                                  uint64_t now_ms)
{
    switch (current(b, cfg, now_ms)) {
    case SY_BREAKER_OPEN:
        return "open";
    case SY_BREAKER_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}
