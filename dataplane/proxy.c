/* Request handling; see proxy.h. */
#include "dataplane/proxy.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jscan.h"
#include "log.h"
#include "dataplane/control_link.h"
#include "dataplane/routing.h"
#include "dataplane/worker.h"
#include "dataplane/providers/anthropic_ingress.h"

#define MAX_SSE_EVENT (4 * 1024 * 1024)
#define MAX_EXTRA_HEADERS 16

/* Hot-path error messages: constants, compared and logged by address. */
static const char E_NO_KEY[] =
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
static const char E_BAD_KEY[] = "Incorrect API key provided.";
static const char E_EXPIRED_KEY[] = "The API key has expired.";
static const char E_BLOCKED[] = "This API key or its tenant is blocked.";
static const char E_NOT_READY[] = "The gateway has no routing table yet; try again shortly.";
static const char E_CTYPE[] = "Content-Type must be application/json.";
static const char E_EMPTY[] = "The request body is empty; a JSON object is required.";
static const char E_NOT_OBJECT[] = "The request body must be a JSON object.";
static const char E_NO_MODEL[] = "You must provide a model parameter.";
static const char E_NO_MODEL_FOUND[] = "The model does not exist or you do not have access to it.";
static const char E_NO_PROVIDER[] = "The model's provider is not configured.";
static const char E_KIND[] = "The model's provider kind is not supported by this gateway.";
static const char E_UPSTREAM_START[] = "Cannot start the upstream request.";
static const char E_TOO_LARGE[] = "The upstream response is too large.";
static const char E_NOMEM[] = "Out of memory.";
static const char E_CLIENT_GONE[] = "client closed the connection";
static const char E_STREAM_BOOL[] = "'stream' must be a boolean.";

/* --- small helpers ------------------------------------------------------------- */

static sy_worker_t *worker_of(sy_req_t *r)
{
    return r->conn->worker;
}

static void release(sy_req_t *r)
{
    if (r->xfer.active)
        sy_upstream_cancel(&r->xfer);
    if (r->json != NULL) {
        json_object_put(r->json);
        r->json = NULL;
    }
    if (r->framer_init) {
        sy_sse_framer_free(&r->framer);
        r->framer_init = false;
    }
    if (r->pstream != NULL) {
        sy_provider_stream_free(r->pstream);
        free(r->pstream);
        r->pstream = NULL;
    }
    if (r->egress != NULL) {
        sy_anthropic_egress_free(r->egress);
        free(r->egress);
        r->egress = NULL;
    }
    sy_buf_free(&r->xlat);
    sy_snapshot_unref(r->snap);
    r->snap = NULL;
    sy_buf_reset(&r->resp);
    if (r->resp.cap > 65536)
        sy_buf_free(&r->resp);
    if (r->body.cap > 65536)
        sy_buf_free(&r->body);
}

static bool path_is(const sy_req_t *r, const char *p, size_t *plen)
{
    size_t n = strlen(p);
    if (*plen != n || memcmp(r->path, p, n) != 0)
        return false;
    return true;
}

/* An error for the client in its own dialect: OpenAI's shape (with the
 * cause), or Anthropic's on /v1/messages; Retry-After from the upstream's
 * header or the error body. */
static int reply_provider_error(sy_req_t *r, const sy_provider_error_t *e, const char *retry_after)
{
    sy_worker_t *w = worker_of(r);
    char extra[64] = "";
    if (retry_after != NULL && retry_after[0] != '\0')
        snprintf(extra, sizeof(extra), "Retry-After: %s\r\n", retry_after);
    else if (e->retry_after_s > 0)
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", e->retry_after_s);
    sy_buf_reset(&w->scratch);
    int rc = r->anthropic_ingress ? sy_anthropic_ingress_error_write(e, &w->scratch)
                                  : sy_provider_error_write(e, &w->scratch);
    if (rc != 0)
        return sy_server_respond(r, 500, NULL, "", 0, NULL);
    return sy_server_respond(r, e->status, "application/json", w->scratch.data, w->scratch.len,
                             extra[0] ? extra : NULL);
}

/* Writes OpenAI-format stream bytes to the client, as Anthropic events on
 * /v1/messages. */
static int emit(sy_req_t *r, const char *p, size_t n)
{
    /* The stream's head goes out with its first bytes, so that an upstream
     * failing before it can still fail over invisibly. */
    if (!r->headers_sent &&
        sy_server_stream_begin(
            r, r->xfer.status >= 200 && r->xfer.status < 300 ? (int)r->xfer.status : 200,
            "text/event-stream") != 0)
        return SY_ECANCELED;
    if (r->relayed++ == 0 && r->rt != NULL)
        sy_buf_free(&r->rt->canon); /* no failover after the first byte: the copy can go */
    if (r->egress == NULL)
        return sy_server_stream_write(r, p, n);
    sy_buf_reset(&r->xlat);
    if (sy_anthropic_egress_feed(r->egress, p, n, &r->xlat) != 0)
        return SY_ENOMEM;
    return r->xlat.len > 0 ? sy_server_stream_write(r, r->xlat.data, r->xlat.len) : 0;
}

/* Copies what the stream translator learned into the request. */
static void note_pstream(sy_req_t *r, size_t emitted)
{
    const sy_provider_stream_t *s = r->pstream;
    if (s->usage.present) {
        r->usage.prompt_tokens = s->usage.prompt_tokens;
        r->usage.completion_tokens = s->usage.completion_tokens;
        r->usage.cached_tokens = s->usage.cached_tokens;
        r->usage.cache_write_tokens = s->usage.cache_write_tokens;
        r->have_usage = true;
    }
    if (s->failed) {
        r->upstream_error = true;
        if (r->error == NULL)
            r->error = "upstream error event";
    } else if (s->done) {
        r->saw_done = true;
    }
    if (emitted > 0 && r->ttft_ms < 0)
        r->ttft_ms = (int64_t)(uv_now(&worker_of(r)->loop) - r->start_ms);
}

/* --- access log and usage ---------------------------------------------------- */

static void json_str(sy_buf_t *b, const char *k, const char *v)
{
    sy_buf_appendf(b, ",\"%s\":", k);
    if (v == NULL)
        sy_buf_append_str(b, "null");
    else
        sy_buf_append_json_string(b, v, strlen(v));
}

void sy_proxy_finish(sy_req_t *r)
{
    sy_worker_t *w = worker_of(r);
    uint64_t now = uv_now(&w->loop);
    int64_t latency = (int64_t)(now - r->start_ms);
    bool failed = r->status >= 400 || r->upstream_error || r->status == 0;
    const Switchyard__Model *m = r->model ? r->model->pb : NULL;
    const Switchyard__Provider *prov =
        r->provider ? r->provider : (r->model ? r->model->provider : NULL);
    double cost = 0.0;
    bool estimated = false;
    if (m != NULL && !r->have_usage && r->stream && r->relayed > 0) {
        /* A stream that broke before its usage chunk: the part the client
         * got is still accounted, estimated (flagged as such). */
        r->usage.prompt_tokens = r->bytes_in / 4 + 1;
        r->usage.completion_tokens = r->relayed;
        r->have_usage = estimated = true;
    }
    if (m != NULL && r->have_usage) {
        const Switchyard__Price *price = sy_snapshot_price_at(m, r->start_unix_ms / 1000);
        cost = sy_snapshot_cost(price, r->usage.prompt_tokens, r->usage.completion_tokens,
                                r->usage.cached_tokens, r->usage.cache_write_tokens);
    }
    if (r->key != NULL && m != NULL) {
        sy_usage_sample_t s = {
            .unix_ms = r->start_unix_ms,
            .tenant_id = r->key->pb->tenant_id,
            .team_id = r->key->pb->team_id,
            .key_id = r->key->pb->id,
            .route = r->route,
            .provider_id = prov ? prov->id : NULL,
            .model_id = m->id,
            .error = failed,
            .estimated = estimated,
            .prompt_tokens = r->usage.prompt_tokens,
            .completion_tokens = r->usage.completion_tokens,
            .cached_tokens = r->usage.cached_tokens,
            .cache_write_tokens = r->usage.cache_write_tokens,
            .cost_usd = cost,
            .latency_ms = latency,
            .ttft_ms = r->stream ? r->ttft_ms : -1,
        };
        /* Journaled too (control link), so a kill -9 loses no usage. */
        if (sy_usage_record(w->usage, &s) == 0)
            sy_control_link_journal(w->control_link, &s);
    }
    if (w->cfg.access_log) {
        sy_buf_t *b = &w->scratch;
        sy_buf_reset(b);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        static const char *const methods[] = {"DELETE", "GET", "HEAD", "POST", "PUT"};
        const char *method = r->method < SY_ARRAY_LEN(methods) ? methods[r->method] : "OTHER";
        sy_buf_appendf(b,
                       "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"info\","
                       "\"component\":\"dataplane\",\"event\":\"access\",\"worker\":%d",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ts.tv_nsec / 1000000, w->cfg.worker_id);
        json_str(b, "request_id", r->id);
        json_str(b, "method", method);
        json_str(b, "path", r->path);
        sy_buf_appendf(b, ",\"status\":%d", r->status == 0 ? 499 : r->status);
        json_str(b, "tenant", r->key ? r->key->pb->tenant_id : NULL);
        json_str(b, "team", r->key ? r->key->pb->team_id : NULL);
        json_str(b, "key_id", r->key ? r->key->pb->id : NULL);
        json_str(b, "key_prefix", r->key_prefix[0] ? r->key_prefix : NULL);
        json_str(b, "model", m ? m->id : NULL);
        json_str(b, "route", r->route);
        json_str(b, "provider", prov ? prov->id : NULL);
        if (r->rt != NULL && r->rt->attempts > 1)
            sy_buf_appendf(b, ",\"attempts\":%u", r->rt->attempts);
        sy_buf_appendf(b,
                       ",\"stream\":%s,\"bytes_in\":%llu,\"bytes_out\":%llu,\"prompt_tokens\":%llu,"
                       "\"completion_tokens\":%llu,\"cached_tokens\":%llu,\"cost_usd\":%.8f",
                       r->stream ? "true" : "false", (unsigned long long)r->bytes_in,
                       (unsigned long long)r->bytes_out, (unsigned long long)r->usage.prompt_tokens,
                       (unsigned long long)r->usage.completion_tokens,
                       (unsigned long long)r->usage.cached_tokens, cost);
        if (r->upstream_ms >= 0)
            sy_buf_appendf(b, ",\"upstream_ms\":%lld", (long long)r->upstream_ms);
        if (r->ttft_ms >= 0)
            sy_buf_appendf(b, ",\"ttft_ms\":%lld", (long long)r->ttft_ms);
        sy_buf_appendf(b, ",\"latency_ms\":%lld", (long long)latency);
        if (r->error != NULL)
            json_str(b, "error", r->error);
        sy_buf_append_str(b, "}");
        /* Batched: one write per 32 KiB or per sweep (sy_worker_flush_access_log). */
        if (sy_buf_append(&w->access_log, b->data, b->len) == 0 &&
            sy_buf_append(&w->access_log, "\n", 1) == 0) {
            if (w->access_log.len >= 32 * 1024)
                sy_worker_flush_access_log(w);
        } else {
            sy_log_line(b->data, b->len);
        }
    }
    sy_routing_finish(r, cost, r->usage.prompt_tokens + r->usage.completion_tokens);
    release(r);
    r->key = NULL;
    r->model = NULL;
    r->provider = NULL;
    r->relayed = 0;
    r->route = NULL;
    r->key_prefix[0] = '\0';
    r->mode = SY_REQ_MODE_NONE;
    r->adapter = NULL;
    r->anthropic_ingress = false;
    r->stream = r->client_usage = r->embeddings = false;
    r->headers_sent = r->have_usage = r->saw_done = r->upstream_error = r->too_large = false;
    memset(&r->usage, 0, sizeof(r->usage));
    r->status = 0;
    r->error = NULL;
    r->bytes_in = r->bytes_out = 0;
    r->ttft_ms = -1;
    r->upstream_ms = -1;
    r->up_body = NULL;
    r->up_body_len = 0;
}

void sy_proxy_abort(sy_req_t *r)
{
    sy_routing_abort(r);
    if (r->xfer.active)
        sy_upstream_cancel(&r->xfer);
    if (r->error == NULL)
        r->error = E_CLIENT_GONE;
    r->upstream_error = true;
}

/* --- upstream callbacks ------------------------------------------------------- */

static void on_done(void *ctx, sy_upstream_xfer_t *x, int result, const char *why);
static size_t on_data(void *ctx, sy_upstream_xfer_t *x, const char *p, size_t n);
static void on_up_header(void *ctx, sy_upstream_xfer_t *x, const char *line, size_t n)
{
    SY_UNUSED(x);
    sy_routing_upstream_header(ctx, line, n);
}
static const sy_upstream_cbs_t CBS = {on_data, on_done, on_up_header};
static void retry_attempt(sy_req_t *r);

/* One SSE event from the upstream: relayed untouched into the worker's
 * scratch buffer (flushed as one chunk per read), except the usage-only
 * chunk when the client did not ask for it. */
static int on_event(void *ctx, const sy_sse_event_t *ev)
{
    sy_req_t *r = ctx;
    sy_worker_t *w = worker_of(r);
    if (sy_str_eq_cstr(ev->data, "[DONE]")) {
        r->saw_done = true;
    } else if (sy_openai_is_error_event(ev->data)) {
        r->upstream_error = true;
        if (r->error == NULL)
            r->error = "upstream error event";
    } else {
        sy_openai_usage_t u;
        bool usage_only = false;
        if (sy_openai_chunk_usage(w->json, ev->data, &u, &usage_only) == 0) {
            r->usage = u;
            r->have_usage = true;
            if (usage_only && !r->client_usage)
                return 0;
        }
    }
    if (r->ttft_ms < 0)
        r->ttft_ms = (int64_t)(uv_now(&w->loop) - r->start_ms);
    return sy_buf_append(&w->scratch, ev->raw.ptr, ev->raw.len) == 0 ? 0 : SY_ENOMEM;
}

static size_t on_data(void *ctx, sy_upstream_xfer_t *x, const char *p, size_t n)
{
    sy_req_t *r = ctx;
    sy_worker_t *w = worker_of(r);
    if (r->mode == SY_REQ_MODE_NONE) {
        r->upstream_ms = (int64_t)(uv_now(&w->loop) - r->start_ms);
        sy_routing_first_byte(r);
        bool sse = strncasecmp(x->content_type, "text/event-stream", 17) == 0;
        if (r->stream && sse && x->status >= 200 && x->status < 300) {
            r->mode = SY_REQ_MODE_STREAM;
            if (r->adapter != NULL) {
                sy_provider_resp_opts_t o = {.public_model = sy_str_from_cstr(r->model->pb->id),
                                             .created = r->start_unix_ms / 1000,
                                             .include_usage = r->client_usage};
                if ((r->pstream = malloc(sizeof(*r->pstream))) == NULL)
                    return 0;
                sy_provider_stream_init(r->pstream, r->adapter, w->json, &o);
            } else {
                sy_sse_framer_init(&r->framer, MAX_SSE_EVENT, on_event, r);
                r->framer_init = true;
            }
            if (r->anthropic_ingress) {
                if ((r->egress = malloc(sizeof(*r->egress))) == NULL)
                    return 0;
                sy_anthropic_egress_init(r->egress, w->json, sy_str_from_cstr(r->model->pb->id));
            }
        } else {
            r->mode = SY_REQ_MODE_BUFFER;
        }
    }
    if (r->mode == SY_REQ_MODE_BUFFER) {
        if (r->resp.len + n > (size_t)w->cfg.max_response_bytes) {
            r->too_large = true;
            return 0;
        }
        return sy_buf_append(&r->resp, p, n) == 0 ? n : 0;
    }
    /* Stream: backpressure before consuming anything. */
    if (sy_server_queued(r) > (size_t)w->cfg.write_high_water)
        return SY_UPSTREAM_PAUSE;
    sy_buf_reset(&w->scratch);
    int rc = r->pstream != NULL ? sy_provider_stream_feed(r->pstream, p, n, &w->scratch)
                                : sy_sse_framer_feed(&r->framer, p, n);
    if (rc != 0) {
        r->upstream_error = true;
        r->error = rc == SY_E2BIG ? "upstream event too large" : "out of memory";
        return 0;
    }
    if (r->pstream != NULL) {
        note_pstream(r, w->scratch.len);
        /* An upstream error before anything reached the client (e.g. Anthropic's
         * overloaded_error right after message_start): stop here, so that
         * on_done can fail over or answer with a plain HTTP error. */
        if (r->pstream->failed && !r->headers_sent)
            return 0;
    }
    if (w->scratch.len > 0 && emit(r, w->scratch.data, w->scratch.len) != 0) {
        r->error = E_CLIENT_GONE;
        return 0;
    }
    return n;
}

/* Sends a buffered answer that needs translation: from an Anthropic or
 * Gemini upstream, and/or to an Anthropic-style client. */
static void answer_translated(sy_req_t *r, sy_upstream_xfer_t *x)
{
    sy_worker_t *w = worker_of(r);
    int status = (int)x->status;
    const sy_provider_ops_t *ops = r->adapter != NULL ? r->adapter : &sy_provider_openai;
    sy_provider_error_t e;
    if (status < 200 || status > 299) {
        ops->map_error(status, r->resp.data, r->resp.len, &e);
        r->error = "upstream error";
        reply_provider_error(r, &e, x->retry_after);
        return;
    }
    const char *body = r->resp.data ? r->resp.data : "";
    size_t len = r->resp.len;
    sy_buf_reset(&w->scratch);
    if (r->adapter != NULL) {
        sy_provider_resp_opts_t o = {.public_model = sy_str_from_cstr(r->model->pb->id),
                                     .created = r->start_unix_ms / 1000};
        sy_provider_usage_t u = {0};
        int rc = r->adapter->parse_response(&o, w->json, body, len, &w->scratch, &u, &e);
        if (rc != 0) {
            r->upstream_error = true;
            r->error = "invalid upstream response";
            if (rc == SY_EINVAL)
                reply_provider_error(r, &e, NULL);
            else
                sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
            return;
        }
        r->usage.prompt_tokens = u.prompt_tokens;
        r->usage.completion_tokens = u.completion_tokens;
        r->usage.cached_tokens = u.cached_tokens;
        r->usage.cache_write_tokens = u.cache_write_tokens;
        r->have_usage = u.present;
        body = w->scratch.data;
        len = w->scratch.len;
    } else {
        sy_openai_usage_t u;
        if (sy_openai_find_usage(w->json, body, len, &u) == 0) {
            r->usage = u;
            r->have_usage = true;
        }
    }
    if (r->anthropic_ingress) {
        sy_buf_reset(&r->xlat);
        if (sy_anthropic_ingress_response(w->json, body, len, sy_str_from_cstr(r->model->pb->id),
                                          &r->xlat) != 0) {
            r->upstream_error = true;
            sy_server_error(r, 502, "upstream_error", "upstream_invalid_response", NULL,
                            "The upstream returned an invalid response.");
            return;
        }
        body = r->xlat.data;
        len = r->xlat.len;
    }
    sy_server_respond(r, 200, "application/json", body, len, NULL);
}

/* Sends a buffered upstream answer. */
static void answer_buffered(sy_req_t *r, sy_upstream_xfer_t *x)
{
    sy_worker_t *w = worker_of(r);
    int status = (int)x->status;
    if (r->adapter != NULL || r->anthropic_ingress) {
        answer_translated(r, x);
        return;
    }
    const char *ctype = x->content_type[0] ? x->content_type : "application/json";
    if (status >= 200 && status < 300) {
        sy_openai_usage_t u;
        if (sy_openai_find_usage(w->json, r->resp.data, r->resp.len, &u) == 0) {
            r->usage = u;
            r->have_usage = true;
        }
        sy_server_respond(r, status, ctype, r->resp.data, r->resp.len, NULL);
        return;
    }
    /* An upstream error: pass an OpenAI-shaped body through with its status,
     * wrap anything else. */
    char extra[64] = "";
    if (x->retry_after[0] != '\0')
        snprintf(extra, sizeof(extra), "Retry-After: %s\r\n", x->retry_after);
    if (status < 400 || status > 599)
        status = 502;
    r->error = "upstream error";
    json_object *doc = NULL;
    const char *why;
    bool shaped = false;
    if (r->resp.len > 0 && sy_json_parse(w->json, r->resp.data, r->resp.len, &doc, &why) == 0) {
        json_object *e = sy_json_get_object(doc, "error");
        shaped = e != NULL && sy_json_get_string(e, "message", NULL) != NULL;
        json_object_put(doc);
    }
    if (shaped) {
        sy_server_respond(r, status, "application/json", r->resp.data, r->resp.len,
                          extra[0] ? extra : NULL);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "The upstream provider returned HTTP %d.", status);
    sy_buf_reset(&w->scratch);
    sy_openai_error_json(&w->scratch, msg, status == 429 ? "rate_limit_error" : "upstream_error",
                         NULL, "upstream_error");
    sy_server_respond(r, status, "application/json", w->scratch.data, w->scratch.len,
                      extra[0] ? extra : NULL);
}

/* Clears what one attempt left in r, before the next one. */
static void reset_attempt(sy_req_t *r)
{
    if (r->framer_init) {
        sy_sse_framer_free(&r->framer);
        r->framer_init = false;
    }
    if (r->pstream != NULL) {
        sy_provider_stream_free(r->pstream);
        free(r->pstream);
        r->pstream = NULL;
    }
    if (r->egress != NULL) {
        sy_anthropic_egress_free(r->egress);
        free(r->egress);
        r->egress = NULL;
    }
    sy_buf_reset(&r->resp);
    r->mode = SY_REQ_MODE_NONE;
    r->adapter = NULL;
    r->have_usage = r->saw_done = r->upstream_error = r->too_large = false;
    memset(&r->usage, 0, sizeof(r->usage));
    r->error = NULL;
    r->ttft_ms = -1;
    r->upstream_ms = -1;
}

/* An attempt failed before any byte reached the client: the next target
 * (or the same after a backoff) takes over when the route allows it.
 * Returns true when r is taken care of. */
static bool try_failover(sy_req_t *r, int status, int result, const char *retry_after)
{
    if (r->error == E_CLIENT_GONE || r->headers_sent || r->rt == NULL || r->rt->plan.n == 0)
        return false;
    int rc = sy_routing_next(r, status, result, retry_after);
    if (rc == 0)
        return false;
    reset_attempt(r);
    if (rc == 1)
        retry_attempt(r);
    return true;
}

static void on_done(void *ctx, sy_upstream_xfer_t *x, int result, const char *why)
{
    sy_req_t *r = ctx;
    sy_worker_t *w = worker_of(r);
    if (r->mode == SY_REQ_MODE_STREAM && !r->headers_sent && r->error != E_CLIENT_GONE) {
        /* A stream that failed before its first byte reached the client
         * fails over invisibly, or gets a plain HTTP error. */
        if (result != 0 || r->too_large || r->upstream_error) {
            int res = result != 0 ? result : SY_EIO;
            if (r->pstream != NULL && r->pstream->failed) /* the translator saw the failure */
                res = r->pstream->error.retryable ? SY_EIO : SY_EINVAL;
            if (try_failover(r, 0, res, NULL))
                return;
            if (r->pstream != NULL && r->pstream->failed) {
                reply_provider_error(r, &r->pstream->error, NULL); /* its status and cause */
                return;
            }
            r->upstream_error = true;
            if (r->error == NULL)
                r->error = why ? why : "upstream failed";
            if (result == -ETIMEDOUT)
                sy_server_error(r, 504, "upstream_error", "upstream_timeout", NULL, r->error);
            else
                sy_server_error(r, 502, "upstream_error", "upstream_unavailable", NULL, r->error);
            return;
        }
    }
    if (r->mode != SY_REQ_MODE_STREAM && !r->too_large && r->error != E_CLIENT_GONE &&
        (result != 0 || x->status < 200 || x->status > 299) &&
        try_failover(r, result != 0 ? 0 : (int)x->status, result, x->retry_after))
        return;
    if (r->mode == SY_REQ_MODE_STREAM && r->pstream != NULL) {
        /* Translated stream: the translator closes it ([DONE]) or ends it with
         * an error event (truncated stream, upstream failure). */
        if (r->error != E_CLIENT_GONE) {
            sy_buf_reset(&w->scratch);
            if (result != 0 || r->too_large) {
                sy_provider_error_t e;
                sy_provider_error_set(&e, 502, "upstream_error",
                                      result == -ETIMEDOUT ? "upstream_timeout" : "upstream_error",
                                      NULL, SY_CAUSE_PROVIDER, "%s", why ? why : "upstream failed");
                sy_provider_stream_fail(r->pstream, &e, &w->scratch);
            } else {
                sy_provider_stream_end(r->pstream, &w->scratch);
            }
            note_pstream(r, w->scratch.len);
            if (r->upstream_error && r->error == NULL)
                r->error = why;
            if (w->scratch.len > 0)
                emit(r, w->scratch.data, w->scratch.len);
            if (r->egress != NULL && !r->egress->done) {
                sy_buf_reset(&r->xlat);
                sy_anthropic_egress_end(r->egress, &r->xlat);
                sy_server_stream_write(r, r->xlat.data, r->xlat.len);
            }
        } else {
            r->conn->keep_alive = false;
        }
        if (!r->headers_sent)
            sy_server_stream_begin(r, (int)x->status, "text/event-stream");
        sy_server_stream_end(r);
        return;
    }
    if (r->mode == SY_REQ_MODE_STREAM) {
        if (result != 0 || r->too_large) {
            r->upstream_error = true;
            if (r->error == NULL)
                r->error = why;
            if (r->error != E_CLIENT_GONE) {
                /* After the first byte the status cannot change: end the
                 * stream with a well-formed error event. */
                sy_buf_reset(&w->scratch);
                sy_buf_append_str(&w->scratch, "data: ");
                sy_openai_error_json(&w->scratch, why ? why : "upstream failed", "upstream_error",
                                     NULL,
                                     result == -ETIMEDOUT ? "upstream_timeout" : "upstream_error");
                sy_buf_append_str(&w->scratch, "\n\n");
                emit(r, w->scratch.data, w->scratch.len);
            } else {
                r->conn->keep_alive = false;
            }
        }
        if (r->egress != NULL && !r->egress->done && r->error != E_CLIENT_GONE) {
            /* A passthrough stream that ended without [DONE]. */
            sy_buf_reset(&r->xlat);
            sy_anthropic_egress_end(r->egress, &r->xlat);
            sy_server_stream_write(r, r->xlat.data, r->xlat.len);
        }
        if (!r->headers_sent)
            sy_server_stream_begin(r, (int)x->status, "text/event-stream");
        sy_server_stream_end(r);
        return;
    }
    if (r->too_large) {
        sy_server_error(r, 502, "upstream_error", "upstream_response_too_large", NULL, E_TOO_LARGE);
        return;
    }
    if (result != 0) {
        r->upstream_error = true;
        if (result == -ETIMEDOUT)
            sy_server_error(r, 504, "upstream_error", "upstream_timeout", NULL, why);
        else if (r->error == E_CLIENT_GONE)
            sy_server_error(r, 499, "upstream_error", "client_closed", NULL, why);
        else
            sy_server_error(r, 502, "upstream_error", "upstream_unavailable", NULL, why);
        return;
    }
    answer_buffered(r, x);
}

void sy_proxy_on_drain(sy_req_t *r)
{
    if (r->xfer.active && r->xfer.paused)
        sy_upstream_resume(&r->xfer);
}

/* --- endpoints ----------------------------------------------------------------- */

/* SHA-256 of an API key. OpenSSL 3's SHA256() fetches the implementation
 * and sets up a context on every call, most of its cost for a short key; a
 * worker is one thread, so one fetched digest and one context serve all its
 * requests (kept for the process's life). */
static void key_digest(const char *k, size_t n, unsigned char out[SHA256_DIGEST_LENGTH])
{
    static EVP_MD *md;
    static EVP_MD_CTX *ctx;
    static bool failed;
    if (md == NULL && !failed) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        ctx = EVP_MD_CTX_new();
        failed = md == NULL || ctx == NULL;
    }
    unsigned int len = 0;
    if (failed || EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, k, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != SHA256_DIGEST_LENGTH)
        SHA256((const unsigned char *)k, n, out);
}

/* Authenticates r against its snapshot; answers and returns false on failure. */
static bool authenticate(sy_req_t *r)
{
    const sy_req_head_t *h = r->head; /* set while sy_proxy_handle runs */
    const char *k = h->auth;
    size_t n = h->auth_len;
    if (h->auth_is_bearer) {
        while (n > 0 && (*k == ' ' || *k == '\t'))
            k++, n--;
        if (n < 7 || strncasecmp(k, "bearer ", 7) != 0) {
            sy_server_error(r, 401, "invalid_request_error", "invalid_api_key", NULL, E_NO_KEY);
            return false;
        }
        k += 7;
        n -= 7;
    }
    sy_str_t key = sy_str_trim((sy_str_t){k, n});
    if (key.len == 0 || h->auth_too_long) {
        sy_server_error(r, 401, "invalid_request_error", "invalid_api_key", NULL,
                        key.len == 0 ? E_NO_KEY : E_BAD_KEY);
        return false;
    }
    sy_log_key_prefix(key.ptr, key.len, r->key_prefix, sizeof(r->key_prefix));
    unsigned char digest[SHA256_DIGEST_LENGTH];
    key_digest(key.ptr, key.len, digest);
    const sy_snapshot_key_t *sk = sy_snapshot_find_key(r->snap, digest);
    if (sk == NULL) {
        sy_server_error(r, 401, "invalid_request_error", "invalid_api_key", NULL, E_BAD_KEY);
        return false;
    }
    if (sk->pb->prefix[0] != '\0')
        snprintf(r->key_prefix, sizeof(r->key_prefix), "%s", sk->pb->prefix);
    if (sk->pb->expires_at != 0 && sk->pb->expires_at <= r->start_unix_ms / 1000) {
        r->key = sk;
        sy_server_error(r, 401, "invalid_request_error", "expired_api_key", NULL, E_EXPIRED_KEY);
        return false;
    }
    r->key = sk;
    if (sk->pb->blocked || (sk->tenant != NULL && sk->tenant->blocked) ||
        (sk->team != NULL && sk->team->blocked)) {
        sy_server_error(r, 403, "permission_error", "blocked", NULL, E_BLOCKED);
        return false;
    }
    return true;
}

static bool provider_is_openai(const Switchyard__Provider *p)
{
    return p->kind == SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_OPENAI ||
           p->kind == SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_OPENAI_COMPATIBLE ||
           p->kind == SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_UNSPECIFIED;
}

static void models_list(sy_req_t *r, sy_str_t only)
{
    sy_worker_t *w = worker_of(r);
    sy_buf_t *b = &w->scratch;
    sy_buf_reset(b);
    if (only.len == 0)
        sy_buf_append_str(b, "{\"object\":\"list\",\"data\":[");
    size_t n = sy_snapshot_model_count(r->snap), k = 0;
    int64_t created = (int64_t)(sy_snapshot_proto(r->snap)->created_at / 1000);
    for (size_t i = 0; i < n; i++) {
        const sy_snapshot_model_t *m = sy_snapshot_model_at(r->snap, i);
        sy_str_t id = sy_str_from_cstr(m->pb->id);
        if (!sy_snapshot_key_allows(r->key, id) || (only.len > 0 && !sy_str_eq(only, id)))
            continue;
        if (k++ > 0)
            sy_buf_append_str(b, ",");
        sy_buf_append_str(b, "{\"id\":");
        sy_buf_append_json_string(b, id.ptr, id.len);
        sy_buf_appendf(b,
                       ",\"object\":\"model\",\"created\":%lld,\"owned_by\":", (long long)created);
        const char *owner = m->provider
                                ? (m->provider->name[0] ? m->provider->name : m->provider->id)
                                : "switchyard";
        sy_buf_append_json_string(b, owner, strlen(owner));
        sy_buf_append_str(b, "}");
    }
    if (only.len == 0) {
        sy_buf_append_str(b, "]}");
    } else if (k == 0) {
        sy_server_error(r, 404, "invalid_request_error", "model_not_found", "model",
                        E_NO_MODEL_FOUND);
        return;
    }
    sy_server_respond(r, 200, NULL, b->data, b->len, NULL);
}

/* What the proxy reads from an OpenAI-format request body, taken in one
 * validating pass of the non-allocating scanner (common/jscan.h) instead of
 * a json-c tree, which costs some twenty allocations and ~100 instructions
 * a byte. Views point into the body. */
typedef struct body_scan {
    sy_str_t model;      /* the "model" string's bytes (it has no escapes) */
    sy_str_t model_raw;  /* its raw value, quotes included */
    bool stream;         /* "stream": true */
    bool client_usage;   /* stream_options.include_usage: true */
    sy_str_t so_raw;     /* raw "stream_options" value; empty when absent */
    sy_str_t iu_raw;     /* raw include_usage value in stream_options; empty when absent */
    bool so_empty;       /* stream_options is an object without members */
    sy_str_t max_tokens; /* raw values routing reads (empty when absent) */
    sy_str_t max_completion_tokens;
    sy_str_t metadata;
    size_t close_at; /* offset of the top-level object's closing brace */
} body_scan_t;

static int prepare_tree(sy_req_t *r, json_object *root);

static bool raw_key_plain(sy_str_t k)
{
    return memchr(k.ptr, '\\', k.len) == NULL;
}

/* Records v as the member's value; false for a second occurrence (json-c
 * keeps the last one, and splicing would have to agree on which). */
static bool take_once(sy_str_t *slot, sy_str_t v)
{
    if (slot->ptr != NULL)
        return false;
    *slot = v;
    return true;
}

/* Scans body. Returns false whenever anything is unusual (invalid JSON, not
 * an object, escaped or duplicate keys that matter, a model that is not a
 * plain non-empty string, a stream that is not a boolean or null): the
 * request then takes the json-c path, which reports every error as before. */
static bool scan_body(const char *body, size_t len, body_scan_t *s)
{
    memset(s, 0, sizeof(*s));
    sy_jscan_t it;
    sy_str_t k, v, doc, stream = SY_STR_NULL;
    if (body == NULL || !sy_jscan_begin_doc(&it, body, len))
        return false;
    int rc;
    while ((rc = sy_jscan_next(&it, &k, &v)) == 1) {
        if (!raw_key_plain(k))
            return false;
        bool ok = true;
        if (sy_jscan_key_is(k, "model"))
            ok = take_once(&s->model_raw, v);
        else if (sy_jscan_key_is(k, "stream"))
            ok = take_once(&stream, v);
        else if (sy_jscan_key_is(k, "stream_options"))
            ok = take_once(&s->so_raw, v);
        else if (sy_jscan_key_is(k, "max_tokens"))
            ok = take_once(&s->max_tokens, v);
        else if (sy_jscan_key_is(k, "max_completion_tokens"))
            ok = take_once(&s->max_completion_tokens, v);
        else if (sy_jscan_key_is(k, "metadata"))
            ok = take_once(&s->metadata, v);
        if (!ok)
            return false;
    }
    if (rc < 0 || !sy_jscan_end_doc(&it, &doc))
        return false;
    s->close_at = (size_t)(doc.ptr - body) + doc.len - 1;
    /* model: a plain string, not empty. */
    sy_str_t m = s->model_raw;
    if (m.len < 3 || m.ptr[0] != '"' || memchr(m.ptr, '\\', m.len) != NULL)
        return false;
    s->model = (sy_str_t){m.ptr + 1, m.len - 2};
    if (stream.ptr != NULL) {
        if (sy_str_eq_cstr(stream, "true"))
            s->stream = true;
        else if (!sy_str_eq_cstr(stream, "false") && !sy_str_eq_cstr(stream, "null"))
            return false;
    }
    if (s->so_raw.len > 0 && s->so_raw.ptr[0] == '{') {
        sy_jscan_t so;
        if (!sy_jscan_begin(&so, s->so_raw, true))
            return false;
        s->so_empty = true;
        while ((rc = sy_jscan_next(&so, &k, &v)) == 1) {
            s->so_empty = false;
            if (!raw_key_plain(k))
                return false;
            if (sy_jscan_key_is(k, "include_usage") && !take_once(&s->iu_raw, v))
                return false;
        }
        if (rc < 0)
            return false;
        s->client_usage = sy_str_eq_cstr(s->iu_raw, "true");
    }
    return true;
}

/* Copies body into out with the model value replaced by target (when
 * rename) and stream_options.include_usage forced to true (when
 * force_usage): the client's other bytes go upstream untouched. */
static int splice_body(const char *body, size_t len, const body_scan_t *s, const char *target,
                       bool rename, bool force_usage, sy_buf_t *out)
{
    typedef struct edit {
        size_t at, drop;  /* offset in body, bytes replaced */
        const char *text; /* inserted */
        bool json_target; /* insert target as a JSON string instead of text */
    } edit_t;
    edit_t e[2];
    size_t n = 0;
    if (rename)
        e[n++] = (edit_t){(size_t)(s->model_raw.ptr - body), s->model_raw.len, NULL, true};
    if (force_usage) {
        if (s->so_raw.ptr == NULL)
            e[n++] =
                (edit_t){s->close_at, 0, ",\"stream_options\":{\"include_usage\":true}", false};
        else if (s->so_raw.ptr[0] != '{')
            e[n++] = (edit_t){(size_t)(s->so_raw.ptr - body), s->so_raw.len,
                              "{\"include_usage\":true}", false};
        else if (s->iu_raw.ptr != NULL)
            e[n++] = (edit_t){(size_t)(s->iu_raw.ptr - body), s->iu_raw.len, "true", false};
        else
            e[n++] =
                (edit_t){(size_t)(s->so_raw.ptr - body) + 1, 0,
                         s->so_empty ? "\"include_usage\":true" : "\"include_usage\":true,", false};
    }
    if (n == 2 && e[1].at < e[0].at) {
        edit_t t = e[0];
        e[0] = e[1];
        e[1] = t;
    }
    int rc = sy_buf_reserve(out, len + strlen(target) + 64);
    size_t from = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc |= sy_buf_append(out, body + from, e[i].at - from);
        if (e[i].json_target)
            rc |= sy_buf_append_json_string(out, target, strlen(target));
        else
            rc |= sy_buf_append_str(out, e[i].text);
        from = e[i].at + e[i].drop;
    }
    if (rc == 0)
        rc = sy_buf_append(out, body + from, len - from);
    return rc != 0 ? SY_ENOMEM : 0;
}

/* The members routing reads (max_tokens, max_completion_tokens, metadata)
 * as a small json-c object, for sy_routing_begin. NULL when the body has
 * none of them (routing then takes them as absent) or out of memory (*nomem). */
static json_object *routing_inputs(sy_worker_t *w, const body_scan_t *s, bool *nomem)
{
    const struct {
        const char *key;
        sy_str_t raw;
    } m[] = {{"max_tokens", s->max_tokens},
             {"max_completion_tokens", s->max_completion_tokens},
             {"metadata", s->metadata}};
    json_object *o = NULL;
    *nomem = false;
    for (size_t i = 0; i < SY_ARRAY_LEN(m); i++) {
        if (m[i].raw.ptr == NULL)
            continue;
        if (o == NULL && (o = json_object_new_object()) == NULL)
            goto oom;
        json_object *v = NULL;
        const char *why;
        if (sy_json_parse(w->json, m[i].raw.ptr, m[i].raw.len, &v, &why) != 0)
            continue; /* cannot happen: the scanner validated it */
        if (json_object_object_add(o, m[i].key, v) != 0) {
            json_object_put(v);
            goto oom;
        }
    }
    return o;
oom:
    json_object_put(o);
    *nomem = true;
    return NULL;
}

/* Prepares the upstream body: rewrites the model name and forces
 * stream_options.include_usage only when needed, else forwards the client's
 * bytes untouched. Without a tree (root NULL), r->body holds an OpenAI
 * request: it is scanned (or scan describes it already) and edited in
 * place of a re-serialization; only what the scanner leaves to json-c is
 * parsed. */
static int prepare_body(sy_req_t *r, json_object *root, const body_scan_t *scan)
{
    json_object *own = NULL;
    if (root == NULL) {
        sy_worker_t *w = worker_of(r);
        body_scan_t local;
        if (scan == NULL && scan_body(r->body.data, r->body.len, &local))
            scan = &local;
        if (scan != NULL) {
            const sy_snapshot_model_t *m = r->model;
            const char *target = m->pb->upstream_name[0] ? m->pb->upstream_name : m->pb->id;
            bool rename = !sy_str_eq_cstr(scan->model, target);
            bool force_usage = r->stream && !r->client_usage;
            if (rename || force_usage) {
                sy_buf_reset(&w->scratch);
                if (splice_body(r->body.data, r->body.len, scan, target, rename, force_usage,
                                &w->scratch) != 0)
                    return SY_ENOMEM;
                sy_buf_t t = r->body; /* the edited copy becomes the body */
                r->body = w->scratch;
                w->scratch = t;
            }
            r->up_body = r->body.data;
            r->up_body_len = r->body.len;
            return 0;
        }
        const char *why;
        if (sy_json_parse(w->json, r->body.data, r->body.len, &own, &why) != 0)
            return SY_EINVAL;
        root = own;
    }
    int rc = prepare_tree(r, root);
    json_object_put(own);
    return rc;
}

/* prepare_body on a json-c tree. */
static int prepare_tree(sy_req_t *r, json_object *root)
{
    const sy_snapshot_model_t *m = r->model;
    const char *target = m->pb->upstream_name[0] ? m->pb->upstream_name : m->pb->id;
    size_t asked_len = 0;
    const char *asked = sy_json_get_string(root, "model", &asked_len);
    bool rename = asked == NULL || !sy_str_eq_cstr((sy_str_t){asked, asked_len}, target);
    bool rewrite = rename || r->anthropic_ingress; /* the client's bytes are Anthropic's */
    if (r->stream && !r->client_usage)
        rewrite = true;
    if (!rewrite) {
        r->up_body = r->body.data;
        r->up_body_len = r->body.len;
        return 0;
    }
    if (rename && json_object_object_add(root, "model", json_object_new_string(target)) != 0)
        return SY_ENOMEM;
    if (r->stream && !r->client_usage) {
        json_object *so = sy_json_get(root, "stream_options");
        if (so == NULL || json_object_get_type(so) != json_type_object) {
            so = json_object_new_object();
            if (so == NULL || json_object_object_add(root, "stream_options", so) != 0)
                return SY_ENOMEM;
        }
        if (json_object_object_add(so, "include_usage", json_object_new_boolean(1)) != 0)
            return SY_ENOMEM;
    }
    size_t len = 0;
    const char *text = sy_json_to_string(root, &len);
    if (text == NULL)
        return SY_ENOMEM;
    /* Keep only the bytes: the parsed tree is much larger than its text and
     * would stay alive for the whole stream. */
    sy_buf_reset(&r->body);
    if (sy_buf_append(&r->body, text, len) != 0)
        return SY_ENOMEM;
    r->up_body = r->body.data;
    r->up_body_len = r->body.len;
    return 0;
}

/* Builds the upstream request for an Anthropic or Gemini provider from the
 * client's OpenAI request; answers (and returns nonzero) when it cannot be
 * translated. The translated body replaces the client's in r->body. */
static int translate_request(sy_req_t *r, json_object *root, const Switchyard__Provider *prov,
                             sy_provider_request_t *preq)
{
    const Switchyard__Model *m = r->model->pb;
    sy_provider_target_t t = {
        .upstream_model = sy_str_from_cstr(m->upstream_name[0] ? m->upstream_name : m->id),
        .api_key = sy_str_from_cstr(prov->api_key),
        .default_max_tokens = m->default_max_tokens,
        .caps = sy_provider_caps_from((const char *const *)m->capabilities, m->n_capabilities),
    };
    sy_provider_error_t e;
    int rc = r->adapter->build_request(&t, root, preq, &e);
    if (rc != 0) {
        if (rc == SY_EINVAL)
            reply_provider_error(r, &e, NULL);
        else
            sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
        return rc;
    }
    sy_buf_free(&r->body);
    r->body = preq->body;
    sy_buf_init(&preq->body);
    r->up_body = r->body.data;
    r->up_body_len = r->body.len;
    return 0;
}

static void start_attempt(sy_req_t *r, json_object *root, const body_scan_t *scan);

/* Starts another attempt of r on the target sy_routing_next chose, from
 * the OpenAI-format request kept at the first attempt. */
static void retry_attempt(sy_req_t *r)
{
    sy_buf_reset(&r->body);
    if (sy_buf_append(&r->body, r->rt->canon.data, r->rt->canon.len) != 0) {
        sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
        return;
    }
    start_attempt(r, NULL, NULL);
}

void sy_proxy_resume(sy_req_t *r)
{
    retry_attempt(r);
}

/* Keeps the OpenAI-format request for a later attempt on another target
 * or for a parked first one (see relay). Returns false after answering. */
static bool keep_canon(sy_req_t *r, const char *text, size_t len)
{
    sy_buf_reset(&r->rt->canon);
    if (text == NULL || sy_buf_append(&r->rt->canon, text, len) != 0) {
        sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
        return false;
    }
    return true;
}

/* relay for a body the scanner read (no json-c tree). */
static void relay_scanned(sy_req_t *r, const body_scan_t *scan)
{
    bool nomem;
    json_object *in = routing_inputs(worker_of(r), scan, &nomem);
    if (nomem) {
        sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
        return;
    }
    bool admitted = sy_routing_begin(r, scan->model, in);
    json_object_put(in);
    if (!admitted)
        return;
    if (!r->embeddings) {
        r->stream = scan->stream;
        r->client_usage = scan->stream && scan->client_usage;
    }
    if (r->rt != NULL && (r->rt->route != NULL || r->rt->parked) &&
        !keep_canon(r, r->body.data, r->body.len))
        return;
    if (r->rt != NULL && r->rt->parked)
        return; /* sy_proxy_resume starts it once the budget lease is there */
    start_attempt(r, NULL, scan);
}

static void relay(sy_req_t *r)
{
    sy_worker_t *w = worker_of(r);
    /* Content type: JSON only (parameters such as charset allowed). */
    sy_str_t ct = sy_str_trim((sy_str_t){r->head->ctype, r->head->ctype_len});
    if (ct.len < 16 || strncasecmp(ct.ptr, "application/json", 16) != 0 ||
        (ct.len > 16 && ct.ptr[16] != ';' && ct.ptr[16] != ' ')) {
        sy_server_error(r, 415, "invalid_request_error", "unsupported_media_type", NULL, E_CTYPE);
        return;
    }
    if (r->body.len == 0) {
        sy_server_error(r, 400, "invalid_request_error", "invalid_json", NULL, E_EMPTY);
        return;
    }
    body_scan_t scan;
    if (!r->anthropic_ingress && scan_body(r->body.data, r->body.len, &scan)) {
        relay_scanned(r, &scan);
        return;
    }
    json_object *root = NULL;
    const char *why = NULL;
    if (sy_json_parse(w->json, r->body.data, r->body.len, &root, &why) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "We could not parse the JSON body of your request: %s.", why);
        r->error = "invalid JSON";
        sy_server_error(r, 400, "invalid_request_error", "invalid_json", NULL, msg);
        return;
    }
    r->json = root;
    if (json_object_get_type(root) != json_type_object) {
        sy_server_error(r, 400, "invalid_request_error", "invalid_json", NULL, E_NOT_OBJECT);
        return;
    }
    if (r->anthropic_ingress) {
        /* /v1/messages: continue with the equivalent OpenAI chat request. */
        json_object *oai = NULL;
        sy_provider_error_t pe;
        int rc = sy_anthropic_ingress_request(root, &oai, &pe);
        if (rc != 0) {
            if (rc == SY_EINVAL)
                reply_provider_error(r, &pe, NULL);
            else
                sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
            return;
        }
        json_object_put(root);
        r->json = root = oai;
    }
    size_t mlen = 0;
    const char *mname = sy_json_get_string(root, "model", &mlen);
    if (mname == NULL || mlen == 0) {
        sy_server_error(r, 400, "invalid_request_error", "missing_required_parameter", "model",
                        E_NO_MODEL);
        return;
    }
    /* Admission (rate limits, budgets) and routing: sets the first target. */
    if (!sy_routing_begin(r, (sy_str_t){mname, mlen}, root))
        return;
    if (!r->embeddings) {
        json_object *st = sy_json_get(root, "stream");
        if (st != NULL && json_object_get_type(st) != json_type_null) {
            if (json_object_get_type(st) != json_type_boolean) {
                sy_server_error(r, 400, "invalid_request_error", "invalid_type", "stream",
                                E_STREAM_BOOL);
                return;
            }
            r->stream = json_object_get_boolean(st);
        }
        if (r->stream) {
            json_object *so = sy_json_get_object(root, "stream_options");
            bool iu = false;
            if (so != NULL && sy_json_get_bool(so, "include_usage", &iu) == 0)
                r->client_usage = iu;
        }
    }
    if (r->rt != NULL && (r->rt->route != NULL || r->rt->parked)) {
        /* Keep the OpenAI-format request for a later attempt on another
         * target (the body below becomes that target's), or for the first
         * one when admission waits for a budget lease. */
        size_t clen = 0;
        const char *ctext = r->anthropic_ingress ? sy_json_to_string(root, &clen) : r->body.data;
        if (!r->anthropic_ingress)
            clen = r->body.len;
        if (!keep_canon(r, ctext, clen))
            return;
    }
    if (r->rt != NULL && r->rt->parked)
        return; /* sy_proxy_resume starts it once the budget lease is there */
    start_attempt(r, root, NULL);
}

/* Writes "name: value" (NUL-terminated) at *off in buf and advances *off;
 * NULL when it does not fit. Copies, no printf: it runs per request. */
static const char *header_line(char *buf, size_t cap, size_t *off, const char *name,
                               const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (cap - *off < nl + 2 + vl + 1)
        return NULL;
    char *line = buf + *off;
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
    *off += nl + 2 + vl + 1;
    return line;
}

/* Starts the upstream transfer of r for its current target (r->model,
 * r->rt.provider) from the OpenAI-format request root, or without a tree
 * (root NULL) from the OpenAI request in r->body (scan: its reading, or
 * NULL); answers the client when it cannot. root stays the caller's. */
static void start_attempt(sy_req_t *r, json_object *root, const body_scan_t *scan)
{
    sy_worker_t *w = worker_of(r);
    const char *endpoint = r->embeddings ? "/embeddings" : "/chat/completions";
    const Switchyard__Provider *prov = r->provider;
    if (prov == NULL || prov->base_url[0] == '\0') {
        sy_server_error(r, 500, "server_error", "provider_not_configured", NULL, E_NO_PROVIDER);
        return;
    }
    r->adapter = NULL;
    if (!provider_is_openai(prov)) {
        r->adapter = sy_provider_for((sy_provider_family_t)prov->kind);
        if (r->adapter == NULL || r->embeddings) {
            sy_server_error(r, 501, "server_error", "provider_not_supported", NULL, E_KIND);
            return;
        }
    }
    sy_provider_request_t preq;
    sy_provider_request_init(&preq);
    if (r->adapter != NULL) {
        /* The translators read a tree. */
        json_object *own = NULL;
        const char *why;
        if (root == NULL) {
            if (sy_json_parse(w->json, r->body.data, r->body.len, &own, &why) != 0) {
                sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
                return;
            }
            root = own;
        }
        int trc = translate_request(r, root, prov, &preq);
        json_object_put(own);
        if (root == own)
            root = NULL;
        if (trc != 0)
            return;
    } else if (prepare_body(r, root, scan) != 0) {
        sy_server_error(r, 500, "server_error", "internal_error", NULL, E_NOMEM);
        return;
    }
    if (root != NULL && r->json == root) {
        json_object_put(root);
        r->json = NULL;
    }
    /* URL: base_url (with its /v1) + the endpoint. */
    sy_buf_reset(&r->up_url);
    size_t bl = strlen(prov->base_url);
    while (bl > 0 && prov->base_url[bl - 1] == '/')
        bl--;
    sy_buf_append(&r->up_url, prov->base_url, bl);
    if (r->adapter != NULL)
        sy_buf_append(&r->up_url, preq.path.data, preq.path.len);
    else
        sy_buf_append_str(&r->up_url, endpoint);
    /* Extra headers: the provider's, then our request id. */
    char hbuf[2048];
    const char *hdrs[MAX_EXTRA_HEADERS + SY_PROVIDER_MAX_HEADERS + 2];
    size_t nh = 0, off = 0;
    for (size_t i = 0; i < preq.n_headers; i++)
        hdrs[nh++] = preq.headers[i]; /* the adapter's auth and version headers */
    for (size_t i = 0; i < prov->n_headers && nh < MAX_EXTRA_HEADERS; i++) {
        const char *line =
            header_line(hbuf, sizeof(hbuf), &off, prov->headers[i]->key, prov->headers[i]->value);
        if (line == NULL)
            break;
        hdrs[nh++] = line;
    }
    const char *rid = header_line(hbuf, sizeof(hbuf), &off, "X-Request-Id", r->id);
    if (rid != NULL)
        hdrs[nh++] = rid;
    hdrs[nh] = NULL;
    sy_upstream_req_t ur = {
        .url = r->up_url.data,
        .method = "POST",
        .body = r->up_body,
        .body_len = r->up_body_len,
        .bearer = r->adapter != NULL ? NULL : prov->api_key,
        .headers = hdrs,
        .connect_timeout_ms = prov->connect_timeout_ms
                                  ? prov->connect_timeout_ms
                                  : (uint32_t)w->cfg.upstream_connect_timeout_ms,
        .first_byte_timeout_ms = prov->first_byte_timeout_ms
                                     ? prov->first_byte_timeout_ms
                                     : (uint32_t)w->cfg.upstream_first_byte_timeout_ms,
        .idle_timeout_ms = (uint32_t)w->cfg.upstream_idle_timeout_ms,
        .total_timeout_ms = prov->total_timeout_ms ? prov->total_timeout_ms
                                                   : (uint32_t)w->cfg.upstream_total_timeout_ms,
        .stream = r->stream,
    };
    sy_routing_attempt_start(r);
    int started = sy_upstream_start(w->upstream, &r->xfer, &ur, &CBS, r);
    sy_provider_request_free(&preq); /* the upstream client copied the URL and headers */
    if (started != 0) {
        sy_server_error(r, 502, "upstream_error", "upstream_unavailable", NULL, E_UPSTREAM_START);
        return;
    }
    sy_buf_reset(&r->resp);
}

void sy_proxy_handle(sy_req_t *r)
{
    sy_worker_t *w = worker_of(r);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->start_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* Strip the query string. */
    char *q = memchr(r->path, '?', r->path_len);
    size_t plen = q ? (size_t)(q - r->path) : r->path_len;
    if (q != NULL) {
        *q = '\0';
        r->path_len = plen;
    }
    bool get = r->method == HTTP_GET || r->method == HTTP_HEAD;
    bool post = r->method == HTTP_POST;

    if (path_is(r, "/healthz", &plen)) {
        if (!get) {
            sy_server_error(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                            "Method not allowed.");
            return;
        }
        sy_server_respond(r, 200, NULL, "{\"status\":\"ok\"}", 15, NULL);
        return;
    }
    if (path_is(r, "/readyz", &plen)) {
        if (!get) {
            sy_server_error(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                            "Method not allowed.");
            return;
        }
        if (w->snap == NULL) {
            sy_server_error(r, 503, "server_error", "not_ready", NULL, E_NOT_READY);
            return;
        }
        char body[96];
        int n = snprintf(body, sizeof(body), "{\"status\":\"ready\",\"snapshot_version\":%llu}",
                         (unsigned long long)sy_snapshot_version(w->snap));
        sy_server_respond(r, 200, NULL, body, (size_t)n, NULL);
        return;
    }
    enum { EP_NONE, EP_CHAT, EP_EMB, EP_MODELS, EP_MODEL, EP_MESSAGES } ep = EP_NONE;
    bool method_ok = false;
    sy_str_t model_id = SY_STR_NULL;
    if (path_is(r, "/v1/chat/completions", &plen)) {
        ep = EP_CHAT;
        method_ok = post;
    } else if (path_is(r, "/v1/messages", &plen)) {
        ep = EP_MESSAGES;
        method_ok = post;
        r->anthropic_ingress = true; /* answers, errors included, in Anthropic's format */
    } else if (path_is(r, "/v1/embeddings", &plen)) {
        ep = EP_EMB;
        method_ok = post;
    } else if (path_is(r, "/v1/models", &plen)) {
        ep = EP_MODELS;
        method_ok = get;
    } else if (plen > 11 && memcmp(r->path, "/v1/models/", 11) == 0) {
        ep = EP_MODEL;
        method_ok = get;
        model_id = (sy_str_t){r->path + 11, plen - 11};
    }
    if (ep == EP_NONE) {
        char msg[SY_REQ_PATH_MAX + 64];
        snprintf(msg, sizeof(msg), "Unknown request URL: %s %.*s.",
                 llhttp_method_name((llhttp_method_t)r->method), (int)(plen > 200 ? 200 : plen),
                 r->path);
        sy_server_error(r, 404, "invalid_request_error", "unknown_url", NULL, msg);
        return;
    }
    if (!method_ok) {
        sy_server_error(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                        "Method not allowed for this URL.");
        return;
    }
    if (w->snap == NULL) {
        sy_server_error(r, 503, "server_error", "not_ready", NULL, E_NOT_READY);
        return;
    }
    r->snap = sy_snapshot_ref(w->snap);
    if (!authenticate(r))
        return;
    switch (ep) {
    case EP_MODELS:
        models_list(r, SY_STR_NULL);
        return;
    case EP_MODEL:
        models_list(r, model_id);
        return;
    case EP_EMB:
        r->embeddings = true;
        relay(r);
        return;
    case EP_MESSAGES:
        relay(r);
        return;
    default:
        relay(r);
        return;
    }
}
