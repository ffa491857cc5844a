/* The mock provider: one process that speaks the OpenAI, Anthropic and Gemini
 * wire formats on one port, with deterministic usage and scriptable faults.
 * It is the upstream for gateway tests and benchmarks (README.md beside this
 * file documents the rules tests rely on).
 *
 * Modules: usage.c (token counts and the answer), faults.c (fault specs and
 * per-instance rules), stats.c (counters, last request), openai.c,
 * anthropic.c, gemini.c (wire formats), server.c (libuv + llhttp), main.c. */
#ifndef SY_MOCK_H
#define SY_MOCK_H

#include <string.h>
#include <json-c/json.h>
#include <uv.h>
#include "buf.h"
#include "defs.h"

typedef enum sy_mock_provider {
    SY_MOCK_OPENAI = 0,
    SY_MOCK_ANTHROPIC = 1,
    SY_MOCK_GEMINI = 2,
} sy_mock_provider_t;

/* Endpoints, as counted in /_mock/stats and matched by fault rules. */
typedef enum sy_mock_endpoint {
    SY_MOCK_EP_CHAT = 0,        /* POST /v1/chat/completions */
    SY_MOCK_EP_EMBEDDINGS,      /* POST /v1/embeddings */
    SY_MOCK_EP_MODELS,          /* GET /v1/models, /v1/models/{id} */
    SY_MOCK_EP_MESSAGES,        /* POST /v1/messages */
    SY_MOCK_EP_GENERATE,        /* POST /v1beta/models/{m}:generateContent */
    SY_MOCK_EP_STREAM_GENERATE, /* POST /v1beta/models/{m}:streamGenerateContent */
    SY_MOCK_EP_OTHER,           /* anything else (404s, bad requests) */
    SY_MOCK_EP_COUNT,
} sy_mock_endpoint_t;

/* Name of an endpoint in stats and fault rules ("chat_completions", ...). */
const char *sy_mock_endpoint_name(sy_mock_endpoint_t ep);
/* Parses such a name; writes *out only on success. */
int sy_mock_endpoint_parse(const char *s, size_t n, sy_mock_endpoint_t *out);

/* ---- usage.c: the deterministic token rule and the answer ---------------- */

#define SY_MOCK_ECHO_WORDS 8       /* words of the last user message echoed */
#define SY_MOCK_MAX_WORDS 10000000 /* cap on x-mock-words */
#define SY_MOCK_ARG_FRAGMENT 8     /* bytes per streamed tool-argument fragment */

/* Counts whitespace-separated words (runs of bytes other than space, \t, \n,
 * \r, \f, \v) in s[0..n). */
int64_t sy_mock_usage_words(const char *s, size_t n);

/* Prompt tokens of a parsed request body in the given format: the words of
 * all text content plus one per message (the system prompt counts as one
 * message when present). For embeddings (provider OPENAI, embeddings true):
 * words of string inputs plus the length of token-array inputs. Never fails;
 * malformed parts count zero. */
int64_t sy_mock_usage_prompt_tokens(sy_mock_provider_t prov, bool embeddings, json_object *req);

/* The answer the mock gives to one request. Views borrow from the request
 * body, which must outlive the answer. */
typedef struct sy_mock_answer {
    sy_str_t base[SY_MOCK_ECHO_WORDS + 1]; /* borrowed; "Echo:" then the echoed words */
    size_t nbase;                          /* words in base (>= 1) */
    int64_t nwords;                        /* words in the text answer */
    bool tool;                             /* answer is a call of the first tool */
    sy_str_t tool_name;                    /* borrowed from the request; when tool */
    sy_buf_t args;                         /* owned; tool arguments as JSON text */
    bool raw; /* base[1..] are verbatim JSON string content (no escape needed) */
} sy_mock_answer_t;

/* Derives the answer from a parsed request: a tool call when the request
 * declares tools, else "Echo:" followed by the first SY_MOCK_ECHO_WORDS words
 * of the last user message. words >= 0 overrides the number of text words
 * (taken cyclically from that list). Returns 0 or SY_ENOMEM; *a is
 * initialized either way and must be released with sy_mock_answer_free. */
int sy_mock_answer_build(sy_mock_provider_t prov, json_object *req, int64_t words,
                         sy_mock_answer_t *a);
void sy_mock_answer_free(sy_mock_answer_t *a);
/* The pieces of sy_mock_answer_build, shared with the scanner path (fast.c):
 * init leaves "Echo:" alone in base; take_words adds up to
 * SY_MOCK_ECHO_WORDS words of s; args appends the tool arguments for the
 * property key (SY_STR_NULL: none, giving {}) of JSON-schema type. */
void sy_mock_answer_init(sy_mock_answer_t *a);
void sy_mock_answer_take_words(sy_mock_answer_t *a, const char *s, size_t n);
int sy_mock_answer_args(sy_mock_answer_t *a, sy_str_t key, sy_str_t type);
/* Word i of the text answer. */
sy_str_t sy_mock_answer_word(const sy_mock_answer_t *a, int64_t i);
/* Appends the whole text answer (words joined by one space) as raw bytes. */
int sy_mock_answer_text(const sy_mock_answer_t *a, sy_buf_t *out);
/* Appends the whole text answer as one quoted JSON string. */
int sy_mock_answer_text_json(const sy_mock_answer_t *a, sy_buf_t *out);
/* Completion tokens: nwords for text; 1 + words(arguments) for a tool call. */
int64_t sy_mock_answer_tokens(const sy_mock_answer_t *a);
/* Number of SY_MOCK_ARG_FRAGMENT-sized fragments of the tool arguments, and
 * fragment i (cut only at UTF-8 character boundaries). */
size_t sy_mock_answer_fragments(const sy_mock_answer_t *a);
sy_str_t sy_mock_answer_fragment(const sy_mock_answer_t *a, size_t i);

/* ---- faults.c --------------------------------------------------------------- */

typedef enum sy_mock_reset {
    SY_MOCK_RESET_NONE = 0,
    SY_MOCK_RESET_BEFORE, /* RST before any response byte */
    SY_MOCK_RESET_AFTER,  /* RST after `reset_after` stream events (or half the body) */
} sy_mock_reset_t;

typedef struct sy_mock_fault {
    int64_t latency_ms;         /* delay before the first response byte */
    int64_t chunk_delay_ms;     /* delay between stream events */
    int status;                 /* answer with this error status (0 = none) */
    int64_t retry_after;        /* seconds for retry-after (-1 = none) */
    sy_mock_reset_t reset;      /* connection reset */
    int64_t reset_after;        /* events before a mid-stream reset */
    bool stall;                 /* send the response head, then nothing */
    bool malformed;             /* corrupt the body / insert a broken SSE event */
    bool stream_error;          /* end the stream with an in-stream error event */
    int64_t stream_error_after; /* events before that error */
    bool ratelimit;             /* send the provider's rate-limit headers */
    int64_t rl_requests;        /* remaining requests announced */
    int64_t rl_tokens;          /* remaining tokens announced */
    int64_t rl_reset_s;         /* seconds until the limits reset */
    /* Wire-level faults (HTTP/1.1 framing a hand-written client must get right). */
    bool conn_close;          /* answer with Connection: close, then close */
    bool no_length;           /* no Content-Length, not chunked: the body ends at the close */
    bool chunked;             /* plain answer in small chunks, one extension, a trailer */
    bool trickle;             /* the first SY_MOCK_TRICKLE_BYTES written one byte per tick */
    bool interim;             /* 100 Continue and 103 Early Hints before the answer */
    bool garbage;             /* a reply that is not HTTP, then close */
    int64_t huge_headers_kib; /* KiB of extra x-pad-N headers in the head (0 = none) */
    bool short_body;          /* Content-Length larger than the body sent, then close */
    bool silent_close;        /* close a keep-alive connection right after the answer */
    int64_t silent_close_ms;  /* delay of that close; -1 = varies over 0..20 ms per request */
    bool any;                 /* at least one key was set */
} sy_mock_fault_t;

#define SY_MOCK_TRICKLE_BYTES 400      /* bytes of a trickled response sent one at a time */
#define SY_MOCK_TRICKLE_TICK_MS 1      /* pause between those bytes */
#define SY_MOCK_HUGE_HEADERS_KIB 200   /* default size of huge_headers */
#define SY_MOCK_SILENT_CLOSE_MAX_MS 20 /* silent_close without a value varies up to this */

void sy_mock_fault_init(sy_mock_fault_t *f);
/* Parses "key=value; key=value" (',' also separates) as sent in the
 * x-mock-fault header into *f (keys add to what *f holds). Returns 0, or
 * SY_EINVAL with *why set to a constant message. */
int sy_mock_fault_parse(const char *s, size_t n, sy_mock_fault_t *f, const char **why);
/* The same keys as members of a JSON object (numbers, booleans or strings). */
int sy_mock_fault_parse_json(json_object *o, sy_mock_fault_t *f, const char **why);
/* Appends the fault as a JSON object. */
int sy_mock_fault_to_json(const sy_mock_fault_t *f, sy_buf_t *out);

#define SY_MOCK_MAX_RULES 64

/* Per-instance fault rules set by POST /_mock/faults. */
typedef struct sy_mock_rule {
    sy_mock_fault_t fault; /* what to inject */
    int64_t remaining;     /* requests left (-1 = every request) */
    int endpoint;          /* sy_mock_endpoint_t, or -1 = any */
} sy_mock_rule_t;

typedef struct sy_mock_faults {
    sy_mock_rule_t rules[SY_MOCK_MAX_RULES]; /* in order of addition */
    size_t n;                                /* rules in use */
} sy_mock_faults_t;

void sy_mock_faults_init(sy_mock_faults_t *fs);
void sy_mock_faults_clear(sy_mock_faults_t *fs);
/* Adds rules from a POST /_mock/faults body: an object {"fault": {...} or
 * "k=v;..", "count": N, "endpoint": "chat_completions"} or an array of them.
 * Returns 0, SY_EINVAL (*why set) or SY_E2BIG (too many rules). */
int sy_mock_faults_add_json(sy_mock_faults_t *fs, json_object *body, const char **why);
/* Takes the first rule matching ep that has requests left, consuming one.
 * Returns true and writes *out when one applies. */
bool sy_mock_faults_take(sy_mock_faults_t *fs, sy_mock_endpoint_t ep, sy_mock_fault_t *out);
int sy_mock_faults_to_json(const sy_mock_faults_t *fs, sy_buf_t *out);

/* ---- stats.c ---------------------------------------------------------------- */

typedef struct sy_mock_ep_stats {
    uint64_t received;      /* requests routed to this endpoint */
    uint64_t completed;     /* responses written in full (errors included) */
    uint64_t aborted;       /* client went away before the response was complete */
    uint64_t faults;        /* requests that had a fault injected */
    uint64_t errors;        /* responses with status >= 400 */
    bool has_last;          /* last_* below are set */
    sy_buf_t last_method;   /* owned; method of the last request */
    sy_buf_t last_path;     /* owned; target of the last request */
    sy_buf_t last_headers;  /* owned; its headers as "name:value\n" lines */
    sy_buf_t last_body;     /* owned; its body, up to SY_MOCK_STATS_BODY bytes */
    uint64_t last_body_len; /* full body length */
} sy_mock_ep_stats_t;

#define SY_MOCK_STATS_BODY (64 * 1024)

typedef struct sy_mock_stats {
    const char *name;                        /* borrowed; instance name */
    sy_mock_ep_stats_t ep[SY_MOCK_EP_COUNT]; /* per endpoint */
    int last_ep;                             /* endpoint of the last request, -1 none */
    uint64_t connections;                    /* connections accepted */
} sy_mock_stats_t;

void sy_mock_stats_init(sy_mock_stats_t *s, const char *name);
void sy_mock_stats_free(sy_mock_stats_t *s);
/* Zeroes counters and forgets the last requests (keeps allocations). */
void sy_mock_stats_reset(sy_mock_stats_t *s);
/* Appends the stats document (see README.md). */
int sy_mock_stats_to_json(const sy_mock_stats_t *s, sy_buf_t *out);

/* ---- provider formats (openai.c, anthropic.c, gemini.c) ---------------------- */

/* One request as the formats see it. */
typedef struct sy_mock_req {
    sy_mock_endpoint_t ep;   /* which endpoint */
    sy_mock_provider_t prov; /* which wire format */
    json_object *body;       /* owned; parsed request body (NULL for GET) */
    sy_str_t model;          /* borrowed from body or target */
    bool model_raw;          /* model is verbatim JSON string content (no escape needed) */
    bool stream;             /* streamed answer requested */
    bool include_usage;      /* OpenAI stream_options.include_usage */
    sy_mock_answer_t ans;    /* the answer */
    int64_t prompt_tokens;   /* sy_mock_usage_prompt_tokens */
    int64_t cached_tokens;   /* from x-mock-cached-tokens, <= prompt_tokens */
    int64_t created;         /* unix seconds */
    const char *name;        /* borrowed; instance name */
    char id[96];             /* response id, unique per instance */
} sy_mock_req_t;

/* The request analysis without a JSON tree (fast.c): one validating pass
 * with the common scanner (jscan.h), then views into body. For a valid
 * chat/messages/generate request whose interpreted strings and keys hold no
 * escapes and whose numbers have fewer than 19 digits, fills r->model
 * (OpenAI/Anthropic), r->stream and r->include_usage (OpenAI/Anthropic),
 * r->ans (words as in sy_mock_answer_build), r->prompt_tokens, exactly as
 * the json-c path would, and returns 0. Anything else (invalid, unusual or
 * an embeddings request) returns SY_EAGAIN with r->ans released: the caller
 * then takes the json-c path, which gives the same answer or the error. */
int sy_mock_fast_request(sy_mock_req_t *r, const char *body, size_t len, int64_t words);

/* Error bodies in each provider's own shape for status. message may be NULL
 * (a default per status). For OpenAI, code may be NULL (JSON null). */
int sy_mock_openai_error(int status, const char *message, const char *param, const char *code,
                         sy_buf_t *out);
int sy_mock_anthropic_error(int status, const char *message, sy_buf_t *out);
int sy_mock_gemini_error(int status, const char *message, const char *reason, int64_t retry_after,
                         sy_buf_t *out);

/* Validates the body of a request in the format; on failure writes a
 * constant message and param name (may be NULL) and returns SY_EINVAL. */
int sy_mock_openai_validate(const sy_mock_req_t *r, const char **why, const char **param);
int sy_mock_anthropic_validate(const sy_mock_req_t *r, const char **why);
int sy_mock_gemini_validate(const sy_mock_req_t *r, const char **why);

/* Non-streaming bodies. */
int sy_mock_openai_chat(const sy_mock_req_t *r, sy_buf_t *out);
int sy_mock_openai_embeddings(const sy_mock_req_t *r, sy_buf_t *out);
int sy_mock_openai_models(const char *name, sy_str_t id, sy_buf_t *out);
int sy_mock_gemini_models(const char *name, sy_str_t id, sy_buf_t *out);
int sy_mock_anthropic_message(const sy_mock_req_t *r, sy_buf_t *out);
int sy_mock_gemini_generate(const sy_mock_req_t *r, sy_buf_t *out);

/* The provider's in-stream error event (after a 200 has started): OpenAI a
 * data event with an "error" object (server_error), Anthropic `event: error`
 * (overloaded_error), Gemini a data event with a google.rpc error (503). */
int sy_mock_openai_stream_error(sy_buf_t *out);
int sy_mock_anthropic_stream_error(sy_buf_t *out);
int sy_mock_gemini_stream_error(sy_buf_t *out);

/* Streams: the number of SSE events, and event i appended with its framing. */
size_t sy_mock_openai_stream_count(const sy_mock_req_t *r);
int sy_mock_openai_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out);
size_t sy_mock_anthropic_stream_count(const sy_mock_req_t *r);
int sy_mock_anthropic_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out);
size_t sy_mock_gemini_stream_count(const sy_mock_req_t *r);
int sy_mock_gemini_stream_event(const sy_mock_req_t *r, size_t i, sy_buf_t *out);

/* Appends r->model as a quoted JSON string. */
int sy_mock_model_json(const sy_mock_req_t *r, sy_buf_t *out);
/* Appends s as a quoted JSON string / escaped without quotes (usage.c). */
int sy_mock_json_str(sy_buf_t *out, sy_str_t s);
int sy_mock_json_escape(sy_buf_t *out, sy_str_t s);
/* Appends n bytes; inline when they fit (responses are many short pieces,
 * the buffers are reused, so they nearly always do). Same contract as
 * sy_buf_append. */
static inline int sy_mock_put(sy_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return sy_buf_append(b, p, n);
}
/* Appends a string literal (its length known at compile time). */
#define SY_MOCK_LIT(b, lit) sy_mock_put((b), (lit), sizeof(lit) - 1)
/* Appends v in decimal (the hot paths avoid printf). */
int sy_mock_put_i64(sy_buf_t *out, int64_t v);

/* ---- server.c ------------------------------------------------------------------ */

typedef struct sy_mock_server sy_mock_server_t;

typedef struct sy_mock_server_opts {
    const char *host;    /* borrowed; listen address */
    int port;            /* 0 = pick one */
    const char *name;    /* borrowed; instance name ([A-Za-z0-9._-]) */
    const char *api_key; /* borrowed; accepted credential, "" = accept any */
    int64_t max_body;    /* cap on request bodies (bytes) */
} sy_mock_server_opts_t;

/* Starts listening on loop. Writes *out only on success; returns SY_E* or a
 * libuv error. The options' strings must outlive the server. */
int sy_mock_server_start(uv_loop_t *loop, const sy_mock_server_opts_t *opts,
                         sy_mock_server_t **out);
/* The bound port. */
int sy_mock_server_port(const sy_mock_server_t *srv);
/* Stops listening and closes every connection; the server is freed once all
 * of its handles are closed (the loop then ends on its own). */
void sy_mock_server_close(sy_mock_server_t *srv);

#endif
