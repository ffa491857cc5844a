/* Per-worker usage aggregator; see usage.h. */
#include "dataplane/usage.h"

#include <stdlib.h>
#include <string.h>

const uint32_t sy_usage_bucket_ms[SY_USAGE_BUCKETS - 1] = {10,   25,   50,   100,   250,   500,
                                                           1000, 2500, 5000, 10000, 30000, 60000};

#define NKEYS 6 /* tenant, team, key, route, provider, model */

typedef struct row {
    struct row *next;  /* owned; hash chain */
    uint64_t hash;     /* of minute and the key strings */
    int64_t minute;    /* unix seconds, start of the minute */
    char *key;         /* owned; the six strings, each NUL-terminated, back to back */
    size_t key_len;    /* bytes of key including the NULs */
    uint64_t requests; /* counters as in Switchyard__UsageRow */
    uint64_t errors;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t cache_write_tokens;
    uint64_t estimated_requests;
    double cost_usd;
    uint32_t latency_hist[SY_USAGE_BUCKETS];
    uint32_t ttft_hist[SY_USAGE_BUCKETS];
} row_t;

struct sy_usage {
    row_t **buckets;  /* owned; hash table of chains */
    size_t nbuckets;  /* power of two */
    size_t nrows;     /* rows in the table */
    uint64_t dropped; /* samples lost to ENOMEM */
};

sy_usage_t *sy_usage_new(void)
{
    sy_usage_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->nbuckets = 64;
    u->buckets = calloc(u->nbuckets, sizeof(*u->buckets));
    if (u->buckets == NULL) {
        free(u);
        return NULL;
    }
    return u;
}

static void clear_rows(sy_usage_t *u)
{
    for (size_t i = 0; i < u->nbuckets; i++) {
        row_t *r = u->buckets[i];
        while (r != NULL) {
            row_t *next = r->next;
            free(r->key);
            free(r);
            r = next;
        }
        u->buckets[i] = NULL;
    }
    u->nrows = 0;
}

void sy_usage_free(sy_usage_t *u)
{
    if (u == NULL)
        return;
    clear_rows(u);
    free(u->buckets);
    free(u);
}

unsigned sy_usage_bucket(int64_t ms)
{
    unsigned i = 0;
    while (i < SY_USAGE_BUCKETS - 1 && ms > (int64_t)sy_usage_bucket_ms[i])
        i++;
    return i;
}

static void grow(sy_usage_t *u)
{
    size_t n = u->nbuckets * 2;
    row_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < u->nbuckets; i++) {
        row_t *r = u->buckets[i];
        while (r != NULL) {
            row_t *next = r->next;
            r->next = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
            r = next;
        }
    }
    free(u->buckets);
    u->buckets = b;
    u->nbuckets = n;
}

int sy_usage_record(sy_usage_t *u, const sy_usage_sample_t *s)
{
    const char *parts[NKEYS] = {s->tenant_id, s->team_id,     s->key_id,
                                s->route,     s->provider_id, s->model_id};
    size_t lens[NKEYS];
    size_t key_len = 0;
    int64_t minute = s->unix_ms / 60000 * 60;
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)minute;
    h *= 1099511628211ULL;
    for (int i = 0; i < NKEYS; i++) {
        if (parts[i] == NULL)
            parts[i] = "";
        lens[i] = strlen(parts[i]) + 1;
        for (size_t j = 0; j < lens[i]; j++) {
            h ^= (unsigned char)parts[i][j];
            h *= 1099511628211ULL;
        }
        key_len += lens[i];
    }
    row_t **slot = &u->buckets[h & (u->nbuckets - 1)];
    row_t *r = *slot;
    for (; r != NULL; r = r->next) {
        if (r->hash != h || r->minute != minute || r->key_len != key_len)
            continue;
        const char *k = r->key;
        int i = 0;
        for (; i < NKEYS; i++) {
            if (memcmp(k, parts[i], lens[i]) != 0)
                break;
            k += lens[i];
        }
        if (i == NKEYS)
            break;
    }
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        char *key = malloc(key_len);
        if (r == NULL || key == NULL) {
            free(r);
            free(key);
            u->dropped++;
            return SY_ENOMEM;
        }
        char *k = key;
        for (int i = 0; i < NKEYS; i++) {
            memcpy(k, parts[i], lens[i]);
            k += lens[i];
        }
        r->key = key;
        r->key_len = key_len;
        r->hash = h;
        r->minute = minute;
        r->next = *slot;
        *slot = r;
        if (++u->nrows > u->nbuckets)
            grow(u);
    }
    r->requests++;
    r->errors += s->error ? 1 : 0;
    r->estimated_requests += s->estimated ? 1 : 0;
    r->prompt_tokens += s->prompt_tokens;
    r->completion_tokens += s->completion_tokens;
    r->cached_tokens += s->cached_tokens;
    r->cache_write_tokens += s->cache_write_tokens;
    r->cost_usd += s->cost_usd;
    if (s->latency_ms >= 0)
        r->latency_hist[sy_usage_bucket(s->latency_ms)]++;
    if (s->ttft_ms >= 0)
        r->ttft_hist[sy_usage_bucket(s->ttft_ms)]++;
    return 0;
}

size_t sy_usage_row_count(const sy_usage_t *u)
{
    return u->nrows;
}

uint64_t sy_usage_dropped(const sy_usage_t *u)
{
    return u->dropped;
}

void sy_usage_rows_free(Switchyard__UsageRow **rows, size_t n)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (rows[i] != NULL)
            switchyard__usage_row__free_unpacked(rows[i], NULL);
    free(rows);
}

static char *dup_part(const char **k)
{
    size_t l = strlen(*k);
    char *s = malloc(l + 1);
    if (s != NULL)
        memcpy(s, *k, l + 1);
    *k += l + 1;
    return s;
}

static Switchyard__UsageRow *to_proto(const row_t *r)
{
    Switchyard__UsageRow *p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    switchyard__usage_row__init(p);
    const char *k = r->key;
    char **dst[NKEYS] = {&p->tenant_id, &p->team_id,     &p->key_id,
                         &p->route,     &p->provider_id, &p->model_id};
    bool ok = true;
    for (int i = 0; i < NKEYS; i++) {
        char *s = dup_part(&k);
        if (s == NULL)
            ok = false;
        else
            *dst[i] = s;
    }
    p->latency_hist = malloc(sizeof(r->latency_hist));
    p->ttft_hist = malloc(sizeof(r->ttft_hist));
    if (p->latency_hist != NULL) {
        memcpy(p->latency_hist, r->latency_hist, sizeof(r->latency_hist));
        p->n_latency_hist = SY_USAGE_BUCKETS;
    }
    if (p->ttft_hist != NULL) {
        memcpy(p->ttft_hist, r->ttft_hist, sizeof(r->ttft_hist));
        p->n_ttft_hist = SY_USAGE_BUCKETS;
    }
    if (!ok || p->latency_hist == NULL || p->ttft_hist == NULL) {
        switchyard__usage_row__free_unpacked(p, NULL);
        return NULL;
    }
    p->minute = r->minute;
    p->requests = r->requests;
    p->errors = r->errors;
    p->prompt_tokens = r->prompt_tokens;
    p->completion_tokens = r->completion_tokens;
    p->cached_tokens = r->cached_tokens;
    p->cache_write_tokens = r->cache_write_tokens;
    p->estimated_requests = r->estimated_requests;
    p->cost_usd = r->cost_usd;
    return p;
}

int sy_usage_drain(sy_usage_t *u, Switchyard__UsageRow ***rows, size_t *n)
{
    if (u->nrows == 0) {
        *rows = NULL;
        *n = 0;
        return 0;
    }
    Switchyard__UsageRow **out = calloc(u->nrows, sizeof(*out));
    if (out == NULL)
        return SY_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < u->nbuckets; i++) {
        for (row_t *r = u->buckets[i]; r != NULL; r = r->next) {
            out[k] = to_proto(r);
            if (out[k] == NULL) {
                sy_usage_rows_free(out, k);
                return SY_ENOMEM;
            }
            k++;
        }
    }
    clear_rows(u);
    *rows = out;
    *n = k;
    return 0;
}
