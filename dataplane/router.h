/* The router of a worker: turns a route alias into an ordered list of
 * targets for one request.
 *
 * A route's rules are matched in order on the request's task hint
 * (x-switchyard-task / metadata.task), its estimated prompt tokens, the
 * tenant's tier, the latency class (x-switchyard-latency) and the fraction
 * of budget left; the first match names the targets and a strategy that
 * orders them:
 *
 *   priority        the listed order (failover order)
 *   weighted        a weighted random order (weight 0 = only as a last resort)
 *   lowest-latency  ascending median time to first token measured by this
 *                   worker (unmeasured targets first, to measure them);
 *                   targets whose provider reported less than 10% rate-limit
 *                   headroom (x-ratelimit-remaining-* / anthropic-ratelimit-*)
 *                   go last
 *   lowest-cost     ascending price x estimated tokens (prompt + expected output)
 *   least-busy      ascending requests in flight from this worker
 *
 * Targets whose circuit breaker is open are left out; targets cooling down
 * after a Retry-After go last. The router also keeps the per-target live
 * state (breaker, in-flight count, TTFT samples, headroom, cooldown), which
 * outlives snapshots. Single-threaded: one router per worker. */
#ifndef SY_DP_ROUTER_H
#define SY_DP_ROUTER_H

#include "dataplane/breaker.h"
#include "dataplane/snapshot.h"

#define SY_ROUTER_MAX_CANDIDATES 8
#define SY_ROUTER_TTFT_SAMPLES 32

/* What the rules look at. */
typedef struct sy_router_input {
    sy_str_t task;                    /* task hint, empty = none */
    uint64_t prompt_tokens;           /* estimated prompt tokens */
    uint64_t max_output_tokens;       /* the client's max_tokens, 0 = unknown */
    const char *tenant_tier;          /* borrowed; NULL = "" */
    sy_str_t latency_class;           /* e.g. "critical", empty = none */
    double budget_remaining_fraction; /* 0..1 of the tightest budget left; 1 = none */
    int64_t now_unix;                 /* for the price table */
} sy_router_input_t;

/* Live state of one (provider, model) target in this worker. */
typedef struct sy_router_target {
    sy_breaker_t breaker;                   /* circuit breaker */
    uint32_t in_flight;                     /* attempts in progress */
    uint32_t ttft[SY_ROUTER_TTFT_SAMPLES];  /* ring of recent TTFTs (ms) */
    uint32_t n_ttft;                        /* samples held (<= SY_ROUTER_TTFT_SAMPLES) */
    uint32_t ttft_pos;                      /* next slot */
    int64_t rl_req_limit, rl_req_remaining; /* provider's request limit figures, -1 unknown */
    int64_t rl_tok_limit, rl_tok_remaining; /* provider's token limit figures, -1 unknown */
    uint64_t rl_seen_ms;                    /* when the figures were last seen */
    uint64_t cooldown_until_ms;             /* Retry-After from the provider */
    uint64_t attempts;                      /* attempts started (stats) */
    uint64_t failures;                      /* attempts failed (stats) */
} sy_router_target_t;

typedef struct sy_router_candidate {
    const Switchyard__RouteTarget *target; /* borrowed from the snapshot */
    const sy_snapshot_model_t *model;      /* borrowed from the snapshot */
    const Switchyard__Provider *provider;  /* borrowed; the target's provider */
    sy_router_target_t *state;             /* borrowed from the router */
    double score;                          /* the strategy's sort key (lower first) */
} sy_router_candidate_t;

typedef struct sy_router_plan {
    const Switchyard__RouteRule *rule; /* borrowed; the matched rule */
    size_t n;                          /* candidates, in the order to try */
    sy_router_candidate_t c[SY_ROUTER_MAX_CANDIDATES];
    size_t skipped_open;    /* targets left out: breaker open */
    size_t skipped_unknown; /* targets left out: model/provider unknown */
} sy_router_plan_t;

typedef struct sy_router sy_router_t;

/* cfg is copied. NULL on ENOMEM. */
sy_router_t *sy_router_new(const sy_breaker_config_t *cfg);
void sy_router_free(sy_router_t *rt);
const sy_breaker_config_t *sy_router_breaker_config(const sy_router_t *rt);

/* The first rule of route matching in, or NULL. */
const Switchyard__RouteRule *sy_router_match(const Switchyard__Route *route,
                                             const sy_router_input_t *in);

/* Matches a rule and orders its targets (see the strategies above). rnd
 * seeds the weighted order. Writes *out only on success. Returns 0 (n may
 * be 0 when every target is open or unknown), SY_ENOENT when no rule
 * matches, SY_ENOMEM. */
int sy_router_plan(sy_router_t *rt, const sy_snapshot_t *snap, const Switchyard__Route *route,
                   const sy_router_input_t *in, uint64_t now_ms, uint64_t rnd,
                   sy_router_plan_t *out);

/* The live state of a target, created on first use; NULL on ENOMEM. */
sy_router_target_t *sy_router_state(sy_router_t *rt, const char *provider_id, const char *model_id);

/* Records a time to first token. */
void sy_router_observe_ttft(sy_router_target_t *t, uint32_t ms);
/* The pct-th percentile (0..100) of the recent TTFTs; -1 without samples. */
int64_t sy_router_ttft_percentile(const sy_router_target_t *t, unsigned pct);
/* Reads one upstream response header line ("Name: value\r\n" or the name
 * and value apart) for rate-limit figures: x-ratelimit-{limit,remaining}-
 * {requests,tokens} and anthropic-ratelimit-{requests,tokens}-{limit,remaining}. */
void sy_router_observe_header(sy_router_target_t *t, sy_str_t name, sy_str_t value,
                              uint64_t now_ms);
/* The provider's rate-limit headroom (remaining / limit, the smaller of
 * requests and tokens) seen within the last minute; -1 when unknown. */
double sy_router_headroom(const sy_router_target_t *t, uint64_t now_ms);

/* Estimated cost in USD of a request on model m at unix time t. */
double sy_router_estimate_cost(const Switchyard__Model *m, int64_t t, uint64_t prompt_tokens,
                               uint64_t output_tokens);

/* Appends the per-target state as a JSON object to out (for /_switchyard/targets).
 * Returns 0 or SY_ENOMEM. */
int sy_router_stats_json(const sy_router_t *rt, uint64_t now_ms, sy_buf_t *out);

#endif
