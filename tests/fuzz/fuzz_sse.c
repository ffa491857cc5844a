/* libFuzzer target for the SSE framer: the input is framed once in one feed
 * and once in slices chosen by the input itself; both must produce the same
 * events, the same error, and raw bytes that lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

#define MAX_EVENTS 4096

typedef struct run {
    size_t n;                  /* events seen */
    uint64_t hash[MAX_EVENTS]; /* hash of event, data, id and raw */
    size_t raw_total;          /* sum of raw lengths */
} run_t;

static uint64_t mix(uint64_t h, sy_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 1099511628211ull;
    return (h ^ s.len) * 1099511628211ull;
}

static int on_event(void *ctx, const sy_sse_event_t *ev)
{
    run_t *r = ctx;
    uint64_t h = 1469598103934665603ull;
    h = mix(h, ev->event);
    h = mix(h, ev->data);
    h = mix(h, ev->id);
    h = mix(h, ev->raw);
    if (ev->data.ptr == NULL || ev->raw.len == 0)
        abort();
    if (r->n < MAX_EVENTS)
        r->hash[r->n] = h;
    r->n++;
    r->raw_total += ev->raw.len;
    return 0;
}

static int frame(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, size_t cap,
                 run_t *r)
{
    sy_sse_framer_t f;
    sy_sse_framer_init(&f, cap, on_event, r);
    size_t off = 0;
    size_t c = 0;
    int rc = 0;
    while (off < size && rc == 0) {
        size_t n = size - off;
        if (ncuts > 0) {
            n = 1 + cuts[c++ % ncuts] % 17;
            if (n > size - off)
                n = size - off;
        }
        /* A private copy, so a view kept past its feed is caught by ASan. */
        uint8_t *slice = malloc(n);
        memcpy(slice, data + off, n);
        rc = sy_sse_framer_feed(&f, (const char *)slice, n);
        free(slice);
        off += n;
    }
    if (rc == 0)
        rc = sy_sse_framer_end(&f);
    if (rc == 0 && sy_sse_framer_has_partial(&f) == false && r->raw_total > size)
        abort();
    sy_sse_framer_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the cap; up to 8 more bytes pick slice sizes. */
    size_t cap = data[0] & 1 ? 64 : 1 << 20;
    size_t ncuts = size > 9 ? 8 : 0;
    const uint8_t *cuts = data + 1;
    data += 1 + ncuts;
    size -= 1 + ncuts;

    static run_t a;
    static run_t b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    int ra = frame(data, size, NULL, 0, cap, &a);
    int rb = frame(data, size, cuts, ncuts, cap, &b);
    if (ra != rb)
        abort();
    if (ra == 0) {
        if (a.n != b.n || a.raw_total != b.raw_total)
            abort();
        for (size_t i = 0; i < a.n && i < MAX_EVENTS; i++)
            if (a.hash[i] != b.hash[i])
                abort();
    }
    return 0;
}
