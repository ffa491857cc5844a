/* Per-worker usage aggregator: folds every finished request into a row keyed
 * by (minute, tenant, team, key, route, provider, model) with token and cost
 * counters and latency / time-to-first-token histograms. The control link
 * drains the rows as Switchyard__UsageRow values and ships them in
 * UsageReports. Single-threaded: one aggregator per worker loop. */
#ifndef SY_DP_USAGE_H
#define SY_DP_USAGE_H

#include "defs.h"
#include "switchyard.pb-c.h"

/* Histogram bucket upper bounds in milliseconds (inclusive); a last,
 * open-ended bucket follows, so a histogram has SY_USAGE_BUCKETS counts:
 * <=10, <=25, <=50, <=100, <=250, <=500, <=1000, <=2500, <=5000, <=10000,
 * <=30000, <=60000, >60000. */
#define SY_USAGE_BUCKETS 13
extern const uint32_t sy_usage_bucket_ms[SY_USAGE_BUCKETS - 1];

typedef struct sy_usage sy_usage_t;

/* One finished request. Strings are borrowed for the call; NULL means "". */
typedef struct sy_usage_sample {
    int64_t unix_ms;         /* when the request started */
    const char *tenant_id;   /* borrowed */
    const char *team_id;     /* borrowed */
    const char *key_id;      /* borrowed */
    const char *route;       /* borrowed; the alias asked for, or "" for a concrete model */
    const char *provider_id; /* borrowed */
    const char *model_id;    /* borrowed */
    bool error;              /* the request failed (status >= 400 or a broken stream) */
    bool estimated;          /* tokens were estimated, not reported by the provider */
    uint64_t prompt_tokens;  /* including cached */
    uint64_t completion_tokens;
    uint64_t cached_tokens; /* subset of prompt_tokens */
    uint64_t cache_write_tokens;
    double cost_usd;
    int64_t latency_ms; /* total latency; < 0 = not measured */
    int64_t ttft_ms;    /* time to first token; < 0 = not measured (not counted) */
} sy_usage_sample_t;

/* Returns NULL on ENOMEM. */
sy_usage_t *sy_usage_new(void);
/* Frees the aggregator and every row not yet drained. NULL is a no-op. */
void sy_usage_free(sy_usage_t *u);

/* Folds one request into its row. Returns 0 or SY_ENOMEM (the sample is
 * then lost, and counted in sy_usage_dropped). */
int sy_usage_record(sy_usage_t *u, const sy_usage_sample_t *s);

/* Number of rows accumulated since the last drain. */
size_t sy_usage_row_count(const sy_usage_t *u);
/* Samples lost to allocation failures since creation. */
uint64_t sy_usage_dropped(const sy_usage_t *u);

/* Moves every accumulated row out of the aggregator (which is then empty)
 * into a newly allocated array of newly allocated Switchyard__UsageRow
 * (strings and histograms owned by each row). Writes *rows and *n only on
 * success (with *rows NULL and *n 0 when there was nothing); free them with
 * sy_usage_rows_free. Returns 0 or SY_ENOMEM (nothing is drained then). */
int sy_usage_drain(sy_usage_t *u, Switchyard__UsageRow ***rows, size_t *n);

/* Frees rows returned by sy_usage_drain. NULL is a no-op. */
void sy_usage_rows_free(Switchyard__UsageRow **rows, size_t n);

/* The bucket index of a duration. */
unsigned sy_usage_bucket(int64_t ms);

#endif
