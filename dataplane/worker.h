/* One data-plane worker process: a single-threaded libuv loop with its own
 * SO_REUSEPORT listener, one upstream pool, one usage aggregator and the
 * current routing table. */
#ifndef SY_DP_WORKER_H
#define SY_DP_WORKER_H

#include <uv.h>

#include "buf.h"
#include "json.h"
#include "dataplane/server.h"
#include "dataplane/snapshot.h"
#include "dataplane/upstream.h"
#include "dataplane/usage.h"

typedef struct sy_worker_config {
    const char *host;           /* listen address, borrowed */
    int port;                   /* listen port */
    int worker_id;              /* 0..N-1 */
    int64_t max_header_bytes;   /* request line + headers; 431 beyond */
    int64_t max_body_bytes;     /* request body; 413 beyond */
    int64_t max_response_bytes; /* buffered upstream body; 502 beyond */
    int64_t header_timeout_ms;  /* whole request head; 408 */
    int64_t body_timeout_ms;    /* whole request body; 408 */
    int64_t idle_timeout_ms;    /* keep-alive idle; closed silently */
    int64_t send_timeout_ms;    /* a client that does not read for this long is dropped */
    int64_t drain_timeout_ms;   /* graceful drain deadline */
    int64_t upstream_connect_timeout_ms;
    int64_t upstream_first_byte_timeout_ms;
    int64_t upstream_idle_timeout_ms;
    int64_t upstream_total_timeout_ms;
    int64_t write_high_water;  /* pause the upstream above this many queued bytes */
    bool access_log;           /* one JSON line per request */
    bool upstream_curl_only;   /* --upstream-engine curl: no built-in HTTP/1.1 client */
    const char *snapshot_file; /* borrowed; reloaded on SIGHUP; NULL none */
    const char *control;       /* borrowed; control-plane endpoint, NULL none */
    const char
        *cluster_key_file; /* borrowed; cluster key for --control, NULL = SWITCHYARD_CLUSTER_KEY */
    const char *state_dir; /* borrowed; snapshot cache + usage spool for --control */
} sy_worker_config_t;

struct sy_worker {
    uv_loop_t loop;             /* the worker's loop */
    uv_tcp_t listener;          /* SO_REUSEPORT listening socket */
    uv_signal_t sig_term;       /* graceful drain */
    uv_signal_t sig_int;        /* graceful drain */
    uv_signal_t sig_hup;        /* reopen logs, reload the snapshot file */
    uv_timer_t sweep;           /* timeouts, drain progress */
    sy_worker_config_t cfg;     /* copy; strings borrowed */
    sy_snapshot_t *snap;        /* owned reference; NULL until one is installed */
    sy_upstream_t *upstream;    /* owned */
    sy_usage_t *usage;          /* owned */
    sy_json_parser_t *json;     /* owned; the worker's one tokener */
    sy_conn_t *conns;           /* borrowed list; each conn frees itself */
    size_t n_conns;             /* open connections */
    uint64_t requests;          /* requests finished */
    bool draining;              /* SIGTERM seen: no new connections */
    bool stopping;              /* handles are being closed */
    uint64_t drain_deadline_ms; /* loop time when the drain gives up */
    char id_prefix[16];         /* request id prefix, random per boot */
    uint64_t id_seq;            /* request id counter */
    sy_buf_t scratch;           /* owned; per-event output assembly */
    sy_buf_t access_log;        /* owned; complete access-log lines not yet written */
    void *control_link;         /* owned by control_link.c when --control is set, else NULL */
    struct sy_routing *routing; /* owned; router, limits, budget leases (routing.c) */
    char read_buf[65536];       /* shared read buffer: parsed synchronously in on_read */
};

/* Runs a worker until it has drained: binds, loads the snapshot file (if
 * any), serves, and returns the process exit code (0 after a clean drain). */
int sy_worker_run(const sy_worker_config_t *cfg);

/* Makes snap the worker's current routing table. Takes ownership of the
 * caller's reference; the previous table is released (requests in flight
 * keep theirs). snap NULL is ignored. This is the one entry point for every
 * snapshot source (file, control link). */
void sy_worker_install_snapshot(sy_worker_t *w, sy_snapshot_t *snap);

/* Writes the next request id into out (SY_REQ_ID_LEN bytes). */
void sy_worker_next_id(sy_worker_t *w, char *out);

/* Writes the batched access-log lines (each complete, in one write). */
void sy_worker_flush_access_log(sy_worker_t *w);

/* Called when a connection closed or a request finished while draining. */
void sy_worker_check_drained(sy_worker_t *w);

#endif
