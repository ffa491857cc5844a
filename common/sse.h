/* Server-Sent Events framer (WHATWG event-stream algorithm, byte level).
 *
 * Lines end in "\n", "\r\n" or "\r" (a "\r" at the end of one feed followed by
 * "\n" at the start of the next is one line end). A blank line dispatches the
 * pending event; an event with no data lines is not dispatched. "field:value"
 * strips exactly one leading space; several data lines join with "\n"; lines
 * starting with ':' are comments. Events may be split across feeds at any
 * byte. The framer never copies an event that lies wholly inside one feed. */
#ifndef SY_SSE_H
#define SY_SSE_H

#include "buf.h"

struct sy_sse_event {
    sy_str_t event; /* "event:" value, empty when absent */
    sy_str_t data;  /* data lines joined with "\n" (no trailing newline) */
    sy_str_t id;    /* "id:" value, empty when absent */
    sy_str_t raw;   /* the exact bytes of the event, through its blank line */
};

/* Called once per dispatched event; views are valid only during the call.
 * Return 0 to continue, nonzero to stop (feed returns that value). */
typedef int (*sy_sse_event_cb)(void *ctx, const sy_sse_event_t *ev);

struct sy_sse_framer {
    sy_sse_event_cb cb; /* borrowed */
    void *ctx;          /* borrowed; passed to cb */
    size_t max_event;   /* cap on the bytes of one event (raw), SY_E2BIG beyond */
    sy_buf_t pending;   /* owned; raw bytes of an event split across feeds */
    sy_buf_t data;      /* owned; scratch for joined data lines */
    bool skip_lf;       /* pending holds a complete event whose blank line ended in a '\r'
                           that was the last byte of a feed: a leading '\n' of the next feed
                           belongs to it (so raw stays byte-exact); dispatched by the next
                           feed or by sy_sse_framer_end */
    bool failed;        /* an event went over max_event; feeds fail until reset */
};

void sy_sse_framer_init(sy_sse_framer_t *f, size_t max_event, sy_sse_event_cb cb, void *ctx);
/* Feeds bytes. Returns 0, SY_E2BIG (event over the cap; the framer must be
 * reset before reuse), or the callback's nonzero value. */
int sy_sse_framer_feed(sy_sse_framer_t *f, const char *p, size_t n);
/* At the end of the stream: dispatches an event held back only to see whether
 * a "\n" followed its final "\r" (see skip_lf). Returns 0 or the callback's
 * nonzero value. Call it before sy_sse_framer_has_partial at EOF. */
int sy_sse_framer_end(sy_sse_framer_t *f);
/* True when bytes of an unfinished event are buffered (a truncated stream). */
bool sy_sse_framer_has_partial(const sy_sse_framer_t *f);
void sy_sse_framer_reset(sy_sse_framer_t *f);
void sy_sse_framer_free(sy_sse_framer_t *f);

#endif
