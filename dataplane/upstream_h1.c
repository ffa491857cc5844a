/* Built-in HTTP/1.1 client for plain-http upstreams; see upstream_h1.h. */
#include "dataplane/upstream_h1.h"

#include <llhttp.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_MAX 64              /* distinct host:port pairs per worker */
#define ADDR_MAX 8                 /* addresses kept per name */
#define IDLE_MAX 1024              /* idle connections kept per worker */
#define IDLE_KEEP_MS 30000         /* an idle connection's life */
#define RESOLVE_TTL_MS 30000       /* a resolved name's life */
#define HEAD_MAX (64 * 1024)       /* response head cap (502 beyond) */
#define READ_BUF_BYTES (64 * 1024) /* the engine's one read buffer */

typedef struct sy_h1_origin {
    sy_h1_t *h1;          /* borrowed */
    char *authority;      /* owned; "host[:port]" as in the URL: the Host header */
    size_t authority_len; /* its length */
    char *host;           /* owned; for the resolver, brackets removed */
    char port[8];         /* decimal */
    struct sockaddr_storage addrs[ADDR_MAX]; /* resolved (or literal) addresses */
    int n_addrs;                             /* entries in addrs */
    bool literal;                            /* host is an IP address: never resolved */
    bool resolving;                          /* gai in flight */
    uint64_t resolved_ms;                    /* loop time of the last resolution */
    uv_getaddrinfo_t gai;                    /* the resolution request */
    sy_upstream_xfer_t *waiting;             /* borrowed; transfers waiting for the name */
    struct sy_h1_conn *idle;                 /* borrowed; idle connections, most recent first */
    struct sy_h1_conn *idle_tail;            /* borrowed; least recent */
} sy_h1_origin_t;

enum conn_state { CONN_CONNECTING, CONN_BUSY, CONN_IDLE };

typedef struct sy_h1_conn {
    uv_tcp_t tcp;             /* embedded handle; freed in its close callback */
    uv_connect_t connect_req; /* embedded */
    uv_write_t write_req;     /* embedded; one request write at a time */
    llhttp_t parser;          /* the answer's parser */
    sy_h1_origin_t *origin;   /* borrowed */
    sy_upstream_xfer_t *x;    /* borrowed; the transfer it carries, NULL when idle */
    struct sy_h1_conn *prev;  /* borrowed; origin's idle list */
    struct sy_h1_conn *next;  /* borrowed */
    sy_buf_t hdr;             /* "Name: value" of the header being read; freed after the head */
    uint64_t idle_since;      /* loop time it went idle */
    uint32_t served;          /* answers completed: > 0 means a reused connection */
    uint32_t head_bytes;      /* bytes of the current answer's head */
    uint32_t name_len;        /* bytes of the name in hdr */
    uint8_t addr_i;           /* address being connected to */
    uint8_t state;            /* enum conn_state */
    bool in_parse;            /* inside llhttp_execute: a stop only marks it */
    bool stopped;             /* its transfer was stopped inside the parse */
    bool got_bytes;           /* an answer byte arrived for x */
    bool done;                /* x's final answer is complete */
    bool aborted;             /* on_data asked to stop */
    bool head_too_large;      /* the head passed HEAD_MAX */
    bool in_trailers;         /* past the head: header lines now are trailers */
    bool no_memory;           /* an allocation failed inside the parse */
    bool writing;             /* a queued request write is in flight */
    bool closing;             /* uv_close called */
} sy_h1_conn_t;

struct sy_h1 {
    uv_loop_t *loop;                     /* borrowed */
    void (*on_closed)(void *);           /* borrowed */
    void *on_closed_arg;                 /* borrowed */
    uv_idle_t finish;                    /* runs queued finishes on the next loop pass */
    sy_upstream_xfer_t *finishing;       /* borrowed; queued finishes */
    sy_h1_origin_t *origins[ORIGIN_MAX]; /* owned */
    size_t n_origins;                    /* entries in origins */
    size_t n_idle;                       /* idle connections, all origins */
    size_t open;                         /* handles and requests not yet called back */
    bool closing;                        /* sy_h1_close was called */
    char rbuf[READ_BUF_BYTES];           /* every read lands here and is parsed at once */
};

static const llhttp_settings_t *settings(void);
static void conn_close(sy_h1_conn_t *c);
static int dispatch(sy_h1_origin_t *o, sy_upstream_xfer_t *x);
static int open_new(sy_h1_origin_t *o, sy_upstream_xfer_t *x);

/* --- engine life ------------------------------------------------------------- */

static void maybe_closed(sy_h1_t *h)
{
    if (!h->closing || h->open > 0)
        return;
    for (size_t i = 0; i < h->n_origins; i++) {
        free(h->origins[i]->authority);
        free(h->origins[i]->host);
        free(h->origins[i]);
    }
    void (*cb)(void *) = h->on_closed;
    void *arg = h->on_closed_arg;
    free(h);
    cb(arg);
}

static void on_handle_closed(uv_handle_t *handle)
{
    sy_h1_t *h = handle->data;
    h->open--;
    maybe_closed(h);
}

int sy_h1_new(uv_loop_t *loop, void (*on_closed)(void *), void *arg, sy_h1_t **out)
{
    sy_h1_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return SY_ENOMEM;
    h->loop = loop;
    h->on_closed = on_closed;
    h->on_closed_arg = arg;
    uv_idle_init(loop, &h->finish); /* cannot fail */
    h->finish.data = h;
    h->open = 1;
    *out = h;
    return 0;
}

void sy_h1_close(sy_h1_t *h)
{
    if (h == NULL || h->closing)
        return;
    h->closing = true;
    for (size_t i = 0; i < h->n_origins; i++)
        while (h->origins[i]->idle != NULL)
            conn_close(h->origins[i]->idle);
    uv_close((uv_handle_t *)&h->finish, on_handle_closed);
}

/* --- finishing ------------------------------------------------------------------ */

static void on_finish(uv_idle_t *handle)
{
    sy_h1_t *h = handle->data;
    uv_idle_stop(handle);
    while (h->finishing != NULL) {
        sy_upstream_xfer_t *x = h->finishing;
        h->finishing = x->h1_next;
        x->h1_next = NULL;
        x->h1_queue = 0;
        sy_upstream_finished(x, x->h1_result, x->h1_why);
    }
}

/* Finishes x on the next loop pass: for ends found where the owner's
 * callbacks may not run (inside sy_h1_resume, which its owner calls). */
static void finish_later(sy_h1_t *h, sy_upstream_xfer_t *x, int result, const char *why)
{
    x->h1_result = result;
    x->h1_why = why;
    x->h1_queue = 2;
    x->h1_next = h->finishing;
    h->finishing = x;
    uv_idle_start(&h->finish, on_finish);
}

static void unqueue(sy_upstream_xfer_t **head, sy_upstream_xfer_t *x)
{
    for (sy_upstream_xfer_t **p = head; *p != NULL; p = &(*p)->h1_next)
        if (*p == x) {
            *p = x->h1_next;
            break;
        }
    x->h1_next = NULL;
    x->h1_queue = 0;
}

/* --- origins and names ---------------------------------------------------------- */

/* Splits a plain http URL into authority, host, port and path. Returns
 * false for anything libcurl should handle. */
typedef struct url_parts {
    const char *authority;
    size_t authority_len;
    const char *host;
    size_t host_len;
    const char *port;
    size_t port_len;
    const char *path; /* "/..." or "" for "/" */
} url_parts_t;

static bool parse_url(const char *url, url_parts_t *u)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || memchr(a, '@', alen) != NULL || a[alen] == '#')
        return false;
    u->authority = a;
    u->authority_len = alen;
    u->path = a + alen;
    if (strchr(u->path, '#') != NULL || strpbrk(u->path, " \r\n\t") != NULL)
        return false;
    const char *end = a + alen, *colon;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (rb == NULL)
            return false;
        u->host = a + 1;
        u->host_len = (size_t)(rb - a - 1);
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return false;
    } else {
        colon = memchr(a, ':', alen);
        u->host = a;
        u->host_len = colon != NULL ? (size_t)(colon - a) : alen;
    }
    if (u->host_len == 0 || u->host_len > 253)
        return false;
    if (colon != NULL) {
        u->port = colon + 1;
        u->port_len = (size_t)(end - u->port);
        if (u->port_len == 0 || u->port_len > 5)
            return false;
        unsigned long v = 0;
        for (size_t i = 0; i < u->port_len; i++) {
            if (u->port[i] < '0' || u->port[i] > '9')
                return false;
            v = v * 10 + (unsigned long)(u->port[i] - '0');
        }
        if (v == 0 || v > 65535)
            return false;
    } else {
        u->port = "80";
        u->port_len = 2;
    }
    return true;
}

static sy_h1_origin_t *origin_get(sy_h1_t *h, const url_parts_t *u)
{
    for (size_t i = 0; i < h->n_origins; i++) {
        sy_h1_origin_t *o = h->origins[i];
        if (o->authority_len == u->authority_len &&
            memcmp(o->authority, u->authority, u->authority_len) == 0)
            return o;
    }
    if (h->n_origins == ORIGIN_MAX)
        return NULL;
    sy_h1_origin_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->h1 = h;
    o->authority = sy_str_dup((sy_str_t){u->authority, u->authority_len});
    o->authority_len = u->authority_len;
    o->host = sy_str_dup((sy_str_t){u->host, u->host_len});
    memcpy(o->port, u->port, u->port_len);
    if (o->authority == NULL || o->host == NULL) {
        free(o->authority);
        free(o->host);
        free(o);
        return NULL;
    }
    int port = atoi(o->port);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&o->addrs[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&o->addrs[0];
    if (uv_ip4_addr(o->host, port, v4) == 0 || uv_ip6_addr(o->host, port, v6) == 0) {
        o->literal = true;
        o->n_addrs = 1;
    }
    h->origins[h->n_origins++] = o;
    return o;
}

static void fail_waiting(sy_h1_origin_t *o, int result, const char *why)
{
    while (o->waiting != NULL) {
        sy_upstream_xfer_t *x = o->waiting;
        o->waiting = x->h1_next;
        x->h1_next = NULL;
        x->h1_queue = 0;
        sy_upstream_finished(x, result, why);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sy_h1_origin_t *o = sy_container_of(req, sy_h1_origin_t, gai);
    sy_h1_t *h = o->h1;
    o->resolving = false;
    h->open--;
    if (status == 0) {
        int n = 0;
        for (struct addrinfo *ai = res; ai != NULL && n < ADDR_MAX; ai = ai->ai_next)
            if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                ai->ai_addrlen <= sizeof(o->addrs[0]))
                memcpy(&o->addrs[n++], ai->ai_addr, ai->ai_addrlen);
        if (n > 0) {
            o->n_addrs = n;
            o->resolved_ms = uv_now(h->loop);
        }
    }
    uv_freeaddrinfo(res);
    if (h->closing) {
        fail_waiting(o, SY_ECANCELED, "transfer stopped by the gateway");
        maybe_closed(h);
        return;
    }
    if (o->n_addrs == 0) {
        fail_waiting(o, -ECONNREFUSED, "cannot resolve the upstream host");
        return;
    }
    /* A stale address list stays in use when the new resolution failed. */
    while (o->waiting != NULL) {
        sy_upstream_xfer_t *x = o->waiting;
        o->waiting = x->h1_next;
        x->h1_next = NULL;
        x->h1_queue = 0;
        if (dispatch(o, x) != 0)
            sy_upstream_finished(x, -ECONNREFUSED, "cannot connect to the upstream");
    }
}

/* --- connections ----------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *handle)
{
    sy_h1_conn_t *c = sy_container_of((uv_tcp_t *)handle, sy_h1_conn_t, tcp);
    sy_h1_t *h = c->origin->h1;
    sy_buf_free(&c->hdr);
    free(c);
    h->open--;
    maybe_closed(h);
}

static void idle_remove(sy_h1_conn_t *c)
{
    sy_h1_origin_t *o = c->origin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        o->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        o->idle_tail = c->prev;
    c->prev = c->next = NULL;
    o->h1->n_idle--;
}

static void conn_close(sy_h1_conn_t *c)
{
    if (c->closing)
        return;
    if (c->state == CONN_IDLE)
        idle_remove(c);
    c->closing = true;
    if (c->x != NULL) {
        c->x->h1_conn = NULL;
        c->x = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void alloc_read(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    SY_UNUSED(suggested);
    sy_h1_conn_t *c = sy_container_of((uv_tcp_t *)handle, sy_h1_conn_t, tcp);
    sy_h1_t *h = c->origin->h1;
    buf->base = h->rbuf;
    buf->len = sizeof(h->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Ends x's use of c because of an I/O or protocol failure. A reused
 * connection that failed before any answer byte was most likely closed by
 * the upstream while idle: the request goes again, once, on a fresh one. */
static void conn_failed(sy_h1_conn_t *c, int result, const char *why)
{
    sy_upstream_xfer_t *x = c->x;
    bool stale = x != NULL && !c->got_bytes && c->served > 0 && !x->retried;
    sy_h1_origin_t *o = c->origin;
    conn_close(c);
    if (x == NULL)
        return;
    if (stale) {
        x->retried = true;
        if (open_new(o, x) == 0) /* not another idle one: it may be stale too */
            return;
    }
    sy_upstream_finished(x, result, why);
}

static void on_written(uv_write_t *req, int status)
{
    sy_h1_conn_t *c = sy_container_of(req, sy_h1_conn_t, write_req);
    c->writing = false;
    if (status < 0 && !c->closing && c->x != NULL)
        conn_failed(c, SY_EIO, "upstream connection failed");
}

/* Writes x's request head and body: one writev when the socket takes it,
 * else the rest queued (the head lives in x's block and the body stays
 * valid until on_done). */
static int write_request(sy_h1_conn_t *c)
{
    sy_upstream_xfer_t *x = c->x;
    uv_buf_t bufs[2] = {uv_buf_init(x->hblock, (unsigned)x->h1_head_len),
                        uv_buf_init((char *)(uintptr_t)x->h1_body, (unsigned)x->h1_body_len)};
    unsigned nbufs = x->h1_body_len > 0 ? 2 : 1;
    size_t total = bufs[0].len + (nbufs == 2 ? bufs[1].len : 0);
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0)
        return n;
    if ((size_t)n == total)
        return 0;
    uv_buf_t *b = bufs;
    size_t skip = (size_t)n;
    if (skip >= b->len) {
        skip -= b->len;
        b++;
        nbufs--;
    }
    b->base += skip;
    b->len -= skip;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, b, nbufs, on_written);
    c->writing = rc == 0;
    return rc;
}

/* Puts x on c (connected) and sends its request. */
static int conn_send(sy_h1_conn_t *c, sy_upstream_xfer_t *x)
{
    c->x = x;
    x->h1_conn = c;
    c->state = CONN_BUSY;
    c->got_bytes = c->done = c->aborted = c->head_too_large = c->no_memory = false;
    c->stopped = false;
    c->head_bytes = 0;
    llhttp_init(&c->parser, HTTP_RESPONSE, settings());
    c->parser.data = c;
    int rc = write_request(c);
    if (rc != 0) {
        c->x = NULL;
        x->h1_conn = NULL;
    }
    return rc;
}

static int conn_open(sy_h1_origin_t *o, sy_upstream_xfer_t *x, int addr_i);

static void on_connect(uv_connect_t *req, int status)
{
    sy_h1_conn_t *c = sy_container_of(req, sy_h1_conn_t, connect_req);
    if (c->closing)
        return; /* stopped meanwhile */
    sy_upstream_xfer_t *x = c->x;
    sy_h1_origin_t *o = c->origin;
    if (status == 0) {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_read, on_read);
        c->x = NULL; /* conn_send puts it back */
        x->h1_conn = NULL;
        if ((status = conn_send(c, x)) == 0)
            return;
    }
    int next = c->addr_i + 1;
    conn_close(c);
    if (next < o->n_addrs && conn_open(o, x, next) == 0)
        return;
    sy_upstream_finished(x, -ECONNREFUSED, "cannot connect to the upstream");
}

static int conn_open(sy_h1_origin_t *o, sy_upstream_xfer_t *x, int addr_i)
{
    sy_h1_t *h = o->h1;
    sy_h1_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SY_ENOMEM;
    int rc = uv_tcp_init(h->loop, &c->tcp);
    if (rc != 0) {
        free(c);
        return rc;
    }
    h->open++;
    c->origin = o;
    c->addr_i = (uint8_t)addr_i;
    c->state = CONN_CONNECTING;
    sy_buf_init(&c->hdr);
    uv_tcp_nodelay(&c->tcp, 1);
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&o->addrs[addr_i],
                        on_connect);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    uv_tcp_keepalive(&c->tcp, 1, 60);
    c->x = x;
    x->h1_conn = c;
    return 0;
}

/* Sends x on an idle connection of o, or opens one. */
static int dispatch(sy_h1_origin_t *o, sy_upstream_xfer_t *x)
{
    while (o->idle != NULL) {
        sy_h1_conn_t *c = o->idle;
        idle_remove(c);
        if (conn_send(c, x) == 0)
            return 0;
        conn_close(c); /* conn_send left it busy: not unlinked twice */
    }
    return open_new(o, x);
}

/* Opens a connection for x, resolving the name first when needed. */
static int open_new(sy_h1_origin_t *o, sy_upstream_xfer_t *x)
{
    sy_h1_t *h = o->h1;
    uint64_t now = uv_now(h->loop);
    if (!o->literal && (o->n_addrs == 0 || now - o->resolved_ms > RESOLVE_TTL_MS)) {
        x->h1_queue = 1;
        x->h1_next = o->waiting;
        o->waiting = x;
        if (!o->resolving) {
            struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
            int rc = uv_getaddrinfo(h->loop, &o->gai, on_resolved, o->host, o->port, &hints);
            if (rc != 0) {
                unqueue(&o->waiting, x);
                return rc;
            }
            o->resolving = true;
            h->open++;
        }
        return 0;
    }
    return conn_open(o, x, 0);
}

/* The answer on c is complete: c goes idle (or closes) before on_done, so
 * that a transfer started from on_done can reuse it. */
static void conn_complete(sy_h1_conn_t *c, bool reusable)
{
    sy_upstream_xfer_t *x = c->x;
    sy_h1_origin_t *o = c->origin;
    sy_h1_t *h = o->h1;
    c->x = NULL;
    x->h1_conn = NULL;
    c->served++;
    /* A write still in flight (an answer that came before the whole body
     * went) leaves the connection unusable for the next request. */
    if (reusable && !c->writing && !h->closing && h->n_idle < IDLE_MAX) {
        if (x->paused) /* reading stopped with the pause: idle ones are read */
            uv_read_start((uv_stream_t *)&c->tcp, alloc_read, on_read);
        c->state = CONN_IDLE;
        c->idle_since = uv_now(h->loop);
        c->next = o->idle;
        c->prev = NULL;
        if (o->idle != NULL)
            o->idle->prev = c;
        else
            o->idle_tail = c;
        o->idle = c;
        h->n_idle++;
    } else {
        conn_close(c);
    }
    if (x->paused)
        x->h1_complete = true; /* on_done once the held bytes are taken */
    else
        sy_upstream_finished(x, 0, NULL);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sy_h1_conn_t *c = sy_container_of((uv_tcp_t *)stream, sy_h1_conn_t, tcp);
    if (nread == 0 || c->closing)
        return;
    if (c->x == NULL) {
        /* Idle: the upstream closed it, or sent what nobody asked for. */
        conn_close(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && c->got_bytes) {
            /* An answer delimited by the connection's end. */
            c->in_parse = true;
            llhttp_finish(&c->parser);
            c->in_parse = false;
            if (c->stopped) {
                conn_close(c);
                return;
            }
            if (c->done) {
                conn_complete(c, false);
                return;
            }
        }
        conn_failed(c, SY_EIO,
                    c->got_bytes ? "upstream closed the connection mid-answer"
                                 : "upstream closed the connection");
        return;
    }
    c->got_bytes = true;
    c->in_parse = true;
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    c->in_parse = false;
    if (c->stopped) {
        conn_close(c);
        return;
    }
    if (e == HPE_OK)
        return;
    if (e == HPE_PAUSED && c->done) {
        const char *end = llhttp_get_error_pos(&c->parser);
        bool extra = end != buf->base + nread; /* bytes after the answer: not ours */
        conn_complete(c, !extra && llhttp_should_keep_alive(&c->parser));
        return;
    }
    if (c->aborted)
        conn_failed(c, SY_ECANCELED, "transfer stopped by the gateway");
    else if (c->no_memory)
        conn_failed(c, SY_ENOMEM, "out of memory");
    else if (c->head_too_large)
        conn_failed(c, SY_EIO, "upstream response head too large");
    else
        conn_failed(c, SY_EIO, "malformed upstream response");
}

/* --- answer parsing ---------------------------------------------------------------- */

static sy_h1_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

/* Counts n more bytes of the answer's heads (interim ones included, so
 * that an endless run of 1xx heads is capped too). */
static int head_bytes(sy_h1_conn_t *c, size_t n)
{
    c->head_bytes += (uint32_t)(n < HEAD_MAX ? n : HEAD_MAX);
    if (c->head_bytes > HEAD_MAX) {
        c->head_too_large = true;
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    sy_h1_conn_t *c = conn_of(p);
    c->x->content_type[0] = '\0';
    c->x->retry_after[0] = '\0';
    sy_buf_reset(&c->hdr);
    c->name_len = 0;
    c->in_trailers = false;
    return head_bytes(c, 17); /* "HTTP/1.1 200 " and the line ends */
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
    SY_UNUSED(at);
    return head_bytes(conn_of(p), n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    sy_h1_conn_t *c = conn_of(p);
    if (head_bytes(c, n) != 0)
        return -1;
    if (sy_buf_append(&c->hdr, at, n) != 0) {
        c->no_memory = true;
        return -1;
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    sy_h1_conn_t *c = conn_of(p);
    c->name_len = (uint32_t)c->hdr.len;
    if (head_bytes(c, 4) != 0) /* ": " and the line end */
        return -1;
    if (sy_buf_append(&c->hdr, ": ", 2) != 0) {
        c->no_memory = true;
        return -1;
    }
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    return on_header_field(p, at, n);
}

/* Keeps Content-Type and Retry-After of the head in x; hands other lines
 * (trailers too) to on_header. */
static int on_header_value_complete(llhttp_t *p)
{
    sy_h1_conn_t *c = conn_of(p);
    sy_upstream_xfer_t *x = c->x;
    const char *name = c->hdr.data;
    const char *v = name + c->name_len + 2, *end = name + c->hdr.len;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *dst = NULL;
    size_t cap = 0;
    if (c->in_trailers) {
        /* The head's values stand. */
    } else if (c->name_len == 12 && strncasecmp(name, "content-type", 12) == 0) {
        dst = x->content_type;
        cap = sizeof(x->content_type);
    } else if (c->name_len == 11 && strncasecmp(name, "retry-after", 11) == 0) {
        dst = x->retry_after;
        cap = sizeof(x->retry_after);
    }
    if (dst != NULL) {
        size_t l = (size_t)(end - v);
        if (l >= cap)
            l = cap - 1;
        memcpy(dst, v, l);
        dst[l] = '\0';
    } else if (x->cbs->on_header != NULL) {
        c->hdr.len = (size_t)(end - name);
        if (sy_buf_append(&c->hdr, "\r\n", 2) != 0) {
            c->no_memory = true;
            return -1;
        }
        x->cbs->on_header(x->ctx, x, c->hdr.data, c->hdr.len);
    }
    sy_buf_reset(&c->hdr);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    sy_h1_conn_t *c = conn_of(p);
    int status = llhttp_get_status_code(p);
    if (status >= 200)
        c->x->status = status;
    c->in_trailers = true;
    sy_buf_free(&c->hdr); /* an open stream keeps no head buffer */
    return 0;
}

/* Keeps bytes that arrive while x is paused (at most what one read
 * brought: reading stops with the pause). */
static int hold(sy_h1_conn_t *c, const char *at, size_t n)
{
    sy_upstream_xfer_t *x = c->x;
    size_t need = (size_t)x->h1_held_len + n;
    if (need > x->h1_held_cap) {
        char *p = realloc(x->h1_held, need);
        if (p == NULL) {
            c->no_memory = true;
            return -1;
        }
        x->h1_held = p;
        x->h1_held_cap = (uint32_t)need;
    }
    memcpy(x->h1_held + x->h1_held_len, at, n);
    x->h1_held_len = (uint32_t)need;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    sy_h1_conn_t *c = conn_of(p);
    sy_upstream_xfer_t *x = c->x;
    uint64_t now = uv_now(c->origin->h1->loop);
    if (x->first_byte_ms == 0)
        x->first_byte_ms = now ? now : 1;
    x->last_data_ms = now;
    if (x->paused)
        return hold(c, at, n);
    size_t r = x->cbs->on_data(x->ctx, x, at, n);
    if (c->stopped)
        return -1;
    if (r == n)
        return 0;
    if (r == SY_UPSTREAM_PAUSE) {
        x->paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
        return hold(c, at, n);
    }
    c->aborted = true;
    return -1;
}

static int on_message_complete(llhttp_t *p)
{
    sy_h1_conn_t *c = conn_of(p);
    if (llhttp_get_status_code(p) < 200)
        return 0; /* 100 Continue, 103 Early Hints: the final answer follows */
    c->done = true;
    return HPE_PAUSED; /* the rest is handled outside the parser */
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static bool ready;
    if (!ready) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_status = on_status;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        ready = true;
    }
    return &s;
}

/* --- transfers ----------------------------------------------------------------------- */

static bool has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

/* Lays out the request head at the start of x's block (grown only when
 * too small, as the libcurl engine's header block). */
static int build_head(sy_upstream_xfer_t *x, const url_parts_t *u, const sy_upstream_req_t *req)
{
    bool post = req->method != NULL && strcmp(req->method, "POST") == 0;
    bool body = post && req->body != NULL; /* a GET sends none (as CURLOPT_HTTPGET) */
    const char *method = post ? "POST " : "GET ";
    const char *path = u->path;
    size_t path_len = strlen(path);
    bool slash = path[0] != '/'; /* "" or "?q=1": the path is "/" */
    size_t bearer_len = req->bearer != NULL ? strlen(req->bearer) : 0;
    if (has_crlf(req->bearer ? req->bearer : "", bearer_len))
        return SY_EINVAL;
    size_t lens[64];
    size_t nh = 0, need = strlen(method) + slash + path_len + 17 + u->authority_len + 2;
    bool own_host = true;
    if (bearer_len > 0)
        need += 22 + bearer_len + 2;
    if (body)
        need += 32;
    if (req->stream)
        need += 27;
    for (; req->headers != NULL && req->headers[nh] != NULL; nh++) {
        if (nh == SY_ARRAY_LEN(lens))
            return SY_E2BIG;
        lens[nh] = strlen(req->headers[nh]);
        if (has_crlf(req->headers[nh], lens[nh]) || memchr(req->headers[nh], ':', lens[nh]) == NULL)
            return SY_EINVAL;
        if (strncasecmp(req->headers[nh], "host:", 5) == 0)
            own_host = false; /* a configured Host replaces ours, as with libcurl */
        need += lens[nh] + 2;
    }
    char clen[24];
    size_t clen_len = 0;
    if (post) {
        size_t v = req->body_len;
        char tmp[24];
        do {
            tmp[clen_len++] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        for (size_t i = 0; i < clen_len; i++)
            clen[i] = tmp[clen_len - 1 - i];
        need += 16 + clen_len + 2;
    }
    need += 2;
    if (sy_upstream_reserve_block(x, need) != 0)
        return SY_ENOMEM;
    char *o = x->hblock;
#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        memcpy(o, (s), (n));                                                                       \
        o += (n);                                                                                  \
    } while (0)
#define PUTS(lit) PUT(lit, sizeof(lit) - 1)
    PUT(method, strlen(method));
    if (slash)
        PUTS("/");
    PUT(path, path_len);
    PUTS(" HTTP/1.1\r\n");
    if (own_host) {
        PUTS("Host: ");
        PUT(u->authority, u->authority_len);
        PUTS("\r\n");
    }
    if (bearer_len > 0) {
        PUTS("Authorization: Bearer ");
        PUT(req->bearer, bearer_len);
        PUTS("\r\n");
    }
    if (body)
        PUTS("Content-Type: application/json\r\n");
    if (req->stream)
        PUTS("Accept: text/event-stream\r\n");
    for (size_t i = 0; i < nh; i++) {
        PUT(req->headers[i], lens[i]);
        PUTS("\r\n");
    }
    if (post) {
        PUTS("Content-Length: ");
        PUT(clen, clen_len);
        PUTS("\r\n");
    }
    PUTS("\r\n");
#undef PUTS
#undef PUT
    x->h1_head_len = (size_t)(o - x->hblock);
    return 0;
}

int sy_h1_start(sy_h1_t *h, sy_upstream_xfer_t *x, const sy_upstream_req_t *req)
{
    url_parts_t u;
    if (!parse_url(req->url, &u))
        return SY_H1_NOT_MINE;
    if (h->closing)
        return SY_ECANCELED;
    sy_h1_origin_t *o = origin_get(h, &u);
    if (o == NULL)
        return SY_H1_NOT_MINE; /* past ORIGIN_MAX: libcurl */
    int rc = build_head(x, &u, req);
    if (rc != 0)
        return rc;
    x->h1 = true;
    x->h1_origin = o;
    x->h1_body = req->body;
    bool post = req->method != NULL && strcmp(req->method, "POST") == 0;
    x->h1_body_len = post && req->body != NULL ? req->body_len : 0;
    return dispatch(o, x);
}

void sy_h1_stop(sy_upstream_xfer_t *x)
{
    if (x->h1_queue == 1)
        unqueue(&x->h1_origin->waiting, x);
    else if (x->h1_queue == 2)
        unqueue(&x->h1_origin->h1->finishing, x);
    free(x->h1_held);
    x->h1_held = NULL;
    x->h1_held_len = x->h1_held_cap = 0;
    sy_h1_conn_t *c = x->h1_conn;
    if (c == NULL)
        return;
    if (c->in_parse) {
        /* Inside this connection's parse (from on_data): it closes when
         * the parser returns. */
        c->stopped = true;
        c->x = NULL;
        x->h1_conn = NULL;
        return;
    }
    conn_close(c); /* mid-answer or connecting: the connection cannot be reused */
}

void sy_h1_resume(sy_upstream_xfer_t *x)
{
    sy_h1_t *h = x->h1_origin->h1;
    if (x->h1_held_len > 0) {
        size_t n = x->h1_held_len;
        size_t r = x->cbs->on_data(x->ctx, x, x->h1_held, n);
        if (r == SY_UPSTREAM_PAUSE) {
            x->paused = true;
            return;
        }
        free(x->h1_held);
        x->h1_held = NULL;
        x->h1_held_len = x->h1_held_cap = 0;
        if (r != n) {
            if (x->h1_conn != NULL)
                conn_close(x->h1_conn);
            finish_later(h, x, SY_ECANCELED, "transfer stopped by the gateway");
            return;
        }
    }
    if (x->h1_complete)
        finish_later(h, x, 0, NULL);
    else if (x->h1_conn != NULL)
        uv_read_start((uv_stream_t *)&x->h1_conn->tcp, alloc_read, on_read);
}

bool sy_h1_connecting(const sy_upstream_xfer_t *x)
{
    return x->h1_queue == 1 || (x->h1_conn != NULL && x->h1_conn->state == CONN_CONNECTING);
}

void sy_h1_sweep(sy_h1_t *h, uint64_t now)
{
    for (size_t i = 0; i < h->n_origins; i++) {
        sy_h1_origin_t *o = h->origins[i];
        while (o->idle_tail != NULL && now - o->idle_tail->idle_since > IDLE_KEEP_MS)
            conn_close(o->idle_tail);
    }
}
