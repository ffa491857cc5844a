/* Budget leases, the control plane's side (issue 6).
 *
 * Each data-plane worker holds, per hard budget and window, a lease: a total
 * amount it may spend. The worker reports what it has used (settled plus
 * reserved) and asks for more; this module grants slices of what is left:
 *
 *   exposure(worker) = spend of its earlier boots + max(granted, used)
 *   committed        = max(spend the snapshot knows, sum of exposures)
 *   available        = amount - committed
 *   slice            = min(want, max(available / live workers, min), available)
 *
 * so the sum of what workers may spend never passes the amount; a hard
 * budget is then exceeded only by the estimate error of requests in flight.
 * A grant lapses after ttl_ms unless renewed (the worker then spends nothing
 * more from it); a lapsed lease is reclaimed (granted := used) after a grace
 * period, and a worker gives back what it did not use (release). The worker
 * is authoritative about what it holds, so after a control-plane restart the
 * state rebuilds itself from the next requests. Single-threaded. */
#ifndef SY_CP_LEASES_H
#define SY_CP_LEASES_H

#include "defs.h"
#include "switchyard.pb-c.h"

typedef struct sy_leases sy_leases_t;

/* ttl_ms: how long a grant lasts without renewal (0 = 30 s). NULL on ENOMEM. */
sy_leases_t *sy_leases_new(int64_t ttl_ms);
void sy_leases_free(sy_leases_t *ls);

/* Takes the budgets of a newly built snapshot (copied: id, hard, amount,
 * window, spend) and the live worker count. Returns 0 or SY_ENOMEM. */
int sy_leases_set_budgets(sy_leases_t *ls, Switchyard__Budget *const *budgets, size_t n,
                          uint32_t live_workers);

/* Answers one LeaseRequest at unix time now_ms. Writes *out (a newly
 * allocated grant, free with sy_leases_grant_free) only on success; SY_EINVAL
 * for a request without worker or boot id, SY_ENOMEM. */
int sy_leases_handle(sy_leases_t *ls, const Switchyard__LeaseRequest *req, int64_t now_ms,
                     Switchyard__LeaseGrant **out);
void sy_leases_grant_free(Switchyard__LeaseGrant *g);

/* The committed amount of a budget in a window (for tests and stats).
 * Returns 0 or SY_ENOENT. */
int sy_leases_committed(const sy_leases_t *ls, const char *budget_id, int64_t window_start,
                        double *out);

#endif
