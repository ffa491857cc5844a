/* Unit tests for the built-in HTTP/1.1 upstream engine (dataplane/upstream_h1.c), driven
 * through the public interface (dataplane/upstream.h, builtin_http = true) on a real libuv
 * loop against a scripted upstream server living on the same loop: a TCP listener on
 * 127.0.0.1:0 that reads each request (head and Content-Length body) and answers with the
 * test's bytes, cut into several writes with small timer gaps, then keeps the connection,
 * closes it, or stays silent. Every test runs under a 5 s guard timer and ends with the pool
 * and the server closed and uv_loop_close() returning 0 (no handle left). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "dataplane/upstream.h"

#define GUARD_MS 5000 /* a test's whole budget */
#define SWEEP_MS 50   /* as the worker's sweep timer, but faster */
#define MAX_CUTS 128  /* writes per scripted answer */
#define MAX_REPLIES 8 /* scripted answers, by request number (the last repeats) */
#define MAX_REQS 128  /* requests the server keeps */
#define MAX_CLIENTS 4 /* transfers per test */

/* --- the scripted upstream ------------------------------------------------------------- */

typedef struct reply {
    const char *data;      /* borrowed; the answer's bytes */
    size_t len;            /* their length */
    size_t cuts[MAX_CUTS]; /* offsets where a new write starts (ascending, inside data) */
    int ncuts;             /* entries in cuts */
    uint32_t gap_ms;       /* pause between two writes */
    bool close_after;      /* close the connection once everything is written */
    bool close_now;        /* close the connection instead of answering */
    bool silent;           /* never answer, keep the connection */
} reply_t;

typedef struct server {
    uv_loop_t *loop;              /* borrowed */
    uv_tcp_t listener;            /* embedded */
    int port;                     /* the listener's port */
    int accepts;                  /* connections accepted */
    int peer_closed;              /* connections the client closed (EOF or reset seen) */
    int n_requests;               /* requests received, all connections */
    sy_buf_t reqs[MAX_REQS];      /* owned; each request's head and body as received */
    reply_t replies[MAX_REPLIES]; /* answer to request i: replies[min(i, n_replies - 1)] */
    int n_replies;                /* entries in replies */
    struct sconn *conns;          /* borrowed; open connections */
    int open;                     /* handles not yet closed */
} server_t;

typedef struct sconn {
    uv_tcp_t tcp;       /* embedded */
    uv_timer_t timer;   /* the gap between two writes */
    server_t *s;        /* borrowed */
    sy_buf_t in;        /* bytes of the request being read */
    const reply_t *r;   /* borrowed; the answer being written */
    int seg;            /* next write of r */
    int pending;        /* writes not yet called back */
    int handles;        /* of tcp and timer, not yet closed */
    bool closing;       /* uv_close called */
    struct sconn *next; /* borrowed; server's list */
    struct sconn *prev; /* borrowed */
} sconn_t;

static void sconn_closed(uv_handle_t *h)
{
    sconn_t *sc = h->data;
    sc->s->open--;
    if (--sc->handles == 0) {
        sy_buf_free(&sc->in);
        free(sc);
    }
}

static void sconn_close(sconn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        sc->s->conns = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    uv_close((uv_handle_t *)&sc->tcp, sconn_closed);
    uv_close((uv_handle_t *)&sc->timer, sconn_closed);
}

static size_t seg_start(const reply_t *r, int i)
{
    return i == 0 ? 0 : r->cuts[i - 1];
}

static size_t seg_end(const reply_t *r, int i)
{
    return i < r->ncuts ? r->cuts[i] : r->len;
}

static void on_swritten(uv_write_t *w, int status)
{
    sconn_t *sc = w->data;
    (void)status;
    free(w);
    sc->pending--;
    if (!sc->closing && sc->r != NULL && sc->r->close_after && sc->seg > sc->r->ncuts &&
        sc->pending == 0)
        sconn_close(sc);
}

static void write_seg(sconn_t *sc)
{
    const reply_t *r = sc->r;
    size_t a = seg_start(r, sc->seg), b = seg_end(r, sc->seg);
    sc->seg++;
    if (b > a) {
        uv_write_t *w = malloc(sizeof(*w));
        w->data = sc;
        uv_buf_t buf = uv_buf_init((char *)(uintptr_t)(r->data + a), (unsigned)(b - a));
        sc->pending++;
        if (uv_write(w, (uv_stream_t *)&sc->tcp, &buf, 1, on_swritten) != 0) {
            free(w);
            sc->pending--;
        }
    }
}

static void on_gap(uv_timer_t *t)
{
    sconn_t *sc = t->data;
    write_seg(sc);
    if (sc->seg <= sc->r->ncuts)
        uv_timer_start(&sc->timer, on_gap, sc->r->gap_ms, 0);
    else if (sc->r->close_after && sc->pending == 0)
        sconn_close(sc);
}

static void answer(sconn_t *sc, const reply_t *r)
{
    sc->r = r;
    sc->seg = 0;
    if (r->close_now) {
        sconn_close(sc);
        return;
    }
    if (r->silent)
        return;
    on_gap(&sc->timer);
}

/* Takes every complete request out of sc->in and answers it. */
static void serve(sconn_t *sc)
{
    server_t *s = sc->s;
    while (!sc->closing) {
        char *end = sc->in.len > 0 ? memmem(sc->in.data, sc->in.len, "\r\n\r\n", 4) : NULL;
        if (end == NULL)
            return;
        size_t head = (size_t)(end - sc->in.data) + 4, clen = 0;
        for (char *p = sc->in.data; p < end; p++)
            if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
                clen = strtoul(p + 17, NULL, 10);
        if (sc->in.len < head + clen)
            return;
        int i = s->n_requests++;
        if (i < MAX_REQS)
            sy_buf_append(&s->reqs[i], sc->in.data, head + clen);
        sy_buf_consume(&sc->in, head + clen);
        answer(sc, &s->replies[i < s->n_replies ? i : s->n_replies - 1]);
    }
}

static void salloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void on_sread(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *sc = st->data;
    if (nread < 0) {
        if (!sc->closing) {
            sc->s->peer_closed++;
            sconn_close(sc);
        }
    } else if (nread > 0 && !sc->closing) {
        sy_buf_append(&sc->in, buf->base, (size_t)nread);
        serve(sc);
    }
    free(buf->base);
}

static void on_sconn(uv_stream_t *l, int status)
{
    server_t *s = l->data;
    if (status != 0)
        return;
    sconn_t *sc = calloc(1, sizeof(*sc));
    sc->s = s;
    sy_buf_init(&sc->in);
    uv_tcp_init(s->loop, &sc->tcp);
    uv_timer_init(s->loop, &sc->timer);
    sc->tcp.data = sc->timer.data = sc;
    sc->handles = 2;
    s->open += 2;
    sc->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = sc;
    s->conns = sc;
    if (uv_accept(l, (uv_stream_t *)&sc->tcp) != 0) {
        sconn_close(sc);
        return;
    }
    s->accepts++;
    uv_tcp_nodelay(&sc->tcp, 1);
    uv_read_start((uv_stream_t *)&sc->tcp, salloc, on_sread);
}

static void server_handle_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->open--;
}

static void server_start(server_t *s, uv_loop_t *loop)
{
    s->loop = loop;
    for (int i = 0; i < MAX_REQS; i++)
        sy_buf_init(&s->reqs[i]);
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    s->open = 1;
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, on_sconn), 0);
    int len = sizeof(sin);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
}

static void server_close(server_t *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    while (s->conns != NULL)
        sconn_close(s->conns);
}

/* --- the client side --------------------------------------------------------------------- */

typedef struct fixture fixture_t;

typedef struct client {
    sy_upstream_xfer_t x;          /* the transfer */
    fixture_t *f;                  /* borrowed */
    char url[256];                 /* the URL of its last start */
    sy_buf_t body;                 /* bytes on_data consumed, concatenated */
    sy_buf_t headers;              /* on_header lines, concatenated */
    int n_headers;                 /* on_header calls */
    int n_data;                    /* on_data calls */
    int n_done;                    /* on_done calls */
    int result;                    /* on_done's result */
    const char *why;               /* on_done's message */
    long status_at_data;           /* x.status seen by the first on_data */
    char ct_at_data[64];           /* x.content_type seen by the first on_data */
    int pauses;                    /* on_data returns SY_UPSTREAM_PAUSE this many times first */
    int abort_at;                  /* on_data call (1-based) that returns 0; 0 = never */
    bool in_resume;                /* the test is inside sy_upstream_resume */
    bool done_in_resume;           /* on_done ran inside sy_upstream_resume */
    bool data_after_done;          /* on_data ran after on_done */
    void (*then)(struct client *); /* run from on_done (once), e.g. to start another transfer */
} client_t;

struct fixture {
    uv_loop_t loop;          /* the test's loop */
    server_t srv;            /* the scripted upstream */
    sy_upstream_t *pool;     /* owned; NULL once closed */
    uv_timer_t guard;        /* fails the test after GUARD_MS */
    uv_timer_t sweep;        /* sy_upstream_sweep every SWEEP_MS, as the worker */
    uv_timer_t tick;         /* run_for's timer */
    bool guard_fired;        /* the guard ran out */
    bool tick_fired;         /* run_for's timer ran */
    client_t c[MAX_CLIENTS]; /* the transfers */
    char *big;               /* owned; a large answer or body */
    int refused_fd;          /* a bound socket that does not listen, or -1 */
};

static size_t on_data(void *ctx, sy_upstream_xfer_t *x, const char *p, size_t n)
{
    client_t *c = ctx;
    assert_ptr_equal(x, &c->x);
    assert_true(n > 0);
    if (c->n_done > 0)
        c->data_after_done = true;
    if (c->n_data++ == 0) {
        c->status_at_data = x->status;
        snprintf(c->ct_at_data, sizeof(c->ct_at_data), "%s", x->content_type);
    }
    if (c->pauses > 0) {
        c->pauses--;
        return SY_UPSTREAM_PAUSE;
    }
    if (c->abort_at == c->n_data)
        return 0;
    sy_buf_append(&c->body, p, n);
    return n;
}

static void on_done(void *ctx, sy_upstream_xfer_t *x, int result, const char *why)
{
    client_t *c = ctx;
    assert_ptr_equal(x, &c->x);
    c->n_done++;
    c->result = result;
    c->why = why;
    if (c->in_resume)
        c->done_in_resume = true;
    void (*then)(client_t *) = c->then;
    c->then = NULL;
    if (then != NULL)
        then(c);
}

static void on_header(void *ctx, sy_upstream_xfer_t *x, const char *line, size_t n)
{
    client_t *c = ctx;
    assert_ptr_equal(x, &c->x);
    c->n_headers++;
    sy_buf_append(&c->headers, line, n);
}

static const sy_upstream_cbs_t cbs = {on_data, on_done, on_header};

/* Clears what a client recorded (not its transfer: a restart reuses it). */
static void client_reset(client_t *c)
{
    sy_buf_reset(&c->body);
    sy_buf_reset(&c->headers);
    c->n_headers = c->n_data = c->n_done = c->result = 0;
    c->why = NULL;
    c->status_at_data = 0;
    c->ct_at_data[0] = '\0';
    c->pauses = c->abort_at = 0;
    c->in_resume = c->done_in_resume = c->data_after_done = false;
    c->then = NULL;
}

/* A request for path on the scripted server under the name host; the URL lives in c. */
static sy_upstream_req_t new_req(client_t *c, const char *method, const char *host,
                                 const char *path)
{
    snprintf(c->url, sizeof(c->url), "http://%s:%d%s", host, c->f->srv.port, path);
    return (sy_upstream_req_t){.url = c->url, .method = method};
}

static int start(client_t *c, const sy_upstream_req_t *req)
{
    client_reset(c);
    return sy_upstream_start(c->f->pool, &c->x, req, &cbs, c);
}

/* Starts req on c; the start itself must succeed. */
static void start_ok(client_t *c, const sy_upstream_req_t *req)
{
    assert_int_equal(start(c, req), 0);
}

/* Starts a plain GET of path on the scripted server. */
static void start_get(client_t *c, const char *path)
{
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", path);
    start_ok(c, &req);
}

static void on_guard(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->guard_fired = true;
    uv_stop(&f->loop);
}

static void on_sweep(uv_timer_t *t)
{
    fixture_t *f = t->data;
    if (f->pool != NULL)
        sy_upstream_sweep(f->pool, uv_now(&f->loop));
}

static void on_tick(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->tick_fired = true;
}

/* Runs the loop until expr holds; the guard fails the test if it never does. */
#define RUN_UNTIL(f, expr)                                                                         \
    do {                                                                                           \
        while (!(expr) && !(f)->guard_fired)                                                       \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                       \
        assert_false((f)->guard_fired);                                                            \
    } while (0)

/* Runs the loop for ms milliseconds. */
static void run_for(fixture_t *f, uint64_t ms)
{
    f->tick_fired = false;
    uv_timer_start(&f->tick, on_tick, ms, 0);
    RUN_UNTIL(f, f->tick_fired);
}

static void assert_done(const client_t *c, int result, const char *why)
{
    assert_int_equal(c->n_done, 1);
    assert_int_equal(c->result, result);
    if (why == NULL) {
        assert_null(c->why);
    } else {
        assert_non_null(c->why);
        assert_string_equal(c->why, why);
    }
    assert_false(c->data_after_done);
}

static void assert_bytes(const sy_buf_t *b, const char *want)
{
    size_t n = strlen(want);
    if (b->len != n || (n > 0 && memcmp(b->data, want, n) != 0))
        fail_msg("got %zu bytes \"%.*s\", want %zu bytes \"%s\"", b->len, (int)b->len,
                 b->len ? b->data : "", n, want);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    server_start(&f->srv, &f->loop);
    assert_int_equal(sy_upstream_new(&f->loop, true, &f->pool), 0);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_init(&f->loop, &f->sweep);
    uv_timer_init(&f->loop, &f->tick);
    f->guard.data = f->sweep.data = f->tick.data = f;
    uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
    uv_timer_start(&f->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        f->c[i].f = f;
        sy_buf_init(&f->c[i].body);
        sy_buf_init(&f->c[i].headers);
    }
    f->refused_fd = -1;
    *state = f;
    return 0;
}

/* Closes the pool and the server and checks the loop ends with no handle
 * left: an engine handle still open makes uv_run wait for the guard, and one
 * never closed makes uv_loop_close fail. */
static int teardown(void **state)
{
    fixture_t *f = *state;
    sy_upstream_close(f->pool);
    f->pool = NULL;
    server_close(&f->srv);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_close((uv_handle_t *)&f->sweep, NULL);
    uv_unref((uv_handle_t *)&f->guard);
    if (!f->guard_fired) {
        uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
        uv_run(&f->loop, UV_RUN_DEFAULT);
    }
    bool stuck = f->guard_fired;
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        sy_upstream_xfer_free(&f->c[i].x);
        sy_buf_free(&f->c[i].body);
        sy_buf_free(&f->c[i].headers);
    }
    for (int i = 0; i < MAX_REQS; i++)
        sy_buf_free(&f->srv.reqs[i]);
    if (f->refused_fd >= 0)
        close(f->refused_fd);
    free(f->big);
    free(f);
    assert_false(stuck);
    assert_int_equal(rc, 0);
    return 0;
}

/* Scripts the answer to request i (and, being the last, to every later one). */
static reply_t *script(fixture_t *f, int i, const char *data)
{
    reply_t *r = &f->srv.replies[i];
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->len = strlen(data);
    r->gap_ms = 5;
    if (f->srv.n_replies < i + 1)
        f->srv.n_replies = i + 1;
    return r;
}

/* Cuts r's answer before each string in the NULL-terminated list (found in order). */
static void cut_before(reply_t *r, ...)
{
    va_list ap;
    va_start(ap, r);
    const char *from = r->data;
    for (const char *m; (m = va_arg(ap, const char *)) != NULL;) {
        const char *at = strstr(from, m);
        assert_non_null(at);
        assert_true(r->ncuts < MAX_CUTS);
        r->cuts[r->ncuts++] = (size_t)(at - r->data);
        from = at + 1;
    }
    va_end(ap);
}

static const char *req_text(const fixture_t *f, int i)
{
    assert_true(i < f->srv.n_requests);
    return f->srv.reqs[i].data;
}

/* --- test steps --------------------------------------------------------------------------- */

/* Runs the loop until c's transfer ends, then checks it ended once, with result and why. */
static void finish(fixture_t *f, client_t *c, int result, const char *why)
{
    RUN_UNTIL(f, c->n_done > 0);
    assert_done(c, result, why);
}

/* Starts req on c and checks it ends well. */
static void run_ok(fixture_t *f, client_t *c, const sy_upstream_req_t *req)
{
    start_ok(c, req);
    finish(f, c, 0, NULL);
}

/* Starts a GET of path on c and checks it ends with result and why. */
static void get_done(fixture_t *f, client_t *c, const char *path, int result, const char *why)
{
    start_get(c, path);
    finish(f, c, result, why);
}

/* Starts a GET of path on c and checks it ends well with the body want (NULL: any body). */
static void get_ok(fixture_t *f, client_t *c, const char *path, const char *want)
{
    get_done(f, c, path, 0, NULL);
    if (want != NULL)
        assert_bytes(&c->body, want);
}

/* As get_ok, then checks the server has accepted n_accepts connections in all: whether a
 * later request reused the connection of an earlier one. */
static void get_again(fixture_t *f, client_t *c, const char *path, const char *want, int n_accepts)
{
    get_ok(f, c, path, want);
    assert_int_equal(f->srv.accepts, n_accepts);
}

/* Starts a GET of path on c that pauses its first pauses on_data calls, and runs the loop
 * until the first of them. */
static void start_paused(fixture_t *f, client_t *c, const char *path, int pauses)
{
    start_get(c, path);
    c->pauses = pauses;
    RUN_UNTIL(f, c->n_data == 1);
}

/* Resumes c, noting in c what its callbacks do meanwhile. */
static void resume_inside(client_t *c)
{
    c->in_resume = true;
    sy_upstream_resume(&c->x);
    c->in_resume = false;
}

/* As finish, after resume_inside: on_done must not have run inside sy_upstream_resume. */
static void finish_after_resume(fixture_t *f, client_t *c, int result, const char *why)
{
    finish(f, c, result, why);
    assert_false(c->done_in_resume);
}

/* Checks c's transfer ended once, by one of its timeouts. */
static void assert_timed_out(const client_t *c)
{
    assert_done(c, -ETIMEDOUT, "upstream timed out");
    assert_true(c->x.timed_out);
}

/* Starts req on c, runs the loop until it ends and returns how long that took (ms). */
static uint64_t run_timed(fixture_t *f, client_t *c, const sy_upstream_req_t *req)
{
    uint64_t t0 = uv_now(&f->loop);
    start_ok(c, req);
    RUN_UNTIL(f, c->n_done > 0);
    return uv_now(&f->loop) - t0;
}

/* Closes the pool under the test's feet (teardown then has nothing to close). */
static void close_pool(fixture_t *f)
{
    sy_upstream_close(f->pool);
    f->pool = NULL;
}

static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%.40s\" does not start with \"%s\"", s, prefix);
}

/* Binds f->refused_fd to a loopback port (listening with no room in its accept queue if
 * listening), points c's URL at it and returns its address. */
static struct sockaddr_in bind_spare(fixture_t *f, client_t *c, bool listening)
{
    f->refused_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->refused_fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->refused_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (listening)
        assert_int_equal(listen(f->refused_fd, 0), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(f->refused_fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d/", ntohs(sin.sin_port));
    return sin;
}

/* --- answers --------------------------------------------------------------------------- */

static const char ok_json[] = "HTTP/1.1 200 OK\r\n"
                              "Content-Type: application/json\r\n"
                              "X-Request-Id: abc\r\n"
                              "Content-Length: 11\r\n"
                              "\r\n"
                              "{\"ok\":true}";
static const char ok_body[] = "{\"ok\":true}"; /* ok_json's body */

/* A 10-byte body, for script_split_at_def: "abc" first, the rest later. */
static const char abc_of_10[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdefghij";

/* Scripts request 0's answer data in two writes gap_ms apart, the second from "def" on. */
static reply_t *script_split_at_def(fixture_t *f, const char *data, uint32_t gap_ms)
{
    reply_t *r = script(f, 0, data);
    cut_before(r, "def", NULL);
    r->gap_ms = gap_ms;
    return r;
}

static void test_content_length_and_reuse(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    start_get(c, "/v1/a");
    assert_int_equal(sy_upstream_active(f->pool), 1);
    finish(f, c, 0, NULL);
    assert_int_equal(c->x.status, 200);
    assert_string_equal(c->x.content_type, "application/json");
    assert_string_equal(c->x.retry_after, "");
    assert_int_equal(c->status_at_data, 200);
    assert_string_equal(c->ct_at_data, "application/json");
    assert_bytes(&c->body, ok_body);
    assert_bytes(&c->headers, "X-Request-Id: abc\r\nContent-Length: 11\r\n");
    assert_int_equal(c->n_headers, 2);
    assert_true(c->x.first_byte_ms > 0);
    assert_int_equal(sy_upstream_active(f->pool), 0);

    /* The same request again goes on the kept-alive connection. */
    get_again(f, c, "/v1/a", ok_body, 1);
    assert_int_equal(f->srv.n_requests, 2);
    assert_int_equal(f->srv.peer_closed, 0);
}

static void test_chunked_with_extension_and_trailer(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    reply_t *r = script(f, 0,
                        "HTTP/1.1 200 OK\r\n"
                        "Content-Type: text/event-stream\r\n"
                        "Transfer-Encoding: chunked\r\n"
                        "\r\n"
                        "5;name=value\r\nhello\r\n"
                        "6\r\n world\r\n"
                        "0\r\n"
                        "X-Trailer: t\r\n"
                        "\r\n");
    cut_before(r, "5;", "llo", "6\r\n", "rld", "0\r\n", "X-Trailer", "\r\n\r\n", NULL);
    get_ok(f, c, "/stream", "hello world");
    assert_int_equal(c->x.status, 200);
    assert_string_equal(c->x.content_type, "text/event-stream");
    /* Trailer lines reach on_header too, as with libcurl. */
    assert_bytes(&c->headers, "Transfer-Encoding: chunked\r\nX-Trailer: t\r\n");
    /* A chunked answer leaves the connection reusable. */
    get_again(f, c, "/stream", "hello world", 1);
}

static void test_close_delimited(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script_split_at_def(f, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabcdef", 5)
        ->close_after = true;
    get_ok(f, c, "/", "abcdef");
    assert_int_equal(c->x.status, 200);
    assert_string_equal(c->x.content_type, "text/plain");
    /* The connection ended with the answer: the next request opens another. */
    get_again(f, c, "/", "abcdef", 2);
}

static void test_split_at_every_head_byte(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    const size_t head = strstr(ok_json, "\r\n\r\n") + 4 - ok_json;
    for (size_t k = 1; k <= head; k++) {
        reply_t *r = script(f, 0, ok_json);
        r->gap_ms = 1;
        r->cuts[r->ncuts++] = k;
        start_get(c, "/split");
        RUN_UNTIL(f, c->n_done > 0);
        if (c->result != 0 || c->x.status != 200 || c->body.len != 11)
            fail_msg("split at %zu: result %d status %ld body %zu bytes", k, c->result, c->x.status,
                     c->body.len);
        assert_done(c, 0, NULL);
        assert_string_equal(c->x.content_type, "application/json");
        assert_bytes(&c->body, ok_body);
        assert_bytes(&c->headers, "X-Request-Id: abc\r\nContent-Length: 11\r\n");
    }
    /* And the whole answer one byte per write, head and body. */
    reply_t *r =
        script(f, 0, "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\nxyz");
    r->gap_ms = 0;
    for (size_t k = 1; k < r->len; k++)
        r->cuts[r->ncuts++] = k;
    get_again(f, c, "/split", "xyz", 1);
    assert_string_equal(c->x.content_type, "a/b");
}

static void test_informational_answers(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    reply_t *r = script(f, 0,
                        "HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 103 Early Hints\r\n"
                        "Link: </a.css>; rel=preload\r\n"
                        "Content-Type: text/html\r\n"
                        "\r\n"
                        "HTTP/1.1 201 Created\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 2\r\n"
                        "\r\n"
                        "{}");
    cut_before(r, "HTTP/1.1 103", "HTTP/1.1 201", NULL);
    get_ok(f, c, "/", "{}");
    assert_int_equal(c->x.status, 201);
    assert_int_equal(c->status_at_data, 201);
    assert_string_equal(c->x.content_type, "application/json");
    assert_bytes(&c->headers, "Link: </a.css>; rel=preload\r\nContent-Length: 2\r\n");

    /* A content type seen only in the 103 is not the answer's. */
    script(f, 1,
           "HTTP/1.1 103 Early Hints\r\nContent-Type: text/html\r\n\r\n"
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    get_again(f, c, "/", "z", 1);
    assert_int_equal(c->x.status, 200);
    assert_string_equal(c->x.content_type, "");
}

static void test_header_lines(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0,
           "HTTP/1.1 429 Too Many Requests\r\n"
           "content-type: text/plain; charset=utf-8\r\n"
           "X-RateLimit-Remaining-Requests: 0\r\n"
           "Retry-After: 30\r\n"
           "X-Trailing: v  \r\n"
           "Content-Length: 4\r\n"
           "\r\n"
           "slow");
    get_ok(f, c, "/", "slow");
    assert_int_equal(c->x.status, 429);
    assert_string_equal(c->x.content_type, "text/plain; charset=utf-8");
    assert_string_equal(c->x.retry_after, "30");
    assert_bytes(&c->headers,
                 "X-RateLimit-Remaining-Requests: 0\r\nX-Trailing: v\r\nContent-Length: 4\r\n");
    assert_int_equal(c->n_headers, 3);

    /* A long Content-Type is truncated to the field; absent ones are "". */
    script(
        f, 1,
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json; profile=\"0123456789012345678901234567890123456789\"\r\n"
        "Content-Length: 0\r\n\r\n");
    get_done(f, c, "/", 0, NULL);
    assert_string_equal(c->x.content_type,
                        "application/json; profile=\"012345678901234567890123456789012345");
    assert_string_equal(c->x.retry_after, "");
    assert_int_equal(c->n_data, 0);
}

/* An answer with n_pad header lines of 1000 value bytes each. */
static char *padded_head(int n_pad)
{
    sy_buf_t b;
    sy_buf_init(&b);
    sy_buf_append_str(&b, "HTTP/1.1 200 OK\r\n");
    char v[1001];
    memset(v, 'a', 1000);
    v[1000] = '\0';
    for (int i = 0; i < n_pad; i++)
        sy_buf_appendf(&b, "X-Pad-%03d: %s\r\n", i, v);
    sy_buf_append_str(&b, "Content-Length: 2\r\n\r\nok");
    return sy_buf_steal(&b, NULL);
}

static void test_head_too_large(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    /* Just under the cap (names and values count): fine. */
    f->big = padded_head(62);
    script(f, 0, f->big);
    get_ok(f, c, "/", "ok");
    assert_int_equal(c->n_headers, 63);
    /* Over it: an error, the connection dropped. */
    char *big = padded_head(70);
    free(f->big);
    f->big = big;
    script(f, 0, f->big);
    get_done(f, c, "/", SY_EIO, "upstream response head too large");
    assert_int_equal(c->n_data, 0);
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

static void test_garbage(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "SSH-2.0-OpenSSH_9.2p1\r\n\r\n"); /* the connection stays open */
    get_done(f, c, "/", SY_EIO, "malformed upstream response");
    assert_int_equal(c->n_data, 0);
    assert_int_equal(c->x.status, 0);
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

static void test_short_body_then_close(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    reply_t *r = script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    r->close_after = true;
    get_done(f, c, "/", SY_EIO, "upstream closed the connection mid-answer");
    assert_bytes(&c->body, "abc");
    assert_int_equal(c->x.status, 200);
}

static void test_closed_before_answer_fresh(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "")->close_now = true;
    /* A fresh connection is not retried. */
    get_done(f, c, "/", SY_EIO, "upstream closed the connection");
    assert_int_equal(f->srv.accepts, 1);
    assert_int_equal(f->srv.n_requests, 1);
}

static void start_again(client_t *c)
{
    start_get(c, "/second");
}

/* The upstream answers and closes at once; the next request, started from
 * on_done, finds the kept connection closed and goes again on a fresh one. */
static void test_stale_closed_after_answer(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json)->close_after = true;
    script(f, 1, ok_json);
    start_get(c, "/first");
    c->then = start_again;
    finish(f, c, 0, NULL); /* the first on_done restarted c: this is the second */
    assert_non_null(strstr(c->url, "/second"));
    assert_bytes(&c->body, ok_body);
    assert_int_equal(f->srv.accepts, 2);
    assert_int_equal(sy_upstream_active(f->pool), 0);
}

/* The upstream closes a kept connection when the next request arrives on it,
 * without answering (its keep-alive timer racing the request): sent again once. */
static void test_stale_closed_on_next_request(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    script(f, 1, "")->close_now = true;
    script(f, 2, ok_json);
    get_done(f, c, "/first", 0, NULL);
    run_for(f, 10);
    get_again(f, c, "/second", ok_body, 2);
    assert_int_equal(f->srv.n_requests, 3);
    assert_non_null(strstr(req_text(f, 2), "GET /second HTTP/1.1\r\n"));

    /* Only once: a fresh connection closing too is an error. */
    script(f, 3, "")->close_now = true;
    get_done(f, c, "/third", SY_EIO, "upstream closed the connection");
    assert_int_equal(f->srv.accepts, 3);
    assert_int_equal(f->srv.n_requests, 5);
}

/* --- pause and resume ------------------------------------------------------------------- */

static void test_pause_resume_partial(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    reply_t *r = script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world!");
    cut_before(r, " world", "!", NULL);
    r->gap_ms = 10;
    start_paused(f, c, "/", 1);
    assert_true(c->x.paused);
    run_for(f, 60); /* everything has been written meanwhile */
    assert_int_equal(c->n_data, 1);
    assert_int_equal(c->body.len, 0);
    assert_int_equal(c->n_done, 0);
    resume_inside(c);
    assert_int_equal(c->n_data, 2); /* the held bytes, again */
    assert_bytes(&c->body, "hello");
    finish_after_resume(f, c, 0, NULL);
    assert_bytes(&c->body, "hello world!");
    /* The connection is reusable after a paused transfer. */
    get_again(f, c, "/", "hello world!", 1);
}

static void test_pause_whole_answer_while_paused(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    /* One write: two chunks and the end arrive together, the first pauses. */
    script(f, 0,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n");
    start_paused(f, c, "/", 1);
    run_for(f, 30);
    assert_int_equal(c->n_data, 1);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(sy_upstream_active(f->pool), 1);
    resume_inside(c);
    assert_bytes(&c->body, "hello world!");
    assert_int_equal(c->n_done, 0); /* never synchronously inside sy_upstream_resume */
    finish_after_resume(f, c, 0, NULL);
    assert_int_equal(sy_upstream_active(f->pool), 0);
    /* The connection went idle while paused and is reused. */
    get_again(f, c, "/", "hello world!", 1);
}

static void test_pause_twice_and_close_delimited(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script_split_at_def(f, "HTTP/1.1 200 OK\r\n\r\nabcdef", 5)->close_after = true;
    start_paused(f, c, "/", 2); /* pauses again inside the first resume */
    run_for(f, 30);
    sy_upstream_resume(&c->x);
    assert_int_equal(c->n_data, 2);
    assert_true(c->x.paused);
    assert_int_equal(c->body.len, 0);
    run_for(f, 10);
    assert_int_equal(c->n_data, 2);
    assert_int_equal(c->n_done, 0);
    resume_inside(c);
    assert_bytes(&c->body, "abc");
    finish_after_resume(f, c, 0, NULL);
    assert_bytes(&c->body, "abcdef");
}

static void test_abort_on_resume(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"); /* 7 bytes never come */
    start_paused(f, c, "/", 1);
    c->abort_at = 2; /* the first on_data paused before looking at it */
    resume_inside(c);
    assert_int_equal(c->n_done, 0);
    finish_after_resume(f, c, SY_ECANCELED, "transfer stopped by the gateway");
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

/* --- cancel and abort ------------------------------------------------------------------- */

static void test_cancel_mid_answer(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script_split_at_def(f, abc_of_10, 100);
    start_get(c, "/");
    RUN_UNTIL(f, c->n_data == 1);
    sy_upstream_cancel(&c->x);
    assert_int_equal(sy_upstream_active(f->pool), 0);
    RUN_UNTIL(f, f->srv.peer_closed == 1);
    run_for(f, 120); /* past the server's second write */
    assert_int_equal(c->n_done, 0);
    assert_int_equal(c->n_data, 1);
    assert_bytes(&c->body, "abc");
    sy_upstream_cancel(&c->x); /* inactive: a no-op */
    /* The pool goes on. */
    script(f, 1, ok_json);
    get_again(f, c, "/", NULL, 2);
}

static void test_cancel_while_paused(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    start_paused(f, c, "/", 1);
    sy_upstream_cancel(&c->x);
    RUN_UNTIL(f, f->srv.peer_closed == 1);
    sy_upstream_resume(&c->x); /* inactive: a no-op */
    run_for(f, 10);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(c->n_data, 1);
}

static void test_cancel_while_connecting(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    start_get(c, "/");
    sy_upstream_cancel(&c->x);
    assert_int_equal(sy_upstream_active(f->pool), 0);
    run_for(f, 30);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(f->srv.n_requests, 0);

    /* Also while the name is being resolved. */
    sy_upstream_req_t req = new_req(c, "GET", "localhost", "/");
    start_ok(c, &req);
    sy_upstream_cancel(&c->x);
    run_for(f, 100);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(f->srv.n_requests, 0);
    /* The origin is usable after that. */
    req = new_req(c, "GET", "localhost", "/");
    run_ok(f, c, &req);
    assert_int_equal(f->srv.n_requests, 1);
}

static void test_abort_from_on_data(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script_split_at_def(f, abc_of_10, 5);
    start_get(c, "/");
    c->abort_at = 2;
    finish(f, c, SY_ECANCELED, "transfer stopped by the gateway");
    assert_int_equal(c->n_data, 2);
    assert_bytes(&c->body, "abc");
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

/* --- connecting ------------------------------------------------------------------------- */

static void test_connect_refused(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    /* A bound socket that does not listen: its port refuses connections. */
    bind_spare(f, c, false);
    sy_upstream_req_t req = {.url = c->url};
    start_ok(c, &req);
    finish(f, c, -ECONNREFUSED, "cannot connect to the upstream");
    assert_int_equal(c->x.status, 0);
    assert_int_equal(sy_upstream_active(f->pool), 0);
}

/* A listener whose accept queue is full drops new SYNs: the connect hangs until the
 * sweep ends it. */
static void test_connect_timeout(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    struct sockaddr_in sin = bind_spare(f, c, true);
    int fill[4];
    for (size_t i = 0; i < SY_ARRAY_LEN(fill); i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sin, sizeof(sin)); /* EINPROGRESS once full */
    }
    sy_upstream_req_t req = {.url = c->url, .connect_timeout_ms = 100};
    uint64_t took = run_timed(f, c, &req);
    for (size_t i = 0; i < SY_ARRAY_LEN(fill); i++)
        close(fill[i]);
    assert_timed_out(c);
    assert_true(took >= 100 && took < 1500); /* the sweep runs every 50 ms */
}

static void test_localhost_resolves(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    sy_upstream_req_t req = new_req(c, "GET", "localhost", "/v1/models");
    run_ok(f, c, &req);
    assert_bytes(&c->body, ok_body);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: localhost:%d\r\n", f->srv.port);
    assert_non_null(strstr(req_text(f, 0), host));
    /* The name stays resolved; the connection is reused. */
    run_ok(f, c, &req);
    assert_int_equal(f->srv.accepts, 1);
}

/* Runs the loop until a's and b's transfers end, checks both ended well and that the
 * server has accepted n_accepts connections in all. */
static void finish_both(fixture_t *f, client_t *a, client_t *b, int n_accepts)
{
    RUN_UNTIL(f, a->n_done > 0 && b->n_done > 0);
    assert_done(a, 0, NULL);
    assert_done(b, 0, NULL);
    assert_int_equal(f->srv.accepts, n_accepts);
}

static void test_two_at_once(void **state)
{
    fixture_t *f = *state;
    client_t *a = &f->c[0], *b = &f->c[1];
    script(f, 0, ok_json)->gap_ms = 20;
    start_get(a, "/a");
    start_get(b, "/b");
    assert_int_equal(sy_upstream_active(f->pool), 2);
    finish_both(f, a, b, 2);
    /* Both went idle; the next two reuse them. */
    start_get(a, "/a");
    start_get(b, "/b");
    finish_both(f, a, b, 2);
}

/* --- timeouts --------------------------------------------------------------------------- */

static void test_first_byte_timeout(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "")->silent = true;
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/");
    req.first_byte_timeout_ms = 100;
    uint64_t took = run_timed(f, c, &req);
    assert_timed_out(c);
    assert_true(took >= 100 && took < 1500); /* the sweep runs every 50 ms */
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

static void test_idle_timeout(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/");
    req.idle_timeout_ms = 100;
    run_timed(f, c, &req);
    assert_timed_out(c);
    assert_bytes(&c->body, "ab");
    RUN_UNTIL(f, f->srv.peer_closed == 1);
}

static void test_total_timeout(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    /* A byte every 30 ms for 1.2 s: never idle for 100 ms, but longer than 150 ms in all. */
    reply_t *r = script(f, 0,
                        "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
                        "abcdefghijklmnopqrstuvwxyz0123456789ABCD");
    for (size_t k = r->len - 39; k < r->len; k++)
        r->cuts[r->ncuts++] = k;
    r->gap_ms = 30;
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/");
    req.idle_timeout_ms = 100;
    req.total_timeout_ms = 150;
    run_timed(f, c, &req);
    assert_timed_out(c);
    assert_true(c->body.len >= 3 && c->body.len < 40);
}

/* --- the request on the wire ------------------------------------------------------------- */

/* Checks request i as the server received it: it starts with line (the request line), its
 * other head lines are exactly want, in any order, and its body is body (NULL: not checked). */
static void assert_request(const fixture_t *f, int i, const char *line, const char *const *want,
                           size_t n_want, const char *body)
{
    const char *req = req_text(f, i);
    assert_prefix(req, line);
    const char *end = strstr(req, "\r\n\r\n");
    assert_non_null(end);
    const char *p = strstr(req, "\r\n") + 2;
    size_t n = 0;
    while (p < end + 2) {
        const char *eol = strstr(p, "\r\n");
        bool found = false;
        for (size_t k = 0; k < n_want; k++)
            if (strlen(want[k]) == (size_t)(eol - p) && memcmp(want[k], p, (size_t)(eol - p)) == 0)
                found = true;
        if (!found)
            fail_msg("unexpected request line \"%.*s\"", (int)(eol - p), p);
        n++;
        p = eol + 2;
    }
    assert_int_equal(n, n_want);
    if (body != NULL)
        assert_string_equal(end + 4, body);
}

static void test_request_on_the_wire(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    static const char body[] = "{\"model\":\"m\",\"messages\":[]}";
    static const char *const extra[] = {"X-Extra: one", "OpenAI-Beta: assistants=v2", NULL};
    sy_upstream_req_t req = new_req(c, "POST", "127.0.0.1", "/path?q=1");
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.bearer = "sk-test-123";
    req.headers = extra;
    run_ok(f, c, &req);
    char host[64], clen[64];
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%d", f->srv.port);
    snprintf(clen, sizeof(clen), "Content-Length: %zu", sizeof(body) - 1);
    const char *want[] = {
        host,           "Authorization: Bearer sk-test-123", "Content-Type: application/json",
        "X-Extra: one", "OpenAI-Beta: assistants=v2",        clen};
    assert_request(f, 0, "POST /path?q=1 HTTP/1.1\r\n", want, SY_ARRAY_LEN(want), body);

    /* A stream GET: Accept, no body, no credential. */
    sy_upstream_req_t get = new_req(c, "GET", "127.0.0.1", "/v1/models");
    get.bearer = "";
    get.stream = true;
    run_ok(f, c, &get);
    const char *want_get[] = {host, "Accept: text/event-stream"};
    assert_request(f, 1, "GET /v1/models HTTP/1.1\r\n", want_get, SY_ARRAY_LEN(want_get), "");

    /* A POST without a body says so; a URL without a path asks for "/". */
    sy_upstream_req_t empty = new_req(c, "POST", "127.0.0.1", "");
    run_ok(f, c, &empty);
    const char *want_empty[] = {host, "Content-Length: 0"};
    assert_request(f, 2, "POST / HTTP/1.1\r\n", want_empty, SY_ARRAY_LEN(want_empty), NULL);
    assert_int_equal(f->srv.accepts, 1);
}

static void test_large_body(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    const size_t n = 8u << 20; /* more than a socket takes at once: the rest is queued */
    f->big = malloc(n);
    for (size_t i = 0; i < n; i++)
        f->big[i] = (char)('a' + i % 26);
    sy_upstream_req_t req = new_req(c, "POST", "127.0.0.1", "/big");
    req.body = f->big;
    req.body_len = n;
    run_ok(f, c, &req);
    const sy_buf_t *got = &f->srv.reqs[0];
    const char *end = memmem(got->data, got->len, "\r\n\r\n", 4);
    assert_non_null(end);
    size_t head = (size_t)(end + 4 - got->data);
    assert_int_equal(got->len - head, n);
    assert_memory_equal(got->data + head, f->big, n);
    /* The connection is reusable once the whole body went. */
    get_again(f, c, "/", NULL, 1);
}

static void test_header_injection_refused(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    static const char *const crlf[] = {"X-Ok: 1", "X-Bad: a\r\nInjected: b", NULL};
    static const char *const lf[] = {"X-Bad: a\nInjected: b", NULL};
    static const char *const cr[] = {"X-Bad: a\rb", NULL};
    const char *const *bad[] = {crlf, lf, cr};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/");
        req.headers = bad[i];
        assert_int_not_equal(start(c, &req), 0);
        assert_false(c->x.active);
    }
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/");
    req.bearer = "sk\r\nX-Injected: 1";
    assert_int_not_equal(start(c, &req), 0);
    assert_int_equal(sy_upstream_active(f->pool), 0);
    run_for(f, 30);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(f->srv.accepts, 0);
    /* The same transfer struct starts fine afterwards. */
    script(f, 0, ok_json);
    get_ok(f, c, "/", NULL);
    assert_null(strstr(req_text(f, 0), "Injected"));
}

/* --- closing the pool ---------------------------------------------------------------------- */

static void test_close_with_idle_connection(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    get_ok(f, c, "/", NULL);
    close_pool(f);
    RUN_UNTIL(f, f->srv.peer_closed == 1); /* the idle connection is closed */
    /* teardown: the loop ends with no handle left */
}

static void test_close_with_active_transfer(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script_split_at_def(f, abc_of_10, 1000);
    start_get(c, "/");
    RUN_UNTIL(f, c->n_data == 1);
    close_pool(f);
    assert_false(c->x.active);
    RUN_UNTIL(f, f->srv.peer_closed == 1);
    assert_int_equal(c->n_done, 0);
}

static void test_close_with_held_and_queued(void **state)
{
    fixture_t *f = *state;
    client_t *a = &f->c[0], *b = &f->c[1], *d = &f->c[2];
    script(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    start_get(a, "/");
    start_get(b, "/");
    a->pauses = b->pauses = 1;
    RUN_UNTIL(f, a->n_data == 1 && b->n_data == 1);
    run_for(f, 10);
    /* a: complete, resumed: its finish is queued; b: paused, holding bytes;
     * d: waiting for a name. */
    sy_upstream_resume(&a->x);
    assert_bytes(&a->body, "abc");
    sy_upstream_req_t req = new_req(d, "GET", "localhost", "/");
    start_ok(d, &req);
    assert_int_equal(sy_upstream_active(f->pool), 3);
    close_pool(f);
    run_for(f, 30);
    assert_int_equal(a->n_done + b->n_done + d->n_done, 0);
}

/* A URL with a query and no path asks for "/?q=1" (RFC 9112 3.2.1: the
 * origin form starts with '/'). */
static void test_query_without_path(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "?q=1");
    start_ok(c, &req);
    RUN_UNTIL(f, c->n_done > 0 || f->srv.n_requests > 0);
    run_for(f, 50);
    assert_true(f->srv.n_requests > 0);
    assert_prefix(req_text(f, 0), "GET /?q=1 HTTP/1.1\r\n");
}

/* A GET with a body sends no body (as libcurl's CURLOPT_HTTPGET): the kept
 * connection's next request is read as such. */
static void test_get_with_body(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    script(f, 0, ok_json);
    sy_upstream_req_t req = new_req(c, "GET", "127.0.0.1", "/x");
    req.body = "{}";
    req.body_len = 2;
    start_ok(c, &req);
    RUN_UNTIL(f, c->n_done > 0);
    run_for(f, 30);
    get_again(f, c, "/next", NULL, 1); /* the kept connection carried both */
    assert_null(strstr(req_text(f, 0), "Content-Type"));
    assert_prefix(req_text(f, 1), "GET /next");
}

/* Bytes after the answer in the same read: the connection is not reused. */
static void test_extra_bytes_after_answer(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    static char two[512];
    snprintf(two, sizeof(two), "%s%s", ok_json, ok_json);
    script(f, 0, two);
    script(f, 1, ok_json);
    get_ok(f, c, "/", NULL);
    get_again(f, c, "/", NULL, 2);
}

/* The 64 KiB cap counts the whole head: the status line and the line
 * overheads too, not only header names and values. */
static void test_head_cap_counts_the_whole_head(void **state)
{
    fixture_t *f = *state;
    client_t *c = &f->c[0];
    sy_buf_t b;
    sy_buf_init(&b);
    sy_buf_append_str(&b, "HTTP/1.1 200 ");
    for (int i = 0; i < 200000; i++)
        sy_buf_append(&b, "a", 1);
    sy_buf_append_str(&b, "\r\n");
    for (int i = 0; i < 30000; i++)
        sy_buf_append_str(&b, "a:\r\n");
    sy_buf_append_str(&b, "Content-Length: 2\r\n\r\nok");
    f->big = sy_buf_steal(&b, NULL);
    script(f, 0, f->big);
    get_done(f, c, "/", SY_EIO, "upstream response head too large");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_content_length_and_reuse),
        T(test_chunked_with_extension_and_trailer),
        T(test_close_delimited),
        T(test_split_at_every_head_byte),
        T(test_informational_answers),
        T(test_header_lines),
        T(test_head_too_large),
        T(test_head_cap_counts_the_whole_head),
        T(test_query_without_path),
        T(test_get_with_body),
        T(test_extra_bytes_after_answer),
        T(test_garbage),
        T(test_short_body_then_close),
        T(test_closed_before_answer_fresh),
        T(test_stale_closed_after_answer),
        T(test_stale_closed_on_next_request),
        T(test_pause_resume_partial),
        T(test_pause_whole_answer_while_paused),
        T(test_pause_twice_and_close_delimited),
        T(test_abort_on_resume),
        T(test_cancel_mid_answer),
        T(test_cancel_while_paused),
        T(test_cancel_while_connecting),
        T(test_abort_from_on_data),
        T(test_connect_refused),
        T(test_connect_timeout),
        T(test_localhost_resolves),
        T(test_two_at_once),
        T(test_first_byte_timeout),
        T(test_idle_timeout),
        T(test_total_timeout),
        T(test_request_on_the_wire),
        T(test_large_body),
        T(test_header_injection_refused),
        T(test_close_with_idle_connection),
        T(test_close_with_active_transfer),
        T(test_close_with_held_and_queued),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
