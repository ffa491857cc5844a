/* The routing table of a worker: an immutable, reference-counted index over
 * one Switchyard__Snapshot (tenants, teams, API keys by SHA-256, providers,
 * models with prices, routes).
 *
 * A table is built once (from a protobuf message or a file) and never
 * changes afterwards, so the request path reads it without locks. A worker
 * holds one reference for its current table and every request holds one for
 * the table it started with; installing a newer table only swaps the
 * worker's pointer (sy_worker_install_snapshot in worker.h). */
#ifndef SY_DP_SNAPSHOT_H
#define SY_DP_SNAPSHOT_H

#include "err.h"
#include "switchyard.pb-c.h"

#define SY_SNAPSHOT_SHA256_LEN 32

typedef struct sy_snapshot sy_snapshot_t;

/* A model as the request path sees it. */
typedef struct sy_snapshot_model {
    const Switchyard__Model *pb;          /* borrowed from the table's message */
    const Switchyard__Provider *provider; /* borrowed; NULL when provider_id is unknown */
    bool rename;                          /* upstream_name is set and differs from id */
} sy_snapshot_model_t;

/* An API key with its tenant and team resolved. */
typedef struct sy_snapshot_key {
    const Switchyard__ApiKey *pb;     /* borrowed */
    const Switchyard__Tenant *tenant; /* borrowed; NULL when tenant_id is unknown */
    const Switchyard__Team *team;     /* borrowed; NULL when team_id is empty or unknown */
} sy_snapshot_key_t;

/* Builds a table from msg. The message is deep-copied: the caller keeps
 * ownership of msg and may free it right after. Keys whose sha256 is not 32
 * bytes are rejected with SY_EINVAL (a message in err), as are duplicate
 * ids. Writes *out (one reference, owned by the caller) only on success. */
int sy_snapshot_from_proto(const Switchyard__Snapshot *msg, sy_snapshot_t **out, sy_err_t *err);

/* Reads a snapshot file: JSON (first non-blank byte '{', shape documented in
 * dataplane/README.md) or else a binary protobuf Switchyard__Snapshot.
 * Writes *out (one reference) only on success. */
int sy_snapshot_load_file(const char *path, sy_snapshot_t **out, sy_err_t *err);

/* Parses the JSON form into a newly allocated message (free it with
 * switchyard__snapshot__free_unpacked(msg, NULL)). Field names are the proto
 * names; bytes fields are hex; enums are names or numbers; map fields are
 * JSON objects. Unknown members are rejected so that typos do not pass. */
int sy_snapshot_json_to_proto(const char *json, size_t len, Switchyard__Snapshot **out,
                              sy_err_t *err);

sy_snapshot_t *sy_snapshot_ref(sy_snapshot_t *s);
/* Drops one reference; the last one frees the table. NULL is a no-op. */
void sy_snapshot_unref(sy_snapshot_t *s);

/* The message the table indexes (borrowed, valid while a reference is held). */
const Switchyard__Snapshot *sy_snapshot_proto(const sy_snapshot_t *s);
uint64_t sy_snapshot_version(const sy_snapshot_t *s);

/* Looks a key up by the SHA-256 of its secret; NULL when unknown. */
const sy_snapshot_key_t *sy_snapshot_find_key(const sy_snapshot_t *s,
                                              const unsigned char sha256[SY_SNAPSHOT_SHA256_LEN]);
/* Looks a model up by the name clients use; NULL when unknown. */
const sy_snapshot_model_t *sy_snapshot_find_model(const sy_snapshot_t *s, sy_str_t id);
const Switchyard__Provider *sy_snapshot_find_provider(const sy_snapshot_t *s, sy_str_t id);
const Switchyard__Tenant *sy_snapshot_find_tenant(const sy_snapshot_t *s, sy_str_t id);
/* Finds the route whose alias is name for tenant_id (a tenant's own route
 * wins over a route for every tenant); NULL when none. */
const Switchyard__Route *sy_snapshot_find_route(const sy_snapshot_t *s, sy_str_t alias,
                                                const char *tenant_id);

/* Number of models and the i-th model, in snapshot order (for /v1/models). */
size_t sy_snapshot_model_count(const sy_snapshot_t *s);
const sy_snapshot_model_t *sy_snapshot_model_at(const sy_snapshot_t *s, size_t i);

/* True when key may use model_id (an empty allowed list allows every model). */
bool sy_snapshot_key_allows(const sy_snapshot_key_t *k, sy_str_t model_id);

/* The price valid at unix time t: the last one with valid_from <= t; NULL
 * when the model has none (cost is then 0). */
const Switchyard__Price *sy_snapshot_price_at(const Switchyard__Model *m, int64_t t);

/* Cost in USD of tokens under price p (per million tokens). cached tokens
 * are a subset of prompt tokens; a cached price of 0 means "not set" and
 * bills them at the input price. */
double sy_snapshot_cost(const Switchyard__Price *p, uint64_t prompt, uint64_t completion,
                        uint64_t cached, uint64_t cache_write);

/* Parses 64 hex characters into 32 bytes. Returns 0 or SY_EINVAL. */
int sy_snapshot_hex_to_sha256(const char *hex, size_t len,
                              unsigned char out[SY_SNAPSHOT_SHA256_LEN]);

#endif
