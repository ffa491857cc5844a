/* Routing on the request path of a worker: admission (rate limits, budget
 * leases), route resolution, the failover loop's decisions and the
 * per-target bookkeeping, glued to the request (sy_req_t) and the worker.
 *
 * The proxy calls, in order:
 *   sy_routing_begin        after the body is parsed: resolves the model or
 *                           route alias, admits (or answers 429/404/503 and
 *                           returns false), and sets the first target
 *                           (r->model, r->rt.provider)
 *   sy_routing_attempt_start right before each upstream transfer starts
 *   sy_routing_first_byte / sy_routing_upstream_header while it runs
 *   sy_routing_next         when an attempt failed before anything reached
 *                           the client: 0 = answer the failure as usual,
 *                           1 = the next target is set, start it now,
 *                           2 = waiting for a backoff; the worker's resume
 *                           callback starts it later (or, when the targets
 *                           left were skipped for their model limits, the
 *                           request is answered 429 from the timer)
 *   sy_routing_finish       from sy_proxy_finish (every request): settles
 *                           the budget reservation and token estimate,
 *                           records the last attempt's outcome
 *   sy_routing_abort        the client left (a waiting request is dropped)
 *
 * Test knobs (environment, read once per worker): SWITCHYARD_RATELIMIT_WINDOW_MS
 * (the length of a rate-limit "minute", default 60000),
 * SWITCHYARD_BREAKER_FAILURES / _ERROR_RATE / _MIN_REQUESTS / _WINDOW_MS /
 * _OPEN_MS (breaker settings, defaults in breaker.h), and
 * SWITCHYARD_FAKE_NOW_FILE (a file holding the unix time in seconds that
 * budgets use instead of the clock, re-read when it changes). */
#ifndef SY_DP_ROUTING_H
#define SY_DP_ROUTING_H

#include <uv.h>

#include "buf.h"
#include "json.h"
#include "dataplane/budget.h"
#include "dataplane/ratelimit.h"
#include "dataplane/retry.h"
#include "dataplane/router.h"

struct sy_req;
struct sy_worker;

/* A model limit charged for a request: one request and tokens_est tokens
 * were taken from the model's buckets when a target of that model was
 * chosen (once per model and request, however many attempts it gets). */
typedef struct sy_routing_charge {
    sy_ratelimit_check_t check; /* the model's limit (id borrowed from the snapshot) */
    uint64_t tokens_est;        /* tokens taken: prompt + the model's expected output */
} sy_routing_charge_t;

/* Per-request routing state, allocated (from a per-worker pool) only for
 * requests that need it: a route alias, a rate limit or a budget. A plain
 * concrete model without limits carries none (r->rt == NULL). */
typedef struct sy_routing_req {
    const Switchyard__Route *route;       /* borrowed; NULL for a concrete model */
    sy_router_plan_t plan;                /* candidates in the order to try */
    size_t next;                          /* next candidate index */
    uint32_t attempts;                    /* attempts started */
    sy_router_target_t *cur;              /* borrowed; target state of the attempt, NULL none */
    const Switchyard__Provider *provider; /* borrowed; the current attempt's provider */
    struct sy_routing_req *pool_next;     /* the worker's free list while pooled */
    bool cur_probe;                       /* the attempt is its breaker's probe */
    bool cur_open;                        /* the attempt is counted in cur->in_flight */
    int64_t retry_after_ms;               /* Retry-After of the last failure, -1 none */
    sy_retry_policy_t policy;             /* attempts and deadline */
    sy_ratelimit_check_t checks[SY_RATELIMIT_MAX_CHECKS]; /* key, team, tenant limits */
    size_t n_checks;
    bool rl_admitted; /* tokens_est was taken from those TPM buckets */
    sy_routing_charge_t models[SY_ROUTER_MAX_CANDIDATES]; /* model limits charged */
    size_t n_models;
    bool limit_skipped;                  /* a target was skipped: its model limit had no room */
    sy_ratelimit_result_t limit_refusal; /* the skipped one with the smallest wait */
    bool refuse_limit;                   /* on the wait list only to be answered 429 */
    uint64_t max_output;                 /* the client's max_tokens, 0 = not given */
    sy_ratelimit_result_t rl;            /* figures for the x-ratelimit-* headers */
    uint64_t prompt_est;                 /* estimated prompt tokens */
    uint64_t tokens_est;                 /* prompt + expected output tokens */
    sy_budget_hold_t hold;               /* budget reservation */
    bool budget_soft;                    /* a soft budget is exceeded: marked in a header */
    bool refused;                        /* answered 429 by a rate limit or a budget */
    uint64_t refused_retry_ms;           /* when a retry can succeed (Retry-After) */

    sy_buf_t canon;           /* owned; the OpenAI-format request, for a later attempt */
    struct sy_req *wait_next; /* borrowed; the worker's backoff list */
    struct sy_req *wait_prev; /* borrowed */
    uint64_t wait_due_ms;     /* loop time the wait ends */
    bool waiting;             /* on the backoff list */
    bool parked;              /* admitted but for a budget lease: no attempt started yet */
    bool lease_wait;          /* on the wait list for a lease grant (wait_due_ms: give up) */
    double cost_est;          /* estimated cost reserved on budgets (USD) */
} sy_routing_req_t;

typedef struct sy_routing sy_routing_t;

/* Starts a new attempt of r (after sy_routing_next returned 2 and the wait
 * is over). Set by the proxy. */
typedef void (*sy_routing_resume_fn)(struct sy_req *r);

/* Creates the worker's routing state on loop. Writes *out only on success;
 * SY_ENOMEM otherwise. */
int sy_routing_new(uv_loop_t *loop, sy_routing_resume_fn resume, sy_routing_t **out);
/* Closes the timer and frees everything once it is closed. NULL is a no-op. */
void sy_routing_close(sy_routing_t *rt);

/* Wall-clock unix milliseconds as budgets see them (the fake clock file in
 * tests). */
int64_t sy_routing_now_unix_ms(sy_routing_t *rt);

/* Sets r->model and r->provider (the first target) and, when the request
 * needs any, r->rt. Returns false when it answered the client. */
bool sy_routing_begin(struct sy_req *r, sy_str_t model, json_object *root);
void sy_routing_attempt_start(struct sy_req *r);
void sy_routing_first_byte(struct sy_req *r);
void sy_routing_upstream_header(struct sy_req *r, const char *line, size_t n);
int sy_routing_next(struct sy_req *r, int status, int result, const char *retry_after);
void sy_routing_finish(struct sy_req *r, double cost_usd, uint64_t tokens);
void sy_routing_abort(struct sy_req *r);

/* Writes the routing response headers of r ("Name: value\r\n" lines:
 * x-switchyard-route, -rule, -target, -attempts, x-ratelimit-*) into out
 * (NUL-terminated). Returns the length, 0 when there are none or they do not fit. */
size_t sy_routing_head(const struct sy_req *r, char *out, size_t size);

/* Budget leases through the control link (worker.c, once the link is
 * attached): hard budgets are then spent from control-plane grants only; a
 * request whose lease is short waits (up to 1.5 s) for a grant, then falls
 * back to this worker's share so that an absent control plane never fails
 * requests. link is a sy_control_link_t (borrowed; NULL turns leases off). */
void sy_routing_set_link(sy_routing_t *rt, void *link);

#endif
