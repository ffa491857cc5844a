/* Inbound HTTP/1.1 of a worker: accepted connections parsed with llhttp,
 * keep-alive, pipelining answered in order (one request in flight per
 * connection, later ones wait in the connection's pending bytes), chunked
 * request bodies, Expect: 100-continue, header/body size caps (431/413),
 * header/body/idle timeouts (408) and OpenAI-shaped errors. Complete
 * requests go to proxy.c; responses come back through the sy_server_*
 * writers below. */
#ifndef SY_DP_SERVER_H
#define SY_DP_SERVER_H

#include <llhttp.h>
#include <uv.h>

#include "buf.h"
#include "sse.h"
#include "dataplane/openai.h"
#include "dataplane/routing.h"
#include "dataplane/providers/anthropic_ingress.h"
#include "dataplane/snapshot.h"
#include "dataplane/upstream.h"

typedef struct sy_worker sy_worker_t;
typedef struct sy_conn sy_conn_t;

#define SY_REQ_PATH_MAX 256
#define SY_REQ_AUTH_MAX 512
#define SY_REQ_CTYPE_MAX 128
#define SY_REQ_ID_LEN 32

typedef enum sy_req_mode {
    SY_REQ_MODE_NONE = 0, /* no upstream answer yet */
    SY_REQ_MODE_BUFFER,   /* upstream body buffered in resp, answered at the end */
    SY_REQ_MODE_STREAM,   /* SSE relayed event by event */
} sy_req_mode_t;

/* Header fields read only between the request head and dispatch: kept out of
 * the connection (a side allocation made by the request's first byte and
 * freed once sy_proxy_handle returned), so an open stream does not carry them. */
typedef struct sy_req_head {
    char auth[SY_REQ_AUTH_MAX]; /* Authorization or x-api-key value, NUL-terminated */
    size_t auth_len;
    bool auth_is_bearer; /* from Authorization (needs "Bearer ") */
    bool auth_too_long;
    char ctype[SY_REQ_CTYPE_MAX]; /* Content-Type, NUL-terminated, truncated */
    size_t ctype_len;
    char hname[32]; /* current header name (lower-cased, truncated) */
    size_t hname_len;
} sy_req_head_t;

/* One request: parsed fields, then the proxy state. Embedded in its
 * connection (one in flight at a time) and reset between requests. */
typedef struct sy_req {
    sy_conn_t *conn; /* borrowed; the owner */
    bool active;     /* dispatched and not yet finished */
    /* parsed */
    uint8_t method;             /* llhttp_method_t */
    char path[SY_REQ_PATH_MAX]; /* request target without the query, NUL-terminated */
    size_t path_len;
    bool path_too_long;
    bool in_query;        /* the URL's '?' was seen: the rest is skipped */
    sy_req_head_t *head;  /* owned; NULL outside head parsing and dispatch */
    bool expect_continue; /* Expect: 100-continue */
    bool expect_other;    /* another Expect value (417) */
    char task[64];        /* x-switchyard-task, NUL-terminated, truncated */
    size_t task_len;
    char latency[16]; /* x-switchyard-latency, NUL-terminated, truncated */
    size_t latency_len;
    sy_buf_t body;       /* owned; the request body */
    size_t header_bytes; /* bytes of request line + headers so far */
    /* proxy state */
    char id[SY_REQ_ID_LEN];           /* request id, NUL-terminated */
    uint64_t start_ms;                /* loop time when the request was dispatched */
    int64_t start_unix_ms;            /* wall clock at dispatch */
    sy_snapshot_t *snap;              /* owned reference, the table the request started with */
    const sy_snapshot_key_t *key;     /* borrowed from snap */
    const sy_snapshot_model_t *model; /* borrowed from snap */
    const char *route;                /* borrowed from snap; alias used, NULL for a model */
    char key_prefix[24];              /* displayable key prefix, never the key */
    json_object *json;                /* owned; parsed body, kept while its string is sent */
    const char *up_body;              /* borrowed (body or json's string) */
    size_t up_body_len;
    sy_buf_t up_url;         /* owned; upstream URL */
    sy_upstream_xfer_t xfer; /* the upstream transfer */
    sy_req_mode_t mode;
    sy_buf_t resp;           /* owned; buffered upstream body */
    sy_sse_framer_t framer;  /* SSE framer for stream mode */
    bool framer_init;        /* framer initialized */
    bool stream;             /* the client asked for a stream */
    bool client_usage;       /* the client asked for stream_options.include_usage */
    bool embeddings;         /* POST /v1/embeddings */
    bool headers_sent;       /* response head written */
    bool have_usage;         /* usage known */
    bool saw_done;           /* [DONE] relayed */
    bool upstream_error;     /* error event or failed transfer */
    bool too_large;          /* upstream body over the cap */
    sy_openai_usage_t usage; /* tokens */
    int status;              /* status sent to the client */
    const char *error;       /* constant description of a failure, NULL if none */
    uint64_t bytes_in;       /* request bytes (body) */
    uint64_t bytes_out;      /* response bytes written */
    int64_t ttft_ms;         /* first relayed event (stream) or first byte, -1 none */
    int64_t upstream_ms;     /* upstream time to first byte, -1 none */
    sy_routing_req_t *rt;    /* owned by routing.c; admission and failover state, NULL = none */
    const Switchyard__Provider *provider; /* borrowed; the current attempt's provider */
    uint64_t relayed;                     /* stream writes relayed (partial usage estimate) */
    /* translation (dataplane/providers) */
    const sy_provider_ops_t *adapter; /* borrowed; Anthropic/Gemini upstream, NULL = passthrough */
    sy_provider_stream_t *pstream;    /* owned; translates the upstream stream (adapter set) */
    bool anthropic_ingress;           /* POST /v1/messages: answers in Anthropic's format */
    sy_anthropic_egress_t *egress;    /* owned; OpenAI chunks -> Anthropic events (ingress) */
    sy_buf_t xlat;                    /* owned; translated bytes on their way to the client */
} sy_req_t;

typedef enum sy_conn_state {
    SY_CONN_IDLE = 0, /* waiting for a request (idle timeout) */
    SY_CONN_HEADERS,  /* reading a request head (header timeout) */
    SY_CONN_BODY,     /* reading a body (body timeout) */
    SY_CONN_BUSY,     /* request dispatched, answer in progress */
} sy_conn_state_t;

struct sy_conn {
    uv_tcp_t tcp;        /* embedded handle; the conn is freed in its close callback */
    llhttp_t parser;     /* inbound parser */
    sy_worker_t *worker; /* borrowed */
    sy_conn_t *prev;     /* borrowed; worker's list */
    sy_conn_t *next;     /* borrowed */
    sy_conn_state_t state;
    uint64_t deadline_ms;   /* loop time when the current state times out, 0 none */
    uint64_t last_write_ms; /* loop time of the last write progress */
    sy_buf_t pending;       /* owned; bytes received but not yet parsed */
    int hwhich;             /* which kept header the current value belongs to */
    sy_req_t req;           /* the request being read or answered */
    int err_status;         /* error found by a parser callback, 0 none */
    const char *err_msg;    /* constant */
    const char *err_code;   /* constant */
    bool keep_alive;        /* the current request allows another one */
    bool closing;           /* uv_close called */
    bool close_after_write; /* close once the write queue is empty */
    bool driving;           /* inside conn_drive */
    bool read_stopped;      /* uv_read_stop after too much pending input */
    bool eof;               /* the client closed its side */
    bool lingering;         /* half-closed after the last response, discarding input */
};

/* Starts serving a new connection accepted on the worker's listener. */
void sy_server_accept(sy_worker_t *w, uv_stream_t *listener);
/* Timeouts of every connection; called by the worker's sweep timer. */
void sy_server_sweep(sy_worker_t *w, uint64_t now_ms);
/* Closes idle connections (drain); force closes every connection when all
 * is true. */
void sy_server_close_idle(sy_worker_t *w, bool all);

/* Response writers for the proxy. Each returns 0 or a negative errno (the
 * client is gone). sy_server_respond and sy_server_stream_end finish the
 * request (access log, usage, next pipelined request). */
int sy_server_respond(sy_req_t *r, int status, const char *ctype, const char *body, size_t len,
                      const char *extra_headers);
/* An OpenAI-shaped error: {"error":{"message","type","param","code"}}. */
int sy_server_error(sy_req_t *r, int status, const char *type, const char *code, const char *param,
                    const char *message);
int sy_server_stream_begin(sy_req_t *r, int status, const char *ctype);
/* Writes n bytes as one HTTP chunk. */
int sy_server_stream_write(sy_req_t *r, const char *p, size_t n);
int sy_server_stream_end(sy_req_t *r);
/* Bytes queued for the client and not yet written. */
size_t sy_server_queued(const sy_req_t *r);

#endif
