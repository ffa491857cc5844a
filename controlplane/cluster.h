/* The control plane's side of the cluster channels (DESIGN.md, Channels):
 * builds the routing snapshot from the store, seals it and publishes it over
 * nanomsg NN_PUB on every change (debounced) and on a heartbeat; answers
 * workers' Hello and UsageReport requests over NN_REP. Both sockets are
 * polled by libuv through NN_RCVFD and never block the loop.
 *
 * Usage reports are applied exactly once (controlplane/reports.h); messages
 * that fail to open under the cluster key are dropped and counted. */
#ifndef SY_CLUSTER_H
#define SY_CLUSTER_H

#include <sqlite3.h>
#include <uv.h>

#include "buf.h"
#include "envelope.h"

typedef struct sy_cluster sy_cluster_t;

typedef struct sy_cluster_options {
    const char *data_dir;      /* borrowed; where default ipc sockets and cluster.key live */
    const char *snapshot_bind; /* borrowed; NN_PUB address, NULL = ipc://<data_dir>/snapshots.ipc */
    const char *report_bind;   /* borrowed; NN_REP address, NULL = ipc://<data_dir>/reports.ipc */
    const char *cluster_key_file;        /* borrowed; NULL = SWITCHYARD_CLUSTER_KEY, else
                                          * <data_dir>/cluster.key (generated on first start) */
    const sy_envelope_key_t *master_key; /* borrowed; decrypts provider credentials */
    int64_t heartbeat_ms;                /* republish interval, 0 = 1000 */
    int64_t debounce_ms;                 /* delay between a change and its snapshot, 0 = 50 */
    int64_t usage_refresh_ms;            /* rebuild after applied usage (budget spend), 0 = 5000 */
} sy_cluster_options_t;

/* Loads (or generates) the cluster key, binds both sockets, builds and
 * publishes the first snapshot and starts polling on loop. db is borrowed: it
 * is the store's single writing connection and must outlive the cluster.
 * Writes *out only on success; on failure returns SY_E* with a message in err. */
int sy_cluster_start(uv_loop_t *loop, sqlite3 *db, const sy_cluster_options_t *opts,
                     sy_cluster_t **out, sy_err_t *err);

/* Schedules a snapshot rebuild (debounced). Call after every committed
 * mutation. NULL is a no-op. */
void sy_cluster_notify_change(sy_cluster_t *c);

/* Closes the sockets and the libuv handles; the struct is freed once the last
 * close callback has run (keep running the loop). NULL is a no-op. */
void sy_cluster_stop(sy_cluster_t *c);

/* Appends the cluster counters as one JSON object to out, e.g.
 * {"snapshot_version":..,"snapshot_bytes":..,"snapshot_build_ms":..,
 *  "snapshots_published":..,"hellos":..,"reports_applied":..,
 *  "reports_duplicate":..,"rejected_messages":..,..}. Returns 0 or SY_ENOMEM. */
int sy_cluster_stats_json(const sy_cluster_t *c, sy_buf_t *out);

/* The current snapshot version (0 before the first build). */
uint64_t sy_cluster_snapshot_version(const sy_cluster_t *c);

#endif
