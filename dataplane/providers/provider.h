/* Provider adapters: translation between the OpenAI chat format that clients
 * speak and each upstream family (OpenAI and OpenAI-compatible, Anthropic
 * Messages, Gemini generateContent).
 *
 * The library is pure: no sockets, no clock, no globals. The request path
 * (dataplane/) parses the client's body, picks a target, asks the adapter for
 * the upstream request, sends it, and then hands the answer back: a whole body
 * to parse_response, or stream bytes to a sy_provider_stream_t that emits
 * OpenAI chunks ("data: {...}\n\n", ending in "data: [DONE]\n\n" or an error
 * event) event by event, never buffering the whole stream.
 *
 * Errors for the client are described by sy_provider_error_t: an HTTP status,
 * OpenAI's error fields (constant strings), a message and who caused it. */
#ifndef SY_PROVIDER_H
#define SY_PROVIDER_H

#include <json-c/json.h>
#include "defs.h"
#include "buf.h"
#include "sse.h"

/* Provider families; values match proto ProviderKind (OPENAI_COMPATIBLE uses
 * the OpenAI adapter). */
typedef enum sy_provider_family {
    SY_PROVIDER_OPENAI = 1,
    SY_PROVIDER_ANTHROPIC = 2,
    SY_PROVIDER_GEMINI = 3,
    SY_PROVIDER_OPENAI_COMPATIBLE = 4,
} sy_provider_family_t;

/* Default Anthropic max_tokens when neither the client nor the model's
 * configuration gives one. */
#define SY_PROVIDER_DEFAULT_MAX_TOKENS 4096
#define SY_PROVIDER_MAX_HEADERS 4
/* Cap on one upstream SSE event (Gemini may put a whole image in one). */
#define SY_PROVIDER_MAX_EVENT (8u << 20)
/* Cap on the tool calls (OpenAI) or content blocks (Anthropic) one stream tracks. */
#define SY_PROVIDER_MAX_TOOLS 128
/* Cap on n (Gemini candidateCount allows up to 8). */
#define SY_PROVIDER_MAX_CHOICES 8

/* Model capabilities (proto Model.capabilities). caps == 0 means unknown:
 * nothing is refused on capability grounds. */
#define SY_PROVIDER_CAP_CHAT (1u << 0)
#define SY_PROVIDER_CAP_TOOLS (1u << 1)
#define SY_PROVIDER_CAP_VISION (1u << 2)
#define SY_PROVIDER_CAP_JSON_SCHEMA (1u << 3)

/* Capability bits from a model's capability names ("chat", "tools", "vision",
 * "json_schema"). A list naming none of tools/vision/json_schema says nothing
 * about them and yields 0 (unknown: nothing refused). */
uint32_t sy_provider_caps_from(const char *const *names, size_t n);

/* Who caused an error; written to the client as error.cause. */
typedef enum sy_provider_cause {
    SY_CAUSE_CALLER = 0,   /* the client's request is wrong or cannot be served */
    SY_CAUSE_POLICY = 1,   /* a gateway policy refused it (limits, budgets, allow-lists) */
    SY_CAUSE_PROVIDER = 2, /* the upstream failed, throttled or refused its credentials */
    SY_CAUSE_GATEWAY = 3,  /* the gateway itself failed */
} sy_provider_cause_t;

/* An error to send to the client in OpenAI's shape. type, code and param are
 * constant strings (hot path); message is copied (truncated to fit). */
typedef struct sy_provider_error {
    int status;                /* HTTP status for the client */
    const char *type;          /* borrowed constant, e.g. "invalid_request_error" */
    const char *code;          /* borrowed constant or NULL (written as null) */
    const char *param;         /* borrowed constant or NULL (written as null) */
    sy_provider_cause_t cause; /* who caused it */
    bool retryable;            /* another target may succeed (429, 5xx, overload) */
    uint32_t retry_after_s;    /* a back-off hint from the body, 0 when none */
    char message[512];         /* NUL-terminated, human-readable */
} sy_provider_error_t;

/* Token usage in OpenAI's terms (prompt includes cached and cache-written). */
typedef struct sy_provider_usage {
    uint64_t prompt_tokens;      /* all input tokens, cached ones included */
    uint64_t completion_tokens;  /* all output tokens, reasoning included */
    uint64_t total_tokens;       /* as reported, or prompt + completion */
    uint64_t cached_tokens;      /* input read from the provider's cache */
    uint64_t cache_write_tokens; /* input written to the provider's cache */
    uint64_t reasoning_tokens;   /* output spent on reasoning/thinking */
    bool present;                /* the provider reported usage */
    bool has_cache_write;        /* the family reports cache writes (Anthropic) */
} sy_provider_usage_t;

/* What the adapter needs to know about the chosen target. All borrowed. */
typedef struct sy_provider_target {
    sy_str_t upstream_model;     /* borrowed; the name the provider expects */
    sy_str_t api_key;            /* borrowed; empty: no auth header (self-hosted) */
    uint32_t default_max_tokens; /* the model's default; 0: SY_PROVIDER_DEFAULT_MAX_TOKENS */
    uint32_t caps;               /* SY_PROVIDER_CAP_* bits, 0 = unknown */
} sy_provider_target_t;

/* An upstream request, built by sy_provider_ops_t.build_request. The URL is the
 * provider's base URL (as the official SDK takes it: OpenAI ".../v1",
 * Anthropic and Gemini without a version) followed by path. The headers carry
 * the provider's authentication and version; the caller adds
 * "Content-Type: application/json" (every body is JSON). */
typedef struct sy_provider_request {
    sy_buf_t path;                          /* owned; starts with '/' */
    char *headers[SY_PROVIDER_MAX_HEADERS]; /* owned "Name: value" strings */
    size_t n_headers;                       /* entries used in headers */
    sy_buf_t body;                          /* owned; JSON */
    bool stream;                            /* the client asked for a stream */
    bool include_usage;                     /* the client asked for the usage chunk */
} sy_provider_request_t;

void sy_provider_request_init(sy_provider_request_t *r);
void sy_provider_request_free(sy_provider_request_t *r);

/* How responses are rendered to the client. */
typedef struct sy_provider_resp_opts {
    sy_str_t public_model; /* borrowed; the model name the client sees */
    int64_t created;       /* unix seconds, the gateway's clock */
    bool include_usage;    /* stream: emit the final usage chunk */
} sy_provider_resp_opts_t;

typedef struct sy_provider_ops sy_provider_ops_t;
typedef struct sy_provider_stream sy_provider_stream_t;

/* Per-content-block state of an Anthropic stream. */
typedef struct sy_provider_block {
    int16_t tool_index; /* OpenAI tool-call index, -1 for a non-tool block */
    bool got_args;      /* the tool call received argument bytes */
} sy_provider_block_t;

/* One upstream stream being translated to OpenAI chunks. */
struct sy_provider_stream {
    const sy_provider_ops_t *ops; /* borrowed; the adapter */
    sy_json_parser_t *parser;     /* borrowed; the worker's strict parser */
    sy_sse_framer_t framer;       /* owned; used by sy_provider_stream_feed */
    sy_buf_t *out;                /* borrowed during a feed only */
    sy_buf_t prefix;              /* owned; chunk text up to the delta */
    sy_buf_t scratch;             /* owned; per-event scratch */
    sy_buf_t public_model;        /* owned copy of opts.public_model (raw) */
    sy_buf_t public_json;         /* owned; public_model as a JSON string, quotes included */
    int64_t created;              /* unix seconds in every chunk */
    bool include_usage;           /* emit the usage chunk and "usage":null */
    bool started;                 /* Anthropic: role chunk sent; others: first event seen */
    bool finished;                /* a finish_reason went out (all choices) */
    bool done;                    /* [DONE] or an error event went out; ignore the rest */
    bool failed;                  /* the stream ended in an error event */
    int tool_count;               /* tool calls seen so far (OpenAI index of the last) */
    int n_blocks;                 /* Anthropic content blocks tracked */
    sy_provider_block_t blocks[SY_PROVIDER_MAX_TOOLS]; /* Anthropic block index -> state */
    uint32_t choices_started;  /* Gemini: bit per candidate index that got its role chunk */
    uint32_t choices_finished; /* Gemini: bit per candidate index that got its finish */
    uint32_t choices_tooled;   /* Gemini: bit per candidate index that returned a call */
    int16_t cand_tools[SY_PROVIDER_MAX_CHOICES]; /* Gemini: tool calls per candidate */
    const char *finish_reason;                   /* constant; the last OpenAI finish_reason */
    sy_provider_usage_t usage;                   /* merged usage so far */
    sy_provider_error_t error;                   /* valid when failed */
};

/* The interface every family implements. */
struct sy_provider_ops {
    const char *name; /* "openai", "anthropic", "gemini" */

    /* Translates the client's OpenAI chat request (req, borrowed, not modified)
     * for target t into out (initialized by the caller; filled only on
     * success). Returns 0, SY_EINVAL with *err describing a 400 for the
     * client, or SY_ENOMEM. */
    int (*build_request)(const sy_provider_target_t *t, json_object *req,
                         sy_provider_request_t *out, sy_provider_error_t *err);

    /* Translates a whole 2xx response body into an OpenAI chat completion
     * appended to out, and its usage into *usage. Returns 0, SY_EINVAL with
     * *err (502, cause provider) for a body that is not a valid response, or
     * SY_ENOMEM. */
    int (*parse_response)(const sy_provider_resp_opts_t *o, sy_json_parser_t *p, const char *body,
                          size_t len, sy_buf_t *out, sy_provider_usage_t *usage,
                          sy_provider_error_t *err);

    /* Starts a stream: called by sy_provider_stream_init. */
    void (*stream_begin)(sy_provider_stream_t *s);

    /* Translates one upstream SSE event into zero or more OpenAI chunks
     * appended to out. Sets s->done after [DONE] or an error event (a
     * malformed event becomes an error event). Returns 0 or SY_ENOMEM. */
    int (*stream_event)(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out);

    /* The upstream closed the stream: emits the closing chunks ([DONE], the
     * usage chunk) or, when the stream was cut short, an error event. */
    int (*stream_end)(sy_provider_stream_t *s, sy_buf_t *out);

    /* Maps an upstream non-2xx answer (status, body[0..len), body may be
     * anything) to the client's error. Never fails. */
    void (*map_error)(int status, const char *body, size_t len, sy_provider_error_t *err);

    /* Reads usage from a parsed upstream response or stream event. Returns 0,
     * SY_ENOENT when it carries none (usage untouched). */
    int (*extract_usage)(json_object *resp, sy_provider_usage_t *usage);
};

extern const sy_provider_ops_t sy_provider_openai;
extern const sy_provider_ops_t sy_provider_anthropic;
extern const sy_provider_ops_t sy_provider_gemini;

/* The adapter for a family, NULL for an unknown value. */
const sy_provider_ops_t *sy_provider_for(sy_provider_family_t family);

/* Stream lifecycle. parser is borrowed and must outlive the stream. */
void sy_provider_stream_init(sy_provider_stream_t *s, const sy_provider_ops_t *ops,
                             sy_json_parser_t *parser, const sy_provider_resp_opts_t *o);
void sy_provider_stream_free(sy_provider_stream_t *s);
/* Frames raw upstream bytes (any split) and translates each event into out.
 * Returns 0 or SY_ENOMEM; an oversized event becomes an error event. */
int sy_provider_stream_feed(sy_provider_stream_t *s, const char *p, size_t n, sy_buf_t *out);
/* Upstream EOF: flushes (a partial event means a truncated stream). */
int sy_provider_stream_end(sy_provider_stream_t *s, sy_buf_t *out);
/* Ends the stream with an error event (e.g. an upstream timeout mid-stream). */
int sy_provider_stream_fail(sy_provider_stream_t *s, const sy_provider_error_t *e, sy_buf_t *out);

/* Error helpers. sy_provider_error_set fills *e (message printf-style). */
void sy_provider_error_set(sy_provider_error_t *e, int status, const char *type, const char *code,
                           const char *param, sy_provider_cause_t cause, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Appends {"error":{"message","type","param","code","cause"}} to out. */
int sy_provider_error_write(const sy_provider_error_t *e, sy_buf_t *out);
/* Appends "data: " + the error JSON + "\n\n". */
int sy_provider_error_write_sse(const sy_provider_error_t *e, sy_buf_t *out);
const char *sy_provider_cause_name(sy_provider_cause_t c);

/* Appends usage as OpenAI's "usage" object. */
int sy_provider_usage_write(const sy_provider_usage_t *u, sy_buf_t *out);

/* --- internal: shared by the adapters (sy_provider__ = not for callers) ----- */

/* Sets the chunk prefix from an id (written as "chatcmpl-" + id unless id
 * already starts with "chatcmpl-"). */
int sy_provider__stream_set_id(sy_provider_stream_t *s, const char *id, size_t len);
/* Appends one chunk for choice idx: delta is raw JSON ("{...}"), finish a
 * constant or NULL (written as null). */
int sy_provider__chunk(sy_provider_stream_t *s, sy_buf_t *out, uint32_t idx, const char *delta,
                       size_t delta_len, const char *finish);
/* Appends the closing usage chunk (when include_usage) and [DONE]; sets done. */
int sy_provider__stream_close(sy_provider_stream_t *s, sy_buf_t *out);
/* Parses an event's data into *out; on failure emits an error event. */
int sy_provider__parse_event(sy_provider_stream_t *s, const sy_sse_event_t *ev, sy_buf_t *out,
                             json_object **obj);
/* Splits "data:<mime>;base64,<payload>". Returns 0 or SY_EINVAL. */
int sy_provider__data_url(const char *url, size_t len, sy_str_t *mime, sy_str_t *data);
/* json-c conveniences that never fail on type mismatches. */
const char *sy_provider__str(json_object *o, const char *key, size_t *len);
bool sy_provider__u64(json_object *o, const char *key, uint64_t *out);
/* True when member key of o (may be NULL) is the JSON boolean true. */
bool sy_provider__true(json_object *o, const char *key);
/* Appends the JSON text of o (plain, no slash escaping). */
int sy_provider__append_json(sy_buf_t *b, json_object *o);
/* Adds key=value to o, taking the reference to value. Returns 0 or SY_ENOMEM. */
int sy_provider__add(json_object *o, const char *key, json_object *value);
/* Message text of a string or an array of text parts, concatenated into b;
 * *ok false (nothing appended) when content holds anything else. OpenAI
 * content also takes "refusal" parts; Anthropic content blocks only "text"
 * blocks. Returns 0 or SY_ENOMEM. */
int sy_provider__text_content(json_object *content, sy_buf_t *b, bool *ok);
int sy_provider__blocks_text(json_object *content, sy_buf_t *b, bool *ok);
/* Appends a turn {role, <member>: items} to turns (taking items), merging
 * items into the previous turn when the role repeats (Anthropic and Gemini
 * want alternating roles); an empty items adds nothing. Returns 0 or
 * SY_ENOMEM. */
int sy_provider__add_turn(json_object *turns, const char *role, const char *member,
                          json_object *items);
/* Parses an upstream's response body into *out; SY_ENOMEM, or a JSON
 * error as sy_provider__invalid_response (naming upstream). */
int sy_provider__parse_upstream(sy_json_parser_t *p, const char *body, size_t len,
                                const char *upstream, json_object **out, sy_provider_error_t *e);
/* The request's "tools" into *tools / *n: *n = 0 when absent, null or
 * empty; a 400 (SY_EINVAL) when not an array. */
int sy_provider__tools(json_object *req, json_object **tools, size_t *n, sy_provider_error_t *e);
/* tools[i] as an OpenAI function tool: its "function" object into *fn and
 * its name into *name. A 400 naming family (e.g. "Anthropic") for another
 * tool type, a 400 for a missing name. */
int sy_provider__tool_function(json_object *tool, size_t i, const char *family, json_object **fn,
                               sy_str_t *name, sy_provider_error_t *e);
/* Fills e with a retryable 502 upstream_invalid_response ("the <upstream>
 * upstream returned an invalid response: <why>") and returns SY_EINVAL:
 * another target may well answer properly. */
int sy_provider__invalid_response(sy_provider_error_t *e, const char *upstream, const char *why);
/* Fails the stream with a retryable 502 upstream_stream_truncated (why: the
 * message): the upstream ended before its end-of-answer marker. */
int sy_provider__stream_truncated(sy_provider_stream_t *s, sy_buf_t *out, const char *why);
/* Maps an HTTP status to OpenAI's (type, code) and fills e (message from msg). */
void sy_provider__error_from_status(sy_provider_error_t *e, int status, const char *msg,
                                    size_t msg_len);
/* Refuses (400, SY_EINVAL) tools, images or a JSON schema the target's
 * capabilities exclude, n outside [1, max_n], and a malformed messages array. */
int sy_provider__check_request(const sy_provider_target_t *t, json_object *req, int64_t max_n,
                               const char *family, sy_provider_error_t *e);
/* Reads a number (int or double) member; false when absent or null,
 * *bad set when present with another type. */
bool sy_provider__num(json_object *o, const char *key, double *out, bool *bad);
/* Appends a "Name: value" header (value may be a view). Returns 0 or SY_ENOMEM/SY_E2BIG. */
int sy_provider__header(sy_provider_request_t *r, const char *name, sy_str_t value);
/* Returns the entry of list (NULL-terminated) equal to s, else dflt: turns
 * an upstream's open-ended string into one of our constants. */
const char *sy_provider__intern(const char *s, const char *const *list, const char *dflt);
/* Writes a 400 naming param into e and returns SY_EINVAL. */
int sy_provider__bad(sy_provider_error_t *e, const char *param, const char *code, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

#endif
