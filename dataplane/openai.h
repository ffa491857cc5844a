/* Pure helpers for OpenAI-shaped bodies on the request path: usage
 * extraction from responses and stream chunks, and error documents. No I/O,
 * no loop: unit-tested directly (tests/unit/test_dp_openai.c). */
#ifndef SY_DP_OPENAI_H
#define SY_DP_OPENAI_H

#include "buf.h"
#include "json.h"

typedef struct sy_openai_usage {
    uint64_t prompt_tokens; /* including cached */
    uint64_t completion_tokens;
    uint64_t cached_tokens;      /* prompt_tokens_details.cached_tokens */
    uint64_t cache_write_tokens; /* prompt_tokens_details.cache_write_tokens */
} sy_openai_usage_t;

/* Finds the top-level "usage" object of a complete response body without
 * parsing the whole body: it locates the last `"usage"` key followed by an
 * object (a key cannot occur unescaped inside a JSON string), cuts the
 * object out by bracket matching and parses only that with p. Writes *out
 * only on success; SY_ENOENT when there is no usage object, SY_EINVAL when
 * it is malformed. */
int sy_openai_find_usage(sy_json_parser_t *p, const char *body, size_t len, sy_openai_usage_t *out);

/* Reads a usage object (json-c) into *out. SY_EINVAL when not an object. */
int sy_openai_usage_from_json(json_object *usage, sy_openai_usage_t *out);

/* Classifies the data of one chat.completion.chunk event. Returns SY_ENOENT
 * at once (no parse) when the chunk carries no usage object — the common
 * case, including `"usage":null`. Otherwise parses the chunk, writes the
 * usage to *out and sets *usage_only when the chunk has no choices (the
 * extra chunk include_usage adds, which is dropped for clients that did not
 * ask for it). SY_EINVAL when the chunk is not valid JSON. */
int sy_openai_chunk_usage(sy_json_parser_t *p, sy_str_t data, sy_openai_usage_t *out,
                          bool *usage_only);

/* True when an SSE data payload is an in-stream error ({"error": ...}). */
bool sy_openai_is_error_event(sy_str_t data);

/* Appends {"error":{"message":..,"type":..,"param":..,"code":..}} to out;
 * param and code may be NULL (JSON null). Returns 0 or SY_ENOMEM. */
int sy_openai_error_json(sy_buf_t *out, const char *message, const char *type, const char *param,
                         const char *code);

/* Finds the end of the JSON value (object or array) starting at p[0] by
 * bracket matching with string awareness. Returns its length, 0 when the
 * value does not close within len. */
size_t sy_openai_value_len(const char *p, size_t len);

#endif
