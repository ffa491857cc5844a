/* Built-in HTTP/1.1 client for plain-http upstreams (self-hosted
 * OpenAI-compatible servers, sidecars, the mock), the second engine behind
 * upstream.h. libcurl 7.88 spends ~65 k instructions and two poll() calls
 * on every transfer (its byte-at-a-time request printf, header matching,
 * per-transfer setup): most of the gateway's CPU per request. Plain
 * HTTP/1.1 to a known origin needs none of that: a request head laid out
 * once with memcpy, written with the body in one writev, the answer parsed
 * by llhttp (already our inbound parser) straight from one shared read
 * buffer. TLS, HTTP/2 and proxies stay with libcurl.
 *
 * Connections are kept alive per origin (LIFO, so warm ones are reused;
 * idle ones are read so an upstream close is seen at once, and expire after
 * 30 s). A request that finds a reused connection closed before any answer
 * byte is sent again once on a fresh connection, as libcurl does. Names are
 * resolved off-loop (uv_getaddrinfo) and kept 30 s; every address is tried
 * in turn.
 *
 * Internal to upstream.c: the transfer's public state (status, content
 * type, timestamps, paused) lives in sy_upstream_xfer_t and the callbacks'
 * contract is upstream.h's. */
#ifndef SY_DP_UPSTREAM_H1_H
#define SY_DP_UPSTREAM_H1_H

#include "dataplane/upstream.h"

typedef struct sy_h1 sy_h1_t;

/* Returned by sy_h1_start for a URL this engine does not take (not plain
 * http://, userinfo, bad port): libcurl handles it. */
#define SY_H1_NOT_MINE 1

/* Creates the engine on loop; on_closed(arg) runs once sy_h1_close has
 * released every handle. */
int sy_h1_new(uv_loop_t *loop, void (*on_closed)(void *), void *arg, sy_h1_t **out);
/* Closes idle connections and the engine's handles (transfers must have
 * been stopped first); on_closed follows once they are closed. */
void sy_h1_close(sy_h1_t *h);

/* Starts x (already zeroed, pool/cbs/ctx/timeouts set by upstream.c).
 * Returns 0, SY_H1_NOT_MINE, or SY_E* (nothing started, on_done not
 * called). Completion is reported through sy_upstream_finished. */
int sy_h1_start(sy_h1_t *h, sy_upstream_xfer_t *x, const sy_upstream_req_t *req);
/* Detaches x from its connection (closed if mid-answer) and from any
 * queue. Safe from inside on_data. */
void sy_h1_stop(sy_upstream_xfer_t *x);
/* Delivers what was held back while x was paused and reads on. */
void sy_h1_resume(sy_upstream_xfer_t *x);
/* True while x waits for a name or a connection (connect timeout). */
bool sy_h1_connecting(const sy_upstream_xfer_t *x);
/* Closes connections idle for too long. */
void sy_h1_sweep(sy_h1_t *h, uint64_t now_ms);

/* In upstream.c: ends x (removed from the pool's list) and calls on_done. */
void sy_upstream_finished(sy_upstream_xfer_t *x, int result, const char *why);
/* In upstream.c: makes x's kept block (request head or header list) at
 * least need bytes, wiping the old one. Returns 0 or SY_ENOMEM. */
int sy_upstream_reserve_block(sy_upstream_xfer_t *x, size_t need);

#endif
