/* A small string-keyed hash map with fixed-size values stored inline, for
 * the per-worker state that outlives snapshots (rate-limit buckets, target
 * health, budget leases). Keys are copied; values are zeroed on creation
 * and stay at the same address until removed. Single-threaded. */
#ifndef SY_DP_STRMAP_H
#define SY_DP_STRMAP_H

#include "defs.h"

typedef struct sy_strmap sy_strmap_t;

/* Returns NULL on ENOMEM. value_size is the size of every value. */
sy_strmap_t *sy_strmap_new(size_t value_size);
/* Frees the map and every value. NULL is a no-op. */
void sy_strmap_free(sy_strmap_t *m);

/* The value for key, or NULL when absent. */
void *sy_strmap_get(const sy_strmap_t *m, sy_str_t key);
/* The value for key, created zeroed when absent (*created set then; may be
 * NULL). Returns NULL on ENOMEM. */
void *sy_strmap_upsert(sy_strmap_t *m, sy_str_t key, bool *created);

/* Calls fn for every entry; entries for which fn returns true are removed
 * (their values freed). */
void sy_strmap_sweep(sy_strmap_t *m, bool (*fn)(sy_str_t key, void *value, void *arg), void *arg);

size_t sy_strmap_count(const sy_strmap_t *m);

#endif
