/* Shared helpers of the provider translation tests: fixture loading, slicing
 * streams at random points, and an accumulator that reads OpenAI chunk
 * streams back into (text, tool calls, finish reason, usage, error). */
#ifndef SY_TEST_DP_PROVIDERS_UTIL_H
#define SY_TEST_DP_PROVIDERS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "sse.h"
#include "dataplane/providers/provider.h"

#define FIXED_CREATED 1760000000

/* Reads a fixture (NUL-terminated) from $SY_FIXTURES_DIR or
 * tests/fixtures/providers; fails the test when missing. */
static inline char *fixture(const char *name, size_t *len)
{
    const char *dir = getenv("SY_FIXTURES_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/providers", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static inline json_object *fixture_json(const char *name)
{
    size_t len;
    char *s = fixture(name, &len);
    json_object *o = NULL;
    sy_err_t err;
    if (sy_json_parse_once(s, len, &o, &err) != 0)
        fail_msg("fixture %s is not JSON: %s", name, err.msg);
    free(s);
    return o;
}

static inline void assert_json_equal(json_object *got, json_object *want)
{
    if (!json_object_equal(got, want)) {
        print_error("got:  %s\n", json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
        print_error("want: %s\n", json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
        fail_msg("JSON differs");
    }
}

/* --- reading OpenAI chunk streams back ------------------------------------------ */

#define ACC_MAX_CALLS 16

typedef struct acc_call {
    char id[128];
    char name[64];
    sy_buf_t args;
    bool seen;
} acc_call_t;

typedef struct acc {
    sy_buf_t text;
    acc_call_t calls[ACC_MAX_CALLS];
    int n_calls;
    char finish[32];
    bool role_seen;
    bool done;       /* [DONE] seen */
    bool after_done; /* something came after [DONE] or an error */
    bool error;      /* an error event */
    char error_type[64];
    char error_code[64];
    char error_message[256];
    char error_cause[16];
    bool usage_chunk;    /* a choices:[] usage chunk */
    int usage_null_keys; /* chunks carrying "usage":null */
    int chunks;
    char id[128]; /* the chunk id (must not change) */
    char model[128];
    int64_t created;
    bool id_changed;
    sy_provider_usage_t usage;
} acc_t;

static inline void acc_init(acc_t *a)
{
    memset(a, 0, sizeof(*a));
    sy_buf_init(&a->text);
    for (int i = 0; i < ACC_MAX_CALLS; i++)
        sy_buf_init(&a->calls[i].args);
}

static inline void acc_free(acc_t *a)
{
    sy_buf_free(&a->text);
    for (int i = 0; i < ACC_MAX_CALLS; i++)
        sy_buf_free(&a->calls[i].args);
}

static inline void copy_str(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static inline int acc_event(void *ctx, const sy_sse_event_t *ev)
{
    acc_t *a = ctx;
    if (a->done || a->error)
        a->after_done = true;
    if (ev->data.len == 6 && memcmp(ev->data.ptr, "[DONE]", 6) == 0) {
        a->done = true;
        return 0;
    }
    json_object *o = NULL;
    if (sy_json_parse_once(ev->data.ptr, ev->data.len, &o, NULL) != 0)
        fail_msg("output chunk is not JSON: %.*s", (int)ev->data.len, ev->data.ptr);
    json_object *e = json_object_object_get(o, "error");
    if (e != NULL) {
        a->error = true;
        copy_str(a->error_type, sizeof(a->error_type), sy_provider__str(e, "type", NULL));
        copy_str(a->error_code, sizeof(a->error_code), sy_provider__str(e, "code", NULL));
        copy_str(a->error_message, sizeof(a->error_message), sy_provider__str(e, "message", NULL));
        copy_str(a->error_cause, sizeof(a->error_cause), sy_provider__str(e, "cause", NULL));
        json_object_put(o);
        return 0;
    }
    a->chunks++;
    const char *id = sy_provider__str(o, "id", NULL);
    assert_non_null(id);
    if (a->id[0] == '\0')
        copy_str(a->id, sizeof(a->id), id);
    else if (strcmp(a->id, id) != 0)
        a->id_changed = true;
    copy_str(a->model, sizeof(a->model), sy_provider__str(o, "model", NULL));
    assert_string_equal(sy_provider__str(o, "object", NULL), "chat.completion.chunk");
    a->created = json_object_get_int64(json_object_object_get(o, "created"));
    json_object *u = NULL;
    if (json_object_object_get_ex(o, "usage", &u)) {
        if (u == NULL)
            a->usage_null_keys++;
    }
    json_object *choices = json_object_object_get(o, "choices");
    assert_non_null(choices);
    size_t nc = json_object_array_length(choices);
    if (nc == 0) {
        assert_non_null(u);
        a->usage_chunk = true;
        sy_provider_openai.extract_usage(o, &a->usage);
    }
    for (size_t i = 0; i < nc; i++) {
        json_object *c = json_object_array_get_idx(choices, i);
        json_object *d = json_object_object_get(c, "delta");
        assert_non_null(d);
        const char *role = sy_provider__str(d, "role", NULL);
        if (role != NULL) {
            assert_string_equal(role, "assistant");
            a->role_seen = true;
        }
        size_t tl;
        const char *t = sy_provider__str(d, "content", &tl);
        if (t != NULL)
            sy_buf_append(&a->text, t, tl);
        json_object *tcs = json_object_object_get(d, "tool_calls");
        for (size_t j = 0; tcs != NULL && j < json_object_array_length(tcs); j++) {
            json_object *tc = json_object_array_get_idx(tcs, j);
            uint64_t idx;
            assert_true(sy_provider__u64(tc, "index", &idx));
            assert_true(idx < ACC_MAX_CALLS);
            acc_call_t *call = &a->calls[idx];
            const char *cid = sy_provider__str(tc, "id", NULL);
            json_object *fn = json_object_object_get(tc, "function");
            const char *name = sy_provider__str(fn, "name", NULL);
            size_t al;
            const char *args = sy_provider__str(fn, "arguments", &al);
            if (cid != NULL) {
                /* A call is announced once, with its id and name. */
                assert_false(call->seen);
                call->seen = true;
                copy_str(call->id, sizeof(call->id), cid);
                if ((int)idx + 1 > a->n_calls)
                    a->n_calls = (int)idx + 1;
            }
            assert_true(call->seen);
            if (name != NULL)
                copy_str(call->name, sizeof(call->name), name);
            if (args != NULL)
                sy_buf_append(&call->args, args, al);
        }
        const char *fr = sy_provider__str(c, "finish_reason", NULL);
        if (fr != NULL)
            copy_str(a->finish, sizeof(a->finish), fr);
    }
    json_object_put(o);
    return 0;
}

/* Reads a whole OpenAI SSE text into a. */
static inline void acc_read(acc_t *a, const char *sse, size_t len)
{
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1 << 20, acc_event, a);
    assert_int_equal(sy_sse_framer_feed(&f, sse, len), 0);
    assert_false(sy_sse_framer_has_partial(&f));
    sy_sse_framer_free(&f);
}

/* Arguments compared as JSON values (whitespace inside them is the provider's). */
static inline void assert_args_equal(const char *got, size_t gl, const char *want, size_t wl)
{
    json_object *g = NULL, *w = NULL;
    if (sy_json_parse_once(got, gl, &g, NULL) != 0)
        fail_msg("tool arguments are not JSON: %.*s", (int)gl, got);
    assert_int_equal(sy_json_parse_once(want, wl, &w, NULL), 0);
    assert_json_equal(g, w);
    json_object_put(g);
    json_object_put(w);
}

/* Compares what two streams said; ids compared when check_ids. */
static inline void acc_assert_same(const acc_t *got, const acc_t *want, bool check_ids)
{
    assert_false(got->after_done);
    assert_false(got->id_changed);
    assert_int_equal(got->role_seen, want->role_seen);
    assert_int_equal(got->text.len, want->text.len);
    if (want->text.len)
        assert_memory_equal(got->text.data, want->text.data, want->text.len);
    assert_int_equal(got->n_calls, want->n_calls);
    for (int i = 0; i < want->n_calls; i++) {
        assert_string_equal(got->calls[i].name, want->calls[i].name);
        if (check_ids)
            assert_string_equal(got->calls[i].id, want->calls[i].id);
        else
            assert_true(strlen(got->calls[i].id) > 0);
        assert_args_equal(got->calls[i].args.data, got->calls[i].args.len, want->calls[i].args.data,
                          want->calls[i].args.len);
    }
    assert_string_equal(got->finish, want->finish);
    assert_int_equal(got->done, want->done);
    assert_int_equal(got->error, want->error);
    if (want->error) {
        assert_string_equal(got->error_type, want->error_type);
        assert_string_equal(got->error_message, want->error_message);
    }
    assert_int_equal(got->usage_chunk, want->usage_chunk);
    if (want->usage_chunk) {
        assert_int_equal(got->usage.prompt_tokens, want->usage.prompt_tokens);
        assert_int_equal(got->usage.completion_tokens, want->usage.completion_tokens);
        assert_int_equal(got->usage.total_tokens, want->usage.total_tokens);
        assert_int_equal(got->usage.cached_tokens, want->usage.cached_tokens);
        assert_int_equal(got->usage.cache_write_tokens, want->usage.cache_write_tokens);
        assert_int_equal(got->usage.reasoning_tokens, want->usage.reasoning_tokens);
    }
    assert_string_equal(got->model, want->model);
}

/* Translates a whole upstream stream, fed in slices: slice = 0 picks random
 * sizes from 1 to the whole (seeded), otherwise fixed slices of that size. */
static inline void translate_sliced(const sy_provider_ops_t *ops, const char *in, size_t len,
                                    const char *model, bool include_usage, size_t slice,
                                    unsigned seed, sy_buf_t *out)
{
    sy_json_parser_t *p = sy_json_parser_new();
    sy_provider_stream_t s;
    sy_provider_resp_opts_t o = {.public_model = sy_str_from_cstr(model),
                                 .created = FIXED_CREATED,
                                 .include_usage = include_usage};
    sy_provider_stream_init(&s, ops, p, &o);
    size_t off = 0;
    while (off < len) {
        size_t n = slice;
        if (n == 0)
            n = 1 + (size_t)rand_r(&seed) % (len - off);
        if (n > len - off)
            n = len - off;
        assert_int_equal(sy_provider_stream_feed(&s, in + off, n, out), 0);
        off += n;
    }
    assert_int_equal(sy_provider_stream_end(&s, out), 0);
    assert_true(s.done);
    sy_provider_stream_free(&s);
    sy_json_parser_free(p);
}

#endif
