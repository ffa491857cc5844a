/* HTTP/1.1 server of the mock provider: libuv + llhttp, keep-alive and
 * pipelining, routing to the three wire formats, faults, stats.
 *
 * One connection serves one request at a time: the parser pauses after each
 * message; bytes that arrive meanwhile wait in `pending` and are parsed when
 * the response is done (that is how pipelined requests keep their order).
 * Responses are built into per-connection buffers that are reused across
 * requests and written with uv_try_write (writev); only what the socket does
 * not take at once is copied into a write request. Streams are generated
 * event by event, only while the socket accepts data (backpressure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <llhttp.h>
#include "json.h"
#include "http_status.h"
#include "log.h"
#include "mock.h"

#define MAX_HEADERS 100
#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_URL 8192
#define MAX_PENDING (1024 * 1024)
#define STREAM_BATCH (16 * 1024) /* bytes of events per chunked write */
#define PUMP_BUDGET (256 * 1024) /* bytes generated before yielding to the loop */
#define RESET_GRACE_MS 30        /* lets the client read what precedes a mid-stream reset */

typedef enum phase {
    PH_IDLE = 0,   /* no response in progress */
    PH_LATENCY,    /* waiting before the first byte */
    PH_STREAM,     /* generating events (on the timer or on drain) */
    PH_STALL,      /* head sent, nothing more will come */
    PH_FLUSH,      /* everything queued; done when the socket drained */
    PH_RESET_WAIT, /* events before a reset queued; reset after drain + grace */
    PH_RESETTING,  /* grace timer running */
    PH_SILENT,     /* answer done; the connection closes unannounced (silent_close) */
} phase_t;

typedef struct header {
    uint32_t name_off, name_len;   /* in hbuf; names lowercased */
    uint32_t value_off, value_len; /* in hbuf */
} header_t;

/* Headers the mock looks at, indexed once per request. */
typedef enum known_header {
    H_AUTHORIZATION = 0,
    H_X_API_KEY,
    H_ANTHROPIC_VERSION,
    H_X_GOOG_API_KEY,
    H_X_MOCK_FAULT,
    H_X_MOCK_WORDS,
    H_X_MOCK_CHUNKS,
    H_X_MOCK_CACHED_TOKENS,
    H_EXPECT,
    H_COUNT,
} known_header_t;

static const sy_str_t known_names[H_COUNT] = {
    [H_AUTHORIZATION] = SY_STR("authorization"),
    [H_X_API_KEY] = SY_STR("x-api-key"),
    [H_ANTHROPIC_VERSION] = SY_STR("anthropic-version"),
    [H_X_GOOG_API_KEY] = SY_STR("x-goog-api-key"),
    [H_X_MOCK_FAULT] = SY_STR("x-mock-fault"),
    [H_X_MOCK_WORDS] = SY_STR("x-mock-words"),
    [H_X_MOCK_CHUNKS] = SY_STR("x-mock-chunks"),
    [H_X_MOCK_CACHED_TOKENS] = SY_STR("x-mock-cached-tokens"),
    [H_EXPECT] = SY_STR("expect"),
};

/* s equals / starts with a string literal (lengths known at compile time). */
#define STR_IS(s, lit) ((s).len == sizeof(lit) - 1 && memcmp((s).ptr, (lit), sizeof(lit) - 1) == 0)
#define STR_STARTS(s, lit)                                                                         \
    ((s).len >= sizeof(lit) - 1 && memcmp((s).ptr, (lit), sizeof(lit) - 1) == 0)

typedef struct conn conn_t;

struct sy_mock_server {
    uv_loop_t *loop;            /* borrowed */
    uv_tcp_t listener;          /* embedded */
    sy_mock_server_opts_t opts; /* strings borrowed */
    size_t name_len;            /* strlen(opts.name) */
    llhttp_settings_t settings; /* shared by every parser */
    sy_json_parser_t *json;     /* owned; one strict parser for the loop */
    sy_mock_stats_t stats;      /* counters */
    sy_mock_faults_t faults;    /* per-instance fault rules */
    uint64_t seq;               /* request counter, for ids */
    conn_t *conns;              /* borrowed list head of open connections */
    int handles;                /* open handles owned by the server itself */
    bool closing;               /* sy_mock_server_close was called */
    char rbuf[64 * 1024];       /* read buffer; consumed within each read callback */
};

struct conn {
    uv_tcp_t tcp;          /* embedded */
    uv_timer_t timer;      /* embedded; latency, chunk delay, yields, reset grace, silent close */
    uv_timer_t ttimer;     /* embedded; trickle ticks */
    llhttp_t parser;       /* embedded */
    sy_mock_server_t *srv; /* borrowed */
    conn_t *prev, *next;   /* borrowed; srv->conns list */
    int handles;           /* open handles; freed when 0 */
    bool closing;          /* uv_close called */
    bool reading;          /* uv_read_start active */
    bool in_feed;          /* inside feed(): finish must not re-enter it */
    bool busy;             /* a response is in progress */
    bool keep_alive;       /* keep the connection after this response */
    bool hdr_in_value;     /* parser is inside a header value */
    int parse_error;       /* status for a request over a cap (0 = none) */
    phase_t phase;         /* response progress */
    uint64_t inflight;     /* uv_write requests not yet completed */

    sy_buf_t url;              /* owned; request target */
    sy_buf_t hbuf;             /* owned; header names and values */
    header_t hdr[MAX_HEADERS]; /* views into hbuf */
    size_t nhdr;               /* headers in use */
    int16_t known[H_COUNT];    /* index in hdr of each known header, -1 = absent */
    sy_buf_t body;             /* owned; request body */
    sy_buf_t pending;          /* owned; bytes received while busy */
    sy_buf_t spare;            /* owned; swapped with pending when resuming */

    sy_mock_endpoint_t ep; /* endpoint of the current request */
    sy_mock_req_t req;     /* the current request */
    bool has_req;          /* req holds a body / answer to release */
    sy_mock_fault_t fault; /* fault applied to the current request */
    int status;            /* status of the current response */
    sy_buf_t head;         /* owned; response head */
    sy_buf_t out;          /* owned; response body / stream batch */
    size_t ev, nev;        /* next stream event, number of events */
    bool stream;           /* current response is an SSE stream */
    bool counted;          /* the current request is counted in stats (not /_mock/...) */

    bool trickle_on; /* the current response is trickled (fault trickle) */
    size_t trickled; /* bytes of the current response written one at a time so far */
    sy_buf_t tq;     /* owned; bytes queued behind the trickle, in order */
    size_t tq_off;   /* bytes of tq already written */
    sy_buf_t aux;    /* owned; the body re-encoded in small chunks (fault chunked) */
};

typedef struct wreq {
    uv_write_t req; /* embedded; req.data = conn */
    size_t len;     /* bytes in data */
    char data[];    /* the bytes being written */
} wreq_t;

static void pump(conn_t *c);
static void on_drained(conn_t *c);
static void finish_response(conn_t *c);
static void feed(conn_t *c, const char *data, size_t len);
static void resume_read(conn_t *c);
static void on_timer(uv_timer_t *t);

/* ---- connection lifetime ----------------------------------------------------- */

static void release_req(conn_t *c)
{
    if (c->has_req) {
        json_object_put(c->req.body);
        c->req.body = NULL;
        sy_mock_answer_free(&c->req.ans);
        c->has_req = false;
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    sy_mock_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    release_req(c);
    sy_buf_free(&c->url);
    sy_buf_free(&c->hbuf);
    sy_buf_free(&c->body);
    sy_buf_free(&c->pending);
    sy_buf_free(&c->spare);
    sy_buf_free(&c->head);
    sy_buf_free(&c->out);
    sy_buf_free(&c->tq);
    sy_buf_free(&c->aux);
    free(c);
    if (srv->closing && srv->conns == NULL && srv->handles == 0) {
        sy_mock_stats_free(&srv->stats);
        sy_json_parser_free(srv->json);
        free(srv);
    }
}

/* Counts an abort when the client leaves mid-response. */
static void note_abort(conn_t *c)
{
    if (c->busy && c->counted && c->phase != PH_RESET_WAIT && c->phase != PH_RESETTING)
        c->srv->stats.ep[c->ep].aborted++;
    c->busy = false;
}

static void close_conn(conn_t *c, bool reset)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->ttimer);
    if (reset)
        uv_tcp_close_reset(&c->tcp, on_conn_closed);
    else
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->ttimer, on_conn_closed);
}

/* ---- writing ------------------------------------------------------------------- */

/* Nothing of the response is waiting: no write in flight, no trickle queue. */
static bool drained(const conn_t *c)
{
    return c->inflight == 0 && c->tq_off == c->tq.len;
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = sy_container_of(req, wreq_t, req);
    conn_t *c = req->data;
    free(w);
    c->inflight--;
    if (c->closing)
        return;
    if (status < 0) {
        note_abort(c);
        close_conn(c, false);
        return;
    }
    if (drained(c))
        on_drained(c);
}

/* Everything queued has been written: the response goes on per its phase. */
static void on_drained(conn_t *c)
{
    switch (c->phase) {
    case PH_STREAM:
        if (!uv_is_active((uv_handle_t *)&c->timer))
            pump(c);
        break;
    case PH_FLUSH:
        finish_response(c);
        break;
    case PH_RESET_WAIT:
        c->phase = PH_RESETTING;
        uv_timer_start(&c->timer, on_timer, RESET_GRACE_MS, 0);
        break;
    default:
        break;
    }
}

/* Writes bufs: as much as the socket takes now, the rest copied into a write
 * request. Returns false when the connection failed (and is closing). */
static bool write_now(conn_t *c, uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    size_t done = 0;
    if (c->inflight == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r < 0 && r != UV_EAGAIN) {
            note_abort(c);
            close_conn(c, false);
            return false;
        }
        done = r > 0 ? (size_t)r : 0;
        if (done == total)
            return true;
    }
    wreq_t *w = malloc(sizeof(*w) + (total - done));
    if (w == NULL) {
        close_conn(c, false);
        return false;
    }
    size_t skip = done;
    w->len = 0;
    for (unsigned i = 0; i < n; i++) {
        if (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            continue;
        }
        memcpy(w->data + w->len, bufs[i].base + skip, bufs[i].len - skip);
        w->len += bufs[i].len - skip;
        skip = 0;
    }
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        free(w);
        note_abort(c);
        close_conn(c, false);
        return false;
    }
    c->inflight++;
    return true;
}

/* Trickle: each tick writes one byte of tq until SY_MOCK_TRICKLE_BYTES of the
 * response went out that way, then the rest of tq at once. The tick waits
 * while a previous write is still in flight. */
static void on_trickle(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->closing)
        return;
    size_t left = c->tq.len - c->tq_off;
    if (left == 0) {
        uv_timer_stop(t);
        return;
    }
    if (c->inflight > 0)
        return;
    size_t n = c->trickled < SY_MOCK_TRICKLE_BYTES ? 1 : left;
    uv_buf_t b = uv_buf_init(c->tq.data + c->tq_off, (unsigned)n);
    if (!write_now(c, &b, 1)) /* copies what the socket does not take */
        return;
    c->trickled += n;
    c->tq_off += n;
    if (c->tq_off < c->tq.len)
        return;
    uv_timer_stop(t);
    sy_buf_reset(&c->tq);
    c->tq_off = 0;
    if (drained(c))
        on_drained(c);
}

/* Sends bufs in order after whatever is queued: through the trickle queue
 * while the response is trickled, else at once (write_now). Returns false
 * when the connection failed (and is closing). */
static bool send_bufs(conn_t *c, uv_buf_t *bufs, unsigned n)
{
    bool queued = c->tq_off < c->tq.len;
    if (!queued && !(c->trickle_on && c->trickled < SY_MOCK_TRICKLE_BYTES))
        return write_now(c, bufs, n);
    for (unsigned i = 0; i < n; i++) {
        if (sy_buf_append(&c->tq, bufs[i].base, bufs[i].len) != 0) {
            close_conn(c, false);
            return false;
        }
    }
    if (!uv_is_active((uv_handle_t *)&c->ttimer))
        uv_timer_start(&c->ttimer, on_trickle, SY_MOCK_TRICKLE_TICK_MS, SY_MOCK_TRICKLE_TICK_MS);
    return true;
}

/* ---- response heads -------------------------------------------------------------- */

/* RFC 3339 UTC time secs from now (Anthropic's rate-limit resets). */
static void rfc3339(int64_t secs, char *out, size_t size)
{
    time_t t = time(NULL) + (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define BODY_CHUNKED (-1)  /* build_head: Transfer-Encoding: chunked */
#define BODY_TO_CLOSE (-2) /* build_head: neither length nor chunks; the close ends the body */

/* Appends kib KiB of x-pad-N header lines of 1 KiB each (fault huge_headers). */
static int pad_headers(sy_buf_t *h, int64_t kib)
{
    for (int64_t i = 0; i < kib; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "x-pad-%lld: ", (long long)i);
        size_t fill = 1024 - (size_t)n - 2;
        if (sy_buf_append(h, name, (size_t)n) != 0 || sy_buf_reserve(h, fill + 2) != 0)
            return SY_ENOMEM;
        memset(h->data + h->len, 'p', fill);
        memcpy(h->data + h->len + fill, "\r\n", 2);
        h->len += fill + 2;
        h->data[h->len] = '\0';
    }
    return 0;
}

/* Builds the head into c->head. content_length >= 0 is sent as
 * Content-Length, else BODY_CHUNKED or BODY_TO_CLOSE. */
static int build_head(conn_t *c, int status, sy_str_t ctype, int64_t content_length)
{
    sy_buf_t *h = &c->head;
    sy_mock_server_t *srv = c->srv;
    sy_buf_reset(h);
    int rc = 0;
    if (c->fault.interim)
        rc = SY_MOCK_LIT(h, "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n");
    /* The hot path: plain appends, no printf. */
    rc = rc ? rc : SY_MOCK_LIT(h, "HTTP/1.1 ");
    rc = rc ? rc : sy_mock_put_i64(h, status);
    sy_str_t why = sy_http_reason(status);
    rc = rc ? rc : SY_MOCK_LIT(h, " ");
    rc = rc ? rc : sy_mock_put(h, why.ptr, why.len);
    rc = rc ? rc : SY_MOCK_LIT(h, "\r\nContent-Type: ");
    rc = rc ? rc : sy_mock_put(h, ctype.ptr, ctype.len);
    if (rc == 0 && content_length >= 0) {
        rc = SY_MOCK_LIT(h, "\r\nContent-Length: ");
        rc = rc ? rc : sy_mock_put_i64(h, content_length);
    } else if (rc == 0 && content_length == BODY_CHUNKED) {
        rc = SY_MOCK_LIT(h, "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache");
    } else if (rc == 0) {
        rc = SY_MOCK_LIT(h, "\r\nCache-Control: no-cache");
    }
    rc = rc ? rc : SY_MOCK_LIT(h, "\r\nx-mock-name: ");
    rc = rc ? rc : sy_mock_put(h, srv->opts.name, srv->name_len);
    rc = rc ? rc : SY_MOCK_LIT(h, "\r\n");

    sy_mock_provider_t prov = c->req.prov;
    if (rc == 0 && c->ep != SY_MOCK_EP_OTHER && prov != SY_MOCK_GEMINI) {
        rc = prov == SY_MOCK_OPENAI ? SY_MOCK_LIT(h, "x-request-id: req_")
                                    : SY_MOCK_LIT(h, "request-id: req_");
        rc = rc ? rc : sy_mock_put_i64(h, (int64_t)srv->seq);
        if (rc == 0 && prov == SY_MOCK_OPENAI)
            rc = SY_MOCK_LIT(h, "\r\nopenai-processing-ms: 0\r\nopenai-version: 2020-10-01");
        rc = rc ? rc : SY_MOCK_LIT(h, "\r\n");
    }
    const sy_mock_fault_t *f = &c->fault;
    int64_t retry = f->retry_after;
    if (retry < 0 && status == 429)
        retry = 1;
    if (rc == 0 && retry >= 0 && status >= 400)
        rc = sy_buf_appendf(h, "retry-after: %lld\r\n", (long long)retry);
    if (rc == 0 && f->ratelimit && prov == SY_MOCK_OPENAI) {
        rc = sy_buf_appendf(h,
                            "x-ratelimit-limit-requests: %lld\r\n"
                            "x-ratelimit-limit-tokens: %lld\r\n"
                            "x-ratelimit-remaining-requests: %lld\r\n"
                            "x-ratelimit-remaining-tokens: %lld\r\n"
                            "x-ratelimit-reset-requests: %llds\r\n"
                            "x-ratelimit-reset-tokens: %llds\r\n",
                            (long long)f->rl_requests + 1, (long long)f->rl_tokens + 1000,
                            (long long)f->rl_requests, (long long)f->rl_tokens,
                            (long long)f->rl_reset_s, (long long)f->rl_reset_s);
    } else if (rc == 0 && f->ratelimit && prov == SY_MOCK_ANTHROPIC) {
        char reset[32];
        rfc3339(f->rl_reset_s, reset, sizeof(reset));
        rc = sy_buf_appendf(h,
                            "anthropic-ratelimit-requests-limit: %lld\r\n"
                            "anthropic-ratelimit-requests-remaining: %lld\r\n"
                            "anthropic-ratelimit-requests-reset: %s\r\n"
                            "anthropic-ratelimit-tokens-limit: %lld\r\n"
                            "anthropic-ratelimit-tokens-remaining: %lld\r\n"
                            "anthropic-ratelimit-tokens-reset: %s\r\n",
                            (long long)f->rl_requests + 1, (long long)f->rl_requests, reset,
                            (long long)f->rl_tokens + 1000, (long long)f->rl_tokens, reset);
    }
    if (rc == 0 && c->fault.huge_headers_kib > 0)
        rc = pad_headers(h, c->fault.huge_headers_kib);
    if (rc == 0 && !c->keep_alive)
        rc = SY_MOCK_LIT(h, "Connection: close\r\n");
    else if (rc == 0 && llhttp_get_http_minor(&c->parser) == 0)
        rc = SY_MOCK_LIT(h, "Connection: keep-alive\r\n");
    return rc ? rc : sy_buf_append(h, "\r\n", 2);
}

/* Sends c->head + c->out as a complete response and finishes it. */
static void send_full(conn_t *c)
{
    uv_buf_t b[2] = {uv_buf_init(c->head.data, (unsigned)c->head.len),
                     uv_buf_init(c->out.data ? c->out.data : "", (unsigned)c->out.len)};
    c->phase = PH_FLUSH;
    if (!send_bufs(c, b, 2))
        return;
    if (drained(c))
        finish_response(c);
}

/* A complete JSON response (status, body already in c->out). */
static void respond(conn_t *c, int status)
{
    c->status = status;
    if (status >= 400 && c->counted)
        c->srv->stats.ep[c->ep].errors++;
    if (build_head(c, status, SY_STR("application/json"), (int64_t)c->out.len) != 0) {
        close_conn(c, false);
        return;
    }
    send_full(c);
}

/* An error in the shape of the endpoint's provider. */
static void respond_error(conn_t *c, int status, const char *msg, const char *param,
                          const char *code)
{
    sy_buf_reset(&c->out);
    int rc;
    if (c->req.prov == SY_MOCK_ANTHROPIC)
        rc = sy_mock_anthropic_error(status, msg, &c->out);
    else if (c->req.prov == SY_MOCK_GEMINI)
        rc = sy_mock_gemini_error(status, msg, code, c->fault.retry_after, &c->out);
    else
        rc = sy_mock_openai_error(status, msg, param, code, &c->out);
    if (rc != 0) {
        close_conn(c, false);
        return;
    }
    respond(c, status);
}

/* ---- request helpers ---------------------------------------------------------------- */

static sy_str_t header(const conn_t *c, known_header_t k)
{
    if (c->known[k] < 0)
        return SY_STR_NULL;
    const header_t *h = &c->hdr[c->known[k]];
    return (sy_str_t){c->hbuf.data + h->value_off, h->value_len};
}

static bool has_header(const conn_t *c, known_header_t k)
{
    return c->known[k] >= 0;
}

/* Fills c->known (the first occurrence of each known header wins). Names
 * are told apart by length first: few share one. */
static void index_headers(conn_t *c)
{
    for (int k = 0; k < H_COUNT; k++)
        c->known[k] = -1;
    for (size_t i = 0; i < c->nhdr; i++) {
        const char *name = c->hbuf.data + c->hdr[i].name_off;
        size_t len = c->hdr[i].name_len;
        if (len < 6 || len > 20)
            continue;
        for (int k = 0; k < H_COUNT; k++) {
            if (known_names[k].len == len && c->known[k] < 0 &&
                memcmp(name, known_names[k].ptr, len) == 0) {
                c->known[k] = (int16_t)i;
                break;
            }
        }
    }
}

/* Value of query parameter key in the target (no percent-decoding). */
static sy_str_t query_param(sy_str_t target, const char *key)
{
    const char *q = memchr(target.ptr, '?', target.len);
    if (q == NULL)
        return SY_STR_NULL;
    size_t klen = strlen(key);
    const char *p = q + 1, *end = target.ptr + target.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
            return (sy_str_t){p + klen + 1, (size_t)(stop - p) - klen - 1};
        p = stop + 1;
    }
    return SY_STR_NULL;
}

static int64_t header_int(const conn_t *c, known_header_t k, int64_t def)
{
    sy_str_t v = sy_str_trim(header(c, k));
    uint64_t u;
    if (v.len == 0 || sy_str_to_u64(v, &u) != 0 || u > INT64_MAX)
        return def;
    return (int64_t)u;
}

/* Records the request in the endpoint's stats (received, last request). */
static void record(conn_t *c, sy_str_t method, sy_str_t target)
{
    sy_mock_stats_t *st = &c->srv->stats;
    sy_mock_ep_stats_t *e = &st->ep[c->ep];
    e->received++;
    c->counted = true;
    st->last_ep = (int)c->ep;
    e->has_last = true;
    sy_buf_reset(&e->last_method);
    sy_buf_reset(&e->last_path);
    sy_buf_reset(&e->last_headers);
    sy_buf_reset(&e->last_body);
    sy_buf_append_view(&e->last_method, method);
    sy_buf_append_view(&e->last_path, target);
    /* Raw "name:value\n" lines (names lowercased, values never hold a
     * newline); stats.c turns them into JSON only when asked. */
    for (size_t i = 0; i < c->nhdr; i++) {
        const header_t *h = &c->hdr[i];
        if (sy_buf_reserve(&e->last_headers, h->name_len + h->value_len + 2) != 0)
            break;
        char *p = e->last_headers.data + e->last_headers.len;
        memcpy(p, c->hbuf.data + h->name_off, h->name_len);
        p[h->name_len] = ':';
        memcpy(p + h->name_len + 1, c->hbuf.data + h->value_off, h->value_len);
        p[h->name_len + 1 + h->value_len] = '\n';
        e->last_headers.len += h->name_len + h->value_len + 2;
        e->last_headers.data[e->last_headers.len] = '\0';
    }
    size_t keep = c->body.len < SY_MOCK_STATS_BODY ? c->body.len : SY_MOCK_STATS_BODY;
    sy_buf_append(&e->last_body, c->body.data ? c->body.data : "", keep);
    e->last_body_len = c->body.len;
}

/* The provider's own credential check. Returns true when the request may go
 * on; otherwise the error response has been sent. */
static bool check_auth(conn_t *c, sy_str_t target)
{
    const char *key = c->srv->opts.api_key;
    size_t klen = strlen(key);
    sy_mock_provider_t prov = c->req.prov;

    if (prov == SY_MOCK_ANTHROPIC && !has_header(c, H_ANTHROPIC_VERSION)) {
        respond_error(c, 400, "anthropic-version: header is required", NULL, NULL);
        return false;
    }
    if (klen == 0)
        return true;

    sy_str_t got = SY_STR_NULL;
    bool present = false;
    if (prov == SY_MOCK_OPENAI || prov == SY_MOCK_ANTHROPIC) {
        sy_str_t auth = sy_str_trim(header(c, H_AUTHORIZATION));
        if (prov == SY_MOCK_ANTHROPIC && has_header(c, H_X_API_KEY)) {
            got = sy_str_trim(header(c, H_X_API_KEY));
            present = true;
        } else if (auth.len >= 7 && sy_str_case_eq_cstr((sy_str_t){auth.ptr, 7}, "bearer ")) {
            got = sy_str_trim((sy_str_t){auth.ptr + 7, auth.len - 7});
            present = true;
        }
    } else {
        if (has_header(c, H_X_GOOG_API_KEY)) {
            got = sy_str_trim(header(c, H_X_GOOG_API_KEY));
            present = true;
        } else {
            got = query_param(target, "key");
            present = got.ptr != NULL;
        }
    }
    if (present && got.len == klen && memcmp(got.ptr, key, klen) == 0)
        return true;

    if (prov == SY_MOCK_OPENAI) {
        if (!present)
            respond_error(c, 401,
                          "You didn't provide an API key. You need to provide your API key in an "
                          "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY).",
                          NULL, NULL);
        else
            respond_error(c, 401, "Incorrect API key provided.", NULL, "invalid_api_key");
    } else if (prov == SY_MOCK_ANTHROPIC) {
        respond_error(c, 401, present ? "invalid x-api-key" : "x-api-key header is required", NULL,
                      NULL);
    } else if (!present) {
        respond_error(c, 403,
                      "Method doesn't allow unregistered callers (callers without established "
                      "identity). Please use API Key or other form of API consumer identity to "
                      "call this API.",
                      NULL, NULL);
    } else {
        respond_error(c, 400, "API key not valid. Please pass a valid API key.", NULL,
                      "API_KEY_INVALID");
    }
    return false;
}

/* ---- responses with bodies --------------------------------------------------------- */

static int render_body(conn_t *c)
{
    sy_mock_req_t *r = &c->req;
    switch (c->ep) {
    case SY_MOCK_EP_CHAT:
        return sy_mock_openai_chat(r, &c->out);
    case SY_MOCK_EP_EMBEDDINGS:
        return sy_mock_openai_embeddings(r, &c->out);
    case SY_MOCK_EP_MESSAGES:
        return sy_mock_anthropic_message(r, &c->out);
    case SY_MOCK_EP_MODELS:
        if (r->prov == SY_MOCK_GEMINI)
            return sy_mock_gemini_models(c->srv->opts.name, r->model, &c->out);
        return sy_mock_openai_models(c->srv->opts.name, r->model, &c->out);
    default:
        return sy_mock_gemini_generate(r, &c->out);
    }
}

static size_t stream_count(const conn_t *c)
{
    switch (c->req.prov) {
    case SY_MOCK_OPENAI:
        return sy_mock_openai_stream_count(&c->req);
    case SY_MOCK_ANTHROPIC:
        return sy_mock_anthropic_stream_count(&c->req);
    default:
        return sy_mock_gemini_stream_count(&c->req);
    }
}

static int stream_event(conn_t *c, size_t i, sy_buf_t *out)
{
    switch (c->req.prov) {
    case SY_MOCK_OPENAI:
        return sy_mock_openai_stream_event(&c->req, i, out);
    case SY_MOCK_ANTHROPIC:
        return sy_mock_anthropic_stream_event(&c->req, i, out);
    default:
        return sy_mock_gemini_stream_event(&c->req, i, out);
    }
}

/* Sends c->out as one HTTP chunk (plus the last-chunk marker when final). */
static bool send_chunk(conn_t *c, bool final)
{
    char size[24];
    uv_buf_t b[3];
    unsigned n = 0;
    static char crlf_end[] = "\r\n0\r\n\r\n";
    if (c->fault.no_length) {
        /* Close-delimited: the bytes as they are; the close ends the body. */
        if (c->out.len > 0)
            b[n++] = uv_buf_init(c->out.data, (unsigned)c->out.len);
    } else if (c->out.len > 0) {
        int len = snprintf(size, sizeof(size), "%zx\r\n", c->out.len);
        b[n++] = uv_buf_init(size, (unsigned)len);
        b[n++] = uv_buf_init(c->out.data, (unsigned)c->out.len);
        b[n++] = uv_buf_init(crlf_end, final ? 7 : 2);
    } else if (final) {
        b[n++] = uv_buf_init(crlf_end + 2, 5);
    }
    bool ok = n == 0 || send_bufs(c, b, n);
    sy_buf_reset(&c->out); /* after: reset writes a NUL at data[0] */
    return ok;
}

/* Generates and sends stream events while the socket takes them. */
static void pump(conn_t *c)
{
    size_t produced = 0;
    const sy_mock_fault_t *f = &c->fault;
    sy_buf_reset(&c->out);
    while (c->ev < c->nev) {
        if (f->reset == SY_MOCK_RESET_AFTER && c->ev >= (size_t)f->reset_after) {
            c->phase = PH_RESET_WAIT;
            if (!send_chunk(c, false))
                return;
            if (drained(c)) {
                c->phase = PH_RESETTING;
                uv_timer_start(&c->timer, on_timer, RESET_GRACE_MS, 0);
            }
            return;
        }
        if (f->stream_error && c->ev >= (size_t)f->stream_error_after) {
            /* The provider fails after the 200: its in-stream error event
             * ends the stream (no [DONE], no message_stop). */
            int rc = c->req.prov == SY_MOCK_OPENAI      ? sy_mock_openai_stream_error(&c->out)
                     : c->req.prov == SY_MOCK_ANTHROPIC ? sy_mock_anthropic_stream_error(&c->out)
                                                        : sy_mock_gemini_stream_error(&c->out);
            if (rc != 0) {
                close_conn(c, true);
                return;
            }
            c->ev = c->nev;
            break;
        }
        size_t before = c->out.len;
        if (stream_event(c, c->ev, &c->out) != 0) {
            close_conn(c, true);
            return;
        }
        c->ev++;
        if (f->malformed && c->ev == 1) {
            /* A broken event after the first one: truncated JSON. */
            sy_buf_append_str(&c->out, c->req.prov == SY_MOCK_GEMINI
                                           ? "data: {\"candidates\": [{\"content\r\n\r\n"
                                           : "data: {\"malformed\":\n\n");
        }
        produced += c->out.len - before;
        if (f->chunk_delay_ms > 0 && c->ev < c->nev) {
            if (!send_chunk(c, false))
                return;
            uv_timer_start(&c->timer, on_timer, (uint64_t)f->chunk_delay_ms, 0);
            return;
        }
        if (c->out.len >= STREAM_BATCH) {
            if (!send_chunk(c, false))
                return;
            if (!drained(c))
                return; /* on_write resumes */
            if (produced >= PUMP_BUDGET) {
                uv_timer_start(&c->timer, on_timer, 1, 0); /* yield to other connections */
                return;
            }
        }
    }
    if (f->reset == SY_MOCK_RESET_AFTER && c->ev >= (size_t)f->reset_after && c->ev == c->nev &&
        (size_t)f->reset_after == c->nev) {
        /* Reset right after the last event, before the terminating chunk. */
        c->phase = PH_RESET_WAIT;
        if (!send_chunk(c, false))
            return;
        if (drained(c)) {
            c->phase = PH_RESETTING;
            uv_timer_start(&c->timer, on_timer, RESET_GRACE_MS, 0);
        }
        return;
    }
    c->phase = PH_FLUSH;
    if (!send_chunk(c, true))
        return;
    if (drained(c))
        finish_response(c);
}

#define SMALL_CHUNK 7 /* bytes per chunk of a plain answer under fault chunked */

/* Re-encodes c->out in SMALL_CHUNK-byte chunks, the first with a chunk
 * extension, ended by the last chunk and one trailer field (fault chunked;
 * all of it legal HTTP/1.1). Returns 0 or SY_ENOMEM (c->out unchanged). */
static int encode_chunks(conn_t *c)
{
    sy_buf_t *a = &c->aux;
    sy_buf_reset(a);
    int rc = 0;
    for (size_t i = 0; i < c->out.len && rc == 0; i += SMALL_CHUNK) {
        size_t n = c->out.len - i < SMALL_CHUNK ? c->out.len - i : SMALL_CHUNK;
        rc = sy_buf_appendf(a, "%zx%s\r\n", n, i == 0 ? ";x=y" : "");
        rc = rc ? rc : sy_buf_append(a, c->out.data + i, n);
        rc = rc ? rc : SY_MOCK_LIT(a, "\r\n");
    }
    rc = rc ? rc : SY_MOCK_LIT(a, "0\r\nx-mock-trailer: done\r\n\r\n");
    if (rc != 0)
        return rc;
    sy_buf_t t = c->out;
    c->out = *a;
    *a = t;
    return 0;
}

/* Starts the planned response (after any latency). */
static void start_response(conn_t *c)
{
    const sy_mock_fault_t *f = &c->fault;
    if (f->reset == SY_MOCK_RESET_BEFORE) {
        c->busy = false;
        close_conn(c, true);
        return;
    }
    if (f->garbage) {
        static char junk[] = "THIS IS NOT HTTP\r\n\r\n";
        uv_buf_t b = uv_buf_init(junk, sizeof(junk) - 1);
        c->keep_alive = false;
        c->phase = PH_FLUSH;
        if (!send_bufs(c, &b, 1))
            return;
        if (drained(c))
            finish_response(c);
        return;
    }
    if (f->status >= 400) {
        respond_error(c, f->status, NULL, NULL, NULL);
        return;
    }
    if (c->stream) {
        c->status = 200;
        if (build_head(c, 200, SY_STR("text/event-stream; charset=utf-8"),
                       f->no_length ? BODY_TO_CLOSE : BODY_CHUNKED) != 0) {
            close_conn(c, false);
            return;
        }
        uv_buf_t b = uv_buf_init(c->head.data, (unsigned)c->head.len);
        c->phase = PH_STREAM;
        if (!send_bufs(c, &b, 1))
            return;
        if (f->stall) {
            c->phase = PH_STALL;
            return;
        }
        c->ev = 0;
        c->nev = stream_count(c);
        if (!drained(c))
            return; /* on_write pumps */
        pump(c);
        return;
    }
    sy_buf_reset(&c->out);
    if (render_body(c) != 0) {
        close_conn(c, false);
        return;
    }
    if (f->malformed)
        c->out.len /= 2; /* truncated JSON */
    c->status = 200;
    int64_t length = (int64_t)c->out.len;
    if (f->no_length)
        length = BODY_TO_CLOSE;
    else if (f->chunked)
        length = BODY_CHUNKED;
    else if (f->short_body)
        length += length / 2 + 16; /* more than will come before the close */
    if (build_head(c, 200, SY_STR("application/json"), length) != 0 ||
        (length == BODY_CHUNKED && encode_chunks(c) != 0)) {
        close_conn(c, false);
        return;
    }
    if (f->stall) {
        uv_buf_t b = uv_buf_init(c->head.data, (unsigned)c->head.len);
        c->phase = PH_STALL;
        send_bufs(c, &b, 1);
        return;
    }
    if (f->reset == SY_MOCK_RESET_AFTER) {
        uv_buf_t b[2] = {uv_buf_init(c->head.data, (unsigned)c->head.len),
                         uv_buf_init(c->out.data, (unsigned)(c->out.len / 2))};
        c->phase = PH_RESET_WAIT;
        if (!send_bufs(c, b, 2))
            return;
        if (drained(c)) {
            c->phase = PH_RESETTING;
            uv_timer_start(&c->timer, on_timer, RESET_GRACE_MS, 0);
        }
        return;
    }
    send_full(c);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->closing)
        return;
    switch (c->phase) {
    case PH_LATENCY:
        start_response(c);
        break;
    case PH_STREAM:
        if (drained(c))
            pump(c);
        break;
    case PH_RESETTING:
        c->busy = false;
        close_conn(c, true);
        break;
    case PH_SILENT:
        close_conn(c, false); /* a request sent meanwhile stays unread: RST */
        break;
    default:
        break;
    }
}

/* ---- control endpoints (/_mock/...) --------------------------------------------------- */

static void control(conn_t *c, sy_str_t method, sy_str_t path)
{
    sy_mock_server_t *srv = c->srv;
    sy_buf_reset(&c->out);
    if (sy_str_eq_cstr(path, "/_mock/stats") && sy_str_eq_cstr(method, "GET")) {
        sy_mock_stats_to_json(&srv->stats, &c->out);
        respond(c, 200);
    } else if (sy_str_eq_cstr(path, "/_mock/reset") && sy_str_eq_cstr(method, "POST")) {
        sy_mock_stats_reset(&srv->stats);
        SY_MOCK_LIT(&c->out, "{\"ok\":true}");
        respond(c, 200);
    } else if (sy_str_eq_cstr(path, "/_mock/faults")) {
        if (sy_str_eq_cstr(method, "DELETE")) {
            sy_mock_faults_clear(&srv->faults);
            SY_MOCK_LIT(&c->out, "{\"ok\":true}");
            respond(c, 200);
        } else if (sy_str_eq_cstr(method, "GET")) {
            SY_MOCK_LIT(&c->out, "{\"rules\":");
            sy_mock_faults_to_json(&srv->faults, &c->out);
            SY_MOCK_LIT(&c->out, "}");
            respond(c, 200);
        } else if (sy_str_eq_cstr(method, "POST")) {
            json_object *body = NULL;
            const char *why = NULL;
            if (sy_json_parse(srv->json, c->body.data ? c->body.data : "", c->body.len, &body,
                              &why) != 0) {
                respond_error(c, 400, why, NULL, NULL);
                return;
            }
            int rc = sy_mock_faults_add_json(&srv->faults, body, &why);
            json_object_put(body);
            if (rc != 0) {
                respond_error(c, 400, why, NULL, NULL);
                return;
            }
            SY_MOCK_LIT(&c->out, "{\"ok\":true,\"rules\":");
            sy_mock_faults_to_json(&srv->faults, &c->out);
            SY_MOCK_LIT(&c->out, "}");
            respond(c, 200);
        } else {
            respond_error(c, 405, "Use GET, POST or DELETE on /_mock/faults.", NULL, NULL);
        }
    } else {
        respond_error(c, 404, "Unknown mock control endpoint.", NULL, NULL);
    }
}

/* ---- routing ---------------------------------------------------------------------------- */

/* Maps the target to an endpoint; for Gemini, *model gets the {m} segment. */
static sy_mock_endpoint_t route(sy_str_t path, sy_str_t *model, sy_str_t *model_id, bool *gemini_ns)
{
    *gemini_ns = STR_STARTS(path, "/v1beta/");
    if (STR_IS(path, "/v1/chat/completions"))
        return SY_MOCK_EP_CHAT;
    if (STR_IS(path, "/v1/embeddings"))
        return SY_MOCK_EP_EMBEDDINGS;
    if (STR_IS(path, "/v1/messages"))
        return SY_MOCK_EP_MESSAGES;
    if (STR_IS(path, "/v1/models")) {
        *model_id = SY_STR_NULL;
        return SY_MOCK_EP_MODELS;
    }
    if (STR_STARTS(path, "/v1/models/") && path.len > 11) {
        *model_id = (sy_str_t){path.ptr + 11, path.len - 11};
        return SY_MOCK_EP_MODELS;
    }
    if (STR_IS(path, "/v1beta/models")) {
        *model_id = SY_STR_NULL;
        return SY_MOCK_EP_MODELS;
    }
    static const char pre[] = "/v1beta/models/";
    if (STR_STARTS(path, pre)) {
        sy_str_t rest = {path.ptr + sizeof(pre) - 1, path.len - (sizeof(pre) - 1)};
        const char *colon = memchr(rest.ptr, ':', rest.len);
        if (colon == NULL && rest.len > 0) {
            *model_id = rest;
            return SY_MOCK_EP_MODELS;
        }
        if (colon == NULL || colon == rest.ptr)
            return SY_MOCK_EP_OTHER;
        *model = (sy_str_t){rest.ptr, (size_t)(colon - rest.ptr)};
        sy_str_t verb = {colon + 1, rest.len - (size_t)(colon - rest.ptr) - 1};
        if (STR_IS(verb, "generateContent"))
            return SY_MOCK_EP_GENERATE;
        if (STR_IS(verb, "streamGenerateContent"))
            return SY_MOCK_EP_STREAM_GENERATE;
    }
    return SY_MOCK_EP_OTHER;
}

static sy_mock_provider_t provider_of(sy_mock_endpoint_t ep, bool gemini_ns)
{
    switch (ep) {
    case SY_MOCK_EP_MESSAGES:
        return SY_MOCK_ANTHROPIC;
    case SY_MOCK_EP_GENERATE:
    case SY_MOCK_EP_STREAM_GENERATE:
        return SY_MOCK_GEMINI;
    case SY_MOCK_EP_OTHER:
    case SY_MOCK_EP_MODELS:
        return gemini_ns ? SY_MOCK_GEMINI : SY_MOCK_OPENAI;
    default:
        return SY_MOCK_OPENAI;
    }
}

/* The json-c path: parses and validates the body, then fills the request
 * (model, stream flags, answer, prompt tokens). Returns false when an error
 * response was sent. */
static bool parse_request(conn_t *c, int64_t words)
{
    sy_mock_req_t *r = &c->req;
    const char *why = NULL;
    json_object *body = NULL;
    if (sy_json_parse(c->srv->json, c->body.data ? c->body.data : "", c->body.len, &body, &why) !=
        0) {
        respond_error(c, 400,
                      r->prov == SY_MOCK_OPENAI
                          ? "We could not parse the JSON body of your request. (HINT: This "
                            "likely means you aren't using your HTTP library correctly.)"
                          : why,
                      NULL, NULL);
        return false;
    }
    r->body = body;
    int rc;
    const char *param = NULL;
    if (r->prov == SY_MOCK_OPENAI)
        rc = sy_mock_openai_validate(r, &why, &param);
    else if (r->prov == SY_MOCK_ANTHROPIC)
        rc = sy_mock_anthropic_validate(r, &why);
    else
        rc = sy_mock_gemini_validate(r, &why);
    if (rc != 0) {
        respond_error(c, 400, why, param, NULL);
        return false;
    }
    if (r->prov != SY_MOCK_GEMINI) {
        size_t len = 0;
        const char *m = sy_json_get_string(body, "model", &len);
        r->model = (sy_str_t){m, len};
        sy_json_get_bool(body, "stream", &r->stream);
        sy_json_get_bool(sy_json_get_object(body, "stream_options"), "include_usage",
                         &r->include_usage);
    }
    if (sy_mock_answer_build(r->prov, body, words, &r->ans) != 0) {
        respond_error(c, 500, NULL, NULL, NULL);
        return false;
    }
    r->prompt_tokens = sy_mock_usage_prompt_tokens(r->prov, r->ep == SY_MOCK_EP_EMBEDDINGS, body);
    return true;
}

/* Handles one parsed request. */
static void dispatch(conn_t *c)
{
    sy_mock_server_t *srv = c->srv;
    c->busy = true;
    c->phase = PH_IDLE;
    c->keep_alive = llhttp_should_keep_alive(&c->parser) && !srv->closing;
    sy_mock_fault_init(&c->fault);
    release_req(c);
    memset(&c->req, 0, sizeof(c->req));
    sy_buf_init(&c->req.ans.args);
    c->req.name = srv->opts.name;
    c->stream = false;
    c->counted = false;
    srv->seq++;

    sy_str_t method = sy_str_from_cstr(llhttp_method_name(llhttp_get_method(&c->parser)));
    sy_str_t target = {c->url.data ? c->url.data : "", c->url.len};
    const char *q = memchr(target.ptr, '?', target.len);
    sy_str_t path = {target.ptr, q ? (size_t)(q - target.ptr) : target.len};

    if (STR_STARTS(path, "/_mock/")) {
        c->ep = SY_MOCK_EP_OTHER;
        c->req.prov = SY_MOCK_OPENAI;
        control(c, method, path);
        return;
    }

    sy_str_t model = SY_STR_NULL, model_id = SY_STR_NULL;
    bool gemini_ns = false;
    c->ep = route(path, &model, &model_id, &gemini_ns);
    c->req.ep = c->ep;
    c->req.prov = provider_of(c->ep, gemini_ns);
    record(c, method, target);

    if (c->parse_error) {
        c->keep_alive = false; /* the rest of the request is not read */
        int st = c->parse_error;
        respond_error(c, st,
                      st == 413   ? "Request body too large."
                      : st == 414 ? "Request URI too long."
                                  : "Request headers too large.",
                      NULL, NULL);
        return;
    }
    if (c->ep == SY_MOCK_EP_OTHER) {
        respond_error(c, 404, "Unknown endpoint.", NULL, NULL);
        return;
    }
    llhttp_method_t m = (llhttp_method_t)llhttp_get_method(&c->parser);
    bool is_get = m == HTTP_GET;
    if ((c->ep == SY_MOCK_EP_MODELS) != is_get || (!is_get && m != HTTP_POST)) {
        respond_error(c, 405, "Method not allowed on this endpoint.", NULL, NULL);
        return;
    }

    /* Faults: the header wins over the instance rules. */
    sy_str_t fh = header(c, H_X_MOCK_FAULT);
    if (fh.ptr != NULL) {
        const char *why = NULL;
        if (sy_mock_fault_parse(fh.ptr, fh.len, &c->fault, &why) != 0) {
            respond_error(c, 400, why, "x-mock-fault", NULL);
            return;
        }
    } else {
        sy_mock_faults_take(&srv->faults, c->ep, &c->fault);
    }
    if (c->fault.any)
        srv->stats.ep[c->ep].faults++;
    if (c->fault.conn_close || c->fault.no_length || c->fault.short_body || c->fault.garbage)
        c->keep_alive = false;
    c->trickle_on = c->fault.trickle;
    c->trickled = 0;

    if (!check_auth(c, target))
        return;

    if (c->ep == SY_MOCK_EP_MODELS) {
        c->req.model = model_id;
    } else {
        sy_mock_req_t *r = &c->req;
        int64_t words = header_int(c, H_X_MOCK_WORDS, -1);
        if (words < 0)
            words = header_int(c, H_X_MOCK_CHUNKS, -1);
        if (words > SY_MOCK_MAX_WORDS)
            words = SY_MOCK_MAX_WORDS;
        /* The scanner path answers the usual requests without a tree; the
         * json-c path below handles the rest (and every error). */
        c->has_req = true;
        if (sy_mock_fast_request(r, c->body.data, c->body.len, words) != 0 &&
            !parse_request(c, words))
            return;
        if (r->prov == SY_MOCK_GEMINI) {
            r->model = model;
            r->stream = c->ep == SY_MOCK_EP_STREAM_GENERATE;
        }
        if (c->ep == SY_MOCK_EP_EMBEDDINGS) {
            r->stream = false;
            r->ans.tool = false;
        }
        r->cached_tokens = header_int(c, H_X_MOCK_CACHED_TOKENS, 0);
        if (r->cached_tokens > r->prompt_tokens)
            r->cached_tokens = r->prompt_tokens;
        r->created = (int64_t)time(NULL);
        const char *prefix = r->prov == SY_MOCK_ANTHROPIC ? "msg_"
                             : r->prov == SY_MOCK_GEMINI  ? "resp-"
                                                          : "chatcmpl-";
        /* prefix + name (<= 48) + '-' + decimal seq: fits in r->id. */
        size_t plen = strlen(prefix), nlen = srv->name_len;
        char digits[24];
        size_t dn = 0;
        uint64_t v = srv->seq;
        do {
            digits[sizeof(digits) - 1 - dn++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        memcpy(r->id, prefix, plen);
        memcpy(r->id + plen, srv->opts.name, nlen);
        r->id[plen + nlen] = '-';
        memcpy(r->id + plen + nlen + 1, digits + sizeof(digits) - dn, dn);
        r->id[plen + nlen + 1 + dn] = '\0';
        c->stream = r->stream;
    }

    if (c->fault.latency_ms > 0) {
        c->phase = PH_LATENCY;
        uv_timer_start(&c->timer, on_timer, (uint64_t)c->fault.latency_ms, 0);
        return;
    }
    start_response(c);
}

/* The response is complete: count it and go on with the next request. */
static void finish_response(conn_t *c)
{
    sy_mock_server_t *srv = c->srv;
    if (c->busy && c->counted) {
        srv->stats.ep[c->ep].completed++;
        SY_LOG_DEBUG_("response", "endpoint=%s status=%d fault=%s", sy_mock_endpoint_name(c->ep),
                      c->status, c->fault.any ? "yes" : "no");
    }
    c->busy = false;
    c->phase = PH_IDLE;
    c->trickle_on = false;
    release_req(c);
    if (!c->keep_alive) {
        close_conn(c, false);
        return;
    }
    if (c->fault.silent_close) {
        /* The answer said keep-alive; the connection closes anyway, like an
         * upstream whose idle timeout fires just as the client reuses it.
         * Whatever arrives meanwhile is left unread (and unanswered). */
        int64_t ms = c->fault.silent_close_ms;
        if (ms < 0)
            ms = (int64_t)(srv->seq * 13 % (SY_MOCK_SILENT_CLOSE_MAX_MS + 1)); /* all of 0..20 */
        c->phase = PH_SILENT;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        if (ms == 0)
            close_conn(c, false);
        else
            uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
        return;
    }
    if (c->in_feed)
        return;
    if (c->pending.len > 0) {
        sy_buf_t tmp = c->spare;
        c->spare = c->pending;
        c->pending = tmp;
        feed(c, c->spare.data, c->spare.len);
        sy_buf_reset(&c->spare);
    }
    if (!c->closing && !c->reading)
        resume_read(c);
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int on_message_begin(llhttp_t *p)
{
    conn_t *c = p->data;
    sy_buf_reset(&c->url);
    sy_buf_reset(&c->hbuf);
    sy_buf_reset(&c->body);
    c->nhdr = 0;
    index_headers(c); /* none yet */
    c->hdr_in_value = false;
    c->parse_error = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->url.len + len > MAX_URL) {
        c->parse_error = 414;
        return 0;
    }
    return sy_buf_append(&c->url, at, len) ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->parse_error)
        return 0;
    if (c->hbuf.len + len > MAX_HEADER_BYTES) {
        c->parse_error = 431;
        return 0;
    }
    if (c->hdr_in_value || c->nhdr == 0) {
        if (c->nhdr == MAX_HEADERS) {
            c->parse_error = 431;
            return 0;
        }
        header_t *h = &c->hdr[c->nhdr++];
        h->name_off = (uint32_t)c->hbuf.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->hdr_in_value = false;
    }
    header_t *h = &c->hdr[c->nhdr - 1];
    if (sy_buf_reserve(&c->hbuf, len) != 0)
        return -1;
    /* Copied lowercased (names are ASCII tokens; other bytes kept). */
    char *dst = c->hbuf.data + c->hbuf.len;
    size_t i = 0;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (; i + 8 <= len; i += 8) {
        /* Eight at a time: exact per-byte "below 'Z' + 1 and not below 'A'". */
        uint64_t w;
        memcpy(&w, at + i, 8);
        uint64_t lt_z = ~(((w | highs) - ones * ('Z' + 1)) | w) & highs;
        uint64_t lt_a = ~(((w | highs) - ones * 'A') | w) & highs;
        w |= (lt_z & ~lt_a) >> 2; /* 0x80 >> 2 = 0x20 */
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        dst[i] = (char)(ch | (unsigned char)(((unsigned)(ch - 'A') < 26u) << 5));
    }
    c->hbuf.len += len;
    c->hbuf.data[c->hbuf.len] = '\0';
    h->name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->parse_error || c->nhdr == 0)
        return 0;
    if (c->hbuf.len + len > MAX_HEADER_BYTES) {
        c->parse_error = 431;
        return 0;
    }
    header_t *h = &c->hdr[c->nhdr - 1];
    if (!c->hdr_in_value) {
        c->hdr_in_value = true;
        h->value_off = (uint32_t)c->hbuf.len;
        h->value_len = 0;
    }
    if (sy_mock_put(&c->hbuf, at, len))
        return -1;
    h->value_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn_t *c = p->data;
    index_headers(c);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)c->srv->opts.max_body)
        c->parse_error = 413;
    sy_str_t expect = header(c, H_EXPECT);
    if (c->parse_error == 0 && expect.ptr != NULL &&
        sy_str_case_eq_cstr(sy_str_trim(expect), "100-continue")) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
        send_bufs(c, &b, 1);
    }
    /* Over a cap: answer now rather than read (and drop) a huge body; the
     * connection closes after the error. */
    return c->parse_error ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->parse_error)
        return 0;
    if (c->body.len + len > (size_t)c->srv->opts.max_body) {
        c->parse_error = 413;
        return 0;
    }
    return sy_buf_append(&c->body, at, len) ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    SY_UNUSED(p);
    return HPE_PAUSED; /* feed() dispatches outside the parser */
}

static void protocol_error(conn_t *c)
{
    /* Malformed HTTP: answer 400 in the OpenAI shape and close. */
    c->busy = true;
    c->keep_alive = false;
    c->ep = SY_MOCK_EP_OTHER;
    sy_mock_fault_init(&c->fault);
    memset(&c->req, 0, sizeof(c->req));
    c->req.prov = SY_MOCK_OPENAI;
    c->srv->stats.ep[SY_MOCK_EP_OTHER].received++;
    c->counted = true;
    respond_error(c, 400, "Malformed HTTP request.", NULL, NULL);
}

static void feed(conn_t *c, const char *data, size_t len)
{
    c->in_feed = true;
    while (len > 0 && !c->closing && c->phase != PH_SILENT) {
        if (c->busy) {
            if (sy_buf_append(&c->pending, data, len) != 0)
                close_conn(c, false);
            break;
        }
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        if (err == HPE_OK)
            break;
        if (err == HPE_PAUSED) {
            size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            data += used;
            len -= used;
            llhttp_resume(&c->parser);
            dispatch(c);
            continue;
        }
        protocol_error(c);
        break;
    }
    c->in_feed = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    SY_UNUSED(suggested);
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0) {
        note_abort(c);
        close_conn(c, false);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->busy) {
        if (c->pending.len + (size_t)nread > MAX_PENDING) {
            uv_read_stop(s); /* resumed when the response is done */
            c->reading = false;
        }
        if (sy_buf_append(&c->pending, buf->base, (size_t)nread) != 0)
            close_conn(c, false);
        return;
    }
    feed(c, buf->base, (size_t)nread);
}

static void resume_read(conn_t *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    else
        close_conn(c, false);
}

static void on_connection(uv_stream_t *l, int status)
{
    sy_mock_server_t *srv = l->data;
    if (status < 0 || srv->closing)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    uv_timer_init(srv->loop, &c->ttimer);
    c->tcp.data = c;
    c->timer.data = c;
    c->ttimer.data = c;
    c->handles = 3;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
    c->parser.data = c;
    sy_buf_init(&c->url);
    sy_buf_init(&c->hbuf);
    sy_buf_init(&c->body);
    sy_buf_init(&c->pending);
    sy_buf_init(&c->spare);
    sy_buf_init(&c->head);
    sy_buf_init(&c->out);
    sy_buf_init(&c->tq);
    sy_buf_init(&c->aux);
    sy_buf_init(&c->req.ans.args);
    c->keep_alive = true;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        close_conn(c, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    srv->stats.connections++;
    resume_read(c);
}

/* ---- server -------------------------------------------------------------------------- */

int sy_mock_server_start(uv_loop_t *loop, const sy_mock_server_opts_t *opts, sy_mock_server_t **out)
{
    sy_mock_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return SY_ENOMEM;
    srv->loop = loop;
    srv->opts = *opts;
    srv->name_len = strlen(opts->name);
    srv->json = sy_json_parser_new();
    if (srv->json == NULL) {
        free(srv);
        return SY_ENOMEM;
    }
    sy_mock_stats_init(&srv->stats, opts->name);
    sy_mock_faults_init(&srv->faults);
    llhttp_settings_init(&srv->settings);
    srv->settings.on_message_begin = on_message_begin;
    srv->settings.on_url = on_url;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;

    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(opts->host, opts->port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(opts->host, opts->port, (struct sockaddr_in6 *)&addr);
    if (rc == 0)
        rc = uv_tcp_init(loop, &srv->listener);
    if (rc != 0)
        goto fail_init;
    srv->listener.data = srv;
    srv->handles = 1;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    if (rc != 0) {
        sy_mock_server_close(srv); /* frees srv once the listener closed */
        return rc;
    }
    *out = srv;
    return 0;
fail_init:
    sy_mock_stats_free(&srv->stats);
    sy_json_parser_free(srv->json);
    free(srv);
    return rc;
}

int sy_mock_server_port(const sy_mock_server_t *srv)
{
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

static void on_listener_closed(uv_handle_t *h)
{
    sy_mock_server_t *srv = h->data;
    srv->handles--;
    if (srv->conns == NULL && srv->handles == 0) {
        sy_mock_stats_free(&srv->stats);
        sy_json_parser_free(srv->json);
        free(srv);
    }
}

void sy_mock_server_close(sy_mock_server_t *srv)
{
    if (srv->closing)
        return;
    srv->closing = true;
    for (conn_t *c = srv->conns; c != NULL; c = c->next)
        close_conn(c, false);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}
