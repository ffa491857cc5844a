/* Unit tests for common/sse.c: every provider fixture fed in random slices
 * must frame exactly like a one-shot feed, with raw bytes concatenating back
 * to the input; plus the edge cases of the event-stream algorithm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "sse.h"

/* One dispatched event, copied out of the callback. */
typedef struct rec {
    char *event; /* owned */
    char *data;  /* owned */
    char *id;    /* owned */
    char *raw;   /* owned */
    size_t data_len;
    size_t raw_len;
    bool raw_in_feed; /* raw pointed into the caller's feed buffer */
    bool data_in_feed;
} rec_t;

typedef struct sink {
    rec_t *recs; /* owned */
    size_t n;
    size_t cap;
    const char *feed; /* borrowed; the bytes of the current feed */
    size_t feed_len;
    int stop_after; /* return 99 once this many events arrived (0 = never) */
} sink_t;

static char *dup_view(sy_str_t s)
{
    return sy_str_dup(s);
}

static bool inside(sy_str_t s, const char *p, size_t n)
{
    return s.len > 0 && p != NULL && s.ptr >= p && s.ptr + s.len <= p + n;
}

static int on_event(void *ctx, const sy_sse_event_t *ev)
{
    sink_t *k = ctx;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 16;
        k->recs = realloc(k->recs, k->cap * sizeof(*k->recs));
    }
    rec_t *r = &k->recs[k->n++];
    r->event = dup_view(ev->event);
    r->data = dup_view(ev->data);
    r->id = dup_view(ev->id);
    r->raw = dup_view(ev->raw);
    r->data_len = ev->data.len;
    r->raw_len = ev->raw.len;
    r->raw_in_feed = inside(ev->raw, k->feed, k->feed_len);
    r->data_in_feed = inside(ev->data, k->feed, k->feed_len);
    assert_non_null(ev->data.ptr); /* data is never a NULL view, even when empty */
    if (k->stop_after && (int)k->n >= k->stop_after)
        return 99;
    return 0;
}

static void sink_free(sink_t *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->recs[i].event);
        free(k->recs[i].data);
        free(k->recs[i].id);
        free(k->recs[i].raw);
    }
    free(k->recs);
    memset(k, 0, sizeof(*k));
}

static int feed(sy_sse_framer_t *f, sink_t *k, const char *p, size_t n)
{
    k->feed = p;
    k->feed_len = n;
    return sy_sse_framer_feed(f, p, n);
}

/* Feeds input in slices whose sizes come from a seeded generator (seed 0
 * means one shot). Each slice is copied into its own heap block, so views
 * that outlive a feed or stray past it are caught by ASan. */
static void run_sliced(const char *input, size_t len, unsigned seed, size_t max_slice, sink_t *out)
{
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1 << 20, on_event, out);
    unsigned st = seed * 2654435761u + 1;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (seed != 0) {
            st = st * 1103515245u + 12345u;
            n = 1 + (st >> 8) % max_slice;
            if (n > len - off)
                n = len - off;
        }
        char *slice = malloc(n);
        memcpy(slice, input + off, n);
        assert_int_equal(feed(&f, out, slice, n), 0);
        free(slice);
        off += n;
    }
    out->feed = NULL;
    out->feed_len = 0;
    assert_int_equal(sy_sse_framer_end(&f), 0);
    assert_false(sy_sse_framer_has_partial(&f));
    sy_sse_framer_free(&f);
}

static void assert_same_events(const sink_t *a, const sink_t *b, const char *what, unsigned seed)
{
    if (a->n != b->n)
        fail_msg("%s seed %u: %zu events, one-shot had %zu", what, seed, b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        const rec_t *x = &a->recs[i];
        const rec_t *y = &b->recs[i];
        if (strcmp(x->event, y->event) != 0 || x->data_len != y->data_len ||
            memcmp(x->data, y->data, x->data_len) != 0 || strcmp(x->id, y->id) != 0 ||
            x->raw_len != y->raw_len || memcmp(x->raw, y->raw, x->raw_len) != 0)
            fail_msg("%s seed %u: event %zu differs from the one-shot feed", what, seed, i);
    }
}

static void assert_raw_concat(const sink_t *k, const char *input, size_t len, const char *what)
{
    size_t off = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (off + k->recs[i].raw_len > len ||
            memcmp(input + off, k->recs[i].raw, k->recs[i].raw_len) != 0)
            fail_msg("%s: raw of event %zu does not continue the input at %zu", what, i, off);
        off += k->recs[i].raw_len;
    }
    if (off != len)
        fail_msg("%s: raw bytes cover %zu of %zu input bytes", what, off, len);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    sy_buf_t b;
    sy_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        sy_buf_append(&b, chunk, n);
    fclose(fp);
    *len = b.len;
    return sy_buf_steal(&b, NULL);
}

static const char *fixtures_dir(void)
{
    const char *env = getenv("SY_FIXTURES_DIR");
    if (env != NULL && env[0] != '\0')
        return env;
    return "tests/fixtures/providers";
}

/* The semantic check that the framer found real events: each data is JSON
 * (or OpenAI's [DONE]), and Anthropic's event name equals the JSON "type". */
static void check_semantics(const sink_t *k, const char *name)
{
    for (size_t i = 0; i < k->n; i++) {
        const rec_t *r = &k->recs[i];
        if (strcmp(r->data, "[DONE]") == 0) {
            assert_int_equal(i, k->n - 1);
            continue;
        }
        json_object *o = json_tokener_parse(r->data);
        if (o == NULL)
            fail_msg("%s event %zu: data is not JSON: %s", name, i, r->data);
        if (r->event[0] != '\0') {
            json_object *t = NULL;
            assert_true(json_object_object_get_ex(o, "type", &t));
            assert_string_equal(json_object_get_string(t), r->event);
        }
        json_object_put(o);
    }
}

static void test_fixtures_random_slices(void **state)
{
    (void)state;
    const char *dir = fixtures_dir();
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("fixtures not found at %s (run from the repo root or set SY_FIXTURES_DIR)", dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".sse") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *input = read_file(path, &len);
        assert_non_null(input);
        assert_true(len > 0);
        files++;

        sink_t one = {0};
        run_sliced(input, len, 0, 0, &one);
        assert_true(one.n >= 2);
        /* One shot: every event lies inside the feed, so nothing is copied. */
        for (size_t i = 0; i < one.n; i++) {
            assert_true(one.recs[i].raw_in_feed);
            assert_true(one.recs[i].data_in_feed);
        }
        assert_raw_concat(&one, input, len, e->d_name);
        check_semantics(&one, e->d_name);

        for (unsigned seed = 1; seed <= 300; seed++) {
            /* Mostly tiny slices (every split point gets exercised), some large. */
            size_t max_slice = seed % 3 == 0 ? len : (seed % 3 == 1 ? 3 : 40);
            sink_t sl = {0};
            run_sliced(input, len, seed, max_slice, &sl);
            assert_same_events(&one, &sl, e->d_name, seed);
            assert_raw_concat(&sl, input, len, e->d_name);
            sink_free(&sl);
        }
        /* Every single split point, byte by byte. */
        sink_t bytes = {0};
        run_sliced(input, len, 7, 1, &bytes);
        assert_same_events(&one, &bytes, e->d_name, 7);
        sink_free(&bytes);
        sink_free(&one);
        free(input);
    }
    closedir(d);
    assert_true(files >= 5);
}

/* A synthetic stream with every line ending, comments, multi-line data,
 * ids, unknown fields and non-dispatched blocks, sliced the same way. */
static void test_torture_stream_slices(void **state)
{
    (void)state;
    static const char input[] = ": hello\n"
                                "\n"
                                "data: one\n\n"
                                "event: two\r\ndata:two-a\r\ndata: two-b\r\n\r\n"
                                "id: 7\rdata: three\r\r"
                                "event: nodata\n\n"
                                "retry: 100\nfoo: bar\ndata\n\n"
                                ": keepalive\r\n\r\n"
                                "data:  spaced\nid\n\n"
                                "data: a\r\n: mid comment\r\ndata: b\n\r\n"
                                "data: caf\xc3\xa9\n\n";
    size_t len = sizeof(input) - 1;
    sink_t one = {0};
    run_sliced(input, len, 0, 0, &one);
    assert_int_equal(one.n, 7);
    assert_string_equal(one.recs[0].data, "one");
    assert_string_equal(one.recs[1].event, "two");
    assert_string_equal(one.recs[1].data, "two-a\ntwo-b");
    assert_false(one.recs[1].data_in_feed); /* joined lines live in scratch */
    assert_true(one.recs[1].raw_in_feed);
    assert_string_equal(one.recs[2].id, "7");
    assert_string_equal(one.recs[2].data, "three");
    assert_string_equal(one.recs[2].raw, "id: 7\rdata: three\r\r");
    assert_string_equal(one.recs[3].data, ""); /* "data" alone: an empty data line */
    assert_int_equal(one.recs[3].data_len, 0);
    assert_string_equal(one.recs[4].data, " spaced");
    assert_string_equal(one.recs[4].id, "");
    assert_string_equal(one.recs[5].data, "a\nb");
    assert_string_equal(one.recs[5].raw, "data: a\r\n: mid comment\r\ndata: b\n\r\n");
    assert_string_equal(one.recs[6].data, "caf\xc3\xa9");
    /* The first raw starts after the non-dispatched comment block. */
    assert_string_equal(one.recs[0].raw, "data: one\n\n");
    for (unsigned seed = 1; seed <= 2000; seed++) {
        sink_t sl = {0};
        run_sliced(input, len, seed, seed % 2 ? 2 : 9, &sl);
        assert_same_events(&one, &sl, "torture", seed);
        sink_free(&sl);
    }
    sink_free(&one);
}

static void test_crlf_split_across_feeds(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    /* "\r" ends one feed, "\n" starts the next: one line end, not two. */
    assert_int_equal(feed(&f, &k, "data: x\r", 8), 0);
    assert_int_equal(feed(&f, &k, "\ndata: y\r", 9), 0);
    assert_int_equal(k.n, 0);
    assert_int_equal(feed(&f, &k, "\n\r", 2), 0);
    /* The blank line's "\r" ended the feed: held back until the next byte. */
    assert_int_equal(k.n, 0);
    assert_true(sy_sse_framer_has_partial(&f));
    assert_int_equal(feed(&f, &k, "\ndata: z\n\n", 10), 0);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.recs[0].data, "x\ny");
    assert_string_equal(k.recs[0].raw, "data: x\r\ndata: y\r\n\r\n");
    assert_false(k.recs[0].raw_in_feed); /* it spanned feeds, so it was buffered */
    assert_string_equal(k.recs[1].data, "z");
    assert_true(k.recs[1].raw_in_feed); /* back to zero-copy right after */
    assert_false(sy_sse_framer_has_partial(&f));

    /* A held-back event followed by a different byte is dispatched as is. */
    assert_int_equal(feed(&f, &k, "data: w\r\r", 9), 0);
    assert_int_equal(k.n, 2);
    assert_int_equal(feed(&f, &k, "data: v\n\n", 9), 0);
    assert_int_equal(k.n, 4);
    assert_string_equal(k.recs[2].raw, "data: w\r\r");
    assert_string_equal(k.recs[3].data, "v");
    /* ...or by the end of the stream. */
    assert_int_equal(feed(&f, &k, "data: u\n\r", 9), 0);
    assert_int_equal(k.n, 4);
    assert_int_equal(sy_sse_framer_end(&f), 0);
    assert_int_equal(k.n, 5);
    assert_string_equal(k.recs[4].data, "u");
    assert_false(sy_sse_framer_has_partial(&f));
    assert_int_equal(sy_sse_framer_end(&f), 0); /* nothing more */
    assert_int_equal(k.n, 5);
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_lone_cr_and_comments(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    const char *s = "data: a\rdata: b\r\r: comment only\r\r:\n\nevent: x\n\n";
    assert_int_equal(feed(&f, &k, s, strlen(s)), 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.recs[0].data, "a\nb");
    assert_string_equal(k.recs[0].event, "");
    assert_false(sy_sse_framer_has_partial(&f));
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_event_without_data_not_dispatched(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    const char *s = "event: ping\n\nid: 3\n\nretry: 5\n\n\n\n";
    assert_int_equal(feed(&f, &k, s, strlen(s)), 0);
    assert_int_equal(k.n, 0);
    /* Field state does not leak into the next event. */
    assert_int_equal(feed(&f, &k, "data: d\n\n", 9), 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.recs[0].event, "");
    assert_string_equal(k.recs[0].id, "");
    assert_string_equal(k.recs[0].data, "d");
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_zero_copy_views(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    const char *s = "event: e\ndata: {\"a\":1}\n\ndata: par";
    assert_int_equal(feed(&f, &k, s, strlen(s)), 0);
    assert_int_equal(k.n, 1);
    assert_true(k.recs[0].raw_in_feed);
    assert_true(k.recs[0].data_in_feed);
    /* Only the unfinished tail is buffered. */
    assert_int_equal(f.pending.len, 9);
    assert_true(sy_sse_framer_has_partial(&f));
    assert_int_equal(feed(&f, &k, "tial\n\ndata: next\n\n", 18), 0);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.recs[1].data, "partial");
    assert_false(k.recs[1].raw_in_feed);
    assert_true(k.recs[2].raw_in_feed);
    assert_int_equal(f.pending.len, 0);
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_size_cap(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 32, on_event, &k);
    /* Exactly at the cap is fine. */
    char ev[33];
    memcpy(ev, "data: ", 6);
    memset(ev + 6, 'x', 24);
    memcpy(ev + 30, "\n\n", 2);
    assert_int_equal(feed(&f, &k, ev, 32), 0);
    assert_int_equal(k.n, 1);
    /* One byte over, in one feed. */
    char big[64];
    memcpy(big, "data: ", 6);
    memset(big + 6, 'y', 25);
    memcpy(big + 31, "\n\n", 2);
    assert_int_equal(feed(&f, &k, big, 33), SY_E2BIG);
    assert_int_equal(k.n, 1);
    /* The framer stays failed until reset. */
    assert_int_equal(feed(&f, &k, "data: ok\n\n", 10), SY_E2BIG);
    sy_sse_framer_reset(&f);
    assert_int_equal(feed(&f, &k, "data: ok\n\n", 10), 0);
    assert_int_equal(k.n, 2);
    /* Over the cap across feeds, without a blank line ever arriving. */
    assert_int_equal(feed(&f, &k, "data: ", 6), 0);
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = feed(&f, &k, "zzzzzzzz", 8);
    assert_int_equal(rc, SY_E2BIG);
    assert_false(sy_sse_framer_has_partial(&f));
    sy_sse_framer_reset(&f);
    /* A huge feed without line ends is refused without scanning it all. */
    size_t hn = 1 << 20;
    char *huge = malloc(hn);
    memset(huge, 'q', hn);
    assert_int_equal(feed(&f, &k, huge, hn), SY_E2BIG);
    free(huge);
    assert_int_equal(k.n, 2);
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_callback_stop(void **state)
{
    (void)state;
    sink_t k = {0};
    k.stop_after = 2;
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(feed(&f, &k, s, strlen(s)), 99);
    assert_int_equal(k.n, 2);
    sy_sse_framer_free(&f);
    sink_free(&k);
}

static void test_feed_empty_and_free_twice(void **state)
{
    (void)state;
    sink_t k = {0};
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1024, on_event, &k);
    assert_int_equal(sy_sse_framer_feed(&f, NULL, 0), 0);
    assert_false(sy_sse_framer_has_partial(&f));
    assert_int_equal(feed(&f, &k, "data: x\n\r", 9), 0);
    assert_int_equal(sy_sse_framer_feed(&f, NULL, 0), 0); /* still held back */
    assert_int_equal(k.n, 0);
    assert_int_equal(feed(&f, &k, "\n", 1), 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.recs[0].raw, "data: x\n\r\n");
    sy_sse_framer_free(&f);
    sy_sse_framer_free(&f);
    sy_sse_framer_free(NULL);
    sink_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_random_slices),
        cmocka_unit_test(test_torture_stream_slices),
        cmocka_unit_test(test_crlf_split_across_feeds),
        cmocka_unit_test(test_lone_cr_and_comments),
        cmocka_unit_test(test_event_without_data_not_dispatched),
        cmocka_unit_test(test_zero_copy_views),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_feed_empty_and_free_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
