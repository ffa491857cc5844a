/* Budgets in a worker: a ledger of budget leases.
 *
 * Each budget (tenant, team or key; daily or monthly; hard or soft) has a
 * calendar window, in UTC or the tenant's IANA time zone. For the current
 * window the worker holds a lease: the amount it was granted (`granted`),
 * what it settled (`settled`, actual costs of finished requests) and what it
 * reserved (`reserved`, estimated costs of requests in flight). A request
 * reserves its estimated cost on every budget that applies before it is
 * sent and settles with the actual cost when it ends. A hard budget refuses
 * a request whose estimate does not fit in what is left of the lease, so
 * the lease is never exceeded by more than the estimate error of the
 * requests in flight. A soft budget never refuses; past its threshold (or
 * its amount) a request is marked.
 *
 * Where the grants come from:
 *  - lease mode (a control plane is attached): a hard budget is spent only
 *    from the control plane's grants. A request that finds its lease short
 *    is told so (need_lease); sy_budget_lease_requests lists what to ask
 *    (more for short or low leases, renewals before they lapse, releases of
 *    idle ones) and sy_budget_apply_grant takes the answers. A grant lapses
 *    at its expiry unless renewed. If the control plane does not answer in
 *    time, sy_budget_fallback grants the worker its share for availability.
 *  - otherwise (a snapshot file, no control plane): the worker grants itself
 *    its share (amount / live workers) of the budget, minus its share of the
 *    spend the snapshot reports; sy_budget_grant sets a total explicitly.
 *
 * Time is passed in (unix seconds), so tests can move it. Single-threaded. */
#ifndef SY_DP_BUDGET_H
#define SY_DP_BUDGET_H

#include "defs.h"
#include "switchyard.pb-c.h"

#define SY_BUDGET_MAX_HOLDS 4

/* Computes the calendar window containing now: "daily" (midnight to
 * midnight) or "monthly" (first of the month), in time zone tz (IANA name;
 * NULL, "" or "UTC" = UTC). Writes *start and *end (unix seconds) only on
 * success; SY_EINVAL for an unknown period. */
int sy_budget_window(const char *period, const char *tz, int64_t now, int64_t *start, int64_t *end);

/* What a request reserved, for sy_budget_settle. */
typedef struct sy_budget_hold {
    size_t n;
    struct {
        char id[64];          /* budget id (copied; a longer id is truncated) */
        int64_t window_start; /* window the reservation belongs to */
        double reserved;      /* estimate reserved */
    } h[SY_BUDGET_MAX_HOLDS];
} sy_budget_hold_t;

/* The outcome of a reservation. */
typedef struct sy_budget_verdict {
    bool allowed;                         /* reserved on every budget */
    const Switchyard__Budget *refused_by; /* borrowed; the hard budget that refused */
    bool soft_exceeded;                   /* a soft budget is past its threshold or amount */
    bool need_lease;                      /* refused only for want of a grant that may still come */
    double remaining_fraction;            /* of the tightest budget, 0..1 (1 when none) */
    int64_t reset_at;                     /* refused: unix time its window ends */
} sy_budget_verdict_t;

typedef struct sy_budget_ledger sy_budget_ledger_t;

sy_budget_ledger_t *sy_budget_ledger_new(void);
void sy_budget_ledger_free(sy_budget_ledger_t *l);

/* The fraction of budget left across budgets (the smallest), for route
 * rules, without reserving. 1 when none applies. */
double sy_budget_remaining_fraction(sy_budget_ledger_t *l, const Switchyard__Budget *const *b,
                                    size_t n, const char *tz, double share, int64_t now);

/* Reserves est (USD) on each of the n budgets (all or nothing). tz is the
 * tenant's time zone; share this worker's share (1 / live workers) used to
 * grant itself a lease when none was granted for the window (not in lease
 * mode). now is the budget clock (unix seconds), real_ms the real clock for
 * lease expiry. Writes *v always and *hold when allowed. Returns 0, SY_EAGAIN
 * (a hard budget refused; v->need_lease when a grant may still come) or
 * SY_ENOMEM. */
int sy_budget_reserve(sy_budget_ledger_t *l, const Switchyard__Budget *const *b, size_t n,
                      const char *tz, double share, double est, int64_t now, int64_t real_ms,
                      sy_budget_hold_t *hold, sy_budget_verdict_t *v);

/* Lease mode on or off (off by default). */
void sy_budget_set_lease_mode(sy_budget_ledger_t *l, bool on);

/* Lists the leases to ask the control plane about now (real unix ms):
 * short or low ones (want, min), renewals, releases of idle leases. Fills at
 * most cap items (budget_id borrowed from the ledger until its next change)
 * and writes *n. Each listed lease is marked asked until its grant comes
 * (sy_budget_lease_unask puts them back when the request was not sent). */
void sy_budget_lease_requests(sy_budget_ledger_t *l, int64_t real_ms, Switchyard__BudgetLease *out,
                              size_t cap, size_t *n);
void sy_budget_lease_unask(sy_budget_ledger_t *l);
/* Applies one grant from the control plane. */
void sy_budget_apply_grant(sy_budget_ledger_t *l, const Switchyard__BudgetLease *g);
/* The control plane did not answer: a short lease of budget_id gets at
 * least amount x share for the rest of its window. */
void sy_budget_fallback(sy_budget_ledger_t *l, const char *budget_id, double amount_share);

/* Settles a reservation with the actual cost (a reservation from an
 * earlier window is dropped). hold is emptied. */
void sy_budget_settle(sy_budget_ledger_t *l, sy_budget_hold_t *hold, double actual);

/* Sets the granted total of a budget's lease for the window starting at
 * window_start (the control plane's grant). Returns 0 or SY_ENOMEM. */
int sy_budget_grant(sy_budget_ledger_t *l, const char *budget_id, int64_t window_start,
                    double granted);

/* A lease's figures, for tests and stats. Returns 0 or SY_ENOENT. */
typedef struct sy_budget_lease_info {
    int64_t window_start, window_end;
    double granted, settled, reserved;
} sy_budget_lease_info_t;
int sy_budget_lease(const sy_budget_ledger_t *l, const char *budget_id,
                    sy_budget_lease_info_t *out);

#endif
