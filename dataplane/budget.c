/* Budget leases; see budget.h. */
#include "dataplane/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dataplane/strmap.h"

typedef struct lease {
    char id[64];          /* budget id (copied, truncated) */
    int64_t window_start; /* current window */
    int64_t window_end;
    double amount;       /* the budget's amount, as of the last reservation */
    double granted;      /* USD this worker may spend in the window */
    double settled;      /* actual costs settled */
    double reserved;     /* estimates of requests in flight */
    bool explicit_grant; /* granted by sy_budget_grant or the control plane */
    bool leased;         /* lease mode: only control-plane grants count */
    bool fallback;       /* lease mode, control plane away: self-granted share */
    int64_t expires_ms;  /* real unix ms the grant lapses, 0 = never */
    bool exhausted;      /* the control plane has nothing left in the window */
    bool short_;         /* a request found it short: ask for more */
    bool asked;          /* a request for this lease is on its way */
    bool released;       /* unused part given back; a new need asks again */
    double want_min;     /* the largest estimate that found it short */
    double last_slice;   /* the last addition granted */
    int64_t last_use_ms; /* real unix ms of the last reservation */
} lease_t;

struct sy_budget_ledger {
    sy_strmap_t *leases; /* owned; budget id -> lease_t */
    bool lease_mode;     /* hard budgets are spent from control-plane grants only */
};

static bool is_utc(const char *tz)
{
    return tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0;
}

/* Converts broken-down local time in tz to unix time. Cold path: once per
 * window per budget. The worker is single-threaded, so swapping TZ is safe. */
static int64_t mk_time(struct tm *tm, const char *tz)
{
    if (is_utc(tz))
        return (int64_t)timegm(tm);
    char *old = getenv("TZ");
    char saved[128] = "";
    bool had = old != NULL;
    if (had)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("TZ", tz, 1);
    tzset();
    tm->tm_isdst = -1;
    int64_t t = (int64_t)mktime(tm);
    if (had)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    return t;
}

static void break_time(int64_t now, const char *tz, struct tm *tm)
{
    time_t t = (time_t)now;
    if (is_utc(tz)) {
        gmtime_r(&t, tm);
        return;
    }
    char *old = getenv("TZ");
    char saved[128] = "";
    bool had = old != NULL;
    if (had)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("TZ", tz, 1);
    tzset();
    localtime_r(&t, tm);
    if (had)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
}

int sy_budget_window(const char *period, const char *tz, int64_t now, int64_t *start, int64_t *end)
{
    bool daily;
    if (period != NULL && strcmp(period, "daily") == 0)
        daily = true;
    else if (period != NULL && strcmp(period, "monthly") == 0)
        daily = false;
    else
        return SY_EINVAL;
    struct tm tm;
    break_time(now, tz, &tm);
    struct tm a = {0}, b = {0};
    a.tm_year = b.tm_year = tm.tm_year;
    a.tm_mon = b.tm_mon = tm.tm_mon;
    a.tm_mday = b.tm_mday = daily ? tm.tm_mday : 1;
    if (daily)
        b.tm_mday += 1; /* mktime/timegm normalize the overflow */
    else
        b.tm_mon += 1;
    int64_t s = mk_time(&a, tz);
    int64_t e = mk_time(&b, tz);
    if (e <= s)
        return SY_EINVAL;
    *start = s;
    *end = e;
    return 0;
}

sy_budget_ledger_t *sy_budget_ledger_new(void)
{
    sy_budget_ledger_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->leases = sy_strmap_new(sizeof(lease_t));
    if (l->leases == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

void sy_budget_ledger_free(sy_budget_ledger_t *l)
{
    if (l == NULL)
        return;
    sy_strmap_free(l->leases);
    free(l);
}

/* The lease of b for the window containing now, rolled over or
 * self-granted as needed. NULL on ENOMEM or a bad period. */
static lease_t *lease_for(sy_budget_ledger_t *l, const Switchyard__Budget *b, const char *tz,
                          double share, int64_t now)
{
    bool created = false;
    lease_t *ls = sy_strmap_upsert(l->leases, sy_str_from_cstr(b->id), &created);
    if (ls == NULL)
        return NULL;
    bool leased = l->lease_mode && b->hard;
    if (!created && now >= ls->window_start && now < ls->window_end) {
        ls->amount = b->amount_usd;
        if (!ls->explicit_grant && !ls->leased)
            ls->granted = b->amount_usd * share;
        return ls;
    }
    int64_t s, e;
    if (sy_budget_window(b->period, tz, now, &s, &e) != 0)
        return NULL;
    if (!created && ls->explicit_grant && ls->window_start == s) {
        ls->window_end = e;
        return ls;
    }
    memset(ls, 0, sizeof(*ls));
    snprintf(ls->id, sizeof(ls->id), "%s", b->id);
    ls->window_start = s;
    ls->window_end = e;
    ls->amount = b->amount_usd;
    if (leased) {
        /* Nothing until the control plane grants it. */
        ls->leased = true;
        return ls;
    }
    ls->granted = b->amount_usd * share;
    /* What the cluster already spent in this window (as of the snapshot)
     * counts against this worker's share of it. */
    if (b->window_start == s && b->spent_usd > 0)
        ls->settled = b->spent_usd * share;
    return ls;
}

static double fraction_left(const lease_t *ls)
{
    if (ls->granted <= 0)
        return 0;
    double f = (ls->granted - ls->settled - ls->reserved) / ls->granted;
    return f < 0 ? 0 : (f > 1 ? 1 : f);
}

double sy_budget_remaining_fraction(sy_budget_ledger_t *l, const Switchyard__Budget *const *b,
                                    size_t n, const char *tz, double share, int64_t now)
{
    double best = 1.0;
    for (size_t i = 0; i < n; i++) {
        lease_t *ls = lease_for(l, b[i], tz, share, now);
        if (ls != NULL && fraction_left(ls) < best)
            best = fraction_left(ls);
    }
    return best;
}

int sy_budget_reserve(sy_budget_ledger_t *l, const Switchyard__Budget *const *b, size_t n,
                      const char *tz, double share, double est, int64_t now, int64_t real_ms,
                      sy_budget_hold_t *hold, sy_budget_verdict_t *v)
{
    memset(v, 0, sizeof(*v));
    v->allowed = true;
    v->remaining_fraction = 1.0;
    if (!(share > 0) || share > 1)
        share = 1;
    if (est < 0)
        est = 0;
    if (n > SY_BUDGET_MAX_HOLDS)
        n = SY_BUDGET_MAX_HOLDS;
    lease_t *ls[SY_BUDGET_MAX_HOLDS];
    for (size_t i = 0; i < n; i++) {
        ls[i] = lease_for(l, b[i], tz, share, now);
        if (ls[i] == NULL)
            return SY_ENOMEM;
        double left = ls[i]->granted - ls[i]->settled - ls[i]->reserved;
        double f = fraction_left(ls[i]);
        if (f < v->remaining_fraction)
            v->remaining_fraction = f;
        if (b[i]->hard) {
            bool lapsed = ls[i]->leased && !ls[i]->fallback && ls[i]->expires_ms > 0 &&
                          real_ms >= ls[i]->expires_ms;
            if (lapsed) {
                /* A lapsed grant spends nothing more until it is renewed. */
                double used = ls[i]->settled + ls[i]->reserved;
                if (used < ls[i]->granted)
                    ls[i]->granted = used;
                ls[i]->expires_ms = 0;
                ls[i]->exhausted = false;
                left = ls[i]->granted - used;
            }
            if (left < est || left <= 0) {
                bool may_come = ls[i]->leased && !ls[i]->exhausted;
                if (may_come) {
                    ls[i]->short_ = true;
                    ls[i]->released = false;
                    if (est > ls[i]->want_min)
                        ls[i]->want_min = est;
                }
                if (v->allowed || (v->need_lease && !may_come)) {
                    v->need_lease = may_come;
                    v->refused_by = b[i];
                    v->reset_at = ls[i]->window_end;
                }
                v->allowed = false;
            }
        } else {
            double used = ls[i]->settled + ls[i]->reserved + est;
            double thr = b[i]->soft_threshold > 0 ? b[i]->soft_threshold : 1.0;
            if (used >= ls[i]->granted * thr)
                v->soft_exceeded = true;
        }
    }
    if (!v->allowed)
        return SY_EAGAIN;
    hold->n = 0;
    for (size_t i = 0; i < n; i++) {
        ls[i]->reserved += est;
        ls[i]->last_use_ms = real_ms;
        snprintf(hold->h[hold->n].id, sizeof(hold->h[0].id), "%s", b[i]->id);
        hold->h[hold->n].window_start = ls[i]->window_start;
        hold->h[hold->n].reserved = est;
        hold->n++;
    }
    return 0;
}

void sy_budget_settle(sy_budget_ledger_t *l, sy_budget_hold_t *hold, double actual)
{
    if (actual < 0)
        actual = 0;
    for (size_t i = 0; i < hold->n; i++) {
        lease_t *ls = sy_strmap_get(l->leases, sy_str_from_cstr(hold->h[i].id));
        if (ls == NULL || ls->window_start != hold->h[i].window_start)
            continue;
        ls->reserved -= hold->h[i].reserved;
        if (ls->reserved < 1e-12)
            ls->reserved = 0;
        ls->settled += actual;
    }
    hold->n = 0;
}

int sy_budget_grant(sy_budget_ledger_t *l, const char *budget_id, int64_t window_start,
                    double granted)
{
    bool created = false;
    lease_t *ls = sy_strmap_upsert(l->leases, sy_str_from_cstr(budget_id), &created);
    if (ls == NULL)
        return SY_ENOMEM;
    if (created || ls->window_start != window_start) {
        memset(ls, 0, sizeof(*ls));
        ls->window_start = window_start;
        ls->window_end = window_start; /* completed by the next reservation */
    }
    ls->granted = granted;
    ls->explicit_grant = true;
    return 0;
}

int sy_budget_lease(const sy_budget_ledger_t *l, const char *budget_id, sy_budget_lease_info_t *out)
{
    const lease_t *ls = sy_strmap_get(l->leases, sy_str_from_cstr(budget_id));
    if (ls == NULL)
        return SY_ENOENT;
    out->window_start = ls->window_start;
    out->window_end = ls->window_end;
    out->granted = ls->granted;
    out->settled = ls->settled;
    out->reserved = ls->reserved;
    return 0;
}

void sy_budget_set_lease_mode(sy_budget_ledger_t *l, bool on)
{
    l->lease_mode = on;
}

typedef struct req_ctx {
    int64_t now;
    Switchyard__BudgetLease *out;
    size_t cap, n;
} req_ctx_t;

#define RENEW_BEFORE_MS 10000 /* renew a grant this long before it lapses */
#define ACTIVE_MS 30000       /* a lease used this recently is renewed */
#define IDLE_MS 10000         /* an unused lease idle this long is given back */

static bool list_one(sy_str_t key, void *value, void *arg)
{
    (void)key;
    req_ctx_t *c = arg;
    lease_t *ls = value;
    if (!ls->leased || ls->asked || c->n >= c->cap)
        return false;
    double used = ls->settled + ls->reserved;
    double room = ls->granted - used;
    double want = 0, min = 0;
    bool release = false, ask = false;
    if (ls->short_ || (ls->granted > 0 && room < 0.25 * ls->last_slice &&
                       c->now - ls->last_use_ms < IDLE_MS && !ls->exhausted)) {
        /* A slice of a tenth of the budget, at least a few requests' worth. */
        min = ls->want_min;
        want = ls->amount * 0.1;
        if (want < 4 * min)
            want = 4 * min;
        ask = true;
    } else if (ls->expires_ms > 0 && ls->expires_ms - c->now < RENEW_BEFORE_MS &&
               c->now - ls->last_use_ms < ACTIVE_MS) {
        ask = true; /* renewal */
    } else if (!ls->released && ls->reserved <= 0 && room > 1e-9 &&
               c->now - ls->last_use_ms >= IDLE_MS && ls->granted > 0 && !ls->fallback) {
        ask = release = true;
    }
    if (!ask)
        return false;
    Switchyard__BudgetLease *o = &c->out[c->n++];
    switchyard__budget_lease__init(o);
    o->budget_id = ls->id;
    o->window_start = ls->window_start;
    o->granted_usd = ls->granted;
    o->used_usd = used;
    o->want_usd = want;
    o->min_usd = min;
    o->release = release;
    ls->asked = true;
    return false;
}

void sy_budget_lease_requests(sy_budget_ledger_t *l, int64_t real_ms, Switchyard__BudgetLease *out,
                              size_t cap, size_t *n)
{
    req_ctx_t c = {real_ms, out, cap, 0};
    sy_strmap_sweep(l->leases, list_one, &c);
    *n = c.n;
}

static bool unask_one(sy_str_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    ((lease_t *)value)->asked = false;
    return false;
}

void sy_budget_lease_unask(sy_budget_ledger_t *l)
{
    sy_strmap_sweep(l->leases, unask_one, NULL);
}

void sy_budget_apply_grant(sy_budget_ledger_t *l, const Switchyard__BudgetLease *g)
{
    if (g->budget_id == NULL)
        return;
    lease_t *ls = sy_strmap_get(l->leases, sy_str_from_cstr(g->budget_id));
    if (ls == NULL)
        return;
    ls->asked = false;
    if (!ls->leased || ls->window_start != g->window_start)
        return;
    if (g->granted_usd > ls->granted)
        ls->last_slice = g->granted_usd - ls->granted;
    else if (g->granted_usd < ls->granted)
        ls->released = true;
    ls->granted = g->granted_usd;
    ls->expires_ms = g->expires_at_ms;
    ls->exhausted = g->exhausted;
    ls->fallback = false;
    ls->short_ = false;
    ls->want_min = 0;
}

void sy_budget_fallback(sy_budget_ledger_t *l, const char *budget_id, double amount_share)
{
    lease_t *ls = sy_strmap_get(l->leases, sy_str_from_cstr(budget_id));
    if (ls == NULL || !ls->leased)
        return;
    if (ls->granted < amount_share)
        ls->granted = amount_share;
    ls->fallback = true;
    ls->asked = false;
    ls->short_ = false;
}
