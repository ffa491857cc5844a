/* Inbound HTTP/1.1 server; see server.h. */
#include "dataplane/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_status.h"
#include "log.h"
#include "dataplane/providers/anthropic_ingress.h"
#include "dataplane/proxy.h"
#include "dataplane/worker.h"

#define PENDING_MAX (256 * 1024) /* unparsed pipelined input kept before reading stops */
#define LOW_WATER_DIV 4          /* resume the upstream below high-water / 4 */

enum { H_OTHER = 0, H_AUTH, H_APIKEY, H_CTYPE, H_EXPECT, H_TASK, H_LATENCY };

/* A write that could not complete at once: the remaining bytes follow. */
typedef struct write_req {
    uv_write_t req; /* embedded */
    size_t len;     /* bytes in data */
    char data[];    /* owned copy */
} write_req_t;

static void conn_close(sy_conn_t *c);
static void conn_drive(sy_conn_t *c);
static const llhttp_settings_t *settings(void);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_shutdown(sy_conn_t *c);

/* --- connection lifetime --------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    sy_conn_t *c = sy_container_of((uv_tcp_t *)h, sy_conn_t, tcp);
    sy_worker_t *w = c->worker;
    sy_buf_free(&c->pending);
    sy_buf_free(&c->req.body);
    sy_buf_free(&c->req.resp);
    sy_buf_free(&c->req.up_url);
    sy_upstream_xfer_free(&c->req.xfer);
    free(c->req.head);
    free(c);
    sy_worker_check_drained(w);
}

static void conn_close(sy_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->req.active) {
        sy_proxy_abort(&c->req);
        sy_proxy_finish(&c->req);
        c->req.active = false;
    }
    sy_worker_t *w = c->worker;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void set_state(sy_conn_t *c, sy_conn_state_t s)
{
    sy_worker_t *w = c->worker;
    uint64_t now = uv_now(&w->loop);
    c->state = s;
    switch (s) {
    case SY_CONN_IDLE:
        c->deadline_ms = now + (uint64_t)w->cfg.idle_timeout_ms;
        break;
    case SY_CONN_HEADERS:
        c->deadline_ms = now + (uint64_t)w->cfg.header_timeout_ms;
        break;
    case SY_CONN_BODY:
        c->deadline_ms = now + (uint64_t)w->cfg.body_timeout_ms;
        break;
    case SY_CONN_BUSY:
        c->deadline_ms = 0;
        break;
    }
}

/* After the last response of a connection: half-close and keep reading
 * (discarding) for a moment, so that a client still sending a body it was
 * refused (413) reads our answer instead of a reset. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    SY_UNUSED(status);
    sy_conn_t *c = sy_container_of((uv_tcp_t *)req->handle, sy_conn_t, tcp);
    free(req);
    if (!c->closing && c->eof)
        conn_close(c);
}

static void conn_shutdown(sy_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->eof) {
        conn_close(c);
        return;
    }
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->state = SY_CONN_IDLE;
    c->deadline_ms = uv_now(&c->worker->loop) + 2000;
    sy_buf_reset(&c->pending);
    if (c->read_stopped) {
        c->read_stopped = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* --- writing ----------------------------------------------------------------- */

static void on_write_done(uv_write_t *req, int status)
{
    write_req_t *wr = sy_container_of(req, write_req_t, req);
    sy_conn_t *c = sy_container_of((uv_tcp_t *)req->handle, sy_conn_t, tcp);
    free(wr);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->last_write_ms = uv_now(&c->worker->loop);
    size_t q = c->tcp.write_queue_size;
    if (q == 0 && c->close_after_write) {
        conn_shutdown(c);
        return;
    }
    if (c->req.active && c->req.xfer.paused &&
        q <= (size_t)c->worker->cfg.write_high_water / LOW_WATER_DIV)
        sy_proxy_on_drain(&c->req);
}

/* Writes bufs in order: at once where the socket takes them, the rest copied
 * into one queued write. Returns 0 or a negative errno. */
static int conn_write(sy_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    if (c->closing)
        return UV_ECANCELED;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    c->req.bytes_out += total;
    size_t done = 0;
    if (c->tcp.write_queue_size == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n >= 0) {
            done = (size_t)n;
            c->last_write_ms = uv_now(&c->worker->loop);
        } else if (n != UV_EAGAIN) {
            return n;
        }
        if (done == total)
            return 0;
    }
    write_req_t *wr = malloc(sizeof(*wr) + (total - done));
    if (wr == NULL)
        return UV_ENOMEM;
    wr->len = total - done;
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        p += skip;
        l -= skip;
        skip = 0;
        memcpy(wr->data + off, p, l);
        off += l;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
    if (rc != 0) {
        free(wr);
        return rc;
    }
    return 0;
}

size_t sy_server_queued(const sy_req_t *r)
{
    return r->conn->tcp.write_queue_size;
}

/* The request is answered: finish it and go on with the next one. */
static void req_done(sy_conn_t *c)
{
    sy_req_t *r = &c->req;
    if (!r->active)
        return;
    sy_proxy_finish(r);
    r->active = false;
    c->worker->requests++;
    if (c->closing)
        return;
    if (!c->keep_alive || c->worker->draining) {
        c->close_after_write = true;
        if (c->tcp.write_queue_size == 0)
            conn_shutdown(c);
        return;
    }
    set_state(c, SY_CONN_IDLE);
    llhttp_resume(&c->parser);
    if (c->read_stopped && !c->eof && c->pending.len < PENDING_MAX / 2) {
        c->read_stopped = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    conn_drive(c);
}

/* Appends n bytes to a fixed buffer; false when they do not fit. */
static bool put(char *buf, size_t cap, size_t *len, const char *p, size_t n)
{
    if (n > cap - *len)
        return false;
    memcpy(buf + *len, p, n);
    *len += n;
    return true;
}

#define PUT_LIT(lit) put(head, sizeof(head), &n, (lit), sizeof(lit) - 1)
#define PUT_STR(s) put(head, sizeof(head), &n, (s), strlen(s))
#define PUT_VIEW(v) put(head, sizeof(head), &n, (v).ptr, (v).len)

/* Writes the response head and the first body bytes in one writev. The
 * head is assembled with copies (snprintf cost ~4,000 instructions here). */
static int write_head(sy_req_t *r, int status, const char *ctype, size_t content_length,
                      bool chunked, const char *extra, const char *body, size_t body_len)
{
    sy_conn_t *c = r->conn;
    char head[2048], num[24], routing[768];
    size_t n = 0;
    bool close = !c->keep_alive || c->worker->draining;
    if (status < 100 || status > 999)
        return UV_EINVAL;
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    bool ok = PUT_LIT("HTTP/1.1 ") && put(head, sizeof(head), &n, code, 4) &&
              PUT_VIEW(sy_http_reason(status)) && PUT_LIT("\r\nContent-Type: ") && PUT_STR(ctype) &&
              PUT_LIT("\r\n");
    if (chunked) {
        ok = ok && PUT_LIT("Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n"
                           "X-Accel-Buffering: no\r\n");
    } else {
        size_t d = sizeof(num);
        size_t v = content_length;
        do {
            num[--d] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        ok = ok && PUT_LIT("Content-Length: ") &&
             put(head, sizeof(head), &n, num + d, sizeof(num) - d) && PUT_LIT("\r\n");
    }
    ok = ok && PUT_LIT("x-request-id: ") && PUT_STR(r->id) && PUT_LIT("\r\n");
    if (close)
        ok = ok && PUT_LIT("Connection: close\r\n");
    if (extra != NULL)
        ok = ok && PUT_STR(extra);
    size_t rl = sy_routing_head(r, routing, sizeof(routing));
    if (rl > 0)
        ok = ok && put(head, sizeof(head), &n, routing, rl);
    ok = ok && PUT_LIT("\r\n");
    if (!ok)
        return UV_EINVAL;
    r->status = status;
    r->headers_sent = true;
    if (r->method == HTTP_HEAD)
        body_len = 0; /* the head announces the length, no body follows */
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)n),
                        uv_buf_init((char *)body, (unsigned)body_len)};
    return conn_write(c, bufs, body_len ? 2 : 1);
}

#undef PUT_LIT
#undef PUT_STR
#undef PUT_VIEW

int sy_server_respond(sy_req_t *r, int status, const char *ctype, const char *body, size_t len,
                      const char *extra_headers)
{
    sy_conn_t *c = r->conn;
    int rc = write_head(r, status, ctype ? ctype : "application/json", len, false, extra_headers,
                        body, len);
    if (rc != 0)
        c->keep_alive = false;
    req_done(c);
    return rc;
}

int sy_server_error(sy_req_t *r, int status, const char *type, const char *code, const char *param,
                    const char *message)
{
    sy_worker_t *w = r->conn->worker;
    if (r->error == NULL)
        r->error = message;
    sy_buf_reset(&w->scratch);
    int rc;
    if (r->anthropic_ingress) {
        /* A /v1/messages client gets every refusal in Anthropic's shape,
         * whichever layer refuses (auth, routing, limits, budgets). */
        sy_provider_error_t e;
        sy_provider_error_set(&e, status, type, code, param,
                              status >= 500 ? SY_CAUSE_GATEWAY : SY_CAUSE_CALLER, "%s", message);
        rc = sy_anthropic_ingress_error_write(&e, &w->scratch);
    } else {
        rc = sy_openai_error_json(&w->scratch, message, type, param, code);
    }
    if (rc != 0)
        return sy_server_respond(r, 500, NULL, "", 0, NULL);
    const char *extra = NULL;
    if (status == 405) {
        extra = "Allow: GET, POST\r\n";
    }
    return sy_server_respond(r, status, NULL, w->scratch.data, w->scratch.len, extra);
}

int sy_server_stream_begin(sy_req_t *r, int status, const char *ctype)
{
    return write_head(r, status, ctype, 0, true, NULL, NULL, 0);
}

int sy_server_stream_write(sy_req_t *r, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    static const char digits[] = "0123456789abcdef";
    char hex[24];
    size_t d = sizeof(hex) - 2;
    hex[d] = '\r';
    hex[d + 1] = '\n';
    for (size_t v = n; v > 0; v >>= 4)
        hex[--d] = digits[v & 15];
    uv_buf_t bufs[3] = {uv_buf_init(hex + d, (unsigned)(sizeof(hex) - d)),
                        uv_buf_init((char *)p, (unsigned)n), uv_buf_init("\r\n", 2)};
    return conn_write(r->conn, bufs, 3);
}

int sy_server_stream_end(sy_req_t *r)
{
    sy_conn_t *c = r->conn;
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    int rc = conn_write(c, &b, 1);
    if (rc != 0)
        c->keep_alive = false;
    req_done(c);
    return rc;
}

/* An error found while reading a request: answer it and close. */
static void fail_request(sy_conn_t *c, int status, const char *code, const char *msg)
{
    sy_req_t *r = &c->req;
    c->keep_alive = false;
    llhttp_pause(&c->parser);
    if (!r->active) {
        r->active = true;
        r->start_ms = uv_now(&c->worker->loop);
        sy_worker_next_id(c->worker, r->id);
    }
    set_state(c, SY_CONN_BUSY);
    /* The endpoint is not dispatched yet; its client still gets its shape. */
    r->anthropic_ingress = r->path_len >= 12 && memcmp(r->path, "/v1/messages", 12) == 0 &&
                           (r->path_len == 12 || r->path[12] == '?');
    sy_server_error(r, status, "invalid_request_error", code, NULL, msg);
}

/* --- parser callbacks ---------------------------------------------------------- */

static int cb_error(sy_conn_t *c, int status, const char *code, const char *msg)
{
    c->err_status = status;
    c->err_code = code;
    c->err_msg = msg;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    sy_conn_t *c = p->data;
    sy_req_t *r = &c->req;
    if (r->head == NULL && (r->head = malloc(sizeof(*r->head))) == NULL)
        return cb_error(c, 500, "internal_error", "Out of memory.");
    sy_req_head_t *h = r->head;
    r->method = 0;
    r->path_len = 0;
    r->path[0] = '\0';
    r->path_too_long = false;
    r->in_query = false;
    h->auth_len = 0;
    h->auth[0] = '\0';
    h->auth_is_bearer = false;
    h->auth_too_long = false;
    h->ctype_len = 0;
    h->ctype[0] = '\0';
    h->hname_len = 0;
    r->expect_continue = false;
    r->expect_other = false;
    r->task_len = 0;
    r->task[0] = '\0';
    r->latency_len = 0;
    r->latency[0] = '\0';
    r->header_bytes = 0;
    sy_buf_reset(&r->body);
    c->hwhich = H_OTHER;
    set_state(c, SY_CONN_HEADERS);
    return 0;
}

static int count_header(sy_conn_t *c, size_t n)
{
    c->req.header_bytes += n;
    if (c->req.header_bytes > (size_t)c->worker->cfg.max_header_bytes)
        return cb_error(c, 431, "request_header_fields_too_large",
                        "Request header fields too large.");
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    sy_conn_t *c = p->data;
    sy_req_t *r = &c->req;
    if (count_header(c, n) != 0)
        return -1;
    if (r->in_query)
        return 0; /* the query string is not kept (no endpoint reads it) */
    const char *q = memchr(at, '?', n);
    if (q != NULL) {
        n = (size_t)(q - at);
        r->in_query = true;
    }
    if (r->path_len + n >= sizeof(r->path)) {
        r->path_too_long = true;
        return 0;
    }
    memcpy(r->path + r->path_len, at, n);
    r->path_len += n;
    r->path[r->path_len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    sy_conn_t *c = p->data;
    sy_req_head_t *hd = c->req.head;
    if (count_header(c, n) != 0)
        return -1;
    for (size_t i = 0; i < n && hd->hname_len < sizeof(hd->hname) - 1; i++) {
        char ch = at[i];
        hd->hname[hd->hname_len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    if (n > 0 && hd->hname_len >= sizeof(hd->hname) - 1)
        hd->hname_len = sizeof(hd->hname) - 1; /* marks "too long to matter" */
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    sy_conn_t *c = p->data;
    sy_req_head_t *hd = c->req.head;
    hd->hname[hd->hname_len] = '\0';
    const char *h = hd->hname;
    c->hwhich = H_OTHER;
    if (strcmp(h, "authorization") == 0)
        c->hwhich = H_AUTH;
    else if (strcmp(h, "x-api-key") == 0)
        c->hwhich = H_APIKEY;
    else if (strcmp(h, "content-type") == 0)
        c->hwhich = H_CTYPE;
    else if (strcmp(h, "expect") == 0)
        c->hwhich = H_EXPECT;
    else if (strcmp(h, "x-switchyard-task") == 0)
        c->hwhich = H_TASK;
    else if (strcmp(h, "x-switchyard-latency") == 0)
        c->hwhich = H_LATENCY;
    if (c->hwhich == H_AUTH || c->hwhich == H_APIKEY) {
        /* Authorization wins over x-api-key when both are present. */
        if (c->hwhich == H_APIKEY && hd->auth_len > 0 && hd->auth_is_bearer)
            c->hwhich = H_OTHER;
        else {
            hd->auth_len = 0;
            hd->auth_too_long = false;
            hd->auth_is_bearer = c->hwhich == H_AUTH;
        }
    } else if (c->hwhich == H_CTYPE) {
        hd->ctype_len = 0;
    } else if (c->hwhich == H_TASK) {
        c->req.task_len = 0;
    } else if (c->hwhich == H_LATENCY) {
        c->req.latency_len = 0;
    }
    hd->hname_len = 0;
    return 0;
}

static void append_capped(char *dst, size_t cap, size_t *len, bool *too_long, const char *at,
                          size_t n)
{
    if (*len + n >= cap) {
        if (too_long != NULL)
            *too_long = true;
        n = cap - 1 - *len;
    }
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    sy_conn_t *c = p->data;
    sy_req_t *r = &c->req;
    if (count_header(c, n) != 0)
        return -1;
    switch (c->hwhich) {
    case H_AUTH:
    case H_APIKEY:
        append_capped(r->head->auth, sizeof(r->head->auth), &r->head->auth_len,
                      &r->head->auth_too_long, at, n);
        break;
    case H_CTYPE:
        append_capped(r->head->ctype, sizeof(r->head->ctype), &r->head->ctype_len, NULL, at, n);
        break;
    case H_TASK:
        append_capped(r->task, sizeof(r->task), &r->task_len, NULL, at, n);
        break;
    case H_LATENCY:
        append_capped(r->latency, sizeof(r->latency), &r->latency_len, NULL, at, n);
        break;
    case H_EXPECT: {
        sy_str_t v = sy_str_trim((sy_str_t){at, n});
        if (sy_str_case_eq_cstr(v, "100-continue"))
            r->expect_continue = true;
        else
            r->expect_other = true;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    sy_conn_t *c = p->data;
    sy_req_t *r = &c->req;
    r->method = (uint8_t)llhttp_get_method(p);
    c->keep_alive = llhttp_should_keep_alive(p);
    if (r->path_too_long)
        return cb_error(c, 414, "uri_too_long", "Request URL too long.");
    if (r->expect_other)
        return cb_error(c, 417, "expectation_failed", "Unsupported Expect header value.");
    bool has_body =
        (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if ((p->flags & F_CONTENT_LENGTH) &&
        p->content_length > (uint64_t)c->worker->cfg.max_body_bytes)
        return cb_error(c, 413, "request_too_large", "Request body too large.");
    if (has_body) {
        set_state(c, SY_CONN_BODY);
        if (r->expect_continue) {
            uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
            size_t out = r->bytes_out;
            conn_write(c, &b, 1);
            r->bytes_out = out;
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    sy_conn_t *c = p->data;
    sy_req_t *r = &c->req;
    if (r->body.len + n > (size_t)c->worker->cfg.max_body_bytes)
        return cb_error(c, 413, "request_too_large", "Request body too large.");
    if (sy_buf_append(&r->body, at, n) != 0)
        return cb_error(c, 500, "internal_error", "Out of memory.");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    sy_conn_t *c = p->data;
    set_state(c, SY_CONN_BUSY);
    return HPE_PAUSED;
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static bool init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        init = true;
    }
    return &s;
}

/* --- reading ---------------------------------------------------------------------- */

static void dispatch(sy_conn_t *c)
{
    sy_req_t *r = &c->req;
    r->active = true;
    r->start_ms = uv_now(&c->worker->loop);
    r->bytes_in = r->body.len;
    sy_worker_next_id(c->worker, r->id);
    sy_proxy_handle(r);
    /* The head fields are read by sy_proxy_handle only: an open stream does
     * not keep them. The connection outlives this call (freed in its close
     * callback). When the request was answered inside the call, the next
     * pipelined one may already be half parsed into the head: it is kept
     * unless the connection is back to idle (no head being parsed). */
    if (c->req.active || c->state == SY_CONN_IDLE) {
        free(c->req.head);
        c->req.head = NULL;
    }
}

/* Parses data (pending bytes when from_pending). Returns true when parsing
 * may continue with more input. */
static bool conn_parse(sy_conn_t *c, const char *data, size_t len, bool from_pending)
{
    c->err_status = 0;
    enum llhttp_errno e = llhttp_execute(&c->parser, data, len);
    size_t used = len;
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        used = pos != NULL ? (size_t)(pos - data) : len;
    } else if (e != HPE_OK) {
        if (from_pending)
            sy_buf_reset(&c->pending);
        if (c->err_status != 0) {
            fail_request(c, c->err_status, c->err_code, c->err_msg);
        } else if (c->state == SY_CONN_IDLE && c->req.header_bytes == 0 &&
                   e == HPE_INVALID_METHOD) {
            fail_request(c, 400, "bad_request", "Malformed HTTP request.");
        } else {
            fail_request(c, 400, "bad_request", "Malformed HTTP request.");
        }
        return false;
    }
    if (from_pending) {
        sy_buf_consume(&c->pending, used);
    } else if (used < len) {
        if (sy_buf_append(&c->pending, data + used, len - used) != 0) {
            conn_close(c);
            return false;
        }
    }
    if (e == HPE_PAUSED) {
        dispatch(c);
        return false;
    }
    return true;
}

/* Parses pending input while no request is in flight. Reentrant calls (a
 * request finished synchronously inside dispatch) only ask the outer loop to
 * go on. */
static void conn_drive(sy_conn_t *c)
{
    if (c->driving)
        return;
    c->driving = true;
    while (!c->closing && !c->req.active && !c->close_after_write && c->pending.len > 0) {
        if (!conn_parse(c, c->pending.data, c->pending.len, true) && c->req.active)
            break;
    }
    c->driving = false;
    if (!c->closing && !c->req.active && c->eof && c->tcp.write_queue_size == 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    SY_UNUSED(suggested);
    sy_conn_t *c = sy_container_of((uv_tcp_t *)h, sy_conn_t, tcp);
    buf->base = c->worker->read_buf;
    buf->len = sizeof(c->worker->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sy_conn_t *c = sy_container_of((uv_tcp_t *)s, sy_conn_t, tcp);
    if (c->closing)
        return;
    if (nread < 0) {
        /* EOF or error: an in-flight request loses its client, so its
         * upstream transfer is cancelled at once by conn_close. */
        c->eof = true;
        uv_read_stop(s);
        if (nread == UV_EOF && !c->req.active && c->pending.len > 0 && !c->lingering) {
            conn_drive(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering)
        return;
    if (c->req.active || c->pending.len > 0) {
        if (sy_buf_append(&c->pending, buf->base, (size_t)nread) != 0) {
            conn_close(c);
            return;
        }
        if (c->pending.len > PENDING_MAX) {
            uv_read_stop(s);
            c->read_stopped = true;
        }
        conn_drive(c);
        return;
    }
    if (conn_parse(c, buf->base, (size_t)nread, false) || !c->req.active)
        conn_drive(c);
}

void sy_server_accept(sy_worker_t *w, uv_stream_t *listener)
{
    sy_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->worker = w;
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    c->worker = w;
    c->req.conn = c;
    c->req.ttft_ms = -1;
    c->req.upstream_ms = -1;
    sy_buf_init(&c->pending);
    sy_buf_init(&c->req.body);
    sy_buf_init(&c->req.resp);
    sy_buf_init(&c->req.up_url);
    llhttp_init(&c->parser, HTTP_REQUEST, settings());
    c->parser.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    c->keep_alive = true;
    c->last_write_ms = uv_now(&w->loop);
    set_state(c, SY_CONN_IDLE);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

void sy_server_sweep(sy_worker_t *w, uint64_t now)
{
    sy_conn_t *c = w->conns;
    while (c != NULL) {
        sy_conn_t *next = c->next;
        if (c->read_stopped && !c->req.active && c->pending.len < PENDING_MAX / 2 && !c->eof) {
            c->read_stopped = false;
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        }
        if (c->tcp.write_queue_size > 0 && w->cfg.send_timeout_ms > 0 &&
            now - c->last_write_ms > (uint64_t)w->cfg.send_timeout_ms) {
            conn_close(c); /* a client that stopped reading */
        } else if (c->deadline_ms != 0 && now >= c->deadline_ms && !c->req.active) {
            if (c->lingering || (c->state == SY_CONN_IDLE && c->pending.len == 0))
                conn_close(c);
            else
                fail_request(c, 408, "request_timeout",
                             c->state == SY_CONN_BODY ? "Timed out reading the request body."
                                                      : "Timed out reading the request headers.");
        }
        c = next;
    }
}

void sy_server_close_idle(sy_worker_t *w, bool all)
{
    sy_conn_t *c = w->conns;
    while (c != NULL) {
        sy_conn_t *next = c->next;
        if (all || (!c->req.active && c->state == SY_CONN_IDLE && c->tcp.write_queue_size == 0))
            conn_close(c);
        c = next;
    }
}
