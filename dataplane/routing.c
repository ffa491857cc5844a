/* Routing on the request path; see routing.h. */
#include "dataplane/routing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "dataplane/control_link.h"
#include "dataplane/server.h"
#include "dataplane/strmap.h"
#include "dataplane/worker.h"

#define DEFAULT_OUTPUT_TOKENS 256
#define LEASE_WAIT_MS 1500      /* a request waits this long for a grant, then falls back */
#define LEASE_TICK_MS 1000      /* renewals, releases, lost requests */
#define LEASE_ASK_STALE_MS 3000 /* an unanswered lease request is asked again */
#define MAX_LEASE_ITEMS 64
#define MAX_BUDGETS_PER_SCOPE 4

typedef struct budget_refs {
    uint32_t n;                          /* budgets of this scope id */
    uint32_t idx[MAX_BUDGETS_PER_SCOPE]; /* indexes into the snapshot's budgets */
} budget_refs_t;

struct sy_routing {
    uv_timer_t timer;        /* backoff and lease waits */
    uv_timer_t tick;         /* lease upkeep; the struct is freed when both are closed */
    int open_handles;        /* timers not yet closed */
    sy_control_link_t *link; /* borrowed; budget leases, NULL = none */
    int64_t lease_asked_ms;  /* real ms of the unanswered lease request, 0 = none */
    uint64_t lease_requests, lease_grants, lease_fallbacks; /* stats */
    uint64_t ticks;                                         /* of the tick timer */
    sy_routing_req_t *pool;        /* owned; free per-request states for reuse */
    size_t pooled;                 /* entries in pool */
    sy_routing_resume_fn resume;   /* starts the next attempt of a request */
    sy_router_t *router;           /* owned */
    sy_ratelimit_t *limits;        /* owned */
    sy_budget_ledger_t *budgets;   /* owned */
    sy_strmap_t *budget_index;     /* owned; "<scope>:<id>" -> budget_refs_t, for one snapshot */
    uint64_t budget_index_version; /* snapshot version the index was built for */
    const void *budget_index_snap; /* the snapshot message it was built for (identity only) */
    struct sy_req *waiting;        /* borrowed list of requests in a backoff wait */
    uint64_t rnd;                  /* xorshift state */
    char *clock_file;              /* owned; SWITCHYARD_FAKE_NOW_FILE, NULL = the real clock */
    int64_t fake_unix_ms;          /* last value read from clock_file */
    struct timespec clock_mtime;   /* of clock_file when read */
    uint64_t clock_checked_ms;     /* loop time clock_file was last checked */
    uint64_t attempts;             /* stats */
    uint64_t failovers;
    uint64_t refused_rate;
    uint64_t refused_budget;
};

static const char E_NO_MODEL_FOUND[] = "The model does not exist or you do not have access to it.";
static const char E_NO_TARGET[] =
    "Every target of this route is unavailable right now (circuit open); try again shortly.";
static const char E_NO_RULE[] = "No rule of this route matches the request.";

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    return (end != NULL && *end == '\0') ? (uint64_t)x : dflt;
}

static void on_timer(uv_timer_t *t);
static void on_tick(uv_timer_t *t);

int sy_routing_new(uv_loop_t *loop, sy_routing_resume_fn resume, sy_routing_t **out)
{
    sy_routing_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return SY_ENOMEM;
    sy_breaker_config_t bc = sy_breaker_defaults;
    bc.failures = (uint32_t)env_u64("SWITCHYARD_BREAKER_FAILURES", bc.failures);
    bc.min_requests = (uint32_t)env_u64("SWITCHYARD_BREAKER_MIN_REQUESTS", bc.min_requests);
    bc.window_ms = (uint32_t)env_u64("SWITCHYARD_BREAKER_WINDOW_MS", bc.window_ms);
    bc.open_ms = (uint32_t)env_u64("SWITCHYARD_BREAKER_OPEN_MS", bc.open_ms);
    const char *er = getenv("SWITCHYARD_BREAKER_ERROR_RATE");
    if (er != NULL && *er != '\0')
        bc.error_rate = atof(er);
    rt->router = sy_router_new(&bc);
    rt->limits = sy_ratelimit_new((uint32_t)env_u64("SWITCHYARD_RATELIMIT_WINDOW_MS", 60000));
    rt->budgets = sy_budget_ledger_new();
    const char *cf = getenv("SWITCHYARD_FAKE_NOW_FILE");
    if (cf != NULL && *cf != '\0')
        rt->clock_file = strdup(cf);
    if (rt->router == NULL || rt->limits == NULL || rt->budgets == NULL ||
        (cf != NULL && *cf != '\0' && rt->clock_file == NULL)) {
        sy_router_free(rt->router);
        sy_ratelimit_free(rt->limits);
        sy_budget_ledger_free(rt->budgets);
        free(rt->clock_file);
        free(rt);
        return SY_ENOMEM;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rt->rnd = (uint64_t)ts.tv_nsec * 6364136223846793005ULL + (uint64_t)getpid();
    rt->resume = resume;
    uv_timer_init(loop, &rt->timer);
    uv_timer_init(loop, &rt->tick);
    uv_timer_start(&rt->tick, on_tick, LEASE_TICK_MS, LEASE_TICK_MS);
    rt->open_handles = 2;
    *out = rt;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    sy_routing_t *rt = h->data;
    if (--rt->open_handles > 0)
        return;
    while (rt->pool != NULL) {
        sy_routing_req_t *q = rt->pool;
        rt->pool = q->pool_next;
        sy_buf_free(&q->canon);
        free(q);
    }
    sy_router_free(rt->router);
    sy_ratelimit_free(rt->limits);
    sy_budget_ledger_free(rt->budgets);
    sy_strmap_free(rt->budget_index);
    free(rt->clock_file);
    free(rt);
}

void sy_routing_close(sy_routing_t *rt)
{
    if (rt == NULL)
        return;
    if (rt->link != NULL)
        sy_control_link_set_lease(rt->link, NULL, NULL, NULL);
    rt->link = NULL;
    rt->timer.data = rt->tick.data = rt;
    uv_close((uv_handle_t *)&rt->timer, on_closed);
    uv_close((uv_handle_t *)&rt->tick, on_closed);
}

static uint64_t next_rnd(sy_routing_t *rt)
{
    uint64_t x = rt->rnd ? rt->rnd : 88172645463325252ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rt->rnd = x;
    return x;
}

int64_t sy_routing_now_unix_ms(sy_routing_t *rt)
{
    struct timespec ts;
    if (rt->clock_file != NULL) {
        /* Tests: the file holds the time; it is stat'ed at most every 50 ms. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t mono = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (rt->fake_unix_ms == 0 || mono >= rt->clock_checked_ms + 50) {
            rt->clock_checked_ms = mono;
            struct stat st;
            if (stat(rt->clock_file, &st) == 0 &&
                (rt->fake_unix_ms == 0 || st.st_mtim.tv_sec != rt->clock_mtime.tv_sec ||
                 st.st_mtim.tv_nsec != rt->clock_mtime.tv_nsec)) {
                FILE *f = fopen(rt->clock_file, "r");
                double s = 0;
                if (f != NULL) {
                    if (fscanf(f, "%lf", &s) == 1 && s > 0) {
                        rt->fake_unix_ms = (int64_t)(s * 1000.0);
                        rt->clock_mtime = st.st_mtim;
                    }
                    fclose(f);
                }
            }
        }
        if (rt->fake_unix_ms > 0)
            return rt->fake_unix_ms;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- budgets of a request ------------------------------------------------------ */

static void index_key(char *buf, size_t size, int scope, const char *id, sy_str_t *out)
{
    int n = snprintf(buf, size, "%d:%s", scope, id ? id : "");
    size_t len = n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
    *out = (sy_str_t){buf, len};
}

/* (Re)builds the scope -> budgets index for the snapshot (once per snapshot). */
static void index_budgets(sy_routing_t *rt, const Switchyard__Snapshot *s)
{
    /* Pointer and version: a new table may reuse a freed one's address. */
    if (rt->budget_index != NULL && rt->budget_index_snap == (const void *)s &&
        rt->budget_index_version == s->version)
        return;
    sy_strmap_free(rt->budget_index);
    rt->budget_index = sy_strmap_new(sizeof(budget_refs_t));
    rt->budget_index_snap = s;
    rt->budget_index_version = s->version;
    if (rt->budget_index == NULL)
        return;
    for (size_t i = 0; i < s->n_budgets; i++) {
        char buf[256];
        sy_str_t k;
        index_key(buf, sizeof(buf), (int)s->budgets[i]->scope, s->budgets[i]->scope_id, &k);
        budget_refs_t *br = sy_strmap_upsert(rt->budget_index, k, NULL);
        if (br != NULL && br->n < MAX_BUDGETS_PER_SCOPE)
            br->idx[br->n++] = (uint32_t)i;
    }
}

static size_t request_budgets(sy_routing_t *rt, const sy_req_t *r, const Switchyard__Budget **out,
                              size_t cap)
{
    const Switchyard__Snapshot *s = sy_snapshot_proto(r->snap);
    if (s->n_budgets == 0)
        return 0;
    index_budgets(rt, s);
    if (rt->budget_index == NULL)
        return 0;
    struct {
        int scope;
        const char *id;
    } scopes[3] = {
        {SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_KEY, r->key->pb->id},
        {SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TEAM, r->key->pb->team_id},
        {SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TENANT, r->key->pb->tenant_id},
    };
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        if (scopes[i].id == NULL || scopes[i].id[0] == '\0')
            continue;
        char buf[256];
        sy_str_t k;
        index_key(buf, sizeof(buf), scopes[i].scope, scopes[i].id, &k);
        const budget_refs_t *br = sy_strmap_get(rt->budget_index, k);
        for (uint32_t j = 0; br != NULL && j < br->n && n < cap; j++)
            if (br->idx[j] < s->n_budgets)
                out[n++] = s->budgets[br->idx[j]];
    }
    return n;
}

/* --- admission and planning ---------------------------------------------------- */

static double share_of(const sy_req_t *r)
{
    uint32_t live = sy_snapshot_proto(r->snap)->live_workers;
    return live > 1 ? 1.0 / (double)live : 1.0;
}

static const char *scope_name(sy_ratelimit_scope_t s)
{
    switch (s) {
    case SY_RATELIMIT_TEAM:
        return "team";
    case SY_RATELIMIT_TENANT:
        return "organization";
    case SY_RATELIMIT_MODEL:
        return "model";
    default:
        return "api key";
    }
}

static void add_check(sy_routing_req_t *q, sy_ratelimit_scope_t scope, const char *id,
                      const Switchyard__RateLimit *l)
{
    if (l == NULL || (l->rpm == 0 && l->tpm == 0) || q->n_checks >= SY_RATELIMIT_MAX_CHECKS)
        return;
    q->checks[q->n_checks++] = (sy_ratelimit_check_t){scope, id, l->rpm, l->tpm};
}

/* Expected output tokens of the request on model m: the client's
 * max_tokens, else the model's default, else DEFAULT_OUTPUT_TOKENS. */
static uint64_t output_estimate(const sy_routing_req_t *q, const Switchyard__Model *m)
{
    if (q->max_output > 0)
        return q->max_output;
    if (m != NULL && m->default_max_tokens > 0)
        return m->default_max_tokens;
    return DEFAULT_OUTPUT_TOKENS;
}

/* --- model limits of the targets ------------------------------------------------ */

/* A target's model limit is checked when the target is chosen (at the
 * start and at each failover) and charged once per model and request: a
 * target whose model is at its limit is skipped like one whose breaker is
 * open. Key, team and tenant limits stay one charge per client request. */

/* The model limit of candidate c as a check; false when it has none. */
static bool model_check(const sy_router_candidate_t *c, sy_ratelimit_check_t *out)
{
    const Switchyard__Model *m = c->model->pb;
    if (m->limits == NULL || (m->limits->rpm == 0 && m->limits->tpm == 0))
        return false;
    *out = (sy_ratelimit_check_t){SY_RATELIMIT_MODEL, m->id, m->limits->rpm, m->limits->tpm};
    return true;
}

static bool model_charged(const sy_routing_req_t *q, const char *id)
{
    for (size_t i = 0; i < q->n_models; i++)
        if (strcmp(q->models[i].check.id, id) == 0)
            return true;
    return false;
}

/* Notes a target skipped for its model limit; the 429 that follows when no
 * target is left reports the one that frees up first. */
static void note_skip(sy_routing_req_t *q, const sy_ratelimit_result_t *res)
{
    if (!q->limit_skipped || res->retry_after_ms < q->limit_refusal.retry_after_ms)
        q->limit_refusal = *res;
    q->limit_skipped = true;
}

/* Keeps the tightest figures for the x-ratelimit-* headers. */
static void merge_figures(sy_ratelimit_result_t *into, const sy_ratelimit_result_t *res)
{
    if (res->has_requests &&
        (!into->has_requests || res->remaining_requests < into->remaining_requests)) {
        into->has_requests = true;
        into->limit_requests = res->limit_requests;
        into->remaining_requests = res->remaining_requests;
        into->reset_requests_ms = res->reset_requests_ms;
    }
    if (res->has_tokens && (!into->has_tokens || res->remaining_tokens < into->remaining_tokens)) {
        into->has_tokens = true;
        into->limit_tokens = res->limit_tokens;
        into->remaining_tokens = res->remaining_tokens;
        into->reset_tokens_ms = res->reset_tokens_ms;
    }
}

/* Whether the model limit lets candidate i be attempted: a model without a
 * limit or already charged for this request always does; another one when
 * its buckets have room. With take, the room is taken (charged once per
 * model and request); without, only peeked. Notes a skip when refused. */
static bool model_gate(sy_routing_t *rt, sy_req_t *r, size_t i, uint64_t now, bool take)
{
    sy_routing_req_t *q = r->rt;
    sy_ratelimit_check_t c;
    if (!model_check(&q->plan.c[i], &c) || model_charged(q, c.id))
        return true;
    sy_ratelimit_result_t res;
    uint64_t est = q->prompt_est + output_estimate(q, q->plan.c[i].model->pb);
    int rc = take ? sy_ratelimit_admit(rt->limits, &c, 1, est, share_of(r), now, &res)
                  : sy_ratelimit_peek(rt->limits, &c, 1, est, share_of(r), now, &res);
    if (rc == SY_EAGAIN) {
        note_skip(q, &res);
        return false;
    }
    if (take) {
        if (q->n_models < SY_ROUTER_MAX_CANDIDATES)
            q->models[q->n_models++] = (sy_routing_charge_t){c, est};
        merge_figures(&q->rl, &res);
    }
    return true;
}

/* Answers 429 for a rate limit (res: the refusing limit's figures). */
static void refuse_rate(sy_req_t *r, const sy_ratelimit_result_t *res)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    rt->refused_rate++;
    q->rl = *res;
    char msg[256];
    snprintf(msg, sizeof(msg),
             "Rate limit reached for %s on %s per min: limit %llu. Please try again in %.1fs.",
             scope_name(res->scope), res->refused_tokens ? "tokens" : "requests",
             (unsigned long long)(res->refused_tokens ? res->limit_tokens : res->limit_requests),
             res->retry_after_ms / 1000.0);
    r->error = "rate limited";
    q->refused = true;
    q->refused_retry_ms = res->retry_after_ms;
    sy_server_error(r, 429, "requests", "rate_limit_exceeded", NULL, msg);
}

static int admit_budget(sy_req_t *r, bool fallback);
static void park(sy_req_t *r);

#define POOL_MAX 64

/* A zeroed per-request state (its canon buffer's allocation kept). */
static sy_routing_req_t *state_get(sy_routing_t *rt)
{
    sy_routing_req_t *q = rt->pool;
    if (q != NULL) {
        rt->pool = q->pool_next;
        rt->pooled--;
        sy_buf_t canon = q->canon;
        memset(q, 0, sizeof(*q));
        q->canon = canon;
    } else {
        q = calloc(1, sizeof(*q));
        if (q != NULL)
            sy_buf_init(&q->canon);
    }
    if (q != NULL)
        q->retry_after_ms = -1;
    return q;
}

static void state_put(sy_routing_t *rt, sy_routing_req_t *q)
{
    sy_buf_reset(&q->canon);
    if (q->canon.cap > 65536)
        sy_buf_free(&q->canon);
    if (rt == NULL || rt->pooled >= POOL_MAX) {
        sy_buf_free(&q->canon);
        free(q);
        return;
    }
    q->pool_next = rt->pool;
    rt->pool = q;
    rt->pooled++;
}

static void set_candidate(sy_req_t *r, size_t i)
{
    sy_routing_req_t *q = r->rt;
    r->model = q->plan.c[i].model;
    r->provider = q->provider = q->plan.c[i].provider;
    q->cur = q->plan.c[i].state;
    q->next = i + 1;
}

bool sy_routing_begin(sy_req_t *r, sy_str_t name, json_object *root)
{
    sy_worker_t *w = r->conn->worker;
    sy_routing_t *rt = w->routing;
    uint64_t now_ms = uv_now(&w->loop);
    /* Resolve: a concrete model first, then a route alias. */
    const sy_snapshot_model_t *m = sy_snapshot_find_model(r->snap, name);
    const Switchyard__Route *route = NULL;
    if (m != NULL) {
        if (!sy_snapshot_key_allows(r->key, name) || m->provider == NULL) {
            sy_server_error(r, 404, "invalid_request_error", "model_not_found", "model",
                            E_NO_MODEL_FOUND);
            return false;
        }
    } else {
        route = sy_snapshot_find_route(r->snap, name, r->key->pb->tenant_id);
        if (route == NULL || !sy_snapshot_key_allows(r->key, name)) {
            sy_server_error(r, 404, "invalid_request_error", "model_not_found", "model",
                            E_NO_MODEL_FOUND);
            return false;
        }
        r->route = route->alias;
    }
    const Switchyard__Snapshot *sp = sy_snapshot_proto(r->snap);
    if (route == NULL) {
        const Switchyard__RateLimit *kl = r->key->pb->limits, *ml = m->pb->limits;
        const Switchyard__RateLimit *tl = r->key->team ? r->key->team->limits : NULL;
        const Switchyard__RateLimit *nl = r->key->tenant ? r->key->tenant->limits : NULL;
#define SET(l) ((l) != NULL && ((l)->rpm > 0 || (l)->tpm > 0))
        if (sp->n_budgets == 0 && !SET(kl) && !SET(ml) && !SET(tl) && !SET(nl)) {
            /* A concrete model, no limits, no budgets: nothing to keep. */
            r->model = m;
            r->provider = m->provider;
            return true;
        }
#undef SET
    }
    sy_routing_req_t *q = state_get(rt);
    if (q == NULL) {
        sy_server_error(r, 500, "server_error", "internal_error", NULL, "Out of memory.");
        return false;
    }
    r->rt = q;
    q->route = route;
    /* Estimates: about 4 bytes per token of the request body. */
    q->prompt_est = r->body.len / 4 + 1;
    /* Route inputs. */
    sy_router_input_t in = {
        .prompt_tokens = q->prompt_est,
        .max_output_tokens = 0,
        .tenant_tier = r->key->tenant ? r->key->tenant->tier : NULL,
        .budget_remaining_fraction = 1.0,
        .now_unix = r->start_unix_ms / 1000,
    };
    int64_t mo = 0;
    if (root != NULL &&
        (sy_json_get_int64(root, "max_completion_tokens", &mo) == 0 ||
         sy_json_get_int64(root, "max_tokens", &mo) == 0) &&
        mo > 0)
        in.max_output_tokens = (uint64_t)mo;
    q->max_output = in.max_output_tokens;
    in.task = (sy_str_t){r->task, r->task_len};
    if (in.task.len == 0 && root != NULL) {
        json_object *md = sy_json_get_object(root, "metadata");
        size_t tl = 0;
        const char *t = md ? sy_json_get_string(md, "task", &tl) : NULL;
        if (t != NULL)
            in.task = (sy_str_t){t, tl};
    }
    in.latency_class = (sy_str_t){r->latency, r->latency_len};
    /* Budgets: the fraction left steers rules; the reservation comes below. */
    const Switchyard__Budget *bs[SY_BUDGET_MAX_HOLDS];
    size_t nb = request_budgets(rt, r, bs, SY_BUDGET_MAX_HOLDS);
    int64_t now_unix = sy_routing_now_unix_ms(rt) / 1000;
    const char *tz = r->key->tenant ? r->key->tenant->time_zone : NULL;
    double share = share_of(r);
    if (nb > 0)
        in.budget_remaining_fraction =
            sy_budget_remaining_fraction(rt->budgets, bs, nb, tz, share, now_unix);
    /* Plan. */
    if (route != NULL) {
        int rc = sy_router_plan(rt->router, r->snap, route, &in, now_ms, next_rnd(rt), &q->plan);
        if (rc == SY_ENOENT) {
            sy_server_error(r, 404, "invalid_request_error", "no_matching_rule", "model",
                            E_NO_RULE);
            return false;
        }
        if (rc != 0 || q->plan.n == 0) {
            r->error = "no available target";
            sy_server_error(r, 503, "server_error", "no_available_target", NULL, E_NO_TARGET);
            return false;
        }
        q->policy.max_attempts = route->max_attempts ? route->max_attempts : 3;
        q->policy.deadline_ms = route->deadline_ms;
    } else {
        q->plan.rule = NULL;
        q->plan.n = 1;
        q->plan.c[0] = (sy_router_candidate_t){
            .target = NULL,
            .model = m,
            .provider = m->provider,
            .state = sy_router_state(rt->router, m->provider->id, m->pb->id),
        };
        q->policy.max_attempts = 1; /* a concrete model: its answer, whatever it is */
    }
    set_candidate(r, 0);
    /* Rate limits: key, team, tenant once per request (each worker its
     * share), with the model limit of the first target whose model has
     * room; targets whose model is at its limit are skipped. A refusal by
     * the key, team or tenant takes nothing and ends the request. */
    add_check(q, SY_RATELIMIT_KEY, r->key->pb->id, r->key->pb->limits);
    if (r->key->team != NULL)
        add_check(q, SY_RATELIMIT_TEAM, r->key->team->id, r->key->team->limits);
    if (r->key->tenant != NULL)
        add_check(q, SY_RATELIMIT_TENANT, r->key->tenant->id, r->key->tenant->limits);
    size_t pick = q->plan.n;
    for (size_t i = 0; i < q->plan.n; i++) {
        sy_ratelimit_check_t all[SY_RATELIMIT_MAX_CHECKS];
        size_t n = q->n_checks;
        memcpy(all, q->checks, n * sizeof(all[0]));
        bool has_model = model_check(&q->plan.c[i], &all[n]);
        if (has_model)
            n++;
        uint64_t est = q->prompt_est + output_estimate(q, q->plan.c[i].model->pb);
        if (n > 0) {
            sy_ratelimit_result_t res;
            int rc = sy_ratelimit_admit(rt->limits, all, n, est, share, now_ms, &res);
            if (rc == SY_EAGAIN && res.scope == SY_RATELIMIT_MODEL) {
                note_skip(q, &res);
                continue;
            }
            if (rc == SY_EAGAIN) {
                refuse_rate(r, &res);
                return false;
            }
            q->rl = res;
            q->rl_admitted = q->n_checks > 0;
            if (has_model)
                q->models[q->n_models++] = (sy_routing_charge_t){all[n - 1], est};
        }
        q->tokens_est = est;
        pick = i;
        break;
    }
    if (pick == q->plan.n) {
        refuse_rate(r, &q->limit_refusal);
        return false;
    }
    set_candidate(r, pick);
    const Switchyard__Model *mp = r->model->pb;
    uint64_t out_est = output_estimate(q, mp);
    /* Budgets: reserve the estimated cost on every budget that applies. */
    if (nb > 0) {
        q->cost_est = sy_router_estimate_cost(mp, now_unix, q->prompt_est, out_est);
        int br = admit_budget(r, false);
        if (br < 0)
            return false;
        if (br > 0)
            park(r);
    }
    return true;
}

/* Reserves the request's estimated cost on its budgets. Returns 0 when
 * reserved, 1 when a lease grant is needed first, -1 when refused (answered).
 * fallback: the control plane did not answer; take this worker's share. */
static int admit_budget(sy_req_t *r, bool fallback)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    const Switchyard__Budget *bs[SY_BUDGET_MAX_HOLDS];
    size_t nb = request_budgets(rt, r, bs, SY_BUDGET_MAX_HOLDS);
    if (nb == 0)
        return 0;
    int64_t now_unix = sy_routing_now_unix_ms(rt) / 1000;
    const char *tz = r->key->tenant ? r->key->tenant->time_zone : NULL;
    double share = share_of(r);
    if (fallback) {
        /* Logged now and then: a control plane away under load would flood. */
        if (rt->lease_fallbacks++ % 100 == 0)
            sy_log(SY_LOG_WARN, "lease_fallback",
                   "no budget lease from the control plane in time; spending this worker's "
                   "share (%llu so far)",
                   (unsigned long long)rt->lease_fallbacks);
        for (size_t i = 0; i < nb; i++)
            if (bs[i]->hard)
                sy_budget_fallback(rt->budgets, bs[i]->id, bs[i]->amount_usd * share);
    }
    {
        double est = q->cost_est;
        sy_budget_verdict_t v;
        int rc = sy_budget_reserve(rt->budgets, bs, nb, tz, share, est, now_unix, real_ms(),
                                   &q->hold, &v);
        if (rc == SY_EAGAIN && v.need_lease && !fallback)
            return 1;
        if (rc == SY_EAGAIN) {
            rt->refused_budget++;
            const Switchyard__Budget *b = v.refused_by;
            int64_t wait = v.reset_at > now_unix ? v.reset_at - now_unix : 1;
            q->retry_after_ms = wait * 1000;
            char msg[320];
            snprintf(msg, sizeof(msg),
                     "The %s budget '%s' of $%.2f is exhausted for this %s window; it resets at "
                     "unix time %lld.",
                     b->hard ? "hard" : "soft", b->id, b->amount_usd,
                     strcmp(b->period, "daily") == 0 ? "daily" : "monthly", (long long)v.reset_at);
            r->error = "budget exhausted";
            q->refused = true;
            q->refused_retry_ms = (uint64_t)wait * 1000;
            sy_server_error(r, 429, "insufficient_quota", "budget_exceeded", NULL, msg);
            return -1;
        }
        q->budget_soft = v.soft_exceeded;
    }
    return 0;
}

/* --- attempts ------------------------------------------------------------------- */

void sy_routing_attempt_start(sy_req_t *r)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    if (q == NULL)
        return;
    uint64_t now = uv_now(&r->conn->worker->loop);
    q->attempts++;
    rt->attempts++;
    if (q->cur != NULL) {
        q->cur_probe = false;
        sy_breaker_acquire(&q->cur->breaker, sy_router_breaker_config(rt->router), now,
                           &q->cur_probe);
        q->cur->in_flight++;
        q->cur->attempts++;
        q->cur_open = true;
    }
}

void sy_routing_first_byte(sy_req_t *r)
{
    sy_routing_req_t *q = r->rt;
    if (q == NULL)
        return;
    if (q->cur != NULL && r->xfer.start_ms > 0) {
        uint64_t now = uv_now(&r->conn->worker->loop);
        sy_router_observe_ttft(q->cur, (uint32_t)(now - r->xfer.start_ms));
    }
}

void sy_routing_upstream_header(sy_req_t *r, const char *line, size_t n)
{
    sy_routing_req_t *q = r->rt;
    if (q == NULL || q->cur == NULL || n < 20)
        return;
    const char *colon = memchr(line, ':', n);
    if (colon == NULL)
        return;
    sy_str_t name = {line, (size_t)(colon - line)};
    sy_str_t value = {colon + 1, n - (size_t)(colon + 1 - line)};
    sy_router_observe_header(q->cur, name, value, uv_now(&r->conn->worker->loop));
}

/* Ends the current attempt's bookkeeping with an outcome. */
static void close_attempt(sy_req_t *r, bool has_outcome, bool success)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    if (q == NULL || q->cur == NULL || !q->cur_open)
        return;
    q->cur_open = false;
    if (q->cur->in_flight > 0)
        q->cur->in_flight--;
    uint64_t now = uv_now(&r->conn->worker->loop);
    if (!has_outcome) {
        sy_breaker_release(&q->cur->breaker, q->cur_probe);
    } else {
        if (!success)
            q->cur->failures++;
        if (sy_breaker_record(&q->cur->breaker, sy_router_breaker_config(rt->router), now,
                              q->cur_probe, success)) {
            char f[200];
            int n = snprintf(f, sizeof(f), "\"provider\":\"%s\",\"model\":\"%s\"",
                             q->provider ? q->provider->id : "", r->model ? r->model->pb->id : "");
            sy_log_fields(SY_LOG_WARN, "breaker_open", f, (size_t)(n > 0 ? n : 0));
        }
    }
    q->cur_probe = false;
}

static void wait_unlink(sy_routing_t *rt, sy_req_t *r)
{
    sy_routing_req_t *q = r->rt;
    if (q == NULL || !q->waiting)
        return;
    if (q->wait_prev != NULL)
        q->wait_prev->rt->wait_next = q->wait_next;
    else
        rt->waiting = q->wait_next;
    if (q->wait_next != NULL)
        q->wait_next->rt->wait_prev = q->wait_prev;
    q->wait_next = q->wait_prev = NULL;
    q->waiting = false;
}

static void arm_timer(sy_routing_t *rt, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    for (sy_req_t *x = rt->waiting; x != NULL; x = x->rt->wait_next)
        if (x->rt->wait_due_ms < due)
            due = x->rt->wait_due_ms;
    if (due == UINT64_MAX) {
        uv_timer_stop(&rt->timer);
        return;
    }
    uv_timer_start(&rt->timer, on_timer, due > now ? due - now : 1, 0);
}

static void wait_link(sy_routing_t *rt, sy_req_t *r, uint64_t due, uint64_t now);

/* A parked request's lease question has an answer (or timed out): start
 * it, refuse it, or keep it waiting. */
static void unpark(sy_req_t *r, bool fallback)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    q->lease_wait = false;
    int br = admit_budget(r, fallback);
    if (br < 0)
        return; /* answered */
    if (br > 0) {
        park(r);
        return;
    }
    q->parked = false;
    rt->resume(r);
}

static void on_timer(uv_timer_t *t)
{
    sy_routing_t *rt = sy_container_of(t, sy_routing_t, timer);
    uint64_t now = uv_now(t->loop);
    /* Take the due requests off the list first: resuming may answer and
     * finish them, which must not disturb the walk. */
    sy_req_t *due = NULL;
    sy_req_t *x = rt->waiting;
    while (x != NULL) {
        sy_req_t *nx = x->rt->wait_next;
        if (x->rt->wait_due_ms <= now) {
            wait_unlink(rt, x);
            x->rt->wait_next = due;
            due = x;
        }
        x = nx;
    }
    arm_timer(rt, now);
    while (due != NULL) {
        sy_req_t *nx = due->rt->wait_next;
        due->rt->wait_next = NULL;
        if (due->rt->lease_wait)
            unpark(due, true); /* no grant in time: this worker's share */
        else if (due->rt->refuse_limit)
            refuse_rate(due, &due->rt->limit_refusal);
        else
            rt->resume(due);
        due = nx;
    }
}

static void wait_link(sy_routing_t *rt, sy_req_t *r, uint64_t due, uint64_t now)
{
    sy_routing_req_t *q = r->rt;
    q->wait_due_ms = due;
    q->waiting = true;
    q->wait_prev = NULL;
    q->wait_next = rt->waiting;
    if (rt->waiting != NULL)
        rt->waiting->rt->wait_prev = r;
    rt->waiting = r;
    arm_timer(rt, now);
}

/* Waits for a lease grant (or LEASE_WAIT_MS). */
static void park(sy_req_t *r)
{
    sy_routing_t *rt = r->conn->worker->routing;
    sy_routing_req_t *q = r->rt;
    uint64_t now = uv_now(&r->conn->worker->loop);
    q->parked = true;
    q->lease_wait = true;
    wait_link(rt, r, now + LEASE_WAIT_MS, now);
    if (rt->link == NULL) {
        /* No control plane to ask (any more): the share, at once. */
        q->wait_due_ms = now;
        arm_timer(rt, now);
        return;
    }
    sy_control_link_want_lease(rt->link);
}

/* No further attempt for r. When a target of its plan was skipped for its
 * model limit, the route had capacity the limit held back: the client
 * gets that 429 (with the wait of the limit that frees up first), not the
 * last attempt's failure. The proxy is still inside its completion path,
 * so the answer comes from the timer: r waits for "now" and is refused
 * there instead of being resumed. Returns sy_routing_next's value. */
static int give_up(sy_req_t *r, uint64_t now)
{
    sy_routing_req_t *q = r->rt;
    if (!q->limit_skipped)
        return 0;
    q->refuse_limit = true;
    wait_link(r->conn->worker->routing, r, now, now);
    return 2;
}

int sy_routing_next(sy_req_t *r, int status, int result, const char *retry_after)
{
    sy_worker_t *w = r->conn->worker;
    sy_routing_t *rt = w->routing;
    sy_routing_req_t *q = r->rt;
    if (q == NULL)
        return 0;
    uint64_t now = uv_now(&w->loop);
    bool retryable =
        result != 0 ? sy_retry_result_retryable(result) : sy_retry_status_retryable(status);
    /* The caller's own mistakes (4xx) say nothing bad about the target. */
    close_attempt(r, true, !retryable);
    if (!retryable)
        return 0;
    q->retry_after_ms = -1;
    int64_t ra;
    if (retry_after != NULL && retry_after[0] != '\0' &&
        sy_retry_parse_after(retry_after, r->start_unix_ms / 1000, &ra) == 0) {
        q->retry_after_ms = ra;
        if (q->cur != NULL)
            q->cur->cooldown_until_ms = now + (uint64_t)(ra > 60000 ? 60000 : ra);
    }
    uint64_t elapsed = now - r->start_ms;
    /* The next target in the plan whose breaker still lets traffic through,
     * at once; after the last one, the plan again from the start after a
     * backoff (honouring Retry-After). */
    const sy_breaker_config_t *bc = sy_router_breaker_config(rt->router);
    for (size_t i = q->next; i < q->plan.n; i++) {
        if (!sy_breaker_usable(&q->plan.c[i].state->breaker, bc, now) ||
            !model_gate(rt, r, i, now, false))
            continue;
        if (!sy_retry_may_retry(&q->policy, q->attempts, elapsed, 0))
            return give_up(r, now);
        if (!model_gate(rt, r, i, now, true))
            continue;
        set_candidate(r, i);
        rt->failovers++;
        return 1;
    }
    if (q->route == NULL)
        return give_up(r, now);
    for (size_t i = 0; i < q->plan.n; i++) {
        if (!sy_breaker_usable(&q->plan.c[i].state->breaker, bc, now) ||
            !model_gate(rt, r, i, now, false))
            continue;
        uint32_t wait =
            sy_retry_backoff_ms(&q->policy, q->attempts, q->retry_after_ms, next_rnd(rt));
        if (!sy_retry_may_retry(&q->policy, q->attempts, elapsed, wait))
            return give_up(r, now);
        if (!model_gate(rt, r, i, now, true))
            continue;
        set_candidate(r, i);
        rt->failovers++;
        if (wait == 0)
            return 1;
        wait_link(rt, r, now + wait, now);
        return 2;
    }
    return give_up(r, now);
}

void sy_routing_abort(sy_req_t *r)
{
    sy_routing_t *rt = r->conn->worker->routing;
    if (rt != NULL && r->rt != NULL)
        wait_unlink(rt, r);
}

void sy_routing_finish(sy_req_t *r, double cost_usd, uint64_t tokens)
{
    sy_worker_t *w = r->conn->worker;
    sy_routing_t *rt = w->routing;
    sy_routing_req_t *q = r->rt;
    if (q == NULL)
        return;
    if (rt == NULL) {
        r->rt = NULL;
        state_put(NULL, q);
        return;
    }
    wait_unlink(rt, r);
    if (q->cur_open) {
        bool gone = r->status == 0 || r->status == 499;
        bool ok = !r->upstream_error && r->status < 500 && r->status != 429;
        close_attempt(r, !gone, ok);
    }
    uint64_t now = uv_now(&w->loop);
    if (q->rl_admitted)
        sy_ratelimit_settle(rt->limits, q->checks, q->n_checks, q->tokens_est, tokens, now);
    /* Each model charged keeps its request; its tokens are those of the
     * attempt that answered when that model answered, else none (a failed
     * attempt's estimate goes back). */
    const char *served = r->model != NULL ? r->model->pb->id : NULL;
    for (size_t i = 0; i < q->n_models; i++) {
        bool answered = served != NULL && strcmp(q->models[i].check.id, served) == 0;
        sy_ratelimit_settle(rt->limits, &q->models[i].check, 1, q->models[i].tokens_est,
                            answered ? tokens : 0, now);
    }
    if (q->hold.n > 0)
        sy_budget_settle(rt->budgets, &q->hold, cost_usd);
    r->rt = NULL;
    state_put(rt, q);
}

/* --- response headers ------------------------------------------------------------ */

size_t sy_routing_head(const sy_req_t *r, char *out, size_t size)
{
    const sy_routing_req_t *q = r->rt;
    size_t len = 0;
    if (q == NULL) {
        /* A concrete model without limits: only who served it. */
        int n = r->provider != NULL && r->model != NULL
                    ? snprintf(out, size, "x-switchyard-target: %s/%s\r\n", r->provider->id,
                               r->model->pb->id)
                    : -1;
        if (n < 0 || (size_t)n >= size) {
            if (size > 0)
                out[0] = '\0';
            return 0;
        }
        return (size_t)n;
    }
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(out + len, size - len, __VA_ARGS__);                                     \
        if (n_ < 0 || (size_t)n_ >= size - len) {                                                  \
            out[0] = '\0';                                                                         \
            return 0;                                                                              \
        }                                                                                          \
        len += (size_t)n_;                                                                         \
    } while (0)
    if (size == 0)
        return 0;
    out[0] = '\0';
    if (q->route != NULL) {
        PUT("x-switchyard-route: %s\r\n", q->route->alias);
        if (q->plan.rule != NULL && q->plan.rule->name != NULL && q->plan.rule->name[0])
            PUT("x-switchyard-rule: %s\r\n", q->plan.rule->name);
    }
    if (q->attempts > 0 && q->provider != NULL && r->model != NULL) {
        PUT("x-switchyard-target: %s/%s\r\n", q->provider->id, r->model->pb->id);
        PUT("x-switchyard-attempts: %u\r\n", q->attempts);
    }
    if (q->budget_soft)
        PUT("x-switchyard-budget: soft-exceeded\r\n");
    char a[24], b[24];
    if (q->rl.has_requests) {
        sy_ratelimit_format_reset(q->rl.reset_requests_ms, a, sizeof(a));
        PUT("x-ratelimit-limit-requests: %llu\r\nx-ratelimit-remaining-requests: %llu\r\n"
            "x-ratelimit-reset-requests: %s\r\n",
            (unsigned long long)q->rl.limit_requests, (unsigned long long)q->rl.remaining_requests,
            a);
    }
    if (q->rl.has_tokens) {
        sy_ratelimit_format_reset(q->rl.reset_tokens_ms, b, sizeof(b));
        PUT("x-ratelimit-limit-tokens: %llu\r\nx-ratelimit-remaining-tokens: %llu\r\n"
            "x-ratelimit-reset-tokens: %s\r\n",
            (unsigned long long)q->rl.limit_tokens, (unsigned long long)q->rl.remaining_tokens, b);
    }
    if (q->refused) {
        uint64_t secs = (q->refused_retry_ms + 999) / 1000;
        PUT("Retry-After: %llu\r\n", (unsigned long long)(secs > 0 ? secs : 1));
    }
#undef PUT
    return len;
}

/* --- budget leases ----------------------------------------------------------------- */

static int lease_build(void *arg, const char *worker_id, const char *boot_id, sy_buf_t *out)
{
    sy_routing_t *rt = arg;
    Switchyard__BudgetLease items[MAX_LEASE_ITEMS];
    Switchyard__BudgetLease *ptrs[MAX_LEASE_ITEMS];
    size_t n = 0;
    int64_t now = real_ms();
    sy_budget_lease_requests(rt->budgets, now, items, MAX_LEASE_ITEMS, &n);
    if (n == 0)
        return SY_ENOENT;
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &items[i];
    Switchyard__LeaseRequest req = SWITCHYARD__LEASE_REQUEST__INIT;
    req.worker_id = (char *)worker_id;
    req.boot_id = (char *)boot_id;
    req.leases = ptrs;
    req.n_leases = n;
    size_t len = switchyard__lease_request__get_packed_size(&req);
    if (sy_buf_reserve(out, len) != 0) {
        sy_budget_lease_unask(rt->budgets);
        return SY_ENOMEM;
    }
    out->len = switchyard__lease_request__pack(&req, (uint8_t *)out->data);
    rt->lease_asked_ms = now;
    rt->lease_requests++;
    return 0;
}

static void lease_grant(void *arg, const Switchyard__LeaseGrant *g)
{
    sy_routing_t *rt = arg;
    rt->lease_asked_ms = 0;
    rt->lease_grants++;
    for (size_t i = 0; i < g->n_leases; i++)
        sy_budget_apply_grant(rt->budgets, g->leases[i]);
    /* Requests waiting for a grant: take them off the list first (answering
     * or starting one must not disturb the walk). */
    sy_req_t *ready = NULL;
    sy_req_t *x = rt->waiting;
    while (x != NULL) {
        sy_req_t *nx = x->rt->wait_next;
        if (x->rt->lease_wait) {
            wait_unlink(rt, x);
            x->rt->wait_next = ready;
            ready = x;
        }
        x = nx;
    }
    arm_timer(rt, uv_now(rt->timer.loop));
    while (ready != NULL) {
        sy_req_t *nx = ready->rt->wait_next;
        ready->rt->wait_next = NULL;
        unpark(ready, false);
        ready = nx;
    }
}

static void on_tick(uv_timer_t *t)
{
    sy_routing_t *rt = sy_container_of(t, sy_routing_t, tick);
    /* Full (idle) rate-limit buckets go, bounding memory by the busy keys. */
    if (++rt->ticks % 10 == 0)
        sy_ratelimit_sweep(rt->limits, uv_now(t->loop));
    if (rt->link == NULL)
        return;
    if (rt->lease_asked_ms != 0 && real_ms() - rt->lease_asked_ms > LEASE_ASK_STALE_MS) {
        /* The answer was lost (control plane restarted): ask again. */
        sy_budget_lease_unask(rt->budgets);
        rt->lease_asked_ms = 0;
    }
    /* Renewals and releases; a no-op when there is nothing to ask. */
    sy_control_link_want_lease(rt->link);
}

void sy_routing_set_link(sy_routing_t *rt, void *link)
{
    if (rt == NULL)
        return;
    if (rt->link != NULL)
        sy_control_link_set_lease(rt->link, NULL, NULL, NULL);
    rt->link = link;
    sy_budget_set_lease_mode(rt->budgets, link != NULL);
    if (link != NULL)
        sy_control_link_set_lease(rt->link, lease_build, lease_grant, rt);
}
