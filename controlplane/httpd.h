/* A small HTTP/1.1 server for the admin API: libuv TCP, llhttp parsing,
 * keep-alive and pipelining, hard caps on URL, headers and body. Handlers run
 * synchronously on the loop and fill a response; the server writes it. */
#ifndef SY_HTTPD_H
#define SY_HTTPD_H

#include <uv.h>
#include "buf.h"
#include "err.h"

#define SY_HTTPD_MAX_URL 8192
#define SY_HTTPD_MAX_HEADER_BYTES (32 * 1024)
#define SY_HTTPD_MAX_BODY (1024 * 1024)
#define SY_HTTPD_IDLE_MS 60000
#define SY_HTTPD_MAX_CONNS 1024 /* open connections; more are closed at once */

typedef struct sy_httpd sy_httpd_t;

typedef struct sy_httpd_request {
    const char *method;     /* "GET", "POST"... (constant string) */
    sy_str_t path;          /* borrowed; the URL before '?' */
    sy_str_t query;         /* borrowed; after '?', empty when none */
    sy_str_t authorization; /* borrowed; the Authorization header value, empty when absent */
    sy_str_t body;          /* borrowed; the request body */
} sy_httpd_request_t;

typedef struct sy_httpd_response {
    int status;               /* HTTP status, 200 by default */
    const char *content_type; /* borrowed constant; "application/json" by default */
    sy_buf_t body;            /* owned by the server; the handler appends */
} sy_httpd_response_t;

/* Fills res for req; views in req are valid only during the call. */
typedef void (*sy_httpd_handler_fn)(void *ctx, const sy_httpd_request_t *req,
                                    sy_httpd_response_t *res);

/* Starts listening on host:port (port 0 picks one; sy_httpd_port tells which).
 * handler and ctx are borrowed for the server's lifetime. Writes *out only on
 * success. */
int sy_httpd_start(uv_loop_t *loop, const char *host, int port, sy_httpd_handler_fn handler,
                   void *ctx, sy_httpd_t **out, sy_err_t *err);

/* The bound port. */
int sy_httpd_port(const sy_httpd_t *h);

/* Stops accepting, closes every connection; the memory goes in the close
 * callbacks (run the loop afterwards). NULL is a no-op. */
void sy_httpd_stop(sy_httpd_t *h);

/* Parses "host:port" (host may be empty for 127.0.0.1). Returns 0 or SY_EINVAL;
 * writes host (NUL-terminated) and *port only on success. */
int sy_httpd_parse_addr(const char *addr, char *host, size_t host_size, int *port);

#endif
