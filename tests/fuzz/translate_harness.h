/* Shared body of the fuzz_translate_<provider> targets.
 *
 * The first input byte picks what the rest is and how it is sliced:
 *   mode 0  an upstream SSE stream, fed in slices chosen by the input, then
 *           ended; the OpenAI output is checked (well-formed events, one
 *           terminal [DONE] or error, nothing after it) and then fed to the
 *           Anthropic egress, whose output is checked the same way
 *   mode 1  a whole upstream response body for parse_response
 *   mode 2  an upstream error body for map_error (status from the next bytes)
 *   mode 3  a client request: OpenAI chat (build_request) and Anthropic
 *           Messages (ingress) translation
 * Any violated invariant aborts, which libFuzzer reports as a crash. */
#ifndef SY_FUZZ_TRANSLATE_HARNESS_H
#define SY_FUZZ_TRANSLATE_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "sse.h"
#include "dataplane/providers/provider.h"
#include "dataplane/providers/anthropic_ingress.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct fuzz_out {
    sy_json_parser_t *parser; /* borrowed */
    bool anthropic;           /* Anthropic event stream (else OpenAI chunks) */
    bool ended;               /* a terminal event was seen */
    size_t events;
} fuzz_out_t;

/* Valid JSON for our purposes: strict, except integers json-c would clamp,
 * which the passthrough forwards as the upstream wrote them. */
static void check_json(fuzz_out_t *o, const char *p, size_t n, json_object **keep)
{
    json_object *v = NULL;
    const char *why = NULL;
    int rc = sy_json_parse(o->parser, p, n, &v, &why);
    if (rc != 0) {
        FUZZ_CHECK(why != NULL && strcmp(why, "JSON number out of range") == 0);
        return;
    }
    FUZZ_CHECK(json_object_is_type(v, json_type_object));
    if (keep != NULL)
        *keep = v;
    else
        json_object_put(v);
}

static int fuzz_on_event(void *ctx, const sy_sse_event_t *ev)
{
    fuzz_out_t *o = ctx;
    FUZZ_CHECK(!o->ended); /* nothing after [DONE], an error or message_stop */
    o->events++;
    if (!o->anthropic) {
        FUZZ_CHECK(ev->event.len == 0);
        if (ev->data.len == 6 && memcmp(ev->data.ptr, "[DONE]", 6) == 0) {
            o->ended = true;
            return 0;
        }
        json_object *v = NULL;
        check_json(o, ev->data.ptr, ev->data.len, &v);
        if (v != NULL) {
            json_object *err = json_object_object_get(v, "error");
            if (err != NULL) {
                o->ended = true;
                FUZZ_CHECK(sy_provider__str(err, "message", NULL) != NULL);
                FUZZ_CHECK(sy_provider__str(err, "cause", NULL) != NULL);
            } else {
                FUZZ_CHECK(
                    json_object_is_type(json_object_object_get(v, "choices"), json_type_array));
            }
            json_object_put(v);
        }
        return 0;
    }
    json_object *v = NULL;
    check_json(o, ev->data.ptr, ev->data.len, &v);
    if (v != NULL) {
        size_t tl;
        const char *type = sy_provider__str(v, "type", &tl);
        FUZZ_CHECK(type != NULL && tl == ev->event.len && memcmp(type, ev->event.ptr, tl) == 0);
        if (strcmp(type, "message_stop") == 0 || strcmp(type, "error") == 0)
            o->ended = true;
        json_object_put(v);
    }
    return 0;
}

/* Checks that out is a complete, well-formed event stream ending once. */
static void check_stream(sy_json_parser_t *p, const sy_buf_t *out, bool anthropic)
{
    fuzz_out_t o = {.parser = p, .anthropic = anthropic};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 64u << 20, fuzz_on_event, &o);
    FUZZ_CHECK(sy_sse_framer_feed(&f, out->data ? out->data : "", out->len) == 0);
    FUZZ_CHECK(!sy_sse_framer_has_partial(&f));
    sy_sse_framer_free(&f);
    FUZZ_CHECK(o.ended);
}

static void fuzz_stream(const sy_provider_ops_t *ops, sy_json_parser_t *p, const uint8_t *data,
                        size_t size, uint8_t mode_byte)
{
    sy_provider_resp_opts_t ro = {.public_model = SY_STR("fuzz-model"),
                                  .created = 1,
                                  .include_usage = (mode_byte & 0x4) != 0};
    sy_provider_stream_t s;
    sy_buf_t out, ant;
    sy_buf_init(&out);
    sy_buf_init(&ant);
    sy_provider_stream_init(&s, ops, p, &ro);
    /* Slice sizes come from the mode byte: 1..8 bytes, or the whole at once. */
    size_t step = (mode_byte >> 4) == 0 ? size : (size_t)(mode_byte >> 4) % 9 + 1;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        FUZZ_CHECK(sy_provider_stream_feed(&s, (const char *)data + off, n, &out) == 0);
    }
    FUZZ_CHECK(sy_provider_stream_end(&s, &out) == 0);
    FUZZ_CHECK(s.done);
    sy_provider_stream_free(&s);
    check_stream(p, &out, false);

    sy_anthropic_egress_t e;
    sy_anthropic_egress_init(&e, p, SY_STR("fuzz-model"));
    for (size_t off = 0; off < out.len; off += 7) {
        size_t n = out.len - off < 7 ? out.len - off : 7;
        FUZZ_CHECK(sy_anthropic_egress_feed(&e, out.data + off, n, &ant) == 0);
    }
    FUZZ_CHECK(sy_anthropic_egress_end(&e, &ant) == 0);
    FUZZ_CHECK(e.done);
    sy_anthropic_egress_free(&e);
    check_stream(p, &ant, true);
    sy_buf_free(&out);
    sy_buf_free(&ant);
}

static void fuzz_response(const sy_provider_ops_t *ops, sy_json_parser_t *p, const uint8_t *data,
                          size_t size)
{
    sy_provider_resp_opts_t ro = {.public_model = SY_STR("fuzz-model"), .created = 1};
    sy_buf_t out;
    sy_provider_usage_t u = {0};
    sy_provider_error_t e;
    sy_buf_init(&out);
    int rc = ops->parse_response(&ro, p, (const char *)data, size, &out, &u, &e);
    FUZZ_CHECK(rc == 0 || rc == SY_EINVAL);
    if (rc == 0) {
        check_json(&(fuzz_out_t){.parser = p}, out.data, out.len, NULL);
        sy_buf_t ant;
        sy_buf_init(&ant);
        rc = sy_anthropic_ingress_response(p, out.data, out.len, SY_STR("m"), &ant);
        if (rc == 0)
            check_json(&(fuzz_out_t){.parser = p}, ant.data, ant.len, NULL);
        sy_buf_free(&ant);
    } else {
        FUZZ_CHECK(out.len == 0);
        FUZZ_CHECK(e.status == 502);
    }
    sy_buf_free(&out);
}

static void fuzz_error(const sy_provider_ops_t *ops, sy_json_parser_t *p, const uint8_t *data,
                       size_t size)
{
    if (size < 2)
        return;
    int status = 100 + (data[0] << 8 | data[1]) % 500;
    sy_provider_error_t e;
    ops->map_error(status, (const char *)data + 2, size - 2, &e);
    FUZZ_CHECK(e.status >= 400 && e.status <= 599);
    FUZZ_CHECK(e.type != NULL);
    sy_buf_t out;
    sy_buf_init(&out);
    FUZZ_CHECK(sy_provider_error_write(&e, &out) == 0);
    check_json(&(fuzz_out_t){.parser = p}, out.data, out.len, NULL);
    sy_buf_reset(&out);
    FUZZ_CHECK(sy_anthropic_ingress_error_write(&e, &out) == 0);
    check_json(&(fuzz_out_t){.parser = p}, out.data, out.len, NULL);
    sy_buf_free(&out);
}

static void fuzz_request(const sy_provider_ops_t *ops, sy_json_parser_t *p, const uint8_t *data,
                         size_t size)
{
    json_object *req = NULL;
    const char *why;
    if (sy_json_parse(p, (const char *)data, size, &req, &why) != 0)
        return;
    const char *before = strdup(json_object_to_json_string(req));
    sy_provider_target_t t = {.upstream_model = SY_STR("up-model"),
                              .api_key = SY_STR("k"),
                              .caps = size % 3 == 0 ? SY_PROVIDER_CAP_CHAT : 0};
    sy_provider_request_t r;
    sy_provider_error_t e;
    sy_provider_request_init(&r);
    int rc = ops->build_request(&t, req, &r, &e);
    FUZZ_CHECK(rc == 0 || rc == SY_EINVAL);
    if (rc == 0) {
        check_json(&(fuzz_out_t){.parser = p}, r.body.data, r.body.len, NULL);
        FUZZ_CHECK(r.path.len > 0 && r.path.data[0] == '/');
    } else {
        FUZZ_CHECK(e.status == 400 && r.body.len == 0);
    }
    sy_provider_request_free(&r);
    /* The client's request is borrowed: never modified. */
    FUZZ_CHECK(strcmp(before, json_object_to_json_string(req)) == 0);
    free((void *)before);

    json_object *oai = NULL;
    rc = sy_anthropic_ingress_request(req, &oai, &e);
    FUZZ_CHECK(rc == 0 || rc == SY_EINVAL);
    if (rc == 0) {
        sy_provider_request_init(&r);
        rc = ops->build_request(&t, oai, &r, &e);
        FUZZ_CHECK(rc == 0 || rc == SY_EINVAL);
        sy_provider_request_free(&r);
        json_object_put(oai);
    }
    json_object_put(req);
}

static int fuzz_translate(const sy_provider_ops_t *ops, const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static sy_json_parser_t *p;
    if (p == NULL)
        p = sy_json_parser_new();
    uint8_t mode = data[0];
    data++;
    size--;
    switch (mode & 3) {
    case 0:
        fuzz_stream(ops, p, data, size, mode);
        break;
    case 1:
        fuzz_response(ops, p, data, size);
        break;
    case 2:
        fuzz_error(ops, p, data, size);
        break;
    default:
        fuzz_request(ops, p, data, size);
        break;
    }
    return 0;
}

#endif
