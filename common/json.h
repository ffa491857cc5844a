/* Strict JSON over json-c: rejects NaN/Infinity, trailing bytes and depth > 64;
 * serializes plain with no slash escaping. One parser per worker on hot paths. */
#ifndef SY_JSON_H
#define SY_JSON_H

#include <json-c/json.h>
#include "defs.h"

#define SY_JSON_MAX_DEPTH 64

/* A reusable strict parser (one json_tokener). Returns NULL on ENOMEM. */
sy_json_parser_t *sy_json_parser_new(void);
void sy_json_parser_free(sy_json_parser_t *p);

/* Parses exactly data[0..len) into *out (caller owns; json_object_put).
 * On failure returns SY_EINVAL and sets *why to a constant message
 * (e.g. "invalid JSON", "trailing bytes after JSON", "NaN or Infinity is not JSON",
 * "JSON nested too deeply", "JSON number out of range", "empty JSON document",
 * "invalid UTF-8 in JSON"); *out is untouched. The messages are static strings
 * (never freed; safe to keep).
 * The document `null` parses to *out == NULL (json-c's null). Integers beyond
 * int64/uint64 (which json-c would silently clamp) are refused, and so are
 * the two clamp bounds INT64_MIN and UINT64_MAX themselves. Bodies over
 * INT32_MAX bytes return SY_E2BIG. */
int sy_json_parse(sy_json_parser_t *p, const char *data, size_t len, json_object **out,
                  const char **why);

/* Cold-path convenience: a one-off parser, message into err. */
int sy_json_parse_once(const char *data, size_t len, json_object **out, sy_err_t *err);

/* Serializes o (plain, no slash escaping). The string belongs to o. */
const char *sy_json_to_string(json_object *o, size_t *len);

/* Typed member access; NULL / SY_ENOENT when missing, SY_EINVAL when of another type. */
json_object *sy_json_get(json_object *o, const char *key);
const char *sy_json_get_string(json_object *o, const char *key, size_t *len);
int sy_json_get_int64(json_object *o, const char *key, int64_t *out);
int sy_json_get_double(json_object *o, const char *key, double *out);
int sy_json_get_bool(json_object *o, const char *key, bool *out);
json_object *sy_json_get_object(json_object *o, const char *key);
json_object *sy_json_get_array(json_object *o, const char *key);

#endif
