/* Route rules, strategies and per-target live state; see router.h. */
#include "dataplane/router.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dataplane/strmap.h"

#define HEADROOM_TTL_MS 60000
#define LOW_HEADROOM 0.1
#define DEFAULT_OUTPUT_TOKENS 256

struct sy_router {
    sy_strmap_t *targets;    /* owned; "provider\nmodel" -> sy_router_target_t */
    sy_breaker_config_t cfg; /* breaker settings for every target */
};

sy_router_t *sy_router_new(const sy_breaker_config_t *cfg)
{
    sy_router_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    rt->cfg = cfg ? *cfg : sy_breaker_defaults;
    rt->targets = sy_strmap_new(sizeof(sy_router_target_t));
    if (rt->targets == NULL) {
        free(rt);
        return NULL;
    }
    return rt;
}

void sy_router_free(sy_router_t *rt)
{
    if (rt == NULL)
        return;
    sy_strmap_free(rt->targets);
    free(rt);
}

const sy_breaker_config_t *sy_router_breaker_config(const sy_router_t *rt)
{
    return &rt->cfg;
}

sy_router_target_t *sy_router_state(sy_router_t *rt, const char *provider_id, const char *model_id)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "%s\n%s", provider_id ? provider_id : "",
                     model_id ? model_id : "");
    if (n < 0)
        return NULL;
    size_t len = (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1;
    bool created = false;
    sy_router_target_t *t = sy_strmap_upsert(rt->targets, (sy_str_t){key, len}, &created);
    if (t != NULL && created) {
        sy_breaker_init(&t->breaker);
        t->rl_req_limit = t->rl_req_remaining = -1;
        t->rl_tok_limit = t->rl_tok_remaining = -1;
    }
    return t;
}

/* --- rules ------------------------------------------------------------------- */

static bool str_ieq(sy_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || strncasecmp(a.ptr, b, n) == 0);
}

static bool rule_matches(const Switchyard__RouteRule *r, const sy_router_input_t *in)
{
    if (r->task != NULL && r->task[0] != '\0' && !str_ieq(in->task, r->task))
        return false;
    if (r->min_prompt_tokens > 0 && in->prompt_tokens < r->min_prompt_tokens)
        return false;
    if (r->tenant_tier != NULL && r->tenant_tier[0] != '\0' &&
        (in->tenant_tier == NULL || strcasecmp(in->tenant_tier, r->tenant_tier) != 0))
        return false;
    if (r->latency_class != NULL && r->latency_class[0] != '\0' &&
        !str_ieq(in->latency_class, r->latency_class))
        return false;
    if (r->max_budget_remaining_fraction > 0 &&
        !(in->budget_remaining_fraction < r->max_budget_remaining_fraction))
        return false;
    return true;
}

const Switchyard__RouteRule *sy_router_match(const Switchyard__Route *route,
                                             const sy_router_input_t *in)
{
    for (size_t i = 0; i < route->n_rules; i++)
        if (rule_matches(route->rules[i], in))
            return route->rules[i];
    return NULL;
}

/* --- measurements ------------------------------------------------------------- */

void sy_router_observe_ttft(sy_router_target_t *t, uint32_t ms)
{
    t->ttft[t->ttft_pos] = ms;
    t->ttft_pos = (t->ttft_pos + 1) % SY_ROUTER_TTFT_SAMPLES;
    if (t->n_ttft < SY_ROUTER_TTFT_SAMPLES)
        t->n_ttft++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int64_t sy_router_ttft_percentile(const sy_router_target_t *t, unsigned pct)
{
    if (t->n_ttft == 0)
        return -1;
    uint32_t v[SY_ROUTER_TTFT_SAMPLES];
    memcpy(v, t->ttft, t->n_ttft * sizeof(v[0]));
    qsort(v, t->n_ttft, sizeof(v[0]), cmp_u32);
    if (pct > 100)
        pct = 100;
    size_t idx = (size_t)((pct * (t->n_ttft - 1) + 50) / 100);
    return v[idx];
}

static bool parse_i64(sy_str_t v, int64_t *out)
{
    v = sy_str_trim(v);
    while (v.len > 0 && (v.ptr[v.len - 1] == '\r' || v.ptr[v.len - 1] == '\n'))
        v.len--;
    uint64_t u;
    if (sy_str_to_u64(v, &u) != 0 || u > INT64_MAX)
        return false;
    *out = (int64_t)u;
    return true;
}

void sy_router_observe_header(sy_router_target_t *t, sy_str_t name, sy_str_t value, uint64_t now_ms)
{
    static const struct {
        const char *name;
        size_t field; /* offset in sy_router_target_t */
    } map[] = {
        {"x-ratelimit-limit-requests", offsetof(sy_router_target_t, rl_req_limit)},
        {"x-ratelimit-remaining-requests", offsetof(sy_router_target_t, rl_req_remaining)},
        {"x-ratelimit-limit-tokens", offsetof(sy_router_target_t, rl_tok_limit)},
        {"x-ratelimit-remaining-tokens", offsetof(sy_router_target_t, rl_tok_remaining)},
        {"anthropic-ratelimit-requests-limit", offsetof(sy_router_target_t, rl_req_limit)},
        {"anthropic-ratelimit-requests-remaining", offsetof(sy_router_target_t, rl_req_remaining)},
        {"anthropic-ratelimit-tokens-limit", offsetof(sy_router_target_t, rl_tok_limit)},
        {"anthropic-ratelimit-tokens-remaining", offsetof(sy_router_target_t, rl_tok_remaining)},
    };
    if (name.len < 18)
        return;
    char c = name.ptr[0] | 0x20;
    if (c != 'x' && c != 'a')
        return;
    for (size_t i = 0; i < SY_ARRAY_LEN(map); i++) {
        if (!sy_str_case_eq_cstr(name, map[i].name))
            continue;
        int64_t v;
        if (parse_i64(value, &v)) {
            *(int64_t *)((char *)t + map[i].field) = v;
            t->rl_seen_ms = now_ms;
        }
        return;
    }
}

double sy_router_headroom(const sy_router_target_t *t, uint64_t now_ms)
{
    if (t->rl_seen_ms == 0 || now_ms > t->rl_seen_ms + HEADROOM_TTL_MS)
        return -1;
    double h = -1;
    if (t->rl_req_limit > 0 && t->rl_req_remaining >= 0)
        h = (double)t->rl_req_remaining / (double)t->rl_req_limit;
    if (t->rl_tok_limit > 0 && t->rl_tok_remaining >= 0) {
        double k = (double)t->rl_tok_remaining / (double)t->rl_tok_limit;
        if (h < 0 || k < h)
            h = k;
    }
    return h;
}

double sy_router_estimate_cost(const Switchyard__Model *m, int64_t t, uint64_t prompt_tokens,
                               uint64_t output_tokens)
{
    const Switchyard__Price *p = sy_snapshot_price_at(m, t);
    if (p == NULL)
        return 0.0;
    return (p->input_per_mtok * (double)prompt_tokens +
            p->output_per_mtok * (double)output_tokens) /
           1e6;
}

/* --- planning ------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Stable insertion sort by score (at most SY_ROUTER_MAX_CANDIDATES). */
static void sort_by_score(sy_router_candidate_t *c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        sy_router_candidate_t v = c[i];
        size_t j = i;
        while (j > 0 && c[j - 1].score > v.score) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = v;
    }
}

static void weighted_order(sy_router_candidate_t *c, size_t n, uint64_t rnd)
{
    /* Repeatedly draw one of the remaining targets with probability
     * proportional to its weight; zero weights keep their order at the end. */
    for (size_t i = 0; i < n; i++) {
        uint64_t total = 0;
        for (size_t j = i; j < n; j++)
            total += c[j].target->weight;
        size_t pick = i;
        if (total > 0) {
            uint64_t x = xorshift(&rnd) % total;
            for (size_t j = i; j < n; j++) {
                if (x < c[j].target->weight) {
                    pick = j;
                    break;
                }
                x -= c[j].target->weight;
            }
        }
        sy_router_candidate_t v = c[pick];
        memmove(&c[i + 1], &c[i], (pick - i) * sizeof(*c));
        c[i] = v;
        c[i].score = (double)i;
    }
}

int sy_router_plan(sy_router_t *rt, const sy_snapshot_t *snap, const Switchyard__Route *route,
                   const sy_router_input_t *in, uint64_t now_ms, uint64_t rnd,
                   sy_router_plan_t *out)
{
    const Switchyard__RouteRule *rule = sy_router_match(route, in);
    if (rule == NULL)
        return SY_ENOENT;
    sy_router_plan_t p;
    p.rule = rule;
    p.n = 0;
    p.skipped_open = p.skipped_unknown = 0;
    const char *strategy = rule->strategy ? rule->strategy : "";
    uint64_t out_tokens = in->max_output_tokens;
    for (size_t i = 0; i < rule->n_targets && p.n < SY_ROUTER_MAX_CANDIDATES; i++) {
        const Switchyard__RouteTarget *t = rule->targets[i];
        const sy_snapshot_model_t *m = sy_snapshot_find_model(snap, sy_str_from_cstr(t->model_id));
        const Switchyard__Provider *prov = m ? m->provider : NULL;
        if (m != NULL && t->provider_id != NULL && t->provider_id[0] != '\0' &&
            (prov == NULL || strcmp(prov->id, t->provider_id) != 0))
            prov = sy_snapshot_find_provider(snap, sy_str_from_cstr(t->provider_id));
        if (m == NULL || prov == NULL) {
            p.skipped_unknown++;
            continue;
        }
        sy_router_target_t *st = sy_router_state(rt, prov->id, m->pb->id);
        if (st == NULL)
            return SY_ENOMEM;
        if (!sy_breaker_usable(&st->breaker, &rt->cfg, now_ms)) {
            p.skipped_open++;
            continue;
        }
        sy_router_candidate_t *c = &p.c[p.n++];
        c->target = t;
        c->model = m;
        c->provider = prov;
        c->state = st;
        c->score = (double)i;
        if (strcmp(strategy, "lowest-cost") == 0) {
            uint64_t o = out_tokens ? out_tokens
                                    : (m->pb->default_max_tokens ? m->pb->default_max_tokens
                                                                 : DEFAULT_OUTPUT_TOKENS);
            c->score = sy_router_estimate_cost(m->pb, in->now_unix, in->prompt_tokens, o);
        } else if (strcmp(strategy, "least-busy") == 0) {
            c->score = (double)st->in_flight;
        } else if (strcmp(strategy, "lowest-latency") == 0) {
            int64_t p50 = sy_router_ttft_percentile(st, 50);
            c->score = p50 < 0 ? 0.0 : (double)p50;
            double h = sy_router_headroom(st, now_ms);
            if (h >= 0 && h < LOW_HEADROOM)
                c->score += 1e9 * (LOW_HEADROOM - h);
        }
    }
    if (strcmp(strategy, "weighted") == 0)
        weighted_order(p.c, p.n, rnd);
    /* Targets cooling down after a Retry-After go last, in their order. */
    for (size_t i = 0; i < p.n; i++)
        if (p.c[i].state->cooldown_until_ms > now_ms)
            p.c[i].score += 1e12;
    sort_by_score(p.c, p.n);
    *out = p;
    return 0;
}

/* --- stats --------------------------------------------------------------------- */

typedef struct stats_ctx {
    const sy_router_t *rt;
    uint64_t now;
    sy_buf_t *out;
    size_t k;
    int rc;
} stats_ctx_t;

static bool stats_one(sy_str_t key, void *value, void *arg)
{
    stats_ctx_t *c = arg;
    const sy_router_target_t *t = value;
    const char *nl = memchr(key.ptr, '\n', key.len);
    size_t plen = nl ? (size_t)(nl - key.ptr) : key.len;
    sy_buf_t *b = c->out;
    if (c->k++ > 0)
        c->rc |= sy_buf_append_str(b, ",");
    c->rc |= sy_buf_append_str(b, "{\"provider\":");
    c->rc |= sy_buf_append_json_string(b, key.ptr, plen);
    c->rc |= sy_buf_append_str(b, ",\"model\":");
    c->rc |= nl ? sy_buf_append_json_string(b, nl + 1, key.len - plen - 1)
                : sy_buf_append_str(b, "\"\"");
    c->rc |=
        sy_buf_appendf(b,
                       ",\"breaker\":\"%s\",\"opens\":%llu,\"in_flight\":%u,\"attempts\":%llu,"
                       "\"failures\":%llu,\"ttft_p50_ms\":%lld,\"headroom\":%.3f}",
                       sy_breaker_state_name(&t->breaker, &c->rt->cfg, c->now),
                       (unsigned long long)t->breaker.opens, t->in_flight,
                       (unsigned long long)t->attempts, (unsigned long long)t->failures,
                       (long long)sy_router_ttft_percentile(t, 50), sy_router_headroom(t, c->now));
    return false;
}

int sy_router_stats_json(const sy_router_t *rt, uint64_t now_ms, sy_buf_t *out)
{
    stats_ctx_t c = {rt, now_ms, out, 0, 0};
    c.rc |= sy_buf_append_str(out, "[");
    sy_strmap_sweep(rt->targets, stats_one, &c);
    c.rc |= sy_buf_append_str(out, "]");
    return c.rc ? SY_ENOMEM : 0;
}
