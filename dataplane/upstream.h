/* Upstream HTTP client of a worker, with two engines behind one interface.
 * Plain http:// upstreams (self-hosted servers, sidecars) go to the built-in
 * HTTP/1.1 client (upstream_h1.h: libuv + llhttp, kept-alive connections
 * per origin), which costs a fraction of libcurl's work per transfer.
 * https:// upstreams (the hosted providers), and every upstream when a proxy
 * variable is set or --upstream-engine curl is given, go to one libcurl
 * multi handle driven by the worker's libuv loop (curl's multi-uv.c pattern
 * with the corrections in STYLE.md: no globals, poll errors passed as
 * CURL_CSELECT_ERR, no libcurl call from the timer function, and a 0 ms
 * timeout never armed as a 0 ms timer: it runs from an idle handle on the
 * next loop pass), with connection reuse, HTTP/2 where the upstream offers
 * it over TLS, and recycled easy handles. Both engines send a request again,
 * once, when a reused connection turns out closed before any answer byte,
 * and cap the answer's head at 64 KiB. */
#ifndef SY_DP_UPSTREAM_H
#define SY_DP_UPSTREAM_H

#include <curl/curl.h>
#include <uv.h>

#include "buf.h"

typedef struct sy_upstream sy_upstream_t;
typedef struct sy_upstream_xfer sy_upstream_xfer_t;

/* Returned by on_data to stop the flow until sy_upstream_resume(). The
 * bytes are then not consumed: they are delivered again on resume. */
#define SY_UPSTREAM_PAUSE CURL_WRITEFUNC_PAUSE

typedef struct sy_upstream_cbs {
    /* Response body bytes (status and content type are known by then).
     * Return n to consume, SY_UPSTREAM_PAUSE to pause, anything else to
     * abort the transfer. Runs inside the engine: never cancel or free here. */
    size_t (*on_data)(void *ctx, sy_upstream_xfer_t *x, const char *p, size_t n);
    /* The transfer ended (result 0 = complete, else SY_E* with a constant
     * message); the easy handle is already removed. The xfer may be freed
     * or reused from here. Not called after sy_upstream_cancel. */
    void (*on_done)(void *ctx, sy_upstream_xfer_t *x, int result, const char *why);
    /* Optional (NULL = none): one raw response header line ("Name: value\r\n"),
     * e.g. for provider rate-limit figures. Runs inside the engine. */
    void (*on_header)(void *ctx, sy_upstream_xfer_t *x, const char *line, size_t n);
} sy_upstream_cbs_t;

/* One transfer; embed it in the request that owns it. */
struct sy_upstream_xfer {
    sy_upstream_t *pool;            /* borrowed */
    CURL *easy;                     /* owned while active */
    struct curl_slist *headers;     /* borrowed; points into hblock */
    char *hblock;                   /* owned; request header lines and their curl_slist nodes,
                                     * kept across transfers (sy_upstream_xfer_free) */
    size_t hcap;                    /* bytes allocated in hblock */
    const sy_upstream_cbs_t *cbs;   /* borrowed */
    void *ctx;                      /* borrowed; passed to the callbacks */
    struct sy_upstream_xfer *prev;  /* borrowed; pool's active list */
    struct sy_upstream_xfer *next;  /* borrowed */
    long status;                    /* HTTP status of the final response, 0 before */
    char content_type[64];          /* response Content-Type, truncated, "" when absent */
    char retry_after[32];           /* response Retry-After, "" when absent */
    uint64_t start_ms;              /* loop time at start */
    uint64_t first_byte_ms;         /* loop time of the first body byte, 0 before */
    uint64_t last_data_ms;          /* loop time of the last body byte */
    uint32_t first_byte_timeout_ms; /* 0 = none */
    uint32_t idle_timeout_ms;       /* between body bytes; 0 = none */
    bool active;                    /* added to the multi */
    bool paused;                    /* on_data returned SY_UPSTREAM_PAUSE */
    bool timed_out;                 /* cancelled by the sweep; reported by on_done */
    /* The built-in HTTP/1.1 engine's part (upstream_h1.c); zero for libcurl. */
    bool h1;                        /* carried by the built-in engine */
    bool h1_complete;               /* the answer ended while x was paused */
    bool retried;                   /* already sent again after a stale connection (both engines) */
    uint32_t head_bytes;            /* libcurl engine: response head bytes so far */
    uint8_t h1_queue;               /* 0 none, 1 waiting for a name, 2 finish queued */
    int h1_result;                  /* queued finish: result */
    const char *h1_why;             /* queued finish: static message */
    struct sy_h1_conn *h1_conn;     /* borrowed; the connection carrying x */
    struct sy_h1_origin *h1_origin; /* borrowed */
    struct sy_upstream_xfer *h1_next; /* borrowed; name-wait or finish queue link */
    const char *h1_body;              /* borrowed; the request body */
    size_t h1_body_len;               /* its length */
    size_t h1_head_len;               /* request head bytes at the start of hblock */
    char *h1_held;                    /* owned; answer bytes that arrived while paused */
    uint32_t h1_held_len;             /* bytes in h1_held */
    uint32_t h1_held_cap;             /* bytes allocated */
    uint32_t connect_timeout_ms;      /* built-in engine's connect deadline */
    uint32_t total_timeout_ms;        /* built-in engine's whole-transfer deadline */
};

/* What to send. Strings are borrowed for the duration of sy_upstream_start
 * (both engines copy URL and headers); body must stay valid until on_done or
 * sy_upstream_cancel. */
typedef struct sy_upstream_req {
    const char *url;
    const char *method; /* "GET" or "POST" */
    const char *body;   /* borrowed; NULL for none */
    size_t body_len;
    const char *bearer;             /* Authorization: Bearer value, NULL/"" for none */
    const char *const *headers;     /* extra "Name: value" lines, NULL-terminated, may be NULL */
    uint32_t connect_timeout_ms;    /* 0 = default 10 s */
    uint32_t first_byte_timeout_ms; /* 0 = default 60 s */
    uint32_t idle_timeout_ms;       /* 0 = default 60 s */
    uint32_t total_timeout_ms;      /* 0 = default 600 s */
    bool stream;                    /* smaller receive buffer, Accept: text/event-stream */
} sy_upstream_req_t;

/* Creates the pool on loop. Writes *out only on success. With builtin_http,
 * plain http:// upstreams (when no proxy variable is set) go through the
 * built-in HTTP/1.1 client (upstream_h1.h); everything else, and all of it
 * without, through libcurl. */
int sy_upstream_new(uv_loop_t *loop, bool builtin_http, sy_upstream_t **out);
/* Cancels every active transfer (without on_done), closes the pool's
 * handles and frees it once they are closed (the loop must run). NULL is a
 * no-op. */
void sy_upstream_close(sy_upstream_t *pool);

/* Starts x (zeroed or finished before; its header block is reused).
 * Returns 0 or SY_E*; on failure nothing is started and on_done is not
 * called. */
int sy_upstream_start(sy_upstream_t *pool, sy_upstream_xfer_t *x, const sy_upstream_req_t *req,
                      const sy_upstream_cbs_t *cbs, void *ctx);
/* Stops x at once (its connection is closed if mid-transfer). Must not be
 * called from inside an engine callback. No-op when inactive. */
void sy_upstream_cancel(sy_upstream_xfer_t *x);
/* Frees what x keeps between transfers (cancels it first if active). The
 * owner calls it once, when the struct x is embedded in goes away. */
void sy_upstream_xfer_free(sy_upstream_xfer_t *x);
/* Resumes a paused transfer; may call on_data synchronously (on_done comes
 * later, from the loop). Not from inside an engine callback. */
void sy_upstream_resume(sy_upstream_xfer_t *x);

/* Checks first-byte and idle deadlines; call periodically from the loop. */
void sy_upstream_sweep(sy_upstream_t *pool, uint64_t now_ms);

/* Active transfers. */
size_t sy_upstream_active(const sy_upstream_t *pool);

#endif
