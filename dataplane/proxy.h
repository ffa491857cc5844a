/* Request handling of a worker: health endpoints, authentication, model
 * resolution, the OpenAI-compatible endpoints relayed through the upstream
 * client, usage extraction, the access log and the usage record. */
#ifndef SY_DP_PROXY_H
#define SY_DP_PROXY_H

#include "dataplane/server.h"

/* A complete request arrived (r->active is set). The proxy answers it,
 * synchronously or later, through the sy_server_* writers. */
void sy_proxy_handle(sy_req_t *r);
/* The client's write queue drained below the low-water mark. */
void sy_proxy_on_drain(sy_req_t *r);
/* The connection is closing while r is in flight: cancel the upstream. */
void sy_proxy_abort(sy_req_t *r);
/* Starts the next upstream attempt of r after a failover backoff (the
 * routing module's timer calls it). */
void sy_proxy_resume(sy_req_t *r);
/* r is finished: write the access log line, record usage and release the
 * request's resources (the snapshot reference, the upstream state). */
void sy_proxy_finish(sy_req_t *r);

#endif
