/* Micro-benchmark of the stream translators: upstream SSE events per second
 * on one core, through each adapter (framing included), plus the Anthropic
 * egress (OpenAI chunks -> Anthropic events). It is a benchmark, never a
 * test: it asserts nothing about the figures.
 *
 * Build and run from the repository root: `make bench-translate` (also the
 * last step of `make bench`), or build/release/bench/translate_bench [seconds
 * per case, default 1].
 * Fixtures come from $SY_FIXTURES_DIR or tests/fixtures/providers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "json.h"
#include "sse.h"
#include "dataplane/providers/provider.h"
#include "dataplane/providers/anthropic_ingress.h"

static char *load(const char *name, size_t *len)
{
    const char *dir = getenv("SY_FIXTURES_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures/providers", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_event(void *ctx, const sy_sse_event_t *ev)
{
    (void)ev;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t count_events(const char *p, size_t n)
{
    size_t count = 0;
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1 << 20, count_event, &count);
    sy_sse_framer_feed(&f, p, n);
    sy_sse_framer_free(&f);
    return count;
}

/* Translates whole streams again and again for `secs`; reports events/s. */
static void bench_stream(const char *label, const sy_provider_ops_t *ops, const char *file,
                         double secs, sy_json_parser_t *p)
{
    size_t len;
    char *in = load(file, &len);
    size_t events = count_events(in, len), streams = 0, out_bytes = 0;
    sy_buf_t out;
    sy_buf_init(&out);
    sy_provider_resp_opts_t o = {
        .public_model = SY_STR("public-model"), .created = 1760000000, .include_usage = true};
    double t0 = now(), t;
    do {
        for (int i = 0; i < 200; i++) {
            sy_provider_stream_t s;
            sy_provider_stream_init(&s, ops, p, &o);
            sy_provider_stream_feed(&s, in, len, &out);
            sy_provider_stream_end(&s, &out);
            sy_provider_stream_free(&s);
            out_bytes += out.len;
            sy_buf_reset(&out);
        }
        streams += 200;
        t = now() - t0;
    } while (t < secs);
    double eps = (double)(streams * events) / t;
    printf("%-34s %6zu ev/stream %12.0f events/s  %7.2f us/event  %7.1f MB/s out\n", label, events,
           eps, 1e6 / eps, (double)out_bytes / t / 1e6);
    sy_buf_free(&out);
    free(in);
}

/* Counts events (used to find event boundaries byte by byte). */
static int split_event(void *ctx, const sy_sse_event_t *ev)
{
    (void)ev;
    (*(size_t *)ctx)++;
    return 0;
}

/* A long stream: the fixture with its event number `which` (a text or
 * argument delta) repeated `times` times, to measure the steady per-delta
 * cost apart from the per-stream setup and the rare events. */
static char *lengthen(const char *in, size_t len, size_t which, size_t times, size_t *out_len)
{
    /* Event boundaries: feed byte by byte and note where each event ends. */
    size_t seen = 0;
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, 1 << 20, split_event, &seen);
    size_t bounds[65] = {0}, nb = 0;
    for (size_t i = 0; i < len; i++) {
        size_t before = seen;
        sy_sse_framer_feed(&f, in + i, 1);
        if (seen != before && nb < 64)
            bounds[++nb] = i + 1;
    }
    sy_sse_framer_free(&f);
    if (which >= nb)
        which = nb - 1;
    size_t ev_len = bounds[which + 1] - bounds[which];
    char *outp = malloc(len + ev_len * times);
    size_t o = 0;
    memcpy(outp, in, bounds[which + 1]);
    o = bounds[which + 1];
    for (size_t t = 0; t < times; t++, o += ev_len)
        memcpy(outp + o, in + bounds[which], ev_len);
    memcpy(outp + o, in + bounds[which + 1], len - bounds[which + 1]);
    o += len - bounds[which + 1];
    *out_len = o;
    return outp;
}

static void bench_steady(const char *label, const sy_provider_ops_t *ops, const char *file,
                         size_t which, double secs, sy_json_parser_t *p)
{
    size_t len, big_len;
    char *in = load(file, &len);
    char *big = lengthen(in, len, which, 1000, &big_len);
    size_t events = count_events(big, big_len), streams = 0;
    sy_buf_t out;
    sy_buf_init(&out);
    sy_provider_resp_opts_t o = {
        .public_model = SY_STR("public-model"), .created = 1760000000, .include_usage = true};
    double t0 = now(), t;
    do {
        sy_provider_stream_t s;
        sy_provider_stream_init(&s, ops, p, &o);
        sy_provider_stream_feed(&s, big, big_len, &out);
        sy_provider_stream_end(&s, &out);
        sy_provider_stream_free(&s);
        sy_buf_reset(&out);
        streams++;
        t = now() - t0;
    } while (t < secs);
    double eps = (double)(streams * events) / t;
    printf("%-34s %6zu ev/stream %12.0f events/s  %7.2f us/event\n", label, events, eps, 1e6 / eps);
    sy_buf_free(&out);
    free(big);
    free(in);
}

/* upstream -> OpenAI chunks once, then chunks -> Anthropic events repeatedly. */
static void bench_egress(const char *label, const sy_provider_ops_t *ops, const char *file,
                         double secs, sy_json_parser_t *p)
{
    size_t len;
    char *in = load(file, &len);
    sy_buf_t chunks, out;
    sy_buf_init(&chunks);
    sy_buf_init(&out);
    sy_provider_resp_opts_t o = {.public_model = SY_STR("m"), .include_usage = true};
    sy_provider_stream_t s;
    sy_provider_stream_init(&s, ops, p, &o);
    sy_provider_stream_feed(&s, in, len, &chunks);
    sy_provider_stream_end(&s, &chunks);
    sy_provider_stream_free(&s);
    size_t events = count_events(chunks.data, chunks.len), streams = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 200; i++) {
            sy_anthropic_egress_t e;
            sy_anthropic_egress_init(&e, p, SY_STR("m"));
            sy_anthropic_egress_feed(&e, chunks.data, chunks.len, &out);
            sy_anthropic_egress_end(&e, &out);
            sy_anthropic_egress_free(&e);
            sy_buf_reset(&out);
        }
        streams += 200;
        t = now() - t0;
    } while (t < secs);
    double eps = (double)(streams * events) / t;
    printf("%-34s %6zu ev/stream %12.0f events/s  %7.2f us/event\n", label, events, eps, 1e6 / eps);
    sy_buf_free(&chunks);
    sy_buf_free(&out);
    free(in);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0)
        secs = 1.0;
    sy_json_parser_t *p = sy_json_parser_new();
    printf("one core, whole streams fed at once (SSE framing + translation + chunk output)\n");
    bench_stream("openai passthrough (text)", &sy_provider_openai, "openai_chat_stream.sse", secs,
                 p);
    bench_stream("openai passthrough (tool calls)", &sy_provider_openai,
                 "openai_chat_stream_tool_calls.sse", secs, p);
    bench_stream("anthropic -> openai (text)", &sy_provider_anthropic,
                 "anthropic_messages_stream.sse", secs, p);
    bench_stream("anthropic -> openai (tool use)", &sy_provider_anthropic,
                 "anthropic_messages_stream_tool_use.sse", secs, p);
    bench_stream("gemini -> openai (text)", &sy_provider_gemini, "gemini_stream.sse", secs, p);
    bench_stream("gemini -> openai (function call)", &sy_provider_gemini,
                 "gemini_stream_function_call.sse", secs, p);
    bench_egress("openai chunks -> anthropic events", &sy_provider_anthropic,
                 "anthropic_messages_stream_tool_use.sse", secs, p);
    printf("\nsteady state: one delta event repeated 1000 times per stream\n");
    bench_steady("openai passthrough (content chunk)", &sy_provider_openai,
                 "openai_chat_stream.sse", 2, secs, p);
    bench_steady("anthropic text_delta", &sy_provider_anthropic, "anthropic_messages_stream.sse", 3,
                 secs, p);
    bench_steady("anthropic input_json_delta", &sy_provider_anthropic,
                 "anthropic_messages_stream_tool_use.sse", 8, secs, p);
    bench_steady("gemini text event", &sy_provider_gemini, "gemini_stream.sse", 1, secs, p);
    sy_json_parser_free(p);
    return 0;
}
