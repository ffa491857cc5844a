/* Token-bucket rate limits; see ratelimit.h. */
#include "dataplane/ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/strmap.h"

typedef struct bucket {
    double level;     /* available units (may be negative: debt) */
    double capacity;  /* units when full */
    double rate;      /* units per millisecond */
    uint64_t last_ms; /* when level was last brought up to date */
    uint64_t limit;   /* cluster-wide limit per window it was sized for */
    double share;     /* share it was sized for */
    bool init;        /* sized at least once */
} bucket_t;

typedef struct limits {
    bucket_t req; /* RPM */
    bucket_t tok; /* TPM */
} limits_t;

struct sy_ratelimit {
    sy_strmap_t *map;   /* owned; "<scope>:<id>" -> limits_t */
    uint32_t window_ms; /* length of a "minute" */
};

sy_ratelimit_t *sy_ratelimit_new(uint32_t window_ms)
{
    sy_ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->window_ms = window_ms ? window_ms : 60000;
    rl->map = sy_strmap_new(sizeof(limits_t));
    if (rl->map == NULL) {
        free(rl);
        return NULL;
    }
    return rl;
}

void sy_ratelimit_free(sy_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    sy_strmap_free(rl->map);
    free(rl);
}

uint32_t sy_ratelimit_window_ms(const sy_ratelimit_t *rl)
{
    return rl->window_ms;
}

size_t sy_ratelimit_buckets(const sy_ratelimit_t *rl)
{
    return sy_strmap_count(rl->map);
}

/* Brings b up to date for limit x share at now; a changed limit or share
 * resizes it, keeping the fraction used. */
static void refill(bucket_t *b, uint64_t limit, double share, bool per_second_burst,
                   uint32_t window_ms, uint64_t now_ms)
{
    if (!b->init || b->limit != limit || b->share != share) {
        double own = (double)limit * share;
        double cap = per_second_burst ? own / 60.0 : own;
        if (cap < 1.0)
            cap = 1.0;
        double frac = b->init && b->capacity > 0 ? b->level / b->capacity : 1.0;
        b->capacity = cap;
        b->level = frac * cap;
        b->rate = own / (double)window_ms;
        b->limit = limit;
        b->share = share;
        b->last_ms = now_ms;
        b->init = true;
        return;
    }
    if (now_ms > b->last_ms) {
        b->level += (double)(now_ms - b->last_ms) * b->rate;
        if (b->level > b->capacity)
            b->level = b->capacity;
        b->last_ms = now_ms;
    }
}

static uint32_t ms_until(const bucket_t *b, double level)
{
    if (b->level >= level)
        return 0;
    double ms = ceil((level - b->level) / b->rate);
    return ms > 3.6e6 ? 3600000u : (uint32_t)ms;
}

static limits_t *lookup(sy_ratelimit_t *rl, const sy_ratelimit_check_t *c, bool create)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%d:%s", (int)c->scope, c->id ? c->id : "");
    if (n < 0)
        return NULL;
    size_t len = (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1;
    sy_str_t k = {key, len};
    return create ? sy_strmap_upsert(rl->map, k, NULL) : sy_strmap_get(rl->map, k);
}

/* What a bucket level means for the cluster: the whole units this worker
 * can still admit, times the number of workers sharing the limit (so a
 * refusal, below one unit, always reports 0). */
static uint64_t scaled(double v, double share)
{
    if (v < 1.0)
        return 0;
    return (uint64_t)floor(floor(v) / share + 1e-9);
}

/* sy_ratelimit_admit (take) and sy_ratelimit_peek (!take): the same
 * verdict and figures, so a peek that says "room" is an admission that
 * succeeds at the same now_ms. A peek creates no bucket: one that does not
 * exist yet is full. */
static int judge(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                 uint64_t tokens_est, double share, uint64_t now_ms, bool take,
                 sy_ratelimit_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->allowed = true;
    if (!(share > 0) || share > 1)
        share = 1;
    limits_t *ls[SY_RATELIMIT_MAX_CHECKS] = {0};
    if (n > SY_RATELIMIT_MAX_CHECKS)
        n = SY_RATELIMIT_MAX_CHECKS;
    int rc = 0;
    /* Pass 1: bring every bucket up to date and look for a refusal. */
    for (size_t i = 0; i < n; i++) {
        const sy_ratelimit_check_t *c = &checks[i];
        if (c->rpm == 0 && c->tpm == 0)
            continue;
        ls[i] = lookup(rl, c, take);
        if (ls[i] == NULL) {
            if (take)
                rc = SY_ENOMEM;
            continue;
        }
        if (c->rpm > 0) {
            bucket_t *b = &ls[i]->req;
            refill(b, c->rpm, share, true, rl->window_ms, now_ms);
            if (b->level < 1.0 && res->allowed) {
                res->allowed = false;
                res->refused_tokens = false;
                res->scope = c->scope;
                res->retry_after_ms = ms_until(b, 1.0);
            }
        }
        if (c->tpm > 0) {
            bucket_t *b = &ls[i]->tok;
            refill(b, c->tpm, share, false, rl->window_ms, now_ms);
            double need = (double)tokens_est < b->capacity ? (double)tokens_est : b->capacity;
            if (b->level < need && res->allowed) {
                res->allowed = false;
                res->refused_tokens = true;
                res->scope = c->scope;
                res->retry_after_ms = ms_until(b, need);
            }
        }
    }
    /* Pass 2: take from every bucket when admitted; report the tightest. */
    double best_req = INFINITY, best_tok = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (ls[i] == NULL)
            continue;
        const sy_ratelimit_check_t *c = &checks[i];
        if (c->rpm > 0) {
            bucket_t *b = &ls[i]->req;
            if (res->allowed && take)
                b->level -= 1.0;
            double rem = b->level / share;
            if (!res->has_requests || rem < best_req) {
                best_req = rem;
                res->has_requests = true;
                res->limit_requests = c->rpm;
                res->remaining_requests = scaled(b->level, share);
                res->reset_requests_ms = ms_until(b, b->capacity);
            }
        }
        if (c->tpm > 0) {
            bucket_t *b = &ls[i]->tok;
            if (res->allowed && take)
                b->level -= (double)tokens_est;
            double rem = b->level / share;
            if (!res->has_tokens || rem < best_tok) {
                best_tok = rem;
                res->has_tokens = true;
                res->limit_tokens = c->tpm;
                res->remaining_tokens = scaled(b->level, share);
                res->reset_tokens_ms = ms_until(b, b->capacity);
            }
        }
    }
    if (!res->allowed)
        return SY_EAGAIN;
    return rc;
}

int sy_ratelimit_admit(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                       uint64_t tokens_est, double share, uint64_t now_ms,
                       sy_ratelimit_result_t *res)
{
    return judge(rl, checks, n, tokens_est, share, now_ms, true, res);
}

int sy_ratelimit_peek(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                      uint64_t tokens_est, double share, uint64_t now_ms,
                      sy_ratelimit_result_t *res)
{
    return judge(rl, checks, n, tokens_est, share, now_ms, false, res);
}

void sy_ratelimit_settle(sy_ratelimit_t *rl, const sy_ratelimit_check_t *checks, size_t n,
                         uint64_t tokens_est, uint64_t tokens_actual, uint64_t now_ms)
{
    if (tokens_est == tokens_actual)
        return;
    if (n > SY_RATELIMIT_MAX_CHECKS)
        n = SY_RATELIMIT_MAX_CHECKS;
    for (size_t i = 0; i < n; i++) {
        if (checks[i].tpm == 0)
            continue;
        limits_t *l = lookup(rl, &checks[i], false);
        if (l == NULL || !l->tok.init)
            continue;
        bucket_t *b = &l->tok;
        refill(b, b->limit, b->share, false, rl->window_ms, now_ms);
        b->level += (double)tokens_est - (double)tokens_actual;
        if (b->level > b->capacity)
            b->level = b->capacity;
    }
}

static bool idle(sy_str_t key, void *value, void *arg)
{
    (void)key;
    limits_t *l = value;
    uint64_t now = *(const uint64_t *)arg;
    bool req_full = !l->req.init ||
                    l->req.level + (double)(now - l->req.last_ms) * l->req.rate >= l->req.capacity;
    bool tok_full = !l->tok.init ||
                    l->tok.level + (double)(now - l->tok.last_ms) * l->tok.rate >= l->tok.capacity;
    return req_full && tok_full;
}

void sy_ratelimit_sweep(sy_ratelimit_t *rl, uint64_t now_ms)
{
    sy_strmap_sweep(rl->map, idle, &now_ms);
}

size_t sy_ratelimit_format_reset(uint32_t ms, char *out, size_t size)
{
    int n;
    if (ms < 1000)
        n = snprintf(out, size, "%ums", ms);
    else if (ms < 60000)
        n = snprintf(out, size, "%us", (ms + 999) / 1000);
    else
        n = snprintf(out, size, "%um%us", ms / 60000, ((ms % 60000) + 999) / 1000);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}
