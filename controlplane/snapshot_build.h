/* Builds the complete routing snapshot (proto Snapshot) from the store's
 * tables: tenants, teams, live API keys (revoked and expired ones left out),
 * providers with their credentials decrypted under the master key, models
 * with dated prices, routes with rules and targets, and budgets with their
 * spend in the current window. An exhausted hard budget sets `blocked` on
 * the tenant, team or key it covers. */
#ifndef SY_SNAPSHOT_BUILD_H
#define SY_SNAPSHOT_BUILD_H

#include <sqlite3.h>

#include "envelope.h"
#include "err.h"
#include "switchyard.pb-c.h"

typedef struct sy_snapshot_build sy_snapshot_build_t;

/* Reads db (borrowed) into a new snapshot with the given version, creation
 * time (unix ms; budget windows use it too) and live worker count.
 * master_key (borrowed) opens provider credentials; NULL leaves them empty.
 * Writes *out only on success; free with sy_snapshot_build_free. */
int sy_snapshot_build(sqlite3 *db, const sy_envelope_key_t *master_key, uint64_t version,
                      int64_t now_ms, uint32_t live_workers, sy_snapshot_build_t **out,
                      sy_err_t *err);

/* The built message (owned by b; valid until sy_snapshot_build_free). */
const Switchyard__Snapshot *sy_snapshot_build_message(const sy_snapshot_build_t *b);

/* Frees b and everything the message points to. NULL is a no-op. */
void sy_snapshot_build_free(sy_snapshot_build_t *b);

#endif
