/* libFuzzer target for the built-in HTTP/1.1 upstream engine (dataplane/upstream_h1.c),
 * through the public interface (upstream.h, builtin_http = true): one transfer (sometimes
 * two, the second on the kept connection) against an in-process upstream on 127.0.0.1 that
 * answers every request with the input's bytes, on a loop created for the input.
 *
 * Input: byte 0 = flags (see below), byte 1 = seed of the write sizes and of the on_data
 * behaviour, the rest = the upstream's answer. Each input is bounded by short first-byte /
 * idle / total timeouts swept every millisecond, as the worker sweeps; a guard timer that
 * fires means a hang (abort). Checked: every started transfer ends in exactly one on_done
 * (or was cancelled), no on_data after it, a message iff an error, a final status on success,
 * and the loop closes with no handle left (uv_loop_close == 0); ASan finds the rest. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dataplane/upstream.h"

#define F_CLOSE_AFTER 0x01 /* the upstream closes the connection once the answer is written */
#define F_PAUSE_FIRST 0x02 /* on_data pauses on its first call */
#define F_PAUSE_ODD 0x04   /* on_data pauses every other call */
#define F_SLOW_RESUME 0x08 /* resume only after two more loop turns */
#define F_ABORT 0x10       /* on_data returns 0 on call (seed % 4) + 1 */
#define F_CANCEL 0x20      /* the owner cancels after (seed % 3) + 1 on_data calls */
#define F_AGAIN 0x40       /* a second request after a successful first */
#define F_ONE_WRITE 0x80   /* the answer in one write (else cut by the seed) */

#define MAX_WRITES 16
#define GUARD_MS 2000

typedef struct fz fz_t;

typedef struct sconn {
    uv_tcp_t tcp;       /* embedded */
    uv_timer_t timer;   /* the (zero) gap between two writes */
    fz_t *z;            /* borrowed */
    char in[8192];      /* the request being read */
    size_t in_len;      /* bytes in in */
    size_t off;         /* answer bytes written */
    int writes;         /* writes made for the current answer */
    int pending;        /* writes not yet called back */
    int handles;        /* not yet closed */
    bool closing;       /* uv_close called */
    struct sconn *next; /* borrowed; fz's list */
} sconn_t;

struct fz {
    uv_loop_t loop;       /* the input's loop */
    uv_tcp_t listener;    /* embedded */
    uv_timer_t sweep;     /* sy_upstream_sweep every ms */
    uv_timer_t guard;     /* a hang */
    sy_upstream_t *pool;  /* owned; NULL once closed */
    sconn_t *conns;       /* borrowed; all accepted, closed or not */
    const char *answer;   /* borrowed; the input's answer bytes */
    size_t answer_len;    /* their length */
    uint8_t flags;        /* F_* */
    uint8_t seed;         /* write sizes, on_data behaviour */
    char url[64];         /* the request URL */
    sy_upstream_xfer_t x; /* the transfer */
    int started;          /* transfers started */
    int n_done;           /* on_done calls */
    int cancelled;        /* transfers cancelled by the owner */
    int n_data;           /* on_data calls, this transfer */
    int result;           /* the last on_done's result */
    bool data_after_done; /* an on_data came after on_done */
    bool guard_fired;     /* the guard ran out */
    int paused_turns;     /* loop turns spent paused */
};

/* --- the upstream ------------------------------------------------------------------------ */

static void sconn_closed(uv_handle_t *h)
{
    sconn_t *sc = h->data;
    sc->handles--;
}

static void sconn_close(sconn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    uv_close((uv_handle_t *)&sc->tcp, sconn_closed);
    uv_close((uv_handle_t *)&sc->timer, sconn_closed);
}

static void on_swritten(uv_write_t *w, int status)
{
    sconn_t *sc = w->data;
    (void)status;
    free(w);
    sc->pending--;
    if (!sc->closing && sc->pending == 0 && sc->off == sc->z->answer_len &&
        (sc->z->flags & F_CLOSE_AFTER))
        sconn_close(sc);
}

/* The size of the next write: from the seed, so that the same input cuts the same way. */
static size_t next_size(sconn_t *sc)
{
    fz_t *z = sc->z;
    size_t left = z->answer_len - sc->off;
    if ((z->flags & F_ONE_WRITE) || sc->writes == MAX_WRITES - 1)
        return left;
    size_t n = 1 + ((size_t)z->seed * 131 + (size_t)sc->writes * 29) % 97;
    return n < left ? n : left;
}

static void on_gap(uv_timer_t *t)
{
    sconn_t *sc = t->data;
    fz_t *z = sc->z;
    if (sc->closing)
        return;
    size_t n = next_size(sc);
    if (n > 0) {
        uv_write_t *w = malloc(sizeof(*w));
        w->data = sc;
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)(z->answer + sc->off), (unsigned)n);
        sc->pending++;
        if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, on_swritten) != 0) {
            free(w);
            sc->pending--;
            sconn_close(sc);
            return;
        }
        sc->off += n;
        sc->writes++;
    }
    if (sc->off < z->answer_len)
        uv_timer_start(&sc->timer, on_gap, 0, 0);
    else if (sc->pending == 0 && (z->flags & F_CLOSE_AFTER))
        sconn_close(sc);
}

static void salloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sconn_t *sc = h->data;
    (void)suggested;
    buf->base = sc->in + sc->in_len;
    buf->len = sizeof(sc->in) - sc->in_len;
}

static void on_sread(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *sc = st->data;
    (void)buf;
    if (nread < 0) {
        sconn_close(sc);
        return;
    }
    sc->in_len += (size_t)nread;
    char *end = memmem(sc->in, sc->in_len, "\r\n\r\n", 4);
    if (end != NULL) { /* a GET: the head is the request */
        size_t used = (size_t)(end + 4 - sc->in);
        memmove(sc->in, sc->in + used, sc->in_len - used);
        sc->in_len -= used;
        sc->off = 0;
        sc->writes = 0;
        on_gap(&sc->timer);
    } else if (sc->in_len == sizeof(sc->in)) {
        sconn_close(sc);
    }
}

static void on_sconn(uv_stream_t *l, int status)
{
    fz_t *z = l->data;
    if (status != 0)
        return;
    sconn_t *sc = calloc(1, sizeof(*sc));
    sc->z = z;
    uv_tcp_init(&z->loop, &sc->tcp);
    uv_timer_init(&z->loop, &sc->timer);
    sc->tcp.data = sc->timer.data = sc;
    sc->handles = 2;
    sc->next = z->conns;
    z->conns = sc;
    if (uv_accept(l, (uv_stream_t *)&sc->tcp) != 0) {
        sconn_close(sc);
        return;
    }
    uv_tcp_nodelay(&sc->tcp, 1);
    uv_read_start((uv_stream_t *)&sc->tcp, salloc, on_sread);
}

/* --- the owner --------------------------------------------------------------------------- */

static void start(fz_t *z);

static size_t on_data(void *ctx, sy_upstream_xfer_t *x, const char *p, size_t n)
{
    fz_t *z = ctx;
    if (x != &z->x || n == 0 || p == NULL)
        abort();
    if (z->n_done >= z->started)
        z->data_after_done = true;
    z->n_data++;
    if ((z->flags & F_PAUSE_FIRST) && z->n_data == 1)
        return SY_UPSTREAM_PAUSE;
    if ((z->flags & F_PAUSE_ODD) && (z->n_data & 1))
        return SY_UPSTREAM_PAUSE;
    if ((z->flags & F_ABORT) && z->n_data == (z->seed & 3) + 1)
        return 0;
    /* Every byte is read, so ASan sees a view past its buffer. */
    volatile char sink = 0;
    for (size_t i = 0; i < n; i++)
        sink ^= p[i];
    (void)sink;
    return n;
}

static void on_done(void *ctx, sy_upstream_xfer_t *x, int result, const char *why)
{
    fz_t *z = ctx;
    if (x != &z->x || x->active)
        abort();
    z->n_done++;
    z->result = result;
    if ((result == 0) != (why == NULL))
        abort(); /* a message iff an error */
    if (result == 0 && (x->status < 200 || x->status > 999))
        abort(); /* success means a final answer */
    if (strnlen(x->content_type, sizeof(x->content_type)) == sizeof(x->content_type) ||
        strnlen(x->retry_after, sizeof(x->retry_after)) == sizeof(x->retry_after))
        abort();
    if (result == 0 && (z->flags & F_AGAIN) && z->started == 1)
        start(z); /* from on_done, as a retrying owner does: the kept connection is reused */
}

static void on_header(void *ctx, sy_upstream_xfer_t *x, const char *line, size_t n)
{
    fz_t *z = ctx;
    if (x != &z->x || n < 2 || line[n - 2] != '\r' || line[n - 1] != '\n' ||
        memchr(line, ':', n) == NULL)
        abort();
}

static const sy_upstream_cbs_t cbs = {on_data, on_done, on_header};

static void start(fz_t *z)
{
    sy_upstream_req_t req = {
        .url = z->url,
        .method = "GET",
        .first_byte_timeout_ms = 5,
        .idle_timeout_ms = 5,
        .total_timeout_ms = 100,
        .stream = (z->seed & 0x80) != 0,
    };
    z->n_data = 0;
    z->paused_turns = 0;
    if (sy_upstream_start(z->pool, &z->x, &req, &cbs, z) != 0)
        abort();
    z->started++;
}

static void on_sweep(uv_timer_t *t)
{
    fz_t *z = t->data;
    if (z->pool != NULL)
        sy_upstream_sweep(z->pool, uv_now(&z->loop));
}

static void on_guard(uv_timer_t *t)
{
    fz_t *z = t->data;
    z->guard_fired = true;
    uv_stop(&z->loop);
}

static void run(fz_t *z)
{
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (uv_loop_init(&z->loop) != 0 || uv_tcp_init(&z->loop, &z->listener) != 0 ||
        uv_tcp_bind(&z->listener, (const struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&z->listener, 16, on_sconn) != 0)
        abort();
    z->listener.data = z;
    int len = sizeof(sin);
    uv_tcp_getsockname(&z->listener, (struct sockaddr *)&sin, &len);
    snprintf(z->url, sizeof(z->url), "http://127.0.0.1:%d/v1/chat/completions",
             ntohs(sin.sin_port));
    if (sy_upstream_new(&z->loop, true, &z->pool) != 0)
        abort();
    uv_timer_init(&z->loop, &z->sweep);
    uv_timer_init(&z->loop, &z->guard);
    z->sweep.data = z->guard.data = z;
    uv_timer_start(&z->sweep, on_sweep, 1, 1);
    uv_timer_start(&z->guard, on_guard, GUARD_MS, 0);

    start(z);
    while (sy_upstream_active(z->pool) > 0 && !z->guard_fired) {
        uv_run(&z->loop, UV_RUN_ONCE);
        if (!z->x.active)
            continue;
        if ((z->flags & F_CANCEL) && z->n_data >= (z->seed % 3) + 1) {
            sy_upstream_cancel(&z->x);
            z->cancelled++;
        } else if (z->x.paused && ++z->paused_turns > ((z->flags & F_SLOW_RESUME) ? 2 : 0)) {
            z->paused_turns = 0;
            sy_upstream_resume(&z->x);
        }
    }
    if (z->guard_fired)
        abort(); /* a transfer that never ended */
    if (z->n_done + z->cancelled != z->started || z->data_after_done)
        abort();
#ifdef FUZZ_H1_VERBOSE /* for triage: -DFUZZ_H1_VERBOSE */
    fprintf(stderr, "flags %02x: started %d done %d cancelled %d last result %d status %ld\n",
            z->flags, z->started, z->n_done, z->cancelled, z->result, z->x.status);
#endif

    /* Everything closes: the pool (with an idle connection, maybe), the upstream. */
    sy_upstream_close(z->pool);
    z->pool = NULL;
    uv_close((uv_handle_t *)&z->listener, NULL);
    for (sconn_t *sc = z->conns; sc != NULL; sc = sc->next)
        sconn_close(sc);
    uv_close((uv_handle_t *)&z->sweep, NULL);
    uv_unref((uv_handle_t *)&z->guard);
    uv_run(&z->loop, UV_RUN_DEFAULT); /* the guard stops it if something stays open */
    if (z->guard_fired)
        abort();
    uv_close((uv_handle_t *)&z->guard, NULL);
    uv_run(&z->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&z->loop) != 0)
        abort(); /* a handle left open */
    while (z->conns != NULL) {
        sconn_t *sc = z->conns;
        z->conns = sc->next;
        if (sc->handles != 0)
            abort();
        free(sc);
    }
    sy_upstream_xfer_free(&z->x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fz_t *z = calloc(1, sizeof(*z));
    z->flags = data[0];
    z->seed = data[1];
    z->answer = (const char *)data + 2;
    z->answer_len = size - 2;
    run(z);
    free(z);
    return 0;
}
