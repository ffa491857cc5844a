/* Admin HTTP server: see httpd.h. */
#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llhttp.h>

#include "http_status.h"
#include "log.h"

#define READ_BUF 16384

typedef struct conn conn_t;

struct sy_httpd {
    uv_tcp_t listener;           /* the listening socket; freeing h happens in its close cb */
    uv_loop_t *loop;             /* borrowed */
    sy_httpd_handler_fn handler; /* borrowed */
    void *ctx;                   /* borrowed; passed to handler */
    llhttp_settings_t settings;  /* shared by every connection's parser */
    conn_t *conns;               /* borrowed list heads; each conn owns itself */
    size_t nconns;               /* connections in the list */
    int port;                    /* bound port */
};

struct conn {
    uv_tcp_t tcp;           /* the client socket */
    uv_timer_t idle;        /* closes a connection idle for SY_HTTPD_IDLE_MS */
    llhttp_t parser;        /* inbound parser */
    sy_httpd_t *server;     /* borrowed */
    conn_t *prev, *next;    /* server's list */
    sy_buf_t url;           /* owned; the request target */
    sy_buf_t hname;         /* owned; the header field being read */
    sy_buf_t auth;          /* owned; Authorization value */
    sy_buf_t body;          /* owned; request body */
    bool in_auth;           /* the header value being read is Authorization */
    bool in_expect;         /* the header value being read is Expect */
    bool expect_continue;   /* the request asked for "Expect: 100-continue" */
    size_t header_bytes;    /* header bytes of the current request */
    int error_status;       /* cap exceeded: 413/414/431, 0 otherwise */
    int handles_open;       /* handles whose close callback is pending */
    int writes_pending;     /* uv_write requests in flight */
    bool closing;           /* uv_close called */
    bool close_after_write; /* no more requests: close once writes drain */
    char rbuf[READ_BUF];    /* read buffer; parsing is synchronous so one suffices */
};

typedef struct wreq {
    uv_write_t req; /* libuv request; data = conn */
    sy_buf_t buf;   /* owned; the response bytes */
} wreq_t;

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    sy_buf_free(&c->url);
    sy_buf_free(&c->hname);
    sy_buf_free(&c->auth);
    sy_buf_free(&c->body);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->server->nconns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->server->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = sy_container_of(req, wreq_t, req);
    conn_t *c = req->data;
    sy_buf_free(&w->buf);
    free(w);
    c->writes_pending--;
    if (status < 0 || (c->close_after_write && c->writes_pending == 0))
        conn_close(c);
}

static void send_response(conn_t *c, int status, const char *ctype, const sy_buf_t *body,
                          bool keep_alive)
{
    wreq_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        conn_close(c);
        return;
    }
    sy_buf_init(&w->buf);
    size_t blen = body ? body->len : 0;
    sy_str_t reason = sy_http_reason(status);
    int rc = sy_buf_appendf(&w->buf,
                            "HTTP/1.1 %d %.*s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                            "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
                            status, (int)reason.len, reason.ptr, ctype, blen,
                            keep_alive ? "keep-alive" : "close");
    if (rc == 0 && blen > 0)
        rc = sy_buf_append(&w->buf, body->data, blen);
    if (rc != 0) {
        sy_buf_free(&w->buf);
        free(w);
        conn_close(c);
        return;
    }
    if (!keep_alive)
        c->close_after_write = true;
    uv_buf_t b = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
    w->req.data = c;
    c->writes_pending++;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        c->writes_pending--;
        sy_buf_free(&w->buf);
        free(w);
        conn_close(c);
    }
}

static void send_error(conn_t *c, int status, const char *type, const char *code, const char *msg)
{
    sy_buf_t b;
    sy_buf_init(&b);
    sy_buf_append_str(&b, "{\"error\":{\"message\":");
    sy_buf_append_json_string(&b, msg, strlen(msg));
    sy_buf_appendf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", type, code);
    send_response(c, status, "application/json", &b, false);
    sy_buf_free(&b);
}

static conn_t *conn_of(llhttp_t *p)
{
    return sy_container_of(p, conn_t, parser);
}

static int on_message_begin(llhttp_t *p)
{
    conn_t *c = conn_of(p);
    if (c->close_after_write)
        return -1; /* pipelined after a closing request: ignore the rest */
    sy_buf_reset(&c->url);
    sy_buf_reset(&c->hname);
    sy_buf_reset(&c->auth);
    sy_buf_reset(&c->body);
    c->in_auth = false;
    c->in_expect = false;
    c->expect_continue = false;
    c->header_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = conn_of(p);
    if (c->url.len + len > SY_HTTPD_MAX_URL) {
        c->error_status = 414;
        return -1;
    }
    return sy_buf_append(&c->url, at, len) == 0 ? 0 : -1;
}

static int count_header(conn_t *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > SY_HTTPD_MAX_HEADER_BYTES) {
        c->error_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = conn_of(p);
    if (count_header(c, len) != 0)
        return -1;
    return sy_buf_append(&c->hname, at, len) == 0 ? 0 : -1;
}

static int on_header_field_complete(llhttp_t *p)
{
    conn_t *c = conn_of(p);
    c->in_auth = sy_str_case_eq_cstr((sy_str_t){c->hname.data, c->hname.len}, "authorization");
    c->in_expect = sy_str_case_eq_cstr((sy_str_t){c->hname.data, c->hname.len}, "expect");
    sy_buf_reset(&c->hname);
    if (c->in_auth)
        sy_buf_reset(&c->auth); /* the last Authorization header wins */
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = conn_of(p);
    if (count_header(c, len) != 0)
        return -1;
    if (c->in_auth)
        return sy_buf_append(&c->auth, at, len) == 0 ? 0 : -1;
    if (c->in_expect) /* "100-continue" arrives in one piece in practice; a split one is ignored */
        c->expect_continue = sy_str_case_eq_cstr(sy_str_trim((sy_str_t){at, len}), "100-continue");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    conn_t *c = conn_of(p);
    c->in_auth = false;
    c->in_expect = false;
    return 0;
}

/* Refuses an announced oversized body before it is sent, and lets a client
 * that waits for "100 Continue" (curl does past 1 KiB) go ahead at once. */
static int on_headers_complete(llhttp_t *p)
{
    conn_t *c = conn_of(p);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > SY_HTTPD_MAX_BODY) {
        c->error_status = 413;
        return -1;
    }
    if (c->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        wreq_t *w = calloc(1, sizeof(*w));
        if (w == NULL)
            return -1;
        sy_buf_init(&w->buf);
        if (sy_buf_append(&w->buf, cont, sizeof(cont) - 1) != 0) {
            free(w);
            return -1;
        }
        uv_buf_t b = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
        w->req.data = c;
        c->writes_pending++;
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
            c->writes_pending--;
            sy_buf_free(&w->buf);
            free(w);
            return -1;
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = conn_of(p);
    if (c->body.len + len > SY_HTTPD_MAX_BODY) {
        c->error_status = 413;
        return -1;
    }
    return sy_buf_append(&c->body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
    conn_t *c = conn_of(p);
    sy_httpd_t *h = c->server;
    sy_httpd_request_t req;
    req.method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    sy_str_t url = {c->url.data, c->url.len};
    const char *q = url.len ? memchr(url.ptr, '?', url.len) : NULL;
    if (q != NULL) {
        req.path = (sy_str_t){url.ptr, (size_t)(q - url.ptr)};
        req.query = (sy_str_t){q + 1, url.len - (size_t)(q - url.ptr) - 1};
    } else {
        req.path = url;
        req.query = SY_STR_NULL;
    }
    req.authorization = sy_str_trim((sy_str_t){c->auth.data, c->auth.len});
    req.body = (sy_str_t){c->body.data, c->body.len};

    sy_httpd_response_t res;
    res.status = 200;
    res.content_type = "application/json";
    sy_buf_init(&res.body);
    h->handler(h->ctx, &req, &res);
    send_response(c, res.status, res.content_type, &res.body, llhttp_should_keep_alive(p) != 0);
    sy_buf_free(&res.body);
    return 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    SY_UNUSED(suggested);
    conn_t *c = handle->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    uv_timer_again(&c->idle);
    if (c->close_after_write)
        return; /* the answer to a closing request is on its way */
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (e == HPE_OK || c->closing)
        return;
    if (c->close_after_write)
        return; /* bytes after a closing request */
    uv_read_stop(s);
    switch (c->error_status) {
    case 413:
        send_error(c, 413, "invalid_request_error", "body_too_large", "request body exceeds 1 MiB");
        break;
    case 414:
        send_error(c, 414, "invalid_request_error", "url_too_long", "request URL exceeds 8 KiB");
        break;
    case 431:
        send_error(c, 431, "invalid_request_error", "headers_too_large",
                   "request headers exceed 32 KiB");
        break;
    default:
        send_error(c, 400, "invalid_request_error", "bad_http",
                   llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
                                                       : "malformed HTTP request");
    }
}

static void on_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    sy_httpd_t *h = server->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->server = h;
    sy_buf_init(&c->url);
    sy_buf_init(&c->hname);
    sy_buf_init(&c->auth);
    sy_buf_init(&c->body);
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->idle);
    c->tcp.data = c;
    c->idle.data = c;
    c->handles_open = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    /* Past the cap the connection is accepted and closed at once, so the
     * backlog drains instead of piling up. */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || h->nconns > SY_HTTPD_MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &h->settings);
    uv_timer_start(&c->idle, on_idle, SY_HTTPD_IDLE_MS, SY_HTTPD_IDLE_MS);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

int sy_httpd_parse_addr(const char *addr, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return SY_EINVAL;
    size_t hl = (size_t)(colon - addr);
    if (hl + 1 > host_size)
        return SY_EINVAL;
    uint64_t p;
    if (sy_str_to_u64(sy_str_from_cstr(colon + 1), &p) != 0 || p > 65535)
        return SY_EINVAL;
    if (hl == 0)
        snprintf(host, host_size, "127.0.0.1");
    else
        snprintf(host, host_size, "%.*s", (int)hl, addr);
    *port = (int)p;
    return 0;
}

int sy_httpd_start(uv_loop_t *loop, const char *host, int port, sy_httpd_handler_fn handler,
                   void *ctx, sy_httpd_t **out, sy_err_t *err)
{
    sy_httpd_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    h->loop = loop;
    h->handler = handler;
    h->ctx = ctx;
    llhttp_settings_init(&h->settings);
    h->settings.on_message_begin = on_message_begin;
    h->settings.on_url = on_url;
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_field_complete = on_header_field_complete;
    h->settings.on_header_value = on_header_value;
    h->settings.on_header_value_complete = on_header_value_complete;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;

    struct sockaddr_storage sa;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
    if (rc != 0) {
        free(h);
        return sy_err_set(err, SY_EINVAL, "bad admin listen address %s", host);
    }
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    rc = uv_tcp_bind(&h->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0) {
        sy_err_set(err, rc, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&h->listener, (uv_close_cb)free);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len);
    h->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = h;
    return 0;
}

int sy_httpd_port(const sy_httpd_t *h)
{
    return h->port;
}

static void on_listener_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void sy_httpd_stop(sy_httpd_t *h)
{
    if (h == NULL)
        return;
    while (h->conns != NULL)
        conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}
