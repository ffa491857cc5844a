/* The data-plane side of the cluster channels (DESIGN.md, Channels): a
 * worker SUBscribes to sealed snapshots, REQuests a Hello (which returns the
 * current snapshot at once) and ships its usage as UsageReports, all polled
 * by libuv through the nanomsg descriptors, never blocking the loop.
 *
 * - Snapshots: a valid, newer snapshot is turned into a table
 *   (sy_snapshot_from_proto) and handed to the install callback; the sealed
 *   message is kept in <state_dir>/snapshot.sealed so a worker started while
 *   the control plane is down serves from it at once. A message that fails
 *   to open under the cluster key (wrong key, a flipped byte) is dropped,
 *   logged and counted, never applied.
 * - Usage: about every report_interval_ms the usage aggregator is drained
 *   into a UsageReport (worker_id, boot_id, seq). Each report is appended to
 *   <state_dir>/reports-<worker>.spool before it is sent and kept until the
 *   control plane acks it; at most max_pending reports stay in memory, the
 *   rest wait in the spool file. A restarted worker with the same worker_id
 *   replays the reports its predecessor never got acked, under their
 *   original (boot_id, seq), so the control plane applies each exactly once. */
#ifndef SY_CONTROL_LINK_H
#define SY_CONTROL_LINK_H

#include <uv.h>

#include "buf.h"
#include "dataplane/snapshot.h"
#include "dataplane/usage.h"
#include "envelope.h"

typedef struct sy_control_link sy_control_link_t;

/* Receives a new table; takes over the one reference passed in. */
typedef void (*sy_control_link_install_fn)(void *arg, sy_snapshot_t *snap);

typedef struct sy_control_link_options {
    const char *snapshots_url;    /* borrowed; NN_SUB connect address, NULL = no snapshots */
    const char *reports_url;      /* borrowed; NN_REQ connect address, NULL = no reports */
    const sy_envelope_key_t *key; /* borrowed for the call (copied); the cluster key */
    const char *worker_id;        /* borrowed (copied); stable across restarts, e.g. host/3 */
    const char *host;             /* borrowed (copied); for Hello, NULL = gethostname */
    const char *state_dir;        /* borrowed (copied); snapshot cache and spool, NULL = none */
    sy_usage_t *usage;            /* borrowed; drained into reports, NULL = none */
    sy_control_link_install_fn install; /* called on every newer valid snapshot */
    void *install_arg;                  /* passed to install */
    uint64_t have_version;              /* version the worker already serves (0 = none) */
    int64_t report_interval_ms;         /* 0 = 1000 */
    size_t max_pending;                 /* reports kept in memory, 0 = 64 */
} sy_control_link_options_t;

/* Connects the sockets (nanomsg connects in the background and keeps
 * retrying, so a missing control plane is not an error), loads the cached
 * snapshot if there is one newer than have_version (installing it before
 * returning), reloads unacked reports from the spool and starts polling on
 * loop. Writes *out only on success; SY_E* with a message in err otherwise. */
int sy_control_link_start(uv_loop_t *loop, const sy_control_link_options_t *opts,
                          sy_control_link_t **out, sy_err_t *err);

/* Budget leases (issue 6; dataplane/routing.c). build packs a
 * Switchyard__LeaseRequest into out and returns 0, or SY_ENOENT when there is
 * nothing to ask; grant receives the control plane's answer (borrowed for the
 * call). Both run on the loop. NULL callbacks turn leases off. */
typedef int (*sy_control_link_lease_build_fn)(void *arg, const char *worker_id, const char *boot_id,
                                              sy_buf_t *out);
typedef void (*sy_control_link_lease_grant_fn)(void *arg, const Switchyard__LeaseGrant *g);
void sy_control_link_set_lease(sy_control_link_t *l, sy_control_link_lease_build_fn build,
                               sy_control_link_lease_grant_fn grant, void *arg);
/* Sends a lease request as soon as the request channel is free (before
 * pending usage reports: requests may be waiting for it). */
void sy_control_link_want_lease(sy_control_link_t *l);

/* Drains the usage aggregator into a report now (spooled and queued), e.g.
 * before a graceful exit. Returns 0 or SY_E*. */
int sy_control_link_flush(sy_control_link_t *l);

/* Journals one finished request's usage (call right after sy_usage_record
 * succeeded for it): one write(2) to <state_dir>/usage-<worker>.<gen>.journal,
 * so a worker killed with -9 loses no usage; the samples no spooled report
 * carries yet are replayed by the next start. No-op without a state dir or
 * for l NULL. */
void sy_control_link_journal(sy_control_link_t *l, const sy_usage_sample_t *s);

/* Reports not yet acked (in memory and in the spool). */
size_t sy_control_link_pending(const sy_control_link_t *l);

/* Closes the sockets and handles; unacked reports stay in the spool for the
 * next start. The struct is freed in the last close callback. NULL is a no-op. */
void sy_control_link_stop(sy_control_link_t *l);

/* Drains usage into a last report and stops once every report is acked or
 * timeout_ms has passed (what is left stays in the spool). NULL is a no-op. */
void sy_control_link_stop_graceful(sy_control_link_t *l, int64_t timeout_ms);

/* Splits a --control endpoint into the two channel addresses:
 *   "ipc:///dir"                    -> ipc:///dir/snapshots.ipc, ipc:///dir/reports.ipc
 *                                      (the control plane's defaults for --data-dir /dir)
 *   "tcp://host:port"               -> tcp://host:port (snapshots), tcp://host:port+1 (reports)
 *   "SNAPSHOTS_URL,REPORTS_URL"     -> as given
 * Writes both (NUL-terminated) only on success; SY_EINVAL when malformed. */
int sy_control_link_parse_endpoint(const char *control, char *snapshots, size_t snapshots_size,
                                   char *reports, size_t reports_size);

typedef struct sy_control_link_stats {
    uint64_t version;             /* of the last installed snapshot */
    uint64_t snapshots_received;  /* valid snapshot messages (any version) */
    uint64_t snapshots_installed; /* newer ones handed to install */
    uint64_t rejected_messages;   /* failed to open: wrong key or tampered */
    uint64_t invalid_messages;    /* opened but malformed or of an unexpected kind */
    uint64_t reports_sent;        /* sends, resends included */
    uint64_t reports_acked;
    uint64_t reports_pending; /* not yet acked */
    uint64_t reports_spilled; /* of those, only in the spool file */
    uint64_t hellos_sent;
} sy_control_link_stats_t;

void sy_control_link_get_stats(const sy_control_link_t *l, sy_control_link_stats_t *out);

/* Appends the stats as a JSON object to out. Returns 0 or SY_ENOMEM. */
int sy_control_link_stats_json(const sy_control_link_t *l, sy_buf_t *out);

/* Worker glue (dataplane/worker.c, dataplane/main.c). attach starts a link
 * for worker w from w->cfg: control (the endpoint), cluster_key_file (else
 * SWITCHYARD_CLUSTER_KEY) and state_dir (default data/dataplane), with
 * worker id "<hostname>/<cfg.worker_id>"; snapshots go to
 * sy_worker_install_snapshot, usage comes from w->usage; the link is kept in
 * w->control_link. check validates the endpoint and key without starting
 * anything (main, before forking). flush drains usage now (graceful drain);
 * detach stops gracefully (1 s for the last acks). */
typedef struct sy_worker sy_worker_t;
typedef struct sy_worker_config sy_worker_config_t;
int sy_control_link_check(const sy_worker_config_t *cfg, sy_err_t *err);
int sy_control_link_attach(sy_worker_t *w, sy_err_t *err);
void sy_control_link_worker_flush(sy_worker_t *w);
void sy_control_link_detach(sy_worker_t *w);

#endif
