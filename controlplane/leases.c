/* Budget leases, control-plane side; see leases.h. */
#include "controlplane/leases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRACE_MS 5000 /* after a lapse, before reclaiming: late usage reports land */
#define MAX_ID 128

typedef struct holder {
    char worker_id[MAX_ID]; /* the worker (stable across its restarts) */
    char boot_id[64];       /* its current boot */
    double base;            /* exposure of its earlier boots in the window */
    double granted;         /* total granted to the current boot */
    double used;            /* last reported use of the current boot */
    int64_t expires_ms;     /* unix ms */
    bool reclaimed;         /* lapsed and reclaimed */
} holder_t;

typedef struct window {
    char budget_id[MAX_ID]; /* budget */
    int64_t start;          /* window start, unix seconds */
    holder_t *h;            /* owned; n holders */
    size_t n, cap;
} window_t;

typedef struct budget {
    char id[MAX_ID];
    bool hard;
    double amount;
    int64_t window_start, window_end; /* as of the snapshot */
    double spent;                     /* in that window, as of the snapshot */
} budget_t;

struct sy_leases {
    int64_t ttl_ms;
    budget_t *b; /* owned; n_b budgets of the latest snapshot */
    size_t n_b;
    window_t *w; /* owned; n_w windows with holders */
    size_t n_w, cap_w;
    uint32_t live_workers;
};

sy_leases_t *sy_leases_new(int64_t ttl_ms)
{
    sy_leases_t *ls = calloc(1, sizeof(*ls));
    if (ls != NULL)
        ls->ttl_ms = ttl_ms > 0 ? ttl_ms : 30000;
    return ls;
}

void sy_leases_free(sy_leases_t *ls)
{
    if (ls == NULL)
        return;
    for (size_t i = 0; i < ls->n_w; i++)
        free(ls->w[i].h);
    free(ls->w);
    free(ls->b);
    free(ls);
}

static const budget_t *find_budget(const sy_leases_t *ls, const char *id)
{
    for (size_t i = 0; i < ls->n_b; i++)
        if (strcmp(ls->b[i].id, id) == 0)
            return &ls->b[i];
    return NULL;
}

int sy_leases_set_budgets(sy_leases_t *ls, Switchyard__Budget *const *budgets, size_t n,
                          uint32_t live_workers)
{
    budget_t *b = n ? calloc(n, sizeof(*b)) : NULL;
    if (n > 0 && b == NULL)
        return SY_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Switchyard__Budget *x = budgets[i];
        if (x->id == NULL || strlen(x->id) >= MAX_ID)
            continue;
        snprintf(b[k].id, sizeof(b[k].id), "%s", x->id);
        b[k].hard = x->hard;
        b[k].amount = x->amount_usd;
        b[k].window_start = x->window_start;
        b[k].window_end = x->window_end;
        b[k].spent = x->spent_usd;
        k++;
    }
    free(ls->b);
    ls->b = b;
    ls->n_b = k;
    ls->live_workers = live_workers;
    /* Windows of budgets that are gone or over are forgotten. */
    size_t j = 0;
    for (size_t i = 0; i < ls->n_w; i++) {
        const budget_t *bb = find_budget(ls, ls->w[i].budget_id);
        if (bb == NULL || ls->w[i].start < bb->window_start) {
            free(ls->w[i].h);
            continue;
        }
        ls->w[j++] = ls->w[i];
    }
    ls->n_w = j;
    return 0;
}

static window_t *find_window(sy_leases_t *ls, const char *id, int64_t start, bool create)
{
    for (size_t i = 0; i < ls->n_w; i++)
        if (ls->w[i].start == start && strcmp(ls->w[i].budget_id, id) == 0)
            return &ls->w[i];
    if (!create)
        return NULL;
    if (ls->n_w == ls->cap_w) {
        size_t cap = ls->cap_w ? ls->cap_w * 2 : 8;
        window_t *w = realloc(ls->w, cap * sizeof(*w));
        if (w == NULL)
            return NULL;
        ls->w = w;
        ls->cap_w = cap;
    }
    window_t *w = &ls->w[ls->n_w++];
    memset(w, 0, sizeof(*w));
    snprintf(w->budget_id, sizeof(w->budget_id), "%s", id);
    w->start = start;
    return w;
}

static holder_t *find_holder(window_t *w, const char *worker)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->h[i].worker_id, worker) == 0)
            return &w->h[i];
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        holder_t *h = realloc(w->h, cap * sizeof(*h));
        if (h == NULL)
            return NULL;
        w->h = h;
        w->cap = cap;
    }
    holder_t *h = &w->h[w->n++];
    memset(h, 0, sizeof(*h));
    snprintf(h->worker_id, sizeof(h->worker_id), "%s", worker);
    return h;
}

static double exposure(const holder_t *h)
{
    return h->base + (h->granted > h->used ? h->granted : h->used);
}

static double committed(const window_t *w, const budget_t *b)
{
    double sum = 0;
    for (size_t i = 0; i < w->n; i++)
        sum += exposure(&w->h[i]);
    double spent = (b != NULL && b->window_start == w->start) ? b->spent : 0;
    return spent > sum ? spent : sum;
}

int sy_leases_committed(const sy_leases_t *ls, const char *budget_id, int64_t window_start,
                        double *out)
{
    window_t *w = find_window((sy_leases_t *)ls, budget_id, window_start, false);
    if (w == NULL)
        return SY_ENOENT;
    *out = committed(w, find_budget(ls, budget_id));
    return 0;
}

/* Grants (or not) for one lease item; fills g. */
static int one(sy_leases_t *ls, const char *worker, const char *boot,
               const Switchyard__BudgetLease *in, int64_t now_ms, Switchyard__BudgetLease *g)
{
    g->window_start = in->window_start;
    const budget_t *b = find_budget(ls, in->budget_id);
    if (b == NULL || !b->hard || in->window_start < b->window_start) {
        /* Unknown to this snapshot, soft, or an old window: no lease. A
         * soft or removed budget limits nothing; an old window is over. */
        bool over = b != NULL && in->window_start < b->window_start;
        g->granted_usd = over ? in->used_usd : in->used_usd + in->want_usd;
        g->exhausted = over;
        g->expires_at_ms = now_ms + ls->ttl_ms;
        return 0;
    }
    window_t *w = find_window(ls, in->budget_id, in->window_start, true);
    if (w == NULL)
        return SY_ENOMEM;
    /* Reclaim lapsed leases of other workers. */
    for (size_t i = 0; i < w->n; i++) {
        holder_t *o = &w->h[i];
        if (!o->reclaimed && o->expires_ms > 0 && now_ms > o->expires_ms + GRACE_MS) {
            o->granted = o->granted < o->used ? o->granted : o->used;
            o->reclaimed = true;
        }
    }
    holder_t *h = find_holder(w, worker);
    if (h == NULL)
        return SY_ENOMEM;
    if (strcmp(h->boot_id, boot) != 0) {
        if (h->boot_id[0] != '\0')
            h->base += h->granted > h->used ? h->granted : h->used;
        snprintf(h->boot_id, sizeof(h->boot_id), "%s", boot);
        h->granted = h->used = 0;
    }
    /* The worker is authoritative about what it holds and has used. */
    h->granted = in->granted_usd > 0 ? in->granted_usd : 0;
    h->used = in->used_usd > 0 ? in->used_usd : 0;
    h->reclaimed = false;
    if (in->release && h->granted > h->used)
        h->granted = h->used;
    double available = b->amount - committed(w, b);
    if (available < 0)
        available = 0;
    if (in->want_usd > 0 && !in->release) {
        double live = ls->live_workers > 0 ? (double)ls->live_workers : 1.0;
        double cap = available / live;
        double min = in->min_usd > 0 ? in->min_usd : 0;
        if (cap < min)
            cap = min < available ? min : available;
        double slice = in->want_usd < cap ? in->want_usd : cap;
        if (slice > available)
            slice = available;
        if (slice > 0 && slice + 1e-12 >= min) {
            h->granted = (h->granted > h->used ? h->granted : h->used) + slice;
            available -= slice;
        }
        g->exhausted = available + 1e-12 < min || available <= 0;
    } else {
        g->exhausted = available <= 0;
    }
    h->expires_ms = now_ms + ls->ttl_ms;
    g->granted_usd = h->granted;
    g->expires_at_ms = h->expires_ms;
    return 0;
}

int sy_leases_handle(sy_leases_t *ls, const Switchyard__LeaseRequest *req, int64_t now_ms,
                     Switchyard__LeaseGrant **out)
{
    if (req->worker_id == NULL || req->worker_id[0] == '\0' || req->boot_id == NULL ||
        req->boot_id[0] == '\0')
        return SY_EINVAL;
    Switchyard__LeaseGrant *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return SY_ENOMEM;
    switchyard__lease_grant__init(g);
    if (req->n_leases > 0) {
        g->leases = calloc(req->n_leases, sizeof(*g->leases));
        if (g->leases == NULL) {
            free(g);
            return SY_ENOMEM;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < req->n_leases && rc == 0; i++) {
        const Switchyard__BudgetLease *in = req->leases[i];
        if (in->budget_id == NULL || in->budget_id[0] == '\0' || strlen(in->budget_id) >= MAX_ID)
            continue;
        Switchyard__BudgetLease *x = calloc(1, sizeof(*x));
        char *id = strdup(in->budget_id);
        if (x == NULL || id == NULL) {
            free(x);
            free(id);
            rc = SY_ENOMEM;
            break;
        }
        switchyard__budget_lease__init(x);
        x->budget_id = id;
        g->leases[g->n_leases++] = x;
        rc = one(ls, req->worker_id, req->boot_id, in, now_ms, x);
    }
    if (rc != 0) {
        sy_leases_grant_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void sy_leases_grant_free(Switchyard__LeaseGrant *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_leases; i++) {
        free(g->leases[i]->budget_id);
        free(g->leases[i]);
    }
    free(g->leases);
    free(g);
}
