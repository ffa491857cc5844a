/* A validating, non-allocating JSON scanner for the hot path of stream
 * translation: it walks an event's bytes once, hands out raw views of member
 * values (strings keep their quotes and escapes, so they can be copied into
 * output JSON verbatim), and never builds a tree. Translators use it for the
 * frequent small events (text and argument deltas, passthrough chunks) and
 * fall back to json-c for everything else.
 *
 * Validation matches common/json.h's strictness for what it accepts: strict
 * JSON grammar, valid escapes, no raw control characters, valid UTF-8, no
 * NaN/Infinity, depth <= SY_JSON_MAX_DEPTH. Anything else is "invalid" and the
 * caller falls back to the full parser (which then reports the error). */
#ifndef SY_JSCAN_H
#define SY_JSCAN_H

#include "defs.h"

/* Iterator over the members of one object or the elements of one array. */
typedef struct sy_jscan {
    const char *p;   /* borrowed; the container's bytes */
    size_t n;        /* bytes in p */
    size_t i;        /* cursor */
    size_t prev_end; /* offset just past the value before the current member (1 for the first) */
    size_t last_end; /* offset just past the current member's value */
    size_t key_at;   /* offset of the current member's key (its opening quote) */
    int state;       /* 0: first member or end next, 1: ',' or end next, 2: ended */
    bool is_object;  /* iterating an object (else an array) */
} sy_jscan_t;

/* Length of the JSON string at p[0..n) (p[0] is its opening quote), closing
 * quote included; 0 when it is not one valid string. Sets *escape (if not
 * NULL) when the string holds a backslash; leaves it alone otherwise. */
size_t sy_jscan_string(const char *p, size_t n, bool *escape);
/* Length of the JSON number at p[0..n), 0 when there is none. */
size_t sy_jscan_number(const char *p, size_t n);

/* Length of the JSON value at p[0..n) (no leading whitespace), 0 when it is
 * not one valid value. */
size_t sy_jscan_value(const char *p, size_t n);

/* Starts iterating v, which must be an object (is_object) or an array as
 * returned by sy_jscan_next/sy_jscan_document. Returns false otherwise. */
bool sy_jscan_begin(sy_jscan_t *it, sy_str_t v, bool is_object);

/* Next member: 1 with *key (raw, no quotes; arrays leave it empty) and *val
 * (raw value), 0 at the end, -1 when the bytes are not valid JSON. */
int sy_jscan_next(sy_jscan_t *it, sy_str_t *key, sy_str_t *val);

/* The single value of a whole document (surrounding whitespace allowed);
 * false when the document is not exactly one valid value. */
bool sy_jscan_document(const char *p, size_t n, sy_str_t *val);

/* Iterates the top-level object of a whole document in one pass (instead
 * of sy_jscan_document + sy_jscan_begin). After sy_jscan_next returned 0,
 * sy_jscan_end_doc checks that only whitespace follows and writes the
 * object's view to *doc. */
bool sy_jscan_begin_doc(sy_jscan_t *it, const char *p, size_t n);
bool sy_jscan_end_doc(const sy_jscan_t *it, sy_str_t *doc);

/* Raw key equality (keys containing escapes never match). */
bool sy_jscan_key_is(sy_str_t key, const char *lit);
/* True when a raw value is the JSON string "lit" written without escapes. */
bool sy_jscan_str_is(sy_str_t val, const char *lit);
/* A raw non-negative integer value; writes *out only on success. */
bool sy_jscan_u64(sy_str_t val, uint64_t *out);

#endif
