/* Anthropic-style ingress (POST /v1/messages): the reverse direction.
 *
 * The request path turns the client's Anthropic Messages request into an
 * OpenAI chat request (sy_anthropic_ingress_request), routes and translates
 * it like any other request, and renders the OpenAI-format answer back in
 * Anthropic's format: a whole chat completion with
 * sy_anthropic_ingress_response, a stream of OpenAI chunks (as produced by
 * sy_provider_stream_t) with sy_anthropic_egress_t, which emits Anthropic's
 * event sequence (message_start, content_block_start/delta/stop,
 * message_delta, message_stop, or error). */
#ifndef SY_ANTHROPIC_INGRESS_H
#define SY_ANTHROPIC_INGRESS_H

#include "dataplane/providers/provider.h"

/* Translates an Anthropic Messages request (req, borrowed) into a new OpenAI
 * chat request in *out (caller owns; json_object_put). Streams always ask
 * for include_usage, which the Anthropic events need. Returns 0, SY_EINVAL
 * with *err (400, cause caller), or SY_ENOMEM; *out written only on success. */
int sy_anthropic_ingress_request(json_object *req, json_object **out, sy_provider_error_t *err);

/* Translates an OpenAI chat completion (body[0..len)) into an Anthropic
 * Message appended to out; model is the name the client asked for. Returns
 * 0, SY_EINVAL (not a chat completion; out untouched) or SY_ENOMEM. */
int sy_anthropic_ingress_response(sy_json_parser_t *p, const char *body, size_t len, sy_str_t model,
                                  sy_buf_t *out);

/* Anthropic's error type for an HTTP status (constant). */
const char *sy_anthropic_ingress_error_type(int status);
/* Appends {"type":"error","error":{"type","message","cause"}} for e. */
int sy_anthropic_ingress_error_write(const sy_provider_error_t *e, sy_buf_t *out);

/* Maximum tool calls one translated stream tracks. */
#define SY_ANTHROPIC_EGRESS_MAX_TOOLS 128

/* OpenAI chunk stream -> Anthropic event stream. */
typedef struct sy_anthropic_egress {
    sy_json_parser_t *parser; /* borrowed; the worker's parser */
    sy_sse_framer_t framer;   /* owned; frames the OpenAI chunks */
    sy_buf_t *out;            /* borrowed during a feed only */
    sy_buf_t model;           /* owned; the model name for message_start */
    sy_buf_t scratch;         /* owned; per-event scratch */
    bool started;             /* message_start went out */
    bool done;                /* message_stop or error went out */
    bool failed;              /* ended with an error event */
    int open_block;           /* index of the open content block, -1 when none */
    bool open_is_text;        /* the open block is a text block */
    int n_blocks;             /* content blocks started so far */
    int16_t tool_block[SY_ANTHROPIC_EGRESS_MAX_TOOLS]; /* OpenAI tool index -> block, -1 */
    const char *stop_reason;                           /* constant; Anthropic stop_reason */
    sy_provider_usage_t usage;                         /* from the usage chunk */
} sy_anthropic_egress_t;

/* parser is borrowed and must outlive e; model is copied. */
void sy_anthropic_egress_init(sy_anthropic_egress_t *e, sy_json_parser_t *parser, sy_str_t model);
void sy_anthropic_egress_free(sy_anthropic_egress_t *e);
/* Feeds OpenAI SSE bytes ("data: {...}\n\n", "data: [DONE]\n\n", errors) and
 * appends Anthropic events to out. Returns 0 or SY_ENOMEM. */
int sy_anthropic_egress_feed(sy_anthropic_egress_t *e, const char *p, size_t n, sy_buf_t *out);
/* The OpenAI stream ended: a stream without [DONE] or an error ends with an
 * error event. Returns 0 or SY_ENOMEM. */
int sy_anthropic_egress_end(sy_anthropic_egress_t *e, sy_buf_t *out);

#endif
